//! Upstream providers: their definitions, the nested OAuth flow we run as
//! their client, and how to read what they answer.

pub mod check;
pub mod failure;
pub mod flow;
pub mod oidc;
pub mod provider;
pub mod revoke;
pub mod token_response;

pub use provider::{Provider, ProviderSet, load_providers};
pub use token_response::{UpstreamError, UpstreamTokens};

use std::time::Duration;

/// The HTTP client for every provider call. Redirects are off: a token
/// endpoint that redirects is either misconfigured or an SSRF attempt.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout)
        .user_agent(concat!("mcp-broker/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client configuration is valid")
}
