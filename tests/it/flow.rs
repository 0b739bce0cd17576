//! The end-to-end path: an MCP client signs in through our consent page and
//! the (fake) GitHub, then calls a GitHub tool with our token.

use serde_json::{Value, json};

use crate::support::oauth_client::{call_tool, sign_in};
use crate::support::{FakeGithub, Mode, TestDb, start_broker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_returns_the_upstream_login_on_both_databases() {
    for db in TestDb::all().await {
        let fake = FakeGithub::start(Mode::OAuthApp).await;
        let broker = start_broker(&db, &fake).await;
        let session = sign_in(&broker.url).await;
        let result = call_tool(
            &broker.mcp_url(),
            &session.access_token,
            "github_whoami",
            json!({}),
        )
        .await;
        assert_eq!(result["isError"], json!(false), "{result}");
        let text = result["content"][0]["text"].as_str().unwrap();
        let user: Value = serde_json::from_str(text).unwrap();
        assert_eq!(user["login"], "octo-fixture", "{:?}", db.kind);
    }
}
