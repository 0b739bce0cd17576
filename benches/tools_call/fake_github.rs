//! A fake GitHub with what `github_get_repo` needs: `GET /repos/{owner}/{repo}`
//! in GitHub's wire format (rate-limit headers included), for
//! `UPSTREAM_TOKEN` only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::{OWNER, REPO, UPSTREAM_TOKEN};

#[derive(Clone, Default)]
pub struct FakeGithub {
    pub answered: Arc<AtomicU64>,
    pub refused: Arc<AtomicU64>,
}

impl FakeGithub {
    /// GitHub's checks: a User-Agent, and a token it knows (as `Bearer` or
    /// the older `token` form). `None`: admitted.
    fn refusal(&self, headers: &HeaderMap) -> Option<Response> {
        let credentials = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or(v.strip_prefix("token ")));
        if headers.contains_key(header::USER_AGENT) && credentials == Some(UPSTREAM_TOKEN) {
            self.answered.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        let body = json!({
            "message": "Bad credentials",
            "documentation_url": "https://docs.github.com/rest",
            "status": "401",
        });
        Some((StatusCode::UNAUTHORIZED, axum::Json(body)).into_response())
    }
}

/// A JSON answer with the rate-limit headers GitHub sends on every call
/// (the tools pass `x-ratelimit-remaining` on to the model).
fn with_rate_limit(body: Value) -> Response {
    let reset = (mcp_broker::now_unix() + 3600).to_string();
    let headers = [
        ("x-ratelimit-limit", "5000".to_string()),
        ("x-ratelimit-remaining", "4999".to_string()),
        ("x-ratelimit-used", "1".to_string()),
        ("x-ratelimit-reset", reset),
        ("x-ratelimit-resource", "core".to_string()),
    ];
    (headers, axum::Json(body)).into_response()
}

fn owner_json() -> Value {
    json!({
        "login": OWNER,
        "id": 4242,
        "node_id": "MDQ6VXNlcjQyNDI=",
        "type": "User",
        "html_url": format!("https://github.com/{OWNER}"),
    })
}

/// Roughly the size and shape of a real `GET /repos` answer's main fields.
pub fn repo_json() -> Value {
    json!({
        "id": 1001,
        "node_id": "R_kgDOBench",
        "name": REPO,
        "full_name": format!("{OWNER}/{REPO}"),
        "private": false,
        "owner": owner_json(),
        "html_url": format!("https://github.com/{OWNER}/{REPO}"),
        "description": "The repository the tools_call bench reads",
        "fork": false,
        "url": format!("https://api.github.com/repos/{OWNER}/{REPO}"),
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-11-01T00:00:00Z",
        "pushed_at": "2026-11-01T00:00:00Z",
        "stargazers_count": 7,
        "watchers_count": 7,
        "language": "Rust",
        "forks_count": 1,
        "archived": false,
        "open_issues_count": 2,
        "topics": ["bench"],
        "visibility": "public",
        "default_branch": "main",
    })
}

async fn repo(
    State(fake): State<FakeGithub>,
    headers: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = fake.refusal(&headers) {
        return refused;
    }
    if owner != OWNER || repo != REPO {
        let body = json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"});
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    }
    with_rate_limit(repo_json())
}

/// Serves the fake on its own thread and single-threaded runtime, so its
/// work is not scheduled among the broker's or the callers'.
pub fn start(fake: FakeGithub) -> SocketAddr {
    crate::common::serve_on_own_thread(
        Router::new()
            .route("/repos/{owner}/{repo}", get(repo))
            .with_state(fake),
    )
}
