/*
 * cli — what every part of the `epoch` command-line client shares: the
 * command table entry, the parsed arguments and the run context.
 *
 * The client only sends SQL (parameterised, PQexecParams) to the proxy and
 * prints what comes back: every semantic lives in the database (schema
 * epoch). It links libpq, json-c and nothing of the proxy but src/common.
 */
#ifndef EPOCH_CLI_CLI_H
#define EPOCH_CLI_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

/* exit codes: documented in docs/cli.md */
enum { EXIT_OK = 0, EXIT_ERROR = 1, EXIT_USAGE = 2 };

/* Every option any command takes; args.c describes each once (long name,
 * short letter, argument), and a command lists the ones it accepts. */
typedef enum {
    OPT_HOST,
    OPT_PORT,
    OPT_USER,
    OPT_DBNAME,
    OPT_BRANCH,
    OPT_FORMAT,
    OPT_HELP,
    OPT_FROM,
    OPT_FORCE,
    OPT_GRAPH,
    OPT_OFF,
    OPT_SHORT,
    OPT_MESSAGE,
    OPT_AUTHOR,
    OPT_ONELINE,
    OPT_MAX_COUNT,
    OPT_SINCE,
    OPT_UNTIL,
    OPT_TABLE,
    OPT_STAT,
    OPT_NAME_ONLY,
    OPT_STRATEGY,
    OPT_DRY_RUN,
    OPT_CONTINUE,
    OPT_ABORT,
    OPT_OURS,
    OPT_THEIRS,
    OPT_RECORD,
    OPT_FIELD,
    OPT_VALUE,
    OPT_DELETE,
    OPT_AT,
    OPT_TYPE,
    OPT_DESCRIPTION,
    OPT_ENTITY,
    OPT_EXPRESSION,
    OPT_NEW_NAME,
    OPT_OWNER,
    OPT_RETENTION,
    OPT_MERGE,
    OPT__COUNT
} cli_opt_t;

#define O(id) (UINT64_C(1) << (id))
/* options every command takes: connection, --branch, --format, --help */
#define OPTS_GLOBAL                                                                                \
    (O(OPT_HOST) | O(OPT_PORT) | O(OPT_USER) | O(OPT_DBNAME) | O(OPT_BRANCH) | O(OPT_FORMAT) |     \
     O(OPT_HELP))

typedef enum { FORMAT_TEXT, FORMAT_JSON, FORMAT_CSV } cli_format_t;
#define FMT(f) (1u << (f))

struct cli;
typedef int (*cli_run_fn)(struct cli *cli);

/* One (sub)command: `epoch NAME [SUB] ...`. */
typedef struct cli_command {
    const char *name;  /* "branch" */
    const char *sub;   /* "create"; NULL for a command without subcommands */
    bool default_sub;  /* runs when the command is given without a subcommand word */
    cli_run_fn run;    /* returns an exit code */
    uint64_t opts;     /* O(OPT_...) it takes besides OPTS_GLOBAL */
    int min_pos;       /* positional arguments after the (sub)command word */
    int max_pos;       /* -1: any number */
    unsigned formats;  /* FMT(FORMAT_...) accepted by --format; text is always */
    const char *usage; /* "epoch branch create NAME [--from REF]" */
    const char *about; /* one line */
} cli_command_t;

typedef struct cli_args {
    /* value of each option given (flags: ""), NULL when not given; points
     * into argv, valid for the whole run */
    const char *opt[OPT__COUNT];
    char **pos; /* positional arguments after the (sub)command word */
    int npos;
    cli_format_t format;
} cli_args_t;

typedef struct cli {
    const cli_command_t *cmd;
    cli_args_t args;
    PGconn *conn;    /* opened by conn_open() before cmd->run */
    char *branch;    /* the session's branch ("main" when none is chosen); owned */
    char *state_key; /* the state file's key for this connection; owned */
    bool color;      /* stdout is a terminal and NO_COLOR is not set */
} cli_t;

/* The command table (main.c) and its size. */
extern const cli_command_t cli_commands[];
extern const int cli_ncommands;

/* Print "epoch: <reason>" and the command's usage on stderr; returns
 * EXIT_USAGE. */
int cli_usage_error(const cli_t *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "epoch: <message>" on stderr; returns EXIT_ERROR. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
