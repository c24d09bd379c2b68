/*
 * conn_api — what the layer above wire (src/session) may do with a client
 * connection and the server linked to it: read its protocol state, keep its
 * own per-client state, queue internal statements, and send messages in place
 * of the client's. This header and hooks.h are the whole contract: the
 * connection objects themselves (conn.h) stay private to wire.
 *
 * Every function runs on the client's worker thread. client_t and server_t
 * pointers are valid only during the hook or callback they were passed to;
 * an internal statement's callback finds its client again with
 * server_client() (compare client_id()).
 */
#ifndef EPOCH_WIRE_CONN_API_H
#define EPOCH_WIRE_CONN_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "wire/config.h"
#include "wire/proto.h"

typedef struct client client_t;
typedef struct server server_t;

/* ---- internal statements (server.c) ---- */

typedef struct internal_result {
    bool ok;
    const char *sqlstate;    /* on error */
    const char *message;     /* on error */
    const char *command_tag; /* last CommandComplete */
    int ncols, nrows;
    const char *const *values; /* nrows * ncols, NULL for SQL NULL */
} internal_result_t;
typedef void (*internal_cb_t)(server_t *sv, void *arg, const internal_result_t *res);

/* Queue sql (a simple Query) on sv; cb gets its result at ReadyForQuery,
 * valid only during the call. The client's input waits meanwhile. */
bool server_internal(server_t *sv, const char *sql, internal_cb_t cb, void *arg)
    __attribute__((warn_unused_result));
/* The client linked to sv now, or NULL. */
client_t *server_client(const server_t *sv);
/* sv's transaction status from its last ReadyForQuery (I, T or E). */
char server_tx_status(const server_t *sv);
/* A flag the session keeps per server connection (its LISTEN is in effect). */
bool server_listening(const server_t *sv);
void server_set_listening(server_t *sv, bool on);

/* ---- the client ---- */

uint64_t client_id(const client_t *c);
/* The session layer's own state for c (NULL until it sets one; released by
 * the release hook). */
void *client_hook_state(const client_t *c);
void client_set_hook_state(client_t *c, void *state);
/* Logged in and exchanging messages (not logging in, not closing). */
bool client_is_active(const client_t *c);
bool client_is_closing(const client_t *c);
/* From the last ReadyForQuery the client got: I, T or E. */
char client_tx_status(const client_t *c);
/* Requests sent and not yet answered by ReadyForQuery. */
int client_inflight(const client_t *c);
/* Extended-protocol messages sent without a Sync yet. */
bool client_unsynced(const client_t *c);
/* The server linked to c now, or NULL. */
server_t *client_server(const client_t *c);
/* The linked server belongs to a pool (userlist mode) rather than to c. */
bool client_pooled(const client_t *c);
startup_t *client_startup(const client_t *c);
/* The client's IP address as text (no port) in out; false for a client on a
 * unix socket, or when the socket has none to give. */
bool client_peer_addr(const client_t *c, char *out, size_t cap);
const config_t *client_config(const client_t *c);
/* The worker's clock (ms, cached per loop turn). */
uint64_t client_now_ms(const client_t *c);

void client_fail(client_t *c, const char *sqlstate, const char *message, const char *hint);
void client_login_finish(client_t *c);
/* Append bytes for the client (flushed with the next batch). */
bool client_send(client_t *c, const void *data, size_t len) __attribute__((warn_unused_result));
/* Answer the held simple Query with an ErrorResponse and ReadyForQuery now
 * (nothing else may be in flight). */
void client_answer_error(client_t *c, const char *sqlstate, const char *message);
/* Send sql to the server as a Query in place of the client's (the request
 * is counted in flight; transaction pooling notes a SET). */
bool client_send_query(client_t *c, const char *sql) __attribute__((warn_unused_result));
/* Send extended-protocol messages in place of the client's: a batch ending
 * with Sync is a request in flight; otherwise the client is unsynced. */
bool client_send_extended(client_t *c, const buf_t *msgs, bool ends_with_sync)
    __attribute__((warn_unused_result));

#endif
