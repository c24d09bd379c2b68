/*
 * ring — see ring.h. The loop: wait in io_uring_enter (submitting what the
 * last turn queued) until a completion arrives or libuv's next timer is due;
 * dispatch the completions; run libuv without blocking when its epoll
 * descriptor became readable (a one-shot poll, armed again after each run:
 * one-shot sees events libuv left pending, so none is ever missed) or when it
 * has work of its own (due timers, closing handles).
 */
#include "wire/ring.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define BATCH 64

static __thread struct io_uring ring;
static __thread bool have_ring;
static __thread ring_complete_t on_complete;
static __thread long in_flight; /* ops (not 0, not RING_OP_UV) without a completion yet */
static __thread struct io_uring_buf_ring *buf_ring; /* NULL: no provided buffers */
static __thread char *bufs;                         /* RING_BUFS * RING_BUF_SIZE */

/* The buffer group (kernel 5.19); without it streams keep a buffer each. */
static void setup_bufs(void)
{
    size_t ring_size = RING_BUFS * sizeof(struct io_uring_buf);
    void *br = NULL;
    if (posix_memalign(&br, 4096, ring_size) != 0)
        return;
    bufs = malloc((size_t)RING_BUFS * RING_BUF_SIZE); /* pages touched as used */
    if (!bufs) {
        free(br);
        return;
    }
    struct io_uring_buf_reg reg = {
        .ring_addr = (uintptr_t)br, .ring_entries = RING_BUFS, .bgid = RING_BGID};
    if (io_uring_register_buf_ring(&ring, &reg, 0) != 0) {
        free(br);
        free(bufs);
        bufs = NULL;
        return;
    }
    buf_ring = br;
    io_uring_buf_ring_init(buf_ring);
    for (int i = 0; i < RING_BUFS; i++)
        io_uring_buf_ring_add(buf_ring, bufs + (size_t)i * RING_BUF_SIZE, RING_BUF_SIZE,
                              (unsigned short)i, io_uring_buf_ring_mask(RING_BUFS), i);
    io_uring_buf_ring_advance(buf_ring, RING_BUFS);
}

bool ring_has_bufs(void)
{
    return buf_ring != NULL;
}

const char *ring_buf(unsigned flags, int *bid)
{
    if (!buf_ring || !(flags & IORING_CQE_F_BUFFER))
        return NULL;
    *bid = (int)(flags >> IORING_CQE_BUFFER_SHIFT);
    return bufs + (size_t)*bid * RING_BUF_SIZE;
}

void ring_buf_release(int bid)
{
    io_uring_buf_ring_add(buf_ring, bufs + (size_t)bid * RING_BUF_SIZE, RING_BUF_SIZE,
                          (unsigned short)bid, io_uring_buf_ring_mask(RING_BUFS), 0);
    io_uring_buf_ring_advance(buf_ring, 1);
}

bool ring_init(unsigned entries, ring_complete_t complete, char *err, size_t errcap)
{
    /* completions are posted only when this thread enters the kernel to
     * wait for them: no interrupts while it runs protocol code */
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
    int rc = io_uring_queue_init_params(entries, &ring, &p);
    if (rc < 0) {
        snprintf(err, errcap, "%s", strerror(-rc));
        return false;
    }
    io_uring_register_ring_fd(&ring); /* a little cheaper per enter; optional */
    setup_bufs();
    have_ring = true;
    on_complete = complete;
    return true;
}

struct io_uring *ring_current(void)
{
    return have_ring ? &ring : NULL;
}

static struct io_uring_sqe *get_sqe(void)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    if (!sqe && io_uring_submit(&ring) >= 0)
        sqe = io_uring_get_sqe(&ring);
    return sqe;
}

struct io_uring_sqe *ring_sqe(void *obj, int op)
{
    struct io_uring_sqe *sqe = get_sqe();
    if (!sqe)
        return NULL;
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)obj | (uint64_t)op);
    if (op != 0)
        in_flight++;
    return sqe;
}

static bool arm_uv_poll(uv_loop_t *loop)
{
    struct io_uring_sqe *sqe = get_sqe();
    if (!sqe)
        return false;
    io_uring_prep_poll_add(sqe, uv_backend_fd(loop), POLLIN);
    io_uring_sqe_set_data64(sqe, RING_OP_UV);
    return true;
}

/* Wait for completions (at most timeout ms; -1 = no limit, 0 = do not wait). */
static void wait_events(int timeout)
{
    int rc;
    if (timeout == 0) {
        rc = io_uring_submit_and_get_events(&ring);
    } else if (timeout < 0) {
        rc = io_uring_submit_and_wait(&ring, 1);
    } else {
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_sec = timeout / 1000,
                                       .tv_nsec = (long long)(timeout % 1000) * 1000000};
        rc = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        log_error("io_uring_enter: %s", strerror(-rc));
}

void ring_run(uv_loop_t *loop)
{
    bool uv_armed = false;
    uv_run(loop, UV_RUN_NOWAIT);
    while (uv_loop_alive(loop) || in_flight > 0) {
        if (!uv_armed && arm_uv_poll(loop))
            uv_armed = true;
        uv_update_time(loop);
        bool alive = uv_loop_alive(loop);
        /* libuv done (0 = "nothing to wait for"): only ring ops are left */
        int timeout = alive ? uv_backend_timeout(loop) : -1;
        /* without the poll (no submission slot), poll libuv every 10 ms */
        if (!uv_armed && (timeout < 0 || timeout > 10))
            timeout = 10;
        wait_events(timeout);
        bool run_uv = timeout == 0 || !uv_armed;
        struct io_uring_cqe *cqes[BATCH];
        unsigned n;
        /* copied out first: the callbacks may queue submissions, never reap */
        while ((n = io_uring_peek_batch_cqe(&ring, cqes, BATCH)) > 0) {
            struct {
                uint64_t data;
                int res;
                unsigned flags;
            } done[BATCH];
            for (unsigned i = 0; i < n; i++) {
                done[i].data = io_uring_cqe_get_data64(cqes[i]);
                done[i].res = cqes[i]->res;
                done[i].flags = cqes[i]->flags;
            }
            io_uring_cq_advance(&ring, n);
            for (unsigned i = 0; i < n; i++) {
                int op = (int)(done[i].data & RING_OP_MASK);
                if (op == RING_OP_UV) {
                    uv_armed = false;
                    run_uv = true;
                } else if (op != 0) {
                    in_flight--;
                    on_complete((void *)(uintptr_t)(done[i].data & ~(uint64_t)RING_OP_MASK), op,
                                done[i].res, done[i].flags);
                }
            }
        }
        if (!run_uv && alive) {
            uv_update_time(loop);
            run_uv = uv_backend_timeout(loop) == 0; /* timers due, handles closing */
        }
        if (run_uv)
            uv_run(loop, UV_RUN_NOWAIT);
    }
    if (buf_ring) {
        io_uring_unregister_buf_ring(&ring, RING_BGID);
        free(buf_ring);
        free(bufs);
        buf_ring = NULL;
        bufs = NULL;
    }
    io_uring_queue_exit(&ring);
    have_ring = false;
}
