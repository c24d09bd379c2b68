"""A prepared statement and the branch it was prepared on (issue 10, defect 2).

The rewriter writes the session's branch into a statement's SQL, so a
statement prepared on branch x1 used to keep reading x1 after SET
epoch.branch = 'x2' (silently). PostgreSQL re-plans a prepared statement
when search_path changes; the proxy now refuses a statement used on another
ref than the one it was prepared on (0A000, naming both), for SQL
PREPARE/EXECUTE and for the extended protocol's named statements alike, and
lets it run again once the session is back on its ref.
"""

import psycopg2

import harness

try:
    import psycopg  # psycopg 3 (Debian python3-psycopg)
except ImportError:  # pragma: no cover - scripts/deps.sh installs it
    psycopg = None


def _setup(env, db):
    env.pg.create_database(db)
    env.pg.sql("CREATE TABLE kv (k int PRIMARY KEY, v text);"
               "INSERT INTO kv VALUES (1, 'main'), (2, 'main2');", db=db,
               as_role=harness.DEFAULT_USER)
    px = env.proxy()
    main = env.closing(px.connect(dbname=db, autocommit=True))
    with main.cursor() as cur:
        cur.execute("SELECT epoch.track('kv')")
        for b in ("x1", "x2"):
            cur.execute("SELECT epoch.branch_create(%s)", (b,))
    for b in ("x1", "x2"):
        conn = env.closing(px.connect(dbname=f"{db}@{b}", autocommit=True))
        with conn.cursor() as cur:
            cur.execute("UPDATE kv SET v = %s WHERE k = 1", (b,))
    return px


def _one(cur, sql):
    cur.execute(sql)
    return cur.fetchall()


def _refused(cur, sql, *needles):
    try:
        cur.execute(sql)
    except psycopg2.Error as e:
        assert e.pgcode == "0A000", (e.pgcode, str(e))
        for n in needles:
            assert n in str(e), (n, str(e))
        return
    raise AssertionError(f"{sql!r} ran: {cur.fetchall()!r}")


def test_sql_prepare_keeps_its_branch_and_is_refused_elsewhere(env):
    px = _setup(env, "pb_sql")
    conn = env.closing(px.connect(dbname="pb_sql", autocommit=True))
    cur = conn.cursor()
    cur.execute("SET epoch.branch = 'x1'")
    cur.execute("PREPARE s AS SELECT v FROM kv WHERE k = 1")
    assert _one(cur, "EXECUTE s") == [("x1",)]
    cur.execute("SET epoch.branch = 'x2'")
    # the issue's reproducer: this returned x1's row
    _refused(cur, "EXECUTE s", '"s"', '"x1"', '"x2"')
    _refused(cur, "EXPLAIN (COSTS OFF) EXECUTE s", '"s"')
    # main too: a statement rewritten for x1 must not run there
    cur.execute("SET epoch.branch = 'main'")
    _refused(cur, "EXECUTE s", '"s"', '"x1"', '"main"')
    # back on x1 it runs again; once prepared again on x2 it reads x2
    cur.execute("SET epoch.branch = 'x1'")
    assert _one(cur, "EXECUTE s") == [("x1",)]
    cur.execute("SET epoch.branch = 'x2'")
    cur.execute("DEALLOCATE s")
    cur.execute("PREPARE s AS SELECT v FROM kv WHERE k = 1")
    assert _one(cur, "EXECUTE s") == [("x2",)]
    # a statement that fails to be prepared again keeps its first branch
    try:
        cur.execute("SET epoch.branch = 'x1'")
        cur.execute("PREPARE s AS SELECT v FROM kv WHERE k = 2")
        raise AssertionError("PREPARE of an existing name succeeded")
    except psycopg2.Error as e:
        assert e.pgcode == "42P05", (e.pgcode, str(e))
    _refused(cur, "EXECUTE s", '"x2"', '"x1"')


def test_statement_prepared_on_main_is_refused_on_a_branch(env):
    px = _setup(env, "pb_main")
    conn = env.closing(px.connect(dbname="pb_main", autocommit=True))
    cur = conn.cursor()
    # prepared before the session ever touched epoch: main's statement
    cur.execute("PREPARE m AS SELECT v FROM kv WHERE k = 1")
    assert _one(cur, "EXECUTE m") == [("main",)]
    cur.execute("SET epoch.branch = 'x1'")
    _refused(cur, "EXECUTE m", '"m"', "main", '"x1"')
    cur.execute("RESET epoch.branch")
    assert _one(cur, "EXECUTE m") == [("main",)]


def _simple(conn, sql):
    """SET epoch.branch goes with the simple query protocol (libpq's PQexec)."""
    res = conn.pgconn.exec_(sql.encode())
    assert res.status == psycopg.pq.ExecStatus.COMMAND_OK, res.error_message


def test_protocol_named_statements_are_refused_on_another_branch(env):
    if psycopg is None:
        raise AssertionError("psycopg 3 is not installed (Debian python3-psycopg, scripts/deps.sh)")
    px = _setup(env, "pb_proto")
    # prepare_threshold=0: every statement is a named server-side statement
    conn = psycopg.connect(px.dsn(dbname="pb_proto@x1"), autocommit=True, prepare_threshold=0)
    try:
        q = "SELECT v FROM kv WHERE k = %s"
        assert conn.execute(q, (1,)).fetchall() == [("x1",)]
        assert conn.execute(q, (1,)).fetchall() == [("x1",)]
        names = conn.execute("SELECT count(*) FROM pg_prepared_statements "
                             "WHERE name LIKE '\\_pg3\\_%%'").fetchone()[0]
        assert names >= 1, "psycopg did not prepare a named statement"
        _simple(conn, "SET epoch.branch = 'x2'")
        try:
            rows = conn.execute(q, (1,)).fetchall()
            raise AssertionError(f"a statement prepared on x1 ran on x2: {rows!r}")
        except psycopg.errors.FeatureNotSupported as e:
            assert '"x1"' in str(e) and '"x2"' in str(e), str(e)
        # the session is still usable, and back on x1 the statement runs
        _simple(conn, "SET epoch.branch = 'x1'")
        assert conn.execute(q, (1,)).fetchall() == [("x1",)]
    finally:
        conn.close()
    # a fresh statement on x2 reads x2
    conn = psycopg.connect(px.dsn(dbname="pb_proto@x2"), autocommit=True, prepare_threshold=0)
    try:
        assert conn.execute("SELECT v FROM kv WHERE k = %s", (1,)).fetchall() == [("x2",)]
    finally:
        conn.close()
