//! Tool implementations, one file per upstream, and the broker scope each
//! tool needs (checked by the bearer layer before the call runs).

pub mod github;

/// Every tool we serve.
pub const TOOLS: &[&str] = &["github_whoami", "github_list_repos"];

/// The broker scope a tool requires; `None` for names we do not serve.
pub fn required_scope(tool: &str) -> Option<&'static str> {
    match tool {
        "github_whoami" => Some("profile"),
        "github_list_repos" => Some("repo:read"),
        _ => None,
    }
}
