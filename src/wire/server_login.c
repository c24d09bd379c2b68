/*
 * server_login — logging in to PostgreSQL: the SSL answer and TLS, the
 * startup packet, and the authentication exchange, relayed to the client in
 * passthrough mode or answered with the configured credentials when pooled
 * (pooled_auth). ReadyForQuery ends the login.
 */
#include "wire/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/text.h"
#include "common/log.h"
#include "wire/auth.h"

static bool send_startup(server_t *sv)
{
    const config_t *cfg = worker_config(sv->w);
    buf_t b = {0};
    bool ok = buf_put_i32(&b, 0) && buf_put_i32(&b, (int32_t)PROTO_V3);
    if (!sv->pool) {
        const startup_t *st = &sv->client->startup;
        size_t pos = 0;
        const char *name, *value;
        /* the admin console logs in to "postgres" to learn is_superuser */
        bool console = sv->client->console;
        while (ok && startup_next(st, &pos, &name, &value))
            if (!HAS_PREFIX(name, "_pq_."))
                ok = buf_put_str(&b, name) &&
                     buf_put_str(&b, console && !strcmp(name, "database") ? "postgres" : value);
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
        server_connect_failed(sv, "out of memory");
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

void server_on_connect(stream_t *s, int status)
{
    server_t *sv = s->owner;
    if (status) {
        server_connect_failed(sv, uv_strerror(status));
        return;
    }
    /* the context exists for sslmode allow and stricter over TCP; the
     * server stays SV_CONNECTING (connect_timeout running) until TLS is up */
    if (worker_config(sv->w)->backend_tls_ctx) {
        if (!send_ssl_request(sv)) {
            server_connect_failed(sv, "out of memory");
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
bool server_ssl_answer(server_t *sv)
{
    const config_t *cfg = worker_config(sv->w);
    buf_t *rb = &sv->st.rbuf;
    if (sv->st.ssl) {
        /* stream.c delivers nothing decrypted before on_tls_ready */
        server_tls_failed(sv, "unexpected data during the TLS handshake");
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
            server_tls_failed(sv, why);
            return false;
        }
        start_login(sv); /* allow/prefer: on in plaintext */
        return sv->state == SV_LOGIN;
    }
    if (answer != 'S') {
        char why[120];
        snprintf(why, sizeof why, "invalid answer 0x%02x to the SSL request (is it PostgreSQL?)",
                 (unsigned char)answer);
        server_tls_failed(sv, why);
        return false;
    }
    /* plaintext after 'S' would be taken as coming from inside the TLS
     * session (CVE-2021-23222): refuse it, as libpq does */
    if (buf_avail(rb)) {
        server_tls_failed(sv, "the server sent unencrypted data after its SSL answer");
        return false;
    }
    if (!stream_tls_connect(&sv->st, cfg->backend_tls_ctx, cfg->backend_sni, server_on_tls_ready))
        server_tls_failed(sv, sv->st.tls_error[0] ? sv->st.tls_error
                                                  : "cannot start TLS (out of memory)");
    return false;
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
            if (ml == LIT_LEN("SCRAM-SHA-256") && HAS_PREFIX(mech, "SCRAM-SHA-256"))
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
    server_login_failed(sv, msg);
}

/* One backend message during SV_LOGIN. */
void server_login_message(server_t *sv, char type, const char *msg, size_t total)
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
        server_note_param(sv, body, len);
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
        server_snapshot_login_params(sv);
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
