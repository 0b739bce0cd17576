//! Pull requests: a repository's list, one pull request's diff, and a new
//! pull request.

use rmcp::model::CallToolResult;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::issues::{IssueArgs, ListByStateArgs, list_by_state};
use super::{MAX_TEXT, branch_name, get, login, pick, repo_path, send_json, success};
use crate::app::AppState;
use crate::mcp::GrantCtx;
use crate::mcp::server::tool_error;

pub async fn list_pull_requests(
    state: &AppState,
    grant: &GrantCtx,
    args: &ListByStateArgs,
) -> CallToolResult {
    list_by_state(state, grant, args, "pulls", summarize_pull).await
}

fn summarize_pull(pull: &Value) -> Value {
    let mut out = pick(
        pull,
        &[
            "number",
            "title",
            "state",
            "draft",
            "created_at",
            "updated_at",
            "merged_at",
            "html_url",
        ],
    );
    out["user"] = login(pull.get("user"));
    out["head"] = pull
        .get("head")
        .and_then(|h| h.get("ref"))
        .cloned()
        .unwrap_or(Value::Null);
    out["base"] = pull
        .get("base")
        .and_then(|b| b.get("ref"))
        .cloned()
        .unwrap_or(Value::Null);
    out
}

/// The unified diff, as GitHub renders it for `application/vnd.github.diff`.
pub async fn get_pull_request_diff(
    state: &AppState,
    grant: &GrantCtx,
    args: &IssueArgs,
) -> CallToolResult {
    let path = match repo_path(&args.owner, &args.repo) {
        Ok(repo) => format!("{repo}/pulls/{}", args.number),
        Err(refused) => return refused,
    };
    let answer = match get(
        state,
        grant,
        &path,
        &[],
        "application/vnd.github.diff",
        MAX_TEXT,
    )
    .await
    {
        Ok(answer) => answer,
        Err(result) => return result,
    };
    // GitHub's diffs are UTF-8 unless a file is not; show what we can.
    let diff = String::from_utf8_lossy(&answer.body).into_owned();
    success(diff, answer.rate_remaining)
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct OpenPullArgs {
    /// Account or organization that owns the repository.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// The pull request's title.
    pub title: String,
    /// The branch with the changes; `owner:branch` for a fork's branch.
    pub head: String,
    /// The branch to merge into, e.g. `main`.
    pub base: String,
    /// The pull request's description (Markdown).
    pub body: Option<String>,
}

pub async fn open_pull_request(
    state: &AppState,
    grant: &GrantCtx,
    args: &OpenPullArgs,
) -> CallToolResult {
    let checked = repo_path(&args.owner, &args.repo).and_then(|repo| {
        branch_name("base", &args.base)?;
        // `owner:branch` names a fork's branch; the owner follows the
        // account name rule.
        match args.head.split_once(':') {
            Some((owner, branch)) => {
                repo_path(owner, &args.repo)?;
                branch_name("head", branch)?;
            }
            None => {
                branch_name("head", &args.head)?;
            }
        }
        Ok(format!("{repo}/pulls"))
    });
    let path = match checked {
        Ok(path) => path,
        Err(refused) => return refused,
    };
    if args.title.trim().is_empty() {
        return tool_error("a pull request needs a title");
    }
    let mut body = json!({"title": args.title, "head": args.head, "base": args.base});
    if let Some(text) = &args.body {
        body["body"] = json!(text);
    }
    match send_json(state, grant, reqwest::Method::POST, &path, &body).await {
        Ok(answer) => answer.into_result(|pull| summarize_pull(&pull)),
        Err(result) => result,
    }
}
