//! Tools that act on the user's GitHub account with the upstream token the
//! vault maps to the caller's grant. The MCP client's own token is never sent.
//!
//! The tools live by subject (`repos`, `issues`, `pulls`, `search`); what
//! they share is the REST client (`client`), the path building that keeps
//! arguments inside their segment (`paths`), and the mapping of GitHub's
//! refusals to tool errors (`errors`).

mod client;
mod errors;
pub mod issues;
mod paths;
pub mod pulls;
pub mod repos;
pub mod search;

pub(crate) use client::{MAX_TEXT, get, get_json, send_json, success};
pub(crate) use paths::{branch_name, branch_ref_path, file_path, repo_path};

use rmcp::model::CallToolResult;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::mcp::GrantCtx;

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
    match get_json(state, grant, "/user", &[]).await {
        Ok(answer) => answer.into_result(|body| body),
        Err(result) => result,
    }
}

pub async fn list_repos(
    state: &AppState,
    grant: &GrantCtx,
    args: &ListReposArgs,
) -> CallToolResult {
    let (per_page, page) = paging(args.per_page, args.page);
    let query = [
        ("per_page", per_page.as_str()),
        ("page", page.as_str()),
        ("sort", "updated"),
    ];
    match get_json(state, grant, "/user/repos", &query).await {
        Ok(answer) => answer.into_list(repos::summarize_repo),
        Err(result) => result,
    }
}

/// `per_page` (1..=100, default 30) and `page` (from 1), as query values.
pub(crate) fn paging(per_page: Option<u32>, page: Option<u32>) -> (String, String) {
    (
        per_page.unwrap_or(30).clamp(1, 100).to_string(),
        page.unwrap_or(1).max(1).to_string(),
    )
}

/// A short projection of a GitHub object: only the named fields.
pub(crate) fn pick(value: &Value, fields: &[&str]) -> Value {
    let mut out = serde_json::Map::new();
    for field in fields {
        out.insert(
            (*field).to_string(),
            value.get(*field).cloned().unwrap_or(Value::Null),
        );
    }
    Value::Object(out)
}

/// The `login` of a GitHub user object.
pub(crate) fn login(user: Option<&Value>) -> Value {
    user.and_then(|u| u.get("login"))
        .cloned()
        .unwrap_or(json!(null))
}
