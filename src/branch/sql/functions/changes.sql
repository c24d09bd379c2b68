-- functions/changes.sql: the change feed (docs/history.md).
--
-- Repeatable: the current definition of each function, exactly one each. The
-- migration DO block (src/branch/migrate.c) re-applies every file of
-- functions/ whole, after the numbered schema steps, whenever their hash differs
-- from the one stored in epoch.meta ('functions_hash'). Edit in place; a change of
-- signature or of a view's columns also needs a DROP in a new schema/NNN_*.sql.

-- The rows of a tracked table that differ on the session's branch (or main)
-- between a point and now: since is a mark returned by an earlier call (a
-- number: a point of the session's branch) or any ref. Every row carries the
-- mark to pass next time. O(changes since the point). Runs as its caller:
-- only the rows the role may read (epoch._diff_source).
CREATE OR REPLACE FUNCTION epoch.changes("table" regclass, since text)
RETURNS TABLE (mark text, change text, pk jsonb, "row" jsonb) LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp SET jit = off AS $f$
DECLARE
    br epoch.branch := epoch._session_branch();
    t epoch.tracked := epoch._tracked("table");
    a record;
    p bigint;
BEGIN
    IF t.id IS NULL THEN
        RAISE EXCEPTION 'table "%" is not tracked', epoch._rel_label("table") USING ERRCODE = '42P01',
            HINT = 'Only tracked tables have a change feed; see epoch.tables.';
    END IF;
    PERFORM epoch._invoker_may_select(t.relid, true);
    IF since IS NULL OR since = '' THEN
        RAISE EXCEPTION 'since is required: the mark of the last call, or a ref' USING ERRCODE = '22004',
            HINT = 'Start with since => ''0'' (everything since the table was tracked, or since the branch began) or a ref such as a commit id.';
    END IF;
    -- the point now: a writer in flight is wholly before it or after it (on a
    -- branch, as for epoch.commit, its writers wait for this call's
    -- transaction: keep it short)
    IF br.id = 0 THEN
        p := epoch._main_point();
    ELSE
        PERFORM pg_advisory_xact_lock(1162891075, 1);
        p := coalesce(pg_sequence_last_value('epoch.change_seq'), 0);
    END IF;
    IF since ~ '^[0-9]{1,18}$' THEN
        SELECT x.* INTO a FROM (SELECT br.id AS branch_id,
                                       CASE WHEN br.id = 0 THEN since::bigint ELSE br.base_seq END AS base_seq,
                                       CASE WHEN br.id = 0 THEN NULL ELSE since::bigint END AS point) x;
    ELSE
        SELECT r.branch_id, r.base_seq, r.point INTO a FROM epoch._resolve(since) r;
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT %L::text, CASE WHEN NOT d.a_found THEN ''insert'' WHEN NOT d.b_found THEN ''delete'' ELSE ''update'' END, '
        'd.pk, CASE WHEN d.b_found THEN jsonb_object(%L::text[], d.b_v) END FROM (%s) d ORDER BY d.pk',
        p, epoch._columns(t),
        epoch._diff_source(t, a.branch_id, a.base_seq, a.point,
                           br.id, CASE WHEN br.id = 0 THEN p ELSE br.base_seq END, CASE WHEN br.id = 0 THEN NULL ELSE p END));
END
$f$;
