/*
 * dml_returning — the RETURNING list of a write on a branch. `*` and `x.*`
 * are spelled out as the table's columns (the delta has two more). An
 * UPDATE … FROM / DELETE … USING whose RETURNING names the other FROM/USING
 * items is written from a CTE that carries their rows:
 *
 * The write is an INSERT into the delta, whose RETURNING sees only the
 * delta's row, and it must stay the statement (its command tag is fixed
 * up). When a RETURNING item names another FROM/USING item, the rows to
 * write are first collected in a materialized CTE that also carries each
 * item's whole row (`"s" AS "_epoch_f1"`), and that RETURNING item becomes
 * a scalar sub-SELECT of its own text over the CTE row of the key just
 * written, where each item is back under its name:
 *   (SELECT s.m FROM _epoch_src AS _epoch_s,
 *        LATERAL (SELECT (_epoch_s."_epoch_f1").*) AS "s"
 *    WHERE _epoch_s.id = t.id LIMIT 1)
 * The item's column name is the sub-SELECT's, which PostgreSQL names after
 * that same text; the target's columns inside it are the row written. The
 * look-up scans the CTE: the cost grows with rows × rows, so it is used only
 * for items that need it.
 *
 * Must never: return a column of the delta's own (_epoch_branch,
 * _epoch_deleted), or guess the columns of an item it cannot name (refused
 * with 0A000 and a hint).
 */
#include <stdlib.h>
#include <string.h>

#include "rewrite/dml_internal.h"
#include "common/lexer.h"
#include "branch/overlay.h"

/* RETURNING text with `*` and `x.*` expanded to the table's columns (the
 * delta has two more). Edits already recorded inside are applied. */
char *dml_returning_text(walker_t *w, json_object *list, const catalog_table_t *t, size_t from,
                         size_t to)
{
    size_t n = list ? json_object_array_length(list) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *val = rw_get(rw_get(json_object_array_get_idx(list, i), "ResTarget"), "val");
        json_object *cref = rw_get(val, "ColumnRef");
        json_object *fields = rw_get(cref, "fields");
        size_t nf = fields ? json_object_array_length(fields) : 0;
        if (!nf || !rw_get(json_object_array_get_idx(fields, nf - 1), "A_Star"))
            continue;
        size_t loc = (size_t)rw_get_int(cref, "location", -1);
        const char *qual =
            nf > 1 ? rw_get_str(rw_get(json_object_array_get_idx(fields, 0), "String"), "sval")
                   : NULL;
        size_t end = loc;
        while (end < to && w->sql[end] != '*')
            end++;
        if (end >= to)
            continue;
        sqlbuf_t sb = {0};
        dml_ident_list(&sb, t, qual, COLS_ALL);
        rw_add_edit(w, loc, end + 1, sqlbuf_take(&sb));
    }
    return rw_splice_range(w, from, to);
}

static void collect_from(json_object *item, from_scope_t *fs)
{
    const char *name = NULL;
    json_object *node;
    if ((node = rw_get(item, "RangeVar"))) {
        name = rw_get_str(rw_get(node, "alias"), "aliasname");
        if (!name)
            name = rw_get_str(node, "relname");
    } else if ((node = rw_get(item, "RangeSubselect"))) {
        name = rw_get_str(rw_get(node, "alias"), "aliasname");
    } else if ((node = rw_get(item, "RangeTableSample"))) {
        json_object *rv = rw_get(rw_get(node, "relation"), "RangeVar");
        name = rw_get_str(rw_get(rv, "alias"), "aliasname");
        if (!name)
            name = rw_get_str(rv, "relname");
    } else if ((node = rw_get(item, "JoinExpr"))) {
        name = rw_get_str(rw_get(node, "alias"), "aliasname");
        if (!name) {
            collect_from(rw_get(node, "larg"), fs);
            collect_from(rw_get(node, "rarg"), fs);
            return;
        }
    }
    /* anything else (a function, whose alias also names its column) is opaque */
    if (!name) {
        fs->opaque = true;
        return;
    }
    if (fs->n >= MAX_FROM) {
        fs->too_many = true;
        return;
    }
    /* the whole row is carried as `"name"`, which would be a column of that
     * name if the item or the target had one */
    json_object *colnames = rw_get(rw_get(node, "alias"), "colnames");
    size_t nc = colnames ? json_object_array_length(colnames) : 0;
    for (size_t i = 0; i < nc; i++) {
        const char *c =
            rw_get_str(rw_get(json_object_array_get_idx(colnames, i), "String"), "sval");
        fs->opaque |= c && strcmp(c, name) == 0;
    }
    fs->names[fs->n] = name;
    fs->nodes[fs->n++] = item;
}

/* The name a column reference is qualified with (NULL if bare). */
static const char *cref_qualifier(json_object *fields, size_t nf)
{
    if (nf < 2)
        return NULL;
    return rw_get_str(rw_get(json_object_array_get_idx(fields, nf - 2), "String"), "sval");
}

/* Does the expression name something other than the target's row: a
 * column qualified with another name, a bare name that is not one of the
 * target's columns, or a whole row other than the target's? (Names inside
 * sub-SELECTs count too: a needless look-up only costs time.) */
static bool names_other_items(json_object *node, const target_t *tg)
{
    if (!node)
        return false;
    if (json_object_is_type(node, json_type_array)) {
        size_t n = json_object_array_length(node);
        for (size_t i = 0; i < n; i++)
            if (names_other_items(json_object_array_get_idx(node, i), tg))
                return true;
        return false;
    }
    if (!json_object_is_type(node, json_type_object))
        return false;
    json_object *cref = rw_get(node, "ColumnRef");
    if (cref) {
        json_object *fields = rw_get(cref, "fields");
        size_t nf = fields ? json_object_array_length(fields) : 0;
        const char *last =
            nf ? rw_get_str(rw_get(json_object_array_get_idx(fields, nf - 1), "String"), "sval")
               : NULL;
        const char *qual = cref_qualifier(fields, nf);
        if (qual)
            return strcmp(qual, tg->alias) != 0;
        if (!last)
            return false; /* a bare `*`: expanded by the caller */
        return strcmp(last, tg->alias) != 0 && catalog_col_index(tg->t, last) < 0;
    }
    json_object_object_foreach(node, key, val)
    {
        (void)key;
        if (names_other_items(val, tg))
            return true;
    }
    return false;
}

/* The column names of FROM item i, when they can be known here: a tracked
 * table (not shadowed by a CTE), or a column alias list: *names is malloc'd
 * with *n entries (pointers into the tree or the catalog; the caller frees
 * the array). false otherwise, or out of memory (w->failed). */
static bool from_item_columns(walker_t *w, json_object *withclause, const from_scope_t *fs, int i,
                              const char ***names, int *n)
{
    json_object *item = fs->nodes[i];
    json_object *rv = rw_get(item, "RangeVar");
    json_object *alias = NULL;
    if (rv)
        alias = rw_get(rv, "alias");
    else if (rw_get(item, "RangeSubselect"))
        alias = rw_get(rw_get(item, "RangeSubselect"), "alias");
    else if (rw_get(item, "RangeFunction"))
        alias = rw_get(rw_get(item, "RangeFunction"), "alias");
    json_object *colnames = rw_get(alias, "colnames");
    int nc = colnames ? (int)json_object_array_length(colnames) : 0;
    const catalog_table_t *t = NULL;
    if (rv) {
        const char *schema = rw_get_str(rv, "schemaname");
        const char *relname = rw_get_str(rv, "relname");
        bool cte = false;
        for (int k = 0; !schema && relname && k < w->nscope; k++)
            cte |= strcmp(w->scope[k], relname) == 0;
        json_object *ctes = rw_get(withclause, "ctes");
        size_t nctes = ctes ? json_object_array_length(ctes) : 0;
        for (size_t k = 0; !schema && relname && k < nctes; k++) {
            const char *cname = rw_get_str(
                rw_get(json_object_array_get_idx(ctes, k), "CommonTableExpr"), "ctename");
            cte |= cname && strcmp(cname, relname) == 0;
        }
        if (!cte && relname)
            t = catalog_find(w->s->cat, schema, relname);
    } else if (nc > 0 && rw_get(item, "RangeSubselect")) {
        /* VALUES … AS k(a, b): the list names every column */
        json_object *sel = rw_get(rw_get(rw_get(item, "RangeSubselect"), "subquery"), "SelectStmt");
        json_object *values = rw_get(sel, "valuesLists");
        json_object *row0 =
            values ? rw_get(rw_get(json_object_array_get_idx(values, 0), "List"), "items") : NULL;
        if (!row0 || (int)json_object_array_length(row0) != nc)
            return false;
    } else {
        return false;
    }
    if (rv && !t)
        return false;
    int total = t ? t->ncols : nc;
    if (nc > total)
        return false;
    if (!(*names = calloc((size_t)total + 1, sizeof **names))) {
        rw_fail_oom(w);
        return false;
    }
    for (int k = 0; k < total; k++)
        (*names)[k] =
            k < nc ? rw_get_str(rw_get(json_object_array_get_idx(colnames, k), "String"), "sval")
                   : t->cols[k];
    *n = total;
    return true;
}

/* A look-up of one RETURNING item: its text evaluated over the CTE row of
 * the key the delta row has. */
static void lookup_item(walker_t *w, sqlbuf_t *sb, const target_t *tg, const from_scope_t *fs,
                        const char *src, const char *text)
{
    sqlbuf_printf(sb, "(SELECT %s FROM %s AS _epoch_s", text, src);
    for (int i = 0; i < fs->n; i++) {
        sqlbuf_printf(sb, ", LATERAL (SELECT (_epoch_s.\"_epoch_f%d\").*) AS ", i + 1);
        sqlbuf_ident(sb, fs->names[i]);
    }
    SQLBUF_LIT(sb, " WHERE ");
    char *alias = dml_quoted_ident(tg->alias);
    if (alias)
        overlay_key_match(sb, tg->t, "_epoch_s", alias);
    else
        rw_fail_oom(w);
    free(alias);
    SQLBUF_LIT(sb, " LIMIT 1)");
}

/* The FROM/USING items of a joined UPDATE/DELETE when its RETURNING needs
 * them (fs filled), or false: no RETURNING, no item naming another FROM
 * item, or a refusal (w->failed). */
bool dml_returning_needs_from(walker_t *w, json_object *body, const target_t *tg,
                              const char *from_key, from_scope_t *fs)
{
    json_object *list = rw_get(body, "returningList");
    json_object *from = rw_get(body, from_key);
    size_t n = list ? json_object_array_length(list) : 0;
    if (!n || !from)
        return false;
    bool needed = false;
    for (size_t i = 0; i < n && !needed; i++) {
        json_object *val = rw_get(rw_get(json_object_array_get_idx(list, i), "ResTarget"), "val");
        json_object *fields = rw_get(rw_get(val, "ColumnRef"), "fields");
        size_t nf = fields ? json_object_array_length(fields) : 0;
        /* `*` is every item's columns */
        needed = names_other_items(val, tg) ||
                 (nf == 1 && rw_get(json_object_array_get_idx(fields, 0), "A_Star"));
    }
    if (!needed)
        return false;
    memset(fs, 0, sizeof *fs);
    size_t nfrom = json_object_array_length(from);
    for (size_t i = 0; i < nfrom; i++)
        collect_from(json_object_array_get_idx(from, i), fs);
    for (int i = 0; i < fs->n; i++) {
        fs->opaque |= catalog_col_index(tg->t, fs->names[i]) >= 0;
        /* a tracked table of that name read without an alias (or a CTE of
         * that name: then the check is only needless) */
        json_object *rv = rw_get(fs->nodes[i], "RangeVar");
        const catalog_table_t *it =
            rv && !rw_get(rv, "alias")
                ? catalog_find(w->s->cat, rw_get_str(rv, "schemaname"), rw_get_str(rv, "relname"))
                : NULL;
        fs->opaque |= it && catalog_col_index(it, fs->names[i]) >= 0;
    }
    if (fs->too_many) {
        rw_fail(w, "54000", "Name fewer FROM/USING items in RETURNING, or write it on main.",
                "RETURNING that names the FROM/USING items of a write on branch \"%s\" is "
                "limited to %d items (epoch's limit)",
                rw_branch_name(w), MAX_FROM);
        return false;
    }
    if (fs->opaque) {
        rw_fail(w, "0A000",
                "Give every FROM/USING item an alias that is not a column name (a join too), "
                "or write it on main.",
                "RETURNING that names the FROM/USING items of this statement is not supported "
                "on branch \"%s\" yet: an item is a function, has no alias, or its alias is "
                "also a column name",
                rw_branch_name(w));
        return false;
    }
    return true;
}

/* Whole rows of the FROM items, as columns of the CTE: `, "s" AS "_epoch_f1"`. */
void dml_carry_from_rows(sqlbuf_t *sb, const from_scope_t *fs)
{
    for (int i = 0; i < fs->n; i++) {
        SQLBUF_LIT(sb, ", ");
        sqlbuf_ident(sb, fs->names[i]);
        sqlbuf_printf(sb, " AS \"_epoch_f%d\"", i + 1);
    }
}

static void joined_returning_items(walker_t *w, sqlbuf_t *sb, json_object *body, const target_t *tg,
                                   const from_scope_t *fs, const char *src, size_t ret, size_t end,
                                   const size_t *commas, int n);

/* ` RETURNING …` of a joined write whose rows are in CTE src: items that
 * name the other FROM items become look-ups; `*` and `x.*` are spelled out
 * (the target's columns, then every item's, as PostgreSQL expands them). */
void dml_joined_returning(walker_t *w, sqlbuf_t *sb, json_object *body, const target_t *tg,
                          const from_scope_t *fs, const char *src, size_t ret, size_t end)
{
    json_object *list = rw_get(body, "returningList");
    int n = (int)json_object_array_length(list);
    /* per statement, sized by the list (PostgreSQL allows 1,664 items) */
    size_t *commas = calloc((size_t)n + 1, sizeof *commas);
    if (!commas) {
        rw_fail_oom(w);
        return;
    }
    if (lex_find_char(w->sql, ret + 9, end, ',', commas, n) != n - 1) {
        free(commas);
        dml_refuse(w, "this RETURNING list");
        return;
    }
    joined_returning_items(w, sb, body, tg, fs, src, ret, end, commas, n);
    free(commas);
}

/* The n items of a joined write's RETURNING, separated at commas. */
static void joined_returning_items(walker_t *w, sqlbuf_t *sb, json_object *body, const target_t *tg,
                                   const from_scope_t *fs, const char *src, size_t ret, size_t end,
                                   const size_t *commas, int n)
{
    json_object *list = rw_get(body, "returningList");
    SQLBUF_LIT(sb, " RETURNING ");
    size_t from = ret + 9;
    for (int i = 0; i < n; i++) {
        size_t to = i < n - 1 ? commas[i] : end;
        json_object *rt = rw_get(json_object_array_get_idx(list, i), "ResTarget");
        json_object *val = rw_get(rt, "val");
        json_object *fields = rw_get(rw_get(val, "ColumnRef"), "fields");
        size_t nf = fields ? json_object_array_length(fields) : 0;
        bool star = nf && rw_get(json_object_array_get_idx(fields, nf - 1), "A_Star");
        const char *qual = star ? cref_qualifier(fields, nf) : NULL;
        if (i)
            SQLBUF_LIT(sb, ", ");
        if (star) {
            dml_drop_edits(w, from, to);
            bool first = true;
            if (!qual || strcmp(qual, tg->alias) == 0) {
                dml_ident_list(sb, tg->t, tg->alias, COLS_ALL);
                first = false;
            }
            for (int k = 0; k < fs->n; k++) {
                if (qual && strcmp(qual, fs->names[k]) != 0)
                    continue;
                const char **names = NULL;
                int nc = 0;
                if (!from_item_columns(w, rw_get(body, "withClause"), fs, k, &names, &nc)) {
                    if (w->failed)
                        return;
                    rw_fail(w, "0A000",
                            "Name the columns you need instead of \"*\", or give the item a "
                            "column alias list.",
                            "RETURNING * of the columns of \"%s\" is not supported on branch "
                            "\"%s\" yet",
                            fs->names[k], rw_branch_name(w));
                    return;
                }
                for (int c = 0; c < nc; c++) {
                    sqlbuf_t column = {0};
                    sqlbuf_ident(&column, fs->names[k]);
                    sqlbuf_putc(&column, '.');
                    sqlbuf_ident(&column, names[c]);
                    char *text = sqlbuf_take(&column);
                    if (!text) {
                        free(names);
                        rw_fail_oom(w);
                        return;
                    }
                    if (!first)
                        SQLBUF_LIT(sb, ", ");
                    first = false;
                    lookup_item(w, sb, tg, fs, src, text);
                    free(text);
                }
                free(names);
            }
            if (first) { /* x.* of a name that is neither */
                rw_fail(w, "42P01", NULL, "missing FROM-clause entry for table \"%s\"",
                        qual ? qual : "?");
                return;
            }
        } else {
            char *text = rw_splice_range(w, from, to);
            if (!text) {
                rw_fail_oom(w);
                return;
            }
            if (names_other_items(val, tg))
                lookup_item(w, sb, tg, fs, src, text);
            else
                sqlbuf_puts(sb, text);
            free(text);
        }
        from = to + 1;
    }
}

void dml_emit_returning(walker_t *w, sqlbuf_t *sb, json_object *body, const catalog_table_t *t,
                        size_t ret, size_t end)
{
    if (ret >= end)
        return;
    char *r = dml_returning_text(w, rw_get(body, "returningList"), t, ret, end);
    if (r) {
        sqlbuf_putc(sb, ' ');
        sqlbuf_puts(sb, r);
    } else {
        rw_fail_oom(w);
    }
    free(r);
}

/* UPDATE … FROM / DELETE … USING whose RETURNING names the other items: the
 * rows to write (DISTINCT ON the key, as without RETURNING) in _epoch_src,
 * with the items' whole rows, then the write from it. */
void dml_joined_write(walker_t *w, sqlbuf_t *sb, json_object *body, const target_t *tg,
                      const clauses_t *c, const char *from_kw, char **exprs, const int *col_of,
                      int nt, const from_scope_t *fs, char *prefix)
{
    const catalog_table_t *t = tg->t;
    bool del = exprs == NULL;
    dml_with_prefix(sb, prefix);
    SQLBUF_LIT(sb, "_epoch_src AS MATERIALIZED (SELECT ");
    dml_distinct_on(sb, tg, true);
    bool first = true;
    for (int col = 0; col < t->ncols; col++) {
        if (!dml_col_in(t, col, COLS_WRITTEN))
            continue;
        if (!first)
            SQLBUF_LIT(sb, ", ");
        first = false;
        if (del) {
            sqlbuf_ident(sb, tg->alias);
            sqlbuf_putc(sb, '.');
            sqlbuf_ident(sb, t->cols[col]);
        } else {
            /* typed: a CTE's select list would make 'x' and $1 text */
            dml_assigned_value(sb, tg, exprs, col_of, nt, col, true);
        }
        SQLBUF_LIT(sb, " AS ");
        sqlbuf_ident(sb, t->cols[col]);
    }
    dml_carry_from_rows(sb, fs);
    sqlbuf_printf(sb, " FROM %s, ", tg->overlay);
    dml_emit_range(w, sb, c->from + strlen(from_kw), dml_next_clause(c, c->from));
    if (c->where < c->end) {
        if (dml_where_current_of(w, c))
            return;
        SQLBUF_LIT(sb, " WHERE ");
        dml_emit_range(w, sb, c->where + 5, dml_next_clause(c, c->where));
    }
    SQLBUF_LIT(sb, ") ");
    dml_upsert_head(sb, tg, del);
    sqlbuf_puts(sb, tg->bid);
    for (int col = 0; col < t->ncols; col++) {
        if (!dml_col_in(t, col, COLS_WRITTEN))
            continue;
        SQLBUF_LIT(sb, ", _epoch_src.");
        sqlbuf_ident(sb, t->cols[col]);
    }
    sqlbuf_puts(sb, del ? ", true FROM _epoch_src" : " FROM _epoch_src");
    /* the computed row is taken as it is (its SET and WHERE may name the
     * other items, which the conflict clause cannot see); tombstones stay */
    recheck_t none = {0};
    dml_conflict_tail(sb, tg, del ? CONFLICT_DELETE : CONFLICT_UPDATE, &none);
    dml_joined_returning(w, sb, body, tg, fs, "_epoch_src", c->ret, c->end);
}
