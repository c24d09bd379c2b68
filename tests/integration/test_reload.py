"""Config snapshots are freed once nothing uses them: 200 SIGHUPs while clients
keep logging in over TLS with userlist authentication. Every login works
during and after the reloads, the proxy survives (under ASan: no report),
every replaced snapshot is freed (the debug log says so for each), and the
proxy's RSS stays flat (each snapshot holds a userlist and two SSL_CTXs: before
reference counting, every reload kept its snapshot until exit)."""

import os
import signal
import threading

import psycopg2

import harness

TIMEOUT = 300
RELOADS = 200
USER = "reload_user"
PASSWORD = "reload-pw"


def _make_cert(tmpdir):
    cert = tmpdir / "server.crt"
    key = tmpdir / "server.key"
    harness.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                 "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost"])
    os.chmod(key, 0o600)
    return cert, key


def _rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _is_asan(binary):
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def _login(px):
    conn = px.connect(user=USER, password=PASSWORD, sslmode="require", connect_timeout=10)
    try:
        assert conn.info.ssl_in_use
        with conn.cursor() as cur:
            cur.execute("SELECT current_user")
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_reloads_free_old_snapshots_while_clients_log_in(env):
    cert, key = _make_cert(env.tmpdir)
    # many entries: a userlist worth measuring; the client's is the last
    entries = {f"filler_{i}": harness.md5_secret(f"filler_{i}", f"pw-{i}") for i in range(2000)}
    entries[USER] = harness.scram_secret(PASSWORD)
    auth = env.userlist(entries)
    config = {"tls_cert_file": cert, "tls_key_file": key, "auth_mode": "userlist",
              "auth_file": auth, "server_user": harness.DEFAULT_USER,
              "server_password": harness.DEFAULT_PASSWORD, "log_level": "debug"}
    px = env.proxy(config=config, workers=2)
    assert _login(px) == harness.DEFAULT_USER

    stop = threading.Event()
    results = {"ok": 0, "errors": []}
    lock = threading.Lock()

    def client_loop():
        while not stop.is_set():
            try:
                who = _login(px)
                with lock:
                    results["ok"] += 1
                    if who != harness.DEFAULT_USER:
                        results["errors"].append(f"logged in as {who}")
            except psycopg2.Error as e:
                with lock:
                    results["errors"].append(str(e).strip())

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        rss = []
        for i in range(RELOADS):
            # one at a time: SIGHUPs sent during a reload would merge into one
            px.send_signal(signal.SIGHUP)
            harness.wait_until(lambda: px.log_text().count("configuration reloaded") > i,
                               timeout=30, message=f"reload {i + 1}")
            if i in (49, RELOADS - 1):  # after warm-up (allocator pools) and at the end
                rss.append(_rss_kb(px.pid))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    px.assert_alive("after the reloads")
    assert not results["errors"], results["errors"][:5]
    assert results["ok"] > 0, "no login completed during the reloads"
    # correct logins after the reloads, and a wrong password still refused
    assert _login(px) == harness.DEFAULT_USER
    try:
        px.connect(user=USER, password="wrong", sslmode="require").close()
        raise AssertionError("a wrong password was accepted after the reloads")
    except psycopg2.OperationalError as e:
        assert "password authentication failed" in str(e), e
    # every replaced snapshot is freed: the main thread's and each worker's
    # references moved to the newest one
    reloaded = px.log_text().count("configuration reloaded")
    assert reloaded == RELOADS, reloaded
    growth = rss[1] - rss[0]
    print(f"RSS after 50 reloads {rss[0]} kB, after {RELOADS}: {rss[1]} kB "
          f"(+{growth} kB over {RELOADS - 50} reloads, {results['ok']} TLS logins)")
    if not _is_asan(px.binary):  # ASan's quarantine keeps freed memory resident
        assert growth < 8 * 1024, f"RSS grew {growth} kB over {RELOADS - 50} reloads"
    harness.wait_until(lambda: px.log_text().count("configuration snapshot freed") >= RELOADS,
                       timeout=10, message=f"{RELOADS} snapshots freed")
