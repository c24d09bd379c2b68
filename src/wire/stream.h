/*
 * stream — one socket (TCP or unix) on a libuv loop, with optional TLS, a
 * plaintext receive buffer and batched output. The protocol code above it
 * never sees libuv write requests or OpenSSL: it reads rbuf, appends output
 * with stream_write() and calls stream_flush() once per batch.
 *
 * Ownership: the stream is embedded in its owner (client or server). The
 * owner frees itself only from ops->on_closed, which libuv calls after the
 * handle is closed; until then every callback may still arrive.
 */
#ifndef EPOCH_WIRE_STREAM_H
#define EPOCH_WIRE_STREAM_H

#include <stdbool.h>
#include <uv.h>

#include <openssl/ssl.h>

#include "common/buf.h"

/* Stop reading the other side when this much output is queued here. */
#define STREAM_HIGH_WATER (512 * 1024)

typedef struct stream stream_t;

/* Which connection a stream carries, for the byte counters (common/metrics.h). */
typedef enum { STREAM_OTHER, STREAM_CLIENT, STREAM_SERVER } stream_side_t;
typedef void (*stream_cb_t)(stream_t *s);

typedef struct stream_ops {
    void (*on_read)(stream_t *s);                 /* new plaintext in s->rbuf */
    void (*on_drain)(stream_t *s);                /* queued output fell below high water */
    void (*on_eof)(stream_t *s, const char *why); /* peer closed or I/O error */
    void (*on_connect)(stream_t *s, int status);  /* stream_connect finished */
    void (*on_closed)(stream_t *s);               /* handle closed: owner may free */
} stream_ops_t;

struct stream {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    const stream_ops_t *ops;
    void *owner;
    stream_side_t side;
    uint64_t bytes_in, bytes_out; /* as counted for the metrics */
    buf_t rbuf;    /* received plaintext, parsed by the owner */
    buf_t wbuf;    /* queued output (ciphertext when TLS is on) */
    buf_t wflight; /* output handed to libuv, stable until the write callback */
    buf_t tlsin;   /* TLS only: ciphertext landing buffer for reads */
    uv_write_t wreq;
    uv_connect_t creq;
    SSL *ssl;
    BIO *rbio, *wbio;
    bool initialized;
    bool reading;
    bool writing;
    bool closing;
    bool close_after_flush;
    bool tls_handshaking;
    bool above_high_water;
    /* why TLS failed (handshake or later), empty if it did not; on_eof then
     * gets a generic reason and the owner may report this one */
    char tls_error[160];
    /* stream_tls_connect: called once the handshake is done */
    stream_cb_t on_tls_ready;
    /* io_uring (ring.h): socket reads and writes go through the worker's
     * ring once connected, libuv only opens and closes the socket */
    bool uring;
    bool recv_armed;    /* a recv (into a provided buffer, or landing) is in flight */
    bool recv_own;      /* that recv writes into landing */
    bool deliver_armed; /* a wake-up to deliver `held` is in flight */
    bool has_held;      /* a recv completed while reading was off: held */
    int held;           /* its result: bytes in landing, 0 = EOF, < 0 = -errno */
    int ring_ops;       /* ops of this stream in flight; uv_close waits for 0 */
    char *landing;      /* recv target; copied to rbuf (or tlsin) when delivered,
                           because the owner moves rbuf's contents meanwhile */
};

/* Every completion of a stream's ring op (ring_init's callback). */
void stream_ring_complete(void *obj, int op, int res, unsigned flags);

/* Prepare an embedded stream. */
void stream_init(stream_t *s, const stream_ops_t *ops, void *owner);
/* Accept a pending connection from a listener. */
int stream_accept(stream_t *s, uv_loop_t *loop, uv_stream_t *listener);
/* Connect to host:port (TCP; host is a numeric address) or, when host starts
 * with '/', to the unix socket host/.s.PGSQL.port. */
int stream_connect(stream_t *s, uv_loop_t *loop, const char *host, int port);

void stream_read_start(stream_t *s);
void stream_read_stop(stream_t *s);

/* Queue bytes (encrypted first when TLS is on). false = out of memory. */
bool stream_write(stream_t *s, const void *p, size_t n) __attribute__((warn_unused_result));
/* Start writing what is queued. */
void stream_flush(stream_t *s);
/* Bytes queued and not yet written. */
size_t stream_pending(const stream_t *s);

/* Begin a server-side TLS handshake; everything read afterwards is decrypted. */
bool stream_tls_accept(stream_t *s, SSL_CTX *ctx) __attribute__((warn_unused_result));
/* Begin a client-side TLS handshake on a connected stream (the ClientHello
 * is queued and flushed at once). server_name is sent as SNI (NULL: none,
 * as for IP addresses). Reading must be on. on_ready is called when the
 * handshake is done, before ops->on_read sees any data that came with its
 * end; output written from then on is encrypted. A failure arrives through
 * ops->on_eof (details in s->tls_error). rbuf must be empty: bytes received
 * before the handshake are not part of it. false = could not start. */
bool stream_tls_connect(stream_t *s, SSL_CTX *ctx, const char *server_name, stream_cb_t on_ready)
    __attribute__((warn_unused_result));

/* Close now (queued output is dropped). Idempotent. */
void stream_close(stream_t *s);
/* Close once queued output has been written. */
void stream_close_after_flush(stream_t *s);

#endif
