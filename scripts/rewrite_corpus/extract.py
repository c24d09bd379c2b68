#!/usr/bin/python3
"""Collect the rewriter's byte-identity corpus from the test sources.

Writes into OUTDIR:
  statements   every SQL-looking string literal of tests/unit/*.c and
               tests/integration/*.py, NUL-separated, deduplicated, in order
  cat_*.tsv    catalogs (epoch._session rows: kind, a, b, c, d; \\N = NULL):
               rewrite (test_rewrite.c's fixture), dml (test_dml.c's),
               integ (the tables the integration tests create), wide
               (test_wide.c's 1,600-column table)

Throwaway tooling for refactors that must not change the rewriter's output;
see run.sh.
"""
import ast
import glob
import os
import re
import sys

KEYWORDS = set("""SELECT WITH INSERT UPDATE DELETE COPY TABLE VALUES EXPLAIN DECLARE PREPARE
EXECUTE SET SHOW RESET BEGIN COMMIT ROLLBACK END ABORT CREATE ALTER DROP TRUNCATE MERGE DO CALL
LOCK VACUUM ANALYZE DISCARD DEALLOCATE LISTEN NOTIFY UNLISTEN FETCH MOVE CLOSE START SAVEPOINT
RELEASE GRANT REVOKE COMMENT REFRESH CLUSTER REINDEX CHECKPOINT IMPORT SECURITY""".split())


def sql_like(s):
    t = s.lstrip(" \t\r\n(")
    if t.startswith("--") or t.startswith("/*"):
        return True
    m = re.match(r"[A-Za-z_]+", t)
    return bool(m) and m.group(0).upper() in KEYWORDS


# ---------------------------------------------------------------- C sources

ESC = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0", "a": "\a",
       "b": "\b", "f": "\f", "v": "\v", "?": "?"}


def c_tokens(src):
    """(kind, value): 'str' (decoded), 'id', 'num', 'p' (punctuation); comments,
    preprocessor lines other than #define dropped ('#define' kept as 'def')."""
    i, n = 0, len(src)
    out = []
    line_start = True
    while i < n:
        c = src[i]
        if c == "\n":
            line_start = True
            i += 1
            continue
        if c in " \t\r":
            i += 1
            continue
        if src.startswith("//", i):
            i = src.find("\n", i)
            i = n if i < 0 else i
            continue
        if src.startswith("/*", i):
            j = src.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if c == "\\" and i + 1 < n and src[i + 1] == "\n":
            i += 2
            continue
        if c == "#" and line_start:
            m = re.match(r"#\s*define\s+([A-Za-z_]\w*)(\(?)", src[i:])
            if m:
                out.append(("def", m.group(1), m.group(2) == "("))
                out.append(("p", "#defbody"))
                i += m.end()
                line_start = False
                continue
            # other directives: skip the (continued) line
            while i < n and src[i] != "\n":
                i += 2 if src.startswith("\\\n", i) else 1
            continue
        line_start = False
        if c == '"':
            j = i + 1
            buf = []
            while j < n and src[j] != '"':
                if src[j] == "\\":
                    e = src[j + 1]
                    if e == "x":
                        m = re.match(r"[0-9a-fA-F]+", src[j + 2:])
                        buf.append(chr(int(m.group(0), 16)))
                        j += 2 + m.end()
                        continue
                    if e in "01234567":
                        m = re.match(r"[0-7]{1,3}", src[j + 1:])
                        buf.append(chr(int(m.group(0), 8)))
                        j += 1 + m.end()
                        continue
                    buf.append(ESC.get(e, e))
                    j += 2
                    continue
                buf.append(src[j])
                j += 1
            out.append(("str", "".join(buf)))
            i = j + 1
            continue
        if c == "'":
            j = i + 1
            while j < n and src[j] != "'":
                j += 2 if src[j] == "\\" else 1
            out.append(("p", "charlit"))
            i = j + 1
            continue
        m = re.match(r"[A-Za-z_]\w*", src[i:])
        if m:
            out.append(("id", m.group(0)))
            i += m.end()
            continue
        m = re.match(r"[0-9][\w.]*", src[i:])
        if m:
            out.append(("num", m.group(0)))
            i += m.end()
            continue
        out.append(("p", c))
        i += 1
    return out


def c_strings(tokens):
    """Concatenated string literals; object-like macros that expand to string
    literals are substituted."""
    macros = {}
    # pass 1: object-like macros whose body is only strings / such macros
    k = 0
    while k < len(tokens):
        t = tokens[k]
        if t[0] == "def" and not t[2]:
            body = []
            j = k + 2
            while j < len(tokens) and tokens[j][0] in ("str", "id") and tokens[j] != ("id", "define"):
                if tokens[j][0] == "id" and tokens[j][1] not in macros:
                    break
                body.append(tokens[j])
                j += 1
            # stop at the next token that is not part of the definition line:
            # approximate: accept only when a string was seen
            if body and all(b[0] == "str" or b[1] in macros for b in body):
                macros[t[1]] = "".join(b[1] if b[0] == "str" else macros[b[1]] for b in body)
        k += 1
    res = []
    cur = None
    for t in tokens:
        if t[0] == "str":
            cur = (cur or "") + t[1]
            continue
        if t[0] == "id" and t[1] in macros and cur is not None:
            cur += macros[t[1]]
            continue
        if cur is not None:
            res.append(cur)
            cur = None
    if cur is not None:
        res.append(cur)
    return res


def c_rows(tokens, name):
    """The rows {a, b, c, d, e} of a 'name[][5] = { ... };' array."""
    for k, t in enumerate(tokens):
        if t == ("id", name) and tokens[k + 1] == ("p", "["):
            break
    else:
        raise SystemExit(f"array {name} not found")
    while tokens[k] != ("p", "="):
        k += 1
    k += 2  # past '= {'
    rows = []
    while tokens[k] != ("p", "}"):
        assert tokens[k] == ("p", "{"), tokens[k]
        k += 1
        row, cur = [], None
        while True:
            t = tokens[k]
            if t[0] == "str":
                cur = (cur or "") + t[1]
            elif t == ("id", "NULL"):
                cur = None
                row.append(None)
            elif t == ("p", ",") or t == ("p", "}"):
                if cur is not None:
                    row.append(cur)
                    cur = None
                if t == ("p", "}"):
                    break
            k += 1
        rows.append(row)
        k += 1
        if tokens[k] == ("p", ","):
            k += 1
    return rows


# ---------------------------------------------------------------- Python

def py_strings(path):
    tree = ast.parse(open(path).read(), path)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append((node.lineno, node.col_offset, node.value))
    out.sort()
    return [s for _, _, s in out]


# ---------------------------------------------------------------- integration catalog

def split_top(body):
    parts, depth, cur, q = [], 0, [], None
    for ch in body:
        if q:
            cur.append(ch)
            if ch == q:
                q = None
            continue
        if ch in "'\"":
            q = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def paren_body(s, open_at):
    depth, q = 0, None
    for j in range(open_at, len(s)):
        ch = s[j]
        if q:
            if ch == q:
                q = None
            continue
        if ch in "'\"":
            q = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return s[open_at + 1:j]
    return None


def ident(tok):
    if tok.startswith('"'):
        return tok[1:-1].replace('""', '"')
    return tok.lower()


STOP = {"PRIMARY", "NOT", "NULL", "DEFAULT", "GENERATED", "REFERENCES", "UNIQUE", "CHECK",
        "CONSTRAINT", "COLLATE"}


def integ_tables(strings):
    tables = {}
    for s in strings:
        for m in re.finditer(r'CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?((?:"[^"]+"|\w+)(?:\.(?:"[^"]+"|\w+))?)\s*\(',
                             s, re.I):
            body = paren_body(s, m.end() - 1)
            if body is None:
                continue
            qn = re.findall(r'"[^"]+"|\w+', m.group(1))
            schema = ident(qn[0]) if len(qn) == 2 else "public"
            name = ident(qn[-1])
            if (schema, name) in tables:
                continue
            cols, pk, defaults, attrs = [], set(), {}, {}
            for part in split_top(body):
                up = part.upper()
                pm = re.match(r"(?:CONSTRAINT\s+\S+\s+)?PRIMARY\s+KEY\s*\((.*)\)", part, re.I | re.S)
                if pm:
                    pk |= {ident(c.strip()) for c in pm.group(1).split(",")}
                    continue
                if re.match(r"(CONSTRAINT|UNIQUE|CHECK|FOREIGN|EXCLUDE|LIKE)\b", up):
                    continue
                cm = re.match(r'("(?:[^"]|"")+"|\w+)\s+(.*)', part, re.S)
                if not cm:
                    continue
                col = ident(cm.group(1))
                rest = cm.group(2)
                words = re.findall(r"\w+(?:\[\])?|\(|\)|\S", rest)
                typ = []
                depth = 0
                for wd in words:
                    if depth == 0 and wd.upper() in STOP:
                        break
                    depth += wd == "("
                    depth -= wd == ")"
                    typ.append(wd)
                t = " ".join(typ).lower()
                t = re.sub(r"\s*\(.*\)", "", t).replace(" []", "[]")
                t = {"int": "integer", "int4": "integer", "int8": "bigint", "serial": "integer",
                     "bigserial": "bigint", "bool": "boolean", "varchar": "character varying",
                     "timestamptz": "timestamp with time zone"}.get(t, t)
                cols.append((col, t))
                if re.search(r"PRIMARY\s+KEY", up):
                    pk.add(col)
                gm = re.search(r"GENERATED\s+ALWAYS\s+AS\s*\(", part, re.I)
                if gm and re.search(r"STORED", up):
                    defaults[col] = "(" + paren_body(part, gm.end() - 1) + ")"
                    attrs[col] = (None, "s")
                elif re.search(r"GENERATED\s+ALWAYS\s+AS\s+IDENTITY", up):
                    attrs[col] = ("a", None)
                    defaults[col] = f"nextval('{name}_{col}_seq'::regclass)"
                elif re.search(r"GENERATED\s+BY\s+DEFAULT\s+AS\s+IDENTITY", up):
                    attrs[col] = ("d", None)
                    defaults[col] = f"nextval('{name}_{col}_seq'::regclass)"
                else:
                    dm = re.search(r"DEFAULT\s+(.+?)(?:\s+(?:NOT\s+NULL|NULL|CHECK|REFERENCES|UNIQUE)\b|$)", part, re.I | re.S)
                    if dm:
                        defaults[col] = dm.group(1).strip()
                if "SERIAL" in t.upper() or rest.lower().startswith("serial") or rest.lower().startswith("bigserial"):
                    defaults[col] = f"nextval('{name}_{col}_seq'::regclass)"
            if not pk or not cols or not all(c in [x for x, _ in cols] for c in pk):
                continue
            tables[(schema, name)] = (cols, pk, defaults, attrs)
    return tables


def integ_rows(tables):
    schemas = ["pg_catalog", "public"] + sorted({s for s, _ in tables if s != "public"})
    rows = [["branch", "7", "feature/x", "100", "3"]]
    rows += [["path", str(i + 1), s, None, None] for i, s in enumerate(schemas)]
    for (s, n) in tables:
        rows.append(["rel", None, s, n, None])
    for i, ((s, n), (cols, pk, defaults, attrs)) in enumerate(tables.items(), 1):
        rows.append(["table", str(i), s, n, f"{n}_pkey"])
        for c, t in cols:
            rows.append(["column", str(i), c, "true" if c in pk else "false", t])
        for c, d in defaults.items():
            rows.append(["default", str(i), c, d, None])
        for c, (ident_kind, gen) in attrs.items():
            rows.append(["attr", str(i), c, ident_kind, gen])
    return rows


def wide_rows():
    rows = [["branch", "7", "feature/x", "100", "3"], ["path", "1", "pg_catalog", None, None],
            ["path", "2", "public", None, None], ["rel", None, "public", "wide", None],
            ["rel", None, "public", "small", None], ["table", "1", "public", "wide", "wide_pkey"],
            ["table", "2", "public", "small", "small_pkey"]]
    rows += [["column", "1", "id" if k == 0 else f"c{k}", "true" if k == 0 else "false", "integer"]
             for k in range(1600)]
    rows += [["column", "2", "id", "true", "integer"], ["column", "2", "v", "false", "integer"]]
    return rows


def extra_statements():
    """Statements no test spells out: the wide table's long lists (test_wide.c
    builds them in code), and refs whose names need quoting as literals."""
    cols = ["id"] + [f"c{k}" for k in range(1, 1600)]
    out = [
        "INSERT INTO wide VALUES (" + ", ".join(str(k) for k in range(1600)) + ")",
        "INSERT INTO wide (" + ", ".join(cols) + ") VALUES (" + ", ".join(str(k) for k in range(1600)) + ") RETURNING *",
        "UPDATE wide SET " + ", ".join(f"{c} = {k}" for k, c in enumerate(cols[1:])) + " WHERE id = 1",
        # 40 columns, not 1,599: each column's value repeats the sub-SELECT,
        # overlay included (1,599 take minutes and gigabytes, old code too)
        "UPDATE wide SET (" + ", ".join(cols[1:41]) + ") = (SELECT " + ", ".join(cols[1:41]) + " FROM wide WHERE id = 2) WHERE id = 1",
        "INSERT INTO wide SELECT * FROM wide WHERE id = 1 ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in cols[1:]),
        "DELETE FROM wide WHERE id = 1 RETURNING *",
        "COPY wide FROM STDIN",
        "COPY wide (" + ", ".join(cols) + ") FROM STDIN",
        "COPY wide TO STDOUT",
        "SELECT * FROM wide JOIN small USING (id)",
        "INSERT INTO small VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET v = excluded.v RETURNING *",
    ]
    # edits that share a start: the named-argument retry's empty edit at 0
    # with TABLE t at 0; a multiple-column SET whose source is walked once
    # per column; key UPDATEs in WITH queries (CTEs hoisted before a name)
    out += [
        "TABLE users; SELECT epoch.branch_create('x', from => 'main')",
        "TABLE users; SELECT * FROM epoch.branch_create('x', from => 'main')",
        "TABLE v_users; SELECT epoch.branch_create('x', from => 'main')",
        "UPDATE users SET (name, email) = (SELECT name, email FROM users u2 WHERE u2.id = 2) WHERE id = 1",
        "UPDATE users SET (name, email) = (SELECT o.total::text, 'x' FROM orders o WHERE o.id = users.id)",
        "WITH m AS (UPDATE users SET id = id + 100 WHERE id < 3 RETURNING id) SELECT * FROM m",
        "WITH a AS (UPDATE users SET id = id + 100 WHERE id < 3 RETURNING id), "
        "b AS (UPDATE line_items SET line_no = line_no + 1 RETURNING order_id) SELECT * FROM a, b",
        "WITH m AS (UPDATE users SET id = 5 RETURNING *) TABLE m",
    ]
    for ref in ["feat'y", "feat\\y", "feat\\'y", "a\"b", "x'; DROP TABLE t; --", "main", "main@{2024-01-01}"]:
        q = ref.replace('"', '""')
        out += [
            f'SELECT * FROM "@{q}".users',
            f'SELECT * FROM "public@{q}".users u JOIN orders o ON o.user_id = u.id',
            f'SELECT * FROM "@{q}".v_users',
            f'COPY "@{q}".users TO STDOUT',
            f'SELECT * FROM "@{q}".products',
            f'INSERT INTO users SELECT * FROM "@{q}".users ON CONFLICT DO NOTHING',
            f'SELECT "@{q}".users.id FROM "@{q}".users',
        ]
    return out


def tsv(v):
    if v is None:
        return "\\N"
    return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def write_rows(path, rows):
    with open(path, "w") as f:
        for r in rows:
            assert len(r) == 5, r
            f.write("\t".join(tsv(v) for v in r) + "\n")


def main():
    repo, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    stmts, seen = [], set()

    def add(s):
        if sql_like(s) and s not in seen and "\0" not in s:
            seen.add(s)
            stmts.append(s)

    toks = {}
    for path in sorted(glob.glob(os.path.join(repo, "tests/unit/*.c"))):
        toks[os.path.basename(path)] = c_tokens(open(path).read())
        for s in c_strings(toks[os.path.basename(path)]):
            add(s)
    n_unit = len(stmts)
    py = []
    for path in sorted(glob.glob(os.path.join(repo, "tests/integration/*.py"))):
        for s in py_strings(path):
            py.append(s)
            add(s)
    n_integ = len(stmts) - n_unit
    for s in extra_statements():
        add(s)
    with open(os.path.join(outdir, "statements"), "wb") as f:
        for s in stmts:
            f.write(s.encode("utf-8", "surrogateescape") + b"\0")
    write_rows(os.path.join(outdir, "cat_rewrite.tsv"), c_rows(toks["test_rewrite.c"], "session_rows"))
    write_rows(os.path.join(outdir, "cat_dml.tsv"), c_rows(toks["test_dml.c"], "dml_rows"))
    tables = integ_tables(py)
    write_rows(os.path.join(outdir, "cat_integ.tsv"), integ_rows(tables))
    write_rows(os.path.join(outdir, "cat_wide.tsv"), wide_rows())
    print(f"{len(stmts)} statements ({n_unit} from tests/unit, {n_integ} more from "
          f"tests/integration, {len(stmts) - n_unit - n_integ} generated); integration catalog: {len(tables)} tables", file=sys.stderr)


if __name__ == "__main__":
    main()
