//! The admin API over HTTP: absent unless an admin token is configured,
//! 401 with a Bearer challenge without it, each operator operation as JSON
//! and audited with the request's id, bad input answered 4xx.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::fake_github::LOGIN;
use crate::support::oauth_client::{
    grant_of, http, mcp_status, register_named, sign_in, sign_in_with,
};
use crate::support::{FakeGithub, Mode, TestBroker, TestDb, start_broker, start_broker_full};

const TOKEN: &str = "adm_Q2x9VfL3kZp7Rt1Yw8Hs4Nc6Jd0Bg5Ue-Mi_Ko";

const RS_CONFIG: &str = "[[clients]]\nclient_id = \"resource-server\"\n\
    redirect_uris = [\"https://rs.example/cb\"]\nclient_secret = \"rs-secret-value-0123456789\"\n";

async fn admin_broker(db: &TestDb, fake: &FakeGithub) -> TestBroker {
    start_broker_full(
        db,
        &[("github.toml", fake.provider_toml())],
        &[("MCP_BROKER_ADMIN_TOKEN", TOKEN)],
        Some(RS_CONFIG),
    )
    .await
}

struct Answer {
    status: u16,
    request_id: String,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn call(broker: &TestBroker, method: Method, path: &str, token: Option<&str>) -> Answer {
    let mut request = http().request(method, format!("{}{path}", broker.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let request_id = headers
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    Answer {
        status,
        request_id,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

async fn admin(broker: &TestBroker, method: Method, path: &str) -> Answer {
    call(broker, method, path, Some(TOKEN)).await
}

/// The newest audit event of `kind`.
async fn last_event(broker: &TestBroker, kind: &str) -> mcp_broker::store::AuditRecord {
    let filter = mcp_broker::store::AuditFilter {
        kind: Some(kind.into()),
        ..Default::default()
    };
    let events = broker.state.store.audit_events(&filter, 1).await.unwrap();
    events.into_iter().next().expect("an event of that kind")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_is_absent_unless_a_token_is_configured() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    for path in ["/admin/grants", "/admin/audit/verify", "/admin/clients/x"] {
        for token in [None, Some(TOKEN)] {
            let answer = call(&broker, Method::GET, path, token).await;
            assert_eq!(answer.status, 404, "{path}");
            assert!(answer.headers.get("www-authenticate").is_none());
        }
    }
    let answer = call(
        &broker,
        Method::POST,
        "/admin/grants/g1/revoke",
        Some(TOKEN),
    )
    .await;
    assert_eq!(answer.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_admin_token_is_401_with_a_bearer_challenge() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = admin_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    let wrong = format!("{TOKEN}x");
    for token in [
        None,
        Some(wrong.as_str()),
        Some(session.access_token.as_str()),
        Some(""),
    ] {
        for (method, path) in [
            (Method::GET, "/admin/grants"),
            (Method::DELETE, "/admin/clients/resource-server"),
            (Method::POST, "/admin/users/u1/disconnect"),
        ] {
            let answer = call(&broker, method, path, token).await;
            assert_eq!(answer.status, 401, "{path} with {token:?}");
            let challenge = answer.headers["www-authenticate"].to_str().unwrap();
            assert!(challenge.starts_with("Bearer"), "{challenge}");
            assert_eq!(answer.body["error"], "invalid_token");
        }
    }
    assert_eq!(
        mcp_status(&broker.mcp_url(), &session.access_token).await,
        200
    );
    // No CORS: a browser page on another origin gets no permission.
    let answer = http()
        .get(format!("{}/admin/grants", broker.url))
        .bearer_auth(TOKEN)
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let preflight = http()
        .request(Method::OPTIONS, format!("{}/admin/grants", broker.url))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_show_the_mapping_and_never_a_token() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::GitHubApp).await;
    let broker = admin_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    let grant = grant_of(&session.access_token);
    let upstream = broker.github_token(&session.access_token).await.unwrap();
    let stored = broker.github_link(&session.access_token).await.unwrap();
    let mut secrets = vec![
        session.access_token.clone(),
        session.refresh_token.clone(),
        upstream.access_token.clone(),
        "rs-secret-value".to_string(),
        mcp_broker::tokens::opaque::hash_secret("rs-secret-value-0123456789"),
    ];
    secrets.extend(fake.issued_secrets());

    let shown = admin(&broker, Method::GET, &format!("/admin/grants/{grant}")).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert_eq!(shown.headers["cache-control"], "no-store");
    assert_eq!(shown.body["status"], "live");
    assert_eq!(shown.body["user"]["login"], LOGIN);
    assert_eq!(
        shown.body["client"]["id"],
        session.client.client_id.as_str()
    );
    let link = &shown.body["upstream_links"][0];
    assert_eq!(link["provider"], "github");
    assert_eq!(link["status"], "live");
    assert_eq!(link["expires_at"], stored.expires_at.unwrap());
    assert_eq!(link["has_refresh_token"], true);
    assert_eq!(link["kek_id"], json!(stored.kek_id));
    assert!(stored.kek_id.is_some(), "a new link is enveloped");

    let mut bodies = vec![shown.body.to_string()];
    for path in [
        "/admin/grants".to_string(),
        format!(
            "/admin/grants?client={}&status=live",
            session.client.client_id
        ),
        "/admin/clients".into(),
        "/admin/clients/resource-server".into(),
        format!("/admin/clients/{}", session.client.client_id),
        "/admin/users".into(),
        "/admin/audit".into(),
    ] {
        let answer = admin(&broker, Method::GET, &path).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        bodies.push(answer.body.to_string());
    }
    for body in &bodies {
        for secret in &secrets {
            assert!(!body.contains(secret.as_str()), "a secret leaked: {body}");
        }
    }
    let grants = admin(&broker, Method::GET, "/admin/grants?status=revoked").await;
    assert_eq!(grants.body, json!({"grants": [], "next": null}));
    let clients = admin(&broker, Method::GET, "/admin/clients?kind=config").await;
    assert_eq!(clients.body["clients"][0]["id"], "resource-server");
    let rs = admin(&broker, Method::GET, "/admin/clients/resource-server").await;
    assert_eq!(rs.body["confidential"], true);
    let users = admin(&broker, Method::GET, "/admin/users?provider=github").await;
    assert_eq!(users.body["users"][0]["live_grants"], 1);
    let verify = admin(&broker, Method::GET, "/admin/audit/verify").await;
    assert_eq!(verify.body["intact"], true, "{}", verify.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_mutation_works_and_is_audited_with_the_request_id() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = admin_broker(&db, &fake).await;
    let mut sessions = Vec::new();
    for name in ["one", "two", "three"] {
        let client = register_named(&broker.url, name).await;
        sessions.push(sign_in_with(&broker.url, client).await);
    }
    let [one, two, three] = <[_; 3]>::try_from(sessions).ok().unwrap();

    // Revoke a grant.
    let g1 = grant_of(&one.access_token);
    let revoked = admin(&broker, Method::POST, &format!("/admin/grants/{g1}/revoke")).await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(
        revoked.body,
        json!({
            "grants_revoked": 1,
            "links_revoked": 1,
            "links_retry_later": 0,
            "consents_revoked": 0
        })
    );
    assert_eq!(mcp_status(&broker.mcp_url(), &one.access_token).await, 401);
    let event = last_event(&broker, "operator.action").await;
    assert_eq!(event.actor, "operator:admin-api");
    assert_eq!(event.grant_id.as_deref(), Some(g1.as_str()));
    assert_eq!(
        event.request_id.as_deref(),
        Some(revoked.request_id.as_str())
    );
    let again = admin(&broker, Method::POST, &format!("/admin/grants/{g1}/revoke")).await;
    assert_eq!(again.status, 409, "{}", again.body);
    let refused = last_event(&broker, "operator.action").await;
    assert!(refused.outcome.starts_with("refused: "), "{refused:?}");
    assert_eq!(
        refused.request_id.as_deref(),
        Some(again.request_id.as_str())
    );

    // Delete a client: its grant goes, upstream too.
    let client = two.client.client_id.clone();
    let deleted = admin(&broker, Method::DELETE, &format!("/admin/clients/{client}")).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(deleted.body["revoked"]["grants_revoked"], 1);
    assert_eq!(
        deleted.body["grant_ids"],
        json!([grant_of(&two.access_token)])
    );
    assert_eq!(mcp_status(&broker.mcp_url(), &two.access_token).await, 401);
    assert_eq!(fake.counters().revocations, 2);
    let event = last_event(&broker, "client.deleted").await;
    assert_eq!(event.actor, "operator:admin-api");
    assert_eq!(event.client_id.as_deref(), Some(client.as_str()));
    assert_eq!(event.outcome, "ok");
    assert_eq!(
        event.request_id.as_deref(),
        Some(deleted.request_id.as_str())
    );
    let gone = admin(&broker, Method::GET, &format!("/admin/clients/{client}")).await;
    assert_eq!(gone.status, 404);

    // A configured client is refused, and the refusal recorded.
    let config = admin(&broker, Method::DELETE, "/admin/clients/resource-server").await;
    assert_eq!(config.status, 409);
    assert!(
        config.body["error_description"]
            .as_str()
            .unwrap()
            .contains("settings file")
    );
    let event = last_event(&broker, "client.deleted").await;
    assert!(event.outcome.starts_with("refused: "));
    assert_eq!(
        event.request_id.as_deref(),
        Some(config.request_id.as_str())
    );

    // Disconnect the user: the last live grant goes.
    let user = broker
        .state
        .store
        .grant_status(&grant_of(&three.access_token))
        .await
        .unwrap()
        .unwrap()
        .user_id;
    let path = format!("/admin/users/{user}/disconnect");
    let disconnected = admin(&broker, Method::POST, &path).await;
    assert_eq!(disconnected.status, 200, "{}", disconnected.body);
    assert_eq!(disconnected.body["grants_revoked"], 1);
    // Clients one and three (two's consent went with its registration).
    assert_eq!(disconnected.body["consents_revoked"], 2);
    assert_eq!(
        mcp_status(&broker.mcp_url(), &three.access_token).await,
        401
    );
    let event = last_event(&broker, "operator.action").await;
    assert_eq!(event.user_id.as_deref(), Some(user.as_str()));
    assert_eq!(
        event.request_id.as_deref(),
        Some(disconnected.request_id.as_str())
    );
    assert_eq!(admin(&broker, Method::POST, &path).await.status, 409);

    // The ledger, through the API, holds all of it and still verifies.
    let events = admin(
        &broker,
        Method::GET,
        "/admin/audit?kind=client.deleted&limit=10",
    )
    .await;
    assert_eq!(events.status, 200);
    assert_eq!(events.body["events"].as_array().unwrap().len(), 2);
    assert_eq!(
        events.body["events"][0]["request_id"],
        deleted.request_id.as_str()
    );
    let verify = admin(&broker, Method::GET, "/admin/audit/verify").await;
    assert_eq!(verify.body["intact"], true);
    assert!(verify.body["events"].as_u64().unwrap() >= 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_400_and_unknown_ids_404_never_5xx() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = admin_broker(&db, &fake).await;
    for (method, path, status) in [
        (Method::GET, "/admin/grants?status=maybe", 400),
        (Method::GET, "/admin/grants?limit=0", 400),
        (Method::GET, "/admin/grants?limit=1001", 400),
        (Method::GET, "/admin/grants?limit=ten", 400),
        (Method::GET, "/admin/grants?limit=1&limit=2", 400),
        (Method::GET, "/admin/grants?bogus=1", 400),
        (Method::GET, "/admin/grants?user=a%20b", 400),
        (Method::GET, "/admin/grants?client=%FF", 400),
        (Method::GET, "/admin/clients?kind=oidc", 400),
        (Method::GET, "/admin/users?provider=a/b", 400),
        (Method::GET, "/admin/audit?kind=token.stolen", 400),
        (Method::GET, "/admin/audit?since=yesterday", 400),
        (Method::GET, "/admin/grants/bad%20id", 400),
        (Method::GET, "/admin/grants/unknown-grant", 404),
        (Method::POST, "/admin/grants/unknown-grant/revoke", 404),
        (Method::POST, "/admin/grants/bad%00id/revoke", 400),
        (Method::GET, "/admin/clients/nobody", 404),
        (Method::DELETE, "/admin/clients/nobody", 404),
        (Method::DELETE, "/admin/clients/a%0Ab", 400),
        (Method::POST, "/admin/users/nobody/disconnect", 404),
        (Method::GET, "/admin/grants/x/revoke", 405),
        // A metadata document's client id is a URL: one encoded segment.
        (
            Method::GET,
            "/admin/clients/https%3A%2F%2Fapp.example%2Fclient.json",
            404,
        ),
        (Method::GET, "/admin/nothing", 404),
    ] {
        let answer = admin(&broker, method.clone(), path).await;
        assert_eq!(answer.status, status, "{method} {path}: {}", answer.body);
        if status == 400 || (status == 404 && path != "/admin/nothing") {
            assert!(answer.body["error"].is_string(), "{path}: {}", answer.body);
            assert!(answer.body["error_description"].is_string());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_is_kept_while_its_upstream_tokens_await_an_unavailable_provider() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = admin_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    let path = format!("/admin/clients/{}", session.client.client_id);
    fake.set_revocation_down(true);

    // Our grant ends at once; the sealed upstream token, and so the
    // client whose deletion would cascade it away, wait for the provider.
    let answer = admin(&broker, Method::DELETE, &path).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(answer.headers.get("retry-after").is_some());
    assert_eq!(
        mcp_status(&broker.mcp_url(), &session.access_token).await,
        401
    );
    assert!(broker.github_link(&session.access_token).await.is_some());
    assert_eq!(admin(&broker, Method::GET, &path).await.status, 200);
    let event = last_event(&broker, "client.deleted").await;
    assert!(
        event.outcome.starts_with("refused: 1 grant(s) revoked"),
        "{event:?}"
    );

    fake.set_revocation_down(false);
    let answer = admin(&broker, Method::DELETE, &path).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["revoked"]["links_revoked"], 1);
    assert!(broker.github_link(&session.access_token).await.is_none());
    assert_eq!(admin(&broker, Method::GET, &path).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_whose_audit_record_fails_answers_500_saying_it_took_effect() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = admin_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    // Every append starts by updating this row.
    db.execute("DROP TABLE audit_head").await;
    let grant = grant_of(&session.access_token);
    let answer = admin(
        &broker,
        Method::POST,
        &format!("/admin/grants/{grant}/revoke"),
    )
    .await;
    assert_eq!(answer.status, 500);
    assert!(
        answer.body["error_description"]
            .as_str()
            .unwrap()
            .contains("took effect"),
        "{}",
        answer.body
    );
    assert_eq!(
        mcp_status(&broker.mcp_url(), &session.access_token).await,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_page_on_with_the_next_value_they_answer() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = admin_broker(&db, &fake).await;
    for name in ["one", "two", "three"] {
        let client = crate::support::oauth_client::register_named(&broker.url, name).await;
        crate::support::oauth_client::sign_in_with(&broker.url, client).await;
    }
    for (list, expected) in [("grants", 3), ("clients", 4), ("users", 1)] {
        let mut seen = Vec::new();
        let mut path = format!("/admin/{list}?limit=2");
        for page_number in 0.. {
            assert!(page_number < 5, "{list}: the pages never end");
            let page = admin(&broker, Method::GET, &path).await;
            assert_eq!(page.status, 200, "{}", page.body);
            let items = page.body[list].as_array().unwrap();
            seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_string()));
            match page.body["next"].as_str() {
                Some(next) => {
                    assert_eq!(items.len(), 2, "only a full page names a next one");
                    path = format!("/admin/{list}?limit=2&after={}", urlencode(next));
                }
                None => break,
            }
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "{list}: none twice: {seen:?}");
        assert_eq!(seen.len(), expected, "{list}: {seen:?}");
    }
    let bad = admin(&broker, Method::GET, "/admin/grants?after=yesterday").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"], "invalid_request");
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
