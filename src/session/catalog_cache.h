/*
 * catalog_cache — the rows of epoch._session_current() that branch sessions
 * of one worker loaded last, by what they depend on (database, user, the
 * startup parameters that set the branch and the search path), so that a
 * new branch session checks them with one light query instead of loading
 * them again (issue 16: a branch login cost ~9 ms more than one to main, 5-7
 * of them the catalog load on a new backend). Private to src/session.
 */
#ifndef EPOCH_SESSION_CATALOG_CACHE_H
#define EPOCH_SESSION_CATALOG_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "branch/catalog.h"
#include "wire/conn_api.h"

/* What a cached catalog is checked against: one row of these columns
 * (schema version, functions hash, branch id — NULL once the branch has
 * expired, as epoch._branch() refuses it —, base point, catalog version,
 * epoch.as_of), each equal to the cached rows' own. */
#define CATALOG_CACHE_CHECK_SQL                                                                    \
    "SELECT (SELECT value::text FROM epoch.meta WHERE key = 'schema_version'), "                   \
    "(SELECT value::text FROM epoch.meta WHERE key = 'functions_hash'), "                          \
    "(SELECT id::text FROM epoch.branch WHERE name = current_setting('epoch.branch', true) "       \
    "AND (expires_at IS NULL OR expires_at > now())), "                                            \
    "(SELECT coalesce(base_seq, 0)::text FROM epoch.branch "                                       \
    "WHERE name = current_setting('epoch.branch', true)), "                                        \
    "(SELECT value::text FROM epoch.meta WHERE key = 'catalog_version'), "                         \
    "nullif(current_setting('epoch.as_of', true), '')"

/* DDL seen through this proxy (a CommandComplete of CREATE, ALTER, DROP,
 * GRANT, REVOKE, DO, CALL on any session, and the end of its transaction):
 * every worker's rows kept before it are dropped. DDL made elsewhere shows
 * within catalog_max_age, as for a loaded session (unless DDL notifies). */
void catalog_cache_ddl_seen(void);
uint64_t catalog_cache_ddl_gen(void);
/* Is a CommandComplete tag ([tag, tag+len)) one of DDL's? */
bool catalog_cache_is_ddl_tag(const char *tag, size_t len);

/* The key of c's session (malloc'd), or NULL when it is not cached (out of
 * memory). */
char *catalog_cache_key(const client_t *c);
/* Keep res (a successful load of a branch's working rows queued at worker
 * generation gen, branch-notification count branch_gen, DDL generation
 * ddl_gen, at now_ms; cat: those rows parsed) under key; rows of another
 * kind of session (main, epoch.as_of) are not kept. Out of memory: not
 * kept. */
void catalog_cache_put(const char *key, uint64_t gen, uint64_t branch_gen, uint64_t ddl_gen,
                       uint64_t now_ms, const catalog_t *cat, const internal_result_t *res);
/* The rows kept under key if they are still good to check: loaded at
 * generation gen and the current DDL generation, and (unless DDL notifies)
 * no older than max_age seconds (0: any age); *loaded_ms when, *branch_gen
 * and *bid the branch-notification count then and their branch, for the
 * caller to ask whether that branch was named since. NULL otherwise. Valid
 * until the next put. */
const internal_result_t *catalog_cache_get(const char *key, uint64_t gen, uint64_t now_ms,
                                           double max_age, uint64_t *loaded_ms,
                                           uint64_t *branch_gen, int64_t *bid);

/* Free the worker's rows (its thread ends). */
void catalog_cache_clear(void);
/* Does check (the result of CATALOG_CACHE_CHECK_SQL) confirm rows? */
bool catalog_cache_confirms(const internal_result_t *rows, const internal_result_t *check);

#endif
