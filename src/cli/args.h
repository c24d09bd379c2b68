/*
 * args — the one argument parser of the client: finds the command (and its
 * subcommand) in argv, then runs getopt_long over the rest with a table built
 * from the options that command accepts. No command parses argv by hand.
 */
#ifndef EPOCH_CLI_ARGS_H
#define EPOCH_CLI_ARGS_H

#include <stdio.h>

#include "cli/cli.h"

/* Parse argv into cli->cmd and cli->args. Returns EXIT_OK, or EXIT_USAGE
 * after printing the reason and usage on stderr, or -1 when help was asked
 * for and printed on stdout (the caller exits 0). argv is permuted. */
int args_parse(cli_t *cli, int argc, char **argv) __attribute__((warn_unused_result));

/* Usage lines of cmd (of every subcommand of its name when cmd->sub is NULL
 * and the name has subcommands) and its options, on out. */
void args_print_usage(FILE *out, const cli_command_t *cmd, bool options);

/* The option's display name ("--from"), for messages. */
const char *args_opt_name(cli_opt_t id);

#endif
