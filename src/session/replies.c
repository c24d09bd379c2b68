/* replies — see replies.h. */
#include "session/replies.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"
#include "common/log.h"
#include "session/named.h"
#include "session/plan_reuse.h"
#include "session/refuse.h"

/* The tracked table whose delta is named by `"d_<id>"` at p, or NULL. */
static const catalog_table_t *delta_table_at(const catalog_t *cat, const char *p, size_t *len)
{
    if (strncmp(p, "\"d_", 3) != 0)
        return NULL;
    char *end;
    long id = strtol(p + 3, &end, 10);
    if (end == p + 3 || *end != '"')
        return NULL;
    const catalog_table_t *t = catalog_find_id(cat, id);
    if (t)
        *len = (size_t)(end + 1 - p);
    return t;
}

/* The tracked table whose delta a field 'n' (table name) names, or NULL. */
static const catalog_table_t *delta_table_named(const catalog_t *cat, const char *val)
{
    if (!HAS_PREFIX(val, "d_"))
        return NULL;
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\"", val);
    size_t l;
    const catalog_table_t *t = delta_table_at(cat, quoted, &l);
    return t && l == strlen(quoted) ? t : NULL;
}

/* PostgreSQL's "permission denied for view <v>" where v is one of the
 * access views of a tracked table (functions/access.sql: dv_<id>, hv_,
 * bv_, dk_, hk_, bk_; they carry the table's grants when it has column
 * privileges): that table, or NULL. */
static const catalog_table_t *access_view_denied(const catalog_t *cat, const char *m)
{
    if (!HAS_PREFIX(m, "permission denied for view "))
        return NULL;
    const char *v = m + LIT_LEN("permission denied for view ");
    if (!v[0] || !strchr("dhb", v[0]) || !v[1] || !strchr("vk", v[1]) || v[2] != '_')
        return NULL;
    char *end;
    long id = strtol(v + 3, &end, 10);
    return end == v + 3 || *end != '\0' ? NULL : catalog_find_id(cat, id);
}

/* "Failing row contains (…)." of the delta's row: without the branch id
 * (first) and the deleted flag (last). */
static bool fix_failing_row(const char *val, const char *nul, buf_t *out, bool *ok)
{
    if (!HAS_PREFIX(val, "Failing row contains ("))
        return false;
    const char *first = val + 22, *digits = first;
    while (*digits >= '0' && *digits <= '9')
        digits++;
    size_t vl = (size_t)(nul - val);
    const char *tail = vl > 27 ? nul - 5 : NULL; /* ", f)." */
    if (!(digits > first && HAS_PREFIX(digits, ", ") && tail &&
          (strcmp(tail, ", f).") == 0 || strcmp(tail, ", t).") == 0)))
        return false;
    *ok = buf_append(out, val, 22) && buf_append(out, digits + 2, (size_t)(tail - (digits + 2))) &&
          BUF_LIT_NUL(out, ").");
    return true;
}

/* Message or detail text: every `"d_<id>"` replaced by the table's name. */
static bool fix_text(const catalog_t *cat, const char *val, const char *nul, buf_t *out,
                     bool *changed)
{
    bool ok = true;
    for (const char *q = val; ok && q < nul;) {
        size_t l;
        const catalog_table_t *t = *q == '"' ? delta_table_at(cat, q, &l) : NULL;
        if (t) {
            ok = buf_append(out, "\"", 1) && buf_append(out, t->name, strlen(t->name)) &&
                 buf_append(out, "\"", 1);
            q += l;
            *changed = true;
        } else {
            ok = buf_append(out, q, 1);
            q++;
        }
    }
    return ok && BUF_LIT_NUL(out, "");
}

/* Errors raised on a branch's storage name the table the client wrote. A
 * missing epoch relation means the catalog changed under the session:
 * reload it. */
static hook_reply_t fix_error(session_state_t *ss, const char *msg, size_t total, buf_t *out)
{
    const char *body = msg + 5, *end = msg + total;
    const char *state = proto_error_field(body, total - 5, 'C');
    const char *m = proto_error_field(body, total - 5, 'M');
    if (state && m && strcmp(state, "42P01") == 0 && strstr(m, "epoch."))
        ss->stale = true;
    const catalog_table_t *denied =
        state && m && strcmp(state, "42501") == 0 ? access_view_denied(&ss->cat, m) : NULL;
    if (!denied && !memmem(body, total - 5, "d_", 2))
        return REPLY_FORWARD;
    size_t start;
    if (!buf_msg_begin(out, 'E', &start))
        return REPLY_FORWARD;
    bool changed = false, ok = true;
    for (const char *p = body; ok && p < end && *p;) {
        char code = *p++;
        const char *val = p;
        const char *nul = memchr(val, 0, (size_t)(end - val));
        if (!nul)
            return REPLY_FORWARD;
        p = nul + 1;
        ok = buf_put_u8(out, (uint8_t)code);
        if (code == 'M' && denied) {
            /* as PostgreSQL words it for the table on main */
            ok = ok && BUF_LIT(out, "permission denied for table ") &&
                 buf_put_str(out, denied->name);
            changed = true;
            continue;
        }
        const catalog_table_t *t = code == 'n' ? delta_table_named(&ss->cat, val) : NULL;
        if (t) {
            ok = ok && buf_put_str(out, t->name);
            changed = true;
            continue;
        }
        if (code == 'D' && fix_failing_row(val, nul, out, &ok)) {
            changed = true;
            continue;
        }
        if (code == 'M' || code == 'D')
            ok = ok && fix_text(&ss->cat, val, nul, out, &changed);
        else
            ok = ok && buf_put_str(out, val);
    }
    ok = ok && buf_put_u8(out, 0);
    if (!ok || !changed) {
        buf_reset(out);
        return REPLY_FORWARD;
    }
    buf_msg_end(out, start);
    return REPLY_REPLACE;
}

/* A CommandComplete "INSERT 0 n" that stands for UPDATE n / DELETE n. */
static hook_reply_t fix_tag(session_state_t *ss, const char *msg, size_t total, int index,
                            buf_t *out)
{
    for (int i = 0; i < ss->nfix; i++) {
        struct tag_fix *fx = &ss->fixes[i];
        if (fx->batch != ss->sbatch || fx->index != index)
            continue;
        char kind = fx->kind;
        *fx = ss->fixes[--ss->nfix];
        const char *tag = msg + 5;
        size_t len = total - 5;
        if (len < 10 || !HAS_PREFIX(tag, "INSERT 0 ") || tag[len - 1] != '\0')
            return REPLY_FORWARD;
        size_t start;
        if (!buf_msg_begin(out, 'C', &start) ||
            !buf_append(out, kind == 'U' ? "UPDATE " : "DELETE ", 7) || !buf_put_str(out, tag + 9))
            return REPLY_FORWARD;
        buf_msg_end(out, start);
        return REPLY_REPLACE;
    }
    return REPLY_FORWARD;
}

hook_reply_t session_reply(client_t *c, const char *msg, size_t total, buf_t *out)
{
    session_state_t *ss = session_of(c);
    char type = msg[0];
    if (plan_reuse_reply(ss, type))
        return REPLY_DROP;
    if (type == 'E' && session_fix_refusal(ss, msg, total, out))
        return REPLY_REPLACE;
    buf_reset(out);
    if (type == 'E' && session_loaded(ss))
        return fix_error(ss, msg, total, out);
    if (type == 'Z') {
        ss->sbatch++;
        ss->scount = 0;
        /* fixes of answered batches will never match: drop them */
        int kept = 0;
        for (int i = 0; i < ss->nfix; i++)
            if (ss->fixes[i].batch >= ss->sbatch)
                ss->fixes[kept++] = ss->fixes[i];
        ss->nfix = kept;
        return REPLY_FORWARD;
    }
    if (type != 'C' && type != 's' && type != 'I')
        return REPLY_FORWARD;
    int index = ss->scount++;
    if (type != 'C' || ss->nfix == 0)
        return REPLY_FORWARD;
    return fix_tag(ss, msg, total, index, out);
}

void session_forwarded(client_t *c, const char *msg, size_t total)
{
    session_state_t *ss = session_of(c);
    const char *body = msg + 5, *end = msg + total;
    switch (msg[0]) {
    case 'P':
        if (total > 5 && body[0] == '\0')
            ss->mapped_gen = 0; /* the client's own unnamed statement again */
        else if (memchr(body, 0, (size_t)(end - body)) && !named_prepared(ss, body))
            client_fail(c, "53200", "out of memory", NULL);
        break;
    case 'Q':
    case 'S':
    case 'F':
        ss->cbatch++;
        ss->cexec = 0;
        break;
    case 'B': {
        proto_bind_msg_t b;
        if (!proto_bind_decode(msg, total, &b))
            break;
        char kind = named_kind_get(ss->stmts, ss->nstmts, b.statement);
        if (!named_kind_set(&ss->portals, &ss->nportals, b.portal, kind))
            client_fail(c, "53200", "out of memory", NULL);
        break;
    }
    case 'E': {
        if (!memchr(body, 0, (size_t)(end - body)))
            break;
        char kind = named_kind_get(ss->portals, ss->nportals, body);
        if (kind != '-' && !session_push_fix(ss, ss->cbatch, ss->cexec, kind))
            log_warning("client %llu: too many pipelined branch writes; tags not fixed",
                        (unsigned long long)ss->client_id);
        ss->cexec++;
        break;
    }
    case 'C':
        if (total > 6 && memchr(body + 1, 0, (size_t)(end - body - 1))) {
            if (body[0] == 'S' && body[1] == '\0')
                ss->mapped_gen = 0;
            /* removing never allocates */
            if (body[0] == 'S')
                named_forget(ss, body + 1);
            if (body[0] == 'S')
                (void)!named_kind_set(&ss->stmts, &ss->nstmts, body + 1, '-');
            else
                (void)!named_kind_set(&ss->portals, &ss->nportals, body + 1, '-');
        }
        break;
    default:
        break;
    }
}

bool session_record_tags(client_t *c, const char *msg, const rw_result_t *r)
{
    session_state_t *ss = session_of(c);
    if (msg[0] == 'P') {
        char kind = r->action == RW_REWRITTEN && r->tags[0] ? r->tags[0] : '-';
        return named_kind_set(&ss->stmts, &ss->nstmts, msg + 5, kind);
    }
    for (int i = 0; r->tags[i]; i++)
        if (r->tags[i] != '-' && !session_push_fix(ss, ss->cbatch, i, r->tags[i]))
            return false;
    return true;
}
