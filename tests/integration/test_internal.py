"""The internal-statement API (server_internal) against a real PostgreSQL:
runs the Criterion binary `internal_tests` (tests/integration/internal_test.c),
which the build puts next to epoch-proxy, with the cluster's address in
EPOCH_TEST_PG* variables."""

import os
import re
import signal
import subprocess
from pathlib import Path

import harness

TIMEOUT = 180


def _run_group(cmd, env, timeout):
    """Run cmd in its own process group (Criterion forks a worker per test);
    on timeout kill the whole group so that no worker is left behind."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f"{cmd[0]} did not finish within {timeout}s:\n{out}")
    return proc.returncode, out


def test_internal_statement_api(env):
    binary = Path(env.proxy_binary).parent / "internal_tests"
    assert os.access(binary, os.X_OK), \
        f"{binary} not found: build the internal_tests target next to epoch-proxy"
    child_env = dict(os.environ,
                     EPOCH_TEST_PGPORT=str(env.pg.port),
                     EPOCH_TEST_PGUSER=harness.DEFAULT_USER,
                     EPOCH_TEST_PGPASSWORD=harness.DEFAULT_PASSWORD,
                     EPOCH_TEST_PGDATABASE=harness.DEFAULT_DB)
    # one test at a time: each opens its own server connection and loop
    rc, out = _run_group([str(binary), "--jobs", "1", "--verbose"], child_env, timeout=150)
    # "[====] Synthesis: Tested: 2 | Passing: 2 | Failing: 0 | Crashing: 0"
    m = re.search(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| "
                  r"Crashing: (\d+)", out)
    assert m, f"no Criterion summary (exit {rc}):\n{out}"
    tested, passing, failing, crashing = map(int, m.groups())
    assert rc == 0 and failing == 0 and crashing == 0, f"exit {rc}:\n{out}"
    assert passing > 0 and passing == tested, f"{passing} of {tested} passed:\n{out}"
    for marker in harness.SANITIZER_MARKERS:
        assert marker not in out, f"sanitizer report:\n{out}"
