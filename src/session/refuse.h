/*
 * refuse — sending a statement in place of the client's, and refusing one.
 *
 * A refusal is sent to PostgreSQL as a DO block that raises the error, so
 * the client gets an ordinary ErrorResponse in protocol order and an open
 * transaction is aborted exactly as a failing statement would abort it.
 * Private to src/session.
 */
#ifndef EPOCH_SESSION_REFUSE_H
#define EPOCH_SESSION_REFUSE_H

#include <stdbool.h>
#include <stddef.h>

#include "session/state.h"
#include "wire/hooks.h"

/* Send a Query (sql) or a Parse with sql in place of the client's message
 * msg (a 'Q' or a 'P'). */
bool session_send_replacement(client_t *c, const char *msg, size_t total, const char *sql)
    __attribute__((warn_unused_result));
/* Refuse the client's message with an error (hint, detail may be NULL). */
bool session_refuse(client_t *c, const char *msg, size_t total, const char *sqlstate,
                    const char *message, const char *hint, const char *detail)
    __attribute__((warn_unused_result));
/* An internal statement failed for the held message: tell the client. */
hook_verdict_t session_answer_error(client_t *c, const char *msg, size_t total);

/* A Bind or a Describe (of a statement) cannot be refused with a DO block:
 * out gets the message with the statement renamed to a marker that
 * PostgreSQL reports as missing (26000), in protocol order, and
 * session_fix_refusal() turns that error into this one. message is the
 * session's from now on (freed later). */
bool session_refuse_by_marker(session_state_t *ss, const char *msg, size_t total,
                              const char *sqlstate, char *message, const char *hint, buf_t *out)
    __attribute__((warn_unused_result));
/* An ErrorResponse about a marker: the refusal instead (true, in out). */
bool session_fix_refusal(session_state_t *ss, const char *msg, size_t total, buf_t *out)
    __attribute__((warn_unused_result));
void session_refusals_free(session_state_t *ss);

#endif
