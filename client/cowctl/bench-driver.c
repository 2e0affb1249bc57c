/* SPDX-License-Identifier: MIT */
/*
 * The event driver of `cowctl bench`: every connection is a bufferevent on
 * one libevent loop in one thread. A connection keeps up to `pipeline`
 * operations in flight; each operation is a chain of requests (the next
 * one sent when the previous is answered), so at most one request per
 * operation is outstanding and replies, which come back in request order,
 * are matched to operations through a FIFO.
 *
 * Under --rate each connection has a schedule: its k-th operation is meant
 * to start at t0 + k * interval. An operation is timed from that intended
 * start, not from when a free slot let it go, so a stall shows in the
 * latencies of everything it held up (no coordinated omission).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "bench.h"

struct bench_driver;

/* Bytes written per socket readiness. */
#define BENCH_MAX_SINGLE_IO (256u << 10)

/* Bytes read straight from the socket per read() while a reply is short (conn_read_more). */
#define BENCH_READ_CHUNK (64u << 10)

/* The fifo entry of a connection's hello, which belongs to no operation. */
#define HELLO_SLOT UINT32_MAX

struct bench_conn {
        struct bench_driver *d;
        struct bufferevent *bev;
        const struct bench_target *target;
        struct event *timer;          /* --rate: wakes the connection at its next start */
        struct bench_op_state *slots; /* pipeline entries */
        bool *busy;                   /* slots[i] holds an operation */
        unsigned *fifo;               /* slot of each request awaiting its reply, oldest first
                                       * (HELLO_SLOT for the hello); pipeline + 1 entries */
        unsigned fifo_head, fifo_len;
        unsigned inflight;            /* operations in flight */
        uint64_t next_id;
        uint64_t next_start_ns;       /* --rate: when the next operation is meant to start */
        uint64_t interval_ns;
        bool bulk;                    /* the last conn_read_more() found a lot: read in place */
        bool dead;
};

struct bench_driver {
        const struct bench_config *cfg;
        struct bench_results *res;
        struct event_base *base;
        struct bench_conn *conns;
        struct event *progress;
        struct event *deadline;
        struct bench_request scratch;
        uint8_t *read_scratch;              /* BENCH_READ_CHUNK bytes (conn_read_more) */
        uint64_t t_begin, t_measure, t_end; /* t_end: 0 until the run stops */
        uint64_t last_done_ns;              /* completion time of the last measured operation */
        uint64_t started_measured;          /* measured operations started */
        uint64_t inflight;                  /* operations in flight, all connections */
        uint64_t completed;                 /* every completion, for the progress line */
        uint64_t errors;                    /* every failed completion */
        uint64_t last_tick_ns, last_tick_completed;
        uint64_t rng;
        unsigned weight_sum;
        unsigned alive;
        bool stopping;
        bool progress_shown;
};

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_next(uint64_t *s)
{
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        return *s * UINT64_C(2685821657736338717);
}

/* The operation to start next: a weighted pick over --mix. */
static enum bench_op pick_op(struct bench_driver *d)
{
        unsigned x = (unsigned)(rng_next(&d->rng) >> 32) % d->weight_sum;

        for (int i = 0; i < BENCH_N_OPS; i++) {
                if (x < d->cfg->weights[i])
                        return (enum bench_op)i;
                x -= d->cfg->weights[i];
        }
        return BENCH_READ; /* not reached: the weights add up to weight_sum */
}

static void maybe_finish(struct bench_driver *d)
{
        if (d->stopping && d->inflight == 0)
                event_base_loopexit(d->base, NULL);
        if (d->alive == 0)
                event_base_loopexit(d->base, NULL);
}

static void stop_starting(struct bench_driver *d)
{
        if (d->stopping)
                return;
        d->stopping = true;
        d->t_end = now_ns();
        maybe_finish(d);
}

/* Counts what an operation's completion means. */
static void op_complete(struct bench_driver *d, const struct bench_op_state *st, uint64_t t)
{
        struct bench_results *res = d->res;

        d->completed++;
        if (st->code != 0)
                d->errors++;
        if (st->start_ns < d->t_measure) {
                res->warmup_ops++;
                return;
        }
        res->ops[st->op]++;
        histogram_record(res->latency[st->op], t > st->start_ns ? t - st->start_ns : 0);
        if (st->code != 0) {
                res->errors[st->op]++;
                res->errors_by_code[st->code < BENCH_N_CODES ? st->code : BENCH_CODE_WRONG]++;
        }
        if (t > d->last_done_ns)
                d->last_done_ns = t;
}

static void conn_kill(struct bench_conn *c);

/*
 * Writes the queued requests straight to the socket; the write event is
 * armed only for what the socket would not take, and conn_on_write disarms
 * it once the output is empty. Left armed, it cost two epoll_ctl calls and a
 * loop turn per request. A failure other than EAGAIN shows again on the
 * write event, which reports it.
 */
static void conn_flush(struct bench_conn *c)
{
        struct evbuffer *out = bufferevent_get_output(c->bev);

        if (evbuffer_get_length(out) == 0)
                return;
        /* A socket bufferevent freezes its output's front; its own write thaws it too. */
        evbuffer_unfreeze(out, 1);
        (void)evbuffer_write(out, bufferevent_getfd(c->bev));
        evbuffer_freeze(out, 1);
        if (evbuffer_get_length(out) > 0)
                bufferevent_enable(c->bev, EV_WRITE);
}

static void conn_on_write(struct bufferevent *bev, void *arg)
{
        (void)arg;
        /* Called once the output is empty (write low watermark 0). */
        bufferevent_disable(bev, EV_WRITE);
}

/*
 * Reads up to BENCH_READ_CHUNK bytes into the input while a reply is short:
 * libevent 2.1 reads at most 4096 bytes per readiness (EVBUFFER_MAX_READ), so
 * a 4 KiB reply took two loop turns, and a pipelined batch of them one each.
 * Pipelined replies, tens of KiB waiting, are read in place into a chunk
 * reserved in the input. Otherwise the bytes go through one scratch buffer
 * for all connections: a chunk reserved for the last 19 bytes of a reply
 * cost a 64 KiB allocation, and two brk() calls as glibc moved the heap's
 * end.
 * End of file and errors are left for libevent's own read to report.
 * Returns 1 if bytes were read, 0 if not, -ENOMEM if they could not be kept.
 */
static int conn_read_more(struct bench_conn *c)
{
        struct evbuffer *in = bufferevent_get_input(c->bev);
        ssize_t got;
        int r;

        /* A socket bufferevent freezes its input's end; its own read thaws it too. */
        evbuffer_unfreeze(in, 0);
        if (c->bulk) {
                struct evbuffer_iovec vec;

                r = -ENOMEM;
                got = 0;
                if (evbuffer_reserve_space(in, BENCH_READ_CHUNK, &vec, 1) == 1) {
                        r = 0;
                        got = read(bufferevent_getfd(c->bev), vec.iov_base, BENCH_READ_CHUNK);
                        vec.iov_len = got > 0 ? (size_t)got : 0;
                        if (got > 0 && evbuffer_commit_space(in, &vec, 1) < 0)
                                r = -ENOMEM; /* read but not kept: the stream is broken */
                }
        } else {
                got = read(bufferevent_getfd(c->bev), c->d->read_scratch, BENCH_READ_CHUNK);
                r = got > 0 ? evbuffer_add(in, c->d->read_scratch, (size_t)got) : 0;
        }
        evbuffer_freeze(in, 0);
        if (r < 0)
                return -ENOMEM;
        if (got <= 0)
                return 0;
        c->bulk = got >= BENCH_READ_CHUNK / 8;
        return 1;
}

/* Frames the request in d->scratch for slot, onto c's output. Returns 0 or a negative errno. */
static int conn_send(struct bench_conn *c, unsigned slot)
{
        struct bench_driver *d = c->d;
        struct evbuffer *out = bufferevent_get_output(c->bev);
        struct evbuffer_iovec vec;
        size_t size;
        long n;

        d->scratch.req.id = ++c->next_id;
        size = cowc_request_frame_size(&d->scratch.req);
        if (evbuffer_reserve_space(out, (ev_ssize_t)size, &vec, 1) < 1)
                return -ENOMEM;
        n = cowc_encode_request(&d->scratch.req, vec.iov_base, vec.iov_len, d->cfg->max_frame);
        if (n < 0)
                return (int)n;
        vec.iov_len = (size_t)n;
        if (evbuffer_commit_space(out, &vec, 1) < 0)
                return -ENOMEM;
        c->fifo[(c->fifo_head + c->fifo_len) % (d->cfg->pipeline + 1)] = slot;
        c->fifo_len++;
        d->res->requests++;
        if ((unsigned)d->scratch.req.op_case <= BENCH_MAX_OP_CASE)
                d->res->requests_by_op[d->scratch.req.op_case]++;
        return 0;
}

/*
 * Advances the operation in slot with reply (NULL to start it): sends its
 * next request or completes it. Returns false if c died.
 */
static bool conn_advance(struct bench_conn *c, unsigned slot, const Cowd__V1__Response *reply,
                         uint64_t t)
{
        struct bench_driver *d = c->d;
        struct bench_op_state *st = &c->slots[slot];

        if (bench_op_step(d->cfg, c->target, st, reply, &d->scratch) == 1) {
                if (conn_send(c, slot) < 0) {
                        conn_kill(c);
                        return false;
                }
                return true;
        }
        op_complete(d, st, t);
        c->busy[slot] = false;
        c->inflight--;
        d->inflight--;
        maybe_finish(d); /* the last operation in flight after the stop ends the run */
        return true;
}

/* Whether the run takes another operation now; stops it when the count is reached. */
static bool may_start(struct bench_driver *d, uint64_t t)
{
        if (d->stopping)
                return false;
        if (d->cfg->total_ops && t >= d->t_measure && d->started_measured >= d->cfg->total_ops) {
                stop_starting(d);
                return false;
        }
        return true;
}

/* Starts operations on c while slots are free (and, under --rate, their time has come). */
static void conn_start(struct bench_conn *c, uint64_t t)
{
        struct bench_driver *d = c->d;

        while (!c->dead && c->inflight < d->cfg->pipeline && may_start(d, t)) {
                uint64_t start = t;
                unsigned slot = 0;

                if (c->interval_ns) {
                        if (c->next_start_ns > t) {
                                uint64_t wait = c->next_start_ns - t;
                                struct timeval tv = { .tv_sec = (time_t)(wait / 1000000000u),
                                                      .tv_usec = (suseconds_t)(wait % 1000000000u / 1000) };
                                evtimer_add(c->timer, &tv);
                                return;
                        }
                        start = c->next_start_ns;
                        c->next_start_ns += c->interval_ns;
                }
                while (c->busy[slot])
                        slot++;
                c->busy[slot] = true;
                c->slots[slot] = (struct bench_op_state){
                        .op = pick_op(d),
                        .seq = rng_next(&d->rng) >> 16,
                        .start_ns = start,
                };
                c->inflight++;
                d->inflight++;
                if (start >= d->t_measure)
                        d->started_measured++;
                if (!conn_advance(c, slot, NULL, t))
                        return;
        }
}

/*
 * Starts operations while slots are free (and, under --rate, their time has
 * come), then sends every request queued on c in one write.
 */
static void conn_fill(struct bench_conn *c)
{
        conn_start(c, now_ns());
        if (!c->dead)
                conn_flush(c);
}

/* Every operation in flight on c fails with code; then c is gone. */
static void conn_kill(struct bench_conn *c)
{
        struct bench_driver *d = c->d;
        uint64_t t = now_ns();

        if (c->dead)
                return;
        c->dead = true;
        d->res->connections_lost++;
        for (unsigned i = 0; i < d->cfg->pipeline; i++) {
                if (!c->busy[i])
                        continue;
                if (c->slots[i].code == 0)
                        c->slots[i].code = BENCH_CODE_TRANSPORT;
                op_complete(d, &c->slots[i], t);
                c->busy[i] = false;
                d->inflight--;
        }
        c->inflight = 0;
        c->fifo_len = 0;
        if (c->timer)
                evtimer_del(c->timer);
        bufferevent_free(c->bev);
        c->bev = NULL;
        d->alive--;
        maybe_finish(d);
}

/* Matches one reply to the oldest request; returns false if c died. */
static bool conn_on_reply(struct bench_conn *c, const Cowd__V1__Response *reply, uint64_t t)
{
        struct bench_driver *d = c->d;
        unsigned slot;

        if (c->fifo_len == 0 || reply->id == 0) {
                /* A refusal of the whole connection (max_connections, say) carries id 0. */
                for (unsigned i = 0; i < d->cfg->pipeline; i++)
                        if (c->busy[i] && c->slots[i].code == 0 && reply->status)
                                c->slots[i].code = (int)reply->status->code;
                conn_kill(c);
                return false;
        }
        slot = c->fifo[c->fifo_head];
        if (reply->id != c->next_id - c->fifo_len + 1) {
                conn_kill(c);
                return false;
        }
        c->fifo_head = (c->fifo_head + 1) % (d->cfg->pipeline + 1);
        c->fifo_len--;
        if (slot == HELLO_SLOT) {
                /* A refused hello (a wrong token) fails what was queued behind it. */
                int code = reply->status ? (int)reply->status->code : 0;
                if (code == 0 && reply->result_case == COWD__V1__RESPONSE__RESULT_HELLO)
                        return true;
                for (unsigned i = 0; i < d->cfg->pipeline; i++)
                        if (c->busy[i] && c->slots[i].code == 0)
                                c->slots[i].code = code ? code : BENCH_CODE_WRONG;
                conn_kill(c);
                return false;
        }
        return conn_advance(c, slot, reply, t);
}

static void conn_on_read(struct bufferevent *bev, void *arg)
{
        struct bench_conn *c = arg;
        struct evbuffer *in = bufferevent_get_input(bev);
        uint64_t t = now_ns();

        for (;;) {
                size_t avail = evbuffer_get_length(in);
                const uint8_t *buf;
                struct cowc_response_view view = { .owned = NULL };
                uint32_t declared;
                long n;

                if (avail < 4) {
                        int r = avail > 0 ? conn_read_more(c) : 0;

                        if (r < 0) {
                                conn_kill(c);
                                return;
                        }
                        if (r > 0)
                                continue;
                        break;
                }
                buf = evbuffer_pullup(in, 4);
                declared = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
                           (uint32_t)buf[2] << 8 | buf[3];
                if (declared > c->d->cfg->max_frame || declared == 0) {
                        conn_kill(c);
                        return;
                }
                if (avail < 4 + (size_t)declared) {
                        int r = conn_read_more(c);

                        if (r < 0) {
                                conn_kill(c);
                                return;
                        }
                        if (r > 0)
                                continue;
                        break;
                }
                buf = evbuffer_pullup(in, (ev_ssize_t)(4 + declared));
                if (!buf) {
                        conn_kill(c);
                        return;
                }
                /*
                 * Read and write replies are decoded in place, without
                 * allocations; a read's data stays in the input until the
                 * reply has been handled.
                 */
                n = cowc_decode_response_view(buf, 4 + declared, c->d->cfg->max_frame, &view);
                if (n <= 0) {
                        conn_kill(c);
                        return;
                }
                bool alive = conn_on_reply(c, view.reply, t);
                cowc_response_view_release(&view);
                if (!alive)
                        return;
                evbuffer_drain(in, (size_t)n);
        }
        conn_fill(c);
}

static void conn_on_event(struct bufferevent *bev, short events, void *arg)
{
        (void)bev;
        if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
                conn_kill(arg);
}

static void conn_on_timer(evutil_socket_t fd, short events, void *arg)
{
        (void)fd;
        (void)events;
        conn_fill(arg);
}

static void on_deadline(evutil_socket_t fd, short events, void *arg)
{
        (void)fd;
        (void)events;
        stop_starting(arg);
}

/* The live line: elapsed time, ops/s over the last tick, errors so far. */
static void on_progress(evutil_socket_t fd, short events, void *arg)
{
        struct bench_driver *d = arg;
        uint64_t t = now_ns();
        uint64_t dt = t - d->last_tick_ns;
        double rate = dt ? (double)(d->completed - d->last_tick_completed) * 1e9 / (double)dt : 0;

        (void)fd;
        (void)events;
        fprintf(stderr, "\r\033[K%7.1fs %12.0f ops/s %10llu errors%s",
                (double)(t - d->t_begin) / 1e9, rate, (unsigned long long)d->errors,
                t < d->t_measure ? "  (warmup)" : d->stopping ? "  (draining)" : "");
        d->progress_shown = true;
        d->last_tick_ns = t;
        d->last_tick_completed = d->completed;
}

/* Opens connection i: a blocking connect (so a full backlog waits), then non-blocking I/O. */
static int conn_open(struct bench_driver *d, struct bench_conn *c, char *why, size_t whylen)
{
        unsigned p = d->cfg->pipeline;
        int fd = -1;
        int r;

        c->d = d;
        c->slots = calloc(p, sizeof(*c->slots));
        c->busy = calloc(p, sizeof(*c->busy));
        c->fifo = calloc(p + 1, sizeof(*c->fifo));
        if (!c->slots || !c->busy || !c->fifo)
                return -ENOMEM;
        r = cowc_connect_fd(d->cfg->endpoint, &fd);
        if (r < 0) {
                snprintf(why, whylen, "connection %u of %u: %s", (unsigned)(c - d->conns) + 1,
                         d->cfg->conns, strerror(-r));
                return r;
        }
        if (evutil_make_socket_nonblocking(fd) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        c->bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (!c->bev) {
                close(fd);
                return -ENOMEM;
        }
        bufferevent_setcb(c->bev, conn_on_read, conn_on_write, conn_on_event, c);
        /* libevent writes at most 16 KiB per readiness by default: four 4 KiB requests. */
        bufferevent_set_max_single_write(c->bev, BENCH_MAX_SINGLE_IO);
        /* EV_WRITE only while the socket holds back requests (conn_flush). */
        bufferevent_disable(c->bev, EV_WRITE);
        if (bufferevent_enable(c->bev, EV_READ) < 0)
                return -ENOMEM;
        /*
         * Every connection says hello first (a TCP daemon refuses anything
         * else without a token); operations are queued behind it at once.
         */
        bench_hello_request(&d->scratch, d->cfg->token);
        r = conn_send(c, HELLO_SLOT);
        if (r < 0)
                return r;
        if (d->cfg->rate > 0) {
                c->timer = evtimer_new(d->base, conn_on_timer, c);
                if (!c->timer)
                        return -ENOMEM;
                c->interval_ns = (uint64_t)((double)d->cfg->conns * 1e9 / d->cfg->rate);
                if (c->interval_ns == 0)
                        c->interval_ns = 1;
        }
        d->alive++;
        return 0;
}

static void conn_release(struct bench_conn *c)
{
        if (c->timer)
                event_free(c->timer);
        if (c->bev)
                bufferevent_free(c->bev);
        free(c->slots);
        free(c->busy);
        free(c->fifo);
}

int bench_run(const struct bench_config *cfg, const struct bench_target *targets,
              struct bench_results *res, char *why, size_t whylen)
{
        struct bench_driver d = { .cfg = cfg, .res = res, .rng = 0x2545F4914F6CDD1Du };
        int r = 0;

        for (int i = 0; i < BENCH_N_OPS; i++)
                d.weight_sum += cfg->weights[i];
        if (d.weight_sum == 0 || cfg->pipeline == 0 || cfg->conns == 0)
                return -EINVAL;
        {
                /*
                 * Precise timers (timerfd under epoll) under --rate only: it
                 * schedules starts well below a millisecond apart, and a late
                 * timer would count as latency. Without --rate they would
                 * only add a timerfd_settime() to every loop turn.
                 */
                struct event_config *ec = event_config_new();
                if (ec) {
                        if (cfg->rate > 0)
                                event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
                        d.base = event_base_new_with_config(ec);
                        event_config_free(ec);
                }
        }
        d.conns = calloc(cfg->conns, sizeof(*d.conns));
        d.read_scratch = malloc(BENCH_READ_CHUNK);
        if (!d.base || !d.conns || !d.read_scratch) {
                r = -ENOMEM;
                goto out;
        }
        for (unsigned i = 0; i < cfg->conns; i++) {
                d.conns[i].target = &targets[cfg->shared ? 0 : i];
                r = conn_open(&d, &d.conns[i], why, whylen);
                if (r < 0)
                        goto out;
        }

        d.t_begin = now_ns();
        d.t_measure = d.t_begin + (uint64_t)(cfg->warmup_s * 1e9);
        d.last_tick_ns = d.t_begin;
        if (cfg->total_ops == 0) {
                double total = cfg->warmup_s + cfg->duration_s;
                struct timeval tv = { .tv_sec = (time_t)total,
                                      .tv_usec = (suseconds_t)((total - floor(total)) * 1e6) };
                d.deadline = evtimer_new(d.base, on_deadline, &d);
                if (!d.deadline || evtimer_add(d.deadline, &tv) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        if (cfg->progress) {
                struct timeval tv = { .tv_sec = 1 };
                d.progress = event_new(d.base, -1, EV_PERSIST, on_progress, &d);
                if (!d.progress || evtimer_add(d.progress, &tv) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        for (unsigned i = 0; i < cfg->conns; i++) {
                struct bench_conn *c = &d.conns[i];
                /* Spread the schedules so that connections do not all start at once. */
                c->next_start_ns = d.t_begin + (c->interval_ns / cfg->conns) * i;
                conn_fill(c);
        }
        if (d.alive > 0 && !(d.stopping && d.inflight == 0))
                event_base_dispatch(d.base);
        if (!d.t_end)
                d.t_end = now_ns();
        {
                /* The measured phase ends when its last operation was answered. */
                uint64_t end = d.last_done_ns > d.t_end ? d.last_done_ns : d.t_end;
                res->elapsed_s = end > d.t_measure ? (double)(end - d.t_measure) / 1e9 : 0.0;
        }
out:
        if (d.progress_shown)
                fprintf(stderr, "\r\033[K");
        if (d.progress)
                event_free(d.progress);
        if (d.deadline)
                event_free(d.deadline);
        for (unsigned i = 0; d.conns && i < cfg->conns; i++)
                conn_release(&d.conns[i]);
        free(d.conns);
        free(d.read_scratch);
        if (d.base)
                event_base_free(d.base);
        return r;
}
