/*
 * named — which ref each named prepared statement was prepared on.
 *
 * The rewriter writes the session's branch into a statement's SQL, so a
 * statement prepared on branch x1 keeps reading x1 after SET epoch.branch =
 * 'x2'. PostgreSQL re-plans a prepared statement when search_path changes;
 * the branch is the same kind of setting, but re-preparing needs the text
 * the statement was prepared from and proof that that Parse succeeded, which
 * the proxy does not have for every statement. So a statement used on
 * another ref than the one it was prepared on is refused with 0A000 and a
 * message naming both refs (never silently run against the old one). An
 * open cursor keeps what it was opened on, as in PostgreSQL.
 *
 * Statements prepared before the session had state (before its first
 * statement touching epoch) were prepared on main. Private to src/session.
 */
#ifndef EPOCH_SESSION_NAMED_H
#define EPOCH_SESSION_NAMED_H

#include <stdbool.h>
#include <stddef.h>

#include "session/state.h"

/* A Parse of a named statement, or SQL PREPARE, was sent on the current ref. */
bool named_prepared(session_state_t *ss, const char *name) __attribute__((warn_unused_result));
/* Close of a statement, or DEALLOCATE name: forget it. */
void named_forget(session_state_t *ss, const char *name);
/* DEALLOCATE ALL, DISCARD ALL. */
void named_forget_all(session_state_t *ss);
/* May statement `name` run on the session's current ref? NULL = yes; else
 * a message saying why not (caller frees; "" when out of memory). */
char *named_stale(const session_state_t *ss, const char *name) __attribute__((warn_unused_result));
void named_free(session_state_t *ss);

/* The Query string's statements that prepare, deallocate or execute named
 * statements: recorded, forgotten, checked. NULL when every EXECUTE may run;
 * else the refusal message (caller frees). *any = the text had any. */
char *named_scan_query(session_state_t *ss, const char *sql, bool *any)
    __attribute__((warn_unused_result));

/* Bind or Describe of a named statement that may not run here: out gets
 * the refusal (session_refuse_by_marker). */
bool named_redirect(session_state_t *ss, const char *msg, size_t total, buf_t *out)
    __attribute__((warn_unused_result));

#define NAMED_SQLSTATE "0A000"
/* What to do about a refused statement. */
const char *named_hint(void);

#endif
