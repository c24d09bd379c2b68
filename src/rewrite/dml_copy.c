/*
 * dml_copy — COPY t FROM on a branch: the rows go into a staging temp table
 * (pg_temp."epoch_copy", made by the setup statement this returns) whose
 * statement trigger passes them to the INSERT this same rewriter makes of
 * `INSERT INTO t … SELECT … FROM new_rows` (marked COPY_INSERT_MARK).
 *
 * Must never: COPY into the base table, or run with other statements in the
 * same query (the setup would run before all of them).
 */
#include <stdio.h>
#include <stdlib.h>

#include "rewrite/dml_internal.h"
#include "common/lexer.h"
#include "branch/overlay.h"

void dml_copy_from(walker_t *w, json_object *body, size_t start, size_t len, int nstmts)
{
    target_t tg;
    if (!dml_resolve_target(w, body, "COPY", &tg))
        return;
    free(tg.overlay);
    if (nstmts != 1) {
        dml_refuse(w, "COPY … FROM combined with other statements in one query");
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
        int col = name ? catalog_col_index(t, name) : -1;
        if (col < 0 || catalog_col_generated(t, col)) {
            fclose(f);
            free(cols);
            if (col < 0)
                rw_fail(w, "42703", NULL, "column \"%s\" of relation \"%s\" does not exist",
                        name ? name : "?", t->name);
            else {
                rw_fail(w, "42P10", NULL, "column \"%s\" is a generated column", name);
                rw_fail_detail(w, "Generated columns cannot be used in COPY."); /* as PostgreSQL */
            }
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
        dml_ident_list(f, t, NULL, COLS_WRITTEN);
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
            dml_refuse(w, "this COPY");
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
        dml_refuse(w, "this COPY");
        return;
    }
    (void)start;
    (void)len;
    rw_add_edit(w, loc, end, staging);
    free(w->out->setup);
    w->out->setup = setup;
}
