/*
 * redis — what the proxies of a group share through Redis: cancel keys
 * and membership (redis.c). Every call is a no-op without `redis` or while
 * Redis is away.
 */
#ifndef EPOCH_WIRE_REDIS_H
#define EPOCH_WIRE_REDIS_H

#include <stdbool.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "wire/config.h"

typedef struct worker worker_t;

/* cb(arg, reply): reply NULL when Redis is away, slow or the call failed. */
typedef void (*redis_reply_cb)(void *arg, const redisReply *reply);

/* The worker's connection: opened with the worker (before its thread
 * runs), closed with its loop. */
void redis_start(worker_t *w);
void redis_stop(worker_t *w);

/* A session's cancel key, owned by this proxy (advertise address). */
void redis_cancel_register(worker_t *w, uint32_t pid, uint32_t key);
void redis_cancel_unregister(worker_t *w, uint32_t pid, uint32_t key);
/* Which proxy owns (pid, key): a string reply "host port". false: not
 * asked (no Redis now; cb not called). */
bool redis_cancel_lookup(worker_t *w, uint32_t pid, uint32_t key, redis_reply_cb cb, void *arg);
bool redis_is_self(const config_t *cfg, const char *host, int port);
/* Every worker's tick: refresh its clients' cancel keys before they expire. */
void redis_refresh_cancel_keys(worker_t *w);

/* The live proxies of the group: an array reply of "id host port version
 * clients started" strings. */
bool redis_peers(worker_t *w, redis_reply_cb cb, void *arg);
const char *redis_proxy_id(void);

/* Take or renew the group's sweeper lock for ttl_ms: an integer reply, 1
 * ours, 0 another proxy's. false: not asked (no Redis now). */
bool redis_sweeper_lock(worker_t *w, uint64_t ttl_ms, redis_reply_cb cb, void *arg);

#endif
