//! Client ID Metadata Documents: a client whose id is the URL of its metadata.
//! A tiny document server on 127.0.0.1 serves the documents; brokers that
//! should fetch from it allowlist 127.0.0.1 and plain http (test-only).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use mcp_broker::clients::cimd::{FetchError, FetchPolicy, fetch_document};

use crate::support::oauth_client::{
    Client, REDIRECT_URI, authorize, authorize_url, http, open_consent, pkce, query_param, redeem,
};
use crate::support::{FakeGithub, Mode, TestBroker, TestDb, start_broker_full};

const ALLOW_LOCAL_DOCUMENTS: &str =
    "cimd_allowed_hosts = [\"127.0.0.1\"]\ncimd_allow_http = true\n";

#[derive(Clone)]
struct Doc {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

#[derive(Default)]
struct Served {
    docs: HashMap<String, Doc>,
    fetches: HashMap<String, usize>,
}

/// Serves whatever each path was given, counting requests per path.
#[derive(Clone)]
struct DocServer {
    base: String,
    served: Arc<Mutex<Served>>,
}

impl DocServer {
    async fn start() -> DocServer {
        let served = Arc::new(Mutex::new(Served::default()));
        let shared = served.clone();
        let app = Router::new().fallback(move |uri: Uri| {
            let served = shared.clone();
            async move { serve(&served, uri.path()) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        DocServer { base, served }
    }

    fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }

    fn port(&self) -> u16 {
        url::Url::parse(&self.base).unwrap().port().unwrap()
    }

    fn set(&self, name: &str, doc: Doc) {
        self.served
            .lock()
            .unwrap()
            .docs
            .insert(format!("/{name}"), doc);
    }

    /// A valid public-client document at `name`, its id being its own URL.
    fn publish(&self, name: &str, cache_control: Option<&str>) -> String {
        let id = self.url(name);
        self.publish_json(name, document(&id, REDIRECT_URI), cache_control);
        id
    }

    fn publish_json(&self, name: &str, body: Value, cache_control: Option<&str>) {
        let mut headers = vec![("content-type", "application/json".to_string())];
        headers.extend(cache_control.map(|c| ("cache-control", c.to_string())));
        self.set(
            name,
            Doc {
                status: 200,
                headers,
                body: body.to_string(),
            },
        );
    }

    fn fetches(&self, name: &str) -> usize {
        let served = self.served.lock().unwrap();
        served
            .fetches
            .get(&format!("/{name}"))
            .copied()
            .unwrap_or(0)
    }

    fn total_fetches(&self) -> usize {
        self.served.lock().unwrap().fetches.values().sum()
    }
}

fn serve(served: &Mutex<Served>, path: &str) -> Response {
    let mut served = served.lock().unwrap();
    *served.fetches.entry(path.to_string()).or_default() += 1;
    let Some(doc) = served.docs.get(path).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = (StatusCode::from_u16(doc.status).unwrap(), doc.body).into_response();
    for (name, value) in doc.headers {
        response.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    response
}

fn document(client_id: &str, redirect_uri: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "Metadata Doc App",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

struct Setup {
    broker: TestBroker,
    docs: DocServer,
    _fake: FakeGithub,
    _db: TestDb,
}

async fn setup(config: Option<&str>) -> Setup {
    setup_on(TestDb::sqlite(), config).await
}

async fn setup_on(db: TestDb, config: Option<&str>) -> Setup {
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let docs = DocServer::start().await;
    let broker =
        start_broker_full(&db, &[("github.toml", fake.provider_toml())], &[], config).await;
    Setup {
        broker,
        docs,
        _fake: fake,
        _db: db,
    }
}

/// GET /authorize for `client_id`; returns status, Location and body.
async fn try_authorize(broker: &TestBroker, client_id: &str) -> (u16, Option<String>, String) {
    let client = Client {
        client_id: client_id.into(),
    };
    let response = http()
        .get(authorize_url(&broker.url, &client, &pkce(), "st"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (status, location, response.text().await.unwrap())
}

fn assert_error_page(answer: &(u16, Option<String>, String)) {
    assert_eq!(answer.0, 400, "{}", answer.2);
    assert_eq!(answer.1, None, "a refused client is never redirected to");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_identified_by_its_metadata_document_signs_in_on_both_databases() {
    for db in TestDb::all().await {
        sign_in_with_a_document(setup_on(db, Some(ALLOW_LOCAL_DOCUMENTS)).await).await;
    }
}

async fn sign_in_with_a_document(s: Setup) {
    // no-store: /token fetches again, so the row is also updated in place.
    let client = Client {
        client_id: s.docs.publish("app.json", Some("no-store")),
    };
    let pkce = pkce();
    let back = authorize(&s.broker.url, &client, &pkce, "s1").await;
    assert_eq!(query_param(&back, "state").as_deref(), Some("s1"));
    let code = query_param(&back, "code").expect("a code for the document's redirect URI");
    let response = redeem(&s.broker.url, &client, &code, &pkce).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["access_token"].is_string() && body["refresh_token"].is_string(),
        "{body}"
    );
    let row = s
        .broker
        .state
        .store
        .get_client(&client.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.registration, "cimd");
    assert_eq!(row.token_endpoint_auth_method, "none");
    assert_eq!(row.client_secret_hash, None);
    assert_eq!(row.redirect_uris, vec![REDIRECT_URI.to_string()]);
    assert_eq!(row.client_name.as_deref(), Some("Metadata Doc App"));
    assert_eq!(
        s.docs.fetches("app.json"),
        2,
        "one fetch at /authorize, one at /token"
    );
    // The first fetch registered it; the re-fetch was cache upkeep.
    let filter = mcp_broker::audit::AuditFilter {
        kind: Some("client.registered".into()),
        client_id: Some(client.client_id.clone()),
        ..Default::default()
    };
    let events = s
        .broker
        .state
        .store
        .audit_events(&filter, 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].actor, format!("client:{}", client.client_id));
    assert_eq!(
        events[0].detail.as_deref(),
        Some("client id metadata document: Metadata Doc App")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_whose_client_id_differs_from_its_url_is_refused() {
    let s = setup(Some(ALLOW_LOCAL_DOCUMENTS)).await;
    let id = s.docs.url("impostor.json");
    s.docs.publish_json(
        "impostor.json",
        document(&s.docs.url("app.json"), REDIRECT_URI),
        None,
    );
    assert_error_page(&try_authorize(&s.broker, &id).await);
    assert_eq!(s.docs.fetches("impostor.json"), 1);
    // At the token endpoint the same client is unknown: 401 invalid_client.
    let client = Client { client_id: id };
    let response = redeem(&s.broker.url, &client, "no-such-code", &pkce()).await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_uri_not_listed_in_the_document_is_refused() {
    let s = setup(Some(ALLOW_LOCAL_DOCUMENTS)).await;
    let id = s.docs.url("other-cb.json");
    s.docs.publish_json(
        "other-cb.json",
        document(&id, "http://127.0.0.1:53682/elsewhere"),
        None,
    );
    assert_error_page(&try_authorize(&s.broker, &id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_on_a_loopback_host_is_refused_as_an_ssrf_target_unless_allowlisted() {
    let s = setup(None).await;
    s.docs.publish("app.json", None);
    let https_id = format!("https://127.0.0.1:{}/app.json", s.docs.port());
    assert_error_page(&try_authorize(&s.broker, &https_id).await);
    assert_error_page(&try_authorize(&s.broker, &s.docs.url("app.json")).await);
    assert_eq!(s.docs.total_fetches(), 0, "nothing was fetched");
    // The refusal is the address guard's, before any connection.
    let url = url::Url::parse(&https_id).unwrap();
    match fetch_document(&url, &FetchPolicy::default()).await {
        Err(FetchError::Refused(why)) => assert!(why.contains("non-public"), "{why}"),
        other => panic!("expected an SSRF refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirecting_document_url_is_refused() {
    let s = setup(Some(ALLOW_LOCAL_DOCUMENTS)).await;
    let id = s.docs.url("moved.json");
    // The target would be valid for `id`: only not following redirects refuses it.
    s.docs
        .publish_json("target.json", document(&id, REDIRECT_URI), None);
    let location = vec![("location", s.docs.url("target.json"))];
    s.docs.set(
        "moved.json",
        Doc {
            status: 302,
            headers: location,
            body: String::new(),
        },
    );
    assert_error_page(&try_authorize(&s.broker, &id).await);
    assert_eq!(
        (s.docs.fetches("moved.json"), s.docs.fetches("target.json")),
        (1, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_document_is_refused() {
    let s = setup(Some(ALLOW_LOCAL_DOCUMENTS)).await;
    let id = s.docs.url("huge.json");
    let mut body = document(&id, REDIRECT_URI);
    body["padding"] = json!("x".repeat(20 * 1024));
    s.docs.publish_json("huge.json", body, None);
    assert_error_page(&try_authorize(&s.broker, &id).await);
    assert!(
        s.broker
            .state
            .store
            .get_client(&id)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refetched_document_that_changes_its_redirect_uris_is_recorded() {
    let s = setup(Some(ALLOW_LOCAL_DOCUMENTS)).await;
    let client = Client {
        client_id: s.docs.publish("moving.json", Some("no-store")),
    };
    let registered = |s: &Setup, id: String| {
        let store = s.broker.state.store.clone();
        async move {
            let filter = mcp_broker::audit::AuditFilter {
                kind: Some("client.registered".into()),
                client_id: Some(id),
                ..Default::default()
            };
            store.audit_events(&filter, 10).await.unwrap()
        }
    };
    open_consent(&authorize_url(&s.broker.url, &client, &pkce(), "s")).await;
    // The same document again: cache upkeep, not recorded.
    open_consent(&authorize_url(&s.broker.url, &client, &pkce(), "s")).await;
    assert_eq!(registered(&s, client.client_id.clone()).await.len(), 1);

    let moved = "http://127.0.0.1:9/moved";
    s.docs.publish_json(
        "moving.json",
        document(&client.client_id, moved),
        Some("no-store"),
    );
    try_authorize(&s.broker, &client.client_id).await;
    let events = registered(&s, client.client_id.clone()).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let changed = events
        .iter()
        .find_map(|e| e.detail.as_deref().filter(|d| d.contains("changed")))
        .expect("the change is recorded");
    assert_eq!(
        changed,
        format!("client id metadata document changed: redirect_uris now {moved}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_is_fetched_once_within_its_max_age() {
    let s = setup(Some(ALLOW_LOCAL_DOCUMENTS)).await;
    let client = Client {
        client_id: s.docs.publish("cached.json", Some("public, max-age=600")),
    };
    for _ in 0..2 {
        let page = open_consent(&authorize_url(&s.broker.url, &client, &pkce(), "s")).await;
        assert!(page.html.contains("Metadata Doc App"));
    }
    assert_eq!(s.docs.fetches("cached.json"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_store_document_is_fetched_every_time() {
    let s = setup(Some(ALLOW_LOCAL_DOCUMENTS)).await;
    let client = Client {
        client_id: s.docs.publish("fresh.json", Some("no-store")),
    };
    for _ in 0..2 {
        open_consent(&authorize_url(&s.broker.url, &client, &pkce(), "s")).await;
    }
    assert_eq!(s.docs.fetches("fresh.json"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_document_serves_through_an_outage_but_not_after_deletion() {
    let s = setup(Some(ALLOW_LOCAL_DOCUMENTS)).await;
    let client = Client {
        client_id: s.docs.publish("flaky.json", Some("no-store")),
    };
    open_consent(&authorize_url(&s.broker.url, &client, &pkce(), "s")).await;
    let outage = Doc {
        status: 503,
        headers: vec![],
        body: "down".into(),
    };
    s.docs.set("flaky.json", outage);
    open_consent(&authorize_url(&s.broker.url, &client, &pkce(), "s")).await;
    let gone = Doc {
        status: 410,
        headers: vec![],
        body: String::new(),
    };
    s.docs.set("flaky.json", gone);
    assert_error_page(&try_authorize(&s.broker, &client.client_id).await);
    assert_eq!(s.docs.fetches("flaky.json"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_server_metadata_advertises_cimd_support() {
    let s = setup(None).await;
    let url = format!("{}/.well-known/oauth-authorization-server", s.broker.url);
    let metadata: Value = http().get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        metadata["client_id_metadata_document_supported"],
        json!(true)
    );
}
