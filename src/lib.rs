//! mcp-broker: a remote MCP server that is its own OAuth 2.1 authorization
//! server, logs users in through their upstream provider (GitHub), keeps the
//! upstream tokens sealed and mapped to the grants behind our tokens, and uses
//! them in its MCP tools. See `docs/architecture.md` for the map.

pub mod admin;
pub mod app;
pub mod audit;
pub mod clients;
pub mod config;
pub mod error;
pub mod gateway;
pub mod http;
pub mod mcp;
pub mod oauth;
pub mod ops;
pub mod store;
pub mod tokens;
pub mod upstream;
pub mod utc;
pub mod vault;

/// Seconds since the Unix epoch: the only clock the broker reads.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
