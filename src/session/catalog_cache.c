/* catalog_cache — see catalog_cache.h.
 *
 * Must never: hand out rows that the check query has not confirmed (the
 * caller checks; get only says whether checking is worth it), or keep rows
 * of a session whose catalog depends on more than the key (epoch.as_of, a
 * past point). */
#include "session/catalog_cache.h"

#include <stdlib.h>
#include <string.h>

#include "common/sqlbuf.h"
#include "wire/proto.h"

/* Rows of epoch._session_current(): kind, a, b, c, d */
enum { K_KIND, K_A, K_B, K_C, K_D, K_COLS };
/* A worker's sessions rarely differ in more than a few databases, users
 * and branches at once; the oldest entry makes room. */
#define SLOTS 32

typedef struct entry {
    char *key;
    uint64_t gen, branch_gen, ddl_gen, loaded_ms;
    int64_t bid;
    bool ddl_watched;
    internal_result_t rows; /* values: nrows * K_COLS strdup'd strings (NULL = SQL NULL) */
    char **values;
} entry_t;

/* one cache per worker thread: a connection never leaves its worker */
static _Thread_local entry_t slots[SLOTS];
static _Thread_local unsigned next_slot;
/* shared by the workers: DDL on one worker's session drops every worker's rows */
static _Atomic uint64_t ddl_gen;

void catalog_cache_ddl_seen(void)
{
    ddl_gen++;
}

uint64_t catalog_cache_ddl_gen(void)
{
    return ddl_gen;
}

bool catalog_cache_is_ddl_tag(const char *tag, size_t len)
{
    static const char *const words[] = {"CREATE", "ALTER", "DROP",    "GRANT", "REVOKE",
                                        "DO",     "CALL",  "COMMENT", "IMPORT"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t n = strlen(words[i]);
        if (len >= n && memcmp(tag, words[i], n) == 0 &&
            (len == n || tag[n] == ' ' || tag[n] == '\0'))
            return true;
    }
    return false;
}

char *catalog_cache_key(const client_t *c)
{
    sqlbuf_t sb = {0};
    size_t pos = 0;
    const char *name, *value;
    /* every startup parameter but the ones no catalog row depends on */
    while (startup_next(client_startup(c), &pos, &name, &value)) {
        if (strcmp(name, "application_name") == 0 ||
            strcmp(name, "fallback_application_name") == 0 ||
            strcmp(name, "epoch.client_addr") == 0)
            continue;
        sqlbuf_puts(&sb, name);
        sqlbuf_putc(&sb, '=');
        sqlbuf_puts(&sb, value);
        sqlbuf_putc(&sb, '\n');
    }
    return sqlbuf_take(&sb);
}

static void entry_free(entry_t *e)
{
    for (int i = 0; e->values && i < e->rows.nrows * K_COLS; i++)
        free(e->values[i]);
    free(e->values);
    free(e->key);
    *e = (entry_t){0};
}

void catalog_cache_clear(void)
{
    for (int i = 0; i < SLOTS; i++)
        entry_free(&slots[i]);
}

static const char *row_value(const internal_result_t *r, const char *kind, int col)
{
    for (int i = 0; i < r->nrows; i++) {
        const char *const *v = r->values + (size_t)i * K_COLS;
        if (v[K_KIND] && strcmp(v[K_KIND], kind) == 0)
            return v[col];
    }
    return NULL;
}

void catalog_cache_put(const char *key, uint64_t gen, uint64_t branch_gen, uint64_t ddl,
                       uint64_t now_ms, const catalog_t *cat, const internal_result_t *res)
{
    /* main's sessions read main's live tables: nothing to gain */
    if (!key || !res->ok || res->ncols != K_COLS || cat->read_only || cat->historic ||
        cat->branch_id == 0 || !row_value(res, "version", K_A))
        return;
    entry_t *e = NULL;
    for (int i = 0; i < SLOTS && !e; i++)
        if (slots[i].key && strcmp(slots[i].key, key) == 0)
            e = &slots[i];
    if (!e)
        e = &slots[next_slot++ % SLOTS];
    entry_free(e);
    size_t n = (size_t)res->nrows * K_COLS;
    e->key = strdup(key);
    e->values = calloc(n + 1, sizeof *e->values); /* +1: never 0 bytes */
    if (!e->key || !e->values) {
        entry_free(e);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (res->values[i] && !(e->values[i] = strdup(res->values[i]))) {
            e->rows.nrows = res->nrows; /* so that entry_free frees what was copied */
            entry_free(e);
            return;
        }
    e->gen = gen;
    e->branch_gen = branch_gen;
    e->bid = cat->branch_id;
    e->ddl_gen = ddl;
    e->loaded_ms = now_ms;
    e->ddl_watched = cat->ddl_watched;
    e->rows = (internal_result_t){
        .ok = true, .ncols = K_COLS, .nrows = res->nrows, .values = (const char *const *)e->values};
}

const internal_result_t *catalog_cache_get(const char *key, uint64_t gen, uint64_t now_ms,
                                           double max_age, uint64_t *loaded_ms,
                                           uint64_t *branch_gen, int64_t *bid)
{
    for (int i = 0; key && i < SLOTS; i++) {
        entry_t *e = &slots[i];
        if (!e->key || strcmp(e->key, key) != 0)
            continue;
        /* a notification since: reload; and DDL that does not notify shows
         * within catalog_max_age, as for a loaded session's catalog */
        if (e->gen != gen || e->ddl_gen != ddl_gen ||
            (max_age > 0 && !e->ddl_watched && (double)(now_ms - e->loaded_ms) > max_age * 1000))
            return NULL;
        *loaded_ms = e->loaded_ms;
        *branch_gen = e->branch_gen;
        *bid = e->bid;
        return &e->rows;
    }
    return NULL;
}

static bool same(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

bool catalog_cache_confirms(const internal_result_t *rows, const internal_result_t *check)
{
    if (!check->ok || check->nrows != 1 || check->ncols != 6)
        return false;
    const char *const *v = check->values;
    return same(v[0], row_value(rows, "version", K_A)) &&
           same(v[1], row_value(rows, "version", K_B)) &&
           same(v[2], row_value(rows, "branch", K_A)) &&
           same(v[3], row_value(rows, "branch", K_C)) &&
           same(v[4], row_value(rows, "branch", K_D)) && v[5] == NULL;
}
