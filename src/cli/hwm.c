/*
 * hwm — epoch hwm list/get/set/delete/history: the high-water-mark store
 * (epoch.hwm_*, views epoch.hwms and epoch.hwm_history).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/conn.h"
#include "cli/out.h"
#include "cli/run.h"

static void print_hwm(const cli_t *cli, const PGresult *res, int r)
{
    (void)cli;
    printf("%s/%s = %s (%s)\n", out_get(res, r, "namespace"), out_get(res, r, "name"),
           out_get(res, r, "value"), out_get(res, r, "type"));
}

int cmd_hwm_list(cli_t *cli)
{
    const char *p[1] = {cli->args.npos ? cli->args.pos[0] : NULL};
    return run_list(cli,
                    "SELECT namespace, name, value, type, description, entity, "
                    "expression, changed_at::text AS changed_at, changed_by "
                    "FROM epoch.hwms WHERE $1::text IS NULL OR namespace = $1 "
                    "ORDER BY namespace, name",
                    1, p, print_hwm);
}

int cmd_hwm_get(cli_t *cli)
{
    const char *p[2] = {cli->args.pos[0], cli->args.pos[1]};
    PGresult *res = conn_exec(cli, "SELECT epoch.hwm_get($1, $2) AS value", 2, p);
    if (!res)
        return EXIT_ERROR;
    if (cli->args.format == FORMAT_JSON)
        out_json(out_object("namespace", out_str(p[0]), "name", out_str(p[1]), "value",
                            out_value(res, 0, 0), NULL));
    else
        puts(PQgetvalue(res, 0, 0));
    PQclear(res);
    return EXIT_OK;
}

/* VALUE as JSON when it is JSON ("42", "\"x\"", "{...}"), else as a JSON
 * string ("2026-01-01" is the string "2026-01-01"); malloc'd */
static char *json_value(const char *v)
{
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return NULL;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    size_t n = strlen(v);
    /* n + 1: the NUL ends a number ("42" alone could go on); JSON null
     * parses to a NULL object with success */
    json_object *o = json_tokener_parse_ex(tok, v, (int)n + 1);
    bool whole =
        json_tokener_get_error(tok) == json_tokener_success && json_tokener_get_parse_end(tok) == n;
    json_tokener_free(tok);
    json_object_put(o);
    if (whole)
        return strdup(v);
    json_object *s = json_object_new_string(v);
    char *out = strdup(json_object_to_json_string_ext(s, JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(s);
    return out;
}

/* the row hwm_set wrote: namespace/name = value */
static void print_set(const cli_t *cli, const PGresult *res, int r)
{
    (void)cli;
    printf("%s/%s = %s\n", out_get(res, r, "namespace"), out_get(res, r, "name"),
           out_get(res, r, "value"));
}

int cmd_hwm_set(cli_t *cli)
{
    char *value = json_value(cli->args.pos[2]);
    if (!value)
        return cli_error("out of memory");
    const char *p[7] = {cli->args.pos[0],
                        cli->args.pos[1],
                        value,
                        cli->args.opt[OPT_TYPE],
                        cli->args.opt[OPT_DESCRIPTION],
                        cli->args.opt[OPT_ENTITY],
                        cli->args.opt[OPT_EXPRESSION]};
    int rc = run_written(cli, "SELECT epoch.hwm_set($1, $2, $3::jsonb, $4, $5, $6, $7)", 7, p,
                         "SELECT h.id, h.namespace, h.name, h.value, h.type, h.description, "
                         "h.entity, h.expression, h.changed_at::text AS changed_at, "
                         "h.changed_by FROM epoch.hwms h WHERE h.id = $1::bigint",
                         print_set);
    free(value);
    return rc;
}

int cmd_hwm_delete(cli_t *cli)
{
    const char *p[2] = {cli->args.pos[0], cli->args.pos[1]};
    if (!conn_run(cli, "SELECT epoch.hwm_delete($1, $2)", 2, p))
        return EXIT_ERROR;
    if (cli->args.format == FORMAT_JSON)
        out_json(out_object("namespace", out_str(p[0]), "deleted", out_str(p[1]), NULL));
    else
        printf("deleted HWM %s/%s\n", p[0], p[1]);
    return EXIT_OK;
}

static void print_change(const cli_t *cli, const PGresult *res, int r)
{
    (void)cli;
    printf("%s %s %s/%s = %s by %s\n", out_get(res, r, "changed_at"), out_get(res, r, "action"),
           out_get(res, r, "namespace"), out_get(res, r, "name"), out_get(res, r, "value"),
           out_get(res, r, "changed_by"));
}

int cmd_hwm_history(cli_t *cli)
{
    const char *p[2] = {cli->args.pos[0], cli->args.npos > 1 ? cli->args.pos[1] : NULL};
    return run_list(cli,
                    "SELECT id, namespace, name, action, value, type, "
                    "changed_at::text AS changed_at, changed_by "
                    "FROM epoch.hwm_history WHERE namespace = $1 "
                    "AND ($2::text IS NULL OR name = $2) ORDER BY id",
                    2, p, print_change);
}
