-- Migration 2: stored generated and identity columns on branches.
-- Runs inside the DO block of migrate.c after migration 1 (on a new database
-- in the same block; on one migrated by an older proxy at its next session).
--
-- * epoch._session also reports which columns of a tracked table are
--   identity or stored generated columns (rows of kind 'attr'; older proxies
--   ignore kinds they do not know);
-- * epoch.branch_create from a branch no longer copies generated columns of
--   the delta (PostgreSQL refuses a value for them; the delta computes them).

CREATE OR REPLACE FUNCTION epoch.branch_create(name text, "from" text DEFAULT NULL, description text DEFAULT NULL,
                                    agent_id text DEFAULT NULL, ttl interval DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    parent epoch.branch;
    new_id bigint;
    t epoch.tracked;
BEGIN
    PERFORM epoch._check_name(name);
    PERFORM epoch.sweep();
    IF "from" IS NULL OR "from" = 'main' THEN
        SELECT * INTO parent FROM epoch.branch WHERE id = 0;
    ELSE
        parent := epoch._branch("from");
    END IF;
    IF ttl IS NOT NULL AND ttl <= interval '0' THEN
        RAISE EXCEPTION 'ttl must be positive, got %', ttl USING ERRCODE = '22023';
    END IF;
    BEGIN
        INSERT INTO epoch.branch (name, parent_id, base_seq, agent_id, description, expires_at)
        VALUES (name, parent.id,
                CASE WHEN parent.id = 0
                     THEN coalesce(pg_sequence_last_value('epoch.change_seq'), 0)
                     ELSE parent.base_seq END,
                agent_id, description, now() + ttl)
        RETURNING id INTO new_id;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'branch "%" already exists', name
            USING ERRCODE = '42710', HINT = 'Pick another name, or delete it first with epoch.branch_delete.';
    END;
    IF parent.id <> 0 THEN
        -- a branch of a branch starts with its parent's changed rows (never O(table));
        -- generated columns are computed by the delta, never copied
        FOR t IN SELECT * FROM epoch.tracked LOOP
            EXECUTE format('INSERT INTO epoch.%1$I (_epoch_branch, %2$s) SELECT $1, %2$s FROM epoch.%1$I WHERE _epoch_branch = $2',
                           t.delta_table,
                           (SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)
                              FROM pg_attribute
                             WHERE attrelid = format('epoch.%I', t.delta_table)::regclass
                               AND attnum > 0 AND NOT attisdropped AND attname <> '_epoch_branch'
                               AND attgenerated = ''))
                USING new_id, parent.id;
        END LOOP;
    END IF;
    RETURN name;
END
$f$;

-- What the proxy needs for a session: the branch, the search path and the
-- tracked tables with their columns. One row per fact; kind says which.
CREATE OR REPLACE FUNCTION epoch._session(branch_name text)
RETURNS TABLE (kind text, a text, b text, c text, d text) LANGUAGE plpgsql STABLE AS $f$
DECLARE
    br epoch.branch;
BEGIN
    br := epoch._branch(coalesce(branch_name, 'main'));
    RETURN QUERY SELECT 'branch', br.id::text, br.name, coalesce(br.base_seq, 0)::text,
                        (SELECT value FROM epoch.meta WHERE key = 'catalog_version')::text;
    RETURN QUERY SELECT 'path', o::text, s::text, NULL, NULL
                   FROM unnest(current_schemas(true)) WITH ORDINALITY AS p(s, o);
    -- relations on the path that share a tracked table's name: an untracked
    -- one earlier on the path shadows the tracked one
    RETURN QUERY SELECT 'rel', NULL, n.nspname::text, c.relname::text, NULL
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = ANY (current_schemas(true))
                    AND c.relname IN (SELECT t.table_name FROM epoch.tracked t)
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
    -- identity and stored generated columns of the base table (added in
    -- migration 2): c = attidentity ('a' ALWAYS, 'd' BY DEFAULT), d =
    -- attgenerated ('s'). The rewriter leaves generated columns out of the
    -- writes (the delta computes them) and enforces GENERATED ALWAYS.
    RETURN QUERY
        SELECT 'attr', t.id::text, a.attname::text, nullif(a.attidentity::text, ''),
               nullif(a.attgenerated::text, '')
          FROM epoch.tracked t
          JOIN pg_attribute a ON a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE a.attidentity <> '' OR a.attgenerated <> ''
         ORDER BY t.id, a.attnum;
END
$f$;
