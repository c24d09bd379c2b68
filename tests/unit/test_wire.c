/* Unit tests of the wire layer's pure parts: buffers, protocol codec,
 * config parsing, the cancel map and session-state tracking. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "wire/cancel.h"
#include "wire/config.h"
#include "wire/conn.h"
#include "wire/proto.h"

Test(buf, append_consume_and_compact_keep_bytes)
{
    buf_t b = {0};
    char chunk[1000];
    for (int i = 0; i < 100; i++) {
        memset(chunk, 'a' + i % 26, sizeof chunk);
        cr_assert(buf_append(&b, chunk, sizeof chunk));
    }
    cr_assert_eq(buf_avail(&b), 100000);
    buf_consume(&b, 99500);
    cr_assert(buf_reserve(&b, 60000)); /* compacts in place */
    cr_assert_eq(b.off, 0);
    cr_assert_eq(buf_avail(&b), 500);
    cr_assert_eq(buf_head(&b)[0], 'a' + 99 % 26);
    buf_consume(&b, 500);
    cr_assert_eq(b.len, 0);
    buf_free(&b);
}

Test(proto, error_response_layout_and_field_lookup)
{
    buf_t b = {0};
    cr_assert(proto_error(&b, "FATAL", "53300", "too many", "try later"));
    cr_assert_eq(b.data[0], 'E');
    cr_assert_eq(rd_u32(b.data + 1), b.len - 1);
    cr_assert_str_eq(proto_error_field(b.data + 5, b.len - 5, 'C'), "53300");
    cr_assert_str_eq(proto_error_field(b.data + 5, b.len - 5, 'M'), "too many");
    cr_assert_str_eq(proto_error_field(b.data + 5, b.len - 5, 'H'), "try later");
    cr_assert_null(proto_error_field(b.data + 5, b.len - 5, 'D'));
    /* truncated body: no field may be read past the end */
    cr_assert_null(proto_error_field(b.data + 5, 8, 'M'));
    buf_free(&b);
}

static size_t startup_body(char *out, const char *const *kv, int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        strcpy(out + len, kv[i]);
        len += strlen(kv[i]) + 1;
    }
    out[len++] = '\0';
    return len;
}

Test(proto, startup_parses_user_database_and_pq_options)
{
    const char *kv[] = {"user",   "alice", "database",         "shop",
                        "_pq_.x", "1",     "application_name", "psql"};
    char body[256];
    size_t len = startup_body(body, kv, 8);
    startup_t st;
    char err[200];
    cr_assert(startup_parse(&st, PROTO_V3, body, len, err, sizeof err));
    cr_assert_str_eq(st.user, "alice");
    cr_assert_str_eq(st.database, "shop");
    cr_assert_str_eq(st.application_name, "psql");
    cr_assert_eq(st.n_unknown_pq, 1);
    cr_assert_str_eq(st.unknown_pq[0], "_pq_.x");
    startup_free(&st);
}

Test(proto, startup_database_defaults_to_user)
{
    const char *kv[] = {"user", "bob"};
    char body[64];
    size_t len = startup_body(body, kv, 2);
    startup_t st;
    char err[200];
    cr_assert(startup_parse(&st, PROTO_V3, body, len, err, sizeof err));
    cr_assert_str_eq(st.database, "bob");
    startup_free(&st);
}

Test(proto, startup_rejects_bad_layouts)
{
    startup_t st;
    char err[200];
    const char *kv[] = {"database", "x"};
    char body[64];
    size_t len = startup_body(body, kv, 2);
    cr_assert_not(startup_parse(&st, PROTO_V3, body, len, err, sizeof err));
    cr_assert(strstr(err, "user"));
    cr_assert_not(startup_parse(&st, PROTO_V3, "user\0bob", 8, err, sizeof err));
    cr_assert_not(startup_parse(&st, PROTO_V3, "user\0", 6, err, sizeof err));
    const char *rep[] = {"user", "u", "replication", "true"};
    len = startup_body(body, rep, 4);
    cr_assert_not(startup_parse(&st, PROTO_V3, body, len, err, sizeof err));
    cr_assert(strstr(err, "replication"));
}

static char *write_conf(const char *text)
{
    char *path = strdup("/tmp/epoch-test-conf-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

Test(config, file_values_and_command_line_overrides)
{
    char *path = write_conf("[epoch]\nlisten = 127.0.0.1:7000\nbackend = host=127.0.0.1 "
                            "port=5999\nmax_clients = 50\nidle_timeout = 2.5\npool_mode = "
                            "transaction\n");
    char *argv[] = {"epoch-proxy", "--config", path, "--max-clients", "7", "--workers", "3"};
    char err[512];
    config_t *cfg = config_load(7, argv, err, sizeof err);
    cr_assert_not_null(cfg, "%s", err);
    cr_assert_str_eq(cfg->listen_host, "127.0.0.1");
    cr_assert_eq(cfg->listen_port, 7000);
    cr_assert_eq(cfg->backend_port, 5999);
    cr_assert_eq(cfg->max_clients, 7);
    cr_assert_eq(cfg->workers, 3);
    cr_assert_float_eq(cfg->idle_timeout, 2.5, 1e-9);
    cr_assert_eq(cfg->pool_mode, POOL_TRANSACTION);
    unlink(path);
    free(path);
    config_release(cfg);
}

Test(config, default_workers_are_half_the_cores)
{
    char *argv[] = {"epoch-proxy"};
    char err[512];
    config_t *cfg = config_load(1, argv, err, sizeof err);
    cr_assert_not_null(cfg, "%s", err);
    long half = sysconf(_SC_NPROCESSORS_ONLN) / 2;
    cr_assert_eq(cfg->workers, half > 0 ? half : 1);
    config_release(cfg);
}

Test(config, errors_name_the_problem)
{
    char err[512];
    char *path = write_conf("[epoch]\nno_such_key = 1\n");
    char *argv1[] = {"epoch-proxy", "--config", path};
    cr_assert_null(config_load(3, argv1, err, sizeof err));
    cr_assert(strstr(err, "no_such_key"), "%s", err);
    unlink(path);
    free(path);
    char *argv2[] = {"epoch-proxy", "--max_clients", "lots"};
    cr_assert_null(config_load(3, argv2, err, sizeof err));
    cr_assert(strstr(err, "max_clients"), "%s", err);
    char *argv3[] = {"epoch-proxy", "--auth_mode", "userlist"};
    cr_assert_null(config_load(3, argv3, err, sizeof err));
    cr_assert(strstr(err, "auth_file"), "%s", err);
    char *argv4[] = {"epoch-proxy", "--backend", "host=127.0.0.1 sslmode=verify-full"};
    cr_assert_null(config_load(3, argv4, err, sizeof err));
    cr_assert(strstr(err, "sslmode"), "%s", err);
    char *argv5[] = {"epoch-proxy", "--listen"};
    cr_assert_null(config_load(2, argv5, err, sizeof err));
}

Test(cancel, keys_map_to_backend_and_need_the_secret)
{
    uint32_t pid, key, bp, bk;
    cr_assert(cancel_register(&pid, &key));
    cr_assert_not(cancel_lookup(pid, key, &bp, &bk), "no backend attached yet");
    cancel_set_backend(pid, 4242, 77);
    cr_assert(cancel_lookup(pid, key, &bp, &bk));
    cr_assert_eq(bp, 4242);
    cr_assert_eq(bk, 77);
    cr_assert_not(cancel_lookup(pid, key ^ 1, &bp, &bk), "wrong secret must not cancel");
    cancel_unregister(pid);
    cr_assert_not(cancel_lookup(pid, key, &bp, &bk));
    cancel_shutdown();
}

/* ---- session state for transaction pooling ---- */

static void make_client(client_t *c, const char *const *kv, int n)
{
    memset(c, 0, sizeof *c);
    c->id = 7;
    char body[512];
    size_t len = startup_body(body, kv, n);
    char err[200];
    cr_assert(startup_parse(&c->startup, PROTO_V3, body, len, err, sizeof err));
    cr_assert(replay_init(c));
}

static void free_client(client_t *c)
{
    replay_free(c);
    startup_free(&c->startup);
}

static char *sync_sql(client_t *c, server_t *sv)
{
    char *sql;
    cr_assert(replay_sync_sql(c, sv, &sql));
    return sql;
}

/* One Query as PostgreSQL answers it: "E" in `replies` is an ErrorResponse,
 * anything else a CommandComplete tag; then ReadyForQuery with `status`. */
static void exchange(client_t *c, const char *sql, const char *const *replies, int n, char status)
{
    replay_note_query(c, sql, strlen(sql) + 1);
    c->inflight++;
    for (int i = 0; i < n; i++) {
        if (strcmp(replies[i], "E") == 0)
            replay_error(c);
        else
            replay_command_done(c, replies[i]);
    }
    replay_ready(c, status);
    c->inflight--;
}

/* A single statement outside a transaction block (autocommit). */
static void query(client_t *c, const char *sql, const char *tag)
{
    exchange(c, sql, &tag, 1, 'I');
}

/* A single statement inside a transaction block. */
static void in_tx(client_t *c, const char *sql, const char *tag, char status)
{
    exchange(c, sql, &tag, 1, status);
}

static bool has_entry(const client_t *c, const char *stmt)
{
    for (int i = 0; i < c->n_replay; i++)
        if (c->replay[i].stmt && strcmp(c->replay[i].stmt, stmt) == 0)
            return true;
    return false;
}

Test(session, startup_params_become_set_statements_only_when_they_differ)
{
    client_t c;
    const char *kv[] = {"user",
                        "u",
                        "database",
                        "d",
                        "application_name",
                        "app",
                        "options",
                        "-c search_path=s1 --work-mem=8MB"};
    make_client(&c, kv, 8);
    server_t sv;
    memset(&sv, 0, sizeof sv);
    char *sql = sync_sql(&c, &sv);
    cr_assert_not_null(sql);
    cr_assert(strstr(sql, "SET application_name = 'app'"), "%s", sql);
    cr_assert(strstr(sql, "SET search_path = 's1'"), "%s", sql);
    cr_assert(strstr(sql, "SET work_mem = '8MB'"), "%s", sql);
    cr_assert_null(strstr(sql, "RESET ALL"), "a clean server needs no reset: %s", sql);
    free(sql);
    cr_assert_eq(sv.dirty_owner, 7, "the server now carries the client's settings");
    /* the same client again on the same server: nothing to do */
    cr_assert_null(sync_sql(&c, &sv));
    free_client(&c);
}

/* What PostgreSQL would have reported: the value at login and now. */
static void server_reports(server_t *sv, const char *name, const char *login, const char *now)
{
    sv->params = realloc(sv->params, (size_t)(sv->n_params + 1) * sizeof *sv->params);
    cr_assert_not_null(sv->params);
    server_param_t *p = &sv->params[sv->n_params++];
    p->name = strdup(name);
    p->login_value = login ? strdup(login) : NULL;
    p->value = strdup(now);
}

static void free_server_params(server_t *sv)
{
    for (int i = 0; i < sv->n_params; i++) {
        free(sv->params[i].name);
        free(sv->params[i].value);
        free(sv->params[i].login_value);
    }
    free(sv->params);
}

Test(session, reported_param_already_matching_is_skipped)
{
    client_t c;
    const char *kv[] = {"user", "u", "application_name", "pgbench"};
    make_client(&c, kv, 4);
    server_t sv;
    memset(&sv, 0, sizeof sv);
    server_reports(&sv, "application_name", "", "pgbench");
    cr_assert_null(sync_sql(&c, &sv));
    cr_assert_eq(sv.dirty_owner, 0, "nothing applied leaves the server clean");
    free_server_params(&sv);
    free_client(&c);
}

Test(session, reported_params_need_no_reset_between_clients)
{
    client_t a, b, c;
    const char *kva[] = {"user", "u", "application_name", "alice-app"};
    const char *kvb[] = {"user", "u"};
    const char *kvc[] = {"user", "u", "application_name", "alice-app"};
    make_client(&a, kva, 4);
    make_client(&b, kvb, 2);
    make_client(&c, kvc, 4);
    b.id = 8;
    c.id = 9;
    server_t sv;
    memset(&sv, 0, sizeof sv);
    char *sql = sync_sql(&a, &sv);
    cr_assert_str_eq(sql, "SET application_name = 'alice-app';");
    free(sql);
    cr_assert_eq(sv.dirty_owner, 0, "a reported setting is visible: the server stays clean");
    server_reports(&sv, "application_name", "", "alice-app"); /* the SET's ParameterStatus */
    cr_assert_null(sync_sql(&c, &sv), "same application_name: nothing to send");
    sql = sync_sql(&b, &sv);
    cr_assert_str_eq(sql, "RESET application_name;",
                     "b did not send application_name: it gets the login value back");
    free(sql);
    cr_assert_eq(sv.dirty_owner, 0);
    free_server_params(&sv);
    free_client(&a);
    free_client(&b);
    free_client(&c);
}

Test(session, reset_server_compares_reported_params_with_their_login_values)
{
    client_t c;
    const char *kv[] = {"user", "u", "application_name", "app", "options", "-c work_mem=8MB"};
    make_client(&c, kv, 6);
    server_t sv;
    memset(&sv, 0, sizeof sv);
    sv.dirty_owner = 99; /* carries another client's unseen settings */
    server_reports(&sv, "application_name", "app", "other");
    char *sql = sync_sql(&c, &sv);
    cr_assert_str_eq(sql, "SET SESSION AUTHORIZATION DEFAULT;RESET ALL;SET work_mem = '8MB';",
                     "RESET ALL brings application_name back to 'app' already");
    free(sql);
    cr_assert_eq(sv.dirty_owner, 7, "work_mem cannot be seen: the server is dirty for c");
    free_server_params(&sv);
    free_client(&c);
}

Test(session, set_reset_and_reset_all_are_tracked)
{
    client_t c;
    const char *kv[] = {"user", "u"};
    make_client(&c, kv, 2);
    query(&c, "  SET search_path = a, public ;", "SET");
    query(&c, "set statement_timeout to 1000", "SET");
    query(&c, "SET LOCAL work_mem = '1MB'", "SET"); /* transaction-scoped: ignored */
    query(&c, "SET search_path = b", "SET");
    cr_assert_eq(c.n_replay, 2);
    server_t other;
    memset(&other, 0, sizeof other);
    other.dirty_owner = 99; /* carries another client's settings */
    char *sql = sync_sql(&c, &other);
    cr_assert_not_null(sql);
    cr_assert_str_eq(sql, "SET SESSION AUTHORIZATION DEFAULT;RESET ALL;"
                          "set statement_timeout to 1000;SET search_path = b;");
    free(sql);
    cr_assert_eq(other.dirty_owner, 7);
    query(&c, "RESET statement_timeout", "RESET");
    cr_assert_eq(c.n_replay, 1);
    const char *err[] = {"E"};
    exchange(&c, "SET x.y = 1", err, 1, 'I'); /* failed: no CommandComplete */
    cr_assert_eq(c.n_replay, 1);
    query(&c, "SET TIME ZONE 'UTC'", "SET");
    query(&c, "SET timezone = 'Europe/Paris'", "SET"); /* the same setting */
    cr_assert_eq(c.n_replay, 2);
    cr_assert(has_entry(&c, "SET timezone = 'Europe/Paris'"));
    query(&c, "RESET ALL", "RESET");
    cr_assert_eq(c.n_replay, 0);
    free_client(&c);
}

Test(session, set_in_a_multi_statement_query)
{
    client_t c;
    const char *kv[] = {"user", "u"};
    make_client(&c, kv, 2);
    const char *tags[] = {"SELECT 1", "SET", "SELECT 1"};
    exchange(&c, "SELECT 1; SET search_path = app, public; SELECT 2", tags, 3, 'I');
    cr_assert_eq(c.n_replay, 1);
    cr_assert(has_entry(&c, "SET search_path = app, public"));
    const char *two[] = {"SET", "SET"};
    exchange(&c, "SET a.b = 1;;; SET c.d = 2;", two, 2, 'I');
    cr_assert_eq(c.n_replay, 3);
    free_client(&c);
}

Test(session, statements_split_like_postgresql)
{
    client_t c;
    const char *kv[] = {"user", "u"};
    make_client(&c, kv, 2);
    /* semicolons in strings, quoted names, dollar quotes, comments */
    const char *tags[] = {"SELECT 1", "SET"};
    exchange(&c,
             "SELECT ';', \";\", $$;$$, $t$ $$; $t$, E'\\';', $1 /* ; /* ; */ ; */; -- ;\n"
             "SET a.b = 'x;y' -- trailing comment",
             tags, 2, 'I');
    cr_assert(has_entry(&c, "SET a.b = 'x;y'"), "the trailing comment is not replayed");
    /* the body of a BEGIN ATOMIC function is one statement */
    const char *fn[] = {"CREATE FUNCTION", "SET"};
    exchange(&c,
             "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; "
             "SELECT CASE WHEN true THEN 2 END; END; SET c.d = 2",
             fn, 2, 'I');
    cr_assert(has_entry(&c, "SET c.d = 2"));
    cr_assert_eq(c.n_replay, 2);
    free_client(&c);
}

Test(session, set_counts_only_when_its_transaction_commits)
{
    client_t c;
    const char *kv[] = {"user", "u"};
    make_client(&c, kv, 2);
    /* explicit transaction, rolled back */
    in_tx(&c, "BEGIN", "BEGIN", 'T');
    in_tx(&c, "SET statement_timeout = '7s'", "SET", 'T');
    cr_assert_eq(c.n_replay, 0, "not before the transaction ends");
    in_tx(&c, "ROLLBACK", "ROLLBACK", 'I');
    cr_assert_eq(c.n_replay, 0);
    /* committed */
    in_tx(&c, "BEGIN", "BEGIN", 'T');
    in_tx(&c, "SET lock_timeout = '3s'", "SET", 'T');
    in_tx(&c, "COMMIT", "COMMIT", 'I');
    cr_assert_eq(c.n_replay, 1);
    /* failed, then COMMIT (which PostgreSQL answers with ROLLBACK) */
    in_tx(&c, "BEGIN", "BEGIN", 'T');
    in_tx(&c, "SET work_mem = '5MB'", "SET", 'T');
    const char *err[] = {"E"};
    exchange(&c, "SELECT 1/0", err, 1, 'E');
    in_tx(&c, "COMMIT", "ROLLBACK", 'I');
    cr_assert_eq(c.n_replay, 1);
    /* an error undoes the whole implicit transaction of a Query string ... */
    const char *set_err[] = {"SET", "E"};
    exchange(&c, "SET work_mem = '6MB'; SELECT 1/0", set_err, 2, 'I');
    cr_assert_eq(c.n_replay, 1);
    /* ... but not what a COMMIT in it already committed */
    const char *set_commit_err[] = {"SET", "COMMIT", "E"};
    exchange(&c, "SET work_mem = '7MB'; COMMIT; SELECT 1/0", set_commit_err, 3, 'I');
    cr_assert_eq(c.n_replay, 2);
    cr_assert(has_entry(&c, "SET work_mem = '7MB'"));
    free_client(&c);
}

Test(session, savepoints)
{
    client_t c;
    const char *kv[] = {"user", "u"};
    make_client(&c, kv, 2);
    in_tx(&c, "BEGIN", "BEGIN", 'T');
    in_tx(&c, "SET a.a = 1", "SET", 'T');
    in_tx(&c, "SAVEPOINT \"S\"", "SAVEPOINT", 'T');
    in_tx(&c, "SET a.b = 1", "SET", 'T');
    const char *err[] = {"E"};
    exchange(&c, "SELECT 1/0", err, 1, 'E');
    in_tx(&c, "ROLLBACK TO SAVEPOINT \"S\"", "ROLLBACK", 'T'); /* undoes a.b only */
    in_tx(&c, "SAVEPOINT s2", "SAVEPOINT", 'T');
    in_tx(&c, "SET a.c = 1", "SET", 'T');
    in_tx(&c, "RELEASE s2", "RELEASE", 'T'); /* a.c stays */
    in_tx(&c, "COMMIT", "COMMIT", 'I');
    cr_assert_eq(c.n_replay, 2);
    cr_assert(has_entry(&c, "SET a.a = 1"));
    cr_assert(has_entry(&c, "SET a.c = 1"));
    free_client(&c);
}

Test(session, role_survives_reset_all_but_not_discard_all)
{
    client_t c;
    const char *kv[] = {"user", "u"};
    make_client(&c, kv, 2);
    query(&c, "SET ROLE reader", "SET");
    query(&c, "SET work_mem = '5MB'", "SET");
    query(&c, "RESET ALL", "RESET");
    cr_assert_eq(c.n_replay, 1);
    cr_assert(has_entry(&c, "SET ROLE reader"));
    query(&c, "DISCARD ALL", "DISCARD ALL");
    cr_assert_eq(c.n_replay, 0);
    free_client(&c);
}

Test(session, pipelined_queries_and_untracked_requests)
{
    client_t c;
    const char *kv[] = {"user", "u"};
    make_client(&c, kv, 2);
    /* two Queries sent before the first answer */
    replay_note_query(&c, "SET a.b = 1", 12);
    c.inflight++;
    replay_note_query(&c, "SELECT 1", 9);
    c.inflight++;
    replay_command_done(&c, "SET");
    replay_ready(&c, 'I');
    c.inflight--;
    replay_command_done(&c, "SELECT 1");
    replay_ready(&c, 'I');
    c.inflight--;
    cr_assert_eq(c.n_replay, 1);
    /* an extended-protocol Sync in flight first: answers cannot be matched */
    c.inflight = 1;
    replay_note_query(&c, "SET c.d = 1", 12);
    c.inflight++;
    replay_ready(&c, 'I'); /* the Sync's */
    c.inflight--;
    replay_command_done(&c, "SET");
    replay_ready(&c, 'I');
    c.inflight--;
    cr_assert_eq(c.n_replay, 1, "not tracked rather than guessed");
    free_client(&c);
}

Test(session, committed_set_marks_the_server)
{
    client_t c;
    const char *kv[] = {"user", "u"};
    make_client(&c, kv, 2);
    server_t sv;
    memset(&sv, 0, sizeof sv);
    cr_assert_null(sync_sql(&c, &sv), "nothing to apply");
    c.server = &sv;
    query(&c, "SET search_path = app", "SET");
    cr_assert_eq(sv.dirty_owner, 7, "the SET ran on this server: another client needs a reset");
    cr_assert_null(sync_sql(&c, &sv), "and it is already at the client's state");
    c.server = NULL;
    free_client(&c);
}

Test(proto, parse_and_bind_decoders_check_every_string)
{
    /* P: "s1\0SELECT $1\0" + int16 1 + int32 23 */
    const char parse[] = "P\0\0\0\x16s1\0SELECT $1\0\0\x01\0\0\0\x17";
    size_t total = sizeof parse - 1;
    proto_parse_msg_t p;
    cr_assert(proto_parse_decode(parse, total, &p));
    cr_assert_str_eq(p.name, "s1");
    cr_assert_str_eq(p.query, "SELECT $1");
    cr_assert_eq(p.types_len, 6);
    cr_assert_eq(rd_u16(p.types), 1);
    /* cut anywhere inside the two strings: refused, never read past the end */
    for (size_t cut = 5; cut < 5 + 3 + 10; cut++)
        cr_assert_not(proto_parse_decode(parse, cut, &p), "cut at %zu", cut);

    const char bind[] = "B\0\0\0\x14portal\0s1\0\0\0\0\0\0\0";
    proto_bind_msg_t b;
    cr_assert(proto_bind_decode(bind, sizeof bind - 1, &b));
    cr_assert_str_eq(b.portal, "portal");
    cr_assert_str_eq(b.statement, "s1");
    cr_assert_eq(b.rest_len, 6);
    for (size_t cut = 5; cut < 5 + 7 + 3; cut++)
        cr_assert_not(proto_bind_decode(bind, cut, &b), "cut at %zu", cut);
}
