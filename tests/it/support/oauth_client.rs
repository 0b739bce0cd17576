//! A minimal OAuth client and browser for tests: registers, walks
//! /authorize → consent → upstream → callback with redirects off (reading each
//! `Location` as the SDKs' conformance helpers do), and redeems the code.

use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;

pub const REDIRECT_URI: &str = "http://127.0.0.1:53682/callback";

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[derive(Clone, Debug)]
pub struct Client {
    pub client_id: String,
}

pub async fn register(broker: &str) -> Client {
    let body = register_metadata(
        broker,
        json!({
            "client_name": "rust-test-client",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    Client {
        client_id: body["client_id"].as_str().unwrap().to_string(),
    }
}

/// Registers `metadata` (RFC 7591), expecting 201; returns the answer.
pub async fn register_metadata(broker: &str, metadata: Value) -> Value {
    let response = http()
        .post(format!("{broker}/register"))
        .json(&metadata)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "registration");
    response.json().await.unwrap()
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

pub fn authorize_url(broker: &str, client: &Client, pkce: &Pkce, state: &str) -> String {
    let mut url = url::Url::parse(&format!("{broker}/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("state", state)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("resource", &format!("{broker}/mcp"));
    url.to_string()
}

/// The consent page as the browser got it.
pub struct ConsentPage {
    pub html: String,
    pub cookie: String,
    pub request_id: String,
    pub csrf_token: String,
    pub headers: reqwest::header::HeaderMap,
}

pub async fn open_consent(url: &str) -> ConsentPage {
    let response = http().get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "consent page");
    let headers = response.headers().clone();
    let cookie = headers
        .get(reqwest::header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = response.text().await.unwrap();
    ConsentPage {
        request_id: hidden_value(&html, "request_id"),
        csrf_token: hidden_value(&html, "csrf_token"),
        html,
        cookie,
        headers,
    }
}

fn hidden_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in consent page"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// POSTs the consent form; returns the response (a 303 on success).
pub async fn submit_consent(
    broker: &str,
    page: &ConsentPage,
    decision: &str,
    cookie: Option<&str>,
) -> reqwest::Response {
    let mut request = http().post(format!("{broker}/consent")).form(&[
        ("request_id", page.request_id.as_str()),
        ("csrf_token", page.csrf_token.as_str()),
        ("decision", decision),
    ]);
    if let Some(cookie) = cookie {
        request = request.header(reqwest::header::COOKIE, cookie);
    }
    request.send().await.unwrap()
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .unwrap_or_else(|| panic!("no Location on HTTP {}", response.status()))
        .to_str()
        .unwrap()
        .to_string()
}

/// The cookie (`name=value`) the broker set to bind the upstream leg to this
/// browser, from the response that sent the browser upstream.
pub fn flow_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("mcp_broker_flow_"))
        .expect("the broker binds the upstream leg with a cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// Follows `Location`s (GET, redirects off) until one leaves for the client's
/// redirect URI; returns that final URL. The browser's `cookie` goes with
/// each hop (the fake GitHub ignores it; our callback needs it).
pub async fn follow_to_client(next: String, cookie: &str) -> String {
    follow_until(next, cookie, REDIRECT_URI).await
}

/// Follows `Location`s until one starts with `stop`; returns it unvisited.
pub async fn follow_until(mut next: String, cookie: &str, stop: &str) -> String {
    for _ in 0..5 {
        if next.starts_with(stop) {
            return next;
        }
        let response = http()
            .get(&next)
            .header(reqwest::header::COOKIE, cookie)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_redirection(),
            "HTTP {} at {next}: {}",
            response.status(),
            response.text().await.unwrap()
        );
        next = location(&response);
    }
    panic!("too many redirects");
}

/// Follows `Location`s like a browser with a cookie jar: every `Set-Cookie`
/// along the way is kept and sent on later hops (a sign-in that links
/// several providers sets a new flow cookie at each leg). Stops at the first
/// URL starting with `stop`.
pub async fn follow_with_jar(
    mut next: String,
    jar: &mut Vec<(String, String)>,
    stop: &str,
) -> String {
    for _ in 0..10 {
        if next.starts_with(stop) {
            return next;
        }
        let cookie = jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let response = http()
            .get(&next)
            .header(reqwest::header::COOKIE, cookie)
            .send()
            .await
            .unwrap();
        keep_cookies(&response, jar);
        assert!(
            response.status().is_redirection(),
            "HTTP {} at {next}",
            response.status()
        );
        next = location(&response);
    }
    panic!("too many redirects");
}

/// Adds (or replaces, or on Max-Age=0 removes) the response's cookies.
pub fn keep_cookies(response: &reqwest::Response, jar: &mut Vec<(String, String)>) {
    for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
        let text = value.to_str().unwrap();
        let pair = text.split(';').next().unwrap();
        let (name, value) = pair.split_once('=').unwrap();
        jar.retain(|(k, _)| k != name);
        if !text.contains("Max-Age=0") {
            jar.push((name.to_string(), value.to_string()));
        }
    }
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The whole dance; returns the final redirect to the client.
pub async fn authorize(broker: &str, client: &Client, pkce: &Pkce, state: &str) -> String {
    let page = open_consent(&authorize_url(broker, client, pkce, state)).await;
    let response = submit_consent(broker, &page, "approve", Some(&page.cookie)).await;
    assert_eq!(response.status(), 303, "consent POST");
    follow_to_client(location(&response), &flow_cookie(&response)).await
}

pub async fn token_request(broker: &str, form: &[(&str, &str)]) -> reqwest::Response {
    http()
        .post(format!("{broker}/token"))
        .form(form)
        .send()
        .await
        .unwrap()
}

pub async fn redeem(broker: &str, client: &Client, code: &str, pkce: &Pkce) -> reqwest::Response {
    let resource = format!("{broker}/mcp");
    token_request(
        broker,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client.client_id),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &pkce.verifier),
            ("resource", &resource),
        ],
    )
    .await
}

pub struct Session {
    pub client: Client,
    pub access_token: String,
    pub refresh_token: String,
    pub code: String,
}

/// Register, authorize, redeem: a signed-in MCP client. Identical public
/// registrations are one client, so every `sign_in` shares it.
pub async fn sign_in(broker: &str) -> Session {
    sign_in_with(broker, register(broker).await).await
}

/// A public client of its own (its name sets it apart from the others).
pub async fn register_named(broker: &str, name: &str) -> Client {
    let body = register_metadata(
        broker,
        json!({
            "client_name": name,
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    Client {
        client_id: body["client_id"].as_str().unwrap().to_string(),
    }
}

/// Authorize and redeem with an already registered client.
pub async fn sign_in_with(broker: &str, client: Client) -> Session {
    let pkce = pkce();
    let back = authorize(broker, &client, &pkce, "st4te").await;
    let code = query_param(&back, "code").expect("code in the redirect");
    let response = redeem(broker, &client, &code, &pkce).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    Session {
        client,
        access_token: body["access_token"].as_str().unwrap().to_string(),
        refresh_token: body["refresh_token"].as_str().unwrap().to_string(),
        code,
    }
}

/// One JSON-RPC request to the MCP endpoint; reads a JSON or SSE answer.
pub async fn mcp_post(
    mcp_url: &str,
    token: Option<&str>,
    session_id: Option<&str>,
    body: Value,
) -> (u16, reqwest::header::HeaderMap, Option<Value>) {
    let session: Vec<(&str, &str)> = session_id
        .map(|id| ("Mcp-Session-Id", id))
        .into_iter()
        .collect();
    mcp_post_with(mcp_url, token, &session, body).await
}

/// As `mcp_post`, with any headers (a name given twice is sent twice).
pub async fn mcp_post_with(
    mcp_url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Value,
) -> (u16, reqwest::header::HeaderMap, Option<Value>) {
    let mut request = http()
        .post(mcp_url)
        .header(
            reqwest::header::ACCEPT,
            "application/json, text/event-stream",
        )
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).ok().or_else(|| {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|v| v.get("id").is_some())
    });
    (status, headers, value)
}

/// initialize + initialized + tools/call; returns the tool result.
pub async fn call_tool(mcp_url: &str, token: &str, name: &str, arguments: Value) -> Value {
    let (status, headers, _) =
        mcp_post(mcp_url, Some(token), None, initialize_request("2025-06-18")).await;
    assert_eq!(status, 200, "initialize");
    let session = headers
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_string());
    mcp_post(
        mcp_url,
        Some(token),
        session.as_deref(),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    let (status, _, body) = mcp_post(
        mcp_url,
        Some(token),
        session.as_deref(),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name, "arguments": arguments}}),
    )
    .await;
    assert_eq!(status, 200, "tools/call");
    body.expect("a JSON-RPC response")["result"].clone()
}

/// The HTTP status of an MCP `initialize` with this bearer token: 200 while
/// the token and its grant are good, 401 once they are not.
pub async fn mcp_status(mcp_url: &str, token: &str) -> u16 {
    mcp_post(mcp_url, Some(token), None, initialize_request("2025-06-18"))
        .await
        .0
}

/// A JSON-RPC `initialize` for the given protocol version.
pub fn initialize_request(protocol_version: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": protocol_version, "capabilities": {},
        "clientInfo": {"name": "rust-test", "version": "0"}}})
}

/// The grant our access token was issued under (its `grant_id` claim).
pub fn grant_of(access_token: &str) -> String {
    claims_of(access_token)["grant_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The claims of one of our access tokens (read, not verified).
pub fn claims_of(access_token: &str) -> Value {
    use base64::Engine;
    let payload = access_token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// `initialize` + `initialized`: the session id to send with tool calls.
pub async fn open_mcp_session(mcp_url: &str, token: &str) -> String {
    let (status, headers, _) =
        mcp_post(mcp_url, Some(token), None, initialize_request("2025-06-18")).await;
    assert_eq!(status, 200, "initialize");
    let session = headers
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_string())
        .expect("a session id");
    mcp_post(
        mcp_url,
        Some(token),
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    session
}

/// One `tools/call` in an open session: the HTTP status, the
/// `WWW-Authenticate` header and the tool result.
pub async fn session_tool_call(
    mcp_url: &str,
    token: &str,
    session: &str,
    name: &str,
) -> (u16, Option<String>, Value) {
    let (status, headers, body) = mcp_post(
        mcp_url,
        Some(token),
        Some(session),
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": {}}}),
    )
    .await;
    let challenge = headers
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let result = body.map(|b| b["result"].clone()).unwrap_or(Value::Null);
    (status, challenge, result)
}

/// Authorize with exactly `scope`, approve the consent page, redeem: an
/// access token carrying that scope.
pub async fn token_with_scope(
    broker: &crate::support::TestBroker,
    client: &Client,
    scope: &str,
) -> String {
    let pkce = pkce();
    let url = format!(
        "{}&scope={}",
        authorize_url(&broker.url, client, &pkce, "s"),
        scope.replace(' ', "%20")
    );
    let page = open_consent(&url).await;
    let approved = submit_consent(&broker.url, &page, "approve", Some(&page.cookie)).await;
    let back = follow_to_client(location(&approved), &flow_cookie(&approved)).await;
    let response = redeem(
        &broker.url,
        client,
        &query_param(&back, "code").unwrap(),
        &pkce,
    )
    .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], scope);
    body["access_token"].as_str().unwrap().to_string()
}

/// RFC 7009 at the broker (`url`): a public client revokes its refresh
/// token (and so its grant). Asserts the 200.
pub async fn revoke_refresh_token(url: &str, client_id: &str, refresh_token: &str) {
    let response = http()
        .post(format!("{url}/revoke"))
        .form(&[("token", refresh_token), ("client_id", client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
