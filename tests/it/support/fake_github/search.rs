//! The fake's search endpoints over `repo-1`'s fixtures: free-text terms
//! must all match; a `repo:` qualifier naming a repository the fixture user
//! cannot see, or an empty query, is GitHub's 422 `Validation Failed`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::repos::{HUGE_PR, Q, admit, files, issue_json, known, owner_json, page, sha};
use super::{FakeState, LOGIN, Shared, with_rate_limit};

pub(super) fn routes() -> Router<Arc<Mutex<FakeState>>> {
    Router::new()
        .route("/search/issues", get(search_issues))
        .route("/search/code", get(search_code))
}

/// The free-text terms of a search query, or the body of the 422 GitHub
/// answers for a missing query or a repository it cannot search.
fn parse_query(q: &HashMap<String, String>) -> Result<Vec<String>, Value> {
    let query = q.get("q").map(String::as_str).unwrap_or_default().trim();
    if query.is_empty() {
        return Err(json!({
            "message": "Validation Failed",
            "errors": [{"resource": "Search", "field": "q", "code": "missing"}],
            "documentation_url": "https://docs.github.com/v3/search",
            "status": "422",
        }));
    }
    let mut terms = Vec::new();
    for word in query.split_whitespace() {
        if let Some(full) = word.strip_prefix("repo:") {
            let known_repo = full
                .split_once('/')
                .is_some_and(|(owner, repo)| known(owner, repo));
            if !known_repo {
                return Err(json!({
                    "message": "Validation Failed",
                    "errors": [{
                        "message": "The listed users and repositories cannot be searched either because the resources do not exist or you do not have permission to view them.",
                        "resource": "Search",
                        "field": "q",
                        "code": "invalid",
                    }],
                    "documentation_url": "https://docs.github.com/v3/search/",
                    "status": "422",
                }));
            }
        } else if !word.contains(':') {
            terms.push(word.to_lowercase());
        }
    }
    Ok(terms)
}

fn search_answer(items: Vec<Value>, q: &HashMap<String, String>) -> Response {
    with_rate_limit(json!({
        "total_count": items.len(),
        "incomplete_results": false,
        "items": page(&items, q),
    }))
}

async fn search_issues(State(state): Shared, headers: HeaderMap, Query(q): Q) -> Response {
    if let Some(refused) = admit(&state, &headers) {
        return refused;
    }
    let terms = match parse_query(&q) {
        Ok(terms) => terms,
        Err(invalid) => {
            return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(invalid)).into_response();
        }
    };
    let items: Vec<Value> = (1..=HUGE_PR)
        .filter_map(|n| issue_json("repo-1", n))
        .filter(|i| {
            let text = format!("{} {}", i["title"], i["body"]).to_lowercase();
            terms.iter().all(|t| text.contains(t.as_str()))
        })
        .map(|mut i| {
            i["score"] = json!(1.0);
            i
        })
        .collect();
    search_answer(items, &q)
}

async fn search_code(State(state): Shared, headers: HeaderMap, Query(q): Q) -> Response {
    if let Some(refused) = admit(&state, &headers) {
        return refused;
    }
    let terms = match parse_query(&q) {
        Ok(terms) => terms,
        Err(invalid) => {
            return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(invalid)).into_response();
        }
    };
    let items: Vec<Value> = files()
        .iter()
        .filter(|(_, content)| {
            let content = content.to_lowercase();
            terms.iter().all(|t| content.contains(t.as_str()))
        })
        .map(|(path, content)| {
            let sha = sha(content.as_bytes());
            json!({
                "name": path.rsplit('/').next(),
                "path": path,
                "sha": sha,
                "url": format!("https://api.github.com/repos/{LOGIN}/repo-1/contents/{path}?ref=main"),
                "git_url": format!("https://api.github.com/repos/{LOGIN}/repo-1/git/blobs/{sha}"),
                "html_url": format!("https://github.com/{LOGIN}/repo-1/blob/main/{path}"),
                "repository": {"id": 1001, "name": "repo-1", "full_name": format!("{LOGIN}/repo-1"), "owner": owner_json(), "private": false},
                "score": 1.0,
            })
        })
        .collect();
    search_answer(items, &q)
}
