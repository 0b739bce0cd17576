//! Prometheus metrics: a small registry of atomics, rendered in the text
//! exposition format at `GET /metrics`. Every label value comes from a
//! bounded set (route templates, status codes, grant types, configured
//! providers), never from what a client sent.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::upstream::failure::{Failure, classify};
use crate::upstream::{Provider, UpstreamError};

/// The `route` label of a request no route matched (scanners, typos).
pub const UNMATCHED: &str = "unmatched";

/// Upper bounds (seconds) of the HTTP duration buckets.
const HTTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Upper bounds (seconds) of the upstream refresh duration buckets.
const REFRESH_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Grant types of our token endpoint, as labelled.
const GRANT_TYPES: [&str; 3] = ["authorization_code", "refresh_token", "token-exchange"];
/// Outcomes of one call to a provider's token endpoint to refresh.
const REFRESH_OUTCOMES: [&str; 3] = ["ok", "permanent", "transient"];
/// The steps of the hourly upkeep (`app::upkeep`), as labelled.
pub const UPKEEP_STEPS: [&str; 6] = [
    "sweep",
    "dead_grants",
    "revocation_retry",
    "removed_clients",
    "client_expiry",
    "audit_retention",
];

/// How long one count of active grants answers later scrapes: several
/// Prometheus servers (or a curious caller) cost one query per window.
const ACTIVE_GRANTS_CACHE: Duration = Duration::from_secs(15);
/// A scrape never waits longer than this on the database.
const ACTIVE_GRANTS_TIMEOUT: Duration = Duration::from_secs(2);

/// One registry per broker (held by `AppState` and the vault).
#[derive(Default)]
pub struct Metrics {
    routes: RwLock<HashMap<Box<str>, Arc<RouteSeries>>>,
    tokens_issued: [AtomicU64; 3],
    refreshes: RwLock<HashMap<Box<str>, Arc<RefreshSeries>>>,
    active_grants: tokio::sync::Mutex<Option<(Instant, i64)>>,
    upkeeps: AtomicU64,
    upkeep_completed_at: AtomicI64,
    upkeep_failures: [AtomicU64; UPKEEP_STEPS.len()],
}

struct RouteSeries {
    /// (status, count): a route answers a handful of distinct statuses.
    statuses: RwLock<Vec<(u16, AtomicU64)>>,
    duration: Histogram,
}

struct RefreshSeries {
    outcomes: [AtomicU64; 3],
    duration: Histogram,
}

/// Non-cumulative bucket counts (summed when rendered), a count and a sum.
struct Histogram {
    bounds: &'static [f64],
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, bucket) in self.bounds.iter().zip(self.buckets.iter()) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// The series for `key`, created on first use. The read lock is the hot
/// path; the write lock is taken once per new route or provider.
fn series<T>(
    map: &RwLock<HashMap<Box<str>, Arc<T>>>,
    key: &str,
    new: impl FnOnce() -> T,
) -> Arc<T> {
    if let Some(s) = map.read().unwrap_or_else(|p| p.into_inner()).get(key) {
        return s.clone();
    }
    map.write()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key.into())
        .or_insert_with(|| Arc::new(new()))
        .clone()
}

impl Metrics {
    /// One answered HTTP request.
    pub fn observe_http(&self, route: &str, status: u16, elapsed: Duration) {
        let route = series(&self.routes, route, || RouteSeries {
            statuses: RwLock::default(),
            duration: Histogram::new(HTTP_BUCKETS),
        });
        route.duration.observe(elapsed);
        let counted = route
            .statuses
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, n)| n.fetch_add(1, Relaxed))
            .is_some();
        if !counted {
            let mut statuses = route.statuses.write().unwrap_or_else(|p| p.into_inner());
            match statuses.iter().find(|(s, _)| *s == status) {
                Some((_, n)) => {
                    n.fetch_add(1, Relaxed);
                }
                None => statuses.push((status, AtomicU64::new(1))),
            }
        }
    }

    /// A successful answer of our token endpoint, by its `grant_type`.
    pub fn token_issued(&self, grant_type: &str) {
        let label = match grant_type {
            "authorization_code" => 0,
            "refresh_token" => 1,
            crate::oauth::token_exchange::GRANT_TYPE => 2,
            _ => return,
        };
        self.tokens_issued[label].fetch_add(1, Relaxed);
    }

    /// Runs one call to `provider`'s token endpoint to refresh, recording its
    /// duration and outcome (a failure as the vault will classify it).
    pub async fn upstream_refresh<T>(
        &self,
        provider: &Provider,
        call: impl Future<Output = Result<T, UpstreamError>>,
    ) -> Result<T, UpstreamError> {
        let started = Instant::now();
        let result = call.await;
        let outcome = match &result {
            Ok(_) => 0,
            Err(e) => match classify(&provider.refresh, e) {
                Failure::Permanent(_) => 1,
                Failure::Transient(_) => 2,
            },
        };
        let s = series(&self.refreshes, &provider.id, || RefreshSeries {
            outcomes: Default::default(),
            duration: Histogram::new(REFRESH_BUCKETS),
        });
        s.outcomes[outcome].fetch_add(1, Relaxed);
        s.duration.observe(started.elapsed());
        result
    }

    /// One upkeep step (one of `UPKEEP_STEPS`) failed; the others ran.
    pub fn upkeep_step_failed(&self, step: &str) {
        if let Some(i) = UPKEEP_STEPS.iter().position(|s| *s == step) {
            self.upkeep_failures[i].fetch_add(1, Relaxed);
        }
    }

    /// An upkeep pass ended (at Unix time `at`), whatever its steps did.
    pub fn upkeep_completed(&self, at: i64) {
        self.upkeep_completed_at.store(at, Relaxed);
        self.upkeeps.fetch_add(1, Relaxed);
    }

    /// Upkeep passes ended since start.
    pub fn upkeeps_completed(&self) -> u64 {
        self.upkeeps.load(Relaxed)
    }

    /// Non-revoked grants, counted at most once per `ACTIVE_GRANTS_CACHE`;
    /// concurrent scrapes wait for the one count. `None`: the database did
    /// not answer in time.
    async fn active_grants(&self, store: &crate::store::Store) -> Option<i64> {
        let mut cached = self.active_grants.lock().await;
        if let Some((at, n)) = *cached
            && at.elapsed() < ACTIVE_GRANTS_CACHE
        {
            return Some(n);
        }
        match tokio::time::timeout(ACTIVE_GRANTS_TIMEOUT, store.count_live_grants()).await {
            Ok(Ok(n)) => {
                *cached = Some((Instant::now(), n));
                Some(n)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "metrics: counting active grants failed");
                None
            }
            Err(_) => {
                tracing::warn!("metrics: counting active grants timed out");
                None
            }
        }
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self, active_grants: Option<i64>) -> String {
        let mut out = String::with_capacity(8 * 1024);
        header_lines(
            &mut out,
            "mcp_broker_build_info",
            "gauge",
            "The running version.",
        );
        let _ = writeln!(
            out,
            "mcp_broker_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );

        let routes = sorted(&self.routes);
        header_lines(
            &mut out,
            "mcp_broker_http_requests_total",
            "counter",
            "HTTP requests answered, by route template and status.",
        );
        for (route, s) in &routes {
            let mut statuses: Vec<(u16, u64)> = s
                .statuses
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(code, n)| (*code, n.load(Relaxed)))
                .collect();
            statuses.sort_unstable();
            for (code, n) in statuses {
                let _ = writeln!(
                    out,
                    "mcp_broker_http_requests_total{{route=\"{}\",status=\"{code}\"}} {n}",
                    escape(route)
                );
            }
        }
        histograms(
            &mut out,
            "mcp_broker_http_request_duration_seconds",
            "Time until the answer's headers (for an event stream: until it opened), by route template.",
            "route",
            routes.iter().map(|(route, s)| (route, &s.duration)),
        );

        header_lines(
            &mut out,
            "mcp_broker_tokens_issued_total",
            "counter",
            "Successful answers of our token endpoint, by grant type.",
        );
        for (grant_type, n) in GRANT_TYPES.iter().zip(&self.tokens_issued) {
            let _ = writeln!(
                out,
                "mcp_broker_tokens_issued_total{{grant_type=\"{grant_type}\"}} {}",
                n.load(Relaxed)
            );
        }

        let refreshes = sorted(&self.refreshes);
        header_lines(
            &mut out,
            "mcp_broker_upstream_refreshes_total",
            "counter",
            "Calls to a provider's token endpoint to refresh (each retry counts), by outcome: \
             ok, permanent (the user must sign in again) or transient.",
        );
        for (provider, s) in &refreshes {
            for (outcome, n) in REFRESH_OUTCOMES.iter().zip(&s.outcomes) {
                let _ = writeln!(
                    out,
                    "mcp_broker_upstream_refreshes_total{{provider=\"{}\",outcome=\"{outcome}\"}} {}",
                    escape(provider),
                    n.load(Relaxed)
                );
            }
        }
        histograms(
            &mut out,
            "mcp_broker_upstream_refresh_duration_seconds",
            "Duration of each call to a provider's token endpoint to refresh.",
            "provider",
            refreshes
                .iter()
                .map(|(provider, s)| (provider, &s.duration)),
        );

        header_lines(
            &mut out,
            "mcp_broker_upkeep_runs_total",
            "counter",
            "Upkeep passes this instance completed (at start, then hourly).",
        );
        let _ = writeln!(
            out,
            "mcp_broker_upkeep_runs_total {}",
            self.upkeeps_completed()
        );
        header_lines(
            &mut out,
            "mcp_broker_upkeep_last_completed_timestamp_seconds",
            "gauge",
            "When this instance last completed an upkeep pass (0: not yet); \
             more than two hours ago means its sweeps and retries have stopped.",
        );
        let _ = writeln!(
            out,
            "mcp_broker_upkeep_last_completed_timestamp_seconds {}",
            self.upkeep_completed_at.load(Relaxed)
        );
        header_lines(
            &mut out,
            "mcp_broker_upkeep_step_failures_total",
            "counter",
            "Upkeep steps that failed (logged with the reason), by step.",
        );
        for (step, n) in UPKEEP_STEPS.iter().zip(&self.upkeep_failures) {
            let _ = writeln!(
                out,
                "mcp_broker_upkeep_step_failures_total{{step=\"{step}\"}} {}",
                n.load(Relaxed)
            );
        }

        if let Some(n) = active_grants {
            header_lines(
                &mut out,
                "mcp_broker_active_grants",
                "gauge",
                "Grants not revoked, across all instances (the same on each: aggregate with max).",
            );
            let _ = writeln!(out, "mcp_broker_active_grants {n}");
        }
        out
    }
}

/// A copy of the series, sorted by key: the exposition is stable, and the
/// lock is not held while rendering.
fn sorted<T>(map: &RwLock<HashMap<Box<str>, Arc<T>>>) -> BTreeMap<String, Arc<T>> {
    map.read()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// One histogram family, a series per `label` value.
fn histograms<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    series: impl Iterator<Item = (&'a String, &'a Histogram)>,
) {
    header_lines(out, name, "histogram", help);
    for (value, histogram) in series {
        histogram.render(out, name, &format!("{label}=\"{}\"", escape(value)));
    }
}

fn header_lines(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the exposition format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Counts every request by the route template that matched it (never the
/// raw path: bounded cardinality) and its status, and logs it: the access
/// log. The template, never the path or query, so no code or state a URL
/// carried reaches the log.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let route = route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    let (status, elapsed) = (response.status().as_u16(), started.elapsed());
    metrics.observe_http(route, status, elapsed);
    // In hundredths of a millisecond: enough to read, short in the line.
    let elapsed_ms = (elapsed.as_secs_f64() * 100_000.0).round() / 100.0;
    // Probes and scrapes come every few seconds: only when debugging.
    if matches!(route, "/healthz" | "/readyz" | "/metrics") {
        tracing::debug!(%method, route, status, elapsed_ms, "request answered");
    } else {
        tracing::info!(%method, route, status, elapsed_ms, "request answered");
    }
    response
}

/// `GET /metrics`. With `metrics_token` set, only for its bearer.
pub async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(hash) = &state.config.ops.metrics_token_hash {
        let presented =
            crate::http::form::bearer_token(&headers).map(crate::tokens::opaque::hash_secret);
        if !presented.is_some_and(|p| crate::tokens::opaque::constant_time_eq(&p, hash)) {
            return crate::error::AppError::OperatorUnauthorized {
                realm: "metrics",
                description: "/metrics takes the configured metrics token as a bearer token",
            }
            .into_response();
        }
    }
    let active = state.metrics.active_grants(&state.store).await;
    let mut response = state.metrics.render(active).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_and_status_with_a_cumulative_histogram() {
        let m = Metrics::default();
        m.observe_http("/token", 200, Duration::from_millis(3));
        m.observe_http("/token", 200, Duration::from_millis(30));
        m.observe_http("/token", 400, Duration::from_secs(60));
        m.observe_http(UNMATCHED, 404, Duration::from_millis(1));
        let text = m.render(Some(7));
        for line in [
            "mcp_broker_http_requests_total{route=\"/token\",status=\"200\"} 2",
            "mcp_broker_http_requests_total{route=\"/token\",status=\"400\"} 1",
            "mcp_broker_http_requests_total{route=\"unmatched\",status=\"404\"} 1",
            "mcp_broker_http_request_duration_seconds_bucket{route=\"/token\",le=\"0.005\"} 1",
            "mcp_broker_http_request_duration_seconds_bucket{route=\"/token\",le=\"0.05\"} 2",
            "mcp_broker_http_request_duration_seconds_bucket{route=\"/token\",le=\"10\"} 2",
            "mcp_broker_http_request_duration_seconds_bucket{route=\"/token\",le=\"+Inf\"} 3",
            "mcp_broker_http_request_duration_seconds_count{route=\"/token\"} 3",
            "mcp_broker_active_grants 7",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn tokens_issued_know_only_our_three_grant_types() {
        let m = Metrics::default();
        m.token_issued("authorization_code");
        m.token_issued(crate::oauth::token_exchange::GRANT_TYPE);
        m.token_issued("password");
        let text = m.render(None);
        assert!(
            text.contains("mcp_broker_tokens_issued_total{grant_type=\"authorization_code\"} 1")
        );
        assert!(text.contains("mcp_broker_tokens_issued_total{grant_type=\"refresh_token\"} 0"));
        assert!(text.contains("mcp_broker_tokens_issued_total{grant_type=\"token-exchange\"} 1"));
        assert!(!text.contains("password"));
        assert!(
            !text.contains("mcp_broker_active_grants "),
            "no count, no gauge"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
