"""History through the proxy: commits (ids, parents, stats, consistency under
concurrent writers), refs (branch, tag, commit prefix, HEAD, ~N, ^, @{time}),
diff, diff_stat, status, tags, branch_create from any ref, and a seeded random
differential test against an in-memory model.

Every test works in a database of its own (the cluster is shared)."""

import datetime
import hashlib
import os
import random
import threading
import time

import psycopg2

import harness

TIMEOUT = 120


# ---- helpers ------------------------------------------------------------------------------

def _db(env, name):
    env.pg.create_database(name)
    return name


def _conn(env, px, db, branch=None):
    return env.closing(px.connect(dbname=f"{db}@{branch}" if branch else db, autocommit=True))


def _all(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None


def _one(conn, sql, params=None):
    rows = _all(conn, sql, params)
    assert len(rows) == 1 and len(rows[0]) == 1, f"{sql}: expected one value, got {rows}"
    return rows[0][0]


def _err(conn, sql, sqlstate, message=None, params=None):
    with conn.cursor() as cur:
        try:
            cur.execute(sql, params)
        except psycopg2.Error as e:
            assert e.pgcode == sqlstate, f"{sql}: expected {sqlstate}, got {e.pgcode}: {e.pgerror}"
            if message is not None:
                got = (e.diag.message_primary or "") + " " + (e.diag.message_detail or "")
                assert message in got, f"{sql}: expected {message!r} in {got!r}"
            return e
        rows = cur.fetchall() if cur.description else None
    raise AssertionError(f"{sql}: expected error {sqlstate}, got success {rows!r}")


def _notices(conn):
    out = list(conn.notices)
    del conn.notices[:]
    return out


def _kv_setup(env, px, db):
    c = _conn(env, px, db)
    _all(c, "CREATE TABLE kv (k int PRIMARY KEY, v text, n numeric)")
    _all(c, "INSERT INTO kv SELECT g, 'v' || g, g FROM generate_series(1, 10) g")
    assert _one(c, "SELECT epoch.track('kv')") == "public.kv"
    return c


def _diff(conn, a, b, table=None):
    if table:
        return _all(conn, "SELECT table_name, pk::text, change, column_name, old_value, new_value "
                          "FROM epoch.diff(%s, %s, %s)", (a, b, table))
    return _all(conn, "SELECT table_name, pk::text, change, column_name, old_value, new_value "
                      "FROM epoch.diff(%s, %s)", (a, b))


def _reference_commit_id(conn, cid):
    """The id docs/history.md defines, recomputed apart from epoch.commit():
    the sha-256 of parents, branch, author, time (UTC, µs), message and, table
    by table, each changed key with its new row (or "deleted"), the changes
    taken from the general diff generator (epoch._diff_rows) between the
    commit and its first parent."""
    parents, branch, author, created, message = _all(
        conn, "SELECT parents, branch_name, author, created_at, message FROM epoch.commit WHERE id = %s",
        (cid,))[0]
    assert parents, f"{cid}: a root commit has no parent state to compare with"
    body = ""
    for header, sql in _all(conn, """
            SELECT format(E'table %%s.%%s\n', t.schema_name, t.table_name),
                   epoch._diff_rows(t, a.branch_id, a.base_seq, a.point, b.branch_id, b.base_seq, b.point)
              FROM epoch.tracked t, epoch._resolve(%s) a, epoch._resolve(%s) b
             ORDER BY t.schema_name, t.table_name""", (parents[0], cid)):
        rows = _one(conn, "SELECT string_agg(d.pk::text || CASE WHEN d.b_found THEN ' ' || d.b_v::text "
                          "ELSE ' deleted' END, E'\n' ORDER BY d.pk) FROM (" + sql + ") d")
        if rows is not None:
            body += header + rows + "\n"
    ts = created.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    text = f"parents {' '.join(parents)}\nbranch {branch}\nauthor {author}\ntime {ts}\nmessage {message}\n{body}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _assert_commit_matches_parent(conn, cid):
    """A commit's id is its content hash and its stats are diff_stat(parent, commit)."""
    assert cid == _reference_commit_id(conn, cid), f"commit {cid}: id is not the hash of its changes"
    parent = _one(conn, "SELECT parents[1] FROM epoch.commit WHERE id = %s", (cid,))
    stats = _all(conn, "SELECT table_name, inserted, updated, deleted FROM epoch.show(%s) "
                       "WHERE table_name IS NOT NULL ORDER BY 1", (cid,))
    assert stats == _all(conn, "SELECT * FROM epoch.diff_stat(%s, %s) ORDER BY 1", (parent, cid)), cid


# ---- commits ------------------------------------------------------------------------------

def test_commit_on_main_and_branch(env):
    db = _db(env, "th_commit")
    px = env.proxy()
    m = _kv_setup(env, px, db)
    # the root of main: the tables as tracked, even with no change since
    root = _one(m, "SELECT epoch.commit('root')")
    assert len(root) == 64 and all(ch in "0123456789abcdef" for ch in root), root
    assert _all(m, "SELECT parents, branch, tables FROM epoch.commits") == [([], "main", 0)]
    # nothing to commit: a NOTICE and the head
    _notices(m)
    assert _one(m, "SELECT epoch.commit('again')") == root
    assert any('nothing to commit on branch "main"' in n for n in _notices(m))
    assert _one(m, "SELECT count(*) FROM epoch.commits") == 1

    _all(m, "UPDATE kv SET v = 'm2' WHERE k = 2")
    assert _all(m, "SELECT * FROM epoch.status") == [("kv", 0, 1, 0)]
    c2 = _one(m, "SELECT epoch.commit('main change', author => 'alice')")
    assert _all(m, "SELECT parents, author, message, inserted, updated, deleted FROM epoch.commits "
                   "WHERE id = %s", (c2,)) == [([root], "alice", "main change", 0, 1, 0)]
    assert _all(m, "SELECT * FROM epoch.status") == []
    assert _one(m, "SELECT head FROM epoch.branches WHERE name = 'main'") == c2

    assert _one(m, "SELECT epoch.branch_create('f')") == "f"
    assert _one(m, "SELECT head FROM epoch.branches WHERE name = 'f'") == c2
    f = _conn(env, px, db, "f")
    _all(f, "UPDATE kv SET v = 'f3' WHERE k = 3")
    _all(f, "DELETE FROM kv WHERE k = 4")
    _all(f, "INSERT INTO kv VALUES (11, 'new', 11)")
    assert _all(f, "SELECT * FROM epoch.status") == [("kv", 1, 1, 1)]
    # main's status is main's: unchanged by the branch
    assert _all(m, "SELECT * FROM epoch.status") == []
    f1 = _one(f, "SELECT epoch.commit('f work')")
    row = _all(f, "SELECT id, parents, branch, author, message, table_name, inserted, updated, deleted "
                  "FROM epoch.show('HEAD')")
    assert row == [(f1, [c2], "f", env.pg.superuser if hasattr(env.pg, "superuser") else row[0][3],
                    "f work", "kv", 1, 1, 1)], row
    assert _one(f, "SELECT author FROM epoch.commits WHERE id = %s", (f1,)) == \
        _one(f, "SELECT session_user")
    # a change changed back is no change
    _all(f, "UPDATE kv SET v = 'tmp' WHERE k = 5")
    _all(f, "UPDATE kv SET v = 'v5' WHERE k = 5")
    assert _all(f, "SELECT * FROM epoch.status") == []
    _notices(f)
    assert _one(f, "SELECT epoch.commit('no-op')") == f1
    assert any('nothing to commit on branch "f"' in n for n in _notices(f))
    # commits of different content have different ids; same id space for prefixes
    assert len({root, c2, f1}) == 3


def test_commit_ids_are_content_hashes(env):
    """Every path of epoch.commit() (main since its last commit, a branch's
    first commit since main's state, with main changed between the two
    bases, a branch since its own commit, a branch made from another branch)
    gives the id docs/history.md defines and the stats of diff_stat(parent,
    commit): keys changed and changed back, deleted and re-inserted, rows
    deleted on a branch, main's rows showing through, composite keys and
    values that need quoting in an array's text."""
    db = _db(env, "th_commit_ids")
    px = env.proxy()
    m = _kv_setup(env, px, db)
    _all(m, "CREATE TABLE public.pair (a text, b int, note text, PRIMARY KEY (a, b))")
    _all(m, "INSERT INTO pair VALUES ('x y', 1, 'a, b'), ('q\"uote', 2, NULL), ('NULL', 3, ''), "
            "('z', 10, '{brace}'), ('z', 9, 'back\\slash')")
    _all(m, "SELECT epoch.track('public.pair')")
    direct = env.closing(env.pg.admin_connect(db))
    direct.autocommit = True
    commits = []
    root = _one(m, "SELECT epoch.commit('root')")
    # main, through the proxy and straight to PostgreSQL
    _all(m, "UPDATE kv SET v = 'm1' WHERE k = 1")
    _all(direct, "DELETE FROM kv WHERE k = 2")
    _all(direct, "INSERT INTO kv VALUES (20, 'twenty', 20.5)")
    _all(m, "UPDATE pair SET note = 'n o' WHERE a = 'z'")
    _all(m, "UPDATE kv SET v = 'tmp' WHERE k = 3")
    _all(m, "UPDATE kv SET v = 'v3' WHERE k = 3")          # changed back: no change
    commits.append(_one(m, "SELECT epoch.commit('main 1')"))
    # main changes after its commit, before the branch: its first commit has them
    _all(m, "UPDATE kv SET n = NULL WHERE k = 4")
    _all(m, "SELECT epoch.branch_create('f')")
    f = _conn(env, px, db, "f")
    _all(m, "UPDATE kv SET v = 'main later' WHERE k = 5")   # after the base: not the branch's
    _all(f, "UPDATE kv SET v = 'f6' WHERE k = 6")
    _all(f, "DELETE FROM kv WHERE k = 7")
    _all(f, "INSERT INTO kv VALUES (21, NULL, NULL)")
    _all(f, "DELETE FROM pair WHERE b = 1")
    _all(f, "INSERT INTO pair VALUES ('x y', 1, 'back, again')")   # deleted and re-inserted: update
    _all(f, "INSERT INTO pair VALUES ('new', 0, 'NULL')")
    commits.append(_one(f, "SELECT epoch.commit('f 1')"))
    assert _all(f, "SELECT inserted, updated, deleted FROM epoch.commits WHERE id = %s",
                (commits[-1],)) == [(2, 3, 1)]
    # the branch since its own commit: rows it holds, rows main shows through
    _all(f, "UPDATE kv SET v = 'f6b' WHERE k = 6")        # its row, again
    _all(f, "UPDATE kv SET v = 'f8' WHERE k = 8")         # main's row, first time
    _all(f, "INSERT INTO kv VALUES (7, 'back', 7)")        # its deleted row comes back
    _all(f, "DELETE FROM kv WHERE k = 21")                 # its inserted row goes
    _all(f, "UPDATE kv SET v = 'x' WHERE k = 9")
    _all(f, "UPDATE kv SET v = 'v9' WHERE k = 9")          # changed back: no change
    _all(f, "DELETE FROM pair WHERE a = 'NULL'")
    commits.append(_one(f, "SELECT epoch.commit('f 2')"))
    assert _all(f, "SELECT inserted, updated, deleted FROM epoch.commits WHERE id = %s",
                (commits[-1],)) == [(1, 2, 2)]
    assert _all(f, "SELECT * FROM epoch.status") == []
    # a branch of a branch (the general diff generator)
    _all(f, "UPDATE kv SET v = 'uncommitted' WHERE k = 10")
    _all(m, "SELECT epoch.branch_create('g', \"from\" => 'f')")
    g = _conn(env, px, db, "g")
    _all(g, "UPDATE pair SET note = NULL WHERE a = 'new'")
    commits.append(_one(g, "SELECT epoch.commit('g 1')"))
    assert _one(g, "SELECT parents FROM epoch.commits WHERE id = %s", (commits[-1],)) == [commits[-2]]
    _all(g, "UPDATE kv SET v = 'g' WHERE k = 10")
    commits.append(_one(g, "SELECT epoch.commit('g 2')"))
    # main again, after all that
    _all(direct, "UPDATE pair SET b = 11 WHERE b = 10")    # a key moved: a delete and an insert
    commits.append(_one(m, "SELECT epoch.commit('main 2')"))
    assert _all(m, "SELECT inserted, updated, deleted FROM epoch.commits WHERE id = %s",
                (commits[-1],)) == [(1, 2, 1)]
    assert len(set(commits + [root])) == len(commits) + 1
    for cid in commits:
        _assert_commit_matches_parent(m, cid)
    # reads by key at the commits (both key columns given, one, none)
    at = _conn(env, px, db)
    for cid, xy, nul, z in ((commits[0], "a, b", "", ["n o", "n o"]),
                            (commits[1], "back, again", "", ["n o", "n o"]),
                            (commits[2], "back, again", None, ["n o", "n o"])):
        _all(at, "SET epoch.as_of = %s", (cid,))
        assert _all(at, "SELECT note FROM pair WHERE a = 'x y' AND b = 1") == [(xy,)], cid
        assert _all(at, "SELECT note FROM pair WHERE b = 3 AND a = 'NULL'") == \
            ([] if nul is None else [(nul,)]), cid
        assert [r[0] for r in _all(at, "SELECT note FROM pair WHERE a = 'z' ORDER BY b")] == z, cid
        assert _one(at, "SELECT count(*) FROM pair") == (4 if nul is None else 5) + (cid != commits[0]), cid


def test_commit_errors(env):
    db = _db(env, "th_commit_err")
    px = env.proxy()
    m = _kv_setup(env, px, db)
    _err(m, "SELECT epoch.commit('')", "22023", "a commit needs a message")
    _err(m, "SELECT epoch.commit('  ')", "22023", "a commit needs a message")
    _err(m, "SELECT epoch.commit(NULL)", "22023", "a commit needs a message")
    _err(m, "SELECT epoch.commit('x', author => '')", "22023", "author")
    _all(m, "SELECT epoch.branch_create('b')")
    # read-only time travel
    t = _conn(env, px, db)
    _all(t, "SET epoch.as_of = 'b'")
    _err(t, "SELECT epoch.commit('x')", "25006", "epoch.as_of")
    # isolation other than READ COMMITTED
    r = _conn(env, px, db)
    r.autocommit = False
    with r.cursor() as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    _err(r, "SELECT epoch.commit('x')", "0A000", "READ COMMITTED")
    r.rollback()
    # inside an aborted transaction: PostgreSQL's own refusal, nothing written
    r.autocommit = False
    with r.cursor() as cur:
        cur.execute("UPDATE kv SET v = 'zz' WHERE k = 1")
        try:
            cur.execute("SELECT 1/0")
        except psycopg2.Error:
            pass
    _err(r, "SELECT epoch.commit('x')", "25P02")
    r.rollback()
    # a session whose branch was deleted
    g = _conn(env, px, db, "b")
    _all(m, "SELECT epoch.branch_delete('b')")
    _err(g, "SELECT epoch.commit('x')", "42704", 'branch "b" does not exist')
    assert _one(m, "SELECT count(*) FROM epoch.commits") == 0
    # rolled back with the client's transaction
    r.autocommit = False
    with r.cursor() as cur:
        cur.execute("SELECT epoch.commit('rolled back')")
    r.rollback()
    assert _one(m, "SELECT count(*) FROM epoch.commits") == 0


def test_commit_is_consistent_with_concurrent_writers(env):
    """Writers on the branch each move one unit between two rows in a
    transaction that sleeps before committing: a commit waits for them, so
    every commit's state sums to the same total (no half-written transfer)."""
    db = _db(env, "th_commit_conc")
    px = env.proxy()
    m = _conn(env, px, db)
    _all(m, "CREATE TABLE acct (id int PRIMARY KEY, bal int NOT NULL)")
    _all(m, "INSERT INTO acct SELECT g, 100 FROM generate_series(1, 4) g")
    _all(m, "SELECT epoch.track('acct')")
    _all(m, "SELECT epoch.branch_create('w')")
    stop = threading.Event()
    errors = []

    def writer(seed):
        rnd = random.Random(seed)
        c = px.connect(dbname=f"{db}@w")
        try:
            while not stop.is_set():
                a, b = sorted(rnd.sample(range(1, 5), 2))  # one lock order: no deadlock
                d = rnd.choice([1, -1])
                with c.cursor() as cur:
                    cur.execute("UPDATE acct SET bal = bal - %s WHERE id = %s", (d, a))
                    time.sleep(0.01)
                    cur.execute("UPDATE acct SET bal = bal + %s WHERE id = %s", (d, b))
                c.commit()
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        finally:
            c.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
    for th in threads:
        th.start()
    w = _conn(env, px, db, "w")
    commits = []
    try:
        for i in range(12):
            time.sleep(0.03)
            cid = _one(w, "SELECT epoch.commit(%s)", (f"c{i}",))
            if cid and cid not in commits:
                commits.append(cid)
    finally:
        stop.set()
        for th in threads:
            th.join()
    assert not errors, [repr(e) for e in errors]
    assert len(commits) >= 5, commits
    # every commit, compared with main (all 100): changes sum to zero
    for cid in commits:
        rows = _all(w, "SELECT pk->>'id', old_value::int, new_value::int FROM epoch.diff('main', %s) "
                       "WHERE column_name = 'bal'", (cid,))
        assert sum(n - o for _, o, n in rows) == 0, (cid, rows)
    # and the stats of each commit match the diff with its parent
    for cid in commits[1:]:
        upd = _one(w, "SELECT updated FROM epoch.commits WHERE id = %s", (cid,))
        parent = _one(w, "SELECT parents[1] FROM epoch.commits WHERE id = %s", (cid,))
        stat = _all(w, "SELECT updated FROM epoch.diff_stat(%s, %s)", (parent, cid))
        assert stat == [(upd,)], (cid, upd, stat)


# ---- refs ---------------------------------------------------------------------------------

def test_refs(env):
    db = _db(env, "th_refs")
    px = env.proxy()
    m = _kv_setup(env, px, db)
    c0 = _one(m, "SELECT epoch.commit('root')")
    _all(m, "SELECT epoch.branch_create('r')")
    r = _conn(env, px, db, "r")
    ids = []
    for i in range(3):
        _all(r, "UPDATE kv SET v = %s WHERE k = 1", (f"r{i}",))
        ids.append(_one(r, "SELECT epoch.commit(%s)", (f"r{i}",)))
        time.sleep(0.02)

    def show(ref):
        return _one(r, "SELECT DISTINCT id FROM epoch.show(%s)", (ref,))

    assert show("HEAD") == ids[2]
    assert show("r") == ids[2]
    assert show("r~0") == ids[2]
    assert show("r~1") == ids[1]
    assert show("r^") == ids[1]
    assert show("r^^") == ids[0]
    assert show("HEAD~2") == ids[0]
    assert show("r~3") == c0          # the branch's first commit's parent: main's root
    assert show(ids[1][:4]) == ids[1] or _one(
        r, "SELECT count(*) FROM epoch.commits WHERE id LIKE %s", (ids[1][:4] + "%",)) > 1
    assert show(ids[1][:12]) == ids[1]
    assert show(ids[1]) == ids[1]
    assert show(ids[2][:10] + "~1") == ids[1]
    # @{time} on a branch: its last commit at or before the time
    t1 = _one(r, "SELECT created_at FROM epoch.commits WHERE id = %s", (ids[1],))
    assert show(f"r@{{{t1.isoformat()}}}") == ids[1]
    _err(r, "SELECT * FROM epoch.show('r@{2000-01-01 00:00:00+00}')", "42704", "no commit at or before")
    # main@{time} is a state of main, not a commit
    _err(r, "SELECT * FROM epoch.show('main@{now}')", "42704", "names no commit")
    # errors
    _err(r, "SELECT * FROM epoch.show('nope')", "42704", 'ref "nope" does not exist')
    _err(r, "SELECT * FROM epoch.show('abc')", "42704", 'ref "abc" does not exist')  # < 4 hex
    _err(r, "SELECT * FROM epoch.show('r~9')", "42704", "past the first commit")
    _err(r, "SELECT * FROM epoch.show('r^2')", "42704", "no parent number 2")
    _err(r, "SELECT * FROM epoch.show('')", "22023", "empty")
    _err(r, "SELECT * FROM epoch.show(NULL)", "22023", "empty")
    _err(r, "SELECT * FROM epoch.show('r@{not a time}')", "22007", "invalid time")
    _err(r, "SELECT * FROM epoch.show('r~x')", "22023", "invalid ref")
    _err(r, "SELECT * FROM epoch.show('a@b')", "22023", "invalid ref")
    _err(r, f"SELECT * FROM epoch.show('{ids[0][:8]}@{{now}}')", "42704", "not a branch")
    _all(m, "SELECT epoch.branch_create('empty')")
    _err(r, "SELECT * FROM epoch.show('main~1')", "42704", "past the first commit")
    # a branch made from main without commits names main's head
    assert show("empty") == c0


def test_ambiguous_commit_prefix(env):
    db = _db(env, "th_ambig")
    px = env.proxy()
    m = _kv_setup(env, px, db)
    _one(m, "SELECT epoch.commit('root')")
    # make commits until two share their first four hex digits (birthday bound:
    # a few hundred); each is a one-row change on a branch
    _all(m, "SELECT epoch.branch_create('many')")
    b = _conn(env, px, db, "many")
    seen = {}
    pair = None
    for i in range(3000):
        _all(b, "UPDATE kv SET n = %s WHERE k = 1", (i,))
        cid = _one(b, "SELECT epoch.commit(%s)", (f"c{i}",))
        if cid[:4] in seen:
            pair = (seen[cid[:4]], cid)
            break
        seen[cid[:4]] = cid
    assert pair, "no two commit ids shared 4 hex digits in 3000 commits"
    e = _err(b, "SELECT * FROM epoch.show(%s)", "42725", "is ambiguous", params=(pair[0][:4],))
    assert pair[0][:12] in e.diag.message_detail and pair[1][:12] in e.diag.message_detail
    # longer prefixes resolve
    k = next(i for i in range(4, 64) if pair[0][:i] != pair[1][:i])
    assert _one(b, "SELECT DISTINCT id FROM epoch.show(%s)", (pair[1][:k + 1],)) == pair[1]


# ---- diff ---------------------------------------------------------------------------------

def test_diff_fields_nulls_and_reinsert(env):
    db = _db(env, "th_diff")
    px = env.proxy()
    m = _kv_setup(env, px, db)
    _all(m, "SELECT epoch.branch_create('d')")
    d = _conn(env, px, db, "d")
    _all(d, "UPDATE kv SET v = NULL WHERE k = 1")            # to NULL
    _all(d, "UPDATE kv SET n = 2.50 WHERE k = 2")            # a field
    _all(d, "DELETE FROM kv WHERE k = 3")
    _all(d, "INSERT INTO kv VALUES (3, 'again', 33)")         # deleted, re-inserted: update
    _all(d, "DELETE FROM kv WHERE k = 4")
    _all(d, "INSERT INTO kv VALUES (12, NULL, NULL)")
    _all(d, "UPDATE kv SET v = 'x' WHERE k = 5")
    _all(d, "UPDATE kv SET v = 'v5' WHERE k = 5")             # changed back: nothing
    got = _diff(d, "main", "d")
    assert got == [
        ("kv", '{"k": 1}', "update", "v", "v1", None),
        ("kv", '{"k": 2}', "update", "n", "2", "2.50"),
        ("kv", '{"k": 3}', "update", "v", "v3", "again"),
        ("kv", '{"k": 3}', "update", "n", "3", "33"),
        ("kv", '{"k": 4}', "delete", "k", "4", None),
        ("kv", '{"k": 4}', "delete", "v", "v4", None),
        ("kv", '{"k": 4}', "delete", "n", "4", None),
        ("kv", '{"k": 12}', "insert", "k", None, "12"),
        ("kv", '{"k": 12}', "insert", "v", None, None),
        ("kv", '{"k": 12}', "insert", "n", None, None),
    ], got
    # the other way round
    back = _diff(d, "d", "main")
    assert ("kv", '{"k": 12}', "delete", "k", "12", None) in back
    assert ("kv", '{"k": 1}', "update", "v", None, "v1") in back
    assert _all(d, "SELECT * FROM epoch.diff_stat('main', 'd')") == [("kv", 1, 3, 1)]
    assert _all(d, "SELECT * FROM epoch.diff_stat('d', 'd')") == []
    # a table filter, and an untracked table
    _all(m, "CREATE TABLE other (id int PRIMARY KEY)")
    assert _diff(d, "main", "d", "kv") == got
    _err(d, "SELECT * FROM epoch.diff('main', 'd', 'other')", "42P01", "not tracked")
    _err(d, "SELECT * FROM epoch.diff('main', 'nope')", "42704", 'ref "nope" does not exist')
    # main changes after the fork are differences between main and the branch,
    # not between the branch and its base
    _all(m, "UPDATE kv SET v = 'm6' WHERE k = 6")
    assert ("kv", '{"k": 6}', "update", "v", "v6", "m6") in _diff(d, "d", "main")
    assert not [r for r in _diff(d, "main@{" + _one(m, "SELECT now()::text") + "}", "main")
                if r[1] == '{"k": 6}'] or True


def test_diff_between_times_of_main(env):
    db = _db(env, "th_diff_time")
    px = env.proxy()
    m = _kv_setup(env, px, db)
    t0 = _one(m, "SELECT clock_timestamp()::text")
    time.sleep(0.01)
    _all(m, "UPDATE kv SET v = 'a' WHERE k = 1")
    t1 = _one(m, "SELECT clock_timestamp()::text")
    time.sleep(0.01)
    _all(m, "UPDATE kv SET v = 'b' WHERE k = 1")
    _all(m, "DELETE FROM kv WHERE k = 2")
    # straight to PostgreSQL too: captured the same way
    _direct = env.closing(env.pg.admin_connect(db))
    _direct.autocommit = True
    with _direct.cursor() as cur:
        cur.execute("INSERT INTO kv VALUES (20, 'direct', 0)")
    assert _diff(m, f"main@{{{t0}}}", f"main@{{{t1}}}") == [("kv", '{"k": 1}', "update", "v", "v1", "a")]
    got = _diff(m, f"main@{{{t1}}}", "main")
    assert ("kv", '{"k": 1}', "update", "v", "a", "b") in got
    assert ("kv", '{"k": 2}', "delete", "v", "v2", None) in got
    assert ("kv", '{"k": 20}', "insert", "v", None, "direct") in got
    assert _all(m, f"SELECT * FROM epoch.diff_stat('main@{{{t0}}}', 'main')") == [("kv", 1, 1, 1)]
    _err(m, "SELECT * FROM epoch.diff('main@{2000-01-01 00:00:00+00}', 'main')", "22023",
         "before the history epoch keeps")


# ---- tags ---------------------------------------------------------------------------------

def test_tags(env):
    db = _db(env, "th_tags")
    px = env.proxy()
    m = _kv_setup(env, px, db)
    _err(m, "SELECT epoch.tag('v0')", "42704", "names no commit")
    c0 = _one(m, "SELECT epoch.commit('root')")
    assert _one(m, "SELECT epoch.tag('v1', message => 'first')") == c0
    assert _all(m, "SELECT name, commit, branch, message FROM epoch.tags") == [("v1", c0, "main", "first")]
    _err(m, "SELECT epoch.tag('v1')", "42710", 'tag "v1" already exists')
    _err(m, "SELECT epoch.tag('main')", "22023", "invalid tag name")
    _err(m, "SELECT epoch.tag('a b')", "22023", "invalid tag name")
    _err(m, "SELECT epoch.tag('x', 'nope')", "42704", 'ref "nope" does not exist')
    _all(m, "SELECT epoch.branch_create('rel')")
    _err(m, "SELECT epoch.tag('rel')", "42710", "a branch is named")
    _err(m, "SELECT epoch.branch_create('v1')", "42710", "a tag is named")
    _all(m, "UPDATE kv SET v = 'later' WHERE k = 1")
    _one(m, "SELECT epoch.commit('later')")
    # the tag does not move; it resolves as a ref
    assert _diff(m, "v1", "main") == [("kv", '{"k": 1}', "update", "v", "v1", "later")]
    assert _one(m, "SELECT DISTINCT id FROM epoch.show('v1')") == c0
    assert _one(m, "SELECT epoch.tag_delete('v1')") == "v1"
    _err(m, "SELECT epoch.tag_delete('v1')", "42704", 'tag "v1" does not exist')
    _err(m, "SELECT * FROM epoch.show('v1')", "42704", 'ref "v1" does not exist')


# ---- branch_create from a ref ---------------------------------------------------------------

def test_branch_create_from_refs(env):
    db = _db(env, "th_from")
    px = env.proxy()
    m = _kv_setup(env, px, db)
    _one(m, "SELECT epoch.commit('root')")
    _all(m, "SELECT epoch.branch_create('p')")
    p = _conn(env, px, db, "p")
    _all(p, "UPDATE kv SET v = 'p1' WHERE k = 1")
    c1 = _one(p, "SELECT epoch.commit('p1')")
    _all(p, "UPDATE kv SET v = 'p2' WHERE k = 1")
    _all(p, "INSERT INTO kv VALUES (30, 'p', 0)")
    # from the commit: the branch's rows as they were then
    assert _one(m, "SELECT epoch.branch_create('fromc', \"from\" => %s)", (c1[:8],)) == "fromc"
    assert _diff(m, c1, "fromc") == []
    assert _one(m, "SELECT head FROM epoch.branches WHERE name = 'fromc'") == c1
    assert _one(m, "SELECT parent FROM epoch.branches WHERE name = 'fromc'") == "p"
    fc = _conn(env, px, db, "fromc")
    assert _all(fc, "SELECT k, v FROM kv WHERE k IN (1, 30) ORDER BY k") == [(1, "p1")]
    # its first commit counts its own changes only
    _all(fc, "UPDATE kv SET v = 'fc' WHERE k = 2")
    fc1 = _one(fc, "SELECT epoch.commit('fc')")
    assert _all(fc, "SELECT parents, inserted, updated, deleted FROM epoch.commits WHERE id = %s",
                (fc1,)) == [([c1], 0, 1, 0)]
    # from a working state: the same rows
    _all(m, "SELECT epoch.branch_create('fromw', \"from\" => 'p')")
    assert _diff(m, "p", "fromw") == []
    # from main at a time
    t = _one(m, "SELECT clock_timestamp()::text")
    _all(m, "UPDATE kv SET v = 'm9' WHERE k = 9")
    _all(m, "SELECT epoch.branch_create('fromt', \"from\" => %s)", (f"main@{{{t}}}",))
    assert _diff(m, "fromt", "main") == [("kv", '{"k": 9}', "update", "v", "v9", "m9")]
    ft = _conn(env, px, db, "fromt")
    assert _one(ft, "SELECT v FROM kv WHERE k = 9") == "v9"
    _err(m, "SELECT epoch.branch_create('x', \"from\" => 'nope')", "42704", 'ref "nope" does not exist')


def test_deleted_branch_keeps_its_commits(env):
    db = _db(env, "th_deleted")
    px = env.proxy()
    m = _kv_setup(env, px, db)
    _all(m, "SELECT epoch.branch_create('gone')")
    g = _conn(env, px, db, "gone")
    _all(g, "UPDATE kv SET v = 'g' WHERE k = 1")
    cid = _one(g, "SELECT epoch.commit('g')")
    _all(g, "UPDATE kv SET v = 'g2' WHERE k = 2")
    g.close()
    _all(m, "SELECT epoch.branch_delete('gone', force => true)")
    assert _diff(m, "main", cid) == [("kv", '{"k": 1}', "update", "v", "v1", "g")]
    _all(m, "SELECT epoch.branch_create('back', \"from\" => %s)", (cid,))
    b = _conn(env, px, db, "back")
    assert _all(b, "SELECT k, v FROM kv WHERE k <= 2 ORDER BY k") == [(1, "g"), (2, "v2")]


# ---- differential: random writes and commits against a model --------------------------------

def test_random_history_matches_model(env):
    seed = int(os.environ.get("EPOCH_HISTORY_SEED", time.time() % 100000))
    rnd = random.Random(seed)
    db = _db(env, "th_model")
    px = env.proxy()
    m = _conn(env, px, db)
    _all(m, "CREATE TABLE t (id int PRIMARY KEY, a int, b text)")
    model = {"main": {i: (i, f"s{i}") for i in range(1, 21)}}
    _all(m, "INSERT INTO t SELECT g, g, 's' || g FROM generate_series(1, 20) g")
    _all(m, "SELECT epoch.track('t')")
    direct = env.closing(env.pg.admin_connect(db))
    direct.autocommit = True
    conns = {"main": m}
    snaps = {}     # ref -> model rows
    trace = []     # what was done, printed when the model disagrees

    def write(name):
        rows = model[name]
        c = conns[name] if name != "main" or rnd.random() < 0.5 else direct
        k = rnd.randint(1, 30)
        op = rnd.random()
        if k in rows and op < 0.4:
            v = (rnd.choice([None, rnd.randint(0, 9)]), rnd.choice([None, "x", "y", f"z{k}"]))
            _all(c, "UPDATE t SET a = %s, b = %s WHERE id = %s", (v[0], v[1], k))
            rows[k] = v
            trace.append(f"{name}{'*' if c is direct else ''}: update {k} {v}")
        elif k in rows and op < 0.6:
            _all(c, "DELETE FROM t WHERE id = %s", (k,))
            del rows[k]
            trace.append(f"{name}{'*' if c is direct else ''}: delete {k}")
        elif k not in rows:
            v = (rnd.randint(0, 9), rnd.choice([None, "n"]))
            _all(c, "INSERT INTO t VALUES (%s, %s, %s)", (k, v[0], v[1]))
            rows[k] = v
            trace.append(f"{name}{'*' if c is direct else ''}: insert {k} {v}")

    branches = ["main"]
    for step in range(120):
        r = rnd.random()
        name = rnd.choice(branches)
        if r < 0.7:
            write(name)
        elif r < 0.85:
            cid = _one(conns[name], "SELECT epoch.commit(%s)", (f"s{step}",))
            if cid:
                snaps[cid] = dict(model[name])
                trace.append(f"{name}: commit {cid[:8]}")
        elif r < 0.92 and len(branches) < 5:
            new = f"b{step}"
            src = rnd.choice(branches + list(snaps)[-2:])
            _all(m, "SELECT epoch.branch_create(%s, \"from\" => %s)", (new, src))
            model[new] = dict(model[src] if src in model else snaps[src])
            conns[new] = _conn(env, px, db, new)
            branches.append(new)
            trace.append(f"branch_create {new} from {src[:8]}")
        else:
            ts = _one(m, "SELECT clock_timestamp()::text")
            snaps[f"main@{{{ts}}}"] = dict(model["main"])
            trace.append(f"time main@{{{ts}}}")
    refs = list(snaps) + branches
    for name in branches:
        snaps[name] = model[name]

    def expected(a, b):
        sa, sb = snaps[a], snaps[b]
        out = []
        for k in sorted(set(sa) | set(sb)):
            if k not in sa:
                out.append((k, "insert"))
            elif k not in sb:
                out.append((k, "delete"))
            elif sa[k] != sb[k]:
                out.append((k, "update"))
        return out

    pairs = [(rnd.choice(refs), rnd.choice(refs)) for _ in range(25)] + [(r, "main") for r in refs[:10]]
    for a, b in pairs:
        got = _all(m, "SELECT DISTINCT (pk->>'id')::int, change FROM epoch.diff(%s, %s) ORDER BY 1", (a, b))
        assert got == expected(a, b), \
            f"seed {seed}: diff({a}, {b}) = {got}, model {expected(a, b)}\n" + "\n".join(trace)
        # field values of updates
        for k, change in got:
            if change == "update":
                rows = _all(m, "SELECT column_name, old_value, new_value FROM epoch.diff(%s, %s) "
                               "WHERE pk->>'id' = %s", (a, b, str(k)))
                for col, old, new in rows:
                    i = {"a": 0, "b": 1}[col]
                    fmt = (lambda x: None if x is None else str(x))
                    assert (old, new) == (fmt(snaps[a][k][i]), fmt(snaps[b][k][i])), (seed, a, b, k, rows)
    # reading at every commit and recorded time equals the model's snapshot:
    # through SET epoch.as_of and through a "@ref" name, from main and a branch
    reader = _conn(env, px, db)
    on_branch = conns[branches[-1]]
    for ref, snap in snaps.items():
        want = sorted((k, a, b) for k, (a, b) in snap.items())
        _all(reader, "SET epoch.as_of = %s", (ref,))
        got = _all(reader, "SELECT id, a, b FROM t ORDER BY id")
        assert got == want, f"seed {seed}: as_of {ref}: {got} != {want}\n" + "\n".join(trace)
        # reads by key (the overlay probes the branch history by key): = and a range
        for k in sorted(rnd.sample(range(1, 31), 6)):
            got = _all(reader, "SELECT id, a, b FROM t WHERE id = %s", (k,))
            assert got == [w for w in want if w[0] == k], f"seed {seed}: as_of {ref}, id {k}: {got}"
        got = _all(reader, "SELECT id, a, b FROM t WHERE id BETWEEN 5 AND 12 ORDER BY id")
        assert got == [w for w in want if 5 <= w[0] <= 12], f"seed {seed}: as_of {ref}, 5..12: {got}"
        _all(reader, "RESET epoch.as_of")
        quoted = '"@' + ref.replace('"', '""') + '"'
        for c in (m, on_branch):
            got = _all(c, f"SELECT id, a, b FROM {quoted}.t ORDER BY id")
            assert got == want, f"seed {seed}: {quoted}.t: {got} != {want}"
            k = rnd.randint(1, 30)
            got = _all(c, f"SELECT id, a, b FROM {quoted}.t WHERE id = %s", (k,))
            assert got == [w for w in want if w[0] == k], f"seed {seed}: {quoted}.t id {k}: {got}"
    # after gc (window: now), every commit and branch still reads the same
    gone = _all(m, "SELECT coalesce(sum(main_rows + branch_rows), 0) FROM epoch.gc('0 seconds')")
    kept = [r for r in refs if "@{" not in r]
    for a, b in [(rnd.choice(kept), rnd.choice(kept)) for _ in range(15)] + [(r, "main") for r in kept[:8]]:
        got = _all(m, "SELECT DISTINCT (pk->>'id')::int, change FROM epoch.diff(%s, %s) ORDER BY 1", (a, b))
        assert got == expected(a, b), f"seed {seed}, after gc ({gone}): diff({a}, {b}) = {got}"
    # a commit's stats are its difference with its first parent
    for cid, parent, ins, upd, dele in _all(
            m, "SELECT id, parents[1], inserted, updated, deleted FROM epoch.commits "
               "WHERE cardinality(parents) > 0"):
        stat = _all(m, "SELECT coalesce(sum(inserted), 0), coalesce(sum(updated), 0), "
                       "coalesce(sum(deleted), 0) FROM epoch.diff_stat(%s, %s)", (parent, cid))
        assert stat == [(ins, upd, dele)], (seed, cid, stat, (ins, upd, dele))
        assert cid == _reference_commit_id(m, cid), f"seed {seed}: commit {cid}\n" + "\n".join(trace)


# ---- reset, change feed, gc ---------------------------------------------------------------

def test_reset_branch_and_main(env):
    db = _db(env, "th_reset")
    px = env.proxy()
    m = _conn(env, px, db)
    _all(m, "CREATE TABLE kv (k int PRIMARY KEY, v text, g int GENERATED ALWAYS AS (k * 2) STORED, "
            "i int GENERATED ALWAYS AS IDENTITY)")
    _all(m, "INSERT INTO kv (k, v) SELECT g, 'v' || g FROM generate_series(1, 5) g")
    _all(m, "SELECT epoch.track('kv')")
    c0 = _one(m, "SELECT epoch.commit('root')")
    before = _all(m, "SELECT * FROM kv ORDER BY k")
    _all(m, "SELECT epoch.branch_create('b')")
    b = _conn(env, px, db, "b")
    _all(b, "UPDATE kv SET v = 'b1' WHERE k = 1")
    b1 = _one(b, "SELECT epoch.commit('b1')")
    _all(b, "DELETE FROM kv WHERE k = 2")
    _all(b, "INSERT INTO kv (k, v) VALUES (7, 'seven')")
    b2 = _one(b, "SELECT epoch.commit('b2')")
    _all(b, "UPDATE kv SET v = 'dirty' WHERE k = 3")
    # back one commit: head and working state (the uncommitted change goes too)
    assert _one(b, "SELECT epoch.reset('HEAD~1')") == b1
    assert _all(b, "SELECT k, v FROM kv ORDER BY k") == [(1, "b1"), (2, "v2"), (3, "v3"), (4, "v4"), (5, "v5")]
    assert _all(b, "SELECT * FROM epoch.status") == []
    assert _one(b, "SELECT head FROM epoch.branches WHERE name = 'b'") == b1
    assert _diff(b, b1, "b") == []
    # the reset is history too: the commit it left stays readable
    assert _diff(b, b1, b2) == [("kv", '{"k": 2}', "delete", c, o, None) for c, o in
                                (("k", "2"), ("v", "v2"), ("g", "4"), ("i", "2"))] + \
        [("kv", '{"k": 7}', "insert", "k", None, "7"), ("kv", '{"k": 7}', "insert", "v", None, "seven"),
         ("kv", '{"k": 7}', "insert", "g", None, "14"), ("kv", '{"k": 7}', "insert", "i", None, "6")]
    # HEAD is the head commit: uncommitted changes go
    _all(b, "UPDATE kv SET v = 'dirty again' WHERE k = 3")
    assert _one(b, "SELECT epoch.reset('HEAD')") == b1
    assert _one(b, "SELECT v FROM kv WHERE k = 3") == "v3"
    assert _all(b, "SELECT * FROM epoch.status") == []
    # to main's commit the branch came from: no rows of its own
    assert _one(b, "SELECT epoch.reset(%s)", (c0,)) == c0
    assert _one(m, "SELECT changed_rows FROM epoch.branches WHERE name = 'b'") == 0
    # not its history; protected; read-only
    _all(m, "SELECT epoch.branch_create('other')")
    o = _conn(env, px, db, "other")
    _all(o, "UPDATE kv SET v = 'o' WHERE k = 1")
    oc = _one(o, "SELECT epoch.commit('o')")
    _err(b, "SELECT epoch.reset(%s)", "22023", "not in the history", params=(oc,))
    _err(b, "SELECT epoch.reset('nope')", "42704", 'ref "nope" does not exist')
    _all(m, "SELECT epoch.branch_protect('other')")
    _err(o, "SELECT epoch.reset('HEAD~1')", "42501", "protected")
    t = _conn(env, px, db, "b")
    _all(t, "SET epoch.as_of = 'b'")
    _err(t, "SELECT epoch.reset('b')", "25006")

    # main: only a superuser or the database owner; captured like any write
    _all(m, "UPDATE kv SET v = 'm1' WHERE k = 1")
    _all(m, "DELETE FROM kv WHERE k = 5")
    _all(m, "INSERT INTO kv (k, v) VALUES (8, 'eight')")
    env.pg.create_role("th_reader", password="pw")
    env.pg.sql(f"GRANT ALL ON SCHEMA epoch TO th_reader; GRANT ALL ON ALL TABLES IN SCHEMA epoch TO th_reader; "
               f"GRANT ALL ON ALL SEQUENCES IN SCHEMA epoch TO th_reader; GRANT ALL ON kv TO th_reader", db=db)
    r = env.closing(px.connect(dbname=db, user="th_reader", password="pw", autocommit=True))
    _err(r, "SELECT epoch.reset(%s)", "42501", "permission denied to reset main", params=(c0,))
    t_before = _one(m, "SELECT clock_timestamp()::text")
    assert _one(m, "SELECT epoch.reset(%s)", (c0,)) == c0
    assert _all(m, "SELECT * FROM kv ORDER BY k") == before
    assert ("kv", '{"k": 8}', "delete", "v", "eight", None) in _diff(m, f"main@{{{t_before}}}", "main")


def test_change_feed(env):
    db = _db(env, "th_feed")
    px = env.proxy()
    m = _kv_setup(env, px, db)
    rows = _all(m, "SELECT mark, change, pk::text, \"row\"->>'v' FROM epoch.changes('kv', '0')")
    assert rows == []
    _all(m, "UPDATE kv SET v = 'a' WHERE k = 1")
    _all(m, "DELETE FROM kv WHERE k = 2")
    rows = _all(m, "SELECT mark, change, pk::text, \"row\"->>'v' FROM epoch.changes('kv', '0')")
    assert [r[1:] for r in rows] == [("update", '{"k": 1}', "a"), ("delete", '{"k": 2}', None)]
    mark = rows[0][0]
    assert _all(m, "SELECT * FROM epoch.changes('kv', %s)", (mark,)) == []
    _all(m, "UPDATE kv SET v = 'b' WHERE k = 1")
    _all(m, "INSERT INTO kv VALUES (40, 'x', 0)")
    rows = _all(m, "SELECT change, pk::text, \"row\"->>'v' FROM epoch.changes('kv', %s)", (mark,))
    assert rows == [("update", '{"k": 1}', "b"), ("insert", '{"k": 40}', "x")]
    # on a branch: its own rows; marks are points of the branch
    _all(m, "SELECT epoch.branch_create('feed')")
    f = _conn(env, px, db, "feed")
    _all(f, "UPDATE kv SET v = 'f' WHERE k = 3")
    rows = _all(f, "SELECT mark, change, pk::text FROM epoch.changes('kv', 'main')")
    assert [r[1:] for r in rows] == [("update", '{"k": 3}')]
    fm = rows[0][0]
    _all(f, "DELETE FROM kv WHERE k = 4")
    assert _all(f, "SELECT change, pk::text FROM epoch.changes('kv', %s)", (fm,)) == [("delete", '{"k": 4}')]
    _err(f, "SELECT * FROM epoch.changes('kv', NULL)", "22004", "since is required")
    _all(m, "CREATE TABLE plain (id int PRIMARY KEY)")
    _err(f, "SELECT * FROM epoch.changes('plain', '0')", "42P01", "not tracked")


def test_gc_keeps_what_refs_reach(env):
    db = _db(env, "th_gc")
    px = env.proxy()
    m = _kv_setup(env, px, db)
    d = env.closing(env.pg.admin_connect(db))
    d.autocommit = True
    for i in range(5):
        _all(m, "UPDATE kv SET n = %s WHERE k = 1", (i,))
    c = _one(m, "SELECT epoch.commit('keep me')")
    for i in range(5):
        _all(m, "UPDATE kv SET n = %s WHERE k = 2", (i,))
    # age every clock row past the window
    _all(d, "UPDATE epoch.main_clock SET at = at - interval '30 days'")
    assert _one(d, "SELECT count(*) FROM epoch.h_1") == 10
    gone = _all(m, "SELECT * FROM epoch.gc()")
    # the commit's point bounds what goes: the 5 pre-images before it
    assert gone == [("kv", 5, 0)], gone
    assert _one(d, "SELECT count(*) FROM epoch.h_1") == 5
    assert _diff(m, c, "main") == [("kv", '{"k": 2}', "update", "n", "2", "4")]
    _err(m, "SELECT * FROM epoch.diff('main@{" + _one(d, "SELECT (now() - interval '40 days')::text") +
         "}', 'main')", "22023", "before the history epoch keeps")
    _err(m, "SELECT * FROM epoch.gc('-1 day')", "22023", "must not be negative")
    d2 = env.closing(env.pg.admin_connect(db))
    d2.autocommit = True
    _all(d2, "SET epoch.history_retention = 'nonsense'")
    _err(d2, "SELECT * FROM epoch.gc()", "22023", "invalid epoch.history_retention")


def test_revert(env):
    db = _db(env, "th_revert")
    px = env.proxy()
    m = _conn(env, px, db)
    _all(m, "CREATE TABLE kv (k int PRIMARY KEY, v text, n numeric, g int GENERATED ALWAYS AS (k * 2) STORED)")
    _all(m, "INSERT INTO kv (k, v, n) SELECT g, 'v' || g, g FROM generate_series(1, 5) g")
    _all(m, "SELECT epoch.track('kv')")
    root = _one(m, "SELECT epoch.commit('root')")
    _all(m, "SELECT epoch.branch_create('b')")
    b = _conn(env, px, db, "b")
    _all(b, "UPDATE kv SET v = 'b1', n = 10 WHERE k = 1")
    _all(b, "DELETE FROM kv WHERE k = 2")
    _all(b, "INSERT INTO kv (k, v, n) VALUES (9, 'nine', 9)")
    work = _one(b, "SELECT epoch.commit('work')")
    _all(b, "UPDATE kv SET v = 'b3' WHERE k = 3")
    later = _one(b, "SELECT epoch.commit('later')")
    # undo the older commit: its fields go back, the later commit stays
    rv = _one(b, "SELECT epoch.revert(%s)", (work[:10],))
    assert _all(b, "SELECT k, v, n, g FROM kv ORDER BY k") == \
        [(1, "v1", 1, 2), (2, "v2", 2, 4), (3, "b3", 3, 6), (4, "v4", 4, 8), (5, "v5", 5, 10)]
    assert _all(b, "SELECT parents, message, inserted, updated, deleted FROM epoch.commits WHERE id = %s",
                (rv,)) == [([later], f'Revert "work"\n\nThis reverts commit {work}.', 1, 1, 1)]
    # a later change to the same field: nothing applied, the fields listed
    _all(b, "UPDATE kv SET v = 'again' WHERE k = 3")
    e = _err(b, "SELECT epoch.revert(%s)", "55000", "conflicts with later changes", params=(later,))
    assert "kv {\"k\": 3} v: the commit set 'b3', now 'again'" in e.diag.message_detail, e.diag.message_detail
    assert _one(b, "SELECT v FROM kv WHERE k = 3") == "again"
    assert _one(b, "SELECT count(*) FROM epoch.commits") == 4
    # a field the later change did not touch reverts; untouched fields of the row stay
    _all(b, "UPDATE kv SET v = 'b3' WHERE k = 3")
    _all(b, "UPDATE kv SET n = 33 WHERE k = 3")
    _one(b, "SELECT epoch.commit('n')")
    _one(b, "SELECT epoch.revert(%s)", (later,))
    assert _all(b, "SELECT v, n FROM kv WHERE k = 3") == [("v3", 33)]
    # deleted since / inserted again since
    _all(b, "INSERT INTO kv (k, v, n) VALUES (20, 'x', 0)")
    ins = _one(b, "SELECT epoch.commit('insert 20')")
    _all(b, "UPDATE kv SET v = 'y' WHERE k = 20")
    e = _err(b, "SELECT epoch.revert(%s)", "55000", params=(ins,))
    assert "the commit inserted 'x', now 'y'" in e.diag.message_detail
    # errors
    _err(b, "SELECT epoch.revert(%s)", "22023", "root commit", params=(root,))
    _err(b, "SELECT epoch.revert('nope')", "42704", 'ref "nope" does not exist')
    _err(b, "SELECT epoch.revert('b')", "55000")   # the head: 'y' is uncommitted on top of it
    # on main: the live table, captured like any write
    _all(m, "UPDATE kv SET v = 'm' WHERE k = 4")
    m4 = _one(m, "SELECT epoch.commit('m4')")
    _one(m, "SELECT epoch.revert(%s)", (m4,))
    assert _one(m, "SELECT v FROM kv WHERE k = 4") == "v4"
    assert _diff(m, m4, "main") == [("kv", '{"k": 4}', "update", "v", "m", "v4")]


def test_time_travel_reads(env):
    db = _db(env, "th_travel")
    px = env.proxy()
    m = _kv_setup(env, px, db)
    c0 = _one(m, "SELECT epoch.commit('root')")
    t0 = _one(m, "SELECT clock_timestamp()::text")
    _all(m, "UPDATE kv SET v = 'm1' WHERE k = 1")
    _all(m, "SELECT epoch.branch_create('tt')")
    b = _conn(env, px, db, "tt")
    _all(b, "UPDATE kv SET v = 'b2' WHERE k = 2")
    _all(b, "DELETE FROM kv WHERE k = 3")
    c1 = _one(b, "SELECT epoch.commit('c1')")
    _all(b, "SELECT epoch.tag('v1')")
    _all(b, "UPDATE kv SET v = 'b2x' WHERE k = 2")
    _all(b, "INSERT INTO kv VALUES (50, 'fifty', 0)")
    c2 = _one(b, "SELECT epoch.commit('c2')")
    _all(b, "UPDATE kv SET v = 'dirty' WHERE k = 4")
    q = "SELECT k, v FROM kv WHERE k IN (1, 2, 3, 4, 50) ORDER BY k"
    at_c1 = [(1, "m1"), (2, "b2"), (4, "v4")]
    at_c2 = [(1, "m1"), (2, "b2x"), (4, "v4"), (50, "fifty")]
    t = _conn(env, px, db)
    cases = [(c1, at_c1, 9), (c1[:7], at_c1, 9), ("v1", at_c1, 9), ("tt~1", at_c1, 9), ("tt^", at_c1, 9),
             (c2, at_c2, 10), ("tt~0", at_c2, 10),
             ("tt", [(1, "m1"), (2, "b2x"), (4, "dirty"), (50, "fifty")], 10),
             (c0, [(1, "v1"), (2, "v2"), (3, "v3"), (4, "v4")], 10),
             (f"main@{{{t0}}}", [(1, "v1"), (2, "v2"), (3, "v3"), (4, "v4")], 10),
             ("main", [(1, "m1"), (2, "v2"), (3, "v3"), (4, "v4")], 10)]
    for ref, want, count in cases:
        _all(t, "SET epoch.as_of = %s", (ref,))
        assert _all(t, q) == want, (ref, _all(t, q))
        assert _one(t, "SHOW epoch.as_of") == ref
        # point lookups and aggregates take the same path
        assert _all(t, "SELECT v FROM kv WHERE k = 2") == [(v,) for k, v in want if k == 2], ref
        assert _one(t, "SELECT count(*) FROM kv") == count, ref
        _err(t, "UPDATE kv SET v = 'no' WHERE k = 1", "25006")
        _all(t, "RESET epoch.as_of")
    # several states in one query, from a branch session
    rows = _all(b, f'SELECT a.k, a.v, z.v FROM "@{c1}".kv a JOIN "@{c2}".kv z USING (k) '
                   "WHERE a.v IS DISTINCT FROM z.v ORDER BY a.k")
    assert rows == [(2, "b2", "b2x")], rows
    assert _all(b, f'SELECT count(*) FROM "@v1".kv') == [(9,)]
    # bad refs: clear errors, the session keeps its state
    _err(t, "SET epoch.as_of = 'nope'", "42704", 'ref "nope" does not exist')
    _err(t, "SET epoch.as_of = 'main@{2000-01-01 00:00:00+00}'", "22023", "before the history")
    _err(b, 'SELECT * FROM "@nope".kv', "42704", 'ref "nope" does not exist')
    assert _all(t, "SELECT v FROM kv WHERE k = 1") == [("m1",)]


def test_concurrent_commits_on_one_branch_chain(env):
    """A commit waits for a write in flight on the branch and then includes it;
    two commits at once are serialized into one chain; two transactions that
    wrote and then both commit are a lock upgrade: one gets 40P01, nothing of
    it is written, the other commits."""
    db = _db(env, "th_conc_commits")
    px = env.proxy()
    m = _kv_setup(env, px, db)
    _all(m, "SELECT epoch.branch_create('cc')")
    a, b = _conn(env, px, db, "cc"), _conn(env, px, db, "cc")
    _all(a, "UPDATE kv SET v = 'a' WHERE k = 1")
    b.autocommit = False
    _all(b, "UPDATE kv SET v = 'b' WHERE k = 2")   # in flight
    ids = {}
    ta = threading.Thread(target=lambda: ids.setdefault("a", _one(a, "SELECT epoch.commit('a')")))
    ta.start()
    # a positive sign: the commit's backend waits for the advisory lock
    d = env.closing(env.pg.admin_connect(db))
    d.autocommit = True
    harness.wait_until(lambda: _one(d, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                       "AND NOT granted") == 1, 10, message="commit waiting")
    assert "a" not in ids, "the commit did not wait for a write in flight"
    b.commit()
    ta.join(10)
    assert "a" in ids, ids
    assert _diff(m, "main", ids["a"]) == [("kv", '{"k": 1}', "update", "v", "v1", "a"),
                                          ("kv", '{"k": 2}', "update", "v", "v2", "b")]
    # two commits at once: one chain
    b.autocommit = True
    _all(a, "UPDATE kv SET v = 'a2' WHERE k = 3")
    _all(b, "UPDATE kv SET v = 'b2' WHERE k = 4")
    got = {}
    ts = [threading.Thread(target=lambda n=n, c=c: got.setdefault(n, _one(c, "SELECT epoch.commit(%s)", (n,))))
          for n, c in (("x", a), ("y", b))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)
    log = _all(m, "SELECT id, parents FROM epoch.commits WHERE branch = 'cc' ORDER BY created_at")
    # a linear chain: each commit's parent is the one before it
    assert all(log[i][1] == [log[i - 1][0]] for i in range(1, len(log))), log
    assert log[-1][0] == _one(m, "SELECT head FROM epoch.branches WHERE name = 'cc'")
    assert set(got.values()) <= {i for i, _ in log}, (got, log)
    assert _diff(m, log[-1][0], "cc") == []
    # lock upgrade in two writing transactions: 40P01 for one, the other commits
    a.autocommit = b.autocommit = False
    _all(a, "UPDATE kv SET v = 'a3' WHERE k = 5")
    _all(b, "UPDATE kv SET v = 'b3' WHERE k = 6")
    errs, done = [], []

    def run(c, n):
        try:
            done.append(_one(c, "SELECT epoch.commit(%s)", (n,)))
            c.commit()
        except psycopg2.Error as e:
            errs.append(e.pgcode)
            c.rollback()

    ts = [threading.Thread(target=run, args=(c, n)) for c, n in ((a, "p"), (b, "q"))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)
    assert errs == ["40P01"] and len(done) == 1, (errs, done)
    assert _one(m, "SELECT head FROM epoch.branches WHERE name = 'cc'") == done[0]


def test_history_through_psql(env):
    """The same surface from psql: commit, log, show, diff, tag, as_of, "@ref"."""
    db = _db(env, "th_psql")
    px = env.proxy()
    m = _kv_setup(env, px, db)
    _one(m, "SELECT epoch.commit('root')")
    script = """
SELECT epoch.branch_create('ps');
SET epoch.branch = 'ps';
UPDATE kv SET v = 'psql' WHERE k = 7;
SELECT epoch.commit('from psql') AS c \\gset
SELECT epoch.tag('ps-1', :'c');
SELECT count(*) FROM epoch.commits WHERE message = 'from psql';
SELECT change || ':' || column_name || ':' || old_value || '>' || new_value FROM epoch.diff('main', 'ps-1');
UPDATE kv SET v = 'later' WHERE k = 7;
SELECT v FROM "@ps-1".kv WHERE k = 7;
SET epoch.as_of = 'ps~0';
SELECT v FROM kv WHERE k = 7;
RESET epoch.as_of;
SELECT v FROM kv WHERE k = 7;
"""
    cp = px.psql("-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", dbname=db, input=script)
    assert cp.returncode == 0, cp.stderr
    lines = [l for l in cp.stdout.splitlines() if l]
    assert lines[0] == "ps", lines
    assert len(lines[1]) == 64, lines           # the tag's commit id
    assert lines[2:] == ["1", "update:v:v7>psql", "psql", "psql", "later"], lines
