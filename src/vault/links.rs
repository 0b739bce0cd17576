//! Sealing upstream tokens into links and opening them for tools.

use std::fmt;

use super::Cipher;
use crate::store::{NewUpstreamLink, Store, StoreError};
use crate::upstream::UpstreamTokens;

#[derive(Clone)]
pub struct Vault {
    store: Store,
    cipher: Cipher,
}

/// An upstream access token ready for one API call. `Debug` hides it.
pub struct UpstreamToken {
    pub access_token: String,
    pub expires_at: Option<i64>,
}

impl fmt::Debug for UpstreamToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamToken")
            .field("access_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("this grant has no {0} link")]
    NotLinked(String),
    #[error("the {0} token has expired and must be re-authorized")]
    Expired(String),
    #[error("the stored {0} token does not open: wrong key or a moved ciphertext")]
    Sealed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a ciphertext is bound to: its row, its grant, its provider and which
/// of the two tokens it is. Moving a ciphertext anywhere else breaks the tag.
pub fn link_aad(link_id: &str, grant_id: &str, provider: &str, field: &str) -> String {
    format!("mcp-broker/upstream-link/v1|{link_id}|{grant_id}|{provider}|{field}")
}

impl Vault {
    pub fn new(store: Store, cipher: Cipher) -> Vault {
        Vault { store, cipher }
    }

    /// Seals freshly issued upstream tokens for a new link.
    pub fn seal_new_link(
        &self,
        link_id: &str,
        grant_id: &str,
        provider: &str,
        tokens: &UpstreamTokens,
        now: i64,
    ) -> NewUpstreamLink {
        let aad = |field| link_aad(link_id, grant_id, provider, field);
        NewUpstreamLink {
            id: link_id.to_string(),
            provider: provider.to_string(),
            access_token_enc: self.cipher.seal_str(&tokens.access_token, &aad("access")),
            refresh_token_enc: tokens
                .refresh_token
                .as_ref()
                .map(|t| self.cipher.seal_str(t, &aad("refresh"))),
            scopes: tokens.scopes.join(" "),
            // GitHub OAuth App tokens carry no expiry: they live until revoked.
            expires_at: tokens.expires_in.map(|s| now + s),
            refresh_expires_at: tokens.refresh_token_expires_in.map(|s| now + s),
        }
    }

    /// The upstream access token mapped to this grant for `provider`.
    pub async fn access_token(
        &self,
        grant_id: &str,
        provider: &str,
        now: i64,
    ) -> Result<UpstreamToken, VaultError> {
        let link = self
            .store
            .upstream_link(grant_id, provider)
            .await?
            .ok_or_else(|| VaultError::NotLinked(provider.to_string()))?;
        if link.expires_at.is_some_and(|exp| exp <= now) {
            // Refresh on demand arrives with the vault's refresh work; until
            // then an expired token is reported, never handed out.
            return Err(VaultError::Expired(provider.to_string()));
        }
        let access_token = self
            .cipher
            .open_string(
                &link.access_token_enc,
                &link_aad(&link.id, &link.grant_id, &link.provider, "access"),
            )
            .map_err(|_| VaultError::Sealed(provider.to_string()))?;
        Ok(UpstreamToken {
            access_token,
            expires_at: link.expires_at,
        })
    }
}
