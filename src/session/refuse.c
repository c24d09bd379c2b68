/* refuse — see refuse.h. */
#include "session/refuse.h"

#include "common/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sqlbuf.h"

/* ", LABEL = 'text'" inside the DO block below: text holding the
 * dollar-quote tag would end the block early, so the tag is defused. */
static void raise_field(sqlbuf_t *sb, const char *label, const char *text)
{
    char *safe = strdup(text);
    if (!safe) {
        sb->failed = true;
        return;
    }
    for (char *p = safe; (p = strstr(p, "$epoch_refuse$")) != NULL;)
        *p = '?';
    sqlbuf_printf(sb, ", %s = ", label);
    sqlbuf_literal(sb, safe);
    free(safe);
}

/* A statement that raises the given error inside PostgreSQL. */
static char *raise_sql(const char *sqlstate, const char *message, const char *hint,
                       const char *detail)
{
    sqlbuf_t sb = {0};
    SQLBUF_LIT(&sb, "DO $epoch_refuse$BEGIN RAISE EXCEPTION USING ERRCODE = ");
    sqlbuf_literal(&sb, sqlstate);
    raise_field(&sb, "MESSAGE", message);
    if (detail)
        raise_field(&sb, "DETAIL", detail);
    if (hint)
        raise_field(&sb, "HINT", hint);
    SQLBUF_LIT(&sb, "; END$epoch_refuse$");
    return sqlbuf_take(&sb);
}

bool session_send_replacement(client_t *c, const char *msg, size_t total, const char *sql)
{
    session_state_t *ss = session_of(c);
    if (msg[0] == 'Q') {
        if (!client_send_query(c, sql))
            return false;
        ss->cbatch++;
        ss->cexec = 0;
        return true;
    }
    /* Parse: name, the new text, then the parameter types as they are */
    proto_parse_msg_t p;
    if (!proto_parse_decode(msg, total, &p))
        return false;
    buf_t b = {0};
    size_t start;
    bool ok = buf_msg_begin(&b, 'P', &start) && buf_put_str(&b, p.name) && buf_put_str(&b, sql) &&
              buf_append(&b, p.types, p.types_len);
    if (ok)
        buf_msg_end(&b, start);
    ok = ok && client_send_extended(c, &b, false);
    buf_free(&b);
    return ok;
}

/* The client's Parse with every unspecified parameter type (0) declared
 * text: the DO block uses no parameter, and PostgreSQL would fail the Parse
 * with 42P18 before our error. A copy (caller frees), or NULL. */
static char *parse_with_text_types(const char *msg, size_t total)
{
    proto_parse_msg_t p;
    if (!proto_parse_decode(msg, total, &p))
        return NULL;
    char *copy = malloc(total);
    if (!copy)
        return NULL;
    memcpy(copy, msg, total);
    char *types = copy + (p.types - msg);
    if (p.types_len >= 2) {
        int n = rd_u16(types);
        for (int i = 0; i < n && 2 + 4 * (size_t)(i + 1) <= p.types_len; i++)
            if (rd_u32(types + 2 + 4 * i) == 0)
                wr_u32(types + 2 + 4 * i, 25);
    }
    return copy;
}

bool session_refuse(client_t *c, const char *msg, size_t total, const char *sqlstate,
                    const char *message, const char *hint, const char *detail)
{
    char *sql = raise_sql(sqlstate, message, hint, detail);
    char *copy = NULL;
    if (sql && msg[0] == 'P') {
        copy = parse_with_text_types(msg, total);
        msg = copy;
    }
    bool ok = sql && msg && session_send_replacement(c, msg, total, sql);
    free(copy);
    free(sql);
    return ok;
}

/* For a simple Query, nothing else is in flight (internal statements run
 * only then), so the error and ReadyForQuery can be written directly. */
hook_verdict_t session_answer_error(client_t *c, const char *msg, size_t total)
{
    session_state_t *ss = session_of(c);
    char state[6];
    memcpy(state, ss->err_state, sizeof state);
    char *m = ss->err_msg;
    ss->err_state[0] = '\0';
    ss->err_msg = NULL;
    ss->stale = true; /* whatever failed, do not trust the catalog */
    session_set_phase(ss, PHASE_IDLE);
    const char *text = m ? m : "epoch internal statement failed";
    if (msg[0] == 'Q')
        client_answer_error(c, state, text);
    else if (!session_refuse(c, msg, total, state, text, NULL, NULL))
        client_fail(c, "53200", "out of memory", NULL);
    free(m);
    return HOOK_DONE;
}

#define MARKER "_epoch_refused_"
#define NREFUSALS                                                                                  \
    ((uint32_t)(sizeof((session_state_t *)0)->refusals / sizeof((session_state_t *)0)->refusals[0]))

bool session_refuse_by_marker(session_state_t *ss, const char *msg, size_t total,
                              const char *sqlstate, char *message, const char *hint, buf_t *out)
{
    uint32_t n = ss->next_refusal++;
    struct marker_refusal *r = &ss->refusals[n % NREFUSALS];
    free(r->message);
    snprintf(r->sqlstate, sizeof r->sqlstate, "%s", sqlstate);
    r->message = message;
    r->hint = hint;
    char marker[40];
    snprintf(marker, sizeof marker, MARKER "%u", n);
    size_t start;
    bool ok;
    if (msg[0] == 'B') {
        proto_bind_msg_t b;
        ok = proto_bind_decode(msg, total, &b) && buf_msg_begin(out, 'B', &start) &&
             buf_put_str(out, b.portal) && buf_put_str(out, marker) &&
             buf_append(out, b.rest, b.rest_len);
    } else {
        ok = buf_msg_begin(out, 'D', &start) && buf_put_u8(out, 'S') && buf_put_str(out, marker);
    }
    if (ok)
        buf_msg_end(out, start);
    return ok;
}

bool session_fix_refusal(session_state_t *ss, const char *msg, size_t total, buf_t *out)
{
    const char *m = proto_error_field(msg + 5, total - 5, 'M');
    const char *at = m ? strstr(m, "\"" MARKER) : NULL;
    if (!at)
        return false;
    unsigned long n = strtoul(at + 1 + strlen(MARKER), NULL, 10);
    const struct marker_refusal *r = &ss->refusals[n % NREFUSALS];
    if (!r->sqlstate[0] || (uint32_t)n + NREFUSALS < ss->next_refusal)
        return false; /* not one of ours, or overwritten: PostgreSQL's text stands */
    return proto_error(out, "ERROR", r->sqlstate, r->message ? r->message : "out of memory",
                       r->hint);
}

void session_refusals_free(session_state_t *ss)
{
    for (uint32_t i = 0; i < NREFUSALS; i++) {
        free(ss->refusals[i].message);
        ss->refusals[i].message = NULL;
    }
}
