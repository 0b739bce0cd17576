//! Provider definitions: one TOML file per provider in the providers folder.
//! Every URL lives in the file, so a copy serves GitHub Enterprise Server (or a
//! test's fake GitHub). Secrets are `${ENV_VAR}` references, never literals in
//! the repository.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderFile {
    id: String,
    display_name: String,
    #[serde(default)]
    kind: ProviderKind,
    /// OIDC only: the issuer whose discovery document names the endpoints.
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    authorize_url: Option<String>,
    #[serde(default)]
    token_url: Option<String>,
    #[serde(default)]
    revocation_url: Option<String>,
    api_base_url: String,
    #[serde(default)]
    userinfo_url: Option<String>,
    client_id: String,
    client_secret: String,
    #[serde(default)]
    token_endpoint_auth_method: TokenAuthMethod,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default = "default_separator")]
    scope_separator: String,
    #[serde(default = "default_true")]
    pkce: bool,
    #[serde(default)]
    extra_authorize_params: BTreeMap<String, String>,
    #[serde(default)]
    extra_token_params: BTreeMap<String, String>,
    #[serde(default)]
    identity: IdentityFile,
    #[serde(default)]
    refresh: RefreshPolicy,
    #[serde(default)]
    revocation_style: RevocationStyle,
}

fn default_separator() -> String {
    " ".into()
}
fn default_true() -> bool {
    true
}

/// `oauth2`: every endpoint in the file. `oidc`: an issuer with discovery,
/// and an id_token checked on sign-in.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    #[default]
    Oauth2,
    Oidc,
}

/// How we authenticate to the provider's token endpoint.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    /// `client_id` and `client_secret` in the form body (GitHub's way).
    #[default]
    ClientSecretPost,
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
}

/// How an upstream grant is revoked when ours is.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RevocationStyle {
    /// The provider offers no revocation: we only delete our copy.
    #[default]
    None,
    /// RFC 7009 at `revocation_url`, with the refresh token when we hold one
    /// (which revokes the whole upstream grant) else the access token.
    Rfc7009,
    /// GitHub's `DELETE {api_base_url}/applications/{client_id}/grant` with
    /// Basic auth (client id and secret) and the access token in the body:
    /// ends the app's whole authorization for that user, every token of
    /// every MCP client they connected through this broker included.
    Github,
    /// GitHub's `DELETE {api_base_url}/applications/{client_id}/token`: ends
    /// only the revoked grant's token; the user's other connections live on.
    GithubToken,
}

/// What the provider does on refresh, and how to read its failures.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RefreshPolicy {
    /// The provider issues a new refresh token on every refresh and the old
    /// one dies (GitHub Apps, Microsoft, GitLab). When false and an answer
    /// carries no refresh token, the stored one is kept.
    pub rotates_refresh_token: bool,
    /// Refresh this long before the access token expires, so a token never
    /// dies in flight.
    pub expiry_buffer_secs: i64,
    /// Lifetime to assume when a token answer has no `expires_in`; unset
    /// means such a token lives until revoked (GitHub OAuth Apps).
    pub assumed_lifetime_secs: Option<i64>,
    /// Token-endpoint `error` codes after which the refresh token is dead:
    /// the link needs the user to sign in again. Only these end a link.
    pub permanent_errors: Vec<String>,
    /// Codes worth retrying later; the stored token is left as it is. Codes
    /// in neither list count as transient too (our own client credentials
    /// refused after a secret rotation must not end every user's link); a
    /// code in both lists is transient.
    pub transient_errors: Vec<String>,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            rotates_refresh_token: false,
            expiry_buffer_secs: 60,
            assumed_lifetime_secs: None,
            permanent_errors: ["invalid_grant", "bad_refresh_token"]
                .map(String::from)
                .to_vec(),
            transient_errors: ["temporarily_unavailable", "server_error", "slow_down"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// `[identity]` as written; defaults depend on the kind.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    subject: Option<String>,
    login: Option<String>,
    email: Option<String>,
}

/// Which claims identify the user: fields of the userinfo document for
/// `oauth2` (defaults `id`, `login`, GitHub's names), claims of the verified
/// id_token, then of userinfo, for `oidc` (defaults `sub`,
/// `preferred_username`, `email`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityFields {
    pub subject: String,
    pub login: String,
    pub email: Option<String>,
}

impl Default for IdentityFields {
    fn default() -> Self {
        IdentityFields::for_kind(IdentityFile::default(), ProviderKind::Oauth2)
    }
}

impl IdentityFields {
    fn for_kind(file: IdentityFile, kind: ProviderKind) -> IdentityFields {
        let (subject, login, email) = match kind {
            ProviderKind::Oauth2 => ("id", "login", None),
            ProviderKind::Oidc => ("sub", "preferred_username", Some("email")),
        };
        IdentityFields {
            subject: file.subject.unwrap_or_else(|| subject.into()),
            login: file.login.unwrap_or_else(|| login.into()),
            email: file.email.or_else(|| email.map(String::from)),
        }
    }
}

/// A provider ready to use: references resolved, URLs checked. For `oidc`
/// providers, endpoints the file leaves out are empty until discovery.
#[derive(Clone, PartialEq, Eq)]
pub struct Provider {
    pub id: String,
    pub display_name: String,
    pub kind: ProviderKind,
    pub issuer: Option<String>,
    pub authorize_url: String,
    pub token_url: String,
    pub revocation_url: Option<String>,
    pub api_base_url: String,
    pub userinfo_url: String,
    /// OIDC only: where the provider publishes its id_token signing keys
    /// (from discovery; empty before it).
    pub jwks_uri: String,
    pub client_id: String,
    pub client_secret: String,
    pub token_endpoint_auth_method: TokenAuthMethod,
    pub scopes: Vec<String>,
    pub scope_separator: String,
    pub pkce: bool,
    pub extra_authorize_params: BTreeMap<String, String>,
    pub extra_token_params: BTreeMap<String, String>,
    pub identity: IdentityFields,
    pub refresh: RefreshPolicy,
    pub revocation_style: RevocationStyle,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("authorize_url", &self.authorize_url)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The outcome of reading the providers folder.
#[derive(Debug, Default)]
pub struct ProviderSet {
    pub providers: Vec<Provider>,
    /// Providers left out because environment variables they name are unset:
    /// (provider id, the variables).
    pub skipped: Vec<(String, Vec<String>)>,
    /// OIDC providers left out because discovery failed at start:
    /// (provider id, why).
    pub undiscovered: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("cannot read providers folder {path}: {message}")]
    Folder { path: String, message: String },
    #[error("provider file {file}: {message}")]
    File { file: String, message: String },
}

impl ProviderSet {
    pub fn get(&self, id: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.id == id)
    }

    /// The provider `/authorize` logs users in with: `github` when present,
    /// else the first by id.
    pub fn default_provider(&self) -> Option<&Provider> {
        self.get("github").or_else(|| self.providers.first())
    }
}

/// Reads every `*.toml` in `dir` (a missing folder is an empty set). A file
/// that is malformed is an error; one whose `${VAR}`s are unset is skipped.
/// The provider files in `dir` (`*.toml`), in name order.
pub fn provider_files(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

pub fn load_providers(
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ProviderSet, ProviderError> {
    let mut set = ProviderSet::default();
    let files = match provider_files(dir) {
        Ok(files) => files,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(set),
        Err(e) => {
            return Err(ProviderError::Folder {
                path: dir.display().to_string(),
                message: e.to_string(),
            });
        }
    };
    for file in files {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(&file).map_err(|e| ProviderError::File {
            file: name.clone(),
            message: e.to_string(),
        })?;
        match parse_provider(&text, env).map_err(|message| ProviderError::File {
            file: name.clone(),
            message,
        })? {
            Ok(provider) => {
                if set.get(&provider.id).is_some() {
                    return Err(ProviderError::File {
                        file: name,
                        message: format!("provider id `{}` is defined twice", provider.id),
                    });
                }
                set.providers.push(provider);
            }
            Err(skipped) => set.skipped.push(skipped),
        }
    }
    set.providers.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(set)
}

/// Outer error: the file is wrong. Inner `Err`: it is fine but names unset
/// variables `(id, vars)`.
pub fn parse_provider(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Result<Provider, (String, Vec<String>)>, String> {
    let file: ProviderFile = toml::from_str(text).map_err(|e| e.to_string())?;
    if file.id.is_empty()
        || !file
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(format!(
            "`id` must be lowercase letters, digits and '-', got {:?}",
            file.id
        ));
    }
    let mut missing = BTreeSet::new();
    let mut resolve = |key: &str, value: &str| -> Result<String, String> {
        interpolate(value, env, &mut missing).map_err(|m| format!("`{key}`: {m}"))
    };
    let issuer = file
        .issuer
        .as_deref()
        .map(|v| resolve("issuer", v))
        .transpose()?;
    let authorize_url = file
        .authorize_url
        .as_deref()
        .map(|v| resolve("authorize_url", v))
        .transpose()?;
    let token_url = file
        .token_url
        .as_deref()
        .map(|v| resolve("token_url", v))
        .transpose()?;
    let revocation_url = file
        .revocation_url
        .as_deref()
        .map(|v| resolve("revocation_url", v))
        .transpose()?;
    let userinfo_url = file
        .userinfo_url
        .as_deref()
        .map(|v| resolve("userinfo_url", v))
        .transpose()?;
    let api_base_url = resolve("api_base_url", &file.api_base_url)?;
    let client_id = resolve("client_id", &file.client_id)?;
    let client_secret = resolve("client_secret", &file.client_secret)?;
    let mut extra = |key: &str, map: &BTreeMap<String, String>| {
        map.iter()
            .map(|(k, v)| Ok((k.clone(), resolve(&format!("{key}.{k}"), v)?)))
            .collect::<Result<BTreeMap<_, _>, String>>()
    };
    let extra_authorize_params = extra("extra_authorize_params", &file.extra_authorize_params)?;
    let extra_token_params = extra("extra_token_params", &file.extra_token_params)?;
    if !missing.is_empty() {
        return Ok(Err((file.id, missing.into_iter().collect())));
    }
    match file.kind {
        ProviderKind::Oauth2 => {
            for (key, value) in [
                ("authorize_url", &authorize_url),
                ("token_url", &token_url),
                ("userinfo_url", &userinfo_url),
            ] {
                if value.is_none() {
                    return Err(format!("`{key}` is required for kind \"oauth2\""));
                }
            }
        }
        ProviderKind::Oidc => {
            if issuer.is_none() {
                return Err("`issuer` is required for kind \"oidc\"".into());
            }
        }
    }
    for (key, value) in [
        ("issuer", &issuer),
        ("authorize_url", &authorize_url),
        ("token_url", &token_url),
        ("revocation_url", &revocation_url),
        ("api_base_url", &Some(api_base_url.clone())),
        ("userinfo_url", &userinfo_url),
    ] {
        if let Some(value) = value {
            check_url(value).map_err(|m| format!("`{key}`: {m}"))?;
        }
    }
    // An OIDC provider's discovery document may name the revocation endpoint;
    // that is checked once discovery ran.
    if file.revocation_style == RevocationStyle::Rfc7009
        && revocation_url.is_none()
        && file.kind == ProviderKind::Oauth2
    {
        return Err("`revocation_style = \"rfc7009\"` needs `revocation_url`".into());
    }
    let refresh = file.refresh;
    if refresh.expiry_buffer_secs < 0 || refresh.assumed_lifetime_secs.is_some_and(|s| s <= 0) {
        return Err(
            "`refresh.expiry_buffer_secs` must be >= 0 and `refresh.assumed_lifetime_secs` > 0"
                .into(),
        );
    }
    Ok(Ok(Provider {
        id: file.id,
        display_name: file.display_name,
        kind: file.kind,
        issuer,
        authorize_url: authorize_url.unwrap_or_default(),
        token_url: token_url.unwrap_or_default(),
        revocation_url,
        api_base_url: api_base_url.trim_end_matches('/').to_string(),
        userinfo_url: userinfo_url.unwrap_or_default(),
        jwks_uri: String::new(),
        client_id,
        client_secret,
        token_endpoint_auth_method: file.token_endpoint_auth_method,
        scopes: file.scopes,
        scope_separator: file.scope_separator,
        pkce: file.pkce,
        extra_authorize_params,
        extra_token_params,
        identity: IdentityFields::for_kind(file.identity, file.kind),
        refresh,
        revocation_style: file.revocation_style,
    }))
}

/// Replaces every `${NAME}` with the variable's value; unset ones are
/// collected in `missing` (so one message lists them all).
pub(crate) fn interpolate(
    value: &str,
    env: &dyn Fn(&str) -> Option<String>,
    missing: &mut BTreeSet<String>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or("unterminated `${`")?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`${{{name}}}` is not a valid variable reference"));
        }
        match env(name).filter(|v| !v.is_empty()) {
            Some(v) => out.push_str(&v),
            None => {
                missing.insert(name.to_string());
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn check_url(value: &str) -> Result<(), String> {
    let url = url::Url::parse(value).map_err(|e| format!("not a URL ({e})"))?;
    match url.scheme() {
        "https" | "http" => Ok(()),
        other => Err(format!("scheme {other:?} is not http(s)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GITHUB: &str = r#"
id = "github"
display_name = "GitHub"
authorize_url = "https://github.com/login/oauth/authorize"
token_url = "https://github.com/login/oauth/access_token"
api_base_url = "https://api.github.com/"
userinfo_url = "https://api.github.com/user"
client_id = "${GH_ID}"
client_secret = "${GH_SECRET}"
scopes = ["read:user", "repo"]
"#;

    fn env_with(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn env_references_are_resolved() {
        let env = env_with(&[("GH_ID", "Iv1.abc"), ("GH_SECRET", "s3cret")]);
        let p = parse_provider(GITHUB, &env).unwrap().unwrap();
        assert_eq!(p.client_id, "Iv1.abc");
        assert_eq!(p.client_secret, "s3cret");
        assert_eq!(p.api_base_url, "https://api.github.com");
        assert!(p.pkce);
    }

    #[test]
    fn unset_variables_skip_the_provider_naming_them_all() {
        let skipped = parse_provider(GITHUB, &env_with(&[])).unwrap().unwrap_err();
        assert_eq!(
            skipped,
            (
                "github".to_string(),
                vec!["GH_ID".to_string(), "GH_SECRET".to_string()]
            )
        );
    }

    #[test]
    fn unknown_keys_are_errors_naming_them() {
        let text = format!("{GITHUB}\ntoken_urll = \"x\"\n");
        let err = parse_provider(&text, &env_with(&[])).unwrap_err();
        assert!(err.contains("token_urll"), "{err}");
    }

    #[test]
    fn debug_output_hides_the_client_secret() {
        let env = env_with(&[("GH_ID", "id"), ("GH_SECRET", "s3cret")]);
        let p = parse_provider(GITHUB, &env).unwrap().unwrap();
        assert!(!format!("{p:?}").contains("s3cret"));
    }

    fn shipped() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("providers")
    }

    #[test]
    fn shipped_provider_files_are_skipped_without_their_variables() {
        let set = load_providers(&shipped(), &|_| None).unwrap();
        assert!(set.providers.is_empty());
        let ids: Vec<&str> = set.skipped.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            ids,
            ["github-app", "github", "gitlab", "google", "microsoft"]
        );
        let microsoft = &set.skipped[4].1;
        assert!(microsoft.contains(&"MICROSOFT_TENANT".to_string()));
    }

    #[test]
    fn shipped_provider_files_parse_with_their_variables_set() {
        let env = |_: &str| Some("value".to_string());
        let set = load_providers(&shipped(), &env).unwrap();
        let get = |id: &str| set.get(id).unwrap();
        assert_eq!(get("github").revocation_style, RevocationStyle::GithubToken);
        assert!(!get("github").refresh.rotates_refresh_token);
        let app = get("github-app");
        assert!(app.refresh.rotates_refresh_token);
        assert!(
            app.refresh
                .permanent_errors
                .contains(&"bad_refresh_token".to_string())
        );
        assert_eq!(app.revocation_style, RevocationStyle::GithubToken);
        let gitlab = get("gitlab");
        assert!(gitlab.refresh.rotates_refresh_token);
        assert_eq!(
            gitlab.revocation_url.as_deref(),
            Some("https://gitlab.com/oauth/revoke")
        );
        let google = get("google");
        assert_eq!(google.kind, ProviderKind::Oidc);
        assert_eq!(google.extra_authorize_params["access_type"], "offline");
        assert_eq!(google.extra_authorize_params["prompt"], "consent");
        assert_eq!(
            google.revocation_url.as_deref(),
            Some("https://oauth2.googleapis.com/revoke")
        );
        assert!(!google.refresh.rotates_refresh_token);
        let microsoft = get("microsoft");
        assert_eq!(
            microsoft.issuer.as_deref(),
            Some("https://login.microsoftonline.com/value/v2.0")
        );
        assert!(microsoft.scopes.contains(&"offline_access".to_string()));
        assert!(microsoft.refresh.rotates_refresh_token);
        assert_eq!(microsoft.revocation_style, RevocationStyle::None);
        // The template is not loaded, but it is a valid file once copied.
        let template = std::fs::read_to_string(shipped().join("oidc.toml.example")).unwrap();
        let env = |_: &str| Some("https://sso.example.test".to_string());
        let p = parse_provider(&template, &env).unwrap().unwrap();
        assert_eq!(p.kind, ProviderKind::Oidc);
    }

    #[test]
    fn oidc_identity_defaults_to_standard_claims() {
        let text = r#"
id = "acme"
display_name = "Acme"
kind = "oidc"
issuer = "https://id.acme.test"
api_base_url = "https://api.acme.test"
client_id = "c"
client_secret = "s"
"#;
        let p = parse_provider(text, &|_| None).unwrap().unwrap();
        assert_eq!(p.identity.subject, "sub");
        assert_eq!(p.identity.login, "preferred_username");
        assert_eq!(p.identity.email.as_deref(), Some("email"));
        assert!(p.authorize_url.is_empty(), "left for discovery");
    }
}
