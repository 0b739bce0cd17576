// TEMPORARY STUB until the audit-ledger branch merges.
pub enum EventKind {
    TokenExchanged,
}
pub enum Actor {
    Client(String),
}
pub struct AuditEvent;
impl AuditEvent {
    pub fn new(_k: EventKind, _a: Actor) -> Self {
        AuditEvent
    }
    pub fn user(self, _: &str) -> Self {
        self
    }
    pub fn client(self, _: &str) -> Self {
        self
    }
    pub fn grant(self, _: &str) -> Self {
        self
    }
    pub fn provider(self, _: &str) -> Self {
        self
    }
    pub fn outcome(self, _: impl Into<String>) -> Self {
        self
    }
    pub fn detail(self, _: impl Into<String>) -> Self {
        self
    }
}
pub async fn record(
    _s: &crate::store::Store,
    _e: AuditEvent,
) -> Result<(), crate::store::StoreError> {
    Ok(())
}
