/* SPDX-License-Identifier: MIT */
/*
 * A connection: a blocking socket, a send buffer that pipelined requests
 * accumulate in, and a receive buffer that the framer reads replies from.
 * The buffers belong to the connection alone; callers only ever see whole
 * decoded messages.
 */
#include "cowd/client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "codec.h"
#include "conn-internal.h"
#include "endpoint.h"
#include "frame.h"

struct cowc_conn {
        int fd;
        uint32_t max_frame;
        uint64_t next_id;  /* id given to the most recently queued request */
        uint64_t recv_id;  /* id of the most recently received reply */
        int broken;        /* first transport error; every later call fails with it */
        char *token;       /* for hello; NULL: none */
        struct cowc_buf out;
        struct cowc_buf in;
        char endpoint[sizeof(((struct sockaddr_un *)0)->sun_path) + 64];
};

static int connect_unix(const char *path, int *ret_fd)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);

        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

/* host:port, or [v6]:port; tries every address getaddrinfo returns. */
static int connect_tcp(const char *endpoint, int *ret_fd)
{
        char host[256];
        const char *colon = strrchr(endpoint, ':');
        const char *h = endpoint;
        size_t hlen = (size_t)(colon - endpoint);
        if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
                h++;
                hlen -= 2;
        }
        if (hlen == 0 || hlen >= sizeof(host) || colon[1] == '\0')
                return -EINVAL;
        memcpy(host, h, hlen);
        host[hlen] = '\0';

        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
        struct addrinfo *res = NULL;
        int gai = getaddrinfo(host, colon + 1, &hints, &res);
        if (gai != 0)
                return gai == EAI_SYSTEM ? -errno : -EHOSTUNREACH;

        int r = -ECONNREFUSED;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
                if (fd < 0) {
                        r = -errno;
                        continue;
                }
                if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
                        /* Requests are small and answered one by one: do not let Nagle wait. */
                        int one = 1;
                        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                        *ret_fd = fd;
                        r = 0;
                        break;
                }
                r = -errno;
                close(fd);
        }
        freeaddrinfo(res);
        return r;
}

/* A token is a secret: wipe it before its memory goes back. */
static void cowc_token_free(char *token)
{
        if (!token)
                return;
        explicit_bzero(token, strlen(token));
        free(token);
}

static bool endpoint_is_path(const char *endpoint)
{
        return strchr(endpoint, '/') || !strchr(endpoint, ':');
}

int cowc_connect(const char *endpoint, const struct cowc_options *opts, cowc_conn **ret)
{
        cowc_conn *c = NULL;
        int fd = -1;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = -1;
        c->max_frame = (opts && opts->max_frame) ? opts->max_frame : COW_FRAME_DEFAULT_MAX;
        if (opts && opts->token) {
                c->token = strdup(opts->token);
                if (!c->token) {
                        r = -ENOMEM;
                        goto fail;
                }
        }

        if (!endpoint || !*endpoint) {
                r = cow_default_socket_path(c->endpoint, sizeof(c->endpoint));
                if (r < 0)
                        goto fail;
        } else {
                if ((size_t)snprintf(c->endpoint, sizeof(c->endpoint), "%s", endpoint) >=
                    sizeof(c->endpoint)) {
                        r = -ENAMETOOLONG;
                        goto fail;
                }
        }

        r = endpoint_is_path(c->endpoint) ? connect_unix(c->endpoint, &fd)
                                          : connect_tcp(c->endpoint, &fd);
        if (r < 0)
                goto fail;

        if (opts && opts->timeout_ms > 0) {
                struct timeval tv = { .tv_sec = opts->timeout_ms / 1000,
                                      .tv_usec = (opts->timeout_ms % 1000) * 1000 };
                if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
                    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
                        r = -errno;
                        goto fail;
                }
        }

        c->fd = fd;
        *ret = c;
        return 0;

fail:
        if (fd >= 0)
                close(fd);
        cowc_token_free(c->token);
        free(c);
        return r;
}

int cowc_connect_fd(const char *endpoint, int *ret_fd)
{
        char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 64];
        int r;

        if (!endpoint || !*endpoint) {
                r = cow_default_socket_path(path, sizeof(path));
                if (r < 0)
                        return r;
                endpoint = path;
        }
        return endpoint_is_path(endpoint) ? connect_unix(endpoint, ret_fd)
                                          : connect_tcp(endpoint, ret_fd);
}

void cowc_close(cowc_conn *c)
{
        if (!c)
                return;
        if (c->fd >= 0)
                close(c->fd);
        cowc_buf_release(&c->out);
        cowc_buf_release(&c->in);
        cowc_token_free(c->token);
        free(c);
}

const char *cowc_conn_token(const cowc_conn *c)
{
        return c->token;
}

uint32_t cowc_conn_max_frame(const cowc_conn *c)
{
        return c->max_frame;
}

void cowc_conn_set_max_frame(cowc_conn *c, uint32_t max)
{
        if (max)
                c->max_frame = max;
}

const char *cowc_endpoint(const cowc_conn *c)
{
        return c->endpoint;
}

size_t cowc_pending(const cowc_conn *c)
{
        return (size_t)(c->next_id - c->recv_id);
}

/* Remembers the first transport error: after one, the stream cannot be trusted. */
static int conn_break(cowc_conn *c, int r)
{
        if (!c->broken)
                c->broken = r;
        return r;
}

static int errno_to_result(int e)
{
        /* SO_RCVTIMEO and SO_SNDTIMEO report expiry as EAGAIN. */
        return (e == EAGAIN || e == EWOULDBLOCK) ? -ETIMEDOUT : -e;
}

int cowc_queue(cowc_conn *c, const Cowd__V1__Request *req, uint64_t *ret_id)
{
        if (c->broken)
                return c->broken;
        Cowd__V1__Request copy = *req;
        copy.id = c->next_id + 1;
        int r = cowc_codec_append_request(&c->out, &copy, c->max_frame);
        if (r < 0)
                return r; /* nothing was queued: the stream is still in step */
        c->next_id++;
        if (ret_id)
                *ret_id = copy.id;
        return 0;
}

int cowc_flush(cowc_conn *c)
{
        if (c->broken)
                return c->broken;
        size_t off = 0;
        while (off < c->out.len) {
                /* MSG_NOSIGNAL: a daemon that went away is an error to report, not SIGPIPE. */
                ssize_t n = send(c->fd, c->out.data + off, c->out.len - off, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return conn_break(c, errno_to_result(errno));
                }
                off += (size_t)n;
        }
        c->out.len = 0;
        return 0;
}

/* Reads more bytes into c->in; room for at least one whole frame is kept. */
static int conn_fill(cowc_conn *c)
{
        struct cowc_buf *in = &c->in;
        if (in->cap - in->len < 65536) {
                size_t want = in->cap ? in->cap * 2 : 65536;
                if (want > (size_t)c->max_frame + COW_FRAME_HEADER + 65536)
                        want = (size_t)c->max_frame + COW_FRAME_HEADER + 65536;
                if (want > in->cap) {
                        uint8_t *p = realloc(in->data, want);
                        if (!p)
                                return -ENOMEM;
                        in->data = p;
                        in->cap = want;
                }
        }
        for (;;) {
                ssize_t n = recv(c->fd, in->data + in->len, in->cap - in->len, 0);
                if (n > 0) {
                        in->len += (size_t)n;
                        return 0;
                }
                if (n == 0)
                        return -ECONNRESET;
                if (errno != EINTR)
                        return errno_to_result(errno);
        }
}

int cowc_receive(cowc_conn *c, Cowd__V1__Response **ret)
{
        Cowd__V1__Response *resp = NULL;
        const uint8_t *payload = NULL;
        uint32_t plen = 0;
        size_t consumed = 0;
        int r;

        if (c->broken)
                return c->broken;
        if (cowc_pending(c) == 0)
                return -EINVAL;
        if (c->out.len) {
                r = cowc_flush(c);
                if (r < 0)
                        return r;
        }

        for (;;) {
                enum cow_frame_status st =
                        cow_frame_parse(c->in.data, c->in.len, c->max_frame, &payload, &plen,
                                        &consumed);
                if (st == COW_FRAME_OK)
                        break;
                if (st == COW_FRAME_TOO_BIG)
                        return conn_break(c, -EMSGSIZE);
                if (st == COW_FRAME_EMPTY)
                        return conn_break(c, -EPROTO);
                r = conn_fill(c);
                if (r < 0)
                        return conn_break(c, r);
        }

        r = cowc_codec_unpack_response(payload, plen, &resp);
        memmove(c->in.data, c->in.data + consumed, c->in.len - consumed);
        c->in.len -= consumed;
        if (r < 0)
                return conn_break(c, r);

        /* Replies come in request order; anything else means we are out of step. */
        if (resp->id != c->recv_id + 1) {
                cowc_response_free(resp);
                return conn_break(c, -EPROTO);
        }
        c->recv_id++;
        *ret = resp;
        return cowc_error_from_response(resp, NULL);
}

int cowc_call(cowc_conn *c, const Cowd__V1__Request *req, Cowd__V1__Response **ret)
{
        /* Replies to anything queued earlier would come first; this call wants its own. */
        if (cowc_pending(c) != 0)
                return -EBUSY;
        int r = cowc_queue(c, req, NULL);
        if (r < 0)
                return r;
        return cowc_receive(c, ret);
}

int cowc_call_many(cowc_conn *c, const Cowd__V1__Request *const *reqs, size_t n,
                   Cowd__V1__Response **ret)
{
        size_t got = 0;
        int r = 0;

        if (cowc_pending(c) != 0)
                return -EBUSY;
        /* The contract promises ret zeroed on failure, including before any reply. */
        for (size_t i = 0; i < n; i++)
                ret[i] = NULL;
        for (size_t i = 0; i < n; i++) {
                r = cowc_queue(c, reqs[i], NULL);
                if (r < 0)
                        goto fail;
        }
        r = cowc_flush(c);
        if (r < 0)
                goto fail;
        for (got = 0; got < n; got++) {
                r = cowc_receive(c, &ret[got]);
                if (r < 0)
                        goto fail;
        }
        return 0;

fail:
        for (size_t i = 0; i < got; i++) {
                cowc_response_free(ret[i]);
                ret[i] = NULL;
        }
        /* Queued but unsent requests would desynchronise the next call. */
        if (!c->broken && c->out.len)
                conn_break(c, r);
        return r;
}

void cowc_response_free(Cowd__V1__Response *resp)
{
        if (resp)
                cowd__v1__response__free_unpacked(resp, NULL);
}
