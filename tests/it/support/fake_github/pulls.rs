//! The fake's pull requests: `repo-1`'s fixtures (#3 with a small diff, #4
//! with one over the broker's limit) and the created ones, listed by state,
//! one as JSON or, for `application/vnd.github.diff`, as its diff: the
//! fixture's, or a created one's head against its base.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::repos::{
    DIFF, HUGE_PR, Q, admit, admit_repo, issue_json, known, not_found, owner_json, page, sha,
    state_matches,
};
use super::{FakeState, LOGIN, Shared, with_rate_limit, writes};

fn pull_json(repo: &str, number: u64) -> Option<Value> {
    let issue = issue_json(repo, number)?;
    issue.get("pull_request")?;
    Some(json!({
        "id": 9000 + number,
        "number": number,
        "state": issue["state"],
        "title": issue["title"],
        "body": issue["body"],
        "user": owner_json(),
        "draft": false,
        "html_url": format!("https://github.com/{LOGIN}/{repo}/pull/{number}"),
        "diff_url": format!("https://github.com/{LOGIN}/{repo}/pull/{number}.diff"),
        "created_at": issue["created_at"],
        "updated_at": issue["updated_at"],
        "merged_at": null,
        "head": {"label": format!("{LOGIN}:feature/x"), "ref": "feature/x", "sha": sha(b"feature/x")},
        "base": {"label": format!("{LOGIN}:main"), "ref": "main", "sha": sha(b"main")},
    }))
}

/// Every pull request of `repo`: the fixture's, then the created ones.
pub(super) fn all_pulls(s: &FakeState, repo: &str) -> Vec<Value> {
    (1..=HUGE_PR)
        .filter_map(|n| pull_json(repo, n))
        .chain(writes::created_pulls(s, repo))
        .collect()
}

/// A pull request's diff, as `application/vnd.github.diff` has it.
pub(super) fn diff_of(s: &FakeState, repo: &str, number: u64) -> Option<String> {
    if pull_json(repo, number).is_some() {
        if number != HUGE_PR {
            return Some(DIFF.to_string());
        }
        let line = format!("+{}\n", "x".repeat(79));
        return Some(format!(
            "diff --git a/assets/big.txt b/assets/big.txt\nnew file mode 100644\n--- /dev/null\n+++ b/assets/big.txt\n@@ -0,0 +1,20000 @@\n{}",
            line.repeat(20_000)
        ));
    }
    let pull = writes::created_pulls(s, repo)
        .into_iter()
        .find(|p| p["number"] == number)?;
    let (head, base) = (pull["head"]["ref"].as_str()?, pull["base"]["ref"].as_str()?);
    Some(writes::pull_diff(s, repo, head, base))
}

pub(super) async fn list(
    State(state): Shared,
    headers: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
    Query(q): Q,
) -> Response {
    if let Some(refused) = admit_repo(&state, &headers, &owner, &repo) {
        return refused;
    }
    let all: Vec<Value> = all_pulls(&state.lock().unwrap(), &repo)
        .into_iter()
        .filter(|p| state_matches(p, q.get("state")))
        .collect();
    with_rate_limit(Value::Array(page(&all, &q)))
}

/// One pull request: JSON, or its diff when asked for
/// `application/vnd.github.diff`.
pub(super) async fn one(
    State(state): Shared,
    headers: HeaderMap,
    Path((owner, repo, number)): Path<(String, String, u64)>,
) -> Response {
    if let Some(refused) = admit(&state, &headers) {
        return refused;
    }
    let wants_diff = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/vnd.github.diff"));
    let s = state.lock().unwrap();
    let Some(pull) = all_pulls(&s, &repo)
        .into_iter()
        .find(|p| p["number"] == number)
        .filter(|_| known(&owner, &repo))
    else {
        return not_found();
    };
    if !wants_diff {
        return with_rate_limit(pull);
    }
    let diff = diff_of(&s, &repo, number).unwrap_or_default();
    (
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.github.diff; charset=utf-8",
            ),
            (
                header::HeaderName::from_static("x-ratelimit-remaining"),
                "4999",
            ),
        ],
        diff,
    )
        .into_response()
}
