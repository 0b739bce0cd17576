//! The one integration-test binary (one link step, shared support code).

mod support;

mod flow;
mod sdk_clients;
mod http_rules;
mod storage;
mod secrets;
mod mcp_endpoint;
mod startup;
mod revocation;
mod refresh;
mod discovery;
mod clients;
mod conformance;
mod registration;
mod consent;
mod signing_keys;
mod cimd;
mod scopes;
