"""Many clients at once through the proxy; pipelined messages; connection churn."""

import hashlib
import socket
import struct
import threading
import time

import harness

PG_SETTINGS = {"max_connections": 300}
TIMEOUT = 180

CLIENTS = 200
QUERIES = 5


def _run_clients(n, connect, body, all_connected=None):
    """Run body(i, conn) in n threads, all connected at once (barrier).
    all_connected(), if given, runs once when every client is connected and
    before any of them goes on (so none has finished and left yet).
    Returns the list of per-client errors."""
    barrier = threading.Barrier(n, action=all_connected, timeout=90)
    errors = [None] * n

    def worker(i):
        conn = None
        try:
            conn = connect(i)
            barrier.wait()
            body(i, conn)
        except BaseException as e:  # noqa: BLE001
            errors[i] = repr(e)
            barrier.abort()
        finally:
            if conn is not None:
                try:
                    conn.close()
                except Exception:
                    pass

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=150)
    stuck = sum(t.is_alive() for t in threads)
    assert stuck == 0, f"{stuck} client threads still running"
    return [e for e in errors if e is not None]


def _queries(i, conn):
    cur = conn.cursor()
    for q in range(QUERIES):
        tag = f"client-{i}-query-{q}"
        cur.execute("SELECT %s::int * 1000 + %s::int, md5(%s), repeat(%s, %s)",
                    (i, q, tag, "ab", i % 50))
        row = cur.fetchone()
        expected = (i * 1000 + q, hashlib.md5(tag.encode()).hexdigest(), "ab" * (i % 50))
        assert row == expected, f"client {i} query {q}: got {row}, expected {expected}"
        conn.commit()


def test_200_concurrent_clients_passthrough(env):
    px = env.proxy(workers=2)
    baseline = env.pg.backend_count(user=harness.DEFAULT_USER)
    peak = []

    def count_backends():
        # the barrier's action: every client is connected and waits for it
        peak.append(env.pg.backend_count(user=harness.DEFAULT_USER))

    errors = _run_clients(CLIENTS, lambda i: px.connect(), _queries, all_connected=count_backends)
    assert not errors, f"{len(errors)} clients failed, e.g. {errors[:3]}"
    assert peak and peak[0] >= baseline + CLIENTS, f"only {peak} backends while all connected"
    px.assert_alive()
    harness.wait_until(lambda: env.pg.backend_count(user=harness.DEFAULT_USER) <= baseline,
                       timeout=15, message="server connections to close after the clients left")


def test_200_clients_transaction_pooling(env):
    auth = env.userlist({harness.DEFAULT_USER: harness.DEFAULT_PASSWORD})
    px = env.proxy(config={"auth_mode": "userlist", "auth_file": auth,
                           "server_user": harness.DEFAULT_USER,
                           "server_password": harness.DEFAULT_PASSWORD,
                           "pool_mode": "transaction", "pool_size": 10,
                           "query_wait_timeout": 60})

    def body(i, conn):
        _queries(i, conn)
        cur = conn.cursor()
        cur.execute("BEGIN")
        cur.execute("SELECT %s::int", (i,))
        assert cur.fetchone() == (i,)
        cur.execute("COMMIT")

    errors = _run_clients(CLIENTS, lambda i: px.connect(), body)
    assert not errors, f"{len(errors)} clients failed, e.g. {errors[:3]}"
    servers = env.pg.backend_count(user=harness.DEFAULT_USER, db=harness.DEFAULT_DB)
    assert servers <= 10, f"{servers} server connections with pool_size=10"


def test_pipelined_simple_queries(env):
    """100 Query messages in one write; answers arrive complete and in order."""
    px = env.proxy()
    with px.raw() as raw:
        raw.login()
        batch = b"".join(harness.message(b"Q", f"SELECT {i}, repeat('z', {i * 37})\x00".encode())
                         for i in range(100))
        raw.send(batch)
        for i in range(100):
            assert raw.read_result() == [(str(i), "z" * (i * 37))], f"result {i}"


def test_pipelined_extended_protocol(env):
    """Parse/Bind/Execute x 50 then one Sync, sent byte by byte in odd chunks
    to exercise message reassembly in the proxy."""
    px = env.proxy()
    with px.raw() as raw:
        raw.login()
        msgs = [harness.message(b"P", b"s1\x00SELECT $1::int * 3\x00\x00\x00")]
        for i in range(50):
            val = str(i).encode()
            msgs.append(harness.message(
                b"B", b"\x00s1\x00" + struct.pack("!hh", 0, 1) + struct.pack("!i", len(val)) + val
                + struct.pack("!h", 0)))
            msgs.append(harness.message(b"E", b"\x00" + struct.pack("!i", 0)))
        msgs.append(harness.message(b"S"))
        data = b"".join(msgs)
        pos, step = 0, 1
        while pos < len(data):
            raw.send(data[pos:pos + step])
            pos += step
            step = step % 13 + 1
            if pos % 7 == 0:
                time.sleep(0.001)
        seen = []
        while True:
            mtype, body = raw.read_message()
            if mtype == b"D":
                (ln,) = struct.unpack("!i", body[2:6])
                seen.append(int(body[6:6 + ln]))
            elif mtype == b"E":
                raise AssertionError(harness.parse_error_fields(body))
            elif mtype == b"Z":
                break
        assert seen == [i * 3 for i in range(50)], seen
        assert raw.query("SELECT 'after pipeline'") == [("after pipeline",)]


def test_connection_churn(env):
    """600 short sessions (4 threads): nothing leaks, every one works."""
    px = env.proxy(workers=2)
    baseline = env.pg.backend_count(user=harness.DEFAULT_USER)
    errors = []

    def worker(w):
        for k in range(150):
            try:
                if k % 3 == 0:
                    with px.raw() as raw:  # abrupt close without Terminate
                        raw.login()
                        assert raw.query(f"SELECT {w * 1000 + k}") == [(str(w * 1000 + k),)]
                else:
                    conn = px.connect()
                    cur = conn.cursor()
                    cur.execute("SELECT %s", (w * 1000 + k,))
                    assert cur.fetchone() == (w * 1000 + k,)
                    conn.close()
            except Exception as e:
                errors.append(f"worker {w} session {k}: {e!r}")
                return

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=150)
    assert not errors, errors[:3]
    px.assert_alive()
    harness.wait_until(lambda: env.pg.backend_count(user=harness.DEFAULT_USER) <= baseline,
                       timeout=15, message="server connections to close")


def _extended_batch(statements):
    """Parse/Bind/Execute for each SQL text (unnamed statement), then one Sync."""
    out = []
    for sql in statements:
        out.append(harness.message(b"P", b"\x00" + sql.encode() + b"\x00\x00\x00"))
        out.append(harness.message(b"B", b"\x00\x00" + struct.pack("!hhh", 0, 0, 0)))
        out.append(harness.message(b"E", b"\x00" + struct.pack("!i", 0)))
    out.append(harness.message(b"S"))
    return b"".join(out)


def read_batch(raw):
    """Messages up to ReadyForQuery: list of ('row', value) / ('error', sqlstate)
    / ('complete', tag); plus the transaction status byte."""
    events = []
    while True:
        mtype, body = raw.read_message()
        if mtype == b"D":
            (ln,) = struct.unpack("!i", body[2:6])
            events.append(("row", body[6:6 + ln].decode()))
        elif mtype == b"E":
            events.append(("error", harness.parse_error_fields(body).get("C")))
        elif mtype == b"C":
            events.append(("complete", body.rstrip(b"\x00").decode()))
        elif mtype == b"Z":
            return events, body
        # ParseComplete, BindComplete etc. are not interesting here


def test_pipeline_error_mid_batch(env):
    """An error in the middle of an extended-protocol pipeline: the rest up to
    Sync is skipped by PostgreSQL, the session then continues normally."""
    px = env.proxy()
    with px.raw() as raw:
        raw.login()
        raw.send(_extended_batch(["SELECT 'one'", "SELECT 1/0", "SELECT 'three'"]) +
                 _extended_batch(["SELECT 'four'"]))
        events, status = read_batch(raw)
        assert events == [("row", "one"), ("complete", "SELECT 1"), ("error", "22012")], events
        assert status == b"I", status
        events, status = read_batch(raw)
        assert events == [("row", "four"), ("complete", "SELECT 1")], events
        assert raw.query("SELECT 'simple after'") == [("simple after",)]


def test_slow_reader_backpressure(env):
    """A client that stops reading a ~300 MB result: the proxy must not buffer
    it all (its memory stays bounded), and the result is complete afterwards."""
    px = env.proxy(workers=1)

    def rss_kb():
        with open(f"/proc/{px.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    with px.raw(timeout=60) as raw:
        raw.login()
        assert raw.query("SELECT 1") == [("1",)]
        before = rss_kb()
        raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        raw.send(harness.message(
            b"Q", b"SELECT g, repeat('s', 1000) FROM generate_series(1, 300000) g\x00"))
        time.sleep(3)  # not reading: PostgreSQL keeps producing
        grown_mb = (rss_kb() - before) / 1024
        assert grown_mb < 100, f"proxy grew by {grown_mb:.0f} MB while the client did not read"
        # now drain: everything arrives, ending with CommandComplete + ReadyForQuery
        raw.sock.settimeout(60)
        tail = bytearray()
        total = 0
        done = b"C\x00\x00\x00\x12SELECT 300000\x00Z\x00\x00\x00\x05I"
        while True:
            chunk = raw.sock.recv(1 << 20)
            assert chunk, "connection closed before the result was complete"
            total += len(chunk)
            tail = (tail + chunk)[-64:]
            if tail.endswith(done):
                break
        assert total > 300_000 * 1000
        raw._buf = b""
        assert raw.query("SELECT 'after big result'") == [("after big result",)]
