/*
 * overlay — generate state(table, ref) SQL.
 *
 * For a branch b with base point S, table T with key k:
 *   delta rows of b that are not tombstones
 *   UNION ALL main rows not changed by b and not changed on main after S
 *   UNION ALL, for keys changed on main after S and not changed by b, the
 *             first captured pre-image after S (the row as it was at S)
 * (the middle arm is written twice, gated on whether main changed at all
 * since S, so the usual case plans no anti-join against the history)
 * UNION ALL, not UNION: the three arms never share a key, so deduplication
 * would only cost time. The arms keep predicates the planner can push down
 * into index scans on (branch, key) and (key, seq).
 *
 * The history's "after the base point" bound is written `_epoch_seq + 0 >
 * S`, which no index can serve, so that the (key, seq) index serves every
 * probe by key. The history only grows at the top of _epoch_seq and its
 * statistics lag behind: with the bound usable by the (seq) index,
 * PostgreSQL estimated it to match a row or two and scanned that index from
 * S once per key probed (15 ms per probe with 280,000 rows after S; a
 * 10,000-row INSERT on a branch went from 2 s to over 60 s), or joined
 * 280,000 such rows against the branch's rows without a key (a 200,000-row
 * sum on a branch timed out). The price: a whole-table read of a branch
 * whose table main changed after S reads the whole history once (a hashed
 * anti-join) instead of its rows after S; the (seq) index serves only the
 * "did main change at all" test (max(_epoch_seq), epoch._hmax_<id>()).
 *
 * At a point (a commit, a "@ref", a session's epoch.as_of) the branch's rows
 * are those it held then: the subquery starts with a WITH whose CTE
 * _epoch_at lists the keys and the version chosen (delta_at()), which the
 * first arm joins back to the rows and the anti-joins read; a "@ref" adds a
 * CTE _epoch_ref, the ref resolved once per statement.
 *
 * Must never: emit an unquoted name or value.
 */
#include "branch/overlay.h"

#include "common/lexer.h"
#include "common/log.h"

#include <string.h>

/* t's columns (qualified by qual, if any); a column the query does not read
 * (used[i] false) as `NULL::type AS col` */
static void column_list(sqlbuf_t *sb, const catalog_table_t *t, const char *qual, const bool *used)
{
    for (int i = 0; i < t->ncols; i++) {
        if (i)
            SQLBUF_LIT(sb, ", ");
        if (used && !used[i]) {
            sqlbuf_printf(sb, "NULL::%s AS ", t->types[i]);
        } else if (qual) {
            sqlbuf_printf(sb, "%s.", qual);
        }
        sqlbuf_ident(sb, t->cols[i]);
    }
}

void overlay_key_list(sqlbuf_t *sb, const catalog_table_t *t, const char *qual)
{
    bool first = true;
    for (int i = 0; i < t->ncols; i++) {
        if (!t->is_pk[i])
            continue;
        if (!first)
            SQLBUF_LIT(sb, ", ");
        first = false;
        sqlbuf_printf(sb, "%s.", qual);
        sqlbuf_ident(sb, t->cols[i]);
    }
}

void overlay_key_match(sqlbuf_t *sb, const catalog_table_t *t, const char *a, const char *b)
{
    bool first = true;
    for (int i = 0; i < t->ncols; i++) {
        if (!t->is_pk[i])
            continue;
        if (!first)
            SQLBUF_LIT(sb, " AND ");
        first = false;
        sqlbuf_printf(sb, "%s.", a);
        sqlbuf_ident(sb, t->cols[i]);
        sqlbuf_printf(sb, " = %s.", b);
        sqlbuf_ident(sb, t->cols[i]);
    }
}

/* AND q.col op value … for the copied key conditions */
static void key_preds(sqlbuf_t *sb, const catalog_table_t *t, const char *q,
                      const overlay_pred_t *p, int n)
{
    for (int i = 0; i < n; i++) {
        SQLBUF_LIT(sb, " AND ");
        if (q)
            sqlbuf_printf(sb, "%s.", q);
        sqlbuf_ident(sb, t->cols[p[i].col]);
        if (strcmp(p[i].op, "BETWEEN") == 0)
            sqlbuf_printf(sb, " BETWEEN %s AND %s", p[i].v1, p[i].v2);
        else
            sqlbuf_printf(sb, " %s %s", p[i].op, p[i].v1);
    }
}

/* The branch's rows as they were at point (docs/history.md), as the
 * statement's CTE "_epoch_at" of their keys: for each key, the first
 * pre-image b_<id> holds after the point (_epoch_o its sequence number),
 * else its row of d_<id> (_epoch_o NULL); a pre-image with _epoch_deleted
 * NULL means the branch held no row then, and is left out.
 *
 * One DISTINCT ON over the changes after the point and the working rows,
 * not anti-joins between them: a sort of O(changes) rows whatever the
 * planner believes about b_<id> (a branch newer than its statistics is
 * estimated at a row, and the anti-join became a nested loop of 1.5 M
 * comparisons for 1,000 changes). Computed once (a CTE) for the arms that
 * need it: written into each, a point lookup cost 1.6x the head's. It reads
 * the key views: under row-level security they hold every key of which the
 * role may see some version, so the choice of version is made on all of a
 * key's entries, and the rows are then read through the row views
 * (branch_at_rows). The query's key conditions are copied into both of its
 * arms; with some, the bound is written `_epoch_seq + 0 > point` so that
 * the (branch, key, seq) index serves the probe and not the (branch, seq)
 * one, which reads every change after the point per probe.
 * functions/history.sql's epoch._delta_at() has the same meaning. */
static void delta_at(sqlbuf_t *sb, const catalog_table_t *t, const char *branch_id,
                     const char *point, const overlay_pred_t *p, int n)
{
    SQLBUF_LIT(sb, "_epoch_at AS MATERIALIZED (SELECT * FROM (SELECT DISTINCT ON (");
    overlay_key_list(sb, t, "_u");
    SQLBUF_LIT(sb, ") _u.* FROM (SELECT ");
    overlay_key_list(sb, t, "_dy");
    sqlbuf_printf(sb,
                  ", _dy._epoch_deleted, _dy._epoch_seq AS _epoch_o FROM epoch.\"bk_%d\" _dy "
                  "WHERE _dy._epoch_branch = %s AND _dy._epoch_seq%s > %s",
                  t->id, branch_id, n > 0 ? " + 0" : "", point);
    key_preds(sb, t, "_dy", p, n);
    SQLBUF_LIT(sb, " UNION ALL SELECT ");
    overlay_key_list(sb, t, "_dc");
    sqlbuf_printf(sb,
                  ", _dc._epoch_deleted, NULL::bigint FROM epoch.\"dk_%d\" _dc WHERE "
                  "_dc._epoch_branch = %s",
                  t->id, branch_id);
    key_preds(sb, t, "_dc", p, n);
    SQLBUF_LIT(sb, ") _u ORDER BY ");
    overlay_key_list(sb, t, "_u");
    SQLBUF_LIT(sb, ", _u._epoch_o) _s WHERE _s._epoch_deleted IS NOT NULL) ");
}

/* The branch's rows at the point: the rows of _epoch_at's keys that are not
 * tombstones, from the pre-image it chose or from d_<id>, read through the
 * row views (the role's policies apply) */
static void branch_at_rows(sqlbuf_t *sb, const catalog_table_t *t, const char *branch_id,
                           const bool *used)
{
    SQLBUF_LIT(sb, "SELECT ");
    column_list(sb, t, "_r", used);
    sqlbuf_printf(sb,
                  " FROM _epoch_at _a JOIN epoch.\"bv_%d\" _r ON _r._epoch_branch = %s AND "
                  "_r._epoch_seq = _a._epoch_o AND ",
                  t->id, branch_id);
    overlay_key_match(sb, t, "_r", "_a");
    SQLBUF_LIT(sb, " WHERE NOT _a._epoch_deleted UNION ALL SELECT ");
    column_list(sb, t, "_r", used);
    sqlbuf_printf(sb, " FROM _epoch_at _a JOIN epoch.\"dv_%d\" _r ON _r._epoch_branch = %s AND ",
                  t->id, branch_id);
    overlay_key_match(sb, t, "_r", "_a");
    SQLBUF_LIT(sb, " WHERE _a._epoch_o IS NULL AND NOT _a._epoch_deleted");
}

/* NOT EXISTS (a row of the branch with the key of alias `outer`): in its
 * working rows (dk_<id>), or at the point (the CTE) */
static void not_in_branch(sqlbuf_t *sb, const catalog_table_t *t, const char *outer,
                          const char *branch_id, const char *point, const overlay_pred_t *p, int n)
{
    if (point) {
        SQLBUF_LIT(sb, "NOT EXISTS (SELECT 1 FROM _epoch_at _d WHERE ");
        overlay_key_match(sb, t, "_d", outer);
        sqlbuf_putc(sb, ')');
        return;
    }
    sqlbuf_printf(sb,
                  "NOT EXISTS (SELECT 1 FROM epoch.\"dk_%d\" _d WHERE _d._epoch_branch = %s AND ",
                  t->id, branch_id);
    overlay_key_match(sb, t, "_d", outer);
    key_preds(sb, t, "_d", p, n);
    sqlbuf_putc(sb, ')');
}

/* The last change captured on main, compared with the base point: a
 * condition on no row, so PostgreSQL evaluates it once (a one-time filter)
 * and skips the arm it rules out without reading it. A function, not a
 * sub-SELECT: an InitPlan inside an arm would take parallel plans away from
 * the whole statement on PostgreSQL 15 (functions/access.sql, _gate_<id>). */
/* `q._epoch_seq + 0 > S` (see above) */
static void seq_after(sqlbuf_t *sb, const char *q, const char *base_seq)
{
    sqlbuf_printf(sb, "%s._epoch_seq + 0 > %s", q, base_seq);
}

static void history_since(sqlbuf_t *sb, const catalog_table_t *t, const char *base_seq, bool any)
{
    sqlbuf_printf(sb, "epoch.\"_hmax_%d\"() %s %s", t->id,
                  any ? ">" : "<=", base_seq);
}

/* " TABLESAMPLE …" after an arm's table, if any */
static void sampled(sqlbuf_t *sb, const char *sample)
{
    if (sample) {
        sqlbuf_putc(sb, ' ');
        sqlbuf_puts(sb, sample);
    }
}

/* Views cannot be sampled: on the arms that read epoch's views (the branch's
 * rows, main's pre-images) the clause "TABLESAMPLE method (p) [REPEATABLE
 * (s)]" becomes a filter keeping each row with probability p/100, as
 * BERNOULLI does (the rewriter admits only BERNOULLI and SYSTEM on a
 * branch): by a hash of the row's key and the seed when there is one, so a
 * seed keeps the same rows. " AND (…)" after a WHERE, if any. */
static void sample_filter(sqlbuf_t *sb, const catalog_table_t *t, const char *q, const char *sample)
{
    if (!sample)
        return;
    size_t n = strlen(sample);
    size_t open = lex_skip_blank(
        sample, lex_name_end(sample, lex_skip_blank(sample, lex_name_end(sample, 0))));
    size_t close = lex_paren_end(sample, open);
    size_t rep = lex_find_keyword(sample, close, n, "repeatable");
    size_t ropen = rep < n ? lex_skip_blank(sample, rep + strlen("repeatable")) : n;
    size_t rclose = ropen < n ? lex_paren_end(sample, ropen) : n;
    epoch_assert(close > open); /* rw_range_sample located the clause */
    SQLBUF_LIT(sb, " AND (");
    if (rclose > ropen) {
        SQLBUF_LIT(sb, "(hashtextextended(ROW(");
        overlay_key_list(sb, t, q);
        sqlbuf_printf(sb, ")::text, (%.*s)::bigint) & 2147483647)::float8 / 2147483648.0",
                      (int)(rclose - ropen), sample + ropen);
    } else {
        SQLBUF_LIT(sb, "random()");
    }
    sqlbuf_printf(sb, " * 100 < (%.*s)::float8)", (int)(close - open), sample + open);
}

/* "SELECT <columns> FROM <the table> _b [TABLESAMPLE …] WHERE ": the head
 * of an arm of main's rows */
static void main_arm(sqlbuf_t *sb, const catalog_table_t *t, const char *sample, const bool *used)
{
    SQLBUF_LIT(sb, "SELECT ");
    column_list(sb, t, "_b", used);
    SQLBUF_LIT(sb, " FROM ");
    sqlbuf_ident(sb, t->schema);
    sqlbuf_putc(sb, '.');
    sqlbuf_ident(sb, t->name);
    SQLBUF_LIT(sb, " _b");
    sampled(sb, sample);
    SQLBUF_LIT(sb, " WHERE ");
}

void overlay_sql(sqlbuf_t *sb, const catalog_table_t *t, const char *with, const char *branch_id,
                 const char *base_seq, const char *point, const overlay_narrow_t *n)
{
    const overlay_pred_t *preds = n->preds;
    int npreds = n->npreds;
    const char *sample = n->sample;
    const bool *used = n->cols;
    epoch_assert(!point || !sample); /* the rewriter refuses TABLESAMPLE at a point */
    /* the branch's rows */
    SQLBUF_LIT(sb, "(");
    if (with || point)
        SQLBUF_LIT(sb, "WITH ");
    if (with) {
        sqlbuf_puts(sb, with);
        sqlbuf_puts(sb, point ? ", " : " ");
    }
    if (point)
        delta_at(sb, t, branch_id, point, preds, npreds);
    if (point) {
        branch_at_rows(sb, t, branch_id, used);
    } else {
        SQLBUF_LIT(sb, "SELECT ");
        column_list(sb, t, NULL, used);
        sqlbuf_printf(sb, " FROM epoch.\"dv_%d\"%s WHERE _epoch_branch = %s AND NOT _epoch_deleted",
                      t->id, sample ? " _dw" : "", branch_id);
        key_preds(sb, t, NULL, preds, npreds);
        sample_filter(sb, t, "_dw", sample);
    }
    /* main's rows when main has not changed since the base point (the usual
     * case, and the cheap plan: no anti-join against the history) */
    SQLBUF_LIT(sb, " UNION ALL ");
    main_arm(sb, t, sample, used);
    not_in_branch(sb, t, "_b", branch_id, point, preds, npreds);
    SQLBUF_LIT(sb, " AND ");
    history_since(sb, t, base_seq, false);
    /* main's rows unchanged since the base point, when main has changed */
    SQLBUF_LIT(sb, " UNION ALL ");
    main_arm(sb, t, sample, used);
    history_since(sb, t, base_seq, true);
    SQLBUF_LIT(sb, " AND ");
    not_in_branch(sb, t, "_b", branch_id, point, preds, npreds);
    sqlbuf_printf(sb, " AND NOT EXISTS (SELECT 1 FROM epoch.\"hk_%d\" _h WHERE ", t->id);
    seq_after(sb, "_h", base_seq);
    SQLBUF_LIT(sb, " AND ");
    overlay_key_match(sb, t, "_h", "_b");
    key_preds(sb, t, "_h", preds, npreds);
    sqlbuf_putc(sb, ')');
    /* main's rows changed since: their first pre-image after the base point
     * (no earlier entry for the key after it). Written as an anti-join, not
     * DISTINCT ON, so a key condition reaches the (key, seq) index instead
     * of sorting the whole history */
    SQLBUF_LIT(sb, " UNION ALL SELECT ");
    column_list(sb, t, "_p", used);
    sqlbuf_printf(sb, " FROM epoch.\"hv_%d\" _p", t->id);
    SQLBUF_LIT(sb, " WHERE ");
    seq_after(sb, "_p", base_seq);
    SQLBUF_LIT(sb, " AND _p._epoch_existed");
    key_preds(sb, t, "_p", preds, npreds);
    sample_filter(sb, t, "_p", sample);
    sqlbuf_printf(sb, " AND NOT EXISTS (SELECT 1 FROM epoch.\"hk_%d\" _q WHERE ", t->id);
    overlay_key_match(sb, t, "_q", "_p");
    SQLBUF_LIT(sb, " AND ");
    seq_after(sb, "_q", base_seq);
    SQLBUF_LIT(sb, " AND _q._epoch_seq < _p._epoch_seq) AND ");
    not_in_branch(sb, t, "_p", branch_id, point, preds, npreds);
    sqlbuf_putc(sb, ')');
}
