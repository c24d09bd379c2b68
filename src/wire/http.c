/*
 * http — the HTTP listener (http_listen, --http): GET /health (the process
 * answers), /ready (PostgreSQL accepts a connection and the proxy is not
 * shutting down), /metrics (common/metrics.h, Prometheus text format).
 *
 * Each worker listens on its own SO_REUSEPORT socket, as for PostgreSQL
 * clients, and serves HTTP on its loop. A request is parsed by http-parser
 * (libhttp-parser); one request per connection, answered with
 * "Connection: close". An HTTP peer shares nothing with the proxy's clients
 * but the loop: every step is non-blocking and bounded (HTTP_MAX_REQUEST
 * bytes, HTTP_TIMEOUT_MS per connection, one connection probe for /ready).
 *
 * Must never: touch a client or server connection, answer a request it did
 * not parse whole, or read more than HTTP_MAX_REQUEST bytes of one.
 */
#include "wire/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include "common/log.h"
#include "common/metrics.h"
#include "wire/conn.h"

#define HTTP_MAX_REQUEST 8192 /* request line and headers: 431 beyond */
#define HTTP_TIMEOUT_MS 10000 /* a connection that has not sent its request by then is closed */
#define READY_TIMEOUT_MS 2000 /* /ready's connection to PostgreSQL */

typedef struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    int open_handles; /* freed when both are closed */
    worker_t *w;
    list_node_t node; /* w->http_conns */
    http_parser parser;
    size_t received;
    char url[256];
    size_t url_len;
    bool url_too_long;
    bool complete; /* the request was parsed whole */
    bool answered; /* a response is being written */
    struct ready_probe *probe;
    uv_write_t wreq;
    buf_t out;
} http_conn_t;

/* /ready's connection attempt to PostgreSQL: a stream (stream_connect: TCP
 * or the Unix socket, as for servers) and a timer. */
typedef struct ready_probe {
    stream_t st;
    uv_timer_t timer;
    int open_handles;
    bool finished;
    http_conn_t *conn; /* NULL once the HTTP connection went away */
} ready_probe_t;

static void conn_handle_closed(uv_handle_t *h)
{
    http_conn_t *hc = h->data;
    if (--hc->open_handles == 0) {
        buf_free(&hc->out);
        free(hc);
    }
}

static void conn_close(http_conn_t *hc)
{
    if (uv_is_closing((uv_handle_t *)&hc->tcp))
        return;
    if (hc->probe)
        hc->probe->conn = NULL;
    list_remove(&hc->node);
    uv_close((uv_handle_t *)&hc->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&hc->timer, conn_handle_closed);
}

static void written(uv_write_t *req, int status)
{
    (void)status;
    conn_close(req->data);
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    default:
        return "Service Unavailable";
    }
}

/* Write the response (no body for HEAD) and close once it is out. */
static void respond(http_conn_t *hc, int status, const char *type, const char *body, size_t len)
{
    if (hc->answered)
        return;
    hc->answered = true;
    uv_read_stop((uv_stream_t *)&hc->tcp);
    bool head = hc->complete && hc->parser.method == HTTP_HEAD;
    buf_reset(&hc->out);
    bool ok = buf_appendf(&hc->out,
                          "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                          "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                          status, reason(status), type, len) &&
              (head || buf_append(&hc->out, body, len));
    metrics_add(MC_HTTP_REQUESTS, 1);
    if (!ok) {
        conn_close(hc);
        return;
    }
    uv_buf_t b = uv_buf_init(buf_head(&hc->out), (unsigned)buf_avail(&hc->out));
    hc->wreq.data = hc;
    if (uv_write(&hc->wreq, (uv_stream_t *)&hc->tcp, &b, 1, written) != 0)
        conn_close(hc);
}

static void respond_text(http_conn_t *hc, int status, const char *text)
{
    respond(hc, status, "text/plain; charset=utf-8", text, strlen(text));
}

/* ---- /ready ---- */

static void probe_done(ready_probe_t *p)
{
    if (--p->open_handles == 0)
        free(p);
}

static void probe_timer_closed(uv_handle_t *h)
{
    probe_done(h->data);
}

static void probe_finish(ready_probe_t *p, const char *why)
{
    if (p->finished)
        return;
    p->finished = true;
    if (p->conn) {
        p->conn->probe = NULL;
        if (why) {
            char text[200];
            snprintf(text, sizeof text, "not ready: PostgreSQL: %s\n", why);
            respond_text(p->conn, 503, text);
        } else {
            respond_text(p->conn, 200, "ready\n");
        }
    }
    stream_close(&p->st);
    uv_close((uv_handle_t *)&p->timer, probe_timer_closed);
}

static void probe_connected(stream_t *s, int status)
{
    probe_finish(s->owner, status == 0 ? NULL : uv_strerror(status));
}

static void probe_closed(stream_t *s)
{
    probe_done(s->owner);
}

static void probe_no_read(stream_t *s)
{
    (void)s;
}

static void probe_eof(stream_t *s, const char *why)
{
    probe_finish(s->owner, why);
}

static const stream_ops_t probe_ops = {probe_no_read, probe_no_read, probe_eof, probe_connected,
                                       probe_closed};

static void probe_timeout(uv_timer_t *t)
{
    probe_finish(t->data, "connection timed out");
}

static void ready(http_conn_t *hc)
{
    worker_t *w = hc->w;
    if (w->shutdown_mode != SHUTDOWN_NONE) {
        respond_text(hc, 503, "not ready: shutting down\n");
        return;
    }
    const config_t *cfg = worker_config(w);
    ready_probe_t *p = calloc(1, sizeof *p);
    if (!p) {
        respond_text(hc, 500, "out of memory\n");
        return;
    }
    p->conn = hc;
    hc->probe = p;
    stream_init(&p->st, &probe_ops, p);
    uv_timer_init(&w->loop, &p->timer);
    p->timer.data = p;
    p->open_handles = 2;
    int rc = stream_connect(&p->st, &w->loop, cfg->backend_host, cfg->backend_port);
    if (rc) {
        probe_finish(p, uv_strerror(rc));
        return;
    }
    uv_timer_start(&p->timer, probe_timeout, READY_TIMEOUT_MS, 0);
}

/* ---- requests ---- */

static void route(http_conn_t *hc)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (hc->url_too_long) {
        respond_text(hc, 414, "request target too long\n");
        return;
    }
    if (http_parser_parse_url(hc->url, hc->url_len, 0, &u) != 0 ||
        !(u.field_set & (1 << UF_PATH))) {
        respond_text(hc, 400, "bad request target\n");
        return;
    }
    const char *path = hc->url + u.field_data[UF_PATH].off;
    size_t plen = u.field_data[UF_PATH].len;
#define IS(p) (plen == sizeof(p) - 1 && memcmp(path, p, plen) == 0)
    bool known = IS("/health") || IS("/ready") || IS("/metrics");
    if (!known) {
        respond_text(hc, 404, "not found: try /health, /ready or /metrics\n");
        return;
    }
    if (hc->parser.method != HTTP_GET && hc->parser.method != HTTP_HEAD) {
        respond_text(hc, 405, "only GET and HEAD\n");
        return;
    }
    if (IS("/health")) {
        respond_text(hc, 200, "ok\n");
    } else if (IS("/ready")) {
        ready(hc);
    } else {
        buf_t body = {0};
        if (metrics_render(&body))
            respond(hc, 200, "text/plain; version=0.0.4; charset=utf-8", buf_head(&body),
                    buf_avail(&body));
        else
            respond_text(hc, 500, "out of memory\n");
        buf_free(&body);
    }
#undef IS
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    http_conn_t *hc = p->data;
    if (hc->url_len + len >= sizeof hc->url) {
        hc->url_too_long = true;
        return 0;
    }
    memcpy(hc->url + hc->url_len, at, len);
    hc->url_len += len;
    hc->url[hc->url_len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_conn_t *hc = p->data;
    hc->complete = true;
    http_parser_pause(p, 1); /* one request per connection: ignore what follows */
    return 0;
}

static http_parser_settings settings;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    (void)suggested;
    static _Thread_local char slab[4096];
    *b = uv_buf_init(slab, sizeof slab);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    http_conn_t *hc = s->data;
    if (nread < 0) {
        conn_close(hc);
        return;
    }
    if (nread == 0 || hc->answered || hc->complete)
        return;
    hc->received += (size_t)nread;
    size_t n = http_parser_execute(&hc->parser, &settings, b->base, (size_t)nread);
    enum http_errno e = HTTP_PARSER_ERRNO(&hc->parser);
    if (hc->complete) {
        route(hc);
        return;
    }
    if (e == HPE_HEADER_OVERFLOW || hc->received > HTTP_MAX_REQUEST) {
        respond_text(hc, 431, "request too large\n");
        return;
    }
    if (e != HPE_OK || n != (size_t)nread) {
        char text[160];
        snprintf(text, sizeof text, "malformed request: %s\n", http_errno_description(e));
        respond_text(hc, 400, text);
    }
}

static void on_timeout(uv_timer_t *t)
{
    http_conn_t *hc = t->data;
    if (hc->probe)
        return; /* the probe answers within its own timeout */
    if (hc->answered) {
        conn_close(hc); /* a peer that does not read its answer */
        return;
    }
    respond_text(hc, 408, "request timeout\n");
}

static void on_connection(uv_stream_t *listener, int status)
{
    worker_t *w = listener->data;
    if (status < 0)
        return;
    http_conn_t *hc = calloc(1, sizeof *hc);
    if (!hc)
        return;
    hc->w = w;
    uv_tcp_init(&w->loop, &hc->tcp);
    uv_timer_init(&w->loop, &hc->timer);
    hc->tcp.data = hc;
    hc->timer.data = hc;
    hc->open_handles = 2;
    list_append(&w->http_conns, &hc->node);
    if (uv_accept(listener, (uv_stream_t *)&hc->tcp) != 0) {
        conn_close(hc);
        return;
    }
    http_parser_init(&hc->parser, HTTP_REQUEST);
    hc->parser.data = hc;
    uv_timer_start(&hc->timer, on_timeout, HTTP_TIMEOUT_MS, 0);
    uv_read_start((uv_stream_t *)&hc->tcp, on_alloc, on_read);
}

/* ---- the listener ---- */

int http_listen(worker_t *w, const config_t *cfg, char *err, size_t errcap)
{
    http_parser_settings_init(&settings);
    settings.on_url = on_url;
    settings.on_message_complete = on_message_complete;
    if (!cfg->http_host)
        return 0;
    return worker_listen(w, &w->http_listener, &w->http_listening, "http_listen", cfg->http_host,
                         cfg->http_port, on_connection, err, errcap);
}

void http_close(worker_t *w)
{
    if (w->http_listening) {
        w->http_listening = false;
        uv_close((uv_handle_t *)&w->http_listener, NULL);
    }
    list_node_t *n, *tmp;
    list_for_each_safe(n, tmp, &w->http_conns)
    {
        http_conn_t *hc = list_entry(n, http_conn_t, node);
        if (hc->probe) {
            ready_probe_t *p = hc->probe;
            p->conn = NULL;
            hc->probe = NULL;
            probe_finish(p, NULL);
        }
        conn_close(hc);
    }
}
