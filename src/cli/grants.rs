//! `grants list | show | revoke`.

use clap::Subcommand;

use mcp_broker::admin::grants::{self, GrantDetail, GrantQuery, GrantState, GrantView};
use mcp_broker::config::Config;

use super::table::{fields, maybe_time, or_dash, table, time};
use super::{ListArgs, open, print_one, print_rows};

#[derive(Subcommand)]
pub enum GrantsCommand {
    /// List grants, newest first. Filters combine.
    List {
        /// Grants of this user id.
        #[arg(long, value_name = "ID", allow_hyphen_values = true)]
        user: Option<String>,
        /// Grants to this client id.
        #[arg(long, value_name = "ID", allow_hyphen_values = true)]
        client: Option<String>,
        /// Grants whose user signed in with this provider or that hold a
        /// link to it.
        #[arg(long, value_name = "ID")]
        provider: Option<String>,
        /// Only live or only revoked grants.
        #[arg(long, value_parser = parse_state)]
        status: Option<GrantState>,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Show a grant and the upstream links it maps to: provider, upstream
    /// scopes, expiry and status. Never a token.
    Show {
        /// Ids may start with `-` (they are base64url).
        #[arg(allow_hyphen_values = true)]
        grant_id: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a grant: our tokens stop working on every instance at once,
    /// and each upstream link is revoked at its provider and deleted.
    Revoke {
        #[arg(allow_hyphen_values = true)]
        grant_id: String,
    },
}

fn parse_state(text: &str) -> Result<GrantState, String> {
    GrantState::parse(text).map_err(|e| e.to_string())
}

pub async fn run(command: GrantsCommand, config: &Config) -> Result<(), String> {
    match command {
        GrantsCommand::List {
            user,
            client,
            provider,
            status,
            list,
        } => {
            let store = open::store(config).await?;
            let query = GrantQuery {
                user,
                client,
                provider,
                status,
            };
            let found = grants::list(&store, &query, list.after.as_deref(), list.limit).await;
            store.close().await;
            let found = found.map_err(|e| e.to_string())?;
            print_rows(&found, &list, "grants", grant_table);
            Ok(())
        }
        GrantsCommand::Show { grant_id, json } => {
            let store = open::store(config).await?;
            let detail = grants::show(&store, &grant_id, mcp_broker::now_unix()).await;
            store.close().await;
            let detail = detail.map_err(|e| e.to_string())?;
            print_one(&detail, json, render_detail);
            Ok(())
        }
        GrantsCommand::Revoke { grant_id } => {
            let (vault, store) = open::vault(config, true).await?;
            let done = grants::revoke(&store, &vault, &open::operator(), &grant_id).await;
            store.close().await;
            let done = done.map_err(|e| e.to_string())?;
            println!("{}", done.render());
            Ok(())
        }
    }
}

fn user_cell(g: &GrantView) -> String {
    format!("{}:{}", g.user.provider, g.user.login)
}

fn links_cell(g: &GrantView) -> String {
    match g.links_needing_reauth {
        0 => g.link_count.to_string(),
        n => format!("{} ({n} need re-auth)", g.link_count),
    }
}

fn grant_table(rows: &[GrantView]) -> String {
    let rows: Vec<[String; 8]> = rows
        .iter()
        .map(|g| {
            [
                g.id.clone(),
                g.status.as_str().into(),
                user_cell(g),
                g.client.id.clone(),
                g.scopes.join(" "),
                time(g.created_at),
                maybe_time(g.revoked_at),
                links_cell(g),
            ]
        })
        .collect();
    table(
        [
            "GRANT", "STATUS", "USER", "CLIENT", "SCOPES", "CREATED", "REVOKED", "LINKS",
        ],
        &rows,
    )
}

fn render_detail(detail: &GrantDetail) -> String {
    let g = &detail.grant;
    let client = match &g.client.name {
        Some(name) => format!("{} ({name})", g.client.id),
        None => g.client.id.clone(),
    };
    let mut out = fields(&[
        ("grant", g.id.clone()),
        ("status", g.status.as_str().into()),
        (
            "user",
            format!(
                "{} (id {}, subject {})",
                user_cell(g),
                g.user.id,
                g.user.subject
            ),
        ),
        ("client", client),
        ("scopes", g.scopes.join(" ")),
        ("resource", g.resource.clone()),
        ("created", time(g.created_at)),
        ("revoked", maybe_time(g.revoked_at)),
    ]);
    out.push('\n');
    if detail.upstream_links.is_empty() {
        out.push_str("no upstream links (a revoked grant's are deleted once revoked upstream)\n");
        return out;
    }
    let rows: Vec<[String; 9]> = detail
        .upstream_links
        .iter()
        .map(|l| {
            let status = match &l.reauth_reason {
                Some(reason) => format!("{} ({reason})", l.status.as_str()),
                None => l.status.as_str().into(),
            };
            [
                l.provider.clone(),
                status,
                l.scopes.join(","),
                maybe_time(l.expires_at),
                if l.has_refresh_token { "yes" } else { "no" }.into(),
                maybe_time(l.refresh_expires_at),
                time(l.created_at),
                or_dash(l.last_refreshed_at.map(time).as_deref()),
                or_dash(l.kek_id.map(|k| k.to_string()).as_deref()),
            ]
        })
        .collect();
    out.push_str(&table(
        [
            "PROVIDER",
            "STATUS",
            "UPSTREAM SCOPES",
            "EXPIRES",
            "REFRESH TOKEN",
            "REFRESH EXPIRES",
            "CREATED",
            "LAST REFRESH",
            "KEK",
        ],
        &rows,
    ));
    out
}
