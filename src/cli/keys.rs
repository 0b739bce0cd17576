//! `keys rotate-signing` and `keys rotate`.

use clap::Subcommand;

use mcp_broker::audit::{AuditEvent, EventKind};
use mcp_broker::config::Config;

use super::open;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a new signing key for our access tokens. Running instances sign
    /// with it within a minute; the old key keeps verifying until the tokens
    /// it signed have expired.
    RotateSigning,
    /// Re-wrap every stored upstream token's data key (and re-seal the
    /// signing keys) under the newest key-encryption key in
    /// `encryption_keys`. Safe while brokers serve, provided every instance
    /// already has the new key configured. Prints counts.
    Rotate,
}

pub async fn run(command: KeysCommand, config: Config) -> Result<(), String> {
    match command {
        KeysCommand::RotateSigning => rotate_signing(config).await,
        KeysCommand::Rotate => rotate_keks(config).await,
    }
}

/// Touches only the signing keys: no provider loading, no client sync (which
/// would delete pre-registered clients when run without the settings file).
async fn rotate_signing(config: Config) -> Result<(), String> {
    let (key, _) =
        mcp_broker::vault::key::load_encryption_key(&config).map_err(|e| e.to_string())?;
    let store = open::store(&config).await?;
    let cipher = mcp_broker::vault::Cipher::new(&key);
    let keys = mcp_broker::tokens::KeyRing::load(store.clone(), cipher, mcp_broker::now_unix())
        .await
        .map_err(|e| e.to_string())?;
    let kid = keys
        .rotate(mcp_broker::now_unix())
        .await
        .map_err(|e| e.to_string())?;
    let event = AuditEvent::new(EventKind::KeyRotated, open::operator()).detail(format!(
        "signing key: new key {kid} signs our access tokens"
    ));
    let recorded = mcp_broker::audit::record(&store, event).await;
    store.close().await;
    println!("new signing key {kid}; previous keys stay published until their tokens expire");
    recorded.map_err(|e| format!("rotated, but the audit record failed: {e}"))?;
    Ok(())
}

/// Needs the providers only to envelope links sealed before envelopes.
async fn rotate_keks(config: Config) -> Result<(), String> {
    let (vault, store) = open::vault(&config, false).await?;
    let report = vault.rewrap_all().await.map_err(|e| e.to_string())?;
    let event = AuditEvent::new(EventKind::KeyRotated, open::operator()).detail(report.render());
    let recorded = mcp_broker::audit::record(&store, event).await;
    store.close().await;
    println!("{}", report.render());
    recorded.map_err(|e| format!("re-wrapped, but the audit record failed: {e}"))?;
    if report.unreadable.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} upstream link(s) open under no configured key; they were left as they are",
            report.unreadable.len()
        ))
    }
}
