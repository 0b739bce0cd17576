//! Our ES256 signing keys. They live in the database (private half sealed by
//! the vault cipher) so every instance on one database signs and verifies with
//! the same keys; the public halves are published as a JWKS.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use p256::ecdsa::SigningKey;
use p256::pkcs8::EncodePrivateKey;

use crate::store::{SigningKeyRow, Store, StoreError};
use crate::vault::Cipher;

pub const ALG: &str = "ES256";

pub struct SigningKeys {
    current_kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    jwks: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "signing key {0} does not open with the configured encryption key (was the key changed?)"
    )]
    Sealed(String),
    #[error("signing key {0} is malformed")]
    Malformed(String),
}

pub(crate) fn private_key_aad(kid: &str) -> String {
    format!("mcp-broker/signing-key/v1|{kid}")
}

impl SigningKeys {
    /// Loads the active keys, creating the first one on a new database.
    pub async fn load_or_create(
        store: &Store,
        cipher: &Cipher,
        now: i64,
    ) -> Result<SigningKeys, SigningKeyError> {
        let mut rows = store.active_signing_keys().await?;
        if rows.is_empty() {
            // Two instances starting together may both insert; both keys are
            // then active and each verifies the other's tokens after a reload.
            store.insert_signing_key(&generate(cipher, now)).await?;
            rows = store.active_signing_keys().await?;
        }
        SigningKeys::from_rows(&rows, cipher)
    }

    fn from_rows(rows: &[SigningKeyRow], cipher: &Cipher) -> Result<SigningKeys, SigningKeyError> {
        let newest = &rows[0];
        let der = cipher
            .open(
                &newest.private_key_enc,
                private_key_aad(&newest.kid).as_bytes(),
            )
            .map_err(|_| SigningKeyError::Sealed(newest.kid.clone()))?;
        let mut decoding = HashMap::new();
        let mut keys = Vec::new();
        for row in rows {
            let key = DecodingKey::from_ec_components(&row.public_x, &row.public_y)
                .map_err(|_| SigningKeyError::Malformed(row.kid.clone()))?;
            decoding.insert(row.kid.clone(), key);
            keys.push(serde_json::json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": ALG,
                "kid": row.kid, "x": row.public_x, "y": row.public_y,
            }));
        }
        Ok(SigningKeys {
            current_kid: newest.kid.clone(),
            encoding: EncodingKey::from_ec_der(&der),
            decoding,
            jwks: serde_json::json!({ "keys": keys }),
        })
    }

    pub fn current_kid(&self) -> &str {
        &self.current_kid
    }

    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    pub fn decoding_key(&self, kid: &str) -> Option<&DecodingKey> {
        self.decoding.get(kid)
    }

    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }
}

pub(crate) fn generate(cipher: &Cipher, now: i64) -> SigningKeyRow {
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let der = key
        .to_pkcs8_der()
        .expect("a fresh P-256 key encodes as PKCS#8");
    let point = key.verifying_key().to_encoded_point(false);
    let kid = super::opaque::random_urlsafe(12);
    SigningKeyRow {
        private_key_enc: cipher.seal(der.as_bytes(), private_key_aad(&kid).as_bytes()),
        public_x: URL_SAFE_NO_PAD.encode(point.x().expect("uncompressed point has x")),
        public_y: URL_SAFE_NO_PAD.encode(point.y().expect("uncompressed point has y")),
        alg: ALG.into(),
        kid,
        created_at: now,
        retired_at: None,
    }
}

#[cfg(test)]
pub(crate) fn for_tests() -> SigningKeys {
    let cipher = Cipher::new(&[9u8; 32]);
    SigningKeys::from_rows(&[generate(&cipher, 0)], &cipher).unwrap()
}
