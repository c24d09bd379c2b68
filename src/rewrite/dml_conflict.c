/*
 * dml_conflict — what happens when a row written to the delta meets a key
 * that is already there: the ON CONFLICT clause every write into the delta
 * ends with (take the proposed row, re-apply an UPDATE's SET and WHERE to
 * the current row, tombstone it, replace a tombstone), the unique
 * violations (23505) a branch reports itself, checked after the new rows'
 * NOT NULL and CHECK constraints as PostgreSQL does, and the client's own
 * INSERT … ON CONFLICT (key) DO UPDATE, which becomes one upsert.
 *
 * Must never: let a conflict on a key silently swallow a row, or accept an
 * ON CONFLICT target other than the primary key (other unique constraints
 * are not enforced on branches).
 */
#include <stdlib.h>
#include <string.h>

#include "rewrite/dml_internal.h"
#include "branch/overlay.h"

void dml_duplicate_key_open(sqlbuf_t *sb, const catalog_table_t *t)
{
    SQLBUF_LIT(sb, "epoch._duplicate_key(");
    sqlbuf_literal(sb, t->pk_name ? t->pk_name : "");
    SQLBUF_LIT(sb, ", ");
    sqlbuf_t keys = {0};
    bool first = true;
    for (int k = 0; k < t->ncols; k++)
        if (t->is_pk[k]) {
            sqlbuf_printf(&keys, "%s%s", first ? "" : ", ", t->cols[k]);
            first = false;
        }
    if (keys.failed)
        sb->failed = true; /* the message would lack the key's names */
    else
        sqlbuf_literal(sb, sqlbuf_str(&keys));
    sqlbuf_free(&keys);
    SQLBUF_LIT(sb, ", '(' || concat_ws(', ', ");
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
void dml_deferred_duplicate_check(sqlbuf_t *sb, const catalog_table_t *t, const char *src,
                                  const char *cond)
{
    sqlbuf_printf(sb, " FROM (SELECT _n.* FROM %s _n WHERE %s OFFSET 0) _n WHERE ", src, cond);
    dml_duplicate_key_open(sb, t);
    dml_ident_list(sb, t, "_n", COLS_KEY);
    sqlbuf_puts(sb, DUPLICATE_KEY_CLOSE);
}

void dml_conflict_tail(sqlbuf_t *sb, const target_t *tg, conflict_t mode, const recheck_t *rc)
{
    const catalog_table_t *t = tg->t;
    SQLBUF_LIT(sb, " ON CONFLICT (\"_epoch_branch\", ");
    dml_ident_list(sb, t, NULL, COLS_KEY);
    SQLBUF_LIT(sb, ") DO UPDATE SET ");
    if (mode == CONFLICT_DELETE) {
        SQLBUF_LIT(sb, "\"_epoch_deleted\" = true");
    } else if (mode == CONFLICT_UPDATE && rc->exprs && rc->nt == 0) {
        SQLBUF_LIT(sb, "\"_epoch_deleted\" = false"); /* SET gen = DEFAULT only: recomputed */
    } else if (mode == CONFLICT_UPDATE && rc->exprs) {
        /* in DO UPDATE both the row and EXCLUDED are in scope, so a bare
         * column would be ambiguous: evaluate the client's expressions in a
         * sub-SELECT over the current row, named as in the statement */
        sqlbuf_putc(sb, '(');
        for (int i = 0; i < rc->nt; i++) {
            sqlbuf_ident(sb, t->cols[rc->col_of[i]]);
            SQLBUF_LIT(sb, ", ");
        }
        SQLBUF_LIT(sb, "\"_epoch_deleted\") = (SELECT ");
        for (int i = 0; i < rc->nt; i++) {
            /* typed: in a sub-SELECT a bare 'x' or $1 is no longer typed by
             * the column it is assigned to */
            const char *type = t->types ? t->types[rc->col_of[i]] : NULL;
            if (type)
                sqlbuf_printf(sb, "(%s)::%s, ", rc->exprs[i], type);
            else
                sqlbuf_printf(sb, "(%s), ", rc->exprs[i]);
        }
        SQLBUF_LIT(sb, "false FROM (SELECT ");
        sqlbuf_ident(sb, tg->alias);
        SQLBUF_LIT(sb, ".*) AS ");
        sqlbuf_ident(sb, tg->alias);
        sqlbuf_putc(sb, ')');
    } else {
        for (int i = 0; i < t->ncols; i++) {
            if (!dml_col_in(t, i, COLS_WRITTEN))
                continue;
            sqlbuf_ident(sb, t->cols[i]);
            SQLBUF_LIT(sb, " = EXCLUDED.");
            sqlbuf_ident(sb, t->cols[i]);
            SQLBUF_LIT(sb, ", ");
        }
        SQLBUF_LIT(sb, "\"_epoch_deleted\" = false");
    }
    if (mode == CONFLICT_UPDATE || mode == CONFLICT_DELETE) {
        SQLBUF_LIT(sb, " WHERE NOT ");
        sqlbuf_ident(sb, tg->alias);
        SQLBUF_LIT(sb, ".\"_epoch_deleted\"");
        if (rc && rc->where) {
            SQLBUF_LIT(sb, " AND EXISTS (SELECT 1 FROM (SELECT ");
            sqlbuf_ident(sb, tg->alias);
            SQLBUF_LIT(sb, ".*) AS ");
            sqlbuf_ident(sb, tg->alias);
            sqlbuf_printf(sb, " WHERE %s)", rc->where);
        }
    } else if (mode == CONFLICT_INSERT || mode == CONFLICT_INSERT_NOTHING) {
        SQLBUF_LIT(sb, " WHERE ");
        if (mode == CONFLICT_INSERT)
            SQLBUF_LIT(sb, "CASE WHEN ");
        sqlbuf_ident(sb, tg->alias);
        SQLBUF_LIT(sb, ".\"_epoch_deleted\"");
        if (mode == CONFLICT_INSERT) {
            /* inserted meanwhile by another session: the unique violation
             * PostgreSQL would report after waiting for it */
            SQLBUF_LIT(sb, " THEN true ELSE ");
            dml_duplicate_key_open(sb, t);
            dml_ident_list(sb, t, "excluded", COLS_KEY);
            SQLBUF_LIT(sb, DUPLICATE_KEY_CLOSE " END");
        }
    }
}

/* The n inference columns are exactly those of one of t's other unique
 * indexes (as sets, as PostgreSQL infers an arbiter). */
static bool names_unique_index(const catalog_table_t *t, json_object *elems, int n)
{
    for (int u = 0; u < t->nuniques; u++) {
        int in_index = 0;
        for (int k = 0; k < t->ncols; k++)
            in_index += t->uniques[u].cols[k];
        bool all = n > 0;
        for (int i = 0; i < n && all; i++) {
            const char *name =
                rw_get_str(rw_get(json_object_array_get_idx(elems, i), "IndexElem"), "name");
            int col = name ? catalog_col_index(t, name) : -1;
            all = col >= 0 && t->uniques[u].cols[col];
        }
        if (all && n == in_index)
            return true;
    }
    return false;
}

/* ON CONFLICT must name the primary key (columns or constraint): other
 * unique constraints are not enforced on branches. */
bool dml_conflict_on_key(walker_t *w, json_object *conflict, const catalog_table_t *t)
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
        int col = name ? catalog_col_index(t, name) : -1;
        if (name && col < 0) { /* as PostgreSQL reports it, before anything else */
            rw_fail(w, "42703", NULL, "column \"%s\" does not exist", name);
            return false;
        }
        ok = ok && col >= 0 && t->is_pk[col];
    }
    if (ok)
        return true;
    if (!conname && !rw_get(infer, "whereClause") && !names_unique_index(t, elems, n))
        rw_fail(w, "42P10", NULL,
                "there is no unique or exclusion constraint matching the ON CONFLICT "
                "specification"); /* as PostgreSQL says it */
    else
        rw_fail(w, "0A000",
                "Name the primary key: ON CONFLICT (key columns). Other unique "
                "constraints are not enforced on branches.",
                "ON CONFLICT on branch \"%s\" must target the primary key of \"%s\"",
                rw_branch_name(w), t->name);
    return false;
}

/* INSERT … ON CONFLICT (key) DO UPDATE on a branch: one upsert into the
 * delta whose rows are, per proposed row, the proposed values when the key
 * is new on the branch, or the existing row with the SET applied (the
 * client's expressions see `excluded` and the target alias as usual). */
void dml_upsert_merge(walker_t *w, sqlbuf_t *sb, const target_t *tg, char **exprs,
                      const int *col_of, int nset, const char *cwhere)
{
    const catalog_table_t *t = tg->t;
    sqlbuf_printf(sb, " INSERT INTO epoch.\"dv_%d\" AS ", t->id);
    sqlbuf_ident(sb, tg->alias);
    SQLBUF_LIT(sb, " (\"_epoch_branch\", ");
    dml_ident_list(sb, t, NULL, COLS_WRITTEN);
    sqlbuf_printf(sb, ") SELECT %s", tg->bid);
    for (int col = 0; col < t->ncols; col++) {
        if (!dml_col_in(t, col, COLS_WRITTEN))
            continue;
        SQLBUF_LIT(sb, ", CASE WHEN ");
        sqlbuf_ident(sb, tg->alias);
        SQLBUF_LIT(sb, ".\"_epoch_present\" IS NULL THEN ");
        SQLBUF_LIT(sb, "excluded."); /* _epoch_new carries every column here */
        sqlbuf_ident(sb, t->cols[col]);
        SQLBUF_LIT(sb, " ELSE ");
        dml_assigned_value(sb, tg, exprs, col_of, nset, col, false);
        SQLBUF_LIT(sb, " END");
    }
    SQLBUF_LIT(
        sb,
        " FROM _epoch_new AS excluded LEFT JOIN (SELECT _x.*, true AS \"_epoch_present\" FROM ");
    char *ov = dml_branch_overlay(w, t, "_x");
    if (ov)
        sqlbuf_puts(sb, ov);
    else
        rw_fail_oom(w);
    free(ov);
    SQLBUF_LIT(sb, ") AS ");
    sqlbuf_ident(sb, tg->alias);
    SQLBUF_LIT(sb, " ON ");
    char *alias = dml_quoted_ident(tg->alias);
    if (alias)
        overlay_key_match(sb, t, alias, "excluded");
    else
        rw_fail_oom(w);
    free(alias);
    if (cwhere) {
        SQLBUF_LIT(sb, " WHERE ");
        sqlbuf_ident(sb, tg->alias);
        sqlbuf_printf(sb, ".\"_epoch_present\" IS NULL OR (%s)", cwhere);
    }
    dml_conflict_tail(sb, tg, CONFLICT_REPLACE, NULL);
}
