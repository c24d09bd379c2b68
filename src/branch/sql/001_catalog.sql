-- Migration 1: the epoch catalog, tracking and branch lifecycle.
-- Runs inside the DO block of migrate.c, which holds the migration lock and
-- has checked that the schema is at version 0. Everything here commits or
-- rolls back together.

CREATE SCHEMA epoch;
COMMENT ON SCHEMA epoch IS 'Epoch: branch metadata, storage of branch rows and captured history';

CREATE TABLE epoch.meta (key text PRIMARY KEY, value bigint NOT NULL);
INSERT INTO epoch.meta VALUES ('schema_version', 0), ('catalog_version', 1);

-- The global change sequence: every captured pre-image of main gets the next
-- number; a branch's base point is a value of it.
CREATE SEQUENCE epoch.change_seq AS bigint;

CREATE TABLE epoch.tracked (
    id           serial PRIMARY KEY,
    relid        oid NOT NULL UNIQUE,
    schema_name  text NOT NULL,
    table_name   text NOT NULL,
    pk_columns   text[] NOT NULL,
    delta_table  text NOT NULL,
    history_table text NOT NULL,
    tracked_at   timestamptz NOT NULL DEFAULT now(),
    tracked_by   text NOT NULL DEFAULT current_user,
    UNIQUE (schema_name, table_name)
);

CREATE TABLE epoch.branch (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    parent_id   bigint REFERENCES epoch.branch (id) ON DELETE SET NULL,
    base_seq    bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL DEFAULT current_user,
    agent_id    text,
    description text,
    expires_at  timestamptz,
    protected   boolean NOT NULL DEFAULT false
);
-- epoch.sweep() looks only at branches with a ttl
CREATE INDEX branch_expires_at ON epoch.branch (expires_at) WHERE expires_at IS NOT NULL;
INSERT INTO epoch.branch (id, name, protected, description)
VALUES (0, 'main', true, 'the live tables');

-- ---------------------------------------------------------------- helpers

CREATE FUNCTION epoch._bump_catalog() RETURNS void LANGUAGE sql AS $f$
    UPDATE epoch.meta SET value = value + 1 WHERE key = 'catalog_version';
$f$;

-- git-like branch names (see docs/sql.md); raises 22023 with the reason.
CREATE FUNCTION epoch._check_name(name text) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
    why text;
BEGIN
    IF name IS NULL OR name = '' THEN
        why := 'a branch name cannot be empty';
    ELSIF octet_length(name) > 200 THEN
        why := 'a branch name is at most 200 bytes';
    ELSIF name = 'main' THEN
        why := '"main" is reserved for the live tables';
    ELSIF name ~ '[[:cntrl:][:space:]]' THEN
        why := 'a branch name cannot contain spaces or control characters';
    ELSIF strpos(name, '@') > 0 THEN
        why := 'a branch name cannot contain "@"';
    ELSIF strpos(name, '..') > 0 THEN
        why := 'a branch name cannot contain ".."';
    ELSIF name ~ '[~^:?*\[\\"'']' THEN
        why := 'a branch name cannot contain any of ~ ^ : ? * [ \ " or a quote';
    ELSIF name ~ '(^[/.-])|(/$)|(//)|(/\.)|(\.lock$)|(\.$)' THEN
        why := 'a branch name cannot start with "/", "." or "-", end with "/", "." or ".lock", or contain "//" or "/."';
    END IF;
    IF why IS NOT NULL THEN
        RAISE EXCEPTION 'invalid branch name "%"', name
            USING ERRCODE = '22023', DETAIL = why,
                  HINT = 'Use letters, digits and "-", "_", "/", "." like a git branch: feature/x.';
    END IF;
END
$f$;

-- The branch row for a name; raises 42704 when there is none.
CREATE FUNCTION epoch._branch(name text) RETURNS epoch.branch LANGUAGE plpgsql STABLE AS $f$
DECLARE
    b epoch.branch;
BEGIN
    SELECT * INTO b FROM epoch.branch WHERE branch.name = _branch.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'branch "%" does not exist', name
            USING ERRCODE = '42704',
                  HINT = 'List branches with SELECT name FROM epoch.branches; create one with SELECT epoch.branch_create(''name'').';
    END IF;
    IF b.expires_at IS NOT NULL AND b.expires_at <= now() THEN
        RAISE EXCEPTION 'branch "%" expired at %', name, b.expires_at
            USING ERRCODE = '42704', HINT = 'Expired branches are deleted by epoch.sweep().';
    END IF;
    RETURN b;
END
$f$;

-- Used by generated writes: the branch id, if the branch still exists.
CREATE FUNCTION epoch._live(branch_id bigint) RETURNS bigint LANGUAGE plpgsql STABLE AS $f$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM epoch.branch WHERE id = branch_id) THEN
        RAISE EXCEPTION 'the branch of this session was deleted'
            USING ERRCODE = '42704',
                  HINT = 'Choose another branch with SET epoch.branch, or reconnect.';
    END IF;
    RETURN branch_id;
END
$f$;

-- Used by generated SQL for "@ref" references: the branch id of a name.
CREATE FUNCTION epoch._branch_id(name text) RETURNS bigint LANGUAGE sql STABLE AS $f$
    SELECT (epoch._branch(name)).id;
$f$;
CREATE FUNCTION epoch._branch_base(name text) RETURNS bigint LANGUAGE sql STABLE AS $f$
    SELECT (epoch._branch(name)).base_seq;
$f$;

CREATE FUNCTION epoch._tracked(tbl regclass) RETURNS epoch.tracked LANGUAGE sql STABLE AS $f$
    SELECT * FROM epoch.tracked WHERE relid = tbl;
$f$;

-- Raised by branch INSERTs for a key that already exists on the branch,
-- worded like PostgreSQL's own unique violation.
CREATE FUNCTION epoch._duplicate_key(constraint_name text, key_columns text, key_values text)
RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    RAISE EXCEPTION 'duplicate key value violates unique constraint "%"', constraint_name
        USING ERRCODE = '23505', CONSTRAINT = constraint_name,
              DETAIL = format('Key (%s)=%s already exists.', key_columns, key_values);
END
$f$;

-- COPY … FROM on a branch copies into a staging temp table whose statement
-- trigger runs the INSERT into the delta that the proxy generated (argument).
CREATE FUNCTION epoch._copy_apply() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
    con text;
BEGIN
    EXECUTE TG_ARGV[0];
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    -- re-raise without the generated statement in CONTEXT
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                            hnt = PG_EXCEPTION_HINT, con = CONSTRAINT_NAME;
    RAISE EXCEPTION USING ERRCODE = st, MESSAGE = msg, DETAIL = det, HINT = hnt, CONSTRAINT = con;
END
$f$;

-- Rows a branch holds in one tracked table's delta.
CREATE FUNCTION epoch._delta_rows(t epoch.tracked, branch_id bigint) RETURNS bigint
LANGUAGE plpgsql STABLE AS $f$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM epoch.%I WHERE _epoch_branch = $1', t.delta_table)
        INTO n USING branch_id;
    RETURN n;
END
$f$;

-- ---------------------------------------------------------------- tracking

CREATE FUNCTION epoch.track(table_name regclass) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    rel record;
    t epoch.tracked;
    pk text[];
    cols text;
    pkcols text;
    pkjoin text;
    tid int;
    delta text;
    hist text;
    bad text;
    r record;
BEGIN
    SELECT c.oid, c.relkind, c.relpersistence, n.nspname, c.relname
      INTO rel
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = table_name;
    t := epoch._tracked(table_name);
    IF t.id IS NOT NULL THEN
        RAISE NOTICE 'table %.% is already tracked', quote_ident(rel.nspname), quote_ident(rel.relname);
        RETURN format('%I.%I', rel.nspname, rel.relname);
    END IF;
    IF rel.relkind <> 'r' THEN
        RAISE EXCEPTION '"%" is not an ordinary table; epoch can track only ordinary tables', rel.relname
            USING ERRCODE = '42809';
    END IF;
    IF rel.relpersistence = 't' OR rel.nspname IN ('epoch', 'pg_catalog', 'information_schema')
       OR rel.nspname LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'table "%.%" cannot be tracked (temporary or system table)', rel.nspname, rel.relname
            USING ERRCODE = '42809';
    END IF;
    SELECT array_agg(a.attname::text ORDER BY k.ord)
      INTO pk
      FROM pg_index i
      CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indrelid = table_name AND i.indisprimary;
    IF pk IS NULL THEN
        RAISE EXCEPTION 'table "%" has no primary key; epoch cannot track it', rel.relname
            USING ERRCODE = '55000',
                  HINT = format('Add one first: ALTER TABLE %I.%I ADD PRIMARY KEY (...);', rel.nspname, rel.relname);
    END IF;
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum),
           string_agg(attname, ', ') FILTER (WHERE attname LIKE '\_epoch\_%')
      INTO cols, bad
      FROM pg_attribute WHERE attrelid = table_name AND attnum > 0 AND NOT attisdropped;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'table "%" has columns named _epoch_*, which epoch reserves: %', rel.relname, bad
            USING ERRCODE = '42701';
    END IF;
    pkcols := (SELECT string_agg(quote_ident(c), ', ') FROM unnest(pk) c);
    -- key columns are NOT NULL: plain equality, so the anti-join can hash
    -- (IS NOT DISTINCT FROM made an UPDATE of n rows O(n^2))
    pkjoin := (SELECT string_agg(format('o.%1$I = n.%1$I', c), ' AND ') FROM unnest(pk) c);

    tid := nextval(pg_get_serial_sequence('epoch.tracked', 'id'));
    delta := 'd_' || tid;
    hist := 'h_' || tid;

    -- Branch rows: the base table's columns, types, defaults and checks, keyed
    -- by (branch, primary key); tombstones carry _epoch_deleted.
    EXECUTE format('CREATE TABLE epoch.%I (_epoch_branch bigint NOT NULL, LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED, _epoch_deleted boolean NOT NULL DEFAULT false, PRIMARY KEY (_epoch_branch, %s))',
                   delta, table_name, pkcols);
    -- Captured pre-images of main: the row as it was before change _epoch_seq
    -- (_epoch_existed = false: the key did not exist before, i.e. an insert).
    -- identity columns: the branch takes its values from main's sequence
    -- (LIKE does not copy identity), so keys never collide across branches
    FOR r IN SELECT attname FROM pg_attribute
              WHERE attrelid = table_name AND attidentity <> '' AND NOT attisdropped LOOP
        EXECUTE format('ALTER TABLE epoch.%I ALTER COLUMN %I SET DEFAULT nextval(%L)',
                       delta, r.attname, pg_get_serial_sequence(table_name::text, r.attname));
    END LOOP;
    EXECUTE format('CREATE TABLE epoch.%I AS SELECT 0::bigint AS _epoch_seq, true AS _epoch_existed, t.* FROM %s t WITH NO DATA',
                   hist, table_name);
    EXECUTE format('CREATE INDEX ON epoch.%I (%s, _epoch_seq)', hist, pkcols);
    EXECUTE format('CREATE INDEX ON epoch.%I (_epoch_seq)', hist);

    -- Change capture: statement-level triggers with transition tables, one
    -- INSERT ... SELECT per statement however many rows it touches.
    EXECUTE format($t$CREATE FUNCTION epoch.%I() RETURNS trigger LANGUAGE plpgsql AS $body$
DECLARE
    -- one number per statement: a statement changes each key once, and a
    -- sequence call per row cost more than the copy itself
    _epoch_seq_now bigint := nextval('epoch.change_seq');
BEGIN
    -- the proxy never writes main's tables from a branch session; a function
    -- or rule that does would change production: refuse
    IF coalesce(nullif(current_setting('epoch.branch', true), ''), 'main') <> 'main'
       OR nullif(current_setting('epoch.as_of', true), '') IS NOT NULL THEN
        RAISE EXCEPTION 'cannot change table %%.%% of main from a session on branch "%%"',
            TG_TABLE_SCHEMA, TG_TABLE_NAME,
            coalesce(nullif(current_setting('epoch.as_of', true), ''), current_setting('epoch.branch', true))
            USING ERRCODE = '0A000',
                  HINT = 'A function or trigger called on a branch wrote to main; call it on main.';
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO epoch.%I (_epoch_seq, _epoch_existed, %s)
        SELECT _epoch_seq_now, false, %s FROM new_rows n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO epoch.%I SELECT _epoch_seq_now, true, o.* FROM old_rows o;
        INSERT INTO epoch.%I (_epoch_seq, _epoch_existed, %s)
        SELECT _epoch_seq_now, false, %s FROM new_rows n
         WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE %s);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO epoch.%I SELECT _epoch_seq_now, true, o.* FROM old_rows o;
    ELSIF TG_OP = 'TRUNCATE' THEN
        INSERT INTO epoch.%I SELECT _epoch_seq_now, true, o.* FROM %s o;
    END IF;
    RETURN NULL;
END
$body$$t$,
        'capture_' || tid, hist, pkcols, pkcols, hist, hist, pkcols, pkcols, pkjoin, hist, hist, table_name);
    EXECUTE format('CREATE TRIGGER epoch_capture_ins AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION epoch.%I()',
                   table_name, 'capture_' || tid);
    EXECUTE format('CREATE TRIGGER epoch_capture_upd AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION epoch.%I()',
                   table_name, 'capture_' || tid);
    EXECUTE format('CREATE TRIGGER epoch_capture_del AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION epoch.%I()',
                   table_name, 'capture_' || tid);
    EXECUTE format('CREATE TRIGGER epoch_capture_trunc BEFORE TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION epoch.%I()',
                   table_name, 'capture_' || tid);

    INSERT INTO epoch.tracked (id, relid, schema_name, table_name, pk_columns, delta_table, history_table)
    VALUES (tid, table_name, rel.nspname, rel.relname, pk, delta, hist);
    PERFORM epoch._bump_catalog();
    RETURN format('%I.%I', rel.nspname, rel.relname);
END
$f$;

CREATE FUNCTION epoch.track_all(schema_name text DEFAULT 'public') RETURNS SETOF text
LANGUAGE plpgsql AS $f$
DECLARE
    r record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = schema_name) THEN
        RAISE EXCEPTION 'schema "%" does not exist', schema_name USING ERRCODE = '3F000';
    END IF;
    FOR r IN
        SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = schema_name AND c.relkind = 'r' AND c.relpersistence <> 't'
           AND NOT EXISTS (SELECT 1 FROM epoch.tracked t WHERE t.relid = c.oid)
           AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
         ORDER BY c.relname
    LOOP
        RETURN NEXT epoch.track(r.oid::regclass);
    END LOOP;
    FOR r IN
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = schema_name AND c.relkind = 'r' AND c.relpersistence <> 't'
           AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
    LOOP
        RAISE NOTICE 'table "%" has no primary key; not tracked', r.relname;
    END LOOP;
END
$f$;

CREATE FUNCTION epoch.untrack(table_name regclass, force boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
    t epoch.tracked;
    n bigint;
BEGIN
    t := epoch._tracked(table_name);
    IF t.id IS NULL THEN
        RAISE EXCEPTION 'table "%" is not tracked', table_name USING ERRCODE = '42P01';
    END IF;
    EXECUTE format('SELECT count(*) FROM epoch.%I', t.delta_table) INTO n;
    IF n > 0 AND NOT force THEN
        RAISE EXCEPTION 'table "%" has % changed rows on branches', table_name, n
            USING ERRCODE = '55000',
                  HINT = 'Merge or delete those branches, or call epoch.untrack(table, force => true) to drop their changes.';
    END IF;
    EXECUTE format('DROP TRIGGER epoch_capture_ins ON %s', table_name);
    EXECUTE format('DROP TRIGGER epoch_capture_upd ON %s', table_name);
    EXECUTE format('DROP TRIGGER epoch_capture_del ON %s', table_name);
    EXECUTE format('DROP TRIGGER epoch_capture_trunc ON %s', table_name);
    EXECUTE format('DROP FUNCTION epoch.%I()', 'capture_' || t.id);
    EXECUTE format('DROP TABLE epoch.%I, epoch.%I', t.delta_table, t.history_table);
    DELETE FROM epoch.tracked WHERE id = t.id;
    PERFORM epoch._bump_catalog();
    RETURN format('%I.%I', t.schema_name, t.table_name);
END
$f$;

-- ---------------------------------------------------------------- branches

CREATE FUNCTION epoch.sweep() RETURNS SETOF text LANGUAGE plpgsql AS $f$
DECLARE
    b epoch.branch;
BEGIN
    FOR b IN SELECT * FROM epoch.branch
              WHERE expires_at IS NOT NULL AND expires_at <= now() AND NOT protected
              ORDER BY id DESC
    LOOP
        PERFORM epoch._drop_branch(b);
        RETURN NEXT b.name;
    END LOOP;
END
$f$;

CREATE FUNCTION epoch._drop_branch(b epoch.branch) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
    t epoch.tracked;
BEGIN
    FOR t IN SELECT * FROM epoch.tracked LOOP
        EXECUTE format('DELETE FROM epoch.%I WHERE _epoch_branch = $1', t.delta_table) USING b.id;
    END LOOP;
    DELETE FROM epoch.branch WHERE id = b.id;
END
$f$;

CREATE FUNCTION epoch.branch_create(name text, "from" text DEFAULT NULL, description text DEFAULT NULL,
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
        -- a branch of a branch starts with its parent's changed rows (never O(table))
        FOR t IN SELECT * FROM epoch.tracked LOOP
            EXECUTE format('INSERT INTO epoch.%1$I (_epoch_branch, %2$s) SELECT $1, %2$s FROM epoch.%1$I WHERE _epoch_branch = $2',
                           t.delta_table,
                           (SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)
                              FROM pg_attribute
                             WHERE attrelid = format('epoch.%I', t.delta_table)::regclass
                               AND attnum > 0 AND NOT attisdropped AND attname <> '_epoch_branch'))
                USING new_id, parent.id;
        END LOOP;
    END IF;
    RETURN name;
END
$f$;

CREATE FUNCTION epoch.branch_delete(name text, force boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
    b epoch.branch;
    t epoch.tracked;
    n bigint := 0;
    kids text;
BEGIN
    IF name = 'main' THEN
        RAISE EXCEPTION 'branch "main" cannot be deleted' USING ERRCODE = '42501';
    END IF;
    SELECT * INTO b FROM epoch.branch WHERE branch.name = branch_delete.name;
    IF NOT FOUND THEN
        PERFORM epoch._branch(name); -- raises "does not exist"
    END IF;
    IF b.protected THEN
        RAISE EXCEPTION 'branch "%" is protected', name
            USING ERRCODE = '42501', HINT = format('Unprotect it first: SELECT epoch.branch_protect(%L, false);', name);
    END IF;
    SELECT string_agg(quote_ident(c.name), ', ') INTO kids FROM epoch.branch c WHERE c.parent_id = b.id;
    IF NOT force THEN
        IF kids IS NOT NULL THEN
            RAISE EXCEPTION 'branch "%" has child branches: %', name, kids
                USING ERRCODE = '2BP01', HINT = 'Delete them first, or use epoch.branch_delete(name, force => true).';
        END IF;
        FOR t IN SELECT * FROM epoch.tracked LOOP
            n := n + epoch._delta_rows(t, b.id);
        END LOOP;
        IF n > 0 THEN
            RAISE EXCEPTION 'branch "%" has % unmerged changed rows', name, n
                USING ERRCODE = '55000', HINT = 'Merge it first, or use epoch.branch_delete(name, force => true) to drop the changes.';
        END IF;
    END IF;
    PERFORM epoch._drop_branch(b);
    RETURN name;
END
$f$;

CREATE FUNCTION epoch.branch_rename(old_name text, new_name text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    b epoch.branch;
BEGIN
    IF old_name = 'main' THEN
        RAISE EXCEPTION 'branch "main" cannot be renamed' USING ERRCODE = '42501';
    END IF;
    b := epoch._branch(old_name);
    PERFORM epoch._check_name(new_name);
    BEGIN
        UPDATE epoch.branch SET name = new_name WHERE id = b.id;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'branch "%" already exists', new_name USING ERRCODE = '42710';
    END;
    RETURN new_name;
END
$f$;

CREATE FUNCTION epoch.branch_protect(name text, "on" boolean DEFAULT true) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
    b epoch.branch;
BEGIN
    IF name = 'main' THEN
        RAISE EXCEPTION 'branch "main" is always protected' USING ERRCODE = '42501';
    END IF;
    b := epoch._branch(name);
    UPDATE epoch.branch SET protected = "on" WHERE id = b.id;
    RETURN name;
END
$f$;

-- What the proxy needs for a session: the branch, the search path and the
-- tracked tables with their columns. One row per fact; kind says which.
CREATE FUNCTION epoch._session(branch_name text)
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
END
$f$;

-- The session's own view: epoch.as_of (read-only time travel) wins over
-- epoch.branch; both are placeholder settings PostgreSQL keeps per session,
-- so SET LOCAL, ROLLBACK, RESET and DISCARD ALL behave as for any setting.
CREATE FUNCTION epoch._session_current()
RETURNS TABLE (kind text, a text, b text, c text, d text) LANGUAGE plpgsql STABLE AS $f$
DECLARE
    as_of text := nullif(current_setting('epoch.as_of', true), '');
    br text := nullif(current_setting('epoch.branch', true), '');
BEGIN
    RETURN QUERY SELECT * FROM epoch._session(coalesce(as_of, br, 'main'));
    IF as_of IS NOT NULL THEN
        RETURN QUERY SELECT 'as_of', NULL::text, as_of, NULL::text, NULL::text;
    END IF;
END
$f$;

-- ---------------------------------------------------------------- views

CREATE VIEW epoch.tables AS
SELECT t.schema_name, t.table_name, t.pk_columns AS primary_key,
       t.tracked_at, t.tracked_by, t.delta_table, t.history_table
  FROM epoch.tracked t;

CREATE FUNCTION epoch._branch_stats(branch_id bigint,
                                    OUT modified_tables int, OUT changed_rows bigint, OUT size_bytes bigint)
LANGUAGE plpgsql STABLE AS $f$
DECLARE
    t epoch.tracked;
    n bigint;
    sz bigint;
BEGIN
    modified_tables := 0;
    changed_rows := 0;
    size_bytes := 0;
    IF branch_id = 0 THEN
        RETURN;
    END IF;
    FOR t IN SELECT * FROM epoch.tracked LOOP
        EXECUTE format('SELECT count(*), coalesce(sum(pg_column_size(d)), 0) FROM epoch.%I d WHERE _epoch_branch = $1',
                       t.delta_table) INTO n, sz USING branch_id;
        IF n > 0 THEN
            modified_tables := modified_tables + 1;
            changed_rows := changed_rows + n;
            size_bytes := size_bytes + sz;
        END IF;
    END LOOP;
END
$f$;

CREATE VIEW epoch.branches AS
SELECT b.name, b.base_seq::text AS base, NULL::text AS head, p.name AS parent,
       b.created_at, b.created_by, b.agent_id, b.description, b.expires_at,
       CASE WHEN b.id = 0 THEN 'main'
            WHEN b.expires_at IS NOT NULL AND b.expires_at <= now() THEN 'expired'
            WHEN b.protected THEN 'protected'
            ELSE 'active' END AS status,
       s.modified_tables, s.changed_rows, s.size_bytes
  FROM epoch.branch b
  LEFT JOIN epoch.branch p ON p.id = b.parent_id
  CROSS JOIN LATERAL epoch._branch_stats(b.id) s;
