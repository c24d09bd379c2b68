/*
 * epoch-proxy — process start: configuration, signals, worker threads.
 * The main thread owns only the signal handlers; all client traffic runs on
 * the workers (src/wire/worker.c).
 *
 *   SIGTERM  drain: stop accepting, let open transactions finish (up to
 *            shutdown_timeout), then exit
 *   SIGINT   fast shutdown: close every connection now
 *   SIGHUP   re-read the config file; connected clients stay
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <openssl/ssl.h>

#include "wire/cancel.h"
#include "wire/config.h"
#include "common/log.h"
#include "session/session.h"
#include "wire/worker.h"

static uv_signal_t sig_term, sig_int, sig_hup;
static uv_async_t worker_exit;
static const config_t *current; /* the main thread's reference */

static void usage(void)
{
    fputs("usage: epoch-proxy [--config FILE] [--listen HOST:PORT] [--backend CONNINFO]\n"
          "                   [--workers N] [--KEY VALUE ...]\n"
          "Every key of conf/epoch.conf can be given as --key value and overrides the file.\n"
          "Signals: SIGTERM drains, SIGINT stops at once, SIGHUP reloads the config file.\n",
          stdout);
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)h;
    if (signum == SIGHUP) {
        char err[512];
        const config_t *next = config_reload(current, err, sizeof err);
        if (!next) {
            log_error("reload failed, keeping the old configuration: %s", err);
            return;
        }
        log_set_level((log_level_t)next->log_level);
        workers_reload(next); /* each worker takes its own reference */
        config_release(current);
        current = next;
        log_info("configuration reloaded");
        return;
    }
    int mode = signum == SIGTERM ? SHUTDOWN_DRAIN : SHUTDOWN_FAST;
    log_info("%s: %s", signum == SIGTERM ? "SIGTERM" : "SIGINT",
             mode == SHUTDOWN_DRAIN ? "draining (no new clients; open transactions may finish)"
                                    : "fast shutdown");
    workers_shutdown(mode);
}

static void on_worker_exit(uv_async_t *a)
{
    if (workers_finished() < workers_count())
        return;
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_hup, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage();
            return 0;
        }
    signal(SIGPIPE, SIG_IGN);
    char err[512];
    const config_t *cfg = config_load(argc, argv, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "epoch-proxy: %s\n", err);
        return 2;
    }
    current = cfg;
    log_set_level((log_level_t)cfg->log_level);

    uv_loop_t *loop = uv_default_loop();
    uv_async_init(loop, &worker_exit, on_worker_exit);
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_init(loop, &sig_hup);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_start(&sig_hup, on_signal, SIGHUP);

    session_install(); /* the branch layer's hooks, before any client arrives */
    int rc = 0;
    if (!workers_start(cfg, &worker_exit, err, sizeof err)) {
        log_error("%s", err);
        rc = 1;
        if (workers_count() == 0) {
            uv_close((uv_handle_t *)&sig_term, NULL);
            uv_close((uv_handle_t *)&sig_int, NULL);
            uv_close((uv_handle_t *)&sig_hup, NULL);
            uv_close((uv_handle_t *)&worker_exit, NULL);
        }
    } else {
        log_info("epoch-proxy listening on %s:%d (%d workers, backend %s:%d, auth %s)",
                 cfg->listen_host, cfg->listen_port, cfg->workers, cfg->backend_host,
                 cfg->backend_port, cfg->auth_mode == AUTH_USERLIST ? "userlist" : "passthrough");
    }
    uv_run(loop, UV_RUN_DEFAULT);
    workers_free();
    uv_loop_close(loop);
    cancel_shutdown();
    config_release(current); /* the last reference: the workers dropped theirs */
    if (rc == 0)
        log_info("epoch-proxy stopped");
    return rc;
}
