-- Schema step 9: every role can use branches (docs/privileges.md).
-- Written to run again harmlessly (tests re-run the last step).
--
-- The admin role: epoch_admin unless it cannot be created (the migrating
-- role needs CREATEROLE for that; an existing role of that name is used as it
-- is). Its oid is kept in epoch.meta, so renaming the role keeps it, and
-- epoch.set_admin_role() chooses another.
IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'epoch_admin')
   AND (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
    CREATE ROLE epoch_admin NOLOGIN;
END IF;
INSERT INTO epoch.meta
SELECT 'admin_role', oid::bigint FROM pg_roles WHERE rolname = 'epoch_admin'
ON CONFLICT (key) DO NOTHING;

-- Every role may use the schema and read the catalog (names, ids, commits:
-- no row of any table); the storage is the owner's alone (functions/access.sql).
GRANT USAGE ON SCHEMA epoch TO PUBLIC;
GRANT SELECT ON epoch.meta, epoch.tracked, epoch.branch, epoch.commit, epoch.commit_table, epoch.tag,
                epoch.main_clock TO PUBLIC;
GRANT SELECT ON SEQUENCE epoch.change_seq TO PUBLIC;

-- epoch:after-functions
-- the access views of the tables tracked before (functions/access.sql)
PERFORM epoch._access(t) FROM epoch.tracked t ORDER BY t.id;
