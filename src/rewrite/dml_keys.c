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

/* The CommonTableExpr in node whose query's text starts at start (the
 * first byte inside its parentheses, found as rewrite.c's cte_write finds
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

/* UPDATE that changes primary key values: the old keys become tombstones,
 * the new rows are upserted, and a new key that another row holds on the
 * branch is a unique violation (even if this statement moves that row). */
void dml_update_keys(walker_t *w, json_object *body, const target_t *tg, const clauses_t *c,
                     char **exprs, const int *col_of, int nt, const from_scope_t *fs, char *prefix,
                     FILE *f, size_t start, bool top)
{
    const catalog_table_t *t = tg->t;
    char rows[64] = "_epoch_rows", gone[64] = "_epoch_gone";
    /* the CTEs: in the statement's own WITH, or (a WITH query) hoisted */
    char *hoisted = NULL;
    size_t hlen = 0, cte_at = 0;
    FILE *h = f;
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
        if (!(h = open_memstream(&hoisted, &hlen))) {
            w->failed = true;
            return;
        }
    } else {
        dml_with_prefix(f, prefix);
    }
    fprintf(h, "%s AS MATERIALIZED (SELECT ", rows);
    dml_distinct_on(h, tg, c->from < c->end);
    for (int col = 0; col < t->ncols; col++) {
        char old[300];
        snprintf(old, sizeof old, "_epoch_o%d", col);
        overlay_ident(h, tg->alias);
        fputc('.', h);
        overlay_ident(h, t->cols[col]);
        fputs(" AS ", h);
        overlay_ident(h, old);
        fputs(", ", h);
        dml_assigned_value(h, tg, exprs, col_of, nt, col, true);
        fputs(" AS ", h);
        overlay_ident(h, t->cols[col]);
        fputs(col + 1 < t->ncols ? ", " : "", h);
    }
    if (fs)
        dml_carry_from_rows(h, fs);
    fprintf(h, " FROM %s", tg->overlay);
    if (c->from < c->end) {
        fputs(", ", h);
        dml_emit_range(w, h, c->from + 4, dml_next_clause(c, c->from));
    }
    if (c->where < c->end) {
        fputs(" WHERE ", h);
        dml_emit_range(w, h, c->where + 5, dml_next_clause(c, c->where));
    }
    /* tombstones for old keys no row moves into */
    fprintf(h, "), %s AS (INSERT INTO epoch.\"d_%d\" (\"_epoch_branch\", ", gone, t->id);
    dml_ident_list(h, t, NULL, COLS_WRITTEN);
    fprintf(h, ", \"_epoch_deleted\") SELECT %s", tg->bid);
    for (int col = 0; col < t->ncols; col++) {
        if (!dml_col_in(t, col, COLS_WRITTEN))
            continue;
        char old[300];
        snprintf(old, sizeof old, "_epoch_o%d", col);
        fputs(", _r.", h);
        overlay_ident(h, old);
    }
    fprintf(h, ", true FROM %s _r WHERE (", rows);
    key_cols(h, t, "_r", "_epoch_o");
    fputs(") NOT IN (SELECT ", h);
    key_cols(h, t, "_s", NULL);
    fprintf(h, " FROM %s _s) ON CONFLICT (\"_epoch_branch\", ", rows);
    dml_ident_list(h, t, NULL, COLS_KEY);
    fputs(") DO UPDATE SET \"_epoch_deleted\" = true)", h);
    if (!top) {
        fputs(", ", h);
        fclose(h);
        if (w->failed) {
            free(hoisted);
            return;
        }
        rw_add_edit(w, cte_at, cte_at, hoisted); /* before the CTE's name */
    }
    /* the new rows, one per new key (a key twice is reported below) */
    fprintf(f, "%sINSERT INTO epoch.\"d_%d\" AS ", top ? " " : "", t->id);
    overlay_ident(f, tg->alias);
    fputs(" (\"_epoch_branch\", ", f);
    dml_ident_list(f, t, NULL, COLS_WRITTEN);
    fputs(") SELECT DISTINCT ON (", f);
    key_cols(f, t, "_r", NULL);
    fprintf(f, ") %s, ", tg->bid);
    dml_ident_list(f, t, "_r", COLS_WRITTEN);
    fprintf(f, " FROM %s _r", rows);
    /* then a new key that another row holds when the statement starts, or
     * that two rows move to: 23505, as PostgreSQL's non-deferrable key
     * checks each row at once (a key swap fails there too), after the new
     * rows' NOT NULL and CHECK constraints, as there */
    fputs(" UNION ALL SELECT NULL, ", f); /* the branch: this arm returns no row */
    dml_ident_list(f, t, "_n", COLS_WRITTEN);
    char *src = NULL, *cond = NULL;
    size_t srclen = 0, condlen = 0;
    FILE *sf = open_memstream(&src, &srclen);
    if (sf) {
        fputs("(SELECT _w.*, count(*) OVER (PARTITION BY ", sf);
        key_cols(sf, t, "_w", NULL);
        fprintf(sf, ") AS \"_epoch_n\" FROM %s _w)", rows);
        fclose(sf);
    }
    FILE *cf = open_memstream(&cond, &condlen);
    if (cf) {
        fputs("_n.\"_epoch_n\" > 1 OR ((", cf);
        key_cols(cf, t, "_n", NULL);
        fputs(") IS DISTINCT FROM (", cf);
        key_cols(cf, t, "_n", "_epoch_o");
        fputs(") AND EXISTS (SELECT 1 FROM ", cf);
        char *probe = dml_branch_overlay(w, t, "_x");
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
    dml_deferred_duplicate_check(f, t, src, cond);
    free(src);
    free(cond);
    dml_conflict_tail(f, tg, CONFLICT_REPLACE, NULL);
    if (fs) {
        dml_joined_returning(w, f, body, tg, fs, rows, c->ret, c->end);
    } else {
        dml_emit_returning(w, f, body, t, c->ret, c->end);
    }
}
