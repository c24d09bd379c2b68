-- Migration 5: DDL changes reach other sessions' catalogs too.
-- Runs inside the DO block of migrate.c after migration 4.
--
-- Migration 3 notifies channel epoch_catalog when epoch's own tables change
-- (track, untrack, branch deleted, renamed or moved). A session's catalog also
-- depends on DDL: views over tracked tables (migration 4), columns and keys
-- of tracked tables, relations that shadow them on the search path. Event
-- triggers notify the same channel after every DDL command that is not only
-- about temporary objects. Only a superuser can create event triggers:
-- epoch.watch_ddl() creates them, the migration calls it when it runs as
-- one. Without them, the proxy reloads a branch session's catalog when it is
-- more than a second old instead; epoch._session_current() says which
-- (a row of kind 'ddl_watch').

CREATE FUNCTION epoch._notify_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $f$
BEGIN
    IF TG_EVENT = 'sql_drop' THEN
        IF EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects() WHERE NOT is_temporary) THEN
            PERFORM pg_notify('epoch_catalog', 'ddl');
        END IF;
    ELSIF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands()
                   WHERE schema_name IS NULL OR schema_name NOT LIKE 'pg\_temp%') THEN
        PERFORM pg_notify('epoch_catalog', 'ddl');
    END IF;
END
$f$;

CREATE FUNCTION epoch.watch_ddl() RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'epoch.watch_ddl() must be called by a superuser'
            USING ERRCODE = '42501',
                  HINT = 'Without it, sessions on branches notice views and other DDL within a second.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'epoch_ddl_end') THEN
        CREATE EVENT TRIGGER epoch_ddl_end ON ddl_command_end EXECUTE FUNCTION epoch._notify_ddl();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'epoch_ddl_drop') THEN
        CREATE EVENT TRIGGER epoch_ddl_drop ON sql_drop EXECUTE FUNCTION epoch._notify_ddl();
    END IF;
    RETURN true;
END
$f$;

IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    PERFORM epoch.watch_ddl();
END IF;

CREATE OR REPLACE FUNCTION epoch._session_current()
RETURNS TABLE (kind text, a text, b text, c text, d text) LANGUAGE plpgsql STABLE AS $f$
DECLARE
    as_of text := nullif(current_setting('epoch.as_of', true), '');
    br text := nullif(current_setting('epoch.branch', true), '');
BEGIN
    RETURN QUERY SELECT * FROM epoch._session(coalesce(as_of, br, 'main'));
    IF as_of IS NOT NULL THEN
        RETURN QUERY SELECT 'as_of', NULL::text, as_of, NULL::text, NULL::text;
    END IF;
    -- DDL notifications installed and enabled (epoch.watch_ddl())
    RETURN QUERY SELECT 'ddl_watch', count(*)::text, NULL::text, NULL::text, NULL::text
                   FROM pg_event_trigger
                  WHERE evtname IN ('epoch_ddl_end', 'epoch_ddl_drop') AND evtenabled <> 'D';
END
$f$;
