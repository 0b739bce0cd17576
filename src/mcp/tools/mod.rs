//! Tool implementations, one file per upstream.

pub mod github;
