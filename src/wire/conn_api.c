/*
 * conn_api — the connection operations the session layer may use (see
 * conn_api.h), and the hook table wire calls it through (hooks.h). Thin
 * accessors over conn.h, so the session never depends on its layout.
 */
#include "wire/conn_api.h"

#include <string.h>

#include "wire/conn.h"
#include "wire/hooks.h"

/* ---- hooks ---- */

static bool no_startup(client_t *c, char *err, size_t errcap)
{
    (void)c, (void)err, (void)errcap;
    return true;
}
static bool no_login(const client_t *c)
{
    (void)c;
    return false;
}
static bool all_untouched(const client_t *c, const char *msg, size_t total)
{
    (void)c, (void)msg, (void)total;
    return true;
}
static bool no_notification(server_t *sv, const char *msg, size_t total)
{
    (void)sv, (void)msg, (void)total;
    return false;
}
static void no_command_done(server_t *sv, const char *tag, size_t len)
{
    (void)sv, (void)tag, (void)len;
}

static void no_worker_exit(void)
{
}
static void no_after_ready(client_t *c)
{
    (void)c;
}
static const char *on_main(const client_t *c)
{
    (void)c;
    return NULL;
}

/* A plain proxy: nothing but the hooks wire calls for every client. The
 * others are called only for clients with hook state, which nobody sets. */
static const wire_hooks_t plain = {
    .startup = no_startup,
    .login_wanted = no_login,
    .untouched = all_untouched,
    .notification = no_notification,
    .command_done = no_command_done,
    .worker_exit = no_worker_exit,
    .after_ready = no_after_ready,
    .release = no_after_ready,
    .branch = on_main,
};
static const wire_hooks_t *installed = &plain;

void wire_hooks_install(const wire_hooks_t *hooks)
{
    installed = hooks;
}

const wire_hooks_t *wire_hooks(void)
{
    return installed;
}

/* ---- server ---- */

client_t *server_client(const server_t *sv)
{
    return sv->client;
}

char server_tx_status(const server_t *sv)
{
    return sv->tx_status;
}

bool server_listening(const server_t *sv)
{
    return sv->listening;
}

void server_set_listening(server_t *sv, bool on)
{
    sv->listening = on;
}

/* ---- client ---- */

uint64_t client_id(const client_t *c)
{
    return c->id;
}

void *client_hook_state(const client_t *c)
{
    return c->hook_state;
}

void client_set_hook_state(client_t *c, void *state)
{
    c->hook_state = state;
}

bool client_is_active(const client_t *c)
{
    return c->state == CL_ACTIVE;
}

bool client_is_closing(const client_t *c)
{
    return c->state == CL_CLOSING;
}

char client_tx_status(const client_t *c)
{
    return c->tx_status;
}

int client_inflight(const client_t *c)
{
    return c->inflight;
}

bool client_unsynced(const client_t *c)
{
    return c->unsynced;
}

server_t *client_server(const client_t *c)
{
    return c->server;
}

bool client_pooled(const client_t *c)
{
    return c->server && c->server->pool;
}

bool client_peer_addr(const client_t *c, char *out, size_t cap)
{
    if (c->st.h.handle.type != UV_TCP)
        return false;
    struct sockaddr_storage sa;
    int len = sizeof sa;
    if (uv_tcp_getpeername(&c->st.h.tcp, (struct sockaddr *)&sa, &len) != 0)
        return false;
    if (sa.ss_family == AF_INET6)
        return uv_ip6_name((const struct sockaddr_in6 *)&sa, out, cap) == 0;
    return sa.ss_family == AF_INET && uv_ip4_name((const struct sockaddr_in *)&sa, out, cap) == 0;
}

startup_t *client_startup(const client_t *c)
{
    return (startup_t *)&c->startup; /* the client's own, which the session may rewrite */
}

const config_t *client_config(const client_t *c)
{
    return worker_config(c->w);
}

uint64_t client_now_ms(const client_t *c)
{
    return worker_now_ms(c->w);
}

bool client_send(client_t *c, const void *data, size_t len)
{
    return stream_write(&c->st, data, len);
}

void client_answer_error(client_t *c, const char *sqlstate, const char *message)
{
    buf_t b = {0};
    c->tx_status = c->server->tx_status;
    bool ok = proto_error(&b, "ERROR", sqlstate, message, NULL) && proto_ready(&b, c->tx_status) &&
              stream_write(&c->st, b.data, b.len);
    buf_free(&b);
    if (!ok) {
        client_fail(c, "53200", "out of memory", NULL);
        return;
    }
    stream_flush(&c->st);
    client_after_ready(c);
}

bool client_send_query(client_t *c, const char *sql)
{
    server_t *sv = c->server;
    buf_t b = {0};
    bool ok = proto_query(&b, sql) && stream_write(&sv->st, b.data, b.len);
    buf_free(&b);
    if (!ok)
        return false;
    if (sv->pool && worker_config(c->w)->pool_mode == POOL_TRANSACTION)
        replay_note_query(c, sql, strlen(sql) + 1);
    client_request_started(c);
    c->inflight++;
    sv->inflight++;
    return true;
}

bool client_send_extended(client_t *c, const buf_t *msgs, bool ends_with_sync)
{
    server_t *sv = c->server;
    if (!stream_write(&sv->st, msgs->data, msgs->len))
        return false;
    if (ends_with_sync) {
        client_request_started(c);
        c->inflight++;
        sv->inflight++;
    } else {
        c->unsynced = true;
    }
    return true;
}
