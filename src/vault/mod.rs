//! The token vault: upstream tokens sealed under per-link data keys (wrapped
//! by versioned key-encryption keys), refreshed on demand once per link
//! across instances, re-wrapped on key rotation, revoked upstream with the
//! grant.

pub mod cipher;
pub mod key;
mod links;
mod refresh;
mod revoke;
mod rotate;
mod single_flight;

pub use cipher::{Cipher, CipherError, DataKey};
pub use links::{
    UpstreamToken, Vault, VaultError, data_key_aad, describe_tokens, expiry, link_aad,
    needs_refresh,
};
pub use revoke::{OperatorRevocation, RevocationOutcome};
pub use rotate::RotationReport;
