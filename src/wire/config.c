/*
 * config — see config.h. One table lists every key once: its type, where it
 * lives in config_t, and whether it needs a restart; the ini file and the
 * command line both go through set_key(), so they cannot disagree.
 */
#include "wire/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <ini.h>
#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "wire/tls.h"

typedef enum { K_STR, K_INT, K_SIZE, K_SECONDS, K_ENUM } key_type_t;

typedef struct key_def {
    const char *name;
    key_type_t type;
    size_t offset;
    bool restart;
    const char *const *choices; /* K_ENUM: values in enum order */
} key_def_t;

static const char *const auth_modes[] = {"passthrough", "userlist", NULL};
static const char *const pool_modes[] = {"session", "transaction", NULL};
static const char *const auth_types[] = {"scram-sha-256", "md5", NULL};
static const char *const log_levels[] = {"error", "warning", "info", "debug", NULL};
static const char *const io_modes[] = {"io_uring", "libuv", NULL};
static const char *const branch_plan_modes[] = {"generic", "postgres", NULL};

#define OFF(f) offsetof(config_t, f)
static const key_def_t keys[] = {
    {"listen", K_STR, OFF(listen_host), true, NULL}, /* split into host/port */
    {"backend", K_STR, OFF(backend), true, NULL},
    {"workers", K_INT, OFF(workers), true, NULL},
    {"io", K_ENUM, OFF(io), true, io_modes},
    {"log_level", K_ENUM, OFF(log_level), false, log_levels},
    {"auth_mode", K_ENUM, OFF(auth_mode), false, auth_modes},
    {"auth_file", K_STR, OFF(auth_file), false, NULL},
    {"auth_type", K_ENUM, OFF(auth_type), false, auth_types},
    {"server_user", K_STR, OFF(server_user), false, NULL},
    {"server_password", K_STR, OFF(server_password), false, NULL},
    {"pool_mode", K_ENUM, OFF(pool_mode), false, pool_modes},
    {"pool_size", K_INT, OFF(pool_size), false, NULL},
    {"server_idle_timeout", K_SECONDS, OFF(server_idle_timeout), false, NULL},
    {"tls_cert_file", K_STR, OFF(tls_cert_file), false, NULL},
    {"tls_key_file", K_STR, OFF(tls_key_file), false, NULL},
    {"max_clients", K_INT, OFF(max_clients), false, NULL},
    {"max_message_size", K_SIZE, OFF(max_message_size), false, NULL},
    {"connect_timeout", K_SECONDS, OFF(connect_timeout), false, NULL},
    {"login_timeout", K_SECONDS, OFF(login_timeout), false, NULL},
    {"idle_timeout", K_SECONDS, OFF(idle_timeout), false, NULL},
    {"idle_in_transaction_timeout", K_SECONDS, OFF(idle_in_transaction_timeout), false, NULL},
    {"query_wait_timeout", K_SECONDS, OFF(query_wait_timeout), false, NULL},
    {"shutdown_timeout", K_SECONDS, OFF(shutdown_timeout), false, NULL},
    {"catalog_max_age", K_SECONDS, OFF(catalog_max_age), false, NULL},
    {"branch_plans", K_ENUM, OFF(branch_plans), false, branch_plan_modes},
    {"http_listen", K_STR, OFF(http_host), true, NULL}, /* split into host/port; --http */
    {"admin_users", K_STR, OFF(admin_users), false, NULL},
    {"redis", K_STR, OFF(redis_url), true, NULL}, /* [redis] url; --redis */
    {"redis_tls_ca", K_STR, OFF(redis_tls_ca), true, NULL}, /* [redis] tls_ca */
    {"advertise", K_STR, OFF(advertise_host), true, NULL}, /* split into host/port */
    {"sweep_interval", K_SECONDS, OFF(sweep_interval), false, NULL},
    {"sweep_databases", K_STR, OFF(sweep_databases), false, NULL},
};
#define NKEYS (sizeof keys / sizeof keys[0])

/* Command-line overrides, kept for reloads (argv outlives the process). */
static int saved_argc;
static char **saved_argv;

typedef struct load_ctx {
    config_t *cfg;
    char *err;
    size_t errcap;
    bool failed;
} load_ctx_t;

static const key_def_t *find_key(const char *name)
{
    char norm[64];
    size_t n = strlen(name);
    if (n >= sizeof norm)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        norm[i] = name[i] == '-' ? '_' : name[i];
    if (strcmp(norm, "http") == 0) /* the command line's short name */
        strcpy(norm, "http_listen");
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, norm) == 0)
            return &keys[i];
    return NULL;
}

static bool set_key(config_t *cfg, const key_def_t *k, const char *value, char *err, size_t errcap)
{
    char *field = (char *)cfg + k->offset;
    char *end;
    switch (k->type) {
    case K_STR: {
        char *copy = strdup(value);
        if (!copy) {
            snprintf(err, errcap, "out of memory");
            return false;
        }
        free(*(char **)field);
        *(char **)field = copy;
        return true;
    }
    case K_INT: {
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || *end || end == value || v < 0 || v > 1000000) {
            snprintf(err, errcap, "%s: \"%s\" is not a valid count (0..1000000)", k->name, value);
            return false;
        }
        *(int *)field = (int)v;
        return true;
    }
    case K_SIZE: {
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || *end || end == value || v < 1024 || v > (1ULL << 30)) {
            snprintf(err, errcap, "%s: \"%s\" must be a byte count between 1024 and 1073741824",
                     k->name, value);
            return false;
        }
        *(size_t *)field = (size_t)v;
        return true;
    }
    case K_SECONDS: {
        errno = 0;
        double v = strtod(value, &end);
        if (errno || *end || end == value || !isfinite(v) || v < 0 || v > 86400 * 365) {
            snprintf(err, errcap, "%s: \"%s\" is not a duration in seconds", k->name, value);
            return false;
        }
        *(double *)field = v;
        return true;
    }
    case K_ENUM:
        for (int i = 0; k->choices[i]; i++)
            if (strcasecmp(k->choices[i], value) == 0) {
                *(int *)field = i;
                return true;
            }
        snprintf(err, errcap, "%s: unknown value \"%s\"", k->name, value);
        return false;
    }
    return false;
}

static int on_ini_entry(void *user, const char *section, const char *name, const char *value)
{
    load_ctx_t *ctx = user;
    if (ctx->failed)
        return 0;
    if (section[0] && strcmp(section, "epoch") != 0 && strcmp(section, "redis") != 0) {
        snprintf(ctx->err, ctx->errcap, "unknown section [%s] (use [epoch] or [redis])", section);
        ctx->failed = true;
        return 0;
    }
    /* [redis] url = … and tls_ca = … are the keys redis and redis_tls_ca */
    const key_def_t *k = strcmp(section, "redis") != 0 ? find_key(name)
                         : strcmp(name, "url") == 0    ? find_key("redis")
                         : strcmp(name, "tls_ca") == 0 ? find_key("redis_tls_ca")
                                                       : NULL;
    if (!k) {
        snprintf(ctx->err, ctx->errcap, "unknown setting \"%s\"", name);
        ctx->failed = true;
        return 0;
    }
    /* an empty value in the file means "unset" for strings, "default" otherwise */
    if (!value[0]) {
        if (k->type == K_STR) {
            free(*(char **)((char *)ctx->cfg + k->offset));
            *(char **)((char *)ctx->cfg + k->offset) = NULL;
        }
        return 1;
    }
    if (!set_key(ctx->cfg, k, value, ctx->err, ctx->errcap)) {
        ctx->failed = true;
        return 0;
    }
    return 1;
}

static void config_free(config_t *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < NKEYS; i++)
        if (keys[i].type == K_STR)
            free(*(char **)((char *)cfg + keys[i].offset));
    free(cfg->backend_host);
    free(cfg->backend_sni);
    free(cfg->redis_host);
    free(cfg->redis_user);
    free(cfg->redis_password);
    free(cfg->redis_sni);
    if (cfg->redis_tls_ctx)
        SSL_CTX_free(cfg->redis_tls_ctx);
    if (cfg->backend_tls_ctx)
        SSL_CTX_free(cfg->backend_tls_ctx);
    free(cfg->path);
    if (cfg->userlist)
        userlist_free(cfg->userlist);
    if (cfg->tls_ctx)
        SSL_CTX_free(cfg->tls_ctx);
    free(cfg);
}

static void set_defaults(config_t *cfg)
{
    cfg->listen_port = 6432;
    cfg->workers = 0;
    cfg->log_level = LOG_INFO;
    cfg->auth_mode = AUTH_PASSTHROUGH;
    cfg->auth_type = AUTH_TYPE_SCRAM;
    cfg->pool_mode = POOL_SESSION;
    cfg->pool_size = 20;
    cfg->server_idle_timeout = 600;
    cfg->max_clients = 1000;
    cfg->max_message_size = 64 * 1024 * 1024;
    cfg->connect_timeout = 10;
    cfg->login_timeout = 60;
    cfg->query_wait_timeout = 120;
    cfg->catalog_max_age = 1;
    cfg->shutdown_timeout = 30;
}

/* key = HOST:PORT (or [v6]:PORT, or just PORT) in *host: split into *host
 * and *port */
static bool split_host_port(const char *key, char **host, int *port, char *err, size_t errcap)
{
    char *s = *host;
    char *colon = strrchr(s, ':');
    const char *digits = colon ? colon + 1 : s;
    char *end;
    long p = strtol(digits, &end, 10);
    if (*end || end == digits || p < 0 || p > 65535) {
        snprintf(err, errcap, "%s: \"%s\" is not HOST:PORT", key, s);
        return false;
    }
    *port = (int)p;
    if (!colon) {
        *host = strdup("127.0.0.1");
        free(s);
        if (!*host)
            snprintf(err, errcap, "out of memory");
        return *host != NULL;
    }
    *colon = '\0';
    if (s[0] == '[' && colon > s && colon[-1] == ']') {
        colon[-1] = '\0';
        memmove(s, s + 1, strlen(s + 1) + 1);
    }
    if (!s[0])
        strcpy(s, "0.0.0.0");
    return true;
}

static bool split_listen(config_t *cfg, char *err, size_t errcap)
{
    if (!cfg->listen_host) {
        cfg->listen_host = strdup("127.0.0.1");
        if (!cfg->listen_host) {
            snprintf(err, errcap, "out of memory");
            return false;
        }
    } else if (!split_host_port("listen", &cfg->listen_host, &cfg->listen_port, err, errcap)) {
        return false;
    }
    /* http_listen: off unless set (an empty value too) */
    if (cfg->http_host && !cfg->http_host[0]) {
        free(cfg->http_host);
        cfg->http_host = NULL;
    }
    return !cfg->http_host ||
           split_host_port("http_listen", &cfg->http_host, &cfg->http_port, err, errcap);
}

static bool resolve(const char *host, char *out, size_t cap)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
        return false;
    const void *addr = res->ai_family == AF_INET6
                           ? (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
                           : (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
    bool ok = inet_ntop(res->ai_family, addr, out, (socklen_t)cap) != NULL;
    freeaddrinfo(res);
    return ok;
}

static const char *const backend_sslmodes[] = {"disable",   "allow",       "prefer", "require",
                                               "verify-ca", "verify-full", NULL};

static bool is_ip_address(const char *s)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1;
}

typedef struct backend_tls_params {
    const char *sslmode, *rootcert, *cert, *key;
    const char *name; /* host as given: what verify-full checks, the SNI */
} backend_tls_params_t;

/* sslmode and friends: built once per config load, so every server
 * connection of every worker shares one SSL_CTX (and one read of the files). */
static bool parse_backend_tls(config_t *cfg, const backend_tls_params_t *p, char *err,
                              size_t errcap)
{
    const char *mode = p->sslmode ? p->sslmode : "disable";
    int m = -1;
    for (int i = 0; backend_sslmodes[i]; i++)
        if (strcmp(backend_sslmodes[i], mode) == 0)
            m = i;
    if (m < 0) {
        snprintf(err, errcap,
                 "backend: invalid sslmode \"%s\" (disable, allow, prefer, require, verify-ca or "
                 "verify-full)",
                 mode);
        return false;
    }
    cfg->backend_sslmode = (backend_ssl_t)m;
    /* libpq would fall back to ~/.postgresql/root.crt; a proxy's home
     * directory is no place for a trust anchor, so it must be named */
    if (m >= BACKEND_SSL_VERIFY_CA && !p->rootcert) {
        snprintf(err, errcap,
                 "backend: sslmode=%s needs sslrootcert=FILE (the CA certificate that signed "
                 "PostgreSQL's certificate, or \"system\")",
                 mode);
        return false;
    }
    /* as in libpq 16: public CAs sign anybody's name, so only a name check
     * makes them meaningful */
    if (p->rootcert && strcmp(p->rootcert, "system") == 0 && m != BACKEND_SSL_VERIFY_FULL &&
        m >= BACKEND_SSL_REQUIRE) {
        snprintf(err, errcap, "backend: sslrootcert=system needs sslmode=verify-full");
        return false;
    }
    if (!p->cert != !p->key) {
        snprintf(err, errcap, "backend: sslcert and sslkey must be given together");
        return false;
    }
    /* like libpq, never TLS over a unix socket */
    if (m == BACKEND_SSL_DISABLE || cfg->backend_host[0] == '/')
        return true;
    tls_client_opts_t o = {
        /* libpq: require with a root certificate behaves like verify-ca;
         * allow/prefer only ever encrypt opportunistically */
        .root_cert = m >= BACKEND_SSL_REQUIRE ? p->rootcert : NULL,
        .verify_name = m == BACKEND_SSL_VERIFY_FULL ? p->name : NULL,
        .cert_file = p->cert,
        .key_file = p->key,
    };
    char terr[400];
    cfg->backend_tls_ctx = tls_client_ctx_new(&o, terr, sizeof terr);
    if (!cfg->backend_tls_ctx) {
        snprintf(err, errcap, "backend: %s", terr);
        return false;
    }
    /* SNI carries names only (RFC 6066), as libpq's sslsni does */
    if (!is_ip_address(p->name)) {
        cfg->backend_sni = strdup(p->name);
        if (!cfg->backend_sni) {
            snprintf(err, errcap, "out of memory");
            return false;
        }
    }
    return true;
}

static bool parse_backend(config_t *cfg, char *err, size_t errcap)
{
    const char *conninfo = cfg->backend ? cfg->backend : "host=127.0.0.1 port=5432";
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (!opts) {
        snprintf(err, errcap, "backend: %s", perr ? perr : "cannot parse connection string");
        PQfreemem(perr);
        return false;
    }
    const char *host = NULL, *port = NULL, *hostaddr = NULL;
    backend_tls_params_t tp = {0};
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !o->val[0]) /* libpq: empty means "default" */
            continue;
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            hostaddr = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "sslmode") == 0)
            tp.sslmode = o->val;
        else if (strcmp(o->keyword, "sslrootcert") == 0)
            tp.rootcert = o->val;
        else if (strcmp(o->keyword, "sslcert") == 0)
            tp.cert = o->val;
        else if (strcmp(o->keyword, "sslkey") == 0)
            tp.key = o->val;
    }
    bool ok = true;
    const char *name = hostaddr ? hostaddr : host ? host : "127.0.0.1";
    char numeric[INET6_ADDRSTRLEN] = "";
    if (name[0] != '/' && !resolve(name, numeric, sizeof numeric)) {
        snprintf(err, errcap, "backend: cannot resolve host \"%s\"", name);
        PQconninfoFree(opts);
        return false;
    }
    /* resolved once here (start and SIGHUP), so workers never block on DNS;
     * TLS checks the name as written, as libpq does with hostaddr + host */
    tp.name = host && host[0] != '/' ? host : name;
    cfg->backend_host = strdup(numeric[0] ? numeric : name);
    cfg->backend_port = port ? atoi(port) : 5432;
    if (!cfg->backend_host) {
        snprintf(err, errcap, "out of memory");
        ok = false;
    } else if (cfg->backend_port <= 0 || cfg->backend_port > 65535) {
        snprintf(err, errcap, "backend: bad port \"%s\"", port);
        ok = false;
    } else {
        ok = parse_backend_tls(cfg, &tp, err, errcap);
    }
    PQconninfoFree(opts);
    return ok;
}

/* redis = redis://[user:password@]host[:port][/db] */
static bool parse_redis(config_t *cfg, char *err, size_t errcap)
{
    if (!cfg->redis_url || !cfg->redis_url[0])
        return true;
    const char *u = cfg->redis_url;
    bool tls = strncmp(u, "rediss://", 9) == 0;
    if (!tls && strncmp(u, "redis://", 8) != 0) {
        snprintf(err, errcap,
                 "redis: \"%s\" is not redis[s]://[user:password@]host[:port][/db]", u);
        return false;
    }
    char buf[512];
    snprintf(buf, sizeof buf, "%s", u + (tls ? 9 : 8));
    char *host = buf, *at = strrchr(buf, '@');
    if (at) {
        *at = '\0';
        host = at + 1;
        char *colon = strchr(buf, ':');
        if (colon) {
            *colon = '\0';
            cfg->redis_user = buf[0] ? strdup(buf) : NULL;
            cfg->redis_password = strdup(colon + 1);
        } else {
            cfg->redis_password = strdup(buf);
        }
    }
    char *slash = strchr(host, '/');
    cfg->redis_db = 0;
    if (slash) {
        *slash = '\0';
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (slash[1] && (*end || db < 0 || db > 1000)) {
            snprintf(err, errcap, "redis: bad database number \"%s\"", slash + 1);
            return false;
        }
        cfg->redis_db = (int)db;
    }
    cfg->redis_port = 6379;
    char *colon = host[0] == '[' ? strstr(host, "]:") : strrchr(host, ':');
    if (colon) {
        if (host[0] == '[')
            colon++;
        *colon = '\0';
        char *end;
        long p = strtol(colon + 1, &end, 10);
        if (*end || p <= 0 || p > 65535) {
            snprintf(err, errcap, "redis: bad port \"%s\"", colon + 1);
            return false;
        }
        cfg->redis_port = (int)p;
    }
    if (host[0] == '[') {
        host++;
        host[strcspn(host, "]")] = '\0';
    }
    char numeric[INET6_ADDRSTRLEN];
    if (!host[0] || !resolve(host, numeric, sizeof numeric)) {
        snprintf(err, errcap, "redis: cannot resolve host \"%s\"", host);
        return false;
    }
    cfg->redis_host = strdup(numeric);
    if (!cfg->redis_host) {
        snprintf(err, errcap, "out of memory");
        return false;
    }
    if (!tls)
        return true;
    /* rediss://: the certificate must name the host as written, signed by
     * redis_tls_ca (a PEM file, or "system": OpenSSL's default store) */
    tls_client_opts_t o = {.root_cert = cfg->redis_tls_ca ? cfg->redis_tls_ca : "system",
                           .verify_name = host};
    char terr[400];
    cfg->redis_tls_ctx = tls_client_ctx_new(&o, terr, sizeof terr);
    if (!cfg->redis_tls_ctx) {
        snprintf(err, errcap, "redis: %s", terr);
        return false;
    }
    if (!is_ip_address(host) && !(cfg->redis_sni = strdup(host))) {
        snprintf(err, errcap, "out of memory");
        return false;
    }
    return true;
}

/* advertise = HOST:PORT where the other proxies reach this one (cancel
 * requests): default, the listen address (0.0.0.0 and :: are no address:
 * then this host's name, resolved) */
static bool parse_advertise(config_t *cfg, char *err, size_t errcap)
{
    if (cfg->advertise_host && cfg->advertise_host[0])
        return split_host_port("advertise", &cfg->advertise_host, &cfg->advertise_port, err,
                               errcap);
    free(cfg->advertise_host);
    cfg->advertise_port = cfg->listen_port;
    const char *h = cfg->listen_host;
    char name[256], numeric[INET6_ADDRSTRLEN];
    if (strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0) {
        if (gethostname(name, sizeof name) != 0 || !resolve(name, numeric, sizeof numeric))
            snprintf(numeric, sizeof numeric, "127.0.0.1");
        h = numeric;
    }
    cfg->advertise_host = strdup(h);
    if (!cfg->advertise_host)
        snprintf(err, errcap, "out of memory");
    return cfg->advertise_host != NULL;
}

/* Once every key is set: derive the values that depend on others (listen
 * addresses, backend, worker count), check them, and load what they name
 * (userlist, TLS certificate). false with err filled. */
static bool resolve_and_check(config_t *cfg, char *err, size_t errcap)
{
    if (!split_listen(cfg, err, errcap) || !parse_backend(cfg, err, errcap) ||
        !parse_redis(cfg, err, errcap) || !parse_advertise(cfg, err, errcap))
        return false;
    if (cfg->workers == 0) {
        /* half the cores: the proxy usually shares the machine with
         * PostgreSQL, and on 2 cores two loops cost ~20 % more CPU per
         * transaction than one for the same throughput (docs/benchmarks.md) */
        long n = sysconf(_SC_NPROCESSORS_ONLN) / 2;
        cfg->workers = n > 0 ? (int)n : 1;
    }
    if (cfg->workers > 256) {
        snprintf(err, errcap, "workers: at most 256");
        return false;
    }
    if (cfg->sweep_interval > 0 && (!cfg->sweep_databases || !cfg->server_user)) {
        snprintf(err, errcap, "sweep_interval needs sweep_databases and server_user (and "
                              "server_password): the sweeper logs in as that role");
        return false;
    }
    if (cfg->pool_size < 1) {
        snprintf(err, errcap, "pool_size must be at least 1");
        return false;
    }
    if (cfg->auth_mode == AUTH_USERLIST) {
        if (!cfg->auth_file) {
            snprintf(err, errcap, "auth_mode = userlist needs auth_file");
            return false;
        }
        char uerr[256];
        cfg->userlist = userlist_load(cfg->auth_file, uerr, sizeof uerr);
        if (!cfg->userlist) {
            snprintf(err, errcap, "auth_file: %s", uerr);
            return false;
        }
    }
    if (cfg->tls_cert_file || cfg->tls_key_file) {
        if (!cfg->tls_cert_file || !cfg->tls_key_file) {
            snprintf(err, errcap, "TLS needs both tls_cert_file and tls_key_file");
            return false;
        }
        cfg->tls_ctx = tls_server_ctx_new(cfg->tls_cert_file, cfg->tls_key_file, err, errcap);
        if (!cfg->tls_ctx)
            return false;
    }
    return true;
}

static config_t *build(const char *path, char *err, size_t errcap)
{
    config_t *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    set_defaults(cfg);
    if (path) {
        cfg->path = strdup(path);
        load_ctx_t ctx = {cfg, err, errcap, false};
        int rc = ini_parse(path, on_ini_entry, &ctx);
        if (rc < 0) {
            snprintf(err, errcap, "cannot read config file %s", path);
            goto fail;
        }
        if (ctx.failed || rc > 0) {
            if (!ctx.failed)
                snprintf(err, errcap, "syntax error");
            char tmp[512];
            snprintf(tmp, sizeof tmp, "%s:%d: %s", path, rc, err);
            snprintf(err, errcap, "%s", tmp);
            goto fail;
        }
    }
    for (int i = 1; i < saved_argc; i += 2) {
        const char *name = saved_argv[i];
        if (strncmp(name, "--", 2) != 0 || i + 1 >= saved_argc) {
            snprintf(err, errcap, "expected --key value, got \"%s\" (see --help)", name);
            goto fail;
        }
        if (strcmp(name, "--config") == 0)
            continue;
        const key_def_t *k = find_key(name + 2);
        if (!k) {
            snprintf(err, errcap, "unknown option \"%s\" (see --help)", name);
            goto fail;
        }
        if (!set_key(cfg, k, saved_argv[i + 1], err, errcap))
            goto fail;
    }
    if (!resolve_and_check(cfg, err, errcap))
        goto fail;
    atomic_init(&cfg->refs, 1);
    return cfg;
fail:
    config_free(cfg);
    return NULL;
}

config_t *config_load(int argc, char **argv, char *err, size_t errcap)
{
    saved_argc = argc;
    saved_argv = argv;
    const char *path = NULL;
    for (int i = 1; i + 1 < argc; i += 2)
        if (strcmp(argv[i], "--config") == 0)
            path = argv[i + 1];
    return build(path, err, errcap);
}

static bool str_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

config_t *config_reload(const config_t *old, char *err, size_t errcap)
{
    config_t *cfg = build(old->path, err, errcap);
    if (!cfg)
        return NULL;
    /* restart-only keys keep their running values */
    if (strcmp(cfg->listen_host, old->listen_host) || cfg->listen_port != old->listen_port ||
        strcmp(cfg->backend_host, old->backend_host) || cfg->backend_port != old->backend_port ||
        str_differs(cfg->backend, old->backend) || cfg->workers != old->workers ||
        cfg->io != old->io || str_differs(cfg->http_host, old->http_host) ||
        cfg->http_port != old->http_port || str_differs(cfg->redis_url, old->redis_url) ||
        str_differs(cfg->advertise_host, old->advertise_host))
        log_warning("listen, backend, workers, io, http_listen, redis and advertise changes need a "
                    "restart; keeping the old values");
    /* restart-only strings: the running values */
    char **keep[] = {&cfg->redis_url,      &cfg->redis_host,     &cfg->redis_user,
                     &cfg->redis_password, &cfg->advertise_host, &cfg->redis_sni,
                     &cfg->redis_tls_ca};
    const char *was[] = {old->redis_url,      old->redis_host,     old->redis_user,
                         old->redis_password, old->advertise_host, old->redis_sni,
                         old->redis_tls_ca};
    if (cfg->redis_tls_ctx)
        SSL_CTX_free(cfg->redis_tls_ctx);
    cfg->redis_tls_ctx = old->redis_tls_ctx;
    if (cfg->redis_tls_ctx)
        SSL_CTX_up_ref(cfg->redis_tls_ctx);
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        free(*keep[i]);
        *keep[i] = was[i] ? strdup(was[i]) : NULL;
        if (was[i] && !*keep[i]) {
            snprintf(err, errcap, "out of memory");
            config_release(cfg);
            return NULL;
        }
    }
    cfg->redis_port = old->redis_port;
    cfg->redis_db = old->redis_db;
    cfg->advertise_port = old->advertise_port;
    free(cfg->listen_host);
    free(cfg->http_host);
    cfg->http_host = old->http_host ? strdup(old->http_host) : NULL;
    cfg->http_port = old->http_port;
    free(cfg->backend);
    free(cfg->backend_host);
    free(cfg->backend_sni);
    cfg->listen_host = strdup(old->listen_host);
    cfg->backend = old->backend ? strdup(old->backend) : NULL;
    cfg->backend_host = strdup(old->backend_host);
    cfg->backend_sni = old->backend_sni ? strdup(old->backend_sni) : NULL;
    /* backend TLS is part of `backend`: the running context stays (shared,
     * reference-counted by OpenSSL; each snapshot frees its reference) */
    if (cfg->backend_tls_ctx)
        SSL_CTX_free(cfg->backend_tls_ctx);
    cfg->backend_tls_ctx = old->backend_tls_ctx;
    if (cfg->backend_tls_ctx)
        SSL_CTX_up_ref(cfg->backend_tls_ctx);
    cfg->backend_sslmode = old->backend_sslmode;
    if (!cfg->listen_host || !cfg->backend_host || (old->backend && !cfg->backend) ||
        (old->http_host && !cfg->http_host) ||
        (old->backend_sni && !cfg->backend_sni)) {
        snprintf(err, errcap, "out of memory");
        config_release(cfg);
        return NULL;
    }
    cfg->listen_port = old->listen_port;
    cfg->backend_port = old->backend_port;
    cfg->workers = old->workers;
    cfg->io = old->io;
    return cfg;
}

bool config_list_item(const char *list, int n, char *out, size_t cap)
{
    for (const char *p = list; p && *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, " \t,");
        if (!len)
            break;
        if (n-- == 0) {
            snprintf(out, cap, "%.*s", (int)len, p);
            return true;
        }
        p += len;
    }
    return false;
}

bool config_is_admin_user(const config_t *cfg, const char *user)
{
    char name[128];
    for (int i = 0; config_list_item(cfg->admin_users, i, name, sizeof name); i++)
        if (strcmp(name, user) == 0)
            return true;
    return false;
}

void config_show(const config_t *cfg, config_row_cb row, void *arg)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const key_def_t *k = &keys[i];
        const char *field = (const char *)cfg + k->offset;
        char text[512];
        switch (k->type) {
        case K_STR: {
            const char *v = *(char *const *)field;
            if (strcmp(k->name, "listen") == 0)
                snprintf(text, sizeof text, "%s:%d", cfg->listen_host, cfg->listen_port);
            else if (strcmp(k->name, "http_listen") == 0 && v)
                snprintf(text, sizeof text, "%s:%d", v, cfg->http_port);
            else if (strcmp(k->name, "server_password") == 0 && v)
                snprintf(text, sizeof text, "********");
            else if (strcmp(k->name, "redis") == 0 && v && strchr(v, '@'))
                /* redis[s]://user:password@host…: the userinfo masked */
                snprintf(text, sizeof text, "%.*s********%s", (int)(strstr(v, "://") + 3 - v), v,
                         strrchr(v, '@'));
            else
                snprintf(text, sizeof text, "%s", v ? v : "");
            break;
        }
        case K_INT:
            snprintf(text, sizeof text, "%d", *(const int *)field);
            break;
        case K_SIZE:
            snprintf(text, sizeof text, "%zu", *(const size_t *)field);
            break;
        case K_SECONDS:
            snprintf(text, sizeof text, "%g", *(const double *)field);
            break;
        case K_ENUM:
            snprintf(text, sizeof text, "%s", k->choices[*(const int *)field]);
            break;
        }
        row(arg, k->name, text, !k->restart);
    }
}

/* The snapshot is immutable but for its count: the const of the callers'
 * pointers is cast away only here. */
const config_t *config_acquire(const config_t *cfg)
{
    config_t *c = (config_t *)cfg;
    int before = atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    if (before <= 0) {
        log_error("config snapshot acquired after its last release");
        abort();
    }
    return cfg;
}

void config_release(const config_t *cfg)
{
    if (!cfg)
        return;
    config_t *c = (config_t *)cfg;
    /* release: this thread's reads of the snapshot happen before the free;
     * acquire (below): the freeing thread sees every other thread's */
    int before = atomic_fetch_sub_explicit(&c->refs, 1, memory_order_release);
    if (before <= 0) {
        log_error("config snapshot released more often than acquired");
        abort();
    }
    if (before == 1) {
        atomic_thread_fence(memory_order_acquire);
        config_free(c);
        log_debug("configuration snapshot freed");
    }
}

int config_refs(const config_t *cfg)
{
    return atomic_load(&((config_t *)cfg)->refs);
}
