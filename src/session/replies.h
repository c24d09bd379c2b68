/*
 * replies — what the client sees of the rewriting: errors raised on a
 * branch's storage name the table the client wrote (`relation "d_3"` →
 * `relation "products"`), and writes sent as INSERTs complete with the tag
 * the client's statement would have (UPDATE n, DELETE n). Private to
 * src/session; the two hooks of wire/hooks.h that see the traffic.
 */
#ifndef EPOCH_SESSION_REPLIES_H
#define EPOCH_SESSION_REPLIES_H

#include <stdbool.h>
#include <stddef.h>

#include "rewrite/rewrite.h"
#include "session/state.h"
#include "wire/hooks.h"

/* Hook: a backend message for a client with session state. */
hook_reply_t session_reply(client_t *c, const char *msg, size_t total, buf_t *out);
/* Hook: a frontend message being forwarded (batches, statements, portals). */
void session_forwarded(client_t *c, const char *msg, size_t total);
/* Remember which completions of this Query (or which Executes of this
 * Parse's statement) need their tag fixed. */
bool session_record_tags(client_t *c, const char *msg, const rw_result_t *r)
    __attribute__((warn_unused_result));

#endif
