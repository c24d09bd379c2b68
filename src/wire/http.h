/*
 * http — the HTTP listener of a worker: /health, /ready, /metrics (http.c).
 */
#ifndef EPOCH_WIRE_HTTP_H
#define EPOCH_WIRE_HTTP_H

#include <stddef.h>

#include "wire/config.h"

typedef struct worker worker_t;

/* Listen on cfg's http_listen on w's loop (nothing when it is off); -1 with
 * a message in err. */
int http_listen(worker_t *w, const config_t *cfg, char *err, size_t errcap);

/* Close the listener and every HTTP connection of w (the loop is ending). */
void http_close(worker_t *w);

#endif
