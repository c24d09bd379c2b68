/*
 * branch_session — per-client branch state and the statement hook.
 *
 * Life of a statement on a branch: branch_on_message() gets the client's
 * Query or Parse before it is forwarded; if the session's catalog is stale it
 * queues internal statements (migration, epoch._session_current()) and
 * returns BRANCH_WAIT, and the client's stream stays paused until they are
 * answered; then the rewriter decides, and the hook forwards the original,
 * sends a rewritten message, or refuses.
 *
 * Refusals are sent to PostgreSQL as a DO block that raises the error, so
 * the client gets an ordinary ErrorResponse in protocol order and an open
 * transaction is aborted exactly as a failing statement would abort it.
 *
 * Must never: forward a statement on a branch that the rewriter has not
 * accepted, or run an internal statement while the client has extended-
 * protocol messages in flight without a Sync (their replies would mix).
 */
#include "wire/branch_session.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "branch/catalog.h"
#include "branch/migrate.h"
#include "rewrite/cache.h"
#include "rewrite/lexer.h"
#include "rewrite/rewrite.h"
#include "wire/conn.h"
#include "wire/log.h"

#include <xxhash.h>

/* Server-side statements the proxy keeps per passthrough connection for
 * plan reuse; beyond this, statements go as plain queries. */
#define MAX_PREPARED 256
/* Rewritten unnamed statements kept as named ones per connection. */
#define MAX_UNNAMED 256
/* Tag fixes pending at once (pipelined writes); beyond, writes are refused. */
#define MAX_FIXES 256

struct branch_state {
    catalog_t cat;
    char *view;          /* rewrite cache key of cat (see rewrite/cache.h) */
    bool loaded;         /* cat holds the session's current view */
    bool refresh;        /* reload before the next statement that needs it */
    bool tx_dirty;       /* the branch changed inside a transaction: reload at its end */
    uint64_t gen;        /* worker's catalog_gen when the catalog was (re)loaded */
    uint64_t loaded_ms;  /* when that load was queued (worker clock) */
    bool busy;           /* internal statements queued for us */
    char *validated;     /* SET target that exists; the SET may now go through */
    char *setup_done;    /* setup of the held statement ran (COPY FROM's staging table) */
    bool migrated;       /* the epoch schema is known to be current in this session's database */
    bool migrated_in_tx; /* … but only inside the open transaction */
    internal_cb_t after_probe; /* the load's own callback, while probe_cb checks the version */
    bool has_err;              /* an internal statement failed: answer the held message */
    bool warned_path;          /* the search-path warning was sent */
    uint64_t prepared[MAX_PREPARED]; /* statement names (hashes) prepared on the server */
    int n_prepared;
    /* The client's unnamed statement, when rewritten, is parsed once per
     * connection as "_epoch_u<gen>" (PostgreSQL plans the overlay at every
     * Bind of an unnamed statement otherwise); Bind/Describe of "" are
     * renamed to it while mapped_gen != 0. */
    struct unnamed_stmt {
        uint64_t hash;
        uint32_t gen;
    } unnamed[MAX_UNNAMED];
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
    } fixes[MAX_FIXES];
    int nfix;
    struct named_kind {
        char *name;
        char kind;
    } * stmts, *portals; /* prepared statements / portals whose Execute needs a fix */
    int nstmts, nportals;
    char err_state[6];
    char *err_msg;
};

static struct branch_state *state(client_t *c)
{
    if (!c->br) {
        c->br = calloc(1, sizeof *c->br);
        if (c->br)
            c->br->cbatch = (uint64_t)c->inflight; /* answers already owed */
    }
    return c->br;
}

static void kinds_free(struct named_kind *k, int n)
{
    for (int i = 0; i < n; i++)
        free(k[i].name);
    free(k);
}

/* Set (or with kind '-' remove) the kind of a named statement/portal. */
static bool kind_set(struct named_kind **arr, int *n, const char *name, char kind)
{
    for (int i = 0; i < *n; i++)
        if (strcmp((*arr)[i].name, name) == 0) {
            if (kind == '-') {
                free((*arr)[i].name);
                (*arr)[i] = (*arr)[--*n];
            } else {
                (*arr)[i].kind = kind;
            }
            return true;
        }
    if (kind == '-')
        return true;
    struct named_kind *grown = realloc(*arr, (size_t)(*n + 1) * sizeof *grown);
    if (!grown)
        return false;
    *arr = grown;
    grown[*n].name = strdup(name);
    if (!grown[*n].name)
        return false;
    grown[(*n)++].kind = kind;
    return true;
}

static char kind_get(const struct named_kind *arr, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(arr[i].name, name) == 0)
            return arr[i].kind;
    return '-';
}

static bool push_fix(struct branch_state *br, uint64_t batch, int index, char kind)
{
    if (br->nfix == MAX_FIXES)
        return false;
    br->fixes[br->nfix++] = (struct tag_fix){batch, index, kind};
    return true;
}

void branch_free(client_t *c)
{
    struct branch_state *br = c->br;
    if (!br)
        return;
    catalog_free(&br->cat);
    free(br->view);
    free(br->validated);
    free(br->setup_done);
    kinds_free(br->stmts, br->nstmts);
    kinds_free(br->portals, br->nportals);
    free(br->err_msg);
    free(br);
    c->br = NULL;
}

/* ---- startup ---- */

bool branch_startup(client_t *c, char *err, size_t errcap)
{
    startup_t *st = &c->startup;
    const char *at = st->database ? strchr(st->database, '@') : NULL;
    if (!at)
        return true;
    if (at == st->database || !at[1]) {
        snprintf(err, errcap, "invalid database name \"%.100s\": use dbname@branch", st->database);
        return false;
    }
    /* rebuild the parameter list: database without the branch, plus
     * epoch.branch (unless options already set one, which then wins) */
    size_t cap = st->params_len + 32;
    char *params = malloc(cap);
    if (!params) {
        snprintf(err, errcap, "out of memory");
        return false;
    }
    size_t len = 0, pos = 0;
    const char *name, *value;
    bool has_param = false;
    const char *branch = at + 1;
    while (startup_next(st, &pos, &name, &value)) {
        size_t vlen = strlen(value);
        if (value == st->database)
            vlen = (size_t)(at - st->database);
        has_param |= strcmp(name, "epoch.branch") == 0;
        memcpy(params + len, name, strlen(name) + 1);
        len += strlen(name) + 1;
        memcpy(params + len, value, vlen);
        len += vlen;
        params[len++] = '\0';
    }
    if (!has_param) {
        size_t need = len + sizeof "epoch.branch" + strlen(branch) + 2;
        if (need > cap) {
            char *grown = realloc(params, need);
            if (!grown) {
                free(params);
                snprintf(err, errcap, "out of memory");
                return false;
            }
            params = grown;
        }
        memcpy(params + len, "epoch.branch", sizeof "epoch.branch");
        len += sizeof "epoch.branch";
        memcpy(params + len, branch, strlen(branch) + 1);
        len += strlen(branch) + 1;
    }
    params[len++] = '\0';
    /* re-point the parsed fields into the new list */
    startup_t fresh;
    char perr[200];
    if (!startup_parse(&fresh, st->version, params, len, perr, sizeof perr)) {
        free(params);
        snprintf(err, errcap, "%s", perr);
        return false;
    }
    free(params);
    startup_free(st);
    *st = fresh;
    return true;
}

bool branch_wanted_at_login(const client_t *c)
{
    size_t pos = 0;
    const char *name, *value;
    while (startup_next(&c->startup, &pos, &name, &value))
        if (strncmp(name, "epoch.", 6) == 0 ||
            (strcmp(name, "options") == 0 && strstr(value, "epoch.")))
            return true;
    return false;
}

/* ---- internal statements ---- */

/* The client an internal statement was queued for, if still the same. */
static client_t *owner(server_t *sv, void *arg)
{
    client_t *c = sv->client;
    if (!c || c->id != (uint64_t)(uintptr_t)arg || !c->br || c->state == CL_CLOSING)
        return NULL;
    return c;
}

static void set_error(struct branch_state *br, const internal_result_t *res)
{
    if (br->has_err)
        return;
    br->has_err = true;
    snprintf(br->err_state, sizeof br->err_state, "%s", res->sqlstate ? res->sqlstate : "XX000");
    free(br->err_msg);
    br->err_msg = strdup(res->message ? res->message : "internal statement failed");
}

static void migrated_cb(server_t *sv, void *arg, const internal_result_t *res)
{
    client_t *c = owner(sv, arg);
    if (!c)
        return;
    if (!res->ok) {
        set_error(c->br, res);
        return;
    }
    /* inside the client's transaction the schema exists until a rollback:
     * trusted for now, checked again (cheaply) once the transaction ends */
    c->br->migrated = true;
    c->br->migrated_in_tx = sv->tx_status != 'I';
}

/* Everything a rewrite depends on besides the text. */
static char *view_key(const char *db, const catalog_t *cat)
{
    char *key = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&key, &len);
    if (!f)
        return NULL;
    fprintf(f, "%s|%lld|%lld|%lld|%d", db, (long long)cat->branch_id, (long long)cat->base_seq,
            (long long)cat->version, cat->read_only);
    for (int i = 0; i < cat->npath; i++)
        fprintf(f, "|%s", cat->path[i]);
    fclose(f);
    return key;
}

/* A role named like the metadata schema gets it first on the default search
 * path ("$user", public): objects created without a schema would land among
 * epoch's own. Said once per session, as a WARNING. first = the first schema
 * of the path that exists, implicit ones (pg_catalog, pg_temp) left out. */
static void warn_path(client_t *c, const char *first)
{
    struct branch_state *br = c->br;
    if (br->warned_path || !first || strcmp(first, "epoch") != 0)
        return;
    br->warned_path = true;
    buf_t b = {0};
    if (!proto_notice(&b, "WARNING", "01000",
                      "schema \"epoch\", where Epoch keeps its metadata, comes first on the "
                      "search path: tables and other objects created without a schema name "
                      "land there",
                      "A role named \"epoch\" matches \"$user\" in the default search path. "
                      "Use a role with another name, or run ALTER ROLE CURRENT_USER SET "
                      "search_path = public (it applies from the next session; SET "
                      "search_path = public for this one).") ||
        !stream_write(&c->st, b.data, b.len))
        client_fail(c, "53200", "out of memory", NULL);
    buf_free(&b);
}

static const char *first_schema(const catalog_t *cat)
{
    for (int i = 0; i < cat->npath; i++)
        if (strcmp(cat->path[i], "pg_catalog") != 0 && strncmp(cat->path[i], "pg_temp", 7) != 0)
            return cat->path[i];
    return NULL;
}

static void session_cb(server_t *sv, void *arg, const internal_result_t *res)
{
    client_t *c = owner(sv, arg);
    if (!c)
        return;
    struct branch_state *br = c->br;
    br->busy = false;
    if (!res->ok) {
        set_error(br, res);
        return;
    }
    catalog_t cat;
    if (!catalog_load(&cat, res->nrows, res->ncols, res->values)) {
        internal_result_t bad = {.sqlstate = "XX000",
                                 .message = "epoch could not read the session's branch catalog"};
        set_error(br, &bad);
        return;
    }
    catalog_free(&br->cat);
    br->cat = cat;
    br->loaded = true;
    free(br->view);
    br->view = view_key(c->startup.database, &br->cat);
    br->refresh = false;
    warn_path(c, first_schema(&br->cat));
    log_debug("client %llu: branch \"%s\" (id %lld, base %lld, %d tracked tables)",
              (unsigned long long)c->id, cat.branch_name, (long long)cat.branch_id,
              (long long)cat.base_seq, cat.ntables);
}

/* An internal statement that only has to succeed. Returns the client when
 * it failed (the held message is then answered with its error), so the
 * caller can forget the step it was for and start over next time. */
static client_t *check_failed(server_t *sv, void *arg, const internal_result_t *res)
{
    client_t *c = owner(sv, arg);
    if (!c)
        return NULL;
    c->br->busy = false;
    if (res->ok)
        return NULL;
    set_error(c->br, res);
    return c;
}

static void validate_cb(server_t *sv, void *arg, const internal_result_t *res)
{
    client_t *c = check_failed(sv, arg, res);
    if (c) {
        free(c->br->validated);
        c->br->validated = NULL;
    }
}

/* After the migration a main session needed: the first schema of its path. */
static void schema_cb(server_t *sv, void *arg, const internal_result_t *res)
{
    if (check_failed(sv, arg, res))
        return;
    client_t *c = owner(sv, arg);
    if (c && res->nrows == 1 && res->ncols == 1)
        warn_path(c, res->values[0]);
}

static void setup_cb(server_t *sv, void *arg, const internal_result_t *res)
{
    client_t *c = check_failed(sv, arg, res);
    if (c) {
        free(c->br->setup_done);
        c->br->setup_done = NULL;
    }
}

static bool queue(client_t *c, const char *sql, internal_cb_t cb)
{
    return server_internal(c->server, sql, cb, (void *)(uintptr_t)c->id);
}

static bool queue_migration(client_t *c)
{
    if (c->br->migrated)
        return true;
    return queue(c, migrate_sql(), migrated_cb);
}

static void listen_cb(server_t *sv, void *arg, const internal_result_t *res)
{
    (void)arg;
    if (!res->ok) {
        sv->listening = false;
        log_info("LISTEN " BRANCH_CATALOG_CHANNEL " failed (%s %s): catalog changes made by other "
                 "sessions reach sessions on this connection only through other connections",
                 res->sqlstate, res->message);
    }
}

/* Catalog changes of other sessions arrive as notifications (migration 3):
 * LISTEN before loading the catalog, so no change falls between the two.
 * Only outside a transaction, whose rollback would undo the LISTEN. */
static bool queue_listen(client_t *c)
{
    server_t *sv = c->server;
    if (sv->listening || sv->tx_status != 'I')
        return true;
    sv->listening = true;
    return queue(c, "LISTEN " BRANCH_CATALOG_CHANNEL, listen_cb);
}

/* Another session changed the catalog since it was loaded (notified), or
 * DDL may have: without DDL notifications (epoch.watch_ddl() needs a
 * superuser), a branch session reloads a catalog older than catalog_max_age,
 * so views and other DDL of other sessions show within that time. */
static bool catalog_outdated(client_t *c)
{
    const struct branch_state *br = c->br;
    if (br->gen != c->w->catalog_gen)
        return true;
    double max_age = worker_config(c->w)->catalog_max_age;
    return max_age > 0 && !br->cat.ddl_watched && (br->cat.branch_id != 0 || br->cat.read_only) &&
           (double)(worker_now_ms(c->w) - br->loaded_ms) > max_age * 1000;
}

#define SESSION_SQL "SELECT * FROM epoch._session_current()"

/* The schema is missing or older than the 'version' row (migration 7). */
static bool schema_missing(const char *sqlstate)
{
    return sqlstate && (strcmp(sqlstate, "3F000") == 0 || /* schema epoch does not exist */
                        strcmp(sqlstate, "42883") == 0 || /* no _session_current() */
                        strcmp(sqlstate, "42P01") == 0);  /* no epoch.meta */
}

/* The catalog load that doubles as the schema check: when its 'version' row
 * says current, the migration DO block is skipped; otherwise (schema missing
 * or older) the migration runs and the catalog is loaded again. */
static void probe_cb(server_t *sv, void *arg, const internal_result_t *res)
{
    client_t *c = owner(sv, arg);
    if (!c)
        return;
    struct branch_state *br = c->br;
    internal_cb_t cb = br->after_probe;
    br->after_probe = NULL;
    int64_t version = res->ok ? catalog_schema_version(res->nrows, res->ncols, res->values) : -1;
    if (version == MIGRATE_VERSION || (!res->ok && !schema_missing(res->sqlstate))) {
        br->migrated = res->ok;
        cb(sv, arg, res);
        return;
    }
    if (version > MIGRATE_VERSION) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "the epoch schema in this database is at version %lld, newer than this proxy "
                 "(%d): upgrade epoch-proxy",
                 (long long)version, MIGRATE_VERSION);
        internal_result_t newer = {.sqlstate = "55000", .message = msg};
        set_error(br, &newer); /* as the DO block would; the catalog still loads */
        cb(sv, arg, res);
        return;
    }
    if (!queue(c, migrate_sql(), migrated_cb) || !queue(c, SESSION_SQL, cb)) {
        internal_result_t oom = {.sqlstate = "53200", .message = "out of memory"};
        cb(sv, arg, &oom);
    }
}

/* Queue the (re)load of the session's catalog. */
static bool queue_load(client_t *c, internal_cb_t cb)
{
    struct branch_state *br = c->br;
    br->busy = true;
    br->gen = c->w->catalog_gen;
    br->loaded_ms = worker_now_ms(c->w);
    if (!br->migrated && c->server->tx_status == 'I') {
        /* outside a transaction a failing probe has no effect: try it first */
        br->after_probe = cb;
        return queue_listen(c) && queue(c, SESSION_SQL, probe_cb);
    }
    return queue_migration(c) && queue_listen(c) && queue(c, SESSION_SQL, cb);
}

static bool queue_refresh(client_t *c)
{
    return queue_load(c, session_cb);
}

bool branch_catalog_notification(server_t *sv, const char *msg, size_t total)
{
    /* Int32 process id, String channel, String payload */
    static const char channel[] = BRANCH_CATALOG_CHANNEL;
    if (total < 9 + sizeof channel || memcmp(msg + 9, channel, sizeof channel) != 0)
        return false;
    sv->w->catalog_gen++;
    return true;
}

void branch_note_unlisten(server_t *sv, const char *tag, size_t len)
{
    if (!sv->listening)
        return;
    if (!((len >= 9 && memcmp(tag, "UNLISTEN", 9) == 0) ||
          (len >= 12 && memcmp(tag, "DISCARD ALL", 12) == 0)))
        return;
    sv->listening = false;
    /* LISTEN again, with a reload, before the session's next statement */
    if (sv->client && sv->client->br)
        sv->client->br->refresh = true;
}

/* SET, RESET and DISCARD depend on no catalog: they go through even when it
 * cannot be reloaded (the way out of a branch another session deleted). */
static bool is_setting(const char *sql)
{
    size_t p = lex_skip_blank(sql, 0), n = lex_name_end(sql, p) - p;
    return (n == 3 && strncasecmp(sql + p, "set", 3) == 0) ||
           (n == 5 && strncasecmp(sql + p, "reset", 5) == 0) ||
           (n == 7 && strncasecmp(sql + p, "discard", 7) == 0);
}

/* ---- login ---- */

static void login_cb(server_t *sv, void *arg, const internal_result_t *res)
{
    session_cb(sv, arg, res);
    client_t *c = owner(sv, arg);
    if (!c)
        return;
    struct branch_state *br = c->br;
    if (br->has_err) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s", br->err_msg ? br->err_msg : "branch check failed");
        client_fail(c, br->err_state, msg,
                    "Connect to an existing branch (dbname@branch), or to main and create it "
                    "with SELECT epoch.branch_create('name').");
        return;
    }
    client_login_finish(c);
}

void branch_check_login(client_t *c)
{
    struct branch_state *br = state(c);
    if (!br) {
        client_fail(c, "53200", "out of memory", NULL);
        return;
    }
    if (!queue_load(c, login_cb))
        client_fail(c, "53200", "out of memory", NULL);
}

/* ---- answering ---- */

/* ", LABEL = 'text'" inside the DO block below: text holding the
 * dollar-quote tag would end the block early, so the tag is defused. */
static bool raise_field(buf_t *b, const char *label, const char *text)
{
    char *safe = strdup(text);
    if (!safe)
        return false;
    for (char *p = safe; (p = strstr(p, "$epoch_refuse$")) != NULL;)
        *p = '?';
    bool ok = buf_append(b, ", ", 2) && buf_append(b, label, strlen(label)) &&
              buf_append(b, " = ", 3) && proto_quote_literal(b, safe);
    free(safe);
    return ok;
}

/* A statement that raises the given error inside PostgreSQL. */
static bool raise_sql(buf_t *b, const char *sqlstate, const char *message, const char *hint,
                      const char *detail)
{
    bool ok = buf_append(b, "DO $epoch_refuse$BEGIN RAISE EXCEPTION USING ERRCODE = ", 55) &&
              proto_quote_literal(b, sqlstate) && raise_field(b, "MESSAGE", message);
    if (ok && detail)
        ok = raise_field(b, "DETAIL", detail);
    if (ok && hint)
        ok = raise_field(b, "HINT", hint);
    return ok && buf_append(b, "; END$epoch_refuse$", 20);
}

/* Send a Query (sql) or a Parse with sql in place of the client's message. */
static bool send_replacement(client_t *c, const char *msg, size_t total, const char *sql)
{
    server_t *sv = c->server;
    buf_t b = {0};
    bool ok;
    if (msg[0] == 'Q') {
        ok = proto_query(&b, sql);
        if (ok && sv->pool && worker_config(c->w)->pool_mode == POOL_TRANSACTION)
            session_note_query(c, sql, strlen(sql) + 1);
        if (ok) {
            c->inflight++;
            sv->inflight++;
            c->br->cbatch++;
            c->br->cexec = 0;
        }
    } else {
        /* Parse: name, query, then the parameter types (kept as they are) */
        const char *body = msg + 5, *end = msg + total;
        const char *name_end = memchr(body, 0, (size_t)(end - body));
        const char *q_end = name_end ? memchr(name_end + 1, 0, (size_t)(end - name_end - 1)) : NULL;
        size_t start;
        ok = q_end && buf_msg_begin(&b, 'P', &start) &&
             buf_append(&b, body, (size_t)(name_end - body) + 1) && buf_put_str(&b, sql) &&
             buf_append(&b, q_end + 1, (size_t)(end - q_end - 1));
        if (ok)
            buf_msg_end(&b, start);
        c->unsynced = true;
    }
    ok = ok && stream_write(&sv->st, b.data, b.len);
    buf_free(&b);
    return ok;
}

static bool send_refusal(client_t *c, const char *msg, size_t total, const char *sqlstate,
                         const char *message, const char *hint, const char *detail)
{
    buf_t b = {0};
    bool ok = raise_sql(&b, sqlstate, message, hint, detail) && buf_append(&b, "", 1);
    char *copy = NULL;
    if (ok && msg[0] == 'P') {
        /* the DO block uses no parameter: unspecified types (0) would fail
         * the Parse with 42P18 before our error; declare them text */
        copy = malloc(total);
        ok = copy != NULL;
        if (ok) {
            memcpy(copy, msg, total);
            const char *name_end = memchr(copy + 5, 0, total - 5);
            char *q_end =
                name_end ? memchr(name_end + 1, 0, total - (size_t)(name_end + 1 - copy)) : NULL;
            if (q_end && (size_t)(q_end + 3 - copy) <= total) {
                int n = rd_u16(q_end + 1);
                char *types = q_end + 3;
                for (int i = 0; i < n && (size_t)(types + 4 * (i + 1) - copy) <= total; i++)
                    if (rd_u32(types + 4 * i) == 0)
                        wr_u32(types + 4 * i, 25);
            }
            msg = copy;
        }
    }
    ok = ok && send_replacement(c, msg, total, b.data);
    free(copy);
    buf_free(&b);
    return ok;
}

/* An internal statement failed for this message: tell the client. For a
 * simple Query, nothing else is in flight (internal statements run only
 * then), so the error and ReadyForQuery can be written directly. */
static branch_hook_t answer_error(client_t *c, const char *msg, size_t total)
{
    struct branch_state *br = c->br;
    br->has_err = false;
    br->refresh = true; /* whatever failed, do not trust the catalog */
    const char *m = br->err_msg ? br->err_msg : "epoch internal statement failed";
    if (msg[0] == 'Q') {
        buf_t b = {0};
        c->tx_status = c->server->tx_status;
        bool ok = proto_error(&b, "ERROR", br->err_state, m, NULL) &&
                  proto_ready(&b, c->tx_status) && stream_write(&c->st, b.data, b.len);
        buf_free(&b);
        if (!ok) {
            client_fail(c, "53200", "out of memory", NULL);
            return BRANCH_DONE;
        }
        stream_flush(&c->st);
        client_after_ready(c);
        return BRANCH_DONE;
    }
    if (!send_refusal(c, msg, total, br->err_state, m, NULL, NULL))
        client_fail(c, "53200", "out of memory", NULL);
    return BRANCH_DONE;
}

/* ---- plan reuse ---- */

/* PostgreSQL's own typing of a numeric constant: int4, int8 or numeric. */
static uint32_t numeric_type(const char *lit)
{
    for (const char *p = lit; *p; p++)
        if (!isdigit((unsigned char)*p))
            return 1700; /* numeric: has a point or an exponent */
    size_t n = strlen(lit);
    if (n < 10 || (n == 10 && strcmp(lit, "2147483647") <= 0))
        return 23;
    if (n < 19 || (n == 19 && strcmp(lit, "9223372036854775807") <= 0))
        return 20;
    return 1700;
}

static bool is_prepared(const struct branch_state *br, uint64_t h)
{
    for (int i = 0; i < br->n_prepared; i++)
        if (br->prepared[i] == h)
            return true;
    return false;
}

static void forget_prepared(struct branch_state *br, uint64_t h)
{
    for (int i = 0; i < br->n_prepared; i++)
        if (br->prepared[i] == h) {
            br->prepared[i] = br->prepared[--br->n_prepared];
            return;
        }
}

/* A rewritten single SELECT with numeric constants only, on a passthrough
 * connection with nothing else in flight: run it as a named prepared
 * statement (Parse once per connection, then Bind/Execute), so PostgreSQL
 * plans the overlay once instead of on every call. The extra replies
 * (ParseComplete, BindComplete, CloseComplete, NoData) are dropped by
 * branch_server_message, so the client sees what a simple Query returns.
 * false = not applicable (nothing sent). */
static bool send_prepared(client_t *c, const rw_template_t *tp, const char *view, bool *oom)
{
    struct branch_state *br = c->br;
    server_t *sv = c->server;
    *oom = false;
    if (sv->pool || c->inflight > 0 || c->unsynced || !tp->sql || tp->first != 1 ||
        tp->nlits == 0 || tp->nlits > 100)
        return false;
    for (int i = 0; i < tp->nlits; i++)
        if (!isdigit((unsigned char)tp->lits[i][0]))
            return false; /* a '...' constant: its type depends on context */
    XXH3_state_t *st = XXH3_createState();
    if (!st) {
        *oom = true;
        return false;
    }
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, view, strlen(view) + 1);
    XXH3_64bits_update(st, tp->sql, strlen(tp->sql));
    for (int i = 0; i < tp->nlits; i++) { /* 1 and 1.07 are different statements */
        uint32_t type = numeric_type(tp->lits[i]);
        XXH3_64bits_update(st, &type, sizeof type);
    }
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    bool known = is_prepared(br, h);
    if (!known && br->n_prepared == MAX_PREPARED)
        return false;
    char name[32];
    snprintf(name, sizeof name, "_epoch_%016llx", (unsigned long long)h);
    buf_t b = {0};
    size_t start;
    bool ok = true;
    if (!known) {
        /* Close first: a failed earlier attempt may have left it behind */
        ok = buf_msg_begin(&b, 'C', &start) && buf_put_u8(&b, 'S') && buf_put_str(&b, name);
        if (ok)
            buf_msg_end(&b, start);
        ok = ok && buf_msg_begin(&b, 'P', &start) && buf_put_str(&b, name) &&
             buf_put_str(&b, tp->sql) && buf_put_i16(&b, (int16_t)tp->nlits);
        for (int i = 0; ok && i < tp->nlits; i++)
            ok = buf_put_i32(&b, (int32_t)numeric_type(tp->lits[i]));
        if (ok)
            buf_msg_end(&b, start);
    }
    ok = ok && buf_msg_begin(&b, 'B', &start) && buf_put_str(&b, "") && buf_put_str(&b, name) &&
         buf_put_i16(&b, 0) && buf_put_i16(&b, (int16_t)tp->nlits);
    for (int i = 0; ok && i < tp->nlits; i++) {
        size_t l = strlen(tp->lits[i]);
        ok = buf_put_i32(&b, (int32_t)l) && buf_append(&b, tp->lits[i], l);
    }
    ok = ok && buf_put_i16(&b, 0);
    if (ok)
        buf_msg_end(&b, start);
    ok = ok && buf_msg_begin(&b, 'D', &start) && buf_put_u8(&b, 'P') && buf_put_str(&b, "");
    if (ok)
        buf_msg_end(&b, start);
    ok = ok && buf_msg_begin(&b, 'E', &start) && buf_put_str(&b, "") && buf_put_i32(&b, 0);
    if (ok)
        buf_msg_end(&b, start);
    ok = ok && buf_msg_begin(&b, 'S', &start);
    if (ok)
        buf_msg_end(&b, start);
    ok = ok && stream_write(&sv->st, b.data, b.len);
    buf_free(&b);
    if (!ok) {
        *oom = true;
        return false;
    }
    if (!known)
        br->prepared[br->n_prepared++] = h;
    br->new_stmt = known ? 0 : h;
    br->swallow = true;
    br->cbatch++;
    br->cexec = 0;
    c->inflight++;
    sv->inflight++;
    return true;
}

/* A rewritten Parse of the unnamed statement, first in its batch, on a
 * passthrough connection: the first time, Parse it under a name of ours;
 * afterwards, Parse an empty unnamed statement instead (for the client's
 * ParseComplete) and let Bind/Describe use ours. false = not applicable. */
static bool send_unnamed(client_t *c, const char *msg, size_t total, const char *sql, bool *oom)
{
    struct branch_state *br = c->br;
    server_t *sv = c->server;
    *oom = false;
    const char *body = msg + 5, *end = msg + total;
    const char *q_end = body[0] == '\0' ? memchr(body + 1, 0, (size_t)(end - body - 1)) : NULL;
    if (!q_end || sv->pool || c->inflight > 0 || c->unsynced || c->tx_status == 'E')
        return false;
    const char *types = q_end + 1;
    size_t types_len = (size_t)(end - types);
    XXH3_state_t *st = XXH3_createState();
    if (!st) {
        *oom = true;
        return false;
    }
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, br->view, strlen(br->view) + 1);
    XXH3_64bits_update(st, sql, strlen(sql) + 1);
    XXH3_64bits_update(st, types, types_len);
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    uint32_t gen = 0;
    for (int i = 0; i < br->n_unnamed && !gen; i++)
        if (br->unnamed[i].hash == h)
            gen = br->unnamed[i].gen;
    if (!gen && br->n_unnamed == MAX_UNNAMED)
        return false;
    char name[32];
    buf_t b = {0};
    size_t start;
    bool ok = buf_msg_begin(&b, 'P', &start);
    if (gen) {
        ok = ok && buf_put_str(&b, "") && buf_put_str(&b, "") && buf_put_i16(&b, 0);
    } else {
        gen = ++br->next_gen; /* never reused: no clash with one we lost track of */
        snprintf(name, sizeof name, "_epoch_u%u", gen);
        ok =
            ok && buf_put_str(&b, name) && buf_put_str(&b, sql) && buf_append(&b, types, types_len);
        br->pending_hash = h;
        br->pending_gen = gen;
    }
    if (ok)
        buf_msg_end(&b, start);
    ok = ok && stream_write(&sv->st, b.data, b.len);
    buf_free(&b);
    if (!ok) {
        br->pending_gen = 0;
        *oom = true;
        return false;
    }
    br->mapped_gen = gen;
    c->unsynced = true;
    return true;
}

bool branch_rename_unnamed(client_t *c, const char *msg, size_t total, buf_t *out)
{
    struct branch_state *br = c->br;
    if (!br || !br->mapped_gen)
        return false;
    const char *body = msg + 5, *end = msg + total;
    char name[32];
    snprintf(name, sizeof name, "_epoch_u%u", br->mapped_gen);
    size_t start;
    if (msg[0] == 'D') {
        if (total != 7 || body[0] != 'S' || body[1] != '\0')
            return false;
        if (!buf_msg_begin(out, 'D', &start) || !buf_put_u8(out, 'S') || !buf_put_str(out, name))
            return false;
        buf_msg_end(out, start);
        return true;
    }
    /* Bind: portal, statement, then the rest as it is */
    const char *portal_end = memchr(body, 0, (size_t)(end - body));
    if (!portal_end || portal_end + 1 >= end || portal_end[1] != '\0')
        return false;
    if (!buf_msg_begin(out, 'B', &start) ||
        !buf_append(out, body, (size_t)(portal_end - body) + 1) || !buf_put_str(out, name) ||
        !buf_append(out, portal_end + 2, (size_t)(end - portal_end - 2)))
        return false;
    buf_msg_end(out, start);
    return true;
}

/* The tracked table whose delta is named by `"d_<id>"` at p, or NULL. */
static const catalog_table_t *delta_table_at(const catalog_t *cat, const char *p, size_t *len)
{
    if (strncmp(p, "\"d_", 3) != 0)
        return NULL;
    char *end;
    long id = strtol(p + 3, &end, 10);
    if (end == p + 3 || *end != '"')
        return NULL;
    for (int i = 0; i < cat->ntables; i++)
        if (cat->tables[i].id == id) {
            *len = (size_t)(end + 1 - p);
            return &cat->tables[i];
        }
    return NULL;
}

/* Errors raised on a branch's storage name the table the client wrote:
 * `relation "d_3"` becomes `relation "products"`. A missing epoch relation
 * means the catalog changed under the session: reload it. Returns 0 (send
 * as is) or 2 (out holds the rewritten message). */
static int fix_error(struct branch_state *br, const char *msg, size_t total, buf_t *out)
{
    const char *body = msg + 5, *end = msg + total;
    const char *state = proto_error_field(body, total - 5, 'C');
    const char *m = proto_error_field(body, total - 5, 'M');
    if (state && m && strcmp(state, "42P01") == 0 && strstr(m, "epoch."))
        br->refresh = true;
    if (!memmem(body, total - 5, "\"d_", 3) && !memmem(body, total - 5, "d_", 2))
        return 0;
    size_t start;
    if (!buf_msg_begin(out, 'E', &start))
        return 0;
    bool changed = false, ok = true;
    for (const char *p = body; ok && p < end && *p;) {
        char code = *p++;
        const char *val = p;
        const char *nul = memchr(val, 0, (size_t)(end - val));
        if (!nul)
            return 0;
        p = nul + 1;
        ok = buf_put_u8(out, (uint8_t)code);
        if (code == 'n' && strncmp(val, "d_", 2) == 0) {
            char quoted[64];
            snprintf(quoted, sizeof quoted, "\"%s\"", val);
            size_t l;
            const catalog_table_t *t = delta_table_at(&br->cat, quoted, &l);
            if (t && l == strlen(quoted)) {
                ok = ok && buf_put_str(out, t->name);
                changed = true;
                continue;
            }
        }
        if (code == 'D' && strncmp(val, "Failing row contains (", 22) == 0) {
            /* the delta's row: drop the branch id (first) and deleted flag (last) */
            const char *first = val + 22, *digits = first;
            while (*digits >= '0' && *digits <= '9')
                digits++;
            size_t vl = (size_t)(nul - val);
            const char *tail = vl > 27 ? nul - 5 : NULL; /* ", f)." */
            if (digits > first && strncmp(digits, ", ", 2) == 0 && tail &&
                (strcmp(tail, ", f).") == 0 || strcmp(tail, ", t).") == 0)) {
                ok = buf_append(out, val, 22) &&
                     buf_append(out, digits + 2, (size_t)(tail - (digits + 2))) &&
                     buf_append(out, ").", 3);
                changed = true;
                continue;
            }
        }
        if (code == 'M' || code == 'D') {
            for (const char *q = val; ok && q < nul;) {
                size_t l;
                const catalog_table_t *t = *q == '"' ? delta_table_at(&br->cat, q, &l) : NULL;
                if (t) {
                    ok = buf_append(out, "\"", 1) && buf_append(out, t->name, strlen(t->name)) &&
                         buf_append(out, "\"", 1);
                    q += l;
                    changed = true;
                } else {
                    ok = buf_append(out, q, 1);
                    q++;
                }
            }
            ok = ok && buf_append(out, "", 1);
            continue;
        }
        ok = ok && buf_put_str(out, val);
    }
    ok = ok && buf_put_u8(out, 0);
    if (!ok || !changed) {
        buf_reset(out);
        return 0;
    }
    buf_msg_end(out, start);
    return 2;
}

int branch_server_message(client_t *c, const char *msg, size_t total, buf_t *out)
{
    struct branch_state *br = c->br;
    char type = msg[0];
    if (br->pending_gen && (type == '1' || type == 'E' || type == 'Z')) {
        /* the first reply of the batch answers our Parse */
        if (type == '1' && br->n_unnamed < MAX_UNNAMED)
            br->unnamed[br->n_unnamed++] =
                (struct unnamed_stmt){.hash = br->pending_hash, .gen = br->pending_gen};
        else if (br->mapped_gen == br->pending_gen)
            br->mapped_gen = 0;
        br->pending_gen = 0;
    }
    if (br->swallow) {
        switch (type) {
        case '1': /* ParseComplete */
        case '2': /* BindComplete */
        case '3': /* CloseComplete */
        case 'n': /* NoData */
            return 1;
        case 'E':
            if (br->new_stmt)
                forget_prepared(br, br->new_stmt);
            br->new_stmt = 0;
            break;
        case 'Z':
            br->swallow = false;
            br->new_stmt = 0;
            break;
        default:
            break;
        }
    }
    if (type == 'E' && br->loaded)
        return fix_error(br, msg, total, out);
    if (type == 'Z') {
        br->sbatch++;
        br->scount = 0;
        /* fixes of answered batches will never match: drop them */
        int kept = 0;
        for (int i = 0; i < br->nfix; i++)
            if (br->fixes[i].batch >= br->sbatch)
                br->fixes[kept++] = br->fixes[i];
        br->nfix = kept;
        return 0;
    }
    if (type != 'C' && type != 's' && type != 'I')
        return 0;
    int index = br->scount++;
    if (type != 'C' || br->nfix == 0)
        return 0;
    for (int i = 0; i < br->nfix; i++) {
        struct tag_fix *fx = &br->fixes[i];
        if (fx->batch != br->sbatch || fx->index != index)
            continue;
        char kind = fx->kind;
        *fx = br->fixes[--br->nfix];
        /* "INSERT 0 n" -> "UPDATE n" / "DELETE n" */
        const char *tag = msg + 5;
        size_t len = total - 5;
        if (len < 10 || strncmp(tag, "INSERT 0 ", 9) != 0 || tag[len - 1] != '\0')
            return 0;
        size_t start;
        bool ok = buf_msg_begin(out, 'C', &start) &&
                  buf_append(out, kind == 'U' ? "UPDATE " : "DELETE ", 7) &&
                  buf_put_str(out, tag + 9);
        if (!ok)
            return 0;
        buf_msg_end(out, start);
        return 2;
    }
    return 0;
}

void branch_note_client(client_t *c, const char *msg, size_t total)
{
    struct branch_state *br = c->br;
    const char *body = msg + 5, *end = msg + total;
    switch (msg[0]) {
    case 'P':
        if (total > 5 && body[0] == '\0')
            br->mapped_gen = 0; /* the client's own unnamed statement again */
        break;
    case 'Q':
    case 'S':
    case 'F':
        br->cbatch++;
        br->cexec = 0;
        break;
    case 'B': {
        const char *portal_end = memchr(body, 0, (size_t)(end - body));
        const char *stmt_end =
            portal_end ? memchr(portal_end + 1, 0, (size_t)(end - portal_end - 1)) : NULL;
        if (!stmt_end)
            break;
        char kind = kind_get(br->stmts, br->nstmts, portal_end + 1);
        if (!kind_set(&br->portals, &br->nportals, body, kind))
            client_fail(c, "53200", "out of memory", NULL);
        break;
    }
    case 'E': {
        if (!memchr(body, 0, (size_t)(end - body)))
            break;
        char kind = kind_get(br->portals, br->nportals, body);
        if (kind != '-' && !push_fix(br, br->cbatch, br->cexec, kind))
            log_warning("client %llu: too many pipelined branch writes; tags not fixed",
                        (unsigned long long)c->id);
        br->cexec++;
        break;
    }
    case 'C':
        if (total > 6 && memchr(body + 1, 0, (size_t)(end - body - 1))) {
            if (body[0] == 'S' && body[1] == '\0')
                br->mapped_gen = 0;
            if (body[0] == 'S')
                kind_set(&br->stmts, &br->nstmts, body + 1, '-');
            else
                kind_set(&br->portals, &br->nportals, body + 1, '-');
        }
        break;
    default:
        break;
    }
}

/* ---- the hook ---- */

/* Remember which completions of this Query (or which Executes of this
 * Parse's statement) need their tag fixed. */
static bool record_tags(client_t *c, const char *msg, const rw_result_t *r)
{
    struct branch_state *br = c->br;
    if (msg[0] == 'P') {
        char kind = r->action == RW_REWRITTEN && r->tags[0] ? r->tags[0] : '-';
        return kind_set(&br->stmts, &br->nstmts, msg + 5, kind);
    }
    for (int i = 0; r->tags[i]; i++)
        if (r->tags[i] != '-' && !push_fix(br, br->cbatch, i, r->tags[i]))
            return false;
    return true;
}

static const char *statement_text(const char *msg, size_t total)
{
    const char *body = msg + 5, *end = msg + total;
    if (msg[0] == 'Q')
        return total > 5 && end[-1] == '\0' ? body : NULL;
    const char *name_end = memchr(body, 0, (size_t)(end - body));
    if (!name_end || !memchr(name_end + 1, 0, (size_t)(end - name_end - 1)))
        return NULL;
    return name_end + 1;
}

bool branch_untouched(const client_t *c, const char *msg, size_t total)
{
    const char *sql = statement_text(msg, total);
    if (!sql)
        return true; /* malformed: PostgreSQL reports it */
    const struct branch_state *br = c->br;
    bool on_branch = br && br->loaded && (br->cat.branch_id != 0 || br->cat.read_only);
    return !on_branch && !(br && (br->refresh || br->tx_dirty)) &&
           !rewrite_needs_parse(sql, strlen(sql));
}

branch_hook_t branch_on_message(client_t *c, const char *msg, size_t total)
{
    const char *sql = statement_text(msg, total);
    if (!sql || branch_untouched(c, msg, total))
        return BRANCH_FORWARD;
    struct branch_state *br = state(c);
    if (!br) {
        client_fail(c, "53200", "out of memory", NULL);
        return BRANCH_DONE;
    }
    if (br->busy)
        return BRANCH_WAIT;
    if (br->has_err)
        return answer_error(c, msg, total);
    if (msg[0] == 'P' && msg[5] == '\0')
        br->mapped_gen = 0; /* whatever comes of it, "" is no longer ours */
    /* internal statements: never between unsynced extended messages (see
     * "Must never" above), nor in a failed transaction, where they would
     * fail too and the client could not even get its ROLLBACK through */
    if (br->loaded && catalog_outdated(c))
        br->refresh = true;
    bool may_query = !c->unsynced && c->tx_status != 'E';
    if (br->refresh && may_query && !is_setting(sql)) {
        if (!queue_refresh(c))
            client_fail(c, "53200", "out of memory", NULL);
        return c->state == CL_ACTIVE ? BRANCH_WAIT : BRANCH_DONE;
    }
    rw_session_t s = {.cat = br->loaded ? &br->cat : NULL,
                      .on_branch = br->loaded && br->cat.branch_id != 0,
                      .read_only = br->loaded && br->cat.read_only};
    rw_result_t r;
    rw_template_t tp = {0};
    if (br->loaded && br->view)
        rewrite_cached(&s, br->view, sql, &r, msg[0] == 'Q' ? &tp : NULL);
    else
        rewrite_statement(&s, sql, &r);
    if (r.flags & RW_F_DEALLOC) {
        br->n_prepared = 0; /* DISCARD/DEALLOCATE: ours may be gone; Close+Parse again */
        br->n_unnamed = 0;
        br->mapped_gen = 0;
    }
    branch_hook_t ret = BRANCH_DONE;
    bool ok = true;
    if ((r.action == RW_NEED_CATALOG || ((r.flags & RW_F_SCHEMA) && !br->migrated)) &&
        r.action != RW_ERROR) {
        if (!may_query && c->tx_status == 'E') {
            ret = BRANCH_FORWARD; /* PostgreSQL refuses it: the transaction is aborted */
        } else if (!may_query) {
            ok = send_refusal(c, msg, total, "0A000",
                              "epoch must load the branch catalog before this statement, "
                              "but the client has unsynchronised messages in flight",
                              "Send a Sync before this statement.", NULL);
        } else if (r.action == RW_NEED_CATALOG) {
            ok = queue_refresh(c);
            ret = BRANCH_WAIT;
        } else {
            br->busy = true;
            ok = queue_migration(c) && /* schema_cb clears busy once migrated */
                 queue(c, "SELECT (current_schemas(false))[1]", schema_cb);
            ret = BRANCH_WAIT;
        }
        goto out;
    }
    if ((r.action == RW_FORWARD || r.action == RW_REWRITTEN) && !record_tags(c, msg, &r)) {
        ok = false;
        goto out;
    }
    switch (r.action) {
    case RW_FORWARD:
        ret = BRANCH_FORWARD;
        break;
    case RW_REWRITTEN: {
        if (r.setup && msg[0] != 'Q') {
            ok =
                send_refusal(c, msg, total, "0A000",
                             "COPY … FROM on a branch needs the simple query protocol", NULL, NULL);
            break;
        }
        if (r.setup && !(br->setup_done && strcmp(br->setup_done, r.setup) == 0)) {
            if (!may_query) {
                ok = send_refusal(c, msg, total, "0A000",
                                  "COPY … FROM on a branch cannot be pipelined",
                                  "Send a Sync before it.", NULL);
                break;
            }
            free(br->setup_done);
            br->setup_done = strdup(r.setup);
            br->busy = true;
            ok = br->setup_done && queue(c, r.setup, setup_cb);
            ret = BRANCH_WAIT;
            break;
        }
        if (r.setup) {
            free(br->setup_done);
            br->setup_done = NULL;
        }
        bool oom = false;
        if (msg[0] == 'Q' && (r.flags & RW_F_PREPARABLE) && send_prepared(c, &tp, br->view, &oom))
            break;
        if (msg[0] == 'P' && (r.flags & RW_F_PREPARABLE) && !oom && br->view &&
            send_unnamed(c, msg, total, r.sql, &oom))
            break;
        ok = !oom && send_replacement(c, msg, total, r.sql);
        break;
    }
    case RW_ERROR:
        ok = send_refusal(c, msg, total, r.sqlstate, r.message ? r.message : "out of memory",
                          r.hint, r.detail);
        break;
    case RW_SET_BRANCH:
        if (msg[0] != 'Q') {
            ok = send_refusal(c, msg, total, "0A000",
                              "SET epoch.branch must be sent with the simple query protocol",
                              "Choose the branch in the connection string (dbname@branch) "
                              "or send SET as a simple query.",
                              NULL);
            break;
        }
        if (br->validated && strcmp(br->validated, r.value) == 0) {
            free(br->validated);
            br->validated = NULL;
            ret = BRANCH_FORWARD; /* PostgreSQL keeps the setting */
            break;
        }
        {
            buf_t q = {0};
            ok = buf_append(&q, "SELECT epoch._branch_id(", 24) &&
                 proto_quote_literal(&q, r.value) && buf_append(&q, ")", 2);
            br->busy = true;
            ok = ok && queue_migration(c) && queue(c, q.data, validate_cb);
            buf_free(&q);
            if (ok) {
                free(br->validated);
                br->validated = strdup(r.value);
                ok = br->validated != NULL;
            }
        }
        ret = BRANCH_WAIT;
        break;
    case RW_NEED_CATALOG:
        break; /* handled above */
    }
    /* a session that never loaded its catalog has nothing to refresh (and
     * must not create the epoch schema because it ran RESET ALL) */
    if (ret != BRANCH_WAIT && (r.flags & RW_F_REFRESH) &&
        (br->loaded || r.action == RW_SET_BRANCH)) {
        br->refresh = true;
        if (c->tx_status != 'I' || r.action == RW_SET_BRANCH)
            br->tx_dirty = true;
    }
out:
    rewrite_result_free(&r);
    rewrite_template_free(&tp);
    if (!ok) {
        client_fail(c, "53200", "out of memory", NULL);
        return BRANCH_DONE;
    }
    return ret;
}

void branch_after_ready(client_t *c)
{
    struct branch_state *br = c->br;
    if (br && br->tx_dirty && c->tx_status == 'I') {
        br->tx_dirty = false;
        br->refresh = true;
    }
    if (br && br->migrated_in_tx && c->tx_status == 'I') {
        br->migrated_in_tx = false;
        br->migrated = false; /* committed or rolled back: look again next time */
    }
}
