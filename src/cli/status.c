/*
 * status — epoch status: the branch's uncommitted changes per table
 * (epoch.status) and a conflicted merge into it (epoch.merges), in git's
 * words.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/conn.h"
#include "cli/out.h"

int cmd_status(cli_t *cli)
{
    const char *p[1] = {cli->branch};
    /* epoch.status also lists a conflicted merge as a row with zero
     * counts; it is read from epoch.merges instead */
    PGresult *st = conn_exec(cli,
                             "SELECT table_name AS table, inserted, updated, deleted "
                             "FROM epoch.status WHERE inserted + updated + deleted > 0 "
                             "ORDER BY 1",
                             0, NULL);
    if (!st)
        return EXIT_ERROR;
    PGresult *mg = conn_exec(cli,
                             "SELECT m.merge_id, m.source, (SELECT count(*) FROM epoch.conflicts c "
                             "  WHERE c.merge_id = m.merge_id AND NOT c.resolved) AS unresolved "
                             "FROM epoch.merges m WHERE m.target = $1 AND m.status = 'conflicted' "
                             "ORDER BY m.merge_id DESC LIMIT 1",
                             1, p);
    PGresult *hd =
        mg ? conn_exec(cli, "SELECT head FROM epoch.branches WHERE name = $1", 1, p) : NULL;
    if (!hd) {
        PQclear(st);
        PQclear(mg);
        return EXIT_ERROR;
    }
    int n = PQntuples(st);
    bool merging = PQntuples(mg) > 0;
    if (cli->args.format == FORMAT_JSON) {
        out_json(out_object("branch", out_str(cli->branch), "head",
                            PQntuples(hd) ? out_value(hd, 0, 0) : NULL, "clean",
                            json_object_new_boolean(n == 0), "tables", out_rows(st), "merge",
                            merging ? out_row(mg, 0) : NULL, NULL));
    } else if (cli->args.opt[OPT_SHORT]) {
        for (int r = 0; r < n; r++)
            printf("%sM%s %s +%s ~%s -%s\n", out_color(cli, COLOR_RED), out_color(cli, COLOR_RESET),
                   out_get(st, r, "table"), out_get(st, r, "inserted"), out_get(st, r, "updated"),
                   out_get(st, r, "deleted"));
        if (merging)
            printf("%sU%s merge %s of %s: %s unresolved\n", out_color(cli, COLOR_RED),
                   out_color(cli, COLOR_RESET), out_get(mg, 0, "merge_id"),
                   out_get(mg, 0, "source"), out_get(mg, 0, "unresolved"));
    } else {
        printf("On branch %s\n", cli->branch);
        if (merging) {
            printf("You have unmerged paths.\n"
                   "  (merge %s of \"%s\": %s unresolved conflicts)\n"
                   "  (fix conflicts with \"epoch conflicts resolve\" and run \"epoch merge "
                   "--continue\")\n"
                   "  (use \"epoch merge --abort\" to abort the merge)\n\n",
                   out_get(mg, 0, "merge_id"), out_get(mg, 0, "source"),
                   out_get(mg, 0, "unresolved"));
        }
        if (n == 0) {
            puts("nothing to commit, working tree clean");
        } else {
            puts("Changes not committed:\n  (use \"epoch commit -m MSG\" to commit them, "
                 "\"epoch reset HEAD\" to drop them)\n");
            for (int r = 0; r < n; r++)
                printf("\t%smodified:   %s (%s inserted, %s updated, %s deleted)%s\n",
                       out_color(cli, COLOR_RED), out_get(st, r, "table"),
                       out_get(st, r, "inserted"), out_get(st, r, "updated"),
                       out_get(st, r, "deleted"), out_color(cli, COLOR_RESET));
        }
    }
    PQclear(st);
    PQclear(mg);
    PQclear(hd);
    return EXIT_OK;
}
