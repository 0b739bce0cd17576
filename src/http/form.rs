//! Parsing form bodies and query strings ourselves: axum's extractors answer
//! malformed input with their own plain-text errors, and OAuth wants RFC error
//! bodies. Repeated parameters are rejected (RFC 6749 §3.1, §3.2).

use std::collections::HashMap;

use crate::oauth::OAuthError;

pub type Params = HashMap<String, String>;

pub fn parse_params(raw: &[u8]) -> Result<Params, OAuthError> {
    if std::str::from_utf8(raw).is_err() {
        return Err(OAuthError::invalid_request("request parameters are not valid UTF-8"));
    }
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(OAuthError::invalid_request(format!("parameter {k:?} is repeated")));
        }
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameter_is_invalid_request() {
        assert!(parse_params(b"code=a&code=b").is_err());
        assert_eq!(parse_params(b"a=1&b=%20").unwrap()["b"], " ");
    }

    #[test]
    fn non_utf8_is_invalid_request() {
        assert!(parse_params(&[0x61, 0x3d, 0xff]).is_err());
    }
}
