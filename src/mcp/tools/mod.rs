//! Tool implementations, one file per upstream, and what each tool needs:
//! the broker scope (checked by the bearer layer before the call runs) and
//! the upstream provider whose token it uses (fetched, refreshed if due, by
//! the bearer layer too, so an upstream that refuses us for good is a 401).

pub mod github;

use rmcp::model::CallToolResult;

use super::GrantCtx;
use super::server::tool_error;
use crate::app::AppState;
use crate::vault::{UpstreamToken, VaultError};

/// Every tool we serve: (name, broker scope, upstream provider).
pub const TOOLS: &[(&str, &str, &str)] = &[
    ("github_whoami", "profile", github::PROVIDER),
    ("github_list_repos", "repo:read", github::PROVIDER),
];

/// The broker scope a tool requires; `None` for names we do not serve.
pub fn required_scope(tool: &str) -> Option<&'static str> {
    TOOLS.iter().find(|t| t.0 == tool).map(|t| t.1)
}

/// The upstream provider a tool acts on.
pub fn provider_of(tool: &str) -> Option<&'static str> {
    TOOLS.iter().find(|t| t.0 == tool).map(|t| t.2)
}

/// The caller's upstream token for `provider`: the one the bearer layer
/// fetched for this request, or a fresh read.
pub async fn upstream_token(
    state: &AppState,
    grant: &GrantCtx,
    provider: &str,
) -> Result<UpstreamToken, CallToolResult> {
    if let Some((_, fetched)) = grant.upstream.iter().find(|(p, _)| p == provider) {
        return fetched.clone().map_err(tool_error);
    }
    state
        .vault
        .usable_token(&grant.grant_id, provider, crate::now_unix())
        .await
        .map_err(vault_tool_error)
}

/// A vault failure as the model should read it.
pub fn vault_tool_error(e: VaultError) -> CallToolResult {
    match e {
        VaultError::Store(e) => {
            tracing::error!(error = %e, "vault read failed");
            tool_error("the broker could not read its token store; try again")
        }
        other => tool_error(other.to_string()),
    }
}
