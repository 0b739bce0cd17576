//! The `mcp-broker` command line: one file per command group. Each command
//! opens what it needs (the store, or the vault with the providers) and
//! calls the library; operator commands go through `mcp_broker::admin`, as
//! the admin API does.

mod audit;
mod clients;
mod grants;
mod keys;
mod open;
mod table;
mod users;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use mcp_broker::config::Config;

#[derive(Parser)]
#[command(
    name = "mcp-broker",
    version,
    about = "An MCP server that brokers users' upstream (GitHub) tokens"
)]
pub struct Cli {
    /// Settings file (TOML). MCP_BROKER_<KEY> environment variables override it.
    #[arg(long, global = true, env = "MCP_BROKER_CONFIG")]
    pub config: Option<PathBuf>,
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
    Keys(keys::KeysCommand),
    /// Check the provider files.
    #[command(subcommand)]
    Providers(ProvidersCommand),
    /// Grants: list them, show one with its upstream links, revoke one.
    #[command(subcommand)]
    Grants(grants::GrantsCommand),
    /// Registered clients: list, show, delete.
    #[command(subcommand)]
    Clients(clients::ClientsCommand),
    /// Users: list them, disconnect one.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// The audit ledger: list events (a table, oldest first), or `audit
    /// verify` its hash chain.
    Audit(audit::AuditArgs),
}

#[derive(Subcommand)]
enum ProvidersCommand {
    /// Validate every file in the providers folder; print each provider's
    /// callback URL and the variables it still needs. Fails if any file is
    /// invalid or any variable is missing.
    Check,
}

impl Cli {
    /// Runs the command; the error is what to print before exiting non-zero.
    pub async fn run(self, config: Config) -> Result<(), String> {
        match self.command.unwrap_or(Command::Serve) {
            Command::Serve => mcp_broker::app::serve(config)
                .await
                .map_err(|e| e.to_string()),
            Command::Migrate => migrate(&config).await,
            Command::Keys(command) => keys::run(command, config).await,
            Command::Providers(ProvidersCommand::Check) => check_providers(&config),
            Command::Grants(command) => grants::run(command, &config).await,
            Command::Clients(command) => clients::run(command, &config).await,
            Command::Users(command) => users::run(command, &config).await,
            Command::Audit(args) => audit::run(args, &config).await,
        }
    }
}

async fn migrate(config: &Config) -> Result<(), String> {
    let store = open::store(config).await?;
    store.close().await;
    println!("migrations applied");
    Ok(())
}

fn check_providers(config: &Config) -> Result<(), String> {
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

/// Shared by the listing commands.
#[derive(clap::Args)]
struct ListArgs {
    /// Show at most N rows, newest first.
    #[arg(long, value_name = "N", default_value_t = mcp_broker::admin::DEFAULT_LIMIT,
          value_parser = clap::value_parser!(i64).range(1..=mcp_broker::admin::MAX_LIMIT))]
    limit: i64,
    /// Go on after this row: the `--after` value the previous page printed.
    #[arg(long, value_name = "CURSOR")]
    after: Option<String>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

/// Prints a page's rows one JSON object per line, or as a table (with a
/// note on stderr when there is nothing to show), and says on stderr how to
/// get the next page when there may be one.
fn print_rows<T: serde::Serialize>(
    page: &mcp_broker::admin::Page<T>,
    list: &ListArgs,
    what: &str,
    table: impl Fn(&[T]) -> String,
) {
    let rows = &page.items;
    if list.json {
        for row in rows {
            println!("{}", serde_json::to_string(row).expect("a view serializes"));
        }
    } else if rows.is_empty() {
        eprintln!("no {what} match");
    } else {
        print!("{}", table(rows));
    }
    if let Some(next) = &page.next {
        // Quoted for a POSIX shell: a client id may be a URL or hold spaces.
        let quoted = next.replace('\'', "'\\''");
        eprintln!("more {what} may follow: --after '{quoted}'");
    }
}

/// One record: a JSON object on one line, or its text form.
fn print_one<T: serde::Serialize>(record: &T, json: bool, text: impl Fn(&T) -> String) {
    if json {
        println!(
            "{}",
            serde_json::to_string(record).expect("a view serializes")
        );
    } else {
        print!("{}", text(record));
    }
}
