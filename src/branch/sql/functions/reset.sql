-- functions/reset.sql: moving a branch (or main's live tables) back to a
-- commit of its history (docs/history.md).
--
-- Repeatable: the current definition of each function, exactly one each. The
-- migration DO block (src/branch/migrate.c) re-applies every file of
-- functions/ whole, after the numbered schema steps, whenever their hash differs
-- from the one stored in epoch.meta ('functions_hash'). Edit in place; a change of
-- signature or of a view's columns also needs a DROP in a new schema/NNN_*.sql.

-- Is commit anc head or one of its ancestors? O(length of the history).
CREATE OR REPLACE FUNCTION epoch._is_ancestor(anc text, head text) RETURNS boolean LANGUAGE sql STABLE AS $f$
    WITH RECURSIVE a(id) AS (
        SELECT head COLLATE "C"
        UNION
        SELECT p FROM a JOIN epoch.commit c ON c.id = a.id CROSS JOIN LATERAL unnest(c.parents) p
    )
    SELECT EXISTS (SELECT 1 FROM a WHERE a.id = anc COLLATE "C");
$f$;

-- The columns of t a row can be written with (no generated column), quoted.
CREATE OR REPLACE FUNCTION epoch._writable_columns(t epoch.tracked) RETURNS text[] LANGUAGE sql STABLE AS $f$
    SELECT array_agg(quote_ident(a.attname) ORDER BY a.attnum)
      FROM pg_attribute a
     WHERE a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';
$f$;

-- Main's live rows of t back to main at point p: the keys changed after p
-- get their first pre-image after p (or are deleted if they did not exist).
-- Written like any write on main, so the capture triggers record it.
CREATE OR REPLACE FUNCTION epoch._reset_main_table(t epoch.tracked, p bigint) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
    rel text := format('%I.%I', t.schema_name, t.table_name);
    pk text := (SELECT string_agg(quote_ident(c), ', ') FROM unnest(t.pk_columns) c);
    km text := (SELECT string_agg(format('m.%1$I = f.%1$I', c), ' AND ') FROM unnest(t.pk_columns) c);
    cols text[] := epoch._writable_columns(t);
    sets text;
BEGIN
    -- keys and GENERATED ALWAYS identities never change in a row that exists
    sets := (SELECT string_agg(format('%1$I = EXCLUDED.%1$I', a.attname), ', ' ORDER BY a.attnum)
               FROM pg_attribute a
              WHERE a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                AND a.attidentity <> 'a' AND a.attname <> ALL (t.pk_columns));
    -- the target rows first: the writes below add pre-images after p
    PERFORM epoch._drop_temp('_epoch_reset');
    EXECUTE format('CREATE TEMP TABLE _epoch_reset ON COMMIT DROP AS SELECT DISTINCT ON (%s) * FROM epoch.%I '
                   'WHERE _epoch_seq > $1 ORDER BY %s, _epoch_seq', pk, t.history_table, pk) USING p;
    EXECUTE format('DELETE FROM %s m USING pg_temp._epoch_reset f WHERE %s AND NOT f._epoch_existed', rel, km);
    EXECUTE format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM pg_temp._epoch_reset f '
                   'WHERE f._epoch_existed ON CONFLICT (%s) DO %s',
                   rel, array_to_string(cols, ', '), array_to_string(cols, ', '), pk,
                   CASE WHEN sets IS NULL THEN 'NOTHING' ELSE 'UPDATE SET ' || sets END);
    DROP TABLE pg_temp._epoch_reset;
END
$f$;

-- A branch's rows of t replaced by those branch bid held at point (none for
-- main): with the branch's new base, its state is the target's.
CREATE OR REPLACE FUNCTION epoch._reset_branch_table(t epoch.tracked, branch bigint, bid bigint, point bigint)
RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
    cols text := (SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)
                    FROM pg_attribute
                   WHERE attrelid = format('epoch.%I', t.delta_table)::regclass
                     AND attnum > 0 AND NOT attisdropped AND attname <> '_epoch_branch' AND attgenerated = '');
BEGIN
    PERFORM epoch._drop_temp('_epoch_reset');
    IF bid = 0 THEN
        EXECUTE format('CREATE TEMP TABLE _epoch_reset ON COMMIT DROP AS SELECT %s FROM epoch.%I WHERE false',
                       cols, t.delta_table);
    ELSE
        EXECUTE format('CREATE TEMP TABLE _epoch_reset ON COMMIT DROP AS SELECT %s FROM (%s) _s',
                       cols, epoch._delta_at(t, bid, point));
    END IF;
    EXECUTE format('DELETE FROM epoch.%I WHERE _epoch_branch = $1', t.delta_table) USING branch;
    EXECUTE format('INSERT INTO epoch.%I (_epoch_branch, %s) SELECT $1, %s FROM pg_temp._epoch_reset',
                   t.delta_table, cols, cols) USING branch;
    DROP TABLE pg_temp._epoch_reset;
END
$f$;

-- Move the session's branch (head and working state) to a commit of its
-- history; on main, rewrite the live tables back to a main commit or to
-- main@{time} (superuser or database owner only). Returns the commit id (NULL
-- for main@{time} between commits).
CREATE OR REPLACE FUNCTION epoch.reset(ref text) RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $f$
DECLARE
    br epoch.branch;
    r record;
    t epoch.tracked;
    head text;
BEGIN
    PERFORM epoch._refuse_as_of('epoch.reset');
    br := epoch._session_branch();
    IF br.id = 0 THEN
        -- it rewrites the live tables: their owner or an admin
        PERFORM epoch._require_admin('reset main', ARRAY(SELECT relid FROM epoch.tracked));
    END IF;
    SELECT * INTO r FROM epoch._resolve(ref);
    -- a branch name (HEAD included) resets to its head commit, as git does
    IF r.working AND r.commit_id IS NOT NULL THEN
        SELECT * INTO r FROM epoch._resolve(r.commit_id);
    END IF;
    IF br.id <> 0 AND br.protected THEN
        RAISE EXCEPTION 'branch "%" is protected', br.name USING ERRCODE = '42501',
            HINT = format('Unprotect it first: SELECT epoch.branch_protect(%L, false);', br.name);
    END IF;
    IF r.commit_id IS NULL AND NOT (br.id = 0 AND r.branch_id = 0 AND NOT r.working) THEN
        RAISE EXCEPTION 'ref "%" names no commit to reset to', ref USING ERRCODE = '42704',
            HINT = 'Reset to a commit of the branch''s history (epoch.commits).';
    END IF;
    IF r.commit_id IS NOT NULL AND (br.head_commit IS NULL OR NOT epoch._is_ancestor(r.commit_id, br.head_commit)) THEN
        RAISE EXCEPTION 'commit % is not in the history of branch "%"', left(r.commit_id, 12), br.name
            USING ERRCODE = '22023',
                  HINT = 'reset moves a branch back along its own history; to take another state, create a branch from it.';
    END IF;
    IF br.id = 0 THEN
        IF r.branch_id <> 0 THEN
            RAISE EXCEPTION 'main can only be reset to a commit of main or to main@{time}' USING ERRCODE = '22023';
        END IF;
        FOR t IN SELECT * FROM epoch.tracked ORDER BY id LOOP
            PERFORM epoch._reset_main_table(t, r.base_seq);
        END LOOP;
        head := coalesce(r.commit_id, (SELECT c.id FROM epoch.commit c WHERE c.branch_id = 0 AND c.point <= r.base_seq
                                        ORDER BY c.point DESC, c.ord DESC LIMIT 1));
        UPDATE epoch.branch SET head_commit = head WHERE id = 0;
        PERFORM epoch._audit('reset', 'main', jsonb_build_object('ref', ref, 'commit', head));
        RETURN head;
    END IF;
    FOR t IN SELECT * FROM epoch.tracked ORDER BY id LOOP
        -- the tables whose rows it rewrites: as if the role wrote them
        IF epoch._delta_rows(t, br.id) > 0 OR (r.branch_id <> 0 AND epoch._delta_rows(t, r.branch_id) > 0) THEN
            PERFORM epoch._invoker_may_rewrite(t.relid);
        END IF;
        PERFORM epoch._reset_branch_table(t, br.id, r.branch_id, r.point);
    END LOOP;
    UPDATE epoch.branch SET base_seq = r.base_seq, head_commit = r.commit_id WHERE id = br.id;
    PERFORM epoch._audit('reset', br.name, jsonb_build_object('ref', ref, 'commit', r.commit_id));
    RETURN r.commit_id;
END
$f$;
