-- Schema step 14: a branch deleted, renamed or given a new base notifies
-- epoch_catalog with the branch ids ("branch:<id>,<id>…"), so that sessions
-- and cached catalogs of other branches keep theirs (src/session/load.c);
-- before, every session of every branch reloaded its catalog after any
-- branch_delete (bench/agents: branch churn). A payload without ids still
-- means "everything".

-- epoch:after-functions
DROP TRIGGER IF EXISTS epoch_notify_delete ON epoch.branch;
CREATE TRIGGER epoch_notify_delete AFTER DELETE ON epoch.branch REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION epoch._notify_branches();
DROP TRIGGER IF EXISTS epoch_notify_update ON epoch.branch;
CREATE TRIGGER epoch_notify_update AFTER UPDATE ON epoch.branch
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.base_seq IS DISTINCT FROM NEW.base_seq)
    EXECUTE FUNCTION epoch._notify_branches();
