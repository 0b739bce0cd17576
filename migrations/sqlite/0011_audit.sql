-- The audit ledger: append-only, one event per step in a mapping's life.
--
-- Each event carries `hash`, SHA-256 over its other columns and `prev_hash`
-- (the previous event's hash), so editing or removing one breaks the chain.
-- user_provider/subject/login are copied from `users` when the event is
-- appended, so the record survives the user's deletion.
CREATE TABLE audit_events (
    seq           INTEGER PRIMARY KEY,
    time          BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    actor         TEXT NOT NULL,
    user_id       TEXT,
    user_provider TEXT,
    user_subject  TEXT,
    user_login    TEXT,
    client_id     TEXT,
    grant_id      TEXT,
    provider      TEXT,
    outcome       TEXT NOT NULL,
    request_id    TEXT,
    detail        TEXT,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE INDEX audit_events_user ON audit_events (user_id, seq);
CREATE INDEX audit_events_client ON audit_events (client_id, seq);
CREATE INDEX audit_events_grant ON audit_events (grant_id, seq);
CREATE INDEX audit_events_time ON audit_events (time);

-- One row: the newest event (seq, hash) and the floor a retention purge left
-- (the last event removed; 0 and the genesis hash before any purge). Every
-- append updates this row first, which makes appends take turns.
CREATE TABLE audit_head (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    seq        BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    floor_seq  BIGINT NOT NULL,
    floor_hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash, floor_seq, floor_hash) VALUES (1, 0,
    '0000000000000000000000000000000000000000000000000000000000000000', 0,
    '0000000000000000000000000000000000000000000000000000000000000000');
