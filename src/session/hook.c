/*
 * hook — the statement hook: every Query or Parse of a session that is not
 * on the hot path comes here before it is forwarded.
 *
 * Life of a statement on a branch: if the session's catalog is stale the
 * hook queues internal statements (migration, epoch._session_current()) and
 * answers HOOK_WAIT, and the client's stream stays paused until they are
 * answered; then the rewriter decides, and the hook forwards the original,
 * sends a rewritten message, or refuses.
 *
 * Must never: forward a statement on a branch that the rewriter has not
 * accepted, or run an internal statement while the client has extended-
 * protocol messages in flight without a Sync (their replies would mix).
 */
#include "session/session.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "common/text.h"
#include "common/lexer.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/sqlbuf.h"
#include "rewrite/cache.h"
#include "rewrite/rewrite.h"
#include "session/catalog_cache.h"
#include "session/load.h"
#include "session/login.h"
#include "session/named.h"
#include "session/plan_reuse.h"
#include "session/refuse.h"
#include "session/replies.h"
#include "session/state.h"
#include "wire/hooks.h"

/* The statement text of a 'Q' or a 'P', or NULL when malformed. */
static const char *statement_text(const char *msg, size_t total)
{
    if (msg[0] == 'Q')
        return total > 5 && msg[total - 1] == '\0' ? msg + 5 : NULL;
    proto_parse_msg_t p;
    return proto_parse_decode(msg, total, &p) ? p.query : NULL;
}

/* SET, RESET and DISCARD depend on no catalog: they go through even when it
 * cannot be reloaded (the way out of a branch another session deleted). */
static bool is_setting(const char *sql)
{
    size_t p = lex_skip_blank(sql, 0), n = lex_name_end(sql, p) - p;
    return (WORD_IS_CI(sql + p, n, "set")) || (WORD_IS_CI(sql + p, n, "reset")) ||
           (WORD_IS_CI(sql + p, n, "discard"));
}

/* The text may prepare, execute or drop a named statement (named.c). */
static bool mentions_named(const char *sql, size_t len)
{
    return lex_contains_ci(sql, len, "prepare") || lex_contains_ci(sql, len, "execute") ||
           lex_contains_ci(sql, len, "deallocate") || lex_contains_ci(sql, len, "discard");
}

/* A Bind of a named statement of the client's. */
static bool binds_named(const char *msg, size_t total)
{
    proto_bind_msg_t b;
    return proto_bind_decode(msg, total, &b) && b.statement[0] &&
           !HAS_PREFIX(b.statement, "_epoch_");
}

static bool untouched(const client_t *c, const char *msg, size_t total)
{
    if (msg[0] == 'B') {
        /* a named statement may run only on the ref it was prepared on
         * (named.c): a stale catalog is reloaded before it is checked */
        const session_state_t *ss = session_of(c);
        return !(ss->stale || (session_loaded(ss) && session_catalog_outdated(c, ss))) ||
               !binds_named(msg, total);
    }
    const char *sql = statement_text(msg, total);
    if (!sql)
        return true; /* malformed: PostgreSQL reports it */
    const session_state_t *ss = session_of(c);
    if (!ss)
        return !rewrite_needs_parse(sql, strlen(sql));
    size_t len = strlen(sql);
    return !(session_on_branch(ss) || ss->stale || ss->stale_at_tx_end) &&
           !rewrite_needs_parse(sql, len) && !mentions_named(sql, len);
}

/* Named statements the message prepares (recorded with the session's ref)
 * and executes (refused when prepared on another ref). false = the message
 * was answered (*ok = false when memory ran out). */
static bool check_named(client_t *c, const char *msg, size_t total, const char *sql, bool *ok)
{
    session_state_t *ss = session_of(c);
    proto_parse_msg_t p;
    if (msg[0] == 'P' && proto_parse_decode(msg, total, &p) && !named_prepared(ss, p.name)) {
        *ok = false;
        return false;
    }
    if (!mentions_named(sql, strlen(sql)))
        return true;
    bool any;
    char *refusal = named_scan_query(ss, sql, &any);
    if (!refusal)
        return true;
    *ok = refusal[0] && session_refuse(c, msg, total, NAMED_SQLSTATE, refusal, named_hint(), NULL);
    free(refusal);
    return false;
}

/* After the migration a main session needed: the first schema of its path. */
static void schema_cb(server_t *sv, void *arg, const internal_result_t *res)
{
    if (session_check_failed(sv, arg, res))
        return;
    client_t *c = session_owner(sv, arg);
    if (c && res->nrows == 1 && res->ncols == 1)
        session_warn_path(c, res->values[0]);
}

static void validate_cb(server_t *sv, void *arg, const internal_result_t *res)
{
    client_t *c = session_check_failed(sv, arg, res);
    if (c) {
        free(session_of(c)->validated);
        session_of(c)->validated = NULL;
    }
}

static void setup_cb(server_t *sv, void *arg, const internal_result_t *res)
{
    client_t *c = session_check_failed(sv, arg, res);
    if (c) {
        free(session_of(c)->setup_done);
        session_of(c)->setup_done = NULL;
    }
}

/* The statement needs the catalog loaded, or the epoch schema migrated,
 * first. *ok = false when memory ran out. */
static hook_verdict_t need_catalog(client_t *c, const char *msg, size_t total, const rw_result_t *r,
                                   bool may_query, bool *ok)
{
    session_state_t *ss = session_of(c);
    if (!may_query && client_tx_status(c) == 'E')
        return HOOK_FORWARD; /* PostgreSQL refuses it: the transaction is aborted */
    if (!may_query) {
        *ok = session_refuse(c, msg, total, "0A000",
                             "epoch must load the branch catalog before this statement, "
                             "but the client has unsynchronised messages in flight",
                             "Send a Sync before this statement.", NULL);
        return HOOK_DONE;
    }
    if (r->action == RW_NEED_CATALOG) {
        *ok = session_queue_load(c, session_catalog_cb);
        return HOOK_WAIT;
    }
    session_set_phase(ss, PHASE_BUSY);
    *ok = session_queue_migration(c) && /* schema_cb settles once migrated */
          session_queue(c, "SELECT (current_schemas(false))[1]", schema_cb);
    return HOOK_WAIT;
}

/* Send the rewritten statement: after its setup (COPY FROM's staging
 * table), as a prepared statement where plan reuse applies, else as it is. */
static hook_verdict_t send_rewritten(client_t *c, const char *msg, size_t total,
                                     const rw_result_t *r, const rw_template_t *tp, bool may_query,
                                     bool *ok)
{
    session_state_t *ss = session_of(c);
    if (r->setup && msg[0] != 'Q') {
        *ok = session_refuse(c, msg, total, "0A000",
                             "COPY … FROM on a branch needs the simple query protocol", NULL, NULL);
        return HOOK_DONE;
    }
    if (r->setup && !(ss->setup_done && strcmp(ss->setup_done, r->setup) == 0)) {
        if (!may_query) {
            *ok = session_refuse(c, msg, total, "0A000",
                                 "COPY … FROM on a branch cannot be pipelined",
                                 "Send a Sync before it.", NULL);
            return HOOK_DONE;
        }
        free(ss->setup_done);
        ss->setup_done = strdup(r->setup);
        session_set_phase(ss, PHASE_BUSY);
        *ok = ss->setup_done && session_queue(c, r->setup, setup_cb);
        return HOOK_WAIT;
    }
    if (r->setup) {
        free(ss->setup_done);
        ss->setup_done = NULL;
    }
    bool oom = false;
    if (msg[0] == 'Q' && (r->flags & RW_F_PREPARABLE) && plan_reuse_query(c, tp, &oom))
        return HOOK_DONE;
    if (msg[0] == 'P' && (r->flags & RW_F_PREPARABLE) && !oom &&
        plan_reuse_unnamed(c, msg, total, r->sql, &oom))
        return HOOK_DONE;
    *ok = !oom && session_send_replacement(c, msg, total, r->sql);
    return HOOK_DONE;
}

/* SET epoch.branch / epoch.as_of: the target must exist before PostgreSQL
 * takes the setting (checked with an internal statement; then the SET goes
 * through as it is). */
static hook_verdict_t set_branch(client_t *c, const char *msg, size_t total, const rw_result_t *r,
                                 bool *ok)
{
    session_state_t *ss = session_of(c);
    if (msg[0] != 'Q') {
        *ok = session_refuse(c, msg, total, "0A000",
                             "SET epoch.branch must be sent with the simple query protocol",
                             "Choose the branch in the connection string (dbname@branch) "
                             "or send SET as a simple query.",
                             NULL);
        return HOOK_DONE;
    }
    if (ss->validated && strcmp(ss->validated, r->value) == 0) {
        free(ss->validated);
        ss->validated = NULL;
        return HOOK_FORWARD; /* PostgreSQL keeps the setting */
    }
    sqlbuf_t q = {0};
    if (r->as_of)
        SQLBUF_LIT(&q, "SELECT epoch._ref_branch("); /* any ref (docs/history.md) */
    else
        SQLBUF_LIT(&q, "SELECT epoch._branch_id(");
    sqlbuf_literal(&q, r->value);
    SQLBUF_LIT(&q, ")");
    char *sql = sqlbuf_take(&q);
    session_set_phase(ss, PHASE_BUSY);
    *ok = sql && session_queue_migration(c) && session_queue(c, sql, validate_cb);
    free(sql);
    if (*ok) {
        free(ss->validated);
        ss->validated = strdup(r->value);
        *ok = ss->validated != NULL;
    }
    return HOOK_WAIT;
}

/* Act on the rewriter's decision. */
static hook_verdict_t act(client_t *c, const char *msg, size_t total, const rw_result_t *r,
                          const rw_template_t *tp, bool may_query, bool *ok)
{
    switch (r->action) {
    case RW_FORWARD:
        return HOOK_FORWARD;
    case RW_REWRITTEN:
        return send_rewritten(c, msg, total, r, tp, may_query, ok);
    case RW_ERROR:
        *ok = session_refuse(c, msg, total, r->sqlstate, r->message ? r->message : "out of memory",
                             r->hint, r->detail);
        return HOOK_DONE;
    case RW_SET_BRANCH:
        return set_branch(c, msg, total, r, ok);
    case RW_NEED_CATALOG:
        break; /* handled before */
    }
    epoch_assert(!"rewrite action not handled");
    return HOOK_DONE;
}

/* A Bind whose statement must be checked against a reloaded catalog: load
 * it (the Bind waits), then the rename hook checks the statement. */
static hook_verdict_t bind_statement(client_t *c, const char *msg, size_t total)
{
    session_state_t *ss = session_of(c);
    if (ss->phase == PHASE_BUSY)
        return HOOK_WAIT;
    if (ss->phase == PHASE_FAILED) {
        /* the reload failed: its error answers the Bind, in protocol order */
        char state[6];
        memcpy(state, ss->err_state, sizeof state);
        char *m = ss->err_msg;
        ss->err_state[0] = '\0';
        ss->err_msg = NULL;
        session_set_phase(ss, PHASE_IDLE);
        buf_t b = {0};
        bool ok = session_refuse_by_marker(ss, msg, total, state, m, NULL, &b) &&
                  client_send_extended(c, &b, false);
        buf_free(&b);
        if (!ok)
            client_fail(c, "53200", "out of memory", NULL);
        return HOOK_DONE;
    }
    ss->stale = true;
    if (client_unsynced(c) || client_tx_status(c) == 'E')
        return HOOK_FORWARD; /* no internal statement now: checked with what is loaded */
    if (!session_queue_load(c, session_catalog_cb))
        client_fail(c, "53200", "out of memory", NULL);
    return client_is_active(c) ? HOOK_WAIT : HOOK_DONE;
}

static hook_verdict_t on_statement(client_t *c, const char *msg, size_t total)
{
    if (msg[0] == 'B')
        return bind_statement(c, msg, total);
    const char *sql = statement_text(msg, total);
    if (!sql || untouched(c, msg, total))
        return HOOK_FORWARD;
    session_state_t *ss = session_state(c);
    if (!ss) {
        client_fail(c, "53200", "out of memory", NULL);
        return HOOK_DONE;
    }
    if (ss->phase == PHASE_BUSY)
        return HOOK_WAIT;
    if (ss->phase == PHASE_FAILED)
        return session_answer_error(c, msg, total);
    if (msg[0] == 'P' && msg[5] == '\0')
        ss->mapped_gen = 0; /* whatever comes of it, "" is no longer ours */
    /* internal statements: never between unsynced extended messages (see
     * "Must never" above), nor in a failed transaction, where they would
     * fail too and the client could not even get its ROLLBACK through */
    if (session_loaded(ss) && session_catalog_outdated(c, ss))
        ss->stale = true;
    bool may_query = !client_unsynced(c) && client_tx_status(c) != 'E';
    if (ss->stale && may_query && !is_setting(sql)) {
        if (!session_queue_load(c, session_catalog_cb))
            client_fail(c, "53200", "out of memory", NULL);
        return client_is_active(c) ? HOOK_WAIT : HOOK_DONE;
    }
    bool named_ok = true;
    if (!check_named(c, msg, total, sql, &named_ok)) {
        if (!named_ok)
            client_fail(c, "53200", "out of memory", NULL);
        return HOOK_DONE;
    }
    rw_session_t s = {.cat = session_loaded(ss) ? &ss->cat : NULL,
                      .on_branch = session_rewrites(ss),
                      .read_only = session_loaded(ss) && ss->cat.read_only};
    rw_result_t r;
    rw_template_t tp = {0};
    uint64_t t0 = uv_hrtime();
    if (session_loaded(ss))
        rewrite_cached(&s, ss->view, sql, &r, msg[0] == 'Q' ? &tp : NULL);
    else
        rewrite_statement(&s, sql, &r);
    metrics_observe(MH_REWRITE, (double)(uv_hrtime() - t0) / 1e9);
    if (r.flags & (RW_F_COMMIT | RW_F_MERGE)) {
        ss->timed = r.flags & RW_F_MERGE ? MH_MERGE : MH_COMMIT;
        ss->timed_start = t0;
    }
    if (r.flags & RW_F_DEALLOC)
        plan_reuse_forget_all(ss);
    hook_verdict_t ret;
    bool ok = true;
    if ((r.action == RW_NEED_CATALOG ||
         ((r.flags & RW_F_SCHEMA) && ss->schema == SCHEMA_UNKNOWN)) &&
        r.action != RW_ERROR) {
        ret = need_catalog(c, msg, total, &r, may_query, &ok);
    } else if ((r.action == RW_FORWARD || r.action == RW_REWRITTEN) &&
               !session_record_tags(c, msg, &r)) {
        ok = false;
        ret = HOOK_DONE;
    } else {
        ret = act(c, msg, total, &r, &tp, may_query, &ok);
        /* a session that never loaded its catalog has nothing to refresh
         * (and must not create the epoch schema because it ran RESET ALL) */
        if (r.flags & RW_F_REFRESH || r.action == RW_SET_BRANCH)
            ss->settings_changed = true; /* its loads are not the startup's (catalog_cache.h) */
        if (ret != HOOK_WAIT && (r.flags & RW_F_REFRESH) &&
            (session_loaded(ss) || r.action == RW_SET_BRANCH)) {
            ss->stale = true;
            if (client_tx_status(c) != 'I' || r.action == RW_SET_BRANCH)
                ss->stale_at_tx_end = true;
        }
    }
    rewrite_result_free(&r);
    rewrite_template_free(&tp);
    if (!ok) {
        client_fail(c, "53200", "out of memory", NULL);
        return HOOK_DONE;
    }
    return ret;
}

static void after_ready(client_t *c)
{
    session_state_t *ss = session_of(c);
    if (ss && ss->timed) {
        metrics_observe((metric_hist_t)ss->timed, (double)(uv_hrtime() - ss->timed_start) / 1e9);
        ss->timed = 0;
    }
    if (!ss || client_tx_status(c) != 'I')
        return;
    if (ss->ddl_in_tx) { /* committed (or not): sessions that loaded meanwhile load again */
        ss->ddl_in_tx = false;
        catalog_cache_ddl_seen();
    }
    if (ss->stale_at_tx_end) {
        ss->stale_at_tx_end = false;
        ss->stale = true;
    }
    if (ss->schema == SCHEMA_CURRENT_IN_TX) /* committed or rolled back: look again next time */
        session_set_schema(ss, SCHEMA_UNKNOWN);
}

/* Bind or Describe: a named statement prepared on another ref is refused
 * (named.c); the unnamed one may stand for one of plan reuse's. */
static bool redirect_statement(client_t *c, const char *msg, size_t total, buf_t *out)
{
    session_state_t *ss = session_of(c);
    if (named_redirect(ss, msg, total, out))
        return true;
    buf_reset(out);
    return plan_reuse_rename(c, msg, total, out);
}

/* The session's branch, for the metrics: its catalog's once loaded. */
static const char *session_branch(const client_t *c)
{
    const session_state_t *ss = session_of(c);
    return ss && session_loaded(ss) ? ss->cat.branch_name : NULL;
}

static const wire_hooks_t hooks = {
    .startup = session_startup,
    .login_wanted = session_login_wanted,
    .login_check = session_login_check,
    .untouched = untouched,
    .statement = on_statement,
    .forwarded = session_forwarded,
    .rename = redirect_statement,
    .reply = session_reply,
    .notification = session_notification,
    .command_done = session_command_done,
    .after_ready = after_ready,
    .release = session_release,
    .branch = session_branch,
    .worker_exit = catalog_cache_clear,
};

void session_install(void)
{
    wire_hooks_install(&hooks);
}
