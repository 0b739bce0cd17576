//! The GitHub write tools against the fake GitHub: each write changes the
//! fake's state and the read tools see it, GitHub's refusals become tool
//! errors with GitHub's message, arguments stay inside their path segment,
//! and only a token with `repo:write` gets to write.

use serde_json::{Value, json};

use crate::support::Mode;
use crate::support::oauth_client::{mcp_post, open_mcp_session, register, token_with_scope};
use crate::support::tool_session::{OWNER, ToolSession};

type Setup = ToolSession;

/// A broker and a token granted `profile repo:write`.
async fn setup() -> Setup {
    setup_as(Mode::OAuthApp).await
}

async fn setup_as(mode: Mode) -> Setup {
    ToolSession::start(mode, Some("profile repo:write")).await
}

/// The repository's branches as (name, head sha).
async fn branches(t: &Setup) -> Vec<(String, String)> {
    let list = t
        .data(
            "github_list_branches",
            json!({"owner": OWNER, "repo": "repo-1", "per_page": 100}),
        )
        .await;
    list.as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_string(),
                b["sha"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn head_of(branches: &[(String, String)], name: &str) -> String {
    branches
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, sha)| sha.clone())
        .unwrap_or_else(|| panic!("no branch {name}: {branches:?}"))
}

async fn read(t: &Setup, path: &str, git_ref: &str) -> Value {
    t.data(
        "github_read_file",
        json!({"owner": OWNER, "repo": "repo-1", "path": path, "ref": git_ref}),
    )
    .await
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
async fn write_refused_with_401_is_retried_once_after_a_refresh_and_done_once() {
    let t = setup_as(Mode::GitHubApp).await;
    // GitHub's 401 is the first sign the token lapsed; it acted on nothing.
    t.fake.expire_access_tokens();
    let before = t.fake.counters();
    t.data(
        "github_create_issue",
        json!({"owner": OWNER, "repo": "repo-1", "title": "Once"}),
    )
    .await;
    let after = t.fake.counters();
    assert_eq!(after.api_unauthorized - before.api_unauthorized, 1);
    assert_eq!(after.refreshes - before.refreshes, 1);
    assert_eq!(after.writes, 1);
    let listed = t
        .data(
            "github_list_issues",
            json!({"owner": OWNER, "repo": "repo-1"}),
        )
        .await;
    let titled_once = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["title"] == "Once")
        .count();
    assert_eq!(titled_once, 1, "{listed}");
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

const WRITE_TOOLS: [&str; 5] = [
    "github_create_issue",
    "github_comment",
    "github_create_branch",
    "github_put_file",
    "github_open_pull_request",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_branch_starts_at_the_default_branchs_head_and_is_listed() {
    let t = setup().await;
    let before = branches(&t).await;
    let created = t
        .data(
            "github_create_branch",
            json!({"owner": OWNER, "repo": "repo-1", "branch": "topic/yaml"}),
        )
        .await;
    assert_eq!(created["from"], "main");
    let after = branches(&t).await;
    assert_eq!(head_of(&after, "topic/yaml"), head_of(&before, "main"));
    assert_eq!(created["sha"], head_of(&before, "main"));

    t.data(
        "github_create_branch",
        json!({"owner": OWNER, "repo": "repo-1", "branch": "topic/x2", "from": "feature/x"}),
    )
    .await;
    let after = branches(&t).await;
    assert_eq!(head_of(&after, "topic/x2"), head_of(&before, "feature/x"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_branch_that_exists_is_a_422_tool_error_with_githubs_message() {
    let t = setup().await;
    let message = t
        .error(
            "github_create_branch",
            json!({"owner": OWNER, "repo": "repo-1", "branch": "feature/x"}),
        )
        .await;
    assert!(message.contains("422"), "{message}");
    assert!(message.contains("Reference already exists"), "{message}");
    assert_eq!(t.fake.counters().writes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_file_creates_then_updates_a_file_the_contents_api_returns() {
    let t = setup().await;
    let created = t
        .data(
            "github_put_file",
            json!({"owner": OWNER, "repo": "repo-1", "path": "docs/yaml.md",
                   "content": "# YAML\n", "message": "Document YAML"}),
        )
        .await;
    let file = read(&t, "docs/yaml.md", "main").await;
    assert_eq!(file["content"], "# YAML\n");
    assert_eq!(file["sha"], created["sha"]);

    t.data(
        "github_put_file",
        json!({"owner": OWNER, "repo": "repo-1", "path": "docs/yaml.md",
               "content": "# YAML, soon\n", "message": "Say when", "sha": created["sha"]}),
    )
    .await;
    assert_eq!(
        read(&t, "docs/yaml.md", "main").await["content"],
        "# YAML, soon\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_file_with_a_stale_sha_is_a_tool_error_with_githubs_message() {
    let t = setup().await;
    let readme = read(&t, "README.md", "main").await;
    let stale = "0".repeat(40);
    let message = t
        .error(
            "github_put_file",
            json!({"owner": OWNER, "repo": "repo-1", "path": "README.md",
                   "content": "overwritten", "message": "m", "sha": stale}),
        )
        .await;
    assert!(message.contains("409"), "{message}");
    assert!(
        message.contains(&format!("README.md does not match {stale}")),
        "{message}"
    );
    assert_eq!(read(&t, "README.md", "main").await, readme, "unchanged");
    assert_eq!(t.fake.counters().writes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_pull_request_from_a_branch_with_a_commit_is_listed() {
    let t = setup().await;
    t.data(
        "github_create_branch",
        json!({"owner": OWNER, "repo": "repo-1", "branch": "topic/yaml"}),
    )
    .await;
    t.data(
        "github_put_file",
        json!({"owner": OWNER, "repo": "repo-1", "path": "src/yaml.rs", "content": "// YAML\n",
               "message": "Start YAML", "branch": "topic/yaml"}),
    )
    .await;
    assert_eq!(
        read(&t, "src/yaml.rs", "topic/yaml").await["content"],
        "// YAML\n"
    );
    let pull = t
        .data(
            "github_open_pull_request",
            json!({"owner": OWNER, "repo": "repo-1", "title": "Support YAML",
                   "head": "topic/yaml", "base": "main", "body": "Starts it."}),
        )
        .await;
    let number = pull["number"].as_u64().unwrap();
    let pulls = t
        .data(
            "github_list_pull_requests",
            json!({"owner": OWNER, "repo": "repo-1"}),
        )
        .await;
    let listed = pulls
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["number"] == number)
        .unwrap_or_else(|| panic!("{pulls}"));
    assert_eq!(listed["title"], "Support YAML");
    let issue = t
        .data(
            "github_get_issue",
            json!({"owner": OWNER, "repo": "repo-1", "number": number}),
        )
        .await;
    assert_eq!(issue["is_pull_request"], json!(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_pull_request_with_no_commits_between_is_a_422_tool_error() {
    let t = setup().await;
    t.data(
        "github_create_branch",
        json!({"owner": OWNER, "repo": "repo-1", "branch": "empty"}),
    )
    .await;
    let message = t
        .error(
            "github_open_pull_request",
            json!({"owner": OWNER, "repo": "repo-1", "title": "Nothing",
                   "head": "empty", "base": "main"}),
        )
        .await;
    assert!(message.contains("422"), "{message}");
    assert!(
        message.contains("Validation Failed: No commits between main and empty"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_branch_and_path_arguments_never_reach_another_endpoint() {
    let t = setup().await;
    let before = t.fake.paths_seen().len();
    let repo = json!({"owner": OWNER, "repo": "repo-1"});
    let with = |extra: Value| {
        let mut args = repo.clone();
        args.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        args
    };
    for (tool, args) in [
        (
            "github_create_branch",
            with(json!({"branch": "../../user"})),
        ),
        ("github_create_branch", with(json!({"branch": "-f"}))),
        ("github_create_branch", with(json!({"branch": "a\u{0}b"}))),
        (
            "github_create_branch",
            with(json!({"branch": "ok", "from": "../../../user"})),
        ),
        (
            "github_create_branch",
            with(json!({"branch": "ok", "from": "main?x=1"})),
        ),
        (
            "github_put_file",
            with(json!({"path": "../../../../user", "content": "x", "message": "m"})),
        ),
        (
            "github_put_file",
            with(json!({"path": "a.md", "content": "x", "message": "m", "branch": "a..b"})),
        ),
        (
            "github_open_pull_request",
            with(json!({"title": "t", "head": "x:../../y", "base": "main"})),
        ),
        (
            "github_open_pull_request",
            with(json!({"title": "t", "head": "topic", "base": "@{-1}"})),
        ),
        (
            "github_comment",
            json!({"owner": "../../user", "repo": "x", "number": 1, "body": "b"}),
        ),
        (
            "github_create_branch",
            with(json!({"branch": "ok", "from": "no#such%2f"})),
        ),
    ] {
        let result = t.call(tool, args.clone()).await;
        assert_eq!(result["isError"], json!(true), "{args}: {result}");
    }
    let seen = t.fake.paths_seen()[before..].to_vec();
    assert_eq!(
        seen,
        [format!(
            "/repos/{OWNER}/repo-1/git/ref/heads/no%23such%252f"
        )],
        "only the encoded, valid branch name reached GitHub, inside its segment"
    );
    assert_eq!(t.fake.counters().writes, 0);
}
