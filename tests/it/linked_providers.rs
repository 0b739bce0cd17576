//! Several providers per grant: a tool that needs a provider the grant lacks
//! gets a step-up challenge, and the re-authorization links that provider to
//! the same grant.

use serde_json::{Value, json};

use crate::support::oauth_client::{
    Client, REDIRECT_URI, authorize_url, follow_with_jar, grant_of, keep_cookies, location,
    mcp_post, open_consent, open_mcp_session, pkce, query_param, redeem, register, sign_in,
    submit_consent,
};
use crate::support::{FakeGithub, Mode, TestBroker, TestDb, start_broker_full};

const SCOPES: &str = r#"
[[scopes]]
name = "profile"
upstream = ["read:user"]
default = true

[[scopes]]
name = "repo:read"
upstream = ["repo"]
default = true

[[scopes]]
name = "repo:write"
implies = ["repo:read"]
upstream = ["repo"]

[[scopes]]
name = "gitlab:profile"
description = "See your GitLab profile"
upstream = ["read_user"]
provider = "gitlab"
"#;

/// The broker with GitHub for sign-in and a second provider, `gitlab`
/// (another fake speaking the same wire format as someone else).
async fn start() -> (TestDb, FakeGithub, FakeGithub, TestBroker) {
    let db = TestDb::sqlite();
    let github = FakeGithub::start(Mode::OAuthApp).await;
    let gitlab = FakeGithub::start(Mode::GitHubApp).await;
    gitlab.set_user("gitlab-octo", 77);
    let gitlab_toml = gitlab
        .provider_toml()
        .replace("id = \"github\"", "id = \"gitlab\"")
        .replace("GitHub (fake)", "GitLab (fake)");
    let broker = start_broker_full(
        &db,
        &[
            ("github.toml", github.provider_toml()),
            ("gitlab.toml", gitlab_toml),
        ],
        &[],
        Some(SCOPES),
    )
    .await;
    (db, github, gitlab, broker)
}

async fn account_whoami(broker: &TestBroker, token: &str, provider: &str) -> (u16, String, Value) {
    let session = open_mcp_session(&broker.mcp_url(), token).await;
    let (status, headers, body) = mcp_post(
        &broker.mcp_url(),
        Some(token),
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
               "params": {"name": "account_whoami", "arguments": {"provider": provider}}}),
    )
    .await;
    let challenge = headers
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (
        status,
        challenge,
        body.map(|b| b["result"].clone()).unwrap_or(Value::Null),
    )
}

/// The browser dance for `scope` (consent, then every upstream leg), and
/// the token the code redeems for.
async fn authorize_scope(broker: &TestBroker, client: &Client, scope: &str) -> String {
    let verifier = pkce();
    let url = format!(
        "{}&scope={}",
        authorize_url(&broker.url, client, &verifier, "st"),
        scope.replace(' ', "%20").replace(':', "%3A")
    );
    let page = open_consent(&url).await;
    let approved = submit_consent(&broker.url, &page, "approve", Some(&page.cookie)).await;
    assert_eq!(approved.status(), 303);
    let mut jar = vec![];
    keep_cookies(&approved, &mut jar);
    let back = follow_with_jar(location(&approved), &mut jar, REDIRECT_URI).await;
    let code = query_param(&back, "code").expect("a code after every leg");
    let response = redeem(&broker.url, client, &code, &verifier).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    tokens["access_token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_on_an_unlinked_provider_steps_up_and_links_it_to_the_same_grant() {
    let (_db, github, gitlab, broker) = start().await;
    let first = sign_in(&broker.url).await;
    let grant = grant_of(&first.access_token);

    let (status, challenge, _) = account_whoami(&broker, &first.access_token, "gitlab").await;
    assert_eq!(status, 403);
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    assert!(challenge.contains("gitlab:profile"), "{challenge}");

    // The client re-authorizes with the scope the challenge named:
    // GitHub first (who the user is), then GitLab, then back to the client.
    let second = &authorize_scope(&broker, &first.client, "profile repo:read gitlab:profile").await;

    assert_eq!(
        grant_of(second),
        grant,
        "the step-up extends the same grant"
    );
    let (status, _, result) = account_whoami(&broker, second, "gitlab").await;
    assert_eq!(status, 200);
    let who: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(who["login"], "gitlab-octo", "{result}");
    let (status, _, result) = account_whoami(&broker, second, "github").await;
    assert_eq!(status, 200);
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("octo-fixture")
    );

    let links: Vec<String> = broker
        .state
        .store
        .upstream_links_of_grant(&grant)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.provider)
        .collect();
    assert_eq!(links, ["github", "gitlab"]);
    // Each provider was asked only for its own scopes.
    assert_eq!(gitlab.counters().code_exchanges, 1);
    assert_eq!(gitlab.last_authorize_scope().as_deref(), Some("read_user"));
    assert_eq!(github.counters().code_exchanges, 2);
    assert!(
        !github
            .last_authorize_scope()
            .unwrap_or_default()
            .contains("read_user")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sign_in_asking_for_two_providers_links_both_before_issuing_a_code() {
    let (_db, github, gitlab, broker) = start().await;
    let client = register(&broker.url).await;
    let token = &authorize_scope(&broker, &client, "profile gitlab:profile").await;
    let (status, _, result) = account_whoami(&broker, token, "gitlab").await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(github.counters().code_exchanges, 1);
    assert_eq!(gitlab.counters().code_exchanges, 1);
    // One consent page, one consent; one upstream token stored per leg.
    let count = |kind: &str| {
        let filter = mcp_broker::audit::AuditFilter {
            kind: Some(kind.into()),
            ..Default::default()
        };
        let store = broker.state.store.clone();
        async move { store.audit_events(&filter, 10).await.unwrap() }
    };
    assert_eq!(count("consent.granted").await.len(), 1);
    let stored = count("upstream.stored").await;
    let providers: Vec<_> = stored.iter().map(|e| e.provider.as_deref()).collect();
    assert_eq!(providers, [Some("github"), Some("gitlab")]);
    assert_eq!(count("grant.created").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_provider_that_ended_the_link_gets_its_leg_again() {
    let (db, _github, gitlab, broker) = start().await;
    let client = register(&broker.url).await;
    let token = authorize_scope(&broker, &client, "profile gitlab:profile").await;
    // GitLab refused the refresh token for good.
    db.execute("UPDATE upstream_links SET reauth_required_at = 1 WHERE provider = 'gitlab'")
        .await;
    let (status, _, _) = account_whoami(&broker, &token, "gitlab").await;
    assert_eq!(status, 401);

    let again = authorize_scope(&broker, &client, "profile gitlab:profile").await;
    assert_eq!(grant_of(&again), grant_of(&token));
    assert_eq!(
        gitlab.counters().code_exchanges,
        2,
        "GitLab's leg ran again"
    );
    let (status, _, result) = account_whoami(&broker, &again, "gitlab").await;
    assert_eq!(status, 200, "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_abandoned_between_its_legs_has_its_grant_revoked_upstream_by_the_upkeep() {
    let (_db, github, gitlab, broker) = start().await;
    let client = register(&broker.url).await;
    let url = format!(
        "{}&scope=profile%20gitlab%3Aprofile",
        authorize_url(&broker.url, &client, &pkce(), "st")
    );
    let page = open_consent(&url).await;
    let approved = submit_consent(&broker.url, &page, "approve", Some(&page.cookie)).await;
    let mut jar = vec![];
    keep_cookies(&approved, &mut jar);
    // GitHub's leg completes; the user never comes back from GitLab's.
    follow_with_jar(location(&approved), &mut jar, &gitlab.url).await;
    let store = &broker.state.store;
    let grant = store
        .audit_events(
            &mcp_broker::audit::AuditFilter {
                kind: Some("grant.created".into()),
                ..Default::default()
            },
            10,
        )
        .await
        .unwrap()
        .remove(0)
        .grant_id
        .unwrap();
    assert_eq!(
        store.upstream_links_of_grant(&grant).await.unwrap().len(),
        1
    );

    // Within the hour it may still be a sign-in in progress.
    let now = mcp_broker::now_unix();
    mcp_broker::app::upkeep(&broker.state, now).await;
    assert!(!store.grant_status(&grant).await.unwrap().unwrap().revoked);
    assert!(github.revoked_tokens().is_empty());

    // Past the pending leg's expiry and the hour: no one can finish it.
    mcp_broker::app::upkeep(&broker.state, now + 2 * 3600).await;
    assert!(store.grant_status(&grant).await.unwrap().unwrap().revoked);
    assert_eq!(github.revoked_tokens().len(), 1, "GitHub's token revoked");
    assert!(
        store
            .upstream_links_of_grant(&grant)
            .await
            .unwrap()
            .is_empty()
    );
}
