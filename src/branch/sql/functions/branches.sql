-- functions/branches.sql: branch lifecycle: create, delete, rename, protect,
-- expire, and the per-branch stats of the epoch.branches view.
--
-- Repeatable: the current definition of each function, exactly one each. The
-- migration DO block (src/branch/migrate.c) re-applies every file of
-- functions/ whole, after the numbered schema steps, whenever their hash differs
-- from the one stored in epoch.meta ('functions_hash'). Edit in place; a change of
-- signature or of a view's columns also needs a DROP in a new schema/NNN_*.sql.

-- Runs at every branch_create (and runs epoch.gc() once an hour, functions/gc.sql):
-- the partial index on expires_at keeps it O(expired),
-- but while epoch.branch has no statistics yet (thousands of branches made in one
-- statement) the planner picks a scan of the whole table, so seq scans are off here.
CREATE OR REPLACE FUNCTION epoch.sweep() RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off AS $f$
DECLARE
    b epoch.branch;
BEGIN
    PERFORM epoch._gc_if_due();
    FOR b IN SELECT * FROM epoch.branch
              WHERE expires_at IS NOT NULL AND expires_at <= now() AND NOT protected
              ORDER BY id DESC
    LOOP
        PERFORM epoch._audit('branch_expire', b.name, jsonb_build_object('expires_at', b.expires_at));
        PERFORM epoch._drop_branch(b);
        RETURN NEXT b.name;
    END LOOP;
END
$f$;

CREATE OR REPLACE FUNCTION epoch._drop_branch(b epoch.branch) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
    t epoch.tracked;
BEGIN
    FOR t IN SELECT * FROM epoch.tracked LOOP
        EXECUTE format('DELETE FROM epoch.%I WHERE _epoch_branch = $1', t.delta_table) USING b.id;
        -- the history of the branch's rows serves only its commits
        IF NOT EXISTS (SELECT 1 FROM epoch.commit c WHERE c.branch_id = b.id) THEN
            EXECUTE format('DELETE FROM epoch.%I WHERE _epoch_branch = $1', format('b_%s', t.id)) USING b.id;
        END IF;
    END LOOP;
    DELETE FROM epoch.branch WHERE id = b.id;
END
$f$;

-- from: any ref (docs/history.md). A branch made from main, a commit of main
-- or main at a time starts as main at that point; one made from another
-- branch's rows (its working state or one of its commits) starts with a copy
-- of them: O(that branch's changes), never O(table).
CREATE OR REPLACE FUNCTION epoch.branch_create(name text, "from" text DEFAULT NULL, description text DEFAULT NULL,
                                    agent_id text DEFAULT NULL, ttl interval DEFAULT NULL)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    r record;
    new_id bigint;
    t epoch.tracked;
    cols text;
BEGIN
    PERFORM epoch._check_name(name);
    PERFORM epoch.sweep();
    IF EXISTS (SELECT 1 FROM epoch.tag g WHERE g.name = branch_create.name) THEN
        RAISE EXCEPTION 'a tag is named "%"; a branch cannot share its name', name USING ERRCODE = '42710',
            HINT = 'Refs look up branches before tags, so the branch would hide the tag: pick another name.';
    END IF;
    SELECT * INTO r FROM epoch._resolve(coalesce("from", 'main'));
    IF ttl IS NOT NULL AND ttl <= interval '0' THEN
        RAISE EXCEPTION 'ttl must be positive, got %', ttl USING ERRCODE = '22023';
    END IF;
    BEGIN
        INSERT INTO epoch.branch (name, parent_id, base_seq, agent_id, description, expires_at, head_commit, created_by)
        VALUES (name,
                CASE WHEN EXISTS (SELECT 1 FROM epoch.branch b WHERE b.id = r.branch_id) THEN r.branch_id END,
                CASE WHEN r.branch_id = 0 AND r.working
                     THEN coalesce(pg_sequence_last_value('epoch.change_seq'), 0)
                     ELSE r.base_seq END,
                agent_id, description, now() + ttl, r.commit_id, epoch._invoker())
        RETURNING id INTO new_id;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'branch "%" already exists', name
            USING ERRCODE = '42710', HINT = 'Pick another name, or delete it first with epoch.branch_delete.';
    END;
    IF r.branch_id <> 0 THEN
        -- a branch of a branch starts with its parent's changed rows (never O(table));
        -- generated columns are computed by the delta, never copied
        FOR t IN SELECT * FROM epoch.tracked LOOP
            cols := (SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)
                       FROM pg_attribute
                      WHERE attrelid = format('epoch.%I', t.delta_table)::regclass
                        AND attnum > 0 AND NOT attisdropped AND attname <> '_epoch_branch'
                        AND attgenerated = '');
            EXECUTE format('INSERT INTO epoch.%I (_epoch_branch, %s) SELECT $1, %s FROM (%s) _s',
                           t.delta_table, cols, cols, epoch._delta_at(t, r.branch_id, r.point))
                USING new_id;
        END LOOP;
    END IF;
    PERFORM epoch._audit('branch_create', name, jsonb_build_object('from', coalesce("from", 'main'), 'ttl', ttl::text, 'agent_id', agent_id));
    RETURN name;
END
$f$;

CREATE OR REPLACE FUNCTION epoch.branch_delete(name text, force boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
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
    PERFORM epoch._require_branch_owner(b, 'delete');
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
    PERFORM epoch._audit('branch_delete', name, jsonb_build_object('force', force));
    PERFORM epoch._drop_branch(b);
    RETURN name;
END
$f$;

CREATE OR REPLACE FUNCTION epoch.branch_rename(old_name text, new_name text) RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    b epoch.branch;
BEGIN
    IF old_name = 'main' THEN
        RAISE EXCEPTION 'branch "main" cannot be renamed' USING ERRCODE = '42501';
    END IF;
    b := epoch._branch(old_name);
    PERFORM epoch._require_branch_owner(b, 'rename');
    PERFORM epoch._check_name(new_name);
    BEGIN
        UPDATE epoch.branch SET name = new_name WHERE id = b.id;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'branch "%" already exists', new_name USING ERRCODE = '42710';
    END;
    PERFORM epoch._audit('branch_rename', new_name, jsonb_build_object('from', old_name));
    RETURN new_name;
END
$f$;

CREATE OR REPLACE FUNCTION epoch.branch_protect(name text, "on" boolean DEFAULT true) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    b epoch.branch;
BEGIN
    IF name = 'main' THEN
        RAISE EXCEPTION 'branch "main" is always protected' USING ERRCODE = '42501';
    END IF;
    b := epoch._branch(name);
    PERFORM epoch._require_branch_owner(b, CASE WHEN "on" THEN 'protect' ELSE 'unprotect' END);
    UPDATE epoch.branch SET protected = "on" WHERE id = b.id;
    PERFORM epoch._audit(CASE WHEN "on" THEN 'branch_protect' ELSE 'branch_unprotect' END, name, NULL);
    RETURN name;
END
$f$;

CREATE OR REPLACE FUNCTION epoch._branch_stats(branch_id bigint,
                                    OUT modified_tables int, OUT changed_rows bigint, OUT size_bytes bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp STABLE AS $f$
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
    FOR t IN SELECT * FROM epoch.tracked WHERE epoch._invoker_may_see(relid) LOOP
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
