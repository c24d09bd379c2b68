/*
 * migrate — the versioned SQL that creates and upgrades the epoch schema in a
 * client's database.
 *
 * The proxy sends migrate_sql() as one statement (a DO block) on the
 * session's server connection the first time a database needs the schema.
 * The block takes a transaction-scoped advisory lock, reads the schema
 * version and applies only the missing steps, so it is idempotent, safe when
 * two sessions race, and atomic: a database is never half-migrated.
 */
#ifndef EPOCH_BRANCH_MIGRATE_H
#define EPOCH_BRANCH_MIGRATE_H

#define MIGRATE_VERSION 7

/* The DO block; a static string, valid for the life of the process. */
const char *migrate_sql(void);

#endif
