//! Stopping without dropping work: on SIGTERM (or Ctrl-C) the listener
//! closes, `/readyz` turns 503, requests in flight finish, and once
//! `shutdown_grace_secs` have passed the process exits anyway (an open MCP
//! event stream never ends by itself).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Whether this broker has been told to stop. Shared by `/readyz` and the
/// server loop.
#[derive(Clone, Debug, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `serve` (an axum server built with `with_graceful_shutdown(stop)`)
/// until it has drained, or until `grace` after `shutdown` completed.
/// `serve` gets the future that tells it to stop accepting.
pub async fn serve_draining<S, E>(
    serve: impl FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> S,
    shutdown: impl Future<Output = ()> + Send + 'static,
    draining: Draining,
    grace: Duration,
) where
    S: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let stop = Box::pin(async move {
        shutdown.await;
        draining.start();
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down: no new connections; draining requests in flight"
        );
        let _ = stop_tx.send(true);
    });
    let deadline = async move {
        if stop_rx.wait_for(|stopped| *stopped).await.is_err() {
            // The server ended without being told to: nothing to time.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = serve(stop) => match result {
            Ok(()) => tracing::info!("stopped: every request finished"),
            Err(e) => tracing::error!(error = %e, "server stopped"),
        },
        () = deadline => tracing::warn!(
            grace_secs = grace.as_secs(),
            "stopped: the shutdown grace ran out with connections still open (event streams)"
        ),
    }
}

/// Ctrl-C, or SIGTERM on Unix (what orchestrators send).
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
