/*
 * redis — what several proxies share through Redis (config `redis`): the
 * cancel keys of their sessions, so that a CancelRequest reaching another
 * proxy of the group is forwarded to the one that holds the session, their
 * membership (SHOW PEERS on the admin console), and the sweeper's lock.
 *
 * Every worker has its own connection, a stream_t on its loop like every
 * other socket of the proxy (io_uring or libuv, TLS for rediss:// through
 * the same memory BIOs as towards PostgreSQL); hiredis only encodes the
 * commands (redisFormatCommandArgv) and parses the replies (redisReader):
 * Debian 12's hiredis 0.14 has no TLS of its own. Replies come in the order
 * of the commands: a FIFO of what was sent pairs them.
 *
 * Nothing waits for Redis: registrations are sent and forgotten, and a
 * question has a timeout (REDIS_TIMEOUT_MS) after which its caller goes on
 * without an answer. Redis going away (refused, closed, or silent:
 * REDIS_STALLED questions unanswered in a row) closes the connection; it is
 * tried again every REDIS_RETRY_MS (an attempt gives up after
 * REDIS_CONNECT_MS), and the proxy works alone meanwhile. One warning when
 * Redis is lost, one line when it is back, per process.
 *
 * Keys: epoch:cancel:<pid>:<key> = "<host> <port>" of the owner (EX
 * REDIS_CANCEL_TTL, refreshed by the owner while the session lasts),
 * epoch:peer:<id> = "<host> <port> <version> <clients> <started>" (EX
 * REDIS_PEER_TTL, refreshed every REDIS_BEAT_MS by worker 0), the set
 * epoch:peers of the ids, and epoch:sweeper (sweeper.c).
 *
 * Must never: block the loop, or let a client query wait for Redis.
 */
#include "wire/redis.h"

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
#define REDIS_CONNECT_MS 2000
#define REDIS_BEAT_MS 5000
#define REDIS_PEER_TTL 15
#define REDIS_CANCEL_TTL 3600
/* output queued for a Redis that does not read it: beyond, commands are
 * dropped (and the link given up by on_retry) */
#define REDIS_MAX_PENDING (1024 * 1024)

/* A command sent, waiting for its reply (cb NULL: nobody waits for it). */
typedef struct req {
    struct req *next;
    redis_reply_cb cb;
    void *arg;
    uv_timer_t timer;
    bool timed;    /* the timer was started (closed when the req ends) */
    bool answered; /* cb was called (with the reply, or NULL at the timeout) */
    uint64_t sent_ms;
    int refs; /* the FIFO's, the timer's */
    struct redis_link *link;
} req_t;

typedef struct redis_link {
    worker_t *w;
    stream_t st;
    bool st_open;             /* st is connected or connecting (closed: on_closed) */
    bool up;                  /* connected (TLS up): the handshake (AUTH, SELECT, PING) may go */
    bool ready;               /* Redis answered the handshake: everyone's commands may go */
    uint64_t error_logged_ms; /* the last error reply to a command nobody waits for */
    redisReader *reader;
    req_t *head, *tail; /* sent, in order */
    int stalled;        /* questions timed out in a row */
    uv_timer_t retry;   /* reconnects and, on worker 0, the heartbeat */
    bool stopping;
    uint64_t last_beat_ms;
    uint64_t connect_ms; /* when the current attempt started */
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

/* ---- commands and replies ---- */

static void req_unref(req_t *r)
{
    if (--r->refs == 0)
        free(r);
}

static void req_timer_closed(uv_handle_t *h)
{
    req_unref(h->data);
}

/* cb once: with the reply, or NULL (timeout, link lost) */
static void req_answer(req_t *r, const redisReply *reply)
{
    if (r->answered)
        return;
    r->answered = true;
    if (r->timed) {
        uv_timer_stop(&r->timer);
        uv_close((uv_handle_t *)&r->timer, req_timer_closed);
    }
    if (r->cb)
        r->cb(r->arg, reply);
}

static void link_lost(redis_link_t *l, const char *why);

static void on_req_timeout(uv_timer_t *t)
{
    req_t *r = t->data;
    redis_link_t *l = r->link;
    req_answer(r, NULL);
    if (++l->stalled >= REDIS_STALLED && l->st_open) {
        l->stalled = 0;
        link_lost(l, "no answer"); /* a stopped Redis: drop it, reconnect */
    }
}

/* Send argv on a connected link (the handshake's commands too); cb (may be
 * NULL) gets the reply or NULL. false: not sent. */
static bool send_raw(redis_link_t *l, redis_reply_cb cb, void *arg, int argc, const char **argv)
{
    if (!l || !l->up || stream_pending(&l->st) > REDIS_MAX_PENDING)
        return false;
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, NULL);
    req_t *r = len > 0 ? calloc(1, sizeof *r) : NULL;
    if (!r || !stream_write(&l->st, cmd, (size_t)len)) {
        free(r);
        redisFreeCommand(cmd);
        return false;
    }
    redisFreeCommand(cmd);
    stream_flush(&l->st);
    r->link = l;
    r->cb = cb;
    r->arg = arg;
    r->refs = 1;
    r->sent_ms = uv_now(&l->w->loop);
    if (cb) {
        uv_timer_init(&l->w->loop, &r->timer);
        r->timer.data = r;
        r->timed = true;
        r->refs++;
        uv_timer_start(&r->timer, on_req_timeout, REDIS_TIMEOUT_MS, 0);
    } else {
        r->answered = true;
    }
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    return true;
}

/* Once Redis answered the handshake: a question (cb gets the reply or
 * NULL), or a command nobody waits for. */
static bool ask(redis_link_t *l, redis_reply_cb cb, void *arg, int argc, const char **argv)
{
    return l && l->ready && send_raw(l, cb, arg, argc, argv);
}

static void tell(redis_link_t *l, int argc, const char **argv)
{
    if (l && l->ready)
        send_raw(l, NULL, NULL, argc, argv);
}

/* Every command waiting gets NULL (the connection is gone). */
static void fail_all(redis_link_t *l)
{
    while (l->head) {
        req_t *r = l->head;
        l->head = r->next;
        req_answer(r, NULL);
        req_unref(r);
    }
    l->tail = NULL;
}

static void on_read(stream_t *s)
{
    redis_link_t *l = s->owner;
    buf_t *rb = &s->rbuf;
    if (redisReaderFeed(l->reader, buf_head(rb), buf_avail(rb)) != REDIS_OK) {
        buf_consume(rb, buf_avail(rb));
        link_lost(l, "unreadable reply");
        return;
    }
    buf_consume(rb, buf_avail(rb));
    void *reply = NULL;
    while (l->st_open) {
        if (redisReaderGetReply(l->reader, &reply) != REDIS_OK) {
            link_lost(l, "unreadable reply");
            return;
        }
        if (!reply)
            return; /* more bytes needed */
        req_t *r = l->head;
        if (!r) {
            freeReplyObject(reply);
            link_lost(l, "a reply to no command");
            return;
        }
        l->head = r->next;
        if (!l->head)
            l->tail = NULL;
        l->stalled = 0;
        const redisReply *rep = reply;
        uint64_t now = uv_now(&l->w->loop);
        if (!r->cb && rep->type == REDIS_REPLY_ERROR && now - l->error_logged_ms >= 60000) {
            l->error_logged_ms = now; /* at most once a minute */
            log_warning("Redis answered an error: %s", rep->str);
        }
        req_answer(r, reply);
        req_unref(r);
        freeReplyObject(reply);
        reply = NULL;
    }
}

/* ---- the connection ---- */

static void connect_now(redis_link_t *l);
static void beat(redis_link_t *l);

/* A handshake command's reply: an error (a refused AUTH, a bad database)
 * or none ends the attempt (reported as an outage, tried again). */
static void on_handshake(void *arg, const redisReply *reply)
{
    redis_link_t *l = arg;
    if (l->ready || !l->st_open || l->st.closing)
        return;
    if (!reply)
        link_lost(l, "no answer to the handshake");
    else if (reply->type == REDIS_REPLY_ERROR)
        link_lost(l, reply->str);
}

static void became_ready(redis_link_t *l);

/* The handshake's last answer (PING's PONG): the link is ready. */
static void on_pong(void *arg, const redisReply *reply)
{
    redis_link_t *l = arg;
    if (l->ready || !l->st_open || l->st.closing)
        return;
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        on_handshake(arg, reply);
        return;
    }
    became_ready(l);
}

/* Connected: AUTH, SELECT and a PING, in that order; ready at the PONG. */
static void handshake(redis_link_t *l)
{
    const config_t *cfg = link_cfg(l);
    l->up = true;
    if (cfg->redis_password) {
        const char *argv[3] = {"AUTH", cfg->redis_user ? cfg->redis_user : cfg->redis_password,
                               cfg->redis_password};
        send_raw(l, on_handshake, l, cfg->redis_user ? 3 : 2, argv);
    }
    if (cfg->redis_db) {
        char db[16];
        snprintf(db, sizeof db, "%d", cfg->redis_db);
        const char *argv[2] = {"SELECT", db};
        send_raw(l, on_handshake, l, 2, argv);
    }
    const char *ping[1] = {"PING"};
    if (!send_raw(l, on_pong, l, 1, ping))
        link_lost(l, "out of memory");
}

static void became_ready(redis_link_t *l)
{
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

static void on_tls_ready(stream_t *s)
{
    handshake(s->owner);
}

static void on_connect(stream_t *s, int status)
{
    redis_link_t *l = s->owner;
    const config_t *cfg = link_cfg(l);
    if (status != 0) {
        link_lost(l, uv_strerror(status));
        return;
    }
    stream_read_start(s);
    if (!cfg->redis_tls_ctx) {
        handshake(l);
        return;
    }
    if (!stream_tls_connect(s, cfg->redis_tls_ctx, cfg->redis_sni, on_tls_ready))
        link_lost(l, "TLS setup failed");
}

static void on_eof(stream_t *s, const char *why)
{
    redis_link_t *l = s->owner;
    link_lost(l, s->tls_error[0] ? s->tls_error : why);
}

static void on_drain(stream_t *s)
{
    (void)s;
}

static void link_freed(uv_handle_t *h)
{
    free(h->data);
}

static void on_closed(stream_t *s)
{
    redis_link_t *l = s->owner;
    l->st_open = false;
    if (l->reader) {
        redisReaderFree(l->reader);
        l->reader = NULL;
    }
    if (l->stopping)
        uv_close((uv_handle_t *)&l->retry, link_freed); /* l goes with the timer */
}

static const stream_ops_t link_ops = {on_read, on_drain, on_eof, on_connect, on_closed};

static void link_lost(redis_link_t *l, const char *why)
{
    if (l->ready)
        metrics_gauge_add(MG_REDIS_LINKS, -1);
    l->ready = false;
    l->up = false;
    if (!l->stopping)
        note_lost(why);
    fail_all(l);
    if (l->st_open && !l->st.closing)
        stream_close(&l->st); /* on_closed: reconnectable */
}

static void connect_now(redis_link_t *l)
{
    const config_t *cfg = link_cfg(l);
    stream_init(&l->st, &link_ops, l);
    l->reader = redisReaderCreate();
    if (!l->reader)
        return;
    l->st_open = true;
    l->connect_ms = uv_now(&l->w->loop);
    int rc = stream_connect(&l->st, &l->w->loop, cfg->redis_host, cfg->redis_port);
    if (rc)
        link_lost(l, uv_strerror(rc)); /* closes st (on_closed) */
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
    uint64_t now = uv_now(&l->w->loop);
    if (l->st_open && !l->ready && now - l->connect_ms >= REDIS_CONNECT_MS)
        link_lost(l, "connection timed out");
    /* Redis not answering what was sent (a stopped process, a blackhole):
     * commands nobody waits for would pile up; give the link up */
    if (l->st_open && l->head && now - l->head->sent_ms >= REDIS_TIMEOUT_MS * REDIS_STALLED)
        link_lost(l, "no answer");
    if (!l->st_open)
        connect_now(l);
    else if (l->ready && l->w->id == 0 && now - l->last_beat_ms >= REDIS_BEAT_MS)
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

void redis_stop(worker_t *w)
{
    redis_link_t *l = w->redis;
    if (!l)
        return;
    w->redis = NULL;
    l->stopping = true;
    uv_timer_stop(&l->retry);
    /* the peer entry expires by itself (REDIS_PEER_TTL) */
    if (l->st_open)
        link_lost(l, NULL); /* on_closed closes the timer, which frees l */
    else
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

void redis_refresh_cancel_keys(worker_t *w)
{
    /* keys outlive REDIS_CANCEL_TTL only if refreshed: every client of the
     * worker once per half TTL (called from the worker's 1 s tick) */
    redis_link_t *l = w->redis;
    if (!l || !l->ready)
        return;
    uint64_t now = uv_now(&w->loop);
    if (w->redis_refreshed_ms &&
        now - w->redis_refreshed_ms < (uint64_t)REDIS_CANCEL_TTL * 1000 / 2)
        return;
    w->redis_refreshed_ms = now;
    for (list_node_t *n = w->clients.next; n != &w->clients; n = n->next) {
        client_t *c = list_entry(n, client_t, node);
        if (c->counted && c->cancel_pid)
            redis_cancel_register(w, c->cancel_pid, c->cancel_key);
    }
}
