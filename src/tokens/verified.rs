//! Tokens already verified, by the SHA-256 of their text. An ES256 check
//! costs ~370 µs here (the `hot_path` bench); a client sends the same token
//! on every request for its lifetime, so the signature is checked once.
//! Entries end with the token's `exp`; revocation is unaffected, because the
//! bearer check still reads the grant's status on every request.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::AccessClaims;

const MAX_ENTRIES: usize = 50_000;

#[derive(Default)]
pub struct VerifiedTokens {
    entries: Mutex<HashMap<[u8; 32], AccessClaims>>,
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl VerifiedTokens {
    /// The claims of a token verified before and not yet expired.
    pub fn get(&self, token: &str, now: i64) -> Option<AccessClaims> {
        let entries = self.entries.lock().ok()?;
        entries.get(&key(token)).filter(|c| c.exp > now).cloned()
    }

    pub fn insert(&self, token: &str, claims: &AccessClaims, now: i64) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, c| c.exp > now);
            if entries.len() >= MAX_ENTRIES {
                // Still full of live tokens: start over rather than grow.
                entries.clear();
            }
        }
        entries.insert(key(token), claims.clone());
    }

    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "i".into(),
            sub: "s".into(),
            aud: "a".into(),
            client_id: "c".into(),
            scope: "profile".into(),
            jti: "j".into(),
            iat: 0,
            exp,
            grant_id: "g".into(),
        }
    }

    #[test]
    fn a_verified_token_is_remembered_until_it_expires() {
        let cache = VerifiedTokens::default();
        cache.insert("t1", &claims(100), 0);
        assert_eq!(cache.get("t1", 99).map(|c| c.exp), Some(100));
        assert!(cache.get("t1", 100).is_none());
        assert!(cache.get("other", 0).is_none());
    }
}
