/* SPDX-License-Identifier: MIT */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "cowd.pb-c.h"

/* An HTTP client that has not finished its request by then is dropped. */
#define METRICS_HTTP_TIMEOUT_S 10
/* A scrape's request is a line and a few headers; anything bigger is not one. */
#define METRICS_MAX_HEADERS 8192

/* Upper bounds of the latency buckets, in nanoseconds, and as Prometheus prints them. */
static const uint64_t bucket_ns[COW_METRICS_BUCKETS] = {
        10000,    25000,    50000,     100000,    250000,    500000,    1000000,   2500000,
        5000000,  10000000, 25000000,  50000000,  100000000, 250000000, 1000000000,
};
static const char *const bucket_le[COW_METRICS_BUCKETS] = {
        "1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025",
        "0.005", "0.01",    "0.025", "0.05",   "0.1",     "0.25",   "1",
};

void cow_request_metrics_record(struct cow_request_metrics *m, unsigned op_case, unsigned code,
                                uint64_t ns)
{
        unsigned b = 0;

        if (op_case >= COW_METRICS_OPS)
                op_case = 0;
        if (code >= COW_METRICS_CODES)
                code = COWD__V1__CODE__UNKNOWN;
        m->by_op_code[op_case][code]++;
        /* Counts are kept per bucket and made cumulative when rendered. */
        while (b < COW_METRICS_BUCKETS && ns > bucket_ns[b])
                b++;
        if (b < COW_METRICS_BUCKETS)
                m->latency_buckets[b]++;
        m->latency_count++;
        m->latency_sum_ns += ns;
}

bool cow_metrics_address_is_loopback(const char *address)
{
        struct in_addr a4;
        struct in6_addr a6;

        if (inet_pton(AF_INET, address, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127;
        if (inet_pton(AF_INET6, address, &a6) == 1)
                return IN6_IS_ADDR_LOOPBACK(&a6);
        return false;
}

/* ---- rendering ------------------------------------------------------------------------ */

struct render {
        struct evbuffer *out;
        int failed;
};

static void emit(struct render *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(struct render *rd, const char *fmt, ...)
{
        va_list ap;

        if (rd->failed)
                return;
        va_start(ap, fmt);
        if (evbuffer_add_vprintf(rd->out, fmt, ap) < 0)
                rd->failed = -ENOMEM;
        va_end(ap);
}

static void head(struct render *rd, const char *name, const char *type, const char *help)
{
        emit(rd, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(struct render *rd, const char *name, const char *type, const char *help,
                uint64_t v)
{
        head(rd, name, type, help);
        emit(rd, "%s %llu\n", name, (unsigned long long)v);
}

/* The protocol's name of a Request operation ("read"), or NULL when it has none. */
static const char *op_name(unsigned op_case)
{
        const ProtobufCFieldDescriptor *f =
                protobuf_c_message_descriptor_get_field(&cowd__v1__request__descriptor,
                                                        (int)op_case);
        return f ? f->name : NULL;
}

/* The protocol's name of a status code ("NOT_FOUND"). */
static const char *code_name(unsigned code)
{
        const ProtobufCEnumValue *v =
                protobuf_c_enum_descriptor_get_value(&cowd__v1__code__descriptor, (int)code);
        return v ? v->name : "UNKNOWN";
}

static void render_requests(struct render *rd, const struct cow_request_metrics *m)
{
        uint64_t cumulative = 0;

        head(rd, "cowd_requests_total", "counter",
             "Requests answered, by operation and status code.");
        for (unsigned op = 0; op < COW_METRICS_OPS; op++) {
                const char *name = op == 0 ? "unknown" : op_name(op);
                for (unsigned c = 0; c < COW_METRICS_CODES; c++) {
                        if (!m->by_op_code[op][c] || !name)
                                continue;
                        emit(rd, "cowd_requests_total{op=\"%s\",code=\"%s\"} %llu\n", name,
                             code_name(c), (unsigned long long)m->by_op_code[op][c]);
                }
        }

        head(rd, "cowd_request_duration_seconds", "histogram",
             "Time from a request's frame read to its reply queued.");
        for (unsigned b = 0; b < COW_METRICS_BUCKETS; b++) {
                cumulative += m->latency_buckets[b];
                emit(rd, "cowd_request_duration_seconds_bucket{le=\"%s\"} %llu\n", bucket_le[b],
                     (unsigned long long)cumulative);
        }
        emit(rd, "cowd_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
             (unsigned long long)m->latency_count);
        emit(rd, "cowd_request_duration_seconds_sum %.9f\n", (double)m->latency_sum_ns / 1e9);
        emit(rd, "cowd_request_duration_seconds_count %llu\n",
             (unsigned long long)m->latency_count);
}

int cow_metrics_render(const struct cow_metrics_sources *src, struct evbuffer *out)
{
        struct render rd = { .out = out };
        const struct cow_counters *c = src->counters;
        struct cow_sys_stats st;

        cow_engine_sys_stats(src->engine, &st);

        render_requests(&rd, src->requests);

        head(&rd, "cowd_faults_total", "counter",
             "Page faults the engine handled, by what they did.");
        emit(&rd, "cowd_faults_total{kind=\"cow_copy\"} %llu\n", (unsigned long long)st.cow_copies);
        emit(&rd, "cowd_faults_total{kind=\"cow_reuse\"} %llu\n", (unsigned long long)st.cow_reuses);
        emit(&rd, "cowd_faults_total{kind=\"zero_fill\"} %llu\n", (unsigned long long)st.zero_fills);
        emit(&rd, "cowd_faults_total{kind=\"zero_map\"} %llu\n", (unsigned long long)st.zero_maps);
        emit(&rd, "cowd_faults_total{kind=\"segv\"} %llu\n", (unsigned long long)st.segv_faults);
        emit(&rd, "cowd_faults_total{kind=\"bus\"} %llu\n", (unsigned long long)st.bus_faults);
        one(&rd, "cowd_cow_copies_total", "counter",
            "Copy-on-write faults that copied a shared frame.", st.cow_copies);
        one(&rd, "cowd_cow_reuses_total", "counter",
            "Copy-on-write faults that took over a frame no one else shared.", st.cow_reuses);
        one(&rd, "cowd_tlb_hits_total", "counter", "TLB hits, all processes.", st.tlb_hits);
        one(&rd, "cowd_tlb_misses_total", "counter", "TLB misses, all processes.",
            st.tlb_misses);
        one(&rd, "cowd_processes_created_total", "counter", "Processes spawned or forked.",
            st.procs_created);

        head(&rd, "cowd_limit_rejections_total", "counter",
             "Requests or connections refused at a configured limit, by limit.");
        emit(&rd, "cowd_limit_rejections_total{limit=\"max_connections\"} %llu\n",
             (unsigned long long)c->rejected_connections);
        emit(&rd, "cowd_limit_rejections_total{limit=\"max_processes\"} %llu\n",
             (unsigned long long)c->proc_limit_rejections);
        emit(&rd, "cowd_limit_rejections_total{limit=\"engine\"} %llu\n",
             (unsigned long long)c->engine_limit_rejections);
        emit(&rd, "cowd_limit_rejections_total{limit=\"request_size\"} %llu\n",
             (unsigned long long)c->oversize_requests);
        emit(&rd, "cowd_limit_rejections_total{limit=\"max_frame_bytes\"} %llu\n",
             (unsigned long long)c->oversize_frames);
        one(&rd, "cowd_connections_accepted_total", "counter", "Client connections accepted.",
            c->connections_total);
        one(&rd, "cowd_protocol_errors_total", "counter", "Frames that did not decode.",
            c->protocol_errors);
        one(&rd, "cowd_auth_failures_total", "counter",
            "TCP clients refused for a missing or wrong token.", c->auth_failures);
        one(&rd, "cowd_permission_denials_total", "counter",
            "Requests on another user's process or files.", c->permission_denials);

        one(&rd, "cowd_frames_used", "gauge", "Frames of simulated memory in use.",
            st.frames_used);
        one(&rd, "cowd_frames_total", "gauge", "Frames of simulated memory.", st.frames_total);
        one(&rd, "cowd_memory_used_bytes", "gauge", "Simulated memory in use, in bytes.",
            st.frames_used * st.page_size);
        one(&rd, "cowd_page_table_bytes", "gauge", "Page-table memory allocated.", st.pt_bytes);
        one(&rd, "cowd_processes", "gauge", "Live simulated processes.", st.procs);
        one(&rd, "cowd_file_pages", "gauge", "Frames in the page cache of mapped files.",
            st.file_pages);
        one(&rd, "cowd_dirty_pages", "gauge", "Page-cache frames not yet written back.",
            st.dirty_pages);
        one(&rd, "cowd_writebacks_total", "counter", "Pages written back to their files.",
            st.writebacks);
        one(&rd, "cowd_file_reads_total", "counter", "Pages read from files.", st.file_reads);
        one(&rd, "cowd_file_errors_total", "counter",
            "File reads, write-backs or syncs that failed.", st.file_errors);
        one(&rd, "cowd_connections", "gauge", "Client connections open now.", c->connections);
        if (src->http) {
                one(&rd, "cowd_metrics_connections", "gauge",
                    "Connections to this metrics listener open now.", src->http->connections);
                one(&rd, "cowd_metrics_accept_pauses_total", "counter",
                    "Times the metrics listener reached its connection cap and stopped accepting.",
                    src->http->accept_pauses);
        }
        return rd.failed;
}

/* ---- serving ----------------------------------------------------------------------------
 *
 * A scrape is one GET of /metrics. It is served here on bufferevents rather than
 * by evhttp, because evhttp in libevent 2.1 cannot bound its connections: this
 * listener accepts at most COW_METRICS_MAX_CONNECTIONS and stops accepting at
 * the cap (the rest wait in the kernel's backlog, costing the daemon nothing),
 * and answers every request with the connection closed after the reply, as
 * HTTP/1.1 allows. A request is its head alone (a body is never read); its
 * head is at most METRICS_MAX_HEADERS bytes, whole within
 * METRICS_HTTP_TIMEOUT_S, or the connection is dropped.
 */

struct metrics_conn {
        cow_metrics_server *m;
        struct bufferevent *bev;
        LIST_ENTRY(metrics_conn) link;
};

struct cow_metrics_server {
        struct evconnlistener *listener;
        LIST_HEAD(, metrics_conn) conns; /* open connections, to free with the server */
        struct cow_metrics_http_stats stats;
        struct cow_metrics_sources src;
        const cow_log *log;
};

static void conn_free(struct metrics_conn *c)
{
        cow_metrics_server *m = c->m;

        LIST_REMOVE(c, link);
        bufferevent_free(c->bev);
        free(c);
        if (m->stats.connections-- == COW_METRICS_MAX_CONNECTIONS)
                evconnlistener_enable(m->listener);
}

/* The reply is out: close. */
static void conn_on_written(struct bufferevent *bev, void *arg)
{
        (void)bev;
        conn_free(arg);
}

static void conn_on_event(struct bufferevent *bev, short what, void *arg)
{
        (void)bev;
        (void)what; /* end of file, an error or the timeout: each ends the connection */
        conn_free(arg);
}

/* Queues the reply and closes once it is written. body NULL: a status line and reason alone. */
static void conn_reply(struct metrics_conn *c, int status, const char *reason,
                       struct evbuffer *body, bool head_only)
{
        struct evbuffer *out = bufferevent_get_output(c->bev);
        size_t len = body ? evbuffer_get_length(body) : strlen(reason) + 1;

        bufferevent_disable(c->bev, EV_READ);
        evbuffer_add_printf(out,
                            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                            "%sConnection: close\r\n\r\n",
                            status, reason,
                            body ? "text/plain; version=0.0.4; charset=utf-8" :
                                   "text/plain; charset=utf-8",
                            len, status == 405 ? "Allow: GET, HEAD\r\n" : "");
        if (!head_only) {
                if (body)
                        evbuffer_add_buffer(out, body);
                else
                        evbuffer_add_printf(out, "%s\n", reason);
        }
        bufferevent_setcb(c->bev, NULL, conn_on_written, conn_on_event, c);
}

/* "METHOD /path[?query] HTTP/1.x": 0 with method and path split out in line, or -1. */
static int parse_request_line(char *line, char **method, char **path)
{
        char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;

        if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
                return -1;
        *sp1 = *sp2 = '\0';
        *method = line;
        *path = sp1 + 1;
        (*path)[strcspn(*path, "?")] = '\0';
        return 0;
}

static void conn_on_read(struct bufferevent *bev, void *arg)
{
        struct metrics_conn *c = arg;
        struct evbuffer *in = bufferevent_get_input(bev);
        struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
        char *line, *method, *path;

        if (end.pos < 0) {
                if (evbuffer_get_length(in) > METRICS_MAX_HEADERS)
                        conn_reply(c, 431, "Request Header Fields Too Large", NULL, false);
                return; /* the head is not whole yet */
        }
        line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF);
        if (!line || parse_request_line(line, &method, &path) < 0) {
                conn_reply(c, 400, "Bad Request", NULL, false);
                free(line);
                return;
        }
        bool get = strcmp(method, "GET") == 0, head = strcmp(method, "HEAD") == 0;
        if (strcmp(path, "/metrics") != 0) {
                conn_reply(c, 404, "Not Found (only /metrics is served here)", NULL, head);
        } else if (!get && !head) {
                conn_reply(c, 405, "Method Not Allowed (only GET)", NULL, false);
        } else {
                struct evbuffer *body = evbuffer_new();
                if (!body || cow_metrics_render(&c->m->src, body) < 0)
                        conn_reply(c, 500, "Internal Server Error (out of memory)", NULL, head);
                else
                        conn_reply(c, 200, "OK", body, head);
                if (body)
                        evbuffer_free(body);
        }
        free(line);
}

static void metrics_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                              int salen, void *arg)
{
        cow_metrics_server *m = arg;
        struct metrics_conn *c = calloc(1, sizeof(*c));
        const struct timeval timeout = { .tv_sec = METRICS_HTTP_TIMEOUT_S };

        (void)sa;
        (void)salen;
        if (c)
                c->bev = bufferevent_socket_new(evconnlistener_get_base(l), fd,
                                                BEV_OPT_CLOSE_ON_FREE);
        if (!c || !c->bev) {
                free(c);
                evutil_closesocket(fd);
                return;
        }
        c->m = m;
        LIST_INSERT_HEAD(&m->conns, c, link);
        bufferevent_setcb(c->bev, conn_on_read, NULL, conn_on_event, c);
        bufferevent_set_timeouts(c->bev, &timeout, &timeout);
        bufferevent_enable(c->bev, EV_READ);
        if (++m->stats.connections == COW_METRICS_MAX_CONNECTIONS) {
                evconnlistener_disable(l);
                m->stats.accept_pauses++;
        }
}

int cow_metrics_server_new(struct event_base *base, const char *address, uint16_t port,
                           const struct cow_metrics_sources *src, const cow_log *log,
                           cow_metrics_server **ret)
{
        struct sockaddr_storage ss;
        int sslen = sizeof(ss);
        char where[80];
        cow_metrics_server *m;

        if (!cow_metrics_address_is_loopback(address))
                return -EINVAL;
        snprintf(where, sizeof(where), strchr(address, ':') ? "[%s]:%u" : "%s:%u", address, port);
        if (evutil_parse_sockaddr_port(where, (struct sockaddr *)&ss, &sslen) < 0)
                return -EINVAL;
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        LIST_INIT(&m->conns);
        m->src = *src;
        m->src.http = &m->stats;
        m->log = log;
        m->listener = evconnlistener_new_bind(base, metrics_on_accept, m,
                                              LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
                                                      LEV_OPT_REUSEABLE,
                                              COW_METRICS_MAX_CONNECTIONS,
                                              (struct sockaddr *)&ss, sslen);
        if (!m->listener) {
                int r = errno ? -errno : -EADDRINUSE;
                log_error(log, "cannot serve metrics on %s: %s", where, strerror(-r));
                free(m);
                return r;
        }
        log_info(log, "serving metrics on http://%s/metrics", where);
        *ret = m;
        return 0;
}

void cow_metrics_server_free(cow_metrics_server *m)
{
        if (!m)
                return;
        struct metrics_conn *c;
        while ((c = LIST_FIRST(&m->conns))) {
                LIST_REMOVE(c, link);
                bufferevent_free(c->bev);
                free(c);
        }
        evconnlistener_free(m->listener);
        free(m);
}
