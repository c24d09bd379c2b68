/*
 * conn — the connection to the proxy and the per-user state file.
 *
 * The connection takes what the user gave (-h/-p/-U, -d as a database name,
 * conninfo string or postgres:// URL) through PQconnectdbParams with
 * expand_dbname, so PG* variables, the service file and .pgpass work as in
 * psql. The branch is then chosen with `SET epoch.branch = '…'` (the
 * connection parameters stay exactly the user's; an unknown branch is an
 * ERROR with its SQLSTATE, not a FATAL at connect).
 *
 * The state file ($XDG_STATE_HOME/epoch/state, else
 * ~/.local/state/epoch/state) remembers the branch `epoch checkout` chose,
 * one line "user@host:port/dbname<TAB>branch" per connection.
 */
#ifndef EPOCH_CLI_CONN_H
#define EPOCH_CLI_CONN_H

#include "cli/cli.h"

/* Connect, and put the session on --branch, else the checked-out branch of
 * this connection, else main. Sets cli->conn, cli->branch, cli->state_key.
 * On failure prints the reason and returns false. */
bool conn_open(cli_t *cli) __attribute__((warn_unused_result));
void conn_close(cli_t *cli);

/* SET setting = value (a quoted literal: SET takes no parameters); false
 * after printing the server's error. */
bool conn_set(cli_t *cli, const char *setting, const char *value)
    __attribute__((warn_unused_result));
/* Put the session on branch (SET epoch.branch); false after printing the
 * server's error. */
bool conn_set_branch(cli_t *cli, const char *branch) __attribute__((warn_unused_result));

/* Run sql with n text parameters (NULL = SQL NULL). Returns the result of a
 * successful statement (the caller PQclear()s it), or NULL after printing
 * the server's error (SQLSTATE, DETAIL, HINT) on stderr. */
PGresult *conn_exec(cli_t *cli, const char *sql, int n, const char *const *params)
    __attribute__((warn_unused_result));

/* Run sql as conn_exec() does and drop its result; false after printing
 * the server's error. */
bool conn_run(cli_t *cli, const char *sql, int n, const char *const *params)
    __attribute__((warn_unused_result));

/* The first row's first value of a successful query (malloc'd, caller
 * frees; NULL for SQL NULL or no row); *ok tells an error from a NULL. */
char *conn_value(cli_t *cli, const char *sql, int n, const char *const *params, bool *ok)
    __attribute__((warn_unused_result));

/* Print a failed result as "epoch: ERROR 42704: …" plus DETAIL and HINT. */
void conn_print_error(const PGresult *res, PGconn *conn);

/* The branch `epoch checkout` recorded for key (malloc'd), or NULL. */
char *state_get(const char *key) __attribute__((warn_unused_result));
/* Record branch for key (NULL removes the entry); false after printing why. */
bool state_set(const char *key, const char *branch) __attribute__((warn_unused_result));

#endif
