//! The consent registry: a returning user who approved a client is not asked
//! again for the same scope; anything else shows the page.

use crate::support::oauth_client::{
    REDIRECT_URI, authorize_url, flow_cookie, http, location, open_consent, pkce, query_param,
    register, submit_consent,
};
use crate::support::{FakeGithub, Mode, TestDb, start_broker};

/// Signs in through the consent page; returns the browser session cookie the
/// broker set on its final redirect.
async fn first_sign_in(broker: &str, client: &crate::support::oauth_client::Client) -> String {
    let page = open_consent(&authorize_url(broker, client, &pkce(), "s")).await;
    let approved = submit_consent(broker, &page, "approve", Some(&page.cookie)).await;
    let upstream = http().get(location(&approved)).send().await.unwrap();
    let callback = http()
        .get(location(&upstream))
        .header(reqwest::header::COOKIE, flow_cookie(&approved))
        .send()
        .await
        .unwrap();
    assert!(location(&callback).starts_with(REDIRECT_URI));
    callback
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("mcp_broker_session="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

async fn authorize_with(url: &str, cookie: &str) -> reqwest::Response {
    http()
        .get(url)
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returning_user_who_approved_the_client_skips_the_consent_page() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let broker = start_broker(&db, &fake).await;
    let client = register(&broker.url).await;
    let session = first_sign_in(&broker.url, &client).await;
    let again = authorize_with(
        &authorize_url(&broker.url, &client, &pkce(), "s2"),
        &session,
    )
    .await;
    assert_eq!(again.status(), 302, "straight upstream, no page");
    let upstream = location(&again);
    assert!(upstream.starts_with(&fake.url), "{upstream}");
    let callback = http().get(upstream).send().await.unwrap();
    let back = http()
        .get(location(&callback))
        .header(reqwest::header::COOKIE, flow_cookie(&again))
        .send()
        .await
        .unwrap();
    let final_url = location(&back);
    assert!(
        query_param(&final_url, "code").is_some()
            && query_param(&final_url, "state").as_deref() == Some("s2")
    );
    assert_eq!(fake.counters().code_exchanges, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_consent_shows_the_page_even_when_approved() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let broker = start_broker(&db, &fake).await;
    let client = register(&broker.url).await;
    let session = first_sign_in(&broker.url, &client).await;
    let url = format!(
        "{}&prompt=consent",
        authorize_url(&broker.url, &client, &pkce(), "s")
    );
    let response = authorize_with(&url, &session).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("value=\"approve\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_client_needs_its_own_consent() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let broker = start_broker(&db, &fake).await;
    let approved = register(&broker.url).await;
    let session = first_sign_in(&broker.url, &approved).await;
    // A different redirect URI makes a different (public) registration.
    let other = crate::support::oauth_client::register_metadata(
        &broker.url,
        serde_json::json!({"redirect_uris": [REDIRECT_URI, "http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"]}),
    )
    .await;
    let other = crate::support::oauth_client::Client {
        client_id: other["client_id"].as_str().unwrap().into(),
    };
    assert_ne!(other.client_id, approved.client_id);
    let response =
        authorize_with(&authorize_url(&broker.url, &other, &pkce(), "s"), &session).await;
    assert_eq!(response.status(), 200, "the consent page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_none_without_approval_is_consent_required() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let broker = start_broker(&db, &fake).await;
    let client = register(&broker.url).await;
    let url = format!(
        "{}&prompt=none",
        authorize_url(&broker.url, &client, &pkce(), "s")
    );
    let response = http().get(url).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let back = location(&response);
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("consent_required")
    );
    assert_eq!(
        query_param(&back, "iss").as_deref(),
        Some(broker.url.as_str())
    );
    assert_eq!(fake.counters().authorize, 0, "nothing went upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_session_cookie_is_treated_as_no_session() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let broker = start_broker(&db, &fake).await;
    let client = register(&broker.url).await;
    let response = authorize_with(
        &authorize_url(&broker.url, &client, &pkce(), "s"),
        "mcp_broker_session=forged",
    )
    .await;
    assert_eq!(response.status(), 200, "the consent page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sign_ins_in_one_browser_do_not_overwrite_each_other() {
    let (db, fake) = (TestDb::sqlite(), FakeGithub::start(Mode::OAuthApp).await);
    let broker = start_broker(&db, &fake).await;
    let client = register(&broker.url).await;
    // Two consent pages open at once (two MCP servers connecting): the
    // browser holds both cookies and sends both with each form.
    let first = open_consent(&authorize_url(&broker.url, &client, &pkce(), "a")).await;
    let second = open_consent(&authorize_url(&broker.url, &client, &pkce(), "b")).await;
    assert_ne!(first.cookie, second.cookie);
    let jar = format!("{}; {}", first.cookie, second.cookie);
    for page in [&first, &second] {
        let approved = submit_consent(&broker.url, page, "approve", Some(&jar)).await;
        assert_eq!(approved.status(), 303);
        let back = crate::support::oauth_client::follow_to_client(
            location(&approved),
            &flow_cookie(&approved),
        )
        .await;
        assert!(query_param(&back, "code").is_some());
    }
}
