-- Schema step 5: DDL changes reach other sessions' catalogs too (see
-- functions/ddl.sql). Only a superuser can create event triggers: when the
-- migration runs as one, it installs them once; later, a superuser calls
-- epoch.watch_ddl() (a database migrated by another role, or triggers
-- dropped on purpose, stay as they are).

-- epoch:after-functions
IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    PERFORM epoch.watch_ddl();
END IF;
