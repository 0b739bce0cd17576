//! Real MCP clients call every tool against the fake GitHub: the TypeScript
//! SDK v1 (`tests/clients/ts/tools.mjs`) and the Python SDK
//! (`tests/clients/python/tools.py`) sign in, list the tools and make the
//! calls of `tests/clients/tools.json`. Every tool answers with the fake's
//! data, the write tools change the fake, and the read tools called after the
//! writes see the changes. The TypeScript client asks for `repo:write` when it
//! signs in; the Python SDK signs in with the defaults and steps up when the
//! first write tool gets 403 `insufficient_scope`.
//!
//! Each script runs once per test binary, shared by its SDK's tests. What the
//! tools answered is compared with the fake's repository as it was before the
//! run (the seed) and after it, read back from the fake itself.

use std::collections::BTreeSet;

use mcp_broker::mcp::tools::TOOLS;
use mcp_broker::mcp::tools::accounts::ACCOUNT_WHOAMI;
use mcp_broker::oauth::scope::ScopeCatalog;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::sdk_clients::{python_ready, repo_root, run_client, skip_or_fail, ts_ready};
use crate::support::fake_github::repos::{REPOS, sha};
use crate::support::fake_github::{Counters, LOGIN, Repository, USER_ID};
use crate::support::{FakeGithub, Mode, TestDb, start_broker};

/// The repository the plan reads and writes.
const REPO: &str = "repo-1";
/// What a grant that may write holds: the default scopes and `repo:write`.
const WRITE_SCOPE: &str = "profile repo:read repo:write";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_calls_every_tool_and_gets_the_fakes_data() {
    let Some(run) = typescript_run().await else {
        return;
    };
    assert_every_tool_answers_with_the_fakes_data(run);
}

/// It asked for `repo:write` up front: one sign-in, every tool listed from
/// the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_signs_in_for_repo_write_and_write_tools_change_the_fake() {
    let Some(run) = typescript_run().await else {
        return;
    };
    assert_eq!(run.listed("at_sign_in"), every_tool(), "TypeScript SDK");
    assert_eq!(run.counters.code_exchanges, 1, "one sign-in at GitHub");
    assert_write_tools_change_the_fake(run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_calls_every_tool_and_gets_the_fakes_data() {
    let Some(run) = python_run().await else {
        return;
    };
    assert_every_tool_answers_with_the_fakes_data(run);
}

/// Signed in with the defaults, it sees no write tool; the first write call
/// gets 403 `insufficient_scope` and the SDK signs in again for the scope the
/// challenge names (through GitHub again), then retries the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_steps_up_to_repo_write_and_write_tools_change_the_fake() {
    let Some(run) = python_run().await else {
        return;
    };
    assert_eq!(run.listed("at_sign_in"), default_tools(), "Python SDK");
    assert_eq!(run.counters.code_exchanges, 2, "sign-in, then step-up");
    assert_write_tools_change_the_fake(run);
}

/// The TypeScript SDK's run, once per test binary; `None` when skipped.
async fn typescript_run() -> Option<&'static Run> {
    static RUN: OnceCell<Option<Run>> = OnceCell::const_new();
    RUN.get_or_init(|| async {
        match ts_ready().await {
            Ok(()) => Some(Run::of("node", "tests/clients/ts/tools.mjs", "TypeScript SDK").await),
            Err(reason) => {
                skip_or_fail(reason);
                None
            }
        }
    })
    .await
    .as_ref()
}

/// The Python SDK's run, once per test binary; `None` when skipped.
async fn python_run() -> Option<&'static Run> {
    static RUN: OnceCell<Option<Run>> = OnceCell::const_new();
    RUN.get_or_init(|| async {
        match python_ready().await {
            Ok(python) => Some(
                Run::of(
                    python.to_str().unwrap(),
                    "tests/clients/python/tools.py",
                    "Python SDK",
                )
                .await,
            ),
            Err(reason) => {
                skip_or_fail(reason);
                None
            }
        }
    })
    .await
    .as_ref()
}

/// Every tool the broker serves.
fn every_tool() -> BTreeSet<String> {
    TOOLS
        .iter()
        .map(|(name, _, _)| name.to_string())
        .chain([ACCOUNT_WHOAMI.to_string()])
        .collect()
}

/// The tools a grant of the default scopes may call (and sees listed).
fn default_tools() -> BTreeSet<String> {
    let catalog = ScopeCatalog::default();
    let defaults = catalog.defaults();
    TOOLS
        .iter()
        .filter(|(_, scope, _)| catalog.satisfies(&defaults, scope))
        .map(|(name, _, _)| name.to_string())
        .chain([ACCOUNT_WHOAMI.to_string()])
        .collect()
}

/// One script's run against a fresh broker and fake GitHub, kept as data.
struct Run {
    label: &'static str,
    plan: Value,
    /// `{"at_sign_in": [names], "at_end": [names]}`.
    tools: Value,
    /// By call label: `{"is_error": bool, "text": first text block}`.
    results: Value,
    /// The fake's repository before the run, and after it.
    seed: Repository,
    after: Repository,
    counters: Counters,
    /// Every value in the broker's grants table.
    grants: Vec<String>,
}

impl Run {
    async fn of(program: &str, script: &str, label: &'static str) -> Run {
        let db = TestDb::sqlite();
        let fake = FakeGithub::start(Mode::OAuthApp).await;
        let broker = start_broker(&db, &fake).await;
        let seed = fake.repository(REPO);
        let stdout = run_client(program, script, &[&broker.mcp_url()], label).await;
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("TOOL_RESULTS "))
            .unwrap_or_else(|| panic!("{label}: no TOOL_RESULTS line in\n{stdout}"));
        let report: Value = serde_json::from_str(line).unwrap();
        let plan = std::fs::read_to_string(repo_root().join("tests/clients/tools.json")).unwrap();
        Run {
            label,
            plan: serde_json::from_str(&plan).unwrap(),
            tools: report["tools"].clone(),
            results: report["results"].clone(),
            seed,
            after: fake.repository(REPO),
            counters: fake.counters(),
            grants: broker.state.store.dump_table_text("grants").await.unwrap(),
        }
    }

    fn listed(&self, when: &str) -> BTreeSet<String> {
        self.tools[when]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no tool list {when}", self.label))
            .iter()
            .map(|name| name.as_str().unwrap().to_string())
            .collect()
    }

    /// A call's outcome: whether it was a tool error, and its text.
    fn outcome(&self, label: &str) -> (bool, &str) {
        let result = &self.results[label];
        let text = result["text"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no result for {label}", self.label));
        (result["is_error"] == json!(true), text)
    }

    /// A successful call's text.
    fn text(&self, label: &str) -> &str {
        let (is_error, text) = self.outcome(label);
        assert!(!is_error, "{}: {label} failed: {text}", self.label);
        text
    }

    /// A successful call's data (its text, as JSON).
    fn data(&self, label: &str) -> Value {
        let text = self.text(label);
        serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("{}: {label} is not JSON ({e}): {text}", self.label))
    }

    /// An argument the plan gives the call with this label.
    fn argument(&self, label: &str, name: &str) -> &Value {
        self.plan["calls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|call| call.get("label").unwrap_or(&call["tool"]) == label)
            .map(|call| &call["arguments"][name])
            .filter(|value| !value.is_null())
            .unwrap_or_else(|| panic!("the plan gives {label} no {name}"))
    }

    fn text_argument(&self, label: &str, name: &str) -> &str {
        self.argument(label, name).as_str().unwrap()
    }
}

/// Branches as the list tool shows them: (name, head).
fn branch_heads(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let field = |name: &str| b[name].as_str().unwrap().to_string();
            (field("name"), field("sha"))
        })
        .collect()
}

/// Issues (the tools' summaries or the fake's own) as [number, title,
/// state, comments].
fn issue_lines(issues: &[Value]) -> Vec<Value> {
    issues
        .iter()
        .map(|i| json!([i["number"], i["title"], i["state"], i["comments"]]))
        .collect()
}

/// Pull requests as [number, title, state, head, base]; the tools name the
/// branches, GitHub's objects carry them as `ref`.
fn pull_lines(pulls: &[Value]) -> Vec<Value> {
    let branch = |side: &Value| side.get("ref").unwrap_or(side).clone();
    pulls
        .iter()
        .map(|p| {
            json!([
                p["number"],
                p["title"],
                p["state"],
                branch(&p["head"]),
                branch(&p["base"])
            ])
        })
        .collect()
}

fn items(list: &Value) -> &[Value] {
    list.as_array().unwrap()
}

/// Each tool, called once before any write, answers without error and with
/// what the fake holds.
fn assert_every_tool_answers_with_the_fakes_data(run: &Run) {
    assert_eq!(run.listed("at_end"), every_tool(), "{}: listed", run.label);
    for tool in every_tool() {
        let (is_error, text) = run.outcome(&tool);
        assert!(!is_error, "{}: {tool} failed: {text}", run.label);
    }
    assert_account_and_repositories_are_the_fakes(run);
    assert_repository_reads_show_the_seed(run);
    assert_search_hits_are_from_the_seed(run);
}

fn assert_account_and_repositories_are_the_fakes(run: &Run) {
    let label = run.label;
    let user = run.data("github_whoami");
    assert_eq!(
        (&user["login"], &user["id"]),
        (&json!(LOGIN), &json!(USER_ID))
    );
    assert_eq!(
        run.data(ACCOUNT_WHOAMI),
        json!({"provider": "github", "subject": USER_ID.to_string(), "login": LOGIN})
    );
    let names: Vec<Value> = items(&run.data("github_list_repos"))
        .iter()
        .map(|r| r["full_name"].clone())
        .collect();
    let fixtures: Vec<Value> = REPOS
        .iter()
        .map(|r| json!(format!("{LOGIN}/{r}")))
        .collect();
    assert_eq!(names, fixtures, "{label}");
    let repo = run.data("github_get_repo");
    assert_eq!(repo["full_name"], format!("{LOGIN}/{REPO}"), "{label}");
    assert_eq!(repo["owner"], LOGIN, "{label}");
}

/// A file, the branches with their heads, the issues, one issue's comments,
/// the pull requests and one diff, as the seed has them.
fn assert_repository_reads_show_the_seed(run: &Run) {
    let (label, seed) = (run.label, &run.seed);
    let file = run.data("github_read_file");
    let path = run.text_argument("github_read_file", "path");
    let content = seed.file("main", path).expect("the seed has the file");
    assert_eq!(file["content"], content, "{label}");
    assert_eq!(file["sha"], sha(content.as_bytes()), "{label}");

    assert_eq!(
        branch_heads(&run.data("github_list_branches")),
        seed.branches,
        "{label}"
    );
    assert_eq!(
        issue_lines(items(&run.data("github_list_issues"))),
        issue_lines(&seed.issues),
        "{label}"
    );
    let number = run.argument("github_get_issue", "number").as_u64().unwrap();
    let issue = run.data("github_get_issue");
    let fixture = seed.issue(number).unwrap();
    assert_eq!(
        (&issue["title"], &issue["body"]),
        (&fixture["title"], &fixture["body"])
    );
    let comments = |list: &[Value]| -> Vec<Value> {
        list.iter().map(|c| json!([c["id"], c["body"]])).collect()
    };
    let seeded = comments(&seed.comments[&number]);
    assert!(
        !seeded.is_empty(),
        "the seed's issue #{number} has comments"
    );
    assert_eq!(comments(items(&issue["comment_list"])), seeded, "{label}");

    assert_eq!(
        pull_lines(items(&run.data("github_list_pull_requests"))),
        pull_lines(&seed.pulls),
        "{label}"
    );
    let number = run
        .argument("github_get_pull_request_diff", "number")
        .as_u64()
        .unwrap();
    assert_eq!(
        run.text("github_get_pull_request_diff"),
        seed.diffs[&number],
        "{label}"
    );
}

fn assert_search_hits_are_from_the_seed(run: &Run) {
    let (label, seed) = (run.label, &run.seed);
    let hits = run.data("github_search_issues");
    assert!(!items(&hits["items"]).is_empty(), "{label}: {hits}");
    for hit in items(&hits["items"]) {
        let fixture = seed.issue(hit["number"].as_u64().unwrap()).unwrap();
        assert_eq!(hit["title"], fixture["title"], "{label}");
    }
    let hits = run.data("github_search_code");
    assert!(!items(&hits["items"]).is_empty(), "{label}: {hits}");
    for hit in items(&hits["items"]) {
        assert_eq!(hit["repository"], format!("{LOGIN}/{REPO}"), "{label}");
        let path = hit["path"].as_str().unwrap();
        assert!(seed.file("main", path).is_some(), "{label}: {path}");
    }
}

/// The write calls reach the fake once each and change it as asked, under a
/// grant that holds `repo:write`; the read tools called after the writes
/// show the fake's new state.
fn assert_write_tools_change_the_fake(run: &Run) {
    let label = run.label;
    assert_eq!(run.listed("at_end"), every_tool(), "{label}: listed");
    assert!(
        run.grants.iter().any(|v| v == WRITE_SCOPE),
        "{label}: a grant holds {WRITE_SCOPE}: {:?}",
        run.grants
    );
    let writes = [
        "create_branch",
        "put_file",
        "open_pull_request",
        "create_issue",
        "comment",
    ];
    for tool in writes {
        run.data(&format!("github_{tool}"));
    }
    assert_eq!(run.counters.writes, writes.len(), "{label}: one write each");
    assert_the_new_branch_holds_the_put_file(run);
    assert_the_pull_request_shows_the_file(run);
    assert_the_new_issue_has_the_comment(run);
}

/// A branch from `main`, then a file on it: the branch moves to the put's
/// commit, `main` stays; the file reads back, and is listed in its directory.
fn assert_the_new_branch_holds_the_put_file(run: &Run) {
    let (label, seed, after) = (run.label, &run.seed, &run.after);
    let branch = run.text_argument("github_create_branch", "branch");
    let path = run.text_argument("github_put_file", "path");
    let content = run.text_argument("github_put_file", "content");
    let main = seed
        .branches
        .iter()
        .find(|(name, _)| name == "main")
        .unwrap();
    assert_eq!(run.data("github_create_branch")["sha"], main.1, "{label}");
    let put = run.data("github_put_file");
    let mut branches = seed.branches.clone();
    branches.push((
        branch.to_string(),
        put["commit"].as_str().unwrap().to_string(),
    ));
    assert_eq!(
        after.branches, branches,
        "{label}: the branch, at the put's commit"
    );
    assert_eq!(after.file(branch, path), Some(content), "{label}");
    assert_eq!(after.file("main", path), None, "{label}: main is untouched");
    assert_eq!(
        branch_heads(&run.data("branches_after_writes")),
        after.branches,
        "{label}"
    );

    let file = run.data("new_file");
    assert_eq!(file["content"], content, "{label}");
    assert_eq!(file["sha"], put["sha"], "{label}");
    assert_eq!(
        put["sha"],
        sha(content.as_bytes()),
        "{label}: the fake's blob id"
    );
    let (is_error, listing) = run.outcome("new_file_in_its_directory");
    assert!(is_error, "{label}: a directory is no file: {listing}");
    let dir = format!(
        "{}/",
        run.text_argument("new_file_in_its_directory", "path")
    );
    for (file, _) in &after.files[branch] {
        if let Some(name) = file.strip_prefix(&dir) {
            assert!(listing.contains(name), "{label}: {name} in {listing}");
        }
    }
}

/// A pull request from the new branch, listed, whose diff adds the file; a
/// second one for the same head is GitHub's 422 and changes nothing.
fn assert_the_pull_request_shows_the_file(run: &Run) {
    let (label, seed, after) = (run.label, &run.seed, &run.after);
    let branch = run.text_argument("github_create_branch", "branch");
    let number = run.data("github_open_pull_request")["number"]
        .as_u64()
        .unwrap();
    assert!(seed.pull(number).is_none(), "{label}: #{number} is new");
    let title = run.text_argument("github_open_pull_request", "title");
    assert_eq!(
        pull_lines(std::slice::from_ref(after.pull(number).unwrap())),
        [json!([number, title, "open", branch, "main"])],
        "{label}"
    );
    assert_eq!(after.pulls.len(), seed.pulls.len() + 1, "{label}: one");
    assert_eq!(
        pull_lines(items(&run.data("pull_requests_after_writes"))),
        pull_lines(&after.pulls),
        "{label}"
    );

    let diff = run.text("new_pull_request_diff");
    assert_eq!(diff, after.diffs[&number], "{label}");
    let path = run.text_argument("github_put_file", "path");
    let added: String = run
        .text_argument("github_put_file", "content")
        .lines()
        .map(|l| format!("+{l}\n"))
        .collect();
    assert!(
        diff.contains(&format!("+++ b/{path}\n")) && diff.contains(&added),
        "{label}: the diff adds the file: {diff}"
    );

    let (is_error, refusal) = run.outcome("second_pull_request");
    assert!(is_error, "{label}: {refusal}");
    assert!(
        refusal.contains(&format!(
            "A pull request already exists for {LOGIN}:{branch}."
        )),
        "{label}: {refusal}"
    );
}

/// An issue as asked (title, body, labels) with the comment; the issue read
/// back and the list after the writes show both.
fn assert_the_new_issue_has_the_comment(run: &Run) {
    let (label, seed, after) = (run.label, &run.seed, &run.after);
    let number = run.data("github_create_issue")["number"].as_u64().unwrap();
    assert!(seed.issue(number).is_none(), "{label}: #{number} is new");
    let created = after.issue(number).unwrap();
    for field in ["title", "body"] {
        let asked = run.text_argument("github_create_issue", field);
        assert_eq!(created[field], asked, "{label}: {field}");
    }
    let labels: Vec<&Value> = items(&created["labels"])
        .iter()
        .map(|l| &l["name"])
        .collect();
    let asked: Vec<&Value> = items(run.argument("github_create_issue", "labels"))
        .iter()
        .collect();
    assert_eq!(labels, asked, "{label}");
    let bodies =
        |list: &[Value]| -> Vec<Value> { list.iter().map(|c| c["body"].clone()).collect() };
    assert_eq!(
        bodies(&after.comments[&number]),
        [json!(run.text_argument("github_comment", "body"))],
        "{label}"
    );

    let shown = run.data("new_issue");
    assert_eq!(
        issue_lines(std::slice::from_ref(&shown)),
        issue_lines(std::slice::from_ref(created)),
        "{label}"
    );
    assert_eq!(shown["body"], created["body"], "{label}");
    assert_eq!(
        bodies(items(&shown["comment_list"])),
        bodies(&after.comments[&number]),
        "{label}"
    );
    assert_eq!(
        issue_lines(items(&run.data("issues_after_writes"))),
        issue_lines(&after.issues),
        "{label}"
    );
    assert_eq!(
        after.issues.len(),
        seed.issues.len() + 2,
        "{label}: the pull request and the issue"
    );
}
