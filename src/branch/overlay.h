/*
 * overlay — the SQL of a tracked table's rows at a ref (DESIGN.md's
 * state(table, ref)): the branch's own rows UNION ALL the rows of main as of
 * the branch's base point whose key the branch has not changed.
 */
#ifndef EPOCH_BRANCH_OVERLAY_H
#define EPOCH_BRANCH_OVERLAY_H

#include "branch/catalog.h"
#include "common/sqlbuf.h"

/* A condition on a key column that the query applies to the table anyway
 * (a top-level WHERE conjunct with a constant): copied into the overlay's
 * anti-joins, whose inner side PostgreSQL would otherwise read whole. */
typedef struct overlay_pred {
    int col;        /* index into t->cols (a key column) */
    const char *op; /* "=", "<", "<=", ">", ">=" or "BETWEEN" */
    char *v1, *v2;  /* the constants' text; v2 for BETWEEN */
} overlay_pred_t;

/* What the query lets the overlay leave out: none of it is needed (a zeroed
 * struct reads everything). */
typedef struct overlay_narrow {
    const overlay_pred_t *preds; /* key conditions copied into the arms */
    int npreds;
    /* sample (NULL = none): a TABLESAMPLE clause, applied to the table each
     * arm reads its rows from (every row of the branch comes from exactly
     * one arm); not with a point */
    const char *sample;
    /* per column of t, whether the query may read it (NULL = every one):
     * the others come out as NULLs, so that PostgreSQL checks the column
     * privileges of the columns read only, as on main */
    const bool *cols;
} overlay_narrow_t;

/* Append to sb a parenthesised subquery with exactly t's columns, in order and
 * with the same names and types. branch_id, base_seq and point are SQL
 * expressions (literals, or scalar subqueries of the CTE `with` for a "@ref"
 * named in the query; with NULL = none, else the text "name AS (…)" put
 * first in the subquery's WITH); point NULL (the C pointer) = the branch's
 * working rows, else its rows at that point of the change sequence (an
 * expression that may yield NULL at run time, which means the working rows
 * too). */
void overlay_sql(sqlbuf_t *sb, const catalog_table_t *t, const char *with, const char *branch_id,
                 const char *base_seq, const char *point, const overlay_narrow_t *n);

/* Append `a.k1 = b.k1 AND …` over t's key columns; a and b are SQL
 * qualifiers written as given (quote them first if needed). */
/* "q.k1, q.k2" of the primary key columns */
void overlay_key_list(sqlbuf_t *sb, const catalog_table_t *t, const char *qual);
void overlay_key_match(sqlbuf_t *sb, const catalog_table_t *t, const char *a, const char *b);

#endif
