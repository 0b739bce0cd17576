//! Tools that act on the user's GitHub account with the upstream token the
//! vault maps to the caller's grant. The MCP client's own token is never sent.

use rmcp::model::{CallToolResult, ContentBlock};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{upstream_token, vault_tool_error};
use crate::app::AppState;
use crate::mcp::GrantCtx;
use crate::mcp::server::tool_error;
use crate::upstream::flow::{describe_transport_error, read_limited};

/// The provider these tools use (the file `providers/github.toml`).
pub const PROVIDER: &str = "github";

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ListReposArgs {
    /// Results per page, 1 to 100 (default 30).
    pub per_page: Option<u32>,
    /// Page number, starting at 1 (default 1).
    pub page: Option<u32>,
}

pub async fn whoami(state: &AppState, grant: &GrantCtx) -> CallToolResult {
    match get(state, grant, "/user", &[]).await {
        Ok(body) => CallToolResult::success(vec![ContentBlock::text(body.to_string())]),
        Err(result) => result,
    }
}

pub async fn list_repos(
    state: &AppState,
    grant: &GrantCtx,
    args: &ListReposArgs,
) -> CallToolResult {
    let per_page = args.per_page.unwrap_or(30).clamp(1, 100).to_string();
    let page = args.page.unwrap_or(1).max(1).to_string();
    let query = [
        ("per_page", per_page.as_str()),
        ("page", page.as_str()),
        ("sort", "updated"),
    ];
    match get(state, grant, "/user/repos", &query).await {
        Ok(Value::Array(repos)) => {
            let repos: Vec<Value> = repos.iter().map(summarize_repo).collect();
            CallToolResult::success(vec![ContentBlock::text(Value::Array(repos).to_string())])
        }
        Ok(_) => tool_error("GitHub answered /user/repos with something other than a list"),
        Err(result) => result,
    }
}

fn summarize_repo(repo: &Value) -> Value {
    json!({
        "full_name": repo.get("full_name"),
        "private": repo.get("private"),
        "description": repo.get("description"),
        "html_url": repo.get("html_url"),
        "default_branch": repo.get("default_branch"),
        "updated_at": repo.get("updated_at"),
    })
}

/// GET on the GitHub REST API as the user; failures become tool errors that
/// carry GitHub's own message. A 401 means the token died early (revoked, or
/// expired before we thought): one refresh, one retry.
async fn get(
    state: &AppState,
    grant: &GrantCtx,
    path: &str,
    query: &[(&str, &str)],
) -> Result<Value, CallToolResult> {
    let Some(provider) = state.providers.get(PROVIDER) else {
        return Err(tool_error("GitHub is not configured on this broker"));
    };
    let url = format!("{}{path}", provider.api_base_url);
    let mut token = upstream_token(state, grant, PROVIDER).await?;
    let mut retried = false;
    loop {
        let response = state
            .http
            .get(&url)
            .query(query)
            .bearer_auth(&token.access_token)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .await
            .map_err(|e| {
                tool_error(format!(
                    "GitHub is unavailable: {}",
                    describe_transport_error(&e)
                ))
            })?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED && !retried {
            retried = true;
            token = state
                .vault
                .token_after_rejection(&grant.grant_id, PROVIDER, &token)
                .await
                .map_err(vault_tool_error)?;
            continue;
        }
        let body = read_limited(response)
            .await
            .map_err(|e| tool_error(e.to_string()))?;
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        let message = value
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        return Err(tool_error(format!(
            "GitHub answered HTTP {}: {message}",
            status.as_u16()
        )));
    }
}
