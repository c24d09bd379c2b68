-- functions/revert.sql: a new commit that undoes one commit (docs/history.md).
--
-- Repeatable: the current definition of each function, exactly one each. The
-- migration DO block (src/branch/migrate.c) re-applies every file of
-- functions/ whole, after the numbered schema steps, whenever their hash differs
-- from the one stored in epoch.meta ('functions_hash'). Edit in place; a change of
-- signature or of a view's columns also needs a DROP in a new schema/NNN_*.sql.

-- The writable columns of t (no generated column) as SQL expressions typed
-- from the text[] expression arr, which holds every column in order.
CREATE OR REPLACE FUNCTION epoch._typed_values(t epoch.tracked, arr text) RETURNS text LANGUAGE sql STABLE AS $f$
    SELECT string_agg(format('(%s[%s])::%s', arr, a.i, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.i)
      FROM (SELECT row_number() OVER (ORDER BY attnum) AS i, atttypid, atttypmod, attgenerated
              FROM pg_attribute WHERE attrelid = t.relid AND attnum > 0 AND NOT attisdropped) a
     WHERE a.attgenerated = '';
$f$;

-- The select list that turns the jsonb key pk (an expression, as diff's pk)
-- into t's key columns, typed and named as in t.
CREATE OR REPLACE FUNCTION epoch._pk_of_json(t epoch.tracked, pk text) RETURNS text LANGUAGE sql STABLE AS $f$
    SELECT string_agg(format('(%s->>%L)::%s AS %I', pk, k, format_type(a.atttypid, a.atttypmod), k), ', ')
      FROM unnest(t.pk_columns) k JOIN pg_attribute a ON a.attrelid = t.relid AND a.attname = k;
$f$;

-- Write the rows of relation src (columns kind and v: 'put' the row v,
-- 'delete' the key of v; v holds every column as text) to branch bid (0:
-- main's live table, written like any write there). Revert and merge.
DROP FUNCTION IF EXISTS epoch._revert_apply(epoch.tracked, bigint);
CREATE OR REPLACE FUNCTION epoch._apply_rows(t epoch.tracked, bid bigint, src text) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
    cols text := array_to_string(epoch._writable_columns(t), ', ');
    vals text := epoch._typed_values(t, 'r.v');
    pk text := (SELECT string_agg(quote_ident(c), ', ') FROM unnest(t.pk_columns) c);
    sets text;
    n bigint;
    wanted bigint;
BEGIN
    sets := (SELECT string_agg(format('%1$I = EXCLUDED.%1$I', a.attname), ', ' ORDER BY a.attnum)
               FROM pg_attribute a
              WHERE a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                AND (bid <> 0 OR a.attidentity <> 'a') AND a.attname <> ALL (t.pk_columns));
    IF bid = 0 THEN
        EXECUTE format('DELETE FROM %I.%I m USING (SELECT %s FROM %s r WHERE r.kind = ''delete'') AS k(%s) '
                       'WHERE (%s) = (%s)', t.schema_name, t.table_name, vals, src, cols,
                       (SELECT string_agg(format('m.%I', c), ', ') FROM unnest(t.pk_columns) c),
                       (SELECT string_agg(format('k.%I', c), ', ') FROM unnest(t.pk_columns) c));
        GET DIAGNOSTICS n = ROW_COUNT;
        -- written as the caller (a merge into main): a row its policies
        -- hide from DELETE is not deleted, silently; say so instead
        EXECUTE format('SELECT count(*) FROM %s r WHERE r.kind = ''delete''', src) INTO wanted;
        IF n < wanted THEN
            RAISE EXCEPTION 'permission denied to delete % of the rows of table % the merge deletes', wanted - n, t.table_name
                USING ERRCODE = '42501', HINT = 'Row-level security hides them from the role (its DELETE policies).';
        END IF;
        EXECUTE format('INSERT INTO %I.%I (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s r '
                       'WHERE r.kind = ''put'' ON CONFLICT (%s) DO %s',
                       t.schema_name, t.table_name, cols, vals, src, pk,
                       CASE WHEN sets IS NULL THEN 'NOTHING' ELSE 'UPDATE SET ' || sets END);
    ELSE
        -- a branch row, or a tombstone carrying the row it hides
        EXECUTE format('INSERT INTO epoch.%I (_epoch_branch, %s, _epoch_deleted) SELECT $1, %s, r.kind = ''delete'' '
                       'FROM %s r ON CONFLICT (_epoch_branch, %s) DO UPDATE SET %s_epoch_deleted = EXCLUDED._epoch_deleted',
                       t.delta_table, cols, vals, src, pk, coalesce(sets || ', ', ''))
            USING bid;
    END IF;
END
$f$;

-- Undo one commit on the session's branch with a new commit. Each field the
-- commit changed goes back to its parent's value where it still holds the
-- commit's value; where a later change touched it, nothing is applied and
-- the error lists the fields. Returns the new commit's id.
CREATE OR REPLACE FUNCTION epoch.revert(ref text) RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $f$
DECLARE
    br epoch.branch := epoch._session_branch();
    r record;
    c epoch.commit;
    p epoch.commit;
    t epoch.tracked;
    rec record;
    cols text[];
    nv text[];
    conflicts text[] := '{}';
    label text;
    pc record;
BEGIN
    PERFORM epoch._refuse_as_of('epoch.revert');
    SELECT * INTO r FROM epoch._resolve(ref);
    IF r.commit_id IS NULL THEN
        RAISE EXCEPTION 'ref "%" names no commit to revert', ref USING ERRCODE = '42704';
    END IF;
    c := epoch._commit_row(r.commit_id);
    IF cardinality(c.parents) = 0 THEN
        RAISE EXCEPTION 'commit % is a root commit: there is nothing before it to go back to', left(c.id, 12)
            USING ERRCODE = '22023', HINT = 'To go back to a state, use epoch.reset.';
    END IF;
    p := epoch._commit_row(c.parents[1]);
    SELECT * INTO pc FROM (SELECT p.branch_id AS bid, p.base_seq AS base,
                                  CASE WHEN p.branch_id = 0 THEN NULL ELSE p.point END AS pt) x;
    FOR t IN SELECT * FROM epoch.tracked ORDER BY schema_name, table_name LOOP
        cols := epoch._columns(t);
        label := epoch._table_label(t);
        PERFORM epoch._drop_temp('_epoch_revert');
        CREATE TEMP TABLE _epoch_revert (kind text, v text[]) ON COMMIT DROP;
        FOR rec IN EXECUTE format(
            'SELECT d.pk, d.a_found AS p_found, d.a_v AS p_v, d.b_found AS c_found, d.b_v AS c_v, _w.found AS w_found, _w.v AS w_v '
            'FROM (%s) d CROSS JOIN LATERAL (SELECT %s) _k %s',
            epoch._diff_rows(t, pc.bid, pc.base, pc.pt, c.branch_id, c.base_seq,
                             CASE WHEN c.branch_id = 0 THEN NULL ELSE c.point END),
            epoch._pk_of_json(t, 'd.pk'),
            epoch._state_join(t, '_w', br.id, CASE WHEN br.id = 0 THEN NULL ELSE br.base_seq END, NULL, '_k'))
        LOOP
            IF NOT rec.p_found THEN                      -- the commit inserted the row
                IF NOT rec.w_found THEN
                    CONTINUE;
                ELSIF rec.w_v IS DISTINCT FROM rec.c_v THEN
                    conflicts := conflicts || (SELECT array_agg(format('%s %s %s: the commit inserted %L, now %L', label, rec.pk, cols[i], rec.c_v[i], rec.w_v[i]))
                                                 FROM generate_subscripts(cols, 1) i WHERE rec.w_v[i] IS DISTINCT FROM rec.c_v[i]);
                ELSE
                    INSERT INTO _epoch_revert VALUES ('delete', rec.w_v);
                END IF;
            ELSIF NOT rec.c_found THEN                   -- the commit deleted the row
                IF NOT rec.w_found THEN
                    INSERT INTO _epoch_revert VALUES ('put', rec.p_v);
                ELSIF rec.w_v IS DISTINCT FROM rec.p_v THEN
                    conflicts := conflicts || format('%s %s: the commit deleted the row, it was inserted again since', label, rec.pk);
                END IF;
            ELSIF NOT rec.w_found THEN                   -- updated by the commit, deleted since
                conflicts := conflicts || format('%s %s: the commit updated the row, it was deleted since', label, rec.pk);
            ELSE
                nv := rec.w_v;
                FOR i IN 1 .. cardinality(cols) LOOP
                    CONTINUE WHEN rec.c_v[i] IS NOT DISTINCT FROM rec.p_v[i];
                    IF rec.w_v[i] IS NOT DISTINCT FROM rec.c_v[i] THEN
                        nv[i] := rec.p_v[i];
                    ELSIF rec.w_v[i] IS DISTINCT FROM rec.p_v[i] THEN
                        conflicts := conflicts || format('%s %s %s: the commit set %L, now %L', label, rec.pk, cols[i], rec.c_v[i], rec.w_v[i]);
                    END IF;
                END LOOP;
                IF nv IS DISTINCT FROM rec.w_v THEN
                    INSERT INTO _epoch_revert VALUES ('put', nv);
                END IF;
            END IF;
        END LOOP;
        IF cardinality(conflicts) = 0 THEN
            -- the tables it writes: as if the role wrote them
            IF EXISTS (SELECT 1 FROM pg_temp._epoch_revert) THEN
                PERFORM epoch._invoker_may_rewrite(t.relid);
            END IF;
            PERFORM epoch._apply_rows(t, br.id, 'pg_temp._epoch_revert');
        END IF;
        DROP TABLE pg_temp._epoch_revert;
    END LOOP;
    IF cardinality(conflicts) > 0 THEN
        RAISE EXCEPTION 'reverting commit % conflicts with later changes on branch "%"', left(c.id, 12), br.name
            USING ERRCODE = '55000',
                  DETAIL = array_to_string(conflicts[1:20], E'\n') || CASE WHEN cardinality(conflicts) > 20 THEN format(E'\n… %s more', cardinality(conflicts) - 20) ELSE '' END,
                  HINT = 'Nothing was applied. Change those fields by hand, or reset the branch.';
    END IF;
    PERFORM epoch._audit('revert', br.name, jsonb_build_object('reverted', c.id));
    RETURN epoch.commit(format(E'Revert "%s"\n\nThis reverts commit %s.', c.message, c.id));
END
$f$;
