//! Our authorization server's rules as plain functions over plain types: no
//! HTTP framework and no database in here. Handlers in `http/` parse, call
//! these, and map the result.

pub mod authorize;
pub mod cimd;
pub mod consent;
pub mod error;
pub mod pkce;
pub mod redirect_uri;
pub mod register;
pub mod registration_policy;
pub mod resource;
pub mod scope;
pub mod token;
pub mod token_exchange;

pub use error::{ErrorCode, OAuthError};
