//! Client ID Metadata Documents, the network half: fetch the document at the
//! `client_id` URL (SSRF-guarded, small, quick, no redirects) and keep the
//! validated client as its row in `clients`, which doubles as the cache.
//! The rules over the URL and the document are in `crate::oauth::cimd`.

use std::time::Duration;

use reqwest::header::{ACCEPT, CACHE_CONTROL};
use url::Url;

use super::ssrf::{Allowlist, GuardError, checked_address};
use crate::app::AppState;
use crate::audit::{Actor, AuditEvent, EventKind};
use crate::oauth::cimd::{
    MAX_DOCUMENT_BYTES, STALE_GRACE_SECS, cache_lifetime, check_client_id_url, validate_document,
};
use crate::store::{CimdStored, ClientRow, StoreError};
use crate::upstream::flow::describe_transport_error;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Where the operator lets documents come from besides public https hosts.
#[derive(Clone, Debug, Default)]
pub struct FetchPolicy {
    pub allow: Allowlist,
    /// Plain http, honoured only for allowlisted hosts (tests, development).
    pub allow_http: bool,
    /// Extra trusted roots (PEM), for document hosts with a private CA.
    pub extra_roots_pem: Option<Vec<u8>>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum FetchError {
    /// Not fetched, or the answer can never be used: an SSRF target, a
    /// forbidden scheme, a redirect, an oversized body, an unexpected status.
    Refused(String),
    /// 404 or 410: the client no longer exists.
    Gone(u16),
    /// May work later: DNS, connection, timeout, 5xx, 429.
    Transient(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Refused(why) => write!(f, "refused: {why}"),
            FetchError::Gone(status) => write!(f, "the document is gone (HTTP {status})"),
            FetchError::Transient(why) => write!(f, "temporarily unavailable: {why}"),
        }
    }
}

/// The document as served: its body and `Cache-Control`.
#[derive(Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub cache_control: Option<String>,
}

/// GETs the document at `url`, connecting only to the address the SSRF guard
/// approved. One deadline covers DNS, connection and body.
pub async fn fetch_document(url: &Url, policy: &FetchPolicy) -> Result<Fetched, FetchError> {
    tokio::time::timeout(TIMEOUT, fetch(url, policy))
        .await
        .unwrap_or_else(|_| Err(FetchError::Transient("timed out".into())))
}

async fn fetch(url: &Url, policy: &FetchPolicy) -> Result<Fetched, FetchError> {
    let host = url
        .host()
        .ok_or_else(|| FetchError::Refused("the URL has no host".into()))?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http && policy.allow.allows_host(&host) => {}
        _ => {
            return Err(FetchError::Refused(
                "metadata documents must be served over https".into(),
            ));
        }
    }
    let addr = checked_address(url, &policy.allow)
        .await
        .map_err(|e| match e {
            GuardError::Forbidden(why) => FetchError::Refused(why),
            GuardError::Unresolvable(why) => FetchError::Transient(why),
        })?;
    // A client per fetch, pinned to the checked address. No proxy: a proxy
    // would resolve the name itself and undo the pinning.
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(TIMEOUT)
        .user_agent(concat!("mcp-broker/", env!("CARGO_PKG_VERSION")));
    if let Some(domain) = url.domain() {
        builder = builder.resolve(domain, addr);
    }
    for root in policy
        .extra_roots_pem
        .as_deref()
        .map(|pem| reqwest::Certificate::from_pem_bundle(pem).unwrap_or_default())
        .unwrap_or_default()
    {
        builder = builder.add_root_certificate(root);
    }
    let client = builder
        .build()
        .map_err(|_| FetchError::Transient("cannot build the HTTP client".into()))?;
    let mut response = client
        .get(url.clone())
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| FetchError::Transient(describe_transport_error(&e)))?;
    match response.status().as_u16() {
        200 => {}
        s @ 300..=399 => {
            return Err(FetchError::Refused(format!(
                "HTTP {s}: redirects are not followed"
            )));
        }
        s @ (404 | 410) => return Err(FetchError::Gone(s)),
        s @ (408 | 429 | 500..=599) => return Err(FetchError::Transient(format!("HTTP {s}"))),
        s => return Err(FetchError::Refused(format!("HTTP {s}"))),
    }
    let too_large = || {
        FetchError::Refused(format!(
            "the document is larger than {MAX_DOCUMENT_BYTES} bytes"
        ))
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(too_large());
    }
    let cache_control = response
        .headers()
        .get(CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError::Transient(describe_transport_error(&e)))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        body,
        cache_control,
    })
}

/// The client behind a document URL: the cached row while fresh, else a new
/// fetch. When a re-fetch fails transiently the stale row keeps serving for
/// `STALE_GRACE_SECS`; a gone or invalid document is refused (`None`).
pub async fn resolve(state: &AppState, client_id: &str) -> Result<Option<ClientRow>, StoreError> {
    if !state.config.cimd_enabled {
        return Ok(None);
    }
    let url = match check_client_id_url(client_id) {
        Ok(url) => url,
        Err(why) => return Ok(refuse(client_id, &why)),
    };
    let now = crate::now_unix();
    let cached = state.store.get_cimd_client(client_id).await?;
    if let Some((row, expires_at)) = &cached
        && now < *expires_at
    {
        return Ok(Some(row.clone()));
    }
    let policy = FetchPolicy {
        allow: Allowlist::new(&state.config.cimd_allowed_hosts),
        allow_http: state.config.cimd_allow_http,
        extra_roots_pem: state.config.cimd_ca_pem.clone(),
    };
    let fetched = match fetch_document(&url, &policy).await {
        Ok(fetched) => fetched,
        Err(FetchError::Transient(why)) => {
            return Ok(match cached {
                Some((row, expires_at)) if now < expires_at + STALE_GRACE_SECS => {
                    tracing::warn!(
                        client_id = ?client_id, reason = %why,
                        "client metadata document could not be re-fetched; using the cached copy"
                    );
                    Some(row)
                }
                _ => refuse(
                    client_id,
                    &format!("the document could not be fetched ({why})"),
                ),
            });
        }
        Err(e) => return Ok(refuse(client_id, &e.to_string())),
    };
    let registration = match validate_document(client_id, &fetched.body) {
        Ok(registration) => registration,
        Err(e) => return Ok(refuse(client_id, &e.to_string())),
    };
    let row = ClientRow {
        client_id: client_id.to_string(),
        client_secret_hash: None,
        client_name: registration.client_name,
        redirect_uris: registration.redirect_uris,
        grant_types: registration.grant_types,
        token_endpoint_auth_method: registration.token_endpoint_auth_method,
        application_type: registration.application_type,
        registration: "cimd".into(),
        created_at: now,
        metadata_hash: None,
        last_used_at: None,
    };
    let expires_at = now + cache_lifetime(fetched.cache_control.as_deref());
    let stored = state.store.upsert_cimd_client(&row, expires_at).await?;
    let detail = match stored {
        CimdStored::Refused => {
            return Ok(refuse(
                client_id,
                "a client registered another way has this id",
            ));
        }
        CimdStored::Inserted => Some(format!(
            "client id metadata document: {}",
            row.client_name.as_deref().unwrap_or("(no name)")
        )),
        // Re-fetches are cache upkeep; one that changes what the client may
        // do, or what the consent page shows, is recorded like a registration.
        CimdStored::Updated => cached
            .as_ref()
            .and_then(|(before, _)| document_changes(before, &row))
            .map(|changes| format!("client id metadata document changed: {changes}")),
    };
    if let Some(detail) = detail {
        let event = AuditEvent::new(EventKind::ClientRegistered, Actor::Client(client_id.into()))
            .client(client_id)
            .detail(detail);
        crate::audit::note(&state.store, event).await;
    }
    Ok(state
        .store
        .get_cimd_client(client_id)
        .await?
        .map(|(row, _)| row))
}

/// The registration fields a re-fetched document changed, named for the
/// ledger (`None` when it is the same client as before). The values are the
/// document author's: each is clipped, so one event stays small.
fn document_changes(before: &ClientRow, after: &ClientRow) -> Option<String> {
    let mut changes = Vec::new();
    if before.redirect_uris != after.redirect_uris {
        changes.push(format!(
            "redirect_uris now {}",
            clip_list(&after.redirect_uris)
        ));
    }
    if before.grant_types != after.grant_types {
        changes.push(format!("grant_types now {}", clip_list(&after.grant_types)));
    }
    if before.token_endpoint_auth_method != after.token_endpoint_auth_method {
        changes.push(format!(
            "token_endpoint_auth_method now {}",
            clip(&after.token_endpoint_auth_method)
        ));
    }
    if before.application_type != after.application_type {
        changes.push(format!(
            "application_type now {}",
            clip(&after.application_type)
        ));
    }
    if before.client_name != after.client_name {
        changes.push(format!(
            "client_name now {}",
            after
                .client_name
                .as_deref()
                .map_or("(no name)".into(), clip)
        ));
    }
    (!changes.is_empty()).then(|| changes.join("; "))
}

/// Characters of one document value the ledger keeps.
const LEDGER_VALUE_CHARS: usize = 200;
/// Values of one list the ledger names.
const LEDGER_LIST_ITEMS: usize = 5;

fn clip(value: &str) -> String {
    match value.char_indices().nth(LEDGER_VALUE_CHARS) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_string(),
    }
}

fn clip_list(values: &[String]) -> String {
    let shown: Vec<String> = values
        .iter()
        .take(LEDGER_LIST_ITEMS)
        .map(|v| clip(v))
        .collect();
    match values.len().saturating_sub(LEDGER_LIST_ITEMS) {
        0 => shown.join(" "),
        more => format!("{} (and {more} more)", shown.join(" ")),
    }
}

/// Refusals are the client's problem, but operators need the reason: the
/// handlers only say "unknown client".
fn refuse(client_id: &str, why: &str) -> Option<ClientRow> {
    // Debug formatting: the id is attacker-chosen and must not forge log lines.
    tracing::info!(client_id = ?client_id, reason = %why, "client metadata document refused");
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> ClientRow {
        ClientRow {
            client_id: "https://app.example/c.json".into(),
            client_secret_hash: None,
            client_name: Some("App".into()),
            redirect_uris: vec!["https://app.example/cb".into()],
            grant_types: vec!["authorization_code".into()],
            token_endpoint_auth_method: "none".into(),
            application_type: "web".into(),
            registration: "cimd".into(),
            created_at: 1,
            metadata_hash: None,
            last_used_at: None,
        }
    }

    #[test]
    fn a_refetch_that_changes_nothing_the_client_may_do_is_no_change() {
        // The creation time differs between the stored row and a fresh one.
        let fresh = ClientRow {
            created_at: 99,
            ..row()
        };
        assert_eq!(document_changes(&row(), &fresh), None);
    }

    #[test]
    fn a_changed_document_is_recorded_clipped_to_a_bounded_size() {
        let after = ClientRow {
            redirect_uris: (0..40)
                .map(|i| format!("https://app.example/{}/{i}", "x".repeat(500)))
                .collect(),
            client_name: Some("é".repeat(5000)),
            ..row()
        };
        let detail = document_changes(&row(), &after).unwrap();
        assert!(detail.chars().count() < 2000, "{}", detail.len());
        assert!(detail.contains("(and 35 more)"), "{detail}");
        assert!(detail.contains(&format!("client_name now {}…", "é".repeat(200))));
    }

    #[test]
    fn each_changed_registration_field_is_named() {
        let after = ClientRow {
            redirect_uris: vec!["https://evil.example/cb".into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            token_endpoint_auth_method: "private_key_jwt".into(),
            client_name: None,
            ..row()
        };
        assert_eq!(
            document_changes(&row(), &after).as_deref(),
            Some(
                "redirect_uris now https://evil.example/cb; \
                 grant_types now authorization_code refresh_token; \
                 token_endpoint_auth_method now private_key_jwt; client_name now (no name)"
            )
        );
    }
}
