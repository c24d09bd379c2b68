/*
 * catalog — what the proxy knows about one session's view of the epoch
 * metadata: its branch (id, base point), its search path, and the tracked
 * tables with their columns and primary keys.
 *
 * Loaded from the rows of epoch._session_current() (see
 * sql/functions/session.sql, which lists each kind of row: tables, columns,
 * the views that read a tracked table, directly or through other views);
 * immutable afterwards, so the rewriter can read it without locks. The
 * caller owns a catalog_t and frees it with catalog_free.
 */
#ifndef EPOCH_BRANCH_CATALOG_H
#define EPOCH_BRANCH_CATALOG_H

#include <stdbool.h>
#include <stdint.h>

/* A unique index of a tracked table other than its primary key (plain:
 * no predicate, no expressions). */
typedef struct catalog_unique {
    char *name;
    bool *cols; /* per column of the table: part of the index */
} catalog_unique_t;

typedef struct catalog_table {
    int id;       /* epoch.tracked.id; storage is epoch.d_<id>, epoch.h_<id> */
    char *schema; /* as stored in pg_namespace (not quoted) */
    char *name;
    char *pk_name; /* the primary key constraint's name, for error messages */
    char **cols;   /* in attnum order */
    bool *is_pk;
    char **types;              /* format_type() without typmod, for casts */
    char **defaults;           /* default expressions (NULL = none), as the delta has them; for a
                                  generated column, its generation expression */
    char *identity;            /* 'a' GENERATED ALWAYS, 'd' BY DEFAULT AS IDENTITY, '\0' neither
                                  (NULL = no identity column) */
    bool *generated;           /* a stored generated column: the delta computes it, a write never
                                  names it (NULL = none) */
    bool rls;                  /* row-level security enabled: branch UPDATE/DELETE filter their
                                  targets by the policies (epoch._rls_ok_<id>) */
    bool col_acl;              /* SELECT granted on some columns: a read on a branch reads only
                                  the columns the statement names (rewrite_columns.c) */
    bool delta_big;            /* the branch changed many of its rows (epoch._delta_big: 5 % of
                                  main's, 1,000 to 20,000): aggregates read the overlay
                                  (rewrite_agg.c) */
    catalog_unique_t *uniques; /* not enforced on branches; known for ON CONFLICT */
    int nuniques;
    int ncols;
} catalog_table_t;

/* A view whose definition reads a tracked table (directly or through other
 * views): on a branch its references are replaced with its definition,
 * rewritten in turn. Materialized views are never listed (they hold the
 * data of their last refresh on main). */
typedef struct catalog_view {
    char *schema; /* as stored in pg_namespace (not quoted) */
    char *name;
    char *definition;      /* pg_get_viewdef() with every non-pg_catalog name
                              schema-qualified, without the trailing ';' */
    bool security_barrier; /* WITH (security_barrier): cannot be inlined */
} catalog_view_t;

typedef struct catalog {
    int64_t branch_id; /* 0 = main */
    int64_t base_seq;
    int64_t version; /* epoch.meta catalog_version */
    bool read_only;  /* epoch.as_of is set: the session reads a ref, writes nothing */
    /* epoch.as_of names a past state (a commit, a tag, main@{time}, a
     * branch's working rows): the session reads (branch_id, base_seq, point)
     * and is rewritten even when branch_id is 0 (main at a point) */
    bool historic;
    int64_t point;    /* the branch's rows at this point; -1: its working rows */
    bool ddl_watched; /* DDL notifies epoch_catalog (epoch.watch_ddl(), migration 5) */
    char *branch_name;
    char **path; /* current_schemas(true), in order */
    int npath;
    catalog_table_t *tables;
    int ntables;
    char **rels; /* schema, name pairs: every relation on the path whose name
                    is also a tracked table's or a listed view's (to resolve shadowing) */
    int nrels;
    catalog_view_t *views;
    int nviews;
    /* a hash of every row the catalog was loaded from: two catalogs with the
     * same signature rewrite every statement the same way (the rewrite cache
     * keys on it: a view created on main changes no catalog version) */
    uint64_t signature;
} catalog_t;

/* The index of t's column `name` in t->cols, or -1. */
int catalog_col_index(const catalog_table_t *t, const char *name);

/* The column's attributes as PostgreSQL enforces them on the base table. */
static inline bool catalog_col_generated(const catalog_table_t *t, int col)
{
    return t->generated && t->generated[col];
}

static inline char catalog_col_identity(const catalog_table_t *t, int col)
{
    return t->identity ? t->identity[col] : '\0';
}

/* The schema version the rows carry (kind 'version': a = schema version,
 * b = functions hash), as this proxy counts it: a schema at MIGRATE_VERSION
 * whose functions hash is not this proxy's counts as MIGRATE_VERSION - 1 (the
 * migration block must run: it re-applies the functions); 0 when there is
 * no such row (a schema older than step 7). The login probe runs the block
 * unless this equals MIGRATE_VERSION. */
int64_t catalog_schema_version(int nrows, int ncols, const char *const *values);

/* Fill cat from the result of `SELECT * FROM epoch._session(...)`: nrows rows
 * of 5 text columns (kind, a, b, c, d), values[row * 5 + col], NULL = SQL
 * NULL. false on a malformed result or out of memory (cat is then empty). */
bool catalog_load(catalog_t *cat, int nrows, int ncols, const char *const *values)
    __attribute__((warn_unused_result));
void catalog_free(catalog_t *cat);

/* The tracked table `schema.name`; with schema NULL, the first match along
 * the search path (as PostgreSQL resolves an unqualified name). NULL when the
 * name does not resolve to a tracked table. */
const catalog_table_t *catalog_find(const catalog_t *cat, const char *schema, const char *name);
/* The tracked table of id (epoch.tracked.id), or NULL. */
const catalog_table_t *catalog_find_id(const catalog_t *cat, long id);

/* The listed view `schema.name` (schema "pg_temp" is the session's temporary
 * schema); with schema NULL, resolved along the search path like
 * catalog_find. NULL when the name is not such a view (a view that reads no
 * tracked table is not listed: it reads the same rows on every branch). */
const catalog_view_t *catalog_find_view(const catalog_t *cat, const char *schema, const char *name);

#endif
