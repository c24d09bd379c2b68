/*
 * test_migrate — unit tests of the migration DO block (src/branch/migrate.c)
 * and of how the login probe reads the 'version' row (catalog_schema_version):
 *
 *  - every function and view of sql/functions/ is defined exactly once in
 *    the block, after every schema step, inside the branch guarded by the
 *    functions hash, which the block also stores;
 *  - a schema at MIGRATE_VERSION counts as current only with this proxy's
 *    functions hash: another hash, or none (a schema made before
 *    sql/functions/), makes the probe run the block; a newer version stays
 *    newer (refused with 55000).
 */
#include <criterion/criterion.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "branch/catalog.h"
#include "branch/migrate.h"
#include "branch/migrate_steps.h"

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

Test(migrate, each_function_and_view_is_defined_once)
{
    const char *sql = migrate_sql();
    cr_assert_not_null(sql);
    const char *names[] = {"epoch._session_current()", "epoch._session(",
                           "epoch.branch_create(",     "epoch.track(",
                           "epoch._capture(",          "epoch.watch_ddl()",
                           "epoch._notify_catalog()",  "VIEW epoch.tables",
                           "VIEW epoch.branches"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char def[128];
        snprintf(def, sizeof def, "CREATE OR REPLACE %s%s",
                 strncmp(names[i], "VIEW", 4) == 0 ? "" : "FUNCTION ", names[i]);
        cr_expect_eq(count(sql, def), 1, "%s: %d definitions", def, count(sql, def));
    }
    /* no plain CREATE FUNCTION/VIEW left (a second run would fail on it) */
    cr_expect_eq(count(sql, "\nCREATE FUNCTION"), 0);
    cr_expect_eq(count(sql, "\nCREATE VIEW"), 0);
}

Test(migrate, functions_come_after_the_steps_under_the_hash)
{
    const char *sql = migrate_sql();
    char guard[160], store[160];
    snprintf(guard, sizeof guard,
             "IF _epoch_version < %d OR _epoch_functions IS DISTINCT FROM %" PRId64 " THEN",
             MIGRATE_VERSION, migrate_functions_hash());
    snprintf(store, sizeof store, "INSERT INTO epoch.meta VALUES ('functions_hash', %" PRId64 ")",
             migrate_functions_hash());
    const char *g = strstr(sql, guard);
    const char *s = strstr(sql, store);
    char last_step[64];
    snprintf(last_step, sizeof last_step, "IF _epoch_version < %d THEN", MIGRATE_VERSION);
    const char *step = strstr(sql, last_step);
    const char *fn = strstr(sql, "CREATE OR REPLACE FUNCTION epoch._session_current()");
    cr_assert(g && s && step && fn, "guard %p store %p step %p fn %p", g, s, step, fn);
    cr_expect(step < g && g < fn && fn < s);
    /* one-time parts of the steps that need the functions run after them */
    const char *trig = strstr(sql, "CREATE TRIGGER epoch_notify AFTER");
    cr_expect(trig && trig > s);
    cr_expect_eq(count(sql, "\n-- epoch:after-functions\n"), 0); /* the marker line itself */
}

static const char *version_rows[][5] = {
    {"version", "7", NULL, NULL, NULL},
    {"branch", "0", "main", "0", "1"},
};

static int64_t probe(const char *version, const char *hash)
{
    const char *v[10];
    memcpy(v, version_rows, sizeof v);
    v[1] = version;
    v[2] = hash;
    return catalog_schema_version(2, 5, v);
}

Test(migrate, probe_counts_another_functions_hash_as_one_step_older)
{
    char current[32], version[16], newer[16], older[16];
    snprintf(current, sizeof current, "%" PRId64, migrate_functions_hash());
    snprintf(version, sizeof version, "%d", MIGRATE_VERSION);
    snprintf(newer, sizeof newer, "%d", MIGRATE_VERSION + 1);
    snprintf(older, sizeof older, "%d", MIGRATE_VERSION - 1);
    cr_expect_eq(probe(version, current), MIGRATE_VERSION);
    cr_expect_eq(probe(version, "42"), MIGRATE_VERSION - 1);
    cr_expect_eq(probe(version, NULL), MIGRATE_VERSION - 1); /* made before sql/functions/ */
    cr_expect_eq(probe(newer, current), MIGRATE_VERSION + 1);
    cr_expect_eq(probe(newer, "42"), MIGRATE_VERSION + 1); /* still refused as newer */
    cr_expect_eq(probe(older, current), MIGRATE_VERSION - 1);
    const char *no_version[] = {"branch", "0", "main", "0", "1"};
    cr_expect_eq(catalog_schema_version(1, 5, no_version), 0);
}

Test(migrate, functions_hash_text_must_match_exactly)
{
    char current[40];
    snprintf(current, sizeof current, "%" PRId64, migrate_functions_hash());
    cr_expect(migrate_functions_current(current));
    cr_expect_not(migrate_functions_current(NULL));
    cr_expect_not(migrate_functions_current(""));
    strcat(current, "x");
    cr_expect_not(migrate_functions_current(current));
}

Test(migrate, no_sql_file_contains_the_block_tags)
{
    for (int t = 0; t < MIGRATE_NTAGS; t++) {
        for (int i = 0; i < MIGRATE_VERSION; i++)
            cr_expect_null(strstr(migrate_schema_steps[i], migrate_reserved_tags[t]),
                           "schema step %d contains %s", i + 1, migrate_reserved_tags[t]);
        for (int i = 0; i < MIGRATE_NFUNCTIONS; i++)
            cr_expect_null(strstr(migrate_functions_files[i], migrate_reserved_tags[t]),
                           "functions/%s contains %s", migrate_functions_names[i],
                           migrate_reserved_tags[t]);
    }
}
