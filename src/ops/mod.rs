//! Running the broker: request ids, health and readiness, metrics, logs,
//! and shutdown. Nothing here decides a protocol question.

pub mod health;
pub mod logs;
pub mod metrics;
pub mod request_id;
pub mod shutdown;
