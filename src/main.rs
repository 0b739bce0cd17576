//! The `mcp-broker` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use mcp_broker::config::Config;

#[derive(Parser)]
#[command(
    name = "mcp-broker",
    version,
    about = "An MCP server that brokers users' upstream (GitHub) tokens"
)]
struct Cli {
    /// Settings file (TOML). MCP_BROKER_<KEY> environment variables override it.
    #[arg(long, global = true, env = "MCP_BROKER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Check the provider files.
    #[command(subcommand)]
    Providers(ProvidersCommand),
    /// Operator actions on grants.
    #[command(subcommand)]
    Grants(GrantsCommand),
    /// Operator actions on users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// The audit ledger: list events (a table, oldest first), or `audit
    /// verify` its hash chain.
    Audit(AuditArgs),
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct AuditArgs {
    #[command(subcommand)]
    command: Option<AuditCommand>,
    #[command(flatten)]
    list: AuditList,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every stored event against the hash chain. Prints "N events,
    /// chain intact", or fails naming the first event where it breaks.
    Verify,
}

/// Filters combine: an event must match all given.
#[derive(clap::Args)]
struct AuditList {
    /// Events about this user id.
    #[arg(long, value_name = "ID", allow_hyphen_values = true)]
    user: Option<String>,
    /// Events about this client id.
    #[arg(long, value_name = "ID", allow_hyphen_values = true)]
    client: Option<String>,
    /// Events about this grant id.
    #[arg(long, value_name = "ID", allow_hyphen_values = true)]
    grant: Option<String>,
    /// Events about this upstream provider.
    #[arg(long, value_name = "ID")]
    provider: Option<String>,
    /// Events of this kind, e.g. token.issued.
    #[arg(long, value_parser = parse_event_kind)]
    kind: Option<mcp_broker::audit::EventKind>,
    /// Events at or after this time: Unix seconds or RFC 3339.
    #[arg(long, value_name = "TIME", value_parser = mcp_broker::utc::parse_time)]
    since: Option<i64>,
    /// Events at or before this time: Unix seconds or RFC 3339.
    #[arg(long, value_name = "TIME", value_parser = mcp_broker::utc::parse_time)]
    until: Option<i64>,
    /// Show the newest N matching events.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..))]
    limit: i64,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

fn parse_event_kind(name: &str) -> Result<mcp_broker::audit::EventKind, String> {
    use mcp_broker::audit::EventKind;
    EventKind::parse(name).ok_or_else(|| {
        let names: Vec<&str> = EventKind::ALL.iter().map(EventKind::as_str).collect();
        format!("unknown event kind; one of: {}", names.join(", "))
    })
}

#[derive(Subcommand)]
enum GrantsCommand {
    /// Revoke a grant: our tokens stop working on every instance at once,
    /// and each upstream link is revoked at its provider and deleted.
    Revoke {
        /// Ids may start with `-` (they are base64url).
        #[arg(allow_hyphen_values = true)]
        grant_id: String,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Disconnect a user: revoke every live grant they hold, upstream too.
    Disconnect {
        #[arg(allow_hyphen_values = true)]
        user_id: String,
    },
}

#[derive(Subcommand)]
enum ProvidersCommand {
    /// Validate every file in the providers folder; print each provider's
    /// callback URL and the variables it still needs. Fails if any file is
    /// invalid or any variable is missing.
    Check,
}

#[derive(Subcommand)]
enum KeysCommand {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("mcp-broker: {e}");
            return ExitCode::from(2);
        }
    };
    mcp_broker::ops::logs::init(config.ops.log_format);
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => mcp_broker::app::serve(config)
                .await
                .map_err(|e| e.to_string()),
            Command::Migrate => migrate(&config).await,
            Command::Keys(KeysCommand::RotateSigning) => rotate_signing(config).await,
            Command::Keys(KeysCommand::Rotate) => rotate_keks(config).await,
            Command::Grants(GrantsCommand::Revoke { grant_id }) => {
                revoke_grants(config, Revoke::Grant(grant_id)).await
            }
            Command::Users(UsersCommand::Disconnect { user_id }) => {
                revoke_grants(config, Revoke::User(user_id)).await
            }
            Command::Audit(AuditArgs {
                command: Some(AuditCommand::Verify),
                ..
            }) => verify_audit(&config).await,
            Command::Audit(AuditArgs {
                command: None,
                list,
            }) => list_audit(&config, list).await,
            Command::Providers(ProvidersCommand::Check) => {
                let report = mcp_broker::upstream::check::check_providers(
                    &config.providers_dir,
                    &|k| std::env::var(k).ok(),
                    &config.public_url,
                );
                print!("{}", report.render());
                report
                    .passed()
                    .then_some(())
                    .ok_or_else(|| "provider check failed".to_string())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-broker: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Touches only the signing keys: no provider loading, no client sync (which
/// would delete pre-registered clients when run without the settings file).
async fn rotate_signing(config: Config) -> Result<(), String> {
    let (key, _) =
        mcp_broker::vault::key::load_encryption_key(&config).map_err(|e| e.to_string())?;
    let store = mcp_broker::store::Store::connect(&config.database_url)
        .await
        .map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    let cipher = mcp_broker::vault::Cipher::new(&key);
    let keys = mcp_broker::tokens::KeyRing::load(store.clone(), cipher, mcp_broker::now_unix())
        .await
        .map_err(|e| e.to_string())?;
    let kid = keys
        .rotate(mcp_broker::now_unix())
        .await
        .map_err(|e| e.to_string())?;
    println!("new signing key {kid}; previous keys stay published until their tokens expire");
    store.close().await;
    Ok(())
}

/// Who runs this command, for the audit ledger: `MCP_BROKER_OPERATOR`, else
/// the login user, else "cli".
fn operator() -> mcp_broker::audit::Actor {
    let name = ["MCP_BROKER_OPERATOR", "USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "cli".into());
    mcp_broker::audit::Actor::Operator(name)
}

enum Revoke {
    Grant(String),
    User(String),
}

/// Revokes now and waits for the upstream cascade, so the operator sees
/// what reached each provider.
async fn revoke_grants(config: Config, what: Revoke) -> Result<(), String> {
    use mcp_broker::audit::{AuditEvent, EventKind};
    let (vault, store) = open_vault(&config, true).await?;
    let (outcome, event) = match &what {
        Revoke::Grant(id) => (
            vault.revoke_grant_now(id).await,
            AuditEvent::new(EventKind::OperatorAction, operator()).grant(id),
        ),
        Revoke::User(id) => (
            vault.disconnect_user(id).await,
            AuditEvent::new(EventKind::OperatorAction, operator()).user(id),
        ),
    };
    let command = match what {
        Revoke::Grant(_) => "grants revoke",
        Revoke::User(_) => "users disconnect",
    };
    let event = match &outcome {
        Ok(o) if o.grants > 0 => event.detail(format!("{command}: {}", o.render())),
        Ok(_) => event
            .detail(command)
            .outcome("refused: no live grant matched"),
        Err(e) => event.detail(command).outcome(format!("failed: {e}")),
    };
    let recorded = mcp_broker::audit::record(&store, event).await;
    store.close().await;
    let outcome = outcome.map_err(|e| e.to_string())?;
    println!("{}", outcome.render());
    recorded.map_err(|e| format!("revoked, but the audit record failed: {e}"))?;
    if outcome.grants == 0 {
        return Err("no live grant matched".into());
    }
    Ok(())
}

/// The vault over the configured database and providers, for commands
/// that act on stored links. `discover`: run OIDC discovery (needed to
/// revoke upstream; not to re-wrap keys, which works offline).
async fn open_vault(
    config: &Config,
    discover: bool,
) -> Result<(mcp_broker::vault::Vault, mcp_broker::store::Store), String> {
    let (cipher, _) = mcp_broker::vault::key::load_cipher(config).map_err(|e| e.to_string())?;
    let store = mcp_broker::store::Store::connect(&config.database_url)
        .await
        .map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    let mut providers =
        mcp_broker::upstream::load_providers(&config.providers_dir, &|k| std::env::var(k).ok())
            .map_err(|e| e.to_string())?;
    let timeout = std::time::Duration::from_secs(config.upstream_timeout_secs);
    let http = mcp_broker::upstream::http_client(timeout);
    if discover {
        mcp_broker::upstream::oidc::discover_providers(&http, &mut providers).await;
    }
    let vault = mcp_broker::vault::Vault::new(
        store.clone(),
        cipher,
        http,
        std::sync::Arc::new(providers),
        timeout,
    );
    Ok((vault, store))
}

/// Needs the providers only to envelope links sealed before envelopes.
async fn rotate_keks(config: Config) -> Result<(), String> {
    use mcp_broker::audit::{AuditEvent, EventKind};
    let (vault, store) = open_vault(&config, false).await?;
    let report = vault.rewrap_all().await.map_err(|e| e.to_string())?;
    let event = AuditEvent::new(EventKind::KeyRotated, operator()).detail(report.render());
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

async fn open_store(config: &Config) -> Result<mcp_broker::store::Store, String> {
    let store = mcp_broker::store::Store::connect(&config.database_url)
        .await
        .map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    Ok(store)
}

async fn list_audit(config: &Config, list: AuditList) -> Result<(), String> {
    use mcp_broker::audit::render;
    let store = open_store(config).await?;
    let filter = mcp_broker::audit::AuditFilter {
        user_id: list.user,
        client_id: list.client,
        grant_id: list.grant,
        provider: list.provider,
        kind: list.kind.map(|k| k.as_str().to_string()),
        since: list.since,
        until: list.until,
    };
    let records = store.audit_events(&filter, list.limit).await;
    store.close().await;
    let records = records.map_err(|e| e.to_string())?;
    if list.json {
        for record in &records {
            println!("{}", render::json_line(record));
        }
    } else if records.is_empty() {
        eprintln!("no audit events match");
    } else {
        print!("{}", render::table(&records));
    }
    if records.len() as i64 == list.limit {
        eprintln!(
            "showing the newest {} matching events; --limit shows more",
            list.limit
        );
    }
    Ok(())
}

async fn verify_audit(config: &Config) -> Result<(), String> {
    let store = open_store(config).await?;
    let verified = mcp_broker::audit::verify_ledger(&store).await;
    store.close().await;
    let count = verified.map_err(|e| e.to_string())?;
    println!("{count} events, chain intact");
    Ok(())
}

async fn migrate(config: &Config) -> Result<(), String> {
    let store = mcp_broker::store::Store::connect(&config.database_url)
        .await
        .map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    store.close().await;
    println!("migrations applied");
    Ok(())
}
