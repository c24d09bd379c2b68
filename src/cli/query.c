/*
 * query — epoch query SQL [--at REF]: the user's SQL on the branch (or at a
 * ref, read-only), printed as a table, JSON or CSV.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/conn.h"
#include "cli/out.h"

int cmd_query(cli_t *cli)
{
    const char *at = cli->args.opt[OPT_AT];
    /* epoch.as_of: the ref, read-only */
    if (at && !conn_set(cli, "epoch.as_of", at))
        return EXIT_ERROR;
    /* the simple protocol: the SQL is the user's own, several statements
     * allowed; the last result is printed */
    PGresult *res = PQexec(cli->conn, cli->args.pos[0]);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && st != PGRES_EMPTY_QUERY) {
        conn_print_error(res, cli->conn);
        PQclear(res);
        return EXIT_ERROR;
    }
    if (st == PGRES_TUPLES_OK) {
        out_result(cli, res);
    } else if (cli->args.format == FORMAT_JSON) {
        const char *n = PQcmdTuples(res);
        out_json(out_object("command", out_str(PQcmdStatus(res)), "rows",
                            n[0] ? json_object_new_int64(atoll(n)) : NULL, NULL));
    } else if (cli->args.format == FORMAT_TEXT) {
        puts(PQcmdStatus(res));
    }
    PQclear(res);
    return EXIT_OK;
}
