//! `/healthz` says the process answers; `/readyz` says whether to send it
//! traffic: the database answers and signing keys are loaded. Neither is
//! behind the MCP `Host`/`Origin` check or any authentication.

use serde_json::{Value, json};

use crate::support::{FakeGithub, Mode, TestDb, start_broker};

async fn get(url: &str, host: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(host) = host {
        request = request.header(reqwest::header::HOST, host);
    }
    let response = request.send().await.unwrap();
    assert_eq!(
        response.headers()[reqwest::header::CACHE_CONTROL],
        "no-store",
        "{url}"
    );
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_ready_on_both_databases_and_any_host_may_probe() {
    for db in TestDb::all().await {
        let fake = FakeGithub::start(Mode::OAuthApp).await;
        let broker = start_broker(&db, &fake).await;
        for host in [None, Some("10.1.2.3:8080")] {
            let (status, body) = get(&format!("{}/readyz", broker.url), host).await;
            assert_eq!(
                (status, body),
                (200, json!({"status": "ready"})),
                "{:?}",
                db.kind
            );
            let (status, body) = get(&format!("{}/healthz", broker.url), host).await;
            assert_eq!((status, body), (200, json!({"status": "ok"})));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_the_database_when_it_is_gone_while_healthz_stays_up() {
    for db in TestDb::all().await {
        let fake = FakeGithub::start(Mode::OAuthApp).await;
        let broker = start_broker(&db, &fake).await;
        broker.state.store.close().await;
        let (status, body) = get(&format!("{}/readyz", broker.url), None).await;
        assert_eq!(
            (status, body),
            (503, json!({"status": "not ready", "failed": ["database"]})),
            "{:?}",
            db.kind
        );
        let (status, _) = get(&format!("{}/healthz", broker.url), None).await;
        assert_eq!(status, 200, "liveness never depends on the database");
    }
}
