"""Scripted psql sessions through the proxy, compared with the same script run
straight against PostgreSQL; LISTEN/NOTIFY between two proxied connections."""

import select
import subprocess
import time

import harness

SCRIPT = r"""
\set ON_ERROR_STOP 0
\pset null '<null>'
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2), tags text[]);
INSERT INTO items SELECT g, 'item ' || g, g * 1.25, ARRAY['t' || g % 3] FROM generate_series(1, 50) g;
SELECT count(*), sum(price), min(name), max(name) FROM items;
SELECT * FROM items WHERE id <= 3 ORDER BY id;
SELECT id, NULL::text AS nothing, 'grüße ✓ "quoted"' AS unicode FROM items WHERE id = 1;

-- rollback undoes everything
BEGIN;
DELETE FROM items;
SELECT count(*) AS inside_tx FROM items;
ROLLBACK;
SELECT count(*) AS after_rollback FROM items;

-- an error in the middle of a transaction, then recovery
BEGIN;
INSERT INTO items VALUES (100, 'in failed tx', 1);
SELECT 1/0;
SELECT count(*) FROM items;
ROLLBACK;
SELECT count(*) AS id100_after_failed_tx FROM items WHERE id = 100;

-- savepoints
BEGIN;
INSERT INTO items VALUES (200, 'kept', 2);
SAVEPOINT sp;
INSERT INTO items VALUES (1, 'duplicate', 3);
ROLLBACK TO SAVEPOINT sp;
INSERT INTO items VALUES (201, 'also kept', 4);
COMMIT;
SELECT id, name FROM items WHERE id >= 200 ORDER BY id;

-- errors outside transactions
SELECT * FROM no_such_table;
INSERT INTO items VALUES (1, 'dup', 0);
SELEC 1;

-- several statements in one query string (one simple Query message)
SELECT 1 AS first \; SELECT 2 AS second \; SELECT 'third' AS third;
INSERT INTO items VALUES (300, 'multi', 1) \; UPDATE items SET price = 99 WHERE id = 300 \; SELECT price FROM items WHERE id = 300;
SELECT 'before error' \; SELECT 1/0 \; SELECT 'never';

-- NOTICE from a DO block, and a WARNING
DO $$ BEGIN RAISE NOTICE 'hello from plpgsql %', 42; END $$;
DO $$ BEGIN RAISE WARNING 'careful: %', 'warned'; END $$;

-- \copy both ways (data inline)
CREATE TABLE copied (a int, b text);
\copy copied FROM stdin
1<TAB>one
2<TAB>two\tescaped tab
3<TAB>\N
\.
\copy copied TO stdout
\copy (SELECT a * 10, upper(b) FROM copied ORDER BY a) TO stdout WITH (FORMAT csv, HEADER)
SELECT count(*) AS copied_rows FROM copied;

-- prepared statements (SQL level), larger results
PREPARE by_id(int) AS SELECT name FROM items WHERE id = $1;
EXECUTE by_id(7);
EXECUTE by_id(8);
DEALLOCATE by_id;
SELECT length(repeat('x', 300000)) AS big_len, md5(repeat('epoch', 100000)) AS big_md5;
SELECT md5(string_agg(g::text, ',')) AS agg FROM generate_series(1, 100000) g;
SELECT g, repeat(chr(65 + g % 26), g % 47) FROM generate_series(1, 2000) g WHERE g % 250 = 0;

-- session state
SET application_name = 'psql-script';
SHOW application_name;
SET search_path = pg_catalog, public;
SHOW search_path;
RESET ALL;
SHOW search_path;
\echo script done
""".replace("<TAB>", "\t")


def setup_module(pg):
    pg.create_database("psql_proxy")
    pg.create_database("psql_direct")
    pg.create_database("psql_notify")


def _run_script(env, port, dbname, path):
    cp = harness.psql("127.0.0.1", port, "-a", "-f", path, dbname=dbname, merge_stderr=True)
    return cp


def test_script_same_as_direct(env):
    px = env.proxy()
    path = env.tmpdir / "script.sql"
    path.write_text(SCRIPT)
    via_proxy = _run_script(env, px.port, "psql_proxy", path)
    direct = _run_script(env, env.pg.port, "psql_direct", path)
    out = via_proxy.stdout

    # the script itself did what it should (guards against a broken script
    # "passing" because both runs fail the same way)
    for expected in [
        "INSERT 0 50",
        "    50 | 1593.75 | item 1 | item 9",
        " inside_tx \n-----------\n         0",
        " after_rollback \n----------------\n             50",
        "ERROR:  division by zero",
        "ERROR:  current transaction is aborted, commands ignored until end of transaction block",
        " id100_after_failed_tx \n-----------------------\n                     0",
        " 200 | kept",
        " 201 | also kept",
        'ERROR:  relation "no_such_table" does not exist',
        'ERROR:  duplicate key value violates unique constraint "items_pkey"',
        'ERROR:  syntax error at or near "SELEC"',
        " first \n-------\n     1",
        " second \n--------\n      2",
        " third \n-------\n third",
        " price \n-------\n 99.00",
        " before error\n(1 row)",
        "NOTICE:  hello from plpgsql 42",
        "WARNING:  careful: warned",
        "COPY 3",
        "1\tone\n2\ttwo\\tescaped tab\n3\t\\N\n",
        "?column?,upper\n10,ONE\n20,TWO\tESCAPED TAB\n30,\n",
        " copied_rows \n-------------\n           3",
        " item 7\n(1 row)",
        " big_len | ",
        " 300000 | ",
        " psql-script",
        " pg_catalog, public",
        ' "$user", public',
        "script done",
    ]:
        assert expected in out, f"expected {expected!r} in psql output via proxy:\n{out}"
    assert "never" not in out.replace("SELECT 'never'", ""), out
    assert "grüße ✓ \"quoted\"" in out
    assert "<null>" in out

    assert via_proxy.returncode == direct.returncode == 0, (via_proxy.returncode,
                                                           direct.returncode)
    if out != direct.stdout:
        import difflib
        diff = "\n".join(difflib.unified_diff(direct.stdout.splitlines(), out.splitlines(),
                                              "direct", "via proxy", lineterm=""))
        raise AssertionError(f"psql output differs between direct and proxied runs:\n{diff}")


def test_multi_statement_c_option(env):
    """psql -c with several statements sends one Query message with all of them."""
    px = env.proxy()
    sql = "SELECT 1 AS a; SELECT 2 AS b; CREATE TEMP TABLE t(x int); INSERT INTO t VALUES (5); " \
          "SELECT x * 2 AS doubled FROM t"
    via = px.psql("-c", sql)
    direct = harness.psql("127.0.0.1", env.pg.port, "-c", sql)
    assert via.returncode == 0, via.stderr
    assert "doubled" in via.stdout and "10" in via.stdout, via.stdout
    assert via.stdout == direct.stdout, (via.stdout, direct.stdout)


def test_on_error_stop_exit_code(env):
    """psql exits 3 when a script fails with ON_ERROR_STOP; the error text is relayed."""
    px = env.proxy()
    cp = px.psql("-v", "ON_ERROR_STOP=1", input="SELECT 1;\nSELECT * FROM missing_tbl;\n"
                 "SELECT 'unreached';\n")
    assert cp.returncode == 3, (cp.returncode, cp.stdout, cp.stderr)
    assert 'relation "missing_tbl" does not exist' in cp.stderr, cp.stderr
    assert "unreached" not in cp.stdout


def test_listen_notify_psql(env):
    """Two psql sessions through the proxy: LISTEN in one, NOTIFY from the other;
    the listener prints the notification."""
    px = env.proxy()
    env_vars = harness.client_env(harness.DEFAULT_PASSWORD)
    conninfo = f"host=127.0.0.1 port={px.port} user={harness.DEFAULT_USER} dbname=psql_notify"
    listener = subprocess.Popen([harness.PSQL, "-X", "-d", conninfo], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=env_vars)
    try:
        listener.stdin.write("LISTEN epoch_channel;\nSELECT 'listening' AS state;\n")
        listener.stdin.flush()
        # wait until the listener's LISTEN is registered in PostgreSQL
        harness.wait_until(
            lambda: env.pg.sql("SELECT count(*) FROM pg_stat_activity "
                               "WHERE query LIKE 'SELECT ''listening''%'") == "1",
            timeout=10, message="the listener's LISTEN to be processed")
        cp = harness.psql("127.0.0.1", px.port, "-c", "NOTIFY epoch_channel, 'payload via proxy'",
                          dbname="psql_notify")
        assert cp.returncode == 0, cp.stderr
        time.sleep(0.3)
        out, _ = listener.communicate("SELECT 'after notify' AS state;\n", timeout=20)
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    assert listener.returncode == 0, out
    assert 'Asynchronous notification "epoch_channel" with payload "payload via proxy" ' \
           'received from server process with PID' in out, out
    assert "after notify" in out


def test_listen_notify_idle_delivery(env):
    """A notification reaches an idle listener (nothing sent by the client)
    promptly: the proxy must relay unsolicited server messages."""
    px = env.proxy()
    listener = env.closing(px.connect(dbname="psql_notify", autocommit=True))
    notifier = env.closing(px.connect(dbname="psql_notify", autocommit=True))
    listener.cursor().execute("LISTEN idle_channel")
    for i in range(3):
        notifier.cursor().execute("SELECT pg_notify('idle_channel', %s)", (f"msg-{i}",))
        deadline = time.monotonic() + 5
        got = []
        while not got and time.monotonic() < deadline:
            ready, _, _ = select.select([listener], [], [], max(0.0, deadline - time.monotonic()))
            if ready:
                listener.poll()
                got = list(listener.notifies)
                listener.notifies.clear()
        assert got, f"notification {i} not delivered to the idle listener within 5s"
        assert got[0].channel == "idle_channel" and got[0].payload == f"msg-{i}", got
    # the notifier's own backend PID is what PostgreSQL reports
    cur = notifier.cursor()
    cur.execute("SELECT pg_backend_pid()")
    assert got[0].pid == cur.fetchone()[0]
