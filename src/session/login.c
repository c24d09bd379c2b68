/*
 * login — the branch a client asks for when it connects: "dbname@branch" in
 * the startup packet becomes dbname plus the startup parameter epoch.branch,
 * and a branch asked for at startup is checked (its catalog loaded) before
 * the client gets its first ReadyForQuery, so a bad one fails the login.
 */
#include "session/login.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"
#include "session/load.h"

/* The startup parameters with the database's "@branch" cut off and
 * epoch.branch added (unless options already set one, which then wins), as
 * a new "name\0value\0…\0" list in *out. */
static bool split_database(const startup_t *st, const char *at, char **out, size_t *out_len)
{
    const char *branch = at + 1;
    size_t cap = st->params_len + sizeof "epoch.branch" + strlen(branch) + 2;
    char *params = malloc(cap);
    if (!params)
        return false;
    size_t len = 0, pos = 0;
    const char *name, *value;
    bool has_param = false;
    while (startup_next(st, &pos, &name, &value)) {
        size_t vlen = value == st->database ? (size_t)(at - st->database) : strlen(value);
        has_param |= strcmp(name, "epoch.branch") == 0;
        memcpy(params + len, name, strlen(name) + 1);
        len += strlen(name) + 1;
        memcpy(params + len, value, vlen);
        len += vlen;
        params[len++] = '\0';
    }
    if (!has_param) {
        memcpy(params + len, "epoch.branch", sizeof "epoch.branch");
        len += sizeof "epoch.branch";
        memcpy(params + len, branch, strlen(branch) + 1);
        len += strlen(branch) + 1;
    }
    params[len++] = '\0';
    *out = params;
    *out_len = len;
    return true;
}

bool session_startup(client_t *c, char *err, size_t errcap)
{
    startup_t *st = client_startup(c);
    const char *at = st->database ? strchr(st->database, '@') : NULL;
    if (!at)
        return true;
    if (at == st->database || !at[1]) {
        snprintf(err, errcap, "invalid database name \"%.100s\": use dbname@branch", st->database);
        return false;
    }
    char *params;
    size_t len;
    if (!split_database(st, at, &params, &len)) {
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
        if (HAS_PREFIX(name, "epoch.") || (strcmp(name, "options") == 0 && strstr(value, "epoch.")))
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
    if (!session_state(c) || !session_queue_load(c, login_cb))
        client_fail(c, "53200", "out of memory", NULL);
}
