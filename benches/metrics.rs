//! The per-request cost of `/metrics` bookkeeping: one `observe_http` (two
//! read locks, a hash lookup and three atomic adds), alone and from two
//! threads at once, and one render of a realistic registry. Prints
//! figures; asserts nothing.
//!
//!     cargo bench --bench metrics

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_broker::ops::metrics::Metrics;

const N: u32 = 1_000_000;
const ROUTES: [&str; 8] = [
    "/mcp",
    "/token",
    "/authorize",
    "/consent",
    "/callback/{provider}",
    "/register",
    "/.well-known/oauth-authorization-server",
    "unmatched",
];

fn observe(metrics: &Metrics, n: u32) {
    for i in 0..n {
        let route = ROUTES[i as usize % ROUTES.len()];
        let status = if i % 10 == 0 { 401 } else { 200 };
        metrics.observe_http(route, status, Duration::from_micros(u64::from(i % 5000)));
    }
}

fn main() {
    let metrics = Arc::new(Metrics::default());
    observe(&metrics, 10_000);

    let started = Instant::now();
    observe(&metrics, N);
    let per = started.elapsed() / N;
    println!(
        "observe_http, one thread              {:>7.1} ns/request",
        per.as_nanos() as f64
    );

    let started = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let m = metrics.clone();
            std::thread::spawn(move || observe(&m, N))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let per = started.elapsed() / N;
    println!(
        "observe_http, two threads at once     {:>7.1} ns/request (wall time per pair)",
        per.as_nanos() as f64
    );

    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..1000 {
        bytes = metrics.render(Some(1234)).len();
    }
    println!(
        "render ({} routes, {bytes} bytes)         {:>7.1} µs/scrape",
        ROUTES.len(),
        started.elapsed().as_secs_f64() * 1e6 / 1000.0
    );
}
