/*
 * epoch — the command-line client: git-like commands over the proxy's SQL
 * functions and views (schema epoch). main.c holds the command table and
 * the run: parse (args.c), connect (conn.c), run the command, exit with its
 * code. docs/cli.md documents every command, its options and JSON keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/conn.h"

#define JSON FMT(FORMAT_JSON)

const cli_command_t cli_commands[] = {
    {"track", NULL, false, cmd_track, 0, 1, -1, JSON, "epoch track TABLE...",
     "start versioning tables"},
    {"untrack", NULL, false, cmd_untrack, O(OPT_FORCE), 1, 1, JSON, "epoch untrack TABLE [-f]",
     "stop versioning a table"},
    {"table", "list", true, cmd_table_list, 0, 0, 0, JSON, "epoch table list",
     "list tracked tables"},
    {"branch", "list", true, cmd_branch_list, O(OPT_GRAPH), 0, 0, JSON,
     "epoch branch [list [--graph]]", "list branches"},
    {"branch", "create", false, cmd_branch_create, O(OPT_FROM), 1, 1, JSON,
     "epoch branch create NAME [--from REF]", "create a branch"},
    {"branch", "delete", false, cmd_branch_delete, O(OPT_FORCE), 1, 1, JSON,
     "epoch branch delete NAME [-f]", "delete a branch"},
    {"branch", "rename", false, cmd_branch_rename, 0, 2, 2, JSON, "epoch branch rename OLD NEW",
     "rename a branch"},
    {"branch", "protect", false, cmd_branch_protect, O(OPT_OFF), 1, 1, JSON,
     "epoch branch protect NAME [--off]", "protect a branch from deletion"},
    {"checkout", NULL, false, cmd_checkout, 0, 1, 1, JSON, "epoch checkout BRANCH",
     "make BRANCH the branch of later commands"},
    {"status", NULL, false, cmd_status, O(OPT_SHORT), 0, 0, JSON, "epoch status [--short]",
     "uncommitted changes of the branch"},
    {"commit", NULL, false, cmd_commit, O(OPT_MESSAGE) | O(OPT_AUTHOR), 0, 0, JSON,
     "epoch commit -m MSG [--author A]", "seal the working state into a commit"},
    {"log", NULL, false, cmd_log,
     O(OPT_ONELINE) | O(OPT_GRAPH) | O(OPT_MAX_COUNT) | O(OPT_SINCE) | O(OPT_UNTIL) |
         O(OPT_AUTHOR) | O(OPT_TABLE),
     0, 1, JSON,
     "epoch log [REF] [--oneline] [--graph] [-n N] [--since T] [--until T] [--author A] "
     "[--table T]",
     "commit history"},
    {"show", NULL, false, cmd_show, 0, 0, 1, JSON, "epoch show [REF]",
     "a commit: its stats and changes"},
    {"diff", NULL, false, cmd_diff, O(OPT_TABLE) | O(OPT_STAT) | O(OPT_NAME_ONLY), 0, 2, JSON,
     "epoch diff [A [B] | A..B] [--table T] [--stat] [--name-only]", "differences of two refs"},
    {"merge", NULL, false, cmd_merge,
     O(OPT_STRATEGY) | O(OPT_DRY_RUN) | O(OPT_MESSAGE) | O(OPT_CONTINUE) | O(OPT_ABORT), 0, 1, JSON,
     "epoch merge SRC [--strategy S] [--dry-run] [-m MSG] | --continue | --abort",
     "merge SRC into the branch"},
    {"conflicts", "show", true, cmd_conflicts_show, O(OPT_MERGE), 0, 0, JSON,
     "epoch conflicts [show] [--merge ID]", "conflicts of the conflicted merge"},
    {"conflicts", "resolve", false, cmd_conflicts_resolve,
     O(OPT_OURS) | O(OPT_THEIRS) | O(OPT_RECORD) | O(OPT_FIELD) | O(OPT_VALUE) | O(OPT_MERGE), 0, 1,
     JSON,
     "epoch conflicts resolve [--ours|--theirs] [TABLE [--record PK] [--field F] [--value V]]",
     "resolve conflicts"},
    {"sync", NULL, false, cmd_sync, O(OPT_STRATEGY) | O(OPT_DRY_RUN), 0, 0, JSON,
     "epoch sync [--strategy S] [--dry-run]", "merge main's new changes into the branch"},
    {"tag", NULL, false, cmd_tag, O(OPT_MESSAGE) | O(OPT_DELETE), 0, 2, JSON,
     "epoch tag [list | NAME [REF] [-m MSG] | -d NAME]", "list, create or delete tags"},
    {"reset", NULL, false, cmd_reset, 0, 1, 1, JSON, "epoch reset REF",
     "move the branch to a commit (uncommitted changes go)"},
    {"revert", NULL, false, cmd_revert, 0, 1, 1, JSON, "epoch revert REF",
     "a new commit undoing REF"},
    {"query", NULL, false, cmd_query, O(OPT_AT), 1, 1, JSON | FMT(FORMAT_CSV),
     "epoch query SQL [--at REF] [--format table|json|csv]", "run SQL on the branch"},
    {"hwm", "list", true, cmd_hwm_list, 0, 0, 1, JSON, "epoch hwm [list [NS]]", "list HWMs"},
    {"hwm", "get", false, cmd_hwm_get, 0, 2, 2, JSON, "epoch hwm get NS NAME", "an HWM's value"},
    {"hwm", "set", false, cmd_hwm_set,
     O(OPT_TYPE) | O(OPT_DESCRIPTION) | O(OPT_ENTITY) | O(OPT_EXPRESSION), 3, 3, JSON,
     "epoch hwm set NS NAME VALUE [--type T] [--description D] [--entity E] [--expression X]",
     "create or update an HWM"},
    {"hwm", "delete", false, cmd_hwm_delete, 0, 2, 2, JSON, "epoch hwm delete NS NAME",
     "delete an HWM"},
    {"hwm", "history", false, cmd_hwm_history, 0, 1, 2, JSON, "epoch hwm history NS [NAME]",
     "an HWM's or a namespace's HWM history"},
    {"namespace", "list", true, cmd_namespace_list, 0, 0, 0, JSON, "epoch namespace [list]",
     "list namespaces"},
    {"namespace", "create", false, cmd_namespace_create, O(OPT_DESCRIPTION), 1, 1, JSON,
     "epoch namespace create NAME [--description D]", "create a namespace"},
    {"namespace", "update", false, cmd_namespace_update,
     O(OPT_NEW_NAME) | O(OPT_DESCRIPTION) | O(OPT_OWNER), 1, 1, JSON,
     "epoch namespace update NAME [--name NEW] [--description D] [--owner U]",
     "rename or describe a namespace, or give it away"},
    {"namespace", "delete", false, cmd_namespace_delete, O(OPT_FORCE), 1, 1, JSON,
     "epoch namespace delete NAME [-f]", "delete a namespace"},
    {"namespace", "grant", false, cmd_namespace_grant, 0, 3, 3, JSON,
     "epoch namespace grant NS USER ROLE", "give USER a role in NS"},
    {"namespace", "revoke", false, cmd_namespace_revoke, 0, 2, 2, JSON,
     "epoch namespace revoke NS USER", "take USER's role in NS away"},
    {"gc", NULL, false, cmd_gc, O(OPT_DRY_RUN) | O(OPT_RETENTION), 0, 0, JSON,
     "epoch gc [--dry-run] [--retention INTERVAL]", "delete history no ref can reach"},
};
const int cli_ncommands = (int)(sizeof(cli_commands) / sizeof(cli_commands[0]));

int main(int argc, char **argv)
{
    cli_t cli = {0};
    int rc = args_parse(&cli, argc, argv);
    if (rc != EXIT_OK) {
        free(cli.args.pos);
        return rc < 0 ? EXIT_OK : rc;
    }
    cli.color = cli.args.format == FORMAT_TEXT && isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
    if (!conn_open(&cli))
        rc = EXIT_ERROR;
    else
        rc = cli.cmd->run(&cli);
    conn_close(&cli);
    free(cli.args.pos);
    if (fflush(stdout) != 0 && rc == EXIT_OK)
        rc = EXIT_ERROR;
    return rc;
}
