//! Broker scopes: step-up with 403 insufficient_scope, hierarchies, and the
//! upstream scopes a grant asks for.

use serde_json::{Value, json};

use crate::support::oauth_client::{
    authorize, call_tool, mcp_post, pkce, query_param, register, token_with_scope,
};
use crate::support::{FakeGithub, Mode, TestBroker, TestDb, start_broker};

async fn raw_tool_call(
    broker: &TestBroker,
    token: &str,
    tool: &str,
) -> (u16, reqwest::header::HeaderMap) {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": {}}});
    let (status, headers, _) = mcp_post(&broker.mcp_url(), Some(token), None, body).await;
    (status, headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_scope_is_403_insufficient_scope_naming_every_scope_needed() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let broker = start_broker(&db, &fake).await;
    let client = register(&broker.url).await;
    let token = token_with_scope(&broker, &client, "profile").await;
    let (status, headers) = raw_tool_call(&broker, &token, "github_list_repos").await;
    assert_eq!(status, 403);
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"profile repo:read\""),
        "{challenge}"
    );
    assert!(challenge.contains("resource_metadata="), "{challenge}");
    assert_eq!(
        fake.counters().api_calls,
        1,
        "only the sign-in's identity call reached GitHub"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_up_reauthorization_makes_the_same_call_succeed() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let broker = start_broker(&db, &fake).await;
    let client = register(&broker.url).await;
    let narrow = token_with_scope(&broker, &client, "profile").await;
    assert_eq!(fake.last_authorize_scope().as_deref(), Some("read:user"));
    assert_eq!(
        raw_tool_call(&broker, &narrow, "github_list_repos").await.0,
        403
    );
    let wide = token_with_scope(&broker, &client, "profile repo:read").await;
    // The upstream grant was widened to what repo:read needs.
    assert_eq!(
        fake.last_authorize_scope().as_deref(),
        Some("read:user repo")
    );
    let result = call_tool(&broker.mcp_url(), &wide, "github_list_repos", json!({})).await;
    assert_eq!(result["isError"], json!(false), "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_scope_implies_read() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let broker = start_broker(&db, &fake).await;
    let client = register(&broker.url).await;
    let token = token_with_scope(&broker, &client, "repo:write").await;
    let result = call_tool(&broker.mcp_url(), &token, "github_list_repos", json!({})).await;
    assert_eq!(result["isError"], json!(false), "{result}");
    assert_eq!(
        raw_tool_call(&broker, &token, "github_whoami").await.0,
        403,
        "profile is not implied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_scope_is_refused_at_authorize() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let broker = start_broker(&db, &fake).await;
    let client = register(&broker.url).await;
    let url = format!(
        "{}&scope=admin",
        crate::support::oauth_client::authorize_url(&broker.url, &client, &pkce(), "s")
    );
    let response = crate::support::oauth_client::http()
        .get(url)
        .send()
        .await
        .unwrap();
    let back = crate::support::oauth_client::location(&response);
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("invalid_scope")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_scopes_are_advertised_and_granted_when_none_are_asked() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let broker = start_broker(&db, &fake).await;
    let prm: Value = crate::support::oauth_client::http()
        .get(format!(
            "{}/.well-known/oauth-protected-resource/mcp",
            broker.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        prm["scopes_supported"],
        json!(["profile", "repo:read", "repo:write"])
    );
    let (status, headers, _) = mcp_post(&broker.mcp_url(), None, None, json!({})).await;
    assert_eq!(status, 401);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("scope=\"profile repo:read\"")
    );
    let client = register(&broker.url).await;
    let back = authorize(&broker.url, &client, &pkce(), "s").await;
    assert!(query_param(&back, "code").is_some());
    assert_eq!(
        fake.last_authorize_scope().as_deref(),
        Some("read:user repo")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_refused_if_any_call_in_it_lacks_its_scope() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let broker = start_broker(&db, &fake).await;
    let client = register(&broker.url).await;
    let token = token_with_scope(&broker, &client, "profile").await;
    let call = |id: u32, tool: &str| json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {"x": [1, {"y": "z"}]}}});
    let batch = json!([call(1, "github_whoami"), call(2, "github_list_repos")]);
    let (status, headers, _) = mcp_post(&broker.mcp_url(), Some(&token), None, batch).await;
    assert_eq!(status, 403);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("scope=\"profile repo:read\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_tool_arguments_cannot_slip_past_the_scope_check() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let broker = start_broker(&db, &fake).await;
    let client = register(&broker.url).await;
    let token = token_with_scope(&broker, &client, "profile").await;
    // Arguments of unexpected shapes: the scope check must still see the call.
    for arguments in [
        json!({"provider": 5}),
        json!([1, 2]),
        json!("x"),
        json!({"provider": {"a": 1}}),
    ] {
        let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                          "params": {"name": "github_list_repos", "arguments": arguments}});
        let (status, _, _) = mcp_post(&broker.mcp_url(), Some(&token), None, body).await;
        assert_eq!(status, 403, "{arguments}");
    }
    assert_eq!(
        fake.counters().api_calls,
        1,
        "only the sign-in's identity call"
    );
}

/// The tool names `tools/list` offers this token.
async fn listed_tools(broker: &TestBroker, token: &str) -> Vec<String> {
    let session = crate::support::oauth_client::open_mcp_session(&broker.mcp_url(), token).await;
    let (status, _, body) = mcp_post(
        &broker.mcp_url(),
        Some(token),
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}),
    )
    .await;
    assert_eq!(status, 200);
    body.unwrap()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_shows_only_the_tools_the_tokens_scopes_allow() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let broker = start_broker(&db, &fake).await;
    let client = register(&broker.url).await;
    let narrow = token_with_scope(&broker, &client, "profile").await;
    let wide = token_with_scope(&broker, &client, "profile repo:read").await;

    let offered = listed_tools(&broker, &narrow).await;
    assert_eq!(offered, ["account_whoami", "github_whoami"]);
    let offered = listed_tools(&broker, &wide).await;
    assert!(
        offered.contains(&"github_read_file".to_string()),
        "{offered:?}"
    );
    // Every tool but the writes, which need `repo:write`.
    let readable = mcp_broker::mcp::tools::TOOLS
        .iter()
        .filter(|t| t.1 != "repo:write")
        .count();
    assert_eq!(offered.len(), readable + 1, "{offered:?}");
    assert!(
        !offered.contains(&"github_create_issue".to_string()),
        "{offered:?}"
    );
}
