-- functions/catalog.sql: helpers every other area calls (names, branch
-- lookup, errors worded like PostgreSQL) and the catalog change notification.
--
-- Repeatable: the current definition of each function, exactly one each. The
-- migration DO block (src/branch/migrate.c) re-applies every file of
-- functions/ whole, after the numbered schema steps, whenever their hash differs
-- from the one stored in epoch.meta ('functions_hash'). Edit in place; a change of
-- signature or of a view's columns also needs a DROP in a new schema/NNN_*.sql.

CREATE OR REPLACE FUNCTION epoch._bump_catalog() RETURNS void LANGUAGE sql AS $f$
    UPDATE epoch.meta SET value = value + 1 WHERE key = 'catalog_version';
$f$;

-- git-like branch and tag names (see docs/sql.md; what = 'branch' or 'tag');
-- raises 22023 with the reason.
CREATE OR REPLACE FUNCTION epoch._check_ref_name(name text, what text) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
    why text;
BEGIN
    IF name IS NULL OR name = '' THEN
        why := format('a %s name cannot be empty', what);
    ELSIF octet_length(name) > 200 THEN
        why := format('a %s name is at most 200 bytes', what);
    ELSIF name = 'main' THEN
        why := '"main" is reserved for the live tables';
    ELSIF name = 'HEAD' THEN
        why := '"HEAD" names the session''s branch';
    ELSIF name ~ '[[:cntrl:][:space:]]' THEN
        why := format('a %s name cannot contain spaces or control characters', what);
    ELSIF strpos(name, '@') > 0 OR strpos(name, '{') > 0 OR strpos(name, '}') > 0 THEN
        why := format('a %s name cannot contain "@", "{" or "}"', what);
    ELSIF strpos(name, '..') > 0 THEN
        why := format('a %s name cannot contain ".."', what);
    ELSIF name ~ '[~^:?*\[\\"'']' THEN
        why := format('a %s name cannot contain any of ~ ^ : ? * [ \ " or a quote', what);
    ELSIF name ~ '(^[/.-])|(/$)|(//)|(/\.)|(\.lock$)|(\.$)' THEN
        why := format('a %s name cannot start with "/", "." or "-", end with "/", "." or ".lock", or contain "//" or "/."', what);
    END IF;
    IF why IS NOT NULL THEN
        RAISE EXCEPTION 'invalid % name "%"', what, name
            USING ERRCODE = '22023', DETAIL = why,
                  HINT = 'Use letters, digits and "-", "_", "/", "." like a git branch: feature/x.';
    END IF;
END
$f$;

-- Drop this session's temporary table name if it exists (a leftover of an
-- earlier call in the same transaction), without DROP IF EXISTS's NOTICE.
CREATE OR REPLACE FUNCTION epoch._drop_temp(name text) RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
    IF to_regclass('pg_temp.' || quote_ident(name)) IS NOT NULL THEN
        EXECUTE format('DROP TABLE pg_temp.%I', name);
    END IF;
END
$f$;

CREATE OR REPLACE FUNCTION epoch._check_name(name text) RETURNS void LANGUAGE sql AS $f$
    SELECT epoch._check_ref_name(name, 'branch');
$f$;

-- The branch row for a name; raises 42704 when there is none.
CREATE OR REPLACE FUNCTION epoch._branch(name text) RETURNS epoch.branch LANGUAGE plpgsql STABLE AS $f$
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
CREATE OR REPLACE FUNCTION epoch._live(branch_id bigint) RETURNS bigint LANGUAGE plpgsql STABLE AS $f$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM epoch.branch WHERE id = branch_id) THEN
        RAISE EXCEPTION 'the branch of this session was deleted'
            USING ERRCODE = '42704',
                  HINT = 'Choose another branch with SET epoch.branch, or reconnect.';
    END IF;
    RETURN branch_id;
END
$f$;

-- Used by generated SQL of every write on a branch: the branch still exists
-- and the role may write table rel as the statement does (kind, the columns
-- it names: functions/access.sql). Evaluated once per statement.
-- It also notes the statement's kind for the write check's row-level
-- security WITH CHECK (epoch._rls_check_new).
CREATE OR REPLACE FUNCTION epoch._live_write(branch_id bigint, rel regclass, kind text, cols text[])
RETURNS bigint LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM epoch._may_write(rel, kind, cols);
    PERFORM pg_catalog.set_config('epoch.write_kind', kind, true);
    RETURN epoch._live(branch_id);
END
$f$;

-- Used by generated SQL for "@ref" references: the branch id of a name.
CREATE OR REPLACE FUNCTION epoch._branch_id(name text) RETURNS bigint LANGUAGE sql STABLE AS $f$
    SELECT (epoch._branch(name)).id;
$f$;
CREATE OR REPLACE FUNCTION epoch._branch_base(name text) RETURNS bigint LANGUAGE sql STABLE AS $f$
    SELECT (epoch._branch(name)).base_seq;
$f$;

CREATE OR REPLACE FUNCTION epoch._tracked(tbl regclass) RETURNS epoch.tracked LANGUAGE sql STABLE AS $f$
    SELECT * FROM epoch.tracked WHERE relid = tbl;
$f$;

-- Raised by branch INSERTs for a key that already exists on the branch,
-- worded like PostgreSQL's own unique violation.
CREATE OR REPLACE FUNCTION epoch._duplicate_key(constraint_name text, key_columns text, key_values text)
RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    RAISE EXCEPTION 'duplicate key value violates unique constraint "%"', constraint_name
        USING ERRCODE = '23505', CONSTRAINT = constraint_name,
              DETAIL = format('Key (%s)=%s already exists.', key_columns, key_values);
END
$f$;

-- COPY … FROM on a branch copies into a staging temp table whose statement
-- trigger runs the INSERT into the delta that the proxy generated (argument).
CREATE OR REPLACE FUNCTION epoch._copy_apply() RETURNS trigger LANGUAGE plpgsql AS $f$
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
CREATE OR REPLACE FUNCTION epoch._delta_rows(t epoch.tracked, branch_id bigint) RETURNS bigint
LANGUAGE plpgsql STABLE AS $f$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM epoch.%I WHERE _epoch_branch = $1', t.delta_table)
        INTO n USING branch_id;
    RETURN n;
END
$f$;

-- Catalog changes reach other sessions (triggers of schema step 3): a
-- change that alters what a session on a branch reads or writes - a table
-- tracked or untracked, a branch deleted or renamed, a branch's base moved -
-- notifies channel epoch_catalog when its transaction commits; the proxy
-- LISTENs on it and reloads the session's catalog.
-- The triggers on epoch.branch (schema step 14): the ids of the branches
-- deleted, renamed or rebased, "branch:<id>,…" (at most 500 ids: beyond,
-- "branch", which sessions read as "everything"; a payload is 8,000 bytes
-- at most).
CREATE OR REPLACE FUNCTION epoch._notify_branches() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE
    n bigint;
    ids text;
BEGIN
    IF TG_LEVEL = 'ROW' THEN
        PERFORM pg_notify('epoch_catalog', 'branch:' || OLD.id);
        RETURN NULL;
    END IF;
    SELECT count(*), string_agg(id::text, ',') INTO n, ids FROM gone;
    IF n > 0 THEN
        PERFORM pg_notify('epoch_catalog', CASE WHEN n <= 500 THEN 'branch:' || ids ELSE 'branch' END);
    END IF;
    RETURN NULL;
END
$f$;

CREATE OR REPLACE FUNCTION epoch._notify_catalog() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    -- identical notifications of one transaction are folded into one
    PERFORM pg_notify('epoch_catalog', TG_TABLE_NAME);
    RETURN NULL;
END
$f$;
