"""COPY through the proxy: 100k rows in and out, byte-identical to PostgreSQL's
own output; binary COPY; errors in the middle of a COPY IN stream."""

import datetime
import io

import psycopg2

import harness

DB = "copydb"
ROWS = 100_000
TABLE_DDL = ("CREATE TABLE {name} (id int PRIMARY KEY, name text, amount numeric(12,2), "
             "flag boolean, note text, created timestamp, blob bytea)")


def setup_module(pg):
    pg.create_database(DB)


def _escape(s):
    return (s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r"))


def _row(i):
    """One row exactly as PostgreSQL's COPY TO (text format) prints it."""
    base = datetime.datetime(2024, 1, 1)
    name = _escape(f"name {i} grüße\t<tab> back\\slash \"q\" 'a'" if i % 97 == 0 else f"name {i}")
    note = "\\N" if i % 10 == 0 else _escape(f"note\nline2 {i * 7}" if i % 333 == 0 else f"n{i}")
    amount = f"{(i * 37) % 100000 / 100:.2f}"
    flag = "t" if i % 3 else "f"
    created = (base + datetime.timedelta(seconds=i * 17)).strftime("%Y-%m-%d %H:%M:%S")
    blob = "\\\\x" + bytes([(i * 7 + k) % 256 for k in range(i % 9)]).hex()
    return f"{i}\t{name}\t{amount}\t{flag}\t{note}\t{created}\t{blob}\n"


def _write_data(path, rows, bad_line=None):
    with open(path, "w", encoding="utf-8", newline="") as f:
        for i in range(1, rows + 1):
            if bad_line is not None and i == bad_line:
                f.write("abc\tbad row\t1.00\tt\t\\N\t2024-01-01 00:00:00\t\\\\x00\n")
            else:
                f.write(_row(i))
    return path


def _copy_out(port, sql):
    cp = harness.psql("127.0.0.1", port, "-v", "ON_ERROR_STOP=1", "-c", sql, dbname=DB,
                      text=False)
    assert cp.returncode == 0, cp.stderr.decode(errors="replace")
    return cp.stdout


def test_copy_100k_in_and_out_identical(env):
    px = env.proxy()
    env.pg.sql(TABLE_DDL.format(name="copy_big"), db=DB, as_role="epoch")
    data = _write_data(env.tmpdir / "rows.tsv", ROWS)
    expected_hash = harness.sha256_file(data)

    cp = px.psql("-v", "ON_ERROR_STOP=1", "-c", f"\\copy copy_big FROM '{data}'", dbname=DB)
    assert cp.returncode == 0, cp.stderr
    assert f"COPY {ROWS}" in cp.stdout, cp.stdout
    assert env.pg.sql("SELECT count(*) FROM copy_big", db=DB) == str(ROWS)

    sql = "COPY (SELECT * FROM copy_big ORDER BY id) TO STDOUT"
    via_proxy = _copy_out(px.port, sql)
    direct = _copy_out(env.pg.port, sql)
    assert len(via_proxy) == len(direct), (len(via_proxy), len(direct))
    assert harness.sha256_bytes(via_proxy) == harness.sha256_bytes(direct), \
        "COPY TO output through the proxy differs from PostgreSQL's"
    assert harness.sha256_bytes(direct) == expected_hash, \
        "round trip changed the data (test data not in canonical COPY form?)"

    # binary format and CSV as well
    for fmt in ("binary", "csv, HEADER"):
        sql = f"COPY (SELECT * FROM copy_big ORDER BY id) TO STDOUT (FORMAT {fmt})"
        via_proxy = _copy_out(px.port, sql)
        direct = _copy_out(env.pg.port, sql)
        assert harness.sha256_bytes(via_proxy) == harness.sha256_bytes(direct), \
            f"COPY TO ({fmt}) output through the proxy differs from PostgreSQL's"
        assert len(direct) > 1_000_000


def test_copy_from_stdin_psycopg2(env):
    """COPY FROM STDIN / TO STDOUT with psycopg2 (large CopyData chunks)."""
    px = env.proxy()
    env.pg.sql(TABLE_DDL.format(name="copy_py"), db=DB, as_role="epoch")
    payload = "".join(_row(i) for i in range(1, 20_001)).encode()
    conn = env.closing(px.connect(dbname=DB))
    cur = conn.cursor()
    cur.copy_expert("COPY copy_py FROM STDIN", io.BytesIO(payload), size=1 << 20)
    assert cur.rowcount == 20_000
    conn.commit()
    out = io.BytesIO()
    cur.copy_expert("COPY (SELECT * FROM copy_py ORDER BY id) TO STDOUT", out)
    assert out.getvalue() == payload
    cur.execute("SELECT count(*) FROM copy_py")
    assert cur.fetchone()[0] == 20_000


def test_copy_error_mid_stream_session_usable(env):
    """A bad row in the middle of a 60k-row COPY: the error comes back (while
    the client is still sending data) and the same session keeps working."""
    px = env.proxy()
    env.pg.sql(TABLE_DDL.format(name="copy_err"), db=DB, as_role="epoch")
    bad = _write_data(env.tmpdir / "bad.tsv", 60_000, bad_line=30_001)
    script = env.tmpdir / "copy_err.sql"
    script.write_text(
        f"\\copy copy_err FROM '{bad}'\n"
        "SELECT count(*) AS rows_after_error FROM copy_err;\n"
        "SELECT 'still usable' AS state;\n"
        "BEGIN;\n"
        "INSERT INTO copy_err (id, name) VALUES (1, 'after');\n"
        "COMMIT;\n"
        "SELECT name FROM copy_err WHERE id = 1;\n")
    cp = px.psql("-f", script, dbname=DB, merge_stderr=True)
    out = cp.stdout
    assert 'ERROR:  invalid input syntax for type integer: "abc"' in out, out
    assert "COPY copy_err, line 30001" in out, out
    assert "rows_after_error \n------------------\n                0" in out, out
    assert "still usable" in out, out
    assert " after\n(1 row)" in out, out
    assert cp.returncode == 0, out


def test_copy_fail_from_client(env):
    """The client aborts a COPY FROM STDIN (CopyFail): error, rollback, usable."""
    px = env.proxy()
    env.pg.sql(TABLE_DDL.format(name="copy_fail"), db=DB, as_role="epoch")

    class Exploding(io.RawIOBase):
        def __init__(self):
            self.chunks = 0

        def readable(self):
            return True

        def read(self, size=-1):
            self.chunks += 1
            if self.chunks > 5:
                raise RuntimeError("client gave up")
            return "".join(_row(i) for i in range(self.chunks * 1000, self.chunks * 1000 + 500))

    conn = env.closing(px.connect(dbname=DB))
    cur = conn.cursor()
    try:
        cur.copy_expert("COPY copy_fail FROM STDIN", Exploding(), size=65536)
        raise AssertionError("copy_expert should have failed")
    except (psycopg2.Error, RuntimeError) as e:
        err = e
    assert isinstance(err, psycopg2.errors.QueryCanceled) or "client gave up" in str(err), \
        repr(err)
    conn.rollback()
    cur.execute("SELECT count(*) FROM copy_fail")
    assert cur.fetchone()[0] == 0
    cur.execute("SELECT 'usable'")
    assert cur.fetchone()[0] == "usable"


def test_copy_error_inside_transaction(env):
    """COPY fails inside an explicit transaction: the transaction is aborted,
    ROLLBACK works, earlier work of the transaction is gone."""
    px = env.proxy()
    env.pg.sql("CREATE TABLE copy_tx (a int)", db=DB, as_role="epoch")
    conn = env.closing(px.connect(dbname=DB))
    cur = conn.cursor()
    cur.execute("INSERT INTO copy_tx VALUES (1)")
    try:
        cur.copy_expert("COPY copy_tx FROM STDIN", io.BytesIO(b"2\n3\nnot-a-number\n4\n"))
        raise AssertionError("COPY with a bad row should have failed")
    except psycopg2.errors.InvalidTextRepresentation as e:
        assert e.pgcode == "22P02"
    cur2 = conn.cursor()
    try:
        cur2.execute("SELECT 1")
        raise AssertionError("statement in an aborted transaction should fail")
    except psycopg2.errors.InFailedSqlTransaction:
        pass
    conn.rollback()
    cur2.execute("SELECT count(*) FROM copy_tx")
    assert cur2.fetchone()[0] == 0
