/*
 * stream — see stream.h. Output is double-buffered: the owner appends to
 * wbuf while libuv owns wflight; uv_try_write first, so the common case
 * (small response, idle socket) needs no write request at all.
 */
#include "wire/stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>

#include "common/log.h"
#include "common/metrics.h"
#include "wire/ring.h"
#include "wire/tls.h"

#define READ_CHUNK 65536

static void close_cb(uv_handle_t *h);

void stream_init(stream_t *s, const stream_ops_t *ops, void *owner)
{
    memset(s, 0, sizeof *s);
    s->ops = ops;
    s->owner = owner;
    s->h.handle.data = s;
}

int stream_accept(stream_t *s, uv_loop_t *loop, uv_stream_t *listener)
{
    int rc = uv_tcp_init(loop, &s->h.tcp);
    if (rc)
        return rc;
    s->initialized = true;
    s->h.handle.data = s;
    rc = uv_accept(listener, &s->h.stream);
    if (rc == 0) {
        uv_tcp_nodelay(&s->h.tcp, 1);
        s->uring = ring_current() != NULL;
    }
    return rc;
}

static void connect_cb(uv_connect_t *req, int status)
{
    stream_t *s = req->data;
    if (s->closing)
        return;
    if (status == 0 && s->h.handle.type == UV_TCP)
        uv_tcp_nodelay(&s->h.tcp, 1);
    if (status == 0)
        s->uring = ring_current() != NULL;
    s->ops->on_connect(s, status);
}

int stream_connect(stream_t *s, uv_loop_t *loop, const char *host, int port)
{
    int rc;
    s->creq.data = s;
    if (host[0] == '/') {
        char path[512];
        if ((size_t)snprintf(path, sizeof path, "%s/.s.PGSQL.%d", host, port) >= sizeof path)
            return UV_ENAMETOOLONG;
        rc = uv_pipe_init(loop, &s->h.pipe, 0);
        if (rc)
            return rc;
        s->initialized = true;
        s->h.handle.data = s;
        uv_pipe_connect(&s->creq, &s->h.pipe, path, connect_cb);
        return 0;
    }
    struct sockaddr_storage addr;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0)
        return UV_EINVAL;
    rc = uv_tcp_init(loop, &s->h.tcp);
    if (rc)
        return rc;
    s->initialized = true;
    s->h.handle.data = s;
    return uv_tcp_connect(&s->creq, &s->h.tcp, (const struct sockaddr *)&addr, connect_cb);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    (void)suggested;
    stream_t *s = h->data;
    buf_t *target = s->ssl ? &s->tlsin : &s->rbuf;
    if (!buf_reserve(target, READ_CHUNK)) {
        *out = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
        return;
    }
    *out = uv_buf_init(target->data + target->len, (unsigned)(target->cap - target->len));
}

/* Move whatever OpenSSL produced into the output queue. */
static bool tls_collect_output(stream_t *s)
{
    size_t pending;
    while ((pending = BIO_ctrl_pending(s->wbio)) > 0) {
        if (!buf_reserve(&s->wbuf, pending))
            return false;
        int n = BIO_read(s->wbio, s->wbuf.data + s->wbuf.len, (int)pending);
        if (n <= 0)
            break;
        s->wbuf.len += (size_t)n;
    }
    return true;
}

/* Feed received ciphertext through OpenSSL: handshake, then decrypt into rbuf.
 * *handshake_done is set when this call finished the handshake. NULL = fine,
 * otherwise why the stream must close (details in s->tls_error). */
static const char *tls_pump(stream_t *s, bool *handshake_done)
{
    if (buf_avail(&s->tlsin)) {
        int n = BIO_write(s->rbio, buf_head(&s->tlsin), (int)buf_avail(&s->tlsin));
        if (n <= 0)
            return "TLS error";
        buf_reset(&s->tlsin);
    }
    if (s->tls_handshaking) {
        /* SSL_get_error reads the thread's error queue, which other
         * connections of this worker may have left entries in */
        ERR_clear_error();
        int r = SSL_do_handshake(s->ssl);
        if (r == 1) {
            s->tls_handshaking = false;
            *handshake_done = true;
        } else {
            int e = SSL_get_error(s->ssl, r);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                tls_failure_reason(s->ssl, s->tls_error, sizeof s->tls_error);
                if (SSL_is_server(s->ssl))
                    log_info("TLS handshake failed: %s", s->tls_error);
                tls_collect_output(s); /* the alert, if any */
                stream_flush(s);
                return "TLS handshake failed";
            }
        }
    }
    while (!s->tls_handshaking) {
        if (!buf_reserve(&s->rbuf, READ_CHUNK))
            return "out of memory";
        ERR_clear_error();
        int n = SSL_read(s->ssl, s->rbuf.data + s->rbuf.len, (int)(s->rbuf.cap - s->rbuf.len));
        if (n > 0) {
            s->rbuf.len += (size_t)n;
            continue;
        }
        int e = SSL_get_error(s->ssl, n);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_ZERO_RETURN)
            return "connection closed";
        /* e.g. an alert after our side of the handshake was done (TLS 1.3
         * servers reject a client certificate only then) */
        tls_failure_reason(s->ssl, s->tls_error, sizeof s->tls_error);
        return "TLS error";
    }
    if (!tls_collect_output(s))
        return "out of memory";
    stream_flush(s);
    return NULL;
}

/* Bytes read (in) or handed to the socket (out), for the metrics. */
static void count_bytes(stream_t *s, size_t n, bool in)
{
    if (in)
        s->bytes_in += n;
    else
        s->bytes_out += n;
    if (s->side == STREAM_CLIENT)
        metrics_add(in ? MC_CLIENT_BYTES_IN : MC_CLIENT_BYTES_OUT, n);
    else if (s->side == STREAM_SERVER)
        metrics_add(in ? MC_SERVER_BYTES_IN : MC_SERVER_BYTES_OUT, n);
}

/* nread > 0 bytes were appended to tlsin (TLS) or rbuf: process them. */
static void received(stream_t *s, size_t nread)
{
    count_bytes(s, nread, true);
    if (s->ssl) {
        s->tlsin.len += (size_t)nread;
        bool handshake_done = false;
        const char *why = tls_pump(s, &handshake_done);
        if (s->closing)
            return;
        if (handshake_done && s->on_tls_ready) {
            s->on_tls_ready(s);
            if (s->closing)
                return;
        }
        if (why) {
            /* what was decrypted ahead of the close still counts: PostgreSQL
             * sends its FATAL ErrorResponse and close_notify back to back */
            if (buf_avail(&s->rbuf)) {
                s->ops->on_read(s);
                if (s->closing)
                    return;
            }
            s->ops->on_eof(s, why);
            return;
        }
    } else {
        s->rbuf.len += nread;
    }
    if (buf_avail(&s->rbuf))
        s->ops->on_read(s);
    /* an idle connection keeps no receive buffer (the next read allocates
     * one): thousands of idle clients cost their structures only */
    if (!s->closing && !buf_avail(&s->rbuf))
        buf_free(&s->rbuf);
}

static void read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *b)
{
    (void)b;
    stream_t *s = h->data;
    if (s->closing)
        return;
    if (nread < 0) {
        s->ops->on_eof(s, nread == UV_EOF ? "connection closed" : uv_strerror((int)nread));
        return;
    }
    if (nread > 0)
        received(s, (size_t)nread);
}

/* ---- io_uring ---- */

static int stream_fd(const stream_t *s)
{
    uv_os_fd_t fd = -1;
    uv_fileno(&s->h.handle, &fd);
    return fd;
}

static void ring_failed(stream_t *s, const char *why)
{
    if (!s->closing)
        s->ops->on_eof(s, why);
}

/* A submission slot for an op of s, counted in s->ring_ops; NULL (and the
 * stream failed) if the ring is jammed. */
static struct io_uring_sqe *stream_sqe(stream_t *s, int op)
{
    struct io_uring_sqe *sqe = ring_sqe(s, op);
    if (!sqe) {
        ring_failed(s, "io_uring submission queue full");
        return NULL;
    }
    s->ring_ops++;
    return sqe;
}

/* The next receive: into one of the worker's provided buffers (ring.h),
 * else (none set up, or none free last time: own) into the stream's own
 * landing buffer. */
static void arm_recv(stream_t *s, bool own)
{
    bool shared = ring_has_bufs() && !own;
    if (!shared && !s->landing && !(s->landing = malloc(READ_CHUNK))) {
        ring_failed(s, "out of memory");
        return;
    }
    struct io_uring_sqe *sqe = stream_sqe(s, RING_OP_RECV);
    if (!sqe)
        return;
    s->recv_own = !shared;
    if (shared) {
        io_uring_prep_recv(sqe, stream_fd(s), NULL, RING_BUF_SIZE, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = RING_BGID;
    } else {
        io_uring_prep_recv(sqe, stream_fd(s), s->landing, READ_CHUNK, 0);
    }
    s->recv_armed = true;
}

static void arm_send(stream_t *s)
{
    struct io_uring_sqe *sqe = stream_sqe(s, RING_OP_SEND);
    if (!sqe)
        return;
    /* MSG_WAITALL: short only on error */
    io_uring_prep_send(sqe, stream_fd(s), buf_head(&s->wflight), buf_avail(&s->wflight),
                       MSG_NOSIGNAL | MSG_WAITALL);
    s->writing = true;
}

/* Hand a completed recv's result to the owner. Errors are -errno, which
 * libuv's codes are on Linux: uv_strerror gives the libuv path's words. */
static void deliver(stream_t *s, int res, const char *src)
{
    if (res == 0) {
        s->ops->on_eof(s, "connection closed");
        return;
    }
    if (res < 0) {
        s->ops->on_eof(s, uv_strerror(res));
        return;
    }
    buf_t *target = s->ssl ? &s->tlsin : &s->rbuf;
    if (!buf_reserve(target, (size_t)res)) {
        s->ops->on_eof(s, "out of memory");
        return;
    }
    /* at the tail, not yet counted: as after a libuv read */
    memcpy(target->data + target->len, src, (size_t)res);
    received(s, (size_t)res);
    if (!s->closing && s->reading && !s->recv_armed)
        arm_recv(s, false);
    /* with the worker's provided buffers, an own buffer served one receive
     * (ENOBUFS, or held while reading was stopped): give it back */
    if (src == s->landing && ring_has_bufs() && !s->closing && !(s->recv_armed && s->recv_own)) {
        free(s->landing);
        s->landing = NULL;
    }
}

static void finish_close(stream_t *s);

void stream_ring_complete(void *obj, int op, int res, unsigned flags)
{
    int bid = -1;
    const char *buf = op == RING_OP_RECV ? ring_buf(flags, &bid) : NULL;
    stream_t *s = obj;
    s->ring_ops--;
    if (op == RING_OP_RECV)
        s->recv_armed = false;
    else if (op == RING_OP_SEND)
        s->writing = false;
    else
        s->deliver_armed = false;
    if (s->closing) {
        if (buf)
            ring_buf_release(bid);
        if (s->ring_ops == 0)
            finish_close(s);
        return;
    }
    if (op == RING_OP_RECV && res == -ENOBUFS) {
        /* every shared buffer taken: this once, the stream's own */
        if (s->reading)
            arm_recv(s, true);
        return;
    }
    if (buf && (!s->reading || res <= 0)) {
        /* held (not reading now) in the stream's own buffer, so that the
         * shared one goes back at once */
        if (res > 0 && !s->landing && !(s->landing = malloc(READ_CHUNK))) {
            ring_buf_release(bid);
            ring_failed(s, "out of memory");
            return;
        }
        if (res > 0)
            memcpy(s->landing, buf, (size_t)res);
        ring_buf_release(bid);
        buf = NULL;
    }
    if (op == RING_OP_SEND) {
        if (res < 0) {
            buf_reset(&s->wflight);
            s->ops->on_eof(s, uv_strerror(res));
            return;
        }
        buf_consume(&s->wflight, (size_t)res);
        if (buf_avail(&s->wflight)) {
            arm_send(s);
            return;
        }
        buf_reset(&s->wflight);
        stream_flush(s);
        return;
    }
    if (op == RING_OP_RECV && !s->reading) {
        s->has_held = true; /* delivered when reading starts again */
        s->held = res;
        return;
    }
    if (op == RING_OP_WAKE) {
        if (!s->reading || !s->has_held)
            return;
        s->has_held = false;
        res = s->held;
    }
    deliver(s, res, buf ? buf : s->landing);
    if (buf)
        ring_buf_release(bid);
}

void stream_read_start(stream_t *s)
{
    if (s->reading || s->closing || !s->initialized)
        return;
    if (!s->uring) {
        if (uv_read_start(&s->h.stream, alloc_cb, read_cb) == 0)
            s->reading = true;
        return;
    }
    s->reading = true;
    if (s->has_held) {
        /* deliver on the next loop turn, not inside the owner's call */
        struct io_uring_sqe *sqe = s->deliver_armed ? NULL : stream_sqe(s, RING_OP_WAKE);
        if (sqe) {
            io_uring_prep_nop(sqe);
            s->deliver_armed = true;
        }
    } else if (!s->recv_armed) {
        arm_recv(s, false);
    }
}

void stream_read_stop(stream_t *s)
{
    if (!s->reading)
        return;
    /* with the ring, an armed recv stays: what it gets waits in landing */
    if (!s->uring)
        uv_read_stop(&s->h.stream);
    s->reading = false;
}

bool stream_write(stream_t *s, const void *p, size_t n)
{
    if (s->closing || n == 0)
        return true;
    if (s->ssl) {
        const char *cp = p;
        while (n > 0) {
            int chunk = n > (1 << 30) ? (1 << 30) : (int)n;
            int w = SSL_write(s->ssl, cp, chunk);
            if (w <= 0)
                return false;
            cp += w;
            n -= (size_t)w;
        }
        if (!tls_collect_output(s))
            return false;
    } else if (!buf_append(&s->wbuf, p, n)) {
        return false;
    }
    if (stream_pending(s) > STREAM_HIGH_WATER)
        s->above_high_water = true;
    return true;
}

size_t stream_pending(const stream_t *s)
{
    return buf_avail(&s->wbuf) + buf_avail(&s->wflight);
}

static void after_written(stream_t *s)
{
    /* everything is out: no output buffer while idle (see received()) */
    buf_free(&s->wbuf);
    buf_free(&s->wflight);
    if (s->close_after_flush) {
        stream_close(s);
        return;
    }
    if (s->above_high_water) {
        s->above_high_water = false;
        s->ops->on_drain(s);
    }
}

static void write_cb(uv_write_t *req, int status)
{
    stream_t *s = req->data;
    s->writing = false;
    buf_reset(&s->wflight);
    if (s->closing)
        return;
    if (status < 0) {
        s->ops->on_eof(s, uv_strerror(status));
        return;
    }
    stream_flush(s);
}

void stream_flush(stream_t *s)
{
    if (s->writing || s->closing || !s->initialized)
        return;
    if (!buf_avail(&s->wbuf)) {
        after_written(s);
        return;
    }
    count_bytes(s, buf_avail(&s->wbuf), false);
    if (s->uring) {
        /* sent with the loop's next io_uring_enter; the owner appends to wbuf meanwhile */
        buf_t tmp = s->wflight;
        s->wflight = s->wbuf;
        s->wbuf = tmp;
        arm_send(s);
        return;
    }
    uv_buf_t b = uv_buf_init(buf_head(&s->wbuf), (unsigned)buf_avail(&s->wbuf));
    int n = uv_try_write(&s->h.stream, &b, 1);
    if (n > 0)
        buf_consume(&s->wbuf, (size_t)n);
    else if (n < 0 && n != UV_EAGAIN) {
        s->ops->on_eof(s, uv_strerror(n));
        return;
    }
    if (!buf_avail(&s->wbuf)) {
        after_written(s);
        return;
    }
    /* the rest goes asynchronously; the owner keeps appending to the other buffer */
    buf_t tmp = s->wflight;
    s->wflight = s->wbuf;
    s->wbuf = tmp;
    b = uv_buf_init(buf_head(&s->wflight), (unsigned)buf_avail(&s->wflight));
    s->wreq.data = s;
    int rc = uv_write(&s->wreq, &s->h.stream, &b, 1, write_cb);
    if (rc) {
        buf_reset(&s->wflight);
        s->ops->on_eof(s, uv_strerror(rc));
        return;
    }
    s->writing = true;
}

/* Give the stream an SSL object talking through two memory BIOs. */
static bool tls_attach(stream_t *s, SSL_CTX *ctx)
{
    s->ssl = SSL_new(ctx);
    if (!s->ssl)
        return false;
    s->rbio = BIO_new(BIO_s_mem());
    s->wbio = BIO_new(BIO_s_mem());
    if (!s->rbio || !s->wbio) {
        BIO_free(s->rbio);
        BIO_free(s->wbio);
        SSL_free(s->ssl);
        s->ssl = NULL;
        s->rbio = s->wbio = NULL;
        return false;
    }
    SSL_set_bio(s->ssl, s->rbio, s->wbio); /* SSL now owns both BIOs */
    s->tls_handshaking = true;
    return true;
}

bool stream_tls_accept(stream_t *s, SSL_CTX *ctx)
{
    if (!tls_attach(s, ctx))
        return false;
    SSL_set_accept_state(s->ssl);
    /* bytes that arrived after the SSLRequest belong to the handshake */
    if (buf_avail(&s->rbuf)) {
        if (!buf_append(&s->tlsin, buf_head(&s->rbuf), buf_avail(&s->rbuf)))
            return false;
        buf_reset(&s->rbuf);
        bool done = false; /* a handshake needs more than the ClientHello */
        if (tls_pump(s, &done))
            return false;
    }
    return true;
}

bool stream_tls_connect(stream_t *s, SSL_CTX *ctx, const char *server_name, stream_cb_t on_ready)
{
    if (!tls_attach(s, ctx))
        return false;
    s->on_tls_ready = on_ready;
    SSL_set_connect_state(s->ssl);
    if (server_name && SSL_set_tlsext_host_name(s->ssl, server_name) != 1)
        return false;
    /* the first step writes the ClientHello; the rest follows the reads */
    bool done = false;
    return tls_pump(s, &done) == NULL;
}

static void close_cb(uv_handle_t *h)
{
    stream_t *s = h->data;
    free(s->landing);
    s->landing = NULL;
    buf_free(&s->rbuf);
    buf_free(&s->wbuf);
    buf_free(&s->wflight);
    buf_free(&s->tlsin);
    if (s->ssl)
        SSL_free(s->ssl);
    s->ssl = NULL;
    s->ops->on_closed(s);
}

static void finish_close(stream_t *s)
{
    uv_close(&s->h.handle, close_cb);
}

void stream_close(stream_t *s)
{
    if (s->closing)
        return;
    s->closing = true;
    s->reading = false;
    if (!s->initialized) {
        close_cb(&s->h.handle);
        return;
    }
    if (s->ring_ops > 0) {
        /* the socket is closed once the kernel has let go of our buffers */
        struct io_uring_sqe *sqe = ring_sqe(NULL, 0);
        if (sqe) {
            io_uring_prep_cancel_fd(sqe, stream_fd(s), IORING_ASYNC_CANCEL_ALL);
            sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
        } else {
            shutdown(stream_fd(s), SHUT_RDWR); /* ends the recv and the send */
        }
        return;
    }
    finish_close(s);
}

void stream_close_after_flush(stream_t *s)
{
    if (s->closing)
        return;
    stream_read_stop(s);
    s->close_after_flush = true;
    if (!s->writing)
        stream_flush(s);
}
