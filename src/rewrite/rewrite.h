/*
 * rewrite — decide what happens to one client statement (a simple Query's
 * text or a Parse's query) and produce the SQL to send instead.
 *
 * On a branch, every reference to a tracked table becomes the branch's
 * overlay (see overlay.h); writes, DDL and anything not understood are
 * refused. On main, only "@ref" references are rewritten. The client's text
 * is kept: replacements are spliced in at the token positions libpg_query
 * reports, so comments, literals and formatting reach PostgreSQL unchanged.
 *
 * Pure function of (catalog, text): no I/O, no globals; thread-safe.
 */
#ifndef EPOCH_REWRITE_REWRITE_H
#define EPOCH_REWRITE_REWRITE_H

#include <stdbool.h>
#include <stddef.h>

#include "branch/catalog.h"

typedef enum {
    RW_FORWARD,      /* send the statement unchanged */
    RW_REWRITTEN,    /* send result.sql instead */
    RW_ERROR,        /* refuse with result.sqlstate / message / hint */
    RW_SET_BRANCH,   /* SET [LOCAL] epoch.branch|epoch.as_of = result.value, alone */
    RW_NEED_CATALOG, /* call again with the session's catalog loaded */
} rw_action_t;

enum {
    RW_F_SCHEMA = 1,     /* uses epoch.* objects: the epoch schema must exist */
    RW_F_REFRESH = 2,    /* may change the catalog, search_path or branch: reload after */
    RW_F_UNPARSED = 4,   /* libpg_query could not parse it (forwarded for PostgreSQL to report) */
    RW_F_PREPARABLE = 8, /* one statement that can run as a prepared statement: a plain
                            SELECT (no INTO, no locking) or a branch write */
    RW_F_DEALLOC = 16,   /* DISCARD or DEALLOCATE: server-side prepared statements may be gone */
    RW_F_COMMIT = 32,    /* calls epoch.commit() (timed for the metrics) */
    RW_F_MERGE = 64,     /* calls epoch.merge(), merge_continue() or sync() (the same) */
};

#define RW_MAX_TAGS 64

typedef struct rw_result {
    rw_action_t action;
    unsigned flags;
    char *sql;        /* RW_REWRITTEN; malloc'd */
    char *setup;      /* RW_REWRITTEN: run this first as an internal statement (COPY FROM) */
    char sqlstate[6]; /* RW_ERROR */
    char *message;    /* RW_ERROR; malloc'd */
    char *hint;       /* RW_ERROR; malloc'd or NULL */
    char *detail;     /* RW_ERROR; malloc'd or NULL */
    char *value;      /* RW_SET_BRANCH: the branch name; malloc'd */
    bool is_local;    /* RW_SET_BRANCH: SET LOCAL */
    bool as_of;       /* RW_SET_BRANCH: epoch.as_of rather than epoch.branch */
    /* one letter per statement, in order: 'U' or 'D' when the statement was
     * turned into an INSERT whose CommandComplete tag must read UPDATE n /
     * DELETE n, '-' otherwise; "" when there is nothing to fix up */
    char tags[RW_MAX_TAGS + 1];
} rw_result_t;

/* What the statement needs; read_only refuses writes even on main (as_of). */
typedef struct rw_session {
    const catalog_t *cat; /* NULL until loaded */
    bool on_branch;       /* the session's ref is not main */
    bool read_only;       /* epoch.as_of is set */
} rw_session_t;

/* Cheap pre-check for the hot path: false when a statement on main can be
 * forwarded without parsing (mentions neither "epoch" nor "@, nor anything
 * that changes name resolution: search_path, RESET, DISCARD). */
bool rewrite_needs_parse(const char *sql, size_t len);

/* Decide and rewrite. sql is NUL-terminated. Fills *out (free with
 * rewrite_result_free) and returns out->action. Out of memory is reported
 * as RW_ERROR with SQLSTATE 53200. */
rw_action_t rewrite_statement(const rw_session_t *s, const char *sql, rw_result_t *out);
void rewrite_result_free(rw_result_t *r);

#endif
