"""The proxy's socket I/O layer (config key io): io_uring by default, libuv on
request. The rest of the suite runs through both (scripts/test.sh: the normal
pass with EPOCH_TEST_IO=libuv, the sanitizer pass with io_uring); these tests
check that the choice is real and what each mode does at its edges."""

import os
import subprocess
import time

import harness

DB = "iodb"


def setup_module(pg):
    pg.create_database(DB)


def _ring_fds(pid):
    """The io_uring instances the process holds (one per worker)."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[io_uring]":
                n += 1
        except OSError:
            pass
    return n


def _io_uring_allowed():
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            return f.read().strip() == "0"
    except OSError:
        return True  # kernels before 6.6 have no such switch


def _proxy(env, io, workers=1):
    px = env.proxy(start=False, workers=workers)
    px.args.pop("io", None)  # no EPOCH_TEST_IO here: each test picks its own
    if io is not None:
        px.args["io"] = io
    return px.start()


def _queries(px):
    conn = px.connect(dbname=DB, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), sum(g) FROM generate_series(1, 100000) g")
            assert cur.fetchone() == (100000, 5000050000)
            # a result far above one 64 KB read, and the stream's high water
            cur.execute("SELECT repeat(md5(g::text), 40) FROM generate_series(1, 2000) g")
            rows = cur.fetchall()
            assert len(rows) == 2000 and all(len(r[0]) == 1280 for r in rows)
    finally:
        conn.close()


def test_io_uring_is_the_default(env):
    px = _proxy(env, None, workers=2)
    _queries(px)
    if _io_uring_allowed():
        # each worker thread sets its ring up when it starts, which may be
        # just after "listening on" (seen under ASan)
        deadline = time.monotonic() + 10
        while _ring_fds(px.proc.pid) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _ring_fds(px.proc.pid) == 2, px.log_tail()
        assert "io_uring unavailable" not in px.log_text()
    else:
        assert "io_uring unavailable" in px.log_text()


def test_io_libuv_uses_no_ring(env):
    px = _proxy(env, "libuv")
    assert _ring_fds(px.proc.pid) == 0
    _queries(px)


def test_io_unknown_value_is_refused(env):
    px = env.proxy(start=False, args={"io": "epoll"})
    px.start(wait_ready=False)
    rc = px.wait(timeout=10)
    px.exit_observed = True
    assert rc not in (0, None), f"proxy exited with {rc}"
    assert 'io: unknown value "epoll"' in px.log_text(), px.log_tail()


def test_io_uring_slow_reader_gets_every_byte(env):
    """A client that reads nothing for a while, then everything (psql copying
    out into a pipe nobody reads yet: COPY data is written as it arrives):
    the proxy's client side backs up past the high-water mark, the server
    side pauses and resumes; not a byte lost."""
    px = _proxy(env, "io_uring")
    conninfo = f"host=127.0.0.1 port={px.port} user={harness.DEFAULT_USER} dbname={DB}"
    proc = subprocess.Popen([harness.PSQL, "-X", "-d", conninfo, "-c",
                             "COPY (SELECT g, repeat('x', 1000) FROM generate_series(1, 20000) g) TO STDOUT"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=harness.client_env(harness.DEFAULT_PASSWORD))
    time.sleep(1.5)  # 20 MB waiting: psql blocks on the full pipe meanwhile
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = out.decode().splitlines()
    assert len(lines) == 20000
    assert all(line == f"{i}\t{'x' * 1000}" for i, line in enumerate(lines, 1))
    px.assert_alive()
