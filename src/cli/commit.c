/*
 * commit — epoch commit, tag, reset, revert: what makes or names commits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/conn.h"
#include "cli/out.h"
#include "cli/run.h"

/* The session branch's head commit (malloc'd; NULL when it has none). */
static char *branch_head(cli_t *cli, bool *ok)
{
    const char *p[1] = {cli->branch};
    return conn_value(cli, "SELECT head FROM epoch.branches WHERE name = $1", 1, p, ok);
}

/* One commit's log row as "[branch short] message" (text) or its id, short
 * id, branch and message (json), with extra boolean key */
static int print_commit(cli_t *cli, const char *id, const char *flag, bool flag_value)
{
    const char *p[1] = {id};
    PGresult *res = conn_exec(cli,
                              "SELECT id, short_id, branch, message FROM epoch.commits "
                              "WHERE id = $1",
                              1, p);
    if (!res)
        return EXIT_ERROR;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return cli_error("commit %s is not in epoch.commits", id);
    }
    if (cli->args.format == FORMAT_JSON) {
        json_object *o = out_row(res, 0);
        if (flag)
            json_object_object_add(o, flag, json_object_new_boolean(flag_value));
        out_json(o);
    } else {
        const char *msg = out_get(res, 0, "message");
        printf("[%s %s] %.*s\n", out_get(res, 0, "branch"), out_get(res, 0, "short_id"),
               (int)strcspn(msg, "\n"), msg);
    }
    PQclear(res);
    return EXIT_OK;
}

int cmd_commit(cli_t *cli)
{
    if (!cli->args.opt[OPT_MESSAGE])
        return cli_usage_error(cli, "a commit needs a message (-m MSG)");
    bool ok;
    char *before = branch_head(cli, &ok);
    if (!ok)
        return EXIT_ERROR;
    const char *p[2] = {cli->args.opt[OPT_MESSAGE], cli->args.opt[OPT_AUTHOR]};
    char *id = conn_value(cli, "SELECT epoch.commit($1, $2)", 2, p, &ok);
    int rc = EXIT_ERROR;
    if (ok && id) {
        /* nothing to commit: the function answers the head it had */
        bool created = !before || strcmp(before, id) != 0;
        if (!created && cli->args.format == FORMAT_TEXT) {
            printf("On branch %s\nnothing to commit, working tree clean\n", cli->branch);
            rc = EXIT_OK;
        } else {
            rc = print_commit(cli, id, "created", created);
        }
    } else if (ok) {
        rc = cli_error("nothing to commit on branch %s", cli->branch);
    }
    free(before);
    free(id);
    return rc;
}

static void print_tag(const cli_t *cli, const PGresult *res, int r)
{
    (void)cli;
    puts(out_get(res, r, "name"));
}

int cmd_tag(cli_t *cli)
{
    bool del = cli->args.opt[OPT_DELETE] != NULL;
    bool list = cli->args.npos == 0 ||
                (cli->args.npos == 1 && !del && strcmp(cli->args.pos[0], "list") == 0);
    if (del) {
        if (cli->args.npos != 1 || cli->args.opt[OPT_MESSAGE])
            return cli_usage_error(cli, "tag -d takes one NAME");
        const char *p[1] = {cli->args.pos[0]};
        if (!conn_run(cli, "SELECT epoch.tag_delete($1)", 1, p))
            return EXIT_ERROR;
        if (cli->args.format == FORMAT_JSON)
            out_json(out_object("deleted", out_str(cli->args.pos[0]), NULL));
        else
            printf("Deleted tag '%s'\n", cli->args.pos[0]);
        return EXIT_OK;
    }
    if (list) {
        if (cli->args.opt[OPT_MESSAGE])
            return cli_usage_error(cli, "-m needs a tag NAME");
        return run_list(cli,
                        "SELECT name, commit, short_id, branch, message, created_at::text AS "
                        "created_at, created_by::text AS created_by FROM epoch.tags ORDER BY name",
                        0, NULL, print_tag);
    }
    const char *p[3] = {cli->args.pos[0], cli->args.npos > 1 ? cli->args.pos[1] : "HEAD",
                        cli->args.opt[OPT_MESSAGE]};
    PGresult *res = conn_exec(cli, "SELECT epoch.tag($1, $2, $3)", 3, p);
    if (!res)
        return EXIT_ERROR;
    if (cli->args.format == FORMAT_JSON)
        out_json(
            out_object("tag", out_str(cli->args.pos[0]), "commit", out_value(res, 0, 0), NULL));
    else
        printf("Tagged %.12s as %s\n", PQgetvalue(res, 0, 0), cli->args.pos[0]);
    PQclear(res);
    return EXIT_OK;
}

int cmd_reset(cli_t *cli)
{
    const char *p[1] = {cli->args.pos[0]};
    bool ok;
    char *head = conn_value(cli, "SELECT epoch.reset($1)", 1, p, &ok);
    if (!ok)
        return EXIT_ERROR;
    if (cli->args.format == FORMAT_JSON)
        out_json(out_object("branch", out_str(cli->branch), "head", out_str(head), NULL));
    else
        printf("HEAD of %s is now at %.12s\n", cli->branch, head ? head : "(none)");
    free(head);
    return EXIT_OK;
}

int cmd_revert(cli_t *cli)
{
    const char *p[1] = {cli->args.pos[0]};
    bool ok;
    char *id = conn_value(cli, "SELECT epoch.revert($1)", 1, p, &ok);
    if (!ok)
        return EXIT_ERROR;
    int rc = id ? print_commit(cli, id, NULL, false) : cli_error("revert made no commit");
    free(id);
    return rc;
}
