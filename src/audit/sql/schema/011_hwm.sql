-- Schema step 11: the HWM store (docs/hwm.md): namespaces, high-water
-- marks, the users who use them and their roles, and the append-only
-- histories of namespaces and HWMs. Written to run again harmlessly (tests
-- re-run the last step).
--
-- Nobody but the owner of schema epoch has a privilege on these tables:
-- roles reach them through the SECURITY DEFINER functions and the filtered
-- views of functions/hwm.sql, which check who calls.

-- A user of the store, recorded at its first use; is_admin is not stored
-- (a superuser, the owner of schema epoch or a member of the admin role).
CREATE TABLE IF NOT EXISTS epoch.hwm_user (
    username   text PRIMARY KEY,
    is_active  boolean NOT NULL DEFAULT true,
    first_seen timestamptz NOT NULL DEFAULT now(),
    changed_at timestamptz NOT NULL DEFAULT now(),
    changed_by text NOT NULL
);

CREATE TABLE IF NOT EXISTS epoch.hwm_namespace (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    description text,
    owned_by    text NOT NULL,
    changed_at  timestamptz NOT NULL,
    changed_by  text NOT NULL
);

-- One role per user per namespace: 1 GUEST, 2 DEVELOPER, 3 MAINTAINER,
-- 4 OWNER. The namespace's owned_by is an OWNER without a row here.
CREATE TABLE IF NOT EXISTS epoch.hwm_grant (
    namespace_id bigint NOT NULL REFERENCES epoch.hwm_namespace (id) ON DELETE CASCADE,
    username     text NOT NULL,
    role         smallint NOT NULL CHECK (role BETWEEN 1 AND 4),
    changed_at   timestamptz NOT NULL,
    changed_by   text NOT NULL,
    PRIMARY KEY (namespace_id, username)
);

CREATE TABLE IF NOT EXISTS epoch.hwm_mark (
    id           bigserial PRIMARY KEY,
    namespace_id bigint NOT NULL REFERENCES epoch.hwm_namespace (id),
    name         text NOT NULL,
    value        jsonb,
    type         text,
    description  text,
    entity       text,
    expression   text,
    changed_at   timestamptz NOT NULL,
    changed_by   text NOT NULL,
    UNIQUE (namespace_id, name)
);

-- The histories: one row per create, update or delete, as the entity became
-- (a delete: as it was). hash chains each row to the one before it (sha-256
-- of the previous hash and the row), so a row removed or changed behind the
-- triggers' back shows in epoch.hwm_verify().
CREATE TABLE IF NOT EXISTS epoch.hwm_namespace_log (
    id           bigserial PRIMARY KEY,
    namespace_id bigint NOT NULL,
    name         text NOT NULL,
    description  text,
    owned_by     text NOT NULL,
    changed_at   timestamptz NOT NULL,
    changed_by   text NOT NULL,
    action       text NOT NULL CHECK (action IN ('Created', 'Updated', 'Deleted')),
    hash         text NOT NULL
);
CREATE INDEX IF NOT EXISTS hwm_namespace_log_ns ON epoch.hwm_namespace_log (namespace_id, id);

CREATE TABLE IF NOT EXISTS epoch.hwm_mark_log (
    id           bigserial PRIMARY KEY,
    hwm_id       bigint NOT NULL,
    namespace_id bigint NOT NULL,
    name         text NOT NULL,
    value        jsonb,
    type         text,
    description  text,
    entity       text,
    expression   text,
    changed_at   timestamptz NOT NULL,
    changed_by   text NOT NULL,
    action       text NOT NULL CHECK (action IN ('Created', 'Updated', 'Deleted')),
    hash         text NOT NULL
);
CREATE INDEX IF NOT EXISTS hwm_mark_log_ns ON epoch.hwm_mark_log (namespace_id, name, id);

REVOKE ALL ON epoch.hwm_user, epoch.hwm_namespace, epoch.hwm_grant, epoch.hwm_mark,
              epoch.hwm_namespace_log, epoch.hwm_mark_log FROM PUBLIC;

-- epoch:after-functions
-- append-only histories, an HWM that never changes namespace (functions/hwm.sql)
PERFORM epoch._hwm_guard();
