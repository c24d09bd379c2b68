/*
 * load — the session's catalog: loading it (epoch._session_current()) with
 * internal statements, migrating the epoch schema first when it is missing
 * or old, LISTENing for catalog changes of other sessions, and deciding
 * when a loaded catalog is out of date. Private to src/session.
 */
#ifndef EPOCH_SESSION_LOAD_H
#define EPOCH_SESSION_LOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "session/state.h"

/* The channel PostgreSQL notifies when the epoch catalog changes (migration
 * 3): the proxy LISTENs on it for branch sessions; never forwarded. */
#define SESSION_CATALOG_CHANNEL "epoch_catalog"

/* The client an internal statement was queued for, if it is still there
 * with its session state (arg = the client id). */
client_t *session_owner(server_t *sv, void *arg);
/* Queue sql on c's server for c's session. */
bool session_queue(client_t *c, const char *sql, internal_cb_t cb)
    __attribute__((warn_unused_result));
/* Queue the migration unless the schema is known to be current. */
bool session_queue_migration(client_t *c) __attribute__((warn_unused_result));
/* Queue the (re)load of c's catalog; cb gets its rows (session_catalog_cb
 * stores them). Phase becomes BUSY. */
bool session_queue_load(client_t *c, internal_cb_t cb) __attribute__((warn_unused_result));
/* The load at a branch login: the worker's cached rows for sessions that
 * started like c's (catalog_cache.h) when one light query confirms them,
 * else session_queue_load. */
bool session_queue_login_load(client_t *c, internal_cb_t cb) __attribute__((warn_unused_result));
/* The callback that stores a loaded catalog in the session. */
void session_catalog_cb(server_t *sv, void *arg, const internal_result_t *res);
/* Another session changed the catalog since c loaded it, or (without DDL
 * notifications) it is older than catalog_max_age. */
bool session_catalog_outdated(const client_t *c, const session_state_t *ss);
/* An internal statement that only has to succeed: the client when it
 * failed (its held message is then answered with the error), else NULL. */
client_t *session_check_failed(server_t *sv, void *arg, const internal_result_t *res);
/* A search path that starts with schema "epoch": warn once. */
void session_warn_path(client_t *c, const char *first);

/* Hooks (wire/hooks.h). */
bool session_notification(server_t *sv, const char *msg, size_t total);
void session_command_done(server_t *sv, const char *tag, size_t len);

#endif
