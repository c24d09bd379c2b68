/*
 * hooks — the interface the wire layer declares for the layer above it (the
 * session layer, src/session) to see each client statement and each backend
 * reply of a session. Wire never includes the session: src/main.c installs
 * the session's table with wire_hooks_install() before the workers start.
 * Without one, wire is a plain proxy (every hook forwards).
 *
 * All hooks run on the client's worker thread. A hook may close the client
 * (client_fail): callers re-check the client's state after each call.
 */
#ifndef EPOCH_WIRE_HOOKS_H
#define EPOCH_WIRE_HOOKS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

typedef struct client client_t;
typedef struct server server_t;

typedef enum {
    HOOK_FORWARD, /* forward the client's message as it is */
    HOOK_DONE,    /* the hook sent a replacement or answered: consume the message */
    HOOK_WAIT,    /* the hook's internal statements are running: keep the message */
} hook_verdict_t;

typedef enum {
    REPLY_FORWARD, /* forward the backend message */
    REPLY_DROP,    /* drop it (a reply to the session's own messages) */
    REPLY_REPLACE, /* send the hook's `out` instead */
} hook_reply_t;

typedef struct wire_hooks {
    /* After the startup packet is parsed: may rewrite the startup
     * parameters; false with a client-facing reason (3D000). */
    bool (*startup)(client_t *c, char *err, size_t errcap);
    /* Before the client's first ReadyForQuery: true when the session must
     * check something first; then login_check() runs and calls
     * client_login_finish() (or fails the client). */
    bool (*login_wanted)(const client_t *c);
    void (*login_check)(client_t *c);
    /* The hot path: true when a 'Q' or 'P' (or, for a client with session
     * state, a 'B') goes to PostgreSQL untouched. */
    bool (*untouched)(const client_t *c, const char *msg, size_t total);
    /* A 'Q', 'P' or 'B' that untouched() did not let through. */
    hook_verdict_t (*statement)(client_t *c, const char *msg, size_t total);
    /* Q, S, F, B, E, C, P being forwarded (for the session's bookkeeping). */
    void (*forwarded)(client_t *c, const char *msg, size_t total);
    /* Bind or Describe: true with the message to send instead in out. */
    bool (*rename)(client_t *c, const char *msg, size_t total, buf_t *out);
    /* A backend message for a client with session state. */
    hook_reply_t (*reply)(client_t *c, const char *msg, size_t total, buf_t *out);
    /* A NotificationResponse from sv: true = the session's own, drop it. */
    bool (*notification)(server_t *sv, const char *msg, size_t total);
    /* A CommandComplete tag from sv (NUL-terminated within len). */
    void (*command_done)(server_t *sv, const char *tag, size_t len);
    /* A ReadyForQuery reached the client and nothing is in flight. */
    void (*after_ready)(client_t *c);
    /* The client is being freed: drop the session state. */
    void (*release)(client_t *c);
    /* The branch the client's statements run on, for the metrics (NULL:
     * main); valid until the client's next message. */
    const char *(*branch)(const client_t *c);
    /* A worker thread ends (its clients are gone): free what the session
     * layer keeps per worker. */
    void (*worker_exit)(void);
} wire_hooks_t;

/* Install the table (static storage; before the workers start). */
void wire_hooks_install(const wire_hooks_t *hooks);
/* The installed table (a do-nothing one when none was installed). */
const wire_hooks_t *wire_hooks(void);

#endif
