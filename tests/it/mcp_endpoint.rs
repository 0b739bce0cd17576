//! The MCP endpoint and its GitHub tools, through a signed-in session.

use serde_json::{Value, json};

use crate::support::oauth_client::{
    call_tool, http, initialize_request, mcp_post, mcp_post_with, sign_in,
};
use crate::support::{FakeGithub, Mode, TestDb, start_broker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_repos_returns_the_users_repositories_page_by_page() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    let mcp = broker.mcp_url();
    let page = |n: u32| {
        call_tool(
            &mcp,
            &session.access_token,
            "github_list_repos",
            json!({"per_page": 2, "page": n}),
        )
    };
    let first = page(1).await;
    let repos: Value = serde_json::from_str(first["content"][0]["text"].as_str().unwrap()).unwrap();
    let names: Vec<&str> = repos
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["full_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["octo-fixture/repo-1", "octo-fixture/repo-2"]);
    let second = page(2).await;
    let repos: Value =
        serde_json::from_str(second["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(repos.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_names_every_tool() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    let (_, headers, _) = mcp_post(
        &broker.mcp_url(),
        Some(&session.access_token),
        None,
        initialize_request("2025-03-26"),
    )
    .await;
    let sid = headers
        .get("mcp-session-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    mcp_post(
        &broker.mcp_url(),
        Some(&session.access_token),
        Some(&sid),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    let (status, _, body) = mcp_post(
        &broker.mcp_url(),
        Some(&session.access_token),
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    assert_eq!(status, 200);
    let body = body.unwrap();
    let mut names: Vec<&str> = body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "account_whoami",
            "github_get_issue",
            "github_get_pull_request_diff",
            "github_get_repo",
            "github_list_branches",
            "github_list_issues",
            "github_list_pull_requests",
            "github_list_repos",
            "github_read_file",
            "github_search_code",
            "github_search_issues",
            "github_whoami",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_host_header_is_refused_against_dns_rebinding() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    let response = http()
        .post(broker.mcp_url())
        .bearer_auth(&session.access_token)
        .header("Host", "evil.example")
        .header("Accept", "application/json, text/event-stream")
        .json(&initialize_request("2025-06-18"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_uses_the_mapped_upstream_token_never_ours() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    // The fake accepts only the tokens it issued: a passthrough of our JWT
    // would be answered 401 and show up as a tool error.
    let result = call_tool(
        &broker.mcp_url(),
        &session.access_token,
        "github_whoami",
        json!({}),
    )
    .await;
    assert_eq!(result["isError"], json!(false), "{result}");
    // GitHub saw only tokens it issued (identity at sign-in, then the tool),
    // never the MCP client's token.
    let seen = fake.api_tokens_seen();
    let issued = fake.issued_secrets();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.iter()
            .all(|t| issued.contains(t) && t.starts_with("gho_")),
        "{seen:?}"
    );
    assert!(!seen.contains(&session.access_token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_request_keeps_its_keep_alive_connection_usable() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let addr = broker.url.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut buf = vec![0u8; 8192];
    // A tokenless POST announcing its body with `Expect: 100-continue`, as
    // curl and other clients do for larger bodies.
    let body = format!("{{\"pad\":\"{}\"}}", "a".repeat(30_000));
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let n = socket.read(&mut buf).await.unwrap();
    let mut answer = String::from_utf8_lossy(&buf[..n]).into_owned();
    if answer.starts_with("HTTP/1.1 100") {
        socket.write_all(body.as_bytes()).await.unwrap();
        if !answer.contains("HTTP/1.1 401") {
            let n = socket.read(&mut buf).await.unwrap();
            answer = String::from_utf8_lossy(&buf[..n]).into_owned();
        }
    }
    assert!(answer.contains("HTTP/1.1 401"), "{answer}");
    // The refusal must leave the connection usable for the next request
    // (a pooled client otherwise fails with "server disconnected").
    let second =
        format!("GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let _ = socket.write_all(second.as_bytes()).await;
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), socket.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert!(n > 0, "the server closed the connection");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_session_is_usable_only_by_the_user_who_opened_it() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let alice = sign_in(&broker.url).await;
    fake.set_user("mallory-fixture", 666);
    let mallory = sign_in(&broker.url).await;
    let init = initialize_request("2025-06-18");
    let (_, headers, _) = mcp_post(&broker.mcp_url(), Some(&alice.access_token), None, init).await;
    let sid = headers["mcp-session-id"].to_str().unwrap().to_string();
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let (theirs, _, _) = mcp_post(
        &broker.mcp_url(),
        Some(&mallory.access_token),
        Some(&sid),
        list.clone(),
    )
    .await;
    assert_eq!(theirs, 404, "another user cannot use the session");
    let (own, _, _) = mcp_post(
        &broker.mcp_url(),
        Some(&alice.access_token),
        Some(&sid),
        list.clone(),
    )
    .await;
    assert_eq!(own, 200);
    // Alice's id behind one of Mallory's own: the id checked must be the id
    // rmcp serves, so two session headers are refused outright.
    let (_, headers, _) = mcp_post(
        &broker.mcp_url(),
        Some(&mallory.access_token),
        None,
        initialize_request("2025-06-18"),
    )
    .await;
    let own_sid = headers["mcp-session-id"].to_str().unwrap().to_string();
    let (both, _, _) = mcp_post_with(
        &broker.mcp_url(),
        Some(&mallory.access_token),
        &[("Mcp-Session-Id", &own_sid), ("Mcp-Session-Id", &sid)],
        list,
    )
    .await;
    assert_eq!(both, 400);
}
