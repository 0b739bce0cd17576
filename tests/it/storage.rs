//! The storage contract, one suite, run against SQLite and PostgreSQL.

use std::sync::Arc;

use mcp_broker::store::{
    AuthorizationCodeRow, CimdStored, ClientRow, NewUpstreamLink, PendingAuthorization,
    RefreshTokenRow, Store, UserRow, new_id,
};

use crate::support::TestDb;

pub(crate) async fn stores() -> Vec<(TestDb, Store)> {
    let mut out = Vec::new();
    for db in TestDb::all().await {
        let store = Store::connect(&db.url).await.unwrap();
        store.migrate().await.unwrap();
        out.push((db, store));
    }
    out
}

pub(crate) fn client(id: &str) -> ClientRow {
    ClientRow {
        client_id: id.into(),
        client_secret_hash: None,
        client_name: Some("test client".into()),
        redirect_uris: vec!["http://127.0.0.1/cb".into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        token_endpoint_auth_method: "none".into(),
        application_type: "native".into(),
        registration: "dcr".into(),
        created_at: 1,
        metadata_hash: None,
        last_used_at: None,
    }
}

pub(crate) fn user(subject: &str, login: &str) -> UserRow {
    UserRow {
        id: new_id(),
        provider: "github".into(),
        subject: subject.into(),
        login: login.into(),
    }
}

pub(crate) fn link() -> NewUpstreamLink {
    NewUpstreamLink {
        id: new_id(),
        provider: "github".into(),
        access_token_enc: vec![1, 2, 3],
        refresh_token_enc: None,
        data_key_enc: vec![4, 5, 6],
        kek_id: 1,
        scopes: "repo".into(),
        expires_at: None,
        refresh_expires_at: None,
    }
}

fn code(client_id: &str, hash: &str) -> AuthorizationCodeRow {
    AuthorizationCodeRow {
        code_hash: hash.into(),
        grant_id: String::new(),
        client_id: client_id.into(),
        redirect_uri: "http://127.0.0.1/cb".into(),
        code_challenge: "c".into(),
        scope: "mcp".into(),
        resource: "http://b/mcp".into(),
        created_at: 1,
        expires_at: 100,
        used_at: None,
    }
}

/// A client with one completed authorization; returns the grant id.
pub(crate) async fn grant_for(store: &Store, client_id: &str, code_hash: &str) -> String {
    store.insert_client(&client(client_id)).await.unwrap();
    let grant_id = new_id();
    store
        .complete_authorization(
            &user("4242", "octo"),
            &grant_id,
            &link(),
            &code(client_id, code_hash),
            10,
        )
        .await
        .unwrap();
    grant_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent() {
    for (_db, store) in stores().await {
        store.migrate().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_round_trips_and_deleting_it_cascades_to_its_grants() {
    for (db, store) in stores().await {
        let grant_id = grant_for(&store, "c1", "h1").await;
        assert_eq!(
            store.get_client("c1").await.unwrap(),
            Some(client("c1")),
            "{:?}",
            db.kind
        );
        assert!(store.delete_client("c1").await.unwrap());
        assert_eq!(store.get_client("c1").await.unwrap(), None);
        assert_eq!(
            store.grant_status(&grant_id).await.unwrap(),
            None,
            "{:?}",
            db.kind
        );
        assert_eq!(
            store.upstream_link(&grant_id, "github").await.unwrap(),
            None
        );
        assert_eq!(store.get_code("h1").await.unwrap(), None);
        assert!(!store.delete_client("c1").await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_authorization_stores_user_grant_link_and_code_together() {
    for (db, store) in stores().await {
        let grant_id = grant_for(&store, "c1", "h1").await;
        let status = store.grant_status(&grant_id).await.unwrap().unwrap();
        assert!(!status.revoked);
        let user = store.get_user(&status.user_id).await.unwrap().unwrap();
        assert_eq!(
            (user.subject.as_str(), user.login.as_str()),
            ("4242", "octo")
        );
        let stored = store
            .upstream_link(&grant_id, "github")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (stored.access_token_enc, stored.version),
            (vec![1, 2, 3], 1),
            "{:?}",
            db.kind
        );
        assert_eq!(
            store.get_code("h1").await.unwrap().unwrap().grant_id,
            grant_id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_authorization_is_all_or_nothing() {
    for (db, store) in stores().await {
        grant_for(&store, "c1", "dup").await;
        // The same code hash again violates its primary key after the user,
        // grant and link were written: all of them must roll back.
        let grant_id = new_id();
        let result = store
            .complete_authorization(
                &user("9999", "other"),
                &grant_id,
                &link(),
                &code("c1", "dup"),
                10,
            )
            .await;
        assert!(result.is_err(), "{:?}", db.kind);
        assert_eq!(
            store.grant_status(&grant_id).await.unwrap(),
            None,
            "{:?}",
            db.kind
        );
        assert_eq!(
            store.upstream_link(&grant_id, "github").await.unwrap(),
            None
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_upstream_user_is_one_user_whose_login_follows_renames() {
    for (db, store) in stores().await {
        let g1 = grant_for(&store, "c1", "h1").await;
        let g2 = new_id();
        store.insert_client(&client("c2")).await.unwrap();
        store
            .complete_authorization(
                &user("4242", "octo-renamed"),
                &g2,
                &link(),
                &code("c2", "h2"),
                11,
            )
            .await
            .unwrap();
        let u1 = store.grant_status(&g1).await.unwrap().unwrap().user_id;
        let u2 = store.grant_status(&g2).await.unwrap().unwrap().user_id;
        assert_eq!(u1, u2, "{:?}", db.kind);
        assert_eq!(
            store.get_user(&u1).await.unwrap().unwrap().login,
            "octo-renamed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_code_is_redeemed_exactly_once_under_concurrency() {
    for (db, store) in stores().await {
        grant_for(&store, "c1", "h1").await;
        let store = Arc::new(store);
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.redeem_code("h1", None, 20).await.unwrap() })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            wins += t.await.unwrap() as usize;
        }
        assert_eq!(wins, 1, "{:?}", db.kind);
        assert_eq!(
            store.get_code("h1").await.unwrap().unwrap().used_at,
            Some(20)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotation_has_exactly_one_winner_under_concurrency() {
    for (db, store) in stores().await {
        let grant_id = grant_for(&store, "c1", "h1").await;
        let row = |hash: &str| RefreshTokenRow {
            token_hash: hash.into(),
            grant_id: grant_id.clone(),
            client_id: "c1".into(),
            scope: "mcp".into(),
            resource: "http://b/mcp".into(),
            created_at: 1,
            expires_at: 1000,
            used_at: None,
            successor_enc: None,
        };
        store.insert_refresh_token(&row("old")).await.unwrap();
        let store = Arc::new(store);
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (store, new) = (store.clone(), row(&format!("new{i}")));
                tokio::spawn(async move {
                    store
                        .rotate_refresh_token("old", &new, &[i as u8], 30)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut winners = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            if t.await.unwrap() {
                winners.push(i);
            }
        }
        assert_eq!(winners.len(), 1, "{:?}", db.kind);
        // Losers stored nothing; the winner's token exists and is unused.
        for i in 0..16 {
            let stored = store.get_refresh_token(&format!("new{i}")).await.unwrap();
            assert_eq!(
                stored.is_some(),
                winners.contains(&i),
                "{:?} new{i}",
                db.kind
            );
        }
        let old = store.get_refresh_token("old").await.unwrap().unwrap();
        assert_eq!(old.used_at, Some(30));
        // The winner's sealed answer is the one kept for retries.
        assert_eq!(
            old.successor_enc,
            Some(vec![winners[0] as u8]),
            "{:?}",
            db.kind
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_state_is_taken_once_and_only_after_consent() {
    for (db, store) in stores().await {
        let pending = PendingAuthorization {
            id: new_id(),
            client_id: "c1".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            state: Some("s".into()),
            code_challenge: "c".into(),
            scope: "mcp".into(),
            resource: "http://b/mcp".into(),
            provider: "github".into(),
            csrf_hash: "csrf".into(),
            upstream_state_hash: None,
            upstream_verifier_enc: None,
            created_at: 1,
            expires_at: 601,
            consented_user_id: None,
            browser_binding_hash: None,
            upstream_nonce_hash: None,
            grant_id: Some("g-1".into()),
        };
        store.insert_pending(&pending).await.unwrap();
        assert_eq!(
            store.take_pending_by_upstream_state("st").await.unwrap(),
            None
        );
        assert!(
            store
                .start_upstream(&pending.id, "st", &[9], "b", Some("nonce-hash"))
                .await
                .unwrap()
        );
        // A second consent for the same request cannot replace the state.
        assert!(
            !store
                .start_upstream(&pending.id, "st2", &[9], "b", None)
                .await
                .unwrap(),
            "{:?}",
            db.kind
        );
        let taken = store
            .take_pending_by_upstream_state("st")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(taken.id, pending.id);
        assert_eq!(taken.upstream_verifier_enc, Some(vec![9]));
        assert_eq!(taken.upstream_nonce_hash.as_deref(), Some("nonce-hash"));
        assert_eq!(
            store.take_pending_by_upstream_state("st").await.unwrap(),
            None,
            "{:?}",
            db.kind
        );
        assert_eq!(store.get_pending(&pending.id).await.unwrap(), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_grant_is_reported_once() {
    for (db, store) in stores().await {
        let grant_id = grant_for(&store, "c1", "h1").await;
        assert!(store.revoke_grant(&grant_id, 50).await.unwrap());
        assert!(
            !store.revoke_grant(&grant_id, 51).await.unwrap(),
            "{:?}",
            db.kind
        );
        assert!(
            store
                .grant_status(&grant_id)
                .await
                .unwrap()
                .unwrap()
                .revoked
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_are_shared_through_the_database() {
    use mcp_broker::tokens::SigningKeys;
    use mcp_broker::vault::Cipher;
    for (db, store) in stores().await {
        let cipher = Cipher::new(&[5u8; 32]);
        let first = SigningKeys::load_or_create(&store, &cipher, 1)
            .await
            .unwrap();
        // A second instance on the same database loads the same key.
        let second = SigningKeys::load_or_create(&store, &cipher, 2)
            .await
            .unwrap();
        assert_eq!(first.current_kid(), second.current_kid(), "{:?}", db.kind);
        assert_eq!(first.jwks(), second.jwks());
        // With another encryption key the private key does not open.
        assert!(
            SigningKeys::load_or_create(&store, &Cipher::new(&[6u8; 32]), 3)
                .await
                .is_err()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_deletes_what_expired_and_erases_sealed_grace_answers() {
    for (db, store) in stores().await {
        let grant_id = grant_for(&store, "c1", "code-live").await; // code expires at 100
        let refresh = |hash: &str, expires_at: i64, used_at: Option<i64>| RefreshTokenRow {
            token_hash: hash.into(),
            grant_id: grant_id.clone(),
            client_id: "c1".into(),
            scope: "mcp".into(),
            resource: "http://b/mcp".into(),
            created_at: 1,
            expires_at,
            used_at,
            successor_enc: used_at.map(|_| vec![7]),
        };
        store
            .insert_refresh_token(&refresh("expired", 500, None))
            .await
            .unwrap();
        store
            .insert_refresh_token(&refresh("used-long-ago", 10_000, Some(900)))
            .await
            .unwrap();
        store
            .insert_refresh_token(&refresh("used-just-now", 10_000, Some(995)))
            .await
            .unwrap();
        let user_id = store
            .grant_status(&grant_id)
            .await
            .unwrap()
            .unwrap()
            .user_id;
        store
            .insert_browser_session("old", &user_id, 1, 500)
            .await
            .unwrap();
        store
            .insert_browser_session("live", &user_id, 1, 5000)
            .await
            .unwrap();

        let swept = store.sweep_expired(1000, 10, 3600).await.unwrap();
        assert_eq!(
            (
                swept.refresh_tokens,
                swept.sessions,
                swept.sealed_successors
            ),
            (1, 1, 1),
            "{:?}",
            db.kind
        );
        assert!(store.get_refresh_token("expired").await.unwrap().is_none());
        // A used token stays (reuse must still revoke), its sealed answer goes.
        let long_ago = store
            .get_refresh_token("used-long-ago")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (long_ago.used_at, long_ago.successor_enc),
            (Some(900), None)
        );
        let just_now = store
            .get_refresh_token("used-just-now")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            just_now.successor_enc,
            Some(vec![7]),
            "still inside the grace window"
        );
        assert_eq!(
            store.browser_session_user("live", 1000).await.unwrap(),
            Some(user_id.clone())
        );
        // The code (expired at 100) is kept an hour past expiry, then swept.
        assert!(store.get_code("code-live").await.unwrap().is_some());
        let later = store.sweep_expired(100 + 3601, 10, 3600).await.unwrap();
        assert_eq!(later.codes, 1, "{:?}", db.kind);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_redemption_does_not_burn_the_code() {
    for (db, store) in stores().await {
        let grant_id = grant_for(&store, "c1", "h1").await;
        let row = RefreshTokenRow {
            token_hash: "dup".into(),
            grant_id,
            client_id: "c1".into(),
            scope: "mcp".into(),
            resource: "http://b/mcp".into(),
            created_at: 1,
            expires_at: 1000,
            used_at: None,
            successor_enc: None,
        };
        store.insert_refresh_token(&row).await.unwrap();
        // Storing the refresh token fails (its hash exists): nothing commits.
        assert!(
            store.redeem_code("h1", Some(&row), 20).await.is_err(),
            "{:?}",
            db.kind
        );
        assert_eq!(
            store.get_code("h1").await.unwrap().unwrap().used_at,
            None,
            "{:?}",
            db.kind
        );
        assert!(store.redeem_code("h1", None, 21).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_concurrent_first_fetches_of_a_client_document_exactly_one_inserts() {
    for (db, store) in stores().await {
        let store = Arc::new(store);
        let id = "https://app.example/client.json";
        let document = ClientRow {
            registration: "cimd".into(),
            ..client(id)
        };
        let fetches: Vec<_> = (0..8)
            .map(|_| {
                let (store, document) = (store.clone(), document.clone());
                tokio::spawn(async move { store.upsert_cimd_client(&document, 100).await.unwrap() })
            })
            .collect();
        let mut inserted = 0;
        for fetch in fetches {
            match fetch.await.unwrap() {
                CimdStored::Inserted => inserted += 1,
                CimdStored::Updated => {}
                CimdStored::Refused => panic!("{:?}: refused its own document", db.kind),
            }
        }
        assert_eq!(inserted, 1, "{:?}", db.kind);

        // A re-fetch replaces the copy; an id held by another kind of
        // client is never taken over.
        let moved = ClientRow {
            redirect_uris: vec!["http://127.0.0.1/elsewhere".into()],
            ..document.clone()
        };
        assert_eq!(
            store.upsert_cimd_client(&moved, 200).await.unwrap(),
            CimdStored::Updated
        );
        let (row, expires_at) = store.get_cimd_client(id).await.unwrap().unwrap();
        assert_eq!((row.redirect_uris, expires_at), (moved.redirect_uris, 200));
        store
            .insert_client(&client("https://dcr.example/c"))
            .await
            .unwrap();
        let squatter = ClientRow {
            client_id: "https://dcr.example/c".into(),
            ..document
        };
        assert_eq!(
            store.upsert_cimd_client(&squatter, 100).await.unwrap(),
            CimdStored::Refused,
            "{:?}",
            db.kind
        );
        let kept = store
            .get_client("https://dcr.example/c")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.registration, "dcr");
    }
}
