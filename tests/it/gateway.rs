//! Gateway routes: `/mcp/<name>` proxies to a second MCP server that checks
//! its own bearer tokens (against the fake GitHub). The downstream gets the
//! user's upstream token, never ours; its 401 sends the vault to refresh.

use serde_json::{Value, json};

use crate::support::downstream_mcp::DownstreamMcp;
use crate::support::fake_github::LOGIN;
use crate::support::oauth_client::{
    http, initialize_request, mcp_post, mcp_post_with, register, sign_in, token_with_scope,
};
use crate::support::{FakeGithub, Mode, TestBroker, TestDb, start_broker_with_settings};

struct Gateway {
    _db: TestDb,
    fake: FakeGithub,
    downstream: DownstreamMcp,
    broker: TestBroker,
}

impl Gateway {
    /// A broker with route `/mcp/github` to the downstream, needing `scope`.
    async fn start(mode: Mode, scope: &str) -> Gateway {
        let db = TestDb::sqlite();
        let fake = FakeGithub::start(mode).await;
        let downstream = DownstreamMcp::start(&fake.url).await;
        let settings = format!(
            "[[gateways]]\nname = \"github\"\nurl = \"{}\"\nprovider = \"github\"\nscope = \"{scope}\"\n",
            downstream.url
        );
        let broker = start_broker_with_settings(&db, &fake, &settings).await;
        Gateway {
            _db: db,
            fake,
            downstream,
            broker,
        }
    }

    fn route(&self) -> String {
        format!("{}/mcp/github", self.broker.url)
    }
}

/// One `initialize` through the route with these headers.
async fn initialize_through(
    route: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Option<Value>) {
    mcp_post_with(route, token, headers, initialize_request("2025-06-18")).await
}

/// initialize + initialized + `downstream_whoami` through the route: the
/// HTTP status of the call and its result.
async fn whoami_through(route: &str, token: &str) -> (u16, Value) {
    let (status, headers, _) =
        mcp_post(route, Some(token), None, initialize_request("2025-06-18")).await;
    if status != 200 {
        return (status, Value::Null);
    }
    let session = headers
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_string());
    mcp_post(
        route,
        Some(token),
        session.as_deref(),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    let (status, _, body) = mcp_post(
        route,
        Some(token),
        session.as_deref(),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "downstream_whoami", "arguments": {}}}),
    )
    .await;
    (
        status,
        body.map(|b| b["result"].clone()).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_downstream_gets_the_users_upstream_token_and_never_ours() {
    let gw = Gateway::start(Mode::OAuthApp, "repo:read").await;
    let session = sign_in(&gw.broker.url).await;
    let (status, result) = whoami_through(&gw.route(), &session.access_token).await;
    assert_eq!(status, 200);
    assert_eq!(
        result["content"][0]["text"],
        format!("downstream acts as {LOGIN}")
    );
    let seen = gw.downstream.authorizations_seen();
    assert!(
        seen.len() >= 3,
        "initialize, initialized, tools/call: {seen:?}"
    );
    let issued = gw.fake.issued_secrets();
    for header in &seen {
        assert!(
            !header.contains(&session.access_token),
            "our token leaked downstream"
        );
        let token = header.strip_prefix("Bearer ").expect("a bearer token");
        assert!(
            issued.iter().any(|s| s == token),
            "not a GitHub token: {header}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downstream_401_refreshes_the_upstream_token_and_the_call_succeeds() {
    let gw = Gateway::start(Mode::GitHubApp, "repo:read").await;
    let session = sign_in(&gw.broker.url).await;
    assert_eq!(
        whoami_through(&gw.route(), &session.access_token).await.0,
        200
    );
    let before = gw.fake.counters().refresh_attempts;
    // GitHub stops accepting the token while our vault still thinks it good.
    gw.fake.expire_access_tokens();
    let (status, result) = whoami_through(&gw.route(), &session.access_token).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(
        result["content"][0]["text"],
        format!("downstream acts as {LOGIN}")
    );
    assert_eq!(gw.fake.counters().refresh_attempts, before + 1);
    // The refused token was tried once, then the refreshed one.
    let seen = gw.downstream.authorizations_seen();
    let last = seen.last().unwrap().strip_prefix("Bearer ").unwrap();
    assert!(gw.fake.token_is_live(last));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_the_routes_scope_gets_403_naming_it_and_nothing_reaches_downstream() {
    let gw = Gateway::start(Mode::OAuthApp, "repo:write").await;
    let session = sign_in(&gw.broker.url).await;
    let (status, headers, _) =
        initialize_through(&gw.route(), Some(&session.access_token), &[]).await;
    assert_eq!(status, 403);
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    assert!(challenge.contains("repo:write"), "{challenge}");
    assert!(gw.downstream.authorizations_seen().is_empty());

    // Step-up: with the scope, the same route works.
    let client = register(&gw.broker.url).await;
    let wider = token_with_scope(&gw.broker, &client, "profile repo:read repo:write").await;
    assert_eq!(whoami_through(&gw.route(), &wider).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_route_challenges_like_mcp_and_a_downstream_refusal_never_ends_the_link() {
    let gw = Gateway::start(Mode::OAuthApp, "repo:read").await;
    let (status, headers, _) = initialize_through(&gw.route(), None, &[]).await;
    assert_eq!(status, 401);
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains(&gw.broker.url), "{challenge}");
    assert!(!challenge.contains("downstream.invalid"), "{challenge}");
    // The path-inserted metadata URL a client derives for the route works.
    let prm: Value = http()
        .get(format!(
            "{}/.well-known/oauth-protected-resource/mcp/github",
            gw.broker.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], gw.broker.mcp_url());

    // The downstream refuses a token that cannot be refreshed (an OAuth App
    // token the user revoked at GitHub): 502, and the link is kept. Only the
    // provider itself, never a downstream, can end a user's link.
    let session = sign_in(&gw.broker.url).await;
    gw.fake.revoke_all_tokens();
    let (status, headers, _) =
        initialize_through(&gw.route(), Some(&session.access_token), &[]).await;
    assert_eq!(status, 502);
    assert!(headers.get("www-authenticate").is_none());
    let link = gw.broker.github_link(&session.access_token).await.unwrap();
    assert!(link.reauth_required_at.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_session_is_usable_only_by_the_user_who_opened_it() {
    let gw = Gateway::start(Mode::OAuthApp, "repo:read").await;
    let alice = sign_in(&gw.broker.url).await;
    gw.fake.set_user("mallory", 666);
    let mallory = sign_in(&gw.broker.url).await;
    let (status, headers, _) = mcp_post(
        &gw.route(),
        Some(&alice.access_token),
        None,
        initialize_request("2025-06-18"),
    )
    .await;
    assert_eq!(status, 200);
    let sid = headers["mcp-session-id"].to_str().unwrap().to_string();
    let (status, _, _) = mcp_post(
        &gw.route(),
        Some(&mallory.access_token),
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
    )
    .await;
    assert_eq!(status, 404);
    // Mallory's own session id first and Alice's second: refused, so the
    // downstream never sees a session id that was not checked.
    let (status, headers, _) = mcp_post(
        &gw.route(),
        Some(&mallory.access_token),
        None,
        initialize_request("2025-06-18"),
    )
    .await;
    assert_eq!(status, 200);
    let own = headers["mcp-session-id"].to_str().unwrap().to_string();
    let (status, _, _) = mcp_post_with(
        &gw.route(),
        Some(&mallory.access_token),
        &[("Mcp-Session-Id", &own), ("Mcp-Session-Id", &sid)],
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}),
    )
    .await;
    assert_eq!(status, 400);
    // A foreign page cannot reach the route either.
    let evil_page = [("Origin", "https://evil.example")];
    let (status, _, _) =
        initialize_through(&gw.route(), Some(&alice.access_token), &evil_page).await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_downstream_gets_the_request_id_our_answer_carries() {
    let gw = Gateway::start(Mode::OAuthApp, "repo:read").await;
    let session = sign_in(&gw.broker.url).await;
    let token = Some(session.access_token.as_str());

    let (status, headers, _) =
        initialize_through(&gw.route(), token, &[("x-request-id", "gateway-trace-1")]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-request-id"], "gateway-trace-1");
    assert_eq!(gw.downstream.request_ids_seen(), ["gateway-trace-1"]);

    // Without one offered, the id we made for the request goes downstream.
    let (status, headers, _) = initialize_through(&gw.route(), token, &[]).await;
    assert_eq!(status, 200);
    let ours = headers["x-request-id"].to_str().unwrap();
    assert_eq!(gw.downstream.request_ids_seen()[1], ours);
}
