#!/usr/bin/env python3
"""The Python half of bench/branch_reads (Debian python3 + python3-psycopg2).

usage:
  branch_reads_report.py check  --proxy PORT --direct PORT --db DB --table T
                                --rows N --branches B1,B2 --out CHECKS.tsv
  branch_reads_report.py create --proxy PORT --direct PORT --db DB --case NAME
                                --n N --out CREATE.tsv
  branch_reads_report.py report --reads READS.tsv --rewrite REWRITE.tsv
                                --checks CHECKS.tsv --create CREATE.tsv
                                [--cache-note TEXT]

check   compares what the proxy returns on each branch (count(*), sum(),
        GROUP BY, point lookups, range scans) with the same answer computed
        directly on PostgreSQL from main's rows and the branch's delta rows,
        and main through the proxy with main directly. One TSV line per check;
        exits 1 when any check fails.
create  times `SELECT epoch.branch_create(name)` round trips through the
        proxy and directly (alternating, autocommit), plus `SELECT 1` round
        trips as the baseline; one TSV line per sample.
report  prints the markdown tables.
"""
import argparse
import csv
import sys
import time

from report_common import med, report_checks, table

# ---------------------------------------------------------------- helpers


def connect(port, db):
    import psycopg2  # only the check/create subcommands need it

    conn = psycopg2.connect(host="127.0.0.1", port=port, dbname=db)
    conn.autocommit = True
    return conn


def q(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else None


# ---------------------------------------------------------------- check


def cmd_check(a):
    direct = connect(a.direct, a.db)
    via_main = connect(a.proxy, a.db)
    t = a.table
    delta, = q(direct, "SELECT delta_table FROM epoch.tables WHERE table_name = %s", (t,))[0]
    d = f'epoch."{delta}"'
    results = []

    def record(name, target, expected, got):
        ok = expected == got
        results.append((name, target, expected, got, "ok" if ok else "FAIL"))

    # main through the proxy = main directly
    for name, sql in [("count(*)", f"SELECT count(*) FROM {t}"),
                      ("sum(val)", f"SELECT sum(val) FROM {t}")]:
        record(name, "main", q(direct, sql)[0][0], q(via_main, sql)[0][0])
    main_count = q(direct, f"SELECT count(*) FROM {t}")[0][0]

    for b in a.branches.split(","):
        bid = q(direct, "SELECT id FROM epoch.branch WHERE name = %s", (b,))[0][0]
        br = connect(a.proxy, f"{a.db}@{b}")
        got_name = q(br, "SHOW epoch.branch")[0][0]
        record("SHOW epoch.branch", b, b, got_name)

        # count(*): main's count - tombstones of existing keys + rows with new keys
        n_del = q(direct, f"SELECT count(*) FROM {d} x WHERE _epoch_branch = %s AND _epoch_deleted "
                          f"AND EXISTS (SELECT 1 FROM {t} m WHERE m.id = x.id)", (bid,))[0][0]
        n_ins = q(direct, f"SELECT count(*) FROM {d} x WHERE _epoch_branch = %s AND NOT _epoch_deleted "
                          f"AND NOT EXISTS (SELECT 1 FROM {t} m WHERE m.id = x.id)", (bid,))[0][0]
        n_upd = q(direct, f"SELECT count(*) FROM {d} WHERE _epoch_branch = %s", (bid,))[0][0] - n_del - n_ins
        record(f"count(*) = {main_count} - {n_del} tombstones + {n_ins} new keys "
               f"({n_upd} updated)", b, main_count - n_del + n_ins,
               q(br, f"SELECT count(*) FROM {t}")[0][0])

        # sum(val): main's sum - main's values of changed keys + the branch's live rows
        exp_sum = q(direct, f"""
            SELECT (SELECT sum(val) FROM {t})
                 - coalesce((SELECT sum(m.val) FROM {t} m JOIN {d} x
                               ON x.id = m.id AND x._epoch_branch = %s), 0)
                 + coalesce((SELECT sum(val) FROM {d} WHERE _epoch_branch = %s
                               AND NOT _epoch_deleted), 0)""", (bid, bid))[0][0]
        record("sum(val)", b, exp_sum, q(br, f"SELECT sum(val) FROM {t}")[0][0])

        # GROUP BY: main's groups, minus the changed rows' old versions, plus their new ones
        exp_groups = q(direct, f"""
            SELECT grp, sum(c)::bigint, sum(s) FROM (
                SELECT grp, count(*) AS c, sum(val) AS s FROM {t} GROUP BY grp
                UNION ALL
                SELECT m.grp, -count(*), -sum(m.val) FROM {t} m JOIN {d} x
                    ON x.id = m.id AND x._epoch_branch = %s GROUP BY m.grp
                UNION ALL
                SELECT grp, count(*), sum(val) FROM {d}
                 WHERE _epoch_branch = %s AND NOT _epoch_deleted GROUP BY grp) u
            GROUP BY grp HAVING sum(c) > 0 ORDER BY grp""", (bid, bid))
        got_groups = q(br, f"SELECT grp, count(*), sum(val) FROM {t} GROUP BY grp ORDER BY grp")
        diff = sum(1 for e, g in zip(exp_groups, got_groups) if e != g) \
            + abs(len(exp_groups) - len(got_groups))
        record(f"GROUP BY grp ({len(exp_groups)} groups; value = groups that differ)", b, 0, diff)

        # point lookups: an updated key, one with its group changed, a tombstone, a new key,
        # and an untouched key
        probes = [
            ("updated", f"NOT _epoch_deleted AND EXISTS (SELECT 1 FROM {t} m WHERE m.id = x.id)"),
            ("group changed", f"EXISTS (SELECT 1 FROM {t} m WHERE m.id = x.id AND m.grp <> x.grp)"
                              " AND NOT _epoch_deleted"),
            ("tombstone", "_epoch_deleted"),
            ("new key", f"NOT EXISTS (SELECT 1 FROM {t} m WHERE m.id = x.id)"),
        ]
        for label, cond in probes:
            row = q(direct, f"SELECT id, _epoch_deleted, grp, val FROM {d} x "
                            f"WHERE _epoch_branch = %s AND {cond} ORDER BY id LIMIT 1", (bid,))
            if not row:
                record(f"point lookup ({label})", b, "a probe key", "none in the delta")
                continue
            key, deleted, grp, val = row[0]
            exp = [] if deleted else [(key, grp, val)]
            record(f"point lookup ({label}, id {key})", b, exp,
                   q(br, f"SELECT id, grp, val FROM {t} WHERE id = %s", (key,)))
        key = q(direct, f"SELECT min(id) FROM {t} m WHERE NOT EXISTS "
                        f"(SELECT 1 FROM {d} x WHERE x._epoch_branch = %s AND x.id = m.id)",
                (bid,))[0][0]
        record(f"point lookup (untouched, id {key})", b,
               q(direct, f"SELECT id, grp, val FROM {t} WHERE id = %s", (key,)),
               q(br, f"SELECT id, grp, val FROM {t} WHERE id = %s", (key,)))

        # 1,000-row ranges: main's rows with the branch's versions merged in
        for start in (1, a.rows // 2 - 317, a.rows - 999):
            lo, hi = start, start + 999
            rows = {r[0]: r for r in q(direct, f"SELECT id, grp, val FROM {t} "
                                               f"WHERE id BETWEEN %s AND %s", (lo, hi))}
            for key, deleted, grp, val in q(direct, f"SELECT id, _epoch_deleted, grp, val FROM {d} "
                                                    f"WHERE _epoch_branch = %s AND id BETWEEN %s AND %s",
                                            (bid, lo, hi)):
                if deleted:
                    rows.pop(key, None)
                else:
                    rows[key] = (key, grp, val)
            got = q(br, f"SELECT id, grp, val FROM {t} WHERE id BETWEEN %s AND %s ORDER BY id",
                    (lo, hi))
            exp = [rows[k] for k in sorted(rows)]
            record(f"range id {lo}..{hi} ({len(exp)} rows expected; value = rows that differ)",
                   b, 0, sum(1 for e, g in zip(exp, got) if e != g) + abs(len(exp) - len(got)))
        br.close()

    with open(a.out, "a", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        for r in results:
            w.writerow(r)
    bad = [r for r in results if r[4] != "ok"]
    for r in bad:
        print(f"branch_reads: CHECK FAILED: {r[1]}: {r[0]}: expected {r[2]!r}, got {r[3]!r}",
              file=sys.stderr)
    return 1 if bad else 0


# ---------------------------------------------------------------- create


def cmd_create(a):
    via = connect(a.proxy, a.db)
    direct = connect(a.direct, a.db)
    samples = []

    def timed(conn, sql, args=None):
        with conn.cursor() as cur:
            t0 = time.perf_counter()
            cur.execute(sql, args)
            cur.fetchall()
            return (time.perf_counter() - t0) * 1000.0

    n_branches = q(direct, "SELECT count(*) FROM epoch.branch")[0][0]
    # baseline: SELECT 1 round trips on the same connections
    for i in range(a.n):
        for path, conn in [("proxy", via), ("direct", direct)]:
            samples.append((a.case, path, "SELECT 1 (baseline)", i, timed(conn, "SELECT 1"),
                            n_branches))
    # branch_create, and the statement right after it: the proxy reloads the
    # session's catalog after an epoch.* call before the next statement, so
    # part of the cost of a create lands on the next statement
    for i in range(a.n):
        order = [("proxy", via), ("direct", direct)]
        if i % 2:  # alternate which path goes first
            order.reverse()
        for path, conn in order:
            name = f"{a.case}-{path}-{i}"
            t_create = timed(conn, "SELECT epoch.branch_create(%s)", (name,))
            t_next = timed(conn, "SELECT 1")
            samples.append((a.case, path, "branch_create", i, t_create, n_branches))
            samples.append((a.case, path, "SELECT 1 right after", i, t_next, n_branches))
            samples.append((a.case, path, "branch_create + next SELECT 1", i, t_create + t_next,
                            n_branches))
    # the branches exist and are usable through the proxy
    last = f"{a.case}-proxy-{a.n - 1}"
    chk = connect(a.proxy, f"{a.db}@{last}")
    got = q(chk, "SHOW epoch.branch")[0][0]
    chk.close()
    if got != last:
        print(f"branch_reads: created branch {last!r} not usable: SHOW epoch.branch = {got!r}",
              file=sys.stderr)
        return 1
    with open(a.out, "a", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        for s in samples:
            w.writerow(s[:4] + (f"{s[4]:.4f}", s[5]))
    return 0


# ---------------------------------------------------------------- report

CASES = {
    "point": "point lookup (random id)",
    "range": "1,000-row range scan (random start)",
    "count": "full scan count(*)",
    "sum": "full scan sum(val)",
    "groupby": "GROUP BY grp (100 groups), whole table",
}
# seed targets: allowed latency overhead of a branch read vs main, per overlay
TARGETS = {
    ("point", "small"): 20, ("point", "large"): 20,
    ("range", "small"): 10, ("range", "large"): 10,
    ("count", "small"): 4, ("count", "large"): 20,
    ("sum", "small"): 4, ("sum", "large"): 20,
    ("groupby", "small"): 10, ("groupby", "large"): 10,
}


def load_reads(path):
    runs, order, targets = {}, [], []
    with open(path, newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            cfg = (r["case"], r["protocol"])
            if cfg not in order:
                order.append(cfg)
            if r["target"] not in targets:
                targets.append(r["target"])
            runs.setdefault((cfg, r["target"]), []).append(r)
    return order, targets, runs


def ok_rows(rows):
    return [r for r in rows or [] if r["status"] == "ok"]


def fmt_tps(v):
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def fmt_ms(v):
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def report_reads(path, small, large):
    order, targets, runs = load_reads(path)
    branches = [t for t in targets if t != "main"]
    kind = {small: "small", large: "large"}
    print("Median over rounds, min–max over rounds in parentheses. Overhead = median"
          " latency on the branch / median latency on main − 1 (1 client: latency ="
          " 1/TPS); \"paired\" = the min–max over rounds of the same ratio taken within"
          " each round, where main and the branch ran back to back.\n")
    header = ["case", "-M", "main TPS", "main ms"]
    for b in branches:
        header += [f"{b} TPS", f"{b} ms", f"{b} overhead (paired)", "target"]
    rows, bad = [], []
    for cfg in order:
        case, proto = cfg
        row = [CASES.get(case, case), proto]
        m = ok_rows(runs.get((cfg, "main")))
        mt = [float(r["tps"]) for r in m]
        ml = [float(r["latency_ms"]) for r in m]
        if mt:
            row += [f"{fmt_tps(med(mt))} ({fmt_tps(min(mt))}–{fmt_tps(max(mt))})", fmt_ms(med(ml))]
        else:
            row += ["FAIL", "-"]
        for b in branches:
            br = ok_rows(runs.get((cfg, b)))
            bt = [float(r["tps"]) for r in br]
            bl = [float(r["latency_ms"]) for r in br]
            if not bt:
                row += ["FAIL", "-", "-", ""]
                continue
            row += [f"{fmt_tps(med(bt))} ({fmt_tps(min(bt))}–{fmt_tps(max(bt))})", fmt_ms(med(bl))]
            if ml:
                ov = (med(bl) / med(ml) - 1) * 100
                mr = {r["round"]: float(r["latency_ms"]) for r in m}
                paired = [(float(r["latency_ms"]) / mr[r["round"]] - 1) * 100
                          for r in br if r["round"] in mr]
                pair = f" ({min(paired):+.0f}…{max(paired):+.0f})" if len(paired) > 1 else ""
                row.append(f"{ov:+.0f} %{pair}")
                tgt = TARGETS.get((case, kind.get(b, "")))
                row.append("" if tgt is None else f"+{tgt} % {'✓' if ov <= tgt else '✗'}")
            else:
                row += ["-", ""]
        rows.append(row)
    print(table(header, rows))

    print("\nepoch-proxy CPU time per transaction (µs of utime+stime, median over rounds;"
          " /proc ticks are 10 ms, so rows with few transactions are coarse) and how busy"
          " the whole machine was (min–max over the runs of the row):\n")
    rows = []
    for cfg in order:
        case, proto = cfg
        row = [CASES.get(case, case), proto]
        busy = []
        for t in targets:
            rs = ok_rows(runs.get((cfg, t)))
            cpu = [float(r["cpu_us_per_txn"]) for r in rs if r["cpu_us_per_txn"] not in ("", "-")]
            row.append(f"{med(cpu):.0f}" if cpu else "-")
            busy += [int(r["host_busy_pct"]) for r in rs]
        row.append(f"{min(busy)}–{max(busy)}" if busy else "-")
        rows.append(row)
    print(table(["case", "-M"] + [f"CPU/txn {t}" for t in targets] + ["host busy %"], rows))

    for (cfg, t), rs in sorted(runs.items()):
        for r in rs:
            if r["status"] != "ok":
                bad.append(f"round {r['round']} {cfg[0]} -M {cfg[1]} {t}: pgbench failed")
            elif r["failed"] not in ("", "-", "0"):
                bad.append(f"round {r['round']} {cfg[0]} -M {cfg[1]} {t}: {r['failed']} failed transactions")
    return bad


def report_rewrite(path, cache_note):
    rows = []
    with open(path) as f:
        lines = [l.rstrip("\n") for l in f if l.strip()]
    header = lines[0].lstrip("#").split("\t")
    for l in lines[1:]:
        r = dict(zip(header, l.split("\t")))
        f = lambda k: float(r[k])  # noqa: E731
        cached = "-"
        if r.get("cached_cpu_median_us", "-") != "-":
            cached = (f"{f('cached_cpu_median_us'):.1f} ({f('cached_cpu_min_us'):.1f}–"
                      f"{f('cached_cpu_max_us'):.1f})")
        rows.append([r["statement"], r["lines"], f"{r['bytes_in']} → {r['bytes_out']}",
                     r["tables_rewritten"], f"{f('first_cpu_us'):.0f}",
                     f"{f('cold_cpu_median_us'):.1f} ({f('cold_cpu_min_us'):.1f}–"
                     f"{f('cold_cpu_max_us'):.1f})",
                     f"{f('cold_wall_median_us'):.1f} (min {f('cold_wall_min_us'):.1f})",
                     f"{f('parse_cpu_median_us'):.1f}", cached,
                     f"{f('precheck_cpu_median_us') * 1000:.0f}"])
    print("µs per statement, CPU time of the thread (median of batch means, min–max of the"
          " batch means); wall-clock time for comparison.\n")
    print(table(["statement", "lines", "bytes in → out", "tracked tables rewritten",
                 "first call µs", "cold µs", "cold µs, wall", "of which pg_query_parse µs",
                 "cached (hit) µs", "main pre-check ns"], rows))
    if cache_note:
        print(f"\n{cache_note}")


def report_explain(directory, targets):
    import os
    import re
    rows = []
    for case in CASES:
        for t in targets:
            path = os.path.join(directory, f"{case}-{t}.txt")
            if not os.path.exists(path):
                continue
            text = open(path).read()
            plan = re.search(r"Planning Time: ([0-9.]+) ms", text)
            exe = re.search(r"Execution Time: ([0-9.]+) ms", text)
            loops = [(int(m.group(2)), m.group(1).strip()) for m in
                     re.finditer(r"->\s+([^(]+?)\s+\(cost=[^)]*\) \(actual [^)]*loops=(\d+)\)", text)]
            big = max(loops) if loops else (0, "")
            rows.append([CASES[case], t, plan.group(1) if plan else "ERROR",
                         exe.group(1) if exe else "ERROR",
                         f"{big[0]} × {big[1]}" if big[0] > 1000 else ""])
    print(table(["case", "target", "planning ms", "execution ms",
                 "node run most often (> 1000 loops)"], rows))


def report_create(path):
    samples = {}
    cases = []
    nb = {}
    with open(path, newline="") as f:
        for case, via, what, _i, ms, n_branches in csv.reader(f, delimiter="\t"):
            if case not in cases:
                cases.append(case)
            samples.setdefault((case, via, what), []).append(float(ms))
            nb[case] = n_branches
    rows = []
    for case in cases:
        for via in ("proxy", "direct"):
            for what in ("SELECT 1 (baseline)", "branch_create", "SELECT 1 right after",
                         "branch_create + next SELECT 1"):
                v = sorted(samples.get((case, via, what), []))
                if not v:
                    continue
                p90 = v[min(len(v) - 1, int(round(0.9 * (len(v) - 1))))]
                mark = ("✓" if med(v) < 1.0 else "✗") if what == "branch_create" else ""
                rows.append([case, nb[case], via, what, len(v), f"{med(v):.3f}", f"{p90:.3f}",
                             f"{v[0]:.3f}–{v[-1]:.3f}", mark])
    print(table(["case", "branches before", "via", "statement", "n", "median ms", "p90 ms",
                 "min–max ms", "median < 1 ms"], rows))


def cmd_report(a):
    bad = []
    print("### Branch reads through epoch-proxy, 1 client\n")
    bad += report_reads(a.reads, a.small, a.large)
    print("\n### Correctness checks (branch answers through the proxy vs the same answer"
          " computed directly from main's rows and the branch's delta rows)\n")
    bad += report_checks(a.checks)
    if a.explain:
        print("\n### One EXPLAIN (ANALYZE, BUFFERS) per case and target through the proxy"
              " (point: the middle id; range: 1,000 ids from the middle; one run each, so"
              " noisy)\n")
        report_explain(a.explain, ["main", a.small, a.large])
    print("\n### Branch creation (`SELECT epoch.branch_create(name)` round trips, autocommit,"
          " through the proxy and directly; `SELECT 1` alone as the baseline, and right after"
          " each create, where the proxy reloads the session's catalog first)\n")
    report_create(a.create)
    print("\n### Rewrite cost per statement (bench/rewrite_cost, in-process, no I/O)\n")
    report_rewrite(a.rewrite, a.cache_note)
    if bad:
        print("\nFailures:\n")
        print("\n".join("- " + b for b in bad))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("--proxy", type=int, required=True)
    c.add_argument("--direct", type=int, required=True)
    c.add_argument("--db", required=True)
    c.add_argument("--table", required=True)
    c.add_argument("--rows", type=int, required=True)
    c.add_argument("--branches", required=True)
    c.add_argument("--out", required=True)
    c = sub.add_parser("create")
    c.add_argument("--proxy", type=int, required=True)
    c.add_argument("--direct", type=int, required=True)
    c.add_argument("--db", required=True)
    c.add_argument("--case", required=True)
    c.add_argument("--n", type=int, required=True)
    c.add_argument("--out", required=True)
    c = sub.add_parser("report")
    c.add_argument("--reads", required=True)
    c.add_argument("--rewrite", required=True)
    c.add_argument("--checks", required=True)
    c.add_argument("--create", required=True)
    c.add_argument("--explain", default="")
    c.add_argument("--small", required=True, help="name of the small-overlay branch")
    c.add_argument("--large", required=True, help="name of the large-overlay branch")
    c.add_argument("--cache-note", default="")
    a = p.parse_args()
    return {"check": cmd_check, "create": cmd_create, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
