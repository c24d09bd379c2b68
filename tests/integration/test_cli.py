"""The `epoch` command-line client (src/cli) end to end: every command in
text and in --format json against a proxy, exit codes (0 success, 1 error
with the server's SQLSTATE on stderr, 2 usage error with the usage on
stderr), the checkout state file, and the database state each command
leaves. The binary is found next to epoch-proxy (build/epoch, build-dev/epoch).

Every test works in a database of its own (the cluster is shared)."""

import json
import os
import subprocess

import harness

TIMEOUT = 60


# ---- helpers ------------------------------------------------------------------------------

def _binary(env):
    path = os.path.join(os.path.dirname(os.path.abspath(env.proxy_binary)), "epoch")
    assert os.access(path, os.X_OK), f"epoch CLI not built next to the proxy: {path}"
    return path


class Cli:
    """Runs the CLI against one proxy and database, with a state dir of its own."""

    def __init__(self, env, px, db):
        self.env, self.px, self.db = env, px, db
        self.bin = _binary(env)
        self.state = env.tmpdir / "state"

    def run(self, *args, conn=True, extra_env=None):
        cmd = [self.bin]
        if conn:
            cmd += ["-h", "127.0.0.1", "-p", str(self.px.port), "-U", harness.DEFAULT_USER,
                    "--dbname", self.db]
        cmd += [str(a) for a in args]
        e = harness.client_env(harness.DEFAULT_PASSWORD, {"XDG_STATE_HOME": str(self.state)})
        e.update(extra_env or {})
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              env=e, timeout=60)

    def ok(self, *args, **kw):
        cp = self.run(*args, **kw)
        assert cp.returncode == 0, f"epoch {args}: exit {cp.returncode}\n{cp.stdout}{cp.stderr}"
        return cp.stdout

    def json(self, *args, **kw):
        return json.loads(self.ok(*args, "--format", "json", **kw))

    def fail(self, *args, rc=1, sqlstate=None, text=None, **kw):
        cp = self.run(*args, **kw)
        assert cp.returncode == rc, f"epoch {args}: expected exit {rc}, got {cp.returncode}\n" \
                                    f"{cp.stdout}{cp.stderr}"
        if sqlstate:
            assert f"ERROR {sqlstate}:" in cp.stderr, cp.stderr
        if text:
            assert text in cp.stderr, cp.stderr
        if rc == 2:
            assert "usage: epoch" in cp.stderr, cp.stderr
        return cp


def _setup(env, name, rows=5):
    env.pg.create_database(name)
    px = env.proxy()
    c = env.closing(px.connect(dbname=name, autocommit=True))
    with c.cursor() as cur:
        cur.execute("CREATE TABLE kv (k int PRIMARY KEY, v text)")
        cur.execute("INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, %s) g", (rows,))
        cur.execute("CREATE TABLE other (id int PRIMARY KEY, x int)")
    return px, c, Cli(env, px, name)


def _all(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None


# ---- usage and connection -----------------------------------------------------------------

def test_cli_usage_errors(env):
    cli = Cli(env, None, "x")
    cp = cli.run(conn=False)
    assert cp.returncode == 2 and "no command given" in cp.stderr and "usage: epoch" in cp.stderr
    cp = cli.run("--help", conn=False)
    assert cp.returncode == 0 and "commands:" in cp.stdout and "branch create NAME" in cp.stdout
    cp = cli.run("branch", "--help", conn=False)
    assert cp.returncode == 0 and "epoch branch create NAME [--from REF]" in cp.stdout
    assert "--force" in cp.stdout and cp.stderr == ""
    cp = cli.run("log", "--help", conn=False)
    assert cp.returncode == 0 and "--oneline" in cp.stdout and "--max-count N" in cp.stdout
    cli.fail("frobnicate", rc=2, conn=False, text='unknown command "frobnicate"')
    cli.fail("branch", "frob", rc=2, conn=False, text='unknown subcommand "frob"')
    cli.fail("table", "drop", rc=2, conn=False, text="unknown subcommand")
    cli.fail("hwm", "frob", "x", "y", rc=2, conn=False)
    cli.fail("branch", "create", rc=2, conn=False, text="missing argument")
    cli.fail("branch", "rename", "a", "b", "c", rc=2, conn=False, text='unexpected argument "c"')
    cli.fail("status", "--bogus", rc=2, conn=False, text="unknown option --bogus")
    cli.fail("log", "-z", rc=2, conn=False, text="unknown option -z")
    cli.fail("log", "-n", rc=2, conn=False, text="needs an argument")
    cli.fail("status", "--format", "xml", rc=2, conn=False, text='unknown format "xml"')
    cli.fail("status", "--format", "csv", rc=2, conn=False, text="does not print --format csv")
    cli.fail("checkout", rc=2, conn=False)
    cli.fail("hwm", "set", "ns", "x", rc=2, conn=False)


def test_cli_connection(env):
    px, c, cli = _setup(env, "cli_conn")
    # flags
    assert cli.json("table", "list") == []
    # a postgres:// URL in -d (expand_dbname)
    url = f"postgresql://{harness.DEFAULT_USER}:{harness.DEFAULT_PASSWORD}@127.0.0.1:{px.port}/cli_conn"
    out = cli.run("-d", url, "query", "SELECT current_database() AS db", "--format", "csv",
                  conn=False)
    assert out.returncode == 0 and out.stdout == "db\ncli_conn\n", out
    # PG* variables only
    out = cli.run("query", "SELECT current_user AS u", "--format", "json", conn=False,
                  extra_env={"PGHOST": "127.0.0.1", "PGPORT": str(px.port),
                             "PGUSER": harness.DEFAULT_USER, "PGDATABASE": "cli_conn"})
    assert out.returncode == 0 and json.loads(out.stdout) == [{"u": harness.DEFAULT_USER}], out
    # nothing listens: exit 1, libpq's reason
    cp = cli.run("status", conn=False, extra_env={"PGHOST": "127.0.0.1",
                                                  "PGPORT": str(harness.free_port())})
    assert cp.returncode == 1 and cp.stderr.startswith("epoch: ") and cp.stdout == ""
    # an unknown --branch: the server's error with its SQLSTATE
    cli.fail("status", "--branch", "nope", sqlstate="42704", text='"nope"')
    # a server error with DETAIL/HINT lines
    cp = cli.fail("track", "nosuch", sqlstate="42P01")
    assert cp.stdout == ""


# ---- tables, branches, checkout, status, commit ------------------------------------------

def test_cli_track_branch_checkout_status_commit(env):
    px, c, cli = _setup(env, "cli_branch")
    assert cli.ok("track", "kv") == "tracking public.kv\n"
    assert cli.json("track", "other") == {"tracked": ["public.other"]}
    assert _all(c, "SELECT table_name FROM epoch.tables ORDER BY 1") == [("kv",), ("other",)]
    assert cli.ok("table", "list") == "public.kv (k)\npublic.other (id)\n"
    tl = cli.json("table", "list")
    assert [(t["schema"], t["table"], t["primary_key"]) for t in tl] == \
        [("public", "kv", ["k"]), ("public", "other", ["id"])]
    assert cli.json("untrack", "other") == {"untracked": "public.other"}
    assert [t["table"] for t in cli.json("table", "list")] == ["kv"]
    cli.fail("untrack", "other", sqlstate="42P01", text="is not tracked")

    assert cli.ok("commit", "-m", "root") .startswith("[main ")
    assert cli.ok("branch", "create", "feat") == "created branch feat\n"
    assert cli.json("branch", "create", "feat2", "--from", "feat") == {"created": "feat2"}
    cli.fail("branch", "create", "bad..name", sqlstate="22023")
    assert cli.ok("branch") == "* main\n  feat\n  feat2\n"
    assert cli.ok("branch", "list", "--graph") == "* main\n  +- feat\n  |  +- feat2\n"
    bl = {b["name"]: b for b in cli.json("branch", "list")}
    assert bl["main"]["current"] is True and bl["feat"]["current"] is False
    assert bl["feat2"]["parent"] == "feat" and bl["feat"]["status"] == "active"

    # checkout remembers the branch per connection
    assert cli.ok("checkout", "feat") == "Switched to branch 'feat'\n"
    assert cli.ok("checkout", "feat") == "Already on 'feat'\n"
    state = (env.tmpdir / "state" / "epoch" / "state").read_text()
    assert state.endswith("/cli_branch\tfeat\n") and state.count("\n") == 1, state
    assert cli.ok("status") == "On branch feat\nnothing to commit, working tree clean\n"
    cli.fail("checkout", "ghost", sqlstate="42704")
    assert cli.json("status")["branch"] == "feat"

    # a write on the branch through `epoch query`
    assert cli.ok("query", "UPDATE kv SET v = 'x' WHERE k <= 2") == "UPDATE 2\n"
    assert cli.ok("query", "INSERT INTO kv VALUES (100, 'new')") == "INSERT 0 1\n"
    assert _all(c, "SELECT v FROM kv WHERE k = 1") == [("v1",)], "main untouched"
    out = cli.ok("status")
    assert out.startswith("On branch feat\nChanges not committed:"), out
    assert "modified:   kv (1 inserted, 2 updated, 0 deleted)" in out
    assert cli.ok("status", "--short") == "M kv +1 ~2 -0\n"
    st = cli.json("status")
    assert st["clean"] is False and st["merge"] is None
    assert st["tables"] == [{"table": "kv", "inserted": 1, "updated": 2, "deleted": 0}]
    # --branch overrides the checked-out branch
    assert cli.json("status", "--branch", "main")["clean"] is True

    cli.fail("commit", rc=2, text="needs a message")
    out = cli.ok("commit", "-m", "two updates\n\nand an insert", "--author", "alice")
    assert out.startswith("[feat ") and out.endswith("] two updates\n"), out
    log = _all(c, "SELECT author, message, inserted, updated FROM epoch.commits WHERE branch = 'feat'")
    assert log == [("alice", "two updates\n\nand an insert", 1, 2)]
    assert cli.ok("commit", "-m", "again") == \
        "On branch feat\nnothing to commit, working tree clean\n"
    j = cli.json("commit", "-m", "again")
    assert j["created"] is False and j["branch"] == "feat" and len(j["id"]) == 64
    cli.ok("query", "DELETE FROM kv WHERE k = 5")
    j = cli.json("commit", "-m", "delete 5")
    assert j["created"] is True and j["short_id"] == j["id"][:12] and j["message"] == "delete 5"

    # rename follows the checkout; protect; delete
    assert cli.json("branch", "rename", "feat", "feature") == {"renamed": "feature"}
    assert cli.json("status")["branch"] == "feature"
    assert cli.ok("branch", "protect", "feature") == "branch feature is protected\n"
    assert "* feature (protected)" in cli.ok("branch")
    cli.fail("branch", "delete", "feature", "-f", sqlstate="42501")
    assert cli.json("branch", "protect", "feature", "--off") == \
        {"branch": "feature", "protected": False}
    assert cli.json("branch", "delete", "feat2", "-f") == {"deleted": "feat2"}
    cli.fail("branch", "delete", "feature", sqlstate="55000")
    assert cli.ok("branch", "delete", "feature", "--force") == "deleted branch feature\n"
    # the checked-out branch is gone: back on main
    assert cli.ok("status").startswith("On branch main\n")
    assert _all(c, "SELECT name FROM epoch.branches") == [("main",)]


# ---- history: log, show, tag, reset, revert, query -------------------------------------

def test_cli_log_show_tag_reset_revert_query(env):
    px, c, cli = _setup(env, "cli_log")
    cli.ok("track", "kv")
    root = cli.json("commit", "-m", "root")["id"]
    cli.ok("branch", "create", "f")
    cli.ok("checkout", "f")
    cli.ok("query", "UPDATE kv SET v = 'f1' WHERE k = 1")
    f1 = cli.json("commit", "-m", "f one", "--author", "bob")["id"]
    cli.ok("query", "UPDATE kv SET v = 'f2' WHERE k = 2")
    f2 = cli.json("commit", "-m", "f two")["id"]
    _all(c, "UPDATE kv SET v = 'm3' WHERE k = 3")
    m1 = cli.json("commit", "-m", "main three", "--branch", "main")["id"]
    merged = cli.json("merge", "f", "--branch", "main", "-m", "merge f")
    assert merged["status"] == "merged", merged
    mc = merged["commit"]

    out = cli.ok("log", "--oneline", "--branch", "main")
    lines = out.splitlines()
    assert lines[0] == f"{mc[:12]} (HEAD -> main) merge f", out
    assert [l.split(" ", 1)[0] for l in lines] == [x[:12] for x in (mc, m1, f2, f1, root)]
    assert cli.ok("log", "--oneline", "-n", "2", "--branch", "main").count("\n") == 2
    graph = cli.ok("log", "--oneline", "--graph", "--branch", "main")
    assert graph.splitlines() == [
        f"* {mc[:12]} (HEAD -> main) merge f",
        "|\\",
        f"* | {m1[:12]} main three",
        f"| * {f2[:12]} (f) f two",
        f"| * {f1[:12]} f one",
        "|/",
        f"* {root[:12]} root"], graph
    full = cli.ok("log", "main", "-n", "1")
    assert full.startswith(f"commit {mc} (main)\nMerge: {m1[:12]} {f2[:12]}\nAuthor: "), full
    assert "\n    merge f\n" in full
    # the checked-out branch's history only
    j = cli.json("log")
    assert [x["id"] for x in j] == [f2, f1, root]
    assert set(j[0]) == {"id", "short_id", "parents", "branch", "author", "message",
                         "created_at", "tables", "inserted", "updated", "deleted"}
    assert j[0]["parents"] == [f1] and j[0]["updated"] == 1 and j[0]["branch"] == "f"
    assert [x["id"] for x in cli.json("log", "--author", "bob")] == [f1]
    assert cli.json("log", "--since", "2999-01-01") == []
    assert [x["id"] for x in cli.json("log", "main", "--until", "2999-01-01", "-n", "1")] == [mc]
    tl = [x["id"] for x in cli.json("log", "--table", "public.kv")]
    assert tl[:2] == [f2, f1] and set(tl) <= {f2, f1, root}, tl
    assert cli.json("log", "--table", "nosuch") == []
    cli.fail("log", "-n", "x", rc=2, text="-n takes a number")
    cli.fail("log", "nosuchref", sqlstate="42704")

    out = cli.ok("show", f1[:8])
    assert out.startswith(f"commit {f1}\nAuthor: bob\n"), out
    assert " kv | 0 inserted, 1 updated, 0 deleted\n" in out
    assert "@@ update {\"k\": 1} @@\n-v: v1\n+v: f1\n" in out
    s = cli.json("show", f1)
    assert s["id"] == f1 and s["parents"] == [root] and s["author"] == "bob"
    assert s["tables"] == [{"table": "kv", "inserted": 0, "updated": 1, "deleted": 0}]
    assert s["changes"] == [{"table": "kv", "pk": {"k": 1}, "change": "update",
                             "column": "v", "old": "v1", "new": "f1"}]

    assert cli.ok("tag", "v1", f1) == f"Tagged {f1[:12]} as v1\n"
    assert cli.json("tag", "v2", "-m", "head of f") == {"tag": "v2", "commit": f2}
    assert cli.ok("tag") == "v1\nv2\n"
    tags = cli.json("tag", "list")
    assert [(t["name"], t["commit"], t["message"]) for t in tags] == \
        [("v1", f1, None), ("v2", f2, "head of f")]
    cli.fail("tag", "v1", sqlstate="42710")
    assert cli.ok("tag", "-d", "v2") == "Deleted tag 'v2'\n"
    assert cli.json("tag", "--delete", "v1") == {"deleted": "v1"}
    assert cli.json("tag") == []
    cli.fail("tag", "-d", rc=2)

    # revert f2 on f, then reset back to f2
    j = cli.json("revert", f2)
    assert j["message"].startswith('Revert "f two"') and j["branch"] == "f"
    assert _all(c, "SELECT v FROM \"@f\".kv WHERE k = 2") == [("v2",)]
    assert cli.ok("query", "SELECT v FROM kv WHERE k = 2", "--format", "csv") == "v\nv2\n"
    assert cli.ok("reset", f2) == f"HEAD of f is now at {f2[:12]}\n"
    assert cli.ok("query", "SELECT v FROM kv WHERE k = 2", "--format", "csv") == "v\nf2\n"
    cli.ok("query", "UPDATE kv SET v = 'dirty' WHERE k = 4")
    assert cli.json("reset", "HEAD") == {"branch": "f", "head": f2}
    assert cli.json("status")["clean"] is True
    cli.fail("reset", "nosuch", sqlstate="42704")
    cli.fail("revert", "nosuch", sqlstate="42704")

    # query: table, json, csv, --at
    out = cli.ok("query", "SELECT k, v FROM kv WHERE k <= 2 ORDER BY k")
    assert out == " k | v\n---+----\n 1 | f1\n 2 | f2\n(2 rows)\n", repr(out)
    assert cli.json("query", "SELECT k, v, k > 1 AS big, NULL::int AS n FROM kv WHERE k <= 2 "
                             "ORDER BY k") == [{"k": 1, "v": "f1", "big": False, "n": None},
                                               {"k": 2, "v": "f2", "big": True, "n": None}]
    assert cli.ok("query", "SELECT 'a,b' AS x, 'q\"' AS y", "--format", "csv") == \
        'x,y\n"a,b","q"""\n'
    assert cli.ok("query", "SELECT v FROM kv WHERE k = 1", "--at", root, "--format", "csv") == \
        "v\nv1\n"
    cli.fail("query", "UPDATE kv SET v = 'no'", "--at", root, sqlstate="25006")
    cli.fail("query", "SELECT * FROM nosuch", sqlstate="42P01")
    assert cli.json("query", "UPDATE kv SET v = v WHERE k < 3") == {"command": "UPDATE 2",
                                                                      "rows": 2}


# ---- diff, merge, conflicts, sync --------------------------------------------------------

def test_cli_diff_merge_conflicts_sync(env):
    px, c, cli = _setup(env, "cli_merge")
    cli.ok("track", "kv")
    root = cli.json("commit", "-m", "root")["id"]
    cli.ok("branch", "create", "f")
    cli.ok("checkout", "f")
    cli.ok("query", "UPDATE kv SET v = 'f1' WHERE k = 1")
    cli.ok("query", "INSERT INTO kv VALUES (9, 'nine')")
    cli.ok("query", "DELETE FROM kv WHERE k = 4")
    # no argument: the uncommitted changes
    out = cli.ok("diff")
    assert "diff kv\n" in out and "@@ update {\"k\": 1} @@\n-v: v1\n+v: f1\n" in out, out
    assert "@@ insert {\"k\": 9} @@\n+k: 9\n+v: nine\n" in out
    assert "@@ delete {\"k\": 4} @@\n-k: 4\n-v: v4\n" in out
    assert "\033[" not in out, "plain when piped"
    d = cli.json("diff", "main", "f")
    assert {"table": "kv", "pk": {"k": 1}, "change": "update", "column": "v", "old": "v1",
            "new": "f1"} in d
    assert len([r for r in d if r["change"] == "insert"]) == 2
    assert cli.json("diff", "main..f") == d
    assert cli.json("diff", "main") == d
    assert cli.json("diff", "main", "f", "--table", "kv") == d
    assert cli.json("diff", "main", "f", "--stat") == \
        [{"table": "kv", "inserted": 1, "updated": 1, "deleted": 1}]
    assert cli.ok("diff", "main", "f", "--stat") == \
        " kv | +1 ~1 -1\n 1 table changed, 1 inserted, 1 updated, 1 deleted\n"
    assert cli.ok("diff", "main..f", "--name-only") == "kv\n"
    assert cli.json("diff", "main..f", "--name-only") == ["kv"]
    cli.fail("diff", "main", "f", "--stat", "--name-only", rc=2)
    cli.fail("diff", "main", "nosuch", sqlstate="42704")
    cli.ok("commit", "-m", "f work")

    # a conflict: main changes k=1 too
    _all(c, "UPDATE kv SET v = 'm1' WHERE k = 1")
    dry = cli.json("merge", "f", "--dry-run", "--branch", "main")
    assert dry["status"] == "dry_run" and dry["conflicts"] == 1
    cp = cli.run("merge", "f", "--branch", "main")
    assert cp.returncode == 1 and "CONFLICT: merge" in cp.stdout and "epoch conflicts" in cp.stderr
    cli.ok("checkout", "main")
    out = cli.ok("status")
    assert out.startswith("On branch main\nYou have unmerged paths.\n"), out
    st = cli.json("status")
    assert st["merge"]["source"] == "f" and st["merge"]["unresolved"] == 1
    assert "U merge" in cli.ok("status", "--short")
    cf = cli.json("conflicts")
    assert len(cf) == 1 and cf[0]["pk"] == {"k": 1} and cf[0]["column"] == "v"
    assert (cf[0]["base"], cf[0]["ours"], cf[0]["theirs"], cf[0]["kind"]) == \
        ("v1", "m1", "f1", "modify_modify")
    out = cli.ok("conflicts", "show")
    assert "unresolved kv {\"k\": 1} v: modify_modify" in out and "theirs: f1" in out
    cli.fail("merge", "--continue", sqlstate="55000")
    cli.fail("merge", "f", sqlstate="55000")
    cli.fail("conflicts", "resolve", rc=2, text="--ours, --theirs or --value")
    cli.fail("conflicts", "resolve", "--value", "x", rc=2)
    cli.fail("merge", "--continue", "--abort", rc=2)
    r = cli.json("conflicts", "resolve", "kv", "--record", "1", "--field", "v", "--value", "mine")
    assert r["resolved"] == 1 and r["unresolved"] == 0, (r, cli.json("conflicts"))
    assert cli.json("conflicts")[0]["resolution"] == "value"
    res = cli.json("merge", "--continue", "-m", "merged f")
    assert res["status"] == "merged" and res["commit"]
    assert _all(c, "SELECT k, v FROM kv WHERE k IN (1, 4, 9) ORDER BY k") == \
        [(1, "mine"), (9, "nine")]
    assert cli.ok("status") == "On branch main\nnothing to commit, working tree clean\n"
    cli.fail("merge", "--abort", text="no merge in progress")
    assert cli.ok("merge", "f") == "Already up to date.\n"

    # abort, and resolve --theirs for a whole table
    cli.ok("checkout", "f")
    cli.ok("query", "UPDATE kv SET v = 'f2' WHERE k = 2")
    cli.ok("commit", "-m", "f2")
    _all(c, "UPDATE kv SET v = 'm2' WHERE k = 2")
    cli.ok("checkout", "main")
    cli.fail("merge", "f")
    assert cli.json("merge", "--abort")["status"] == "aborted"
    assert cli.json("status")["merge"] is None
    cli.run("merge", "f")
    assert cli.ok("conflicts", "resolve", "--theirs").startswith("resolved 1 conflicts")
    out = cli.ok("merge", "--continue")
    assert out.startswith("Merge made by"), out
    assert _all(c, "SELECT v FROM kv WHERE k = 2") == [("f2",)]

    # sync: main's new rows into a branch
    cli.ok("branch", "create", "s")
    _all(c, "UPDATE kv SET v = 'late' WHERE k = 3")
    assert cli.ok("query", "SELECT v FROM kv WHERE k = 3", "--branch", "s", "--format", "csv") \
        == "v\nv3\n"
    sy = cli.json("sync", "--branch", "s")
    assert sy["status"] in ("merged", "fast_forward"), sy
    assert cli.ok("query", "SELECT v FROM kv WHERE k = 3", "--branch", "s", "--format", "csv") \
        == "v\nlate\n"
    assert cli.ok("sync", "--branch", "s") == "Already up to date.\n"
    assert root


# ---- HWM store, namespaces, gc -----------------------------------------------------------

def test_cli_hwm_namespace_gc(env):
    px, c, cli = _setup(env, "cli_hwm")
    ns = cli.json("namespace", "create", "etl", "--description", "loads")
    assert ns["name"] == "etl" and ns["description"] == "loads" and ns["owned_by"] == "epoch"
    assert cli.ok("namespace", "create", "tmp") == "namespace tmp (owner epoch)\n"
    cli.fail("namespace", "create", "etl", sqlstate="42710")
    assert [n["name"] for n in cli.json("namespace", "list")] == ["etl", "tmp"]
    assert cli.ok("namespace").startswith("etl\tepoch\tloads\n")
    up = cli.json("namespace", "update", "tmp", "--name", "scratch", "--description", "d")
    assert up["name"] == "scratch" and up["description"] == "d"
    cli.fail("namespace", "update", "scratch", rc=2, text="nothing to update")

    h = cli.json("hwm", "set", "etl", "orders", "42", "--type", "id")
    assert (h["namespace"], h["name"], h["value"], h["type"]) == ("etl", "orders", 42, "id"), h
    assert cli.ok("hwm", "set", "etl", "since", "2026-01-01", "--type", "timestamp") == \
        'etl/since = "2026-01-01"\n'
    cli.fail("hwm", "set", "etl", "new", "1", sqlstate="22004")
    assert cli.ok("hwm", "set", "etl", "orders", '{"id": 43}') == 'etl/orders = {"id": 43}\n'
    assert cli.ok("hwm", "get", "etl", "orders") == '{"id": 43}\n'
    assert cli.json("hwm", "get", "etl", "since") == \
        {"namespace": "etl", "name": "since", "value": "2026-01-01"}
    cli.fail("hwm", "get", "etl", "nosuch", sqlstate="42704")
    assert cli.ok("hwm") == 'etl/orders = {"id": 43} (id)\netl/since = "2026-01-01" (timestamp)\n'
    assert [x["name"] for x in cli.json("hwm", "list", "etl")] == ["orders", "since"]
    assert cli.json("hwm", "list", "scratch") == []
    hist = cli.json("hwm", "history", "etl", "orders")
    assert [(x["action"], x["value"]) for x in hist] == [("Created", 42), ("Updated", {"id": 43})]
    assert len(cli.json("hwm", "history", "etl")) == 3
    assert "Updated etl/orders" in cli.ok("hwm", "history", "etl")
    assert cli.json("hwm", "delete", "etl", "since") == {"namespace": "etl", "deleted": "since"}
    assert cli.ok("hwm", "delete", "etl", "orders") == "deleted HWM etl/orders\n"
    assert cli.json("hwm") == []

    # roles
    env.pg.sql("DO $$ BEGIN CREATE ROLE cli_friend LOGIN; EXCEPTION WHEN duplicate_object THEN "
               "NULL; END $$")
    assert cli.json("namespace", "grant", "etl", "cli_friend", "DEVELOPER") == \
        {"namespace": "etl", "user": "cli_friend"}
    assert _all(c, "SELECT role FROM epoch.namespace_roles WHERE namespace = 'etl' "
                   "AND username = 'cli_friend'") == [("DEVELOPER",)]
    cli.fail("namespace", "grant", "etl", "cli_friend", "EMPEROR", sqlstate="22023")
    assert cli.ok("namespace", "revoke", "etl", "cli_friend") == \
        "revoked the role of cli_friend in etl\n"
    assert _all(c, "SELECT count(*) FROM epoch.namespace_roles WHERE username = 'cli_friend'") \
        == [(0,)]
    assert cli.json("namespace", "delete", "scratch") == {"namespace": "scratch",
                                                          "deleted": "scratch"}
    assert cli.ok("namespace", "delete", "etl") == "deleted namespace\n"
    assert cli.json("namespace", "list") == []

    # gc: a dry run deletes nothing
    cli.ok("track", "kv")
    _all(c, "UPDATE kv SET v = v || '!'")
    before = _all(c, "SELECT count(*) FROM epoch.h_1")[0][0] if _all(
        c, "SELECT to_regclass('epoch.h_1')")[0][0] else None
    g = cli.json("gc", "--dry-run", "--retention", "0 seconds")
    assert g["dry_run"] is True and isinstance(g["tables"], list)
    assert all(set(t) == {"table", "main_rows", "branch_rows"} for t in g["tables"])
    if before is not None:
        assert _all(c, "SELECT count(*) FROM epoch.h_1")[0][0] == before
    out = cli.ok("gc", "--retention", "0 seconds")
    assert "history rows of main" in out and out.startswith(("deleted", "kv:")), out
    cli.fail("gc", "--retention", "soon", sqlstate="22007")


def test_cli_colors_on_a_terminal(env):
    """diff is colored when stdout is a terminal, plain with NO_COLOR."""
    import pty
    px, c, cli = _setup(env, "cli_color")
    cli.ok("track", "kv")
    cli.ok("branch", "create", "f")
    cli.ok("query", "UPDATE kv SET v = 'x' WHERE k = 1", "--branch", "f")

    def on_tty(extra=None):
        master, slave = pty.openpty()
        e = harness.client_env(harness.DEFAULT_PASSWORD, {"XDG_STATE_HOME": str(cli.state)})
        e.update(extra or {})
        cmd = [cli.bin, "-h", "127.0.0.1", "-p", str(px.port), "-U", harness.DEFAULT_USER,
               "-d", cli.db, "diff", "main", "f"]
        p = subprocess.run(cmd, stdout=slave, stderr=subprocess.PIPE, env=e, timeout=30)
        os.close(slave)
        data = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        os.close(master)
        assert p.returncode == 0, p.stderr
        return data.decode()

    out = on_tty()
    assert "\033[31m-v: v1\033[m" in out and "\033[32m+v: x\033[m" in out, repr(out)
    assert "\033[" not in on_tty({"NO_COLOR": "1"})
    cp = cli.run("tag", "--help", conn=False)
    assert "-d, --delete" in cp.stdout and "-d, --dbname" not in cp.stdout
