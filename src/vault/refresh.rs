//! Refresh on demand. Inside a process, callers for one link queue behind a
//! single flight. Across instances sharing a database, the one that takes the
//! link's lease refreshes; the others poll until the version moves. Writes
//! are fenced by version, so a slow instance that lost its lease can never
//! overwrite a newer rotated refresh token.

use std::time::{Duration, Instant};

use super::links::{UpstreamToken, Vault, VaultError, describe_tokens};
use crate::audit::{self, Actor, AuditEvent, EventKind};
use crate::store::UpstreamLinkRow;
use crate::upstream::failure::{Failure, classify};
use crate::upstream::flow::refresh_tokens;
use crate::upstream::{Provider, UpstreamTokens};

/// Attempts per refresh for transient failures, and the first backoff.
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// How long a failed refresh answers the callers queued behind it.
const SHARE_FAILURE_FOR: Duration = Duration::from_secs(2);
/// How often an instance waiting on another's lease looks again.
const LEASE_POLL: Duration = Duration::from_millis(50);

impl Vault {
    /// A token newer than `seen_version`: someone else's refresh if one
    /// landed meanwhile, else ours.
    pub(super) async fn refresh(
        &self,
        grant_id: &str,
        provider_id: &str,
        seen_version: i64,
    ) -> Result<UpstreamToken, VaultError> {
        let provider = self.provider(provider_id)?;
        let mut flight = self
            .flights
            .enter(&format!("{grant_id}\n{provider_id}"))
            .await;
        // The caller before us in this process settled it: its outcome is
        // ours (a failure too, so an outage costs one round of retries per
        // burst, not one per caller).
        match flight.result() {
            Some(Outcome::Token(token)) if token.version > seen_version => {
                return Ok(token.clone());
            }
            // Only a recent failure: under steady traffic the queue never
            // drains, and a provider that recovered must be asked again.
            Some(Outcome::Failed(e, at)) if at.elapsed() < SHARE_FAILURE_FOR => {
                return Err(e.to_error());
            }
            _ => {}
        }
        let result = self.refresh_once(grant_id, provider, seen_version).await;
        match &result {
            Ok(token) => flight.set(Outcome::Token(token.clone())),
            Err(e) => {
                if let Some(shared) = SharedFailure::of(e) {
                    flight.set(Outcome::Failed(shared, Instant::now()));
                }
            }
        }
        result
    }

    /// The cross-instance part: someone else's newer version, or ours.
    async fn refresh_once(
        &self,
        grant_id: &str,
        provider: &Provider,
        seen_version: i64,
    ) -> Result<UpstreamToken, VaultError> {
        let deadline = Instant::now() + self.lease + Duration::from_secs(1);
        loop {
            let link = self.live_link(grant_id, provider).await?;
            if link.version > seen_version {
                return self.open_access(&link);
            }
            // Lease times by the database's clock (see `Store::db_now`).
            let now = self.store.db_now().await?;
            let until = now + self.lease.as_secs() as i64;
            if self
                .store
                .try_lease_link_refresh(&link.id, link.version, &self.instance, now, until)
                .await?
            {
                // In its own task: a caller that gives up (client gone,
                // request cancelled) must not drop a rotated refresh token
                // between the provider's answer and our write.
                let (vault, owned) = (self.clone(), provider.clone());
                let task = async move { vault.refresh_leased(link, &owned).await };
                return tokio::spawn(crate::ops::request_id::carried(task))
                    .await
                    .unwrap_or_else(|e| {
                        tracing::error!(error = %e, "the refresh task failed");
                        Err(unavailable(provider, "the refresh failed"))
                    });
            }
            if Instant::now() >= deadline {
                return Err(unavailable(
                    provider,
                    "another broker instance is refreshing this token",
                ));
            }
            tokio::time::sleep(LEASE_POLL).await;
        }
    }

    /// We hold the lease on `link.version`: refresh upstream and write.
    async fn refresh_leased(
        &self,
        link: UpstreamLinkRow,
        provider: &Provider,
    ) -> Result<UpstreamToken, VaultError> {
        let now = crate::now_unix();
        let Some(sealed) = link.refresh_token_enc.as_deref() else {
            // GitHub OAuth App tokens: no refresh token, so a refused or
            // expired token can only be replaced by signing in again.
            return self
                .give_up(
                    &link,
                    provider,
                    "the token expired or was revoked and cannot be refreshed",
                )
                .await;
        };
        if link.refresh_expires_at.is_some_and(|exp| exp <= now) {
            return self
                .give_up(&link, provider, "the refresh token expired")
                .await;
        }
        let refresh_token = match self.open(&link, sealed, "refresh") {
            Ok(token) => token,
            Err(e) => {
                tracing::error!(link = %link.id, error = %e, "a refresh token does not open");
                self.record_failure(&link, "failed: unreadable", &e.to_string())
                    .await;
                self.store
                    .release_link_lease(&link.id, &self.instance)
                    .await?;
                return Err(VaultError::Sealed(provider.id.clone()));
            }
        };
        let started = Instant::now();
        let result = self
            .call_with_retries(&link, provider, &refresh_token)
            .await;
        match result {
            Ok(mut tokens) => {
                if tokens.refresh_token.is_none() {
                    if provider.refresh.rotates_refresh_token {
                        tracing::warn!(provider = %provider.id,
                            "a rotating provider answered a refresh without a new refresh token");
                    }
                    // Providers that do not rotate may omit it: keep ours,
                    // with its expiry.
                    tokens.refresh_token = Some(refresh_token);
                    tokens.refresh_token_expires_in = link.refresh_expires_at.map(|e| e - now);
                }
                if tokens.scopes.is_empty() {
                    tokens.scopes = link.scopes.split(' ').map(str::to_string).collect();
                }
                self.write_refreshed(&link, provider, &tokens, started)
                    .await
            }
            Err(Failure::Permanent(reason)) => {
                tracing::warn!(link = %link.id, provider = %provider.id, %reason,
                    "upstream refused the refresh token: the user must sign in again");
                self.give_up(&link, provider, &format!("the provider answered {reason}"))
                    .await
            }
            Err(Failure::Transient(message)) => {
                tracing::warn!(link = %link.id, provider = %provider.id, %message,
                    "upstream refresh failed; the stored token is kept");
                let detail = format!("{message}; the stored token is kept");
                self.record_failure(&link, "failed: transient", &detail)
                    .await;
                self.store
                    .release_link_lease(&link.id, &self.instance)
                    .await?;
                Err(unavailable(provider, &message))
            }
        }
    }

    async fn call_with_retries(
        &self,
        link: &UpstreamLinkRow,
        provider: &Provider,
        refresh_token: &str,
    ) -> Result<UpstreamTokens, Failure> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            if attempt > 1 {
                // Renew the lease before each retry; if another instance took
                // it meanwhile, stop: two callers must never both spend one
                // rotating refresh token.
                let Ok(now) = self.store.db_now().await else {
                    return Err(Failure::Transient("the database is unavailable".into()));
                };
                let until = now + self.lease.as_secs() as i64;
                match self
                    .store
                    .try_lease_link_refresh(&link.id, link.version, &self.instance, now, until)
                    .await
                {
                    Ok(true) => {}
                    _ => return Err(Failure::Transient("the refresh lease was lost".into())),
                }
            }
            let call = refresh_tokens(&self.http, provider, refresh_token);
            match self.metrics.upstream_refresh(provider, call).await {
                Ok(tokens) => return Ok(tokens),
                Err(e) => match classify(&provider.refresh, &e) {
                    Failure::Transient(_) if attempt < ATTEMPTS => {
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                        attempt += 1;
                    }
                    failure => return Err(failure),
                },
            }
        }
    }

    async fn write_refreshed(
        &self,
        link: &UpstreamLinkRow,
        provider: &Provider,
        tokens: &UpstreamTokens,
        started: Instant,
    ) -> Result<UpstreamToken, VaultError> {
        let now = crate::now_unix();
        let sealed = self.seal_link(&link.id, &link.grant_id, provider, tokens, now);
        if self
            .store
            .store_refreshed_link(link.version, &sealed, now)
            .await?
        {
            let elapsed_ms = started.elapsed().as_millis() as u64;
            tracing::info!(link = %link.id, provider = %provider.id, version = link.version + 1,
                elapsed_ms, "upstream token refreshed");
            let event = AuditEvent::new(EventKind::UpstreamRefreshed, Actor::System)
                .grant(&link.grant_id)
                .provider(&provider.id)
                .detail(format!(
                    "{} (took {elapsed_ms} ms)",
                    describe_tokens("refreshed on demand", tokens)
                ));
            audit::note(&self.store, event).await;
            return Ok(UpstreamToken {
                access_token: tokens.access_token.clone(),
                expires_at: sealed.expires_at,
                version: link.version + 1,
            });
        }
        // The grant was revoked while the provider answered: its cascade
        // revoked the tokens it read, not these, and no one may use them.
        let revoked = self
            .store
            .grant_status(&link.grant_id)
            .await?
            .is_none_or(|g| g.revoked);
        if revoked {
            self.revoke_unstored(&link.grant_id, provider, tokens).await;
            return Err(VaultError::ReauthRequired {
                provider: provider.display_name.clone(),
                reason: "this authorization was revoked".into(),
            });
        }
        // Our lease lapsed and another instance wrote first: its tokens are
        // the live ones (with a rotating provider, ours may already be dead).
        tracing::warn!(link = %link.id, "a newer refresh landed first; dropping ours");
        let newer = self.live_link(&link.grant_id, provider).await?;
        self.open_access(&newer)
    }

    /// Marks the link for re-authorization (if still at this version) and
    /// says so. A concurrent successful refresh wins over the mark.
    async fn give_up(
        &self,
        link: &UpstreamLinkRow,
        provider: &Provider,
        reason: &str,
    ) -> Result<UpstreamToken, VaultError> {
        let now = crate::now_unix();
        let marked = self
            .store
            .mark_link_reauth(&link.id, link.version, reason, now)
            .await?;
        if marked {
            let detail = format!("{reason}; the user must sign in again");
            self.record_failure(link, "failed: permanent", &detail)
                .await;
        } else if let Some(newer) = self
            .store
            .upstream_link(&link.grant_id, &provider.id)
            .await?
            && newer.version > link.version
            && newer.reauth_required_at.is_none()
        {
            return self.open_access(&newer);
        }
        Err(VaultError::ReauthRequired {
            provider: provider.display_name.clone(),
            reason: reason.to_string(),
        })
    }

    /// `upstream.refresh_failed`, with `outcome` saying which kind.
    async fn record_failure(&self, link: &UpstreamLinkRow, outcome: &str, detail: &str) {
        let event = AuditEvent::new(EventKind::UpstreamRefreshFailed, Actor::System)
            .grant(&link.grant_id)
            .provider(&link.provider)
            .outcome(outcome)
            .detail(detail);
        audit::note(&self.store, event).await;
    }
}

/// What one caller's refresh left for the callers queued behind it.
#[derive(Clone)]
pub(super) enum Outcome {
    Token(UpstreamToken),
    Failed(SharedFailure, Instant),
}

#[derive(Clone)]
pub(super) enum SharedFailure {
    Unavailable { provider: String, message: String },
    Reauth { provider: String, reason: String },
}

impl SharedFailure {
    fn of(e: &VaultError) -> Option<SharedFailure> {
        match e {
            VaultError::Unavailable { provider, message } => Some(SharedFailure::Unavailable {
                provider: provider.clone(),
                message: message.clone(),
            }),
            VaultError::ReauthRequired { provider, reason } => Some(SharedFailure::Reauth {
                provider: provider.clone(),
                reason: reason.clone(),
            }),
            _ => None,
        }
    }

    fn to_error(&self) -> VaultError {
        match self.clone() {
            SharedFailure::Unavailable { provider, message } => {
                VaultError::Unavailable { provider, message }
            }
            SharedFailure::Reauth { provider, reason } => {
                VaultError::ReauthRequired { provider, reason }
            }
        }
    }
}

fn unavailable(provider: &Provider, message: &str) -> VaultError {
    VaultError::Unavailable {
        provider: provider.display_name.clone(),
        message: message.to_string(),
    }
}
