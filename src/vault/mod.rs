//! The token vault: upstream tokens sealed with AES-256-GCM, each ciphertext
//! bound to its row, grant and provider by associated data.

pub mod cipher;
pub mod key;
mod links;

pub use cipher::{Cipher, CipherError};
pub use links::{UpstreamToken, Vault, VaultError};
