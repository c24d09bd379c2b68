"""What the bench/*_report.py scripts share: markdown tables, medians and
the correctness-check table."""
import csv
import statistics


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def med(vals):
    return statistics.median(vals) if vals else None


def report_checks(path):
    """Print the checks TSV (check, target, expected, got, ok|FAIL) as a table;
    return a line per failed check."""
    rows, bad = [], []
    with open(path, newline="") as f:
        for r in csv.reader(f, delimiter="\t"):
            rows.append([r[1], r[0], r[2], r[3], r[4]])
            if r[4] != "ok":
                bad.append(f"check {r[1]}: {r[0]}: expected {r[2]}, got {r[3]}")
    print(table(["target", "check", "expected", "got", ""], rows))
    return bad
