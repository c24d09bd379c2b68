/*
 * rewrite_columns — which columns of a tracked table a statement may read.
 *
 * A table with SELECT granted on some of its columns is read on a branch
 * through an overlay that reads only those columns (overlay.h's cols), so
 * that PostgreSQL checks the privileges of the columns the statement reads,
 * as it does on main. The answer may only err on the side of more columns:
 * a column left out comes out as NULL, so one the statement reads after all
 * would be a wrong answer. Hence every name a column reference of the
 * statement uses counts, wherever it appears, and anything that reads a row
 * whole, or columns by position, means every column.
 *
 * Must never: leave out a column the statement reads.
 */
#include <stdlib.h>
#include <string.h>

#include "rewrite/rewrite_internal.h"

typedef struct scan {
    const catalog_table_t *t;
    const char *name; /* the table's alias, else its name */
    bool *used;
    bool all;
} scan_t;

static const char *field_name(json_object *fields, size_t i)
{
    return rw_get_str(rw_get(json_object_array_get_idx(fields, i), "String"), "sval");
}

static void mark(scan_t *s, const char *col)
{
    int i = col ? catalog_col_index(s->t, col) : -1;
    if (i >= 0)
        s->used[i] = true;
}

/* name, name.col, schema.name.col, a.b.c: */
static void column_ref(scan_t *s, json_object *cref)
{
    json_object *fields = rw_get(cref, "fields");
    size_t nf = fields ? json_object_array_length(fields) : 0;
    for (size_t i = 0; i < nf; i++)
        if (rw_get(json_object_array_get_idx(fields, i), "A_Star")) {
            s->all = true; /* * or x.*: every column of something */
            return;
        }
    if (nf == 1) {
        const char *f = field_name(fields, 0);
        if (f && strcmp(f, s->name) == 0)
            s->all = true; /* the table's whole row (t, f(t), (t).col) */
        mark(s, f);
        return;
    }
    for (size_t i = 1; i < nf; i++) {
        const char *f = field_name(fields, i);
        mark(s, f);
        /* name.f where f is no column: a function of the whole row */
        const char *q = field_name(fields, i - 1);
        if (q && f && strcmp(q, s->name) == 0 && catalog_col_index(s->t, f) < 0)
            s->all = true;
    }
}

static void scan(scan_t *s, json_object *node)
{
    if (s->all)
        return;
    if (json_object_is_type(node, json_type_array)) {
        size_t n = json_object_array_length(node);
        for (size_t i = 0; i < n && !s->all; i++)
            scan(s, json_object_array_get_idx(node, i));
        return;
    }
    if (!json_object_is_type(node, json_type_object))
        return;
    json_object_object_foreach(node, key, val)
    {
        if (strcmp(key, "ColumnRef") == 0) {
            column_ref(s, val);
        } else if (strcmp(key, "JoinExpr") == 0) {
            json_object *natural = rw_get(val, "isNatural");
            if (natural && json_object_get_boolean(natural))
                s->all = true; /* joins on the columns both sides have */
            json_object *using = rw_get(val, "usingClause");
            size_t n = using ? json_object_array_length(using) : 0;
            for (size_t i = 0; i < n; i++)
                mark(s, field_name(using, i));
            scan(s, val);
        } else {
            scan(s, val);
        }
        if (s->all)
            return;
    }
}

bool *rw_columns_read(const walker_t *w, const catalog_table_t *t, const char *name,
                      json_object *rv)
{
    /* t AS a(x, y): the columns go by other names */
    if (!name || !w->stmt || rw_get(rw_get(rv, "alias"), "colnames"))
        return NULL;
    scan_t s = {.t = t, .name = name, .used = calloc((size_t)t->ncols + 1, sizeof(bool))};
    if (!s.used)
        return NULL;
    scan(&s, w->stmt);
    if (s.all) {
        free(s.used);
        return NULL;
    }
    return s.used;
}
