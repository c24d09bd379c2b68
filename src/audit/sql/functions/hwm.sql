-- functions/hwm.sql: the HWM store (docs/hwm.md): namespaces of high-water
-- marks, roles per namespace, append-only histories.
--
-- Repeatable, like every functions/ file (src/branch/migrate.c re-applies them
-- whole when their hash changes). Tables: schema step 011_hwm.sql.
--
-- Who may do what is decided here, in the database: every function that
-- reads or writes the store is SECURITY DEFINER and checks the calling role
-- (epoch._invoker(): the session's role, after SET ROLE too), so a direct
-- connection gets exactly the answers the proxy gets. Roles per namespace:
-- 1 GUEST (reads), 2 DEVELOPER (sets values), 3 MAINTAINER (creates and
-- deletes HWMs), 4 OWNER (alters and deletes the namespace, grants); an
-- admin (epoch._is_admin) is 5 everywhere; an inactive user is refused
-- everything.

CREATE OR REPLACE FUNCTION epoch._hwm_role_name(r int) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
    SELECT CASE r WHEN 1 THEN 'GUEST' WHEN 2 THEN 'DEVELOPER' WHEN 3 THEN 'MAINTAINER' WHEN 4 THEN 'OWNER'
                  WHEN 5 THEN 'admin' ELSE 'none' END;
$f$;

-- A role given by name (any case) as its level.
CREATE OR REPLACE FUNCTION epoch._hwm_role_level(role text) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN
    CASE upper(btrim(coalesce(role, '')))
        WHEN 'GUEST' THEN RETURN 1;
        WHEN 'DEVELOPER' THEN RETURN 2;
        WHEN 'MAINTAINER' THEN RETURN 3;
        WHEN 'OWNER' THEN RETURN 4;
        ELSE RAISE EXCEPTION 'unknown namespace role "%"', role USING ERRCODE = '22023',
            HINT = 'Use GUEST, DEVELOPER, MAINTAINER or OWNER.';
    END CASE;
END
$f$;

-- The caller as a user of the store: recorded at its first use, refused
-- when an admin made it inactive.
CREATE OR REPLACE FUNCTION epoch._hwm_caller() RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    who text := epoch._invoker();
    active boolean;
BEGIN
    SELECT u.is_active INTO active FROM epoch.hwm_user u WHERE u.username = who;
    IF NOT FOUND THEN
        INSERT INTO epoch.hwm_user (username, changed_by) VALUES (who, who) ON CONFLICT DO NOTHING;
        active := true;
    END IF;
    IF NOT active THEN
        RAISE EXCEPTION 'user "%" is inactive in the HWM store', who USING ERRCODE = '42501',
            HINT = 'An admin can make it active again: SELECT epoch.user_set_active(''' || who || ''', true).';
    END IF;
    RETURN who;
END
$f$;

-- who's role in namespace (id, owned_by): 5 admin, 4 its owner, else the
-- role granted, 0 none. Inactive users have none.
CREATE OR REPLACE FUNCTION epoch._hwm_role(ns_id bigint, owned_by text, who text) RETURNS int
LANGUAGE sql STABLE AS $f$
    SELECT CASE WHEN coalesce((SELECT NOT u.is_active FROM epoch.hwm_user u WHERE u.username = who), false) THEN 0
                WHEN epoch._is_admin(who::name) THEN 5
                WHEN owned_by = who THEN 4
                ELSE coalesce((SELECT g.role FROM epoch.hwm_grant g WHERE g.namespace_id = ns_id AND g.username = who), 0)
           END;
$f$;

-- May the caller see namespace (id, owned_by)? (the views' filter)
-- (a definer: a view's functions run as the role reading it, which has no
-- privilege on the tables)
CREATE OR REPLACE FUNCTION epoch._hwm_sees(ns_id bigint, owned_by text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
    SELECT epoch._hwm_role(ns_id, owned_by, epoch._invoker()) > 0;
$f$;

-- May the caller see the history of namespace ns_id, deleted or not? (of a
-- deleted one: admins only, nobody has a role left)
CREATE OR REPLACE FUNCTION epoch._hwm_sees_log(ns_id bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
    SELECT epoch._hwm_role(ns_id, (SELECT n.owned_by FROM epoch.hwm_namespace n WHERE n.id = ns_id), epoch._invoker()) > 0;
$f$;

-- Namespace `name` for the caller who, who needs at least role `need` to do
-- `what`; with lock, locked against concurrent changes (its histories
-- chain in order). A namespace the caller has no role in does not exist for it.
DROP FUNCTION IF EXISTS epoch._hwm_ns(text, text, int, text);
CREATE OR REPLACE FUNCTION epoch._hwm_ns(name text, who text, need int, what text, lock boolean DEFAULT true)
RETURNS epoch.hwm_namespace LANGUAGE plpgsql AS $f$
DECLARE
    ns epoch.hwm_namespace;
    r int;
BEGIN
    IF lock THEN
        SELECT * INTO ns FROM epoch.hwm_namespace n WHERE n.name = _hwm_ns.name FOR NO KEY UPDATE;
    ELSE
        SELECT * INTO ns FROM epoch.hwm_namespace n WHERE n.name = _hwm_ns.name;
    END IF;
    r := CASE WHEN ns.id IS NULL THEN 0 ELSE epoch._hwm_role(ns.id, ns.owned_by, who) END;
    IF r = 0 THEN
        RAISE EXCEPTION 'namespace "%" does not exist', name USING ERRCODE = '42704',
            HINT = 'SELECT name FROM epoch.namespaces lists the namespaces you have a role in.';
    END IF;
    IF r < need THEN
        RAISE EXCEPTION 'permission denied to % in namespace "%"', what, name USING ERRCODE = '42501',
            DETAIL = format('That needs the role %s or higher; user "%s" is %s there.',
                            epoch._hwm_role_name(need), who, epoch._hwm_role_name(r)),
            HINT = 'An owner of the namespace can grant it: SELECT epoch.grant(namespace, user, role).';
    END IF;
    RETURN ns;
END
$f$;

-- The history rows' chain: sha-256 of the previous row's hash (in the same
-- namespace) and this row's fields, times in UTC.
CREATE OR REPLACE FUNCTION epoch._hwm_ns_hash(prev text, l epoch.hwm_namespace_log) RETURNS text
LANGUAGE sql IMMUTABLE AS $f$
    SELECT encode(sha256(convert_to(concat_ws(E'\n', coalesce(prev, ''), l.id, l.namespace_id, l.name,
        coalesce(l.description, E'\\N'), l.owned_by, to_char(l.changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'),
        l.changed_by, l.action), 'UTF8')), 'hex');
$f$;

CREATE OR REPLACE FUNCTION epoch._hwm_mark_hash(prev text, l epoch.hwm_mark_log) RETURNS text
LANGUAGE sql IMMUTABLE AS $f$
    SELECT encode(sha256(convert_to(concat_ws(E'\n', coalesce(prev, ''), l.id, l.hwm_id, l.namespace_id, l.name,
        coalesce(l.value::text, E'\\N'), coalesce(l.type, E'\\N'), coalesce(l.description, E'\\N'),
        coalesce(l.entity, E'\\N'), coalesce(l.expression, E'\\N'),
        to_char(l.changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), l.changed_by, l.action), 'UTF8')), 'hex');
$f$;

-- Append the history row of namespace ns as it became (action Created,
-- Updated; Deleted: as it was). The caller holds the namespace's row lock.
CREATE OR REPLACE FUNCTION epoch._hwm_log_ns(ns epoch.hwm_namespace, action text) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
    l epoch.hwm_namespace_log;
BEGIN
    l := ROW(nextval('epoch.hwm_namespace_log_id_seq'), ns.id, ns.name, ns.description, ns.owned_by,
             ns.changed_at, ns.changed_by, action, NULL);
    l.hash := epoch._hwm_ns_hash((SELECT x.hash FROM epoch.hwm_namespace_log x WHERE x.namespace_id = ns.id
                                   ORDER BY x.id DESC LIMIT 1), l);
    INSERT INTO epoch.hwm_namespace_log SELECT l.*;
    PERFORM epoch._audit(lower('namespace_' || action), NULL,
                         jsonb_build_object('namespace', ns.name, 'description', ns.description, 'owned_by', ns.owned_by));
END
$f$;

CREATE OR REPLACE FUNCTION epoch._hwm_log_mark(h epoch.hwm_mark, action text) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
    l epoch.hwm_mark_log;
BEGIN
    l := ROW(nextval('epoch.hwm_mark_log_id_seq'), h.id, h.namespace_id, h.name, h.value, h.type, h.description,
             h.entity, h.expression, h.changed_at, h.changed_by, action, NULL);
    l.hash := epoch._hwm_mark_hash((SELECT x.hash FROM epoch.hwm_mark_log x WHERE x.namespace_id = h.namespace_id
                                     ORDER BY x.id DESC LIMIT 1), l);
    INSERT INTO epoch.hwm_mark_log SELECT l.*;
    PERFORM epoch._audit(lower('hwm_' || action), NULL,
                         jsonb_build_object('namespace', (SELECT n.name FROM epoch.hwm_namespace n WHERE n.id = h.namespace_id),
                                            'hwm', h.name, 'value', h.value, 'type', h.type));
END
$f$;

-- A PostgreSQL role that a namespace names (an owner, a grantee).
CREATE OR REPLACE FUNCTION epoch._hwm_known_role(username text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
    IF username IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = username) THEN
        RAISE EXCEPTION 'role "%" does not exist', username USING ERRCODE = '42704',
            HINT = 'Users of the HWM store are PostgreSQL roles.';
    END IF;
    INSERT INTO epoch.hwm_user (username, changed_by) VALUES (username, epoch._invoker()) ON CONFLICT DO NOTHING;
    RETURN username;
END
$f$;

CREATE OR REPLACE FUNCTION epoch._hwm_check_name(what text, name text) RETURNS void LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN
    IF name IS NULL OR btrim(name) = '' THEN
        RAISE EXCEPTION 'a % name cannot be empty', what USING ERRCODE = '22023';
    END IF;
    IF length(name) > 200 THEN
        RAISE EXCEPTION 'a % name is at most 200 characters, got %', what, length(name) USING ERRCODE = '22023';
    END IF;
END
$f$;

-- Create namespace name; the caller owns it. Returns its id.
CREATE OR REPLACE FUNCTION epoch.namespace_create(name text, description text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    who text := epoch._hwm_caller();
    ns epoch.hwm_namespace;
BEGIN
    PERFORM epoch._hwm_check_name('namespace', name);
    INSERT INTO epoch.hwm_namespace (name, description, owned_by, changed_at, changed_by)
    VALUES (name, description, who, clock_timestamp(), who)
    ON CONFLICT DO NOTHING RETURNING * INTO ns;
    IF ns.id IS NULL THEN
        RAISE EXCEPTION 'namespace "%" already exists', name USING ERRCODE = '42710',
            HINT = 'Namespace names are unique in a database: pick another.';
    END IF;
    PERFORM epoch._hwm_log_ns(ns, 'Created');
    RETURN ns.id;
END
$f$;

-- Rename namespace name, change its description (NULL: as it is; '' clears
-- it) or give it to another owner. Owners and admins.
CREATE OR REPLACE FUNCTION epoch.namespace_update(name text, new_name text DEFAULT NULL, description text DEFAULT NULL,
                                                  owner text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    who text := epoch._hwm_caller();
    ns epoch.hwm_namespace := epoch._hwm_ns(name, who, 4, 'alter the namespace');
    was epoch.hwm_namespace := ns;
BEGIN
    IF new_name IS NOT NULL THEN
        PERFORM epoch._hwm_check_name('namespace', new_name);
        ns.name := new_name;
    END IF;
    IF description IS NOT NULL THEN
        ns.description := nullif(description, '');
    END IF;
    IF owner IS NOT NULL THEN
        ns.owned_by := epoch._hwm_known_role(owner);
    END IF;
    IF (ns.name, ns.description, ns.owned_by) IS NOT DISTINCT FROM (was.name, was.description, was.owned_by) THEN
        RAISE NOTICE 'namespace "%" is unchanged', name;
        RETURN ns.id;
    END IF;
    IF ns.name <> was.name AND EXISTS (SELECT 1 FROM epoch.hwm_namespace n WHERE n.name = ns.name) THEN
        RAISE EXCEPTION 'namespace "%" already exists', ns.name USING ERRCODE = '42710';
    END IF;
    ns.changed_at := clock_timestamp();
    ns.changed_by := who;
    UPDATE epoch.hwm_namespace n SET name = ns.name, description = ns.description, owned_by = ns.owned_by,
                                     changed_at = ns.changed_at, changed_by = ns.changed_by
     WHERE n.id = ns.id;
    PERFORM epoch._hwm_log_ns(ns, 'Updated');
    RETURN ns.id;
END
$f$;

-- Delete namespace name: refused while it holds HWMs, unless force (they
-- are deleted first, each with its history row). Owners and admins.
CREATE OR REPLACE FUNCTION epoch.namespace_delete(name text, force boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    who text := epoch._hwm_caller();
    ns epoch.hwm_namespace := epoch._hwm_ns(name, who, 4, 'delete the namespace');
    n bigint := (SELECT count(*) FROM epoch.hwm_mark h WHERE h.namespace_id = ns.id);
    h epoch.hwm_mark;
BEGIN
    IF n > 0 AND NOT coalesce(force, false) THEN
        RAISE EXCEPTION 'namespace "%" holds % HWM%', name, n, CASE WHEN n = 1 THEN '' ELSE 's' END
            USING ERRCODE = '2BP01', HINT = 'Delete them first (epoch.hwm_delete), or pass force => true.';
    END IF;
    FOR h IN DELETE FROM epoch.hwm_mark x WHERE x.namespace_id = ns.id RETURNING * LOOP
        h.changed_at := clock_timestamp();
        h.changed_by := who;
        PERFORM epoch._hwm_log_mark(h, 'Deleted');
    END LOOP;
    DELETE FROM epoch.hwm_namespace x WHERE x.id = ns.id;
    ns.changed_at := clock_timestamp();
    ns.changed_by := who;
    PERFORM epoch._hwm_log_ns(ns, 'Deleted');
END
$f$;

-- Create or update HWM name of namespace: its value (opaque jsonb), type
-- and, optionally, description, entity, expression (NULL: as they are).
-- Developers set values and types; creating an HWM and changing what it
-- describes needs a maintainer. Returns its id.
CREATE OR REPLACE FUNCTION epoch.hwm_set(namespace text, name text, value jsonb, type text DEFAULT NULL,
                                         description text DEFAULT NULL, entity text DEFAULT NULL,
                                         expression text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    who text := epoch._hwm_caller();
    ns epoch.hwm_namespace := epoch._hwm_ns(namespace, who, 2, 'set HWM values');
    h epoch.hwm_mark;
    was epoch.hwm_mark;
BEGIN
    PERFORM epoch._hwm_check_name('HWM', name);
    IF value IS NULL THEN
        RAISE EXCEPTION 'an HWM value cannot be NULL' USING ERRCODE = '22004',
            HINT = 'Any JSON value will do, the JSON null too: ''null''::jsonb.';
    END IF;
    SELECT * INTO was FROM epoch.hwm_mark x WHERE x.namespace_id = ns.id AND x.name = hwm_set.name FOR UPDATE;
    IF was.id IS NULL THEN
        PERFORM epoch._hwm_ns(namespace, who, 3, 'create HWMs');
        IF type IS NULL THEN
            RAISE EXCEPTION 'a new HWM needs a type' USING ERRCODE = '22004',
                HINT = 'The type is yours to choose (the server keeps it as it is), e.g. ''timestamp'' or ''id''.';
        END IF;
        INSERT INTO epoch.hwm_mark (namespace_id, name, value, type, description, entity, expression, changed_at, changed_by)
        VALUES (ns.id, name, value, type, description, entity, expression, clock_timestamp(), who)
        RETURNING * INTO h;
        PERFORM epoch._hwm_log_mark(h, 'Created');
        RETURN h.id;
    END IF;
    h := was;
    h.value := value;
    h.type := coalesce(type, h.type);
    h.description := coalesce(description, h.description);
    h.entity := coalesce(entity, h.entity);
    h.expression := coalesce(expression, h.expression);
    IF (h.description, h.entity, h.expression) IS DISTINCT FROM (was.description, was.entity, was.expression) THEN
        PERFORM epoch._hwm_ns(namespace, who, 3, 'change what an HWM describes');
    END IF;
    IF (h.value, h.type, h.description, h.entity, h.expression)
       IS NOT DISTINCT FROM (was.value, was.type, was.description, was.entity, was.expression) THEN
        RETURN h.id;  -- nothing changes: no history row
    END IF;
    h.changed_at := clock_timestamp();
    h.changed_by := who;
    UPDATE epoch.hwm_mark x SET value = h.value, type = h.type, description = h.description, entity = h.entity,
                                expression = h.expression, changed_at = h.changed_at, changed_by = h.changed_by
     WHERE x.id = h.id;
    PERFORM epoch._hwm_log_mark(h, 'Updated');
    RETURN h.id;
END
$f$;

-- HWM name of namespace, for who needing role `need` to do `what`; with
-- lock, locked (and its namespace) for a change.
DROP FUNCTION IF EXISTS epoch._hwm_get(text, text, text, int, text);
CREATE OR REPLACE FUNCTION epoch._hwm_get(namespace text, name text, who text, need int, what text,
                                          lock boolean DEFAULT true) RETURNS epoch.hwm_mark
LANGUAGE plpgsql AS $f$
DECLARE
    ns epoch.hwm_namespace := epoch._hwm_ns(namespace, who, need, what, lock);
    h epoch.hwm_mark;
BEGIN
    IF lock THEN
        SELECT * INTO h FROM epoch.hwm_mark x WHERE x.namespace_id = ns.id AND x.name = _hwm_get.name FOR UPDATE;
    ELSE
        SELECT * INTO h FROM epoch.hwm_mark x WHERE x.namespace_id = ns.id AND x.name = _hwm_get.name;
    END IF;
    IF h.id IS NULL THEN
        RAISE EXCEPTION 'HWM "%" does not exist in namespace "%"', name, namespace USING ERRCODE = '42704',
            HINT = 'Create it with epoch.hwm_set(namespace, name, value, type).';
    END IF;
    RETURN h;
END
$f$;

CREATE OR REPLACE FUNCTION epoch.hwm_get(namespace text, name text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    who text := epoch._invoker();
BEGIN
    IF NOT coalesce((SELECT u.is_active FROM epoch.hwm_user u WHERE u.username = who), true) THEN
        PERFORM epoch._hwm_caller();  -- raises: inactive (a read records no new user)
    END IF;
    RETURN (epoch._hwm_get(namespace, name, who, 1, 'read HWMs', false)).value;
END
$f$;

CREATE OR REPLACE FUNCTION epoch.hwm_delete(namespace text, name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    who text := epoch._hwm_caller();
    h epoch.hwm_mark := epoch._hwm_get(namespace, name, who, 3, 'delete HWMs');
BEGIN
    DELETE FROM epoch.hwm_mark x WHERE x.id = h.id;
    h.changed_at := clock_timestamp();
    h.changed_by := who;
    PERFORM epoch._hwm_log_mark(h, 'Deleted');
END
$f$;

-- The rows of tracked table "table" changed since HWM name's mark (its
-- value: a mark of epoch.changes), on the session's branch; the mark moves
-- in the same transaction, so a consumer that fails before committing reads
-- them again. Developers and up.
CREATE OR REPLACE FUNCTION epoch.hwm_advance(namespace text, name text, "table" regclass)
RETURNS TABLE (mark text, change text, pk jsonb, "row" jsonb)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    who text := epoch._hwm_caller();
    h epoch.hwm_mark := epoch._hwm_get(namespace, name, who, 2, 'advance HWMs');
    since text := h.value #>> '{}';
    last text;
BEGIN
    IF since IS NULL OR since !~ '^[0-9]{1,18}$' THEN
        RAISE EXCEPTION 'HWM "%" holds %, not a mark of epoch.changes', name, h.value USING ERRCODE = '22023',
            HINT = 'Start it at 0 (everything since the table was tracked): SELECT epoch.hwm_set(namespace, name, ''0'').';
    END IF;
    FOR mark, change, pk, "row" IN SELECT * FROM epoch.changes("table", since) LOOP
        last := mark;
        RETURN NEXT;
    END LOOP;
    IF last IS NOT NULL AND last IS DISTINCT FROM since THEN
        h.value := to_jsonb(last::bigint);
        h.changed_at := clock_timestamp();
        h.changed_by := who;
        UPDATE epoch.hwm_mark x SET value = h.value, changed_at = h.changed_at, changed_by = h.changed_by WHERE x.id = h.id;
        PERFORM epoch._hwm_log_mark(h, 'Updated');
    END IF;
END
$f$;

-- Give user `user` role `role` in namespace (replacing the one it had).
-- Owners and admins.
CREATE OR REPLACE FUNCTION epoch.grant(namespace text, "user" text, role text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    who text := epoch._hwm_caller();
    ns epoch.hwm_namespace := epoch._hwm_ns(namespace, who, 4, 'grant roles');
    lvl int := epoch._hwm_role_level(role);
BEGIN
    PERFORM epoch._hwm_known_role("user");
    INSERT INTO epoch.hwm_grant VALUES (ns.id, "user", lvl, clock_timestamp(), who)
    ON CONFLICT (namespace_id, username) DO UPDATE SET role = EXCLUDED.role, changed_at = EXCLUDED.changed_at,
                                                       changed_by = EXCLUDED.changed_by;
    PERFORM epoch._audit('grant', NULL, jsonb_build_object('namespace', ns.name, 'user', "user",
                                                           'role', epoch._hwm_role_name(lvl)));
END
$f$;

CREATE OR REPLACE FUNCTION epoch.revoke(namespace text, "user" text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    who text := epoch._hwm_caller();
    ns epoch.hwm_namespace := epoch._hwm_ns(namespace, who, 4, 'revoke roles');
BEGIN
    IF "user" = ns.owned_by THEN
        RAISE EXCEPTION 'user "%" owns namespace "%"', "user", namespace USING ERRCODE = '55000',
            HINT = 'Give the namespace to another owner first: epoch.namespace_update(name, owner => …).';
    END IF;
    DELETE FROM epoch.hwm_grant g WHERE g.namespace_id = ns.id AND g.username = "user";
    IF NOT FOUND THEN
        RAISE NOTICE 'user "%" has no role in namespace "%"', "user", namespace;
        RETURN;
    END IF;
    PERFORM epoch._audit('revoke', NULL, jsonb_build_object('namespace', ns.name, 'user', "user"));
END
$f$;

-- Make a user of the store active or inactive (admins only).
CREATE OR REPLACE FUNCTION epoch.user_set_active("user" text, active boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    who text := epoch._hwm_caller();
BEGIN
    IF NOT epoch._is_admin(who::name) THEN
        RAISE EXCEPTION 'only an admin may make users active or inactive' USING ERRCODE = '42501',
            HINT = 'Admins: superusers, the owner of schema epoch, members of ' || epoch._admin_hint() || '.';
    END IF;
    IF active IS NULL THEN
        RAISE EXCEPTION 'active cannot be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM epoch._hwm_known_role("user");
    UPDATE epoch.hwm_user u SET is_active = active, changed_at = clock_timestamp(), changed_by = who
     WHERE u.username = "user";
    PERFORM epoch._audit('user_set_active', NULL, jsonb_build_object('user', "user", 'active', active));
END
$f$;

-- Rows of the histories whose chain does not hold (changed, or a row before
-- them removed), and current entities that differ from their last history
-- row (a history row removed at the end). Admins only. Empty: intact.
CREATE OR REPLACE FUNCTION epoch.hwm_verify() RETURNS TABLE (history text, id bigint, problem text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
    IF NOT epoch._is_admin(epoch._invoker()) THEN
        RAISE EXCEPTION 'only an admin may verify the histories' USING ERRCODE = '42501';
    END IF;
    RETURN QUERY
    SELECT 'namespace_history', l.id, 'the row or the one before it was changed or removed'
      FROM (SELECT x, lag(x.hash) OVER (PARTITION BY x.namespace_id ORDER BY x.id) AS prev
              FROM epoch.hwm_namespace_log x) s, LATERAL (SELECT (s.x).*) l
     WHERE epoch._hwm_ns_hash(s.prev, s.x) <> l.hash
    UNION ALL
    SELECT 'hwm_history', l.id, 'the row or the one before it was changed or removed'
      FROM (SELECT x, lag(x.hash) OVER (PARTITION BY x.namespace_id ORDER BY x.id) AS prev
              FROM epoch.hwm_mark_log x) s, LATERAL (SELECT (s.x).*) l
     WHERE epoch._hwm_mark_hash(s.prev, s.x) <> l.hash
    UNION ALL
    SELECT 'namespaces', n.id, 'differs from its last history row'
      FROM epoch.hwm_namespace n
      LEFT JOIN LATERAL (SELECT * FROM epoch.hwm_namespace_log x WHERE x.namespace_id = n.id ORDER BY x.id DESC LIMIT 1) l ON true
     WHERE l.id IS NULL OR l.action = 'Deleted'
        OR (n.name, n.description, n.owned_by, n.changed_at) IS DISTINCT FROM (l.name, l.description, l.owned_by, l.changed_at)
    UNION ALL
    SELECT 'hwms', h.id, 'differs from its last history row'
      FROM epoch.hwm_mark h
      LEFT JOIN LATERAL (SELECT * FROM epoch.hwm_mark_log x WHERE x.hwm_id = h.id ORDER BY x.id DESC LIMIT 1) l ON true
     WHERE l.id IS NULL OR l.action = 'Deleted'
        OR (h.value, h.type, h.description, h.entity, h.expression, h.changed_at)
           IS DISTINCT FROM (l.value, l.type, l.description, l.entity, l.expression, l.changed_at);
END
$f$;

-- The histories refuse UPDATE, DELETE and TRUNCATE from anyone (the owner
-- of the tables too); an HWM keeps its namespace.
CREATE OR REPLACE FUNCTION epoch._hwm_append_only() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    RAISE EXCEPTION '% is append-only: % is refused', CASE TG_TABLE_NAME WHEN 'hwm_mark_log' THEN 'epoch.hwm_history'
                                                        ELSE 'epoch.namespace_history' END, TG_OP
        USING ERRCODE = '42501', HINT = 'History rows are never changed or removed.';
END
$f$;

CREATE OR REPLACE FUNCTION epoch._hwm_keep_namespace() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    RAISE EXCEPTION 'an HWM never moves between namespaces' USING ERRCODE = '42501',
        HINT = 'Create it in the other namespace and delete this one.';
END
$f$;

CREATE OR REPLACE FUNCTION epoch._hwm_guard() RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['hwm_namespace_log', 'hwm_mark_log'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS epoch_append_only ON epoch.%I', t);
        EXECUTE format('CREATE TRIGGER epoch_append_only BEFORE UPDATE OR DELETE ON epoch.%I '
                       'FOR EACH ROW EXECUTE FUNCTION epoch._hwm_append_only()', t);
        EXECUTE format('DROP TRIGGER IF EXISTS epoch_append_only_truncate ON epoch.%I', t);
        EXECUTE format('CREATE TRIGGER epoch_append_only_truncate BEFORE TRUNCATE ON epoch.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION epoch._hwm_append_only()', t);
    END LOOP;
    DROP TRIGGER IF EXISTS epoch_keep_namespace ON epoch.hwm_mark;
    CREATE TRIGGER epoch_keep_namespace BEFORE UPDATE OF namespace_id ON epoch.hwm_mark
        FOR EACH ROW WHEN (OLD.namespace_id IS DISTINCT FROM NEW.namespace_id)
        EXECUTE FUNCTION epoch._hwm_keep_namespace();
END
$f$;

-- The views: each role sees the namespaces it has a role in (admins all),
-- with their HWMs and histories.
CREATE OR REPLACE VIEW epoch.namespaces AS
SELECT n.id, n.name, n.description, n.owned_by, n.changed_at, n.changed_by
  FROM epoch.hwm_namespace n
 WHERE epoch._hwm_sees(n.id, n.owned_by);

CREATE OR REPLACE VIEW epoch.hwms AS
SELECT h.id, n.name AS namespace, h.name, h.value, h.type, h.description, h.entity, h.expression,
       h.changed_at, h.changed_by
  FROM epoch.hwm_mark h JOIN epoch.hwm_namespace n ON n.id = h.namespace_id
 WHERE epoch._hwm_sees(n.id, n.owned_by);

-- A deleted namespace's history: admins only (nobody has a role left).
CREATE OR REPLACE VIEW epoch.namespace_history AS
SELECT l.id, l.namespace_id, l.name, l.description, l.owned_by, l.changed_at, l.changed_by, l.action
  FROM epoch.hwm_namespace_log l
 WHERE epoch._hwm_sees_log(l.namespace_id);

CREATE OR REPLACE VIEW epoch.hwm_history AS
SELECT l.id, l.hwm_id, l.namespace_id, coalesce(n.name, (SELECT x.name FROM epoch.hwm_namespace_log x
                                                         WHERE x.namespace_id = l.namespace_id ORDER BY x.id DESC LIMIT 1)) AS namespace,
       l.name, l.value, l.type, l.description, l.entity, l.expression, l.changed_at, l.changed_by, l.action
  FROM epoch.hwm_mark_log l LEFT JOIN epoch.hwm_namespace n ON n.id = l.namespace_id
 WHERE epoch._hwm_sees_log(l.namespace_id);

CREATE OR REPLACE VIEW epoch.namespace_roles AS
SELECT n.name AS namespace, n.owned_by AS username, 'OWNER'::text AS role
  FROM epoch.hwm_namespace n WHERE epoch._hwm_sees(n.id, n.owned_by)
UNION ALL
SELECT n.name, g.username, epoch._hwm_role_name(g.role)
  FROM epoch.hwm_grant g JOIN epoch.hwm_namespace n ON n.id = g.namespace_id
 WHERE g.username <> n.owned_by AND epoch._hwm_sees(n.id, n.owned_by);

CREATE OR REPLACE VIEW epoch.hwm_users AS
SELECT u.username, u.is_active, epoch._is_admin(u.username::name) AS is_admin, u.first_seen, u.changed_at, u.changed_by
  FROM epoch.hwm_user u;

GRANT SELECT ON epoch.namespaces, epoch.hwms, epoch.namespace_history, epoch.hwm_history, epoch.namespace_roles,
                epoch.hwm_users TO PUBLIC;
