-- The active-grants gauge counts grants not revoked, and the sweep finds
-- grants revoked long ago: both by revoked_at.
CREATE INDEX grants_revoked_at ON grants (revoked_at);
