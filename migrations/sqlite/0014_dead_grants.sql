-- The upkeep looks for live grants with no code, refresh token or sign-in
-- in progress under them: by grant, in each of those tables.
CREATE INDEX authorization_codes_grant ON authorization_codes (grant_id);
CREATE INDEX pending_authorizations_grant ON pending_authorizations (grant_id);
