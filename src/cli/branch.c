/*
 * branch — epoch branch list/create/delete/rename/protect and checkout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/conn.h"
#include "cli/out.h"

/* Run a control function returning one text value; print it as
 * {"<key>": value, ...extra} or as the text line fmt (one %s: the value). */
static int call_one(cli_t *cli, const char *sql, int n, const char *const *p, const char *key,
                    const char *fmt)
{
    PGresult *res = conn_exec(cli, sql, n, p);
    if (!res)
        return EXIT_ERROR;
    const char *v = PQntuples(res) ? PQgetvalue(res, 0, 0) : "";
    if (cli->args.format == FORMAT_JSON) {
        out_json(out_object(key, out_str(v), NULL));
    } else {
        printf(fmt, v);
        putchar('\n');
    }
    PQclear(res);
    return EXIT_OK;
}

/* children of parent (NULL: roots) in the tree of branches, depth first */
static void print_tree(cli_t *cli, const PGresult *res, const char *parent, int depth)
{
    for (int r = 0; r < PQntuples(res); r++) {
        bool root = out_isnull(res, r, "parent");
        if (parent ? root || strcmp(out_get(res, r, "parent"), parent) != 0 : !root)
            continue;
        const char *name = out_get(res, r, "name");
        bool cur = strcmp(name, cli->branch) == 0;
        printf("%c ", cur ? '*' : ' ');
        for (int i = 1; i < depth; i++)
            fputs("|  ", stdout);
        if (depth > 0)
            fputs("+- ", stdout);
        printf("%s%s%s\n", cur ? out_color(cli, COLOR_GREEN) : "", name,
               cur ? out_color(cli, COLOR_RESET) : "");
        print_tree(cli, res, name, depth + 1);
    }
}

/* "* name (protected)" */
static void print_branch(const cli_t *cli, const PGresult *res, int r)
{
    const char *name = out_get(res, r, "name");
    bool cur = strcmp(out_get(res, r, "current"), "t") == 0;
    const char *st = out_get(res, r, "status");
    printf("%c %s%s%s", cur ? '*' : ' ', cur ? out_color(cli, COLOR_GREEN) : "", name,
           cur ? out_color(cli, COLOR_RESET) : "");
    if (strcmp(st, "protected") == 0 || strcmp(st, "expired") == 0)
        printf(" (%s)", st);
    putchar('\n');
}

int cmd_branch_list(cli_t *cli)
{
    /* main has no parent; a branch whose parent is gone hangs from main */
    PGresult *res = conn_exec(
        cli,
        "SELECT b.name, CASE WHEN b.name = 'main' THEN NULL "
        "            WHEN b.parent IS NULL OR NOT EXISTS (SELECT 1 FROM epoch.branches p "
        "                 WHERE p.name = b.parent) THEN 'main' ELSE b.parent END AS parent, "
        "       b.head, b.base, b.status, b.created_at::text AS created_at, "
        "       b.created_by::text AS created_by, b.description, b.modified_tables, "
        "       b.changed_rows, b.name = $1 AS current "
        "  FROM epoch.branches b ORDER BY b.name = 'main' DESC, b.name",
        1, (const char *const[]){cli->branch});
    if (!res)
        return EXIT_ERROR;
    if (cli->args.format != FORMAT_JSON && cli->args.opt[OPT_GRAPH])
        print_tree(cli, res, NULL, 0);
    else
        out_list(cli, res, print_branch);
    PQclear(res);
    return EXIT_OK;
}

int cmd_branch_create(cli_t *cli)
{
    const char *p[2] = {cli->args.pos[0], cli->args.opt[OPT_FROM]};
    return call_one(cli, "SELECT epoch.branch_create($1, $2)", 2, p, "created",
                    "created branch %s");
}

int cmd_branch_delete(cli_t *cli)
{
    const char *p[2] = {cli->args.pos[0], cli->args.opt[OPT_FORCE] ? "true" : "false"};
    int rc = call_one(cli, "SELECT epoch.branch_delete($1, $2::boolean)", 2, p, "deleted",
                      "deleted branch %s");
    /* a checked-out branch that is gone: back to main */
    if (rc == EXIT_OK && !cli->args.opt[OPT_BRANCH]) {
        char *saved = state_get(cli->state_key);
        if (saved && strcmp(saved, cli->args.pos[0]) == 0 && !state_set(cli->state_key, NULL))
            rc = EXIT_ERROR;
        free(saved);
    }
    return rc;
}

int cmd_branch_rename(cli_t *cli)
{
    const char *p[2] = {cli->args.pos[0], cli->args.pos[1]};
    int rc = call_one(cli, "SELECT epoch.branch_rename($1, $2)", 2, p, "renamed",
                      "renamed branch to %s");
    if (rc == EXIT_OK) {
        char *saved = state_get(cli->state_key);
        if (saved && strcmp(saved, cli->args.pos[0]) == 0 &&
            !state_set(cli->state_key, cli->args.pos[1]))
            rc = EXIT_ERROR;
        free(saved);
    }
    return rc;
}

int cmd_branch_protect(cli_t *cli)
{
    bool off = cli->args.opt[OPT_OFF] != NULL;
    const char *p[2] = {cli->args.pos[0], off ? "false" : "true"};
    PGresult *res = conn_exec(cli, "SELECT epoch.branch_protect($1, $2::boolean)", 2, p);
    if (!res)
        return EXIT_ERROR;
    if (cli->args.format == FORMAT_JSON) {
        out_json(out_object("branch", out_value(res, 0, 0), "protected",
                            json_object_new_boolean(!off), NULL));
    } else {
        printf("branch %s is %s\n", PQgetvalue(res, 0, 0),
               off ? "no longer protected" : "protected");
    }
    PQclear(res);
    return EXIT_OK;
}

int cmd_checkout(cli_t *cli)
{
    const char *branch = cli->args.pos[0];
    /* the proxy checks the name: an unknown branch is 42704 */
    if (strcmp(branch, "main") != 0 && !conn_set_branch(cli, branch))
        return EXIT_ERROR;
    if (!state_set(cli->state_key, strcmp(branch, "main") == 0 ? NULL : branch))
        return EXIT_ERROR;
    if (cli->args.format == FORMAT_JSON) {
        out_json(out_object("branch", out_str(branch), "previous", out_str(cli->branch), NULL));
    } else if (strcmp(branch, cli->branch) == 0) {
        printf("Already on '%s'\n", branch);
    } else {
        printf("Switched to branch '%s'\n", branch);
    }
    return EXIT_OK;
}
