-- Schema step 1: the epoch catalog (tables of tracked tables and branches).
-- Steps of schema/ run in order inside the migration DO block of migrate.c,
-- which holds the migration lock and applies only the steps above the
-- database's schema_version; the functions and views (functions/*.sql) are
-- applied after them. Never edit a step that has shipped: add one.
--
-- A step holds tables, indexes, backfills and the DROP of a function or view
-- whose signature or columns change. What must run once but needs the
-- current functions goes below a line "-- epoch:after-functions": the block
-- runs it after applying functions/ (same transaction).

CREATE SCHEMA epoch;
COMMENT ON SCHEMA epoch IS 'Epoch: branch metadata, storage of branch rows and captured history';

CREATE TABLE epoch.meta (key text PRIMARY KEY, value bigint NOT NULL);
INSERT INTO epoch.meta VALUES ('schema_version', 0), ('catalog_version', 1);

-- The global change sequence: every captured pre-image of main gets the next
-- number; a branch's base point is a value of it.
CREATE SEQUENCE epoch.change_seq AS bigint;

CREATE TABLE epoch.tracked (
    id           serial PRIMARY KEY,
    relid        oid NOT NULL UNIQUE,
    schema_name  text NOT NULL,
    table_name   text NOT NULL,
    pk_columns   text[] NOT NULL,
    delta_table  text NOT NULL,
    history_table text NOT NULL,
    tracked_at   timestamptz NOT NULL DEFAULT now(),
    tracked_by   text NOT NULL DEFAULT current_user,
    UNIQUE (schema_name, table_name)
);

CREATE TABLE epoch.branch (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    parent_id   bigint REFERENCES epoch.branch (id) ON DELETE SET NULL,
    base_seq    bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL DEFAULT current_user,
    agent_id    text,
    description text,
    expires_at  timestamptz,
    protected   boolean NOT NULL DEFAULT false
);
-- epoch.sweep() looks only at branches with a ttl
CREATE INDEX branch_expires_at ON epoch.branch (expires_at) WHERE expires_at IS NOT NULL;
INSERT INTO epoch.branch (id, name, protected, description)
VALUES (0, 'main', true, 'the live tables');
