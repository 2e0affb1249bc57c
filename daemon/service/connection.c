/* SPDX-License-Identifier: MIT */
#include "connection.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "codec.h"
#include "frame.h"
#include "reply.h"

struct cow_connection {
        struct cow_connection_env env;
        struct bufferevent *bev;
        uint32_t uid;
        char peer[96];
        bool paused;  /* reading stopped until the output drains (backpressure) */
        bool closing; /* no more requests; free once the output is empty */
        bool authenticated; /* false until a TCP client's hello shows a valid token */
        /*
         * A reply that comes later (reply.h): until it is sent, no further
         * request is read or answered, so replies stay in request order.
         */
        cow_reply *deferred;
        uint64_t deferred_t0;    /* for /metrics: when its request came */
        unsigned deferred_op;
        bool eof_while_deferred; /* the client finished sending meanwhile */
        bool in_input; /* inside conn_process_input(), which flushes the output when done */
        bool bulk;     /* the last conn_read_more() found a lot waiting: read in place */
};

/* Bytes written to a socket per readiness (libevent's default is 16 KiB). */
#define CONN_MAX_SINGLE_WRITE (256u << 10)

/* Bytes read straight from the socket in one input pass at most (conn_read_more()). */
#define CONN_MAX_READ_PER_PASS (256u << 10)

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Frees the connection; its socket closes with the bufferevent. */
static void conn_destroy(cow_connection *c)
{
        if (c->deferred)
                cow_reply_abandon(c->deferred);
        if (c->env.on_close)
                c->env.on_close(c, c->env.userdata);
        if (c->bev)
                bufferevent_free(c->bev);
        free(c);
}

/*
 * Writes what the output holds straight to the socket, and leaves the write
 * event to libevent only for what the socket would not take.
 *
 * The write event is off while the output is empty (conn_on_write turns it
 * off again once it has drained): with it on, every reply cost an
 * epoll_ctl to arm it, a loop turn to learn the socket was writable, and
 * another epoll_ctl to disarm it. Replies to everything one read brought
 * in go out in one writev() this way.
 */
static void conn_flush(cow_connection *c)
{
        struct evbuffer *out = bufferevent_get_output(c->bev);

        if (evbuffer_get_length(out) == 0)
                return;
        /*
         * A closing connection is freed by its write callback, which libevent
         * calls only after it wrote something itself: leave those bytes to it.
         * A failure other than EAGAIN shows again on the write event, which
         * reports it.
         */
        if (!c->closing) {
                /* A socket bufferevent freezes its output's front; its own write thaws it too. */
                evbuffer_unfreeze(out, 1);
                (void)evbuffer_write(out, bufferevent_getfd(c->bev));
                evbuffer_freeze(out, 1);
        }
        if (evbuffer_get_length(out) > 0)
                bufferevent_enable(c->bev, EV_WRITE);
}

/*
 * Reads up to COW_CONNECTION_READ_CHUNK bytes from the socket into the input,
 * charged to *budget, the bytes one input pass may still read this way.
 * libevent 2.1 reads at most 4096 bytes per readiness whatever
 * max_single_read says (EVBUFFER_MAX_READ), so a 4 KiB write request took two
 * trips through the loop, and a pipelined batch of them one trip each.
 * A client that pipelines leaves tens of KiB waiting: those are read in place,
 * into a chunk reserved in the input. Otherwise the bytes go through the
 * loop's scratch buffer: a chunk reserved for the 19 bytes that end a 4 KiB
 * write was 64 KiB allocated and freed each time, and glibc moved the heap's
 * end twice for it (two brk() calls per request at 10,000 connections).
 * Called only while a frame is incomplete, so the input stays under one
 * largest frame plus a chunk. End of file and errors are left for libevent's
 * own read to find and report: the socket stays readable. Returns 1 if
 * bytes were read, 0 if not, -ENOMEM if they could not be kept (the stream
 * is then broken).
 */
static int conn_read_more(cow_connection *c, size_t *budget)
{
        struct evbuffer *in = bufferevent_get_input(c->bev);
        ssize_t got;
        int r;

        if (*budget < COW_CONNECTION_READ_CHUNK)
                return 0;
        *budget -= COW_CONNECTION_READ_CHUNK;
        /* A socket bufferevent freezes its input's end; its own read thaws it too. */
        evbuffer_unfreeze(in, 0);
        if (c->bulk) {
                struct evbuffer_iovec vec;

                r = -ENOMEM;
                got = 0;
                if (evbuffer_reserve_space(in, COW_CONNECTION_READ_CHUNK, &vec, 1) == 1) {
                        r = 0;
                        got = read(bufferevent_getfd(c->bev), vec.iov_base,
                                   COW_CONNECTION_READ_CHUNK);
                        vec.iov_len = got > 0 ? (size_t)got : 0;
                        if (got > 0 && evbuffer_commit_space(in, &vec, 1) < 0)
                                r = -ENOMEM; /* read but not kept: the stream is broken */
                }
        } else {
                got = read(bufferevent_getfd(c->bev), c->env.read_scratch,
                           COW_CONNECTION_READ_CHUNK);
                r = got > 0 ? evbuffer_add(in, c->env.read_scratch, (size_t)got) : 0;
        }
        evbuffer_freeze(in, 0);
        if (r < 0)
                return -ENOMEM;
        if (got <= 0)
                return 0;
        c->bulk = got >= COW_CONNECTION_READ_CHUNK / 8;
        return 1;
}

/*
 * Stops taking requests and arranges for the connection to close once its
 * output has been written. Returns true if c is already gone (nothing was
 * left to write), in which case the caller must not touch it again.
 */
static bool conn_begin_close(cow_connection *c)
{
        struct evbuffer *in = bufferevent_get_input(c->bev);

        conn_flush(c);
        c->closing = true;
        bufferevent_disable(c->bev, EV_READ);
        evbuffer_drain(in, evbuffer_get_length(in));
        /* A reply still to come is sent before the close (conn_on_reply_ready). */
        if (!c->deferred && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
                conn_destroy(c);
                return true;
        }
        /* The write callback now fires only once everything is out (conn_flush armed it). */
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        return false;
}

/*
 * Room reserved on the output for the reply to a read, so that the engine
 * copies the data once, straight to where it is sent from, rather than into
 * the reply and then again into the output (conn_lend_read(), conn_send()).
 */
struct conn_lent {
        struct evbuffer_iovec vec; /* the reservation: frame header, prefix, data */
        size_t prefix;             /* the reply's encoded bytes before the data */
        uint8_t *data;             /* where the data goes; NULL when nothing is reserved */
        size_t len;
};

/*
 * Reserves room on the output for the reply to req when it is a read whose
 * reply fits a frame. Anything else (a refused length, say) is left for the
 * dispatcher to answer the ordinary way.
 */
static void conn_lend_read(cow_connection *c, const Cowd__V1__Request *req,
                           struct conn_lent *lent)
{
        const struct cow_service_limits *lim = c->env.limits;
        uint64_t len;
        size_t prefix;

        if (req->op_case != COWD__V1__REQUEST__OP_READ || !req->read)
                return;
        len = req->read->length;
        if (len == 0 || len > lim->max_read_bytes || len > lim->max_frame_bytes)
                return;
        prefix = cow_codec_read_prefix_size(req->id, (size_t)len);
        if (prefix + len > lim->max_frame_bytes)
                return;
        if (evbuffer_reserve_space(bufferevent_get_output(c->bev),
                                   (ev_ssize_t)(COW_FRAME_HEADER + prefix + len), &lent->vec, 1) < 1)
                return;
        lent->prefix = prefix;
        lent->len = (size_t)len;
        lent->data = (uint8_t *)lent->vec.iov_base + COW_FRAME_HEADER + prefix;
}

/*
 * Frames reply onto the output. A reply larger than a frame may be (a long
 * process list with a small max_frame_bytes, say) is swapped for an error
 * with the same id, so that the client never sees a frame it must refuse.
 * A read reply whose data the engine put in lent (non-NULL: see
 * conn_lend_read()) is completed in place.
 * Every reply goes out through here. Inside an input pass the bytes wait for
 * the pass's single flush; a reply made anywhere else is flushed at once.
 * Returns 0 or -ENOMEM.
 */
static int conn_send(cow_connection *c, cow_reply *reply, struct conn_lent *lent)
{
        struct evbuffer *out = bufferevent_get_output(c->bev);
        Cowd__V1__Response *resp = cow_reply_response(reply);
        cow_reply *substitute = NULL;
        struct evbuffer_iovec vec;
        uint8_t *p;
        size_t size;
        int r;

        if (lent && lent->data && resp->result_case == COWD__V1__RESPONSE__RESULT_READ &&
            resp->read->data.data == lent->data) {
                p = lent->vec.iov_base;
                /* Only an OK read reply takes the lent room, and its prefix is as sized. */
                if (cow_codec_read_prefix_pack(resp, p + COW_FRAME_HEADER) == lent->prefix) {
                        cow_frame_header((uint32_t)(lent->prefix + lent->len), p);
                        lent->vec.iov_len = COW_FRAME_HEADER + lent->prefix + lent->len;
                        if (evbuffer_commit_space(out, &lent->vec, 1) < 0)
                                return -ENOMEM;
                        goto sent;
                }
                /* Never packed from the lent room: a new reservation would overlap it. */
                r = cow_reply_new_error(resp->id, COWD__V1__CODE__INTERNAL,
                                        "read reply could not be encoded", &substitute);
                if (r < 0)
                        goto out;
                resp = cow_reply_response(substitute);
        }

        size = cow_codec_response_size(resp);
        if (size > c->env.limits->max_frame_bytes) {
                c->env.counters->oversize_requests++;
                r = cow_reply_new_error(resp->id, COWD__V1__CODE__RESOURCE_EXHAUSTED,
                                        "reply would exceed max_frame_bytes", &substitute);
                if (r < 0)
                        goto out;
                resp = cow_reply_response(substitute);
                size = cow_codec_response_size(resp);
        }

        /* One contiguous extent: header and message are written in place, no copy. */
        if (evbuffer_reserve_space(out, (ev_ssize_t)(COW_FRAME_HEADER + size), &vec, 1) < 1) {
                r = -ENOMEM;
                goto out;
        }
        p = vec.iov_base;
        cow_frame_header((uint32_t)size, p);
        cow_codec_response_pack(resp, p + COW_FRAME_HEADER);
        vec.iov_len = COW_FRAME_HEADER + size;
        if (evbuffer_commit_space(out, &vec, 1) < 0) {
                r = -ENOMEM;
                goto out;
        }
sent:
        if (!c->in_input)
                conn_flush(c);
        r = 0;
out:
        cow_reply_free(substitute);
        return r;
}

/*
 * Answers a stream the connection cannot go on reading (id 0: the request's
 * own id is unknown) and starts closing. Returns true if c is gone.
 */
static bool conn_fail(cow_connection *c, Cowd__V1__Code code, const char *message)
{
        cow_reply *reply = NULL;

        log_info(c->env.log, "%s: %s; closing", c->peer, message);
        if (cow_reply_new_error(0, code, message, &reply) == 0)
                (void)conn_send(c, reply, NULL);
        cow_reply_free(reply);
        return conn_begin_close(c);
}

/*
 * Checks the first request of a connection that must authenticate: a hello
 * with a token from the token file. On success the connection acts as the
 * token's uid from this request on. Returns 0, or -EACCES after queueing an
 * UNAUTHENTICATED reply (the caller closes).
 */
static int conn_authenticate(cow_connection *c, const Cowd__V1__Request *req)
{
        const Cowd__V1__HelloRequest *hello =
                req->op_case == COWD__V1__REQUEST__OP_HELLO ? req->hello : NULL;
        const char *why = NULL;
        cow_reply *reply = NULL;
        uint32_t uid;

        if (!hello)
                why = "this connection must begin with hello carrying a token";
        else if (hello->token.len == 0)
                why = "hello carries no token, and TCP clients need one";
        else if (cow_auth_check(c->env.auth, hello->token.data, hello->token.len, &uid) < 0)
                why = "the token is not valid";
        if (!why) {
                c->uid = uid;
                c->authenticated = true;
                log_debug(c->env.log, "%s: authenticated as uid %u", c->peer, uid);
                return 0;
        }
        c->env.counters->auth_failures++;
        log_info(c->env.log, "%s: refused: %s; closing", c->peer, why);
        if (cow_reply_new_error(req->id, COWD__V1__CODE__UNAUTHENTICATED, why, &reply) == 0)
                (void)conn_send(c, reply, NULL);
        cow_reply_free(reply);
        return -EACCES;
}

static void conn_on_reply_ready(cow_reply *reply, void *arg);

static void conn_request_release(void *req)
{
        cow_codec_request_free(req);
}

/*
 * Decodes and answers one whole frame. Returns 0; -EBADMSG or -ENOBUFS when
 * the frame does not decode, or would cost too much to (the caller answers
 * and closes); -EACCES when an unauthenticated client was refused (answered
 * already; the caller closes); -ENOMEM when the daemon ran out of memory.
 */
static int conn_handle_frame(cow_connection *c, const uint8_t *payload, uint32_t len)
{
        cow_codec_request *req = NULL;
        cow_reply *reply = NULL;
        struct conn_lent lent = { .data = NULL };
        /* The clock is read only for /metrics: no cost per request when it is off. */
        uint64_t t0 = c->env.metrics ? now_ns() : 0;
        int r;

        r = cow_codec_request_unpack(payload, len, &req);
        if (r < 0)
                goto out;

        if (!c->authenticated) {
                r = conn_authenticate(c, cow_codec_request_message(req));
                if (r < 0)
                        goto out;
        }
        conn_lend_read(c, cow_codec_request_message(req), &lent);
        r = cow_dispatch_lent(c->env.dispatcher, c->uid, cow_codec_request_message(req),
                              lent.data, lent.len, &reply);
        if (r < 0)
                goto out;
        /* A process the OOM killer ended for this request: say so, as Linux does. */
        for (;;) {
                cow_pid victims[8];
                size_t n = cow_dispatcher_oom_victims(c->env.dispatcher, victims, 8);
                for (size_t i = 0; i < n; i++)
                        log_warning(c->env.log, "%s: out of memory and swap: killed process %u, "
                                                "the largest", c->peer, victims[i]);
                if (n < 8)
                        break;
        }
        if (cow_reply_is_deferred(reply)) {
                /* Nothing more is read until it comes (conn_on_reply_ready). */
                c->deferred = reply;
                c->deferred_t0 = t0;
                c->deferred_op = (unsigned)cow_codec_request_message(req)->op_case;
                /* Its handler may read the request until it is ready. */
                cow_reply_hold(reply, req, conn_request_release);
                req = NULL;
                reply = NULL;
                bufferevent_disable(c->bev, EV_READ);
                cow_reply_on_ready(c->deferred, conn_on_reply_ready, c);
                goto out;
        }
        {
                /* The handler's status is counted, also for a reply too big to send. */
                unsigned op = (unsigned)cow_codec_request_message(req)->op_case;
                r = conn_send(c, reply, &lent);
                if (r == 0 && c->env.metrics)
                        cow_request_metrics_record(c->env.metrics, op,
                                                   (unsigned)cow_reply_code(reply),
                                                   now_ns() - t0);
        }
out:
        cow_reply_free(reply);
        cow_codec_request_free(req);
        return r;
}

/*
 * Answers every whole frame in the input, in order, until the input runs
 * short (and the socket has no more for now), the output passes the
 * watermark, or the connection starts closing. Returns true if c is gone.
 */
static bool conn_process_frames(cow_connection *c)
{
        struct evbuffer *in = bufferevent_get_input(c->bev);
        struct evbuffer *out = bufferevent_get_output(c->bev);
        uint32_t max = c->env.limits->max_frame_bytes;
        size_t read_budget = CONN_MAX_READ_PER_PASS; /* a fair share of the loop turn */

        while (!c->closing && !c->paused && !c->deferred) {
                size_t avail = evbuffer_get_length(in);
                const uint8_t *payload = NULL;
                const uint8_t *buf;
                uint32_t len = 0;
                size_t consumed = 0;
                enum cow_frame_status st;
                char msg[128];
                int r;

                if (avail < COW_FRAME_HEADER) {
                        /* Nothing at all left: no read that would most likely find nothing. */
                        r = avail > 0 ? conn_read_more(c, &read_budget) : 0;
                        if (r < 0)
                                goto fatal;
                        if (r > 0)
                                continue;
                        break;
                }
                /* Judge the header alone first, so that nothing waits on a bad length. */
                buf = evbuffer_pullup(in, COW_FRAME_HEADER);
                if (!buf)
                        goto fatal;
                st = cow_frame_parse(buf, COW_FRAME_HEADER, max, &payload, &len, &consumed);
                if (st == COW_FRAME_NEED_MORE) {
                        size_t whole = COW_FRAME_HEADER + (size_t)cow_frame_declared(buf);

                        if (avail < whole) {
                                r = conn_read_more(c, &read_budget);
                                if (r < 0)
                                        goto fatal;
                                if (r > 0)
                                        continue;
                                break;
                        }
                        /* Exactly one frame made contiguous; usually already is. */
                        buf = evbuffer_pullup(in, (ev_ssize_t)whole);
                        if (!buf)
                                goto fatal;
                        st = cow_frame_parse(buf, whole, max, &payload, &len, &consumed);
                }

                switch (st) {
                case COW_FRAME_OK:
                        break;
                case COW_FRAME_EMPTY:
                        c->env.counters->oversize_frames++;
                        return conn_fail(c, COWD__V1__CODE__INVALID_ARGUMENT,
                                         "frame of length 0");
                case COW_FRAME_TOO_BIG:
                        c->env.counters->oversize_frames++;
                        snprintf(msg, sizeof(msg),
                                 "frame of %u bytes exceeds max_frame_bytes (%u)", len, max);
                        return conn_fail(c, COWD__V1__CODE__RESOURCE_EXHAUSTED, msg);
                case COW_FRAME_NEED_MORE:
                default:
                        goto fatal; /* cannot happen: the whole frame is there */
                }

                r = conn_handle_frame(c, payload, len);
                if (r == -EBADMSG) {
                        c->env.counters->protocol_errors++;
                        snprintf(msg, sizeof(msg), "frame of %u bytes is not a Request", len);
                        return conn_fail(c, COWD__V1__CODE__INVALID_ARGUMENT, msg);
                }
                if (r == -EACCES)
                        return conn_begin_close(c);
                if (r == -ENOBUFS) {
                        c->env.counters->oversize_requests++;
                        return conn_fail(c, COWD__V1__CODE__RESOURCE_EXHAUSTED,
                                         "request would take too much memory to decode");
                }
                if (r < 0)
                        goto fatal;
                evbuffer_drain(in, consumed);

                if (evbuffer_get_length(out) >= c->env.limits->output_watermark)
                        conn_flush(c);
                if (evbuffer_get_length(out) >= c->env.limits->output_watermark) {
                        /*
                         * The client sends faster than it reads. Stop reading (its
                         * requests then wait in its own socket buffer) until the
                         * write callback sees the output drained to the low mark.
                         */
                        c->paused = true;
                        c->env.counters->backpressure_pauses++;
                        bufferevent_disable(c->bev, EV_READ);
                        log_debug(c->env.log, "%s: %zu reply bytes unsent; reading paused",
                                  c->peer, evbuffer_get_length(out));
                }
        }
        return false;

fatal:
        log_warning(c->env.log, "%s: out of memory; closing", c->peer);
        conn_destroy(c);
        return true;
}

/*
 * One input pass: answers the whole frames, then writes the replies in one
 * go (conn_flush). Returns true if c is gone.
 */
static bool conn_process_input(cow_connection *c)
{
        c->in_input = true;
        if (conn_process_frames(c))
                return true;
        c->in_input = false;
        conn_flush(c);
        return false;
}

static void conn_on_read(struct bufferevent *bev, void *arg)
{
        (void)bev;
        (void)conn_process_input(arg);
}

static void conn_on_write(struct bufferevent *bev, void *arg)
{
        cow_connection *c = arg;
        bool empty = evbuffer_get_length(bufferevent_get_output(bev)) == 0;

        if (c->closing) {
                if (empty)
                        conn_destroy(c);
                return;
        }
        /* Drained: the write event rests until the socket next refuses bytes (conn_flush). */
        if (empty)
                bufferevent_disable(bev, EV_WRITE);
        if (c->paused && !c->deferred) {
                c->paused = false;
                bufferevent_enable(bev, EV_READ);
                /* Whole frames may already wait in the input: no read event will announce them. */
                (void)conn_process_input(c);
        }
}

/*
 * The deferred reply is complete: send it, then go on with the requests
 * that waited behind it, or with the close that waited for it.
 */
static void conn_on_reply_ready(cow_reply *reply, void *arg)
{
        cow_connection *c = arg;
        int r;

        c->deferred = NULL;
        r = conn_send(c, reply, NULL);
        if (r == 0 && c->env.metrics)
                cow_request_metrics_record(c->env.metrics, c->deferred_op,
                                           (unsigned)cow_reply_code(reply),
                                           now_ns() - c->deferred_t0);
        cow_reply_free(reply);
        if (r < 0) {
                log_warning(c->env.log, "%s: out of memory; closing", c->peer);
                conn_destroy(c);
                return;
        }
        if (c->closing) {
                if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
                        conn_destroy(c);
                return;
        }
        if (!c->paused)
                bufferevent_enable(c->bev, EV_READ);
        if (conn_process_input(c))
                return;
        if (c->eof_while_deferred && !c->deferred && !c->closing)
                (void)conn_begin_close(c);
}

static void conn_on_event(struct bufferevent *bev, short events, void *arg)
{
        cow_connection *c = arg;

        (void)bev;
        if (events & BEV_EVENT_TIMEOUT) {
                c->env.counters->idle_timeouts++;
                log_debug(c->env.log, "%s: idle for %us; closing", c->peer,
                          c->env.limits->idle_timeout_s);
                conn_destroy(c);
                return;
        }
        if (events & BEV_EVENT_ERROR) {
                log_debug(c->env.log, "%s: %s; closing", c->peer,
                          evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
                conn_destroy(c);
                return;
        }
        if ((events & BEV_EVENT_EOF) && !c->closing && c->deferred) {
                /* Requests read before the EOF are answered once the deferred reply is out. */
                c->eof_while_deferred = true;
                return;
        }
        if ((events & BEV_EVENT_EOF) && !c->closing) {
                /* The client has sent all it will; answer what was whole, then close. */
                if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
                        log_debug(c->env.log, "%s: EOF inside a frame", c->peer);
                (void)conn_begin_close(c);
        }
}

int cow_connection_new(const struct cow_connection_env *env, evutil_socket_t fd, uint32_t uid,
                       const char *peer, cow_connection **ret)
{
        const struct cow_service_limits *lim = env->limits;
        cow_connection *c;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->env = *env;
        c->uid = uid;
        c->authenticated = env->auth == NULL;
        snprintf(c->peer, sizeof(c->peer), "%s", peer);

        c->bev = bufferevent_socket_new(env->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (!c->bev) {
                r = -ENOMEM;
                goto fail;
        }
        bufferevent_setcb(c->bev, conn_on_read, conn_on_write, conn_on_event, c);
        /*
         * Input: no high watermark. Every input pass answers the whole frames
         * and leaves at most part of one (a header announcing more than
         * max_frame_bytes is refused at once), and reading stops while paused
         * or closing; so the input never holds more than one largest frame
         * plus one pass's reading (CONN_MAX_READ_PER_PASS and libevent's
         * 4096 bytes). A watermark would add nothing but a callback on every
         * drain, which re-armed the read event each time.
         * Output: the write callback fires at a quarter of the watermark, which
         * is where a paused connection resumes reading.
         */
        bufferevent_setwatermark(c->bev, EV_WRITE, lim->output_watermark / 4, 0);
        /*
         * libevent writes at most 16 KiB per readiness by default: four 4 KiB
         * replies. A pipelining client then waits a loop turn per four replies.
         */
        bufferevent_set_max_single_write(c->bev, CONN_MAX_SINGLE_WRITE);
        if (lim->idle_timeout_s > 0) {
                struct timeval tv = { .tv_sec = lim->idle_timeout_s };
                /*
                 * Every connection has the same idle timeout: as one of
                 * libevent's common timeouts it goes on a queue kept in
                 * expiry order, re-armed in O(1) on each read, rather than
                 * into a heap of as many timers as connections.
                 */
                const struct timeval *common = event_base_init_common_timeout(env->base, &tv);

                if (common)
                        tv = *common;
                bufferevent_set_timeouts(c->bev, &tv, &tv);
        }
        /* EV_WRITE (on in a new bufferevent) only while the socket holds back output (conn_flush). */
        bufferevent_disable(c->bev, EV_WRITE);
        if (bufferevent_enable(c->bev, EV_READ) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        *ret = c;
        return 0;
fail:
        if (c->bev) {
                /* The caller keeps fd on failure: detach it before freeing. */
                bufferevent_setfd(c->bev, -1);
                bufferevent_free(c->bev);
        }
        free(c);
        return r;
}

void cow_connection_shutdown(cow_connection *conn)
{
        if (conn->closing)
                return;
        (void)conn_begin_close(conn);
}

void cow_connection_free(cow_connection *conn)
{
        if (!conn)
                return;
        conn_destroy(conn);
}
