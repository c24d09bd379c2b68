-- Migration 7: the schema version in the session catalog. Runs inside the DO
-- block of migrate.c after migration 6.
--
-- epoch._session_current() gains one row of kind 'version' (a = the schema
-- version in epoch.meta). A branch login then checks the version with the
-- catalog load it makes anyway and runs the migration DO block (44 KB of SQL
-- that PostgreSQL parses at every run: 1.5 ms warm, ~15 ms on a new backend)
-- only when the row is missing or older. Older proxies ignore the row.

CREATE OR REPLACE FUNCTION epoch._session_current()
RETURNS TABLE (kind text, a text, b text, c text, d text) LANGUAGE plpgsql STABLE AS $f$
DECLARE
    as_of text := nullif(current_setting('epoch.as_of', true), '');
    br text := nullif(current_setting('epoch.branch', true), '');
BEGIN
    RETURN QUERY SELECT 'version', m.value::text, NULL::text, NULL::text, NULL::text
                   FROM epoch.meta m WHERE m.key = 'schema_version';
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
