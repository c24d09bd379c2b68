"""Every role can branch, and nobody gains a right (docs/privileges.md).

1. A role matrix through the proxy: the schema's owner, a member of the admin
   role, a plain role with SELECT only, one with SELECT and UPDATE of one
   column, one with SELECT/INSERT/UPDATE/DELETE, one under a row-level
   security policy, a BYPASSRLS role and a superuser, each running the same
   reads and writes on main and on a branch (each in a transaction rolled
   back): the outcome (rows, or the SQLSTATE) must be the same on both,
   except where docs/privileges.md says a branch refuses (row-level security
   applying to the role: 0A000).
2. Who may do what to branches: create (any role), delete / rename /
   protect (the branch's owner or an admin), track / untrack (the table's
   owner or an admin), gc and reset of main (admin), tags.
3. The storage is no way around: direct connections of plain roles to
   epoch.d_* / h_* / b_* are refused; the access views admit only roles that
   may read the table, and refuse writes a role could not make through the
   proxy.
4. Main writes by any role with the table's privileges are captured (the
   capture triggers run as the schema's owner); diff, the change feed and
   time travel show only what the role may read.
"""

import os
import psycopg2

import harness

PW = "pw"


def _conn(px, user, db, branch=None):
    return px.connect(user=user, password=PW, dbname=f"{db}@{branch}" if branch else db,
                      autocommit=True)


def _outcome(conn, sql):
    """('ok', rows) or ('err', sqlstate), in a transaction rolled back."""
    cur = conn.cursor()
    cur.execute("BEGIN")
    try:
        cur.execute(sql)
        rows = sorted(cur.fetchall()) if cur.description else cur.rowcount
        return ("ok", rows)
    except psycopg2.Error as e:
        return ("err", e.pgcode) if os.environ.get("PRIV_DEBUG") is None else ("err", e.pgcode, e.pgerror)
    finally:
        conn.rollback() if not conn.autocommit else cur.execute("ROLLBACK")


def _err(conn, sql, code, message=None):
    cur = conn.cursor()
    try:
        cur.execute(sql)
    except psycopg2.Error as e:
        assert e.pgcode == code, f"{sql}: expected {code}, got {e.pgcode} {e.pgerror}"
        if message:
            assert message in e.pgerror, f"{sql}: expected {message!r} in {e.pgerror!r}"
        return e
    raise AssertionError(f"{sql}: expected {code}, it succeeded")


def _one(conn, sql, params=None):
    cur = conn.cursor()
    cur.execute(sql, params)
    return cur.fetchone()[0]


def _setup(env, db, prefix, column_grants=False):
    """Database db owned by the test role; tables acct (RLS by owner column)
    and item; roles prefix_*; returns the proxy and the role names. With
    column_grants, role prefix_colr may SELECT item's id and v only."""
    pg = env.pg
    pg.create_database(db)
    roles = {k: f"{prefix}_{k}" for k in ("admin", "reader", "colw", "writer", "rls", "bypass",
                                          "nobody", "super") + (("colr",) if column_grants else ())}
    for k, r in roles.items():
        pg.create_role(r, PW, superuser=(k == "super"),
                       options="BYPASSRLS" if k == "bypass" else "")
    pg.sql("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'epoch_admin') "
           "THEN CREATE ROLE epoch_admin NOLOGIN; END IF; END $$;")
    pg.sql(f"GRANT epoch_admin TO {roles['admin']};")
    px = env.proxy()
    own = env.closing(px.connect(dbname=db, autocommit=True))
    cur = own.cursor()
    cur.execute("CREATE TABLE item (id int PRIMARY KEY, v text, w int)")
    cur.execute("INSERT INTO item SELECT g, 'v' || g, g FROM generate_series(1, 10) g")
    cur.execute("CREATE TABLE acct (id int PRIMARY KEY, owner name NOT NULL, amount int)")
    cur.execute(f"INSERT INTO acct VALUES (1, '{roles['rls']}', 10), (2, 'someone', 20), "
                f"(3, '{roles['rls']}', 30)")
    cur.execute("ALTER TABLE acct ENABLE ROW LEVEL SECURITY")
    cur.execute("CREATE POLICY own_rows ON acct USING (owner = current_user)")
    cur.execute("SELECT epoch.track('item'), epoch.track('acct')")
    for r in ("reader", "colw", "writer", "rls", "bypass", "admin"):
        cur.execute(f"GRANT SELECT ON item, acct TO {roles[r]}")
    cur.execute(f"GRANT UPDATE (v) ON item TO {roles['colw']}")
    cur.execute(f"GRANT INSERT, UPDATE, DELETE ON item, acct TO {roles['writer']}")
    cur.execute(f"GRANT INSERT, UPDATE, DELETE ON acct TO {roles['rls']}")
    if column_grants:
        cur.execute(f"GRANT SELECT (id, v) ON item TO {roles['colr']}")
        cur.execute("SELECT epoch.refresh_policies()")  # no watch_ddl() here
    cur.execute("SELECT epoch.branch_create('b')")
    return px, own, roles


STATEMENTS = [
    "SELECT id, v, w FROM item",
    "SELECT count(*) FROM item WHERE id > 3",
    "SELECT id, owner, amount FROM acct",
    "UPDATE item SET v = 'x' WHERE id = 1 RETURNING id, v",
    "UPDATE item SET w = 0 WHERE id = 2 RETURNING id, w",
    "UPDATE item SET v = 'y', w = 1 WHERE id = 3 RETURNING id",
    "INSERT INTO item VALUES (100, 'new', 1) RETURNING id",
    "DELETE FROM item WHERE id = 4 RETURNING id",
    "UPDATE acct SET amount = amount + 1 WHERE id = 2 RETURNING id",
    # key 2 is someone's: under acct's policy most roles cannot see it, yet
    # it is taken (main's unique index says so: 23505)
    "INSERT INTO acct VALUES (2, current_user, 1) RETURNING id",
    "INSERT INTO acct VALUES (2, current_user, 1) ON CONFLICT DO NOTHING RETURNING id",
    "INSERT INTO acct SELECT 2, current_user, 1 RETURNING id",
    "INSERT INTO acct VALUES (50, current_user, 1) RETURNING id",
    # column privileges (the matrix's item has SELECT granted on id and v to
    # one role): reads of some columns, of all, of the whole row
    "SELECT id, v FROM item ORDER BY id",
    "SELECT v FROM item WHERE id < 5",
    "SELECT * FROM item WHERE id = 1",
    "SELECT item FROM item WHERE id = 1",
    "SELECT i.v, j.v FROM item i JOIN item j USING (id) WHERE j.id < 3",
    "SELECT count(*), max(w) FROM item",
    "SELECT id FROM item NATURAL JOIN item x",
]


def test_role_matrix_same_answers_on_main_and_branch(env):
    db = "priv_matrix"
    px, own, roles = _setup(env, db, "pm", column_grants=True)
    who = dict(roles, owner=harness.DEFAULT_USER)
    checked = 0
    for key, role in sorted(who.items()):
        pw = harness.DEFAULT_PASSWORD if key == "owner" else PW
        main = env.closing(px.connect(user=role, password=pw, dbname=db, autocommit=True))
        br = env.closing(px.connect(user=role, password=pw, dbname=f"{db}@b", autocommit=True))
        for sql in STATEMENTS:
            m, b = _outcome(main, sql), _outcome(br, sql)
            assert m == b, f"{role}: {sql}\n main:   {m}\n branch: {b}"
            checked += 1
    # the matrix exercised refusals and successes, not only one of them
    outcomes = {(_outcome(env.closing(px.connect(user=roles["nobody"], password=PW,
                                                 dbname=f"{db}@b", autocommit=True)), s))[0]
                for s in STATEMENTS}
    assert outcomes == {"err"}
    assert checked == len(who) * len(STATEMENTS)
    # a refused write left nothing on the branch; the owner sees the base rows
    assert _one(env.closing(px.connect(dbname=f"{db}@b", autocommit=True)),
                "SELECT count(*) FROM item WHERE v IN ('x', 'y', 'new')") == 0


def test_writes_on_a_branch_need_the_same_privileges_as_on_main(env):
    db = "priv_writes"
    px, own, roles = _setup(env, db, "pw")
    r = env.closing(_conn(px, roles["reader"], db, "b"))
    e = _err(r, "UPDATE item SET v = 'x' WHERE id = 1", "42501", "permission denied for table item")
    # refused before any row, as on main: also when no row matches
    _err(r, "UPDATE item SET v = 'x' WHERE id > 1000", "42501", "permission denied for table item")
    _err(r, "DELETE FROM item WHERE id = -1", "42501", "permission denied for table item")
    c = env.closing(_conn(px, roles["colw"], db, "b"))
    _err(c, "UPDATE item SET w = 5 WHERE id = 1", "42501", "permission denied for table item")
    _err(c, "DELETE FROM item WHERE id = 1", "42501")
    _err(c, "INSERT INTO item VALUES (50, 'a', 1)", "42501")
    cur = c.cursor()
    cur.execute("UPDATE item SET v = 'col' WHERE id = 1")
    assert cur.rowcount == 1
    assert _one(c, "SELECT v FROM item WHERE id = 1") == "col"
    # after SET ROLE the checks follow the current role
    s = env.closing(_conn(px, roles["super"], db, "b"))
    s.cursor().execute(f"SET ROLE {roles['reader']}")
    _err(s, "DELETE FROM item WHERE id = 2", "42501", "permission denied for table item")
    s.cursor().execute("RESET ROLE")
    cur = s.cursor()
    cur.execute("DELETE FROM item WHERE id = 2")
    assert cur.rowcount == 1
    # main is untouched by all of it
    assert _one(own, "SELECT v FROM item WHERE id = 1") == "v1"
    assert _one(own, "SELECT count(*) FROM item") == 10
    assert e.pgerror.count("d_") == 0  # the base table's name, not the storage's


def test_control_functions_by_role(env):
    db = "priv_control"
    px, own, roles = _setup(env, db, "pc")
    r = env.closing(_conn(px, roles["reader"], db))
    w = env.closing(_conn(px, roles["writer"], db))
    a = env.closing(_conn(px, roles["admin"], db))
    assert _one(r, "SELECT epoch.branch_create('mine')") == "mine"
    assert _one(r, "SELECT created_by FROM epoch.branches WHERE name = 'mine'") == roles["reader"]
    _err(w, "SELECT epoch.branch_delete('mine')", "42501", "permission denied to delete branch")
    _err(w, "SELECT epoch.branch_rename('mine', 'theirs')", "42501")
    _err(w, "SELECT epoch.branch_protect('mine')", "42501")
    assert _one(r, "SELECT epoch.branch_rename('mine', 'mine2')") == "mine2"
    assert _one(r, "SELECT epoch.branch_protect('mine2')") == "mine2"
    assert _one(a, "SELECT epoch.branch_protect('mine2', false)") == "mine2"
    assert _one(a, "SELECT epoch.branch_delete('mine2')") == "mine2"
    # table owner or admin: track, untrack, gc, reset of main
    own.cursor().execute("CREATE TABLE public.extra (id int PRIMARY KEY)")
    _err(r, "SELECT epoch.track('public.extra')", "42501", "permission denied to track table")
    _err(r, "SELECT epoch.untrack('item')", "42501", "permission denied to untrack table")
    _err(r, "SELECT * FROM epoch.gc()", "42501", "permission denied to run epoch.gc()")
    _err(r, "SELECT epoch.reset('main@{2020-01-01 00:00+00}')", "42501",
         "permission denied to reset main")
    assert _one(a, "SELECT count(*) FROM epoch.gc(interval '0')") == 2  # one row per table
    assert _one(own, "SELECT epoch.track('public.extra')") == "public.extra"
    assert _one(r, "SELECT count(*) FROM epoch.track_all()") == 0  # owns nothing
    # commits and tags by any role; a tag is deleted by its creator or an admin
    b = env.closing(_conn(px, roles["writer"], db, "b"))
    b.cursor().execute("UPDATE item SET v = 'first' WHERE id = 6")
    _one(b, "SELECT epoch.commit('root')")
    b.cursor().execute("UPDATE item SET v = 'c' WHERE id = 5")
    cid = _one(b, "SELECT epoch.commit('by writer')")
    assert _one(b, "SELECT author FROM epoch.commits WHERE id = %s", (cid,)) == roles["writer"]
    assert _one(b, "SELECT epoch.tag('t1')") == cid
    _err(r, "SELECT epoch.tag_delete('t1')", "42501", "permission denied to delete tag")
    assert _one(a, "SELECT epoch.tag_delete('t1')") == "t1"
    # reset and revert on a branch rewrite rows: INSERT, UPDATE and DELETE needed
    rb = env.closing(_conn(px, roles["reader"], db, "b"))
    _err(rb, f"SELECT epoch.revert('{cid}')", "42501", "permission denied for table item")
    assert _one(b, f"SELECT epoch.revert('{cid}')") is not None
    assert _one(b, "SELECT v FROM item WHERE id = 5") == "v5"


def test_storage_is_no_way_around(env):
    db = "priv_storage"
    px, own, roles = _setup(env, db, "ps")
    b = env.closing(_conn(px, roles["writer"], db, "b"))
    b.cursor().execute("UPDATE item SET v = 'secret' WHERE id = 1")
    tid = _one(own, "SELECT id FROM epoch.tracked WHERE table_name = 'item'")
    for role in ("reader", "writer", "nobody", "rls"):
        d = env.closing(env.pg.connect(user=roles[role], password=PW, dbname=db))
        d.autocommit = True
        for t in (f"d_{tid}", f"h_{tid}", f"b_{tid}"):
            _err(d, f"SELECT * FROM epoch.{t}", "42501", f"permission denied for table {t}")
        _err(d, f"INSERT INTO epoch.d_{tid} (_epoch_branch, id) VALUES (1, 999)", "42501")
    # the views admit a role that may read the table, and nobody else
    n = env.closing(env.pg.connect(user=roles["nobody"], password=PW, dbname=db))
    _err(n, f"SELECT * FROM epoch.dv_{tid}", "42501", "permission denied for table item")
    n.rollback()
    _err(n, f"SELECT * FROM epoch.hv_{tid}", "42501", "permission denied for table item")
    r = env.closing(env.pg.connect(user=roles["reader"], password=PW, dbname=db))
    r.autocommit = True
    assert _one(r, f"SELECT v FROM epoch.dv_{tid} WHERE id = 1") == "secret"
    # a role that may not write the table cannot write branch rows by hand
    bid = _one(own, "SELECT id FROM epoch.branch WHERE name = 'b'")
    _err(r, f"INSERT INTO epoch.dv_{tid} (_epoch_branch, id, v) VALUES ({bid}, 77, 'x')",
         "42501", "permission denied for table item")
    _err(r, f"UPDATE epoch.dv_{tid} SET v = 'x'", "42501")
    _err(r, f"DELETE FROM epoch.dv_{tid}", "42501")
    assert _one(own, "SELECT v FROM item WHERE id = 1") == "v1"


def test_main_writes_by_any_role_are_captured(env):
    db = "priv_capture"
    px, own, roles = _setup(env, db, "pcap")
    w = env.closing(_conn(px, roles["writer"], db))
    cur = w.cursor()
    cur.execute("UPDATE item SET v = 'changed' WHERE id = 7")
    cur.execute("INSERT INTO item VALUES (11, 'eleven', 11)")
    # straight to PostgreSQL too
    d = env.closing(env.pg.connect(user=roles["writer"], password=PW, dbname=db))
    d.autocommit = True
    d.cursor().execute("DELETE FROM item WHERE id = 8")
    # the branch made before still sees main as it was
    b = env.closing(_conn(px, roles["reader"], db, "b"))
    assert _one(b, "SELECT v FROM item WHERE id = 7") == "v7"
    assert _one(b, "SELECT count(*) FROM item") == 10
    assert _one(b, "SELECT count(*) FROM item WHERE id = 8") == 1
    st = dict((r[0], r[1:]) for r in _all(w, "SELECT * FROM epoch.status"))
    assert st["item"] == (1, 1, 1), st


def _all(conn, sql, params=None):
    cur = conn.cursor()
    cur.execute(sql, params)
    return cur.fetchall()


def test_history_shows_only_what_the_role_may_read(env):
    db = "priv_history"
    px, own, roles = _setup(env, db, "ph")
    ob = env.closing(px.connect(dbname=f"{db}@b", autocommit=True))
    ob.cursor().execute("UPDATE item SET v = 'd' WHERE id = 1")
    ob.cursor().execute("UPDATE acct SET amount = 0 WHERE id = 2")
    assert _one(ob, "SELECT count(*) FROM epoch.diff('main', 'b')") >= 2
    n = env.closing(_conn(px, roles["nobody"], db))
    assert _all(n, "SELECT * FROM epoch.diff('main', 'b')") == []
    assert _all(n, "SELECT * FROM epoch.diff_stat('main', 'b')") == []
    _err(n, "SELECT * FROM epoch.diff('main', 'b', 'item')", "42501",
         "permission denied for table item")
    y = env.closing(_conn(px, roles["bypass"], db))
    assert {row[0] for row in _all(y, "SELECT table_name FROM epoch.diff('main', 'b')")} == \
        {"item", "acct"}
    q = env.closing(_conn(px, roles["rls"], db))
    # acct's policy (owner = current_user) applies to rls: it sees the
    # versions of rows it may read now, no other. Row 2 (someone's) changed:
    # not shown. Row 1 (its own) changed: shown. Row 3 given away on the
    # branch: it saw it before, not after: a delete. Row 4 given to it: an insert.
    ob.cursor().execute("UPDATE acct SET amount = 11 WHERE id = 1")
    ob.cursor().execute("UPDATE acct SET owner = 'someone' WHERE id = 3")
    ob.cursor().execute(f"INSERT INTO acct VALUES (4, '{roles['rls']}', 40)")
    assert _all(q, "SELECT pk, old_value, new_value FROM epoch.diff('main', 'b', 'acct') WHERE column_name = 'amount' "
                   "ORDER BY pk::text") == [({"id": 1}, "10", "11"), ({"id": 3}, "30", None), ({"id": 4}, None, "40")]
    got = _all(q, "SELECT pk, change FROM epoch.diff('main', 'b', 'acct') GROUP BY 1, 2 ORDER BY pk::text")
    assert got == [({"id": 1}, "update"), ({"id": 3}, "delete"), ({"id": 4}, "insert")], got
    assert _all(q, "SELECT table_name, inserted, updated, deleted FROM epoch.diff_stat('main', 'b') "
                   "WHERE table_name = 'acct'") == [("acct", 1, 1, 1)]
    # the owner sees every change of acct
    assert _all(ob, "SELECT pk FROM epoch.diff('main', 'b', 'acct') GROUP BY 1 ORDER BY pk::text") == [
        ({"id": 1},), ({"id": 2},), ({"id": 3},), ({"id": 4},)]
    # the change feed on the branch, as rls: the same three
    qb = env.closing(_conn(px, roles["rls"], db, "b"))
    assert sorted((r[0]["id"], r[1]) for r in _all(qb, "SELECT pk, change FROM epoch.changes('acct', '0')")) == [
        (1, "update"), (3, "delete"), (4, "insert")]
    # the policies' rows and nothing more, also if rls reads the images itself
    cur = qb.cursor()
    cur.execute("BEGIN")
    cur.execute("SELECT count(*) FROM epoch.changes('acct', '0')")
    cur.execute("SELECT count(*), count(*) FILTER (WHERE owner <> current_user) FROM pg_temp._epoch_img")
    assert cur.fetchone() == (4, 0)   # rows 1 (two versions), 3 before, 4 after
    cur.execute("ROLLBACK")
    # inside a SECURITY DEFINER function (hwm_advance) the policies would be
    # the definer's: refused
    _all(ob, "SELECT epoch.namespace_create('feed')")
    _all(ob, "SELECT epoch.hwm_set('feed', 'acct', '0', 'mark')")
    _all(ob, "SELECT epoch.grant('feed', %s, 'developer')", (roles["rls"],))
    _err(qb, "SELECT * FROM epoch.hwm_advance('feed', 'acct', 'acct')", "0A000", "row-level security")
    _err(n, "SELECT * FROM epoch.changes('item', '0')", "42501")
    # time travel through a plain role reads through the same gates
    rb = env.closing(_conn(px, roles["reader"], db))
    assert _one(rb, 'SELECT v FROM "@b".item WHERE id = 1') == "d"
    _err(n, 'SELECT v FROM "@b".item WHERE id = 1', "42501")
    # the counts of status, show, commits and branches leave out the tables
    # the role may not read (acct for colw: SELECT on item only)
    own.cursor().execute(f"REVOKE SELECT ON acct FROM {roles['colw']}")
    cb = env.closing(_conn(px, roles["colw"], db, "b"))
    assert sorted(r[0] for r in _all(ob, "SELECT table_name FROM epoch.status")) == ["acct", "item"]
    assert [r[0] for r in _all(cb, "SELECT table_name FROM epoch.status")] == ["item"]
    assert _all(cb, "SELECT modified_tables FROM epoch.branches WHERE name = 'b'") == [(1,)]
    assert _all(ob, "SELECT modified_tables FROM epoch.branches WHERE name = 'b'") == [(2,)]
    _all(ob, "SELECT epoch.commit('both tables')")
    assert _all(ob, "SELECT tables FROM epoch.commits WHERE message = 'both tables'") == [(2,)]
    assert _all(cb, "SELECT tables, updated FROM epoch.commits WHERE message = 'both tables'") == [(1, 1)]
    assert sorted(r[0] for r in _all(ob, "SELECT table_name FROM epoch.show('b')")) == ["acct", "item"]
    assert [r[0] for r in _all(cb, "SELECT table_name FROM epoch.show('b')")] == ["item"]
    _err(cb, "SELECT * FROM epoch.commit_table", "42501")


def test_merge_into_main_under_row_level_security(env):
    """A role under acct's policy (owner = current_user) merges into main
    what it could write there itself: its own rows go in; a row it gives
    away (WITH CHECK), or one main gave to someone else meanwhile (USING),
    is 42501 and nothing is merged; a conflict on such a table is refused
    without recording (it would show rows the policy hides)."""
    db = "priv_merge_rls"
    px, own, roles = _setup(env, db, "pmr")
    r = roles["rls"]
    q = env.closing(_conn(px, r, db))

    def branch(name, sql, writer=r):
        _one(q, f"SELECT epoch.branch_create('{name}')")
        b = env.closing(px.connect(dbname=f"{db}@{name}", autocommit=True) if writer is None
                        else _conn(px, writer, db, name))
        b.cursor().execute(sql)

    def merge(name, strategy="three_way"):
        return _one(q, f"SELECT status FROM epoch.merge('{name}', \"into\" => 'main', strategy => '{strategy}')")

    branch("m1", "UPDATE acct SET amount = 11 WHERE id = 1")
    assert merge("m1") in ("merged", "fast_forward")
    assert _one(own, "SELECT amount FROM acct WHERE id = 1") == 11
    # a row given away (on the branch, by the table's owner): the new row
    # fails the policy's check on main when rls merges it
    branch("m2", "UPDATE acct SET owner = 'someone' WHERE id = 3", writer=None)
    _err(q, "SELECT epoch.merge('m2', \"into\" => 'main')", "42501", "row-level security")
    assert _one(own, "SELECT owner FROM acct WHERE id = 3") == r
    # main gives row 3 away meanwhile; the branch changed its amount: the
    # merged row is one the role may no longer update on main
    branch("m3", "UPDATE acct SET amount = 33 WHERE id = 3")
    own.cursor().execute("UPDATE acct SET owner = 'someone' WHERE id = 3")
    _err(q, "SELECT epoch.merge('m3', \"into\" => 'main')", "42501")
    assert _one(own, "SELECT amount FROM acct WHERE id = 3") == 30
    # a conflict on the table: refused, nothing recorded; theirs goes in
    branch("m4", "UPDATE acct SET amount = 1000 WHERE id = 1")
    own.cursor().execute("UPDATE acct SET amount = 2000 WHERE id = 1")
    n = _one(own, "SELECT count(*) FROM epoch.merges")
    _err(q, "SELECT epoch.merge('m4', \"into\" => 'main')", "0A000", "row-level security")
    assert _one(own, "SELECT count(*) FROM epoch.merges") == n
    assert merge("m4", "theirs") == "merged"
    assert _one(own, "SELECT amount FROM acct WHERE id = 1") == 1000
    # a role without UPDATE: PostgreSQL's own 42501, naming the table
    rd = env.closing(_conn(px, roles["reader"], db))
    _one(rd, "SELECT epoch.branch_create('m5')")
    env.closing(_conn(px, roles["writer"], db, "m5")).cursor().execute("UPDATE item SET v = 'm5' WHERE id = 5")
    _err(rd, "SELECT epoch.merge('m5', \"into\" => 'main')", "42501", "permission denied for table item")


def test_policy_subqueries_need_the_roles_own_privileges(env):
    """A policy whose USING reads another table (members): on main a role
    without SELECT on members gets 42501; on a branch too (the views run the
    policy as their owner, so the check is made for the role), and a role
    with it reads the same rows on both."""
    db = "priv_polsub"
    env.pg.create_database(db)
    for r in ("pps_in", "pps_out"):
        env.pg.create_role(r, PW)
    px = env.proxy()
    own = env.closing(px.connect(dbname=db, autocommit=True))
    cur = own.cursor()
    cur.execute("CREATE TABLE public.members (name name PRIMARY KEY)")
    cur.execute("INSERT INTO members VALUES ('pps_in'), ('pps_out')")
    cur.execute("CREATE TABLE public.doc (id int PRIMARY KEY, body text)")
    cur.execute("INSERT INTO doc VALUES (1, 'x'), (2, 'y')")
    cur.execute("ALTER TABLE doc ENABLE ROW LEVEL SECURITY")
    cur.execute("CREATE POLICY mem ON doc USING (EXISTS (SELECT 1 FROM public.members m WHERE m.name = current_user))")
    cur.execute("GRANT SELECT ON doc TO pps_in, pps_out")
    cur.execute("GRANT SELECT ON members TO pps_in")
    cur.execute("SELECT epoch.track('doc'), epoch.branch_create('b')")
    for role, want in (("pps_in", ("ok", [(2,)])), ("pps_out", ("err", "42501"))):
        for dbname in (db, f"{db}@b"):
            c = env.closing(px.connect(user=role, password=PW, dbname=dbname, autocommit=True))
            assert _outcome(c, "SELECT count(*) FROM doc") == want, (role, dbname)
    # an UPDATE policy reading another table (editors), SELECT open to all
    cur.execute("CREATE TABLE public.editors (name name PRIMARY KEY)")
    cur.execute("INSERT INTO editors VALUES ('pps_in'), ('pps_out')")
    cur.execute("DROP POLICY mem ON doc")
    cur.execute("CREATE POLICY seeall ON doc FOR SELECT USING (true)")
    cur.execute("CREATE POLICY edit ON doc FOR UPDATE USING (EXISTS (SELECT 1 FROM public.editors e WHERE e.name = current_user))")
    cur.execute("GRANT UPDATE ON doc TO pps_in, pps_out")
    cur.execute("GRANT SELECT ON editors TO pps_in")
    cur.execute("SELECT epoch.refresh_policies()")
    for role, want in (("pps_in", ("ok", [(1,)])), ("pps_out", ("err", "42501"))):
        for dbname in (db, f"{db}@b"):
            c = env.closing(px.connect(user=role, password=PW, dbname=dbname, autocommit=True))
            got = _outcome(c, "UPDATE doc SET body = 'z' WHERE id = 1 RETURNING id")
            assert got == want, (role, dbname, got)


def test_plain_role_connects_to_a_branch_with_psql(env):
    db = "priv_psql"
    px, own, roles = _setup(env, db, "pq")
    cp = px.psql("-Atc", "SELECT count(*) FROM item", user=roles["reader"], password=PW,
                 dbname=f"{db}@b")
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == "10"


def test_schema_setup_and_upgrade_say_who_may(env):
    db = "priv_setup"
    env.pg.create_database(db)
    env.pg.create_role("psu_plain", PW)
    px = env.proxy()
    # a fresh database: a role without CREATE on it cannot set epoch up
    p = env.closing(_conn(px, "psu_plain", db))
    e = _err(p, "SELECT epoch.branch_create('x')", "42501", "cannot set it up")
    assert "CREATE on the database" in e.pgerror, e.pgerror
    # the owner sets it up; the plain role then uses it
    own = env.closing(px.connect(dbname=db, autocommit=True))
    own.cursor().execute("CREATE TABLE public.t (id int PRIMARY KEY)")
    own.cursor().execute("SELECT epoch.track('public.t')")
    p2 = env.closing(_conn(px, "psu_plain", db))
    assert _one(p2, "SELECT epoch.branch_create('x')") == "x"
    # an upgrade only the schema's owner (or a superuser) can make
    env.pg.sql("UPDATE epoch.meta SET value = 0 WHERE key = 'functions_hash'", db=db)
    try:
        _conn(px, "psu_plain", db, "x").close()
        raise AssertionError("a plain role ran the upgrade")
    except psycopg2.OperationalError as err:
        assert "needs an upgrade" in str(err) and harness.DEFAULT_USER in str(err), str(err)
    env.closing(px.connect(dbname=f"{db}@x", autocommit=True))  # the owner upgrades
    p3 = env.closing(_conn(px, "psu_plain", db, "x"))
    assert _one(p3, "SELECT count(*) FROM epoch.branches") == 2


def test_reused_plans_are_checked_for_the_current_role(env):
    db = "priv_plans"
    px, own, roles = _setup(env, db, "pp")
    s = env.closing(_conn(px, roles["super"], db, "b"))
    cur = s.cursor()
    for _ in range(6):  # the proxy prepares the rewritten statement and reuses it
        cur.execute("SELECT v FROM item WHERE id = %s", (3,))
        assert cur.fetchone() == ("v3",)
        cur.execute("UPDATE item SET w = w WHERE id = %s", (3,))
    cur.execute(f"SET ROLE {roles['nobody']}")
    _err(s, "SELECT v FROM item WHERE id = 3", "42501", "permission denied for table item")
    _err(s, "UPDATE item SET w = w WHERE id = 3", "42501", "permission denied for table item")
    cur.execute(f"SET ROLE {roles['reader']}")
    cur.execute("SELECT v FROM item WHERE id = %s", (3,))
    assert cur.fetchone() == ("v3",)
    _err(s, "UPDATE item SET w = w WHERE id = 3", "42501", "permission denied for table item")


def test_row_level_security_on_branch_reads(env):
    db = "priv_rls"
    px, own, roles = _setup(env, db, "pr")
    rls = roles["rls"]
    ob = env.closing(px.connect(dbname=f"{db}@b", autocommit=True))
    for sql in ("UPDATE acct SET owner = 'someone' WHERE id = 1",     # moved out of rls's sight
                f"INSERT INTO acct VALUES (4, '{rls}', 40)",
                "DELETE FROM acct WHERE id = 3",
                "UPDATE acct SET amount = 99 WHERE id = 2"):          # never rls's
        ob.cursor().execute(sql)
    own.cursor().execute("UPDATE acct SET amount = 31 WHERE id = 3")  # main moves on
    m = env.closing(_conn(px, rls, db))
    b = env.closing(_conn(px, rls, db, "b"))
    assert _all(m, "SELECT id, amount FROM acct ORDER BY id") == [(1, 10), (3, 31)]
    # the branch's state under the policy: not main's row 1 showing through
    assert _all(b, "SELECT id, amount FROM acct ORDER BY id") == [(4, 40)]
    assert _all(b, "SELECT id FROM acct WHERE id IN (1, 2, 3, 4) ORDER BY id") == [(4,)]
    assert _one(b, "SELECT count(*) FROM acct") == 1
    assert _all(m, 'SELECT id FROM "@b".acct ORDER BY id') == [(4,)]
    # the owner and a BYPASSRLS role see every row
    assert _one(ob, "SELECT count(*) FROM acct") == 3
    y = env.closing(_conn(px, roles["bypass"], db, "b"))
    assert _all(y, "SELECT id FROM acct ORDER BY id") == [(1,), (2,), (4,)]
    # writes under the policy, as on main: targets filtered by USING, new
    # rows checked (WITH CHECK, here the USING of the FOR ALL policy)
    cur = b.cursor()
    cur.execute("UPDATE acct SET amount = amount + 1")
    assert cur.rowcount == 1  # only row 4 is rls's on the branch
    cur.execute("DELETE FROM acct WHERE id IN (1, 2, 3)")
    assert cur.rowcount == 0
    _err(b, "UPDATE acct SET owner = 'someone' WHERE id = 4", "42501",
         'new row violates row-level security policy for table "acct"')
    _err(b, "INSERT INTO acct VALUES (5, 'someone', 1)", "42501",
         'new row violates row-level security policy for table "acct"')
    cur.execute(f"INSERT INTO acct VALUES (6, '{rls}', 60)")
    assert _all(b, "SELECT id, amount FROM acct ORDER BY id") == [(4, 41), (6, 60)]
    assert _one(ob, "SELECT amount FROM acct WHERE id = 2") == 99  # untouched
    assert _one(ob, "SELECT owner FROM acct WHERE id = 1") == "someone"
    # straight to PostgreSQL: the views show rls what the proxy does, and the
    # key views only keys of which it may see some version (not row 2's)
    tid = _one(own, "SELECT id FROM epoch.tracked WHERE table_name = 'acct'")
    bid = _one(own, "SELECT id FROM epoch.branch WHERE name = 'b'")
    d = env.closing(env.pg.connect(user=rls, password=PW, dbname=db))
    d.autocommit = True
    assert {r[0] for r in _all(d, f"SELECT owner FROM epoch.dv_{tid}")} == {rls}
    assert sorted(r[0] for r in _all(d, f"SELECT id FROM epoch.dk_{tid} WHERE _epoch_branch = {bid}")) \
        == [1, 3, 4, 6]
    # a new policy: the views are stale until refreshed (watch_ddl does it)
    own.cursor().execute("CREATE POLICY big ON acct USING (amount > 90)")
    _err(b, "SELECT id FROM acct", "0A000", "changed since epoch made its views")
    assert _one(m, "SELECT epoch.refresh_policies()") == 2
    assert _all(b, "SELECT id FROM acct ORDER BY id") == [(2,), (4,), (6,)]
    assert _all(m, "SELECT id FROM acct ORDER BY id") == [(1,), (3,)]
    # row-level security enabled on a table tracked without it
    own.cursor().execute("ALTER TABLE item ENABLE ROW LEVEL SECURITY")
    r = env.closing(_conn(px, roles["reader"], db, "b"))
    _err(r, "SELECT count(*) FROM item", "0A000", "changed since epoch made its views")
    _one(r, "SELECT epoch.refresh_policies()")
    assert _one(r, "SELECT count(*) FROM item") == 0  # no policy: no row, as on main
    assert _one(env.closing(_conn(px, roles["reader"], db)), "SELECT count(*) FROM item") == 0
    # epoch's views do not hold the table: it can still be dropped
    own.cursor().execute("DROP TABLE public.acct")


def test_row_level_security_views_follow_ddl_with_watch_ddl(env):
    db = "priv_rls_ddl"
    px, own, roles = _setup(env, db, "prd")
    env.pg.sql("SELECT epoch.watch_ddl()", db=db)
    b = env.closing(_conn(px, roles["rls"], db, "b"))
    assert _all(b, "SELECT id FROM acct ORDER BY id") == [(1,), (3,)]
    own.cursor().execute("CREATE POLICY all_big ON acct USING (amount >= 20)")
    assert _all(b, "SELECT id FROM acct ORDER BY id") == [(1,), (2,), (3,)]
    own.cursor().execute("DROP POLICY all_big ON acct")
    assert _all(b, "SELECT id FROM acct ORDER BY id") == [(1,), (3,)]


def test_column_privileges_on_branch_reads(env):
    """A role with SELECT on some columns reads them on a branch (and at a
    ref) as on main, and is refused the others with main's error; on a
    direct connection the views refuse them too; grants made since the
    views were made are refused as stale until epoch.refresh_policies(), and
    followed at once with watch_ddl()."""
    db = "priv_cols"
    px, own, roles = _setup(env, db, "pcol", column_grants=True)
    ob = env.closing(px.connect(dbname=f"{db}@b", autocommit=True))
    ob.cursor().execute("UPDATE item SET v = 'changed', w = -1 WHERE id = 1")
    ob.cursor().execute("DELETE FROM item WHERE id = 3")
    own.cursor().execute("UPDATE item SET v = 'main moved' WHERE id = 2")  # after the base
    expect = _all(ob, "SELECT id, v FROM item ORDER BY id")
    assert expect[:3] == [(1, "changed"), (2, "v2"), (4, "v4")]
    colr = roles["colr"]
    b = env.closing(_conn(px, colr, db, "b"))
    assert _all(b, "SELECT id, v FROM item ORDER BY id") == expect
    assert _all(b, "SELECT count(*) FROM item") == [(9,)]
    assert _all(b, "SELECT x.v FROM item x WHERE x.id = 1") == [("changed",)]
    for sql in ("SELECT w FROM item", "SELECT * FROM item", "SELECT item FROM item",
                "SELECT id FROM item ORDER BY w"):
        _err(b, sql, "42501", "permission denied for table item")
    m = env.closing(_conn(px, colr, db))
    assert _all(m, 'SELECT v FROM "@b".item WHERE id = 1') == [("changed",)]
    _err(m, 'SELECT w FROM "@b".item WHERE id = 1', "42501", "permission denied for table item")
    assert _all(m, "SELECT v FROM item WHERE id = 1") == [("v1",)]
    # direct connections: the views carry the table's grants
    tid = _one(own, "SELECT id FROM epoch.tracked WHERE table_name = 'item'")
    d = env.closing(env.pg.connect(user=colr, password=PW, dbname=db))
    d.autocommit = True
    assert _all(d, f"SELECT v FROM epoch.dv_{tid} WHERE id = 1") == [("changed",)]
    for sql in (f"SELECT w FROM epoch.dv_{tid}", f"SELECT * FROM epoch.hv_{tid}"):
        _err(d, sql, "42501")
    r = env.closing(env.pg.connect(user=roles["reader"], password=PW, dbname=db))
    r.autocommit = True
    assert _all(r, f"SELECT w FROM epoch.dv_{tid} WHERE id = 1") == [(-1,)]
    # a grant since the views were made: stale until they are made again
    own.cursor().execute(f"GRANT SELECT (w) ON item TO {colr}")
    _err(b, "SELECT id FROM item WHERE id = 1", "0A000", 'privileges of table "item" changed')
    own.cursor().execute("SELECT epoch.refresh_policies()")
    assert _all(b, "SELECT w FROM item WHERE id = 1") == [(-1,)]
    # with watch_ddl(), GRANT and REVOKE make them again by themselves
    env.pg.sql("SELECT epoch.watch_ddl()", db=db)
    own.cursor().execute(f"REVOKE SELECT (w) ON item FROM {colr}")
    _err(b, "SELECT w FROM item WHERE id = 1", "42501", "permission denied for table item")
    assert _all(b, "SELECT v FROM item WHERE id = 1") == [("changed",)]
    own.cursor().execute(f"REVOKE SELECT (id, v) ON item FROM {colr}")
    _err(b, "SELECT v FROM item WHERE id = 1", "42501", "permission denied for table item")
    r2 = env.closing(_conn(px, roles["reader"], db, "b"))
    assert _all(r2, "SELECT w FROM item WHERE id = 1") == [(-1,)]
