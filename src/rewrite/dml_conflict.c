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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewrite/dml_internal.h"
#include "branch/overlay.h"

void dml_duplicate_key_open(FILE *f, const catalog_table_t *t)
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
void dml_deferred_duplicate_check(FILE *f, const catalog_table_t *t, const char *src,
                                  const char *cond)
{
    fprintf(f, " FROM (SELECT _n.* FROM %s _n WHERE %s OFFSET 0) _n WHERE ", src, cond);
    dml_duplicate_key_open(f, t);
    dml_ident_list(f, t, "_n", COLS_KEY);
    fputs(DUPLICATE_KEY_CLOSE, f);
}

void dml_conflict_tail(FILE *f, const target_t *tg, conflict_t mode, const recheck_t *rc)
{
    const catalog_table_t *t = tg->t;
    fputs(" ON CONFLICT (\"_epoch_branch\", ", f);
    dml_ident_list(f, t, NULL, COLS_KEY);
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
            if (!dml_col_in(t, i, COLS_WRITTEN))
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
            dml_duplicate_key_open(f, t);
            dml_ident_list(f, t, "excluded", COLS_KEY);
            fputs(DUPLICATE_KEY_CLOSE " END", f);
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
void dml_upsert_merge(walker_t *w, FILE *f, const target_t *tg, char **exprs, const int *col_of,
                      int nset, const char *cwhere)
{
    const catalog_table_t *t = tg->t;
    fprintf(f, " INSERT INTO epoch.\"d_%d\" AS ", t->id);
    overlay_ident(f, tg->alias);
    fputs(" (\"_epoch_branch\", ", f);
    dml_ident_list(f, t, NULL, COLS_WRITTEN);
    fprintf(f, ") SELECT %s", tg->bid);
    for (int col = 0; col < t->ncols; col++) {
        if (!dml_col_in(t, col, COLS_WRITTEN))
            continue;
        fputs(", CASE WHEN ", f);
        overlay_ident(f, tg->alias);
        fputs(".\"_epoch_present\" IS NULL THEN ", f);
        fputs("excluded.", f); /* _epoch_new carries every column here */
        overlay_ident(f, t->cols[col]);
        fputs(" ELSE ", f);
        dml_assigned_value(f, tg, exprs, col_of, nset, col, false);
        fputs(" END", f);
    }
    fputs(" FROM _epoch_new AS excluded LEFT JOIN (SELECT _x.*, true AS \"_epoch_present\" FROM ",
          f);
    char *ov = dml_branch_overlay(w, t, "_x");
    fputs(ov ? ov : "", f);
    free(ov);
    fputs(") AS ", f);
    overlay_ident(f, tg->alias);
    fputs(" ON ", f);
    char *alias = dml_quoted_ident(tg->alias);
    overlay_key_match(f, t, alias ? alias : "\"?\"", "excluded");
    free(alias);
    if (cwhere) {
        fputs(" WHERE ", f);
        overlay_ident(f, tg->alias);
        fprintf(f, ".\"_epoch_present\" IS NULL OR (%s)", cwhere);
    }
    dml_conflict_tail(f, tg, CONFLICT_REPLACE, NULL);
}
