#!/usr/bin/env python3
"""The Python half of bench/branch_writes (Debian python3 + python3-psycopg2).

usage:
  branch_writes_report.py statements --proxy PORT --direct PORT --rows N
        --rounds N --bulk-rows N --bulk-reps N --copy-rows N --dml-rows N
        --dml-reps N --timeout-s S --scale "N N ..." --out STMTS.tsv
        --checks CHECKS.tsv
  branch_writes_report.py explain --proxy PORT --rows N --bulk-rows N
        --explain-rows N --timeout-s S --dir DIR
  branch_writes_report.py report --pgbench PGBENCH.tsv --stmts STMTS.tsv
        --checks CHECKS.tsv [--explain DIR] [--bulk-rows N] [--copy-rows N]
        [--dml-rows N] [--timeout-s S]

statements  times single statements with time.perf_counter() around one
            psycopg2 execute()/copy_expert() (autocommit, simple protocol),
            through the proxy on three targets: main (database bench, tables
            tracked), a branch of bench (bench@BRANCH) and main-untracked
            (database plain: the same tables, never tracked, so no capture
            triggers). Rounds rotate the order of the three. Per round:
            bulk UPDATE (BULK_REPS times; on a branch created right before, so
            the 1st repetition copies the rows into the branch and the later
            ones update rows already there), COPY of COPY_ROWS rows into an
            empty table, INSERT of DML_ROWS rows in one statement, DELETE of
            those rows by range, DELETE of DML_ROWS existing rows by range in
            a transaction that is rolled back, and the bulk UPDATE on a branch
            created at the start of the round (before main's updates of the
            same rows). Then, once, UPDATEs of N rows for each N of --scale.
            Every statement runs with statement_timeout = --timeout-s; after a
            timeout on a target the same statement is not tried again there.
            Correctness checks (sums, counts, isolation) go to CHECKS.tsv.
explain     EXPLAIN ANALYZE of what the server runs for some of the writes,
            through the proxy, captured with auto_explain (the role's settings
            are set by the caller; plans arrive as NOTICEs).
report      prints the markdown tables.
"""
import argparse
import csv
import io
import os
import re
import sys
import time

from report_common import med, report_checks, table

TARGETS = ["main", "branch", "main-untracked"]
DB = {"main": "bench", "main-untracked": "plain"}

# ---------------------------------------------------------------- helpers


def connect(port, db, timeout_s=None):
    import psycopg2  # only the statements/explain subcommands need it

    conn = psycopg2.connect(host="127.0.0.1", port=port, dbname=db)
    conn.autocommit = True
    if timeout_s:
        with conn.cursor() as cur:
            cur.execute(f"SET statement_timeout = '{int(timeout_s)}s'")
    return conn


def q(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else None


def q1(conn, sql, args=None):
    return q(conn, sql, args)[0][0]


def log(msg):
    print(f"branch_writes: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- statements


class Bench:
    def __init__(self, a):
        self.a = a
        self.rows_out = []
        self.checks = []
        self.timed_out = set()  # (op, target) that hit statement_timeout
        self.direct = {t: connect(a.direct, DB[t]) for t in ("main", "main-untracked")}
        self.via_main = connect(a.proxy, "bench")  # creates branches
        self.delta = {r[0]: r[1] for r in q(self.direct["main"],
                                           "SELECT table_name, delta_table FROM epoch.tables")}
        self.hist = {r[0]: r[1] for r in q(self.direct["main"],
                                          "SELECT table_name, history_table FROM epoch.tables")}
        self.conns = {}

    # one connection per (target, branch) through the proxy, statement_timeout set
    def conn(self, target, branch=None):
        key = (target, branch)
        if key not in self.conns:
            db = f"bench@{branch}" if target == "branch" else DB[target]
            self.conns[key] = connect(self.a.proxy, db, self.a.timeout_s)
        return self.conns[key]

    def close(self, target, branch=None):
        c = self.conns.pop((target, branch), None)
        if c is not None:
            c.close()

    def direct_of(self, target):
        return self.direct["main-untracked" if target == "main-untracked" else "main"]

    def check(self, name, target, expected, got):
        ok = expected == got
        self.checks.append((name, target, str(expected), str(got), "ok" if ok else "FAIL"))
        if not ok:
            log(f"CHECK FAILED: {target}: {name}: expected {expected!r}, got {got!r}")
        return ok

    def new_branch(self, name):
        q(self.via_main, "SELECT epoch.branch_create(%s)", (name,))
        return name

    def branch_id(self, name):
        return q1(self.direct["main"], "SELECT id FROM epoch.branch WHERE name = %s", (name,))

    def delta_rows(self, table, name):
        return q1(self.direct["main"],
                  f'SELECT count(*) FROM epoch."{self.delta[table]}" WHERE _epoch_branch = %s',
                  (self.branch_id(name),))

    def history_after_base(self, table, name):
        return q1(self.direct["main"],
                  f'SELECT count(*) FROM epoch."{self.hist[table]}" WHERE _epoch_seq > '
                  "(SELECT base_seq FROM epoch.branch WHERE name = %s)", (name,))

    # timed STATEMENT on CONN; returns (status, ms, rowcount, note)
    def timed(self, rnd, op, target, rep, kind, conn, sql, copy_from=None, note=""):
        import psycopg2

        if (op, target) in self.timed_out:
            self.rows_out.append((rnd, op, target, rep, kind, "skipped", "", "", "timed out before"))
            return "skipped", None, None
        status, err = "ok", ""
        cur = conn.cursor()
        t0 = time.perf_counter()
        try:
            if copy_from is not None:
                copy_from.seek(0)
                cur.copy_expert(sql, copy_from)
            else:
                cur.execute(sql)
        except psycopg2.errors.QueryCanceled:
            status = "timeout"
            self.timed_out.add((op, target))
        except psycopg2.Error as e:
            status = "error"
            err = f"{e.pgcode}: {(e.pgerror or str(e)).strip().splitlines()[0]}"
        ms = (time.perf_counter() - t0) * 1000.0
        n = cur.rowcount
        cur.close()
        if status != "ok":
            log(f"  {op} on {target}: {status} after {ms:.0f} ms {err}")
            if status == "error" and not conn.autocommit:
                conn.rollback()
        self.rows_out.append((rnd, op, target, rep, kind, status, f"{ms:.3f}", n,
                              (note + " " + err).strip()))
        log(f"  {op:<22} {target:<15} {kind:<9} {status:<7} {ms:10.1f} ms  rows {n}")
        return status, ms, n

    # ---- bulk UPDATE ------------------------------------------------------
    def bulk_update(self, rnd, target):
        a = self.a
        b = a.bulk_rows
        sql = f"UPDATE items SET value = value + 1 WHERE id <= {b}"
        rsum = f"SELECT sum(value) FROM items WHERE id <= {2 * b}"
        branch = None
        if target == "branch":
            branch = self.new_branch(f"bulk_r{rnd}")
        c = self.conn(target, branch)
        d = self.direct_of(target)
        main_before = q1(d, rsum)
        seen_before = q1(c, rsum)
        if branch:
            self.check(f"round {rnd}: sum(value) of ids 1..{2 * b} on new branch {branch} = main's",
                       target, main_before, seen_before)
        done = 0
        for rep in range(1, a.bulk_reps + 1):
            kind = ("first" if rep == 1 else "repeated") if branch else ""
            st, _, n = self.timed(rnd, "update_bulk", target, rep, kind, c, sql)
            if st == "ok":
                done += 1
                if n != b:
                    self.check(f"round {rnd} rep {rep}: UPDATE row count", target, b, n)
        self.check(f"round {rnd}: sum(value) of ids 1..{2 * b} after {done} x UPDATE of "
                   f"ids 1..{b} (+1 each)", target, seen_before + done * b, q1(c, rsum))
        if branch:
            self.check(f"round {rnd}: main's sum(value) of ids 1..{2 * b} unchanged by branch "
                       f"{branch}", "main", main_before, q1(d, rsum))
            self.check(f"round {rnd}: rows of branch {branch} in the delta", target, b,
                       self.delta_rows("items", branch))
            self.close(target, branch)

    def stale_prepare(self, rnd):
        name = self.new_branch(f"stale_r{rnd}")
        rsum = f"SELECT sum(value) FROM items WHERE id <= {2 * self.a.bulk_rows}"
        return name, q1(self.direct["main"], rsum)

    def main_churn(self, rnd):
        """Main changes ids 1..BULK_ROWS (+1 each), untimed, in statements of 1,000 rows
        (the capture trigger's cost grows with the square of the rows per statement)."""
        b = self.a.bulk_rows
        t0 = time.perf_counter()
        for lo in range(1, b + 1, 1000):
            q(self.direct["main"], f"UPDATE items SET value = value + 1 WHERE id BETWEEN {lo} AND "
                                   f"{min(lo + 999, b)}")
        log(f"  main changed ids 1..{b} in statements of 1,000 rows (untimed, "
            f"{time.perf_counter() - t0:.1f} s)")

    def stale_update(self, rnd, name, main_at_creation):
        b = self.a.bulk_rows
        rsum = f"SELECT sum(value) FROM items WHERE id <= {2 * b}"
        c = self.conn("branch", name)
        hist = self.history_after_base("items", name)
        self.check(f"round {rnd}: branch {name} still sees main's sum(value) of ids 1..{2 * b} "
                   f"as at its creation ({hist} history rows after its base point)", "branch",
                   main_at_creation, q1(c, rsum))
        st, _, n = self.timed(rnd, "update_bulk_stale", "branch", 1, "first", c,
                              f"UPDATE items SET value = value + 1 WHERE id <= {b}",
                              note=f"history rows after base point: {hist}")
        if st == "ok":
            self.check(f"round {rnd}: sum(value) of ids 1..{2 * b} on {name} after the UPDATE",
                       "branch", main_at_creation + b, q1(c, rsum))
        self.close("branch", name)

    # ---- COPY -------------------------------------------------------------
    def copy(self, rnd, target, data, exp_sum):
        n = self.a.copy_rows
        sql = "COPY items2 (id, value, payload) FROM STDIN (FORMAT csv)"
        stat = "SELECT count(*), sum(value) FROM items2"
        branch = None
        d = self.direct_of(target)
        if target == "branch":
            branch = self.new_branch(f"copy_r{rnd}")
        else:
            q(d, "TRUNCATE items2")  # untimed (on main, the capture trigger saves the rows)
        c = self.conn(target, branch)
        st, _, got = self.timed(rnd, "copy", target, 1, "", c, sql, copy_from=data)
        if st == "ok":
            self.check(f"round {rnd}: COPY row count", target, n, got)
            cnt, s = q(c, stat)[0]
            self.check(f"round {rnd}: count(*), sum(value) of items2 after COPY", target,
                       (n, exp_sum), (cnt, s))
        if branch:
            self.check(f"round {rnd}: main's items2 still empty after COPY on branch {branch}",
                       "main", 0, q1(d, "SELECT count(*) FROM items2"))
            self.close(target, branch)
        else:
            q(d, "TRUNCATE items2")  # empty again, for the next branch's base point

    # ---- INSERT / DELETE of DML_ROWS rows --------------------------------
    def dml(self, rnd, target, rep, branch):
        a = self.a
        n = a.dml_rows
        ti = TARGETS.index(target)
        lo = 2 * a.rows + ((rnd * a.dml_reps + rep) * len(TARGETS) + ti) * n + 1
        hi = lo + n - 1
        c = self.conn(target, branch if target == "branch" else None)
        values = ",".join(f"({k},{k % 1000},'{'y' * 40}')" for k in range(lo, hi + 1))
        rng = f"SELECT count(*) FROM items WHERE id BETWEEN {lo} AND {hi}"
        st, _, got = self.timed(rnd, "insert", target, rep, "", c,
                                f"INSERT INTO items (id, value, payload) VALUES {values}")
        if st == "ok":
            self.check(f"round {rnd}.{rep}: INSERT row count", target, n, got)
            self.check(f"round {rnd}.{rep}: rows with ids {lo}..{hi} after INSERT", target, n,
                       q1(c, rng))
            if target == "branch":
                self.check(f"round {rnd}.{rep}: main has no ids {lo}..{hi} after the INSERT on "
                           f"the branch", "main", 0, q1(self.direct["main"], rng))
        st, _, got = self.timed(rnd, "delete_new", target, rep, "", c,
                                f"DELETE FROM items WHERE id BETWEEN {lo} AND {hi}")
        if st == "ok":
            self.check(f"round {rnd}.{rep}: DELETE (inserted rows) row count", target, n, got)
            self.check(f"round {rnd}.{rep}: rows with ids {lo}..{hi} after DELETE", target, 0,
                       q1(c, rng))
        # single rows: INSERT of a new key, DELETE of it by key
        for i in range(3):
            k = lo + i
            st, _, got = self.timed(rnd, "insert_1", target, rep, "", c,
                                    f"INSERT INTO items (id, value, payload) VALUES ({k}, 1, 'one')")
            if st == "ok":
                self.check(f"round {rnd}.{rep}: single-row INSERT of id {k}", target, (1, 1),
                           (got, q1(c, f"SELECT count(*) FROM items WHERE id = {k}")))
            st, _, got = self.timed(rnd, "delete_1", target, rep, "", c,
                                    f"DELETE FROM items WHERE id = {k}")
            if st == "ok":
                self.check(f"round {rnd}.{rep}: single-row DELETE of id {k}", target, (1, 0),
                           (got, q1(c, f"SELECT count(*) FROM items WHERE id = {k}")))
        # existing rows, in a transaction that is rolled back
        lo = a.rows - 2 * n - rep * 7
        hi = lo + n - 1
        rng = f"SELECT count(*) FROM items WHERE id BETWEEN {lo} AND {hi}"
        q(c, "BEGIN")
        st, _, got = self.timed(rnd, "delete_existing", target, rep, "", c,
                                f"DELETE FROM items WHERE id BETWEEN {lo} AND {hi}")
        if st == "ok":
            self.check(f"round {rnd}.{rep}: DELETE (existing rows) row count", target, n, got)
            inside = q1(c, rng)
        else:
            inside = None
        q(c, "ROLLBACK")
        if st == "ok":
            self.check(f"round {rnd}.{rep}: ids {lo}..{hi} gone inside the transaction, back "
                       "after ROLLBACK", target, (0, n), (inside, q1(c, rng)))

    # ---- scaling ----------------------------------------------------------
    def scale(self, sizes):
        lo = 2 * self.a.bulk_rows + 1
        branch = self.new_branch("scale")
        for size in sizes:
            hi = lo + size - 1
            for target in TARGETS:
                c = self.conn(target, branch if target == "branch" else None)
                st, _, n = self.timed(0, f"scale_{size}", target, 1, "first" if target == "branch" else "", c,
                                      f"UPDATE items SET value = value + 1 WHERE id BETWEEN {lo} AND {hi}")
                if st == "ok" and n != size:
                    self.check(f"scaling: UPDATE of {size} rows: row count", target, size, n)
            lo = hi + 1


def csv_data(n):
    buf = io.StringIO()
    pay = "z" * 40
    for k in range(1, n + 1):
        buf.write(f"{k},{k % 1000},{pay}\n")
    exp_sum = sum(k % 1000 for k in range(1, n + 1))
    return buf, exp_sum


def cmd_statements(a):
    bench = Bench(a)
    data, exp_sum = csv_data(a.copy_rows)
    dml_branch = bench.new_branch("dml")
    try:
        for rnd in range(1, a.rounds + 1):
            order = [TARGETS[(i + rnd - 1) % len(TARGETS)] for i in range(len(TARGETS))]
            log(f"round {rnd}/{a.rounds} (order: {' '.join(order)})")
            stale, stale_sum = bench.stale_prepare(rnd)
            for target in order:
                bench.bulk_update(rnd, target)
            for target in order:
                bench.copy(rnd, target, data, exp_sum)
            for rep in range(1, a.dml_reps + 1):
                for target in order:
                    bench.dml(rnd, target, rep, dml_branch)
            bench.main_churn(rnd)
            bench.stale_update(rnd, stale, stale_sum)
        sizes = [int(s) for s in a.scale.split()]
        if sizes:
            log(f"scaling: UPDATE of {', '.join(map(str, sizes))} rows on each target")
            bench.scale(sizes)
    finally:
        with open(a.out, "a", newline="") as f:
            w = csv.writer(f, delimiter="\t", lineterminator="\n")
            for r in bench.rows_out:
                w.writerow(r)
        with open(a.checks, "a", newline="") as f:
            w = csv.writer(f, delimiter="\t", lineterminator="\n")
            for r in bench.checks:
                w.writerow(r)
    bad = [r for r in bench.checks if r[4] != "ok"]
    errors = [r for r in bench.rows_out if r[5] == "error"]
    return 1 if bad or errors else 0


# ---------------------------------------------------------------- explain


def cmd_explain(a):
    """Plans of what the server runs, via auto_explain NOTICEs (log_analyze)."""
    import psycopg2

    os.makedirs(a.dir, exist_ok=True)
    via_main = connect(a.proxy, "bench")
    q(via_main, "SELECT epoch.branch_create('explain')")
    mid = a.rows // 2 + 3
    lo = a.rows // 2 + 1000
    q(via_main, "SELECT epoch.branch_create('explain_stale')")
    with via_main.cursor() as cur:  # auto_explain plans of this one are not kept
        cur.execute(f"UPDATE items SET value = value + 1 WHERE id BETWEEN {lo} AND "
                    f"{lo + a.explain_rows - 1}")
    cases = [
        # (file, db, statements; the plans of the last one are kept)
        ("single-branch", "bench@explain",
         [f"UPDATE items SET value = value + 1 WHERE id = {mid + i}" for i in range(8)]),
        ("single-main", "bench",
         [f"UPDATE items SET value = value + 1 WHERE id = {mid + i}" for i in range(8)]),
        # before the bulk UPDATEs: the branch holds 8 rows, main changed 8 since its base
        ("insert-1-branch", "bench@explain",
         [f"INSERT INTO items (id, value, payload) VALUES ({3 * a.rows + 1}, 1, 'one')"]),
        ("bulk-branch-first", "bench@explain",
         [f"UPDATE items SET value = value + 1 WHERE id <= {a.bulk_rows}"]),
        ("bulk-branch-repeated", "bench@explain",
         [f"UPDATE items SET value = value + 1 WHERE id <= {a.bulk_rows}"]),
        (f"update-{a.explain_rows}-main", "bench",
         [f"UPDATE items SET value = value + 1 WHERE id <= {a.explain_rows}"]),
        ("insert-1-main", "bench",
         [f"INSERT INTO items (id, value, payload) VALUES ({3 * a.rows + 1}, 1, 'one')",
          f"DELETE FROM items WHERE id = {3 * a.rows + 1}",
          f"INSERT INTO items (id, value, payload) VALUES ({3 * a.rows + 1}, 1, 'one')"]),
        # main changes rows after the branch's base point, then the branch updates them
        # (the branch first changes as many other rows, so its delta is not empty)
        (f"stale-{a.explain_rows}-branch", "bench@explain_stale",
         [f"UPDATE items SET value = value + 1 WHERE id BETWEEN {lo + a.explain_rows} AND "
          f"{lo + 2 * a.explain_rows - 1}",
          f"UPDATE items SET value = value + 1 WHERE id BETWEEN {lo} AND {lo + a.explain_rows - 1}"]),
    ]
    status = 0
    for name, db, stmts in cases:
        conn = connect(a.proxy, db, a.timeout_s)
        ms = None
        for i, sql in enumerate(stmts):
            del conn.notices[:]
            try:
                with conn.cursor() as cur:
                    t0 = time.perf_counter()
                    cur.execute(sql)
                    ms = (time.perf_counter() - t0) * 1000.0
            except psycopg2.Error as e:
                log(f"explain {name}: {e.pgcode}: {(e.pgerror or str(e)).strip()}")
                status = 1
        plans = [n for n in conn.notices if "plan:" in n]
        with open(os.path.join(a.dir, f"{name}.txt"), "w") as f:
            f.write(f"-- {db}: {stmts[-1][:200]}\n-- client ms: "
                    f"{'-' if ms is None else f'{ms:.3f}'}\n")
            f.write("\n".join(p.rstrip() for p in plans) + "\n")
        conn.close()
    return status


# ---------------------------------------------------------------- report


def fmt_ms(v):
    return f"{v:.3f}" if v < 10 else f"{v:.1f}" if v < 1000 else f"{v:,.0f}"


def fmt_tps(v):
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def span(vals, f=fmt_ms):
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{f(vals[0])}"
    return f"{f(med(vals))} ({f(min(vals))}–{f(max(vals))})"


def report_pgbench(path):
    runs = {}
    order = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            cfg = (r["case"], r["protocol"])
            if cfg not in order:
                order.append(cfg)
            runs.setdefault((cfg, r["target"]), []).append(r)
    print("pgbench, 1 client, `-T DURATION` per run; median over rounds, min–max over rounds in"
          " parentheses. Ratio = median latency / median latency of main (tracked); \"paired\""
          " = min–max of the same ratio taken within each round, where the targets ran back"
          " to back. The last column is main's capture-trigger overhead: main (tracked) /"
          " main-untracked.\n")
    header = ["statement", "-M", "main TPS", "main ms", "branch TPS", "branch ms",
              "branch / main (paired)", "target ≤ 1.5×", "main-untracked TPS",
              "main-untracked ms", "main / untracked (paired)"]
    rows, bad = [], []

    def ok(rs):
        return [r for r in rs or [] if r["status"] == "ok"]

    def ratio(num, den):
        n = ok(num)
        d = {r["round"]: float(r["latency_ms"]) for r in ok(den)}
        if not n or not d:
            return None, ""
        m = med([float(r["latency_ms"]) for r in n]) / med(list(d.values()))
        p = [float(r["latency_ms"]) / d[r["round"]] for r in n if r["round"] in d]
        return m, (f" ({min(p):.2f}…{max(p):.2f})" if len(p) > 1 else "")

    for cfg in order:
        m, b, u = (runs.get((cfg, t)) for t in TARGETS)
        row = ["`UPDATE items SET value = value + 1 WHERE id = :id`", cfg[1]]
        for rs in (m, b):
            t = [float(r["tps"]) for r in ok(rs)]
            la = [float(r["latency_ms"]) for r in ok(rs)]
            row += [span(t, fmt_tps), fmt_ms(med(la)) if la else "FAIL"]
        rb, pb = ratio(b, m)
        row += [f"{rb:.2f}×{pb}" if rb else "-",
                ("✓" if rb <= 1.5 else "✗") if rb else ""]
        t = [float(r["tps"]) for r in ok(u)]
        la = [float(r["latency_ms"]) for r in ok(u)]
        row += [span(t, fmt_tps), fmt_ms(med(la)) if la else "FAIL"]
        ru, pu = ratio(m, u)
        row.append(f"{ru:.2f}×{pu}" if ru else "-")
        rows.append(row)
    print(table(header, rows))

    print("\nepoch-proxy CPU per transaction (µs, median over rounds; /proc ticks are 10 ms) and"
          " how busy the whole machine was during the runs (min–max):\n")
    rows = []
    for cfg in order:
        row = [cfg[1]]
        busy = []
        for t in TARGETS:
            rs = ok(runs.get((cfg, t)))
            cpu = [float(r["cpu_us_per_txn"]) for r in rs if r["cpu_us_per_txn"] not in ("", "-")]
            row.append(f"{med(cpu):.0f}" if cpu else "-")
            busy += [int(r["host_busy_pct"]) for r in rs]
        row.append(f"{min(busy)}–{max(busy)}" if busy else "-")
        rows.append(row)
    print(table(["-M"] + [f"CPU/txn {t}" for t in TARGETS] + ["host busy %"], rows))
    for (cfg, t), rs in sorted(runs.items()):
        for r in rs:
            if r["status"] != "ok":
                bad.append(f"round {r['round']} single-row UPDATE -M {cfg[1]} on {t}: pgbench failed")
            elif r["failed"] not in ("", "-", "0"):
                bad.append(f"round {r['round']} single-row UPDATE -M {cfg[1]} on {t}: "
                           f"{r['failed']} failed transactions")
    return bad


def load_stmts(path):
    rows = []
    with open(path, newline="") as fh:
        for r in csv.reader(fh, delimiter="\t"):
            rnd, op, target, rep, kind, status, ms, n, note = r
            rows.append(dict(round=int(rnd), op=op, target=target, rep=int(rep), kind=kind,
                             status=status, ms=float(ms) if ms else None, n=n, note=note))
    return rows


def cell(rs, timeout_s):
    okv = [r["ms"] for r in rs if r["status"] == "ok"]
    to = [r for r in rs if r["status"] == "timeout"]
    err = [r for r in rs if r["status"] == "error"]
    parts = []
    if okv:
        parts.append(span(okv) + ("" if len(okv) > 1 else "") + f" [n={len(okv)}]")
    if to:
        parts.append(f"> {timeout_s * 1000:,.0f} (timeout ×{len(to)})")
    if err:
        parts.append(f"ERROR ×{len(err)}")
    return "; ".join(parts) if parts else "-", (med(okv) if okv else None), bool(to)


def report_stmts(path, a):
    rows = load_stmts(path)
    bad = [f"{r['op']} on {r['target']} (round {r['round']}, rep {r['rep']}): {r['note']}"
           for r in rows if r["status"] == "error"]
    bad += [f"{r['op']} on {r['target']} (round {r['round']}, rep {r['rep']}): timed out after "
            f"{a.timeout_s} s" for r in rows if r["status"] == "timeout"]

    def sel(op, target, kind=None):
        return [r for r in rows if r["op"] == op and r["target"] == target
                and (kind is None or r["kind"] == kind)]

    b, c, d = a.bulk_rows, a.copy_rows, a.dml_rows
    lines = [
        (f"UPDATE … WHERE id <= {b:,}: first time on the branch (rows copied into it)",
         "update_bulk", "first", 3.0),
        (f"UPDATE … WHERE id <= {b:,}: repeated (rows already in the branch)",
         "update_bulk", "repeated", 3.0),
        (f"UPDATE … WHERE id <= {b:,}: first, on a branch whose {b:,} rows main changed after "
         "its base point", "update_bulk_stale", "first", 3.0),
        (f"COPY {c:,} rows (csv) into an empty table", "copy", None, 2.0),
        ("INSERT of 1 row (a new key), `VALUES (k, 1, 'one')`", "insert_1", None, None),
        ("DELETE of 1 row by key, `WHERE id = k`", "delete_1", None, None),
        (f"INSERT of {d:,} rows, one multi-row VALUES", "insert", None, None),
        (f"DELETE … WHERE id BETWEEN: the {d:,} rows just inserted", "delete_new", None, None),
        (f"DELETE … WHERE id BETWEEN: {d:,} existing rows (transaction rolled back)",
         "delete_existing", None, None),
    ]
    print("ms per statement (`time.perf_counter()` around psycopg2 `execute` / `copy_expert`"
          " through the proxy, autocommit): median (min–max) [n samples]. Main (tracked) rows"
          " for the UPDATE lines are the same samples in all three lines (every repetition of"
          f" every round). A timeout is `statement_timeout = {a.timeout_s}s`; a target that"
          " timed out is not asked again. Ratios use medians.\n")
    header = ["statement", "main (tracked) ms", "branch ms", "branch / main", "target",
              "main-untracked ms", "main / untracked", "branch / untracked"]
    out = []
    for label, op, kind, tgt in lines:
        main_op = "update_bulk" if op == "update_bulk_stale" else op
        mc, mm, mto = cell(sel(main_op, "main"), a.timeout_s)
        bc, bm, bto = cell(sel(op, "branch", kind), a.timeout_s)
        uc, um, _ = cell(sel(main_op, "main-untracked"), a.timeout_s)
        if not sel(op, "branch", kind):
            continue
        if bm and mm:
            r = bm / mm
            rb = f"{r:.2f}×"
            verdict = "" if tgt is None else f"≤ {tgt:g}× {'✓' if r <= tgt else '✗'}"
        elif bm and mto:
            rb = f"< {bm / (a.timeout_s * 1000):.3f}×"
            verdict = "" if tgt is None else f"≤ {tgt:g}× ✓ (main timed out)"
        else:
            rb, verdict = "-", "" if tgt is None else f"≤ {tgt:g}× ?"
        mu = f"{mm / um:.2f}×" if mm and um else (f"> {a.timeout_s * 1000 / um:.0f}×" if mto and um else "-")
        bu = f"{bm / um:.2f}×" if bm and um else "-"
        out.append([label, mc, bc, rb, verdict, uc, mu, bu])
    print(table(header, out))
    stale = [r["note"] for r in sel("update_bulk_stale", "branch")]
    if stale:
        print("\nThat branch was created at the start of the round; before its UPDATE, main"
              f" changed ids 1..{b:,} (untimed, statements of 1,000 rows). History rows after its"
              " base point, per round: "
              + ", ".join(n.replace("history rows after base point: ", "") for n in stale) + ".")

    sizes = sorted({int(r["op"].split("_")[1]) for r in rows if r["op"].startswith("scale_")})
    if sizes:
        print(f"\n#### UPDATE of N rows (`UPDATE items SET value = value + 1 WHERE id BETWEEN lo AND"
              f" lo + N - 1`, one sample each, disjoint ranges)\n")
        print("For each N the targets run in the order main, branch, main-untracked on the same"
              " range, on branch \"scale\" created just before: so the branch updates N rows that"
              " main has just changed after the branch's base point (it reads their pre-images"
              " from the history table), while its delta already holds the rows of the smaller"
              " sizes.\n")
        out = []
        for n in sizes:
            row = [f"{n:,}"]
            vals = {}
            for t in TARGETS:
                rs = sel(f"scale_{n}", t)
                cc, mv, _ = cell(rs, a.timeout_s)
                vals[t] = mv
                row.append(cc.replace(" [n=1]", ""))
            m, u, br = vals["main"], vals["main-untracked"], vals["branch"]
            row.append(f"{m / u:.1f}×" if m and u else "-")
            row.append(f"{br / m:.2f}×" if br and m else "-")
            row.append(f"{m / n * 1000:.1f}" if m else "-")
            out.append(row)
        print(table(["rows", "main (tracked) ms", "branch ms", "main-untracked ms",
                     "main / untracked", "branch / main", "main µs per row"], out))
    return bad


def split_notices(text):
    """auto_explain NOTICEs in a file: [(ms, query text, plan text)]"""
    out = []
    for chunk in re.split(r"(?m)^\S*NOTICE:\s+", text)[1:]:
        m = re.match(r"duration: ([0-9.]+) ms\s+plan:\s*\n", chunk)
        if not m:
            continue
        lines = chunk[m.end():].splitlines()
        qt, i = [], 0
        while i < len(lines) and not re.match(r"^\S.*\(cost=", lines[i]):
            qt.append(lines[i])
            i += 1
        query = " ".join(" ".join(qt).split()).removeprefix("Query Text: ")
        out.append((float(m.group(1)), query, "\n".join(lines[i:]).rstrip()))
    return out


def report_explain(directory):
    files = sorted(f for f in os.listdir(directory) if f.endswith(".txt"))
    out = []
    full = {}
    for fn in files:
        text = open(os.path.join(directory, fn)).read()
        head = text.splitlines()[0] if text else ""
        cm = re.search(r"^-- client ms: (\S+)", text, re.M)
        client = cm.group(1) if cm else "-"
        notices = split_notices(text)
        for ms, qt, plan in notices:
            loops = [(int(x.group(2)), x.group(1).strip()) for x in re.finditer(
                r"->\s+([^(]+?)\s+\(cost=[^)]*\) \(actual [^)]*loops=(\d+)\)", plan)]
            removed = [int(x) for x in re.findall(r"Rows Removed by Join Filter: (\d+)", plan)]
            big = max(loops) if loops else (0, "")
            out.append([fn[:-4], client, (qt[:100] + "…") if len(qt) > 100 else qt, f"{ms:.3f}",
                        f"{big[0]:,} × {big[1]}" if big[0] > 1000 else "",
                        f"{max(removed):,}" if removed else ""])
        full[fn[:-4]] = (head, notices)
    print("One row per statement the server ran for the last statement of each case (the"
          " capture trigger's statements on main are nested, listed before the statement that"
          " fired them). Client ms = perf_counter around the client's statement (includes the"
          " proxy's rewrite and planning); server ms = auto_explain's duration (execution only,"
          " with log_analyze's instrumentation overhead).\n")
    print(table(["case", "client ms (whole statement)",
                 "statement run by the server (auto_explain Query Text)", "server ms",
                 "node run most often (> 1000 loops)", "rows removed by a join filter"], out))
    return full


def cmd_report(a):
    bad = []
    print("### Single-row UPDATE by key through epoch-proxy, 1 client\n")
    bad += report_pgbench(a.pgbench)
    print("\n### Bulk and multi-row writes through epoch-proxy\n")
    bad += report_stmts(a.stmts, a)
    print("\n### Correctness checks\n")
    bad += report_checks(a.checks)
    if a.explain and os.path.isdir(a.explain):
        print("\n### What the server ran (auto_explain, log_analyze, through the proxy; one run"
              " each)\n")
        full = report_explain(a.explain)
        shown = [("single-branch", "the last single-row UPDATE on the branch", None),
                 ("insert-1-branch", "a single-row INSERT on the branch", None),
                 ("stale-", "an UPDATE on a branch of rows main changed after its base point"
                  " (the branch holds as many other changed rows)", None),
                 ("update-", "the capture trigger's statement that copies inserted keys, for"
                  " an UPDATE on main", "NOT EXISTS (SELECT 1 FROM old_rows")]
        for prefix, what, needle in shown:
            keys = [k for k in full if k == prefix or (prefix.endswith("-") and k.startswith(prefix)
                                                      and (k.endswith("-branch") or needle))]
            for key in keys:
                head, notices = full[key]
                pick = [n for n in notices if needle is None or needle in n[1]]
                if not pick:
                    continue
                ms, qt, plan = pick[-1]
                print(f"\n<details>\n<summary>Plan of {what} ({key}: {head[3:]})</summary>\n")
                print("```")
                print(f"duration: {ms:.3f} ms\nQuery Text: {qt[:3000]}{'…' if len(qt) > 3000 else ''}"
                      f"\n{plan}")
                print("```\n\n</details>")
    if bad:
        print("\n### Failures and timeouts\n")
        print("\n".join("- " + x for x in bad))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("statements")
    c.add_argument("--proxy", type=int, required=True)
    c.add_argument("--direct", type=int, required=True)
    c.add_argument("--rows", type=int, required=True)
    c.add_argument("--rounds", type=int, required=True)
    c.add_argument("--bulk-rows", type=int, required=True)
    c.add_argument("--bulk-reps", type=int, required=True)
    c.add_argument("--copy-rows", type=int, required=True)
    c.add_argument("--dml-rows", type=int, required=True)
    c.add_argument("--dml-reps", type=int, required=True)
    c.add_argument("--timeout-s", type=int, required=True)
    c.add_argument("--scale", default="")
    c.add_argument("--out", required=True)
    c.add_argument("--checks", required=True)
    c = sub.add_parser("explain")
    c.add_argument("--proxy", type=int, required=True)
    c.add_argument("--rows", type=int, required=True)
    c.add_argument("--bulk-rows", type=int, required=True)
    c.add_argument("--explain-rows", type=int, required=True)
    c.add_argument("--timeout-s", type=int, required=True)
    c.add_argument("--dir", required=True)
    c = sub.add_parser("report")
    c.add_argument("--pgbench", required=True)
    c.add_argument("--stmts", required=True)
    c.add_argument("--checks", required=True)
    c.add_argument("--explain", default="")
    c.add_argument("--bulk-rows", type=int, default=100000)
    c.add_argument("--copy-rows", type=int, default=1000000)
    c.add_argument("--dml-rows", type=int, default=10000)
    c.add_argument("--timeout-s", type=int, default=60)
    a = p.parse_args()
    return {"statements": cmd_statements, "explain": cmd_explain, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
