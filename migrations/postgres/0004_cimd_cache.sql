-- Client ID Metadata Documents: a 'cimd' client row is also the cached
-- document; past this time (Unix seconds) the document is fetched again.
ALTER TABLE clients ADD COLUMN metadata_expires_at BIGINT;
