//! Access tokens per RFC 9068: a JWT with `typ: at+jwt`, bound to our issuer
//! and to the MCP resource as audience.

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use super::SigningKeys;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// Our user id.
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub scope: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    /// The grant this token was issued under; what the vault maps upstream.
    pub grant_id: String,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccessTokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token was not signed by a key of ours")]
    UnknownKey,
    #[error("the token's signature or claims are invalid")]
    Invalid,
    #[error("the token has expired")]
    Expired,
}

pub const TYP: &str = "at+jwt";

pub fn issue_access_token(keys: &SigningKeys, claims: &AccessClaims) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some(TYP.into());
    header.kid = Some(keys.current_kid().into());
    jsonwebtoken::encode(&header, claims, keys.encoding_key())
        .expect("signing with a loaded ES256 key cannot fail")
}

/// Checks signature (ES256 only: `alg=none` and HMAC confusion fail here),
/// `typ`, issuer, audience and expiry. Whether the grant is still live is the
/// caller's second check.
pub fn verify_access_token(
    keys: &SigningKeys,
    token: &str,
    issuer: &str,
    audience: &str,
) -> Result<AccessClaims, AccessTokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| AccessTokenError::Malformed)?;
    if header.alg != Algorithm::ES256 || header.typ.as_deref() != Some(TYP) {
        return Err(AccessTokenError::Invalid);
    }
    let kid = header.kid.ok_or(AccessTokenError::UnknownKey)?;
    let key = keys
        .decoding_key(&kid)
        .ok_or(AccessTokenError::UnknownKey)?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 0;
    match jsonwebtoken::decode::<AccessClaims>(token, key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
            Err(AccessTokenError::Expired)
        }
        Err(_) => Err(AccessTokenError::Invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::signing::for_tests;

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "https://broker.example".into(),
            sub: "u1".into(),
            aud: "https://broker.example/mcp".into(),
            client_id: "c1".into(),
            scope: "mcp".into(),
            jti: "j1".into(),
            iat: 0,
            exp,
            grant_id: "g1".into(),
        }
    }

    fn far_future() -> i64 {
        crate::now_unix() + 3600
    }

    #[test]
    fn issued_token_verifies_with_issuer_and_audience() {
        let keys = for_tests();
        let token = issue_access_token(&keys, &claims(far_future()));
        let got = verify_access_token(
            &keys,
            &token,
            "https://broker.example",
            "https://broker.example/mcp",
        );
        assert_eq!(got.unwrap().grant_id, "g1");
    }

    #[test]
    fn token_for_another_audience_is_rejected() {
        let keys = for_tests();
        let token = issue_access_token(&keys, &claims(far_future()));
        let got = verify_access_token(
            &keys,
            &token,
            "https://broker.example",
            "https://other.example/mcp",
        );
        assert_eq!(got, Err(AccessTokenError::Invalid));
    }

    #[test]
    fn token_from_another_issuer_is_rejected() {
        let keys = for_tests();
        let token = issue_access_token(&keys, &claims(far_future()));
        let got = verify_access_token(
            &keys,
            &token,
            "https://evil.example",
            "https://broker.example/mcp",
        );
        assert_eq!(got, Err(AccessTokenError::Invalid));
    }

    #[test]
    fn expired_token_is_rejected() {
        let keys = for_tests();
        let token = issue_access_token(&keys, &claims(crate::now_unix() - 1));
        let got = verify_access_token(
            &keys,
            &token,
            "https://broker.example",
            "https://broker.example/mcp",
        );
        assert_eq!(got, Err(AccessTokenError::Expired));
    }

    #[test]
    fn token_signed_by_a_foreign_key_is_rejected() {
        let ours = for_tests();
        let theirs = for_tests();
        let token = issue_access_token(&theirs, &claims(far_future()));
        let got = verify_access_token(
            &ours,
            &token,
            "https://broker.example",
            "https://broker.example/mcp",
        );
        assert_eq!(got, Err(AccessTokenError::UnknownKey));
    }

    #[test]
    fn alg_none_token_is_rejected() {
        use base64::Engine;
        let keys = for_tests();
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let header =
            b64(serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": keys.current_kid()}));
        let body = b64(serde_json::to_value(claims(far_future())).unwrap());
        let token = format!("{header}.{body}.");
        let got = verify_access_token(
            &keys,
            &token,
            "https://broker.example",
            "https://broker.example/mcp",
        );
        assert!(got.is_err());
    }

    #[test]
    fn hs256_token_signed_with_our_public_key_is_rejected() {
        use base64::Engine;
        // The classic confusion: an attacker HMACs a token with the public
        // key (as published) as the secret and hopes we verify it as HMAC.
        let keys = for_tests();
        let jwk = &keys.jwks()["keys"][0];
        let decode = |v: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(v.as_str().unwrap())
                .unwrap()
        };
        let mut public = vec![0x04];
        public.extend(decode(&jwk["x"]));
        public.extend(decode(&jwk["y"]));
        for secret in [public, jwk.to_string().into_bytes()] {
            let mut header = Header::new(Algorithm::HS256);
            header.typ = Some(TYP.into());
            header.kid = Some(keys.current_kid().into());
            let token = jsonwebtoken::encode(
                &header,
                &claims(far_future()),
                &jsonwebtoken::EncodingKey::from_secret(&secret),
            )
            .unwrap();
            let got = verify_access_token(
                &keys,
                &token,
                "https://broker.example",
                "https://broker.example/mcp",
            );
            assert_eq!(got, Err(AccessTokenError::Invalid));
        }
    }

    #[test]
    fn token_without_the_at_jwt_type_is_rejected() {
        let keys = for_tests();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(keys.current_kid().into());
        let token =
            jsonwebtoken::encode(&header, &claims(far_future()), keys.encoding_key()).unwrap();
        let got = verify_access_token(
            &keys,
            &token,
            "https://broker.example",
            "https://broker.example/mcp",
        );
        assert_eq!(got, Err(AccessTokenError::Invalid));
    }
}
