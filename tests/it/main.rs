//! The one integration-test binary (one link step, shared support code).

mod support;

mod audit;
mod audit_events;
mod cimd;
mod clients;
mod conformance;
mod consent;
mod discovery;
mod flow;
mod gateway;
mod github_tools;
mod github_write_tools;
mod http_rules;
mod instances;
mod key_rotation;
mod linked_providers;
mod mcp_endpoint;
mod mcp_protocol;
mod oidc;
mod oidc_vault;
mod refresh;
mod registration;
mod revocation;
mod scopes;
mod sdk_clients;
mod sdk_scenarios;
mod sdk_tools;
mod secrets;
mod signing_keys;
mod startup;
mod storage;
mod storage_links;
mod token_exchange;
mod upstream_refresh;
mod upstream_revocation;
