/*
 * rewrite — walk libpg_query's parse tree (JSON, decoded with json-c) of one
 * client statement, resolve every table reference, and splice replacements
 * into the original text.
 *
 * Why JSON and splicing: the JSON parse costs ~7 µs for a point SELECT where
 * protobuf + unpack costs ~34 µs, and the client's own text (comments,
 * literals, formatting) reaches PostgreSQL untouched; only table names are
 * replaced. Rewrites are cached by the caller, so this runs once per text.
 *
 * Must never: let a statement through on a branch that it does not
 * understand. Writes, DDL, DO/CALL and SELECT INTO are refused there.
 */
#include "rewrite/rewrite.h"

#include <ctype.h>
#include <json-c/json.h>
#include <pg_query.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/lexer.h"
#include "common/log.h"
#include "common/sqlbuf.h"
#include "branch/overlay.h"
#include "branch/ref.h"
#include "rewrite/rewrite_internal.h"

/* ---- small helpers ---- */

json_object *rw_get(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, &v))
        return v;
    return NULL;
}

const char *rw_get_str(json_object *o, const char *key)
{
    json_object *v = rw_get(o, key);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

int rw_get_int(json_object *o, const char *key, int dflt)
{
    json_object *v = rw_get(o, key);
    return v && json_object_is_type(v, json_type_int) ? json_object_get_int(v) : dflt;
}

void rw_fail(walker_t *w, const char *sqlstate, const char *hint, const char *fmt, ...)
{
    if (w->failed)
        return;
    w->failed = true;
    snprintf(w->out->sqlstate, sizeof w->out->sqlstate, "%s", sqlstate);
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&w->out->message, fmt, ap) < 0)
        w->out->message = NULL;
    va_end(ap);
    w->out->hint = hint ? strdup(hint) : NULL;
}

void rw_fail_oom(walker_t *w)
{
    rw_fail(w, "53200", NULL, "out of memory while rewriting the statement");
}

void rw_fail_detail(walker_t *w, const char *fmt, ...)
{
    if (!w->failed || w->out->detail)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&w->out->detail, fmt, ap) < 0)
        w->out->detail = NULL;
    va_end(ap);
}

const char *rw_branch_name(const walker_t *w)
{
    return w->s->cat && w->s->cat->branch_name ? w->s->cat->branch_name : "?";
}

/* arr (capacity *cap entries of elem bytes) with room for need entries,
 * doubling: arr itself or its reallocation; NULL out of memory (arr is
 * kept). */
static void *grown(void *arr, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return arr;
    int n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *bigger = realloc(arr, (size_t)n * elem);
    if (bigger)
        *cap = n;
    return bigger;
}

void rw_add_edit(walker_t *w, size_t start, size_t end, char *text)
{
    edit_t *edits = text ? grown(w->edits, &w->edits_cap, w->nedits + 1, sizeof *edits) : NULL;
    if (!edits) {
        free(text);
        rw_fail_oom(w);
        return;
    }
    w->edits = edits;
    w->edits[w->nedits++] = (edit_t){start, end, text};
}

static bool in_scope(const walker_t *w, const char *name)
{
    for (int i = w->nscope - 1; i >= 0; i--)
        if (strcmp(w->scope[i], name) == 0)
            return true;
    return false;
}

/* ---- table references ---- */

/* The replacement text for a tracked table at a ref: a "@ref" named in the
 * query (resolved by PostgreSQL when the statement runs), else the session's
 * state (bid, base, point; point -1: the branch's working rows). */
char *rw_overlay_text(const catalog_table_t *t, const char *ref, int64_t bid, int64_t base,
                      int64_t point, const char *alias_for, const overlay_pred_t *preds,
                      int npreds, const char *sample)
{
    sqlbuf_t sb = {0};
    if (ref) {
        /* any ref (docs/history.md); TABLESAMPLE samples a branch's working
         * rows only, and _ref_working_branch refuses a past state */
        sqlbuf_t bexpr = {0}, sexpr = {0}, pexpr = {0};
        if (sample)
            SQLBUF_LIT(&bexpr, "(SELECT epoch._ref_working_branch(");
        else
            SQLBUF_LIT(&bexpr, "(SELECT epoch._ref_branch(");
        sqlbuf_literal(&bexpr, ref);
        SQLBUF_LIT(&bexpr, "))");
        SQLBUF_LIT(&sexpr, "(SELECT epoch._ref_base(");
        sqlbuf_literal(&sexpr, ref);
        SQLBUF_LIT(&sexpr, "))");
        SQLBUF_LIT(&pexpr, "(SELECT epoch._ref_point(");
        sqlbuf_literal(&pexpr, ref);
        SQLBUF_LIT(&pexpr, "))");
        if (bexpr.failed || sexpr.failed || pexpr.failed)
            sb.failed = true; /* the overlay cannot be written without them */
        else
            overlay_sql(&sb, t, sqlbuf_str(&bexpr), sqlbuf_str(&sexpr),
                        sample ? NULL : sqlbuf_str(&pexpr), preds, npreds, sample);
        sqlbuf_free(&bexpr);
        sqlbuf_free(&sexpr);
        sqlbuf_free(&pexpr);
    } else {
        char bs[32], ss[32], ps[32];
        snprintf(bs, sizeof bs, "%lld", (long long)bid);
        snprintf(ss, sizeof ss, "%lld", (long long)base);
        snprintf(ps, sizeof ps, "%lld", (long long)point);
        overlay_sql(&sb, t, bs, ss, point >= 0 ? ps : NULL, preds, npreds, sample);
    }
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

static rw_action_t run(walker_t *w, const char *sql, rw_result_t *out);

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
    run(sub, v->definition, &r);
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

/* COPY t (cols) TO of a tracked table read through its overlay: PostgreSQL
 * refuses a generated column in the list (42P10), a query over the overlay
 * would not. true = refused. */
static bool copy_lists_generated(walker_t *w, json_object *rel, json_object *att)
{
    const char *relname = rw_get_str(rel, "relname"), *schema = rw_get_str(rel, "schemaname");
    if (!att || !relname || !w->s->cat || (schema && strchr(schema, '@')))
        return false;
    const catalog_table_t *t = catalog_find(w->s->cat, schema, relname);
    if (!t || !t->generated)
        return false;
    for (size_t i = 0; i < json_object_array_length(att); i++) {
        const char *name = rw_get_str(rw_get(json_object_array_get_idx(att, i), "String"), "sval");
        int c = name ? catalog_col_index(t, name) : -1;
        if (c >= 0 && catalog_col_generated(t, c)) {
            rw_fail(w, "42P10", NULL, "column \"%s\" is a generated column", name);
            rw_fail_detail(w, "Generated columns cannot be used in COPY.");
            return true;
        }
    }
    return false;
}

/* A RangeVar read in a FROM list (or a COPY ... TO relation when copy_cols
 * is non-NULL: "*" or the column list text). */
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
                    "'epoch_capture_trunc'))");
    if (alias_for) {
        SQLBUF_LIT(&sb, " AS ");
        sqlbuf_ident(&sb, alias_for);
    }
    return sqlbuf_take(&sb);
}

static void range_var(walker_t *w, json_object *rv, bool writing, const char *copy_cols)
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
        rw_add_edit(w, start, end,
                    hidden_capture_triggers(rw_get(rv, "alias") ? NULL : relname));
        goto done;
    }
    if (!t && !view)
        goto done; /* untracked: the same table on every branch */
    bool has_alias = rw_get(rv, "alias") != NULL;
    size_t only = lex_keyword_before(w->sql, start, "only");
    if (only != start) {
        start = only;
    } else {
        /* ONLY (t): the parentheses go with the name */
        size_t p = start;
        while (p > 0 && (w->sql[p - 1] == ' ' || w->sql[p - 1] == '\t' || w->sql[p - 1] == '\n'))
            p--;
        if (p > 0 && w->sql[p - 1] == '(') {
            size_t kw = lex_keyword_before(w->sql, p - 1, "only");
            size_t close = lex_skip_blank(w->sql, end);
            if (kw != p - 1 && w->sql[close] == ')') {
                start = kw;
                end = close + 1;
            }
        }
    }
    {
        /* t *: the inheritance star is part of the name */
        size_t star = lex_skip_blank(w->sql, end);
        if (w->sql[star] == '*')
            end = star + 1;
    }
    int64_t bid = w->s->cat->branch_id, base = w->s->cat->base_seq, point = w->s->cat->point;
    const char *r = has_ref ? ref : NULL;
    if (view) {
        char *body = view_text(w, view, r);
        if (!body)
            goto done;
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
    } else if (copy_cols) {
        /* COPY t [(cols)] TO ...  ->  COPY (SELECT cols FROM overlay AS t) TO ... */
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
            goto done;
        }
        char *ov = rw_overlay_text(t, r, bid, base, point, relname, NULL, 0, NULL);
        char *text = NULL;
        if (ov && asprintf(&text, "(SELECT %s FROM %s)", cols ? cols : "*", ov) < 0)
            text = NULL;
        free(ov);
        free(cols);
        rw_add_edit(w, start, pend != after ? pend : end, text);
    } else {
        size_t table_kw = lex_keyword_before(w->sql, start, "table");
        if (table_kw != start) {
            /* the TABLE t command: make it a SELECT */
            char *ov = rw_overlay_text(t, r, bid, base, point, relname, NULL, 0, NULL);
            char *text = NULL;
            if (ov && asprintf(&text, "SELECT * FROM %s", ov) < 0)
                text = NULL;
            free(ov);
            rw_add_edit(w, table_kw, end, text);
        } else {
            overlay_pred_t preds[MAX_PREDS];
            int np = key_predicates(
                w, t, has_alias ? rw_get_str(rw_get(rv, "alias"), "aliasname") : relname, preds);
            rw_add_edit(
                w, start, end,
                rw_overlay_text(t, r, bid, base, point, has_alias ? NULL : relname, preds, np,
                                w->sample));
            w->sample_used = w->sample != NULL;
            for (int i = 0; i < np; i++) {
                free(preds[i].v1);
                free(preds[i].v2);
            }
        }
    }
    const char **names =
        grown(w->rewritten_names, &w->rewritten_cap, w->nlocked + 1, sizeof *names);
    if (names) {
        const char *alias = rw_get_str(rw_get(rv, "alias"), "aliasname");
        w->rewritten_names = names;
        w->rewritten_names[w->nlocked++] = alias ? alias : relname;
    } else {
        rw_fail_oom(w);
    }
done:
    free(schema);
    free(ref);
}

/* ---- the tree walk ---- */

static bool is_write_node(const char *key)
{
    return strcmp(key, "InsertStmt") == 0 || strcmp(key, "UpdateStmt") == 0 ||
           strcmp(key, "DeleteStmt") == 0 || strcmp(key, "MergeStmt") == 0;
}

/* INSERT/UPDATE/DELETE/MERGE for a write node's name */
static const char *write_verb(const char *key)
{
    return strcmp(key, "InsertStmt") == 0   ? "INSERT"
           : strcmp(key, "UpdateStmt") == 0 ? "UPDATE"
           : strcmp(key, "DeleteStmt") == 0 ? "DELETE"
                                            : "MERGE";
}

static void refuse_write(walker_t *w, const char *what)
{
    if (w->s->read_only) {
        rw_fail(w, "25006", "RESET epoch.as_of to write again.",
                "%s is not allowed while epoch.as_of is set (read-only time travel)", what);
        return;
    }
    rw_fail(w, "0A000",
            "This kind of write is not supported on branches; run it on main (SET epoch.branch = "
            "'main') or write it as INSERT, UPDATE or DELETE.",
            "%s is not allowed on branch \"%s\"", what, rw_branch_name(w));
}

/* A write on a branch whose target is a view that reads tracked tables:
 * refused with words that say so (PostgreSQL would change main's tables
 * through it). Other views are untracked relations, refused by dml.c.
 * true = refused. */
static bool refuse_view_write(walker_t *w, const char *key, json_object *body)
{
    json_object *rel = rw_get(body, "relation");
    const char *relname = rw_get_str(rel, "relname");
    const char *schema = rw_get_str(rel, "schemaname");
    if (!relname || !w->s->cat || (schema && strchr(schema, '@')) ||
        catalog_find(w->s->cat, schema, relname) || !catalog_find_view(w->s->cat, schema, relname))
        return false;
    rw_fail(w, "0A000",
            "Write to the tracked tables the view reads (on a branch, writes to them change "
            "the branch's rows), or write through the view on main (SET epoch.branch = 'main').",
            "%s through view \"%s\" is not allowed on branch \"%s\"", write_verb(key), relname,
            rw_branch_name(w));
    return true;
}

/* A data-modifying CTE on a branch: its statement (the text inside the
 * CTE's parentheses) becomes a write to the branch. false = not one. */
static bool cte_write(walker_t *w, json_object *cte)
{
    json_object *q = rw_get(cte, "ctequery");
    const char *key = NULL;
    json_object *body = NULL;
    if (!q || !json_object_is_type(q, json_type_object))
        return false;
    json_object_object_foreach(q, k, v)
    {
        key = k;
        body = v;
        break;
    }
    if (!key || !is_write_node(key) || !w->s->on_branch || w->s->read_only ||
        strcmp(key, "MergeStmt") == 0)
        return false;
    if (refuse_view_write(w, key, body))
        return true;
    int loc = rw_get_int(cte, "location", -1);
    size_t len = strlen(w->sql);
    size_t as = loc < 0 ? len : lex_find_keyword(w->sql, (size_t)loc, len, "as");
    size_t open = as;
    while (open < len && w->sql[open] != '(')
        open++;
    size_t close = open < len ? lex_paren_end(w->sql, open) : open;
    if (close <= open + 1) {
        rw_fail(w, "0A000", NULL, "epoch could not locate a data-modifying WITH query");
        return true;
    }
    dml_statement(w, key, body, open + 1, close - 1 - (open + 1), false);
    return true;
}

/* Walk a node that carries a WITH clause: CTE names become visible to the
 * later CTEs (all of them when RECURSIVE) and to the rest of the node. */
static void walk_with(walker_t *w, json_object *node, json_object *with)
{
    int saved = w->nscope;
    json_object *ctes = rw_get(with, "ctes");
    bool recursive = json_object_get_boolean(rw_get(with, "recursive"));
    size_t n =
        ctes && json_object_is_type(ctes, json_type_array) ? json_object_array_length(ctes) : 0;
    const char **scope = grown(w->scope, &w->scope_cap, w->nscope + (int)n, sizeof *scope);
    if (!scope) {
        rw_fail_oom(w);
        return;
    }
    w->scope = scope;
    if (recursive)
        for (size_t i = 0; i < n; i++) {
            const char *name = rw_get_str(
                rw_get(json_object_array_get_idx(ctes, i), "CommonTableExpr"), "ctename");
            if (name)
                w->scope[w->nscope++] = name;
        }
    for (size_t i = 0; i < n; i++) {
        json_object *cte = rw_get(json_object_array_get_idx(ctes, i), "CommonTableExpr");
        if (!cte_write(w, cte))
            rw_walk(w, rw_get(cte, "ctequery"));
        const char *name = rw_get_str(cte, "ctename");
        if (!recursive && name)
            w->scope[w->nscope++] = name;
    }
    json_object_object_foreach(node, key, val)
    {
        if (strcmp(key, "withClause") != 0)
            rw_walk(w, val);
    }
    w->nscope = saved;
}

/* A node of this type (e.g. "ParamRef": a $n) anywhere below node. */
static bool has_node(json_object *node, const char *type)
{
    if (json_object_is_type(node, json_type_array)) {
        size_t n = json_object_array_length(node);
        for (size_t i = 0; i < n; i++)
            if (has_node(json_object_array_get_idx(node, i), type))
                return true;
        return false;
    }
    if (!json_object_is_type(node, json_type_object))
        return false;
    json_object_object_foreach(node, key, val)
    {
        if (strcmp(key, type) == 0 || has_node(val, type))
            return true;
    }
    return false;
}

/* ORDER BY 1, GROUP BY 1 and numeric(8,1) mean something else when the
 * constant is a parameter: such a template must not become a prepared
 * statement (plan reuse); the constants are put back before sending. */
static void note_positional(walker_t *w, json_object *list)
{
    size_t n =
        list && json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(list, i);
        json_object *sort = rw_get(item, "SortBy");
        json_object *node = sort ? rw_get(sort, "node") : item;
        if (rw_get(node, "ParamRef") || rw_get(node, "A_Const") || rw_get(item, "ParamRef"))
            w->positional = true;
    }
}

/* Control functions after which the session's catalog may be stale
 * (creating or protecting a branch changes nothing the session reads). */
static bool changes_catalog(const char *fn)
{
    static const char *const readonly[] = {"branch_create", "branch_protect", NULL};
    for (int i = 0; readonly[i]; i++)
        if (strcmp(fn, readonly[i]) == 0)
            return false;
    return true;
}

/* FOR UPDATE/SHARE that reaches a replaced table cannot work (the overlay is
 * a UNION); locks naming only untracked tables are fine. */
static void check_locks(walker_t *w, json_object *select, int rewritten_before)
{
    json_object *locks = rw_get(select, "lockingClause");
    size_t n = locks ? json_object_array_length(locks) : 0;
    if (!n || w->nlocked == rewritten_before || w->failed)
        return;
    bool reaches = false;
    for (size_t i = 0; i < n && !reaches; i++) {
        json_object *rels =
            rw_get(rw_get(json_object_array_get_idx(locks, i), "LockingClause"), "lockedRels");
        size_t nr = rels ? json_object_array_length(rels) : 0;
        if (!nr)
            reaches = true; /* FOR UPDATE without OF locks every table */
        for (size_t j = 0; j < nr && !reaches; j++) {
            const char *name =
                rw_get_str(rw_get(json_object_array_get_idx(rels, j), "RangeVar"), "relname");
            for (int k = rewritten_before; name && k < w->nlocked && !reaches; k++)
                reaches = strcmp(w->rewritten_names[k], name) == 0;
        }
    }
    if (reaches)
        rw_fail(w, "0A000",
                "Branch reads are snapshots; lock rows on main, or read without FOR UPDATE.",
                "SELECT ... FOR UPDATE/SHARE is not supported on branch \"%s\" for tracked "
                "tables",
                rw_branch_name(w));
}

/* t TABLESAMPLE method (args) [REPEATABLE (seed)]. A subquery cannot be
 * sampled, so when t becomes the overlay the clause moves into it, onto the
 * table each arm reads (range_var, overlay_sql); elsewhere it stays. */
static void range_sample(walker_t *w, json_object *rts)
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
    range_var(w, rv, false, NULL);
    bool moved = w->sample_used;
    w->sample = outer;
    w->sample_used = outer_used;
    if (moved) {
        /* copied verbatim into every arm: nothing in it may need rewriting */
        if (has_node(rw_get(rts, "args"), "SubLink") ||
            has_node(rw_get(rts, "repeatable"), "SubLink"))
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
static void column_ref(walker_t *w, json_object *cref)
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

void rw_walk(walker_t *w, json_object *node)
{
    if (!node || w->failed)
        return;
    if (json_object_is_type(node, json_type_array)) {
        size_t n = json_object_array_length(node);
        for (size_t i = 0; i < n && !w->failed; i++)
            rw_walk(w, json_object_array_get_idx(node, i));
        return;
    }
    if (!json_object_is_type(node, json_type_object))
        return;
    json_object *with = rw_get(node, "withClause");
    if (with) {
        walk_with(w, node, with);
        return;
    }
    json_object_object_foreach(node, key, val)
    {
        if (w->failed)
            return;
        if (strcmp(key, "RangeVar") == 0) {
            range_var(w, val, false, NULL);
            continue;
        }
        if (strcmp(key, "RangeTableSample") == 0) {
            range_sample(w, val);
            continue;
        }
        if ((strcmp(key, "relation") == 0 || strcmp(key, "rel") == 0) && rw_get(val, "relname")) {
            range_var(w, val, true, NULL); /* a write target (or DDL) */
            continue;
        }
        if (strcmp(key, "FuncCall") == 0) {
            json_object *names = rw_get(val, "funcname");
            size_t nn = names ? json_object_array_length(names) : 0;
            const char *first =
                rw_get_str(rw_get(json_object_array_get_idx(names, 0), "String"), "sval");
            const char *last = rw_get_str(
                rw_get(json_object_array_get_idx(names, nn ? nn - 1 : 0), "String"), "sval");
            if (first && strcmp(first, "epoch") == 0 && nn > 1) {
                w->flags |= RW_F_SCHEMA;
                if (last && changes_catalog(last))
                    w->flags |= RW_F_REFRESH;
            }
            if (last && strcmp(last, "set_config") == 0)
                w->flags |= RW_F_REFRESH; /* may change search_path or epoch.branch */
        }
        if ((w->s->on_branch || w->s->read_only) && is_write_node(key)) {
            refuse_write(w, write_verb(key));
            return;
        }
        if (strcmp(key, "lockingClause") == 0)
            continue; /* FOR UPDATE OF names are not table references */
        if (strcmp(key, "sortClause") == 0 || strcmp(key, "distinctClause") == 0 ||
            strcmp(key, "typmods") == 0)
            note_positional(w, val);
        if (strcmp(key, "groupClause") == 0 && has_node(val, "ParamRef"))
            w->positional = true; /* GROUP BY age / $1 would not match age / $2 */
        if (strcmp(key, "ColumnRef") == 0) {
            column_ref(w, val);
            continue;
        }
        if (strcmp(key, "SelectStmt") == 0) {
            int before = w->nlocked;
            json_object *outer = w->cur_select;
            w->cur_select = val;
            rw_walk(w, val);
            w->cur_select = outer;
            check_locks(w, val, before);
            continue;
        }
        rw_walk(w, val);
    }
}

/* ---- statements ---- */

/* First words of a statement, for messages: "CREATE TABLE", "ALTER INDEX". */
static void statement_words(const char *sql, size_t start, char *out, size_t cap)
{
    size_t p = lex_skip_blank(sql, start), o = 0;
    for (int words = 0; words < 2 && sql[p]; words++) {
        if (words)
            p = lex_skip_blank(sql, p);
        size_t e = p;
        while (sql[e] && (isalpha((unsigned char)sql[e]) || sql[e] == '_'))
            e++;
        if (e == p)
            break;
        for (size_t i = p; i < e && o + 2 < cap; i++)
            out[o++] = (char)toupper((unsigned char)sql[i]);
        if (o + 1 < cap)
            out[o++] = ' ';
        p = e;
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
    if (!o)
        snprintf(out, cap, "this statement");
}

static bool one_of(const char *key, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(key, *list) == 0)
            return true;
    return false;
}

/* Statements that read nothing and write no table: the same on every branch. */
static const char *const harmless[] = {
    "TransactionStmt", "VariableShowStmt", "ExecuteStmt", "DeallocateStmt",  "ListenStmt",
    "UnlistenStmt",    "NotifyStmt",       "FetchStmt",   "ClosePortalStmt", "DiscardStmt",
    "VariableSetStmt", "VacuumStmt",       NULL};
/* Statements whose tables are read through a nested query. */
static const char *const query_holders[] = {"SelectStmt", "ExplainStmt", "DeclareCursorStmt",
                                            "PrepareStmt", NULL};

static void set_variable(walker_t *w, json_object *set, int nstmts)
{
    const char *name = rw_get_str(set, "name");
    const char *kind = rw_get_str(set, "kind");
    if (kind && strcmp(kind, "VAR_RESET_ALL") == 0) {
        w->flags |= RW_F_REFRESH;
        return;
    }
    if (!name)
        return;
    if (strcmp(name, "search_path") == 0) {
        w->flags |= RW_F_REFRESH;
        return;
    }
    bool branch = strcmp(name, "epoch.branch") == 0, as_of = strcmp(name, "epoch.as_of") == 0;
    if (!branch && !as_of)
        return;
    w->flags |= RW_F_REFRESH;
    if (!kind || strcmp(kind, "VAR_SET_VALUE") != 0)
        return; /* RESET / SET ... TO DEFAULT: PostgreSQL restores the value */
    json_object *args = rw_get(set, "args");
    const char *value = NULL;
    if (args && json_object_array_length(args) == 1)
        value = rw_get_str(rw_get(rw_get(json_object_array_get_idx(args, 0), "A_Const"), "sval"),
                           "sval");
    if (!value) {
        rw_fail(w, "22023", "Write SET epoch.branch = 'feature/x'.",
                "%s takes one branch name as a string", name);
        return;
    }
    if (nstmts != 1) {
        rw_fail(w, "0A000", "Send SET epoch.branch as a statement of its own.",
                "SET %s cannot be combined with other statements in one query", name);
        return;
    }
    w->out->action = RW_SET_BRANCH;
    w->out->value = strdup(value);
    w->out->is_local = json_object_get_boolean(rw_get(set, "is_local"));
    w->out->as_of = as_of;
    w->flags |= RW_F_SCHEMA;
}

static void show_variable(walker_t *w, json_object *show, size_t start, size_t len)
{
    const char *name = rw_get_str(show, "name");
    if (!name || (strcmp(name, "epoch.branch") != 0 && strcmp(name, "epoch.as_of") != 0))
        return;
    /* an unset placeholder would be an error in PostgreSQL; main is the default */
    char *text = NULL;
    if (asprintf(&text, "SELECT coalesce(nullif(current_setting('%s', true), ''), %s) AS \"%s\"",
                 name, strcmp(name, "epoch.branch") == 0 ? "'main'" : "''", name) < 0)
        text = NULL;
    rw_add_edit(w, start, start + len, text);
}


/* PostgreSQL's AccessShareLock (storage/lockdefs.h) */
#define LOCK_ACCESS_SHARE 1

/* LOCK … IN ACCESS SHARE MODE on a branch or at a ref: the tables stay
 * main's (locking them keeps DDL away while the branch is read); a "@ref"
 * cannot be locked. */
static void lock_statement(walker_t *w, json_object *body)
{
    json_object *rels = rw_get(body, "relations");
    size_t n = rels && json_object_is_type(rels, json_type_array) ? json_object_array_length(rels) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *rv = rw_get(json_object_array_get_idx(rels, i), "RangeVar");
        const char *schema = rv ? rw_get_str(rv, "schemaname") : NULL;
        if (schema && strchr(schema, '@')) {
            rw_fail(w, "0A000", NULL, "cannot lock \"%s\".%s: a \"@ref\" reference is read-only",
                    schema, rw_get_str(rv, "relname"));
            return;
        }
    }
}

static void statement(walker_t *w, json_object *raw, int nstmts)
{
    json_object *stmt = rw_get(raw, "stmt");
    size_t start = (size_t)rw_get_int(raw, "stmt_location", 0);
    size_t len = (size_t)rw_get_int(raw, "stmt_len", 0);
    if (len == 0)
        len = strlen(w->sql + start);
    if (!stmt || !json_object_is_type(stmt, json_type_object))
        return;
    const char *key = NULL;
    json_object *body = NULL;
    json_object_object_foreach(stmt, k, v)
    {
        key = k;
        body = v;
        break;
    }
    if (!key)
        return;
    int lock_mark = w->nlocked;
    bool on_branch = w->s->on_branch;
    char words[40];
    if (strcmp(key, "VariableSetStmt") == 0) {
        set_variable(w, body, nstmts);
        return;
    }
    if (strcmp(key, "VariableShowStmt") == 0) {
        show_variable(w, body, start, len);
        return;
    }
    if (strcmp(key, "DiscardStmt") == 0) {
        w->flags |= RW_F_REFRESH | RW_F_DEALLOC;
        return;
    }
    if (strcmp(key, "DeallocateStmt") == 0) {
        w->flags |= RW_F_DEALLOC;
        return;
    }
    if (one_of(key, harmless))
        return;
    if (strcmp(key, "CopyStmt") == 0) {
        json_object *rel = rw_get(body, "relation");
        bool from = json_object_get_boolean(rw_get(body, "is_from"));
        if (rw_get(body, "query")) {
            rw_walk(w, rw_get(body, "query"));
            return;
        }
        if (from && on_branch && !w->s->read_only) {
            dml_copy_from(w, body, start, len, nstmts);
            return;
        }
        if (from && (on_branch || w->s->read_only)) {
            refuse_write(w, "COPY ... FROM");
            return;
        }
        if (rel && !from) {
            if ((on_branch || w->s->read_only) &&
                copy_lists_generated(w, rel, rw_get(body, "attlist")))
                return;
            range_var(w, rel, false, "*");
            return;
        }
        rw_walk(w, body);
        return;
    }
    if (one_of(key, query_holders)) {
        if (w->s->read_only && strcmp(key, "SelectStmt") == 0 && rw_get(body, "intoClause")) {
            rw_fail(w, "25006", "RESET epoch.as_of to write again.",
                    "SELECT ... INTO is not allowed while epoch.as_of is set (read-only time "
                    "travel)");
            return;
        }
        if (on_branch && strcmp(key, "SelectStmt") == 0 && rw_get(body, "intoClause")) {
            rw_fail(w, "0A000", "Create tables on main.",
                    "SELECT ... INTO is not allowed on branch \"%s\": it creates a table",
                    rw_branch_name(w));
            return;
        }
        if (strcmp(key, "SelectStmt") == 0)
            w->cur_select = body;
        rw_walk(w, body);
        if (nstmts == 1 && strcmp(key, "SelectStmt") == 0 && !rw_get(body, "intoClause") &&
            !rw_get(body, "lockingClause"))
            w->flags |= RW_F_PREPARABLE;
        if (strcmp(key, "SelectStmt") == 0)
            check_locks(w, body, lock_mark);
        w->cur_select = NULL;
        return;
    }
    if (is_write_node(key)) {
        if (on_branch && !w->s->read_only && strcmp(key, "MergeStmt") != 0) {
            if (!refuse_view_write(w, key, body))
                dml_statement(w, key, body, start, len, true);
            return;
        }
        if (on_branch || w->s->read_only) {
            refuse_write(w, write_verb(key));
            return;
        }
        rw_walk(w, body);
        return;
    }
    /* LOCK … IN ACCESS SHARE MODE (what pg_dump takes before it reads) only
     * keeps main's tables from DDL while the branch is read: harmless, and it
     * makes pg_dump work on a branch and at a ref */
    if ((on_branch || w->s->read_only) && strcmp(key, "LockStmt") == 0 &&
        rw_get_int(body, "mode", 0) == LOCK_ACCESS_SHARE) {
        lock_statement(w, body); /* forwarded as it is: it names main's tables */
        return;
    }
    if (on_branch || w->s->read_only) {
        statement_words(w->sql, start, words, sizeof words);
        if (strcmp(key, "DoStmt") == 0 || strcmp(key, "CallStmt") == 0)
            rw_fail(w, "0A000", "Run it on main (SET epoch.branch = 'main').",
                    "%s is not allowed on branch \"%s\": it could change main's data", words,
                    rw_branch_name(w));
        else
            rw_fail(w, "0A000",
                    "Schema changes are made on main (SET epoch.branch = 'main'); branches "
                    "share main's schema.",
                    "%s is not allowed on branch \"%s\"", words, rw_branch_name(w));
        return;
    }
    /* main: anything goes, but a "@ref" cannot be the target of TRUNCATE,
     * LOCK or VACUUM (it is read-only) */
    w->utility = strcmp(key, "TruncateStmt") == 0 || strcmp(key, "LockStmt") == 0 ||
                 strcmp(key, "VacuumStmt") == 0;
    rw_walk(w, body);
    w->utility = false;
}

/* ---- entry points ---- */

/* An '@' inside a double-quoted name: a "@ref" or "schema@ref". */
static bool quoted_name_has_at(const char *sql, size_t len)
{
    if (!memchr(sql, '@', len))
        return false;
    const char *p = sql, *end = sql + len;
    while ((p = memchr(p, '"', (size_t)(end - p))) != NULL) {
        const char *close = memchr(p + 1, '"', (size_t)(end - p - 1));
        if (!close)
            return memchr(p, '@', (size_t)(end - p)) != NULL;
        if (memchr(p + 1, '@', (size_t)(close - p - 1)))
            return true;
        p = close + 1;
    }
    return false;
}

bool rewrite_needs_parse(const char *sql, size_t len)
{
    /* search_path, RESET and DISCARD change how names resolve later;
     * DISCARD and DEALLOCATE drop the proxy's prepared statements */
    return lex_contains_ci(sql, len, "epoch") || quoted_name_has_at(sql, len) ||
           lex_contains_ci(sql, len, "search_path") || lex_contains_ci(sql, len, "schema") ||
           lex_contains_ci(sql, len, "reset") || lex_contains_ci(sql, len, "discard") ||
           lex_contains_ci(sql, len, "deallocate");
}

void rewrite_result_free(rw_result_t *r)
{
    free(r->sql);
    free(r->setup);
    free(r->message);
    free(r->hint);
    free(r->detail);
    free(r->value);
    memset(r, 0, sizeof *r);
}

static int edit_cmp(const void *a, const void *b)
{
    const edit_t *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

char *rw_splice_range(walker_t *w, size_t start, size_t end)
{
    if (w->nedits > 1) /* edits is NULL until the first one */
        qsort(w->edits, (size_t)w->nedits, sizeof w->edits[0], edit_cmp);
    sqlbuf_t sb = {0};
    size_t pos = start;
    int kept = 0;
    for (int i = 0; i < w->nedits; i++) {
        edit_t *e = &w->edits[i];
        if (e->start >= start && e->end <= end && e->start >= pos) {
            sqlbuf_append(&sb, w->sql + pos, e->start - pos);
            sqlbuf_puts(&sb, e->text);
            pos = e->end;
            free(e->text);
            continue;
        }
        w->edits[kept++] = *e;
    }
    w->nedits = kept;
    if (end > pos)
        sqlbuf_append(&sb, w->sql + pos, end - pos);
    return sqlbuf_take(&sb);
}

static char *splice(walker_t *w)
{
    if (w->nedits > 1) /* edits is NULL until the first one */
        qsort(w->edits, (size_t)w->nedits, sizeof w->edits[0], edit_cmp);
    sqlbuf_t sb = {0};
    size_t pos = 0;
    for (int i = 0; i < w->nedits; i++) {
        /* edits never overlap: each replaces a different table reference,
         * and an edit of a whole statement took the edits inside it
         * (rw_splice_range) */
        epoch_assert(w->edits[i].start >= pos);
        sqlbuf_append(&sb, w->sql + pos, w->edits[i].start - pos);
        sqlbuf_puts(&sb, w->edits[i].text);
        pos = w->edits[i].end;
    }
    sqlbuf_puts(&sb, w->sql + pos);
    return sqlbuf_take(&sb);
}

static rw_action_t finish(walker_t *w, rw_result_t *out, int nstmts)
{
    if (nstmts != 1 || w->positional)
        w->flags &= ~(unsigned)RW_F_PREPARABLE;
    out->flags = w->flags;
    if (w->failed) {
        out->action = RW_ERROR;
        if (!out->message) {
            snprintf(out->sqlstate, sizeof out->sqlstate, "53200");
            out->message = NULL;
        }
    } else if (w->need_catalog) {
        out->action = RW_NEED_CATALOG;
    } else if (out->action == RW_SET_BRANCH) {
        /* value already set */
    } else if (w->nedits) {
        out->sql = splice(w);
        out->action = out->sql ? RW_REWRITTEN : RW_ERROR;
        if (!out->sql)
            snprintf(out->sqlstate, sizeof out->sqlstate, "53200");
    } else {
        out->action = RW_FORWARD;
    }
    for (int i = 0; i < w->nedits; i++)
        free(w->edits[i].text);
    free(w->edits);
    free(w->scope);
    free(w->rewritten_names);
    w->edits = NULL;
    w->scope = NULL;
    w->rewritten_names = NULL;
    w->nedits = w->edits_cap = w->nscope = w->scope_cap = w->nlocked = w->rewritten_cap = 0;
    return out->action;
}

rw_action_t rewrite_statement(const rw_session_t *s, const char *sql, rw_result_t *out)
{
    walker_t w = {.s = s};
    return run(&w, sql, out);
}

/* Parse sql, walk it with w (fresh but for s, view_depth, view_ref) and
 * fill *out. */
static rw_action_t run(walker_t *w, const char *sql, rw_result_t *out)
{
    memset(out, 0, sizeof *out);
    w->sql = sql;
    w->out = out;
    char *quoted = NULL;
    PgQueryParseResult pr = pg_query_parse(sql);
    if (pr.error && strstr(sql, "=>")) {
        /* `branch_create('x', from => 'main')`: FROM is a reserved word that
         * PostgreSQL does not accept as an argument name unquoted */
        quoted = lex_quote_named_args(sql);
        if (quoted) {
            PgQueryParseResult retry = pg_query_parse(quoted);
            if (!retry.error) {
                pg_query_free_parse_result(pr);
                pr = retry;
                w->sql = quoted;
                rw_add_edit(w, 0, 0, strdup("")); /* send the quoted text */
            } else {
                pg_query_free_parse_result(retry);
            }
        }
    }
    if (pr.error) {
        /* PostgreSQL has the same grammar: let it report the syntax error */
        pg_query_free_parse_result(pr);
        free(quoted);
        out->action = RW_FORWARD;
        out->flags = RW_F_UNPARSED;
        return RW_FORWARD;
    }
    /* libpg_query's tree nests deeper than json-c's default limit (32) as
     * soon as subqueries nest a few levels */
    json_tokener *tok = json_tokener_new_ex(10000);
    json_object *tree =
        tok ? json_tokener_parse_ex(tok, pr.parse_tree, (int)strlen(pr.parse_tree)) : NULL;
    if (tok)
        json_tokener_free(tok);
    pg_query_free_parse_result(pr);
    if (!tree) {
        free(quoted);
        rw_fail(w, "53200", NULL, "out of memory while parsing the statement");
        return finish(w, out, 0);
    }
    json_object *stmts = rw_get(tree, "stmts");
    int n = stmts ? (int)json_object_array_length(stmts) : 0;
    for (int i = 0; i < n && !w->failed; i++) {
        w->stmt_no = i;
        statement(w, json_object_array_get_idx(stmts, i), n);
    }
    rw_action_t action = finish(w, out, n);
    json_object_put(tree);
    free(quoted);
    return action;
}
