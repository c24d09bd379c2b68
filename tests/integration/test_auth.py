"""Authentication: passthrough (PostgreSQL's own SCRAM / md5 relayed to the
client) and userlist mode (the proxy verifies an auth_file entry itself and
logs in to PostgreSQL as server_user)."""

import time

import psycopg2

import harness

MD5_USER, MD5_PW = "auth_md5", "md5-secret"
SRV_USER, SRV_PW = "epoch_srv", "srv-secret"

AUTH_SASL, AUTH_MD5, AUTH_CLEARTEXT = 10, 5, 3


def setup_module(pg):
    pg.create_role(MD5_USER, MD5_PW, method="md5")
    pg.create_role(SRV_USER, SRV_PW)
    pg.create_database("authdb", owner=SRV_USER)


def _expect_login_failure(px, user, password, dbname=harness.DEFAULT_DB, text=None):
    t0 = time.monotonic()
    try:
        conn = px.connect(user=user, password=password, dbname=dbname)
    except psycopg2.OperationalError as e:
        msg = str(e)
    else:
        conn.close()
        raise AssertionError(f"login as {user!r} with password {password!r} succeeded")
    assert time.monotonic() - t0 < 8, "login failure took too long"
    if text:
        assert text in msg, msg
    return msg


def _whoami(conn):
    cur = conn.cursor()
    cur.execute("SELECT current_user, session_user, current_database()")
    return cur.fetchone()


# ---- passthrough ------------------------------------------------------------

def test_passthrough_scram(env):
    px = env.proxy()
    assert env.pg.role_secret(harness.DEFAULT_USER).startswith("SCRAM-SHA-256$")
    conn = env.closing(px.connect())
    assert _whoami(conn) == (harness.DEFAULT_USER, harness.DEFAULT_USER, harness.DEFAULT_DB)
    _expect_login_failure(px, harness.DEFAULT_USER, "wrong",
                          text=f'password authentication failed for user "{harness.DEFAULT_USER}"')
    # the client sees PostgreSQL's SCRAM exchange (server signature checked)
    with px.raw() as raw:
        raw.login()
        assert AUTH_SASL in raw.auth_requests, raw.auth_requests
    with px.raw() as raw:
        try:
            raw.login(password="wrong")
            raise AssertionError("raw login with a wrong password succeeded")
        except harness.PgError as e:
            assert e.sqlstate == "28P01", e.fields
    px.assert_alive()
    assert _whoami(conn)[0] == harness.DEFAULT_USER  # earlier session unaffected


def test_passthrough_md5(env):
    px = env.proxy()
    assert env.pg.role_secret(MD5_USER).startswith("md5"), "test setup: role is not md5"
    conn = env.closing(px.connect(user=MD5_USER, password=MD5_PW))
    assert _whoami(conn)[0] == MD5_USER
    _expect_login_failure(px, MD5_USER, "wrong",
                          text=f'password authentication failed for user "{MD5_USER}"')
    with px.raw() as raw:
        raw.login(user=MD5_USER, password=MD5_PW)
        assert AUTH_MD5 in raw.auth_requests, raw.auth_requests


def test_passthrough_unknown_user_and_database(env):
    px = env.proxy()
    _expect_login_failure(px, "nobody_here", "x",
                          text='password authentication failed for user "nobody_here"')
    _expect_login_failure(px, harness.DEFAULT_USER, harness.DEFAULT_PASSWORD, dbname="no_such_db",
                          text='database "no_such_db" does not exist')
    with px.raw() as raw:
        try:
            raw.login(database="no_such_db")
            raise AssertionError("login to a missing database succeeded")
        except harness.PgError as e:
            assert e.sqlstate == "3D000", e.fields


def test_passthrough_psql_without_password(env):
    px = env.proxy()
    cp = px.psql("-w", "-c", "SELECT 1", password=None)
    assert cp.returncode != 0
    assert "no password supplied" in cp.stderr, cp.stderr
    cp = px.psql("-c", "SELECT 'pw ok'")
    assert cp.returncode == 0 and "pw ok" in cp.stdout, cp.stderr


# ---- userlist -----------------------------------------------------------------

def _userlist_proxy(env, entries, **extra):
    auth = env.userlist(entries)
    config = {"auth_mode": "userlist", "auth_file": auth, "server_user": SRV_USER,
              "server_password": SRV_PW}
    config.update(extra)
    return env.proxy(config=config)


def test_userlist_scram_verifier_entry(env):
    px = _userlist_proxy(env, {"scram_client": harness.scram_secret("scram-pw")})
    conn = env.closing(px.connect(user="scram_client", password="scram-pw", dbname="authdb"))
    # logged in to PostgreSQL as the configured server_user
    assert _whoami(conn) == (SRV_USER, SRV_USER, "authdb")
    _expect_login_failure(px, "scram_client", "scram-pwX", dbname="authdb",
                          text="password authentication failed")
    with px.raw() as raw:
        raw.login(user="scram_client", password="scram-pw", database="authdb")
        assert raw.auth_requests[0] == AUTH_SASL, raw.auth_requests
        assert raw.query("SELECT current_user") == [(SRV_USER,)]
    with px.raw() as raw:
        try:
            raw.login(user="scram_client", password="nope", database="authdb")
            raise AssertionError("wrong password accepted")
        except harness.PgError as e:
            assert e.sqlstate == "28P01", e.fields


def test_userlist_verifier_copied_from_pg_authid(env):
    secret = env.pg.role_secret(harness.DEFAULT_USER)
    px = _userlist_proxy(env, {harness.DEFAULT_USER: secret})
    conn = env.closing(px.connect())
    assert _whoami(conn)[0] == SRV_USER
    _expect_login_failure(px, harness.DEFAULT_USER, "bad", text="password authentication failed")


def test_userlist_md5_entry(env):
    px = _userlist_proxy(env, {"md5_client": harness.md5_secret("md5_client", "md5-pw")})
    conn = env.closing(px.connect(user="md5_client", password="md5-pw", dbname="authdb"))
    assert _whoami(conn)[0] == SRV_USER
    _expect_login_failure(px, "md5_client", "md5-pw2", dbname="authdb",
                          text="password authentication failed")
    with px.raw() as raw:
        raw.login(user="md5_client", password="md5-pw", database="authdb")
        assert raw.auth_requests[0] == AUTH_MD5, raw.auth_requests


def test_userlist_plaintext_entry_scram(env):
    px = _userlist_proxy(env, {"plain_client": "plain-pw"}, auth_type="scram-sha-256")
    conn = env.closing(px.connect(user="plain_client", password="plain-pw", dbname="authdb"))
    assert _whoami(conn)[0] == SRV_USER
    _expect_login_failure(px, "plain_client", "plain", dbname="authdb",
                          text="password authentication failed")
    with px.raw() as raw:
        raw.login(user="plain_client", password="plain-pw", database="authdb")
        assert raw.auth_requests[0] == AUTH_SASL, raw.auth_requests


def test_userlist_plaintext_entry_md5(env):
    px = _userlist_proxy(env, {"plain_client": "plain-pw"}, auth_type="md5")
    conn = env.closing(px.connect(user="plain_client", password="plain-pw", dbname="authdb"))
    assert _whoami(conn)[0] == SRV_USER
    _expect_login_failure(px, "plain_client", "wrong", dbname="authdb",
                          text="password authentication failed")
    with px.raw() as raw:
        raw.login(user="plain_client", password="plain-pw", database="authdb")
        assert raw.auth_requests[0] == AUTH_MD5, raw.auth_requests


def test_userlist_unknown_user(env):
    px = _userlist_proxy(env, {"someone": "pw"})
    _expect_login_failure(px, "someone_else", "pw", dbname="authdb")
    px.assert_alive()
    conn = env.closing(px.connect(user="someone", password="pw", dbname="authdb"))
    assert _whoami(conn)[0] == SRV_USER


def test_userlist_without_server_user(env):
    """No server_user: the proxy logs in as the client's own user with the
    plaintext password from auth_file."""
    auth = env.userlist({harness.DEFAULT_USER: harness.DEFAULT_PASSWORD})
    px = env.proxy(config={"auth_mode": "userlist", "auth_file": auth})
    conn = env.closing(px.connect())
    assert _whoami(conn) == (harness.DEFAULT_USER, harness.DEFAULT_USER, harness.DEFAULT_DB)


def test_userlist_server_login_failure(env):
    """server_password is wrong: the client gets an error promptly (no hang)
    and the proxy keeps running."""
    px = _userlist_proxy(env, {"client": "pw"}, server_password="not-the-password")
    t0 = time.monotonic()
    try:
        conn = px.connect(user="client", password="pw", dbname="authdb")
        cur = conn.cursor()
        cur.execute("SELECT 1")
        conn.close()
        raise AssertionError("query succeeded although the server login must fail")
    except psycopg2.Error:
        pass
    assert time.monotonic() - t0 < 15, "server login failure was not reported promptly"
    px.assert_alive()
