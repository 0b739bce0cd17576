//! Random secrets and their hashes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// `n` random bytes from the OS generator, base64url without padding.
pub fn random_urlsafe(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A 256-bit secret with a prefix naming what it is (so a leaked value is
/// recognisable by secret scanners and in support tickets).
pub fn new_secret(prefix: &str) -> String {
    format!("{prefix}{}", random_urlsafe(32))
}

/// What we store for a secret we only need to compare: SHA-256, hex. The
/// secrets carry 256 bits of entropy, so an unsalted fast hash is enough.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Compares two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub const AUTHORIZATION_CODE_PREFIX: &str = "mcpb_ac_";
pub const REFRESH_TOKEN_PREFIX: &str = "mcpb_rt_";
pub const CLIENT_SECRET_PREFIX: &str = "mcpb_cs_";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_unique_and_prefixed() {
        let a = new_secret(REFRESH_TOKEN_PREFIX);
        let b = new_secret(REFRESH_TOKEN_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with("mcpb_rt_") && a.len() == 8 + 43);
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
