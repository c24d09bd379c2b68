/*
 * table — epoch track, untrack, table list, gc: which tables are versioned
 * and the history kept for them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/conn.h"
#include "cli/out.h"
#include "cli/run.h"

int cmd_track(cli_t *cli)
{
    /* all or none: one transaction for the list */
    if (!conn_run(cli, "BEGIN", 0, NULL))
        return EXIT_ERROR;
    json_object *done = json_object_new_array();
    for (int i = 0; i < cli->args.npos; i++) {
        const char *p[1] = {cli->args.pos[i]};
        PGresult *res = conn_exec(cli, "SELECT epoch.track($1::text::regclass)", 1, p);
        if (!res) {
            json_object_put(done);
            return EXIT_ERROR; /* the session ends: the transaction rolls back */
        }
        json_object_array_add(done, json_object_new_string(PQgetvalue(res, 0, 0)));
        PQclear(res);
    }
    if (!conn_run(cli, "COMMIT", 0, NULL)) {
        json_object_put(done);
        return EXIT_ERROR;
    }
    if (cli->args.format == FORMAT_JSON) {
        out_json(out_object("tracked", done, NULL));
    } else {
        for (size_t i = 0; i < json_object_array_length(done); i++)
            printf("tracking %s\n", json_object_get_string(json_object_array_get_idx(done, i)));
        json_object_put(done);
    }
    return EXIT_OK;
}

int cmd_untrack(cli_t *cli)
{
    const char *p[2] = {cli->args.pos[0], cli->args.opt[OPT_FORCE] ? "true" : "false"};
    PGresult *res = conn_exec(cli, "SELECT epoch.untrack($1::text::regclass, $2::boolean)", 2, p);
    if (!res)
        return EXIT_ERROR;
    if (cli->args.format == FORMAT_JSON)
        out_json(out_object("untracked", out_value(res, 0, 0), NULL));
    else
        printf("stopped tracking %s\n", PQgetvalue(res, 0, 0));
    PQclear(res);
    return EXIT_OK;
}

/* schema.table (id, name) */
static void print_table(const cli_t *cli, const PGresult *res, int r)
{
    (void)cli;
    const char *pk = out_get(res, r, "primary_key");
    size_t n = strlen(pk);
    /* {id,name} -> (id, name) */
    printf("%s.%s (", out_get(res, r, "schema"), out_get(res, r, "table"));
    for (size_t i = 1; i + 1 < n; i++) {
        if (pk[i] == ',')
            fputs(", ", stdout);
        else
            putchar(pk[i]);
    }
    puts(")");
}

int cmd_table_list(cli_t *cli)
{
    return run_list(cli,
                    "SELECT schema_name AS schema, table_name AS table, primary_key, "
                    "tracked_at::text AS tracked_at, tracked_by::text AS tracked_by "
                    "FROM epoch.tables ORDER BY 1, 2",
                    0, NULL, print_table);
}

int cmd_gc(cli_t *cli)
{
    bool dry = cli->args.opt[OPT_DRY_RUN] != NULL;
    const char *p[1] = {cli->args.opt[OPT_RETENTION]};
    /* epoch.gc has no dry run of its own: run it and roll back */
    if (dry && !conn_run(cli, "BEGIN", 0, NULL))
        return EXIT_ERROR;
    PGresult *res = conn_exec(cli,
                              "SELECT table_name AS table, main_rows, branch_rows "
                              "FROM epoch.gc($1::interval) ORDER BY 1",
                              1, p);
    if (!res)
        return EXIT_ERROR;
    if (dry && !conn_run(cli, "ROLLBACK", 0, NULL)) {
        PQclear(res);
        return EXIT_ERROR;
    }
    if (cli->args.format == FORMAT_JSON) {
        out_json(
            out_object("dry_run", json_object_new_boolean(dry), "tables", out_rows(res), NULL));
    } else {
        long long main_rows = 0, branch_rows = 0;
        for (int r = 0; r < PQntuples(res); r++) {
            printf("%s: %s main rows, %s branch rows\n", out_get(res, r, "table"),
                   out_get(res, r, "main_rows"), out_get(res, r, "branch_rows"));
            main_rows += atoll(out_get(res, r, "main_rows"));
            branch_rows += atoll(out_get(res, r, "branch_rows"));
        }
        printf("%s %lld history rows of main and %lld of branches\n",
               dry ? "would delete" : "deleted", main_rows, branch_rows);
    }
    PQclear(res);
    return EXIT_OK;
}
