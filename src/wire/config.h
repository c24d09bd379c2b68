/*
 * config — the proxy's settings: conf/epoch.conf (ini, parsed with libinih)
 * overlaid with command-line `--key value` overrides. A loaded config is an
 * immutable snapshot; SIGHUP builds a new one and each worker switches to it
 * between events. Snapshots are freed at exit (config_free_all), never while
 * a worker may still hold one.
 */
#ifndef EPOCH_WIRE_CONFIG_H
#define EPOCH_WIRE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "wire/auth.h"

typedef enum { AUTH_PASSTHROUGH, AUTH_USERLIST } auth_mode_t;
typedef enum { POOL_SESSION, POOL_TRANSACTION } pool_mode_t;
typedef enum { AUTH_TYPE_SCRAM, AUTH_TYPE_MD5 } auth_type_t;
typedef enum { IO_URING, IO_LIBUV } io_mode_t;
/* libpq's sslmode for the connection to PostgreSQL, weakest first */
typedef enum {
    BACKEND_SSL_DISABLE,
    BACKEND_SSL_ALLOW, /* = prefer here (libpq would try plaintext first) */
    BACKEND_SSL_PREFER,
    BACKEND_SSL_REQUIRE,
    BACKEND_SSL_VERIFY_CA,
    BACKEND_SSL_VERIFY_FULL,
} backend_ssl_t;

typedef struct config {
    /* [restart] */
    char *listen_host;
    int listen_port;
    char *backend;      /* conninfo as given */
    char *backend_host; /* host or unix socket directory */
    int backend_port;
    backend_ssl_t backend_sslmode;
    char *backend_sni;        /* host name sent as TLS SNI; NULL for addresses and sockets */
    SSL_CTX *backend_tls_ctx; /* set when the proxy sends PostgreSQL an SSLRequest (sslmode
                               * allow and stricter, TCP only); carries the verification */
    int workers;
    io_mode_t io; /* socket reads and writes: io_uring where available, or libuv */

    /* reloadable */
    int log_level;
    auth_mode_t auth_mode;
    char *auth_file;
    auth_type_t auth_type;
    char *server_user;
    char *server_password;
    pool_mode_t pool_mode;
    int pool_size;
    double server_idle_timeout;
    char *tls_cert_file;
    char *tls_key_file;
    int max_clients;
    size_t max_message_size;
    double connect_timeout;
    double login_timeout;
    double idle_timeout;
    double idle_in_transaction_timeout;
    double query_wait_timeout;
    double shutdown_timeout;
    double catalog_max_age; /* branch sessions without DDL notifications; 0 = never */

    /* derived */
    userlist_t *userlist; /* userlist mode */
    SSL_CTX *tls_ctx;     /* NULL when TLS towards clients is off */
    char *path;           /* config file, for reload */
} config_t;

/* Build a snapshot from the file (may be NULL) and argv overrides
 * (argv[1..], `--key value` pairs; also `--config FILE`). On error returns
 * NULL with a message in err. */
config_t *config_load(int argc, char **argv, char *err, size_t errcap);

/* Re-read for SIGHUP: same argv overrides, file re-read. Restart-only keys
 * keep their old values (a warning is logged when they changed). */
config_t *config_reload(const config_t *old, char *err, size_t errcap);

/* Free every snapshot ever created (at exit, after the workers stopped). */
void config_free_all(void);

#endif
