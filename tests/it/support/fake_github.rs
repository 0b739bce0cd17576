//! A fake GitHub: a real HTTP server on 127.0.0.1 speaking GitHub's OAuth and
//! REST wire format, quirks included:
//! - the token endpoint answers errors with HTTP 200 and a JSON `error`;
//! - it answers form-encoded unless the client asks for JSON;
//! - scopes come back comma-separated;
//! - OAuth App tokens have no `expires_in` and no refresh token; GitHub App
//!   user tokens expire after 8 hours and rotate single-use refresh tokens;
//! - the REST API refuses requests without a `User-Agent`.
//!
//! Counters let tests assert how often each endpoint was hit. Repository
//! endpoints (contents, branches, issues) live in `repos`, pull requests in
//! `pulls` (their diffs rendered by `diff`), search in `search`, the
//! endpoints that change a repository in `writes`; `inspect` reads back
//! what the repositories hold, for tests.

mod diff;
mod inspect;
mod pulls;
pub mod repos;
mod search;
mod writes;

pub use inspect::Repository;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    OAuthApp,
    GitHubApp,
}

pub const CLIENT_ID: &str = "Iv1.fakeclientid";
pub const CLIENT_SECRET: &str = "fake-client-secret-value";
pub const LOGIN: &str = "octo-fixture";
pub const USER_ID: i64 = 4242;

/// How the token endpoint misbehaves, for outage tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenFailure {
    /// HTTP 500 with an HTML body, as a load balancer in trouble answers.
    ServerError,
    /// Never answers (the broker's timeout must fire).
    Hang,
    /// HTTP 200 with a body that is not a token answer.
    Garbage,
}

#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub authorize: usize,
    pub code_exchanges: usize,
    pub refreshes: usize,
    pub token_errors: usize,
    pub api_calls: usize,
    pub api_unauthorized: usize,
    /// Refresh requests that reached the endpoint (answered or not).
    pub refresh_attempts: usize,
    pub revocations: usize,
    /// Writes the REST API carried out (issues, comments, refs, files, pulls).
    pub writes: usize,
}

struct PendingCode {
    redirect_uri: String,
    code_challenge: Option<String>,
    used: bool,
}

struct FakeState {
    mode: Mode,
    codes: HashMap<String, PendingCode>,
    access_tokens: HashMap<String, Option<i64>>,
    refresh_tokens: HashMap<String, bool>,
    /// Every secret value this fake handed out, for leak scans.
    issued: Vec<String>,
    /// Secrets the broker sent it (PKCE verifiers), for leak scans.
    received: Vec<String>,
    /// The `scope` of the last authorization request.
    last_scope: Option<String>,
    /// Who `GET /user` says is signed in (login, id).
    user: (String, i64),
    /// Every token the REST API was called with, in order.
    api_tokens: Vec<String>,
    counters: Counters,
    seq: u64,
    /// Answer refreshes (failed ones too) this much later, to make
    /// concurrent callers overlap.
    refresh_delay: std::time::Duration,
    /// `true` while refreshes are held (`hold_refreshes`).
    refresh_gate: tokio::sync::watch::Sender<bool>,
    token_failure: Option<TokenFailure>,
    /// The access tokens `DELETE /applications/{id}/grant` was called with.
    revoked: Vec<String>,
    /// Answer revocations with HTTP 503.
    revocation_down: bool,
    /// Answer repository endpoints 403 with an exhausted rate limit.
    rate_limited: bool,
    /// The path of every request, as it arrived (still percent-encoded).
    paths: Vec<String>,
    /// What the write endpoints changed.
    written: writes::Written,
}

#[derive(Clone)]
pub struct FakeGithub {
    pub url: String,
    state: Arc<Mutex<FakeState>>,
}

impl FakeGithub {
    pub async fn start(mode: Mode) -> FakeGithub {
        let state = Arc::new(Mutex::new(FakeState {
            mode,
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            issued: Vec::new(),
            received: Vec::new(),
            last_scope: None,
            user: (LOGIN.to_string(), USER_ID),
            api_tokens: Vec::new(),
            counters: Counters::default(),
            seq: 0,
            refresh_delay: std::time::Duration::ZERO,
            refresh_gate: tokio::sync::watch::Sender::new(false),
            token_failure: None,
            revoked: Vec::new(),
            revocation_down: false,
            rate_limited: false,
            paths: Vec::new(),
            written: writes::Written::default(),
        }));
        let app = Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(access_token))
            .route("/user", get(user))
            .route("/user/repos", get(repos))
            .route(
                "/applications/{client_id}/grant",
                axum::routing::delete(revoke_grant),
            )
            .route(
                "/applications/{client_id}/token",
                axum::routing::delete(revoke_token),
            )
            .merge(repos::routes())
            .merge(search::routes())
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                record_path,
            ))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeGithub { url, state }
    }

    pub fn counters(&self) -> Counters {
        self.state.lock().unwrap().counters.clone()
    }

    /// The `scope` parameter of the last authorization request.
    pub fn last_authorize_scope(&self) -> Option<String> {
        self.state.lock().unwrap().last_scope.clone()
    }

    /// Every token the REST API was called with.
    pub fn api_tokens_seen(&self) -> Vec<String> {
        self.state.lock().unwrap().api_tokens.clone()
    }

    /// The path of every request so far, as sent (percent-encoded).
    pub fn paths_seen(&self) -> Vec<String> {
        self.state.lock().unwrap().paths.clone()
    }

    /// Makes repository endpoints answer as GitHub does once the rate limit
    /// is spent: 403, `x-ratelimit-remaining: 0` (or recover, with `false`).
    pub fn set_rate_limited(&self, limited: bool) {
        self.state.lock().unwrap().rate_limited = limited;
    }

    /// Every token and code this fake issued.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.state.lock().unwrap().issued.clone()
    }

    /// Every secret the broker sent this fake (PKCE verifiers).
    pub fn received_secrets(&self) -> Vec<String> {
        self.state.lock().unwrap().received.clone()
    }

    /// From now on `GET /user` answers as this account (a second person
    /// signing in).
    pub fn set_user(&self, login: &str, id: i64) {
        self.state.lock().unwrap().user = (login.to_string(), id);
    }

    /// Invalidates every access and refresh token, as a user revoking the
    /// app would.
    pub fn revoke_all_tokens(&self) {
        let mut s = self.state.lock().unwrap();
        s.access_tokens.clear();
        for used in s.refresh_tokens.values_mut() {
            *used = true;
        }
    }

    /// Delays every refresh answer, a failure (`set_token_failure`) too.
    pub fn set_refresh_delay(&self, delay: std::time::Duration) {
        self.state.lock().unwrap().refresh_delay = delay;
    }

    /// Holds every refresh request at the fake, unanswered, until
    /// `release_refreshes` (each is counted in `refresh_attempts` as it
    /// arrives): a test can act while a refresh is known to be at the
    /// provider.
    pub fn hold_refreshes(&self) {
        self.state.lock().unwrap().refresh_gate.send_replace(true);
    }

    /// Lets held refreshes (and later ones) go on to their answer.
    pub fn release_refreshes(&self) {
        self.state.lock().unwrap().refresh_gate.send_replace(false);
    }

    /// Makes the token endpoint fail (or recover, with `None`).
    pub fn set_token_failure(&self, failure: Option<TokenFailure>) {
        self.state.lock().unwrap().token_failure = failure;
    }

    /// Makes `DELETE /applications/{id}/grant` answer 503 (or recover).
    pub fn set_revocation_down(&self, down: bool) {
        self.state.lock().unwrap().revocation_down = down;
    }

    /// The access tokens revocation requests carried, in order.
    pub fn revoked_tokens(&self) -> Vec<String> {
        self.state.lock().unwrap().revoked.clone()
    }

    /// Whether the REST API would accept this access token now.
    pub fn token_is_live(&self, token: &str) -> bool {
        match self.state.lock().unwrap().access_tokens.get(token) {
            Some(None) => true,
            Some(Some(exp)) => *exp > now(),
            None => false,
        }
    }

    /// Lets every access token lapse, as 8 hours passing would; refresh
    /// tokens stay usable.
    pub fn expire_access_tokens(&self) {
        let mut s = self.state.lock().unwrap();
        for exp in s.access_tokens.values_mut() {
            *exp = Some(0);
        }
    }

    /// A provider file pointing every URL at this fake.
    pub fn provider_toml(&self) -> String {
        format!(
            r#"id = "github"
display_name = "GitHub (fake)"
authorize_url = "{u}/login/oauth/authorize"
token_url = "{u}/login/oauth/access_token"
api_base_url = "{u}"
userinfo_url = "{u}/user"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
scopes = []
revocation_style = "github_token"
{refresh}"#,
            u = self.url,
            refresh = match self.state.lock().unwrap().mode {
                Mode::OAuthApp => "",
                Mode::GitHubApp =>
                    "[refresh]\nrotates_refresh_token = true\nexpiry_buffer_secs = 300\n",
            }
        )
    }
}

type Shared = State<Arc<Mutex<FakeState>>>;

async fn record_path(
    State(state): Shared,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path().to_string();
    state.lock().unwrap().paths.push(path);
    next.run(request).await
}

fn next_secret(s: &mut FakeState, prefix: &str) -> String {
    s.seq += 1;
    let value = format!("{prefix}{:012}{}", s.seq, rand_suffix());
    s.issued.push(value.clone());
    value
}

fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{n:09}x")
}

fn now() -> i64 {
    mcp_broker::now_unix()
}

/// Auto-approves as the fixture user and redirects back with a code.
async fn authorize(State(state): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut s = state.lock().unwrap();
    s.counters.authorize += 1;
    s.last_scope = q.get("scope").cloned();
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return (StatusCode::NOT_FOUND, "unknown client").into_response();
    }
    let Some(redirect_uri) = q.get("redirect_uri").cloned() else {
        return (StatusCode::BAD_REQUEST, "redirect_uri missing").into_response();
    };
    if q.contains_key("code_challenge")
        && q.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return (StatusCode::BAD_REQUEST, "unsupported challenge method").into_response();
    }
    let code = next_secret(&mut s, "fakecode_");
    s.codes.insert(
        code.clone(),
        PendingCode {
            redirect_uri: redirect_uri.clone(),
            code_challenge: q.get("code_challenge").cloned(),
            used: false,
        },
    );
    let mut url = url::Url::parse(&redirect_uri).unwrap();
    url.query_pairs_mut().append_pair("code", &code);
    if let Some(st) = q.get("state") {
        url.query_pairs_mut().append_pair("state", st);
    }
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

/// GitHub answers in the format the client accepts: JSON when asked for it,
/// form-encoded otherwise. Errors are HTTP 200 either way.
fn token_answer(headers: &HeaderMap, body: Value) -> Response {
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        return axum::Json(body).into_response();
    }
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in body.as_object().unwrap() {
        let v = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        form.append_pair(k, &v);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )],
        form.finish(),
    )
        .into_response()
}

fn token_error(s: &mut FakeState, headers: &HeaderMap, error: &str, description: &str) -> Response {
    s.counters.token_errors += 1;
    token_answer(
        headers,
        json!({
            "error": error,
            "error_description": description,
            "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors",
        }),
    )
}

fn pkce_s256(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

async fn access_token(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let is_refresh = form.get("grant_type").map(String::as_str) == Some("refresh_token");
    let (failure, delay, mut gate) = {
        let mut s = state.lock().unwrap();
        if is_refresh {
            s.counters.refresh_attempts += 1;
        }
        (s.token_failure, s.refresh_delay, s.refresh_gate.subscribe())
    };
    if is_refresh {
        // The sender lives in the state, so the channel never closes.
        let _ = gate.wait_for(|held| !held).await;
    }
    // Before any answer, failures included: an outage that answers slowly
    // keeps callers waiting as a slow success does.
    if is_refresh && !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match failure {
        Some(TokenFailure::ServerError) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/html")],
                "<html><body>500 Internal Server Error</body></html>",
            )
                .into_response();
        }
        Some(TokenFailure::Hang) => {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
        Some(TokenFailure::Garbage) => {
            return (
                [(header::CONTENT_TYPE, "application/json")],
                "{\"unexpected\": tr",
            )
                .into_response();
        }
        None => {}
    }
    let mut s = state.lock().unwrap();
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        return token_error(
            &mut s,
            &headers,
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    }
    if form.get("grant_type").map(String::as_str) == Some("refresh_token") {
        return refresh(&mut s, &headers, &form);
    }
    let code = form.get("code").cloned().unwrap_or_default();
    let Some(pending) = s.codes.get_mut(&code) else {
        return token_error(
            &mut s,
            &headers,
            "bad_verification_code",
            "The code passed is incorrect or expired.",
        );
    };
    if pending.used {
        return token_error(
            &mut s,
            &headers,
            "bad_verification_code",
            "The code passed is incorrect or expired.",
        );
    }
    pending.used = true;
    if form.get("redirect_uri") != Some(&pending.redirect_uri) {
        return token_error(
            &mut s,
            &headers,
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
        );
    }
    if let Some(challenge) = pending.code_challenge.clone() {
        let verifier = form.get("code_verifier").cloned().unwrap_or_default();
        s.received.push(verifier.clone());
        if pkce_s256(&verifier) != challenge {
            return token_error(
                &mut s,
                &headers,
                "bad_verification_code",
                "The code passed is incorrect or expired.",
            );
        }
    }
    s.counters.code_exchanges += 1;
    let body = issue_tokens(&mut s);
    token_answer(&headers, body)
}

fn issue_tokens(s: &mut FakeState) -> Value {
    match s.mode {
        Mode::OAuthApp => {
            let token = next_secret(s, "gho_");
            s.access_tokens.insert(token.clone(), None);
            json!({ "access_token": token, "token_type": "bearer", "scope": "read:user,repo" })
        }
        Mode::GitHubApp => {
            let token = next_secret(s, "ghu_");
            let refresh = next_secret(s, "ghr_");
            s.access_tokens.insert(token.clone(), Some(now() + 28_800));
            s.refresh_tokens.insert(refresh.clone(), false);
            json!({
                "access_token": token,
                "expires_in": 28_800,
                "refresh_token": refresh,
                "refresh_token_expires_in": 15_897_600,
                "scope": "",
                "token_type": "bearer",
            })
        }
    }
}

/// GitHub App refresh: single use; a rotated token is dead for good.
fn refresh(s: &mut FakeState, headers: &HeaderMap, form: &HashMap<String, String>) -> Response {
    let token = form.get("refresh_token").cloned().unwrap_or_default();
    match s.refresh_tokens.get(&token).copied() {
        Some(false) => {
            s.refresh_tokens.insert(token, true);
            s.counters.refreshes += 1;
            let body = issue_tokens(s);
            token_answer(headers, body)
        }
        _ => token_error(
            s,
            headers,
            "bad_refresh_token",
            "The refresh token passed is incorrect or expired.",
        ),
    }
}

fn api_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(
            json!({ "message": message, "documentation_url": "https://docs.github.com/rest" }),
        ),
    )
        .into_response()
}

/// The REST API's checks: a User-Agent, and a live token as `Bearer` or
/// `token`. Returns the error response when a check fails.
fn check_api(s: &mut FakeState, headers: &HeaderMap) -> Option<Response> {
    s.counters.api_calls += 1;
    if headers.get(header::USER_AGENT).is_none() {
        return Some(api_error(
            StatusCode::FORBIDDEN,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
        ));
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .unwrap_or_default();
    s.api_tokens.push(token.to_string());
    match s.access_tokens.get(token) {
        Some(None) => None,
        Some(Some(exp)) if *exp > now() => None,
        _ => {
            s.counters.api_unauthorized += 1;
            Some(api_error(StatusCode::UNAUTHORIZED, "Bad credentials"))
        }
    }
}

fn with_rate_limit(body: Value) -> Response {
    (
        [
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-remaining", "4999"),
            ("x-ratelimit-resource", "core"),
        ],
        axum::Json(body),
    )
        .into_response()
}

async fn user(State(state): Shared, headers: HeaderMap) -> Response {
    let mut s = state.lock().unwrap();
    if let Some(refused) = check_api(&mut s, &headers) {
        return refused;
    }
    with_rate_limit(json!({
        "login": s.user.0,
        "id": s.user.1,
        "node_id": "MDQ6VXNlcjQyNDI=",
        "type": "User",
        "name": "Octo Fixture",
        "html_url": format!("https://github.com/{}", s.user.0),
    }))
}

async fn repos(
    State(state): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut s = state.lock().unwrap();
    if let Some(refused) = check_api(&mut s, &headers) {
        return refused;
    }
    let per_page: usize = q.get("per_page").and_then(|v| v.parse().ok()).unwrap_or(30);
    let page: usize = q.get("page").and_then(|v| v.parse().ok()).unwrap_or(1);
    let all: Vec<Value> = (1..=3)
        .map(|i| {
            json!({
                "id": 1000 + i,
                "name": format!("repo-{i}"),
                "full_name": format!("{LOGIN}/repo-{i}"),
                "private": i == 2,
                "description": format!("Fixture repository {i}"),
                "html_url": format!("https://github.com/{LOGIN}/repo-{i}"),
                "default_branch": "main",
                "updated_at": "2026-11-01T00:00:00Z",
            })
        })
        .collect();
    let page: Vec<Value> = all
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    with_rate_limit(Value::Array(page))
}

/// `DELETE /applications/{client_id}/grant`: Basic auth with the app's id
/// and secret, the user's access token in a JSON body; 204, and every token
/// of the app's authorization for that user stops working. 404 for a token
/// GitHub does not know.
async fn revoke_grant(
    state: Shared,
    path: axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    revoke(state, path, headers, body, true).await
}

/// `DELETE /applications/{client_id}/token`: the same, for that token only.
async fn revoke_token(
    state: Shared,
    path: axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    revoke(state, path, headers, body, false).await
}

async fn revoke(
    State(state): Shared,
    axum::extract::Path(client_id): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
    whole_grant: bool,
) -> Response {
    use base64::Engine;
    let mut s = state.lock().unwrap();
    s.counters.revocations += 1;
    if s.revocation_down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if client_id != CLIENT_ID || !authorized {
        return api_error(StatusCode::UNAUTHORIZED, "Requires authentication");
    }
    let token = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("access_token")?.as_str().map(str::to_string))
        .unwrap_or_default();
    s.revoked.push(token.clone());
    if s.access_tokens.remove(&token).is_none() {
        return api_error(StatusCode::NOT_FOUND, "Not Found");
    }
    if whole_grant {
        // The whole authorization goes: every token issued so far (this
        // fake has one user, so one authorization).
        s.access_tokens.clear();
        for used in s.refresh_tokens.values_mut() {
            *used = true;
        }
    }
    StatusCode::NO_CONTENT.into_response()
}
