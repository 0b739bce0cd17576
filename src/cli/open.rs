//! Opening what commands work on, and naming who runs them.

use mcp_broker::audit::Actor;
use mcp_broker::config::Config;
use mcp_broker::store::Store;
use mcp_broker::vault::Vault;

/// The database, migrated.
pub async fn store(config: &Config) -> Result<Store, String> {
    let store = Store::connect(&config.database_url)
        .await
        .map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    Ok(store)
}

/// The vault over the configured database and providers, for commands
/// that act on stored links. `discover`: run OIDC discovery (needed to
/// revoke upstream; not to re-wrap keys, which works offline).
pub async fn vault(config: &Config, discover: bool) -> Result<(Vault, Store), String> {
    let (cipher, _) = mcp_broker::vault::key::load_cipher(config).map_err(|e| e.to_string())?;
    let store = store(config).await?;
    let mut providers =
        mcp_broker::upstream::load_providers(&config.providers_dir, &|k| std::env::var(k).ok())
            .map_err(|e| e.to_string())?;
    let timeout = std::time::Duration::from_secs(config.upstream_timeout_secs);
    let http = mcp_broker::upstream::http_client(timeout);
    if discover {
        mcp_broker::upstream::oidc::discover_providers(&http, &mut providers).await;
    }
    let vault = Vault::new(
        store.clone(),
        cipher,
        http,
        std::sync::Arc::new(providers),
        timeout,
    );
    Ok((vault, store))
}

/// Who runs this command, for the audit ledger: `MCP_BROKER_OPERATOR`, else
/// the login user, else "cli".
pub fn operator() -> Actor {
    let name = ["MCP_BROKER_OPERATOR", "USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "cli".into());
    Actor::Operator(name)
}
