//! `/healthz` says the process answers; `/readyz` says whether to send it
//! traffic: the database answers (closed pool, or a server cut off behind a
//! relay) and signing keys are loaded. Neither is
//! behind the MCP `Host`/`Origin` check or any authentication.

use serde_json::{Value, json};

use crate::support::relay::Relay;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_while_the_database_server_is_unreachable_and_recovers_after() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let relay = Relay::start(db.server_addr()).await;
    let through = db.through(relay.addr);
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&through, &fake).await;
    let readyz = format!("{}/readyz", broker.url);
    assert_eq!(get(&readyz, None).await.0, 200);

    relay.cut();
    let (status, body) = get(&readyz, None).await;
    assert_eq!(
        (status, body),
        (503, json!({"status": "not ready", "failed": ["database"]}))
    );
    assert_eq!(get(&format!("{}/healthz", broker.url), None).await.0, 200);

    // The server is back: the pool reconnects and readiness follows.
    relay.restore();
    let mut status = 0;
    for _ in 0..50 {
        status = get(&readyz, None).await.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "ready again once the database answers");
}
