//! What operators read and delete, on SQLite and PostgreSQL: grants listed
//! newest first under every filter, clients and users with their counts,
//! and a client deleted only once no grant of it holds an upstream token.

use mcp_broker::store::{
    ClientDeletion, Cursor, GrantFilter, NewGrant, RefreshTokenRow, Store, UserRow, new_id,
};

use crate::storage::{client, link, stores, user};

/// A grant of `user` to `client` created at `at`, with one link per provider.
async fn grant(store: &Store, user: &UserRow, client: &str, at: i64, providers: &[&str]) -> String {
    let id = new_id();
    let mut first = link();
    first.provider = providers[0].into();
    let new = NewGrant {
        id: &id,
        client_id: client,
        scope: "mcp github:read",
        resource: "http://b/mcp",
    };
    store.create_grant(user, &new, &first, at).await.unwrap();
    for provider in &providers[1..] {
        let mut more = link();
        more.provider = provider.to_string();
        assert!(store.add_link(&id, &more, at).await.unwrap());
    }
    id
}

fn gitlab_user(subject: &str, login: &str) -> UserRow {
    UserRow {
        provider: "gitlab".into(),
        ..user(subject, login)
    }
}

/// alice (GitHub) holds g1 (c1, github) and g2 (c2, github + gitlab); bob
/// (GitLab) held g3 (c1, gitlab), revoked.
struct Fixture {
    alice: UserRow,
    bob: UserRow,
    g1: String,
    g2: String,
    g3: String,
}

async fn fixture(store: &Store) -> Fixture {
    for id in ["c1", "c2"] {
        store.insert_client(&client(id)).await.unwrap();
    }
    let (alice, bob) = (user("1", "alice"), gitlab_user("2", "bob"));
    let g1 = grant(store, &alice, "c1", 10, &["github"]).await;
    let g2 = grant(store, &alice, "c2", 20, &["github", "gitlab"]).await;
    let g3 = grant(store, &bob, "c1", 30, &["gitlab"]).await;
    assert!(store.revoke_grant(&g3, 40).await.unwrap());
    Fixture {
        alice,
        bob,
        g1,
        g2,
        g3,
    }
}

async fn listed(store: &Store, filter: GrantFilter, limit: i64) -> Vec<String> {
    let rows = store.list_grants(&filter, limit).await.unwrap();
    rows.into_iter().map(|g| g.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_are_listed_newest_first_under_each_filter() {
    for (db, store) in stores().await {
        let f = fixture(&store).await;
        let by = |set: fn(&mut GrantFilter, &Fixture)| {
            let mut filter = GrantFilter::default();
            set(&mut filter, &f);
            filter
        };
        let cases: Vec<(&str, GrantFilter, Vec<&String>)> = vec![
            ("none", GrantFilter::default(), vec![&f.g3, &f.g2, &f.g1]),
            (
                "user",
                by(|q, f| q.user_id = Some(f.alice.id.clone())),
                vec![&f.g2, &f.g1],
            ),
            (
                "client",
                by(|q, _| q.client_id = Some("c1".into())),
                vec![&f.g3, &f.g1],
            ),
            // The user's sign-in provider, or any link's.
            (
                "provider gitlab",
                by(|q, _| q.provider = Some("gitlab".into())),
                vec![&f.g3, &f.g2],
            ),
            (
                "provider github",
                by(|q, _| q.provider = Some("github".into())),
                vec![&f.g2, &f.g1],
            ),
            ("live", by(|q, _| q.live = Some(true)), vec![&f.g2, &f.g1]),
            ("revoked", by(|q, _| q.live = Some(false)), vec![&f.g3]),
            (
                "client and live",
                by(|q, _| {
                    q.client_id = Some("c1".into());
                    q.live = Some(true);
                }),
                vec![&f.g1],
            ),
            (
                "no match",
                by(|q, _| q.user_id = Some("nobody".into())),
                vec![],
            ),
        ];
        for (name, filter, expected) in cases {
            let expected: Vec<String> = expected.into_iter().cloned().collect();
            assert_eq!(
                listed(&store, filter, 100).await,
                expected,
                "{:?}: {name}",
                db.kind
            );
        }
        assert_eq!(
            listed(&store, GrantFilter::default(), 1).await,
            [f.g3.as_str()]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_summary_names_its_user_client_and_links() {
    for (db, store) in stores().await {
        let f = fixture(&store).await;
        let g2 = store.grant_summary(&f.g2).await.unwrap().unwrap();
        assert_eq!(
            (
                g2.user_login.as_str(),
                g2.user_provider.as_str(),
                g2.user_subject.as_str()
            ),
            ("alice", "github", "1"),
            "{:?}",
            db.kind
        );
        assert_eq!(g2.client_id, "c2");
        assert_eq!(g2.client_name.as_deref(), Some("test client"));
        assert_eq!((g2.links, g2.links_needing_reauth), (2, 0));
        assert_eq!((g2.created_at, g2.revoked_at), (20, None));
        let gitlab = store.upstream_link(&f.g2, "gitlab").await.unwrap().unwrap();
        assert!(
            store
                .mark_link_reauth(&gitlab.id, gitlab.version, "invalid_grant", 25)
                .await
                .unwrap()
        );
        let g2 = store.grant_summary(&f.g2).await.unwrap().unwrap();
        assert_eq!((g2.links, g2.links_needing_reauth), (2, 1));
        let g3 = store.grant_summary(&f.g3).await.unwrap().unwrap();
        assert_eq!(g3.revoked_at, Some(40));
        assert_eq!(store.grant_summary("nope").await.unwrap(), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_are_listed_with_their_live_grant_count() {
    for (db, store) in stores().await {
        fixture(&store).await;
        let mut configured = client("c3");
        configured.registration = "config".into();
        configured.created_at = 0;
        store.insert_client(&configured).await.unwrap();
        let all = store.list_clients(None, None, 100).await.unwrap();
        let seen: Vec<(&str, &str, i64)> = all
            .iter()
            .map(|c| (c.client_id.as_str(), c.registration.as_str(), c.live_grants))
            .collect();
        // c1 and c2 were created at the same time: the id breaks the tie.
        assert_eq!(
            seen,
            [("c2", "dcr", 1), ("c1", "dcr", 1), ("c3", "config", 0)],
            "{:?}",
            db.kind
        );
        let configs = store.list_clients(Some("config"), None, 100).await.unwrap();
        assert_eq!(configs.len(), 1);
        assert_eq!(configs[0].client_id, "c3");
        assert_eq!(store.list_clients(None, None, 1).await.unwrap().len(), 1);
        assert_eq!(store.live_grant_count("c1").await.unwrap(), 1);
        assert_eq!(store.live_grant_count("c3").await.unwrap(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_is_deleted_only_once_no_grant_of_it_holds_an_upstream_link() {
    for (db, store) in stores().await {
        let f = fixture(&store).await;
        // g1 is live, g3 revoked with its link still waiting upstream.
        let mut pending = store.grants_to_revoke_for_client("c1").await.unwrap();
        pending.sort();
        let mut expected = vec![f.g1.clone(), f.g3.clone()];
        expected.sort();
        assert_eq!(pending, expected, "{:?}", db.kind);
        assert_eq!(
            store.delete_unlinked_client("c1").await.unwrap(),
            ClientDeletion::LinksRemain
        );
        assert!(store.revoke_grant(&f.g1, 50).await.unwrap());
        for grant in [&f.g1, &f.g3] {
            for l in store.upstream_links_of_grant(grant).await.unwrap() {
                assert!(store.delete_link(&l.id, l.version).await.unwrap());
            }
        }
        assert!(
            store
                .grants_to_revoke_for_client("c1")
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store.delete_unlinked_client("c1").await.unwrap(),
            ClientDeletion::Deleted,
            "{:?}",
            db.kind
        );
        assert_eq!(store.get_client("c1").await.unwrap(), None);
        assert_eq!(store.grant_summary(&f.g1).await.unwrap(), None);
        assert_eq!(
            store.delete_unlinked_client("c1").await.unwrap(),
            ClientDeletion::Absent
        );
        // A configured client is never deleted this way.
        let mut configured = client("c3");
        configured.registration = "config".into();
        store.insert_client(&configured).await.unwrap();
        assert_eq!(
            store.delete_unlinked_client("c3").await.unwrap(),
            ClientDeletion::Absent
        );
        assert!(store.get_client("c3").await.unwrap().is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_listed_with_live_grants_and_when_last_seen() {
    for (db, store) in stores().await {
        let f = fixture(&store).await;
        let users = store.list_users(None, None, 100).await.unwrap();
        let seen: Vec<(&str, &str, i64, Option<i64>)> = users
            .iter()
            .map(|u| {
                (
                    u.login.as_str(),
                    u.provider.as_str(),
                    u.live_grants,
                    u.last_seen_at,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("bob", "gitlab", 0, Some(30)),
                ("alice", "github", 2, Some(20))
            ],
            "{:?}",
            db.kind
        );
        // A refresh of our tokens counts as activity.
        store
            .insert_refresh_token(&RefreshTokenRow {
                token_hash: "rt1".into(),
                grant_id: f.g1.clone(),
                client_id: "c1".into(),
                scope: "mcp".into(),
                resource: "http://b/mcp".into(),
                created_at: 70,
                expires_at: 1000,
                used_at: None,
                successor_enc: None,
            })
            .await
            .unwrap();
        let gitlab = store.list_users(Some("gitlab"), None, 100).await.unwrap();
        assert_eq!(gitlab.len(), 1);
        assert_eq!(gitlab[0].id, f.bob.id);
        let alice = store.list_users(Some("github"), None, 100).await.unwrap();
        assert_eq!(alice[0].last_seen_at, Some(70), "{:?}", db.kind);
        assert_eq!(store.list_users(None, None, 1).await.unwrap().len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_page_after_a_row_without_skipping_or_repeating_ties() {
    for (db, store) in stores().await {
        let f = fixture(&store).await;
        // A fourth grant created in the same second as g2: the id orders them.
        let g4 = grant(&store, &f.alice, "c2", 20, &["github"]).await;
        let after = |created_at: i64, id: &str| Cursor {
            created_at,
            id: id.to_string(),
        };
        let all = listed(&store, GrantFilter::default(), 100).await;
        assert_eq!(all.len(), 4);
        let mut paged = Vec::new();
        let mut cursor: Option<Cursor> = None;
        for _ in 0..=all.len() {
            let filter = GrantFilter {
                after: cursor.clone(),
                ..GrantFilter::default()
            };
            let page = store.list_grants(&filter, 1).await.unwrap();
            let Some(last) = page.last() else { break };
            cursor = Some(after(last.created_at, &last.id));
            paged.push(last.id.clone());
        }
        assert_eq!(paged, all, "{:?}", db.kind);
        assert!(all.contains(&g4));
        // With a filter: alice's live grants after the newest of them.
        let filter = GrantFilter {
            user_id: Some(f.alice.id.clone()),
            live: Some(true),
            after: Some(after(20, &all[1])),
            ..GrantFilter::default()
        };
        let rest: Vec<String> = store
            .list_grants(&filter, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|g| g.id)
            .collect();
        assert_eq!(rest, [all[2].clone(), f.g1.clone()], "{:?}", db.kind);

        // The cursor with the provider filter, whose value is bound twice.
        let filter = GrantFilter {
            provider: Some("gitlab".into()),
            after: Some(after(30, &f.g3)),
            ..GrantFilter::default()
        };
        assert_eq!(
            listed(&store, filter, 10).await,
            vec![f.g2.clone()],
            "{:?}",
            db.kind
        );

        // Clients c1 and c2 share their creation second.
        let first = store.list_clients(None, None, 1).await.unwrap();
        assert_eq!(first[0].client_id, "c2");
        let next = after(first[0].created_at, &first[0].client_id);
        for kind in [None, Some("dcr")] {
            let second = store.list_clients(kind, Some(&next), 10).await.unwrap();
            let ids: Vec<&str> = second.iter().map(|c| c.client_id.as_str()).collect();
            assert_eq!(ids, ["c1"], "{:?} {kind:?}", db.kind);
        }
        let none = store.list_clients(Some("config"), Some(&next), 10).await;
        assert!(none.unwrap().is_empty());

        let first = store.list_users(None, None, 1).await.unwrap();
        assert_eq!(first[0].id, f.bob.id);
        let next = after(first[0].created_at, &first[0].id);
        for provider in [None, Some("github")] {
            let second = store.list_users(provider, Some(&next), 10).await.unwrap();
            assert_eq!(second.len(), 1, "{:?} {provider:?}", db.kind);
            assert_eq!(second[0].id, f.alice.id);
        }
        let none = store.list_users(Some("gitlab"), Some(&next), 10).await;
        assert!(none.unwrap().is_empty(), "{:?}", db.kind);
    }
}
