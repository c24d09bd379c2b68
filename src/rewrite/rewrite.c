/*
 * rewrite — walk libpg_query's parse tree (JSON, decoded with json-c) of one
 * client statement, resolve every table reference, and splice replacements
 * into the original text.
 *
 * This file: the entry points (rewrite_statement, rewrite_needs_parse), the
 * parse, the dispatch of each statement of a query by its kind (SET/SHOW
 * epoch.branch, COPY, queries, writes, everything else) and the result.
 * The tree walk is in rewrite_walk.c, table references and their
 * replacements in rewrite_range.c, the splicing in rewrite_edit.c, writes on
 * a branch in dml*.c.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lexer.h"
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
    size_t n =
        rels && json_object_is_type(rels, json_type_array) ? json_object_array_length(rels) : 0;
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

/* COPY: COPY (query) TO reads through the query; COPY t FROM on a branch
 * writes into the delta (dml_copy.c); COPY t TO reads the overlay. */
static void copy_statement(walker_t *w, json_object *body, size_t start, size_t len, int nstmts)
{
    bool on_branch = w->s->on_branch;
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
        rw_refuse_write(w, "COPY ... FROM");
        return;
    }
    if (rel && !from) {
        if ((on_branch || w->s->read_only) && copy_lists_generated(w, rel, rw_get(body, "attlist")))
            return;
        rw_range_var(w, rel, false, "*");
        return;
    }
    rw_walk(w, body);
}

/* SELECT, EXPLAIN, DECLARE CURSOR, PREPARE: the tables of the query they
 * hold are read (SELECT ... INTO, which creates a table, is refused on a
 * branch and under epoch.as_of). */
static void query_statement(walker_t *w, const char *key, json_object *body, size_t start,
                            size_t len, int nstmts)
{
    bool select = strcmp(key, "SelectStmt") == 0;
    int lock_mark = w->nlocked;
    if (w->s->read_only && select && rw_get(body, "intoClause")) {
        rw_fail(w, "25006", "RESET epoch.as_of to write again.",
                "SELECT ... INTO is not allowed while epoch.as_of is set (read-only time "
                "travel)");
        return;
    }
    if (w->s->on_branch && select && rw_get(body, "intoClause")) {
        rw_fail(w, "0A000", "Create tables on main.",
                "SELECT ... INTO is not allowed on branch \"%s\": it creates a table",
                rw_branch_name(w));
        return;
    }
    if (select)
        w->cur_select = body;
    if (!select || !rw_agg_statement(w, body, start, len))
        rw_walk(w, body);
    if (nstmts == 1 && select && !rw_get(body, "intoClause") && !rw_get(body, "lockingClause"))
        w->flags |= RW_F_PREPARABLE;
    if (select)
        rw_check_locks(w, body, lock_mark);
    w->cur_select = NULL;
}

/* INSERT/UPDATE/DELETE/MERGE: on a branch a write into the delta (dml.c),
 * MERGE refused; refused under epoch.as_of; on main only its reads. */
static void write_statement(walker_t *w, const char *key, json_object *body, size_t start,
                            size_t len)
{
    bool on_branch = w->s->on_branch;
    if (on_branch && !w->s->read_only && strcmp(key, "MergeStmt") != 0) {
        if (!rw_refuse_view_write(w, key, body))
            dml_statement(w, key, body, start, len, true);
        return;
    }
    if (on_branch || w->s->read_only) {
        rw_refuse_write(w, rw_write_verb(key));
        return;
    }
    rw_walk(w, body);
}

/* Any other statement (DDL, DO, CALL, ...): refused on a branch and under
 * epoch.as_of; on main walked for its "@ref"s, which it may not change. */
static void other_statement(walker_t *w, const char *key, json_object *body, size_t start)
{
    /* LOCK … IN ACCESS SHARE MODE (what pg_dump takes before it reads) only
     * keeps main's tables from DDL while the branch is read: harmless, and it
     * makes pg_dump work on a branch and at a ref */
    if ((w->s->on_branch || w->s->read_only) && strcmp(key, "LockStmt") == 0 &&
        rw_get_int(body, "mode", 0) == LOCK_ACCESS_SHARE) {
        lock_statement(w, body); /* forwarded as it is: it names main's tables */
        return;
    }
    if (w->s->on_branch || w->s->read_only) {
        char words[40];
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

/* One statement of the query (a RawStmt): hand it to the function for its
 * kind. */
static void dispatch_statement(walker_t *w, json_object *raw, int nstmts)
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
    if (w->s->on_branch && lex_contains_ci(w->sql + start, len, "set_config"))
        rw_restrict_kinds_in_calls(w, body);
    if (strcmp(key, "VariableSetStmt") == 0 &&
        strcmp(rw_get_str(body, "name") ? rw_get_str(body, "name") : "",
               "restrict_nonsystem_relation_kind") == 0)
        rw_restrict_kinds(w, body, start, len);
    else if (strcmp(key, "VariableSetStmt") == 0)
        set_variable(w, body, nstmts);
    else if (strcmp(key, "VariableShowStmt") == 0)
        show_variable(w, body, start, len);
    else if (strcmp(key, "DiscardStmt") == 0)
        w->flags |= RW_F_REFRESH | RW_F_DEALLOC;
    else if (strcmp(key, "DeallocateStmt") == 0)
        w->flags |= RW_F_DEALLOC;
    else if (one_of(key, harmless))
        return;
    else if (strcmp(key, "CopyStmt") == 0)
        copy_statement(w, body, start, len, nstmts);
    else if (one_of(key, query_holders))
        query_statement(w, key, body, start, len, nstmts);
    else if (rw_is_write_node(key))
        write_statement(w, key, body, start, len);
    else
        other_statement(w, key, body, start);
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

/* The outcome of the walk into *out (action, flags, the spliced text), and
 * the walker's lists freed; returns out->action. */
static rw_action_t fill_result(walker_t *w, rw_result_t *out, int nstmts)
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
        out->sql = rw_splice_all(w);
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
    return rw_parse_and_walk(&w, sql, out);
}

rw_action_t rw_parse_and_walk(walker_t *w, const char *sql, rw_result_t *out)
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
        return fill_result(w, out, 0);
    }
    json_object *stmts = rw_get(tree, "stmts");
    int n = stmts ? (int)json_object_array_length(stmts) : 0;
    for (int i = 0; i < n && !w->failed; i++) {
        w->stmt_no = i;
        w->stmt = json_object_array_get_idx(stmts, i);
        dispatch_statement(w, json_object_array_get_idx(stmts, i), n);
    }
    rw_action_t action = fill_result(w, out, n);
    json_object_put(tree);
    free(quoted);
    return action;
}
