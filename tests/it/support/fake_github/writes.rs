//! The fake's write endpoints, in GitHub's REST wire format, each changing
//! what the read endpoints answer: a created issue is listed and readable,
//! a comment joins its issue's comments, a created branch is listed, a put
//! file is readable through the contents API and listed in its directory (a
//! stale `sha` gets 409), a created pull request is listed with the diff of
//! its head against its base. Refusals as GitHub words them: 404 for an
//! unknown repository, issue or branch, 422 for an existing branch, a
//! missing title, a second open pull request for the same head and base, or
//! one with no commits between head and base.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::pulls::all_pulls;
use super::repos::{admit, admit_repo, files, issue_json, known, owner_json, sha};
use super::{FakeState, LOGIN, Shared, diff};

/// The base branches every repository has: (name, protected).
pub(super) const BASE_BRANCHES: [(&str, bool); 3] =
    [("main", true), ("feature/x", false), ("fix/typo", false)];

/// What the write endpoints changed.
#[derive(Default)]
pub(super) struct Written {
    /// Created issues and pull requests (as issues): (repo, issue).
    pub issues: Vec<(String, Value)>,
    /// Created comments: (repo, issue number, comment).
    pub comments: Vec<(String, u64, Value)>,
    /// Created branches: (repo, name).
    pub branches: Vec<(String, String)>,
    /// Branch heads moved by a write (or set at creation): (repo, branch) → sha.
    pub heads: HashMap<(String, String), String>,
    /// Put files: (repo, branch, path) → content.
    pub files: HashMap<(String, String, String), String>,
    /// Created pull requests: (repo, pull).
    pub pulls: Vec<(String, Value)>,
}

fn created(body: Value) -> Response {
    (
        StatusCode::CREATED,
        [
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-remaining", "4998"),
            ("x-ratelimit-resource", "core"),
        ],
        Json(body),
    )
        .into_response()
}

fn refusal(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn not_found() -> Response {
    refusal(
        StatusCode::NOT_FOUND,
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}),
    )
}

fn validation_failed(errors: Value) -> Response {
    refusal(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"message": "Validation Failed", "errors": errors,
               "documentation_url": "https://docs.github.com/rest", "status": "422"}),
    )
}

/// An issue (fixture or created), as `GET .../issues/{number}` answers it.
pub(super) fn find_issue(s: &FakeState, repo: &str, number: u64) -> Option<Value> {
    let issue = issue_json(repo, number).or_else(|| {
        s.written
            .issues
            .iter()
            .find(|(r, i)| r == repo && i["number"] == number)
            .map(|(_, i)| i.clone())
    })?;
    Some(with_comment_count(s, repo, issue))
}

fn with_comment_count(s: &FakeState, repo: &str, mut issue: Value) -> Value {
    let number = issue["number"].as_u64().unwrap_or(0);
    let base = issue["comments"].as_u64().unwrap_or(0);
    let added = s
        .written
        .comments
        .iter()
        .filter(|(r, n, _)| r == repo && *n == number)
        .count() as u64;
    issue["comments"] = json!(base + added);
    issue
}

/// Created issues (and pull requests as issues) of `repo`.
pub(super) fn created_issues(s: &FakeState, repo: &str) -> Vec<Value> {
    s.written
        .issues
        .iter()
        .filter(|(r, _)| r == repo)
        .map(|(_, i)| with_comment_count(s, repo, i.clone()))
        .collect()
}

/// Created pull requests of `repo`.
pub(super) fn created_pulls(s: &FakeState, repo: &str) -> Vec<Value> {
    s.written
        .pulls
        .iter()
        .filter(|(r, _)| r == repo)
        .map(|(_, p)| p.clone())
        .collect()
}

/// Created comments on an issue.
pub(super) fn created_comments(s: &FakeState, repo: &str, number: u64) -> Vec<Value> {
    s.written
        .comments
        .iter()
        .filter(|(r, n, _)| r == repo && *n == number)
        .map(|(_, _, c)| c.clone())
        .collect()
}

/// Every branch of `repo` with its head: the base ones, then created ones.
pub(super) fn branch_heads(s: &FakeState, repo: &str) -> Vec<(String, String, bool)> {
    let head = |name: &str| {
        s.written
            .heads
            .get(&(repo.to_string(), name.to_string()))
            .cloned()
            .unwrap_or_else(|| sha(name.as_bytes()))
    };
    BASE_BRANCHES
        .iter()
        .map(|(name, protected)| (name.to_string(), head(name), *protected))
        .chain(
            s.written
                .branches
                .iter()
                .filter(|(r, _)| r == repo)
                .map(|(_, name)| (name.clone(), head(name), false)),
        )
        .collect()
}

fn branch_head(s: &FakeState, repo: &str, branch: &str) -> Option<String> {
    branch_heads(s, repo)
        .into_iter()
        .find(|(name, _, _)| name == branch)
        .map(|(_, head, _)| head)
}

/// A branch's files, by path: the fixture's (which `feature/x` changes in
/// the README) with what was put there over them; `None` for a branch that
/// does not exist.
pub(super) fn files_on(s: &FakeState, repo: &str, branch: &str) -> Option<Vec<(String, String)>> {
    branch_head(s, repo, branch)?;
    let mut tree: Vec<(String, String)> = files()
        .into_iter()
        .map(|(path, content)| (path.to_string(), content))
        .collect();
    if branch == "feature/x" {
        tree[0].1 = "# repo-1 on feature/x\n".to_string();
    }
    for ((r, b, path), content) in &s.written.files {
        if r != repo || b != branch {
            continue;
        }
        match tree.iter_mut().find(|(p, _)| p == path) {
            Some(file) => file.1 = content.clone(),
            None => tree.push((path.clone(), content.clone())),
        }
    }
    tree.sort();
    Some(tree)
}

/// A file's content on a branch.
pub(super) fn file_on(s: &FakeState, repo: &str, branch: &str, path: &str) -> Option<String> {
    files_on(s, repo, branch)?
        .into_iter()
        .find(|(p, _)| p == path)
        .map(|(_, content)| content)
}

/// A created pull request's diff: each file of its head that differs from
/// its base.
pub(super) fn pull_diff(s: &FakeState, repo: &str, head: &str, base: &str) -> String {
    let (Some(head), Some(base)) = (files_on(s, repo, head), files_on(s, repo, base)) else {
        return String::new();
    };
    head.iter()
        .filter_map(|(path, content)| {
            let old = base
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, c)| c.as_str());
            (old != Some(content.as_str())).then(|| diff::file_diff(path, old, content))
        })
        .collect()
}

/// Created issues and pull requests share one number sequence per
/// repository, after the fixture's.
fn next_number(s: &FakeState, repo: &str) -> u64 {
    let fixtures = (1..=100).filter(|n| issue_json(repo, *n).is_some()).count() as u64;
    fixtures + s.written.issues.iter().filter(|(r, _)| r == repo).count() as u64 + 1
}

fn issue_object(repo: &str, number: u64, title: &str, body: &Value, labels: Value) -> Value {
    json!({
        "id": 6000 + number,
        "node_id": format!("I_kwDO{number:04}"),
        "url": format!("https://api.github.com/repos/{LOGIN}/{repo}/issues/{number}"),
        "repository_url": format!("https://api.github.com/repos/{LOGIN}/{repo}"),
        "html_url": format!("https://github.com/{LOGIN}/{repo}/issues/{number}"),
        "number": number,
        "state": "open",
        "title": title,
        "body": body,
        "user": owner_json(),
        "labels": labels,
        "comments": 0,
        "created_at": "2026-11-27T22:00:00Z",
        "updated_at": "2026-11-27T22:00:00Z",
        "closed_at": null,
    })
}

/// `POST /repos/{owner}/{repo}/issues`.
pub(super) async fn create_issue(
    State(state): Shared,
    headers: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = admit_repo(&state, &headers, &owner, &repo) {
        return refused;
    }
    let mut s = state.lock().unwrap();
    let Some(title) = body["title"].as_str().filter(|t| !t.is_empty()) else {
        return validation_failed(
            json!([{"resource": "Issue", "code": "missing_field", "field": "title"}]),
        );
    };
    let labels: Vec<Value> = body["labels"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .enumerate()
                .map(|(i, n)| json!({"id": 100 + i, "name": n, "color": "ededed"}))
                .collect()
        })
        .unwrap_or_default();
    let number = next_number(&s, &repo);
    let issue = issue_object(&repo, number, title, &body["body"], json!(labels));
    s.counters.writes += 1;
    s.written.issues.push((repo, issue.clone()));
    created(issue)
}

/// `POST /repos/{owner}/{repo}/issues/{number}/comments`.
pub(super) async fn create_comment(
    State(state): Shared,
    headers: HeaderMap,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = admit(&state, &headers) {
        return refused;
    }
    let mut s = state.lock().unwrap();
    if !known(&owner, &repo) || find_issue(&s, &repo, number).is_none() {
        return not_found();
    }
    let Some(text) = body["body"].as_str().filter(|t| !t.is_empty()) else {
        return validation_failed(
            json!([{"resource": "IssueComment", "code": "missing_field", "field": "body"}]),
        );
    };
    let id = 8000 + s.written.comments.len() as u64;
    let comment = json!({
        "id": id,
        "node_id": format!("IC_kwDO{id}"),
        "html_url": format!("https://github.com/{LOGIN}/{repo}/issues/{number}#issuecomment-{id}"),
        "body": text,
        "user": owner_json(),
        "created_at": "2026-11-27T22:00:00Z",
        "updated_at": "2026-11-27T22:00:00Z",
        "author_association": "OWNER",
    });
    s.counters.writes += 1;
    s.written.comments.push((repo, number, comment.clone()));
    created(comment)
}

fn ref_object(repo: &str, branch: &str, head: &str) -> Value {
    json!({
        "ref": format!("refs/heads/{branch}"),
        "node_id": format!("REF_{}", &head[..8]),
        "url": format!("https://api.github.com/repos/{LOGIN}/{repo}/git/refs/heads/{branch}"),
        "object": {
            "sha": head,
            "type": "commit",
            "url": format!("https://api.github.com/repos/{LOGIN}/{repo}/git/commits/{head}"),
        },
    })
}

/// `GET /repos/{owner}/{repo}/git/ref/heads/{branch}`.
pub(super) async fn get_ref(
    State(state): Shared,
    headers: HeaderMap,
    Path((owner, repo, reference)): Path<(String, String, String)>,
) -> Response {
    if let Some(refused) = admit(&state, &headers) {
        return refused;
    }
    let s = state.lock().unwrap();
    let head = reference
        .strip_prefix("heads/")
        .and_then(|branch| Some((branch, branch_head(&s, &repo, branch)?)));
    match head {
        Some((branch, head)) if known(&owner, &repo) => {
            super::with_rate_limit(ref_object(&repo, branch, &head))
        }
        _ => not_found(),
    }
}

/// `POST /repos/{owner}/{repo}/git/refs`.
pub(super) async fn create_ref(
    State(state): Shared,
    headers: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = admit_repo(&state, &headers, &owner, &repo) {
        return refused;
    }
    let mut s = state.lock().unwrap();
    let (Some(reference), Some(head)) = (body["ref"].as_str(), body["sha"].as_str()) else {
        return validation_failed(json!([{"resource": "Ref", "code": "missing_field"}]));
    };
    let Some(branch) = reference.strip_prefix("refs/heads/") else {
        return refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "Reference name must start with 'refs/'", "status": "422"}),
        );
    };
    let heads = branch_heads(&s, &repo);
    if heads.iter().any(|(name, _, _)| name == branch) {
        return refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "Reference already exists",
                   "documentation_url": "https://docs.github.com/rest/git/refs#create-a-reference",
                   "status": "422"}),
        );
    }
    if !heads.iter().any(|(_, sha, _)| sha == head) {
        return refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "Object does not exist", "status": "422"}),
        );
    }
    s.counters.writes += 1;
    s.written.branches.push((repo.clone(), branch.to_string()));
    s.written
        .heads
        .insert((repo.clone(), branch.to_string()), head.to_string());
    created(ref_object(&repo, branch, head))
}

/// `PUT /repos/{owner}/{repo}/contents/{path}`: create, or update when the
/// `sha` matches the file's; GitHub answers 409 for a stale one and 422
/// when a file exists and no `sha` came.
pub(super) async fn put_file(
    State(state): Shared,
    headers: HeaderMap,
    Path((owner, repo, path)): Path<(String, String, String)>,
    Json(body): Json<Value>,
) -> Response {
    use base64::Engine;
    if let Some(refused) = admit_repo(&state, &headers, &owner, &repo) {
        return refused;
    }
    let mut s = state.lock().unwrap();
    let branch = body["branch"].as_str().unwrap_or("main").to_string();
    let Some(old_head) = branch_head(&s, &repo, &branch) else {
        return refusal(
            StatusCode::NOT_FOUND,
            json!({"message": format!("Branch {branch} not found"), "status": "404"}),
        );
    };
    let (Some(message), Some(encoded)) = (body["message"].as_str(), body["content"].as_str())
    else {
        return validation_failed(json!([{"resource": "Commit", "code": "missing_field"}]));
    };
    let Ok(content) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "content is not valid Base64", "status": "422"}),
        );
    };
    let content = String::from_utf8_lossy(&content).into_owned();
    let existing = file_on(&s, &repo, &branch, &path);
    match (
        existing.as_deref().map(|c| sha(c.as_bytes())),
        body["sha"].as_str(),
    ) {
        (Some(current), Some(given)) if current != given => {
            return refusal(
                StatusCode::CONFLICT,
                json!({"message": format!("{path} does not match {given}"),
                       "documentation_url": "https://docs.github.com/rest/repos/contents#create-or-update-file-contents",
                       "status": "409"}),
            );
        }
        (Some(_), None) => {
            return refusal(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"message": "Invalid request.\n\n\"sha\" wasn't supplied.",
                       "documentation_url": "https://docs.github.com/rest/repos/contents#create-or-update-file-contents",
                       "status": "422"}),
            );
        }
        _ => {}
    }
    let was_new = existing.is_none();
    let commit = sha(format!("{old_head}{path}{content}").as_bytes());
    s.counters.writes += 1;
    s.written.files.insert(
        (repo.clone(), branch.clone(), path.clone()),
        content.clone(),
    );
    s.written
        .heads
        .insert((repo.clone(), branch.clone()), commit.clone());
    let name = path.rsplit('/').next().unwrap_or(&path);
    let answer = json!({
        "content": {
            "name": name,
            "path": path,
            "sha": sha(content.as_bytes()),
            "size": content.len(),
            "url": format!("https://api.github.com/repos/{LOGIN}/{repo}/contents/{path}?ref={branch}"),
            "html_url": format!("https://github.com/{LOGIN}/{repo}/blob/{branch}/{path}"),
            "type": "file",
        },
        "commit": {
            "sha": commit,
            "message": message,
            "html_url": format!("https://github.com/{LOGIN}/{repo}/commit/{commit}"),
            "parents": [{"sha": old_head}],
        },
    });
    if was_new {
        created(answer)
    } else {
        super::with_rate_limit(answer)
    }
}

/// `POST /repos/{owner}/{repo}/pulls`: 422 when head or base is not a
/// branch, when an open pull request from head to base exists already, or
/// when head has no commits that base lacks.
pub(super) async fn create_pull(
    State(state): Shared,
    headers: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = admit_repo(&state, &headers, &owner, &repo) {
        return refused;
    }
    let mut s = state.lock().unwrap();
    let field = |name: &str| body[name].as_str().unwrap_or_default().to_string();
    let (title, head, base) = (field("title"), field("head"), field("base"));
    let head_branch = head.rsplit(':').next().unwrap_or_default().to_string();
    let (Some(head_sha), Some(base_sha)) = (
        branch_head(&s, &repo, &head_branch),
        branch_head(&s, &repo, &base),
    ) else {
        let bad = if branch_head(&s, &repo, &head_branch).is_none() {
            "head"
        } else {
            "base"
        };
        return validation_failed(
            json!([{"resource": "PullRequest", "field": bad, "code": "invalid"}]),
        );
    };
    // One open pull request per head and base.
    let open_already = all_pulls(&s, &repo).iter().any(|p| {
        p["state"] == "open" && p["head"]["ref"] == head_branch.as_str() && p["base"]["ref"] == base
    });
    if open_already {
        let label = if head.contains(':') {
            head.clone()
        } else {
            format!("{LOGIN}:{head}")
        };
        return validation_failed(json!([{"resource": "PullRequest", "code": "custom",
            "message": format!("A pull request already exists for {label}.")}]));
    }
    // A branch whose head is where it was created from (or the base's own
    // head) carries no commits of its own.
    let created_from_base = !s
        .written
        .files
        .keys()
        .any(|(r, b, _)| *r == repo && *b == head_branch);
    if head_sha == base_sha || created_from_base {
        return validation_failed(json!([{"resource": "PullRequest", "code": "custom",
            "message": format!("No commits between {base} and {head_branch}")}]));
    }
    let number = next_number(&s, &repo);
    let mut issue = issue_object(&repo, number, &title, &body["body"], json!([]));
    issue["pull_request"] = json!({
        "url": format!("https://api.github.com/repos/{LOGIN}/{repo}/pulls/{number}"),
        "html_url": format!("https://github.com/{LOGIN}/{repo}/pull/{number}"),
        "merged_at": null,
    });
    let pull = json!({
        "id": 9500 + number,
        "number": number,
        "state": "open",
        "title": title,
        "body": body["body"],
        "user": owner_json(),
        "draft": false,
        "html_url": format!("https://github.com/{LOGIN}/{repo}/pull/{number}"),
        "diff_url": format!("https://github.com/{LOGIN}/{repo}/pull/{number}.diff"),
        "created_at": "2026-11-27T22:00:00Z",
        "updated_at": "2026-11-27T22:00:00Z",
        "merged_at": null,
        "head": {"label": format!("{LOGIN}:{head_branch}"), "ref": head_branch, "sha": head_sha},
        "base": {"label": format!("{LOGIN}:{base}"), "ref": base, "sha": base_sha},
    });
    s.counters.writes += 1;
    s.written.issues.push((repo.clone(), issue));
    s.written.pulls.push((repo, pull.clone()));
    created(pull)
}
