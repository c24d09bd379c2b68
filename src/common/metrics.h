/*
 * metrics — the proxy's counters, gauges and histograms, rendered in
 * Prometheus's text format for GET /metrics (src/wire/http.c).
 *
 * Every layer updates them from any thread: plain counters and gauges are
 * relaxed atomics (a few nanoseconds on the data path); the by-branch
 * counters sit behind one mutex, taken once per statement and once per
 * transaction. A reader sees each value as it was at some recent moment (no
 * snapshot across values), which is what a scrape means.
 */
#ifndef EPOCH_COMMON_METRICS_H
#define EPOCH_COMMON_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"

typedef enum {
    MC_CLIENTS_ACCEPTED,     /* client connections accepted */
    MC_CLIENT_BYTES_IN,      /* bytes read from clients (as on the wire: TLS included) */
    MC_CLIENT_BYTES_OUT,     /* bytes written to clients */
    MC_SERVER_BYTES_IN,      /* bytes read from PostgreSQL */
    MC_SERVER_BYTES_OUT,     /* bytes written to PostgreSQL */
    MC_SERVER_CONNECTS,      /* server connections opened */
    MC_REWRITE_CACHE_HITS,   /* statements whose rewrite came from the cache */
    MC_REWRITE_CACHE_MISSES, /* statements parsed (and rewritten) */
    MC_HTTP_REQUESTS,        /* HTTP requests answered */
    MC_SWEEPS,               /* sweeper rounds run on a database */
    MC_COUNT
} metric_counter_t;

typedef enum {
    MG_REDIS_LINKS, /* workers connected to Redis now */
    MG_COUNT
} metric_gauge_t;
void metrics_gauge_add(metric_gauge_t g, int64_t delta);

/* Client connections by state (src/wire/conn.h's client states, in order). */
enum { MG_CLIENT_STATES = 5 };
/* Server connections by state (src/wire/conn.h's server states, in order). */
enum { MG_SERVER_STATES = 5 };

typedef enum {
    MH_QUERY,     /* a client request: sent to PostgreSQL until its ReadyForQuery */
    MH_POOL_WAIT, /* a client waiting for a server of its pool */
    MH_REWRITE,   /* parse and rewrite of one statement by the session layer */
    MH_COMMIT,    /* epoch.commit() statements, from the client's request to its answer */
    MH_MERGE,     /* epoch.merge() and merge_continue() statements, the same */
    MH_COUNT
} metric_hist_t;

void metrics_add(metric_counter_t m, uint64_t n);
void metrics_client_state(int from, int to); /* -1: none (created, freed) */
void metrics_server_state(int from, int to);
void metrics_observe(metric_hist_t h, double seconds);
/* An ErrorResponse sent to a client, by its SQLSTATE (5 characters; the
 * class is its first two). */
void metrics_error(const char *sqlstate);
/* Counters by branch and by database keep at most METRICS_MAX_LABELS names
 * each; later ones count as "other". */
enum { METRICS_MAX_LABELS = 256 };
/* queries statements and xacts finished transactions on branch (NULL:
 * main). */
void metrics_branch(const char *branch, uint64_t queries, uint64_t xacts);
/* Per branch: v[0] statements, v[1] transactions (SHOW BRANCHES). */
void metrics_branch_each(void (*fn)(void *arg, const char *branch, const uint64_t *v), void *arg);

/* Totals by client database (the admin console's SHOW STATS). */
typedef enum {
    MD_XACTS,
    MD_QUERIES,
    MD_RECEIVED, /* bytes from clients */
    MD_SENT,     /* bytes to clients */
    MD_XACT_US,  /* microseconds in transactions */
    MD_QUERY_US, /* microseconds in requests */
    MD_WAIT_US,  /* microseconds waiting for a pooled server */
    MD_FIELDS
} metric_db_field_t;
void metrics_db_add(const char *database, const uint64_t v[MD_FIELDS]);
void metrics_db_each(void (*fn)(void *arg, const char *database, const uint64_t *v), void *arg);

/* The value of a counter (tests). */
uint64_t metrics_get(metric_counter_t m);

/* Append every metric to out in Prometheus text format (0.0.4); extra, when
 * not NULL, is appended as it is (lines the caller owns). false: out of
 * memory. */
bool metrics_render(buf_t *out);

#endif
