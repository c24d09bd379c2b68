-- functions/ddl.sql: DDL notifications. Event triggers (created by
-- epoch.watch_ddl(), which needs a superuser) notify channel epoch_catalog after
-- every DDL command that is not only about temporary objects; without them the
-- proxy reloads a branch session's catalog when it is older than
-- catalog_max_age.
--
-- Repeatable: the current definition of each function, exactly one each. The
-- migration DO block (src/branch/migrate.c) re-applies every file of
-- functions/ whole, after the numbered schema steps, whenever their hash differs
-- from the one stored in epoch.meta ('functions_hash'). Edit in place; a change of
-- signature or of a view's columns also needs a DROP in a new schema/NNN_*.sql.

CREATE OR REPLACE FUNCTION epoch._notify_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $f$
BEGIN
    IF TG_EVENT = 'sql_drop' THEN
        IF EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects() WHERE NOT is_temporary) THEN
            PERFORM pg_notify('epoch_catalog', 'ddl');
        END IF;
        -- the access views embed the policies (functions/access.sql)
        IF EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects() WHERE object_type = 'policy') THEN
            PERFORM epoch.refresh_policies();
        END IF;
    ELSIF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands()
                   WHERE schema_name IS NULL OR schema_name NOT LIKE 'pg\_temp%') THEN
        PERFORM pg_notify('epoch_catalog', 'ddl');
        -- the policies again, and the column grants the views copy (not for
        -- the GRANTs refresh_policies() itself makes)
        IF coalesce(current_setting('epoch.refreshing', true), '') = '' AND EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() c
                    WHERE c.command_tag IN ('CREATE POLICY', 'ALTER POLICY', 'GRANT', 'REVOKE')
                       OR (c.command_tag = 'ALTER TABLE' AND c.objid IN (SELECT relid FROM epoch.tracked))) THEN
            PERFORM epoch.refresh_policies();
        END IF;
    END IF;
END
$f$;

CREATE OR REPLACE FUNCTION epoch.watch_ddl() RETURNS boolean LANGUAGE plpgsql AS $f$
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
