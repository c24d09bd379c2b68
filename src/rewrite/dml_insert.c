/*
 * dml_insert — INSERT into a tracked table on a branch: the source (VALUES,
 * SELECT, DEFAULT VALUES) becomes the CTE _epoch_new, typed by the target
 * columns; keys that exist on the branch are 23505 (or skipped with ON
 * CONFLICT DO NOTHING), a key twice in one INSERT too, and the rows go into
 * the delta replacing a tombstone of the same key. PostgreSQL's rules for
 * identity and generated columns (rewriteTargetListIU) are applied here,
 * in its order and wording. COPY … FROM's rows come through here too
 * (COPY_INSERT_MARK: constraints of the batch before its keys).
 *
 * Must never: write a stored generated column (the delta computes it), or
 * write the rows after the first whose key exists (PostgreSQL stops there).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rewrite/dml_internal.h"
#include "common/lexer.h"
#include "branch/overlay.h"

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
    for (int i = 0; i < n; i++)
        if (dml_is_star(json_object_array_get_idx(tl, i)))
            return ncols; /* SELECT *: assume it fills the table */
    return n;
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
                dml_refuse(w, "this DEFAULT");
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

/* The columns the source of the INSERT fills, in its order: the column
 * list's, or the first ones of the table. *idx and *skip are calloc'd with
 * one entry per source column (the caller frees both); false after failing. */
static bool insert_columns(walker_t *w, json_object *body, json_object *select,
                           const catalog_table_t *t, int **idx, bool **skip, int *n)
{
    json_object *cols = rw_get(body, "cols");
    int width = 0;
    if (cols) {
        width = (int)json_object_array_length(cols);
    } else if (select) {
        width = source_width(select, t->ncols);
        if (width < 0 || width > t->ncols) {
            rw_fail(w, "42601", NULL, "INSERT has more expressions than target columns");
            return false;
        }
    }
    /* +1: never 0 bytes (DEFAULT VALUES names no column) */
    *idx = calloc((size_t)width + 1, sizeof **idx);
    *skip = calloc((size_t)width + 1, sizeof **skip);
    if (!*idx || !*skip) {
        free(*idx);
        free(*skip);
        *idx = NULL;
        *skip = NULL;
        rw_fail_oom(w);
        return false;
    }
    for (int i = 0; i < width; i++) {
        if (!cols) {
            (*idx)[i] = i;
            continue;
        }
        json_object *rt = rw_get(json_object_array_get_idx(cols, i), "ResTarget");
        const char *name = rw_get_str(rt, "name");
        int ci = name ? catalog_col_index(t, name) : -1;
        if (ci < 0 || rw_get(rt, "indirection")) {
            rw_fail(w, "42703", NULL, "column \"%s\" of relation \"%s\" does not exist",
                    name ? name : "?", t->name);
            free(*idx);
            free(*skip);
            *idx = NULL;
            *skip = NULL;
            return false;
        }
        (*idx)[i] = ci;
    }
    *n = width;
    return true;
}

/* An INSERT once the columns its source fills are known. */
typedef struct insert_shape {
    const catalog_table_t *t;
    json_object *select; /* the source (NULL: DEFAULT VALUES) */
    const int *idx;      /* the column each source column fills */
    const bool *skip;    /* source column not written */
    int n;               /* source columns */
    bool all_keys;       /* every key column is written */
    bool do_nothing, do_update;
    bool several;   /* several rows with keys to check: each row's place matters */
    bool copy_rows; /* COPY … FROM's rows (COPY_INSERT_MARK) */
} insert_shape_t;

/* Where the source of the INSERT starts: after the relation, its alias, the
 * column list and OVERRIDING … VALUE (ov); false after refusing. */
static bool source_start(walker_t *w, json_object *body, size_t verb, size_t end, const char *ov,
                         size_t *src)
{
    size_t into = lex_find_keyword(w->sql, verb, end, "into");
    size_t name_start = lex_skip_blank(w->sql, into + 4);
    size_t at = lex_skip_blank(w->sql, lex_name_end(w->sql, name_start));
    if (rw_get(rw_get(body, "relation"), "alias")) {
        if (strncasecmp(w->sql + at, "as", 2) == 0 && !isalnum((unsigned char)w->sql[at + 2]) &&
            w->sql[at + 2] != '_')
            at = lex_skip_blank(w->sql, at + 2);
        at = lex_skip_blank(w->sql, lex_name_end(w->sql, at));
    }
    if (rw_get(body, "cols"))
        at = lex_skip_blank(w->sql, lex_paren_end(w->sql, at));
    if (ov) { /* OVERRIDING { SYSTEM | USER } VALUE */
        size_t value = lex_find_keyword(w->sql, at, end, "value");
        if (value >= end) {
            dml_refuse(w, "this form of INSERT … OVERRIDING");
            return false;
        }
        at = lex_skip_blank(w->sql, value + 5);
    }
    *src = at;
    return true;
}

/* ON CONFLICT … DO UPDATE SET <items> [WHERE <cond>] between on and ret:
 * the SET list (dml_set_arrays; *nset items) and the WHERE text (*cwhere,
 * malloc'd, or NULL). false after failing; the caller frees what was
 * filled either way. */
static bool conflict_update_clause(walker_t *w, json_object *conflict, const target_t *tg,
                                   size_t on, size_t ret, char ***exprs, int **col_of, int *nset,
                                   char **cwhere)
{
    size_t set = lex_find_keyword(w->sql, on, ret, "set");
    size_t cw = lex_find_keyword(w->sql, set, ret, "where");
    bool has_where = rw_get(conflict, "whereClause") != NULL;
    if (set >= ret || (cw < ret) != has_where) {
        dml_refuse(w, "this ON CONFLICT clause");
        return false;
    }
    if (!dml_set_arrays(w, tg->t, exprs, col_of))
        return false;
    *nset = dml_parse_set_list(w, rw_get(conflict, "targetList"), set + 3, cw, tg, *exprs, *col_of,
                               false);
    if (*nset < 0) {
        *nset = 0;
        return false;
    }
    if (has_where && !(*cwhere = rw_splice_range(w, cw + 5, ret))) {
        rw_fail_oom(w);
        return false;
    }
    return true;
}

/* `_epoch_new AS MATERIALIZED (SELECT …)`: the rows of the source (its
 * text: source), typed by the target columns. */
static void new_rows_cte(sqlbuf_t *sb, const insert_shape_t *in, const char *source)
{
    const catalog_table_t *t = in->t;
    /* The source is a subquery here, so its constants and untyped $n
     * parameters are no longer typed by the target columns: cast to the
     * column's type (without typmod, so the assignment into the delta still
     * checks lengths and precision as an INSERT into the table would). */
    SQLBUF_LIT(sb, "_epoch_new AS MATERIALIZED (SELECT ");
    /* for DO UPDATE, excluded.* also has the generated columns, computed
     * from the proposed row as PostgreSQL computes them before the conflict
     * check: their expressions name the table's columns, so they are
     * evaluated over a sub-SELECT whose columns are named that way */
    bool wrap = false;
    for (int col = 0; in->do_update && col < t->ncols; col++)
        wrap |= catalog_col_generated(t, col);
    if (wrap) {
        SQLBUF_LIT(sb, "_epoch_g.*");
        for (int col = 0; col < t->ncols; col++) {
            if (!catalog_col_generated(t, col))
                continue;
            const char *g = t->defaults ? t->defaults[col] : NULL;
            sqlbuf_printf(sb, ", (%s)", g ? g : "NULL");
            if (t->types && t->types[col])
                sqlbuf_printf(sb, "::%s", t->types[col]);
            SQLBUF_LIT(sb, " AS ");
            sqlbuf_ident(sb, t->cols[col]);
        }
        SQLBUF_LIT(sb, " FROM (SELECT ");
    }
    bool first = true;
    if (!in->select) {
        SQLBUF_LIT(sb, "1 AS _epoch_dummy");
        first = false;
    }
    for (int i = 0; i < in->n; i++) {
        if (in->skip[i])
            continue;
        if (!first)
            SQLBUF_LIT(sb, ", ");
        first = false;
        SQLBUF_LIT(sb, "_v.");
        sqlbuf_ident(sb, t->cols[in->idx[i]]);
        if (t->types && t->types[in->idx[i]])
            sqlbuf_printf(sb, "::%s", t->types[in->idx[i]]);
        SQLBUF_LIT(sb, " AS ");
        sqlbuf_ident(sb, t->cols[in->idx[i]]);
    }
    /* for DO UPDATE, excluded.* has every column: the omitted ones with
     * their defaults, typed, as PostgreSQL's proposed row has them */
    for (int col = 0; in->do_update && col < t->ncols; col++) {
        bool given = catalog_col_generated(t, col);
        for (int i = 0; i < in->n; i++)
            given |= in->idx[i] == col && !in->skip[i];
        if (given)
            continue;
        const char *d = t->defaults ? t->defaults[col] : NULL;
        sqlbuf_printf(sb, "%s(%s)", first ? "" : ", ", d ? d : "NULL");
        first = false;
        if (t->types && t->types[col])
            sqlbuf_printf(sb, "::%s", t->types[col]);
        SQLBUF_LIT(sb, " AS ");
        sqlbuf_ident(sb, t->cols[col]);
    }
    if (in->several && !in->copy_rows) /* in the source's order (no ORDER BY: as they come) */
        sqlbuf_printf(sb, "%srow_number() OVER () AS \"_epoch_ord\"", first ? "" : ", ");
    if (in->select) {
        sqlbuf_printf(sb, " FROM (%s) AS _v (", source);
        for (int i = 0; i < in->n; i++) {
            if (i)
                SQLBUF_LIT(sb, ", ");
            sqlbuf_ident(sb, t->cols[in->idx[i]]);
        }
        SQLBUF_LIT(sb, ")");
    }
    sqlbuf_puts(sb, wrap ? ") AS _epoch_g)" : ")");
}

/* The condition "the key of _n exists on the branch"; malloc'd, NULL out of
 * memory. probe_each: rows written in the statement (VALUES): a correlated
 * scalar subquery per row, whose key condition reaches each arm's index (as
 * a semi-join PostgreSQL hashed every key of the table: 1 s for a one-row
 * INSERT, 2.5 s instead of 0.3 s for 10,000 rows into a 1,000,000-row
 * table); otherwise rows of a query (INSERT … SELECT, COPY), as many as it
 * returns: EXISTS, one hashed join instead of a sub-plan per row. */
static char *existing_key(const walker_t *w, const catalog_table_t *t, bool probe_each)
{
    sqlbuf_t probe = {0};
    if (t->rls) {
        /* under row-level security the overlay shows the role only the rows
         * its policies let it see; a key is taken whoever's row holds it, as
         * main's unique index says (a definer probe per row) */
        sqlbuf_printf(&probe, "epoch.\"_key_taken_%d\"(%lld, %lld, ", t->id,
                      (long long)w->s->cat->branch_id, (long long)w->s->cat->base_seq);
        dml_ident_list(&probe, t, "_n", COLS_KEY);
        sqlbuf_putc(&probe, ')');
        return sqlbuf_take(&probe);
    }
    sqlbuf_puts(&probe, probe_each ? "(SELECT true FROM " : "EXISTS (SELECT 1 FROM ");
    char *ov_plain = dml_branch_overlay(w, t, "_o");
    if (ov_plain)
        sqlbuf_puts(&probe, ov_plain);
    else
        probe.failed = true;
    free(ov_plain);
    SQLBUF_LIT(&probe, " WHERE ");
    overlay_key_match(&probe, t, "_o", "_n");
    sqlbuf_puts(&probe, probe_each ? " LIMIT 1) IS NOT NULL" : ")");
    return sqlbuf_take(&probe);
}

/* After _epoch_new: the checks of several rows' keys (CTEs), then the
 * INSERT of the rows into the delta, the arm that reports a key that
 * exists on the branch (existing: existing_key) and the conflict clause. */
static void insert_new_rows(sqlbuf_t *sb, const target_t *tg, const insert_shape_t *in,
                            const char *existing)
{
    const catalog_table_t *t = in->t;
    /* a key twice in this INSERT: checked first (the second row would
     * otherwise meet the first in the delta: 21000, not 23505) */
    if (in->several) {
        SQLBUF_LIT(sb, ", _epoch_dup AS (SELECT ");
        dml_duplicate_key_open(sb, t);
        dml_ident_list(sb, t, "_n", COLS_KEY);
        SQLBUF_LIT(sb, DUPLICATE_KEY_CLOSE " FROM (SELECT ");
        dml_ident_list(sb, t, NULL, COLS_KEY);
        SQLBUF_LIT(sb, " FROM _epoch_new GROUP BY ");
        dml_ident_list(sb, t, NULL, COLS_KEY);
        SQLBUF_LIT(sb, " HAVING count(*) > 1) _n LIMIT 1)");
        /* the first row whose key exists on the branch */
        if (!in->copy_rows)
            sqlbuf_printf(sb,
                          ", _epoch_first AS MATERIALIZED (SELECT min(_n.\"_epoch_ord\") AS o FROM "
                          "_epoch_new _n WHERE %s)",
                          existing);
    }
    sqlbuf_printf(sb, " INSERT INTO epoch.\"dv_%d\" AS ", t->id);
    sqlbuf_ident(sb, tg->alias);
    SQLBUF_LIT(sb, " (\"_epoch_branch\"");
    for (int i = 0; i < in->n; i++) {
        if (in->skip[i])
            continue;
        SQLBUF_LIT(sb, ", ");
        sqlbuf_ident(sb, t->cols[in->idx[i]]);
    }
    SQLBUF_LIT(sb, ") SELECT ");
    if (in->all_keys && in->do_nothing) {
        /* the first of several rows with one key wins, the others are skipped */
        SQLBUF_LIT(sb, "DISTINCT ON (");
        dml_ident_list(sb, t, "_n", COLS_KEY);
        SQLBUF_LIT(sb, ") ");
    }
    sqlbuf_puts(sb, tg->bid);
    for (int i = 0; i < in->n; i++) {
        if (in->skip[i])
            continue;
        SQLBUF_LIT(sb, ", _n.");
        sqlbuf_ident(sb, t->cols[in->idx[i]]);
    }
    SQLBUF_LIT(sb, " FROM _epoch_new _n");
    if (in->all_keys && in->do_nothing)
        /* the gate first (a one-time test, ordered before the probe by its
         * cost): a row skipped for its key is still a write the role must
         * be allowed, as on main */
        sqlbuf_printf(sb, " WHERE %s IS NOT NULL AND NOT %s", tg->bid, existing);
    else if (in->several)
        sqlbuf_puts(sb,
                    in->copy_rows
                        ? " WHERE NOT EXISTS (SELECT 1 FROM _epoch_dup)"
                        : " WHERE NOT EXISTS (SELECT 1 FROM _epoch_dup) AND _n.\"_epoch_ord\" <= "
                          "coalesce((SELECT o FROM _epoch_first), 9223372036854775807)");
    if (in->all_keys && !in->do_nothing) {
        /* a key that exists on the branch: checked after the rows went in
         * (of several, those up to the first such key), so their NOT NULL
         * and CHECK constraints come first, as in PostgreSQL, which checks
         * row by row (the delta checks them; a key live in the delta is
         * caught by the conflict clause too) */
        SQLBUF_LIT(sb, " UNION ALL SELECT NULL"); /* the branch: this arm returns no row */
        for (int i = 0; i < in->n; i++) {
            if (in->skip[i])
                continue;
            SQLBUF_LIT(sb, ", _n.");
            sqlbuf_ident(sb, t->cols[in->idx[i]]);
        }
        dml_deferred_duplicate_check(sb, t, "_epoch_new",
                                     in->several && !in->copy_rows
                                         ? "_n.\"_epoch_ord\" = (SELECT o FROM _epoch_first)"
                                         : existing);
    }
    /* a tombstone of the same key is replaced */
    dml_conflict_tail(sb, tg, in->do_nothing ? CONFLICT_INSERT_NOTHING : CONFLICT_INSERT, NULL);
}

/* The body of dml_insert_statement once the columns the source fills (idx,
 * skip: n of them) are known. */
static void insert_body(walker_t *w, json_object *body, size_t start, size_t end,
                        const target_t *tg, sqlbuf_t *sb, const int *idx, const bool *skip, int n)
{
    const catalog_table_t *t = tg->t;
    json_object *conflict = rw_get(body, "onConflictClause");
    const char *action = rw_get_str(conflict, "action");
    insert_shape_t in = {.t = t,
                         .select = rw_get(body, "selectStmt"),
                         .idx = idx,
                         .skip = skip,
                         .n = n,
                         .all_keys = true};
    in.do_nothing = action && strcmp(action, "ONCONFLICT_NOTHING") == 0;
    in.do_update = action && strcmp(action, "ONCONFLICT_UPDATE") == 0;
    const char *ov = rw_get_str(body, "override");
    if (ov && strcmp(ov, "OVERRIDING_NOT_SET") == 0)
        ov = NULL;
    for (int k = 0; k < t->ncols; k++) {
        if (!t->is_pk[k])
            continue;
        bool given = false;
        for (int i = 0; i < n; i++)
            given |= idx[i] == k && !skip[i];
        in.all_keys &= given;
    }
    if (!in.all_keys)
        in.do_update = false; /* a generated key is new: nothing to conflict with */
    size_t verb = lex_find_keyword(w->sql, start, end, "insert");
    size_t src;
    if (!source_start(w, body, verb, end, ov, &src))
        return;
    size_t on = conflict ? lex_find_keyword(w->sql, src, end, "on") : end;
    size_t ret = lex_find_keyword(w->sql, src, end, "returning");
    char **exprs = NULL;
    int *col_of = NULL, nset = 0;
    char *cwhere = NULL, *prefix = NULL, *source = NULL, *existing = NULL;
    if (in.do_update &&
        !conflict_update_clause(w, conflict, tg, on, ret, &exprs, &col_of, &nset, &cwhere))
        goto out;
    size_t src_end = on < ret ? on : ret;
    prefix = dml_prefix_text(w, body, start, verb);
    source = in.select ? rw_splice_range(w, src, src_end) : NULL;
    if (!prefix || (in.select && !source)) {
        rw_fail_oom(w);
        goto out;
    }
    /* several rows (with keys, to be checked): each row's place, so the rows
     * after the first one whose key exists are not written (PostgreSQL stops
     * there, before their constraints); one row cannot repeat a key */
    json_object *vals = rw_get(rw_get(in.select, "SelectStmt"), "valuesLists");
    bool one_row = !in.select || (vals && json_object_array_length(vals) == 1);
    in.several = in.all_keys && !in.do_nothing && !in.do_update && !one_row;
    in.copy_rows = strncmp(w->sql, COPY_INSERT_MARK, strlen(COPY_INSERT_MARK)) == 0;
    /* WITH [user's CTEs,] _epoch_new AS (source) */
    dml_with_prefix(sb, prefix);
    new_rows_cte(sb, &in, source);
    /* keys that exist on the branch: an error, or skipped with DO NOTHING */
    existing = existing_key(w, t, !in.select || vals);
    if (!existing) {
        rw_fail_oom(w);
        goto out;
    }
    if (in.do_update)
        dml_upsert_merge(w, sb, tg, exprs, col_of, nset, cwhere);
    else
        insert_new_rows(sb, tg, &in, existing);
    dml_emit_returning(w, sb, body, t, ret, end);
out:
    free(existing);
    free(prefix);
    free(source);
    dml_set_arrays_free(exprs, col_of, nset);
    free(cwhere);
}

void dml_insert_statement(walker_t *w, json_object *body, size_t start, size_t end,
                          const target_t *tg, sqlbuf_t *sb)
{
    const catalog_table_t *t = tg->t;
    json_object *select = rw_get(body, "selectStmt");
    json_object *conflict = rw_get(body, "onConflictClause");
    const char *action = rw_get_str(conflict, "action");
    bool do_nothing = action && strcmp(action, "ONCONFLICT_NOTHING") == 0;
    bool do_update = action && strcmp(action, "ONCONFLICT_UPDATE") == 0;
    /* DO NOTHING without a target is fine; with one, it must be the key */
    if ((do_update || (do_nothing && rw_get(conflict, "infer"))) &&
        !dml_conflict_on_key(w, conflict, t))
        return;
    const char *ov = rw_get_str(body, "override");
    if (ov && strcmp(ov, "OVERRIDING_NOT_SET") == 0)
        ov = NULL;
    /* columns, in the order the source fills them; skip[j]: source column j
     * is not written. Allocated per statement, sized by the column list (or
     * the table): a fixed array would drop or overrun names past its size. */
    int n = 0;
    int *idx = NULL;
    bool *skip = NULL;
    if (!insert_columns(w, body, select, t, &idx, &skip, &n))
        return;
    bool ok = insert_always_columns(w, select, t, idx, n, ov, skip) &&
              (!select || defaults_in_values(w, select, t, idx, skip, n));
    if (ok)
        insert_body(w, body, start, end, tg, sb, idx, skip, n);
    free(idx);
    free(skip);
}
