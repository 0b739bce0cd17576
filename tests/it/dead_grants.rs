//! Grants no one can use any more (every refresh token expired, or a
//! sign-in that never finished) are revoked by the upkeep, upstream too: an
//! idle user's GitHub token is not kept live for good.

use mcp_broker::audit::AuditFilter;

use crate::support::oauth_client::sign_in;
use crate::support::{FakeGithub, Mode, TestDb, start_broker};

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
