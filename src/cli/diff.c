/*
 * diff — epoch diff: the differences of two refs, field by field
 * (epoch.diff), per table (epoch.diff_stat, --stat) or by table name
 * (--name-only). Colored on a terminal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/conn.h"
#include "cli/out.h"

PGresult *diff_rows(cli_t *cli, const char *from, const char *to, const char *table)
{
    const char *p[3] = {from, to, table};
    return conn_exec(cli,
                     "SELECT table_name AS table, pk, change, column_name AS column, "
                     "old_value AS old, new_value AS new "
                     "FROM epoch.diff($1, $2, $3::text::regclass)",
                     3, p);
}

json_object *diff_json(const PGresult *rows)
{
    return out_rows(rows);
}

void diff_text(const cli_t *cli, const PGresult *rows)
{
    const char *table = NULL, *pk = NULL;
    for (int r = 0; r < PQntuples(rows); r++) {
        const char *t = out_get(rows, r, "table"), *k = out_get(rows, r, "pk");
        const char *change = out_get(rows, r, "change"), *col = out_get(rows, r, "column");
        if (!table || strcmp(table, t) != 0) {
            printf("%sdiff %s%s\n", out_color(cli, COLOR_BOLD), t, out_color(cli, COLOR_RESET));
            pk = NULL;
        }
        if (!pk || strcmp(pk, k) != 0 || strcmp(table, t) != 0)
            printf("%s@@ %s %s @@%s\n", out_color(cli, COLOR_CYAN), change, k,
                   out_color(cli, COLOR_RESET));
        table = t;
        pk = k;
        if (strcmp(change, "insert") != 0)
            printf("%s-%s: %s%s\n", out_color(cli, COLOR_RED), col,
                   out_isnull(rows, r, "old") ? "NULL" : out_get(rows, r, "old"),
                   out_color(cli, COLOR_RESET));
        if (strcmp(change, "delete") != 0)
            printf("%s+%s: %s%s\n", out_color(cli, COLOR_GREEN), col,
                   out_isnull(rows, r, "new") ? "NULL" : out_get(rows, r, "new"),
                   out_color(cli, COLOR_RESET));
    }
}

/* --stat and --name-only: per table */
static int diff_stat(cli_t *cli, const char *from, const char *to)
{
    const char *p[3] = {from, to, cli->args.opt[OPT_TABLE]};
    PGresult *res = conn_exec(cli,
                              "SELECT table_name AS table, inserted, updated, deleted "
                              "FROM epoch.diff_stat($1, $2) WHERE $3::text IS NULL "
                              "OR table_name = $3::text OR 'public.' || table_name = $3::text",
                              3, p);
    if (!res)
        return EXIT_ERROR;
    int n = PQntuples(res);
    if (cli->args.opt[OPT_NAME_ONLY]) {
        json_object *arr = json_object_new_array();
        for (int r = 0; r < n; r++)
            json_object_array_add(arr, json_object_new_string(out_get(res, r, "table")));
        if (cli->args.format == FORMAT_JSON)
            out_json(arr);
        else {
            for (int r = 0; r < n; r++)
                puts(out_get(res, r, "table"));
            json_object_put(arr);
        }
    } else if (cli->args.format == FORMAT_JSON) {
        out_json(out_rows(res));
    } else {
        long long ins = 0, upd = 0, del = 0;
        for (int r = 0; r < n; r++) {
            const char *i = out_get(res, r, "inserted"), *u = out_get(res, r, "updated"),
                       *d = out_get(res, r, "deleted");
            printf(" %s | %s%s+%s ~%s %s-%s%s\n", out_get(res, r, "table"),
                   out_color(cli, COLOR_GREEN), "", i, u, out_color(cli, COLOR_RED), d,
                   out_color(cli, COLOR_RESET));
            ins += atoll(i);
            upd += atoll(u);
            del += atoll(d);
        }
        printf(" %d table%s changed, %lld inserted, %lld updated, %lld deleted\n", n,
               n == 1 ? "" : "s", ins, upd, del);
    }
    PQclear(res);
    return EXIT_OK;
}

int cmd_diff(cli_t *cli)
{
    if (cli->args.opt[OPT_STAT] && cli->args.opt[OPT_NAME_ONLY])
        return cli_usage_error(cli, "--stat and --name-only exclude each other");
    char *from = NULL;
    const char *to = "HEAD";
    char *split = NULL;
    if (cli->args.npos == 0) {
        /* uncommitted changes: the head commit to the working state */
        bool ok;
        const char *p[1] = {cli->branch};
        from = conn_value(cli, "SELECT coalesce(head, 'main') FROM epoch.branches WHERE name = $1",
                          1, p, &ok);
        if (!ok)
            return EXIT_ERROR;
        if (!from)
            return cli_error("branch \"%s\" not found in epoch.branches", cli->branch);
    } else if (cli->args.npos == 1 && (split = strstr(cli->args.pos[0], ".."))) {
        /* A..B; an empty side is HEAD */
        from = strndup(cli->args.pos[0], (size_t)(split - cli->args.pos[0]));
        if (!from[0]) {
            free(from);
            from = strdup("HEAD");
        }
        if (split[2])
            to = split + 2;
    } else {
        from = strdup(cli->args.pos[0]);
        if (cli->args.npos == 2)
            to = cli->args.pos[1];
    }
    if (!from)
        return cli_error("out of memory");
    int rc;
    if (cli->args.opt[OPT_STAT] || cli->args.opt[OPT_NAME_ONLY]) {
        rc = diff_stat(cli, from, to);
    } else {
        PGresult *rows = diff_rows(cli, from, to, cli->args.opt[OPT_TABLE]);
        rc = rows ? EXIT_OK : EXIT_ERROR;
        if (rows && cli->args.format == FORMAT_JSON)
            out_json(diff_json(rows));
        else if (rows)
            diff_text(cli, rows);
        PQclear(rows);
    }
    free(from);
    return rc;
}
