/*
 * The internal-statement API (server_internal) against a real PostgreSQL 15:
 * results, errors, ordering, and that nothing is sent while a client request
 * is in flight. Run by tests/integration/run.py, which starts PostgreSQL and
 * passes EPOCH_TEST_PGPORT / EPOCH_TEST_PGUSER / EPOCH_TEST_PGPASSWORD /
 * EPOCH_TEST_PGDATABASE.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wire/conn.h"

typedef struct seen {
    int calls;
    char order[8];
    bool ok[8];
    char sqlstate[8][6];
    int nrows[8], ncols[8];
    char cells[8][8][32];
    bool null_cell[8][8];
    char tag[8][32];
} seen_t;

static seen_t seen;
static worker_t w;
static config_t *cfg;
static char userlist_path[64];

static void record(server_t *sv, void *arg, const internal_result_t *res)
{
    (void)sv;
    int i = seen.calls++;
    seen.order[i] = (char)(intptr_t)arg;
    seen.ok[i] = res->ok;
    if (!res->ok)
        snprintf(seen.sqlstate[i], 6, "%s", res->sqlstate);
    seen.nrows[i] = res->nrows;
    seen.ncols[i] = res->ncols;
    for (int k = 0; k < res->nrows * res->ncols && k < 8; k++) {
        seen.null_cell[i][k] = res->values[k] == NULL;
        snprintf(seen.cells[i][k], 32, "%s", res->values[k] ? res->values[k] : "");
    }
    snprintf(seen.tag[i], 32, "%s", res->command_tag ? res->command_tag : "");
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    cr_assert_not_null(v, "%s is not set: run through tests/integration/run.py", name);
    return v;
}

/* Wakes the loop at run_until's deadline: UV_RUN_ONCE blocks until some
 * event arrives, and when the awaited thing never happens (that is what
 * waits_while_a_client_request_is_in_flight checks) nothing else would ever
 * wake it. */
static uv_timer_t deadline_timer;

static void deadline_cb(uv_timer_t *t)
{
    (void)t;
}

static void run_until(bool (*done)(void), double seconds)
{
    uint64_t ms = (uint64_t)(seconds * 1000);
    uv_update_time(&w.loop);
    uint64_t deadline = uv_now(&w.loop) + ms;
    uv_timer_start(&deadline_timer, deadline_cb, ms, 0);
    while (!done() && uv_now(&w.loop) < deadline)
        uv_run(&w.loop, UV_RUN_ONCE);
    uv_timer_stop(&deadline_timer);
}

static pool_t *the_pool;
static bool pool_has_idle(void)
{
    return !list_empty(&the_pool->idle);
}
static int wanted_calls;
static bool got_calls(void)
{
    return seen.calls >= wanted_calls;
}
static bool no_servers(void)
{
    return w.n_servers == 0;
}

static server_t *setup(void)
{
    memset(&seen, 0, sizeof seen);
    char backend[128];
    snprintf(backend, sizeof backend, "host=127.0.0.1 port=%s", env("EPOCH_TEST_PGPORT"));
    snprintf(userlist_path, sizeof userlist_path, "/tmp/epoch-internal-XXXXXX");
    int fd = mkstemp(userlist_path);
    cr_assert(fd >= 0);
    dprintf(fd, "\"%s\" \"%s\"\n", env("EPOCH_TEST_PGUSER"), env("EPOCH_TEST_PGPASSWORD"));
    close(fd);
    char *argv[] = {"epoch-proxy", "--backend", backend, "--auth_mode", "userlist", "--auth_file",
                    userlist_path, "--workers", "1"};
    char err[512];
    cfg = config_load(9, argv, err, sizeof err);
    cr_assert_not_null(cfg, "%s", err);
    memset(&w, 0, sizeof w);
    w.cfg = cfg;
    list_init(&w.clients);
    list_init(&w.pools);
    uv_loop_init(&w.loop);
    uv_timer_init(&w.loop, &deadline_timer);
    the_pool = pool_get(&w, env("EPOCH_TEST_PGUSER"), env("EPOCH_TEST_PGDATABASE"));
    cr_assert_not_null(the_pool);
    cr_assert(server_connect(&w, the_pool, NULL));
    run_until(pool_has_idle, 10);
    cr_assert(pool_has_idle(), "server did not log in");
    server_t *sv = list_entry(the_pool->idle.next, server_t, node);
    cr_assert_neq(sv->be_pid, 0, "BackendKeyData was recorded");
    cr_assert_not_null(server_param(sv, "server_version"));
    return sv;
}

static void teardown_all(server_t *sv)
{
    server_close(sv, "test done");
    run_until(no_servers, 5);
    cr_assert_eq(w.n_servers, 0);
    uv_close((uv_handle_t *)&deadline_timer, NULL);
    uv_run(&w.loop, UV_RUN_NOWAIT);
    pool_free_all(&w);
    cr_assert_eq(uv_loop_close(&w.loop), 0, "every handle was closed");
    w.cfg = NULL;
    config_release(cfg);
    unlink(userlist_path);
}

/* .timeout: a hang is reported as a failure instead of stalling the suite */
Test(internal, results_errors_and_order, .timeout = 60)
{
    server_t *sv = setup();
    cr_assert(server_internal(sv, "SELECT 1 AS a, NULL::text AS b UNION ALL SELECT 2, 'x''y'",
                              record, (void *)'a'));
    cr_assert(server_internal(sv, "SELECT 1/0", record, (void *)'b'));
    cr_assert(server_internal(sv, "SET search_path = internal_test; SHOW search_path", record,
                              (void *)'c'));
    cr_assert(server_internal_busy(sv));
    wanted_calls = 3;
    run_until(got_calls, 10);
    cr_assert_eq(seen.calls, 3);
    cr_assert_eq(seen.order[0], 'a');
    cr_assert_eq(seen.order[1], 'b');
    cr_assert_eq(seen.order[2], 'c');
    cr_assert(seen.ok[0]);
    cr_assert_eq(seen.nrows[0], 2);
    cr_assert_eq(seen.ncols[0], 2);
    cr_assert_str_eq(seen.cells[0][0], "1");
    cr_assert(seen.null_cell[0][1]);
    cr_assert_str_eq(seen.cells[0][2], "2");
    cr_assert_str_eq(seen.cells[0][3], "x'y");
    cr_assert_str_eq(seen.tag[0], "SELECT 2");
    cr_assert_not(seen.ok[1]);
    cr_assert_str_eq(seen.sqlstate[1], "22012");
    cr_assert(seen.ok[2], "the connection stays usable after an error");
    cr_assert_str_eq(seen.cells[2][0], "internal_test");
    cr_assert_not(server_internal_busy(sv));
    teardown_all(sv);
}

Test(internal, waits_while_a_client_request_is_in_flight, .timeout = 60)
{
    server_t *sv = setup();
    sv->inflight = 1; /* as if a client's Query were running */
    cr_assert(server_internal(sv, "SELECT 42", record, (void *)'x'));
    wanted_calls = 1;
    run_until(got_calls, 0.3);
    cr_assert_eq(seen.calls, 0, "must not interleave with a client request");
    sv->inflight = 0;
    server_internal_kick(sv);
    run_until(got_calls, 10);
    cr_assert_eq(seen.calls, 1);
    cr_assert_str_eq(seen.cells[0][0], "42");
    teardown_all(sv);
}
