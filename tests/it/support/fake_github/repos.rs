//! The fake's repository endpoints, in GitHub's REST wire format: the
//! fixture user's repositories (`repo-1` has files, branches, issues with
//! comments and pull requests), 404 for anything else, base64 file content
//! wrapped every 60 characters, files over 1 MB without content (`encoding:
//! "none"`), and a 403 once the rate limit is spent (`set_rate_limited`).
//! Pull requests are in `pulls`, search in `search`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::{FakeState, LOGIN, Shared, check_api, with_rate_limit};
use super::{pulls, writes};

/// Repositories that exist; only `repo-1` has issues and pull requests.
pub const REPOS: [&str; 3] = ["repo-1", "repo-2", "repo-3"];
/// A file larger than GitHub sends inline (and than the broker shows).
pub const BIG_FILE: &str = "assets/big.bin";
pub const BIG_FILE_SIZE: u64 = 2 * 1024 * 1024;
/// The pull request whose diff is over the broker's 1 MiB limit.
pub const HUGE_PR: u64 = 4;

/// `repo-1`'s files on `main`: (path, content).
pub fn files() -> Vec<(&'static str, String)> {
    vec![
        ("README.md", "# repo-1\n\nFixture repository 1.\n".to_string()),
        (
            "src/lib.rs",
            "//! The fixture crate.\n\npub fn load_config(path: &str) -> Option<String> {\n    std::fs::read_to_string(path).ok()\n}\n"
                .to_string(),
        ),
        ("docs/guide.md", "# Guide\n\nRun `cargo run`.\n".to_string()),
    ]
}

/// The diff of pull request #3.
pub const DIFF: &str = "diff --git a/src/lib.rs b/src/lib.rs
index 3b18e51..a9c3f2d 100644
--- a/src/lib.rs
+++ b/src/lib.rs
@@ -1,5 +1,9 @@
 //! The fixture crate.
 
 pub fn load_config(path: &str) -> Option<String> {
     std::fs::read_to_string(path).ok()
 }
+
+pub fn default_config() -> String {
+    String::from(\"verbose = false\")
+}
";

pub(super) fn routes() -> Router<Arc<Mutex<FakeState>>> {
    Router::new()
        .route("/repos/{owner}/{repo}", get(repo))
        .route(
            "/repos/{owner}/{repo}/contents/{*path}",
            get(contents).put(writes::put_file),
        )
        .route("/repos/{owner}/{repo}/branches", get(branches))
        .route(
            "/repos/{owner}/{repo}/issues",
            get(issues).post(writes::create_issue),
        )
        .route("/repos/{owner}/{repo}/issues/{number}", get(issue))
        .route(
            "/repos/{owner}/{repo}/issues/{number}/comments",
            get(comments).post(writes::create_comment),
        )
        .route(
            "/repos/{owner}/{repo}/git/ref/{*reference}",
            get(writes::get_ref),
        )
        .route(
            "/repos/{owner}/{repo}/git/refs",
            axum::routing::post(writes::create_ref),
        )
        .route(
            "/repos/{owner}/{repo}/pulls",
            get(pulls::list).post(writes::create_pull),
        )
        .route("/repos/{owner}/{repo}/pulls/{number}", get(pulls::one))
}

pub(super) type Q = Query<HashMap<String, String>>;

/// The REST checks, then the rate limit.
pub(super) fn admit(state: &Arc<Mutex<FakeState>>, headers: &HeaderMap) -> Option<Response> {
    let mut s = state.lock().unwrap();
    if let Some(refused) = check_api(&mut s, headers) {
        return Some(refused);
    }
    if s.rate_limited {
        let reset = (mcp_broker::now_unix() + 1800).to_string();
        return Some(
            (
                StatusCode::FORBIDDEN,
                [
                    ("x-ratelimit-limit", "5000".to_string()),
                    ("x-ratelimit-remaining", "0".to_string()),
                    ("x-ratelimit-used", "5000".to_string()),
                    ("x-ratelimit-reset", reset),
                    ("x-ratelimit-resource", "core".to_string()),
                ],
                axum::Json(json!({
                    "message": "API rate limit exceeded for user ID 4242. If you reach out to GitHub Support for help, please include the request ID 0000:1111:2222 and timestamp 2026-11-27 22:00:00 UTC.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                    "status": "403",
                })),
            )
                .into_response(),
        );
    }
    None
}

pub(super) fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({
            "message": "Not Found",
            "documentation_url": "https://docs.github.com/rest",
            "status": "404",
        })),
    )
        .into_response()
}

/// `admit`, then GitHub's 404 for a repository the fake does not hold.
pub(super) fn admit_repo(
    state: &Arc<Mutex<FakeState>>,
    headers: &HeaderMap,
    owner: &str,
    repo: &str,
) -> Option<Response> {
    admit(state, headers).or_else(|| (!known(owner, repo)).then(not_found))
}

pub(super) fn known(owner: &str, repo: &str) -> bool {
    owner == LOGIN && REPOS.contains(&repo)
}

pub(super) fn page<T: Clone>(items: &[T], q: &HashMap<String, String>) -> Vec<T> {
    let per_page: usize = q.get("per_page").and_then(|v| v.parse().ok()).unwrap_or(30);
    let page: usize = q.get("page").and_then(|v| v.parse().ok()).unwrap_or(1);
    items
        .iter()
        .skip((page.max(1) - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect()
}

pub(super) fn owner_json() -> Value {
    json!({"login": LOGIN, "id": super::USER_ID, "type": "User"})
}

fn repo_json(name: &str) -> Value {
    let i: i64 = name.trim_start_matches("repo-").parse().unwrap_or(0);
    json!({
        "id": 1000 + i,
        "node_id": format!("R_kgDO{i:04}"),
        "name": name,
        "full_name": format!("{LOGIN}/{name}"),
        "private": name == "repo-2",
        "owner": owner_json(),
        "html_url": format!("https://github.com/{LOGIN}/{name}"),
        "description": format!("Fixture repository {i}"),
        "fork": false,
        "url": format!("https://api.github.com/repos/{LOGIN}/{name}"),
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-11-01T00:00:00Z",
        "pushed_at": "2026-11-01T00:00:00Z",
        "stargazers_count": 7,
        "watchers_count": 7,
        "language": "Rust",
        "forks_count": 1,
        "archived": false,
        "open_issues_count": 2,
        "topics": ["fixture"],
        "visibility": if name == "repo-2" { "private" } else { "public" },
        "default_branch": "main",
    })
}

async fn repo(
    State(state): Shared,
    headers: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = admit_repo(&state, &headers, &owner, &repo) {
        return refused;
    }
    with_rate_limit(repo_json(&repo))
}

/// A git-like object id for fixture content.
pub fn sha(content: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(content)[..20]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Base64 with a newline after every 60 characters, as GitHub sends it.
fn github_base64(content: &[u8]) -> String {
    use base64::Engine;
    let flat = base64::engine::general_purpose::STANDARD.encode(content);
    let mut out = String::new();
    for line in flat.as_bytes().chunks(60) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out
}

fn entry(repo: &str, branch: &str, path: &str, kind: &str, size: u64, sha: &str) -> Value {
    let name = path.rsplit('/').next().unwrap();
    let url = format!("https://api.github.com/repos/{LOGIN}/{repo}/contents/{path}?ref={branch}");
    json!({
        "type": kind,
        "size": size,
        "name": name,
        "path": path,
        "sha": sha,
        "url": url,
        "git_url": format!("https://api.github.com/repos/{LOGIN}/{repo}/git/blobs/{sha}"),
        "html_url": format!("https://github.com/{LOGIN}/{repo}/blob/{branch}/{path}"),
        "download_url": if kind == "file" { json!(format!("https://raw.githubusercontent.com/{LOGIN}/{repo}/{branch}/{path}")) } else { Value::Null },
        "_links": {"self": url},
    })
}

/// `GET /repos/{owner}/{repo}/contents/{path}`: a file (base64), or a
/// directory's entries, on the branch `ref` names (default `main`):
/// `feature/x` has a README that differs, files put on a branch are there.
async fn contents(
    State(state): Shared,
    headers: HeaderMap,
    Path((owner, repo, path)): Path<(String, String, String)>,
    Query(q): Q,
) -> Response {
    if let Some(refused) = admit_repo(&state, &headers, &owner, &repo) {
        return refused;
    }
    let path = path.trim_matches('/').to_string();
    let branch = q.get("ref").map(String::as_str).unwrap_or("main");
    let Some(tree) = writes::files_on(&state.lock().unwrap(), &repo, branch) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "No commit found for the ref", "status": "404"})),
        )
            .into_response();
    };
    if path == BIG_FILE {
        let mut big = entry(&repo, branch, BIG_FILE, "file", BIG_FILE_SIZE, &sha(b"big"));
        big["encoding"] = json!("none");
        big["content"] = json!("");
        return with_rate_limit(big);
    }
    let blob = |content: &str| (content.len() as u64, sha(content.as_bytes()));
    if let Some((file, content)) = tree.iter().find(|(p, _)| *p == path) {
        let (size, sha) = blob(content);
        let mut body = entry(&repo, branch, file, "file", size, &sha);
        body["encoding"] = json!("base64");
        body["content"] = json!(github_base64(content.as_bytes()));
        return with_rate_limit(body);
    }
    let prefix = format!("{path}/");
    let mut entries: Vec<Value> = Vec::new();
    let mut dirs: Vec<String> = Vec::new();
    let all = tree
        .iter()
        .map(|(p, c)| (p.clone(), blob(c)))
        .chain([(BIG_FILE.to_string(), (BIG_FILE_SIZE, sha(b"big")))]);
    for (file, (size, sha_of_file)) in all {
        let Some(rest) = file.strip_prefix(&prefix) else {
            continue;
        };
        match rest.split_once('/') {
            Some((dir, _)) if !dirs.contains(&dir.to_string()) => {
                dirs.push(dir.to_string());
                let dir_path = format!("{path}/{dir}");
                entries.push(entry(
                    &repo,
                    branch,
                    &dir_path,
                    "dir",
                    0,
                    &sha(dir.as_bytes()),
                ));
            }
            Some(_) => {}
            None => entries.push(entry(&repo, branch, &file, "file", size, &sha_of_file)),
        }
    }
    if entries.is_empty() {
        return not_found();
    }
    entries.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    with_rate_limit(Value::Array(entries))
}

async fn branches(
    State(state): Shared,
    headers: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
    Query(q): Q,
) -> Response {
    if let Some(refused) = admit_repo(&state, &headers, &owner, &repo) {
        return refused;
    }
    let heads = writes::branch_heads(&state.lock().unwrap(), &repo);
    let all: Vec<Value> = heads
        .iter()
        .map(|(name, sha, protected)| {
            json!({
                "name": name,
                "commit": {"sha": sha, "url": format!("https://api.github.com/repos/{LOGIN}/{repo}/commits/{sha}")},
                "protected": protected,
            })
        })
        .collect();
    with_rate_limit(Value::Array(page(&all, &q)))
}

pub(super) fn issue_json(repo: &str, number: u64) -> Option<Value> {
    if repo != "repo-1" {
        return None;
    }
    let (title, state, comments, body) = match number {
        1 => (
            "Crash when the config file is missing",
            "open",
            2,
            "Steps: delete config.toml, run.",
        ),
        2 => (
            "Document the setup",
            "closed",
            0,
            "The README says nothing about setup.",
        ),
        3 => ("Add a default config", "open", 0, "Adds `default_config`."),
        HUGE_PR => ("Vendor the assets", "open", 0, "A very large change."),
        _ => return None,
    };
    let mut issue = json!({
        "id": 5000 + number,
        "node_id": format!("I_kwDO{number:04}"),
        "url": format!("https://api.github.com/repos/{LOGIN}/{repo}/issues/{number}"),
        "repository_url": format!("https://api.github.com/repos/{LOGIN}/{repo}"),
        "html_url": format!("https://github.com/{LOGIN}/{repo}/issues/{number}"),
        "number": number,
        "state": state,
        "title": title,
        "body": body,
        "user": owner_json(),
        "labels": if number == 1 { json!([{"id": 1, "name": "bug", "color": "d73a4a"}]) } else { json!([]) },
        "comments": comments,
        "created_at": "2026-10-01T00:00:00Z",
        "updated_at": "2026-10-02T00:00:00Z",
        "closed_at": if state == "closed" { json!("2026-10-03T00:00:00Z") } else { Value::Null },
    });
    if number >= 3 {
        issue["pull_request"] = json!({
            "url": format!("https://api.github.com/repos/{LOGIN}/{repo}/pulls/{number}"),
            "html_url": format!("https://github.com/{LOGIN}/{repo}/pull/{number}"),
            "diff_url": format!("https://github.com/{LOGIN}/{repo}/pull/{number}.diff"),
            "patch_url": format!("https://github.com/{LOGIN}/{repo}/pull/{number}.patch"),
            "merged_at": null,
        });
    }
    Some(issue)
}

pub(super) fn state_matches(issue: &Value, wanted: Option<&String>) -> bool {
    match wanted.map(String::as_str).unwrap_or("open") {
        "all" => true,
        wanted => issue["state"] == wanted,
    }
}

async fn issues(
    State(state): Shared,
    headers: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
    Query(q): Q,
) -> Response {
    if let Some(refused) = admit_repo(&state, &headers, &owner, &repo) {
        return refused;
    }
    let all: Vec<Value> = all_issues(&state.lock().unwrap(), &repo)
        .into_iter()
        .filter(|i| state_matches(i, q.get("state")))
        .collect();
    with_rate_limit(Value::Array(page(&all, &q)))
}

async fn issue(
    State(state): Shared,
    headers: HeaderMap,
    Path((owner, repo, number)): Path<(String, String, u64)>,
) -> Response {
    if let Some(refused) = admit(&state, &headers) {
        return refused;
    }
    match writes::find_issue(&state.lock().unwrap(), &repo, number) {
        Some(issue) if known(&owner, &repo) => with_rate_limit(issue),
        _ => not_found(),
    }
}

async fn comments(
    State(state): Shared,
    headers: HeaderMap,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Query(q): Q,
) -> Response {
    if let Some(refused) = admit(&state, &headers) {
        return refused;
    }
    let all = {
        let s = state.lock().unwrap();
        writes::find_issue(&s, &repo, number).map(|_| all_comments(&s, &repo, number))
    };
    match all {
        Some(all) if known(&owner, &repo) => with_rate_limit(Value::Array(page(&all, &q))),
        _ => not_found(),
    }
}

/// Every issue of `repo` (pull requests too): the fixture's, then the
/// created ones, each counting its comments.
pub(super) fn all_issues(s: &FakeState, repo: &str) -> Vec<Value> {
    (1..=HUGE_PR)
        .filter_map(|n| issue_json(repo, n).and(writes::find_issue(s, repo, n)))
        .chain(writes::created_issues(s, repo))
        .collect()
}

/// An issue's comments: the fixture's (#1 has two), then the created ones.
pub(super) fn all_comments(s: &FakeState, repo: &str, number: u64) -> Vec<Value> {
    let fixture: &[(u64, &str)] = match (repo, number) {
        ("repo-1", 1) => &[
            (7001, "I can reproduce this on main."),
            (7002, "Fixed by #3, I think."),
        ],
        _ => &[],
    };
    fixture
        .iter()
        .map(|(id, body)| {
            json!({
                "id": id,
                "node_id": format!("IC_kwDO{id}"),
                "html_url": format!("https://github.com/{LOGIN}/{repo}/issues/{number}#issuecomment-{id}"),
                "body": body,
                "user": owner_json(),
                "created_at": "2026-10-02T00:00:00Z",
                "updated_at": "2026-10-02T00:00:00Z",
                "author_association": "OWNER",
            })
        })
        .chain(writes::created_comments(s, repo, number))
        .collect()
}
