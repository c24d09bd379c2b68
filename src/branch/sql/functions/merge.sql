-- functions/merge.sql: three-way merges between branches, main included
-- (docs/merge.md).
--
-- Repeatable: the current definition of each function, exactly one each. The
-- migration DO block (src/branch/migrate.c) re-applies every file of
-- functions/ whole, after the numbered schema steps, whenever their hash differs
-- from the one stored in epoch.meta ('functions_hash'). Edit in place; a change of
-- signature or of a view's columns also needs a DROP in a new schema/NNN_*.sql.
--
-- A merge compares three states (branch, base, point), as time travel does:
-- the base B, the source S ("theirs") and the target T ("ours", a branch's
-- working state or main's live tables). The keys it looks at are those of
-- diff(B, S) (epoch._diff_rows): O(the source's changes), never O(table);
-- each is looked up in T by key. The writes are planned first (temporary
-- table _epoch_mplan), then applied in the same transaction, so a merge is
-- all or nothing.

DROP FUNCTION IF EXISTS epoch._merge_run(epoch.merge_log, boolean);
DROP FUNCTION IF EXISTS epoch._merge_may(oid, text);
DROP FUNCTION IF EXISTS epoch._merge_apply(epoch.tracked, bigint);
DROP FUNCTION IF EXISTS epoch._merge_plan(epoch.merge_log, boolean);

-- The strategy s names, with the seeds' aliases.
CREATE OR REPLACE FUNCTION epoch._merge_strategy(s text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $f$
DECLARE
    k text := lower(btrim(coalesce(s, '')));
BEGIN
    IF k IN ('three_way', 'manual') THEN
        RETURN 'three_way';
    ELSIF k IN ('ours', 'main_wins', 'target_wins') THEN
        RETURN 'ours';
    ELSIF k IN ('theirs', 'branch_wins', 'source_wins') THEN
        RETURN 'theirs';
    ELSIF k IN ('fail', 'abort') THEN
        RETURN 'fail';
    END IF;
    RAISE EXCEPTION 'unknown merge strategy "%"', s USING ERRCODE = '22023',
        HINT = 'Use three_way (or manual), ours (main_wins, target_wins), theirs (branch_wins, source_wins) or fail (abort).';
END
$f$;

-- The merge base of source state (s_commit; s_bid, s_base) and target
-- branch tb: the newest of (a) the lowest common ancestor of the two in the
-- commit graph and (b) main at the fork point (main at the branch's base for
-- a branch off main; the older base for two branches). A merge commit has
-- the merged source as a parent, so a branch merged again compares with
-- what was merged last time; a sync moves the branch's base, so (b) follows.
CREATE OR REPLACE FUNCTION epoch._merge_base(s_commit text, s_bid bigint, s_base bigint, tb epoch.branch,
        OUT branch_id bigint, OUT base_seq bigint, OUT point bigint, OUT commit_id text)
LANGUAGE plpgsql STABLE AS $f$
DECLARE
    fork bigint := CASE WHEN tb.id = 0 THEN s_base WHEN s_bid = 0 THEN tb.base_seq
                        ELSE least(s_base, tb.base_seq) END;
    lca epoch.commit;
BEGIN
    IF s_commit IS NOT NULL AND tb.head_commit IS NOT NULL THEN
        WITH RECURSIVE a(id) AS (
            SELECT tb.head_commit COLLATE "C"
            UNION SELECT p FROM a JOIN epoch.commit c ON c.id = a.id CROSS JOIN LATERAL unnest(c.parents) p
        ), b(id) AS (
            SELECT s_commit COLLATE "C"
            UNION SELECT p FROM b JOIN epoch.commit c ON c.id = b.id CROSS JOIN LATERAL unnest(c.parents) p
        )
        SELECT c.* INTO lca FROM epoch.commit c
         WHERE c.id IN (SELECT id FROM a) AND c.id IN (SELECT id FROM b)
         ORDER BY c.ord DESC LIMIT 1;
    END IF;
    IF lca.id IS NOT NULL AND (lca.branch_id <> 0 OR lca.point >= fork) THEN
        branch_id := lca.branch_id;
        base_seq := lca.base_seq;
        point := CASE WHEN lca.branch_id = 0 THEN NULL ELSE lca.point END;
        commit_id := lca.id;
    ELSE
        branch_id := 0;
        base_seq := fork;
    END IF;
END
$f$;

-- Plan the rows of pg_temp._epoch_mt (each key of a table: base, source
-- and target rows; only_again: those marked again) into pg_temp._epoch_mplan; record their
-- conflicts. A conflict is decided by, in order, a resolution recorded in
-- epoch.merge_conflict (a merge being continued), the strategy (ours,
-- theirs), else it stays unresolved: counted, and the first ten described
-- in samples.
CREATE OR REPLACE FUNCTION epoch._merge_plan(m epoch.merge_log, sync boolean, only_again boolean, OUT unresolved int, OUT samples text[])
LANGUAGE plpgsql AS $f$
DECLARE
    t epoch.tracked;
    rec record;
    cols text[];
    label text;
    r_how text;
    r_val text;
    kind text;
    n int;
    more text[];
BEGIN
    unresolved := 0;
    samples := '{}';
    -- the usual row, as a set: only the source changed it, take it
    INSERT INTO pg_temp._epoch_mplan
    SELECT x.table_id, x.pk, CASE WHEN sync THEN 'unshadow' WHEN x.s_found THEN 'put' ELSE 'delete' END,
           CASE WHEN x.s_found THEN x.s_v ELSE x.t_v END
      FROM pg_temp._epoch_mt x WHERE (x.again OR NOT only_again) AND epoch._same_row(x.t_found, x.t_v, x.b_found, x.b_v);
    -- rows both sides modified, as sets, field by field: the source's value
    -- where only it changed the field, the target's where only the target
    -- did or both made the same change; else a conflict, decided by its
    -- recorded resolution or the strategy, or left unresolved (recorded)
    FOR t IN SELECT x.* FROM epoch.tracked x
              WHERE x.id IN (SELECT y.table_id FROM pg_temp._epoch_mt y WHERE y.b_found AND y.s_found AND y.t_found)
              ORDER BY x.id LOOP
        cols := epoch._columns(t);
        label := epoch._table_label(t);
        PERFORM epoch._drop_temp('_epoch_mcell');
        CREATE TEMP TABLE _epoch_mcell ON COMMIT DROP AS
        SELECT e.*,
               -- how a clash is decided: its recorded resolution, else the strategy
               CASE WHEN e.clash THEN coalesce(r.resolution, CASE WHEN m.strategy IN ('ours', 'theirs') THEN m.strategy END)
               END AS how, r.value
          FROM (SELECT x.pk, c.i, c.col, x.t_v, x.b_v[c.i] AS b, x.s_v[c.i] AS s, x.t_v[c.i] AS tv,
                       (x.s_v[c.i] IS DISTINCT FROM x.b_v[c.i] AND x.t_v[c.i] IS DISTINCT FROM x.b_v[c.i]
                        AND x.t_v[c.i] IS DISTINCT FROM x.s_v[c.i]) AS clash
                  FROM pg_temp._epoch_mt x
                 CROSS JOIN LATERAL unnest(cols) WITH ORDINALITY AS c(col, i)
                 WHERE x.table_id = t.id AND (x.again OR NOT only_again) AND x.b_found AND x.s_found AND x.t_found
                   AND NOT epoch._same_row(x.t_found, x.t_v, x.b_found, x.b_v)
                   AND NOT epoch._same_row(x.t_found, x.t_v, x.s_found, x.s_v)) e
          LEFT JOIN epoch.merge_conflict r ON e.clash AND r.merge_id = m.id AND r.table_id = t.id AND r.pk = e.pk
                                          AND r.column_name = e.col AND r.resolved;
        INSERT INTO epoch.merge_conflict (merge_id, table_id, table_name, pk, column_name, kind, base_value, ours_value, theirs_value)
        SELECT m.id, t.id, label, e.pk, e.col, 'modify_modify', e.b, e.tv, e.s
          FROM pg_temp._epoch_mcell e WHERE e.clash AND e.how IS NULL
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n > 0 THEN
            SELECT array_agg(format('%s %s %s: modify_modify, base %s, ours %s, theirs %s', label, q.pk, q.col,
                                    coalesce(quote_literal(q.b), 'NULL'), coalesce(quote_literal(q.tv), 'NULL'),
                                    coalesce(quote_literal(q.s), 'NULL')))
              INTO more
              FROM (SELECT e.* FROM pg_temp._epoch_mcell e WHERE e.clash AND e.how IS NULL
                     ORDER BY e.pk, e.i LIMIT greatest(10 - unresolved, 0)) q;
            samples := samples || coalesce(more, '{}');
            unresolved := unresolved + n;
        END IF;
        -- the rows as merged (an unresolved field keeps the target's value)
        INSERT INTO pg_temp._epoch_mplan
        SELECT t.id, r.pk, 'put', r.nv
          FROM (SELECT e.pk, min(e.t_v) AS t_v,
                       array_agg(CASE WHEN NOT e.clash THEN
                                          CASE WHEN e.s IS NOT DISTINCT FROM e.b THEN e.tv
                                               WHEN e.tv IS NOT DISTINCT FROM e.b THEN e.s
                                               ELSE e.tv END
                                      WHEN e.how = 'ours' THEN e.tv WHEN e.how = 'theirs' THEN e.s
                                      WHEN e.how = 'base' THEN e.b
                                      WHEN e.how = 'value' THEN e.value
                                      ELSE e.tv END ORDER BY e.i) AS nv
                  FROM pg_temp._epoch_mcell e
                 GROUP BY e.pk) r
         WHERE r.nv IS DISTINCT FROM r.t_v;
    END LOOP;
    -- row-level conflicts, one by one: inserted on both sides, or deleted on
    -- one side and modified on the other
    t := NULL;
    FOR rec IN SELECT x.* FROM pg_temp._epoch_mt x
                WHERE (x.again OR NOT only_again) AND NOT (x.b_found AND x.s_found AND x.t_found)
                  AND NOT epoch._same_row(x.t_found, x.t_v, x.b_found, x.b_v)
                  AND NOT epoch._same_row(x.t_found, x.t_v, x.s_found, x.s_v)
                ORDER BY x.table_id, x.pk
    LOOP
        IF t.id IS DISTINCT FROM rec.table_id THEN
            SELECT * INTO t FROM epoch.tracked x WHERE x.id = rec.table_id;
            cols := epoch._columns(t);
            label := epoch._table_label(t);
        END IF;
        kind := CASE WHEN NOT rec.b_found THEN 'add_add' WHEN NOT rec.s_found THEN 'delete_modify' ELSE 'modify_delete' END;
        SELECT * INTO r_how, r_val FROM epoch._merge_resolution(m, t.id, rec.pk, NULL);
        IF r_how IS NULL THEN
            unresolved := unresolved + 1;
            samples := samples || CASE WHEN cardinality(samples) >= 10 THEN '{}'::text[] ELSE ARRAY[format('%s %s: %s', label, rec.pk, kind)] END;
            INSERT INTO epoch.merge_conflict (merge_id, table_id, table_name, pk, column_name, kind, base_value, ours_value, theirs_value)
            VALUES (m.id, t.id, label, rec.pk, NULL, kind,
                    CASE WHEN rec.b_found THEN epoch._row_json(cols, rec.b_v) END,
                    CASE WHEN rec.t_found THEN epoch._row_json(cols, rec.t_v) END,
                    CASE WHEN rec.s_found THEN epoch._row_json(cols, rec.s_v) END)
            ON CONFLICT DO NOTHING;
        ELSIF r_how = 'theirs' THEN
            INSERT INTO pg_temp._epoch_mplan VALUES (t.id, rec.pk, CASE WHEN rec.s_found THEN 'put' ELSE 'delete' END,
                                                     CASE WHEN rec.s_found THEN rec.s_v ELSE rec.t_v END);
        ELSIF r_how = 'base' THEN
            IF rec.b_found THEN
                INSERT INTO pg_temp._epoch_mplan VALUES (t.id, rec.pk, 'put', rec.b_v);
            ELSIF rec.t_found THEN
                INSERT INTO pg_temp._epoch_mplan VALUES (t.id, rec.pk, 'delete', rec.t_v);
            END IF;
        ELSIF r_how = 'value' THEN
            -- a row of the resolver's own (a JSON object of column texts;
            -- the key is the conflict's)
            INSERT INTO pg_temp._epoch_mplan
            VALUES (t.id, rec.pk, 'put', ARRAY(SELECT coalesce(rec.pk->>c, r_val::jsonb->>c) FROM unnest(cols) WITH ORDINALITY AS x(c, o) ORDER BY o));
        END IF;
    END LOOP;
END
$f$;

-- The keys of t that main changed after seq p (a merge's recheck under the
-- lock), with main's live row now: SQL of (pk, found, v).
CREATE OR REPLACE FUNCTION epoch._main_changed_since(t epoch.tracked, p bigint) RETURNS text
LANGUAGE plpgsql STABLE AS $f$
DECLARE
    pk text := (SELECT string_agg(format('_h.%I', c), ', ') FROM unnest(t.pk_columns) c);
    pkjson text := (SELECT 'jsonb_build_object(' || string_agg(format('%L, _k.%I', c, c), ', ') || ')'
                      FROM unnest(t.pk_columns) c);
BEGIN
    RETURN format('SELECT %s AS pk, _w.found, _w.v FROM (SELECT DISTINCT %s FROM epoch.%I _h WHERE _h._epoch_seq > %s) _k %s',
                  pkjson, pk, t.history_table, p, epoch._state_join(t, '_w', 0, NULL, NULL, '_k'));
END
$f$;

-- One merge, computed and (unless dry or conflicted) applied: m is its
-- record, with the source, base and target states filled in; s_now: the
-- source is a branch's working state committed in this transaction (its
-- writers wait), read as such. Returns the record as it ends.
--
-- Into main, writers of main wait only for the apply: the merge is
-- computed without a lock, from a point p0 up to which every change of
-- main is committed; then, holding the commit lock (no write of main in
-- flight), every key main changed after p0 is looked up again and planned
-- again: a row changed meanwhile is merged with, or conflicts, never
-- overwritten. Into a branch, its writers wait for the whole merge.
CREATE OR REPLACE FUNCTION epoch._merge_run(m epoch.merge_log, dry boolean, s_now boolean) RETURNS epoch.merge_log
LANGUAGE plpgsql SET jit = off AS $f$
DECLARE
    tb epoch.branch;
    t epoch.tracked;
    sync boolean;
    t_base bigint;
    s_point bigint := CASE WHEN s_now THEN NULL ELSE m.source_point END;
    p0 bigint;
    plan record;
    unresolved int;
    samples text[];
    n_tables int := 0;
    n_rows bigint := 0;
    n_again bigint := 0;
    held boolean := false;
    deferred boolean := false;
    rls_ids int[] := '{}';
    changed boolean := false;
    target_moved boolean := false;
BEGIN
    SELECT * INTO tb FROM epoch.branch WHERE id = m.target_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'branch "%" no longer exists', m.target USING ERRCODE = '42704';
    END IF;
    -- main into a branch: the branch's base moves to the merged point of
    -- main, so keys the branch left alone take main's rows by showing them
    sync := m.source_branch = 0 AND tb.id <> 0;
    t_base := CASE WHEN tb.id = 0 THEN NULL ELSE tb.base_seq END;
    DELETE FROM epoch.merge_conflict WHERE merge_id = m.id AND NOT resolved;
    IF NOT dry AND tb.id <> 0 THEN
        PERFORM pg_advisory_xact_lock(1162891075, 1);
    ELSIF NOT dry THEN
        p0 := epoch._main_point();
    END IF;
    -- each key the source changed since the base, with the target's row:
    -- O(the source's changes), each looked up by key
    PERFORM epoch._drop_temp('_epoch_mt');
    CREATE TEMP TABLE _epoch_mt (table_id int, pk jsonb, b_found boolean, b_v text[], s_found boolean, s_v text[],
                                 t_found boolean, t_v text[], again boolean) ON COMMIT DROP;
    PERFORM epoch._drop_temp('_epoch_mplan');
    CREATE TEMP TABLE _epoch_mplan (table_id int, pk jsonb, kind text, v text[]) ON COMMIT DROP;
    FOR t IN SELECT * FROM epoch.tracked ORDER BY schema_name, table_name LOOP
        EXECUTE format(
            'INSERT INTO pg_temp._epoch_mt SELECT %s, d.pk, d.a_v IS NOT NULL, d.a_v, d.b_v IS NOT NULL, d.b_v, _w.found, _w.v, false '
            'FROM (%s) d CROSS JOIN LATERAL (SELECT %s) _k %s',
            t.id,
            -- _commit_rows reads a branch's state now; a state at a point, _diff_rows
            CASE WHEN m.source_branch = 0 OR s_point IS NULL
                 THEN epoch._commit_rows(t, m.base_branch, m.base_seq, m.base_point, m.source_branch, m.source_base, s_point)
                 ELSE format('SELECT d.pk, CASE WHEN d.a_found THEN d.a_v END AS a_v, CASE WHEN d.b_found THEN d.b_v END AS b_v FROM (%s) d',
                             epoch._diff_rows(t, m.base_branch, m.base_seq, m.base_point, m.source_branch, m.source_base, s_point)) END,
            epoch._pk_of_json(t, 'd.pk'),
            epoch._state_join(t, '_w', tb.id, t_base, NULL, '_k'));
    END LOOP;
    -- the merge shows its rows: the role must read the tables whole; under
    -- row-level security, only a merge into main (applied as the role, so
    -- PostgreSQL applies the policies) and without conflicts there (they
    -- would show rows the policies hide)
    FOR t IN SELECT x.* FROM epoch.tracked x WHERE x.id IN (SELECT table_id FROM pg_temp._epoch_mt) LOOP
        PERFORM epoch._invoker_may_select(t.relid, true);
        IF epoch._rls_applies(t.relid, epoch._invoker()) THEN
            IF tb.id <> 0 THEN
                PERFORM epoch._invoker_may_read(t.relid, true);  -- raises 0A000
            END IF;
            rls_ids := rls_ids || t.id;
        END IF;
    END LOOP;
    changed := EXISTS (SELECT 1 FROM pg_temp._epoch_mt);
    SELECT * INTO plan FROM epoch._merge_plan(m, sync, false);
    unresolved := plan.unresolved;
    samples := plan.samples;
    IF NOT dry AND changed AND unresolved = 0 AND tb.id = 0 THEN
        -- main's changes since its last commit are committed first, so that
        -- the merge commit holds the merge alone: before the lock, then
        -- under it those made meanwhile (writers wait for the second only)
        PERFORM epoch._commit_on(tb, format('Auto-commit of "main" before merging "%s"', m.source), m.who, NULL, true);
        -- the apply: no write of main in flight from here until the merge's
        -- rows are written (a session lock, given back then or on an error;
        -- the merge commit is made after, at the point the apply reached)
        PERFORM pg_advisory_lock(1162891075, 0);
        held := true;
    END IF;
    BEGIN
    IF held THEN
        PERFORM epoch._commit_on(tb, format('Auto-commit of "main" before merging "%s"', m.source), m.who, NULL, true);
        FOR t IN SELECT x.* FROM epoch.tracked x WHERE x.id IN (SELECT table_id FROM pg_temp._epoch_mt) LOOP
            EXECUTE format('UPDATE pg_temp._epoch_mt x SET t_found = w.found, t_v = w.v, again = true FROM (%s) w '
                           'WHERE x.table_id = %s AND x.pk = w.pk AND NOT epoch._same_row(x.t_found, x.t_v, w.found, w.v)',
                           epoch._main_changed_since(t, p0), t.id);
            GET DIAGNOSTICS n_rows = ROW_COUNT;
            n_again := n_again + n_rows;
        END LOOP;
        IF n_again > 0 THEN
            RAISE DEBUG 'merge %: % row(s) of main changed during the merge, planned again', m.id, n_again;
            DELETE FROM pg_temp._epoch_mplan p USING pg_temp._epoch_mt x
             WHERE x.again AND p.table_id = x.table_id AND p.pk = x.pk;
            SELECT * INTO plan FROM epoch._merge_plan(m, sync, true);
            unresolved := plan.unresolved;
            samples := plan.samples;
        END IF;
    END IF;
    target_moved := EXISTS (SELECT 1 FROM pg_temp._epoch_mt x WHERE NOT epoch._same_row(x.t_found, x.t_v, x.b_found, x.b_v));
    unresolved := (SELECT count(*) FROM epoch.merge_conflict c WHERE c.merge_id = m.id AND NOT c.resolved);
    m.conflicts := unresolved;
    IF unresolved > 0 AND EXISTS (SELECT 1 FROM epoch.merge_conflict c
                                   WHERE c.merge_id = m.id AND NOT c.resolved AND c.table_id = ANY (rls_ids)) THEN
        RAISE EXCEPTION 'merging "%" into "%" conflicts on a table whose row-level security applies to role "%"',
            m.source, m.target, epoch._invoker() USING ERRCODE = '0A000',
            HINT = 'Nothing was merged or recorded (the conflicts would show rows the policies hide). Merge with strategy => ''ours'' or ''theirs'', or as a role the policies do not apply to.';
    END IF;
    IF unresolved > 0 AND m.strategy = 'fail' THEN
        -- the ERROR rolls the audit row back with the rest: the attempt goes to the server log
        RAISE LOG 'epoch: merge of "%" into "%" by "%" failed: % conflicts (strategy fail)', m.source, m.target, m.who, unresolved;
        RAISE EXCEPTION 'merging "%" into "%" conflicts (% conflict%); nothing was merged', m.source, m.target,
            unresolved, CASE WHEN unresolved = 1 THEN '' ELSE 's' END
            USING ERRCODE = '40001',
                  DETAIL = array_to_string(samples[1:10], E'\n') || CASE WHEN unresolved > 10 THEN format(E'\n… %s more', unresolved - 10) ELSE '' END,
                  HINT = 'Merge with strategy => ''three_way'' to resolve them one by one, or ''ours'' / ''theirs''.';
    END IF;
    SELECT count(DISTINCT table_id), count(*) INTO n_tables, n_rows FROM pg_temp._epoch_mplan;
    m.tables_merged := n_tables;
    m.rows_affected := n_rows;
    IF dry THEN
        m.status := 'dry_run';
    ELSIF NOT changed THEN
        m.status := 'up_to_date';
    ELSIF unresolved > 0 THEN
        m.status := 'conflicted';  -- nothing applied
        m.tables_merged := 0;
        m.rows_affected := 0;
    ELSE
        -- fast-forward: the target had not changed at all since the base
        IF NOT target_moved THEN
            target_moved := EXISTS (
                SELECT 1 FROM epoch.tracked x
                 WHERE epoch._has_rows(epoch._commit_rows(x, m.base_branch, m.base_seq, m.base_point, tb.id, t_base, NULL)));
        END IF;
        IF tb.id = 0 THEN
            -- into main: written by epoch._merge_land as the role itself,
            -- so its privileges and row-level security apply as to any
            -- write of its own; the commit lock stays held until then
            EXECUTE format('GRANT SELECT ON pg_temp._epoch_mplan TO %I', epoch._invoker());
            deferred := true;
        ELSE
            FOR t IN SELECT x.* FROM epoch.tracked x WHERE x.id IN (SELECT table_id FROM pg_temp._epoch_mplan) ORDER BY x.id LOOP
                PERFORM epoch._invoker_may_rewrite(t.relid);
            END LOOP;
            FOR t IN SELECT x.* FROM epoch.tracked x WHERE x.id IN (SELECT table_id FROM pg_temp._epoch_mplan) ORDER BY x.id LOOP
                PERFORM epoch._merge_apply(t, tb.id, m);
            END LOOP;
        END IF;
        IF sync THEN
            UPDATE epoch.branch SET base_seq = m.source_base WHERE id = tb.id;
        END IF;
        m.status := CASE WHEN target_moved OR sync THEN 'merged' ELSE 'fast_forward' END;
    END IF;
    IF held AND NOT deferred THEN
        PERFORM pg_advisory_unlock(1162891075, 0);
        held := false;
    END IF;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        IF held THEN
            PERFORM pg_advisory_unlock(1162891075, 0);
        END IF;
        RAISE;
    END;
    IF deferred THEN
        -- epoch._merge_land applies, then epoch._merge_finish commits
        UPDATE epoch.merge_log SET status = 'applying ' || m.status, conflicts = m.conflicts,
                                   tables_merged = m.tables_merged, rows_affected = m.rows_affected WHERE id = m.id;
        m.status := 'applying';
        RETURN m;
    END IF;
    IF m.status = 'fast_forward' AND tb.id <> 0 AND m.source_commit IS NOT NULL THEN
        -- the target's state is now the source's: its head moves there
        UPDATE epoch.branch SET head_commit = m.source_commit WHERE id = tb.id;
        m.commit_id := m.source_commit;
    ELSIF m.status IN ('merged', 'fast_forward') THEN
        SELECT * INTO tb FROM epoch.branch WHERE id = tb.id;
        m.commit_id := epoch._commit_on(tb, coalesce(m.message, format('Merge %s into %s', m.source, m.target)),
                                        m.who, m.source_commit);
    END IF;
    RETURN epoch._merge_close(m, dry);
END
$f$;

-- The end of a merge: its record, its audit row, its temporary tables.
CREATE OR REPLACE FUNCTION epoch._merge_close(m epoch.merge_log, dry boolean) RETURNS epoch.merge_log
LANGUAGE plpgsql AS $f$
BEGIN
    IF m.status <> 'conflicted' THEN
        m.finished_at := clock_timestamp();
    END IF;
    PERFORM epoch._audit(CASE WHEN dry THEN 'merge_dry_run' ELSE 'merge' END, m.target,
                         jsonb_build_object('merge_id', m.id, 'source', m.source, 'strategy', m.strategy, 'status', m.status,
                                            'conflicts', m.conflicts, 'rows_affected', m.rows_affected, 'commit', m.commit_id));
    UPDATE epoch.merge_log SET status = m.status, conflicts = m.conflicts, tables_merged = m.tables_merged,
                               rows_affected = m.rows_affected, commit_id = m.commit_id, finished_at = m.finished_at
     WHERE id = m.id;
    PERFORM epoch._drop_temp('_epoch_mplan');
    PERFORM epoch._drop_temp('_epoch_mt');
    RETURN m;
END
$f$;

-- Does query q return a row? (q: SQL text, e.g. of _diff_rows)
CREATE OR REPLACE FUNCTION epoch._has_rows(q text) RETURNS boolean LANGUAGE plpgsql AS $f$
DECLARE
    found_one boolean;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM (%s) d)', q) INTO found_one;
    RETURN found_one;
END
$f$;

-- Are two versions of a row the same (both absent, or equal columns)?
CREATE OR REPLACE FUNCTION epoch._same_row(a_found boolean, a_v text[], b_found boolean, b_v text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $f$
    SELECT a_found = b_found AND (NOT a_found OR a_v IS NOT DISTINCT FROM b_v);
$f$;

-- How the conflict of merge m on (table_id, pk, column; NULL: the row) is
-- decided: its recorded resolution, else the strategy's side, else none.
CREATE OR REPLACE FUNCTION epoch._merge_resolution(m epoch.merge_log, table_id int, pk jsonb, col text,
        OUT how text, OUT value text) LANGUAGE plpgsql STABLE AS $f$
BEGIN
    SELECT c.resolution, c.value INTO how, value FROM epoch.merge_conflict c
     WHERE c.merge_id = m.id AND c.table_id = _merge_resolution.table_id AND c.pk = _merge_resolution.pk
       AND c.column_name IS NOT DISTINCT FROM col AND c.resolved;
    IF how IS NULL AND m.strategy IN ('ours', 'theirs') THEN
        how := m.strategy;
    END IF;
END
$f$;

-- A row's columns as a jsonb object of their text (a row-level conflict's values).
CREATE OR REPLACE FUNCTION epoch._row_json(cols text[], v text[]) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
    SELECT jsonb_object_agg(c, v[i])::text FROM unnest(cols) WITH ORDINALITY AS x(c, i);
$f$;

-- Write merge m's planned rows of table t (pg_temp._epoch_mplan) to branch
-- bid (0: main's live table, as any write there, so the capture records it;
-- as the caller: epoch._merge_land calls it as the merging role). A
-- constraint's violation names the merge and the table.
CREATE OR REPLACE FUNCTION epoch._merge_apply(t epoch.tracked, bid bigint, m epoch.merge_log) RETURNS void
LANGUAGE plpgsql AS $f$
DECLARE
    src text := format('(SELECT p.kind, p.v FROM pg_temp._epoch_mplan p WHERE p.table_id = %s AND p.kind <> ''unshadow'')', t.id);
    was text := current_setting('epoch.branch', true);
    e_msg text;
    e_det text;
BEGIN
    -- main's capture refuses writes from a branch session (a function
    -- that writes main by mistake); the merge writes main on purpose
    PERFORM set_config('epoch.branch', 'main', true);
    BEGIN
        PERFORM epoch._apply_rows(t, bid, src);
    EXCEPTION WHEN integrity_constraint_violation OR check_violation OR not_null_violation
                   OR foreign_key_violation OR unique_violation OR exclusion_violation THEN
        GET STACKED DIAGNOSTICS e_msg = MESSAGE_TEXT, e_det = PG_EXCEPTION_DETAIL;
        RAISE EXCEPTION '%', e_msg USING ERRCODE = SQLSTATE,
            DETAIL = concat_ws(E'\n', nullif(e_det, ''),
                               format('While merging "%s" into "%s": a row of %s that the merge writes.', m.source, m.target, epoch._table_label(t))),
            HINT = 'Nothing was merged. Change that row on the source branch (or on the target) and merge again.';
    END;
    PERFORM set_config('epoch.branch', coalesce(was, ''), true);
    IF bid <> 0 THEN
        -- a sync: the branch's own row of a key it left alone goes, main's shows
        EXECUTE format('DELETE FROM epoch.%I d USING (SELECT %s FROM pg_temp._epoch_mplan r WHERE r.table_id = %s AND r.kind = ''unshadow'') '
                       'AS k(%s) WHERE d._epoch_branch = $1 AND (%s) = (%s)',
                       t.delta_table, epoch._typed_values(t, 'r.v'), t.id,
                       array_to_string(epoch._writable_columns(t), ', '),
                       (SELECT string_agg(format('d.%I', c), ', ') FROM unnest(t.pk_columns) c),
                       (SELECT string_agg(format('k.%I', c), ', ') FROM unnest(t.pk_columns) c))
            USING bid;
    END IF;
END
$f$;

-- What merge, sync and merge_continue answer.
CREATE OR REPLACE FUNCTION epoch._merge_result(m epoch.merge_log) RETURNS epoch.merge_result LANGUAGE sql IMMUTABLE AS $f$
    SELECT m.id, m.status, m.tables_merged, m.rows_affected, m.conflicts, (m.commit_id COLLATE "default")::text;
$f$;

-- Merge source (any ref: a branch's working state is committed first) into
-- branch "into" (default: the session's branch). See docs/merge.md. Runs as
-- its caller: the merge is computed by epoch._merge_start (as the schema's
-- owner) and, into main, written by epoch._merge_land as the caller.
CREATE OR REPLACE FUNCTION epoch.merge(source text, "into" text DEFAULT NULL, strategy text DEFAULT 'three_way',
                                       message text DEFAULT NULL, dry_run boolean DEFAULT false)
RETURNS epoch.merge_result
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
    RETURN epoch._merge_result(epoch._merge_land(epoch._merge_start(source, "into", strategy, message, dry_run)));
END
$f$;

CREATE OR REPLACE FUNCTION epoch._merge_start(source text, "into" text, strategy text, message text, dry_run boolean)
RETURNS epoch.merge_log
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $f$
DECLARE
    strat text := epoch._merge_strategy(strategy);
    tb epoch.branch;
    sb epoch.branch;
    r record;
    s_commit text;
    c epoch.commit;
    base record;
    m epoch.merge_log;
    who text := epoch._invoker();
BEGIN
    PERFORM epoch._refuse_as_of('epoch.merge');
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'epoch.merge() needs READ COMMITTED isolation, this transaction is %',
            upper(current_setting('transaction_isolation'))
            USING ERRCODE = '0A000', HINT = 'Merge outside the transaction, or in one started with BEGIN ISOLATION LEVEL READ COMMITTED.';
    END IF;
    IF dry_run IS NULL THEN
        RAISE EXCEPTION 'dry_run cannot be NULL' USING ERRCODE = '22004';
    END IF;
    tb := CASE WHEN "into" IS NULL THEN epoch._session_branch() ELSE epoch._branch("into") END;
    IF message IS NOT NULL AND btrim(message) = '' THEN
        RAISE EXCEPTION 'a merge message cannot be empty' USING ERRCODE = '22023',
            HINT = 'Leave it out for the default, "Merge <source> into <target>".';
    END IF;
    IF EXISTS (SELECT 1 FROM epoch.merge_log x WHERE x.target_id = tb.id AND x.status = 'conflicted') THEN
        RAISE EXCEPTION 'branch "%" has a conflicted merge in progress (merge %)', tb.name,
            (SELECT max(x.id) FROM epoch.merge_log x WHERE x.target_id = tb.id AND x.status = 'conflicted')
            USING ERRCODE = '55000',
                  HINT = 'Resolve it (epoch.resolve, epoch.resolve_all) and run epoch.merge_continue(merge_id), or epoch.merge_abort(merge_id).';
    END IF;
    SELECT * INTO r FROM epoch._resolve(source);
    IF r.working THEN
        -- a branch's working state: its uncommitted changes are committed
        -- first (a dry run commits nothing and reads the working state)
        SELECT * INTO sb FROM epoch.branch x WHERE x.id = r.branch_id;
        IF sb.id = tb.id THEN
            RAISE EXCEPTION 'cannot merge branch "%" into itself', tb.name USING ERRCODE = '22023';
        END IF;
        IF dry_run THEN
            s_commit := sb.head_commit;
            r.base_seq := CASE WHEN sb.id = 0 THEN coalesce(pg_sequence_last_value('epoch.change_seq'), 0) ELSE sb.base_seq END;
            r.point := NULL;
        ELSE
            s_commit := epoch._commit_on(sb, format('Auto-commit of "%s" before merging into "%s"', sb.name, tb.name), who, NULL, true);
        END IF;
    ELSE
        s_commit := r.commit_id;
    END IF;
    c := epoch._commit_row(s_commit);
    IF c.id IS NOT NULL AND NOT (r.working AND dry_run) THEN
        r.branch_id := c.branch_id;
        r.base_seq := c.base_seq;
        r.point := CASE WHEN c.branch_id = 0 THEN NULL ELSE c.point END;
    END IF;
    IF r.branch_id = tb.id THEN
        RAISE EXCEPTION 'cannot merge "%" into its own branch "%"', source, tb.name USING ERRCODE = '22023',
            HINT = 'To go back to a commit of this branch, use epoch.reset; to undo one, epoch.revert.';
    END IF;
    -- a branch with uncommitted changes takes no merge (as git)
    IF tb.id <> 0 THEN
        SELECT * INTO base FROM epoch._sealed(tb);
        IF EXISTS (SELECT 1 FROM epoch.tracked x
                    WHERE epoch._has_rows(epoch._commit_rows(x, base.branch_id, base.base_seq, base.point,
                                                             tb.id, tb.base_seq, NULL))) THEN
            RAISE EXCEPTION 'branch "%" has uncommitted changes', tb.name USING ERRCODE = '55000',
                HINT = format('Commit them first (SELECT epoch.commit(''…'') on branch "%s"), then merge.', tb.name);
        END IF;
    END IF;
    SELECT * INTO base FROM epoch._merge_base(c.id, r.branch_id, r.base_seq, tb);
    INSERT INTO epoch.merge_log (source, source_commit, source_branch, source_base, source_point, target_id, target,
                                 base_branch, base_seq, base_point, base_commit, strategy, status, message, who)
    VALUES (source, c.id, r.branch_id, r.base_seq, r.point, tb.id, tb.name,
            base.branch_id, base.base_seq, base.point, base.commit_id, strat, 'running', message, who)
    RETURNING * INTO m;
    RETURN epoch._merge_run(m, dry_run, r.working AND NOT dry_run);
END
$f$;

-- The rest of merge m into main, computed by _merge_run and left under the
-- commit lock (status 'applying'): its rows are written here, as the
-- caller, so that PostgreSQL checks the caller's privileges and row-level
-- security as for any write of its own (a row a policy hides: 42501), then
-- the lock is given back and epoch._merge_finish commits. Other merges: as
-- they are.
CREATE OR REPLACE FUNCTION epoch._merge_land(m epoch.merge_log) RETURNS epoch.merge_log
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    t epoch.tracked;
    p_m bigint;
BEGIN
    IF m.status IS DISTINCT FROM 'applying' THEN
        RETURN m;
    END IF;
    BEGIN
        FOR t IN SELECT x.* FROM epoch.tracked x WHERE x.id IN (SELECT table_id FROM pg_temp._epoch_mplan) ORDER BY x.id LOOP
            PERFORM epoch._merge_apply(t, 0, m);
        END LOOP;
        p_m := coalesce(pg_sequence_last_value('epoch.change_seq'), 0);
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM pg_advisory_unlock(1162891075, 0);
        RAISE;
    END;
    PERFORM pg_advisory_unlock(1162891075, 0);
    RETURN epoch._merge_finish(m.id, p_m);
END
$f$;

-- Merge merge_id into main, written: its commit, at point p (the one the
-- apply reached), and its record. Only the merge's own role, on a merge
-- left 'applying <status>' by _merge_run.
CREATE OR REPLACE FUNCTION epoch._merge_finish(merge_id bigint, p bigint) RETURNS epoch.merge_log
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $f$
DECLARE
    m epoch.merge_log := epoch._merge_own(_merge_finish.merge_id, 'finish it',
                                          ARRAY['applying merged', 'applying fast_forward']);
    tb epoch.branch;
BEGIN
    m.status := substr(m.status, length('applying ') + 1);
    SELECT * INTO tb FROM epoch.branch WHERE id = 0;
    m.commit_id := epoch._commit_on(tb, coalesce(m.message, format('Merge %s into %s', m.source, m.target)),
                                    m.who, m.source_commit, false, p);
    RETURN epoch._merge_close(m, false);
END
$f$;

-- Merge main's changes since branch's base into it (default: the session's
-- branch); the branch's base becomes main's head.
CREATE OR REPLACE FUNCTION epoch.sync(branch text DEFAULT NULL, strategy text DEFAULT 'three_way', dry_run boolean DEFAULT false)
RETURNS epoch.merge_result
LANGUAGE sql AS $f$
    SELECT epoch.merge('main', coalesce(branch, nullif(current_setting('epoch.branch', true), ''), 'main'),
                              strategy, NULL, dry_run);
$f$;

-- A merge that the invoker may act on (its author or an admin).
CREATE OR REPLACE FUNCTION epoch._merge_own(merge_id bigint, what text, statuses text[]) RETURNS epoch.merge_log
LANGUAGE plpgsql AS $f$
DECLARE
    m epoch.merge_log;
BEGIN
    SELECT * INTO m FROM epoch.merge_log x WHERE x.id = merge_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'merge % does not exist', merge_id USING ERRCODE = '42704',
            HINT = 'List them: SELECT * FROM epoch.merges.';
    END IF;
    IF m.who <> epoch._invoker() AND NOT epoch._is_admin(epoch._invoker()) THEN
        RAISE EXCEPTION 'only role "%" (who started merge %) or an admin may %', m.who, merge_id, what
            USING ERRCODE = '42501', HINT = epoch._admin_hint();
    END IF;
    IF m.status <> ALL (statuses) THEN
        RAISE EXCEPTION 'merge % is %, not %', merge_id, m.status, array_to_string(statuses, ' or ')
            USING ERRCODE = '55000';
    END IF;
    RETURN m;
END
$f$;

-- Resolve one conflict of a conflicted merge: with a side's value (ours,
-- theirs, base) or, for a field, a value of your own. Returns how many of the
-- merge's conflicts are left unresolved.
CREATE OR REPLACE FUNCTION epoch.resolve(merge_id bigint, "table" regclass, pk jsonb, "column" text DEFAULT NULL,
                                         value text DEFAULT NULL, side text DEFAULT NULL) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    m epoch.merge_log := epoch._merge_own(merge_id, 'resolve its conflicts', ARRAY['conflicted']);
    t epoch.tracked := epoch._tracked("table");
    how text := lower(btrim(side));
    n int;
BEGIN
    IF (side IS NULL) = (value IS NULL) THEN
        RAISE EXCEPTION 'resolve needs exactly one of value => … and side => ''ours'' | ''theirs'' | ''base''' USING ERRCODE = '22023';
    END IF;
    IF side IS NOT NULL AND how NOT IN ('ours', 'theirs', 'base') THEN
        RAISE EXCEPTION 'unknown side "%"', side USING ERRCODE = '22023', HINT = 'Use ours (the target), theirs (the source) or base.';
    END IF;
    IF value IS NOT NULL AND "column" IS NULL THEN
        -- a row-level conflict: the row, as a JSON object of its columns
        IF value !~ '^\s*\{' OR jsonb_typeof(value::jsonb) <> 'object' THEN
            RAISE EXCEPTION 'a row-level conflict is resolved with a side or with a row: value => ''{"column": "text", …}'''
                USING ERRCODE = '22023';
        END IF;
        IF EXISTS (SELECT 1 FROM jsonb_object_keys(value::jsonb) k WHERE k <> ALL (epoch._columns(t))) THEN
            RAISE EXCEPTION 'value names columns that % does not have: %', epoch._table_label(t),
                (SELECT string_agg(k, ', ') FROM jsonb_object_keys(value::jsonb) k WHERE k <> ALL (epoch._columns(t)))
                USING ERRCODE = '42703';
        END IF;
    END IF;
    IF "column" IS NOT NULL AND "column" <> ALL (epoch._columns(t)) THEN
        RAISE EXCEPTION 'column "%" of % does not exist', "column", epoch._table_label(t) USING ERRCODE = '42703';
    END IF;
    UPDATE epoch.merge_conflict c SET resolved = true, resolution = coalesce(how, 'value'), value = resolve.value
     WHERE c.merge_id = m.id AND c.table_id = t.id AND c.pk = resolve.pk AND c.column_name IS NOT DISTINCT FROM "column";
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'merge % has no conflict on % % %', merge_id, epoch._table_label(t), pk, coalesce("column", '(row)')
            USING ERRCODE = '42704', HINT = 'List them: SELECT * FROM epoch.conflicts WHERE merge_id = ' || merge_id || '.';
    END IF;
    PERFORM epoch._audit('merge_resolve', m.target, jsonb_build_object('merge_id', m.id, 'table', epoch._table_label(t), 'pk', pk,
                                                                     'column', "column", 'resolution', coalesce(how, 'value'), 'value', value));
    RETURN (SELECT count(*) FROM epoch.merge_conflict c WHERE c.merge_id = m.id AND NOT c.resolved);
END
$f$;

-- Resolve every unresolved conflict of a merge (of one table) with a side.
-- Returns, as epoch.resolve does, how many of the merge's conflicts are left.
CREATE OR REPLACE FUNCTION epoch.resolve_all(merge_id bigint, "table" regclass DEFAULT NULL, side text DEFAULT NULL) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    m epoch.merge_log := epoch._merge_own(merge_id, 'resolve its conflicts', ARRAY['conflicted']);
    how text := lower(btrim(side));
    n int;
BEGIN
    IF how IS NULL OR how NOT IN ('ours', 'theirs', 'base') THEN
        RAISE EXCEPTION 'resolve_all needs side => ''ours'' | ''theirs'' | ''base''' USING ERRCODE = '22023';
    END IF;
    UPDATE epoch.merge_conflict c SET resolved = true, resolution = how, value = NULL
     WHERE c.merge_id = m.id AND NOT c.resolved AND ("table" IS NULL OR c.table_id = (epoch._tracked("table")).id);
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM epoch._audit('merge_resolve', m.target, jsonb_build_object('merge_id', m.id, 'table', "table"::text, 'resolution', how, 'conflicts', n));
    RETURN (SELECT count(*) FROM epoch.merge_conflict c WHERE c.merge_id = m.id AND NOT c.resolved);
END
$f$;

-- Apply a conflicted merge once its conflicts are resolved. The merge is
-- computed again against the target as it is now: a row newly in conflict
-- is reported (the merge stays conflicted), never overwritten.
CREATE OR REPLACE FUNCTION epoch.merge_continue(merge_id bigint, message text DEFAULT NULL)
RETURNS epoch.merge_result
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
    RETURN epoch._merge_result(epoch._merge_land(epoch._merge_continue_start(merge_id, message)));
END
$f$;

CREATE OR REPLACE FUNCTION epoch._merge_continue_start(merge_id bigint, message text) RETURNS epoch.merge_log
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $f$
DECLARE
    m epoch.merge_log := epoch._merge_own(_merge_continue_start.merge_id, 'continue it', ARRAY['conflicted']);
    left_ int := (SELECT count(*) FROM epoch.merge_conflict c WHERE c.merge_id = m.id AND NOT c.resolved);
BEGIN
    PERFORM epoch._refuse_as_of('epoch.merge_continue');
    IF left_ > 0 THEN
        RAISE EXCEPTION 'merge % has % unresolved conflict%', m.id, left_, CASE WHEN left_ = 1 THEN '' ELSE 's' END
            USING ERRCODE = '55000',
                  HINT = format('See SELECT * FROM epoch.conflicts WHERE merge_id = %s AND NOT resolved; resolve them with epoch.resolve or epoch.resolve_all.', m.id);
    END IF;
    IF message IS NOT NULL THEN
        m.message := message;
        UPDATE epoch.merge_log x SET message = m.message WHERE x.id = m.id;
    END IF;
    RETURN epoch._merge_run(m, false, false);
END
$f$;

-- Give up a conflicted merge (nothing of it was applied).
CREATE OR REPLACE FUNCTION epoch.merge_abort(merge_id bigint) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    m epoch.merge_log := epoch._merge_own(merge_id, 'abort it', ARRAY['conflicted']);
BEGIN
    UPDATE epoch.merge_log x SET status = 'aborted', finished_at = clock_timestamp() WHERE x.id = m.id;
    PERFORM epoch._audit('merge_abort', m.target, jsonb_build_object('merge_id', m.id, 'source', m.source));
    RETURN 'aborted';
END
$f$;

-- The merges, newest first; the conflicts of the tables the role may read.
CREATE OR REPLACE VIEW epoch.merges AS
SELECT m.id AS merge_id, m.source, m.target,
       coalesce(left(m.base_commit, 12), format('main@%s', m.base_seq)) COLLATE "default" AS base,
       m.strategy, m.status, m.who, m.started_at, m.finished_at, m.rows_affected, m.conflicts,
       (m.commit_id COLLATE "default")::text AS commit, m.message
  FROM epoch.merge_log m
 ORDER BY m.id DESC;

CREATE OR REPLACE VIEW epoch.conflicts AS
SELECT c.merge_id, c.table_name, c.pk, c.column_name, c.kind, c.base_value, c.ours_value, c.theirs_value,
       c.resolved, c.resolution, c.value
  FROM epoch.merge_conflict c JOIN epoch.tracked t ON t.id = c.table_id
 WHERE pg_catalog.has_table_privilege(t.relid, 'SELECT')
 ORDER BY c.merge_id, c.table_name, c.pk::text, c.column_name NULLS FIRST;

GRANT SELECT ON epoch.merges, epoch.conflicts TO PUBLIC;
