//! Tool implementations, one file per upstream, and what each tool needs:
//! the broker scope (checked by the bearer layer before the call runs) and
//! the upstream provider whose token it uses (fetched, refreshed if due, by
//! the bearer layer too, so an upstream that refuses us for good is a 401).

pub mod accounts;
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
    ("github_get_repo", "repo:read", github::PROVIDER),
    ("github_read_file", "repo:read", github::PROVIDER),
    ("github_list_branches", "repo:read", github::PROVIDER),
    ("github_list_issues", "repo:read", github::PROVIDER),
    ("github_get_issue", "repo:read", github::PROVIDER),
    ("github_list_pull_requests", "repo:read", github::PROVIDER),
    (
        "github_get_pull_request_diff",
        "repo:read",
        github::PROVIDER,
    ),
    ("github_search_issues", "repo:read", github::PROVIDER),
    ("github_search_code", "repo:read", github::PROVIDER),
    ("github_create_issue", "repo:write", github::PROVIDER),
    ("github_comment", "repo:write", github::PROVIDER),
    ("github_create_branch", "repo:write", github::PROVIDER),
    ("github_put_file", "repo:write", github::PROVIDER),
    ("github_open_pull_request", "repo:write", github::PROVIDER),
];

/// A `tools/call` as the bearer layer sees it: the name, and for
/// `account_whoami` the provider argument.
#[derive(Debug, Default)]
pub struct Call {
    pub name: String,
    pub provider: Option<String>,
}

/// What a call needs: the broker scope, and the provider whose token it
/// uses. `None` for names we do not serve (rmcp answers those).
pub fn requirement(state: &AppState, call: &Call) -> Option<(String, String)> {
    if call.name == accounts::ACCOUNT_WHOAMI {
        let sign_in = state.providers.default_provider()?.id.clone();
        let provider = call.provider.clone().unwrap_or_else(|| sign_in.clone());
        // The sign-in provider comes with every grant; another provider with
        // the scope that links it.
        let scope = if provider == sign_in {
            state
                .config
                .scopes
                .defaults()
                .split(' ')
                .next()?
                .to_string()
        } else {
            state
                .config
                .scopes
                .scope_for_provider(&provider)?
                .to_string()
        };
        return Some((scope, provider));
    }
    TOOLS
        .iter()
        .find(|t| t.0 == call.name)
        .map(|t| (t.1.to_string(), t.2.to_string()))
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
