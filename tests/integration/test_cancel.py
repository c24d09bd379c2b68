"""Query cancellation through the proxy (CancelRequest with the proxy's keys)."""

import random
import threading
import time

import psycopg2
import psycopg2.errors

import harness


def _run_in_thread(fn):
    result = {}

    def target():
        t0 = time.monotonic()
        try:
            result["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - reported to the test
            result["error"] = e
        result["elapsed"] = time.monotonic() - t0

    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, result


def _wait_running(pg, needle, timeout=10):
    harness.wait_until(
        lambda: pg.sql("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                       f"AND query LIKE {harness.quote_literal('%' + needle + '%')} "
                       "AND pid <> pg_backend_pid()") != "0",
        timeout=timeout, message=f"query {needle!r} to be running")


def _cancel_and_check(env, conn, tag):
    cur = conn.cursor()
    t, result = _run_in_thread(lambda: cur.execute(f"SELECT pg_sleep(30) /* {tag} */"))
    try:
        _wait_running(env.pg, tag)
    except AssertionError as e:
        # say what happened instead (seen once under CI load, not reproduced)
        activity = env.pg.sql("SELECT pid, state, wait_event, left(query, 60) "
                              "FROM pg_stat_activity WHERE backend_type = 'client backend'")
        raise AssertionError(f"{e}; query thread finished: {not t.is_alive()}, result: "
                             f"{result!r}; pg_stat_activity:\n{activity}") from None
    time.sleep(0.5)
    t_cancel = time.monotonic()
    conn.cancel()  # libpq PQcancel: a CancelRequest on a new connection
    t.join(timeout=10)
    assert not t.is_alive(), "query still running 10s after cancel()"
    assert time.monotonic() - t_cancel < 5, "cancel took more than 5s"
    err = result.get("error")
    assert isinstance(err, psycopg2.errors.QueryCanceled), f"expected QueryCanceled, got {err!r}"
    assert err.pgcode == "57014"
    assert "canceling statement due to user request" in str(err), str(err)
    conn.rollback()
    cur.execute("SELECT 42")
    assert cur.fetchone() == (42,)


def test_cancel_pg_sleep(env):
    px = env.proxy()
    conn = env.closing(px.connect())
    _cancel_and_check(env, conn, "cancel-basic")
    # and a second time on the same connection
    _cancel_and_check(env, conn, "cancel-again")


def test_cancel_autocommit(env):
    px = env.proxy(workers=2)
    conn = env.closing(px.connect(autocommit=True))
    _cancel_and_check(env, conn, "cancel-autocommit")


def test_cancel_raw_keys(env):
    """The BackendKeyData the client got from the proxy cancels its query; a
    wrong key cancels nothing."""
    px = env.proxy()
    with px.raw() as raw:
        raw.login()
        assert raw.backend_key is not None, "no BackendKeyData received"
        pid, key = raw.backend_key
        # wrong secret: must not cancel
        raw.send(harness.message(b"Q", b"SELECT pg_sleep(1.5), 'finished'\x00"))
        _wait_running(env.pg, "finished")
        harness.send_cancel(px.port, pid, (key + 1) & 0x7FFFFFFF or 1)
        harness.send_cancel(px.port, random.randint(1, 1 << 30), random.randint(1, 1 << 30))
        rows = raw.read_result(timeout=10)
        assert rows == [("", "finished")], rows
        # the right key: cancelled
        raw.send(harness.message(b"Q", b"SELECT pg_sleep(30), 'raw-cancel'\x00"))
        _wait_running(env.pg, "raw-cancel")
        t0 = time.monotonic()
        harness.send_cancel(px.port, pid, key)
        try:
            raw.read_result(timeout=10)
            raise AssertionError("query was not cancelled")
        except harness.PgError as e:
            assert e.sqlstate == "57014", e.fields
        assert time.monotonic() - t0 < 5
        assert raw.query("SELECT 'alive'") == [("alive",)]
    px.assert_alive()


def test_cancel_connection_closes_after_postgresql_closed_its_own(env):
    """libpq's PQcancel returns when the server closes the cancel connection;
    PostgreSQL closes it only after signalling the backend. The proxy must
    keep the client's cancel connection open until PostgreSQL closed the one
    it forwarded on, or the client goes on early and a late signal cancels its
    next query. Made deterministic by stopping the postmaster (SIGSTOP): the
    forwarded request then waits unanswered in its listen queue."""
    import os
    import signal
    import socket
    import struct
    px = env.proxy()
    with px.raw() as raw:
        raw.login()
        pid, key = raw.backend_key
        raw.send(harness.message(b"Q", b"SELECT pg_sleep(30), 'late-cancel'\x00"))
        _wait_running(env.pg, "late-cancel")
        postmaster = int((env.pg.data / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(postmaster, signal.SIGSTOP)
        try:
            with socket.create_connection(("127.0.0.1", px.port), timeout=10) as s:
                s.sendall(struct.pack("!iiii", 16, harness.CANCEL_REQUEST_CODE, pid, key))
                s.settimeout(1.5)
                try:
                    data = s.recv(1)
                    raise AssertionError(f"cancel connection closed ({data!r}) before "
                                         "PostgreSQL handled the request")
                except socket.timeout:
                    pass
                os.kill(postmaster, signal.SIGCONT)
                s.settimeout(10)
                assert s.recv(1) == b"", "cancel connection not closed after PostgreSQL's"
        finally:
            os.kill(postmaster, signal.SIGCONT)
        try:
            raw.read_result(timeout=10)
            raise AssertionError("query was not cancelled")
        except harness.PgError as e:
            assert e.sqlstate == "57014", e.fields
        assert raw.query("SELECT 'alive'") == [("alive",)]
    px.assert_alive()


def test_cancel_with_transaction_pooling(env):
    """userlist + pool_mode=transaction: the cancel reaches the server running
    this client's query, other clients are unaffected."""
    auth = env.userlist({harness.DEFAULT_USER: harness.DEFAULT_PASSWORD})
    px = env.proxy(config={"auth_mode": "userlist", "auth_file": auth,
                           "server_user": harness.DEFAULT_USER,
                           "server_password": harness.DEFAULT_PASSWORD,
                           "pool_mode": "transaction", "pool_size": 3})
    victim = env.closing(px.connect(autocommit=True))
    bystander = env.closing(px.connect(autocommit=True))
    bcur = bystander.cursor()
    t, result = _run_in_thread(lambda: bcur.execute("SELECT pg_sleep(2), 'bystander'"))
    _wait_running(env.pg, "bystander")
    _cancel_and_check(env, victim, "pooled-victim")
    t.join(timeout=10)
    assert "error" not in result, f"bystander's query failed: {result.get('error')!r}"
    assert bcur.fetchone() == ("", "bystander")
