/*
 * commands — the entry point of each command, one file per group:
 * table.c (track, untrack, table list, gc), branch.c (branch, checkout),
 * status.c, commit.c (commit, tag, reset, revert), log.c (log, show),
 * diff.c, merge.c (merge, conflicts, sync), query.c, hwm.c (hwm),
 * namespace.c. Each returns an exit code (cli.h).
 */
#ifndef EPOCH_CLI_COMMANDS_H
#define EPOCH_CLI_COMMANDS_H

#include "cli/cli.h"

int cmd_track(cli_t *cli);
int cmd_untrack(cli_t *cli);
int cmd_table_list(cli_t *cli);
int cmd_gc(cli_t *cli);

int cmd_branch_list(cli_t *cli);
int cmd_branch_create(cli_t *cli);
int cmd_branch_delete(cli_t *cli);
int cmd_branch_rename(cli_t *cli);
int cmd_branch_protect(cli_t *cli);
int cmd_checkout(cli_t *cli);

int cmd_status(cli_t *cli);

int cmd_commit(cli_t *cli);
int cmd_tag(cli_t *cli);
int cmd_reset(cli_t *cli);
int cmd_revert(cli_t *cli);

int cmd_log(cli_t *cli);
int cmd_show(cli_t *cli);

int cmd_diff(cli_t *cli);
/* The rows of epoch.diff(from, to, table) (table may be NULL), NULL after
 * printing the error; printed by diff_text() or turned into JSON by
 * diff_json(). Used by show as well. */
PGresult *diff_rows(cli_t *cli, const char *from, const char *to, const char *table);
void diff_text(const cli_t *cli, const PGresult *rows);
struct json_object *diff_json(const PGresult *rows);

int cmd_merge(cli_t *cli);
int cmd_sync(cli_t *cli);
int cmd_conflicts_show(cli_t *cli);
int cmd_conflicts_resolve(cli_t *cli);

int cmd_query(cli_t *cli);

int cmd_hwm_list(cli_t *cli);
int cmd_hwm_get(cli_t *cli);
int cmd_hwm_set(cli_t *cli);
int cmd_hwm_delete(cli_t *cli);
int cmd_hwm_history(cli_t *cli);

int cmd_namespace_list(cli_t *cli);
int cmd_namespace_create(cli_t *cli);
int cmd_namespace_update(cli_t *cli);
int cmd_namespace_delete(cli_t *cli);
int cmd_namespace_grant(cli_t *cli);
int cmd_namespace_revoke(cli_t *cli);

#endif
