//! Issues: a repository's list, one issue with its comments, and the
//! writes: a new issue, a comment on an issue or pull request.

use rmcp::model::CallToolResult;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{get_json, login, paging, pick, repo_path, send_json, success};
use crate::app::AppState;
use crate::mcp::GrantCtx;

/// Which issues or pull requests to list.
#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    Open,
    Closed,
    All,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Closed => "closed",
            State::All => "all",
        }
    }
}

/// A repository's issues or pull requests, by state, a page at a time.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListByStateArgs {
    /// Account or organization that owns the repository.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// `open` (default), `closed` or `all`.
    pub state: Option<State>,
    /// Results per page, 1 to 100 (default 30).
    pub per_page: Option<u32>,
    /// Page number, starting at 1 (default 1).
    pub page: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct IssueArgs {
    /// Account or organization that owns the repository.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// The issue (or pull request) number.
    pub number: u64,
}

pub async fn list_issues(
    state: &AppState,
    grant: &GrantCtx,
    args: &ListByStateArgs,
) -> CallToolResult {
    list_by_state(state, grant, args, "issues", summarize_issue).await
}

/// `GET /repos/{owner}/{repo}/{what}?state=…` with paging, each item
/// summarized.
pub(super) async fn list_by_state(
    state: &AppState,
    grant: &GrantCtx,
    args: &ListByStateArgs,
    what: &str,
    summarize: fn(&Value) -> Value,
) -> CallToolResult {
    let path = match repo_path(&args.owner, &args.repo) {
        Ok(repo) => format!("{repo}/{what}"),
        Err(refused) => return refused,
    };
    let (per_page, page) = paging(args.per_page, args.page);
    let query = [
        ("state", args.state.unwrap_or_default().as_str()),
        ("per_page", per_page.as_str()),
        ("page", page.as_str()),
    ];
    match get_json(state, grant, &path, &query).await {
        Ok(answer) => answer.into_list(summarize),
        Err(result) => result,
    }
}

/// An issue as the list and search tools show it. GitHub lists pull
/// requests among issues; `is_pull_request` tells them apart.
pub(super) fn summarize_issue(issue: &Value) -> Value {
    let mut out = pick(
        issue,
        &[
            "number",
            "title",
            "state",
            "comments",
            "created_at",
            "updated_at",
            "html_url",
        ],
    );
    out["user"] = login(issue.get("user"));
    out["labels"] = labels(issue);
    out["is_pull_request"] = json!(issue.get("pull_request").is_some());
    out
}

fn labels(issue: &Value) -> Value {
    issue
        .get("labels")
        .and_then(Value::as_array)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|l| l.get("name").or(Some(l)).cloned())
                .collect()
        })
        .unwrap_or(json!([]))
}

/// The issue, then its first 100 comments (a second request).
pub async fn get_issue(state: &AppState, grant: &GrantCtx, args: &IssueArgs) -> CallToolResult {
    let path = match repo_path(&args.owner, &args.repo) {
        Ok(repo) => format!("{repo}/issues/{}", args.number),
        Err(refused) => return refused,
    };
    let issue = match get_json(state, grant, &path, &[]).await {
        Ok(answer) => answer.body,
        Err(result) => return result,
    };
    let comments_path = format!("{path}/comments");
    let comments = match get_json(state, grant, &comments_path, &[("per_page", "100")]).await {
        Ok(answer) => answer,
        Err(result) => return result,
    };
    let mut out = summarize_issue(&issue);
    out["body"] = issue.get("body").cloned().unwrap_or(Value::Null);
    out["closed_at"] = issue.get("closed_at").cloned().unwrap_or(Value::Null);
    out["comment_list"] = comments
        .body
        .as_array()
        .map(|list| {
            list.iter()
                .map(|c| {
                    json!({
                        "id": c.get("id"),
                        "user": login(c.get("user")),
                        "created_at": c.get("created_at"),
                        "body": c.get("body"),
                    })
                })
                .collect()
        })
        .unwrap_or(json!([]));
    success(out.to_string(), comments.rate_remaining)
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateIssueArgs {
    /// Account or organization that owns the repository.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// The issue's title.
    pub title: String,
    /// The issue's text (Markdown).
    pub body: Option<String>,
    /// Label names to put on the issue (labels must already exist to apply
    /// them without push access).
    pub labels: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CommentArgs {
    /// Account or organization that owns the repository.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// The issue (or pull request) number.
    pub number: u64,
    /// The comment's text (Markdown).
    pub body: String,
}

pub async fn create_issue(
    state: &AppState,
    grant: &GrantCtx,
    args: &CreateIssueArgs,
) -> CallToolResult {
    let path = match repo_path(&args.owner, &args.repo) {
        Ok(repo) => format!("{repo}/issues"),
        Err(refused) => return refused,
    };
    let mut body = json!({"title": args.title});
    if let Some(text) = &args.body {
        body["body"] = json!(text);
    }
    if let Some(labels) = &args.labels {
        body["labels"] = json!(labels);
    }
    match send_json(state, grant, reqwest::Method::POST, &path, &body).await {
        Ok(answer) => answer.into_result(|issue| summarize_issue(&issue)),
        Err(result) => result,
    }
}

pub async fn comment(state: &AppState, grant: &GrantCtx, args: &CommentArgs) -> CallToolResult {
    let path = match repo_path(&args.owner, &args.repo) {
        Ok(repo) => format!("{repo}/issues/{}/comments", args.number),
        Err(refused) => return refused,
    };
    let body = json!({"body": args.body});
    match send_json(state, grant, reqwest::Method::POST, &path, &body).await {
        Ok(answer) => answer.into_result(|c| {
            json!({
                "id": c.get("id"),
                "html_url": c.get("html_url"),
                "user": login(c.get("user")),
                "created_at": c.get("created_at"),
            })
        }),
        Err(result) => result,
    }
}
