-- Times are Unix seconds (BIGINT) and ids TEXT so one SQL text serves both
-- databases through sqlx's Any driver. Secrets never appear in clear:
-- *_hash columns hold SHA-256 (what we only compare), *_enc columns hold
-- AES-256-GCM ciphertext bound to its row by associated data.

CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    alg             TEXT NOT NULL,
    private_key_enc BYTEA NOT NULL,
    public_x        TEXT NOT NULL,
    public_y        TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    retired_at      BIGINT
);

CREATE TABLE clients (
    client_id                  TEXT PRIMARY KEY,
    client_secret_hash         TEXT,
    client_name                TEXT,
    redirect_uris              TEXT NOT NULL, -- JSON array
    grant_types                TEXT NOT NULL, -- JSON array
    token_endpoint_auth_method TEXT NOT NULL,
    application_type           TEXT NOT NULL,
    registration               TEXT NOT NULL, -- 'dcr' | 'config' | 'cimd'
    created_at                 BIGINT NOT NULL
);

CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    provider   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    login      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (provider, subject)
);

-- An /authorize request between the consent page and our code.
CREATE TABLE pending_authorizations (
    id                    TEXT PRIMARY KEY,
    client_id             TEXT NOT NULL,
    redirect_uri          TEXT NOT NULL,
    state                 TEXT,
    code_challenge        TEXT NOT NULL,
    scope                 TEXT NOT NULL,
    resource              TEXT NOT NULL,
    provider              TEXT NOT NULL,
    csrf_hash             TEXT NOT NULL,
    upstream_state_hash   TEXT UNIQUE,
    upstream_verifier_enc BYTEA,
    created_at            BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL
);

CREATE TABLE grants (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    client_id  TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    resource   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX grants_user ON grants (user_id);

-- The mapping: one upstream token per (grant, provider), sealed.
CREATE TABLE upstream_links (
    id                 TEXT PRIMARY KEY,
    grant_id           TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    provider           TEXT NOT NULL,
    access_token_enc   BYTEA NOT NULL,
    refresh_token_enc  BYTEA,
    scopes             TEXT NOT NULL,
    expires_at         BIGINT,
    refresh_expires_at BIGINT,
    version            BIGINT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    UNIQUE (grant_id, provider)
);

CREATE TABLE authorization_codes (
    code_hash      TEXT PRIMARY KEY,
    grant_id       TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    scope          TEXT NOT NULL,
    resource       TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    resource   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
