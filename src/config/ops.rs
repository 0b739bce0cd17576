//! Settings of running the broker: log format, who may scrape metrics, how
//! long a stop drains, how long the audit ledger keeps events, whether a
//! caller's request id is kept.

use super::ConfigError;

/// The operations settings, validated.
#[derive(Clone)]
pub struct OpsSettings {
    pub log_format: LogFormat,
    /// SHA-256 of the bearer token `/metrics` requires; `None`: open.
    pub metrics_token_hash: Option<String>,
    /// After SIGTERM, how long in-flight requests (and open MCP streams) may
    /// run before the process exits anyway.
    pub shutdown_grace_secs: u64,
    /// After SIGTERM, how long `/readyz` fails while connections are still
    /// accepted, so load balancers stop sending before the listener closes.
    pub shutdown_delay_secs: u64,
    /// Audit events older than this many days are purged (0 = kept forever).
    pub audit_retention_days: u64,
    /// Whether a request's own plain `X-Request-Id` is kept (a proxy's id
    /// joins the logs across hops) or always replaced by ours (a broker
    /// that clients reach directly: they cannot choose what the ledger says).
    pub trust_request_id: bool,
}

impl Default for OpsSettings {
    fn default() -> OpsSettings {
        OpsSettings {
            log_format: LogFormat::Text,
            metrics_token_hash: None,
            shutdown_grace_secs: DEFAULT_SHUTDOWN_GRACE_SECS,
            shutdown_delay_secs: 0,
            audit_retention_days: 0,
            trust_request_id: true,
        }
    }
}

impl std::fmt::Debug for OpsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsSettings")
            .field("log_format", &self.log_format)
            .field(
                "metrics_token",
                &self.metrics_token_hash.as_ref().map(|_| "<redacted>"),
            )
            .field("shutdown_grace_secs", &self.shutdown_grace_secs)
            .field("shutdown_delay_secs", &self.shutdown_delay_secs)
            .field("audit_retention_days", &self.audit_retention_days)
            .field("trust_request_id", &self.trust_request_id)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line, with the request span's fields.
    Json,
}

pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 30;

/// A retention so long it cannot mean what it says: the purge's cut-off
/// arithmetic would overflow.
const MAX_AUDIT_RETENTION_DAYS: u64 = 36_500;

/// Each value is `(the key or variable it came from, the value)`.
pub(super) fn settings(
    log_format: Option<(String, String)>,
    metrics_token: Option<(String, String)>,
    shutdown_grace_secs: Option<u64>,
    shutdown_delay_secs: Option<u64>,
    audit_retention_days: Option<u64>,
    trust_request_id: bool,
) -> Result<OpsSettings, ConfigError> {
    let log_format = match log_format {
        None => LogFormat::Text,
        Some((key, value)) => match value.trim().to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => {
                return Err(ConfigError::Invalid {
                    key,
                    message: format!("expected text or json, got {value:?}"),
                });
            }
        },
    };
    let metrics_token_hash = match metrics_token {
        None => None,
        Some((key, value)) if value.trim().len() < 16 => {
            return Err(ConfigError::Invalid {
                key,
                message: "must be at least 16 characters (generate a random one)".into(),
            });
        }
        Some((_, value)) => Some(crate::tokens::opaque::hash_secret(value.trim())),
    };
    let audit_retention_days = audit_retention_days.unwrap_or(0);
    if audit_retention_days > MAX_AUDIT_RETENTION_DAYS {
        return Err(ConfigError::Invalid {
            key: "audit_retention_days".into(),
            message: format!(
                "at most {MAX_AUDIT_RETENTION_DAYS} (100 years); 0 keeps events forever"
            ),
        });
    }
    Ok(OpsSettings {
        log_format,
        metrics_token_hash,
        shutdown_grace_secs: shutdown_grace_secs.unwrap_or(DEFAULT_SHUTDOWN_GRACE_SECS),
        shutdown_delay_secs: shutdown_delay_secs.unwrap_or(0),
        audit_retention_days,
        trust_request_id,
    })
}
