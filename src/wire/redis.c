/*
 * redis — what several proxies share through Redis (config `redis`): the
 * cancel keys of their sessions, so that a CancelRequest reaching another
 * proxy of the group is forwarded to the one that holds the session, and
 * their membership (SHOW PEERS on the admin console).
 *
 * Every worker has its own connection (hiredis's asynchronous API on the
 * worker's libuv loop; a context belongs to one thread). Nothing waits for
 * Redis: registrations are sent and forgotten, and a lookup has a timeout
 * (REDIS_TIMEOUT_MS) after which its caller goes on without an answer.
 * Redis going away (refused, closed, or silent: REDIS_STALLED timeouts in a
 * row) drops the connection; it is tried again every REDIS_RETRY_MS, and
 * the proxy works alone meanwhile. One warning when Redis is lost, one line
 * when it is back, per process.
 *
 * Keys: epoch:cancel:<pid>:<key> = "<host> <port>" of the owner (EX
 * REDIS_CANCEL_TTL, refreshed by the owner while the session lasts),
 * epoch:peer:<id> = "<host> <port> <version> <clients> <started>" (EX
 * REDIS_PEER_TTL, refreshed every REDIS_BEAT_MS by worker 0) and the set
 * epoch:peers of the ids.
 *
 * Must never: block the loop, or let a client query wait for Redis.
 */
#include "wire/redis.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/metrics.h"
#include "wire/conn.h"

#define REDIS_TIMEOUT_MS 1000
#define REDIS_STALLED 3
#define REDIS_RETRY_MS 1000
/* hiredis's libuv adapter drops a poll error, so a refused connection may
 * never be reported: an attempt not answered by then is given up */
#define REDIS_CONNECT_MS 2000
#define REDIS_BEAT_MS 5000
#define REDIS_PEER_TTL 15
#define REDIS_CANCEL_TTL 3600

typedef struct redis_link {
    worker_t *w;
    redisAsyncContext *ac; /* NULL: not connected */
    bool ready;            /* connected (AUTH and SELECT queued first) */
    int stalled;           /* lookups timed out in a row */
    uv_timer_t retry;      /* reconnects and, on worker 0, the heartbeat */
    bool stopping;
    uint64_t last_beat_ms;
    uint64_t connect_ms; /* when the connection attempt started */
} redis_link_t;

static atomic_bool lost_logged; /* one warning per outage, process-wide */
static char proxy_id[40];
static time_t started;

static const config_t *link_cfg(const redis_link_t *l)
{
    return worker_config(l->w);
}

static void note_lost(const char *why)
{
    if (!atomic_exchange(&lost_logged, true))
        log_warning("Redis unreachable (%s): proxies work on their own until it is back "
                    "(cancel requests reach only the proxy that holds the session)",
                    why);
}

static void note_back(void)
{
    if (atomic_exchange(&lost_logged, false))
        log_info("Redis is back");
}

/* ---- requests with a timeout ---- */

typedef struct req {
    redis_link_t *link;
    redis_reply_cb cb; /* NULL once answered or timed out */
    void *arg;
    uv_timer_t timer;
    int refs; /* hiredis's callback, the timer's close */
} req_t;

static void req_unref(req_t *r)
{
    if (--r->refs == 0)
        free(r);
}

static void req_timer_closed(uv_handle_t *h)
{
    req_unref(h->data);
}

static void req_finish(req_t *r, const redisReply *reply)
{
    redis_reply_cb cb = r->cb;
    r->cb = NULL;
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, req_timer_closed);
    if (cb)
        cb(r->arg, reply);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    req_t *r = privdata;
    if (r->cb) {
        r->link->stalled = 0;
        req_finish(r, reply);
    }
    req_unref(r);
}

static void on_req_timeout(uv_timer_t *t)
{
    req_t *r = t->data;
    redis_link_t *l = r->link;
    req_finish(r, NULL);
    if (++l->stalled >= REDIS_STALLED && l->ac) {
        /* a silent Redis (a stopped process) would keep a graceful
         * disconnect waiting for its replies: drop the connection now (its
         * callbacks get NULL); on_retry reconnects */
        note_lost("no answer");
        l->stalled = 0;
        redisAsyncContext *ac = l->ac;
        l->ac = NULL;
        if (l->ready)
            metrics_gauge_add(MG_REDIS_LINKS, -1);
        l->ready = false;
        redisAsyncFree(ac);
    }
}

/* Send a command whose answer matters: cb(arg, reply) once, reply NULL when
 * Redis is unavailable or slow. false: not sent (cb not called). */
static bool ask(redis_link_t *l, redis_reply_cb cb, void *arg, int argc, const char **argv)
{
    if (!l || !l->ready || !l->ac)
        return false;
    req_t *r = calloc(1, sizeof *r);
    if (!r)
        return false;
    r->link = l;
    r->cb = cb;
    r->arg = arg;
    r->refs = 2;
    if (redisAsyncCommandArgv(l->ac, on_reply, r, argc, argv, NULL) != REDIS_OK) {
        free(r);
        return false;
    }
    uv_timer_init(&l->w->loop, &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, on_req_timeout, REDIS_TIMEOUT_MS, 0);
    return true;
}

/* A command whose answer does not matter. */
static void tell(redis_link_t *l, int argc, const char **argv)
{
    if (l && l->ready && l->ac)
        redisAsyncCommandArgv(l->ac, NULL, NULL, argc, argv, NULL);
}

/* ---- the connection ---- */

static void connect_now(redis_link_t *l);
static void beat(redis_link_t *l);

static void on_connect(const redisAsyncContext *ac, int status)
{
    redis_link_t *l = ac->data;
    if (status != REDIS_OK) {
        note_lost(ac->errstr);
        l->ac = NULL; /* hiredis frees it */
        return;
    }
    l->ready = true;
    metrics_gauge_add(MG_REDIS_LINKS, 1);
    l->stalled = 0;
    note_back();
    if (l->w->id == 0)
        beat(l);
    /* the sessions that started while Redis was away, or all after a
     * restart of Redis that lost them */
    l->w->redis_refreshed_ms = 0;
    redis_refresh_cancel_keys(l->w);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    redis_link_t *l = ac->data;
    if (l->stopping)
        return;
    l->ac = NULL;
    if (l->ready)
        metrics_gauge_add(MG_REDIS_LINKS, -1);
    l->ready = false;
    if (!l->stopping && status != REDIS_OK)
        note_lost(ac->errstr[0] ? ac->errstr : "connection closed");
}

static void connect_now(redis_link_t *l)
{
    const config_t *cfg = link_cfg(l);
    redisAsyncContext *ac = redisAsyncConnect(cfg->redis_host, cfg->redis_port);
    log_debug("worker %d: connecting to Redis at %s:%d%s%s", l->w->id, cfg->redis_host,
              cfg->redis_port, ac && ac->err ? ": " : "", ac && ac->err ? ac->errstr : "");
    if (!ac)
        return;
    if (ac->err) {
        note_lost(ac->errstr);
        redisAsyncFree(ac);
        return;
    }
    ac->data = l;
    if (redisLibuvAttach(ac, &l->w->loop) != REDIS_OK) {
        log_debug("worker %d: cannot watch the Redis connection", l->w->id);
        redisAsyncFree(ac);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    l->ac = ac;
    l->connect_ms = uv_now(&l->w->loop);
    /* queued now, sent first once connected */
    if (cfg->redis_password) {
        const char *argv[3] = {"AUTH", cfg->redis_user ? cfg->redis_user : cfg->redis_password,
                               cfg->redis_password};
        redisAsyncCommandArgv(ac, NULL, NULL, cfg->redis_user ? 3 : 2, argv, NULL);
    }
    if (cfg->redis_db) {
        char db[16];
        snprintf(db, sizeof db, "%d", cfg->redis_db);
        const char *argv[2] = {"SELECT", db};
        redisAsyncCommandArgv(ac, NULL, NULL, 2, argv, NULL);
    }
}

static void beat(redis_link_t *l)
{
    const config_t *cfg = link_cfg(l);
    char value[200], ttl[16], key[64];
    snprintf(value, sizeof value, "%s %d %s %d %lld", cfg->advertise_host, cfg->advertise_port,
             EPOCH_VERSION, workers_clients(), (long long)started);
    snprintf(ttl, sizeof ttl, "%d", REDIS_PEER_TTL);
    snprintf(key, sizeof key, "epoch:peer:%s", proxy_id);
    const char *set[5] = {"SET", key, value, "EX", ttl};
    const char *add[3] = {"SADD", "epoch:peers", proxy_id};
    tell(l, 5, set);
    tell(l, 3, add);
    l->last_beat_ms = uv_now(&l->w->loop);
}

static void on_retry(uv_timer_t *t)
{
    redis_link_t *l = t->data;
    if (l->stopping)
        return;
    if (l->ac && !l->ready && uv_now(&l->w->loop) - l->connect_ms >= REDIS_CONNECT_MS) {
        redisAsyncContext *ac = l->ac;
        l->ac = NULL;
        note_lost("connection timed out");
        redisAsyncFree(ac);
    }
    if (!l->ac)
        connect_now(l);
    else if (l->ready && l->w->id == 0 && uv_now(&l->w->loop) - l->last_beat_ms >= REDIS_BEAT_MS)
        beat(l);
}

void redis_start(worker_t *w)
{
    const config_t *cfg = worker_config(w);
    if (!cfg->redis_host)
        return;
    if (w->id == 0) {
        unsigned char r[8];
        if (RAND_bytes(r, sizeof r) != 1)
            memset(r, 0, sizeof r);
        snprintf(proxy_id, sizeof proxy_id, "%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2],
                 r[3], r[4], r[5], r[6], r[7]);
        started = time(NULL);
    }
    redis_link_t *l = calloc(1, sizeof *l);
    if (!l)
        return;
    l->w = w;
    w->redis = l;
    uv_timer_init(&w->loop, &l->retry);
    l->retry.data = l;
    uv_timer_start(&l->retry, on_retry, REDIS_RETRY_MS, REDIS_RETRY_MS);
    connect_now(l);
}

static void link_freed(uv_handle_t *h)
{
    free(h->data);
}

void redis_stop(worker_t *w)
{
    redis_link_t *l = w->redis;
    if (!l)
        return;
    w->redis = NULL;
    l->stopping = true;
    if (l->ac) {
        /* at once: pending callbacks get NULL now, while l still exists
         * (the peer entry expires by itself: REDIS_PEER_TTL) */
        redisAsyncContext *ac = l->ac;
        l->ac = NULL;
        if (l->ready)
            metrics_gauge_add(MG_REDIS_LINKS, -1);
        l->ready = false;
        redisAsyncFree(ac);
    }
    uv_close((uv_handle_t *)&l->retry, link_freed);
}

/* ---- cancel keys ---- */

static void cancel_key_name(char *out, size_t cap, uint32_t pid, uint32_t key)
{
    snprintf(out, cap, "epoch:cancel:%u:%u", pid, key);
}

void redis_cancel_register(worker_t *w, uint32_t pid, uint32_t key)
{
    redis_link_t *l = w->redis;
    if (!l || !l->ready)
        return;
    const config_t *cfg = worker_config(w);
    char name[64], value[96], ttl[16];
    cancel_key_name(name, sizeof name, pid, key);
    snprintf(value, sizeof value, "%s %d", cfg->advertise_host, cfg->advertise_port);
    snprintf(ttl, sizeof ttl, "%d", REDIS_CANCEL_TTL);
    const char *argv[5] = {"SET", name, value, "EX", ttl};
    tell(l, 5, argv);
}

void redis_cancel_unregister(worker_t *w, uint32_t pid, uint32_t key)
{
    redis_link_t *l = w->redis;
    if (!l || !l->ready)
        return;
    char name[64];
    cancel_key_name(name, sizeof name, pid, key);
    const char *argv[2] = {"DEL", name};
    tell(l, 2, argv);
}

bool redis_cancel_lookup(worker_t *w, uint32_t pid, uint32_t key, redis_reply_cb cb, void *arg)
{
    char name[64];
    cancel_key_name(name, sizeof name, pid, key);
    const char *argv[2] = {"GET", name};
    return ask(w->redis, cb, arg, 2, argv);
}

bool redis_is_self(const config_t *cfg, const char *host, int port)
{
    return port == cfg->advertise_port && strcmp(host, cfg->advertise_host) == 0;
}

/* ---- the sweeper's lock ---- */

bool redis_sweeper_lock(worker_t *w, uint64_t ttl_ms, redis_reply_cb cb, void *arg)
{
    /* taken if free, renewed if ours: 1; another proxy's: 0 */
    static const char script[] =
        "if redis.call('GET', KEYS[1]) == ARGV[1] then "
        "  redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end "
        "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end "
        "return 0";
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)ttl_ms);
    const char *argv[6] = {"EVAL", script, "1", "epoch:sweeper", proxy_id, ttl};
    return ask(w->redis, cb, arg, 6, argv);
}

/* ---- peers ---- */

bool redis_peers(worker_t *w, redis_reply_cb cb, void *arg)
{
    /* the members, then their entries: one round trip, a Lua script
     * (EVAL is in every Redis since 2.6) that drops members without one */
    static const char script[] =
        "local out = {} "
        "for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do "
        "  local v = redis.call('GET', 'epoch:peer:' .. id) "
        "  if v then table.insert(out, id .. ' ' .. v) else redis.call('SREM', KEYS[1], id) end "
        "end return out";
    const char *argv[4] = {"EVAL", script, "1", "epoch:peers"};
    return ask(w->redis, cb, arg, 4, argv);
}

const char *redis_proxy_id(void)
{
    return proxy_id;
}

bool redis_configured(const config_t *cfg)
{
    return cfg->redis_host != NULL;
}

void redis_refresh_cancel_keys(worker_t *w)
{
    /* keys outlive REDIS_CANCEL_TTL only if refreshed: every client of the
     * worker once per half TTL (called from the worker's 1 s tick) */
    redis_link_t *l = w->redis;
    if (!l || !l->ready)
        return;
    uint64_t now = uv_now(&w->loop);
    if (w->redis_refreshed_ms && now - w->redis_refreshed_ms < (uint64_t)REDIS_CANCEL_TTL * 1000 / 2)
        return;
    w->redis_refreshed_ms = now;
    for (list_node_t *n = w->clients.next; n != &w->clients; n = n->next) {
        client_t *c = list_entry(n, client_t, node);
        if (c->counted && c->cancel_pid)
            redis_cancel_register(w, c->cancel_pid, c->cancel_key);
    }
}
