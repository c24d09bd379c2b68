/*
 * args — see args.h. Options are described once here; a command accepts the
 * ones its table entry lists (main.c), plus the global ones. A short letter
 * may mean different options in different commands (`-d` is --dbname, but
 * --delete in `epoch tag`): the command's own option wins.
 */
#include "cli/args.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    char short_name; /* 0: none */
    bool has_arg;
    const char *arg_name;
    const char *help;
} opt_desc_t;

static const opt_desc_t OPTS[OPT__COUNT] = {
    [OPT_HOST] = {"host", 'h', true, "HOST", "server host (proxy)"},
    [OPT_PORT] = {"port", 'p', true, "PORT", "server port"},
    [OPT_USER] = {"username", 'U', true, "USER", "user name"},
    [OPT_DBNAME] = {"dbname", 'd', true, "DB|URL",
                    "database name, or a conninfo string or postgres:// URL"},
    [OPT_BRANCH] = {"branch", 0, true, "BRANCH", "run on BRANCH instead of the checked-out one"},
    [OPT_FORMAT] = {"format", 0, true, "FORMAT", "output format: text (default) or json"},
    [OPT_HELP] = {"help", 0, false, NULL, "show this help"},
    [OPT_FROM] = {"from", 0, true, "REF", "start the branch at REF (default: main)"},
    [OPT_FORCE] = {"force", 'f', false, NULL, "even if it holds changes"},
    [OPT_GRAPH] = {"graph", 0, false, NULL, "draw the graph"},
    [OPT_OFF] = {"off", 0, false, NULL, "remove the protection"},
    [OPT_SHORT] = {"short", 's', false, NULL, "short format"},
    [OPT_MESSAGE] = {"message", 'm', true, "MSG", "message"},
    [OPT_AUTHOR] = {"author", 0, true, "AUTHOR", "author"},
    [OPT_ONELINE] = {"oneline", 0, false, NULL, "one line per commit"},
    [OPT_MAX_COUNT] = {"max-count", 'n', true, "N", "at most N commits"},
    [OPT_SINCE] = {"since", 0, true, "TIME", "commits at or after TIME"},
    [OPT_UNTIL] = {"until", 0, true, "TIME", "commits at or before TIME"},
    [OPT_TABLE] = {"table", 0, true, "TABLE", "only TABLE"},
    [OPT_STAT] = {"stat", 0, false, NULL, "rows inserted/updated/deleted per table"},
    [OPT_NAME_ONLY] = {"name-only", 0, false, NULL, "names of the changed tables"},
    [OPT_STRATEGY] = {"strategy", 's', true, "S", "three_way (default), ours, theirs, fail"},
    [OPT_DRY_RUN] = {"dry-run", 0, false, NULL, "compute and report, change nothing"},
    [OPT_CONTINUE] = {"continue", 0, false, NULL, "finish the conflicted merge"},
    [OPT_ABORT] = {"abort", 0, false, NULL, "give the conflicted merge up"},
    [OPT_OURS] = {"ours", 0, false, NULL, "keep the target's side"},
    [OPT_THEIRS] = {"theirs", 0, false, NULL, "take the source's side"},
    [OPT_RECORD] = {"record", 0, true, "PK",
                    "the row: its key as JSON, or the value of a "
                    "one-column key"},
    [OPT_FIELD] = {"field", 0, true, "COLUMN", "the column"},
    [OPT_VALUE] = {"value", 0, true, "VALUE", "a value of your own"},
    [OPT_DELETE] = {"delete", 'd', false, NULL, "delete"},
    [OPT_AT] = {"at", 0, true, "REF", "read the state at REF (read-only)"},
    [OPT_TYPE] = {"type", 0, true, "TYPE", "the HWM's type"},
    [OPT_DESCRIPTION] = {"description", 0, true, "TEXT", "description"},
    [OPT_ENTITY] = {"entity", 0, true, "TEXT", "the HWM's entity"},
    [OPT_EXPRESSION] = {"expression", 0, true, "TEXT", "the HWM's expression"},
    [OPT_NEW_NAME] = {"name", 0, true, "NAME", "new name"},
    [OPT_OWNER] = {"owner", 0, true, "USER", "new owner"},
    [OPT_RETENTION] = {"retention", 0, true, "INTERVAL", "keep history this long"},
    [OPT_MERGE] = {"merge", 0, true, "ID",
                   "the merge (default: the conflicted merge into the "
                   "branch)"},
};

const char *args_opt_name(cli_opt_t id)
{
    static char names[OPT__COUNT][32];
    if (!names[id][0])
        snprintf(names[id], sizeof(names[id]), "--%s", OPTS[id].name);
    return names[id];
}

/* Options with an argument among the global ones: needed to find the
 * command word behind them (`epoch -h host status`). */
static bool global_takes_arg(const char *arg)
{
    for (int id = 0; id < OPT__COUNT; id++) {
        if (!(OPTS_GLOBAL & O(id)) || !OPTS[id].has_arg)
            continue;
        if (arg[1] != '-' && arg[1] == OPTS[id].short_name && arg[2] == '\0')
            return true;
        if (arg[1] == '-' && strcmp(arg + 2, OPTS[id].name) == 0)
            return true;
    }
    return false;
}

static const cli_command_t *find_command(const char *name, const char *sub, bool *sub_used)
{
    const cli_command_t *fallback = NULL;
    *sub_used = false;
    for (int i = 0; i < cli_ncommands; i++) {
        const cli_command_t *c = &cli_commands[i];
        if (strcmp(c->name, name) != 0)
            continue;
        if (!c->sub)
            return c;
        if (sub && strcmp(c->sub, sub) == 0) {
            *sub_used = true;
            return c;
        }
        if (c->default_sub)
            fallback = c;
    }
    return fallback;
}

static bool command_exists(const char *name)
{
    for (int i = 0; i < cli_ncommands; i++)
        if (strcmp(cli_commands[i].name, name) == 0)
            return true;
    return false;
}

/* own: the command's options, whose short letters hide a global one's */
static void print_option_help(FILE *out, uint64_t opts, uint64_t own)
{
    for (int id = 0; id < OPT__COUNT; id++) {
        if (!(opts & O(id)))
            continue;
        char left[64];
        const opt_desc_t *d = &OPTS[id];
        bool hidden = false;
        for (int o = 0; o < OPT__COUNT; o++)
            if (o != id && (own & O(o)) && d->short_name && OPTS[o].short_name == d->short_name)
                hidden = true;
        if (d->short_name && !hidden)
            snprintf(left, sizeof(left), "-%c, --%s%s%s", d->short_name, d->name,
                     d->has_arg ? " " : "", d->has_arg ? d->arg_name : "");
        else
            snprintf(left, sizeof(left), "    --%s%s%s", d->name, d->has_arg ? " " : "",
                     d->has_arg ? d->arg_name : "");
        fprintf(out, "  %-28s %s\n", left, d->help);
    }
}

/* set by args_parse: the command was named without its subcommand word, so
 * its usage is that of the whole family (`epoch branch --help`) */
static bool family_usage;

void args_print_usage(FILE *out, const cli_command_t *cmd, bool options)
{
    if (!cmd) {
        fputs("usage: epoch [connection options] COMMAND [ARGS] [--branch B] [--format json]\n\n"
              "commands:\n",
              out);
        for (int i = 0; i < cli_ncommands; i++)
            fprintf(out, "  %-62s %s\n", cli_commands[i].usage + strlen("epoch "),
                    cli_commands[i].about);
        fputs("\nconnection options (libpq; PG* variables and the service file apply too):\n", out);
        print_option_help(out, O(OPT_HOST) | O(OPT_PORT) | O(OPT_USER) | O(OPT_DBNAME), 0);
        fputs("\n`epoch COMMAND --help` shows a command's options; docs/cli.md has them all.\n",
              out);
        return;
    }
    uint64_t opts = 0;
    const char *prefix = "usage:";
    for (int i = 0; i < cli_ncommands; i++) {
        const cli_command_t *c = &cli_commands[i];
        if (c == cmd || (family_usage && cmd->sub && strcmp(c->name, cmd->name) == 0)) {
            fprintf(out, "%s %s\n", prefix, c->usage);
            prefix = "      ";
            opts |= c->opts;
        }
    }
    if (options) {
        fputs("\noptions:\n", out);
        print_option_help(out, opts & ~OPTS_GLOBAL, 0);
        fputs("\ncommon options:\n", out);
        print_option_help(out, OPTS_GLOBAL, opts);
    }
}

/* "epoch: <message>\n" on stderr */
static void print_error(const char *fmt, va_list ap)
{
    fputs("epoch: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_usage_error(const cli_t *cli, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_error(fmt, ap);
    va_end(ap);
    args_print_usage(stderr, cli ? cli->cmd : NULL, false);
    return EXIT_USAGE;
}

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_error(fmt, ap);
    va_end(ap);
    return EXIT_ERROR;
}

static int parse_format(cli_t *cli)
{
    const char *f = cli->args.opt[OPT_FORMAT];
    cli->args.format = FORMAT_TEXT;
    if (!f)
        return EXIT_OK;
    if (strcmp(f, "text") == 0 || strcmp(f, "table") == 0)
        cli->args.format = FORMAT_TEXT;
    else if (strcmp(f, "json") == 0)
        cli->args.format = FORMAT_JSON;
    else if (strcmp(f, "csv") == 0)
        cli->args.format = FORMAT_CSV;
    else
        return cli_usage_error(cli, "unknown format \"%s\"", f);
    if (cli->args.format != FORMAT_TEXT && !(cli->cmd->formats & FMT(cli->args.format)))
        return cli_usage_error(cli, "%s does not print --format %s", cli->cmd->usage, f);
    return EXIT_OK;
}

int args_parse(cli_t *cli, int argc, char **argv)
{
    /* the command word: the first argument that is not a global option */
    int at = 1;
    bool help = false;
    while (at < argc && argv[at][0] == '-' && argv[at][1] != '\0') {
        if (strcmp(argv[at], "--") == 0) {
            at++;
            break;
        }
        if (strcmp(argv[at], "--help") == 0)
            help = true;
        at += global_takes_arg(argv[at]) && at + 1 < argc ? 2 : 1;
    }
    if (at >= argc) {
        args_print_usage(help ? stdout : stderr, NULL, false);
        if (help)
            return -1;
        fputs("epoch: no command given\n", stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[at];
    if (strcmp(name, "help") == 0) {
        const cli_command_t *c = NULL;
        bool used;
        if (at + 1 < argc &&
            !(c = find_command(argv[at + 1], at + 2 < argc ? argv[at + 2] : NULL, &used))) {
            fprintf(stderr, "epoch: unknown command \"%s\"\n", argv[at + 1]);
            return EXIT_USAGE;
        }
        args_print_usage(stdout, c, true);
        return -1;
    }
    const char *sub = at + 1 < argc ? argv[at + 1] : NULL;
    bool sub_used;
    cli->cmd = find_command(name, sub, &sub_used);
    if (!cli->cmd) {
        if (command_exists(name)) {
            /* a command whose subcommands have no default: `epoch table` */
            bool help = sub && strcmp(sub, "--help") == 0;
            if (!help)
                fprintf(stderr, "epoch: %s \"%s\"\n",
                        sub ? "unknown subcommand" : "missing subcommand for", sub ? sub : name);
            family_usage = true;
            for (int i = 0; i < cli_ncommands; i++)
                if (strcmp(cli_commands[i].name, name) == 0) {
                    args_print_usage(help ? stdout : stderr, &cli_commands[i], help);
                    break;
                }
            return help ? -1 : EXIT_USAGE;
        }
        fprintf(stderr, "epoch: unknown command \"%s\"\n", name);
        args_print_usage(stderr, NULL, false);
        return EXIT_USAGE;
    }
    family_usage = !sub_used && cli->cmd->sub;
    if (family_usage && sub && sub[0] != '-' && cli->cmd->max_pos == 0) {
        fprintf(stderr, "epoch: unknown subcommand \"%s\"\n", sub);
        args_print_usage(stderr, cli->cmd, false);
        return EXIT_USAGE;
    }
    /* take the command (and subcommand) words out of argv */
    int drop = sub_used ? 2 : 1;
    for (int i = at; i + drop < argc; i++)
        argv[i] = argv[i + drop];
    argc -= drop;

    /* the getopt_long table of this command; a short letter of the
     * command's own options hides a global one (`tag -d` is --delete) */
    uint64_t opts = cli->cmd->opts | OPTS_GLOBAL;
    struct option longs[OPT__COUNT + 1];
    char shorts[2 * OPT__COUNT + 3] = "+:";
    int nl = 0, ns = 2;
    int short_id[128];
    memset(short_id, -1, sizeof(short_id));
    for (int id = 0; id < OPT__COUNT; id++)
        if ((cli->cmd->opts & O(id)) && OPTS[id].short_name)
            short_id[(int)OPTS[id].short_name] = id;
    for (int id = 0; id < OPT__COUNT; id++) {
        if (!(opts & O(id)))
            continue;
        longs[nl++] = (struct option){
            OPTS[id].name, OPTS[id].has_arg ? required_argument : no_argument, NULL, 1000 + id};
        char s = OPTS[id].short_name;
        if (!s || (short_id[(int)s] >= 0 && short_id[(int)s] != id))
            continue;
        short_id[(int)s] = id;
        shorts[ns++] = s;
        if (OPTS[id].has_arg)
            shorts[ns++] = ':';
    }
    shorts[ns] = '\0';
    longs[nl] = (struct option){0};

    char **pos = malloc(sizeof(char *) * (size_t)(argc + 1));
    if (!pos)
        return cli_error("out of memory");
    int npos = 0;
    optind = 1;
    opterr = 0;
    while (optind < argc) {
        const char *a = argv[optind];
        if (strcmp(a, "--") == 0) {
            for (optind++; optind < argc;)
                pos[npos++] = argv[optind++];
            break;
        }
        if (a[0] != '-' || a[1] == '\0') {
            /* positionals and options mix: `branch create x --from y` */
            pos[npos++] = argv[optind++];
            continue;
        }
        int c = getopt_long(argc, argv, shorts, longs, NULL);
        if (c == -1)
            break;
        int id = c >= 1000 ? c - 1000 : (c > 0 && c < 128 ? short_id[c] : -1);
        if (c == ':') {
            free(pos);
            return cli_usage_error(cli, "option %s needs an argument", argv[optind - 1]);
        }
        if (c == '?' || id < 0) {
            free(pos);
            if (optopt > 0 && optopt < 128 && optopt != '?')
                return cli_usage_error(cli, "unknown option -%c", optopt);
            return cli_usage_error(cli, "unknown option %s", argv[optind - 1]);
        }
        cli->args.opt[id] = OPTS[id].has_arg ? optarg : "";
    }
    cli->args.pos = pos;
    cli->args.npos = npos;
    if (cli->args.opt[OPT_HELP]) {
        args_print_usage(stdout, cli->cmd, true);
        return -1;
    }
    if (npos < cli->cmd->min_pos)
        return cli_usage_error(cli, "missing argument");
    if (cli->cmd->max_pos >= 0 && npos > cli->cmd->max_pos)
        return cli_usage_error(cli, "unexpected argument \"%s\"", pos[cli->cmd->max_pos]);
    return parse_format(cli);
}
