/*
 * cache — a fixed-size hash table (xxHash3 of view + template) with a short
 * chain per bucket, most recent first; inserting into a full chain drops its
 * oldest entry. Memory is bounded by BUCKETS * CHAIN entries.
 *
 * Only results that depend on nothing but the text are cached: forwards,
 * rewrites and refusals. SET epoch.branch and "need the catalog" are not.
 */
#include "rewrite/cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/lexer.h"
#include "common/metrics.h"

#define BUCKETS 4096
#define CHAIN 4

typedef struct entry {
    struct entry *next;
    uint64_t hash;
    char *key; /* view \0 template */
    size_t key_len;
    int first_param; /* the template's constants are $first_param.. */
    rw_result_t res; /* res.sql is the rewritten template */
} entry_t;

static entry_t *table[BUCKETS];
static unsigned long n_entries;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static bool copy_result(rw_result_t *dst, const rw_result_t *src)
{
    *dst = *src;
    dst->sql = dup_or_null(src->sql);
    dst->setup = dup_or_null(src->setup);
    dst->message = dup_or_null(src->message);
    dst->hint = dup_or_null(src->hint);
    dst->detail = dup_or_null(src->detail);
    dst->value = dup_or_null(src->value);
    return (!src->sql || dst->sql) && (!src->setup || dst->setup) &&
           (!src->message || dst->message) && (!src->hint || dst->hint) &&
           (!src->detail || dst->detail) && (!src->value || dst->value);
}

static void entry_free(entry_t *e)
{
    free(e->key);
    rewrite_result_free(&e->res);
    free(e);
}

/* view \0 signature first-constant-number \0 text: the same template with
 * its constants numbered from another $n (a Parse that already has
 * parameters) must not share an entry; nor may two catalogs that differ in
 * something the view string does not name (the views over tracked tables:
 * creating one changes no catalog version). */
static char *make_key(const char *view, uint64_t sig, int first, const char *text, size_t *len)
{
    char num[40];
    int nl = snprintf(num, sizeof num, "%016llx%d", (unsigned long long)sig, first);
    size_t vl = strlen(view), tl = strlen(text);
    char *key = malloc(vl + (size_t)nl + tl + 3);
    if (!key)
        return NULL;
    memcpy(key, view, vl + 1);
    memcpy(key + vl + 1, num, (size_t)nl + 1);
    memcpy(key + vl + 1 + (size_t)nl + 1, text, tl + 1);
    *len = vl + (size_t)nl + tl + 2;
    return key;
}

static bool cacheable(const rw_result_t *r)
{
    return r->action == RW_FORWARD || r->action == RW_REWRITTEN || r->action == RW_ERROR;
}

/* Look up; on a hit fill *out (with constants put back). */
static bool lookup(uint64_t h, const char *key, size_t key_len, char *const *lits, int nlits,
                   rw_result_t *out, char **tmpl_sql)
{
    bool hit = false;
    pthread_mutex_lock(&lock);
    entry_t **slot = &table[h % BUCKETS];
    for (entry_t *e = *slot; e; e = e->next) {
        if (e->hash != h || e->key_len != key_len || memcmp(e->key, key, key_len) != 0)
            continue;
        hit = copy_result(out, &e->res);
        if (hit && out->sql && nlits && tmpl_sql) {
            *tmpl_sql = strdup(e->res.sql);
            hit = *tmpl_sql != NULL;
        }
        if (hit && out->sql && nlits) {
            char *filled = lex_fill(e->res.sql, e->first_param, lits, nlits);
            free(out->sql);
            out->sql = filled;
            hit = filled != NULL;
        }
        if (!hit)
            rewrite_result_free(out);
        break;
    }
    pthread_mutex_unlock(&lock);
    metrics_add(hit ? MC_REWRITE_CACHE_HITS : MC_REWRITE_CACHE_MISSES, 1);
    return hit;
}

static void insert(uint64_t h, char *key, size_t key_len, int first_param, const rw_result_t *r)
{
    entry_t *e = calloc(1, sizeof *e);
    if (!e || !copy_result(&e->res, r)) {
        if (e)
            rewrite_result_free(&e->res);
        free(e);
        free(key);
        return;
    }
    e->hash = h;
    e->key = key;
    e->key_len = key_len;
    e->first_param = first_param;
    pthread_mutex_lock(&lock);
    entry_t **slot = &table[h % BUCKETS];
    e->next = *slot;
    *slot = e;
    n_entries++;
    int depth = 0;
    for (entry_t **pp = slot; *pp; pp = &(*pp)->next)
        if (++depth > CHAIN) {
            entry_t *old = *pp;
            *pp = old->next;
            entry_free(old);
            n_entries--;
            break;
        }
    pthread_mutex_unlock(&lock);
}

/* Rewrite `text` (a template or the exact statement) and remember it. */
static bool fill_and_insert(const rw_session_t *s, uint64_t h, char *key, size_t key_len, int first,
                            const char *text, char *const *lits, int nlits, rw_result_t *out,
                            char **tmpl_sql)
{
    rw_result_t r;
    rewrite_statement(s, text, &r);
    if (nlits && (r.flags & RW_F_UNPARSED)) {
        /* the template does not parse ($k where a constant must be literal,
         * as in INTERVAL '1 day'): the caller falls back to the exact text */
        rewrite_result_free(&r);
        free(key);
        return false;
    }
    bool ok = true;
    if (cacheable(&r)) {
        insert(h, key, key_len, first, &r);
        key = NULL;
    }
    free(key);
    *out = r;
    if (nlits && out->sql && tmpl_sql) {
        *tmpl_sql = strdup(r.sql);
        ok = *tmpl_sql != NULL;
    }
    if (ok && nlits && out->sql) {
        char *filled = lex_fill(r.sql, first, lits, nlits);
        free(out->sql);
        out->sql = filled;
        ok = filled != NULL;
    }
    if (!ok) {
        rewrite_result_free(out);
        out->action = RW_ERROR;
        snprintf(out->sqlstate, sizeof out->sqlstate, "53200");
    }
    return true;
}

static bool try_key(const rw_session_t *s, const char *view, const char *text, int first,
                    char *const *lits, int nlits, rw_result_t *out, char **tmpl_sql)
{
    size_t key_len;
    char *key = make_key(view, s->cat ? s->cat->signature : 0, first, text, &key_len);
    if (!key)
        return false;
    uint64_t h = XXH3_64bits(key, key_len);
    if (lookup(h, key, key_len, lits, nlits, out, tmpl_sql)) {
        free(key);
        return true;
    }
    return fill_and_insert(s, h, key, key_len, first, text, lits, nlits, out, tmpl_sql);
}

rw_action_t rewrite_cached(const rw_session_t *s, const char *view, const char *sql,
                           rw_result_t *out, rw_template_t *tp)
{
    memset(out, 0, sizeof *out);
    if (tp)
        memset(tp, 0, sizeof *tp);
    char *tmpl = NULL, **lits = NULL, *tmpl_sql = NULL;
    int nlits = 0;
    int first = lex_max_param(sql) + 1;
    bool done = false, templated = false;
    /* epoch statements (SET epoch.branch = 'x', control calls) depend on
     * their constants' values: cached by exact text only */
    if (!lex_contains_ci(sql, strlen(sql), "epoch") &&
        lex_template(sql, first, &tmpl, &lits, &nlits))
        done = templated = try_key(s, view, tmpl, first, lits, nlits, out, tp ? &tmpl_sql : NULL);
    if (!done)
        done = try_key(s, view, sql, first, NULL, 0, out, NULL);
    if (!done)
        rewrite_statement(s, sql, out);
    if (tp && templated && tmpl_sql && out->action == RW_REWRITTEN) {
        tp->sql = tmpl_sql;
        tp->lits = lits;
        tp->nlits = nlits;
        tp->first = first;
        tmpl_sql = NULL;
        lits = NULL;
        nlits = 0;
    }
    free(tmpl_sql);
    for (int i = 0; i < nlits; i++)
        free(lits[i]);
    free(lits);
    free(tmpl);
    return out->action;
}

void rewrite_template_free(rw_template_t *tp)
{
    for (int i = 0; i < tp->nlits; i++)
        free(tp->lits[i]);
    free(tp->lits);
    free(tp->sql);
    memset(tp, 0, sizeof *tp);
}

rw_cache_stats_t rewrite_cache_stats(void)
{
    pthread_mutex_lock(&lock);
    rw_cache_stats_t st = {metrics_get(MC_REWRITE_CACHE_HITS), metrics_get(MC_REWRITE_CACHE_MISSES),
                           n_entries};
    pthread_mutex_unlock(&lock);
    return st;
}

void rewrite_cache_clear(void)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < BUCKETS; i++) {
        while (table[i]) {
            entry_t *e = table[i];
            table[i] = e->next;
            entry_free(e);
        }
    }
    n_entries = 0;
    pthread_mutex_unlock(&lock);
}
