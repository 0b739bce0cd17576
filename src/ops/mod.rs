//! Running the broker: request ids, and (to come) health, metrics, logs and
//! shutdown. Nothing here decides a protocol question.

pub mod request_id;
