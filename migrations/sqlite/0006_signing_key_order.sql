-- Keys created within the same second must still have a definite newest.
ALTER TABLE signing_keys ADD COLUMN created_at_ms BIGINT;
UPDATE signing_keys SET created_at_ms = created_at * 1000;
