//! Stopping without dropping work: on SIGTERM (or Ctrl-C) `/readyz` turns
//! 503 at once; after `shutdown_delay_secs` (0 by default) the listener
//! closes and requests in flight finish; once `shutdown_grace_secs` have
//! passed the process exits anyway (an open MCP event stream never ends by
//! itself). A second signal exits at once.

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
/// until it has drained, or until `grace` after it stopped accepting.
/// `serve` gets the future that tells it to stop accepting: `delay` after
/// `shutdown` completed (readiness fails meanwhile, so load balancers stop
/// sending first). From the first stop on, a second signal ends the wait
/// at once (only then is a signal handler installed).
pub async fn serve_draining<S, E>(
    serve: impl FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> S,
    shutdown: impl Future<Output = ()> + Send + 'static,
    draining: Draining,
    delay: Duration,
    grace: Duration,
) where
    S: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let (force_tx, force_rx) = tokio::sync::watch::channel(false);
    let mut forced_early = force_rx.clone();
    let stop = Box::pin(async move {
        shutdown.await;
        draining.start();
        tokio::spawn(async move {
            signal().await;
            tracing::warn!("a second stop signal: exiting now");
            let _ = force_tx.send(true);
        });
        if !delay.is_zero() {
            tracing::info!(
                delay_secs = delay.as_secs(),
                "shutting down: /readyz fails; still accepting while load balancers notice"
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = forced(&mut forced_early) => {}
            }
        }
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down: no new connections; draining requests in flight"
        );
        let _ = stop_tx.send(true);
    });
    let mut forced_late = force_rx;
    let deadline = async move {
        if stop_rx.wait_for(|stopped| *stopped).await.is_err() {
            // The server ended without being told to: nothing to time.
            std::future::pending::<()>().await;
        }
        tokio::select! {
            () = tokio::time::sleep(grace) => tracing::warn!(
                grace_secs = grace.as_secs(),
                "stopped: the shutdown grace ran out with connections still open (event streams)"
            ),
            () = forced(&mut forced_late) => {}
        }
    };
    tokio::select! {
        result = serve(stop) => match result {
            Ok(()) => tracing::info!("stopped: every request finished"),
            Err(e) => tracing::error!(error = %e, "server stopped"),
        },
        () = deadline => {}
    }
}

/// Completes once a second signal has come (never, if none does).
async fn forced(force: &mut tokio::sync::watch::Receiver<bool>) {
    if force.wait_for(|forced| *forced).await.is_err() {
        std::future::pending::<()>().await;
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
