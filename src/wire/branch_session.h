/*
 * branch_session — a client's branch: chosen at startup (dbname@branch,
 * options -c epoch.branch=...), changed with SET epoch.branch / epoch.as_of,
 * and applied to every statement through the rewriter.
 *
 * PostgreSQL is the source of truth for the session's branch: the setting is
 * a placeholder variable on the server session (so SET LOCAL, ROLLBACK,
 * RESET and DISCARD ALL behave as for any setting), and the proxy reloads its
 * copy (the catalog) with epoch._session_current() whenever a statement may
 * have changed it. Private to src/wire.
 */
#ifndef EPOCH_WIRE_BRANCH_SESSION_H
#define EPOCH_WIRE_BRANCH_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "wire/buf.h"

typedef struct client client_t;
typedef struct server server_t;

/* The channel PostgreSQL notifies when the epoch catalog changes (migration
 * 3): the proxy LISTENs on it for branch sessions; never forwarded. */
#define BRANCH_CATALOG_CHANNEL "epoch_catalog"

typedef enum {
    BRANCH_FORWARD, /* forward the message as it is */
    BRANCH_DONE,    /* the hook sent a replacement or answered; consume it */
    BRANCH_WAIT,    /* internal statements are running; keep the message */
} branch_hook_t;

/* After the startup packet is parsed: split "dbname@branch" (the database
 * becomes dbname, the branch a startup parameter epoch.branch). false with a
 * client-facing reason in err. */
bool branch_startup(client_t *c, char *err, size_t errcap) __attribute__((warn_unused_result));
/* True when the session must be checked before the client sees
 * ReadyForQuery (a branch was asked for at startup). */
bool branch_wanted_at_login(const client_t *c);
/* Start that check; calls client_login_finish(c) when done (or fails c). */
void branch_check_login(client_t *c);
/* The hot path: true when a 'Q' or 'P' goes to PostgreSQL untouched (a
 * main session, nothing stale, and the text mentions nothing epoch
 * rewrites). A few substring scans; no allocation. */
bool branch_untouched(const client_t *c, const char *msg, size_t total);
/* A 'Q' or 'P' message from the client while a server is linked. */
branch_hook_t branch_on_message(client_t *c, const char *msg, size_t total);
/* A backend message for a client with branch state (c->br non-NULL):
 * 0 = forward it; 1 = drop it (a reply to the proxy's own plan-reuse
 * messages); 2 = send `out` instead (a CommandComplete with its tag fixed). */
int branch_server_message(client_t *c, const char *msg, size_t total, buf_t *out);
/* A frontend message forwarded to the server (Q, S, F, B, E, C), for the
 * tag bookkeeping; Query and Parse pass through branch_on_message first. */
void branch_note_client(client_t *c, const char *msg, size_t total);
/* Bind or Describe of the unnamed statement while it stands for one of the
 * proxy's named statements: the renamed message in out. false = forward the
 * client's message as it is (out untouched unless out of memory). */
bool branch_rename_unnamed(client_t *c, const char *msg, size_t total, buf_t *out)
    __attribute__((warn_unused_result));
/* A NotificationResponse from sv: true when it is on BRANCH_CATALOG_CHANNEL
 * (then every branch session of the worker reloads its catalog before its
 * next statement; the caller drops the message). */
bool branch_catalog_notification(server_t *sv, const char *msg, size_t total);
/* A CommandComplete from sv (tag NUL-terminated within len): notes an
 * UNLISTEN or DISCARD ALL that ended the proxy's LISTEN. */
void branch_note_unlisten(server_t *sv, const char *tag, size_t len);
/* A ReadyForQuery reached the client (tx status updated). */
void branch_after_ready(client_t *c);
void branch_free(client_t *c);

#endif
