/*
 * dml_text — the pieces of SQL text every write shape of the branch write
 * rewriter (dml.c) is built from: quoted names, the target table's column
 * lists, the head of the INSERT into its delta, the client's WITH prefix
 * extended with ours, and the refusal of what is not supported.
 *
 * Must never: paste a name into SQL unquoted (overlay_ident does the
 * quoting), or decide what a statement means (the callers do).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewrite/dml_internal.h"
#include "branch/overlay.h"

/* An identifier quoted as SQL text; malloc'd, NULL if out of memory. */
char *dml_quoted_ident(const char *name)
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

void dml_refuse(walker_t *w, const char *what)
{
    rw_fail(w, "0A000", "Run it on main, or rewrite it in a simpler form.",
            "%s is not supported on branch \"%s\" yet", what, rw_branch_name(w));
}

bool dml_col_in(const catalog_table_t *t, int col, cols_t which)
{
    return which == COLS_KEY ? t->is_pk[col] : which == COLS_ALL || !catalog_col_generated(t, col);
}

void dml_ident_list(FILE *f, const catalog_table_t *t, const char *qual, cols_t which)
{
    bool first = true;
    for (int i = 0; i < t->ncols; i++) {
        if (!dml_col_in(t, i, which))
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

void dml_upsert_head(FILE *f, const target_t *tg, bool deleted)
{
    fprintf(f, "INSERT INTO epoch.\"d_%d\" AS ", tg->t->id);
    overlay_ident(f, tg->alias);
    fputs(" (\"_epoch_branch\", ", f);
    dml_ident_list(f, tg->t, NULL, COLS_WRITTEN);
    fputs(deleted ? ", \"_epoch_deleted\") SELECT " : ") SELECT ", f);
}

void dml_distinct_on(FILE *f, const target_t *tg, bool joined)
{
    if (!joined)
        return; /* without FROM/USING each row appears once */
    fputs("DISTINCT ON (", f);
    dml_ident_list(f, tg->t, tg->alias, COLS_KEY);
    fputs(") ", f);
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

void dml_with_prefix(FILE *f, char *prefix)
{
    size_t pl = strlen(prefix);
    while (pl && (prefix[pl - 1] == ' ' || prefix[pl - 1] == '\n' || prefix[pl - 1] == '\t'))
        prefix[--pl] = '\0';
    if (pl)
        fprintf(f, "%s, ", prefix);
    else
        fputs("WITH ", f);
}

bool dml_is_star(json_object *item)
{
    json_object *fields =
        rw_get(rw_get(rw_get(rw_get(item, "ResTarget"), "val"), "ColumnRef"), "fields");
    size_t nf = fields ? json_object_array_length(fields) : 0;
    return nf && rw_get(json_object_array_get_idx(fields, nf - 1), "A_Star");
}
