/*
 * dml_internal — what the files of the branch write rewriter (dml*.c) share:
 * the write's target, the clauses of the client's statement, the kinds of
 * conflict with the delta, and the builders of the SQL every write shape is
 * made of. Private to src/rewrite/dml*.c; the rest of the rewriter sees only
 * dml_statement and dml_copy_from (rewrite_internal.h).
 *
 * Ownership: every builder appends to the caller's sqlbuf_t (whose sticky
 * error flag dml_statement checks once, when it takes the text);
 * functions returning char * return malloc'd text the caller frees (NULL out
 * of memory, or after w->failed is set). Positions are byte offsets into
 * w->sql. A function that refuses sets the walker's error (rw_fail) and
 * leaves the caller to stop.
 */
#ifndef EPOCH_REWRITE_DML_INTERNAL_H
#define EPOCH_REWRITE_DML_INTERNAL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/sqlbuf.h"
#include "rewrite/rewrite_internal.h"

/* FROM/USING items a RETURNING can name (each becomes a LATERAL look-up):
 * more is refused with 54000 (dml_returning_needs_from). The other lists of
 * a write (columns, SET items, RETURNING items) are sized per statement. */
#define MAX_FROM 32
/* Starts the INSERT that COPY … FROM's rows go through: PostgreSQL's COPY
 * checks the NOT NULL and CHECK constraints of a batch of rows before their
 * keys (it inserts them in batches), an INSERT checks row by row. */
#define COPY_INSERT_MARK "/* epoch: COPY */ "
/* "epoch._duplicate_key('<constraint>', '<key names>', '(' || concat_ws(', ', ":
 * the caller writes the key values and DUPLICATE_KEY_CLOSE. The names are
 * unquoted and the values separated by ", ", for PostgreSQL's wording of a
 * unique violation: Key (id, part)=(1, x) (a ROW(…)::text would quote). */
#define DUPLICATE_KEY_CLOSE ") || ')')"

/* Which columns a list names. */
typedef enum {
    COLS_ALL,     /* every column (RETURNING *, reads) */
    COLS_KEY,     /* the primary key */
    COLS_WRITTEN, /* the columns a write into the delta names: all but the stored
                     generated ones, which the delta computes (PostgreSQL refuses a
                     value for them) */
} cols_t;

/* The tracked table a write goes to (dml_resolve_target fills it; the
 * caller frees overlay). */
typedef struct target {
    const catalog_table_t *t;
    const char *alias;
    char *bid;     /* SQL of the branch id, checked once per statement (an
                      InitPlan) with the role's right to write (epoch._live_write) */
    char *overlay; /* "(…) AS alias" */
} target_t;

/* Free what dml_resolve_target allocated. */
void dml_target_free(target_t *tg);

/* Clause boundaries in the statement: positions of the keywords (end if
 * absent), checked against what the parse tree says is there. */
typedef struct clauses {
    size_t verb, set, from, where, ret, end;
} clauses_t;

/* What ON CONFLICT does when the branch already has a row for the key.
 * The row may have changed since the statement's snapshot (another session
 * committed a write to it while we waited for its lock), so UPDATE and
 * DELETE re-apply their SET and re-check their WHERE on that row, as
 * PostgreSQL's own UPDATE does (EvalPlanQual), and never touch a tombstone. */
typedef enum {
    CONFLICT_REPLACE,        /* take the proposed row (upserts) */
    CONFLICT_UPDATE,         /* re-apply SET to the current row */
    CONFLICT_DELETE,         /* tombstone the current row */
    CONFLICT_INSERT,         /* replace a tombstone; a live row is a duplicate key */
    CONFLICT_INSERT_NOTHING, /* replace a tombstone; skip a live row */
} conflict_t;

typedef struct recheck {
    char **exprs;      /* UPDATE: the SET expressions */
    const int *col_of; /* … and their columns */
    int nt;
    const char *where; /* the WHERE text, or NULL */
} recheck_t;

/* The FROM/USING items of an UPDATE/DELETE whose RETURNING names them. */
typedef struct from_scope {
    const char *names[MAX_FROM]; /* the relation names FROM/USING makes visible */
    json_object *nodes[MAX_FROM];
    int n;
    bool opaque;   /* an item whose names are not known (refused if needed) */
    bool too_many; /* more than MAX_FROM items (refused if needed) */
} from_scope_t;

/* ---- dml.c: the target and the clauses of UPDATE/DELETE */

/* Find the tracked table body writes to and its overlay; false after
 * refusing (or with w->need_catalog set). */
bool dml_resolve_target(walker_t *w, json_object *body, const char *verb, target_t *tg);
/* The overlay of t on the session's branch, as alias; malloc'd. */
char *dml_branch_overlay(const walker_t *w, const catalog_table_t *t, const char *alias);
/* The client's WITH prefix [start, verb) with its edits applied; "" if none. */
char *dml_prefix_text(walker_t *w, json_object *body, size_t start, size_t verb);
/* Locate the clauses of an UPDATE (set_kw "set", from_kw "from") or a DELETE
 * (NULL, "using") in [start, end); false after refusing. */
bool dml_find_clauses(walker_t *w, json_object *body, const char *verb, const char *set_kw,
                      const char *from_kw, size_t start, size_t end, clauses_t *c);
/* Where the clause after pos ends (the next clause or the end). */
size_t dml_next_clause(const clauses_t *c, size_t pos);
/* Write [from, to) of the client's text with its edits applied. */
void dml_emit_range(walker_t *w, sqlbuf_t *sb, size_t from, size_t to);
/* The WHERE clause says WHERE CURRENT OF: refused (true). */
bool dml_where_current_of(walker_t *w, const clauses_t *c);

/* ---- dml_text.c: the pieces of SQL text */

char *dml_quoted_ident(const char *name);
/* Refuse with 0A000: "<what> is not supported on branch …". */
void dml_refuse(walker_t *w, const char *what);
bool dml_col_in(const catalog_table_t *t, int col, cols_t which);
/* The columns of t (which), each qualified with qual when not NULL. */
void dml_ident_list(sqlbuf_t *sb, const catalog_table_t *t, const char *qual, cols_t which);
/* "INSERT INTO <delta> AS alias (branch, columns[, deleted]) SELECT ". */
void dml_upsert_head(sqlbuf_t *sb, const target_t *tg, bool deleted);
/* "DISTINCT ON (key) " when joined (a FROM/USING may repeat a row). */
void dml_distinct_on(sqlbuf_t *sb, const target_t *tg, bool joined);
/* Drop (and free) the edits recorded inside [from, to). */
void dml_drop_edits(walker_t *w, size_t from, size_t to);
/* "<prefix>, " or "WITH ": the client's CTEs, then ours (prefix is trimmed). */
void dml_with_prefix(sqlbuf_t *sb, char *prefix);
/* A target list item (ResTarget) is `*` or `x.*`. */
bool dml_is_star(json_object *item);

/* ---- dml_set.c: SET lists */

/* Arrays for the SET list of a write to t (dml_parse_set_list): room for
 * one item per column of t, since a column is assigned at most once (a
 * table may have 1,600 columns: sized per statement, not by a guess);
 * false (w->failed) out of memory. Free with dml_set_arrays_free. */
bool dml_set_arrays(walker_t *w, const catalog_table_t *t, char ***exprs, int **col_of);
/* Free the first n expressions and both arrays (NULL is fine). */
void dml_set_arrays_free(char **exprs, int *col_of, int n);
/* The SET items in [from, to): the expression text of each assigned column
 * into exprs (malloc'd) and the column into col_of (from dml_set_arrays);
 * the count, or -1 after refusing. allow_key: a key column may be assigned
 * (UPDATE, not ON CONFLICT DO UPDATE). */
int dml_parse_set_list(walker_t *w, json_object *targets, size_t from, size_t to,
                       const target_t *tg, char **exprs, int *col_of, bool allow_key);
/* Column col after a SET: its assigned expression, or the row's own value
 * (typed: cast to the column's type). */
void dml_assigned_value(sqlbuf_t *sb, const target_t *tg, char **exprs, const int *col_of, int nt,
                        int col, bool typed);

/* ---- dml_conflict.c: conflicts with the delta and duplicate keys */

void dml_duplicate_key_open(sqlbuf_t *sb, const catalog_table_t *t);
/* The last UNION ALL arm of a write: the rows of src for which cond holds
 * raise the unique violation, after the earlier arms met the constraints. */
void dml_deferred_duplicate_check(sqlbuf_t *sb, const catalog_table_t *t, const char *src,
                                  const char *cond);
/* " ON CONFLICT (branch, key) DO UPDATE …" for mode (rc: UPDATE's recheck). */
void dml_conflict_tail(sqlbuf_t *sb, const target_t *tg, conflict_t mode, const recheck_t *rc);
/* The client's ON CONFLICT names the primary key; false after refusing. */
bool dml_conflict_on_key(walker_t *w, json_object *conflict, const catalog_table_t *t);
/* The upsert of INSERT … ON CONFLICT (key) DO UPDATE over _epoch_new. */
void dml_upsert_merge(walker_t *w, sqlbuf_t *sb, const target_t *tg, char **exprs,
                      const int *col_of, int nset, const char *cwhere);

/* ---- dml_insert.c, dml_keys.c: statement shapes */

void dml_insert_statement(walker_t *w, json_object *body, size_t start, size_t end,
                          const target_t *tg, sqlbuf_t *sb);
/* UPDATE that changes key values (fs: RETURNING names FROM items, or NULL);
 * start: where its text starts; top: a statement of the query, not a WITH
 * query (whose data-modifying CTEs go into the enclosing WITH). */
void dml_update_keys(walker_t *w, json_object *body, const target_t *tg, const clauses_t *c,
                     char **exprs, const int *col_of, int nt, const from_scope_t *fs, char *prefix,
                     sqlbuf_t *sb, size_t start, bool top);

/* ---- dml_returning.c: RETURNING */

/* RETURNING [ret, end) with `*` and `x.*` expanded to the table's columns. */
char *dml_returning_text(walker_t *w, json_object *list, const catalog_table_t *t, size_t from,
                         size_t to);
/* " RETURNING …" of body at [ret, end), if it has one (w->failed if out of
 * memory). */
void dml_emit_returning(walker_t *w, sqlbuf_t *sb, json_object *body, const catalog_table_t *t,
                        size_t ret, size_t end);
/* The FROM/USING items (from_key) when the RETURNING names them (fs
 * filled); false otherwise or after refusing (w->failed). */
bool dml_returning_needs_from(walker_t *w, json_object *body, const target_t *tg,
                              const char *from_key, from_scope_t *fs);
/* `, "s" AS "_epoch_f1"`…: the items' whole rows, as columns of a CTE. */
void dml_carry_from_rows(sqlbuf_t *sb, const from_scope_t *fs);
/* " RETURNING …" of a joined write whose rows are in CTE src. */
void dml_joined_returning(walker_t *w, sqlbuf_t *sb, json_object *body, const target_t *tg,
                          const from_scope_t *fs, const char *src, size_t ret, size_t end);
/* UPDATE … FROM / DELETE … USING (exprs NULL) whose RETURNING names the
 * other items: written from the CTE _epoch_src. */
void dml_joined_write(walker_t *w, sqlbuf_t *sb, json_object *body, const target_t *tg,
                      const clauses_t *c, const char *from_kw, char **exprs, const int *col_of,
                      int nt, const from_scope_t *fs, char *prefix);

#endif
