//! Tokens we issue: JWT access tokens (RFC 9068) signed with our keys, and
//! opaque secrets (codes, refresh tokens, CSRF and state values) that we only
//! ever store hashed.

pub mod access;
pub mod keyring;
pub mod opaque;
pub mod signing;
pub mod verified;

pub use access::{AccessClaims, AccessTokenError};
pub use keyring::KeyRing;
pub use signing::SigningKeys;
