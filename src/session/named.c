/* named — see named.h. */
#include "session/named.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/text.h"
#include "common/lexer.h"
#include "common/sqlbuf.h"
#include "session/refuse.h"

/* A named statement and the ref it was prepared on. */
typedef struct named_stmt {
    char *name;
    bool on_main;      /* prepared on main (not rewritten for a branch) */
    int64_t branch_id; /* otherwise: the ref it was rewritten for */
    int64_t base_seq;
    int64_t point;
    bool read_only;
    char *ref_name; /* for messages */
} named_stmt_t;

static bool on_main(const session_state_t *ss)
{
    return !session_on_branch(ss);
}

static bool same_ref(const session_state_t *ss, const named_stmt_t *n)
{
    if (n->on_main || on_main(ss))
        return n->on_main && on_main(ss);
    return n->branch_id == ss->cat.branch_id && n->base_seq == ss->cat.base_seq &&
           n->point == ss->cat.point && n->read_only == ss->cat.read_only;
}

static const char *ref_name(const session_state_t *ss)
{
    return on_main(ss) || !ss->cat.branch_name ? "main" : ss->cat.branch_name;
}

static named_stmt_t *find(const session_state_t *ss, const char *name)
{
    for (int i = 0; i < ss->n_named; i++)
        if (strcmp(ss->named[i].name, name) == 0)
            return &ss->named[i];
    return NULL;
}

static void stmt_free(named_stmt_t *n)
{
    free(n->name);
    free(n->ref_name);
}

bool named_prepared(session_state_t *ss, const char *name)
{
    if (!name[0])
        return true; /* the unnamed statement lives until the next Parse */
    named_stmt_t *n = find(ss, name);
    if (n)
        return true; /* the same ref, or a Parse PostgreSQL refuses (42P05):
                        the statement keeps the ref it was prepared on */
    named_stmt_t *grown = realloc(ss->named, (size_t)(ss->n_named + 1) * sizeof *grown);
    if (!grown)
        return false;
    ss->named = grown;
    named_stmt_t fresh = {.name = strdup(name),
                          .on_main = on_main(ss),
                          .branch_id = ss->cat.branch_id,
                          .base_seq = ss->cat.base_seq,
                          .point = ss->cat.point,
                          .read_only = ss->cat.read_only,
                          .ref_name = strdup(ref_name(ss))};
    if (!fresh.name || !fresh.ref_name) {
        stmt_free(&fresh);
        return false;
    }
    ss->named[ss->n_named++] = fresh;
    return true;
}

void named_forget(session_state_t *ss, const char *name)
{
    named_stmt_t *n = find(ss, name);
    if (!n)
        return;
    stmt_free(n);
    *n = ss->named[--ss->n_named];
}

void named_forget_all(session_state_t *ss)
{
    for (int i = 0; i < ss->n_named; i++)
        stmt_free(&ss->named[i]);
    ss->n_named = 0;
}

void named_free(session_state_t *ss)
{
    named_forget_all(ss);
    free(ss->named);
    ss->named = NULL;
}

char *named_stale(const session_state_t *ss, const char *name)
{
    const named_stmt_t *n = find(ss, name);
    if (n ? same_ref(ss, n) : on_main(ss))
        return NULL;
    sqlbuf_t sb = {0};
    if (n)
        sqlbuf_printf(&sb,
                      "prepared statement \"%s\" was prepared on branch \"%s\", and the session "
                      "is now on branch \"%s\"",
                      name, n->ref_name, ref_name(ss));
    else
        sqlbuf_printf(&sb,
                      "prepared statement \"%s\" was prepared on main, before the session "
                      "moved to branch \"%s\"",
                      name, ref_name(ss));
    char *msg = sqlbuf_take(&sb);
    return msg ? msg : strdup("");
}

#define NAMED_HINT                                                                                 \
    "A prepared statement keeps the branch it was prepared on. Prepare it again on this "          \
    "branch (DEALLOCATE, then PREPARE), or set epoch.branch back to the branch it was "            \
    "prepared on."

/* ---- SQL: PREPARE, EXECUTE, DEALLOCATE ---- */

/* The statement name at pos, folded as PostgreSQL folds it (quoted: as
 * written; bare: lower case); NULL if none. *end = past it. */
static char *name_at(const char *sql, size_t pos, size_t *end)
{
    bool word;
    size_t e = lex_token_end(sql, pos, true, &word);
    *end = e;
    if (word) {
        char *name = strndup(sql + pos, e - pos);
        for (char *p = name; p && *p; p++)
            *p = (char)tolower((unsigned char)*p);
        return name;
    }
    if (sql[pos] != '"' || e < pos + 2 || sql[e - 1] != '"')
        return NULL;
    sqlbuf_t sb = {0};
    for (size_t i = pos + 1; i < e - 1; i++) {
        sqlbuf_putc(&sb, sql[i]);
        if (sql[i] == '"')
            i++; /* "" is one quote */
    }
    return sqlbuf_take(&sb);
}

/* The word at pos equals w (case-insensitive, whole word). */
static bool word_at(const char *sql, size_t pos, const char *w)
{
    size_t n = strlen(w);
    return strncasecmp(sql + pos, w, n) == 0 && !lex_ident_char((unsigned char)sql[pos + n]);
}

/* Past the word at pos and the blanks after it. */
static size_t after(const char *sql, size_t pos, const char *w)
{
    return lex_skip_blank(sql, pos + strlen(w));
}

/* Where the executed statement's name starts in the statement at p (which
 * ends at end), or 0 when it executes none: EXECUTE s, EXPLAIN … EXECUTE
 * s, CREATE TABLE … AS EXECUTE s. */
static size_t executed_name(const char *sql, size_t p, size_t end)
{
    if (word_at(sql, p, "execute"))
        return after(sql, p, "execute");
    if (!word_at(sql, p, "explain") && !word_at(sql, p, "create"))
        return 0;
    size_t k = lex_find_keyword(sql, p, end, "execute");
    return k < end ? after(sql, k, "execute") : 0;
}

/* One statement [p, end): record, forget or check. Returns a refusal or NULL. */
static char *scan_statement(session_state_t *ss, const char *sql, size_t p, size_t end, bool *any,
                            bool *oom)
{
    size_t e;
    if (word_at(sql, p, "prepare")) {
        *any = true;
        char *name = name_at(sql, after(sql, p, "prepare"), &e);
        *oom |= name && !named_prepared(ss, name);
        free(name);
        return NULL;
    }
    if (word_at(sql, p, "deallocate") || word_at(sql, p, "discard")) {
        *any = true;
        size_t q = after(sql, p, word_at(sql, p, "discard") ? "discard" : "deallocate");
        if (word_at(sql, q, "prepare"))
            q = after(sql, q, "prepare");
        if (word_at(sql, q, "all")) {
            named_forget_all(ss);
            return NULL;
        }
        char *name = word_at(sql, p, "deallocate") ? name_at(sql, q, &e) : NULL;
        if (name)
            named_forget(ss, name);
        free(name);
        return NULL;
    }
    size_t at = executed_name(sql, p, end);
    if (!at)
        return NULL;
    *any = true;
    char *name = name_at(sql, at, &e);
    char *refusal = name ? named_stale(ss, name) : NULL;
    free(name);
    return refusal;
}

char *named_scan_query(session_state_t *ss, const char *sql, bool *any)
{
    *any = false;
    bool oom = false;
    size_t p = 0;
    while (sql[p = lex_skip_blank(sql, p)]) {
        if (sql[p] == ';') {
            p++;
            continue;
        }
        size_t end;
        size_t next = lex_statement_end(sql, p, true, &end);
        char *refusal = scan_statement(ss, sql, p, end, any, &oom);
        if (refusal)
            return refusal;
        p = next;
    }
    return oom ? strdup("") : NULL;
}

/* ---- the extended protocol: Bind and Describe ---- */

bool named_redirect(session_state_t *ss, const char *msg, size_t total, buf_t *out)
{
    if (ss->n_named == 0 && on_main(ss))
        return false; /* everything was prepared on main, where the session is */
    const char *name;
    proto_bind_msg_t b;
    if (msg[0] == 'B') {
        if (!proto_bind_decode(msg, total, &b))
            return false;
        name = b.statement;
    } else if (total > 6 && msg[5] == 'S' && msg[total - 1] == '\0') {
        name = msg + 6; /* Describe of a statement */
    } else {
        return false;
    }
    if (!name[0] || HAS_PREFIX(name, "_epoch_"))
        return false; /* unnamed, or the proxy's own (plan_reuse.c) */
    char *refusal = named_stale(ss, name);
    return refusal &&
           session_refuse_by_marker(ss, msg, total, NAMED_SQLSTATE, refusal, NAMED_HINT, out);
}

const char *named_hint(void)
{
    return NAMED_HINT;
}
