/*
 * replay — the settings a client expects its session to carry, so a pooled
 * server can be brought to them: the startup parameters (application_name,
 * client_encoding, options='-c x=y', ...) and, in transaction pooling, the
 * SET/RESET statements the client ran with the simple protocol.
 *
 * A SET takes effect in PostgreSQL only when its transaction commits, so it
 * is tracked in two steps: its CommandComplete stages it in the open
 * transaction (with the savepoints around it), and it joins the session when
 * that transaction commits — COMMIT, or ReadyForQuery 'I' after an implicit
 * transaction without error. ROLLBACK, an error in an implicit transaction
 * (several statements in one Query are one implicit transaction) and
 * ROLLBACK TO a savepoint taken before it drop it again.
 *
 * CommandCompletes are matched to the statements of the Query strings in
 * flight, split the way PostgreSQL's parser splits them. While requests the
 * proxy does not follow (extended protocol, FunctionCall) are in flight the
 * match is not certain, and nothing is tracked until they are done.
 *
 * Not carried (documented in docs/configuration.md): SET through the extended
 * protocol, set_config() and SET inside functions, prepared statements,
 * temporary tables, advisory locks, LISTEN.
 */
#include "wire/conn.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/text.h"
#include "common/lexer.h"
#include "common/log.h"
#include "common/sqlbuf.h"

/* Settings PostgreSQL reports with ParameterStatus: for these the server's
 * current value is known, so nothing is sent when it already matches. */
static const char *const reported[] = {"application_name",
                                       "client_encoding",
                                       "datestyle",
                                       "intervalstyle",
                                       "timezone",
                                       "standard_conforming_strings",
                                       "is_superuser",
                                       "session_authorization",
                                       "default_transaction_read_only",
                                       "in_hot_standby",
                                       "integer_datetimes",
                                       "server_encoding",
                                       "server_version",
                                       NULL};

/* Brings a server that carries someone else's settings back to its login
 * state. RESET ALL alone would keep SET ROLE and SET SESSION AUTHORIZATION
 * (they are exempt from it); SESSION AUTHORIZATION DEFAULT resets both. */
static const char reset_sql[] = "SET SESSION AUTHORIZATION DEFAULT;RESET ALL;";

typedef enum {
    STMT_OTHER,       /* `count` statements the session does not care about */
    STMT_SET,         /* text: the statement */
    STMT_RESET,       /* text: the statement */
    STMT_DISCARD_ALL, /* a RESET ALL that also resets the role */
    STMT_SAVEPOINT,   /* text: the savepoint's name */
    STMT_RELEASE,     /* text: the savepoint's name */
    STMT_ROLLBACK_TO, /* text: the savepoint's name */
    STMT_END,         /* the end of one Query message */
} stmt_kind_t;

typedef struct stmt {
    stmt_kind_t kind;
    int count;
    char *text;
} stmt_t;

typedef struct stmt_list {
    stmt_t *items;
    size_t head, len, cap; /* items[head..len) are live */
} stmt_list_t;

struct replay_track {
    stmt_list_t queries; /* statements of the Query messages in flight */
    int n_queries;       /* STMT_END items in queries */
    stmt_list_t tx;      /* SET/RESET/DISCARD ALL and savepoints of the open transaction */
    bool failed;         /* an ErrorResponse since the last ReadyForQuery */
};

/* Of those, the ones a startup packet can set (so RESET brings back the
 * login value); the others change only with statements tracked as dirty. */
static const char *const resettable[] = {"application_name",
                                         "client_encoding",
                                         "datestyle",
                                         "intervalstyle",
                                         "timezone",
                                         "standard_conforming_strings",
                                         NULL};

static bool in_list(const char *const *list, const char *name)
{
    for (int i = 0; list[i]; i++)
        if (strcasecmp(list[i], name) == 0)
            return true;
    return false;
}

static bool is_reported(const char *name)
{
    return in_list(reported, name);
}

static bool is_resettable(const char *name)
{
    return in_list(resettable, name);
}

/* ---- session entries ---- */

static void entry_free(replay_entry_t *e)
{
    free(e->name);
    free(e->value);
    free(e->stmt);
}

static bool add_entry(client_t *c, const char *name, size_t nlen, const char *value,
                      const char *stmt)
{
    replay_entry_t *grown = realloc(c->replay, (size_t)(c->n_replay + 1) * sizeof *grown);
    if (!grown)
        return false;
    c->replay = grown;
    replay_entry_t *e = &c->replay[c->n_replay];
    e->name = strndup(name, nlen);
    e->value = value ? strdup(value) : NULL;
    e->stmt = stmt ? strdup(stmt) : NULL;
    if (!e->name || (value && !e->value) || (stmt && !e->stmt)) {
        entry_free(e);
        return false;
    }
    for (char *p = e->name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    c->n_replay++;
    c->replay_version++;
    return true;
}

/* A setting's name as SET takes it: plain when it is a plain lower-case
 * word (what a reader of the replayed SQL expects), quoted otherwise. */
static void setting_name(sqlbuf_t *sb, const char *name)
{
    bool plain = islower((unsigned char)name[0]) || name[0] == '_';
    for (const char *p = name; plain && *p; p++)
        plain = islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_';
    if (plain)
        sqlbuf_puts(sb, name);
    else
        sqlbuf_ident(sb, name);
}

/* A startup parameter: SET name = 'value'. */
static bool add_startup(client_t *c, const char *name, size_t nlen, const char *value)
{
    char *n = strndup(name, nlen);
    if (!n)
        return false;
    sqlbuf_t sb = {0};
    SQLBUF_LIT(&sb, "SET ");
    setting_name(&sb, n);
    SQLBUF_LIT(&sb, " = ");
    sqlbuf_literal(&sb, value);
    free(n);
    char *stmt = sqlbuf_take(&sb);
    bool ok = stmt && add_entry(c, name, nlen, value, stmt);
    free(stmt);
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
        } else if (HAS_PREFIX(tok, "-c")) {
            kv = tok + 2;
        } else if (HAS_PREFIX(tok, "--")) {
            kv = tok + 2;
        }
        if (kv) {
            const char *eq = strchr(kv, '=');
            if (eq && eq > kv) {
                /* "-c a-b=c" names use dashes for underscores, like PostgreSQL */
                char name[256];
                size_t nlen =
                    (size_t)(eq - kv) < sizeof name - 1 ? (size_t)(eq - kv) : sizeof name - 1;
                for (size_t i = 0; i < nlen; i++)
                    name[i] = kv[i] == '-' ? '_' : kv[i];
                if (!add_startup(c, name, nlen, eq + 1))
                    return false;
            }
        }
    }
    return true;
}

bool replay_init(client_t *c)
{
    size_t pos = 0;
    const char *name, *value;
    while (startup_next(&c->startup, &pos, &name, &value)) {
        if (!strcmp(name, "user") || !strcmp(name, "database") || HAS_PREFIX(name, "_pq_."))
            continue;
        bool ok = strcmp(name, "options") == 0 ? add_options(c, value)
                                               : add_startup(c, name, strlen(name), value);
        if (!ok)
            return false;
    }
    return true;
}

/* ---- statement lists ---- */

static void stmt_list_clear(stmt_list_t *l)
{
    for (size_t i = l->head; i < l->len; i++)
        free(l->items[i].text);
    l->head = l->len = 0;
}

static void stmt_list_free(stmt_list_t *l)
{
    stmt_list_clear(l);
    free(l->items);
    l->items = NULL;
    l->cap = 0;
}

/* Drop items from index `from` on. */
static void stmt_list_truncate(stmt_list_t *l, size_t from)
{
    for (size_t i = from; i < l->len; i++)
        free(l->items[i].text);
    l->len = from;
    if (l->head >= l->len)
        l->head = l->len = 0;
}

/* Append an item; takes `text` (also on failure). A run of STMT_OTHER is one
 * item. */
static bool stmt_list_push(stmt_list_t *l, stmt_kind_t kind, char *text)
{
    if (kind == STMT_OTHER && l->len > l->head && l->items[l->len - 1].kind == STMT_OTHER) {
        l->items[l->len - 1].count++;
        return true;
    }
    if (l->len == l->cap && l->head > 0) {
        memmove(l->items, l->items + l->head, (l->len - l->head) * sizeof *l->items);
        l->len -= l->head;
        l->head = 0;
    }
    if (l->len == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        stmt_t *grown = realloc(l->items, ncap * sizeof *grown);
        if (!grown) {
            free(text);
            return false;
        }
        l->items = grown;
        l->cap = ncap;
    }
    l->items[l->len++] = (stmt_t){.kind = kind, .count = 1, .text = text};
    return true;
}

static void stmt_list_pop(stmt_list_t *l)
{
    free(l->items[l->head].text);
    if (++l->head == l->len)
        l->head = l->len = 0;
}

/* ---- splitting a Query string into statements (common/lexer.c) ---- */

/* The text is NUL-terminated at or after end: the lexer runs on it with p as
 * its base, and positions are clamped to end. */
static const char *skip_blank(const char *p, const char *end)
{
    const char *q = p + lex_skip_blank(p, 0);
    return q < end ? q : end;
}

static const char *statement_end(const char *p, const char *end, bool std_strings,
                                 const char **stmt_end)
{
    size_t last;
    const char *next = p + lex_statement_end(p, 0, std_strings, &last);
    *stmt_end = p + last < end ? p + last : end;
    return next < end ? next : end;
}

static bool ident_char(unsigned char ch)
{
    return lex_ident_char(ch);
}

/* ---- classifying statements ---- */

static bool word_is(const char *p, const char *end, const char *w)
{
    size_t n = strlen(w);
    return (size_t)(end - p) >= n && strncasecmp(p, w, n) == 0 &&
           (p + n == end || !ident_char((unsigned char)p[n]));
}

/* Past the word at p (which word_is matched) and the blanks after it. */
static const char *after_word(const char *p, const char *end, const char *w)
{
    return skip_blank(p + strlen(w), end);
}

/* A savepoint name as PostgreSQL folds it: quoted as written, else lower
 * case. NULL if there is none or out of memory. */
static char *savepoint_name(const char *p, const char *end)
{
    if (p < end && *p == '"') {
        buf_t b = {0};
        bool ok = true;
        for (p++; ok && p < end; p++) {
            if (*p == '"' && !(p + 1 < end && p[1] == '"'))
                break;
            if (*p == '"')
                p++;
            ok = buf_append(&b, p, 1);
        }
        if (ok && BUF_LIT_NUL(&b, ""))
            return b.data;
        buf_free(&b);
        return NULL;
    }
    const char *q = p;
    while (q < end && ident_char((unsigned char)*q))
        q++;
    if (q == p)
        return NULL;
    char *name = strndup(p, (size_t)(q - p));
    for (char *s = name; s && *s; s++)
        *s = (char)tolower((unsigned char)*s);
    return name;
}

/* What a statement [p, end) means to the session; *text as stmt_t.text. */
static stmt_kind_t classify(const char *p, const char *end, char **text)
{
    *text = NULL;
    if (word_is(p, end, "set")) {
        const char *q = after_word(p, end, "set");
        if (word_is(q, end, "local") || word_is(q, end, "transaction") ||
            word_is(q, end, "constraints"))
            return STMT_OTHER; /* lasts only until the end of the transaction */
        if (word_is(q, end, "session") &&
            word_is(after_word(q, end, "session"), end, "characteristics"))
            return STMT_OTHER;
        *text = strndup(p, (size_t)(end - p));
        return *text ? STMT_SET : STMT_OTHER;
    }
    if (word_is(p, end, "reset")) {
        *text = strndup(p, (size_t)(end - p));
        return *text ? STMT_RESET : STMT_OTHER;
    }
    if (word_is(p, end, "discard"))
        return word_is(after_word(p, end, "discard"), end, "all") ? STMT_DISCARD_ALL : STMT_OTHER;
    if (word_is(p, end, "savepoint")) {
        *text = savepoint_name(after_word(p, end, "savepoint"), end);
        return *text ? STMT_SAVEPOINT : STMT_OTHER;
    }
    if (word_is(p, end, "release")) {
        const char *q = after_word(p, end, "release");
        if (word_is(q, end, "savepoint"))
            q = after_word(q, end, "savepoint");
        *text = savepoint_name(q, end);
        return *text ? STMT_RELEASE : STMT_OTHER;
    }
    if (word_is(p, end, "rollback")) {
        const char *q = after_word(p, end, "rollback");
        if (word_is(q, end, "work"))
            q = after_word(q, end, "work");
        else if (word_is(q, end, "transaction"))
            q = after_word(q, end, "transaction");
        if (!word_is(q, end, "to"))
            return STMT_OTHER;
        q = after_word(q, end, "to");
        if (word_is(q, end, "savepoint"))
            q = after_word(q, end, "savepoint");
        *text = savepoint_name(q, end);
        return *text ? STMT_ROLLBACK_TO : STMT_OTHER;
    }
    return STMT_OTHER;
}

/* ---- tracking ---- */

/* True when the CommandCompletes and ReadyForQuerys now arriving belong to
 * the Query messages in t->queries, in order. */
static bool aligned(const client_t *c, const struct replay_track *t)
{
    return t->n_queries == c->inflight;
}

/* Split a Query string and queue its statements; false = out of memory. */
static bool queue_query(struct replay_track *t, const char *sql, const char *end, bool std_strings)
{
    const char *p = sql;
    while ((p = skip_blank(p, end)) < end) {
        if (*p == ';') {
            p++; /* an empty statement: PostgreSQL does not answer it */
            continue;
        }
        const char *stmt_end;
        const char *next = statement_end(p, end, std_strings, &stmt_end);
        char *text;
        stmt_kind_t kind = classify(p, stmt_end, &text);
        if (!stmt_list_push(&t->queries, kind, text))
            return false;
        p = next;
    }
    return stmt_list_push(&t->queries, STMT_END, NULL);
}

void replay_note_query(client_t *c, const char *sql, size_t len)
{
    const char *end = memchr(sql, 0, len);
    if (!end)
        return; /* not a string: PostgreSQL refuses it */
    if (!c->track) {
        c->track = calloc(1, sizeof *c->track);
        if (!c->track)
            return; /* not tracked: its SETs stay on this server only */
    }
    struct replay_track *t = c->track;
    /* results of other requests come first: no telling which are whose */
    if (!aligned(c, t) || c->unsynced)
        return;
    const char *ssc = c->server ? server_param(c->server, "standard_conforming_strings") : NULL;
    size_t live = t->queries.len - t->queries.head; /* pushing may move the items down */
    if (!queue_query(t, sql, end, !ssc || strcmp(ssc, "off") != 0)) {
        log_warning("client %llu: out of memory tracking a query's SET statements",
                    (unsigned long long)c->id);
        stmt_list_truncate(&t->queries, t->queries.head + live);
        return;
    }
    t->n_queries++;
}

/* The setting a SET/RESET statement names ("all" for RESET ALL), in the
 * spelling of its configuration parameter where the syntax differs. */
static size_t statement_name(const char *stmt, const char **name)
{
    static const struct {
        const char *words[2];
        const char *guc;
    } special[] = {{{"session", "authorization"}, "session_authorization"},
                   {{"time", "zone"}, "timezone"},
                   {{"xml", "option"}, "xmloption"},
                   {{"names", NULL}, "client_encoding"},
                   {{"schema", NULL}, "search_path"}};
    const char *end = stmt + strlen(stmt);
    bool set = word_is(stmt, end, "set");
    const char *p = after_word(stmt, end, set ? "set" : "reset");
    if (set && word_is(p, end, "session") &&
        !word_is(after_word(p, end, "session"), end, "authorization"))
        p = after_word(p, end, "session");
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        const char *w2 = special[i].words[1];
        if (word_is(p, end, special[i].words[0]) &&
            (!w2 || word_is(after_word(p, end, special[i].words[0]), end, w2))) {
            *name = special[i].guc;
            return strlen(*name);
        }
    }
    *name = p;
    const char *q = p;
    while (q < end && (isalnum((unsigned char)*q) || *q == '_' || *q == '.' || *q == '"'))
        q++;
    if (q == p) /* something unusual: keep by its first word */
        while (q < end && !isspace((unsigned char)*q))
            q++;
    return (size_t)(q - p);
}

/* RESET ALL leaves these alone (PostgreSQL's GUC_NO_RESET_ALL). */
static bool survives_reset_all(const char *name)
{
    return strcmp(name, "role") == 0 || strcmp(name, "session_authorization") == 0;
}

/* A committed SET, RESET or DISCARD ALL changes the session's entries;
 * false = out of memory. */
static bool apply(client_t *c, const stmt_t *s)
{
    const char *name = "";
    size_t nlen = 0;
    if (s->kind == STMT_SET || s->kind == STMT_RESET)
        nlen = statement_name(s->text, &name);
    bool all =
        s->kind == STMT_DISCARD_ALL || (s->kind == STMT_RESET && WORD_IS_CI(name, nlen, "all"));
    /* drop earlier SET statements this one overrides; startup values stay
     * (RESET goes back to them) */
    int keep = 0;
    for (int i = 0; i < c->n_replay; i++) {
        replay_entry_t *e = &c->replay[i];
        bool drop =
            !e->value && (all ? s->kind == STMT_DISCARD_ALL || !survives_reset_all(e->name)
                              : strlen(e->name) == nlen && strncasecmp(e->name, name, nlen) == 0);
        if (drop)
            entry_free(e);
        else
            c->replay[keep++] = *e;
    }
    c->n_replay = keep;
    c->replay_version++;
    return s->kind != STMT_SET || add_entry(c, name, nlen, NULL, s->text);
}

/* The open transaction committed: its staged statements join the session. */
static void tx_commit(client_t *c)
{
    stmt_list_t *tx = &c->track->tx;
    bool changed = false, ok = true;
    for (size_t i = tx->head; ok && i < tx->len; i++)
        if (tx->items[i].kind != STMT_SAVEPOINT) {
            ok = apply(c, &tx->items[i]);
            changed = true;
        }
    stmt_list_clear(tx);
    if (!ok) {
        client_fail(c, "53200", "out of memory", NULL);
        return;
    }
    if (changed && c->server) {
        /* the statements ran on this server: it is at the new state */
        c->server->dirty_owner = c->id;
        c->server->dirty_version = c->replay_version;
    }
}

/* The latest savepoint of this name in the open transaction, or SIZE_MAX
 * when it was not tracked. */
static size_t find_savepoint(const stmt_list_t *tx, const char *name)
{
    for (size_t i = tx->len; i > tx->head; i--)
        if (tx->items[i - 1].kind == STMT_SAVEPOINT && strcmp(tx->items[i - 1].text, name) == 0)
            return i - 1;
    return SIZE_MAX;
}

/* Stage one statement that completed (kind as classified, tag as reported). */
static void stage(client_t *c, stmt_t *s, const char *tag)
{
    stmt_list_t *tx = &c->track->tx;
    static const char *const tags[] = {[STMT_SET] = "SET",
                                       [STMT_RESET] = "RESET",
                                       [STMT_DISCARD_ALL] = "DISCARD ALL",
                                       [STMT_SAVEPOINT] = "SAVEPOINT",
                                       [STMT_RELEASE] = "RELEASE",
                                       [STMT_ROLLBACK_TO] = "ROLLBACK"};
    if (s->kind == STMT_OTHER || s->kind == STMT_END || strcmp(tag, tags[s->kind]) != 0)
        return;
    size_t sp;
    switch (s->kind) {
    case STMT_RELEASE: {
        /* ends the savepoint and those taken after it; the SETs made since
         * now belong to the enclosing (sub)transaction */
        sp = find_savepoint(tx, s->text);
        if (sp == SIZE_MAX)
            return;
        size_t keep = sp;
        for (size_t i = sp; i < tx->len; i++) {
            if (tx->items[i].kind == STMT_SAVEPOINT)
                free(tx->items[i].text);
            else
                tx->items[keep++] = tx->items[i];
        }
        tx->len = keep;
        if (tx->head == tx->len)
            tx->head = tx->len = 0;
        return;
    }
    case STMT_ROLLBACK_TO:
        /* undoes what followed the savepoint, which stays; an untracked
         * savepoint: assume the worst, nothing of the transaction is left */
        sp = find_savepoint(tx, s->text);
        stmt_list_truncate(tx, sp == SIZE_MAX ? tx->head : sp + 1);
        return;
    default:
        if (!stmt_list_push(tx, s->kind, s->text)) {
            s->text = NULL;
            client_fail(c, "53200", "out of memory", NULL);
            return;
        }
        s->text = NULL; /* now the transaction's */
        return;
    }
}

void replay_command_done(client_t *c, const char *tag)
{
    struct replay_track *t = c->track;
    if (!t)
        return;
    stmt_list_t *q = &t->queries;
    stmt_t *s = NULL;
    if (aligned(c, t) && q->len > q->head && q->items[q->head].kind != STMT_END)
        s = &q->items[q->head];
    if (s && s->kind != STMT_OTHER)
        stage(c, s, tag);
    if (c->state == CL_CLOSING)
        return;
    if (!s || s->kind != STMT_ROLLBACK_TO) {
        if (strcmp(tag, "COMMIT") == 0 || strcmp(tag, "PREPARE TRANSACTION") == 0)
            tx_commit(c);
        else if (strcmp(tag, "ROLLBACK") == 0) /* also a COMMIT of a failed transaction */
            stmt_list_clear(&t->tx);
    }
    if (s && (s->kind != STMT_OTHER || --s->count == 0))
        stmt_list_pop(q);
}

void replay_error(client_t *c)
{
    struct replay_track *t = c->track;
    if (!t)
        return;
    t->failed = true;
    /* the rest of that Query string is not run */
    stmt_list_t *q = &t->queries;
    if (aligned(c, t))
        while (q->len > q->head && q->items[q->head].kind != STMT_END)
            stmt_list_pop(q);
}

void replay_ready(client_t *c, char tx_status)
{
    struct replay_track *t = c->track;
    if (!t)
        return;
    stmt_list_t *q = &t->queries;
    if (!aligned(c, t)) {
        /* an untracked request ended, or one of the tracked: give up on them */
        stmt_list_clear(q);
        t->n_queries = 0;
    } else if (t->n_queries > 0) {
        while (q->items[q->head].kind != STMT_END)
            stmt_list_pop(q);
        stmt_list_pop(q);
        t->n_queries--;
    }
    if (tx_status == 'I') {
        /* outside a transaction block: the implicit transaction committed
         * unless an error ended it */
        if (t->failed)
            stmt_list_clear(&t->tx);
        else
            tx_commit(c);
    }
    t->failed = false;
}

void replay_free(client_t *c)
{
    for (int i = 0; i < c->n_replay; i++)
        entry_free(&c->replay[i]);
    free(c->replay);
    c->replay = NULL;
    c->n_replay = 0;
    if (c->track) {
        stmt_list_free(&c->track->queries);
        stmt_list_free(&c->track->tx);
        free(c->track);
        c->track = NULL;
    }
}

/* ---- bringing a server to the client's state ---- */

/* The startup value this client gave for a reported setting, or NULL. */
static const char *startup_value(const client_t *c, const char *name)
{
    for (int i = 0; i < c->n_replay; i++)
        if (c->replay[i].value && strcasecmp(c->replay[i].name, name) == 0)
            return c->replay[i].value;
    return NULL;
}

bool replay_sync_sql(client_t *c, server_t *sv, char **sql)
{
    *sql = NULL;
    if (sv->dirty_owner == c->id && sv->dirty_version == c->replay_version)
        return true;
    /* Settings other than the reported ones cannot be seen on the server: one
     * that carries them for someone else (or for an older state of this
     * client) is reset to its login state first. Reported settings are
     * compared with what the server says, so clients that differ only in
     * application_name and the like share servers without a reset. */
    bool reset = sv->dirty_owner != 0;
    bool dirty = false;
    buf_t b = {0};
    bool ok = !reset || buf_append(&b, reset_sql, strlen(reset_sql));
    for (int i = 0; ok && i < c->n_replay; i++) {
        replay_entry_t *e = &c->replay[i];
        if (e->value && is_reported(e->name)) {
            const char *cur = reset ? server_param_login(sv, e->name) : server_param(sv, e->name);
            if (cur && strcmp(cur, e->value) == 0)
                continue;
        } else {
            dirty = true;
        }
        ok = buf_append(&b, e->stmt, strlen(e->stmt)) && BUF_LIT(&b, ";");
    }
    /* reported settings an earlier client brought away from the login value */
    for (int i = 0; ok && !reset && i < sv->n_params; i++) {
        const server_param_t *p = &sv->params[i];
        if (!p->login_value || strcmp(p->value, p->login_value) == 0 || startup_value(c, p->name) ||
            !is_resettable(p->name))
            continue;
        ok = BUF_LIT(&b, "RESET ") && buf_append(&b, p->name, strlen(p->name)) && BUF_LIT(&b, ";");
    }
    ok = ok && BUF_LIT_NUL(&b, "");
    if (!ok) {
        buf_free(&b);
        return false;
    }
    /* whatever unseen state was applied must be reset before another client gets it */
    sv->dirty_owner = dirty ? c->id : 0;
    sv->dirty_version = c->replay_version;
    if (b.len <= 1)
        buf_free(&b);
    else
        *sql = b.data;
    return true;
}
