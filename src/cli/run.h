/*
 * run — the shapes the commands share: run a statement and print what it
 * answers in the chosen --format (out.h), or exit with EXIT_ERROR after
 * conn_exec() printed the server's error. Sits on conn (SQL) and out
 * (printing); knows no command.
 */
#ifndef EPOCH_CLI_RUN_H
#define EPOCH_CLI_RUN_H

#include "cli/cli.h"
#include "cli/out.h"

/* Run sql with n parameters and print its rows with out_list(); an exit
 * code. */
int run_list(cli_t *cli, const char *sql, int n, const char *const *params, out_text_fn text);

/* Run call (n parameters; a function answering the id of the row it
 * wrote), then select ($1: that id) and print its first row with
 * out_first(): a statement of its own, so that its snapshot sees what the
 * call wrote. An exit code. */
int run_written(cli_t *cli, const char *call, int n, const char *const *params, const char *select,
                out_text_fn text);

#endif
