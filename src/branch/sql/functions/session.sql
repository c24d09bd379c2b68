-- functions/session.sql: what the proxy loads for a session (its catalog).
--
-- Repeatable: the current definition of each function, exactly one each. The
-- migration DO block (src/branch/migrate.c) re-applies every file of
-- functions/ whole, after the numbered schema steps, whenever their hash differs
-- from the one stored in epoch.meta ('functions_hash'). Edit in place; a change of
-- signature or of a view's columns also needs a DROP in a new schema/NNN_*.sql.
--
-- epoch._session_current() returns one row per fact, kind saying which (the
-- proxy's src/branch/catalog.c reads them; older proxies ignore kinds they do
-- not know):
--   version    a = schema version, b = functions hash (epoch.meta): the login
--              probe runs the migration block only when either differs from
--              the proxy's
--   branch, path, rel, table, column, default, attr, view: see epoch._session
--   as_of      b = the ref of a read-only time-travel session
--   point      an as_of ref other than main's live tables: a = the point of
--              the branch's rows (NULL: its working rows); the session reads
--              the tables at (branch a of 'branch', base c, this point)
--   ddl_watch  a = number of enabled DDL event triggers (epoch.watch_ddl())
--   unique     a = table id, b = index name, c = one of its columns (plain
--              unique indexes other than the primary key)
--   rls        a = table id: row-level security is enabled on the table

-- The definition of a view with every name that is not in pg_catalog
-- qualified (pg_get_viewdef qualifies what is not visible on the search
-- path): the proxy splices it into other queries, where a CTE or another
-- search path would otherwise capture an unqualified name.
CREATE OR REPLACE FUNCTION epoch._viewdef(view_oid oid) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog AS $f$
    SELECT pg_get_viewdef(view_oid)
$f$;

-- What the proxy needs for a session on a branch: the branch, the search
-- path and the tracked tables with their columns. One row per fact; kind says
-- which.
CREATE OR REPLACE FUNCTION epoch._session(branch_name text)
RETURNS TABLE (kind text, a text, b text, c text, d text) LANGUAGE plpgsql STABLE AS $f$
DECLARE
    br epoch.branch := epoch._branch(coalesce(branch_name, 'main'));
BEGIN
    RETURN QUERY SELECT * FROM epoch._session_facts(br.id, br.name, coalesce(br.base_seq, 0));
END
$f$;

-- The tracked tables of which branch bid changed many rows: 5 % of main's
-- (by pg_class.reltuples), at least 1,000, or 20,000 whatever main's size
-- (main never analyzed: 20,000). Counted in d_<id>, up to that many entries
-- of its (branch, key) index: exact when the catalog is loaded, and at most
-- ~1 ms a table; skipped for a d_<id> whose rows of all branches together
-- are fewer (pg_class.reltuples, when known), so that a database with many
-- tracked tables pays a count only where a branch may be big. A definer's
-- function: the storage is its owner's to read.
CREATE OR REPLACE FUNCTION epoch._delta_big(bid bigint) RETURNS SETOF int
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    t record;
    n bigint;
BEGIN
    FOR t IN SELECT * FROM (
                 SELECT x.id, x.delta_table, d.reltuples AS delta_rows,
                        CASE WHEN c.reltuples > 0 THEN least(20000, greatest(1000, (c.reltuples * 0.05)::bigint))
                             ELSE 20000 END AS cap
                   FROM epoch.tracked x JOIN pg_class c ON c.oid = x.relid
                   JOIN pg_class d ON d.oid = to_regclass(format('epoch.%I', x.delta_table))) s
              WHERE s.delta_rows < 0 OR s.delta_rows >= s.cap LOOP
        EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM epoch.%I WHERE _epoch_branch = $1 LIMIT $2) x',
                       t.delta_table)
            INTO n USING bid, t.cap;
        IF n >= t.cap THEN
            RETURN NEXT t.id;
        END IF;
    END LOOP;
END
$f$;

-- The rows of epoch._session for the state (bid, base) named state_name.
CREATE OR REPLACE FUNCTION epoch._session_facts(bid bigint, state_name text, base bigint)
RETURNS TABLE (kind text, a text, b text, c text, d text) LANGUAGE plpgsql STABLE AS $f$
DECLARE
    views oid[];
BEGIN
    -- the views that read a tracked table, directly or through other views
    -- (a view's _RETURN rule depends on every relation its query reads);
    -- not through materialized views, which are read as they are. Other
    -- sessions' temporary schemas are left out (epoch's own views read no
    -- tracked table).
    views := ARRAY(
        WITH RECURSIVE dep(oid) AS (
            SELECT t.relid FROM epoch.tracked t
            UNION
            SELECT r.ev_class
              FROM dep
              JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = dep.oid
                              AND d.classid = 'pg_rewrite'::regclass
              JOIN pg_rewrite r ON r.oid = d.objid AND r.ev_class <> dep.oid
              JOIN pg_class v ON v.oid = r.ev_class AND v.relkind = 'v'
        )
        SELECT c.oid
          FROM dep JOIN pg_class c ON c.oid = dep.oid AND c.relkind = 'v'
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND (n.nspname NOT LIKE 'pg\_temp\_%' OR n.oid = pg_my_temp_schema()));
    RETURN QUERY SELECT 'branch', bid::text, state_name, base::text,
                        (SELECT value FROM epoch.meta WHERE key = 'catalog_version')::text;
    RETURN QUERY SELECT 'path', o::text, s::text, NULL, NULL
                   FROM unnest(current_schemas(true)) WITH ORDINALITY AS p(s, o);
    -- relations on the path that share a tracked table's or a listed view's
    -- name: another one earlier on the path shadows the tracked table or view
    RETURN QUERY SELECT 'rel', NULL, n.nspname::text, c.relname::text, NULL
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = ANY (current_schemas(true))
                    AND (c.relname IN (SELECT t.table_name FROM epoch.tracked t)
                         OR c.relname IN (SELECT relname FROM pg_class WHERE oid = ANY (views)))
                    AND c.relkind IN ('r', 'v', 'm', 'f', 'p');
    RETURN QUERY SELECT 'table', t.id::text, t.schema_name, t.table_name,
                        (SELECT conname::text FROM pg_constraint
                          WHERE conrelid = t.relid AND contype = 'p')
                   FROM epoch.tracked t;
    RETURN QUERY
        SELECT 'column', t.id::text, a.attname::text,
               (a.attname = ANY (t.pk_columns))::text, format_type(a.atttypid, NULL)
          FROM epoch.tracked t
          JOIN pg_attribute a ON a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY t.id, a.attnum;
    -- column defaults as the delta has them (identity columns: main's sequence)
    RETURN QUERY
        SELECT 'default', t.id::text, a.attname::text, pg_get_expr(d.adbin, d.adrelid), NULL::text
          FROM epoch.tracked t
          JOIN pg_attribute a ON a.attrelid = format('epoch.%I', t.delta_table)::regclass
                             AND a.attnum > 0 AND NOT a.attisdropped
          JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attname NOT IN ('_epoch_branch', '_epoch_deleted');
    -- tables with row-level security enabled: a branch UPDATE/DELETE
    -- filters its target rows by their policies (functions/access.sql)
    RETURN QUERY
        SELECT 'rls', t.id::text, NULL::text, NULL::text, NULL::text
          FROM epoch.tracked t JOIN pg_class c ON c.oid = t.relid
         WHERE c.relrowsecurity;
    -- tables with SELECT granted on some columns: a read on a branch reads
    -- only the columns the statement names (src/rewrite/rewrite_columns.c)
    RETURN QUERY
        SELECT 'colacl', t.id::text, NULL::text, NULL::text, NULL::text
          FROM epoch.tracked t WHERE epoch._column_grants(t.relid);
    -- tables of which the branch changed many rows (epoch._delta_big): an
    -- aggregate over them reads the overlay rather than main's aggregate and
    -- the changes (src/rewrite/rewrite_agg.c)
    IF bid <> 0 THEN
        RETURN QUERY SELECT 'dbig', big.table_id::text, NULL::text, NULL::text, NULL::text
                       FROM epoch._delta_big(bid) AS big(table_id);
    END IF;
    -- identity and stored generated columns of the base table: c = attidentity ('a' ALWAYS, 'd' BY DEFAULT), d =
    -- attgenerated ('s'). The rewriter leaves generated columns out of the
    -- writes (the delta computes them) and enforces GENERATED ALWAYS.
    RETURN QUERY
        SELECT 'attr', t.id::text, a.attname::text, nullif(a.attidentity::text, ''),
               nullif(a.attgenerated::text, '')
          FROM epoch.tracked t
          JOIN pg_attribute a ON a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE a.attidentity <> '' OR a.attgenerated <> ''
         ORDER BY t.id, a.attnum;
    -- views over tracked tables: a = flags ('b' security_barrier), b, c =
    -- schema and name, d = the definition, every name outside pg_catalog
    -- qualified; materialized views are never listed (they hold main's rows
    -- as of their last refresh)
    RETURN QUERY
        SELECT 'view',
               CASE WHEN EXISTS (SELECT 1 FROM pg_options_to_table(c.reloptions) o
                                  WHERE o.option_name = 'security_barrier'
                                    AND o.option_value::boolean)
                    THEN 'b' ELSE '' END,
               n.nspname::text, c.relname::text, epoch._viewdef(c.oid)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = ANY (views)
         ORDER BY n.nspname, c.relname;
END
$f$;


-- The session's own view: epoch.as_of (read-only time travel) wins over
-- epoch.branch; both are placeholder settings PostgreSQL keeps per session,
-- so SET LOCAL, ROLLBACK, RESET and DISCARD ALL behave as for any setting.
CREATE OR REPLACE FUNCTION epoch._session_current()
RETURNS TABLE (kind text, a text, b text, c text, d text) LANGUAGE plpgsql STABLE AS $f$
DECLARE
    as_of text := nullif(current_setting('epoch.as_of', true), '');
    br text := nullif(current_setting('epoch.branch', true), '');
    r record;
BEGIN
    RETURN QUERY SELECT 'version', m.value::text,
                        (SELECT f.value::text FROM epoch.meta f WHERE f.key = 'functions_hash'),
                        NULL::text, NULL::text
                   FROM epoch.meta m WHERE m.key = 'schema_version';
    IF as_of IS NULL THEN
        RETURN QUERY SELECT * FROM epoch._session(coalesce(br, 'main'));
    ELSE
        -- any ref (docs/history.md); main's live tables are read as they are
        SELECT * INTO r FROM epoch._resolve(as_of);
        RETURN QUERY SELECT * FROM epoch._session_facts(r.branch_id, as_of, coalesce(r.base_seq, 0));
        RETURN QUERY SELECT 'as_of', NULL::text, as_of, NULL::text, NULL::text;
        IF NOT (r.branch_id = 0 AND r.base_seq IS NULL) THEN
            RETURN QUERY SELECT 'point', r.point::text, NULL::text, NULL::text, NULL::text;
        END IF;
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

