//! Settings of the MCP side: which `Host` and `Origin` values the MCP
//! endpoints answer (DNS-rebinding defence), and the gateway routes.

use serde::Deserialize;

/// `[[gateways]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GatewayFile {
    name: String,
    url: String,
    provider: String,
    scope: String,
}

/// A downstream MCP server served at `/mcp/<name>`, called with the user's
/// upstream token for `provider`. Every request through it needs `scope`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gateway {
    pub name: String,
    pub url: url::Url,
    pub provider: String,
    pub scope: String,
}

pub(super) fn gateway(file: GatewayFile) -> Result<Gateway, String> {
    // One path segment of a fixed alphabet: the route never collides with
    // `/mcp` itself or escapes it, and appears verbatim in logs and metrics.
    let name_ok = !file.name.is_empty()
        && file.name.len() <= 64
        && file
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !name_ok {
        return Err(format!(
            "name must be 1-64 of a-z, 0-9, '-' and '_', got {:?}",
            file.name
        ));
    }
    let url = url::Url::parse(file.url.trim()).map_err(|e| format!("url: not a URL ({e})"))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err("url must be http:// or https://".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        // reqwest would send them as a second Authorization header, and
        // they would show in logs: the upstream token is the credential.
        return Err("url must not carry credentials".into());
    }
    if url.host_str().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err("url must have a host and no query or fragment".into());
    }
    if url.scheme() == "http" && !is_loopback(&url) {
        // The upstream token travels in the request: never in clear text
        // beyond this machine.
        return Err("url must be https:// unless it is on a loopback address".into());
    }
    if file.provider.is_empty() || file.scope.is_empty() {
        return Err("provider and scope are required".into());
    }
    Ok(Gateway {
        name: file.name,
        url,
        provider: file.provider,
        scope: file.scope,
    })
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// An `mcp_allowed_origins` entry, normalised to `scheme://host[:port]` as
/// browsers send it (default ports omitted).
pub(super) fn origin(entry: &str) -> Result<String, String> {
    let url = url::Url::parse(entry.trim())
        .map_err(|_| format!("expected an origin such as https://app.example, got {entry:?}"))?;
    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
    if !bare || url.host_str().is_none() || !url.username().is_empty() {
        return Err(format!(
            "expected scheme://host[:port] and nothing more, got {entry:?}"
        ));
    }
    Ok(url.origin().ascii_serialization())
}
