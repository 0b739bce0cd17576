//! The authorization server's rules, exercised over HTTP against a running
//! broker (one test per rule, named after it).
