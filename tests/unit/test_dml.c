/*
 * test_dml — unit tests of the write rewriter (src/rewrite/dml*.c): the SQL a
 * branch sends for INSERT/UPDATE/DELETE on a tracked table. The corpus of
 * every write form is in test_rewrite.c; this file pins three shapes:
 *
 *  - RETURNING that names the other FROM/USING items of an UPDATE/DELETE:
 *    the rows are collected in a CTE with the items' whole rows, and each
 *    such RETURNING item is a look-up of its own text over that CTE's row of
 *    the key written (other writes keep the one INSERT … RETURNING);
 *  - the duplicate-key check runs after the new rows met the delta's NOT NULL
 *    and CHECK constraints (a last UNION ALL arm), as PostgreSQL checks a
 *    row's constraints before its key; the common one-row write sends no more
 *    SQL than before (one probe of the table);
 *  - an UPDATE of key columns that is a WITH query puts the CTEs it needs
 *    (its rows, the tombstones of the old keys) into the query's own WITH:
 *    PostgreSQL allows a data-modifying CTE only there.
 *
 * Catalog (search path pg_catalog, public), branch 7 "feature/x", base 100:
 *   1 public.users (id*, name, email)
 *   2 public.line_items (order_id*, line_no*, qty)
 *   3 public.gen (id*, a, b GENERATED ALWAYS AS (a * 2) STORED)
 * Untracked: public.notrack.
 */
#include <criterion/criterion.h>

#include <pg_query.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "branch/catalog.h"
#include "rewrite/rewrite.h"

static const char *const dml_rows[][5] = {
    {"branch", "7", "feature/x", "100", "3"},
    {"path", "1", "pg_catalog", NULL, NULL},
    {"path", "2", "public", NULL, NULL},
    {"rel", NULL, "public", "users", NULL},
    {"rel", NULL, "public", "line_items", NULL},
    {"rel", NULL, "public", "gen", NULL},
    {"table", "1", "public", "users", "users_pkey"},
    {"table", "2", "public", "line_items", "line_items_pkey"},
    {"table", "3", "public", "gen", "gen_pkey"},
    {"column", "1", "id", "true", "integer"},
    {"column", "1", "name", "false", "text"},
    {"column", "1", "email", "false", "text"},
    {"column", "2", "order_id", "true", "integer"},
    {"column", "2", "line_no", "true", "integer"},
    {"column", "2", "qty", "false", "integer"},
    {"column", "3", "id", "true", "integer"},
    {"column", "3", "a", "false", "integer"},
    {"column", "3", "b", "false", "integer"},
    {"default", "3", "b", "(a * 2)", NULL},
    {"attr", "3", "b", NULL, "s"},
};
#define NROWS ((int)(sizeof dml_rows / sizeof dml_rows[0]))

static catalog_t g_cat;

static void setup(void)
{
    cr_assert(catalog_load(&g_cat, NROWS, 5, &dml_rows[0][0]));
}

static void teardown(void)
{
    catalog_free(&g_cat);
}

TestSuite(dml, .init = setup, .fini = teardown);

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* The rewrite on the branch, which must parse; owned by r. */
static const char *rewritten(const char *sql, rw_result_t *r)
{
    rw_session_t s = {.cat = &g_cat, .on_branch = true};
    char *copy = strdup(sql); /* exactly strlen+1 bytes: ASan sees overreads */
    cr_assert_not_null(copy);
    rewrite_statement(&s, copy, r);
    free(copy);
    cr_assert_eq(r->action, RW_REWRITTEN, "[%s]: action %d (%s)", sql, r->action,
                 r->message ? r->message : "");
    PgQueryParseResult pr = pg_query_parse(r->sql);
    cr_expect_null(pr.error, "rewrite of [%s] does not parse: %s\n  output: %s", sql,
                   pr.error ? pr.error->message : "", r->sql);
    pg_query_free_parse_result(pr);
    return r->sql;
}

static void expect_refused(const char *sql, const char *sqlstate, const char *fragment)
{
    rw_session_t s = {.cat = &g_cat, .on_branch = true};
    rw_result_t r;
    rewrite_statement(&s, sql, &r);
    cr_expect_eq(r.action, RW_ERROR, "[%s]: action %d, expected an error", sql, r.action);
    if (r.action == RW_ERROR) {
        cr_expect_str_eq(r.sqlstate, sqlstate, "[%s]: %s", sql, r.message);
        cr_expect(strstr(r.message, fragment) != NULL, "[%s]: %s", sql, r.message);
    }
    rewrite_result_free(&r);
}

/* ------------------------------------------------- RETURNING over FROM items */

#define LOOKUP_S                                                                                   \
    "FROM _epoch_src AS _epoch_s, LATERAL (SELECT (_epoch_s.\"_epoch_f1\").*) AS \"s\" WHERE "     \
    "_epoch_s.\"id\" = \"users\".\"id\" LIMIT 1)"

Test(dml, returning_a_from_item_reads_its_row_back_by_key)
{
    rw_result_t r;
    const char *out = rewritten("UPDATE users SET name = s.n FROM (SELECT 'x' AS n) s "
                                "WHERE users.id = 1 RETURNING users.id, s.n AS label",
                                &r);
    /* the rows and the item's whole row, once; the write reads them */
    cr_expect(
        strstr(out, "WITH _epoch_src AS MATERIALIZED (SELECT DISTINCT ON (\"users\".\"id\") ") ==
            out,
        "%s", out);
    cr_expect_eq(count_of(out, ", \"s\" AS \"_epoch_f1\" FROM "), 1, "%s", out);
    cr_expect(strstr(out,
                     ") INSERT INTO epoch.\"dv_1\" AS \"users\" (\"_epoch_branch\", \"id\", "
                     "\"name\", \"email\") SELECT (SELECT epoch._live_write(7, "
                     "'\"public\".\"users\"'::regclass, 'update', ARRAY['name']::text[])), "
                     "_epoch_src.\"id\", "
                     "_epoch_src.\"name\", _epoch_src.\"email\" FROM _epoch_src ON CONFLICT") !=
                  NULL,
              "%s", out);
    /* the SET value is typed (a CTE would make 'x' text) */
    cr_expect(strstr(out, "( s.n )::text AS \"name\"") != NULL, "%s", out);
    /* the target's item as written; the other one a look-up keeping its alias */
    cr_expect(strstr(out, " RETURNING  users.id, (SELECT  s.n AS label " LOOKUP_S) != NULL, "%s",
              out);
    rewrite_result_free(&r);
}

Test(dml, returning_of_the_target_only_keeps_one_insert)
{
    rw_result_t r;
    const char *out = rewritten("UPDATE users SET name = s.n FROM (SELECT 'x' AS n) s "
                                "WHERE users.id = 1 RETURNING users.id, name, users",
                                &r);
    cr_expect(strstr(out, "_epoch_src") == NULL, "%s", out);
    cr_expect(strncmp(out, "INSERT INTO epoch.\"dv_1\"", 23) == 0, "%s", out);
    rewrite_result_free(&r);
}

Test(dml, returning_bare_column_and_whole_row_of_an_item_are_looked_up)
{
    rw_result_t r;
    const char *out = rewritten("DELETE FROM users USING (VALUES (1, 'a')) AS s(k, w) "
                                "WHERE users.id = s.k RETURNING w, s, users.email",
                                &r);
    cr_expect(strstr(out, "(SELECT  w " LOOKUP_S) != NULL, "%s", out);
    cr_expect(strstr(out, "(SELECT  s " LOOKUP_S) != NULL, "%s", out);
    cr_expect(strstr(out, " LIMIT 1),  users.email") != NULL, "%s", out);
    /* a tombstone of the old row */
    cr_expect(strstr(out, "\"email\", \"_epoch_deleted\") SELECT (SELECT epoch._live_write(7, "
                          "'\"public\".\"users\"'::regclass, 'delete', NULL)), "
                          "_epoch_src.\"id\", _epoch_src.\"name\", _epoch_src.\"email\", true FROM "
                          "_epoch_src") != NULL,
              "%s", out);
    cr_expect(strstr(out, "DO UPDATE SET \"_epoch_deleted\" = true WHERE NOT "
                          "\"users\".\"_epoch_deleted\" RETURNING") != NULL,
              "%s", out);
    rewrite_result_free(&r);
}

Test(dml, returning_star_lists_the_target_then_every_item)
{
    rw_result_t r;
    const char *out = rewritten("DELETE FROM users u USING line_items li, (VALUES (1)) AS v(x) "
                                "WHERE li.order_id = u.id AND v.x = u.id RETURNING *",
                                &r);
    cr_expect(strstr(out, ", \"li\" AS \"_epoch_f1\", \"v\" AS \"_epoch_f2\" FROM ") != NULL, "%s",
              out);
    cr_expect(strstr(out, " RETURNING \"u\".\"id\", \"u\".\"name\", \"u\".\"email\", (SELECT "
                          "\"li\".\"order_id\" FROM _epoch_src") != NULL,
              "%s", out);
    cr_expect_eq(count_of(out, "(SELECT \"li\"."), 3, "%s", out);
    cr_expect_eq(count_of(out, "(SELECT \"v\".\"x\" FROM _epoch_src"), 1, "%s", out);
    /* each look-up has both items under their names */
    cr_expect_eq(count_of(out, "LATERAL (SELECT (_epoch_s.\"_epoch_f2\").*) AS \"v\" WHERE "
                               "_epoch_s.\"id\" = \"u\".\"id\" LIMIT 1)"),
                 4, "%s", out);
    rewrite_result_free(&r);
    /* x.* of one item: that item's columns only */
    out = rewritten("DELETE FROM users u USING line_items li WHERE li.order_id = u.id "
                    "RETURNING li.*",
                    &r);
    cr_expect(strstr(out, " RETURNING (SELECT \"li\".\"order_id\" FROM") != NULL, "%s", out);
    cr_expect(strstr(out, "\"u\".\"name\"") == NULL || count_of(out, "RETURNING \"u\"") == 0, "%s",
              out);
    cr_expect_eq(count_of(out, "(SELECT \"li\"."), 3, "%s", out);
    rewrite_result_free(&r);
}

Test(dml, returning_an_item_with_unknown_columns_or_no_carried_row_is_refused)
{
    expect_refused("UPDATE users SET name = 'x' FROM (SELECT 1 AS k) s WHERE users.id = s.k "
                   "RETURNING *",
                   "0A000", "RETURNING * of the columns of \"s\"");
    expect_refused("UPDATE users SET name = 'x' FROM notrack n WHERE users.id = n.id "
                   "RETURNING n.*",
                   "0A000", "RETURNING * of the columns of \"n\"");
    expect_refused("UPDATE users SET name = 'x' FROM generate_series(1, 2) g WHERE users.id = g "
                   "RETURNING g",
                   "0A000", "an item is a function");
    expect_refused("UPDATE users SET name = 'x' FROM (VALUES (1)) AS email(k) WHERE "
                   "users.id = email.k RETURNING email.k",
                   "0A000", "also a column name");
    expect_refused("UPDATE users SET name = 'x' FROM (VALUES (1)) AS v(k) WHERE users.id = v.k "
                   "RETURNING z.*",
                   "42P01", "missing FROM-clause entry for table \"z\"");
}

Test(dml, key_changing_update_returns_items_from_its_rows_cte)
{
    rw_result_t r;
    const char *out = rewritten("UPDATE users SET id = v.n FROM (VALUES (1, 10)) AS v(o, n) "
                                "WHERE users.id = v.o RETURNING users.id, v.o",
                                &r);
    cr_expect(strstr(out, "AS \"email\", \"v\" AS \"_epoch_f1\" FROM ") != NULL, "%s", out);
    cr_expect(strstr(out, "(SELECT  v.o FROM _epoch_rows AS _epoch_s, LATERAL (SELECT "
                          "(_epoch_s.\"_epoch_f1\").*) AS \"v\" WHERE _epoch_s.\"id\" = "
                          "\"users\".\"id\" LIMIT 1)") != NULL,
              "%s", out);
    rewrite_result_free(&r);
}

Test(dml, returning_over_a_generated_column_reads_the_delta_row)
{
    rw_result_t r;
    const char *out = rewritten("UPDATE gen SET a = v.a FROM (VALUES (1, 5)) v(id, a) "
                                "WHERE gen.id = v.id RETURNING gen.b, v.a",
                                &r);
    /* b is not written (the delta computes it); RETURNING reads it there */
    cr_expect(strstr(out, "(\"_epoch_branch\", \"id\", \"a\") SELECT") != NULL, "%s", out);
    cr_expect(strstr(out, " RETURNING  gen.b, (SELECT  v.a FROM _epoch_src") != NULL, "%s", out);
    rewrite_result_free(&r);
}

/* ---------------------------------------- duplicate keys after constraints */

#define DUP_USERS "epoch._duplicate_key('users_pkey', 'id', '(' || concat_ws(', ', "

Test(dml, one_row_insert_checks_its_key_after_the_row_went_in)
{
    rw_result_t r;
    const char *out = rewritten("INSERT INTO users (id, name) VALUES (1, 'a')", &r);
    /* no pre-check: the row goes in (its constraints), then the key */
    cr_expect(strstr(out, "_epoch_dup") == NULL, "%s", out);
    const char *arm = strstr(out, " FROM _epoch_new _n UNION ALL SELECT NULL, _n.\"id\", "
                                  "_n.\"name\" FROM (SELECT _n.* FROM _epoch_new _n WHERE (SELECT "
                                  "true FROM ");
    cr_expect_not_null(arm, "%s", out);
    cr_expect(strstr(out, "LIMIT 1) IS NOT NULL OFFSET 0) _n WHERE " DUP_USERS
                          "\"_n\".\"id\") || ')') ON CONFLICT") != NULL,
              "%s", out);
    /* one probe of the table, as before; the branch checked once */
    cr_expect_eq(count_of(out, "FROM \"public\".\"users\" _b"), 2, "%s", out);
    cr_expect_eq(count_of(out, "epoch._live_write(7, "), 1, "%s", out);
    /* a key live in the delta is reported row by row by the conflict clause */
    cr_expect(strstr(out, "WHERE CASE WHEN \"users\".\"_epoch_deleted\" THEN true ELSE " DUP_USERS
                          "\"excluded\".\"id\") || ')') END") != NULL,
              "%s", out);
    rewrite_result_free(&r);
}

Test(dml, several_rows_are_written_up_to_the_first_existing_key)
{
    rw_result_t r;
    const char *out = rewritten("INSERT INTO users (id, name) VALUES (1, 'a'), (2, NULL)", &r);
    /* each row's place in the source */
    cr_expect(strstr(out, "_v.\"name\"::text AS \"name\", row_number() OVER () AS \"_epoch_ord\" "
                          "FROM (VALUES (1, 'a'), (2, NULL)) AS _v") != NULL,
              "%s", out);
    /* a key twice: first; the first row whose key exists: probed once */
    cr_expect(strstr(out,
                     ", _epoch_dup AS (SELECT " DUP_USERS "\"_n\".\"id\") || ')') FROM "
                     "(SELECT \"id\" FROM _epoch_new GROUP BY \"id\" HAVING count(*) > 1) _n "
                     "LIMIT 1), _epoch_first AS MATERIALIZED (SELECT min(_n.\"_epoch_ord\") AS "
                     "o FROM _epoch_new _n WHERE (SELECT true FROM ") != NULL,
              "%s", out);
    cr_expect_eq(count_of(out, "FROM \"public\".\"users\" _b"), 2, "%s", out);
    /* the rows up to it go in (their constraints), then it is reported */
    cr_expect(strstr(out,
                     "FROM _epoch_new _n WHERE NOT EXISTS (SELECT 1 FROM _epoch_dup) AND "
                     "_n.\"_epoch_ord\" <= coalesce((SELECT o FROM _epoch_first), "
                     "9223372036854775807) UNION ALL SELECT NULL, _n.\"id\", _n.\"name\" FROM "
                     "(SELECT _n.* FROM _epoch_new _n WHERE _n.\"_epoch_ord\" = (SELECT o FROM "
                     "_epoch_first) OFFSET 0) _n WHERE " DUP_USERS) != NULL,
              "%s", out);
    rewrite_result_free(&r);
    /* INSERT … SELECT: the probe as a join (EXISTS) */
    out = rewritten("INSERT INTO users SELECT * FROM users WHERE id < 3", &r);
    cr_expect(strstr(out, "AS o FROM _epoch_new _n WHERE EXISTS (SELECT 1 FROM ") != NULL, "%s",
              out);
    rewrite_result_free(&r);
}

Test(dml, copy_checks_every_row_before_the_existing_keys)
{
    /* PostgreSQL's COPY checks a batch's constraints before its keys */
    rw_session_t s = {.cat = &g_cat, .on_branch = true};
    rw_result_t r;
    cr_assert_eq(rewrite_statement(&s, "COPY users (id, name) FROM STDIN", &r), RW_REWRITTEN);
    cr_assert_not_null(r.setup);
    cr_expect(strstr(r.setup, "_epoch_ord") == NULL, "%s", r.setup);
    cr_expect(strstr(r.setup, "HAVING count(*) > 1) _n LIMIT 1) INSERT INTO epoch.\"dv_1\"") !=
                  NULL,
              "%s", r.setup);
    cr_expect(strstr(r.setup,
                     "FROM _epoch_new _n WHERE NOT EXISTS (SELECT 1 FROM _epoch_dup) UNION "
                     "ALL SELECT NULL, _n.\"id\", _n.\"name\" FROM (SELECT _n.* FROM "
                     "_epoch_new _n WHERE EXISTS (SELECT 1 FROM ") != NULL,
              "%s", r.setup);
    rewrite_result_free(&r);
}

Test(dml, composite_key_detail_is_worded_like_postgresql)
{
    rw_result_t r;
    const char *out =
        rewritten("INSERT INTO line_items (order_id, line_no, qty) VALUES (1, 2, 3)", &r);
    cr_expect(strstr(out,
                     "epoch._duplicate_key('line_items_pkey', 'order_id, line_no', '(' || "
                     "concat_ws(', ', \"_n\".\"order_id\", \"_n\".\"line_no\") || ')')") != NULL,
              "%s", out);
    cr_expect(strstr(out, "ROW(") == NULL, "%s", out);
    rewrite_result_free(&r);
}

Test(dml, key_changing_update_checks_new_keys_after_the_new_rows)
{
    rw_result_t r;
    const char *out = rewritten("UPDATE users SET id = 5, name = NULL WHERE id = 3", &r);
    cr_expect(strstr(out, "_epoch_dup") == NULL, "%s", out);
    /* one new row per new key; a key moved to twice, or held by another row: 23505 */
    cr_expect(strstr(out,
                     ") SELECT DISTINCT ON (_r.\"id\") (SELECT epoch._live_write(7, "
                     "'\"public\".\"users\"'::regclass, 'update', ARRAY['id', 'name']::text[])), "
                     "\"_r\".\"id\", "
                     "\"_r\".\"name\", \"_r\".\"email\" FROM _epoch_rows _r UNION ALL SELECT "
                     "NULL, \"_n\".\"id\", \"_n\".\"name\", \"_n\".\"email\" FROM (SELECT _n.* "
                     "FROM (SELECT "
                     "_w.*, count(*) OVER (PARTITION BY _w.\"id\") AS \"_epoch_n\" FROM "
                     "_epoch_rows _w) _n WHERE _n.\"_epoch_n\" > 1 OR ((_n.\"id\") IS "
                     "DISTINCT FROM (_n.\"_epoch_o0\") AND EXISTS (SELECT 1 FROM ") != NULL,
              "%s", out);
    cr_expect(strstr(out, "OFFSET 0) _n WHERE " DUP_USERS "\"_n\".\"id\") || ')') ON CONFLICT") !=
                  NULL,
              "%s", out);
    rewrite_result_free(&r);
}

Test(dml, writes_without_a_duplicate_check_are_unchanged)
{
    const char *plain[] = {
        "UPDATE users SET name = 'x' WHERE id = 1",
        "DELETE FROM users WHERE id = 1",
        "INSERT INTO users (id) VALUES (1) ON CONFLICT DO NOTHING",
        "INSERT INTO users (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET name = 'y'",
        "UPDATE users SET name = 'x' FROM line_items li WHERE li.order_id = users.id",
    };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        rw_result_t r;
        const char *out = rewritten(plain[i], &r);
        cr_expect(strstr(out, "UNION ALL SELECT NULL") == NULL, "[%s]: %s", plain[i], out);
        cr_expect(strstr(out, "_epoch_src") == NULL, "[%s]: %s", plain[i], out);
        rewrite_result_free(&r);
    }
}

/* ------------------------------------- key-changing UPDATE as a WITH query */

/* How many WITH clauses the statement has, anywhere (from its parse tree). */
static int with_clauses(const char *sql)
{
    PgQueryParseResult pr = pg_query_parse(sql);
    cr_assert_null(pr.error, "%s", sql);
    int n = count_of(pr.parse_tree, "\"withClause\"");
    pg_query_free_parse_result(pr);
    return n;
}

Test(dml, key_changing_update_in_a_with_query_puts_its_ctes_in_the_outer_with)
{
    /* PostgreSQL allows a data-modifying CTE (the tombstones) only in the
     * statement's own WITH: a WITH inside the WITH query `m` was refused by
     * PostgreSQL ("must be at the top level") */
    rw_result_t r;
    const char *out =
        rewritten("WITH m AS (UPDATE users SET id = id + 1000 WHERE id = 1 RETURNING id) "
                  "SELECT * FROM m",
                  &r);
    cr_expect_eq(with_clauses(out), 1, "%s", out);
    cr_expect(strncmp(out, "WITH _epoch_rows_11 AS MATERIALIZED (SELECT ", 44) == 0, "%s", out);
    cr_expect(
        strstr(out, "), _epoch_gone_11 AS (INSERT INTO epoch.\"dv_1\" (\"_epoch_branch\", ") !=
            NULL,
        "%s", out);
    cr_expect(strstr(out, "FROM _epoch_rows_11 _r WHERE (_r.\"_epoch_o0\") NOT IN") != NULL, "%s",
              out);
    cr_expect(strstr(out, "DO UPDATE SET \"_epoch_deleted\" = true), m AS (INSERT INTO "
                          "epoch.\"dv_1\" AS \"users\" (") != NULL,
              "%s", out);
    cr_expect(strstr(out, "FROM _epoch_rows_11 _w) _n") != NULL, "%s", out);
    cr_expect(strstr(out, "_epoch_rows _r") == NULL, "%s", out);
    size_t len = strlen(out);
    const char *tail = " RETURNING id) SELECT * FROM m";
    cr_expect(len > strlen(tail) && strcmp(out + len - strlen(tail), tail) == 0, "%s", out);
    cr_expect_str_eq(r.tags, "", "a WITH query has no command tag of its own");
    rewrite_result_free(&r);
}

Test(dml, key_changing_update_in_a_with_query_sees_the_earlier_with_queries)
{
    rw_result_t r;
    const char *out = rewritten(
        "WITH k AS (SELECT 1 AS o), m AS (UPDATE users SET id = id + 1 WHERE id = (SELECT o "
        "FROM k) RETURNING id), n AS (UPDATE line_items SET line_no = line_no + 1 RETURNING "
        "line_no) SELECT * FROM m, n",
        &r);
    cr_expect_eq(with_clauses(out), 1, "%s", out);
    /* after k (which the rows read), before m; the second one has its own names */
    const char *k = strstr(out, "WITH k AS (SELECT 1 AS o), _epoch_rows_");
    const char *rows2 = strstr(out, "_epoch_rows_112 AS MATERIALIZED");
    const char *m = strstr(out, ", m AS (INSERT INTO epoch.\"dv_1\"");
    const char *n = strstr(out, ", n AS (INSERT INTO epoch.\"dv_2\"");
    cr_expect(k && rows2 && m && n && k < m && m < rows2 && rows2 < n, "%s", out);
    cr_expect(strstr(out, "_epoch_gone_33 AS (INSERT") && strstr(out, "_epoch_gone_112 AS (INSERT"),
              "%s", out);
    rewrite_result_free(&r);
}

Test(dml, key_changing_update_in_a_with_query_inside_a_write)
{
    rw_result_t r;
    const char *out =
        rewritten("WITH m AS (UPDATE users SET id = id + 1 WHERE id = 2 RETURNING "
                  "id) INSERT INTO line_items (order_id, line_no) SELECT id, 1 FROM m",
                  &r);
    cr_expect_eq(with_clauses(out), 1, "%s", out);
    cr_expect(strstr(out, "), m AS (INSERT INTO epoch.\"dv_1\"") != NULL, "%s", out);
    cr_expect(strstr(out, "), _epoch_new AS MATERIALIZED (SELECT ") != NULL, "%s", out);
    rewrite_result_free(&r);
}

Test(dml, key_changing_update_with_its_own_with_inside_a_with_query_is_refused)
{
    expect_refused("WITH m AS (WITH z AS (SELECT 1 AS o) UPDATE users SET id = id + 1 WHERE id "
                   "IN (SELECT o FROM z) RETURNING id) SELECT * FROM m",
                   "0A000", "with a WITH clause of its own inside a WITH query");
}

/* ---------------------------------------- history bound */

Test(dml, history_bound_is_left_to_the_key_seq_index)
{
    /* "_epoch_seq + 0 > base" everywhere: only the (key, seq) index serves
     * probes by key, whatever the history's statistics say */
    const char *sqls[] = {
        "INSERT INTO users (id, name) VALUES (1, 'a'), (2, 'b')",
        "SELECT * FROM users WHERE id = 5",
        "SELECT max(name) FROM users",
        "SELECT * FROM users WHERE id > 5",
    };
    for (size_t i = 0; i < sizeof sqls / sizeof *sqls; i++) {
        rw_result_t r;
        const char *out = rewritten(sqls[i], &r);
        for (const char *q = "hpq"; *q; q++) {
            char want[32];
            snprintf(want, sizeof want, "_%c._epoch_seq + 0 > ", *q);
            cr_expect(strstr(out, want) != NULL, "[%s] lacks %s: %s", sqls[i], want, out);
        }
        cr_expect(strstr(out, "_epoch_seq > ") == NULL, "[%s]: %s", sqls[i], out);
        rewrite_result_free(&r);
    }
}

Test(dml, values_rows_are_probed_one_by_one_query_rows_in_one_join)
{
    /* a long VALUES list still probes each key through the indexes */
    char sql[16384] = "INSERT INTO users (id, name) VALUES (1, 'a')";
    for (int i = 2; i <= 300; i++) {
        size_t len = strlen(sql);
        snprintf(sql + len, sizeof sql - len, ", (%d, 'a')", i);
    }
    rw_result_t r;
    const char *out = rewritten(sql, &r);
    cr_expect(strstr(out, "_epoch_new _n WHERE (SELECT true FROM ") != NULL, "%s", out);
    cr_expect(strstr(out, "WHERE EXISTS (SELECT 1 FROM (") == NULL, "%s", out);
    rewrite_result_free(&r);
    out = rewritten("INSERT INTO users (id, name) SELECT id + 1000, name FROM users", &r);
    cr_expect(strstr(out, "WHERE EXISTS (SELECT 1 FROM (") != NULL, "%s", out);
    rewrite_result_free(&r);
}

Test(dml, where_current_of_is_refused_also_when_the_key_changes)
{
    expect_refused("UPDATE users SET name = 'x' WHERE CURRENT OF c", "0A000", "WHERE CURRENT OF");
    expect_refused("UPDATE users SET id = id + 1 WHERE CURRENT OF c", "0A000", "WHERE CURRENT OF");
    expect_refused("DELETE FROM users WHERE CURRENT OF c", "0A000", "WHERE CURRENT OF");
}

Test(dml, copy_of_a_generated_column_is_42p10_both_ways)
{
    expect_refused("COPY gen (id, b) TO STDOUT", "42P10", "column \"b\" is a generated column");
    expect_refused("COPY gen (b) FROM STDIN", "42P10", "column \"b\" is a generated column");
    rw_result_t r;
    const char *out = rewritten("COPY gen (id, a) TO STDOUT", &r);
    cr_expect(strstr(out, "COPY (SELECT id, a FROM (") != NULL, "%s", out);
    rewrite_result_free(&r);
}
