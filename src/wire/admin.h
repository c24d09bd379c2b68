/*
 * admin — the admin console (admin.c) and its answers gathered from every
 * worker (admin_collect.c). Private to src/wire.
 */
#ifndef EPOCH_WIRE_ADMIN_H
#define EPOCH_WIRE_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"

typedef struct client client_t;
typedef struct worker worker_t;

/* The database name that is the console. */
#define ADMIN_DATABASE "epoch"

/* c authenticated (superuser: PostgreSQL said so at a passthrough login):
 * start the console, or refuse with 42501. */
void admin_login(client_t *c, bool superuser);
/* The console's messages in c's receive buffer. */
void admin_on_read(client_t *c);

/* ---- result sets (admin.c) ---- */
typedef struct {
    const char *name;
    bool numeric; /* int8, else text */
} admin_col_t;
bool admin_columns(buf_t *b, const admin_col_t *cols, int n);
bool admin_row(buf_t *b, int n, const char *const *values);
/* Send b (RowDescription and rows; ok: built whole) with CommandComplete
 * tag and ReadyForQuery to the console client c, or fail c for want of
 * memory. Frees b. */
void admin_send(client_t *c, buf_t *b, bool ok, const char *tag);
extern uint64_t admin_started_ns; /* uv_hrtime() when the workers started (SHOW STATS) */

/* ---- answers from every worker (admin_collect.c) ---- */
typedef enum {
    ADMIN_CLIENTS,
    ADMIN_SERVERS,
    ADMIN_POOLS,
    ADMIN_BRANCHES,
    ADMIN_PAUSE_CHECK, /* clients of db still busy (closes db's idle pooled servers) */
    ADMIN_RESUME,      /* release the clients of db held by PAUSE */
} admin_kind_t;
/* Ask every worker for its part of kind (db: PAUSE and RESUME's database,
 * "*" = all), answer c when all did. */
void admin_collect(client_t *c, admin_kind_t kind, const char *db);

/* ---- PAUSE and RESUME (admin.c) ---- */
/* Is database db paused (PAUSE db, or PAUSE)? Any thread. */
bool admin_paused(const char *db);
/* The merged answer of a PAUSE_CHECK: busy clients left (admin.c). */
void admin_pause_checked(client_t *c, const char *db, long busy);
/* Client id of worker w, or NULL (it left). */
client_t *admin_client_by_id(worker_t *w, uint64_t id);
/* A worker's wake-up: run the requests posted to it, deliver the answers of
 * its own consoles. */
void admin_wake(worker_t *w);

#endif
