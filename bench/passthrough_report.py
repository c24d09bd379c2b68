#!/usr/bin/env python3
"""Markdown tables for bench/passthrough from its raw per-run TSV.

usage: passthrough_report.py RESULTS.tsv

Columns of the TSV: round workload protocol clients target status tps latency_ms
transactions cpu_us_per_txn failed host_busy_pct (status: ok | fail | n/a).
"""
import csv
import statistics
import sys

from report_common import table

# in column order; only the targets present in the TSV are shown
ALL_TARGETS = ["direct", "pgb-session", "pgb-transaction", "epoch-pass", "epoch-session",
               "epoch-transaction", "epoch-pass-libuv", "epoch-session-libuv",
               "epoch-transaction-libuv", "epoch-pass-base", "epoch-transaction-base",
               "relay-epoll", "relay-uring"]
NAMES = {
    "direct": "direct",
    "pgb-session": "PgBouncer session",
    "pgb-transaction": "PgBouncer transaction",
    "epoch-pass": "epoch passthrough",
    "epoch-session": "epoch session",
    "epoch-transaction": "epoch transaction",
    "epoch-pass-libuv": "epoch passthrough (libuv)",
    "epoch-session-libuv": "epoch session (libuv)",
    "epoch-transaction-libuv": "epoch transaction (libuv)",
    "epoch-pass-base": "epoch passthrough (EPOCH_PROXY_BASE)",
    "epoch-transaction-base": "epoch transaction (EPOCH_PROXY_BASE)",
    "relay-epoll": "relay_floor epoll",
    "relay-uring": "relay_floor io_uring",
}
# (numerator, denominator) of the ratio columns: each epoch-proxy mode against
# its like (pooling with pooling, one new backend per client with direct); the
# byte relays (FLOOR=1) against direct, and io_uring against epoll
ALL_RATIOS = [("epoch-session", "pgb-session"), ("epoch-transaction", "pgb-transaction"),
              ("epoch-pass", "direct"), ("epoch-pass", "pgb-session"),
              ("relay-epoll", "direct"), ("relay-uring", "direct"),
              ("epoch-pass", "relay-epoll"), ("relay-uring", "relay-epoll"),
              ("epoch-session-libuv", "pgb-session"),
              ("epoch-transaction-libuv", "pgb-transaction"),
              ("epoch-session", "epoch-session-libuv"), ("epoch-pass", "epoch-pass-libuv"),
              ("epoch-pass", "epoch-pass-base"), ("epoch-transaction", "epoch-transaction-base")]
WORKLOAD = {"select": "select-only (-S)", "tpcb": "TPC-B-like"}


def load(path):
    runs = {}
    order = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            cfg = (row["workload"], row["protocol"], int(row["clients"]))
            if cfg not in order:
                order.append(cfg)
            runs.setdefault((cfg, row["target"]), []).append(row)
    return order, runs


class Cell:
    """The rounds of one target in one configuration."""

    def __init__(self, rows):
        rows = rows or []
        self.na = bool(rows) and all(r["status"] == "n/a" for r in rows)
        ok = [r for r in rows if r["status"] == "ok"]
        self.n_ok, self.n = len(ok), len([r for r in rows if r["status"] != "n/a"])
        self.tps = [float(r["tps"]) for r in ok]
        self.lat = [float(r["latency_ms"]) for r in ok]
        self.cpu = [float(r["cpu_us_per_txn"]) for r in ok if r["cpu_us_per_txn"] != "-"]
        self.failed_txns = sum(int(r["failed"]) for r in ok if r["failed"] not in ("", "-"))

    def med(self, what):
        vals = getattr(self, what)
        return statistics.median(vals) if vals else None

    def missing(self):
        if self.na:
            return "n/a"
        if self.n_ok == 0:
            return "FAIL" if self.n else "-"
        return None

    def note(self):
        return f" ({self.n_ok}/{self.n} ok)" if self.n_ok < self.n else ""

    def tps_text(self):
        m = self.missing()
        if m:
            return m
        lo, hi = min(self.tps), max(self.tps)
        spread = f" ({lo:.0f}–{hi:.0f})" if len(self.tps) > 1 else ""
        return f"{self.med('tps'):.0f}{spread}{self.note()}"

    def lat_text(self):
        m = self.missing()
        return m if m else f"{self.med('lat'):.3f}"

    def cpu_text(self):
        m = self.missing()
        if m:
            return m
        c = self.med("cpu")
        return "-" if c is None else f"{c:.1f}"


def ratio(a, b):
    if a.missing() or b.missing():
        return "n/a" if (a.na or b.na) else "-"
    return f"{a.med('tps') / b.med('tps'):.2f}"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    order, runs = load(sys.argv[1])
    present = {t for (_, t) in runs}
    TARGETS = [t for t in ALL_TARGETS if t in present]
    PROXIES = [t for t in TARGETS if t != "direct"]
    RATIOS = [(a, b) for a, b in ALL_RATIOS if a in present and b in present]

    def cells(cfg):
        return {t: Cell(runs.get((cfg, t))) for t in TARGETS}

    def label(cfg):
        w, p, c = cfg
        return [WORKLOAD.get(w, w), p, str(c)]

    print("TPS, median over rounds (min–max):\n")
    print(table(["workload", "-M", "clients"] + [NAMES[t] for t in TARGETS],
                [label(cfg) + [cells(cfg)[t].tps_text() for t in TARGETS] for cfg in order]))

    print("\nMean latency (ms, median over rounds), proxy CPU time per transaction"
          " (µs of utime+stime, median over rounds) and how busy the whole machine was"
          " during the runs (min–max over all runs of the row):\n")
    rows = []
    for cfg in order:
        cs = cells(cfg)
        busy = [int(r["host_busy_pct"]) for t in TARGETS for r in runs.get((cfg, t), [])
                if r["status"] == "ok" and r.get("host_busy_pct", "-") not in ("", "-")]
        rows.append(label(cfg) + [cs[t].lat_text() for t in TARGETS]
                    + [cs[t].cpu_text() for t in PROXIES]
                    + [f"{min(busy)}–{max(busy)}" if busy else "-"])
    print(table(["workload", "-M", "clients"] + [f"lat {NAMES[t]}" for t in TARGETS]
                + [f"CPU/txn {NAMES[t]}" for t in PROXIES] + ["host CPU busy %"], rows))

    print("\nepoch-proxy relative to the others (ratio of median TPS), and latency added"
          " per transaction vs direct at 1 client (µs, difference of median mean latencies):\n")
    rows = []
    for cfg in order:
        cs = cells(cfg)
        row = label(cfg) + [ratio(cs[a], cs[b]) for a, b in RATIOS]
        for t in PROXIES:
            if cfg[2] != 1:
                row.append("")
            elif cs[t].missing() or "direct" not in present or cs["direct"].missing():
                row.append("n/a" if cs[t].na else "-")
            else:
                row.append(f"{(cs[t].med('lat') - cs['direct'].med('lat')) * 1000:+.0f}")
        rows.append(row)
    print(table(["workload", "-M", "clients"]
                + [f"{NAMES[a]} / {NAMES[b]}" for a, b in RATIOS]
                + [f"+µs {NAMES[t]}" for t in PROXIES], rows))

    bad = []
    for (cfg, t), rs in sorted(runs.items()):
        for r in rs:
            if r["status"] == "fail":
                bad.append(f"round {r['round']} {' '.join(label(cfg))} {t}: pgbench failed")
            elif r["status"] == "ok" and r["failed"] not in ("", "-", "0"):
                bad.append(f"round {r['round']} {' '.join(label(cfg))} {t}: "
                           f"{r['failed']} failed transactions")
    if bad:
        print("\nFailures:\n")
        print("\n".join("- " + b for b in bad))


if __name__ == "__main__":
    main()
