/*
 * dml_text — the pieces of SQL text every write shape of the branch write
 * rewriter (dml.c) is built from: quoted names, the target table's column
 * lists, the head of the INSERT into its delta, the client's WITH prefix
 * extended with ours, and the refusal of what is not supported.
 *
 * Must never: paste a name into SQL unquoted (sqlbuf_ident does the
 * quoting), or decide what a statement means (the callers do).
 */
#include <stdlib.h>
#include <string.h>

#include "rewrite/dml_internal.h"

/* An identifier quoted as SQL text; malloc'd, NULL if out of memory. */
char *dml_quoted_ident(const char *name)
{
    sqlbuf_t sb = {0};
    sqlbuf_ident(&sb, name);
    return sqlbuf_take(&sb);
}

void dml_refuse(walker_t *w, const char *what)
{
    rw_fail(w, "0A000", "Run it on main, or rewrite it in a simpler form.",
            "%s is not supported on branch \"%s\" yet", what, rw_branch_name(w));
}

bool dml_col_in(const catalog_table_t *t, int col, cols_t which)
{
    return which == COLS_KEY ? t->is_pk[col] : which == COLS_ALL || !catalog_col_generated(t, col);
}

void dml_ident_list(sqlbuf_t *sb, const catalog_table_t *t, const char *qual, cols_t which)
{
    bool first = true;
    for (int i = 0; i < t->ncols; i++) {
        if (!dml_col_in(t, i, which))
            continue;
        if (!first)
            SQLBUF_LIT(sb, ", ");
        first = false;
        if (qual) {
            sqlbuf_ident(sb, qual);
            sqlbuf_putc(sb, '.');
        }
        sqlbuf_ident(sb, t->cols[i]);
    }
}

void dml_upsert_head(sqlbuf_t *sb, const target_t *tg, bool deleted)
{
    sqlbuf_printf(sb, "INSERT INTO epoch.\"dv_%d\" AS ", tg->t->id);
    sqlbuf_ident(sb, tg->alias);
    SQLBUF_LIT(sb, " (\"_epoch_branch\", ");
    dml_ident_list(sb, tg->t, NULL, COLS_WRITTEN);
    sqlbuf_puts(sb, deleted ? ", \"_epoch_deleted\") SELECT " : ") SELECT ");
}

void dml_distinct_on(sqlbuf_t *sb, const target_t *tg, bool joined)
{
    if (!joined)
        return; /* without FROM/USING each row appears once */
    SQLBUF_LIT(sb, "DISTINCT ON (");
    dml_ident_list(sb, tg->t, tg->alias, COLS_KEY);
    SQLBUF_LIT(sb, ") ");
}

/* Drop the edits recorded inside [from, to) once its text has been taken:
 * the walker visits the source of a multiple-column assignment once per
 * target column, so the edits inside it come in copies. */
void dml_drop_edits(walker_t *w, size_t from, size_t to)
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

void dml_with_prefix(sqlbuf_t *sb, char *prefix)
{
    size_t pl = strlen(prefix);
    while (pl && (prefix[pl - 1] == ' ' || prefix[pl - 1] == '\n' || prefix[pl - 1] == '\t'))
        prefix[--pl] = '\0';
    if (pl)
        sqlbuf_printf(sb, "%s, ", prefix);
    else
        SQLBUF_LIT(sb, "WITH ");
}

bool dml_is_star(json_object *item)
{
    json_object *fields =
        rw_get(rw_get(rw_get(rw_get(item, "ResTarget"), "val"), "ColumnRef"), "fields");
    size_t nf = fields ? json_object_array_length(fields) : 0;
    return nf && rw_get(json_object_array_get_idx(fields, nf - 1), "A_Star");
}
