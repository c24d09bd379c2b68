/* plan_reuse — see plan_reuse.h. */
#include "session/plan_reuse.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

/* PostgreSQL's own typing of a numeric constant: int4, int8 or numeric. */
static uint32_t numeric_type(const char *lit)
{
    for (const char *p = lit; *p; p++)
        if (!isdigit((unsigned char)*p))
            return 1700; /* numeric: has a point or an exponent */
    size_t n = strlen(lit);
    if (n < 10 || (n == 10 && strcmp(lit, "2147483647") <= 0))
        return 23;
    if (n < 19 || (n == 19 && strcmp(lit, "9223372036854775807") <= 0))
        return 20;
    return 1700;
}

static bool is_prepared(const session_state_t *ss, uint64_t h)
{
    for (int i = 0; i < ss->n_prepared; i++)
        if (ss->prepared[i] == h)
            return true;
    return false;
}

static void forget_prepared(session_state_t *ss, uint64_t h)
{
    for (int i = 0; i < ss->n_prepared; i++)
        if (ss->prepared[i] == h) {
            ss->prepared[i] = ss->prepared[--ss->n_prepared];
            return;
        }
}

/* The statement's name: the session's view, the text and the constants'
 * types (1 and 1.07 are different statements). false = out of memory. */
static bool query_hash(const char *view, const rw_template_t *tp, uint64_t *h)
{
    XXH3_state_t *st = XXH3_createState();
    if (!st)
        return false;
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, view, strlen(view) + 1);
    XXH3_64bits_update(st, tp->sql, strlen(tp->sql));
    for (int i = 0; i < tp->nlits; i++) {
        uint32_t type = numeric_type(tp->lits[i]);
        XXH3_64bits_update(st, &type, sizeof type);
    }
    *h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return true;
}

/* Close (a failed earlier attempt may have left it behind) and Parse. */
static bool put_prepare(buf_t *b, const char *name, const rw_template_t *tp)
{
    size_t start;
    if (!buf_msg_begin(b, 'C', &start) || !buf_put_u8(b, 'S') || !buf_put_str(b, name))
        return false;
    buf_msg_end(b, start);
    if (!buf_msg_begin(b, 'P', &start) || !buf_put_str(b, name) || !buf_put_str(b, tp->sql) ||
        !buf_put_i16(b, (int16_t)tp->nlits))
        return false;
    for (int i = 0; i < tp->nlits; i++)
        if (!buf_put_i32(b, (int32_t)numeric_type(tp->lits[i])))
            return false;
    buf_msg_end(b, start);
    return true;
}

/* Bind the constants to name, Describe, Execute, Sync. */
static bool put_execute(buf_t *b, const char *name, const rw_template_t *tp)
{
    size_t start;
    if (!buf_msg_begin(b, 'B', &start) || !buf_put_str(b, "") || !buf_put_str(b, name) ||
        !buf_put_i16(b, 0) || !buf_put_i16(b, (int16_t)tp->nlits))
        return false;
    for (int i = 0; i < tp->nlits; i++) {
        size_t l = strlen(tp->lits[i]);
        if (!buf_put_i32(b, (int32_t)l) || !buf_append(b, tp->lits[i], l))
            return false;
    }
    if (!buf_put_i16(b, 0))
        return false;
    buf_msg_end(b, start);
    if (!buf_msg_begin(b, 'D', &start) || !buf_put_u8(b, 'P') || !buf_put_str(b, ""))
        return false;
    buf_msg_end(b, start);
    if (!buf_msg_begin(b, 'E', &start) || !buf_put_str(b, "") || !buf_put_i32(b, 0))
        return false;
    buf_msg_end(b, start);
    if (!buf_msg_begin(b, 'S', &start))
        return false;
    buf_msg_end(b, start);
    return true;
}

bool plan_reuse_query(client_t *c, const rw_template_t *tp, bool *oom)
{
    session_state_t *ss = session_of(c);
    *oom = false;
    if (client_pooled(c) || client_inflight(c) > 0 || client_unsynced(c) || !tp->sql ||
        tp->first != 1 || tp->nlits == 0 || tp->nlits > 100)
        return false;
    for (int i = 0; i < tp->nlits; i++)
        if (!isdigit((unsigned char)tp->lits[i][0]))
            return false; /* a '...' constant: its type depends on context */
    uint64_t h;
    if (!query_hash(ss->view, tp, &h)) {
        *oom = true;
        return false;
    }
    bool known = is_prepared(ss, h);
    if (!known && ss->n_prepared == MAX_PREPARED)
        return false;
    if (!ss->prepared && !(ss->prepared = calloc(MAX_PREPARED, sizeof *ss->prepared))) {
        *oom = true;
        return false;
    }
    char name[32];
    snprintf(name, sizeof name, "_epoch_%016llx", (unsigned long long)h);
    buf_t b = {0};
    bool ok = (known || put_prepare(&b, name, tp)) && put_execute(&b, name, tp) &&
              client_send_extended(c, &b, true);
    buf_free(&b);
    if (!ok) {
        *oom = true;
        return false;
    }
    if (!known)
        ss->prepared[ss->n_prepared++] = h;
    ss->new_stmt = known ? 0 : h;
    ss->swallow = true;
    ss->cbatch++;
    ss->cexec = 0;
    return true;
}

static bool unnamed_hash(const char *view, const char *sql, const proto_parse_msg_t *p, uint64_t *h)
{
    XXH3_state_t *st = XXH3_createState();
    if (!st)
        return false;
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, view, strlen(view) + 1);
    XXH3_64bits_update(st, sql, strlen(sql) + 1);
    XXH3_64bits_update(st, p->types, p->types_len);
    *h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return true;
}

bool plan_reuse_unnamed(client_t *c, const char *msg, size_t total, const char *sql, bool *oom)
{
    session_state_t *ss = session_of(c);
    *oom = false;
    proto_parse_msg_t p;
    if (!proto_parse_decode(msg, total, &p) || p.name[0] != '\0' || client_pooled(c) ||
        client_inflight(c) > 0 || client_unsynced(c) || client_tx_status(c) == 'E')
        return false;
    uint64_t h;
    if (!unnamed_hash(ss->view, sql, &p, &h)) {
        *oom = true;
        return false;
    }
    uint32_t gen = 0;
    for (int i = 0; i < ss->n_unnamed && !gen; i++)
        if (ss->unnamed[i].hash == h)
            gen = ss->unnamed[i].gen;
    if (!gen && ss->n_unnamed == MAX_UNNAMED)
        return false;
    buf_t b = {0};
    size_t start;
    bool ok = buf_msg_begin(&b, 'P', &start);
    if (gen) {
        /* ours exists: an empty unnamed statement gives the client its ParseComplete */
        ok = ok && buf_put_str(&b, "") && buf_put_str(&b, "") && buf_put_i16(&b, 0);
    } else {
        char name[32];
        gen = ++ss->next_gen; /* never reused: no clash with one we lost track of */
        snprintf(name, sizeof name, "_epoch_u%u", gen);
        ok = ok && buf_put_str(&b, name) && buf_put_str(&b, sql) &&
             buf_append(&b, p.types, p.types_len);
        ss->pending_hash = h;
        ss->pending_gen = gen;
    }
    if (ok)
        buf_msg_end(&b, start);
    ok = ok && client_send_extended(c, &b, false);
    buf_free(&b);
    if (!ok) {
        ss->pending_gen = 0;
        *oom = true;
        return false;
    }
    ss->mapped_gen = gen;
    return true;
}

void plan_reuse_forget_all(session_state_t *ss)
{
    ss->n_prepared = 0; /* Close + Parse again at the next use */
    ss->n_unnamed = 0;
    ss->mapped_gen = 0;
}

bool plan_reuse_reply(session_state_t *ss, char type)
{
    if (ss->pending_gen && (type == '1' || type == 'E' || type == 'Z')) {
        /* the first reply of the batch answers our Parse */
        if (type == '1' && ss->n_unnamed < MAX_UNNAMED && !ss->unnamed)
            ss->unnamed = calloc(MAX_UNNAMED, sizeof *ss->unnamed); /* NULL: not kept */
        if (type == '1' && ss->n_unnamed < MAX_UNNAMED && ss->unnamed)
            ss->unnamed[ss->n_unnamed++] =
                (struct unnamed_stmt){.hash = ss->pending_hash, .gen = ss->pending_gen};
        else if (ss->mapped_gen == ss->pending_gen)
            ss->mapped_gen = 0;
        ss->pending_gen = 0;
    }
    if (!ss->swallow)
        return false;
    switch (type) {
    case '1': /* ParseComplete */
    case '2': /* BindComplete */
    case '3': /* CloseComplete */
    case 'n': /* NoData */
        return true;
    case 'E':
        if (ss->new_stmt)
            forget_prepared(ss, ss->new_stmt);
        ss->new_stmt = 0;
        return false;
    case 'Z':
        ss->swallow = false;
        ss->new_stmt = 0;
        return false;
    default:
        return false;
    }
}

bool plan_reuse_rename(client_t *c, const char *msg, size_t total, buf_t *out)
{
    session_state_t *ss = session_of(c);
    if (!ss || !ss->mapped_gen)
        return false;
    char name[32];
    snprintf(name, sizeof name, "_epoch_u%u", ss->mapped_gen);
    size_t start;
    if (msg[0] == 'D') {
        if (total != 7 || msg[5] != 'S' || msg[6] != '\0')
            return false;
        if (!buf_msg_begin(out, 'D', &start) || !buf_put_u8(out, 'S') || !buf_put_str(out, name))
            return false;
        buf_msg_end(out, start);
        return true;
    }
    /* Bind of "" (any portal): the statement renamed, the rest as it is */
    proto_bind_msg_t b;
    if (!proto_bind_decode(msg, total, &b) || b.statement[0] != '\0')
        return false;
    if (!buf_msg_begin(out, 'B', &start) || !buf_put_str(out, b.portal) ||
        !buf_put_str(out, name) || !buf_append(out, b.rest, b.rest_len))
        return false;
    buf_msg_end(out, start);
    return true;
}
