//! The storage contract for upstream links, on SQLite and PostgreSQL: one
//! refresh lease at a time, writes fenced by version, and a successful write
//! winning over a concurrent failure mark.

use mcp_broker::store::{Store, UpstreamLinkRow};

use crate::storage::{grant_for, link, stores};

/// A grant with its GitHub link, as a sign-in leaves them.
async fn linked_grant(store: &Store) -> (String, UpstreamLinkRow) {
    let grant = grant_for(store, "c1", "h1").await;
    let row = github_link(store, &grant).await;
    (grant, row)
}

async fn github_link(store: &Store, grant: &str) -> UpstreamLinkRow {
    store.upstream_link(grant, "github").await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_holds_the_refresh_lease_until_it_expires_or_is_released() {
    for (db, store) in stores().await {
        let (_, row) = linked_grant(&store).await;
        let lease = |owner: &'static str, now: i64| {
            let store = store.clone();
            let id = row.id.clone();
            async move {
                store
                    .try_lease_link_refresh(&id, 1, owner, now, now + 30)
                    .await
                    .unwrap()
            }
        };
        assert!(lease("a", 100).await, "{:?}", db.kind);
        assert!(!lease("b", 110).await, "{:?}: b took a held lease", db.kind);
        assert!(lease("a", 110).await, "the holder may renew");
        assert!(
            lease("b", 141).await,
            "{:?}: an expired lease is free",
            db.kind
        );
        store.release_link_lease(&row.id, "a").await.unwrap();
        assert!(!lease("a", 142).await, "only the holder releases");
        store.release_link_lease(&row.id, "b").await.unwrap();
        assert!(lease("a", 142).await);
        // A lease is for one version: once it moves, the old one is refused.
        let mut next = link();
        next.id = row.id.clone();
        assert!(store.store_refreshed_link(1, &next, 150).await.unwrap());
        assert!(!lease("a", 151).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_at_a_stale_version_changes_nothing() {
    for (db, store) in stores().await {
        let (grant, row) = linked_grant(&store).await;
        let mut newer = link();
        newer.id = row.id.clone();
        newer.access_token_enc = vec![9, 9, 9];
        assert!(store.store_refreshed_link(1, &newer, 20).await.unwrap());
        // A slow instance that read version 1 comes back late.
        let mut slow = link();
        slow.id = row.id.clone();
        slow.access_token_enc = vec![6, 6, 6];
        assert!(!store.store_refreshed_link(1, &slow, 30).await.unwrap());
        assert!(
            !store
                .mark_link_reauth(&row.id, 1, "late", 30)
                .await
                .unwrap()
        );
        let now = github_link(&store, &grant).await;
        assert_eq!(now.access_token_enc, vec![9, 9, 9], "{:?}", db.kind);
        assert_eq!(now.version, 2);
        assert_eq!(now.reauth_required_at, None);
        assert_eq!(now.last_refreshed_at, Some(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_refresh_clears_a_failure_mark_made_at_the_same_version() {
    for (db, store) in stores().await {
        let (grant, row) = linked_grant(&store).await;
        assert!(
            store
                .mark_link_reauth(&row.id, 1, "invalid_grant", 20)
                .await
                .unwrap()
        );
        let status = store.grant_status(&grant).await.unwrap().unwrap();
        assert_eq!(
            status.reauth_required,
            vec!["github".to_string()],
            "{:?}",
            db.kind
        );
        let mut fresh = link();
        fresh.id = row.id.clone();
        assert!(store.store_refreshed_link(1, &fresh, 21).await.unwrap());
        let status = store.grant_status(&grant).await.unwrap().unwrap();
        assert!(status.reauth_required.is_empty(), "{:?}", db.kind);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrap_only_replaces_an_unchanged_data_key() {
    for (db, store) in stores().await {
        let (grant, row) = linked_grant(&store).await;
        let old = row.data_key_enc.clone().unwrap();
        assert!(store.rewrap_link(&row.id, &old, &[7, 7], 2).await.unwrap());
        // A second rotation that read the old key lost the race.
        assert!(!store.rewrap_link(&row.id, &old, &[8, 8], 3).await.unwrap());
        let now = github_link(&store, &grant).await;
        assert_eq!(now.data_key_enc, Some(vec![7, 7]), "{:?}", db.kind);
        assert_eq!(now.kek_id, Some(2));
        assert_eq!(store.links_per_kek().await.unwrap(), vec![(Some(2), 1)]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_link_for_one_provider_is_refused_without_an_error() {
    for (db, store) in stores().await {
        let grant = grant_for(&store, "c1", "h1").await;
        let mut racing = link();
        racing.id = mcp_broker::store::new_id();
        assert!(
            !store.add_link(&grant, &racing, 30).await.unwrap(),
            "{:?}",
            db.kind
        );
        racing.provider = "gitlab".into();
        assert!(store.add_link(&grant, &racing, 30).await.unwrap());
        assert_eq!(
            store.upstream_links_of_grant(&grant).await.unwrap().len(),
            2
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_clock_is_the_database_servers_in_unix_seconds() {
    for (db, store) in stores().await {
        let db_now = store.db_now().await.unwrap();
        let here = mcp_broker::now_unix();
        assert!(
            (db_now - here).abs() <= 2,
            "{:?}: {db_now} vs {here}",
            db.kind
        );
    }
}
