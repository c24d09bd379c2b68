/*
 * admin_collect — the console's SHOW CLIENTS, SERVERS, POOLS and BRANCHES,
 * gathered from every worker. Each worker owns its connections and is the
 * only thread that may read them: the console's worker posts a request to
 * every worker's mailbox (and wakes it); each fills its part on its own
 * loop; the last one to finish posts the request back to the console's
 * worker, which merges the parts and answers, if the console is still there.
 *
 * Must never: read another worker's connections, or answer a console that
 * is gone.
 */
#include "wire/admin.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics.h"
#include "wire/conn.h"
#include "wire/hooks.h"

typedef struct pool_sum {
    char database[128], user[128], mode[16];
    long cl_active, cl_waiting, sv_active, sv_idle, sv_login;
    uint64_t maxwait_us;
} pool_sum_t;

typedef struct branch_sum {
    char name[128];
    long sessions;
} branch_sum_t;

typedef struct part {
    long busy;  /* PAUSE_CHECK */
    buf_t rows; /* CLIENTS, SERVERS: DataRows */
    pool_sum_t *pools;
    int npools;
    branch_sum_t *branches;
    int nbranches;
    bool failed;
} part_t;

typedef struct admin_req {
    admin_kind_t kind;
    char db[128];
    worker_t *home;
    uint64_t client_id;
    atomic_int pending;
    int nparts;
    part_t *parts;
    struct admin_item *items; /* one per worker, one allocation */
    struct admin_req *next;   /* home's done list */
} admin_req_t;

typedef struct admin_item {
    admin_req_t *req;
    int index;
    struct admin_item *next;
} admin_item_t;

/* ---- one worker's part ---- */

static void fmt_time(time_t t, char *out, size_t cap)
{
    struct tm tm;
    if (!t || !gmtime_r(&t, &tm) || !strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm))
        snprintf(out, cap, "%s", "");
}

static void sock_name(const stream_t *s, bool peer, char *addr, size_t acap, char *port,
                      size_t pcap)
{
    snprintf(addr, acap, "%s", "");
    snprintf(port, pcap, "%s", "");
    if (s->h.handle.type != UV_TCP)
        return;
    struct sockaddr_storage sa;
    int len = sizeof sa;
    int rc = peer ? uv_tcp_getpeername(&s->h.tcp, (struct sockaddr *)&sa, &len)
                  : uv_tcp_getsockname(&s->h.tcp, (struct sockaddr *)&sa, &len);
    if (rc != 0)
        return;
    if (sa.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&sa;
        uv_ip4_name(in, addr, acap);
        snprintf(port, pcap, "%u", ntohs(in->sin_port));
    } else if (sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in = (const struct sockaddr_in6 *)&sa;
        uv_ip6_name(in, addr, acap);
        snprintf(port, pcap, "%u", ntohs(in->sin6_port));
    }
}

static const char *tls_version(const stream_t *s)
{
    return s->ssl ? SSL_get_version(s->ssl) : "";
}

/* PgBouncer's columns of SHOW CLIENTS and SHOW SERVERS, and the branch. */
static const admin_col_t conn_cols[] = {
    {"type", false},         {"user", false},      {"database", false},
    {"state", false},        {"addr", false},      {"port", true},
    {"local_addr", false},   {"local_port", true}, {"connect_time", false},
    {"request_time", false}, {"wait", true},       {"wait_us", true},
    {"close_needed", true},  {"ptr", false},       {"link", false},
    {"remote_pid", true},    {"tls", false},       {"application_name", false},
    {"branch", false}};
#define NCONN ((int)(sizeof conn_cols / sizeof conn_cols[0]))

static bool client_row(buf_t *b, client_t *c, uint64_t now_ns)
{
    char addr[64], port[8], laddr[64], lport[8], ct[40], rt[40], wait[24], wait_us[24], ptr[24],
        link[24], pid[16];
    sock_name(&c->st, true, addr, sizeof addr, port, sizeof port);
    sock_name(&c->st, false, laddr, sizeof laddr, lport, sizeof lport);
    fmt_time(c->connect_time, ct, sizeof ct);
    fmt_time(c->request_time, rt, sizeof rt);
    bool waiting = list_linked(&c->wait) && c->wait_start_ns;
    uint64_t waited = waiting ? now_ns - c->wait_start_ns : 0;
    snprintf(wait, sizeof wait, "%llu", (unsigned long long)(waited / 1000000000u));
    snprintf(wait_us, sizeof wait_us, "%llu", (unsigned long long)(waited / 1000 % 1000000));
    snprintf(ptr, sizeof ptr, "%p", (void *)c);
    snprintf(link, sizeof link, "%p", (void *)c->server);
    snprintf(pid, sizeof pid, "%u", c->server ? c->server->be_pid : 0);
    const char *state = c->state == CL_ACTIVE    ? (waiting ? "waiting" : "active")
                        : c->state == CL_CLOSING ? "closing"
                                                 : "login";
    const char *branch = c->console ? NULL : wire_hooks()->branch(c);
    const char *v[NCONN] = {"C",
                            c->startup.user ? c->startup.user : "",
                            c->startup.database ? c->startup.database : "",
                            state,
                            addr,
                            port,
                            laddr,
                            lport,
                            ct,
                            rt,
                            wait,
                            wait_us,
                            "0",
                            ptr,
                            c->server ? link : "",
                            pid,
                            tls_version(&c->st),
                            c->startup.application_name ? c->startup.application_name : "",
                            c->console ? ""
                            : branch   ? branch
                                       : "main"};
    return admin_row(b, NCONN, v);
}

static bool server_row(buf_t *b, server_t *sv, const config_t *cfg)
{
    char addr[64], port[8], laddr[64], lport[8], ct[40], ptr[24], link[24], pid[16];
    sock_name(&sv->st, true, addr, sizeof addr, port, sizeof port);
    if (!addr[0]) { /* a Unix socket */
        snprintf(addr, sizeof addr, "%s", cfg->backend_host);
        snprintf(port, sizeof port, "%d", cfg->backend_port);
    }
    sock_name(&sv->st, false, laddr, sizeof laddr, lport, sizeof lport);
    fmt_time(sv->connect_time, ct, sizeof ct);
    snprintf(ptr, sizeof ptr, "%p", (void *)sv);
    snprintf(link, sizeof link, "%p", (void *)sv->client);
    snprintf(pid, sizeof pid, "%u", sv->be_pid);
    static const char *const states[] = {"login", "login", "idle", "active", "closing"};
    const client_t *c = sv->client;
    const char *user = sv->pool ? (cfg->server_user ? cfg->server_user : sv->pool->user)
                       : c      ? c->startup.user
                                : "";
    const char *db = sv->pool ? sv->pool->database : c ? c->startup.database : "";
    const char *v[NCONN] = {"S",
                            user,
                            db ? db : "",
                            states[sv->state],
                            addr,
                            port,
                            laddr,
                            lport,
                            ct,
                            "",
                            "0",
                            "0",
                            "0",
                            ptr,
                            c ? link : "",
                            pid,
                            tls_version(&sv->st),
                            "epoch-proxy",
                            ""};
    return admin_row(b, NCONN, v);
}

static pool_sum_t *pool_of(part_t *p, const char *db, const char *user, const char *mode)
{
    for (int i = 0; i < p->npools; i++)
        if (!strcmp(p->pools[i].database, db) && !strcmp(p->pools[i].user, user) &&
            !strcmp(p->pools[i].mode, mode))
            return &p->pools[i];
    pool_sum_t *grown = realloc(p->pools, (size_t)(p->npools + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    p->pools = grown;
    pool_sum_t *s = &grown[p->npools++];
    memset(s, 0, sizeof *s);
    snprintf(s->database, sizeof s->database, "%s", db);
    snprintf(s->user, sizeof s->user, "%s", user);
    snprintf(s->mode, sizeof s->mode, "%s", mode);
    return s;
}

static void add_branch(part_t *p, const char *name, long sessions)
{
    for (int i = 0; i < p->nbranches; i++)
        if (!strcmp(p->branches[i].name, name)) {
            p->branches[i].sessions += sessions;
            return;
        }
    branch_sum_t *grown = realloc(p->branches, (size_t)(p->nbranches + 1) * sizeof *grown);
    if (!grown) {
        p->failed = true;
        return;
    }
    p->branches = grown;
    snprintf(grown[p->nbranches].name, sizeof grown[0].name, "%s", name);
    grown[p->nbranches++].sessions = sessions;
}

static bool db_matches(const char *pattern, const char *db)
{
    return strcmp(pattern, "*") == 0 || (db && strcmp(pattern, db) == 0);
}

/* PAUSE_CHECK: the clients of db with a request in flight or a transaction
 * open (they finish before PAUSE answers), and db's idle pooled servers
 * closed; RESUME: db's held clients go on. */
static void fill_pause(worker_t *w, admin_kind_t kind, const char *db, part_t *p)
{
    list_node_t *n, *tmp;
    list_for_each_safe(n, tmp, &w->clients)
    {
        client_t *c = list_entry(n, client_t, node);
        if (c->console || c->state != CL_ACTIVE || !db_matches(db, c->startup.database))
            continue;
        if (kind == ADMIN_PAUSE_CHECK) {
            if (c->inflight > 0 || c->tx_status != 'I' || c->unsynced || c->in_copy_in)
                p->busy++;
        } else if (c->held && !admin_paused(c->startup.database)) {
            c->held = false;
            stream_read_start(&c->st);
            client_resume(c);
        }
    }
    if (kind != ADMIN_PAUSE_CHECK)
        return;
    list_for_each_safe(n, tmp, &w->pools)
    {
        pool_t *pl = list_entry(n, pool_t, node);
        if (!db_matches(db, pl->database))
            continue;
        list_node_t *m, *mt;
        list_for_each_safe(m, mt, &pl->idle)
        {
            server_close(list_entry(m, server_t, node), "PAUSE");
        }
    }
}

static void fill(worker_t *w, admin_kind_t kind, const char *db, part_t *p)
{
    if (kind == ADMIN_PAUSE_CHECK || kind == ADMIN_RESUME) {
        fill_pause(w, kind, db, p);
        return;
    }
    const config_t *cfg = worker_config(w);
    uint64_t now = uv_hrtime();
    const char *mode = cfg->auth_mode == AUTH_PASSTHROUGH   ? "passthrough"
                       : cfg->pool_mode == POOL_TRANSACTION ? "transaction"
                                                            : "session";
    list_node_t *n;
    for (n = w->clients.next; n != &w->clients && !p->failed; n = n->next) {
        client_t *c = list_entry(n, client_t, node);
        switch (kind) {
        case ADMIN_CLIENTS:
            p->failed = !client_row(&p->rows, c, now);
            break;
        case ADMIN_SERVERS:
            if (c->server)
                p->failed = !server_row(&p->rows, c->server, cfg);
            break;
        case ADMIN_POOLS: {
            if (c->console || c->state == CL_CLOSING || !c->startup.database)
                break;
            pool_sum_t *s = pool_of(p, c->startup.database, c->startup.user, mode);
            if (!s) {
                p->failed = true;
                break;
            }
            bool waiting = list_linked(&c->wait) && c->wait_start_ns;
            if (waiting) {
                s->cl_waiting++;
                if (now - c->wait_start_ns > s->maxwait_us * 1000)
                    s->maxwait_us = (now - c->wait_start_ns) / 1000;
            } else {
                s->cl_active++;
            }
            if (c->server && c->server->state == SV_ACTIVE)
                s->sv_active++;
            else if (c->server && !c->server->pool)
                s->sv_login++;
            break;
        }
        case ADMIN_BRANCHES:
            if (c->state == CL_ACTIVE && !c->console) {
                const char *b = wire_hooks()->branch(c);
                add_branch(p, b ? b : "main", 1);
            }
            break;
        case ADMIN_PAUSE_CHECK:
        case ADMIN_RESUME:
            break; /* fill_pause */
        }
    }
    if (kind == ADMIN_SERVERS || kind == ADMIN_POOLS) {
        for (n = w->pools.next; n != &w->pools && !p->failed; n = n->next) {
            pool_t *pl = list_entry(n, pool_t, node);
            pool_sum_t *s = kind == ADMIN_POOLS ? pool_of(p, pl->database, pl->user, mode) : NULL;
            if (kind == ADMIN_POOLS && !s) {
                p->failed = true;
                break;
            }
            if (s)
                s->sv_login += pl->n_connecting;
            for (list_node_t *m = pl->idle.next; m != &pl->idle && !p->failed; m = m->next) {
                server_t *sv = list_entry(m, server_t, node);
                if (s)
                    s->sv_idle++;
                else
                    p->failed = !server_row(&p->rows, sv, cfg);
            }
        }
    }
}

/* ---- the requests ---- */

static void part_done(admin_req_t *r);

static void post(worker_t *w, admin_item_t *item)
{
    pthread_mutex_lock(&w->admin_lock);
    bool closed = w->admin_closed;
    if (!closed) {
        item->next = w->admin_inbox;
        w->admin_inbox = item;
    }
    pthread_mutex_unlock(&w->admin_lock);
    if (!closed) {
        uv_async_send(&w->wake);
        return;
    }
    /* a worker whose loop is ending answers nothing: an empty part */
    part_done(item->req);
}

static void part_done(admin_req_t *r)
{
    if (atomic_fetch_sub(&r->pending, 1) != 1)
        return;
    worker_t *home = r->home;
    pthread_mutex_lock(&home->admin_lock);
    r->next = home->admin_done;
    home->admin_done = r;
    pthread_mutex_unlock(&home->admin_lock);
    uv_async_send(&home->wake);
}

static void req_free(admin_req_t *r)
{
    free(r->items);
    for (int i = 0; i < r->nparts; i++) {
        buf_free(&r->parts[i].rows);
        free(r->parts[i].pools);
        free(r->parts[i].branches);
    }
    free(r->parts);
    free(r);
}

void admin_collect(client_t *c, admin_kind_t kind, const char *db)
{
    int n = workers_count();
    admin_req_t *r = calloc(1, sizeof *r);
    admin_item_t *items = r ? calloc((size_t)n, sizeof *items) : NULL;
    if (r)
        r->parts = calloc((size_t)n, sizeof *r->parts);
    if (!r || !items || !r->parts) {
        free(items);
        if (r)
            free(r->parts);
        free(r);
        client_fail(c, "53200", "out of memory", NULL);
        return;
    }
    r->kind = kind;
    snprintf(r->db, sizeof r->db, "%s", db ? db : "*");
    r->home = c->w;
    r->client_id = c->id;
    r->nparts = n;
    r->items = items;
    atomic_store(&r->pending, n);
    c->admin_busy = true; /* the console's next statement waits for this answer */
    for (int i = 0; i < n; i++) {
        items[i].req = r;
        items[i].index = i;
        post(worker_at(i), &items[i]);
    }
}

typedef struct {
    part_t *all; /* sessions per branch; a listed one's count becomes -1 */
    buf_t *b;
    bool ok;
} branch_rows_t;

static void branch_row(void *arg, const char *name, const uint64_t *v)
{
    branch_rows_t *a = arg;
    long sessions = 0;
    for (int k = 0; k < a->all->nbranches; k++)
        if (!strcmp(a->all->branches[k].name, name)) {
            sessions = a->all->branches[k].sessions;
            a->all->branches[k].sessions = -1;
        }
    char n1[24], n2[24], n3[24];
    snprintf(n1, sizeof n1, "%ld", sessions);
    snprintf(n2, sizeof n2, "%llu", (unsigned long long)v[0]);
    snprintf(n3, sizeof n3, "%llu", (unsigned long long)v[1]);
    const char *row[] = {name, n1, n2, n3};
    a->ok = a->ok && admin_row(a->b, 4, row);
}

static void merge_and_send(client_t *c, admin_req_t *r)
{
    buf_t b = {0};
    bool ok = true;
    for (int i = 0; i < r->nparts; i++)
        ok = ok && !r->parts[i].failed;
    long busy = 0;
    switch (r->kind) {
    case ADMIN_PAUSE_CHECK:
        for (int i = 0; i < r->nparts; i++)
            busy += r->parts[i].busy;
        admin_pause_checked(c, r->db, busy);
        return;
    case ADMIN_RESUME:
        admin_send(c, &b, true, "RESUME");
        return;
    case ADMIN_CLIENTS:
    case ADMIN_SERVERS:
        ok = ok && admin_columns(&b, conn_cols, NCONN);
        for (int i = 0; ok && i < r->nparts; i++)
            ok = buf_append(&b, r->parts[i].rows.data, r->parts[i].rows.len);
        break;
    case ADMIN_POOLS: {
        static const admin_col_t cols[] = {{"database", false},
                                           {"user", false},
                                           {"cl_active", true},
                                           {"cl_waiting", true},
                                           {"cl_active_cancel_req", true},
                                           {"cl_waiting_cancel_req", true},
                                           {"sv_active", true},
                                           {"sv_active_cancel", true},
                                           {"sv_being_canceled", true},
                                           {"sv_idle", true},
                                           {"sv_used", true},
                                           {"sv_tested", true},
                                           {"sv_login", true},
                                           {"maxwait", true},
                                           {"maxwait_us", true},
                                           {"pool_mode", false}};
        part_t all = {0};
        for (int i = 0; ok && i < r->nparts; i++)
            for (int k = 0; ok && k < r->parts[i].npools; k++) {
                const pool_sum_t *s = &r->parts[i].pools[k];
                pool_sum_t *t = pool_of(&all, s->database, s->user, s->mode);
                ok = t != NULL;
                if (!ok)
                    break;
                t->cl_active += s->cl_active;
                t->cl_waiting += s->cl_waiting;
                t->sv_active += s->sv_active;
                t->sv_idle += s->sv_idle;
                t->sv_login += s->sv_login;
                if (s->maxwait_us > t->maxwait_us)
                    t->maxwait_us = s->maxwait_us;
            }
        ok = ok && admin_columns(&b, cols, 16);
        for (int k = 0; ok && k < all.npools; k++) {
            const pool_sum_t *s = &all.pools[k];
            char v[8][24];
            snprintf(v[0], 24, "%ld", s->cl_active);
            snprintf(v[1], 24, "%ld", s->cl_waiting);
            snprintf(v[2], 24, "%ld", s->sv_active);
            snprintf(v[3], 24, "%ld", s->sv_idle);
            snprintf(v[4], 24, "%ld", s->sv_login);
            snprintf(v[5], 24, "%llu", (unsigned long long)(s->maxwait_us / 1000000));
            snprintf(v[6], 24, "%llu", (unsigned long long)(s->maxwait_us % 1000000));
            const char *row[] = {s->database, s->user, v[0], v[1], "0",  "0",  v[2], "0",
                                 "0",         v[3],    "0",  "0",  v[4], v[5], v[6], s->mode};
            ok = admin_row(&b, 16, row);
        }
        free(all.pools);
        break;
    }
    case ADMIN_BRANCHES: {
        static const admin_col_t cols[] = {{"branch", false},
                                           {"sessions", true},
                                           {"total_query_count", true},
                                           {"total_xact_count", true}};
        part_t all = {0};
        for (int i = 0; i < r->nparts; i++)
            for (int k = 0; k < r->parts[i].nbranches; k++)
                add_branch(&all, r->parts[i].branches[k].name, r->parts[i].branches[k].sessions);
        branch_rows_t acc = {&all, &b, ok && !all.failed && admin_columns(&b, cols, 4)};
        metrics_branch_each(branch_row, &acc);
        /* sessions on a branch that has no statement counted yet */
        for (int k = 0; acc.ok && k < all.nbranches; k++) {
            if (all.branches[k].sessions < 0)
                continue; /* listed above */
            char n1[24];
            snprintf(n1, sizeof n1, "%ld", all.branches[k].sessions);
            const char *row[] = {all.branches[k].name, n1, "0", "0"};
            acc.ok = admin_row(&b, 4, row);
        }
        ok = acc.ok;
        free(all.branches);
        break;
    }
    }
    admin_send(c, &b, ok, "SHOW");
}

client_t *admin_client_by_id(worker_t *w, uint64_t id)
{
    for (list_node_t *n = w->clients.next; n != &w->clients; n = n->next) {
        client_t *c = list_entry(n, client_t, node);
        if (c->id == id)
            return c;
    }
    return NULL;
}

void admin_wake(worker_t *w)
{
    pthread_mutex_lock(&w->admin_lock);
    admin_item_t *inbox = w->admin_inbox;
    admin_req_t *done = w->admin_done;
    w->admin_inbox = NULL;
    w->admin_done = NULL;
    pthread_mutex_unlock(&w->admin_lock);
    while (inbox) {
        admin_item_t *next = inbox->next;
        fill(w, inbox->req->kind, inbox->req->db, &inbox->req->parts[inbox->index]);
        part_done(inbox->req);
        inbox = next;
    }
    while (done) {
        admin_req_t *next = done->next;
        client_t *c = admin_client_by_id(w, done->client_id);
        if (c && c->state == CL_ACTIVE) {
            c->admin_busy = false;
            merge_and_send(c, done);
            if (c->state == CL_ACTIVE && buf_avail(&c->st.rbuf))
                admin_on_read(c); /* statements that waited for this answer */
        }
        req_free(done);
        done = next;
    }
}
