-- functions/access.sql: who may do what (docs/privileges.md). Every role
-- with CONNECT can use branches; what it may read and change on a branch is
-- decided by the base table's privileges, as on main.
--
-- The storage of branch rows and history (epoch.d_<id>, h_<id>, b_<id>)
-- belongs to the schema's owner and no other role has any privilege on it.
-- Sessions reach it through views per tracked table, owned by the schema's
-- owner (so a view, not the role, needs the storage's privileges; see
-- _access() below): row views dv_<id> (also written through), hv_<id>,
-- bv_<id>, and key views dk_<id>, hk_<id>, bk_<id> for the anti-joins.
-- Each view's WHERE has a gate that depends on no row, written as a scalar
-- subquery: PostgreSQL evaluates it once per execution (an InitPlan, tested
-- by a one-time filter before the first row is read; a bare function call
-- there was evaluated again at every rescan of an anti-join's inner side,
-- +57 % CPU on a 1,000-row range read, bench/privileges). It raises 42501
-- unless the role may SELECT the base table. Under row-level security the
-- views also carry the table's policies (_access()). The views are plain
-- (not security_barrier) so that the key conditions of a query still reach
-- the indexes; without row-level security nothing leaks through that, since
-- the gate admits a role to all the rows or to none.
-- Writes through dv_<id> are checked twice: the rewritten statement calls
-- epoch._may_write() for the statement's kind and columns (PostgreSQL's rules:
-- INSERT/UPDATE/DELETE, column privileges), and a statement trigger on d_<id>
-- (epoch._check_branch_write) refuses rows a role could not have written
-- through the proxy in kind (a tombstone needs DELETE or UPDATE, a row needs
-- INSERT or UPDATE), for writes made by hand on a direct connection, and
-- tests row-level security's WITH CHECK.
--
-- Control functions that touch the storage are SECURITY DEFINER with
-- search_path pg_catalog, pg_temp; they act for epoch._invoker() and check
-- its rights themselves.
--
-- Repeatable: the current definition of each function, exactly one each. The
-- migration DO block (src/branch/migrate.c) re-applies every file of
-- functions/ whole, after the numbered schema steps, whenever their hash differs
-- from the one stored in epoch.meta ('functions_hash'). Edit in place; a change of
-- signature or of a view's columns also needs a DROP in a new schema/NNN_*.sql.

-- The role a call acts for: SET ROLE's role, else the session's. Inside a
-- SECURITY DEFINER function current_user is the function's owner, while the
-- role setting and session_user stay the caller's.
CREATE OR REPLACE FUNCTION epoch._invoker() RETURNS name LANGUAGE sql STABLE AS $f$
    SELECT CASE WHEN current_setting('role') = 'none' THEN session_user
                ELSE current_setting('role')::name END
$f$;

-- A table's name for messages: bare in public, schema-qualified elsewhere
-- (inside functions whose search_path is pg_catalog, regclass prints with
-- the schema always).
CREATE OR REPLACE FUNCTION epoch._rel_label(rel regclass) RETURNS text LANGUAGE sql STABLE AS $f$
    SELECT CASE WHEN n.nspname = 'public' THEN c.relname::text ELSE format('%s.%s', n.nspname, c.relname) END
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = rel
$f$;

-- The admin role: the one epoch.set_admin_role() chose (epoch.meta
-- 'admin_role', an oid), else the role named epoch_admin (the migration
-- creates it when it may). NULL: there is none.
CREATE OR REPLACE FUNCTION epoch._admin_role() RETURNS oid LANGUAGE sql STABLE AS $f$
    SELECT coalesce((SELECT r.oid FROM epoch.meta m JOIN pg_catalog.pg_roles r ON r.oid = m.value::oid
                      WHERE m.key = 'admin_role'),
                    (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = 'epoch_admin'))
$f$;

-- May role who administer epoch: a superuser, the schema's owner (or a
-- member of it), or a member of the admin role.
CREATE OR REPLACE FUNCTION epoch._is_admin(who name) RETURNS boolean LANGUAGE sql STABLE AS $f$
    SELECT coalesce((SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = who), false)
        OR pg_catalog.pg_has_role(who, (SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = 'epoch'), 'USAGE')
        OR coalesce(pg_catalog.pg_has_role(who, epoch._admin_role(), 'MEMBER'), false)
$f$;

-- "role x" for hints about the admin role.
CREATE OR REPLACE FUNCTION epoch._admin_hint() RETURNS text LANGUAGE sql STABLE AS $f$
    SELECT coalesce('role ' || quote_ident((SELECT rolname FROM pg_catalog.pg_roles WHERE oid = epoch._admin_role())),
                    'role epoch_admin (create it: CREATE ROLE epoch_admin NOLOGIN)')
$f$;

-- Raise 42501 unless the invoker administers epoch or owns every table in rels.
CREATE OR REPLACE FUNCTION epoch._require_admin(what text, rels oid[] DEFAULT '{}') RETURNS void
LANGUAGE plpgsql STABLE AS $f$
DECLARE
    who name := epoch._invoker();
BEGIN
    IF epoch._is_admin(who) THEN
        RETURN;
    END IF;
    IF cardinality(rels) > 0 AND NOT EXISTS (
           SELECT 1 FROM pg_catalog.pg_class c
            WHERE c.oid = ANY (rels) AND NOT pg_catalog.pg_has_role(who, c.relowner, 'USAGE')) THEN
        RETURN;
    END IF;
    RAISE EXCEPTION 'permission denied to %', what
        USING ERRCODE = '42501',
              HINT = format('It needs %sa member of %s, or a superuser.',
                            CASE WHEN cardinality(rels) > 0 THEN 'the owner of the tables, ' ELSE '' END,
                            epoch._admin_hint());
END
$f$;

-- Raise 42501 unless the invoker owns branch b (made it, or is a member of
-- the role that did) or administers epoch.
CREATE OR REPLACE FUNCTION epoch._require_branch_owner(b epoch.branch, what text) RETURNS void
LANGUAGE plpgsql STABLE AS $f$
DECLARE
    who name := epoch._invoker();
BEGIN
    IF who = b.created_by
       OR (EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = b.created_by)
           AND pg_catalog.pg_has_role(who, b.created_by::name, 'MEMBER'))
       OR epoch._is_admin(who) THEN
        RETURN;
    END IF;
    RAISE EXCEPTION 'permission denied to % branch "%" of role %', what, b.name, quote_ident(b.created_by)
        USING ERRCODE = '42501',
              HINT = format('Only its owner, a member of %s, or a superuser may.', epoch._admin_hint());
END
$f$;

-- Choose the admin role (superusers and the schema's owner only).
CREATE OR REPLACE FUNCTION epoch.set_admin_role(role name) RETURNS name
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    r oid := (SELECT oid FROM pg_roles WHERE rolname = role);
BEGIN
    IF NOT (coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = epoch._invoker()), false)
            OR pg_has_role(epoch._invoker(), (SELECT nspowner FROM pg_namespace WHERE nspname = 'epoch'), 'USAGE')) THEN
        RAISE EXCEPTION 'permission denied to choose the epoch admin role'
            USING ERRCODE = '42501', HINT = 'It needs the owner of schema epoch or a superuser.';
    END IF;
    IF r IS NULL THEN
        RAISE EXCEPTION 'role "%" does not exist', role USING ERRCODE = '42704';
    END IF;
    INSERT INTO epoch.meta VALUES ('admin_role', r::bigint)
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
    RETURN role;
END
$f$;

-- Does row-level security apply to role who on table rel? PostgreSQL's own
-- rule (check_enable_rls): enabled on the table, and the role neither
-- bypasses it (superuser, BYPASSRLS) nor owns the table unless it is forced.
-- For the current user, row_security_active() says the same.
CREATE OR REPLACE FUNCTION epoch._rls_applies(rel oid, who name) RETURNS boolean LANGUAGE sql STABLE AS $f$
    SELECT c.relrowsecurity AND NOT r.rolsuper AND NOT r.rolbypassrls
           AND (c.relforcerowsecurity OR NOT pg_catalog.pg_has_role(who, c.relowner, 'USAGE'))
      FROM pg_catalog.pg_class c, pg_catalog.pg_roles r
     WHERE c.oid = rel AND r.rolname = who
$f$;

-- The errors of the gates (called only when a gate fails).
CREATE OR REPLACE FUNCTION epoch._deny(rel oid, why text) RETURNS boolean LANGUAGE plpgsql STABLE PARALLEL SAFE AS $f$
DECLARE
    name text := (SELECT relname FROM pg_catalog.pg_class WHERE oid = rel);
BEGIN
    IF why IN ('stale', 'columns') THEN
        RAISE EXCEPTION 'the % of table "%" changed since epoch made its views',
                CASE why WHEN 'stale' THEN 'row-level security' ELSE 'privileges' END, name
            USING ERRCODE = '0A000',
                  HINT = 'Run SELECT epoch.refresh_policies(); and retry (epoch.watch_ddl() makes this happen by itself).';
    END IF;
    RAISE EXCEPTION 'permission denied for table %', name USING ERRCODE = '42501';
END
$f$;

-- The gate of the read views of a table without column privileges: may
-- the current role read table rel's rows on branches (SELECT on it)? A role
-- with SELECT on some of its columns only means column privileges were
-- granted since the views were made (_access() gives such a table views
-- with the table's own grants instead): refused as stale. SQL, so
-- PostgreSQL inlines it; PARALLEL SAFE, so it keeps parallel plans.
CREATE OR REPLACE FUNCTION epoch._may_read(rel oid) RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $f$
    SELECT CASE WHEN pg_catalog.has_table_privilege(rel, 'SELECT') THEN true
                WHEN pg_catalog.has_any_column_privilege(rel, 'SELECT') THEN epoch._deny(rel, 'columns')
                ELSE epoch._deny(rel, 'privilege') END
$f$;

-- Column privileges. A table with SELECT granted on some columns gets
-- access views that carry the table's SELECT grants, table and column
-- (_access()), so that PostgreSQL checks the columns a query reads as on
-- the table (the rewriter reads only those, src/rewrite/rewrite_columns.c);
-- their gate only checks that the grants are still those the views copied.
-- The fingerprint of rel's grants (owner, table and column ACLs).
CREATE OR REPLACE FUNCTION epoch._acl_fp(rel oid) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $f$
    SELECT md5(format('%s|%s|%s', c.relowner, c.relacl,
                      (SELECT string_agg(format('%s=%s', a.attnum, a.attacl), ',' ORDER BY a.attnum)
                         FROM pg_catalog.pg_attribute a
                        WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL)))
      FROM pg_catalog.pg_class c WHERE c.oid = rel
$f$;

CREATE OR REPLACE FUNCTION epoch._acl_fresh(rel oid, fp text) RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $f$
    SELECT CASE WHEN epoch._acl_fp(rel) = fp THEN true ELSE epoch._deny(rel, 'columns') END
$f$;

-- Has rel SELECT granted on some of its columns (not on the whole table)?
CREATE OR REPLACE FUNCTION epoch._column_grants(rel oid) RETURNS boolean LANGUAGE sql STABLE AS $f$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a, pg_catalog.aclexplode(a.attacl) x
                    WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped AND x.privilege_type = 'SELECT')
$f$;

-- Give view v (of tracked table rel) rel's SELECT grants: the table's, and
-- each column's on the view's column of that name; the view's own columns
-- (_epoch_*) to every role. Earlier grants of SELECT on v are revoked first.
CREATE OR REPLACE FUNCTION epoch._copy_select_grants(rel oid, v text) RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    g record;
    vid oid := format('epoch.%I', v)::regclass;
BEGIN
    FOR g IN SELECT DISTINCT x.grantee FROM pg_class c, aclexplode(c.relacl) x
              WHERE c.oid = vid AND x.grantee <> c.relowner LOOP
        EXECUTE format('REVOKE SELECT ON epoch.%I FROM %s', v,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END);
    END LOOP;
    FOR g IN SELECT DISTINCT x.grantee FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) x
              WHERE c.oid = rel AND x.privilege_type = 'SELECT' LOOP
        EXECUTE format('GRANT SELECT ON epoch.%I TO %s', v,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END);
    END LOOP;
    FOR g IN SELECT DISTINCT a.attname, x.grantee FROM pg_attribute a, aclexplode(a.attacl) x
              WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped AND x.privilege_type = 'SELECT'
                AND EXISTS (SELECT 1 FROM pg_attribute va WHERE va.attrelid = vid AND va.attname = a.attname) LOOP
        EXECUTE format('GRANT SELECT (%I) ON epoch.%I TO %s', g.attname, v,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END);
    END LOOP;
    FOR g IN SELECT va.attname FROM pg_attribute va
              WHERE va.attrelid = vid AND va.attnum > 0 AND va.attname LIKE '\_epoch\_%' LOOP
        EXECUTE format('GRANT SELECT (%I) ON epoch.%I TO PUBLIC', g.attname, v);
    END LOOP;
END
$f$;

-- Row-level security in the access views. A table without it enabled when
-- its views were made gets views with no policy condition (nothing to pay
-- per row): rls_never() refuses a role the policies would apply to (they
-- were enabled since: the views are stale). A table with it gets views
-- whose condition is its SELECT policies (_rls_pred), used unless
-- rls_off() says they do not apply to the role; rls_off() also refuses
-- when the policies changed since (_policy_fp).
CREATE OR REPLACE FUNCTION epoch._rls_never(rel oid) RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $f$
    SELECT CASE WHEN pg_catalog.row_security_active(rel) THEN epoch._deny(rel, 'stale') ELSE true END
$f$;

CREATE OR REPLACE FUNCTION epoch._policy_fp(rel oid) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $f$
    SELECT md5(coalesce(string_agg(format('%s|%s|%s|%s|%s', p.polname, p.polcmd, p.polpermissive,
                                          p.polroles::text, p.polqual::text), E'\n' ORDER BY p.polname), ''))
      FROM pg_catalog.pg_policy p WHERE p.polrelid = rel
$f$;

-- The tables the SELECT policies of rel that apply to the current role read
-- (subqueries in USING: pg_depend), readable by the role? On main PostgreSQL
-- checks them as the role; the views run the policies as their owner, so
-- the check is made here, once per execution (42501 naming the first such
-- table; a table readable in some columns counts). Answers false (policies
-- apply).
CREATE OR REPLACE FUNCTION epoch._policy_tables_readable(rel oid) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $f$
DECLARE
    denied text;
BEGIN
    SELECT c.relname INTO denied
      FROM pg_catalog.pg_policy p
      JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_policy'::regclass AND d.objid = p.oid
                                 AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid <> rel
      JOIN pg_catalog.pg_class c ON c.oid = d.refobjid AND c.relkind IN ('r', 'v', 'm', 'f', 'p')
     WHERE p.polrelid = rel AND p.polcmd IN ('r', '*')
       AND (0::oid = ANY (p.polroles) OR EXISTS (SELECT 1 FROM unnest(p.polroles) r
                                                  WHERE pg_catalog.pg_has_role(current_user, r, 'USAGE')))
       AND NOT pg_catalog.has_any_column_privilege(d.refobjid, 'SELECT')
     ORDER BY c.relname LIMIT 1;
    IF denied IS NOT NULL THEN
        RAISE EXCEPTION 'permission denied for table %', denied USING ERRCODE = '42501';
    END IF;
    RETURN false;
END
$f$;

CREATE OR REPLACE FUNCTION epoch._rls_off(rel oid, fp text) RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $f$
    SELECT CASE WHEN NOT pg_catalog.row_security_active(rel) THEN true
                WHEN epoch._policy_fp(rel) = fp THEN epoch._policy_tables_readable(rel)
                ELSE epoch._deny(rel, 'stale') END
$f$;


-- The policies of rel for commands cmds (pg_policy.polcmd: r SELECT, a
-- INSERT, w UPDATE, d DELETE, * ALL) as one condition on a row whose columns
-- are named as rel's, as PostgreSQL combines them: the permissive ones that
-- apply to the current role OR'ed (none: no row), the restrictive ones
-- AND'ed; their USING, or with_check their WITH CHECK (USING where a policy
-- has none). Every name outside pg_catalog comes out qualified (search_path
-- below); the role is current_user when the condition runs.
CREATE OR REPLACE FUNCTION epoch._rls_pred_for(rel oid, cmds "char"[], with_check boolean) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $f$
    WITH p AS (
        SELECT p.polpermissive AS perm,
               pg_get_expr(CASE WHEN with_check THEN coalesce(p.polwithcheck, p.polqual) ELSE p.polqual END,
                           p.polrelid) AS qual,
               CASE WHEN 0::oid = ANY (p.polroles) THEN 'true'
                    ELSE '(' || (SELECT string_agg(format('pg_catalog.pg_has_role(current_user, %s::oid, ''USAGE'')', r), ' OR ')
                                   FROM unnest(p.polroles) r) || ')' END AS who
          FROM pg_policy p
         WHERE p.polrelid = rel AND p.polcmd = ANY (cmds)
           AND (CASE WHEN with_check THEN coalesce(p.polwithcheck, p.polqual) ELSE p.polqual END) IS NOT NULL)
    SELECT coalesce((SELECT '(' || string_agg(format('(%s AND (%s))', who, qual), ' OR ') || ')' FROM p WHERE perm), 'false')
           || coalesce((SELECT ' AND ' || string_agg(format('(NOT %s OR (%s))', who, qual), ' AND ') FROM p WHERE NOT perm), '')
$f$;

-- The SELECT policies' condition (the access views').
CREATE OR REPLACE FUNCTION epoch._rls_pred(rel oid) RETURNS text LANGUAGE sql STABLE AS $f$
    SELECT epoch._rls_pred_for(rel, '{r,*}', false)
$f$;

-- The gate of a rewritten write: may the current role write rel as kind
-- (INSERT, UPDATE, DELETE), naming columns cols (NULL: every column)? The
-- rules of PostgreSQL: the table's privilege, or that of each column.
-- (Row-level security: the rewritten UPDATE/DELETE filter their targets
-- with epoch._rls_ok_<id>, the write check tests WITH CHECK.)
CREATE OR REPLACE FUNCTION epoch._may_write(rel oid, kind text, cols text[]) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $f$
BEGIN
    IF NOT pg_catalog.has_table_privilege(rel, kind) THEN
        IF lower(kind) = 'delete' OR cols IS NULL OR EXISTS (
               SELECT 1 FROM unnest(cols) c WHERE NOT pg_catalog.has_column_privilege(rel, c, kind)) THEN
            RETURN epoch._deny(rel, 'privilege');
        END IF;
    END IF;
    RETURN true;
END
$f$;

-- The same rules for the invoker of a SECURITY DEFINER function: may it
-- read (SELECT on every column: it is shown whole rows) table rel? With
-- strict, raise instead of answering false.
CREATE OR REPLACE FUNCTION epoch._invoker_may_select(rel oid, strict boolean) RETURNS boolean
LANGUAGE plpgsql STABLE AS $f$
DECLARE
    who name := epoch._invoker();
BEGIN
    IF pg_catalog.has_table_privilege(who, rel, 'SELECT')
       OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                       WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
                         AND NOT pg_catalog.has_column_privilege(who, rel, a.attnum, 'SELECT')) THEN
        RETURN true;
    END IF;
    IF strict THEN
        RAISE EXCEPTION 'permission denied for table %', (SELECT relname FROM pg_catalog.pg_class WHERE oid = rel)
            USING ERRCODE = '42501';
    END IF;
    RETURN false;
END
$f$;

-- May the invoker see that table rel exists and how many of its rows a
-- commit or a branch changed (SELECT on it or on any of its columns)? The
-- counts of epoch.status, epoch.show(), epoch.commits and epoch.branches
-- leave out the others. A relation that is gone: yes (nothing to check).
CREATE OR REPLACE FUNCTION epoch._invoker_may_see(rel oid) RETURNS boolean LANGUAGE sql STABLE AS $f$
    SELECT coalesce(pg_catalog.has_any_column_privilege(epoch._invoker(), rel, 'SELECT'), true)
$f$;

-- The same for tracked table table_id (one no longer tracked: yes).
CREATE OR REPLACE FUNCTION epoch._table_shown(table_id int) RETURNS boolean LANGUAGE sql STABLE AS $f$
    SELECT coalesce((SELECT epoch._invoker_may_see(t.relid) FROM epoch.tracked t WHERE t.id = table_id), true)
$f$;

-- The same, and no row-level security applying to the invoker (a definer
-- would show it rows its policies hide).
CREATE OR REPLACE FUNCTION epoch._invoker_may_read(rel oid, strict boolean) RETURNS boolean
LANGUAGE plpgsql STABLE AS $f$
DECLARE
    who name := epoch._invoker();
BEGIN
    IF NOT epoch._invoker_may_select(rel, strict) THEN
        RETURN false;
    END IF;
    IF epoch._rls_applies(rel, who) THEN
        IF strict THEN
            RAISE EXCEPTION 'row-level security applies to role "%" on table "%"; this call does not apply policies',
                who, (SELECT relname FROM pg_catalog.pg_class WHERE oid = rel)
                USING ERRCODE = '0A000',
                      HINT = 'epoch.diff, epoch.diff_stat and epoch.changes called directly apply them; a merge does not yet.';
        END IF;
        RETURN false;
    END IF;
    RETURN true;
END
$f$;

-- The rows of tracked table t_id that differ between states a and b
-- (epoch._diff_rows: pk, a_found, a_v, b_found, b_v), for an invoker no
-- row-level security applies to (else 0A000: epoch._rls_images).
CREATE OR REPLACE FUNCTION epoch._diff_plain(t_id int, a_bid bigint, a_base bigint, a_point bigint,
                                             b_bid bigint, b_base bigint, b_point bigint)
RETURNS TABLE (pk jsonb, a_found boolean, a_v text[], b_found boolean, b_v text[])
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $f$
DECLARE
    t epoch.tracked;
BEGIN
    SELECT * INTO t FROM epoch.tracked x WHERE x.id = t_id;
    PERFORM epoch._invoker_may_read(t.relid, true);
    RETURN QUERY EXECUTE epoch._diff_rows(t, a_bid, a_base, a_point, b_bid, b_base, b_point);
END
$f$;

-- The same rows for an invoker that row-level security applies to: each
-- version found goes into pg_temp._epoch_img (t's columns, typed, and
-- _epoch_pk, _epoch_side 'a' or 'b', _epoch_v), a table with t's SELECT
-- policies, forced, that only the invoker may read: reading it, the invoker
-- gets the versions its policies let it see and no other (PostgreSQL applies
-- them, as the invoker, subqueries and functions included).
CREATE OR REPLACE FUNCTION epoch._rls_images(t_id int, a_bid bigint, a_base bigint, a_point bigint,
                                             b_bid bigint, b_base bigint, b_point bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $f$
DECLARE
    t epoch.tracked;
    who name := epoch._invoker();
    cols text;
    typed text;
    p record;
BEGIN
    SELECT * INTO t FROM epoch.tracked x WHERE x.id = t_id;
    PERFORM epoch._invoker_may_select(t.relid, true);
    PERFORM epoch._drop_temp('_epoch_img');
    SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum)
      INTO cols FROM pg_attribute a WHERE a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped;
    EXECUTE format('CREATE TEMP TABLE _epoch_img (%s, _epoch_pk jsonb, _epoch_side "char", _epoch_v text[]) ON COMMIT DROP',
                   cols);
    -- every column (generated ones too: a policy may read them) typed from a side's text[]
    SELECT string_agg(format('(_x_v[%s])::%s', o, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY o) INTO typed
      FROM (SELECT row_number() OVER (ORDER BY attnum) AS o, atttypid, atttypmod FROM pg_attribute
             WHERE attrelid = t.relid AND attnum > 0 AND NOT attisdropped) a;
    EXECUTE format('WITH d AS MATERIALIZED (%s) INSERT INTO pg_temp._epoch_img '
                   'SELECT %s, d.pk, ''a'', d.a_v FROM d WHERE d.a_found UNION ALL SELECT %s, d.pk, ''b'', d.b_v FROM d WHERE d.b_found',
                   epoch._diff_rows(t, a_bid, a_base, a_point, b_bid, b_base, b_point),
                   replace(typed, '_x_v', 'd.a_v'), replace(typed, '_x_v', 'd.b_v'));
    ALTER TABLE pg_temp._epoch_img ENABLE ROW LEVEL SECURITY;
    ALTER TABLE pg_temp._epoch_img FORCE ROW LEVEL SECURITY;
    -- as PostgreSQL combines them: SELECT and ALL policies, their USING
    FOR p IN SELECT x.polname, x.polpermissive, x.polroles, pg_get_expr(x.polqual, x.polrelid) AS q
               FROM pg_policy x WHERE x.polrelid = t.relid AND x.polcmd IN ('r', '*') AND x.polqual IS NOT NULL LOOP
        EXECUTE format('CREATE POLICY %I ON pg_temp._epoch_img AS %s FOR SELECT TO %s USING (%s)', p.polname,
                       CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                       CASE WHEN 0::oid = ANY (p.polroles) THEN 'PUBLIC'
                            ELSE (SELECT string_agg(quote_ident(r.rolname), ', ') FROM pg_roles r WHERE r.oid = ANY (p.polroles)) END,
                       p.q);
    END LOOP;
    EXECUTE format('GRANT SELECT ON pg_temp._epoch_img TO %I', who);
END
$f$;

-- SQL of the rows of t that differ between states a and b, as the invoker
-- may see them (pk, a_found, a_v, b_found, b_v): for epoch.diff,
-- epoch.diff_stat and epoch.changes, which run as the invoker. Under
-- row-level security a version the policies hide is absent: a row the role
-- saw before and not after reads as deleted, and one it sees only after as
-- inserted. Called from a SECURITY DEFINER function (the policies would be
-- the definer's), row-level security refuses (0A000).
CREATE OR REPLACE FUNCTION epoch._diff_source(t epoch.tracked, a_bid bigint, a_base bigint, a_point bigint,
                                              b_bid bigint, b_base bigint, b_point bigint) RETURNS text
LANGUAGE plpgsql AS $f$
BEGIN
    IF NOT epoch._rls_applies(t.relid, epoch._invoker()) THEN
        RETURN format('SELECT * FROM epoch._diff_plain(%s, %L, %L, %L, %L, %L, %L)',
                      t.id, a_bid, a_base, a_point, b_bid, b_base, b_point);
    END IF;
    IF current_user <> epoch._invoker() THEN
        PERFORM epoch._invoker_may_read(t.relid, true);   -- raises 0A000
    END IF;
    PERFORM epoch._rls_images(t.id, a_bid, a_base, a_point, b_bid, b_base, b_point);
    -- one version a side: max() of one value
    RETURN 'SELECT i._epoch_pk AS pk, bool_or(i._epoch_side = ''a'') AS a_found, '
           'max(i._epoch_v) FILTER (WHERE i._epoch_side = ''a'') AS a_v, '
           'bool_or(i._epoch_side = ''b'') AS b_found, '
           'max(i._epoch_v) FILTER (WHERE i._epoch_side = ''b'') AS b_v '
           'FROM pg_temp._epoch_img i GROUP BY i._epoch_pk';
END
$f$;

-- May the invoker write every row of rel (INSERT, UPDATE and DELETE on the
-- table, no policy applying)? For functions that rewrite rows wholesale
-- (reset, revert). Raises 42501 / 0A000.
CREATE OR REPLACE FUNCTION epoch._invoker_may_rewrite(rel oid) RETURNS void LANGUAGE plpgsql STABLE AS $f$
DECLARE
    who name := epoch._invoker();
BEGIN
    IF NOT (pg_catalog.has_table_privilege(who, rel, 'INSERT') AND pg_catalog.has_table_privilege(who, rel, 'UPDATE')
            AND pg_catalog.has_table_privilege(who, rel, 'DELETE')) THEN
        RAISE EXCEPTION 'permission denied for table %', (SELECT relname FROM pg_catalog.pg_class WHERE oid = rel)
            USING ERRCODE = '42501', HINT = 'Rewriting a table''s rows needs INSERT, UPDATE and DELETE on it.';
    END IF;
    PERFORM epoch._invoker_may_read(rel, true);
END
$f$;

-- May the current role write any row of table rel's storage, owned by role
-- owner: it is (a member of) the owner (epoch's own functions, which check
-- their caller), or it may INSERT, UPDATE and DELETE rel and no policy
-- applies to it? The WHEN of the write check below: SQL without a subquery,
-- so PostgreSQL inlines it (with a subquery it ran as a function, 83 us a
-- call, twice per branch UPDATE).
CREATE OR REPLACE FUNCTION epoch._may_write_all(rel oid, owner oid) RETURNS boolean LANGUAGE sql STABLE AS $f$
    SELECT pg_catalog.pg_has_role(current_user, owner, 'USAGE')
        OR (pg_catalog.has_table_privilege(rel, 'INSERT') AND pg_catalog.has_table_privilege(rel, 'UPDATE')
            AND pg_catalog.has_table_privilege(rel, 'DELETE') AND NOT pg_catalog.row_security_active(rel))
$f$;

-- May the current role put any row (or tombstone) into table rel's
-- storage, owned by role owner, with an INSERT or UPDATE there? As
-- _check_branch_write decides it without reading a row: a row needs INSERT
-- or UPDATE (of some column), a tombstone DELETE or UPDATE, so UPDATE, or
-- INSERT and DELETE, admit both; and no policy applies. The WHEN of the
-- INSERT and UPDATE write checks: a role with the privileges a branch
-- UPDATE needs (SELECT, UPDATE) pays no trigger call (two per branch UPDATE,
-- INSERT … ON CONFLICT fires both; bench/privileges).
CREATE OR REPLACE FUNCTION epoch._may_write_rows(rel oid, owner oid) RETURNS boolean LANGUAGE sql STABLE AS $f$
    SELECT pg_catalog.pg_has_role(current_user, owner, 'USAGE')
        OR ((pg_catalog.has_any_column_privilege(rel, 'UPDATE')
             OR (pg_catalog.has_any_column_privilege(rel, 'INSERT') AND pg_catalog.has_table_privilege(rel, 'DELETE')))
            AND NOT pg_catalog.row_security_active(rel))
$f$;

-- Row-level security's WITH CHECK for the rows a branch write puts in d_<id>,
-- as PostgreSQL checks them: an UPDATE's new rows against the UPDATE
-- policies' WITH CHECK (their USING without one) and the SELECT policies,
-- an INSERT's against the INSERT policies'; the statement's kind comes from
-- epoch._live_write() (a write made by hand on a direct connection must pass
-- both). A condition on a row named as rel; the write check applies it to
-- its transition table (which only the trigger function itself can read).
CREATE OR REPLACE FUNCTION epoch._rls_check_cond(rel oid) RETURNS text LANGUAGE plpgsql STABLE AS $f$
DECLARE
    kind text := coalesce(nullif(current_setting('epoch.write_kind', true), ''), 'unknown');
    cond text := '';
BEGIN
    IF kind <> 'insert' THEN
        cond := format('(%s) AND (%s)', epoch._rls_pred_for(rel, '{w,*}', true), epoch._rls_pred(rel));
    END IF;
    IF kind <> 'update' THEN
        cond := cond || CASE WHEN cond = '' THEN '' ELSE ' AND ' END
                || format('(%s)', epoch._rls_pred_for(rel, '{a,*}', true));
    END IF;
    RETURN cond;
END
$f$;

-- The statement trigger of d_<id> (current user: the writer; the schema's
-- owner when a control function writes). Argument: the base table's oid.
CREATE OR REPLACE FUNCTION epoch._check_branch_write() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE
    rel oid := TG_ARGV[0]::oid;
    bad boolean;
    ins boolean;
    upd boolean;
    del boolean;
BEGIN
    IF pg_catalog.pg_has_role(current_user, (SELECT relowner FROM pg_catalog.pg_class WHERE oid = TG_RELID), 'USAGE') THEN
        RETURN NULL; -- epoch's own functions (they check their caller)
    END IF;
    IF TG_OP <> 'DELETE' AND pg_catalog.row_security_active(rel) THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM new_rows AS %1$I WHERE NOT %1$I._epoch_deleted '
                       'AND NOT coalesce((%2$s), false))',
                       (SELECT relname FROM pg_catalog.pg_class WHERE oid = rel), epoch._rls_check_cond(rel))
            INTO bad;
        IF bad THEN
            RAISE EXCEPTION 'new row violates row-level security policy for table "%"',
                (SELECT relname FROM pg_catalog.pg_class WHERE oid = rel) USING ERRCODE = '42501';
        END IF;
    END IF;
    ins := pg_catalog.has_table_privilege(rel, 'INSERT') OR pg_catalog.has_any_column_privilege(rel, 'INSERT');
    upd := pg_catalog.has_table_privilege(rel, 'UPDATE') OR pg_catalog.has_any_column_privilege(rel, 'UPDATE');
    del := pg_catalog.has_table_privilege(rel, 'DELETE');
    IF ins AND upd AND del THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        -- dropping a branch's rows is for branch_delete and reset
        PERFORM epoch._deny(rel, 'privilege');
    END IF;
    IF NOT (del OR upd) AND EXISTS (SELECT 1 FROM new_rows WHERE _epoch_deleted) THEN
        PERFORM epoch._deny(rel, 'privilege');
    END IF;
    IF NOT (ins OR upd) AND EXISTS (SELECT 1 FROM new_rows WHERE NOT _epoch_deleted) THEN
        PERFORM epoch._deny(rel, 'privilege');
    END IF;
    RETURN NULL;
END
$f$;

-- The value set_config() gets on a branch (src/rewrite/rewrite.c): for
-- restrict_nonsystem_relation_kind (pg_dump sets "view"), the kinds other
-- than view, since a branch reads its tables through the views above.
CREATE OR REPLACE FUNCTION epoch._kinds_but_view(setting text, kinds text) RETURNS text
LANGUAGE sql IMMUTABLE AS $f$
    SELECT CASE WHEN kinds IS NULL OR lower(setting) IS DISTINCT FROM 'restrict_nonsystem_relation_kind' THEN kinds
                ELSE coalesce((SELECT string_agg(k, ',')
                                 FROM (SELECT btrim(x) AS k FROM unnest(string_to_array(kinds, ',')) x) s
                                WHERE k <> '' AND lower(k) <> 'view'), '') END
$f$;

-- The access views of a tracked table and the write check of its d_<id>
-- (track(), epoch.refresh_policies(), and for every tracked table when this
-- file is applied). Row views (every column): dv_<id> (also written through),
-- hv_<id>, bv_<id>. Key views (the keys and the columns epoch's own
-- conditions use), for the anti-joins that decide which version of a row a
-- state shows: dk_<id>, hk_<id>, bk_<id>. Under row-level security a row
-- view shows the rows the policies let the role see, and a key view the keys
-- of which the role may see some version (main's row, a pre-image, a
-- branch's row): every row the overlay could show has such a key, so the
-- anti-joins stay exact, and no key is shown that the role could not see.
CREATE OR REPLACE FUNCTION epoch._access(t epoch.tracked) RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    v record;
    rel text := format('%I.%I', t.schema_name, t.table_name);
    alias text := quote_ident(t.table_name);
    pk text := (SELECT string_agg(quote_ident(c), ', ') FROM unnest(t.pk_columns) c);
    rls boolean := (SELECT relrowsecurity FROM pg_class WHERE oid = t.relid);
    pred text;
    fp text := epoch._policy_fp(t.relid);
    owner oid := (SELECT relowner FROM pg_class WHERE oid = to_regclass(format('epoch.%I', t.delta_table)));
    gate text;
    seen text;
    -- SELECT granted on some columns: the views carry the table's grants
    may_read text := CASE WHEN epoch._column_grants(t.relid)
                          THEN format('epoch._acl_fresh(%s, %L)', t.relid, epoch._acl_fp(t.relid))
                          ELSE format('epoch._may_read(%s)', t.relid) END;
BEGIN
    -- tables tracked before schema step 8 get b_<id> after this file is
    -- applied (step 8), and their views in step 9
    IF to_regclass(format('epoch.%I', t.delta_table)) IS NULL
       OR to_regclass(format('epoch.%I', format('b_%s', t.id))) IS NULL OR rel IS NULL THEN
        RETURN;
    END IF;
    -- its own GRANTs and REVOKEs are not a change of the table's grants
    -- (functions/ddl.sql)
    PERFORM set_config('epoch.refreshing', 'on', true);
    -- the target filter of branch UPDATE/DELETE (src/rewrite/dml.c): every
    -- tracked table has both functions, so a session whose catalog predates
    -- ENABLE ROW LEVEL SECURITY finds them (and is refused as stale)
    EXECUTE format('CREATE OR REPLACE FUNCTION epoch.%I() RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $x$ %s $x$',
                   format('_rls_fresh_%s', t.id),
                   CASE WHEN rls THEN format('SELECT CASE WHEN NOT pg_catalog.row_security_active(%1$s::oid) THEN true '
                                             'WHEN epoch._policy_fp(%1$s::oid) = %2$L THEN true '
                                             'ELSE epoch._deny(%1$s::oid, ''stale'') END', t.relid, fp)
                        ELSE format('SELECT epoch._rls_never(%s::oid)', t.relid) END);
    EXECUTE format('CREATE OR REPLACE FUNCTION epoch.%I(cmd "char", r jsonb) RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $x$ %s $x$',
                   format('_rls_ok_%s', t.id),
                   CASE WHEN rls THEN format('SELECT CASE WHEN NOT pg_catalog.row_security_active(%s::oid) THEN true '
                                             'WHEN cmd = ''w'' THEN coalesce((%s), false) '
                                             'WHEN cmd = ''d'' THEN coalesce((%s), false) ELSE false END '
                                             'FROM pg_catalog.jsonb_populate_record(NULL::%s, r) AS %s',
                                             t.relid, epoch._rls_pred_for(t.relid, '{w,*}', false),
                                             epoch._rls_pred_for(t.relid, '{d,*}', false), rel, alias)
                        ELSE 'SELECT true' END);
    -- "does key k exist on branch bid (base: its base)?", every version
    -- counted, whatever the policies show the role: a branch INSERT under
    -- row-level security meets a key it cannot see as main's unique index
    -- does (23505), src/rewrite/dml_insert.c. Every tracked table has it.
    EXECUTE format('CREATE OR REPLACE FUNCTION epoch.%1$I(bid bigint, base bigint, %2$s) RETURNS boolean '
                   'LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $x$ '
                   'SELECT CASE WHEN EXISTS (SELECT 1 FROM epoch.%3$I d WHERE d._epoch_branch = $1 AND %4$s) '
                   'THEN EXISTS (SELECT 1 FROM epoch.%3$I d WHERE d._epoch_branch = $1 AND %4$s AND NOT d._epoch_deleted) '
                   'ELSE coalesce((SELECT h._epoch_existed FROM epoch.%5$I h WHERE %6$s AND h._epoch_seq > $2 '
                   'ORDER BY h._epoch_seq LIMIT 1), EXISTS (SELECT 1 FROM %7$s m WHERE %8$s)) END $x$',
                   format('_key_taken_%s', t.id),
                   (SELECT string_agg(format_type(a.atttypid, a.atttypmod), ', ' ORDER BY k.o)
                      FROM unnest(t.pk_columns) WITH ORDINALITY k(c, o)
                      JOIN pg_attribute a ON a.attrelid = t.relid AND a.attname = k.c),
                   t.delta_table,
                   (SELECT string_agg(format('d.%I = $%s', c, o + 2), ' AND ') FROM unnest(t.pk_columns) WITH ORDINALITY k(c, o)),
                   t.history_table,
                   (SELECT string_agg(format('h.%I = $%s', c, o + 2), ' AND ') FROM unnest(t.pk_columns) WITH ORDINALITY k(c, o)),
                   rel,
                   (SELECT string_agg(format('m.%I = $%s', c, o + 2), ' AND ') FROM unnest(t.pk_columns) WITH ORDINALITY k(c, o)));
    -- The views' gate, a function PostgreSQL cannot inline (plpgsql): a
    -- condition on no row, so a one-time filter evaluated once per scan. Not
    -- a sub-SELECT: on PostgreSQL 15 an InitPlan inside an arm of the
    -- overlay's UNION ALL takes every parallel plan away from the whole
    -- statement (SS_charge_for_initplans), and a whole-table count on a
    -- branch ran on one core (115 ms against main's 28 ms with two
    -- workers). Not an inlined SQL function either: inlining it into each
    -- of the 8 view references cost ~0.3 ms of planning per statement
    -- (custom plans re-plan every execution). A call costs ~0.5 us.
    EXECUTE format('CREATE OR REPLACE FUNCTION epoch.%I() RETURNS boolean LANGUAGE plpgsql STABLE PARALLEL SAFE '
                   'AS $x$ BEGIN RETURN %s; END $x$',
                   format('_gate_%s', t.id),
                   CASE WHEN rls THEN may_read ELSE format('%s AND epoch._rls_never(%s)', may_read, t.relid) END);
    -- Has main changed the table at all since point s? The overlay's test
    -- of which arm of main's rows to read (src/branch/overlay.c), through
    -- the key view (its gate applies); a one-time filter like the gate.
    EXECUTE format('CREATE OR REPLACE FUNCTION epoch.%I() RETURNS bigint LANGUAGE plpgsql STABLE PARALLEL SAFE '
                   'AS $x$ BEGIN RETURN (SELECT coalesce(max(_epoch_seq), 0) FROM epoch.%I); END $x$',
                   format('_hmax_%s', t.id), format('hk_%s', t.id));
    IF rls THEN
        pred := epoch._rls_pred(t.relid);
        -- (the policies' part stays a sub-SELECT, evaluated once: OR'ed
        -- with a condition on the row, a call would run per row; tables
        -- under row-level security are read on a branch without parallel
        -- workers)
        gate := format('epoch.%I() AND ((SELECT epoch._rls_off(%s, %L)) OR ', format('_gate_%s', t.id), t.relid, fp);
        -- main's row of a key, read as the role (its policies applied by
        -- PostgreSQL): a SQL function PostgreSQL cannot inline (a subquery),
        -- so the views do not depend on the table, which stays droppable
        EXECUTE format('CREATE OR REPLACE FUNCTION epoch.%I(%s) RETURNS boolean LANGUAGE sql STABLE AS $x$ '
                       'SELECT EXISTS (SELECT 1 FROM %s WHERE (%s) = (%s)) $x$ PARALLEL SAFE',
                       format('_main_has_%s', t.id),
                       (SELECT string_agg(format_type(a.atttypid, a.atttypmod), ', ' ORDER BY k.o)
                          FROM unnest(t.pk_columns) WITH ORDINALITY k(c, o)
                          JOIN pg_attribute a ON a.attrelid = t.relid AND a.attname = k.c),
                       rel, 'ROW(' || pk || ')',
                       'ROW(' || (SELECT string_agg('$' || o, ', ') FROM generate_series(1, cardinality(t.pk_columns)) o) || ')');
        -- the key k (of alias _k) has a version the role may see
        seen := format('EXISTS (SELECT 1 FROM (SELECT _k.*) AS %1$s WHERE %2$s) OR epoch.%3$I(%4$s)', alias, pred,
                       format('_main_has_%s', t.id),
                       (SELECT string_agg('_k.' || quote_ident(c), ', ') FROM unnest(t.pk_columns) c));
        FOR v IN SELECT * FROM (VALUES (format('epoch.%I', t.history_table)), (format('epoch.%I', t.delta_table)),
                                       (format('epoch.b_%s', t.id))) x(src) LOOP
            seen := seen || format(' OR EXISTS (SELECT 1 FROM %s AS %s WHERE %s AND %s)', v.src, alias,
                                   (SELECT string_agg(format('%1$s.%2$I = _k.%2$I', alias, c), ' AND ') FROM unnest(t.pk_columns) c),
                                   pred);
        END LOOP;
    END IF;
    FOR v IN SELECT * FROM (VALUES
            (format('dv_%s', t.id), t.delta_table, '*', 'SELECT, INSERT, UPDATE, DELETE'),
            (format('hv_%s', t.id), t.history_table, '*', 'SELECT'),
            (format('bv_%s', t.id), format('b_%s', t.id), '*', 'SELECT'),
            (format('dk_%s', t.id), t.delta_table, '_epoch_branch, ' || pk || ', _epoch_deleted', 'SELECT'),
            (format('hk_%s', t.id), t.history_table, '_epoch_seq, _epoch_existed, ' || pk, 'SELECT'),
            (format('bk_%s', t.id), format('b_%s', t.id), '_epoch_seq, _epoch_branch, ' || pk || ', _epoch_deleted', 'SELECT')
        ) x(name, base, cols, privs) LOOP
        IF NOT rls THEN
            EXECUTE format('CREATE OR REPLACE VIEW epoch.%I AS SELECT %s FROM epoch.%I WHERE epoch.%I()',
                           v.name, v.cols, v.base, format('_gate_%s', t.id));
        ELSIF v.cols = '*' THEN
            EXECUTE format('CREATE OR REPLACE VIEW epoch.%I AS SELECT * FROM epoch.%I AS %s WHERE %s(%s))',
                           v.name, v.base, alias, gate, pred);
        ELSE
            EXECUTE format('CREATE OR REPLACE VIEW epoch.%I AS SELECT %s FROM epoch.%I AS _k WHERE %s(%s))',
                           v.name, (SELECT string_agg('_k.' || btrim(c), ', ') FROM unnest(string_to_array(v.cols, ',')) c),
                           v.base, gate, seen);
        END IF;
        EXECUTE format('REVOKE ALL ON epoch.%I FROM PUBLIC', v.base);
        EXECUTE format('GRANT %s ON epoch.%I TO PUBLIC', v.privs, v.name);
        IF may_read LIKE 'epoch._acl_fresh%' THEN
            PERFORM epoch._copy_select_grants(t.relid, v.name);
        END IF;
    END LOOP;
    EXECUTE format('DROP TRIGGER IF EXISTS epoch_check_ins ON epoch.%I', t.delta_table);
    EXECUTE format('DROP TRIGGER IF EXISTS epoch_check_upd ON epoch.%I', t.delta_table);
    EXECUTE format('DROP TRIGGER IF EXISTS epoch_check_del ON epoch.%I', t.delta_table);
    -- WHEN: no call at all for the roles that may write anything there
    -- (whatever the statement's kind: _may_write_rows for rows, _may_write_all
    -- for a DELETE)
    EXECUTE format('CREATE TRIGGER epoch_check_ins AFTER INSERT ON epoch.%I REFERENCING NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT WHEN (NOT epoch._may_write_rows(%s, %s)) EXECUTE FUNCTION epoch._check_branch_write(%s)',
                   t.delta_table, t.relid, owner, t.relid);
    EXECUTE format('CREATE TRIGGER epoch_check_upd AFTER UPDATE ON epoch.%I REFERENCING NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT WHEN (NOT epoch._may_write_rows(%s, %s)) EXECUTE FUNCTION epoch._check_branch_write(%s)',
                   t.delta_table, t.relid, owner, t.relid);
    EXECUTE format('CREATE TRIGGER epoch_check_del AFTER DELETE ON epoch.%I '
                   'FOR EACH STATEMENT WHEN (NOT epoch._may_write_all(%s, %s)) EXECUTE FUNCTION epoch._check_branch_write(%s)',
                   t.delta_table, t.relid, owner, t.relid);
    PERFORM set_config('epoch.refreshing', '', true);
END
$f$;

-- Make every tracked table's access views again from its current
-- row-level security (after CREATE/ALTER/DROP POLICY, ALTER TABLE … ROW
-- LEVEL SECURITY). Any role may: it only follows the catalog. The DDL event
-- triggers of epoch.watch_ddl() call it by themselves.
CREATE OR REPLACE FUNCTION epoch.refresh_policies() RETURNS int LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    t epoch.tracked;
    n int := 0;
BEGIN
    FOR t IN SELECT * FROM epoch.tracked ORDER BY id LOOP
        PERFORM epoch._access(t);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$f$;

PERFORM epoch._access(t) FROM epoch.tracked t ORDER BY t.id;
