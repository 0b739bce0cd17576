-- The hash of a cookie set on the browser that approved consent; the
-- upstream callback must come back with it, so a link carrying our upstream
-- state cannot be finished in someone else's browser.
ALTER TABLE pending_authorizations ADD COLUMN browser_binding_hash TEXT;
