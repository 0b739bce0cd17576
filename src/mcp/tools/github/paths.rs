//! API paths built from tool arguments. Owner and repository names are
//! checked against GitHub's naming rules and file paths are encoded segment
//! by segment, so no argument can reach another endpoint.

use rmcp::model::CallToolResult;

use crate::mcp::server::tool_error;

/// Characters left as they are in a path segment: RFC 3986 unreserved.
/// Everything else, `/` `%` `?` `#` included, is percent-encoded.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `/repos/{owner}/{repo}` with both checked against GitHub's naming rules,
/// so an argument like `../../user` cannot reach another endpoint.
pub(crate) fn repo_path(owner: &str, repo: &str) -> Result<String, CallToolResult> {
    let owner_ok = !owner.is_empty()
        && owner.len() <= 39
        && owner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !owner_ok {
        // `_` appears in enterprise managed users' names (`name_shortcode`).
        return Err(tool_error(format!(
            "owner {owner:?} is not a GitHub account name (letters, digits, '-', '_')"
        )));
    }
    let repo_ok = !repo.is_empty()
        && repo.len() <= 100
        && repo != "."
        && repo != ".."
        && repo
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !repo_ok {
        return Err(tool_error(format!(
            "repo {repo:?} is not a GitHub repository name (letters, digits, '-', '_', '.')"
        )));
    }
    Ok(format!("/repos/{owner}/{repo}"))
}

/// A file path inside a repository, each segment percent-encoded. `.` and
/// `..` are refused: URL parsing resolves them (even encoded as `%2e`).
pub(crate) fn file_path(path: &str) -> Result<String, CallToolResult> {
    let trimmed = path.trim_matches('/');
    let mut out = String::new();
    for segment in trimmed.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(tool_error(format!(
                "path {path:?} is not a file path inside the repository \
                 (no empty, '.' or '..' segments)"
            )));
        }
        out.push('/');
        out.extend(percent_encoding::utf8_percent_encode(segment, SEGMENT));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_owner_or_repo_is_refused() {
        for (owner, repo) in [
            ("../../user", "x"),
            ("octo", ".."),
            ("octo", "a/b"),
            ("octo?x=1", "r"),
            ("", "r"),
            ("octo", "r#frag"),
        ] {
            assert!(repo_path(owner, repo).is_err(), "{owner}/{repo}");
        }
        assert_eq!(
            repo_path("octo-cat", "my.repo_1").unwrap(),
            "/repos/octo-cat/my.repo_1"
        );
    }

    #[test]
    fn file_path_segments_stay_inside_the_contents_endpoint() {
        assert!(file_path("../../user").is_err());
        assert!(file_path("docs/./x").is_err());
        assert!(file_path("a//b").is_err());
        assert_eq!(
            file_path("docs/a b%2e?.md").unwrap(),
            "/docs/a%20b%252e%3F.md"
        );
        assert_eq!(file_path("/src/lib.rs").unwrap(), "/src/lib.rs");
    }
}
