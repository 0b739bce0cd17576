//! Broker scopes: what an MCP client may ask for, what each implies, and
//! which upstream (provider) scopes each needs. Defined in the settings file
//! (`[[scopes]]`), with defaults that fit the GitHub tools.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::{ErrorCode, OAuthError};

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScopeDef {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Scopes this one includes (`repo:write` implies `repo:read`).
    #[serde(default)]
    pub implies: Vec<String>,
    /// Provider scopes a grant with this scope asks for upstream.
    #[serde(default)]
    pub upstream: Vec<String>,
    /// Granted when a client asks for no scope at all.
    #[serde(default)]
    pub default: bool,
    /// The provider whose upstream token this scope's tools use; unset means
    /// the sign-in provider. A grant with this scope holds a link to it.
    #[serde(default)]
    pub provider: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeCatalog {
    defs: Vec<ScopeDef>,
}

impl Default for ScopeCatalog {
    fn default() -> Self {
        let def = |name: &str, description: &str, implies: &[&str], upstream: &[&str], default| {
            ScopeDef {
                name: name.into(),
                description: description.into(),
                implies: implies.iter().map(|s| s.to_string()).collect(),
                upstream: upstream.iter().map(|s| s.to_string()).collect(),
                default,
                provider: None,
            }
        };
        ScopeCatalog {
            defs: vec![
                def(
                    "profile",
                    "See your GitHub profile",
                    &[],
                    &["read:user"],
                    true,
                ),
                // GitHub has no read-only scope for private repositories.
                def("repo:read", "Read your repositories", &[], &["repo"], true),
                def(
                    "repo:write",
                    "Change your repositories",
                    &["repo:read"],
                    &["repo"],
                    false,
                ),
            ],
        }
    }
}

impl ScopeCatalog {
    /// Checks names are valid and unique and every `implies` is known.
    pub fn new(defs: Vec<ScopeDef>) -> Result<ScopeCatalog, String> {
        let mut seen = BTreeSet::new();
        for d in &defs {
            let valid = !d.name.is_empty()
                && d.name
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
            if !valid {
                return Err(format!(
                    "scope name {:?} is not a valid OAuth scope token",
                    d.name
                ));
            }
            if !seen.insert(d.name.as_str()) {
                return Err(format!("scope {:?} is defined twice", d.name));
            }
        }
        for d in &defs {
            if let Some(unknown) = d.implies.iter().find(|i| !seen.contains(i.as_str())) {
                return Err(format!(
                    "scope {:?} implies unknown scope {unknown:?}",
                    d.name
                ));
            }
        }
        if !defs.iter().any(|d| d.default) {
            return Err("at least one scope must have default = true".into());
        }
        Ok(ScopeCatalog { defs })
    }

    pub fn names(&self) -> Vec<&str> {
        self.defs.iter().map(|d| d.name.as_str()).collect()
    }

    pub fn defaults(&self) -> String {
        self.defs
            .iter()
            .filter(|d| d.default)
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn get(&self, name: &str) -> Option<&ScopeDef> {
        self.defs.iter().find(|d| d.name == name)
    }

    /// Normalises a requested scope: known names only, de-duplicated, in
    /// catalog order; absent or empty means the defaults.
    pub fn check_requested(&self, requested: Option<&str>) -> Result<String, OAuthError> {
        let requested: BTreeSet<&str> = requested
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect();
        if let Some(unknown) = requested.iter().find(|s| self.get(s).is_none()) {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!("unknown scope {unknown:?}"),
            ));
        }
        if requested.is_empty() {
            return Ok(self.defaults());
        }
        Ok(self
            .names()
            .into_iter()
            .filter(|n| requested.contains(n))
            .collect::<Vec<_>>()
            .join(" "))
    }

    /// The granted scopes plus everything they imply.
    pub fn expand(&self, granted: &str) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = granted
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        loop {
            let implied: Vec<String> = out
                .iter()
                .filter_map(|s| self.get(s))
                .flat_map(|d| d.implies.iter().cloned())
                .filter(|i| !out.contains(i))
                .collect();
            if implied.is_empty() {
                return out;
            }
            out.extend(implied);
        }
    }

    /// Does `granted` (with what it implies) cover `required`?
    pub fn satisfies(&self, granted: &str, required: &str) -> bool {
        self.expand(granted).contains(required)
    }

    /// Every provider a grant with `granted` links to: the sign-in provider
    /// first, then those the scopes name, in catalog order.
    pub fn linked_providers(&self, granted: &str, sign_in: &str) -> Vec<String> {
        let expanded = self.expand(granted);
        let mut out = vec![sign_in.to_string()];
        for d in self.defs.iter().filter(|d| expanded.contains(&d.name)) {
            if let Some(p) = &d.provider
                && !out.contains(p)
            {
                out.push(p.clone());
            }
        }
        out
    }

    /// The first scope whose tools use `provider` (for a step-up challenge).
    pub fn scope_for_provider(&self, provider: &str) -> Option<&str> {
        self.defs
            .iter()
            .find(|d| d.provider.as_deref() == Some(provider))
            .map(|d| d.name.as_str())
    }

    /// Providers named by scopes (to check they are configured).
    pub fn named_providers(&self) -> Vec<(&str, &str)> {
        self.defs
            .iter()
            .filter_map(|d| Some((d.name.as_str(), d.provider.as_deref()?)))
            .collect()
    }

    /// Scopes to ask `provider` for on behalf of `granted`: those of the
    /// granted scopes that belong to it (unset means the sign-in provider).
    pub fn upstream_scopes(&self, granted: &str, provider: &str, sign_in: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for name in self.expand(granted) {
            let Some(d) = self.get(&name) else { continue };
            if d.provider.as_deref().unwrap_or(sign_in) != provider {
                continue;
            }
            for s in &d.upstream {
                if !out.contains(s) {
                    out.push(s.clone());
                }
            }
        }
        out
    }

    /// A refresh may narrow the scope but never widen it.
    pub fn check_narrowing(
        &self,
        granted: &str,
        requested: Option<&str>,
    ) -> Result<String, OAuthError> {
        let Some(requested) = requested.filter(|r| !r.trim().is_empty()) else {
            return Ok(granted.to_string());
        };
        let requested = self.check_requested(Some(requested))?;
        let allowed = self.expand(granted);
        if requested.split(' ').all(|s| allowed.contains(s)) {
            Ok(requested)
        } else {
            Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "scope exceeds the original grant",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> ScopeCatalog {
        ScopeCatalog::default()
    }

    #[test]
    fn absent_scope_is_the_defaults() {
        assert_eq!(
            catalog().check_requested(None).unwrap(),
            "profile repo:read"
        );
        assert_eq!(
            catalog().check_requested(Some("  ")).unwrap(),
            "profile repo:read"
        );
    }

    #[test]
    fn unknown_scope_is_invalid_scope() {
        let err = catalog()
            .check_requested(Some("profile admin"))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidScope);
    }

    #[test]
    fn requested_scope_is_normalised_to_catalog_order() {
        assert_eq!(
            catalog()
                .check_requested(Some("repo:write profile profile"))
                .unwrap(),
            "profile repo:write"
        );
    }

    #[test]
    fn write_implies_read() {
        assert!(catalog().satisfies("repo:write", "repo:read"));
        assert!(!catalog().satisfies("repo:read", "repo:write"));
        assert!(!catalog().satisfies("profile", "repo:read"));
    }

    #[test]
    fn upstream_scopes_are_the_union_for_what_is_granted() {
        assert_eq!(
            catalog().upstream_scopes("profile", "github", "github"),
            vec!["read:user"]
        );
        assert_eq!(
            catalog().upstream_scopes("profile repo:write", "github", "github"),
            vec!["read:user", "repo"]
        );
    }

    fn with_gitlab() -> ScopeCatalog {
        let mut defs = catalog().defs;
        defs.push(ScopeDef {
            name: "gitlab:profile".into(),
            description: String::new(),
            implies: vec![],
            upstream: vec!["read_user".into()],
            default: false,
            provider: Some("gitlab".into()),
        });
        ScopeCatalog::new(defs).unwrap()
    }

    #[test]
    fn a_scope_naming_a_provider_links_it_and_asks_it_for_its_own_scopes() {
        let c = with_gitlab();
        assert_eq!(c.linked_providers("profile", "github"), vec!["github"]);
        assert_eq!(
            c.linked_providers("profile gitlab:profile", "github"),
            vec!["github", "gitlab"]
        );
        assert_eq!(
            c.upstream_scopes("profile gitlab:profile", "gitlab", "github"),
            vec!["read_user"]
        );
        assert_eq!(
            c.upstream_scopes("profile gitlab:profile", "github", "github"),
            vec!["read:user"]
        );
        assert_eq!(c.scope_for_provider("gitlab"), Some("gitlab:profile"));
    }

    #[test]
    fn refresh_cannot_widen_scope() {
        let c = catalog();
        assert_eq!(
            c.check_narrowing("profile repo:read", None).unwrap(),
            "profile repo:read"
        );
        assert_eq!(
            c.check_narrowing("profile repo:read", Some("profile"))
                .unwrap(),
            "profile"
        );
        assert_eq!(
            c.check_narrowing("repo:write", Some("repo:read")).unwrap(),
            "repo:read"
        );
        assert_eq!(
            c.check_narrowing("profile", Some("repo:read"))
                .unwrap_err()
                .code,
            ErrorCode::InvalidScope
        );
    }

    #[test]
    fn catalog_rejects_unknown_implications_and_duplicates() {
        let d = |name: &str, implies: &[&str]| ScopeDef {
            name: name.into(),
            description: String::new(),
            implies: implies.iter().map(|s| s.to_string()).collect(),
            upstream: vec![],
            default: true,
            provider: None,
        };
        assert!(ScopeCatalog::new(vec![d("a", &["b"])]).is_err());
        assert!(ScopeCatalog::new(vec![d("a", &[]), d("a", &[])]).is_err());
        assert!(ScopeCatalog::new(vec![d("a b", &[])]).is_err());
        assert!(ScopeCatalog::new(vec![d("a", &[]), d("b", &["a"])]).is_ok());
    }
}
