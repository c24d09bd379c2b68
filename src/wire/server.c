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

struct internal {
    internal_t *next;
    char *sql;
    internal_cb_t cb;
    void *arg;
    /* result being collected */
    bool failed;
    char sqlstate[6];
    char *message;
    char *tag;
    int ncols;
    buf_t cells;   /* NUL-terminated values */
    long *offsets; /* per cell: offset into cells, -1 for NULL */
    size_t n_offsets, cap_offsets;
};

static const char *const server_state_names[] = {"connecting", "login", "idle", "active",
                                                 "closing"};

static void server_on_read(stream_t *s);
static void server_on_drain(stream_t *s);
static void server_on_eof(stream_t *s, const char *why);
static void server_on_connect(stream_t *s, int status);
static void server_on_closed(stream_t *s);
static const stream_ops_t server_ops = {server_on_read, server_on_drain, server_on_eof,
                                        server_on_connect, server_on_closed};

static void server_set_state(server_t *sv, server_state_t st)
{
    epoch_assert((unsigned)st <= SV_CLOSING);
    log_debug("server %p: %s -> %s", (void *)sv, server_state_names[sv->state],
              server_state_names[st]);
    sv->state = st;
}

/* Login never completed: tell whoever waits for this server, then close. */
static void login_failed(server_t *sv, const char *message)
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
        login_failed(sv, "timeout connecting to the PostgreSQL server (connect_timeout)");
}

static void connect_failed(server_t *sv, const char *why)
{
    char msg[300];
    snprintf(msg, sizeof msg, "could not connect to the PostgreSQL server: %s", why);
    login_failed(sv, msg);
}

/* The backend sslmode asked for TLS and it could not be had. */
static void tls_failed(server_t *sv, const char *why)
{
    char msg[300];
    snprintf(msg, sizeof msg, "TLS connection to the PostgreSQL server failed: %s", why);
    login_failed(sv, msg);
}

bool server_connect(worker_t *w, pool_t *pool, client_t *client)
{
    server_t *sv = calloc(1, sizeof *sv);
    if (!sv)
        return false;
    sv->w = w;
    sv->pool = pool;
    sv->state = SV_CONNECTING;
    sv->tx_status = 'I';
    list_init(&sv->node);
    stream_init(&sv->st, &server_ops, sv);
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
        connect_failed(sv, uv_strerror(rc));
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

static void internal_free(internal_t *in)
{
    free(in->sql);
    free(in->message);
    free(in->tag);
    buf_free(&in->cells);
    free(in->offsets);
    free(in);
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
    while (sv->iq_head) {
        internal_t *in = sv->iq_head;
        sv->iq_head = in->next;
        internal_free(in);
    }
    sv->iq_tail = NULL;
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
            tls_failed(sv, s->tls_error[0] ? s->tls_error : why);
        else
            connect_failed(sv, why);
        return;
    }
    server_close(sv, why);
}

/* ---- login ---- */

static bool send_startup(server_t *sv)
{
    const config_t *cfg = worker_config(sv->w);
    buf_t b = {0};
    bool ok = buf_put_i32(&b, 0) && buf_put_i32(&b, (int32_t)PROTO_V3);
    if (!sv->pool) {
        const startup_t *st = &sv->client->startup;
        size_t pos = 0;
        const char *name, *value;
        while (ok && startup_next(st, &pos, &name, &value))
            if (strncmp(name, "_pq_.", 5) != 0)
                ok = buf_put_str(&b, name) && buf_put_str(&b, value);
    } else {
        const char *user = cfg->server_user ? cfg->server_user : sv->pool->user;
        ok = ok && buf_put_str(&b, "user") && buf_put_str(&b, user) &&
             buf_put_str(&b, "database") && buf_put_str(&b, sv->pool->database) &&
             buf_put_str(&b, "application_name") && buf_put_str(&b, "epoch-proxy");
    }
    ok = ok && buf_put_u8(&b, 0);
    if (ok) {
        wr_u32(b.data, (uint32_t)b.len);
        ok = stream_write(&sv->st, b.data, b.len);
    }
    buf_free(&b);
    stream_flush(&sv->st);
    return ok;
}

static void start_login(server_t *sv)
{
    server_set_state(sv, SV_LOGIN);
    if (!send_startup(sv)) {
        connect_failed(sv, "out of memory");
        return;
    }
    stream_read_start(&sv->st);
}

/* libpq's SSLRequest; PostgreSQL answers with one unencrypted byte. */
static bool send_ssl_request(server_t *sv)
{
    char pkt[8];
    wr_u32(pkt, 8);
    wr_u32(pkt + 4, PROTO_SSL_REQUEST);
    bool ok = stream_write(&sv->st, pkt, sizeof pkt);
    stream_flush(&sv->st);
    return ok;
}

static void server_on_connect(stream_t *s, int status)
{
    server_t *sv = s->owner;
    if (status) {
        connect_failed(sv, uv_strerror(status));
        return;
    }
    /* the context exists for sslmode allow and stricter over TCP; the
     * server stays SV_CONNECTING (connect_timeout running) until TLS is up */
    if (worker_config(sv->w)->backend_tls_ctx) {
        if (!send_ssl_request(sv)) {
            connect_failed(sv, "out of memory");
            return;
        }
        stream_read_start(&sv->st);
        return;
    }
    start_login(sv);
}

static void server_on_tls_ready(stream_t *s)
{
    server_t *sv = s->owner;
    if (sv->state == SV_CONNECTING)
        start_login(sv);
}

/* SV_CONNECTING after an SSLRequest: PostgreSQL's answer. 'S' starts the
 * handshake (server_on_tls_ready sends the startup packet when it is done),
 * 'N' means no TLS. true = rbuf now holds login messages to parse. */
static bool ssl_answer(server_t *sv)
{
    const config_t *cfg = worker_config(sv->w);
    buf_t *rb = &sv->st.rbuf;
    if (sv->st.ssl) {
        /* stream.c delivers nothing decrypted before on_tls_ready */
        tls_failed(sv, "unexpected data during the TLS handshake");
        return false;
    }
    if (!buf_avail(rb))
        return false;
    char answer = buf_head(rb)[0];
    if (answer == 'E') {
        /* like libpq: PostgreSQL could not even start a backend (e.g. fork
         * failed) and sent an ErrorResponse instead; login_message reports it */
        server_set_state(sv, SV_LOGIN);
        return true;
    }
    buf_consume(rb, 1);
    if (answer == 'N') {
        if (cfg->backend_sslmode >= BACKEND_SSL_REQUIRE) {
            char why[160];
            snprintf(why, sizeof why,
                     "the server does not support SSL, but the proxy's backend sslmode=%s "
                     "requires it",
                     cfg->backend_sslmode == BACKEND_SSL_REQUIRE     ? "require"
                     : cfg->backend_sslmode == BACKEND_SSL_VERIFY_CA ? "verify-ca"
                                                                     : "verify-full");
            tls_failed(sv, why);
            return false;
        }
        start_login(sv); /* allow/prefer: on in plaintext */
        return sv->state == SV_LOGIN;
    }
    if (answer != 'S') {
        char why[120];
        snprintf(why, sizeof why, "invalid answer 0x%02x to the SSL request (is it PostgreSQL?)",
                 (unsigned char)answer);
        tls_failed(sv, why);
        return false;
    }
    /* plaintext after 'S' would be taken as coming from inside the TLS
     * session (CVE-2021-23222): refuse it, as libpq does */
    if (buf_avail(rb)) {
        tls_failed(sv, "the server sent unencrypted data after its SSL answer");
        return false;
    }
    if (!stream_tls_connect(&sv->st, cfg->backend_tls_ctx, cfg->backend_sni, server_on_tls_ready))
        tls_failed(sv, sv->st.tls_error[0] ? sv->st.tls_error : "cannot start TLS (out of memory)");
    return false;
}

static void set_param(server_t *sv, const char *name, const char *value)
{
    for (int i = 0; i < sv->n_params; i++)
        if (strcmp(sv->params[i].name, name) == 0) {
            char *v = strdup(value);
            if (v) {
                free(sv->params[i].value);
                sv->params[i].value = v;
            }
            return;
        }
    server_param_t *grown = realloc(sv->params, (size_t)(sv->n_params + 1) * sizeof *grown);
    if (!grown)
        return;
    sv->params = grown;
    server_param_t *p = &sv->params[sv->n_params];
    p->name = strdup(name);
    p->value = strdup(value);
    p->login_value = NULL;
    if (!p->name || !p->value) {
        free(p->name);
        free(p->value);
        return;
    }
    sv->n_params++;
}

/* The login is done: what the server reports now is its login state. */
static void snapshot_login_params(server_t *sv)
{
    for (int i = 0; i < sv->n_params; i++)
        if (!sv->params[i].login_value)
            sv->params[i].login_value = strdup(sv->params[i].value); /* NULL: unknown */
}

/* ParameterStatus body: name\0value\0 */
static void note_param(server_t *sv, const char *body, size_t len)
{
    const char *nul = memchr(body, 0, len);
    if (!nul || !memchr(nul + 1, 0, len - (size_t)(nul + 1 - body)))
        return;
    set_param(sv, body, nul + 1);
}

static const server_param_t *find_param(const server_t *sv, const char *name)
{
    for (int i = 0; i < sv->n_params; i++)
        if (strcasecmp(sv->params[i].name, name) == 0)
            return &sv->params[i];
    return NULL;
}

const char *server_param(const server_t *sv, const char *name)
{
    const server_param_t *p = find_param(sv, name);
    return p ? p->value : NULL;
}

const char *server_param_login(const server_t *sv, const char *name)
{
    const server_param_t *p = find_param(sv, name);
    return p ? p->login_value : NULL;
}

bool server_params_replay(const server_t *sv, buf_t *out)
{
    for (int i = 0; i < sv->n_params; i++)
        if (!proto_param_status(out, sv->params[i].name, sv->params[i].value))
            return false;
    return true;
}

static const char *login_password(server_t *sv)
{
    const config_t *cfg = worker_config(sv->w);
    if (cfg->server_password)
        return cfg->server_password;
    if (cfg->server_user || !cfg->userlist)
        return NULL;
    const char *secret = userlist_lookup(cfg->userlist, sv->pool->user);
    return secret && auth_secret_kind(secret) == SECRET_PLAIN ? secret : NULL;
}

static bool send_password_msg(server_t *sv, const void *data, size_t len)
{
    buf_t b = {0};
    size_t start;
    bool ok = buf_msg_begin(&b, 'p', &start) && buf_append(&b, data, len);
    if (ok) {
        buf_msg_end(&b, start);
        ok = stream_write(&sv->st, b.data, b.len);
    }
    buf_free(&b);
    stream_flush(&sv->st);
    return ok;
}

/* Pooled login: answer an authentication request ourselves. NULL = fine. */
static const char *pooled_auth(server_t *sv, uint32_t code, const char *data, size_t len)
{
    const config_t *cfg = worker_config(sv->w);
    const char *user = cfg->server_user ? cfg->server_user : sv->pool->user;
    const char *password = login_password(sv);
    char out[512], err[AUTH_ERR_LEN];
    static char errbuf[AUTH_ERR_LEN + 64];
    switch (code) {
    case AUTH_REQ_OK:
        return NULL;
    case AUTH_REQ_PASSWORD:
        if (!password)
            return "PostgreSQL asks for a password: set server_password (or a plaintext "
                   "password in auth_file)";
        return send_password_msg(sv, password, strlen(password) + 1) ? NULL : "out of memory";
    case AUTH_REQ_MD5:
        if (!password)
            return "PostgreSQL asks for an md5 password: set server_password";
        if (len < 4)
            return "malformed md5 request from PostgreSQL";
        md5_salted_response(user, password, (const uint8_t *)data, out);
        return send_password_msg(sv, out, strlen(out) + 1) ? NULL : "out of memory";
    case AUTH_REQ_SASL: {
        if (!password)
            return "PostgreSQL asks for SCRAM: set server_password";
        bool found = false;
        for (size_t p = 0; p < len && data[p];) {
            const char *mech = data + p;
            size_t ml = strnlen(mech, len - p);
            if (ml == 13 && memcmp(mech, "SCRAM-SHA-256", 13) == 0)
                found = true;
            p += ml + 1;
        }
        if (!found)
            return "PostgreSQL offers no SASL mechanism the proxy supports";
        sv->scram = scram_client_new(password);
        if (!sv->scram || !scram_client_first(sv->scram, out, sizeof out, err))
            return "SCRAM setup failed";
        buf_t b = {0};
        size_t start;
        size_t olen = strlen(out);
        bool ok = buf_msg_begin(&b, 'p', &start) && buf_put_str(&b, "SCRAM-SHA-256") &&
                  buf_put_i32(&b, (int32_t)olen) && buf_append(&b, out, olen);
        if (ok) {
            buf_msg_end(&b, start);
            ok = stream_write(&sv->st, b.data, b.len);
        }
        buf_free(&b);
        stream_flush(&sv->st);
        return ok ? NULL : "out of memory";
    }
    case AUTH_REQ_SASL_CONTINUE:
        if (!sv->scram || !scram_client_final(sv->scram, data, len, out, sizeof out, err)) {
            snprintf(errbuf, sizeof errbuf, "SCRAM exchange failed: %s", err);
            return errbuf;
        }
        return send_password_msg(sv, out, strlen(out)) ? NULL : "out of memory";
    case AUTH_REQ_SASL_FINAL:
        if (!sv->scram || !scram_client_verify(sv->scram, data, len, err))
            return "PostgreSQL's SCRAM signature is wrong: the server does not know the password";
        scram_client_free(sv->scram);
        sv->scram = NULL;
        return NULL;
    default:
        return "PostgreSQL asks for an authentication method the proxy cannot answer (use "
               "scram-sha-256, md5 or password for the proxy's server_user)";
    }
}

/* Passthrough: drop SCRAM-SHA-256-PLUS from a SASL mechanism list, since
 * channel binding cannot cross a proxy that terminates TLS. */
static bool relay_sasl_request(client_t *c, const char *body, size_t len)
{
    buf_t b = {0};
    size_t start;
    bool ok = buf_msg_begin(&b, 'R', &start) && buf_put_i32(&b, AUTH_REQ_SASL);
    for (size_t p = 4; ok && p < len && body[p];) {
        const char *mech = body + p;
        size_t ml = strnlen(mech, len - p);
        if (p + ml >= len)
            break;
        if (strcmp(mech, "SCRAM-SHA-256-PLUS") != 0)
            ok = buf_put_str(&b, mech);
        p += ml + 1;
    }
    ok = ok && buf_put_u8(&b, 0);
    if (ok) {
        buf_msg_end(&b, start);
        ok = stream_write(&c->st, b.data, b.len);
    }
    buf_free(&b);
    return ok;
}

static void login_error(server_t *sv, const char *message)
{
    char msg[300];
    snprintf(msg, sizeof msg, "login to the PostgreSQL server failed: %s", message);
    login_failed(sv, msg);
}

/* One backend message during SV_LOGIN. */
static void login_message(server_t *sv, char type, const char *msg, size_t total)
{
    const char *body = msg + 5;
    size_t len = total - 5;
    client_t *c = sv->pool ? NULL : sv->client;
    bool ok = true;
    switch (type) {
    case 'R': {
        if (len < 4) {
            login_error(sv, "malformed authentication request from PostgreSQL");
            return;
        }
        uint32_t code = rd_u32(body);
        if (c) {
            ok = code == AUTH_REQ_SASL ? relay_sasl_request(c, body, len)
                                       : stream_write(&c->st, msg, total);
        } else {
            const char *err = pooled_auth(sv, code, body + 4, len - 4);
            if (err) {
                login_error(sv, err);
                return;
            }
        }
        break;
    }
    case 'S':
        note_param(sv, body, len);
        if (c)
            ok = stream_write(&c->st, msg, total);
        break;
    case 'K':
        if (len >= 8) {
            sv->be_pid = rd_u32(body);
            sv->be_key = rd_u32(body + 4);
        }
        if (c) {
            buf_t b = {0};
            ok = proto_backend_key(&b, c->cancel_pid, c->cancel_key) &&
                 stream_write(&c->st, b.data, b.len);
            buf_free(&b);
        }
        break;
    case 'N':
        if (c)
            ok = stream_write(&c->st, msg, total);
        break;
    case 'E': {
        const char *m = proto_error_field(body, len, 'M');
        if (c) {
            /* the client sees PostgreSQL's own error, then both sides close */
            if (stream_write(&c->st, msg, total))
                stream_flush(&c->st);
            sv->client = NULL;
            c->server = NULL;
            client_close_after_flush(c, "login refused by PostgreSQL");
            server_close(sv, "login refused");
            return;
        }
        login_error(sv, m ? m : "PostgreSQL refused the login");
        return;
    }
    case 'Z':
        uv_timer_stop(&sv->timer);
        sv->logged_in = true;
        snapshot_login_params(sv);
        sv->tx_status = len >= 1 ? body[0] : 'I';
        if (c) {
            /* the client writes ReadyForQuery itself (client_login_finish),
             * after checking the branch it asked for */
            server_set_state(sv, SV_ACTIVE);
            client_server_ready(c);
        } else {
            server_set_state(sv, SV_IDLE);
            pool_server_available(sv);
        }
        return;
    case 'v':
        break;
    default:
        login_error(sv, "unexpected message from PostgreSQL during login");
        return;
    }
    if (!ok) {
        login_error(sv, "out of memory");
        return;
    }
    if (c)
        stream_flush(&c->st);
}

/* ---- internal statements ---- */

bool server_internal(server_t *sv, const char *sql, internal_cb_t cb, void *arg)
{
    internal_t *in = calloc(1, sizeof *in);
    if (!in)
        return false;
    in->sql = strdup(sql);
    if (!in->sql) {
        free(in);
        return false;
    }
    in->cb = cb;
    in->arg = arg;
    if (sv->iq_tail)
        sv->iq_tail->next = in;
    else
        sv->iq_head = in;
    sv->iq_tail = in;
    server_internal_kick(sv);
    return true;
}

bool server_internal_busy(const server_t *sv)
{
    return sv->iq_head != NULL;
}

void server_internal_kick(server_t *sv)
{
    if (!sv->iq_head || sv->iq_sent || sv->inflight > 0 || sv->state == SV_CLOSING ||
        sv->state == SV_CONNECTING || sv->state == SV_LOGIN)
        return;
    buf_t b = {0};
    bool ok = proto_query(&b, sv->iq_head->sql) && stream_write(&sv->st, b.data, b.len);
    buf_free(&b);
    if (!ok) {
        server_close(sv, "out of memory");
        return;
    }
    sv->iq_sent = true;
    stream_read_start(&sv->st);
    stream_flush(&sv->st);
}

static bool internal_add_cell(internal_t *in, const char *p, long len)
{
    if (in->n_offsets == in->cap_offsets) {
        size_t ncap = in->cap_offsets ? in->cap_offsets * 2 : 16;
        long *grown = realloc(in->offsets, ncap * sizeof *grown);
        if (!grown)
            return false;
        in->offsets = grown;
        in->cap_offsets = ncap;
    }
    if (len < 0) {
        in->offsets[in->n_offsets++] = -1;
        return true;
    }
    in->offsets[in->n_offsets++] = (long)in->cells.len;
    return buf_append(&in->cells, p, (size_t)len) && buf_append(&in->cells, "", 1);
}

static void internal_finish(server_t *sv)
{
    internal_t *in = sv->iq_head;
    sv->iq_head = in->next;
    if (!sv->iq_head)
        sv->iq_tail = NULL;
    sv->iq_sent = false;
    const char **values = NULL;
    if (in->n_offsets) {
        values = calloc(in->n_offsets, sizeof *values);
        if (!values) {
            in->failed = true;
            in->n_offsets = 0;
        }
    }
    for (size_t i = 0; i < in->n_offsets; i++)
        values[i] = in->offsets[i] < 0 ? NULL : in->cells.data + in->offsets[i];
    internal_result_t res = {
        .ok = !in->failed,
        .sqlstate = in->failed ? in->sqlstate : NULL,
        .message = in->failed ? (in->message ? in->message : "out of memory") : NULL,
        .command_tag = in->tag,
        .ncols = in->ncols,
        .nrows = in->ncols ? (int)(in->n_offsets / (size_t)in->ncols) : 0,
        .values = values,
    };
    if (in->failed)
        log_debug("internal statement failed: %s", res.message);
    if (in->cb)
        in->cb(sv, in->arg, &res);
    free(values);
    internal_free(in);
    if (sv->state == SV_CLOSING)
        return;
    if (sv->iq_head)
        server_internal_kick(sv);
    else if (sv->client)
        client_resume(sv->client);
}

/* One backend message while an internal statement runs. false = sv closed. */
static bool internal_message(server_t *sv, char type, const char *msg, size_t total)
{
    internal_t *in = sv->iq_head;
    const char *body = msg + 5;
    size_t len = total - 5;
    client_t *c = sv->client;
    switch (type) {
    case 'T':
        in->ncols = len >= 2 ? rd_u16(body) : 0;
        break;
    case 'D': {
        if (len < 2)
            break;
        int n = rd_u16(body);
        size_t p = 2;
        for (int i = 0; i < n; i++) {
            if (p + 4 > len)
                break;
            long cl = (long)(int32_t)rd_u32(body + p);
            p += 4;
            if (cl > 0 && p + (size_t)cl > len)
                break;
            if (!internal_add_cell(in, body + p, cl))
                in->failed = true;
            if (cl > 0)
                p += (size_t)cl;
        }
        break;
    }
    case 'C':
        free(in->tag);
        in->tag = strndup(body, len);
        wire_hooks()->command_done(sv, body, len);
        break;
    case 'E': {
        in->failed = true;
        const char *st = proto_error_field(body, len, 'C');
        const char *m = proto_error_field(body, len, 'M');
        snprintf(in->sqlstate, sizeof in->sqlstate, "%s", st ? st : "XX000");
        free(in->message);
        in->message = strdup(m ? m : "unknown error");
        break;
    }
    case 'S':
        note_param(sv, body, len);
        if (c && c->state == CL_ACTIVE && !stream_write(&c->st, msg, total))
            client_fail(c, "53200", "out of memory", NULL);
        break;
    case 'A':
        if (wire_hooks()->notification(sv, msg, total))
            break;
        if (c && c->state == CL_ACTIVE && !stream_write(&c->st, msg, total))
            client_fail(c, "53200", "out of memory", NULL);
        break;
    case 'G':
    case 'H':
    case 'W':
        /* internal statements never COPY: the connection is not reusable */
        server_close(sv, "internal statement started COPY");
        return false;
    case 'Z':
        sv->tx_status = len >= 1 ? body[0] : 'I';
        internal_finish(sv);
        return sv->state != SV_CLOSING;
    default: /* N, I, 1, 2, ... */
        break;
    }
    return true;
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

static void server_on_read(stream_t *s)
{
    server_t *sv = s->owner;
    buf_t *rb = &s->rbuf;
    const char *span = NULL;
    size_t span_len = 0;
    bool ready = false;
    if (sv->state == SV_CONNECTING && !ssl_answer(sv))
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
            login_message(sv, type, p, total);
            buf_consume(rb, total);
            continue;
        }
        if (sv->iq_sent) {
            forward_span(sv, &span, &span_len);
            bool alive = internal_message(sv, type, p, total);
            if (!alive)
                return;
            buf_consume(rb, total);
            continue;
        }
        client_t *c = sv->client;
        if (!c) {
            /* idle in the pool: only asynchronous messages may arrive */
            if (type == 'S')
                note_param(sv, p + 5, total - 5);
            else if (type == 'A')
                wire_hooks()->notification(sv, p, total);
            else if (type == 'E') {
                server_close(sv, "error while idle");
                return;
            }
            buf_consume(rb, total);
            continue;
        }
        if (type == 'A' && wire_hooks()->notification(sv, p, total)) {
            forward_span(sv, &span, &span_len);
            buf_consume(rb, total);
            continue;
        }
        if (c->hook_state) {
            /* session state: its own replies dropped, tags and errors fixed */
            buf_t fixed = {0};
            hook_reply_t act = wire_hooks()->reply(c, p, total, &fixed);
            if (act != REPLY_FORWARD) {
                forward_span(sv, &span, &span_len);
                if (act == REPLY_REPLACE && !stream_write(&c->st, fixed.data, fixed.len))
                    client_fail(c, "53200", "out of memory", NULL);
                buf_free(&fixed);
                buf_consume(rb, total);
                continue;
            }
            buf_free(&fixed);
        }
        switch (type) {
        case 'Z':
            sv->tx_status = len >= 5 ? p[5] : 'I';
            c->tx_status = sv->tx_status;
            if (c->track)
                replay_ready(c, sv->tx_status);
            if (sv->inflight > 0)
                sv->inflight--;
            if (c->inflight > 0)
                c->inflight--;
            c->in_copy_in = false;
            ready = true;
            break;
        case 'S':
            note_param(sv, p + 5, total - 5);
            break;
        case 'C':
            /* the tag must be a string before session.c reads it */
            if (c->track && memchr(p + 5, 0, total - 5))
                replay_command_done(c, p + 5);
            wire_hooks()->command_done(sv, p + 5, total - 5);
            break;
        case 'E':
            if (c->track)
                replay_error(c);
            break;
        case 'G':
            c->in_copy_in = true;
            break;
        default:
            break;
        }
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
