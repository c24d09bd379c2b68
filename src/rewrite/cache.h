/*
 * cache — rewrite results keyed by (session view, statement template).
 *
 * A session view is a string naming everything a rewrite depends on besides
 * the text (database, branch, base point, catalog version, search path,
 * read-only); the caller builds it when its catalog changes. The key adds
 * the session catalog's signature (catalog_t.signature). Statements that
 * differ only in numeric or '...' constants share one entry: the cache keeps
 * the rewritten template and puts the client's constants back on a hit.
 *
 * Process-wide and thread-safe (one mutex; results are copied out).
 */
#ifndef EPOCH_REWRITE_CACHE_H
#define EPOCH_REWRITE_CACHE_H

#include "rewrite/rewrite.h"

/* The constants of a statement taken out: sql is the rewritten statement
 * with $first.. in their place, lits the constants' text in order. */
typedef struct rw_template {
    char *sql;
    char **lits;
    int nlits;
    int first;
} rw_template_t;

/* rewrite_statement through the cache. view must be non-NULL. When tp is
 * non-NULL and the result is RW_REWRITTEN from a template, *tp receives it
 * (free with rewrite_template_free); otherwise tp->sql is NULL. */
rw_action_t rewrite_cached(const rw_session_t *s, const char *view, const char *sql,
                           rw_result_t *out, rw_template_t *tp);
void rewrite_template_free(rw_template_t *tp);

typedef struct rw_cache_stats {
    unsigned long hits, misses, entries;
} rw_cache_stats_t;
rw_cache_stats_t rewrite_cache_stats(void);
/* Drop every entry (tests; catalog changes need not call it: the view
 * string changes with the catalog version, and the key also holds the
 * catalog's signature, which changes with anything else it was loaded from,
 * e.g. a view created on main). */
void rewrite_cache_clear(void);

#endif
