/*
 * worker — one libuv loop on its own thread with its own SO_REUSEPORT
 * listening socket; every connection accepted there stays there. The main
 * thread talks to workers only through an atomic mailbox and uv_async_send:
 * a new config snapshot (SIGHUP) or a shutdown request (SIGTERM/SIGINT).
 */
#ifndef EPOCH_WIRE_WORKER_H
#define EPOCH_WIRE_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "wire/config.h"

/* Create n workers, bind their sockets and start their threads. `on_exit`
 * is sent (uv_async_send) each time a worker's loop has finished. */
bool workers_start(const config_t *cfg, uv_async_t *on_exit, char *err, size_t errcap);
/* Number of workers whose loops have finished. */
int workers_finished(void);
int workers_count(void);
/* Hand a new config snapshot to every worker. */
void workers_reload(const config_t *cfg);
enum { SHUTDOWN_NONE = 0, SHUTDOWN_DRAIN = 1, SHUTDOWN_FAST = 2 };

/* SHUTDOWN_DRAIN (1) or SHUTDOWN_FAST (2). */
void workers_shutdown(int mode);
/* Join the threads and free everything (after all finished). */
void workers_free(void);

#endif
