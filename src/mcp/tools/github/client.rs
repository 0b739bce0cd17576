//! The GitHub REST client the tools share: a GET, POST or PUT as the user
//! with the vault's token (one refresh and retry on 401), a size limit on
//! what is read, and the remaining rate limit carried to the result.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::Value;

use super::PROVIDER;
use super::errors::describe_error;
use crate::app::AppState;
use crate::mcp::GrantCtx;
use crate::mcp::server::tool_error;
use crate::mcp::tools::{upstream_token, vault_tool_error};
use crate::upstream::flow::describe_transport_error;

/// The most a JSON answer may weigh (a 1 MiB file arrives base64-encoded).
const MAX_JSON: usize = 2 * 1024 * 1024;
/// The most text a tool hands back: a decoded file, a diff.
pub(crate) const MAX_TEXT: usize = 1024 * 1024;

/// A successful answer and how many requests GitHub still allows.
pub(crate) struct Answer<T> {
    pub body: T,
    pub rate_remaining: Option<String>,
}

impl Answer<Value> {
    /// The (reshaped) body as the tool's result, with the rate-limit trailer.
    pub fn into_result(self, shape: impl FnOnce(Value) -> Value) -> CallToolResult {
        success(shape(self.body).to_string(), self.rate_remaining)
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

/// A POST or PUT with a JSON body on the GitHub REST API as the user,
/// answered as JSON.
pub(crate) async fn send_json(
    state: &AppState,
    grant: &GrantCtx,
    method: reqwest::Method,
    path: &str,
    body: &Value,
) -> Result<Answer<Value>, CallToolResult> {
    let request = Request {
        method,
        path,
        query: &[],
        body: Some(body),
        accept: "application/vnd.github+json",
        limit: MAX_JSON,
    };
    let answer = send(state, grant, request).await?;
    let body = serde_json::from_slice(&answer.body)
        .map_err(|_| tool_error("GitHub answered with something other than JSON"))?;
    Ok(Answer {
        body,
        rate_remaining: answer.rate_remaining,
    })
}

/// GET on the GitHub REST API as the user, with the media type to ask for
/// and the most bytes to accept.
pub(crate) async fn get(
    state: &AppState,
    grant: &GrantCtx,
    path: &str,
    query: &[(&str, &str)],
    accept: &str,
    limit: usize,
) -> Result<Answer<Vec<u8>>, CallToolResult> {
    let request = Request {
        method: reqwest::Method::GET,
        path,
        query,
        body: None,
        accept,
        limit,
    };
    send(state, grant, request).await
}

/// One REST request as the tools describe it.
struct Request<'a> {
    method: reqwest::Method,
    path: &'a str,
    query: &'a [(&'a str, &'a str)],
    body: Option<&'a Value>,
    accept: &'a str,
    limit: usize,
}

/// The request as the user; failures become tool errors that carry GitHub's
/// own message. A 401 means the token died early (revoked, or expired before
/// we thought): one refresh, one retry. Safe for writes too: GitHub acted on
/// nothing it answered 401.
async fn send(
    state: &AppState,
    grant: &GrantCtx,
    request: Request<'_>,
) -> Result<Answer<Vec<u8>>, CallToolResult> {
    let Request {
        method,
        path,
        query,
        body,
        accept,
        limit,
    } = request;
    let Some(provider) = state.providers.get(PROVIDER) else {
        return Err(tool_error("GitHub is not configured on this broker"));
    };
    let url = format!("{}{path}", provider.api_base_url);
    let mut token = upstream_token(state, grant, PROVIDER).await?;
    let mut retried = false;
    loop {
        let mut builder = state
            .http
            .request(method.clone(), &url)
            .query(query)
            .bearer_auth(&token.access_token)
            .header(reqwest::header::ACCEPT, accept)
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(body) = body {
            builder = builder.json(body);
        }
        let response = builder.send().await.map_err(|e| {
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

pub(super) fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
