//! Tool implementations, one file per upstream, and the broker scope each
//! tool needs (checked by the bearer layer before the call runs).

pub mod github;

/// Every tool we serve, with the broker scope it requires.
pub const TOOLS: &[(&str, &str)] = &[
    ("github_whoami", "profile"),
    ("github_list_repos", "repo:read"),
];

/// The broker scope a tool requires; `None` for names we do not serve.
pub fn required_scope(tool: &str) -> Option<&'static str> {
    TOOLS
        .iter()
        .find(|(name, _)| *name == tool)
        .map(|(_, scope)| *scope)
}
