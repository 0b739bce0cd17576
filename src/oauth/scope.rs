//! Broker scopes. One scope for now, `mcp`, covering the tools; issue-level
//! work will define per-tool scopes with the upstream scopes each needs.

use super::{ErrorCode, OAuthError};

pub const SUPPORTED: &[&str] = &["mcp"];
pub const DEFAULT: &str = "mcp";

/// Normalises a requested scope string: known scopes only, de-duplicated,
/// space-separated; absent or empty means the default.
pub fn check_scope(requested: Option<&str>) -> Result<String, OAuthError> {
    let mut out: Vec<&str> = Vec::new();
    for s in requested.unwrap_or("").split(' ').filter(|s| !s.is_empty()) {
        if !SUPPORTED.contains(&s) {
            return Err(OAuthError::new(ErrorCode::InvalidScope, format!("unknown scope {s:?}")));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    if out.is_empty() {
        out.push(DEFAULT);
    }
    Ok(out.join(" "))
}

/// A refresh may narrow the scope but never widen it.
pub fn check_narrowing(granted: &str, requested: Option<&str>) -> Result<String, OAuthError> {
    let Some(requested) = requested.filter(|r| !r.trim().is_empty()) else {
        return Ok(granted.to_string());
    };
    let requested = check_scope(Some(requested))?;
    let granted: Vec<&str> = granted.split(' ').collect();
    if requested.split(' ').all(|s| granted.contains(&s)) {
        Ok(requested)
    } else {
        Err(OAuthError::new(ErrorCode::InvalidScope, "scope exceeds the original grant"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_scope_is_the_default() {
        assert_eq!(check_scope(None).unwrap(), "mcp");
        assert_eq!(check_scope(Some("  ")).unwrap(), "mcp");
    }

    #[test]
    fn unknown_scope_is_invalid_scope() {
        assert_eq!(check_scope(Some("mcp admin")).unwrap_err().code, ErrorCode::InvalidScope);
    }

    #[test]
    fn refresh_cannot_widen_scope() {
        assert_eq!(check_narrowing("mcp", None).unwrap(), "mcp");
        assert!(check_narrowing("mcp", Some("mcp")).is_ok());
    }
}
