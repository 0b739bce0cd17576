//! The read-only GitHub tools, through a signed-in session against the fake
//! GitHub: each returns the fake's data, GitHub's refusals become tool errors
//! with GitHub's message, arguments stay inside their path segment, and the
//! scope check guards every tool.

use serde_json::{Value, json};

use crate::support::Mode;
use crate::support::fake_github::repos::{BIG_FILE, DIFF, HUGE_PR, files};
use crate::support::oauth_client::{mcp_post, open_mcp_session, register, token_with_scope};
use crate::support::tool_session::{OWNER, ToolSession, text};

type Setup = ToolSession;

/// A broker and a token with the default scopes (`profile repo:read`).
async fn setup() -> Setup {
    ToolSession::start(Mode::OAuthApp, None).await
}

const READ_TOOLS: [&str; 9] = [
    "github_get_repo",
    "github_read_file",
    "github_list_branches",
    "github_list_issues",
    "github_get_issue",
    "github_list_pull_requests",
    "github_get_pull_request_diff",
    "github_search_issues",
    "github_search_code",
];

fn numbers(list: &Value) -> Vec<u64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|i| i["number"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_repo_returns_the_repository_and_the_remaining_rate_limit() {
    let t = setup().await;
    let result = t
        .call("github_get_repo", json!({"owner": OWNER, "repo": "repo-2"}))
        .await;
    assert_eq!(result["isError"], json!(false), "{result}");
    let repo: Value = serde_json::from_str(text(&result, 0)).unwrap();
    assert_eq!(repo["full_name"], "octo-fixture/repo-2");
    assert_eq!(repo["private"], true);
    assert_eq!(repo["default_branch"], "main");
    assert_eq!(repo["owner"], OWNER);
    assert_eq!(text(&result, 1), "GitHub rate limit remaining: 4999");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_file_returns_the_decoded_content_at_the_ref() {
    let t = setup().await;
    let file = t
        .data(
            "github_read_file",
            json!({"owner": OWNER, "repo": "repo-1", "path": "src/lib.rs"}),
        )
        .await;
    assert_eq!(file["content"], files()[1].1, "base64 lines decoded");
    assert_eq!(file["path"], "src/lib.rs");
    let on_branch = t
        .data(
            "github_read_file",
            json!({"owner": OWNER, "repo": "repo-1", "path": "README.md", "ref": "feature/x"}),
        )
        .await;
    assert_eq!(on_branch["content"], "# repo-1 on feature/x\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_file_on_a_directory_is_a_tool_error_listing_its_entries() {
    let t = setup().await;
    let message = t
        .error(
            "github_read_file",
            json!({"owner": OWNER, "repo": "repo-1", "path": "docs"}),
        )
        .await;
    assert!(message.contains("docs is a directory"), "{message}");
    assert!(message.contains("guide.md"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_file_over_the_size_limit_is_a_tool_error() {
    let t = setup().await;
    let message = t
        .error(
            "github_read_file",
            json!({"owner": OWNER, "repo": "repo-1", "path": BIG_FILE}),
        )
        .await;
    assert!(
        message.contains("over this tool's 1024 KiB limit"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_branches_pages_through_the_branches() {
    let t = setup().await;
    let page = |n: u32| {
        t.data(
            "github_list_branches",
            json!({"owner": OWNER, "repo": "repo-1", "per_page": 2, "page": n}),
        )
    };
    let first = page(1).await;
    assert_eq!(first[0]["name"], "main");
    assert_eq!(first[0]["protected"], true);
    assert_eq!(first[0]["sha"].as_str().unwrap().len(), 40);
    assert_eq!(first[1]["name"], "feature/x");
    let second = page(2).await;
    assert_eq!(second.as_array().unwrap().len(), 1);
    assert_eq!(second[0]["name"], "fix/typo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_issues_filters_by_state_and_marks_pull_requests() {
    let t = setup().await;
    let open = t
        .data(
            "github_list_issues",
            json!({"owner": OWNER, "repo": "repo-1"}),
        )
        .await;
    assert_eq!(numbers(&open), [1, 3, HUGE_PR]);
    assert_eq!(open[0]["is_pull_request"], false);
    assert_eq!(open[0]["labels"], json!(["bug"]));
    assert_eq!(open[1]["is_pull_request"], true);
    let closed = t
        .data(
            "github_list_issues",
            json!({"owner": OWNER, "repo": "repo-1", "state": "closed"}),
        )
        .await;
    assert_eq!(numbers(&closed), [2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_issue_comes_with_its_comments() {
    let t = setup().await;
    let issue = t
        .data(
            "github_get_issue",
            json!({"owner": OWNER, "repo": "repo-1", "number": 1}),
        )
        .await;
    assert_eq!(issue["title"], "Crash when the config file is missing");
    assert_eq!(issue["body"], "Steps: delete config.toml, run.");
    let comments: Vec<&str> = issue["comment_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        comments,
        ["I can reproduce this on main.", "Fixed by #3, I think."]
    );
    assert_eq!(issue["comment_list"][0]["user"], OWNER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pull_requests_returns_them_with_their_branches() {
    let t = setup().await;
    let pulls = t
        .data(
            "github_list_pull_requests",
            json!({"owner": OWNER, "repo": "repo-1", "state": "all"}),
        )
        .await;
    assert_eq!(numbers(&pulls), [3, HUGE_PR]);
    assert_eq!(pulls[0]["title"], "Add a default config");
    assert_eq!(pulls[0]["head"], "feature/x");
    assert_eq!(pulls[0]["base"], "main");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_request_diff_is_githubs_unified_diff() {
    let t = setup().await;
    let result = t
        .call(
            "github_get_pull_request_diff",
            json!({"owner": OWNER, "repo": "repo-1", "number": 3}),
        )
        .await;
    assert_eq!(result["isError"], json!(false), "{result}");
    assert_eq!(text(&result, 0), DIFF);
    assert_eq!(text(&result, 1), "GitHub rate limit remaining: 4999");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_request_diff_over_the_size_limit_is_a_tool_error() {
    let t = setup().await;
    let message = t
        .error(
            "github_get_pull_request_diff",
            json!({"owner": OWNER, "repo": "repo-1", "number": HUGE_PR}),
        )
        .await;
    assert!(message.contains("larger than 1024 KiB"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_issues_answers_githubs_matches() {
    let t = setup().await;
    let found = t
        .data(
            "github_search_issues",
            json!({"query": "config repo:octo-fixture/repo-1"}),
        )
        .await;
    assert_eq!(found["total_count"], 2);
    assert_eq!(found["incomplete_results"], false);
    assert_eq!(numbers(&found["items"]), [1, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_code_answers_the_files_that_match() {
    let t = setup().await;
    let found = t
        .data("github_search_code", json!({"query": "load_config"}))
        .await;
    assert_eq!(found["total_count"], 1);
    assert_eq!(found["items"][0]["path"], "src/lib.rs");
    assert_eq!(found["items"][0]["repository"], "octo-fixture/repo-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_repository_is_a_404_tool_error_with_githubs_message() {
    let t = setup().await;
    let message = t
        .error(
            "github_get_repo",
            json!({"owner": OWNER, "repo": "no-such-repo"}),
        )
        .await;
    assert!(message.contains("404"), "{message}");
    assert!(message.contains("no access"), "{message}");
    assert!(message.contains("GitHub says: Not Found"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_rate_limit_is_a_tool_error_saying_when_it_resets() {
    let t = setup().await;
    t.fake.set_rate_limited(true);
    let message = t
        .error(
            "github_list_issues",
            json!({"owner": OWNER, "repo": "repo-1"}),
        )
        .await;
    assert!(message.contains("rate limit is exhausted"), "{message}");
    assert!(message.contains("it resets at 20"), "{message}");
    assert!(
        message.contains("API rate limit exceeded for user ID 4242"),
        "{message}"
    );
    t.fake.set_rate_limited(false);
    t.data(
        "github_list_issues",
        json!({"owner": OWNER, "repo": "repo-1"}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_failure_is_a_tool_error_with_githubs_messages() {
    let t = setup().await;
    let message = t
        .error(
            "github_search_issues",
            json!({"query": "bug repo:someone-else/private"}),
        )
        .await;
    assert!(message.contains("422"), "{message}");
    assert!(message.contains("Validation Failed"), "{message}");
    assert!(
        message.contains("cannot be searched either because the resources do not exist"),
        "{message}"
    );
    let empty = t.error("github_search_code", json!({"query": " "})).await;
    assert!(empty.contains("q is missing"), "{empty}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_path_arguments_never_reach_another_endpoint() {
    let t = setup().await;
    let before = t.fake.paths_seen().len();
    for (tool, args) in [
        (
            "github_get_repo",
            json!({"owner": "../../user", "repo": "x"}),
        ),
        (
            "github_get_repo",
            json!({"owner": OWNER, "repo": "repo-1/../../../user"}),
        ),
        ("github_list_issues", json!({"owner": OWNER, "repo": ".."})),
        (
            "github_read_file",
            json!({"owner": OWNER, "repo": "repo-1", "path": "../../../../user"}),
        ),
        (
            "github_read_file",
            json!({"owner": OWNER, "repo": "repo-1", "path": "%2e%2e/%2e%2e/%2e%2e/%2e%2e/user"}),
        ),
        (
            "github_read_file",
            json!({"owner": OWNER, "repo": "repo-1", "path": "README.md?x=/user#"}),
        ),
        (
            "github_read_file",
            json!({"owner": OWNER, "repo": "repo-1", "path": "README.md", "ref": "../../../../user"}),
        ),
    ] {
        let result = t.call(tool, args.clone()).await;
        assert_eq!(result["isError"], json!(true), "{args}: {result}");
    }
    let seen = t.fake.paths_seen()[before..].to_vec();
    let contents = format!("/repos/{OWNER}/repo-1/contents/");
    assert!(
        seen.iter().all(|p| p.starts_with(&contents)),
        "every request stayed inside the contents endpoint: {seen:?}"
    );
    assert_eq!(
        seen,
        [
            format!("{contents}%252e%252e/%252e%252e/%252e%252e/%252e%252e/user"),
            format!("{contents}README.md%3Fx%3D/user%23"),
            format!("{contents}README.md"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_without_repo_read_gets_403_insufficient_scope_for_every_read_tool() {
    let t = setup().await;
    let client = register(&t.broker.url).await;
    let narrow = token_with_scope(&t.broker, &client, "profile").await;
    let calls_before = t.fake.counters().api_calls;
    for tool in READ_TOOLS {
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": tool, "arguments": {"owner": OWNER, "repo": "repo-1"}}});
        let (status, headers, _) = mcp_post(&t.broker.mcp_url(), Some(&narrow), None, body).await;
        assert_eq!(status, 403, "{tool}");
        let challenge = headers["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains("error=\"insufficient_scope\""),
            "{tool}: {challenge}"
        );
        assert!(
            challenge.contains("scope=\"profile repo:read\""),
            "{tool}: {challenge}"
        );
    }
    assert_eq!(
        t.fake.counters().api_calls,
        calls_before,
        "no refused call reached GitHub"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_tools_declare_their_arguments_and_that_they_only_read() {
    let t = setup().await;
    let mcp = t.broker.mcp_url();
    let session = open_mcp_session(&mcp, &t.token).await;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let (_, _, body) = mcp_post(&mcp, Some(&t.token), Some(&session), list).await;
    let tools = body.unwrap()["result"]["tools"].as_array().unwrap().clone();
    let tool = |name: &str| tools.iter().find(|t| t["name"] == name).cloned().unwrap();
    for name in READ_TOOLS {
        let tool = tool(name);
        assert_eq!(tool["annotations"]["readOnlyHint"], true, "{name}");
        assert!(!tool["description"].as_str().unwrap().is_empty(), "{name}");
        assert_eq!(tool["inputSchema"]["type"], "object", "{name}");
    }
    let read_file = tool("github_read_file");
    let required: Vec<&str> = read_file["inputSchema"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["owner", "repo", "path"]);
    let properties = &read_file["inputSchema"]["properties"];
    assert!(properties["ref"]["description"].is_string(), "{properties}");
    let search = tool("github_search_code");
    assert_eq!(search["inputSchema"]["required"], json!(["query"]));
}
