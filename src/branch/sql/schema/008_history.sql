-- Schema step 8: history (commits, tags, time travel). See docs/history.md.
-- Written to run again harmlessly (tests re-run the last step).
--
-- Every stream of changes is captured the same way: main's writes leave
-- pre-images in h_<id> (since step 1), a branch's writes now leave the
-- pre-images of its rows of d_<id> in b_<id>, both numbered by
-- epoch.change_seq. A commit is metadata plus a point of that sequence; the
-- state of a table at a commit is rebuilt from the rows changed after it.

-- The clock of main's changes: one row per captured statement on main, so
-- main@{time} finds the last change at or before a time. Its first row marks
-- where time travel begins (history before this step has no times).
CREATE TABLE IF NOT EXISTS epoch.main_clock (seq bigint NOT NULL, at timestamptz NOT NULL);
CREATE INDEX IF NOT EXISTS main_clock_at ON epoch.main_clock (at);
IF NOT EXISTS (SELECT 1 FROM epoch.main_clock) THEN
    INSERT INTO epoch.main_clock VALUES (coalesce(pg_sequence_last_value('epoch.change_seq'), 0), now());
END IF;

CREATE TABLE IF NOT EXISTS epoch.commit (
    id          text COLLATE "C" PRIMARY KEY,  -- sha-256, hex
    parents     text[] NOT NULL DEFAULT '{}',
    branch_id   bigint NOT NULL,               -- no foreign key: commits outlive their branch
    branch_name text NOT NULL,
    point       bigint NOT NULL,               -- the change_seq value sealed
    base_seq    bigint NOT NULL,               -- the branch's base then (main: = point)
    author      text NOT NULL,
    message     text NOT NULL,
    created_at  timestamptz NOT NULL,
    ord         bigserial NOT NULL UNIQUE      -- creation order (the log's order)
);
CREATE INDEX IF NOT EXISTS commit_branch ON epoch.commit (branch_id, created_at);

CREATE TABLE IF NOT EXISTS epoch.commit_table (
    commit_id   text COLLATE "C" NOT NULL REFERENCES epoch.commit (id) ON DELETE CASCADE,
    table_id    int NOT NULL,
    schema_name text NOT NULL,
    table_name  text NOT NULL,
    inserted    bigint NOT NULL,
    updated     bigint NOT NULL,
    deleted     bigint NOT NULL,
    PRIMARY KEY (commit_id, table_id)
);

CREATE TABLE IF NOT EXISTS epoch.tag (
    name       text PRIMARY KEY,
    commit_id  text COLLATE "C" NOT NULL REFERENCES epoch.commit (id),
    message    text,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL DEFAULT current_user
);

-- head_commit: the branch's last commit (at creation: the head commit of the
-- ref it was made from); its next commit is compared with it.
ALTER TABLE epoch.branch ADD COLUMN IF NOT EXISTS head_commit text COLLATE "C";

-- epoch:after-functions
-- the branch history of every table tracked before this step
PERFORM epoch._branch_history(t) FROM epoch.tracked t
  WHERE to_regclass(format('epoch.%I', 'b_' || t.id)) IS NULL ORDER BY t.id;
