/*
 * session — what a client session on a branch needs around each statement:
 * the hook the wire layer calls (wire/hooks.h), the session's catalog and
 * its loading, plan reuse, and the fixing of errors and command tags.
 *
 * Arrows: main → session → wire (hooks.h, conn_api.h only), session →
 * rewrite → branch → common. Nothing in wire includes this layer.
 */
#ifndef EPOCH_SESSION_SESSION_H
#define EPOCH_SESSION_SESSION_H

/* Install the session's hooks into the wire layer (before the workers start). */
void session_install(void);

#endif
