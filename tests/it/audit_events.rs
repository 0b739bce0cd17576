//! Each step in a mapping's life leaves its ledger event, with the fields an
//! operator reads it by: actor, user (with provider, subject and login),
//! client, grant, provider, outcome and the request id the answer carried.
//! No event holds a token, code or secret.

use std::time::Duration;

use serde_json::{Value, json};

use mcp_broker::audit::{Actor, AuditFilter, AuditRecord};

use crate::support::fake_github::{LOGIN, TokenFailure, USER_ID};
use crate::support::let_upstream_token_expire;
use crate::support::oauth_client::{
    Session, authorize, claims_of, grant_of, mcp_post, open_mcp_session, pkce, query_param, redeem,
    register, revoke_refresh_token, sign_in, token_request,
};
use crate::support::{
    FakeGithub, Mode, TestBroker, TestDb, start_broker, start_broker_with_env,
    start_broker_with_settings,
};

/// Every event of `kind`, oldest first.
async fn events(broker: &TestBroker, kind: &str) -> Vec<AuditRecord> {
    let filter = AuditFilter {
        kind: Some(kind.into()),
        ..Default::default()
    };
    broker.state.store.audit_events(&filter, 100).await.unwrap()
}

/// The one event of `kind`.
async fn only(broker: &TestBroker, kind: &str) -> AuditRecord {
    let mut found = events(broker, kind).await;
    assert_eq!(found.len(), 1, "one {kind} event: {found:?}");
    found.remove(0)
}

/// Waits (up to 30 s) for work the broker does in the background.
async fn eventually(broker: &TestBroker, kind: &str) -> AuditRecord {
    for _ in 0..600 {
        if !events(broker, kind).await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    only(broker, kind).await
}

fn request_id(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .expect("every answer carries its request id")
        .to_str()
        .unwrap()
        .to_string()
}

/// The user, client and grant of a signed-in session, as events name them.
fn assert_names_the_mapping(event: &AuditRecord, session: &Session) {
    let user = user_id(session);
    assert_eq!(event.user_id.as_deref(), Some(user.as_str()), "{event:?}");
    assert_eq!(event.user_provider.as_deref(), Some("github"), "{event:?}");
    assert_eq!(
        event.user_subject.as_deref(),
        Some(USER_ID.to_string().as_str())
    );
    assert_eq!(event.user_login.as_deref(), Some(LOGIN), "{event:?}");
    assert_eq!(
        event.client_id.as_deref(),
        Some(session.client.client_id.as_str())
    );
    assert_eq!(
        event.grant_id.as_deref(),
        Some(grant_of(&session.access_token).as_str())
    );
}

fn user_id(session: &Session) -> String {
    claims_of(&session.access_token)["sub"]
        .as_str()
        .unwrap()
        .to_string()
}

/// No field of any stored event holds one of `secrets`.
async fn assert_ledger_holds_none_of(broker: &TestBroker, secrets: &[String]) {
    let all = broker
        .state
        .store
        .audit_events(&AuditFilter::default(), 1000)
        .await
        .unwrap();
    assert!(!all.is_empty());
    for event in &all {
        let text = format!("{event:?}");
        for secret in secrets.iter().filter(|s| s.len() >= 8) {
            assert!(!text.contains(secret.as_str()), "a secret in {event:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_records_registration_consent_grant_upstream_token_and_our_tokens_on_both_databases()
 {
    for db in TestDb::all().await {
        let fake = FakeGithub::start(Mode::GitHubApp).await;
        let broker = start_broker(&db, &fake).await;

        let registered = crate::support::oauth_client::http()
            .post(format!("{}/register", broker.url))
            .json(&json!({
                "client_name": "ledger-test-client",
                "redirect_uris": [crate::support::oauth_client::REDIRECT_URI],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
            }))
            .send()
            .await
            .unwrap();
        let register_request = request_id(registered.headers());
        let client_id = registered.json::<Value>().await.unwrap()["client_id"]
            .as_str()
            .unwrap()
            .to_string();
        let client = crate::support::oauth_client::Client {
            client_id: client_id.clone(),
        };
        let pkce = pkce();
        let back = authorize(&broker.url, &client, &pkce, "s").await;
        let code = query_param(&back, "code").unwrap();
        let redeemed = redeem(&broker.url, &client, &code, &pkce).await;
        let token_request_id = request_id(redeemed.headers());
        let body: Value = redeemed.json().await.unwrap();
        let session = Session {
            client: client.clone(),
            access_token: body["access_token"].as_str().unwrap().to_string(),
            refresh_token: body["refresh_token"].as_str().unwrap().to_string(),
            code: code.clone(),
        };

        let event = only(&broker, "client.registered").await;
        assert_eq!(event.actor, format!("client:{client_id}"));
        assert_eq!(event.client_id.as_deref(), Some(client_id.as_str()));
        assert_eq!(event.request_id.as_deref(), Some(register_request.as_str()));
        assert_eq!(event.outcome, "ok");
        assert!(
            event
                .detail
                .as_deref()
                .unwrap()
                .contains("ledger-test-client"),
            "{event:?}"
        );

        let user = user_id(&session);
        for kind in ["consent.granted", "grant.created", "upstream.stored"] {
            let event = only(&broker, kind).await;
            assert_names_the_mapping(&event, &session);
            assert_eq!(event.actor, format!("user:{user}"), "{kind}");
            assert_eq!(event.outcome, "ok");
            // The callback's request: an id was given, and it is not the
            // token request's.
            let id = event.request_id.clone().expect("a request id");
            assert_ne!(id, token_request_id);
        }
        let consent = only(&broker, "consent.granted").await;
        let scope = body["scope"].as_str().unwrap();
        assert_eq!(consent.detail.unwrap(), format!("approved scope: {scope}"));
        let grant = only(&broker, "grant.created").await;
        assert_eq!(grant.provider.as_deref(), Some("github"));
        let stored = only(&broker, "upstream.stored").await;
        assert_eq!(stored.provider.as_deref(), Some("github"));
        let detail = stored.detail.unwrap();
        assert!(
            detail.starts_with("signed in: upstream scopes") && detail.contains("refresh token"),
            "{detail}"
        );

        let issued = only(&broker, "token.issued").await;
        assert_names_the_mapping(&issued, &session);
        assert_eq!(issued.actor, format!("client:{client_id}"));
        assert_eq!(
            issued.request_id.as_deref(),
            Some(token_request_id.as_str())
        );
        let jti = claims_of(&session.access_token)["jti"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            issued.detail.as_deref().unwrap().contains(&jti),
            "the access token is named by its id: {issued:?}"
        );

        let mut secrets = vec![
            session.access_token.clone(),
            session.refresh_token.clone(),
            code,
            pkce.verifier.clone(),
        ];
        secrets.extend(fake.issued_secrets());
        assert_ledger_holds_none_of(&broker, &secrets).await;
        mcp_broker::audit::verify_ledger(&broker.state.store)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshing_our_token_records_token_refreshed_with_its_request_id() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    let response = token_request(
        &broker.url,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &session.client.client_id),
            ("refresh_token", &session.refresh_token),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let id = request_id(response.headers());
    let body: Value = response.json().await.unwrap();
    let new_access = body["access_token"].as_str().unwrap();

    let event = only(&broker, "token.refreshed").await;
    assert_names_the_mapping(&event, &session);
    assert_eq!(event.actor, format!("client:{}", session.client.client_id));
    assert_eq!(event.request_id.as_deref(), Some(id.as_str()));
    let jti = claims_of(new_access)["jti"].as_str().unwrap().to_string();
    assert!(event.detail.unwrap().contains(&jti));
    assert_ledger_holds_none_of(
        &broker,
        &[
            session.refresh_token.clone(),
            body["refresh_token"].as_str().unwrap().to_string(),
            new_access.to_string(),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_revoking_its_token_records_token_revoked_and_upstream_revoked_by_that_client() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    revoke_refresh_token(
        &broker.url,
        &session.client.client_id,
        &session.refresh_token,
    )
    .await;

    let client_actor = format!("client:{}", session.client.client_id);
    let revoked = only(&broker, "token.revoked").await;
    assert_names_the_mapping(&revoked, &session);
    assert_eq!(revoked.actor, client_actor);
    assert!(revoked.detail.unwrap().contains("RFC 7009"));

    // The upstream cascade runs after the answer, under the same request id.
    let upstream = eventually(&broker, "upstream.revoked").await;
    assert_names_the_mapping(&upstream, &session);
    assert_eq!(upstream.actor, client_actor);
    assert_eq!(upstream.provider.as_deref(), Some("github"));
    assert_eq!(upstream.outcome, "ok");
    assert_eq!(upstream.request_id, revoked.request_id);
    assert!(upstream.request_id.is_some());
    assert_eq!(fake.revoked_tokens().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_reused_after_the_grace_window_records_token_revoked_by_the_system() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker_with_env(
        &db,
        &[("github.toml", fake.provider_toml())],
        &[("MCP_BROKER_REFRESH_GRACE_SECS", "0")],
    )
    .await;
    let session = sign_in(&broker.url).await;
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", session.client.client_id.as_str()),
        ("refresh_token", session.refresh_token.as_str()),
    ];
    assert_eq!(token_request(&broker.url, &form).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(token_request(&broker.url, &form).await.status(), 400);

    let revoked = only(&broker, "token.revoked").await;
    assert_names_the_mapping(&revoked, &session);
    assert_eq!(revoked.actor, "system");
    assert!(revoked.detail.unwrap().contains("after the grace window"));
    assert_eq!(
        eventually(&broker, "upstream.revoked").await.actor,
        "system"
    );
}

/// A GitHub App sign-in whose upstream token has run out, and an MCP
/// session to call a tool in.
async fn expired_upstream_token(db: &TestDb) -> (FakeGithub, TestBroker, Session, String) {
    let fake = FakeGithub::start(Mode::GitHubApp).await;
    let broker = start_broker(db, &fake).await;
    let session = sign_in(&broker.url).await;
    let mcp = open_mcp_session(&broker.mcp_url(), &session.access_token).await;
    let_upstream_token_expire(db, &fake).await;
    (fake, broker, session, mcp)
}

/// `github_whoami`; returns the answer's status, request id and tool result.
async fn whoami(broker: &TestBroker, session: &Session, mcp: &str) -> (u16, String, Value) {
    let (status, headers, body) = mcp_post(
        &broker.mcp_url(),
        Some(&session.access_token),
        Some(mcp),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
               "params": {"name": "github_whoami", "arguments": {}}}),
    )
    .await;
    let result = body.map(|b| b["result"].clone()).unwrap_or(Value::Null);
    (status, request_id(&headers), result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_refresh_records_upstream_refreshed_under_the_calling_request() {
    let db = TestDb::sqlite();
    let (fake, broker, session, mcp) = expired_upstream_token(&db).await;
    let (status, id, result) = whoami(&broker, &session, &mcp).await;
    assert_eq!(status, 200);
    assert_ne!(result["isError"], Value::Bool(true), "{result}");
    assert_eq!(fake.counters().refreshes, 1);

    let event = only(&broker, "upstream.refreshed").await;
    assert_names_the_mapping(&event, &session);
    assert_eq!(event.actor, "system");
    assert_eq!(event.provider.as_deref(), Some("github"));
    assert_eq!(event.outcome, "ok");
    // The refresh runs in its own task; the id follows it there.
    assert_eq!(event.request_id.as_deref(), Some(id.as_str()));
    assert!(
        event
            .detail
            .unwrap()
            .starts_with("refreshed on demand: upstream scopes")
    );
    assert_ledger_holds_none_of(&broker, &fake.issued_secrets()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_the_provider_refuses_records_a_permanent_failure() {
    let db = TestDb::sqlite();
    let (fake, broker, session, mcp) = expired_upstream_token(&db).await;
    fake.revoke_all_tokens();
    // Our 401 sends the client to sign in again.
    let (status, id, _) = whoami(&broker, &session, &mcp).await;
    assert_eq!(status, 401);

    let event = only(&broker, "upstream.refresh_failed").await;
    assert_names_the_mapping(&event, &session);
    assert_eq!(event.outcome, "failed: permanent");
    assert_eq!(event.request_id.as_deref(), Some(id.as_str()));
    assert!(event.detail.unwrap().contains("sign in again"));
    assert!(events(&broker, "upstream.refreshed").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_outage_records_a_transient_failure_and_keeps_the_token() {
    let db = TestDb::sqlite();
    let (fake, broker, session, mcp) = expired_upstream_token(&db).await;
    fake.set_token_failure(Some(TokenFailure::ServerError));
    let (status, _, result) = whoami(&broker, &session, &mcp).await;
    assert_eq!(status, 200);
    assert_eq!(result["isError"], Value::Bool(true), "{result}");

    let event = only(&broker, "upstream.refresh_failed").await;
    assert_names_the_mapping(&event, &session);
    assert_eq!(event.outcome, "failed: transient");
    assert!(event.detail.unwrap().contains("the stored token is kept"));
    assert!(broker.github_link(&session.access_token).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unused_client_expiring_records_client_expired_and_its_revocations() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    let user = user_id(&session);
    db.execute("UPDATE clients SET last_used_at = 1, created_at = 1")
        .await;
    assert_eq!(
        broker.state.vault.expire_unused_clients(100).await.unwrap(),
        1
    );

    let expired = only(&broker, "client.expired").await;
    assert_eq!(expired.actor, "system");
    assert_eq!(
        expired.client_id.as_deref(),
        Some(session.client.client_id.as_str())
    );
    assert!(expired.detail.unwrap().contains("unused since"));
    // Recorded while the grant still existed: they name its user.
    for kind in ["token.revoked", "upstream.revoked"] {
        let event = only(&broker, kind).await;
        assert_eq!(event.actor, "system", "{kind}");
        assert_eq!(event.user_id.as_deref(), Some(user.as_str()), "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnecting_a_user_records_consent_revoked_and_token_revoked_by_the_operator() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    let user = user_id(&session);
    let ops = Actor::Operator("ops".into());
    let outcome = broker
        .state
        .vault
        .disconnect_user(&user, ops)
        .await
        .unwrap();
    assert_eq!(outcome.grants, 1);

    let consent = only(&broker, "consent.revoked").await;
    assert_eq!(consent.actor, "operator:ops");
    assert_eq!(consent.user_id.as_deref(), Some(user.as_str()));
    assert_eq!(consent.user_login.as_deref(), Some(LOGIN));
    assert_eq!(
        consent.client_id.as_deref(),
        Some(session.client.client_id.as_str())
    );
    let revoked = only(&broker, "token.revoked").await;
    assert_names_the_mapping(&revoked, &session);
    assert_eq!(revoked.actor, "operator:ops");
    let upstream = only(&broker, "upstream.revoked").await;
    assert_eq!(upstream.actor, "operator:ops");
    assert_eq!(upstream.outcome, "ok");
    // The consent is gone: signing in again asks for it.
    assert_eq!(
        broker
            .state
            .store
            .consented_scope(&user, &session.client.client_id)
            .await
            .unwrap(),
        None
    );
}

const ONE_CLIENT: &str = r#"
[[clients]]
client_id = "configured-app"
redirect_uris = ["http://127.0.0.1:53682/callback"]
"#;

/// A sign-in through the configured client; it and the PKCE pair used.
async fn sign_in_configured(
    broker: &TestBroker,
) -> (
    crate::support::oauth_client::Client,
    crate::support::oauth_client::Pkce,
) {
    let client = crate::support::oauth_client::Client {
        client_id: "configured-app".into(),
    };
    let pkce = pkce();
    let back = authorize(&broker.url, &client, &pkce, "s").await;
    let code = query_param(&back, "code").unwrap();
    assert_eq!(
        redeem(&broker.url, &client, &code, &pkce).await.status(),
        200
    );
    (client, pkce)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_added_to_or_removed_from_the_settings_record_registered_and_deleted_after_revoking_upstream()
 {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let first = start_broker_with_settings(&db, &fake, ONE_CLIENT).await;
    let added = only(&first, "client.registered").await;
    assert_eq!(added.actor, "system");
    assert_eq!(added.client_id.as_deref(), Some("configured-app"));
    assert_eq!(
        added.detail.as_deref(),
        Some("pre-registered in the settings")
    );

    let (client, pkce) = sign_in_configured(&first).await;

    // A restart with the same settings registers nothing new.
    let again = start_broker_with_settings(&db, &fake, ONE_CLIENT).await;
    assert_eq!(events(&again, "client.registered").await.len(), 1);
    assert!(events(&again, "client.deleted").await.is_empty());

    let emptied = start_broker_with_settings(&db, &fake, "").await;
    let deleted = only(&emptied, "client.deleted").await;
    assert_eq!(deleted.actor, "system");
    assert_eq!(deleted.client_id.as_deref(), Some("configured-app"));
    assert!(
        deleted
            .detail
            .unwrap()
            .contains("removed from the settings: cut off, 1 grant(s) revoked"),
    );
    // Cut off at once: it can no longer start an authorization.
    let refused = crate::support::oauth_client::http()
        .get(crate::support::oauth_client::authorize_url(
            &emptied.url,
            &client,
            &pkce,
            "s",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    // Its grant is revoked, upstream too, in the background.
    let revoked = only(&emptied, "token.revoked").await;
    assert!(
        revoked
            .detail
            .unwrap()
            .contains("removed from the settings")
    );
    assert_eq!(eventually(&emptied, "upstream.revoked").await.outcome, "ok");
    assert_eq!(fake.revoked_tokens().len(), 1);
    // Only then does the registration go (the upkeep, or the next start).
    let store = &emptied.state.store;
    mcp_broker::clients::configured::delete_removed(store)
        .await
        .unwrap();
    assert!(store.get_client("configured-app").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_client_whose_upstream_tokens_cannot_be_revoked_yet_is_kept_cut_off() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let first = start_broker_with_settings(&db, &fake, ONE_CLIENT).await;
    sign_in_configured(&first).await;

    fake.set_revocation_down(true);
    let emptied = start_broker_with_settings(&db, &fake, "").await;
    let store = &emptied.state.store;
    // Wait for the background cascade to have met the provider's 503.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while fake.counters().revocations == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the cascade did not reach the provider within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    mcp_broker::clients::configured::delete_removed(store)
        .await
        .unwrap();
    let kept = store.get_client("configured-app").await.unwrap().unwrap();
    assert_eq!(kept.registration, "removed");
    assert_eq!(kept.client_secret_hash, None);
    // Its grant is revoked, but the sealed upstream token is still held.
    let grant = only(&emptied, "token.revoked").await.grant_id.unwrap();
    let links = store.upstream_links_of_grant(&grant).await.unwrap();
    assert_eq!(links.len(), 1);

    // The provider is back: the next hourly upkeep revokes, then deletes.
    fake.set_revocation_down(false);
    let an_hour_later = mcp_broker::now_unix() + 3600;
    mcp_broker::app::upkeep(&emptied.state, an_hour_later).await;
    assert_eq!(fake.revoked_tokens().len(), 1);
    assert!(store.get_client("configured-app").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_client_registering_the_same_metadata_again_records_one_registration() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let first = register(&broker.url).await;
    let second = register(&broker.url).await;
    assert_eq!(first.client_id, second.client_id);
    assert_eq!(events(&broker, "client.registered").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_request_ids_untrusted_the_ledger_names_the_brokers_id_not_the_callers() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker_with_env(
        &db,
        &[("github.toml", fake.provider_toml())],
        &[("MCP_BROKER_TRUST_REQUEST_ID", "false")],
    )
    .await;
    let answer = crate::support::oauth_client::http()
        .post(format!("{}/register", broker.url))
        .header("x-request-id", "chosen-by-the-client")
        .json(&json!({
            "client_name": "untrusted-id",
            "redirect_uris": ["http://127.0.0.1:9/cb"],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    let ours = request_id(answer.headers());
    assert_ne!(ours, "chosen-by-the-client");
    let registered = only(&broker, "client.registered").await;
    assert_eq!(registered.request_id.as_deref(), Some(ours.as_str()));
}
