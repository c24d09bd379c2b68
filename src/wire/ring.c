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
#include <string.h>

#include "common/log.h"

#define BATCH 64

static __thread struct io_uring ring;
static __thread bool have_ring;
static __thread ring_complete_t on_complete;
static __thread long in_flight; /* ops (not 0, not RING_OP_UV) without a completion yet */

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
            } done[BATCH];
            for (unsigned i = 0; i < n; i++) {
                done[i].data = io_uring_cqe_get_data64(cqes[i]);
                done[i].res = cqes[i]->res;
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
                                done[i].res);
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
    io_uring_queue_exit(&ring);
    have_ring = false;
}
