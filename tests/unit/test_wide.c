/*
 * test_wide — the write rewriter on the widest table PostgreSQL allows
 * (1,600 columns) and on long Query strings: every column a statement names
 * reaches the rewritten SQL (the lists were fixed arrays of 256: names past
 * the 256th were dropped, and an INSERT without a column list wrote past the
 * array), and a limit that remains is a clear 54000.
 *
 * Catalog (search path pg_catalog, public), branch 7 "feature/x", base 100:
 *   1 public.wide (id*, c1 … c1599), all integer
 *   2 public.small (id*, v)
 */
#include <criterion/criterion.h>

#include <pg_query.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "branch/catalog.h"
#include "rewrite/rewrite.h"

#define WIDE_COLS 1600 /* PostgreSQL's MaxHeapAttributeNumber */

static catalog_t g_cat;
static const char **g_rows; /* catalog rows, 5 fields each */
static char **g_names;      /* "id", "c1" … */

static int add_row(int n, const char *a, const char *b, const char *c, const char *d, const char *e)
{
    const char *row[5] = {a, b, c, d, e};
    memcpy(&g_rows[n * 5], row, sizeof row);
    return n + 1;
}

static void setup(void)
{
    g_rows = calloc((WIDE_COLS + 16) * 5, sizeof *g_rows);
    g_names = calloc(WIDE_COLS, sizeof *g_names);
    cr_assert(g_rows && g_names);
    int n = 0;
    n = add_row(n, "branch", "7", "feature/x", "100", "3");
    n = add_row(n, "path", "1", "pg_catalog", NULL, NULL);
    n = add_row(n, "path", "2", "public", NULL, NULL);
    n = add_row(n, "rel", NULL, "public", "wide", NULL);
    n = add_row(n, "rel", NULL, "public", "small", NULL);
    n = add_row(n, "table", "1", "public", "wide", "wide_pkey");
    n = add_row(n, "table", "2", "public", "small", "small_pkey");
    for (int k = 0; k < WIDE_COLS; k++) {
        cr_assert(k == 0 ? (g_names[k] = strdup("id")) != NULL
                         : asprintf(&g_names[k], "c%d", k) > 0);
        n = add_row(n, "column", "1", g_names[k], k == 0 ? "true" : "false", "integer");
    }
    n = add_row(n, "column", "2", "id", "true", "integer");
    n = add_row(n, "column", "2", "v", "false", "integer");
    cr_assert(catalog_load(&g_cat, n, 5, g_rows));
}

static void teardown(void)
{
    catalog_free(&g_cat);
    for (int k = 0; k < WIDE_COLS; k++)
        free(g_names[k]);
    free(g_names);
    free(g_rows);
}

TestSuite(wide, .init = setup, .fini = teardown);

/* The rewrite of sql on the branch (malloc'd text, freed by the caller). */
static void rewrite_on_branch(const char *sql, rw_result_t *r)
{
    rw_session_t s = {.cat = &g_cat, .on_branch = true};
    char *copy = strdup(sql); /* exactly strlen+1 bytes: ASan sees overreads */
    cr_assert_not_null(copy);
    rewrite_statement(&s, copy, r);
    free(copy);
}

static void expect_rewritten(const char *sql, rw_result_t *r)
{
    rewrite_on_branch(sql, r);
    cr_assert_eq(r->action, RW_REWRITTEN, "action %d (%s)", r->action,
                 r->message ? r->message : "");
    PgQueryParseResult pr = pg_query_parse(r->sql);
    cr_expect_null(pr.error, "the rewrite does not parse: %s", pr.error ? pr.error->message : "");
    pg_query_free_parse_result(pr);
}

/* Text built with fprintf into a memstream. */
typedef struct text {
    char *s;
    size_t len;
    FILE *f;
} text_t;

static void text_open(text_t *t)
{
    t->s = NULL;
    t->f = open_memstream(&t->s, &t->len);
    cr_assert_not_null(t->f);
}

static char *text_close(text_t *t)
{
    fclose(t->f);
    return t->s;
}

/* Every column k of wide reaches the INSERT's source as `_v."<name>"`. */
static void expect_every_column_written(const char *out)
{
    int missing = 0, first = -1;
    for (int k = 0; k < WIDE_COLS; k++) {
        char needle[32];
        snprintf(needle, sizeof needle, "_v.\"%s\"::integer", g_names[k]);
        if (!strstr(out, needle)) {
            missing++;
            if (first < 0)
                first = k;
        }
    }
    cr_expect_eq(missing, 0, "%d columns not written, the first %s", missing,
                 first >= 0 ? g_names[first] : "");
}

Test(wide, insert_naming_every_column_in_reverse_writes_them_all)
{
    text_t t;
    text_open(&t);
    fputs("INSERT INTO wide (", t.f);
    for (int k = WIDE_COLS - 1; k >= 0; k--)
        fprintf(t.f, "%s%s", g_names[k], k ? ", " : ") VALUES (");
    for (int k = WIDE_COLS - 1; k >= 0; k--)
        fprintf(t.f, "%d%s", k, k ? ", " : ")");
    char *sql = text_close(&t);
    rw_result_t r;
    expect_rewritten(sql, &r);
    expect_every_column_written(r.sql);
    rewrite_result_free(&r);
    free(sql);
}

Test(wide, insert_without_column_list_fills_every_column)
{
    text_t t;
    text_open(&t);
    fputs("INSERT INTO wide VALUES (", t.f);
    for (int k = 0; k < WIDE_COLS; k++)
        fprintf(t.f, "%s%d", k ? ", " : "", k);
    fputs(") RETURNING *", t.f);
    char *sql = text_close(&t);
    rw_result_t r;
    expect_rewritten(sql, &r);
    expect_every_column_written(r.sql);
    rewrite_result_free(&r);
    free(sql);
}

Test(wide, update_setting_every_column_assigns_them_all)
{
    text_t t;
    text_open(&t);
    fputs("UPDATE wide SET ", t.f);
    for (int k = 1; k < WIDE_COLS; k++)
        fprintf(t.f, "%s%s = %d", k > 1 ? ", " : "", g_names[k], 5000000 + k);
    fputs(" WHERE id = 1", t.f);
    char *sql = text_close(&t);
    rw_result_t r;
    expect_rewritten(sql, &r);
    int missing = 0;
    for (int k = 1; k < WIDE_COLS; k++) {
        char needle[16];
        snprintf(needle, sizeof needle, "%d", 5000000 + k);
        missing += strstr(r.sql, needle) == NULL;
    }
    cr_expect_eq(missing, 0, "%d assignments lost", missing);
    rewrite_result_free(&r);
    free(sql);
}

Test(wide, upsert_setting_every_column_assigns_them_all)
{
    text_t t;
    text_open(&t);
    fputs("INSERT INTO wide (id, c1) VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET ", t.f);
    for (int k = 1; k < WIDE_COLS; k++)
        fprintf(t.f, "%s%s = %d", k > 1 ? ", " : "", g_names[k], 5000000 + k);
    char *sql = text_close(&t);
    rw_result_t r;
    expect_rewritten(sql, &r);
    int missing = 0;
    for (int k = 1; k < WIDE_COLS; k++) {
        char needle[16];
        snprintf(needle, sizeof needle, "%d", 5000000 + k);
        missing += strstr(r.sql, needle) == NULL;
    }
    cr_expect_eq(missing, 0, "%d assignments lost", missing);
    rewrite_result_free(&r);
    free(sql);
}

/* An UPDATE's command tag is fixed by its place among the first RW_MAX_TAGS
 * statements: one after them is refused as a whole (54000, naming the
 * limit); an INSERT needs no tag and may come anywhere. */
Test(wide, update_after_the_tag_limit_is_refused_and_insert_is_not)
{
    text_t t;
    text_open(&t);
    for (int i = 0; i < RW_MAX_TAGS; i++)
        fprintf(t.f, "UPDATE small SET v = %d WHERE id = %d; ", i, i);
    char *head = text_close(&t);
    char *sql = NULL;
    cr_assert(asprintf(&sql, "%sINSERT INTO small VALUES (1000, 1)", head) > 0);
    rw_result_t r;
    expect_rewritten(sql, &r);
    cr_expect_eq(strlen(r.tags), RW_MAX_TAGS);
    rewrite_result_free(&r);
    free(sql);
    cr_assert(asprintf(&sql, "%sUPDATE small SET v = 0", head) > 0);
    rewrite_on_branch(sql, &r);
    cr_expect_eq(r.action, RW_ERROR);
    cr_expect_str_eq(r.sqlstate, "54000");
    cr_expect(r.message && strstr(r.message, "first 64 statements"), "%s",
              r.message ? r.message : "");
    rewrite_result_free(&r);
    free(sql);
    free(head);
}

/* 300 CTEs and 300 statements: the walker's lists grow (they were 64
 * names in scope and 256 edits). */
Test(wide, many_ctes_and_statements_are_rewritten)
{
    text_t t;
    text_open(&t);
    fputs("WITH ", t.f);
    for (int i = 0; i < 300; i++)
        fprintf(t.f, "q%d AS (SELECT v FROM small WHERE id = %d), ", i, i);
    fputs("small AS (SELECT 1 AS v) SELECT * FROM small", t.f);
    char *sql = text_close(&t);
    rw_result_t r;
    expect_rewritten(sql, &r);
    /* the last CTE shadows the table: the outer read is not replaced */
    cr_expect(strstr(r.sql, "small AS (SELECT 1 AS v) SELECT * FROM small") != NULL);
    rewrite_result_free(&r);
    free(sql);
    text_open(&t);
    for (int i = 0; i < 300; i++)
        fprintf(t.f, "INSERT INTO small VALUES (%d, %d); SELECT * FROM small; ", i, i);
    sql = text_close(&t);
    expect_rewritten(sql, &r);
    rewrite_result_free(&r);
    free(sql);
}
