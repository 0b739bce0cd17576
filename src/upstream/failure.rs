//! Which upstream failures end a link and which only delay it. Permanent:
//! the provider refused the refresh token for good, so the user must sign in
//! again. Transient: the provider may answer later, and nothing stored may
//! change because of it (peers that treat both alike make clients throw away
//! good credentials).

use super::UpstreamError;
use super::provider::RefreshPolicy;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The stored refresh token is dead; the reason names the provider's code.
    Permanent(String),
    /// Try again later; the stored tokens are untouched.
    Transient(String),
}

pub fn classify(policy: &RefreshPolicy, error: &UpstreamError) -> Failure {
    match error {
        UpstreamError::Unavailable(message) => Failure::Transient(message.clone()),
        UpstreamError::Rejected { error, .. } => {
            // Only codes that say "this refresh token is dead" end a link.
            // Anything else — our own client credentials refused after a
            // secret rotation, a proxy's 4xx, a code we do not know — must not
            // send every user back to sign in: the link waits for a retry.
            if policy.permanent_errors.iter().any(|e| e == error)
                && !policy.transient_errors.iter().any(|e| e == error)
            {
                Failure::Permanent(error.clone())
            } else {
                Failure::Transient(format!("the provider answered {error}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(code: &str) -> UpstreamError {
        UpstreamError::Rejected {
            error: code.into(),
            description: None,
        }
    }

    #[test]
    fn invalid_grant_and_githubs_bad_refresh_token_are_permanent() {
        let policy = RefreshPolicy::default();
        for code in ["invalid_grant", "bad_refresh_token"] {
            assert!(matches!(
                classify(&policy, &rejected(code)),
                Failure::Permanent(_)
            ));
        }
    }

    #[test]
    fn outages_timeouts_and_garbage_are_transient() {
        let policy = RefreshPolicy::default();
        for e in [
            UpstreamError::Unavailable("token endpoint answered HTTP 500".into()),
            UpstreamError::Unavailable("timed out".into()),
            UpstreamError::Unavailable("unreadable body".into()),
            rejected("temporarily_unavailable"),
        ] {
            assert!(matches!(classify(&policy, &e), Failure::Transient(_)));
        }
    }

    #[test]
    fn our_own_credentials_refused_or_an_unknown_code_never_end_a_link() {
        let policy = RefreshPolicy::default();
        for code in [
            "invalid_client",
            "incorrect_client_credentials",
            "http_403",
            "something_new",
        ] {
            assert!(
                matches!(classify(&policy, &rejected(code)), Failure::Transient(_)),
                "{code}"
            );
        }
    }

    #[test]
    fn provider_file_decides_which_codes_are_permanent() {
        let mut policy = RefreshPolicy::default();
        assert!(matches!(
            classify(&policy, &rejected("consent_required")),
            Failure::Transient(_)
        ));
        policy.permanent_errors.push("consent_required".into());
        assert!(matches!(
            classify(&policy, &rejected("consent_required")),
            Failure::Permanent(_)
        ));
    }
}
