-- Migration 6: the unique indexes of tracked tables, for ON CONFLICT on
-- branches. Runs inside the DO block of migrate.c after migration 5.
--
-- A branch enforces only the primary key, so ON CONFLICT must name it; the
-- proxy tells a target that names another unique index (refused: 0A000) from
-- one that matches no unique index at all (42P10, as PostgreSQL says).
-- epoch._session_current() gains rows of kind 'unique': a = table id, b = the
-- index's name, c = one of its columns (plain unique indexes only: not the
-- primary key, not partial, no expressions). Older proxies ignore them.

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
    RETURN QUERY
        SELECT 'unique', t.id::text, ic.relname::text, att.attname::text, NULL::text
          FROM epoch.tracked t
          JOIN pg_index i ON i.indrelid = t.relid AND i.indisunique AND NOT i.indisprimary
                         AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
          JOIN pg_class ic ON ic.oid = i.indexrelid
          JOIN pg_attribute att ON att.attrelid = t.relid AND att.attnum = ANY (i.indkey::int2[])
         ORDER BY t.id, ic.relname, att.attnum;
END
$f$;
