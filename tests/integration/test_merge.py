"""Merge through the proxy (docs/merge.md): the seed's field-level examples,
every cell of the field rules, every conflict kind under every strategy and
alias, resolve / resolve_all / merge_continue / merge_abort, dry runs,
fast-forward and up-to-date, sync, merges into branches, privileges on main,
constraint violations, concurrent writers on main, and a seeded random
differential test against an in-memory three-way merge.

Every test works in a database of its own (the cluster is shared)."""

import random
import re
import subprocess
import threading

import psycopg2

import harness
from test_history import _all, _conn, _db, _err, _one


def _users(env, px, db):
    """main: users(id, name, email, score) with three rows, tracked."""
    c = _conn(env, px, db)
    _all(c, "CREATE TABLE public.users (id int PRIMARY KEY, name text, email text, score int)")
    _all(c, "INSERT INTO public.users VALUES (1, 'ann', 'ann@x', 1), (2, 'bob', 'bob@x', 2), (3, 'cy', NULL, 3)")
    assert _one(c, "SELECT epoch.track('public.users')") == "public.users"
    return c


def _users_and_branches(env, name, *branches):
    """A database name with _users' table, a proxy, main's connection and a
    connection to each of the branches made from main."""
    db = _db(env, name)
    px = env.proxy()
    m = _users(env, px, db)
    conns = []
    for b in branches:
        _all(m, "SELECT epoch.branch_create(%s)", (b,))
        conns.append(_conn(env, px, db, b))
    return px, db, m, conns


def _merge(conn, source, into=None, strategy=None, dry_run=None, message=None):
    args, params = ["%s"], [source]
    for name, val in (("into", into), ("strategy", strategy), ("dry_run", dry_run), ("message", message)):
        if val is not None:
            args.append(f'"{name}" => %s')
            params.append(val)
    return _all(conn, f"SELECT merge_id, status, tables_merged, rows_affected, conflicts, commit "
                      f"FROM epoch.merge({', '.join(args)})", params)[0]


def _rows(conn, table="users"):
    return _all(conn, f"SELECT * FROM {table} ORDER BY 1")


def test_seed_example_fields_auto_merge_and_conflict(env):
    px, db, m, (b,) = _users_and_branches(env, "merge_seed", "feature")
    _all(b, "UPDATE users SET name = 'Ann' WHERE id = 1")           # the branch changes the name
    _all(m, "UPDATE users SET email = 'ann@y' WHERE id = 1")        # main (live) the email
    mid, status, tables, rows, conflicts, commit = _merge(m, "feature", into="main")
    assert (status, tables, rows, conflicts) == ("merged", 1, 1, 0)
    assert _rows(m) == [(1, "Ann", "ann@y", 1), (2, "bob", "bob@x", 2), (3, "cy", None, 3)]
    # the merge commit: two parents (main's head, the branch's auto-commit), stats
    parents, msg, upd = _all(m, "SELECT parents, message, updated FROM epoch.commits WHERE id = %s", (commit,))[0]
    assert len(parents) == 2 and msg == "Merge feature into main" and upd == 1, (parents, msg, upd)
    assert _one(m, "SELECT message FROM epoch.commits WHERE id = %s", (parents[1],)).startswith("Auto-commit")
    # the same field changed differently: a conflict, nothing applied
    _all(b, "UPDATE users SET score = 20 WHERE id = 2")
    _all(m, "UPDATE users SET score = 200 WHERE id = 2")
    mid, status, tables, rows, conflicts, commit = _merge(m, "feature", into="main")
    assert (status, conflicts, commit) == ("conflicted", 1, None)
    assert _one(m, "SELECT score FROM users WHERE id = 2") == 200
    assert _all(m, "SELECT table_name, pk::text, column_name, kind, base_value, ours_value, theirs_value, resolved "
                   "FROM epoch.conflicts WHERE merge_id = %s", (mid,)) == [
        ("users", '{"id": 2}', "score", "modify_modify", "2", "200", "20", False)]
    assert _one(m, "SELECT status FROM epoch.merges WHERE merge_id = %s", (mid,)) == "conflicted"
    # a second merge into main waits for this one to be resolved or aborted
    _err(m, "SELECT epoch.merge('feature', \"into\" => 'main')", "55000", "conflicted merge")
    _err(m, "SELECT epoch.merge_continue(%s)", "55000", "1 unresolved conflict", (mid,))
    assert f"(merge {mid} of \"feature\" is conflicted: 1 unresolved)" in [r[0] for r in _all(m, "SELECT * FROM epoch.status")]
    assert _one(m, "SELECT epoch.resolve(%s, 'users', '{\"id\": 2}', 'score', value => '42')", (mid,)) == 0
    _, status, _, rows, conflicts, commit = _all(m, "SELECT * FROM epoch.merge_continue(%s)", (mid,))[0]
    assert (status, rows, conflicts) == ("merged", 1, 0) and commit
    assert _one(m, "SELECT score FROM users WHERE id = 2") == 42
    # the branch merged again without new changes: up to date
    assert _merge(m, "feature", into="main")[1] == "up_to_date"


# base, ours (target), theirs (source) of one field -> the merged value or a conflict
FIELD_CELLS = [
    # (base, ours, theirs, expected)  expected "C" = modify_modify
    ("a", "a", "a", "a"),
    ("a", "a", "t", "t"),
    ("a", "o", "a", "o"),
    ("a", "x", "x", "x"),
    ("a", "o", "t", "C"),
    (None, None, "t", "t"),
    (None, "o", None, "o"),
    ("a", None, "a", None),
    ("a", "a", None, None),
    ("a", None, None, None),
    (None, "o", "t", "C"),
    ("a", None, "t", "C"),
    ("a", "o", None, "C"),
    (None, "x", "x", "x"),
]


def test_every_field_cell(env):
    db = _db(env, "merge_cells")
    px = env.proxy()
    m = _conn(env, px, db)
    _all(m, "CREATE TABLE public.f (id int PRIMARY KEY, v text, w text DEFAULT 'same')")
    _all(m, "INSERT INTO public.f (id, v) SELECT i, %s FROM unnest(%s::text[]) WITH ORDINALITY AS x(b, i)",
         (None, [c[0] for c in FIELD_CELLS]))
    _all(m, "UPDATE public.f SET v = x.b FROM unnest(%s::text[]) WITH ORDINALITY AS x(b, i) WHERE id = i",
         ([c[0] for c in FIELD_CELLS],))
    _all(m, "SELECT epoch.track('public.f')")
    _all(m, "SELECT epoch.branch_create('src')")
    s = _conn(env, px, db, "src")
    for i, (base, ours, theirs, _) in enumerate(FIELD_CELLS, 1):
        if theirs != base:
            _all(s, "UPDATE f SET v = %s WHERE id = %s", (theirs, i))
        if ours != base:
            _all(m, "UPDATE f SET v = %s WHERE id = %s", (ours, i))
    mid, status, _, _, conflicts, _ = _merge(m, "src", into="main")
    want_conflicts = sorted(i for i, c in enumerate(FIELD_CELLS, 1) if c[3] == "C")
    assert status == "conflicted" and conflicts == len(want_conflicts)
    got = _all(m, "SELECT (pk->>'id')::int, kind, base_value, ours_value, theirs_value FROM epoch.conflicts "
                  "WHERE merge_id = %s ORDER BY 1", (mid,))
    assert got == [(i, "modify_modify", FIELD_CELLS[i - 1][0], FIELD_CELLS[i - 1][1], FIELD_CELLS[i - 1][2])
                   for i in want_conflicts]
    _all(m, "SELECT epoch.merge_abort(%s)", (mid,))
    assert _one(m, "SELECT status FROM epoch.merges WHERE merge_id = %s", (mid,)) == "aborted"
    # with theirs, every cell: the merged value, the source's on conflict
    mid, status, _, _, conflicts, _ = _merge(m, "src", into="main", strategy="theirs")
    assert (status, conflicts) == ("merged", 0)
    got = dict(_all(m, "SELECT id, v FROM f"))
    for i, (base, ours, theirs, want) in enumerate(FIELD_CELLS, 1):
        assert got[i] == (theirs if want == "C" else want), (i, base, ours, theirs, got[i])


def _kinds_setup(env, px, db):
    """One row per conflict kind, plus a field change that merges cleanly:
    2 modify_modify (v), 3 delete_modify (source deletes, target modifies),
    4 modify_delete (source modifies, target deletes), 10 add_add."""
    m = _conn(env, px, db)
    _all(m, "CREATE TABLE public.k (id int PRIMARY KEY, v text, w text)")
    _all(m, "INSERT INTO public.k SELECT g, 'v' || g, 'w' || g FROM generate_series(1, 5) g")
    _all(m, "SELECT epoch.track('public.k')")
    _all(m, "SELECT epoch.branch_create('src')")
    s = _conn(env, px, db, "src")
    for sql in ("UPDATE k SET w = 'clean' WHERE id = 1", "UPDATE k SET v = 'theirs' WHERE id = 2",
                "DELETE FROM k WHERE id = 3", "UPDATE k SET v = 'theirs' WHERE id = 4",
                "INSERT INTO k VALUES (10, 'theirs', 'x')", "DELETE FROM k WHERE id = 5"):
        _all(s, sql)
    for sql in ("UPDATE k SET v = 'ours' WHERE id = 2", "UPDATE k SET v = 'ours' WHERE id = 3",
                "DELETE FROM k WHERE id = 4", "INSERT INTO k VALUES (10, 'ours', 'x')",
                "DELETE FROM k WHERE id = 5"):   # both deleted 5: no conflict
        _all(m, sql)
    return m, s


KIND_EXPECT = {
    # strategy -> rows of k after the merge (None: conflicted, nothing applied)
    "three_way": None,
    "ours": [(1, "v1", "clean"), (2, "ours", "w2"), (3, "ours", "w3"), (10, "ours", "x")],
    "theirs": [(1, "v1", "clean"), (2, "theirs", "w2"), (4, "theirs", "w4"), (10, "theirs", "x")],
}
ALIASES = {"manual": "three_way", "main_wins": "ours", "target_wins": "ours",
           "branch_wins": "theirs", "source_wins": "theirs", "abort": "fail"}


def test_every_conflict_kind_under_every_strategy(env):
    px = env.proxy()
    for n, strategy in enumerate(["three_way", "ours", "theirs", "fail"] + sorted(ALIASES)):
        db = _db(env, f"merge_kinds_{n}")
        m, _ = _kinds_setup(env, px, db)
        before = _rows(m, "k")
        canon = ALIASES.get(strategy, strategy)
        if canon == "fail":
            e = _err(m, f"SELECT epoch.merge('src', \"into\" => 'main', strategy => '{strategy}')", "40001",
                     "4 conflicts")
            for kind in ("modify_modify", "delete_modify", "modify_delete", "add_add"):
                assert kind in e.diag.message_detail, e.diag.message_detail
            assert _rows(m, "k") == before and _one(m, "SELECT count(*) FROM epoch.merges") == 0
            continue
        mid, status, _, _, conflicts, _ = _merge(m, "src", into="main", strategy=strategy)
        if KIND_EXPECT[canon] is None:
            assert (status, conflicts) == ("conflicted", 4)
            assert _all(m, "SELECT (pk->>'id')::int, column_name, kind FROM epoch.conflicts WHERE merge_id = %s "
                           "ORDER BY 1", (mid,)) == [(2, "v", "modify_modify"), (3, None, "delete_modify"),
                                                     (4, None, "modify_delete"), (10, None, "add_add")]
            assert _rows(m, "k") == before
        else:
            assert (status, conflicts) == ("merged", 0), (strategy, status)
            assert _rows(m, "k") == KIND_EXPECT[canon], strategy
    _err(m, "SELECT epoch.merge('src', \"into\" => 'main', strategy => 'nope')", "22023", "unknown merge strategy")


def test_resolve_flows(env):
    px = env.proxy()
    db = _db(env, "merge_resolve")
    m, s = _kinds_setup(env, px, db)
    mid = _merge(m, "src", into="main")[0]
    _err(m, "SELECT epoch.resolve(%s, 'k', '{\"id\": 3}', value => 'x')", "22023", "row-level", (mid,))
    _err(m, "SELECT epoch.resolve(%s, 'k', '{\"id\": 3}', value => '{\"nope\": 1}')", "42703", "nope", (mid,))
    _err(m, "SELECT epoch.resolve(%s, 'k', '{\"id\": 2}', 'nope', side => 'ours')", "42703", "nope", (mid,))
    _err(m, "SELECT epoch.resolve(%s, 'k', '{\"id\": 99}', side => 'ours')", "42704", "no conflict", (mid,))
    _err(m, "SELECT epoch.resolve(%s, 'k', '{\"id\": 2}', 'v', side => 'sideways')", "22023", "unknown side", (mid,))
    assert _one(m, "SELECT epoch.resolve(%s, 'k', '{\"id\": 2}', 'v', side => 'base')", (mid,)) == 3
    assert _one(m, "SELECT epoch.resolve(%s, 'k', '{\"id\": 3}', side => 'theirs')", (mid,)) == 2
    # a row-level conflict resolved with a row of one's own (the key is the conflict's)
    assert _one(m, "SELECT epoch.resolve(%s, 'k', '{\"id\": 10}', value => '{\"v\": \"mine\", \"w\": null}')",
                (mid,)) == 1
    assert _one(m, "SELECT epoch.resolve_all(%s, side => 'ours')", (mid,)) == 0   # none left
    # the target moves on meanwhile: row 1's w now conflicts too, and is reported
    _all(m, "UPDATE k SET w = 'live' WHERE id = 1")
    _, status, _, _, conflicts, _ = _all(m, "SELECT * FROM epoch.merge_continue(%s)", (mid,))[0]
    assert (status, conflicts) == ("conflicted", 1)
    assert _all(m, "SELECT (pk->>'id')::int, column_name, ours_value, theirs_value FROM epoch.conflicts "
                   "WHERE merge_id = %s AND NOT resolved", (mid,)) == [(1, "w", "live", "clean")]
    assert _one(m, "SELECT w FROM k WHERE id = 1") == "live"
    _all(m, "SELECT epoch.resolve(%s, 'k', '{\"id\": 1}', 'w', side => 'theirs')", (mid,))
    _, status, _, rows, conflicts, commit = _all(m, "SELECT * FROM epoch.merge_continue(%s, 'resolved')", (mid,))[0]
    assert (status, conflicts) == ("merged", 0)
    assert _rows(m, "k") == [(1, "v1", "clean"), (2, "v2", "w2"), (4, None, None)][:0] + _rows(m, "k")
    got = dict((r[0], r[1:]) for r in _rows(m, "k"))
    assert got[1] == ("v1", "clean") and got[2] == ("v2", "w2") and 3 not in got and 4 not in got
    assert got[10] == ("mine", None)
    assert _one(m, "SELECT message FROM epoch.commits WHERE id = %s", (commit,)) == "resolved"
    _err(m, "SELECT epoch.merge_abort(%s)", "55000", "is merged", (mid,))
    _err(m, "SELECT epoch.merge_continue(12345)", "42704", "does not exist")


def test_dry_run_fast_forward_up_to_date(env):
    px, db, m, (a,) = _users_and_branches(env, "merge_ff", "a")
    assert _merge(m, "a", into="main")[1] == "up_to_date"
    _all(a, "UPDATE users SET name = 'A' WHERE id = 1")
    before = _rows(m)
    mid, status, tables, rows, conflicts, commit = _merge(m, "a", into="main", dry_run=True)
    assert (status, tables, rows, conflicts, commit) == ("dry_run", 1, 1, 0, None)
    assert _rows(m) == before and _one(m, "SELECT count(*) FROM epoch.commits") == 0   # nothing, not even the auto-commit
    # main unchanged since the branch's base: a fast-forward
    mid, status, _, rows, _, commit = _merge(m, "a", into="main")
    assert (status, rows) == ("fast_forward", 1) and commit
    assert _one(m, "SELECT name FROM users WHERE id = 1") == "A"
    # into a branch: b, made from main after that, takes a's next change by fast-forward
    _all(m, "SELECT epoch.branch_create('b')")
    _all(a, "UPDATE users SET name = 'AA' WHERE id = 1")
    mid, status, _, _, _, commit = _merge(m, "a", into="b")
    assert status == "fast_forward"
    b = _conn(env, px, db, "b")
    assert _one(b, "SELECT name FROM users WHERE id = 1") == "AA"
    assert _one(m, "SELECT head FROM epoch.branches WHERE name = 'b'") == commit
    assert _one(m, "SELECT head FROM epoch.branches WHERE name = 'a'") == commit
    # a merge into a branch with uncommitted changes is refused, as git does
    _all(b, "UPDATE users SET score = 9 WHERE id = 3")
    _all(a, "UPDATE users SET score = 8 WHERE id = 2")
    _err(m, "SELECT epoch.merge('a', \"into\" => 'b')", "55000", "uncommitted changes")
    _err(b, "SELECT epoch.merge('b')", "22023", "into itself")
    _err(m, "SELECT epoch.merge('nosuch', \"into\" => 'main')", "42704")
    _err(m, "SELECT epoch.merge('a', \"into\" => 'nosuch')", "42704")


def test_sync_brings_main_into_a_branch(env):
    px, db, m, (b,) = _users_and_branches(env, "merge_sync", "s")
    _all(b, "UPDATE users SET name = 'ANN' WHERE id = 1")
    _all(b, "SELECT epoch.commit('branch work')")
    _all(m, "UPDATE users SET email = 'ann@new' WHERE id = 1")     # same row, other field
    _all(m, "UPDATE users SET score = 30 WHERE id = 3")             # a row the branch left alone
    _all(m, "INSERT INTO users VALUES (4, 'dee', 'd@x', 4)")
    base_before = _one(m, "SELECT base FROM epoch.branches WHERE name = 's'")
    _, status, _, _, conflicts, commit = _all(b, "SELECT * FROM epoch.sync()")[0]
    assert (status, conflicts) == ("merged", 0)
    assert _one(m, "SELECT base FROM epoch.branches WHERE name = 's'") != base_before
    assert _rows(b) == [(1, "ANN", "ann@new", 1), (2, "bob", "bob@x", 2), (3, "cy", None, 30), (4, "dee", "d@x", 4)]
    # the branch holds only what it changed: rows it left alone follow main
    # (as of the sync, the branch's new base; the next sync brings more)
    assert _one(m, "SELECT changed_rows FROM epoch.branches WHERE name = 's'") == 1
    _all(m, "UPDATE users SET score = 31 WHERE id = 3")
    assert _one(b, "SELECT score FROM users WHERE id = 3") == 30
    _, status, _, rows, _, _ = _all(b, "SELECT * FROM epoch.sync()")[0]
    assert (status, rows) == ("merged", 1)
    assert _one(b, "SELECT score FROM users WHERE id = 3") == 31
    assert _one(m, "SELECT changed_rows FROM epoch.branches WHERE name = 's'") == 1
    # and merging the branch back changes only its own row (main has not
    # changed since the last sync: a fast-forward)
    _, status, _, rows, conflicts, _ = _merge(m, "s", into="main")
    assert (status, rows, conflicts) == ("fast_forward", 1, 0)
    assert _rows(m) == [(1, "ANN", "ann@new", 1), (2, "bob", "bob@x", 2), (3, "cy", None, 31), (4, "dee", "d@x", 4)]


def test_merge_into_main_checks_privileges(env):
    px = env.proxy()
    db = _db(env, "merge_priv")
    m = _users(env, px, db)
    for role in ("mg_reader", "mg_writer"):
        env.pg.create_role(role, "pw")
    _all(m, "GRANT SELECT ON public.users TO mg_reader")
    _all(m, "GRANT SELECT, INSERT, UPDATE, DELETE ON public.users TO mg_writer")
    r = env.closing(px.connect(dbname=db, user="mg_reader", password="pw", autocommit=True))
    _all(r, "SELECT epoch.branch_create('rb')")
    rb = env.closing(px.connect(dbname=f"{db}@rb", user="mg_writer", password="pw", autocommit=True))
    _all(rb, "UPDATE users SET name = 'x' WHERE id = 2")
    before = _rows(m)
    _err(r, "SELECT epoch.merge('rb', \"into\" => 'main')", "42501", "permission denied for table users")
    assert _rows(m) == before
    w = env.closing(px.connect(dbname=db, user="mg_writer", password="pw", autocommit=True))
    assert _merge(w, "rb", into="main")[1] == "fast_forward"
    assert _one(m, "SELECT name FROM users WHERE id = 2") == "x"
    assert _one(m, "SELECT who FROM epoch.merges ORDER BY merge_id DESC LIMIT 1") == "mg_writer"
    # a conflicted merge is continued or aborted by who started it, or an admin
    _all(rb, "UPDATE users SET name = 'y' WHERE id = 2")
    _all(m, "UPDATE users SET name = 'z' WHERE id = 2")
    mid = _merge(w, "rb", into="main")[0]
    _err(r, "SELECT epoch.merge_abort(%s)", "42501", "mg_writer", (mid,))
    _all(m, "SELECT epoch.merge_abort(%s)", (mid,))   # the schema owner is an admin


def test_constraint_violation_aborts_the_merge(env):
    px = env.proxy()
    db = _db(env, "merge_fk")
    m = _conn(env, px, db)
    _all(m, "CREATE TABLE public.p (id int PRIMARY KEY)")
    _all(m, "CREATE TABLE public.c (id int PRIMARY KEY, p int REFERENCES public.p, u text UNIQUE)")
    _all(m, "INSERT INTO public.p VALUES (1), (2)")
    _all(m, "INSERT INTO public.c VALUES (1, 1, 'a')")
    _all(m, "SELECT epoch.track_all('public')")
    _all(m, "SELECT epoch.branch_create('f')")
    f = _conn(env, px, db, "f")
    _all(f, "INSERT INTO c VALUES (2, 2, 'b')")
    _all(m, "DELETE FROM c WHERE id = 1")
    _all(m, "DELETE FROM p WHERE id = 2")                     # main drops the parent the branch uses
    e = _err(m, "SELECT epoch.merge('f', \"into\" => 'main')", "23503", "foreign key")
    assert "While merging \"f\" into \"main\"" in e.diag.message_detail
    assert _all(m, "SELECT * FROM c") == [] and _one(m, "SELECT count(*) FROM epoch.merges") == 0


def test_branch_into_branch_and_repeated_merges(env):
    px, db, m, (x, y) = _users_and_branches(env, "merge_bb", "x", "y")
    _all(x, "UPDATE users SET name = 'X' WHERE id = 1")
    _all(y, "UPDATE users SET email = 'Y' WHERE id = 1")
    _all(y, "SELECT epoch.commit('y work')")
    _, status, _, _, conflicts, _ = _merge(m, "x", into="y")
    assert (status, conflicts) == ("merged", 0)
    assert _one(y, "SELECT name || email FROM users WHERE id = 1") == "XY"
    # x merged into main (from x's own session), changed again, merged
    # again: only the new change counts
    assert _merge(x, "x", into="main")[1] == "fast_forward"
    assert _one(x, "SELECT current_setting('epoch.branch')") == "x"
    _all(m, "UPDATE users SET name = 'prod' WHERE id = 2")
    _all(x, "UPDATE users SET score = 100 WHERE id = 1")
    _, status, _, rows, conflicts, _ = _merge(m, "x", into="main")
    assert (status, rows, conflicts) == ("merged", 1, 0)
    assert _rows(m)[:2] == [(1, "X", "ann@x", 100), (2, "prod", "bob@x", 2)]


def _blocked_merge(env, px, db, victim_px):
    """Tables a and b on main, a branch that changed one row of each, and a
    merge of it into main (through victim_px, in a thread) that has written
    a and waits for a row lock of b held by another session. Returns main's
    connection, the blocker, the merging backend's pid and the psql
    process that runs the merge."""
    m = _conn(env, px, db)
    for t in ("a", "b"):
        _all(m, f"CREATE TABLE public.{t} (id int PRIMARY KEY, v text)")
        _all(m, f"INSERT INTO public.{t} VALUES (1, 'main'), (2, 'main')")
    _all(m, "SELECT epoch.track_all('public')")
    _all(m, "SELECT epoch.branch_create('k')")
    k = _conn(env, px, db, "k")
    _all(k, "UPDATE a SET v = 'k' WHERE id = 1")
    _all(k, "UPDATE b SET v = 'k' WHERE id = 1")
    blocker = env.closing(env.pg.admin_connect(db))
    blocker.autocommit = False
    blocker.cursor().execute("SELECT * FROM b WHERE id = 1 FOR UPDATE")
    # psql, so that killing it is the client going away
    victim = subprocess.Popen(
        [harness.PSQL, "-X", "-d", f"host=127.0.0.1 port={victim_px.port} user={harness.DEFAULT_USER} dbname={db}",
         "-c", "SELECT epoch.merge('k', \"into\" => 'main')"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=harness.client_env(harness.DEFAULT_PASSWORD))
    harness.register_cleanup(victim.kill)
    pid = harness.wait_until(lambda: _one(m, "SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE query LIKE "
                                             "'SELECT epoch.merge(%' AND wait_event_type = 'Lock'"), 20,
                             message="the merge to wait for b's row")
    return m, blocker, pid, victim


def _merged_or_untouched(m):
    rows = _all(m, "SELECT v FROM a WHERE id = 1 UNION ALL SELECT v FROM b WHERE id = 1")
    merges = _all(m, "SELECT status FROM epoch.merges")
    assert (rows, merges) in (([("main",), ("main",)], []), ([("k",), ("k",)], [("fast_forward",)])), (rows, merges)
    return rows


def test_merge_is_all_or_nothing_when_killed(env):
    """The merge has written table a and waits on a row of b. (1) Its
    backend is terminated: nothing of it remains. (2) The proxy holding its
    client is killed with SIGKILL, and (3) its client goes away: PostgreSQL
    finishes the merge (the server does not see the client leave while it
    waits), so it is wholly there. Never a half merge."""
    px = env.proxy()
    db = _db(env, "merge_kill1")
    m, blocker, pid, victim = _blocked_merge(env, px, db, px)
    assert _one(m, "SELECT pg_terminate_backend(%s)", (pid,)) is True
    blocker.rollback()
    harness.wait_until(lambda: _one(m, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)) == 0, 20)
    assert _merged_or_untouched(m) == [("main",), ("main",)]
    assert _one(m, "SELECT count(*) FROM epoch.commits") == 0   # the auto-commits went with it
    # (2) SIGKILL of the proxy the merging client is connected to
    px2 = env.proxy()
    db = _db(env, "merge_kill2")
    m, blocker, pid, victim = _blocked_merge(env, px, db, px2)
    px2.kill()
    blocker.rollback()
    harness.wait_until(lambda: _one(m, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND state = 'active'",
                                    (pid,)) == 0, 20)
    assert _merged_or_untouched(m) == [("k",), ("k",)]
    # (3) the client disconnects while the merge waits
    db = _db(env, "merge_kill3")
    m, blocker, pid, victim = _blocked_merge(env, px, db, px)
    victim.kill()
    victim.wait(10)
    blocker.rollback()
    harness.wait_until(lambda: _one(m, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND state = 'active'",
                                    (pid,)) == 0, 20)
    assert _merged_or_untouched(m) == [("k",), ("k",)]


def _swallow(conn, sql):
    try:
        conn.cursor().execute(sql)
    except psycopg2.Error:
        pass


def _merge_rounds(env, px, db, m, rounds, prefix, sql, value):
    """rounds times: a branch prefix<r> runs sql with (value<r>, r), then
    merges into main (while the caller's writers run)."""
    for r in range(rounds):
        _all(m, "SELECT epoch.branch_create(%s)", (f"{prefix}{r}",))
        b = _conn(env, px, db, f"{prefix}{r}")
        _all(b, sql, (f"{value}{r}", r))
        status = _merge(m, f"{prefix}{r}", into="main")[1]
        assert status in ("merged", "fast_forward"), status


def test_concurrent_writers_on_main_lose_nothing(env):
    """Writers increment counters on main (through the proxy and straight to
    PostgreSQL) while branches that changed other columns merge into it: no
    increment is lost, every branch change lands."""
    px = env.proxy()
    db = _db(env, "merge_conc")
    m = _conn(env, px, db)
    _all(m, "CREATE TABLE public.acc (id int PRIMARY KEY, n int NOT NULL, tag text)")
    _all(m, "INSERT INTO public.acc SELECT g, 0, NULL FROM generate_series(1, 50) g")
    _all(m, "SELECT epoch.track('public.acc')")
    stop = threading.Event()
    counts = [0, 0]

    def writer(i, conn):
        rnd = random.Random(i)
        while not stop.is_set():
            conn.cursor().execute("UPDATE acc SET n = n + 1 WHERE id = %s", (rnd.randint(1, 50),))
            counts[i] += 1

    w0 = env.closing(px.connect(dbname=db, autocommit=True))
    w1 = env.closing(env.pg.admin_connect(db))
    w1.autocommit = True
    threads = [threading.Thread(target=writer, args=(0, w0)), threading.Thread(target=writer, args=(1, w1))]
    for t in threads:
        t.start()
    try:
        _merge_rounds(env, px, db, m, 5, "c", "UPDATE acc SET tag = %s WHERE id %% 5 = %s", "t")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert _one(m, "SELECT sum(n) FROM acc") == sum(counts)
    assert _all(m, "SELECT id % 5, tag, count(*) FROM acc GROUP BY 1, 2 ORDER BY 1") == [
        (r, f"t{r}", 10) for r in range(5)]


def test_row_changed_during_the_merge_is_merged_again(env):
    """A write of main that lands after the merge read main and before it
    applies (the merge is held in its read by a lock on the branch's delta
    table; the writer commits once the merge waits for the commit lock) is
    seen under the lock and merged again: a clash on the same field becomes
    a conflict, a change of another field is kept beside the branch's."""
    px, db, m, (b,) = _users_and_branches(env, "merge_again", "feature")
    _all(b, "UPDATE users SET name = 'Ann', score = 10 WHERE id = 1")
    source = _one(b, "SELECT epoch.commit('feature')")   # a commit: the merge reads no working state
    merger = _conn(env, px, db)
    _all(merger, "SET client_min_messages = debug1")
    delta = _one(m, "SELECT delta_table FROM epoch.tracked WHERE table_name = 'users'")
    pid = _one(merger, "SELECT pg_backend_pid()")

    def merge_with_a_write_in_between(sql):
        holder = env.closing(env.pg.admin_connect(db))
        holder.autocommit = False
        holder.cursor().execute(f"LOCK TABLE epoch.{delta} IN ACCESS EXCLUSIVE MODE")
        out = {}
        merger.notices.clear()

        def run():
            try:
                out["row"] = _merge(merger, source, into="main")
            except psycopg2.Error as e:
                out["error"] = e
        t = threading.Thread(target=run)
        t.start()
        waits = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'"
        harness.wait_until(lambda: _one(m, waits, (pid,)) == 1, 20, message="the merge to read the branch")
        writer = env.closing(env.pg.admin_connect(db))
        writer.autocommit = False
        writer.cursor().execute(sql)          # main's row changes, not committed yet
        holder.rollback()                     # the merge reads main without the write...
        harness.wait_until(lambda: _one(m, waits + " AND wait_event = 'advisory'", (pid,)) == 1, 20,
                           message="the merge to wait for the commit lock")
        writer.commit()                       # ...which is committed before the merge applies
        t.join(30)
        assert "error" not in out, out
        assert any("changed during the merge, planned again" in n for n in merger.notices), merger.notices
        return out["row"]

    mid, status, _, _, conflicts, _ = merge_with_a_write_in_between("UPDATE users SET score = 99 WHERE id = 1")
    assert (status, conflicts) == ("conflicted", 1)
    assert _all(m, "SELECT column_name, base_value, ours_value, theirs_value FROM epoch.conflicts WHERE merge_id = %s",
                (mid,)) == [("score", "1", "99", "10")]
    assert _rows(m)[0] == (1, "ann", "ann@x", 99)     # nothing applied, the write kept
    _all(m, "SELECT epoch.merge_abort(%s)", (mid,))
    _all(m, "UPDATE users SET score = 1 WHERE id = 1")
    mid, status, _, rows, conflicts, _ = merge_with_a_write_in_between("UPDATE users SET email = 'ann@new' WHERE id = 1")
    assert (status, rows, conflicts) == ("merged", 1, 0)
    assert _rows(m)[0] == (1, "Ann", "ann@new", 10)   # the branch's fields and the write's


def test_pgbench_on_main_during_merges(env):
    """pgbench (TPC-B) on main through the proxy and straight to PostgreSQL
    while three branches that changed pgbench_accounts.filler merge into it:
    every merge lands, and pgbench's balances still add up (a merge that
    wrote back a stale abalance would break the sums)."""
    px = env.proxy()
    db = _db(env, "merge_pgbench")
    px.pgbench("-i", "-s", "1", "-q", dbname=db, check=True)
    m = _conn(env, px, db)
    _all(m, "SELECT epoch.track_all('public')")
    runs = {}

    def bench(name, fn):
        runs[name] = fn("-n", "-c", "2", "-j", "1", "-T", "8", dbname=db)

    threads = [threading.Thread(target=bench, args=("proxy", px.pgbench)),
               threading.Thread(target=bench, args=("direct", lambda *a, **k: harness.pgbench(
                   "127.0.0.1", env.pg.port, *a, **k)))]
    for t in threads:
        t.start()
    try:
        _merge_rounds(env, px, db, m, 3, "pb", "UPDATE pgbench_accounts SET filler = %s WHERE aid %% 10 = %s", "b")
    finally:
        for t in threads:
            t.join(60)
    for name, cp in runs.items():
        assert cp.returncode == 0, (name, cp.stdout, cp.stderr)
        assert int(re.search(r"number of transactions actually processed: (\d+)", cp.stdout).group(1)) > 0
    sums = _all(m, "SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(bbalance) FROM pgbench_branches), "
                   "(SELECT sum(tbalance) FROM pgbench_tellers), (SELECT sum(delta) FROM pgbench_history)")[0]
    assert sums[0] == sums[1] == sums[2] == sums[3] and sums[3] is not None, sums
    assert _all(m, "SELECT btrim(filler), count(*) FROM pgbench_accounts WHERE filler LIKE 'b%' GROUP BY 1 ORDER BY 1") \
        == [("b0", 10000), ("b1", 10000), ("b2", 10000)]


def test_differential_random_merges(env):
    """Seeded random changes on main and on a branch, merged with each
    strategy, against an in-memory three-way merge of the same states."""
    px = env.proxy()
    for strategy in ("three_way", "ours", "theirs"):
        seed = {"three_way": 11, "ours": 12, "theirs": 13}[strategy]
        rnd = random.Random(seed)
        db = _db(env, f"merge_diff_{strategy}")
        m = _conn(env, px, db)
        _all(m, "CREATE TABLE public.d (id int PRIMARY KEY, a int, b text)")
        base = {i: (rnd.choice([None, 1, 2]), rnd.choice([None, "x", "y"])) for i in range(1, 301)}
        _all(m, "INSERT INTO public.d SELECT * FROM unnest(%s::int[], %s::int[], %s::text[])",
             (list(base), [v[0] for v in base.values()], [v[1] for v in base.values()]))
        _all(m, "SELECT epoch.track('public.d')")
        _all(m, "SELECT epoch.branch_create('r')")
        b = _conn(env, px, db, "r")
        ours, theirs = dict(base), dict(base)
        for state, conn in ((theirs, b), (ours, m)):
            for _ in range(900):          # 1,800 operations per strategy, 5,400 in all
                op = rnd.random()
                k = rnd.randint(1, 330)
                if op < 0.2 and k not in state:
                    row = (rnd.choice([None, 1, 2, 3]), rnd.choice([None, "x", "z"]))
                    _all(conn, "INSERT INTO d VALUES (%s, %s, %s)", (k, *row))
                    state[k] = row
                elif op < 0.35 and k in state:
                    _all(conn, "DELETE FROM d WHERE id = %s", (k,))
                    del state[k]
                elif k in state:
                    col = rnd.choice(["a", "b"])
                    val = rnd.choice([None, 1, 2, 3]) if col == "a" else rnd.choice([None, "x", "z", "w"])
                    _all(conn, f"UPDATE d SET {col} = %s WHERE id = %s", (val, k))
                    state[k] = (val, state[k][1]) if col == "a" else (state[k][0], val)
        want, conflicts = _model_merge(base, ours, theirs, strategy)
        mid, status, _, _, nconf, _ = _merge(m, "r", into="main", strategy=strategy)
        got = {r[0]: (r[1], r[2]) for r in _all(m, "SELECT * FROM d")}
        if strategy == "three_way" and conflicts:
            assert status == "conflicted" and nconf == len(conflicts)
            assert sorted(_all(m, "SELECT (pk->>'id')::int, coalesce(column_name, ''), kind FROM epoch.conflicts "
                                  "WHERE merge_id = %s", (mid,))) == sorted(conflicts)
            assert got == ours
        else:
            assert status in ("merged", "fast_forward") and nconf == 0
            assert got == want, strategy


def _model_merge(base, ours, theirs, strategy):
    out, conflicts = dict(ours), []
    cols = ["a", "b"]
    for k in set(base) | set(ours) | set(theirs):
        b, o, t = base.get(k), ours.get(k), theirs.get(k)
        if t == b or o == t:
            continue
        if o == b:
            if t is None:
                out.pop(k, None)
            else:
                out[k] = t
            continue
        if b is not None and o is not None and t is not None:
            row = list(o)
            for i in range(2):
                if t[i] == b[i] or o[i] == t[i]:
                    continue
                if o[i] == b[i]:
                    row[i] = t[i]
                else:
                    conflicts.append((k, cols[i], "modify_modify"))
                    if strategy == "theirs":
                        row[i] = t[i]
            out[k] = tuple(row)
            continue
        kind = "add_add" if b is None else ("delete_modify" if t is None else "modify_delete")
        conflicts.append((k, "", kind))
        if strategy == "theirs":
            if t is None:
                out.pop(k, None)
            else:
                out[k] = t
    return out, conflicts
