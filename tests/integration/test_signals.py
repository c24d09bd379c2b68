"""Signals: SIGHUP reloads the config file without dropping clients, SIGTERM
drains gracefully, SIGINT stops at once."""

import signal
import threading
import time

import psycopg2

import harness


def _connect_outcome(px, user=harness.DEFAULT_USER, password=harness.DEFAULT_PASSWORD):
    """'ok', 'refused', 'closed' or the SQLSTATE of the error a new login gets."""
    try:
        raw = harness.RawClient(px.port, timeout=5)
    except ConnectionRefusedError:
        return "refused"
    try:
        raw.login(user=user, password=password)
        raw.query("SELECT 1")
        raw.terminate()
        return "ok"
    except harness.PgError as e:
        return e.sqlstate
    except (harness.ConnectionClosed, OSError):
        return "closed"
    finally:
        raw.close()


def _query(conn, sql="SELECT 1"):
    cur = conn.cursor()
    cur.execute(sql)
    return cur.fetchall()


# ---- SIGHUP -------------------------------------------------------------------

def test_sighup_lower_max_clients(env):
    config = {"max_clients": 10, "log_level": "info"}
    px = env.proxy(config=config)
    clients = [env.closing(px.connect(autocommit=True)) for _ in range(3)]
    assert _connect_outcome(px) == "ok"

    px.write_config({**config, "max_clients": 3})
    px.reload()
    outcome = harness.wait_until(lambda: (o := _connect_outcome(px)) != "ok" and o, timeout=5,
                                 message="the lowered max_clients to take effect")
    assert outcome == "53300", f"4th client with max_clients=3: {outcome}, expected 53300"
    # the existing clients were not dropped
    for i, c in enumerate(clients):
        assert _query(c, f"SELECT {i}") == [(i,)]
    # one leaves: there is room again
    clients.pop().close()
    harness.wait_until(lambda: _connect_outcome(px) == "ok", timeout=5,
                       message="a free slot after one client left")
    # raise it again
    px.write_config({**config, "max_clients": 10})
    px.reload()
    more = [env.closing(px.connect()) for _ in range(5)]
    for c in more + clients:
        assert _query(c) == [(1,)]
    px.assert_alive()


def test_sighup_auth_file_change(env):
    auth = env.userlist({"bob": "old-pw"})
    px = env.proxy(config={"auth_mode": "userlist", "auth_file": auth,
                           "server_user": harness.DEFAULT_USER,
                           "server_password": harness.DEFAULT_PASSWORD})
    session = env.closing(px.connect(user="bob", password="old-pw"))
    assert _query(session, "SELECT 'before'") == [("before",)]
    assert _connect_outcome(px, "carol", "carol-pw") != "ok"

    harness.write_userlist(auth, {"bob": "new-pw", "carol": harness.scram_secret("carol-pw")})
    px.reload()
    harness.wait_until(lambda: _connect_outcome(px, "bob", "new-pw") == "ok", timeout=5,
                       message="bob's new password to be accepted")
    assert _connect_outcome(px, "bob", "old-pw") == "28P01"
    assert _connect_outcome(px, "carol", "carol-pw") == "ok"
    # bob's existing session is untouched
    assert _query(session, "SELECT 'after'") == [("after",)]


def test_sighup_with_broken_config_keeps_running(env):
    config = {"max_clients": 50}
    px = env.proxy(config=config)
    session = env.closing(px.connect())
    px.config_path.write_text("[epoch]\nmax_clients = not-a-number\nthis is not ini\n")
    px.reload()
    px.assert_alive("after reloading a broken config file")
    assert _query(session) == [(1,)]
    assert _connect_outcome(px) == "ok"
    px.write_config(config)
    px.reload()
    px.assert_alive()
    assert _connect_outcome(px) == "ok"


# ---- SIGTERM --------------------------------------------------------------------

def test_sigterm_graceful_drain(env):
    env.pg.sql("CREATE TABLE drain_test (v text)", db=harness.DEFAULT_DB,
               as_role=harness.DEFAULT_USER)
    px = env.proxy(config={"shutdown_timeout": 30})
    idle = env.closing(px.raw())
    idle.login()
    in_tx = env.closing(px.connect())
    cur = in_tx.cursor()
    cur.execute("INSERT INTO drain_test VALUES ('first')")  # opens a transaction

    px.send_signal(signal.SIGTERM)
    # the idle client is disconnected
    idle.expect_closed(timeout=5)
    # new clients are refused
    outcome = harness.wait_until(lambda: (o := _connect_outcome(px)) != "ok" and o, timeout=5,
                                 message="new connections to be refused after SIGTERM")
    assert outcome in ("refused", "closed", "57P01", "57P03", "08006"), outcome
    # the open transaction goes on and commits
    assert px.alive(), "proxy exited although a transaction was still open"
    cur.execute("INSERT INTO drain_test VALUES ('second')")
    cur.execute("SELECT count(*) FROM drain_test")
    assert cur.fetchone() == (2,)
    in_tx.commit()
    in_tx.close()
    rc = px.wait(timeout=5)
    assert rc == 0, f"exit code {rc} after a graceful drain"
    assert env.pg.sql("SELECT string_agg(v, ',' ORDER BY v) FROM drain_test",
                      db=harness.DEFAULT_DB) == "first,second"


def test_sigterm_shutdown_timeout(env):
    """A transaction that never finishes is cut off after shutdown_timeout."""
    env.pg.sql("CREATE TABLE drain_timeout (v int)", db=harness.DEFAULT_DB,
               as_role=harness.DEFAULT_USER)
    px = env.proxy(config={"shutdown_timeout": 1})
    conn = env.closing(px.connect())
    conn.cursor().execute("INSERT INTO drain_timeout VALUES (1)")
    t0 = time.monotonic()
    px.send_signal(signal.SIGTERM)
    rc = px.wait(timeout=6)
    elapsed = time.monotonic() - t0
    assert rc == 0, rc
    assert 0.7 <= elapsed <= 5, f"exited {elapsed:.1f}s after SIGTERM with shutdown_timeout=1"
    try:
        conn.cursor().execute("SELECT 1")
        raise AssertionError("session still usable after the proxy exited")
    except psycopg2.Error:
        pass
    harness.wait_until(lambda: env.pg.sql("SELECT count(*) FROM drain_timeout",
                                          db=harness.DEFAULT_DB) == "0",
                       timeout=5, message="the cut-off transaction to be rolled back")


def test_sigterm_without_clients_exits_zero(env):
    px = env.proxy()
    conn = px.connect()
    conn.close()
    px.send_signal(signal.SIGTERM)
    assert px.wait(timeout=5) == 0


# ---- SIGINT ---------------------------------------------------------------------

def test_sigint_exits_promptly(env):
    px = env.proxy(config={"shutdown_timeout": 30})
    idle = env.closing(px.connect())
    assert _query(idle) == [(1,)]
    in_tx = env.closing(px.connect())
    in_tx.cursor().execute("SELECT 1")  # transaction open
    busy = env.closing(px.connect())
    result = {}

    def run_sleep():
        try:
            busy.cursor().execute("SELECT pg_sleep(20)")
            result["done"] = True
        except psycopg2.Error as e:
            result["error"] = e

    t = threading.Thread(target=run_sleep, daemon=True)
    t.start()
    harness.wait_until(lambda: env.pg.sql("SELECT count(*) FROM pg_stat_activity WHERE query = "
                                          "'SELECT pg_sleep(20)'") == "1",
                       timeout=10, message="pg_sleep to be running")
    t0 = time.monotonic()
    px.send_signal(signal.SIGINT)
    rc = px.wait(timeout=5)
    assert time.monotonic() - t0 < 3, "SIGINT took more than 3s"
    assert rc == 0, f"exit code {rc} after SIGINT"
    t.join(timeout=10)
    assert "error" in result, f"the running query did not fail: {result}"
    for c in (idle, in_tx):
        try:
            c.cursor().execute("SELECT 1")
            raise AssertionError("session survived SIGINT")
        except psycopg2.Error:
            pass


def test_sigint_during_drain(env):
    """SIGTERM with an open transaction, then SIGINT: exits at once."""
    px = env.proxy(config={"shutdown_timeout": 60})
    conn = env.closing(px.connect())
    conn.cursor().execute("SELECT 1")
    px.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert px.alive(), "exited despite the open transaction"
    t0 = time.monotonic()
    px.send_signal(signal.SIGINT)
    rc = px.wait(timeout=5)
    assert time.monotonic() - t0 < 3
    assert rc == 0, rc
