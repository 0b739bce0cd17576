//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document):
//! a client whose `client_id` is an HTTPS URL publishes its metadata at that
//! URL. These are the rules over the URL and what it served; fetching it (and
//! the SSRF guard) lives in `crate::clients::cimd`.

use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::register::{Registration, RegistrationRequest, validate_registration};

/// The draft expects documents of a few KiB (it suggests 5); allow slack.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024;
const MAX_CLIENT_ID_LEN: usize = 2000;

/// Cache lifetime when the document says nothing.
pub const DEFAULT_LIFETIME_SECS: i64 = 3600;
/// Floor and ceiling for `max-age`: not a fetch per request by accident, not
/// stale metadata for days.
pub const MIN_LIFETIME_SECS: i64 = 300;
pub const MAX_LIFETIME_SECS: i64 = 24 * 3600;
/// How long past expiry a cached document still serves while re-fetching
/// fails transiently, so a client's hosting outage does not lock users out.
pub const STALE_GRACE_SECS: i64 = 24 * 3600;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("the metadata document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("the metadata document is not a JSON object")]
    NotAnObject,
    #[error("the metadata document has no {0}")]
    Missing(&'static str),
    #[error("the metadata document is malformed: {0}")]
    Malformed(String),
    #[error("the metadata document's client_id is not the URL it was fetched from")]
    ClientIdMismatch,
    #[error("the metadata document asks for a client secret, which a URL client cannot have")]
    SharedSecret,
    #[error(
        "private_key_jwt client authentication is not supported; use token_endpoint_auth_method \"none\""
    )]
    PrivateKeyJwt,
    #[error("{0}")]
    Metadata(String),
}

/// Is this `client_id` meant as a document URL? Such ids are resolved only
/// as documents (refused when they break the rules), never looked up by name.
pub fn is_document_url(client_id: &str) -> bool {
    let lower = |n: usize| client_id.get(..n).map(str::to_ascii_lowercase);
    lower(8).as_deref() == Some("https://") || lower(7).as_deref() == Some("http://")
}

/// The draft's rules on the URL: a path, no fragment, no credentials, no dot
/// segments. It must also be in the form the URL parser gives it, since that
/// form is what we fetch and the document's `client_id` must equal it. The
/// scheme may be http here; the fetch allows http only for allowlisted hosts.
pub fn check_client_id_url(client_id: &str) -> Result<Url, String> {
    if client_id.len() > MAX_CLIENT_ID_LEN {
        return Err("the client_id URL is too long".into());
    }
    let url = Url::parse(client_id).map_err(|_| "the client_id is not a valid URL".to_string())?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err("the client_id URL must use https".into());
    }
    if url.fragment().is_some() {
        return Err("the client_id URL must not have a fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the client_id URL must not contain credentials".into());
    }
    if url.host().is_none() || url.path().len() < 2 {
        return Err("the client_id URL must have a host and a path".into());
    }
    if has_dot_segment(client_id) {
        return Err("the client_id URL must not contain . or .. path segments".into());
    }
    if url.as_str() != client_id {
        return Err(
            "the client_id URL is not in normal form (case, default port or escaping)".into(),
        );
    }
    Ok(url)
}

fn has_dot_segment(raw: &str) -> bool {
    let after_scheme = raw.split_once("://").map_or(raw, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    let path = path.split(['?', '#']).next().unwrap_or("");
    path.split('/').any(|segment| {
        let s = segment.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".."
    })
}

/// The document's fields we use; others (logo_uri, jwks_uri, …) are ignored.
#[derive(Deserialize)]
struct Document {
    client_id: Option<String>,
    redirect_uris: Option<Vec<String>>,
    client_name: Option<String>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    application_type: Option<String>,
    scope: Option<String>,
    client_secret: Option<Value>,
    client_secret_expires_at: Option<Value>,
}

/// Validates a fetched document for `client_id` (the URL it came from) and
/// returns the client to store: always public, with the document's redirect
/// URIs, checked by the same rules as dynamic registration.
pub fn validate_document(client_id: &str, body: &[u8]) -> Result<Registration, DocumentError> {
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(DocumentError::TooLarge);
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| DocumentError::NotAnObject)?;
    if !value.is_object() {
        return Err(DocumentError::NotAnObject);
    }
    let doc: Document =
        serde_json::from_value(value).map_err(|e| DocumentError::Malformed(e.to_string()))?;
    let id = doc.client_id.ok_or(DocumentError::Missing("client_id"))?;
    // Byte for byte: no normalisation, so one document names exactly one URL.
    if id != client_id {
        return Err(DocumentError::ClientIdMismatch);
    }
    if doc.redirect_uris.is_none() {
        return Err(DocumentError::Missing("redirect_uris"));
    }
    if doc.client_secret.is_some() || doc.client_secret_expires_at.is_some() {
        return Err(DocumentError::SharedSecret);
    }
    match doc.token_endpoint_auth_method.as_deref().unwrap_or("none") {
        "none" => {}
        "client_secret_basic" | "client_secret_post" | "client_secret_jwt" => {
            return Err(DocumentError::SharedSecret);
        }
        "private_key_jwt" => return Err(DocumentError::PrivateKeyJwt),
        other => {
            return Err(DocumentError::Metadata(format!(
                "token_endpoint_auth_method {other:?} is not supported"
            )));
        }
    }
    validate_registration(RegistrationRequest {
        redirect_uris: doc.redirect_uris,
        client_name: doc.client_name,
        token_endpoint_auth_method: Some("none".into()),
        grant_types: doc.grant_types,
        response_types: doc.response_types,
        application_type: doc.application_type,
        scope: doc.scope,
    })
    .map_err(|e| DocumentError::Metadata(e.description))
}

/// Seconds a fetched document may be used before fetching it again, from its
/// `Cache-Control`. `no-store`, `no-cache` and `max-age=0` are honoured as
/// "fetch each time" (0); other `max-age` values are clamped; none → 1 h.
pub fn cache_lifetime(cache_control: Option<&str>) -> i64 {
    let Some(value) = cache_control else {
        return DEFAULT_LIFETIME_SECS;
    };
    let mut max_age: Option<u64> = None;
    for directive in value.split(',') {
        let (name, arg) = match directive.split_once('=') {
            Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
            None => (directive.trim(), None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return 0;
        }
        if name.eq_ignore_ascii_case("max-age") && max_age.is_none() {
            max_age = arg.and_then(|a| a.parse().ok());
        }
    }
    match max_age {
        None => DEFAULT_LIFETIME_SECS,
        Some(0) => 0,
        Some(secs) => i64::try_from(secs)
            .unwrap_or(i64::MAX)
            .clamp(MIN_LIFETIME_SECS, MAX_LIFETIME_SECS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "https://app.example/oauth/client.json";

    fn doc(extra: Value) -> Vec<u8> {
        let mut d = json!({
            "client_id": ID,
            "client_name": "App",
            "redirect_uris": ["http://127.0.0.1:3000/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                d.as_object_mut().unwrap().remove(k);
            } else {
                d[k] = v.clone();
            }
        }
        serde_json::to_vec(&d).unwrap()
    }

    #[test]
    fn public_client_document_is_accepted() {
        let r = validate_document(ID, &doc(json!({}))).unwrap();
        assert!(!r.confidential);
        assert_eq!(r.token_endpoint_auth_method, "none");
        assert_eq!(
            r.redirect_uris,
            vec!["http://127.0.0.1:3000/cb".to_string()]
        );
        assert_eq!(r.client_name.as_deref(), Some("App"));
    }

    #[test]
    fn auth_method_defaults_to_none_and_client_name_is_optional() {
        let r = validate_document(
            ID,
            &doc(json!({"token_endpoint_auth_method": null, "client_name": null})),
        )
        .unwrap();
        assert_eq!(
            (r.token_endpoint_auth_method.as_str(), r.client_name),
            ("none", None)
        );
    }

    #[test]
    fn client_id_must_equal_the_url_byte_for_byte() {
        for other in [
            "https://app.example/oauth/client.json/",
            "https://APP.example/oauth/client.json",
            "https://app.example:443/oauth/client.json",
            "https://evil.example/oauth/client.json",
        ] {
            let err = validate_document(ID, &doc(json!({ "client_id": other }))).unwrap_err();
            assert_eq!(err, DocumentError::ClientIdMismatch, "{other}");
        }
    }

    #[test]
    fn client_id_and_redirect_uris_are_required() {
        let err = validate_document(ID, &doc(json!({"client_id": null}))).unwrap_err();
        assert_eq!(err, DocumentError::Missing("client_id"));
        let err = validate_document(ID, &doc(json!({"redirect_uris": null}))).unwrap_err();
        assert_eq!(err, DocumentError::Missing("redirect_uris"));
    }

    #[test]
    fn document_must_be_a_json_object() {
        for body in [&b"[1,2]"[..], b"not json", b"\"https://app.example/x\""] {
            assert_eq!(
                validate_document(ID, body).unwrap_err(),
                DocumentError::NotAnObject
            );
        }
        let err = validate_document(ID, &doc(json!({"redirect_uris": "http://127.0.0.1/cb"})))
            .unwrap_err();
        assert!(matches!(err, DocumentError::Malformed(_)), "{err:?}");
    }

    #[test]
    fn oversized_document_is_refused() {
        let padding = "x".repeat(MAX_DOCUMENT_BYTES);
        let err = validate_document(ID, &doc(json!({ "logo_uri": padding }))).unwrap_err();
        assert_eq!(err, DocumentError::TooLarge);
    }

    #[test]
    fn shared_secret_auth_methods_are_refused() {
        for method in [
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
        ] {
            let err = validate_document(ID, &doc(json!({ "token_endpoint_auth_method": method })))
                .unwrap_err();
            assert_eq!(err, DocumentError::SharedSecret, "{method}");
        }
        let err = validate_document(ID, &doc(json!({"client_secret": "s3cret"}))).unwrap_err();
        assert_eq!(err, DocumentError::SharedSecret);
    }

    #[test]
    fn private_key_jwt_is_refused_as_unsupported() {
        let err = validate_document(
            ID,
            &doc(json!({"token_endpoint_auth_method": "private_key_jwt"})),
        )
        .unwrap_err();
        assert_eq!(err, DocumentError::PrivateKeyJwt);
    }

    #[test]
    fn redirect_uris_follow_the_registration_rules() {
        for uri in [
            "http://app.example/cb",
            "javascript:alert(1)",
            "https://app.example/cb#x",
        ] {
            let err = validate_document(ID, &doc(json!({ "redirect_uris": [uri] }))).unwrap_err();
            assert!(matches!(err, DocumentError::Metadata(_)), "{uri}: {err:?}");
        }
        let err = validate_document(ID, &doc(json!({"redirect_uris": []}))).unwrap_err();
        assert!(matches!(err, DocumentError::Metadata(_)));
    }

    #[test]
    fn client_id_url_needs_a_path_and_no_fragment_credentials_or_dot_segments() {
        assert!(check_client_id_url(ID).is_ok());
        assert!(check_client_id_url("https://app.example/c?v=1").is_ok());
        assert!(check_client_id_url("https://app.example:8443/c").is_ok());
        for bad in [
            "https://app.example",
            "https://app.example/",
            "https://app.example/c#frag",
            "https://user:pw@app.example/c",
            "https://app.example/a/../c",
            "https://app.example/a/%2E%2E/c",
            "https://app.example/./c",
            "https://APP.example/c",
            "https://app.example:443/c",
            "ftp://app.example/c",
            "not a url",
        ] {
            assert!(check_client_id_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_http_and_https_ids_are_document_urls() {
        assert!(is_document_url(ID));
        assert!(is_document_url("HTTP://127.0.0.1:1/c"));
        assert!(!is_document_url("b3f1c0de-registered-id"));
        assert!(!is_document_url("urn:example:client"));
    }

    #[test]
    fn absent_cache_control_means_one_hour() {
        assert_eq!(cache_lifetime(None), 3600);
        assert_eq!(cache_lifetime(Some("public")), 3600);
        assert_eq!(cache_lifetime(Some("max-age=soon")), 3600);
    }

    #[test]
    fn max_age_is_clamped_to_five_minutes_and_a_day() {
        assert_eq!(cache_lifetime(Some("public, max-age=600")), 600);
        assert_eq!(cache_lifetime(Some("max-age=5")), 300);
        assert_eq!(cache_lifetime(Some("max-age=31536000")), 86_400);
        assert_eq!(cache_lifetime(Some("MAX-AGE=\"604800\"")), 86_400);
    }

    #[test]
    fn no_store_no_cache_and_max_age_zero_mean_fetch_every_time() {
        assert_eq!(cache_lifetime(Some("no-store")), 0);
        assert_eq!(cache_lifetime(Some("max-age=600, no-cache")), 0);
        assert_eq!(cache_lifetime(Some("max-age=0")), 0);
    }
}
