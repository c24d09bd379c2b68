"""The HTTP listener (http_listen, --http): /health, /ready and /metrics
(docs/operations.md). The metrics are checked against what the test did
through the proxy (their increments), and the whole page against Prometheus's
text format; bad requests get 4xx and leave the proxy's clients alone."""

import re
import signal
import socket
import time
import urllib.error
import urllib.request

import psycopg2

import harness


def _get(port, path, method="GET"):
    """(status, body) of an HTTP request to the proxy's listener."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _raw(port, data):
    """The status line the listener answers raw bytes with."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(data)
        got = b""
        while b"\r\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        return got.split(b"\r\n", 1)[0].decode()
    finally:
        s.close()


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)'
                    r'(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
                    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})?'
                    r' ([-+]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|NaN|\+Inf|-Inf))$')


def _parse(text):
    """{(name, labels): value} of a /metrics page, checking the text format:
    every sample's family has a TYPE before it, counters end in _total,
    histogram buckets are cumulative and end with +Inf = _count."""
    assert text.endswith("\n"), "the page ends with a newline"
    types, out = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram"), line
            assert name not in types, f"{name} declared twice"
            types[name] = kind
            if kind == "counter":
                assert name.endswith("_total"), name
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, f"{name} has no TYPE"
        out[(name, labels)] = value
    for fam, kind in types.items():
        if kind != "histogram":
            continue
        buckets = [(k[1], v) for k, v in out.items() if k[0] == fam + "_bucket"]
        assert buckets and buckets[-1][0] == '{le="+Inf"}', fam
        values = [v for _, v in buckets]
        assert values == sorted(values), f"{fam} buckets are not cumulative"
        assert values[-1] == out[(fam + "_count", "")], fam
    return out


def _http_proxy(env, **kw):
    port = harness.free_port()
    px = env.proxy(args={"http": f"127.0.0.1:{port}"}, **kw)
    return px, port


def test_health_ready_and_metrics_follow_the_traffic(env):
    db = "http_metrics"
    env.pg.create_database(db)
    px, port = _http_proxy(env, workers=2)
    assert _get(port, "/health") == (200, "ok\n")
    assert _get(port, "/ready") == (200, "ready\n")
    status, page = _get(port, "/metrics")
    assert status == 200
    before = _parse(page)
    c = env.closing(px.connect(dbname=db, autocommit=True))
    cur = c.cursor()
    cur.execute("CREATE TABLE t (id int PRIMARY KEY, v int)")
    cur.execute("INSERT INTO t SELECT g, g FROM generate_series(1, 10) g")
    cur.execute("SELECT epoch.track('t'), epoch.branch_create('b')")
    for _ in range(3):
        cur.execute("SELECT count(*) FROM t")
    try:
        cur.execute("SELECT 1 / 0")
    except psycopg2.Error as e:
        assert e.pgcode == "22012"
    b = env.closing(px.connect(dbname=f"{db}@b", autocommit=True))
    bc = b.cursor()
    bc.execute("UPDATE t SET v = 0 WHERE id = 1")
    bc.execute("SELECT v FROM t WHERE id = 1")
    assert bc.fetchone() == (0,)
    bc.execute("BEGIN")
    bc.execute("SELECT v FROM t WHERE id = 2")
    bc.execute("SELECT v FROM t WHERE id = 3")
    bc.execute("COMMIT")
    mid = _parse(_get(port, "/metrics")[1])
    bc.execute("SELECT epoch.commit('from the metrics test')")
    cur.execute("SELECT status FROM epoch.merge('b', \"into\" => 'main')")
    merged = cur.fetchone()
    assert merged[0] in ("merged", "fast_forward"), merged
    after = _parse(_get(port, "/metrics")[1])
    assert after[("epoch_commit_duration_seconds_count", "")] - \
        mid.get(("epoch_commit_duration_seconds_count", ""), 0) == 1
    assert after[("epoch_merge_duration_seconds_count", "")] - \
        mid.get(("epoch_merge_duration_seconds_count", ""), 0) == 1
    assert after[("epoch_redis_connected_workers", "")] == 0   # no Redis here
    after = {k: v for k, v in after.items()}
    for k in list(after):   # what follows compares with the counts before the commit and merge
        if k[0] in ("epoch_queries_total", "epoch_transactions_total"):
            after[k] = mid.get(k, 0)

    def grew(name, labels=""):
        return after.get((name, labels), 0) - before.get((name, labels), 0)

    assert grew("epoch_queries_total", '{branch="main"}') >= 6
    # UPDATE, SELECT, BEGIN, SELECT, SELECT, COMMIT
    assert grew("epoch_queries_total", '{branch="b"}') == 6, {k: v for k, v in after.items() if k[0].startswith(("epoch_queries", "epoch_trans"))}
    assert grew("epoch_transactions_total", '{branch="b"}') == 3
    assert grew("epoch_errors_total", '{class="22"}') == 1
    assert grew("epoch_client_connections_accepted_total") == 2
    assert after[("epoch_client_connections", '{state="active"}')] == 2
    assert grew("epoch_client_received_bytes_total") > 100
    assert grew("epoch_client_sent_bytes_total") > 100
    assert grew("epoch_server_received_bytes_total") >= grew("epoch_client_sent_bytes_total") / 2
    assert grew("epoch_query_duration_seconds_count") >= 11
    assert grew("epoch_rewrite_cache_misses_total") >= 1
    assert grew("epoch_rewrite_duration_seconds_count") >= 5
    assert grew("epoch_http_requests_total") == 2  # the first two scrapes (counted once answered)
    # the connections leave: the gauges follow
    b.close()
    c.close()
    def clients_left():
        now = _parse(_get(port, "/metrics")[1])
        return sum(v for (n, _), v in now.items() if n == "epoch_client_connections")

    # every state, closing included, goes back to 0 once the sockets are closed
    harness.wait_until(lambda: clients_left() == 0, timeout=5,
                       message="the client connection gauges to go back to 0")


def test_bad_http_requests_get_4xx_and_clients_go_on(env):
    px, port = _http_proxy(env)
    c = env.closing(px.connect(autocommit=True))
    cur = c.cursor()
    cur.execute("SELECT 1")
    assert _get(port, "/nope")[0] == 404
    assert _get(port, "/metrics", method="POST")[0] == 405
    assert _raw(port, b"GARBAGE\r\n\r\n") == "HTTP/1.1 400 Bad Request"
    assert _raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n") == \
        "HTTP/1.1 400 Bad Request"
    assert _raw(port, b"GET /" + b"a" * 400 + b" HTTP/1.1\r\n\r\n") == "HTTP/1.1 414 URI Too Long"
    assert _raw(port, b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n") == \
        "HTTP/1.1 431 Request Header Fields Too Large"
    # HEAD: the headers, no body
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    s.close()
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"\r\n\r\n"), got
    # a request in pieces is answered once whole
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    for piece in (b"GET /hea", b"lth HTTP/1.1\r\nHo", b"st: x\r\n", b"\r\n"):
        s.sendall(piece)
        time.sleep(0.05)
    assert s.recv(4096).startswith(b"HTTP/1.1 200 OK")
    s.close()
    cur.execute("SELECT 2")
    assert cur.fetchone() == (2,)


def test_ready_says_when_postgresql_is_away_or_the_proxy_drains(env):
    # PostgreSQL away: alive, not ready
    dead = harness.free_port()
    px, port = _http_proxy(env, backend=f"host=127.0.0.1 port={dead}")
    assert _get(port, "/health") == (200, "ok\n")
    status, body = _get(port, "/ready")
    assert status == 503 and "PostgreSQL" in body, body
    # draining (SIGTERM with a transaction still open): not ready, still alive
    port = harness.free_port()
    px = env.proxy(config={"shutdown_timeout": 30}, args={"http": f"127.0.0.1:{port}"})
    assert _get(port, "/ready")[0] == 200
    c = env.closing(px.connect())
    c.cursor().execute("SELECT 1")  # opens a transaction
    px.send_signal(signal.SIGTERM)
    status = harness.wait_until(lambda: (s := _get(port, "/ready"))[0] == 503 and s, timeout=5,
                                message="/ready to say 503 after SIGTERM")
    assert status == (503, "not ready: shutting down\n")
    assert _get(port, "/health") == (200, "ok\n")
    c.commit()
    c.close()
    assert px.wait(timeout=10) == 0


def test_http_port_in_use_is_refused_at_start(env):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        port = taken.getsockname()[1]
        px = env.proxy(args={"http": f"127.0.0.1:{port}"}, start=False)
        px.start(wait_ready=False)
        rc = px.wait(timeout=10)
        px.exit_observed = True
        assert rc not in (0, None), f"proxy exited with {rc}"
        assert f"cannot listen on 127.0.0.1:{port}" in px.log_text(), px.log_tail()
    finally:
        taken.close()
    px = env.proxy(start=False, args={"http": "nowhere:1"})
    px.start(wait_ready=False)
    assert px.wait(timeout=10) not in (0, None)
    px.exit_observed = True
    assert "http_listen" in px.log_text(), px.log_tail()
