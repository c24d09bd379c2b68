-- Migration 3: sessions learn about catalog changes made by other sessions.
-- Runs inside the DO block of migrate.c after migration 2.
--
-- A change that alters what a session on a branch reads or writes - a table
-- tracked or untracked, a branch deleted or renamed, a branch's base moved -
-- sends a notification on channel epoch_catalog when its transaction commits.
-- The proxy LISTENs on that channel on every server connection that serves a
-- branch session and reloads the session's catalog (epoch._session_current())
-- before the session's next statement. Creating a branch notifies nobody: no
-- session can be on a branch before it exists.

CREATE FUNCTION epoch._notify_catalog() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    -- identical notifications of one transaction are folded into one
    PERFORM pg_notify('epoch_catalog', TG_TABLE_NAME);
    RETURN NULL;
END
$f$;

CREATE TRIGGER epoch_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON epoch.tracked
    FOR EACH STATEMENT EXECUTE FUNCTION epoch._notify_catalog();
CREATE TRIGGER epoch_notify_delete AFTER DELETE ON epoch.branch
    FOR EACH STATEMENT EXECUTE FUNCTION epoch._notify_catalog();
-- row level, so that updates of other columns (protected, description) stay quiet
CREATE TRIGGER epoch_notify_update AFTER UPDATE ON epoch.branch
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.base_seq IS DISTINCT FROM NEW.base_seq)
    EXECUTE FUNCTION epoch._notify_catalog();
