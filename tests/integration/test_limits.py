"""Limits and timeouts: max_clients, idle_timeout, idle_in_transaction_timeout,
query_wait_timeout, connect_timeout."""

import os
import socket
import threading
import time

import psycopg2

import harness


def _login_or_query_error(px, sql="SELECT 1", timeout=15, **login):
    """Log in on a raw socket and run sql; return (sqlstate or 'ok', seconds)."""
    t0 = time.monotonic()
    with px.raw(timeout=timeout) as raw:
        try:
            raw.login(**login)
            raw.query(sql, timeout=timeout)
            return "ok", time.monotonic() - t0
        except harness.PgError as e:
            return e.sqlstate, time.monotonic() - t0


def _userlist_config(env, **extra):
    auth = env.userlist({harness.DEFAULT_USER: harness.DEFAULT_PASSWORD})
    config = {"auth_mode": "userlist", "auth_file": auth, "server_user": harness.DEFAULT_USER,
              "server_password": harness.DEFAULT_PASSWORD}
    config.update(extra)
    return config


def _full_proxy(env, n=5):
    px = env.proxy(config={"max_clients": n})
    clients = [env.closing(px.connect()) for _ in range(n)]
    return px, clients


def test_max_clients(env):
    px, clients = _full_proxy(env)
    with px.raw() as raw:
        raw.send_startup(harness.DEFAULT_USER, harness.DEFAULT_DB)
        try:
            raw.finish_login(harness.DEFAULT_USER, harness.DEFAULT_PASSWORD)
            raise AssertionError("6th client admitted with max_clients=5")
        except harness.PgError as e:
            assert e.sqlstate == "53300", e.fields
            assert e.message, "53300 error without a message"
            message = e.message
        raw.expect_closed(timeout=3)
    try:
        px.connect(sslmode="disable")
        raise AssertionError("6th psycopg2 client admitted with max_clients=5")
    except psycopg2.OperationalError as e:
        assert message in str(e), (message, str(e))
    for i, c in enumerate(clients):
        cur = c.cursor()
        cur.execute("SELECT %s", (i,))
        assert cur.fetchone() == (i,)
    clients.pop().close()
    conn = harness.wait_until(lambda: _try_connect(px), timeout=5,
                              message="a free slot after one client left")
    conn.close()


def test_max_clients_error_seen_by_default_libpq(env):
    """libpq's default sslmode=prefer starts with an SSLRequest: the 53300
    error must come after the proxy answered it (as PostgreSQL does), or the
    user only sees "server sent an error response during SSL exchange"."""
    px, _ = _full_proxy(env)
    for sslmode in ("prefer", "allow", "disable"):
        try:
            px.connect(sslmode=sslmode)
            raise AssertionError("6th client admitted with max_clients=5")
        except psycopg2.OperationalError as e:
            assert "too many clients" in str(e), f"sslmode={sslmode}: {str(e).strip()}"
    cp = px.psql("-c", "SELECT 1")
    assert cp.returncode != 0 and "too many clients" in cp.stderr, cp.stderr


def test_max_clients_counts_logins_not_connections(env):
    """Connections that have not sent a startup packet hold no slot, and a
    cancel request gets through a full proxy (as with PostgreSQL)."""
    px = env.proxy(config={"max_clients": 3})
    clients = [env.closing(px.connect()) for _ in range(2)]
    silent = [env.closing(socket.create_connection(("127.0.0.1", px.port))) for _ in range(3)]
    clients.append(env.closing(px.connect()))  # the 3rd login, with 3 silent sockets open
    try:
        px.connect(sslmode="disable")
        raise AssertionError("4th client admitted with max_clients=3")
    except psycopg2.OperationalError as e:
        assert "too many clients" in str(e), str(e)
    # full: cancel the query of one of the clients
    result = {}

    def sleeper():
        try:
            clients[0].cursor().execute("SELECT pg_sleep(30)")
        except psycopg2.Error as e:
            result["pgcode"] = e.pgcode

    t = threading.Thread(target=sleeper, daemon=True)
    t.start()
    harness.wait_until(lambda: env.pg.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' "
        "AND state = 'active'") == "1", timeout=10, message="pg_sleep to run")
    clients[0].cancel()
    t.join(timeout=10)
    assert not t.is_alive(), "query still running 10s after cancel() on a full proxy"
    assert result.get("pgcode") == "57014", result
    for s in silent:
        s.close()


def _try_connect(px):
    try:
        return px.connect()
    except psycopg2.OperationalError:
        return None


def test_idle_timeout(env):
    px = env.proxy(config={"idle_timeout": 1})
    # raw: ErrorResponse 57P05, then the connection is closed
    with px.raw() as raw:
        raw.login()
        t0 = time.monotonic()
        msgs = raw.expect_closed(timeout=5)
        elapsed = time.monotonic() - t0
        assert 0.7 <= elapsed <= 4, f"idle client closed after {elapsed:.1f}s (idle_timeout=1)"
        errors = [harness.parse_error_fields(b) for t, b in msgs if t == b"E"]
        assert errors and errors[0].get("C") == "57P05", msgs
    # psycopg2: the next query after the idle period fails
    idle = env.closing(px.connect(autocommit=True))
    active = env.closing(px.connect(autocommit=True))
    in_tx = env.closing(px.connect())
    in_tx.cursor().execute("SELECT 1")  # inside a transaction: idle_timeout does not apply
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        active.cursor().execute("SELECT 1")  # busy every 0.3s: never idle for 1s
        time.sleep(0.3)
    try:
        idle.cursor().execute("SELECT 1")
        raise AssertionError("a client idle for 2.5s survived idle_timeout=1")
    except psycopg2.Error:
        pass
    active.cursor().execute("SELECT 'still here'")
    cur = in_tx.cursor()
    cur.execute("SELECT 'tx still here'")
    assert cur.fetchone() == ("tx still here",)
    in_tx.commit()


def test_idle_in_transaction_timeout(env):
    px = env.proxy(config={"idle_in_transaction_timeout": 1})
    with px.raw() as raw:
        raw.login()
        raw.query("BEGIN")
        t0 = time.monotonic()
        msgs = raw.expect_closed(timeout=5)
        elapsed = time.monotonic() - t0
        assert 0.7 <= elapsed <= 4, f"closed after {elapsed:.1f}s"
        errors = [harness.parse_error_fields(b) for t, b in msgs if t == b"E"]
        assert errors and errors[0].get("C") == "25P03", msgs
    # idle outside a transaction is fine
    with px.raw() as raw:
        raw.login()
        time.sleep(2)
        assert raw.query("SELECT 'not in a transaction'") == [("not in a transaction",)]


def test_query_wait_timeout_session_pool(env):
    """pool_size=1 (one worker), session pooling: a second client waits for the
    only server connection and gets 53300 after query_wait_timeout."""
    px = env.proxy(config=_userlist_config(env, pool_mode="session", pool_size=1,
                                           query_wait_timeout=1))
    holder = env.closing(px.connect(autocommit=True))
    holder.cursor().execute("SELECT 1")
    state, elapsed = _login_or_query_error(px)
    assert state == "53300", f"second client: {state}"
    assert 0.7 <= elapsed <= 5, f"error after {elapsed:.1f}s with query_wait_timeout=1"
    holder.close()
    state, _ = _login_or_query_error(px)
    assert state == "ok", f"after the holder left: {state}"


def test_query_wait_timeout_transaction_pool(env):
    px = env.proxy(config=_userlist_config(env, pool_mode="transaction", pool_size=1,
                                           query_wait_timeout=1))
    holder = env.closing(px.connect())
    holder.cursor().execute("SELECT 1")  # BEGIN implicitly: holds the server
    # the wait may happen at login or at the first query: either way 53300
    state, elapsed = _login_or_query_error(px, "SELECT 2")
    assert state == "53300", f"second client: {state}"
    assert 0.7 <= elapsed <= 5, f"error after {elapsed:.1f}s with query_wait_timeout=1"
    holder.commit()
    state, _ = _login_or_query_error(px)
    assert state == "ok", state


def test_transaction_pool_waiter_served_when_server_frees(env):
    """A waiting client is served as soon as the server is released."""
    px = env.proxy(config=_userlist_config(env, pool_mode="transaction", pool_size=1,
                                           query_wait_timeout=10))
    holder = env.closing(px.connect())
    holder.cursor().execute("SELECT 1")
    result = {}
    sent = threading.Event()  # the waiter's first bytes are on their way to the proxy

    def wait_query():
        t0 = time.monotonic()
        try:
            with px.raw(timeout=15) as raw:
                raw.send_startup(harness.DEFAULT_USER, harness.DEFAULT_DB)
                sent.set()
                # the wait may happen at login or at the first query
                raw.finish_login(harness.DEFAULT_USER, harness.DEFAULT_PASSWORD)
                result["row"] = raw.query("SELECT 'served'")
        except Exception as e:
            result["error"] = e
        result["elapsed"] = time.monotonic() - t0

    t = threading.Thread(target=wait_query, daemon=True)
    t.start()
    # a thread that has not started yet is not waiting: wait for its startup
    # packet to be sent, then it must get no answer to its query while the
    # holder keeps the only server
    assert sent.wait(10), "the waiter never sent its startup packet"
    t.join(1)
    assert t.is_alive(), f"the waiter did not wait: {result}"
    holder.commit()
    t.join(timeout=5)
    assert result.get("row") == [("served",)], result


def test_connect_timeout_unresponsive_backend(env):
    """The backend accepts TCP but never answers: the client gets an error after
    about connect_timeout, and the proxy keeps running."""
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(64)  # never accept()ed, never answers
    env.closing(blackhole)
    port = blackhole.getsockname()[1]
    px = env.proxy(backend=f"host=127.0.0.1 port={port}", config={"connect_timeout": 1})
    t0 = time.monotonic()
    try:
        px.connect()
        raise AssertionError("login through an unresponsive backend succeeded")
    except psycopg2.OperationalError:
        pass
    elapsed = time.monotonic() - t0
    assert elapsed <= 6, f"client waited {elapsed:.1f}s with connect_timeout=1"
    px.assert_alive()


def test_backend_down(env):
    """Nothing listens on the backend port: a prompt, clean error."""
    port = harness.free_port()
    px = env.proxy(backend=f"host=127.0.0.1 port={port}", config={"connect_timeout": 2})
    t0 = time.monotonic()
    with px.raw() as raw:
        try:
            raw.login()
            raise AssertionError("login succeeded without a backend")
        except harness.PgError as e:
            assert e.message, e.fields
        except harness.ConnectionClosed:
            raise AssertionError("connection closed without an ErrorResponse")
    assert time.monotonic() - t0 < 4
    px.assert_alive()


def test_server_terminated_under_client(env):
    """PostgreSQL terminates a proxied backend: the client receives the FATAL
    error (57P01), the proxy stays up, other sessions are unaffected."""
    px = env.proxy()
    other = env.closing(px.connect(autocommit=True))
    victim = env.closing(px.connect(autocommit=True))
    cur = victim.cursor()
    cur.execute("SELECT pg_backend_pid()")
    pid = cur.fetchone()[0]
    env.pg.sql(f"SELECT pg_terminate_backend({pid})")
    time.sleep(0.3)
    try:
        cur.execute("SELECT 1")
        raise AssertionError("query on a terminated backend succeeded")
    except psycopg2.Error as e:
        assert "terminating connection due to administrator command" in str(e) or \
            "closed" in str(e), str(e)
    px.assert_alive()
    c = other.cursor()
    c.execute("SELECT 'other fine'")
    assert c.fetchone() == ("other fine",)


def test_backend_restart(env):
    """PostgreSQL restarts under the proxy: existing sessions fail cleanly,
    new sessions work once PostgreSQL is back; the proxy never exits."""
    px = env.proxy()
    before = env.closing(px.connect(autocommit=True))
    before.cursor().execute("SELECT 1")
    env.pg.restart()
    try:
        before.cursor().execute("SELECT 1")
        raise AssertionError("session survived a PostgreSQL restart")
    except psycopg2.Error:
        pass
    px.assert_alive()
    after = env.closing(px.connect())
    cur = after.cursor()
    cur.execute("SELECT 'after restart'")
    assert cur.fetchone() == ("after restart",)


def test_second_proxy_on_same_port_refused(env):
    """SO_REUSEPORT must not let a second epoch-proxy share the port
    silently: it exits with a clear error and the first keeps serving."""
    first = env.proxy(workers=2)
    second = env.proxy(port=first.port, start=False)
    second.start(wait_ready=False)
    rc = second.wait(timeout=10)
    second.exit_observed = True
    assert rc not in (0, None), f"second proxy exited with {rc}"
    assert "is another epoch-proxy running?" in second.log_text(), second.log_tail()
    for _ in range(20):  # every connection still reaches the first proxy
        conn = first.connect()
        conn.cursor().execute("SELECT 1")
        conn.close()
    first.assert_alive()


def test_idle_clients_cost_a_few_kilobytes_each(env):
    """Thousands of idle clients (logged in, one query run, open): each
    costs the proxy its structures only, no buffer (docs/benchmarks.md,
    bench/idle_clients: <= 4 kB each is the target). Measured as the
    growth of the proxy's RSS over 2,000 clients; under AddressSanitizer
    (redzones, quarantine) only that they are all served."""
    n = 2000
    px = env.proxy(config=_userlist_config(env, pool_mode="transaction", pool_size=4,
                                           auth_type="md5", max_clients=n + 10))
    warm = env.closing(px.raw())
    warm.login()
    warm.query("SELECT 1")

    def rss():
        with open(f"/proc/{px.proc.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    before = rss()
    clients = []
    for _ in range(n):
        raw = px.raw(timeout=30)
        raw.login()
        raw.query("SELECT 1")
        clients.append(raw)
    time.sleep(0.5)
    per_client = (rss() - before) / n
    assert warm.query("SELECT 2")  # still serving
    for raw in clients:
        raw.close()
    if not os.environ.get("ASAN_OPTIONS"):
        assert per_client <= 6, f"{per_client:.1f} kB of RSS per idle client"


test_idle_clients_cost_a_few_kilobytes_each.timeout = 120
