-- Which clients each user has approved, with which scope: consent is shown
-- again only for a new client, a wider scope, or prompt=consent.
CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- The browser's sign-in with us (cookie value stored hashed): how /authorize
-- knows the user before the upstream flow.
CREATE TABLE browser_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX browser_sessions_user ON browser_sessions (user_id);

-- Set when consent was skipped for a remembered user: the callback must then
-- find that same user upstream.
ALTER TABLE pending_authorizations ADD COLUMN consented_user_id TEXT;
