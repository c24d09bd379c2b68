/*
 * conn — the objects of a worker's loop and how they point at each other:
 *
 *   worker ─┬─ clients (list)            client ──server──▶ server
 *           └─ pools ── idle servers      client ◀──client── server
 *                    └─ waiting clients   server ──pool────▶ pool (NULL in passthrough)
 *
 * A client and its server are linked both ways while a session (or, in
 * transaction pooling, a transaction) is being served. Everything here lives
 * on one loop and is touched by one thread only. client.c, server.c, pool.c
 * and replay.c implement it; this header is private to src/wire.
 */
#ifndef EPOCH_WIRE_CONN_H
#define EPOCH_WIRE_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <time.h>
#include <uv.h>

#include "wire/auth.h"
#include "common/buf.h"
#include "wire/config.h"
#include "wire/conn_api.h"
#include "common/list.h"
#include "wire/proto.h"
#include "wire/worker.h"
#include "wire/stream.h"

typedef struct worker worker_t;
typedef struct client client_t;
typedef struct server server_t;
typedef struct pool pool_t;

typedef enum {
    CL_STARTUP, /* waiting for the startup packet (maybe after TLS) */
    CL_AUTH,    /* userlist: proxy's own password exchange */
    CL_LOGIN,   /* waiting for a server to finish logging in */
    CL_ACTIVE,  /* normal traffic */
    CL_CLOSING, /* closing; waiting for the stream's close callback */
} client_state_t;

typedef enum {
    SV_CONNECTING, /* TCP/unix connect in progress */
    SV_LOGIN,      /* startup sent, authentication in progress */
    SV_IDLE,       /* logged in, in its pool, no client */
    SV_ACTIVE,     /* linked to a client */
    SV_CLOSING,
} server_state_t;

typedef enum { TIMER_NONE, TIMER_LOGIN, TIMER_IDLE, TIMER_IDLE_IN_TX, TIMER_WAIT } timer_kind_t;

/* One SET the client made (or a startup parameter), replayed on a new server
 * in pooled modes. */
typedef struct replay_entry {
    char *name;  /* lower-case GUC name */
    char *value; /* startup value, or NULL for a SET statement */
    char *stmt;  /* the statement to replay */
} replay_entry_t;

struct client {
    stream_t st;
    list_node_t node; /* worker->clients */
    list_node_t wait; /* pool->waiting */
    worker_t *w;
    client_state_t state;
    uint64_t id;
    server_t *server;
    pool_t *pool;
    startup_t startup;
    buf_t alt;                   /* scratch for a client message the proxy renames */
    struct canceller *canceller; /* a CancelRequest being forwarded for this connection */
    bool tls_done;
    bool counted; /* holds one max_clients slot */
    uint32_t cancel_pid, cancel_key;
    char tx_status;       /* from the last ReadyForQuery: I, T or E */
    int inflight;         /* Query/Sync/FunctionCall sent, ReadyForQuery pending */
    uint64_t request_start_ns; /* uv_hrtime() when inflight left 0 (metrics) */
    uint64_t wait_start_ns;    /* uv_hrtime() when it started waiting for a server */
    int statements_in_tx;      /* statements since the last ReadyForQuery 'I' */
    uint64_t statements_pending; /* counted at the next ReadyForQuery (metrics) */
    uint64_t xact_start_ns;    /* uv_hrtime() at the transaction's first statement */
    uint64_t counted_in, counted_out; /* st.bytes_in/out already added to the database's stats */
    time_t connect_time;       /* wall clock at accept (SHOW CLIENTS) */
    time_t request_time;       /* wall clock of the last request */
    bool console;              /* the admin console (database "epoch"): admin.c */
    struct cancel_wait *cancel_wait; /* a CancelRequest waiting for Redis's answer */
    bool admin_busy;           /* a SHOW waits for the other workers' answers */
    bool held;                 /* PAUSE holds its next request (admin.c) */
    bool admin_skip;           /* extended-protocol messages until the next Sync */
    bool unsynced;        /* extended-protocol messages sent without a Sync yet */
    bool in_copy_in;      /* between CopyInResponse and CopyDone/CopyFail */
    bool first_link_done; /* ParameterStatus/BackendKeyData sent to the client */
    bool paused_read;     /* reading stopped for backpressure */
    /* userlist authentication */
    scram_server_t *scram;
    uint8_t md5_salt[4];
    int auth_step;     /* SCRAM: 0 = expecting the initial response */
    char *auth_secret; /* copy of the userlist entry for this login */
    /* session state replayed in pooled modes */
    replay_entry_t *replay;
    int n_replay;
    uint64_t replay_version;
    struct replay_track *track; /* replay.c: queries in flight, the open transaction's SETs */
    void *hook_state;           /* the session layer's (conn_api.h); NULL until it sets one */
    bool login_checked;         /* the session's login check ran */
    /* timers */
    uv_timer_t timer;
    timer_kind_t timer_kind;
    bool timer_closed;
    bool stream_closed;
};

/* A CancelRequest of a key this proxy does not hold, while Redis is asked
 * which proxy does (client.c). */
typedef struct cancel_wait {
    client_t *client; /* NULL once it left */
    uint32_t pid, key;
} cancel_wait_t;

typedef struct internal internal_t;

typedef struct server_param {
    char *name;
    char *value;       /* latest ParameterStatus */
    char *login_value; /* value when the login finished; NULL if reported later */
} server_param_t;

struct server {
    stream_t st;
    list_node_t node; /* pool->idle or pool->all */
    worker_t *w;
    pool_t *pool; /* NULL in passthrough mode */
    client_t *client;
    server_state_t state;
    uint32_t be_pid, be_key;
    char tx_status;
    int inflight; /* requests of the client awaiting ReadyForQuery */
    scram_client_t *scram;
    server_param_t *params; /* from ParameterStatus */
    int n_params;
    uint64_t idle_since_ms;
    time_t connect_time; /* wall clock when the connection was started (SHOW SERVERS) */
    uint64_t dirty_owner; /* id of the client whose SETs this server carries; 0 = clean */
    uint64_t dirty_version;
    internal_t *iq_head, *iq_tail; /* internal statements; head is running when sent */
    bool iq_sent;
    uv_timer_t timer;
    bool timer_closed;
    bool stream_closed;
    bool logged_in;
    bool listening;     /* the session layer's LISTEN is in effect (server_set_listening) */
    bool counted_ready; /* pool->n_connecting no longer counts it */
    bool login_failed;
    char login_err[300];
};

struct pool {
    list_node_t node; /* worker->pools */
    worker_t *w;
    char *user; /* client-side user */
    char *database;
    list_node_t idle;    /* server_t.node, SV_IDLE */
    list_node_t waiting; /* client_t.wait */
    int n_servers;       /* all servers of this pool, any state */
    int n_connecting;    /* of which still connecting or logging in */
};

struct worker {
    int id;
    uv_loop_t loop;
    uv_tcp_t listener;
    bool listening;
    uv_async_t wake;
    uv_timer_t tick;
    pthread_t thread;
    const config_t *cfg;
    _Atomic(const config_t *) next_cfg; /* set by the main thread on SIGHUP */
    atomic_int shutdown_req;            /* 0, SHUTDOWN_DRAIN or SHUTDOWN_FAST */
    int shutdown_mode;
    uint64_t drain_deadline_ms;
    list_node_t clients;
    list_node_t pools;
    int n_clients;
    int n_servers;
    int listen_error; /* set if bind/listen failed */
    uv_tcp_t http_listener; /* http.c */
    bool http_listening;
    list_node_t http_conns;
    /* the admin console's requests to this worker, and its own consoles'
     * answers (admin_collect.c), posted by any worker */
    pthread_mutex_t admin_lock;
    struct admin_item *admin_inbox;
    struct admin_req *admin_done;
    bool admin_closed; /* the loop is ending: posts are refused */
    struct redis_link *redis; /* redis.c; NULL without Redis */
    uint64_t redis_refreshed_ms;
};

/* client.c */
void client_accept(worker_t *w, uv_stream_t *listener);
void client_close(client_t *c, const char *why);
/* Close once what is queued for the client has been written. */
void client_close_after_flush(client_t *c, const char *why);
/* Send a FATAL (or ERROR) ErrorResponse and close once it is written. */
/* Continue processing buffered client messages (after a pause). */
void client_resume(client_t *c);
/* Server finished login (passthrough) or a pooled server was linked. */
void client_server_ready(client_t *c);
/* A request (Query, Sync, FunctionCall) is about to be counted in flight:
 * the query time starts when none was (metrics). */
void client_request_started(client_t *c);
/* A ReadyForQuery reached the client: metrics of the request
 * and, back to idle, of the transaction (client.c). */
void client_request_done(client_t *c);
/* Login is complete (after the startup branch check): send ReadyForQuery. */
/* The linked server went away with an error the client should see. */
void client_server_lost(client_t *c, const char *sqlstate, const char *message);
/* A ReadyForQuery for the client was forwarded; may release the server. */
void client_after_ready(client_t *c);
void client_set_state(client_t *c, client_state_t st);
/* Start/stop the query_wait_timeout timer while queued for a pooled server. */
void client_wait_timer(client_t *c, bool on);
/* client_startup.c: the startup packet (CL_STARTUP) and userlist
 * authentication messages (CL_AUTH). */
void client_handle_startup(client_t *c);
void client_handle_auth_message(client_t *c, const char *body, size_t len);
/* Forward a CancelRequest for backend keys (pid, key) on a throwaway connection. */
void client_forward_cancel(client_t *c, uint32_t pid, uint32_t key);

/* server.c */
/* Start a server connection. In passthrough mode (pool NULL) it is linked to
 * `client` at once. Failures after this returns true are reported through the
 * client or the pool. false = out of memory, nothing started. */
bool server_connect(worker_t *w, pool_t *pool, client_t *client)
    __attribute__((warn_unused_result));
void server_close(server_t *sv, const char *why);
/* Internal statements (server_internal, conn_api.h) are queued or running:
 * the client's input waits. */
/* server.c, server_login.c, server_params.c, internal.c share these. */
void server_set_state(server_t *sv, server_state_t st);
/* Login never completed: tell whoever waits for this server, then close. */
void server_login_failed(server_t *sv, const char *message);
void server_connect_failed(server_t *sv, const char *why);
/* The backend sslmode asked for TLS and it could not be had. */
void server_tls_failed(server_t *sv, const char *why);
void server_on_connect(stream_t *s, int status);
/* The byte answering the SSLRequest: false = stop reading for now (closed, or waiting for it). */
bool server_ssl_answer(server_t *sv);
/* A backend message during the login. */
void server_login_message(server_t *sv, char type, const char *msg, size_t total);
/* A ParameterStatus body. */
void server_note_param(server_t *sv, const char *body, size_t len);
void server_snapshot_login_params(server_t *sv);
/* One backend message while an internal statement runs. false = sv closed. */
bool server_internal_message(server_t *sv, char type, const char *msg, size_t total);
/* Free every queued internal statement (the server is closing). */
void server_internal_drop_all(server_t *sv);
bool server_internal_busy(const server_t *sv);
/* Send the next queued internal statement if the server is free. */
void server_internal_kick(server_t *sv);
/* Latest ParameterStatus value of a reported setting, or NULL. */
const char *server_param(const server_t *sv, const char *name);
/* Its value when the server's login finished, or NULL. */
const char *server_param_login(const server_t *sv, const char *name);
/* Append all ParameterStatus messages to a buffer. */
bool server_params_replay(const server_t *sv, buf_t *out) __attribute__((warn_unused_result));

/* pool.c */
pool_t *pool_get(worker_t *w, const char *user, const char *database);
/* Find or start a server for the client; links now or queues the client. */
void pool_acquire(client_t *c);
/* Unlink the client's server and return it to its pool (or close it). */
void pool_release(client_t *c, bool client_leaving);
/* A pooled server finished login or became idle: serve a waiting client. */
void pool_server_available(server_t *sv);
/* A pooled server closed; `login_error` is set when it never logged in (the
 * waiting clients get it when no other server can serve them). */
void pool_server_gone(server_t *sv, const char *login_error);
void pool_cancel_wait(client_t *c);
void pool_free_all(worker_t *w);
void pool_close_idle(worker_t *w, double idle_timeout);

/* replay.c */
/* Record the startup parameters that must be re-applied on pooled servers. */
bool replay_init(client_t *c) __attribute__((warn_unused_result));
/* Inspect a simple Query the client sends (transaction pooling): remember
 * its SET/RESET statements until their transaction ends. */
void replay_note_query(client_t *c, const char *sql, size_t len);
/* Backend messages for a client with c->track, before they are forwarded:
 * CommandComplete (tag), ErrorResponse, ReadyForQuery (call before the
 * in-flight counts drop). */
void replay_command_done(client_t *c, const char *tag);
void replay_error(client_t *c);
void replay_ready(client_t *c, char tx_status);
/* SQL to bring a server to the client's session state; *sql = NULL if none
 * is needed, caller frees. false = out of memory. */
bool replay_sync_sql(client_t *c, server_t *sv, char **sql) __attribute__((warn_unused_result));
void replay_free(client_t *c);

/* worker.c */
const config_t *worker_config(worker_t *w);
/* Listen on host:port (numeric) on w's loop with h, SO_REUSEPORT (one
 * accept queue per worker); *opened is set once h needs closing; key names
 * the setting in errors. -1 with err. */
int worker_listen(worker_t *w, uv_tcp_t *h, bool *opened, const char *key, const char *host,
                  int port, uv_connection_cb cb, char *err, size_t errcap);
/* Worker i of workers_count() (the admin console asks each). */
worker_t *worker_at(int i);
/* Client connections of the whole process (the Redis heartbeat). */
int workers_clients(void);
/* A client or server was freed: a shutting-down worker may now be done. */
void worker_check_done(worker_t *w);
uint64_t worker_now_ms(worker_t *w);
bool worker_admit_client(worker_t *w);
void worker_release_client_slot(void);

#endif
