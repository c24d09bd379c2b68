/*
 * client_startup — a client's first packets: SSLRequest/GSSENCRequest, a
 * CancelRequest (forwarded), the StartupMessage and protocol negotiation,
 * and, with a userlist, the proxy's own SCRAM-SHA-256 or md5 exchange.
 *
 * Must never: read a length it has not checked against PROTO_MAX_STARTUP, or
 * let a client past authentication without a verified password.
 */
#include "wire/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "common/log.h"
#include "wire/admin.h"
#include "wire/redis.h"
#include "wire/cancel.h"
#include "wire/hooks.h"

static bool send_negotiate(client_t *c)
{
    buf_t b = {0};
    size_t start;
    bool ok = buf_msg_begin(&b, 'v', &start) && buf_put_i32(&b, 0) &&
              buf_put_i32(&b, c->startup.n_unknown_pq);
    for (int i = 0; ok && i < c->startup.n_unknown_pq; i++)
        ok = buf_put_str(&b, c->startup.unknown_pq[i]);
    if (ok) {
        buf_msg_end(&b, start);
        ok = stream_write(&c->st, b.data, b.len);
    }
    buf_free(&b);
    return ok;
}

static bool start_userlist_auth(client_t *c);

/* The startup packet names the admin console's database (explicitly: a
 * packet without one means the user's own database). */
static bool is_console(const startup_t *st)
{
    size_t pos = 0;
    const char *name, *value;
    while (startup_next(st, &pos, &name, &value))
        if (strcmp(name, "database") == 0)
            return strcmp(value, ADMIN_DATABASE) == 0;
    return false;
}

void client_handle_startup(client_t *c)
{
    const config_t *cfg = worker_config(c->w);
    buf_t *rb = &c->st.rbuf;
    while (c->state == CL_STARTUP && buf_avail(rb) >= 4) {
        uint32_t len = rd_u32(buf_head(rb));
        if (len < 8 || len > PROTO_MAX_STARTUP) {
            client_fail(c, "08P01", "invalid length of startup packet", NULL);
            return;
        }
        if (buf_avail(rb) < len)
            return;
        const char *p = buf_head(rb);
        uint32_t version = rd_u32(p + 4);
        if (version == PROTO_SSL_REQUEST || version == PROTO_GSSENC_REQUEST) {
            if (len != 8) {
                client_fail(c, "08P01", "invalid length of encryption request packet", NULL);
                return;
            }
            buf_consume(rb, len);
            bool tls = version == PROTO_SSL_REQUEST && cfg->tls_ctx && !c->tls_done;
            if (version == PROTO_SSL_REQUEST && c->tls_done) {
                client_fail(c, "08P01", "SSLRequest received twice", NULL);
                return;
            }
            if (!stream_write(&c->st, tls ? "S" : "N", 1)) {
                client_close(c, "out of memory");
                return;
            }
            stream_flush(&c->st);
            if (tls) {
                c->tls_done = true;
                if (!stream_tls_accept(&c->st, cfg->tls_ctx)) {
                    client_close(c, "TLS setup failed");
                    return;
                }
            }
            continue;
        }
        if (version == PROTO_CANCEL_REQUEST) {
            if (len == 16)
                client_forward_cancel(c, rd_u32(p + 8), rd_u32(p + 12));
            else
                client_close(c, "cancel request handled");
            return;
        }
        if (version >> 16 != 3) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "unsupported frontend protocol %u.%u: server supports 3.0 to 3.0",
                     version >> 16, version & 0xffff);
            client_fail(c, "0A000", msg, NULL);
            return;
        }
        char err[200];
        if (!startup_parse(&c->startup, version, p + 8, len - 8, err, sizeof err)) {
            client_fail(c, "08P01", err, NULL);
            return;
        }
        c->console = is_console(&c->startup);
        if (!c->console && !wire_hooks()->startup(c, err, sizeof err)) {
            client_fail(c, "3D000", err, NULL);
            return;
        }
        buf_consume(rb, len);
        /* Like PostgreSQL, a full proxy refuses only now, after answering any
         * SSLRequest/GSSENCRequest (and serving cancel requests): libpq with
         * sslmode=prefer reports an error sent during the SSL exchange as
         * "server sent an error response during SSL exchange" instead. */
        if (!worker_admit_client(c->w)) {
            client_fail(c, "53300", "sorry, too many clients already (max_clients)", NULL);
            return;
        }
        c->counted = true;
        if (((version & 0xffff) != 0 || c->startup.n_unknown_pq > 0) && !send_negotiate(c)) {
            client_close(c, "out of memory");
            return;
        }
        if (!cancel_register(&c->cancel_pid, &c->cancel_key)) {
            client_fail(c, "53200", "out of memory", NULL);
            return;
        }
        redis_cancel_register(c->w, c->cancel_pid, c->cancel_key);
        log_debug("client %llu: user \"%s\" database \"%s\"", (unsigned long long)c->id,
                  c->startup.user, c->startup.database);
        if (cfg->auth_mode == AUTH_PASSTHROUGH) {
            client_set_state(c, CL_LOGIN);
            if (!server_connect(c->w, NULL, c))
                client_fail(c, "08006", "cannot connect to the PostgreSQL server", NULL);
            return;
        }
        if (!start_userlist_auth(c))
            client_close(c, "out of memory");
        return;
    }
}

/* ---- userlist authentication ---- */

static void auth_failed(client_t *c)
{
    char msg[200];
    snprintf(msg, sizeof msg, "password authentication failed for user \"%.64s\"", c->startup.user);
    log_info("client %llu: %s", (unsigned long long)c->id, msg);
    client_fail(c, "28P01", msg, NULL);
}

static bool send_auth(client_t *c, uint32_t code, const void *data, size_t len)
{
    buf_t b = {0};
    bool ok = proto_auth(&b, code, data, len) && stream_write(&c->st, b.data, b.len);
    buf_free(&b);
    stream_flush(&c->st);
    return ok;
}

static bool start_userlist_auth(client_t *c)
{
    const config_t *cfg = worker_config(c->w);
    const char *secret = userlist_lookup(cfg->userlist, c->startup.user);
    scram_secret_t verifier;
    bool known = secret != NULL;
    client_set_state(c, CL_AUTH);
    if (known) {
        c->auth_secret = strdup(secret);
        if (!c->auth_secret)
            return false;
    }
    secret_kind_t kind = known ? auth_secret_kind(secret) : SECRET_SCRAM;
    bool use_md5 = kind == SECRET_MD5 || (kind == SECRET_PLAIN && cfg->auth_type == AUTH_TYPE_MD5);
    if (use_md5) {
        if (RAND_bytes(c->md5_salt, 4) != 1)
            return false;
        return send_auth(c, AUTH_REQ_MD5, c->md5_salt, 4);
    }
    /* An unknown user still gets a full SCRAM exchange against a random
     * verifier, so a client cannot probe which user names exist. */
    bool ok = known && kind == SECRET_SCRAM ? scram_secret_parse(secret, &verifier)
              : known                       ? scram_secret_from_password(secret, &verifier)
                                            : false;
    if (!ok) {
        unsigned char junk[18];
        char pw[40];
        if (RAND_bytes(junk, sizeof junk) != 1)
            return false;
        for (size_t i = 0; i < sizeof junk; i++)
            snprintf(pw + 2 * i, 3, "%02x", junk[i]);
        if (!scram_secret_from_password(pw, &verifier))
            return false;
        free(c->auth_secret);
        c->auth_secret = NULL;
    }
    c->scram = scram_server_new(&verifier);
    if (!c->scram)
        return false;
    static const char mechs[] = "SCRAM-SHA-256\0";
    return send_auth(c, AUTH_REQ_SASL, mechs, sizeof mechs);
}

static void auth_ok(client_t *c)
{
    if (!send_auth(c, AUTH_REQ_OK, NULL, 0)) {
        client_close(c, "out of memory");
        return;
    }
    if (c->scram) {
        scram_server_free(c->scram);
        c->scram = NULL;
    }
    if (c->console) {
        admin_login(c, false);
        return;
    }
    c->pool = pool_get(c->w, c->startup.user, c->startup.database);
    if (!c->pool || !replay_init(c)) {
        client_fail(c, "53200", "out of memory", NULL);
        return;
    }
    client_set_state(c, CL_LOGIN);
    pool_acquire(c);
}

/* One 'p' message during CL_AUTH. */
void client_handle_auth_message(client_t *c, const char *body, size_t len)
{
    char out[512], err[AUTH_ERR_LEN];
    if (!c->scram) { /* md5 */
        if (!memchr(body, 0, len) || !c->auth_secret ||
            !md5_verify(c->startup.user, c->auth_secret, c->md5_salt, body)) {
            auth_failed(c);
            return;
        }
        auth_ok(c);
        return;
    }
    if (c->auth_step == 0) {
        /* SASLInitialResponse: mechanism\0, int32 length, data */
        const char *nul = memchr(body, 0, len);
        if (!nul || strcmp(body, "SCRAM-SHA-256") != 0 || (size_t)(nul - body) + 5 > len) {
            client_fail(c, "28000", "client selected an invalid SASL authentication mechanism",
                        NULL);
            return;
        }
        size_t off = (size_t)(nul - body) + 1;
        uint32_t dlen = rd_u32(body + off);
        off += 4;
        if (dlen == 0xffffffffu || dlen != len - off) {
            client_fail(c, "08P01", "malformed SASLInitialResponse message", NULL);
            return;
        }
        if (!scram_server_first(c->scram, body + off, dlen, out, sizeof out, err)) {
            client_fail(c, "08P01", err, NULL);
            return;
        }
        c->auth_step = 1;
        if (!send_auth(c, AUTH_REQ_SASL_CONTINUE, out, strlen(out)))
            client_close(c, "out of memory");
        return;
    }
    if (!scram_server_final(c->scram, body, len, out, sizeof out, err) || !c->auth_secret) {
        auth_failed(c);
        return;
    }
    if (!send_auth(c, AUTH_REQ_SASL_FINAL, out, strlen(out)))
        client_close(c, "out of memory");
    else
        auth_ok(c);
}
