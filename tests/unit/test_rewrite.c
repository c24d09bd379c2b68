/*
 * test_rewrite — unit tests of src/rewrite (rewrite_statement,
 * rewrite_needs_parse) and of src/branch/catalog.c (catalog_load,
 * catalog_find).
 *
 * The heart is a table-driven corpus: each statement with the session it
 * runs in, the expected action, the tracked tables (by id) whose overlay
 * must appear in the output, the flags, the SQLSTATE of a refusal and
 * substrings that must or must not appear. Every rewritten output must parse
 * with libpg_query. A handful of tests pin the exact output text, so the
 * splicing (aliases, ONLY, TABLE, COPY, "@ref") cannot drift unnoticed.
 *
 * On a branch, reads of tracked tables become overlays and INSERT/UPDATE/
 * DELETE/COPY FROM on them become writes into epoch."d_<id>" (docs/sql.md,
 * "Writing on a branch"); the other writes are refused.
 *
 * The tests after "fixed bugs" pin down bugs found by this corpus (their
 * comments say what used to happen).
 *
 * The catalog used everywhere (search path pg_catalog, app, public):
 *   1 public.users (id*, name, email)      2 public.orders (id*, user_id, total)
 *   3 public."Users" (id*, "Name")         4 public."my table" (k*)
 *   5 public."we""ird" (id*, "a""b")       6 app.products (id*, name, price)
 *   7 public.accounts (id*, balance)  -- shadowed by the untracked app.accounts
 *   8 public.line_items (order_id*, line_no*, qty)
 *   9 other.stats (day*, n)                -- other is not on the path
 *  10 public.arrs (id*, a integer[], qty, meta jsonb)
 *  11 public.gen (id*, a, b GENERATED ALWAYS AS (a * 2) STORED)
 *  12 public.ga (id* GENERATED ALWAYS AS IDENTITY, name)
 * Untracked: public.notrack, app.accounts, every pg_catalog relation.
 * Views over tracked tables (definitions as epoch._viewdef gives them):
 *   public.v_users (users, id < 50)   public.v_renamed (users: uid, uname)
 *   public.v_chain (v_users)          public.v_join (users, orders, notrack)
 *   app.v_app (products)              other.v_other (stats)  -- off the path
 *   public.v_my ("my table")          public.v_my2 (v_my)
 *   public.v_cte (its own CTE "users", orders)
 *   public.v_sb (security_barrier)    public.v_lock (FOR UPDATE)
 *   public.v_loop1 <-> public.v_loop2 (a cycle)
 *   public.v_shadowed, shadowed by the untracked relation app.v_shadowed
 * The branch session is branch 7 "feature/x" with base point 100.
 */
#include <criterion/criterion.h>

#include <pg_query.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "branch/catalog.h"
#include "rewrite/cache.h"
#include "rewrite/rewrite.h"

/* ------------------------------------------------------------ fixture */

static const char *const session_rows[][5] = {
    {"branch", "7", "feature/x", "100", "3"},
    {"path", "1", "pg_catalog", NULL, NULL},
    {"path", "2", "app", NULL, NULL},
    {"path", "3", "public", NULL, NULL},
    {"rel", NULL, "app", "accounts", NULL},
    {"rel", NULL, "public", "accounts", NULL},
    {"rel", NULL, "public", "users", NULL},
    {"rel", NULL, "public", "orders", NULL},
    {"rel", NULL, "public", "Users", NULL},
    {"rel", NULL, "public", "my table", NULL},
    {"rel", NULL, "public", "we\"ird", NULL},
    {"rel", NULL, "app", "products", NULL},
    {"rel", NULL, "public", "line_items", NULL},
    {"rel", NULL, "public", "arrs", NULL},
    {"rel", NULL, "public", "gen", NULL},
    {"rel", NULL, "public", "ga", NULL},
    {"rel", NULL, "public", "secrets", NULL},
    {"table", "1", "public", "users", "users_pkey"},
    {"table", "2", "public", "orders", "orders_pkey"},
    {"table", "3", "public", "Users", "Users_pkey"},
    {"table", "4", "public", "my table", "my table_pkey"},
    {"table", "5", "public", "we\"ird", "we\"ird_pkey"},
    {"table", "6", "app", "products", "products_pkey"},
    {"table", "7", "public", "accounts", "accounts_pkey"},
    {"table", "8", "public", "line_items", "line_items_pkey"},
    {"table", "9", "other", "stats", "stats_pkey"},
    {"table", "10", "public", "arrs", "arrs_pkey"},
    {"table", "11", "public", "gen", "gen_pkey"},
    {"table", "12", "public", "ga", "ga_pkey"},
    {"table", "13", "public", "secrets", "secrets_pkey"},
    {"column", "1", "id", "true", "integer"},
    {"column", "1", "name", "false", "text"},
    {"column", "1", "email", "false", "text"},
    {"unique", "1", "users_email_key", "email", NULL},
    {"column", "2", "id", "true", "integer"},
    {"column", "2", "user_id", "false", "integer"},
    {"column", "2", "total", "false", "numeric"},
    {"column", "3", "id", "true", "integer"},
    {"column", "3", "Name", "false", "text"},
    {"column", "4", "k", "true", "integer"},
    {"column", "5", "id", "true", "integer"},
    {"column", "5", "a\"b", "false", "text"},
    {"column", "6", "id", "true", "integer"},
    {"column", "6", "name", "false", "text"},
    {"column", "6", "price", "false", "numeric"},
    {"column", "7", "id", "true", "integer"},
    {"column", "7", "balance", "false", "numeric"},
    {"column", "8", "order_id", "true", "integer"},
    {"column", "8", "line_no", "true", "integer"},
    {"column", "8", "qty", "false", "integer"},
    {"column", "9", "day", "true", "integer"},
    {"column", "9", "n", "false", "integer"},
    {"column", "10", "id", "true", "integer"},
    {"column", "10", "a", "false", "integer[]"},
    {"column", "10", "qty", "false", "integer"},
    {"column", "10", "meta", "false", "jsonb"},
    {"column", "11", "id", "true", "integer"},
    {"column", "11", "a", "false", "integer"},
    {"column", "11", "b", "false", "integer"},
    {"column", "12", "id", "true", "integer"},
    {"column", "12", "name", "false", "text"},
    {"column", "13", "id", "true", "integer"},
    {"column", "13", "v", "false", "text"},
    {"column", "13", "w", "false", "integer"},
    {"colacl", "13", NULL, NULL, NULL},
    {"dbig", "12", NULL, NULL, NULL},
    {"default", "2", "id", "nextval('orders_id_seq'::regclass)", NULL},
    {"default", "11", "b", "(a * 2)", NULL},
    {"default", "12", "id", "nextval('ga_id_seq'::regclass)", NULL},
    {"attr", "11", "b", NULL, "s"},
    {"attr", "12", "id", "a", NULL},
    {"rel", NULL, "public", "v_users", NULL},
    {"rel", NULL, "public", "v_renamed", NULL},
    {"rel", NULL, "public", "v_chain", NULL},
    {"rel", NULL, "public", "v_join", NULL},
    {"rel", NULL, "app", "v_app", NULL},
    {"rel", NULL, "public", "v_my", NULL},
    {"rel", NULL, "public", "v_my2", NULL},
    {"rel", NULL, "public", "v_cte", NULL},
    {"rel", NULL, "public", "v_sb", NULL},
    {"rel", NULL, "public", "v_lock", NULL},
    {"rel", NULL, "public", "v_loop1", NULL},
    {"rel", NULL, "public", "v_loop2", NULL},
    {"rel", NULL, "app", "v_shadowed", NULL},
    {"rel", NULL, "public", "v_shadowed", NULL},
    {"view", "", "public", "v_users",
     " SELECT users.id,\n    users.name\n   FROM public.users\n  WHERE (users.id < 50);"},
    {"view", "", "public", "v_renamed",
     " SELECT users.id AS uid,\n    users.name AS uname\n   FROM public.users;"},
    {"view", "", "public", "v_chain",
     " SELECT v_users.id\n   FROM public.v_users\n  WHERE "
     "(v_users.id > 10);"},
    {"view", "", "public", "v_join",
     " SELECT u.id,\n    o.total\n   FROM ((public.users u\n     JOIN public.orders o ON "
     "((o.user_id = u.id)))\n     JOIN public.notrack n ON ((n.id = u.id)));"},
    {"view", "", "app", "v_app", " SELECT products.id\n   FROM app.products;"},
    {"view", "", "other", "v_other", " SELECT stats.day\n   FROM other.stats;"},
    {"view", "", "public", "v_my", "SELECT t.k FROM public.\"my table\" t"},
    {"view", "", "public", "v_my2", "SELECT v_my.k FROM public.v_my WHERE (v_my.k > 0);"},
    {"view", "", "public", "v_cte",
     " WITH users AS (\n         SELECT 1 AS id\n        )\n SELECT users.id\n   FROM users\n"
     "UNION ALL\n SELECT orders.id\n   FROM public.orders;"},
    {"view", "b", "public", "v_sb", " SELECT users.id\n   FROM public.users;"},
    {"view", "", "public", "v_lock", " SELECT users.id\n   FROM public.users\n FOR UPDATE;"},
    {"view", "", "public", "v_loop1", " SELECT v_loop2.id\n   FROM public.v_loop2;"},
    {"view", "", "public", "v_loop2", " SELECT v_loop1.id\n   FROM public.v_loop1;"},
    {"view", "", "public", "v_shadowed", " SELECT users.id\n   FROM public.users;"},
};
#define NSESSION ((int)(sizeof session_rows / sizeof session_rows[0]))

static catalog_t g_branch, g_main;

/* The session rows, with the branch row replaced for main. */
static bool load_catalog(catalog_t *cat, bool main)
{
    const char *rows[NSESSION][5];
    memcpy(rows, session_rows, sizeof session_rows);
    if (main) {
        rows[0][1] = "0";
        rows[0][2] = "main";
        rows[0][3] = "0";
    }
    return catalog_load(cat, NSESSION, 5, &rows[0][0]);
}

static void setup(void)
{
    cr_assert(load_catalog(&g_branch, false));
    cr_assert(load_catalog(&g_main, true));
}

static void teardown(void)
{
    catalog_free(&g_branch);
    catalog_free(&g_main);
}

TestSuite(rewrite, .init = setup, .fini = teardown);

typedef enum {
    BR,         /* on branch feature/x */
    MAIN,       /* on main */
    BR_NOCAT,   /* on a branch, catalog not loaded yet */
    MAIN_NOCAT, /* on main, catalog not loaded yet */
    ASOF_BR,    /* epoch.as_of a branch ref: read-only */
    ASOF_MAIN,  /* epoch.as_of a main ref: read-only, branch id 0 */
} sess_t;

static rw_session_t session(sess_t k)
{
    switch (k) {
    case BR:
        return (rw_session_t){.cat = &g_branch, .on_branch = true};
    case MAIN:
        return (rw_session_t){.cat = &g_main, .on_branch = false};
    case BR_NOCAT:
        return (rw_session_t){.cat = NULL, .on_branch = true};
    case MAIN_NOCAT:
        return (rw_session_t){.cat = NULL, .on_branch = false};
    case ASOF_BR:
        return (rw_session_t){.cat = &g_branch, .on_branch = true, .read_only = true};
    case ASOF_MAIN:
        return (rw_session_t){.cat = &g_main, .on_branch = false, .read_only = true};
    }
    return (rw_session_t){0};
}

/* Rewrite a private copy of exactly strlen+1 bytes, so ASan catches any
 * read past the terminating NUL. */
static rw_action_t rw(sess_t k, const char *sql, rw_result_t *out)
{
    rw_session_t s = session(k);
    char *copy = strdup(sql);
    cr_assert_not_null(copy);
    rw_action_t a = rewrite_statement(&s, copy, out);
    free(copy);
    return a;
}

/* Sorted ids of the overlays in sql: "1 2 2", "" for none. */
static void overlay_ids(const char *sql, char *buf, size_t cap)
{
    static const char head[] = "FROM epoch.\"dv_";
    static const char tail[] = "\" WHERE _epoch_branch = ";
    int ids[512], n = 0;
    for (const char *p = sql; p && (p = strstr(p, head)) != NULL; p++) {
        char *end = NULL;
        long id = strtol(p + sizeof head - 1, &end, 10);
        if (end && strncmp(end, "\" _dw WHERE _epoch_branch = ", 28) == 0) {
            /* a sampled overlay: its delta arm is aliased (tablesample test) */
            if (n < 512)
                ids[n++] = (int)id;
            continue;
        }
        if (end && strncmp(end, tail, sizeof tail - 1) == 0 && n < 512)
            ids[n++] = (int)id;
    }
    /* an overlay at a point: the branch's keys at the point are the CTE
     * _epoch_at, whose first arm reads the table's b_<id> (bk_<id>) */
    static const char at_cte[] = "_epoch_at AS MATERIALIZED (";
    static const char at_b[] = "FROM epoch.\"bk_";
    for (const char *p = sql; p && (p = strstr(p, at_cte)) != NULL; p++) {
        const char *b = strstr(p, at_b);
        if (b && n < 512)
            ids[n++] = (int)strtol(b + sizeof at_b - 1, NULL, 10);
    }
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
            int t = ids[j];
            ids[j] = ids[j - 1];
            ids[j - 1] = t;
        }
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && o + 12 < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, i ? " %d" : "%d", ids[i]);
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void assert_parses(const char *out, const char *in)
{
    PgQueryParseResult pr = pg_query_parse(out);
    cr_expect_null(pr.error, "rewrite of [%s] does not parse: %s\n  output: %s", in,
                   pr.error ? pr.error->message : "", out);
    pg_query_free_parse_result(pr);
}

/* Expect a rewrite with these overlay ids; returns the output (owned by r). */
static const char *expect_rewritten(sess_t k, const char *sql, const char *ids, rw_result_t *r)
{
    rw(k, sql, r);
    cr_assert_eq(r->action, RW_REWRITTEN, "[%s]: action %d, expected RW_REWRITTEN (%s)", sql,
                 r->action, r->message ? r->message : "");
    cr_assert_not_null(r->sql);
    assert_parses(r->sql, sql);
    char got[1024];
    overlay_ids(r->sql, got, sizeof got);
    cr_expect_str_eq(got, ids, "[%s]: overlays of tables {%s}, expected {%s}\n  output: %s", sql,
                     got, ids, r->sql);
    return r->sql;
}

static void expect_action(sess_t k, const char *sql, rw_action_t action)
{
    rw_result_t r;
    rw(k, sql, &r);
    cr_expect_eq(r.action, action, "[%s]: action %d, expected %d (%s)", sql, r.action, action,
                 r.message ? r.message : (r.sql ? r.sql : ""));
    rewrite_result_free(&r);
}

static void expect_error(sess_t k, const char *sql, const char *sqlstate)
{
    rw_result_t r;
    rw(k, sql, &r);
    cr_expect_eq(r.action, RW_ERROR, "[%s]: action %d, expected RW_ERROR %s", sql, r.action,
                 sqlstate);
    if (r.action == RW_ERROR) {
        cr_expect_str_eq(r.sqlstate, sqlstate, "[%s]: SQLSTATE %s, expected %s (%s)", sql,
                         r.sqlstate, sqlstate, r.message ? r.message : "");
        cr_expect_not_null(r.message, "[%s]: refusal without a message", sql);
    }
    rewrite_result_free(&r);
}

/* ------------------------------------------------------------ corpus */

#define ANYF 0xffu
#define F0 0u
/* the branch id in generated writes: checked once per statement */
/* the write gate of branch 7: table (in public), kind, columns named */
#define LIVE7W(rel, kind, cols)                                                                    \
    "(SELECT epoch._live_write(7, '\"public\".\"" rel "\"'::regclass, '" kind "', " cols "))"
#define FS ((unsigned)RW_F_SCHEMA)
#define FR ((unsigned)RW_F_REFRESH)
#define FSR ((unsigned)(RW_F_SCHEMA | RW_F_REFRESH))
/* the flags this file pins; others (e.g. RW_F_SELECT) are the cache's business */
#define FLAGS(r) ((r).flags & FSR)

typedef struct rw_case {
    sess_t s;
    const char *sql;
    rw_action_t act;
    const char *ids;   /* RW_REWRITTEN: sorted overlay ids ("" = none) */
    unsigned flags;    /* exact (RW_F_SCHEMA and RW_F_REFRESH bits), or ANYF */
    const char *state; /* RW_ERROR: SQLSTATE */
    const char *has;   /* in the output SQL / the message / the SET value */
    const char *hasnt; /* not in the output SQL */
    bool is_local, as_of;
    const char *tags; /* RW_REWRITTEN: the command-tag fix-ups (NULL = not checked) */
} rw_case_t;

/* clang-format off */
#define REW(S, SQL, IDS, FL, HAS, HASNT) \
    {S, SQL, RW_REWRITTEN, IDS, FL, NULL, HAS, HASNT, false, false, NULL}
/* a write on a branch: statements into the delta, with their tag fix-ups */
#define WRITE(SQL, IDS, TAGS, HAS, HASNT) \
    {BR, SQL, RW_REWRITTEN, IDS, F0, NULL, HAS, HASNT, false, false, TAGS}
#define WRITE_REF(SQL, IDS, TAGS, HAS, HASNT) \
    {BR, SQL, RW_REWRITTEN, IDS, FS, NULL, HAS, HASNT, false, false, TAGS}
#define FWD(S, SQL, FL) {S, SQL, RW_FORWARD, NULL, FL, NULL, NULL, NULL, false, false, NULL}
#define ERR(S, SQL, STATE, HAS) \
    {S, SQL, RW_ERROR, NULL, ANYF, STATE, HAS, NULL, false, false, NULL}
#define SETB(S, SQL, VALUE, LOCAL, ASOF) \
    {S, SQL, RW_SET_BRANCH, NULL, FSR, NULL, VALUE, NULL, LOCAL, ASOF, NULL}
#define NEED(S, SQL) {S, SQL, RW_NEED_CATALOG, NULL, ANYF, NULL, NULL, NULL, false, false, NULL}
/* clang-format on */

#define REFUSED "is not allowed on branch \"feature/x\""
#define AS_OF_REFUSED "while epoch.as_of is set"

/* FROM, aliases, names */
static const rw_case_t c_tables_in_from_keep_names_and_aliases[] = {
    REW(BR, "SELECT * FROM users", "1", F0, ") AS \"users\"", NULL),
    REW(BR, "SELECT * FROM users u", "1", F0, ") u", "AS \"users\""),
    REW(BR, "SELECT * FROM users AS u", "1", F0, ") AS u", "AS \"users\""),
    REW(BR, "SELECT a, b FROM users AS u(a, b, c)", "1", F0, ") AS u(a, b, c)", "AS \"users\""),
    REW(BR, "SELECT * FROM users \"U\"", "1", F0, ") \"U\"", "AS \"users\""),
    REW(BR, "SELECT u.name FROM public.users u", "1", F0, ") u", "public.users"),
    REW(BR, "SELECT * FROM public.users", "1", F0, ") AS \"users\"", "public.users"),
    REW(BR, "SELECT * FROM \"public\".\"users\"", "1", F0, ") AS \"users\"", NULL),
    REW(BR, "SELECT * FROM Public.USERS", "1", F0, ") AS \"users\"", "USERS"),
    REW(BR, "SELECT * FROM public . users", "1", F0, ") AS \"users\"", NULL),
    REW(BR, "SELECT * FROM public /* dot */ . \"users\"", "1", F0, ") AS \"users\"", "/* dot */"),
    FWD(BR, "SELECT * FROM \"USERS\"", F0),
    FWD(BR, "SELECT * FROM \"PUBLIC\".users", F0),
    REW(BR, "SELECT * FROM \"Users\"", "3", F0, ") AS \"Users\"", NULL),
    REW(BR, "SELECT \"Name\" FROM \"Users\" WHERE id = 1", "3", F0, "_b.\"Name\"", NULL),
    REW(BR, "SELECT * FROM \"my table\"", "4", F0, ") AS \"my table\"", NULL),
    REW(BR, "SELECT t.k FROM \"my table\" t", "4", F0, "\"public\".\"my table\" _b", NULL),
    REW(BR, "SELECT * FROM \"we\"\"ird\"", "5", F0, ") AS \"we\"\"ird\"", NULL),
    REW(BR, "SELECT * FROM public.\"we\"\"ird\" w", "5", F0, "_b.\"a\"\"b\"", NULL),
    REW(BR, "SELECT * FROM line_items", "8", F0,
        "_q.\"order_id\" = _p.\"order_id\" AND _q.\"line_no\" = _p.\"line_no\"", NULL),
    REW(BR, "SELECT * FROM users\tWHERE id = 1", "1", F0, "\tWHERE id = 1", NULL),
    REW(BR, "SELECT *\nFROM\n  users\nWHERE id = 1", "1", F0, "\nWHERE id = 1", NULL),
    REW(BR, "select * from USERS where ID = 1", "1", F0, "select * from (SELECT", NULL),
    REW(BR, "SELECT * FROM users;", "1", F0, "AS \"users\";", NULL),
    REW(BR, "SELECT * FROM users WHERE id = $1", "1", F0, "WHERE id = $1", NULL),
    REW(BR, "SELECT max(name) FROM users", "1", F0, NULL, NULL),
    REW(BR, "SELECT users FROM users", "1", F0, "SELECT users FROM (SELECT", NULL),
    REW(BR, "SELECT users.name FROM users", "1", F0, NULL, NULL),
    REW(BR, "SELECT DISTINCT ON (id) * FROM users ORDER BY id", "1", F0, NULL, NULL),
    REW(BR, "SELECT row_number() OVER (ORDER BY id) FROM users", "1", F0, NULL, NULL),
    REW(BR, "SELECT * FROM users LIMIT 10 OFFSET 5", "1", F0, NULL, NULL),
    REW(BR, "SELECT * FROM users ORDER BY name NULLS LAST FETCH FIRST 3 ROWS ONLY", "1", F0,
        "ROWS ONLY", NULL),
    REW(BR, "SELECT * FROM users a JOIN users b ON a.id = b.id", "1 1", F0, NULL, NULL),
};

/* ONLY and TABLE */
static const rw_case_t c_only_and_table_command_are_spliced[] = {
    REW(BR, "SELECT * FROM ONLY users", "1", F0, "FROM (SELECT", "ONLY"),
    REW(BR, "SELECT * FROM ONLY users u", "1", F0, ") u", "ONLY"),
    REW(BR, "SELECT * FROM only public.users", "1", F0, ") AS \"users\"", "only"),
    REW(BR, "SELECT * FROM ONLY \"Users\" AS x", "3", F0, ") AS x", "ONLY"),
    REW(BR, "TABLE users", "1", F0, "SELECT * FROM (SELECT", "TABLE"),
    REW(BR, "TABLE ONLY users", "1", F0, "SELECT * FROM (SELECT", "ONLY"),
    REW(BR, "table   public.users", "1", F0, "SELECT * FROM (SELECT", "table"),
    REW(BR, "  TABLE users", "1", F0, "  SELECT * FROM (SELECT", NULL),
    REW(BR, "/* c */ TABLE users", "1", F0, "/* c */ SELECT * FROM (SELECT", NULL),
    FWD(BR, "TABLE notrack", F0),
};

/* untracked and catalog tables */
static const rw_case_t c_untracked_and_catalog_tables_pass_through[] = {
    FWD(BR, "SELECT * FROM notrack", F0),
    FWD(BR, "SELECT * FROM public.notrack n", F0),
    FWD(BR, "SELECT * FROM pg_class", F0),
    FWD(BR, "SELECT * FROM pg_catalog.pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace",
        F0),
    FWD(BR, "SELECT * FROM information_schema.tables WHERE table_name = 'users'", F0),
    FWD(BR, "SELECT column_name FROM information_schema.columns", F0),
    FWD(BR, "SELECT * FROM pg_stat_activity", F0),
    FWD(BR, "SELECT 1", F0),
    FWD(BR, "SELECT now(), current_user", F0),
    FWD(BR, "VALUES (1), (2)", F0),
};

/* search path */
static const rw_case_t c_unqualified_names_follow_the_search_path[] = {
    REW(BR, "SELECT * FROM products", "6", F0, "\"app\".\"products\" _b", NULL),
    REW(BR, "SELECT * FROM app.products", "6", F0, ") AS \"products\"", NULL),
    FWD(BR, "SELECT * FROM public.products", F0),
    FWD(BR, "SELECT * FROM accounts", F0),
    REW(BR, "SELECT * FROM public.accounts", "7", F0, "\"public\".\"accounts\" _b", NULL),
    FWD(BR, "SELECT * FROM app.accounts", F0),
    FWD(BR, "SELECT * FROM stats", F0),
    REW(BR, "SELECT * FROM other.stats", "9", F0, "\"other\".\"stats\" _b", NULL),
    REW(BR, "SELECT * FROM accounts a JOIN public.accounts b USING (id)", "7", F0,
        "FROM accounts a JOIN (SELECT", NULL),
};

/* joins */
static const rw_case_t c_every_join_kind_is_rewritten[] = {
    REW(BR, "SELECT * FROM users JOIN orders ON orders.user_id = users.id", "1 2", F0,
        "AS \"orders\" ON orders.user_id = users.id", NULL),
    REW(BR, "SELECT * FROM users u INNER JOIN orders o ON o.user_id = u.id", "1 2", F0,
        ") u INNER JOIN (SELECT", NULL),
    REW(BR, "SELECT * FROM users u LEFT JOIN orders o ON o.user_id = u.id", "1 2", F0, NULL, NULL),
    REW(BR, "SELECT * FROM users u LEFT OUTER JOIN orders o ON o.user_id = u.id", "1 2", F0, NULL,
        NULL),
    REW(BR, "SELECT * FROM users u RIGHT JOIN orders o ON o.user_id = u.id", "1 2", F0, NULL, NULL),
    REW(BR, "SELECT * FROM users u RIGHT OUTER JOIN orders o ON o.user_id = u.id", "1 2", F0, NULL,
        NULL),
    REW(BR, "SELECT * FROM users u FULL JOIN orders o ON o.user_id = u.id", "1 2", F0, NULL, NULL),
    REW(BR, "SELECT * FROM users u FULL OUTER JOIN orders o ON o.user_id = u.id", "1 2", F0, NULL,
        NULL),
    REW(BR, "SELECT * FROM users CROSS JOIN orders", "1 2", F0, "AS \"users\" CROSS JOIN (SELECT",
        NULL),
    REW(BR, "SELECT * FROM users NATURAL JOIN \"Users\"", "1 3", F0, "NATURAL JOIN (SELECT", NULL),
    REW(BR, "SELECT * FROM users NATURAL LEFT JOIN orders", "1 2", F0, NULL, NULL),
    REW(BR, "SELECT * FROM users JOIN \"Users\" USING (id)", "1 3", F0, "USING (id)", NULL),
    REW(BR, "SELECT * FROM users u JOIN orders o USING (id) AS j", "1 2", F0, "USING (id) AS j",
        NULL),
    REW(BR,
        "SELECT * FROM (users u JOIN orders o ON u.id = o.user_id) JOIN line_items l ON "
        "l.order_id = o.id",
        "1 2 8", F0, "FROM ((SELECT", NULL),
    REW(BR, "SELECT * FROM users, orders, notrack", "1 2", F0, "AS \"orders\", notrack", NULL),
    REW(BR, "SELECT * FROM users u JOIN notrack n ON n.id = u.id", "1", F0, "JOIN notrack n", NULL),
    REW(BR, "SELECT * FROM users JOIN orders ON true JOIN \"Users\" ON true JOIN products ON true",
        "1 2 3 6", F0, NULL, NULL),
};

/* subqueries */
static const rw_case_t c_subqueries_anywhere_are_rewritten[] = {
    REW(BR, "SELECT * FROM (SELECT * FROM users) s", "1", F0, "AS \"users\") s", NULL),
    REW(BR, "SELECT * FROM (SELECT id FROM users WHERE id > 1) AS s(x)", "1", F0, ") AS s(x)",
        NULL),
    REW(BR, "SELECT * FROM (SELECT * FROM (SELECT * FROM users) a) b", "1", F0, NULL, NULL),
    REW(BR, "SELECT * FROM users WHERE id IN (SELECT user_id FROM orders)", "1 2", F0, NULL, NULL),
    REW(BR, "SELECT * FROM users WHERE id NOT IN (SELECT user_id FROM orders)", "1 2", F0, NULL,
        NULL),
    REW(BR, "SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id)",
        "1 2", F0, NULL, NULL),
    REW(BR, "SELECT * FROM users u WHERE NOT EXISTS (SELECT FROM orders o WHERE o.user_id = u.id)",
        "1 2", F0, NULL, NULL),
    REW(BR, "SELECT * FROM users WHERE id = ANY (SELECT user_id FROM orders)", "1 2", F0, NULL,
        NULL),
    REW(BR, "SELECT * FROM users WHERE id > ALL (SELECT user_id FROM orders)", "1 2", F0, NULL,
        NULL),
    REW(BR, "SELECT * FROM users WHERE id = SOME (SELECT user_id FROM orders)", "1 2", F0, NULL,
        NULL),
    REW(BR, "SELECT (SELECT count(*) FROM orders) AS n", "2", F0, NULL, NULL),
    REW(BR, "SELECT u.id, (SELECT max(total) FROM orders o WHERE o.user_id = u.id) FROM users u",
        "1 2", F0, NULL, NULL),
    REW(BR,
        "SELECT name, count(*) FROM users GROUP BY name HAVING count(*) > (SELECT count(*) FROM "
        "orders)",
        "1 2", F0, NULL, NULL),
    REW(BR, "SELECT * FROM users ORDER BY (SELECT 1 FROM orders LIMIT 1)", "1 2", F0, NULL, NULL),
    REW(BR, "SELECT CASE WHEN EXISTS (SELECT 1 FROM orders) THEN 1 END", "2", F0, NULL, NULL),
    REW(BR, "SELECT coalesce((SELECT name FROM users LIMIT 1), 'x')", "1", F0, NULL, NULL),
    REW(BR, "SELECT ARRAY(SELECT id FROM users)", "1", F0, NULL, NULL),
    REW(BR, "SELECT * FROM users WHERE (id, name) IN (SELECT id, name FROM users)", "1 1", F0, NULL,
        NULL),
    REW(BR, "SELECT * FROM notrack n JOIN orders o ON o.id IN (SELECT id FROM users)", "1 2", F0,
        NULL, NULL),
    REW(BR, "SELECT * FROM generate_series(1, (SELECT max(id) FROM users)) g", "1", F0, NULL, NULL),
    REW(BR, "SELECT * FROM notrack LIMIT (SELECT count(*) FROM users)", "1", F0, NULL, NULL),
    REW(BR,
        "SELECT * FROM users WHERE id IN (SELECT id FROM users WHERE id IN (SELECT id FROM "
        "users))",
        "1 1 1", F0, NULL, NULL),
};

/* LATERAL */
static const rw_case_t c_lateral_items_are_rewritten[] = {
    REW(BR, "SELECT * FROM users u, LATERAL (SELECT * FROM orders o WHERE o.user_id = u.id) x",
        "1 2", F0, ", LATERAL (SELECT * FROM (SELECT", NULL),
    REW(BR,
        "SELECT * FROM users u LEFT JOIN LATERAL (SELECT * FROM orders o WHERE o.user_id = u.id "
        "LIMIT 1) x ON true",
        "1 2", F0, NULL, NULL),
    REW(BR, "SELECT * FROM users u CROSS JOIN LATERAL generate_series(1, u.id) g", "1", F0,
        "CROSS JOIN LATERAL generate_series(1, u.id) g", NULL),
    REW(BR, "SELECT * FROM users u, LATERAL unnest(ARRAY[u.id]) x", "1", F0, NULL, NULL),
};

/* set operations and VALUES */
static const rw_case_t c_set_operations_and_values_are_rewritten[] = {
    REW(BR, "SELECT id FROM users UNION SELECT id FROM orders", "1 2", F0, NULL, NULL),
    REW(BR, "SELECT id FROM users UNION ALL SELECT id FROM orders UNION ALL SELECT id FROM notrack",
        "1 2", F0, "SELECT id FROM notrack", NULL),
    REW(BR, "SELECT id FROM users INTERSECT SELECT user_id FROM orders", "1 2", F0, NULL, NULL),
    REW(BR, "SELECT id FROM users EXCEPT ALL SELECT user_id FROM orders", "1 2", F0, NULL, NULL),
    REW(BR, "(SELECT id FROM users ORDER BY id LIMIT 1) UNION (SELECT id FROM orders)", "1 2", F0,
        NULL, NULL),
    REW(BR, "SELECT id FROM users UNION SELECT id FROM users", "1 1", F0, NULL, NULL),
    REW(BR, "SELECT * FROM (VALUES (1, 'a')) v(id, name) JOIN users USING (id)", "1", F0, NULL,
        NULL),
    REW(BR, "VALUES ((SELECT count(*) FROM users))", "1", F0, NULL, NULL),
    REW(BR, "SELECT * FROM users WHERE id IN (VALUES (1), (2))", "1", F0, NULL, NULL),
};

/* functions in FROM */
static const rw_case_t c_functions_in_from_are_left_alone[] = {
    FWD(BR, "SELECT * FROM generate_series(1, 3)", F0),
    FWD(BR, "SELECT * FROM unnest(ARRAY[1,2]) WITH ORDINALITY AS t(x, n)", F0),
    FWD(BR, "SELECT * FROM ROWS FROM (generate_series(1,2), generate_series(1,3))", F0),
    FWD(BR, "SELECT * FROM json_to_record('{\"a\":1}') AS x(a int)", F0),
    REW(BR, "SELECT * FROM users u JOIN generate_series(1, 3) g ON g = u.id", "1", F0, NULL, NULL),
    FWD(BR, "SELECT * FROM epoch.branches", FS),
    FWD(BR, "SELECT * FROM epoch.diff('main', 'feature/x')", FSR),
    FWD(BR, "SELECT * FROM epoch.d_1", FS),
    FWD(BR, "SELECT pg_catalog.now()", F0),
};

/* CTEs */
static const rw_case_t c_cte_names_shadow_tables[] = {
    REW(BR, "WITH x AS (SELECT * FROM users) SELECT * FROM x", "1", F0, ") SELECT * FROM x", NULL),
    FWD(BR, "WITH users AS (SELECT 1 AS id) SELECT * FROM users", F0),
    REW(BR, "WITH users AS (SELECT * FROM users WHERE id > 1) SELECT * FROM users", "1", F0,
        "WHERE id > 1) SELECT * FROM users", NULL),
    REW(BR,
        "WITH users AS (SELECT * FROM users) SELECT * FROM users u JOIN orders o ON o.user_id = "
        "u.id",
        "1 2", F0, "SELECT * FROM users u JOIN (SELECT", NULL),
    REW(BR, "WITH users AS (SELECT 1 AS id) SELECT * FROM public.users", "1", F0,
        "WITH users AS (SELECT 1 AS id) SELECT * FROM (SELECT", NULL),
    REW(BR,
        "WITH a AS (SELECT * FROM users), b AS (SELECT * FROM a JOIN orders ON orders.user_id = "
        "a.id) SELECT * FROM b",
        "1 2", F0, "FROM a JOIN (SELECT", NULL),
    REW(BR, "WITH a AS (SELECT * FROM orders), orders AS (SELECT * FROM a) SELECT * FROM orders",
        "2", F0, NULL, NULL),
    REW(BR,
        "WITH orders AS (SELECT * FROM users), users AS (SELECT * FROM orders) SELECT * FROM users",
        "1", F0, "users AS (SELECT * FROM orders) SELECT * FROM users", NULL),
    FWD(BR,
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * "
        "FROM r",
        F0),
    REW(BR,
        "WITH RECURSIVE t AS (SELECT id FROM users WHERE id = 1 UNION ALL SELECT o.id FROM orders "
        "o JOIN t ON o.user_id = t.id) SELECT * FROM t",
        "1 2", F0, "JOIN t ON", NULL),
    FWD(BR,
        "WITH RECURSIVE users AS (SELECT 1 AS id UNION ALL SELECT id + 1 FROM users WHERE id < 3) "
        "SELECT * FROM users",
        F0),
    FWD(BR, "WITH RECURSIVE a AS (SELECT * FROM b), b AS (SELECT 1 AS id) SELECT * FROM a", F0),
    REW(BR, "SELECT * FROM (WITH users AS (SELECT 1 AS id) SELECT * FROM users) s, users", "1", F0,
        "SELECT * FROM users) s, (SELECT", NULL),
    REW(BR,
        "SELECT * FROM users WHERE id IN (WITH o AS (SELECT user_id FROM orders) SELECT user_id "
        "FROM o)",
        "1 2", F0, NULL, NULL),
    REW(BR,
        "WITH x AS (SELECT 1) SELECT * FROM (WITH y AS (SELECT * FROM x) SELECT * FROM y, users) z",
        "1", F0, NULL, NULL),
    REW(BR, "WITH x AS (WITH users AS (SELECT 2 AS id) SELECT * FROM users) SELECT * FROM x, users",
        "1", F0, "SELECT * FROM users) SELECT * FROM x, (SELECT", NULL),
    REW(BR, "WITH x AS MATERIALIZED (SELECT * FROM users) SELECT * FROM x", "1", F0, NULL, NULL),
    REW(BR, "WITH x AS NOT MATERIALIZED (SELECT * FROM users) SELECT * FROM x", "1", F0, NULL,
        NULL),
    REW(BR, "WITH x AS (SELECT * FROM users) SELECT * FROM x UNION SELECT * FROM users", "1 1", F0,
        NULL, NULL),
    REW(BR, "WITH \"Users\" AS (SELECT 1 AS id) SELECT * FROM \"Users\", users", "1", F0,
        "SELECT * FROM \"Users\", (SELECT", NULL),
    FWD(BR, "WITH \"users\" AS (SELECT 1 AS id) SELECT * FROM users", F0),
    REW(BR, "WITH Users AS (SELECT 1 AS id) SELECT * FROM \"Users\"", "3", F0, NULL, NULL),
    REW(BR,
        "WITH users AS (SELECT 1 AS id) SELECT * FROM orders WHERE user_id IN (SELECT id FROM "
        "users)",
        "2", F0, "(SELECT id FROM users)", NULL),
    FWD(BR, "WITH users AS (SELECT 1 AS id) SELECT * FROM (SELECT * FROM users) s", F0),
    REW(BR, "WITH c(a) AS (SELECT id FROM users) SELECT a FROM c", "1", F0, NULL, NULL),
};

/* "@ref" on a branch */
static const rw_case_t c_refs_on_a_branch[] = {
    REW(BR, "SELECT * FROM \"@main\".users", "", FS, "SELECT * FROM \"public\".\"users\"", "@"),
    REW(BR, "SELECT * FROM users u JOIN \"@main\".users m USING (id)", "1", FS,
        "JOIN \"public\".\"users\" m USING (id)", "\"@main\""),
    REW(BR, "SELECT * FROM \"@feature/y\".users", "1", FS, "epoch._ref_read('feature/y', false)",
        "\"@"),
    REW(BR, "SELECT * FROM \"public@feature/y\".users b", "1", FS,
        "_epoch_seq + 0 > (SELECT base_seq FROM _epoch_ref)", "\"public@"),
    REW(BR, "SELECT * FROM \"other@feature/y\".stats", "9", FS, "\"other\".\"stats\" _b", NULL),
    ERR(BR, "SELECT * FROM \"@feature/y\".nosuch", "42P01", "not tracked"),
    REW(BR, "SELECT * FROM \"@main\".notrack", "", FS, "FROM \"notrack\"", "@"),
    REW(BR, "SELECT * FROM \"app@main\".accounts", "", FS, "FROM \"app\".\"accounts\"", "@"),
    REW(BR, "SELECT * FROM \"@main\".accounts", "", FS, "FROM \"accounts\"", "@"),
    REW(BR, "WITH x AS (SELECT * FROM \"@main\".users) SELECT * FROM x", "", FS,
        "(SELECT * FROM \"public\".\"users\")", NULL),
    REW(BR, "SELECT * FROM users EXCEPT SELECT * FROM \"@main\".users", "1", FS, NULL, NULL),
    REW(BR, "SELECT * FROM \"@main\".users FOR UPDATE", "", FS, "\"public\".\"users\" FOR UPDATE",
        NULL),
    ERR(BR, "INSERT INTO \"@feature/y\".users VALUES (1)", "0A000", NULL),
};

/* main sessions: only "@ref" is rewritten */
static const rw_case_t c_main_session_rewrites_only_refs[] = {
    FWD(MAIN, "SELECT * FROM users", F0),
    FWD(MAIN, "SELECT * FROM users u JOIN orders o ON o.user_id = u.id", F0),
    FWD(MAIN, "INSERT INTO users VALUES (1, 'a')", F0),
    FWD(MAIN, "UPDATE users SET name = 'x' WHERE id = 1", F0),
    FWD(MAIN, "DELETE FROM users WHERE id = 1", F0),
    FWD(MAIN, "MERGE INTO users u USING orders o ON o.id = u.id WHEN MATCHED THEN DO NOTHING", F0),
    FWD(MAIN, "CREATE TABLE t (a int)", F0),
    FWD(MAIN, "DO $$ BEGIN END $$", F0),
    FWD(MAIN, "CALL do_things(1)", F0),
    FWD(MAIN, "SELECT * INTO t2 FROM users", F0),
    FWD(MAIN, "SELECT * FROM users FOR UPDATE", F0),
    FWD(MAIN, "COPY users FROM STDIN", F0),
    FWD(MAIN, "COPY users TO STDOUT", F0),
    FWD(MAIN, "TABLE users", F0),
    FWD(MAIN, "WITH x AS (DELETE FROM users RETURNING *) SELECT * FROM x", F0),
    REW(MAIN, "SELECT * FROM \"@main\".users", "", FS, "SELECT * FROM \"public\".\"users\"", "@"),
    REW(MAIN, "SELECT * FROM \"@feature/y\".users", "1", FS, ") AS \"users\"", NULL),
    REW(MAIN, "SELECT * FROM users u JOIN \"@feature/y\".users b USING (id)", "1", FS,
        "SELECT * FROM users u JOIN (WITH _epoch_ref", NULL),
    REW(MAIN, "INSERT INTO notrack SELECT id, name FROM \"@feature/y\".users", "1", FS,
        "INSERT INTO notrack SELECT id, name FROM (WITH _epoch_ref", NULL),
    ERR(MAIN, "INSERT INTO \"@feature/y\".users VALUES (1)", "0A000", "read-only"),
    ERR(MAIN, "UPDATE \"@main\".users SET name = 'x'", "0A000", "read-only"),
    REW(MAIN, "DELETE FROM users USING \"@feature/y\".users b WHERE b.id = users.id", "1", FS,
        "DELETE FROM users USING (WITH _epoch_ref", NULL),
    ERR(MAIN, "ALTER TABLE \"@main\".users ADD COLUMN z int", "0A000", "read-only"),
    REW(MAIN, "COPY \"@feature/y\".users TO STDOUT", "1", FS,
        "COPY (SELECT * FROM (WITH _epoch_ref", NULL),
    ERR(MAIN, "COPY \"@feature/y\".users FROM STDIN", "0A000", "read-only"),
    ERR(MAIN, "SELECT * FROM \"@feature/y\".users FOR UPDATE", "0A000", "FOR UPDATE"),
    REW(MAIN, "EXPLAIN SELECT * FROM \"@feature/y\".users", "1", FS, "EXPLAIN SELECT * FROM (",
        NULL),
    ERR(MAIN, "SELECT * FROM \"@feature/y\".nosuch", "42P01", "\"nosuch\""),
    FWD(MAIN, "SELECT '\"@main\".users'", F0),
    FWD(MAIN, "SELECT 1 -- \"@main\".users", F0),
    REW(MAIN, "CREATE VIEW v AS SELECT * FROM \"@feature/y\".users", "1", FS,
        "CREATE VIEW v AS SELECT * FROM (WITH _epoch_ref", NULL),
    REW(MAIN, "SELECT * FROM \"@it's\".users", "1", FS, "epoch._ref_read('it''s', false)", NULL),
    REW(MAIN, "SELECT * FROM \"@a\\b\".users", "1", FS, "epoch._ref_read(E'a\\\\b', false)", NULL),
    SETB(MAIN, "SET epoch.branch = 'feature/x'", "feature/x", false, false),
    FWD(MAIN, "SELECT epoch.commit('m')", FSR),
};

/* EXPLAIN, cursors, prepared statements */
static const rw_case_t c_explain_cursors_and_prepare_are_rewritten[] = {
    REW(BR, "EXPLAIN SELECT * FROM users", "1", F0, "EXPLAIN SELECT * FROM (SELECT", NULL),
    REW(BR, "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM users u JOIN orders o ON o.user_id = u.id",
        "1 2", F0, NULL, NULL),
    ERR(BR, "EXPLAIN ANALYZE DELETE FROM users", "0A000", "DELETE " REFUSED),
    ERR(BR, "EXPLAIN UPDATE users SET name = 'a'", "0A000", "UPDATE " REFUSED),
    REW(BR, "DECLARE c CURSOR FOR SELECT * FROM users", "1", F0, "DECLARE c CURSOR FOR SELECT",
        NULL),
    REW(BR,
        "DECLARE c CURSOR WITH HOLD FOR SELECT * FROM orders o JOIN users u ON u.id = o.user_id",
        "1 2", F0, NULL, NULL),
    REW(BR, "PREPARE q AS SELECT * FROM users WHERE id = $1", "1", F0, "PREPARE q AS SELECT", NULL),
    REW(BR, "PREPARE q(int) AS SELECT * FROM orders WHERE user_id = $1", "2", F0, NULL, NULL),
    ERR(BR, "PREPARE p AS INSERT INTO users VALUES ($1)", "0A000", "INSERT " REFUSED),
    FWD(BR, "EXECUTE q(1)", F0),
    FWD(BR, "DEALLOCATE q", F0),
    FWD(BR, "FETCH 10 FROM c", F0),
    FWD(BR, "CLOSE c", F0),
};

/* COPY */
static const rw_case_t c_copy_to_reads_the_branch_copy_from_stages_rows[] = {
    REW(BR, "COPY users TO STDOUT", "1", F0, "AS \"users\") TO STDOUT", "COPY users"),
    REW(BR, "COPY public.users (id, name) TO STDOUT WITH (FORMAT csv)", "1", F0,
        "COPY (SELECT id, name FROM (SELECT", "public.users"),
    REW(BR, "COPY \"Users\" TO STDOUT", "3", F0, " AS \"Users\") TO STDOUT", NULL),
    REW(BR, "COPY users TO '/tmp/users.csv'", "1", F0, ") TO '/tmp/users.csv'", NULL),
    REW(BR, "COPY users TO STDOUT; SELECT 1", "1", F0, ") TO STDOUT; SELECT 1", NULL),
    FWD(BR, "COPY notrack TO STDOUT", F0),
    REW(BR,
        "COPY (SELECT u.id FROM users u JOIN orders o ON o.user_id = u.id) TO STDOUT WITH CSV "
        "HEADER",
        "1 2", F0, "TO STDOUT WITH CSV HEADER", NULL),
    REW(BR, "COPY users FROM STDIN", "", F0, "COPY pg_temp.\"epoch_copy\" FROM STDIN", "users"),
    REW(BR, "COPY users (id, name) FROM STDIN WITH (FORMAT csv)", "", F0,
        "COPY pg_temp.\"epoch_copy\" (id, name) FROM STDIN WITH (FORMAT csv)", NULL),
    ERR(BR, "COPY users FROM STDIN; SELECT 1", "0A000", "combined with other statements"),
    ERR(BR, "COPY users (nope) FROM STDIN", "42703", "\"nope\""),
    ERR(BR, "COPY notrack FROM STDIN", "0A000", "untracked table \"notrack\""),
    ERR(BR, "COPY (INSERT INTO users VALUES (1) RETURNING *) TO STDOUT", "0A000", "INSERT"),
};

/* writes on a branch */
#define INTO_D1 "INSERT INTO epoch.\"dv_1\" AS \"users\" (\"_epoch_branch\", "
static const rw_case_t c_writes_on_a_branch_go_to_the_delta[] = {
    /* INSERT: a duplicate-key check against the overlay, then an upsert */
    WRITE("INSERT INTO users VALUES (1, 'a')", "1", "",
          INTO_D1 "\"id\", \"name\") SELECT " LIVE7W("users", "insert", "NULL"),
          "INSERT INTO users"),
    WRITE("INSERT INTO users (name, id) VALUES ('a', 1), ('b', 2) RETURNING id, name", "1", "",
          "epoch._duplicate_key('users_pkey', 'id'", "INSERT INTO users"),
    WRITE("INSERT INTO users VALUES (1, 'a') RETURNING *", "1", "",
          "RETURNING \"id\", \"name\", \"email\"", NULL),
    WRITE("INSERT INTO users AS u (id) VALUES (3) RETURNING u.id", "1", "",
          "INSERT INTO epoch.\"dv_1\" AS \"u\"", NULL),
    WRITE("INSERT INTO users SELECT * FROM users ORDER BY id LIMIT 1", "1 1", "", NULL, NULL),
    WRITE_REF("INSERT INTO users SELECT id + 100, name, email FROM \"@main\".users", "1", "",
              "FROM \"public\".\"users\") AS _v", NULL),
    WRITE("INSERT INTO users (id) SELECT generate_series(1, 3)", "1", "", NULL, NULL),
    WRITE("INSERT INTO users VALUES (1) ON CONFLICT (id) DO NOTHING", "1", "",
          "IS NOT NULL AND NOT (SELECT true FROM (SELECT", "_duplicate_key"),
    WRITE("INSERT INTO users VALUES (1) ON CONFLICT DO NOTHING", "1", "", NULL, "_duplicate_key"),
    WRITE("INSERT INTO users VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET name = excluded.name "
          "|| users.name RETURNING *",
          "1", "", "\"_epoch_present\"", NULL),
    WRITE("INSERT INTO users VALUES (1, 'a') ON CONFLICT ON CONSTRAINT users_pkey DO UPDATE SET "
          "name = 'z' WHERE users.name IS NULL",
          "1", "", "OR ( users.name IS NULL)", NULL),
    WRITE("INSERT INTO orders (user_id, total) VALUES (1, 9.5)", "", "",
          "INSERT INTO epoch.\"dv_2\" AS \"orders\"", "_epoch_dup AS"),
    WRITE("INSERT INTO orders VALUES (DEFAULT, 1, 2)", "2", "",
          "(VALUES ((nextval('orders_id_seq'::regclass)), 1, 2))", "DEFAULT"),
    WRITE("INSERT INTO orders DEFAULT VALUES", "", "",
          "(\"_epoch_branch\") SELECT " LIVE7W("orders", "insert", "NULL"), NULL),
    WRITE("INSERT INTO line_items VALUES (1, 1, 5)", "8", "",
          "_duplicate_key('line_items_pkey', 'order_id, line_no'", NULL),
    WRITE("INSERT INTO \"we\"\"ird\" VALUES (1, 'x') RETURNING \"a\"\"b\"", "5", "",
          "_duplicate_key('we\"ird_pkey'", NULL),
    WRITE("INSERT INTO \"my table\" VALUES (1), (2) ON CONFLICT DO NOTHING RETURNING k", "4", "",
          NULL, NULL),
    /* OVERRIDING … VALUE: no identity column here, so no effect */
    WRITE("INSERT INTO users OVERRIDING SYSTEM VALUE VALUES (1)", "1", "",
          INTO_D1 "\"id\") SELECT " LIVE7W("users", "insert", "NULL"), "OVERRIDING"),
    WRITE("INSERT INTO users (id, name) OVERRIDING USER VALUE SELECT 1, 'a'", "1", "",
          "FROM (SELECT 1, 'a') AS _v", "OVERRIDING"),
    /* UPDATE: the changed rows, read through the overlay, upserted */
    WRITE("UPDATE users SET name = 'x' WHERE id = 1", "1", "U",
          INTO_D1 "\"id\", \"name\", \"email\") SELECT " LIVE7W(
              "users", "update", "ARRAY['name']::text[]") ", \"users\".\"id\", ( 'x' ), "
                                                          "\"users\".\"email\" FROM (SELECT",
          "UPDATE users"),
    WRITE("UPDATE users SET name = 'x', email = name || '@x' WHERE id = 1 RETURNING *", "1", "U",
          "( name || '@x' )", NULL),
    WRITE("UPDATE users u SET name = o.total::text FROM orders o WHERE o.user_id = u.id", "1 2",
          "U",
          "SELECT DISTINCT ON (\"u\".\"id\") " LIVE7W("users", "update", "ARRAY['name']::text[]"),
          NULL),
    WRITE("UPDATE users SET name = (SELECT max(\"Name\") FROM \"Users\") WHERE id IN (SELECT "
          "user_id FROM orders)",
          /* SET and WHERE appear twice: re-applied on a row changed meanwhile */
          "1 2 2 3 3", "U", "DO UPDATE SET (\"name\", \"_epoch_deleted\") = (SELECT ", NULL),
    WRITE("UPDATE users SET id = id + 10 WHERE id = 1", "1 1", "U", "_epoch_gone", NULL),
    WRITE("UPDATE users SET name = DEFAULT", "1", "U", "(NULL)", "DEFAULT"),
    WRITE("UPDATE ONLY users SET name = 'x'", "1", "U", NULL, "ONLY"),
    WRITE("UPDATE public.users AS u SET name = 'x' WHERE u.id = 2 RETURNING u.*", "1", "U",
          "RETURNING \"u\".\"id\", \"u\".\"name\", \"u\".\"email\"", NULL),
    WRITE("UPDATE users SET name = 'x' /* where */ WHERE id = 1 -- where", "1", "U", NULL, NULL),
    WRITE("UPDATE users SET name = substring(name from 1 for 2) WHERE name IS DISTINCT FROM 'a'",
          "1", "U", NULL, NULL),
    WRITE("UPDATE users SET name = 'where from returning'", "1", "U", "'where from returning'",
          NULL),
    WRITE("UPDATE line_items SET line_no = line_no + 1", "8 8", "U", NULL, NULL),
    WRITE("UPDATE app.products p SET price = 0 WHERE p.id = 1", "6", "U", NULL, NULL),
    WRITE("UPDATE public.accounts SET balance = 0", "7", "U", NULL, NULL),
    /* multiple-column SET: each column gets its item of the row */
    WRITE("UPDATE users SET (name, email) = ('a', 'b') WHERE id = 1", "1", "U",
          LIVE7W("users", "update",
                 "ARRAY['name', 'email']::text[]") ", \"users\".\"id\", ('a'), ( 'b') FROM (SELECT",
          "UPDATE users"),
    WRITE("UPDATE users SET (email, name) = ROW(name, email) WHERE id = 1", "1", "U",
          LIVE7W(
              "users", "update",
              "ARRAY['email', 'name']::text[]") ", \"users\".\"id\", ( email), (name) FROM (SELECT",
          NULL),
    WRITE("UPDATE users SET name = 'x', (email) = ROW('y')", "1", "U",
          "DO UPDATE SET (\"name\", \"email\", \"_epoch_deleted\") = (SELECT ( 'x')::text, "
          "('y')::text, false FROM",
          NULL),
    WRITE("UPDATE users SET (name, email) = (DEFAULT, 'e') WHERE id = 1", "1", "U",
          "\"users\".\"id\", (NULL), ( 'e') FROM", "DEFAULT"),
    WRITE("UPDATE users SET (id, name) = (id + 10, 'k') WHERE id = 1", "1 1", "U", "_epoch_gone",
          NULL),
    /* … and a sub-SELECT gives each column a scalar sub-SELECT of its column
     * (its reads rewritten; SET appears twice: re-applied on a row changed
     * meanwhile) */
    WRITE("UPDATE users SET (name, email) = (SELECT name, email FROM users WHERE id = 2) WHERE "
          "id = 1",
          "1 1 1 1 1", "U", "(SELECT _epoch_m._epoch_c2 FROM  (SELECT name, email FROM (SELECT",
          NULL),
    WRITE("UPDATE users u SET (name, email) = (SELECT o.total::text, 'x' FROM orders o WHERE "
          "o.user_id = u.id)",
          "1 2 2 2 2", "U", "AS _epoch_m (_epoch_c1, _epoch_c2))", NULL),
    WRITE("INSERT INTO users VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET (name, email) = "
          "(excluded.name, 'z')",
          "1", "", "ELSE (excluded.name) END, CASE", NULL),
    /* array element assignment: the array with the element replaced */
    WRITE("UPDATE arrs SET a[1] = 9 WHERE id = 1", "10", "U",
          "FROM (SELECT (\"arrs\".\"a\")::integer[], (1)::integer, ( 9 )::integer) AS _epoch_s "
          "(_epoch_a, _epoch_i, _epoch_v)",
          "UPDATE arrs"),
    WRITE("UPDATE arrs SET (qty, a[id]) = (1, qty) WHERE id = 1", "10", "U",
          "(SELECT (\"arrs\".\"a\")::integer[], (id)::integer, ( qty)::integer)", NULL),
    WRITE("UPDATE arrs SET a [ (SELECT max(id) FROM arrs) ] = 0", "10 10 10", "U", NULL, NULL),
    WRITE("INSERT INTO arrs VALUES (1, '{1}') ON CONFLICT (id) DO UPDATE SET a[2] = excluded.qty",
          "10", "", "(SELECT (\"arrs\".\"a\")::integer[], (2)::integer, ( excluded.qty)::integer)",
          NULL),
    /* DELETE: tombstones */
    WRITE("DELETE FROM users WHERE id = 1", "1", "D",
          INTO_D1 "\"id\", \"name\", \"email\", \"_epoch_deleted\") SELECT " LIVE7W(
              "users", "delete", "NULL"),
          "DELETE"),
    WRITE("DELETE FROM users u USING orders o WHERE o.user_id = u.id RETURNING u.*", "1 2", "D",
          "DO UPDATE SET \"_epoch_deleted\" = true WHERE NOT \"u\".\"_epoch_deleted\" RETURNING",
          NULL),
    WRITE("DELETE FROM line_items WHERE qty = 0 RETURNING order_id, line_no", "8", "D",
          "ON CONFLICT (\"_epoch_branch\", \"order_id\", \"line_no\")", NULL),
    WRITE("DELETE FROM other.stats WHERE day < 10", "9", "D", NULL, NULL),
    WRITE("DELETE FROM users WHERE name = 'using where'", "1", "D", NULL, NULL),
    /* data-modifying CTEs and several statements */
    WRITE("WITH x AS (UPDATE users SET name = 'x' RETURNING *) SELECT * FROM x", "1", "",
          "WITH x AS (" INTO_D1, NULL),
    WRITE("WITH x AS (DELETE FROM users WHERE id = 1 RETURNING id) SELECT count(*) FROM x", "1", "",
          NULL, NULL),
    WRITE("WITH x AS (INSERT INTO orders (user_id) VALUES (1) RETURNING id) SELECT * FROM x", "",
          "", "WITH x AS (WITH _epoch_new", NULL),
    WRITE_REF("WITH src AS (SELECT id, name FROM \"@main\".users) INSERT INTO users (id, name) "
              "SELECT id + 1000, name FROM src",
              "1", "", "WITH src AS (SELECT id, name FROM \"public\".\"users\"), _epoch_new", NULL),
    WRITE("WITH x AS (SELECT 1 AS id) UPDATE users SET name = 'w' FROM x WHERE users.id = x.id",
          "1", "U", "WITH x AS (SELECT 1 AS id) INSERT INTO", NULL),
    WRITE("UPDATE users SET name = 'a'; DELETE FROM orders; SELECT 1", "1 2", "UD", "; SELECT 1",
          NULL),
    WRITE("SELECT 1; UPDATE users SET name = 'a'", "1", "-U", NULL, NULL),
    WRITE("SELECT * FROM (WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d) s", "1", "",
          NULL, NULL),
    /* refused */
    ERR(BR, "INSERT INTO notrack VALUES (1, 'a')", "0A000",
        "writes to untracked table \"notrack\" are not allowed on branch \"feature/x\""),
    ERR(BR, "UPDATE notrack SET name = 'x'", "0A000", "untracked"),
    ERR(BR, "DELETE FROM notrack", "0A000", "untracked"),
    ERR(BR, "UPDATE accounts SET id = 1", "0A000", "untracked table \"accounts\""),
    ERR(BR, "WITH x AS (SELECT 1) INSERT INTO notrack SELECT * FROM x", "0A000", "untracked"),
    ERR(BR, "SELECT 1; UPDATE notrack SET id = 1", "0A000", "untracked"),
    ERR(BR, "UPDATE \"@feature/y\".users SET name = 'x'", "0A000", "read-only"),
    ERR(BR, "INSERT INTO \"@feature/y\".users VALUES (1)", "0A000", "read-only"),
    ERR(BR,
        "MERGE INTO users u USING orders o ON o.id = u.id WHEN MATCHED THEN UPDATE SET name = "
        "'m'",
        "0A000", "MERGE " REFUSED),
    ERR(BR, "UPDATE users SET name = 'x' WHERE CURRENT OF c", "0A000", "WHERE CURRENT OF"),
    ERR(BR, "UPDATE users SET name.first = 'x'", "0A000",
        "assignment to a field of a composite column (SET c.f = …) is not supported"),
    ERR(BR, "UPDATE arrs SET a[1:2] = '{1,2}'", "0A000", "array slice"),
    ERR(BR, "UPDATE arrs SET a[:2] = '{1,2}'", "0A000", "array slice"),
    ERR(BR, "UPDATE arrs SET a[1][2] = 1", "0A000", "multidimensional array"),
    ERR(BR, "UPDATE arrs SET meta['k'] = '1'", "0A000", "column \"meta\" of type jsonb"),
    ERR(BR, "UPDATE arrs SET a[1] = DEFAULT", "0A000", "cannot set an array element to DEFAULT"),
    /* PostgreSQL's own errors for SET lists, with its SQLSTATE and wording */
    ERR(BR, "UPDATE users SET (name, email) = ('a')", "42601",
        "source for a multiple-column UPDATE item must be a sub-SELECT or ROW() expression"),
    ERR(BR, "UPDATE users SET (name, email) = ARRAY(SELECT 'a')", "42601",
        "must be a sub-SELECT or ROW() expression"),
    ERR(BR, "UPDATE users SET (name, email) = ('a', 'b', 'c')", "42601",
        "number of columns does not match number of values"),
    ERR(BR, "UPDATE users SET (name, email) = ROW('a')", "42601", "number of columns"),
    ERR(BR, "UPDATE users SET (name, email) = (SELECT 'a')", "42601", "number of columns"),
    ERR(BR, "UPDATE users SET (name, name) = ('a', 'b')", "42601",
        "multiple assignments to same column \"name\""),
    ERR(BR, "UPDATE users SET name = 'a', (email, name) = ('b', 'c')", "42601",
        "multiple assignments"),
    ERR(BR, "UPDATE arrs SET a = '{1}', a[1] = 2", "42601", "multiple assignments"),
    ERR(BR, "UPDATE arrs SET a[1] = 2, a = '{1}'", "42601", "multiple assignments"),
    ERR(BR, "UPDATE users SET (name, nope) = ('a', 'b')", "42703", "\"nope\""),
    ERR(BR, "INSERT INTO users VALUES (1) ON CONFLICT (id) DO UPDATE SET (name, id) = ('x', 2)",
        "0A000", "primary key column"),
    ERR(BR, "INSERT INTO users VALUES (1) ON CONFLICT (email) DO UPDATE SET name = 'x'", "0A000",
        "must target the primary key"),
    ERR(BR, "INSERT INTO users VALUES (1) ON CONFLICT (name) DO UPDATE SET name = 'x'", "42P10",
        "no unique or exclusion constraint matching"),
    ERR(BR, "INSERT INTO users VALUES (1) ON CONFLICT (email, name) DO NOTHING", "42P10",
        "no unique or exclusion constraint matching"),
    ERR(BR, "INSERT INTO users VALUES (1) ON CONFLICT (id) DO UPDATE SET id = 2", "0A000",
        "primary key column"),
    ERR(BR, "INSERT INTO users VALUES (1, 'a', 'b', 'c')", "42601", "more expressions"),
    ERR(BR, "INSERT INTO users (nope) VALUES (1)", "42703", "\"nope\""),
    ERR(BR, "UPDATE users SET nope = 1", "42703", "\"nope\""),
};

/* stored generated columns (gen.b = a * 2) and GENERATED ALWAYS identity
 * columns (ga.id): generated columns are never written into the delta
 * (which computes them), and PostgreSQL's rules for both are enforced with
 * its SQLSTATE and wording */
#define INTO_D11 "INSERT INTO epoch.\"dv_11\" AS \"gen\" (\"_epoch_branch\", "
#define INTO_D12 "INSERT INTO epoch.\"dv_12\" AS \"ga\" (\"_epoch_branch\", "
static const rw_case_t c_generated_and_identity_columns[] = {
    WRITE(
        "INSERT INTO gen (id, a) VALUES (3, 3) RETURNING *", "11", "",
        INTO_D11 "\"id\", \"a\") SELECT " LIVE7W(
            "gen", "insert", "ARRAY['id', 'a']::text[]") ", _n.\"id\", _n.\"a\" FROM _epoch_new _n",
        "(a * 2)"),
    WRITE("INSERT INTO gen VALUES (3, 3) RETURNING b", "11", "", INTO_D11 "\"id\", \"a\")",
          "_n.\"b\""),
    WRITE("INSERT INTO gen VALUES (3, 3, DEFAULT), (4, 4, DEFAULT)", "11", "",
          "(VALUES (3, 3, (NULL)), (4, 4, (NULL))) AS _v (\"id\", \"a\", \"b\")", "(a * 2)"),
    WRITE("INSERT INTO gen (id, a) SELECT id + 10, a FROM gen", "11 11", "",
          INTO_D11 "\"id\", \"a\") SELECT", "_n.\"b\""),
    WRITE("INSERT INTO gen (id, a) VALUES (2, 5) ON CONFLICT (id) DO UPDATE SET a = EXCLUDED.a + 1 "
          "RETURNING b",
          "11", "",
          "_epoch_new AS MATERIALIZED (SELECT _epoch_g.*, ((a * 2))::integer AS \"b\" FROM "
          "(SELECT _v.\"id\"::integer AS \"id\", _v.\"a\"::integer AS \"a\" FROM",
          "\"b\" = EXCLUDED"),
    WRITE(
        "INSERT INTO gen VALUES (2, 5, DEFAULT) ON CONFLICT (id) DO UPDATE SET b = DEFAULT, a = 1",
        "11", "", ") AS _epoch_g)", "\"b\" = EXCLUDED"),
    WRITE("UPDATE gen SET a = 10 WHERE id = 1 RETURNING *", "11", "U",
          INTO_D11 "\"id\", \"a\") SELECT " LIVE7W(
              "gen", "update", "ARRAY['a']::text[]") ", \"gen\".\"id\", ( 10 ) FROM",
          "\"b\" ="),
    WRITE("UPDATE gen SET b = DEFAULT WHERE id = 1", "11", "U",
          "DO UPDATE SET \"_epoch_deleted\" = false WHERE NOT \"gen\".\"_epoch_deleted\"",
          "(a * 2)"),
    WRITE("UPDATE gen SET (a, b) = (a + 1, DEFAULT)", "11", "U",
          "DO UPDATE SET (\"a\", \"_epoch_deleted\") = (SELECT (a + 1)::integer, false", NULL),
    WRITE("UPDATE gen g SET a = g.a FROM gen o WHERE o.id = g.id", "11 11", "U",
          "DO UPDATE SET \"id\" = EXCLUDED.\"id\", \"a\" = EXCLUDED.\"a\", \"_epoch_deleted\" = "
          "false",
          "\"b\" = EXCLUDED"),
    WRITE("UPDATE gen SET id = id + 10 WHERE id = 1", "11 11", "U",
          "_epoch_gone AS (INSERT INTO epoch.\"dv_11\" (\"_epoch_branch\", \"id\", \"a\", "
          "\"_epoch_deleted\") SELECT " LIVE7W(
              "gen", "update", "ARRAY['id']::text[]") ", _r.\"_epoch_o0\", _r.\"_epoch_o1\", true",
          "_r.\"b\""),
    WRITE("DELETE FROM gen WHERE id = 1", "11", "D",
          INTO_D11 "\"id\", \"a\", \"_epoch_deleted\") SELECT " LIVE7W(
              "gen", "delete", "NULL") ", \"gen\".\"id\", \"gen\".\"a\", true FROM",
          NULL),
    REW(BR, "COPY gen FROM STDIN", "", F0, "COPY pg_temp.\"epoch_copy\" (\"id\", \"a\") FROM STDIN",
        NULL),
    REW(BR, "COPY gen (a, id) FROM STDIN", "", F0, "COPY pg_temp.\"epoch_copy\" (a, id) FROM",
        NULL),
    REW(BR, "COPY gen TO STDOUT", "11", F0, "COPY (SELECT \"id\", \"a\" FROM (SELECT", NULL),
    ERR(BR, "INSERT INTO gen (id, a, b) VALUES (3, 3, 6)", "428C9",
        "cannot insert a non-DEFAULT value into column \"b\""),
    ERR(BR, "INSERT INTO gen VALUES (3, 3, DEFAULT), (4, 4, 8)", "428C9", "column \"b\""),
    ERR(BR, "INSERT INTO gen SELECT * FROM gen", "428C9", "column \"b\""),
    ERR(BR, "INSERT INTO gen (id, a, b) OVERRIDING SYSTEM VALUE VALUES (3, 3, 6)", "428C9",
        "column \"b\""),
    ERR(BR, "UPDATE gen SET b = 5", "428C9", "column \"b\" can only be updated to DEFAULT"),
    ERR(BR, "UPDATE gen SET (a, b) = (1, 2)", "428C9", "column \"b\" can only be updated"),
    ERR(BR, "UPDATE gen SET b = 1, nope = 2", "42703", "\"nope\""),
    ERR(BR, "INSERT INTO gen VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET b = 3", "428C9",
        "column \"b\" can only be updated to DEFAULT"),
    ERR(BR, "COPY gen (id, b) FROM STDIN", "42P10", "column \"b\" is a generated column"),
    /* identity GENERATED ALWAYS */
    WRITE("INSERT INTO ga (name) VALUES ('c') RETURNING *", "", "", INTO_D12 "\"name\") SELECT",
          NULL),
    WRITE("INSERT INTO ga VALUES (DEFAULT, 'c'), (DEFAULT, 'd')", "12", "",
          "(VALUES ((nextval('ga_id_seq'::regclass)), 'c'), ((nextval('ga_id_seq'::regclass)), "
          "'d'))",
          NULL),
    WRITE("INSERT INTO ga (id, name) OVERRIDING SYSTEM VALUE VALUES (101, 'c')", "12", "",
          "FROM (VALUES (101, 'c')) AS _v (\"id\", \"name\")", "OVERRIDING"),
    WRITE("INSERT INTO ga AS g OVERRIDING SYSTEM VALUE SELECT id + 1000, name FROM ga ON CONFLICT "
          "(id) DO NOTHING",
          "12 12", "", "FROM (SELECT id + 1000, name FROM (SELECT", "OVERRIDING"),
    /* OVERRIDING USER VALUE: the given values give way to the sequence */
    WRITE("INSERT INTO ga (id, name) OVERRIDING USER VALUE VALUES (101, 'c'), (DEFAULT, 'd')", "",
          "",
          INTO_D12 "\"name\") SELECT " LIVE7W("ga", "insert",
                                              "ARRAY['id', 'name']::text[]") ", _n.\"name\" FROM",
          "nextval('ga_id_seq'::regclass)), 'd'"),
    WRITE("UPDATE ga SET id = DEFAULT, name = 'x' WHERE id = 1", "12 12", "U", "_epoch_gone", NULL),
    WRITE("UPDATE ga SET name = 'x' WHERE id = 1", "12", "U", NULL, NULL),
    REW(BR, "COPY ga FROM STDIN", "", F0, "COPY pg_temp.\"epoch_copy\" FROM STDIN", NULL),
    ERR(BR, "INSERT INTO ga (id, name) VALUES (100, 'c')", "428C9",
        "cannot insert a non-DEFAULT value into column \"id\""),
    ERR(BR, "INSERT INTO ga VALUES (DEFAULT, 'a'), (7, 'b')", "428C9", "column \"id\""),
    ERR(BR, "INSERT INTO ga SELECT 1, 'a'", "428C9", "column \"id\""),
    ERR(BR, "UPDATE ga SET id = 50 WHERE id = 1", "428C9",
        "column \"id\" can only be updated to DEFAULT"),
    ERR(BR,
        "INSERT INTO ga OVERRIDING SYSTEM VALUE VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET "
        "id = 5",
        "428C9", "column \"id\" can only be updated to DEFAULT"),
    ERR(ASOF_BR, "INSERT INTO ga (id, name) OVERRIDING SYSTEM VALUE VALUES (1, 'a')", "25006",
        NULL),
};

/* DDL, DO, CALL, SELECT INTO on a branch */
static const rw_case_t c_ddl_do_call_select_into_are_refused_on_a_branch[] = {
    ERR(BR, "CREATE TABLE t (a int)", "0A000", "CREATE TABLE " REFUSED),
    ERR(BR, "CREATE TABLE t AS SELECT * FROM users", "0A000", NULL),
    ERR(BR, "CREATE VIEW v AS SELECT * FROM users", "0A000", "CREATE VIEW"),
    ERR(BR, "CREATE INDEX ON users (name)", "0A000", "CREATE INDEX"),
    ERR(BR, "ALTER TABLE users ADD COLUMN z int", "0A000", "ALTER TABLE"),
    ERR(BR, "DROP TABLE users", "0A000", "DROP TABLE"),
    ERR(BR, "TRUNCATE users", "0A000", NULL),
    ERR(BR, "TRUNCATE notrack", "0A000", NULL),
    ERR(BR, "CREATE TEMP TABLE tt (a int)", "0A000", NULL),
    ERR(BR, "GRANT SELECT ON users TO public", "0A000", NULL),
    ERR(BR, "COMMENT ON TABLE users IS 'x'", "0A000", NULL),
    ERR(BR, "LOCK TABLE users", "0A000", NULL),
    ERR(BR, "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", "0A000", NULL),
    ERR(BR, "REFRESH MATERIALIZED VIEW mv", "0A000", NULL),
    ERR(BR, "CREATE SCHEMA s", "0A000", NULL),
    ERR(BR, "CREATE EXTENSION foo", "0A000", NULL),
    ERR(BR, "DO $$ BEGIN DELETE FROM users; END $$", "0A000", "DO " REFUSED),
    ERR(BR, "DO LANGUAGE plpgsql 'BEGIN END'", "0A000", "could change main's data"),
    ERR(BR, "CALL do_things(1)", "0A000", "could change main's data"),
    ERR(BR, "SELECT * INTO new_users FROM users", "0A000", "SELECT ... INTO"),
    ERR(BR, "SELECT * INTO TEMP tmp_users FROM notrack", "0A000", "SELECT ... INTO"),
};

/* row locks */
static const rw_case_t c_row_locks_on_tracked_tables_are_refused[] = {
    ERR(BR, "SELECT * FROM users FOR UPDATE", "0A000", "FOR UPDATE/SHARE"),
    ERR(BR, "SELECT * FROM users FOR SHARE", "0A000", NULL),
    ERR(BR, "SELECT * FROM users u FOR NO KEY UPDATE OF u", "0A000", NULL),
    ERR(BR, "SELECT * FROM users FOR KEY SHARE", "0A000", NULL),
    ERR(BR, "SELECT * FROM users WHERE id = 1 FOR UPDATE SKIP LOCKED", "0A000", NULL),
    ERR(BR, "SELECT * FROM orders o JOIN users u ON u.id = o.user_id FOR UPDATE NOWAIT", "0A000",
        NULL),
    FWD(BR, "SELECT * FROM notrack FOR UPDATE", F0),
    FWD(BR, "WITH users AS (SELECT 1 AS id) SELECT * FROM users FOR UPDATE", F0),
};

/* transactions and harmless statements */
static const rw_case_t c_transaction_and_session_statements_pass_through[] = {
    FWD(BR, "BEGIN", F0),
    FWD(BR, "COMMIT", F0),
    FWD(BR, "ROLLBACK", F0),
    FWD(BR, "START TRANSACTION ISOLATION LEVEL REPEATABLE READ", F0),
    FWD(BR, "SAVEPOINT s1", F0),
    FWD(BR, "RELEASE SAVEPOINT s1", F0),
    FWD(BR, "ROLLBACK TO SAVEPOINT s1", F0),
    FWD(BR, "LISTEN ch", F0),
    FWD(BR, "NOTIFY ch, 'users'", F0),
    FWD(BR, "UNLISTEN *", F0),
    FWD(BR, "SET statement_timeout = 0", F0),
    FWD(BR, "SHOW search_path", F0),
    FWD(BR, "SHOW ALL", F0),
    FWD(BR, "VACUUM users", F0),
    FWD(BR, "ANALYZE users", F0),
    REW(BR, "BEGIN; SELECT * FROM users; COMMIT", "1", F0, "BEGIN; SELECT * FROM (SELECT",
        "; COMMIT;"),
};

/* SET / SHOW / RESET epoch.branch and epoch.as_of */
static const rw_case_t c_set_show_reset_epoch_branch[] = {
    SETB(BR, "SET epoch.branch = 'feature/z'", "feature/z", false, false),
    SETB(BR, "SET LOCAL epoch.branch TO 'x'", "x", true, false),
    SETB(BR, "SET SESSION epoch.branch = 'x'", "x", false, false),
    SETB(BR, "SET epoch.branch TO feature", "feature", false, false),
    SETB(BR, "SET \"epoch.branch\" = 'x'", "x", false, false),
    SETB(BR, "SET epoch.branch = 'it''s'", "it's", false, false),
    SETB(BR, "SET epoch.branch = 'x' -- comment", "x", false, false),
    SETB(BR, "/* c */ SET epoch.branch = 'x';", "x", false, false),
    SETB(BR, "SET epoch.as_of = 'abcd1234'", "abcd1234", false, true),
    SETB(BR, "SET LOCAL epoch.as_of = 'main'", "main", true, true),
    SETB(BR_NOCAT, "SET epoch.branch = 'feature/x'", "feature/x", false, false),
    SETB(MAIN_NOCAT, "SET epoch.branch = 'feature/x'", "feature/x", false, false),
    ERR(BR, "SET epoch.branch = 1", "22023", NULL),
    ERR(BR, "SET epoch.branch = 'a', 'b'", "22023", NULL),
    ERR(BR, "SET epoch.branch = 'a'; SELECT 1", "0A000", "cannot be combined"),
    ERR(BR, "SELECT 1; SET epoch.branch = 'a'", "0A000", "cannot be combined"),
    ERR(MAIN, "BEGIN; SET LOCAL epoch.branch = 'x'; COMMIT", "0A000", "cannot be combined"),
    FWD(BR, "SET epoch.branch = DEFAULT", FR),
    FWD(BR, "RESET epoch.branch", FR),
    FWD(BR, "RESET epoch.as_of", FR),
    REW(BR, "SHOW epoch.branch", "", F0,
        "SELECT coalesce(nullif(current_setting('epoch.branch', true), ''), 'main') AS "
        "\"epoch.branch\"",
        "SHOW"),
    REW(BR, "SHOW epoch.as_of", "", F0, "current_setting('epoch.as_of', true)", "SHOW"),
    REW(MAIN, "SHOW EPOCH.BRANCH", "", F0, "AS \"epoch.branch\"", "SHOW"),
    REW(BR, "SHOW epoch.branch; SELECT * FROM users", "1", F0,
        "AS \"epoch.branch\"; SELECT * FROM (SELECT", NULL),
    FWD(BR, "RESET ALL", FR),
    FWD(MAIN, "DISCARD ALL", FR),
    FWD(BR, "DISCARD PLANS", FR),
    FWD(MAIN, "SET search_path = app, public", FR),
    FWD(BR, "SET LOCAL search_path = app", FR),
    FWD(MAIN, "RESET search_path", FR),
    FWD(BR, "SET epoch.other = 'x'", F0),
};

/* epoch.* calls and named arguments */
static const rw_case_t c_epoch_calls_and_named_arguments[] = {
    FWD(BR, "SELECT epoch.commit('msg')", FSR),
    FWD(BR, "SELECT epoch.track('users')", FSR),
    /* branch_create changes nothing the session reads: no catalog reload */
    REW(BR, "SELECT * FROM epoch.branch_create('x', from => 'main')", "", FS,
        "epoch.branch_create('x', \"from\" => 'main')", NULL),
    REW(BR, "SELECT epoch.merge('feature/x', into => 'main', strategy => 'ours')", "", FSR,
        "\"into\" => 'main', \"strategy\" => 'ours'", NULL),
    FWD(BR, "SELECT epoch.merge('feature/x', \"into\" => 'main')", FSR),
    REW(BR, "SELECT * FROM users u, epoch.branch_create('x', from => 'main') b", "1", FS,
        "\"from\" => 'main') b", NULL),
    REW(BR, "SELECT epoch.branch_create('x', FROM => '=> from')", "", FS, "\"from\" => '=> from'",
        NULL),
};

/* literals, comments, dollar quotes */
static const rw_case_t c_literals_and_comments_are_not_rewritten[] = {
    REW(BR, "SELECT * FROM users WHERE name = 'FROM users'", "1", F0, "= 'FROM users'", NULL),
    REW(BR, "SELECT 'users' FROM users -- users", "1", F0, "SELECT 'users' FROM (SELECT", NULL),
    REW(BR, "SELECT $$ users $$ FROM users /* users */", "1", F0, "AS \"users\" /* users */", NULL),
    FWD(BR, "SELECT $tag$ \"@main\".users $tag$", F0),
    REW(BR, "SELECT e'users\\'s' FROM users", "1", F0, "SELECT e'users\\'s' FROM (SELECT", NULL),
    REW(BR, "SELECT 'it''s users' FROM users", "1", F0, NULL, NULL),
    REW(BR, "SELECT * /* FROM orders */ FROM users -- FROM orders", "1", F0, "-- FROM orders",
        NULL),
    REW(BR, "SELECT * FROM /* nested /* comment */ still */ users", "1", F0,
        "/* nested /* comment */ still */ (SELECT", NULL),
    REW(BR, "SELECT '@main' || name FROM users", "1", F0, "'@main' || name", NULL),
    FWD(BR, "SELECT \"@main\" FROM notrack", F0),
    REW(BR, "SELECT * FROM users WHERE name LIKE '%\"@main\".users%'", "1", F0,
        "LIKE '%\"@main\".users%'", NULL),
    REW(BR, "SELECT $a$ FROM users $a$, $$ $b$ $$ FROM \"my table\"", "4", F0,
        "$a$ FROM users $a$, $$ $b$ $$ FROM (SELECT", NULL),
    REW(BR, "SELECT U&'\\0075sers' FROM users", "1", F0, "U&'\\0075sers'", NULL),
};

/* multi-statement strings */
static const rw_case_t c_multi_statement_strings[] = {
    REW(BR, "SELECT * FROM users; SELECT * FROM orders", "1 2", F0,
        "AS \"users\"; SELECT * FROM (SELECT", NULL),
    REW(BR, "SELECT * FROM users ; -- done", "1", F0, " ; -- done", NULL),
};

/* syntax errors are PostgreSQL's to report */
static const rw_case_t c_syntax_errors_are_forwarded[] = {
    FWD(BR, "SELECT * FROM users WHERE", F0),
    FWD(BR, "SELEC 1", F0),
    FWD(BR, "SELECT * FROM \"unterminated", F0),
    FWD(BR, "", F0),
    FWD(BR, ";", F0),
    FWD(BR, "-- only a comment", F0),
};

/* catalog not loaded yet */
static const rw_case_t c_missing_catalog_is_requested[] = {
    NEED(BR_NOCAT, "SELECT * FROM users"),
    NEED(BR_NOCAT, "SELECT * FROM notrack"),
    NEED(BR_NOCAT, "COPY users TO STDOUT"),
    NEED(BR_NOCAT, "TABLE users"),
    FWD(BR_NOCAT, "SELECT 1", F0),
    FWD(BR_NOCAT, "WITH x AS (SELECT 1) SELECT * FROM x", F0),
    FWD(BR_NOCAT, "SELECT * FROM generate_series(1, 2)", F0),
    NEED(BR_NOCAT, "INSERT INTO users VALUES (1)"),
    NEED(BR_NOCAT, "UPDATE users SET name = 'x'"),
    FWD(MAIN_NOCAT, "SELECT * FROM users", F0),
    FWD(MAIN_NOCAT, "INSERT INTO users VALUES (1)", F0),
    NEED(MAIN_NOCAT, "SELECT * FROM \"@main\".users"),
    NEED(MAIN_NOCAT, "SELECT * FROM \"@feature/y\".users"),
};

/* read-only time travel (epoch.as_of) */
static const rw_case_t c_as_of_is_read_only[] = {
    REW(ASOF_BR, "SELECT * FROM users", "1", F0, NULL, NULL),
    ERR(ASOF_BR, "INSERT INTO users VALUES (1)", "25006", AS_OF_REFUSED),
    ERR(ASOF_BR, "UPDATE users SET name = 'x'", "25006", AS_OF_REFUSED),
    ERR(ASOF_BR, "DELETE FROM users", "25006", AS_OF_REFUSED),
    ERR(ASOF_BR, "MERGE INTO users u USING orders o ON o.id = u.id WHEN MATCHED THEN DELETE",
        "25006", AS_OF_REFUSED),
    ERR(ASOF_BR, "WITH x AS (DELETE FROM users RETURNING *) SELECT * FROM x", "25006",
        AS_OF_REFUSED),
    ERR(ASOF_BR, "COPY users FROM STDIN", "25006", AS_OF_REFUSED),
    ERR(ASOF_BR, "EXPLAIN ANALYZE DELETE FROM users", "25006", AS_OF_REFUSED),
    ERR(ASOF_BR, "INSERT INTO notrack VALUES (1)", "25006", AS_OF_REFUSED),
    FWD(ASOF_MAIN, "SELECT * FROM users", F0),
    ERR(ASOF_MAIN, "INSERT INTO users VALUES (1)", "25006", AS_OF_REFUSED),
    ERR(ASOF_MAIN, "UPDATE users SET name = 'x'", "25006", AS_OF_REFUSED),
    ERR(ASOF_MAIN, "DELETE FROM notrack", "25006", AS_OF_REFUSED),
    ERR(ASOF_MAIN, "MERGE INTO users u USING orders o ON o.id = u.id WHEN MATCHED THEN DELETE",
        "25006", AS_OF_REFUSED),
    ERR(ASOF_MAIN, "COPY users FROM STDIN", "25006", AS_OF_REFUSED),
    ERR(ASOF_MAIN, "CREATE TABLE t (a int)", "0A000", NULL),
    SETB(ASOF_MAIN, "SET epoch.as_of = 'main'", "main", false, true),
};

typedef struct section {
    const char *name;
    const rw_case_t *cases;
    int n;
} section_t;

#define SECTION(a)                                                                                 \
    {                                                                                              \
#a, a, (int)(sizeof a / sizeof a[0])                                                       \
    }
/* views over tracked tables: replaced with their definitions, rewritten */
static const rw_case_t c_views_over_tracked_tables_are_inlined[] = {
    REW(BR, "SELECT * FROM v_users", "1", F0, ") AS \"v_users\"", "FROM v_users"),
    REW(BR, "SELECT * FROM v_users v WHERE v.id = 3", "1", F0, ") v WHERE v.id = 3",
        "AS \"v_users\""),
    REW(BR, "SELECT a FROM v_users AS x (a, b)", "1", F0, ") AS x (a, b)", "AS \"v_users\""),
    REW(BR, "SELECT * FROM public.v_users", "1", F0, ") AS \"v_users\"", "public.v_users"),
    REW(BR, "SELECT * FROM v_users;", "1", F0, "WHERE (users.id < 50)) AS \"v_users\";", ";)"),
    REW(BR, "SELECT uid, uname FROM v_renamed", "1", F0, "users.name AS uname", NULL),
    REW(BR, "SELECT * FROM v_chain", "1", F0, ") AS \"v_users\"\n  WHERE (v_users.id > 10)",
        "public.v_users"),
    REW(BR, "SELECT * FROM v_join", "1 2", F0, "JOIN public.notrack n", "public.users"),
    REW(BR, "SELECT * FROM v_app", "6", F0, ") AS \"v_app\"", NULL),
    REW(BR, "SELECT * FROM app.v_app", "6", F0, ") AS \"v_app\"", NULL),
    FWD(BR, "SELECT * FROM v_other", F0),
    REW(BR, "SELECT * FROM other.v_other", "9", F0, ") AS \"v_other\"", NULL),
    FWD(BR, "SELECT * FROM v_shadowed", F0),
    REW(BR, "SELECT * FROM public.v_shadowed", "1", F0, NULL, NULL),
    REW(BR, "SELECT * FROM v_cte", "2", F0, "WITH users AS", NULL),
    REW(BR, "WITH users AS (SELECT 2 AS id) SELECT * FROM v_users", "1", F0,
        "WITH users AS (SELECT 2 AS id) SELECT * FROM (", NULL),
    FWD(BR, "WITH v_users AS (SELECT 1 AS id) SELECT * FROM v_users", F0),
    REW(BR, "SELECT * FROM users u JOIN v_users v ON v.id = u.id", "1 1", F0, NULL, NULL),
    REW(BR, "SELECT * FROM v_users JOIN orders ON orders.user_id = v_users.id", "1 2", F0,
        "AS \"v_users\" JOIN (SELECT", NULL),
    REW(BR, "SELECT * FROM notrack WHERE id IN (SELECT id FROM v_chain)", "1", F0, NULL, NULL),
    REW(BR, "SELECT (SELECT count(*) FROM v_join), (SELECT count(*) FROM v_app)", "1 2 6", F0, NULL,
        NULL),
    REW(BR, "WITH x AS (SELECT * FROM v_users) SELECT * FROM x", "1", F0, NULL, NULL),
    REW(BR, "SELECT * FROM notrack n, LATERAL (SELECT * FROM v_users v WHERE v.id = n.id) l", "1",
        F0, NULL, NULL),
    REW(BR, "TABLE v_users", "1", F0, "SELECT * FROM (", "TABLE"),
    REW(BR, "SELECT public.v_users.name FROM public.v_users", "1", F0, "SELECT v_users.name",
        "public.v_users"),
    REW(BR, "EXPLAIN SELECT * FROM v_users", "1", F0, "EXPLAIN SELECT * FROM (", NULL),
    REW(BR, "DECLARE c CURSOR FOR SELECT * FROM v_chain", "1", F0, NULL, NULL),
    REW(ASOF_BR, "SELECT * FROM v_users", "1", F0, NULL, NULL),
    REW(BR, "SELECT * FROM v_users WHERE name = $1", "1", F0, "WHERE name = $1", NULL),
    /* views at a ref: their tables at that ref, untracked ones as they are */
    REW(MAIN, "SELECT * FROM \"@feature/y\".v_users", "1", FS,
        "epoch._ref_read('feature/y', false)", NULL),
    REW(MAIN, "SELECT * FROM \"public@feature/y\".v_join", "1 2", FS, "JOIN public.notrack n",
        NULL),
    REW(BR, "SELECT * FROM \"@main\".v_users", "", FS, "FROM \"v_users\"", NULL),
    /* not rewritten: main, COPY (PostgreSQL refuses views), TABLESAMPLE */
    FWD(MAIN, "SELECT * FROM v_users", F0),
    FWD(MAIN, "SELECT * FROM v_join j JOIN users u USING (id)", F0),
    FWD(BR, "COPY v_users TO STDOUT", F0),
    FWD(BR, "SELECT * FROM v_users TABLESAMPLE SYSTEM (10)", F0),
    NEED(BR_NOCAT, "SELECT * FROM v_users"),
    /* refused */
    ERR(BR, "SELECT * FROM v_sb", "0A000", "security_barrier"),
    ERR(BR, "SELECT * FROM users JOIN v_sb USING (id)", "0A000", "security_barrier"),
    ERR(BR, "SELECT * FROM v_loop1", "0A000", "nests views more than"),
    ERR(BR, "SELECT * FROM v_lock", "0A000", "FOR UPDATE"),
    ERR(BR, "SELECT * FROM v_users FOR UPDATE", "0A000", "FOR UPDATE"),
    ERR(BR, "SELECT * FROM v_users FOR SHARE OF v_users", "0A000", "FOR UPDATE"),
    ERR(BR, "UPDATE v_users SET name = 'x'", "0A000", "UPDATE through view \"v_users\""),
    ERR(BR, "INSERT INTO v_chain VALUES (1)", "0A000", "INSERT through view \"v_chain\""),
    ERR(BR, "DELETE FROM public.v_users WHERE id = 1", "0A000", "through view \"v_users\""),
    ERR(BR, "WITH d AS (DELETE FROM v_users RETURNING id) SELECT * FROM d", "0A000",
        "through view \"v_users\""),
    ERR(BR, "MERGE INTO v_users t USING notrack n ON t.id = n.id WHEN MATCHED THEN DELETE", "0A000",
        NULL),
    ERR(BR, "UPDATE v_other SET day = 1", "0A000", "untracked table \"v_other\""),
    ERR(ASOF_BR, "DELETE FROM v_users", "25006", NULL),
    ERR(BR, "CREATE OR REPLACE VIEW v_users AS SELECT 1", "0A000", REFUSED),
};

static const section_t sections[] = {
    SECTION(c_tables_in_from_keep_names_and_aliases),
    SECTION(c_only_and_table_command_are_spliced),
    SECTION(c_untracked_and_catalog_tables_pass_through),
    SECTION(c_unqualified_names_follow_the_search_path),
    SECTION(c_every_join_kind_is_rewritten),
    SECTION(c_subqueries_anywhere_are_rewritten),
    SECTION(c_lateral_items_are_rewritten),
    SECTION(c_set_operations_and_values_are_rewritten),
    SECTION(c_functions_in_from_are_left_alone),
    SECTION(c_cte_names_shadow_tables),
    SECTION(c_refs_on_a_branch),
    SECTION(c_main_session_rewrites_only_refs),
    SECTION(c_explain_cursors_and_prepare_are_rewritten),
    SECTION(c_copy_to_reads_the_branch_copy_from_stages_rows),
    SECTION(c_writes_on_a_branch_go_to_the_delta),
    SECTION(c_generated_and_identity_columns),
    SECTION(c_ddl_do_call_select_into_are_refused_on_a_branch),
    SECTION(c_row_locks_on_tracked_tables_are_refused),
    SECTION(c_transaction_and_session_statements_pass_through),
    SECTION(c_set_show_reset_epoch_branch),
    SECTION(c_epoch_calls_and_named_arguments),
    SECTION(c_literals_and_comments_are_not_rewritten),
    SECTION(c_multi_statement_strings),
    SECTION(c_syntax_errors_are_forwarded),
    SECTION(c_missing_catalog_is_requested),
    SECTION(c_as_of_is_read_only),
    SECTION(c_views_over_tracked_tables_are_inlined),
};
#define NSECTIONS ((int)(sizeof sections / sizeof sections[0]))
static int corpus_size(void)
{
    int n = 0;
    for (int i = 0; i < NSECTIONS; i++)
        n += sections[i].n;
    return n;
}

/* The i-th statement of the whole corpus. */
static const rw_case_t *corpus_case(int i)
{
    for (int k = 0; k < NSECTIONS; k++) {
        if (i < sections[k].n)
            return &sections[k].cases[i];
        i -= sections[k].n;
    }
    return NULL;
}
#define NCORPUS corpus_size()

static void check_case(const rw_case_t *c)
{
    rw_result_t r;
    rw(c->s, c->sql, &r);
    const char *detail = r.message ? r.message : (r.sql ? r.sql : "");
    cr_expect_eq(r.action, c->act, "[%s] (session %d): action %d, expected %d\n  got: %s", c->sql,
                 c->s, r.action, c->act, detail);
    if (c->flags != ANYF)
        cr_expect_eq(FLAGS(r), c->flags, "[%s]: flags %u, expected %u", c->sql, FLAGS(r), c->flags);
    if (r.action != c->act) {
        rewrite_result_free(&r);
        return;
    }
    switch (r.action) {
    case RW_REWRITTEN: {
        cr_assert_not_null(r.sql);
        assert_parses(r.sql, c->sql);
        char ids[1024];
        overlay_ids(r.sql, ids, sizeof ids);
        cr_expect_str_eq(ids, c->ids, "[%s]: overlays of tables {%s}, expected {%s}\n  got: %s",
                         c->sql, ids, c->ids, r.sql);
        /* every overlay is one parenthesised subquery with four arms: the
         * branch's rows, two base arms (gated on main's history) and the
         * history arm */
        cr_expect_eq(count_of(r.sql, " UNION ALL SELECT _b."),
                     2 * count_of(r.sql, "_p._epoch_existed"), "[%s]: malformed overlay", c->sql);
        if (c->has)
            cr_expect(strstr(r.sql, c->has) != NULL, "[%s]: output lacks [%s]\n  got: %s", c->sql,
                      c->has, r.sql);
        if (c->hasnt)
            cr_expect(strstr(r.sql, c->hasnt) == NULL, "[%s]: output has [%s]\n  got: %s", c->sql,
                      c->hasnt, r.sql);
        cr_expect_null(r.message);
        if (c->tags)
            cr_expect_str_eq(r.tags, c->tags, "[%s]: tags [%s], expected [%s]", c->sql, r.tags,
                             c->tags);
        if (r.setup)
            assert_parses(r.setup, c->sql);
        break;
    }
    case RW_ERROR:
        cr_expect_not_null(r.message, "[%s]: refusal without a message", c->sql);
        cr_expect_null(r.sql);
        if (c->state)
            cr_expect_str_eq(r.sqlstate, c->state, "[%s]: SQLSTATE %s, expected %s (%s)", c->sql,
                             r.sqlstate, c->state, detail);
        if (c->has && r.message)
            cr_expect(strstr(r.message, c->has) != NULL, "[%s]: message lacks [%s]: %s", c->sql,
                      c->has, r.message);
        break;
    case RW_SET_BRANCH:
        cr_assert_not_null(r.value);
        cr_expect_str_eq(r.value, c->has, "[%s]: value [%s], expected [%s]", c->sql, r.value,
                         c->has);
        cr_expect_eq(r.is_local, c->is_local, "[%s]: is_local %d", c->sql, r.is_local);
        cr_expect_eq(r.as_of, c->as_of, "[%s]: as_of %d", c->sql, r.as_of);
        cr_expect_null(r.sql);
        break;
    case RW_FORWARD:
    case RW_NEED_CATALOG:
        cr_expect_null(r.sql, "[%s]: %s with output %s", c->sql,
                       r.action == RW_FORWARD ? "RW_FORWARD" : "RW_NEED_CATALOG", r.sql);
        cr_expect_null(r.message);
        break;
    }
    rewrite_result_free(&r);
}

static void check_section(const rw_case_t *cases, int n)
{
    for (int i = 0; i < n; i++)
        check_case(&cases[i]);
}

#define CORPUS_TEST(name)                                                                          \
    Test(rewrite, corpus_##name)                                                                   \
    {                                                                                              \
        check_section(c_##name, (int)(sizeof c_##name / sizeof c_##name[0]));                      \
    }

CORPUS_TEST(tables_in_from_keep_names_and_aliases)
CORPUS_TEST(only_and_table_command_are_spliced)
CORPUS_TEST(untracked_and_catalog_tables_pass_through)
CORPUS_TEST(unqualified_names_follow_the_search_path)
CORPUS_TEST(every_join_kind_is_rewritten)
CORPUS_TEST(subqueries_anywhere_are_rewritten)
CORPUS_TEST(lateral_items_are_rewritten)
CORPUS_TEST(set_operations_and_values_are_rewritten)
CORPUS_TEST(functions_in_from_are_left_alone)
CORPUS_TEST(cte_names_shadow_tables)
CORPUS_TEST(refs_on_a_branch)
CORPUS_TEST(main_session_rewrites_only_refs)
CORPUS_TEST(explain_cursors_and_prepare_are_rewritten)
CORPUS_TEST(copy_to_reads_the_branch_copy_from_stages_rows)
CORPUS_TEST(writes_on_a_branch_go_to_the_delta)
CORPUS_TEST(generated_and_identity_columns)
CORPUS_TEST(ddl_do_call_select_into_are_refused_on_a_branch)
CORPUS_TEST(row_locks_on_tracked_tables_are_refused)
CORPUS_TEST(transaction_and_session_statements_pass_through)
CORPUS_TEST(set_show_reset_epoch_branch)
CORPUS_TEST(epoch_calls_and_named_arguments)
CORPUS_TEST(literals_and_comments_are_not_rewritten)
CORPUS_TEST(multi_statement_strings)
CORPUS_TEST(syntax_errors_are_forwarded)
CORPUS_TEST(missing_catalog_is_requested)
CORPUS_TEST(as_of_is_read_only)
CORPUS_TEST(views_over_tracked_tables_are_inlined)

Test(rewrite, corpus_is_large_enough)
{
    cr_expect_geq(NCORPUS, 170, "corpus has %d statements", NCORPUS);
}

/* ------------------------------------------------------------ exact output */

/* The overlay of public."my table" (k*) for branch expression B, base S,
 * with key conditions P copied from the query's WHERE (P0 = none). The two
 * base arms are gated by the last captured change (one runs). */
#define OV4PD(B, S, P, D, DK, DD)                                                                  \
    "(SELECT \"k\" FROM " D DD " WHERE _epoch_branch = " B " AND NOT _epoch_deleted" P(            \
        "") " UNION ALL SELECT _b.\"k\" FROM \"public\".\"my table\" _b WHERE NOT EXISTS (SELECT " \
            "1 FROM " DK " _d WHERE _d._epoch_branch = " B " AND _d.\"k\" = _b.\"k\"" P(           \
                "_d.") ")"                                                                         \
                       " AND epoch.\"_hmax_4\"() <= " S      \
                       " UNION ALL SELECT _b.\"k\" FROM \"public\".\"my table\" _b WHERE epoch.\"_hmax_4\"() > " S \
                       " AND NOT EXISTS (SELECT 1 FROM " DK " _d WHERE _d._epoch_branch = " B      \
                       " AND _d.\"k\" = _b.\"k\"" P(                                               \
                           "_d.") ")"                                                              \
                                  " AND NOT EXISTS (SELECT 1 FROM epoch.\"hk_4\" _h WHERE "        \
                                  "_h._epoch_seq + 0 > " S " AND _h.\"k\" = _b.\"k\"" P(           \
                                      "_h.") ")"                                                   \
                                             " UNION ALL SELECT _p.\"k\" FROM epoch.\"hv_4\" _p "  \
                                             "WHERE _p._epoch_seq + 0 > " S                        \
                                             " AND _p._epoch_existed" P(                           \
                                                 "_p.") " AND NOT EXISTS (SELECT 1 FROM "          \
                                                        "epoch.\"hk_4\" _q WHERE "                 \
                                                        "_q.\"k\" = _p.\"k\" AND _q._epoch_seq + " \
                                                        "0 > " S " AND _q._epoch_seq < "           \
                                                        "_p._epoch_seq) AND NOT EXISTS (SELECT 1 " \
                                                        "FROM " DK " _d "                          \
                                                        "WHERE _d._epoch_branch = " B              \
                                                        " AND _d.\"k\" = _p.\"k\"" P("_d.") "))"
/* The working rows of the branch (D4: every column, D4K: the key view);
 * OV4AT: the overlay at point T (a "@ref" or a session's as_of), whose
 * branch rows at T are the CTE _epoch_at, after the CTEs W (a "@ref"'s) */
#define D4 "epoch.\"dv_4\""
#define D4K "epoch.\"dk_4\""
#define OV4AT(W, B, S, T)                                                                          \
    "(WITH " W                                                                                     \
    "_epoch_at AS MATERIALIZED (SELECT * FROM (SELECT DISTINCT ON (_u.\"k\") _u.* FROM "           \
    "(SELECT _dy.\"k\", _dy._epoch_deleted, _dy._epoch_seq AS _epoch_o FROM epoch.\"bk_4\" _dy "   \
    "WHERE _dy._epoch_branch = " B " AND _dy._epoch_seq > " T " UNION ALL SELECT _dc.\"k\", "      \
    "_dc._epoch_deleted, NULL::bigint FROM epoch.\"dk_4\" _dc WHERE _dc._epoch_branch = " B        \
    ") _u ORDER BY _u.\"k\", _u._epoch_o) _s WHERE _s._epoch_deleted IS NOT NULL) SELECT "         \
    "_r.\"k\" "                                                                                    \
    "FROM _epoch_at _a JOIN epoch.\"bv_4\" _r ON _r._epoch_branch = " B " AND _r._epoch_seq = "    \
    "_a._epoch_o AND _r.\"k\" = _a.\"k\" WHERE NOT _a._epoch_deleted UNION ALL SELECT _r.\"k\" "   \
    "FROM "                                                                                        \
    "_epoch_at _a JOIN epoch.\"dv_4\" _r ON _r._epoch_branch = " B                                 \
    " AND _r.\"k\" = _a.\"k\" WHERE "                                                              \
    "_a._epoch_o IS NULL AND NOT _a._epoch_deleted "                                               \
    "UNION ALL SELECT _b.\"k\" FROM \"public\".\"my table\" _b WHERE NOT EXISTS (SELECT 1 FROM "   \
    "_epoch_at _d WHERE _d.\"k\" = _b.\"k\") AND epoch.\"_hmax_4\"() <= " S " UNION ALL SELECT _b.\"k\" FROM \"public\".\"my table\" _b WHERE "    \
    "epoch.\"_hmax_4\"() > " S " AND NOT EXISTS (SELECT 1 "  \
    "FROM _epoch_at _d WHERE _d.\"k\" = _b.\"k\") AND NOT EXISTS (SELECT 1 FROM epoch.\"hk_4\" "   \
    "_h WHERE _h._epoch_seq + 0 > " S " AND _h.\"k\" = _b.\"k\") UNION ALL SELECT _p.\"k\" FROM "  \
    "epoch.\"hv_4\" _p WHERE _p._epoch_seq + 0 > " S " AND _p._epoch_existed AND NOT EXISTS "      \
    "(SELECT 1 FROM epoch.\"hk_4\" _q WHERE _q.\"k\" = _p.\"k\" AND _q._epoch_seq + 0 > " S        \
    " AND _q._epoch_seq < _p._epoch_seq) AND NOT EXISTS (SELECT 1 FROM _epoch_at _d WHERE "        \
    "_d.\"k\" = _p.\"k\"))"
#define OV4P(B, S, P) OV4PD(B, S, P, D4, D4K, "")
#define P0(q) ""
#define PK_GT0(q) " AND " q "\"k\" > 0"
#define OV4(B, S) OV4P(B, S, P0)
#define OV4_BR OV4("7", "100")
#define Y_W "_epoch_ref AS MATERIALIZED (SELECT * FROM epoch._ref_read('feature/y', false)), "
#define OV4_Y                                                                                      \
    OV4AT(Y_W, "(SELECT branch_id FROM _epoch_ref)", "(SELECT base_seq FROM _epoch_ref)",          \
          "(SELECT point FROM _epoch_ref)")

static void expect_exact(sess_t k, const char *sql, const char *want)
{
    rw_result_t r;
    rw(k, sql, &r);
    cr_assert_eq(r.action, RW_REWRITTEN, "[%s]: action %d (%s)", sql, r.action,
                 r.message ? r.message : "");
    cr_expect_str_eq(r.sql, want, "[%s]\n  got:  %s\n  want: %s", sql, r.sql, want);
    assert_parses(r.sql, sql);
    rewrite_result_free(&r);
}

Test(rewrite, unaliased_table_becomes_overlay_named_after_the_table)
{
    expect_exact(BR, "SELECT * FROM \"my table\"", "SELECT * FROM " OV4_BR " AS \"my table\"");
    expect_exact(BR, "SELECT * FROM public.\"my table\" WHERE k > 0",
                 "SELECT * FROM " OV4P("7", "100", PK_GT0) " AS \"my table\" WHERE k > 0");
}

Test(rewrite, alias_is_kept_and_no_second_alias_is_added)
{
    /* the key condition is copied into the overlay's anti-joins */
    expect_exact(BR, "SELECT t.k FROM \"my table\" t WHERE t.k > 0",
                 "SELECT t.k FROM " OV4P("7", "100", PK_GT0) " t WHERE t.k > 0");
    expect_exact(BR, "SELECT * FROM \"my table\" AS t(x)", "SELECT * FROM " OV4_BR " AS t(x)");
    expect_exact(BR, "SELECT * FROM \"my table\" a, \"my table\" b",
                 "SELECT * FROM " OV4_BR " a, " OV4_BR " b");
}

Test(rewrite, only_keyword_is_replaced_with_the_table)
{
    expect_exact(BR, "SELECT * FROM ONLY \"my table\" AS t", "SELECT * FROM " OV4_BR " AS t");
    expect_exact(BR, "SELECT * FROM only public.\"my table\"",
                 "SELECT * FROM " OV4_BR " AS \"my table\"");
}

Test(rewrite, table_command_becomes_select)
{
    expect_exact(BR, "TABLE \"my table\"", "SELECT * FROM " OV4_BR " AS \"my table\"");
    expect_exact(BR, "TABLE ONLY public.\"my table\";",
                 "SELECT * FROM " OV4_BR " AS \"my table\";");
}

Test(rewrite, copy_table_to_becomes_copy_of_a_query)
{
    expect_exact(BR, "COPY \"my table\" TO STDOUT",
                 "COPY (SELECT * FROM " OV4_BR " AS \"my table\") TO STDOUT");
    expect_exact(BR, "COPY public.\"my table\" (k) TO STDOUT WITH (FORMAT csv)",
                 "COPY (SELECT k FROM " OV4_BR " AS \"my table\") TO STDOUT WITH (FORMAT csv)");
}

Test(rewrite, at_main_reads_the_plain_base_table)
{
    expect_exact(BR, "SELECT * FROM \"@main\".\"my table\" m JOIN \"my table\" USING (k)",
                 "SELECT * FROM \"public\".\"my table\" m JOIN " OV4_BR
                 " AS \"my table\" USING (k)");
    expect_exact(MAIN, "SELECT * FROM \"@main\".\"my table\" m JOIN \"my table\" USING (k)",
                 "SELECT * FROM \"public\".\"my table\" m JOIN \"my table\" USING (k)");
}

Test(rewrite, at_branch_reads_overlay_with_branch_subqueries)
{
    expect_exact(MAIN, "SELECT * FROM \"@feature/y\".\"my table\"",
                 "SELECT * FROM " OV4_Y " AS \"my table\"");
    expect_exact(BR, "SELECT * FROM \"public@feature/y\".\"my table\" y, \"my table\"",
                 "SELECT * FROM " OV4_Y " y, " OV4_BR " AS \"my table\"");
}

Test(rewrite, view_becomes_its_rewritten_definition)
{
    expect_exact(BR, "SELECT * FROM v_my",
                 "SELECT * FROM (SELECT t.k FROM " OV4_BR " t) AS \"v_my\"");
    expect_exact(BR, "SELECT * FROM public.v_my m WHERE k > 0",
                 "SELECT * FROM (SELECT t.k FROM " OV4_BR " t) m WHERE k > 0");
    /* a view over a view: the inner reference is replaced inside the outer definition */
    expect_exact(BR, "SELECT k FROM v_my2 x WHERE k = 1",
                 "SELECT k FROM (SELECT v_my.k FROM (SELECT t.k FROM " OV4_BR
                 " t) AS \"v_my\" WHERE (v_my.k > 0)) x WHERE k = 1");
    expect_exact(BR, "TABLE v_my", "SELECT * FROM (SELECT t.k FROM " OV4_BR " t) AS \"v_my\"");
    /* at a ref, every tracked table of the definition is read at that ref */
    expect_exact(MAIN, "SELECT * FROM \"@feature/y\".v_my2",
                 "SELECT * FROM (SELECT v_my.k FROM (SELECT t.k FROM " OV4_Y
                 " t) AS \"v_my\" WHERE (v_my.k > 0)) AS \"v_my2\"");
}

Test(rewrite, errors_inside_a_view_name_the_view)
{
    rw_result_t r;
    rw(BR, "SELECT * FROM notrack JOIN v_lock USING (id)", &r);
    cr_assert_eq(r.action, RW_ERROR);
    cr_expect_str_eq(r.sqlstate, "0A000");
    cr_assert_not_null(r.detail);
    cr_expect(strstr(r.detail, "view \"public.v_lock\"") != NULL, "detail: %s", r.detail);
    rewrite_result_free(&r);
    rw(BR, "SELECT * FROM v_sb", &r);
    cr_assert_eq(r.action, RW_ERROR);
    cr_expect_not_null(r.hint);
    rewrite_result_free(&r);
}

Test(rewrite, literals_and_comments_are_kept_verbatim)
{
    expect_exact(BR,
                 "SELECT '\"my table\"', k /* \"my table\" */ FROM \"my table\" -- \"my table\"",
                 "SELECT '\"my table\"', k /* \"my table\" */ FROM " OV4_BR
                 " AS \"my table\" -- \"my table\"");
}

Test(rewrite, reserved_named_argument_is_quoted)
{
    expect_exact(MAIN, "SELECT * FROM epoch.branch_create('x', from => 'main')",
                 "SELECT * FROM epoch.branch_create('x', \"from\" => 'main')");
    expect_exact(MAIN, "SELECT epoch.branch_create('x', FROM => 'main', description => 'it''s')",
                 "SELECT epoch.branch_create('x', \"from\" => 'main', \"description\" => 'it''s')");
}

Test(rewrite, show_epoch_branch_reads_the_setting)
{
    expect_exact(BR, "SHOW epoch.branch",
                 "SELECT coalesce(nullif(current_setting('epoch.branch', true), ''), 'main') AS "
                 "\"epoch.branch\"");
    expect_exact(MAIN, "SHOW epoch.as_of",
                 "SELECT coalesce(nullif(current_setting('epoch.as_of', true), ''), '') AS "
                 "\"epoch.as_of\"");
}

/* ------------------------------------------------------------ behaviour */

Test(rewrite, cte_name_shadows_tracked_table)
{
    expect_action(BR, "WITH users AS (SELECT 1 AS id) SELECT * FROM users", RW_FORWARD);
    expect_action(BR, "WITH orders AS (SELECT 1 AS id) SELECT * FROM orders o WHERE o.id = 1",
                  RW_FORWARD);
    rw_result_t r;
    const char *out =
        expect_rewritten(BR, "WITH users AS (SELECT 1 AS id) SELECT * FROM users, orders", "2", &r);
    cr_expect(strstr(out, "SELECT * FROM users, (SELECT") != NULL, "%s", out);
    rewrite_result_free(&r);
}

Test(rewrite, cte_body_reads_tracked_table_of_the_same_name)
{
    rw_result_t r;
    const char *out = expect_rewritten(
        BR, "WITH users AS (SELECT * FROM users WHERE id > 1) SELECT * FROM users", "1", &r);
    cr_expect(strncmp(out, "WITH users AS (SELECT * FROM (SELECT", 36) == 0, "%s", out);
    cr_expect(strstr(out, "WHERE id > 1) SELECT * FROM users") != NULL, "%s", out);
    rewrite_result_free(&r);
}

Test(rewrite, later_cte_sees_earlier_cte_but_not_itself)
{
    rw_result_t r;
    /* b's reference to a is the CTE; a's reference to b is the (untracked) table */
    expect_rewritten(BR,
                     "WITH a AS (SELECT * FROM orders), orders AS (SELECT * FROM a) SELECT * FROM "
                     "orders",
                     "2", &r);
    rewrite_result_free(&r);
}

Test(rewrite, recursive_cte_sees_itself)
{
    expect_action(BR,
                  "WITH RECURSIVE users AS (SELECT 1 AS id UNION ALL SELECT id + 1 FROM users "
                  "WHERE id < 3) SELECT * FROM users",
                  RW_FORWARD);
}

Test(rewrite, cte_scope_ends_with_its_query)
{
    rw_result_t r;
    expect_rewritten(
        BR, "SELECT * FROM (WITH users AS (SELECT 1 AS id) SELECT * FROM users) s, users", "1", &r);
    rewrite_result_free(&r);
    expect_rewritten(
        BR, "WITH x AS (WITH users AS (SELECT 2 AS id) SELECT * FROM users) SELECT * FROM x, users",
        "1", &r);
    rewrite_result_free(&r);
}

Test(rewrite, schema_qualified_name_is_never_a_cte)
{
    rw_result_t r;
    expect_rewritten(BR, "WITH users AS (SELECT 1 AS id) SELECT * FROM public.users", "1", &r);
    rewrite_result_free(&r);
}

Test(rewrite, untracked_table_earlier_on_path_shadows_tracked_table)
{
    expect_action(BR, "SELECT * FROM accounts", RW_FORWARD);
    rw_result_t r;
    expect_rewritten(BR, "SELECT * FROM public.accounts", "7", &r);
    rewrite_result_free(&r);
}

Test(rewrite, tracked_table_off_the_path_needs_its_schema)
{
    expect_action(BR, "SELECT * FROM stats", RW_FORWARD);
    rw_result_t r;
    expect_rewritten(BR, "SELECT * FROM other.stats", "9", &r);
    rewrite_result_free(&r);
}

Test(rewrite, quoted_names_are_escaped_in_the_overlay)
{
    rw_result_t r;
    const char *out = expect_rewritten(BR, "SELECT * FROM \"we\"\"ird\"", "5", &r);
    cr_expect(strstr(out, "FROM \"public\".\"we\"\"ird\" _b") != NULL, "%s", out);
    cr_expect(strstr(out, "SELECT \"id\", \"a\"\"b\" FROM epoch.\"dv_5\"") != NULL, "%s", out);
    cr_expect(strstr(out, ") AS \"we\"\"ird\"") != NULL, "%s", out);
    rewrite_result_free(&r);
}

Test(rewrite, composite_key_matches_every_key_column)
{
    rw_result_t r;
    const char *out = expect_rewritten(BR, "SELECT * FROM line_items", "8", &r);
    cr_expect(
        strstr(out, "_d.\"order_id\" = _b.\"order_id\" AND _d.\"line_no\" = _b.\"line_no\"") !=
            NULL,
        "%s", out);
    /* the first pre-image per key: no earlier entry for the whole key */
    cr_expect(
        strstr(out, "_q.\"order_id\" = _p.\"order_id\" AND _q.\"line_no\" = _p.\"line_no\"") !=
            NULL,
        "%s", out);
    cr_expect(strstr(out, "SELECT \"order_id\", \"line_no\", \"qty\" FROM") != NULL, "%s", out);
    rewrite_result_free(&r);
}

Test(rewrite, main_session_rewrites_only_refs)
{
    const char *plain[] = {
        "SELECT * FROM users",
        "SELECT * FROM users u JOIN orders o ON o.user_id = u.id",
        "TABLE users",
        "COPY users TO STDOUT",
        "INSERT INTO users VALUES (1)",
        "CREATE TABLE t (a int)",
        "SELECT * FROM users FOR UPDATE",
        "WITH x AS (DELETE FROM users RETURNING *) SELECT * FROM x",
    };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        expect_action(MAIN, plain[i], RW_FORWARD);
    rw_result_t r;
    const char *out = expect_rewritten(
        MAIN, "SELECT * FROM users JOIN \"@feature/y\".users b USING (id)", "1", &r);
    cr_expect(strncmp(out, "SELECT * FROM users JOIN (WITH _epoch_ref", 41) == 0, "%s", out);
    cr_expect(r.flags & RW_F_SCHEMA);
    rewrite_result_free(&r);
}

Test(rewrite, unsupported_writes_are_refused_on_a_branch)
{
    const char *writes[] = {
        "INSERT INTO notrack VALUES (1)",
        "MERGE INTO users u USING orders o ON o.id = u.id WHEN MATCHED THEN DELETE",
        "UPDATE users SET name = 'x' WHERE CURRENT OF c",
        "UPDATE users SET name.first = 'x'",
        "UPDATE arrs SET a[1:2] = '{1,2}'",
        "INSERT INTO users VALUES (1) ON CONFLICT (email) DO UPDATE SET name = 'x'",
        "COPY users FROM STDIN; SELECT 1",
        "EXPLAIN ANALYZE INSERT INTO users VALUES (1)",
        "PREPARE p AS DELETE FROM users",
        "CREATE TABLE t (a int)",
        "TRUNCATE users",
        "DO $$ BEGIN END $$",
        "CALL p()",
        "SELECT * INTO t FROM users",
    };
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
        expect_error(BR, writes[i], "0A000");
}

Test(rewrite, writes_never_name_the_base_table)
{
    const char *writes[] = {
        "INSERT INTO users VALUES (1, 'a')",
        "UPDATE users SET name = 'x'",
        "DELETE FROM users",
        "UPDATE public.users u SET name = 'x' FROM orders o WHERE o.user_id = u.id",
        "WITH x AS (DELETE FROM users RETURNING *) SELECT * FROM x",
        "UPDATE users SET id = id + 1",
    };
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        rw_result_t r;
        cr_assert_eq(rw(BR, writes[i], &r), RW_REWRITTEN, "[%s]", writes[i]);
        /* the base table appears only read, as _b inside an overlay, and
         * named in the write gate (a regclass literal) */
        cr_expect_eq(count_of(r.sql, "\"public\".\"users\""),
                     count_of(r.sql, "\"public\".\"users\" _b") +
                         count_of(r.sql, "'\"public\".\"users\"'::regclass"),
                     "[%s]: %s", writes[i], r.sql);
        cr_expect(count_of(r.sql, "'\"public\".\"users\"'::regclass") >= 1, "[%s]: %s", writes[i],
                  r.sql);
        cr_expect(strstr(r.sql, "INSERT INTO epoch.\"dv_1\"") != NULL, "[%s]", writes[i]);
        cr_expect(strstr(r.sql, "UPDATE users") == NULL && strstr(r.sql, "DELETE FROM") == NULL,
                  "[%s]: %s", writes[i], r.sql);
        rewrite_result_free(&r);
    }
}

Test(rewrite, delete_becomes_tombstones)
{
    expect_exact(
        BR, "DELETE FROM \"my table\" WHERE k = 1",
        "INSERT INTO epoch.\"dv_4\" AS \"my table\" (\"_epoch_branch\", \"k\", "
        "\"_epoch_deleted\") SELECT " LIVE7W(
            "my table", "delete",
            "NULL") ", \"my table\".\"k\", true FROM (SELECT * FROM " OV4_BR
                    " _rw WHERE (SELECT epoch._may_write('\"public\".\"my table\"'::regclass, "
                    "'delete', NULL))) AS \"my table\" WHERE  k = 1 ON CONFLICT "
                    "(\"_epoch_branch\", \"k\") DO "
                    "UPDATE "
                    "SET \"_epoch_deleted\" = true WHERE NOT \"my table\".\"_epoch_deleted\" AND "
                    "EXISTS (SELECT 1 FROM (SELECT \"my table\".*) AS \"my table\" WHERE  k = 1)");
}

Test(rewrite, update_and_delete_tags_are_fixed_up)
{
    struct {
        const char *sql, *tags;
    } cases[] = {
        {"UPDATE users SET name = 'x'", "U"},
        {"DELETE FROM users", "D"},
        {"INSERT INTO users VALUES (1)", ""},
        {"SELECT 1; DELETE FROM users; SELECT 2; UPDATE orders SET total = 0", "-D-U"},
        {"WITH x AS (UPDATE users SET name = 'x' RETURNING 1) SELECT * FROM x", ""},
        {"SELECT * FROM users", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rw_result_t r;
        cr_assert_eq(rw(BR, cases[i].sql, &r), RW_REWRITTEN, "[%s]", cases[i].sql);
        cr_expect_str_eq(r.tags, cases[i].tags, "[%s]: tags [%s]", cases[i].sql, r.tags);
        rewrite_result_free(&r);
    }
}

/* The rewrite without its blanks (for comparing two spellings of one
 * statement); malloc'd. */
static char *rewrite_without_blanks(const char *sql)
{
    rw_result_t r;
    cr_assert_eq(rw(BR, sql, &r), RW_REWRITTEN, "[%s]: %s", sql, r.message ? r.message : "");
    assert_parses(r.sql, sql);
    char *out = strdup(r.sql);
    cr_assert_not_null(out);
    size_t o = 0;
    for (const char *p = r.sql; *p; p++)
        if (*p != ' ')
            out[o++] = *p;
    out[o] = '\0';
    rewrite_result_free(&r);
    return out;
}

Test(rewrite, multiple_column_set_rewrites_like_single_column_sets)
{
    const char *pairs[][2] = {
        {"UPDATE users SET (name, email) = ('a', 'b') WHERE id = 1",
         "UPDATE users SET name = 'a', email = 'b' WHERE id = 1"},
        {"UPDATE users SET (name, email) = ROW(email, name) RETURNING *",
         "UPDATE users SET name = email, email = name RETURNING *"},
        {"UPDATE users SET (id, name) = (id + 1, DEFAULT), email = 'x' WHERE id = 1",
         "UPDATE users SET id = id + 1, name = DEFAULT, email = 'x' WHERE id = 1"},
        {"UPDATE users u SET (name) = ROW(o.total::text) FROM orders o WHERE o.user_id = u.id",
         "UPDATE users u SET name = o.total::text FROM orders o WHERE o.user_id = u.id"},
        {"INSERT INTO users VALUES (1) ON CONFLICT (id) DO UPDATE SET (name, email) = "
         "(excluded.name, 'z') WHERE users.name IS NULL",
         "INSERT INTO users VALUES (1) ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
         "email = 'z' WHERE users.name IS NULL"},
        {"WITH x AS (UPDATE users SET (name, email) = ((SELECT max(name) FROM users), 'q') "
         "RETURNING id) SELECT * FROM x",
         "WITH x AS (UPDATE users SET name = (SELECT max(name) FROM users), email = 'q' "
         "RETURNING id) SELECT * FROM x"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char *multi = rewrite_without_blanks(pairs[i][0]);
        char *single = rewrite_without_blanks(pairs[i][1]);
        cr_expect_str_eq(multi, single, "[%s]\n  vs [%s]", pairs[i][0], pairs[i][1]);
        free(multi);
        free(single);
    }
}

Test(rewrite, multiple_column_set_from_a_subselect_reads_each_column_of_it)
{
    rw_result_t r;
    const char *out = expect_rewritten(
        BR, "UPDATE users SET (name, email, id) = (SELECT 'n', email, 5 FROM users WHERE id = 2)",
        "1 1 1 1 1", &r);
    /* the key changes: no re-check; each column once in the changed rows
     * (overlays: the target, the three columns, the duplicate-key probe) */
    cr_expect(strstr(out, "_epoch_gone") != NULL, "%s", out);
    for (int c = 1; c <= 3; c++) {
        char want[200];
        snprintf(want, sizeof want,
                 "(SELECT _epoch_m._epoch_c%d FROM  (SELECT 'n', email, 5 FROM (SELECT", c);
        cr_expect_eq(count_of(out, want), 1, "[%s] x%d in %s", want, count_of(out, want), out);
    }
    cr_expect_eq(count_of(out, "AS _epoch_m (_epoch_c1, _epoch_c2, _epoch_c3))"), 3, "%s", out);
    rewrite_result_free(&r);
}

Test(rewrite, array_element_assignment_builds_the_new_array)
{
    rw_result_t r;
    const char *out = expect_rewritten(BR, "UPDATE arrs SET a[1] = 9 WHERE id = 1", "10", &r);
    /* the new value of a, in the changed row and in the re-check */
    static const char value[] =
        "(SELECT array_cat(array_fill(CASE WHEN _epoch_l = _epoch_i THEN _epoch_v ELSE "
        "_epoch_a[_epoch_l] END, ARRAY[1], CASE WHEN array_ndims(_epoch_a) > 1 THEN "
        "ARRAY[_epoch_l, _epoch_l] ELSE ARRAY[_epoch_l] END), ARRAY(SELECT CASE WHEN _epoch_g = "
        "_epoch_i THEN _epoch_v ELSE _epoch_a[_epoch_g] END FROM generate_series(_epoch_l + 1, "
        "_epoch_u) AS _epoch_g ORDER BY _epoch_g)) FROM (SELECT _epoch_a, _epoch_i, _epoch_v, "
        "CASE WHEN _epoch_i IS NOT NULL THEN least(array_lower(_epoch_a, 1), _epoch_i) END AS "
        "_epoch_l, greatest(array_upper(_epoch_a, 1), _epoch_i) AS _epoch_u FROM (SELECT "
        "(\"arrs\".\"a\")::integer[], (1)::integer, ( 9 )::integer) AS _epoch_s (_epoch_a, "
        "_epoch_i, _epoch_v)) AS _epoch_s)";
    cr_expect(
        strstr(out, LIVE7W("arrs", "update",
                           "ARRAY['a']::text[]") ", \"arrs\".\"id\", (" /* value follows */) !=
            NULL,
        "%s", out);
    cr_expect_eq(count_of(out, value), 2, "%s", out);
    cr_expect(strstr(out, "DO UPDATE SET (\"a\", \"_epoch_deleted\") = (SELECT (") != NULL, "%s",
              out);
    rewrite_result_free(&r);
}

Test(rewrite, array_element_assignments_to_one_column_apply_in_order)
{
    rw_result_t r;
    const char *out = expect_rewritten(
        BR, "UPDATE arrs SET a[1] = 9, qty = 0, a[2] = a[1] WHERE id = 1", "10", &r);
    /* one value for a (nested: the second assignment starts from the first's
     * result), in the changed row and in the re-check */
    cr_expect_eq(count_of(out, "array_fill("), 4, "%s", out);
    cr_expect_eq(count_of(out, "FROM (SELECT ((SELECT array_cat("), 2, "%s", out);
    cr_expect_eq(count_of(out, "(\"arrs\".\"a\")::integer[], (1)::integer, ( 9)::integer)"), 2,
                 "%s", out);
    cr_expect(strstr(out, "DO UPDATE SET (\"a\", \"qty\", \"_epoch_deleted\")") != NULL, "%s", out);
    rewrite_result_free(&r);
}

Test(rewrite, copy_from_stages_rows_into_the_delta)
{
    rw_result_t r;
    cr_assert_eq(rw(BR, "COPY users (id, name) FROM STDIN WITH (FORMAT csv)", &r), RW_REWRITTEN);
    cr_expect_str_eq(r.sql, "COPY pg_temp.\"epoch_copy\" (id, name) FROM STDIN WITH (FORMAT csv)");
    cr_assert_not_null(r.setup);
    cr_expect(strstr(r.setup, "CREATE TEMP TABLE \"epoch_copy\" AS SELECT * FROM "
                              "\"public\".\"users\" WITH NO DATA") != NULL,
              "%s", r.setup);
    cr_expect(strstr(r.setup, "EXECUTE FUNCTION epoch._copy_apply('WITH _epoch_new") != NULL, "%s",
              r.setup);
    cr_expect(strstr(r.setup, "INSERT INTO epoch.\"dv_1\"") != NULL, "%s", r.setup);
    assert_parses(r.setup, "COPY setup");
    rewrite_result_free(&r);
    expect_action(MAIN, "COPY users FROM STDIN", RW_FORWARD);
    expect_error(ASOF_BR, "COPY users FROM STDIN", "25006");
}

Test(rewrite, writes_are_refused_under_as_of_with_25006)
{
    const char *writes[] = {
        "INSERT INTO users VALUES (1)",
        "UPDATE users SET name = 'x'",
        "DELETE FROM users",
        "MERGE INTO users u USING orders o ON o.id = u.id WHEN MATCHED THEN DELETE",
        "COPY users FROM STDIN",
    };
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        expect_error(ASOF_BR, writes[i], "25006");
        expect_error(ASOF_MAIN, writes[i], "25006");
    }
    expect_error(ASOF_BR, "WITH x AS (DELETE FROM users RETURNING *) SELECT * FROM x", "25006");
}

Test(rewrite, row_locks_on_tracked_tables_are_refused_on_a_branch)
{
    expect_error(BR, "SELECT * FROM users FOR UPDATE", "0A000");
    expect_error(BR, "SELECT * FROM users u JOIN notrack n ON n.id = u.id FOR SHARE OF u", "0A000");
    expect_action(BR, "SELECT * FROM notrack FOR UPDATE", RW_FORWARD);
    expect_action(MAIN, "SELECT * FROM users FOR UPDATE", RW_FORWARD);
}

Test(rewrite, set_epoch_branch_alone_switches_the_session)
{
    rw_result_t r;
    cr_assert_eq(rw(BR, "SET LOCAL epoch.branch = 'feature/z'", &r), RW_SET_BRANCH);
    cr_expect_str_eq(r.value, "feature/z");
    cr_expect(r.is_local);
    cr_expect(!r.as_of);
    cr_expect_eq(FLAGS(r), FSR);
    rewrite_result_free(&r);
    cr_assert_eq(rw(MAIN, "SET epoch.as_of = 'v1'", &r), RW_SET_BRANCH);
    cr_expect_str_eq(r.value, "v1");
    cr_expect(!r.is_local);
    cr_expect(r.as_of);
    rewrite_result_free(&r);
}

Test(rewrite, set_epoch_branch_with_other_statements_is_refused)
{
    expect_error(BR, "SET epoch.branch = 'x'; SELECT * FROM users", "0A000");
    expect_error(MAIN, "SELECT 1; SET epoch.as_of = 'x'", "0A000");
    expect_error(MAIN, "SET epoch.branch = 'x'; SET epoch.branch = 'y'", "0A000");
}

Test(rewrite, name_resolution_changes_request_a_refresh)
{
    const char *changes[] = {
        "RESET ALL",         "DISCARD ALL",        "DISCARD TEMP",         "SET search_path = app",
        "RESET search_path", "RESET epoch.branch", "SELECT epoch.commit()"};
    for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++) {
        rw_result_t r;
        rw(MAIN, changes[i], &r);
        cr_expect(r.flags & RW_F_REFRESH, "[%s]: flags %u", changes[i], r.flags);
        rewrite_result_free(&r);
    }
    rw_result_t r;
    rw(MAIN, "SET statement_timeout = 0", &r);
    cr_expect_eq(FLAGS(r), 0u);
    rewrite_result_free(&r);
}

Test(rewrite, epoch_calls_and_refs_need_the_schema)
{
    rw_result_t r;
    rw(MAIN, "SELECT epoch.commit('m')", &r);
    cr_expect_eq(FLAGS(r), FSR);
    rewrite_result_free(&r);
    rw(MAIN, "SELECT * FROM \"@main\".users", &r);
    cr_expect(r.flags & RW_F_SCHEMA);
    rewrite_result_free(&r);
    rw(MAIN, "SELECT commit('m')", &r); /* not epoch's */
    cr_expect_eq(FLAGS(r), 0u);
    rewrite_result_free(&r);
}

Test(rewrite, missing_catalog_is_requested_only_when_needed)
{
    expect_action(BR_NOCAT, "SELECT * FROM users", RW_NEED_CATALOG);
    expect_action(BR_NOCAT, "SELECT 1", RW_FORWARD);
    expect_action(BR_NOCAT, "WITH t AS (SELECT 1) SELECT * FROM t", RW_FORWARD);
    expect_action(MAIN_NOCAT, "SELECT * FROM users", RW_FORWARD);
    expect_action(MAIN_NOCAT, "SELECT * FROM \"@main\".users", RW_NEED_CATALOG);
}

Test(rewrite, syntax_errors_are_forwarded)
{
    expect_action(BR, "SELECT * FROM users WHERE", RW_FORWARD);
    expect_action(BR, "SELECT * FROM users WHERE x = 'unterminated", RW_FORWARD);
    expect_action(BR, "INSERT INTO", RW_FORWARD);
    expect_action(MAIN, "SELECT epoch.f(x => )", RW_FORWARD);
}

/* The walker's lists grow with the statement (they were 256 edits: the
 * 257th reference was refused). */
Test(rewrite, many_table_references_are_all_rewritten)
{
    char *sql = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&sql, &len);
    cr_assert_not_null(f);
    fputs("SELECT 1 FROM users u0", f);
    for (int i = 1; i < 256; i++)
        fprintf(f, ", users u%d", i);
    fclose(f);
    rw_result_t r;
    cr_assert_eq(rw(BR, sql, &r), RW_REWRITTEN);
    cr_expect_eq(count_of(r.sql, "AND NOT _epoch_deleted UNION ALL"), 256);
    assert_parses(r.sql, "256 references");
    rewrite_result_free(&r);
    char *more = NULL;
    cr_assert(asprintf(&more, "%s, users u256", sql) > 0);
    cr_assert_eq(rw(BR, more, &r), RW_REWRITTEN);
    cr_expect_eq(count_of(r.sql, "AND NOT _epoch_deleted UNION ALL"), 257);
    assert_parses(r.sql, "257 references");
    rewrite_result_free(&r);
    free(more);
    free(sql);
}

Test(rewrite, result_free_is_idempotent)
{
    rw_result_t r;
    rw(BR, "SELECT * FROM users", &r);
    rewrite_result_free(&r);
    cr_expect_null(r.sql);
    rewrite_result_free(&r);
    rw(BR, "INSERT INTO notrack VALUES (1)", &r);
    cr_expect_not_null(r.hint);
    rewrite_result_free(&r);
    cr_expect_null(r.message);
    cr_expect_null(r.hint);
}

/* Every prefix of every corpus statement: no crash, no read past the end
 * (ASan), no leak; a rewrite, when there is one, parses. */
Test(rewrite, statement_prefixes_are_handled_safely, .timeout = 120)
{
    for (int i = 0; i < NCORPUS; i++) {
        const char *sql = corpus_case(i)->sql;
        size_t n = strlen(sql);
        for (size_t len = 0; len < n; len++) {
            char *p = strndup(sql, len);
            cr_assert_not_null(p);
            rw_result_t r;
            rw(corpus_case(i)->s, p, &r);
            if (r.action == RW_REWRITTEN)
                assert_parses(r.sql, p);
            rewrite_result_free(&r);
            free(p);
        }
    }
}

Test(rewrite, same_text_gives_same_rewrite)
{
    for (int i = 0; i < NCORPUS; i++) {
        rw_result_t a, b;
        rw(corpus_case(i)->s, corpus_case(i)->sql, &a);
        rw(corpus_case(i)->s, corpus_case(i)->sql, &b);
        cr_expect_eq(a.action, b.action);
        cr_expect_eq(a.flags, b.flags, "[%s]", corpus_case(i)->sql);
        if (a.sql && b.sql)
            cr_expect_str_eq(a.sql, b.sql);
        rewrite_result_free(&a);
        rewrite_result_free(&b);
    }
}

static void *rewrite_corpus_thread(void *arg)
{
    (void)arg;
    long bad = 0;
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < NCORPUS; i++) {
            rw_session_t s = session(corpus_case(i)->s);
            rw_result_t r;
            if (rewrite_statement(&s, corpus_case(i)->sql, &r) != corpus_case(i)->act)
                bad++;
            rewrite_result_free(&r);
        }
    return (void *)(intptr_t)bad;
}

Test(rewrite, rewriting_is_thread_safe)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, rewrite_corpus_thread, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *bad = NULL;
        pthread_join(t[i], &bad);
        cr_expect_eq((long)(intptr_t)bad, 0L, "thread %d: %ld unexpected actions", i,
                     (long)(intptr_t)bad);
    }
}

/* ------------------------------------------------------------ rewrite_needs_parse */

static bool needs(const char *sql)
{
    return rewrite_needs_parse(sql, strlen(sql));
}

Test(rewrite, needs_parse_is_false_on_the_hot_path)
{
    cr_expect(!needs("SELECT * FROM users"));
    cr_expect(!needs("INSERT INTO orders VALUES (1, 2, 3)"));
    cr_expect(!needs("SELECT '@main' AS x"));
    cr_expect(!needs("SELECT * FROM \"Users\""));
    cr_expect(!needs("BEGIN"));
    cr_expect(!needs(""));
}

Test(rewrite, needs_parse_sees_epoch_refs_and_resolution_changes)
{
    cr_expect(needs("SELECT epoch.commit('x')"));
    cr_expect(needs("SET EPOCH.BRANCH = 'x'"));
    cr_expect(needs("SHOW epoch.branch"));
    cr_expect(needs("SELECT * FROM \"@main\".users"));
    cr_expect(needs("SET search_path = app"));
    cr_expect(needs("SELECT set_config('search_path', 'app', false)"));
    cr_expect(needs("RESET ALL"));
    cr_expect(needs("discard all"));
    cr_expect(needs("DEALLOCATE ALL"));
}

Test(rewrite, needs_parse_reads_only_len_bytes)
{
    const char *sql = "SELECT 1; SELECT epoch.commit()";
    cr_expect(!rewrite_needs_parse(sql, 9));
    cr_expect(rewrite_needs_parse(sql, strlen(sql)));
    char quote_at[] = {'"', '@'};
    cr_expect(rewrite_needs_parse(quote_at, 2));
    cr_expect(!rewrite_needs_parse(quote_at, 1));
}

/* The hot path may skip a statement only when parsing it on main would
 * change nothing: no rewrite, no refusal, no flags. */
Test(rewrite, needs_parse_agrees_with_rewrite_on_main)
{
    for (int i = 0; i < NCORPUS; i++) {
        const char *sql = corpus_case(i)->sql;
        if (strstr(sql, "@") && !strstr(sql, "\"@"))
            continue; /* "schema@ref": known_bug_needs_parse_misses_schema_at_ref */
        rw_result_t r;
        rw(MAIN, sql, &r);
        bool matters = r.action != RW_FORWARD || FLAGS(r) != 0;
        rewrite_result_free(&r);
        rw(MAIN_NOCAT, sql, &r);
        matters |= r.action != RW_FORWARD || FLAGS(r) != 0;
        rewrite_result_free(&r);
        if (matters)
            cr_expect(needs(sql), "[%s] changes on main but rewrite_needs_parse is false", sql);
    }
}

/* ------------------------------------------------------------ catalog */

Test(rewrite, catalog_load_reads_session_rows)
{
    cr_expect_eq(g_branch.branch_id, 7);
    cr_expect_eq(g_branch.base_seq, 100);
    cr_expect_eq(g_branch.version, 3);
    cr_expect_str_eq(g_branch.branch_name, "feature/x");
    cr_expect(!g_branch.read_only);
    cr_assert_eq(g_branch.npath, 3);
    cr_expect_str_eq(g_branch.path[0], "pg_catalog");
    cr_expect_str_eq(g_branch.path[2], "public");
    cr_expect_eq(g_branch.ntables, 13);
    cr_expect_eq(g_branch.nrels, 27);
    cr_expect_eq(g_branch.nviews, 14);
    cr_expect(catalog_find(&g_branch, "public", "secrets")->col_acl);
    cr_expect(!catalog_find(&g_branch, "public", "users")->col_acl);
    const catalog_table_t *li = catalog_find(&g_branch, "public", "line_items");
    cr_assert_not_null(li);
    cr_expect_eq(li->id, 8);
    cr_assert_eq(li->ncols, 3);
    cr_expect_str_eq(li->cols[2], "qty");
    cr_expect(li->is_pk[0] && li->is_pk[1] && !li->is_pk[2]);
    cr_expect_eq(g_main.branch_id, 0);
    cr_expect_str_eq(g_main.branch_name, "main");
}

Test(rewrite, catalog_load_reads_identity_and_generated_columns)
{
    const catalog_table_t *gen = catalog_find(&g_branch, NULL, "gen");
    const catalog_table_t *ga = catalog_find(&g_branch, NULL, "ga");
    const catalog_table_t *users = catalog_find(&g_branch, NULL, "users");
    cr_assert(gen && ga && users);
    cr_expect(!catalog_col_generated(gen, 0) && !catalog_col_generated(gen, 1));
    cr_expect(catalog_col_generated(gen, 2));
    cr_expect_str_eq(gen->defaults[2], "(a * 2)");
    cr_expect_eq(catalog_col_identity(gen, 2), '\0');
    cr_expect_eq(catalog_col_identity(ga, 0), 'a');
    cr_expect_eq(catalog_col_identity(ga, 1), '\0');
    cr_expect(!catalog_col_generated(ga, 0));
    cr_expect_null(users->identity);
    cr_expect_null(users->generated);
    /* a column row after the per-column attributes: malformed */
    static const char *const late_column[][5] = {
        {"branch", "1", "b", "0", "0"},        {"table", "5", "public", "t", NULL},
        {"column", "5", "id", "true", "int"},  {"attr", "5", "id", "d", NULL},
        {"column", "5", "v", "false", "text"},
    };
    catalog_t c;
    cr_expect(!catalog_load(&c, 5, 5, &late_column[0][0]));
    /* attributes of a column the catalog does not have (added after tracking): ignored */
    static const char *const unknown[][5] = {
        {"branch", "1", "b", "0", "0"},
        {"table", "5", "public", "t", NULL},
        {"column", "5", "id", "true", "int"},
        {"attr", "5", "later", NULL, "s"},
    };
    cr_assert(catalog_load(&c, 4, 5, &unknown[0][0]));
    cr_expect_null(c.tables[0].generated);
    catalog_free(&c);
}

Test(rewrite, catalog_load_reads_the_schema_version)
{
    static const char *const rows[][5] = {
        {"version", "5", NULL, NULL, NULL},
        {"branch", "1", "b", "0", "0"},
    };
    catalog_t c;
    cr_assert(catalog_load(&c, 2, 5, &rows[0][0])); /* the row does not disturb the load */
    catalog_free(&c);
    /* an older version (the functions hash matters only at the current one:
     * tests/unit/test_migrate.c) */
    cr_expect_eq(catalog_schema_version(2, 5, &rows[0][0]), 5);
    /* no row (a schema before migration 7): 0 */
    cr_expect_eq(catalog_schema_version(1, 5, &rows[1][0]), 0);
}

Test(rewrite, generated_always_errors_have_postgresql_wording)
{
    rw_result_t r;
    cr_assert_eq(rw(BR, "INSERT INTO ga (id, name) VALUES (100, 'c')", &r), RW_ERROR);
    cr_expect_str_eq(r.sqlstate, "428C9");
    cr_expect_str_eq(r.message, "cannot insert a non-DEFAULT value into column \"id\"");
    cr_expect_str_eq(r.hint, "Use OVERRIDING SYSTEM VALUE to override.");
    rewrite_result_free(&r);
    cr_assert_eq(rw(BR, "INSERT INTO gen (id, a, b) VALUES (1, 1, 1)", &r), RW_ERROR);
    cr_expect_str_eq(r.message, "cannot insert a non-DEFAULT value into column \"b\"");
    cr_expect_null(r.hint);
    rewrite_result_free(&r);
    cr_assert_eq(rw(BR, "UPDATE ga SET name = 'x', id = 50", &r), RW_ERROR);
    cr_expect_str_eq(r.sqlstate, "428C9");
    cr_expect_str_eq(r.message, "column \"id\" can only be updated to DEFAULT");
    cr_expect_null(r.hint);
    rewrite_result_free(&r);
    /* several: the first in column order, as PostgreSQL reports */
    cr_assert_eq(rw(BR, "UPDATE gen SET b = 1, id = 2, a = 3", &r), RW_ERROR);
    cr_expect_str_eq(r.message, "column \"b\" can only be updated to DEFAULT");
    rewrite_result_free(&r);
}

Test(rewrite, generated_columns_are_never_written_into_the_delta)
{
    /* every statement form on gen: b is computed by the delta, never named
     * in a column list, a SET of the upsert, or given a value */
    static const struct {
        const char *sql, *ids;
    } stmts[] = {
        {"INSERT INTO gen (id, a) VALUES (3, 3) RETURNING *", "11"},
        {"INSERT INTO gen VALUES (3, 3, DEFAULT)", "11"},
        {"INSERT INTO gen (id, a) SELECT id + 10, a FROM gen", "11 11"},
        {"INSERT INTO gen (id, a) VALUES (2, 5) ON CONFLICT (id) DO UPDATE SET a = EXCLUDED.a + 1",
         "11"},
        {"INSERT INTO gen (id, a) VALUES (2, 5) ON CONFLICT (id) DO NOTHING", "11"},
        {"UPDATE gen SET a = 10 WHERE id = 1", "11"},
        {"UPDATE gen SET a = 10, b = DEFAULT", "11"},
        {"UPDATE gen g SET a = o.a FROM gen o WHERE o.id = g.id + 1", "11 11"},
        {"UPDATE gen SET id = id + 1, a = 0", "11 11"},
        {"DELETE FROM gen WHERE a > 1", "11"},
        {"DELETE FROM gen g USING gen o WHERE o.id = g.id", "11 11"},
    };
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        rw_result_t r;
        const char *out = expect_rewritten(BR, stmts[i].sql, stmts[i].ids, &r);
        cr_expect_null(strstr(out, "\"_epoch_branch\", \"id\", \"a\", \"b\""), "[%s]: %s",
                       stmts[i].sql, out);
        cr_expect_null(strstr(out, "\"b\" = EXCLUDED"), "[%s]: %s", stmts[i].sql, out);
        cr_expect_null(strstr(out, "_n.\"b\""), "[%s]: %s", stmts[i].sql, out);
        cr_expect_null(strstr(out, "_r.\"_epoch_o2\""), "[%s]: %s", stmts[i].sql, out);
        rewrite_result_free(&r);
    }
}

static bool load_rows(catalog_t *cat, const char *const rows[][5], int n)
{
    return catalog_load(cat, n, 5, &rows[0][0]);
}

Test(rewrite, catalog_load_as_of_row_makes_it_read_only)
{
    static const char *const rows[][5] = {
        {"branch", "0", "main", "42", "1"},
        {"as_of", NULL, "v1", NULL, NULL},
        {"future_kind", "x", NULL, NULL, NULL}, /* added by a later migration: ignored */
    };
    catalog_t c;
    cr_assert(load_rows(&c, rows, 3));
    cr_expect(c.read_only);
    cr_expect_eq(c.base_seq, 42);
    catalog_free(&c);
}

Test(rewrite, catalog_load_point_row_makes_it_historic)
{
    static const char *const rows[][5] = {
        {"branch", "7", "3f2a9c1d", "100", "1"},
        {"as_of", NULL, "3f2a9c1d", NULL, NULL},
        {"point", "123", NULL, NULL, NULL},
    };
    catalog_t c;
    cr_assert(load_rows(&c, rows, 3));
    cr_expect(c.read_only && c.historic);
    cr_expect_eq(c.point, 123);
    catalog_free(&c);
    /* main at a time: historic, the branch's working rows (none) */
    static const char *const at_time[][5] = {
        {"branch", "0", "main@{yesterday}", "55", "1"},
        {"as_of", NULL, "main@{yesterday}", NULL, NULL},
        {"point", NULL, NULL, NULL, NULL},
    };
    cr_assert(load_rows(&c, at_time, 3));
    cr_expect(c.historic);
    cr_expect_eq(c.point, -1);
    cr_expect_eq(c.base_seq, 55);
    catalog_free(&c);
    cr_assert(load_rows(&c, at_time, 2));
    cr_expect(!c.historic);
    cr_expect_eq(c.point, -1);
    catalog_free(&c);
}

Test(rewrite, session_at_a_point_reads_the_branch_rows_of_then)
{
    g_branch.point = 150;
    rw_session_t s = {.cat = &g_branch, .on_branch = true, .read_only = true};
    rw_result_t r;
    char sql[] = "SELECT * FROM \"my table\"";
    rewrite_statement(&s, sql, &r);
    g_branch.point = -1;
    cr_assert_eq(r.action, RW_REWRITTEN);
    cr_expect_str_eq(r.sql, "SELECT * FROM " OV4AT("", "7", "100", "150") " AS \"my table\"");
    rewrite_result_free(&r);
    /* writes stay refused (read-only), TABLESAMPLE of a past state too */
    char upd[] = "UPDATE \"my table\" SET k = 1";
    g_branch.point = 150;
    rewrite_statement(&s, upd, &r);
    g_branch.point = -1;
    cr_expect_eq(r.action, RW_ERROR);
    cr_expect_str_eq(r.sqlstate, "25006");
    rewrite_result_free(&r);
}

Test(rewrite, branch_hides_epoch_capture_triggers_from_pg_trigger)
{
    rw_result_t r;
    rw(BR, "SELECT t.tgname, t.tableoid FROM pg_catalog.pg_trigger t WHERE t.tgrelid = 1", &r);
    cr_assert_eq(r.action, RW_REWRITTEN);
    cr_expect_str_eq(r.sql, "SELECT t.tgname, t.tableoid FROM (SELECT _t.*, _t.tableoid FROM "
                            "pg_catalog.pg_trigger _t WHERE _t.tgname NOT IN ('epoch_capture_ins', "
                            "'epoch_capture_upd', 'epoch_capture_del', 'epoch_capture_trunc', "
                            "'epoch_capture_lock')) t "
                            "WHERE t.tgrelid = 1");
    assert_parses(r.sql, "pg_trigger");
    rewrite_result_free(&r);
    rw(BR, "SELECT count(*) FROM pg_trigger", &r);
    cr_assert_eq(r.action, RW_REWRITTEN);
    cr_expect(strstr(r.sql, ") AS \"pg_trigger\"") != NULL, "%s", r.sql);
    rewrite_result_free(&r);
    /* main sees every trigger; another schema's pg_trigger is not the catalog */
    rw(MAIN, "SELECT count(*) FROM pg_catalog.pg_trigger", &r);
    cr_expect_neq(r.action, RW_REWRITTEN);
    rewrite_result_free(&r);
    rw(BR, "SELECT count(*) FROM other.pg_trigger", &r);
    cr_expect_neq(r.action, RW_REWRITTEN);
    rewrite_result_free(&r);
}

Test(rewrite, catalog_load_rejects_malformed_rows)
{
    catalog_t c;
    static const char *const no_branch[][5] = {{"path", "1", "public", NULL, NULL}};
    cr_expect(!load_rows(&c, no_branch, 1));
    static const char *const null_kind[][5] = {{"branch", "1", "b", "0", "0"},
                                               {NULL, NULL, NULL, NULL, NULL}};
    cr_expect(!load_rows(&c, null_kind, 2));
    static const char *const orphan_column[][5] = {{"branch", "1", "b", "0", "0"},
                                                   {"column", "5", "id", "true", "1"}};
    cr_expect(!load_rows(&c, orphan_column, 2));
    static const char *const no_columns[][5] = {{"branch", "1", "b", "0", "0"},
                                                {"table", "5", "public", "t", NULL}};
    cr_expect(!load_rows(&c, no_columns, 2));
    static const char *const short_branch[][5] = {{"branch", "1", NULL, "0", "0"}};
    cr_expect(!load_rows(&c, short_branch, 1));
    static const char *const ok[][5] = {{"branch", "1", "b", "0", "0"}};
    cr_expect(!catalog_load(&c, 1, 4, &ok[0][0])); /* wrong column count */
    cr_expect_eq(c.ntables, 0);
    cr_expect_null(c.branch_name);
    cr_expect(load_rows(&c, ok, 1));
    catalog_free(&c);
}

Test(rewrite, catalog_find_follows_the_search_path)
{
    static const char *const rows[][5] = {
        {"branch", "1", "b", "0", "0"},      {"path", "1", "pg_catalog", NULL, NULL},
        {"path", "2", "first", NULL, NULL},  {"path", "3", "second", NULL, NULL},
        {"rel", NULL, "first", "t", NULL},   {"rel", NULL, "second", "t", NULL},
        {"rel", NULL, "first", "u", NULL},   {"rel", NULL, "second", "u", NULL},
        {"rel", NULL, "second", "v", NULL},  {"table", "1", "first", "t", NULL},
        {"table", "2", "second", "t", NULL}, {"table", "3", "second", "u", NULL},
        {"table", "4", "second", "v", NULL}, {"table", "5", "elsewhere", "w", NULL},
        {"column", "1", "id", "true", "1"},  {"column", "2", "id", "true", "1"},
        {"column", "3", "id", "true", "1"},  {"column", "4", "id", "true", "1"},
        {"column", "5", "id", "true", "1"},
    };
    catalog_t c;
    cr_assert(load_rows(&c, rows, (int)(sizeof rows / sizeof rows[0])));
    /* both tracked: the first on the path wins */
    cr_expect_eq(catalog_find(&c, NULL, "t")->id, 1);
    /* an untracked relation earlier on the path shadows the tracked one */
    cr_expect_null(catalog_find(&c, NULL, "u"));
    cr_expect_eq(catalog_find(&c, "second", "u")->id, 3);
    cr_expect_eq(catalog_find(&c, NULL, "v")->id, 4);
    /* qualified names need no path; unqualified ones need it */
    cr_expect_eq(catalog_find(&c, "second", "t")->id, 2);
    cr_expect_null(catalog_find(&c, NULL, "w"));
    cr_expect_eq(catalog_find(&c, "elsewhere", "w")->id, 5);
    /* names are compared exactly (the parser already folded case) */
    cr_expect_null(catalog_find(&c, NULL, "T"));
    cr_expect_null(catalog_find(&c, "First", "t"));
    cr_expect_null(catalog_find(&c, "first", "nope"));
    cr_expect_null(catalog_find(&c, NULL, NULL));
    cr_expect_null(catalog_find(NULL, NULL, "t"));
    catalog_free(&c);
}

Test(rewrite, catalog_find_on_the_session_catalog)
{
    cr_expect_eq(catalog_find(&g_branch, NULL, "users")->id, 1);
    cr_expect_eq(catalog_find(&g_branch, NULL, "Users")->id, 3);
    cr_expect_eq(catalog_find(&g_branch, NULL, "my table")->id, 4);
    cr_expect_eq(catalog_find(&g_branch, NULL, "we\"ird")->id, 5);
    cr_expect_eq(catalog_find(&g_branch, NULL, "products")->id, 6);
    cr_expect_null(catalog_find(&g_branch, "public", "products"));
    cr_expect_null(catalog_find(&g_branch, NULL, "accounts"));
    cr_expect_eq(catalog_find(&g_branch, "public", "accounts")->id, 7);
    cr_expect_null(catalog_find(&g_branch, NULL, "stats"));
    cr_expect_null(catalog_find(&g_branch, NULL, "notrack"));
}

Test(rewrite, catalog_load_reads_view_rows)
{
    const catalog_view_t *v = catalog_find_view(&g_branch, NULL, "v_users");
    cr_assert_not_null(v);
    cr_expect_str_eq(v->schema, "public");
    /* the trailing ';' of pg_get_viewdef is dropped: the text goes into a query */
    cr_expect_str_eq(
        v->definition,
        " SELECT users.id,\n    users.name\n   FROM public.users\n  WHERE (users.id < 50)");
    cr_expect(!v->security_barrier);
    cr_expect(catalog_find_view(&g_branch, NULL, "v_sb")->security_barrier);
    /* tables are not views and views are not tables */
    cr_expect_null(catalog_find_view(&g_branch, NULL, "users"));
    cr_expect_null(catalog_find(&g_branch, NULL, "v_users"));
    /* off the path: only qualified; shadowed: only qualified */
    cr_expect_null(catalog_find_view(&g_branch, NULL, "v_other"));
    cr_expect_not_null(catalog_find_view(&g_branch, "other", "v_other"));
    cr_expect_null(catalog_find_view(&g_branch, NULL, "v_shadowed"));
    cr_expect_not_null(catalog_find_view(&g_branch, "public", "v_shadowed"));
    cr_expect_null(catalog_find_view(&g_branch, "app", "v_users"));
    cr_expect_null(catalog_find_view(NULL, NULL, "v_users"));
    cr_expect_null(catalog_find_view(&g_branch, NULL, NULL));
    /* a view row without a definition, or with an empty one: malformed */
    static const char *const bad[][5] = {
        {"branch", "1", "b", "0", "0"},
        {"view", "", "public", "v", NULL},
        {"view", "", "public", "v", " ;\n"},
    };
    catalog_t c;
    cr_expect(!catalog_load(&c, 2, 5, &bad[0][0]));
    const char *rows[2][5];
    memcpy(rows[0], bad[0], sizeof rows[0]);
    memcpy(rows[1], bad[2], sizeof rows[1]);
    cr_expect(!catalog_load(&c, 2, 5, &rows[0][0]));
    /* and a good one loads */
    rows[1][4] = "SELECT 1;";
    cr_assert(catalog_load(&c, 2, 5, &rows[0][0]));
    cr_expect_str_eq(c.views[0].definition, "SELECT 1");
    catalog_free(&c);
}

Test(rewrite, catalog_find_view_follows_the_search_path)
{
    static const char *const rows[][5] = {
        {"branch", "1", "b", "0", "0"},
        {"path", "1", "pg_temp_3", NULL, NULL},
        {"path", "2", "first", NULL, NULL},
        {"path", "3", "second", NULL, NULL},
        {"rel", NULL, "first", "x", NULL},
        {"rel", NULL, "second", "x", NULL},
        {"rel", NULL, "first", "w", NULL},
        {"rel", NULL, "second", "w", NULL},
        {"rel", NULL, "first", "v", NULL},
        {"rel", NULL, "second", "v", NULL},
        {"rel", NULL, "pg_temp_3", "tv", NULL},
        {"table", "1", "first", "x", NULL},
        {"column", "1", "id", "true", "integer"},
        {"view", "", "first", "v", "SELECT x.id FROM first.x"},
        {"view", "", "second", "v", "SELECT x.id FROM first.x"},
        {"view", "", "second", "w", "SELECT x.id FROM first.x"},
        {"view", "", "second", "x", "SELECT x.id FROM first.x"},
        {"view", "", "pg_temp_3", "tv", "SELECT x.id FROM first.x"},
    };
    catalog_t c;
    cr_assert(load_rows(&c, rows, (int)(sizeof rows / sizeof rows[0])));
    cr_expect_eq(c.nviews, 5);
    /* both listed: the first on the path wins */
    cr_expect_str_eq(catalog_find_view(&c, NULL, "v")->schema, "first");
    cr_expect_str_eq(catalog_find_view(&c, "second", "v")->schema, "second");
    /* an untracked relation earlier on the path shadows the view */
    cr_expect_null(catalog_find_view(&c, NULL, "w"));
    cr_expect_not_null(catalog_find_view(&c, "second", "w"));
    /* a tracked table earlier on the path shadows it too */
    cr_expect_null(catalog_find_view(&c, NULL, "x"));
    cr_expect_eq(catalog_find(&c, NULL, "x")->id, 1);
    cr_expect_not_null(catalog_find_view(&c, "second", "x"));
    /* the session's temporary schema, by its name or as pg_temp */
    cr_expect_str_eq(catalog_find_view(&c, NULL, "tv")->schema, "pg_temp_3");
    cr_expect_not_null(catalog_find_view(&c, "pg_temp", "tv"));
    cr_expect_not_null(catalog_find_view(&c, "pg_temp_3", "tv"));
    cr_expect_null(catalog_find_view(&c, "pg_temp", "v"));
    catalog_free(&c);
}

Test(rewrite, catalog_signature_changes_with_any_row)
{
    catalog_t a, b;
    cr_assert(load_catalog(&a, false));
    cr_expect_eq(a.signature, g_branch.signature);
    cr_expect_neq(g_main.signature, g_branch.signature);
    /* the same catalog without its views: another signature */
    cr_assert(catalog_load(&b, NSESSION - 14, 5, &session_rows[0][0]));
    cr_expect_eq(b.nviews, 0);
    cr_expect_neq(a.signature, b.signature);
    catalog_free(&b);
    /* one definition changed */
    const char *rows[NSESSION][5];
    memcpy(rows, session_rows, sizeof session_rows);
    rows[NSESSION - 1][4] = " SELECT users.id\n   FROM public.users WHERE true;";
    cr_assert(catalog_load(&b, NSESSION, 5, &rows[0][0]));
    cr_expect_neq(a.signature, b.signature);
    catalog_free(&b);
    /* NULL is not '' */
    memcpy(rows, session_rows, sizeof session_rows);
    rows[NSESSION - 1][1] = NULL;
    cr_assert(catalog_load(&b, NSESSION, 5, &rows[0][0]));
    cr_expect_neq(a.signature, b.signature);
    catalog_free(&b);
    catalog_free(&a);
}

/* The rewrite cache must not hand a session the rewrite made for a catalog
 * that did not list a view yet (creating a view changes no catalog version,
 * so the caller's view string is the same). */
Test(rewrite, cache_tells_catalogs_with_different_views_apart)
{
    catalog_t without;
    cr_assert(catalog_load(&without, NSESSION - 14, 5, &session_rows[0][0]));
    const char *key = "db|7|100|3|0|pg_catalog|app|public";
    rw_session_t old = {.cat = &without, .on_branch = true};
    rw_session_t cur = {.cat = &g_branch, .on_branch = true};
    rw_result_t r;
    for (int round = 0; round < 2; round++) {
        cr_expect_eq(rewrite_cached(&old, key, "SELECT * FROM v_users WHERE id = 7", &r, NULL),
                     RW_FORWARD);
        rewrite_result_free(&r);
        cr_expect_eq(rewrite_cached(&cur, key, "SELECT * FROM v_users WHERE id = 7", &r, NULL),
                     RW_REWRITTEN);
        cr_expect(r.sql && strstr(r.sql, "epoch.\"dv_1\"") && strstr(r.sql, "WHERE id = 7"), "%s",
                  r.sql ? r.sql : "");
        rewrite_result_free(&r);
    }
    catalog_free(&without);
}

/* ------------------------------------------------------------ known bugs */

/* Was a bug: the TABLE command is recognised only when it is the very first word
 * of the whole string (lex_skip_blank(sql, 0)), not of its statement; in
 * every other position the table is spliced as `TABLE (SELECT ...) AS "t"`,
 * which does not parse. Expected: `SELECT * FROM (overlay) AS "users"`
 * (or `(SELECT * FROM ...)`) wherever TABLE t is a query. */
Test(rewrite, fixed_table_command_not_at_start_of_string)
{
    const char *cases[] = {
        "SELECT 1; TABLE users",
        "EXPLAIN TABLE users",
        "(TABLE users)",
        "SELECT * FROM notrack UNION TABLE users",
        "WITH x AS (TABLE users) SELECT * FROM x",
        "COPY (TABLE users) TO STDOUT",
        "PREPARE p AS TABLE users",
        "DECLARE c CURSOR FOR TABLE users",
    };
    rw_result_t r;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        expect_rewritten(BR, cases[i], "1", &r);
        rewrite_result_free(&r);
    }
    /* the source of an INSERT on a branch, too (plus the duplicate-key probe) */
    expect_rewritten(BR, "INSERT INTO users TABLE users", "1 1", &r);
    rewrite_result_free(&r);
}

/* Was a bug: a Unicode-escaped identifier U&"users" is located at the U, and
 * lex_name_end stops after "U": the output is `(overlay) AS "users"&"users"`,
 * a syntax error. Expected: the whole U&"..." token (and a following
 * UESCAPE clause) is replaced. */
Test(rewrite, fixed_unicode_escaped_identifier)
{
    rw_result_t r;
    expect_rewritten(BR, "SELECT * FROM U&\"users\"", "1", &r);
    rewrite_result_free(&r);
    expect_rewritten(BR, "SELECT * FROM public.U&\"user\\0073\" u", "1", &r);
    rewrite_result_free(&r);
}

/* Was a bug: json_tokener_parse limits nesting to 32 levels, and libpg_query's
 * JSON for four nested FROM subqueries is deeper: the statement is refused
 * with SQLSTATE 53200 "out of memory while parsing the statement" (also on
 * main whenever the text mentions epoch). Expected: parse with a deeper
 * tokener (json_tokener_new_ex) and rewrite normally. */
Test(rewrite, fixed_deeply_nested_subqueries_fail_to_decode)
{
    rw_result_t r;
    expect_rewritten(BR,
                     "SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM "
                     "users) s0) s1) s2) s3",
                     "1", &r);
    rewrite_result_free(&r);
    rw(MAIN,
       "SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT epoch.commit('x')) a) "
       "b) c) d",
       &r);
    cr_expect_neq(r.action, RW_ERROR, "%s", r.message ? r.message : "");
    rewrite_result_free(&r);
}

/* Was a bug: CTE names beyond MAX_SCOPE (64) are silently not recorded, so a
 * 65th CTE named like a tracked table no longer shadows it and the outer
 * reference is replaced by the table's overlay: wrong rows, no error.
 * Expected: the CTE shadows the table (or the statement is refused). */
Test(rewrite, fixed_cte_scope_overflow_unshadows_table)
{
    char *sql = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&sql, &len);
    cr_assert_not_null(f);
    fputs("WITH ", f);
    for (int i = 0; i < 64; i++)
        fprintf(f, "c%d AS (SELECT 1), ", i);
    fputs("users AS (SELECT 1 AS id) SELECT * FROM users", f);
    fclose(f);
    rw_result_t r;
    rw(BR, sql, &r);
    cr_expect(r.action == RW_FORWARD || r.action == RW_ERROR, "got %d: the CTE did not shadow",
              r.action);
    rewrite_result_free(&r);
    free(sql);
}

/* Was a bug: under epoch.as_of at a main ref (branch id 0: on_branch false,
 * read_only true) only top-level writes are refused. Data-modifying CTEs,
 * EXPLAIN ANALYZE, PREPARE, COPY (query) TO and SELECT INTO go through
 * unchanged and change main. Expected: RW_ERROR 25006 for all of them. */
Test(rewrite, fixed_as_of_main_lets_nested_writes_through)
{
    const char *writes[] = {
        "WITH x AS (DELETE FROM users RETURNING *) SELECT * FROM x",
        "WITH x AS (INSERT INTO notrack VALUES (1) RETURNING *) SELECT * FROM x",
        "EXPLAIN ANALYZE DELETE FROM users",
        "PREPARE p AS UPDATE users SET name = 'x'",
        "COPY (DELETE FROM users RETURNING *) TO STDOUT",
        "SELECT * INTO t FROM users",
    };
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
        expect_error(ASOF_MAIN, writes[i], "25006");
}

/* Was a bug: "ref@{timestamp}" refs are split at the last '@' (strrchr), so
 * "@main@{2024-01-01}" becomes schema "@main", ref "{2024-01-01}" and the
 * statement is refused with 42P01 `table "users" is not tracked, so
 * "@{2024-01-01}" cannot be read`. Expected: split at the first '@' (branch
 * and schema names cannot contain '@'): schema none, ref
 * "main@{2024-01-01}", table public.users. */
Test(rewrite, fixed_ref_with_timestamp_is_split_at_last_at)
{
    rw_result_t r;
    rw(MAIN, "SELECT * FROM \"@main@{2024-01-01}\".users", &r);
    cr_expect_neq(r.action, RW_ERROR, "%s", r.message ? r.message : "");
    rewrite_result_free(&r);
    rw(MAIN, "SELECT * FROM \"public@feature/y@{yesterday}\".users", &r);
    cr_expect_eq(r.action, RW_REWRITTEN, "%s", r.message ? r.message : "");
    if (r.sql)
        cr_expect(strstr(r.sql, "'feature/y@{yesterday}'") != NULL, "%s", r.sql);
    rewrite_result_free(&r);
}

/* Was a bug: spellings of a relation that the splice does not cover produce SQL
 * that does not parse: TABLESAMPLE (only valid on a table), the inheritance
 * star `users *`, and `ONLY (users)`. Expected: TABLESAMPLE moved onto the
 * table of every arm of the overlay (it was refused with 0A000 before), and
 * the star / parenthesised ONLY consumed like ONLY is. */
Test(rewrite, tablesample_moves_onto_the_tables_of_the_overlay)
{
    rw_result_t r;
    expect_rewritten(BR, "SELECT count(*) FROM users u TABLESAMPLE bernoulli (10) REPEATABLE (7)",
                     "1", &r);
    /* both arms of main's rows sample the table; the delta and the history
     * are views, so their rows are kept by a hash of key and seed */
    cr_expect_eq(count_of(r.sql, "TABLESAMPLE bernoulli (10) REPEATABLE (7)"), 2, "%s", r.sql);
    cr_expect_eq(count_of(r.sql, "(hashtextextended(ROW(_dw.\"id\")::text, ((7))::bigint) & "
                                 "2147483647)::float8 / 2147483648.0 * 100 < ((10))::float8"),
                 1, "%s", r.sql);
    cr_expect_eq(count_of(r.sql, "(hashtextextended(ROW(_p.\"id\")::text, ((7))::bigint)"), 1, "%s",
                 r.sql);
    cr_expect(strstr(r.sql, ") u TABLESAMPLE") == NULL, "%s", r.sql);
    cr_expect(strstr(r.sql, ") u") != NULL, "%s", r.sql);
    rewrite_result_free(&r);
    expect_rewritten(BR, "SELECT * FROM public.users TABLESAMPLE SYSTEM ($1) WHERE id > 3", "1",
                     &r);
    cr_expect_eq(count_of(r.sql, "TABLESAMPLE SYSTEM ($1)"), 2, "%s", r.sql);
    cr_expect_eq(count_of(r.sql, "random() * 100 < (($1))::float8)"), 2, "%s", r.sql);
    rewrite_result_free(&r);
    /* other sampling methods cannot be turned into a row filter */
    expect_error(BR, "SELECT * FROM users TABLESAMPLE system_rows (10)", "0A000");
    /* untracked: as it is */
    expect_action(BR, "SELECT * FROM notrack TABLESAMPLE SYSTEM (10)", RW_FORWARD);
    expect_error(BR, "SELECT * FROM users TABLESAMPLE SYSTEM ((SELECT 10))", "0A000");
}

Test(rewrite, fixed_relation_spellings_produce_invalid_sql)
{
    const char *cases[] = {"SELECT * FROM users *", "SELECT * FROM users * u",
                           "SELECT * FROM ONLY (users)", "SELECT * FROM ONLY (public.users) x"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rw_result_t r;
        expect_rewritten(BR, cases[i], "1", &r);
        rewrite_result_free(&r);
    }
}

/* Was a bug: the FOR UPDATE check looks only at the top-level statement's
 * lockingClause. A lock inside a subquery, a CTE, DECLARE, EXPLAIN or
 * PREPARE is spliced into the overlay and PostgreSQL fails with "FOR UPDATE
 * is not allowed with UNION/INTERSECT/EXCEPT" instead of epoch's 0A000.
 * Conversely FOR UPDATE OF <an untracked alias> is refused although
 * PostgreSQL runs the rewritten statement fine (checked on PostgreSQL 15).
 * Expected: 0A000 for locks that reach a rewritten table wherever they are;
 * a rewrite when the locked relations are all untracked. */
Test(rewrite, fixed_row_lock_check_is_top_level_only)
{
    const char *nested[] = {
        "SELECT * FROM (SELECT * FROM users FOR UPDATE) s",
        "WITH c AS (SELECT * FROM users FOR UPDATE) SELECT * FROM c",
        "DECLARE c CURSOR FOR SELECT * FROM users FOR UPDATE",
        "EXPLAIN SELECT * FROM users FOR UPDATE",
        "PREPARE p AS SELECT * FROM users FOR SHARE",
    };
    for (size_t i = 0; i < sizeof nested / sizeof nested[0]; i++)
        expect_error(BR, nested[i], "0A000");
    rw_result_t r;
    expect_rewritten(BR, "SELECT * FROM users u, notrack n FOR UPDATE OF n", "1", &r);
    rewrite_result_free(&r);
}

/* Was a bug: the overlay's alias is the bare table name, so a schema-qualified
 * column reference no longer resolves: PostgreSQL 15 reports `invalid
 * reference to FROM-clause entry for table "users"` for the rewrite of
 * `SELECT public.users.name FROM public.users`. Expected: the output runs
 * (e.g. rewrite public.users.name to users.name, or refuse with a hint). */
Test(rewrite, fixed_schema_qualified_column_reference)
{
    rw_result_t r;
    const char *out = expect_rewritten(BR, "SELECT public.users.name FROM public.users", "1", &r);
    cr_expect(strstr(out, "public.users.name") == NULL, "%s", out);
    rewrite_result_free(&r);
}

/* Was a bug: `SET SCHEMA 'app'` is PostgreSQL's synonym of SET search_path (the
 * rewriter flags it RW_F_REFRESH), but rewrite_needs_parse does not see it,
 * so on main's hot path the cached search path goes stale. Likewise
 * set_config('epoch.branch', ...) changes the branch without any flag.
 * Expected: needs_parse true for SET SCHEMA; RW_F_REFRESH (or a refusal)
 * for set_config('epoch.branch' | 'epoch.as_of', ...). */
Test(rewrite, fixed_resolution_changes_missed)
{
    cr_expect(needs("SET SCHEMA 'app'"));
    rw_result_t r;
    rw(BR, "SELECT set_config('epoch.branch', 'other', false)", &r);
    cr_expect(r.action == RW_ERROR || (r.flags & RW_F_REFRESH), "action %d flags %u", r.action,
              r.flags);
    rewrite_result_free(&r);
}

/* Was a bug: on main, a "@ref" target of TRUNCATE / LOCK is treated as a read:
 * `TRUNCATE "@main".users` becomes `TRUNCATE "public"."users"` (although
 * "@ref" references are documented read-only and INSERT/UPDATE/ALTER on
 * them are refused), and `TRUNCATE "@feature/y".users` becomes TRUNCATE of
 * a subquery, which does not parse. Expected: 0A000 "read-only" for both. */
Test(rewrite, fixed_truncate_through_ref_on_main)
{
    expect_error(MAIN, "TRUNCATE \"@main\".users", "0A000");
    expect_error(MAIN, "TRUNCATE \"@feature/y\".users", "0A000");
    expect_error(MAIN, "LOCK TABLE \"@feature/y\".users", "0A000");
}

/* Was a bug: rewrite_needs_parse looks for `"@` only, so a "schema@ref" name
 * (`"public@feature/x".users`) on main's hot path is forwarded unparsed and
 * PostgreSQL answers `schema "public@feature/x" does not exist`, although
 * rewrite_statement handles it. Expected: true for any '@' inside a quoted
 * identifier (a cheap test: memchr for '@' when the text has a '"'). */
Test(rewrite, fixed_needs_parse_misses_schema_at_ref)
{
    cr_expect(needs("SELECT * FROM \"public@feature/x\".users"));
    cr_expect(needs("SELECT * FROM \"app@main\".accounts"));
}

/* Was a bug: `UPDATE t SET c = 1, c = 2` is an error in PostgreSQL (42601
 * `multiple assignments to same column "c"`), but on a branch the rewrite
 * silently keeps the last assignment (parse_set_list / item_for). Expected:
 * RW_ERROR 42601 with PostgreSQL's wording, as on main. */
Test(rewrite, fixed_multiple_assignments_to_one_column_accepted)
{
    expect_error(BR, "UPDATE users SET email = 'a', name = 'b', email = 'c'", "42601");
}

/* pg_dump restricts views (restrict_nonsystem_relation_kind = view); a
 * branch reads through epoch's views, so on a branch "view" is dropped from
 * the value, in both spellings; main keeps it. */
Test(rewrite, restrict_nonsystem_relation_kind_keeps_views_usable_on_a_branch)
{
    rw_result_t r;
    const char *dump = "SELECT set_config(name, 'view', false) FROM pg_settings "
                       "WHERE name = 'restrict_nonsystem_relation_kind'";
    cr_assert_eq(rw(BR, dump, &r), RW_REWRITTEN);
    cr_expect(strstr(r.sql, "set_config(name, epoch._kinds_but_view(name, 'view'), false)") != NULL,
              "%s", r.sql);
    rewrite_result_free(&r);
    cr_assert_eq(rw(BR, "SET restrict_nonsystem_relation_kind = view, 'foreign-table'", &r),
                 RW_REWRITTEN);
    cr_expect_str_eq(r.sql, "SET restrict_nonsystem_relation_kind = 'foreign-table'");
    rewrite_result_free(&r);
    cr_assert_eq(rw(BR, "SET LOCAL restrict_nonsystem_relation_kind = 'view'", &r), RW_REWRITTEN);
    cr_expect_str_eq(r.sql, "SET LOCAL restrict_nonsystem_relation_kind = ''");
    rewrite_result_free(&r);
    expect_action(MAIN, dump, RW_FORWARD);
}

/* Under column privileges (table secrets: SELECT granted on some columns)
 * a branch read reads only the columns the statement names; the others
 * come out as NULL. */
static void expect_columns(const char *sql, const char *want, bool narrowed)
{
    rw_result_t r;
    rw(BR, sql, &r);
    cr_assert_eq(r.action, RW_REWRITTEN, "[%s]: action %d (%s)", sql, r.action,
                 r.message ? r.message : "");
    if (narrowed)
        cr_expect(strstr(r.sql, want) != NULL, "[%s]\n  got: %s\n  want in it: %s", sql, r.sql, want);
    else
        cr_expect(strstr(r.sql, "NULL::") == NULL, "[%s] reads every column, got: %s", sql, r.sql);
    assert_parses(r.sql, sql);
    rewrite_result_free(&r);
}

Test(rewrite, column_privileges_read_only_the_columns_named)
{
    expect_columns("SELECT v FROM secrets WHERE id = 1", "SELECT _b.\"id\", _b.\"v\", NULL::integer AS \"w\" FROM", true);
    expect_columns("SELECT count(*) FROM secrets",
                   "SELECT NULL::integer AS \"id\", NULL::text AS \"v\", NULL::integer AS \"w\" FROM \"public\".\"secrets\"", true);
    expect_columns("SELECT 1 FROM secrets a JOIN secrets b USING (v)",
                   "SELECT NULL::integer AS \"id\", _b.\"v\", NULL::integer AS \"w\" FROM", true);
    expect_columns("SELECT s.w FROM secrets s ORDER BY 1", "SELECT NULL::integer AS \"id\", NULL::text AS \"v\", _b.\"w\"", true);
    expect_columns("SELECT (SELECT max(w) FROM users) FROM secrets", "NULL::text AS \"v\", _b.\"w\"", true);
    /* a whole row, a star, columns by position or by other names: every column */
    static const char *const whole[] = {
        "SELECT * FROM secrets",
        "SELECT s.* FROM secrets s",
        "SELECT s FROM secrets s",
        "SELECT row_to_json(secrets) FROM secrets",
        "SELECT (s).v FROM secrets s",
        "SELECT s.fullname FROM secrets s",
        "SELECT public.secrets.fullname FROM public.secrets",
        "SELECT x FROM secrets AS s(x)",
        "SELECT 1 FROM secrets NATURAL JOIN secrets x",
        "SELECT count(s.*) FROM secrets s",
    };
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++)
        expect_columns(whole[i], NULL, false);
}

/* ---------------------------------------- aggregates from main and the changes */

static void expect_agg(const char *sql, bool taken, const char *has)
{
    rw_result_t r;
    rw(BR, sql, &r);
    cr_assert_eq(r.action, RW_REWRITTEN, "[%s]: action %d (%s)", sql, r.action,
                 r.message ? r.message : "");
    bool agg = strstr(r.sql, ") AS _epoch_agg") != NULL;
    cr_expect_eq(agg, taken, "[%s]: aggregate path %s, expected %s\n  output: %s", sql,
                 agg ? "taken" : "not taken", taken ? "taken" : "not taken", r.sql);
    if (has)
        cr_expect(strstr(r.sql, has) != NULL, "[%s] lacks [%s]: %s", sql, has, r.sql);
    assert_parses(r.sql, sql);
    rewrite_result_free(&r);
}

Test(rewrite, aggregates_are_computed_from_main_and_the_branch_changes)
{
    /* the whole shape, once: main's count, minus the keys the branch holds,
     * plus its live rows; the history arms gated on main's last change */
    expect_agg("SELECT count(*) FROM users", true,
               "WITH _epoch_a0 AS MATERIALIZED (SELECT count(*) AS _a0, count(*) AS _r FROM "
               "epoch.\"dv_1\" AS \"users\" WHERE \"users\"._epoch_branch = 7 AND NOT "
               "\"users\"._epoch_deleted), _epoch_a1 AS MATERIALIZED (SELECT count(*) AS _a0, "
               "count(*) AS _r FROM \"public\".\"users\" AS \"users\" WHERE true), _epoch_a2 AS "
               "MATERIALIZED (SELECT -count(*) AS _a0, -count(*) AS _r FROM \"public\".\"users\" "
               "AS \"users\" WHERE (\"users\".\"id\") IN (SELECT _epoch_d.\"id\" FROM "
               "epoch.\"dk_1\" _epoch_d WHERE _epoch_d._epoch_branch = 7)), _epoch_a3 AS "
               "MATERIALIZED (SELECT -count(*) AS _a0, -count(*) AS _r FROM \"public\".\"users\" "
               "AS \"users\" WHERE epoch.\"_hmax_1\"() > 100 AND ");
    expect_agg("SELECT count(*) FROM users", true,
               " SELECT coalesce(sum(_a0), 0)::bigint AS \"count\" FROM (SELECT * FROM _epoch_a0 "
               "UNION ALL SELECT * FROM _epoch_a1 UNION ALL SELECT * FROM _epoch_a2 UNION ALL "
               "SELECT * FROM _epoch_a3 UNION ALL SELECT * FROM _epoch_a4) AS _epoch_agg");
    expect_agg("SELECT count(*) FROM users", true,
               "FROM epoch.\"hv_1\" AS \"users\" WHERE epoch.\"_hmax_1\"() > 100 AND "
               "\"users\"._epoch_seq + 0 > 100 AND \"users\"._epoch_existed AND NOT EXISTS");
    /* sums keep PostgreSQL's types (sum(int) bigint, sum(numeric) numeric)
     * and NULL over no row; avg is the sum over the count */
    expect_agg("SELECT sum(user_id), sum(total), avg(total) FROM orders", true,
               "(CASE WHEN sum(_n0) > 0 THEN sum(_a0) END)::bigint AS \"sum\", (CASE WHEN "
               "sum(_n1) > 0 THEN sum(_a1) END) AS \"sum\", (CASE WHEN sum(_n2) > 0 THEN "
               "sum(_a2)::numeric / sum(_n2)::numeric END) AS \"avg\"");
    /* groups: per arm, then added up; a group with no row left is dropped */
    expect_agg("SELECT user_id, count(*) AS n FROM orders o WHERE o.total > $1 GROUP BY user_id "
               "ORDER BY n DESC, 1 LIMIT 5",
               true, "GROUP BY _g0 HAVING sum(_r) <> 0 ORDER BY \"n\" DESC, 1 LIMIT 5");
    expect_agg("SELECT user_id, count(*) AS n FROM orders o WHERE o.total > $1 GROUP BY user_id",
               true, "WHERE true AND (o.total > $1) GROUP BY \"o\".\"user_id\"");
    expect_agg("SELECT count(*) FROM orders GROUP BY user_id ORDER BY user_id, count(*)", true,
               "ORDER BY _g0, coalesce(sum(_a0), 0)::bigint");
    expect_agg("SELECT pg_catalog.count(email) FROM public.users", true, "count(\"users\".\"email\")");
    expect_agg("SELECT count(*) FROM arrs", true, NULL); /* as ga but for "dbig" */
    /* a composite key */
    expect_agg("SELECT sum(qty) FROM line_items", true,
               "(\"line_items\".\"order_id\", \"line_items\".\"line_no\") IN (SELECT "
               "_epoch_d.\"order_id\", _epoch_d.\"line_no\" FROM epoch.\"dk_8\" _epoch_d");
    /* the WHERE is rewritten as usual, then copied into every arm */
    expect_agg("SELECT count(*) FROM orders WHERE user_id IN (SELECT id FROM users WHERE id < 9)",
               true, NULL);
    /* not taken: other aggregates, other shapes, what the arms could not
     * reproduce */
    static const char *const overlay[] = {
        "SELECT max(id) FROM users",
        "SELECT count(DISTINCT user_id) FROM orders",
        "SELECT count(*) FILTER (WHERE total > 1) FROM orders",
        "SELECT sum(name::int) FROM users",
        "SELECT sum(id) OVER () FROM users",
        "SELECT count(*) FROM users HAVING count(*) > 1",
        "SELECT count(*), 1 FROM users",
        "SELECT id FROM users",
        "SELECT count(*) FROM users u JOIN orders o ON o.user_id = u.id",
        "SELECT count(*) FROM ONLY users",
        "SELECT count(*) FROM users u (a, b, c)",
        "SELECT count(*) FROM users TABLESAMPLE bernoulli (10)",
        "SELECT count(*) FROM \"@main\".users",
        "SELECT count(*) FROM users WHERE users IS NOT NULL",
        "SELECT count(*) FROM users WHERE public.users.id > 1",
        "SELECT count(*) FROM users LIMIT (SELECT count(*) FROM orders)",
        "SELECT count(*) FROM users FOR UPDATE",
        "SELECT count(*) FROM users GROUP BY lower(name)",
        "SELECT count(*) FROM users ORDER BY max(id)",
        "SELECT DISTINCT count(*) FROM users",
        "WITH x AS (SELECT 1) SELECT count(*) FROM users",
        "SELECT count(*) FROM users UNION ALL SELECT count(*) FROM orders",
        "SELECT * FROM (SELECT count(*) FROM users) x",
        "SELECT sum(balance) FROM accounts",
        "SELECT count(*) FROM secrets",
        "SELECT count(*) FROM ga", /* the branch changed many of its rows: "dbig" */
    };
    for (size_t i = 0; i < sizeof overlay / sizeof overlay[0]; i++) {
        rw_result_t r;
        rw(BR, overlay[i], &r);
        cr_expect(r.action != RW_REWRITTEN || strstr(r.sql, ") AS _epoch_agg") == NULL,
                  "[%s]: took the aggregate path: %s", overlay[i], r.sql ? r.sql : "");
        rewrite_result_free(&r);
    }
}
