//! Settings: loading, precedence, and errors that name their key.
use super::*;
use base64::Engine;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_run_on_a_fresh_machine() {
    let c = Config::from_sources(None, &[]).unwrap();
    assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(c.public_url, "http://127.0.0.1:8080");
    assert!(c.database_url.starts_with("sqlite:"));
    assert!(c.encryption_key.is_none());
}

#[test]
fn env_wins_over_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "bind = \"127.0.0.1:9000\"\npublic_url = \"https://a.example\"\n",
    )
    .unwrap();
    let c = Config::from_sources(
        Some(&path),
        &env(&[("MCP_BROKER_PUBLIC_URL", "https://b.example/")]),
    )
    .unwrap();
    assert_eq!(c.bind.to_string(), "127.0.0.1:9000");
    assert_eq!(c.public_url, "https://b.example");
}

#[test]
fn unknown_file_key_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "publik_url = \"https://a.example\"\n").unwrap();
    let err = Config::from_sources(Some(&path), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("publik_url"), "{err}");
}

#[test]
fn invalid_values_name_their_key() {
    for (name, value) in [
        ("MCP_BROKER_BIND", "nope"),
        ("MCP_BROKER_PUBLIC_URL", "ftp://x"),
        ("MCP_BROKER_DATABASE_URL", "mysql://x"),
        ("MCP_BROKER_ENCRYPTION_KEY", "c2hvcnQ="),
        ("MCP_BROKER_ACCESS_TOKEN_TTL_SECS", "soon"),
    ] {
        let err = Config::from_sources(None, &env(&[(name, value)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(name), "{name}: {err}");
    }
}

#[test]
fn a_refresh_token_may_not_live_shorter_than_an_access_token() {
    let err = Config::from_sources(
        None,
        &env(&[
            ("MCP_BROKER_ACCESS_TOKEN_TTL_SECS", "7200"),
            ("MCP_BROKER_REFRESH_TOKEN_TTL_SECS", "3600"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("refresh_token_ttl_secs"), "{err}");
    assert!(
        err.contains("at least access_token_ttl_secs (7200)"),
        "{err}"
    );
    let equal = env(&[
        ("MCP_BROKER_ACCESS_TOKEN_TTL_SECS", "3600"),
        ("MCP_BROKER_REFRESH_TOKEN_TTL_SECS", "3600"),
    ]);
    assert!(Config::from_sources(None, &equal).is_ok());
}

#[test]
fn request_ids_are_trusted_unless_the_setting_says_false() {
    let default = Config::from_sources(None, &[]).unwrap();
    assert!(default.ops.trust_request_id);
    let off = env(&[("MCP_BROKER_TRUST_REQUEST_ID", "false")]);
    assert!(
        !Config::from_sources(None, &off)
            .unwrap()
            .ops
            .trust_request_id
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "trust_request_id = false\n").unwrap();
    assert!(
        !Config::from_sources(Some(&path), &[])
            .unwrap()
            .ops
            .trust_request_id
    );
    let bad = env(&[("MCP_BROKER_TRUST_REQUEST_ID", "perhaps")]);
    let err = Config::from_sources(None, &bad).unwrap_err().to_string();
    assert!(err.contains("MCP_BROKER_TRUST_REQUEST_ID"), "{err}");
}

#[test]
fn pre_registered_clients_are_validated_and_secrets_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[[clients]]\nclient_id = \"rs\"\nredirect_uris = [\"https://rs.example/cb\"]\nclient_secret = \"${RS_SECRET}\"\n",
    )
    .unwrap();
    let c = Config::from_sources(Some(&path), &env(&[("RS_SECRET", "s3cret")])).unwrap();
    assert_eq!(c.clients[0].client_secret.as_deref(), Some("s3cret"));
    assert_eq!(
        c.clients[0].registration.token_endpoint_auth_method,
        "client_secret_basic"
    );
    assert!(!format!("{c:?}").contains("s3cret"));
    let err = Config::from_sources(Some(&path), &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("clients[0]") && err.contains("RS_SECRET"),
        "{err}"
    );
}

#[test]
fn pre_registered_client_with_bad_redirect_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[[clients]]\nclient_id = \"x\"\nredirect_uris = [\"http://evil.example/cb\"]\n",
    )
    .unwrap();
    let err = Config::from_sources(Some(&path), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("clients[0]"), "{err}");
}

#[test]
fn initial_access_token_mode_requires_the_token() {
    let err = Config::from_sources(
        None,
        &env(&[("MCP_BROKER_DCR_MODE", "initial-access-token")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("dcr_initial_access_token"), "{err}");
    let err = Config::from_sources(None, &env(&[("MCP_BROKER_DCR_MODE", "sometimes")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("MCP_BROKER_DCR_MODE"), "{err}");
}

#[test]
fn cimd_settings_default_to_enabled_https_only_and_no_allowlist() {
    let c = Config::from_sources(None, &[]).unwrap();
    assert!(c.cimd_enabled && !c.cimd_allow_http && c.cimd_allowed_hosts.is_empty());
    let c = Config::from_sources(None, &env(&[("MCP_BROKER_CIMD_ENABLED", "false")])).unwrap();
    assert!(!c.cimd_enabled);
    let err = Config::from_sources(None, &env(&[("MCP_BROKER_CIMD_ALLOW_HTTP", "maybe")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("MCP_BROKER_CIMD_ALLOW_HTTP"), "{err}");
}

#[test]
fn cimd_allowed_hosts_are_names_or_ip_literals() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "cimd_allowed_hosts = [\"127.0.0.1\", \"[::1]\", \"Docs.Internal.\"]\ncimd_allow_http = true\n").unwrap();
    let c = Config::from_sources(Some(&path), &[]).unwrap();
    assert_eq!(c.cimd_allowed_hosts, ["127.0.0.1", "::1", "docs.internal"]);
    assert!(c.cimd_allow_http);
    std::fs::write(
        &path,
        "cimd_allowed_hosts = [\"ok.example\", \"http://x.example/\"]\n",
    )
    .unwrap();
    let err = Config::from_sources(Some(&path), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("cimd_allowed_hosts[1]"), "{err}");
}

#[test]
fn debug_output_hides_the_encryption_key() {
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let c = Config::from_sources(None, &env(&[("MCP_BROKER_ENCRYPTION_KEY", &key)])).unwrap();
    assert!(!format!("{c:?}").contains("[7, 7"));
}

#[test]
fn encryption_key_accepts_standard_base64_of_32_bytes() {
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let c = Config::from_sources(None, &env(&[("MCP_BROKER_ENCRYPTION_KEY", &key)])).unwrap();
    assert_eq!(c.encryption_key, Some([7u8; 32]));
}

#[test]
fn versioned_encryption_keys_join_the_single_key_as_key_1() {
    let b64 = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
    let (one, two) = (b64(1), b64(2));
    let c = Config::from_sources(
        None,
        &env(&[
            ("MCP_BROKER_ENCRYPTION_KEY", &one),
            ("MCP_BROKER_ENCRYPTION_KEYS", &format!("2:{two}")),
            ("MCP_BROKER_ENCRYPTION_KEY_ACTIVE", "1"),
        ]),
    )
    .unwrap();
    assert_eq!(c.encryption_keys, vec![(1, [1u8; 32]), (2, [2u8; 32])]);
    assert_eq!(c.encryption_key_active, Some(1));
    assert!(!format!("{c:?}").contains("[2, 2"));
}

#[test]
fn bad_key_lists_are_errors_naming_the_setting() {
    let one = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
    for (keys, active) in [
        (format!("0:{one}"), None),
        ("2:not-base64".to_string(), None),
        (
            format!(
                "2:{one},2:{}",
                base64::engine::general_purpose::STANDARD.encode([3u8; 32])
            ),
            None,
        ),
        (format!("2:{one}"), Some("3")),
    ] {
        let mut pairs = vec![("MCP_BROKER_ENCRYPTION_KEYS", keys.as_str())];
        if let Some(a) = active {
            pairs.push(("MCP_BROKER_ENCRYPTION_KEY_ACTIVE", a));
        }
        let err = Config::from_sources(None, &env(&pairs))
            .unwrap_err()
            .to_string();
        assert!(
            err.to_lowercase().contains("encryption_key"),
            "{keys}: {err}"
        );
    }
}

fn from_file(text: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    Config::from_sources(Some(&path), &[])
}

#[test]
fn gateway_routes_are_validated_naming_the_entry() {
    let ok = from_file(
        "[[gateways]]\nname = \"github\"\nurl = \"https://mcp.example/mcp/\"\nprovider = \"github\"\nscope = \"repo:read\"\n",
    )
    .unwrap();
    assert_eq!(ok.gateways[0].name, "github");
    for (text, needle) in [
        // Path separators or dots would escape `/mcp/<name>`.
        ("name = \"../x\"\nurl = \"https://m.example\"", "name"),
        // The upstream token must not cross the network in clear text.
        ("name = \"g\"\nurl = \"http://m.example/mcp\"", "https"),
        ("name = \"g\"\nurl = \"ftp://m.example\"", "http"),
        // reqwest would send them as a second Authorization header.
        (
            "name = \"g\"\nurl = \"https://u:p@m.example/mcp\"",
            "credentials",
        ),
    ] {
        let err = from_file(&format!(
            "[[gateways]]\n{text}\nprovider = \"github\"\nscope = \"repo:read\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("gateways[0]") && err.contains(needle), "{err}");
    }
    let err = from_file(
        "[[gateways]]\nname = \"g\"\nurl = \"http://127.0.0.1:9/mcp\"\nprovider = \"github\"\nscope = \"admin\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("admin"), "{err}");
    let twice = "[[gateways]]\nname = \"g\"\nurl = \"http://127.0.0.1:9/mcp\"\nprovider = \"github\"\nscope = \"profile\"\n";
    let err = from_file(&format!("{twice}{twice}"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("gateways[1]") && err.contains("twice"),
        "{err}"
    );
}

#[test]
fn token_exchange_is_only_for_confidential_clients() {
    let err = from_file(
        "[[clients]]\nclient_id = \"tools\"\nredirect_uris = [\"https://t.example/cb\"]\ntoken_exchange = [\"github\"]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("clients[0]") && err.contains("confidential"),
        "{err}"
    );
}

#[test]
fn allowed_origins_are_normalised_and_include_the_public_url() {
    let c = from_file("public_url = \"https://Broker.Example:443/base\"\nmcp_allowed_origins = [\"https://App.Example:8443\"]\n").unwrap();
    assert_eq!(
        c.mcp_allowed_origins,
        ["https://broker.example", "https://app.example:8443"]
    );
    let err = from_file("mcp_allowed_origins = [\"https://app.example/path\"]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("mcp_allowed_origins[0]"), "{err}");
}

#[test]
fn ops_settings_default_to_text_logs_open_metrics_30s_grace_and_no_retention() {
    let c = Config::from_sources(None, &[]).unwrap();
    assert_eq!(c.ops.log_format, LogFormat::Text);
    assert!(c.ops.metrics_token_hash.is_none());
    assert_eq!(c.ops.shutdown_grace_secs, 30);
    assert_eq!(c.ops.shutdown_delay_secs, 0);
    assert_eq!(c.ops.audit_retention_days, 0);
}

#[test]
fn ops_settings_come_from_env_and_the_metrics_token_is_kept_hashed() {
    let token = "scrape-me-0123456789";
    let c = Config::from_sources(
        None,
        &env(&[
            ("MCP_BROKER_LOG_FORMAT", "JSON"),
            ("MCP_BROKER_METRICS_TOKEN", token),
            ("MCP_BROKER_SHUTDOWN_GRACE_SECS", "5"),
            ("MCP_BROKER_SHUTDOWN_DELAY_SECS", "3"),
            ("MCP_BROKER_AUDIT_RETENTION_DAYS", "365"),
        ]),
    )
    .unwrap();
    assert_eq!(c.ops.shutdown_delay_secs, 3);
    assert_eq!(c.ops.log_format, LogFormat::Json);
    assert_eq!(
        c.ops.metrics_token_hash,
        Some(crate::tokens::opaque::hash_secret(token))
    );
    assert_eq!(
        (c.ops.shutdown_grace_secs, c.ops.audit_retention_days),
        (5, 365)
    );
    assert!(!format!("{c:?}").contains(token));
}

#[test]
fn a_bad_log_format_or_short_metrics_token_names_its_key() {
    let e = Config::from_sources(None, &env(&[("MCP_BROKER_LOG_FORMAT", "xml")])).unwrap_err();
    assert!(e.to_string().contains("MCP_BROKER_LOG_FORMAT"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "metrics_token = \"short\"\n").unwrap();
    let e = Config::from_sources(Some(&path), &[]).unwrap_err();
    assert!(e.to_string().contains("`metrics_token`"), "{e}");
}

#[test]
fn an_audit_retention_past_100_years_is_refused() {
    let e = Config::from_sources(
        None,
        &env(&[("MCP_BROKER_AUDIT_RETENTION_DAYS", "18446744073709551615")]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("audit_retention_days"), "{e}");
    let ok = Config::from_sources(None, &env(&[("MCP_BROKER_AUDIT_RETENTION_DAYS", "36500")]));
    assert_eq!(ok.unwrap().ops.audit_retention_days, 36_500);
}
