/*
 * bench/relay_floor.c: the least a TCP relay can do per round trip, as a floor
 * for what any PostgreSQL proxy costs on this machine (issue 2's target).
 *
 *   relay_floor --listen PORT --backend-port PORT --io epoll|uring
 *
 * Each client connection gets its own backend connection on 127.0.0.1 and the
 * bytes are copied both ways, unparsed: no protocol, no pooling, no TLS, no
 * limits. Single-threaded. Two I/O layers:
 *
 *   epoll  what epoch-proxy (libuv) and PgBouncer (libevent) do: per readable
 *          socket one read() and one write() to the peer, one epoll_wait() per
 *          batch of ready sockets;
 *   uring  io_uring: a recv is always armed on both sides; when it completes,
 *          the send to the peer (MSG_WAITALL) and the next recv are queued
 *          together (linked) and submitted with the wait for the next
 *          completion, in one io_uring_enter() for the whole batch.
 *
 * Bench tool only (bench/passthrough FLOOR=1 runs it); nothing in the product
 * uses it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 65536

typedef struct side {
    int fd;
    struct side *peer;
    struct pair *pair;
    size_t off, len;   /* epoll: bytes of buf not yet written to the peer */
    bool recv_pending; /* uring: a recv (or the recv linked after a send) is in flight */
    char buf[BUF_SIZE];
} side_t;

typedef struct pair {
    side_t side[2]; /* 0: client, 1: backend */
    bool closing;
    struct pair *next_dead;
} pair_t;

static int backend_port;

static void die(const char *what)
{
    fprintf(stderr, "relay_floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (fd < 0)
        die("socket");
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 256) < 0)
        die("bind/listen");
    return fd;
}

/* A new pair for an accepted client: the backend is connected blocking (loopback). */
static pair_t *pair_open(int cfd)
{
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)backend_port)};
    int sfd = socket(AF_INET, SOCK_STREAM, 0);
    pair_t *p;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (sfd < 0 || connect(sfd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        fprintf(stderr, "relay_floor: connect to backend: %s\n", strerror(errno));
        if (sfd >= 0)
            close(sfd);
        close(cfd);
        return NULL;
    }
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    p = calloc(1, sizeof(*p));
    if (!p)
        die("calloc");
    p->side[0] = (side_t){.fd = cfd, .peer = &p->side[1], .pair = p};
    p->side[1] = (side_t){.fd = sfd, .peer = &p->side[0], .pair = p};
    return p;
}

static void pair_free(pair_t *p)
{
    close(p->side[0].fd);
    close(p->side[1].fd);
    free(p);
}

/* ---- epoll ---------------------------------------------------------------------------- */

static int ep;

static void ep_set(side_t *s, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = s};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev) < 0)
        die("epoll_ctl");
}

/* Write what `from` holds to its peer; false when the pair must close. */
static bool ep_flush(side_t *from)
{
    while (from->off < from->len) {
        ssize_t n = write(from->peer->fd, from->buf + from->off, from->len - from->off);
        if (n < 0 && errno == EAGAIN) {
            ep_set(from, 0);                        /* stop reading from `from` ... */
            ep_set(from->peer, EPOLLOUT | EPOLLIN); /* ... until the peer drains */
            return true;
        }
        if (n <= 0)
            return false;
        from->off += (size_t)n;
    }
    from->off = from->len = 0;
    return true;
}

static void run_epoll(int lfd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}, evs[64];
    ep = epoll_create1(0);
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
        die("epoll");
    for (;;) {
        pair_t *dead = NULL;
        int n = epoll_wait(ep, evs, 64, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            side_t *s = evs[i].data.ptr;
            bool ok = true;
            if (!s) {
                int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                pair_t *p = cfd >= 0 ? pair_open(cfd) : NULL;
                if (!p)
                    continue;
                if (fcntl(p->side[1].fd, F_SETFL, O_NONBLOCK) < 0)
                    die("fcntl");
                for (int k = 0; k < 2; k++) {
                    struct epoll_event e = {.events = EPOLLIN, .data.ptr = &p->side[k]};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, p->side[k].fd, &e) < 0)
                        die("epoll_ctl add");
                }
                continue;
            }
            if (s->pair->closing)
                continue;
            if (evs[i].events & EPOLLOUT) { /* s drained: resume what waited for it */
                ok = ep_flush(s->peer);
                if (ok && s->peer->len == 0) {
                    ep_set(s, EPOLLIN);
                    ep_set(s->peer, EPOLLIN);
                }
            }
            if (ok && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && s->len == 0) {
                ssize_t r = read(s->fd, s->buf, BUF_SIZE);
                if (r < 0 && errno == EAGAIN)
                    continue;
                if (r <= 0)
                    ok = false;
                else {
                    s->len = (size_t)r;
                    ok = ep_flush(s);
                }
            }
            if (!ok) {
                s->pair->closing = true;
                s->pair->next_dead = dead;
                dead = s->pair;
            }
        }
        while (dead) { /* after the batch: later events of it may name the pair */
            pair_t *next = dead->next_dead;
            pair_free(dead); /* close() also removes the fds from the epoll set */
            dead = next;
        }
    }
}

/* ---- io_uring ------------------------------------------------------------------------- */

/* user_data: a side_t pointer (8-byte aligned) with the operation in the low bits */
enum { OP_RECV = 0, OP_SEND = 1, OP_ACCEPT = 2 };

static struct io_uring ring;

static struct io_uring_sqe *sqe_get(void)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    if (!sqe) { /* queue full: submit what is there and take a slot */
        io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
        if (!sqe)
            die("io_uring_get_sqe");
    }
    return sqe;
}

static void arm_recv(side_t *s, unsigned flags)
{
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_recv(sqe, s->fd, s->buf, BUF_SIZE, 0);
    sqe->flags |= flags;
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)s | OP_RECV);
    s->recv_pending = true;
}

/* Send the n bytes s received to its peer and, once sent, receive again on s:
 * MSG_WAITALL makes a send complete short only on error, which breaks the link
 * (the recv then completes with -ECANCELED); a successful send posts no completion. */
static void send_then_recv(side_t *s, size_t n)
{
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_send(sqe, s->peer->fd, s->buf, n, MSG_WAITALL | MSG_NOSIGNAL);
    sqe->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)s | OP_SEND);
    arm_recv(s, 0);
}

static void arm_accept(int lfd)
{
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_accept(sqe, lfd, NULL, NULL, 0);
    io_uring_sqe_set_data64(sqe, OP_ACCEPT);
}

/* Start closing: the in-flight recvs of both sides complete (0 or an error) once
 * the sockets are shut down; the pair is freed after the last of them. */
static void pair_close(pair_t *p)
{
    if (p->closing)
        return;
    p->closing = true;
    shutdown(p->side[0].fd, SHUT_RDWR);
    shutdown(p->side[1].fd, SHUT_RDWR);
}

static void run_uring(int lfd)
{
    struct io_uring_params params = {
        .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
    };
    int rc = io_uring_queue_init_params(1024, &ring, &params);
    if (rc < 0) {
        errno = -rc;
        die("io_uring_queue_init");
    }
    arm_accept(lfd);
    for (;;) {
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        rc = io_uring_submit_and_wait(&ring, 1);
        if (rc < 0 && rc != -EINTR) {
            errno = -rc;
            die("io_uring_submit_and_wait");
        }
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            uint64_t ud = io_uring_cqe_get_data64(cqe);
            side_t *s = (side_t *)(uintptr_t)(ud & ~(uint64_t)3);
            int res = cqe->res;
            seen++;
            if ((ud & 3) == OP_ACCEPT) {
                pair_t *p = res >= 0 ? pair_open(res) : NULL;
                if (p) {
                    arm_recv(&p->side[0], 0);
                    arm_recv(&p->side[1], 0);
                }
                arm_accept(lfd);
            } else if ((ud & 3) == OP_SEND) { /* only failed sends complete */
                pair_close(s->pair);
            } else {
                s->recv_pending = false;
                if (res > 0 && !s->pair->closing)
                    send_then_recv(s, (size_t)res);
                else
                    pair_close(s->pair);
                if (s->pair->closing && !s->recv_pending && !s->peer->recv_pending)
                    pair_free(s->pair);
            }
        }
        io_uring_cq_advance(&ring, seen);
    }
}

int main(int argc, char **argv)
{
    int port = 0, lfd;
    const char *io = "epoll";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--listen"))
            port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--backend-port"))
            backend_port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--io"))
            io = argv[i + 1];
    }
    if (port <= 0 || backend_port <= 0 || (strcmp(io, "epoll") && strcmp(io, "uring"))) {
        fprintf(stderr, "usage: relay_floor --listen PORT --backend-port PORT --io epoll|uring\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    lfd = listen_on(port);
    fprintf(stderr, "relay_floor: listening on 127.0.0.1:%d (%s)\n", port, io);
    if (!strcmp(io, "epoll"))
        run_epoll(lfd);
    else
        run_uring(lfd);
    return 0;
}
