/* tls — see tls.h. */
#include "wire/tls.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

const char *tls_last_error(char *buf, size_t cap)
{
    unsigned long e = ERR_get_error();
    if (!e) {
        snprintf(buf, cap, "unknown TLS error");
        return buf;
    }
    ERR_error_string_n(e, buf, cap);
    ERR_clear_error();
    return buf;
}

const char *tls_failure_reason(SSL *ssl, char *buf, size_t cap)
{
    /* the last entry is the outermost reason ("certificate verify failed"),
     * the ones before it are details of how OpenSSL got there */
    unsigned long e = ERR_peek_last_error();
    if (e && ERR_GET_LIB(e) == ERR_LIB_SSL &&
        ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        /* only now is the verify result meaningful: with SSL_VERIFY_NONE
         * OpenSSL records a result too, but ignores it */
        long vr = SSL_get_verify_result(ssl);
        snprintf(buf, cap, "certificate verify failed: %s", X509_verify_cert_error_string(vr));
    } else if (e) {
        const char *r = ERR_reason_error_string(e);
        if (r)
            snprintf(buf, cap, "%s", r);
        else
            ERR_error_string_n(e, buf, cap);
    } else {
        snprintf(buf, cap, "the TLS handshake ended unexpectedly");
    }
    ERR_clear_error();
    return buf;
}

SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errcap)
{
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errcap, "TLS: %s", tls_last_error(why, sizeof why));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        snprintf(err, errcap, "tls_cert_file %s: %s", cert_file, tls_last_error(why, sizeof why));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, errcap, "tls_key_file %s: %s", key_file, tls_last_error(why, sizeof why));
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errcap, "tls_key_file does not match tls_cert_file");
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* verify-full: the name goes into the context's verify parameters, which
 * every SSL_new copies, so OpenSSL checks it during the handshake itself. */
static bool set_verify_name(SSL_CTX *ctx, const char *name)
{
    X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(ctx);
    unsigned char addr[16];
    /* an IP address must match an iPAddress entry of subjectAltName;
     * X509_VERIFY_PARAM_set1_host would compare it as a DNS name */
    if (inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(vp, name) == 1;
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return X509_VERIFY_PARAM_set1_host(vp, name, 0) == 1;
}

SSL_CTX *tls_client_ctx_new(const tls_client_opts_t *o, char *err, size_t errcap)
{
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, errcap, "TLS: %s", tls_last_error(why, sizeof why));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* PostgreSQL refuses renegotiation itself; say so up front */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (o->root_cert) {
        if (strcmp(o->root_cert, "system") == 0) {
            if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
                snprintf(err, errcap, "sslrootcert=system: %s", tls_last_error(why, sizeof why));
                goto fail;
            }
        } else if (SSL_CTX_load_verify_locations(ctx, o->root_cert, NULL) != 1) {
            snprintf(err, errcap, "sslrootcert %s: %s", o->root_cert,
                     tls_last_error(why, sizeof why));
            goto fail;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (o->verify_name && !set_verify_name(ctx, o->verify_name)) {
            snprintf(err, errcap, "cannot verify the host name \"%s\": %s", o->verify_name,
                     tls_last_error(why, sizeof why));
            goto fail;
        }
    } else {
        /* libpq's sslmode=require: encryption without authentication */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    if (o->cert_file) {
        if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1) {
            snprintf(err, errcap, "sslcert %s: %s", o->cert_file, tls_last_error(why, sizeof why));
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1) {
            snprintf(err, errcap, "sslkey %s: %s", o->key_file, tls_last_error(why, sizeof why));
            goto fail;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            snprintf(err, errcap, "sslkey does not match sslcert");
            goto fail;
        }
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}
