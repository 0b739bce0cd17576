//! Search: issues and pull requests, and code, with GitHub's query syntax.

use rmcp::model::CallToolResult;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::issues::summarize_issue;
use super::{get_json, paging, success};
use crate::app::AppState;
use crate::mcp::GrantCtx;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchArgs {
    /// GitHub search syntax, e.g. `crash repo:octocat/hello-world is:open`.
    pub query: String,
    /// Results per page, 1 to 100 (default 30).
    pub per_page: Option<u32>,
    /// Page number, starting at 1 (default 1).
    pub page: Option<u32>,
}

pub async fn search_issues(
    state: &AppState,
    grant: &GrantCtx,
    args: &SearchArgs,
) -> CallToolResult {
    search(state, grant, "/search/issues", args, summarize_issue).await
}

pub async fn search_code(state: &AppState, grant: &GrantCtx, args: &SearchArgs) -> CallToolResult {
    search(state, grant, "/search/code", args, summarize_code).await
}

fn summarize_code(item: &Value) -> Value {
    json!({
        "repository": item.get("repository").and_then(|r| r.get("full_name")),
        "path": item.get("path"),
        "name": item.get("name"),
        "sha": item.get("sha"),
        "html_url": item.get("html_url"),
    })
}

/// `{total_count, incomplete_results, items}`, items reshaped.
async fn search(
    state: &AppState,
    grant: &GrantCtx,
    path: &str,
    args: &SearchArgs,
    shape: fn(&Value) -> Value,
) -> CallToolResult {
    let (per_page, page) = paging(args.per_page, args.page);
    let query = [
        ("q", args.query.as_str()),
        ("per_page", per_page.as_str()),
        ("page", page.as_str()),
    ];
    let answer = match get_json(state, grant, path, &query).await {
        Ok(answer) => answer,
        Err(result) => return result,
    };
    let items: Vec<Value> = answer
        .body
        .get("items")
        .and_then(Value::as_array)
        .map(|items| items.iter().map(shape).collect())
        .unwrap_or_default();
    let out = json!({
        "total_count": answer.body.get("total_count"),
        "incomplete_results": answer.body.get("incomplete_results"),
        "items": items,
    });
    success(out.to_string(), answer.rate_remaining)
}
