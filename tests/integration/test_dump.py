"""pg_dump through the proxy: a branch (dbname@branch) and a ref
(PGOPTIONS='-c epoch.as_of=<ref>'), plain and custom format, --data-only, -t,
-N epoch; each dump restored into an empty database straight into PostgreSQL
and compared with the branch (or the ref) row by row."""

import os
import subprocess

import harness

TIMEOUT = 120
PG_DUMP = "/usr/lib/postgresql/15/bin/pg_dump"
PG_RESTORE = "/usr/lib/postgresql/15/bin/pg_restore"


def _all(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None


def _one(conn, sql, params=None):
    return _all(conn, sql, params)[0][0]


def _dump(px, dbname, *args, env=None):
    cmd = [PG_DUMP, "-h", "127.0.0.1", "-p", str(px.port), "-U", harness.DEFAULT_USER,
           "-d", dbname] + list(args)
    cp = subprocess.run(cmd, capture_output=True, env=harness.client_env(harness.DEFAULT_PASSWORD, env),
                        timeout=90)
    assert cp.returncode == 0, f"{cmd}: exit {cp.returncode}\n{cp.stderr.decode(errors='replace')}"
    return cp.stdout


def _restore_plain(env, db, sql):
    cp = subprocess.run(env.pg.psql_admin_cmd(db) + ["-v", "ON_ERROR_STOP=1", "-q", "-f", "-"],
                        input=sql, capture_output=True, timeout=90)
    assert cp.returncode == 0, cp.stderr.decode(errors="replace")


def _restore_custom(env, db, path):
    cmd = [PG_RESTORE, "-h", str(env.pg.dir), "-p", str(env.pg.port), "-U", harness.ADMIN_USER,
           "-d", db, "--exit-on-error", path]
    cp = subprocess.run(cmd, capture_output=True, timeout=90)
    assert cp.returncode == 0, cp.stderr.decode(errors="replace")


def _rows(conn, table):
    return _all(conn, f"SELECT * FROM {table} ORDER BY 1")


def _setup(env, px, db):
    env.pg.create_database(db)
    m = env.closing(px.connect(dbname=db, autocommit=True))
    _all(m, "CREATE TABLE kv (k int PRIMARY KEY, v text, n numeric(10,2), "
            "g int GENERATED ALWAYS AS (k * 2) STORED)")
    _all(m, "INSERT INTO kv (k, v, n) SELECT g, 'v' || g, g / 3.0 FROM generate_series(1, 200) g")
    _all(m, "CREATE TABLE labels (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, label text NOT NULL)")
    _all(m, "INSERT INTO labels (label) SELECT 'l' || g FROM generate_series(1, 20) g")
    _all(m, "CREATE TABLE plain (id int PRIMARY KEY, note text)")   # untracked
    _all(m, "INSERT INTO plain VALUES (1, 'untracked')")
    _all(m, "SELECT epoch.track('kv'), epoch.track('labels')")
    _all(m, "SELECT epoch.branch_create('exp')")
    b = env.closing(px.connect(dbname=f"{db}@exp", autocommit=True))
    _all(b, "UPDATE kv SET v = 'exp' WHERE k % 10 = 0")
    _all(b, "DELETE FROM kv WHERE k > 190")
    _all(b, "INSERT INTO kv (k, v, n) VALUES (500, 'new on exp', 1.25)")
    _all(b, "INSERT INTO labels (label) VALUES ('exp tag')")
    return m, b


def test_pg_dump_of_a_branch_round_trips(env):
    db = "dump_branch"
    px = env.proxy()
    m, b = _setup(env, px, db)
    # main keeps moving: the dump is the branch's
    _all(m, "UPDATE kv SET v = 'main later' WHERE k = 1")
    want_kv, want_tags = _rows(b, "kv"), _rows(b, "labels")
    assert want_kv != _rows(m, "kv")

    plain = _dump(px, f"{db}@exp", "-N", "epoch")
    env.pg.create_database("dump_branch_plain")
    _restore_plain(env, "dump_branch_plain", plain)
    r = env.closing(env.pg.admin_connect("dump_branch_plain"))
    assert _rows(r, "kv") == want_kv
    assert _rows(r, "labels") == want_tags
    assert _rows(r, "plain") == [(1, "untracked")]
    assert _one(r, "SELECT count(*) FROM pg_namespace WHERE nspname = 'epoch'") == 0

    path = os.path.join(env.tmpdir, "exp.dump")
    with open(path, "wb") as f:
        f.write(_dump(px, f"{db}@exp", "-Fc", "-N", "epoch"))
    env.pg.create_database("dump_branch_custom")
    _restore_custom(env, "dump_branch_custom", path)
    r2 = env.closing(env.pg.admin_connect("dump_branch_custom"))
    assert _rows(r2, "kv") == want_kv
    assert _rows(r2, "labels") == want_tags

    # --data-only -t kv into a database that has the schema
    env.pg.create_database("dump_branch_data")
    r3 = env.closing(env.pg.admin_connect("dump_branch_data"))
    r3.autocommit = True
    _all(r3, "CREATE TABLE kv (k int PRIMARY KEY, v text, n numeric(10,2), "
             "g int GENERATED ALWAYS AS (k * 2) STORED)")
    _restore_plain(env, "dump_branch_data", _dump(px, f"{db}@exp", "--data-only", "-t", "kv"))
    assert _rows(r3, "kv") == want_kv


def test_pg_dump_of_a_ref(env):
    db = "dump_ref"
    px = env.proxy()
    m, b = _setup(env, px, db)
    c = _one(b, "SELECT epoch.commit('before more work')")
    want = _rows(b, "kv")
    _all(b, "UPDATE kv SET v = 'after the commit' WHERE k < 50")
    sql = _dump(px, db, "-N", "epoch", "-t", "kv", env={"PGOPTIONS": f"-c epoch.as_of={c}"})
    env.pg.create_database("dump_ref_restored")
    _restore_plain(env, "dump_ref_restored", sql)
    r = env.closing(env.pg.admin_connect("dump_ref_restored"))
    assert _rows(r, "kv") == want


def test_locks_on_a_branch(env):
    db = "dump_locks"
    px = env.proxy()
    m, b = _setup(env, px, db)
    b.autocommit = False
    _all(b, "LOCK TABLE kv IN ACCESS SHARE MODE")   # what pg_dump takes: harmless
    b.rollback()
    import psycopg2
    for mode in ("ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"):
        try:
            _all(b, f"LOCK TABLE kv IN {mode} MODE")
            raise AssertionError(f"LOCK ... {mode} was accepted on a branch")
        except psycopg2.Error as e:
            assert e.pgcode == "0A000", (mode, e.pgcode, e.pgerror)
        b.rollback()
