//! The GitHub write tools against the fake GitHub: each write changes the
//! fake's state and the read tools see it, GitHub's refusals become tool
//! errors with GitHub's message, arguments stay inside their path segment,
//! and only a token with `repo:write` gets to write.

use serde_json::{Value, json};

use crate::support::oauth_client::{
    call_tool, mcp_post, open_mcp_session, register, token_with_scope,
};
use crate::support::{FakeGithub, Mode, TestBroker, TestDb, start_broker};

const OWNER: &str = "octo-fixture";

struct Setup {
    _db: TestDb,
    fake: FakeGithub,
    broker: TestBroker,
    token: String,
}

/// A broker and a token granted `profile repo:write`.
async fn setup() -> Setup {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let client = register(&broker.url).await;
    let token = token_with_scope(&broker, &client, "profile repo:write").await;
    Setup {
        _db: db,
        fake,
        broker,
        token,
    }
}

impl Setup {
    async fn call(&self, tool: &str, arguments: Value) -> Value {
        call_tool(&self.broker.mcp_url(), &self.token, tool, arguments).await
    }

    /// A successful call's JSON data (the first content block).
    async fn data(&self, tool: &str, arguments: Value) -> Value {
        let result = self.call(tool, arguments).await;
        assert_eq!(result["isError"], json!(false), "{result}");
        serde_json::from_str(text(&result)).unwrap()
    }

    /// A failed call's message.
    async fn error(&self, tool: &str, arguments: Value) -> String {
        let result = self.call(tool, arguments).await;
        assert_eq!(result["isError"], json!(true), "{result}");
        text(&result).to_string()
    }
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_issue_adds_an_issue_the_read_tools_list_and_show() {
    let t = setup().await;
    let issue = t
        .data(
            "github_create_issue",
            json!({"owner": OWNER, "repo": "repo-1", "title": "Support YAML",
                   "body": "TOML only, for now.", "labels": ["enhancement"]}),
        )
        .await;
    let number = issue["number"].as_u64().unwrap();
    assert_eq!(issue["title"], "Support YAML");
    assert_eq!(issue["labels"], json!(["enhancement"]));
    assert_eq!(issue["is_pull_request"], json!(false));

    let listed = t
        .data(
            "github_list_issues",
            json!({"owner": OWNER, "repo": "repo-1"}),
        )
        .await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["number"] == number),
        "{listed}"
    );
    let shown = t
        .data(
            "github_get_issue",
            json!({"owner": OWNER, "repo": "repo-1", "number": number}),
        )
        .await;
    assert_eq!(shown["body"], "TOML only, for now.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_issue_without_a_title_is_a_tool_error_with_githubs_validation_message() {
    let t = setup().await;
    let message = t
        .error(
            "github_create_issue",
            json!({"owner": OWNER, "repo": "repo-1", "title": ""}),
        )
        .await;
    assert!(message.contains("422"), "{message}");
    assert!(
        message.contains("Validation Failed: title is missing_field"),
        "{message}"
    );
    assert_eq!(t.fake.counters().writes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comment_joins_the_issues_comments() {
    let t = setup().await;
    let comment = t
        .data(
            "github_comment",
            json!({"owner": OWNER, "repo": "repo-1", "number": 1, "body": "Still happens on 0.3."}),
        )
        .await;
    assert_eq!(comment["user"], OWNER);
    let issue = t
        .data(
            "github_get_issue",
            json!({"owner": OWNER, "repo": "repo-1", "number": 1}),
        )
        .await;
    let bodies: Vec<&str> = issue["comment_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies.last(), Some(&"Still happens on 0.3."), "{issue}");
    assert_eq!(issue["comments"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comment_on_a_missing_issue_is_a_404_tool_error() {
    let t = setup().await;
    let message = t
        .error(
            "github_comment",
            json!({"owner": OWNER, "repo": "repo-1", "number": 999, "body": "hello"}),
        )
        .await;
    assert!(message.contains("GitHub says: Not Found"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_with_only_repo_read_gets_403_insufficient_scope_naming_repo_write() {
    let t = setup().await;
    let client = register(&t.broker.url).await;
    let reader = token_with_scope(&t.broker, &client, "profile repo:read").await;
    let args = json!({"owner": OWNER, "repo": "repo-1", "number": 1, "title": "t",
        "body": "b", "branch": "b", "path": "p", "content": "c", "message": "m",
        "head": "feature/x", "base": "main"});
    for tool in WRITE_TOOLS {
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": tool, "arguments": args}});
        let (status, headers, _) = mcp_post(&t.broker.mcp_url(), Some(&reader), None, body).await;
        assert_eq!(status, 403, "{tool}");
        let challenge = headers["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains("error=\"insufficient_scope\""),
            "{tool}: {challenge}"
        );
        assert!(challenge.contains("repo:write"), "{tool}: {challenge}");
    }
    assert_eq!(t.fake.counters().writes, 0, "the fake saw no write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_tools_declare_that_they_change_things() {
    let t = setup().await;
    let mcp = t.broker.mcp_url();
    let session = open_mcp_session(&mcp, &t.token).await;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let (_, _, body) = mcp_post(&mcp, Some(&t.token), Some(&session), list).await;
    let tools = body.unwrap()["result"]["tools"].as_array().unwrap().clone();
    for name in WRITE_TOOLS {
        let tool = tools
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name} is listed for repo:write"));
        assert_eq!(tool["annotations"]["readOnlyHint"], json!(false), "{name}");
    }
}

const WRITE_TOOLS: [&str; 2] = ["github_create_issue", "github_comment"];
