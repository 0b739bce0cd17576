//! Users as an operator sees them, and disconnecting one: every live grant
//! they hold is revoked, upstream too.

use super::page::page;
use super::{AdminError, Page, Revocation, check_id, check_limit, event, parse_cursor, recorded};
use crate::audit::{Actor, EventKind};
use crate::store::{Store, UserSummary};
use crate::vault::Vault;

/// One user as the operator sees it (the store's summary: it holds nothing
/// secret). Times are Unix seconds.
pub type UserView = UserSummary;

/// Users, newest first, optionally of one sign-in provider.
pub async fn list(
    store: &Store,
    provider: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Page<UserView>, AdminError> {
    check_limit(limit)?;
    if let Some(provider) = provider {
        check_id("provider", provider)?;
    }
    let after = after.map(parse_cursor).transpose()?;
    let rows = store.list_users(provider, after.as_ref(), limit).await?;
    Ok(page(rows, limit, |u: &UserView| (u.created_at, &u.id)))
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
