-- functions/history.sql: refs, commits, tags, diff and status (docs/history.md).
--
-- Repeatable: the current definition of each function, exactly one each. The
-- migration DO block (src/branch/migrate.c) re-applies every file of
-- functions/ whole, after the numbered schema steps, whenever their hash differs
-- from the one stored in epoch.meta ('functions_hash'). Edit in place; a change of
-- signature or of a view's columns also needs a DROP in a new schema/NNN_*.sql.
--
-- A state of a tracked table is (branch_id, base_seq, point):
--   main's rows as of base_seq (NULL: the live table), overlaid by the rows
--   branch_id held at point (NULL: its working rows, d_<id>; branch 0 = main
--   has none). Rows of main as of s: the live row, unless h_<id> holds a
--   pre-image numbered after s (the first such is the row at s). Rows of a
--   branch at p: its row of d_<id>, unless b_<id> holds a pre-image numbered
--   after p (the first such; _epoch_deleted NULL: no row at p).
-- Everything below reads only rows changed after the points involved. The
-- functions that run the generated joins turn JIT off: their expressions are
-- large and their row counts estimated high, and compiling them cost more
-- than it saved (a diff of 100,000 changes: 1.9 s without JIT, minutes with).

-- Writing control functions refuse a read-only time-travel session.
CREATE OR REPLACE FUNCTION epoch._refuse_as_of(what text) RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
    IF nullif(current_setting('epoch.as_of', true), '') IS NOT NULL THEN
        RAISE EXCEPTION '%() is not allowed while epoch.as_of is set (read-only time travel)', what
            USING ERRCODE = '25006', HINT = 'RESET epoch.as_of first.';
    END IF;
END
$f$;

-- The time of a ref's "@{...}" part.
CREATE OR REPLACE FUNCTION epoch._ref_time(txt text, ref text) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $f$
BEGIN
    RETURN txt::timestamptz;
EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR invalid_parameter_value THEN
    RAISE EXCEPTION 'invalid time "%" in ref "%"', txt, ref
        USING ERRCODE = '22007', HINT = 'Write a timestamptz literal: main@{2026-12-01 10:00:00+00}.';
END
$f$;

-- The point of main at a time: its last captured change at or before it.
CREATE OR REPLACE FUNCTION epoch._main_point_at(at timestamptz, ref text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $f$
DECLARE
    p bigint;
    since timestamptz;
BEGIN
    SELECT c.seq INTO p FROM epoch.main_clock c WHERE c.at <= _main_point_at.at ORDER BY c.at DESC LIMIT 1;
    IF NOT FOUND THEN
        SELECT min(c.at) INTO since FROM epoch.main_clock c;
        RAISE EXCEPTION 'ref "%" is before the history epoch keeps (it starts at %)', ref, since
            USING ERRCODE = '22023',
                  HINT = 'Time travel reaches back to when history began or to what epoch.gc() kept (history_retention).';
    END IF;
    RETURN p;
END
$f$;

CREATE OR REPLACE FUNCTION epoch._commit_row(id text) RETURNS epoch.commit LANGUAGE sql STABLE AS $f$
    SELECT * FROM epoch.commit c WHERE c.id = _commit_row.id;
$f$;

-- Resolve a ref (docs/history.md): HEAD (the session's branch), a branch (its
-- working state), a tag, or a commit id or unique prefix of 4+ hex characters
-- (looked up in that order), then optionally @{time} (main: exactly main at
-- that time; another branch: its last commit at or before it), then any of
-- ~N (N-th first parent) and ^ / ^N (N-th parent).
-- working: the ref is a branch's working state (point NULL).
CREATE OR REPLACE FUNCTION epoch._resolve(ref text, OUT branch_id bigint, OUT base_seq bigint,
                                          OUT point bigint, OUT commit_id text, OUT working boolean)
LANGUAGE plpgsql STABLE AS $f$
DECLARE
    m text[];
    nm text;
    b epoch.branch;
    c epoch.commit;
    ts timestamptz;
    step text[];
    n int;
    hits text[];
BEGIN
    IF ref IS NULL OR ref = '' THEN
        RAISE EXCEPTION 'a ref cannot be empty' USING ERRCODE = '22023',
            HINT = 'Name a branch, a tag, a commit id (4+ hex characters) or HEAD.';
    END IF;
    m := regexp_match(ref, '^([^~^@{}]+)(?:@\{([^}]*)\})?((?:[~^][0-9]*)*)$');
    IF m IS NULL THEN
        RAISE EXCEPTION 'invalid ref "%"', ref USING ERRCODE = '22023',
            HINT = 'A ref is a branch, a tag, a commit id (4+ hex characters) or HEAD, optionally followed by @{time}, ~N, ^ or ^N.';
    END IF;
    nm := m[1];
    IF nm = 'HEAD' THEN
        nm := coalesce(nullif(current_setting('epoch.branch', true), ''), 'main');
    END IF;
    SELECT * INTO b FROM epoch.branch x WHERE x.name = nm;
    IF FOUND THEN
        IF b.expires_at IS NOT NULL AND b.expires_at <= now() THEN
            RAISE EXCEPTION 'branch "%" expired at %', nm, b.expires_at
                USING ERRCODE = '42704', HINT = 'Expired branches are deleted by epoch.sweep().';
        END IF;
        IF m[2] IS NOT NULL THEN
            ts := epoch._ref_time(m[2], ref);
            IF b.id = 0 AND m[3] = '' THEN
                branch_id := 0;
                base_seq := epoch._main_point_at(ts, ref);
                working := false;
                RETURN;
            END IF;
            SELECT * INTO c FROM epoch.commit x
             WHERE x.branch_id = b.id AND x.created_at <= ts ORDER BY x.created_at DESC, x.ord DESC LIMIT 1;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'branch "%" has no commit at or before %', nm, ts
                    USING ERRCODE = '42704', HINT = 'List its commits: SELECT * FROM epoch.commits WHERE branch = ''' || nm || '''.';
            END IF;
        ELSIF m[3] = '' THEN
            branch_id := b.id;
            base_seq := CASE WHEN b.id = 0 THEN NULL ELSE b.base_seq END;
            commit_id := b.head_commit;
            working := true;
            RETURN;
        ELSE
            IF b.head_commit IS NULL THEN
                RAISE EXCEPTION 'branch "%" has no commits, so "%" names nothing', nm, ref
                    USING ERRCODE = '42704', HINT = 'Commit first: SELECT epoch.commit(''message'').';
            END IF;
            c := epoch._commit_row(b.head_commit);
        END IF;
    ELSE
        IF m[2] IS NOT NULL THEN
            RAISE EXCEPTION 'ref "%": @{time} follows a branch name, and "%" is not a branch', ref, nm
                USING ERRCODE = '42704';
        END IF;
        SELECT x.* INTO c FROM epoch.tag g JOIN epoch.commit x ON x.id = g.commit_id WHERE g.name = nm;
        IF NOT FOUND THEN
            IF nm ~ '^[0-9a-f]{4,64}$' THEN
                hits := ARRAY(SELECT x.id FROM epoch.commit x
                               WHERE x.id >= nm COLLATE "C" AND x.id < (nm || 'g') COLLATE "C" ORDER BY x.id LIMIT 6);
            END IF;
            IF coalesce(cardinality(hits), 0) = 0 THEN
                RAISE EXCEPTION 'ref "%" does not exist', nm USING ERRCODE = '42704',
                    HINT = 'Name a branch (epoch.branches), a tag (epoch.tags) or a commit id of 4+ hex characters (epoch.commits).';
            ELSIF cardinality(hits) > 1 THEN
                RAISE EXCEPTION 'commit id prefix "%" is ambiguous', nm USING ERRCODE = '42725',
                    DETAIL = 'Candidates: ' || array_to_string(hits[1:5], ', ') || CASE WHEN cardinality(hits) > 5 THEN ', …' ELSE '' END,
                    HINT = 'Give more characters of the id.';
            END IF;
            c := epoch._commit_row(hits[1]);
        END IF;
    END IF;
    -- ancestry: ~N follows first parents N times, ^N takes the N-th parent
    FOR step IN SELECT regexp_matches(m[3], '([~^])([0-9]*)', 'g') LOOP
        n := coalesce(nullif(step[2], '')::int, 1);
        IF step[1] = '~' THEN
            FOR i IN 1..n LOOP
                IF cardinality(c.parents) = 0 THEN
                    RAISE EXCEPTION 'ref "%" goes past the first commit (%)', ref, left(c.id, 12)
                        USING ERRCODE = '42704';
                END IF;
                c := epoch._commit_row(c.parents[1]);
            END LOOP;
        ELSIF n > 0 THEN
            IF cardinality(c.parents) < n THEN
                RAISE EXCEPTION 'ref "%": commit % has no parent number %', ref, left(c.id, 12), n
                    USING ERRCODE = '42704';
            END IF;
            c := epoch._commit_row(c.parents[n]);
        END IF;
    END LOOP;
    branch_id := c.branch_id;
    base_seq := c.base_seq;
    point := CASE WHEN c.branch_id = 0 THEN NULL ELSE c.point END;
    commit_id := c.id;
    working := false;
END
$f$;

-- The state of a ref, for the SQL the proxy generates ("@ref" reads, once
-- per statement: the overlay's CTE _epoch_ref) and for SET epoch.as_of:
-- branch id, base (main's live tables: the last change) and point (NULL:
-- the branch's working rows). sampled: TABLESAMPLE reads a branch's working
-- rows only, so a past state is refused.
CREATE OR REPLACE FUNCTION epoch._ref_read(ref text, sampled boolean, OUT branch_id bigint,
        OUT base_seq bigint, OUT point bigint) LANGUAGE plpgsql STABLE AS $f$
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM epoch._resolve(ref);
    IF sampled AND NOT r.working AND NOT (r.branch_id = 0 AND r.base_seq IS NULL) THEN
        RAISE EXCEPTION 'TABLESAMPLE cannot read "%": it is a past state', ref USING ERRCODE = '0A000',
            HINT = 'Sample a branch''s working rows, or read the past state without TABLESAMPLE.';
    END IF;
    branch_id := r.branch_id;
    base_seq := coalesce(r.base_seq, pg_sequence_last_value('epoch.change_seq'), 0);
    point := CASE WHEN sampled THEN NULL ELSE r.point END;
END
$f$;
CREATE OR REPLACE FUNCTION epoch._ref_branch(ref text) RETURNS bigint LANGUAGE sql STABLE AS $f$
    SELECT r.branch_id FROM epoch._resolve(ref) r;
$f$;
DROP FUNCTION IF EXISTS epoch._ref_base(text);
DROP FUNCTION IF EXISTS epoch._ref_point(text);
DROP FUNCTION IF EXISTS epoch._ref_working_branch(text);

-- The columns of a tracked table, in order (generated columns included).
CREATE OR REPLACE FUNCTION epoch._columns(t epoch.tracked) RETURNS text[] LANGUAGE sql STABLE AS $f$
    SELECT array_agg(a.attname::text ORDER BY a.attnum)
      FROM pg_attribute a WHERE a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped;
$f$;

-- FROM-clause text that looks up, for each key of relation `keys` (columns
-- named as the key), the row of t in state (bid, base, point): adds alias x
-- with x.found (the key has a row) and x.v (its columns as text[]).
CREATE OR REPLACE FUNCTION epoch._state_join(t epoch.tracked, x text, bid bigint, base bigint,
                                             point bigint, keys text) RETURNS text
LANGUAGE plpgsql STABLE AS $f$
DECLARE
    cols text[] := epoch._columns(t);
    rel text := format('%I.%I', t.schema_name, t.table_name);
    km text;
    v text;
    none text;
BEGIN
    -- Every lookup is a LIMIT 1 subquery (one row per key anyway), which
    -- PostgreSQL cannot pull up into the join: it stays a probe by key. As
    -- plain subqueries, the d_<id> and main lookups were pulled up and, with
    -- a branch newer than the statistics, merge-joined against the whole
    -- table (a diff of 1,000 changes read all 1,000,000 rows: 750 ms).
    -- "_epoch_seq + 0 > point": the probes go by key, through the (branch,
    -- key, seq) and (key, seq) indexes; with statistics that predate the
    -- latest changes PostgreSQL took the (branch, seq) index for the range
    -- and read every change after the point once per key (0.1 ms a key)
    km := (SELECT string_agg(format('_r.%1$I = %2$I.%1$I', c, keys), ' AND ') FROM unnest(t.pk_columns) c);
    v := (SELECT 'ARRAY[' || string_agg(format('_r.%I::text', c), ', ') || ']::text[]' FROM unnest(cols) c);
    -- Probes that cannot find a row are left out (main has no d_<id> or
    -- b_<id> rows; a live state reads no history); the history and main
    -- probes are gated by the branch's (a condition on the outer row only
    -- becomes a one-time filter): a key the branch holds costs one probe.
    none := '(SELECT NULL::boolean AS ind, NULL::boolean AS del, NULL::boolean AS f, NULL::boolean AS ex, NULL::text[] AS v WHERE false)';
    RETURN format($s$
 LEFT JOIN LATERAL %15$s %1$I ON true
 LEFT JOIN LATERAL %16$s %8$I ON true
 LEFT JOIN LATERAL %17$s %11$I ON true
 LEFT JOIN LATERAL (SELECT true AS f, %2$s AS v FROM %12$s _r WHERE %5$s
                     AND NOT coalesce(%1$I.ind, %8$I.f, false) AND %11$I.ex IS NULL LIMIT 1) %13$I ON true
 CROSS JOIN LATERAL (SELECT
     CASE WHEN coalesce(%1$I.ind, %8$I.f, false) THEN NOT coalesce(%1$I.del, %8$I.del)
          ELSE coalesce(%11$I.ex, %13$I.f, false) END AS found,
     CASE WHEN coalesce(%1$I.ind, %8$I.f, false) THEN coalesce(%1$I.v, %8$I.v)
          ELSE coalesce(%11$I.v, %13$I.v) END AS v) %14$I$s$,
        x || '_b', v, format('b_%s', t.id), bid, km, point,
        t.delta_table, x || '_d', t.history_table, base, x || '_h', rel, x || '_m', x,
        CASE WHEN bid = 0 OR point IS NULL THEN none ELSE format(
            '(SELECT _r._epoch_deleted IS NOT NULL AS ind, _r._epoch_deleted AS del, %s AS v FROM epoch.%I _r '
            'WHERE _r._epoch_branch = %s AND %s AND _r._epoch_seq + 0 > %s ORDER BY _r._epoch_seq LIMIT 1)',
            v, format('b_%s', t.id), bid, km, point) END,
        CASE WHEN bid = 0 THEN none ELSE format(
            '(SELECT true AS f, _r._epoch_deleted AS del, %s AS v FROM epoch.%I _r WHERE _r._epoch_branch = %s AND %s LIMIT 1)',
            v, t.delta_table, bid, km) END,
        CASE WHEN base IS NULL THEN none ELSE format(
            '(SELECT _r._epoch_existed AS ex, %s AS v FROM epoch.%I _r WHERE %s AND _r._epoch_seq + 0 > %s '
            'AND NOT coalesce(%I.ind, %I.f, false) ORDER BY _r._epoch_seq LIMIT 1)',
            v, t.history_table, km, base, x || '_b', x || '_d') END);
END
$f$;

-- SQL of the rows (every column of d_<id>) branch bid held in t at point
-- (NULL: now). Reads of a branch at a commit use the same logic, written by
-- the proxy (src/branch/overlay.c).
CREATE OR REPLACE FUNCTION epoch._delta_at(t epoch.tracked, bid bigint, point bigint) RETURNS text
LANGUAGE plpgsql STABLE AS $f$
DECLARE
    cols text := (SELECT string_agg(format('_y.%I', attname), ', ' ORDER BY attnum)
                    FROM pg_attribute
                   WHERE attrelid = format('epoch.%I', t.delta_table)::regclass
                     AND attnum > 0 AND NOT attisdropped);
    km text := (SELECT string_agg(format('_x.%1$I = _y.%1$I', c), ' AND ') FROM unnest(t.pk_columns) c);
BEGIN
    IF point IS NULL THEN
        RETURN format('SELECT %s FROM epoch.%I _y WHERE _y._epoch_branch = %s', cols, t.delta_table, bid);
    END IF;
    RETURN format('SELECT %1$s FROM epoch.%2$I _y WHERE _y._epoch_branch = %4$s AND NOT EXISTS '
                  '(SELECT 1 FROM epoch.%3$I _x WHERE _x._epoch_branch = %4$s AND %5$s AND _x._epoch_seq > %6$s) '
                  'UNION ALL SELECT %1$s FROM epoch.%3$I _y WHERE _y._epoch_branch = %4$s AND _y._epoch_seq > %6$s '
                  'AND _y._epoch_deleted IS NOT NULL AND NOT EXISTS (SELECT 1 FROM epoch.%3$I _x WHERE _x._epoch_branch = %4$s AND %5$s '
                  'AND _x._epoch_seq > %6$s AND _x._epoch_seq < _y._epoch_seq)',
                  cols, t.delta_table, format('b_%s', t.id), bid, km, point);
END
$f$;

-- SQL of the keys of t whose row may differ between states a and b: the
-- rows either branch holds (or, on one branch, changed between the points)
-- and main's changes between the two bases. A superset: callers compare.
CREATE OR REPLACE FUNCTION epoch._candidates(t epoch.tracked,
        a_bid bigint, a_base bigint, a_point bigint,
        b_bid bigint, b_base bigint, b_point bigint) RETURNS text
LANGUAGE plpgsql STABLE AS $f$
DECLARE
    pk text := (SELECT string_agg(quote_ident(c), ', ') FROM unnest(t.pk_columns) c);
    parts text[] := '{}';
    lo bigint;
    hi bigint;
    bid bigint;
    pt bigint;
BEGIN
    IF a_bid = b_bid THEN
        IF a_bid <> 0 AND (a_point IS NOT NULL OR b_point IS NOT NULL) THEN
            lo := least(a_point, b_point);
            hi := CASE WHEN a_point IS NULL OR b_point IS NULL THEN NULL ELSE greatest(a_point, b_point) END;
            parts := parts || format('SELECT %s FROM epoch.%I WHERE _epoch_branch = %s AND _epoch_seq > %s%s',
                                     pk, format('b_%s', t.id), a_bid, lo,
                                     CASE WHEN hi IS NULL THEN '' ELSE format(' AND _epoch_seq <= %s', hi) END);
        END IF;
    ELSE
        -- each side: the rows its branch holds now and, at a point, those it
        -- changed after it
        FOR i IN 1 .. 2 LOOP
            bid := (ARRAY[a_bid, b_bid])[i];
            pt := (ARRAY[a_point, b_point])[i];
            CONTINUE WHEN bid = 0;
            parts := parts || format('SELECT %s FROM epoch.%I WHERE _epoch_branch = %s', pk, t.delta_table, bid);
            IF pt IS NOT NULL THEN
                parts := parts || format('SELECT %s FROM epoch.%I WHERE _epoch_branch = %s AND _epoch_seq > %s',
                                         pk, format('b_%s', t.id), bid, pt);
            END IF;
        END LOOP;
    END IF;
    IF a_base IS DISTINCT FROM b_base THEN
        lo := least(a_base, b_base);
        hi := CASE WHEN a_base IS NULL OR b_base IS NULL THEN NULL ELSE greatest(a_base, b_base) END;
        parts := parts || format('SELECT %s FROM epoch.%I WHERE _epoch_seq > %s%s', pk, t.history_table, lo,
                                 CASE WHEN hi IS NULL THEN '' ELSE format(' AND _epoch_seq <= %s', hi) END);
    END IF;
    IF cardinality(parts) = 0 THEN
        RETURN format('SELECT %s FROM epoch.%I WHERE false', pk, t.delta_table);
    END IF;
    RETURN format('SELECT DISTINCT %s FROM (%s) _k', pk, array_to_string(parts, ' UNION ALL '));
END
$f$;

-- SQL of the keys of t whose rows differ between states a and b:
-- pk (jsonb), a_found, a_v, b_found, b_v (v: the columns as text[]).
-- Rows compare by the text of their columns.
CREATE OR REPLACE FUNCTION epoch._diff_rows(t epoch.tracked,
        a_bid bigint, a_base bigint, a_point bigint,
        b_bid bigint, b_base bigint, b_point bigint) RETURNS text
LANGUAGE plpgsql STABLE AS $f$
DECLARE
    pkjson text := (SELECT 'jsonb_build_object(' || string_agg(format('%L, _c.%I', c, c), ', ') || ')'
                      FROM unnest(t.pk_columns) c);
BEGIN
    RETURN format('SELECT %s AS pk, _a.found AS a_found, _a.v AS a_v, _z.found AS b_found, _z.v AS b_v FROM (%s) _c %s %s '
                  'WHERE _a.found <> _z.found OR (_a.found AND _a.v IS DISTINCT FROM _z.v)',
                  pkjson, epoch._candidates(t, a_bid, a_base, a_point, b_bid, b_base, b_point),
                  epoch._state_join(t, '_a', a_bid, a_base, a_point, '_c'),
                  epoch._state_join(t, '_z', b_bid, b_base, b_point, '_c'));
END
$f$;

-- The columns of t's row at alias q as text[] (the v of _state_join).
CREATE OR REPLACE FUNCTION epoch._row_text(t epoch.tracked, q text) RETURNS text
LANGUAGE sql STABLE AS $f$
    SELECT 'ARRAY[' || string_agg(format('%I.%I::text', q, c), ', ' ORDER BY o) || ']::text[]'
      FROM unnest(epoch._columns(t)) WITH ORDINALITY u(c, o);
$f$;

-- Expression text: the row of t with the key of alias `keys` in main as of
-- base (NULL: the live row), as text[]; '{}' when main had no row. Scalar
-- subqueries inside coalesce(), so a caller that has the row already (a
-- coalesce() argument before it) never runs them.
CREATE OR REPLACE FUNCTION epoch._main_row(t epoch.tracked, base bigint, keys text) RETURNS text
LANGUAGE plpgsql STABLE AS $f$
DECLARE
    kh text := (SELECT string_agg(format('_h.%1$I = %2$I.%1$I', c, keys), ' AND ') FROM unnest(t.pk_columns) c);
    kl text := (SELECT string_agg(format('_l.%1$I = %2$I.%1$I', c, keys), ' AND ') FROM unnest(t.pk_columns) c);
    live text := format('(SELECT %s FROM %I.%I _l WHERE %s)', epoch._row_text(t, '_l'),
                        t.schema_name, t.table_name, kl);
BEGIN
    IF base IS NULL THEN
        RETURN format('coalesce(%s, ''{}''::text[])', live);
    END IF;
    -- "+ 0": by key through the (key, seq) index (see _state_join)
    RETURN format('coalesce((SELECT CASE WHEN _h._epoch_existed THEN %s ELSE ''{}''::text[] END '
                  'FROM epoch.%I _h WHERE %s AND _h._epoch_seq + 0 > %s ORDER BY _h._epoch_seq LIMIT 1), %s, ''{}''::text[])',
                  epoch._row_text(t, '_h'), t.history_table, kh, base, live);
END
$f$;

-- SQL of the keys of t whose rows differ between state a = (a_bid, a_base,
-- a_point), the state a commit is compared with (epoch._sealed), and state b
-- of the branch being sealed: pk (jsonb), a_v, b_v (the columns as text[],
-- NULL: no row). The same keys and rows as _diff_rows(), cheaper in the three
-- cases a commit or epoch.status meets: main since its last commit (main's
-- history after it), a branch since its own last commit (the branch's
-- history after that commit's point: each key's first pre-image is its row
-- then) and a branch since main's state (its rows of d_<id>). Keys are read
-- in sets; each other row is probed by key (scalar subqueries: nested loops
-- by construction, never a scan of d_<id> or of the table), and main's row
-- only when neither side's branch holds the key. Other cases: _diff_rows().
-- A branch's state at b_point reads its d_<id> rows: a commit holds the
-- writers' lock, so no change of the branch is numbered after b_point.
CREATE OR REPLACE FUNCTION epoch._commit_rows(t epoch.tracked,
        a_bid bigint, a_base bigint, a_point bigint,
        b_bid bigint, b_base bigint, b_point bigint) RETURNS text
LANGUAGE plpgsql STABLE AS $f$
DECLARE
    pk text := (SELECT string_agg(format('_c.%I', c), ', ') FROM unnest(t.pk_columns) c);
    pkjson text := (SELECT 'jsonb_build_object(' || string_agg(format('%L, _c.%I', c, c), ', ') || ')'
                      FROM unnest(t.pk_columns) c);
    kd text := (SELECT string_agg(format('_n.%1$I = _c.%1$I', c), ' AND ') FROM unnest(t.pk_columns) c);
    bhist text := format('b_%s', t.id);
    cands text;
    a_v text;
    b_v text;
BEGIN
    IF a_bid = 0 AND b_bid = 0 AND a_base IS NOT NULL AND (b_base IS NULL OR a_base <= b_base) THEN
        -- main: each key main changed after a_base, with its first pre-image
        IF a_base IS NOT DISTINCT FROM b_base THEN
            RETURN 'SELECT NULL::jsonb AS pk, NULL::text[] AS a_v, NULL::text[] AS b_v WHERE false';
        END IF;
        cands := format('SELECT DISTINCT ON (%1$s) %1$s, CASE WHEN _c._epoch_existed THEN %2$s ELSE ''{}''::text[] END AS v0 '
                        'FROM epoch.%3$I _c WHERE _c._epoch_seq > %4$s%5$s ORDER BY %1$s, _c._epoch_seq',
                        pk, epoch._row_text(t, '_c'), t.history_table, a_base,
                        CASE WHEN b_base IS NULL THEN '' ELSE format(' AND _c._epoch_seq <= %s', b_base) END);
        a_v := '_c.v0';
        b_v := epoch._main_row(t, b_base, '_c');
    ELSIF a_bid = b_bid AND a_point IS NOT NULL AND a_base IS NOT DISTINCT FROM b_base THEN
        -- a branch since its own commit: each key it changed after the
        -- commit's point, with its first pre-image (_epoch_deleted NULL: the
        -- branch had no row for the key, main's row shows through)
        cands := format('SELECT DISTINCT ON (%1$s) %1$s, CASE WHEN _c._epoch_deleted THEN ''{}''::text[] '
                        'WHEN NOT _c._epoch_deleted THEN %2$s END AS v0 '
                        'FROM epoch.%3$I _c WHERE _c._epoch_branch = %4$s AND _c._epoch_seq > %5$s%6$s '
                        'ORDER BY %1$s, _c._epoch_seq',
                        pk, epoch._row_text(t, '_c'), bhist, b_bid, a_point,
                        CASE WHEN b_point IS NULL THEN '' ELSE format(' AND _c._epoch_seq <= %s', b_point) END);
        a_v := format('coalesce(_c.v0, %s)', epoch._main_row(t, a_base, '_c'));
        b_v := format('coalesce((SELECT CASE WHEN _n._epoch_deleted THEN ''{}''::text[] ELSE %s END '
                      'FROM epoch.%I _n WHERE _n._epoch_branch = %s AND %s), %s)',
                      epoch._row_text(t, '_n'), t.delta_table, b_bid, kd, epoch._main_row(t, b_base, '_c'));
    ELSIF a_bid = 0 AND b_bid <> 0 AND a_point IS NULL THEN
        -- a branch since main's state at a_base: the rows the branch holds,
        -- and the keys main changed between the two bases
        cands := format('SELECT %1$s, CASE WHEN _c._epoch_deleted THEN ''{}''::text[] ELSE %2$s END AS v1 '
                        'FROM epoch.%3$I _c WHERE _c._epoch_branch = %4$s',
                        pk, epoch._row_text(t, '_c'), t.delta_table, b_bid);
        IF a_base IS DISTINCT FROM b_base THEN
            cands := cands || format(
                ' UNION ALL SELECT DISTINCT %1$s, NULL::text[] FROM epoch.%2$I _c WHERE _c._epoch_seq > %3$s%4$s'
                ' AND NOT EXISTS (SELECT 1 FROM epoch.%5$I _n WHERE _n._epoch_branch = %6$s AND %7$s)',
                pk, t.history_table, least(a_base, b_base),
                CASE WHEN a_base IS NULL OR b_base IS NULL THEN ''
                     ELSE format(' AND _c._epoch_seq <= %s', greatest(a_base, b_base)) END,
                t.delta_table, b_bid, kd);
        END IF;
        a_v := epoch._main_row(t, a_base, '_c');
        b_v := format('coalesce(_c.v1, %s)', epoch._main_row(t, b_base, '_c'));
    ELSE
        RETURN format('SELECT d.pk, CASE WHEN d.a_found THEN d.a_v END AS a_v, CASE WHEN d.b_found THEN d.b_v END AS b_v '
                      'FROM (%s) d', epoch._diff_rows(t, a_bid, a_base, a_point, b_bid, b_base, b_point));
    END IF;
    -- OFFSET 0: each row's probes run once, not once per use of a_v, b_v
    RETURN format('SELECT _x.pk, _x.a_v, _x.b_v FROM (SELECT %s AS pk, nullif(%s, ''{}''::text[]) AS a_v, '
                  'nullif(%s, ''{}''::text[]) AS b_v FROM (%s) _c OFFSET 0) _x WHERE _x.a_v IS DISTINCT FROM _x.b_v',
                  pkjson, a_v, b_v, cands);
END
$f$;

-- How a tracked table is named in results: schema-qualified outside public.
CREATE OR REPLACE FUNCTION epoch._table_label(t epoch.tracked) RETURNS text LANGUAGE sql STABLE AS $f$
    SELECT CASE WHEN t.schema_name = 'public' THEN t.table_name
                ELSE format('%s.%s', t.schema_name, t.table_name) END;
$f$;

CREATE OR REPLACE FUNCTION epoch._tracked_or_all("table" regclass) RETURNS SETOF epoch.tracked
LANGUAGE plpgsql STABLE AS $f$
BEGIN
    IF "table" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM epoch.tracked WHERE relid = "table") THEN
        RAISE EXCEPTION 'table "%" is not tracked', epoch._rel_label("table") USING ERRCODE = '42P01',
            HINT = 'Only tracked tables have history; see epoch.tables.';
    END IF;
    RETURN QUERY SELECT * FROM epoch.tracked
                  WHERE "table" IS NULL OR relid = "table" ORDER BY schema_name, table_name;
END
$f$;

-- One row per changed field between two refs; inserts and deletes list every
-- column. O(changes on both sides), never O(table). Runs as its caller: the
-- rows come from epoch._diff_source (only what the role may read).
CREATE OR REPLACE FUNCTION epoch.diff(from_ref text, to_ref text, "table" regclass DEFAULT NULL)
RETURNS TABLE (table_name text, pk jsonb, change text, column_name text, old_value text, new_value text)
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp SET jit = off AS $f$
DECLARE
    a record := epoch._resolve(from_ref);
    b record := epoch._resolve(to_ref);
    t epoch.tracked;
BEGIN
    -- only the tables the role may read (one table asked for: an error if it may not)
    FOR t IN SELECT * FROM epoch._tracked_or_all("table") x
              WHERE epoch._invoker_may_select(x.relid, "table" IS NOT NULL) LOOP
        RETURN QUERY EXECUTE format(
            'SELECT %L::text, d.pk, CASE WHEN NOT d.a_found THEN ''insert'' WHEN NOT d.b_found THEN ''delete'' ELSE ''update'' END, '
            'u.c, u.o, u.n FROM (%s) d '
            'CROSS JOIN LATERAL unnest(%L::text[], CASE WHEN d.a_found THEN d.a_v END, CASE WHEN d.b_found THEN d.b_v END) '
            '  WITH ORDINALITY AS u(c, o, n, i) '
            'WHERE NOT (d.a_found AND d.b_found) OR u.o IS DISTINCT FROM u.n ORDER BY d.pk, u.i',
            epoch._table_label(t),
            epoch._diff_source(t, a.branch_id, a.base_seq, a.point, b.branch_id, b.base_seq, b.point),
            epoch._columns(t));
    END LOOP;
END
$f$;

-- Per table: rows inserted, updated and deleted between two refs (of the
-- rows the role may read).
CREATE OR REPLACE FUNCTION epoch.diff_stat(from_ref text, to_ref text)
RETURNS TABLE (table_name text, inserted bigint, updated bigint, deleted bigint)
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp SET jit = off AS $f$
DECLARE
    a record := epoch._resolve(from_ref);
    b record := epoch._resolve(to_ref);
    t epoch.tracked;
BEGIN
    FOR t IN SELECT * FROM epoch.tracked x WHERE epoch._invoker_may_select(x.relid, false)
              ORDER BY schema_name, table_name LOOP
        RETURN QUERY EXECUTE format(
            'SELECT %L::text, count(*) FILTER (WHERE NOT d.a_found), count(*) FILTER (WHERE d.a_found AND d.b_found), '
            'count(*) FILTER (WHERE NOT d.b_found) FROM (%s) d HAVING count(*) > 0',
            epoch._table_label(t),
            epoch._diff_source(t, a.branch_id, a.base_seq, a.point, b.branch_id, b.base_seq, b.point));
    END LOOP;
END
$f$;

-- The state a branch's next commit is compared with: its head commit (its
-- last commit, or the head commit of the ref it was made from), so that a
-- commit's stats are always its difference with its first parent; a branch
-- with no head commit (main had none) compares with main at its base. Main:
-- its last commit, or the tables as tracked (point 0).
CREATE OR REPLACE FUNCTION epoch._sealed(br epoch.branch, OUT branch_id bigint, OUT base_seq bigint, OUT point bigint)
LANGUAGE plpgsql STABLE AS $f$
DECLARE
    c epoch.commit := epoch._commit_row(br.head_commit);
BEGIN
    IF br.id = 0 THEN
        branch_id := 0;
        base_seq := coalesce(c.point, 0);
    ELSIF c.id IS NOT NULL THEN
        branch_id := c.branch_id;
        base_seq := c.base_seq;
        point := CASE WHEN c.branch_id = 0 THEN NULL ELSE c.point END;
    ELSE
        branch_id := 0;
        base_seq := br.base_seq;
    END IF;
END
$f$;

CREATE OR REPLACE FUNCTION epoch._session_branch() RETURNS epoch.branch LANGUAGE plpgsql STABLE AS $f$
BEGIN
    RETURN epoch._branch(coalesce(nullif(current_setting('epoch.branch', true), ''), 'main'));
END
$f$;

-- Uncommitted changes of the session's branch per table (on main: changes
-- captured since main's last commit), and a row for a conflicted merge into
-- it.
CREATE OR REPLACE FUNCTION epoch._status()
RETURNS TABLE (table_name text, inserted bigint, updated bigint, deleted bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp STABLE SET jit = off AS $f$
DECLARE
    br epoch.branch := epoch._session_branch();
    s record := epoch._sealed(br);
    t epoch.tracked;
BEGIN
    FOR t IN SELECT * FROM epoch.tracked WHERE epoch._invoker_may_see(relid) ORDER BY schema_name, table_name LOOP
        RETURN QUERY EXECUTE format(
            'SELECT %L::text, count(*) FILTER (WHERE d.a_v IS NULL), count(*) FILTER (WHERE d.a_v IS NOT NULL AND d.b_v IS NOT NULL), '
            'count(*) FILTER (WHERE d.b_v IS NULL) FROM (%s) d HAVING count(*) > 0',
            epoch._table_label(t),
            epoch._commit_rows(t, s.branch_id, s.base_seq, s.point,
                               br.id, CASE WHEN br.id = 0 THEN NULL ELSE br.base_seq END, NULL));
    END LOOP;
    -- a conflicted merge into the branch (functions/merge.sql) waits for it
    RETURN QUERY
    SELECT format('(merge %s of "%s" is conflicted: %s unresolved)', x.id, x.source,
                  (SELECT count(*) FROM epoch.merge_conflict c WHERE c.merge_id = x.id AND NOT c.resolved)),
           0::bigint, 0::bigint, 0::bigint
      FROM epoch.merge_log x WHERE x.target_id = br.id AND x.status = 'conflicted';
END
$f$;

-- Seal the session's branch's working state into a commit; returns its id.
-- Waits for writes in flight on the branch (main: on main) so that every
-- write is wholly in the commit or wholly after it.
CREATE OR REPLACE FUNCTION epoch.commit(message text, author text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $f$
BEGIN
    IF message IS NULL OR btrim(message) = '' THEN
        RAISE EXCEPTION 'a commit needs a message' USING ERRCODE = '22023',
            HINT = 'SELECT epoch.commit(''what changed and why'').';
    END IF;
    PERFORM epoch._refuse_as_of('epoch.commit');
    RETURN epoch._commit_on(epoch._session_branch(), message, coalesce(author, session_user::text), NULL);
END
$f$;

-- Main's point now, such that every change of main numbered up to it is
-- committed (reads at it see them all, later writes number after it): the
-- writers' lock (functions/track.sql) is taken exclusively, which waits for
-- the writes of main in flight, and given back at once. A session lock, as
-- an xact lock would hold writers until the end of the caller's transaction.
CREATE OR REPLACE FUNCTION epoch._main_point() RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE
    p bigint;
BEGIN
    PERFORM pg_advisory_lock(1162891075, 0);
    p := coalesce(pg_sequence_last_value('epoch.change_seq'), 0);
    PERFORM pg_advisory_unlock(1162891075, 0);
    RETURN p;
EXCEPTION WHEN OTHERS OR query_canceled THEN
    PERFORM pg_advisory_unlock(1162891075, 0);
    RAISE;
END
$f$;

-- Has branch br (sealed state s_*, see _sealed; p: the point now) certainly
-- no change to commit? A probe of the history after s, no diff: main with
-- no change numbered after its last commit, a branch with none of its own
-- after its last commit, a branch made from main with no row of its own.
-- false: maybe (the commit computes it).
CREATE OR REPLACE FUNCTION epoch._nothing_to_commit(br epoch.branch, s_branch bigint, s_base bigint, s_point bigint,
                                                   p bigint) RETURNS boolean
LANGUAGE plpgsql STABLE AS $f$
DECLARE
    t epoch.tracked;
    hit boolean;
BEGIN
    FOR t IN SELECT * FROM epoch.tracked LOOP
        IF br.id = 0 THEN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM epoch.%I WHERE _epoch_seq > $1 AND _epoch_seq <= $2)',
                           t.history_table) INTO hit USING s_base, p;
        ELSIF s_branch = br.id AND s_base = br.base_seq THEN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM epoch.%I WHERE _epoch_branch = $1 AND _epoch_seq > $2)',
                           format('b_%s', t.id)) INTO hit USING br.id, s_point;
        ELSIF s_branch = 0 AND s_base = br.base_seq THEN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM epoch.%I WHERE _epoch_branch = $1)', t.delta_table)
                INTO hit USING br.id;
        ELSE
            RETURN false;
        END IF;
        IF hit THEN
            RETURN false;
        END IF;
    END LOOP;
    RETURN true;
END
$f$;

-- The commit of branch br's working state (epoch.commit, merges): merged, a
-- second parent (a merge commit, recorded even when it changes nothing);
-- quiet: no NOTICE when there is nothing to commit (a merge's auto-commits);
-- at_point (main): the point to seal, every change up to it committed or the
-- caller's own (a merge into main, after its apply); NULL: now.
-- Returns the new head, or the old one when there was nothing to commit.
DROP FUNCTION IF EXISTS epoch._commit_on(epoch.branch, text, text, text, boolean);
CREATE OR REPLACE FUNCTION epoch._commit_on(br epoch.branch, message text, who text, merged text,
                                            quiet boolean DEFAULT false, at_point bigint DEFAULT NULL)
RETURNS text LANGUAGE plpgsql SET jit = off AS $f$
DECLARE
    s record;
    p bigint;
    base bigint;
    t epoch.tracked;
    st record;
    parents text[];
    ts timestamptz := clock_timestamp();
    body text := '';
    new_id text;
    stats jsonb := '[]';
BEGIN
    IF btrim(who) = '' THEN
        RAISE EXCEPTION 'a commit author cannot be empty' USING ERRCODE = '22023';
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'epoch.commit() needs READ COMMITTED isolation, this transaction is %',
            upper(current_setting('transaction_isolation'))
            USING ERRCODE = '0A000', HINT = 'Commit outside the transaction, or in one started with BEGIN ISOLATION LEVEL READ COMMITTED.';
    END IF;
    IF br.id = 0 THEN
        -- commits of main one at a time; writers of main wait only while
        -- the point is taken
        PERFORM pg_advisory_xact_lock(1162891075, 2);
        p := coalesce(at_point, epoch._main_point());
    ELSE
        PERFORM pg_advisory_xact_lock(1162891075, 1);
        p := coalesce(pg_sequence_last_value('epoch.change_seq'), 0);
    END IF;
    -- a commit made meanwhile on the same branch moved its head
    SELECT * INTO br FROM epoch.branch WHERE id = br.id;
    base := CASE WHEN br.id = 0 THEN p ELSE br.base_seq END;
    s := epoch._sealed(br);
    parents := CASE WHEN br.head_commit IS NULL THEN '{}'::text[] ELSE ARRAY[br.head_commit::text] END
               || CASE WHEN merged IS NULL THEN '{}'::text[] ELSE ARRAY[merged] END;
    -- no empty commit, except the root of main (the tables as tracked) and
    -- a merge commit; most calls of a merge's auto-commits end here
    IF merged IS NULL AND NOT (br.id = 0 AND br.head_commit IS NULL) 
       AND epoch._nothing_to_commit(br, s.branch_id, s.base_seq, s.point, p) THEN
        IF NOT quiet THEN
            RAISE NOTICE 'nothing to commit on branch "%"', br.name;
        END IF;
        RETURN br.head_commit;
    END IF;
    FOR t IN SELECT * FROM epoch.tracked ORDER BY schema_name, table_name LOOP
        EXECUTE format(
            'SELECT count(*) FILTER (WHERE d.a_v IS NULL) AS ins, count(*) FILTER (WHERE d.a_v IS NOT NULL AND d.b_v IS NOT NULL) AS upd, '
            'count(*) FILTER (WHERE d.b_v IS NULL) AS del, '
            'string_agg(d.pk::text || CASE WHEN d.b_v IS NOT NULL THEN '' '' || d.b_v::text ELSE '' deleted'' END, E''\n'' ORDER BY d.pk) AS rows '
            'FROM (%s) d',
            epoch._commit_rows(t, s.branch_id, s.base_seq, s.point, br.id, base, CASE WHEN br.id = 0 THEN NULL ELSE p END))
            INTO st;
        IF st.rows IS NOT NULL THEN
            body := body || format(E'table %s.%s\n%s\n', t.schema_name, t.table_name, st.rows);
            stats := stats || jsonb_build_object('id', t.id, 's', t.schema_name, 't', t.table_name,
                                                 'i', st.ins, 'u', st.upd, 'd', st.del);
        END IF;
    END LOOP;
    -- no empty commit, except the root of main: the tables as tracked
    IF body = '' AND merged IS NULL AND NOT (br.id = 0 AND br.head_commit IS NULL) THEN
        IF NOT quiet THEN
            RAISE NOTICE 'nothing to commit on branch "%"', br.name;
        END IF;
        RETURN br.head_commit;
    END IF;
    new_id := encode(sha256(convert_to(format(E'parents %s\nbranch %s\nauthor %s\ntime %s\nmessage %s\n%s',
                                              array_to_string(parents, ' '), br.name, who,
                                              to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                                              message, body), 'UTF8')), 'hex');
    INSERT INTO epoch.commit (id, parents, branch_id, branch_name, point, base_seq, author, message, created_at)
    VALUES (new_id, parents, br.id, br.name, p, base, who, message, ts);
    INSERT INTO epoch.commit_table
    SELECT new_id, (e->>'id')::int, e->>'s', e->>'t', (e->>'i')::bigint, (e->>'u')::bigint, (e->>'d')::bigint
      FROM jsonb_array_elements(stats) e;
    UPDATE epoch.branch SET head_commit = new_id WHERE id = br.id;
    PERFORM epoch._audit('commit', br.name, jsonb_build_object('commit', new_id, 'message', message, 'author', who,
                                                               'merged', merged, 'tables', stats));
    RETURN new_id;
END
$f$;

-- One commit and its per-table stats (one row per table it changed that
-- the caller may read: functions/access.sql, _table_shown).
CREATE OR REPLACE FUNCTION epoch.show(ref text DEFAULT 'HEAD')
RETURNS TABLE (id text, parents text[], branch text, author text, message text, created_at timestamptz,
               table_name text, inserted bigint, updated bigint, deleted bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    r record := epoch._resolve(ref);
BEGIN
    IF r.commit_id IS NULL THEN
        RAISE EXCEPTION 'ref "%" names no commit', ref USING ERRCODE = '42704',
            HINT = 'A branch without commits, or main at a time, is a state but not a commit.';
    END IF;
    RETURN QUERY
        SELECT c.id::text, c.parents, c.branch_name, c.author, c.message, c.created_at,
               CASE WHEN s.schema_name = 'public' THEN s.table_name ELSE s.schema_name || '.' || s.table_name END,
               s.inserted, s.updated, s.deleted
          FROM epoch.commit c
          LEFT JOIN epoch.commit_table s ON s.commit_id = c.id AND epoch._table_shown(s.table_id)
         WHERE c.id = r.commit_id
         ORDER BY s.schema_name, s.table_name;
END
$f$;

-- Tags name commits and never move.
CREATE OR REPLACE FUNCTION epoch.tag(name text, ref text DEFAULT 'HEAD', message text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    r record;
BEGIN
    PERFORM epoch._check_ref_name(name, 'tag');
    IF EXISTS (SELECT 1 FROM epoch.branch b WHERE b.name = tag.name) THEN
        RAISE EXCEPTION 'a branch is named "%"; a tag cannot share its name', name USING ERRCODE = '42710',
            HINT = 'Refs look up branches before tags: pick another tag name.';
    END IF;
    r := epoch._resolve(ref);
    IF r.commit_id IS NULL THEN
        RAISE EXCEPTION 'ref "%" names no commit to tag', ref USING ERRCODE = '42704',
            HINT = 'Commit first: SELECT epoch.commit(''message'').';
    END IF;
    BEGIN
        INSERT INTO epoch.tag (name, commit_id, message, created_by) VALUES (name, r.commit_id, message, epoch._invoker());
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'tag "%" already exists', name USING ERRCODE = '42710',
            HINT = 'Tags never move; delete it first with epoch.tag_delete.';
    END;
    PERFORM epoch._audit('tag', NULL, jsonb_build_object('tag', name, 'commit', r.commit_id, 'message', message));
    RETURN r.commit_id;
END
$f$;

CREATE OR REPLACE FUNCTION epoch.tag_delete(name text) RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    who name := epoch._invoker();
    g epoch.tag;
BEGIN
    SELECT * INTO g FROM epoch.tag x WHERE x.name = tag_delete.name;
    IF FOUND AND NOT (who = g.created_by OR epoch._is_admin(who)
                      OR (EXISTS (SELECT 1 FROM pg_roles WHERE rolname = g.created_by)
                          AND pg_has_role(who, g.created_by::name, 'MEMBER'))) THEN
        RAISE EXCEPTION 'permission denied to delete tag "%" of role %', name, quote_ident(g.created_by)
            USING ERRCODE = '42501', HINT = 'Only its creator, an epoch admin or a superuser may.';
    END IF;
    DELETE FROM epoch.tag x WHERE x.name = tag_delete.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tag "%" does not exist', name USING ERRCODE = '42704',
            HINT = 'List tags with SELECT name FROM epoch.tags.';
    END IF;
    PERFORM epoch._audit('tag_delete', NULL, jsonb_build_object('tag', name, 'commit', g.commit_id));
    RETURN name;
END
$f$;
