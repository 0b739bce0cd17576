//! The authorization server's rules, exercised over HTTP against a running
//! broker (one test per rule, named after it).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, SET_COOKIE, WWW_AUTHENTICATE,
    X_FRAME_OPTIONS,
};
use serde_json::{Value, json};

use crate::support::oauth_client::{
    self, Client, Pkce, REDIRECT_URI, http, location, mcp_post, open_consent, pkce, query_param,
    register, sign_in, submit_consent, token_request,
};
use crate::support::{FakeGithub, Mode, TestBroker, TestDb, start_broker_with_env};

/// The client's `state`, with characters that must survive URL encoding.
const STATE: &str = "st/4te+x y&z";
/// A resource that is not ours.
const FOREIGN_RESOURCE: &str = "https://other.example/mcp";

/// A broker on a fresh SQLite database, signing in through its own fake GitHub.
struct Env {
    broker: TestBroker,
    fake: FakeGithub,
    _db: TestDb,
}

async fn start() -> Env {
    start_with(&[]).await
}

/// As [`start`], with extra `MCP_BROKER_*` settings.
async fn start_with(settings: &[(&str, &str)]) -> Env {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let providers = [("github.toml", fake.provider_toml())];
    let broker = start_broker_with_env(&db, &providers, settings).await;
    Env {
        broker,
        fake,
        _db: db,
    }
}

async fn get(url: &str) -> reqwest::Response {
    http().get(url).send().await.unwrap()
}

async fn get_with_cookie(url: &str, cookie: &str) -> reqwest::Response {
    http()
        .get(url)
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await
        .unwrap()
}

async fn get_json(url: &str) -> Value {
    let response = get(url).await;
    assert_eq!(response.status(), 200, "{url}");
    response.json().await.unwrap()
}

async fn post_raw(url: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    http()
        .post(url)
        .header(CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> String {
    response
        .headers()
        .get(&name)
        .unwrap_or_else(|| panic!("no {name} on HTTP {}", response.status()))
        .to_str()
        .unwrap()
        .to_string()
}

/// Asserts an RFC 6749 §5.2 JSON error: status and `error` code. Returns the
/// response headers for further checks.
async fn assert_oauth_error(
    response: reqwest::Response,
    status: u16,
    error: &str,
) -> reqwest::header::HeaderMap {
    let got = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    assert_eq!(body["error"], error, "{text}");
    headers
}

/// Asserts one of our HTML error pages: the status, and no redirect anywhere.
async fn assert_error_page(response: reqwest::Response, status: u16) {
    let got = response.status().as_u16();
    let location = response.headers().get(LOCATION).cloned();
    let content_type = header(&response, CONTENT_TYPE);
    let text = response.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    assert_eq!(location, None, "an error page must not redirect");
    assert!(content_type.starts_with("text/html"), "{content_type}");
}

/// Asserts an authorization error response sent to the client: its redirect
/// URI with `error`, the client's `state` and our `iss`, and no code.
fn assert_error_redirect(url: &str, broker: &str, error: &str) {
    assert!(url.starts_with(REDIRECT_URI), "{url}");
    assert_eq!(query_param(url, "error").as_deref(), Some(error), "{url}");
    assert_eq!(query_param(url, "state").as_deref(), Some(STATE), "{url}");
    assert_eq!(query_param(url, "iss").as_deref(), Some(broker), "{url}");
    assert_eq!(query_param(url, "code"), None, "{url}");
}

/// The consent page of a fresh authorization request by `client`.
async fn consent_for(broker: &str, client: &Client) -> oauth_client::ConsentPage {
    open_consent(&oauth_client::authorize_url(broker, client, &pkce(), STATE)).await
}

/// Registers a public client with these redirect URIs.
async fn register_with(broker: &str, redirect_uris: &[&str]) -> Client {
    let body = oauth_client::register_metadata(
        broker,
        json!({
            "client_name": "http-rules",
            "redirect_uris": redirect_uris,
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    Client {
        client_id: body["client_id"].as_str().unwrap().to_string(),
    }
}

/// The usual authorization request (with [`STATE`]), changed: `(name,
/// Some(value))` sets a parameter, `(name, None)` removes it.
fn authorize_url_with(
    broker: &str,
    client: &Client,
    pkce: &Pkce,
    changes: &[(&str, Option<&str>)],
) -> String {
    let mut url =
        url::Url::parse(&oauth_client::authorize_url(broker, client, pkce, STATE)).unwrap();
    let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    for (name, value) in changes {
        pairs.retain(|(k, _)| k != name);
        if let Some(value) = value {
            pairs.push((name.to_string(), value.to_string()));
        }
    }
    url.query_pairs_mut().clear().extend_pairs(&pairs);
    url.to_string()
}

/// Walks the whole approval; returns our authorization code.
async fn code_for(broker: &str, client: &Client, pkce: &Pkce) -> String {
    let back = oauth_client::authorize(broker, client, pkce, STATE).await;
    query_param(&back, "code").expect("a code in the redirect")
}

async fn redeem_with(
    broker: &str,
    client: &Client,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> reqwest::Response {
    let resource = format!("{broker}/mcp");
    token_request(
        broker,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client.client_id),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
            ("resource", &resource),
        ],
    )
    .await
}

async fn refresh(broker: &str, client: &Client, token: &str, resource: &str) -> reqwest::Response {
    token_request(
        broker,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client.client_id),
            ("refresh_token", token),
            ("resource", resource),
        ],
    )
    .await
}

/// A successful token response's JSON.
async fn tokens(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

fn initialize() -> Value {
    oauth_client::initialize_request("2025-06-18")
}

/// `POST /mcp` with an `initialize`: the status and the `WWW-Authenticate`.
async fn probe_mcp(broker: &TestBroker, token: Option<&str>) -> (u16, String) {
    let (status, headers, _) = mcp_post(&broker.mcp_url(), token, None, initialize()).await;
    let challenge = headers
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, challenge)
}

/// Every stored text value of a table (empty when the table has no rows).
async fn stored(broker: &TestBroker, table: &str) -> Vec<String> {
    broker.state.store.dump_table_text(table).await.unwrap()
}

/// Part `i` of a compact JWS, decoded as JSON (0: header, 1: payload).
fn jwt_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).expect("a compact JWS");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_without_s256_pkce_redirects_invalid_request() {
    let env = start().await;
    let broker = &env.broker.url;
    let client = register(broker).await;
    let pkce = pkce();
    // `plain` with a challenge that is well-formed, so only the method is wrong.
    let plain = [("code_challenge_method", Some("plain"))];
    for changes in [&[("code_challenge", None)][..], &plain[..]] {
        let response = get(&authorize_url_with(broker, &client, &pkce, changes)).await;
        assert_eq!(response.status(), 302, "{changes:?}");
        assert_error_redirect(&location(&response), broker, "invalid_request");
    }
    assert!(
        stored(&env.broker, "pending_authorizations")
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_with_unregistered_redirect_uri_shows_a_page_not_a_redirect() {
    let env = start().await;
    let broker = &env.broker.url;
    let client = register(broker).await;
    let pkce = pkce();
    for uri in [
        "https://evil.example/callback",
        "http://127.0.0.1:53682/callback/",
    ] {
        let url = authorize_url_with(broker, &client, &pkce, &[("redirect_uri", Some(uri))]);
        assert_error_page(get(&url).await, 400).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_redirect_uri_matches_any_port_but_not_another_path() {
    let env = start().await;
    let broker = &env.broker.url;
    let client = register_with(broker, &["http://127.0.0.1/callback"]).await;
    let pkce = pkce();
    let url =
        |uri: &str| authorize_url_with(broker, &client, &pkce, &[("redirect_uri", Some(uri))]);
    let response = get(&url("http://127.0.0.1:49152/callback")).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_error_page(get(&url("http://127.0.0.1:49152/other")).await, 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_client_is_a_page_at_authorize_and_401_invalid_client_at_token() {
    let env = start().await;
    let broker = &env.broker.url;
    let unknown = Client {
        client_id: "no-such-client".into(),
    };
    let pkce = pkce();
    let url = oauth_client::authorize_url(broker, &unknown, &pkce, STATE);
    assert_error_page(get(&url).await, 400).await;
    let response = oauth_client::redeem(broker, &unknown, "mcpb_ac_whatever", &pkce).await;
    assert_oauth_error(response, 401, "invalid_client").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_code_replay_revokes_the_grant() {
    let env = start().await;
    let broker = &env.broker.url;
    let client = register(broker).await;
    let pkce = pkce();
    let code = code_for(broker, &client, &pkce).await;
    let first = tokens(oauth_client::redeem(broker, &client, &code, &pkce).await).await;
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(
        probe_mcp(&env.broker, Some(access)).await.0,
        200,
        "the token works at first"
    );

    let replay = oauth_client::redeem(broker, &client, &code, &pkce).await;
    assert_oauth_error(replay, 400, "invalid_grant").await;
    let (status, challenge) = probe_mcp(&env.broker, Some(access)).await;
    assert_eq!(
        status, 401,
        "the first redemption's access token must die with the grant"
    );
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    let refresh_token = first["refresh_token"].as_str().unwrap();
    let response = refresh(broker, &client, refresh_token, &env.broker.mcp_url()).await;
    assert_oauth_error(response, 400, "invalid_grant").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_code_is_bound_to_client_redirect_uri_and_verifier() {
    let env = start().await;
    let broker = &env.broker.url;
    let second_uri = "http://127.0.0.1:53682/second";
    let client = register_with(broker, &[REDIRECT_URI, second_uri]).await;
    let other_client = register(broker).await;
    let pkce = pkce();
    let code = code_for(broker, &client, &pkce).await;

    let response = redeem_with(broker, &other_client, &code, REDIRECT_URI, &pkce.verifier).await;
    assert_oauth_error(response, 400, "invalid_grant").await;
    let response = redeem_with(broker, &client, &code, second_uri, &pkce.verifier).await;
    assert_oauth_error(response, 400, "invalid_grant").await;
    let wrong_verifier = oauth_client::pkce().verifier;
    let response = redeem_with(broker, &client, &code, REDIRECT_URI, &wrong_verifier).await;
    assert_oauth_error(response, 400, "invalid_grant").await;

    // Control: the code itself was good, for its own client, URI and verifier.
    tokens(redeem_with(broker, &client, &code, REDIRECT_URI, &pkce.verifier).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_responses_are_not_cacheable() {
    let env = start().await;
    let broker = &env.broker.url;
    let client = register(broker).await;
    let pkce = pkce();
    let code = code_for(broker, &client, &pkce).await;
    let success = oauth_client::redeem(broker, &client, &code, &pkce).await;
    assert_eq!(success.status(), 200);
    assert!(header(&success, CACHE_CONTROL).contains("no-store"));
    let error = oauth_client::redeem(broker, &client, "mcpb_ac_unknown", &pkce).await;
    let headers = assert_oauth_error(error, 400, "invalid_grant").await;
    let cache_control = headers.get(CACHE_CONTROL).expect("Cache-Control on errors");
    assert!(cache_control.to_str().unwrap().contains("no-store"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_token_rotates_and_is_bound_to_the_resource() {
    // No grace window: a used token is dead a second later (the window itself
    // and the family revocation on reuse are tests/it/refresh.rs's).
    let env = start_with(&[("MCP_BROKER_REFRESH_GRACE_SECS", "0")]).await;
    let broker = &env.broker.url;
    let mcp = env.broker.mcp_url();
    let session = sign_in(broker).await;
    let client = &session.client;
    let old = session.refresh_token.as_str();

    let rotated = tokens(refresh(broker, client, old, &mcp).await).await;
    let new = rotated["refresh_token"]
        .as_str()
        .expect("a new refresh token");
    assert_ne!(new, old);
    let foreign = refresh(broker, client, new, FOREIGN_RESOURCE).await;
    assert_oauth_error(foreign, 400, "invalid_target").await;
    let latest = tokens(refresh(broker, client, new, &mcp).await).await;
    assert_ne!(latest["refresh_token"].as_str(), Some(new));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_oauth_error(
        refresh(broker, client, old, &mcp).await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_for_another_resource_redirects_invalid_target() {
    let env = start().await;
    let broker = &env.broker.url;
    let client = register(broker).await;
    let pkce = pkce();
    let changes = [("resource", Some(FOREIGN_RESOURCE))];
    let response = get(&authorize_url_with(broker, &client, &pkce, &changes)).await;
    assert_eq!(response.status(), 302);
    assert_error_redirect(&location(&response), broker, "invalid_target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_requires_the_matching_csrf_cookie() {
    let env = start().await;
    let broker = &env.broker.url;
    let client = register(broker).await;
    let page = consent_for(broker, &client).await;
    let (cookie_name, _) = page.cookie.split_once('=').unwrap();
    let other_cookie = format!("{cookie_name}={}", oauth_client::pkce().challenge);

    assert_error_page(submit_consent(broker, &page, "approve", None).await, 403).await;
    let mismatched = submit_consent(broker, &page, "approve", Some(&other_cookie)).await;
    assert_error_page(mismatched, 403).await;
    // The failed attempts did not consume the pending request.
    let response = submit_consent(broker, &page, "approve", Some(&page.cookie)).await;
    assert_eq!(response.status(), 303);
    assert!(
        location(&response).starts_with(&env.fake.url),
        "{}",
        location(&response)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_page_cannot_be_framed_and_its_cookie_is_httponly_samesite_lax() {
    let env = start().await;
    let broker = &env.broker.url;
    let client = register(broker).await;
    let page = consent_for(broker, &client).await;
    let value = |name| {
        page.headers
            .get(name)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(value(X_FRAME_OPTIONS), "DENY");
    let csp = value(CONTENT_SECURITY_POLICY);
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let cookie = value(SET_COOKIE);
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(attributes.contains(&"HttpOnly"), "{cookie}");
    assert!(attributes.contains(&"SameSite=Lax"), "{cookie}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_deny_redirects_access_denied_with_state_and_iss() {
    let env = start().await;
    let broker = &env.broker.url;
    let client = register(broker).await;
    let page = consent_for(broker, &client).await;
    let response = submit_consent(broker, &page, "deny", Some(&page.cookie)).await;
    assert_eq!(response.status(), 303);
    assert_error_redirect(&location(&response), broker, "access_denied");
    // The request is gone: approving it afterwards fails.
    let late = submit_consent(broker, &page, "approve", Some(&page.cookie)).await;
    assert_error_page(late, 400).await;
    assert_eq!(env.fake.counters().authorize, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_is_identical_in_responses_metadata_and_tokens() {
    let env = start().await;
    let broker = &env.broker.url;
    let client = register(broker).await;
    let pkce = pkce();
    let back = oauth_client::authorize(broker, &client, &pkce, STATE).await;
    assert_eq!(
        query_param(&back, "iss").as_deref(),
        Some(broker.as_str()),
        "{back}"
    );
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some(STATE),
        "{back}"
    );

    let metadata = get_json(&format!("{broker}/.well-known/oauth-authorization-server")).await;
    assert_eq!(metadata["issuer"], json!(broker));
    let prm = get_json(&format!(
        "{broker}/.well-known/oauth-protected-resource/mcp"
    ))
    .await;
    assert_eq!(prm["authorization_servers"][0], json!(broker));
    let code = query_param(&back, "code").unwrap();
    let issued = tokens(oauth_client::redeem(broker, &client, &code, &pkce).await).await;
    let claims = jwt_part(issued["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["iss"], json!(broker));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_state_is_single_use() {
    let env = start().await;
    let broker = &env.broker.url;
    let client = register(broker).await;
    let page = consent_for(broker, &client).await;
    let approved = submit_consent(broker, &page, "approve", Some(&page.cookie)).await;
    assert_eq!(approved.status(), 303);
    let at_github = get(&location(&approved)).await;
    assert_eq!(at_github.status(), 302);
    let callback = location(&at_github);
    assert!(
        callback.starts_with(&format!("{broker}/callback/github?")),
        "{callback}"
    );

    let cookie = oauth_client::flow_cookie(&approved);
    let first = get_with_cookie(&callback, &cookie).await;
    assert_eq!(first.status(), 302);
    assert!(query_param(&location(&first), "code").is_some());
    assert_error_page(get_with_cookie(&callback, &cookie).await, 400).await;
    assert_eq!(env.fake.counters().code_exchanges, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_token_error_redirects_access_denied_without_a_grant() {
    let env = start().await;
    let broker = &env.broker.url;
    let client = register(broker).await;
    let page = consent_for(broker, &client).await;
    let approved = submit_consent(broker, &page, "approve", Some(&page.cookie)).await;
    let upstream_state = query_param(&location(&approved), "state").expect("an upstream state");

    let mut callback = url::Url::parse(&format!("{broker}/callback/github")).unwrap();
    callback
        .query_pairs_mut()
        .append_pair("code", "bogus")
        .append_pair("state", &upstream_state);
    let response = get_with_cookie(callback.as_str(), &oauth_client::flow_cookie(&approved)).await;
    assert_eq!(response.status(), 302);
    assert_error_redirect(&location(&response), broker, "access_denied");
    let counters = env.fake.counters();
    assert_eq!((counters.token_errors, counters.code_exchanges), (1, 0));
    for table in ["grants", "upstream_links", "authorization_codes"] {
        assert!(
            stored(&env.broker, table).await.is_empty(),
            "{table} must stay empty"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_4xx_oauth_errors_never_5xx() {
    let env = start().await;
    let broker = &env.broker.url;
    let session = sign_in(broker).await;
    let token_url = format!("{broker}/token");
    let form = "application/x-www-form-urlencoded";
    // A valid refresh request; each hostile variant differs only as named.
    let valid = format!(
        "grant_type=refresh_token&client_id={}&refresh_token={}",
        session.client.client_id, session.refresh_token
    );
    let with = |tail: &[u8]| [valid.as_bytes(), tail].concat();

    let non_utf8 = post_raw(&token_url, form, with(b"&note=\xff\xfe")).await;
    assert_oauth_error(non_utf8, 400, "invalid_request").await;
    let repeated = post_raw(&token_url, form, with(b"&grant_type=refresh_token")).await;
    assert_oauth_error(repeated, 400, "invalid_request").await;
    let padding = format!("&pad={}", "a".repeat(70_000));
    let huge = post_raw(&token_url, form, with(padding.as_bytes())).await;
    assert_eq!(huge.status(), 413);
    // None of those was acted on: the refresh token is still good.
    tokens(post_raw(&token_url, form, with(b"")).await).await;

    let register_url = format!("{broker}/register");
    let response = post_raw(
        &register_url,
        "application/json",
        b"redirect_uris=x".to_vec(),
    )
    .await;
    assert_oauth_error(response, 400, "invalid_client_metadata").await;
    let javascript =
        json!({"redirect_uris": ["javascript:alert(1)"], "token_endpoint_auth_method": "none"});
    let response = post_raw(
        &register_url,
        "application/json",
        javascript.to_string().into_bytes(),
    )
    .await;
    assert_oauth_error(response, 400, "invalid_redirect_uri").await;
    assert!(
        stored(&env.broker, "clients")
            .await
            .iter()
            .all(|v| !v.contains("javascript:"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_rejects_missing_garbage_foreign_and_unsigned_tokens() {
    let env = start().await;
    let broker = &env.broker;
    let session = sign_in(&broker.url).await;
    assert_eq!(
        probe_mcp(broker, Some(&session.access_token)).await.0,
        200,
        "control"
    );
    let resource_metadata = format!(
        "resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
        broker.url
    );

    let (status, challenge) = probe_mcp(broker, None).await;
    assert_eq!(status, 401);
    assert!(challenge.contains(&resource_metadata), "{challenge}");

    let real_header = jwt_part(&session.access_token, 0);
    let payload = b64_json(&jwt_part(&session.access_token, 1));
    let foreign_header = b64_json(&json!({"alg": "ES256", "typ": "at+jwt", "kid": "x"}));
    let junk_signature = URL_SAFE_NO_PAD.encode([7u8; 64]);
    let none_header = b64_json(&json!({"alg": "none", "typ": "at+jwt", "kid": real_header["kid"]}));
    let forged = [
        "garbage".to_string(),
        format!("{foreign_header}.{payload}.{junk_signature}"),
        format!("{none_header}.{payload}."),
    ];
    for token in &forged {
        let (status, challenge) = probe_mcp(broker, Some(token)).await;
        assert_eq!(status, 401, "{token}");
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        assert!(challenge.contains(&resource_metadata), "{challenge}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_response_at_another_providers_callback_is_refused_as_mix_up() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    // A second provider (say, GitHub Enterprise) whose callback is ours too.
    let ghes = fake
        .provider_toml()
        .replace("id = \"github\"", "id = \"ghes\"");
    let broker = crate::support::start_broker_with(
        &db,
        &[("github.toml", fake.provider_toml()), ("ghes.toml", ghes)],
    )
    .await;
    let client = register(&broker.url).await;
    let page = consent_for(&broker.url, &client).await;
    let approved = submit_consent(&broker.url, &page, "approve", Some(&page.cookie)).await;
    // The browser went to `github`; its answer is replayed at `ghes`.
    let at_github = http().get(location(&approved)).send().await.unwrap();
    let callback = location(&at_github);
    assert!(callback.contains("/callback/github?"), "{callback}");
    let mixed = callback.replace("/callback/github?", "/callback/ghes?");
    let cookie = oauth_client::flow_cookie(&approved);
    let response = get_with_cookie(&mixed, &cookie).await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get(LOCATION).is_none());
    assert_eq!(fake.counters().code_exchanges, 0, "no code was redeemed");
    // The state is spent: the genuine callback cannot be used afterwards.
    let genuine = get_with_cookie(&callback, &cookie).await;
    assert_eq!(genuine.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_callback_in_another_browser_is_refused() {
    // The attack: approve our own request, then hand the upstream link (it
    // carries our upstream state) to a victim who finishes it at GitHub.
    let env = start().await;
    let broker = &env.broker.url;
    let client = register(broker).await;
    let page = consent_for(broker, &client).await;
    let approved = submit_consent(broker, &page, "approve", Some(&page.cookie)).await;
    let at_github = get(&location(&approved)).await;
    let callback = location(&at_github);
    // The victim's browser has no flow cookie, or another one.
    let without = get(&callback).await;
    assert_eq!(without.status(), 403);
    assert!(
        without.headers().get(LOCATION).is_none(),
        "no code is sent anywhere"
    );
    assert_eq!(
        env.fake.counters().code_exchanges,
        0,
        "the upstream code was not redeemed"
    );
    for table in ["grants", "authorization_codes"] {
        assert!(
            stored(&env.broker, table).await.is_empty(),
            "{table} must stay empty"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_bytes_are_client_errors_on_both_databases() {
    // PostgreSQL rejects NUL in text: it must be refused before the store.
    for db in TestDb::all().await {
        let fake = FakeGithub::start(Mode::OAuthApp).await;
        let broker = crate::support::start_broker(&db, &fake).await;
        let url = &broker.url;
        let authorize = get(&format!("{url}/authorize?client_id=%00")).await;
        assert_eq!(authorize.status(), 400, "{:?}", db.kind);
        let token = token_request(
            url,
            &[("grant_type", "refresh_token"), ("client_id", "a\0b")],
        )
        .await;
        assert_eq!(token.status(), 400, "{:?}", db.kind);
        let registered = oauth_client::register_metadata(
            url,
            json!({"client_name": "a\u{0}b", "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"}),
        )
        .await;
        assert_eq!(registered["client_name"], "ab", "{:?}", db.kind);
        let client = Client {
            client_id: registered["client_id"].as_str().unwrap().into(),
        };
        let with_nul_state = oauth_client::authorize_url(url, &client, &pkce(), "s\0");
        assert!(
            get(&with_nul_state).await.status().is_client_error(),
            "{:?}",
            db.kind
        );
    }
}
