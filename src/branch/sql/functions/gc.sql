-- functions/gc.sql: retention of captured history (docs/history.md).
--
-- Repeatable: the current definition of each function, exactly one each. The
-- migration DO block (src/branch/migrate.c) re-applies every file of
-- functions/ whole, after the numbered schema steps, whenever their hash differs
-- from the one stored in epoch.meta ('functions_hash'). Edit in place; a change of
-- signature or of a view's columns also needs a DROP in a new schema/NNN_*.sql.

-- The time-travel window: the PostgreSQL setting epoch.history_retention
-- (ALTER DATABASE … SET epoch.history_retention = '3 days'), default 7 days.
CREATE OR REPLACE FUNCTION epoch._retention() RETURNS interval LANGUAGE plpgsql STABLE AS $f$
DECLARE
    v text := nullif(current_setting('epoch.history_retention', true), '');
BEGIN
    RETURN coalesce(v::interval, interval '7 days');
EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR invalid_parameter_value THEN
    RAISE EXCEPTION 'invalid epoch.history_retention "%"', v USING ERRCODE = '22023',
        HINT = 'Set an interval: ALTER DATABASE … SET epoch.history_retention = ''7 days''.';
END
$f$;

-- Delete the captured history no ref can reach any more: pre-images of main
-- numbered at or before every branch's base, every commit's base and the start
-- of the time-travel window; pre-images of branch rows before the window that
-- no commit of their branch needs; main's clock before the window. Commits and
-- tags are kept, and so is everything they need. Returns what was deleted.
CREATE OR REPLACE FUNCTION epoch.gc(retention interval DEFAULT NULL)
RETURNS TABLE (table_name text, main_rows bigint, branch_rows bigint) LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
    PERFORM epoch._require_admin('run epoch.gc()', ARRAY(SELECT relid FROM epoch.tracked));
    RETURN QUERY SELECT * FROM epoch._gc(retention);
END
$f$;

-- epoch.gc() without the check of its caller (auto: the hourly run of epoch.sweep()).
DROP FUNCTION IF EXISTS epoch._gc(interval);
CREATE OR REPLACE FUNCTION epoch._gc(retention interval, auto boolean DEFAULT false)
RETURNS TABLE (table_name text, main_rows bigint, branch_rows bigint) LANGUAGE plpgsql AS $f$
DECLARE
    keep interval := coalesce(retention, epoch._retention());
    window_seq bigint;
    cutoff bigint;
    t epoch.tracked;
    nm bigint;
    nb bigint;
    total_m bigint := 0;
    total_b bigint := 0;
BEGIN
    IF keep < interval '0' THEN
        RAISE EXCEPTION 'retention must not be negative, got %', keep USING ERRCODE = '22023';
    END IF;
    INSERT INTO epoch.meta VALUES ('gc_at', extract(epoch FROM now())::bigint)
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
    -- the oldest point the window needs: main's last change at or before its start
    SELECT c.seq INTO window_seq FROM epoch.main_clock c WHERE c.at <= now() - keep ORDER BY c.at DESC LIMIT 1;
    IF window_seq IS NULL THEN
        PERFORM epoch._audit('gc', NULL, jsonb_build_object('retention', keep::text, 'auto', auto, 'main_rows', 0, 'branch_rows', 0));
        RETURN; -- nothing is older than the window
    END IF;
    cutoff := least(window_seq,
                    (SELECT min(b.base_seq) FROM epoch.branch b WHERE b.id <> 0),
                    (SELECT min(c.base_seq) FROM epoch.commit c));
    DELETE FROM epoch.main_clock c WHERE c.seq < window_seq;
    FOR t IN SELECT * FROM epoch.tracked ORDER BY schema_name, table_name LOOP
        -- a state at point s reads the pre-images numbered after s only
        EXECUTE format('DELETE FROM epoch.%I WHERE _epoch_seq <= $1', t.history_table) USING cutoff;
        GET DIAGNOSTICS nm = ROW_COUNT;
        EXECUTE format('DELETE FROM epoch.%I x WHERE x._epoch_seq <= $1 AND NOT EXISTS '
                       '(SELECT 1 FROM epoch.commit c WHERE c.branch_id = x._epoch_branch AND c.point < x._epoch_seq)',
                       format('b_%s', t.id)) USING window_seq;
        GET DIAGNOSTICS nb = ROW_COUNT;
        table_name := epoch._table_label(t);
        main_rows := nm;
        branch_rows := nb;
        total_m := total_m + nm;
        total_b := total_b + nb;
        RETURN NEXT;
    END LOOP;
    PERFORM epoch._audit('gc', NULL, jsonb_build_object('retention', keep::text, 'auto', auto, 'cutoff', cutoff,
                                                        'main_rows', total_m, 'branch_rows', total_b));
END
$f$;

-- Called by epoch.sweep() (so at every branch_create): gc at most once an hour.
CREATE OR REPLACE FUNCTION epoch._gc_if_due() RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
    IF coalesce((SELECT value FROM epoch.meta WHERE key = 'gc_at'), 0) < extract(epoch FROM now()) - 3600 THEN
        PERFORM epoch._gc(NULL, true);
    END IF;
END
$f$;
