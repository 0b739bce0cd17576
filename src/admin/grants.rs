//! Grants as an operator sees them: the list, one grant with each upstream
//! link it maps to (provider, scopes, expiry, status; never a token, sealed
//! value, hash or key), and revocation.

use serde::Serialize;

use super::page::page;
use super::{
    AdminError, Page, Revocation, check_client_id, check_id, check_limit, event, parse_cursor,
    recorded,
};
use crate::audit::{Actor, EventKind};
use crate::store::{GrantFilter, GrantSummary, Store, UpstreamLinkRow};
use crate::vault::Vault;

/// Which grants: live ones, or revoked ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantState {
    Live,
    Revoked,
}

impl GrantState {
    pub fn parse(text: &str) -> Result<GrantState, AdminError> {
        match text {
            "live" => Ok(GrantState::Live),
            "revoked" => Ok(GrantState::Revoked),
            _ => Err(AdminError::Invalid(format!(
                "status must be live or revoked, got {text:?}"
            ))),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            GrantState::Live => "live",
            GrantState::Revoked => "revoked",
        }
    }
}

/// Filters for `list`; they combine.
#[derive(Clone, Debug, Default)]
pub struct GrantQuery {
    pub user: Option<String>,
    pub client: Option<String>,
    /// The user's sign-in provider or any linked provider.
    pub provider: Option<String>,
    pub status: Option<GrantState>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserRef {
    pub id: String,
    pub provider: String,
    pub subject: String,
    pub login: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClientRef {
    pub id: String,
    pub name: Option<String>,
}

/// One grant. Times are Unix seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GrantView {
    pub id: String,
    pub status: GrantState,
    pub user: UserRef,
    pub client: ClientRef,
    pub scopes: Vec<String>,
    pub resource: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub link_count: i64,
    pub links_needing_reauth: i64,
}

impl From<GrantSummary> for GrantView {
    fn from(g: GrantSummary) -> Self {
        GrantView {
            status: if g.revoked_at.is_some() {
                GrantState::Revoked
            } else {
                GrantState::Live
            },
            user: UserRef {
                id: g.user_id,
                provider: g.user_provider,
                subject: g.user_subject,
                login: g.user_login,
            },
            client: ClientRef {
                id: g.client_id,
                name: g.client_name,
            },
            scopes: g.scope.split_whitespace().map(str::to_string).collect(),
            id: g.id,
            resource: g.resource,
            created_at: g.created_at,
            revoked_at: g.revoked_at,
            link_count: g.links,
            links_needing_reauth: g.links_needing_reauth,
        }
    }
}

/// Where an upstream link stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkStatus {
    /// The access token has not expired.
    Live,
    /// Expired; the stored refresh token gets a new one on next use.
    ExpiredRefreshable,
    /// Expired with no usable refresh token: the user must sign in again.
    Expired,
    /// The provider refused the refresh token for good.
    NeedsReauth,
    /// The grant is revoked; the link waits for its provider's revocation.
    Revoked,
}

impl LinkStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            LinkStatus::Live => "live",
            LinkStatus::ExpiredRefreshable => "expired_refreshable",
            LinkStatus::Expired => "expired",
            LinkStatus::NeedsReauth => "needs_reauth",
            LinkStatus::Revoked => "revoked",
        }
    }
}

/// The status of a link at `now`: revocation first, then a provider's
/// refusal, then expiry. A token without expiry (GitHub OAuth Apps) is live
/// until revoked.
pub fn link_status(link: &UpstreamLinkRow, grant_revoked: bool, now: i64) -> LinkStatus {
    if grant_revoked {
        return LinkStatus::Revoked;
    }
    if link.reauth_required_at.is_some() {
        return LinkStatus::NeedsReauth;
    }
    match link.expires_at {
        Some(expires) if expires <= now => {
            let refreshable = link.refresh_token_enc.is_some()
                && link.refresh_expires_at.is_none_or(|at| at > now);
            if refreshable {
                LinkStatus::ExpiredRefreshable
            } else {
                LinkStatus::Expired
            }
        }
        _ => LinkStatus::Live,
    }
}

/// One upstream link, without anything sealed. Times are Unix seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkView {
    pub provider: String,
    pub status: LinkStatus,
    /// The scopes the provider granted.
    pub scopes: Vec<String>,
    pub expires_at: Option<i64>,
    pub has_refresh_token: bool,
    pub refresh_expires_at: Option<i64>,
    pub created_at: i64,
    pub last_refreshed_at: Option<i64>,
    pub reauth_required_at: Option<i64>,
    pub reauth_reason: Option<String>,
    /// The version of the key-encryption key sealing it (`keys rotate`
    /// rewraps every link onto the newest); `None` for a link sealed before
    /// envelope encryption.
    pub kek_id: Option<i64>,
}

impl LinkView {
    pub fn of(link: &UpstreamLinkRow, grant_revoked: bool, now: i64) -> LinkView {
        LinkView {
            provider: link.provider.clone(),
            status: link_status(link, grant_revoked, now),
            // Providers answer scopes space- or comma-separated (GitHub).
            scopes: link
                .scopes
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            expires_at: link.expires_at,
            has_refresh_token: link.refresh_token_enc.is_some(),
            refresh_expires_at: link.refresh_expires_at,
            created_at: link.created_at,
            last_refreshed_at: link.last_refreshed_at,
            reauth_required_at: link.reauth_required_at,
            reauth_reason: link.reauth_reason.clone(),
            kek_id: link.kek_id,
        }
    }
}

/// A grant and its upstream links: the mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GrantDetail {
    #[serde(flatten)]
    pub grant: GrantView,
    pub upstream_links: Vec<LinkView>,
}

/// Grants matching `query`, newest first, after the cursor `after`.
pub async fn list(
    store: &Store,
    query: &GrantQuery,
    after: Option<&str>,
    limit: i64,
) -> Result<Page<GrantView>, AdminError> {
    check_limit(limit)?;
    let after = after.map(parse_cursor).transpose()?;
    if let Some(user) = &query.user {
        check_id("user", user)?;
    }
    if let Some(client) = &query.client {
        check_client_id(client)?;
    }
    if let Some(provider) = &query.provider {
        check_id("provider", provider)?;
    }
    let filter = GrantFilter {
        user_id: query.user.clone(),
        client_id: query.client.clone(),
        provider: query.provider.clone(),
        live: query.status.map(|s| s == GrantState::Live),
        after,
    };
    let rows = store.list_grants(&filter, limit).await?;
    let views = rows.into_iter().map(GrantView::from).collect();
    Ok(page(views, limit, |g: &GrantView| (g.created_at, &g.id)))
}

/// One grant with its links, their status taken at `now`.
pub async fn show(store: &Store, grant_id: &str, now: i64) -> Result<GrantDetail, AdminError> {
    check_id("grant", grant_id)?;
    let grant = store
        .grant_summary(grant_id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no grant {grant_id}")))?;
    let revoked = grant.revoked_at.is_some();
    let links = store.upstream_links_of_grant(grant_id).await?;
    Ok(GrantDetail {
        grant: grant.into(),
        upstream_links: links
            .iter()
            .map(|l| LinkView::of(l, revoked, now))
            .collect(),
    })
}

/// Revokes a grant now and waits for the upstream cascade, so the operator
/// sees what reached each provider. Recorded as `operator.action`.
pub async fn revoke(
    store: &Store,
    vault: &Vault,
    actor: &Actor,
    grant_id: &str,
) -> Result<Revocation, AdminError> {
    check_id("grant", grant_id)?;
    let mut record = event(EventKind::OperatorAction, actor).grant(grant_id);
    let result = match store.grant_summary(grant_id).await {
        Ok(Some(grant)) => {
            record = record.user(&grant.user_id).client(&grant.client_id);
            let reason = "an operator revoked it";
            match vault
                .revoke_grant_now(grant_id, actor.clone(), reason)
                .await
            {
                Ok(one) => {
                    let done = Revocation::from(&one);
                    if done.did_nothing() {
                        Err(AdminError::Refused(format!(
                            "grant {grant_id} was already revoked"
                        )))
                    } else {
                        Ok(done)
                    }
                }
                Err(e) => Err(e.into()),
            }
        }
        Ok(None) => Err(AdminError::NotFound(format!("no grant {grant_id}"))),
        Err(e) => Err(e.into()),
    };
    recorded(store, record, "grants revoke", result, Revocation::render).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> UpstreamLinkRow {
        UpstreamLinkRow {
            id: "l1".into(),
            grant_id: "g1".into(),
            provider: "github".into(),
            access_token_enc: vec![1],
            refresh_token_enc: Some(vec![2]),
            data_key_enc: Some(vec![3]),
            kek_id: Some(1),
            scopes: "repo,read:user".into(),
            expires_at: Some(1_000),
            refresh_expires_at: Some(2_000),
            version: 1,
            created_at: 10,
            updated_at: 10,
            last_refreshed_at: None,
            reauth_required_at: None,
            reauth_reason: None,
        }
    }

    #[test]
    fn a_link_is_live_until_its_token_expires() {
        assert_eq!(link_status(&link(), false, 999), LinkStatus::Live);
        let mut forever = link();
        forever.expires_at = None;
        assert_eq!(link_status(&forever, false, i64::MAX), LinkStatus::Live);
    }

    #[test]
    fn an_expired_link_is_refreshable_while_its_refresh_token_lives() {
        assert_eq!(
            link_status(&link(), false, 1_000),
            LinkStatus::ExpiredRefreshable
        );
        assert_eq!(link_status(&link(), false, 2_000), LinkStatus::Expired);
        let mut no_refresh = link();
        no_refresh.refresh_token_enc = None;
        assert_eq!(link_status(&no_refresh, false, 1_500), LinkStatus::Expired);
        let mut unbounded = link();
        unbounded.refresh_expires_at = None;
        assert_eq!(
            link_status(&unbounded, false, 9_999),
            LinkStatus::ExpiredRefreshable
        );
    }

    #[test]
    fn revocation_then_reauth_outrank_expiry() {
        let mut refused = link();
        refused.reauth_required_at = Some(500);
        refused.reauth_reason = Some("bad_refresh_token".into());
        assert_eq!(link_status(&refused, false, 1), LinkStatus::NeedsReauth);
        assert_eq!(link_status(&refused, true, 1), LinkStatus::Revoked);
    }

    #[test]
    fn a_link_view_carries_nothing_sealed() {
        let view = LinkView::of(&link(), false, 1);
        assert_eq!(view.scopes, ["repo", "read:user"]);
        assert!(view.has_refresh_token);
        let json = serde_json::to_value(&view).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        for key in keys {
            assert!(!key.ends_with("_enc") && key != "id", "{key}");
        }
        // Which key seals it, by version: never the key, wrapped or not.
        assert_eq!(json["kek_id"], serde_json::json!(view.kek_id), "{json}");
    }

    #[test]
    fn status_filter_takes_live_or_revoked() {
        assert_eq!(GrantState::parse("live").unwrap(), GrantState::Live);
        assert_eq!(GrantState::parse("revoked").unwrap(), GrantState::Revoked);
        assert!(GrantState::parse("Live").is_err());
    }
}
