/* SPDX-License-Identifier: MIT */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/listener.h>
#include <event2/util.h>
#include <systemd/sd-daemon.h>

#include "auth.h"
#include "codec.h"
#include "connection.h"
#include "counters.h"
#include "dispatch.h"
#include "endpoint.h"
#include "filewriter.h"
#include "frame.h"
#include "metrics.h"
#include "service_limits.h"
#include "reply.h"

/* How long a listener rests after accept() fails (out of descriptors, say). */
#define ACCEPT_RETRY_SECONDS 1

/* The server's record of one open connection; a doubly linked list. */
struct conn_node {
        struct conn_node *prev, *next;
        cow_server *server;
        cow_connection *conn;
};

enum listener_kind {
        LISTENER_UNIX,
        LISTENER_TCP,
};

struct cow_server {
        struct event_base *base;
        const struct cow_config *cfg;
        const cow_log *log;
        cow_engine *engine;
        struct cow_service_limits limits;
        struct cow_counters counters;
        struct cow_request_metrics metrics;
        cow_dispatcher *dispatcher;
        cow_filewriter *writer; /* writes file puts; NULL until the server has files */
        cow_metrics_server *metrics_server; /* NULL unless [metrics] port is set */

        struct evconnlistener *unix_listener;
        struct evconnlistener *tcp_listener;
        cow_auth *auth; /* the TCP clients' tokens; loaded with the TCP listener */
        struct event *accept_retry; /* re-enables listeners after accept errors */
        char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
        bool socket_created; /* ours to unlink */

        struct conn_node *conns;
        uint8_t read_scratch[COW_CONNECTION_READ_CHUNK]; /* shared by the connections */
        bool shutting_down;
        void (*on_drained)(void *arg);
        void *drained_arg;
};

int cow_server_new(struct event_base *base, const struct cow_config *cfg, cow_engine *engine,
                   const cow_log *log, cow_server **ret)
{
        cow_server *s;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->base = base;
        s->cfg = cfg;
        s->log = log;
        s->engine = engine;
        cow_service_limits_init(&s->limits, cfg);

        r = cow_dispatcher_new(engine, &s->limits, &s->counters, &s->dispatcher);
        if (r < 0)
                goto fail;
        *ret = s;
        return 0;
fail:
        cow_server_free(s);
        return r;
}

/* ---- connections -------------------------------------------------------------- */

static void server_on_conn_close(cow_connection *conn, void *userdata)
{
        struct conn_node *node = userdata;
        cow_server *s = node->server;

        (void)conn;
        if (node->prev)
                node->prev->next = node->next;
        else
                s->conns = node->next;
        if (node->next)
                node->next->prev = node->prev;
        free(node);
        s->counters.connections--;

        if (s->shutting_down && !s->conns && s->on_drained) {
                void (*cb)(void *) = s->on_drained;

                s->on_drained = NULL;
                cb(s->drained_arg);
        }
}

/*
 * Answers a connection over max_connections with one UNAVAILABLE reply
 * (id 0) and closes it. The reply is a few dozen bytes, far below any socket
 * buffer, so one non-blocking send either delivers it or the peer is gone.
 */
static void server_refuse(cow_server *s, evutil_socket_t fd, const char *peer)
{
        cow_reply *reply = NULL;
        uint8_t buf[256];
        size_t size;

        s->counters.rejected_connections++;
        log_info(s->log, "%s: refused, %u connections open (max_connections)", peer,
                 s->limits.max_connections);
        if (cow_reply_new_error(0, COWD__V1__CODE__UNAVAILABLE,
                                "too many connections (max_connections); try again later",
                                &reply) < 0)
                goto out;
        size = cow_codec_response_size(cow_reply_response(reply));
        if (COW_FRAME_HEADER + size > sizeof(buf))
                goto out;
        cow_frame_header((uint32_t)size, buf);
        cow_codec_response_pack(cow_reply_response(reply), buf + COW_FRAME_HEADER);
        (void)send(fd, buf, COW_FRAME_HEADER + size, MSG_NOSIGNAL | MSG_DONTWAIT);
out:
        cow_reply_free(reply);
        close(fd);
}

/*
 * Admits fd as a connection for uid, or refuses it. With auth, the client
 * must first show a token, which then decides its uid. Always takes fd.
 */
static void server_admit(cow_server *s, evutil_socket_t fd, uint32_t uid, const cow_auth *auth,
                         const char *peer)
{
        struct cow_connection_env env;
        struct conn_node *node;
        int r;

        if (s->shutting_down) {
                close(fd);
                return;
        }
        if (s->counters.connections >= s->limits.max_connections) {
                server_refuse(s, fd, peer);
                return;
        }
        node = calloc(1, sizeof(*node));
        if (!node) {
                close(fd);
                return;
        }
        node->server = s;
        env = (struct cow_connection_env){
                .base = s->base,
                .dispatcher = s->dispatcher,
                .limits = &s->limits,
                .counters = &s->counters,
                .metrics = s->cfg->metrics_port ? &s->metrics : NULL,
                .log = s->log,
                .auth = auth,
                .read_scratch = s->read_scratch,
                .on_close = server_on_conn_close,
                .userdata = node,
        };
        r = cow_connection_new(&env, fd, uid, peer, &node->conn);
        if (r < 0) {
                log_warning(s->log, "%s: cannot serve: %s", peer, strerror(-r));
                free(node);
                close(fd);
                return;
        }
        node->next = s->conns;
        if (s->conns)
                s->conns->prev = node;
        s->conns = node;
        s->counters.connections++;
        s->counters.connections_total++;
        log_debug(s->log, "%s: connected", peer);
}

static void server_on_unix_accept(struct evconnlistener *l, evutil_socket_t fd,
                                  struct sockaddr *sa, int socklen, void *arg)
{
        cow_server *s = arg;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        char peer[96];

        (void)l;
        (void)sa;
        (void)socklen;
        /* The kernel's word for who is on the other end: the uid ownership rests on. */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                log_warning(s->log, "unix connection without credentials: %s", strerror(errno));
                close(fd);
                return;
        }
        snprintf(peer, sizeof(peer), "unix pid %ld uid %u", (long)cred.pid, (unsigned)cred.uid);
        server_admit(s, fd, (uint32_t)cred.uid, NULL, peer);
}

/*
 * TCP carries no credentials: a TCP client acts as nobody until its hello
 * shows a token from the token file (auth.h), which names its uid.
 */
static void server_on_tcp_accept(struct evconnlistener *l, evutil_socket_t fd,
                                 struct sockaddr *sa, int socklen, void *arg)
{
        cow_server *s = arg;
        char host[INET6_ADDRSTRLEN] = "?", serv[16] = "?";
        char peer[96];

        (void)l;
        (void)getnameinfo(sa, (socklen_t)socklen, host, sizeof(host), serv, sizeof(serv),
                          NI_NUMERICHOST | NI_NUMERICSERV);
        snprintf(peer, sizeof(peer), "tcp %s port %s", host, serv);
        server_admit(s, fd, UINT32_MAX, s->auth, peer);
}

static void server_on_accept_retry(evutil_socket_t fd, short events, void *arg)
{
        cow_server *s = arg;

        (void)fd;
        (void)events;
        if (s->unix_listener)
                evconnlistener_enable(s->unix_listener);
        if (s->tcp_listener)
                evconnlistener_enable(s->tcp_listener);
}

/*
 * accept() failed, typically EMFILE. The listening socket stays readable, so
 * going on would spin; rest the listeners for a moment instead.
 */
static void server_on_accept_error(struct evconnlistener *l, void *arg)
{
        cow_server *s = arg;
        struct timeval tv = { .tv_sec = ACCEPT_RETRY_SECONDS };

        log_warning(s->log, "accept: %s; pausing new connections for %ds",
                    strerror(EVUTIL_SOCKET_ERROR()), ACCEPT_RETRY_SECONDS);
        evconnlistener_disable(l);
        if (s->accept_retry)
                evtimer_add(s->accept_retry, &tv);
}

/*
 * Wraps fd, a socket already listening, in a listener. Both the sockets the
 * server binds and any handed over by a service manager come through here.
 * Takes fd on success.
 */
static int server_add_listener(cow_server *s, evutil_socket_t fd, enum listener_kind kind)
{
        struct evconnlistener *l;
        char err[512];

        /* Configured or handed over, a TCP listener never serves without its tokens. */
        if (kind == LISTENER_TCP && !s->auth) {
                int r;

                if (!s->cfg->tcp_token_file[0]) {
                        log_error(s->log, "a TCP listener needs [listen] tcp_token_file: TCP "
                                          "carries no credentials, so clients prove who they "
                                          "are with a token");
                        return -EINVAL;
                }
                r = cow_auth_load(s->cfg->tcp_token_file, &s->auth, err, sizeof(err));
                if (r < 0) {
                        log_error(s->log, "%s", err);
                        return r;
                }
                log_info(s->log, "TCP clients authenticate with the %zu token%s in %s",
                         cow_auth_count(s->auth), cow_auth_count(s->auth) == 1 ? "" : "s",
                         s->cfg->tcp_token_file);
        }
        l = evconnlistener_new(s->base,
                               kind == LISTENER_UNIX ? server_on_unix_accept : server_on_tcp_accept,
                               s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
        if (!l)
                return -ENOMEM;
        evconnlistener_set_error_cb(l, server_on_accept_error);
        if (kind == LISTENER_UNIX)
                s->unix_listener = l;
        else
                s->tcp_listener = l;
        return 0;
}

/* ---- the Unix socket ------------------------------------------------------------ */

static bool env_is_set(const char *name)
{
        const char *v = getenv(name);

        return v && *v;
}

/*
 * Makes sure dir is a directory only its owner (us) can enter: the /tmp
 * fallback is shared with every user, who could otherwise pre-create it and
 * watch or replace the socket.
 */
static int server_make_private_dir(cow_server *s, const char *dir)
{
        struct stat st;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                log_error(s->log, "cannot create %s: %s", dir, strerror(errno));
                return -errno;
        }
        if (lstat(dir, &st) < 0) {
                log_error(s->log, "cannot examine %s: %s", dir, strerror(errno));
                return -errno;
        }
        if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0077)) {
                log_error(s->log, "%s must be a directory owned by uid %u with mode 0700", dir,
                          (unsigned)geteuid());
                return -EPERM;
        }
        return 0;
}

/*
 * Removes a socket file left behind by a daemon that is no longer running.
 * Only ECONNREFUSED proves that nobody listens: a live daemon with a full
 * backlog answers EAGAIN (the probe does not block to wait for it), and a
 * socket we may not connect to (EACCES) is not ours to judge. Anything but
 * a refusal leaves the file alone (-EADDRINUSE); a path that is not a
 * socket is never removed.
 */
static int server_remove_stale_socket(cow_server *s, const struct sockaddr_un *sa)
{
        struct stat st;
        int fd, r, err;

        if (lstat(sa->sun_path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISSOCK(st.st_mode)) {
                log_error(s->log, "%s exists and is not a socket", sa->sun_path);
                return -EEXIST;
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
        err = errno;
        close(fd);
        if (r < 0 && err == ENOENT)
                return 0; /* removed meanwhile */
        if (r == 0 || err != ECONNREFUSED) {
                log_error(s->log, "another daemon is listening on %s (%s)", sa->sun_path,
                          r == 0 ? "it answered" : strerror(err));
                return -EADDRINUSE;
        }
        log_info(s->log, "removing stale socket %s", sa->sun_path);
        if (unlink(sa->sun_path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

static int server_listen_unix(cow_server *s)
{
        const struct cow_config *cfg = s->cfg;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char path[COW_CONFIG_PATH_MAX] = "";
        int fd = -1, r;
        mode_t old_umask;

        if (cfg->socket_path[0]) {
                snprintf(path, sizeof(path), "%s", cfg->socket_path);
        } else {
                char dir[COW_CONFIG_PATH_MAX];

                r = cow_default_socket_path(path, sizeof(path));
                if (r < 0)
                        goto fail_path;
                r = cow_default_socket_dir(dir, sizeof(dir));
                if (r < 0)
                        goto fail_path;
                /*
                 * Only the /tmp fallback is ours to create: $COWD_SOCKET names the
                 * caller's own place, and $XDG_RUNTIME_DIR is the user's runtime directory.
                 */
                if (!env_is_set(COW_SOCKET_ENV) && !env_is_set("XDG_RUNTIME_DIR")) {
                        r = server_make_private_dir(s, dir);
                        if (r < 0)
                                goto fail;
                }
        }
        if (strlen(path) >= sizeof(sa.sun_path)) {
                r = -ENAMETOOLONG;
                goto fail_path;
        }
        memcpy(sa.sun_path, path, strlen(path) + 1);

        r = server_remove_stale_socket(s, &sa);
        if (r < 0)
                goto fail;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                r = -errno;
                goto fail_sys;
        }
        /*
         * bind() creates the file with the umask's permissions: narrow the umask
         * for that one call so the socket is never wider than socket_mode, even
         * for an instant. The daemon has one thread, so nothing else sees it.
         */
        old_umask = umask(~(mode_t)cfg->socket_mode & 0777);
        r = bind(fd, (const struct sockaddr *)&sa, sizeof(sa));
        umask(old_umask);
        if (r < 0) {
                r = -errno;
                goto fail_sys;
        }
        s->socket_created = true;
        memcpy(s->socket_path, sa.sun_path, sizeof(s->socket_path));
        if (chmod(path, cfg->socket_mode) < 0 || listen(fd, SOMAXCONN) < 0) {
                r = -errno;
                goto fail_sys;
        }
        r = server_add_listener(s, fd, LISTENER_UNIX);
        if (r < 0)
                goto fail_sys;
        log_info(s->log, "listening on %s", path);
        return 0;

fail_path:
        log_error(s->log, "socket path %s: %s", path, strerror(-r));
        goto fail;
fail_sys:
        log_error(s->log, "cannot listen on %s: %s", path, strerror(-r));
fail:
        if (fd >= 0)
                close(fd);
        return r;
}

/* ---- TCP ------------------------------------------------------------------------- */

static int server_listen_tcp(cow_server *s)
{
        const struct cow_config *cfg = s->cfg;
        struct addrinfo hints = {
                .ai_family = AF_UNSPEC,
                .ai_socktype = SOCK_STREAM,
                .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV,
        };
        struct addrinfo *ai = NULL;
        char port[16];
        int fd = -1, one = 1, r;

        snprintf(port, sizeof(port), "%u", cfg->tcp_port);
        r = getaddrinfo(cfg->tcp_address, port, &hints, &ai);
        if (r != 0) {
                log_error(s->log, "tcp_address %s: %s", cfg->tcp_address, gai_strerror(r));
                r = -EINVAL;
                goto out;
        }
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            (ai->ai_family == AF_INET6 &&
             setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0) {
                r = -errno;
                log_error(s->log, "cannot listen on tcp %s port %s: %s", cfg->tcp_address, port,
                          strerror(errno));
                goto out;
        }
        r = server_add_listener(s, fd, LISTENER_TCP);
        if (r < 0)
                goto out;
        fd = -1; /* the listener has it */
        log_info(s->log, "listening on tcp %s port %s", cfg->tcp_address, port);
        r = 0;
out:
        if (fd >= 0)
                close(fd);
        if (ai)
                freeaddrinfo(ai);
        return r;
}

/* ---- socket activation ----------------------------------------------------------- */

/*
 * Adopts the sockets a service manager passed (sd_listen_fds): a listening
 * Unix stream socket and at most one TCP one. Returns how many were
 * adopted (0: none were passed; bind our own) or a negative errno.
 */
static int server_adopt_activated(cow_server *s)
{
        int n = sd_listen_fds(1);
        if (n < 0) {
                log_error(s->log, "cannot read the sockets passed by the service manager: %s",
                          strerror(-n));
                return n;
        }
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                enum listener_kind kind;

                if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) > 0) {
                        kind = LISTENER_UNIX;
                } else if (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) > 0) {
                        kind = LISTENER_TCP;
                } else {
                        log_error(s->log, "passed socket %d is not a listening stream socket", fd);
                        return -EINVAL;
                }
                if ((kind == LISTENER_UNIX && s->unix_listener) ||
                    (kind == LISTENER_TCP && s->tcp_listener)) {
                        log_error(s->log, "more than one %s socket was passed",
                                  kind == LISTENER_UNIX ? "Unix" : "TCP");
                        return -EINVAL;
                }
                if (evutil_make_socket_closeonexec(fd) < 0 ||
                    evutil_make_socket_nonblocking(fd) < 0)
                        return -errno;
                int r = server_add_listener(s, fd, kind);
                if (r < 0)
                        return r;
        }
        if (n > 0)
                log_info(s->log, "serving %d socket%s passed by the service manager", n,
                         n == 1 ? "" : "s");
        return n;
}

/* Starts /metrics when the configuration asks for it. Returns 0 or a negative errno. */
static int server_serve_metrics(cow_server *s)
{
        const struct cow_metrics_sources src = {
                .engine = s->engine,
                .counters = &s->counters,
                .requests = &s->metrics,
        };

        if (s->cfg->metrics_port == 0)
                return 0;
        return cow_metrics_server_new(s->base, s->cfg->metrics_address,
                                      (uint16_t)s->cfg->metrics_port, &src, s->log,
                                      &s->metrics_server);
}

int cow_server_listen(cow_server *s)
{
        int r;

        s->accept_retry = evtimer_new(s->base, server_on_accept_retry, s);
        if (!s->accept_retry)
                return -ENOMEM;
        r = server_adopt_activated(s);
        if (r != 0)
                return r < 0 ? r : server_serve_metrics(s);
        r = server_listen_unix(s);
        if (r < 0)
                return r;
        if (s->cfg->tcp_port != 0) {
                r = server_listen_tcp(s);
                if (r < 0)
                        return r;
        }
        return server_serve_metrics(s);
}

/* ---- shutdown ----------------------------------------------------------------------- */

static void server_close_listeners(cow_server *s)
{
        if (s->unix_listener) {
                evconnlistener_free(s->unix_listener);
                s->unix_listener = NULL;
        }
        if (s->tcp_listener) {
                evconnlistener_free(s->tcp_listener);
                s->tcp_listener = NULL;
        }
        /* With the listener gone, a socket file would only make clients wait for nothing. */
        if (s->socket_created) {
                unlink(s->socket_path);
                s->socket_created = false;
        }
}

void cow_server_shutdown(cow_server *s, void (*on_drained)(void *arg), void *arg)
{
        struct conn_node *node, *next;

        s->shutting_down = true;
        s->on_drained = on_drained;
        s->drained_arg = arg;
        server_close_listeners(s);

        /* A connection with nothing left to send closes (and unlinks itself) at once. */
        for (node = s->conns; node; node = next) {
                next = node->next;
                cow_connection_shutdown(node->conn);
        }
        if (!s->conns && s->on_drained) {
                s->on_drained = NULL;
                on_drained(arg);
        }
}

void cow_server_update_limits(cow_server *s)
{
        cow_service_limits_init(&s->limits, s->cfg);
}

void cow_server_set_checkpointer(cow_server *s, struct cow_checkpointer *c)
{
        cow_dispatcher_set_checkpointer(s->dispatcher, c);
}

int cow_server_set_files(cow_server *s, struct cow_filestore *fs)
{
        if (fs && !s->writer) {
                int r = cow_filewriter_new(s->base, &s->writer);
                if (r < 0)
                        return r;
        }
        cow_dispatcher_set_files(s->dispatcher, fs, s->writer);
        return 0;
}

unsigned cow_server_connections(const cow_server *s)
{
        return (unsigned)s->counters.connections;
}

void cow_server_free(cow_server *s)
{
        if (!s)
                return;
        /* Teardown is not a drain: nobody is left to be told. */
        s->on_drained = NULL;
        server_close_listeners(s);
        while (s->conns)
                cow_connection_free(s->conns->conn); /* unlinks its node via on_close */
        if (s->accept_retry)
                event_free(s->accept_retry);
        cow_metrics_server_free(s->metrics_server);
        /* After the connections (the replies it completes are abandoned), before the dispatcher. */
        cow_filewriter_free(s->writer);
        cow_dispatcher_free(s->dispatcher);
        cow_auth_free(s->auth);
        free(s);
}
