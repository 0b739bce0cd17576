//! Parsing form bodies and query strings ourselves: axum's extractors answer
//! malformed input with their own plain-text errors, and OAuth wants RFC error
//! bodies. Repeated parameters are rejected (RFC 6749 §3.1, §3.2).

use std::collections::HashMap;

use crate::oauth::OAuthError;

pub type Params = HashMap<String, String>;

pub fn parse_params(raw: &[u8]) -> Result<Params, OAuthError> {
    let mut out = HashMap::new();
    for pair in raw.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match pair.iter().position(|b| *b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &pair[..0]),
        };
        let (k, v) = (decode(k)?, decode(v)?);
        if out.contains_key(&k) {
            return Err(OAuthError::invalid_request(format!(
                "parameter {k:?} is repeated"
            )));
        }
        out.insert(k, v);
    }
    Ok(out)
}

/// `application/x-www-form-urlencoded` decoding that refuses invalid UTF-8,
/// raw or percent-encoded, instead of replacing it.
fn decode(raw: &[u8]) -> Result<String, OAuthError> {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&plus_as_space).collect();
    let text = String::from_utf8(bytes)
        .map_err(|_| OAuthError::invalid_request("request parameters are not valid UTF-8"))?;
    // PostgreSQL text cannot hold NUL, and no OAuth parameter needs one.
    if text.contains('\0') {
        return Err(OAuthError::invalid_request(
            "request parameters must not contain NUL",
        ));
    }
    Ok(text)
}

/// Reads the parameters into a typed struct of `Option<String>` fields.
pub fn into_struct<T: serde::de::DeserializeOwned>(params: Params) -> T {
    let value = serde_json::Value::Object(
        params
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect(),
    );
    serde_json::from_value(value).expect("a struct of optional strings accepts any string map")
}

/// The `Cookie` header's value for `name`.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The credentials of an `Authorization: Bearer <token>` header. The
/// scheme is case-insensitive (RFC 7235 §2.1); surrounding blanks go.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case("bearer ")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_token_is_read_whatever_the_schemes_case() {
        let with = |value: &str| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(
                axum::http::header::AUTHORIZATION,
                axum::http::HeaderValue::from_str(value).unwrap(),
            );
            bearer_token(&headers).map(str::to_string)
        };
        for value in ["Bearer abc", "bearer abc", "BEARER  abc ", "bEaReR abc"] {
            assert_eq!(with(value).as_deref(), Some("abc"), "{value}");
        }
        for value in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", "Bearé abc"] {
            assert_eq!(with(value), None, "{value}");
        }
        assert_eq!(bearer_token(&axum::http::HeaderMap::new()), None);
    }

    #[test]
    fn repeated_parameter_is_invalid_request() {
        assert!(parse_params(b"code=a&code=b").is_err());
        assert_eq!(parse_params(b"a=1&b=%20").unwrap()["b"], " ");
    }

    #[test]
    fn non_utf8_is_invalid_request_raw_or_percent_encoded() {
        assert!(parse_params(&[0x61, 0x3d, 0xff]).is_err());
        assert!(parse_params(b"a=%FF").is_err());
        assert!(parse_params(b"%C3%28=x").is_err());
        assert!(parse_params(b"client_id=%00").is_err());
        assert!(parse_params(b"client_id=%00").is_err());
    }

    #[test]
    fn form_encoding_is_decoded() {
        let p = parse_params(b"a=x+y%2Bz&b=&c&d=%C3%A9").unwrap();
        assert_eq!(
            (
                p["a"].as_str(),
                p["b"].as_str(),
                p["c"].as_str(),
                p["d"].as_str()
            ),
            ("x y+z", "", "", "é")
        );
    }
}
