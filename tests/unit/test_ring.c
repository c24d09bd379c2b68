/*
 * Unit tests of src/wire/ring.c: the loop that runs libuv inside a thread's
 * io_uring — libuv timers and wake-ups still fire, ring completions reach
 * their callback, the loop ends only when both sides are done, and a send
 * completing alone is handled at once.
 * Skipped where the kernel refuses io_uring (the proxy then uses libuv).
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wire/ring.h"

static int n_done;
static void *last_obj;
static int last_op, last_res;
static double last_at;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void on_complete(void *obj, int op, int res, unsigned flags)
{
    (void)flags;
    n_done++;
    last_obj = obj;
    last_op = op;
    last_res = res;
    last_at = now_ms();
}

static bool setup_ring(void)
{
    char err[160];
    n_done = 0;
    return ring_init(64, on_complete, err, sizeof err);
}

static int timer_fired;
static void timer_cb(uv_timer_t *t)
{
    timer_fired++;
    uv_close((uv_handle_t *)t, NULL);
}

Test(ring, libuv_timers_fire_and_the_loop_ends_with_them)
{
    if (!setup_ring())
        cr_skip_test("io_uring unavailable here");
    uv_loop_t loop;
    uv_timer_t t;
    uv_loop_init(&loop);
    uv_timer_init(&loop, &t);
    timer_fired = 0;
    uv_timer_start(&t, timer_cb, 30, 0);
    double start = now_ms();
    ring_run(&loop);
    double took = now_ms() - start;
    cr_expect_eq(timer_fired, 1);
    cr_expect_geq(took, 29.0, "returned after %.1f ms, before the timer", took);
    cr_expect_lt(took, 1000.0);
    cr_expect_null(ring_current(), "the ring is torn down when the loop ends");
    uv_loop_close(&loop);
}

static void async_cb(uv_async_t *a)
{
    *(int *)a->data = 1;
    uv_close((uv_handle_t *)a, NULL);
}

static void *send_async(void *arg)
{
    usleep(50 * 1000);
    uv_async_send(arg);
    return NULL;
}

Test(ring, a_wake_up_from_another_thread_reaches_libuv)
{
    if (!setup_ring())
        cr_skip_test("io_uring unavailable here");
    uv_loop_t loop;
    uv_async_t a;
    int woken = 0;
    uv_loop_init(&loop);
    uv_async_init(&loop, &a, async_cb);
    a.data = &woken;
    pthread_t th;
    pthread_create(&th, NULL, send_async, &a);
    ring_run(&loop); /* waits in io_uring_enter: only the epoll poll can wake it */
    pthread_join(th, NULL);
    cr_expect_eq(woken, 1);
    uv_loop_close(&loop);
}

Test(ring, ops_in_flight_hold_the_loop_and_reach_the_callback)
{
    if (!setup_ring())
        cr_skip_test("io_uring unavailable here");
    static long obj; /* 8-byte aligned: the low bits carry the op */
    uv_loop_t loop;
    uv_loop_init(&loop); /* nothing active: libuv alone would return at once */
    for (int i = 0; i < 3; i++) {
        struct io_uring_sqe *sqe = ring_sqe(&obj, RING_OP_WAKE);
        cr_assert_not_null(sqe);
        io_uring_prep_nop(sqe);
    }
    ring_run(&loop);
    cr_expect_eq(n_done, 3);
    cr_expect_eq(last_obj, &obj);
    cr_expect_eq(last_op, RING_OP_WAKE);
    cr_expect_eq(last_res, 0);
    uv_loop_close(&loop);
}

Test(ring, a_send_alone_is_not_held_for_another_completion)
{
    if (!setup_ring())
        cr_skip_test("io_uring unavailable here");
    static long obj;
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    uv_loop_t loop;
    uv_timer_t t;
    uv_loop_init(&loop);
    uv_timer_init(&loop, &t);
    timer_fired = 0;
    uv_timer_start(&t, timer_cb, 500, 0); /* keeps the loop alive meanwhile */
    struct io_uring_sqe *sqe = ring_sqe(&obj, RING_OP_SEND);
    cr_assert_not_null(sqe);
    io_uring_prep_send(sqe, sv[0], "hello", 5, 0);
    double start = now_ms();
    ring_run(&loop);
    cr_expect_eq(n_done, 1);
    cr_expect_eq(last_op, RING_OP_SEND);
    cr_expect_eq(last_res, 5);
    /* a send's completion is handled at once, not with the next event (a
     * wait for more than one completion would hold it until the timer) */
    cr_expect_lt(last_at - start, 100.0, "send handled after %.1f ms", last_at - start);
    char buf[8];
    cr_expect_eq(read(sv[1], buf, sizeof buf), 5);
    close(sv[0]);
    close(sv[1]);
    uv_loop_close(&loop);
}
