//! The vault: sealing upstream tokens into links (envelope encryption) and
//! handing a usable one to a tool, refreshed first when it is about to expire.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::cipher::DataKey;
use super::single_flight::SingleFlight;
use super::{Cipher, CipherError};
use crate::store::{NewUpstreamLink, Store, StoreError, UpstreamLinkRow};
use crate::upstream::provider::RefreshPolicy;
use crate::upstream::{Provider, ProviderSet, UpstreamTokens};

#[derive(Clone)]
pub struct Vault {
    pub(super) store: Store,
    pub(super) cipher: Cipher,
    pub(super) http: reqwest::Client,
    pub(super) providers: Arc<ProviderSet>,
    /// Names this process in refresh leases.
    pub(super) instance: Arc<str>,
    pub(super) flights: SingleFlight<super::refresh::Outcome>,
    /// How long one refresh may hold the cross-instance lease.
    pub(super) lease: Duration,
    /// Where upstream refreshes are counted and timed.
    pub(super) metrics: Arc<crate::ops::metrics::Metrics>,
}

/// An upstream access token ready for one API call. `Debug` hides it.
#[derive(Clone)]
pub struct UpstreamToken {
    pub access_token: String,
    pub expires_at: Option<i64>,
    /// The link version it was read at: a tool whose call is refused
    /// upstream asks for a token newer than this one.
    pub version: i64,
}

impl fmt::Debug for UpstreamToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamToken")
            .field("access_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("version", &self.version)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("this grant has no {0} link")]
    NotLinked(String),
    #[error("{provider} no longer accepts this authorization ({reason}): sign in again")]
    ReauthRequired { provider: String, reason: String },
    #[error("{provider} is unavailable ({message}); try again shortly")]
    Unavailable { provider: String, message: String },
    #[error("the stored {0} token does not open: wrong key or a moved ciphertext")]
    Sealed(String),
    #[error("{0} is not configured on this broker")]
    UnknownProvider(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a token ciphertext is bound to: its row, its grant, its provider and
/// which of the two tokens it is. Moving it anywhere else breaks the tag.
pub fn link_aad(link_id: &str, grant_id: &str, provider: &str, field: &str) -> String {
    format!("mcp-broker/upstream-link/v1|{link_id}|{grant_id}|{provider}|{field}")
}

/// What a link's wrapped data key is bound to.
pub fn data_key_aad(link_id: &str, grant_id: &str, provider: &str) -> String {
    format!("mcp-broker/upstream-link-key/v1|{link_id}|{grant_id}|{provider}")
}

/// When a token answer's lifetime says it expires; `None`: until revoked.
pub fn expiry(tokens: &UpstreamTokens, policy: &RefreshPolicy, now: i64) -> Option<i64> {
    tokens
        .expires_in
        .or(policy.assumed_lifetime_secs)
        .map(|secs| now + secs)
}

/// What a token answer granted, for the ledger and for people: scopes,
/// lifetimes, whether a refresh token came. Never a token value.
pub fn describe_tokens(how: &str, tokens: &UpstreamTokens) -> String {
    let scopes = match tokens.scopes.join(" ") {
        s if s.is_empty() => "(none stated)".to_string(),
        s => s,
    };
    let lifetime = match tokens.expires_in {
        Some(secs) => format!("expires in {secs} s"),
        None => "no stated expiry".to_string(),
    };
    let refresh = match (&tokens.refresh_token, tokens.refresh_token_expires_in) {
        (Some(_), Some(secs)) => format!("refresh token (expires in {secs} s)"),
        (Some(_), None) => "refresh token".to_string(),
        (None, _) => "no refresh token".to_string(),
    };
    format!("{how}: upstream scopes {scopes}; {lifetime}; {refresh}")
}

/// Whether a link's access token is inside the provider's expiry buffer.
pub fn needs_refresh(expires_at: Option<i64>, policy: &RefreshPolicy, now: i64) -> bool {
    expires_at.is_some_and(|exp| exp - policy.expiry_buffer_secs <= now)
}

impl Vault {
    pub fn new(
        store: Store,
        cipher: Cipher,
        http: reqwest::Client,
        providers: Arc<ProviderSet>,
        upstream_timeout: Duration,
    ) -> Vault {
        Vault {
            store,
            cipher,
            http,
            providers,
            instance: crate::store::new_id().into(),
            flights: SingleFlight::default(),
            // Three attempts and their backoff fit inside the lease, so a
            // live refresher never loses it to another instance.
            lease: upstream_timeout * 3 + Duration::from_secs(5),
            metrics: Arc::default(),
        }
    }

    /// Counts upstream refreshes in the broker's registry (`/metrics`).
    pub fn with_metrics(mut self, metrics: Arc<crate::ops::metrics::Metrics>) -> Vault {
        self.metrics = metrics;
        self
    }

    pub(super) fn provider(&self, id: &str) -> Result<&Provider, VaultError> {
        self.providers
            .get(id)
            .ok_or_else(|| VaultError::UnknownProvider(id.to_string()))
    }

    /// Seals upstream tokens under a fresh data key, wrapped by the newest
    /// key-encryption key. Used for new links and for every refresh.
    pub fn seal_link(
        &self,
        link_id: &str,
        grant_id: &str,
        provider: &Provider,
        tokens: &UpstreamTokens,
        now: i64,
    ) -> NewUpstreamLink {
        let (data_key, bytes) = DataKey::generate();
        let aad = |field| link_aad(link_id, grant_id, &provider.id, field);
        NewUpstreamLink {
            id: link_id.to_string(),
            provider: provider.id.clone(),
            access_token_enc: data_key.seal_str(&tokens.access_token, &aad("access")),
            refresh_token_enc: tokens
                .refresh_token
                .as_ref()
                .map(|t| data_key.seal_str(t, &aad("refresh"))),
            data_key_enc: self.cipher.seal(
                &bytes,
                data_key_aad(link_id, grant_id, &provider.id).as_bytes(),
            ),
            kek_id: i64::from(self.cipher.newest_kek()),
            scopes: tokens.scopes.join(" "),
            expires_at: expiry(tokens, &provider.refresh, now),
            refresh_expires_at: tokens.refresh_token_expires_in.map(|s| now + s),
        }
    }

    /// Opens one of a link's tokens (`field` is `access` or `refresh`).
    pub(super) fn open(
        &self,
        link: &UpstreamLinkRow,
        sealed: &[u8],
        field: &str,
    ) -> Result<String, CipherError> {
        let aad = link_aad(&link.id, &link.grant_id, &link.provider, field);
        match &link.data_key_enc {
            Some(wrapped) => DataKey::unwrap(
                &self.cipher,
                wrapped,
                &data_key_aad(&link.id, &link.grant_id, &link.provider),
            )?
            .open_string(sealed, &aad),
            // Sealed before envelope encryption: directly under KEK 1.
            None => self.cipher.open_string(sealed, &aad),
        }
    }

    pub(super) fn open_access(&self, link: &UpstreamLinkRow) -> Result<UpstreamToken, VaultError> {
        let access_token = self
            .open(link, &link.access_token_enc, "access")
            .map_err(|e| {
                tracing::error!(link = %link.id, error = %e, "an upstream token does not open");
                VaultError::Sealed(link.provider.clone())
            })?;
        Ok(UpstreamToken {
            access_token,
            expires_at: link.expires_at,
            version: link.version,
        })
    }

    /// The upstream access token mapped to this grant for `provider`,
    /// refreshed first when it is inside the provider's expiry buffer.
    pub async fn usable_token(
        &self,
        grant_id: &str,
        provider_id: &str,
        now: i64,
    ) -> Result<UpstreamToken, VaultError> {
        let provider = self.provider(provider_id)?;
        let link = self.live_link(grant_id, provider).await?;
        if !needs_refresh(link.expires_at, &provider.refresh, now) {
            return self.open_access(&link);
        }
        let still_valid = link.expires_at.is_some_and(|exp| exp > now);
        match self.refresh(grant_id, provider_id, link.version).await {
            Ok(token) => Ok(token),
            // Inside the buffer but not yet expired: the current token still
            // works while the provider is down.
            Err(VaultError::Unavailable { .. }) if still_valid => self.open_access(&link),
            Err(e) => Err(e),
        }
    }

    /// After the provider refused `rejected` (HTTP 401): a newer token if
    /// another caller already refreshed, else one refresh.
    pub async fn token_after_rejection(
        &self,
        grant_id: &str,
        provider_id: &str,
        rejected: &UpstreamToken,
    ) -> Result<UpstreamToken, VaultError> {
        self.refresh(grant_id, provider_id, rejected.version).await
    }

    /// After a third party (a gateway's downstream MCP server) refused
    /// `rejected`: a refresh if the link can refresh, else `None`. A
    /// downstream's 401 is not the provider's word, so it never ends a link
    /// by itself (only the provider refusing the refresh token does).
    pub async fn token_after_downstream_rejection(
        &self,
        grant_id: &str,
        provider_id: &str,
        rejected: &UpstreamToken,
    ) -> Result<Option<UpstreamToken>, VaultError> {
        let link = self
            .store
            .upstream_link(grant_id, provider_id)
            .await?
            .ok_or_else(|| VaultError::NotLinked(provider_id.to_string()))?;
        if link.refresh_token_enc.is_none() {
            return Ok(None);
        }
        self.refresh(grant_id, provider_id, rejected.version)
            .await
            .map(Some)
    }
}

impl Vault {
    /// The grant's link to `provider`, unless the provider ended it.
    pub(super) async fn live_link(
        &self,
        grant_id: &str,
        provider: &Provider,
    ) -> Result<UpstreamLinkRow, VaultError> {
        let link = self
            .store
            .upstream_link(grant_id, &provider.id)
            .await?
            .ok_or_else(|| VaultError::NotLinked(provider.id.clone()))?;
        match reauth_reason(&link) {
            Some(reason) => Err(VaultError::ReauthRequired {
                provider: provider.display_name.clone(),
                reason,
            }),
            None => Ok(link),
        }
    }
}

fn reauth_reason(link: &UpstreamLinkRow) -> Option<String> {
    link.reauth_required_at.map(|_| {
        link.reauth_reason
            .clone()
            .unwrap_or_else(|| "re-authorization required".into())
    })
}
