/*
 * log — epoch log (with --graph, drawn like git log --graph) and epoch show.
 *
 * The log reads epoch.commits once (newest first: a parent always comes
 * after its children) and walks the parents from the start ref on the
 * client; filters are computed by the server per commit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/conn.h"
#include "cli/out.h"

typedef struct {
    const char *id; /* into the result */
    char *parents[8];
    int nparents;
    bool reachable;
    bool shown; /* passes the filters */
} commit_t;

static void parse_parents(commit_t *c, const char *arr)
{
    /* {hex,hex}: ids are hex, never quoted */
    const char *s = arr[0] == '{' ? arr + 1 : arr;
    while (*s && *s != '}' && c->nparents < 8) {
        size_t n = strcspn(s, ",}");
        c->parents[c->nparents++] = strndup(s, n);
        s += n;
        if (*s == ',')
            s++;
    }
}

static void free_parents(commit_t *c)
{
    for (int j = 0; j < c->nparents; j++)
        free(c->parents[j]);
}

static int find_commit(const commit_t *cs, int n, const char *id)
{
    for (int i = 0; i < n; i++)
        if (strcmp(cs[i].id, id) == 0)
            return i;
    return -1;
}

/* ---- graph ---------------------------------------------------------------------- */

typedef struct {
    const char **lane; /* the commit each lane waits for */
    int n;
    char *line; /* scratch for one drawn line */
} graph_t;

static int lane_of(const graph_t *g, const char *id)
{
    for (int i = 0; i < g->n; i++)
        if (strcmp(g->lane[i], id) == 0)
            return i;
    return -1;
}

static void graph_put(const graph_t *g, int width)
{
    int end = width;
    while (end > 0 && g->line[end - 1] == ' ')
        end--;
    printf("%.*s\n", end, g->line);
}

/* the lanes as "| | " (the prefix of a commit's other lines) */
static void graph_prefix(const graph_t *g)
{
    for (int i = 0; i < g->n; i++)
        fputs("| ", stdout);
}

/* The row of commit c: "* | ", then the lines that open a lane for each
 * further parent ("|\") and close lanes that wait for the same commit
 * ("|/"). Returns with g updated. */
static void graph_row_start(graph_t *g, const commit_t *c, int *k_out)
{
    int k = lane_of(g, c->id);
    if (k < 0)
        g->lane[k = g->n++] = c->id;
    for (int i = 0; i < g->n; i++)
        fputs(i == k ? "* " : "| ", stdout);
    *k_out = k;
}

static void graph_row_end(graph_t *g, const commit_t *c, int k)
{
    if (c->nparents == 0) {
        memset(g->line, ' ', (size_t)(2 * g->n + 2));
        for (int x = 0; x < g->n; x++)
            if (x < k)
                g->line[2 * x] = '|';
            else if (x > k)
                g->line[2 * x - 1] = '/';
        bool any = k < g->n - 1;
        memmove(g->lane + k, g->lane + k + 1, sizeof(g->lane[0]) * (size_t)(g->n - k - 1));
        g->n--;
        if (any)
            graph_put(g, 2 * g->n + 2);
        return;
    }
    g->lane[k] = c->parents[0];
    for (int j = 1; j < c->nparents; j++) {
        if (lane_of(g, c->parents[j]) >= 0)
            continue;
        int at = k + j;
        memset(g->line, ' ', (size_t)(2 * g->n + 4));
        for (int x = 0; x < g->n; x++)
            if (x <= k)
                g->line[2 * x] = '|';
            else
                g->line[2 * x + 1] = '\\';
        g->line[2 * k + 1] = '\\';
        graph_put(g, 2 * g->n + 2);
        memmove(g->lane + at + 1, g->lane + at, sizeof(g->lane[0]) * (size_t)(g->n - at));
        g->lane[at] = c->parents[j];
        g->n++;
    }
    /* lanes waiting for the same commit join */
    for (;;) {
        int h = -1;
        for (int x = 1; x < g->n && h < 0; x++)
            for (int i = 0; i < x; i++)
                if (strcmp(g->lane[i], g->lane[x]) == 0) {
                    h = x;
                    break;
                }
        if (h < 0)
            break;
        memset(g->line, ' ', (size_t)(2 * g->n + 2));
        for (int x = 0; x < g->n; x++)
            if (x < h)
                g->line[2 * x] = '|';
            else
                g->line[2 * x - 1] = '/';
        graph_put(g, 2 * g->n);
        memmove(g->lane + h, g->lane + h + 1, sizeof(g->lane[0]) * (size_t)(g->n - h - 1));
        g->n--;
    }
}

/* ---- decorations ---------------------------------------------------------------- */

/* " (HEAD -> x, main, tag: v1)" for id, from branches' heads and tags */
static void print_decoration(const cli_t *cli, const PGresult *refs, const char *id)
{
    int n = 0;
    for (int r = 0; r < PQntuples(refs); r++) {
        if (strcmp(PQgetvalue(refs, r, 1), id) != 0)
            continue;
        const char *kind = PQgetvalue(refs, r, 2), *name = PQgetvalue(refs, r, 0);
        fputs(n++ ? ", " : " (", stdout);
        if (strcmp(kind, "tag") == 0)
            printf("%stag: %s", out_color(cli, COLOR_YELLOW), name);
        else if (strcmp(name, cli->branch) == 0)
            printf("%sHEAD -> %s%s", out_color(cli, COLOR_CYAN), out_color(cli, COLOR_GREEN), name);
        else
            printf("%s%s", out_color(cli, COLOR_GREEN), name);
        fputs(out_color(cli, COLOR_RESET), stdout);
    }
    if (n)
        putchar(')');
}

static void print_message(const char *msg, const graph_t *g)
{
    for (const char *s = msg; *s;) {
        size_t n = strcspn(s, "\n");
        if (g)
            graph_prefix(g);
        printf("    %.*s\n", (int)n, s);
        s += n;
        if (*s == '\n')
            s++;
    }
}

/* the full form of one commit: header, author, date, message */
static void print_full(const cli_t *cli, const PGresult *res, int r, const commit_t *c,
                       const PGresult *refs, const graph_t *g)
{
    printf("%scommit %s%s", out_color(cli, COLOR_YELLOW), c->id, out_color(cli, COLOR_RESET));
    print_decoration(cli, refs, c->id);
    putchar('\n');
    if (c->nparents > 1) {
        if (g)
            graph_prefix(g);
        fputs("Merge:", stdout);
        for (int i = 0; i < c->nparents; i++)
            printf(" %.12s", c->parents[i]);
        putchar('\n');
    }
    if (g)
        graph_prefix(g);
    printf("Author: %s\n", out_get(res, r, "author"));
    if (g)
        graph_prefix(g);
    printf("Date:   %s\n", out_get(res, r, "created_at"));
    if (g)
        graph_prefix(g);
    putchar('\n');
    print_message(out_get(res, r, "message"), g);
    if (g)
        graph_prefix(g);
    putchar('\n');
}

static void print_oneline(const cli_t *cli, const PGresult *res, int r, const commit_t *c,
                          const PGresult *refs)
{
    const char *msg = out_get(res, r, "message");
    printf("%s%s%s", out_color(cli, COLOR_YELLOW), out_get(res, r, "short_id"),
           out_color(cli, COLOR_RESET));
    print_decoration(cli, refs, c->id);
    printf(" %.*s\n", (int)strcspn(msg, "\n"), msg);
}

int cmd_log(cli_t *cli)
{
    const char *ref = cli->args.npos ? cli->args.pos[0] : "HEAD";
    long limit = -1;
    if (cli->args.opt[OPT_MAX_COUNT]) {
        char *end;
        limit = strtol(cli->args.opt[OPT_MAX_COUNT], &end, 10);
        if (*end || limit < 0)
            return cli_usage_error(cli, "-n takes a number, not \"%s\"",
                                   cli->args.opt[OPT_MAX_COUNT]);
    }
    bool ok;
    const char *rp[1] = {ref};
    char *start = conn_value(cli, "SELECT id FROM epoch.show($1) LIMIT 1", 1, rp, &ok);
    if (!ok)
        return EXIT_ERROR;
    const char *p[4] = {cli->args.opt[OPT_SINCE], cli->args.opt[OPT_UNTIL],
                        cli->args.opt[OPT_AUTHOR], cli->args.opt[OPT_TABLE]};
    PGresult *res = conn_exec(
        cli,
        "SELECT c.id, c.short_id, c.parents, c.branch, c.author, c.message, "
        "       c.created_at::text AS created_at, c.tables, c.inserted, c.updated, c.deleted, "
        "       ($1::timestamptz IS NULL OR c.created_at >= $1::timestamptz) "
        "   AND ($2::timestamptz IS NULL OR c.created_at <= $2::timestamptz) "
        "   AND ($3::text IS NULL OR c.author = $3::text) "
        "   AND CASE WHEN $4::text IS NULL THEN true ELSE EXISTS (SELECT 1 FROM epoch.show(c.id) s "
        "        WHERE s.table_name = $4::text OR 'public.' || s.table_name = $4::text) END "
        "       AS shown "
        "  FROM epoch.commits c",
        4, p);
    PGresult *refs = res ? conn_exec(cli,
                                     "SELECT name, head, 'branch' FROM epoch.branches "
                                     "WHERE head IS NOT NULL "
                                     "UNION ALL SELECT name, commit, 'tag' FROM epoch.tags "
                                     "ORDER BY 3, 1",
                                     0, NULL)
                         : NULL;
    if (!refs) {
        PQclear(res);
        free(start);
        return EXIT_ERROR;
    }
    int n = PQntuples(res);
    commit_t *cs = calloc((size_t)n + 1, sizeof(commit_t));
    graph_t g = {.lane = calloc((size_t)n + 2, sizeof(char *)), .line = malloc(4 * (size_t)n + 8)};
    int rc = EXIT_OK;
    if (!cs || !g.lane || !g.line) {
        rc = cli_error("out of memory");
        goto done;
    }
    for (int r = 0; r < n; r++) {
        cs[r].id = out_get(res, r, "id");
        parse_parents(&cs[r], out_get(res, r, "parents"));
        cs[r].shown = strcmp(out_get(res, r, "shown"), "t") == 0;
    }
    /* reachable from start: parents come later in the list */
    int s0 = start ? find_commit(cs, n, start) : -1;
    if (s0 >= 0)
        cs[s0].reachable = true;
    for (int r = s0 < 0 ? n : s0; r < n; r++) {
        if (!cs[r].reachable)
            continue;
        for (int j = 0; j < cs[r].nparents; j++) {
            int pi = find_commit(cs, n, cs[r].parents[j]);
            if (pi >= 0)
                cs[pi].reachable = true;
        }
    }
    bool graph = cli->args.opt[OPT_GRAPH] && cli->args.format == FORMAT_TEXT;
    bool oneline = cli->args.opt[OPT_ONELINE] != NULL;
    json_object *arr = cli->args.format == FORMAT_JSON ? json_object_new_array() : NULL;
    long printed = 0;
    for (int r = 0; r < n && (limit < 0 || printed < limit); r++) {
        commit_t *c = &cs[r];
        if (!c->reachable)
            continue;
        if (!c->shown) {
            /* hidden by a filter: its lanes still move on */
            if (graph) {
                int k = lane_of(&g, c->id);
                if (k < 0)
                    g.lane[k = g.n++] = c->id;
                if (c->nparents)
                    g.lane[k] = c->parents[0];
                else
                    memmove(g.lane + k, g.lane + k + 1,
                            sizeof(g.lane[0]) * (size_t)(g.n-- - k - 1));
            }
            continue;
        }
        printed++;
        if (arr) {
            json_object *o = out_row(res, r);
            json_object_object_del(o, "shown");
            json_object_array_add(arr, o);
            continue;
        }
        int k = 0;
        if (graph)
            graph_row_start(&g, c, &k);
        if (oneline)
            print_oneline(cli, res, r, c, refs);
        if (graph)
            graph_row_end(&g, c, k);
        if (!oneline)
            print_full(cli, res, r, c, refs, graph ? &g : NULL);
    }
    if (arr)
        out_json(arr);
done:
    for (int r = 0; cs && r < n; r++)
        free_parents(&cs[r]);
    free(cs);
    free(g.lane);
    free(g.line);
    PQclear(res);
    PQclear(refs);
    free(start);
    return rc;
}

/* the columns of row named in keys (NULL-terminated), as an object */
static json_object *pick_columns(const PGresult *res, int row, const char *const *keys)
{
    json_object *o = json_object_new_object();
    for (; *keys; keys++)
        json_object_object_add(o, *keys, out_value(res, row, PQfnumber(res, *keys)));
    return o;
}

int cmd_show(cli_t *cli)
{
    const char *p[1] = {cli->args.npos ? cli->args.pos[0] : "HEAD"};
    PGresult *res = conn_exec(cli,
                              "SELECT id, parents, branch, author, message, "
                              "created_at::text AS created_at, table_name AS table, inserted, "
                              "updated, deleted FROM epoch.show($1)",
                              1, p);
    if (!res)
        return EXIT_ERROR;
    commit_t c = {.id = out_get(res, 0, "id")};
    parse_parents(&c, out_get(res, 0, "parents"));
    PGresult *changes = NULL;
    if (c.nparents > 0 && !(changes = diff_rows(cli, c.parents[0], c.id, NULL))) {
        free_parents(&c);
        PQclear(res);
        return EXIT_ERROR;
    }
    if (cli->args.format == FORMAT_JSON) {
        static const char *const keys[] = {"id",      "parents",    "branch", "author",
                                           "message", "created_at", NULL};
        static const char *const tk[] = {"table", "inserted", "updated", "deleted", NULL};
        json_object *o = pick_columns(res, 0, keys);
        json_object *tables = json_object_new_array();
        for (int r = 0; r < PQntuples(res); r++)
            if (!out_isnull(res, r, "table"))
                json_object_array_add(tables, pick_columns(res, r, tk));
        json_object_object_add(o, "tables", tables);
        json_object_object_add(o, "changes",
                               changes ? diff_json(changes) : json_object_new_array());
        out_json(o);
    } else {
        PGresult *none = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
        print_full(cli, res, 0, &c, none, NULL);
        PQclear(none);
        for (int r = 0; r < PQntuples(res); r++)
            if (!out_isnull(res, r, "table"))
                printf(" %s | %s inserted, %s updated, %s deleted\n", out_get(res, r, "table"),
                       out_get(res, r, "inserted"), out_get(res, r, "updated"),
                       out_get(res, r, "deleted"));
        if (changes) {
            putchar('\n');
            diff_text(cli, changes);
        }
    }
    free_parents(&c);
    PQclear(changes);
    PQclear(res);
    return EXIT_OK;
}
