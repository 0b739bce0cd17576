//! The id_token rules, each with a token signed by a key made here.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::ecdsa::SigningKey;
use p256::pkcs8::EncodePrivateKey;
use serde_json::json;

use super::*;
use crate::upstream::provider::parse_provider;

const ISSUER: &str = "https://id.example.test";
const CLIENT: &str = "broker-client";
const NONCE: &str = "n-0S6_WzA2Mj";

struct Key {
    encoding: EncodingKey,
    jwk: Value,
}

fn key(kid: &str) -> Key {
    use base64::Engine;
    let signing = SigningKey::random(&mut rand::rngs::OsRng);
    let der = signing.to_pkcs8_der().unwrap();
    let point = signing.verifying_key().to_encoded_point(false);
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    Key {
        encoding: EncodingKey::from_ec_der(der.as_bytes()),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
        }),
    }
}

fn jwks(keys: &[&Key]) -> CoreJsonWebKeySet {
    let keys: Vec<Value> = keys.iter().map(|k| k.jwk.clone()).collect();
    serde_json::from_value(json!({ "keys": keys })).unwrap()
}

fn claims() -> Value {
    let now = crate::now_unix();
    json!({
        "iss": ISSUER, "aud": CLIENT, "sub": "user-42", "nonce": NONCE,
        "iat": now, "exp": now + 300,
        "preferred_username": "ada", "email": "ada@example.test",
    })
}

fn sign(key: &Key, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

fn verify(token: &str, keys: &CoreJsonWebKeySet) -> Result<VerifiedIdToken, IdTokenError> {
    let hash = nonce_hash(NONCE);
    let expected = Expected {
        issuer: ISSUER,
        client_id: CLIENT,
        nonce_hash: &hash,
    };
    verify_id_token(token, &expected, keys)
}

fn with(change: impl FnOnce(&mut Map<String, Value>)) -> Value {
    let mut c = claims();
    change(c.as_object_mut().unwrap());
    c
}

#[test]
fn id_token_with_good_signature_issuer_audience_expiry_and_nonce_is_accepted() {
    let k = key("k1");
    let verified = verify(&sign(&k, "k1", &claims()), &jwks(&[&k])).unwrap();
    assert_eq!(verified.subject, "user-42");
    assert_eq!(
        claim_text(&verified.claims, "email").unwrap(),
        "ada@example.test"
    );
}

#[test]
fn id_token_with_the_wrong_nonce_is_refused() {
    let k = key("k1");
    let token = sign(
        &k,
        "k1",
        &with(|c| {
            c.insert("nonce".into(), json!("other"));
        }),
    );
    assert_eq!(verify(&token, &jwks(&[&k])), Err(IdTokenError::WrongNonce));
}

#[test]
fn id_token_without_a_nonce_is_refused() {
    let k = key("k1");
    let token = sign(
        &k,
        "k1",
        &with(|c| {
            c.remove("nonce");
        }),
    );
    assert_eq!(verify(&token, &jwks(&[&k])), Err(IdTokenError::WrongNonce));
}

#[test]
fn id_token_for_another_audience_is_refused() {
    let k = key("k1");
    let token = sign(
        &k,
        "k1",
        &with(|c| {
            c.insert("aud".into(), json!("someone-else"));
        }),
    );
    assert_eq!(
        verify(&token, &jwks(&[&k])),
        Err(IdTokenError::WrongAudience)
    );
    // Us plus an audience we do not know of: refused too (OIDC Core §3.1.3.7).
    let token = sign(
        &k,
        "k1",
        &with(|c| {
            c.insert("aud".into(), json!([CLIENT, "someone-else"]));
        }),
    );
    assert_eq!(
        verify(&token, &jwks(&[&k])),
        Err(IdTokenError::WrongAudience)
    );
}

#[test]
fn id_token_from_another_issuer_is_refused() {
    let k = key("k1");
    let token = sign(
        &k,
        "k1",
        &with(|c| {
            c.insert("iss".into(), json!("https://evil.example.test"));
        }),
    );
    assert_eq!(verify(&token, &jwks(&[&k])), Err(IdTokenError::WrongIssuer));
}

#[test]
fn id_token_with_a_bad_signature_is_refused() {
    let published = key("k1");
    let attacker = key("k1");
    // Signed by a key the provider never published, under a published kid.
    let token = sign(&attacker, "k1", &claims());
    assert_eq!(
        verify(&token, &jwks(&[&published])),
        Err(IdTokenError::BadSignature)
    );
    // A genuine token whose payload was edited after signing.
    let genuine = sign(&published, "k1", &claims());
    let forged_payload = {
        use base64::Engine;
        let c = with(|c| {
            c.insert("sub".into(), json!("admin"));
        });
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(c.to_string())
    };
    let parts: Vec<&str> = genuine.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_eq!(
        verify(&tampered, &jwks(&[&published])),
        Err(IdTokenError::BadSignature)
    );
}

#[test]
fn id_token_signed_with_the_shared_secret_or_unsigned_is_refused() {
    let k = key("k1");
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(b"client-secret"),
    )
    .unwrap();
    assert!(verify(&hs, &jwks(&[&k])).is_err());
    let unsigned = {
        use base64::Engine;
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&claims()))
    };
    assert!(verify(&unsigned, &jwks(&[&k])).is_err());
}

#[test]
fn expired_id_token_is_refused() {
    let k = key("k1");
    let now = crate::now_unix();
    let token = sign(
        &k,
        "k1",
        &with(|c| {
            c.insert("exp".into(), json!(now - 600));
        }),
    );
    assert_eq!(verify(&token, &jwks(&[&k])), Err(IdTokenError::Expired));
}

#[test]
fn garbage_is_a_malformed_id_token() {
    let k = key("k1");
    assert_eq!(
        verify("not-a-jwt", &jwks(&[&k])),
        Err(IdTokenError::Malformed)
    );
}

#[test]
fn the_nonce_is_stored_only_as_its_hash() {
    let hash = nonce_hash(NONCE);
    assert_ne!(hash, NONCE);
    assert!(!hash.contains(NONCE));
    assert!(hash_matches(NONCE, &hash));
    assert!(!hash_matches("other", &hash));
}

fn verified(claims: Value) -> VerifiedIdToken {
    VerifiedIdToken {
        subject: claims["sub"].as_str().unwrap().to_string(),
        claims: claims.as_object().unwrap().clone(),
    }
}

fn oidc_fields() -> IdentityFields {
    let text = r#"
id = "acme"
display_name = "Acme"
kind = "oidc"
issuer = "https://id.example.test"
api_base_url = "https://api.example.test"
client_id = "c"
client_secret = "s"
"#;
    parse_provider(text, &|_| None).unwrap().unwrap().identity
}

#[test]
fn identity_comes_from_the_id_token_claims() {
    let fields = oidc_fields();
    let token = verified(claims());
    assert!(!needs_userinfo(&token, &fields));
    let identity = identity_from_claims(&token, None, &fields).unwrap();
    assert_eq!(identity.subject, "user-42");
    assert_eq!(identity.login, "ada");
    assert_eq!(identity.email.as_deref(), Some("ada@example.test"));
}

#[test]
fn identity_falls_back_to_userinfo_for_claims_the_id_token_lacks() {
    let fields = oidc_fields();
    let token = verified(json!({"sub": "user-42"}));
    assert!(needs_userinfo(&token, &fields));
    let info = json!({"sub": "user-42", "preferred_username": "ada", "email": "a@x.test"});
    let identity = identity_from_claims(&token, info.as_object(), &fields).unwrap();
    assert_eq!(identity.login, "ada");
    assert_eq!(identity.email.as_deref(), Some("a@x.test"));
    // Without either, the login is the subject.
    let bare = identity_from_claims(&token, None, &fields).unwrap();
    assert_eq!(bare.login, "user-42");
}

#[test]
fn userinfo_about_another_subject_is_refused() {
    let fields = oidc_fields();
    let token = verified(json!({"sub": "user-42"}));
    let info = json!({"sub": "user-43", "preferred_username": "mallory"});
    assert_eq!(
        identity_from_claims(&token, info.as_object(), &fields),
        Err(IdTokenError::UserinfoSubjectMismatch)
    );
}

fn discovery_doc(issuer: &str) -> Vec<u8> {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/me"),
        "jwks_uri": format!("{issuer}/jwks"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    })
    .to_string()
    .into_bytes()
}

#[test]
fn discovery_fills_endpoints_and_the_file_s_own_endpoints_win() {
    let text = r#"
id = "acme"
display_name = "Acme"
kind = "oidc"
issuer = "https://id.example.test"
token_url = "https://proxy.example.test/token"
api_base_url = "https://api.example.test"
client_id = "c"
client_secret = "s"
revocation_style = "rfc7009"
"#;
    let mut p = parse_provider(text, &|_| None).unwrap().unwrap();
    let found = read_discovery(ISSUER, &discovery_doc(ISSUER)).unwrap();
    apply_discovery(&mut p, found).unwrap();
    assert_eq!(p.authorize_url, "https://id.example.test/auth");
    assert_eq!(p.token_url, "https://proxy.example.test/token");
    assert_eq!(p.userinfo_url, "https://id.example.test/me");
    assert_eq!(p.jwks_uri, "https://id.example.test/jwks");
    assert_eq!(
        p.revocation_url.as_deref(),
        Some("https://id.example.test/revoke")
    );
}

#[test]
fn a_discovery_document_naming_another_issuer_is_refused() {
    let err = read_discovery(ISSUER, &discovery_doc("https://evil.example.test")).unwrap_err();
    assert!(err.contains("issuer"), "{err}");
    assert_eq!(
        discovery_url("https://id.example.test/tenant/"),
        "https://id.example.test/tenant/.well-known/openid-configuration"
    );
}

const RFC7009_WITHOUT_URL: &str = r#"
id = "acme"
display_name = "Acme"
issuer = "https://id.example.test"
authorize_url = "https://id.example.test/auth"
token_url = "https://id.example.test/token"
userinfo_url = "https://id.example.test/me"
api_base_url = "https://api.example.test"
client_id = "c"
client_secret = "s"
revocation_style = "rfc7009"
"#;

#[test]
fn rfc7009_without_a_revocation_url_waits_for_discovery_only_for_oidc() {
    let oidc = format!("kind = \"oidc\"\n{RFC7009_WITHOUT_URL}");
    let p = parse_provider(&oidc, &|_| None).unwrap().unwrap();
    assert_eq!(p.revocation_url, None);
    // An `oauth2` provider has no discovery to name it later.
    let err = parse_provider(RFC7009_WITHOUT_URL, &|_| None).unwrap_err();
    assert!(err.contains("revocation_url"), "{err}");
}

#[test]
fn rfc7009_without_a_revocation_endpoint_after_discovery_skips_the_provider_with_the_reason() {
    let oidc = format!("kind = \"oidc\"\n{RFC7009_WITHOUT_URL}");
    let mut p = parse_provider(&oidc, &|_| None).unwrap().unwrap();
    let mut doc: Value = serde_json::from_slice(&discovery_doc(ISSUER)).unwrap();
    doc.as_object_mut().unwrap().remove("revocation_endpoint");
    let found = read_discovery(ISSUER, doc.to_string().as_bytes()).unwrap();
    assert_eq!(found.revocation_url, None);
    let why = apply_discovery(&mut p, found).unwrap_err();
    assert!(
        why.contains("rfc7009") && why.contains("revocation endpoint"),
        "{why}"
    );
}

#[test]
fn the_file_s_revocation_url_wins_over_discovery() {
    let oidc = format!(
        "kind = \"oidc\"\nrevocation_url = \"https://proxy.example.test/revoke\"\n\
         {RFC7009_WITHOUT_URL}"
    );
    let mut p = parse_provider(&oidc, &|_| None).unwrap().unwrap();
    let found = read_discovery(ISSUER, &discovery_doc(ISSUER)).unwrap();
    apply_discovery(&mut p, found).unwrap();
    assert_eq!(
        p.revocation_url.as_deref(),
        Some("https://proxy.example.test/revoke")
    );
}
