/*
 * state — a client's session state (private to src/session): the catalog
 * the rewriter reads, what the session is doing (its phase), the schema's
 * known state, and the bookkeeping of plan reuse and command tags.
 *
 * Allocated at the first statement that needs it (session_state()), owned
 * through the client's hook state, freed by the release hook.
 */
#ifndef EPOCH_SESSION_STATE_H
#define EPOCH_SESSION_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "branch/catalog.h"
#include "wire/conn_api.h"

/* Server-side statements the proxy keeps per passthrough connection for
 * plan reuse; beyond this, statements go as plain queries. */
#define MAX_PREPARED 256
/* Rewritten unnamed statements kept as named ones per connection. */
#define MAX_UNNAMED 256
/* Tag fixes pending at once (pipelined writes); beyond, tags are not fixed
 * (logged). */
#define MAX_FIXES 256

/* What the session is doing. Changed only by session_set_phase(). */
typedef enum {
    PHASE_IDLE,   /* nothing queued for the session */
    PHASE_BUSY,   /* internal statements queued: the client's message waits */
    PHASE_FAILED, /* one of them failed: answer the held message with err_* */
} session_phase_t;

/* What the session knows of the epoch schema in its database. */
typedef enum {
    SCHEMA_UNKNOWN,       /* not checked: migrate (or probe) before relying on it */
    SCHEMA_CURRENT_IN_TX, /* current inside the open transaction only (a rollback may undo it) */
    SCHEMA_CURRENT,       /* current */
} schema_state_t;

/* A prepared statement or portal whose Execute needs its tag fixed ('U' or
 * 'D'), or '-' for none. */
typedef struct named_kind {
    char *name;
    char kind;
} named_kind_t;

typedef struct session_state {
    uint64_t client_id; /* for the log and to find the client again */
    session_phase_t phase;
    schema_state_t schema;
    catalog_t cat;
    char *view;           /* rewrite cache key of cat (see rewrite/cache.h); NULL = not loaded */
    bool stale;           /* reload the catalog before the next statement that needs it */
    bool stale_at_tx_end; /* the branch changed inside a transaction: reload at its end */
    int timed;            /* MH_COMMIT or MH_MERGE: the statement in flight calls it (0: none) */
    uint64_t timed_start; /* uv_hrtime() when it was sent */
    uint64_t gen;         /* the worker's catalog generation at the load */
    uint64_t branch_gen;  /* the branch ids the worker had been notified of then (load.c) */
    uint64_t loaded_ms;   /* when that load was queued (worker clock) */
    internal_cb_t after_probe; /* the load's own callback, while the probe checks the version */
    char *cache_key;           /* the session's key in the worker's catalog cache (NULL: not yet) */
    bool settings_changed;     /* a statement changed what the catalog depends on (search_path,
                                  epoch.branch, …): its loads are not the startup's, not cached */
    bool from_cache;           /* the rows being stored came from the cache */
    uint64_t ddl_gen;          /* catalog_cache_ddl_gen() at the load */
    bool ddl_in_tx;            /* the open transaction ran DDL: seen again when it ends */
    char *validated;           /* SET target that exists; the SET may now go through */
    char *setup_done;          /* setup of the held statement ran (COPY FROM's staging table) */
    char err_state[6];         /* the first failed internal statement's SQLSTATE; "" = none */
    char *err_msg;             /* and its message (NULL when even that ran out of memory) */
    bool warned_path;          /* the search-path warning was sent */
    /* plan reuse (plan_reuse.c) */
    /* the three tables below are allocated at their first entry (MAX_*
     * entries): a session that never needs them costs ~700 bytes, not 11 kB
     * (10,000 idle clients, issue 15) */
    uint64_t *prepared; /* statement names (hashes) prepared on the server */
    int n_prepared;
    /* The client's unnamed statement, when rewritten, is parsed once per
     * connection as "_epoch_u<gen>" (PostgreSQL plans the overlay at every
     * Bind of an unnamed statement otherwise); Bind/Describe of "" are
     * renamed to it while mapped_gen != 0. */
    struct unnamed_stmt {
        uint64_t hash;
        uint32_t gen;
    } *unnamed;
    int n_unnamed;
    uint32_t next_gen;
    uint32_t mapped_gen;   /* what "" stands for now; 0 = itself */
    uint64_t pending_hash; /* a new one's Parse is in flight: registered on ParseComplete */
    uint32_t pending_gen;
    bool swallow;      /* a converted Query is running: drop its extended replies */
    uint64_t new_stmt; /* statement prepared by that Query (forgotten if it fails) */
    /* CommandComplete tags to put back (UPDATE n / DELETE n for writes sent
     * as INSERTs). Requests are counted in batches, one per ReadyForQuery:
     * a fix applies to the index-th completion of its batch. */
    uint64_t cbatch, sbatch; /* batches sent / answered */
    int cexec;               /* Executes sent in the current batch */
    int scount;              /* completions received in the current batch */
    struct tag_fix {
        uint64_t batch;
        int index;
        char kind;
    } *fixes;
    int nfix;
    named_kind_t *stmts, *portals; /* prepared statements / portals whose Execute needs a fix */
    int nstmts, nportals;
    /* named prepared statements and the ref each was prepared on (named.c) */
    struct named_stmt *named;
    int n_named;
    /* refused Binds and Describes, by marker number % 16 (refuse.c) */
    struct marker_refusal {
        char sqlstate[6];
        char *message;
        const char *hint; /* static text */
    } refusals[16];
    uint32_t next_refusal;
} session_state_t;

/* The client's state, created on first use (NULL = out of memory). */
session_state_t *session_state(client_t *c);
/* The client's state, or NULL when it has none. */
static inline session_state_t *session_of(const client_t *c)
{
    return client_hook_state(c);
}
void session_release(client_t *c);
/* The catalog is loaded (the rewriter can use it). */
static inline bool session_loaded(const session_state_t *ss)
{
    return ss->view != NULL;
}
/* On a branch or reading a ref: every statement goes through the rewriter. */
static inline bool session_on_branch(const session_state_t *ss)
{
    return session_loaded(ss) && (ss->cat.branch_id != 0 || ss->cat.read_only);
}
/* Statements are rewritten: on a branch, or reading a past state of main. */
static inline bool session_rewrites(const session_state_t *ss)
{
    return session_loaded(ss) && (ss->cat.branch_id != 0 || ss->cat.historic);
}
void session_set_phase(session_state_t *ss, session_phase_t phase);
void session_set_schema(session_state_t *ss, schema_state_t schema);
/* Record the first error of an internal statement; the phase becomes
 * FAILED when the session's last queued statement is answered. */
void session_record_error(session_state_t *ss, const char *sqlstate, const char *message);
/* The session's internal statements are all answered: IDLE or FAILED. */
void session_settle(session_state_t *ss);

/* Set (or with kind '-' remove) the kind of a named statement/portal. */
bool named_kind_set(named_kind_t **arr, int *n, const char *name, char kind)
    __attribute__((warn_unused_result));
char named_kind_get(const named_kind_t *arr, int n, const char *name);
bool session_push_fix(session_state_t *ss, uint64_t batch, int index, char kind);

#endif
