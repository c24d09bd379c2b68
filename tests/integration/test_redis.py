"""Several proxies as one through Redis (redis = redis://…): a CancelRequest
that reaches a proxy other than the one holding the session is forwarded to
it; SHOW PEERS lists the live proxies; Redis killed, restarted or stopped
(SIGSTOP) mid-test costs the proxies nothing but the forwarding, with one
warning per outage, and they recover on their own."""

import signal
import subprocess
import threading
import time

import harness


class Redis:
    """redis-server on loopback, no persistence."""

    def __init__(self, workdir, port=None, extra=()):
        self.port = port or harness.free_port()
        self.workdir = workdir
        self.proc = None
        self.extra = list(extra)
        self.start()

    def start(self):
        self.log = open(self.workdir / f"redis-{self.port}.log", "ab")
        self.proc = subprocess.Popen(["/usr/bin/redis-server", "--port", str(self.port),
                                      "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                      *self.extra],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        harness.wait_until(self._pong, timeout=10, message="redis-server to answer")

    def _auth(self):
        pw = [b for a, b in zip(self.extra, self.extra[1:]) if a == "--requirepass"]
        return ["-a", pw[0], "--no-auth-warning"] if pw else []

    def _pong(self):
        r = subprocess.run(["redis-cli", "-p", str(self.port), *self._auth(), "PING"],
                           capture_output=True, text=True)
        return r.stdout.strip() == "PONG"

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), *self._auth(), *args],
                              capture_output=True, text=True, timeout=5).stdout.strip()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def close(self):
        self.kill()


def _group(env, redis, n=2):
    return [env.proxy(workers=2, args={"redis": f"redis://127.0.0.1:{redis.port}"})
            for _ in range(n)]


def _sleep_on(env, px, seconds):
    """A session on px running pg_sleep(seconds) in a thread: (raw, thread,
    result); raw.backend_key is the proxy's cancel key of the session."""
    raw = px.raw(timeout=seconds + 10)
    raw.login()
    result = {}

    def run():
        t0 = time.monotonic()
        try:
            raw.query(f"SELECT pg_sleep({seconds})")
            result["ok"] = True
        except harness.PgError as e:
            result["sqlstate"] = e.sqlstate
        except Exception as e:  # noqa: BLE001 - reported to the test
            result["error"] = e
        result["elapsed"] = time.monotonic() - t0

    t = threading.Thread(target=run, daemon=True)
    t.start()
    harness.wait_until(
        lambda: env.pg.sql("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                           f"AND query = 'SELECT pg_sleep({seconds})'") != "0",
        timeout=10, message="pg_sleep to run")
    return raw, t, result


def _cancel_via(px, raw):
    pid, key = raw.backend_key
    t0 = time.monotonic()
    harness.send_cancel(px.port, pid, key)
    return time.monotonic() - t0


def _cancel_routed(env, redis, a, b, message):
    """A pg_sleep on a, cancelled by a CancelRequest sent to b: canceled."""
    raw, t, result = _sleep_on(env, a, 20)
    env.closing(raw)
    harness.wait_until(lambda: _registered(redis, raw), timeout=5, message=message)
    time.sleep(0.3)
    _cancel_via(b, raw)
    t.join(timeout=10)
    assert result.get("sqlstate") == "57014", result


def _registered(redis, raw):
    pid, key = raw.backend_key
    return redis.cli("GET", f"epoch:cancel:{pid & 0xffffffff}:{key & 0xffffffff}") != ""


def test_cancel_through_another_proxy_of_the_group(env):
    redis = env.closing(Redis(env.tmpdir))
    a, b = _group(env, redis)
    raw, t, result = _sleep_on(env, a, 20)
    env.closing(raw)
    harness.wait_until(lambda: _registered(redis, raw), timeout=5,
                       message="the session's cancel key in Redis")
    time.sleep(0.3)
    took = _cancel_via(b, raw)
    t.join(timeout=10)
    assert not t.is_alive(), "pg_sleep still running 10 s after the cancel through B"
    assert result.get("sqlstate") == "57014", result
    assert took < 3, took
    # the key goes with the session
    pid, key = raw.backend_key
    raw.close()
    harness.wait_until(lambda: redis.cli("EXISTS", f"epoch:cancel:{pid & 0xffffffff}:{key & 0xffffffff}") == "0",
                       timeout=5, message="the cancel key to go with the session")
    # an unknown key: nobody's, answered and closed, nothing cancelled
    assert _cancel_via(b, type("K", (), {"backend_key": (1, 2)})()) < 3


def test_show_peers_lists_the_live_proxies(env):
    redis = env.closing(Redis(env.tmpdir))
    a, b = _group(env, redis)
    env.pg.sql("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'peers_su') "
               "THEN CREATE ROLE peers_su LOGIN SUPERUSER PASSWORD 'pw'; END IF; END $$;")
    con = env.closing(a.connect(user="peers_su", password="pw", dbname="epoch", autocommit=True))

    def peers():
        cur = con.cursor()
        cur.execute("SHOW PEERS")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    rows = harness.wait_until(lambda: (lambda p: p if len(p) == 2 else None)(peers()), timeout=10,
                              message="both proxies in SHOW PEERS")
    assert sorted(r["port"] for r in rows) == sorted([a.port, b.port]), rows
    assert [r["self"] for r in rows if r["port"] == a.port] == ["yes"]
    assert all(r["host"] == "127.0.0.1" and r["version"] for r in rows)


def test_redis_away_killed_or_stopped_and_back(env):
    redis = env.closing(Redis(env.tmpdir))
    a, b = _group(env, redis)
    conn = env.closing(a.connect(autocommit=True))
    cur = conn.cursor()
    # killed: queries and logins go on; a cancel through B cannot be routed
    redis.kill()
    for _ in range(5):
        cur.execute("SELECT 1")
        env.closing(b.connect(autocommit=True)).cursor().execute("SELECT 1")
    raw, t, result = _sleep_on(env, a, 3)
    env.closing(raw)
    time.sleep(0.3)
    assert _cancel_via(b, raw) < 3
    t.join(timeout=10)
    assert result.get("ok"), result          # not cancelled: nobody could route it
    time.sleep(2.5)                          # a few reconnection attempts
    for px in (a, b):
        assert px.log_text().count("Redis unreachable") == 1, px.log_tail()
    # back on the same port: the proxies reconnect and re-register their sessions
    redis.start()
    harness.wait_until(lambda: "Redis is back" in a.log_text() and "Redis is back" in b.log_text(),
                       timeout=10, message="both proxies to reconnect")
    _cancel_routed(env, redis, a, b, "the cancel key registered again")
    # stopped (SIGSTOP): nothing waits for it; the forwarding times out
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        for _ in range(20):
            cur.execute("SELECT 1")
            env.closing(a.connect(autocommit=True)).cursor().execute("SELECT 1")
        assert time.monotonic() - t0 < 5, "queries and logins waited for a stopped Redis"
        raw, t, result = _sleep_on(env, a, 3)
        env.closing(raw)
        assert _cancel_via(b, raw) < 4   # the lookup's timeout, not a hang
        t.join(timeout=10)
        assert result.get("ok"), result
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    harness.wait_until(lambda: _cancel_routable(env, redis, a, b), timeout=15,
                       message="the group to work again after SIGCONT")


def _cancel_routable(env, redis, a, b):
    raw, t, result = _sleep_on(env, a, 10)
    try:
        if not _registered(redis, raw):
            return False
        _cancel_via(b, raw)
        t.join(timeout=10)
        return result.get("sqlstate") == "57014"
    finally:
        raw.close()


def test_one_sweeper_per_group(env):
    """sweep_interval: expired branches go without anyone calling
    epoch.sweep(), swept by one proxy of the group (the Redis lock); without
    Redis each proxy sweeps, one at a time per database (advisory lock)."""
    redis = env.closing(Redis(env.tmpdir))
    db = "redis_sweep"
    env.pg.create_database(db)
    setup = env.closing(env.proxy().connect(dbname=db, autocommit=True))
    cur = setup.cursor()
    cur.execute("CREATE TABLE t (id int PRIMARY KEY)")
    cur.execute("SELECT epoch.track('t')")
    sweep = {"sweep_interval": "1", "sweep_databases": f"{db}, nosuchdb",
             "server_user": harness.DEFAULT_USER, "server_password": harness.DEFAULT_PASSWORD}
    pxs = [env.proxy(config=sweep, args={"redis": f"redis://127.0.0.1:{redis.port}"})
           for _ in range(2)]
    for round_ in range(2):
        cur.execute(f"SELECT epoch.branch_create('short{round_}', ttl => '1 millisecond')")
        harness.wait_until(
            lambda: not _rows(cur, f"SELECT 1 FROM epoch.branches WHERE name = 'short{round_}'"),
            timeout=10, message="the expired branch to be swept")
    swept = [px.log_text().count(f'sweeper: database "{db}": ') for px in pxs]
    assert min(swept) == 0 and max(swept) >= 2, swept   # one proxy of the two, every round
    # a database that does not exist: a warning, and the next rounds go on
    assert any('sweeper: database "nosuchdb"' in px.log_text() for px in pxs)
    assert redis.cli("EXISTS", "epoch:sweeper") == "1"
    # without Redis: still swept
    redis.kill()
    cur.execute("SELECT epoch.branch_create('short_alone', ttl => '1 millisecond')")
    harness.wait_until(
        lambda: not _rows(cur, "SELECT 1 FROM epoch.branches WHERE name = 'short_alone'"),
        timeout=10, message="the expired branch to be swept without Redis")


def _rows(cur, sql):
    cur.execute(sql)
    return cur.fetchall()


def _tls_files(d):
    """A CA and a certificate for localhost / 127.0.0.1 signed by it."""
    def openssl(*args):
        harness.run(["openssl", *args])
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", d / "ca.key", "-out", d / "ca.crt", "-days", "2", "-subj", "/CN=epoch redis ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", d / "redis.key", "-out", d / "redis.csr", "-subj", "/CN=localhost")
    (d / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", d / "redis.csr", "-CA", d / "ca.crt", "-CAkey", d / "ca.key",
            "-CAcreateserial", "-out", d / "redis.crt", "-days", "2", "-sha256", "-extfile", d / "ext")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", d / "other.key", "-out", d / "other.crt", "-days", "2", "-subj", "/CN=other")


class TlsRedis(Redis):
    def __init__(self, workdir):
        self.dir = workdir / "redis-tls"
        self.dir.mkdir()
        _tls_files(self.dir)
        super().__init__(workdir)

    def start(self):
        self.log = open(self.workdir / f"redis-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            ["/usr/bin/redis-server", "--port", "0", "--tls-port", str(self.port), "--bind",
             "127.0.0.1", "--save", "", "--appendonly", "no",
             "--tls-cert-file", str(self.dir / "redis.crt"),
             "--tls-key-file", str(self.dir / "redis.key"),
             "--tls-ca-cert-file", str(self.dir / "ca.crt"), "--tls-auth-clients", "no"],
            stdout=self.log, stderr=subprocess.STDOUT)
        harness.wait_until(self._pong, timeout=10, message="redis-server (TLS) to answer")

    def cli(self, *args):
        return subprocess.run(["redis-cli", "--tls", "--cacert", str(self.dir / "ca.crt"),
                               "-h", "localhost", "-p", str(self.port), *args],
                              capture_output=True, text=True, timeout=5).stdout.strip()

    def _pong(self):
        return self.cli("PING") == "PONG"


def test_tls_to_redis(env):
    """rediss://: the proxies talk to Redis over TLS, the certificate
    checked against redis_tls_ca and the host's name; a certificate from
    another CA is refused (and the group works alone, as without Redis)."""
    redis = env.closing(TlsRedis(env.tmpdir))
    url = f"rediss://localhost:{redis.port}"
    a, b = [env.proxy(workers=2, args={"redis": url, "redis_tls_ca": str(redis.dir / "ca.crt")})
            for _ in range(2)]
    _cancel_routed(env, redis, a, b, "the cancel key in Redis over TLS")
    # the wrong CA: refused, said once, and the proxy serves its clients
    c = env.proxy(args={"redis": url, "redis_tls_ca": str(redis.dir / "other.crt")})
    harness.wait_until(lambda: "Redis unreachable" in c.log_text(), timeout=10,
                       message="the untrusted certificate to be refused")
    assert "certificate verify failed" in c.log_text(), c.log_tail()
    conn = env.closing(c.connect(autocommit=True))
    conn.cursor().execute("SELECT 1")


def test_redis_that_wants_a_password(env):
    """A Redis with requirepass: a proxy without the password is told so
    (one warning) and works alone; one with it registers its sessions; the
    admin console never shows the password."""
    redis = env.closing(Redis(env.tmpdir, extra=["--requirepass", "s3cret"]))
    without = env.proxy(args={"redis": f"redis://127.0.0.1:{redis.port}"})
    harness.wait_until(lambda: "Redis unreachable" in without.log_text(), timeout=10,
                       message="the refused handshake to be reported")
    assert "NOAUTH" in without.log_text() or "auth" in without.log_text().lower(), \
        without.log_tail()
    env.pg.sql("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'peers_su') "
               "THEN CREATE ROLE peers_su LOGIN SUPERUSER PASSWORD 'pw'; END IF; END $$;")
    withpw = env.proxy(args={"redis": f"redis://:s3cret@127.0.0.1:{redis.port}"})
    raw = env.closing(withpw.raw())
    raw.login()
    harness.wait_until(lambda: _registered(redis, raw), timeout=10,
                       message="the session's key registered with AUTH")
    con = env.closing(withpw.connect(user="peers_su", password="pw", dbname="epoch",
                                     autocommit=True))
    cur = con.cursor()
    cur.execute("SHOW CONFIG")
    shown = {r[0]: r[1] for r in cur.fetchall()}
    assert "s3cret" not in shown["redis"] and shown["redis"].endswith(f"@127.0.0.1:{redis.port}"), \
        shown["redis"]
    assert without.log_text().count("Redis unreachable") == 1
