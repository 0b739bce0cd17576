//! A generic OIDC provider against a real OpenID provider started locally
//! (the `oidc-provider` npm package, `tests/oidc-provider/server.mjs`): the
//! broker discovers it, sends a nonce, verifies the RS256 id_token against
//! its JWKS and signs the user in under the OIDC `sub`. The id_token rules
//! one by one are unit tests in `src/upstream/oidc/tests.rs`.
//!
//! Outside CI, a machine without Node skips with a printed notice; under CI
//! that is a failure.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::sdk_clients::{npm_installed, repo_root, skip_or_fail};
use crate::support::oauth_client::{
    REDIRECT_URI, authorize_url, flow_cookie, http, location, open_consent, pkce, query_param,
    redeem, register, submit_consent,
};
use crate::support::{TestBroker, TestDb, start_broker_on};

pub(crate) const PROVIDER_ID: &str = "oidc-test";
/// Our client id at the OpenID provider.
pub(crate) const CLIENT_ID: &str = "mcp-broker-it";
pub(crate) const SUB: &str = "oidc-user-7f3a";
const LOGIN: &str = "ada";

pub(crate) struct OpenIdProvider {
    pub(crate) issuer: String,
    /// Our client secret there (tests introspect with it).
    pub(crate) client_secret: String,
    _process: tokio::process::Child,
}

/// Starts `server.mjs` with one client whose redirect URI is `callback`;
/// `env` adds settings (`ROTATE_REFRESH_TOKENS`).
async fn start_openid_provider(
    callback: &str,
    client_secret: &str,
    env: &[(&str, &str)],
) -> Result<OpenIdProvider, String> {
    npm_installed("tests/oidc-provider", "oidc-provider").await?;
    let mut child = tokio::process::Command::new("node")
        .arg("tests/oidc-provider/server.mjs")
        .current_dir(repo_root())
        .env("CALLBACK_URL", callback)
        .env("CLIENT_ID", CLIENT_ID)
        .env("CLIENT_SECRET", client_secret)
        .env("ACCOUNT_SUB", SUB)
        .env("ACCOUNT_LOGIN", LOGIN)
        .envs(env.iter().copied())
        // stdin stays open while the test holds the child; closing it ends the server.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run node: {e}"))?;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let issuer = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(issuer) = line.strip_prefix("ISSUER=") {
                return Some(issuer.to_string());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or("the OpenID provider did not start")?;
    // Keep reading so the server never blocks on a full stdout pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(OpenIdProvider {
        issuer,
        client_secret: client_secret.to_string(),
        _process: child,
    })
}

fn provider_file(issuer: &str, client_secret: &str) -> String {
    format!(
        r#"
id = "{PROVIDER_ID}"
display_name = "Test OpenID Provider"
kind = "oidc"
issuer = "{issuer}"
api_base_url = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret = "{client_secret}"
scopes = ["openid", "profile", "email"]
"#
    )
}

/// A broker whose only provider is a freshly started OpenID provider, or
/// `None` (after the notice) where Node is missing outside CI.
async fn broker_with_openid_provider(db: &TestDb) -> Option<(TestBroker, OpenIdProvider)> {
    broker_with(db, &[], provider_file).await
}

/// Like `broker_with_openid_provider`, with settings for the OpenID provider
/// and the broker's provider file made by `file(issuer, client_secret)`.
pub(crate) async fn broker_with(
    db: &TestDb,
    op_env: &[(&str, &str)],
    file: impl Fn(&str, &str) -> String,
) -> Option<(TestBroker, OpenIdProvider)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!(
        "http://{}/callback/{PROVIDER_ID}",
        listener.local_addr().unwrap()
    );
    let secret = format!("{:032x}", rand::random::<u128>());
    let op = match start_openid_provider(&callback, &secret, op_env).await {
        Ok(op) => op,
        Err(reason) => {
            skip_or_fail(format!("OpenID provider: {reason}"));
            return None;
        }
    };
    let files = [("oidc-test.toml", file(&op.issuer, &secret))];
    let broker = start_broker_on(listener, db, &files, &[], None).await;
    Some((broker, op))
}

/// A browser with a cookie jar: the provider's session and interaction
/// cookies and our flow cookie all ride along (cookies ignore ports).
#[derive(Default)]
pub(crate) struct Browser {
    jar: BTreeMap<String, String>,
}

impl Browser {
    fn keep(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let value = value.to_str().unwrap();
            let pair = value.split(';').next().unwrap();
            let (name, v) = pair.split_once('=').unwrap();
            let expired = value
                .to_ascii_lowercase()
                .contains("expires=thu, 01 jan 1970");
            if v.is_empty() || expired {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_string(), v.to_string());
            }
        }
    }

    /// GETs and follows redirects until one leaves for the client's
    /// redirect URI (returned as `Ok`) or a page answers (`Err`).
    pub(crate) async fn follow(&mut self, mut next: String) -> Result<String, reqwest::Response> {
        for _ in 0..12 {
            if next.starts_with(REDIRECT_URI) {
                return Ok(next);
            }
            let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let response = http()
                .get(&next)
                .header(reqwest::header::COOKIE, cookies.join("; "))
                .send()
                .await
                .unwrap();
            self.keep(&response);
            if !response.status().is_redirection() {
                return Err(response);
            }
            next = url::Url::parse(&next)
                .unwrap()
                .join(&location(&response))
                .unwrap()
                .to_string();
        }
        panic!("too many redirects");
    }
}

/// Register, authorize, approve: the upstream authorize URL the broker sent
/// the browser to, with the browser holding our flow cookie.
pub(crate) async fn start_sign_in(
    broker: &TestBroker,
) -> (
    crate::support::oauth_client::Client,
    crate::support::oauth_client::Pkce,
    String,
    Browser,
) {
    let client = register(&broker.url).await;
    let pkce = pkce();
    let page = open_consent(&authorize_url(&broker.url, &client, &pkce, "st")).await;
    let response = submit_consent(&broker.url, &page, "approve", Some(&page.cookie)).await;
    assert_eq!(response.status(), 303, "consent POST");
    let mut browser = Browser::default();
    let (name, value) = flow_cookie(&response)
        .split_once('=')
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .unwrap();
    browser.jar.insert(name, value);
    (client, pkce, location(&response), browser)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_sign_in_against_a_real_openid_provider_stores_the_oidc_sub() {
    let db = TestDb::sqlite();
    let Some((broker, op)) = broker_with_openid_provider(&db).await else {
        return;
    };
    // Discovery ran at start: the endpoints came from the provider.
    let provider = broker
        .state
        .providers
        .get(PROVIDER_ID)
        .expect("provider discovered");
    assert_eq!(provider.authorize_url, format!("{}/auth", op.issuer));
    assert_eq!(provider.jwks_uri, format!("{}/jwks", op.issuer));

    let (client, pkce, upstream, mut browser) = start_sign_in(&broker).await;
    assert!(upstream.starts_with(&op.issuer), "{upstream}");
    let nonce = query_param(&upstream, "nonce").expect("a nonce goes upstream");
    assert!(
        query_param(&upstream, "scope")
            .unwrap()
            .split(' ')
            .any(|s| s == "openid")
    );

    let back = browser
        .follow(upstream)
        .await
        .unwrap_or_else(|r| panic!("HTTP {} before the client", r.status()));
    assert_eq!(query_param(&back, "error"), None, "{back}");
    let code = query_param(&back, "code").expect("our code");
    assert!(
        code.starts_with(mcp_broker::tokens::opaque::AUTHORIZATION_CODE_PREFIX),
        "our own code, not the provider's: {code}"
    );
    let response = redeem(&broker.url, &client, &code, &pkce).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));

    let user = broker
        .state
        .store
        .find_user(PROVIDER_ID, SUB)
        .await
        .unwrap()
        .expect("user under the OIDC sub");
    assert_eq!(user.subject, SUB);
    // The id_token carries only `sub` here (the provider conforms claims to
    // the access token): the login came from userinfo.
    assert_eq!(user.login, LOGIN);
    // The nonce was never written anywhere in plain text.
    for table in [
        "users",
        "grants",
        "upstream_links",
        "pending_authorizations",
    ] {
        let rows = broker.state.store.dump_table_text(table).await.unwrap();
        assert!(!rows.iter().any(|r| r.contains(&nonce)), "nonce in {table}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_nonce_is_stored_hashed_while_the_sign_in_is_pending() {
    let db = TestDb::sqlite();
    let Some((broker, _op)) = broker_with_openid_provider(&db).await else {
        return;
    };
    let (_, _, upstream, _) = start_sign_in(&broker).await;
    let nonce = query_param(&upstream, "nonce").unwrap();
    let rows = broker
        .state
        .store
        .dump_table_text("pending_authorizations")
        .await
        .unwrap();
    // Every stored value of the one pending row: the hash is there, the
    // nonce nowhere.
    assert!(!rows.iter().any(|v| v.contains(&nonce)), "{rows:?}");
    let hash = mcp_broker::upstream::oidc::nonce_hash(&nonce);
    assert!(rows.contains(&hash), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_id_token_with_the_wrong_nonce_is_an_error_page_and_no_user() {
    let db = TestDb::sqlite();
    let Some((broker, _op)) = broker_with_openid_provider(&db).await else {
        return;
    };
    let (_, _, upstream, mut browser) = start_sign_in(&broker).await;
    // The provider signs whatever nonce it is given: one the broker did not
    // issue for this sign-in ends up in a genuine, correctly signed id_token.
    let mut url = url::Url::parse(&upstream).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "nonce" {
                "replayed-nonce".to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let page = browser
        .follow(url.to_string())
        .await
        .expect_err("refused with a page");
    assert_eq!(page.status(), 400);
    let html = page.text().await.unwrap();
    assert!(html.contains("nonce"), "{html}");
    assert!(
        !html.contains("replayed-nonce"),
        "the page repeats no token content"
    );
    assert_eq!(
        broker
            .state
            .store
            .find_user(PROVIDER_ID, SUB)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_whose_discovery_fails_is_skipped_and_the_broker_serves() {
    let db = TestDb::sqlite();
    // Nothing listens on port 1: discovery fails at start.
    let file = provider_file("http://127.0.0.1:1", "secret");
    let broker = crate::support::start_broker_with(&db, &[("oidc-test.toml", file)]).await;
    assert!(broker.state.providers.get(PROVIDER_ID).is_none());
    let (id, why) = &broker.state.providers.undiscovered[0];
    assert_eq!(id, PROVIDER_ID);
    assert!(why.contains("discovery"), "{why}");
    assert!(!why.contains("secret"), "{why}");
    let metadata = http()
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            broker.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), 200);
}
