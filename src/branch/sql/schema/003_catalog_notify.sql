-- Schema step 3: sessions learn about catalog changes made by other sessions
-- (see epoch._notify_catalog in functions/catalog.sql). The triggers need the
-- function, hence after the functions.

-- epoch:after-functions
CREATE TRIGGER epoch_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON epoch.tracked
    FOR EACH STATEMENT EXECUTE FUNCTION epoch._notify_catalog();
CREATE TRIGGER epoch_notify_delete AFTER DELETE ON epoch.branch
    FOR EACH STATEMENT EXECUTE FUNCTION epoch._notify_catalog();
-- row level, so that updates of other columns (protected, description) stay quiet
CREATE TRIGGER epoch_notify_update AFTER UPDATE ON epoch.branch
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.base_seq IS DISTINCT FROM NEW.base_seq)
    EXECUTE FUNCTION epoch._notify_catalog();
