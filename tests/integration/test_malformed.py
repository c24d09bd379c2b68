"""Hostile and broken clients on raw sockets. For every case: the proxy stays
up, rejects the bad connection promptly (well before login_timeout unless
that is what is tested), and a separate, already-connected session keeps
working (a query before and after)."""

import random
import socket
import struct
import threading
import time

import psycopg2

import harness

MAX_MESSAGE = 1 << 20  # max_message_size for these tests
PROMPT = 3.0  # seconds within which a bad connection must be closed
CONFIG = {"login_timeout": 10, "max_message_size": MAX_MESSAGE}


class Guarded:
    """A proxy plus a guard session that must survive whatever happens."""

    def __init__(self, env, **config):
        self.env = env
        self.px = env.proxy(config={**CONFIG, **config})
        self.guard = env.closing(self.px.connect(autocommit=True))
        self.guard_pid = self._check_guard()

    def _check_guard(self):
        cur = self.guard.cursor()
        cur.execute("SELECT pg_backend_pid(), 6 * 7")
        pid, answer = cur.fetchone()
        assert answer == 42
        return pid

    def raw(self):
        return self.env.closing(self.px.raw(timeout=10))

    def check(self):
        self.px.assert_alive()
        assert self._check_guard() == self.guard_pid, "the guard session changed its backend"
        conn = self.px.connect()
        cur = conn.cursor()
        cur.execute("SELECT 'new session'")
        assert cur.fetchone() == ("new session",)
        conn.close()


def _rejected(raw, timeout=PROMPT, codes=None):
    """The proxy closes the connection within timeout, sending nothing but
    (optionally) ErrorResponses. Returns their SQLSTATEs."""
    t0 = time.monotonic()
    msgs = raw.expect_closed(timeout)
    types = [m[0] for m in msgs]
    assert all(t == b"E" for t in types), f"unexpected messages before close: {types}"
    states = [harness.parse_error_fields(m[1]).get("C") for m in msgs]
    if codes is not None:
        assert states and states[0] in codes, f"expected an ErrorResponse with one of {codes}, " \
                                              f"got {states}"
    return states, time.monotonic() - t0


def _logged_in(g):
    raw = g.raw()
    raw.login()
    assert raw.query("SELECT 1") == [("1",)]
    return raw


# ---- before/at startup ----------------------------------------------------------

def test_http_request_instead_of_startup(env):
    g = Guarded(env)
    raw = g.raw()
    raw.send(b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl\r\n\r\n")
    _rejected(raw)
    g.check()


def test_random_garbage_instead_of_startup(env):
    g = Guarded(env)
    rnd = random.Random(20240601)
    for blob in (b"\xff" * 4096, bytes(rnd.getrandbits(8) for _ in range(4096)), b"\x00" * 64):
        raw = g.raw()
        try:
            raw.send(blob)
        except OSError:
            pass  # closed while we were still sending: fine
        _rejected(raw)
    g.check()


def test_startup_absurd_length(env):
    """Length 0x7fffffff: rejected at once, not by waiting for 2 GiB."""
    g = Guarded(env)
    raw = g.raw()
    raw.send(struct.pack("!ii", 0x7FFFFFFF, harness.PROTOCOL_3_0) + b"user\x00epoch\x00")
    _rejected(raw)
    g.check()


def test_startup_length_too_small(env):
    g = Guarded(env)
    for length in (0, 4, 7, -1, -8):
        raw = g.raw()
        raw.send(struct.pack("!i", length) + struct.pack("!i", harness.PROTOCOL_3_0))
        _rejected(raw)
    g.check()


def test_unsupported_protocol_4_0(env):
    g = Guarded(env)
    raw = g.raw()
    raw.send_startup(harness.DEFAULT_USER, harness.DEFAULT_DB, protocol=4 << 16)
    states, _ = _rejected(raw)
    assert states, "no ErrorResponse for protocol 4.0 (connection just closed)"
    g.check()


def test_protocol_3_1_negotiated_or_rejected(env):
    """3.1: either NegotiateProtocolVersion ('v', newest 3.0) and a normal
    login, or an ErrorResponse."""
    g = Guarded(env)
    raw = g.raw()
    try:
        raw.login(protocol=(3 << 16) | 1)
    except harness.PgError:
        _rejected(raw)  # an error, then the connection is closed
    else:
        negotiated = getattr(raw, "negotiated", None)
        assert negotiated is not None, "3.1 accepted without NegotiateProtocolVersion"
        newest, _n_unrecognized = struct.unpack("!ii", negotiated[:8])
        # the protocol says "newest minor version"; PostgreSQL 15 itself sends
        # the full version number 3.0 (196608): accept both spellings of 3.0
        assert newest in (0, harness.PROTOCOL_3_0), newest
        assert raw.query("SELECT 'on 3.0'") == [("on 3.0",)]
    g.check()


def test_startup_without_user(env):
    g = Guarded(env)
    raw = g.raw()
    raw.send(harness.startup_packet(None, harness.DEFAULT_DB))
    states, _ = _rejected(raw)
    assert states, "no ErrorResponse for a startup packet without user"
    g.check()


def test_startup_not_nul_terminated(env):
    g = Guarded(env)
    body = struct.pack("!i", harness.PROTOCOL_3_0) + b"user\x00epoch\x00database\x00epo"
    raw = g.raw()
    raw.send(struct.pack("!i", len(body) + 4) + body)
    _rejected(raw)
    g.check()


def test_truncated_startup_then_half_close(env):
    """Half of a startup packet, then the client shuts down its sending side."""
    g = Guarded(env)
    raw = g.raw()
    raw.send(struct.pack("!ii", 100, harness.PROTOCOL_3_0) + b"user\x00epo")
    raw.sock.shutdown(socket.SHUT_WR)
    _rejected(raw)
    g.check()


def test_gssenc_request_answered_no(env):
    """GSSENCRequest is answered 'N' and the startup continues on the same socket."""
    g = Guarded(env)
    raw = g.raw()
    raw.send(struct.pack("!ii", 8, harness.GSSENC_REQUEST_CODE))
    assert raw.read_byte() == b"N"
    raw.login()
    assert raw.query("SELECT 'after gss'") == [("after gss",)]
    g.check()


def test_bad_cancel_requests(env):
    g = Guarded(env)
    for payload in (struct.pack("!iii", 12, harness.CANCEL_REQUEST_CODE, 1),
                    struct.pack("!iiiii", 20, harness.CANCEL_REQUEST_CODE, 1, 2, 3),
                    struct.pack("!iiii", 16, harness.CANCEL_REQUEST_CODE, 12345, 67890)):
        raw = g.raw()
        raw.send(payload)
        _rejected(raw)
    g.check()


def test_many_garbage_connections_at_once(env):
    g = Guarded(env)
    errors = []

    def worker(seed):
        rnd = random.Random(seed)
        try:
            for _ in range(5):
                with g.px.raw(timeout=10) as raw:
                    try:
                        raw.send(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 300))))
                        if rnd.random() < 0.5:
                            raw.sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
        except Exception as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors[:3]
    g.check()


# ---- login timeout --------------------------------------------------------------

def test_silent_client_closed_by_login_timeout(env):
    g = Guarded(env, login_timeout=1)
    raw = g.raw()
    t0 = time.monotonic()
    raw.expect_closed(timeout=5)
    elapsed = time.monotonic() - t0
    assert elapsed >= 0.7, f"closed after {elapsed:.2f}s, before login_timeout=1"
    g.check()


def test_stalled_authentication_closed_by_login_timeout(env):
    """Startup sent, but the client never answers the password request."""
    g = Guarded(env, login_timeout=1)
    raw = g.raw()
    raw.send_startup(harness.DEFAULT_USER, harness.DEFAULT_DB)
    t0 = time.monotonic()
    mtype, _ = raw.read_message(timeout=5)
    assert mtype == b"R", mtype
    raw.expect_closed(timeout=5)
    assert time.monotonic() - t0 < 4.5
    g.check()


# ---- after login ----------------------------------------------------------------

def test_truncated_message_then_half_close(env):
    """A Query whose body never completes, then the client half-closes: the
    proxy closes the session and its server connection goes away."""
    g = Guarded(env)
    baseline = env.pg.backend_count(user=harness.DEFAULT_USER)
    raw = _logged_in(g)
    raw.send(b"Q" + struct.pack("!i", 1000) + b"SELECT 1")
    raw.sock.shutdown(socket.SHUT_WR)
    _rejected(raw)
    harness.wait_until(lambda: env.pg.backend_count(user=harness.DEFAULT_USER) <= baseline,
                       timeout=5, message="the half-closed session's server connection to end")
    g.check()


def test_negative_length_after_login(env):
    g = Guarded(env)
    for length in (-5, -0x80000000, 0, 3):
        raw = _logged_in(g)
        raw.send(b"Q" + struct.pack("!i", length) + b"SELECT 1\x00")
        _rejected(raw)
    g.check()


def test_huge_length_after_login(env):
    """A length far above max_message_size: ErrorResponse (08P01/54000) and
    close at once, without waiting for the announced bytes."""
    g = Guarded(env)
    raw = _logged_in(g)
    raw.send(b"Q" + struct.pack("!i", 0x7FFFFFF0) + b"SELECT 1")
    _rejected(raw, codes=("08P01", "54000"))
    g.check()


def test_message_larger_than_max_message_size(env):
    g = Guarded(env)
    # just below the limit: fine
    conn = env.closing(g.px.connect())
    cur = conn.cursor()
    below = "y" * (MAX_MESSAGE - 4096)
    cur.execute("SELECT length(%s)", (below,))
    assert cur.fetchone() == (len(below),)
    conn.close()
    # above it, raw: the error, then the connection is closed
    raw = _logged_in(g)
    big = b"SELECT '" + b"x" * (2 * MAX_MESSAGE) + b"'\x00"
    try:
        raw.send(b"Q" + struct.pack("!i", len(big) + 4) + big)
    except OSError:
        pass  # the proxy may close while we are still sending
    _rejected(raw, codes=("08P01", "54000"))
    # above it, psycopg2: an error, not a hang
    conn = g.px.connect()
    try:
        conn.cursor().execute("SELECT length(%s)", ("z" * (2 * MAX_MESSAGE),))
        raise AssertionError("a query larger than max_message_size succeeded")
    except psycopg2.Error as e:
        assert str(e).strip(), "empty error message"
    finally:
        conn.close()
    g.check()


def test_unknown_message_types(env):
    g = Guarded(env)
    for mtype in (b"\x01", b"\xff", b"z", b"p"):
        raw = _logged_in(g)
        raw.send(mtype + struct.pack("!i", 8) + b"abcd")
        _rejected(raw, timeout=5)
    g.check()


def test_garbage_after_login(env):
    g = Guarded(env)
    raw = _logged_in(g)
    try:
        raw.send(bytes(random.Random(7).getrandbits(8) for _ in range(10000)))
    except OSError:
        pass
    _rejected(raw, timeout=5)
    g.check()


def test_client_vanishes_mid_query(env):
    """The client closes while a long query runs and results are pending; the
    proxy cleans up and the server connection ends."""
    g = Guarded(env)
    baseline = env.pg.backend_count(user=harness.DEFAULT_USER)
    raw = _logged_in(g)
    raw.send(harness.message(b"Q", b"SELECT g, repeat('r', 1000) FROM generate_series(1, 200000) g"
                             b"\x00"))
    raw.read_message()  # results are flowing
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()  # RST
    harness.wait_until(lambda: env.pg.backend_count(user=harness.DEFAULT_USER) <= baseline,
                       timeout=10, message="the vanished client's server connection to end")
    g.check()
