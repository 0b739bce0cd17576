//! Grants no one can use any more (every refresh token expired, or a
//! sign-in that never finished) are revoked by the upkeep, upstream too: an
//! idle user's GitHub token is not kept live for good.

use mcp_broker::audit::AuditFilter;
use serde_json::{Value, json};

use crate::support::oauth_client::{
    Client, REDIRECT_URI, authorize, mcp_status, pkce, query_param, redeem, register_metadata,
    sign_in,
};
use crate::support::{FakeGithub, Mode, TestDb, start_broker, start_broker_with_env};

const DAY: i64 = 24 * 3600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_whose_refresh_tokens_all_expired_is_revoked_upstream_by_the_upkeep() {
    for db in TestDb::all().await {
        let fake = FakeGithub::start(Mode::OAuthApp).await;
        let broker = start_broker(&db, &fake).await;
        let session = sign_in(&broker.url).await;
        let grant = broker
            .github_link(&session.access_token)
            .await
            .unwrap()
            .grant_id;
        let upstream = broker.github_token(&session.access_token).await.unwrap();
        let now = mcp_broker::now_unix();

        // A day later its refresh token (30 days) still works: kept.
        mcp_broker::app::upkeep(&broker.state, now + DAY).await;
        let store = &broker.state.store;
        assert!(!store.grant_status(&grant).await.unwrap().unwrap().revoked);
        assert!(fake.token_is_live(&upstream.access_token), "{:?}", db.kind);

        // Past the refresh token's expiry nothing of ours can use it.
        mcp_broker::app::upkeep(&broker.state, now + 31 * DAY).await;
        assert!(
            store.grant_status(&grant).await.unwrap().unwrap().revoked,
            "{:?}",
            db.kind
        );
        assert_eq!(fake.revoked_tokens(), vec![upstream.access_token.clone()]);
        assert!(!fake.token_is_live(&upstream.access_token));
        assert!(
            store
                .upstream_links_of_grant(&grant)
                .await
                .unwrap()
                .is_empty()
        );
        let revoked = store
            .audit_events(
                &AuditFilter {
                    kind: Some("token.revoked".into()),
                    grant_id: Some(grant.clone()),
                    ..Default::default()
                },
                10,
            )
            .await
            .unwrap();
        assert_eq!(revoked.len(), 1, "{revoked:?}");
        assert_eq!(revoked[0].actor, "system");
        assert!(
            revoked[0]
                .detail
                .as_deref()
                .unwrap()
                .contains("nothing issued under it can still be used"),
            "{revoked:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_refresh_tokens_keeps_its_grant_while_its_access_token_lives() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    // Access tokens live three hours, longer than a used code is kept.
    let broker = start_broker_with_env(
        &db,
        &[("github.toml", fake.provider_toml())],
        &[("MCP_BROKER_ACCESS_TOKEN_TTL_SECS", "10800")],
    )
    .await;
    let registered = register_metadata(
        &broker.url,
        json!({
            "client_name": "code-only",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    let client = Client {
        client_id: registered["client_id"].as_str().unwrap().to_string(),
    };
    let verifier = pkce();
    let back = authorize(&broker.url, &client, &verifier, "s").await;
    let code = query_param(&back, "code").unwrap();
    let tokens: Value = redeem(&broker.url, &client, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let now = mcp_broker::now_unix();

    // Two and a half hours on, its access token still has half an hour.
    mcp_broker::app::upkeep(&broker.state, now + 9000).await;
    assert_eq!(mcp_status(&broker.mcp_url(), access).await, 200);
    assert!(fake.revoked_tokens().is_empty());

    // Once it has expired, the grant is dead: revoked, upstream too.
    mcp_broker::app::upkeep(&broker.state, now + 5 * 3600).await;
    assert_eq!(mcp_status(&broker.mcp_url(), access).await, 401);
    assert_eq!(fake.revoked_tokens().len(), 1);
}
