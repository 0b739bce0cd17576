//! Users as an operator sees them, and disconnecting one: every live grant
//! they hold is revoked, upstream too.

use serde::Serialize;

use super::{AdminError, Revocation, check_id, check_limit, event, recorded};
use crate::audit::{Actor, EventKind};
use crate::store::{Store, UserSummary};
use crate::vault::Vault;

/// One user. Times are Unix seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserView {
    pub id: String,
    pub provider: String,
    pub subject: String,
    pub login: String,
    pub created_at: i64,
    pub live_grants: i64,
    /// The latest sign-in or refresh of our tokens, when known.
    pub last_seen_at: Option<i64>,
}

impl From<UserSummary> for UserView {
    fn from(u: UserSummary) -> Self {
        UserView {
            id: u.id,
            provider: u.provider,
            subject: u.subject,
            login: u.login,
            created_at: u.created_at,
            live_grants: u.live_grants,
            last_seen_at: u.last_seen_at,
        }
    }
}

/// Users, newest first, optionally of one sign-in provider.
pub async fn list(
    store: &Store,
    provider: Option<&str>,
    limit: i64,
) -> Result<Vec<UserView>, AdminError> {
    check_limit(limit)?;
    if let Some(provider) = provider {
        check_id("provider", provider)?;
    }
    let rows = store.list_users(provider, limit).await?;
    Ok(rows.into_iter().map(UserView::from).collect())
}

/// Revokes every live grant of the user, waiting for the upstream cascade.
/// Recorded as `operator.action`.
pub async fn disconnect(
    store: &Store,
    vault: &Vault,
    actor: &Actor,
    user_id: &str,
) -> Result<Revocation, AdminError> {
    check_id("user", user_id)?;
    let record = event(EventKind::OperatorAction, actor).user(user_id);
    let result = match store.get_user(user_id).await {
        Ok(Some(_)) => match vault.disconnect_user(user_id, actor.clone()).await {
            Ok(all) if all.grants == 0 && all.consents == 0 => Err(AdminError::Refused(format!(
                "user {user_id} holds no live grant and no consent"
            ))),
            Ok(all) => Ok(Revocation::from(&all)),
            Err(e) => Err(e.into()),
        },
        Ok(None) => Err(AdminError::NotFound(format!("no user {user_id}"))),
        Err(e) => Err(e.into()),
    };
    recorded(
        store,
        record,
        "users disconnect",
        result,
        Revocation::render,
    )
    .await
}
