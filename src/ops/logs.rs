//! Logs: text or JSON lines on stderr (stdout is for commands' output), the
//! request span's `request_id` on every line logged inside a request.
//!
//! Secrets stay out two ways. Our own call sites never log a token, code,
//! secret, key or cookie (only ids, provider names and error classes). And
//! the libraries that see raw HTTP or SQL (hyper, reqwest, rmcp, sqlx, …)
//! stay at `info` when `MCP_BROKER_LOG` raises the level: a bare `debug` or
//! `trace` applies to the broker's own code only. An operator who names a
//! library (`MCP_BROKER_LOG=debug,hyper=trace`) gets what they asked for.
//! Last, every line passes through `redact`, which blanks anything shaped
//! like one of our tokens, a JWT, a GitHub token or a bearer credential.

use std::io::Write;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::tokens::opaque::{
    AUTHORIZATION_CODE_PREFIX, CLIENT_SECRET_PREFIX, REFRESH_TOKEN_PREFIX,
};

/// The variable holding the filter (tracing's `EnvFilter` syntax).
pub const FILTER_VAR: &str = "MCP_BROKER_LOG";
const OUR_TARGET: &str = "mcp_broker";
const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(format: LogFormat) {
    let spec = std::env::var(FILTER_VAR).ok();
    let directives = effective_filter(spec.as_deref().unwrap_or("info"));
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("mcp-broker: {FILTER_VAR} is not a valid filter ({e}); using info");
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| Redacting(std::io::stderr()));
    match format {
        // No colours: escape codes glued to a field's value would hide a
        // token's start from the redacting writer's word-boundary check.
        LogFormat::Text => builder.with_ansi(false).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// The filter actually installed: a bare level above `info` (`debug`,
/// `trace`) applies to our code only, libraries stay at `info` unless a
/// directive names them.
pub fn effective_filter(spec: &str) -> String {
    let mut bare = None;
    let mut named = Vec::new();
    for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if LEVELS.contains(&directive.to_ascii_lowercase().as_str()) || directive == "off" {
            bare = Some(directive.to_ascii_lowercase());
        } else {
            named.push(directive);
        }
    }
    let bare = bare.unwrap_or_else(|| "info".into());
    let mut out = match bare.as_str() {
        "debug" | "trace" => vec!["info".to_string(), format!("{OUR_TARGET}={bare}")],
        _ => vec![bare],
    };
    out.extend(named.into_iter().map(str::to_string));
    out.join(",")
}

/// Shapes of secrets that can be recognised in text: the prefix, and the
/// characters that may follow it.
const PREFIXES: &[&str] = &[
    AUTHORIZATION_CODE_PREFIX,
    REFRESH_TOKEN_PREFIX,
    CLIENT_SECRET_PREFIX,
    // GitHub: OAuth, user-to-server, refresh, personal, server tokens.
    "gho_",
    "ghu_",
    "ghr_",
    "ghp_",
    "ghs_",
    "github_pat_",
    // A JWT's header (`{"` in base64url): our access tokens, id_tokens.
    "eyJ",
    "Bearer ",
    "bearer ",
];

const REDACTED: &str = "[redacted]";

fn is_secret_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'+' | b'/' | b'=')
}

fn is_word_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')
}

/// `line` with every recognisable secret replaced by `[redacted]`.
pub fn redact(line: &str) -> std::borrow::Cow<'_, str> {
    if !PREFIXES.iter().any(|p| line.contains(p)) {
        return std::borrow::Cow::Borrowed(line);
    }
    let bytes = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < bytes.len() {
        let hit = PREFIXES
            .iter()
            .find(|p| bytes[i..].starts_with(p.as_bytes()));
        // A prefix inside a longer word (`xgho_`) is not a token's start.
        let at_boundary = i == 0 || !is_word_char(bytes[i - 1]);
        match hit {
            Some(prefix) if at_boundary => {
                let start = i + prefix.len();
                let end = start
                    + bytes[start..]
                        .iter()
                        .take_while(|b| is_secret_char(**b))
                        .count();
                // Short tails are words, not tokens (`Bearer realm`).
                if end - start >= 8 {
                    out.push_str(prefix);
                    out.push_str(REDACTED);
                    i = end;
                    continue;
                }
                out.push_str(prefix);
                i = start;
            }
            _ => {
                let next = line[i..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&line[i..i + next]);
                i += next;
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A writer that redacts each formatted event (tracing's formatter writes
/// one event per `write` call) before it reaches stderr.
struct Redacting<W: Write>(W);

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_debug_or_trace_raises_only_our_own_code() {
        assert_eq!(effective_filter("debug"), "info,mcp_broker=debug");
        assert_eq!(effective_filter("TRACE"), "info,mcp_broker=trace");
        assert_eq!(effective_filter("warn"), "warn");
        assert_eq!(effective_filter(""), "info");
    }

    #[test]
    fn a_library_named_explicitly_gets_its_level() {
        assert_eq!(
            effective_filter("debug,hyper=trace"),
            "info,mcp_broker=debug,hyper=trace"
        );
        assert_eq!(effective_filter("sqlx=debug"), "info,sqlx=debug");
    }

    #[test]
    fn token_shaped_values_are_redacted_and_the_rest_is_kept() {
        let line = "grant_id=abc refresh=mcpb_rt_AbCdEf0123456789xyz upstream=ghu_16C7e42F292c6912E7710c838347Ae178B4a \
                    jwt=eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl auth=\"Bearer abcdefghijklmnop\" ok";
        let out = redact(line);
        assert_eq!(
            out,
            "grant_id=abc refresh=mcpb_rt_[redacted] upstream=ghu_[redacted] \
             jwt=eyJ[redacted] auth=\"Bearer [redacted]\" ok"
        );
    }

    #[test]
    fn words_that_merely_start_like_a_prefix_are_left_alone() {
        for line in ["Bearer realm", "the eyJ prefix", "ghu_x", "unrelated text"] {
            assert_eq!(redact(line), line);
        }
    }
}
