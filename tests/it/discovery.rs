//! Discovery documents and cross-origin access to them.

use serde_json::Value;

use crate::support::oauth_client::http;
use crate::support::{FakeGithub, Mode, TestDb, start_broker};

async fn json(url: String) -> Value {
    let response = http().get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_is_served_at_every_discovery_path_with_one_issuer() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let rfc8414 = json(format!(
        "{}/.well-known/oauth-authorization-server",
        broker.url
    ))
    .await;
    let openid = json(format!("{}/.well-known/openid-configuration", broker.url)).await;
    assert_eq!(rfc8414, openid);
    assert_eq!(rfc8414["issuer"], broker.url.as_str());
    assert_eq!(
        rfc8414["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        rfc8414["revocation_endpoint"],
        format!("{}/revoke", broker.url)
    );
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let prm = json(format!("{}{path}", broker.url)).await;
        assert_eq!(prm["resource"], broker.mcp_url().as_str(), "{path}");
        assert_eq!(
            prm["authorization_servers"][0],
            broker.url.as_str(),
            "{path}"
        );
    }
    let jwks = json(format!("{}/jwks.json", broker.url)).await;
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_clients_may_call_metadata_and_token_cross_origin() {
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = start_broker(&db, &fake).await;
    let preflight = http()
        .request(reqwest::Method::OPTIONS, format!("{}/token", broker.url))
        .header("Origin", "https://inspector.example")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type, mcp-protocol-version",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("mcp-protocol-version"), "{allowed}");
    let metadata = http()
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            broker.url
        ))
        .header("Origin", "https://inspector.example")
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.headers()["access-control-allow-origin"], "*");
    // The consent endpoint is not for scripts of other origins.
    let consent = http()
        .request(reqwest::Method::OPTIONS, format!("{}/consent", broker.url))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        consent
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_with_a_path_is_discoverable_at_every_derived_url() {
    use crate::support::oauth_client::{call_tool, sign_in};
    let db = TestDb::sqlite();
    let fake = FakeGithub::start(Mode::OAuthApp).await;
    let broker = crate::support::start_broker_with_env(
        &db,
        &[("github.toml", fake.provider_toml())],
        &[("MCP_BROKER_PUBLIC_URL", "{base}/broker")],
    )
    .await;
    let origin = &broker.url;
    let issuer = format!("{origin}/broker");
    // RFC 8414 path insertion, OpenID's two forms.
    for path in [
        "/.well-known/oauth-authorization-server/broker",
        "/.well-known/openid-configuration/broker",
        "/broker/.well-known/openid-configuration",
    ] {
        let doc = json(format!("{origin}{path}")).await;
        assert_eq!(doc["issuer"], issuer.as_str(), "{path}");
        assert_eq!(doc["token_endpoint"], format!("{issuer}/token"), "{path}");
    }
    // RFC 9728 for the resource `<issuer>/mcp`, and the challenge names it.
    let prm = json(format!(
        "{origin}/.well-known/oauth-protected-resource/broker/mcp"
    ))
    .await;
    assert_eq!(prm["resource"], format!("{issuer}/mcp"));
    assert_eq!(prm["authorization_servers"][0], issuer.as_str());
    let unauthenticated = http()
        .post(format!("{issuer}/mcp"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let challenge = unauthenticated.headers()["www-authenticate"]
        .to_str()
        .unwrap();
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"{origin}/.well-known/oauth-protected-resource/broker/mcp\""
        )),
        "{challenge}"
    );
    // And the whole flow works under the path.
    let session = sign_in(&issuer).await;
    let result = call_tool(
        &format!("{issuer}/mcp"),
        &session.access_token,
        "github_whoami",
        serde_json::json!({}),
    )
    .await;
    assert_eq!(result["isError"], serde_json::json!(false), "{result}");
}
