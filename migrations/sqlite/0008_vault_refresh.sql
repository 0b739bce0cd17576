-- Refresh on demand and envelope encryption for upstream links.
--
-- refresh_lease_*: the cross-instance lock. One instance takes the lease with
-- a conditional UPDATE, refreshes upstream, and writes the new tokens only if
-- `version` is still the one it read (fencing), so a slow instance never
-- overwrites a newer rotated refresh token.
ALTER TABLE upstream_links ADD COLUMN refresh_lease_owner TEXT;
ALTER TABLE upstream_links ADD COLUMN refresh_lease_until BIGINT;
ALTER TABLE upstream_links ADD COLUMN last_refreshed_at BIGINT;
-- Set when the provider refused the refresh token for good: the user must
-- sign in again. The sealed tokens stay for the operator's inspection.
ALTER TABLE upstream_links ADD COLUMN reauth_required_at BIGINT;
ALTER TABLE upstream_links ADD COLUMN reauth_reason TEXT;
-- Envelope encryption: the tokens are sealed under a per-link data key,
-- itself sealed (wrapped) under key-encryption key `kek_id`.
ALTER TABLE upstream_links ADD COLUMN data_key_enc BLOB;
ALTER TABLE upstream_links ADD COLUMN kek_id BIGINT;
CREATE INDEX upstream_links_kek ON upstream_links (kek_id);
