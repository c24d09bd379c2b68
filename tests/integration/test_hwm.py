"""The HWM store and the audit trail (docs/hwm.md, docs/audit.md).

1. The role matrix: every operation of the store × the namespace's owner, a
   second owner, a maintainer, a developer, a guest, a role with no role in
   the namespace, an inactive user, an admin (member of epoch_admin) and a
   superuser: the same allowed / refused answers (and SQLSTATEs) through the
   proxy and on a direct connection, each in a transaction rolled back.
2. History completeness: every change of a namespace or an HWM gives exactly
   one history row, with its action and user; a rolled-back change and a
   change that changes nothing give none.
3. Append-only: UPDATE / DELETE / TRUNCATE of the histories and the audit are
   refused to everyone (the tables' owner too, through the proxy and
   directly); rows changed behind the triggers' back by a superuser show in
   epoch.hwm_verify().
4. hwm_advance: a consumer killed before committing reads the same rows
   again; after a commit, only what changed since.
5. The audit rows of each operation, in the operation's transaction.
"""

import psycopg2

import harness
from test_history import _all, _err, _one

PW = "pw"


def _outcome(conn, sql):
    """('ok', first value) or ('err', sqlstate), in a transaction rolled back."""
    cur = conn.cursor()
    cur.execute("BEGIN")
    try:
        cur.execute(sql)
        row = cur.fetchone() if cur.description else None
        return ("ok", row[0] if row else None)
    except psycopg2.Error as e:
        return ("err", e.pgcode)
    finally:
        cur.execute("ROLLBACK")


def _setup(env, db, prefix):
    """Database db (owned by the test role), tracked table t, namespace ns
    (owned by role prefix_owner) with HWMs h (a value) and m (a change
    mark), and the roles of the matrix with their roles in ns."""
    pg = env.pg
    pg.create_database(db)
    keys = ("owner", "owner2", "maint", "dev", "guest", "stranger", "inactive", "admin", "super")
    roles = {k: f"{prefix}_{k}" for k in keys}
    for k, r in roles.items():
        pg.create_role(r, PW, superuser=(k == "super"))
    pg.sql("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'epoch_admin') "
           "THEN CREATE ROLE epoch_admin NOLOGIN; END IF; END $$;")
    pg.sql(f"GRANT epoch_admin TO {roles['admin']};")
    px = env.proxy()
    own = env.closing(px.connect(dbname=db, autocommit=True))
    _all(own, "CREATE TABLE public.t (id int PRIMARY KEY, v text)")
    _all(own, "INSERT INTO t VALUES (1, 'a')")
    _all(own, "SELECT epoch.track('t')")
    _all(own, "GRANT SELECT ON t TO PUBLIC")
    o = _conn(px, roles["owner"], db)
    _all(o, "SELECT epoch.namespace_create('ns', 'the matrix')")
    _all(o, "SELECT epoch.hwm_set('ns', 'h', '{\"ts\": 1}', 'timestamp')")
    _all(o, "SELECT epoch.hwm_set('ns', 'm', '0', 'mark')")
    for k, role in (("owner2", "owner"), ("maint", "maintainer"), ("dev", "Developer"), ("guest", "GUEST"),
                    ("inactive", "developer")):
        _all(o, "SELECT epoch.grant('ns', %s, %s)", (roles[k], role))
    _all(own, "INSERT INTO t VALUES (2, 'b')")   # a change for hwm_advance
    _all(_conn(px, roles["admin"], db), "SELECT epoch.user_set_active(%s, false)", (roles["inactive"],))
    return px, own, roles


def _conn(px, user, db, branch=None):
    return px.connect(user=user, password=PW, dbname=f"{db}@{branch}" if branch else db, autocommit=True)


# (operation, SQL); {stranger}: the role with no role in ns
OPERATIONS = [
    ("get", "SELECT epoch.hwm_get('ns', 'h')"),
    ("list", "SELECT count(*) FROM epoch.hwms WHERE namespace = 'ns'"),
    ("history", "SELECT count(*) > 0 FROM epoch.hwm_history WHERE namespace = 'ns'"),
    ("see_ns", "SELECT count(*) FROM epoch.namespaces WHERE name = 'ns'"),
    ("set", "SELECT epoch.hwm_set('ns', 'h', '{\"ts\": 2}')"),
    ("create", "SELECT epoch.hwm_set('ns', 'new', '1', 'id')"),
    ("describe", "SELECT epoch.hwm_set('ns', 'h', '{\"ts\": 1}', description => 'orders')"),
    ("delete", "SELECT epoch.hwm_delete('ns', 'h')"),
    ("advance", "SELECT count(*) FROM epoch.hwm_advance('ns', 'm', 'public.t')"),
    ("ns_update", "SELECT epoch.namespace_update('ns', description => 'changed')"),
    ("ns_rename", "SELECT epoch.namespace_update('ns', new_name => 'ns2')"),
    ("ns_delete", "SELECT epoch.namespace_delete('ns', force => true)"),
    ("grant", "SELECT epoch.grant('ns', '{stranger}', 'guest')"),
    ("revoke", "SELECT epoch.revoke('ns', '{guest}')"),
    ("activate", "SELECT epoch.user_set_active('{stranger}', false)"),
    ("ns_create", "SELECT epoch.namespace_create('new_ns')"),
]

RETURNS_AN_ID = {"set", "create", "describe", "ns_update", "ns_rename", "ns_create"}
OK, DENIED, MISSING = ("ok",), ("err", "42501"), ("err", "42704")
_ALL_OK = {op: OK for op, _ in OPERATIONS}
_GUEST = dict(_ALL_OK, set=DENIED, create=DENIED, describe=DENIED, delete=DENIED, advance=DENIED,
              ns_update=DENIED, ns_rename=DENIED, ns_delete=DENIED, grant=DENIED, revoke=DENIED,
              activate=DENIED)
_DEV = dict(_GUEST, set=OK, advance=OK)
_MAINT = dict(_DEV, create=OK, describe=OK, delete=OK)
_OWNER = dict(_MAINT, ns_update=OK, ns_rename=OK, ns_delete=OK, grant=OK, revoke=OK)
EXPECTED = {
    "super": _ALL_OK,
    "admin": _ALL_OK,
    "owner": _OWNER,
    "owner2": _OWNER,
    "maint": _MAINT,
    "dev": _DEV,
    "guest": _GUEST,
    # no role in ns: it does not exist for them; listing shows nothing
    "stranger": dict({op: MISSING for op, _ in OPERATIONS}, list=("ok", 0), history=("ok", False),
                     see_ns=("ok", 0), activate=DENIED, ns_create=OK),
    # inactive: refused everything, sees nothing
    "inactive": dict({op: DENIED for op, _ in OPERATIONS}, list=("ok", 0), history=("ok", False),
                     see_ns=("ok", 0)),
}


def _matches(expected, got):
    return got == expected if len(expected) == 2 else got[0] == "ok"


def test_role_matrix_same_through_the_proxy_and_directly(env):
    db = "hwm_matrix"
    px, own, roles = _setup(env, db, "hm")
    checked = set()
    for key, role in sorted(roles.items()):
        via_proxy = env.closing(_conn(px, role, db))
        direct = env.closing(env.pg.connect(user=role, password=PW, dbname=db))
        direct.autocommit = True
        for op, sql in OPERATIONS:
            sql = sql.replace("{stranger}", roles["stranger"]).replace("{guest}", roles["guest"])
            p, d = _outcome(via_proxy, sql), _outcome(direct, sql)
            if op in RETURNS_AN_ID and p[0] == "ok" and d[0] == "ok":
                p, d = ("ok", "id"), ("ok", "id")   # ids come from sequences: they differ
            assert p == d, f"{role} {op}: proxy {p}, direct {d}"
            want = EXPECTED[key][op]
            assert _matches(want, p), f"{role} {op}: expected {want}, got {p}"
            checked.add(p[0])
    assert checked == {"ok", "err"}
    # the rows a role sees are the namespace's: a guest reads the value
    assert _one(_conn(px, roles["guest"], db), "SELECT epoch.hwm_get('ns', 'h')") == {"ts": 1}
    # role names in any case; an unknown one is 22023
    o = _conn(px, roles["owner"], db)
    _err(o, "SELECT epoch.grant('ns', %s, 'boss')", "22023", "unknown namespace role", (roles["stranger"],))
    _err(o, "SELECT epoch.grant('ns', 'no_such_role', 'guest')", "42704", 'role "no_such_role" does not exist')
    _err(o, "SELECT epoch.revoke('ns', %s)", "55000", "owns namespace", (roles["owner"],))
    assert _all(o, "SELECT username, role FROM epoch.namespace_roles WHERE namespace = 'ns' ORDER BY 1") == sorted([
        (roles["owner"], "OWNER"), (roles["owner2"], "OWNER"), (roles["maint"], "MAINTAINER"),
        (roles["dev"], "DEVELOPER"), (roles["guest"], "GUEST"), (roles["inactive"], "DEVELOPER")])
    # the storage is no way around: plain roles have no privilege on the tables
    d = env.closing(env.pg.connect(user=roles["dev"], password=PW, dbname=db))
    d.autocommit = True
    for sql in ("SELECT * FROM epoch.hwm_mark", "UPDATE epoch.hwm_mark SET value = '9'",
                "INSERT INTO epoch.hwm_grant VALUES (1, 'x', 4, now(), 'x')", "DELETE FROM epoch.audit"):
        _err(d, sql, "42501")
    # an inactive user made active again may work
    a = _conn(px, roles["admin"], db)
    _all(a, "SELECT epoch.user_set_active(%s, true)", (roles["inactive"],))
    assert _one(_conn(px, roles["inactive"], db), "SELECT epoch.hwm_set('ns', 'h', '3')") is not None
    assert _all(a, "SELECT is_active, is_admin FROM epoch.hwm_users WHERE username = %s", (roles["inactive"],)) == [
        (True, False)]


def test_history_has_every_change_once(env):
    db = "hwm_history"
    px, own, roles = _setup(env, db, "hh")
    o, dev = _conn(px, roles["owner"], db), _conn(px, roles["dev"], db)
    # _setup: namespace created, h and m created
    _all(dev, "SELECT epoch.hwm_set('ns', 'h', '{\"ts\": 2}')")
    _all(dev, "SELECT epoch.hwm_set('ns', 'h', '{\"ts\": 2}')")          # unchanged: no row
    _all(o, "SELECT epoch.hwm_set('ns', 'h', '{\"ts\": 2}', description => 'orders', entity => 'public.orders')")
    cur = dev.cursor()
    cur.execute("BEGIN")
    cur.execute("SELECT epoch.hwm_set('ns', 'h', '{\"ts\": 99}')")
    cur.execute("ROLLBACK")                                                # rolled back: no row
    _all(o, "SELECT epoch.namespace_update('ns', new_name => 'etl', description => 'ETL')")
    _all(o, "SELECT epoch.hwm_delete('etl', 'm')")
    _err(o, "SELECT epoch.namespace_delete('etl')", "2BP01", "holds 1 HWM")
    _all(o, "SELECT epoch.namespace_delete('etl', force => true)")
    a = _conn(px, roles["admin"], db)      # the namespace is gone: admins still read its history
    assert _all(a, "SELECT name, value, description, changed_by, action FROM epoch.hwm_history ORDER BY id") == [
        ("h", {"ts": 1}, None, roles["owner"], "Created"),
        ("m", 0, None, roles["owner"], "Created"),
        ("h", {"ts": 2}, None, roles["dev"], "Updated"),
        ("h", {"ts": 2}, "orders", roles["owner"], "Updated"),
        ("m", 0, None, roles["owner"], "Deleted"),
        ("h", {"ts": 2}, "orders", roles["owner"], "Deleted"),
    ]
    assert _all(a, "SELECT name, description, owned_by, action FROM epoch.namespace_history ORDER BY id") == [
        ("ns", "the matrix", roles["owner"], "Created"),
        ("etl", "ETL", roles["owner"], "Updated"),
        ("etl", "ETL", roles["owner"], "Deleted"),
    ]
    # the owner had a role in it; with the namespace gone, only admins see it
    assert _one(o, "SELECT count(*) FROM epoch.hwm_history") == 0
    assert _all(a, "SELECT * FROM epoch.hwm_verify()") == []
    # an HWM value is opaque: any JSON, the JSON null too; SQL NULL is refused
    _all(o, "SELECT epoch.namespace_create('n2')")
    _all(o, "SELECT epoch.hwm_set('n2', 'x', 'null', 't')")
    assert _one(o, "SELECT epoch.hwm_get('n2', 'x') = 'null'::jsonb") is True
    _err(o, "SELECT epoch.hwm_set('n2', 'x', NULL)", "22004")
    _err(o, "SELECT epoch.hwm_set('n2', 'y', '1')", "22004", "needs a type")
    _err(o, "SELECT epoch.hwm_get('n2', 'nope')", "42704", 'HWM "nope" does not exist in namespace "n2"')
    _err(o, "SELECT epoch.namespace_create('n2')", "42710", "already exists")
    _err(o, "SELECT epoch.namespace_create('  ')", "22023")


def test_histories_and_audit_are_append_only(env):
    db = "hwm_append"
    px, own, roles = _setup(env, db, "ha")
    d = env.closing(env.pg.connect(dbname=db))   # the test role: it owns schema epoch and the tables
    d.autocommit = True
    for conn in (own, d):
        for table in ("hwm_mark_log", "hwm_namespace_log", "audit_log"):
            for sql in (f"DELETE FROM epoch.{table}", f"UPDATE epoch.{table} SET id = id",
                        f"TRUNCATE epoch.{table}"):
                _err(conn, sql, "42501", "append-only")
        _err(conn, "DELETE FROM epoch.hwm_history", "55000", "cannot delete from view")   # the view: read-only
        _err(conn, "UPDATE epoch.hwm_mark SET namespace_id = namespace_id + 1", "42501", "never moves")
    # a plain role: no privilege on them at all
    g = _conn(px, roles["guest"], db)
    _err(g, "DELETE FROM epoch.hwm_mark_log", "42501", "permission denied")
    _err(g, "DELETE FROM epoch.audit", "42501", "permission denied")
    # a superuser can step around triggers; the chain shows it
    a = _conn(px, roles["admin"], db)
    assert _all(a, "SELECT * FROM epoch.hwm_verify()") == []
    s = env.pg.admin_connect(db)
    _all(s, "SET session_replication_role = replica")
    _all(s, "UPDATE epoch.hwm_mark_log SET value = '{\"ts\": 7}' WHERE name = 'h'")
    _all(s, "DELETE FROM epoch.hwm_namespace_log")
    s.close()
    problems = _all(a, "SELECT history, problem FROM epoch.hwm_verify() ORDER BY 1")
    assert ("hwm_history", "the row or the one before it was changed or removed") in problems, problems
    assert ("hwms", "differs from its last history row") in problems, problems
    assert ("namespaces", "differs from its last history row") in problems, problems
    _err(g, "SELECT * FROM epoch.hwm_verify()", "42501")


def test_hwm_advance_rereads_after_a_crash(env):
    db = "hwm_advance"
    px, own, roles = _setup(env, db, "hv")
    consumer = _conn(px, roles["dev"], db)
    cur = consumer.cursor()
    cur.execute("BEGIN")
    cur.execute("SELECT change, pk, \"row\" FROM epoch.hwm_advance('ns', 'm', 'public.t')")
    first = cur.fetchall()
    assert first == [("insert", {"id": 2}, {"id": "2", "v": "b"})], first
    su = env.closing(env.pg.admin_connect(db))   # sees and may end other roles' backends
    pid = _one(su, "SELECT pid FROM pg_stat_activity WHERE usename = %s AND state = 'idle in transaction'",
               (roles["dev"],))
    assert _one(su, "SELECT pg_terminate_backend(%s)", (pid,)) is True   # the consumer dies before committing
    harness.wait_until(lambda: _one(su, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)) == 0, 20)
    assert _one(own, "SELECT value FROM epoch.hwm_mark WHERE name = 'm'") == 0       # the mark did not move
    consumer = _conn(px, roles["dev"], db)
    again = _all(consumer, "SELECT change, pk, \"row\" FROM epoch.hwm_advance('ns', 'm', 'public.t')")
    assert again == first                                                    # read again, nothing skipped
    mark = _one(own, "SELECT value FROM epoch.hwm_mark WHERE name = 'm'")
    assert mark > 0
    assert _all(consumer, "SELECT * FROM epoch.hwm_advance('ns', 'm', 'public.t')") == []
    _all(own, "UPDATE t SET v = 'c' WHERE id = 1")
    assert _all(consumer, "SELECT change, pk FROM epoch.hwm_advance('ns', 'm', 'public.t')") == [("update", {"id": 1})]
    assert _one(own, "SELECT value FROM epoch.hwm_mark WHERE name = 'm'") > mark
    # a mark that is not one is refused
    _all(_conn(px, roles["owner"], db), "SELECT epoch.hwm_set('ns', 'm', '\"yesterday\"')")
    _err(consumer, "SELECT * FROM epoch.hwm_advance('ns', 'm', 'public.t')", "22023", "not a mark")


def test_every_operation_leaves_its_audit_row(env):
    db = "hwm_audit"
    px, own, roles = _setup(env, db, "au")
    start = _one(own, "SELECT coalesce(max(id), 0) FROM epoch.audit_log")
    steps = [
        (own, "SELECT epoch.branch_create('f')", "branch_create", "f"),
        (None, "UPDATE t SET v = 'f' WHERE id = 1", None, None),
        (None, "SELECT epoch.commit('on f')", "commit", "f"),
        (own, "SELECT epoch.tag('v1', 'f')", "tag", "main"),
        (own, "SELECT epoch.tag_delete('v1')", "tag_delete", "main"),
        (own, "SELECT epoch.branch_protect('f')", "branch_protect", "f"),
        (own, "SELECT epoch.branch_protect('f', false)", "branch_unprotect", "f"),
        (own, "SELECT epoch.merge('f', \"into\" => 'main', dry_run => true)", "merge_dry_run", "main"),
        (own, "SELECT epoch.merge('f', \"into\" => 'main')", "merge", "main"),
        (own, "SELECT epoch.branch_create('k')", "branch_create", "k"),
        ("k", "UPDATE t SET v = 'k' WHERE id = 2", None, None),
        ("k", "SELECT epoch.commit('on k')", "commit", "k"),
        (own, "UPDATE t SET v = 'main' WHERE id = 2", None, None),
        (own, "SELECT epoch.merge('k', \"into\" => 'main')", "merge", "main"),          # conflicted
        (own, "SELECT epoch.resolve(m.merge_id, 't', '{\"id\": 2}', 'v', side => 'theirs') "
              "FROM epoch.merges m WHERE m.status = 'conflicted'", "merge_resolve", "main"),
        (own, "SELECT epoch.merge_abort(merge_id) FROM epoch.merges WHERE status = 'conflicted'", "merge_abort", "main"),
        ("k", "SELECT epoch.revert('HEAD')", "revert", "k"),
        ("k", "SELECT epoch.reset('HEAD~1')", "reset", "k"),
        (own, "SELECT epoch.branch_create('short', ttl => '1 millisecond')", "branch_create", "short"),
        # (the sleep in a statement of its own: now() is the transaction's start)
        (own, "SELECT pg_sleep(0.01)", None, None),
        (own, "SELECT epoch.sweep()", "branch_expire", "short"),
        (own, "SELECT epoch.branch_rename('f', 'g')", "branch_rename", "g"),
        (own, "SELECT epoch.branch_delete('g', force => true)", "branch_delete", "g"),
        (own, "SELECT * FROM epoch.gc()", "gc", "main"),
        (own, "SELECT epoch.untrack('t', force => true)", "untrack", "main"),
        (own, "SELECT epoch.track('t')", "track", "main"),
        (own, "SELECT epoch.namespace_create('a1')", "namespace_created", "main"),
        (own, "SELECT epoch.namespace_update('a1', description => 'd')", "namespace_updated", "main"),
        (own, "SELECT epoch.hwm_set('a1', 'x', '1', 'id')", "hwm_created", "main"),
        (own, "SELECT epoch.hwm_set('a1', 'x', '2')", "hwm_updated", "main"),
        (own, "SELECT epoch.hwm_delete('a1', 'x')", "hwm_deleted", "main"),
        (own, "SELECT epoch.grant('a1', %s, 'guest')" % f"'{roles['guest']}'", "grant", "main"),
        (own, "SELECT epoch.revoke('a1', %s)" % f"'{roles['guest']}'", "revoke", "main"),
        (own, "SELECT epoch.user_set_active(%s, false)" % f"'{roles['guest']}'", "user_set_active", "main"),
        (own, "SELECT epoch.user_set_active(%s, true)" % f"'{roles['guest']}'", "user_set_active", "main"),
        (own, "SELECT epoch.namespace_delete('a1')", "namespace_deleted", "main"),
    ]
    expected = []
    on = {}
    for conn, sql, action, branch in steps:
        if conn is None or isinstance(conn, str):
            name = conn or "f"
            conn = on.get(name) or on.setdefault(name, env.closing(px.connect(dbname=f"{db}@{name}", autocommit=True)))
        _all(conn, sql)
        if action:
            expected.append((action, branch))
    got = _all(own, "SELECT action, branch FROM epoch.audit WHERE id > %s AND NOT coalesce((details->>'auto')::boolean, false) "
                    "ORDER BY id", (start,))
    # the merge also records its auto-commits and its merge commit
    assert [g for g in got if g[0] != "commit"] == [e for e in expected if e[0] != "commit"], got
    assert ("commit", "f") in got and got.count(("commit", "main")) >= 1, got
    merge = _one(own, "SELECT details FROM epoch.audit WHERE action = 'merge' AND id > %s ORDER BY id LIMIT 1", (start,))
    assert (merge["source"], merge["strategy"], merge["status"], merge["rows_affected"]) == \
        ("f", "three_way", "fast_forward", 1), merge
    assert all(u == harness.DEFAULT_USER for (u,) in _all(own, "SELECT DISTINCT username FROM epoch.audit "
                                                              "WHERE id > %s", (start,)))
    # a rolled-back operation leaves no row
    n = _one(own, "SELECT count(*) FROM epoch.audit_log")
    cur = own.cursor()
    cur.execute("BEGIN")
    cur.execute("SELECT epoch.branch_create('gone')")
    cur.execute("ROLLBACK")
    assert _one(own, "SELECT count(*) FROM epoch.audit_log") == n
    # a plain role sees its own rows; an admin every row
    g = _conn(px, roles["guest"], db)
    _all(g, "SELECT epoch.branch_create('mine')")
    assert _all(g, "SELECT DISTINCT username FROM epoch.audit") == [(roles["guest"],)]
    assert _one(_conn(px, roles["admin"], db), "SELECT count(DISTINCT username) FROM epoch.audit") >= 3
    # the client's address, as the proxy saw it: passed at login, so neither
    # a SET nor the client's own startup option changes what is recorded
    assert _one(g, "SHOW epoch.client_addr") == "127.0.0.1"          # the proxy's doing
    _all(g, "SET epoch.client_addr = '6.6.6.6'")
    _all(g, "SELECT epoch.branch_create('mine2')")
    assert _one(g, "SHOW epoch.client_addr") == "6.6.6.6"             # the client's setting is left alone
    spoof = env.closing(px.connect(user=roles["guest"], password=PW, dbname=db, autocommit=True,
                                   options="-c epoch.client_addr=7.7.7.7"))
    _all(spoof, "SELECT epoch.branch_create('mine3')")
    assert _all(g, "SELECT details->>'from', branch, client_addr, peer_addr FROM epoch.audit "
                   "WHERE action = 'branch_create' AND branch LIKE 'mine%' ORDER BY id") == [
        ("main", b, "127.0.0.1", "127.0.0.1") for b in ("mine", "mine2", "mine3")]
    # a direct connection can claim an address; peer_addr is PostgreSQL's
    direct = env.closing(env.pg.connect(user=roles["guest"], password=PW, dbname=db,
                                        options="-c epoch.client_addr=8.8.8.8"))
    direct.autocommit = True
    _all(direct, "SELECT epoch.branch_create('mine4')")
    assert _all(g, "SELECT client_addr, peer_addr FROM epoch.audit WHERE branch = 'mine4'") == [("8.8.8.8", "127.0.0.1")]
