/*
 * migrate_steps — the embedded SQL files, listed by CMake from their names
 * (gen/migrate_steps.c): adding a step or an area is adding a file.
 *
 * Only migrate.c reads these; the arrays are static and NUL-terminated.
 */
#ifndef EPOCH_BRANCH_MIGRATE_STEPS_H
#define EPOCH_BRANCH_MIGRATE_STEPS_H

#include "branch/migrate_version.h"

/* sql/schema/NNN_*.sql in order: step i + 1 is migrate_schema_steps[i] */
extern const char *const migrate_schema_steps[MIGRATE_VERSION];
/* sql/functions/<area>.sql in file-name order, and their names */
extern const char *const migrate_functions_files[MIGRATE_NFUNCTIONS];
extern const char *const migrate_functions_names[MIGRATE_NFUNCTIONS];

#endif
