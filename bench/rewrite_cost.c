/*
 * rewrite_cost — what rewrite_statement() (src/rewrite/rewrite.h) costs per
 * statement on a branch, measured in-process with a hand-built catalog (the
 * rows epoch._session() would return for pgbench's tables).
 *
 *   rewrite_cost [-n ITERATIONS] [-v]
 *
 * Built and run by bench/branch_reads; by hand (from the repository root,
 * after a CMake build in bench/.build):
 *
 *   gcc -O2 -std=c11 -D_GNU_SOURCE -Isrc -Ibench/.build/gen bench/rewrite_cost.c \
 *       bench/.build/libepoch_rewrite.a bench/.build/libepoch_branch.a \
 *       bench/.build/libepoch_common.a -lpg_query -ljson-c -lxxhash -lpthread \
 *       -o bench/.build/rewrite_cost
 *
 * For each statement (a point SELECT, a 3-table join, a 10-line analytic
 * query) it reports:
 *   first    the very first rewrite of that text in this process (the first
 *            statement also pays libpg_query's one-time initialisation);
 *   cold     the steady-state cost of one full rewrite without any cache:
 *            parse (libpg_query, JSON output) + json-c decode + tree walk +
 *            overlay generation + splice; median of the per-call means of
 *            batches, with the min-max of those batch means;
 *   parse    pg_query_parse() alone on the same text (part of "cold");
 *   out      bytes of the statement before and after the rewrite.
 * and the cost of rewrite_needs_parse(), the pre-check on main's hot path.
 *
 *   cached   when src/rewrite/cache.h exists at build time: rewrite_cached()
 *            on a text already in the cache (the simple-query path: it also
 *            returns the template for plan reuse), i.e. template the
 *            constants, hash, look up, put the constants back; "-" without a
 *            cache. The cache is cleared before each statement's first call.
 *
 * Output: one tab-separated line per measurement after a '#' header, read by
 * bench/branch_reads_report.py.
 */
#include <pg_query.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "branch/catalog.h"
#include "rewrite/rewrite.h"
#if __has_include("rewrite/cache.h")
#include "rewrite/cache.h"
#define HAVE_CACHE 1
#else
#define HAVE_CACHE 0
#endif

#define BATCH 100
#define MAX_BATCHES 100000

/* epoch._session('b') rows: kind, a, b, c, d (see src/branch/sql/functions/session.sql) */
static const char *const session_rows[][5] = {
    {"branch", "7", "bench-branch", "42", "3"},
    {"path", "1", "pg_catalog", NULL, NULL},
    {"path", "2", "public", NULL, NULL},
    {"rel", NULL, "public", "pgbench_accounts", NULL},
    {"rel", NULL, "public", "pgbench_branches", NULL},
    {"rel", NULL, "public", "pgbench_tellers", NULL},
    {"table", "1", "public", "pgbench_accounts", NULL},
    {"table", "2", "public", "pgbench_branches", NULL},
    {"table", "3", "public", "pgbench_tellers", NULL},
    {"column", "1", "aid", "true", "1"},
    {"column", "1", "bid", "false", "2"},
    {"column", "1", "abalance", "false", "3"},
    {"column", "1", "filler", "false", "4"},
    {"column", "2", "bid", "true", "1"},
    {"column", "2", "bbalance", "false", "2"},
    {"column", "2", "filler", "false", "3"},
    {"column", "3", "tid", "true", "1"},
    {"column", "3", "bid", "false", "2"},
    {"column", "3", "tbalance", "false", "3"},
    {"column", "3", "filler", "false", "4"},
};

static const struct {
    const char *name;
    const char *sql;
} cases[] = {
    {"point SELECT", "SELECT abalance FROM pgbench_accounts WHERE aid = 4242"},
    {"3-table join",
     "SELECT a.aid, a.abalance, t.tid, t.tbalance, b.bbalance\n"
     "  FROM pgbench_accounts a\n"
     "  JOIN pgbench_tellers t ON t.bid = a.bid\n"
     "  JOIN pgbench_branches b ON b.bid = a.bid\n"
     " WHERE a.aid BETWEEN 1000 AND 1100"},
    {"10-line analytic query",
     "WITH per_branch AS (\n"
     "    SELECT a.bid, count(*) AS accounts, sum(a.abalance) AS balance\n"
     "      FROM pgbench_accounts a WHERE a.abalance <> 0 GROUP BY a.bid)\n"
     "SELECT b.bid, p.accounts, p.balance, b.bbalance,\n"
     "       rank() OVER (ORDER BY p.balance DESC NULLS LAST) AS rnk,\n"
     "       (SELECT count(*) FROM pgbench_tellers t WHERE t.bid = b.bid) AS tellers,\n"
     "       100.0 * p.balance / nullif(sum(p.balance) OVER (), 0) AS pct\n"
     "  FROM pgbench_branches b\n"
     "  LEFT JOIN per_branch p ON p.bid = b.bid\n"
     " ORDER BY rnk, b.bid"},
};

static double clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double now_us(void)
{
    return clock_us(CLOCK_MONOTONIC);
}

/* CPU time of this thread: not inflated when the scheduler runs something
 * else on this core (the machine is shared), unlike wall-clock time. */
static double cpu_us(void)
{
    return clock_us(CLOCK_THREAD_CPUTIME_ID);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    double median, min, max;
} stats_t;

static stats_t summarize(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    stats_t s = {n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v[0], v[n - 1]};
    return s;
}

static volatile size_t sink; /* keeps the timed calls from being optimised away */

enum { OP_REWRITE, OP_PARSE, OP_PRECHECK, OP_CACHED };

static const char view[] = "bench\x1f" "7\x1f" "42\x1f" "3\x1f" "pg_catalog,public\x1f" "rw";

static void run_once(int op, const rw_session_t *s, const char *sql, size_t len)
{
    if (op == OP_REWRITE) {
        rw_result_t r;
        rewrite_statement(s, sql, &r);
        sink += r.sql ? strlen(r.sql) : 0;
        rewrite_result_free(&r);
    } else if (op == OP_PARSE) {
        PgQueryParseResult pr = pg_query_parse(sql);
        sink += pr.parse_tree ? strlen(pr.parse_tree) : 0;
        pg_query_free_parse_result(pr);
    } else if (op == OP_CACHED) {
#if HAVE_CACHE
        rw_result_t r;
        rw_template_t tp;
        rewrite_cached(s, view, sql, &r, &tp);
        sink += r.sql ? strlen(r.sql) : 0;
        rewrite_result_free(&r);
        rewrite_template_free(&tp);
#endif
    } else {
        sink += rewrite_needs_parse(sql, len);
    }
}

/* Per-call time in µs: median (min-max) of the means of batches of BATCH,
 * in thread CPU time (*wall: the same in wall-clock time). */
static stats_t measure(int op, const rw_session_t *s, const char *sql, int iterations,
                       double *batches, double *wbatches, stats_t *wall)
{
    size_t len = strlen(sql);
    int reps = op == OP_PRECHECK ? BATCH * 100 : BATCH;
    int nb = iterations / BATCH;
    if (nb < 1)
        nb = 1;
    if (nb > MAX_BATCHES)
        nb = MAX_BATCHES;
    for (int i = 0; i < reps; i++) /* warm up */
        run_once(op, s, sql, len);
    for (int b = 0; b < nb; b++) {
        double w0 = now_us(), c0 = cpu_us();
        for (int i = 0; i < reps; i++)
            run_once(op, s, sql, len);
        batches[b] = (cpu_us() - c0) / reps;
        wbatches[b] = (now_us() - w0) / reps;
    }
    if (wall)
        *wall = summarize(wbatches, nb);
    return summarize(batches, nb);
}

int main(int argc, char **argv)
{
    int iterations = 20000;
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            iterations = atoi(argv[++i]);
        else if (strcmp(argv[i], "-v") == 0)
            verbose = 1;
        else {
            fprintf(stderr, "usage: %s [-n ITERATIONS] [-v]\n", argv[0]);
            return 2;
        }
    }
    if (iterations < BATCH)
        iterations = BATCH;

    int nrows = (int)(sizeof session_rows / sizeof session_rows[0]);
    const char **values = malloc(sizeof(char *) * (size_t)nrows * 5);
    if (!values)
        return 1;
    for (int r = 0; r < nrows; r++)
        for (int c = 0; c < 5; c++)
            values[r * 5 + c] = session_rows[r][c];
    catalog_t cat;
    if (!catalog_load(&cat, nrows, 5, values)) {
        fprintf(stderr, "rewrite_cost: catalog_load rejected the hand-built catalog\n");
        return 1;
    }
    free(values);
    rw_session_t branch = {.cat = &cat, .on_branch = true, .read_only = false};

    double *batches = malloc(sizeof(double) * MAX_BATCHES);
    double *wbatches = malloc(sizeof(double) * MAX_BATCHES);
    if (!batches || !wbatches)
        return 1;
    int ncases = (int)(sizeof cases / sizeof cases[0]);
    int failures = 0;
    printf("#statement\tlines\tbytes_in\tbytes_out\ttables_rewritten\tfirst_cpu_us\t"
           "cold_cpu_median_us\tcold_cpu_min_us\tcold_cpu_max_us\tcold_wall_median_us\t"
           "cold_wall_min_us\tparse_cpu_median_us\tprecheck_cpu_median_us\tbatches\t"
           "calls_per_batch\tcached_cpu_median_us\tcached_cpu_min_us\tcached_cpu_max_us\t"
           "cache_hits\n");
    for (int k = 0; k < ncases; k++) {
        const char *sql = cases[k].sql;
        /* first rewrite of this text in the process */
        rw_result_t r;
        double c0 = cpu_us();
        rewrite_statement(&branch, sql, &r);
        double first = cpu_us() - c0;
        if (r.action != RW_REWRITTEN) {
            fprintf(stderr, "rewrite_cost: %s: expected RW_REWRITTEN, got action %d (%s)\n",
                    cases[k].name, (int)r.action, r.message ? r.message : "no message");
            failures++;
            rewrite_result_free(&r);
            continue;
        }
        size_t out_len = strlen(r.sql);
        int rewritten = 0;
        for (const char *p = r.sql; (p = strstr(p, "FROM epoch.\"d_")); p++)
            rewritten++;
        rewritten /= 3; /* each overlay reads its delta table three times (see overlay.c) */
        if (verbose)
            fprintf(stderr, "---- %s\n%s\n---- becomes\n%s\n\n", cases[k].name, sql, r.sql);
        rewrite_result_free(&r);

        int lines = 1;
        for (const char *p = sql; *p; p++)
            lines += *p == '\n';
        int nb = iterations / BATCH;
        if (nb > MAX_BATCHES)
            nb = MAX_BATCHES;
        stats_t wall;
        stats_t cold = measure(OP_REWRITE, &branch, sql, iterations, batches, wbatches, &wall);
        stats_t parse = measure(OP_PARSE, &branch, sql, iterations, batches, wbatches, NULL);
        stats_t pre = measure(OP_PRECHECK, &branch, sql, iterations, batches, wbatches, NULL);
        char cached[128] = "-\t-\t-\t-";
#if HAVE_CACHE
        rewrite_cache_clear();
        /* the cached result must be the cold one */
        rw_result_t c1, c2;
        rw_template_t tp;
        rewrite_statement(&branch, sql, &c1);
        rewrite_cached(&branch, view, sql, &c2, &tp); /* miss: fills the entry */
        rewrite_template_free(&tp);
        rewrite_result_free(&c2);
        rewrite_cached(&branch, view, sql, &c2, &tp); /* hit */
        rewrite_template_free(&tp);
        if (c2.action != c1.action || !c1.sql || !c2.sql || strcmp(c1.sql, c2.sql) != 0) {
            fprintf(stderr, "rewrite_cost: %s: the cached rewrite differs from the cold one\n",
                    cases[k].name);
            failures++;
        }
        rewrite_result_free(&c1);
        rewrite_result_free(&c2);
        rw_cache_stats_t before = rewrite_cache_stats();
        stats_t hit = measure(OP_CACHED, &branch, sql, iterations, batches, wbatches, NULL);
        rw_cache_stats_t after = rewrite_cache_stats();
        unsigned long misses = after.misses - before.misses;
        if (misses) {
            fprintf(stderr, "rewrite_cost: %s: %lu cache misses while timing hits\n",
                    cases[k].name, misses);
            failures++;
        }
        snprintf(cached, sizeof cached, "%.2f\t%.2f\t%.2f\t%lu", hit.median, hit.min, hit.max,
                 after.hits - before.hits);
#endif
        printf("%s\t%d\t%zu\t%zu\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.4f\t%d\t%d\t%s\n",
               cases[k].name, lines, strlen(sql), out_len, rewritten, first, cold.median,
               cold.min, cold.max, wall.median, wall.min, parse.median, pre.median, nb, BATCH,
               cached);
        fflush(stdout);
    }
    free(wbatches);
    free(batches);
    catalog_free(&cat);
    return failures ? 1 : 0;
}
