/*
 * dml — INSERT, UPDATE and DELETE on a tracked table on a branch become one
 * INSERT … ON CONFLICT into the table's delta (epoch."d_<id>"), built from the
 * client's own clauses (their text, with the reads inside them rewritten):
 *
 *   UPDATE t SET c = e FROM f WHERE w RETURNING r
 *     → INSERT INTO d AS t (branch, cols) SELECT B, <e or t.c> FROM <overlay> AS t, f WHERE w
 *       ON CONFLICT (branch, key) DO UPDATE SET cols = EXCLUDED.cols, deleted = false RETURNING r
 *   (SET (a, b) = (x, y) / ROW(x, y) gives each column its item; SET (a, b)
 *   = (SELECT …) a scalar sub-SELECT of each column of it; SET a[i] = x the
 *   array with element i replaced, spelled out in SQL)
 *   DELETE FROM t USING f WHERE w RETURNING r
 *     → the same with the old values and deleted = true (a tombstone)
 *   INSERT INTO t (cols) <source> RETURNING r
 *     → the source as a CTE, a check that no key exists on the branch (23505
 *       otherwise, like PostgreSQL), then INSERT … ON CONFLICT (replacing a
 *       tombstone of the same key)
 *
 * The CommandComplete of an UPDATE/DELETE then says INSERT 0 n; the result's
 * tags[] tell the session layer to put UPDATE n / DELETE n back.
 *
 * Stored generated columns are never named in what is written: the delta
 * has their expressions and computes them. The delta has no identity
 * columns, so the rules PostgreSQL's rewriter applies to GENERATED ALWAYS
 * (and OVERRIDING) are applied here, with its SQLSTATE and wording.
 *
 * Must never: write to the base table. Anything this file does not handle is
 * refused with 0A000 and a hint.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rewrite/lexer.h"
#include "rewrite/overlay.h"
#include "rewrite/rewrite_internal.h"

#define MAX_ITEMS 256
/* Starts the INSERT that COPY … FROM's rows go through: PostgreSQL's COPY
 * checks the NOT NULL and CHECK constraints of a batch of rows before their
 * keys (it inserts them in batches), an INSERT checks row by row. */
#define COPY_INSERT_MARK "/* epoch: COPY */ "

/* An identifier quoted as SQL text; malloc'd, NULL if out of memory. */
static char *quoted_ident(const char *name)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    overlay_ident(f, name);
    fclose(f);
    return text;
}

static void refuse(walker_t *w, const char *what)
{
    rw_fail(w, "0A000", "Run it on main, or rewrite it in a simpler form.",
            "%s is not supported on branch \"%s\" yet", what, rw_branch_name(w));
}

/* Which columns a list names. */
typedef enum {
    COLS_ALL,     /* every column (RETURNING *, reads) */
    COLS_KEY,     /* the primary key */
    COLS_WRITTEN, /* the columns a write into the delta names: all but the stored
                     generated ones, which the delta computes (PostgreSQL refuses a
                     value for them) */
} cols_t;

static bool col_in(const catalog_table_t *t, int col, cols_t which)
{
    return which == COLS_KEY ? t->is_pk[col] : which == COLS_ALL || !catalog_col_generated(t, col);
}

static void ident_list(FILE *f, const catalog_table_t *t, const char *qual, cols_t which)
{
    bool first = true;
    for (int i = 0; i < t->ncols; i++) {
        if (!col_in(t, i, which))
            continue;
        if (!first)
            fputs(", ", f);
        first = false;
        if (qual) {
            overlay_ident(f, qual);
            fputc('.', f);
        }
        overlay_ident(f, t->cols[i]);
    }
}

static int column_index(const catalog_table_t *t, const char *name)
{
    for (int i = 0; i < t->ncols; i++)
        if (strcmp(t->cols[i], name) == 0)
            return i;
    return -1;
}

/* RETURNING text with `*` and `x.*` expanded to the table's columns (the
 * delta has two more). Edits already recorded inside are applied. */
static char *returning_text(walker_t *w, json_object *list, const catalog_table_t *t, size_t from,
                            size_t to)
{
    size_t n = list ? json_object_array_length(list) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *val = rw_get(rw_get(json_object_array_get_idx(list, i), "ResTarget"), "val");
        json_object *cref = rw_get(val, "ColumnRef");
        json_object *fields = rw_get(cref, "fields");
        size_t nf = fields ? json_object_array_length(fields) : 0;
        if (!nf || !rw_get(json_object_array_get_idx(fields, nf - 1), "A_Star"))
            continue;
        size_t loc = (size_t)rw_get_int(cref, "location", -1);
        const char *qual =
            nf > 1 ? rw_get_str(rw_get(json_object_array_get_idx(fields, 0), "String"), "sval")
                   : NULL;
        size_t end = loc;
        while (end < to && w->sql[end] != '*')
            end++;
        if (end >= to)
            continue;
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
            return NULL;
        ident_list(f, t, qual, COLS_ALL);
        fclose(f);
        rw_add_edit(w, loc, end + 1, text);
    }
    return rw_splice_range(w, from, to);
}

typedef struct target {
    const catalog_table_t *t;
    const char *alias;
    char bid[64];  /* SQL of the branch id: checked once per statement (InitPlan) */
    char *overlay; /* "(…) AS alias" */
} target_t;

static bool resolve_target(walker_t *w, json_object *body, const char *verb, target_t *tg)
{
    json_object *rel = rw_get(body, "relation");
    const char *relname = rw_get_str(rel, "relname");
    const char *schema = rw_get_str(rel, "schemaname");
    memset(tg, 0, sizeof *tg);
    if (!relname)
        return false;
    if (schema && strchr(schema, '@')) {
        rw_fail(w, "0A000", "Switch to that branch with SET epoch.branch to change its rows.",
                "cannot %s \"%s\".%s: a \"@ref\" reference is read-only", verb, schema, relname);
        return false;
    }
    if (!w->s->cat) {
        w->need_catalog = true;
        return false;
    }
    tg->t = catalog_find(w->s->cat, schema, relname);
    if (!tg->t) {
        rw_fail(w, "0A000",
                "Track it on main first with SELECT epoch.track('table'), or write it on main.",
                "writes to untracked table \"%s\" are not allowed on branch \"%s\"", relname,
                rw_branch_name(w));
        return false;
    }
    for (int k = 0; k < tg->t->ncols; k++)
        if (tg->t->is_pk[k] && catalog_col_generated(tg->t, k)) {
            /* the key of a row would change with the columns it is computed
             * from, which the branch's key checks do not follow */
            rw_fail(w, "0A000", "Write it on main.",
                    "writes to table \"%s\" are not supported on branch \"%s\": its primary "
                    "key has the generated column \"%s\"",
                    relname, rw_branch_name(w), tg->t->cols[k]);
            tg->t = NULL;
            return false;
        }
    const char *alias = rw_get_str(rw_get(rel, "alias"), "aliasname");
    tg->alias = alias ? alias : relname;
    /* a branch deleted under the session must not silently swallow writes */
    snprintf(tg->bid, sizeof tg->bid, "(SELECT epoch._live(%lld))",
             (long long)w->s->cat->branch_id);
    tg->overlay =
        rw_overlay_text(tg->t, NULL, w->s->cat->branch_id, w->s->cat->base_seq, tg->alias, NULL, 0);
    return tg->overlay != NULL;
}

/* Text of the WITH prefix (up to the verb), with its edits applied; "" if
 * none. */
static char *prefix_text(walker_t *w, json_object *body, size_t start, size_t verb)
{
    if (!rw_get(body, "withClause"))
        return strdup("");
    return rw_splice_range(w, start, verb);
}

static void upsert_head(FILE *f, const target_t *tg, bool deleted)
{
    fprintf(f, "INSERT INTO epoch.\"d_%d\" AS ", tg->t->id);
    overlay_ident(f, tg->alias);
    fputs(" (\"_epoch_branch\", ", f);
    ident_list(f, tg->t, NULL, COLS_WRITTEN);
    fputs(deleted ? ", \"_epoch_deleted\") SELECT " : ") SELECT ", f);
}

/* "epoch._duplicate_key('<constraint>', '<key names>', '(' || concat_ws(', ', ":
 * the caller writes the key values and DUPLICATE_KEY_CLOSE. The names are
 * unquoted and the values separated by ", ", for PostgreSQL's wording of a
 * unique violation: Key (id, part)=(1, x) (a ROW(…)::text would quote). */
#define DUPLICATE_KEY_CLOSE ") || ')')"

static void duplicate_key_open(FILE *f, const catalog_table_t *t)
{
    fputs("epoch._duplicate_key(", f);
    overlay_literal(f, t->pk_name ? t->pk_name : "");
    fputs(", ", f);
    char *keys = NULL;
    size_t klen = 0;
    FILE *kf = open_memstream(&keys, &klen);
    if (kf) {
        bool first = true;
        for (int k = 0; k < t->ncols; k++)
            if (t->is_pk[k]) {
                fprintf(kf, "%s%s", first ? "" : ", ", t->cols[k]);
                first = false;
            }
        fclose(kf);
    }
    overlay_literal(f, keys ? keys : "");
    free(keys);
    fputs(", '(' || concat_ws(', ', ", f);
}

/* The rest of the last arm of a write's `SELECT … UNION ALL SELECT <the
 * same columns of _n>`: the rows of src (as _n) for which cond holds raise
 * the unique violation. PostgreSQL checks a new row's NOT NULL and CHECK
 * constraints before its key's uniqueness; the arms of a UNION ALL run in
 * order, so the rows of the first arm have been through the delta's
 * constraints when this one runs. cond reads the table as the statement
 * began (the rows just written are not visible to it). The OFFSET 0 keeps
 * the raising call above cond (a volatile qual is not pushed down into a
 * subquery that is not pulled up). */
static void deferred_duplicate_check(FILE *f, const catalog_table_t *t, const char *src,
                                     const char *cond)
{
    fprintf(f, " FROM (SELECT _n.* FROM %s _n WHERE %s OFFSET 0) _n WHERE ", src, cond);
    duplicate_key_open(f, t);
    ident_list(f, t, "_n", COLS_KEY);
    fputs(DUPLICATE_KEY_CLOSE, f);
}

/* What ON CONFLICT does when the branch already has a row for the key.
 * The row may have changed since the statement's snapshot (another session
 * committed a write to it while we waited for its lock), so UPDATE and
 * DELETE re-apply their SET and re-check their WHERE on that row, as
 * PostgreSQL's own UPDATE does (EvalPlanQual), and never touch a tombstone. */
typedef enum {
    CONFLICT_REPLACE,        /* take the proposed row (upserts) */
    CONFLICT_UPDATE,         /* re-apply SET to the current row */
    CONFLICT_DELETE,         /* tombstone the current row */
    CONFLICT_INSERT,         /* replace a tombstone; a live row is a duplicate key */
    CONFLICT_INSERT_NOTHING, /* replace a tombstone; skip a live row */
} conflict_t;

typedef struct recheck {
    char **exprs;      /* UPDATE: the SET expressions */
    const int *col_of; /* … and their columns */
    int nt;
    const char *where; /* the WHERE text, or NULL */
} recheck_t;

static void conflict_tail(FILE *f, const target_t *tg, conflict_t mode, const recheck_t *rc)
{
    const catalog_table_t *t = tg->t;
    fputs(" ON CONFLICT (\"_epoch_branch\", ", f);
    ident_list(f, t, NULL, COLS_KEY);
    fputs(") DO UPDATE SET ", f);
    if (mode == CONFLICT_DELETE) {
        fputs("\"_epoch_deleted\" = true", f);
    } else if (mode == CONFLICT_UPDATE && rc->exprs && rc->nt == 0) {
        fputs("\"_epoch_deleted\" = false", f); /* SET gen = DEFAULT only: recomputed */
    } else if (mode == CONFLICT_UPDATE && rc->exprs) {
        /* in DO UPDATE both the row and EXCLUDED are in scope, so a bare
         * column would be ambiguous: evaluate the client's expressions in a
         * sub-SELECT over the current row, named as in the statement */
        fputc('(', f);
        for (int i = 0; i < rc->nt; i++) {
            overlay_ident(f, t->cols[rc->col_of[i]]);
            fputs(", ", f);
        }
        fputs("\"_epoch_deleted\") = (SELECT ", f);
        for (int i = 0; i < rc->nt; i++) {
            /* typed: in a sub-SELECT a bare 'x' or $1 is no longer typed by
             * the column it is assigned to */
            const char *type = t->types ? t->types[rc->col_of[i]] : NULL;
            if (type)
                fprintf(f, "(%s)::%s, ", rc->exprs[i], type);
            else
                fprintf(f, "(%s), ", rc->exprs[i]);
        }
        fputs("false FROM (SELECT ", f);
        overlay_ident(f, tg->alias);
        fputs(".*) AS ", f);
        overlay_ident(f, tg->alias);
        fputc(')', f);
    } else {
        for (int i = 0; i < t->ncols; i++) {
            if (!col_in(t, i, COLS_WRITTEN))
                continue;
            overlay_ident(f, t->cols[i]);
            fputs(" = EXCLUDED.", f);
            overlay_ident(f, t->cols[i]);
            fputs(", ", f);
        }
        fputs("\"_epoch_deleted\" = false", f);
    }
    if (mode == CONFLICT_UPDATE || mode == CONFLICT_DELETE) {
        fputs(" WHERE NOT ", f);
        overlay_ident(f, tg->alias);
        fputs(".\"_epoch_deleted\"", f);
        if (rc && rc->where) {
            fputs(" AND EXISTS (SELECT 1 FROM (SELECT ", f);
            overlay_ident(f, tg->alias);
            fputs(".*) AS ", f);
            overlay_ident(f, tg->alias);
            fprintf(f, " WHERE %s)", rc->where);
        }
    } else if (mode == CONFLICT_INSERT || mode == CONFLICT_INSERT_NOTHING) {
        fputs(" WHERE ", f);
        if (mode == CONFLICT_INSERT)
            fputs("CASE WHEN ", f);
        overlay_ident(f, tg->alias);
        fputs(".\"_epoch_deleted\"", f);
        if (mode == CONFLICT_INSERT) {
            /* inserted meanwhile by another session: the unique violation
             * PostgreSQL would report after waiting for it */
            fputs(" THEN true ELSE ", f);
            duplicate_key_open(f, t);
            ident_list(f, t, "excluded", COLS_KEY);
            fputs(DUPLICATE_KEY_CLOSE " END", f);
        }
    }
}

/* Clause boundaries in the statement: positions of the keywords (end if
 * absent), checked against what the parse tree says is there. */
typedef struct clauses {
    size_t verb, set, from, where, ret, end;
} clauses_t;

static bool find_clauses(walker_t *w, json_object *body, const char *verb, const char *set_kw,
                         const char *from_kw, size_t start, size_t end, clauses_t *c)
{
    c->end = end;
    c->verb = lex_find_keyword(w->sql, start, end, verb);
    size_t after = c->verb;
    c->set = set_kw ? lex_find_keyword(w->sql, after, end, set_kw) : end;
    if (set_kw)
        after = c->set;
    c->from = lex_find_keyword(w->sql, after, end, from_kw);
    c->where = lex_find_keyword(w->sql, after, end, "where");
    c->ret = lex_find_keyword(w->sql, after, end, "returning");
    bool has_from = rw_get(body, strcmp(from_kw, "using") == 0 ? "usingClause" : "fromClause");
    bool ok = c->verb < end && (!set_kw || c->set < end) && (c->from < end) == has_from &&
              (c->where < end) == (rw_get(body, "whereClause") != NULL) &&
              (c->ret < end) == (rw_get(body, "returningList") != NULL) &&
              (c->from == end || c->where == end || c->from < c->where) &&
              (c->where == end || c->ret == end || c->where < c->ret) &&
              (c->from == end || c->ret == end || c->from < c->ret);
    if (!ok)
        refuse(w, "this form of the statement");
    return ok;
}

static size_t next_clause(const clauses_t *c, size_t pos)
{
    size_t best = c->end;
    size_t cand[] = {c->from, c->where, c->ret};
    for (int i = 0; i < 3; i++)
        if (cand[i] > pos && cand[i] < best)
            best = cand[i];
    return best;
}

static void emit_range(walker_t *w, FILE *f, size_t from, size_t to)
{
    char *text = rw_splice_range(w, from, to);
    if (text)
        fputs(text, f);
    else
        w->failed = true;
    free(text);
}

static void emit_tail(walker_t *w, FILE *f, json_object *body, const target_t *tg,
                      const clauses_t *c, const char *from_kw, conflict_t mode, recheck_t *rc)
{
    bool joined = c->from < c->end;
    if (joined) {
        fputs(", ", f);
        emit_range(w, f, c->from + strlen(from_kw), next_clause(c, c->from));
    }
    char *where = NULL;
    if (c->where < c->end) {
        if (lex_find_keyword(w->sql, c->where, next_clause(c, c->where), "current") <
            next_clause(c, c->where)) {
            refuse(w, "WHERE CURRENT OF");
            return;
        }
        where = rw_splice_range(w, c->where + 5, next_clause(c, c->where));
        if (!where) {
            w->failed = true;
            return;
        }
        fprintf(f, " WHERE %s", where);
    }
    /* with FROM/USING the SET and WHERE may name the other items, which the
     * conflict clause cannot see: take the computed row, skip tombstones */
    recheck_t none = {0};
    if (rc) {
        rc->where = joined ? NULL : where;
        if (joined)
            rc->exprs = NULL;
    }
    conflict_tail(f, tg, mode, rc ? rc : &none);
    free(where);
    if (c->ret < c->end) {
        char *r = returning_text(w, rw_get(body, "returningList"), tg->t, c->ret, c->end);
        if (!r) {
            w->failed = true;
            return;
        }
        fputc(' ', f);
        fputs(r, f);
        free(r);
    }
}

static void distinct_on(FILE *f, const target_t *tg, bool joined)
{
    if (!joined)
        return; /* without FROM/USING each row appears once */
    fputs("DISTINCT ON (", f);
    ident_list(f, tg->t, tg->alias, COLS_KEY);
    fputs(") ", f);
}

/* The item assigning column col (the last one wins), or -1. */
static int item_for(const int *col_of, int nt, int col)
{
    int item = -1;
    for (int i = 0; i < nt; i++)
        if (col_of[i] == col)
            item = i;
    return item;
}

/* Drop the edits recorded inside [from, to) once its text has been taken:
 * the walker visits the source of a multiple-column assignment once per
 * target column, so the edits inside it come in copies. */
static void drop_edits(walker_t *w, size_t from, size_t to)
{
    int kept = 0;
    for (int i = 0; i < w->nedits; i++) {
        edit_t *e = &w->edits[i];
        if (e->start >= from && e->end <= to) {
            free(e->text);
            continue;
        }
        w->edits[kept++] = *e;
    }
    w->nedits = kept;
}

/* End of a SET target written at loc: its name and its subscripts. */
static size_t target_end(const walker_t *w, size_t loc)
{
    size_t p = lex_name_end(w->sql, loc);
    if (p == loc)
        return loc;
    for (;;) {
        size_t open = lex_skip_blank(w->sql, p);
        size_t close = lex_bracket_end(w->sql, open);
        if (close == open)
            return p;
        p = close;
    }
}

/* The value of a one-dimensional array `old` after `old[sub] = val`, as
 * PostgreSQL's array assignment computes it: a NULL or empty array becomes
 * [sub:sub]={val}; a subscript outside the bounds extends the array and
 * fills the gap with NULLs; the lower bound is kept (or moves down to sub).
 * PostgreSQL does this only in the target list of a write, and a row of
 * main is inserted into the delta, not updated there, so it is spelled out:
 * the first element built with array_fill (which sets the lower bound), the
 * others appended. array_fill also raises PostgreSQL's errors: a NULL
 * subscript gives a NULL lower bound (22004), a multidimensional array two
 * lower bounds for one dimension (2202E "wrong number of array subscripts").
 * old, sub and val are evaluated once. malloc'd; NULL if out of memory. */
static char *array_assign_sql(const char *old, const char *sub, const char *val, const char *atype)
{
    char *etype = strndup(atype, strlen(atype) - 2); /* "integer[]" -> "integer" */
    char *text = NULL;
    if (etype &&
        asprintf(
            &text,
            "(SELECT array_cat(array_fill(CASE WHEN _epoch_l = _epoch_i THEN _epoch_v ELSE "
            "_epoch_a[_epoch_l] END, ARRAY[1], CASE WHEN array_ndims(_epoch_a) > 1 THEN "
            "ARRAY[_epoch_l, _epoch_l] ELSE ARRAY[_epoch_l] END), ARRAY(SELECT CASE WHEN "
            "_epoch_g = _epoch_i THEN _epoch_v ELSE _epoch_a[_epoch_g] END FROM "
            "generate_series(_epoch_l + 1, _epoch_u) AS _epoch_g ORDER BY _epoch_g)) FROM "
            "(SELECT _epoch_a, _epoch_i, _epoch_v, CASE WHEN _epoch_i IS NOT NULL THEN "
            "least(array_lower(_epoch_a, 1), _epoch_i) END AS _epoch_l, "
            "greatest(array_upper(_epoch_a, 1), _epoch_i) AS _epoch_u FROM (SELECT (%s)::%s, "
            "(%s)::integer, (%s)::%s) AS _epoch_s (_epoch_a, _epoch_i, _epoch_v)) AS _epoch_s)",
            old, atype, sub, val, etype) < 0)
        text = NULL;
    free(etype);
    return text;
}

/* The new value of column col for the assignment `col[sub] = value` of
 * ResTarget rt (prior: the column's value after earlier subscripted
 * assignments in the same SET, or NULL). NULL after refusing. */
static char *subscript_assignment(walker_t *w, const target_t *tg, json_object *rt, int col,
                                  const char *prior, const char *value, bool is_default)
{
    const catalog_table_t *t = tg->t;
    json_object *ind = rw_get(rt, "indirection");
    int n = (int)json_object_array_length(ind);
    for (int i = 0; i < n; i++)
        if (!rw_get(json_object_array_get_idx(ind, i), "A_Indices")) {
            refuse(w, "assignment to a field of a composite column (SET c.f = …)");
            return NULL;
        }
    if (is_default) {
        rw_fail(w, "0A000", NULL, "cannot set an array element to DEFAULT");
        return NULL;
    }
    json_object *idx = rw_get(json_object_array_get_idx(ind, 0), "A_Indices");
    json_object *slice = rw_get(idx, "is_slice");
    if (n != 1 || (slice && json_object_get_boolean(slice)) || !rw_get(idx, "uidx")) {
        refuse(w, "assignment to an array slice or to an element of a multidimensional array "
                  "(SET a[i:j] = …, SET a[i][j] = …)");
        return NULL;
    }
    const char *type = t->types ? t->types[col] : NULL;
    size_t tl = type ? strlen(type) : 0;
    if (tl < 3 || strcmp(type + tl - 2, "[]") != 0) {
        rw_fail(w, "0A000", "Assign the whole column instead.",
                "subscripted assignment to column \"%s\" of type %s is not supported on branch "
                "\"%s\" yet",
                t->cols[col], type ? type : "unknown", rw_branch_name(w));
        return NULL;
    }
    int loc = rw_get_int(rt, "location", -1);
    size_t open = loc < 0 ? 0 : lex_skip_blank(w->sql, lex_name_end(w->sql, (size_t)loc));
    size_t close = loc < 0 ? 0 : lex_bracket_end(w->sql, open);
    if (close == open) {
        refuse(w, "this SET item");
        return NULL;
    }
    char *sub = rw_splice_range(w, open + 1, close - 1);
    char *old = NULL;
    if (prior) {
        old = strdup(prior);
    } else {
        size_t len = 0;
        FILE *f = open_memstream(&old, &len);
        if (f) {
            overlay_ident(f, tg->alias);
            fputc('.', f);
            overlay_ident(f, t->cols[col]);
            fclose(f);
        }
    }
    char *text = sub && old ? array_assign_sql(old, sub, value, type) : NULL;
    free(sub);
    free(old);
    if (!text)
        w->failed = true;
    return text;
}

/* What parse_set_list collects: one expression per assigned column. */
typedef struct set_list {
    char **exprs;
    int *col_of;
    bool partial[MAX_ITEMS]; /* the column's value comes from subscripted assignments */
    int n;
    int always; /* the first column (attnum order) of GENERATED ALWAYS (identity or
                   generated) assigned something other than DEFAULT, or -1 */
} set_list_t;

/* Record the assignment of ResTarget rt: value is its text (taken over), or
 * NULL with is_default for DEFAULT. Several subscripted assignments to one
 * column apply in order, as in PostgreSQL (`SET a[1] = x, a[2] = y`). */
static bool assign(walker_t *w, const target_t *tg, json_object *rt, char *value, bool is_default,
                   bool allow_key, set_list_t *o)
{
    const catalog_table_t *t = tg->t;
    const char *name = rw_get_str(rt, "name");
    json_object *ind = rw_get(rt, "indirection");
    int col = name ? column_index(t, name) : -1;
    char *expr = NULL;
    if (col < 0) {
        rw_fail(w, "42703", NULL, "column \"%s\" of relation \"%s\" does not exist",
                name ? name : "?", t->name);
        goto fail;
    }
    int prev = item_for(o->col_of, o->n, col);
    if (prev >= 0 && (!ind || !o->partial[prev])) {
        rw_fail(w, "42601", NULL, "multiple assignments to same column \"%s\"", name);
        goto fail;
    }
    bool always =
        (catalog_col_generated(t, col) || catalog_col_identity(t, col) == 'a') && !is_default;
    if (always) {
        /* PostgreSQL's rewriter refuses it once the whole list has been read
         * (parse_set_list); the item only holds the column's place */
        if (o->always < 0 || col < o->always)
            o->always = col;
    } else if (!allow_key && t->is_pk[col]) {
        refuse(w, "ON CONFLICT DO UPDATE of a primary key column");
        goto fail;
    }
    if (always) {
        expr = strdup("NULL");
    } else if (ind) {
        expr = subscript_assignment(w, tg, rt, col, prev >= 0 ? o->exprs[prev] : NULL, value,
                                    is_default);
        if (!expr)
            goto fail;
    } else if (is_default) {
        const char *d = t->defaults ? t->defaults[col] : NULL;
        expr = strdup(d ? d : "NULL");
    } else {
        expr = value;
        value = NULL;
    }
    if (!expr) {
        w->failed = true;
        goto fail;
    }
    free(value);
    if (prev >= 0) {
        free(o->exprs[prev]);
        o->exprs[prev] = expr;
    } else {
        o->exprs[o->n] = expr;
        o->col_of[o->n] = col;
        o->partial[o->n] = ind != NULL;
        o->n++;
    }
    return true;
fail:
    free(value);
    return false;
}

/* The values of a multiple-column assignment `(c1, …) = source` between
 * from and to, one per target column: vals[k] malloc'd, or NULL with
 * defaults[k] for DEFAULT. A row gives its items; a sub-SELECT gives, for
 * each column, a scalar sub-SELECT of that column of it (so more than one
 * row is 21000, as in PostgreSQL, and no row gives NULLs). */
static bool multi_values(walker_t *w, json_object *source, size_t from, size_t to, int width,
                         char **vals, bool *defaults)
{
    json_object *row = rw_get(source, "RowExpr");
    json_object *sub = rw_get(source, "SubLink");
    const char *kind = rw_get_str(sub, "subLinkType");
    if (row) {
        json_object *args = rw_get(row, "args");
        int nargs = args ? (int)json_object_array_length(args) : 0;
        if (nargs != width) {
            rw_fail(w, "42601", NULL, "number of columns does not match number of values");
            return false;
        }
        size_t open = lex_skip_blank(w->sql, from);
        if (strncasecmp(w->sql + open, "row", 3) == 0 &&
            !isalnum((unsigned char)w->sql[open + 3]) && w->sql[open + 3] != '_')
            open = lex_skip_blank(w->sql, open + 3);
        size_t close = lex_paren_end(w->sql, open);
        size_t commas[MAX_ITEMS];
        if (close == open || lex_skip_blank(w->sql, close) < to ||
            lex_find_char(w->sql, open + 1, close - 1, ',', commas, MAX_ITEMS) != nargs - 1) {
            refuse(w, "this SET item");
            return false;
        }
        size_t start = open + 1;
        for (int k = 0; k < nargs; k++) {
            size_t end = k < nargs - 1 ? commas[k] : close - 1;
            if (rw_get(json_object_array_get_idx(args, k), "SetToDefault")) {
                defaults[k] = true;
            } else if (!(vals[k] = rw_splice_range(w, start, end))) {
                w->failed = true;
                return false;
            }
            start = end + 1;
        }
        return true;
    }
    if (!kind || strcmp(kind, "EXPR_SUBLINK") != 0) {
        rw_fail(w, "42601", NULL,
                "source for a multiple-column UPDATE item must be a sub-SELECT or ROW() "
                "expression");
        return false;
    }
    json_object *tl = rw_get(rw_get(rw_get(sub, "subselect"), "SelectStmt"), "targetList");
    int ntl = tl ? (int)json_object_array_length(tl) : 0;
    bool star = false;
    for (int i = 0; i < ntl; i++) {
        json_object *fields =
            rw_get(rw_get(rw_get(rw_get(json_object_array_get_idx(tl, i), "ResTarget"), "val"),
                          "ColumnRef"),
                   "fields");
        size_t nf = fields ? json_object_array_length(fields) : 0;
        star |= nf && rw_get(json_object_array_get_idx(fields, nf - 1), "A_Star");
    }
    if (tl && !star && ntl != width) {
        rw_fail(w, "42601", NULL, "number of columns does not match number of values");
        return false;
    }
    for (int k = 0; k < width; k++) {
        char *select = rw_splice_range(w, from, to);
        char *names = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&names, &len);
        if (f) {
            for (int c = 0; c < width; c++)
                fprintf(f, "%s_epoch_c%d", c ? ", " : "", c + 1);
            fclose(f);
        }
        if (!select || !names ||
            asprintf(&vals[k], "(SELECT _epoch_m._epoch_c%d FROM %s AS _epoch_m (%s))", k + 1,
                     select, names) < 0)
            vals[k] = NULL;
        free(select);
        free(names);
        if (!vals[k]) {
            w->failed = true;
            return false;
        }
    }
    return true;
}

/* Clause [from, to) of a SET list, assigning targets first .. first+width-1
 * (width > 1 or a MultiAssignRef: `(c1, …) = source`). */
static bool set_clause(walker_t *w, const target_t *tg, json_object *targets, int first, int width,
                       size_t from, size_t to, bool allow_key, set_list_t *o)
{
    char *vals[MAX_ITEMS] = {0};
    bool defaults[MAX_ITEMS] = {0};
    json_object *rt0 = rw_get(json_object_array_get_idx(targets, first), "ResTarget");
    json_object *multi = rw_get(rw_get(rt0, "val"), "MultiAssignRef");
    bool ok = false;
    size_t eq;
    if (lex_find_char(w->sql, from, to, '=', &eq, 1) != 1) {
        refuse(w, "this SET item");
        return false;
    }
    if (!multi) {
        /* the first `=` after the target (`a[i] = x`, `c = a = b`) */
        int loc = rw_get_int(rt0, "location", -1);
        if (loc < 0 || lex_skip_blank(w->sql, target_end(w, (size_t)loc)) != eq) {
            refuse(w, "this SET item");
            return false;
        }
        if (rw_get(rw_get(rt0, "val"), "SetToDefault"))
            defaults[0] = true;
        else if (!(vals[0] = rw_splice_range(w, eq + 1, to))) {
            w->failed = true;
            return false;
        }
    } else {
        for (int k = 0; k < width; k++) {
            json_object *m = rw_get(
                rw_get(rw_get(json_object_array_get_idx(targets, first + k), "ResTarget"), "val"),
                "MultiAssignRef");
            if (!m || rw_get_int(m, "colno", 0) != k + 1 || rw_get_int(m, "ncolumns", 0) != width) {
                refuse(w, "this SET item");
                return false;
            }
        }
        if (!multi_values(w, rw_get(multi, "source"), eq + 1, to, width, vals, defaults))
            goto out;
    }
    ok = true;
    for (int k = 0; k < width && ok; k++) {
        ok = assign(w, tg, rw_get(json_object_array_get_idx(targets, first + k), "ResTarget"),
                    vals[k], defaults[k], allow_key, o);
        vals[k] = NULL; /* taken over */
    }
out:
    for (int k = 0; k < width; k++)
        free(vals[k]);
    return ok;
}

/* Number of targets clause i of a SET list assigns: ncolumns for `(c1, …) =
 * source` (one ResTarget per column), else 1. */
static int clause_width(json_object *targets, int i, int nt)
{
    json_object *m =
        rw_get(rw_get(rw_get(json_object_array_get_idx(targets, i), "ResTarget"), "val"),
               "MultiAssignRef");
    int width = m ? rw_get_int(m, "ncolumns", 1) : 1;
    return width < 1 ? 1 : width > nt - i ? nt - i : width;
}

/* SET items between from and to (`c = e`, `c[i] = e`, `(c1, …) = (e1, …)`,
 * `(c1, …) = (SELECT …)`, DEFAULT): the expression text of each assigned
 * column (reads inside rewritten) and the column. Returns the column count,
 * or -1 after refusing. */
static int parse_set_list(walker_t *w, json_object *targets, size_t from, size_t to,
                          const target_t *tg, char **exprs, int *col_of, bool allow_key)
{
    int nt = targets ? (int)json_object_array_length(targets) : 0;
    set_list_t o = {.exprs = exprs, .col_of = col_of, .always = -1};
    size_t commas[MAX_ITEMS];
    int ncomma = lex_find_char(w->sql, from, to, ',', commas, MAX_ITEMS);
    int nclauses = 0;
    for (int i = 0; i < nt && nt <= MAX_ITEMS; nclauses++)
        i += clause_width(targets, i, nt);
    if (nt == 0 || nt > MAX_ITEMS || ncomma != nclauses - 1) {
        refuse(w, "this SET list");
        return -1;
    }
    size_t item_start = from;
    for (int i = 0, c = 0; i < nt; c++) {
        size_t item_end = c < ncomma ? commas[c] : to;
        int width = clause_width(targets, i, nt);
        if (!set_clause(w, tg, targets, i, width, item_start, item_end, allow_key, &o))
            goto fail;
        drop_edits(w, item_start, item_end);
        i += width;
        item_start = item_end + 1;
    }
    if (o.always >= 0) {
        rw_fail(w, "428C9", NULL, "column \"%s\" can only be updated to DEFAULT",
                tg->t->cols[o.always]);
        rw_fail_detail(w,
                       catalog_col_generated(tg->t, o.always)
                           ? "Column \"%s\" is a generated column."
                           : "Column \"%s\" is an identity column defined as GENERATED ALWAYS.",
                       tg->t->cols[o.always]);
        goto fail;
    }
    /* generated columns (SET to DEFAULT) are left to the delta, which
     * computes them from the row's new values */
    int kept = 0;
    for (int i = 0; i < o.n; i++) {
        if (catalog_col_generated(tg->t, col_of[i])) {
            free(exprs[i]);
            exprs[i] = NULL;
            continue;
        }
        exprs[kept] = exprs[i];
        col_of[kept++] = col_of[i];
    }
    for (int i = kept; i < o.n; i++)
        exprs[i] = NULL;
    return kept;
fail:
    for (int i = 0; i < o.n; i++) {
        free(exprs[i]);
        exprs[i] = NULL;
    }
    return -1;
}

/* Column col after a SET: its assigned expression, or the row's own value.
 * typed: cast the expression to the column's type, for where no INSERT
 * column types it (a CTE's select list turns NULL, 'x' and $1 into text). */
static void assigned_value(FILE *f, const target_t *tg, char **exprs, const int *col_of, int nt,
                           int col, bool typed)
{
    int item = item_for(col_of, nt, col);
    if (item >= 0) {
        const char *type = typed && tg->t->types ? tg->t->types[col] : NULL;
        if (type)
            fprintf(f, "(%s)::%s", exprs[item], type);
        else
            fprintf(f, "(%s)", exprs[item]);
        return;
    }
    overlay_ident(f, tg->alias);
    fputc('.', f);
    overlay_ident(f, tg->t->cols[col]);
}

static void with_prefix(FILE *f, char *prefix)
{
    size_t pl = strlen(prefix);
    while (pl && (prefix[pl - 1] == ' ' || prefix[pl - 1] == '\n' || prefix[pl - 1] == '\t'))
        prefix[--pl] = '\0';
    if (pl)
        fprintf(f, "%s, ", prefix);
    else
        fputs("WITH ", f);
}

/* pk columns of t as "q.col" joined by sep */
static void key_cols(FILE *f, const catalog_table_t *t, const char *q, const char *prefix)
{
    bool first = true;
    for (int k = 0; k < t->ncols; k++) {
        if (!t->is_pk[k])
            continue;
        if (!first)
            fputs(", ", f);
        first = false;
        fprintf(f, "%s.", q);
        if (prefix) {
            char name[300];
            snprintf(name, sizeof name, "%s%d", prefix, k);
            overlay_ident(f, name);
        } else {
            overlay_ident(f, t->cols[k]);
        }
    }
}

/* ---- RETURNING of UPDATE … FROM / DELETE … USING naming the other items
 *
 * The write is an INSERT into the delta, whose RETURNING sees only the
 * delta's row, and it must stay the statement (its command tag is fixed
 * up). When a RETURNING item names another FROM/USING item, the rows to
 * write are first collected in a materialized CTE that also carries each
 * item's whole row (`"s" AS "_epoch_f1"`), and that RETURNING item becomes
 * a scalar sub-SELECT of its own text over the CTE row of the key just
 * written, where each item is back under its name:
 *   (SELECT s.m FROM _epoch_src AS _epoch_s,
 *        LATERAL (SELECT (_epoch_s."_epoch_f1").*) AS "s"
 *    WHERE _epoch_s.id = t.id LIMIT 1)
 * The item's column name is the sub-SELECT's, which PostgreSQL names after
 * that same text; the target's columns inside it are the row written. The
 * look-up scans the CTE: the cost grows with rows × rows, so it is used only
 * for items that need it. */

#define MAX_FROM 32

typedef struct from_scope {
    const char *names[MAX_FROM]; /* the relation names FROM/USING makes visible */
    json_object *nodes[MAX_FROM];
    int n;
    bool opaque; /* an item whose names are not known (refused if needed) */
} from_scope_t;

static void collect_from(json_object *item, from_scope_t *fs)
{
    const char *name = NULL;
    json_object *node;
    if ((node = rw_get(item, "RangeVar"))) {
        name = rw_get_str(rw_get(node, "alias"), "aliasname");
        if (!name)
            name = rw_get_str(node, "relname");
    } else if ((node = rw_get(item, "RangeSubselect"))) {
        name = rw_get_str(rw_get(node, "alias"), "aliasname");
    } else if ((node = rw_get(item, "RangeTableSample"))) {
        json_object *rv = rw_get(rw_get(node, "relation"), "RangeVar");
        name = rw_get_str(rw_get(rv, "alias"), "aliasname");
        if (!name)
            name = rw_get_str(rv, "relname");
    } else if ((node = rw_get(item, "JoinExpr"))) {
        name = rw_get_str(rw_get(node, "alias"), "aliasname");
        if (!name) {
            collect_from(rw_get(node, "larg"), fs);
            collect_from(rw_get(node, "rarg"), fs);
            return;
        }
    }
    /* anything else (a function, whose alias also names its column) is opaque */
    if (!name || fs->n >= MAX_FROM) {
        fs->opaque = true;
        return;
    }
    /* the whole row is carried as `"name"`, which would be a column of that
     * name if the item or the target had one */
    json_object *colnames = rw_get(rw_get(node, "alias"), "colnames");
    size_t nc = colnames ? json_object_array_length(colnames) : 0;
    for (size_t i = 0; i < nc; i++) {
        const char *c =
            rw_get_str(rw_get(json_object_array_get_idx(colnames, i), "String"), "sval");
        fs->opaque |= c && strcmp(c, name) == 0;
    }
    fs->names[fs->n] = name;
    fs->nodes[fs->n++] = item;
}

/* The name a column reference is qualified with (NULL if bare). */
static const char *cref_qualifier(json_object *fields, size_t nf)
{
    if (nf < 2)
        return NULL;
    return rw_get_str(rw_get(json_object_array_get_idx(fields, nf - 2), "String"), "sval");
}

/* Does the expression name something other than the target's row: a
 * column qualified with another name, a bare name that is not one of the
 * target's columns, or a whole row other than the target's? (Names inside
 * sub-SELECTs count too: a needless look-up only costs time.) */
static bool names_other_items(json_object *node, const target_t *tg)
{
    if (!node)
        return false;
    if (json_object_is_type(node, json_type_array)) {
        size_t n = json_object_array_length(node);
        for (size_t i = 0; i < n; i++)
            if (names_other_items(json_object_array_get_idx(node, i), tg))
                return true;
        return false;
    }
    if (!json_object_is_type(node, json_type_object))
        return false;
    json_object *cref = rw_get(node, "ColumnRef");
    if (cref) {
        json_object *fields = rw_get(cref, "fields");
        size_t nf = fields ? json_object_array_length(fields) : 0;
        const char *last =
            nf ? rw_get_str(rw_get(json_object_array_get_idx(fields, nf - 1), "String"), "sval")
               : NULL;
        const char *qual = cref_qualifier(fields, nf);
        if (qual)
            return strcmp(qual, tg->alias) != 0;
        if (!last)
            return false; /* a bare `*`: expanded by the caller */
        return strcmp(last, tg->alias) != 0 && column_index(tg->t, last) < 0;
    }
    json_object_object_foreach(node, key, val)
    {
        (void)key;
        if (names_other_items(val, tg))
            return true;
    }
    return false;
}

/* The column names of FROM item i, when they can be known here: a tracked
 * table (not shadowed by a CTE), or a column alias list. false otherwise. */
static bool from_item_columns(walker_t *w, json_object *withclause, const from_scope_t *fs, int i,
                              const char **names, int *n)
{
    json_object *item = fs->nodes[i];
    json_object *rv = rw_get(item, "RangeVar");
    json_object *alias = NULL;
    if (rv)
        alias = rw_get(rv, "alias");
    else if (rw_get(item, "RangeSubselect"))
        alias = rw_get(rw_get(item, "RangeSubselect"), "alias");
    else if (rw_get(item, "RangeFunction"))
        alias = rw_get(rw_get(item, "RangeFunction"), "alias");
    json_object *colnames = rw_get(alias, "colnames");
    int nc = colnames ? (int)json_object_array_length(colnames) : 0;
    const catalog_table_t *t = NULL;
    if (rv) {
        const char *schema = rw_get_str(rv, "schemaname");
        const char *relname = rw_get_str(rv, "relname");
        bool cte = false;
        for (int k = 0; !schema && relname && k < w->nscope; k++)
            cte |= strcmp(w->scope[k], relname) == 0;
        json_object *ctes = rw_get(withclause, "ctes");
        size_t nctes = ctes ? json_object_array_length(ctes) : 0;
        for (size_t k = 0; !schema && relname && k < nctes; k++) {
            const char *cname = rw_get_str(
                rw_get(json_object_array_get_idx(ctes, k), "CommonTableExpr"), "ctename");
            cte |= cname && strcmp(cname, relname) == 0;
        }
        if (!cte && relname)
            t = catalog_find(w->s->cat, schema, relname);
    } else if (nc > 0 && rw_get(item, "RangeSubselect")) {
        /* VALUES … AS k(a, b): the list names every column */
        json_object *sel = rw_get(rw_get(rw_get(item, "RangeSubselect"), "subquery"), "SelectStmt");
        json_object *values = rw_get(sel, "valuesLists");
        json_object *row0 =
            values ? rw_get(rw_get(json_object_array_get_idx(values, 0), "List"), "items") : NULL;
        if (!row0 || (int)json_object_array_length(row0) != nc)
            return false;
    } else {
        return false;
    }
    if (rv && !t)
        return false;
    int total = t ? t->ncols : nc;
    if (nc > total || total > MAX_ITEMS)
        return false;
    for (int k = 0; k < total; k++)
        names[k] =
            k < nc ? rw_get_str(rw_get(json_object_array_get_idx(colnames, k), "String"), "sval")
                   : t->cols[k];
    *n = total;
    return true;
}

/* A look-up of one RETURNING item: its text evaluated over the CTE row of
 * the key the delta row has. */
static void lookup_item(FILE *f, const target_t *tg, const from_scope_t *fs, const char *src,
                        const char *text)
{
    fprintf(f, "(SELECT %s FROM %s AS _epoch_s", text, src);
    for (int i = 0; i < fs->n; i++) {
        fprintf(f, ", LATERAL (SELECT (_epoch_s.\"_epoch_f%d\").*) AS ", i + 1);
        overlay_ident(f, fs->names[i]);
    }
    fputs(" WHERE ", f);
    char *alias = quoted_ident(tg->alias);
    overlay_key_match(f, tg->t, "_epoch_s", alias ? alias : "\"?\"");
    free(alias);
    fputs(" LIMIT 1)", f);
}

/* The FROM/USING items of a joined UPDATE/DELETE when its RETURNING needs
 * them (fs filled), or false: no RETURNING, no item naming another FROM
 * item, or a refusal (w->failed). */
static bool returning_needs_from(walker_t *w, json_object *body, const target_t *tg,
                                 const char *from_key, from_scope_t *fs)
{
    json_object *list = rw_get(body, "returningList");
    json_object *from = rw_get(body, from_key);
    size_t n = list ? json_object_array_length(list) : 0;
    if (!n || !from)
        return false;
    bool needed = false;
    for (size_t i = 0; i < n && !needed; i++) {
        json_object *val = rw_get(rw_get(json_object_array_get_idx(list, i), "ResTarget"), "val");
        json_object *fields = rw_get(rw_get(val, "ColumnRef"), "fields");
        size_t nf = fields ? json_object_array_length(fields) : 0;
        /* `*` is every item's columns */
        needed = names_other_items(val, tg) ||
                 (nf == 1 && rw_get(json_object_array_get_idx(fields, 0), "A_Star"));
    }
    if (!needed)
        return false;
    memset(fs, 0, sizeof *fs);
    size_t nfrom = json_object_array_length(from);
    for (size_t i = 0; i < nfrom; i++)
        collect_from(json_object_array_get_idx(from, i), fs);
    for (int i = 0; i < fs->n; i++) {
        fs->opaque |= column_index(tg->t, fs->names[i]) >= 0;
        /* a tracked table of that name read without an alias (or a CTE of
         * that name: then the check is only needless) */
        json_object *rv = rw_get(fs->nodes[i], "RangeVar");
        const catalog_table_t *it =
            rv && !rw_get(rv, "alias")
                ? catalog_find(w->s->cat, rw_get_str(rv, "schemaname"), rw_get_str(rv, "relname"))
                : NULL;
        fs->opaque |= it && column_index(it, fs->names[i]) >= 0;
    }
    if (fs->opaque) {
        rw_fail(w, "0A000",
                "Give every FROM/USING item an alias that is not a column name (a join too), "
                "or write it on main.",
                "RETURNING that names the FROM/USING items of this statement is not supported "
                "on branch \"%s\" yet: an item is a function, has no alias, or its alias is "
                "also a column name",
                rw_branch_name(w));
        return false;
    }
    return true;
}

/* Whole rows of the FROM items, as columns of the CTE: `, "s" AS "_epoch_f1"`. */
static void carry_from_rows(FILE *f, const from_scope_t *fs)
{
    for (int i = 0; i < fs->n; i++) {
        fputs(", ", f);
        overlay_ident(f, fs->names[i]);
        fprintf(f, " AS \"_epoch_f%d\"", i + 1);
    }
}

/* ` RETURNING …` of a joined write whose rows are in CTE src: items that
 * name the other FROM items become look-ups; `*` and `x.*` are spelled out
 * (the target's columns, then every item's, as PostgreSQL expands them). */
static void joined_returning(walker_t *w, FILE *f, json_object *body, const target_t *tg,
                             const from_scope_t *fs, const char *src, size_t ret, size_t end)
{
    json_object *list = rw_get(body, "returningList");
    int n = (int)json_object_array_length(list);
    size_t commas[MAX_ITEMS];
    if (n > MAX_ITEMS || lex_find_char(w->sql, ret + 9, end, ',', commas, MAX_ITEMS) != n - 1) {
        refuse(w, "this RETURNING list");
        return;
    }
    fputs(" RETURNING ", f);
    size_t from = ret + 9;
    for (int i = 0; i < n; i++) {
        size_t to = i < n - 1 ? commas[i] : end;
        json_object *rt = rw_get(json_object_array_get_idx(list, i), "ResTarget");
        json_object *val = rw_get(rt, "val");
        json_object *fields = rw_get(rw_get(val, "ColumnRef"), "fields");
        size_t nf = fields ? json_object_array_length(fields) : 0;
        bool star = nf && rw_get(json_object_array_get_idx(fields, nf - 1), "A_Star");
        const char *qual = star ? cref_qualifier(fields, nf) : NULL;
        if (i)
            fputs(", ", f);
        if (star) {
            drop_edits(w, from, to);
            bool first = true;
            if (!qual || strcmp(qual, tg->alias) == 0) {
                ident_list(f, tg->t, tg->alias, COLS_ALL);
                first = false;
            }
            for (int k = 0; k < fs->n; k++) {
                if (qual && strcmp(qual, fs->names[k]) != 0)
                    continue;
                const char *names[MAX_ITEMS];
                int nc = 0;
                if (!from_item_columns(w, rw_get(body, "withClause"), fs, k, names, &nc)) {
                    rw_fail(w, "0A000",
                            "Name the columns you need instead of \"*\", or give the item a "
                            "column alias list.",
                            "RETURNING * of the columns of \"%s\" is not supported on branch "
                            "\"%s\" yet",
                            fs->names[k], rw_branch_name(w));
                    return;
                }
                for (int c = 0; c < nc; c++) {
                    char *text = NULL;
                    size_t len = 0;
                    FILE *cf = open_memstream(&text, &len);
                    if (!cf) {
                        w->failed = true;
                        return;
                    }
                    overlay_ident(cf, fs->names[k]);
                    fputc('.', cf);
                    overlay_ident(cf, names[c]);
                    fclose(cf);
                    if (!first)
                        fputs(", ", f);
                    first = false;
                    lookup_item(f, tg, fs, src, text);
                    free(text);
                }
            }
            if (first) { /* x.* of a name that is neither */
                rw_fail(w, "42P01", NULL, "missing FROM-clause entry for table \"%s\"",
                        qual ? qual : "?");
                return;
            }
        } else {
            char *text = rw_splice_range(w, from, to);
            if (!text) {
                w->failed = true;
                return;
            }
            if (names_other_items(val, tg))
                lookup_item(f, tg, fs, src, text);
            else
                fputs(text, f);
            free(text);
        }
        from = to + 1;
    }
}

/* UPDATE … FROM / DELETE … USING whose RETURNING names the other items: the
 * rows to write (DISTINCT ON the key, as without RETURNING) in _epoch_src,
 * with the items' whole rows, then the write from it. */
static void joined_write(walker_t *w, FILE *f, json_object *body, const target_t *tg,
                         const clauses_t *c, const char *from_kw, char **exprs, const int *col_of,
                         int nt, const from_scope_t *fs, char *prefix)
{
    const catalog_table_t *t = tg->t;
    bool del = exprs == NULL;
    with_prefix(f, prefix);
    fputs("_epoch_src AS MATERIALIZED (SELECT ", f);
    distinct_on(f, tg, true);
    bool first = true;
    for (int col = 0; col < t->ncols; col++) {
        if (!col_in(t, col, COLS_WRITTEN))
            continue;
        if (!first)
            fputs(", ", f);
        first = false;
        if (del) {
            overlay_ident(f, tg->alias);
            fputc('.', f);
            overlay_ident(f, t->cols[col]);
        } else {
            /* typed: a CTE's select list would make 'x' and $1 text */
            assigned_value(f, tg, exprs, col_of, nt, col, true);
        }
        fputs(" AS ", f);
        overlay_ident(f, t->cols[col]);
    }
    carry_from_rows(f, fs);
    fprintf(f, " FROM %s, ", tg->overlay);
    emit_range(w, f, c->from + strlen(from_kw), next_clause(c, c->from));
    if (c->where < c->end) {
        if (lex_find_keyword(w->sql, c->where, next_clause(c, c->where), "current") <
            next_clause(c, c->where)) {
            refuse(w, "WHERE CURRENT OF");
            return;
        }
        fputs(" WHERE ", f);
        emit_range(w, f, c->where + 5, next_clause(c, c->where));
    }
    fputs(") ", f);
    upsert_head(f, tg, del);
    fputs(tg->bid, f);
    for (int col = 0; col < t->ncols; col++) {
        if (!col_in(t, col, COLS_WRITTEN))
            continue;
        fputs(", _epoch_src.", f);
        overlay_ident(f, t->cols[col]);
    }
    fputs(del ? ", true FROM _epoch_src" : " FROM _epoch_src", f);
    /* the computed row is taken as it is (its SET and WHERE may name the
     * other items, which the conflict clause cannot see); tombstones stay */
    recheck_t none = {0};
    conflict_tail(f, tg, del ? CONFLICT_DELETE : CONFLICT_UPDATE, &none);
    joined_returning(w, f, body, tg, fs, "_epoch_src", c->ret, c->end);
}

/* UPDATE that changes primary key values: the old keys become tombstones,
 * the new rows are upserted, and a new key that another row holds on the
 * branch is a unique violation (even if this statement moves that row). */
static void update_keys(walker_t *w, json_object *body, const target_t *tg, const clauses_t *c,
                        char **exprs, const int *col_of, int nt, const from_scope_t *fs,
                        char *prefix, FILE *f)
{
    const catalog_table_t *t = tg->t;
    with_prefix(f, prefix);
    fputs("_epoch_rows AS MATERIALIZED (SELECT ", f);
    distinct_on(f, tg, c->from < c->end);
    for (int col = 0; col < t->ncols; col++) {
        char old[300];
        snprintf(old, sizeof old, "_epoch_o%d", col);
        overlay_ident(f, tg->alias);
        fputc('.', f);
        overlay_ident(f, t->cols[col]);
        fputs(" AS ", f);
        overlay_ident(f, old);
        fputs(", ", f);
        assigned_value(f, tg, exprs, col_of, nt, col, true);
        fputs(" AS ", f);
        overlay_ident(f, t->cols[col]);
        fputs(col + 1 < t->ncols ? ", " : "", f);
    }
    if (fs)
        carry_from_rows(f, fs);
    fprintf(f, " FROM %s", tg->overlay);
    if (c->from < c->end) {
        fputs(", ", f);
        emit_range(w, f, c->from + 4, next_clause(c, c->from));
    }
    if (c->where < c->end) {
        fputs(" WHERE ", f);
        emit_range(w, f, c->where + 5, next_clause(c, c->where));
    }
    /* tombstones for old keys no row moves into */
    fprintf(f, "), _epoch_gone AS (INSERT INTO epoch.\"d_%d\" (\"_epoch_branch\", ", t->id);
    ident_list(f, t, NULL, COLS_WRITTEN);
    fprintf(f, ", \"_epoch_deleted\") SELECT %s", tg->bid);
    for (int col = 0; col < t->ncols; col++) {
        if (!col_in(t, col, COLS_WRITTEN))
            continue;
        char old[300];
        snprintf(old, sizeof old, "_epoch_o%d", col);
        fputs(", _r.", f);
        overlay_ident(f, old);
    }
    fputs(", true FROM _epoch_rows _r WHERE (", f);
    key_cols(f, t, "_r", "_epoch_o");
    fputs(") NOT IN (SELECT ", f);
    key_cols(f, t, "_s", NULL);
    fputs(" FROM _epoch_rows _s) ON CONFLICT (\"_epoch_branch\", ", f);
    ident_list(f, t, NULL, COLS_KEY);
    fputs(") DO UPDATE SET \"_epoch_deleted\" = true)", f);
    /* the new rows, one per new key (a key twice is reported below) */
    fprintf(f, " INSERT INTO epoch.\"d_%d\" AS ", t->id);
    overlay_ident(f, tg->alias);
    fputs(" (\"_epoch_branch\", ", f);
    ident_list(f, t, NULL, COLS_WRITTEN);
    fputs(") SELECT DISTINCT ON (", f);
    key_cols(f, t, "_r", NULL);
    fprintf(f, ") %s, ", tg->bid);
    ident_list(f, t, "_r", COLS_WRITTEN);
    fputs(" FROM _epoch_rows _r", f);
    /* then a new key that another row holds when the statement starts, or
     * that two rows move to: 23505, as PostgreSQL's non-deferrable key
     * checks each row at once (a key swap fails there too), after the new
     * rows' NOT NULL and CHECK constraints, as there */
    fputs(" UNION ALL SELECT NULL, ", f); /* the branch: this arm returns no row */
    ident_list(f, t, "_n", COLS_WRITTEN);
    char *src = NULL, *cond = NULL;
    size_t srclen = 0, condlen = 0;
    FILE *sf = open_memstream(&src, &srclen);
    if (sf) {
        fputs("(SELECT _w.*, count(*) OVER (PARTITION BY ", sf);
        key_cols(sf, t, "_w", NULL);
        fputs(") AS \"_epoch_n\" FROM _epoch_rows _w)", sf);
        fclose(sf);
    }
    FILE *cf = open_memstream(&cond, &condlen);
    if (cf) {
        fputs("_n.\"_epoch_n\" > 1 OR ((", cf);
        key_cols(cf, t, "_n", NULL);
        fputs(") IS DISTINCT FROM (", cf);
        key_cols(cf, t, "_n", "_epoch_o");
        fputs(") AND EXISTS (SELECT 1 FROM ", cf);
        char *probe =
            rw_overlay_text(t, NULL, w->s->cat->branch_id, w->s->cat->base_seq, "_x", NULL, 0);
        fputs(probe ? probe : "", cf);
        free(probe);
        fputs(" WHERE (", cf);
        key_cols(cf, t, "_x", NULL);
        fputs(") = (", cf);
        key_cols(cf, t, "_n", NULL);
        fputs(")))", cf);
        fclose(cf);
    }
    if (!src || !cond) {
        free(src);
        free(cond);
        w->failed = true;
        return;
    }
    deferred_duplicate_check(f, t, src, cond);
    free(src);
    free(cond);
    conflict_tail(f, tg, CONFLICT_REPLACE, NULL);
    if (fs) {
        joined_returning(w, f, body, tg, fs, "_epoch_rows", c->ret, c->end);
    } else if (c->ret < c->end) {
        char *r = returning_text(w, rw_get(body, "returningList"), t, c->ret, c->end);
        if (!r) {
            w->failed = true;
            return;
        }
        fputc(' ', f);
        fputs(r, f);
        free(r);
    }
}

static void update_statement(walker_t *w, json_object *body, size_t start, size_t end,
                             const target_t *tg, char *prefix, FILE *f)
{
    clauses_t c;
    if (!find_clauses(w, body, "update", "set", "from", start, end, &c))
        return;
    json_object *targets = rw_get(body, "targetList");
    char *exprs[MAX_ITEMS] = {0};
    int col_of[MAX_ITEMS];
    int nt = parse_set_list(w, targets, c.set + 3, next_clause(&c, c.set), tg, exprs, col_of, true);
    bool key_change = false;
    for (int i = 0; i < nt; i++)
        key_change |= tg->t->is_pk[col_of[i]];
    /* nt = 0: only generated columns were SET (to DEFAULT): the rows are
     * written unchanged and the delta computes those columns again */
    from_scope_t fs;
    bool with_from = nt >= 0 && !w->failed && c.from < c.end &&
                     returning_needs_from(w, body, tg, "fromClause", &fs);
    if (nt >= 0 && !w->failed && key_change) {
        update_keys(w, body, tg, &c, exprs, col_of, nt, with_from ? &fs : NULL, prefix, f);
    } else if (with_from) {
        joined_write(w, f, body, tg, &c, "from", exprs, col_of, nt, &fs, prefix);
    } else if (nt >= 0 && !w->failed) {
        fputs(prefix, f);
        upsert_head(f, tg, false);
        distinct_on(f, tg, c.from < c.end);
        fputs(tg->bid, f);
        for (int col = 0; col < tg->t->ncols; col++) {
            if (!col_in(tg->t, col, COLS_WRITTEN))
                continue;
            fputs(", ", f);
            assigned_value(f, tg, exprs, col_of, nt, col, false);
        }
        fprintf(f, " FROM %s", tg->overlay);
        recheck_t rc = {exprs, col_of, nt, NULL};
        emit_tail(w, f, body, tg, &c, "from", CONFLICT_UPDATE, &rc);
    }
    for (int i = 0; i < nt; i++)
        free(exprs[i]);
}

static void delete_statement(walker_t *w, json_object *body, size_t start, size_t end,
                             const target_t *tg, char *prefix, FILE *f)
{
    clauses_t c;
    if (!find_clauses(w, body, "delete", NULL, "using", start, end, &c))
        return;
    from_scope_t fs;
    if (c.from < c.end && returning_needs_from(w, body, tg, "usingClause", &fs)) {
        joined_write(w, f, body, tg, &c, "using", NULL, NULL, 0, &fs, prefix);
        return;
    }
    if (w->failed)
        return;
    fputs(prefix, f);
    /* DELETE FROM t: the FROM after DELETE is not a clause of ours */
    upsert_head(f, tg, true);
    distinct_on(f, tg, c.from < c.end);
    fputs(tg->bid, f);
    fputs(", ", f);
    ident_list(f, tg->t, tg->alias, COLS_WRITTEN);
    fprintf(f, ", true FROM %s", tg->overlay);
    recheck_t rc = {0};
    emit_tail(w, f, body, tg, &c, "using", CONFLICT_DELETE, &rc);
}

/* Number of columns the source of an INSERT without a column list fills. */
static int source_width(json_object *select, int ncols)
{
    json_object *sel = rw_get(select, "SelectStmt");
    json_object *values = rw_get(sel, "valuesLists");
    if (values && json_object_array_length(values) > 0) {
        json_object *items = rw_get(rw_get(json_object_array_get_idx(values, 0), "List"), "items");
        return items ? (int)json_object_array_length(items) : -1;
    }
    json_object *tl = rw_get(sel, "targetList");
    if (!tl)
        return -1;
    int n = (int)json_object_array_length(tl);
    for (int i = 0; i < n; i++) {
        json_object *fields =
            rw_get(rw_get(rw_get(rw_get(json_object_array_get_idx(tl, i), "ResTarget"), "val"),
                          "ColumnRef"),
                   "fields");
        size_t nf = fields ? json_object_array_length(fields) : 0;
        if (nf && rw_get(json_object_array_get_idx(fields, nf - 1), "A_Star"))
            return ncols; /* SELECT *: assume it fills the table */
    }
    return n;
}

/* ON CONFLICT must name the primary key (columns or constraint): other
 * unique constraints are not enforced on branches. */
static bool conflict_on_key(walker_t *w, json_object *conflict, const catalog_table_t *t)
{
    json_object *infer = rw_get(conflict, "infer");
    const char *conname = rw_get_str(infer, "conname");
    if (conname && t->pk_name && strcmp(conname, t->pk_name) == 0)
        return true;
    json_object *elems = rw_get(infer, "indexElems");
    int n = elems ? (int)json_object_array_length(elems) : 0, npk = 0;
    for (int k = 0; k < t->ncols; k++)
        npk += t->is_pk[k];
    bool ok = n == npk && !rw_get(infer, "whereClause");
    for (int i = 0; i < n; i++) {
        const char *name =
            rw_get_str(rw_get(json_object_array_get_idx(elems, i), "IndexElem"), "name");
        int col = name ? column_index(t, name) : -1;
        if (name && col < 0) { /* as PostgreSQL reports it, before anything else */
            rw_fail(w, "42703", NULL, "column \"%s\" does not exist", name);
            return false;
        }
        ok = ok && col >= 0 && t->is_pk[col];
    }
    if (!ok)
        rw_fail(w, "0A000",
                "Name the primary key: ON CONFLICT (key columns). Other unique "
                "constraints are not enforced on branches.",
                "ON CONFLICT on branch \"%s\" must target the primary key of \"%s\"",
                rw_branch_name(w), t->name);
    return ok;
}

/* DEFAULT items of a VALUES list become the column's default expression
 * (NULL in a column that is not written: skip[j]). */
static bool defaults_in_values(walker_t *w, json_object *select, const catalog_table_t *t,
                               const int *idx, const bool *skip, int n)
{
    json_object *values = rw_get(rw_get(select, "SelectStmt"), "valuesLists");
    size_t rows = values ? json_object_array_length(values) : 0;
    for (size_t r = 0; r < rows; r++) {
        json_object *items = rw_get(rw_get(json_object_array_get_idx(values, r), "List"), "items");
        int m = items ? (int)json_object_array_length(items) : 0;
        for (int j = 0; j < m && j < n; j++) {
            json_object *def = rw_get(json_object_array_get_idx(items, j), "SetToDefault");
            if (!def)
                continue;
            int loc = rw_get_int(def, "location", -1);
            if (loc < 0 || strncasecmp(w->sql + loc, "default", 7) != 0) {
                refuse(w, "this DEFAULT");
                return false;
            }
            const char *d = t->defaults && !skip[j] ? t->defaults[idx[j]] : NULL;
            char *text = NULL;
            if (asprintf(&text, "(%s)", d ? d : "NULL") < 0)
                text = NULL;
            rw_add_edit(w, (size_t)loc, (size_t)loc + 7, text);
        }
    }
    return !w->failed;
}

/* Source column j is a VALUES list whose items are all DEFAULT. */
static bool only_defaults(json_object *select, int j)
{
    json_object *values = rw_get(rw_get(select, "SelectStmt"), "valuesLists");
    size_t rows = values ? json_object_array_length(values) : 0;
    for (size_t r = 0; r < rows; r++) {
        json_object *items = rw_get(rw_get(json_object_array_get_idx(values, r), "List"), "items");
        if (!items || (int)json_object_array_length(items) <= j ||
            !rw_get(json_object_array_get_idx(items, j), "SetToDefault"))
            return false;
    }
    return rows > 0;
}

/* What PostgreSQL's rewriter does with the identity and generated columns
 * an INSERT names (rewriteTargetListIU), checked in attnum order as it does:
 * a GENERATED ALWAYS identity column takes a value only with OVERRIDING
 * SYSTEM VALUE, a generated column never (428C9), unless every item given
 * for it is DEFAULT; OVERRIDING USER VALUE makes identity columns take
 * their default. skip[j]: source column j is not written (the delta
 * computes it or applies its default). false after failing. */
static bool insert_always_columns(walker_t *w, json_object *select, const catalog_table_t *t,
                                  const int *idx, int n, const char *override, bool *skip)
{
    bool user_value = override && strcmp(override, "OVERRIDING_USER_VALUE") == 0;
    bool system_value = override && strcmp(override, "OVERRIDING_SYSTEM_VALUE") == 0;
    for (int col = 0; col < t->ncols; col++) {
        char identity = catalog_col_identity(t, col);
        bool generated = catalog_col_generated(t, col);
        if (!identity && !generated)
            continue;
        for (int j = 0; j < n; j++) {
            if (idx[j] != col)
                continue;
            if (identity && user_value) {
                skip[j] = true;
                continue;
            }
            if ((identity == 'a' && !system_value) || generated) {
                if (only_defaults(select, j)) {
                    skip[j] = generated; /* identity: DEFAULT is the sequence */
                    continue;
                }
                rw_fail(w, "428C9", identity ? "Use OVERRIDING SYSTEM VALUE to override." : NULL,
                        "cannot insert a non-DEFAULT value into column \"%s\"", t->cols[col]);
                if (identity)
                    rw_fail_detail(w,
                                   "Column \"%s\" is an identity column defined as GENERATED "
                                   "ALWAYS.",
                                   t->cols[col]);
                else
                    rw_fail_detail(w, "Column \"%s\" is a generated column.", t->cols[col]);
                return false;
            }
        }
    }
    return true;
}

/* INSERT … ON CONFLICT (key) DO UPDATE on a branch: one upsert into the
 * delta whose rows are, per proposed row, the proposed values when the key
 * is new on the branch, or the existing row with the SET applied (the
 * client's expressions see `excluded` and the target alias as usual). */
static void upsert_merge(walker_t *w, FILE *f, const target_t *tg, char **exprs, const int *col_of,
                         int nset, const char *cwhere)
{
    const catalog_table_t *t = tg->t;
    fprintf(f, " INSERT INTO epoch.\"d_%d\" AS ", t->id);
    overlay_ident(f, tg->alias);
    fputs(" (\"_epoch_branch\", ", f);
    ident_list(f, t, NULL, COLS_WRITTEN);
    fprintf(f, ") SELECT %s", tg->bid);
    for (int col = 0; col < t->ncols; col++) {
        if (!col_in(t, col, COLS_WRITTEN))
            continue;
        fputs(", CASE WHEN ", f);
        overlay_ident(f, tg->alias);
        fputs(".\"_epoch_present\" IS NULL THEN ", f);
        fputs("excluded.", f); /* _epoch_new carries every column here */
        overlay_ident(f, t->cols[col]);
        fputs(" ELSE ", f);
        assigned_value(f, tg, exprs, col_of, nset, col, false);
        fputs(" END", f);
    }
    fputs(" FROM _epoch_new AS excluded LEFT JOIN (SELECT _x.*, true AS \"_epoch_present\" FROM ",
          f);
    char *ov = rw_overlay_text(t, NULL, w->s->cat->branch_id, w->s->cat->base_seq, "_x", NULL, 0);
    fputs(ov ? ov : "", f);
    free(ov);
    fputs(") AS ", f);
    overlay_ident(f, tg->alias);
    fputs(" ON ", f);
    char *alias = quoted_ident(tg->alias);
    overlay_key_match(f, t, alias ? alias : "\"?\"", "excluded");
    free(alias);
    if (cwhere) {
        fputs(" WHERE ", f);
        overlay_ident(f, tg->alias);
        fprintf(f, ".\"_epoch_present\" IS NULL OR (%s)", cwhere);
    }
    conflict_tail(f, tg, CONFLICT_REPLACE, NULL);
}

static void insert_statement(walker_t *w, json_object *body, size_t start, size_t end,
                             const target_t *tg, FILE *f)
{
    const catalog_table_t *t = tg->t;
    json_object *select = rw_get(body, "selectStmt");
    json_object *conflict = rw_get(body, "onConflictClause");
    const char *action = rw_get_str(conflict, "action");
    bool do_nothing = action && strcmp(action, "ONCONFLICT_NOTHING") == 0;
    bool do_update = action && strcmp(action, "ONCONFLICT_UPDATE") == 0;
    /* DO NOTHING without a target is fine; with one, it must be the key */
    if ((do_update || (do_nothing && rw_get(conflict, "infer"))) &&
        !conflict_on_key(w, conflict, t))
        return;
    const char *ov = rw_get_str(body, "override");
    if (ov && strcmp(ov, "OVERRIDING_NOT_SET") == 0)
        ov = NULL;
    /* columns, in the order the source fills them */
    int idx[MAX_ITEMS], n = 0;
    json_object *cols = rw_get(body, "cols");
    if (cols) {
        int nc = (int)json_object_array_length(cols);
        for (int i = 0; i < nc && n < MAX_ITEMS; i++) {
            json_object *rt = rw_get(json_object_array_get_idx(cols, i), "ResTarget");
            const char *name = rw_get_str(rt, "name");
            int ci = name ? column_index(t, name) : -1;
            if (ci < 0 || rw_get(rt, "indirection")) {
                rw_fail(w, "42703", NULL, "column \"%s\" of relation \"%s\" does not exist",
                        name ? name : "?", t->name);
                return;
            }
            idx[n++] = ci;
        }
    } else if (select) {
        int width = source_width(select, t->ncols);
        if (width < 0 || width > t->ncols) {
            rw_fail(w, "42601", NULL, "INSERT has more expressions than target columns");
            return;
        }
        for (int i = 0; i < width; i++)
            idx[n++] = i;
    }
    bool skip[MAX_ITEMS] = {0}; /* source columns not written */
    if (!insert_always_columns(w, select, t, idx, n, ov, skip))
        return;
    if (select && !defaults_in_values(w, select, t, idx, skip, n))
        return;
    bool all_keys = true;
    for (int k = 0; k < t->ncols; k++) {
        if (!t->is_pk[k])
            continue;
        bool given = false;
        for (int i = 0; i < n; i++)
            given |= idx[i] == k && !skip[i];
        all_keys &= given;
    }
    if (!all_keys)
        do_update = false; /* a generated key is new: nothing to conflict with */
    /* the source text: after the relation, its alias and the column list */
    size_t verb = lex_find_keyword(w->sql, start, end, "insert");
    size_t into = lex_find_keyword(w->sql, verb, end, "into");
    size_t name_start = lex_skip_blank(w->sql, into + 4);
    size_t src = lex_skip_blank(w->sql, lex_name_end(w->sql, name_start));
    if (rw_get(rw_get(body, "relation"), "alias")) {
        if (strncasecmp(w->sql + src, "as", 2) == 0 && !isalnum((unsigned char)w->sql[src + 2]) &&
            w->sql[src + 2] != '_')
            src = lex_skip_blank(w->sql, src + 2);
        src = lex_skip_blank(w->sql, lex_name_end(w->sql, src));
    }
    if (cols)
        src = lex_skip_blank(w->sql, lex_paren_end(w->sql, src));
    if (ov) { /* OVERRIDING { SYSTEM | USER } VALUE */
        size_t value = lex_find_keyword(w->sql, src, end, "value");
        if (value >= end) {
            refuse(w, "this form of INSERT … OVERRIDING");
            return;
        }
        src = lex_skip_blank(w->sql, value + 5);
    }
    size_t on = conflict ? lex_find_keyword(w->sql, src, end, "on") : end;
    size_t ret = lex_find_keyword(w->sql, src, end, "returning");
    /* ON CONFLICT … DO UPDATE SET <items> [WHERE <cond>] */
    char *exprs[MAX_ITEMS] = {0};
    int col_of[MAX_ITEMS], nset = 0;
    char *cwhere = NULL;
    if (do_update) {
        size_t set = lex_find_keyword(w->sql, on, ret, "set");
        size_t cw = lex_find_keyword(w->sql, set, ret, "where");
        bool has_where = rw_get(conflict, "whereClause") != NULL;
        if (set >= ret || (cw < ret) != has_where) {
            refuse(w, "this ON CONFLICT clause");
            return;
        }
        nset = parse_set_list(w, rw_get(conflict, "targetList"), set + 3, cw, tg, exprs, col_of,
                              false);
        if (nset < 0)
            return;
        if (has_where && !(cwhere = rw_splice_range(w, cw + 5, ret))) {
            w->failed = true;
            goto out_sets;
        }
    }
    size_t src_end = on < ret ? on : ret;
    char *prefix = prefix_text(w, body, start, verb);
    char *source = select ? rw_splice_range(w, src, src_end) : NULL;
    if (!prefix || (select && !source)) {
        free(prefix);
        free(source);
        w->failed = true;
        return;
    }
    /* several rows (with keys, to be checked): each row's place, so the rows
     * after the first one whose key exists are not written (PostgreSQL stops
     * there, before their constraints); one row cannot repeat a key */
    json_object *vals = rw_get(rw_get(select, "SelectStmt"), "valuesLists");
    bool one_row = !select || (vals && json_object_array_length(vals) == 1);
    bool several = all_keys && !do_nothing && !do_update && !one_row;
    bool copy_rows = strncmp(w->sql, COPY_INSERT_MARK, strlen(COPY_INSERT_MARK)) == 0;
    /* WITH [user's CTEs,] _epoch_new AS (source) */
    with_prefix(f, prefix);
    /* The source is a subquery here, so its constants and untyped $n
     * parameters are no longer typed by the target columns: cast to the
     * column's type (without typmod, so the assignment into the delta still
     * checks lengths and precision as an INSERT into the table would). */
    fputs("_epoch_new AS MATERIALIZED (SELECT ", f);
    /* for DO UPDATE, excluded.* also has the generated columns, computed
     * from the proposed row as PostgreSQL computes them before the conflict
     * check: their expressions name the table's columns, so they are
     * evaluated over a sub-SELECT whose columns are named that way */
    bool wrap = false;
    for (int col = 0; do_update && col < t->ncols; col++)
        wrap |= catalog_col_generated(t, col);
    if (wrap) {
        fputs("_epoch_g.*", f);
        for (int col = 0; col < t->ncols; col++) {
            if (!catalog_col_generated(t, col))
                continue;
            const char *g = t->defaults ? t->defaults[col] : NULL;
            fprintf(f, ", (%s)", g ? g : "NULL");
            if (t->types && t->types[col])
                fprintf(f, "::%s", t->types[col]);
            fputs(" AS ", f);
            overlay_ident(f, t->cols[col]);
        }
        fputs(" FROM (SELECT ", f);
    }
    bool first = true;
    if (!select) {
        fputs("1 AS _epoch_dummy", f);
        first = false;
    }
    for (int i = 0; i < n; i++) {
        if (skip[i])
            continue;
        if (!first)
            fputs(", ", f);
        first = false;
        fputs("_v.", f);
        overlay_ident(f, t->cols[idx[i]]);
        if (t->types && t->types[idx[i]])
            fprintf(f, "::%s", t->types[idx[i]]);
        fputs(" AS ", f);
        overlay_ident(f, t->cols[idx[i]]);
    }
    /* for DO UPDATE, excluded.* has every column: the omitted ones with
     * their defaults, typed, as PostgreSQL's proposed row has them */
    for (int col = 0; do_update && col < t->ncols; col++) {
        bool given = catalog_col_generated(t, col);
        for (int i = 0; i < n; i++)
            given |= idx[i] == col && !skip[i];
        if (given)
            continue;
        const char *d = t->defaults ? t->defaults[col] : NULL;
        fprintf(f, "%s(%s)", first ? "" : ", ", d ? d : "NULL");
        first = false;
        if (t->types && t->types[col])
            fprintf(f, "::%s", t->types[col]);
        fputs(" AS ", f);
        overlay_ident(f, t->cols[col]);
    }
    if (several && !copy_rows) /* in the source's order (no ORDER BY: as they come) */
        fprintf(f, "%srow_number() OVER () AS \"_epoch_ord\"", first ? "" : ", ");
    if (select) {
        fprintf(f, " FROM (%s) AS _v (", source);
        for (int i = 0; i < n; i++) {
            if (i)
                fputs(", ", f);
            overlay_ident(f, t->cols[idx[i]]);
        }
        fputs(")", f);
    }
    fputs(wrap ? ") AS _epoch_g)" : ")", f);
    /* keys that exist on the branch: an error, or skipped with DO NOTHING */
    bool few_rows = !select || (vals && json_object_array_length(vals) <= 100);
    char *existing = NULL;
    size_t elen = 0;
    FILE *e = open_memstream(&existing, &elen);
    if (e) {
        /* a few rows: a correlated scalar subquery, whose key condition
         * reaches each arm's index (as a semi-join PostgreSQL hashed every
         * key of the table: 1 s for a one-row INSERT); many rows (INSERT …
         * SELECT, COPY): EXISTS, so the check is one hashed join instead of
         * a sub-plan per row */
        fputs(few_rows ? "(SELECT true FROM " : "EXISTS (SELECT 1 FROM ", e);
        char *ov_plain =
            rw_overlay_text(t, NULL, w->s->cat->branch_id, w->s->cat->base_seq, "_o", NULL, 0);
        fputs(ov_plain ? ov_plain : "", e);
        free(ov_plain);
        fputs(" WHERE ", e);
        overlay_key_match(e, t, "_o", "_n");
        fputs(few_rows ? " LIMIT 1) IS NOT NULL" : ")", e);
        fclose(e);
    }
    if (!existing) {
        w->failed = true;
        free(prefix);
        free(source);
        return;
    }
    if (do_update) {
        upsert_merge(w, f, tg, exprs, col_of, nset, cwhere);
        free(existing);
        goto returning;
    }
    /* a key twice in this INSERT: checked first (the second row would
     * otherwise meet the first in the delta: 21000, not 23505) */
    if (several) {
        fputs(", _epoch_dup AS (SELECT ", f);
        duplicate_key_open(f, t);
        ident_list(f, t, "_n", COLS_KEY);
        fputs(DUPLICATE_KEY_CLOSE " FROM (SELECT ", f);
        ident_list(f, t, NULL, COLS_KEY);
        fputs(" FROM _epoch_new GROUP BY ", f);
        ident_list(f, t, NULL, COLS_KEY);
        fputs(" HAVING count(*) > 1) _n LIMIT 1)", f);
        /* the first row whose key exists on the branch */
        if (!copy_rows)
            fprintf(f,
                    ", _epoch_first AS MATERIALIZED (SELECT min(_n.\"_epoch_ord\") AS o FROM "
                    "_epoch_new _n WHERE %s)",
                    existing);
    }
    fprintf(f, " INSERT INTO epoch.\"d_%d\" AS ", t->id);
    overlay_ident(f, tg->alias);
    fputs(" (\"_epoch_branch\"", f);
    for (int i = 0; i < n; i++) {
        if (skip[i])
            continue;
        fputs(", ", f);
        overlay_ident(f, t->cols[idx[i]]);
    }
    fputs(") SELECT ", f);
    if (all_keys && do_nothing) {
        /* the first of several rows with one key wins, the others are skipped */
        fputs("DISTINCT ON (", f);
        ident_list(f, t, "_n", COLS_KEY);
        fputs(") ", f);
    }
    fputs(tg->bid, f);
    for (int i = 0; i < n; i++) {
        if (skip[i])
            continue;
        fputs(", _n.", f);
        overlay_ident(f, t->cols[idx[i]]);
    }
    fputs(" FROM _epoch_new _n", f);
    if (all_keys && do_nothing)
        fprintf(f, " WHERE NOT %s", existing);
    else if (several)
        fputs(copy_rows ? " WHERE NOT EXISTS (SELECT 1 FROM _epoch_dup)"
                        : " WHERE NOT EXISTS (SELECT 1 FROM _epoch_dup) AND _n.\"_epoch_ord\" <= "
                          "coalesce((SELECT o FROM _epoch_first), 9223372036854775807)",
              f);
    if (all_keys && !do_nothing) {
        /* a key that exists on the branch: checked after the rows went in
         * (of several, those up to the first such key), so their NOT NULL
         * and CHECK constraints come first, as in PostgreSQL, which checks
         * row by row (the delta checks them; a key live in the delta is
         * caught by the conflict clause too) */
        fputs(" UNION ALL SELECT NULL", f); /* the branch: this arm returns no row */
        for (int i = 0; i < n; i++) {
            if (skip[i])
                continue;
            fputs(", _n.", f);
            overlay_ident(f, t->cols[idx[i]]);
        }
        deferred_duplicate_check(
            f, t, "_epoch_new",
            several && !copy_rows ? "_n.\"_epoch_ord\" = (SELECT o FROM _epoch_first)" : existing);
    }
    free(existing);
    /* a tombstone of the same key is replaced */
    conflict_tail(f, tg, do_nothing ? CONFLICT_INSERT_NOTHING : CONFLICT_INSERT, NULL);
returning:
    if (ret < end) {
        char *r = returning_text(w, rw_get(body, "returningList"), t, ret, end);
        if (r) {
            fputc(' ', f);
            fputs(r, f);
        } else {
            w->failed = true;
        }
        free(r);
    }
    free(prefix);
    free(source);
out_sets:
    for (int i = 0; i < nset; i++)
        free(exprs[i]);
    free(cwhere);
}

void dml_statement(walker_t *w, const char *key, json_object *body, size_t start, size_t len,
                   bool top)
{
    bool update = strcmp(key, "UpdateStmt") == 0, del = strcmp(key, "DeleteStmt") == 0;
    target_t tg;
    if (!resolve_target(w, body, update ? "UPDATE" : del ? "DELETE" : "INSERT INTO", &tg))
        return;
    if (top && w->stmt_no >= RW_MAX_TAGS) {
        refuse(w, "a write after the 64th statement of one query");
        free(tg.overlay);
        return;
    }
    rw_walk(w, body); /* reads inside the statement (subqueries, FROM, CTEs) */
    if (w->failed || w->need_catalog) {
        free(tg.overlay);
        return;
    }
    size_t end = start + len;
    char *text = NULL;
    size_t tlen = 0;
    FILE *f = open_memstream(&text, &tlen);
    if (!f) {
        free(tg.overlay);
        w->failed = true;
        return;
    }
    if (!update && !del) {
        insert_statement(w, body, start, end, &tg, f);
    } else {
        size_t verb = lex_find_keyword(w->sql, start, end, update ? "update" : "delete");
        char *prefix = prefix_text(w, body, start, verb);
        if (!prefix)
            w->failed = true;
        else if (update)
            update_statement(w, body, start, end, &tg, prefix, f);
        else
            delete_statement(w, body, start, end, &tg, prefix, f);
        free(prefix);
    }
    fclose(f);
    free(tg.overlay);
    if (w->failed) {
        free(text);
        return;
    }
    /* the whole statement is replaced; edits inside it are part of text */
    char *rest = rw_splice_range(w, start, end);
    free(rest);
    rw_add_edit(w, start, end, text);
    if (top && w->out->action != RW_SET_BRANCH && w->stmt_no == 0)
        w->flags |= RW_F_PREPARABLE; /* cleared by finish() if more statements follow */
    if (top && (update || del)) {
        size_t have = strlen(w->out->tags);
        while ((int)have < w->stmt_no)
            w->out->tags[have++] = '-';
        w->out->tags[have++] = update ? 'U' : 'D';
        w->out->tags[have] = '\0';
    }
}

void dml_copy_from(walker_t *w, json_object *body, size_t start, size_t len, int nstmts)
{
    target_t tg;
    if (!resolve_target(w, body, "COPY", &tg))
        return;
    free(tg.overlay);
    if (nstmts != 1) {
        refuse(w, "COPY … FROM combined with other statements in one query");
        return;
    }
    const catalog_table_t *t = tg.t;
    /* the rows' columns: COPY's list or all */
    char *cols = NULL;
    size_t clen = 0;
    FILE *f = open_memstream(&cols, &clen);
    if (!f) {
        w->failed = true;
        return;
    }
    json_object *att = rw_get(body, "attlist");
    size_t na = att ? json_object_array_length(att) : 0;
    for (size_t i = 0; i < na; i++) {
        const char *name = rw_get_str(rw_get(json_object_array_get_idx(att, i), "String"), "sval");
        int col = name ? column_index(t, name) : -1;
        if (col < 0 || catalog_col_generated(t, col)) {
            fclose(f);
            free(cols);
            if (col < 0)
                rw_fail(w, "42703", NULL, "column \"%s\" of relation \"%s\" does not exist",
                        name ? name : "?", t->name);
            else
                rw_fail(w, "42P10", "Generated columns cannot be used in COPY.",
                        "column \"%s\" is a generated column", name);
            return;
        }
        if (i)
            fputs(", ", f);
        overlay_ident(f, name);
    }
    /* without a list, COPY fills every column but the generated ones */
    bool generated = false;
    for (int col = 0; col < t->ncols; col++)
        generated |= catalog_col_generated(t, col);
    if (!na)
        ident_list(f, t, NULL, COLS_WRITTEN);
    fclose(f);
    /* the staging table has every column, so COPY must name the ones it fills */
    char *staging = NULL;
    if (!cols || asprintf(&staging, "pg_temp.\"epoch_copy\"%s%s%s", !na && generated ? " (" : "",
                          !na && generated ? cols : "", !na && generated ? ")" : "") < 0) {
        free(cols);
        w->failed = true;
        return;
    }
    /* the INSERT the staging table's trigger runs, made by this same rewriter */
    char *ins = NULL, *setup = NULL;
    size_t il = 0, sl = 0;
    FILE *fi = open_memstream(&ins, &il);
    if (!fi) {
        free(cols);
        free(staging);
        w->failed = true;
        return;
    }
    fputs(COPY_INSERT_MARK "INSERT INTO ", fi);
    overlay_ident(fi, t->schema);
    fputc('.', fi);
    overlay_ident(fi, t->name);
    /* COPY is not subject to GENERATED ALWAYS: it stores identity values as given */
    fprintf(fi, " (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM new_rows", cols, cols);
    fclose(fi);
    rw_result_t sub;
    rewrite_statement(w->s, ins, &sub);
    free(ins);
    free(cols);
    if (sub.action != RW_REWRITTEN) {
        if (sub.action == RW_ERROR)
            rw_fail(w, sub.sqlstate, sub.hint, "%s", sub.message ? sub.message : "COPY failed");
        else
            refuse(w, "this COPY");
        rewrite_result_free(&sub);
        free(staging);
        return;
    }
    FILE *fs = open_memstream(&setup, &sl);
    if (!fs) {
        rewrite_result_free(&sub);
        free(staging);
        w->failed = true;
        return;
    }
    fputs("DROP TABLE IF EXISTS pg_temp.\"epoch_copy\"; CREATE TEMP TABLE \"epoch_copy\" AS SELECT "
          "* FROM ",
          fs);
    overlay_ident(fs, t->schema);
    fputc('.', fs);
    overlay_ident(fs, t->name);
    fputs(" WITH NO DATA; CREATE TRIGGER \"epoch_copy_apply\" AFTER INSERT ON "
          "pg_temp.\"epoch_copy\" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
          "EXECUTE FUNCTION epoch._copy_apply(",
          fs);
    overlay_literal(fs, sub.sql);
    fputs(")", fs);
    fclose(fs);
    rewrite_result_free(&sub);
    if (!setup) {
        free(staging);
        w->failed = true;
        return;
    }
    /* COPY t [(cols)] FROM …  ->  COPY pg_temp."epoch_copy" [(cols)] FROM … */
    json_object *rel = rw_get(body, "relation");
    size_t loc = (size_t)rw_get_int(rel, "location", -1);
    size_t end = lex_name_end(w->sql, loc);
    if (end == loc) {
        free(setup);
        free(staging);
        refuse(w, "this COPY");
        return;
    }
    (void)start;
    (void)len;
    rw_add_edit(w, loc, end, staging);
    free(w->out->setup);
    w->out->setup = setup;
}
