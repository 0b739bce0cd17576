-- The upkeep looks for live grants with no code, refresh token or sign-in
-- in progress under them: by grant, in each of those tables.
CREATE INDEX authorization_codes_grant ON authorization_codes (grant_id);
CREATE INDEX pending_authorizations_grant ON pending_authorizations (grant_id);
-- A step-up looks up the user's newest grant to one client; with only
-- grants_user and grants_client to choose from, SQLite may walk every
-- grant of a client that thousands of users share.
CREATE INDEX grants_user_client ON grants (user_id, client_id, created_at);
-- Operator listings run newest first and page on (created_at, id).
CREATE INDEX grants_created ON grants (created_at, id);
CREATE INDEX clients_created ON clients (created_at, client_id);
CREATE INDEX users_created ON users (created_at, id);
