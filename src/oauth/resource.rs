//! Resource indicators (RFC 8707). We serve one protected resource, the MCP
//! endpoint; clients may spell it with or without one trailing `/` (the
//! TypeScript SDK adds one to bare origins).

use super::{ErrorCode, OAuthError};

pub fn same_resource(expected: &str, presented: &str) -> bool {
    let trim = |s: &str| s.strip_suffix('/').unwrap_or(s).to_string();
    trim(expected) == trim(presented)
}

/// Checks an optional `resource` parameter; absent means our MCP resource
/// (2025-03-26 clients do not send it). Returns the canonical value.
pub fn check_resource(presented: Option<&str>, ours: &str) -> Result<String, OAuthError> {
    match presented {
        None | Some("") => Ok(ours.to_string()),
        Some(r) if same_resource(ours, r) => Ok(ours.to_string()),
        Some(_) => Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource is not served by this authorization server",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_slash_is_ignored() {
        assert!(same_resource(
            "https://b.example/mcp",
            "https://b.example/mcp/"
        ));
        assert!(!same_resource(
            "https://b.example/mcp",
            "https://b.example/mcp//"
        ));
    }

    #[test]
    fn unknown_resource_is_invalid_target() {
        let err =
            check_resource(Some("https://evil.example/mcp"), "https://b.example/mcp").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidTarget);
    }

    #[test]
    fn missing_resource_means_ours() {
        assert_eq!(
            check_resource(None, "https://b.example/mcp").unwrap(),
            "https://b.example/mcp"
        );
    }
}
