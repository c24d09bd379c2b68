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
    if (at) {
        /* SET takes no parameter: the ref goes in as a quoted literal */
        char *lit = PQescapeLiteral(cli->conn, at, strlen(at));
        if (!lit) {
            conn_print_error(NULL, cli->conn);
            return EXIT_ERROR;
        }
        size_t len = strlen(lit) + 32;
        char *sql = malloc(len);
        if (!sql) {
            PQfreemem(lit);
            return cli_error("out of memory");
        }
        snprintf(sql, len, "SET epoch.as_of = %s", lit);
        PQfreemem(lit);
        PGresult *res = PQexec(cli->conn, sql);
        free(sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
            conn_print_error(res, cli->conn);
            PQclear(res);
            return EXIT_ERROR;
        }
        PQclear(res);
    }
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
        json_object *o = json_object_new_object();
        json_object_object_add(o, "command", json_object_new_string(PQcmdStatus(res)));
        const char *n = PQcmdTuples(res);
        json_object_object_add(o, "rows", n[0] ? json_object_new_int64(atoll(n)) : NULL);
        out_json(o);
    } else if (cli->args.format == FORMAT_TEXT) {
        puts(PQcmdStatus(res));
    }
    PQclear(res);
    return EXIT_OK;
}
