//! `mcp-broker providers check`: every file in the providers folder read the
//! way `serve` reads it, one line per file saying whether it is ready, which
//! variables it still needs, or what is wrong with it. Offline: OIDC
//! discovery is not attempted (it runs at `serve`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::provider::{ProviderKind, parse_provider, provider_files};

/// The whole folder's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvidersReport {
    pub dir: PathBuf,
    /// Set when the folder itself cannot be read (or does not exist).
    pub folder_error: Option<String>,
    pub files: Vec<FileReport>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileReport {
    /// The file name within the folder.
    pub file: String,
    pub status: FileStatus,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileStatus {
    Ready {
        id: String,
        kind: ProviderKind,
        callback_url: String,
    },
    /// Well-formed, but these `${VAR}`s are unset: `serve` skips it.
    MissingVariables {
        id: String,
        callback_url: String,
        variables: Vec<String>,
    },
    /// Malformed: unknown key, bad URL, duplicate id, … (`serve` refuses to start).
    Invalid { message: String },
}

impl ProvidersReport {
    /// True when every file is ready: nothing invalid, no variable missing.
    pub fn passed(&self) -> bool {
        self.folder_error.is_none()
            && !self.files.is_empty()
            && self
                .files
                .iter()
                .all(|f| matches!(f.status, FileStatus::Ready { .. }))
    }

    /// The text the command prints.
    pub fn render(&self) -> String {
        let mut out = format!("providers folder: {}\n", self.dir.display());
        if let Some(e) = &self.folder_error {
            let _ = writeln!(out, "  error: {e}");
        } else if self.files.is_empty() {
            let _ = writeln!(out, "  no *.toml provider files: nobody can sign in");
        }
        for f in &self.files {
            match &f.status {
                FileStatus::Ready {
                    id,
                    kind,
                    callback_url,
                } => {
                    let kind = match kind {
                        ProviderKind::Oauth2 => "oauth2",
                        ProviderKind::Oidc => "oidc (endpoints from discovery at start)",
                    };
                    let _ = writeln!(
                        out,
                        "  ok       {}: provider `{id}`, {kind}\n           callback URL: {callback_url}",
                        f.file
                    );
                }
                FileStatus::MissingVariables {
                    id,
                    callback_url,
                    variables,
                } => {
                    let _ = writeln!(
                        out,
                        "  missing  {}: provider `{id}` is skipped until these variables are set: {}\n           callback URL: {callback_url}",
                        f.file,
                        variables.join(", ")
                    );
                }
                FileStatus::Invalid { message } => {
                    let _ = writeln!(out, "  invalid  {}: {message}", f.file);
                }
            }
        }
        let verdict = if self.passed() {
            "all providers ready"
        } else {
            "check failed"
        };
        let _ = writeln!(out, "{verdict}");
        out
    }
}

/// Reads every `*.toml` in `dir` as `serve` would. `public_url` gives the
/// callback URLs to register at each provider.
pub fn check_providers(
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    public_url: &str,
) -> ProvidersReport {
    let mut report = ProvidersReport {
        dir: dir.to_path_buf(),
        folder_error: None,
        files: Vec::new(),
    };
    let paths = match provider_files(dir) {
        Ok(paths) => paths,
        Err(e) => {
            report.folder_error = Some(e.to_string());
            return report;
        }
    };
    let callback = |id: &str| format!("{}/callback/{id}", public_url.trim_end_matches('/'));
    let mut seen: Vec<String> = Vec::new();
    for path in paths {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let status = match std::fs::read_to_string(&path) {
            Err(e) => FileStatus::Invalid {
                message: e.to_string(),
            },
            Ok(text) => match parse_provider(&text, env) {
                Err(message) => FileStatus::Invalid { message },
                Ok(Ok(p)) if seen.contains(&p.id) => FileStatus::Invalid {
                    message: format!("provider id `{}` is defined twice", p.id),
                },
                Ok(Ok(p)) => {
                    seen.push(p.id.clone());
                    FileStatus::Ready {
                        callback_url: callback(&p.id),
                        id: p.id,
                        kind: p.kind,
                    }
                }
                Ok(Err((id, variables))) => FileStatus::MissingVariables {
                    callback_url: callback(&id),
                    id,
                    variables,
                },
            },
        };
        report.files.push(FileReport { file, status });
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
id = "acme"
display_name = "Acme"
kind = "oidc"
issuer = "https://id.acme.test"
api_base_url = "https://api.acme.test"
client_id = "${ACME_ID}"
client_secret = "${ACME_SECRET}"
"#;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn a_missing_variable_is_reported_by_name_and_fails_the_check() {
        let dir = folder(&[("acme.toml", FILE)]);
        let env = |k: &str| (k == "ACME_ID").then(|| "id".to_string());
        let report = check_providers(dir.path(), &env, "https://broker.test");
        assert_eq!(
            report.files[0].status,
            FileStatus::MissingVariables {
                id: "acme".into(),
                callback_url: "https://broker.test/callback/acme".into(),
                variables: vec!["ACME_SECRET".into()],
            }
        );
        assert!(!report.passed());
        let text = report.render();
        assert!(text.contains("ACME_SECRET"), "{text}");
        assert!(!text.contains("ACME_ID,"), "{text}");
    }

    #[test]
    fn a_ready_provider_prints_its_callback_url_and_passes() {
        let dir = folder(&[("acme.toml", FILE), ("notes.toml.example", "not toml")]);
        let env = |_: &str| Some("value".to_string());
        let report = check_providers(dir.path(), &env, "https://broker.test/");
        assert!(report.passed(), "{}", report.render());
        assert_eq!(report.files.len(), 1, "only *.toml files are read");
        assert!(
            report
                .render()
                .contains("callback URL: https://broker.test/callback/acme")
        );
    }

    #[test]
    fn unknown_keys_and_bad_urls_make_a_file_invalid_and_fail_the_check() {
        let typo = format!("{FILE}\nscopez = []\n");
        let bad_url = FILE.replace("https://api.acme.test", "ftp://api.acme.test");
        let dir = folder(&[("a.toml", &typo), ("b.toml", &bad_url)]);
        let env = |_: &str| Some("value".to_string());
        let report = check_providers(dir.path(), &env, "https://broker.test");
        let messages: Vec<_> = report
            .files
            .iter()
            .map(|f| match &f.status {
                FileStatus::Invalid { message } => message.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(messages[0].contains("scopez"), "{messages:?}");
        assert!(messages[1].contains("api_base_url"), "{messages:?}");
        assert!(!report.passed());
    }

    #[test]
    fn the_same_id_in_two_files_is_invalid() {
        let dir = folder(&[("a.toml", FILE), ("b.toml", FILE)]);
        let env = |_: &str| Some("value".to_string());
        let report = check_providers(dir.path(), &env, "https://broker.test");
        assert!(matches!(report.files[1].status, FileStatus::Invalid { .. }));
        assert!(!report.passed());
    }

    #[test]
    fn a_missing_folder_fails_the_check() {
        let report = check_providers(
            Path::new("/nonexistent-providers-folder"),
            &|_| None,
            "https://b",
        );
        assert!(report.folder_error.is_some());
        assert!(!report.passed());
    }
}
