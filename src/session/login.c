/*
 * login — what a client brings when it connects: the branch ("dbname@branch"
 * in the startup packet becomes dbname plus the startup parameter
 * epoch.branch, and a branch asked for at startup is checked (its catalog
 * loaded) before the client gets its first ReadyForQuery, so a bad one fails
 * the login), and its address, passed on for the audit trail.
 */
#include "session/login.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"
#include "wire/config.h"
#include "session/load.h"

/* The client's address, as the proxy saw it, goes to PostgreSQL as the
 * startup parameter epoch.client_addr (the audit trail reads the value the
 * session started with: a later SET cannot change it); a value the client
 * sent itself is dropped. Only where the server connection is the client's
 * own (passthrough): a pooled one serves many clients. */
#define CLIENT_ADDR "epoch.client_addr"

static void add_param(char *params, size_t *len, const char *name, const char *value, size_t vlen)
{
    memcpy(params + *len, name, strlen(name) + 1);
    *len += strlen(name) + 1;
    memcpy(params + *len, value, vlen);
    *len += vlen;
    params[(*len)++] = '\0';
}

/* A session that starts on a branch plans its statements once
 * (branch_plans = generic): PostgreSQL otherwise keeps custom plans for a
 * branch's range reads (the generic plan's estimate is 5x the custom one)
 * and plans the overlay's four arms again at every execution, 0.4-0.7 ms
 * against 0.02 ms for main's query (docs/benchmarks.md, issue 16). */
/* The startup parameters with the database's "@branch" cut off (at: NULL
 * when there is none) and epoch.branch added (unless options already set
 * one, which then wins), the client's own epoch.client_addr dropped and
 * addr's added (NULL: none), plan_cache_mode added when generic, as a new
 * "name\0value\0…\0" list in *out. */
static bool rebuild_params(const startup_t *st, const char *at, const char *addr, bool generic,
                           char **out, size_t *out_len)
{
    const char *branch = at ? at + 1 : "";
    size_t cap = st->params_len + sizeof "epoch.branch" + strlen(branch) + sizeof CLIENT_ADDR +
                 (addr ? strlen(addr) : 0) + sizeof "plan_cache_mode" +
                 sizeof "force_generic_plan" + 4;
    char *params = malloc(cap);
    if (!params)
        return false;
    size_t len = 0, pos = 0;
    const char *name, *value;
    bool has_branch = false;
    while (startup_next(st, &pos, &name, &value)) {
        if (strcmp(name, CLIENT_ADDR) == 0)
            continue;
        size_t vlen = at && value == st->database ? (size_t)(at - st->database) : strlen(value);
        has_branch |= strcmp(name, "epoch.branch") == 0;
        add_param(params, &len, name, value, vlen);
    }
    if (at && !has_branch)
        add_param(params, &len, "epoch.branch", branch, strlen(branch));
    if (addr)
        add_param(params, &len, CLIENT_ADDR, addr, strlen(addr));
    if (generic)
        add_param(params, &len, "plan_cache_mode", "force_generic_plan",
                  strlen("force_generic_plan"));
    params[len++] = '\0';
    *out = params;
    *out_len = len;
    return true;
}

static bool has_param(const startup_t *st, const char *wanted)
{
    size_t pos = 0;
    const char *name, *value;
    while (startup_next(st, &pos, &name, &value))
        if (strcmp(name, wanted) == 0)
            return true;
    return false;
}

/* Does the client say how to plan, as a parameter or in options? */
static bool sets_plan_cache_mode(const startup_t *st)
{
    size_t pos = 0;
    const char *name, *value;
    while (startup_next(st, &pos, &name, &value))
        if (strcmp(name, "plan_cache_mode") == 0 ||
            (strcmp(name, "options") == 0 && strstr(value, "plan_cache_mode")))
            return true;
    return false;
}

bool session_startup(client_t *c, char *err, size_t errcap)
{
    startup_t *st = client_startup(c);
    const char *at = st->database ? strchr(st->database, '@') : NULL;
    char addr[64];
    bool report =
        client_config(c)->auth_mode == AUTH_PASSTHROUGH && client_peer_addr(c, addr, sizeof addr);
    bool generic = client_config(c)->branch_plans == BRANCH_PLANS_GENERIC &&
                   (at || session_login_wanted(c)) && !sets_plan_cache_mode(st);
    if (!at && !report && !generic && !has_param(st, CLIENT_ADDR))
        return true;
    if (at && (at == st->database || !at[1])) {
        snprintf(err, errcap, "invalid database name \"%.100s\": use dbname@branch", st->database);
        return false;
    }
    char *params;
    size_t len;
    if (!rebuild_params(st, at, report ? addr : NULL, generic, &params, &len)) {
        snprintf(err, errcap, "out of memory");
        return false;
    }
    /* re-point the parsed fields into the new list */
    startup_t fresh;
    char perr[200];
    bool ok = startup_parse(&fresh, st->version, params, len, perr, sizeof perr);
    free(params);
    if (!ok) {
        snprintf(err, errcap, "%s", perr);
        return false;
    }
    startup_free(st);
    *st = fresh;
    return true;
}

bool session_login_wanted(const client_t *c)
{
    size_t pos = 0;
    const char *name, *value;
    while (startup_next(client_startup(c), &pos, &name, &value))
        if ((HAS_PREFIX(name, "epoch.") && strcmp(name, CLIENT_ADDR) != 0) ||
            (strcmp(name, "options") == 0 && strstr(value, "epoch.")))
            return true;
    return false;
}

static void login_cb(server_t *sv, void *arg, const internal_result_t *res)
{
    session_catalog_cb(sv, arg, res);
    client_t *c = session_owner(sv, arg);
    if (!c)
        return;
    session_state_t *ss = session_of(c);
    if (ss->phase == PHASE_FAILED) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s", ss->err_msg ? ss->err_msg : "branch check failed");
        client_fail(c, ss->err_state, msg,
                    "Connect to an existing branch (dbname@branch), or to main and create it "
                    "with SELECT epoch.branch_create('name').");
        return;
    }
    client_login_finish(c);
}

void session_login_check(client_t *c)
{
    if (!session_state(c) || !session_queue_login_load(c, login_cb))
        client_fail(c, "53200", "out of memory", NULL);
}
