/*
 * admin — the admin console: the virtual database "epoch" (`psql -d epoch`),
 * in the spirit of PgBouncer's. A superuser (passthrough mode: PostgreSQL's
 * is_superuser at the login, made to database "postgres") or a user listed
 * in admin_users gets a session that the proxy answers itself, simple
 * queries only: SHOW CLIENTS | SERVERS | POOLS | STATS | BRANCHES | CONFIG |
 * PEERS | VERSION, RELOAD, SHUTDOWN. Anyone else gets 42501. The SHOW
 * commands that list connections ask every worker (admin_collect.c).
 *
 * Must never: forward a console statement to PostgreSQL, or show a
 * password.
 */
#include "wire/admin.h"

#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"
#include "wire/conn.h"
#include "wire/redis.h"

#ifndef EPOCH_VERSION
#define EPOCH_VERSION "unknown"
#endif

uint64_t admin_started_ns;

/* ---- result sets ---- */

bool admin_columns(buf_t *b, const admin_col_t *cols, int n)
{
    size_t start;
    bool ok = buf_msg_begin(b, 'T', &start) && buf_put_i16(b, (int16_t)n);
    for (int i = 0; ok && i < n; i++)
        ok = buf_put_str(b, cols[i].name) && buf_put_i32(b, 0) && buf_put_i16(b, 0) &&
             buf_put_i32(b, cols[i].numeric ? 20 : 25) &&
             buf_put_i16(b, cols[i].numeric ? 8 : -1) && buf_put_i32(b, -1) && buf_put_i16(b, 0);
    if (ok)
        buf_msg_end(b, start);
    return ok;
}

bool admin_row(buf_t *b, int n, const char *const *values)
{
    size_t start;
    bool ok = buf_msg_begin(b, 'D', &start) && buf_put_i16(b, (int16_t)n);
    for (int i = 0; ok && i < n; i++) {
        if (!values[i]) {
            ok = buf_put_i32(b, -1);
        } else {
            size_t len = strlen(values[i]);
            ok = buf_put_i32(b, (int32_t)len) && buf_append(b, values[i], len);
        }
    }
    if (ok)
        buf_msg_end(b, start);
    return ok;
}

static bool complete(buf_t *b, const char *tag)
{
    size_t start;
    bool ok = buf_msg_begin(b, 'C', &start) && buf_put_str(b, tag);
    if (ok)
        buf_msg_end(b, start);
    return ok && proto_ready(b, 'I');
}

/* Send what b holds (ok: it was built whole) to the console c, or fail it
 * for want of memory. Frees b. */
static void send_built(client_t *c, buf_t *b, bool ok)
{
    if (c->state != CL_CLOSING) {
        if (ok && stream_write(&c->st, b->data, b->len))
            stream_flush(&c->st);
        else
            client_fail(c, "53200", "out of memory", NULL);
    }
    buf_free(b);
}

void admin_send(client_t *c, buf_t *b, bool ok, const char *tag)
{
    send_built(c, b, ok && complete(b, tag));
}

static void answer_error(client_t *c, const char *sqlstate, const char *message, const char *hint)
{
    buf_t b = {0};
    metrics_error(sqlstate);
    send_built(c, &b, proto_error(&b, "ERROR", sqlstate, message, hint) && proto_ready(&b, 'I'));
}

/* ---- commands that need no other worker ---- */

static void show_version(client_t *c)
{
    static const admin_col_t cols[] = {{"version", false}};
    const char *v[] = {"epoch-proxy " EPOCH_VERSION};
    buf_t b = {0};
    admin_send(c, &b, admin_columns(&b, cols, 1) && admin_row(&b, 1, v), "SHOW");
}

typedef struct {
    buf_t *b;
    bool ok;
} rows_t;

static void config_row(void *arg, const char *key, const char *value, bool reloadable)
{
    rows_t *r = arg;
    const char *v[] = {key, value, reloadable ? "yes" : "no"};
    r->ok = r->ok && admin_row(r->b, 3, v);
}

static void show_config(client_t *c)
{
    static const admin_col_t cols[] = {{"key", false}, {"value", false}, {"changeable", false}};
    buf_t b = {0};
    rows_t r = {&b, admin_columns(&b, cols, 3)};
    config_show(worker_config(c->w), config_row, &r);
    admin_send(c, &b, r.ok, "SHOW");
}

static void stats_row(void *arg, const char *database, const uint64_t *v)
{
    rows_t *r = arg;
    double up = (double)(uv_hrtime() - admin_started_ns) / 1e9;
    if (up < 1)
        up = 1;
    char t[MD_FIELDS][24], a[MD_FIELDS][24];
    for (int i = 0; i < MD_FIELDS; i++)
        snprintf(t[i], sizeof t[i], "%llu", (unsigned long long)v[i]);
    /* avg_*: per second since the proxy started; times: per transaction / query */
    snprintf(a[MD_XACTS], 24, "%.0f", (double)v[MD_XACTS] / up);
    snprintf(a[MD_QUERIES], 24, "%.0f", (double)v[MD_QUERIES] / up);
    snprintf(a[MD_RECEIVED], 24, "%.0f", (double)v[MD_RECEIVED] / up);
    snprintf(a[MD_SENT], 24, "%.0f", (double)v[MD_SENT] / up);
    snprintf(a[MD_XACT_US], 24, "%llu",
             (unsigned long long)(v[MD_XACTS] ? v[MD_XACT_US] / v[MD_XACTS] : 0));
    snprintf(a[MD_QUERY_US], 24, "%llu",
             (unsigned long long)(v[MD_QUERIES] ? v[MD_QUERY_US] / v[MD_QUERIES] : 0));
    snprintf(a[MD_WAIT_US], 24, "%llu",
             (unsigned long long)(v[MD_XACTS] ? v[MD_WAIT_US] / v[MD_XACTS] : 0));
    const char *row[] = {database,      t[MD_XACTS],    t[MD_QUERIES],  t[MD_RECEIVED],
                         t[MD_SENT],    t[MD_XACT_US],  t[MD_QUERY_US], t[MD_WAIT_US],
                         a[MD_XACTS],   a[MD_QUERIES],  a[MD_RECEIVED], a[MD_SENT],
                         a[MD_XACT_US], a[MD_QUERY_US], a[MD_WAIT_US]};
    r->ok = r->ok && admin_row(r->b, 15, row);
}

static void show_stats(client_t *c)
{
    static const admin_col_t cols[] = {
        {"database", false},        {"total_xact_count", true}, {"total_query_count", true},
        {"total_received", true},   {"total_sent", true},       {"total_xact_time", true},
        {"total_query_time", true}, {"total_wait_time", true},  {"avg_xact_count", true},
        {"avg_query_count", true},  {"avg_recv", true},         {"avg_sent", true},
        {"avg_xact_time", true},    {"avg_query_time", true},   {"avg_wait_time", true}};
    buf_t b = {0};
    rows_t r = {&b, admin_columns(&b, cols, 15)};
    metrics_db_each(stats_row, &r);
    admin_send(c, &b, r.ok, "SHOW");
}

typedef struct {
    worker_t *w;
    uint64_t client_id;
} peers_wait_t;

/* The proxies of the Redis group (this one alone without Redis). */
static void peers_answer(client_t *c, const redisReply *reply)
{
    static const admin_col_t cols[] = {{"peer_id", false}, {"host", false},   {"port", true},
                                       {"version", false}, {"clients", true}, {"uptime", true},
                                       {"self", false}};
    const config_t *cfg = worker_config(c->w);
    buf_t b = {0};
    bool ok = admin_columns(&b, cols, 7);
    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; ok && i < reply->elements; i++) {
            const redisReply *e = reply->element[i];
            char id[40], host[64], port[8], version[32], clients[16], uptime[24];
            long long since;
            if (e->type != REDIS_REPLY_STRING || sscanf(e->str, "%39s %63s %7s %31s %15s %lld", id,
                                                        host, port, version, clients, &since) != 6)
                continue;
            snprintf(uptime, sizeof uptime, "%lld", (long long)time(NULL) - since);
            const char *row[] = {id,
                                 host,
                                 port,
                                 version,
                                 clients,
                                 uptime,
                                 strcmp(id, redis_proxy_id()) == 0 ? "yes" : "no"};
            ok = admin_row(&b, 7, row);
        }
    } else {
        /* no Redis (or it is away): this proxy, alone */
        char port[8], clients[16];
        snprintf(port, sizeof port, "%d", cfg->advertise_port);
        snprintf(clients, sizeof clients, "%d", workers_clients());
        const char *row[] = {redis_proxy_id()[0] ? redis_proxy_id() : "-",
                             cfg->advertise_host,
                             port,
                             EPOCH_VERSION,
                             clients,
                             NULL,
                             "yes"};
        ok = ok && admin_row(&b, 7, row);
    }
    admin_send(c, &b, ok, "SHOW");
}

static void on_peers(void *arg, const redisReply *reply)
{
    peers_wait_t *pw = arg;
    client_t *c = admin_client_by_id(pw->w, pw->client_id);
    free(pw);
    if (!c || c->state != CL_ACTIVE)
        return;
    c->admin_busy = false;
    peers_answer(c, reply);
    if (c->state == CL_ACTIVE && buf_avail(&c->st.rbuf))
        admin_on_read(c);
}

static void show_peers(client_t *c)
{
    peers_wait_t *pw = calloc(1, sizeof *pw);
    if (pw) {
        pw->w = c->w;
        pw->client_id = c->id;
        if (redis_peers(c->w, on_peers, pw)) {
            c->admin_busy = true;
            return;
        }
        free(pw);
    }
    peers_answer(c, NULL);
}

static void signal_self(client_t *c, int sig, const char *tag)
{
    buf_t b = {0};
    admin_send(c, &b, true, tag);
    log_info("admin console: %s by \"%s\"", tag, c->startup.user);
    kill(getpid(), sig);
}

/* ---- PAUSE and RESUME ---- */

static pthread_mutex_t pause_lock = PTHREAD_MUTEX_INITIALIZER;
static char *paused[64]; /* database names, "*" = all */
static int npaused;
static atomic_int pause_any;

bool admin_paused(const char *db)
{
    if (!atomic_load_explicit(&pause_any, memory_order_relaxed))
        return false;
    bool yes = false;
    pthread_mutex_lock(&pause_lock);
    for (int i = 0; i < npaused && !yes; i++)
        yes = strcmp(paused[i], "*") == 0 || (db && strcmp(paused[i], db) == 0);
    pthread_mutex_unlock(&pause_lock);
    return yes;
}

typedef struct pause_wait {
    uv_timer_t timer;
    worker_t *w;
    uint64_t client_id;
    char db[128];
} pause_wait_t;

static void pause_wait_closed(uv_handle_t *h)
{
    free(h->data);
}

static void pause_recheck(uv_timer_t *t)
{
    pause_wait_t *pw = t->data;
    client_t *c = admin_client_by_id(pw->w, pw->client_id);
    if (c && c->state == CL_ACTIVE)
        admin_collect(c, ADMIN_PAUSE_CHECK, pw->db);
    uv_close((uv_handle_t *)&pw->timer, pause_wait_closed);
}

void admin_pause_checked(client_t *c, const char *db, long busy)
{
    if (busy == 0 || !admin_paused(strcmp(db, "*") == 0 ? NULL : db)) {
        /* quiet (or resumed meanwhile): PAUSE is done */
        buf_t b = {0};
        admin_send(c, &b, true, "PAUSE");
        return;
    }
    pause_wait_t *pw = calloc(1, sizeof *pw);
    if (!pw) {
        client_fail(c, "53200", "out of memory", NULL);
        return;
    }
    pw->w = c->w;
    pw->client_id = c->id;
    snprintf(pw->db, sizeof pw->db, "%s", db);
    uv_timer_init(&c->w->loop, &pw->timer);
    pw->timer.data = pw;
    c->admin_busy = true;
    uv_timer_start(&pw->timer, pause_recheck, 100, 0);
}

static void pause_start(client_t *c, const char *db)
{
    pthread_mutex_lock(&pause_lock);
    bool have = false;
    for (int i = 0; i < npaused && !have; i++)
        have = strcmp(paused[i], db) == 0;
    char *copy = have || npaused == (int)(sizeof paused / sizeof paused[0]) ? NULL : strdup(db);
    if (copy)
        paused[npaused++] = copy;
    bool full = !have && !copy;
    atomic_store(&pause_any, npaused > 0);
    pthread_mutex_unlock(&pause_lock);
    if (full) {
        answer_error(c, "54000", "too many paused databases", "RESUME some first.");
        return;
    }
    log_info("admin console: PAUSE %s by \"%s\"", db, c->startup.user);
    /* answered once no client of db has a request or a transaction open */
    admin_collect(c, ADMIN_PAUSE_CHECK, db);
}

static void resume(client_t *c, const char *db)
{
    pthread_mutex_lock(&pause_lock);
    bool found = false;
    for (int i = 0; i < npaused;) {
        if (strcmp(db, "*") == 0 || strcmp(paused[i], db) == 0) {
            free(paused[i]);
            paused[i] = paused[--npaused];
            found = true;
        } else {
            i++;
        }
    }
    atomic_store(&pause_any, npaused > 0);
    pthread_mutex_unlock(&pause_lock);
    if (!found) {
        answer_error(c, "55000",
                     strcmp(db, "*") == 0 ? "nothing is paused" : "database is not paused",
                     "PAUSE [db] first.");
        return;
    }
    log_info("admin console: RESUME %s by \"%s\"", db, c->startup.user);
    admin_collect(c, ADMIN_RESUME, db);
}

/* ---- dispatch ---- */

/* The words of a console statement, upper-cased, without the trailing ';'. */
static int split_words(const char *sql, char words[4][32])
{
    int n = 0;
    const char *p = sql;
    while (*p && n < 4) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p || *p == ';')
            break;
        size_t len = 0;
        while (p[len] && !isspace((unsigned char)p[len]) && p[len] != ';')
            len++;
        if (len >= sizeof words[0])
            return -1;
        for (size_t i = 0; i < len; i++)
            words[n][i] = (char)toupper((unsigned char)p[i]);
        words[n][len] = '\0';
        n++;
        p += len;
    }
    while (isspace((unsigned char)*p) || *p == ';')
        p++;
    return *p ? -1 : n;
}

static void run(client_t *c, const char *sql)
{
    const char *p = sql;
    while (isspace((unsigned char)*p))
        p++;
    if (strncasecmp(p, "SET", 3) == 0 && isspace((unsigned char)p[3])) {
        /* drivers set their session up (extra_float_digits, application_name):
         * nothing to set here, as on PgBouncer's console */
        buf_t b = {0};
        admin_send(c, &b, true, "SET");
        return;
    }
    char w[4][32];
    int n = split_words(sql, w);
    if (n == 0) {
        buf_t b = {0};
        size_t start;
        bool ok = buf_msg_begin(&b, 'I', &start); /* EmptyQueryResponse */
        if (ok)
            buf_msg_end(&b, start);
        send_built(c, &b, ok && proto_ready(&b, 'I'));
        return;
    }
    if (n == 2 && strcmp(w[0], "SHOW") == 0) {
        if (strcmp(w[1], "VERSION") == 0)
            return show_version(c);
        if (strcmp(w[1], "CONFIG") == 0)
            return show_config(c);
        if (strcmp(w[1], "STATS") == 0)
            return show_stats(c);
        if (strcmp(w[1], "PEERS") == 0)
            return show_peers(c);
        if (strcmp(w[1], "CLIENTS") == 0)
            return admin_collect(c, ADMIN_CLIENTS, NULL);
        if (strcmp(w[1], "SERVERS") == 0)
            return admin_collect(c, ADMIN_SERVERS, NULL);
        if (strcmp(w[1], "POOLS") == 0)
            return admin_collect(c, ADMIN_POOLS, NULL);
        if (strcmp(w[1], "BRANCHES") == 0)
            return admin_collect(c, ADMIN_BRANCHES, NULL);
    }
    if (n == 1 && strcmp(w[0], "RELOAD") == 0)
        return signal_self(c, SIGHUP, "RELOAD");
    if (n == 1 && strcmp(w[0], "SHUTDOWN") == 0)
        return signal_self(c, SIGINT, "SHUTDOWN");
    if ((n == 1 || n == 2) && (strcmp(w[0], "PAUSE") == 0 || strcmp(w[0], "RESUME") == 0)) {
        /* the database's name as written (the words are upper-cased) */
        char db[128] = "*";
        if (n == 2) {
            const char *p = sql;
            while (isspace((unsigned char)*p))
                p++;
            p += 5 + (w[0][0] == 'R');
            while (isspace((unsigned char)*p))
                p++;
            size_t len = strcspn(p, " \t\n;");
            snprintf(db, sizeof db, "%.*s", (int)len, p);
        }
        if (w[0][0] == 'P')
            pause_start(c, db);
        else
            resume(c, db);
        return;
    }
    char msg[120];
    snprintf(msg, sizeof msg, "unknown admin console command \"%.60s\"", sql);
    answer_error(c, "42601", msg,
                 "The console knows SHOW CLIENTS, SHOW SERVERS, SHOW POOLS, SHOW STATS, SHOW "
                 "BRANCHES, SHOW CONFIG, SHOW PEERS, SHOW VERSION, PAUSE [db], RESUME [db], "
                 "RELOAD and SHUTDOWN.");
}

void admin_login(client_t *c, bool superuser)
{
    const config_t *cfg = worker_config(c->w);
    if (!superuser && !config_is_admin_user(cfg, c->startup.user)) {
        client_fail(c, "42501", "permission denied for the admin console",
                    "Connect as a superuser (passthrough mode) or as a user listed in "
                    "admin_users.");
        return;
    }
    client_set_state(c, CL_ACTIVE);
    buf_t b = {0};
    bool ok = proto_param_status(&b, "server_version", "15.0 (epoch-proxy " EPOCH_VERSION ")") &&
              proto_param_status(&b, "client_encoding", "UTF8") &&
              proto_param_status(&b, "server_encoding", "UTF8") &&
              proto_param_status(&b, "DateStyle", "ISO, MDY") &&
              proto_param_status(&b, "standard_conforming_strings", "on") && proto_ready(&b, 'I');
    send_built(c, &b, ok);
    if (c->state != CL_ACTIVE)
        return;
    log_info("client %llu: admin console for \"%s\"", (unsigned long long)c->id, c->startup.user);
}

void admin_on_read(client_t *c)
{
    buf_t *rb = &c->st.rbuf;
    size_t max = worker_config(c->w)->max_message_size;
    while (c->state == CL_ACTIVE && !c->admin_busy && buf_avail(rb) >= 5) {
        const char *p = buf_head(rb);
        uint32_t len = rd_u32(p + 1);
        if (len < 4 || len > max) {
            client_fail(c, "08P01", "invalid message length", NULL);
            return;
        }
        size_t total = (size_t)len + 1;
        if (buf_avail(rb) < total)
            return;
        char type = p[0];
        if (type == 'X') {
            client_close(c, "client terminated");
            return;
        }
        if (type == 'Q') {
            char *sql = strndup(p + 5, len - 4);
            buf_consume(rb, total);
            if (!sql) {
                client_fail(c, "53200", "out of memory", NULL);
                return;
            }
            run(c, sql);
            free(sql);
            continue;
        }
        buf_consume(rb, total);
        if (type == 'S') {
            c->admin_skip = false;
            buf_t b = {0};
            send_built(c, &b, proto_ready(&b, 'I'));
        } else if (strchr("PBDECHF", type) && type) {
            if (!c->admin_skip) {
                c->admin_skip = true; /* the rest up to the Sync is ignored */
                buf_t b = {0};
                send_built(c, &b,
                           proto_error(&b, "ERROR", "0A000",
                                       "the admin console takes simple queries only", NULL));
            }
        } else {
            client_fail(c, "08P01", "invalid frontend message type on the admin console", NULL);
            return;
        }
    }
}
