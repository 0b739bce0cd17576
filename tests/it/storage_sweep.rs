//! The sweep of what revocations leave behind, on both databases: the dead
//! tokens of a revoked grant go after a day, the grant itself after 30
//! days once nothing is under it, and never while an upstream link still
//! awaits its revocation.

use mcp_broker::store::{NewGrant, PendingAuthorization, RefreshTokenRow, Store, new_id};

use crate::storage::{client, grant_for, link, stores, user};

const DAY: i64 = 24 * 3600;
/// When the grants in these tests are revoked.
const REVOKED_AT: i64 = 1_000_000;

fn refresh(grant_id: &str, hash: &str) -> RefreshTokenRow {
    RefreshTokenRow {
        token_hash: hash.into(),
        grant_id: grant_id.into(),
        client_id: "c1".into(),
        scope: "mcp".into(),
        resource: "http://b/mcp".into(),
        created_at: 1,
        // Far from expiry: only the revocation makes these dead.
        expires_at: REVOKED_AT + 365 * DAY,
        used_at: None,
        successor_enc: None,
    }
}

/// A grant with a live refresh token; revoked at `REVOKED_AT` if `revoke`.
async fn grant_with_token(store: &Store, client: &str, token: &str, revoke: bool) -> String {
    let grant_id = grant_for(store, client, &format!("code-{token}")).await;
    store
        .insert_refresh_token(&refresh(&grant_id, token))
        .await
        .unwrap();
    if revoke {
        assert!(store.revoke_grant(&grant_id, REVOKED_AT).await.unwrap());
    }
    grant_id
}

async fn drop_links(store: &Store, grant_id: &str) {
    for link in store.upstream_links_of_grant(grant_id).await.unwrap() {
        assert!(store.delete_link(&link.id, link.version).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_of_a_grant_revoked_over_a_day_ago_are_swept() {
    for (db, store) in stores().await {
        let revoked = grant_with_token(&store, "c1", "dead", true).await;
        let live = grant_with_token(&store, "c2", "alive", false).await;

        let early = store
            .sweep_expired(REVOKED_AT + DAY - 1, 10, 3600)
            .await
            .unwrap();
        assert_eq!(early.dead_tokens, 0, "{:?}", db.kind);
        assert!(store.get_refresh_token("dead").await.unwrap().is_some());

        let later = store
            .sweep_expired(REVOKED_AT + DAY + 1, 10, 3600)
            .await
            .unwrap();
        assert_eq!(later.dead_tokens, 1, "{:?}", db.kind);
        assert!(store.get_refresh_token("dead").await.unwrap().is_none());
        assert!(store.get_refresh_token("alive").await.unwrap().is_some());
        // The grant rows themselves stay for now.
        assert!(store.grant_status(&revoked).await.unwrap().unwrap().revoked);
        assert!(!store.grant_status(&live).await.unwrap().unwrap().revoked);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_is_deleted_after_30_days_once_nothing_is_left_under_it() {
    for (db, store) in stores().await {
        let revoked = grant_with_token(&store, "c1", "dead", true).await;
        let live = grant_with_token(&store, "c2", "alive", false).await;
        drop_links(&store, &revoked).await;
        drop_links(&store, &live).await;

        let day_29 = store
            .sweep_expired(REVOKED_AT + 29 * DAY, 10, 3600)
            .await
            .unwrap();
        assert_eq!(day_29.revoked_grants, 0, "{:?}", db.kind);
        assert!(store.grant_status(&revoked).await.unwrap().is_some());

        let day_31 = store
            .sweep_expired(REVOKED_AT + 31 * DAY, 10, 3600)
            .await
            .unwrap();
        assert_eq!(day_31.revoked_grants, 1, "{:?}", db.kind);
        assert_eq!(store.grant_status(&revoked).await.unwrap(), None);
        // A live grant is never swept, however old; it is what the
        // active-grants gauge counts.
        assert!(store.grant_status(&live).await.unwrap().is_some());
        assert_eq!(store.count_live_grants().await.unwrap(), 1, "{:?}", db.kind);
        assert!(store.get_refresh_token("alive").await.unwrap().is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_whose_upstream_revocation_awaits_a_retry_is_kept() {
    for (db, store) in stores().await {
        let revoked = grant_with_token(&store, "c1", "dead", true).await;
        let swept = store
            .sweep_expired(REVOKED_AT + 365 * DAY, 10, 3600)
            .await
            .unwrap();
        assert_eq!(
            (swept.dead_tokens, swept.revoked_grants),
            (1, 0),
            "{:?}: our tokens go, the grant with its link stays",
            db.kind
        );
        assert!(store.grant_status(&revoked).await.unwrap().is_some());
        assert_eq!(
            store.upstream_links_of_grant(&revoked).await.unwrap().len(),
            1
        );
        assert_eq!(
            store
                .revoked_grants_with_links(REVOKED_AT + 365 * DAY, "", 10)
                .await
                .unwrap(),
            vec![revoked.clone()],
            "the retry still finds it"
        );
        // Once the retry revoked the link upstream and deleted it, the next
        // sweep takes the grant.
        drop_links(&store, &revoked).await;
        let next = store
            .sweep_expired(REVOKED_AT + 365 * DAY, 10, 3600)
            .await
            .unwrap();
        assert_eq!(next.revoked_grants, 1, "{:?}", db.kind);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revocation_retry_leaves_a_grant_revoked_after_its_cutoff_to_its_own_cascade() {
    for (db, store) in stores().await {
        let revoked = grant_with_token(&store, "c1", "dead", true).await;
        assert!(
            store
                .revoked_grants_with_links(REVOKED_AT - 1, "", 10)
                .await
                .unwrap()
                .is_empty(),
            "{:?}: revoked after the cutoff, so not yet a retry's",
            db.kind
        );
        assert_eq!(
            store
                .revoked_grants_with_links(REVOKED_AT, "", 10)
                .await
                .unwrap(),
            vec![revoked],
            "{:?}: revoked at the cutoff",
            db.kind
        );
    }
}

/// A sign-in's pending leg after the first, joining `grant_id`.
fn next_leg(grant_id: &str) -> PendingAuthorization {
    PendingAuthorization {
        id: new_id(),
        client_id: "c2".into(),
        redirect_uri: "http://127.0.0.1/cb".into(),
        state: None,
        code_challenge: "c".into(),
        scope: "mcp".into(),
        resource: "http://b/mcp".into(),
        provider: "gitlab".into(),
        csrf_hash: "csrf".into(),
        upstream_state_hash: None,
        upstream_verifier_enc: None,
        created_at: 10,
        expires_at: 610,
        consented_user_id: None,
        browser_binding_hash: None,
        upstream_nonce_hash: None,
        grant_id: Some(grant_id.into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_is_dead_once_no_code_refresh_token_or_sign_in_in_progress_is_left_under_it() {
    const HOUR: i64 = 3600;
    for (db, store) in stores().await {
        // Created at 10 with a code expiring at 100, and a refresh token.
        let refreshed = grant_with_token(&store, "c1", "alive", false).await;
        let code_only = grant_for(&store, "c3", "code-only").await;
        // The first leg of a two-provider sign-in: no code yet.
        store.insert_client(&client("c2")).await.unwrap();
        let halfway = new_id();
        let grant = NewGrant {
            id: &halfway,
            client_id: "c2",
            scope: "mcp",
            resource: "http://b/mcp",
        };
        store
            .create_grant(&user("4242", "octo"), &grant, &link(), 10)
            .await
            .unwrap();
        store.insert_pending(&next_leg(&halfway)).await.unwrap();
        let dead = |store: &Store| {
            let store = store.clone();
            async move { store.dead_grants(i64::MAX, "", 10).await.unwrap() }
        };
        assert_eq!(dead(&store).await, Vec::<String>::new(), "{:?}", db.kind);

        // The pending leg expires; an access token may live two hours, so
        // the code is kept that long past its expiry (not just the hour).
        store
            .sweep_expired(100 + HOUR + 1, 10, 2 * HOUR)
            .await
            .unwrap();
        assert_eq!(dead(&store).await, vec![halfway.clone()], "{:?}", db.kind);
        store
            .sweep_expired(100 + 2 * HOUR + 1, 10, 2 * HOUR)
            .await
            .unwrap();
        let mut expected = vec![halfway.clone(), code_only.clone()];
        expected.sort();
        assert_eq!(dead(&store).await, expected, "{:?}", db.kind);
        // Only grants created before the cutoff; never a revoked one; pages.
        assert!(store.dead_grants(10, "", 10).await.unwrap().is_empty());
        assert_eq!(
            store.dead_grants(11, &expected[0], 10).await.unwrap(),
            vec![expected[1].clone()]
        );
        assert!(store.revoke_grant(&halfway, 5000).await.unwrap());
        assert_eq!(dead(&store).await, vec![code_only.clone()]);
        assert!(!dead(&store).await.contains(&refreshed));

        // The revocation re-checks: never a grant in use, or too young.
        let revoke = |grant: &String, created_before: i64| {
            let (store, grant) = (store.clone(), grant.clone());
            async move {
                store
                    .revoke_grant_if_dead(&grant, 5000, created_before)
                    .await
                    .unwrap()
            }
        };
        assert!(!revoke(&refreshed, i64::MAX).await, "{:?}", db.kind);
        assert!(!revoke(&code_only, 10).await);
        assert!(revoke(&code_only, 11).await, "{:?}", db.kind);
        assert!(!revoke(&code_only, 11).await, "revoked once");
        assert!(dead(&store).await.is_empty());
        // A new sign-in never steps up onto a grant nothing could use.
        let user_id = store.find_user("github", "4242").await.unwrap().unwrap().id;
        assert_eq!(
            store.latest_live_grant(&user_id, "c1").await.unwrap(),
            Some((refreshed.clone(), "mcp".to_string()))
        );
        let idle = grant_for(&store, "c4", "idle").await;
        store.sweep_expired(100 + 3 * HOUR, 10, HOUR).await.unwrap();
        assert!(dead(&store).await.contains(&idle));
        assert_eq!(store.latest_live_grant(&user_id, "c4").await.unwrap(), None);
    }
}
