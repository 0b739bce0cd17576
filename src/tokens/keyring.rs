//! The signing keys in use, shared by every instance through the database:
//! the newest active key signs; every active key verifies and is published in
//! the JWKS. A new key (by command or by age) is picked up by other instances
//! at their next reload, or at once when they meet its `kid`; a superseded key
//! retires only after every token it signed has expired.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::access::{AccessClaims, AccessTokenError, verify_access_token};
use super::signing::{SigningKeyError, SigningKeys, generate};
use super::verified::VerifiedTokens;
use crate::store::Store;
use crate::vault::Cipher;

/// An unknown `kid` triggers a reload at most this often, so garbage tokens
/// cannot turn into a database query each.
const RELOAD_ON_MISS_EVERY: Duration = Duration::from_secs(1);

pub struct KeyRing {
    store: Store,
    cipher: Cipher,
    keys: RwLock<Arc<SigningKeys>>,
    /// Held from reading the keys to installing them: two reloads that
    /// overlap (the minute tick and a rotation, say) could otherwise install
    /// the older read last, bringing back a superseded key.
    reloading: tokio::sync::Mutex<()>,
    last_reload: Mutex<Instant>,
    verified: VerifiedTokens,
}

impl KeyRing {
    pub async fn load(store: Store, cipher: Cipher, now: i64) -> Result<KeyRing, SigningKeyError> {
        let keys = SigningKeys::load_or_create(&store, &cipher, now).await?;
        Ok(KeyRing {
            store,
            cipher,
            keys: RwLock::new(Arc::new(keys)),
            reloading: tokio::sync::Mutex::new(()),
            last_reload: Mutex::new(Instant::now()),
            verified: VerifiedTokens::default(),
        })
    }

    pub fn current(&self) -> Arc<SigningKeys> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub async fn reload(&self) -> Result<(), SigningKeyError> {
        let _one_at_a_time = self.reloading.lock().await;
        let keys =
            SigningKeys::load_or_create(&self.store, &self.cipher, crate::now_unix()).await?;
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
        *self.last_reload.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        Ok(())
    }

    /// `verify_access_token`, reloading once if the token names a key this
    /// instance has not loaded yet (another instance rotated).
    pub async fn verify(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
    ) -> Result<AccessClaims, AccessTokenError> {
        let now = crate::now_unix();
        if let Some(claims) = self.verified.get(token, now)
            && claims.iss == issuer
            && claims.aud == audience
        {
            return Ok(claims);
        }
        let result = match verify_access_token(&self.current(), token, issuer, audience) {
            Err(AccessTokenError::UnknownKey) if self.may_reload_on_miss() => {
                if let Err(e) = self.reload().await {
                    tracing::warn!(error = %e, "signing key reload failed");
                }
                verify_access_token(&self.current(), token, issuer, audience)
            }
            other => other,
        };
        if let Ok(claims) = &result {
            self.verified.insert(token, claims, now);
        }
        result
    }

    /// Claims the reload slot: of many requests meeting an unknown `kid` at
    /// once, one reloads and the rest use the keys they have.
    fn may_reload_on_miss(&self) -> bool {
        let Ok(mut last) = self.last_reload.lock() else {
            return false;
        };
        if last.elapsed() < RELOAD_ON_MISS_EVERY {
            return false;
        }
        *last = Instant::now();
        true
    }

    /// Adds a new current key; returns its `kid`.
    pub async fn rotate(&self, now: i64) -> Result<String, SigningKeyError> {
        let row = generate(&self.cipher, now);
        let kid = row.kid.clone();
        self.store.insert_signing_key(&row).await?;
        self.reload().await?;
        Ok(kid)
    }

    /// Periodic upkeep: rotate when the current key is older than
    /// `rotate_after` (0 = never), retire keys superseded more than
    /// `retire_after` ago, and reload what other instances changed.
    pub async fn maintain(
        &self,
        now: i64,
        rotate_after: i64,
        retire_after: i64,
    ) -> Result<(), SigningKeyError> {
        let rows = self.store.active_signing_keys().await?;
        if rotate_after > 0
            && rows
                .first()
                .is_some_and(|newest| now - newest.created_at >= rotate_after)
        {
            let kid = self.rotate(now).await?;
            tracing::info!(kid = %kid, "signing key rotated by age");
        }
        // Rows are newest first: each key was superseded when the one before
        // it in the list was created.
        let rows = self.store.active_signing_keys().await?;
        for pair in rows.windows(2) {
            let (newer, older) = (&pair[0], &pair[1]);
            if now - newer.created_at >= retire_after {
                self.store.retire_signing_key(&older.kid, now).await?;
                // Tokens it signed are no longer acceptable, cached or not.
                self.verified.clear();
                tracing::info!(kid = %older.kid, "superseded signing key retired");
            }
        }
        self.reload().await
    }
}
