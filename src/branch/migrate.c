/*
 * migrate — wrap the schema steps and the functions files (embedded at build
 * time, listed by CMake) in one DO block guarded by a lock, the schema
 * version and the functions hash.
 *
 * Must never: apply a step twice, or leave functions of two builds mixed (the
 * functions files are applied all together or not at all).
 */
#include "branch/migrate.h"

#include "common/sqlbuf.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "branch/migrate_steps.h"

/* A step's part that needs the current functions (a trigger on epoch's own
 * tables, a one-time call) follows this line; it runs after functions/. */
#define AFTER_FUNCTIONS "\n-- epoch:after-functions\n"

/* Every step, and the functions, run as a nested DO block: to the outer
 * block each is one string token, so a run that applies nothing (the common
 * case: a session's first epoch statement on main) parses none of them
 * (warm: 1.3 ms for the old flat block, 0.9 ms). No SQL file may contain the
 * tags (tests/unit/test_migrate.c). */
#define OUTER_TAG "$epoch_migrate$"
#define STEP_TAG "$epoch_step$"
#define FUNCTIONS_TAG "$epoch_functions$"

const char *const migrate_reserved_tags[MIGRATE_NTAGS] = {OUTER_TAG, STEP_TAG, FUNCTIONS_TAG};

static char *sql;
static int64_t functions_hash;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int64_t hash_functions(void)
{
    XXH3_state_t *st = XXH3_createState();
    if (!st || XXH3_64bits_reset(st) != XXH_OK)
        abort(); /* at start-up, before any connection: nothing to fail gracefully */
    for (int i = 0; i < MIGRATE_NFUNCTIONS; i++) {
        /* names too, NUL-separated: moving a function to another file counts */
        const char *parts[2] = {migrate_functions_names[i], migrate_functions_files[i]};
        for (int p = 0; p < 2; p++)
            if (XXH3_64bits_update(st, parts[p], strlen(parts[p]) + 1) != XXH_OK)
                abort();
    }
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    int64_t s;
    memcpy(&s, &h, sizeof s); /* stored as a bigint: same bits, signed */
    return s;
}

static void build(void)
{
    functions_hash = hash_functions();
    sqlbuf_t sb = {0}, *f = &sb;
    sqlbuf_printf(
        f,
        "DO " OUTER_TAG "\nDECLARE _epoch_version bigint := 0; _epoch_functions bigint;\n"
        "BEGIN\n"
        /* the lock key is arbitrary but fixed: "epoch" in ASCII */
        "PERFORM pg_advisory_xact_lock(435509177192);\n"
        "IF to_regclass('epoch.meta') IS NOT NULL THEN\n"
        "  SELECT value INTO _epoch_version FROM epoch.meta WHERE key = 'schema_version';\n"
        "  SELECT value INTO _epoch_functions FROM epoch.meta WHERE key = 'functions_hash';\n"
        "END IF;\n"
        "IF _epoch_version > %d THEN\n  RAISE EXCEPTION 'the epoch schema in this database is "
        "at version %%, newer than this proxy (%d)', _epoch_version USING ERRCODE = '55000', "
        "HINT = 'Upgrade epoch-proxy.';\nEND IF;\n"
        /* who may create or upgrade the schema (docs/privileges.md): say
         * what is missing rather than fail on the first statement */
        "IF to_regnamespace('epoch') IS NULL AND NOT has_database_privilege(current_database(), "
        "'CREATE') THEN\n  RAISE EXCEPTION 'epoch is not set up in database \"%%\" and role "
        "\"%%\" cannot set it up (it needs CREATE on the database)', current_database(), "
        "current_user USING ERRCODE = '42501', HINT = 'Connect once through epoch-proxy as the "
        "database owner or a superuser, or GRANT CREATE ON DATABASE to a role that will own "
        "schema epoch.';\n"
        "ELSIF to_regnamespace('epoch') IS NOT NULL AND (_epoch_version < %d OR _epoch_functions "
        "IS DISTINCT FROM %" PRId64 ") AND NOT pg_has_role(current_user, (SELECT nspowner FROM "
        "pg_namespace WHERE nspname = 'epoch'), 'USAGE') THEN\n  RAISE EXCEPTION 'the epoch "
        "schema in database \"%%\" needs an upgrade to this proxy''s version that role \"%%\" "
        "cannot make', current_database(), current_user USING ERRCODE = '42501', HINT = format("
        "'Connect once through this epoch-proxy as %%s (the owner of schema epoch) or a "
        "superuser.', (SELECT quote_ident(r.rolname) FROM pg_namespace n JOIN pg_roles r ON r.oid "
        "= n.nspowner WHERE n.nspname = 'epoch'));\nEND IF;\n",
        MIGRATE_VERSION, MIGRATE_VERSION, MIGRATE_VERSION, functions_hash);
    for (int i = 0; i < MIGRATE_VERSION; i++) {
        const char *step = migrate_schema_steps[i];
        const char *after = strstr(step, AFTER_FUNCTIONS);
        int n = after ? (int)(after - step) : (int)strlen(step);
        sqlbuf_printf(
            f,
            "IF _epoch_version < %d THEN\nDO " STEP_TAG "\nBEGIN\n%.*s\nEND\n" STEP_TAG
            ";\nUPDATE epoch.meta SET value = %d WHERE key = 'schema_version';\nEND IF;\n",
            i + 1, n, step, i + 1);
    }
    /* the functions too, in one nested block */
    sqlbuf_printf(f,
                  "IF _epoch_version < %d OR _epoch_functions IS DISTINCT FROM %" PRId64 " THEN\n"
                  "DO " FUNCTIONS_TAG "\nBEGIN\n",
                  MIGRATE_VERSION, functions_hash);
    for (int i = 0; i < MIGRATE_NFUNCTIONS; i++)
        sqlbuf_printf(f, "-- functions/%s\n%s\n", migrate_functions_names[i],
                      migrate_functions_files[i]);
    sqlbuf_printf(f,
                  "END\n" FUNCTIONS_TAG ";\n"
                  "INSERT INTO epoch.meta VALUES ('functions_hash', %" PRId64 ")\n"
                  "  ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;\nEND IF;\n",
                  functions_hash);
    for (int i = 0; i < MIGRATE_VERSION; i++) {
        const char *after = strstr(migrate_schema_steps[i], AFTER_FUNCTIONS);
        if (after)
            sqlbuf_printf(f,
                          "IF _epoch_version < %d THEN\nDO " STEP_TAG "\nBEGIN\n%s\nEND\n" STEP_TAG
                          ";\nEND IF;\n",
                          i + 1, after + strlen(AFTER_FUNCTIONS));
    }
    sqlbuf_puts(f, "END\n" OUTER_TAG);
    sql = sqlbuf_take(&sb);
}

const char *migrate_sql(void)
{
    pthread_once(&once, build);
    return sql;
}

int64_t migrate_functions_hash(void)
{
    pthread_once(&once, build);
    return functions_hash;
}

bool migrate_functions_current(const char *stored)
{
    if (!stored || !*stored)
        return false;
    char *end;
    long long v = strtoll(stored, &end, 10);
    return *end == '\0' && v == migrate_functions_hash();
}
