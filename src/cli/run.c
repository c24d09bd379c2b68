/*
 * run — see run.h.
 */
#include "cli/run.h"

#include <stdlib.h>

#include "cli/conn.h"

int run_list(cli_t *cli, const char *sql, int n, const char *const *params, out_text_fn text)
{
    PGresult *res = conn_exec(cli, sql, n, params);
    if (!res)
        return EXIT_ERROR;
    out_list(cli, res, text);
    PQclear(res);
    return EXIT_OK;
}

int run_written(cli_t *cli, const char *call, int n, const char *const *params, const char *select,
                out_text_fn text)
{
    bool ok;
    char *id = conn_value(cli, call, n, params, &ok);
    if (!ok)
        return EXIT_ERROR;
    const char *ip[1] = {id};
    PGresult *res = conn_exec(cli, select, 1, ip);
    free(id);
    if (!res)
        return EXIT_ERROR;
    out_first(cli, res, text);
    PQclear(res);
    return EXIT_OK;
}
