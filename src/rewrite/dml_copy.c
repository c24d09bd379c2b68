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

/* The columns COPY's rows fill, as a quoted list: COPY's own list, or every
 * column but the generated ones. *listed: COPY named them. malloc'd; NULL
 * after failing (a column that does not exist or is generated, or out of
 * memory). */
static char *copy_columns(walker_t *w, json_object *body, const catalog_table_t *t, bool *listed)
{
    sqlbuf_t sb = {0};
    json_object *att = rw_get(body, "attlist");
    size_t na = att ? json_object_array_length(att) : 0;
    for (size_t i = 0; i < na; i++) {
        const char *name = rw_get_str(rw_get(json_object_array_get_idx(att, i), "String"), "sval");
        int col = name ? catalog_col_index(t, name) : -1;
        if (col < 0 || catalog_col_generated(t, col)) {
            sqlbuf_free(&sb);
            if (col < 0) {
                rw_fail(w, "42703", NULL, "column \"%s\" of relation \"%s\" does not exist",
                        name ? name : "?", t->name);
            } else {
                rw_fail(w, "42P10", NULL, "column \"%s\" is a generated column", name);
                rw_fail_detail(w, "Generated columns cannot be used in COPY."); /* as PostgreSQL */
            }
            return NULL;
        }
        if (i)
            SQLBUF_LIT(&sb, ", ");
        sqlbuf_ident(&sb, name);
    }
    if (!na)
        dml_ident_list(&sb, t, NULL, COLS_WRITTEN);
    *listed = na > 0;
    char *cols = sqlbuf_take(&sb);
    if (!cols)
        rw_fail_oom(w);
    return cols;
}

/* The INSERT the staging table's trigger runs (cols: copy_columns), made by
 * this same rewriter: its rewritten text, malloc'd; NULL after failing. */
static char *copy_insert_sql(walker_t *w, const catalog_table_t *t, const char *cols)
{
    sqlbuf_t sb = {0};
    SQLBUF_LIT(&sb, COPY_INSERT_MARK "INSERT INTO ");
    sqlbuf_ident(&sb, t->schema);
    sqlbuf_putc(&sb, '.');
    sqlbuf_ident(&sb, t->name);
    /* COPY is not subject to GENERATED ALWAYS: it stores identity values as given */
    sqlbuf_printf(&sb, " (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM new_rows", cols, cols);
    char *ins = sqlbuf_take(&sb);
    if (!ins) {
        rw_fail_oom(w);
        return NULL;
    }
    rw_result_t sub;
    rewrite_statement(w->s, ins, &sub);
    free(ins);
    if (sub.action != RW_REWRITTEN) {
        if (sub.action == RW_ERROR)
            rw_fail(w, sub.sqlstate, sub.hint, "%s", sub.message ? sub.message : "COPY failed");
        else
            dml_refuse(w, "this COPY");
        rewrite_result_free(&sub);
        return NULL;
    }
    char *sql = sub.sql;
    sub.sql = NULL;
    rewrite_result_free(&sub);
    return sql;
}

/* The setup statement: the staging table, and its trigger that runs insert
 * (copy_insert_sql) over the rows COPY puts in it. malloc'd; NULL after
 * failing. */
static char *copy_setup_sql(walker_t *w, const catalog_table_t *t, const char *insert)
{
    sqlbuf_t sb = {0};
    SQLBUF_LIT(&sb, "DROP TABLE IF EXISTS pg_temp.\"epoch_copy\"; CREATE TEMP TABLE \"epoch_copy\" "
                    "AS SELECT * FROM ");
    sqlbuf_ident(&sb, t->schema);
    sqlbuf_putc(&sb, '.');
    sqlbuf_ident(&sb, t->name);
    SQLBUF_LIT(&sb, " WITH NO DATA; CREATE TRIGGER \"epoch_copy_apply\" AFTER INSERT ON "
                    "pg_temp.\"epoch_copy\" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
                    "EXECUTE FUNCTION epoch._copy_apply(");
    sqlbuf_literal(&sb, insert);
    SQLBUF_LIT(&sb, ")");
    char *setup = sqlbuf_take(&sb);
    if (!setup)
        rw_fail_oom(w);
    return setup;
}

void dml_copy_from(walker_t *w, json_object *body, size_t start, size_t len, int nstmts)
{
    (void)start;
    (void)len;
    target_t tg;
    if (!dml_resolve_target(w, body, "COPY", &tg))
        return;
    dml_target_free(&tg);
    if (nstmts != 1) {
        dml_refuse(w, "COPY … FROM combined with other statements in one query");
        return;
    }
    const catalog_table_t *t = tg.t;
    bool listed = false;
    char *cols = copy_columns(w, body, t, &listed);
    if (!cols)
        return;
    bool generated = false;
    for (int col = 0; col < t->ncols; col++)
        generated |= catalog_col_generated(t, col);
    /* the staging table has every column, so COPY must name the ones it fills */
    bool name_cols = !listed && generated;
    char *staging = NULL;
    if (asprintf(&staging, "pg_temp.\"epoch_copy\"%s%s%s", name_cols ? " (" : "",
                 name_cols ? cols : "", name_cols ? ")" : "") < 0) {
        free(cols);
        rw_fail_oom(w);
        return;
    }
    char *insert = copy_insert_sql(w, t, cols);
    free(cols);
    char *setup = insert ? copy_setup_sql(w, t, insert) : NULL;
    free(insert);
    if (!setup) {
        free(staging);
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
    rw_add_edit(w, loc, end, staging);
    free(w->out->setup);
    w->out->setup = setup;
}
