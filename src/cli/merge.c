/*
 * merge — epoch merge (--continue, --abort), sync and conflicts: the
 * three-way merge of epoch.merge / epoch.sync and its conflict resolution.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/conn.h"
#include "cli/out.h"

/* a merge_result row (merge, sync, merge_continue) in git's words; a
 * conflicted merge exits 1, like git */
static int print_result(cli_t *cli, PGresult *res, const char *source)
{
    const char *status = out_get(res, 0, "status");
    bool conflicted = strcmp(status, "conflicted") == 0;
    if (cli->args.format == FORMAT_JSON) {
        out_json(out_row(res, 0));
    } else if (strcmp(status, "up_to_date") == 0) {
        puts("Already up to date.");
    } else if (strcmp(status, "fast_forward") == 0) {
        printf("Fast-forward: %s rows from %s, commit %.12s\n", out_get(res, 0, "rows_affected"),
               source, out_get(res, 0, "commit"));
    } else if (strcmp(status, "merged") == 0) {
        printf("Merge made by the '%s' strategy: %s rows in %s tables, commit %.12s\n",
               cli->args.opt[OPT_STRATEGY] ? cli->args.opt[OPT_STRATEGY] : "three_way",
               out_get(res, 0, "rows_affected"), out_get(res, 0, "tables_merged"),
               out_get(res, 0, "commit"));
    } else if (strcmp(status, "dry_run") == 0) {
        printf("Dry run (merge %s): %s rows in %s tables would change, %s conflicts\n",
               out_get(res, 0, "merge_id"), out_get(res, 0, "rows_affected"),
               out_get(res, 0, "tables_merged"), out_get(res, 0, "conflicts"));
    } else if (conflicted) {
        printf("CONFLICT: merge %s of %s has %s unresolved conflicts\n",
               out_get(res, 0, "merge_id"), source, out_get(res, 0, "conflicts"));
    } else {
        printf("merge %s: %s\n", out_get(res, 0, "merge_id"), status);
    }
    if (conflicted) {
        fprintf(stderr, "epoch: automatic merge failed; see \"epoch conflicts\", resolve with "
                        "\"epoch conflicts resolve\", then \"epoch merge --continue\"\n");
        return EXIT_ERROR;
    }
    return EXIT_OK;
}

/* The conflicted merge into the session's branch (--merge ID picks one);
 * malloc'd id, NULL after printing why. */
static char *conflicted_merge(cli_t *cli)
{
    if (cli->args.opt[OPT_MERGE])
        return strdup(cli->args.opt[OPT_MERGE]);
    const char *p[1] = {cli->branch};
    bool ok;
    char *id = conn_value(cli,
                          "SELECT merge_id FROM epoch.merges WHERE target = $1 "
                          "AND status = 'conflicted' ORDER BY merge_id DESC LIMIT 1",
                          1, p, &ok);
    if (ok && !id)
        cli_error("there is no merge in progress on branch %s", cli->branch);
    return id;
}

int cmd_merge(cli_t *cli)
{
    bool cont = cli->args.opt[OPT_CONTINUE] != NULL, abort_ = cli->args.opt[OPT_ABORT] != NULL;
    if (cont && abort_)
        return cli_usage_error(cli, "--continue and --abort exclude each other");
    if ((cont || abort_) && (cli->args.npos || cli->args.opt[OPT_STRATEGY] ||
                             cli->args.opt[OPT_DRY_RUN] || (abort_ && cli->args.opt[OPT_MESSAGE])))
        return cli_usage_error(cli, "--%s takes no source and no other option",
                               cont ? "continue" : "abort");
    if (!cont && !abort_ && cli->args.npos != 1)
        return cli_usage_error(cli, "which branch or ref to merge?");
    PGresult *res;
    if (cont || abort_) {
        char *id = conflicted_merge(cli);
        if (!id)
            return EXIT_ERROR;
        const char *p[2] = {id, cli->args.opt[OPT_MESSAGE]};
        if (abort_) {
            res = conn_exec(cli, "SELECT epoch.merge_abort($1::bigint)", 1, p);
            if (res && cli->args.format == FORMAT_JSON) {
                out_json(out_object("merge_id", json_object_new_int64(atoll(id)), "status",
                                    out_str("aborted"), NULL));
            } else if (res) {
                printf("Merge %s aborted\n", id);
            }
            free(id);
            PQclear(res);
            return res ? EXIT_OK : EXIT_ERROR;
        }
        res = conn_exec(cli, "SELECT * FROM epoch.merge_continue($1::bigint, $2)", 2, p);
        free(id);
        if (!res)
            return EXIT_ERROR;
        int rc = print_result(cli, res, "the merge");
        PQclear(res);
        return rc;
    }
    const char *p[4] = {cli->args.pos[0], cli->args.opt[OPT_STRATEGY], cli->args.opt[OPT_MESSAGE],
                        cli->args.opt[OPT_DRY_RUN] ? "true" : "false"};
    res = conn_exec(cli,
                    "SELECT * FROM epoch.merge($1, NULL, coalesce($2, 'three_way'), $3, "
                    "$4::boolean)",
                    4, p);
    if (!res)
        return EXIT_ERROR;
    int rc = print_result(cli, res, cli->args.pos[0]);
    PQclear(res);
    return rc;
}

int cmd_sync(cli_t *cli)
{
    const char *p[2] = {cli->args.opt[OPT_STRATEGY], cli->args.opt[OPT_DRY_RUN] ? "true" : "false"};
    PGresult *res = conn_exec(
        cli, "SELECT * FROM epoch.sync(NULL, coalesce($1, 'three_way'), $2::boolean)", 2, p);
    if (!res)
        return EXIT_ERROR;
    int rc = print_result(cli, res, "main");
    PQclear(res);
    return rc;
}

/* one conflict: where, its three sides and how it was resolved */
static void print_conflict(const cli_t *cli, const PGresult *res, int r)
{
    bool done = strcmp(out_get(res, r, "resolved"), "t") == 0;
    printf("%s%s %s %s%s%s: %s%s\n", out_color(cli, done ? COLOR_GREEN : COLOR_RED),
           done ? "resolved  " : "unresolved", out_get(res, r, "table"), out_get(res, r, "pk"),
           out_isnull(res, r, "column") ? "" : " ", out_get(res, r, "column"),
           out_get(res, r, "kind"), out_color(cli, COLOR_RESET));
    printf("    base:   %s\n    ours:   %s\n    theirs: %s\n",
           out_isnull(res, r, "base") ? "NULL" : out_get(res, r, "base"),
           out_isnull(res, r, "ours") ? "NULL" : out_get(res, r, "ours"),
           out_isnull(res, r, "theirs") ? "NULL" : out_get(res, r, "theirs"));
    if (done)
        printf("    resolution: %s%s%s\n", out_get(res, r, "resolution"),
               out_isnull(res, r, "value") ? "" : " ", out_get(res, r, "value"));
}

int cmd_conflicts_show(cli_t *cli)
{
    char *id = conflicted_merge(cli);
    if (!id)
        return EXIT_ERROR;
    const char *p[1] = {id};
    PGresult *res = conn_exec(cli,
                              "SELECT merge_id, table_name AS table, pk, column_name AS column, "
                              "kind, base_value AS base, ours_value AS ours, theirs_value AS "
                              "theirs, resolved, resolution, value "
                              "FROM epoch.conflicts WHERE merge_id = $1::bigint",
                              1, p);
    free(id);
    if (!res)
        return EXIT_ERROR;
    out_list(cli, res, print_conflict);
    if (cli->args.format != FORMAT_JSON && PQntuples(res) == 0)
        puts("no conflicts");
    PQclear(res);
    return EXIT_OK;
}

int cmd_conflicts_resolve(cli_t *cli)
{
    const char *side = cli->args.opt[OPT_OURS]     ? "ours"
                       : cli->args.opt[OPT_THEIRS] ? "theirs"
                                                   : NULL;
    const char *table = cli->args.npos ? cli->args.pos[0] : NULL;
    const char *record = cli->args.opt[OPT_RECORD], *field = cli->args.opt[OPT_FIELD];
    const char *value = cli->args.opt[OPT_VALUE];
    if (cli->args.opt[OPT_OURS] && cli->args.opt[OPT_THEIRS])
        return cli_usage_error(cli, "--ours and --theirs exclude each other");
    if (side && value)
        return cli_usage_error(cli, "--value and --%s exclude each other", side);
    if (!side && !value)
        return cli_usage_error(cli, "say how: --ours, --theirs or --value V");
    if ((record || field || value) && !table)
        return cli_usage_error(cli, "--record, --field and --value need a TABLE");
    if ((field || value) && !record)
        return cli_usage_error(cli, "--field and --value need --record PK");
    char *id = conflicted_merge(cli);
    if (!id)
        return EXIT_ERROR;
    /* resolved and left: counts taken before and after (resolve and
     * resolve_all answer only what is left) */
    const char *ip[1] = {id};
    bool ok;
    char *before = conn_value(cli,
                              "SELECT count(*) FROM epoch.conflicts WHERE merge_id = $1::bigint "
                              "AND NOT resolved",
                              1, ip, &ok);
    if (!ok) {
        free(id);
        return EXIT_ERROR;
    }
    PGresult *res;
    if (record) {
        /* a JSON key as given, or the value of a one-column key, matched
         * against the merge's conflicts of that table */
        const char *p[6] = {id, table, record, field, value, side};
        res = conn_exec(cli,
                        "SELECT epoch.resolve($1::bigint, $2::text::regclass, "
                        "  CASE WHEN left(btrim($3), 1) = '{' THEN $3::jsonb ELSE "
                        "  (SELECT c.pk FROM epoch.conflicts c WHERE c.merge_id = $1::bigint "
                        "     AND (SELECT count(*) FROM jsonb_object_keys(c.pk)) = 1 "
                        "     AND (SELECT e.value FROM jsonb_each_text(c.pk) e) = $3 "
                        "   ORDER BY c.table_name = $2 DESC LIMIT 1) END, "
                        "  $4, $5, $6)",
                        6, p);
    } else {
        const char *p[3] = {id, table, side};
        res = conn_exec(cli, "SELECT epoch.resolve_all($1::bigint, $2::text::regclass, $3)", 3, p);
    }
    if (!res) {
        free(before);
        free(id);
        return EXIT_ERROR;
    }
    const char *p[1] = {id};
    char *left = conn_value(cli,
                            "SELECT count(*) FROM epoch.conflicts WHERE merge_id = $1::bigint "
                            "AND NOT resolved",
                            1, p, &ok);
    long long done = (before ? atoll(before) : 0) - (left ? atoll(left) : 0);
    if (ok && cli->args.format == FORMAT_JSON) {
        out_json(out_object("merge_id", json_object_new_int64(atoll(id)), "resolved",
                            json_object_new_int64(done), "unresolved",
                            json_object_new_int64(left ? atoll(left) : 0), NULL));
    } else if (ok) {
        printf("resolved %lld conflicts of merge %s; %s left%s\n", done, id, left ? left : "0",
               left && strcmp(left, "0") == 0 ? " (run \"epoch merge --continue\")" : "");
    }
    free(left);
    free(before);
    free(id);
    PQclear(res);
    return ok ? EXIT_OK : EXIT_ERROR;
}
