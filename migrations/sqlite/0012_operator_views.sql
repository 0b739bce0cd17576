-- Operators list a client's grants, count its live ones and revoke them
-- before deleting it: find them by client without a table scan.
CREATE INDEX grants_client ON grants (client_id);
