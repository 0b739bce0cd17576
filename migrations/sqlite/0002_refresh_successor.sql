-- The answer a rotation gave, sealed (AES-256-GCM, bound to the old token's
-- hash), so a retry inside the grace window gets the same pair back.
ALTER TABLE refresh_tokens ADD COLUMN successor_enc BLOB;
