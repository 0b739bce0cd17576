//! OpenID Connect on top of the nested OAuth flow, through the
//! `openidconnect` crate: discovery fills in the endpoints a provider file
//! leaves out, a nonce binds the id_token to the pending request, and the
//! id_token is verified (signature against the provider's JWKS, `iss`, `aud`,
//! `exp`, `nonce`) before anything in it is believed.
//!
//! The rules are plain functions over strings and bytes; the two fetches
//! (discovery document, JWKS) sit at the bottom.

use std::str::FromStr;

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKey, CoreJsonWebKeySet,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, ClaimsVerificationError, ClientId, IssuerUrl, Nonce,
    ProviderMetadata,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::flow::{describe_transport_error, read_limited};
use super::provider::{IdentityFields, ProviderKind, RevocationStyle};
use super::{Provider, ProviderSet, UpstreamError};

/// Why an id_token was refused. Messages name the rule, never the token's
/// contents (they are logged and shown on the error page).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the token response carried no id_token")]
    Missing,
    #[error("the id_token is not a well-formed JWT")]
    Malformed,
    #[error("the id_token signature does not verify against the provider's keys")]
    BadSignature,
    #[error("the id_token was issued by another issuer")]
    WrongIssuer,
    #[error("the id_token is meant for another client (audience)")]
    WrongAudience,
    #[error("the id_token has expired")]
    Expired,
    #[error("the id_token nonce does not match this sign-in")]
    WrongNonce,
    #[error("the id_token lacks the subject claim `{0}`")]
    NoSubject(String),
    #[error("userinfo describes another subject than the id_token")]
    UserinfoSubjectMismatch,
    #[error("the id_token is invalid")]
    Invalid,
}

// ---------------------------------------------------------------- nonce

/// What is stored for a nonce: its SHA-256, hex. The nonce itself only
/// travels in the authorize URL and comes back inside the signed id_token.
pub fn nonce_hash(nonce: &str) -> String {
    Sha256::digest(nonce.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hash_matches(nonce: &str, expected_hash: &str) -> bool {
    let actual = nonce_hash(nonce);
    let (a, b) = (actual.as_bytes(), expected_hash.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ------------------------------------------------------------- discovery

/// The discovery document's fields we use, plus `revocation_endpoint`
/// (RFC 8414), which OIDC discovery itself does not define.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
pub struct RevocationMetadata {
    #[serde(default)]
    revocation_endpoint: Option<String>,
}
impl AdditionalProviderMetadata for RevocationMetadata {}

type DiscoveryDocument = ProviderMetadata<
    RevocationMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Endpoints a discovery document names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovered {
    pub authorize_url: String,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub jwks_uri: String,
    pub revocation_url: Option<String>,
}

/// OIDC Discovery §4: `<issuer>/.well-known/openid-configuration`.
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Reads a discovery document. Its `issuer` must equal the configured one
/// exactly (OIDC Discovery §4.3), or every id_token check after would be
/// against the wrong authority.
pub fn read_discovery(issuer: &str, body: &[u8]) -> Result<Discovered, String> {
    let doc: DiscoveryDocument = serde_json::from_slice(body)
        .map_err(|e| format!("the discovery document is unreadable ({e})"))?;
    if doc.issuer().as_str() != issuer {
        return Err(format!(
            "the discovery document names issuer {:?}, the provider file {issuer:?}",
            doc.issuer().as_str()
        ));
    }
    Ok(Discovered {
        authorize_url: doc.authorization_endpoint().to_string(),
        token_url: doc.token_endpoint().map(|u| u.to_string()),
        userinfo_url: doc.userinfo_endpoint().map(|u| u.to_string()),
        jwks_uri: doc.jwks_uri().to_string(),
        revocation_url: doc.additional_metadata().revocation_endpoint.clone(),
    })
}

/// Fills in what the file left out; endpoints the file sets win.
pub fn apply_discovery(provider: &mut Provider, found: Discovered) -> Result<(), String> {
    if provider.authorize_url.is_empty() {
        provider.authorize_url = found.authorize_url;
    }
    if provider.token_url.is_empty() {
        provider.token_url = found
            .token_url
            .ok_or("neither the provider file nor discovery names a token endpoint")?;
    }
    if provider.userinfo_url.is_empty() {
        provider.userinfo_url = found.userinfo_url.unwrap_or_default();
    }
    if provider.revocation_url.is_none() {
        provider.revocation_url = found.revocation_url;
    }
    provider.jwks_uri = found.jwks_uri;
    if provider.revocation_style == RevocationStyle::Rfc7009 && provider.revocation_url.is_none() {
        return Err(
            "`revocation_style = \"rfc7009\"` but neither the file nor discovery names a \
             revocation endpoint"
                .into(),
        );
    }
    for url in [
        &provider.authorize_url,
        &provider.token_url,
        &provider.jwks_uri,
    ] {
        url::Url::parse(url).map_err(|_| format!("discovery gave an invalid URL {url:?}"))?;
    }
    Ok(())
}

// ----------------------------------------------------------- the id_token

/// What a verified id_token says.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedIdToken {
    pub subject: String,
    /// Every claim of the payload, to read the `[identity]` fields from.
    pub claims: Map<String, Value>,
}

/// What the id_token must match.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce_hash: &'a str,
}

/// Verifies an id_token (OIDC Core §3.1.3.7): signature with a key of `jwks`
/// under an asymmetric algorithm, `iss`, `aud` (only us, or us plus
/// audiences we do not know of refused), `exp` against the clock, and the
/// nonce against the hash stored with the pending request.
pub fn verify_id_token(
    id_token: &str,
    expected: &Expected<'_>,
    jwks: &CoreJsonWebKeySet,
) -> Result<VerifiedIdToken, IdTokenError> {
    let token = CoreIdToken::from_str(id_token).map_err(|_| IdTokenError::Malformed)?;
    let issuer =
        IssuerUrl::new(expected.issuer.to_string()).map_err(|_| IdTokenError::WrongIssuer)?;
    // Symmetric (HS*) id_tokens would be keyed with our client secret;
    // providers worth supporting sign with published keys.
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(expected.client_id.to_string()),
        issuer,
        jwks.clone(),
    )
    .set_allowed_algs([
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
        CoreJwsSigningAlgorithm::RsaSsaPssSha256,
        CoreJwsSigningAlgorithm::RsaSsaPssSha384,
        CoreJwsSigningAlgorithm::RsaSsaPssSha512,
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        CoreJwsSigningAlgorithm::EcdsaP384Sha384,
        CoreJwsSigningAlgorithm::EdDsa,
    ]);
    let nonce_check = |nonce: Option<&Nonce>| match nonce {
        Some(n) if hash_matches(n.secret(), expected.nonce_hash) => Ok(()),
        _ => Err("nonce mismatch".to_string()),
    };
    let claims = token.claims(&verifier, nonce_check).map_err(|e| match e {
        ClaimsVerificationError::Expired(_) => IdTokenError::Expired,
        ClaimsVerificationError::InvalidAudience(_) => IdTokenError::WrongAudience,
        ClaimsVerificationError::InvalidIssuer(_) => IdTokenError::WrongIssuer,
        ClaimsVerificationError::InvalidNonce(_) => IdTokenError::WrongNonce,
        ClaimsVerificationError::SignatureVerification(_) => IdTokenError::BadSignature,
        _ => IdTokenError::Invalid,
    })?;
    let subject = claims.subject().to_string();
    // The signature covers the payload: now it may be read as plain JSON, for
    // claims the crate's types do not model (`nickname`, `oid`, …).
    let payload = id_token.split('.').nth(1).ok_or(IdTokenError::Malformed)?;
    let claims = decode_payload(payload).ok_or(IdTokenError::Malformed)?;
    Ok(VerifiedIdToken { subject, claims })
}

fn decode_payload(payload: &str) -> Option<Map<String, Value>> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// A claim as text: strings, and numbers (some subjects are numeric).
pub fn claim_text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Who the user is, from the id_token claims first and the userinfo
/// document (when the provider has one and we fetched it) for what the
/// id_token lacks. Userinfo about another `sub` is refused (OIDC Core
/// §5.3.2). The login falls back to the email, then the subject.
pub fn identity_from_claims(
    id_token: &VerifiedIdToken,
    userinfo: Option<&Map<String, Value>>,
    fields: &IdentityFields,
) -> Result<super::flow::Identity, IdTokenError> {
    if let Some(info) = userinfo
        && claim_text(info, "sub").as_deref() != Some(id_token.subject.as_str())
    {
        return Err(IdTokenError::UserinfoSubjectMismatch);
    }
    let read = |name: &str| {
        claim_text(&id_token.claims, name).or_else(|| userinfo.and_then(|u| claim_text(u, name)))
    };
    let subject =
        read(&fields.subject).ok_or_else(|| IdTokenError::NoSubject(fields.subject.clone()))?;
    let email = fields.email.as_deref().and_then(read);
    let login = read(&fields.login)
        .or_else(|| email.clone())
        .unwrap_or_else(|| subject.clone());
    Ok(super::flow::Identity {
        subject,
        login,
        email,
    })
}

/// Whether the id_token alone names everything `[identity]` asks for, so
/// the userinfo call can be skipped.
pub fn needs_userinfo(id_token: &VerifiedIdToken, fields: &IdentityFields) -> bool {
    let has = |name: &str| claim_text(&id_token.claims, name).is_some();
    !has(&fields.subject) || !has(&fields.login) || fields.email.as_deref().is_some_and(|e| !has(e))
}

// ---------------------------------------------------------- the fetches

/// Runs discovery for every `oidc` provider. One that fails is left out and
/// recorded in `undiscovered` (the broker still serves its other providers;
/// the operator sees the reason in the log and restarts once it is fixed).
pub async fn discover_providers(http: &reqwest::Client, set: &mut ProviderSet) {
    let mut kept = Vec::with_capacity(set.providers.len());
    for mut provider in std::mem::take(&mut set.providers) {
        if provider.kind != ProviderKind::Oidc {
            kept.push(provider);
            continue;
        }
        match discover(http, &mut provider).await {
            Ok(()) => kept.push(provider),
            Err(why) => set.undiscovered.push((provider.id, why)),
        }
    }
    set.providers = kept;
}

/// Fetches the discovery document of one provider and applies it.
pub async fn discover(http: &reqwest::Client, provider: &mut Provider) -> Result<(), String> {
    let issuer = provider.issuer.clone().unwrap_or_default();
    let url = discovery_url(&issuer);
    let body = get_json(http, &url)
        .await
        .map_err(|e| format!("discovery at {url} failed: {e}"))?;
    let found = read_discovery(&issuer, &body)?;
    apply_discovery(provider, found)
}

/// The provider's current signing keys. Fetched for each sign-in, so a key
/// the provider rotated in is always known (sign-ins are rare enough).
pub async fn fetch_jwks(
    http: &reqwest::Client,
    jwks_uri: &str,
) -> Result<CoreJsonWebKeySet, UpstreamError> {
    let body = get_json(http, jwks_uri)
        .await
        .map_err(|e| UpstreamError::Unavailable(format!("JWKS: {e}")))?;
    serde_json::from_slice(&body)
        .map_err(|_| UpstreamError::Unavailable("JWKS: unreadable key set".into()))
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| describe_transport_error(&e))?;
    let status = response.status().as_u16();
    let body = read_limited(response).await.map_err(|e| e.to_string())?;
    if !(200..=299).contains(&status) {
        return Err(format!("HTTP {status}"));
    }
    Ok(body)
}

#[cfg(test)]
mod tests;
