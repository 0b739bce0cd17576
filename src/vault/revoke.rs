//! The revocation cascade: when one of our grants is revoked, each of its
//! upstream links is revoked at the provider — with the upstream token, in
//! the provider's own style — and then deleted. A link whose provider could
//! not be reached stays, and the maintenance sweep tries again.

use super::links::{Vault, VaultError};
use crate::audit::{self, Actor, AuditEvent, EventKind};
use crate::upstream::revoke::revoke_upstream;
use crate::upstream::{Provider, UpstreamError, UpstreamTokens};

/// What an operator's revocation did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OperatorRevocation {
    /// Grants revoked by this call.
    pub grants: usize,
    pub links: RevocationOutcome,
    /// Consents withdrawn (`users disconnect`).
    pub consents: usize,
}

impl OperatorRevocation {
    pub fn add(&mut self, other: &OperatorRevocation) {
        self.grants += other.grants;
        self.links.revoked += other.links.revoked;
        self.links.retry_later += other.links.retry_later;
        self.consents += other.consents;
    }

    pub fn render(&self) -> String {
        format!(
            "{} grant(s) revoked; {} upstream link(s) revoked at their provider and deleted, \
             {} kept for a retry (provider unavailable)",
            self.grants, self.links.revoked, self.links.retry_later
        )
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct RevocationOutcome {
    /// Links revoked at their provider (or whose provider cannot revoke).
    pub revoked: usize,
    /// Links kept for a later attempt: the provider was unavailable.
    pub retry_later: usize,
}

/// Why the upkeep revoked a grant no one can use.
const DEAD_GRANT_REASON: &str =
    "nothing issued under it can still be used (expired, or a sign-in never finished)";

impl Vault {
    /// Revokes one of our grants now and its upstream links in the
    /// background: the caller (an RFC 7009 request, theft detection) must not
    /// wait on the provider. True when this call revoked it; the ledger then
    /// says `by` whom and why.
    pub async fn revoke_grant(
        &self,
        grant_id: &str,
        now: i64,
        by: Actor,
        reason: &str,
    ) -> Result<bool, VaultError> {
        let revoked = self.revoke_ours(grant_id, now, by.clone(), reason).await?;
        if revoked {
            let vault = self.clone();
            let grant_id = grant_id.to_string();
            tokio::spawn(crate::ops::request_id::carried(async move {
                if let Err(e) = vault.revoke_links(&grant_id, &by).await {
                    tracing::warn!(grant = %grant_id, error = %e, "upstream revocation failed; will retry");
                }
            }));
        }
        Ok(revoked)
    }

    /// An operator's (or the sweep's) revocation: now, cascade included.
    pub async fn revoke_grant_now(
        &self,
        grant_id: &str,
        by: Actor,
        reason: &str,
    ) -> Result<OperatorRevocation, VaultError> {
        let now = crate::now_unix();
        let grants = usize::from(self.revoke_ours(grant_id, now, by.clone(), reason).await?);
        // Links of a grant revoked earlier whose cascade failed go too.
        let links = self.revoke_links(grant_id, &by).await?;
        Ok(OperatorRevocation {
            grants,
            links,
            consents: 0,
        })
    }

    /// Our side: the grant, and with it every token we issued for it.
    async fn revoke_ours(
        &self,
        grant_id: &str,
        now: i64,
        by: Actor,
        reason: &str,
    ) -> Result<bool, VaultError> {
        let revoked = self.store.revoke_grant(grant_id, now).await?;
        if revoked {
            self.note_revoked(grant_id, by, reason).await;
        }
        Ok(revoked)
    }

    /// `token.revoked` for a grant this call revoked.
    async fn note_revoked(&self, grant_id: &str, by: Actor, reason: &str) {
        let event = AuditEvent::new(EventKind::TokenRevoked, by)
            .grant(grant_id)
            .detail(format!(
                "grant revoked ({reason}): its access and refresh tokens stop working"
            ));
        audit::note(&self.store, event).await;
    }

    /// The sweep's expiry of dynamic clients unused since `cutoff`: their
    /// grants are revoked (upstream too) before the clients are deleted, so
    /// no upstream token outlives its only copy. Returns the clients deleted.
    pub async fn expire_unused_clients(&self, cutoff: i64) -> Result<u64, VaultError> {
        let reason = "its client went unused and expired";
        for grant_id in self.store.grants_of_unused_dcr_clients(cutoff).await? {
            self.revoke_grant_now(&grant_id, Actor::System, reason)
                .await?;
        }
        let expired = self.store.delete_unused_dcr_clients(cutoff).await?;
        for client_id in &expired {
            let event = AuditEvent::new(EventKind::ClientExpired, Actor::System)
                .client(client_id)
                .detail(format!(
                    "dynamic registration unused since {}: deleted, with its grants and consents",
                    crate::utc::format_time(cutoff)
                ));
            audit::note(&self.store, event).await;
        }
        Ok(expired.len() as u64)
    }

    /// The operator's `users disconnect`: every live grant of the user, and
    /// every consent they gave (their next sign-in asks again).
    pub async fn disconnect_user(
        &self,
        user_id: &str,
        by: Actor,
    ) -> Result<OperatorRevocation, VaultError> {
        let mut total = OperatorRevocation::default();
        for grant_id in self.store.live_grants_of_user(user_id).await? {
            let one = self
                .revoke_grant_now(&grant_id, by.clone(), "the user was disconnected")
                .await?;
            total.add(&one);
        }
        for client_id in self.store.revoke_consents_of_user(user_id).await? {
            total.consents += 1;
            let event = AuditEvent::new(EventKind::ConsentRevoked, by.clone())
                .user(user_id)
                .client(&client_id)
                .detail("the user was disconnected");
            audit::note(&self.store, event).await;
        }
        Ok(total)
    }

    /// Revokes and deletes every upstream link of a revoked grant. `by`:
    /// who is revoking, named in each link's ledger event (the grant's
    /// revoker at first; `system` for the upkeep's retries, whose event
    /// follows that revoker's `token.revoked` in the ledger).
    pub async fn revoke_links(
        &self,
        grant_id: &str,
        by: &Actor,
    ) -> Result<RevocationOutcome, VaultError> {
        let mut outcome = RevocationOutcome::default();
        for link in self.store.upstream_links_of_grant(grant_id).await? {
            let tokens = self
                .open(&link, &link.access_token_enc, "access")
                .and_then(|a| {
                    let r = link
                        .refresh_token_enc
                        .as_deref()
                        .map(|r| self.open(&link, r, "refresh"))
                        .transpose()?;
                    Ok((a, r))
                });
            let sent = self.providers.get(&link.provider).is_some() && tokens.is_ok();
            let result = match (self.providers.get(&link.provider), tokens) {
                (Some(provider), Ok((access, refresh))) => {
                    revoke_upstream(&self.http, provider, &access, refresh.as_deref()).await
                }
                // Configured, but its discovery failed at start or its
                // variables are unset on this instance: it is not here now,
                // not gone, and the upstream grant is still live.
                (None, _) if self.is_undiscovered(&link.provider) => {
                    Err(UpstreamError::Unavailable(
                        "the provider is not enabled on this instance".into(),
                    ))
                }
                // No provider definition or an unreadable token: nothing can
                // be sent upstream, so only our copy can go.
                _ => Ok(()),
            };
            let outcome_text = match &result {
                Ok(()) if sent => "ok".to_string(),
                Ok(()) => {
                    "not sent (no provider definition or an unreadable token): our copy deleted"
                        .to_string()
                }
                Err(e) => format!("refused upstream ({e}): our copy deleted"),
            };
            match result {
                Ok(()) => {}
                Err(UpstreamError::Unavailable(message)) => {
                    tracing::warn!(link = %link.id, provider = %link.provider, %message,
                        "upstream revocation failed; will retry");
                    outcome.retry_later += 1;
                    continue;
                }
                Err(e @ UpstreamError::Rejected { .. }) => {
                    // The provider refuses to revoke (e.g. our app credentials
                    // changed): retrying will not help, and the grant is gone.
                    tracing::warn!(link = %link.id, provider = %link.provider, error = %e,
                        "upstream refused revocation; deleting our copy");
                }
            }
            // Only the version we revoked: a refresh that landed meanwhile
            // holds tokens the provider may not have revoked; the sweep
            // revokes those next time.
            if !self.store.delete_link(&link.id, link.version).await? {
                outcome.retry_later += 1;
                continue;
            }
            tracing::info!(link = %link.id, provider = %link.provider, grant = %grant_id,
                "upstream link revoked and deleted");
            let event = AuditEvent::new(EventKind::UpstreamRevoked, by.clone())
                .grant(grant_id)
                .provider(&link.provider)
                .outcome(outcome_text);
            audit::note(&self.store, event).await;
            outcome.revoked += 1;
        }
        Ok(outcome)
    }

    /// The upkeep's revocation of grants nothing issued under can still be
    /// used (`Store::dead_grants`), created before `created_before`: ours,
    /// then upstream, until `until` (the next pass goes on, so a provider
    /// that hangs cannot hold up the upkeep's other steps for long). Each is
    /// revoked only if still dead, and only the instance that revoked it
    /// revokes upstream. Returns how many it revoked.
    pub async fn revoke_dead_grants(
        &self,
        created_before: i64,
        until: std::time::Instant,
    ) -> Result<usize, VaultError> {
        let mut revoked = 0;
        let mut after = String::new();
        while std::time::Instant::now() < until {
            let page = self.store.dead_grants(created_before, &after, 100).await?;
            let Some(last) = page.last() else { break };
            after = last.clone();
            for grant_id in &page {
                if std::time::Instant::now() >= until {
                    break;
                }
                let now = crate::now_unix();
                if !self
                    .store
                    .revoke_grant_if_dead(grant_id, now, created_before)
                    .await?
                {
                    continue;
                }
                self.note_revoked(grant_id, Actor::System, DEAD_GRANT_REASON)
                    .await;
                self.revoke_links(grant_id, &Actor::System).await?;
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// Tokens a refresh got after its grant was revoked: never stored, so
    /// revoked now or never (a provider that is down leaves them to expire,
    /// and the ledger says so).
    pub(super) async fn revoke_unstored(
        &self,
        grant_id: &str,
        provider: &Provider,
        tokens: &UpstreamTokens,
    ) {
        let result = revoke_upstream(
            &self.http,
            provider,
            &tokens.access_token,
            tokens.refresh_token.as_deref(),
        )
        .await;
        let outcome = match &result {
            Ok(()) => "ok".to_string(),
            Err(e) => {
                tracing::warn!(grant = %grant_id, provider = %provider.id, error = %e,
                    "tokens refreshed for a revoked grant could not be revoked upstream");
                format!("failed: {e}")
            }
        };
        let event = AuditEvent::new(EventKind::UpstreamRevoked, Actor::System)
            .grant(grant_id)
            .provider(&provider.id)
            .outcome(outcome)
            .detail("tokens of a refresh that finished after the grant was revoked; never stored");
        audit::note(&self.store, event).await;
    }

    fn is_undiscovered(&self, provider_id: &str) -> bool {
        self.providers
            .undiscovered
            .iter()
            .any(|(id, _)| id == provider_id)
            || self
                .providers
                .skipped
                .iter()
                .any(|(id, _)| id == provider_id)
    }

    /// The sweep's retry of revocations that met an unavailable provider:
    /// every grant revoked at or before `revoked_before` that still holds a
    /// link, in pages, so grants stuck on a provider that keeps failing never
    /// starve the others.
    pub async fn retry_revocations(&self, revoked_before: i64) -> Result<usize, VaultError> {
        let mut revoked = 0;
        let mut after = String::new();
        loop {
            let page = self
                .store
                .revoked_grants_with_links(revoked_before, &after, 100)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.clone();
            for grant_id in &page {
                revoked += self.revoke_links(grant_id, &Actor::System).await?.revoked;
            }
        }
        Ok(revoked)
    }
}
