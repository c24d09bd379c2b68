/*
 * namespace — epoch namespace list/create/update/delete/grant/revoke: the
 * HWM store's namespaces and the roles in them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/conn.h"
#include "cli/out.h"
#include "cli/run.h"

#define NS_COLUMNS                                                                                 \
    "n.id, n.name, n.description, n.owned_by, n.changed_at::text AS changed_at, "                  \
    "n.changed_by"

static void print_namespace(const cli_t *cli, const PGresult *res, int r)
{
    (void)cli;
    printf("namespace %s (owner %s)\n", out_get(res, r, "name"), out_get(res, r, "owned_by"));
}

static void print_listed(const cli_t *cli, const PGresult *res, int r)
{
    (void)cli;
    printf("%s\t%s\t%s\n", out_get(res, r, "name"), out_get(res, r, "owned_by"),
           out_get(res, r, "description"));
}

/* Run call (a function answering the namespace's id), then print the
 * namespace's row of epoch.namespaces. */
static int call_written(cli_t *cli, const char *call, int n, const char *const *p)
{
    return run_written(cli, call, n, p,
                       "SELECT " NS_COLUMNS " FROM epoch.namespaces n WHERE n.id = $1::bigint",
                       print_namespace);
}

int cmd_namespace_list(cli_t *cli)
{
    return run_list(cli, "SELECT " NS_COLUMNS " FROM epoch.namespaces n ORDER BY n.name", 0, NULL,
                    print_listed);
}

int cmd_namespace_create(cli_t *cli)
{
    const char *p[2] = {cli->args.pos[0], cli->args.opt[OPT_DESCRIPTION]};
    return call_written(cli, "SELECT epoch.namespace_create($1, $2)", 2, p);
}

int cmd_namespace_update(cli_t *cli)
{
    if (!cli->args.opt[OPT_NEW_NAME] && !cli->args.opt[OPT_DESCRIPTION] &&
        !cli->args.opt[OPT_OWNER])
        return cli_usage_error(cli, "nothing to update: --name, --description or --owner");
    const char *p[4] = {cli->args.pos[0], cli->args.opt[OPT_NEW_NAME],
                        cli->args.opt[OPT_DESCRIPTION], cli->args.opt[OPT_OWNER]};
    return call_written(cli, "SELECT epoch.namespace_update($1, $2, $3, $4)", 4, p);
}

/* a function returning void; reported as {"namespace", key: what} */
static int call_void(cli_t *cli, const char *sql, int n, const char *const *p, const char *key,
                     const char *what, const char *text)
{
    if (!conn_run(cli, sql, n, p))
        return EXIT_ERROR;
    if (cli->args.format == FORMAT_JSON)
        out_json(out_object("namespace", out_str(p[0]), key, out_str(what), NULL));
    else
        puts(text);
    return EXIT_OK;
}

int cmd_namespace_delete(cli_t *cli)
{
    const char *p[2] = {cli->args.pos[0], cli->args.opt[OPT_FORCE] ? "true" : "false"};
    return call_void(cli, "SELECT epoch.namespace_delete($1, $2::boolean)", 2, p, "deleted", p[0],
                     "deleted namespace");
}

int cmd_namespace_grant(cli_t *cli)
{
    const char *p[3] = {cli->args.pos[0], cli->args.pos[1], cli->args.pos[2]};
    char text[320];
    snprintf(text, sizeof(text), "granted %.80s to %.80s in %.80s", p[2], p[1], p[0]);
    int rc = call_void(cli, "SELECT epoch.grant($1, $2, $3)", 3, p, "user", p[1], text);
    return rc;
}

int cmd_namespace_revoke(cli_t *cli)
{
    const char *p[2] = {cli->args.pos[0], cli->args.pos[1]};
    char text[320];
    snprintf(text, sizeof(text), "revoked the role of %.80s in %.80s", p[1], p[0]);
    return call_void(cli, "SELECT epoch.revoke($1, $2)", 2, p, "user", p[1], text);
}
