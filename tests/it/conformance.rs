//! The MCP conformance suite (authorization mode) against the broker.
