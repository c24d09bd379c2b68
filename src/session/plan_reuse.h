/*
 * plan_reuse — rewritten statements run as server-side prepared statements,
 * so PostgreSQL plans the overlay once per connection instead of at every
 * call. Private to src/session.
 *
 * A rewritten single SELECT whose constants are all numeric, sent with the
 * simple protocol on a passthrough connection with nothing else in flight,
 * runs as "_epoch_<hash>" (Close + Parse once per connection, then
 * Bind/Describe/Execute/Sync); the extra replies are dropped so the client
 * sees a simple query's. The extended protocol's unnamed statement is
 * parsed once per connection as "_epoch_u<n>", and Bind/Describe of "" are
 * renamed to it.
 */
#ifndef EPOCH_SESSION_PLAN_REUSE_H
#define EPOCH_SESSION_PLAN_REUSE_H

#include <stdbool.h>
#include <stddef.h>

#include "rewrite/cache.h"
#include "session/state.h"
#include "wire/hooks.h"

/* Run tp (a rewritten simple Query) as a prepared statement. false = not
 * applicable, nothing sent (*oom says whether memory ran out). */
bool plan_reuse_query(client_t *c, const rw_template_t *tp, bool *oom);
/* Send the rewritten Parse of the unnamed statement under a name of ours.
 * false = not applicable, nothing sent. */
bool plan_reuse_unnamed(client_t *c, const char *msg, size_t total, const char *sql, bool *oom);
/* DISCARD / DEALLOCATE: the server's statements may be gone. */
void plan_reuse_forget_all(session_state_t *ss);
/* A backend message: true = a reply to plan reuse's own messages, drop it. */
bool plan_reuse_reply(session_state_t *ss, char type);
/* Hook: Bind or Describe of "" while it stands for one of ours. */
bool plan_reuse_rename(client_t *c, const char *msg, size_t total, buf_t *out);

#endif
