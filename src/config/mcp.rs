//! Settings of the MCP side: which `Host` and `Origin` values the MCP
//! endpoints answer (DNS-rebinding defence), and the gateway routes.

use serde::Deserialize;

use super::{ConfigError, allowed_host, each};
use crate::oauth::scope::ScopeCatalog;

/// The MCP-side settings, validated.
pub(super) struct McpSettings {
    pub hosts: Vec<String>,
    /// The public URL's origin first.
    pub origins: Vec<String>,
    pub gateways: Vec<Gateway>,
}

pub(super) fn settings(
    hosts: &[String],
    origins: &[String],
    gateways: Vec<GatewayFile>,
    public_url: &str,
    scopes: &ScopeCatalog,
) -> Result<McpSettings, ConfigError> {
    let hosts = each("mcp_allowed_hosts", hosts, |h| allowed_host(h))?;
    // The public URL may have a path (`https://host/broker`); its origin is
    // what browsers on it send.
    let public = url::Url::parse(public_url)
        .map(|u| u.origin().ascii_serialization())
        .map_err(|e| ConfigError::Invalid {
            key: "public_url".into(),
            message: e.to_string(),
        })?;
    let mut all_origins = vec![public];
    all_origins.extend(each("mcp_allowed_origins", origins, |o| origin(o))?);
    let gateways = each("gateways", gateways, |g| gateway(g, scopes))?;
    for (i, g) in gateways.iter().enumerate() {
        if gateways[..i].iter().any(|other| other.name == g.name) {
            return Err(ConfigError::Invalid {
                key: format!("gateways[{i}]"),
                message: format!("name {:?} is used twice", g.name),
            });
        }
    }
    Ok(McpSettings {
        hosts,
        origins: all_origins,
        gateways,
    })
}

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

fn gateway(file: GatewayFile, scopes: &ScopeCatalog) -> Result<Gateway, String> {
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
    if url.scheme() == "http" && !crate::oauth::redirect_uri::is_loopback(&url) {
        // The upstream token travels in the request: never in clear text
        // beyond this machine.
        return Err("url must be https:// unless it is on a loopback address".into());
    }
    if file.provider.is_empty() || file.scope.is_empty() {
        return Err("provider and scope are required".into());
    }
    if !scopes.names().contains(&file.scope.as_str()) {
        return Err(format!(
            "scope {:?} is not among the configured scopes",
            file.scope
        ));
    }
    Ok(Gateway {
        name: file.name,
        url,
        provider: file.provider,
        scope: file.scope,
    })
}

/// An `mcp_allowed_origins` entry, normalised to `scheme://host[:port]` as
/// browsers send it (default ports omitted).
fn origin(entry: &str) -> Result<String, String> {
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
