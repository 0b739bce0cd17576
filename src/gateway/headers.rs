//! Which headers cross the gateway. Allowlists, not blocklists: a header we
//! did not think of (a cookie, a forwarded-for chain, our own bearer token)
//! must not leak to the downstream server or back to the client.

/// Request headers passed on to the downstream MCP server. `Authorization`
/// is never among them: the downstream gets the upstream token instead.
/// Nor is `Mcp-Session-Id`: the gateway sets the one value it checked.
pub fn passes_downstream(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(name.as_str(), "content-type" | "accept" | "last-event-id")
        || (name.starts_with("mcp-") && name != "mcp-session-id")
}

/// Response headers passed back to the client. `WWW-Authenticate` is not:
/// it would point the client at the downstream's authorization server,
/// whose tokens the client never holds.
pub fn passes_upstream(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "content-type" | "cache-control" | "retry-after" | "x-accel-buffering"
    ) || name.starts_with("mcp-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_credentials_and_cookies_never_pass_downstream() {
        for name in [
            "Authorization",
            "Cookie",
            "Host",
            "X-Forwarded-For",
            "Proxy-Authorization",
            "Mcp-Session-Id",
        ] {
            assert!(!passes_downstream(name), "{name}");
        }
        for name in [
            "Content-Type",
            "Accept",
            "Mcp-Method",
            "MCP-Protocol-Version",
            "Last-Event-ID",
        ] {
            assert!(passes_downstream(name), "{name}");
        }
    }

    #[test]
    fn downstream_challenges_and_cookies_never_reach_the_client() {
        for name in ["WWW-Authenticate", "Set-Cookie", "Server", "Location"] {
            assert!(!passes_upstream(name), "{name}");
        }
        for name in ["Content-Type", "Mcp-Session-Id", "Cache-Control"] {
            assert!(passes_upstream(name), "{name}");
        }
    }
}
