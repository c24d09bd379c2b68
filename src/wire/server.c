/*
 * server — a connection to PostgreSQL: connect, log in (relaying the
 * client's authentication in passthrough mode, or answering it with the
 * configured credentials when pooled), forward backend messages to the linked
 * client, and run the proxy's own internal statements in between.
 *
 * Must never: forward a backend message while an internal statement owns the
 * connection, or hand a server with a request in flight to another client.
 */
#include "wire/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wire/hooks.h"
#include "common/log.h"
#include "common/metrics.h"

static const char *const server_state_names[] = {"connecting", "login", "idle", "active",
                                                 "closing"};

static void server_on_read(stream_t *s);
static void server_on_drain(stream_t *s);
static void server_on_eof(stream_t *s, const char *why);
static void server_on_closed(stream_t *s);
static const stream_ops_t server_ops = {server_on_read, server_on_drain, server_on_eof,
                                        server_on_connect, server_on_closed};

void server_set_state(server_t *sv, server_state_t st)
{
    epoch_assert((unsigned)st <= SV_CLOSING);
    log_debug("server %p: %s -> %s", (void *)sv, server_state_names[sv->state],
              server_state_names[st]);
    metrics_server_state((int)sv->state, (int)st);
    sv->state = st;
}

/* Login never completed: tell whoever waits for this server, then close. */
void server_login_failed(server_t *sv, const char *message)
{
    log_warning("PostgreSQL server connection failed: %s", message);
    snprintf(sv->login_err, sizeof sv->login_err, "%s", message);
    sv->login_failed = true;
    if (sv->client && !sv->pool)
        client_server_lost(sv->client, "08006", message);
    server_close(sv, message);
}

static void connect_timeout_cb(uv_timer_t *t)
{
    server_t *sv = t->data;
    if (sv->state == SV_CONNECTING || sv->state == SV_LOGIN)
        server_login_failed(sv, "timeout connecting to the PostgreSQL server (connect_timeout)");
}

void server_connect_failed(server_t *sv, const char *why)
{
    char msg[300];
    snprintf(msg, sizeof msg, "could not connect to the PostgreSQL server: %s", why);
    server_login_failed(sv, msg);
}

/* The backend sslmode asked for TLS and it could not be had. */
void server_tls_failed(server_t *sv, const char *why)
{
    char msg[300];
    snprintf(msg, sizeof msg, "TLS connection to the PostgreSQL server failed: %s", why);
    server_login_failed(sv, msg);
}

bool server_connect(worker_t *w, pool_t *pool, client_t *client)
{
    server_t *sv = calloc(1, sizeof *sv);
    if (!sv)
        return false;
    sv->w = w;
    sv->pool = pool;
    sv->state = SV_CONNECTING;
    metrics_server_state(-1, SV_CONNECTING);
    metrics_add(MC_SERVER_CONNECTS, 1);
    sv->connect_time = time(NULL);
    sv->tx_status = 'I';
    list_init(&sv->node);
    stream_init(&sv->st, &server_ops, sv);
    sv->st.side = STREAM_SERVER;
    uv_timer_init(&w->loop, &sv->timer);
    sv->timer.data = sv;
    w->n_servers++;
    if (pool) {
        pool->n_servers++;
        pool->n_connecting++;
    }
    if (!pool) {
        sv->client = client;
        client->server = sv;
    }
    const config_t *cfg = worker_config(w);
    if (cfg->connect_timeout > 0)
        uv_timer_start(&sv->timer, connect_timeout_cb, (uint64_t)(cfg->connect_timeout * 1000), 0);
    int rc = stream_connect(&sv->st, &w->loop, cfg->backend_host, cfg->backend_port);
    if (rc)
        server_connect_failed(sv, uv_strerror(rc));
    return true;
}

static void server_maybe_free(server_t *sv)
{
    if (!sv->timer_closed || !sv->stream_closed)
        return;
    for (int i = 0; i < sv->n_params; i++) {
        free(sv->params[i].name);
        free(sv->params[i].value);
        free(sv->params[i].login_value);
    }
    free(sv->params);
    if (sv->scram)
        scram_client_free(sv->scram);
    worker_t *w = sv->w;
    metrics_server_state((int)sv->state, -1);
    free(sv);
    w->n_servers--;
    worker_check_done(w);
}

static void server_timer_closed(uv_handle_t *h)
{
    server_t *sv = h->data;
    sv->timer_closed = true;
    server_maybe_free(sv);
}

static void server_on_closed(stream_t *s)
{
    server_t *sv = s->owner;
    sv->stream_closed = true;
    server_maybe_free(sv);
}

void server_close(server_t *sv, const char *why)
{
    if (sv->state == SV_CLOSING)
        return;
    log_debug("server %p (pid %u) closing: %s", (void *)sv, sv->be_pid, why);
    server_set_state(sv, SV_CLOSING);
    list_remove(&sv->node);
    if (sv->client) {
        client_t *c = sv->client;
        sv->client = NULL;
        c->server = NULL;
        if (c->state != CL_CLOSING)
            client_server_lost(c, "08006", "the PostgreSQL server connection was closed");
    }
    if (sv->pool) {
        pool_server_gone(sv, sv->login_failed ? sv->login_err : NULL);
        sv->pool = NULL;
    }
    server_internal_drop_all(sv);
    uv_timer_stop(&sv->timer);
    uv_close((uv_handle_t *)&sv->timer, server_timer_closed);
    stream_close(&sv->st);
}

static void server_on_eof(stream_t *s, const char *why)
{
    server_t *sv = s->owner;
    if (sv->state == SV_CONNECTING || sv->state == SV_LOGIN) {
        /* a closed connection in the middle of the handshake is a TLS
         * failure too (PostgreSQL drops what it cannot handshake with) */
        if (s->tls_error[0] || (s->ssl && sv->state == SV_CONNECTING))
            server_tls_failed(sv, s->tls_error[0] ? s->tls_error : why);
        else
            server_connect_failed(sv, why);
        return;
    }
    server_close(sv, why);
}

/* ---- the backend message stream ---- */

static void forward_span(server_t *sv, const char **span, size_t *span_len)
{
    client_t *c = sv->client;
    if (*span_len && c && !stream_write(&c->st, *span, *span_len))
        client_fail(c, "53200", "out of memory", NULL);
    *span = NULL;
    *span_len = 0;
}

/* A message for a server idle in its pool: only asynchronous ones may
 * arrive. false = sv closed. */
static bool idle_message(server_t *sv, const char *p, size_t total)
{
    switch (p[0]) {
    case 'S':
        server_note_param(sv, p + 5, total - 5);
        return true;
    case 'A':
        wire_hooks()->notification(sv, p, total);
        return true;
    case 'E':
        server_close(sv, "error while idle");
        return false;
    default:
        return true;
    }
}

/* The session's reply hook (a client with session state): true when it
 * dropped the message or sent its replacement. */
static bool hooked_reply(server_t *sv, client_t *c, const char *p, size_t total, const char **span,
                         size_t *span_len)
{
    buf_t fixed = {0};
    hook_reply_t act = wire_hooks()->reply(c, p, total, &fixed);
    if (act != REPLY_FORWARD) {
        forward_span(sv, span, span_len);
        if (act == REPLY_REPLACE && !stream_write(&c->st, fixed.data, fixed.len))
            client_fail(c, "53200", "out of memory", NULL);
    }
    buf_free(&fixed);
    return act != REPLY_FORWARD;
}

/* The bookkeeping of a reply forwarded to the linked client: transaction
 * status, requests in flight, parameters, settings replay, COPY IN. true at
 * ReadyForQuery. */
static bool note_reply(server_t *sv, client_t *c, const char *p, size_t total)
{
    switch (p[0]) {
    case 'Z':
        sv->tx_status = total >= 6 ? p[5] : 'I';
        c->tx_status = sv->tx_status;
        if (c->track)
            replay_ready(c, sv->tx_status);
        if (sv->inflight > 0)
            sv->inflight--;
        if (c->inflight > 0)
            c->inflight--;
        c->in_copy_in = false;
        client_request_done(c);
        return true;
    case 'S':
        server_note_param(sv, p + 5, total - 5);
        return false;
    case 'C':
        /* the tag must be a string before replay.c reads it */
        if (c->track && memchr(p + 5, 0, total - 5))
            replay_command_done(c, p + 5);
        wire_hooks()->command_done(sv, p + 5, total - 5);
        return false;
    case 'E':
        if (c->track)
            replay_error(c);
        metrics_error(proto_error_field(p + 5, total - 5, 'C'));
        return false;
    case 'G':
        c->in_copy_in = true;
        return false;
    default:
        return false;
    }
}

static void server_on_read(stream_t *s)
{
    server_t *sv = s->owner;
    buf_t *rb = &s->rbuf;
    const char *span = NULL;
    size_t span_len = 0;
    bool ready = false;
    if (sv->state == SV_CONNECTING && !server_ssl_answer(sv))
        return;
    while (sv->state != SV_CLOSING && buf_avail(rb) >= 5) {
        const char *p = buf_head(rb);
        char type = p[0];
        uint32_t len = rd_u32(p + 1);
        if (len < 4 || len > 0x40000000u) {
            forward_span(sv, &span, &span_len);
            server_close(sv, "invalid message length from PostgreSQL");
            return;
        }
        size_t total = (size_t)len + 1;
        if (buf_avail(rb) < total)
            break;
        if (sv->state == SV_LOGIN) {
            server_login_message(sv, type, p, total);
            buf_consume(rb, total);
            continue;
        }
        if (sv->iq_sent) {
            forward_span(sv, &span, &span_len);
            bool alive = server_internal_message(sv, type, p, total);
            if (!alive)
                return;
            buf_consume(rb, total);
            continue;
        }
        client_t *c = sv->client;
        if (!c) {
            if (!idle_message(sv, p, total))
                return;
            buf_consume(rb, total);
            continue;
        }
        if (type == 'A' && wire_hooks()->notification(sv, p, total)) {
            forward_span(sv, &span, &span_len);
            buf_consume(rb, total);
            continue;
        }
        if (c->hook_state && hooked_reply(sv, c, p, total, &span, &span_len)) {
            buf_consume(rb, total);
            continue;
        }
        ready |= note_reply(sv, c, p, total);
        if (span && span + span_len == p) {
            span_len += total;
        } else {
            forward_span(sv, &span, &span_len);
            span = p;
            span_len = total;
        }
        buf_consume(rb, total);
        if (ready && sv->inflight == 0)
            break; /* let the client release us before reading further */
    }
    forward_span(sv, &span, &span_len);
    client_t *c = sv->client;
    if (!c || sv->state == SV_CLOSING)
        return;
    stream_flush(&c->st);
    if (stream_pending(&c->st) > STREAM_HIGH_WATER)
        stream_read_stop(&sv->st); /* resumed by the client's drain */
    if (ready) {
        server_internal_kick(sv);
        client_after_ready(c);
        /* still ours and more buffered (e.g. pipelined results)? go on */
        if (sv->client == c && sv->state != SV_CLOSING && buf_avail(rb) >= 5 && !sv->iq_sent)
            server_on_read(s);
    }
}

static void server_on_drain(stream_t *s)
{
    server_t *sv = s->owner;
    if (sv->client)
        client_resume(sv->client);
}
