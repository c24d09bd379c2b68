/* worker — see worker.h. */
#include "wire/worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sys/socket.h>

#include "wire/conn.h"
#include "wire/hooks.h"
#include "common/log.h"
#include "wire/admin.h"
#include "wire/http.h"
#include "wire/redis.h"
#include "wire/sweeper.h"
#include "wire/ring.h"

static worker_t *workers;
static int n_workers;
static atomic_int n_finished;
static atomic_int n_clients_total;
static uv_async_t *exit_notify;

const config_t *worker_config(worker_t *w)
{
    return w->cfg;
}

worker_t *worker_at(int i)
{
    return &workers[i];
}

uint64_t worker_now_ms(worker_t *w)
{
    return uv_now(&w->loop);
}

bool worker_admit_client(worker_t *w)
{
    int n = atomic_fetch_add(&n_clients_total, 1) + 1;
    if (n > w->cfg->max_clients) {
        atomic_fetch_sub(&n_clients_total, 1);
        return false;
    }
    return true;
}

int workers_clients(void)
{
    return atomic_load(&n_clients_total);
}

void worker_release_client_slot(void)
{
    atomic_fetch_sub(&n_clients_total, 1);
}

static void on_connection(uv_stream_t *listener, int status)
{
    worker_t *w = listener->data;
    if (status < 0) {
        log_warning("accept: %s", uv_strerror(status));
        return;
    }
    client_accept(w, listener);
}

static void close_listener(worker_t *w)
{
    if (w->listening) {
        w->listening = false;
        uv_close((uv_handle_t *)&w->listener, NULL);
    }
}

static void stop_loop_handles(worker_t *w)
{
    pthread_mutex_lock(&w->admin_lock);
    w->admin_closed = true; /* console requests posted from now on are answered empty */
    pthread_mutex_unlock(&w->admin_lock);
    close_listener(w);
    http_close(w);
    if (w->id == 0)
        sweeper_stop(w);
    redis_stop(w);
    if (!uv_is_closing((uv_handle_t *)&w->wake))
        uv_close((uv_handle_t *)&w->wake, NULL);
    if (!uv_is_closing((uv_handle_t *)&w->tick))
        uv_close((uv_handle_t *)&w->tick, NULL);
}

void worker_check_done(worker_t *w)
{
    if (w->shutdown_mode == SHUTDOWN_NONE || w->n_clients > 0)
        return;
    pool_close_idle(w, 0);
    if (w->n_servers == 0)
        stop_loop_handles(w);
}

static void fast_close(worker_t *w)
{
    list_node_t *n, *tmp;
    list_for_each_safe(n, tmp, &w->clients)
    {
        client_t *c = list_entry(n, client_t, node);
        client_fail(c, "57P01", "terminating connection due to administrator command", NULL);
    }
    pool_close_idle(w, 0);
}

static void begin_shutdown(worker_t *w, int mode)
{
    if (mode <= w->shutdown_mode)
        return;
    w->shutdown_mode = mode;
    close_listener(w);
    if (mode == SHUTDOWN_FAST) {
        fast_close(w);
    } else {
        w->drain_deadline_ms = uv_now(&w->loop) + (uint64_t)(w->cfg->shutdown_timeout * 1000);
        list_node_t *n, *tmp;
        list_for_each_safe(n, tmp, &w->clients)
        {
            client_t *c = list_entry(n, client_t, node);
            if (c->state != CL_ACTIVE)
                client_fail(c, "57P01", "epoch-proxy is shutting down", NULL);
            else
                client_after_ready(c); /* closes it now if it is idle */
        }
    }
    worker_check_done(w);
}

static void on_wake(uv_async_t *a)
{
    worker_t *w = a->data;
    /* the mailbox's reference becomes the worker's; the old snapshot's is
     * dropped (connections copied what they keep of it: config.h) */
    const config_t *next = atomic_exchange(&w->next_cfg, NULL);
    if (next) {
        config_release(w->cfg);
        w->cfg = next;
    }
    admin_wake(w);
    int req = atomic_load(&w->shutdown_req);
    if (req)
        begin_shutdown(w, req);
}

static void on_tick(uv_timer_t *t)
{
    worker_t *w = t->data;
    if (w->shutdown_mode == SHUTDOWN_DRAIN && uv_now(&w->loop) >= w->drain_deadline_ms) {
        log_info("worker %d: shutdown_timeout reached, closing %d remaining client(s)", w->id,
                 w->n_clients);
        begin_shutdown(w, SHUTDOWN_FAST);
        return;
    }
    if (w->cfg->server_idle_timeout > 0)
        pool_close_idle(w, w->cfg->server_idle_timeout);
    redis_refresh_cancel_keys(w);
    sweeper_tick(w);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    char err[160];
    if (w->cfg->io == IO_URING && ring_init(4096, stream_ring_complete, err, sizeof err)) {
        ring_run(&w->loop);
    } else {
        if (w->cfg->io == IO_URING)
            log_info("worker %d: io_uring unavailable (%s); socket I/O through libuv", w->id, err);
        uv_run(&w->loop, UV_RUN_DEFAULT);
    }
    wire_hooks()->worker_exit();
    atomic_fetch_add(&n_finished, 1);
    uv_async_send(exit_notify);
    return NULL;
}

int worker_listen(worker_t *w, uv_tcp_t *h, bool *opened, const char *key, const char *host,
                  int port, uv_connection_cb cb, char *err, size_t errcap)
{
    struct sockaddr_storage addr;
    int family = AF_INET;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0) {
        if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0) {
            snprintf(err, errcap, "%s: \"%s\" is not a numeric IPv4 or IPv6 address", key, host);
            return -1;
        }
        family = AF_INET6;
    }
    int rc = uv_tcp_init_ex(&w->loop, h, (unsigned)family);
    if (rc) {
        snprintf(err, errcap, "socket: %s", uv_strerror(rc));
        return -1;
    }
    *opened = true; /* the caller closes it from now on */
    h->data = w;
    uv_os_fd_t fd;
    uv_fileno((uv_handle_t *)h, &fd);
    /* libuv 1.44 has no flag for SO_REUSEPORT: set it before bind, so every
     * worker gets its own accept queue and the kernel spreads connections */
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        snprintf(err, errcap, "SO_REUSEPORT: %s", strerror(errno));
        return -1;
    }
    rc = uv_tcp_bind(h, (const struct sockaddr *)&addr, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)h, 1024, cb);
    if (rc) {
        snprintf(err, errcap, "cannot listen on %s:%d: %s", host, port, uv_strerror(rc));
        return -1;
    }
    return 0;
}

static int bind_listener(worker_t *w, const config_t *cfg, char *err, size_t errcap)
{
    return worker_listen(w, &w->listener, &w->listening, "listen", cfg->listen_host,
                         cfg->listen_port, on_connection, err, errcap);
}

/* SO_REUSEPORT would let a second proxy share the port silently: probe it
 * first with a plain socket, which fails while anyone listens there. */
static bool port_is_free(const char *host, int port, char *err, size_t errcap)
{
    struct sockaddr_storage addr;
    int family = AF_INET;
    socklen_t len = sizeof(struct sockaddr_in);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0) {
        if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0)
            return true; /* bind_listener reports the bad address */
        family = AF_INET6;
        len = sizeof(struct sockaddr_in6);
    }
    int fd = socket(family, SOCK_STREAM, 0);
    if (fd < 0)
        return true;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* TIME_WAIT is fine */
    bool ok = bind(fd, (struct sockaddr *)&addr, len) == 0;
    int e = errno;
    close(fd);
    if (!ok)
        snprintf(err, errcap, "cannot listen on %s:%d: %s%s", host, port, strerror(e),
                 e == EADDRINUSE ? " (is another epoch-proxy running?)" : "");
    return ok || e != EADDRINUSE;
}

bool workers_start(const config_t *cfg, uv_async_t *on_exit, char *err, size_t errcap)
{
    if (!port_is_free(cfg->listen_host, cfg->listen_port, err, errcap) ||
        (cfg->http_host && !port_is_free(cfg->http_host, cfg->http_port, err, errcap)))
        return false;
    exit_notify = on_exit;
    admin_started_ns = uv_hrtime(); /* before any thread reads it */
    n_workers = cfg->workers;
    workers = calloc((size_t)n_workers, sizeof *workers);
    if (!workers) {
        snprintf(err, errcap, "out of memory");
        return false;
    }
    for (int i = 0; i < n_workers; i++) {
        worker_t *w = &workers[i];
        w->id = i;
        w->cfg = config_acquire(cfg);
        list_init(&w->clients);
        list_init(&w->pools);
        list_init(&w->http_conns);
        pthread_mutex_init(&w->admin_lock, NULL);
        uv_loop_init(&w->loop);
        uv_async_init(&w->loop, &w->wake, on_wake);
        w->wake.data = w;
        uv_timer_init(&w->loop, &w->tick);
        w->tick.data = w;
        uv_timer_start(&w->tick, on_tick, 1000, 1000);
        if (bind_listener(w, cfg, err, errcap) != 0 || http_listen(w, cfg, err, errcap) != 0)
            goto fail;
        redis_start(w);
    }
    for (int i = 0; i < n_workers; i++) {
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
            snprintf(err, errcap, "cannot start worker thread");
            /* started ones are told to stop; main waits for them */
            for (int j = 0; j < i; j++) {
                atomic_store(&workers[j].shutdown_req, SHUTDOWN_FAST);
                uv_async_send(&workers[j].wake);
            }
            for (int j = i; j < n_workers; j++)
                config_release(workers[j].cfg);
            n_workers = i;
            return false;
        }
    }
    return true;
fail:
    /* no thread runs yet: close the loops here */
    for (int i = 0; i < n_workers; i++) {
        worker_t *w = &workers[i];
        if (!w->loop.data && !w->wake.data)
            continue;
        stop_loop_handles(w);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
    }
    for (int i = 0; i < n_workers; i++)
        config_release(workers[i].cfg); /* NULL for those not reached */
    free(workers);
    workers = NULL;
    n_workers = 0;
    return false;
}

int workers_finished(void)
{
    return atomic_load(&n_finished);
}

int workers_count(void)
{
    return n_workers;
}

void workers_reload(const config_t *cfg)
{
    for (int i = 0; i < n_workers; i++) {
        /* one reference per mailbox; a snapshot the worker has not picked
         * up yet (two SIGHUPs within one of its callbacks) is dropped here */
        const config_t *pending = atomic_exchange(&workers[i].next_cfg, config_acquire(cfg));
        config_release(pending);
        uv_async_send(&workers[i].wake);
    }
}

void workers_shutdown(int mode)
{
    for (int i = 0; i < n_workers; i++) {
        int cur = atomic_load(&workers[i].shutdown_req);
        if (mode > cur)
            atomic_store(&workers[i].shutdown_req, mode);
        uv_async_send(&workers[i].wake);
    }
}

void workers_free(void)
{
    for (int i = 0; i < n_workers; i++) {
        pthread_join(workers[i].thread, NULL);
        pool_free_all(&workers[i]);
        uv_loop_close(&workers[i].loop);
        config_release(atomic_exchange(&workers[i].next_cfg, NULL));
        config_release(workers[i].cfg);
        workers[i].cfg = NULL;
    }
    free(workers);
    workers = NULL;
    n_workers = 0;
}
