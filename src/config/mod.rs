//! Settings: a TOML file (optional) overlaid by `MCP_BROKER_<KEY>` environment
//! variables. Every error names the key it is about, so an operator can fix a
//! deployment from the first line of output.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod admin;
mod clients;
mod keys;
mod mcp;
mod ops;

pub use clients::PreRegisteredClient;
use clients::{ClientFile, dcr_policy, pre_registered};
pub use keys::decode_key;
use keys::decode_key_list;
pub use mcp::Gateway;
pub use ops::{LogFormat, OpsSettings};

/// The settings file as written. Every field is optional; unknown keys are
/// rejected so a typo never silently falls back to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<String>,
    public_url: Option<String>,
    database_url: Option<String>,
    providers_dir: Option<String>,
    encryption_key: Option<String>,
    encryption_keys: Option<String>,
    encryption_key_active: Option<u64>,
    upstream_timeout_secs: Option<u64>,
    access_token_ttl_secs: Option<u64>,
    refresh_token_ttl_secs: Option<u64>,
    refresh_grace_secs: Option<u64>,
    dcr_mode: Option<String>,
    dcr_initial_access_token: Option<String>,
    #[serde(default)]
    dcr_redirect_uri_patterns: Vec<String>,
    dcr_rate_limit_per_minute: Option<u64>,
    dcr_client_ttl_secs: Option<u64>,
    cimd_enabled: Option<bool>,
    #[serde(default)]
    cimd_allowed_hosts: Vec<String>,
    cimd_allow_http: Option<bool>,
    cimd_ca_file: Option<String>,
    signing_key_rotation_secs: Option<u64>,
    #[serde(default)]
    clients: Vec<ClientFile>,
    #[serde(default)]
    scopes: Vec<crate::oauth::scope::ScopeDef>,
    #[serde(default)]
    mcp_allowed_hosts: Vec<String>,
    #[serde(default)]
    mcp_allowed_origins: Vec<String>,
    #[serde(default)]
    gateways: Vec<mcp::GatewayFile>,
    admin_token: Option<String>,
    log_format: Option<String>,
    metrics_token: Option<String>,
    shutdown_grace_secs: Option<u64>,
    shutdown_delay_secs: Option<u64>,
    audit_retention_days: Option<u64>,
    trust_request_id: Option<bool>,
}

/// Validated settings. `Debug` never shows the encryption key or secrets.
#[derive(Clone)]
pub struct Config {
    pub bind: SocketAddr,
    /// Our issuer and the base of every URL we publish; never ends in `/`.
    pub public_url: String,
    pub database_url: String,
    pub providers_dir: PathBuf,
    /// 32 raw bytes; `None` means "generate or load the SQLite key file".
    pub encryption_key: Option<[u8; 32]>,
    /// Versioned key-encryption keys (`encryption_keys = "2:<b64>,1:<b64>"`):
    /// the highest id seals, all open. `encryption_key` alone is KEK 1.
    pub encryption_keys: Vec<(u32, [u8; 32])>,
    /// The KEK that seals; unset: the highest id. Set it to the old id while
    /// a new key rolls out to every instance.
    pub encryption_key_active: Option<u32>,
    /// Per-request timeout for calls to providers' token endpoints and APIs.
    pub upstream_timeout_secs: u64,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// How long a used refresh token still gets its rotation's answer back.
    pub refresh_grace_secs: u64,
    pub clients: Vec<PreRegisteredClient>,
    /// Who may register dynamically, and with which redirect URIs.
    pub dcr: crate::oauth::registration_policy::DcrPolicy,
    /// Registrations per client IP per minute (0 = unlimited).
    pub dcr_rate_limit_per_minute: u64,
    /// Dynamic registrations unused this long are deleted (0 = never).
    pub dcr_client_ttl_secs: u64,
    /// Resolve `https://` client ids as Client ID Metadata Documents.
    pub cimd_enabled: bool,
    /// Host names and IP literals (normalised) whose documents may be fetched
    /// although they are private, loopback or otherwise non-public.
    pub cimd_allowed_hosts: Vec<String>,
    /// Plain-http documents from allowlisted hosts (tests, development).
    pub cimd_allow_http: bool,
    /// Extra trusted root certificates (PEM) for fetching metadata documents
    /// from hosts with a private CA.
    pub cimd_ca_pem: Option<Vec<u8>>,
    /// Age at which the signing key is replaced (0 = only by command).
    pub signing_key_rotation_secs: u64,
    /// Broker scopes (`[[scopes]]`; defaults fit the GitHub tools).
    pub scopes: crate::oauth::scope::ScopeCatalog,
    /// `Host` names the MCP endpoints answer besides the public URL's and
    /// loopback (e.g. an internal name a proxy forwards with).
    pub mcp_allowed_hosts: Vec<String>,
    /// Browser origins allowed to call the MCP endpoints: the public URL's
    /// origin and these. A request with another `Origin` gets 403.
    pub mcp_allowed_origins: Vec<String>,
    /// Downstream MCP servers proxied at `/mcp/<name>`.
    pub gateways: Vec<Gateway>,
    /// SHA-256 of `admin_token`; `None`: the admin API is off (absent).
    pub admin_token_hash: Option<String>,
    /// Logs, metrics access, shutdown drain, audit retention.
    pub ops: OpsSettings,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("database_url", &redact_url_password(&self.database_url))
            .field("providers_dir", &self.providers_dir)
            .field("encryption_key", &self.encryption_key.map(|_| "<redacted>"))
            .field(
                "encryption_keys",
                &self
                    .encryption_keys
                    .iter()
                    .map(|(id, _)| id)
                    .collect::<Vec<_>>(),
            )
            .field("encryption_key_active", &self.encryption_key_active)
            .field("upstream_timeout_secs", &self.upstream_timeout_secs)
            .field("access_token_ttl_secs", &self.access_token_ttl_secs)
            .field("refresh_token_ttl_secs", &self.refresh_token_ttl_secs)
            .field("refresh_grace_secs", &self.refresh_grace_secs)
            .field("clients", &self.clients)
            .field("dcr_mode", &self.dcr.mode)
            .field("dcr_redirect_uri_patterns", &self.dcr.redirect_uri_patterns)
            .field("dcr_rate_limit_per_minute", &self.dcr_rate_limit_per_minute)
            .field("dcr_client_ttl_secs", &self.dcr_client_ttl_secs)
            .field("signing_key_rotation_secs", &self.signing_key_rotation_secs)
            .field("scopes", &self.scopes)
            .field("cimd_enabled", &self.cimd_enabled)
            .field("cimd_allowed_hosts", &self.cimd_allowed_hosts)
            .field("cimd_allow_http", &self.cimd_allow_http)
            .field("cimd_ca_pem", &self.cimd_ca_pem.as_ref().map(|p| p.len()))
            .field("mcp_allowed_hosts", &self.mcp_allowed_hosts)
            .field("mcp_allowed_origins", &self.mcp_allowed_origins)
            .field("gateways", &self.gateways)
            .field("admin_api", &self.admin_token_hash.is_some())
            .field("ops", &self.ops)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid value for `{key}`: {message}")]
    Invalid { key: String, message: String },
}

/// The keys that can be set from the environment, as `MCP_BROKER_<KEY>`.
/// Other `MCP_BROKER_*` variables are ignored on purpose: orchestrators such as
/// Kubernetes inject `<SERVICE>_PORT`-style variables we must not choke on.
pub const ENV_KEYS: &[&str] = &[
    "bind",
    "public_url",
    "database_url",
    "providers_dir",
    "encryption_key",
    "encryption_keys",
    "encryption_key_active",
    "upstream_timeout_secs",
    "access_token_ttl_secs",
    "refresh_token_ttl_secs",
    "refresh_grace_secs",
    "dcr_mode",
    "dcr_initial_access_token",
    "dcr_rate_limit_per_minute",
    "dcr_client_ttl_secs",
    "cimd_enabled",
    "cimd_allow_http",
    "cimd_ca_file",
    "signing_key_rotation_secs",
    "admin_token",
    "log_format",
    "metrics_token",
    "shutdown_grace_secs",
    "shutdown_delay_secs",
    "audit_retention_days",
    "trust_request_id",
];

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://mcp-broker.db";
pub const DEFAULT_PROVIDERS_DIR: &str = "./providers";

impl Config {
    /// Loads the file (if any), then the process environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Config::from_sources(path, &env)
    }

    /// Loads from a file and an explicit environment (tests pass their own).
    pub fn from_sources(
        path: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let file = match path {
            Some(path) => parse_file(path)?,
            None => FileConfig::default(),
        };
        let lookup = |key: &str| {
            let name = format!("MCP_BROKER_{}", key.to_ascii_uppercase());
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (name, v.clone()))
        };
        // Env wins over the file; the error names whichever source was used.
        let pick = |key: &str, from_file: Option<String>| -> Option<(String, String)> {
            lookup(key).or_else(|| from_file.map(|v| (key.to_string(), v)))
        };
        let pick_u64 = |key: &str, from_file: Option<u64>| -> Result<Option<u64>, ConfigError> {
            match lookup(key) {
                Some((name, v)) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| ConfigError::Invalid {
                        key: name,
                        message: format!("expected a whole number, got {v:?}"),
                    }),
                None => Ok(from_file),
            }
        };

        let pick_bool = |key: &str, from_file: Option<bool>| -> Result<Option<bool>, ConfigError> {
            match lookup(key) {
                Some((name, v)) => parse_bool(&v)
                    .map(Some)
                    .ok_or_else(|| ConfigError::Invalid {
                        key: name,
                        message: format!("expected true or false, got {v:?}"),
                    }),
                None => Ok(from_file),
            }
        };

        let (bind_key, bind) =
            pick("bind", file.bind).unwrap_or_else(|| ("bind".into(), DEFAULT_BIND.into()));
        let bind = bind.parse().map_err(|_| ConfigError::Invalid {
            key: bind_key,
            message: format!("expected host:port such as {DEFAULT_BIND}, got {bind:?}"),
        })?;

        let (url_key, public_url) = pick("public_url", file.public_url)
            .unwrap_or_else(|| ("public_url".into(), DEFAULT_PUBLIC_URL.into()));
        let public_url =
            normalize_public_url(&public_url).map_err(|message| ConfigError::Invalid {
                key: url_key,
                message,
            })?;

        let (db_key, database_url) = pick("database_url", file.database_url)
            .unwrap_or_else(|| ("database_url".into(), DEFAULT_DATABASE_URL.into()));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid {
                key: db_key,
                message: "expected a sqlite: or postgres:// URL".into(),
            });
        }

        let providers_dir = pick("providers_dir", file.providers_dir)
            .map(|(_, v)| v)
            .unwrap_or_else(|| DEFAULT_PROVIDERS_DIR.into())
            .into();

        let encryption_key = match pick("encryption_key", file.encryption_key) {
            Some((key, value)) => {
                Some(decode_key(&value).map_err(|message| ConfigError::Invalid { key, message })?)
            }
            None => None,
        };
        let encryption_keys = match pick("encryption_keys", file.encryption_keys) {
            Some((key, value)) => decode_key_list(&value, encryption_key)
                .map_err(|message| ConfigError::Invalid { key, message })?,
            None => encryption_key.map(|k| vec![(1, k)]).unwrap_or_default(),
        };
        let encryption_key_active =
            match pick_u64("encryption_key_active", file.encryption_key_active)? {
                Some(id) => Some(
                    u32::try_from(id)
                        .ok()
                        .filter(|id| encryption_keys.iter().any(|(k, _)| k == id))
                        .ok_or_else(|| ConfigError::Invalid {
                            key: "encryption_key_active".into(),
                            message: format!("key {id} is not among the configured keys"),
                        })?,
                ),
                None => None,
            };
        let upstream_timeout_secs =
            pick_u64("upstream_timeout_secs", file.upstream_timeout_secs)?.unwrap_or(15);
        if upstream_timeout_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "upstream_timeout_secs".into(),
                message: "must be greater than zero".into(),
            });
        }

        let access_token_ttl_secs =
            pick_u64("access_token_ttl_secs", file.access_token_ttl_secs)?.unwrap_or(3600);
        let refresh_token_ttl_secs =
            pick_u64("refresh_token_ttl_secs", file.refresh_token_ttl_secs)?
                .unwrap_or(30 * 24 * 3600);
        let refresh_grace_secs =
            pick_u64("refresh_grace_secs", file.refresh_grace_secs)?.unwrap_or(10);
        for (key, value) in [
            ("access_token_ttl_secs", access_token_ttl_secs),
            ("refresh_token_ttl_secs", refresh_token_ttl_secs),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key: key.into(),
                    message: "must be greater than zero".into(),
                });
            }
        }
        // A refresh token that dies before the access token issued with it
        // buys nothing, and the upkeep reads a grant whose refresh tokens are
        // all gone as one no token of ours can use any more.
        if refresh_token_ttl_secs < access_token_ttl_secs {
            return Err(ConfigError::Invalid {
                key: "refresh_token_ttl_secs".into(),
                message: format!(
                    "must be at least access_token_ttl_secs ({access_token_ttl_secs})"
                ),
            });
        }

        let dcr = dcr_policy(
            pick("dcr_mode", file.dcr_mode),
            pick("dcr_initial_access_token", file.dcr_initial_access_token),
            file.dcr_redirect_uri_patterns,
        )?;
        let dcr_rate_limit_per_minute =
            pick_u64("dcr_rate_limit_per_minute", file.dcr_rate_limit_per_minute)?.unwrap_or(20);
        let dcr_client_ttl_secs =
            pick_u64("dcr_client_ttl_secs", file.dcr_client_ttl_secs)?.unwrap_or(90 * 24 * 3600);

        let cimd_enabled = pick_bool("cimd_enabled", file.cimd_enabled)?.unwrap_or(true);
        let cimd_allow_http = pick_bool("cimd_allow_http", file.cimd_allow_http)?.unwrap_or(false);
        let cimd_ca_pem = match pick("cimd_ca_file", file.cimd_ca_file) {
            Some((key, path)) => {
                let pem = std::fs::read(&path).map_err(|e| ConfigError::Invalid {
                    key: key.clone(),
                    message: format!("cannot read {path}: {e}"),
                })?;
                if reqwest::Certificate::from_pem_bundle(&pem).map_or(true, |c| c.is_empty()) {
                    return Err(ConfigError::Invalid {
                        key,
                        message: format!("{path} holds no PEM certificate"),
                    });
                }
                Some(pem)
            }
            None => None,
        };
        let cimd_allowed_hosts = each("cimd_allowed_hosts", &file.cimd_allowed_hosts, |h| {
            allowed_host(h)
        })?;

        let signing_key_rotation_secs =
            pick_u64("signing_key_rotation_secs", file.signing_key_rotation_secs)?
                .unwrap_or(30 * 24 * 3600);

        let scopes = if file.scopes.is_empty() {
            crate::oauth::scope::ScopeCatalog::default()
        } else {
            crate::oauth::scope::ScopeCatalog::new(file.scopes).map_err(|message| {
                ConfigError::Invalid {
                    key: "scopes".into(),
                    message,
                }
            })?
        };

        let mcp = mcp::settings(
            &file.mcp_allowed_hosts,
            &file.mcp_allowed_origins,
            file.gateways,
            &public_url,
            &scopes,
        )?;

        let ops = ops::settings(
            pick("log_format", file.log_format),
            pick("metrics_token", file.metrics_token),
            pick_u64("shutdown_grace_secs", file.shutdown_grace_secs)?,
            pick_u64("shutdown_delay_secs", file.shutdown_delay_secs)?,
            pick_u64("audit_retention_days", file.audit_retention_days)?,
            pick_bool("trust_request_id", file.trust_request_id)?.unwrap_or(true),
        )?;

        let clients = each("clients", file.clients, |c| pre_registered(c, env))?;
        let mut ids = std::collections::HashSet::new();
        if let Some(dup) = clients.iter().find(|c| !ids.insert(c.client_id.clone())) {
            return Err(ConfigError::Invalid {
                key: "clients".into(),
                message: format!("client_id {:?} is listed twice", dup.client_id),
            });
        }

        let admin_token_hash = admin::admin_token_hash(pick("admin_token", file.admin_token))?;

        Ok(Config {
            bind,
            public_url,
            database_url,
            providers_dir,
            encryption_key,
            encryption_keys,
            encryption_key_active,
            upstream_timeout_secs,
            access_token_ttl_secs,
            refresh_token_ttl_secs,
            refresh_grace_secs,
            clients,
            dcr,
            dcr_rate_limit_per_minute,
            dcr_client_ttl_secs,
            cimd_enabled,
            cimd_allowed_hosts,
            cimd_allow_http,
            cimd_ca_pem,
            signing_key_rotation_secs,
            scopes,
            mcp_allowed_hosts: mcp.hosts,
            mcp_allowed_origins: mcp.origins,
            gateways: mcp.gateways,
            admin_token_hash,
            ops,
        })
    }

    pub fn is_postgres(&self) -> bool {
        !self.database_url.starts_with("sqlite:")
    }

    /// The MCP endpoint: the `resource` our tokens are bound to.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.public_url)
    }
}

/// Validates every entry of the list `key`; an error names the entry
/// (`key[i]`).
fn each<T, U>(
    key: &str,
    items: impl IntoIterator<Item = T>,
    check: impl Fn(T) -> Result<U, String>,
) -> Result<Vec<U>, ConfigError> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            check(item).map_err(|message| ConfigError::Invalid {
                key: format!("{key}[{i}]"),
                message,
            })
        })
        .collect()
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// A `cimd_allowed_hosts` entry: an IP literal (IPv6 with or without
/// brackets) or a host name; never a URL, port or wildcard, so an entry
/// cannot allow more than the one host it names.
fn allowed_host(entry: &str) -> Result<String, String> {
    let entry = entry.trim();
    let bare = entry.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(ip.to_string());
    }
    let name = entry.trim_end_matches('.').to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if valid {
        Ok(name)
    } else {
        Err(format!("expected a host name or IP address, got {entry:?}"))
    }
}

fn parse_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.display().to_string(),
        // toml's message names the unknown or mistyped key and its line.
        message: e.to_string(),
    })
}

/// The issuer must be byte-identical everywhere, so it is normalised once:
/// http(s), no query or fragment, no trailing slash.
fn normalize_public_url(raw: &str) -> Result<String, String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("not a URL ({e})"))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err("must be an http:// or https:// URL".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    if url.host_str().is_none() {
        return Err("must have a host".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests;
