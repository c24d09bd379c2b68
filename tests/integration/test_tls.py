"""TLS between clients and the proxy (tls_cert_file / tls_key_file), and
between the proxy and PostgreSQL (backend sslmode, sslrootcert, sslcert/sslkey).

The module has its own cluster; setup_module gives it a test CA, a server
certificate for localhost/127.0.0.1, ssl = on, and pg_hba rules for a role that
may only log in over TLS and one that logs in with a client certificate."""

import hashlib
import io
import os
import re
import socket
import struct
import subprocess
import threading

import psycopg2

import harness

# own cluster (setup_module turns ssl on)
PG_SETTINGS = {}

TLS_ONLY_USER = "tls_only"  # hostnossl ... reject: TLS or nothing
TLS_ONLY_PW = "tls-only-pw"
CERT_USER = "cert_user"  # hostssl ... cert: the proxy's client certificate logs in
CERTS = {}  # name -> path, filled by setup_module


def _make_cert(tmpdir):
    cert = tmpdir / "server.crt"
    key = tmpdir / "server.key"
    harness.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                 "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                 "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
    os.chmod(key, 0o600)
    return cert, key


def _tls_proxy(env, **extra):
    cert, key = _make_cert(env.tmpdir)
    px = env.proxy(config={"tls_cert_file": cert, "tls_key_file": key, **extra})
    return px, cert


def test_sslmode_require_uses_tls(env):
    px, _ = _tls_proxy(env)
    conn = env.closing(px.connect(sslmode="require"))
    assert conn.info.ssl_in_use, "sslmode=require connected without TLS"
    assert conn.info.ssl_attribute("protocol") in ("TLSv1.2", "TLSv1.3"), \
        conn.info.ssl_attribute("protocol")
    cur = conn.cursor()
    cur.execute("SELECT current_user, 40 + 2")
    assert cur.fetchone() == (harness.DEFAULT_USER, 42)
    # the backend sslmode defaults to disable: the proxy -> PostgreSQL leg is
    # plain TCP even though this cluster offers TLS
    cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert cur.fetchone()[0] is False


def test_verify_full_with_our_ca(env):
    """The certificate the proxy presents is ours (verify-full against it)."""
    px, cert = _tls_proxy(env)
    conn = env.closing(px.connect(sslmode="verify-full", sslrootcert=str(cert)))
    assert conn.info.ssl_in_use
    cur = conn.cursor()
    cur.execute("SELECT 1")
    assert cur.fetchone() == (1,)


def test_psql_conninfo_reports_ssl(env):
    px, _ = _tls_proxy(env)
    cp = px.psql("-c", "\\conninfo", conninfo_extra="sslmode=require")
    assert cp.returncode == 0, cp.stderr
    assert "SSL connection (protocol: TLSv1." in cp.stdout, cp.stdout


def test_large_transfers_over_tls(env):
    """Results and COPY data much larger than a TLS record."""
    px, _ = _tls_proxy(env)
    conn = env.closing(px.connect(sslmode="require"))
    cur = conn.cursor()
    cur.execute("SELECT repeat('abcdefghij', 500000)")
    assert cur.fetchone()[0] == "abcdefghij" * 500000
    big = "x" * 3_000_000
    cur.execute("SELECT length(%s), md5(%s)", (big, big))
    assert cur.fetchone() == (3_000_000, hashlib.md5(big.encode()).hexdigest())
    cur.execute("SELECT g, md5(g::text) FROM generate_series(1, 50000) g")
    rows = cur.fetchall()
    assert len(rows) == 50000 and rows[-1][0] == 50000


def test_sslmode_disable_still_works_with_tls_configured(env):
    px, _ = _tls_proxy(env)
    conn = env.closing(px.connect(sslmode="disable"))
    assert not conn.info.ssl_in_use
    cur = conn.cursor()
    cur.execute("SELECT 1")
    assert cur.fetchone() == (1,)


def test_no_tls_configured(env):
    """Without a certificate the proxy answers SSLRequest with 'N':
    sslmode=require fails with libpq's clear error, prefer falls back to plain."""
    px = env.proxy()
    try:
        px.connect(sslmode="require")
        raise AssertionError("sslmode=require succeeded against a proxy without TLS")
    except psycopg2.OperationalError as e:
        assert "server does not support SSL, but SSL was required" in str(e), str(e)
    conn = env.closing(px.connect(sslmode="prefer"))
    assert not conn.info.ssl_in_use
    cur = conn.cursor()
    cur.execute("SELECT 1")
    assert cur.fetchone() == (1,)
    # raw check of the answer byte
    with px.raw() as raw:
        raw.send(struct.pack("!ii", 8, harness.SSL_REQUEST_CODE))
        assert raw.read_byte() == b"N"
        raw.login()
        assert raw.query("SELECT 7") == [("7",)]
    px.assert_alive()


def test_tls_handshake_garbage(env):
    """A client that asks for TLS and then sends garbage instead of a
    ClientHello is dropped; the proxy keeps serving TLS clients."""
    px, _ = _tls_proxy(env)
    with px.raw() as raw:
        raw.send(struct.pack("!ii", 8, harness.SSL_REQUEST_CODE))
        assert raw.read_byte() == b"S"
        raw.send(b"\x16\x03\x01\x00\x05hello, this is not TLS at all" * 10)
        raw.expect_closed(timeout=5)
    # openssl s_client sees the proxy's certificate
    cp = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{px.port}",
                         "-starttls", "postgres", "-brief"], input="", capture_output=True,
                        text=True, timeout=20)
    assert "CN = localhost" in cp.stderr + cp.stdout, cp.stderr + cp.stdout
    px.assert_alive()
    conn = env.closing(px.connect(sslmode="require"))
    cur = conn.cursor()
    cur.execute("SELECT 1")
    assert cur.fetchone() == (1,)


# ---------------------------------------------------------------------------
# TLS from the proxy to PostgreSQL


def _openssl(*args):
    harness.run(["openssl", *args])


def _new_key_and_csr(d, name, cn):
    key, csr = d / f"{name}.key", d / f"{name}.csr"
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={cn}")
    os.chmod(key, 0o600)
    return key, csr


def _new_ca(d, name):
    key, crt = d / f"{name}.key", d / f"{name}.crt"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", f"/CN=epoch {name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return key, crt


def _sign(d, name, csr, ca_key, ca_crt, ext):
    crt, extfile = d / f"{name}.crt", d / f"{name}.ext"
    extfile.write_text(ext + "\n")
    _openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
             "-out", crt, "-days", "2", "-sha256", "-extfile", extfile)
    return crt


def setup_module(pg):
    d = pg.dir / "tls"
    d.mkdir()
    ca_key, ca_crt = _new_ca(d, "ca")
    _, wrong_ca = _new_ca(d, "wrong-ca")
    srv_key, csr = _new_key_and_csr(d, "server", "localhost")
    srv_crt = _sign(d, "server", csr, ca_key, ca_crt,
                    "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                    "extendedKeyUsage=serverAuth")
    cli_key, csr = _new_key_and_csr(d, "client", CERT_USER)
    cli_crt = _sign(d, "client", csr, ca_key, ca_crt, "extendedKeyUsage=clientAuth")
    CERTS.update(ca=str(ca_crt), wrong_ca=str(wrong_ca), client_crt=str(cli_crt),
                 client_key=str(cli_key))
    if harness.IS_ROOT:  # PostgreSQL runs as postgres and wants its key private
        uid, gid = harness._postgres_ids()
        for f in [d, *d.iterdir()]:
            os.chown(f, uid, gid)
    pg.create_role(TLS_ONLY_USER, TLS_ONLY_PW)
    pg.create_role(CERT_USER)
    hba = pg.data / "pg_hba.conf"
    lines = hba.read_text().splitlines(keepends=True)
    lines[1:1] = [f"hostnossl all {TLS_ONLY_USER} 127.0.0.1/32 reject\n",
                  f"hostssl all {CERT_USER} 127.0.0.1/32 cert\n"]
    with open(hba, "w") as f:  # truncate: the file stays the cluster user's
        f.write("".join(lines))
    pg.sql(f"ALTER SYSTEM SET ssl_cert_file = {harness.quote_literal(srv_crt)};"
           f"ALTER SYSTEM SET ssl_key_file = {harness.quote_literal(srv_key)};"
           f"ALTER SYSTEM SET ssl_ca_file = {harness.quote_literal(ca_crt)};"
           "ALTER SYSTEM SET ssl = on;"
           "SELECT pg_reload_conf();")

    def tls_up():
        try:
            pg.connect(sslmode="require", connect_timeout=2).close()
            return True
        except psycopg2.OperationalError:
            return False
    harness.wait_until(tls_up, timeout=15, message="PostgreSQL to accept TLS after reload")


def _backend(pg, sslmode, host="127.0.0.1", **kw):
    parts = {"host": host, "port": pg.port, "sslmode": sslmode, **kw}
    return " ".join(f"{k}={v}" for k, v in parts.items())


def _backend_ssl(conn):
    """(ssl, version) of the proxy's connection as PostgreSQL sees it."""
    cur = conn.cursor()
    cur.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    return cur.fetchone()


def _connect_fails(px, *needles, **kw):
    try:
        conn = px.connect(**kw)
    except psycopg2.OperationalError as e:
        msg = str(e)
        for n in needles:
            assert n in msg, f"{n!r} not in {msg!r}"
        return msg
    conn.close()
    raise AssertionError(f"connected although {needles} was expected")


def test_backend_require_uses_tls(env):
    px = env.proxy(backend=_backend(env.pg, "require"))
    conn = env.closing(px.connect())
    ssl, version = _backend_ssl(conn)
    assert ssl is True, "PostgreSQL sees the proxy's connection without TLS"
    assert version in ("TLSv1.2", "TLSv1.3"), version
    # a role that pg_hba admits over TLS only
    conn = env.closing(px.connect(user=TLS_ONLY_USER, password=TLS_ONLY_PW, dbname="postgres"))
    assert _backend_ssl(conn)[0] is True
    # and without backend TLS that role is refused by PostgreSQL itself
    plain = env.proxy(backend=_backend(env.pg, "disable"))
    _connect_fails(plain, "pg_hba.conf rejects connection", "no encryption", user=TLS_ONLY_USER, password=TLS_ONLY_PW,
                   dbname="postgres")
    px.assert_alive()


def test_backend_tls_on_both_legs(env):
    """Client -> proxy TLS and proxy -> PostgreSQL TLS are independent sessions."""
    cert, key = _make_cert(env.tmpdir)
    px = env.proxy(config={"tls_cert_file": cert, "tls_key_file": key},
                   backend=_backend(env.pg, "prefer"))
    # passthrough SCRAM: a TLS client whose libpq would use channel binding
    # says so in its first message ("y": it saw no SCRAM-SHA-256-PLUS, the
    # proxy hides it), and PostgreSQL on TLS refuses that as a downgrade; the
    # client's proof covers the flag, so the proxy cannot change it
    _connect_fails(px, "SCRAM channel binding negotiation error", sslmode="require")
    conn = env.closing(px.connect(sslmode="require", channel_binding="disable"))
    assert conn.info.ssl_in_use
    assert _backend_ssl(conn)[0] is True
    cur = conn.cursor()
    cur.execute("SELECT md5(repeat('tls', 300000))")
    assert cur.fetchone()[0] == hashlib.md5(b"tls" * 300000).hexdigest()
    # userlist mode logs in to PostgreSQL itself: no such restriction
    auth = env.userlist({harness.DEFAULT_USER: harness.DEFAULT_PASSWORD})
    px = env.proxy(config={"tls_cert_file": cert, "tls_key_file": key, "auth_mode": "userlist",
                           "auth_file": auth, "pool_mode": "transaction"},
                   backend=_backend(env.pg, "require"))
    for _ in range(3):
        conn = px.connect(sslmode="require")
        assert conn.info.ssl_in_use
        assert _backend_ssl(conn)[0] is True
        conn.close()


def test_backend_verify_full_with_right_ca(env):
    for backend in (_backend(env.pg, "verify-full", sslrootcert=CERTS["ca"]),  # IP SAN
                    # a DNS name (DNS SAN, sent as SNI) reached through hostaddr
                    _backend(env.pg, "verify-full", host="localhost", hostaddr="127.0.0.1",
                             sslrootcert=CERTS["ca"]),
                    _backend(env.pg, "verify-ca", sslrootcert=CERTS["ca"])):
        px = env.proxy(backend=backend)
        conn = env.closing(px.connect())
        assert _backend_ssl(conn)[0] is True, backend
        assert px.stop() == 0, px.log_tail()


def test_backend_verify_full_with_wrong_ca(env):
    for mode in ("verify-full", "verify-ca", "require"):
        # require with a root certificate verifies the chain, as in libpq
        px = env.proxy(backend=_backend(env.pg, mode, sslrootcert=CERTS["wrong_ca"]))
        msg = _connect_fails(px, "TLS connection to the PostgreSQL server failed",
                             "certificate verify failed")
        # PostgreSQL sends its CA along (OpenSSL chains from ssl_ca_file)
        assert re.search(r"certificate verify failed: (self-signed certificate in certificate "
                         r"chain|unable to get local issuer certificate)", msg), msg
        # the proxy logs it and keeps serving
        assert "certificate verify failed" in px.log_text()
        px.assert_alive()
        assert px.stop() == 0, px.log_tail()


def test_backend_verify_full_host_name_mismatch(env):
    # connect to 127.0.0.1, but expect a certificate for another name
    wrong_name = _backend(env.pg, "verify-full", host="db.example.com", hostaddr="127.0.0.1",
                          sslrootcert=CERTS["ca"])
    px = env.proxy(backend=wrong_name)
    _connect_fails(px, "TLS connection to the PostgreSQL server failed",
                   "certificate verify failed: hostname mismatch")
    assert px.stop() == 0, px.log_tail()
    # an IP address the certificate does not list (PostgreSQL listens on
    # 127.0.0.1 only, so this is again reached through hostaddr)
    px = env.proxy(backend=_backend(env.pg, "verify-full", host="127.0.0.2",
                                    hostaddr="127.0.0.1", sslrootcert=CERTS["ca"]))
    _connect_fails(px, "certificate verify failed: IP address mismatch")
    assert px.stop() == 0, px.log_tail()
    # verify-ca does not look at the name
    px = env.proxy(backend=wrong_name.replace("verify-full", "verify-ca"))
    assert _backend_ssl(env.closing(px.connect()))[0] is True


def test_backend_client_certificate(env):
    """sslcert/sslkey: pg_hba `cert` logs the proxy in with its certificate."""
    base = _backend(env.pg, "verify-full", sslrootcert=CERTS["ca"])
    px = env.proxy(backend=f"{base} sslcert={CERTS['client_crt']} sslkey={CERTS['client_key']}")
    conn = env.closing(px.connect(user=CERT_USER, password=None, dbname="postgres"))
    cur = conn.cursor()
    cur.execute("SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    ssl, dn = cur.fetchone()
    assert ssl is True and dn == f"/CN={CERT_USER}", (ssl, dn)
    assert px.stop() == 0, px.log_tail()
    # without the certificate PostgreSQL refuses (its own error reaches the client)
    px = env.proxy(backend=base)
    _connect_fails(px, "certificate", user=CERT_USER, password=None, dbname="postgres")


def test_backend_ssl_off(env):
    """Against a server without TLS: require and stricter fail with a clear
    error, prefer and allow go on in plaintext."""
    pg = harness.PgCluster(name="nossl").start()
    try:
        for mode in ("require", "verify-full"):
            px = env.proxy(backend=_backend(pg, mode, sslrootcert=CERTS["ca"]))
            msg = _connect_fails(px, "TLS connection to the PostgreSQL server failed",
                                 "does not support SSL", f"sslmode={mode}")
            px.assert_alive()
            assert px.stop() == 0, px.log_tail()
        for mode in ("prefer", "allow"):
            px = env.proxy(backend=_backend(pg, mode))
            conn = env.closing(px.connect())
            assert _backend_ssl(conn)[0] is False, mode
            cur = conn.cursor()
            cur.execute("SELECT 40 + 2")
            assert cur.fetchone() == (42,)
            conn.close()
            assert px.stop() == 0, px.log_tail()
    finally:
        pg.destroy()


def test_backend_tls_error_is_08006(env):
    """The failure reaches the client as an ErrorResponse with SQLSTATE 08006
    (raw protocol check), in passthrough and in pooled (userlist) mode."""
    backend = _backend(env.pg, "verify-full", sslrootcert=CERTS["wrong_ca"])
    auth = env.userlist({harness.DEFAULT_USER: harness.DEFAULT_PASSWORD})
    for config in (None, {"auth_mode": "userlist", "auth_file": auth, "pool_mode": "transaction"}):
        px = env.proxy(config=config, backend=backend)
        with px.raw() as raw:
            try:
                raw.login()
                raise AssertionError("login succeeded")
            except harness.PgError as e:
                fields = e.fields
        assert fields.get("C") == "08006", fields
        assert fields.get("S") == "FATAL", fields
        assert "TLS connection to the PostgreSQL server failed: certificate verify failed" \
            in fields.get("M", ""), fields
        px.assert_alive()
        assert px.stop() == 0, px.log_tail()


def test_backend_tls_large_results(env):
    """20 MB results, large parameters and COPY in both directions over
    backend TLS (many TLS records, backpressure towards a slow reader)."""
    px = env.proxy(backend=_backend(env.pg, "require"))
    conn = env.closing(px.connect())
    cur = conn.cursor()
    n = 655360  # 32 hex characters each: 20 MiB
    # (no ORDER BY: sorting 20 MB costs more than the transfer; a function
    # scan returns generate_series in order)
    cur.execute("SELECT string_agg(md5(g::text), '') FROM generate_series(1, %s) g", (n,))
    big = cur.fetchone()[0]
    expected = "".join(hashlib.md5(str(g).encode()).hexdigest() for g in range(1, n + 1))
    assert len(big) == 32 * n and big == expected
    cur.execute("SELECT g, md5(g::text) FROM generate_series(1, 200000) g")
    rows = cur.fetchall()
    assert len(rows) == 200000 and rows[-1] == (200000, hashlib.md5(b"200000").hexdigest())
    param = os.urandom(4_000_000).hex()  # 8 MB upstream
    cur.execute("SELECT length(%s), md5(%s)", (param, param))
    assert cur.fetchone() == (len(param), hashlib.md5(param.encode()).hexdigest())
    cur.execute("CREATE TEMP TABLE t (v text)")
    data = "".join(f"{i}\t{'y' * 200}\n" for i in range(50000)).replace("\t", "-")
    cur.copy_expert("COPY t FROM STDIN", io.StringIO(data))
    out = io.StringIO()
    cur.copy_expert("COPY t TO STDOUT", out)
    assert out.getvalue() == data
    assert _backend_ssl(conn)[0] is True


def test_backend_tls_pgbench(env):
    px = env.proxy(backend=_backend(env.pg, "verify-full", sslrootcert=CERTS["ca"]), workers=2)
    cp = px.pgbench("-i", "-s", "1", "-q")
    assert cp.returncode == 0, f"pgbench -i failed:\n{cp.stdout}\n{cp.stderr}"
    for extra in ([], ["-C"]):  # -C: a new connection (and TLS handshake) per transaction
        cp = px.pgbench("-n", "-S", "-T", "3", "-c", "4", "-j", "2", *extra)
        out = cp.stdout + cp.stderr
        assert cp.returncode == 0, out
        m = re.search(r"number of failed transactions: (\d+)", out)
        assert m and m.group(1) == "0", out
        m = re.search(r"number of transactions actually processed: (\d+)", out)
        assert m and int(m.group(1)) > 0, out
    px.assert_alive()


def test_backend_tls_cancel_and_reload(env):
    """Cancel requests go to PostgreSQL over plain TCP (as libpq's do); a
    SIGHUP keeps the backend TLS settings (backend needs a restart)."""
    px = env.proxy(backend=_backend(env.pg, "require"))
    conn = env.closing(px.connect())
    cur = conn.cursor()
    result = {}

    def run():
        try:
            cur.execute("SELECT pg_sleep(30)")
        except psycopg2.Error as e:
            result["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    harness.wait_until(lambda: env.pg.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' "
        "AND state = 'active'") != "0", timeout=10, message="pg_sleep to run")
    conn.cancel()
    t.join(10)
    assert not t.is_alive() and result["error"].pgcode == "57014", result
    conn.rollback()
    px.reload()
    assert _backend_ssl(env.closing(px.connect()))[0] is True
    px.assert_alive()


class _FakeBackend:
    """A TCP server that reads the SSLRequest and answers with `reply`."""

    def __init__(self, reply, after=None):
        self.reply = reply
        self.after = after  # sent once the proxy has written something more
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                c.settimeout(5)
                try:
                    self.requests.append(c.recv(8))
                    c.sendall(self.reply)
                    if self.after is not None and c.recv(1):
                        if not self.after:
                            continue  # closes the connection
                        c.sendall(self.after)
                    while c.recv(65536):  # until the proxy gives up
                        pass
                except OSError:
                    pass

    def close(self):
        self.sock.close()


def test_backend_bad_ssl_answers(env):
    """What is not PostgreSQL's 'S' or 'N' fails the connection, with a reason."""
    cases = [
        (b"X", None, "invalid answer 0x58 to the SSL request"),
        # plaintext after 'S' must not pass for TLS data (CVE-2021-23222)
        (b"SHELLO", None, "unencrypted data after its SSL answer"),
        # 'S', then the connection closes (or resets) when the ClientHello arrives
        (b"S", b"", "TLS connection to the PostgreSQL server failed: connection "),
        # 'S', then something that is not TLS answers the ClientHello
        (b"S", b"HTTP/1.1 400 Bad Request\r\n\r\n", "TLS connection to the PostgreSQL server "
                                                       "failed: "),
    ]
    for reply, after, needle in cases:
        fake = _FakeBackend(reply, after)
        try:
            px = env.proxy(backend=f"host=127.0.0.1 port={fake.port} sslmode=require")
            _connect_fails(px, needle)
            assert fake.requests and fake.requests[0] == struct.pack(
                "!ii", 8, harness.SSL_REQUEST_CODE), fake.requests
            px.assert_alive()
            assert px.stop() == 0, px.log_tail()
        finally:
            fake.close()
    # an ErrorResponse instead of the answer (PostgreSQL could not start a
    # backend) reaches the client as PostgreSQL's own error, as with libpq
    err = harness.message(b"E", b"SFATAL\0C53300\0Msorry, too many clients already\0\0")
    fake = _FakeBackend(err)
    try:
        px = env.proxy(backend=f"host=127.0.0.1 port={fake.port} sslmode=require")
        _connect_fails(px, "sorry, too many clients already")
        assert px.stop() == 0, px.log_tail()
    finally:
        fake.close()
    # 'S', then silence: connect_timeout covers the handshake
    fake = _FakeBackend(b"S")
    try:
        px = env.proxy(config={"connect_timeout": 1},
                       backend=f"host=127.0.0.1 port={fake.port} sslmode=require")
        _connect_fails(px, "timeout connecting to the PostgreSQL server")
        assert px.stop() == 0, px.log_tail()
    finally:
        fake.close()


def test_backend_tls_config_errors(env):
    cases = [
        ("sslmode=verify-full", "sslmode=verify-full needs sslrootcert"),
        ("sslmode=verify-ca", "sslmode=verify-ca needs sslrootcert"),
        ("sslmode=bogus", 'invalid sslmode "bogus"'),
        ("sslmode=verify-full sslrootcert=/nonexistent/ca.crt", "sslrootcert /nonexistent/ca.crt"),
        ("sslmode=require sslrootcert=system", "sslrootcert=system needs sslmode=verify-full"),
        (f"sslmode=require sslcert={CERTS['client_crt']}", "sslcert and sslkey"),
        (f"sslmode=require sslcert={CERTS['client_crt']} sslkey={CERTS['ca']}", "sslkey"),
    ]
    for extra, needle in cases:
        px = env.proxy(backend=f"host=127.0.0.1 port={env.pg.port} {extra}", start=False)
        try:
            px.start()
            raise AssertionError(f"{extra}: the proxy started")
        except harness.HarnessError:
            pass
        assert px.returncode == 2, (extra, px.returncode)
        assert needle in px.log_text(), (extra, px.log_text())
