/*
 * migrate — wrap the numbered migrations (sql/NNN_*.sql, embedded at build
 * time) in one DO block guarded by a lock and the schema version.
 */
#include "branch/migrate.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

extern const char migration_001[];
extern const char migration_002[];
extern const char migration_003[];
extern const char migration_004[];
extern const char migration_005[];
extern const char migration_006[];
extern const char migration_007[];

/* Never edit a step that has shipped: databases already at its version
 * would not get the change. Add a step (CREATE OR REPLACE …) instead. */
static const char *const steps[MIGRATE_VERSION] = {migration_001, migration_002, migration_003,
                                                   migration_004, migration_005, migration_006,
                                                   migration_007};

static char *sql;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void build(void)
{
    size_t len = 0;
    FILE *f = open_memstream(&sql, &len);
    if (!f)
        return;
    /* the lock key is arbitrary but fixed: "epoch" in ASCII */
    fputs("DO $epoch_migrate$\nDECLARE v bigint := 0;\nBEGIN\n"
          "PERFORM pg_advisory_xact_lock(435509177192);\n"
          "IF to_regclass('epoch.meta') IS NOT NULL THEN\n"
          "  SELECT value INTO v FROM epoch.meta WHERE key = 'schema_version';\n"
          "END IF;\n",
          f);
    for (int i = 0; i < MIGRATE_VERSION; i++) {
        fprintf(f,
                "IF v < %d THEN\n%s\nUPDATE epoch.meta SET value = %d WHERE key = "
                "'schema_version';\nEND IF;\n",
                i + 1, steps[i], i + 1);
    }
    fprintf(f,
            "IF v > %d THEN\n  RAISE EXCEPTION 'the epoch schema in this database is at "
            "version %%, newer than this proxy (%d)', v USING ERRCODE = '55000', HINT = "
            "'Upgrade epoch-proxy.';\nEND IF;\nEND\n$epoch_migrate$",
            MIGRATE_VERSION, MIGRATE_VERSION);
    fclose(f);
}

const char *migrate_sql(void)
{
    pthread_once(&once, build);
    return sql;
}
