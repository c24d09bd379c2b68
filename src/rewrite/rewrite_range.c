/*
 * rewrite_range — table references (RangeVar) and what replaces them: the
 * overlay of a tracked table on the session's branch or at a "@ref" (with
 * the key conditions of the query's WHERE copied into it), main's live table
 * for "@main", the rewritten definition of a view over tracked tables,
 * COPY t TO as a query, TABLESAMPLE moved into the overlay, and a
 * schema-qualified column of a replaced table.
 *
 * Must never: leave a tracked table's name in a statement on a branch, or
 * read a ref the session cannot read ("@ref" is read-only).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "branch/overlay.h"
#include "branch/ref.h"
#include "common/lexer.h"
#include "common/sqlbuf.h"
#include "rewrite/rewrite_internal.h"

/* The replacement text for a tracked table at a ref: a "@ref" named in the
 * query (resolved by PostgreSQL when the statement runs), else the session's
 * state (bid, base, point; point -1: the branch's working rows). */
char *rw_overlay_text(const catalog_table_t *t, const char *ref, int64_t bid, int64_t base,
                      int64_t point, const char *alias_for, const overlay_narrow_t *n)
{
    static const overlay_narrow_t everything = {0};
    if (!n)
        n = &everything;
    const char *sample = n->sample;
    sqlbuf_t sb = {0};
    if (ref) {
        /* any ref (docs/history.md), resolved once per statement into the
         * CTE the three expressions read; TABLESAMPLE samples a branch's
         * working rows only, and _ref_read refuses a past state then */
        sqlbuf_t with = {0};
        SQLBUF_LIT(&with, "_epoch_ref AS MATERIALIZED (SELECT * FROM epoch._ref_read(");
        sqlbuf_literal(&with, ref);
        sqlbuf_printf(&with, ", %s))", sample ? "true" : "false");
        if (with.failed)
            sb.failed = true; /* the overlay cannot be written without it */
        else
            overlay_sql(&sb, t, sqlbuf_str(&with), "(SELECT branch_id FROM _epoch_ref)",
                        "(SELECT base_seq FROM _epoch_ref)",
                        sample ? NULL : "(SELECT point FROM _epoch_ref)", n);
        sqlbuf_free(&with);
    } else {
        char bs[32], ss[32], ps[32];
        snprintf(bs, sizeof bs, "%lld", (long long)bid);
        snprintf(ss, sizeof ss, "%lld", (long long)base);
        snprintf(ps, sizeof ps, "%lld", (long long)point);
        overlay_sql(&sb, t, NULL, bs, ss, point >= 0 ? ps : NULL, n);
    }
    if (alias_for) {
        SQLBUF_LIT(&sb, " AS ");
        sqlbuf_ident(&sb, alias_for);
    }
    return sqlbuf_take(&sb);
}

/* pg_catalog.pg_trigger, named as such or unqualified (pg_catalog comes
 * first on a search path that does not name it) */
static bool is_pg_trigger(const char *schemaname, const char *relname)
{
    return strcmp(relname, "pg_trigger") == 0 &&
           (!schemaname || strcmp(schemaname, "pg_catalog") == 0);
}

/* pg_trigger without epoch's capture triggers (track() names them
 * epoch_capture_*, on tracked tables and on their d_<id>), with tableoid as a
 * column (pg_dump reads t.tableoid) */
static char *hidden_capture_triggers(const char *alias_for)
{
    sqlbuf_t sb = {0};
    SQLBUF_LIT(&sb, "(SELECT _t.*, _t.tableoid FROM pg_catalog.pg_trigger _t WHERE _t.tgname NOT "
                    "IN ('epoch_capture_ins', 'epoch_capture_upd', 'epoch_capture_del', "
                    "'epoch_capture_trunc', 'epoch_capture_lock'))");
    if (alias_for) {
        SQLBUF_LIT(&sb, " AS ");
        sqlbuf_ident(&sb, alias_for);
    }
    return sqlbuf_take(&sb);
}

static char *qualified_name(const char *schema, const char *name)
{
    sqlbuf_t sb = {0};
    if (schema) {
        sqlbuf_ident(&sb, schema);
        sqlbuf_putc(&sb, '.');
    }
    sqlbuf_ident(&sb, name);
    return sqlbuf_take(&sb);
}

#define MAX_PREDS 8

/* The text span of a constant expression: a constant, a $n parameter, or
 * + - * / of such (`:start + 999`). false for anything that reads a column
 * or calls a function. */
static bool constant_span(const walker_t *w, json_object *v, size_t *start, size_t *end)
{
    json_object *c = rw_get(v, "A_Const");
    json_object *param = rw_get(v, "ParamRef");
    if (c || param) {
        int loc = rw_get_int(c ? c : param, "location", -1);
        if (loc < 0 || (c && rw_get(c, "isnull")))
            return false;
        *start = (size_t)loc;
        *end = lex_constant_end(w->sql, (size_t)loc);
        return *end > *start;
    }
    json_object *e = rw_get(v, "A_Expr");
    const char *kind = rw_get_str(e, "kind");
    json_object *names = rw_get(e, "name");
    if (!kind || !names || !json_object_is_type(names, json_type_array) ||
        json_object_array_length(names) != 1)
        return false;
    const char *op = rw_get_str(rw_get(json_object_array_get_idx(names, 0), "String"), "sval");
    if (strcmp(kind, "AEXPR_OP") != 0 || !op ||
        !(strcmp(op, "+") == 0 || strcmp(op, "-") == 0 || strcmp(op, "*") == 0 ||
          strcmp(op, "/") == 0))
        return false;
    size_t ls, le, rs, re;
    if (!constant_span(w, rw_get(e, "lexpr"), &ls, &le) ||
        !constant_span(w, rw_get(e, "rexpr"), &rs, &re))
        return false;
    *start = ls < rs ? ls : rs;
    *end = le > re ? le : re;
    return true;
}

/* The text of a constant expression, parenthesised, or NULL. */
static char *constant_text(const walker_t *w, json_object *v)
{
    size_t start, end;
    if (!constant_span(w, v, &start, &end))
        return NULL;
    int depth = 0; /* the span of (a + b) * c starts inside a parenthesis */
    for (size_t i = start; i < end; i++) {
        depth += w->sql[i] == '(' ? 1 : w->sql[i] == ')' ? -1 : 0;
        if (depth < 0)
            return NULL;
    }
    if (depth != 0)
        return NULL;
    char *text = NULL;
    bool compound = rw_get(v, "A_Expr") != NULL;
    if (asprintf(&text, compound ? "(%.*s)" : "%.*s", (int)(end - start), w->sql + start) < 0)
        return NULL;
    return text;
}

/* Conditions of the enclosing SELECT's WHERE (top-level AND conjuncts) that
 * compare one of t's key columns, written as `col` or `alias.col`, with
 * constants: safe to repeat inside the overlay, since every row the query
 * keeps satisfies them. Returns how many were put into out. */
static int key_predicates(const walker_t *w, const catalog_table_t *t, const char *alias,
                          overlay_pred_t *out)
{
    json_object *where = rw_get(w->cur_select, "whereClause");
    if (!where)
        return 0;
    json_object *args = NULL;
    json_object *b = rw_get(where, "BoolExpr");
    const char *op = rw_get_str(b, "boolop");
    if (b && op && strcmp(op, "AND_EXPR") == 0)
        args = rw_get(b, "args");
    size_t n = args ? json_object_array_length(args) : 1;
    int np = 0;
    for (size_t i = 0; i < n && np < MAX_PREDS; i++) {
        json_object *e = rw_get(args ? json_object_array_get_idx(args, i) : where, "A_Expr");
        const char *kind = rw_get_str(e, "kind");
        json_object *fields = rw_get(rw_get(rw_get(e, "lexpr"), "ColumnRef"), "fields");
        size_t nf = fields ? json_object_array_length(fields) : 0;
        if (!kind || nf < 1 || nf > 2)
            continue;
        const char *col =
            rw_get_str(rw_get(json_object_array_get_idx(fields, nf - 1), "String"), "sval");
        const char *qual =
            nf == 2 ? rw_get_str(rw_get(json_object_array_get_idx(fields, 0), "String"), "sval")
                    : NULL;
        if (!col || (nf == 2 && (!qual || strcmp(qual, alias) != 0)))
            continue;
        int ci = -1;
        for (int k = 0; k < t->ncols; k++)
            if (t->is_pk[k] && strcmp(t->cols[k], col) == 0)
                ci = k;
        if (ci < 0)
            continue;
        overlay_pred_t p = {.col = ci};
        if (strcmp(kind, "AEXPR_OP") == 0) {
            const char *o = rw_get_str(
                rw_get(json_object_array_get_idx(rw_get(e, "name"), 0), "String"), "sval");
            static const char *const ops[] = {"=", "<", "<=", ">", ">=", NULL};
            for (int k = 0; o && ops[k]; k++)
                if (strcmp(o, ops[k]) == 0)
                    p.op = ops[k];
            p.v1 = p.op ? constant_text(w, rw_get(e, "rexpr")) : NULL;
            if (!p.v1)
                continue;
        } else if (strcmp(kind, "AEXPR_BETWEEN") == 0) {
            json_object *items = rw_get(rw_get(e, "rexpr"), "List");
            items = rw_get(items, "items");
            if (!items || json_object_array_length(items) != 2)
                continue;
            p.op = "BETWEEN";
            p.v1 = constant_text(w, json_object_array_get_idx(items, 0));
            p.v2 = constant_text(w, json_object_array_get_idx(items, 1));
            if (!p.v1 || !p.v2) {
                free(p.v1);
                free(p.v2);
                continue;
            }
        } else {
            continue;
        }
        out[np++] = p;
    }
    return np;
}

/* Views inside views deeper than this are refused (PostgreSQL allows
 * cycles through CREATE OR REPLACE VIEW; it reports them when the view is
 * read, and so does this limit). */
#define MAX_VIEW_DEPTH 16

/* The replacement of a reference to view v: its definition, itself
 * rewritten for the session's branch (or for ref), in parentheses.
 * malloc'd; NULL when the walk failed. */
static char *view_text(walker_t *w, const catalog_view_t *v, const char *ref)
{
    if (v->security_barrier) {
        /* inlined, it would be an ordinary subquery: conditions of the query
         * could then run before the view's own, which the barrier forbids */
        rw_fail(w, "0A000",
                "Read the tables it reads in the query itself, or read the view on main (SET "
                "epoch.branch = 'main').",
                "view \"%s\" has security_barrier, which epoch cannot keep when it reads the view "
                "on branch \"%s\"",
                v->name, rw_branch_name(w));
        return NULL;
    }
    if (w->view_depth >= MAX_VIEW_DEPTH) {
        rw_fail(w, "0A000", "Read a view that nests fewer views, or read it on main.",
                "view \"%s\" nests views more than %d deep, more than epoch reads on a branch",
                v->name, MAX_VIEW_DEPTH);
        return NULL;
    }
    /* a walker of its own: the definition's names never see the query's
     * CTEs (its names are schema-qualified anyway) */
    walker_t *sub = calloc(1, sizeof *sub);
    if (!sub) {
        rw_fail_oom(w);
        return NULL;
    }
    sub->s = w->s;
    sub->view_depth = w->view_depth + 1;
    sub->view_ref = ref;
    rw_result_t r;
    rw_parse_and_walk(sub, v->definition, &r);
    free(sub);
    w->flags |= r.flags & (RW_F_SCHEMA | RW_F_REFRESH);
    const char *body = NULL;
    if (r.action == RW_REWRITTEN)
        body = r.sql;
    else if (r.action == RW_FORWARD && !(r.flags & RW_F_UNPARSED))
        body = v->definition;
    char *text = NULL;
    if (body) {
        if (asprintf(&text, "(%s)", body) < 0)
            rw_fail_oom(w);
    } else if (r.action == RW_ERROR) {
        rw_fail(w, r.sqlstate[0] ? r.sqlstate : "53200", r.hint, "%s",
                r.message ? r.message : "out of memory while rewriting the statement");
        if (r.detail)
            rw_fail_detail(w, "%s", r.detail);
        else
            rw_fail_detail(w, "It comes from the definition of view \"%s.%s\".", v->schema,
                           v->name);
    } else {
        rw_fail(w, "XX000", NULL, "epoch could not read the definition of view \"%s.%s\"",
                v->schema, v->name);
    }
    rewrite_result_free(&r);
    return text;
}

static bool in_scope(const walker_t *w, const char *name)
{
    for (int i = w->nscope - 1; i >= 0; i--)
        if (strcmp(w->scope[i], name) == 0)
            return true;
    return false;
}

/* Widen the span [*start, *end) of a table's name to what goes with it:
 * ONLY t, ONLY (t), and the inheritance star of t *. */
static void widen_to_only_and_star(const walker_t *w, size_t *start, size_t *end)
{
    size_t only = lex_keyword_before(w->sql, *start, "only");
    if (only != *start) {
        *start = only;
    } else {
        /* ONLY (t): the parentheses go with the name */
        size_t p = *start;
        while (p > 0 && (w->sql[p - 1] == ' ' || w->sql[p - 1] == '\t' || w->sql[p - 1] == '\n'))
            p--;
        if (p > 0 && w->sql[p - 1] == '(') {
            size_t kw = lex_keyword_before(w->sql, p - 1, "only");
            size_t close = lex_skip_blank(w->sql, *end);
            if (kw != p - 1 && w->sql[close] == ')') {
                *start = kw;
                *end = close + 1;
            }
        }
    }
    /* t *: the inheritance star is part of the name */
    size_t star = lex_skip_blank(w->sql, *end);
    if (w->sql[star] == '*')
        *end = star + 1;
}

/* A view over tracked tables becomes its rewritten definition (ref: the
 * "@ref" it is read at, NULL = the session's ref); TABLE v becomes a
 * SELECT. */
static void replace_view(walker_t *w, const catalog_view_t *view, const char *ref,
                         const char *relname, bool has_alias, size_t start, size_t end)
{
    char *body = view_text(w, view, ref);
    if (!body)
        return;
    size_t table_kw = lex_keyword_before(w->sql, start, "table");
    sqlbuf_t sb = {0};
    if (table_kw != start)
        SQLBUF_LIT(&sb, "SELECT * FROM "); /* the TABLE v command */
    sqlbuf_puts(&sb, body);
    if (!has_alias || table_kw != start) {
        SQLBUF_LIT(&sb, " AS ");
        sqlbuf_ident(&sb, relname);
    }
    free(body);
    rw_add_edit(w, table_kw != start ? table_kw : start, end, sqlbuf_take(&sb));
}

/* COPY t [(cols)] TO ...  ->  COPY (SELECT cols FROM overlay AS t) TO ... */
static void replace_copy_to(walker_t *w, const catalog_table_t *t, const char *ref,
                            const char *relname, size_t start, size_t end)
{
    size_t after = lex_skip_blank(w->sql, end);
    size_t pend = lex_paren_end(w->sql, after);
    char *cols = NULL;
    if (pend != after) {
        cols = strndup(w->sql + after + 1, pend - after - 2);
    } else if (t->generated) {
        /* as COPY t TO does: every column but the generated ones */
        sqlbuf_t sb = {0};
        bool first = true;
        for (int i = 0; i < t->ncols; i++) {
            if (catalog_col_generated(t, i))
                continue;
            if (!first)
                SQLBUF_LIT(&sb, ", ");
            first = false;
            sqlbuf_ident(&sb, t->cols[i]);
        }
        cols = sqlbuf_take(&sb);
    }
    if (!cols && (pend != after || t->generated)) {
        rw_fail_oom(w);
        return;
    }
    char *ov = rw_overlay_text(t, ref, w->s->cat->branch_id, w->s->cat->base_seq, w->s->cat->point,
                               relname, NULL);
    char *text = NULL;
    if (ov && asprintf(&text, "(SELECT %s FROM %s)", cols ? cols : "*", ov) < 0)
        text = NULL;
    free(ov);
    free(cols);
    rw_add_edit(w, start, pend != after ? pend : end, text);
}

/* A tracked table read in a FROM list becomes its overlay, with the key
 * conditions of the query's WHERE copied in and the TABLESAMPLE clause
 * moved in (w->sample); TABLE t becomes a SELECT. */
static void replace_table(walker_t *w, json_object *rv, const catalog_table_t *t, const char *ref,
                          const char *relname, size_t start, size_t end)
{
    int64_t bid = w->s->cat->branch_id, base = w->s->cat->base_seq, point = w->s->cat->point;
    bool has_alias = rw_get(rv, "alias") != NULL;
    size_t table_kw = lex_keyword_before(w->sql, start, "table");
    if (table_kw != start) {
        /* the TABLE t command: make it a SELECT */
        char *ov = rw_overlay_text(t, ref, bid, base, point, relname, NULL);
        char *text = NULL;
        if (ov && asprintf(&text, "SELECT * FROM %s", ov) < 0)
            text = NULL;
        free(ov);
        rw_add_edit(w, table_kw, end, text);
        return;
    }
    const char *name = has_alias ? rw_get_str(rw_get(rv, "alias"), "aliasname") : relname;
    overlay_pred_t preds[MAX_PREDS];
    int np = key_predicates(w, t, name, preds);
    /* under column privileges, only the columns the statement may read */
    bool *cols = t->col_acl ? rw_columns_read(w, t, name, rv) : NULL;
    overlay_narrow_t n = {.preds = preds, .npreds = np, .sample = w->sample, .cols = cols};
    rw_add_edit(w, start, end,
                rw_overlay_text(t, ref, bid, base, point, has_alias ? NULL : relname, &n));
    w->sample_used = w->sample != NULL;
    for (int i = 0; i < np; i++) {
        free(preds[i].v1);
        free(preds[i].v2);
    }
    free(cols);
}

/* Remember the name (alias or table) a replaced table goes by, for
 * rw_check_locks. */
static void note_replaced_name(walker_t *w, json_object *rv, const char *relname)
{
    const char **names =
        rw_grow_array(w->rewritten_names, &w->rewritten_cap, w->nlocked + 1, sizeof *names);
    if (!names) {
        rw_fail_oom(w);
        return;
    }
    const char *alias = rw_get_str(rw_get(rv, "alias"), "aliasname");
    w->rewritten_names = names;
    w->rewritten_names[w->nlocked++] = alias ? alias : relname;
}

/* A RangeVar read in a FROM list (or a COPY ... TO relation when copy_cols
 * is non-NULL: "*" or the column list text). */
void rw_range_var(walker_t *w, json_object *rv, bool writing, const char *copy_cols)
{
    const char *relname = rw_get_str(rv, "relname");
    const char *schemaname = rw_get_str(rv, "schemaname");
    int loc = rw_get_int(rv, "location", -1);
    if (!relname || loc < 0)
        return;
    if (strncmp(relname, "_epoch", 6) == 0 || (schemaname && strcmp(schemaname, "epoch") == 0))
        w->flags |= RW_F_SCHEMA;
    char *schema = NULL, *ref = NULL;
    int split = ref_split(schemaname, &schema, &ref);
    if (split < 0) {
        rw_fail_oom(w);
        return;
    }
    bool has_ref = split > 0;
    if (!has_ref && !schemaname && in_scope(w, relname))
        return; /* a CTE name shadows tables */
    /* in the definition of a view read at a ref, every table is read there */
    bool inherited = !has_ref && w->view_ref;
    if (inherited) {
        has_ref = true;
        schema = schemaname ? strdup(schemaname) : NULL;
        ref = strdup(w->view_ref);
        if (!ref || (schemaname && !schema)) {
            rw_fail_oom(w);
            goto done;
        }
    }
    if (has_ref && (writing || w->utility)) {
        rw_fail(w, "0A000", "Switch to that branch with SET epoch.branch to change its rows.",
                "cannot write to \"%s@%s\".%s: a \"@ref\" reference is read-only",
                schema ? schema : "", ref, relname);
        goto done;
    }
    if (!has_ref && !w->s->on_branch)
        goto done;
    if (!w->s->cat) {
        w->need_catalog = true;
        goto done;
    }
    const catalog_table_t *t = catalog_find(w->s->cat, has_ref ? schema : schemaname, relname);
    if (writing) /* untracked tables on main: nothing to do; on a branch refused by caller */
        goto done;
    /* a view that reads tracked tables becomes its definition; COPY refuses
     * views (PostgreSQL says so); "@main".v is main's live view as it is */
    const catalog_view_t *view =
        t || copy_cols ? NULL
                       : catalog_find_view(w->s->cat, has_ref ? schema : schemaname, relname);
    if (view && has_ref && strcmp(ref, "main") == 0)
        view = NULL;

    size_t start = (size_t)loc;
    size_t end = lex_name_end(w->sql, start);
    if (end == start) {
        rw_fail(w, "XX000", NULL, "epoch could not locate table reference \"%s\" in the statement",
                relname);
        goto done;
    }
    if (has_ref)
        w->flags |= RW_F_SCHEMA;
    bool main_ref = has_ref && strcmp(ref, "main") == 0;
    if (has_ref && !view && (main_ref || !t)) {
        if (inherited && !t)
            goto done; /* untracked, in a view read at a ref: the same at every ref */
        if (!main_ref) {
            rw_fail(w, "42P01",
                    "Only tracked tables can be read at another ref; track it with SELECT "
                    "epoch.track('table').",
                    "table \"%s\" is not tracked, so \"@%s\" cannot be read", relname, ref);
            goto done;
        }
        /* main's live table, however the session's branch sees it */
        rw_add_edit(w, start, end, qualified_name(t ? t->schema : schema, relname));
        goto done;
    }
    if (!t && !view && !has_ref && is_pg_trigger(schemaname, relname)) {
        /* epoch's capture triggers are main's machinery, not the tables' own:
         * a branch (or a past state) shows the tables without them, so that
         * pg_dump of a branch restores where the epoch schema is absent */
        rw_add_edit(w, start, end, hidden_capture_triggers(rw_get(rv, "alias") ? NULL : relname));
        goto done;
    }
    if (!t && !view)
        goto done; /* untracked: the same table on every branch */
    widen_to_only_and_star(w, &start, &end);
    const char *r = has_ref ? ref : NULL;
    if (view)
        replace_view(w, view, r, relname, rw_get(rv, "alias") != NULL, start, end);
    else if (copy_cols)
        replace_copy_to(w, t, r, relname, start, end);
    else
        replace_table(w, rv, t, r, relname, start, end);
    note_replaced_name(w, rv, relname);
done:
    free(schema);
    free(ref);
}

/* t TABLESAMPLE method (args) [REPEATABLE (seed)]. A subquery cannot be
 * sampled, so when t becomes the overlay the clause moves into it, onto the
 * table each arm reads (rw_range_var, overlay_sql); elsewhere it stays. */
void rw_range_sample(walker_t *w, json_object *rts)
{
    json_object *rv = rw_get(rw_get(rts, "relation"), "RangeVar");
    int loc = rw_get_int(rts, "location", -1);
    if (!rv || loc < 0) {
        rw_walk(w, rts);
        return;
    }
    const char *rel = rw_get_str(rv, "relname"), *sch = rw_get_str(rv, "schemaname");
    if (w->s->cat && rel && !catalog_find(w->s->cat, sch, rel) &&
        catalog_find_view(w->s->cat, sch, rel))
        return; /* PostgreSQL refuses to sample a view: let it say so */
    size_t kw = lex_keyword_before(w->sql, (size_t)loc, "tablesample");
    size_t open = lex_skip_blank(w->sql, lex_name_end(w->sql, (size_t)loc));
    size_t end = lex_paren_end(w->sql, open);
    if (end != open && rw_get(rts, "repeatable")) {
        size_t rep = lex_skip_blank(w->sql, end);
        size_t ropen = lex_skip_blank(w->sql, lex_name_end(w->sql, rep));
        size_t rend = lex_paren_end(w->sql, ropen);
        end = strncasecmp(w->sql + rep, "repeatable", 10) == 0 && rend != ropen ? rend : open;
    }
    if (kw == (size_t)loc || end == open) {
        rw_fail(w, "XX000", NULL, "epoch could not locate the TABLESAMPLE clause in the statement");
        return;
    }
    char *clause = strndup(w->sql + kw, end - kw);
    if (!clause) {
        rw_fail_oom(w);
        return;
    }
    const char *outer = w->sample;
    bool outer_used = w->sample_used;
    w->sample = clause;
    w->sample_used = false;
    rw_range_var(w, rv, false, NULL);
    bool moved = w->sample_used;
    w->sample = outer;
    w->sample_used = outer_used;
    json_object *method = rw_get(rts, "method");
    size_t nm = method ? json_object_array_length(method) : 0;
    const char *mname =
        nm ? rw_get_str(rw_get(json_object_array_get_idx(method, nm - 1), "String"), "sval") : NULL;
    if (moved) {
        /* copied verbatim into every arm: nothing in it may need rewriting;
         * epoch's views cannot be sampled, their arms filter rows as
         * BERNOULLI does (overlay.c), which suits the built-in methods only */
        if (!mname || (strcmp(mname, "bernoulli") != 0 && strcmp(mname, "system") != 0))
            rw_fail(w, "0A000", "Use TABLESAMPLE BERNOULLI or SYSTEM on a branch.",
                    "TABLESAMPLE method \"%s\" is not supported on branch \"%s\"",
                    mname ? mname : "?", rw_branch_name(w));
        else if (rw_has_node(rw_get(rts, "args"), "SubLink") ||
                 rw_has_node(rw_get(rts, "repeatable"), "SubLink"))
            rw_fail(w, "0A000", "Use constants or parameters in TABLESAMPLE on a branch.",
                    "a subquery in TABLESAMPLE is not supported on branch \"%s\"",
                    rw_branch_name(w));
        else
            rw_add_edit(w, kw, end, strdup(""));
    } else {
        rw_walk(w, rw_get(rts, "args"));
        rw_walk(w, rw_get(rts, "repeatable"));
    }
    free(clause);
}

/* schema.table.column where schema.table becomes the overlay (aliased by
 * the bare table name): drop the schema part so the reference resolves. */
void rw_column_ref(walker_t *w, json_object *cref)
{
    json_object *fields = rw_get(cref, "fields");
    size_t nf = fields ? json_object_array_length(fields) : 0;
    if (nf != 3)
        return;
    const char *schema = rw_get_str(rw_get(json_object_array_get_idx(fields, 0), "String"), "sval");
    const char *table = rw_get_str(rw_get(json_object_array_get_idx(fields, 1), "String"), "sval");
    int loc = rw_get_int(cref, "location", -1);
    if (!schema || !table || loc < 0)
        return;
    bool ref = strchr(schema, '@') != NULL;
    if (!ref &&
        !(w->s->on_branch && w->s->cat &&
          (catalog_find(w->s->cat, schema, table) || catalog_find_view(w->s->cat, schema, table))))
        return;
    /* end of the first identifier, then the dot */
    size_t first_end = (size_t)loc;
    if (w->sql[first_end] == '"') {
        first_end++;
        while (w->sql[first_end] && !(w->sql[first_end] == '"' && w->sql[first_end + 1] != '"'))
            first_end += w->sql[first_end] == '"' ? 2 : 1;
        if (w->sql[first_end])
            first_end++;
    } else {
        while (w->sql[first_end] && w->sql[first_end] != '.' && w->sql[first_end] != ' ')
            first_end++;
    }
    size_t dot = lex_skip_blank(w->sql, first_end);
    if (w->sql[dot] != '.')
        return;
    rw_add_edit(w, (size_t)loc, lex_skip_blank(w->sql, dot + 1), strdup(""));
}
