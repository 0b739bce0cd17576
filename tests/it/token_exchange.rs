//! Token exchange (RFC 8693): a first-party tool server presents a user's
//! access token of ours and gets the user's upstream token, only when the
//! settings allow that client that provider; refreshed first; audited.

use serde_json::Value;

use crate::support::fake_github::LOGIN;
use crate::support::let_upstream_token_expire;
use crate::support::oauth_client::{grant_of, http, revoke_refresh_token, sign_in};
use crate::support::{FakeGithub, Mode, TestBroker, TestDb, start_broker_with_settings};
use mcp_broker::store::{AuditFilter, AuditRecord};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const SECRET: &str = "tool-server-secret-0123456789";

const SETTINGS: &str = r#"
[[clients]]
client_id = "tool-server"
client_secret = "tool-server-secret-0123456789"
redirect_uris = ["https://tools.example/callback"]
token_exchange = ["github"]

[[clients]]
client_id = "other-server"
client_secret = "other-server-secret-0123456789"
redirect_uris = ["https://other.example/callback"]
"#;

async fn start(db: &TestDb, mode: Mode) -> (FakeGithub, TestBroker) {
    let fake = FakeGithub::start(mode).await;
    let broker = start_broker_with_settings(db, &fake, SETTINGS).await;
    (fake, broker)
}

/// POST /token as `client` (Basic auth) exchanging `subject` for `audience`.
async fn exchange(
    broker: &TestBroker,
    client: (&str, &str),
    subject: &str,
    audience: &str,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let response = http()
        .post(format!("{}/token", broker.url))
        .basic_auth(client.0, Some(client.1))
        .form(&[
            ("grant_type", GRANT),
            ("subject_token", subject),
            ("subject_token_type", ACCESS),
            ("audience", audience),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.json().await.unwrap(), headers)
}

/// Every `token.exchanged` event in the ledger, oldest first.
async fn exchange_events(broker: &TestBroker) -> Vec<AuditRecord> {
    let filter = AuditFilter {
        kind: Some("token.exchanged".into()),
        ..Default::default()
    };
    broker.state.store.audit_events(&filter, 100).await.unwrap()
}

/// An exchange that must be refused: its status and error code, once it is
/// checked that no token came with it.
async fn refusal(
    broker: &TestBroker,
    client: (&str, &str),
    subject: &str,
    audience: &str,
) -> (u16, String) {
    let (status, body, _) = exchange(broker, client, subject, audience).await;
    assert!(body.get("access_token").is_none(), "{body}");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
    )
}

/// GitHub's `GET /user` at the fake with `token`: the login.
async fn github_login(fake: &FakeGithub, token: &str) -> Option<String> {
    let response = http()
        .get(format!("{}/user", fake.url))
        .header("User-Agent", "tool-server")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let user: Value = response.json().await.ok()?;
    user["login"].as_str().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowlisted_client_gets_the_users_upstream_token_for_its_provider() {
    for db in TestDb::all().await {
        let (fake, broker) = start(&db, Mode::OAuthApp).await;
        let user = sign_in(&broker.url).await;
        let (status, body, headers) = exchange(
            &broker,
            ("tool-server", SECRET),
            &user.access_token,
            "github",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["issued_token_type"], ACCESS);
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(headers["cache-control"], "no-store");
        let token = body["access_token"].as_str().unwrap();
        assert!(fake.issued_secrets().iter().any(|s| s == token));
        assert_eq!(github_login(&fake, token).await.as_deref(), Some(LOGIN));
        // The metadata says the grant type exists here.
        let metadata: Value = http()
            .get(format!(
                "{}/.well-known/oauth-authorization-server",
                broker.url
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            metadata["grant_types_supported"]
                .to_string()
                .contains(GRANT)
        );
        // Audited: who asked, for whom, through which grant, never the token.
        let events = exchange_events(&broker).await;
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.actor, "client:tool-server");
        assert_eq!(event.client_id.as_deref(), Some("tool-server"));
        assert_eq!(event.provider.as_deref(), Some("github"));
        assert_eq!(event.outcome, "ok");
        assert_eq!(
            event.grant_id.as_deref(),
            Some(grant_of(&user.access_token).as_str())
        );
        assert_eq!(event.user_login.as_deref(), Some(LOGIN));
        assert_eq!(
            event.detail.as_deref(),
            Some(format!("subject client {}", user.client.client_id).as_str())
        );
        let everything = format!("{event:?}");
        assert!(!everything.contains(token) && !everything.contains(&user.access_token));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_and_providers_outside_the_allowlist_are_refused_without_a_token() {
    let db = TestDb::sqlite();
    let (_fake, broker) = start(&db, Mode::OAuthApp).await;
    let user = sign_in(&broker.url).await;
    let cases = [
        // Not allowed to exchange at all.
        (
            ("other-server", "other-server-secret-0123456789"),
            "github",
            400,
            "unauthorized_client",
        ),
        // Allowed, but not for this provider.
        (("tool-server", SECRET), "gitlab", 400, "invalid_target"),
        // Wrong secret.
        (
            ("tool-server", "not-the-secret-0123456789"),
            "github",
            401,
            "invalid_client",
        ),
    ];
    for (client, audience, status, code) in cases {
        assert_eq!(
            refusal(&broker, client, &user.access_token, audience).await,
            (status, code.to_string()),
            "{client:?} {audience}"
        );
    }
    // A public client (dynamically registered, no secret) cannot either.
    let response = http()
        .post(format!("{}/token", broker.url))
        .form(&[
            ("grant_type", GRANT),
            ("client_id", user.client.client_id.as_str()),
            ("subject_token", user.access_token.as_str()),
            ("subject_token_type", ACCESS),
            ("audience", "github"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");
    // The allowlisted client's refusal is in the ledger with its code;
    // clients without an allowlist are not (any public client could fill
    // the ledger), nor is the wrong secret (it never authenticated).
    let outcomes: Vec<(Option<String>, Option<String>, String)> = exchange_events(&broker)
        .await
        .into_iter()
        .map(|e| (e.client_id, e.provider, e.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [(
            Some("tool-server".into()),
            None,
            "refused: invalid_target".into()
        )]
    );
}

/// With a scope that links the provider, a subject token without it cannot
/// be exchanged, as it could not call that provider's tools at `/mcp`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_token_without_the_providers_scope_is_refused() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let settings = format!(
        "{SETTINGS}\n[[scopes]]\nname = \"profile\"\nupstream = [\"read:user\"]\ndefault = true\n\n\
         [[scopes]]\nname = \"repo:read\"\nupstream = [\"repo\"]\nprovider = \"github\"\n\n\
         [[scopes]]\nname = \"repo:write\"\nimplies = [\"repo:read\"]\nupstream = [\"repo\"]\n"
    );
    let broker = start_broker_with_settings(&db, &fake, &settings).await;
    let narrow = sign_in(&broker.url).await;
    assert_eq!(
        refusal(
            &broker,
            ("tool-server", SECRET),
            &narrow.access_token,
            "github"
        )
        .await,
        (400, "invalid_scope".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_upstream_token_is_refreshed_before_it_is_handed_out() {
    let db = TestDb::sqlite();
    let (fake, broker) = start(&db, Mode::GitHubApp).await;
    let user = sign_in(&broker.url).await;
    let_upstream_token_expire(&db, &fake).await;
    let (status, body, _) = exchange(
        &broker,
        ("tool-server", SECRET),
        &user.access_token,
        "github",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fake.counters().refresh_attempts, 1);
    let token = body["access_token"].as_str().unwrap();
    assert!(fake.token_is_live(token), "a refreshed, working token");
    let expires_in = body["expires_in"].as_i64().unwrap();
    assert!(
        expires_in > 3600,
        "GitHub App tokens live 8 hours: {expires_in}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_or_revoked_subject_token_is_an_invalid_request() {
    let db = TestDb::sqlite();
    let (_fake, broker) = start(&db, Mode::OAuthApp).await;
    let user = sign_in(&broker.url).await;
    let invalid_request = (400, "invalid_request".to_string());
    let tool_server = ("tool-server", SECRET);
    assert_eq!(
        refusal(&broker, tool_server, "eyJnot.a.token", "github").await,
        invalid_request
    );
    revoke_refresh_token(&broker.url, &user.client.client_id, &user.refresh_token).await;
    assert_eq!(
        refusal(&broker, tool_server, &user.access_token, "github").await,
        invalid_request
    );
}
