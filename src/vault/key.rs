//! Where the encryption key comes from. An operator sets
//! `MCP_BROKER_ENCRYPTION_KEY`; a developer on SQLite gets a generated key file
//! beside the database (and a loud warning every start), so the first command
//! of the README works with no setup. PostgreSQL deployments must set the key:
//! several instances have to share it, and a generated one would diverge.

use std::path::{Path, PathBuf};

use base64::Engine;

use super::Cipher;
use crate::config::{Config, decode_key};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "MCP_BROKER_ENCRYPTION_KEY (config key `encryption_key`) is required with PostgreSQL: \
         generate one with `openssl rand -base64 32` and give every instance the same value"
    )]
    RequiredForPostgres,
    #[error("key file {path}: {message}")]
    File { path: String, message: String },
}

/// How the key was obtained, so startup can warn when it should.
#[derive(Debug, PartialEq, Eq)]
pub enum KeySource {
    Configured,
    GeneratedFile(PathBuf),
    ExistingFile(PathBuf),
    /// In-memory SQLite: nothing outlives the process anyway.
    Ephemeral,
}

/// The key-encryption keys, ready to use.
pub fn load_cipher(config: &Config) -> Result<(Cipher, KeySource), KeyError> {
    if !config.encryption_keys.is_empty() {
        let cipher = Cipher::with_active_kek(&config.encryption_keys, config.encryption_key_active)
            .map_err(|message| KeyError::File {
                path: "encryption_keys".into(),
                message,
            })?;
        return Ok((cipher, KeySource::Configured));
    }
    let (key, source) = load_encryption_key(config)?;
    Ok((Cipher::new(&key), source))
}

/// The single key of a deployment without `encryption_keys`.
pub fn load_encryption_key(config: &Config) -> Result<([u8; 32], KeySource), KeyError> {
    if let Some(key) = config.encryption_key {
        return Ok((key, KeySource::Configured));
    }
    if config.is_postgres() {
        return Err(KeyError::RequiredForPostgres);
    }
    match sqlite_file_path(&config.database_url) {
        None => Ok((rand::random(), KeySource::Ephemeral)),
        Some(db_path) => {
            let mut name = db_path.as_os_str().to_owned();
            name.push(".key");
            load_or_create_key_file(&PathBuf::from(name))
        }
    }
}

fn load_or_create_key_file(path: &Path) -> Result<([u8; 32], KeySource), KeyError> {
    let err = |message: String| KeyError::File {
        path: path.display().to_string(),
        message,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((
            decode_key(&text).map_err(err)?,
            KeySource::ExistingFile(path.to_path_buf()),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::random();
            let text = base64::engine::general_purpose::STANDARD.encode(key) + "\n";
            write_private_file(path, text.as_bytes()).map_err(|e| err(e.to_string()))?;
            Ok((key, KeySource::GeneratedFile(path.to_path_buf())))
        }
        Err(e) => Err(err(e.to_string())),
    }
}

#[cfg(unix)]
fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// `sqlite://a.db`, `sqlite:a.db`, `sqlite:///abs/a.db?mode=rwc` → the file;
/// in-memory databases → `None`.
pub fn sqlite_file_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file_path("sqlite://mcp-broker.db"),
            Some("mcp-broker.db".into())
        );
        assert_eq!(
            sqlite_file_path("sqlite:x.db?mode=rwc"),
            Some("x.db".into())
        );
        assert_eq!(
            sqlite_file_path("sqlite:///tmp/a.db"),
            Some("/tmp/a.db".into())
        );
        assert_eq!(sqlite_file_path("sqlite::memory:"), None);
    }

    #[test]
    fn generated_key_file_is_reused_on_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db.key");
        let (k1, s1) = load_or_create_key_file(&path).unwrap();
        let (k2, s2) = load_or_create_key_file(&path).unwrap();
        assert_eq!(k1, k2);
        assert!(matches!(s1, KeySource::GeneratedFile(_)));
        assert!(matches!(s2, KeySource::ExistingFile(_)));
    }

    #[test]
    fn postgres_without_a_key_refuses_to_start() {
        let env = vec![(
            "MCP_BROKER_DATABASE_URL".to_string(),
            "postgres://127.0.0.1/x".to_string(),
        )];
        let config = Config::from_sources(None, &env).unwrap();
        assert!(matches!(
            load_encryption_key(&config),
            Err(KeyError::RequiredForPostgres)
        ));
    }
}
