//! Startup: load everything the broker needs, then serve. `main` and the
//! integration tests both come through here.

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::http::rate_limit::RateLimiter;
use crate::store::{Store, StoreError};
use crate::tokens::KeyRing;
use crate::tokens::signing::SigningKeyError;
use crate::upstream::provider::ProviderError;
use crate::upstream::{ProviderSet, load_providers};
use crate::vault::key::{KeyError, KeySource, load_cipher};
use crate::vault::{Cipher, Vault};

/// Everything a request handler may need, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub cipher: Cipher,
    pub keys: Arc<KeyRing>,
    pub providers: Arc<ProviderSet>,
    pub vault: Vault,
    pub http: reqwest::Client,
    pub registration_limiter: Arc<RateLimiter>,
    pub mcp_sessions: Arc<crate::mcp::sessions::SessionOwners>,
    pub metrics: Arc<crate::ops::metrics::Metrics>,
    /// Set once a shutdown began (`/readyz` answers 503).
    pub draining: crate::ops::shutdown::Draining,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    SigningKey(#[from] SigningKeyError),
    #[error(transparent)]
    Providers(#[from] ProviderError),
    #[error("scope {0:?} is needed by a tool but missing from the configured [[scopes]]")]
    ToolScope(&'static str),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

impl AppState {
    /// Opens the database (migrating it), loads keys and providers. `env`
    /// resolves `${VAR}` references in provider files.
    pub async fn load(
        config: Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<AppState, StartError> {
        if let Some((_, scope, _)) = crate::mcp::tools::TOOLS
            .iter()
            .find(|(_, scope, _)| !config.scopes.names().contains(scope))
        {
            return Err(StartError::ToolScope(scope));
        }
        if plain_http_off_loopback(&config.public_url) {
            tracing::warn!(
                public_url = %config.public_url,
                "PUBLIC URL IS PLAIN HTTP on a non-loopback host: tokens and cookies travel \
                 unencrypted and cookies cannot be Secure. Use https (TLS at a proxy is fine)."
            );
        }
        if config.ops.metrics_token_hash.is_none() && !plain_http_on_loopback(&config.public_url) {
            tracing::warn!(
                "/metrics is open (no metrics_token): it shows grant counts and provider names. \
                 Keep it off the public proxy, or set metrics_token."
            );
        }
        let (cipher, source) = load_cipher(&config)?;
        match &source {
            KeySource::Configured => {}
            KeySource::GeneratedFile(path) | KeySource::ExistingFile(path) => tracing::warn!(
                key_file = %path.display(),
                "NO ENCRYPTION KEY CONFIGURED: upstream tokens are sealed with a key stored beside \
                 the database. Anyone who copies both reads every token. Set MCP_BROKER_ENCRYPTION_KEY \
                 (base64 of 32 random bytes) for any real deployment."
            ),
            KeySource::Ephemeral => tracing::warn!(
                "NO ENCRYPTION KEY CONFIGURED: using a throwaway key for an in-memory database"
            ),
        }
        let store = Store::connect(&config.database_url).await?;
        store.migrate().await?;
        let keys = KeyRing::load(store.clone(), cipher.clone(), crate::now_unix()).await?;
        let timeout = std::time::Duration::from_secs(config.upstream_timeout_secs);
        let http = crate::upstream::http_client(timeout);
        let mut providers = load_providers(&config.providers_dir, env)?;
        crate::upstream::oidc::discover_providers(&http, &mut providers).await;
        for (id, why) in &providers.undiscovered {
            tracing::warn!(provider = %id, reason = %why, "provider skipped: OpenID discovery failed");
        }
        for (id, vars) in &providers.skipped {
            tracing::warn!(
                provider = %id,
                missing = %vars.join(", "),
                "provider skipped: set these environment variables to enable it"
            );
        }
        for (scope, provider) in config.scopes.named_providers() {
            if providers.get(provider).is_none() {
                tracing::warn!(%scope, %provider,
                    "a scope names a provider that is not enabled: sign-ins asking for it will fail");
            }
        }
        let route_providers = config.gateways.iter().map(|g| g.provider.as_str());
        let exchange_providers = config
            .clients
            .iter()
            .flat_map(|c| c.token_exchange.iter().map(String::as_str));
        for provider in route_providers.chain(exchange_providers) {
            if providers.get(provider).is_none() {
                tracing::warn!(%provider,
                    "a gateway route or token-exchange client names a provider that is not enabled: \
                     its requests will fail");
            }
        }
        if providers.providers.is_empty() {
            tracing::warn!(
                dir = %config.providers_dir.display(),
                "no upstream provider is enabled: users cannot sign in until one is"
            );
        }
        let providers = Arc::new(providers);
        let metrics = Arc::new(crate::ops::metrics::Metrics::default());
        let vault = Vault::new(
            store.clone(),
            cipher.clone(),
            http.clone(),
            providers.clone(),
            timeout,
        )
        .with_metrics(metrics.clone());
        crate::clients::configured::sync(&store, &vault, &config).await?;
        let registration_limiter =
            Arc::new(RateLimiter::per_minute(config.dcr_rate_limit_per_minute));
        Ok(AppState {
            registration_limiter,
            mcp_sessions: Arc::default(),
            metrics,
            draining: Default::default(),
            config: Arc::new(config),
            store,
            cipher,
            keys: Arc::new(keys),
            providers,
            vault,
            http,
        })
    }
}

/// A local development setup: http on a loopback host.
fn plain_http_on_loopback(public_url: &str) -> bool {
    url::Url::parse(public_url)
        .is_ok_and(|url| url.scheme() == "http" && crate::oauth::redirect_uri::is_loopback(&url))
}

/// http is for local development only; anything else must be https.
fn plain_http_off_loopback(public_url: &str) -> bool {
    let Ok(url) = url::Url::parse(public_url) else {
        return false;
    };
    url.scheme() == "http" && !crate::oauth::redirect_uri::is_loopback(&url)
}

/// Binds the configured address and serves until the process is stopped.
pub async fn serve(config: Config) -> Result<(), StartError> {
    let addr = config.bind;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let state = AppState::load(config, &|k| std::env::var(k).ok()).await?;
    tracing::info!(
        listen = %addr,
        issuer = %state.config.public_url,
        mcp = %state.config.mcp_url(),
        "mcp-broker is serving"
    );
    serve_on(listener, state, crate::ops::shutdown::signal()).await;
    Ok(())
}

/// Serves on an already-bound listener (tests bind port 0 first) until
/// `shutdown` completes (after `shutdown_delay_secs` of failing readiness),
/// letting in-flight requests finish for up to `shutdown_grace_secs`.
pub async fn serve_on(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    spawn_maintenance(state.clone());
    let draining = state.draining.clone();
    let grace = std::time::Duration::from_secs(state.config.ops.shutdown_grace_secs);
    let delay = std::time::Duration::from_secs(state.config.ops.shutdown_delay_secs);
    let router =
        crate::http::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    use axum::serve::ListenerExt;
    // MCP answers are event streams written in small pieces: without
    // TCP_NODELAY the last piece of each waits ~40 ms for the client's
    // delayed ACK (measured by `cargo bench --bench tools_call`).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    crate::ops::shutdown::serve_draining(
        |stop| {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop)
                .into_future()
        },
        shutdown,
        draining,
        delay,
        grace,
    )
    .await;
}

/// Background upkeep, on every instance: signing keys (reload what other
/// instances changed, rotate by age, retire superseded keys) every minute;
/// at start and hourly, `upkeep`.
fn spawn_maintenance(state: AppState) {
    let keys_state = state.clone();
    tokio::spawn(async move {
        let config = &keys_state.config;
        let rotate_after = config.signing_key_rotation_secs as i64;
        // A superseded key verifies until every token it signed has expired.
        let retire_after = config.access_token_ttl_secs as i64 + 300;
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            if let Err(e) = keys_state
                .keys
                .maintain(crate::now_unix(), rotate_after, retire_after)
                .await
            {
                tracing::warn!(error = %e, "signing key upkeep failed");
            }
        }
    });
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            every.tick().await;
            upkeep(&state, crate::now_unix()).await;
        }
    });
}

/// How long a revoked grant's own upstream cascade has before the upkeep
/// takes its leftover links as failed and retries them.
const REVOCATION_RETRY_AFTER_SECS: i64 = 60;

/// A grant younger than this is never taken for dead: a sign-in that links
/// several providers has no code until its last leg (all legs together
/// within `PENDING_TTL_SECS`).
const DEAD_GRANT_MIN_AGE_SECS: i64 = 3600;
/// How long one pass spends revoking dead grants; the next pass goes on.
const DEAD_GRANT_BUDGET: std::time::Duration = std::time::Duration::from_secs(300);

/// The hourly upkeep (also at start): the sweep of expired and dead rows,
/// grants no one can use any more, upstream revocations to retry, unused
/// dynamic clients, and the audit ledger's retention. Each step logs its own failure and the next runs.
pub async fn upkeep(state: &AppState, now: i64) {
    let metrics = &state.metrics;
    let grace = state.config.refresh_grace_secs as i64;
    let access_ttl = state.config.access_token_ttl_secs as i64;
    match state.store.sweep_expired(now, grace, access_ttl).await {
        Ok(swept) if swept.total() > 0 => tracing::info!(?swept, "expired rows swept"),
        Ok(_) => {}
        Err(e) => step_failed(metrics, "sweep", e),
    }
    let until = std::time::Instant::now() + DEAD_GRANT_BUDGET;
    match state
        .vault
        .revoke_dead_grants(now - DEAD_GRANT_MIN_AGE_SECS, until)
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(revoked = n, "grants no one can use any more revoked"),
        Err(e) => step_failed(metrics, "dead_grants", e),
    }
    // A grant revoked moments ago is still in its own background cascade;
    // retrying it now would revoke the same token upstream twice.
    match state
        .vault
        .retry_revocations(now - REVOCATION_RETRY_AFTER_SECS)
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(revoked = n, "upstream revocations retried"),
        Err(e) => step_failed(metrics, "revocation_retry", e),
    }
    if let Err(e) = crate::clients::configured::delete_removed(&state.store).await {
        step_failed(metrics, "removed_clients", e);
    }
    let ttl = state.config.dcr_client_ttl_secs as i64;
    if ttl > 0 {
        match state.vault.expire_unused_clients(now - ttl).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "expired unused dynamic client registrations"),
            Err(e) => step_failed(metrics, "client_expiry", e),
        }
    }
    let retention_days = state.config.ops.audit_retention_days as i64;
    if retention_days > 0 {
        let before = now - retention_days * 24 * 3600;
        match crate::audit::purge_before(&state.store, before, crate::audit::Actor::System).await {
            Ok(p) if p.removed > 0 => {
                tracing::info!(removed = p.removed, "audit events past retention purged")
            }
            Ok(_) => {}
            Err(e) => step_failed(metrics, "audit_retention", e),
        }
    }
    metrics.upkeep_completed(crate::now_unix());
}

/// One upkeep step (of `ops::metrics::UPKEEP_STEPS`) failed: counted and
/// logged; the next step runs anyway.
fn step_failed(
    metrics: &crate::ops::metrics::Metrics,
    step: &'static str,
    error: impl std::fmt::Display,
) {
    metrics.upkeep_step_failed(step);
    tracing::warn!(step, error = %error, "upkeep step failed");
}
