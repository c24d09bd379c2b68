"""Branch lifecycle through the proxy: the epoch schema migration, tracking,
branch_create/delete/rename/protect, ttl and sweep, 10,000 branches, choosing
a branch (dbname@branch, options, SET/SHOW/RESET, SET LOCAL, RESET ALL,
DISCARD ALL), what stays refused on branches (writes to untracked tables,
MERGE, TRUNCATE, DDL, DO, SELECT INTO, row locks), read-only epoch.as_of.

Every test works in a database of its own (the cluster is shared with other
modules). Branch rows are put into epoch."d_<id>" with plain SQL on main, so
that these tests do not depend on the branch write path.

Functions named known_bug_* reproduce open proxy bugs (each docstring says
statement, expected, got); the runner runs them as expected failures and fails the
run when one passes. Rename to test_* once fixed."""

import threading
import time

import psycopg2

import harness

TIMEOUT = 120


# ---- helpers ------------------------------------------------------------------------------

def _fresh_db(env, name):
    env.pg.create_database(name)
    return name


def _conn(px, db, branch=None, **kw):
    dbname = f"{db}@{branch}" if branch else db
    kw.setdefault("autocommit", True)
    return px.connect(dbname=dbname, **kw)


def _all(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None


def _one(conn, sql, params=None):
    rows = _all(conn, sql, params)
    assert len(rows) == 1 and len(rows[0]) == 1, f"{sql}: expected one value, got {rows}"
    return rows[0][0]


def _err(conn, sql, sqlstate, message=None, params=None):
    """Run sql, expect an ErrorResponse with sqlstate (and message text in it)."""
    with conn.cursor() as cur:
        try:
            cur.execute(sql, params)
        except psycopg2.Error as e:
            got_msg = e.diag.message_primary or ""
            assert e.pgcode == sqlstate, \
                f"{sql}: expected SQLSTATE {sqlstate}, got {e.pgcode}: {e.pgerror}"
            if message is not None:
                assert message in got_msg, \
                    f"{sql}: expected message containing {message!r}, got {got_msg!r}"
            return e
        rows = cur.fetchall() if cur.description else None
    raise AssertionError(f"{sql}: expected error {sqlstate}, got success {rows!r}")


def _refused(conn, sql, sqlstates):
    """Like _err, but any of several SQLSTATEs will do."""
    with conn.cursor() as cur:
        try:
            cur.execute(sql)
        except psycopg2.Error as e:
            assert e.pgcode in sqlstates, f"{sql}: expected one of {sqlstates}, got {e.pgcode}"
            return e
    raise AssertionError(f"{sql}: expected an error, got success")


def _direct(env, db, sql):
    """A query straight to PostgreSQL (superuser): list of row tuples as text."""
    conn = env.closing(env.pg.admin_connect(db))
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall() if cur.description else None


def _branch_id(env, db, name):
    rows = _direct(env, db, f"SELECT id FROM epoch.branch WHERE name = {harness.quote_literal(name)}")
    assert rows, f"branch {name!r} not in epoch.branch"
    return rows[0][0]


def _delta(env, db, table):
    rows = _direct(env, db, "SELECT delta_table FROM epoch.tables WHERE table_name = "
                   + harness.quote_literal(table))
    assert rows, f"table {table!r} is not tracked"
    return rows[0][0]


ITEMS_MAIN = [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")]
ITEMS_FX = [(1, "X"), (3, "c"), (4, "d"), (5, "e"), (6, "f")]  # feature/x
ITEMS_OTHER = ITEMS_MAIN + [(7, "g")]                            # other


def _items_setup(env, px, db):
    """items (1..5 on main), tracked; notes (untracked); branch feature/x
    (update 1, delete 2, insert 6) and branch other (insert 7)."""
    c = env.closing(_conn(px, db))
    _all(c, "CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL)")
    _all(c, "INSERT INTO items VALUES (1,'a'),(2,'b'),(3,'c'),(4,'d'),(5,'e')")
    _all(c, "CREATE TABLE notes (id int PRIMARY KEY, body text)")
    _all(c, "INSERT INTO notes VALUES (1, 'note')")
    assert _one(c, "SELECT epoch.track('items')") == "public.items"
    assert _one(c, "SELECT epoch.branch_create('feature/x')") == "feature/x"
    assert _one(c, "SELECT epoch.branch_create('other')") == "other"
    d = _delta(env, db, "items")
    fx, other = _branch_id(env, db, "feature/x"), _branch_id(env, db, "other")
    _all(c, f"INSERT INTO epoch.{d} (_epoch_branch, id, v, _epoch_deleted) VALUES "
            f"({fx}, 1, 'X', false), ({fx}, 2, 'b', true), ({fx}, 6, 'f', false), "
            f"({other}, 7, 'g', false)")
    return c


def _items(conn):
    return _all(conn, "SELECT id, v FROM items ORDER BY id")


# ---- migration ----------------------------------------------------------------------------

def _epoch_objects(env, db):
    return _direct(env, db, """
        SELECT 'rel', relname::text, relkind::text FROM pg_class
         WHERE relnamespace = 'epoch'::regnamespace
        UNION ALL
        SELECT 'proc', proname::text, pg_get_function_identity_arguments(oid) FROM pg_proc
         WHERE pronamespace = 'epoch'::regnamespace
        ORDER BY 1, 2, 3""")


def test_migration_on_first_use_concurrent_and_idempotent(env):
    db = _fresh_db(env, "tb_migrate")
    px = env.proxy(workers=2)
    c = env.closing(_conn(px, db))
    for t in ("t1", "t2", "t3"):
        _all(c, f"CREATE TABLE {t} (id int PRIMARY KEY, v text)")
    _all(c, "INSERT INTO t1 VALUES (1, 'one')")
    # plain SQL on main does not create the schema
    assert _direct(env, db, "SELECT to_regnamespace('epoch') IS NULL") == [(True,)]

    # four sessions use epoch at the same moment: two track, two create branches
    conns = [env.closing(_conn(px, db)) for _ in range(4)]
    stmts = ["SELECT epoch.track('t1')", "SELECT epoch.track('t2')",
             "SELECT epoch.branch_create('c1')", "SELECT epoch.branch_create('c2')"]
    barrier = threading.Barrier(len(conns))
    results, errors = {}, {}

    def worker(i):
        try:
            barrier.wait(timeout=10)
            results[i] = _one(conns[i], stmts[i])
        except Exception as e:  # reported below
            errors[i] = repr(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(conns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, f"concurrent first use failed: {errors}"
    assert results == {0: "public.t1", 1: "public.t2", 2: "c1", 3: "c2"}, results

    assert _direct(env, db, "SELECT key, value FROM epoch.meta WHERE key = 'schema_version'") \
        == [("schema_version", harness.SCHEMA_VERSION)]
    assert _direct(env, db, "SELECT table_name FROM epoch.tables ORDER BY 1") == [("t1",), ("t2",)]
    assert _direct(env, db, "SELECT name, parent FROM epoch.branches ORDER BY name") == \
        [("c1", "main"), ("c2", "main"), ("main", None)]
    before = _epoch_objects(env, db)
    assert ("rel", "d_1", "r") in before and ("rel", "h_2", "r") in before, before

    # a new session (and a new proxy) runs the migration again: a no-op
    c2 = env.closing(_conn(px, db))
    assert _one(c2, "SELECT count(*) FROM epoch.branches") == 3
    px2 = env.proxy()
    c3 = env.closing(_conn(px2, db))
    assert _one(c3, "SELECT epoch.track('t3')") == "public.t3"
    after = _epoch_objects(env, db)
    assert after == sorted(before + [("proc", "capture_3", ""), ("rel", "d_3", "r"),
                                     ("proc", "bcapture_3", ""), ("rel", "b_3", "r"),
                                     ("rel", "b_3__epoch_branch__epoch_seq_idx", "i"),
                                     ("rel", "b_3__epoch_branch_id__epoch_seq_idx", "i"),
                                     ("rel", "d_3_pkey", "i"), ("rel", "h_3", "r"),
                                     ("rel", "h_3__epoch_seq_idx", "i"),
                                     ("rel", "h_3_id__epoch_seq_idx", "i"),
                                     ("rel", "dv_3", "v"), ("rel", "hv_3", "v"),
                                     ("rel", "bv_3", "v"), ("rel", "dk_3", "v"),
                                     ("rel", "hk_3", "v"), ("rel", "bk_3", "v"),
                                     ("proc", "_rls_fresh_3", ""), ("proc", "_gate_3", ""),
                                     ("proc", "_hmax_3", ""),
                                     ("proc", "_rls_ok_3", 'cmd "char", r jsonb'),
                                     ("proc", "_key_taken_3", "bid bigint, base bigint, integer")]), \
        (before, after)
    assert _direct(env, db, "SELECT name FROM epoch.branch ORDER BY name") == \
        [("c1",), ("c2",), ("main",)]
    assert _direct(env, db, "SELECT value FROM epoch.meta WHERE key = 'schema_version'") \
        == [(harness.SCHEMA_VERSION,)]

    # a schema newer than the proxy is refused, not "migrated"
    _direct(env, db, "UPDATE epoch.meta SET value = 99 WHERE key = 'schema_version'")
    c4 = env.closing(_conn(px2, db))
    _err(c4, "SELECT count(*) FROM epoch.branches", "55000", "newer than this proxy")
    assert _one(c4, "SELECT 1") == 1  # the session stays usable
    assert _direct(env, db, "SELECT count(*) FROM epoch.branch") == [(3,)]


def test_branch_login_skips_the_migration_when_the_schema_is_current(env):
    """A branch login checks the schema version with the catalog load (the
    'version' row of migration 7) instead of running the migration DO block:
    with the migration's advisory lock held elsewhere, a login to a current
    schema does not wait for it. A schema newer than the proxy is refused at
    login with 55000, and a schema one step older is migrated at login."""
    db = _fresh_db(env, "tb_login_version")
    px = env.proxy()
    _items_setup(env, px, db)
    lock = env.closing(env.pg.admin_connect(db))
    lock.autocommit = True
    with lock.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(435509177192)")  # migrate.c's lock key
    start = time.monotonic()
    b = env.closing(_conn(px, db, "feature/x", connect_timeout=10))
    assert time.monotonic() - start < 5
    assert _items(b) == ITEMS_FX
    with lock.cursor() as cur:
        cur.execute("SELECT pg_advisory_unlock(435509177192)")

    _direct(env, db, "UPDATE epoch.meta SET value = 99 WHERE key = 'schema_version'")
    try:
        env.closing(_conn(px, db, "feature/x"))
    except psycopg2.OperationalError as e:
        assert "schema in this database is at version 99, newer than this proxy" in str(e), str(e)
    else:
        raise AssertionError("logged in to a branch of a schema newer than the proxy")

    # one step older: the version row is there but says less; the login migrates
    _direct(env, db, f"UPDATE epoch.meta SET value = {harness.SCHEMA_VERSION - 1} "
                     "WHERE key = 'schema_version'")
    b2 = env.closing(_conn(px, db, "feature/x"))
    assert _items(b2) == ITEMS_FX
    assert _direct(env, db, "SELECT value FROM epoch.meta WHERE key = 'schema_version'") \
        == [(harness.SCHEMA_VERSION,)]


def test_branch_logins_share_the_catalog_of_the_worker(env):
    """A branch login takes the catalog that an earlier session of the same
    database, user and startup parameters loaded (src/session/catalog_cache.c)
    once one light query confirms the schema version, the branch's id and
    base and the catalog version: the statement log shows
    epoch._session_current() once for several logins. Changes made while no
    branch session of the proxy listens for catalog notifications are caught
    by that query: a branch deleted and made again under its name (its old
    rows must not show), a table tracked since, a base moved by a sync."""
    db = _fresh_db(env, "tb_login_cache")
    px = env.proxy()
    c = _items_setup(env, px, db)  # a session on main: it does not LISTEN
    env.pg.sql(f"ALTER DATABASE {db} SET log_statement = 'all'")

    def loads():
        return env.pg.log_text().count("epoch._session_current()")

    def checks():
        return env.pg.log_text().count("current_setting('epoch.branch', true)), ")

    def login(branch, want):
        b = _conn(px, db, branch)
        try:
            assert _items(b) == want
        finally:
            b.close()

    login("feature/x", ITEMS_FX)
    n = loads()
    for _ in range(3):
        login("feature/x", ITEMS_FX)
    assert loads() == n, "each login loaded the catalog again"
    assert checks() >= 3
    login("other", ITEMS_OTHER)  # another branch: its own entry
    assert loads() == n + 1

    # the branch deleted and made again (straight in PostgreSQL, while no
    # session of the proxy is open: no notification reaches it): same name,
    # new id, none of its rows
    c.close()
    direct = env.closing(env.pg.admin_connect(db))
    direct.autocommit = True
    _all(direct, "SELECT epoch.branch_delete('feature/x', force => true)")
    _all(direct, "SELECT epoch.branch_create('feature/x')")
    login("feature/x", ITEMS_MAIN)
    assert loads() > n + 1
    # a table tracked since: the next login rewrites it to the branch
    c = env.closing(_conn(px, db))
    _all(c, "CREATE TABLE public.extra (id int PRIMARY KEY, v text)")
    _all(c, "INSERT INTO public.extra VALUES (1, 'main')")
    _all(c, "SELECT epoch.track('public.extra')")
    b = env.closing(_conn(px, db, "feature/x"))
    _all(b, "UPDATE extra SET v = 'branch' WHERE id = 1")
    assert _all(b, "SELECT v FROM extra") == [("branch",)]
    assert _all(c, "SELECT v FROM extra") == [("main",)]
    _all(b, "SELECT epoch.commit('extra')")
    b.close()
    # a base moved by a sync: main's change made before it shows after it
    _all(c, "UPDATE items SET v = 'synced' WHERE id = 5")
    login("feature/x", [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")])
    _all(c, "SELECT * FROM epoch.sync('feature/x')")
    login("feature/x", [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "synced")])


def test_branch_notifications_reach_only_their_branch_s_sessions(env):
    """Deleting, renaming or rebasing a branch notifies its id (schema step
    14): sessions of other branches keep their catalog (before, every
    session of every branch reloaded it after any branch_delete), while the
    sessions of that branch load theirs again and learn it is gone."""
    db = _fresh_db(env, "tb_branch_notify")
    px = env.proxy()
    c = _items_setup(env, px, db)
    env.pg.sql(f"ALTER DATABASE {db} SET log_statement = 'all'")

    def loads():
        return env.pg.log_text().count("epoch._session_current()")

    a = env.closing(_conn(px, db, "feature/x"))
    o = env.closing(_conn(px, db, "other"))
    assert _items(a) == ITEMS_FX and _items(o) == ITEMS_OTHER
    n = loads()
    for i in range(3):  # an agent's short-lived branches
        _all(c, f"SELECT epoch.branch_create('tmp{i}')")
        _all(c, f"SELECT epoch.branch_delete('tmp{i}')")
    time.sleep(0.3)  # the notifications reach the proxy's connections
    assert _items(a) == ITEMS_FX and _items(o) == ITEMS_OTHER
    assert loads() == n, "sessions of other branches loaded their catalog again"
    _all(c, "SELECT epoch.branch_delete('other', force => true)")
    time.sleep(0.3)
    assert _items(a) == ITEMS_FX
    _err(o, "SELECT id, v FROM items ORDER BY id", "42704", 'branch "other" does not exist')
    assert loads() > n


def test_sessions_that_start_on_a_branch_plan_once(env):
    """branch_plans = generic (the default): a session that starts on a
    branch runs with plan_cache_mode = force_generic_plan, so the overlay of
    a prepared statement is planned once, not at every execution (issue 16:
    a branch's range read spent more time planning than running). Main's
    sessions and a client that chose its own plan_cache_mode are left
    alone; branch_plans = postgres leaves every session alone."""
    db = _fresh_db(env, "tb_plans")
    px = env.proxy()
    _items_setup(env, px, db)
    b = env.closing(_conn(px, db, "feature/x"))
    assert _one(b, "SHOW plan_cache_mode") == "force_generic_plan"
    assert _items(b) == ITEMS_FX
    m = env.closing(_conn(px, db))
    assert _one(m, "SHOW plan_cache_mode") == "auto"
    own = env.closing(_conn(px, db, "feature/x", options="-c plan_cache_mode=force_custom_plan"))
    assert _one(own, "SHOW plan_cache_mode") == "force_custom_plan"
    # a prepared range read on the branch: one plan for every execution
    with b.cursor() as cur:
        cur.execute("PREPARE r(int, int) AS SELECT id, v FROM items WHERE id BETWEEN $1 AND $2 "
                    "ORDER BY id")
        for lo, hi in ((1, 3), (3, 6), (1, 6)):
            cur.execute("EXECUTE r(%s, %s)", (lo, hi))
            assert cur.fetchall() == [r for r in ITEMS_FX if lo <= r[0] <= hi]
        cur.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                    "WHERE name = 'r'")
        assert cur.fetchone() == (3, 0)
    px2 = env.proxy(config={"branch_plans": "postgres"})
    b2 = env.closing(_conn(px2, db, "feature/x"))
    assert _one(b2, "SHOW plan_cache_mode") == "auto"


def test_branch_create_rolled_back_leaves_nothing(env):
    """Control functions run inside the client's transaction: BEGIN;
    branch_create; track; ROLLBACK leaves nothing behind."""
    db = _fresh_db(env, "tb_rollback")
    px = env.proxy()
    c = env.closing(_conn(px, db))
    _all(c, "CREATE TABLE t (id int PRIMARY KEY)")
    assert _one(c, "SELECT count(*) FROM epoch.branches") == 1  # migrated, outside a transaction
    _all(c, "BEGIN")
    assert _one(c, "SELECT epoch.branch_create('z', description => 'rolled back')") == "z"
    assert _one(c, "SELECT epoch.track('t')") == "public.t"
    assert _all(c, "SELECT name FROM epoch.branches ORDER BY name") == [("main",), ("z",)]
    _all(c, "ROLLBACK")
    assert _direct(env, db, "SELECT name FROM epoch.branch ORDER BY name") == [("main",)]
    assert _direct(env, db, "SELECT count(*) FROM epoch.tracked") == [(0,)]
    assert _direct(env, db, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.t'::regclass") \
        == [(0,)]
    # the name is free, and a committed transaction keeps it
    _all(c, "BEGIN")
    assert _one(c, "SELECT epoch.branch_create('z')") == "z"
    _all(c, "COMMIT")
    c2 = env.closing(_conn(px, db, "z"))
    assert _one(c2, "SHOW epoch.branch") == "z"


def _within(px, seconds, fn):
    """Run fn() in a thread; if it is not done within seconds, kill the proxy
    (which unblocks it) and fail."""
    box = {}

    def run():
        try:
            box["value"] = fn()
        except Exception as e:
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        px.kill()
        t.join(10)
        raise AssertionError(f"no answer within {seconds}s (the proxy was killed)")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def test_first_epoch_use_inside_transaction_block(env):
    """BUG: a session whose first epoch statement comes inside BEGIN ... never
    gets an answer: the proxy runs the migration DO block and "SELECT 1" in a
    loop forever (migrated_cb only marks the session migrated when the
    server is idle, 'I', and inside the client's transaction it is 'T').
    Happens on a fresh database and on one with the schema in place, so every
    psycopg2 client in its default (non-autocommit) mode is affected."""
    db = _fresh_db(env, "tb_first_in_tx")
    px = env.proxy()
    c = env.closing(_conn(px, db, autocommit=False))
    with c.cursor() as cur:
        cur.execute("CREATE TABLE t (id int PRIMARY KEY)")
    c.commit()

    def first_use():
        with c.cursor() as cur:
            cur.execute("SELECT epoch.branch_create('x')")  # psycopg2 sent BEGIN first
            return cur.fetchall()

    assert _within(px, 10, first_use) == [("x",)]
    with c.cursor() as cur:
        cur.execute("SELECT name FROM epoch.branches ORDER BY name")
        assert cur.fetchall() == [("main",), ("x",)]
    c.rollback()
    # the migration ran inside the client's transaction: rolled back with it
    assert _direct(env, db, "SELECT to_regnamespace('epoch') IS NULL") == [(True,)]
    assert _within(px, 10, first_use) == [("x",)]
    c.commit()
    assert _direct(env, db, "SELECT name FROM epoch.branch ORDER BY name") == [("main",), ("x",)]
    # schema in place, a new session, first epoch statement in a transaction
    c2 = env.closing(_conn(px, db, autocommit=False))

    def count():
        with c2.cursor() as cur:
            cur.execute("SELECT count(*) FROM epoch.branches")
            return cur.fetchall()

    assert _within(px, 10, count) == [(2,)]
    c2.rollback()


def test_rollback_after_epoch_statement_in_failed_transaction(env):
    """BUG: in a failed (aborted) transaction, an epoch statement (SET/RESET
    epoch.branch, an epoch.* call, or SET to an unknown branch) makes every
    later statement fail with 25P02, ROLLBACK included: the proxy queues its
    catalog refresh (SELECT * FROM epoch._session_current()) before each
    statement, that fails inside the aborted transaction, and the proxy answers
    the client's ROLLBACK with that error instead of forwarding it. The session
    can never leave the transaction.
        BEGIN; SET epoch.branch = 'nope';            -- 42704, fine
        ROLLBACK;   expected: ROLLBACK   got: ERROR 25P02 (forever)"""
    db = _fresh_db(env, "tb_stuck")
    px = env.proxy()
    _items_setup(env, px, db)
    # (steps, branch after the ROLLBACK); the session is in autocommit, so a
    # SET before BEGIN stays, as in PostgreSQL
    cases = [
        (["BEGIN", ("SET epoch.branch = 'nope'", "42704")], "main"),
        (["BEGIN", ("SELECT 1/0", "22012"), ("SELECT epoch.branch_create('q')", "25P02")], "main"),
        (["BEGIN", ("SELECT 1/0", "22012"), ("SET epoch.branch = 'other'", "25P02")], "main"),
        (["SET epoch.branch = 'other'", "BEGIN", ("SELECT 1/0", "22012"),
          ("RESET epoch.branch", "25P02")], "other"),
    ]
    failures = []
    for steps, after in cases:
        c = env.closing(_conn(px, db))
        assert _one(c, "SELECT count(*) FROM epoch.branches") == 3
        assert _one(c, "SHOW epoch.branch") == "main"
        for step in steps:
            if isinstance(step, tuple):
                _err(c, step[0], step[1])
            else:
                _all(c, step)
        try:
            _all(c, "ROLLBACK")
            assert _one(c, "SHOW epoch.branch") == after
            assert _items(c) == (ITEMS_OTHER if after == "other" else ITEMS_MAIN)
        except (psycopg2.Error, AssertionError) as e:
            failures.append(f"{steps}: ROLLBACK then reads: {e!r}")
    assert not failures, "\n".join(failures)


# ---- tracking -----------------------------------------------------------------------------

def test_track_errors(env):
    db = _fresh_db(env, "tb_track")
    px = env.proxy()
    c = env.closing(_conn(px, db))
    _all(c, "CREATE TABLE users (id int PRIMARY KEY, name text)")
    _all(c, "CREATE TABLE nopk (a int, b text)")
    _all(c, "CREATE VIEW v_users AS SELECT * FROM users")
    _all(c, "CREATE TEMP TABLE tmp (id int PRIMARY KEY)")
    _all(c, "CREATE TABLE bad_cols (id int PRIMARY KEY, _epoch_x int)")
    _all(c, "CREATE TABLE parted (id int PRIMARY KEY) PARTITION BY RANGE (id)")

    e = _err(c, "SELECT epoch.track('nopk')", "55000",
             'table "nopk" has no primary key; epoch cannot track it')
    assert "ADD PRIMARY KEY" in (e.diag.message_hint or ""), e.diag.message_hint
    _err(c, "SELECT epoch.track('v_users')", "42809",
         '"v_users" is not an ordinary table; epoch can track only ordinary tables')
    _err(c, "SELECT epoch.track('tmp')", "42809", "cannot be tracked (temporary or system table)")
    _err(c, "SELECT epoch.track('no_such_table')", "42P01",
         'relation "no_such_table" does not exist')
    _err(c, "SELECT epoch.track('bad_cols')", "42701", "_epoch_x")
    _err(c, "SELECT epoch.track('parted')", "42809", "not an ordinary table")

    assert _one(c, "SELECT epoch.track('users')") == "public.users"
    c.notices.clear()
    assert _one(c, "SELECT epoch.track('public.users')") == "public.users"
    assert any("table public.users is already tracked" in n for n in c.notices), c.notices
    assert _direct(env, db, "SELECT schema_name, table_name, primary_key FROM epoch.tables") == \
        [("public", "users", ["id"])]
    assert _direct(env, db, "SELECT relname FROM pg_class WHERE relnamespace = "
                            "'epoch'::regnamespace AND relname ~ '^[dh]_' AND relkind = 'r' "
                            "ORDER BY 1") == [("d_1",), ("h_1",)]
    assert _direct(env, db, "SELECT tgname FROM pg_trigger WHERE tgrelid = 'users'::regclass "
                            "ORDER BY 1") == [("epoch_capture_del",), ("epoch_capture_ins",),
                                              ("epoch_capture_lock",), ("epoch_capture_trunc",),
                                              ("epoch_capture_upd",)]


def test_track_all(env):
    db = _fresh_db(env, "tb_track_all")
    px = env.proxy()
    c = env.closing(_conn(px, db))
    _all(c, "CREATE TABLE a (id int PRIMARY KEY)")
    _all(c, "CREATE TABLE b (k1 int, k2 text, PRIMARY KEY (k2, k1))")
    _all(c, 'CREATE TABLE "Cap" ("Id" int PRIMARY KEY)')
    _all(c, "CREATE TABLE nopk (x int)")
    _all(c, "CREATE VIEW av AS SELECT * FROM a")
    _all(c, "CREATE SCHEMA other")
    _all(c, "CREATE TABLE other.x (id int PRIMARY KEY)")
    assert _one(c, "SELECT epoch.track('a')") == "public.a"
    c.notices.clear()
    assert _all(c, "SELECT * FROM epoch.track_all()") == [('public."Cap"',), ("public.b",)]
    assert any('table "nopk" has no primary key; not tracked' in n for n in c.notices), c.notices
    assert _all(c, "SELECT * FROM epoch.track_all('public')") == []
    assert _all(c, "SELECT epoch.track_all(schema_name => 'other')") == [("other.x",)]
    _err(c, "SELECT * FROM epoch.track_all('nosuch')", "3F000", 'schema "nosuch" does not exist')
    assert _direct(env, db, "SELECT schema_name, table_name, primary_key FROM epoch.tables "
                            "ORDER BY 1, 2") == [("other", "x", ["id"]),
                                                 ("public", "Cap", ["Id"]),
                                                 ("public", "a", ["id"]),
                                                 ("public", "b", ["k2", "k1"])]


def test_untrack(env):
    db = _fresh_db(env, "tb_untrack")
    px = env.proxy()
    c = env.closing(_conn(px, db))
    _all(c, "CREATE TABLE t (id int PRIMARY KEY, v text)")
    _all(c, "CREATE TABLE u (id int PRIMARY KEY)")
    _all(c, "INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    assert _one(c, "SELECT epoch.track('t')") == "public.t"
    _err(c, "SELECT epoch.untrack('u')", "42P01", 'table "u" is not tracked')
    # no branch rows: untrack removes triggers, delta and history
    assert _one(c, "SELECT epoch.untrack('t')") == "public.t"
    assert _direct(env, db, "SELECT count(*) FROM epoch.tracked") == [(0,)]
    assert _direct(env, db, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 't'::regclass") == \
        [(0,)]
    assert _direct(env, db, "SELECT to_regclass('epoch.d_1'), to_regclass('epoch.h_1')") == \
        [(None, None)]

    # again, now with a branch that changed a row
    assert _one(c, "SELECT epoch.track('t')") == "public.t"
    assert _one(c, "SELECT epoch.branch_create('b')") == "b"
    d = _delta(env, db, "t")
    assert d == "d_2"
    bid = _branch_id(env, db, "b")
    _all(c, f"INSERT INTO epoch.{d} VALUES ({bid}, 1, 'changed', false)")
    _err(c, "SELECT epoch.untrack('t')", "55000", 'table "t" has 1 changed rows on branches')
    assert _direct(env, db, "SELECT table_name FROM epoch.tables") == [("t",)]
    assert _one(c, "SELECT epoch.untrack('t', force => true)") == "public.t"
    assert _direct(env, db, "SELECT count(*) FROM epoch.tracked") == [(0,)]
    assert _direct(env, db, "SELECT to_regclass('epoch.d_2'), to_regclass('epoch.h_2')") == \
        [(None, None)]
    assert _direct(env, db, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 't'::regclass") == \
        [(0,)]
    # an untracked table reads the same on every branch (a new session)
    b = env.closing(_conn(px, db, "b"))
    assert _all(b, "SELECT * FROM t ORDER BY id") == [(1, "a"), (2, "b")]
    _all(c, "UPDATE t SET v = 'after' WHERE id = 2")  # no trigger any more
    assert _all(b, "SELECT * FROM t ORDER BY id") == [(1, "a"), (2, "after")]


def test_track_million_rows_is_instant(env):
    """track() is O(1) in the table's size: tracking 1,000,000 rows costs about
    what tracking 10,000 does. (A bound on complexity, not a benchmark: both are
    timed in the same run, interleaved, best of three, so that a slow machine,
    ASan or parallel shards slow both alike; an absolute '< 1 s' flaked.)"""
    db = _fresh_db(env, "tb_big")
    px = env.proxy()
    c = env.closing(_conn(px, db))
    for table, rows in (("big", 1000000), ("small", 10000)):
        _all(c, f"CREATE TABLE {table} (id int, v int NOT NULL)")
        _all(c, f"INSERT INTO {table} SELECT g, g % 1000 FROM generate_series(1, {rows}) g")
        _all(c, f"ALTER TABLE {table} ADD PRIMARY KEY (id)")
        _all(c, f"ANALYZE {table}")
    # migrate first, so that only track() is measured
    assert _one(c, "SELECT count(*) FROM epoch.tables") == 0

    def timed_track(table):
        start = time.monotonic()
        assert _one(c, f"SELECT epoch.track('{table}')") == f"public.{table}"
        return time.monotonic() - start

    small, big = [], []
    for rnd in range(3):
        small.append(timed_track("small"))
        _all(c, "SELECT epoch.untrack('small')")
        big.append(timed_track("big"))
        if rnd < 2:
            _all(c, "SELECT epoch.untrack('big')")
    # 100x the rows: both take ~10-50 ms; a copy of the rows (O(n)) adds ~0.5 s
    # even into a temporary table, a sequential scan ~0.1 s
    assert min(big) < 4 * min(small) + 0.2, \
        f"track(): 1,000,000 rows {min(big):.3f}s, 10,000 rows {min(small):.3f}s " \
        f"(best of {big} / {small})"
    delta, hist = _direct(env, db, "SELECT delta_table, history_table FROM epoch.tables "
                                   "WHERE table_name = 'big'")[0]
    assert _direct(env, db, f"SELECT (SELECT count(*) FROM epoch.{delta}), "
                            f"(SELECT count(*) FROM epoch.{hist}), "
                            "(SELECT count(*) FROM big)") == [(0, 0, 1000000)]
    # the branch sees all of it through the (empty) overlay
    assert _one(c, "SELECT epoch.branch_create('b')") == "b"
    b = env.closing(_conn(px, db, "b"))
    assert _all(b, "SELECT count(*), sum(v) FROM big") == [(1000000, 499500000)]


# ---- branch_create ------------------------------------------------------------------------

def test_branch_create_arguments(env):
    db = _fresh_db(env, "tb_create")
    px = env.proxy()
    c = env.closing(_conn(px, db))
    _all(c, "CREATE TABLE t (id int PRIMARY KEY)")
    assert _one(c, "SELECT epoch.branch_create('a')") == "a"
    assert _one(c, "SELECT epoch.branch_create('b', 'a')") == "b"
    assert _one(c, "SELECT epoch.branch_create('c', from => 'main')") == "c"
    assert _one(c, "SELECT epoch.branch_create('c2', from=>'a')") == "c2"
    assert _one(c, "SELECT epoch.branch_create('c3', FROM => 'a')") == "c3"
    assert _one(c, "SELECT epoch.branch_create(name => 'd', from => 'a', description => 'about d', "
                   "agent_id => 'agent-7', ttl => '1 hour')") == "d"
    assert _all(c, "SELECT * FROM epoch.branch_create('e', 'main', 'desc e', 'agent-e')") == \
        [("e",)]
    assert _one(c, "SELECT epoch.branch_create('feature/x-1.2_y', description => 'it''s')") == \
        "feature/x-1.2_y"
    rows = _all(c, """SELECT name, parent, description, agent_id, status,
                             expires_at - created_at, created_by
                        FROM epoch.branches ORDER BY name""")
    import datetime
    hour = datetime.timedelta(hours=1)
    assert rows == [
        ("a", "main", None, None, "active", None, "epoch"),
        ("b", "a", None, None, "active", None, "epoch"),
        ("c", "main", None, None, "active", None, "epoch"),
        ("c2", "a", None, None, "active", None, "epoch"),
        ("c3", "a", None, None, "active", None, "epoch"),
        ("d", "a", "about d", "agent-7", "active", hour, "epoch"),
        ("e", "main", "desc e", "agent-e", "active", None, "epoch"),
        ("feature/x-1.2_y", "main", "it's", None, "active", None, "epoch"),
        ("main", None, "the live tables", None, "main", None, "epoch"),
    ], rows
    _err(c, "SELECT epoch.branch_create('f', ttl => '-1 hour')", "22023", "ttl must be positive")
    _err(c, "SELECT epoch.branch_create('f', ttl => '0')", "22023", "ttl must be positive")
    _err(c, "SELECT epoch.branch_create('a')", "42710", 'branch "a" already exists')
    _err(c, "SELECT epoch.branch_create('f', from => 'nope')", "42704",
         'ref "nope" does not exist')
    _err(c, "SELECT epoch.branch_create('f', 'nope')", "42704", 'ref "nope" does not exist')
    assert _direct(env, db, "SELECT count(*) FROM epoch.branch WHERE name = 'f'") == [(0,)]


BAD_NAMES = [
    ("", "empty"),
    ("main", "reserved"),
    ("has space", "space"),
    (" lead", "leading space"),
    ("tab\there", "tab"),
    ("ctl\x01x", "control character"),
    ("nl\nx", "newline"),
    ("a@b", "@"),
    ("@", "@ alone"),
    ("a..b", ".."),
    ("/lead", "leading /"),
    ("x.lock", "trailing .lock"),
    ("feature/x.lock", "trailing .lock in a path"),
    ("a" * 201, "201 bytes"),
    ("é" * 101, "202 bytes in 101 characters"),
]


def test_branch_create_bad_names(env):
    db = _fresh_db(env, "tb_names")
    px = env.proxy()
    c = env.closing(_conn(px, db))
    for name, why in BAD_NAMES:
        e = _err(c, "SELECT epoch.branch_create(%s)", "22023", "invalid branch name", (name,))
        assert e.diag.message_detail, f"{why}: no DETAIL saying why"
    _err(c, "SELECT epoch.branch_create(NULL)", "22023")
    # the limits themselves are fine
    ok = ["a" * 200, "é" * 100, "feature/x", "release-1.0", "a_b", "x.locked", "UPPER/Case"]
    for name in ok:
        assert _one(c, "SELECT epoch.branch_create(%s)", (name,)) == name
    assert sorted(r[0] for r in _all(c, "SELECT name FROM epoch.branches")) == sorted(ok + ["main"])
    # rename applies the same rules
    for name, why in BAD_NAMES:
        _err(c, "SELECT epoch.branch_rename('a_b', %s)", "22023", "invalid branch name", (name,))


def test_branch_from_branch_copies_parent_delta(env):
    db = _fresh_db(env, "tb_child")
    px = env.proxy()
    c = _items_setup(env, px, db)
    # main changes after feature/x was made: invisible to feature/x and to its children
    _all(c, "UPDATE items SET v = 'main-late' WHERE id = 4")
    _all(c, "INSERT INTO items VALUES (8, 'late')")
    assert _one(c, "SELECT epoch.branch_create('child', from => 'feature/x')") == "child"
    d = _delta(env, db, "items")
    fx, child, other = (_branch_id(env, db, n) for n in ("feature/x", "child", "other"))
    q = f"SELECT id, v, _epoch_deleted FROM epoch.{d} WHERE _epoch_branch = %s ORDER BY id"
    parent_rows = _direct(env, db, q % fx)
    assert parent_rows == [(1, "X", False), (2, "b", True), (6, "f", False)]
    assert _direct(env, db, q % child) == parent_rows
    assert _direct(env, db, f"SELECT count(*) FROM epoch.{d}") == [(7,)]  # 3 + 3 + other's 1
    assert other != child
    ch = env.closing(_conn(px, db, "child"))
    assert _items(ch) == ITEMS_FX
    assert _one(c, "SELECT parent FROM epoch.branches WHERE name = 'child'") == "feature/x"
    # a copy, not a link: later changes of the parent do not reach the child
    _all(c, f"UPDATE epoch.{d} SET v = 'X2' WHERE _epoch_branch = {fx} AND id = 1")
    fxc = env.closing(_conn(px, db, "feature/x"))
    assert _items(fxc)[0] == (1, "X2")
    assert _items(ch) == ITEMS_FX
    # a child of a branch without changes has none either
    assert _one(c, "SELECT epoch.branch_create('grandchild', 'child')") == "grandchild"
    gc = _branch_id(env, db, "grandchild")
    assert _direct(env, db, q % gc) == parent_rows
    assert _items(env.closing(_conn(px, db, "grandchild"))) == ITEMS_FX
    # main itself moved on
    assert _items(c) == [(1, "a"), (2, "b"), (3, "c"), (4, "main-late"), (5, "e"), (8, "late")]


# ---- delete / rename / protect / ttl --------------------------------------------------------

def test_branch_delete(env):
    db = _fresh_db(env, "tb_delete")
    px = env.proxy()
    c = env.closing(_conn(px, db))
    _all(c, "CREATE TABLE t (id int PRIMARY KEY, v text)")
    _all(c, "INSERT INTO t VALUES (1, 'a')")
    _all(c, "SELECT epoch.track('t')")
    for stmt in ("SELECT epoch.branch_create('parent')",
                 "SELECT epoch.branch_create('dirty')",
                 "SELECT epoch.branch_create('prot')",
                 "SELECT epoch.branch_create('plain')",
                 "SELECT epoch.branch_protect('prot', true)"):
        _all(c, stmt)
    d = _delta(env, db, "t")
    _all(c, f"INSERT INTO epoch.{d} VALUES ({_branch_id(env, db, 'dirty')}, 1, 'd', false)")
    _all(c, f"INSERT INTO epoch.{d} VALUES ({_branch_id(env, db, 'parent')}, 2, 'p', false)")
    _all(c, "SELECT epoch.branch_create('child', 'parent')")

    _err(c, "SELECT epoch.branch_delete('main')", "42501", 'branch "main" cannot be deleted')
    _err(c, "SELECT epoch.branch_delete('main', force => true)", "42501")
    _err(c, "SELECT epoch.branch_delete('nope')", "42704", 'branch "nope" does not exist')
    _err(c, "SELECT epoch.branch_delete('parent')", "2BP01",
         'branch "parent" has child branches: child')
    _err(c, "SELECT epoch.branch_delete('dirty')", "55000",
         'branch "dirty" has 1 unmerged changed rows')
    _err(c, "SELECT epoch.branch_delete('prot')", "42501", 'branch "prot" is protected')
    _err(c, "SELECT epoch.branch_delete('prot', true)", "42501", 'branch "prot" is protected')
    _err(c, "SELECT epoch.branch_protect('main', false)", "42501")
    _err(c, "SELECT epoch.branch_protect('nope')", "42704")
    assert _one(c, "SELECT status FROM epoch.branches WHERE name = 'prot'") == "protected"
    assert sorted(r[0] for r in _all(c, "SELECT name FROM epoch.branches")) == \
        ["child", "dirty", "main", "parent", "plain", "prot"]

    assert _one(c, "SELECT epoch.branch_delete('plain')") == "plain"
    assert _one(c, "SELECT epoch.branch_protect('prot', false)") == "prot"
    assert _one(c, "SELECT status FROM epoch.branches WHERE name = 'prot'") == "active"
    assert _one(c, "SELECT epoch.branch_delete('prot')") == "prot"
    dirty_id = _branch_id(env, db, "dirty")
    assert _one(c, "SELECT epoch.branch_delete('dirty', force => true)") == "dirty"
    assert _direct(env, db, f"SELECT count(*) FROM epoch.{d} WHERE _epoch_branch = {dirty_id}") \
        == [(0,)]
    assert _one(c, "SELECT epoch.branch_delete('parent', true)") == "parent"
    # the child keeps its own copy of the parent's rows
    assert _all(c, "SELECT name, parent FROM epoch.branches ORDER BY name") == \
        [("child", None), ("main", None)]
    ch = env.closing(_conn(px, db, "child"))
    assert _all(ch, "SELECT id, v FROM t ORDER BY id") == [(1, "a"), (2, "p")]
    _err(c, "SELECT epoch.branch_delete('child')", "55000", "unmerged changed rows")
    assert _one(c, "SELECT epoch.branch_delete('child', true)") == "child"
    assert _all(c, "SELECT name FROM epoch.branches") == [("main",)]
    assert _direct(env, db, f"SELECT count(*) FROM epoch.{d}") == [(0,)]
    # a deleted branch cannot be chosen any more
    try:
        _conn(px, db, "plain")
    except psycopg2.OperationalError as e:
        assert 'branch "plain" does not exist' in str(e), str(e)
    else:
        raise AssertionError("connected to a deleted branch")


def test_branch_rename(env):
    db = _fresh_db(env, "tb_rename")
    px = env.proxy()
    c = _items_setup(env, px, db)
    fx = _branch_id(env, db, "feature/x")
    assert _one(c, "SELECT epoch.branch_rename('feature/x', 'feature/y')") == "feature/y"
    assert _branch_id(env, db, "feature/y") == fx
    assert sorted(r[0] for r in _all(c, "SELECT name FROM epoch.branches")) == \
        ["feature/y", "main", "other"]
    assert _items(env.closing(_conn(px, db, "feature/y"))) == ITEMS_FX
    try:
        _conn(px, db, "feature/x")
    except psycopg2.OperationalError as e:
        assert 'branch "feature/x" does not exist' in str(e), str(e)
    else:
        raise AssertionError("the old name still works after a rename")
    _err(c, "SELECT epoch.branch_rename('feature/y', 'other')", "42710",
         'branch "other" already exists')
    _err(c, "SELECT epoch.branch_rename('feature/y', 'main')", "22023", "invalid branch name")
    _err(c, "SELECT epoch.branch_rename('main', 'x')", "42501", 'branch "main" cannot be renamed')
    _err(c, "SELECT epoch.branch_rename('nope', 'x')", "42704", 'branch "nope" does not exist')
    _err(c, "SELECT epoch.branch_rename(old_name => 'feature/y', new_name => 'a b')", "22023")
    assert _one(c, "SELECT epoch.branch_rename(old_name => 'feature/y', new_name => 'fy')") == "fy"
    assert _branch_id(env, db, "fy") == fx


def test_ttl_expiry_and_sweep(env):
    db = _fresh_db(env, "tb_ttl")
    px = env.proxy()
    c = _items_setup(env, px, db)
    _all(c, "SELECT epoch.branch_create('e1', ttl => '1 hour')")
    _all(c, "SELECT epoch.branch_create('p1', ttl => '1 hour')")
    _all(c, "SELECT epoch.branch_protect('p1')")
    _all(c, "SELECT epoch.branch_create('long', ttl => '1 hour')")
    e1 = _branch_id(env, db, "e1")
    d = _delta(env, db, "items")
    _all(c, f"INSERT INTO epoch.{d} VALUES ({e1}, 9, 'nine', false)")
    assert _items(env.closing(_conn(px, db, "e1"))) == ITEMS_MAIN + [(9, "nine")]
    # let an hour pass for e1 and p1 (a real short ttl is checked with e2 below)
    _direct(env, db, "UPDATE epoch.branch SET created_at = created_at - interval '1 hour', "
                     "expires_at = expires_at - interval '1 hour' WHERE name IN ('e1', 'p1')")
    assert _all(c, "SELECT name, status FROM epoch.branches ORDER BY name") == [
        ("e1", "expired"), ("feature/x", "active"), ("long", "active"), ("main", "main"),
        ("other", "active"), ("p1", "expired")]
    # an expired branch cannot be chosen
    try:
        _conn(px, db, "e1")
    except psycopg2.OperationalError as e:
        assert 'branch "e1" expired at' in str(e), str(e)
    else:
        raise AssertionError("connected to an expired branch")
    _err(env.closing(_conn(px, db)), "SET epoch.branch = 'e1'", "42704", 'branch "e1" expired at')
    assert _all(c, "SELECT * FROM epoch.sweep()") == [("e1",)]
    assert _all(c, "SELECT * FROM epoch.sweep()") == []
    assert sorted(r[0] for r in _all(c, "SELECT name FROM epoch.branches")) == \
        ["feature/x", "long", "main", "other", "p1"]
    assert _direct(env, db, f"SELECT count(*) FROM epoch.{d} WHERE _epoch_branch = {e1}") == [(0,)]
    # branch_create sweeps too
    _all(c, "SELECT epoch.branch_create('e2', ttl => interval '500 milliseconds')")
    time.sleep(0.7)
    _all(c, "SELECT epoch.branch_create('after')")
    assert sorted(r[0] for r in _all(c, "SELECT name FROM epoch.branches")) == \
        ["after", "feature/x", "long", "main", "other", "p1"]


def test_ten_thousand_branches(env):
    db = _fresh_db(env, "tb_many")
    px = env.proxy()
    c = _items_setup(env, px, db)
    # (no wall-clock bound: '< 60 s' flaked under ASan and parallel shards; the cost
    # per branch is test_branch_create_cost_does_not_grow_with_branch_count)
    assert _one(c, "SELECT count(epoch.branch_create('many/' || g, "
                   "description => 'branch ' || g)) FROM generate_series(1, 10000) g") == 10000
    rows = _all(c, "SELECT name, parent, description, status, changed_rows FROM epoch.branches")
    assert len(rows) == 10003, len(rows)  # + main, feature/x, other
    many = sorted((r for r in rows if r[0].startswith("many/")), key=lambda r: int(r[0][5:]))
    assert many == [(f"many/{g}", "main", f"branch {g}", "active", 0) for g in range(1, 10001)]
    assert _one(c, "SELECT count(*) FROM epoch.branches WHERE name <> 'main'") == 10002
    # any of them can be chosen
    b = env.closing(_conn(px, db, "many/9999"))
    assert _items(b) == ITEMS_MAIN
    s = env.closing(_conn(px, db))
    _all(s, "SET epoch.branch = 'many/1'")
    assert _one(s, "SHOW epoch.branch") == "many/1"


test_ten_thousand_branches.timeout = 150


def test_branch_create_cost_does_not_grow_with_branch_count(env):
    """branch_create is O(1) in data size and in the number of branches made before
    it, also in the same statement, while epoch.branch has no statistics yet (its
    sweep of expired branches once scanned the whole table: the last of ten batches
    of 500 cost 5-8x the first). 5,000 branches in batches of 500 in one session:
        SELECT count(epoch.branch_create('many/' || g)) FROM generate_series(1, 500) g
        ... FROM generate_series(4501, 5000) g
    The work is counted in shared buffers touched (EXPLAIN (ANALYZE, BUFFERS) counts
    those of the functions the statement calls), not in seconds: the suite's shards
    share two cores and a clock-based bound flaked in CI (0.05 s then 0.33 s for the
    same work). Here: 11,902 for the first batch (the indexes gain a level), then
    14,534 +- 10 for every later one; a scan of epoch.branch per call made it grow
    by ~2,800 a batch (12,559 ... 41,348)."""
    db = _fresh_db(env, "tb_many_cost")
    px = env.proxy()
    c = _items_setup(env, px, db)
    buffers = []
    for k in range(10):
        plan = _one(c, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
                       "SELECT count(epoch.branch_create('many/' || g)) "
                       f"FROM generate_series({k * 500 + 1}, {k * 500 + 500}) g")
        top = plan[0]["Plan"]
        buffers.append(top["Shared Hit Blocks"] + top["Shared Read Blocks"])
    assert _one(c, "SELECT count(*) FROM epoch.branch WHERE name LIKE 'many/%'") == 5000
    assert max(buffers[-3:]) < 1.3 * max(buffers[:3]), \
        f"shared buffers per batch of 500 branches: {buffers}"


test_branch_create_cost_does_not_grow_with_branch_count.timeout = 150


# ---- choosing a branch --------------------------------------------------------------------

def test_branch_by_database_name_and_options(env):
    db = _fresh_db(env, "tb_select")
    px = env.proxy()
    _items_setup(env, px, db)
    q = "SHOW epoch.branch; SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM items"
    cp = px.psql("-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", "SHOW epoch.branch", "-c",
                 "SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM items",
                 dbname=f"{db}@feature/x")
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout == "feature/x\n1=X,3=c,4=d,5=e,6=f\n", cp.stdout
    # PGOPTIONS
    cp = px.psql("-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", q, dbname=db,
                 env={"PGOPTIONS": "-c epoch.branch=other"})
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout == "other\n1=a,2=b,3=c,4=d,5=e,7=g\n", cp.stdout
    # psycopg2: options and dbname@branch
    o = env.closing(px.connect(dbname=db, autocommit=True, options="-c epoch.branch=feature/x"))
    assert _one(o, "SHOW epoch.branch") == "feature/x"
    assert _items(o) == ITEMS_FX
    n = env.closing(_conn(px, db, "other"))
    assert _one(n, "SHOW epoch.branch") == "other"
    assert _items(n) == ITEMS_OTHER
    assert _one(n, "SELECT current_database()") == db
    m = env.closing(_conn(px, db))
    assert _one(m, "SHOW epoch.branch") == "main"
    assert _items(m) == ITEMS_MAIN
    assert _one(env.closing(_conn(px, db, "main")), "SHOW epoch.branch") == "main"


def test_unknown_branch_at_connect(env):
    db = _fresh_db(env, "tb_unknown")
    px = env.proxy()
    _items_setup(env, px, db)
    for kw in ({"dbname": f"{db}@nope"},
               {"dbname": db, "options": "-c epoch.branch=nope"}):
        try:
            env.closing(px.connect(**kw))
        except psycopg2.OperationalError as e:
            assert 'FATAL:  branch "nope" does not exist' in str(e), str(e)
        else:
            raise AssertionError(f"connected to an unknown branch with {kw}")
    cp = px.psql("-c", "SELECT 1", dbname=f"{db}@no/such")
    assert cp.returncode == 2, (cp.returncode, cp.stdout, cp.stderr)
    assert 'FATAL:  branch "no/such" does not exist' in cp.stderr, cp.stderr
    cp = px.psql("-c", "SELECT 1", dbname=f"{db}@")
    assert cp.returncode == 2 and "FATAL" in cp.stderr, cp.stderr
    # the proxy is fine afterwards
    assert _items(env.closing(_conn(px, db, "feature/x"))) == ITEMS_FX


def test_set_show_reset(env):
    """SET/SHOW/RESET, SET LOCAL, SET in rolled-back and committed
    transactions, an unknown branch. (Each session SETs epoch.branch once: a
    second SET in a session is known_bug_set_epoch_branch_again_in_a_session.)"""
    db = _fresh_db(env, "tb_set")
    px = env.proxy()
    _items_setup(env, px, db)

    def session():
        c = env.closing(_conn(px, db))
        # an epoch statement outside a transaction first: the first one inside
        # a transaction hangs (known_bug_first_epoch_use_inside_transaction_block)
        assert _one(c, "SELECT count(*) FROM epoch.branches") == 3
        return c

    c = session()
    assert _one(c, "SHOW epoch.branch") == "main"
    _all(c, "SET epoch.branch = 'feature/x'")
    assert _one(c, "SHOW epoch.branch") == "feature/x"
    assert _items(c) == ITEMS_FX
    _all(c, "RESET epoch.branch")
    assert _one(c, "SHOW epoch.branch") == "main"
    assert _items(c) == ITEMS_MAIN

    c = session()
    _all(c, "SET epoch.branch TO 'other'")
    assert _one(c, "SHOW epoch.branch") == "other"
    assert _items(c) == ITEMS_OTHER

    c = session()
    _all(c, "SET epoch.branch = 'main'")
    assert _one(c, "SHOW epoch.branch") == "main"
    assert _items(c) == ITEMS_MAIN

    # unknown branch: ERROR, the session stays on its branch and usable (for a
    # session connected to a branch: known_bug_set_epoch_branch_again_in_a_session)
    c = session()
    _err(c, "SET epoch.branch = 'nope'", "42704", 'branch "nope" does not exist')
    assert _one(c, "SHOW epoch.branch") == "main"
    assert _items(c) == ITEMS_MAIN
    assert _one(c, "SELECT 40 + 2") == 42

    # SET combined with other statements in one query string is refused
    c = session()
    _err(c, "SELECT 1; SET epoch.branch = 'feature/x'", "0A000")
    assert _one(c, "SHOW epoch.branch") == "main"

    # SET LOCAL lasts until the end of the transaction
    c = session()
    _all(c, "BEGIN")
    _all(c, "SET LOCAL epoch.branch = 'feature/x'")
    assert _one(c, "SHOW epoch.branch") == "feature/x"
    assert _items(c) == ITEMS_FX
    _all(c, "COMMIT")
    assert _one(c, "SHOW epoch.branch") == "main"
    assert _items(c) == ITEMS_MAIN

    # SET inside a rolled-back transaction is undone
    c = session()
    _all(c, "BEGIN")
    _all(c, "SET epoch.branch = 'other'")
    assert _items(c) == ITEMS_OTHER
    _all(c, "ROLLBACK")
    assert _one(c, "SHOW epoch.branch") == "main"
    assert _items(c) == ITEMS_MAIN

    # ... and kept when committed
    c = session()
    _all(c, "BEGIN")
    _all(c, "SET epoch.branch = 'other'")
    _all(c, "COMMIT")
    assert _one(c, "SHOW epoch.branch") == "other"
    assert _items(c) == ITEMS_OTHER
    # (an unknown branch inside a transaction: known_bug_rollback_refused_...)


def test_reset_all_and_discard_all_on_a_main_session(env):
    """RESET ALL and DISCARD ALL return a session that connected to main to
    main. (Sessions connected to a branch: known_bug_reset_all_and_discard_all_
    return_to_connect_branch, blocked by the SET regression.)"""
    db = _fresh_db(env, "tb_reset_main")
    px = env.proxy()
    _items_setup(env, px, db)
    for stmt in ("RESET ALL", "DISCARD ALL"):
        m = env.closing(_conn(px, db))
        _all(m, "SET epoch.branch = 'other'")
        assert _items(m) == ITEMS_OTHER
        _all(m, stmt)
        assert _one(m, "SHOW epoch.branch") == "main", stmt
        assert _items(m) == ITEMS_MAIN, stmt
    m = env.closing(_conn(px, db))
    _all(m, "SET epoch.as_of = 'feature/x'")
    assert _items(m) == ITEMS_FX
    _all(m, "RESET ALL")
    assert _one(m, "SHOW epoch.as_of") == ""
    assert _items(m) == ITEMS_MAIN


# ---- refusals ------------------------------------------------------------------------------

def test_refusals_on_branch_leave_main_untouched(env):
    """On a branch, writes to untracked tables, MERGE, TRUNCATE, DDL, DO,
    SELECT INTO and row locks on tracked tables are refused (0A000); writes to
    tracked tables go to the branch only. Main is never changed."""
    db = _fresh_db(env, "tb_refuse")
    px = env.proxy()
    _items_setup(env, px, db)
    schema_q = ("SELECT c.relname, c.relkind, a.attname FROM pg_class c "
                "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
                "WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1, 3")
    schema_before = _direct(env, db, schema_q)
    b = env.closing(_conn(px, db, "feature/x"))
    untracked = 'writes to untracked table "notes" are not allowed on branch "feature/x"'
    refused = [
        ("INSERT INTO notes VALUES (2, 'untracked')", untracked),
        ("UPDATE notes SET body = 'x'", untracked),
        ("DELETE FROM notes", untracked),
        ("INSERT INTO notes SELECT id + 10, v FROM items", untracked),
        ("WITH n AS (DELETE FROM notes RETURNING *) SELECT count(*) FROM n", untracked),
        ("MERGE INTO items i USING notes n ON n.id = i.id WHEN MATCHED THEN UPDATE SET v = 'm'",
         'MERGE is not allowed on branch "feature/x"'),
        ("TRUNCATE items", None),
        ("TRUNCATE notes", None),
        ("CREATE TABLE newt (id int)", 'CREATE TABLE is not allowed on branch "feature/x"'),
        ("ALTER TABLE items ADD COLUMN w int", "ALTER TABLE is not allowed"),
        ("DROP TABLE items", "DROP TABLE is not allowed"),
        ("DROP TABLE notes", "DROP TABLE is not allowed"),
        ("CREATE INDEX ON items (v)", "CREATE INDEX is not allowed"),
        ("CREATE VIEW vv AS SELECT * FROM items", None),
        ("COMMENT ON TABLE items IS 'x'", None),
        ("GRANT SELECT ON items TO PUBLIC", None),
        ("DO $$BEGIN UPDATE items SET v = 'do'; END$$", "DO is not allowed"),
        ("SELECT * INTO newt2 FROM items", "SELECT ... INTO is not allowed"),
        ("CREATE TABLE newt3 AS SELECT * FROM items", None),
        ("SELECT * FROM items WHERE id = 3 FOR UPDATE", "FOR UPDATE/SHARE is not supported"),
    ]
    for sql, msg in refused:
        _err(b, sql, "0A000", msg)
    with b.cursor() as cur:
        try:
            cur.copy_expert("COPY notes FROM STDIN", _StringIO("11\tcopied\n"))
        except psycopg2.Error as e:
            assert e.pgcode == "0A000", e.pgerror
            assert untracked in e.diag.message_primary, e.pgerror
        else:
            raise AssertionError("COPY FROM into an untracked table on a branch was accepted")
    # in a transaction: the refusal aborts it like any error
    _all(b, "BEGIN")
    assert _items(b) == ITEMS_FX
    _err(b, "UPDATE notes SET body = 'tx'", "0A000")
    _err(b, "SELECT 1", "25P02")
    _all(b, "ROLLBACK")
    assert _items(b) == ITEMS_FX  # session still usable, still on the branch
    assert _one(b, "SHOW epoch.branch") == "feature/x"
    # untracked tables can be read, and locked, on a branch
    assert _all(b, "SELECT * FROM notes FOR UPDATE") == [(1, "note")]
    # a write to a tracked table lands on the branch only
    _all(b, "UPDATE items SET v = 'branch' WHERE id = 3")
    assert _items(b) == [(1, "X"), (3, "branch"), (4, "d"), (5, "e"), (6, "f")]
    assert _items(env.closing(_conn(px, db, "other"))) == ITEMS_OTHER
    # nothing reached main
    assert _direct(env, db, "SELECT id, v FROM items ORDER BY id") == ITEMS_MAIN
    assert _direct(env, db, "SELECT * FROM notes") == [(1, "note")]
    assert _direct(env, db, schema_q) == schema_before
    assert _direct(env, db, "SELECT obj_description('items'::regclass)") == [(None,)]
    # on main, writes work
    m = env.closing(_conn(px, db))
    _all(m, "UPDATE items SET v = 'A' WHERE id = 1")
    assert _direct(env, db, "SELECT v FROM items WHERE id = 1") == [("A",)]


class _StringIO:
    """Minimal file object for copy_expert (io.StringIO works too; kept explicit)."""

    def __init__(self, text):
        self.text = text

    def read(self, size=-1):
        out, self.text = (self.text, "") if size < 0 else (self.text[:size], self.text[size:])
        return out

    def readline(self, size=-1):
        i = self.text.find("\n")
        line = self.text if i < 0 else self.text[:i + 1]
        self.text = self.text[len(line):]
        return line


def test_as_of_is_read_only(env):
    db = _fresh_db(env, "tb_asof")
    px = env.proxy()
    _items_setup(env, px, db)
    c = env.closing(_conn(px, db))
    assert _one(c, "SHOW epoch.as_of") == ""
    _all(c, "SET epoch.as_of = 'feature/x'")
    assert _one(c, "SHOW epoch.as_of") == "feature/x"
    assert _items(c) == ITEMS_FX
    for sql in ("INSERT INTO items VALUES (10, 'z')", "UPDATE items SET v = 'q'",
                "DELETE FROM items", "INSERT INTO notes VALUES (5, 'n')",
                "WITH x AS (UPDATE notes SET body = 'b' RETURNING 1) SELECT * FROM x"):
        _err(c, sql, "25006", "is not allowed while epoch.as_of is set")
    with c.cursor() as cur:
        try:
            cur.copy_expert("COPY notes FROM STDIN", _StringIO("9\tn\n"))
        except psycopg2.Error as e:
            assert e.pgcode == "25006", e.pgerror
        else:
            raise AssertionError("COPY FROM under epoch.as_of was accepted")
    # DDL is refused too (25006 would match PostgreSQL's read-only transactions; 0A000 today)
    _refused(c, "CREATE TABLE t_asof (id int)", ("25006", "0A000"))
    assert _items(c) == ITEMS_FX
    _all(c, "RESET epoch.as_of")
    assert _one(c, "SHOW epoch.as_of") == ""
    assert _items(c) == ITEMS_MAIN
    _all(c, "INSERT INTO notes VALUES (5, 'n')")
    assert _direct(env, db, "SELECT id, v FROM items ORDER BY id") == ITEMS_MAIN
    assert _direct(env, db, "SELECT id FROM notes ORDER BY id") == [(1,), (5,)]
    assert _direct(env, db, "SELECT to_regclass('t_asof')") == [(None,)]
    # unknown ref
    u = env.closing(_conn(px, db))
    _err(u, "SET epoch.as_of = 'nope'", "42704", 'ref "nope" does not exist')
    assert _one(u, "SHOW epoch.as_of") == ""
    assert _items(u) == ITEMS_MAIN
    # as_of main: main's rows, still read-only
    m = env.closing(_conn(px, db))
    _all(m, "SET epoch.as_of = 'main'")
    assert _items(m) == ITEMS_MAIN
    _err(m, "DELETE FROM items", "25006")
    # (on a session connected to another branch: known_bug_set_epoch_branch_again_in_a_session)
    assert _direct(env, db, "SELECT id, v FROM items ORDER BY id") == ITEMS_MAIN


# ---- open proxy bugs (run by hand; the runner only runs test_*) ------------------------

def test_reset_all_and_discard_all_return_to_connect_branch(env):
    """BUG (HEAD 5b8a181): blocked by known_bug_set_epoch_branch_again_in_a_session:
    in a session connected with dbname@feature/x (or options -c epoch.branch=...),
    SET epoch.branch = 'other' fails with 22023, so RESET ALL / DISCARD ALL
    cannot be checked. Passed at 6ec5142."""
    db = _fresh_db(env, "tb_reset")
    px = env.proxy()
    _items_setup(env, px, db)
    for how in ("dbname", "options"):
        for stmt in ("RESET ALL", "DISCARD ALL"):
            for target, rows in (("other", ITEMS_OTHER), ("main", ITEMS_MAIN)):
                if how == "dbname":
                    c = env.closing(_conn(px, db, "feature/x"))
                else:
                    c = env.closing(px.connect(dbname=db, autocommit=True,
                                               options="-c epoch.branch=feature/x"))
                assert _items(c) == ITEMS_FX
                _all(c, f"SET epoch.branch = '{target}'")
                assert _items(c) == rows, (how, stmt, target)
                _all(c, stmt)
                assert _one(c, "SHOW epoch.branch") == "feature/x", (how, stmt, target)
                assert _items(c) == ITEMS_FX, (how, stmt, target)
    # a session that started on main goes back to main
    m = env.closing(_conn(px, db))
    _all(m, "SET epoch.branch = 'other'")
    _all(m, "RESET ALL")
    assert _one(m, "SHOW epoch.branch") == "main"
    assert _items(m) == ITEMS_MAIN



def _function_setup(env, name):
    db = _fresh_db(env, name)
    px = env.proxy()
    c = _items_setup(env, px, db)
    _all(c, "CREATE FUNCTION bump() RETURNS void LANGUAGE sql AS "
            "$$UPDATE items SET v = v || '!'$$")
    _all(c, "CREATE FUNCTION note() RETURNS void LANGUAGE sql AS "
            "$$INSERT INTO notes VALUES (99, 'from a branch')$$")
    return db, px, c


def test_function_call_on_branch_cannot_write_tracked_table(env):
    """A function called on a branch that writes a tracked table of main is
    refused by the table's capture trigger (it checks epoch.branch), main is
    unchanged; on main the same call works."""
    db, px, c = _function_setup(env, "tb_func_tracked")
    b = env.closing(_conn(px, db, "feature/x"))
    for sql in ("SELECT bump()", "SELECT * FROM items WHERE bump() IS NULL"):
        e = _err(b, sql, "0A000", "cannot change table public.items of main")
        assert "call it on main" in (e.diag.message_hint or ""), e.diag.message_hint
    assert _direct(env, db, "SELECT id, v FROM items ORDER BY id") == ITEMS_MAIN
    assert _items(b) == ITEMS_FX
    _all(c, "SELECT bump()")
    assert _direct(env, db, "SELECT v FROM items WHERE id = 1") == [("a!",)]


def known_bug_function_call_on_branch_writes_untracked_table(env):
    """BUG (documented limitation): a function called on a branch that writes
    an UNTRACKED table changes main's table. Direct writes to untracked tables
    are refused on branches (the rewriter sees them), and tracked tables are
    guarded by their capture triggers, but nothing watches untracked tables
    inside functions. Design §1: "a write to an untracked table from a
    non-main branch is refused".
        CREATE FUNCTION note() ... INSERT INTO notes ...   -- on main; notes untracked
        on feature/x: SELECT note()
        expected: an error (0A000 or 25006), notes unchanged   got: success, a row in notes
    (Would need a guard trigger on every untracked table, or running branch
    statements in read-only transactions, which the branch's own writes to
    epoch.d_* rule out.)"""
    db, px, c = _function_setup(env, "tb_func_untracked")
    b = env.closing(_conn(px, db, "feature/x"))
    _refused(b, "SELECT note()", ("0A000", "25006"))
    assert _direct(env, db, "SELECT count(*) FROM notes") == [(1,)]


def test_extended_refusal_with_untyped_parameters(env):
    """BUG: a write refused on a branch through the extended protocol with
    untyped parameters (psycopg 3 sends str as type 0) answers 42P18 "could
    not determine data type of parameter $1" instead of the refusal: the
    proxy puts the DO block that raises into the Parse but keeps the client's
    parameter types, and PostgreSQL cannot type the unused unknown ones.
    (Dropping the parameter types from the refusing Parse would do; the Bind
    that follows is skipped after the error anyway.)
        on feature/x, Parse: UPDATE notes SET body = $1 WHERE id = $2 (types 0, int2)
        expected: 0A000 writes to untracked table "notes" are not allowed on branch "feature/x"
        got: 42P18 could not determine data type of parameter $1"""
    import psycopg
    db = _fresh_db(env, "tb_ext_refuse")
    px = env.proxy()
    _items_setup(env, px, db)
    problems = []
    with psycopg.connect(px.dsn(dbname=f"{db}@feature/x"), autocommit=True) as b:
        for sql, params in (("UPDATE notes SET body = %s WHERE id = %s", ("z", 1)),
                            ("INSERT INTO notes VALUES (%s, %s)", (3, "n")),
                            ("DELETE FROM notes WHERE body = %s", ("note",)),
                            ("MERGE INTO items i USING notes n ON n.id = i.id "
                             "WHEN MATCHED THEN UPDATE SET v = %s", ("m",))):
            try:
                b.execute(sql, params, prepare=True)
                problems.append(f"{sql}: accepted")
            except psycopg.Error as e:
                if e.sqlstate != "0A000":
                    problems.append(f"{sql}: {e.sqlstate} {e}")
        assert b.execute("SELECT count(*) FROM items").fetchall() == [(5,)]
    assert _direct(env, db, "SELECT id, v FROM items ORDER BY id") == ITEMS_MAIN
    assert _direct(env, db, "SELECT * FROM notes") == [(1, "note")]
    assert not problems, "\n".join(problems)


def _eventually(fn, want, timeout=5.0):
    """fn() until it returns want (catalog changes reach other sessions as
    notifications, a few milliseconds after the commit); the last result."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.02)


def _sqlstate_of(conn, sql):
    try:
        return ("rows", _all(conn, sql))
    except psycopg2.Error as e:
        return ("error", e.pgcode)


def test_catalog_changes_in_other_sessions_seen(env):
    """A branch session notices catalog changes other sessions commit
    (migration 3 notifies channel epoch_catalog; the proxy LISTENs on the
    session's server connection and reloads before the next statement). It
    used to load the catalog once and never notice:
      - a table tracked by another session afterwards was read from main;
      - its own branch deleted by another session: it kept reading main@base;
      - a table untracked by another session: 42P01 on the dropped delta.
    Also: the proxy's notifications never reach the client (its own LISTEN
    still works), UNLISTEN * / DISCARD ALL by the client do not stop it, and
    SET epoch.branch is the way out of a deleted branch."""
    db = _fresh_db(env, "tb_stale")
    px = env.proxy()
    c = _items_setup(env, px, db)
    # (public.: see known_bug_role_named_epoch_creates_tables_in_epoch_schema)
    for t in ("later", "gone", "third"):
        _all(c, f"CREATE TABLE public.{t} (id int PRIMARY KEY, v text)")
        _all(c, f"INSERT INTO {t} VALUES (1, 'main')")
    fx = _branch_id(env, db, "feature/x")

    def track_with_branch_row(table):
        _all(c, f"SELECT epoch.track('{table}')")
        _all(c, f"INSERT INTO epoch.{_delta(env, db, table)} VALUES ({fx}, 1, 'branch', false)")

    a = env.closing(_conn(px, db, "feature/x"))
    _all(a, "LISTEN app_channel")
    assert _all(a, "SELECT * FROM later") == [(1, "main")]
    assert _items(a) == ITEMS_FX

    # a table tracked by another session afterwards: the branch's rows
    track_with_branch_row("later")
    got = _eventually(lambda: _all(a, "SELECT * FROM later"), [(1, "branch")])
    assert got == [(1, "branch")], f"table tracked by another session: {got}"

    # ... and untracked again: main's rows, no error
    track_with_branch_row("gone")
    assert _eventually(lambda: _all(a, "SELECT * FROM gone"), [(1, "branch")]) == [(1, "branch")]
    _all(c, "SELECT epoch.untrack('gone', force => true)")
    got = _eventually(lambda: _sqlstate_of(a, "SELECT * FROM gone"), ("rows", [(1, "main")]))
    assert got == ("rows", [(1, "main")]), f"table untracked by another session: {got}"

    # UNLISTEN * by the client: the proxy listens again
    _all(a, "UNLISTEN *")
    assert _items(a) == ITEMS_FX
    track_with_branch_row("third")
    got = _eventually(lambda: _all(a, "SELECT * FROM third"), [(1, "branch")])
    assert got == [(1, "branch")], f"after UNLISTEN *: {got}"

    # the client's own notifications arrive; the proxy's never do
    _all(a, "LISTEN app_channel")
    _all(c, "NOTIFY app_channel, 'hello'")
    _eventually(lambda: (_all(a, "SELECT 1"), [n.channel for n in a.notifies])[1],
                ["app_channel"])
    channels = [(n.channel, n.payload) for n in a.notifies]
    assert channels == [("app_channel", "hello")], channels

    # its own branch deleted by another session: an error, then SET is the way out
    _all(c, "SELECT epoch.branch_delete('feature/x', force => true)")
    got = _eventually(lambda: _sqlstate_of(a, "SELECT id, v FROM items ORDER BY id"),
                      ("error", "42704"))
    assert got == ("error", "42704"), f"reads on a deleted branch: {got}"
    assert _sqlstate_of(a, "SELECT 1") == ("error", "42704")  # stays refused
    _all(a, "SET epoch.branch = 'main'")
    assert _items(a) == ITEMS_MAIN
    assert _one(a, "SHOW epoch.branch") == "main"


def test_ddl_of_other_sessions_seen(env):
    """Views (and other DDL) created by other sessions reach a branch
    session's catalog: without event triggers (the migration ran as a
    non-superuser) by reloading a catalog older than a second; with
    epoch.watch_ddl() (superuser only) through notifications on
    epoch_catalog, which temporary objects do not send."""
    db = _fresh_db(env, "tb_ddl_seen")
    px = env.proxy()
    c = _items_setup(env, px, db)
    a = env.closing(_conn(px, db, "feature/x"))
    assert _items(a) == ITEMS_FX

    # no event triggers: the migration ran as role epoch, not a superuser
    assert _direct(env, db, "SELECT count(*) FROM pg_event_trigger") == [(0,)]
    _err(c, "SELECT epoch.watch_ddl()", "42501", "superuser")
    _all(c, "CREATE VIEW public.v_items AS SELECT id, v FROM items")
    got = _eventually(lambda: _all(a, "SELECT * FROM v_items ORDER BY id"), ITEMS_FX)
    assert got == ITEMS_FX, f"view created by another session, no event triggers: {got}"

    # a superuser installs them; DDL notifies, temporary objects do not
    assert _direct(env, db, "SELECT epoch.watch_ddl()") == [(True,)]
    assert _direct(env, db, "SELECT epoch.watch_ddl()") == [(True,)]  # idempotent
    assert _direct(env, db, "SELECT evtname, evtevent FROM pg_event_trigger ORDER BY 1") == \
        [("epoch_ddl_drop", "sql_drop"), ("epoch_ddl_end", "ddl_command_end")]
    listener = env.closing(env.pg.admin_connect(db))
    _all(listener, "LISTEN epoch_catalog")

    def payloads_after(sql):
        _all(c, sql)
        time.sleep(0.2)
        listener.poll()
        got = [n.payload for n in listener.notifies]
        listener.notifies.clear()
        return got

    assert payloads_after("CREATE TEMP TABLE scratch (id int)") == []
    assert payloads_after("DROP TABLE scratch") == []
    assert payloads_after("CREATE OR REPLACE VIEW public.v_items AS SELECT id, v FROM items "
                          "WHERE id < 3") == ["ddl"]
    got = _eventually(lambda: _all(a, "SELECT * FROM v_items ORDER BY id"), [(1, "X")])
    assert got == [(1, "X")], f"view replaced by another session: {got}"
    assert payloads_after("DROP VIEW public.v_items") == ["ddl"]
    got = _eventually(lambda: _sqlstate_of(a, "SELECT * FROM v_items"), ("error", "42P01"))
    assert got == ("error", "42P01"), got


def test_catalog_max_age_zero_keeps_the_catalog(env):
    """catalog_max_age = 0: without DDL notifications a branch session keeps
    its catalog (a view created meanwhile reads main's rows, as PostgreSQL
    expands it) until something else reloads it (here SET search_path)."""
    db = _fresh_db(env, "tb_max_age0")
    px = env.proxy(config={"catalog_max_age": 0})
    c = _items_setup(env, px, db)
    a = env.closing(_conn(px, db, "feature/x"))
    assert _items(a) == ITEMS_FX
    _all(c, "CREATE VIEW public.v_items AS SELECT id, v FROM items")
    time.sleep(1.5)
    assert _all(a, "SELECT * FROM v_items ORDER BY id") == ITEMS_MAIN
    _all(a, "SET search_path = public")
    assert _all(a, "SELECT * FROM v_items ORDER BY id") == ITEMS_FX


def test_catalog_changes_seen_with_transaction_pooling(env):
    """In transaction pooling a branch session's next transaction may run on
    another server connection: a change notified on any of them counts."""
    db = _fresh_db(env, "tb_stale_pool")
    auth = env.userlist({harness.DEFAULT_USER: harness.DEFAULT_PASSWORD})
    px = env.proxy(config={"auth_mode": "userlist", "auth_file": auth,
                           "server_user": harness.DEFAULT_USER,
                           "server_password": harness.DEFAULT_PASSWORD,
                           "pool_mode": "transaction", "pool_size": 3})
    c = _items_setup(env, px, db)
    _all(c, "CREATE TABLE public.later (id int PRIMARY KEY, v text)")
    _all(c, "INSERT INTO later VALUES (1, 'main')")
    sessions = [env.closing(_conn(px, db, "feature/x")) for _ in range(3)]
    for s in sessions:
        assert _all(s, "SELECT * FROM later") == [(1, "main")]
    _all(c, "SELECT epoch.track('later')")
    fx = _branch_id(env, db, "feature/x")
    _all(c, f"INSERT INTO epoch.{_delta(env, db, 'later')} VALUES ({fx}, 1, 'branch', false)")
    for i, s in enumerate(sessions):
        got = _eventually(lambda: _all(s, "SELECT * FROM later"), [(1, "branch")])
        assert got == [(1, "branch")], f"session {i}: {got}"


def test_role_named_epoch_is_warned_about_search_path(env):
    """A role named epoch has the metadata schema first on the default search
    path ("$user", public): the proxy says so with a WARNING, once per session,
    when it loads the session's catalog; a role with another name, or a
    search_path without "$user", gets none."""
    db = _fresh_db(env, "tb_role_warning")
    px = env.proxy()
    c = env.closing(_conn(px, db))
    assert _one(c, "SELECT epoch.branch_create('x')") == "x"
    _all(c, "SELECT epoch.branch_create('y')")
    warnings = [n for n in c.notices if 'schema "epoch"' in n]
    assert len(warnings) == 1 and warnings[0].startswith("WARNING:"), c.notices
    # at login on a branch (libpq prints startup notices; psycopg2 drops them)
    cp = px.psql("-c", "SELECT 1", dbname=f"{db}@x", check=True)
    assert cp.stderr.count('WARNING:  schema "epoch"') == 1, cp.stderr
    cp = px.psql("-c", "SELECT count(*) FROM epoch.branches", dbname=f"{db}@x", check=True,
                 env={"PGOPTIONS": "-c search_path=public"})
    assert "WARNING" not in cp.stderr and "3" in cp.stdout, (cp.stdout, cp.stderr)
    env.pg.sql("CREATE ROLE other_role LOGIN PASSWORD 'pw'; "
               f"GRANT ALL ON DATABASE {db} TO other_role; GRANT USAGE ON SCHEMA epoch TO other_role; "
               "GRANT SELECT ON ALL TABLES IN SCHEMA epoch TO other_role", db=db)
    o = env.closing(px.connect(dbname=f"{db}@x", user="other_role", password="pw",
                               autocommit=True))
    assert _all(o, "SHOW epoch.branch") == [("x",)]
    assert not [n for n in o.notices if 'schema "epoch"' in n], o.notices


def known_bug_role_named_epoch_creates_tables_in_epoch_schema(env):
    """BUG: for a role named epoch (the README quick start's user, and the test
    harness's), the default search_path '"$user", public' puts the metadata
    schema epoch first once it exists: after the first epoch call, CREATE
    TABLE t lands in epoch.t, track('t') then refuses it as a "system table",
    and unqualified names resolve to epoch's own objects first.
        as role epoch: SELECT epoch.branch_create('x'); CREATE TABLE t (id int PRIMARY KEY);
        SELECT epoch.track('t')
        expected: public.t   got: 42809 table "epoch.t" cannot be tracked (temporary or system table)
    (The proxy now warns about it: test_role_named_epoch_is_warned_about_search_path.)"""
    assert harness.DEFAULT_USER == "epoch"
    db = _fresh_db(env, "tb_role_epoch")
    px = env.proxy()
    c = env.closing(_conn(px, db))
    assert _one(c, "SELECT epoch.branch_create('x')") == "x"
    _all(c, "CREATE TABLE t (id int PRIMARY KEY)")
    c2 = env.closing(_conn(px, db))  # a later session too
    _all(c2, "CREATE TABLE t2 (id int PRIMARY KEY)")
    assert _direct(env, db, "SELECT to_regclass('public.t') IS NOT NULL, "
                            "to_regclass('public.t2') IS NOT NULL") == [(True, True)], \
        _direct(env, db, "SELECT to_regclass('epoch.t'), to_regclass('epoch.t2')")
    assert _one(c, "SELECT epoch.track('t')") == "public.t"


def test_set_epoch_branch_again_in_a_session(env):
    """BUG (HEAD 5b8a181; worked at 6ec5142): SET epoch.branch (and
    epoch.as_of) works once per session; a later SET in the same session - or
    the first one after a RESET epoch.branch, a failed SET, or a statement with
    a string constant such as SELECT epoch.branch_create('q') - fails with
    22023 "epoch.branch takes one branch name as a string" (the cached,
    constant-normalised statement has no literal left for set_variable()).
        SET epoch.branch = 'feature/x';  SET epoch.branch = 'other';
        expected: SET, then the branch other   got: ERROR 22023 (session stays on feature/x)"""
    db = _fresh_db(env, "tb_set_twice")
    px = env.proxy()
    _items_setup(env, px, db)
    cases = [
        (["SET epoch.branch = 'feature/x'"], "other", ITEMS_OTHER),
        (["SET epoch.branch = 'feature/x'"], "main", ITEMS_MAIN),
        (["SET epoch.branch = 'feature/x'", "RESET epoch.branch"], "other", ITEMS_OTHER),
        (["RESET epoch.branch"], "other", ITEMS_OTHER),
        (["SELECT epoch.branch_create('q')"], "other", ITEMS_OTHER),
        (["SET epoch.as_of = 'feature/x'"], None, None),
    ]
    problems = []
    for pre, target, rows in cases:
        c = env.closing(_conn(px, db))
        for stmt in pre:
            _all(c, stmt)
        if target is None:
            stmt = "SET epoch.as_of = 'other'"
            target, rows = "other", ITEMS_OTHER
        else:
            stmt = f"SET epoch.branch = '{target}'"
        try:
            _all(c, stmt)
            got = _items(c)
            if got != rows:
                problems.append(f"{pre} then {stmt}: read {got}")
        except psycopg2.Error as e:
            problems.append(f"{pre} then {stmt}: {e.pgcode} {e.diag.message_primary}")
    c = env.closing(_conn(px, db))
    try:
        _err(c, "SET epoch.branch = 'nope'", "42704")
        _all(c, "SET epoch.branch = 'other'")
        assert _items(c) == ITEMS_OTHER
    except (psycopg2.Error, AssertionError) as e:
        problems.append(f"SET to an unknown branch, then SET epoch.branch = 'other': {e!r}")
    # sessions connected to a branch: even their first SET fails
    for kw in ({"dbname": f"{db}@other"}, {"dbname": db, "options": "-c epoch.branch=other"}):
        for stmt, want in (("SET epoch.branch = 'feature/x'", ITEMS_FX),
                           ("SET epoch.as_of = 'feature/x'", ITEMS_FX),
                           ("SET epoch.branch = 'main'", ITEMS_MAIN)):
            c = env.closing(px.connect(autocommit=True, **kw))
            try:
                _all(c, stmt)
                if _items(c) != want:
                    problems.append(f"{kw}: {stmt}: read {_items(c)}")
            except psycopg2.Error as e:
                problems.append(f"{kw}: {stmt}: {e.pgcode} {e.diag.message_primary}")
        c = env.closing(px.connect(autocommit=True, **kw))
        try:
            _err(c, "SET epoch.branch = 'nope'", "42704", 'branch "nope" does not exist')
            assert _items(c) == ITEMS_OTHER
        except AssertionError as e:
            problems.append(f"{kw}: SET to an unknown branch: {e}")
    # through Parse, SET epoch.branch is refused as "simple query protocol only"
    import psycopg
    with psycopg.connect(px.dsn(dbname=db), autocommit=True) as p3:
        try:
            p3.execute("SET epoch.branch = 'other'", prepare=True)
            problems.append("SET epoch.branch through Parse was accepted")
        except psycopg.Error as e:
            if e.sqlstate != "0A000" or "simple query protocol" not in str(e):
                problems.append(f"SET epoch.branch through Parse: {e.sqlstate} {e}")
    assert not problems, "\n".join(problems)
