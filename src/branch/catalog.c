/*
 * catalog — parse epoch._session() rows into a catalog_t and resolve table
 * names the way PostgreSQL does (search path order, shadowing).
 *
 * Must never: guess. A name that resolves to an untracked relation earlier on
 * the search path is untracked, even when a tracked table of that name exists
 * further down.
 */
#include "branch/catalog.h"

#include "branch/migrate.h"

#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

enum { COL_KIND, COL_A, COL_B, COL_C, COL_D, SESSION_COLS };

void catalog_free(catalog_t *cat)
{
    for (int i = 0; i < cat->ntables; i++) {
        catalog_table_t *t = &cat->tables[i];
        free(t->schema);
        free(t->name);
        free(t->pk_name);
        for (int j = 0; j < t->ncols; j++) {
            free(t->cols[j]);
            free(t->types ? t->types[j] : NULL);
            free(t->defaults ? t->defaults[j] : NULL);
        }
        free(t->cols);
        free(t->types);
        free(t->defaults);
        free(t->identity);
        free(t->generated);
        free(t->is_pk);
        for (int j = 0; j < t->nuniques; j++) {
            free(t->uniques[j].name);
            free(t->uniques[j].cols);
        }
        free(t->uniques);
    }
    free(cat->tables);
    for (int i = 0; i < cat->npath; i++)
        free(cat->path[i]);
    free(cat->path);
    for (int i = 0; i < 2 * cat->nrels; i++)
        free(cat->rels[i]);
    free(cat->rels);
    for (int i = 0; i < cat->nviews; i++) {
        free(cat->views[i].schema);
        free(cat->views[i].name);
        free(cat->views[i].definition);
    }
    free(cat->views);
    free(cat->branch_name);
    memset(cat, 0, sizeof *cat);
}

/* catalog_find_id for the loaders, which fill the tables in */
static catalog_table_t *table_by_id(catalog_t *cat, int id)
{
    return (catalog_table_t *)catalog_find_id(cat, id);
}

int catalog_col_index(const catalog_table_t *t, const char *name)
{
    for (int i = 0; i < t->ncols; i++)
        if (strcmp(t->cols[i], name) == 0)
            return i;
    return -1;
}

static bool add_column(catalog_table_t *t, const char *name, bool is_pk, const char *type)
{
    if (t->defaults || t->identity || t->generated || t->uniques)
        return false; /* the per-column arrays are sized by the columns, which come first */
    char **types = realloc(t->types, (size_t)(t->ncols + 1) * sizeof *types);
    if (!types)
        return false;
    t->types = types;
    t->types[t->ncols] = NULL;
    char **cols = realloc(t->cols, (size_t)(t->ncols + 1) * sizeof *cols);
    if (!cols)
        return false;
    t->cols = cols;
    bool *pk = realloc(t->is_pk, (size_t)(t->ncols + 1) * sizeof *pk);
    if (!pk)
        return false;
    t->is_pk = pk;
    t->cols[t->ncols] = strdup(name);
    if (!t->cols[t->ncols])
        return false;
    t->types[t->ncols] = type ? strdup(type) : NULL;
    t->is_pk[t->ncols++] = is_pk;
    return !type || t->types[t->ncols - 1];
}

static bool load_branch(catalog_t *cat, const char *const *v)
{
    if (!v[COL_A] || !v[COL_B] || !v[COL_C] || !v[COL_D])
        return false;
    cat->branch_id = strtoll(v[COL_A], NULL, 10);
    cat->base_seq = strtoll(v[COL_C], NULL, 10);
    cat->version = strtoll(v[COL_D], NULL, 10);
    free(cat->branch_name);
    cat->branch_name = strdup(v[COL_B]);
    return cat->branch_name != NULL;
}

static bool load_path(catalog_t *cat, const char *const *v)
{
    if (!v[COL_B])
        return false;
    char **path = realloc(cat->path, (size_t)(cat->npath + 1) * sizeof *path);
    if (!path)
        return false;
    cat->path = path;
    cat->path[cat->npath] = strdup(v[COL_B]);
    return cat->path[cat->npath++] != NULL;
}

static bool load_rel(catalog_t *cat, const char *const *v)
{
    if (!v[COL_B] || !v[COL_C])
        return false;
    char **rels = realloc(cat->rels, (size_t)(cat->nrels + 1) * 2 * sizeof *rels);
    if (!rels)
        return false;
    cat->rels = rels;
    rels[2 * cat->nrels] = strdup(v[COL_B]);
    rels[2 * cat->nrels + 1] = strdup(v[COL_C]);
    cat->nrels++;
    return rels[2 * cat->nrels - 2] && rels[2 * cat->nrels - 1];
}

static bool load_table(catalog_t *cat, const char *const *v)
{
    if (!v[COL_A] || !v[COL_B] || !v[COL_C])
        return false;
    catalog_table_t *tables = realloc(cat->tables, (size_t)(cat->ntables + 1) * sizeof *tables);
    if (!tables)
        return false;
    cat->tables = tables;
    catalog_table_t *t = &tables[cat->ntables++];
    memset(t, 0, sizeof *t);
    t->id = atoi(v[COL_A]);
    t->schema = strdup(v[COL_B]);
    t->name = strdup(v[COL_C]);
    t->pk_name = v[COL_D] ? strdup(v[COL_D]) : NULL;
    return t->schema && t->name && (!v[COL_D] || t->pk_name);
}

static bool load_column(catalog_t *cat, const char *const *v)
{
    if (!v[COL_A] || !v[COL_B] || !v[COL_C])
        return false;
    catalog_table_t *t = table_by_id(cat, atoi(v[COL_A]));
    return t && add_column(t, v[COL_B], strcmp(v[COL_C], "true") == 0, v[COL_D]);
}

static bool load_default(catalog_t *cat, const char *const *v)
{
    if (!v[COL_A] || !v[COL_B] || !v[COL_C])
        return false;
    catalog_table_t *t = table_by_id(cat, atoi(v[COL_A]));
    if (!t)
        return false;
    int i = catalog_col_index(t, v[COL_B]);
    if (i < 0)
        return true; /* a column added after tracking: ignored */
    if (!t->defaults && !(t->defaults = calloc((size_t)t->ncols, sizeof *t->defaults)))
        return false;
    free(t->defaults[i]);
    t->defaults[i] = strdup(v[COL_C]);
    return t->defaults[i] != NULL;
}

static bool load_attr(catalog_t *cat, const char *const *v)
{
    /* identity (c: 'a' or 'd') or stored generated (d: 's') column */
    if (!v[COL_A] || !v[COL_B])
        return false;
    catalog_table_t *t = table_by_id(cat, atoi(v[COL_A]));
    if (!t)
        return false;
    int i = catalog_col_index(t, v[COL_B]);
    if (i < 0)
        return true; /* a column added after tracking: ignored */
    if (v[COL_C] && v[COL_C][0]) {
        if (!t->identity && !(t->identity = calloc((size_t)t->ncols, 1)))
            return false;
        t->identity[i] = v[COL_C][0];
    }
    if (v[COL_D] && v[COL_D][0]) {
        if (!t->generated && !(t->generated = calloc((size_t)t->ncols, sizeof *t->generated)))
            return false;
        t->generated[i] = true;
    }
    return true;
}

static bool load_rls(catalog_t *cat, const char *const *v)
{
    /* a = the table's id: row-level security is enabled on it */
    catalog_table_t *t = v[COL_A] ? table_by_id(cat, atoi(v[COL_A])) : NULL;
    if (t)
        t->rls = true;
    return true;
}

static bool load_colacl(catalog_t *cat, const char *const *v)
{
    /* a = the table's id: SELECT is granted on some of its columns */
    catalog_table_t *t = v[COL_A] ? table_by_id(cat, atoi(v[COL_A])) : NULL;
    if (t)
        t->col_acl = true;
    return true;
}

static bool load_dbig(catalog_t *cat, const char *const *v)
{
    /* a = the table's id: the branch changed many of its rows */
    catalog_table_t *t = v[COL_A] ? table_by_id(cat, atoi(v[COL_A])) : NULL;
    if (t)
        t->delta_big = true;
    return true;
}

static bool load_unique(catalog_t *cat, const char *const *v)
{
    /* a: table id, b: index name, c: one of its columns */
    if (!v[COL_A] || !v[COL_B] || !v[COL_C])
        return false;
    catalog_table_t *t = table_by_id(cat, atoi(v[COL_A]));
    if (!t)
        return false;
    int col = catalog_col_index(t, v[COL_C]);
    catalog_unique_t *u = NULL;
    for (int i = 0; i < t->nuniques && !u; i++)
        if (strcmp(t->uniques[i].name, v[COL_B]) == 0)
            u = &t->uniques[i];
    if (!u) {
        catalog_unique_t *grown = realloc(t->uniques, (size_t)(t->nuniques + 1) * sizeof *grown);
        if (!grown)
            return false;
        t->uniques = grown;
        u = &grown[t->nuniques];
        u->name = strdup(v[COL_B]);
        u->cols = calloc((size_t)t->ncols + 1, sizeof *u->cols); /* +1: never 0 bytes */
        if (!u->name || !u->cols) {
            free(u->name);
            free(u->cols);
            return false;
        }
        t->nuniques++;
    }
    if (col >= 0) /* a column added after tracking: not matched */
        u->cols[col] = true;
    return true;
}

static bool load_view(catalog_t *cat, const char *const *v)
{
    /* a: flags ('b' = security_barrier), b: schema, c: name, d: definition */
    if (!v[COL_B] || !v[COL_C] || !v[COL_D])
        return false;
    catalog_view_t *views = realloc(cat->views, (size_t)(cat->nviews + 1) * sizeof *views);
    if (!views)
        return false;
    cat->views = views;
    catalog_view_t *view = &views[cat->nviews++];
    memset(view, 0, sizeof *view);
    view->security_barrier = v[COL_A] && strchr(v[COL_A], 'b');
    view->schema = strdup(v[COL_B]);
    view->name = strdup(v[COL_C]);
    view->definition = strdup(v[COL_D]);
    if (!view->schema || !view->name || !view->definition)
        return false;
    /* pg_get_viewdef ends the query with ';': it is spliced into another */
    size_t n = strlen(view->definition);
    while (n > 0 && (view->definition[n - 1] == ';' || view->definition[n - 1] == ' ' ||
                     view->definition[n - 1] == '\n' || view->definition[n - 1] == '\t'))
        view->definition[--n] = '\0';
    return n > 0;
}

static bool load_as_of(catalog_t *cat, const char *const *v)
{
    (void)v;
    cat->read_only = true;
    return true;
}

static bool load_point(catalog_t *cat, const char *const *v)
{
    cat->historic = true;
    cat->point = v[COL_A] ? strtoll(v[COL_A], NULL, 10) : -1;
    return true;
}

static bool load_ddl_watch(catalog_t *cat, const char *const *v)
{
    cat->ddl_watched = v[COL_A] && strcmp(v[COL_A], "2") == 0; /* both event triggers */
    return true;
}

/* One loader per kind of catalog row (epoch._session_current()). */
static const struct row_loader {
    const char *kind;
    bool (*load)(catalog_t *cat, const char *const *v);
} row_loaders[] = {
    {"branch", load_branch}, {"path", load_path},           {"rel", load_rel},
    {"table", load_table},   {"column", load_column},       {"default", load_default},
    {"attr", load_attr},     {"unique", load_unique},       {"view", load_view},
    {"as_of", load_as_of},   {"ddl_watch", load_ddl_watch}, {"point", load_point},
    {"rls", load_rls},       {"colacl", load_colacl},       {"dbig", load_dbig},
};

static bool load_row(catalog_t *cat, const char *const *v)
{
    const char *kind = v[COL_KIND];
    if (!kind)
        return false;
    for (size_t i = 0; i < sizeof row_loaders / sizeof row_loaders[0]; i++)
        if (strcmp(kind, row_loaders[i].kind) == 0)
            return row_loaders[i].load(cat, v);
    return true; /* kinds added by later migrations are ignored */
}

/* Feed one row's values to the signature, NULL distinct from ''. */
static bool hash_row(XXH3_state_t *st, const char *const *v)
{
    for (int c = 0; c < SESSION_COLS; c++) {
        const char *p = v[c] ? v[c] : "";
        const char tag = v[c] ? 'v' : 'n';
        if (XXH3_64bits_update(st, p, strlen(p) + 1) != XXH_OK ||
            XXH3_64bits_update(st, &tag, 1) != XXH_OK)
            return false;
    }
    return true;
}

int64_t catalog_schema_version(int nrows, int ncols, const char *const *values)
{
    for (int r = 0; ncols == SESSION_COLS && r < nrows; r++) {
        const char *const *v = values + (size_t)r * SESSION_COLS;
        if (!v[COL_KIND] || strcmp(v[COL_KIND], "version") != 0 || !v[COL_A])
            continue;
        int64_t version = strtoll(v[COL_A], NULL, 10);
        /* the functions of another build (or of none: a schema made before
         * functions/): one step to apply, the block re-applies them */
        if (version == MIGRATE_VERSION && !migrate_functions_current(v[COL_B]))
            return MIGRATE_VERSION - 1;
        return version;
    }
    return 0;
}

bool catalog_load(catalog_t *cat, int nrows, int ncols, const char *const *values)
{
    memset(cat, 0, sizeof *cat);
    cat->point = -1;
    if (ncols != SESSION_COLS)
        return false;
    bool seen_branch = false;
    XXH3_state_t *st = XXH3_createState();
    if (!st || XXH3_64bits_reset(st) != XXH_OK) {
        XXH3_freeState(st);
        return false;
    }
    for (int r = 0; r < nrows; r++) {
        const char *const *v = values + (size_t)r * SESSION_COLS;
        if (!load_row(cat, v) || !hash_row(st, v)) {
            XXH3_freeState(st);
            catalog_free(cat);
            return false;
        }
        seen_branch |= v[COL_KIND] && strcmp(v[COL_KIND], "branch") == 0;
    }
    cat->signature = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    for (int i = 0; i < cat->ntables; i++)
        if (cat->tables[i].ncols == 0)
            seen_branch = false; /* a tracked table without columns: corrupt */
    if (!seen_branch)
        catalog_free(cat);
    return seen_branch;
}

static const catalog_table_t *find_exact(const catalog_t *cat, const char *schema, const char *name)
{
    for (int i = 0; i < cat->ntables; i++)
        if (strcmp(cat->tables[i].name, name) == 0 && strcmp(cat->tables[i].schema, schema) == 0)
            return &cat->tables[i];
    return NULL;
}

static bool relation_exists(const catalog_t *cat, const char *schema, const char *name)
{
    for (int i = 0; i < cat->nrels; i++)
        if (strcmp(cat->rels[2 * i + 1], name) == 0 && strcmp(cat->rels[2 * i], schema) == 0)
            return true;
    return false;
}

const catalog_table_t *catalog_find_id(const catalog_t *cat, long id)
{
    for (int i = 0; i < cat->ntables; i++)
        if (cat->tables[i].id == id)
            return &cat->tables[i];
    return NULL;
}

const catalog_table_t *catalog_find(const catalog_t *cat, const char *schema, const char *name)
{
    if (!cat || !name)
        return NULL;
    if (schema)
        return find_exact(cat, schema, name);
    for (int i = 0; i < cat->npath; i++) {
        const catalog_table_t *t = find_exact(cat, cat->path[i], name);
        if (t)
            return t;
        if (relation_exists(cat, cat->path[i], name))
            return NULL; /* an untracked relation of that name comes first */
    }
    return NULL;
}

static bool schema_matches(const char *stored, const char *wanted)
{
    /* pg_temp names the session's own temporary schema, pg_temp_<n> */
    return strcmp(stored, wanted) == 0 ||
           (strcmp(wanted, "pg_temp") == 0 && strncmp(stored, "pg_temp_", 8) == 0);
}

static const catalog_view_t *view_exact(const catalog_t *cat, const char *schema, const char *name)
{
    for (int i = 0; i < cat->nviews; i++)
        if (strcmp(cat->views[i].name, name) == 0 && schema_matches(cat->views[i].schema, schema))
            return &cat->views[i];
    return NULL;
}

const catalog_view_t *catalog_find_view(const catalog_t *cat, const char *schema, const char *name)
{
    if (!cat || !name)
        return NULL;
    if (schema)
        return view_exact(cat, schema, name);
    for (int i = 0; i < cat->npath; i++) {
        if (find_exact(cat, cat->path[i], name))
            return NULL; /* a tracked table of that name comes first */
        const catalog_view_t *v = view_exact(cat, cat->path[i], name);
        if (v)
            return v;
        if (relation_exists(cat, cat->path[i], name))
            return NULL; /* another relation of that name comes first */
    }
    return NULL;
}
