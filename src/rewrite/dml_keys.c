/*
 * dml_keys — an UPDATE that changes primary key values on a branch: the
 * rows to write are collected first (old and new values), the old keys no
 * row moves into become tombstones, the new rows are upserted, and a new
 * key that another row holds when the statement starts, or that two rows
 * move to, is a unique violation (23505), as PostgreSQL's non-deferrable
 * key checks each row at once (a key swap fails there too).
 *
 * The tombstones are written by a data-modifying CTE, which PostgreSQL
 * allows only in the WITH of the statement itself: when the UPDATE is a WITH
 * query (`WITH m AS (UPDATE t SET id = … RETURNING …) SELECT … FROM m`), the
 * CTEs it needs are put in that WITH, just before its own CTE, and it
 * becomes the INSERT of the new rows. They are named after the UPDATE's
 * place in the text (_epoch_rows_<offset>), so two such UPDATEs in one
 * query do not collide.
 *
 * Must never: leave the old key of a moved row alive on the branch, or let
 * two rows end with one key.
 */
#include <pg_query.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewrite/dml_internal.h"
#include "common/lexer.h"
#include "branch/overlay.h"

/* pk columns of t as "q.col, …", or with prefix as "q.<prefix><index>, …"
 * (the key columns renamed in a derived table) */
static void key_cols(sqlbuf_t *sb, const catalog_table_t *t, const char *q, const char *prefix)
{
    if (!prefix) {
        overlay_key_list(sb, t, q);
        return;
    }
    bool first = true;
    for (int k = 0; k < t->ncols; k++) {
        if (!t->is_pk[k])
            continue;
        if (!first)
            SQLBUF_LIT(sb, ", ");
        first = false;
        sqlbuf_printf(sb, "%s.", q);
        char name[300];
        snprintf(name, sizeof name, "%s%d", prefix, k);
        sqlbuf_ident(sb, name);
    }
}

/* The CommonTableExpr in node whose query's text starts at start (the
 * first byte inside its parentheses, found as rewrite_walk.c's cte_write finds
 * it): the position of its name, or (size_t)-1. */
static size_t cte_name_at(const char *sql, json_object *node, size_t start)
{
    if (json_object_is_type(node, json_type_array)) {
        size_t n = json_object_array_length(node);
        for (size_t i = 0; i < n; i++) {
            size_t at = cte_name_at(sql, json_object_array_get_idx(node, i), start);
            if (at != (size_t)-1)
                return at;
        }
        return (size_t)-1;
    }
    if (!json_object_is_type(node, json_type_object))
        return (size_t)-1;
    json_object *cte = rw_get(node, "CommonTableExpr");
    int loc = rw_get_int(cte, "location", -1);
    if (loc >= 0) {
        size_t len = strlen(sql);
        size_t open = lex_find_keyword(sql, (size_t)loc, len, "as");
        while (open < len && sql[open] != '(')
            open++;
        if (open + 1 == start)
            return (size_t)loc;
    }
    json_object_object_foreach(node, key, val)
    {
        (void)key;
        size_t at = cte_name_at(sql, val, start);
        if (at != (size_t)-1)
            return at;
    }
    return (size_t)-1;
}

/* Where the WITH query whose statement starts at start is named in the
 * client's text (the walker keeps no pointer to the whole tree, so the text
 * is parsed again: only for this rare statement); (size_t)-1 if not found. */
static size_t enclosing_cte(const walker_t *w, size_t start)
{
    PgQueryParseResult pr = pg_query_parse(w->sql);
    size_t at = (size_t)-1;
    if (!pr.error) {
        json_tokener *tok = json_tokener_new_ex(10000);
        json_object *tree =
            tok ? json_tokener_parse_ex(tok, pr.parse_tree, (int)strlen(pr.parse_tree)) : NULL;
        if (tok)
            json_tokener_free(tok);
        if (tree)
            at = cte_name_at(w->sql, tree, start);
        json_object_put(tree);
    }
    pg_query_free_parse_result(pr);
    return at;
}

/* `<rows> AS MATERIALIZED (SELECT …)`: each row the UPDATE writes, with its
 * old values (as _epoch_o<col>) and its new ones, and the whole rows of the
 * FROM items a RETURNING names (fs, or NULL). */
static void rows_cte(walker_t *w, sqlbuf_t *sb, const target_t *tg, const clauses_t *c,
                     char **exprs, const int *col_of, int nt, const from_scope_t *fs,
                     const char *rows)
{
    const catalog_table_t *t = tg->t;
    sqlbuf_printf(sb, "%s AS MATERIALIZED (SELECT ", rows);
    dml_distinct_on(sb, tg, c->from < c->end);
    for (int col = 0; col < t->ncols; col++) {
        char old[300];
        snprintf(old, sizeof old, "_epoch_o%d", col);
        sqlbuf_ident(sb, tg->alias);
        sqlbuf_putc(sb, '.');
        sqlbuf_ident(sb, t->cols[col]);
        SQLBUF_LIT(sb, " AS ");
        sqlbuf_ident(sb, old);
        SQLBUF_LIT(sb, ", ");
        dml_assigned_value(sb, tg, exprs, col_of, nt, col, true);
        SQLBUF_LIT(sb, " AS ");
        sqlbuf_ident(sb, t->cols[col]);
        sqlbuf_puts(sb, col + 1 < t->ncols ? ", " : "");
    }
    if (fs)
        dml_carry_from_rows(sb, fs);
    sqlbuf_printf(sb, " FROM %s", tg->overlay);
    if (c->from < c->end) {
        SQLBUF_LIT(sb, ", ");
        dml_emit_range(w, sb, c->from + 4, dml_next_clause(c, c->from));
    }
    if (c->where < c->end) {
        SQLBUF_LIT(sb, " WHERE ");
        dml_emit_range(w, sb, c->where + 5, dml_next_clause(c, c->where));
    }
    SQLBUF_LIT(sb, ")");
}

/* `, <gone> AS (INSERT …)`: tombstones for the old keys no row moves into. */
static void tombstones_cte(sqlbuf_t *sb, const target_t *tg, const char *rows, const char *gone)
{
    const catalog_table_t *t = tg->t;
    sqlbuf_printf(sb, ", %s AS (INSERT INTO epoch.\"dv_%d\" (\"_epoch_branch\", ", gone, t->id);
    dml_ident_list(sb, t, NULL, COLS_WRITTEN);
    sqlbuf_printf(sb, ", \"_epoch_deleted\") SELECT %s", tg->bid);
    for (int col = 0; col < t->ncols; col++) {
        if (!dml_col_in(t, col, COLS_WRITTEN))
            continue;
        char old[300];
        snprintf(old, sizeof old, "_epoch_o%d", col);
        SQLBUF_LIT(sb, ", _r.");
        sqlbuf_ident(sb, old);
    }
    sqlbuf_printf(sb, ", true FROM %s _r WHERE (", rows);
    key_cols(sb, t, "_r", "_epoch_o");
    SQLBUF_LIT(sb, ") NOT IN (SELECT ");
    key_cols(sb, t, "_s", NULL);
    sqlbuf_printf(sb, " FROM %s _s) ON CONFLICT (\"_epoch_branch\", ", rows);
    dml_ident_list(sb, t, NULL, COLS_KEY);
    SQLBUF_LIT(sb, ") DO UPDATE SET \"_epoch_deleted\" = true)");
}

/* The INSERT of the new rows of CTE rows, one per new key, ending with the
 * arm that reports a duplicate new key (23505) and the conflict clause. */
static void new_rows_insert(walker_t *w, sqlbuf_t *sb, const target_t *tg, const char *rows,
                            bool top)
{
    const catalog_table_t *t = tg->t;
    /* the new rows, one per new key (a key twice is reported below) */
    sqlbuf_printf(sb, "%sINSERT INTO epoch.\"dv_%d\" AS ", top ? " " : "", t->id);
    sqlbuf_ident(sb, tg->alias);
    SQLBUF_LIT(sb, " (\"_epoch_branch\", ");
    dml_ident_list(sb, t, NULL, COLS_WRITTEN);
    SQLBUF_LIT(sb, ") SELECT DISTINCT ON (");
    key_cols(sb, t, "_r", NULL);
    sqlbuf_printf(sb, ") %s, ", tg->bid);
    dml_ident_list(sb, t, "_r", COLS_WRITTEN);
    sqlbuf_printf(sb, " FROM %s _r", rows);
    /* then a new key that another row holds when the statement starts, or
     * that two rows move to: 23505, as PostgreSQL's non-deferrable key
     * checks each row at once (a key swap fails there too), after the new
     * rows' NOT NULL and CHECK constraints, as there */
    SQLBUF_LIT(sb, " UNION ALL SELECT NULL, "); /* the branch: this arm returns no row */
    dml_ident_list(sb, t, "_n", COLS_WRITTEN);
    sqlbuf_t src = {0}, cond = {0};
    SQLBUF_LIT(&src, "(SELECT _w.*, count(*) OVER (PARTITION BY ");
    key_cols(&src, t, "_w", NULL);
    sqlbuf_printf(&src, ") AS \"_epoch_n\" FROM %s _w)", rows);
    SQLBUF_LIT(&cond, "_n.\"_epoch_n\" > 1 OR ((");
    key_cols(&cond, t, "_n", NULL);
    SQLBUF_LIT(&cond, ") IS DISTINCT FROM (");
    key_cols(&cond, t, "_n", "_epoch_o");
    SQLBUF_LIT(&cond, ") AND EXISTS (SELECT 1 FROM ");
    char *probe = dml_branch_overlay(w, t, "_x");
    if (probe)
        sqlbuf_puts(&cond, probe);
    else
        cond.failed = true;
    free(probe);
    SQLBUF_LIT(&cond, " WHERE (");
    key_cols(&cond, t, "_x", NULL);
    SQLBUF_LIT(&cond, ") = (");
    key_cols(&cond, t, "_n", NULL);
    SQLBUF_LIT(&cond, ")))");
    if (src.failed || cond.failed)
        rw_fail_oom(w);
    else
        dml_deferred_duplicate_check(sb, t, sqlbuf_str(&src), sqlbuf_str(&cond));
    sqlbuf_free(&src);
    sqlbuf_free(&cond);
    dml_conflict_tail(sb, tg, CONFLICT_REPLACE, NULL);
}

/* UPDATE that changes primary key values: the old keys become tombstones,
 * the new rows are upserted, and a new key that another row holds on the
 * branch is a unique violation (even if this statement moves that row). */
void dml_update_keys(walker_t *w, json_object *body, const target_t *tg, const clauses_t *c,
                     char **exprs, const int *col_of, int nt, const from_scope_t *fs, char *prefix,
                     sqlbuf_t *sb, size_t start, bool top)
{
    char rows[64] = "_epoch_rows", gone[64] = "_epoch_gone";
    /* the CTEs: in the statement's own WITH, or (a WITH query) hoisted */
    sqlbuf_t hoisted = {0};
    size_t cte_at = 0;
    if (!top) {
        if (rw_get(body, "withClause")) {
            rw_fail(w, "0A000",
                    "Move the inner WITH queries to the outer WITH, or write it on main.",
                    "an UPDATE of primary key columns with a WITH clause of its own inside a "
                    "WITH query is not supported on branch \"%s\" yet",
                    rw_branch_name(w));
            return;
        }
        cte_at = enclosing_cte(w, start);
        if (cte_at == (size_t)-1) {
            rw_fail(w, "0A000", NULL, "epoch could not locate a data-modifying WITH query");
            return;
        }
        snprintf(rows, sizeof rows, "_epoch_rows_%zu", start);
        snprintf(gone, sizeof gone, "_epoch_gone_%zu", start);
    } else {
        dml_with_prefix(sb, prefix);
    }
    sqlbuf_t *ctes = top ? sb : &hoisted;
    rows_cte(w, ctes, tg, c, exprs, col_of, nt, fs, rows);
    tombstones_cte(ctes, tg, rows, gone);
    if (!top) {
        SQLBUF_LIT(ctes, ", ");
        char *text = sqlbuf_take(&hoisted);
        if (w->failed) {
            free(text);
            return;
        }
        rw_add_edit(w, cte_at, cte_at, text); /* before the CTE's name */
    }
    new_rows_insert(w, sb, tg, rows, top);
    if (fs) {
        dml_joined_returning(w, sb, body, tg, fs, rows, c->ret, c->end);
    } else {
        dml_emit_returning(w, sb, body, tg->t, c->ret, c->end);
    }
}
