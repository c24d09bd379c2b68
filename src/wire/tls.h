/*
 * tls — OpenSSL contexts. The per-connection TLS state lives in stream.c,
 * which drives OpenSSL through memory BIOs fed by libuv reads (the h2o way),
 * so plain and TLS connections look the same to the protocol code.
 */
#ifndef EPOCH_WIRE_TLS_H
#define EPOCH_WIRE_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

/* Server context for client connections: TLS 1.2+, certificate chain and key
 * from PEM files. NULL with a reason in err. */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errcap);

/* What the proxy checks when it connects to PostgreSQL over TLS. */
typedef struct tls_client_opts {
    /* PEM file of trusted CAs, or "system" for OpenSSL's default store; NULL =
     * no verification at all (libpq's sslmode=require without a root cert) */
    const char *root_cert;
    /* host name or IP address the certificate must name (verify-full); NULL =
     * any name (verify-ca). Ignored without root_cert. */
    const char *verify_name;
    /* optional client certificate chain and its key (PEM); both or neither */
    const char *cert_file;
    const char *key_file;
} tls_client_opts_t;

/* Client context for connections to PostgreSQL: TLS 1.2+. The verification
 * settings live in the context, so every SSL made from it checks the same
 * name. NULL with a reason in err. */
SSL_CTX *tls_client_ctx_new(const tls_client_opts_t *opts, char *err, size_t errcap);

/* Why a handshake (or a later SSL_read) failed, as one line for an error
 * message: the certificate verification result when that is the reason,
 * otherwise OpenSSL's reason text. Clears the thread's error queue. */
const char *tls_failure_reason(SSL *ssl, char *buf, size_t cap);

/* Last OpenSSL error as text (thread-local queue), for logs. */
const char *tls_last_error(char *buf, size_t cap);

#endif
