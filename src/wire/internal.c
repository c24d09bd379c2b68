/*
 * internal — the proxy's own statements on a server connection, between the
 * client's requests (server_internal, conn_api.h): queued per server, sent
 * as a simple Query when the server has nothing in flight, their replies
 * collected instead of forwarded, and handed to the callback at
 * ReadyForQuery.
 *
 * Must never: forward a backend message while an internal statement owns the
 * connection (the client's input waits meanwhile: server_internal_busy).
 */
#include "wire/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/text.h"
#include "common/log.h"
#include "wire/hooks.h"

struct internal {
    internal_t *next;
    char *sql;
    internal_cb_t cb;
    void *arg;
    /* result being collected */
    bool failed;
    char sqlstate[6];
    char *message;
    char *tag;
    int ncols;
    buf_t cells;   /* NUL-terminated values */
    long *offsets; /* per cell: offset into cells, -1 for NULL */
    size_t n_offsets, cap_offsets;
};

static void internal_free(internal_t *in)
{
    free(in->sql);
    free(in->message);
    free(in->tag);
    buf_free(&in->cells);
    free(in->offsets);
    free(in);
}

void server_internal_drop_all(server_t *sv)
{
    while (sv->iq_head) {
        internal_t *in = sv->iq_head;
        sv->iq_head = in->next;
        internal_free(in);
    }
    sv->iq_tail = NULL;
}

bool server_internal(server_t *sv, const char *sql, internal_cb_t cb, void *arg)
{
    internal_t *in = calloc(1, sizeof *in);
    if (!in)
        return false;
    in->sql = strdup(sql);
    if (!in->sql) {
        free(in);
        return false;
    }
    in->cb = cb;
    in->arg = arg;
    if (sv->iq_tail)
        sv->iq_tail->next = in;
    else
        sv->iq_head = in;
    sv->iq_tail = in;
    server_internal_kick(sv);
    return true;
}

bool server_internal_busy(const server_t *sv)
{
    return sv->iq_head != NULL;
}

void server_internal_kick(server_t *sv)
{
    if (!sv->iq_head || sv->iq_sent || sv->inflight > 0 || sv->state == SV_CLOSING ||
        sv->state == SV_CONNECTING || sv->state == SV_LOGIN)
        return;
    buf_t b = {0};
    bool ok = proto_query(&b, sv->iq_head->sql) && stream_write(&sv->st, b.data, b.len);
    buf_free(&b);
    if (!ok) {
        server_close(sv, "out of memory");
        return;
    }
    sv->iq_sent = true;
    stream_read_start(&sv->st);
    stream_flush(&sv->st);
}

static bool internal_add_cell(internal_t *in, const char *p, long len)
{
    if (in->n_offsets == in->cap_offsets) {
        size_t ncap = in->cap_offsets ? in->cap_offsets * 2 : 16;
        long *grown = realloc(in->offsets, ncap * sizeof *grown);
        if (!grown)
            return false;
        in->offsets = grown;
        in->cap_offsets = ncap;
    }
    if (len < 0) {
        in->offsets[in->n_offsets++] = -1;
        return true;
    }
    in->offsets[in->n_offsets++] = (long)in->cells.len;
    return buf_append(&in->cells, p, (size_t)len) && BUF_LIT_NUL(&in->cells, "");
}

static void internal_finish(server_t *sv)
{
    internal_t *in = sv->iq_head;
    sv->iq_head = in->next;
    if (!sv->iq_head)
        sv->iq_tail = NULL;
    sv->iq_sent = false;
    const char **values = NULL;
    if (in->n_offsets) {
        values = calloc(in->n_offsets, sizeof *values);
        if (!values) {
            in->failed = true;
            in->n_offsets = 0;
        }
    }
    for (size_t i = 0; i < in->n_offsets; i++)
        values[i] = in->offsets[i] < 0 ? NULL : in->cells.data + in->offsets[i];
    internal_result_t res = {
        .ok = !in->failed,
        .sqlstate = in->failed ? in->sqlstate : NULL,
        .message = in->failed ? (in->message ? in->message : "out of memory") : NULL,
        .command_tag = in->tag,
        .ncols = in->ncols,
        .nrows = in->ncols ? (int)(in->n_offsets / (size_t)in->ncols) : 0,
        .values = values,
    };
    if (in->failed)
        log_debug("internal statement failed: %s", res.message);
    if (in->cb)
        in->cb(sv, in->arg, &res);
    free(values);
    internal_free(in);
    if (sv->state == SV_CLOSING)
        return;
    if (sv->iq_head)
        server_internal_kick(sv);
    else if (sv->client)
        client_resume(sv->client);
}

/* One backend message while an internal statement runs. false = sv closed. */
bool server_internal_message(server_t *sv, char type, const char *msg, size_t total)
{
    internal_t *in = sv->iq_head;
    const char *body = msg + 5;
    size_t len = total - 5;
    client_t *c = sv->client;
    switch (type) {
    case 'T':
        in->ncols = len >= 2 ? rd_u16(body) : 0;
        break;
    case 'D': {
        if (len < 2)
            break;
        int n = rd_u16(body);
        size_t p = 2;
        for (int i = 0; i < n; i++) {
            if (p + 4 > len)
                break;
            long cl = (long)(int32_t)rd_u32(body + p);
            p += 4;
            if (cl > 0 && p + (size_t)cl > len)
                break;
            if (!internal_add_cell(in, body + p, cl))
                in->failed = true;
            if (cl > 0)
                p += (size_t)cl;
        }
        break;
    }
    case 'C':
        free(in->tag);
        in->tag = strndup(body, len);
        wire_hooks()->command_done(sv, body, len);
        break;
    case 'E': {
        in->failed = true;
        const char *st = proto_error_field(body, len, 'C');
        const char *m = proto_error_field(body, len, 'M');
        snprintf(in->sqlstate, sizeof in->sqlstate, "%s", st ? st : "XX000");
        free(in->message);
        in->message = strdup(m ? m : "unknown error");
        break;
    }
    case 'S':
        server_note_param(sv, body, len);
        if (c && c->state == CL_ACTIVE && !stream_write(&c->st, msg, total))
            client_fail(c, "53200", "out of memory", NULL);
        break;
    case 'A':
        if (wire_hooks()->notification(sv, msg, total))
            break;
        if (c && c->state == CL_ACTIVE && !stream_write(&c->st, msg, total))
            client_fail(c, "53200", "out of memory", NULL);
        break;
    case 'G':
    case 'H':
    case 'W':
        /* internal statements never COPY: the connection is not reusable */
        server_close(sv, "internal statement started COPY");
        return false;
    case 'Z':
        sv->tx_status = len >= 1 ? body[0] : 'I';
        internal_finish(sv);
        return sv->state != SV_CLOSING;
    default: /* N, I, 1, 2, ... */
        break;
    }
    return true;
}
