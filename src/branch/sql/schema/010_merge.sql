-- Schema step 10: merges (docs/merge.md).
-- Written to run again harmlessly (tests re-run the last step).
--
-- A merge is recorded with the states it compared: the source (a commit, or
-- a clean branch's working state), the base and the target branch; its
-- conflicts, and their resolutions, in merge_conflict. The views
-- epoch.merges and epoch.conflicts (functions/merge.sql) show them.
CREATE TABLE IF NOT EXISTS epoch.merge_log (
    id            bigserial PRIMARY KEY,
    source        text NOT NULL,              -- the ref as given
    source_commit text COLLATE "C",           -- NULL: a clean branch with no commit
    source_branch bigint NOT NULL,
    source_base   bigint NOT NULL,
    source_point  bigint,
    target_id     bigint NOT NULL,            -- no foreign key: merges outlive branches
    target        text NOT NULL,
    base_branch   bigint NOT NULL,
    base_seq      bigint NOT NULL,
    base_point    bigint,
    base_commit   text COLLATE "C",
    strategy      text NOT NULL,
    status        text NOT NULL,
    message       text,
    who           text NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at   timestamptz,
    tables_merged int NOT NULL DEFAULT 0,
    rows_affected bigint NOT NULL DEFAULT 0,
    conflicts     int NOT NULL DEFAULT 0,
    commit_id     text COLLATE "C"
);
CREATE INDEX IF NOT EXISTS merge_log_target ON epoch.merge_log (target_id, status);

CREATE TABLE IF NOT EXISTS epoch.merge_conflict (
    merge_id     bigint NOT NULL REFERENCES epoch.merge_log (id) ON DELETE CASCADE,
    table_id     int NOT NULL,
    table_name   text NOT NULL,
    pk           jsonb NOT NULL,
    column_name  text,                        -- NULL: a row-level conflict
    kind         text NOT NULL,
    base_value   text,
    ours_value   text,
    theirs_value text,
    resolved     boolean NOT NULL DEFAULT false,
    resolution   text,                        -- ours, theirs, base or value
    value        text,
    UNIQUE NULLS NOT DISTINCT (merge_id, table_id, pk, column_name)
);

-- the row epoch.merge(), epoch.sync() and epoch.merge_continue() answer
IF to_regtype('epoch.merge_result') IS NULL THEN
    CREATE TYPE epoch.merge_result AS (merge_id bigint, status text, tables_merged int, rows_affected bigint,
                                       conflicts int, commit text);
END IF;

-- epoch:after-functions
-- writers take the commit lock before their first row (functions/track.sql)
PERFORM epoch._lock_trigger(t.relid::regclass, 0), epoch._lock_trigger(format('epoch.%I', t.delta_table)::regclass, 1)
   FROM epoch.tracked t WHERE to_regclass(format('epoch.%I', t.delta_table)) IS NOT NULL ORDER BY t.id;
