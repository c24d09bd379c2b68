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
 * "did main change at all" test (max(_epoch_seq)).
 *
 * Must never: emit an unquoted name or value.
 */
#include "branch/overlay.h"

#include <string.h>

void overlay_ident(FILE *f, const char *name)
{
    fputc('"', f);
    for (const char *p = name; *p; p++) {
        if (*p == '"')
            fputc('"', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

void overlay_literal(FILE *f, const char *value)
{
    if (strchr(value, '\\'))
        fputc('E', f);
    fputc('\'', f);
    for (const char *p = value; *p; p++) {
        if (*p == '\'' || *p == '\\')
            fputc(*p, f);
        fputc(*p, f);
    }
    fputc('\'', f);
}

static void column_list(FILE *f, const catalog_table_t *t, const char *qual)
{
    for (int i = 0; i < t->ncols; i++) {
        if (i)
            fputs(", ", f);
        if (qual)
            fprintf(f, "%s.", qual);
        overlay_ident(f, t->cols[i]);
    }
}

void overlay_key_match(FILE *f, const catalog_table_t *t, const char *a, const char *b)
{
    bool first = true;
    for (int i = 0; i < t->ncols; i++) {
        if (!t->is_pk[i])
            continue;
        if (!first)
            fputs(" AND ", f);
        first = false;
        fprintf(f, "%s.", a);
        overlay_ident(f, t->cols[i]);
        fprintf(f, " = %s.", b);
        overlay_ident(f, t->cols[i]);
    }
}

/* AND q.col op value … for the copied key conditions */
static void key_preds(FILE *f, const catalog_table_t *t, const char *q, const overlay_pred_t *p,
                      int n)
{
    for (int i = 0; i < n; i++) {
        fputs(" AND ", f);
        if (q)
            fprintf(f, "%s.", q);
        overlay_ident(f, t->cols[p[i].col]);
        if (strcmp(p[i].op, "BETWEEN") == 0)
            fprintf(f, " BETWEEN %s AND %s", p[i].v1, p[i].v2);
        else
            fprintf(f, " %s %s", p[i].op, p[i].v1);
    }
}

/* NOT EXISTS (a row of the branch with the key of alias `outer`) */
static void not_in_branch(FILE *f, const catalog_table_t *t, const char *outer,
                          const char *branch_id, const overlay_pred_t *p, int n)
{
    fprintf(f, "NOT EXISTS (SELECT 1 FROM epoch.\"d_%d\" _d WHERE _d._epoch_branch = %s AND ",
            t->id, branch_id);
    overlay_key_match(f, t, "_d", outer);
    key_preds(f, t, "_d", p, n);
    fputc(')', f);
}

/* The last change captured on main, compared with the base point: an
 * uncorrelated condition, so PostgreSQL evaluates it once (an InitPlan) and
 * skips the arm it rules out (a one-time filter) without reading it. */
/* `q._epoch_seq + 0 > S` (see above) */
static void seq_after(FILE *f, const char *q, const char *base_seq)
{
    fprintf(f, "%s._epoch_seq + 0 > %s", q, base_seq);
}

static void history_since(FILE *f, const catalog_table_t *t, const char *base_seq, bool any)
{
    fprintf(f, "(SELECT coalesce(max(_epoch_seq), 0) FROM epoch.\"h_%d\") %s %s", t->id,
            any ? ">" : "<=", base_seq);
}

/* " TABLESAMPLE …" after an arm's table, if any */
static void sampled(FILE *f, const char *sample)
{
    if (sample) {
        fputc(' ', f);
        fputs(sample, f);
    }
}

void overlay_sql(FILE *f, const catalog_table_t *t, const char *branch_id, const char *base_seq,
                 const overlay_pred_t *preds, int npreds, const char *sample)
{
    /* the branch's rows */
    fputs("(SELECT ", f);
    column_list(f, t, NULL);
    fprintf(f, " FROM epoch.\"d_%d\"", t->id);
    sampled(f, sample);
    fprintf(f, " WHERE _epoch_branch = %s AND NOT _epoch_deleted", branch_id);
    key_preds(f, t, NULL, preds, npreds);
    /* main's rows when main has not changed since the base point (the usual
     * case, and the cheap plan: no anti-join against the history) */
    fputs(" UNION ALL SELECT ", f);
    column_list(f, t, "_b");
    fputs(" FROM ", f);
    overlay_ident(f, t->schema);
    fputc('.', f);
    overlay_ident(f, t->name);
    fputs(" _b", f);
    sampled(f, sample);
    fputs(" WHERE ", f);
    not_in_branch(f, t, "_b", branch_id, preds, npreds);
    fputs(" AND ", f);
    history_since(f, t, base_seq, false);
    /* main's rows unchanged since the base point, when main has changed */
    fputs(" UNION ALL SELECT ", f);
    column_list(f, t, "_b");
    fputs(" FROM ", f);
    overlay_ident(f, t->schema);
    fputc('.', f);
    overlay_ident(f, t->name);
    fputs(" _b", f);
    sampled(f, sample);
    fputs(" WHERE ", f);
    history_since(f, t, base_seq, true);
    fputs(" AND ", f);
    not_in_branch(f, t, "_b", branch_id, preds, npreds);
    fprintf(f, " AND NOT EXISTS (SELECT 1 FROM epoch.\"h_%d\" _h WHERE ", t->id);
    seq_after(f, "_h", base_seq);
    fputs(" AND ", f);
    overlay_key_match(f, t, "_h", "_b");
    key_preds(f, t, "_h", preds, npreds);
    fputc(')', f);
    /* main's rows changed since: their first pre-image after the base point
     * (no earlier entry for the key after it). Written as an anti-join, not
     * DISTINCT ON, so a key condition reaches the (key, seq) index instead
     * of sorting the whole history */
    fputs(" UNION ALL SELECT ", f);
    column_list(f, t, "_p");
    fprintf(f, " FROM epoch.\"h_%d\" _p", t->id);
    sampled(f, sample);
    fputs(" WHERE ", f);
    seq_after(f, "_p", base_seq);
    fputs(" AND _p._epoch_existed", f);
    key_preds(f, t, "_p", preds, npreds);
    fprintf(f, " AND NOT EXISTS (SELECT 1 FROM epoch.\"h_%d\" _q WHERE ", t->id);
    overlay_key_match(f, t, "_q", "_p");
    fputs(" AND ", f);
    seq_after(f, "_q", base_seq);
    fputs(" AND _q._epoch_seq < _p._epoch_seq) AND ", f);
    not_in_branch(f, t, "_p", branch_id, preds, npreds);
    fputc(')', f);
}
