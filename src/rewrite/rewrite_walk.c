/*
 * rewrite_walk — the walk of a statement's parse tree: WITH clauses and the
 * scope of CTE names, data-modifying CTEs on a branch, the writes a branch
 * or epoch.as_of refuses, row locks on replaced tables, constants whose
 * value is syntax (ORDER BY 1), and the calls of epoch's control functions
 * that may change the catalog. Table references go to rewrite_range.c.
 *
 * Must never: walk past a write it has not handed to dml.c or refused on a
 * branch.
 */
#include <string.h>

#include "common/lexer.h"
#include "rewrite/rewrite_internal.h"

bool rw_is_write_node(const char *key)
{
    return strcmp(key, "InsertStmt") == 0 || strcmp(key, "UpdateStmt") == 0 ||
           strcmp(key, "DeleteStmt") == 0 || strcmp(key, "MergeStmt") == 0;
}

/* INSERT/UPDATE/DELETE/MERGE for a write node's name */
const char *rw_write_verb(const char *key)
{
    return strcmp(key, "InsertStmt") == 0   ? "INSERT"
           : strcmp(key, "UpdateStmt") == 0 ? "UPDATE"
           : strcmp(key, "DeleteStmt") == 0 ? "DELETE"
                                            : "MERGE";
}

void rw_refuse_write(walker_t *w, const char *what)
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
bool rw_refuse_view_write(walker_t *w, const char *key, json_object *body)
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
            "%s through view \"%s\" is not allowed on branch \"%s\"", rw_write_verb(key), relname,
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
    if (!key || !rw_is_write_node(key) || !w->s->on_branch || w->s->read_only ||
        strcmp(key, "MergeStmt") == 0)
        return false;
    if (rw_refuse_view_write(w, key, body))
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
    const char **scope = rw_grow_array(w->scope, &w->scope_cap, w->nscope + (int)n, sizeof *scope);
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
bool rw_has_node(json_object *node, const char *type)
{
    if (json_object_is_type(node, json_type_array)) {
        size_t n = json_object_array_length(node);
        for (size_t i = 0; i < n; i++)
            if (rw_has_node(json_object_array_get_idx(node, i), type))
                return true;
        return false;
    }
    if (!json_object_is_type(node, json_type_object))
        return false;
    json_object_object_foreach(node, key, val)
    {
        if (strcmp(key, type) == 0 || rw_has_node(val, type))
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
void rw_check_locks(walker_t *w, json_object *select, int rewritten_before)
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
            rw_range_var(w, val, false, NULL);
            continue;
        }
        if (strcmp(key, "RangeTableSample") == 0) {
            rw_range_sample(w, val);
            continue;
        }
        if ((strcmp(key, "relation") == 0 || strcmp(key, "rel") == 0) && rw_get(val, "relname")) {
            rw_range_var(w, val, true, NULL); /* a write target (or DDL) */
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
                if (last && strcmp(last, "commit") == 0)
                    w->flags |= RW_F_COMMIT;
                if (last && (strcmp(last, "merge") == 0 || strcmp(last, "merge_continue") == 0 ||
                             strcmp(last, "sync") == 0))
                    w->flags |= RW_F_MERGE;
            }
            if (last && strcmp(last, "set_config") == 0)
                w->flags |= RW_F_REFRESH; /* may change search_path or epoch.branch */
        }
        if ((w->s->on_branch || w->s->read_only) && rw_is_write_node(key)) {
            rw_refuse_write(w, rw_write_verb(key));
            return;
        }
        if (strcmp(key, "lockingClause") == 0)
            continue; /* FOR UPDATE OF names are not table references */
        if (strcmp(key, "sortClause") == 0 || strcmp(key, "distinctClause") == 0 ||
            strcmp(key, "typmods") == 0)
            note_positional(w, val);
        if (strcmp(key, "groupClause") == 0 && rw_has_node(val, "ParamRef"))
            w->positional = true; /* GROUP BY age / $1 would not match age / $2 */
        if (strcmp(key, "ColumnRef") == 0) {
            rw_column_ref(w, val);
            continue;
        }
        if (strcmp(key, "SelectStmt") == 0) {
            int before = w->nlocked;
            json_object *outer = w->cur_select;
            w->cur_select = val;
            rw_walk(w, val);
            w->cur_select = outer;
            rw_check_locks(w, val, before);
            continue;
        }
        rw_walk(w, val);
    }
}
