//! AES-256-GCM with associated data. Sealed layout: `version(1) | nonce(12) |
//! ciphertext+tag`. The associated data is never stored: the caller rebuilds it
//! from the row, so a ciphertext moved to another row fails to open.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;

#[derive(Clone)]
pub struct Cipher {
    aead: Aes256Gcm,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value does not open with this key and associated data")]
    Unauthentic,
}

impl Cipher {
    pub fn new(key: &[u8; 32]) -> Cipher {
        Cipher {
            aead: Aes256Gcm::new(key.into()),
        }
    }

    /// Encrypts under a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CipherError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != FORMAT_V1 {
            return Err(CipherError::Malformed);
        }
        let nonce = Nonce::from_slice(&sealed[1..1 + NONCE_LEN]);
        self.aead
            .decrypt(
                nonce,
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad,
                },
            )
            .map_err(|_| CipherError::Unauthentic)
    }

    pub fn seal_str(&self, plaintext: &str, aad: &str) -> Vec<u8> {
        self.seal(plaintext.as_bytes(), aad.as_bytes())
    }

    pub fn open_string(&self, sealed: &[u8], aad: &str) -> Result<String, CipherError> {
        let bytes = self.open(sealed, aad.as_bytes())?;
        String::from_utf8(bytes).map_err(|_| CipherError::Malformed)
    }
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
        assert_eq!(c.open(&[1, 2, 3], b"ad"), Err(CipherError::Malformed));
    }
}
