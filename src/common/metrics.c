/* metrics — see metrics.h. */
#include "common/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/text.h"

static atomic_uint_fast64_t counters[MC_COUNT];
static atomic_int_fast64_t gauges[MG_COUNT];
static atomic_int_fast64_t client_states[MG_CLIENT_STATES];
static atomic_int_fast64_t server_states[MG_SERVER_STATES];

/* Upper bounds of the histograms' buckets, in seconds (+Inf after them). */
static const double bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30};
#define NBOUNDS (sizeof bounds / sizeof bounds[0])

typedef struct {
    atomic_uint_fast64_t buckets[NBOUNDS + 1]; /* not cumulative; the last is +Inf */
    atomic_uint_fast64_t sum_ns;
} hist_t;
static hist_t hists[MH_COUNT];

/* SQLSTATE classes: two characters of [0-9A-Z] */
#define NCLASS (36 * 36)
static atomic_uint_fast64_t errors[NCLASS];

/* Counters by a name (a branch, a database): open addressing, at most
 * METRICS_MAX_LABELS names, later ones under "other"; one mutex each. */
enum { LABEL_FIELDS = 7 };
typedef struct {
    char name[64]; /* "" = free slot */
    uint64_t v[LABEL_FIELDS];
} label_slot_t;
#define LABEL_SLOTS (2 * METRICS_MAX_LABELS)
typedef struct {
    label_slot_t slots[LABEL_SLOTS];
    int n;
    uint64_t other[LABEL_FIELDS];
    pthread_mutex_t lock;
} label_table_t;
_Static_assert((int)MD_FIELDS <= (int)LABEL_FIELDS, "a label slot holds every per-database field");
static label_table_t by_branch = {.lock = PTHREAD_MUTEX_INITIALIZER};
static label_table_t by_db = {.lock = PTHREAD_MUTEX_INITIALIZER};
enum { BR_QUERIES, BR_XACTS };

static const struct {
    const char *name, *help;
} counter_info[MC_COUNT] = {
    [MC_CLIENTS_ACCEPTED] = {"epoch_client_connections_accepted_total",
                             "Client connections accepted."},
    [MC_CLIENT_BYTES_IN] = {"epoch_client_received_bytes_total",
                            "Bytes read from clients, as on the wire."},
    [MC_CLIENT_BYTES_OUT] = {"epoch_client_sent_bytes_total",
                             "Bytes written to clients, as on the wire."},
    [MC_SERVER_BYTES_IN] = {"epoch_server_received_bytes_total",
                            "Bytes read from PostgreSQL, as on the wire."},
    [MC_SERVER_BYTES_OUT] = {"epoch_server_sent_bytes_total",
                             "Bytes written to PostgreSQL, as on the wire."},
    [MC_SERVER_CONNECTS] = {"epoch_server_connections_opened_total",
                            "Connections to PostgreSQL opened."},
    [MC_REWRITE_CACHE_HITS] = {"epoch_rewrite_cache_hits_total",
                               "Statements whose rewrite came from the rewrite cache."},
    [MC_REWRITE_CACHE_MISSES] = {"epoch_rewrite_cache_misses_total",
                                 "Statements parsed and rewritten (not in the rewrite cache)."},
    [MC_HTTP_REQUESTS] = {"epoch_http_requests_total", "HTTP requests answered."},
    [MC_SWEEPS] = {"epoch_sweeps_total",
                   "Sweeps (expired branches and history gc) this proxy ran on a database."},
};

static const char *const client_state_label[MG_CLIENT_STATES] = {"startup", "auth", "login",
                                                                 "active", "closing"};
static const char *const server_state_label[MG_SERVER_STATES] = {"connecting", "login", "idle",
                                                                 "active", "closing"};

static const struct {
    const char *name, *help;
} hist_info[MH_COUNT] = {
    [MH_QUERY] = {"epoch_query_duration_seconds",
                  "Client requests, from their arrival to PostgreSQL's ReadyForQuery."},
    [MH_POOL_WAIT] = {"epoch_pool_wait_seconds", "Time clients waited for a server of their pool."},
    [MH_REWRITE] = {"epoch_rewrite_duration_seconds",
                    "Parse and rewrite of a statement by the session layer."},
    [MH_COMMIT] = {"epoch_commit_duration_seconds",
                   "Statements calling epoch.commit(), from the request to its answer."},
    [MH_MERGE] = {"epoch_merge_duration_seconds",
                  "Statements calling epoch.merge() or merge_continue(), from the request to "
                  "its answer."},
};

void metrics_add(metric_counter_t m, uint64_t n)
{
    atomic_fetch_add_explicit(&counters[m], n, memory_order_relaxed);
}

uint64_t metrics_get(metric_counter_t m)
{
    return atomic_load_explicit(&counters[m], memory_order_relaxed);
}

static void move(atomic_int_fast64_t *g, int n, int from, int to)
{
    if (from >= 0 && from < n)
        atomic_fetch_sub_explicit(&g[from], 1, memory_order_relaxed);
    if (to >= 0 && to < n)
        atomic_fetch_add_explicit(&g[to], 1, memory_order_relaxed);
}

void metrics_gauge_add(metric_gauge_t g, int64_t delta)
{
    atomic_fetch_add_explicit(&gauges[g], delta, memory_order_relaxed);
}

void metrics_client_state(int from, int to)
{
    move(client_states, MG_CLIENT_STATES, from, to);
}

void metrics_server_state(int from, int to)
{
    move(server_states, MG_SERVER_STATES, from, to);
}

void metrics_observe(metric_hist_t h, double seconds)
{
    size_t i = 0;
    while (i < NBOUNDS && seconds > bounds[i])
        i++;
    atomic_fetch_add_explicit(&hists[h].buckets[i], 1, memory_order_relaxed);
    if (seconds > 0)
        atomic_fetch_add_explicit(&hists[h].sum_ns, (uint64_t)(seconds * 1e9),
                                  memory_order_relaxed);
}

static int class_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 10;
    return -1;
}

void metrics_error(const char *sqlstate)
{
    int a = sqlstate ? class_digit(sqlstate[0]) : -1;
    int b = a >= 0 ? class_digit(sqlstate[1]) : -1;
    if (b >= 0)
        atomic_fetch_add_explicit(&errors[a * 36 + b], 1, memory_order_relaxed);
}

static void label_add(label_table_t *t, const char *name, const uint64_t *v, int nv)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    pthread_mutex_lock(&t->lock);
    label_slot_t *s = NULL;
    if (name[0] && strlen(name) < sizeof s->name) { /* "": counted as "other" */
        for (size_t i = 0; i < LABEL_SLOTS; i++) {
            label_slot_t *c = &t->slots[(h + i) % LABEL_SLOTS];
            if (c->name[0] != '\0' && strcmp(c->name, name) == 0) {
                s = c;
                break;
            }
            if (c->name[0] == '\0') {
                if (t->n < METRICS_MAX_LABELS) {
                    strcpy(c->name, name);
                    t->n++;
                    s = c;
                }
                break;
            }
        }
    }
    uint64_t *to = s ? s->v : t->other;
    for (int i = 0; i < nv; i++)
        to[i] += v[i];
    pthread_mutex_unlock(&t->lock);
}

static void label_each(label_table_t *t, void (*fn)(void *arg, const char *name, const uint64_t *v),
                       void *arg)
{
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < LABEL_SLOTS; i++)
        if (t->slots[i].name[0])
            fn(arg, t->slots[i].name, t->slots[i].v);
    for (int f = 0; f < LABEL_FIELDS; f++)
        if (t->other[f]) {
            fn(arg, "other", t->other);
            break;
        }
    pthread_mutex_unlock(&t->lock);
}

void metrics_branch(const char *branch, uint64_t queries, uint64_t xacts)
{
    uint64_t v[2] = {[BR_QUERIES] = queries, [BR_XACTS] = xacts};
    if (queries || xacts)
        label_add(&by_branch, branch ? branch : "main", v, 2);
}

void metrics_db_add(const char *database, const uint64_t v[MD_FIELDS])
{
    label_add(&by_db, database ? database : "", v, MD_FIELDS);
}

void metrics_db_each(void (*fn)(void *arg, const char *database, const uint64_t *v), void *arg)
{
    label_each(&by_db, fn, arg);
}

void metrics_branch_each(void (*fn)(void *arg, const char *branch, const uint64_t *v), void *arg)
{
    label_each(&by_branch, fn, arg);
}

/* A label value: \, " and newline escaped, as the text format wants. */
static bool put_label(buf_t *out, const char *v)
{
    bool ok = true;
    for (const char *p = v; ok && *p; p++) {
        if (*p == '\\' || *p == '"')
            ok = buf_append(out, "\\", 1) && buf_append(out, p, 1);
        else if (*p == '\n')
            ok = BUF_LIT(out, "\\n");
        else
            ok = buf_append(out, p, 1);
    }
    return ok;
}

static bool head(buf_t *out, const char *name, const char *type, const char *help)
{
    return buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static bool render_gauges(buf_t *out, const char *name, const char *help, atomic_int_fast64_t *g,
                          const char *const *labels, int n)
{
    bool ok = head(out, name, "gauge", help);
    for (int i = 0; ok && i < n; i++)
        ok = buf_appendf(out, "%s{state=\"%s\"} %lld\n", name, labels[i],
                         (long long)atomic_load_explicit(&g[i], memory_order_relaxed));
    return ok;
}

static bool render_hist(buf_t *out, metric_hist_t h)
{
    bool ok = head(out, hist_info[h].name, "histogram", hist_info[h].help);
    uint64_t cum = 0;
    for (size_t i = 0; ok && i <= NBOUNDS; i++) {
        cum += atomic_load_explicit(&hists[h].buckets[i], memory_order_relaxed);
        if (i < NBOUNDS)
            ok = buf_appendf(out, "%s_bucket{le=\"%g\"} %llu\n", hist_info[h].name, bounds[i],
                             (unsigned long long)cum);
        else
            ok = buf_appendf(out, "%s_bucket{le=\"+Inf\"} %llu\n", hist_info[h].name,
                             (unsigned long long)cum);
    }
    double sum = (double)atomic_load_explicit(&hists[h].sum_ns, memory_order_relaxed) / 1e9;
    return ok && buf_appendf(out, "%s_sum %.9f\n%s_count %llu\n", hist_info[h].name, sum,
                             hist_info[h].name, (unsigned long long)cum);
}

typedef struct {
    buf_t *out;
    const char *family;
    int field;
    bool ok;
} branch_render_t;

static void render_branch(void *arg, const char *name, const uint64_t *v)
{
    branch_render_t *r = arg;
    r->ok = r->ok && buf_appendf(r->out, "%s{branch=\"", r->family) && put_label(r->out, name) &&
            buf_appendf(r->out, "\"} %llu\n", (unsigned long long)v[r->field]);
}

static bool render_branches(buf_t *out)
{
    static const char *const names[2] = {"epoch_queries_total", "epoch_transactions_total"};
    static const char *const helps[2] = {
        "Client statements (simple queries and extended-protocol executions) by branch.",
        "Transactions finished (ReadyForQuery back to idle) by branch."};
    bool ok = true;
    for (int k = 0; ok && k < 2; k++) {
        branch_render_t r = {out, names[k], k == 0 ? BR_QUERIES : BR_XACTS, true};
        ok = head(out, names[k], "counter", helps[k]);
        if (ok)
            label_each(&by_branch, render_branch, &r);
        ok = ok && r.ok;
    }
    return ok;
}

bool metrics_render(buf_t *out)
{
    bool ok = true;
    for (int m = 0; ok && m < MC_COUNT; m++)
        ok = head(out, counter_info[m].name, "counter", counter_info[m].help) &&
             buf_appendf(out, "%s %llu\n", counter_info[m].name,
                         (unsigned long long)metrics_get((metric_counter_t)m));
    ok = ok && render_gauges(out, "epoch_client_connections", "Client connections by state.",
                             client_states, client_state_label, MG_CLIENT_STATES);
    ok = ok && render_gauges(out, "epoch_server_connections", "Connections to PostgreSQL by state.",
                             server_states, server_state_label, MG_SERVER_STATES);
    ok =
        ok &&
        head(out, "epoch_redis_connected_workers", "gauge",
             "Workers connected to Redis now (0 without Redis, or while it is away).") &&
        buf_appendf(out, "epoch_redis_connected_workers %lld\n",
                    (long long)atomic_load_explicit(&gauges[MG_REDIS_LINKS], memory_order_relaxed));
    ok = ok && head(out, "epoch_errors_total", "counter",
                    "ErrorResponses sent to clients, by SQLSTATE class.");
    static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (int i = 0; ok && i < NCLASS; i++) {
        uint64_t n = atomic_load_explicit(&errors[i], memory_order_relaxed);
        if (n)
            ok = buf_appendf(out, "epoch_errors_total{class=\"%c%c\"} %llu\n", digits[i / 36],
                             digits[i % 36], (unsigned long long)n);
    }
    ok = ok && render_branches(out);
    for (int h = 0; ok && h < MH_COUNT; h++)
        ok = render_hist(out, (metric_hist_t)h);
    return ok;
}
