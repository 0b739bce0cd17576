//! The operator commands, run as the real binary after real sign-ins
//! through the fake GitHub: `grants list | show`, `clients list | show |
//! delete`, `users list`. Output maps our grants to their upstream links
//! and never carries a token.

use serde_json::Value;

use crate::support::fake_github::{CLIENT_SECRET, LOGIN};
use crate::support::oauth_client::{
    Session, grant_of, mcp_status, register_named, sign_in, sign_in_with,
};
use crate::support::process::operator_command as cli;
use crate::support::{FakeGithub, Mode, TestBroker, TestDb, start_broker};

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Every secret a sign-in produced: our tokens, the upstream tokens and
/// the fake's own secrets.
async fn secrets(broker: &TestBroker, fake: &FakeGithub, sessions: &[&Session]) -> Vec<String> {
    let mut all = vec![CLIENT_SECRET.to_string()];
    for s in sessions {
        all.push(s.access_token.clone());
        all.push(s.refresh_token.clone());
        all.push(s.code.clone());
        if let Ok(upstream) = broker.github_token(&s.access_token).await {
            all.push(upstream.access_token);
        }
    }
    all.extend(fake.issued_secrets());
    all
}

fn assert_no_secret(text: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret leaked into: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_show_maps_our_grant_to_its_upstream_link_without_any_token() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::GitHubApp).await;
    let broker = start_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    let grant = grant_of(&session.access_token);
    let stored = broker.github_link(&session.access_token).await.unwrap();
    let secrets = secrets(&broker, &fake, &[&session]).await;
    assert!(stored.expires_at.is_some() && stored.refresh_token_enc.is_some());

    let (ok, out, err) = cli(&broker, &db, &fake, &["grants", "show", &grant, "--json"]);
    assert!(ok, "{err}");
    assert_no_secret(&(out.clone() + &err), &secrets);
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["id"], grant.as_str());
    assert_eq!(shown["status"], "live");
    assert_eq!(shown["user"]["provider"], "github");
    assert_eq!(shown["user"]["login"], LOGIN);
    assert_eq!(shown["client"]["id"], session.client.client_id.as_str());
    assert_eq!(shown["client"]["name"], "rust-test-client");
    assert_eq!(shown["link_count"], 1);
    let links = shown["upstream_links"].as_array().unwrap();
    assert_eq!(links.len(), 1, "{shown}");
    let link = &links[0];
    assert_eq!(link["provider"], "github");
    assert_eq!(link["status"], "live");
    let scopes: Vec<&str> = stored
        .scopes
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(link["scopes"], serde_json::json!(scopes));
    assert_eq!(link["expires_at"], stored.expires_at.unwrap());
    assert_eq!(link["has_refresh_token"], true);
    assert_eq!(
        link["refresh_expires_at"],
        serde_json::json!(stored.refresh_expires_at)
    );
    assert_eq!(link["created_at"], stored.created_at);
    assert_eq!(link["kek_id"], serde_json::json!(stored.kek_id));

    let (ok, out, err) = cli(&broker, &db, &fake, &["grants", "show", &grant]);
    assert!(ok, "{err}");
    assert_no_secret(&out, &secrets);
    assert!(out.contains(&format!("github:{LOGIN}")), "{out}");
    let expiry = mcp_broker::utc::format_time(stored.expires_at.unwrap());
    let link_line = out.lines().find(|l| l.starts_with("github ")).unwrap();
    assert!(
        link_line.contains("live") && link_line.contains(&expiry),
        "{out}"
    );

    // The status follows the link: expired with a refresh token, then
    // refused by the provider.
    db.execute("UPDATE upstream_links SET expires_at = 1").await;
    let (_, out, _) = cli(&broker, &db, &fake, &["grants", "show", &grant, "--json"]);
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["upstream_links"][0]["status"], "expired_refreshable");
    db.execute(
        "UPDATE upstream_links SET reauth_required_at = 2, reauth_reason = 'bad_refresh_token'",
    )
    .await;
    let (_, out, _) = cli(&broker, &db, &fake, &["grants", "show", &grant]);
    assert!(out.contains("needs_reauth (bad_refresh_token)"), "{out}");

    let (ok, _, err) = cli(&broker, &db, &fake, &["grants", "show", "no such id"]);
    assert!(!ok && err.contains("grant id must be"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_list_filters_by_user_client_provider_and_status() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let one = sign_in_with(&broker.url, register_named(&broker.url, "one").await).await;
    let two = sign_in_with(&broker.url, register_named(&broker.url, "two").await).await;
    let (g1, g2) = (grant_of(&one.access_token), grant_of(&two.access_token));
    let (ok, out, err) = cli(&broker, &db, &fake, &["grants", "revoke", &g1]);
    assert!(ok, "{out}{err}");
    let user = broker
        .state
        .store
        .grant_status(&g2)
        .await
        .unwrap()
        .unwrap()
        .user_id;

    let ids = |args: &[&str]| {
        let mut full = vec!["grants", "list", "--json"];
        full.extend_from_slice(args);
        let (ok, out, err) = cli(&broker, &db, &fake, &full);
        assert!(ok, "{args:?}: {err}");
        json_lines(&out)
            .iter()
            .map(|g| g["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let both = ids(&[]);
    assert_eq!(both.len(), 2);
    assert!(both.contains(&g1) && both.contains(&g2));
    assert_eq!(ids(&["--status", "live"]), [g2.as_str()]);
    assert_eq!(ids(&["--status", "revoked"]), [g1.as_str()]);
    assert_eq!(ids(&["--client", &one.client.client_id]), [g1.as_str()]);
    assert_eq!(ids(&["--user", &user]).len(), 2);
    assert_eq!(ids(&["--provider", "github"]).len(), 2);
    assert!(ids(&["--provider", "gitlab"]).is_empty());
    assert_eq!(ids(&["--limit", "1"]).len(), 1);

    let (ok, out, _) = cli(&broker, &db, &fake, &["grants", "list"]);
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("GRANT") && lines[0].contains("STATUS"));
    assert!(out.contains(&format!("github:{LOGIN}")), "{out}");
    let (ok, out, err) = cli(&broker, &db, &fake, &["grants", "list", "--client", "x"]);
    assert!(
        ok && out.is_empty() && err.contains("no grants match"),
        "{err}"
    );
    let (ok, _, err) = cli(
        &broker,
        &db,
        &fake,
        &["grants", "list", "--status", "maybe"],
    );
    assert!(!ok && err.contains("live or revoked"), "{err}");
    let (ok, _, _) = cli(&broker, &db, &fake, &["grants", "list", "--limit", "0"]);
    assert!(!ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_delete_revokes_the_clients_grants_upstream_and_records_client_deleted() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let gone = sign_in_with(&broker.url, register_named(&broker.url, "gone").await).await;
    let kept = sign_in_with(&broker.url, register_named(&broker.url, "kept").await).await;
    let client = gone.client.client_id.clone();
    let upstream = broker.github_token(&gone.access_token).await.unwrap();

    let (ok, out, err) = cli(&broker, &db, &fake, &["clients", "show", &client, "--json"]);
    assert!(ok, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["kind"], "dcr");
    assert_eq!(shown["live_grants"], 1);
    assert_eq!(shown["confidential"], false);
    assert_eq!(shown["name"], "gone");
    assert_eq!(
        shown["redirect_uris"],
        serde_json::json!([crate::support::oauth_client::REDIRECT_URI])
    );

    let (ok, out, err) = cli(&broker, &db, &fake, &["clients", "delete", &client]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&format!(
            "client {client} deleted; 1 grant(s) revoked; 1 upstream link(s) revoked"
        )),
        "{out}"
    );
    assert_eq!(mcp_status(&broker.mcp_url(), &gone.access_token).await, 401);
    assert_eq!(fake.revoked_tokens(), [upstream.access_token.as_str()]);
    assert!(!fake.token_is_live(&upstream.access_token));
    assert_eq!(mcp_status(&broker.mcp_url(), &kept.access_token).await, 200);
    assert_eq!(broker.state.store.get_client(&client).await.unwrap(), None);

    let filter = mcp_broker::store::AuditFilter {
        kind: Some("client.deleted".into()),
        ..Default::default()
    };
    let events = broker.state.store.audit_events(&filter, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor, "operator:ops-alice");
    assert_eq!(events[0].client_id.as_deref(), Some(client.as_str()));
    assert_eq!(events[0].outcome, "ok");
    let detail = events[0].detail.as_deref().unwrap();
    assert!(detail.starts_with("clients delete: client"), "{detail}");
    assert!(detail.contains(&grant_of(&gone.access_token)), "{detail}");

    let (ok, out, _) = cli(&broker, &db, &fake, &["clients", "list", "--json"]);
    assert!(ok);
    let listed = json_lines(&out);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], kept.client.client_id.as_str());
    assert_eq!(listed[0]["live_grants"], 1);
    let (ok, _, err) = cli(&broker, &db, &fake, &["clients", "delete", &client]);
    assert!(!ok && err.contains(&format!("no client {client}")), "{err}");
}

const CONFIDENTIAL: &str = "[[clients]]\nclient_id = \"resource-server\"\n\
    client_name = \"RS\"\nredirect_uris = [\"https://rs.example/cb\"]\n\
    client_secret = \"rs-secret-value-0123456789\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_clients_are_shown_without_their_secret_and_never_deleted() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = crate::support::start_broker_with_settings(&db, &fake, CONFIDENTIAL).await;
    let hash = mcp_broker::tokens::opaque::hash_secret("rs-secret-value-0123456789");

    let (ok, out, err) = cli(&broker, &db, &fake, &["clients", "show", "resource-server"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("config") && out.contains("client_secret_basic"),
        "{out}"
    );
    assert!(out.contains("confidential   yes"), "{out}");
    assert!(
        !out.contains("rs-secret-value") && !out.contains(&hash),
        "{out}"
    );

    let (ok, out, err) = cli(
        &broker,
        &db,
        &fake,
        &["clients", "delete", "resource-server"],
    );
    assert!(!ok, "{out}");
    assert!(err.contains("settings file"), "{err}");
    assert!(
        broker
            .state
            .store
            .get_client("resource-server")
            .await
            .unwrap()
            .is_some()
    );
    let (ok, out, _) = cli(
        &broker,
        &db,
        &fake,
        &["clients", "list", "--kind", "config"],
    );
    assert!(ok && out.contains("resource-server"), "{out}");
    let events = broker
        .state
        .store
        .audit_events(&Default::default(), 10)
        .await
        .unwrap();
    let refused = events.iter().find(|e| e.kind == "client.deleted").unwrap();
    assert!(refused.outcome.starts_with("refused: "), "{refused:?}");
    assert_eq!(refused.actor, "operator:ops-alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_list_shows_live_grants_and_last_activity() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    sign_in(&broker.url).await;
    let secrets = secrets(&broker, &fake, &[&session]).await;

    let (ok, out, err) = cli(&broker, &db, &fake, &["users", "list", "--json"]);
    assert!(ok, "{err}");
    assert_no_secret(&out, &secrets);
    let users = json_lines(&out);
    assert_eq!(users.len(), 1, "{out}");
    assert_eq!(users[0]["login"], LOGIN);
    assert_eq!(users[0]["provider"], "github");
    assert_eq!(users[0]["live_grants"], 2);
    assert!(users[0]["last_seen_at"].as_i64().unwrap() >= users[0]["created_at"].as_i64().unwrap());

    let (ok, out, _) = cli(&broker, &db, &fake, &["users", "list"]);
    assert!(ok);
    assert!(out.starts_with("USER") && out.contains(LOGIN), "{out}");
    let (ok, out, err) = cli(
        &broker,
        &db,
        &fake,
        &["users", "list", "--provider", "gitlab"],
    );
    assert!(
        ok && out.is_empty() && err.contains("no users match"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_whose_audit_record_fails_fails_saying_what_it_did() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let session = sign_in(&broker.url).await;
    db.execute("DROP TABLE audit_head").await;
    let (ok, out, err) = cli(
        &broker,
        &db,
        &fake,
        &["clients", "delete", &session.client.client_id],
    );
    assert!(!ok, "{out}");
    assert!(err.contains("deleted; 1 grant(s) revoked"), "{err}");
    assert!(err.contains("but the audit record failed"), "{err}");
    assert_eq!(
        mcp_status(&broker.mcp_url(), &session.access_token).await,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_list_pages_on_with_the_after_value_it_prints() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let mut signed_in = Vec::new();
    for _ in 0..3 {
        signed_in.push(grant_of(&sign_in(&broker.url).await.access_token));
    }

    let (ok, out, err) = cli(
        &broker,
        &db,
        &fake,
        &["grants", "list", "--limit", "2", "--json"],
    );
    assert!(ok, "{err}");
    let first: Vec<String> = json_lines(&out)
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(first.len(), 2);
    // The hint is shell-quoted: '<cursor>'.
    let after = err
        .split("--after '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no --after hint: {err}"));
    let (ok, out, err) = cli(
        &broker,
        &db,
        &fake,
        &["grants", "list", "--limit", "2", "--json", "--after", after],
    );
    assert!(ok, "{err}");
    let rest: Vec<String> = json_lines(&out)
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(rest.len(), 1, "{out}");
    assert!(!err.contains("--after"), "the last page: {err}");
    let mut all = [first, rest].concat();
    all.sort();
    signed_in.sort();
    assert_eq!(all, signed_in, "every grant once");

    let (ok, _, err) = cli(&broker, &db, &fake, &["grants", "list", "--after", "soon"]);
    assert!(!ok);
    assert!(err.contains("after must be"), "{err}");
}
