/*
 * dml_set — the SET list of an UPDATE or of an INSERT's ON CONFLICT DO
 * UPDATE, read into one expression per assigned column (the client's text,
 * reads inside it rewritten): `c = e`, DEFAULT, `(a, b) = (x, y)` / ROW(…),
 * `(a, b) = (SELECT …)`, and `a[i] = x` spelled out as the whole array with
 * element i replaced (a row of main is inserted into the delta, where
 * PostgreSQL's subscripted assignment does not apply). PostgreSQL's checks
 * of the list (42703, 42601, 428C9 for GENERATED ALWAYS) are made here,
 * with its SQLSTATEs and wording.
 *
 * Must never: keep a stored generated column in the list (the delta
 * computes it), or leave the copies of edits the walker records for a
 * multiple-column source (drop_edits).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rewrite/dml_internal.h"
#include "common/lexer.h"
#include "branch/overlay.h"

/* The item assigning column col (the last one wins), or -1. */
static int item_for(const int *col_of, int nt, int col)
{
    int item = -1;
    for (int i = 0; i < nt; i++)
        if (col_of[i] == col)
            item = i;
    return item;
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
            dml_refuse(w, "assignment to a field of a composite column (SET c.f = …)");
            return NULL;
        }
    if (is_default) {
        rw_fail(w, "0A000", NULL, "cannot set an array element to DEFAULT");
        return NULL;
    }
    json_object *idx = rw_get(json_object_array_get_idx(ind, 0), "A_Indices");
    json_object *slice = rw_get(idx, "is_slice");
    if (n != 1 || (slice && json_object_get_boolean(slice)) || !rw_get(idx, "uidx")) {
        dml_refuse(w, "assignment to an array slice or to an element of a multidimensional array "
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
        dml_refuse(w, "this SET item");
        return NULL;
    }
    char *sub = rw_splice_range(w, open + 1, close - 1);
    char *old = NULL;
    if (prior) {
        old = strdup(prior);
    } else {
        sqlbuf_t sb = {0};
        sqlbuf_ident(&sb, tg->alias);
        sqlbuf_putc(&sb, '.');
        sqlbuf_ident(&sb, t->cols[col]);
        old = sqlbuf_take(&sb);
    }
    char *text = sub && old ? array_assign_sql(old, sub, value, type) : NULL;
    free(sub);
    free(old);
    if (!text)
        rw_fail_oom(w);
    return text;
}

/* What parse_set_list collects: one expression per assigned column. */
typedef struct set_list {
    char **exprs;
    int *col_of;
    bool *partial; /* the column's value comes from subscripted assignments */
    int n;
    int cap;    /* room in exprs, col_of and partial: the table's column count */
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
    int col = name ? catalog_col_index(t, name) : -1;
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
        dml_refuse(w, "ON CONFLICT DO UPDATE of a primary key column");
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
        rw_fail_oom(w);
        goto fail;
    }
    free(value);
    if (prev >= 0) {
        free(o->exprs[prev]);
        o->exprs[prev] = expr;
    } else {
        if (o->n >= o->cap) { /* each column is assigned once: cannot happen */
            free(expr);
            rw_fail(w, "XX000", NULL, "SET list of \"%s\" assigns more columns than it has",
                    t->name);
            return false;
        }
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
        size_t *commas = calloc((size_t)nargs + 1, sizeof *commas);
        if (!commas) {
            rw_fail_oom(w);
            return false;
        }
        if (close == open || lex_skip_blank(w->sql, close) < to ||
            lex_find_char(w->sql, open + 1, close - 1, ',', commas, nargs) != nargs - 1) {
            free(commas);
            dml_refuse(w, "this SET item");
            return false;
        }
        size_t start = open + 1;
        for (int k = 0; k < nargs; k++) {
            size_t end = k < nargs - 1 ? commas[k] : close - 1;
            if (rw_get(json_object_array_get_idx(args, k), "SetToDefault")) {
                defaults[k] = true;
            } else if (!(vals[k] = rw_splice_range(w, start, end))) {
                free(commas);
                rw_fail_oom(w);
                return false;
            }
            start = end + 1;
        }
        free(commas);
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
    for (int i = 0; i < ntl; i++)
        star |= dml_is_star(json_object_array_get_idx(tl, i));
    if (tl && !star && ntl != width) {
        rw_fail(w, "42601", NULL, "number of columns does not match number of values");
        return false;
    }
    for (int k = 0; k < width; k++) {
        char *select = rw_splice_range(w, from, to);
        sqlbuf_t sb = {0};
        for (int c = 0; c < width; c++)
            sqlbuf_printf(&sb, "%s_epoch_c%d", c ? ", " : "", c + 1);
        char *names = sqlbuf_take(&sb);
        if (!select || !names ||
            asprintf(&vals[k], "(SELECT _epoch_m._epoch_c%d FROM %s AS _epoch_m (%s))", k + 1,
                     select, names) < 0)
            vals[k] = NULL;
        free(select);
        free(names);
        if (!vals[k]) {
            rw_fail_oom(w);
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
    /* one per target of the clause: per statement, as wide as the clause */
    char **vals = calloc((size_t)width, sizeof *vals);
    bool *defaults = calloc((size_t)width, sizeof *defaults);
    json_object *rt0 = rw_get(json_object_array_get_idx(targets, first), "ResTarget");
    json_object *multi = rw_get(rw_get(rt0, "val"), "MultiAssignRef");
    bool ok = false;
    size_t eq;
    if (!vals || !defaults) {
        rw_fail_oom(w);
        goto out;
    }
    if (lex_find_char(w->sql, from, to, '=', &eq, 1) != 1) {
        dml_refuse(w, "this SET item");
        goto out;
    }
    if (!multi) {
        /* the first `=` after the target (`a[i] = x`, `c = a = b`) */
        int loc = rw_get_int(rt0, "location", -1);
        if (loc < 0 || lex_skip_blank(w->sql, target_end(w, (size_t)loc)) != eq) {
            dml_refuse(w, "this SET item");
            goto out;
        }
        if (rw_get(rw_get(rt0, "val"), "SetToDefault"))
            defaults[0] = true;
        else if (!(vals[0] = rw_splice_range(w, eq + 1, to))) {
            rw_fail_oom(w);
            goto out;
        }
    } else {
        for (int k = 0; k < width; k++) {
            json_object *m = rw_get(
                rw_get(rw_get(json_object_array_get_idx(targets, first + k), "ResTarget"), "val"),
                "MultiAssignRef");
            if (!m || rw_get_int(m, "colno", 0) != k + 1 || rw_get_int(m, "ncolumns", 0) != width) {
                dml_refuse(w, "this SET item");
                goto out;
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
    for (int k = 0; vals && k < width; k++)
        free(vals[k]);
    free(vals);
    free(defaults);
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
int dml_parse_set_list(walker_t *w, json_object *targets, size_t from, size_t to,
                       const target_t *tg, char **exprs, int *col_of, bool allow_key)
{
    int nt = targets ? (int)json_object_array_length(targets) : 0;
    set_list_t o = {.exprs = exprs, .col_of = col_of, .cap = tg->t->ncols, .always = -1};
    /* per statement, sized by the list: a clause has at least one target */
    size_t *commas = calloc((size_t)nt + 1, sizeof *commas);
    o.partial = calloc((size_t)o.cap + 1, sizeof *o.partial);
    if (!commas || !o.partial) {
        rw_fail_oom(w);
        goto fail;
    }
    int ncomma = lex_find_char(w->sql, from, to, ',', commas, nt);
    int nclauses = 0;
    for (int i = 0; i < nt; nclauses++)
        i += clause_width(targets, i, nt);
    if (nt == 0 || ncomma != nclauses - 1) {
        dml_refuse(w, "this SET list");
        goto fail;
    }
    size_t item_start = from;
    for (int i = 0, c = 0; i < nt; c++) {
        size_t item_end = c < ncomma ? commas[c] : to;
        int width = clause_width(targets, i, nt);
        if (!set_clause(w, tg, targets, i, width, item_start, item_end, allow_key, &o))
            goto fail;
        dml_drop_edits(w, item_start, item_end);
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
    free(commas);
    free(o.partial);
    return kept;
fail:
    for (int i = 0; i < o.n; i++) {
        free(exprs[i]);
        exprs[i] = NULL;
    }
    free(commas);
    free(o.partial);
    return -1;
}

bool dml_set_arrays(walker_t *w, const catalog_table_t *t, char ***exprs, int **col_of)
{
    /* +1: never 0 bytes */
    *exprs = calloc((size_t)t->ncols + 1, sizeof **exprs);
    *col_of = calloc((size_t)t->ncols + 1, sizeof **col_of);
    if (*exprs && *col_of)
        return true;
    free(*exprs);
    free(*col_of);
    *exprs = NULL;
    *col_of = NULL;
    rw_fail_oom(w);
    return false;
}

void dml_set_arrays_free(char **exprs, int *col_of, int n)
{
    for (int i = 0; exprs && i < n; i++)
        free(exprs[i]);
    free(exprs);
    free(col_of);
}

/* Column col after a SET: its assigned expression, or the row's own value.
 * typed: cast the expression to the column's type, for where no INSERT
 * column types it (a CTE's select list turns NULL, 'x' and $1 into text). */
void dml_assigned_value(sqlbuf_t *sb, const target_t *tg, char **exprs, const int *col_of, int nt,
                        int col, bool typed)
{
    int item = item_for(col_of, nt, col);
    if (item >= 0) {
        const char *type = typed && tg->t->types ? tg->t->types[col] : NULL;
        if (type)
            sqlbuf_printf(sb, "(%s)::%s", exprs[item], type);
        else
            sqlbuf_printf(sb, "(%s)", exprs[item]);
        return;
    }
    sqlbuf_ident(sb, tg->alias);
    sqlbuf_putc(sb, '.');
    sqlbuf_ident(sb, tg->t->cols[col]);
}
