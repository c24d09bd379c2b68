/*
 * rewrite_internal — the walker shared by the files of the rewriter:
 * rewrite.c (entry points, statement dispatch), rewrite_walk.c (the tree
 * walk), rewrite_range.c (table references), rewrite_edit.c (splicing the
 * replacements into the text) and dml*.c (writes on branches). Private to
 * src/rewrite.
 */
#ifndef EPOCH_REWRITE_INTERNAL_H
#define EPOCH_REWRITE_INTERNAL_H

#include <json-c/json.h>
#include <stdint.h>

#include "branch/overlay.h"
#include "rewrite/rewrite.h"

typedef struct edit {
    size_t start, end;
    char *text;
} edit_t;

typedef struct walker {
    const rw_session_t *s;
    const char *sql;
    /* The walker's lists grow as the statement needs (a Query string may
     * hold any number of statements, tables and CTEs): malloc'd, freed when
     * the walk finishes; running out of memory fails the statement (53200). */
    edit_t *edits;
    int nedits, edits_cap;
    const char **scope; /* CTE names visible here */
    int nscope, scope_cap;
    int stmt_no;       /* index of the current statement in the query */
    json_object *stmt; /* the current statement's tree (its RawStmt) */
    bool positional; /* a constant where its value is syntax (ORDER BY 1, typmods) */
    bool utility;    /* walking a statement other than a query or a write: refs are read-only */
    const char **rewritten_names; /* alias (or name) of each replaced table */
    int nlocked, rewritten_cap;
    json_object *cur_select; /* the SELECT whose FROM is being walked (its WHERE) */
    bool need_catalog;
    bool failed;
    unsigned flags;
    rw_result_t *out;
    int view_depth;       /* views whose definitions enclose this walk (0 = the client's text) */
    const char *sample;   /* the TABLESAMPLE clause of the table being read (rw_range_sample) */
    bool sample_used;     /* rw_range_var moved it into the overlay */
    const char *view_ref; /* the "@ref" the enclosing view is read at: its tables are read
                             there too (NULL = the session's ref) */
} walker_t;

/* ---- rewrite.c: entry points, statement dispatch, the walker's errors */

json_object *rw_get(json_object *o, const char *key);
const char *rw_get_str(json_object *o, const char *key);
int rw_get_int(json_object *o, const char *key, int dflt);
/* Add a DETAIL to the error rw_fail just set (PostgreSQL's own wording). */
void rw_fail_detail(walker_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rw_fail(walker_t *w, const char *sqlstate, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Fail the rewrite for want of memory (53200): the one way every file of
 * the rewriter reports it (a failed sqlbuf_take, malloc, asprintf). */
void rw_fail_oom(walker_t *w);
const char *rw_branch_name(const walker_t *w);
/* Parse sql, walk it with w (zeroed but for s, view_depth and view_ref) and
 * fill *out, as rewrite_statement does; returns out->action. */
rw_action_t rw_parse_and_walk(walker_t *w, const char *sql, rw_result_t *out);

/* ---- rewrite_edit.c: replacements of spans of the client's text */

/* arr (capacity *cap entries of elem bytes) with room for need entries,
 * doubling: arr itself or its reallocation; NULL out of memory (arr is
 * kept). */
void *rw_grow_array(void *arr, int *cap, int need, size_t elem);
/* Record a replacement of [start, end) by text (taken over; NULL = OOM). */
void rw_add_edit(walker_t *w, size_t start, size_t end, char *text);
/* restrict_nonsystem_relation_kind on a branch (rewrite_restrict.c): SET
 * [start, start+len) without "view"; set_config() calls below node
 * through epoch._kinds_but_view(). */
void rw_restrict_kinds(walker_t *w, json_object *set, size_t start, size_t len);
void rw_restrict_kinds_in_calls(walker_t *w, json_object *node);
/* The text of [start, end) with the edits recorded inside it applied; those
 * edits are then dropped (so an enclosing replacement can take their place). */
char *rw_splice_range(walker_t *w, size_t start, size_t end);
/* The whole statement text with every recorded edit applied; malloc'd, NULL
 * out of memory. The edits stay recorded (the caller frees them). */
char *rw_splice_all(walker_t *w);

/* ---- rewrite_walk.c: the tree walk */

/* Walk node (object or array): rewrite the table references below it,
 * refuse what the session may not run, note flags. */
void rw_walk(walker_t *w, json_object *node);
/* A node of this type (e.g. "ParamRef": a $n) anywhere below node. */
bool rw_has_node(json_object *node, const char *type);
/* InsertStmt, UpdateStmt, DeleteStmt or MergeStmt. */
bool rw_is_write_node(const char *key);
/* INSERT/UPDATE/DELETE/MERGE for a write node's name. */
const char *rw_write_verb(const char *key);
/* Refuse a write (what: "INSERT", "COPY ... FROM") on a branch or under
 * epoch.as_of. */
void rw_refuse_write(walker_t *w, const char *what);
/* A write on a branch whose target is a view over tracked tables: refused
 * (true). */
bool rw_refuse_view_write(walker_t *w, const char *key, json_object *body);
/* Refuse FOR UPDATE/SHARE of the SELECT select when it reaches a table
 * replaced since rewritten_before (w->nlocked then). */
void rw_check_locks(walker_t *w, json_object *select, int rewritten_before);

/* ---- rewrite_range.c: table references and their replacements */

/* The overlay subquery of t at ref (NULL = the session's state bid/base/point,
 * point -1 = the working rows), followed by " AS alias_for" when alias_for is
 * non-NULL; malloc'd. n: what it may leave out (overlay.h; NULL = nothing). */
char *rw_overlay_text(const catalog_table_t *t, const char *ref, int64_t bid, int64_t base,
                      int64_t point, const char *alias_for, const overlay_narrow_t *n);
/* ---- rewrite_columns.c: the columns a statement may read */

/* Per column of t, whether the current statement may read it where t is
 * called name (its alias, else its name) and read as rv: malloc'd, or NULL
 * when it may read them all (a *, the whole row, a NATURAL join, column
 * aliases) or out of memory. An over-estimate: a column of that name read
 * anywhere in the statement counts. */
bool *rw_columns_read(const walker_t *w, const catalog_table_t *t, const char *name,
                      json_object *rv);

/* A RangeVar: read in a FROM list, the target of a write or DDL (writing),
 * or a COPY ... TO relation (copy_cols non-NULL). */
void rw_range_var(walker_t *w, json_object *rv, bool writing, const char *copy_cols);
/* A RangeTableSample (t TABLESAMPLE ...). */
void rw_range_sample(walker_t *w, json_object *rts);
/* A ColumnRef: schema.table.column of a replaced table loses its schema. */
void rw_column_ref(walker_t *w, json_object *cref);

/* rewrite_agg.c: a top-level SELECT of count/sum/avg over one tracked table
 * on a branch ([start, start+len) its text), computed from main's aggregate
 * and the branch's changes; false (nothing done) when it is not such a
 * statement. */
bool rw_agg_statement(walker_t *w, json_object *select, size_t start, size_t len);

/* dml.c: INSERT/UPDATE/DELETE on a tracked table on a branch (key is the
 * statement's node name, body its object; [start, start+len) its text; top
 * = a statement of the query, whose command tag matters, not a WITH query). */
void dml_statement(walker_t *w, const char *key, json_object *body, size_t start, size_t len,
                   bool top);

/* dml_copy.c: COPY t FROM on a branch: into a staging temp table whose
 * statement trigger moves the rows into the delta (out->setup creates it). */
void dml_copy_from(walker_t *w, json_object *body, size_t start, size_t len, int nstmts);

#endif
