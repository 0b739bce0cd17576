-- Dynamic registrations: identical public registrations are found by their
-- metadata fingerprint and reused; ones unused for long expire.
ALTER TABLE clients ADD COLUMN metadata_hash TEXT;
ALTER TABLE clients ADD COLUMN last_used_at BIGINT;
CREATE INDEX clients_metadata_hash ON clients (metadata_hash);
