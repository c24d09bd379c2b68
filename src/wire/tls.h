/*
 * tls — OpenSSL contexts. The per-connection TLS state lives in stream.c,
 * which drives OpenSSL through memory BIOs fed by libuv reads (the h2o way),
 * so plain and TLS connections look the same to the protocol code.
 */
#ifndef EPOCH_WIRE_TLS_H
#define EPOCH_WIRE_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* Server context for client connections: TLS 1.2+, certificate chain and key
 * from PEM files. NULL with a reason in err. */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errcap);

/* Last OpenSSL error as text (thread-local queue), for logs. */
const char *tls_last_error(char *buf, size_t cap);

#endif
