//! When our consent page must be shown. Skipping it is safe only for a user
//! we recognise who already approved this client for at least this scope:
//! the upstream provider would approve silently, so our page is the only
//! thing standing between a new client and the user's account.

use super::{ErrorCode, OAuthError};

#[derive(Debug, PartialEq, Eq)]
pub enum ConsentDecision {
    Show,
    Skip,
    /// `prompt=none` but consent is needed.
    Refuse(OAuthError),
}

pub fn decide(
    prompt: Option<&str>,
    approved_scope: Option<&str>,
    requested_scope: &str,
) -> ConsentDecision {
    let prompts: Vec<&str> = prompt
        .unwrap_or("")
        .split(' ')
        .filter(|p| !p.is_empty())
        .collect();
    if prompts
        .iter()
        .any(|p| matches!(*p, "consent" | "login" | "select_account"))
    {
        return ConsentDecision::Show;
    }
    let covered = approved_scope.is_some_and(|approved| {
        let approved: Vec<&str> = approved.split(' ').collect();
        requested_scope.split(' ').all(|s| approved.contains(&s))
    });
    match (covered, prompts.contains(&"none")) {
        (true, _) => ConsentDecision::Skip,
        (false, true) => ConsentDecision::Refuse(OAuthError::new(
            ErrorCode::ConsentRequired,
            "the user has not approved this client",
        )),
        (false, false) => ConsentDecision::Show,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_is_shown_for_a_client_never_approved() {
        assert_eq!(decide(None, None, "mcp"), ConsentDecision::Show);
    }

    #[test]
    fn consent_is_skipped_when_the_same_scopes_were_approved() {
        assert_eq!(decide(None, Some("mcp"), "mcp"), ConsentDecision::Skip);
    }

    #[test]
    fn wider_scope_needs_consent_again() {
        assert_eq!(
            decide(None, Some("mcp"), "mcp repo:write"),
            ConsentDecision::Show
        );
    }

    #[test]
    fn prompt_consent_always_shows_the_page() {
        assert_eq!(
            decide(Some("consent"), Some("mcp"), "mcp"),
            ConsentDecision::Show
        );
    }

    #[test]
    fn prompt_none_without_approval_is_consent_required() {
        match decide(Some("none"), None, "mcp") {
            ConsentDecision::Refuse(e) => assert_eq!(e.code, ErrorCode::ConsentRequired),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decide(Some("none"), Some("mcp"), "mcp"),
            ConsentDecision::Skip
        );
    }
}
