//! GitHub's refusals as tool errors the model can act on: not found (or no
//! access), an exhausted rate limit and when it resets, validation failures
//! with each of GitHub's messages. Never a JSON-RPC or HTTP 500.

use serde_json::Value;

use super::client::header;

/// GitHub's refusal as the model should read it: what it means, and
/// GitHub's own words.
pub(super) fn describe_error(
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
                        crate::utc::format_time(at),
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
        409 => format!(
            "GitHub refused the change as conflicting (409): the file or branch changed since \
             it was read; read it again for its current sha. GitHub says: {message}"
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn secondary_rate_limit_says_when_to_retry() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-ratelimit-remaining", "4000".parse().unwrap());
        headers.insert("retry-after", "60".parse().unwrap());
        let body = json!({"message": "You have exceeded a secondary rate limit."});
        let text = describe_error(403, &headers, &body, 0);
        assert!(text.contains("retry after 60 s"), "{text}");
        assert!(text.contains("secondary rate limit."), "{text}");
    }

    #[test]
    fn forbidden_without_rate_limit_carries_githubs_message() {
        let body = json!({"message": "Resource not accessible by integration"});
        let text = describe_error(403, &Default::default(), &body, 0);
        assert_eq!(
            text,
            "GitHub answered HTTP 403. GitHub says: Resource not accessible by integration"
        );
    }

    #[test]
    fn conflict_says_to_read_again_and_carries_githubs_message() {
        let body = json!({"message": "README.md does not match 0000"});
        let text = describe_error(409, &Default::default(), &body, 0);
        assert!(text.contains("read it again"), "{text}");
        assert!(
            text.ends_with("GitHub says: README.md does not match 0000"),
            "{text}"
        );
    }
}
