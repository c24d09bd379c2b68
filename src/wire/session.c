/*
 * session — the settings a client expects its session to carry, so a pooled
 * server can be brought to them: the startup parameters (application_name,
 * client_encoding, options='-c x=y', ...) and, in transaction pooling, the
 * SET/RESET statements the client ran with the simple protocol.
 *
 * Not carried (documented in docs/configuration.md): SET inside a multi-
 * statement query string, SET through the extended protocol, a SET later
 * undone by ROLLBACK (it is replayed anyway), prepared statements, temporary
 * tables, advisory locks, LISTEN.
 */
#include "wire/conn.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Settings PostgreSQL reports with ParameterStatus: for these the server's
 * current value is known, so nothing is sent when it already matches. */
static const char *const reported[] = {
    "application_name", "client_encoding",   "datestyle",          "intervalstyle",
    "timezone",         "standard_conforming_strings", "is_superuser", "session_authorization",
    "default_transaction_read_only", "in_hot_standby", "integer_datetimes", "server_encoding",
    "server_version",   NULL};

static bool is_reported(const char *name)
{
    for (int i = 0; reported[i]; i++)
        if (strcasecmp(reported[i], name) == 0)
            return true;
    return false;
}

static void entry_free(session_entry_t *e)
{
    free(e->name);
    free(e->value);
    free(e->stmt);
}

static bool add_entry(client_t *c, const char *name, size_t nlen, const char *value,
                      const char *stmt)
{
    session_entry_t *grown = realloc(c->session, (size_t)(c->n_session + 1) * sizeof *grown);
    if (!grown)
        return false;
    c->session = grown;
    session_entry_t *e = &c->session[c->n_session];
    e->name = strndup(name, nlen);
    e->value = value ? strdup(value) : NULL;
    e->stmt = stmt ? strdup(stmt) : NULL;
    if (!e->name || (value && !e->value) || (stmt && !e->stmt)) {
        entry_free(e);
        return false;
    }
    for (char *p = e->name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    c->n_session++;
    c->session_version++;
    return true;
}

/* A startup parameter: SET name = 'value'. */
static bool add_startup(client_t *c, const char *name, size_t nlen, const char *value)
{
    buf_t b = {0};
    char *n = strndup(name, nlen);
    bool ok = n && buf_append(&b, "SET ", 4) && proto_quote_ident(&b, n) &&
              buf_append(&b, " = ", 3) && proto_quote_literal(&b, value) && buf_append(&b, "", 1);
    ok = ok && add_entry(c, name, nlen, value, b.data);
    free(n);
    buf_free(&b);
    return ok;
}

/* options='-c a=b --c=d': split on spaces, backslash escapes a space. */
static bool add_options(client_t *c, const char *options)
{
    const char *p = options;
    bool expect_c = false;
    while (*p) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        char tok[1024];
        size_t n = 0;
        while (*p && !isspace((unsigned char)*p) && n + 1 < sizeof tok) {
            if (*p == '\\' && p[1])
                p++;
            tok[n++] = *p++;
        }
        tok[n] = '\0';
        const char *kv = NULL;
        if (expect_c) {
            kv = tok;
            expect_c = false;
        } else if (strcmp(tok, "-c") == 0) {
            expect_c = true;
        } else if (strncmp(tok, "-c", 2) == 0) {
            kv = tok + 2;
        } else if (strncmp(tok, "--", 2) == 0) {
            kv = tok + 2;
        }
        if (kv) {
            const char *eq = strchr(kv, '=');
            if (eq && eq > kv) {
                /* "-c a-b=c" names use dashes for underscores, like PostgreSQL */
                char name[256];
                size_t nlen = (size_t)(eq - kv) < sizeof name - 1 ? (size_t)(eq - kv)
                                                                   : sizeof name - 1;
                for (size_t i = 0; i < nlen; i++)
                    name[i] = kv[i] == '-' ? '_' : kv[i];
                if (!add_startup(c, name, nlen, eq + 1))
                    return false;
            }
        }
    }
    return true;
}

bool session_init(client_t *c)
{
    size_t pos = 0;
    const char *name, *value;
    while (startup_next(&c->startup, &pos, &name, &value)) {
        if (!strcmp(name, "user") || !strcmp(name, "database") || !strncmp(name, "_pq_.", 5))
            continue;
        bool ok = strcmp(name, "options") == 0 ? add_options(c, value)
                                               : add_startup(c, name, strlen(name), value);
        if (!ok)
            return false;
    }
    return true;
}

void session_free(client_t *c)
{
    for (int i = 0; i < c->n_session; i++)
        entry_free(&c->session[i]);
    free(c->session);
    c->session = NULL;
    c->n_session = 0;
    free(c->pending_set);
    c->pending_set = NULL;
}

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && isspace((unsigned char)*p))
        p++;
    return p;
}

static bool word_is(const char *p, const char *end, const char *w)
{
    size_t n = strlen(w);
    return (size_t)(end - p) >= n && strncasecmp(p, w, n) == 0 &&
           (p + n == end || !(isalnum((unsigned char)p[n]) || p[n] == '_'));
}

void session_note_query(client_t *c, const char *sql, size_t len)
{
    free(c->pending_set);
    c->pending_set = NULL;
    const char *nul = memchr(sql, 0, len);
    if (!nul)
        return;
    const char *p = skip_space(sql, nul), *end = nul;
    while (end > p && (isspace((unsigned char)end[-1]) || end[-1] == ';'))
        end--;
    if (memchr(p, ';', (size_t)(end - p)))
        return; /* several statements: not tracked */
    if (!word_is(p, end, "set") && !word_is(p, end, "reset"))
        return;
    const char *q = skip_space(p + (word_is(p, end, "set") ? 3 : 5), end);
    if (word_is(q, end, "local") || word_is(q, end, "transaction") ||
        word_is(q, end, "constraints"))
        return;
    if (word_is(p, end, "set") && word_is(q, end, "session")) {
        const char *r = skip_space(q + 7, end);
        if (word_is(r, end, "characteristics"))
            return;
    }
    c->pending_set = strndup(p, (size_t)(end - p));
}

/* The setting a SET/RESET statement names ("all" for RESET ALL). */
static size_t statement_name(const char *stmt, const char **name)
{
    const char *end = stmt + strlen(stmt);
    bool set = word_is(stmt, end, "set");
    const char *p = skip_space(stmt + (set ? 3 : 5), end);
    if (set && word_is(p, end, "session") && !word_is(skip_space(p + 7, end), end, "authorization"))
        p = skip_space(p + 7, end);
    *name = p;
    const char *q = p;
    while (q < end && (isalnum((unsigned char)*q) || *q == '_' || *q == '.' || *q == '"'))
        q++;
    if (q == p) /* SET ROLE / SESSION AUTHORIZATION and friends: keep by keyword */
        while (q < end && !isspace((unsigned char)*q))
            q++;
    return (size_t)(q - p);
}

void session_command_done(client_t *c, const char *tag)
{
    char *stmt = c->pending_set;
    c->pending_set = NULL;
    if (!stmt)
        return;
    if (strcmp(tag, "SET") != 0 && strcmp(tag, "RESET") != 0) {
        free(stmt);
        return;
    }
    const char *name;
    size_t nlen = statement_name(stmt, &name);
    bool reset_all = tag[0] == 'R' && nlen == 3 && strncasecmp(name, "all", 3) == 0;
    /* drop earlier SET statements this one overrides; startup values stay */
    int keep = 0;
    for (int i = 0; i < c->n_session; i++) {
        session_entry_t *e = &c->session[i];
        bool drop = !e->value && (reset_all || (strlen(e->name) == nlen &&
                                                strncasecmp(e->name, name, nlen) == 0));
        if (drop)
            entry_free(e);
        else
            c->session[keep++] = *e;
    }
    c->n_session = keep;
    c->session_version++;
    if (tag[0] == 'S' && !add_entry(c, name, nlen, NULL, stmt))
        client_fail(c, "53200", "out of memory", NULL);
    free(stmt);
}

char *session_sync_sql(client_t *c, server_t *sv)
{
    if (sv->dirty_owner == c->id && sv->dirty_version == c->session_version)
        return NULL;
    bool reset = sv->dirty_owner != 0;
    bool dirty = false;
    buf_t b = {0};
    bool ok = !reset || buf_append(&b, "RESET ALL;", 10);
    for (int i = 0; ok && i < c->n_session; i++) {
        session_entry_t *e = &c->session[i];
        if (e->value && is_reported(e->name)) {
            const char *cur = server_param(sv, e->name);
            if (!reset && cur && strcmp(cur, e->value) == 0)
                continue;
        } else {
            dirty = true;
        }
        ok = buf_append(&b, e->stmt, strlen(e->stmt)) && buf_append(&b, ";", 1);
    }
    ok = ok && buf_append(&b, "", 1);
    sv->dirty_owner = dirty ? c->id : 0;
    sv->dirty_version = c->session_version;
    if (!ok || b.len <= 1) {
        buf_free(&b);
        return NULL;
    }
    return b.data;
}
