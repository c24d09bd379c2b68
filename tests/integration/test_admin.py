"""The admin console: the virtual database "epoch" (docs/operations.md).
Superusers (passthrough: PostgreSQL says so at the login) and admin_users
get it, anyone else 42501; SHOW lists what every worker holds, with
PgBouncer's column names; RELOAD and SHUTDOWN act on the process."""

import threading
import time

import psycopg2

import harness

ADMIN, ADMIN_PW = "console_su", "console-pw"


def _console(px, user=ADMIN, password=ADMIN_PW):
    return px.connect(user=user, password=password, dbname="epoch", autocommit=True)


def _show(conn, what):
    cur = conn.cursor()
    cur.execute(f"SHOW {what}")
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()], cols


def _ensure_admin(env):
    if env.pg.sql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{ADMIN}'") == "0":
        env.pg.create_role(ADMIN, ADMIN_PW, superuser=True)


def test_who_may_use_the_console(env):
    _ensure_admin(env)
    px = env.proxy(workers=2)
    su = env.closing(_console(px))
    rows, _ = _show(su, "VERSION")
    assert rows[0]["version"].startswith("epoch-proxy ")
    su.cursor().execute("SET application_name = 'a dashboard'")  # drivers do; ignored
    raw = env.closing(px.raw())
    try:
        raw.login(database="epoch")
        raise AssertionError("a plain role got the console")
    except harness.PgError as e:
        assert e.sqlstate == "42501" and "admin console" in str(e), e
    try:
        px.connect(user=ADMIN, password="wrong", dbname="epoch")
        raise AssertionError("a wrong password got the console")
    except psycopg2.OperationalError as e:
        assert "password authentication failed" in str(e), e
    # admin_users lets a plain role in
    px2 = env.proxy(config={"admin_users": f"someone, {harness.DEFAULT_USER}"})
    c = env.closing(px2.connect(dbname="epoch", autocommit=True))
    assert _show(c, "VERSION")[0]
    cur = c.cursor()
    for sql, code in (("SHOW NOTHING", "42601"), ("SELECT 1", "42601"), ("RESUME", "55000")):
        try:
            cur.execute(sql)
            raise AssertionError(f"{sql} succeeded")
        except psycopg2.Error as e:
            assert e.pgcode == code, (sql, e.pgcode, e)
    cur.execute("SHOW VERSION;")  # the session goes on after errors
    assert cur.fetchone()[0].startswith("epoch-proxy")


def test_show_lists_every_workers_clients_servers_branches_and_stats(env):
    _ensure_admin(env)
    db = "admin_show"
    env.pg.create_database(db)
    px = env.proxy(workers=2)
    setup = env.closing(px.connect(dbname=db, autocommit=True))
    cur = setup.cursor()
    cur.execute("CREATE TABLE t (id int PRIMARY KEY, v int)")
    cur.execute("INSERT INTO t VALUES (1, 1)")
    cur.execute("SELECT epoch.track('t'), epoch.branch_create('b')")
    on_b = [env.closing(px.connect(dbname=f"{db}@b", autocommit=True)) for _ in range(4)]
    pids = set()
    for c in on_b:
        k = c.cursor()
        k.execute("SELECT v FROM t WHERE id = 1")
        k.execute("SELECT pg_backend_pid()")
        pids.add(k.fetchone()[0])
    su = env.closing(_console(px))
    clients, cols = _show(su, "CLIENTS")
    for name in ("type", "user", "database", "state", "addr", "port", "local_addr", "local_port",
                 "connect_time", "request_time", "wait", "wait_us", "ptr", "link", "remote_pid",
                 "tls", "application_name"):
        assert name in cols, name
    mine = [r for r in clients if r["database"] in (db, f"{db}@b") and r["user"] == harness.DEFAULT_USER]
    assert len(mine) == 5, clients      # the setup session and four on b, over both workers
    assert sorted(r["branch"] for r in mine) == ["b", "b", "b", "b", "main"]
    assert {r["remote_pid"] for r in mine if r["branch"] == "b"} == pids
    assert all(r["state"] == "active" and r["type"] == "C" for r in mine)
    servers, _ = _show(su, "SERVERS")
    assert pids <= {r["remote_pid"] for r in servers}
    branches, _ = _show(su, "BRANCHES")
    by = {r["branch"]: r for r in branches}
    assert by["b"]["sessions"] == 4 and by["b"]["total_query_count"] >= 8, branches
    assert by["main"]["sessions"] >= 1
    stats, cols = _show(su, "STATS")
    assert cols[:8] == ["database", "total_xact_count", "total_query_count", "total_received",
                        "total_sent", "total_xact_time", "total_query_time", "total_wait_time"]
    total = sum(r["total_query_count"] for r in stats if r["database"].startswith(db))
    assert total >= 8 + 3, stats
    assert all(r["database"] != "epoch" for r in stats)   # the console's own talk is not counted
    pools, cols = _show(su, "POOLS")
    assert "cl_active" in cols and "sv_idle" in cols and "pool_mode" in cols
    p = [r for r in pools if r["database"] == f"{db}@b"] or [r for r in pools if r["database"] == db]
    assert p and p[0]["pool_mode"] == "passthrough"
    for c in on_b:
        c.close()
    branches, _ = _show(su, "BRANCHES")
    assert {r["branch"]: r["sessions"] for r in branches}.get("b", 0) == 0


def test_show_pools_in_transaction_pooling(env):
    _ensure_admin(env)
    auth = env.userlist({"alice": "alice-pw"})
    px = env.proxy(config={"auth_mode": "userlist", "auth_file": auth,
                           "server_user": harness.DEFAULT_USER,
                           "server_password": harness.DEFAULT_PASSWORD,
                           "pool_mode": "transaction", "pool_size": 2,
                           "admin_users": "alice"})
    cs = [env.closing(px.connect(user="alice", password="alice-pw", autocommit=True))
          for _ in range(3)]
    for c in cs:
        c.cursor().execute("SELECT 1")
    con = env.closing(px.connect(user="alice", password="alice-pw", dbname="epoch",
                                 autocommit=True))
    pools, _ = _show(con, "POOLS")
    row = [r for r in pools if r["database"] == harness.DEFAULT_DB and r["user"] == "alice"]
    assert len(row) == 1, pools
    assert row[0]["pool_mode"] == "transaction"
    assert row[0]["sv_idle"] >= 1 and row[0]["cl_active"] == 3 and row[0]["cl_waiting"] == 0


def test_reload_and_shutdown_from_the_console(env):
    _ensure_admin(env)
    px = env.proxy(config={"log_level": "info"})
    su = env.closing(_console(px))
    conf = {r["key"]: r for r in _show(su, "CONFIG")[0]}
    assert conf["log_level"]["value"] == "info" and conf["log_level"]["changeable"] == "yes"
    assert conf["listen"]["value"] == f"127.0.0.1:{px.port}" and conf["listen"]["changeable"] == "no"
    px.write_config({"log_level": "warning", "server_password": "hunter2"})
    su.cursor().execute("RELOAD")
    conf = harness.wait_until(
        lambda: (c := {r["key"]: r for r in _show(su, "CONFIG")[0]})["log_level"]["value"] == "warning" and c,
        timeout=5, message="RELOAD to apply log_level")
    assert conf["server_password"]["value"] == "********"
    su.cursor().execute("SHUTDOWN")
    rc = px.wait(timeout=10)
    px.exit_observed = True
    assert rc == 0, rc


def test_pause_waits_for_transactions_and_holds_new_requests_until_resume(env):
    _ensure_admin(env)
    db = "admin_pause"
    env.pg.create_database(db)
    other = "admin_pause_other"
    env.pg.create_database(other)
    px = env.proxy(workers=2)
    busy = env.closing(px.connect(dbname=db))
    busy.cursor().execute("SELECT 1")          # a transaction, open
    idle = env.closing(px.connect(dbname=db, autocommit=True))
    elsewhere = env.closing(px.connect(dbname=other, autocommit=True))
    su = env.closing(_console(px))
    done = {}

    def pause():
        t0 = time.monotonic()
        su.cursor().execute(f"PAUSE {db}")
        done["pause"] = time.monotonic() - t0

    t = threading.Thread(target=pause, daemon=True)
    t.start()
    time.sleep(0.5)
    assert "pause" not in done, "PAUSE returned while a transaction was open"
    busy.cursor().execute("SELECT 2")           # the open transaction goes on
    busy.commit()
    t.join(timeout=5)
    assert "pause" in done, "PAUSE did not return once the transaction ended"
    # new requests on db wait; other databases do not
    elsewhere.cursor().execute("SELECT 3")
    held = {}

    def query():
        cur = idle.cursor()
        cur.execute("SELECT 4")
        held["row"] = cur.fetchone()
        held["at"] = time.monotonic()

    q = threading.Thread(target=query, daemon=True)
    q.start()
    time.sleep(0.5)
    assert "row" not in held, "a request ran on a paused database"
    resumed = time.monotonic()
    su.cursor().execute(f"RESUME {db}")
    q.join(timeout=5)
    assert held.get("row") == (4,) and held["at"] >= resumed
    try:
        su.cursor().execute(f"RESUME {db}")
        raise AssertionError("RESUME of a database not paused succeeded")
    except psycopg2.Error as e:
        assert e.pgcode == "55000"
