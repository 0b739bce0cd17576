//! Repositories: one repository, a file's content, the branches; and the
//! writes: a new branch, a file created or updated by a commit.

use base64::Engine;
use rmcp::model::CallToolResult;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    MAX_TEXT, branch_name, branch_ref_path, file_path, get_json, login, paging, pick, repo_path,
    send_json, success,
};
use crate::app::AppState;
use crate::mcp::GrantCtx;
use crate::mcp::server::tool_error;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RepoArgs {
    /// Account or organization that owns the repository (e.g. `octocat`).
    pub owner: String,
    /// Repository name (e.g. `hello-world`).
    pub repo: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReadFileArgs {
    /// Account or organization that owns the repository.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// File path inside the repository, e.g. `src/main.rs`.
    pub path: String,
    /// Branch, tag or commit SHA to read from (default: the default branch).
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListBranchesArgs {
    /// Account or organization that owns the repository.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// Results per page, 1 to 100 (default 30).
    pub per_page: Option<u32>,
    /// Page number, starting at 1 (default 1).
    pub page: Option<u32>,
}

pub async fn get_repo(state: &AppState, grant: &GrantCtx, args: &RepoArgs) -> CallToolResult {
    let path = match repo_path(&args.owner, &args.repo) {
        Ok(path) => path,
        Err(refused) => return refused,
    };
    match get_json(state, grant, &path, &[]).await {
        Ok(answer) => answer.into_result(|repo| {
            let mut out = summarize_repo(&repo);
            for field in [
                "fork",
                "archived",
                "visibility",
                "language",
                "topics",
                "stargazers_count",
                "forks_count",
                "open_issues_count",
                "pushed_at",
            ] {
                out[field] = repo.get(field).cloned().unwrap_or(Value::Null);
            }
            out["owner"] = login(repo.get("owner"));
            out
        }),
        Err(result) => result,
    }
}

pub(super) fn summarize_repo(repo: &Value) -> Value {
    pick(
        repo,
        &[
            "full_name",
            "private",
            "description",
            "html_url",
            "default_branch",
            "updated_at",
        ],
    )
}

/// The contents API: a file comes as base64 `content`, a directory as a
/// list of entries; files over 1 MB come without content.
pub async fn read_file(state: &AppState, grant: &GrantCtx, args: &ReadFileArgs) -> CallToolResult {
    let path = match repo_path(&args.owner, &args.repo)
        .and_then(|repo| Ok(format!("{repo}/contents{}", file_path(&args.path)?)))
    {
        Ok(path) => path,
        Err(refused) => return refused,
    };
    let query: Vec<(&str, &str)> = args.git_ref.iter().map(|r| ("ref", r.as_str())).collect();
    let answer = match get_json(state, grant, &path, &query).await {
        Ok(answer) => answer,
        Err(result) => return result,
    };
    let body = &answer.body;
    if let Value::Array(entries) = body {
        let names: Vec<String> = entries
            .iter()
            .map(|e| {
                let name = e.get("name").and_then(Value::as_str).unwrap_or("?");
                match e.get("type").and_then(Value::as_str) {
                    Some("dir") => format!("{name}/"),
                    _ => name.to_string(),
                }
            })
            .collect();
        return tool_error(format!(
            "{} is a directory, not a file; its entries: {}",
            args.path,
            names.join(", ")
        ));
    }
    let kind = body.get("type").and_then(Value::as_str).unwrap_or("?");
    if kind != "file" {
        return tool_error(format!("{} is a {kind}, not a file", args.path));
    }
    let size = body.get("size").and_then(Value::as_u64).unwrap_or(0);
    if size > MAX_TEXT as u64 {
        return tool_error(format!(
            "{} is {size} bytes, over this tool's {} KiB limit",
            args.path,
            MAX_TEXT / 1024
        ));
    }
    let encoded: String = body
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return tool_error("GitHub's file content is not valid base64");
    };
    if bytes.len() > MAX_TEXT {
        return tool_error(format!(
            "{} is over this tool's {} KiB limit",
            args.path,
            MAX_TEXT / 1024
        ));
    }
    let Ok(text) = String::from_utf8(bytes) else {
        return tool_error(format!(
            "{} is a binary file ({size} bytes); only text files are shown",
            args.path
        ));
    };
    let result = json!({
        "path": body.get("path"),
        "sha": body.get("sha"),
        "size": size,
        "html_url": body.get("html_url"),
        "content": text,
    });
    success(result.to_string(), answer.rate_remaining)
}

pub async fn list_branches(
    state: &AppState,
    grant: &GrantCtx,
    args: &ListBranchesArgs,
) -> CallToolResult {
    let path = match repo_path(&args.owner, &args.repo) {
        Ok(repo) => format!("{repo}/branches"),
        Err(refused) => return refused,
    };
    let (per_page, page) = paging(args.per_page, args.page);
    let query = [("per_page", per_page.as_str()), ("page", page.as_str())];
    match get_json(state, grant, &path, &query).await {
        Ok(answer) => answer.into_list(|branch| {
            json!({
                "name": branch.get("name"),
                "sha": branch.get("commit").and_then(|c| c.get("sha")),
                "protected": branch.get("protected"),
            })
        }),
        Err(result) => result,
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateBranchArgs {
    /// Account or organization that owns the repository.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// The new branch's name, e.g. `fix/typo`.
    pub branch: String,
    /// The branch to start from (default: the repository's default branch).
    pub from: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PutFileArgs {
    /// Account or organization that owns the repository.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// File path inside the repository, e.g. `docs/guide.md`.
    pub path: String,
    /// The file's new content (text).
    pub content: String,
    /// The commit message.
    pub message: String,
    /// The branch to commit to (default: the default branch).
    pub branch: Option<String>,
    /// To update an existing file: the blob SHA it has now (as
    /// `github_read_file` or a previous write reports it). Leave out to
    /// create a new file.
    pub sha: Option<String>,
}

/// A branch from `from` (or the default branch): its head SHA, then a new
/// ref pointing there.
pub async fn create_branch(
    state: &AppState,
    grant: &GrantCtx,
    args: &CreateBranchArgs,
) -> CallToolResult {
    let checked = repo_path(&args.owner, &args.repo).and_then(|repo| {
        branch_name("branch", &args.branch)?;
        if let Some(from) = &args.from {
            branch_name("from", from)?;
        }
        Ok(repo)
    });
    let repo = match checked {
        Ok(repo) => repo,
        Err(refused) => return refused,
    };
    let from = match &args.from {
        Some(from) => from.clone(),
        None => match get_json(state, grant, &repo, &[]).await {
            Ok(answer) => match answer.body.get("default_branch").and_then(Value::as_str) {
                Some(branch) => branch.to_string(),
                None => return tool_error("GitHub did not say which branch is the default"),
            },
            Err(result) => return result,
        },
    };
    let ref_path = match branch_ref_path(&from) {
        Ok(path) => format!("{repo}/git/ref{path}"),
        Err(refused) => return refused,
    };
    let base = match get_json(state, grant, &ref_path, &[]).await {
        Ok(answer) => answer.body,
        Err(result) => return result,
    };
    let Some(sha) = base.pointer("/object/sha").and_then(Value::as_str) else {
        return tool_error(format!("GitHub did not give the head commit of {from:?}"));
    };
    let body = json!({"ref": format!("refs/heads/{}", args.branch), "sha": sha});
    let path = format!("{repo}/git/refs");
    match send_json(state, grant, reqwest::Method::POST, &path, &body).await {
        Ok(answer) => answer.into_result(|created| {
            json!({
                "branch": args.branch,
                "from": from,
                "sha": created.pointer("/object/sha"),
            })
        }),
        Err(result) => result,
    }
}

/// A commit that creates the file, or updates it when `sha` names the
/// content it replaces (GitHub refuses a stale one with 409).
pub async fn put_file(state: &AppState, grant: &GrantCtx, args: &PutFileArgs) -> CallToolResult {
    let checked = repo_path(&args.owner, &args.repo).and_then(|repo| {
        if let Some(branch) = &args.branch {
            branch_name("branch", branch)?;
        }
        Ok(format!("{repo}/contents{}", file_path(&args.path)?))
    });
    let path = match checked {
        Ok(path) => path,
        Err(refused) => return refused,
    };
    let mut body = json!({
        "message": args.message,
        "content": base64::engine::general_purpose::STANDARD.encode(args.content.as_bytes()),
    });
    if let Some(branch) = &args.branch {
        body["branch"] = json!(branch);
    }
    if let Some(sha) = &args.sha {
        body["sha"] = json!(sha);
    }
    match send_json(state, grant, reqwest::Method::PUT, &path, &body).await {
        Ok(answer) => answer.into_result(|written| {
            json!({
                "path": written.pointer("/content/path"),
                "sha": written.pointer("/content/sha"),
                "html_url": written.pointer("/content/html_url"),
                "commit": written.pointer("/commit/sha"),
                "commit_url": written.pointer("/commit/html_url"),
            })
        }),
        Err(result) => result,
    }
}
