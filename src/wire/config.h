/*
 * config — the proxy's settings: conf/epoch.conf (ini, parsed with libinih)
 * overlaid with command-line `--key value` overrides. A loaded config is an
 * immutable snapshot; SIGHUP builds a new one and each worker switches to it
 * between events.
 *
 * Ownership: a snapshot is reference-counted (atomically: the main thread
 * builds snapshots, workers drop them). config_load and config_reload return
 * one reference, owned by the caller; config_acquire adds one and
 * config_release drops one, and the last release frees the snapshot (its
 * userlist, and its references to the SSL_CTXs). The main thread holds one
 * on the current snapshot, each worker one on the snapshot it runs with
 * (worker_config). A pointer read from a snapshot through worker_config is
 * valid until the worker's callback returns: whatever must outlive it is
 * copied (a login copies its userlist secret, SCRAM its password) or holds
 * its own reference (config_acquire; OpenSSL's SSL holds one on its
 * SSL_CTX).
 */
#ifndef EPOCH_WIRE_CONFIG_H
#define EPOCH_WIRE_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "wire/auth.h"

/* branch_plans: sessions that start on a branch get plan_cache_mode =
 * force_generic_plan (GENERIC), or PostgreSQL's own choice (POSTGRES). */
enum { BRANCH_PLANS_GENERIC, BRANCH_PLANS_POSTGRES };

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
    io_mode_t io;    /* socket reads and writes: io_uring where available, or libuv */
    char *http_host; /* http_listen (--http): /health, /ready, /metrics; NULL = off */
    int http_port;
    char *redis_url;      /* redis ([redis] url, --redis); NULL = none: one proxy alone */
    char *redis_host;     /* resolved to a numeric address */
    int redis_port;
    char *redis_user;     /* NULL: AUTH with the password only */
    char *redis_password; /* NULL: no AUTH */
    int redis_db;
    char *redis_tls_ca;     /* rediss://: PEM file of trusted CAs, or "system" (default) */
    SSL_CTX *redis_tls_ctx; /* rediss://: the client context (verifies the host's name) */
    char *redis_sni;        /* rediss:// to a host name: sent as SNI */
    char *advertise_host; /* where the other proxies reach this one (cancel requests) */
    int advertise_port;

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
    int branch_plans;       /* BRANCH_PLANS_*: plan_cache_mode of sessions that start on a branch */
    char *admin_users;      /* who may use the admin console besides superusers (names,
                               separated by commas or blanks) */
    double sweep_interval;  /* seconds between sweeps (sweeper.c); 0 = none */
    char *sweep_databases;  /* the databases swept (names, commas or blanks) */

    /* derived */
    userlist_t *userlist; /* userlist mode */
    SSL_CTX *tls_ctx;     /* NULL when TLS towards clients is off */
    char *path;           /* config file, for reload */

    atomic_int refs; /* config_acquire / config_release */
} config_t;

/* Build a snapshot from the file (may be NULL) and argv overrides
 * (argv[1..], `--key value` pairs; also `--config FILE`), with one
 * reference for the caller. On error returns NULL with a message in err. */
config_t *config_load(int argc, char **argv, char *err, size_t errcap);

/* Re-read for SIGHUP: same argv overrides, file re-read, with one reference
 * for the caller (old is left as it is). Restart-only keys keep their old
 * values (a warning is logged when they changed). */
config_t *config_reload(const config_t *old, char *err, size_t errcap);

/* Take one more reference to cfg (not NULL); returns cfg. Any thread. */
const config_t *config_acquire(const config_t *cfg);

/* Drop one reference; the last one frees the snapshot. NULL is ignored.
 * Any thread. */
void config_release(const config_t *cfg);

/* Item n (from 0) of a list of names separated by commas or blanks
 * (admin_users, sweep_databases) into out; false past the end. */
bool config_list_item(const char *list, int n, char *out, size_t cap);

/* Is user listed in admin_users? */
bool config_is_admin_user(const config_t *cfg, const char *user);

/* Every key with its current value as text (passwords masked) and whether
 * SIGHUP changes it, in the order of the key table (SHOW CONFIG). */
typedef void (*config_row_cb)(void *arg, const char *key, const char *value, bool reloadable);
void config_show(const config_t *cfg, config_row_cb row, void *arg);

/* References held on cfg now (tests and assertions). */
int config_refs(const config_t *cfg);

#endif
