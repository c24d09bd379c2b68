/*
 * ring — a worker's io_uring, and the loop that runs libuv inside it.
 *
 * Socket reads and writes of streams (stream.c) go through the ring: every
 * send and the wait for the next completions of all the worker's sockets
 * take one io_uring_enter per loop turn, where epoll needs a read or write
 * call per socket plus epoll_wait (pgbench -S through the proxy: ~1.3 enters
 * per transaction at 4 clients instead of ~4.3 calls; at 16 clients the
 * proxy's CPU per transaction fell from ~25 to ~17 µs, docs/benchmarks.md).
 * libuv keeps the rest — accept, connect, timers, async wake-ups, closing
 * handles — and its epoll descriptor is itself polled through the ring.
 *
 * One ring per worker thread; stream.c finds it with ring_current(). Where
 * io_uring is unavailable (old kernel, seccomp, io = libuv) there is none and
 * streams use libuv for their I/O.
 */
#ifndef EPOCH_WIRE_RING_H
#define EPOCH_WIRE_RING_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* Completions are dispatched on the low bits of user_data; the rest is a
 * pointer to the object (8-byte aligned). */
enum { RING_OP_RECV = 1, RING_OP_SEND = 2, RING_OP_WAKE = 3, RING_OP_UV = 4, RING_OP_MASK = 7 };

/* flags: the completion's (IORING_CQE_F_BUFFER: a provided buffer holds
 * the data, ring_buf()) */
typedef void (*ring_complete_t)(void *obj, int op, int res, unsigned flags);

/* Provided buffers: RING_BUFS buffers of RING_BUF_SIZE bytes per worker,
 * shared by every socket's receive (IOSQE_BUFFER_SELECT from group
 * RING_BGID): an idle socket holds no receive buffer, so ten thousand idle
 * clients cost their structures only. */
enum { RING_BUFS = 64, RING_BUF_SIZE = 65536, RING_BGID = 1 };
/* Is the current ring's buffer group set up? */
bool ring_has_bufs(void);
/* The buffer a completion's flags name (its id in *bid), or NULL. */
const char *ring_buf(unsigned flags, int *bid);
/* Give buffer bid back to the group. */
void ring_buf_release(int bid);

/* Set up the calling thread's ring; false (errno-style reason in err) when
 * io_uring cannot be used here. complete() gets every completion of the ops
 * RECV, SEND and WAKE. */
bool ring_init(unsigned entries, ring_complete_t complete, char *err, size_t errcap);
/* The calling thread's ring, or NULL. */
struct io_uring *ring_current(void);
/* A free submission slot of the current ring (submits queued ones when full),
 * its user_data set to obj and op; NULL if the ring is jammed. An op other
 * than 0 is counted in flight until its completion, and ring_run does not
 * return while any is (op 0: fire and forget, e.g. a cancel). */
struct io_uring_sqe *ring_sqe(void *obj, int op);
/* Run loop until it has nothing left to do (as uv_run(UV_RUN_DEFAULT)), with
 * the ring's completions in between; then the ring is torn down. */
void ring_run(uv_loop_t *loop);

#endif
