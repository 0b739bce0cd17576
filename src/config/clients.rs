//! Client settings: the dynamic registration policy and `[[clients]]`,
//! each pre-registered client validated like a registration request.

use serde::Deserialize;

use super::ConfigError;

/// A pre-registered client as written in the file (`[[clients]]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClientFile {
    client_id: String,
    client_name: Option<String>,
    redirect_uris: Vec<String>,
    /// Makes the client confidential; may be a `${ENV_VAR}` reference.
    client_secret: Option<String>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    /// Providers whose upstream token this (confidential) client may obtain
    /// by token exchange (RFC 8693).
    #[serde(default)]
    token_exchange: Vec<String>,
}

/// A pre-registered client, validated like a registration request.
#[derive(Clone, PartialEq, Eq)]
pub struct PreRegisteredClient {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub registration: crate::oauth::register::Registration,
    /// Providers it may exchange a user's access token for (RFC 8693).
    pub token_exchange: Vec<String>,
}

impl std::fmt::Debug for PreRegisteredClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreRegisteredClient")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("registration", &self.registration)
            .field("token_exchange", &self.token_exchange)
            .finish()
    }
}

pub(super) fn dcr_policy(
    mode: Option<(String, String)>,
    token: Option<(String, String)>,
    patterns: Vec<String>,
) -> Result<crate::oauth::registration_policy::DcrPolicy, ConfigError> {
    use crate::oauth::registration_policy::{DcrMode, DcrPolicy};
    let mode = match mode {
        None => DcrMode::Open,
        Some((key, value)) => DcrMode::parse(value.trim()).ok_or_else(|| ConfigError::Invalid {
            key,
            message: format!("expected open, initial-access-token or closed, got {value:?}"),
        })?,
    };
    let initial_access_token_hash = match token {
        Some((key, value)) if value.trim().len() < 16 => {
            return Err(ConfigError::Invalid {
                key,
                message: "must be at least 16 characters (generate a random one)".into(),
            });
        }
        Some((_, value)) => Some(crate::tokens::opaque::hash_secret(value.trim())),
        None => None,
    };
    if mode == DcrMode::InitialAccessToken && initial_access_token_hash.is_none() {
        return Err(ConfigError::Invalid {
            key: "dcr_initial_access_token".into(),
            message: "is required when dcr_mode is initial-access-token".into(),
        });
    }
    Ok(DcrPolicy {
        mode,
        initial_access_token_hash,
        redirect_uri_patterns: patterns,
    })
}

pub(super) fn pre_registered(
    c: ClientFile,
    env: &[(String, String)],
) -> Result<PreRegisteredClient, String> {
    if c.client_id.is_empty() || c.client_id.len() > 200 || c.client_id.contains("://") {
        return Err(
            "client_id must be 1-200 characters and not a URL (URLs are client metadata documents)"
                .into(),
        );
    }
    let client_secret = match c.client_secret {
        Some(raw) => {
            let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            let mut missing = std::collections::BTreeSet::new();
            let value = crate::upstream::provider::interpolate(&raw, &lookup, &mut missing)?;
            if !missing.is_empty() {
                let names: Vec<_> = missing.into_iter().collect();
                return Err(format!(
                    "client_secret refers to unset variables: {}",
                    names.join(", ")
                ));
            }
            Some(value)
        }
        None => None,
    };
    let method = c.token_endpoint_auth_method.unwrap_or_else(|| {
        if client_secret.is_some() {
            "client_secret_basic".into()
        } else {
            "none".into()
        }
    });
    let registration = crate::oauth::register::validate_registration(
        crate::oauth::register::RegistrationRequest {
            redirect_uris: Some(c.redirect_uris),
            client_name: c.client_name,
            token_endpoint_auth_method: Some(method),
            grant_types: c
                .grant_types
                .or_else(|| Some(vec!["authorization_code".into(), "refresh_token".into()])),
            response_types: None,
            application_type: None,
            scope: None,
        },
    )
    .map_err(|e| e.description)?;
    if registration.confidential != client_secret.is_some() {
        return Err(
            "client_secret is required exactly when token_endpoint_auth_method is not \"none\""
                .into(),
        );
    }
    // Handing out a user's upstream token needs a client that proves who
    // it is: never a public client.
    if !c.token_exchange.is_empty() && client_secret.is_none() {
        return Err("token_exchange is only for confidential clients (set client_secret)".into());
    }
    Ok(PreRegisteredClient {
        client_id: c.client_id,
        client_secret,
        registration,
        token_exchange: c.token_exchange,
    })
}
