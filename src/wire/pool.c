/*
 * pool — server connections shared by the clients of one (user, database)
 * on one worker, in userlist mode. session mode: a client keeps its server
 * until it leaves, then the server is reset (DISCARD ALL) and reused.
 * transaction mode: a server goes back after every transaction; the client's
 * session settings are re-applied when it next gets a different server
 * (session.c decides what to send).
 *
 * Must never: give a server with a request in flight or an open transaction
 * to another client; that server is closed instead.
 */
#include "wire/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/cancel.h"
#include "common/log.h"
#include "common/metrics.h"

pool_t *pool_get(worker_t *w, const char *user, const char *database)
{
    list_node_t *n, *tmp;
    list_for_each_safe(n, tmp, &w->pools)
    {
        pool_t *p = list_entry(n, pool_t, node);
        if (strcmp(p->user, user) == 0 && strcmp(p->database, database) == 0)
            return p;
    }
    pool_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->user = strdup(user);
    p->database = strdup(database);
    if (!p->user || !p->database) {
        free(p->user);
        free(p->database);
        free(p);
        return NULL;
    }
    p->w = w;
    list_init(&p->idle);
    list_init(&p->waiting);
    list_append(&w->pools, &p->node);
    return p;
}

static void link_done(server_t *sv, void *arg, const internal_result_t *res)
{
    (void)arg;
    client_t *c = sv->client;
    if (!res->ok) {
        /* The statements ran as one implicit transaction, so none took
         * effect: the server may still carry another client's settings, and
         * this client would run without its own. Neither may go on. */
        char msg[300];
        snprintf(msg, sizeof msg, "cannot apply the session's settings on a server connection: %s",
                 res->message);
        log_warning("%s", msg);
        if (c) {
            c->server = NULL;
            sv->client = NULL;
            client_fail(c, res->sqlstate ? res->sqlstate : "08006", msg, NULL);
        }
        server_close(sv, "applying session settings failed");
        return;
    }
    if (c)
        client_server_ready(c);
}

static void link_client(client_t *c, server_t *sv)
{
    epoch_assert(!c->server && !sv->client && sv->inflight == 0);
    pool_cancel_wait(c);
    c->server = sv;
    sv->client = c;
    server_set_state(sv, SV_ACTIVE);
    if (c->wait_start_ns) {
        uint64_t waited = uv_hrtime() - c->wait_start_ns;
        metrics_observe(MH_POOL_WAIT, (double)waited / 1e9);
        metrics_db_add(c->startup.database, (uint64_t[MD_FIELDS]){[MD_WAIT_US] = waited / 1000});
        c->wait_start_ns = 0;
    } else {
        metrics_observe(MH_POOL_WAIT, 0);
    }
    char *sql;
    if (!replay_sync_sql(c, sv, &sql)) {
        client_fail(c, "53200", "out of memory", NULL);
        return;
    }
    if (sql) {
        bool ok = server_internal(sv, sql, link_done, NULL);
        free(sql);
        if (!ok)
            client_fail(c, "53200", "out of memory", NULL);
        return;
    }
    client_server_ready(c);
}

static void start_server_if_needed(pool_t *p)
{
    const config_t *cfg = worker_config(p->w);
    int waiting = 0;
    list_node_t *n, *tmp;
    list_for_each_safe(n, tmp, &p->waiting) waiting++;
    if (waiting > p->n_connecting && p->n_servers < cfg->pool_size &&
        p->w->shutdown_mode == SHUTDOWN_NONE) {
        if (!server_connect(p->w, p, NULL))
            log_error("out of memory opening a server connection");
    }
}

void pool_acquire(client_t *c)
{
    pool_t *p = c->pool;
    if (c->server || c->state == CL_CLOSING)
        return;
    if (!list_empty(&p->idle)) {
        /* LIFO: the most recently used server has warm caches; the ones at
         * the head age out through server_idle_timeout */
        server_t *sv = list_entry(p->idle.prev, server_t, node);
        list_remove(&sv->node);
        link_client(c, sv);
        return;
    }
    if (!list_linked(&c->wait)) {
        list_append(&p->waiting, &c->wait);
        c->wait_start_ns = uv_hrtime();
        client_wait_timer(c, true);
    }
    start_server_if_needed(p);
}

void pool_cancel_wait(client_t *c)
{
    if (list_linked(&c->wait))
        list_remove(&c->wait);
    client_wait_timer(c, false);
}

void pool_server_available(server_t *sv)
{
    pool_t *p = sv->pool;
    if (!p || sv->state == SV_CLOSING)
        return;
    if (!sv->counted_ready) {
        sv->counted_ready = true;
        p->n_connecting--;
    }
    if (p->w->shutdown_mode != SHUTDOWN_NONE && list_empty(&p->waiting)) {
        server_close(sv, "shutting down");
        return;
    }
    if (!list_empty(&p->waiting)) {
        client_t *c = list_entry(p->waiting.next, client_t, wait);
        link_client(c, sv);
        return;
    }
    server_set_state(sv, SV_IDLE);
    sv->idle_since_ms = worker_now_ms(p->w);
    list_append(&p->idle, &sv->node);
}

/* The ROLLBACK of a transaction its client left open. It undoes only that
 * transaction: the settings the client committed before stay on the server
 * (dirty_owner still says whose they are). */
static void rollback_done(server_t *sv, void *arg, const internal_result_t *res)
{
    (void)arg;
    if (!res->ok) {
        server_close(sv, "rollback failed");
        return;
    }
    if (sv->iq_head)
        return; /* the DISCARD ALL of session pooling is still queued */
    pool_server_available(sv);
}

/* Session pooling: DISCARD ALL brought the server back to its login state. */
static void discard_done(server_t *sv, void *arg, const internal_result_t *res)
{
    (void)arg;
    if (!res->ok) {
        server_close(sv, "reset failed");
        return;
    }
    sv->dirty_owner = 0;
    pool_server_available(sv);
}

void pool_release(client_t *c, bool client_leaving)
{
    server_t *sv = c->server;
    if (!sv)
        return;
    const config_t *cfg = worker_config(c->w);
    c->server = NULL;
    sv->client = NULL;
    cancel_set_backend(c->cancel_pid, 0, 0);
    bool busy =
        sv->inflight > 0 || c->in_copy_in || c->unsynced || sv->iq_head || sv->state != SV_ACTIVE;
    if (busy || c->w->shutdown_mode == SHUTDOWN_FAST) {
        /* a request is still running: nobody else may get this connection */
        server_close(sv, "released with a request in flight");
        return;
    }
    if (cfg->pool_mode == POOL_SESSION || sv->tx_status != 'I') {
        bool ok = true;
        if (sv->tx_status != 'I')
            ok = server_internal(sv, "ROLLBACK", rollback_done, NULL);
        if (ok && cfg->pool_mode == POOL_SESSION)
            ok = server_internal(sv, "DISCARD ALL", discard_done, NULL);
        if (!ok)
            server_close(sv, "out of memory");
        return;
    }
    (void)client_leaving;
    pool_server_available(sv);
}

void pool_server_gone(server_t *sv, const char *login_error)
{
    pool_t *p = sv->pool;
    p->n_servers--;
    if (!sv->counted_ready) {
        sv->counted_ready = true;
        p->n_connecting--;
    }
    list_remove(&sv->node);
    if (login_error && p->n_connecting == 0) {
        /* nobody else is coming: the waiting clients get the reason now */
        list_node_t *n, *tmp;
        list_for_each_safe(n, tmp, &p->waiting)
        {
            client_t *c = list_entry(n, client_t, wait);
            pool_cancel_wait(c);
            client_fail(c, "08006", login_error, NULL);
        }
        return;
    }
    start_server_if_needed(p);
}

void pool_close_idle(worker_t *w, double idle_timeout)
{
    uint64_t now = worker_now_ms(w);
    list_node_t *pn, *ptmp;
    list_for_each_safe(pn, ptmp, &w->pools)
    {
        pool_t *p = list_entry(pn, pool_t, node);
        list_node_t *n, *tmp;
        list_for_each_safe(n, tmp, &p->idle)
        {
            server_t *sv = list_entry(n, server_t, node);
            if (idle_timeout <= 0 || now - sv->idle_since_ms >= (uint64_t)(idle_timeout * 1000))
                server_close(sv, "idle timeout");
        }
    }
}

void pool_free_all(worker_t *w)
{
    list_node_t *n, *tmp;
    list_for_each_safe(n, tmp, &w->pools)
    {
        pool_t *p = list_entry(n, pool_t, node);
        list_remove(&p->node);
        free(p->user);
        free(p->database);
        free(p);
    }
}
