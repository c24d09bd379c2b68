/*
 * client — the client side of a proxied connection: startup packet, TLS
 * upgrade, cancel requests, userlist authentication, and the frontend
 * message stream. It never talks to PostgreSQL itself: it hands messages to
 * the linked server (server.c) and asks the pool (pool.c) for one.
 *
 * Must never: forward a message it has not length-checked, keep a message
 * from one client in another client's server without a reset, or free itself
 * before both of its libuv handles have been closed.
 */
#include "wire/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "wire/admin.h"
#include "wire/redis.h"
#include "wire/hooks.h"
#include "wire/cancel.h"
#include "common/log.h"
#include "common/metrics.h"

static const char *const client_state_names[] = {"startup", "auth", "login", "active", "closing"};
static uint64_t next_client_id = 1; /* per process; only compared for equality */
static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;

static void client_on_read(stream_t *s);
static void client_on_drain(stream_t *s);
static void count_db_bytes(client_t *c);
static void client_on_eof(stream_t *s, const char *why);
static void client_on_connect(stream_t *s, int status);
static void client_on_closed(stream_t *s);
static const stream_ops_t client_ops = {client_on_read, client_on_drain, client_on_eof,
                                        client_on_connect, client_on_closed};

void client_set_state(client_t *c, client_state_t st)
{
    epoch_assert((unsigned)st <= CL_CLOSING);
    log_debug("client %llu: %s -> %s", (unsigned long long)c->id, client_state_names[c->state],
              client_state_names[st]);
    metrics_client_state((int)c->state, (int)st);
    c->state = st;
}

/* ---- timers ---- */

static void client_timer_cb(uv_timer_t *t)
{
    client_t *c = t->data;
    switch (c->timer_kind) {
    case TIMER_LOGIN:
        client_fail(c, "08006", "timeout during startup and authentication (login_timeout)", NULL);
        break;
    case TIMER_IDLE:
        client_fail(c, "57P05", "terminating connection due to idle timeout (idle_timeout)", NULL);
        break;
    case TIMER_IDLE_IN_TX:
        client_fail(c, "25P03",
                    "terminating connection due to idle-in-transaction timeout "
                    "(idle_in_transaction_timeout)",
                    NULL);
        break;
    case TIMER_WAIT:
        pool_cancel_wait(c);
        client_fail(c, "53300", "no server connection became free in time (query_wait_timeout)",
                    "Raise pool_size or query_wait_timeout, or use fewer concurrent clients.");
        break;
    case TIMER_NONE:
        break;
    }
}

static void client_timer(client_t *c, timer_kind_t kind, double seconds)
{
    if (c->state == CL_CLOSING)
        return;
    if (kind == TIMER_NONE || seconds <= 0) {
        if (c->timer_kind != TIMER_NONE)
            uv_timer_stop(&c->timer);
        c->timer_kind = TIMER_NONE;
        return;
    }
    c->timer_kind = kind;
    uv_timer_start(&c->timer, client_timer_cb, (uint64_t)(seconds * 1000.0 + 0.5), 0);
}

void client_wait_timer(client_t *c, bool on)
{
    if (on)
        client_timer(c, TIMER_WAIT, worker_config(c->w)->query_wait_timeout);
    else if (c->timer_kind == TIMER_WAIT)
        client_timer(c, TIMER_NONE, 0);
}

/* ---- life cycle ---- */

void client_accept(worker_t *w, uv_stream_t *listener)
{
    client_t *c = calloc(1, sizeof *c);
    if (!c) {
        log_error("out of memory accepting a client");
        return;
    }
    c->w = w;
    c->state = CL_STARTUP;
    metrics_client_state(-1, CL_STARTUP);
    metrics_add(MC_CLIENTS_ACCEPTED, 1);
    c->connect_time = time(NULL);
    c->tx_status = 'I';
    list_init(&c->wait);
    pthread_mutex_lock(&id_lock);
    c->id = next_client_id++;
    pthread_mutex_unlock(&id_lock);
    stream_init(&c->st, &client_ops, c);
    c->st.side = STREAM_CLIENT;
    uv_timer_init(&w->loop, &c->timer);
    c->timer.data = c;
    list_append(&w->clients, &c->node);
    w->n_clients++;
    if (stream_accept(&c->st, &w->loop, listener) != 0) {
        client_close(c, "accept failed");
        return;
    }
    /* max_clients is checked once the startup packet is in (handle_startup):
     * until then login_timeout bounds how long the connection may linger */
    client_timer(c, TIMER_LOGIN, worker_config(w)->login_timeout);
    stream_read_start(&c->st);
}

static void client_maybe_free(client_t *c)
{
    if (!c->timer_closed || !c->stream_closed)
        return;
    list_remove(&c->node);
    if (c->startup.database)
        count_db_bytes(c);
    startup_free(&c->startup);
    replay_free(c);
    if (c->hook_state)
        wire_hooks()->release(c);
    buf_free(&c->alt);
    if (c->scram)
        scram_server_free(c->scram);
    free(c->auth_secret);
    worker_t *w = c->w;
    metrics_client_state((int)c->state, -1);
    free(c);
    w->n_clients--;
    worker_check_done(w);
}

static void timer_closed_cb(uv_handle_t *h)
{
    client_t *c = h->data;
    c->timer_closed = true;
    client_maybe_free(c);
}

static void client_on_closed(stream_t *s)
{
    client_t *c = s->owner;
    c->stream_closed = true;
    client_maybe_free(c);
}

/* A CancelRequest forwarded to PostgreSQL (see forward_cancel). */
typedef struct canceller {
    stream_t st;
    char packet[16];
    client_t *client; /* closed when we are; NULL once it left */
} canceller_t;

/* Detach from server, pool and cancel map; the stream is closed by the caller. */
static void client_teardown(client_t *c, const char *why)
{
    if (c->state == CL_CLOSING)
        return;
    log_debug("client %llu closing: %s", (unsigned long long)c->id, why);
    client_set_state(c, CL_CLOSING);
    pool_cancel_wait(c);
    if (c->server) {
        if (c->server->pool) {
            pool_release(c, true);
        } else {
            server_t *sv = c->server;
            c->server = NULL;
            sv->client = NULL;
            server_close(sv, "client left");
        }
    }
    if (c->cancel_pid) {
        cancel_unregister(c->cancel_pid);
        redis_cancel_unregister(c->w, c->cancel_pid, c->cancel_key);
        c->cancel_pid = 0;
    }
    if (c->cancel_wait) {
        c->cancel_wait->client = NULL; /* the Redis answer finds nobody */
        c->cancel_wait = NULL;
    }
    if (c->canceller) {
        c->canceller->client = NULL;
        c->canceller = NULL;
    }
    if (c->counted) {
        c->counted = false;
        worker_release_client_slot();
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, timer_closed_cb);
}

void client_close(client_t *c, const char *why)
{
    client_teardown(c, why);
    stream_close(&c->st);
}

void client_close_after_flush(client_t *c, const char *why)
{
    client_teardown(c, why);
    stream_close_after_flush(&c->st);
}

void client_fail(client_t *c, const char *sqlstate, const char *message, const char *hint)
{
    if (c->state == CL_CLOSING)
        return;
    buf_t msg = {0};
    metrics_error(sqlstate);
    if (proto_error(&msg, "FATAL", sqlstate, message, hint) &&
        stream_write(&c->st, msg.data, msg.len)) {
        buf_free(&msg);
        client_teardown(c, message);
        stream_close_after_flush(&c->st);
        return;
    }
    buf_free(&msg);
    client_close(c, message);
}

static void client_on_eof(stream_t *s, const char *why)
{
    client_close(s->owner, why);
}

static void client_on_connect(stream_t *s, int status)
{
    (void)s;
    (void)status; /* clients are accepted, never connected */
}

/* ---- cancel requests: a throwaway connection to PostgreSQL ----
 * The client's connection stays open until PostgreSQL has closed ours, as
 * with a direct connection: libpq's PQcancel waits for that close, and a
 * client that goes on earlier can have its next query hit by the late
 * signal (the postmaster signals the backend and its process group, two
 * kill()s that a loaded machine may separate by milliseconds). */

static void cancel_on_read(stream_t *s)
{
    buf_reset(&s->rbuf);
}
static void cancel_on_drain(stream_t *s)
{
    (void)s;
}
static void cancel_on_eof(stream_t *s, const char *why)
{
    (void)why;
    stream_close(s);
}
static void cancel_on_connect(stream_t *s, int status)
{
    canceller_t *k = s->owner;
    if (status != 0 || !stream_write(s, k->packet, sizeof k->packet)) {
        log_warning("cannot forward cancel request: %s",
                    status ? uv_strerror(status) : "out of memory");
        stream_close(s);
        return;
    }
    stream_flush(s);
    stream_read_start(s); /* PostgreSQL closes it once the backend is signalled */
}
static void cancel_on_closed(stream_t *s)
{
    canceller_t *k = s->owner;
    if (k->client) {
        k->client->canceller = NULL;
        client_close(k->client, "cancel request handled");
    }
    free(k);
}
static const stream_ops_t cancel_ops = {cancel_on_read, cancel_on_drain, cancel_on_eof,
                                        cancel_on_connect, cancel_on_closed};

/* Send the CancelRequest (pid, key) to host:port (PostgreSQL, or the proxy
 * that holds the session); closes c once that side closed ours. */
static void send_cancel(client_t *c, const char *host, int port, uint32_t pid, uint32_t key)
{
    canceller_t *k = calloc(1, sizeof *k);
    if (!k) {
        client_close(c, "cancel request: out of memory");
        return;
    }
    wr_u32(k->packet, 16);
    wr_u32(k->packet + 4, PROTO_CANCEL_REQUEST);
    wr_u32(k->packet + 8, pid);
    wr_u32(k->packet + 12, key);
    stream_init(&k->st, &cancel_ops, k);
    k->client = c;
    c->canceller = k;
    stream_read_stop(&c->st); /* nothing else may come on this connection */
    int rc = stream_connect(&k->st, &c->w->loop, host, port);
    if (rc) {
        log_warning("cannot forward cancel request: %s", uv_strerror(rc));
        stream_close(&k->st); /* frees k and closes c (now or from the close callback) */
    }
}

/* Redis's answer: which proxy of the group holds the session (redis.c) */
static void on_cancel_owner(void *arg, const redisReply *reply)
{
    cancel_wait_t *cw = arg;
    client_t *c = cw->client;
    uint32_t pid = cw->pid, key = cw->key;
    free(cw);
    if (!c)
        return; /* the requester left */
    c->cancel_wait = NULL;
    char host[64];
    int port;
    if (!reply || reply->type != REDIS_REPLY_STRING ||
        sscanf(reply->str, "%63s %d", host, &port) != 2 ||
        redis_is_self(worker_config(c->w), host, port)) {
        log_debug("cancel request for a session no proxy of the group holds ignored");
        client_close(c, "cancel request handled");
        return;
    }
    log_debug("cancel request forwarded to the proxy at %s:%d", host, port);
    send_cancel(c, host, port, pid, key);
}

/* Forward a CancelRequest; closes c now or once PostgreSQL closed ours. A
 * key this proxy does not know may be another proxy's of the group: Redis
 * says which, and it gets the request as the client sent it. */
void client_forward_cancel(client_t *c, uint32_t pid, uint32_t key)
{
    uint32_t be_pid, be_key;
    if (cancel_lookup(pid, key, &be_pid, &be_key)) {
        const config_t *cfg = worker_config(c->w);
        send_cancel(c, cfg->backend_host, cfg->backend_port, be_pid, be_key);
        return;
    }
    cancel_wait_t *cw = calloc(1, sizeof *cw);
    if (cw) {
        cw->client = c;
        cw->pid = pid;
        cw->key = key;
        stream_read_stop(&c->st);
        if (redis_cancel_lookup(c->w, pid, key, on_cancel_owner, cw)) {
            c->cancel_wait = cw;
            return;
        }
        free(cw);
    }
    log_debug("cancel request for unknown or idle client ignored");
    client_close(c, "cancel request handled");
}

/* ---- the message stream ---- */

/* Validate the header of the next message; returns its total size, 0 if
 * incomplete, or -1 after failing the client. */
static long next_message(client_t *c)
{
    buf_t *rb = &c->st.rbuf;
    if (buf_avail(rb) < 5)
        return 0;
    const char *p = buf_head(rb);
    uint32_t len = rd_u32(p + 1);
    if (len < 4) {
        client_fail(c, "08P01", "invalid message length", NULL);
        return -1;
    }
    if (len > worker_config(c->w)->max_message_size) {
        char msg[200];
        snprintf(msg, sizeof msg, "message of %u bytes is larger than max_message_size (%zu)", len,
                 worker_config(c->w)->max_message_size);
        client_fail(c, "54000", msg, "Raise max_message_size in epoch.conf.");
        return -1;
    }
    if (buf_avail(rb) < (size_t)len + 1)
        return 0;
    return (long)len + 1;
}

static void pause_for_backpressure(client_t *c)
{
    if (!c->paused_read) {
        c->paused_read = true;
        stream_read_stop(&c->st);
    }
}

static void flush_span(client_t *c, const char **span, size_t *span_len)
{
    if (*span_len && c->server && !stream_write(&c->server->st, *span, *span_len))
        client_fail(c, "53200", "out of memory", NULL);
    *span_len = 0;
    *span = NULL;
}

typedef enum {
    GATE_PASS,  /* the message may go to the server now */
    GATE_WAIT,  /* not now: stop reading, the message stays buffered */
    GATE_LEAVE, /* the client was closed or queued for a server: return */
} gate_t;

/* May the message at the head of the client's buffer go to its server? */
static gate_t gate(client_t *c, char type, const char **span, size_t *span_len)
{
    if (c->state == CL_LOGIN) {
        /* passthrough login: only password messages, relayed as they are */
        return c->server && !c->server->pool && type == 'p' ? GATE_PASS : GATE_WAIT;
    }
    if (c->inflight == 0 && c->tx_status == 'I' && !c->unsynced && !c->in_copy_in &&
        type != 'X' && admin_paused(c->startup.database)) {
        /* PAUSE: the next request waits for RESUME (admin_collect.c) */
        flush_span(c, span, span_len);
        c->held = true;
        stream_read_stop(&c->st);
        return GATE_WAIT;
    }
    if (!c->server) {
        flush_span(c, span, span_len);
        if (type == 'X')
            client_close(c, "client terminated");
        else if (!c->pool)
            client_fail(c, "08006", "lost the PostgreSQL server connection", NULL);
        else
            pool_acquire(c); /* resumes us when a server is linked */
        return GATE_LEAVE;
    }
    if (server_internal_busy(c->server))
        return GATE_WAIT;
    if (stream_pending(&c->server->st) > STREAM_HIGH_WATER) {
        pause_for_backpressure(c);
        return GATE_WAIT;
    }
    return GATE_PASS;
}

/* A request goes to PostgreSQL: the query time runs from the first one in
 * flight to the ReadyForQuery that leaves none (client_request_done). */
void client_request_started(client_t *c)
{
    if (c->inflight == 0) {
        c->request_start_ns = uv_hrtime();
        c->request_time = time(NULL);
    }
}

/* A Query, an Execute or a FunctionCall of the client: a statement of the
 * session's branch (forwarded, or answered by the session layer). */
static void note_statement(client_t *c, char type)
{
    if (type == 'Q' || type == 'E' || type == 'F') {
        c->statements_pending++;
        if (c->statements_in_tx++ == 0)
            c->xact_start_ns = uv_hrtime();
    }
}

/* What c did since the last call into its database's totals (one lock). */
static void count_db(client_t *c, uint64_t xacts, uint64_t xact_us, uint64_t query_us)
{
    if (c->console)
        return;
    uint64_t v[MD_FIELDS] = {[MD_XACTS] = xacts,
                             [MD_QUERIES] = c->statements_pending,
                             [MD_RECEIVED] = c->st.bytes_in - c->counted_in,
                             [MD_SENT] = c->st.bytes_out - c->counted_out,
                             [MD_XACT_US] = xact_us,
                             [MD_QUERY_US] = query_us};
    metrics_db_add(c->startup.database, v);
    c->counted_in = c->st.bytes_in;
    c->counted_out = c->st.bytes_out;
}

static void count_db_bytes(client_t *c)
{
    count_db(c, 0, 0, 0);
    c->statements_pending = 0;
}

void client_request_done(client_t *c)
{
    if (c->inflight > 0)
        return; /* the rest of a pipeline is still running */
    uint64_t now = uv_hrtime(), query_us = 0, xacts = 0, xact_us = 0;
    if (c->request_start_ns) {
        metrics_observe(MH_QUERY, (double)(now - c->request_start_ns) / 1e9);
        query_us = (now - c->request_start_ns) / 1000;
        c->request_start_ns = 0;
    }
    if (c->tx_status == 'I' && c->statements_in_tx > 0) {
        xacts = 1;
        xact_us = (now - c->xact_start_ns) / 1000;
        c->statements_in_tx = 0;
    }
    metrics_branch(wire_hooks()->branch(c), c->statements_pending, xacts);
    count_db(c, xacts, xact_us, query_us);
    c->statements_pending = 0;
}

/* The bookkeeping of a message forwarded to sv: requests in flight, the
 * extended protocol's Sync, COPY IN, the SETs transaction pooling replays.
 * false = not a frontend message type. */
static bool count_request(client_t *c, server_t *sv, const char *p, size_t total)
{
    note_statement(c, p[0]);
    switch (p[0]) {
    case 'Q':
        if (sv->pool && worker_config(c->w)->pool_mode == POOL_TRANSACTION)
            replay_note_query(c, p + 5, total - 5);
        /* fallthrough */
    case 'F':
        client_request_started(c);
        c->inflight++;
        sv->inflight++;
        return true;
    case 'S':
        client_request_started(c);
        c->inflight++;
        sv->inflight++;
        c->unsynced = false;
        return true;
    case 'P':
    case 'B':
    case 'D':
    case 'E':
    case 'C':
        c->unsynced = true;
        return true;
    case 'c':
    case 'f':
        c->in_copy_in = false;
        return true;
    case 'H':
    case 'd':
    case 'p':
        return true;
    default:
        return false;
    }
}

/* Forward frontend messages while CL_ACTIVE (or relay login in passthrough). */
static void process_messages(client_t *c)
{
    buf_t *rb = &c->st.rbuf;
    const char *span = NULL;
    size_t span_len = 0;
    while (c->state == CL_ACTIVE || c->state == CL_LOGIN) {
        long total = next_message(c);
        if (total <= 0)
            break;
        const char *p = buf_head(rb);
        char type = p[0];
        gate_t g = gate(c, type, &span, &span_len);
        if (g == GATE_WAIT)
            break;
        if (g == GATE_LEAVE)
            return;
        server_t *sv = c->server;
        if ((type == 'Q' || type == 'P' || (type == 'B' && c->hook_state)) &&
            c->state == CL_ACTIVE && !wire_hooks()->untouched(c, p, (size_t)total)) {
            flush_span(c, &span, &span_len); /* the hook may write a replacement */
            hook_verdict_t h = wire_hooks()->statement(c, p, (size_t)total);
            if (h == HOOK_WAIT || c->state != CL_ACTIVE)
                break;
            if (h == HOOK_DONE) {
                note_statement(c, type);
                buf_consume(rb, (size_t)total);
                continue;
            }
        }
        if (c->hook_state && (type == 'Q' || type == 'S' || type == 'F' || type == 'B' ||
                              type == 'E' || type == 'C' || type == 'P'))
            wire_hooks()->forwarded(c, p, (size_t)total);
        bool renamed = false;
        if (c->hook_state && (type == 'B' || type == 'D')) {
            buf_reset(&c->alt);
            renamed = wire_hooks()->rename(c, p, (size_t)total, &c->alt);
        }
        if (type == 'X') {
            flush_span(c, &span, &span_len);
            if (!sv->pool && stream_write(&sv->st, p, (size_t)total))
                stream_flush(&sv->st);
            client_close(c, "client terminated");
            return;
        }
        if (!count_request(c, sv, p, (size_t)total)) {
            char msg[80];
            snprintf(msg, sizeof msg, "invalid frontend message type %d", (unsigned char)type);
            flush_span(c, &span, &span_len);
            client_fail(c, "08P01", msg, NULL);
            return;
        }
        if (renamed) {
            flush_span(c, &span, &span_len);
            if (!stream_write(&sv->st, c->alt.data, c->alt.len)) {
                client_fail(c, "53200", "out of memory", NULL);
                return;
            }
        } else if (span && span + span_len == p) {
            span_len += (size_t)total;
        } else {
            flush_span(c, &span, &span_len);
            span = p;
            span_len = (size_t)total;
        }
        buf_consume(rb, (size_t)total);
    }
    flush_span(c, &span, &span_len);
    if (c->server)
        stream_flush(&c->server->st);
}

static void client_on_read(stream_t *s)
{
    client_t *c = s->owner;
    if (c->timer_kind == TIMER_IDLE || c->timer_kind == TIMER_IDLE_IN_TX)
        client_timer(c, TIMER_NONE, 0);
    switch (c->state) {
    case CL_STARTUP:
        client_handle_startup(c);
        if (c->state == CL_AUTH && buf_avail(&s->rbuf))
            client_on_read(s);
        return;
    case CL_AUTH:
        while (c->state == CL_AUTH) {
            long total = next_message(c);
            if (total <= 0)
                return;
            const char *p = buf_head(&s->rbuf);
            if (p[0] != 'p') {
                client_fail(c, "08P01", "expected password response", NULL);
                return;
            }
            /* copy out: handle_auth_message may write and the buffer may move */
            char body[2048];
            size_t blen = (size_t)total - 5;
            if (blen >= sizeof body) {
                client_fail(c, "08P01", "password message too long", NULL);
                return;
            }
            memcpy(body, p + 5, blen);
            body[blen] = '\0';
            buf_consume(&s->rbuf, (size_t)total);
            client_handle_auth_message(c, body, blen);
        }
        return;
    case CL_LOGIN:
    case CL_ACTIVE:
        if (c->console && c->state == CL_ACTIVE)
            admin_on_read(c);
        else
            process_messages(c);
        return;
    case CL_CLOSING:
        buf_reset(&s->rbuf);
        return;
    }
}

void client_resume(client_t *c)
{
    if (c->state != CL_ACTIVE && c->state != CL_LOGIN)
        return;
    if (c->paused_read && (!c->server || stream_pending(&c->server->st) <= STREAM_HIGH_WATER)) {
        c->paused_read = false;
        stream_read_start(&c->st);
    }
    if (buf_avail(&c->st.rbuf))
        process_messages(c);
}

/* The client's stream drained: the server may read again. */
static void client_on_drain(stream_t *s)
{
    client_t *c = s->owner;
    if (c->server && c->state == CL_ACTIVE)
        stream_read_start(&c->server->st);
}

void client_server_ready(client_t *c)
{
    server_t *sv = c->server;
    if (c->state == CL_CLOSING || !sv)
        return;
    if (c->console) {
        /* passthrough: PostgreSQL checked the password; the console needs
         * no server */
        const char *su = server_param(sv, "is_superuser");
        sv->client = NULL;
        c->server = NULL;
        server_close(sv, "admin console login done");
        admin_login(c, su && strcmp(su, "on") == 0);
        return;
    }
    cancel_set_backend(c->cancel_pid, sv->be_pid, sv->be_key);
    if (c->state == CL_LOGIN) {
        if (!c->login_checked && wire_hooks()->login_wanted(c)) {
            /* the branch asked for at startup must exist before the client
             * sees ReadyForQuery: a bad one fails the connection */
            c->login_checked = true;
            client_set_state(c, CL_ACTIVE);
            stream_read_start(&sv->st);
            wire_hooks()->login_check(c);
            return;
        }
        client_login_finish(c);
        return;
    }
    stream_read_start(&sv->st);
    client_resume(c);
}

void client_login_finish(client_t *c)
{
    server_t *sv = c->server;
    if (c->state == CL_CLOSING || !sv)
        return;
    if (!c->first_link_done) {
        /* pooled login: the server's settings and our keys; passthrough has
         * relayed those already. Then ReadyForQuery. */
        buf_t b = {0};
        bool ok = (!sv->pool || (server_params_replay(sv, &b) &&
                                 proto_backend_key(&b, c->cancel_pid, c->cancel_key))) &&
                  proto_ready(&b, sv->pool ? 'I' : sv->tx_status) &&
                  stream_write(&c->st, b.data, b.len);
        buf_free(&b);
        if (!ok) {
            client_fail(c, "53200", "out of memory", NULL);
            return;
        }
        stream_flush(&c->st);
    }
    c->first_link_done = true;
    client_set_state(c, CL_ACTIVE);
    client_timer(c, TIMER_NONE, 0);
    log_debug("client %llu logged in", (unsigned long long)c->id);
    client_after_ready(c);
    if (c->state != CL_ACTIVE)
        return;
    stream_read_start(&sv->st);
    client_resume(c);
}

void client_after_ready(client_t *c)
{
    if (c->state != CL_ACTIVE || c->inflight > 0 || c->unsynced)
        return;
    wire_hooks()->after_ready(c);
    const config_t *cfg = worker_config(c->w);
    if (c->tx_status == 'I') {
        if (c->w->shutdown_mode == SHUTDOWN_DRAIN) {
            client_fail(c, "57P01", "terminating connection because epoch-proxy is shutting down",
                        NULL);
            return;
        }
        if (c->server && c->server->pool && cfg->pool_mode == POOL_TRANSACTION && !c->in_copy_in)
            pool_release(c, false);
        client_timer(c, TIMER_IDLE, cfg->idle_timeout);
    } else {
        client_timer(c, TIMER_IDLE_IN_TX, cfg->idle_in_transaction_timeout);
    }
}

void client_server_lost(client_t *c, const char *sqlstate, const char *message)
{
    if (c->server) {
        c->server->client = NULL;
        c->server = NULL;
    }
    client_fail(c, sqlstate, message, NULL);
}
