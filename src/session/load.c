/*
 * load — see load.h.
 *
 * Must never: run the migration's DO block when the catalog's 'version' row
 * says the schema is current (it is 44 KB of PL/pgSQL to parse), or LISTEN
 * inside a transaction, whose rollback would undo it.
 */
#include "session/load.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "branch/migrate.h"
#include "session/catalog_cache.h"
#include "common/text.h"
#include "common/log.h"
#include "common/sqlbuf.h"

#define SESSION_SQL "SELECT * FROM epoch._session_current()"

/* Catalog change notifications seen by any server of this worker thread. A
 * connection never leaves its worker, so a thread-local counter is exactly
 * per worker: a session whose catalog was loaded at an older count reloads. */
static _Thread_local uint64_t catalog_gen;

/* Notifications that name branches ("branch:<id>,…": deleted, renamed,
 * rebased; schema step 14) concern only the sessions and cached catalogs of
 * those branches: the worker keeps the last BRANCH_RING ids named, counted
 * by branch_gen; a session that has seen up to `since` is out of date when
 * one of the ids named after it is its branch's (or when too many came to
 * tell). */
#define BRANCH_RING 256
static _Thread_local uint64_t branch_gen;
static _Thread_local int64_t branch_ring[BRANCH_RING];

static bool branch_named_since(int64_t bid, uint64_t since)
{
    if (branch_gen - since > BRANCH_RING)
        return true;
    for (uint64_t k = since; k < branch_gen; k++)
        if (branch_ring[k % BRANCH_RING] == bid)
            return true;
    return false;
}

client_t *session_owner(server_t *sv, void *arg)
{
    client_t *c = server_client(sv);
    if (!c || client_id(c) != (uint64_t)(uintptr_t)arg || !session_of(c) || client_is_closing(c))
        return NULL;
    return c;
}

bool session_queue(client_t *c, const char *sql, internal_cb_t cb)
{
    return server_internal(client_server(c), sql, cb, (void *)(uintptr_t)client_id(c));
}

static void record_result_error(session_state_t *ss, const internal_result_t *res)
{
    session_record_error(ss, res->sqlstate, res->message);
}

static void migrated_cb(server_t *sv, void *arg, const internal_result_t *res)
{
    client_t *c = session_owner(sv, arg);
    if (!c)
        return;
    if (!res->ok) {
        record_result_error(session_of(c), res);
        return;
    }
    /* inside the client's transaction the schema exists until a rollback:
     * trusted for now, checked again (cheaply) once the transaction ends */
    session_set_schema(session_of(c),
                       server_tx_status(sv) != 'I' ? SCHEMA_CURRENT_IN_TX : SCHEMA_CURRENT);
}

bool session_queue_migration(client_t *c)
{
    if (session_of(c)->schema != SCHEMA_UNKNOWN)
        return true;
    const char *sql = migrate_sql(); /* NULL: it could not be built (out of memory) */
    return sql && session_queue(c, sql, migrated_cb);
}

/* Everything a rewrite depends on besides the text. */
static char *view_key(const char *db, const catalog_t *cat)
{
    sqlbuf_t sb = {0};
    sqlbuf_printf(&sb, "%s|%lld|%lld|%lld|%d|%d|%lld", db, (long long)cat->branch_id,
                  (long long)cat->base_seq, (long long)cat->version, cat->read_only, cat->historic,
                  (long long)cat->point);
    for (int i = 0; i < cat->npath; i++)
        sqlbuf_printf(&sb, "|%s", cat->path[i]);
    return sqlbuf_take(&sb);
}

/* A role named like the metadata schema gets it first on the default search
 * path ("$user", public): objects created without a schema would land among
 * epoch's own. Said once per session, as a WARNING. first = the first schema
 * of the path that exists, implicit ones (pg_catalog, pg_temp) left out. */
void session_warn_path(client_t *c, const char *first)
{
    session_state_t *ss = session_of(c);
    if (ss->warned_path || !first || strcmp(first, "epoch") != 0)
        return;
    ss->warned_path = true;
    buf_t b = {0};
    if (!proto_notice(&b, "WARNING", "01000",
                      "schema \"epoch\", where Epoch keeps its metadata, comes first on the "
                      "search path: tables and other objects created without a schema name "
                      "land there",
                      "A role named \"epoch\" matches \"$user\" in the default search path. "
                      "Use a role with another name, or run ALTER ROLE CURRENT_USER SET "
                      "search_path = public (it applies from the next session; SET "
                      "search_path = public for this one).") ||
        !client_send(c, b.data, b.len))
        client_fail(c, "53200", "out of memory", NULL);
    buf_free(&b);
}

static const char *first_schema(const catalog_t *cat)
{
    for (int i = 0; i < cat->npath; i++)
        if (strcmp(cat->path[i], "pg_catalog") != 0 && !HAS_PREFIX(cat->path[i], "pg_temp"))
            return cat->path[i];
    return NULL;
}

void session_catalog_cb(server_t *sv, void *arg, const internal_result_t *res)
{
    client_t *c = session_owner(sv, arg);
    if (!c)
        return;
    session_state_t *ss = session_of(c);
    if (!res->ok) {
        record_result_error(ss, res);
        session_settle(ss);
        return;
    }
    catalog_t cat;
    if (!catalog_load(&cat, res->nrows, res->ncols, res->values)) {
        session_record_error(ss, "XX000", "epoch could not read the session's branch catalog");
        session_settle(ss);
        return;
    }
    char *view = view_key(client_startup(c)->database, &cat);
    if (!view) {
        catalog_free(&cat);
        session_record_error(ss, "53200", "out of memory");
        session_settle(ss);
        return;
    }
    catalog_free(&ss->cat);
    ss->cat = cat;
    free(ss->view);
    ss->view = view;
    ss->stale = false;
    if (!ss->settings_changed && !ss->from_cache) {
        if (!ss->cache_key)
            ss->cache_key = catalog_cache_key(c);
        catalog_cache_put(ss->cache_key, ss->gen, ss->branch_gen, ss->ddl_gen, ss->loaded_ms,
                          &ss->cat, res);
    }
    session_settle(ss);
    session_warn_path(c, first_schema(&ss->cat));
    log_debug("client %llu: branch \"%s\" (id %lld, base %lld, %d tracked tables)",
              (unsigned long long)ss->client_id, cat.branch_name, (long long)cat.branch_id,
              (long long)cat.base_seq, cat.ntables);
}

client_t *session_check_failed(server_t *sv, void *arg, const internal_result_t *res)
{
    client_t *c = session_owner(sv, arg);
    if (!c)
        return NULL;
    session_state_t *ss = session_of(c);
    if (!res->ok)
        record_result_error(ss, res);
    session_settle(ss);
    return res->ok ? NULL : c;
}

static void listen_cb(server_t *sv, void *arg, const internal_result_t *res)
{
    (void)arg;
    if (!res->ok) {
        server_set_listening(sv, false);
        log_info("LISTEN " SESSION_CATALOG_CHANNEL " failed (%s %s): catalog changes made by "
                 "other sessions reach sessions on this connection only through other "
                 "connections",
                 res->sqlstate, res->message);
    }
}

/* Catalog changes of other sessions arrive as notifications (migration 3):
 * LISTEN before loading the catalog, so no change falls between the two.
 * Only outside a transaction, whose rollback would undo the LISTEN. */
static bool queue_listen(client_t *c)
{
    server_t *sv = client_server(c);
    if (server_listening(sv) || server_tx_status(sv) != 'I')
        return true;
    server_set_listening(sv, true);
    return session_queue(c, "LISTEN " SESSION_CATALOG_CHANNEL, listen_cb);
}

bool session_catalog_outdated(const client_t *c, const session_state_t *ss)
{
    if (ss->gen != catalog_gen || branch_named_since(ss->cat.branch_id, ss->branch_gen))
        return true;
    double max_age = client_config(c)->catalog_max_age;
    return max_age > 0 && !ss->cat.ddl_watched && session_on_branch(ss) &&
           (double)(client_now_ms(c) - ss->loaded_ms) > max_age * 1000;
}

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
/* The client of an internal statement queued with after_probe set, and that
 * callback (taken from the session); NULL when the client is gone. */
static client_t *take_after_probe(server_t *sv, void *arg, internal_cb_t *cb)
{
    client_t *c = session_owner(sv, arg);
    if (!c)
        return NULL;
    *cb = session_of(c)->after_probe;
    session_of(c)->after_probe = NULL;
    return c;
}

/* cb's answer when a statement could not even be queued */
static void answer_oom(server_t *sv, void *arg, internal_cb_t cb)
{
    internal_result_t oom = {.sqlstate = "53200", .message = "out of memory"};
    cb(sv, arg, &oom);
}

static void probe_cb(server_t *sv, void *arg, const internal_result_t *res)
{
    internal_cb_t cb;
    client_t *c = take_after_probe(sv, arg, &cb);
    if (!c)
        return;
    session_state_t *ss = session_of(c);
    int64_t version = res->ok ? catalog_schema_version(res->nrows, res->ncols, res->values) : -1;
    if (version == MIGRATE_VERSION || (!res->ok && !schema_missing(res->sqlstate))) {
        session_set_schema(ss, res->ok ? SCHEMA_CURRENT : SCHEMA_UNKNOWN);
        cb(sv, arg, res);
        return;
    }
    if (version > MIGRATE_VERSION) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "the epoch schema in this database is at version %lld, newer than this proxy "
                 "(%d): upgrade epoch-proxy",
                 (long long)version, MIGRATE_VERSION);
        session_record_error(ss, "55000", msg); /* as the DO block would; the catalog still loads */
        cb(sv, arg, res);
        return;
    }
    if (!session_queue_migration(c) || !session_queue(c, SESSION_SQL, cb))
        answer_oom(sv, arg, cb);
}

/* A load (or the check of cached rows) is queued: the session waits, and
 * remembers what it had been told of changes by then. */
static void begin_load(client_t *c)
{
    session_state_t *ss = session_of(c);
    session_set_phase(ss, PHASE_BUSY);
    ss->gen = catalog_gen;
    ss->branch_gen = branch_gen;
    ss->ddl_gen = catalog_cache_ddl_gen();
    ss->loaded_ms = client_now_ms(c);
}

bool session_queue_load(client_t *c, internal_cb_t cb)
{
    session_state_t *ss = session_of(c);
    begin_load(c);
    if (ss->schema == SCHEMA_UNKNOWN && server_tx_status(client_server(c)) == 'I') {
        /* outside a transaction a failing probe has no effect: try it first */
        ss->after_probe = cb;
        return queue_listen(c) && session_queue(c, SESSION_SQL, probe_cb);
    }
    return session_queue_migration(c) && queue_listen(c) && session_queue(c, SESSION_SQL, cb);
}

/* The worker's cached rows for c's session, if still worth checking. */
static const internal_result_t *cached_rows(client_t *c, uint64_t *loaded)
{
    uint64_t since = 0;
    int64_t bid = 0;
    const internal_result_t *rows =
        catalog_cache_get(session_of(c)->cache_key, catalog_gen, client_now_ms(c),
                          client_config(c)->catalog_max_age, loaded, &since, &bid);
    return rows && !branch_named_since(bid, since) ? rows : NULL;
}

/* The check of cached rows (catalog_cache.h): confirmed, they are the
 * session's catalog, as a load's rows would be; otherwise (changed since,
 * or no schema) the catalog is loaded as usual. */
static void cached_cb(server_t *sv, void *arg, const internal_result_t *res)
{
    internal_cb_t cb;
    client_t *c = take_after_probe(sv, arg, &cb);
    if (!c)
        return;
    session_state_t *ss = session_of(c);
    uint64_t loaded = 0;
    const internal_result_t *rows = cached_rows(c, &loaded);
    if (rows && catalog_cache_confirms(rows, res)) {
        session_set_schema(ss, SCHEMA_CURRENT); /* the check read the version: current */
        ss->loaded_ms = loaded;                 /* as old as those rows */
        ss->from_cache = true;
        cb(sv, arg, rows);
        if ((c = session_owner(sv, arg)) != NULL)
            session_of(c)->from_cache = false;
        return;
    }
    ss->after_probe = cb;
    if (!session_queue(c, SESSION_SQL, probe_cb)) {
        ss->after_probe = NULL;
        answer_oom(sv, arg, cb);
    }
}

bool session_queue_login_load(client_t *c, internal_cb_t cb)
{
    session_state_t *ss = session_of(c);
    uint64_t loaded;
    if (!ss->cache_key)
        ss->cache_key = catalog_cache_key(c);
    if (ss->schema != SCHEMA_UNKNOWN || server_tx_status(client_server(c)) != 'I' ||
        !cached_rows(c, &loaded))
        return session_queue_load(c, cb);
    begin_load(c);
    ss->after_probe = cb;
    return queue_listen(c) && session_queue(c, CATALOG_CACHE_CHECK_SQL, cached_cb);
}

bool session_notification(server_t *sv, const char *msg, size_t total)
{
    (void)sv;
    /* Int32 process id, String channel, String payload */
    static const char channel[] = SESSION_CATALOG_CHANNEL;
    if (total < 9 + sizeof channel || memcmp(msg + 9, channel, sizeof channel) != 0)
        return false;
    const char *payload = msg + 9 + sizeof channel, *end = msg + total;
    const char *nul = payload < end ? memchr(payload, '\0', (size_t)(end - payload)) : NULL;
    if (!nul || strncmp(payload, "branch:", 7) != 0) {
        catalog_gen++; /* anything else: every session */
        return true;
    }
    for (const char *p = payload + 7; p < nul;) {
        char *next;
        long long id = strtoll(p, &next, 10);
        if (next == p || (*next != ',' && next != nul)) { /* not a list of ids after all */
            catalog_gen++;
            return true;
        }
        branch_ring[branch_gen++ % BRANCH_RING] = id;
        p = next + (*next == ',');
    }
    return true;
}

void session_command_done(server_t *sv, const char *tag, size_t len)
{
    if (catalog_cache_is_ddl_tag(tag, len)) {
        catalog_cache_ddl_seen();
        client_t *c = server_client(sv);
        if (c && session_of(c) && server_tx_status(sv) != 'I')
            session_of(c)->ddl_in_tx = true; /* and again when it commits */
    }
    if (!server_listening(sv))
        return;
    if (!((len >= sizeof "UNLISTEN" && memcmp(tag, "UNLISTEN", sizeof "UNLISTEN") == 0) ||
          (len >= sizeof "DISCARD ALL" && memcmp(tag, "DISCARD ALL", sizeof "DISCARD ALL") == 0)))
        return;
    server_set_listening(sv, false);
    /* LISTEN again, with a reload, before the session's next statement */
    client_t *c = server_client(sv);
    if (c && session_of(c))
        session_of(c)->stale = true;
}
