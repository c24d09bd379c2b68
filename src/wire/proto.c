/* proto — see proto.h. */
#include "common/text.h"
#include "wire/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool startup_parse(startup_t *st, uint32_t version, const char *body, size_t len, char *err,
                   size_t errcap)
{
    memset(st, 0, sizeof *st);
    st->version = version;
    if (len == 0 || body[len - 1] != '\0') {
        snprintf(err, errcap, "invalid startup packet layout: expected terminator as last byte");
        return false;
    }
    st->params = malloc(len);
    if (!st->params) {
        snprintf(err, errcap, "out of memory");
        return false;
    }
    memcpy(st->params, body, len);
    st->params_len = len;
    size_t pos = 0;
    const char *name, *value;
    /* validate the layout once: every name has a value, the list ends with "" */
    size_t p = 0;
    while (p < len && st->params[p]) {
        size_t nlen = strlen(st->params + p);
        size_t vpos = p + nlen + 1;
        if (vpos >= len) {
            snprintf(err, errcap, "invalid startup packet layout: parameter without value");
            goto fail;
        }
        p = vpos + strlen(st->params + vpos) + 1;
    }
    if (p != len - 1) {
        snprintf(err, errcap, "invalid startup packet layout: expected terminator as last byte");
        goto fail;
    }
    while (startup_next(st, &pos, &name, &value)) {
        if (strcmp(name, "user") == 0)
            st->user = value;
        else if (strcmp(name, "database") == 0)
            st->database = value;
        else if (strcmp(name, "options") == 0)
            st->options = value;
        else if (strcmp(name, "application_name") == 0)
            st->application_name = value;
        else if (strcmp(name, "replication") == 0) {
            snprintf(err, errcap, "replication connections are not supported through epoch");
            goto fail;
        } else if (HAS_PREFIX(name, "_pq_.")) {
            char **grown = realloc(st->unknown_pq, (size_t)(st->n_unknown_pq + 1) * sizeof *grown);
            if (!grown) {
                snprintf(err, errcap, "out of memory");
                goto fail;
            }
            st->unknown_pq = grown;
            st->unknown_pq[st->n_unknown_pq++] = (char *)name;
        }
    }
    if (!st->user || !st->user[0]) {
        snprintf(err, errcap, "no PostgreSQL user name specified in startup packet");
        goto fail;
    }
    if (!st->database || !st->database[0])
        st->database = st->user;
    return true;
fail:
    startup_free(st);
    return false;
}

void startup_free(startup_t *st)
{
    free(st->params);
    free(st->unknown_pq);
    memset(st, 0, sizeof *st);
}

bool startup_next(const startup_t *st, size_t *pos, const char **name, const char **value)
{
    if (*pos >= st->params_len || st->params[*pos] == '\0')
        return false;
    *name = st->params + *pos;
    *pos += strlen(*name) + 1;
    *value = st->params + *pos;
    *pos += strlen(*value) + 1;
    return true;
}

/* ErrorResponse and NoticeResponse share their layout. */
static bool report(buf_t *b, char type, const char *severity, const char *sqlstate,
                   const char *message, const char *hint)
{
    size_t start;
    if (!buf_msg_begin(b, type, &start))
        return false;
    bool ok = buf_put_u8(b, 'S') && buf_put_str(b, severity) && buf_put_u8(b, 'V') &&
              buf_put_str(b, severity) && buf_put_u8(b, 'C') && buf_put_str(b, sqlstate) &&
              buf_put_u8(b, 'M') && buf_put_str(b, message);
    if (ok && hint)
        ok = buf_put_u8(b, 'H') && buf_put_str(b, hint);
    ok = ok && buf_put_u8(b, 0);
    if (!ok)
        return false;
    buf_msg_end(b, start);
    return true;
}

bool proto_error(buf_t *b, const char *severity, const char *sqlstate, const char *message,
                 const char *hint)
{
    return report(b, 'E', severity, sqlstate, message, hint);
}

bool proto_notice(buf_t *b, const char *severity, const char *sqlstate, const char *message,
                  const char *hint)
{
    return report(b, 'N', severity, sqlstate, message, hint);
}

bool proto_ready(buf_t *b, char status)
{
    size_t start;
    if (!buf_msg_begin(b, 'Z', &start) || !buf_put_u8(b, (uint8_t)status))
        return false;
    buf_msg_end(b, start);
    return true;
}

bool proto_auth(buf_t *b, uint32_t code, const void *data, size_t len)
{
    size_t start;
    if (!buf_msg_begin(b, 'R', &start) || !buf_put_i32(b, (int32_t)code) ||
        (len && !buf_append(b, data, len)))
        return false;
    buf_msg_end(b, start);
    return true;
}

bool proto_param_status(buf_t *b, const char *name, const char *value)
{
    size_t start;
    if (!buf_msg_begin(b, 'S', &start) || !buf_put_str(b, name) || !buf_put_str(b, value))
        return false;
    buf_msg_end(b, start);
    return true;
}

bool proto_backend_key(buf_t *b, uint32_t pid, uint32_t key)
{
    size_t start;
    if (!buf_msg_begin(b, 'K', &start) || !buf_put_i32(b, (int32_t)pid) ||
        !buf_put_i32(b, (int32_t)key))
        return false;
    buf_msg_end(b, start);
    return true;
}

bool proto_query(buf_t *b, const char *sql)
{
    size_t start;
    if (!buf_msg_begin(b, 'Q', &start) || !buf_put_str(b, sql))
        return false;
    buf_msg_end(b, start);
    return true;
}

const char *proto_error_field(const char *body, size_t len, char code)
{
    size_t p = 0;
    while (p < len && body[p]) {
        char f = body[p++];
        const char *v = body + p;
        size_t vlen = strnlen(v, len - p);
        if (p + vlen >= len)
            return NULL; /* unterminated */
        if (f == code)
            return v;
        p += vlen + 1;
    }
    return NULL;
}

/* The NUL-terminated string at p within [p, end): its end, or NULL. */
static const char *string_end(const char *p, const char *end)
{
    return p < end ? memchr(p, 0, (size_t)(end - p)) : NULL;
}

bool proto_parse_decode(const char *msg, size_t total, proto_parse_msg_t *out)
{
    const char *end = msg + total;
    const char *name_end = total > 5 ? string_end(msg + 5, end) : NULL;
    const char *query_end = name_end ? string_end(name_end + 1, end) : NULL;
    if (!query_end)
        return false;
    *out = (proto_parse_msg_t){.name = msg + 5,
                               .query = name_end + 1,
                               .types = query_end + 1,
                               .types_len = (size_t)(end - query_end - 1)};
    return true;
}

bool proto_bind_decode(const char *msg, size_t total, proto_bind_msg_t *out)
{
    const char *end = msg + total;
    const char *portal_end = total > 5 ? string_end(msg + 5, end) : NULL;
    const char *stmt_end = portal_end ? string_end(portal_end + 1, end) : NULL;
    if (!stmt_end)
        return false;
    *out = (proto_bind_msg_t){.portal = msg + 5,
                              .statement = portal_end + 1,
                              .rest = stmt_end + 1,
                              .rest_len = (size_t)(end - stmt_end - 1)};
    return true;
}
