"""pgbench through the proxy: initialisation (COPY) and TPC-B-like runs in the
simple, extended and prepared query protocols, plus a pooled run."""

import re

import harness

DB = "bench"
CLIENTS = 4
TX_PER_CLIENT = 150


def setup_module(pg):
    pg.create_database(DB)


def _history_count(pg):
    return int(pg.sql("SELECT count(*) FROM pgbench_history", db=DB))


def _check_run(cp, expected_tx):
    out = cp.stdout + cp.stderr
    assert cp.returncode == 0, f"pgbench exited with {cp.returncode}:\n{out}"
    m = re.search(r"number of transactions actually processed: (\d+)/(\d+)", out)
    assert m, f"no 'transactions actually processed' line in pgbench output:\n{out}"
    assert int(m.group(1)) == int(m.group(2)) == expected_tx, out
    m = re.search(r"number of failed transactions: (\d+)", out)
    assert m, f"no 'number of failed transactions' line in pgbench output:\n{out}"
    assert m.group(1) == "0", out
    assert "error" not in cp.stderr.lower(), cp.stderr


def _init(px, pg):
    cp = px.pgbench("-i", "-s", "1", "-q", dbname=DB)
    assert cp.returncode == 0, f"pgbench -i failed:\n{cp.stdout}\n{cp.stderr}"
    assert "done in" in cp.stderr, cp.stderr
    assert pg.sql("SELECT count(*) FROM pgbench_accounts", db=DB) == "100000"
    assert pg.sql("SELECT count(*) FROM pgbench_branches", db=DB) == "1"


def test_init_and_all_protocols(env):
    px = env.proxy(workers=2)
    _init(px, env.pg)
    expected = CLIENTS * TX_PER_CLIENT
    for mode in ("simple", "extended", "prepared"):
        before = _history_count(env.pg)
        cp = px.pgbench("-n", "-M", mode, "-c", CLIENTS, "-j", "2", "-t", TX_PER_CLIENT,
                        dbname=DB)
        _check_run(cp, expected)
        after = _history_count(env.pg)
        assert after - before == expected, \
            f"-M {mode}: pgbench_history grew by {after - before}, expected {expected}"
    # TPC-B invariant: every delta went to exactly one branch/teller/account
    sums = env.pg.sql("SELECT (SELECT sum(bbalance) FROM pgbench_branches) = "
                      "(SELECT sum(delta) FROM pgbench_history) AND "
                      "(SELECT sum(abalance) FROM pgbench_accounts) = "
                      "(SELECT sum(delta) FROM pgbench_history)", db=DB)
    assert sums == "t", "balances do not match pgbench_history"


def test_select_only_timed(env):
    """A timed read-only run (-S -T) with more clients than threads."""
    px = env.proxy(workers=2)
    if env.pg.sql("SELECT to_regclass('pgbench_accounts') IS NOT NULL", db=DB) != "t":
        _init(px, env.pg)
    cp = px.pgbench("-n", "-S", "-M", "extended", "-c", "8", "-j", "2", "-T", "3", dbname=DB)
    out = cp.stdout + cp.stderr
    assert cp.returncode == 0, out
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    assert m and int(m.group(1)) > 100, out
    m = re.search(r"number of failed transactions: (\d+)", out)
    assert m and m.group(1) == "0", out


def test_pooled_transaction_mode(env):
    """userlist + pool_mode=transaction: 8 clients share 2 server connections."""
    env.pg.sql("SELECT 1")  # cluster is up
    auth = env.userlist({harness.DEFAULT_USER: harness.DEFAULT_PASSWORD})
    px = env.proxy(config={
        "auth_mode": "userlist",
        "auth_file": auth,
        "server_user": harness.DEFAULT_USER,
        "server_password": harness.DEFAULT_PASSWORD,
        "pool_mode": "transaction",
        "pool_size": 2,
    })
    if env.pg.sql("SELECT to_regclass('pgbench_accounts') IS NOT NULL", db=DB) != "t":
        _init(px, env.pg)
    before = _history_count(env.pg)
    cp = px.pgbench("-n", "-M", "extended", "-c", "8", "-j", "2", "-t", "100", dbname=DB)
    _check_run(cp, 800)
    assert _history_count(env.pg) - before == 800
    servers = env.pg.backend_count(user=harness.DEFAULT_USER, db=DB)
    assert servers <= 2, f"{servers} server connections for pool_size=2"
