"""Pooling in userlist mode: server reuse without leaking session state
(session pooling), and session state that follows the client across server
connections (transaction pooling)."""

import io
import socket
import threading
import time

import psycopg2

import harness
import test_concurrency as tc  # extended-protocol pipeline helpers

SRV_USER, SRV_PW = "pool_srv", "pool-srv-pw"
DB = "pooldb"


def setup_module(pg):
    pg.create_role(SRV_USER, SRV_PW)
    pg.sql(f"CREATE ROLE pool_reader NOLOGIN; GRANT pool_reader TO {SRV_USER}")
    pg.create_database(DB, owner=SRV_USER)
    pg.sql("CREATE SCHEMA app; CREATE TABLE app.marker (v text); "
           "INSERT INTO app.marker VALUES ('from app schema');"
           "CREATE TABLE public.marker (v text); "
           "INSERT INTO public.marker VALUES ('from public schema');",
           db=DB, as_role=SRV_USER)


def _pool_proxy(env, mode, size, **extra):
    auth = env.userlist({"alice": "alice-pw", "bob": "bob-pw"})
    config = {"auth_mode": "userlist", "auth_file": auth, "server_user": SRV_USER,
              "server_password": SRV_PW, "pool_mode": mode, "pool_size": size,
              "query_wait_timeout": 10}
    config.update(extra)
    return env.proxy(config=config)


def _one(conn, sql, args=None):
    cur = conn.cursor()
    cur.execute(sql, args)
    return cur.fetchone()[0]


# ---- session pooling --------------------------------------------------------------

def test_session_pool_reuses_server_without_leaking_state(env):
    px = _pool_proxy(env, "session", 1)
    c1 = px.connect(user="alice", password="alice-pw", dbname=DB, autocommit=True)
    pid1 = _one(c1, "SELECT pg_backend_pid()")
    default_work_mem = _one(c1, "SHOW work_mem")
    c1.cursor().execute("SET work_mem = '7MB'")
    c1.cursor().execute("SET search_path = app")
    c1.cursor().execute("SET application_name = 'leaky'")
    c1.cursor().execute("CREATE TEMP TABLE session_tmp (x int)")
    c1.cursor().execute("PREPARE leaked_stmt AS SELECT 1")
    c1.cursor().execute("LISTEN leaked_channel")
    c1.cursor().execute("SELECT set_config('epoch.custom', 'leaked', false)")
    assert _one(c1, "SHOW work_mem") == "7MB"
    assert _one(c1, "SELECT v FROM marker") == "from app schema"
    c1.close()

    # pool_size=1: the next client of the same user/database must get the
    # same server connection (after DISCARD ALL)
    c2 = env.closing(px.connect(user="alice", password="alice-pw", dbname=DB, autocommit=True))
    pid2 = _one(c2, "SELECT pg_backend_pid()")
    assert pid2 == pid1, f"server connection not reused (pids {pid1} then {pid2})"
    assert _one(c2, "SHOW work_mem") == default_work_mem, "SET work_mem leaked to the next client"
    assert _one(c2, "SHOW search_path") == '"$user", public', "search_path leaked"
    assert _one(c2, "SELECT v FROM marker") == "from public schema"
    assert _one(c2, "SHOW application_name") != "leaky", "application_name leaked"
    assert _one(c2, "SELECT to_regclass('pg_temp.session_tmp') IS NULL"), "temp table leaked"
    assert _one(c2, "SELECT count(*) FROM pg_prepared_statements") == 0, "prepared stmt leaked"
    assert _one(c2, "SELECT count(*) FROM pg_listening_channels()") == 0, "LISTEN leaked"
    assert _one(c2, "SELECT coalesce(current_setting('epoch.custom', true), '')") == "", \
        "custom GUC leaked"
    assert _one(c2, "SELECT current_user") == SRV_USER


def test_session_pool_open_transaction_not_reused(env):
    """A client that leaves inside a transaction: its work is rolled back, the
    next client starts clean."""
    env.pg.sql("CREATE TABLE IF NOT EXISTS left_open (v int)", db=DB, as_role=SRV_USER)
    px = _pool_proxy(env, "session", 1)
    c1 = px.connect(user="alice", password="alice-pw", dbname=DB)
    c1.cursor().execute("INSERT INTO left_open VALUES (1)")
    c1.close()  # Terminate inside the transaction
    c2 = env.closing(px.connect(user="alice", password="alice-pw", dbname=DB, autocommit=True))
    assert _one(c2, "SELECT count(*) FROM left_open") == 0
    assert _one(c2, "SELECT now() = statement_timestamp()"), "still inside a transaction"


# ---- transaction pooling ------------------------------------------------------------

def _alice(px, autocommit=True, **kw):
    return px.connect(user="alice", password="alice-pw", dbname=DB, autocommit=autocommit, **kw)


def _occupy(px, pid, pool_size):
    """Open transactions in new sessions of the same user until one of them
    runs on the server with this backend pid; return that session (holding the
    server), after releasing the others."""
    holders = []
    try:
        for _ in range(pool_size):
            h = _alice(px, autocommit=False)
            holders.append((h, _one(h, "SELECT pg_backend_pid()")))  # transaction stays open
            if holders[-1][1] == pid:
                break
        else:
            raise AssertionError(f"could not get server {pid}: holders got "
                                 f"{[p for _, p in holders]}")
    finally:
        for h, p in holders:
            if p != pid:
                h.commit()
                h.close()
    return holders[-1][0]


def _both_servers(px):
    """Make the pool (pool_size=2) open both server connections; their pids."""
    h1 = _alice(px, autocommit=False)
    h2 = _alice(px, autocommit=False)
    pids = [_one(h1, "SELECT pg_backend_pid()"), _one(h2, "SELECT pg_backend_pid()")]
    for h in (h1, h2):
        h.commit()
        h.close()
    assert pids[0] != pids[1], "two open transactions on one server connection"
    return pids


def _on_each_server(px, pids, client, check):
    """Run check(holder) once with each server busy, so that client's
    statements in check run on the other one."""
    for busy in pids:
        holder = _occupy(px, busy, 2)
        try:
            assert _one(client, "SELECT pg_backend_pid()") != busy
            check(holder)
        finally:
            holder.commit()
            holder.close()


def test_transaction_pool_search_path_follows_client(env):
    """The client's SET search_path stays in effect in later transactions on
    either server connection; other sessions never see it."""
    px = _pool_proxy(env, "transaction", 2)
    pids = _both_servers(px)
    a = env.closing(_alice(px))
    a.cursor().execute("SET search_path = app, public")

    def check(holder):
        assert _one(a, "SHOW search_path") == "app, public"
        assert _one(a, "SELECT v FROM marker") == "from app schema"
        assert _one(holder, "SHOW search_path") == '"$user", public', \
            "the client's search_path leaked into another session"

    for _ in range(2):
        _on_each_server(px, pids, a, check)
    # changing it again takes effect on both servers
    a.cursor().execute("SET search_path = public")

    def check_again(holder):
        assert _one(a, "SELECT v FROM marker") == "from public schema", "second SET lost"

    _on_each_server(px, pids, a, check_again)


def test_transaction_pool_set_in_multi_statement_query(env):
    """SET sent together with other statements in one query string is
    tracked like a lone SET."""
    px = _pool_proxy(env, "transaction", 2)
    pids = _both_servers(px)
    a = env.closing(_alice(px))
    a.cursor().execute("SELECT 1; SET search_path = app, public; SELECT 2")

    def check(holder):
        assert _one(a, "SHOW search_path") == "app, public", \
            f"search_path is {_one(a, 'SHOW search_path')!r} on server " \
            f"{_one(a, 'SELECT pg_backend_pid()')}"

    _on_each_server(px, pids, a, check)


def test_transaction_pool_startup_parameters_follow_client(env):
    """application_name from the startup packet and a SET work_mem stay with
    their client whichever server runs its transactions."""
    px = _pool_proxy(env, "transaction", 2)
    pids = _both_servers(px)
    a = env.closing(_alice(px, application_name="alice-app"))
    a.cursor().execute("SET work_mem = '5MB'")
    default_work_mem = env.pg.sql("SHOW work_mem")

    def check(holder):
        assert _one(a, "SHOW application_name") == "alice-app"
        assert _one(a, "SHOW work_mem") == "5MB"
        assert _one(holder, "SHOW application_name") != "alice-app", "application_name leaked"
        assert _one(holder, "SHOW work_mem") == default_work_mem, "work_mem leaked"

    _on_each_server(px, pids, a, check)


def test_transaction_pool_reported_startup_parameters_follow_client(env):
    """DateStyle, TimeZone and application_name from the startup packet
    (PGDATESTYLE, PGTZ) are compared with what each server reports and set or
    RESET without a full reset: they stay with their client on either server,
    and a client that sent none sees the login defaults."""
    import os
    px = _pool_proxy(env, "transaction", 2)
    pids = _both_servers(px)
    defaults = (env.pg.sql("SHOW DateStyle"), env.pg.sql("SHOW TimeZone"))
    saved = {k: os.environ.get(k) for k in ("PGDATESTYLE", "PGTZ")}
    os.environ.update(PGDATESTYLE="SQL, DMY", PGTZ="Asia/Tokyo")
    try:
        a = env.closing(_alice(px, application_name="alice-app"))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    stamp = "SELECT to_char(timestamptz '2026-01-02 00:00:00+00', 'HH24') || ' ' || " \
            "to_char(date '3/4/2026', 'MM')"

    def check(holder):
        # psycopg2 itself runs SET DateStyle TO 'ISO' at connect: DMY stays
        assert _one(a, "SHOW DateStyle") == "ISO, DMY"
        assert _one(a, "SHOW TimeZone") == "Asia/Tokyo"
        assert _one(a, "SHOW application_name") == "alice-app"
        assert _one(a, stamp) == "09 04"
        assert (_one(holder, "SHOW DateStyle"), _one(holder, "SHOW TimeZone")) == defaults, \
            "DateStyle/TimeZone leaked to another client"
        assert _one(holder, "SHOW application_name") != "alice-app", "application_name leaked"

    _on_each_server(px, pids, a, check)
    b = env.closing(_alice(px))
    for _ in range(6):  # b and a alternate over the two servers
        assert (_one(b, "SHOW DateStyle"), _one(b, "SHOW TimeZone")) == defaults
        assert _one(a, stamp) == "09 04"


def test_transaction_pool_rolled_back_set_not_replayed(env):
    """A SET inside a rolled-back transaction is undone, as in PostgreSQL; a
    committed one is kept."""
    px = _pool_proxy(env, "transaction", 2)
    a = env.closing(_alice(px, autocommit=False))
    a.cursor().execute("SET statement_timeout = '7s'")
    tx_pid = _one(a, "SELECT pg_backend_pid()")
    a.rollback()
    a.cursor().execute("SET lock_timeout = '3s'")
    a.commit()
    timeouts = _one(a, "SELECT current_setting('statement_timeout') || ' ' || "
                       "current_setting('lock_timeout')")
    a.commit()
    assert timeouts == "0 3s", f"statement_timeout/lock_timeout: {timeouts!r}, expected '0 3s'"
    holder = _occupy(px, tx_pid, 2)
    try:
        timeouts = _one(a, "SELECT current_setting('statement_timeout') || ' ' || "
                           "current_setting('lock_timeout')")
        a.commit()
        assert timeouts == "0 3s", \
            f"on another server: statement_timeout/lock_timeout {timeouts!r}, expected '0 3s'"
    finally:
        holder.commit()
        holder.close()


def test_transaction_pool_set_role_follows_client_only(env):
    """SET ROLE survives RESET ALL in PostgreSQL (which the proxy's reset
    uses): it must not leak to the next client of the server, nor be lost
    when the client changes servers."""
    px = _pool_proxy(env, "transaction", 2)
    pids = _both_servers(px)
    a = env.closing(_alice(px))
    a.cursor().execute("SET ROLE pool_reader")

    def check(holder):
        assert _one(a, "SELECT current_user") == "pool_reader"
        assert _one(holder, "SELECT current_user") == SRV_USER, "the role leaked"

    _on_each_server(px, pids, a, check)
    a.cursor().execute("RESET ROLE")

    def check_reset(holder):
        assert _one(a, "SELECT current_user") == SRV_USER

    _on_each_server(px, pids, a, check_reset)


def test_transaction_pool_departed_client_leaks_nothing(env):
    """The settings of a client that left are reset for the next client of
    its server: after a SET as its last statement, and after leaving inside a
    transaction (which the proxy rolls back)."""
    px = _pool_proxy(env, "transaction", 1)
    default_work_mem = env.pg.sql("SHOW work_mem")
    a = _alice(px)
    pid = _one(a, "SELECT pg_backend_pid()")
    a.cursor().execute("SET work_mem = '77MB'")
    a.close()
    b = env.closing(_alice(px))
    assert _one(b, "SELECT pg_backend_pid()") == pid, "pool_size=1: not the same server"
    assert _one(b, "SHOW work_mem") == default_work_mem, "work_mem leaked"
    b.close()

    a = _alice(px, autocommit=False)
    a.cursor().execute("SET search_path = app")
    a.commit()
    assert _one(a, "SELECT pg_backend_pid()") == pid  # a transaction is open now
    a.close()  # Terminate inside the transaction
    b = env.closing(_alice(px))
    assert _one(b, "SELECT pg_backend_pid()") == pid, "pool_size=1: not the same server"
    assert _one(b, "SHOW search_path") == '"$user", public', "search_path leaked"


def test_pooled_login_with_invalid_startup_setting_refused(env):
    """A startup parameter PostgreSQL rejects fails the login, as it would
    without the proxy; the pool keeps working for others."""
    px = _pool_proxy(env, "transaction", 1)
    try:
        _alice(px, options="-c work_mem=lots")
        raise AssertionError("login with work_mem=lots succeeded")
    except psycopg2.OperationalError as e:
        assert "work_mem" in str(e), str(e)
    ok = env.closing(_alice(px))
    assert _one(ok, "SELECT 'still serving'") == "still serving"
    assert _one(ok, "SHOW work_mem") != "lots"


def test_transaction_pool_clients_interleave(env):
    """pool_size=1: a second client waits while the first is inside a
    transaction, and runs as soon as it commits (on the same server)."""
    px = _pool_proxy(env, "transaction", 1)
    a = env.closing(_alice(px, autocommit=False))
    b = env.closing(harness.RawClient(px.port))
    b.login(user="alice", password="alice-pw", database=DB)
    a_pid = _one(a, "SELECT pg_backend_pid()")  # transaction open
    # B's query is on its way to the proxy once send() returns (a thread that has
    # not started yet is not waiting): no answer may come while A holds the server
    b.send(harness.message(b"Q", b"SELECT pg_backend_pid()\x00"))
    try:
        early = b.read_message(timeout=0.8)
    except socket.timeout:
        early = None
    assert early is None, f"the second client got {early!r} while the first held the only server"
    a.commit()
    rows = b.read_result(timeout=5)
    assert rows == [(str(a_pid),)], \
        f"pool_size=1 but another server connection was used: {rows}, first was {a_pid}"
    assert _one(a, "SELECT 'first again'") == "first again"
    a.commit()


def test_transaction_pool_copy_and_pipelines(env):
    """COPY and extended-protocol pipelines (with an error in the middle) keep
    their server until they are finished, with other clients competing for
    the pool."""
    env.pg.sql("CREATE TABLE IF NOT EXISTS pooled_copy (client int, n int)", db=DB,
               as_role=SRV_USER)
    px = _pool_proxy(env, "transaction", 2)
    errors = []

    def copier(k):
        try:
            conn = _alice(px, autocommit=False)
            data = "".join(f"{k}\t{n}\n" for n in range(20000)).encode()
            conn.cursor().copy_expert("COPY pooled_copy FROM STDIN", io.BytesIO(data))
            conn.commit()
            out = io.BytesIO()
            conn.cursor().copy_expert(
                f"COPY (SELECT n FROM pooled_copy WHERE client = {k} ORDER BY n) TO STDOUT", out)
            conn.commit()
            assert out.getvalue() == "".join(f"{n}\n" for n in range(20000)).encode()
            conn.close()
        except Exception as e:
            errors.append(f"copier {k}: {e!r}")

    def pipeliner(k):
        try:
            with harness.RawClient(px.port) as raw:
                raw.login(user="alice", password="alice-pw", database=DB)
                for i in range(20):
                    raw.send(tc._extended_batch([f"SELECT '{k}-{i}-a'", "SELECT 1/0",
                                                 "SELECT 'skipped'"]) +
                             tc._extended_batch([f"SELECT '{k}-{i}-b'"]))
                    events, status = tc.read_batch(raw)
                    assert events == [("row", f"{k}-{i}-a"), ("complete", "SELECT 1"),
                                      ("error", "22012")], events
                    events, status = tc.read_batch(raw)
                    assert events == [("row", f"{k}-{i}-b"), ("complete", "SELECT 1")], events
                    assert status == b"I"
        except Exception as e:
            errors.append(f"pipeliner {k}: {e!r}")

    threads = [threading.Thread(target=copier, args=(k,), daemon=True) for k in range(3)]
    threads += [threading.Thread(target=pipeliner, args=(k,), daemon=True) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert env.pg.sql("SELECT count(*) FROM pooled_copy", db=DB) == "60000"


def _terminate(env, pid):
    env.pg.sql(f"SELECT pg_terminate_backend({pid})")
    harness.wait_until(lambda: env.pg.sql(
        f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}") == "0",
        timeout=10, message=f"backend {pid} to exit")


def test_transaction_pool_dead_idle_server_replaced(env):
    """A pooled server that dies while idle in the pool is not handed to a
    client: the client's next transaction runs on a fresh server."""
    px = _pool_proxy(env, "transaction", 1)
    a = env.closing(_alice(px))
    pid = _one(a, "SELECT pg_backend_pid()")  # server back in the pool now
    _terminate(env, pid)
    time.sleep(0.2)
    assert _one(a, "SELECT 'still working'") == "still working"
    assert _one(a, "SELECT pg_backend_pid()") != pid
    px.assert_alive()


def test_session_pool_server_killed_under_client(env):
    """The server of a session-pooled client is terminated: that client gets
    an error, the proxy stays up, and the next client gets a working server."""
    px = _pool_proxy(env, "session", 1)
    a = _alice(px)
    pid = _one(a, "SELECT pg_backend_pid()")
    _terminate(env, pid)
    # only the driver's error is caught: the AssertionError below must not be
    # (its own text would match the check on the message)
    try:
        _one(a, "SELECT 1")
    except psycopg2.Error as e:
        assert "terminating connection" in str(e) or "closed" in str(e), repr(e)
    else:
        raise AssertionError("query on a terminated server succeeded")
    a.close()
    b = env.closing(_alice(px))
    assert _one(b, "SELECT 'fresh server'") == "fresh server"
    assert _one(b, "SELECT pg_backend_pid()") != pid
    px.assert_alive()
