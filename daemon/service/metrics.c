/* SPDX-License-Identifier: MIT */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

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
        return rd.failed;
}

/* ---- serving ---------------------------------------------------------------------------- */

struct cow_metrics_server {
        struct evhttp *http;
        struct cow_metrics_sources src;
        const cow_log *log;
};

static void metrics_on_request(struct evhttp_request *req, void *arg)
{
        cow_metrics_server *m = arg;
        struct evbuffer *body;

        if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
            evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
                evhttp_send_error(req, 405, "only GET");
                return;
        }
        body = evbuffer_new();
        if (!body || cow_metrics_render(&m->src, body) < 0) {
                if (body)
                        evbuffer_free(body);
                evhttp_send_error(req, 500, "out of memory");
                return;
        }
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "text/plain; version=0.0.4; charset=utf-8");
        evhttp_send_reply(req, 200, "OK", body);
        evbuffer_free(body);
}

static void metrics_on_other(struct evhttp_request *req, void *arg)
{
        (void)arg;
        evhttp_send_error(req, 404, "only /metrics is served here");
}

int cow_metrics_server_new(struct event_base *base, const char *address, uint16_t port,
                           const struct cow_metrics_sources *src, const cow_log *log,
                           cow_metrics_server **ret)
{
        cow_metrics_server *m;

        if (!cow_metrics_address_is_loopback(address))
                return -EINVAL;
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->src = *src;
        m->log = log;
        m->http = evhttp_new(base);
        if (!m->http) {
                free(m);
                return -ENOMEM;
        }
        evhttp_set_timeout(m->http, METRICS_HTTP_TIMEOUT_S);
        evhttp_set_max_headers_size(m->http, METRICS_MAX_HEADERS);
        evhttp_set_max_body_size(m->http, 0);
        /* 405 comes from the handler, so that HEAD and others get a reason. */
        evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                                    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
        if (evhttp_set_cb(m->http, "/metrics", metrics_on_request, m) != 0) {
                cow_metrics_server_free(m);
                return -ENOMEM;
        }
        evhttp_set_gencb(m->http, metrics_on_other, m);
        if (!evhttp_bind_socket_with_handle(m->http, address, port)) {
                int r = errno ? -errno : -EADDRINUSE;
                log_error(log, "cannot serve metrics on %s port %u: %s", address, port,
                          strerror(-r));
                cow_metrics_server_free(m);
                return r;
        }
        log_info(log, "serving metrics on http://%s%s%s:%u/metrics", strchr(address, ':') ? "[" : "",
                 address, strchr(address, ':') ? "]" : "", port);
        *ret = m;
        return 0;
}

void cow_metrics_server_free(cow_metrics_server *m)
{
        if (!m)
                return;
        if (m->http)
                evhttp_free(m->http);
        free(m);
}
