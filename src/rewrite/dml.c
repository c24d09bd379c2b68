/*
 * dml — INSERT, UPDATE and DELETE on a tracked table on a branch become one
 * INSERT … ON CONFLICT into the table's delta (epoch."d_<id>"), built from the
 * client's own clauses (their text, with the reads inside them rewritten):
 *
 *   UPDATE t SET c = e FROM f WHERE w RETURNING r
 *     → INSERT INTO d AS t (branch, cols) SELECT B, <e or t.c> FROM <overlay> AS t, f WHERE w
 *       ON CONFLICT (branch, key) DO UPDATE SET cols = EXCLUDED.cols, deleted = false RETURNING r
 *   (SET (a, b) = (x, y) / ROW(x, y) gives each column its item; SET (a, b)
 *   = (SELECT …) a scalar sub-SELECT of each column of it; SET a[i] = x the
 *   array with element i replaced, spelled out in SQL)
 *   DELETE FROM t USING f WHERE w RETURNING r
 *     → the same with the old values and deleted = true (a tombstone)
 *   INSERT INTO t (cols) <source> RETURNING r
 *     → the source as a CTE, a check that no key exists on the branch (23505
 *       otherwise, like PostgreSQL), then INSERT … ON CONFLICT (replacing a
 *       tombstone of the same key)
 *
 * The CommandComplete of an UPDATE/DELETE then says INSERT 0 n; the result's
 * tags[] tell the session layer to put UPDATE n / DELETE n back.
 *
 * Stored generated columns are never named in what is written: the delta
 * has their expressions and computes them. The delta has no identity
 * columns, so the rules PostgreSQL's rewriter applies to GENERATED ALWAYS
 * (and OVERRIDING) are applied here, with its SQLSTATE and wording. *
 * This file: the entry point (dml_statement), the write's target, the
 * clauses of an UPDATE/DELETE and their plain shapes. The other shapes are
 * in dml_set.c (SET lists), dml_insert.c (INSERT), dml_conflict.c (the
 * delta's ON CONFLICT, duplicate keys, the client's ON CONFLICT DO UPDATE),
 * dml_keys.c (UPDATE of key columns), dml_returning.c (RETURNING),
 * dml_copy.c (COPY … FROM) and dml_text.c (the shared pieces of SQL).
 *
 * Must never: write to the base table. Anything this file does not handle is
 * refused with 0A000 and a hint.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewrite/dml_internal.h"
#include "common/lexer.h"

/* ARRAY['a', …] of the names in list (ResTarget name, or String sval for
 * COPY's column list); NULL when there is none: every column. */
static void column_names(sqlbuf_t *sb, json_object *list)
{
    size_t n = list ? json_object_array_length(list) : 0;
    if (n == 0) {
        SQLBUF_LIT(sb, "NULL");
        return;
    }
    SQLBUF_LIT(sb, "ARRAY[");
    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(list, i);
        const char *name = rw_get_str(rw_get(item, "ResTarget"), "name");
        if (!name)
            name = rw_get_str(rw_get(item, "String"), "sval");
        if (i)
            SQLBUF_LIT(sb, ", ");
        sqlbuf_literal(sb, name ? name : "");
    }
    SQLBUF_LIT(sb, "]::text[]");
}

/* "(SELECT epoch._live_write(branch, 'table'::regclass, 'kind', columns))":
 * the branch still exists and the role may write the table as the
 * statement does, by PostgreSQL's rules (docs/privileges.md); without live,
 * the privilege part alone ("(SELECT epoch._may_write('table'::regclass,
 * 'kind', columns))"). malloc'd, NULL after failing. An InitPlan: evaluated
 * once, when first needed. */
static char *write_gate(walker_t *w, json_object *body, const char *verb, const catalog_table_t *t,
                        bool live)
{
    bool update = strcmp(verb, "UPDATE") == 0, del = strcmp(verb, "DELETE") == 0;
    sqlbuf_t rel = {0}, sb = {0};
    sqlbuf_ident(&rel, t->schema);
    sqlbuf_putc(&rel, '.');
    sqlbuf_ident(&rel, t->name);
    if (live)
        sqlbuf_printf(&sb, "(SELECT epoch._live_write(%lld, ", (long long)w->s->cat->branch_id);
    else
        SQLBUF_LIT(&sb, "(SELECT epoch._may_write(");
    sqlbuf_literal(&sb, sqlbuf_str(&rel));
    sqlbuf_printf(&sb, "::regclass, '%s', ", update ? "update" : del ? "delete" : "insert");
    if (del)
        SQLBUF_LIT(&sb, "NULL");
    else
        column_names(&sb, rw_get(body, update                      ? "targetList"
                                       : strcmp(verb, "COPY") == 0 ? "attlist"
                                                                   : "cols"));
    SQLBUF_LIT(&sb, "))");
    bool oom = rel.failed;
    sqlbuf_free(&rel);
    char *out = sqlbuf_take(&sb);
    if (!out || oom) {
        free(out);
        rw_fail_oom(w);
        return NULL;
    }
    return out;
}

/* The target rows of an UPDATE/DELETE, "(…) AS alias", malloc'd (NULL when
 * memory ran out): the branch's rows, behind a one-time test of the role's
 * right to write them (gate: the write gate's privilege part, so that a
 * statement that changes no row is refused as on main; the gate in tg->bid
 * runs only with a first row) and, under row-level security, only the rows
 * the table's UPDATE (DELETE) policies let the role change, as PostgreSQL's
 * USING (the overlay already shows only what its SELECT policies let it
 * see; the WITH CHECK of new rows is the write check's, functions/access.sql). */
static char *write_targets(const walker_t *w, const catalog_table_t *t, const char *alias,
                           const char *gate, bool update)
{
    char *inner = rw_overlay_text(t, NULL, w->s->cat->branch_id, w->s->cat->base_seq, -1, NULL,
                                  NULL);
    if (!inner)
        return NULL;
    sqlbuf_t sb = {0};
    sqlbuf_printf(&sb, "(SELECT * FROM %s _rw WHERE %s", inner, gate);
    if (t->rls)
        sqlbuf_printf(&sb,
                      " AND (SELECT epoch.\"_rls_fresh_%d\"()) AND "
                      "epoch.\"_rls_ok_%d\"('%c', to_jsonb(_rw))",
                      t->id, t->id, update ? 'w' : 'd');
    SQLBUF_LIT(&sb, ") AS ");
    sqlbuf_ident(&sb, alias);
    free(inner);
    return sqlbuf_take(&sb);
}

bool dml_resolve_target(walker_t *w, json_object *body, const char *verb, target_t *tg)
{
    json_object *rel = rw_get(body, "relation");
    const char *relname = rw_get_str(rel, "relname");
    const char *schema = rw_get_str(rel, "schemaname");
    memset(tg, 0, sizeof *tg);
    if (!relname)
        return false;
    if (schema && strchr(schema, '@')) {
        rw_fail(w, "0A000", "Switch to that branch with SET epoch.branch to change its rows.",
                "cannot %s \"%s\".%s: a \"@ref\" reference is read-only", verb, schema, relname);
        return false;
    }
    if (!w->s->cat) {
        w->need_catalog = true;
        return false;
    }
    tg->t = catalog_find(w->s->cat, schema, relname);
    if (!tg->t) {
        rw_fail(w, "0A000",
                "Track it on main first with SELECT epoch.track('table'), or write it on main.",
                "writes to untracked table \"%s\" are not allowed on branch \"%s\"", relname,
                rw_branch_name(w));
        return false;
    }
    for (int k = 0; k < tg->t->ncols; k++)
        if (tg->t->is_pk[k] && catalog_col_generated(tg->t, k)) {
            /* the key of a row would change with the columns it is computed
             * from, which the branch's key checks do not follow */
            rw_fail(w, "0A000", "Write it on main.",
                    "writes to table \"%s\" are not supported on branch \"%s\": its primary "
                    "key has the generated column \"%s\"",
                    relname, rw_branch_name(w), tg->t->cols[k]);
            tg->t = NULL;
            return false;
        }
    const char *alias = rw_get_str(rw_get(rel, "alias"), "aliasname");
    tg->alias = alias ? alias : relname;
    /* a branch deleted under the session must not silently swallow writes */
    tg->bid = write_gate(w, body, verb, tg->t, true);
    if (!tg->bid)
        return false;
    bool update = strcmp(verb, "UPDATE") == 0;
    if (update || strcmp(verb, "DELETE") == 0) {
        char *gate = write_gate(w, body, verb, tg->t, false);
        tg->overlay = gate ? write_targets(w, tg->t, tg->alias, gate, update) : NULL;
        free(gate);
    } else {
        tg->overlay = dml_branch_overlay(w, tg->t, tg->alias);
    }
    if (!tg->overlay) {
        dml_target_free(tg);
        rw_fail_oom(w);
        return false;
    }
    return true;
}

void dml_target_free(target_t *tg)
{
    free(tg->bid);
    free(tg->overlay);
    tg->bid = tg->overlay = NULL;
}

char *dml_branch_overlay(const walker_t *w, const catalog_table_t *t, const char *alias)
{
    /* writes happen on a branch's working rows (a session at a point is read-only) */
    return rw_overlay_text(t, NULL, w->s->cat->branch_id, w->s->cat->base_seq, -1, alias, NULL);
}

/* Text of the WITH prefix (up to the verb), with its edits applied; "" if
 * none. */
char *dml_prefix_text(walker_t *w, json_object *body, size_t start, size_t verb)
{
    if (!rw_get(body, "withClause"))
        return strdup("");
    return rw_splice_range(w, start, verb);
}

bool dml_find_clauses(walker_t *w, json_object *body, const char *verb, const char *set_kw,
                      const char *from_kw, size_t start, size_t end, clauses_t *c)
{
    c->end = end;
    c->verb = lex_find_keyword(w->sql, start, end, verb);
    size_t after = c->verb;
    c->set = set_kw ? lex_find_keyword(w->sql, after, end, set_kw) : end;
    if (set_kw)
        after = c->set;
    c->from = lex_find_keyword(w->sql, after, end, from_kw);
    c->where = lex_find_keyword(w->sql, after, end, "where");
    c->ret = lex_find_keyword(w->sql, after, end, "returning");
    bool has_from = rw_get(body, strcmp(from_kw, "using") == 0 ? "usingClause" : "fromClause");
    bool ok = c->verb < end && (!set_kw || c->set < end) && (c->from < end) == has_from &&
              (c->where < end) == (rw_get(body, "whereClause") != NULL) &&
              (c->ret < end) == (rw_get(body, "returningList") != NULL) &&
              (c->from == end || c->where == end || c->from < c->where) &&
              (c->where == end || c->ret == end || c->where < c->ret) &&
              (c->from == end || c->ret == end || c->from < c->ret);
    if (!ok)
        dml_refuse(w, "this form of the statement");
    return ok;
}

size_t dml_next_clause(const clauses_t *c, size_t pos)
{
    size_t best = c->end;
    size_t cand[] = {c->from, c->where, c->ret};
    for (int i = 0; i < 3; i++)
        if (cand[i] > pos && cand[i] < best)
            best = cand[i];
    return best;
}

void dml_emit_range(walker_t *w, sqlbuf_t *sb, size_t from, size_t to)
{
    char *text = rw_splice_range(w, from, to);
    if (text)
        sqlbuf_puts(sb, text);
    else
        rw_fail_oom(w);
    free(text);
}

bool dml_where_current_of(walker_t *w, const clauses_t *c)
{
    size_t end = dml_next_clause(c, c->where);
    if (c->where >= c->end || lex_find_keyword(w->sql, c->where, end, "current") >= end)
        return false;
    dml_refuse(w, "WHERE CURRENT OF");
    return true;
}

static void emit_tail(walker_t *w, sqlbuf_t *sb, json_object *body, const target_t *tg,
                      const clauses_t *c, const char *from_kw, conflict_t mode, recheck_t *rc)
{
    bool joined = c->from < c->end;
    if (joined) {
        SQLBUF_LIT(sb, ", ");
        dml_emit_range(w, sb, c->from + strlen(from_kw), dml_next_clause(c, c->from));
    }
    char *where = NULL;
    if (c->where < c->end) {
        if (dml_where_current_of(w, c))
            return;
        where = rw_splice_range(w, c->where + 5, dml_next_clause(c, c->where));
        if (!where) {
            rw_fail_oom(w);
            return;
        }
        sqlbuf_printf(sb, " WHERE %s", where);
    }
    /* with FROM/USING the SET and WHERE may name the other items, which the
     * conflict clause cannot see: take the computed row, skip tombstones */
    recheck_t none = {0};
    if (rc) {
        rc->where = joined ? NULL : where;
        if (joined)
            rc->exprs = NULL;
    }
    dml_conflict_tail(sb, tg, mode, rc ? rc : &none);
    free(where);
    dml_emit_returning(w, sb, body, tg->t, c->ret, c->end);
}

static void update_statement(walker_t *w, json_object *body, size_t start, size_t end,
                             const target_t *tg, char *prefix, sqlbuf_t *sb, bool top)
{
    clauses_t c;
    if (!dml_find_clauses(w, body, "update", "set", "from", start, end, &c))
        return;
    json_object *targets = rw_get(body, "targetList");
    char **exprs = NULL;
    int *col_of = NULL;
    if (!dml_set_arrays(w, tg->t, &exprs, &col_of))
        return;
    int nt = dml_parse_set_list(w, targets, c.set + 3, dml_next_clause(&c, c.set), tg, exprs,
                                col_of, true);
    bool key_change = false;
    for (int i = 0; i < nt; i++)
        key_change |= tg->t->is_pk[col_of[i]];
    /* nt = 0: only generated columns were SET (to DEFAULT): the rows are
     * written unchanged and the delta computes those columns again */
    from_scope_t fs;
    bool with_from = nt >= 0 && !w->failed && c.from < c.end &&
                     dml_returning_needs_from(w, body, tg, "fromClause", &fs);
    if (nt >= 0 && !w->failed && key_change) {
        if (!dml_where_current_of(w, &c)) /* refused as for the other writes */
            dml_update_keys(w, body, tg, &c, exprs, col_of, nt, with_from ? &fs : NULL, prefix, sb,
                            start, top);
    } else if (with_from) {
        dml_joined_write(w, sb, body, tg, &c, "from", exprs, col_of, nt, &fs, prefix);
    } else if (nt >= 0 && !w->failed) {
        sqlbuf_puts(sb, prefix);
        dml_upsert_head(sb, tg, false);
        dml_distinct_on(sb, tg, c.from < c.end);
        sqlbuf_puts(sb, tg->bid);
        for (int col = 0; col < tg->t->ncols; col++) {
            if (!dml_col_in(tg->t, col, COLS_WRITTEN))
                continue;
            SQLBUF_LIT(sb, ", ");
            dml_assigned_value(sb, tg, exprs, col_of, nt, col, false);
        }
        sqlbuf_printf(sb, " FROM %s", tg->overlay);
        recheck_t rc = {exprs, col_of, nt, NULL};
        emit_tail(w, sb, body, tg, &c, "from", CONFLICT_UPDATE, &rc);
    }
    dml_set_arrays_free(exprs, col_of, nt);
}

static void delete_statement(walker_t *w, json_object *body, size_t start, size_t end,
                             const target_t *tg, char *prefix, sqlbuf_t *sb)
{
    clauses_t c;
    if (!dml_find_clauses(w, body, "delete", NULL, "using", start, end, &c))
        return;
    from_scope_t fs;
    if (c.from < c.end && dml_returning_needs_from(w, body, tg, "usingClause", &fs)) {
        dml_joined_write(w, sb, body, tg, &c, "using", NULL, NULL, 0, &fs, prefix);
        return;
    }
    if (w->failed)
        return;
    sqlbuf_puts(sb, prefix);
    /* DELETE FROM t: the FROM after DELETE is not a clause of ours */
    dml_upsert_head(sb, tg, true);
    dml_distinct_on(sb, tg, c.from < c.end);
    sqlbuf_puts(sb, tg->bid);
    SQLBUF_LIT(sb, ", ");
    dml_ident_list(sb, tg->t, tg->alias, COLS_WRITTEN);
    sqlbuf_printf(sb, ", true FROM %s", tg->overlay);
    recheck_t rc = {0};
    emit_tail(w, sb, body, tg, &c, "using", CONFLICT_DELETE, &rc);
}

void dml_statement(walker_t *w, const char *key, json_object *body, size_t start, size_t len,
                   bool top)
{
    bool update = strcmp(key, "UpdateStmt") == 0, del = strcmp(key, "DeleteStmt") == 0;
    target_t tg;
    if (!dml_resolve_target(w, body, update ? "UPDATE" : del ? "DELETE" : "INSERT INTO", &tg))
        return;
    /* an UPDATE/DELETE's command tag is fixed up by its place in the Query
     * (out->tags); an INSERT's needs no fix, so it may come anywhere */
    if (top && (update || del) && w->stmt_no >= RW_MAX_TAGS) {
        rw_fail(w, "54000", "Send the statements in several Query messages.",
                "an UPDATE or DELETE on branch \"%s\" must be among the first %d statements "
                "of a Query string (epoch's limit); this is statement %d",
                rw_branch_name(w), RW_MAX_TAGS, w->stmt_no + 1);
        dml_target_free(&tg);
        return;
    }
    rw_walk(w, body); /* reads inside the statement (subqueries, FROM, CTEs) */
    if (w->failed || w->need_catalog) {
        dml_target_free(&tg);
        return;
    }
    size_t end = start + len;
    sqlbuf_t sb = {0};
    if (!update && !del) {
        dml_insert_statement(w, body, start, end, &tg, &sb);
    } else {
        size_t verb = lex_find_keyword(w->sql, start, end, update ? "update" : "delete");
        char *prefix = dml_prefix_text(w, body, start, verb);
        if (!prefix)
            rw_fail_oom(w);
        else if (update)
            update_statement(w, body, start, end, &tg, prefix, &sb, top);
        else
            delete_statement(w, body, start, end, &tg, prefix, &sb);
        free(prefix);
    }
    dml_target_free(&tg);
    char *text = sqlbuf_take(&sb);
    if (!text)
        rw_fail_oom(w);
    if (w->failed) {
        free(text);
        return;
    }
    /* the whole statement is replaced; edits inside it are part of text */
    char *rest = rw_splice_range(w, start, end);
    free(rest);
    rw_add_edit(w, start, end, text);
    if (top && w->out->action != RW_SET_BRANCH && w->stmt_no == 0)
        w->flags |= RW_F_PREPARABLE; /* cleared by fill_result() if more statements follow */
    if (top && (update || del)) {
        size_t have = strlen(w->out->tags);
        while ((int)have < w->stmt_no)
            w->out->tags[have++] = '-';
        w->out->tags[have++] = update ? 'U' : 'D';
        w->out->tags[have] = '\0';
    }
}
