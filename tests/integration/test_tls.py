"""TLS between clients and the proxy (tls_cert_file / tls_key_file)."""

import hashlib
import os
import struct
import subprocess

import psycopg2

import harness


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
    # the proxy -> PostgreSQL leg is plain TCP: the backend sees no TLS
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
