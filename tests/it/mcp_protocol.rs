//! The MCP transport as each spec edition serves it: stateless 2026-07-28
//! requests, sessions for 2025 clients, protocol-version negotiation, and
//! the `Host`/`Origin` checks against DNS rebinding.

use serde_json::{Value, json};

use crate::support::fake_github::LOGIN;
use crate::support::oauth_client::{http, initialize_request, mcp_post, mcp_post_with, sign_in};
use crate::support::{FakeGithub, Mode, TestDb, start_broker, start_broker_with_settings};

const MODERN: &str = "2026-07-28";

/// A self-contained 2026-07-28 request: the version in the header and in
/// `_meta`, with the client's capabilities, and no session.
fn modern_request(id: u64, method: &str, params: Value) -> Value {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// A 2026-07-28 POST: beside the body, the version, `Mcp-Method`, and for
/// `tools/call` the tool's name in `Mcp-Name` (the standard headers).
async fn modern_post(
    mcp_url: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let method = body["method"].as_str().unwrap().to_string();
    let mut headers = vec![("MCP-Protocol-Version", MODERN), ("Mcp-Method", &method)];
    if let Some(name) = body["params"]["name"].as_str() {
        headers.push(("Mcp-Name", name));
    }
    let (status, headers, value) = mcp_post_with(mcp_url, token, &headers, body.clone()).await;
    (status, headers, value.unwrap_or(Value::Null))
}

/// The status of a 2025-06-18 `initialize` with these headers.
async fn initialize_status(mcp_url: &str, token: Option<&str>, headers: &[(&str, &str)]) -> u16 {
    mcp_post_with(mcp_url, token, headers, initialize_request("2025-06-18"))
        .await
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2026_07_28_tool_call_is_served_statelessly_with_the_fakes_data() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    let mcp = broker.mcp_url();

    let (status, headers, discover) = modern_post(
        &mcp,
        Some(&session.access_token),
        modern_request(1, "server/discover", json!({})),
    )
    .await;
    assert_eq!(status, 200, "{discover}");
    let versions = discover["result"]["supportedVersions"].to_string();
    assert!(versions.contains(MODERN), "{discover}");
    assert!(
        headers.get("mcp-session-id").is_none(),
        "no session in 2026-07-28"
    );

    // Two calls, each on its own: nothing ties them together but the token.
    for id in [2, 3] {
        let (status, headers, answer) = modern_post(
            &mcp,
            Some(&session.access_token),
            modern_request(
                id,
                "tools/call",
                json!({"name": "github_whoami", "arguments": {}}),
            ),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert!(headers.get("mcp-session-id").is_none());
        let text = answer["result"]["content"][0]["text"].as_str().unwrap();
        assert!(text.contains(LOGIN), "{text}");
        assert_ne!(answer["result"]["isError"], true);
    }
    // The scope check holds statelessly too: no token, no call.
    let call = modern_request(
        4,
        "tools/call",
        json!({"name": "github_whoami", "arguments": {}}),
    );
    assert_eq!(modern_post(&mcp, None, call).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_2025_edition_is_negotiated_with_a_session_and_an_unknown_one_gets_ours() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    let mcp = broker.mcp_url();
    for version in ["2025-03-26", "2025-06-18", "2025-11-25"] {
        let (status, headers, body) = mcp_post(
            &mcp,
            Some(&session.access_token),
            None,
            initialize_request(version),
        )
        .await;
        assert_eq!(status, 200, "{version}");
        assert_eq!(body.unwrap()["result"]["protocolVersion"], version);
        assert!(
            headers.get("mcp-session-id").is_some(),
            "{version} has sessions"
        );
    }
    // A version we do not know: the answer names one we speak, and the
    // client decides whether to go on (spec: lifecycle, version negotiation).
    let (status, _, body) = mcp_post(
        &mcp,
        Some(&session.access_token),
        None,
        initialize_request("2024-01-01"),
    )
    .await;
    assert_eq!(status, 200);
    let offered = body.unwrap()["result"]["protocolVersion"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(offered.starts_with("2025-"), "{offered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_protocol_version_header_is_a_400() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    let sid =
        crate::support::oauth_client::open_mcp_session(&broker.mcp_url(), &session.access_token)
            .await;
    let (status, _, _) = mcp_post_with(
        &broker.mcp_url(),
        Some(&session.access_token),
        &[
            ("Mcp-Session-Id", &sid),
            ("MCP-Protocol-Version", "1999-01-01"),
        ],
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}),
    )
    .await;
    assert_eq!(status, 400);
}

/// A page on another origin, or reached through another host name, is
/// refused before its request is even authenticated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_origins_and_hosts_are_refused_and_configured_ones_pass() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let settings = r#"
mcp_allowed_hosts = ["broker.internal"]
mcp_allowed_origins = ["https://app.example"]
"#;
    let broker = start_broker_with_settings(&db, &fake, settings).await;
    let session = sign_in(&broker.url).await;
    let port = broker.url.rsplit(':').next().unwrap().to_string();
    let (mcp, token) = (broker.mcp_url(), Some(session.access_token.as_str()));
    let (internal, evil) = (
        format!("broker.internal:{port}"),
        format!("evil.example:{port}"),
    );
    let evil_page = [("Origin", "https://evil.example")];
    assert_eq!(initialize_status(&mcp, token, &evil_page).await, 403);
    assert_eq!(initialize_status(&mcp, None, &evil_page).await, 403);
    assert_eq!(
        initialize_status(&mcp, token, &[("Origin", "null")]).await,
        403
    );
    assert_eq!(
        initialize_status(&mcp, token, &[("Origin", &broker.url)]).await,
        200
    );
    let app = [("Origin", "https://app.example")];
    assert_eq!(initialize_status(&mcp, token, &app).await, 200);
    assert_eq!(initialize_status(&mcp, token, &[]).await, 200);
    assert_eq!(
        initialize_status(&mcp, token, &[("Host", &internal)]).await,
        200
    );
    assert_eq!(initialize_status(&mcp, None, &[("Host", &evil)]).await, 403);
}

/// rmcp's own client in 2026-07-28 mode (`server/discover`, no session,
/// per-request metadata and standard headers), with our bearer token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_client_in_2026_07_28_mode_lists_and_calls_tools_statelessly() {
    use rmcp::model::{CallToolRequestParams, ProtocolVersion};
    use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(broker.mcp_url())
            .auth_header(session.access_token.clone()),
    );
    let client = ()
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("discover succeeds");
    assert_eq!(
        client.peer_info().map(|i| i.protocol_version.clone()),
        Some(ProtocolVersion::V_2026_07_28)
    );
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    // The default scopes: profile and repo:read tools, no write tool.
    assert!(names.contains(&"github_whoami") && names.contains(&"github_read_file"));
    assert!(!names.contains(&"github_put_file"), "{names:?}");
    let result = client
        .call_tool(CallToolRequestParams::new("github_whoami"))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true));
    let text = serde_json::to_string(&result.content).unwrap();
    assert!(text.contains(LOGIN), "{text}");
    // A write tool is refused with the step-up challenge, not run.
    let refused = client
        .call_tool(CallToolRequestParams::new("github_create_issue"))
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(fake.counters().writes, 0);
    let _ = client.cancel().await;
}

/// Clients end a 2025 session with DELETE; the SDKs count 200 as success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_session_answers_200_and_ends_it() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    let mcp = broker.mcp_url();
    let sid = crate::support::oauth_client::open_mcp_session(&mcp, &session.access_token).await;
    let response = http()
        .delete(&mcp)
        .bearer_auth(&session.access_token)
        .header("Mcp-Session-Id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, _, _) = mcp_post(
        &mcp,
        Some(&session.access_token),
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}),
    )
    .await;
    assert_eq!(status, 404, "the session is gone");
}
