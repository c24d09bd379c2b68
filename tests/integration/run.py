#!/usr/bin/env python3
"""Run Epoch's integration tests.

    /usr/bin/python3 tests/integration/run.py --proxy build/epoch-proxy [-k SUBSTRING] [-x]
                                              [--shard K/N]

Runs every plain function `def test_xxx(env)` of tests/integration/test_*.py
(in file order), prints `<file>::<test> ... ok|FAIL` with the traceback and the
proxy's log tail for failures, and ends with the line `N passed, N failed`.
Exit code 1 if any test failed.

Functions named `def known_bug_xxx(env)` reproduce open proxy bugs; they run too,
as expected failures: one that fails with an AssertionError (its asserts state the
correct behaviour) prints `... known bug (expected failure)` and counts as passed.
One that passes is reported as a failure ("known bug now passes: promote it":
rename it to test_*), and so is one that fails any other way (another exception,
a timeout, a proxy crash or sanitizer report), since that is not the bug it parks.
--known-bugs runs only the known_bug_* functions.

A test module may define:
  PG_SETTINGS = {...}     postgresql.conf settings -> the module gets its own cluster
                          (otherwise one cluster is shared by the whole run)
  setup_module(pg)        called once with the module's PgCluster (create roles, dbs)
  TIMEOUT = seconds       per-test time limit (default 120); a function may also
                          carry its own `fn.timeout`

`env` is a harness.TestEnv: env.pg (cluster), env.proxy(config=..., args=...),
env.tmpdir, env.userlist({...}), env.closing(conn). Proxies started through env
are stopped with SIGINT after the test; a proxy that crashed, exited non-zero,
or printed a sanitizer report makes the test fail. Set EPOCH_TEST_KEEP=1 to
keep the temporary directories (logs, clusters).
"""

import argparse
import importlib.util
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402

DEFAULT_TIMEOUT = 120


class TestTimeout(Exception):
    pass


_state = {"timed_out": False, "active": False}


def _on_alarm(signum, frame):
    if _state["active"] and _state["timed_out"]:
        raise TestTimeout("test timed out")


def _on_term(signum, frame):
    raise SystemExit(128 + signum)


# Rough seconds per module (normal build, quiet machine), so that the shards
# finish together; a module not listed counts as 10 s.
MODULE_WEIGHTS = {
    "test_branch_writes.py": 65, "test_branches.py": 45, "test_branch_clients.py": 40,
    "test_tls.py": 40, "test_concurrency.py": 40, "test_branch_reads.py": 25,
    "test_limits.py": 25, "test_pool.py": 20, "test_signals.py": 12, "test_malformed.py": 12,
    "test_pgbench.py": 12, "test_cancel.py": 6, "test_copy.py": 6, "test_auth.py": 6,
    "test_psql.py": 4, "test_internal.py": 3, "test_io.py": 5, "test_history.py": 35,
    "test_merge.py": 35, "test_privileges.py": 25, "test_cli.py": 15, "test_hwm.py": 12,
}


def shard_of(name, names, n):
    """Longest module first onto the least loaded shard (deterministic)."""
    loads = [0] * n
    owner = {}
    for m in sorted(names, key=lambda x: (-MODULE_WEIGHTS.get(x, 10), x)):
        i = loads.index(min(loads))
        loads[i] += MODULE_WEIGHTS.get(m, 10)
        owner[m] = i
    return owner[name]


def load_module(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = mod
    spec.loader.exec_module(mod)
    return mod


KNOWN_BUG = "known_bug_"


def collect(mod, prefixes=("test_", KNOWN_BUG)):
    tests = []
    for name, obj in vars(mod).items():
        if name.startswith(prefixes) and callable(obj) and getattr(obj, "__module__", None) \
                == mod.__name__:
            tests.append(obj)
    tests.sort(key=lambda f: f.__code__.co_firstlineno)
    return tests


def indent(text, prefix="    "):
    return "\n".join(prefix + line for line in text.rstrip().splitlines())


def run_one(full_name, fn, pg, proxy_bin, run_tmp, timeout):
    """Returns (ok, elapsed, details); ok is None for a known bug that failed as expected."""
    tmpdir = tempfile.mkdtemp(prefix=fn.__name__[:40] + "-", dir=run_tmp)
    env = harness.TestEnv(proxy_bin, pg, tmpdir, full_name)
    main_ident = threading.main_thread().ident

    def on_timeout():
        _state["timed_out"] = True
        env.kill_all()  # unblocks clients stuck on the proxy
        time.sleep(2)
        if _state["active"]:  # still stuck (not on the proxy): interrupt it
            try:
                signal.pthread_kill(main_ident, signal.SIGALRM)
            except OSError:
                pass

    _state["timed_out"] = False
    _state["active"] = True
    timer = threading.Timer(timeout, on_timeout)
    timer.daemon = True
    start = time.monotonic()
    error = None
    assertion_failed = False
    timer.start()
    try:
        try:
            fn(env)
        except Exception as e:
            assertion_failed = isinstance(e, AssertionError)
            error = traceback.format_exc()
    except TestTimeout:  # arrived while the first error was being formatted
        error = error or "TestTimeout"
    finally:
        _state["active"] = False
        timer.cancel()
        try:
            problems = env.teardown()
        except Exception:
            problems = ["teardown failed:\n" + traceback.format_exc()]
    elapsed = time.monotonic() - start
    if _state["timed_out"]:
        assertion_failed = False
        error = f"test timed out after {timeout}s (proxies were killed)\n" + (error or "")
    if fn.__name__.startswith(KNOWN_BUG):
        # an expected failure: only a plain assertion failure with nothing else wrong
        if not error and not problems:
            return False, elapsed, ("known bug now passes: promote it (rename it to test_*, "
                                    "and drop the BUG note from its docstring)")
        if assertion_failed and not problems:
            return None, elapsed, error
        error = ("known bug failed in another way than an assertion (not the parked bug):\n"
                 + (error or ""))
    details = []
    if error:
        details.append(error)
        # the proxy's side of the story
        for px in env.proxies:
            if px.proc is not None:
                details.append(px.log_tail(30))
    details.extend(problems)
    return (not details), elapsed, "\n".join(details)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proxy", default=str(harness.REPO / "build" / "epoch-proxy"),
                    help="path to the epoch-proxy binary (default: build/epoch-proxy)")
    ap.add_argument("-k", dest="filter", default=None,
                    help="only run tests whose '<file>::<test>' name contains this substring")
    ap.add_argument("-x", "--exitfirst", action="store_true", help="stop after the first failure")
    ap.add_argument("--shard", default=None, metavar="K/N",
                    help="run only the test modules whose index in sorted order is K modulo N "
                         "(ctest runs N shards in parallel)")
    ap.add_argument("--known-bugs", action="store_true",
                    help="run only the parked known_bug_* functions (each is expected to "
                         "fail until its bug is fixed; they also run by default)")
    args = ap.parse_args()

    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_term)
    proxy_bin = os.path.abspath(args.proxy)

    plan = []
    paths = sorted(HERE.glob("test_*.py"))
    if args.shard:
        k, n = (int(x) for x in args.shard.split("/"))
        paths = [p for p in paths if shard_of(p.name, [q.name for q in paths], n) == k]
    for path in paths:
        try:
            mod = load_module(path)
        except Exception:
            # a module that does not even import counts as one failed test
            plan.append((None, [(f"{path.name}::import", None)],
                         f"cannot import {path.name}:\n{traceback.format_exc()}"))
            continue
        tests = [(f"{path.name}::{fn.__name__}", fn)
                 for fn in collect(mod, (KNOWN_BUG,) if args.known_bugs else ("test_", KNOWN_BUG))]
        if args.filter:
            tests = [t for t in tests if args.filter in t[0]]
        if tests:
            plan.append((mod, tests, None))

    total = sum(len(t) for _, t, _ in plan)
    print(f"epoch integration tests: {total} tests, proxy {proxy_bin}", flush=True)
    passed, failed, failures, known = 0, 0, [], []
    run_start = time.monotonic()

    if not os.access(proxy_bin, os.X_OK):
        print(f"epoch-proxy not found or not executable: {proxy_bin}", flush=True)
        for _, tests, _ in plan:
            for name, _ in tests:
                print(f"{name} ... FAIL (no proxy binary)", flush=True)
                failed += 1
        print(f"{passed} passed, {failed} failed", flush=True)
        return 1

    run_tmp = tempfile.mkdtemp(prefix="epoch-it-")
    shared = None
    stop = False
    try:
        for mod, tests, import_error in plan:
            if stop:
                break
            timeout = getattr(mod, "TIMEOUT", DEFAULT_TIMEOUT)
            own = None
            setup_error = import_error
            try:
                if mod is not None and hasattr(mod, "PG_SETTINGS"):
                    own = harness.PgCluster(mod.PG_SETTINGS, name=mod.__name__).start()
                    pg = own
                elif mod is not None:
                    if shared is None:
                        shared = harness.PgCluster(name="shared").start()
                    pg = shared
                if mod is not None and hasattr(mod, "setup_module"):
                    mod.setup_module(pg)
            except Exception:
                setup_error = "module setup failed:\n" + traceback.format_exc()
            try:
                for name, fn in tests:
                    if setup_error:
                        ok, elapsed, details = False, 0.0, setup_error
                    else:
                        ok, elapsed, details = run_one(name, fn, pg, proxy_bin, run_tmp,
                                                       getattr(fn, "timeout", timeout))
                    if ok is None:
                        passed += 1
                        known.append(name)
                        first = next((ln for ln in details.splitlines()
                                      if ln.startswith("AssertionError")), "")
                        print(f"{name} ... known bug (expected failure, {elapsed:.1f}s): "
                              f"{first[:200]}", flush=True)
                    elif ok:
                        passed += 1
                        print(f"{name} ... ok ({elapsed:.1f}s)", flush=True)
                    else:
                        failed += 1
                        failures.append(name)
                        print(f"{name} ... FAIL ({elapsed:.1f}s)\n{indent(details)}", flush=True)
                        if args.exitfirst:
                            stop = True
                            break
            finally:
                if own is not None:
                    own.destroy()
    finally:
        if shared is not None:
            shared.destroy()
        harness.run_cleanups()
        if not os.environ.get("EPOCH_TEST_KEEP"):
            shutil.rmtree(run_tmp, ignore_errors=True)
        else:
            print(f"kept temporary files in {run_tmp}", flush=True)

    if known:
        print(f"{len(known)} known bugs failed as expected:\n"
              + "\n".join("  " + k for k in known))
    if failures:
        print("failed tests:\n" + "\n".join("  " + f for f in failures))
    print(f"integration suite took {time.monotonic() - run_start:.1f}s")
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
