//! The admin HTTP API's setting: `admin_token` (`MCP_BROKER_ADMIN_TOKEN`).
//! Unset, the API does not exist. Set, it must be a long random value; only
//! its SHA-256 is kept, and requests are compared against that.

use super::ConfigError;

/// The shortest token accepted.
pub const MIN_TOKEN_CHARS: usize = 32;
/// The least entropy accepted, estimated from length and character variety.
const MIN_TOKEN_BITS: f64 = 128.0;
/// Fewer different characters than this is a pattern, however long.
const MIN_DISTINCT_CHARS: usize = 12;

/// The hash of a valid token, from `(key, value)` as picked (env or file).
pub fn admin_token_hash(picked: Option<(String, String)>) -> Result<Option<String>, ConfigError> {
    let Some((key, value)) = picked else {
        return Ok(None);
    };
    check_token(&value).map_err(|message| ConfigError::Invalid { key, message })?;
    Ok(Some(crate::tokens::opaque::hash_secret(&value)))
}

/// Long, without whitespace, and not made of a few characters repeated:
/// at least 12 different characters, and length × log2(distinct
/// characters) at least 128 bits, which random base64 of 24 bytes or hex
/// of 32 bytes reaches.
fn check_token(token: &str) -> Result<(), String> {
    const HINT: &str = "generate one with `openssl rand -base64 32`";
    if token.chars().any(char::is_whitespace) {
        return Err(format!("must not contain whitespace; {HINT}"));
    }
    let length = token.chars().count();
    if length < MIN_TOKEN_CHARS {
        return Err(format!(
            "must be at least {MIN_TOKEN_CHARS} characters, got {length}; {HINT}"
        ));
    }
    let mut distinct: Vec<char> = token.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    let bits = length as f64 * (distinct.len() as f64).log2();
    if distinct.len() < MIN_DISTINCT_CHARS || bits < MIN_TOKEN_BITS {
        return Err(format!(
            "is too predictable ({} distinct characters); {HINT}",
            distinct.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const GOOD: &str = "q3J9x0LZ_b8Vd2mKp7TfY1sNc4WgHe6R-a5UoIj";

    fn env(token: &str) -> Vec<(String, String)> {
        vec![("MCP_BROKER_ADMIN_TOKEN".into(), token.into())]
    }

    #[test]
    fn the_admin_api_is_off_unless_a_token_is_set() {
        let c = Config::from_sources(None, &[]).unwrap();
        assert!(c.admin_token_hash.is_none());
    }

    #[test]
    fn only_the_tokens_hash_is_kept_and_debug_hides_it() {
        let c = Config::from_sources(None, &env(GOOD)).unwrap();
        let hash = c.admin_token_hash.clone().unwrap();
        assert_eq!(hash, crate::tokens::opaque::hash_secret(GOOD));
        let debug = format!("{c:?}");
        assert!(!debug.contains(GOOD) && !debug.contains(&hash), "{debug}");
    }

    #[test]
    fn random_base64_and_hex_tokens_are_accepted() {
        assert!(check_token(GOOD).is_ok());
        assert!(check_token(&"0123456789abcdef".repeat(4)).is_ok());
    }

    #[test]
    fn short_repetitive_or_spaced_tokens_are_refused_naming_the_key() {
        for bad in [
            "short-token",
            &"a".repeat(64),
            &"abcd".repeat(16),
            "correct horse battery staple and more words",
        ] {
            let err = Config::from_sources(None, &env(bad))
                .unwrap_err()
                .to_string();
            assert!(err.contains("MCP_BROKER_ADMIN_TOKEN"), "{bad}: {err}");
            assert!(err.contains("openssl rand"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_token_can_come_from_the_settings_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, format!("admin_token = \"{GOOD}\"\n")).unwrap();
        let c = Config::from_sources(Some(&path), &[]).unwrap();
        assert!(c.admin_token_hash.is_some());
        std::fs::write(&path, "admin_token = \"too-short\"\n").unwrap();
        let err = Config::from_sources(Some(&path), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`admin_token`"), "{err}");
    }
}
