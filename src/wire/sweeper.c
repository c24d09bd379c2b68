/*
 * sweeper — expired-branch sweeps and history gc, every sweep_interval
 * seconds, on one proxy of a group at a time (config sweep_interval,
 * sweep_databases; docs/operations.md).
 *
 * Worker 0 runs it. Each round: with Redis, the group's lock
 * (epoch:sweeper, this proxy's id, expiring after two intervals; the holder
 * renews it); then, for each database in turn, one statement on a
 * connection of its own (libpq's asynchronous API on the worker's loop, as
 * server_user): epoch.sweep() and epoch.gc() inside
 * pg_try_advisory_xact_lock, so that without Redis (or while it is away)
 * two proxies still never sweep one database at once. A round never waits
 * for another: a database that does not answer within SWEEP_TIMEOUT_MS is
 * given up until the next round.
 *
 * Must never: block the loop (the backend address is numeric: no DNS in
 * PQconnectStart), or log a password.
 */
#include "wire/sweeper.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"
#include "wire/conn.h"
#include "wire/redis.h"

#define SWEEP_TIMEOUT_MS 30000
/* the advisory lock of the statement (epoch's locks are 1162891075, x) */
#define SWEEP_LOCK "1162891076"

typedef struct sweep_conn {
    uv_poll_t poll;
    uv_timer_t timer;
    int open_handles;
    PGconn *pg;
    int fd;
    bool querying;
    bool done;
    worker_t *w;
    char db[128];
} sweep_conn_t;

static struct {
    uint64_t next_ms; /* when the next round is due */
    bool running;     /* a round is under way */
    int db_index;     /* the database being swept */
    sweep_conn_t *conn;
    bool stopping;
} sw;

static void next_db(worker_t *w);

static void conn_closed(uv_handle_t *h)
{
    sweep_conn_t *sc = h->data;
    if (--sc->open_handles > 0)
        return;
    worker_t *w = sc->w;
    PQfinish(sc->pg);
    free(sc);
    if (!sw.stopping)
        next_db(w);
}

static void conn_end(sweep_conn_t *sc, const char *failure)
{
    if (sc->done)
        return;
    sc->done = true;
    if (failure)
        log_warning("sweeper: database \"%s\": %s", sc->db, failure);
    sw.conn = NULL;
    uv_close((uv_handle_t *)&sc->poll, conn_closed);
    uv_close((uv_handle_t *)&sc->timer, conn_closed);
}

static const char *pq_error(sweep_conn_t *sc)
{
    const char *m = PQerrorMessage(sc->pg);
    return m && m[0] ? m : "connection failed";
}

static void watch(sweep_conn_t *sc, int events);

static void on_poll(uv_poll_t *p, int status, int events)
{
    sweep_conn_t *sc = p->data;
    if (sc->done)
        return;
    if (status < 0) {
        conn_end(sc, uv_strerror(status));
        return;
    }
    if (!sc->querying) {
        switch (PQconnectPoll(sc->pg)) {
        case PGRES_POLLING_READING:
            watch(sc, UV_READABLE);
            return;
        case PGRES_POLLING_WRITING:
            watch(sc, UV_WRITABLE);
            return;
        case PGRES_POLLING_FAILED:
            conn_end(sc, pq_error(sc));
            return;
        default: /* PGRES_POLLING_OK */
            break;
        }
        static const char sql[] =
            "SELECT CASE WHEN pg_try_advisory_xact_lock(" SWEEP_LOCK ") THEN "
            "format('%s expired branch(es) swept, %s history row(s) freed', "
            "(SELECT count(*) FROM epoch.sweep()), "
            "(SELECT coalesce(sum(main_rows + branch_rows), 0) FROM epoch.gc())) "
            "ELSE 'skipped: another proxy is sweeping it' END";
        if (!PQsendQuery(sc->pg, sql)) {
            conn_end(sc, pq_error(sc));
            return;
        }
        sc->querying = true;
        watch(sc, PQflush(sc->pg) == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
        return;
    }
    if ((events & UV_WRITABLE) && PQflush(sc->pg) == 0)
        watch(sc, UV_READABLE);
    if (!(events & UV_READABLE))
        return;
    if (!PQconsumeInput(sc->pg)) {
        conn_end(sc, pq_error(sc));
        return;
    }
    while (!PQisBusy(sc->pg)) {
        PGresult *res = PQgetResult(sc->pg);
        if (!res) {
            conn_end(sc, NULL);
            return;
        }
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
            metrics_add(MC_SWEEPS, 1);
            log_info("sweeper: database \"%s\": %s", sc->db, PQgetvalue(res, 0, 0));
        } else if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            char msg[300];
            snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(res));
            msg[strcspn(msg, "\n")] = '\0';
            log_warning("sweeper: database \"%s\": %s", sc->db, msg);
        }
        PQclear(res);
    }
}

static void watch(sweep_conn_t *sc, int events)
{
    int fd = PQsocket(sc->pg);
    if (fd != sc->fd) {
        /* libpq moved to another socket (a retry without TLS, say) */
        conn_end(sc, "connection restarted; tried again next round");
        return;
    }
    uv_poll_start(&sc->poll, events, on_poll);
}

static void on_timeout(uv_timer_t *t)
{
    conn_end(t->data, "no answer in time; tried again next round");
}

/* One database: connect, run the statement, then the next one. */
static void start_db(worker_t *w, const char *db)
{
    const config_t *cfg = worker_config(w);
    sweep_conn_t *sc = calloc(1, sizeof *sc);
    if (!sc) {
        log_warning("sweeper: out of memory");
        sw.running = false;
        return;
    }
    sc->w = w;
    snprintf(sc->db, sizeof sc->db, "%s", db);
    const char *keys[] = {cfg->backend_host[0] == '/' ? "host" : "hostaddr",
                          "port",
                          "dbname",
                          "user",
                          "password",
                          "application_name",
                          "connect_timeout",
                          NULL};
    char port[8];
    snprintf(port, sizeof port, "%d", cfg->backend_port);
    const char *values[] = {cfg->backend_host, port, db,  cfg->server_user, cfg->server_password,
                            "epoch-sweeper",   "10", NULL};
    sc->pg = PQconnectStartParams(keys, values, 0);
    if (!sc->pg || PQstatus(sc->pg) == CONNECTION_BAD) {
        log_warning("sweeper: database \"%s\": %s", db,
                    sc->pg ? PQerrorMessage(sc->pg) : "out of memory");
        PQfinish(sc->pg);
        free(sc);
        next_db(w);
        return;
    }
    sc->fd = PQsocket(sc->pg);
    if (uv_poll_init_socket(&w->loop, &sc->poll, sc->fd) != 0) {
        log_warning("sweeper: database \"%s\": cannot watch the connection", db);
        PQfinish(sc->pg);
        free(sc);
        next_db(w);
        return;
    }
    uv_timer_init(&w->loop, &sc->timer);
    sc->poll.data = sc;
    sc->timer.data = sc;
    sc->open_handles = 2;
    sw.conn = sc;
    uv_timer_start(&sc->timer, on_timeout, SWEEP_TIMEOUT_MS, 0);
    uv_poll_start(&sc->poll, UV_WRITABLE, on_poll);
}

static void next_db(worker_t *w)
{
    char db[128];
    if (!sw.running)
        return;
    if (!config_list_item(worker_config(w)->sweep_databases, sw.db_index++, db, sizeof db)) {
        sw.running = false;
        return;
    }
    start_db(w, db);
}

static void begin_round(worker_t *w)
{
    sw.running = true;
    sw.db_index = 0;
    next_db(w);
}

static void on_lock(void *arg, const redisReply *reply)
{
    worker_t *w = arg;
    if (sw.stopping)
        return;
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
        log_debug("sweeper: another proxy of the group holds the lock");
        sw.running = false;
        return;
    }
    begin_round(w); /* ours, or Redis away: the databases' advisory locks decide */
}

void sweeper_tick(worker_t *w)
{
    const config_t *cfg = worker_config(w);
    if (w->id != 0 || cfg->sweep_interval <= 0 || !cfg->sweep_databases || sw.running ||
        sw.stopping)
        return;
    uint64_t now = uv_now(&w->loop);
    if (sw.next_ms && now < sw.next_ms)
        return;
    sw.next_ms = now + (uint64_t)(cfg->sweep_interval * 1000);
    sw.running = true;
    if (!redis_sweeper_lock(w, (uint64_t)(cfg->sweep_interval * 2000), on_lock, w))
        begin_round(w); /* no Redis */
}

void sweeper_stop(worker_t *w)
{
    (void)w;
    sw.stopping = true;
    if (sw.conn)
        conn_end(sw.conn, NULL);
}
