//! `users list | disconnect`.

use clap::Subcommand;

use mcp_broker::admin::users::{self, UserView};
use mcp_broker::config::Config;

use super::table::{maybe_time, table, time};
use super::{ListArgs, open, print_rows};

#[derive(Subcommand)]
pub enum UsersCommand {
    /// List users, newest first, with their live grants and when they were
    /// last seen (a sign-in or a refresh of our tokens).
    List {
        /// Only users who sign in with this provider.
        #[arg(long, value_name = "ID")]
        provider: Option<String>,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Disconnect a user: revoke every live grant they hold, upstream too.
    Disconnect {
        #[arg(allow_hyphen_values = true)]
        user_id: String,
    },
}

pub async fn run(command: UsersCommand, config: &Config) -> Result<(), String> {
    match command {
        UsersCommand::List { provider, list } => {
            let store = open::store(config).await?;
            let found = users::list(
                &store,
                provider.as_deref(),
                list.after.as_deref(),
                list.limit,
            )
            .await;
            store.close().await;
            let found = found.map_err(|e| e.to_string())?;
            print_rows(&found, &list, "users", user_table);
            Ok(())
        }
        UsersCommand::Disconnect { user_id } => {
            let (vault, store) = open::vault(config, true).await?;
            let done = users::disconnect(&store, &vault, &open::operator(), &user_id).await;
            store.close().await;
            let done = done.map_err(|e| e.to_string())?;
            println!("{}", done.render());
            Ok(())
        }
    }
}

fn user_table(rows: &[UserView]) -> String {
    let rows: Vec<[String; 7]> = rows
        .iter()
        .map(|u| {
            [
                u.id.clone(),
                u.provider.clone(),
                u.subject.clone(),
                u.login.clone(),
                time(u.created_at),
                maybe_time(u.last_seen_at),
                u.live_grants.to_string(),
            ]
        })
        .collect();
    table(
        [
            "USER",
            "PROVIDER",
            "SUBJECT",
            "LOGIN",
            "CREATED",
            "LAST SEEN",
            "LIVE GRANTS",
        ],
        &rows,
    )
}
