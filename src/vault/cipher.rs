//! AES-256-GCM with associated data, under versioned key-encryption keys.
//!
//! `Cipher` holds every configured key-encryption key (KEK): the newest seals,
//! all open. A sealed value names the KEK that sealed it:
//! `2 | kek_id (u32 BE) | nonce(12) | ciphertext+tag`. Values written before
//! KEK versions existed (`1 | nonce | ciphertext+tag`) open with KEK 1.
//!
//! `DataKey` is a per-record key (envelope encryption): upstream tokens are
//! sealed under their own data key, and only the data key is sealed under a
//! KEK, so rotating a KEK re-wraps 60 bytes per record, never the tokens.
//!
//! The associated data is never stored: the caller rebuilds it from the row,
//! so a ciphertext moved to another row fails to open.

use std::collections::BTreeMap;
use std::sync::Arc;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

const FORMAT_V1: u8 = 1;
const FORMAT_V2: u8 = 2;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value names key-encryption key {0}, which is not configured")]
    UnknownKek(u32),
    #[error("sealed value does not open with this key and associated data")]
    Unauthentic,
}

/// The key-encryption keys. Cheap to clone.
#[derive(Clone)]
pub struct Cipher {
    keks: Arc<BTreeMap<u32, Aes256Gcm>>,
    newest: u32,
}

impl Cipher {
    /// One KEK, id 1.
    pub fn new(key: &[u8; 32]) -> Cipher {
        Cipher::with_keks(&[(1, *key)]).expect("one key is a valid set")
    }

    /// Several KEKs by id; the highest id seals. Ids start at 1.
    pub fn with_keks(keys: &[(u32, [u8; 32])]) -> Result<Cipher, String> {
        Cipher::with_active_kek(keys, None)
    }

    /// As `with_keks`, with `active` (when given) sealing instead of the
    /// highest id: a new KEK can reach every instance before any seals with
    /// it, so no instance meets a value it cannot open during a roll-out.
    pub fn with_active_kek(
        keys: &[(u32, [u8; 32])],
        active: Option<u32>,
    ) -> Result<Cipher, String> {
        let mut keks = BTreeMap::new();
        for (id, key) in keys {
            if *id == 0 {
                return Err("key-encryption key ids start at 1".into());
            }
            if keks.insert(*id, Aes256Gcm::new(key.into())).is_some() {
                return Err(format!("key-encryption key {id} is given twice"));
            }
        }
        let newest = match active {
            Some(id) if keks.contains_key(&id) => id,
            Some(id) => {
                return Err(format!(
                    "the active key-encryption key {id} is not configured"
                ));
            }
            None => *keks.keys().next_back().ok_or("no key-encryption key")?,
        };
        Ok(Cipher {
            keks: Arc::new(keks),
            newest,
        })
    }

    /// The KEK that seals new values.
    pub fn newest_kek(&self) -> u32 {
        self.newest
    }

    /// Encrypts under the newest KEK and a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(FORMAT_V2);
        out.extend_from_slice(&self.newest.to_be_bytes());
        seal_into(&self.keks[&self.newest], plaintext, aad, &mut out);
        out
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CipherError> {
        let (kek, body) = split_header(sealed)?;
        let aead = self.keks.get(&kek).ok_or(CipherError::UnknownKek(kek))?;
        open_body(aead, body, aad)
    }

    /// Which KEK sealed this value, without opening it.
    pub fn sealed_kek(sealed: &[u8]) -> Result<u32, CipherError> {
        split_header(sealed).map(|(kek, _)| kek)
    }

    pub fn seal_str(&self, plaintext: &str, aad: &str) -> Vec<u8> {
        self.seal(plaintext.as_bytes(), aad.as_bytes())
    }

    pub fn open_string(&self, sealed: &[u8], aad: &str) -> Result<String, CipherError> {
        let bytes = self.open(sealed, aad.as_bytes())?;
        String::from_utf8(bytes).map_err(|_| CipherError::Malformed)
    }
}

/// A per-record data key. Sealed values: `nonce(12) | ciphertext+tag`.
pub struct DataKey {
    aead: Aes256Gcm,
}

impl DataKey {
    /// A fresh random key and its bytes (to be wrapped under a KEK).
    pub fn generate() -> (DataKey, [u8; 32]) {
        let bytes: [u8; 32] = rand::random();
        (DataKey::from_bytes(&bytes), bytes)
    }

    pub fn from_bytes(bytes: &[u8; 32]) -> DataKey {
        DataKey {
            aead: Aes256Gcm::new(bytes.into()),
        }
    }

    /// Unwraps a data key sealed under one of `cipher`'s KEKs.
    pub fn unwrap(cipher: &Cipher, wrapped: &[u8], aad: &str) -> Result<DataKey, CipherError> {
        let bytes = cipher.open(wrapped, aad.as_bytes())?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| CipherError::Malformed)?;
        Ok(DataKey::from_bytes(&bytes))
    }

    pub fn seal_str(&self, plaintext: &str, aad: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        seal_into(&self.aead, plaintext.as_bytes(), aad.as_bytes(), &mut out);
        out
    }

    pub fn open_string(&self, sealed: &[u8], aad: &str) -> Result<String, CipherError> {
        let bytes = open_body(&self.aead, sealed, aad.as_bytes())?;
        String::from_utf8(bytes).map_err(|_| CipherError::Malformed)
    }
}

fn seal_into(aead: &Aes256Gcm, plaintext: &[u8], aad: &[u8], out: &mut Vec<u8>) {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let ciphertext = aead
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-GCM encryption of an in-memory buffer cannot fail");
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
}

fn split_header(sealed: &[u8]) -> Result<(u32, &[u8]), CipherError> {
    match sealed.first() {
        Some(&FORMAT_V1) => Ok((1, &sealed[1..])),
        Some(&FORMAT_V2) if sealed.len() >= 5 => {
            let id = u32::from_be_bytes(sealed[1..5].try_into().expect("4 bytes"));
            Ok((id, &sealed[5..]))
        }
        _ => Err(CipherError::Malformed),
    }
}

fn open_body(aead: &Aes256Gcm, body: &[u8], aad: &[u8]) -> Result<Vec<u8>, CipherError> {
    if body.len() < NONCE_LEN + TAG_LEN {
        return Err(CipherError::Malformed);
    }
    let nonce = Nonce::from_slice(&body[..NONCE_LEN]);
    aead.decrypt(
        nonce,
        Payload {
            msg: &body[NONCE_LEN..],
            aad,
        },
    )
    .map_err(|_| CipherError::Unauthentic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_value_opens_with_the_same_associated_data() {
        let c = Cipher::new(&[1u8; 32]);
        let sealed = c.seal(b"gho_secret", b"row-1");
        assert_eq!(c.open(&sealed, b"row-1").unwrap(), b"gho_secret");
    }

    #[test]
    fn sealed_value_moved_to_another_row_does_not_open() {
        let c = Cipher::new(&[1u8; 32]);
        let sealed = c.seal(b"gho_secret", b"row-1");
        assert_eq!(c.open(&sealed, b"row-2"), Err(CipherError::Unauthentic));
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let c = Cipher::new(&[1u8; 32]);
        assert_ne!(c.seal(b"same", b"ad"), c.seal(b"same", b"ad"));
    }

    #[test]
    fn other_key_or_tampering_is_rejected() {
        let c = Cipher::new(&[1u8; 32]);
        let mut sealed = c.seal(b"gho_secret", b"ad");
        assert!(Cipher::new(&[2u8; 32]).open(&sealed, b"ad").is_err());
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(c.open(&sealed, b"ad"), Err(CipherError::Unauthentic));
        assert_eq!(c.open(&[2, 0, 0], b"ad"), Err(CipherError::Malformed));
    }

    #[test]
    fn newest_kek_seals_and_every_configured_kek_opens() {
        let old = Cipher::new(&[1u8; 32]);
        let sealed_old = old.seal(b"v", b"ad");
        let both = Cipher::with_keks(&[(1, [1u8; 32]), (2, [2u8; 32])]).unwrap();
        let sealed_new = both.seal(b"v", b"ad");
        assert_eq!(Cipher::sealed_kek(&sealed_old), Ok(1));
        assert_eq!(Cipher::sealed_kek(&sealed_new), Ok(2));
        assert_eq!(both.open(&sealed_old, b"ad").unwrap(), b"v");
        assert_eq!(both.open(&sealed_new, b"ad").unwrap(), b"v");
        // A retired KEK is named in the error, so the operator knows which.
        assert_eq!(
            old.open(&sealed_new, b"ad"),
            Err(CipherError::UnknownKek(2))
        );
    }

    #[test]
    fn an_active_kek_seals_while_a_newer_one_is_only_known() {
        let keys = [(1, [1u8; 32]), (2, [2u8; 32])];
        let rollout = Cipher::with_active_kek(&keys, Some(1)).unwrap();
        assert_eq!(Cipher::sealed_kek(&rollout.seal(b"v", b"ad")), Ok(1));
        assert!(Cipher::with_active_kek(&keys, Some(3)).is_err());
    }

    #[test]
    fn values_sealed_before_kek_versions_open_with_kek_1() {
        let key = [1u8; 32];
        let mut legacy = vec![FORMAT_V1];
        seal_into(&Aes256Gcm::new((&key).into()), b"v", b"ad", &mut legacy);
        let ring = Cipher::with_keks(&[(1, key), (2, [2u8; 32])]).unwrap();
        assert_eq!(ring.open(&legacy, b"ad").unwrap(), b"v");
    }

    #[test]
    fn data_key_round_trips_through_its_kek_wrap() {
        let ring = Cipher::new(&[1u8; 32]);
        let (key, bytes) = DataKey::generate();
        let sealed = key.seal_str("ghu_token", "row");
        let wrapped = ring.seal(&bytes, b"dk");
        let unwrapped = DataKey::unwrap(&ring, &wrapped, "dk").unwrap();
        assert_eq!(unwrapped.open_string(&sealed, "row").unwrap(), "ghu_token");
        assert!(DataKey::unwrap(&ring, &wrapped, "other-row").is_err());
    }
}
