-- OIDC sign-ins send a nonce upstream; the id_token must carry it back.
-- Only its SHA-256 is kept, like the upstream state.
ALTER TABLE pending_authorizations ADD COLUMN upstream_nonce_hash TEXT;
