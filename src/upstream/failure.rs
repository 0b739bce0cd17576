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
            if policy.transient_errors.iter().any(|e| e == error) {
                Failure::Transient(format!("the provider answered {error}"))
            } else {
                // Listed as permanent, or unlisted: an OAuth error answer is
                // the provider refusing this request, not failing at it.
                Failure::Permanent(error.clone())
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
    fn provider_file_can_declare_a_code_transient() {
        let mut policy = RefreshPolicy::default();
        assert!(matches!(
            classify(&policy, &rejected("rate_limited")),
            Failure::Permanent(_)
        ));
        policy.transient_errors.push("rate_limited".into());
        assert!(matches!(
            classify(&policy, &rejected("rate_limited")),
            Failure::Transient(_)
        ));
    }
}
