//! Which user opened each MCP session. rmcp keeps sessions in memory and
//! knows nothing of our tokens, so without this anyone authenticated who
//! learned another user's `Mcp-Session-Id` could use or end that session.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_SESSIONS: usize = 100_000;
/// rmcp closes a session idle for 5 minutes; keep owners a while longer.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

#[derive(Default)]
pub struct SessionOwners {
    owners: Mutex<HashMap<String, (String, Instant)>>,
}

impl SessionOwners {
    pub fn record(&self, session_id: &str, user_id: &str) {
        let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        if owners.len() >= MAX_SESSIONS {
            owners.retain(|_, (_, seen)| seen.elapsed() < FORGET_AFTER);
        }
        if owners.len() < MAX_SESSIONS {
            owners.insert(
                session_id.to_string(),
                (user_id.to_string(), Instant::now()),
            );
        }
    }

    /// Does `user_id` own the session? A session we do not know (never
    /// seen, or forgotten) is not owned: the caller answers 404 and the
    /// client starts a new session, as the transport spec prescribes.
    pub fn is_owned_by(&self, session_id: &str, user_id: &str) -> bool {
        let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        match owners.get_mut(session_id) {
            Some((owner, seen)) if owner == user_id => {
                *seen = Instant::now();
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_belongs_to_the_user_who_opened_it() {
        let owners = SessionOwners::default();
        owners.record("s1", "u1");
        assert!(owners.is_owned_by("s1", "u1"));
        assert!(!owners.is_owned_by("s1", "u2"));
        assert!(!owners.is_owned_by("unknown", "u1"));
    }
}
