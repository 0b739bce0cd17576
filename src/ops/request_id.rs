//! One id per HTTP request, so a log line, an audit event and the answer's
//! `X-Request-Id` header can be matched up. The id lives in a task-local
//! for the request's handling; work spawned off the request (a shared
//! refresh) does not carry it.

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `f` as the handling of request `id`.
pub async fn scope<F: std::future::Future>(id: String, f: F) -> F::Output {
    REQUEST_ID.scope(id, f).await
}

/// `f`, to be spawned: it keeps the current request's id and tracing span
/// (a task-local does not cross `tokio::spawn` by itself).
pub fn carried<F: std::future::Future>(f: F) -> impl std::future::Future<Output = F::Output> {
    use tracing::Instrument;
    let id = current();
    let f = f.instrument(tracing::Span::current());
    async move {
        match id {
            Some(id) => scope(id, f).await,
            None => f.await,
        }
    }
}

/// A caller's id is kept, when `trusted`, if it is short plain text (a
/// proxy's id joins the logs up across hops); anything else is replaced, so
/// a log line can never carry what a client chose to smuggle in.
pub fn accept(offered: Option<&HeaderValue>, trusted: bool) -> String {
    offered
        .filter(|_| trusted)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_plain_id(v))
        .map(str::to_string)
        .unwrap_or_else(crate::store::new_id)
}

fn is_plain_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Gives the request its id, runs it inside that id's scope and a tracing
/// span carrying it, and echoes the id on the answer. The state: whether an
/// offered id is trusted (`trust_request_id`).
pub async fn middleware(State(trusted): State<bool>, request: Request, next: Next) -> Response {
    use tracing::Instrument;
    let id = accept(request.headers().get(HEADER), trusted);
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = scope(id.clone(), next.run(request)).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_offered_id_is_kept() {
        let v = HeaderValue::from_static("req-42_a.b:c");
        assert_eq!(accept(Some(&v), true), "req-42_a.b:c");
    }

    #[test]
    fn an_offered_id_is_replaced_when_callers_are_not_trusted() {
        let v = HeaderValue::from_static("req-42");
        let got = accept(Some(&v), false);
        assert_ne!(got, "req-42");
        assert!(is_plain_id(&got), "{got}");
    }

    #[test]
    fn an_id_with_spaces_quotes_or_too_long_is_replaced() {
        for bad in ["a b", "x\"y", "", &"a".repeat(65), "line\tbreak"] {
            let v = HeaderValue::from_str(bad).unwrap();
            let got = accept(Some(&v), true);
            assert_ne!(got, bad);
            assert!(is_plain_id(&got), "{got}");
        }
        assert!(is_plain_id(&accept(None, true)));
    }

    #[tokio::test]
    async fn spawned_work_carries_the_id_only_when_there_is_one() {
        let inside = scope("r2".into(), async {
            tokio::spawn(carried(async { current() })).await.unwrap()
        })
        .await;
        assert_eq!(inside.as_deref(), Some("r2"));
        let outside = tokio::spawn(carried(async { current() })).await.unwrap();
        assert_eq!(outside, None);
    }

    #[tokio::test]
    async fn current_is_the_scoped_id_and_none_outside() {
        assert_eq!(current(), None);
        let inside = scope("r1".into(), async { current() }).await;
        assert_eq!(inside.as_deref(), Some("r1"));
    }
}
