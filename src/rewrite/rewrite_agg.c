/*
 * rewrite_agg — count, sum and avg over one tracked table on a branch,
 * computed from main's aggregate and the branch's changes instead of over
 * the overlay (issue 16: a whole-table count on a branch cost 2-4x main's,
 * because the overlay's anti-join touches every row of main).
 *
 * The branch's rows, as a signed sum of row sets (docs/sql.md):
 *   + the branch's live rows (dv_<id>)
 *   + every row of main (no anti-join: main's own plan, parallel)
 *   - main's rows whose key the branch holds (dk_<id>: probes by key)
 *   and when main changed the table since the base point S:
 *   - main's rows whose key main changed after S (and the branch did not)
 *   + their first pre-image after S, where the key existed then
 * Each arm aggregates its rows (count and sum negated in the subtracted
 * arms), grouped as the statement groups; the statement then adds the arms
 * up per group and keeps the groups with rows left. The arms are
 * materialized CTEs, each planned on its own: as subqueries of one UNION
 * ALL, PostgreSQL ran them side by side in a Parallel Append, each on one
 * core (main's count alone, 92 ms instead of 30 with two workers). count and sum are sums,
 * so the result is the overlay's; avg is the summed sum over the summed
 * count, as PostgreSQL computes it (numeric_div of the same operands).
 *
 * Not taken for a table of which the branch changed many rows (5 % of
 * main's, at least 1,000, at most 20,000: catalog_table_t.delta_big): its arm
 * of main's rows under the branch's keys then reads main once more, and
 * the overlay's one pass is cheaper (a 100,000-row branch of a 1M-row
 * table: count 120 ms this way, 100 ms through the overlay).
 *
 * Taken only for the shapes it is exact for: a top-level SELECT of one
 * tracked table (working rows of the session's branch, no row-level
 * security, no column grants, no TABLESAMPLE, no "@ref"), whose select list
 * holds count(*), count(col), sum(col) and avg(col) on integer or numeric
 * columns, and the GROUP BY columns; GROUP BY plain columns; ORDER BY
 * output names, positions or such aggregates; any WHERE (copied into each
 * arm, rewritten as usual); LIMIT/OFFSET. Anything else reads the overlay.
 *
 * Must never: change a result. A shape not listed above is not taken.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "branch/overlay.h"
#include "common/lexer.h"
#include "common/sqlbuf.h"
#include "rewrite/rewrite_internal.h"

#define MAX_AGGS 32
#define MAX_GROUPS 16

typedef enum { AGG_COUNT_STAR, AGG_COUNT, AGG_SUM, AGG_AVG } agg_kind_t;

typedef struct {
    agg_kind_t kind;
    int col; /* column of the table (not for count(*)) */
} agg_t;

typedef struct {
    const catalog_table_t *t;
    const char *name; /* what the statement calls the table (alias or name) */
    agg_t aggs[MAX_AGGS];
    int naggs;
    int groups[MAX_GROUPS]; /* columns */
    int ngroups;
} shape_t;

static const char *sval(json_object *n)
{
    return rw_get_str(rw_get(n, "String"), "sval");
}

/* catalog_col_index, for a field that may not be a name (NULL) */
static int column_index(const catalog_table_t *t, const char *name)
{
    return name ? catalog_col_index(t, name) : -1;
}

/* The column of t a ColumnRef names (col, or name.col), else -1. */
static int column_of(const shape_t *sh, json_object *cref)
{
    json_object *fields = rw_get(cref, "fields");
    size_t n = fields ? json_object_array_length(fields) : 0;
    if (n == 1)
        return column_index(sh->t, sval(json_object_array_get_idx(fields, 0)));
    if (n == 2) {
        const char *q = sval(json_object_array_get_idx(fields, 0));
        if (!q || strcmp(q, sh->name) != 0)
            return -1;
        return column_index(sh->t, sval(json_object_array_get_idx(fields, 1)));
    }
    return -1;
}

static bool summable(const char *type)
{
    return strcmp(type, "smallint") == 0 || strcmp(type, "integer") == 0 ||
           strcmp(type, "bigint") == 0 || strcmp(type, "numeric") == 0;
}

/* The aggregate a FuncCall is, or -1: count(*), count(col), sum(col),
 * avg(col), plain (no DISTINCT, FILTER, ORDER BY, OVER, VARIADIC). */
static int agg_of(shape_t *sh, json_object *fc)
{
    json_object *name = rw_get(fc, "funcname");
    size_t nn = name ? json_object_array_length(name) : 0;
    if (nn < 1 || nn > 2 || rw_get(fc, "agg_distinct") || rw_get(fc, "agg_filter") ||
        rw_get(fc, "agg_order") || rw_get(fc, "over") || rw_get(fc, "agg_within_group") ||
        rw_get(fc, "func_variadic"))
        return -1;
    if (nn == 2 && (!sval(json_object_array_get_idx(name, 0)) ||
                    strcmp(sval(json_object_array_get_idx(name, 0)), "pg_catalog") != 0))
        return -1;
    const char *f = sval(json_object_array_get_idx(name, nn - 1));
    json_object *args = rw_get(fc, "args");
    size_t na = args ? json_object_array_length(args) : 0;
    agg_t a = {.col = -1};
    if (!f)
        return -1;
    if (strcmp(f, "count") == 0 && rw_get(fc, "agg_star") && na == 0) {
        a.kind = AGG_COUNT_STAR;
    } else if (na == 1 && rw_get(json_object_array_get_idx(args, 0), "ColumnRef")) {
        a.col = column_of(sh, rw_get(json_object_array_get_idx(args, 0), "ColumnRef"));
        if (a.col < 0)
            return -1;
        if (strcmp(f, "count") == 0)
            a.kind = AGG_COUNT;
        else if (strcmp(f, "sum") == 0 && summable(sh->t->types[a.col]))
            a.kind = AGG_SUM;
        else if (strcmp(f, "avg") == 0 && summable(sh->t->types[a.col]))
            a.kind = AGG_AVG;
        else
            return -1;
    } else {
        return -1;
    }
    for (int i = 0; i < sh->naggs; i++)
        if (sh->aggs[i].kind == a.kind && sh->aggs[i].col == a.col)
            return i;
    if (sh->naggs == MAX_AGGS)
        return -1;
    sh->aggs[sh->naggs] = a;
    return sh->naggs++;
}

static int group_of(const shape_t *sh, int col)
{
    for (int i = 0; i < sh->ngroups; i++)
        if (sh->groups[i] == col)
            return i;
    return -1;
}

/* Does the statement's WHERE name a column as schema.table.column, or the
 * whole row (t, t.*)? Its text is copied into arms that read other
 * relations under the same name, where those would not resolve the same. */
static bool odd_column_refs(const shape_t *sh, json_object *node)
{
    if (json_object_is_type(node, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(node); i++)
            if (odd_column_refs(sh, json_object_array_get_idx(node, i)))
                return true;
        return false;
    }
    if (!json_object_is_type(node, json_type_object))
        return false;
    json_object_object_foreach(node, key, val)
    {
        if (strcmp(key, "ColumnRef") == 0) {
            json_object *fields = rw_get(val, "fields");
            size_t n = fields ? json_object_array_length(fields) : 0;
            json_object *last = n ? json_object_array_get_idx(fields, n - 1) : NULL;
            if (n > 2 || !sval(last))
                return true; /* schema.t.col, t.* */
            if (n == 1 && strcmp(sval(last), sh->name) == 0 && column_of(sh, val) < 0)
                return true; /* the whole row */
            continue;
        }
        if (odd_column_refs(sh, val))
            return true;
    }
    return false;
}

/* The select list and GROUP BY of a statement this file can compute. */
static bool read_shape(shape_t *sh, json_object *sel)
{
    json_object *groups = rw_get(sel, "groupClause");
    for (size_t i = 0; groups && i < json_object_array_length(groups); i++) {
        json_object *cref = rw_get(json_object_array_get_idx(groups, i), "ColumnRef");
        int col = cref ? column_of(sh, cref) : -1;
        if (col < 0 || sh->ngroups == MAX_GROUPS)
            return false;
        if (group_of(sh, col) < 0)
            sh->groups[sh->ngroups++] = col;
    }
    json_object *targets = rw_get(sel, "targetList");
    size_t nt = targets ? json_object_array_length(targets) : 0;
    bool any_agg = false;
    for (size_t i = 0; i < nt; i++) {
        json_object *rt = rw_get(json_object_array_get_idx(targets, i), "ResTarget");
        json_object *val = rw_get(rt, "val");
        if (rw_get(val, "FuncCall")) {
            if (agg_of(sh, rw_get(val, "FuncCall")) < 0)
                return false;
            any_agg = true;
        } else if (rw_get(val, "ColumnRef")) {
            if (group_of(sh, column_of(sh, rw_get(val, "ColumnRef"))) < 0)
                return false;
        } else {
            return false;
        }
    }
    return nt > 0 && (any_agg || sh->ngroups > 0);
}

/* count, sum, avg of aggregate i over the arms (their partials _a<i>,
 * _n<i>), typed as PostgreSQL types the aggregate. */
static void combined(sqlbuf_t *sb, const shape_t *sh, int i)
{
    const agg_t *a = &sh->aggs[i];
    const char *type = a->col >= 0 ? sh->t->types[a->col] : "";
    switch (a->kind) {
    case AGG_COUNT_STAR:
    case AGG_COUNT:
        sqlbuf_printf(sb, "coalesce(sum(_a%d), 0)::bigint", i);
        break;
    case AGG_SUM:
        /* sum(smallint/integer) is bigint, sum(bigint/numeric) numeric */
        sqlbuf_printf(sb, "(CASE WHEN sum(_n%d) > 0 THEN sum(_a%d) END)%s", i, i,
                      strcmp(type, "smallint") == 0 || strcmp(type, "integer") == 0 ? "::bigint"
                                                                                    : "");
        break;
    case AGG_AVG:
        sqlbuf_printf(sb,
                      "(CASE WHEN sum(_n%d) > 0 THEN sum(_a%d)::numeric / sum(_n%d)::numeric END)",
                      i, i, i);
        break;
    }
}

/* The select list of one arm: the group columns of alias q, then each
 * aggregate's partials (negated when sign < 0), then its row count _r. */
static void arm_select(sqlbuf_t *sb, const shape_t *sh, const char *q, int sign)
{
    const char *neg = sign < 0 ? "-" : "";
    SQLBUF_LIT(sb, "SELECT ");
    for (int i = 0; i < sh->ngroups; i++) {
        sqlbuf_printf(sb, "%s.", q);
        sqlbuf_ident(sb, sh->t->cols[sh->groups[i]]);
        sqlbuf_printf(sb, " AS _g%d, ", i);
    }
    for (int i = 0; i < sh->naggs; i++) {
        const agg_t *a = &sh->aggs[i];
        if (a->kind == AGG_COUNT_STAR) {
            sqlbuf_printf(sb, "%scount(*) AS _a%d, ", neg, i);
            continue;
        }
        const char *fn = a->kind == AGG_COUNT ? "count" : "sum";
        sqlbuf_printf(sb, "%s%s(%s.", neg, fn, q);
        sqlbuf_ident(sb, sh->t->cols[a->col]);
        sqlbuf_printf(sb, ") AS _a%d, ", i);
        if (a->kind != AGG_COUNT) {
            sqlbuf_printf(sb, "%scount(%s.", neg, q);
            sqlbuf_ident(sb, sh->t->cols[a->col]);
            sqlbuf_printf(sb, ") AS _n%d, ", i);
        }
    }
    sqlbuf_printf(sb, "%scount(*) AS _r", neg);
}

/* " FROM <rel> AS q WHERE <cond> AND (<where>) GROUP BY …" of one arm */
static void arm_rest(sqlbuf_t *sb, const shape_t *sh, const char *rel, const char *q,
                     const char *cond, const char *where)
{
    sqlbuf_printf(sb, " FROM %s AS %s WHERE %s", rel, q, cond);
    if (where)
        sqlbuf_printf(sb, " AND (%s)", where);
    for (int i = 0; i < sh->ngroups; i++) {
        sqlbuf_puts(sb, i ? ", " : " GROUP BY ");
        sqlbuf_printf(sb, "%s.", q);
        sqlbuf_ident(sb, sh->t->cols[sh->groups[i]]);
    }
}

/* The arms, as in the file's comment, for branch B at base point S: the
 * CTEs _epoch_a0 … _epoch_a4 */
static void arms(sqlbuf_t *sb, const shape_t *sh, const char *q, long long b, long long s,
                 const char *where)
{
    const catalog_table_t *t = sh->t;
    sqlbuf_t main_rel = {0}, cond = {0};
    bool failed = false;
    sqlbuf_ident(&main_rel, t->schema);
    sqlbuf_putc(&main_rel, '.');
    sqlbuf_ident(&main_rel, t->name);
    char dv[32], hv[32];
    snprintf(dv, sizeof dv, "epoch.\"dv_%d\"", t->id);
    snprintf(hv, sizeof hv, "epoch.\"hv_%d\"", t->id);
    const char *rel = sqlbuf_str(&main_rel);

    /* + the branch's live rows */
    sqlbuf_printf(&cond, "%s._epoch_branch = %lld AND NOT %s._epoch_deleted", q, b, q);
    SQLBUF_LIT(sb, "_epoch_a0 AS MATERIALIZED (");
    arm_select(sb, sh, q, 1);
    arm_rest(sb, sh, dv, q, sqlbuf_str(&cond), where);
    /* + every row of main */
    SQLBUF_LIT(sb, "), _epoch_a1 AS MATERIALIZED (");
    arm_select(sb, sh, q, 1);
    arm_rest(sb, sh, rel, q, "true", where);
    /* - main's rows whose key the branch holds */
    failed |= cond.failed;
    sqlbuf_free(&cond);
    SQLBUF_LIT(&cond, "(");
    overlay_key_list(&cond, t, q);
    SQLBUF_LIT(&cond, ") IN (SELECT ");
    overlay_key_list(&cond, t, "_epoch_d");
    sqlbuf_printf(&cond, " FROM epoch.\"dk_%d\" _epoch_d WHERE _epoch_d._epoch_branch = %lld)",
                  t->id, b);
    SQLBUF_LIT(sb, "), _epoch_a2 AS MATERIALIZED (");
    arm_select(sb, sh, q, -1);
    arm_rest(sb, sh, rel, q, sqlbuf_str(&cond), where);
    /* main changed since S: - main's rows of the keys it changed (the
     * branch did not), + their first pre-image after S (one-time filters) */
    failed |= cond.failed;
    sqlbuf_free(&cond);
    sqlbuf_printf(&cond, "epoch.\"_hmax_%d\"() > %lld AND (", t->id, s);
    overlay_key_list(&cond, t, q);
    SQLBUF_LIT(&cond, ") IN (SELECT ");
    overlay_key_list(&cond, t, "_epoch_h");
    sqlbuf_printf(&cond,
                  " FROM epoch.\"hk_%d\" _epoch_h WHERE _epoch_h._epoch_seq + 0 > %lld) AND NOT "
                  "EXISTS (SELECT 1 FROM epoch.\"dk_%d\" _epoch_d WHERE _epoch_d._epoch_branch = "
                  "%lld AND ",
                  t->id, s, t->id, b);
    overlay_key_match(&cond, t, "_epoch_d", q);
    SQLBUF_LIT(&cond, ")");
    SQLBUF_LIT(sb, "), _epoch_a3 AS MATERIALIZED (");
    arm_select(sb, sh, q, -1);
    arm_rest(sb, sh, rel, q, sqlbuf_str(&cond), where);
    failed |= cond.failed;
    sqlbuf_free(&cond);
    sqlbuf_printf(&cond,
                  "epoch.\"_hmax_%d\"() > %lld AND %s._epoch_seq + 0 > %lld AND %s._epoch_existed "
                  "AND NOT EXISTS (SELECT 1 FROM epoch.\"hk_%d\" _epoch_q WHERE ",
                  t->id, s, q, s, q, t->id);
    overlay_key_match(&cond, t, "_epoch_q", q);
    sqlbuf_printf(&cond,
                  " AND _epoch_q._epoch_seq + 0 > %lld AND _epoch_q._epoch_seq < %s._epoch_seq) "
                  "AND NOT EXISTS (SELECT 1 FROM epoch.\"dk_%d\" _epoch_d WHERE "
                  "_epoch_d._epoch_branch = %lld AND ",
                  s, q, t->id, b);
    overlay_key_match(&cond, t, "_epoch_d", q);
    SQLBUF_LIT(&cond, ")");
    SQLBUF_LIT(sb, "), _epoch_a4 AS MATERIALIZED (");
    arm_select(sb, sh, q, 1);
    arm_rest(sb, sh, hv, q, sqlbuf_str(&cond), where);
    SQLBUF_LIT(sb, ")");
    if (failed || main_rel.failed || cond.failed)
        sb->failed = true;
    sqlbuf_free(&main_rel);
    sqlbuf_free(&cond);
}

/* The output name PostgreSQL gives a select-list item without AS. */
static const char *output_name(const shape_t *sh, json_object *rt)
{
    const char *name = rw_get_str(rt, "name");
    if (name)
        return name;
    json_object *val = rw_get(rt, "val");
    json_object *fc = rw_get(val, "FuncCall");
    if (fc) {
        json_object *fn = rw_get(fc, "funcname");
        return sval(json_object_array_get_idx(fn, json_object_array_length(fn) - 1));
    }
    return sh->t->cols[column_of(sh, rw_get(val, "ColumnRef"))];
}

/* An ORDER BY item the outer statement can sort by: an output name, a
 * position, a group column, one of the aggregates. */
static bool sort_item(sqlbuf_t *sb, shape_t *sh, json_object *targets, json_object *sortby)
{
    json_object *node = rw_get(sortby, "node");
    const char *dir = rw_get_str(sortby, "sortby_dir");
    const char *nulls = rw_get_str(sortby, "sortby_nulls");
    if (dir && strcmp(dir, "SORTBY_USING") == 0)
        return false;
    json_object *cref = rw_get(node, "ColumnRef");
    json_object *aconst = rw_get(node, "A_Const");
    json_object *fc = rw_get(node, "FuncCall");
    if (cref) {
        json_object *fields = rw_get(cref, "fields");
        const char *one = json_object_array_length(fields) == 1
                              ? sval(json_object_array_get_idx(fields, 0))
                              : NULL;
        bool output = false;
        for (size_t i = 0; one && i < json_object_array_length(targets); i++)
            if (strcmp(output_name(sh, rw_get(json_object_array_get_idx(targets, i), "ResTarget")),
                       one) == 0)
                output = true;
        int g = group_of(sh, column_of(sh, cref));
        if (output)
            sqlbuf_ident(sb, one);
        else if (g >= 0)
            sqlbuf_printf(sb, "_g%d", g);
        else
            return false;
    } else if (aconst && rw_get(aconst, "ival")) {
        sqlbuf_printf(sb, "%d", rw_get_int(rw_get(aconst, "ival"), "ival", 0));
    } else if (fc) {
        int i = agg_of(sh, fc);
        if (i < 0)
            return false;
        combined(sb, sh, i);
    } else {
        return false;
    }
    if (dir && strcmp(dir, "SORTBY_ASC") == 0)
        SQLBUF_LIT(sb, " ASC");
    else if (dir && strcmp(dir, "SORTBY_DESC") == 0)
        SQLBUF_LIT(sb, " DESC");
    if (nulls && strcmp(nulls, "SORTBY_NULLS_FIRST") == 0)
        SQLBUF_LIT(sb, " NULLS FIRST");
    else if (nulls && strcmp(nulls, "SORTBY_NULLS_LAST") == 0)
        SQLBUF_LIT(sb, " NULLS LAST");
    return true;
}

/* The first clause keyword of kws at depth 0 in [from, to), or to. */
static size_t first_keyword(const char *sql, size_t from, size_t to, const char *const *kws)
{
    size_t best = to;
    for (; *kws; kws++) {
        size_t p = lex_find_keyword(sql, from, to, *kws);
        if (p < best)
            best = p;
    }
    return best;
}

bool rw_agg_statement(walker_t *w, json_object *sel, size_t start, size_t len)
{
    const catalog_t *cat = w->s->cat;
    if (!w->s->on_branch || w->s->read_only || !cat || cat->point >= 0 || w->view_depth > 0)
        return false;
    static const char *const unsupported[] = {
        "intoClause",   "lockingClause", "withClause", "distinctClause", "havingClause",
        "windowClause", "valuesLists",   "larg",       "rarg",           NULL};
    for (const char *const *k = unsupported; *k; k++)
        if (rw_get(sel, *k))
            return false;
    if (rw_has_node(rw_get(sel, "limitCount"), "SubLink") ||
        rw_has_node(rw_get(sel, "limitOffset"), "SubLink"))
        return false; /* the tail is copied as it is: no table may be read there */
    json_object *from = rw_get(sel, "fromClause");
    if (!from || json_object_array_length(from) != 1)
        return false;
    json_object *rv = rw_get(json_object_array_get_idx(from, 0), "RangeVar");
    const char *relname = rw_get_str(rv, "relname"), *schemaname = rw_get_str(rv, "schemaname");
    if (!rv || !relname || strncmp(relname, "_epoch", 6) == 0 ||
        (schemaname && strchr(schemaname, '@')) || !json_object_get_boolean(rw_get(rv, "inh")))
        return false;
    shape_t sh = {.t = catalog_find(cat, schemaname, relname)};
    if (!sh.t || sh.t->rls || sh.t->col_acl || sh.t->delta_big)
        return false;
    json_object *alias = rw_get(rv, "alias");
    if (alias && rw_get(alias, "colnames"))
        return false;
    sh.name = alias ? rw_get_str(alias, "aliasname") : relname;
    json_object *where = rw_get(sel, "whereClause");
    if (!sh.name || !read_shape(&sh, sel) || (where && odd_column_refs(&sh, where)))
        return false;

    size_t end = start + len;
    sqlbuf_t order = {0};
    json_object *targets = rw_get(sel, "targetList");
    json_object *sorts = rw_get(sel, "sortClause");
    for (size_t i = 0; sorts && i < json_object_array_length(sorts); i++) {
        sqlbuf_puts(&order, i ? ", " : " ORDER BY ");
        if (!sort_item(&order, &sh, targets,
                       rw_get(json_object_array_get_idx(sorts, i), "SortBy"))) {
            sqlbuf_free(&order);
            return false;
        }
    }
    /* from here on the statement is this file's: the WHERE is walked as
     * usual (tables it reads become overlays) and copied into each arm */
    static const char *const after_where[] = {"group", "order", "limit", "offset", "fetch", NULL};
    static const char *const tail_kws[] = {"limit", "offset", "fetch", NULL};
    size_t from_kw = lex_find_keyword(w->sql, start, end, "from");
    char *where_text = NULL;
    if (where) {
        size_t ws = lex_find_keyword(w->sql, from_kw, end, "where");
        size_t we = first_keyword(w->sql, ws, end, after_where);
        if (ws >= end) {
            sqlbuf_free(&order);
            return false;
        }
        rw_walk(w, where);
        where_text = rw_splice_range(w, lex_skip_blank(w->sql, ws + strlen("where")), we);
        for (size_t n = where_text ? strlen(where_text) : 0;
             n > 0 && strchr(" \t\r\n", where_text[n - 1]); n--)
            where_text[n - 1] = '\0';
        if (!where_text) {
            sqlbuf_free(&order);
            rw_fail_oom(w);
            return true;
        }
    }
    size_t tail = first_keyword(w->sql, from_kw, end, tail_kws);

    sqlbuf_t sb = {0}, q = {0};
    sqlbuf_ident(&q, sh.name);
    SQLBUF_LIT(&sb, "WITH ");
    arms(&sb, &sh, sqlbuf_str(&q), (long long)cat->branch_id, (long long)cat->base_seq, where_text);
    SQLBUF_LIT(&sb, " SELECT ");
    for (size_t i = 0; i < json_object_array_length(targets); i++) {
        json_object *rt = rw_get(json_object_array_get_idx(targets, i), "ResTarget");
        json_object *val = rw_get(rt, "val");
        if (i)
            SQLBUF_LIT(&sb, ", ");
        if (rw_get(val, "FuncCall"))
            combined(&sb, &sh, agg_of(&sh, rw_get(val, "FuncCall")));
        else
            sqlbuf_printf(&sb, "_g%d", group_of(&sh, column_of(&sh, rw_get(val, "ColumnRef"))));
        SQLBUF_LIT(&sb, " AS ");
        sqlbuf_ident(&sb, output_name(&sh, rt));
    }
    SQLBUF_LIT(&sb, " FROM (SELECT * FROM _epoch_a0 UNION ALL SELECT * FROM _epoch_a1 UNION ALL "
                    "SELECT * FROM _epoch_a2 UNION ALL SELECT * FROM _epoch_a3 UNION ALL SELECT * "
                    "FROM _epoch_a4) AS _epoch_agg");
    for (int i = 0; i < sh.ngroups; i++)
        sqlbuf_printf(&sb, "%s_g%d", i ? ", " : " GROUP BY ", i);
    if (sh.ngroups)
        SQLBUF_LIT(&sb, " HAVING sum(_r) <> 0"); /* the groups with rows left */
    sqlbuf_puts(&sb, sqlbuf_str(&order));
    if (tail < end) {
        SQLBUF_LIT(&sb, " ");
        sqlbuf_append(&sb, w->sql + tail, end - tail);
    }
    if (q.failed || order.failed)
        sb.failed = true;
    sqlbuf_free(&q);
    sqlbuf_free(&order);
    free(where_text);
    rw_add_edit(w, start, end, sqlbuf_take(&sb));
    return true;
}
