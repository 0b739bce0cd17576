//! The vault against a real OpenID provider (`tests/oidc-provider`): the
//! upstream grant is revoked there by RFC 7009 at the endpoint discovery
//! named, and an expired upstream token is refreshed there on demand, with
//! or without refresh-token rotation. What the provider still accepts is
//! asked of the provider itself (introspection, userinfo, its token
//! endpoint), never inferred from our database.

use std::time::Duration;

use serde_json::Value;

use crate::oidc::{
    Browser, CLIENT_ID, OpenIdProvider, PROVIDER_ID, SUB, broker_with, start_sign_in,
};
use crate::support::oauth_client::{grant_of, http, query_param, redeem, revoke_refresh_token};
use crate::support::{TestBroker, TestDb, start_broker_with};
use mcp_broker::vault::RevocationOutcome;

/// Refresh tokens come only with `offline_access`, which the provider keeps
/// only under `prompt=consent`; revocation at the discovered endpoint.
fn vault_provider_file(issuer: &str, client_secret: &str, rotates: bool) -> String {
    format!(
        r#"
id = "{PROVIDER_ID}"
display_name = "Test OpenID Provider"
kind = "oidc"
issuer = "{issuer}"
api_base_url = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret = "{client_secret}"
scopes = ["openid", "offline_access", "profile", "email"]
revocation_style = "rfc7009"

[extra_authorize_params]
prompt = "consent"

[refresh]
rotates_refresh_token = {rotates}
"#
    )
}

/// A broker and an OpenID provider that agree on rotation, or `None` where
/// Node is missing outside CI.
async fn start(db: &TestDb, rotates: bool) -> Option<(TestBroker, OpenIdProvider)> {
    let env: &[(&str, &str)] = if rotates {
        &[("ROTATE_REFRESH_TOKENS", "1")]
    } else {
        &[]
    };
    broker_with(db, env, |issuer, secret| {
        vault_provider_file(issuer, secret, rotates)
    })
    .await
}

/// Our tokens after a whole sign-in through the OpenID provider.
struct Ours {
    client_id: String,
    refresh_token: String,
    grant_id: String,
}

async fn sign_in(broker: &TestBroker) -> Ours {
    let (client, pkce, upstream, mut browser): (_, _, _, Browser) = start_sign_in(broker).await;
    let back = browser
        .follow(upstream)
        .await
        .unwrap_or_else(|r| panic!("HTTP {} before the client", r.status()));
    let code = query_param(&back, "code").unwrap_or_else(|| panic!("no code: {back}"));
    let response = redeem(&broker.url, &client, &code, &pkce).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    Ours {
        client_id: client.client_id,
        refresh_token: body["refresh_token"].as_str().unwrap().to_string(),
        grant_id: grant_of(access),
    }
}

async fn link(broker: &TestBroker, grant_id: &str) -> Option<mcp_broker::store::UpstreamLinkRow> {
    broker
        .state
        .store
        .upstream_link(grant_id, PROVIDER_ID)
        .await
        .unwrap()
}

/// The upstream access and refresh tokens as sealed in the link, opened
/// with the broker's keys (what only the vault itself should ever do).
async fn upstream_tokens(broker: &TestBroker, grant_id: &str) -> (String, Option<String>) {
    use mcp_broker::vault::{DataKey, data_key_aad, link_aad};
    let row = link(broker, grant_id).await.expect("an upstream link");
    let key = DataKey::unwrap(
        &broker.state.cipher,
        row.data_key_enc.as_deref().unwrap(),
        &data_key_aad(&row.id, &row.grant_id, &row.provider),
    )
    .unwrap();
    let open = |sealed: &[u8], field| {
        key.open_string(
            sealed,
            &link_aad(&row.id, &row.grant_id, &row.provider, field),
        )
        .unwrap()
    };
    (
        open(&row.access_token_enc, "access"),
        row.refresh_token_enc.as_deref().map(|r| open(r, "refresh")),
    )
}

/// The provider's own endpoints, from its discovery document.
async fn op_endpoint(op: &OpenIdProvider, name: &str) -> String {
    let doc: Value = http()
        .get(format!("{}/.well-known/openid-configuration", op.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    doc[name]
        .as_str()
        .unwrap_or_else(|| panic!("the provider names no {name}"))
        .to_string()
}

/// RFC 7662 at the provider: whether it still considers `token` live.
async fn active_at_provider(op: &OpenIdProvider, token: &str) -> bool {
    let body: Value = http()
        .post(op_endpoint(op, "introspection_endpoint").await)
        .form(&[
            ("token", token),
            ("client_id", CLIENT_ID),
            ("client_secret", op.client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["active"]
        .as_bool()
        .expect("introspection answers active")
}

/// The provider's userinfo endpoint with an upstream access token: its
/// status and, on 200, the `sub` it names.
async fn userinfo(op: &OpenIdProvider, access_token: &str) -> (u16, Option<String>) {
    let response = http()
        .get(op_endpoint(op, "userinfo_endpoint").await)
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or_default();
    (status, body["sub"].as_str().map(str::to_string))
}

/// Presents an upstream refresh token at the provider's token endpoint
/// ourselves: its status and `error`.
async fn refresh_at_provider(op: &OpenIdProvider, refresh_token: &str) -> (u16, Option<String>) {
    let response = http()
        .post(op_endpoint(op, "token_endpoint").await)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", CLIENT_ID),
            ("client_secret", op.client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or_default();
    (status, body["error"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_revoking_our_grant_revokes_the_upstream_grant_at_the_discovered_rfc7009_endpoint() {
    let db = TestDb::sqlite();
    let Some((broker, op)) = start(&db, false).await else {
        return;
    };
    // The provider file names no revocation_url: discovery supplied it.
    let provider = broker.state.providers.get(PROVIDER_ID).unwrap();
    assert_eq!(
        provider.revocation_url.as_deref(),
        Some(op_endpoint(&op, "revocation_endpoint").await.as_str())
    );

    let ours = sign_in(&broker).await;
    let (access, refresh) = upstream_tokens(&broker, &ours.grant_id).await;
    let refresh = refresh.expect("offline_access brought an upstream refresh token");
    assert!(active_at_provider(&op, &refresh).await);
    assert!(active_at_provider(&op, &access).await);
    assert_eq!(userinfo(&op, &access).await, (200, Some(SUB.to_string())));

    revoke_refresh_token(&broker.url, &ours.client_id, &ours.refresh_token).await;
    // The cascade runs in the background; it deletes the link last.
    for _ in 0..600 {
        if link(&broker, &ours.grant_id).await.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        link(&broker, &ours.grant_id).await.is_none(),
        "the link is deleted within 30 s"
    );

    // The refresh token was revoked, and with it (RFC 7009 §2.1) the
    // grant's access token: the provider accepts neither any more.
    assert!(!active_at_provider(&op, &refresh).await);
    assert!(!active_at_provider(&op, &access).await);
    assert_eq!(userinfo(&op, &access).await.0, 401);
    assert_eq!(
        refresh_at_provider(&op, &refresh).await,
        (400, Some("invalid_grant".to_string()))
    );
}

/// Lets the upstream access token's lifetime run out as far as the link
/// knows, then asks the vault for a token twice.
async fn refresh_on_demand(
    db: &TestDb,
    broker: &TestBroker,
    op: &OpenIdProvider,
    grant_id: &str,
) -> (String, Option<String>) {
    let before = link(broker, grant_id).await.unwrap();
    let (old_access, _) = upstream_tokens(broker, grant_id).await;
    db.execute("UPDATE upstream_links SET expires_at = 1").await;

    let vault = &broker.state.vault;
    let now = mcp_broker::now_unix();
    let fresh = vault
        .usable_token(grant_id, PROVIDER_ID, now)
        .await
        .unwrap();
    assert_ne!(fresh.access_token, old_access, "a new access token");
    assert_eq!(
        userinfo(op, &fresh.access_token).await,
        (200, Some(SUB.to_string())),
        "the provider accepts the new access token"
    );
    let after = link(broker, grant_id).await.unwrap();
    assert_eq!(after.version, before.version + 1);
    assert_eq!(fresh.version, after.version);
    assert!(after.expires_at.is_some_and(|exp| exp > now));

    // The new token is outside the expiry buffer: no second refresh.
    let again = vault
        .usable_token(grant_id, PROVIDER_ID, mcp_broker::now_unix())
        .await
        .unwrap();
    assert_eq!(again.access_token, fresh.access_token);
    assert_eq!(link(broker, grant_id).await.unwrap().version, after.version);
    upstream_tokens(broker, grant_id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_expired_upstream_token_is_refreshed_once_and_the_rotated_refresh_token_is_dead() {
    let db = TestDb::sqlite();
    let Some((broker, op)) = start(&db, true).await else {
        return;
    };
    assert!(
        broker
            .state
            .providers
            .get(PROVIDER_ID)
            .unwrap()
            .refresh
            .rotates_refresh_token
    );
    let ours = sign_in(&broker).await;
    let (_, old_refresh) = upstream_tokens(&broker, &ours.grant_id).await;
    let old_refresh = old_refresh.unwrap();

    let (_, new_refresh) = refresh_on_demand(&db, &broker, &op, &ours.grant_id).await;
    let new_refresh = new_refresh.unwrap();
    assert_ne!(new_refresh, old_refresh, "the rotated token was stored");
    assert!(active_at_provider(&op, &new_refresh).await);
    // Last: a rotated-out token presented again makes the provider revoke
    // the whole grant (reuse detection).
    assert_eq!(
        refresh_at_provider(&op, &old_refresh).await,
        (400, Some("invalid_grant".to_string()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_expired_upstream_token_is_refreshed_once_and_a_kept_refresh_token_stays_live() {
    let db = TestDb::sqlite();
    let Some((broker, op)) = start(&db, false).await else {
        return;
    };
    let ours = sign_in(&broker).await;
    let (_, old_refresh) = upstream_tokens(&broker, &ours.grant_id).await;
    let old_refresh = old_refresh.unwrap();

    let (_, refresh) = refresh_on_demand(&db, &broker, &op, &ours.grant_id).await;
    assert_eq!(refresh.as_deref(), Some(old_refresh.as_str()));
    assert!(active_at_provider(&op, &old_refresh).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_rfc7009_provider_without_a_discovered_revocation_endpoint_is_skipped() {
    let db = TestDb::sqlite();
    let Some((broker, _op)) = broker_with(&db, &[("REVOCATION", "off")], |issuer, secret| {
        vault_provider_file(issuer, secret, false)
    })
    .await
    else {
        return;
    };
    assert!(broker.state.providers.get(PROVIDER_ID).is_none());
    let (id, why) = &broker.state.providers.undiscovered[0];
    assert_eq!(id, PROVIDER_ID);
    assert!(why.contains("revocation endpoint"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_revocation_by_an_instance_whose_discovery_failed_keeps_the_link_for_a_retry() {
    let db = TestDb::sqlite();
    let Some((broker, op)) = start(&db, false).await else {
        return;
    };
    let ours = sign_in(&broker).await;
    let (_, refresh) = upstream_tokens(&broker, &ours.grant_id).await;
    let refresh = refresh.unwrap();
    // A second instance on the same database, started while the provider
    // was unreachable (nothing listens on port 1): configured, undiscovered.
    let down_file = vault_provider_file("http://127.0.0.1:1", &op.client_secret, false);
    let down = start_broker_with(&db, &[("oidc-test.toml", down_file)]).await;
    assert!(down.state.providers.get(PROVIDER_ID).is_none());

    let now = mcp_broker::now_unix();
    assert!(
        down.state
            .store
            .revoke_grant(&ours.grant_id, now)
            .await
            .unwrap()
    );
    let system = mcp_broker::audit::Actor::System;
    let outcome = down
        .state
        .vault
        .revoke_links(&ours.grant_id, &system)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        RevocationOutcome {
            revoked: 0,
            retry_later: 1
        }
    );
    // Deleting the link now would leave the upstream grant live for good.
    assert!(link(&broker, &ours.grant_id).await.is_some());
    assert!(active_at_provider(&op, &refresh).await);

    // The sweep of an instance that knows the provider finishes the job.
    assert_eq!(broker.retry_revocations().await, 1);
    assert!(link(&broker, &ours.grant_id).await.is_none());
    assert!(!active_at_provider(&op, &refresh).await);
}
