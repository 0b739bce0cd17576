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

/// A branch name checked against git's `check-ref-format` basics, so it can
/// neither name something else (`..`, `@{`, a leading `-`) nor leave its
/// path segment. Returned unchanged, for a JSON body.
pub(crate) fn branch_name<'a>(what: &str, name: &'a str) -> Result<&'a str, CallToolResult> {
    let refused = |why: &str| {
        Err(tool_error(format!(
            "{what} {name:?} is not a valid branch name: {why}"
        )))
    };
    if name.is_empty() || name.len() > 255 {
        return refused("it must be 1 to 255 bytes");
    }
    if name.starts_with('-') {
        return refused("it may not start with '-'");
    }
    if name == "@" || name.contains("..") || name.contains("@{") {
        return refused("it may not be '@' or contain '..' or '@{'");
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\'))
    {
        return refused(&format!("it may not contain {c:?}"));
    }
    for component in name.split('/') {
        if component.is_empty() || component.starts_with('.') || component.ends_with(".lock") {
            return refused("no empty component, none starting with '.' or ending with '.lock'");
        }
    }
    if name.ends_with('.') {
        return refused("it may not end with '.'");
    }
    Ok(name)
}

/// The path of a branch's ref under `/git/ref/`: `heads/{name}`, each
/// segment percent-encoded (a valid name has no `.` or `..` segment).
pub(crate) fn branch_ref_path(name: &str) -> Result<String, CallToolResult> {
    let name = branch_name("branch", name)?;
    let mut out = String::from("/heads");
    for segment in name.split('/') {
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

    #[test]
    fn branch_names_follow_gits_check_ref_format_basics() {
        for bad in [
            "",
            "-rf",
            "a..b",
            "../../user",
            "a b",
            "a\nb",
            "a\u{7f}",
            "x~1",
            "x^",
            "a:b",
            "what?",
            "glob*",
            "[x",
            "back\\slash",
            "@",
            "a@{1}",
            "/lead",
            "trail/",
            "a//b",
            ".hidden",
            "dir/.hidden",
            "x.lock",
            "ends.",
        ] {
            assert!(branch_name("branch", bad).is_err(), "{bad:?}");
        }
        for good in [
            "main",
            "feature/x",
            "fix-1.2",
            "user/topic_a",
            "v1@2",
            "50%",
        ] {
            assert_eq!(branch_name("branch", good).unwrap(), good);
        }
    }

    #[test]
    fn branch_ref_path_keeps_each_segment_inside_its_place() {
        assert_eq!(
            branch_ref_path("feature/x#1%").unwrap(),
            "/heads/feature/x%231%25"
        );
        assert!(branch_ref_path("../../user").is_err());
    }
}
