//! Tools that act on the user's GitHub account with the upstream token the
//! vault maps to the caller's grant. The MCP client's own token is never sent.
//!
//! This file holds what every tool shares: the authenticated GET, the path
//! building that keeps arguments inside their segment, and the mapping of
//! GitHub's errors to tool errors. The tools live by subject next to it.

pub mod issues;
pub mod pulls;
pub mod repos;
pub mod search;

use rmcp::model::{CallToolResult, ContentBlock};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{upstream_token, vault_tool_error};
use crate::app::AppState;
use crate::mcp::GrantCtx;
use crate::mcp::server::tool_error;
use crate::upstream::flow::describe_transport_error;

/// The provider these tools use (the file `providers/github.toml`).
pub const PROVIDER: &str = "github";

/// The most a JSON answer may weigh (a 1 MiB file arrives base64-encoded).
const MAX_JSON: usize = 2 * 1024 * 1024;
/// The most text a tool hands back: a decoded file, a diff.
pub(crate) const MAX_TEXT: usize = 1024 * 1024;

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

/// A successful answer and how many requests GitHub still allows.
pub(crate) struct Answer<T> {
    pub body: T,
    pub rate_remaining: Option<String>,
}

impl Answer<Value> {
    /// The (reshaped) body as the tool's result, with the rate-limit trailer.
    pub fn into_result(self, shape: impl FnOnce(Value) -> Value) -> CallToolResult {
        let rate = self.rate_remaining.clone();
        success(shape(self.body).to_string(), rate)
    }

    /// A JSON list, each item reshaped.
    pub fn into_list(self, shape: fn(&Value) -> Value) -> CallToolResult {
        match &self.body {
            Value::Array(items) => {
                let items: Vec<Value> = items.iter().map(shape).collect();
                success(Value::Array(items).to_string(), self.rate_remaining)
            }
            _ => tool_error("GitHub answered with something other than a list"),
        }
    }
}

/// The result text, then a second block saying what is left of the rate
/// limit, so a model can pace itself.
pub(crate) fn success(text: String, rate_remaining: Option<String>) -> CallToolResult {
    let mut blocks = vec![ContentBlock::text(text)];
    if let Some(remaining) = rate_remaining {
        blocks.push(ContentBlock::text(format!(
            "GitHub rate limit remaining: {remaining}"
        )));
    }
    CallToolResult::success(blocks)
}

/// GET on the GitHub REST API as the user, answered as JSON.
pub(crate) async fn get_json(
    state: &AppState,
    grant: &GrantCtx,
    path: &str,
    query: &[(&str, &str)],
) -> Result<Answer<Value>, CallToolResult> {
    let answer = get(
        state,
        grant,
        path,
        query,
        "application/vnd.github+json",
        MAX_JSON,
    )
    .await?;
    let body = serde_json::from_slice(&answer.body)
        .map_err(|_| tool_error("GitHub answered with something other than JSON"))?;
    Ok(Answer {
        body,
        rate_remaining: answer.rate_remaining,
    })
}

/// GET on the GitHub REST API as the user, with the media type to ask for
/// and the most bytes to accept; failures become tool errors that carry
/// GitHub's own message. A 401 means the token died early (revoked, or
/// expired before we thought): one refresh, one retry.
pub(crate) async fn get(
    state: &AppState,
    grant: &GrantCtx,
    path: &str,
    query: &[(&str, &str)],
    accept: &str,
    limit: usize,
) -> Result<Answer<Vec<u8>>, CallToolResult> {
    let Some(provider) = state.providers.get(PROVIDER) else {
        return Err(tool_error("GitHub is not configured on this broker"));
    };
    let url = format!("{}{path}", provider.api_base_url);
    let mut token = upstream_token(state, grant, PROVIDER).await?;
    let mut retried = false;
    loop {
        let response = state
            .http
            .get(&url)
            .query(query)
            .bearer_auth(&token.access_token)
            .header(reqwest::header::ACCEPT, accept)
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .await
            .map_err(|e| {
                tool_error(format!(
                    "GitHub is unavailable: {}",
                    describe_transport_error(&e)
                ))
            })?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED && !retried {
            retried = true;
            token = state
                .vault
                .token_after_rejection(&grant.grant_id, PROVIDER, &token)
                .await
                .map_err(vault_tool_error)?;
            continue;
        }
        let headers = response.headers().clone();
        let rate_remaining = header(&headers, "x-ratelimit-remaining").map(str::to_string);
        let body = match read_body(response, limit).await {
            Ok(body) => body,
            Err(BodyError::TooLarge) if status.is_success() => {
                return Err(tool_error(format!(
                    "GitHub's answer is larger than {} KiB, more than this tool returns; \
                     narrow the request",
                    limit / 1024
                )));
            }
            Err(BodyError::TooLarge) => Vec::new(),
            Err(BodyError::Transport(e)) => {
                return Err(tool_error(format!("GitHub is unavailable: {e}")));
            }
        };
        if status.is_success() {
            return Ok(Answer {
                body,
                rate_remaining,
            });
        }
        let error: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        return Err(tool_error(describe_error(
            status.as_u16(),
            &headers,
            &error,
            crate::now_unix(),
        )));
    }
}

enum BodyError {
    TooLarge,
    Transport(String),
}

async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| BodyError::Transport(describe_transport_error(&e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// GitHub's refusal as the model should read it: what it means, and
/// GitHub's own words.
fn describe_error(
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &Value,
    now: i64,
) -> String {
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no message");
    let exhausted = header(headers, "x-ratelimit-remaining") == Some("0");
    match status {
        403 | 429 if exhausted => {
            let resets = header(headers, "x-ratelimit-reset")
                .and_then(|v| v.parse::<i64>().ok())
                .map(|at| {
                    format!(
                        "; it resets at {} (in {} s)",
                        format_utc(at),
                        (at - now).max(0)
                    )
                })
                .unwrap_or_default();
            format!("GitHub's API rate limit is exhausted{resets}. GitHub says: {message}")
        }
        403 | 429 if headers.contains_key("retry-after") => format!(
            "GitHub is throttling these requests (secondary rate limit); retry after {} s. \
             GitHub says: {message}",
            header(headers, "retry-after").unwrap_or("?")
        ),
        404 => format!(
            "GitHub answered 404: it does not exist, or this account has no access to it. \
             GitHub says: {message}"
        ),
        422 => {
            let details: Vec<String> = body
                .get("errors")
                .and_then(Value::as_array)
                .map(|errors| errors.iter().filter_map(validation_detail).collect())
                .unwrap_or_default();
            if details.is_empty() {
                format!("GitHub refused the request as invalid (422). GitHub says: {message}")
            } else {
                format!(
                    "GitHub refused the request as invalid (422). GitHub says: {message}: {}",
                    details.join("; ")
                )
            }
        }
        _ => format!("GitHub answered HTTP {status}. GitHub says: {message}"),
    }
}

/// One entry of a 422's `errors`: its message, or else what field failed how
/// (GitHub sends either, and sometimes a bare string).
fn validation_detail(error: &Value) -> Option<String> {
    if let Some(text) = error.as_str() {
        return Some(text.to_string());
    }
    if let Some(message) = error.get("message").and_then(Value::as_str) {
        return Some(message.to_string());
    }
    let field = error.get("field").and_then(Value::as_str)?;
    let code = error
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or("invalid");
    Some(format!("{field} is {code}"))
}

/// `2026-11-27T22:00:00Z` for a Unix time (UTC; days-to-civil conversion).
fn format_utc(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Characters left as they are in a path segment: RFC 3986 unreserved.
/// Everything else, `/` `%` `?` `#` included, is percent-encoded.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `/repos/{owner}/{repo}` with both checked against GitHub's naming rules,
/// so an argument like `../../user` cannot reach another endpoint.
pub(crate) fn repo_path(owner: &str, repo: &str) -> Result<String, CallToolResult> {
    let owner_ok = !owner.is_empty()
        && owner.len() <= 39
        && owner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !owner_ok {
        // `_` appears in enterprise managed users' names (`name_shortcode`).
        return Err(tool_error(format!(
            "owner {owner:?} is not a GitHub account name (letters, digits, '-', '_')"
        )));
    }
    let repo_ok = !repo.is_empty()
        && repo.len() <= 100
        && repo != "."
        && repo != ".."
        && repo
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !repo_ok {
        return Err(tool_error(format!(
            "repo {repo:?} is not a GitHub repository name (letters, digits, '-', '_', '.')"
        )));
    }
    Ok(format!("/repos/{owner}/{repo}"))
}

/// A file path inside a repository, each segment percent-encoded. `.` and
/// `..` are refused: URL parsing resolves them (even encoded as `%2e`).
pub(crate) fn file_path(path: &str) -> Result<String, CallToolResult> {
    let trimmed = path.trim_matches('/');
    let mut out = String::new();
    for segment in trimmed.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(tool_error(format!(
                "path {path:?} is not a file path inside the repository \
                 (no empty, '.' or '..' segments)"
            )));
        }
        out.push('/');
        out.extend(percent_encoding::utf8_percent_encode(segment, SEGMENT));
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_owner_or_repo_is_refused() {
        for (owner, repo) in [
            ("../../user", "x"),
            ("octo", ".."),
            ("octo", "a/b"),
            ("octo?x=1", "r"),
            ("", "r"),
            ("octo", "r#frag"),
        ] {
            assert!(repo_path(owner, repo).is_err(), "{owner}/{repo}");
        }
        assert_eq!(
            repo_path("octo-cat", "my.repo_1").unwrap(),
            "/repos/octo-cat/my.repo_1"
        );
    }

    #[test]
    fn file_path_segments_stay_inside_the_contents_endpoint() {
        assert!(file_path("../../user").is_err());
        assert!(file_path("docs/./x").is_err());
        assert!(file_path("a//b").is_err());
        assert_eq!(
            file_path("docs/a b%2e?.md").unwrap(),
            "/docs/a%20b%252e%3F.md"
        );
        assert_eq!(file_path("/src/lib.rs").unwrap(), "/src/lib.rs");
    }

    #[test]
    fn exhausted_rate_limit_says_when_it_resets() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
        headers.insert("x-ratelimit-reset", "1795824000".parse().unwrap());
        let text = describe_error(
            403,
            &headers,
            &json!({"message": "API rate limit exceeded"}),
            1_795_823_940,
        );
        assert!(text.contains("rate limit is exhausted"), "{text}");
        assert!(text.contains("2026-11-28T00:00:00Z"), "{text}");
        assert!(text.contains("in 60 s"), "{text}");
        assert!(text.contains("API rate limit exceeded"), "{text}");
    }

    #[test]
    fn validation_error_carries_each_of_githubs_messages() {
        let body = json!({"message": "Validation Failed", "errors": [
            {"resource": "Search", "field": "q", "code": "invalid", "message": "bad query"},
            {"resource": "Issue", "field": "title", "code": "missing_field"},
        ]});
        let text = describe_error(422, &Default::default(), &body, 0);
        assert!(
            text.ends_with("Validation Failed: bad query; title is missing_field"),
            "{text}"
        );
    }
}
