//! `clients list | show | delete`.

use clap::Subcommand;

use mcp_broker::admin::clients::{self, ClientDetail, ClientView};
use mcp_broker::config::Config;

use super::table::{fields, maybe_time, or_dash, table, time};
use super::{ListArgs, open, print_one, print_rows};

#[derive(Subcommand)]
pub enum ClientsCommand {
    /// List registered clients, newest first, with their live grants.
    List {
        /// Only clients registered this way: dcr, cimd or config.
        #[arg(long)]
        kind: Option<String>,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Show a client's registration (never its secret).
    Show {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke every grant of a client (upstream too), then delete its
    /// registration. Clients from the settings file are refused: remove
    /// them there.
    Delete {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

pub async fn run(command: ClientsCommand, config: &Config) -> Result<(), String> {
    match command {
        ClientsCommand::List { kind, list } => {
            let store = open::store(config).await?;
            let found =
                clients::list(&store, kind.as_deref(), list.after.as_deref(), list.limit).await;
            store.close().await;
            let found = found.map_err(|e| e.to_string())?;
            print_rows(&found, &list, "clients", client_table);
            Ok(())
        }
        ClientsCommand::Show { client_id, json } => {
            let store = open::store(config).await?;
            let detail = clients::show(&store, &client_id).await;
            store.close().await;
            let detail = detail.map_err(|e| e.to_string())?;
            print_one(&detail, json, render_detail);
            Ok(())
        }
        ClientsCommand::Delete { client_id } => {
            let (vault, store) = open::vault(config, true).await?;
            let done = clients::delete(&store, &vault, &open::operator(), &client_id).await;
            store.close().await;
            let done = done.map_err(|e| e.to_string())?;
            println!("{}", done.render());
            Ok(())
        }
    }
}

fn client_table(rows: &[ClientView]) -> String {
    let rows: Vec<[String; 6]> = rows
        .iter()
        .map(|c| {
            [
                c.id.clone(),
                c.kind.clone(),
                or_dash(c.name.as_deref()),
                time(c.created_at),
                maybe_time(c.last_used_at),
                c.live_grants.to_string(),
            ]
        })
        .collect();
    table(
        [
            "CLIENT",
            "KIND",
            "NAME",
            "CREATED",
            "LAST USED",
            "LIVE GRANTS",
        ],
        &rows,
    )
}

fn render_detail(c: &ClientDetail) -> String {
    fields(&[
        ("client", c.id.clone()),
        ("kind", c.kind.clone()),
        ("name", or_dash(c.name.as_deref())),
        (
            "confidential",
            if c.confidential { "yes" } else { "no" }.into(),
        ),
        ("auth method", c.token_endpoint_auth_method.clone()),
        ("grant types", c.grant_types.join(" ")),
        ("redirect uris", c.redirect_uris.join(" ")),
        ("application", c.application_type.clone()),
        ("created", time(c.created_at)),
        ("last used", maybe_time(c.last_used_at)),
        ("live grants", c.live_grants.to_string()),
    ])
}
