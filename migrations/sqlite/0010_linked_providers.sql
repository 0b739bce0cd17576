-- A grant can hold links to several providers. When an authorization needs
-- more than the sign-in provider, the upstream legs run one after another;
-- each leg after the first is a pending request carrying the grant its link
-- joins.
ALTER TABLE pending_authorizations ADD COLUMN grant_id TEXT;
