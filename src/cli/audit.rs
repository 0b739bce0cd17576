//! `audit` (list events) and `audit verify` (check the hash chain).

use clap::Subcommand;

use mcp_broker::audit::{EventKind, render};
use mcp_broker::config::Config;

use super::open;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
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
    kind: Option<EventKind>,
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

fn parse_event_kind(name: &str) -> Result<EventKind, String> {
    EventKind::parse(name).ok_or_else(|| {
        let names: Vec<&str> = EventKind::ALL.iter().map(EventKind::as_str).collect();
        format!("unknown event kind; one of: {}", names.join(", "))
    })
}

pub async fn run(args: AuditArgs, config: &Config) -> Result<(), String> {
    match args.command {
        Some(AuditCommand::Verify) => verify(config).await,
        None => list(config, args.list).await,
    }
}

async fn list(config: &Config, list: AuditList) -> Result<(), String> {
    let store = open::store(config).await?;
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

async fn verify(config: &Config) -> Result<(), String> {
    let store = open::store(config).await?;
    let verified = mcp_broker::audit::verify_ledger(&store).await;
    store.close().await;
    let count = verified.map_err(|e| e.to_string())?;
    println!("{count} events, chain intact");
    Ok(())
}
