/* SPDX-License-Identifier: MIT */
/*
 * cowd: reads its configuration, builds the engine and the server on one
 * event loop, runs until SIGTERM or SIGINT (re-reading the configuration on
 * SIGHUP), then takes everything down in the reverse order it was set up.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include <cowd/engine.h>

#include "checkpointer.h"
#include "config.h"
#include "log.h"
#include "notify.h"
#include "reload.h"
#include "server.h"
#include "endpoint.h"
#include "state.h"
#include "swapfile.h"
#include "filestore.h"

/* Files kept open for page I/O of mapped files; more are reopened as needed. */
#define COW_FILES_MAX_OPEN 64

/* Longest a graceful stop waits for clients to take their last replies. */
#define DRAIN_SECONDS 5

/* What the signal and timer callbacks need; lives on main()'s stack. */
struct daemon_state {
        struct event_base *base;
        cow_server *server;
        cow_engine *engine;
        cow_log *log;
        cow_notify *notify;
        cow_checkpointer *checkpointer;
        struct cow_config *cfg; /* the live configuration, which a reload changes */
        int argc;               /* what the configuration was built from, for a reload */
        char **argv;
        struct event *drain_deadline;
        bool stopping;
};

/* The STATUS= line: what an operator wants from systemctl status at a glance. */
static void daemon_status(void *arg, char *buf, size_t len)
{
        struct daemon_state *st = arg;
        struct cow_sys_stats ss;

        cow_engine_sys_stats(st->engine, &ss);
        snprintf(buf, len, "%u clients, %llu processes, %llu of %llu frames used",
                 cow_server_connections(st->server), (unsigned long long)ss.procs,
                 (unsigned long long)ss.frames_used, (unsigned long long)ss.frames_total);
}

/*
 * SIGHUP: the same file and flags are read again, exactly as at start. A
 * configuration that does not parse or check changes nothing; one that does
 * is applied as far as it can be live (reload.h).
 */
/*
 * The per-user quotas a reload read, handed to the engine. An engine that
 * started without quotas kept no charges, so it cannot start enforcing them:
 * the quotas stay off until a restart, and the log says so.
 */
static void reload_quotas(struct daemon_state *st)
{
        struct cow_engine_config *ec = &st->cfg->engine;
        if (cow_engine_set_quotas(st->engine, ec->max_frames_per_owner,
                                  ec->max_swap_slots_per_owner) == 0)
                return;
        log_warning(st->log, "reload: [limits] max_frames_per_user and max_swap_slots_per_user "
                             "can be turned on only by a restart (the daemon started without "
                             "them); keeping them off");
        ec->max_frames_per_owner = 0;
        ec->max_swap_slots_per_owner = 0;
}

static void on_sighup(evutil_socket_t sig, short events, void *arg)
{
        struct daemon_state *st = arg;
        struct cow_config *fresh;
        char err[1024];
        int r;

        (void)sig;
        (void)events;
        if (st->stopping)
                return;
        cow_notify_reloading(st->notify);
        fresh = malloc(sizeof(*fresh));
        if (!fresh) {
                log_error(st->log, "reload: out of memory; keeping the old configuration");
                goto out;
        }
        r = cow_config_parse(fresh, st->argc, st->argv, err, sizeof(err));
        if (r != 0) {
                log_error(st->log, "reload: %s; keeping the old configuration",
                          r < 0 ? err : "unexpected --help or --version");
                goto out;
        }
        r = (int)cow_reload_apply(st->cfg, fresh, st->log);
        cow_log_set_level(st->log, st->cfg->log_level);
        reload_quotas(st);
        cow_server_update_limits(st->server);
        cow_checkpointer_set_interval(st->checkpointer, st->cfg->checkpoint_interval_s);
        log_info(st->log, "reloaded %s: %d setting%s changed",
                 st->cfg->config_file[0] ? st->cfg->config_file : "the flags", r,
                 r == 1 ? "" : "s");
out:
        free(fresh);
        cow_notify_ready(st->notify);
}

/*
 * Where a file of the daemon's goes: the configured path, else name in the
 * state directory, else name beside the Unix socket. Returns 0 or
 * -ENAMETOOLONG.
 */
static int service_path(const struct cow_config *cfg, const char *configured,
                        const char *state_dir, const char *name, char *buf, size_t len)
{
        char sock[COW_CONFIG_PATH_MAX];
        int n;

        if (configured[0]) {
                n = snprintf(buf, len, "%s", configured);
        } else if (state_dir) {
                n = snprintf(buf, len, "%s/%s", state_dir, name);
        } else {
                if (cfg->socket_path[0])
                        snprintf(sock, sizeof(sock), "%s", cfg->socket_path);
                else if (cow_default_socket_path(sock, sizeof(sock)) < 0)
                        return -ENAMETOOLONG;
                char *slash = strrchr(sock, '/');
                if (slash)
                        *slash = '\0';
                else
                        snprintf(sock, sizeof(sock), ".");
                n = snprintf(buf, len, "%s/%s", sock, name);
        }
        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Opens the swap file where swap_file_path() puts it, into *ret; logs why not. */
static int swap_open(const struct cow_config *cfg, const char *state_dir, char *path,
                     size_t len, cow_swapfile **ret, const cow_log *log)
{
        char err[1024] = "";
        int r;

        r = service_path(cfg, cfg->swap_file, state_dir, COW_SWAPFILE_NAME, path, len);
        if (r == 0)
                r = cow_swapfile_open(path, cfg->engine.swap_slots, cfg->engine.page_size, ret,
                                      err, sizeof(err));
        if (r < 0)
                log_error(log, "%s", err[0] ? err : "swap file path too long");
        return r;
}

/*
 * Opens the data directory of clients' files: [files] directory, else files/
 * in the state directory, else cowd-files/ beside the socket. Logs why not.
 */
static int files_open(const struct cow_config *cfg, const char *state_dir, cow_filestore **ret,
                      const cow_log *log)
{
        const struct cow_filestore_limits limits = {
                .max_file_bytes = cfg->max_file_bytes,
                .quota_bytes = cfg->file_quota_bytes,
                .max_files = cfg->max_files_per_user,
                .max_open = COW_FILES_MAX_OPEN,
        };
        char path[COW_CONFIG_PATH_MAX], err[1024] = "";
        int r;

        r = service_path(cfg, cfg->files_dir, state_dir,
                         state_dir ? COW_FILESTORE_DIR_NAME : "cowd-files", path, sizeof(path));
        if (r == 0)
                r = cow_filestore_open(path, &limits, ret, err, sizeof(err));
        if (r < 0)
                log_error(log, "%s", err[0] ? err : "files directory path too long");
        else
                log_info(log, "files: %s", path);
        return r;
}

static void on_drained(void *arg)
{
        struct daemon_state *st = arg;

        event_base_loopexit(st->base, NULL);
}

static void on_drain_deadline(evutil_socket_t fd, short events, void *arg)
{
        struct daemon_state *st = arg;

        (void)fd;
        (void)events;
        log_warning(st->log, "%u connections still busy after %ds; closing them",
                    cow_server_connections(st->server), DRAIN_SECONDS);
        event_base_loopbreak(st->base);
}

/*
 * The first SIGTERM or SIGINT stops accepting and lets replies in flight go
 * out (for at most DRAIN_SECONDS); a second one stops at once.
 */
static void on_signal(evutil_socket_t sig, short events, void *arg)
{
        struct daemon_state *st = arg;
        struct timeval tv = { .tv_sec = DRAIN_SECONDS };

        (void)events;
        if (st->stopping) {
                log_info(st->log, "%s again; stopping now", strsignal((int)sig));
                event_base_loopbreak(st->base);
                return;
        }
        st->stopping = true;
        log_info(st->log, "%s; stopping", strsignal((int)sig));
        cow_notify_stopping(st->notify);
        evtimer_add(st->drain_deadline, &tv);
        cow_server_shutdown(st->server, on_drained, st);
}

int main(int argc, char **argv)
{
        struct daemon_state st = { 0 };
        struct cow_config cfg;
        struct sigaction sa = { .sa_handler = SIG_IGN };
        struct event *sigterm = NULL, *sigint = NULL, *sighup = NULL;
        cow_notify *notify = NULL;
        cow_checkpointer *checkpointer = NULL;
        cow_log *log = NULL;
        cow_engine *engine = NULL;
        cow_server *server = NULL;
        struct event_base *base = NULL;
        const char *state_dir = NULL;
        cow_swapfile *swap = NULL;
        cow_filestore *files = NULL;
        char swap_path[COW_CONFIG_PATH_MAX];
        char err[1024];
        int exit_code = EXIT_FAILURE;
        int r;

        r = cow_config_parse(&cfg, argc, argv, err, sizeof(err));
        if (r == COW_CONFIG_EXIT) {
                exit_code = EXIT_SUCCESS;
                goto out;
        }
        if (r < 0) {
                fprintf(stderr, "cowd: %s\n", err);
                goto out;
        }

        /* A client that goes away mid-reply must cost an EPIPE, not the daemon. */
        sigaction(SIGPIPE, &sa, NULL);

        r = cow_log_new(cfg.log_level, &log);
        if (r < 0) {
                fprintf(stderr, "cowd: %s\n", strerror(-r));
                goto out;
        }
        /* With a state directory, the last clean stop's checkpoint comes back. */
        state_dir = cfg.state_dir[0] ? cfg.state_dir : getenv("STATE_DIRECTORY");
        if (state_dir && !*state_dir)
                state_dir = NULL;
        /*
         * The swap file comes before the checkpoint, which may hold swapped
         * pages to write back into it. Only a default beside the socket waits
         * for the server, which creates the socket's directory; without a
         * state directory there is no checkpoint to load.
         */
        bool swap_early = cfg.engine.swap_slots && (cfg.swap_file[0] || state_dir);
        if (swap_early) {
                if (swap_open(&cfg, state_dir, swap_path, sizeof(swap_path), &swap, log) < 0)
                        goto out;
        }
        r = state_dir ? cow_state_load(state_dir, &cfg.engine, swap ? &cow_swapfile_ops : NULL,
                                       swap, &engine, err, sizeof(err))
                      : 1;
        if (r < 0 && cfg.start_empty) {
                /* The operator chose to start empty; the file is kept, under a new name. */
                char aside[128], why[1024];

                log_error(log, "%s", err);
                if (cow_state_set_aside(state_dir, aside, sizeof(aside), why, sizeof(why)) < 0) {
                        log_error(log, "%s; refusing to start", why);
                        goto out;
                }
                log_warning(log, "--start-empty: the refused checkpoint is kept as %s/%s; "
                                 "starting with no processes", state_dir, aside);
                r = 1;
        }
        if (r < 0) {
                /* Never discard state silently: the operator decides. */
                log_error(log, "%s; refusing to start (--start-empty renames the file aside and "
                               "starts empty)", err);
                goto out;
        }
        if (r == 0) {
                struct cow_sys_stats restored;
                cow_engine_sys_stats(engine, &restored);
                log_info(log, "restored %llu processes and %llu frames from %s",
                         (unsigned long long)restored.procs,
                         (unsigned long long)restored.frames_used, state_dir);
        } else {
                r = cow_engine_new(&cfg.engine, &engine);
                if (r < 0) {
                        log_error(log, "cannot create the engine: %s", cow_engine_strerror(r));
                        goto out;
                }
        }
        base = event_base_new();
        if (!base) {
                log_error(log, "cannot create the event loop");
                goto out;
        }
        r = cow_server_new(base, &cfg, engine, log, &server);
        if (r < 0) {
                log_error(log, "cannot create the server: %s", strerror(-r));
                goto out;
        }
        r = cow_server_listen(server);
        if (r < 0)
                goto out; /* the server said why */
        if (cfg.engine.swap_slots && !swap) {
                if (swap_open(&cfg, state_dir, swap_path, sizeof(swap_path), &swap, log) < 0)
                        goto out;
        }
        if (files_open(&cfg, state_dir, &files, log) < 0)
                goto out;
        r = cow_server_set_files(server, files);
        if (r < 0) {
                log_error(log, "cannot start the file writer thread: %s", strerror(-r));
                goto out;
        }
        cow_engine_set_files(engine, &cow_filestore_ops, files);
        if (swap) {
                cow_engine_set_swap(engine, &cow_swapfile_ops, swap);
                log_info(log, "swap: %llu pages in %s, policy %s",
                         (unsigned long long)cfg.engine.swap_slots, swap_path,
                         cow_policy_name(cfg.engine.policy));
        }

        st.base = base;
        st.server = server;
        st.engine = engine;
        st.log = log;
        st.cfg = &cfg;
        st.argc = argc;
        st.argv = argv;
        r = cow_notify_new(base, log, daemon_status, &st, &notify);
        if (r == 0)
                r = cow_checkpointer_new(base, log, engine, state_dir, cfg.checkpoint_interval_s,
                                         &checkpointer);
        if (r < 0) {
                log_error(log, "cannot set up notification and checkpoints: %s", strerror(-r));
                goto out;
        }
        st.notify = notify;
        st.checkpointer = checkpointer;
        if (state_dir)
                cow_server_set_checkpointer(server, checkpointer);
        st.drain_deadline = evtimer_new(base, on_drain_deadline, &st);
        sigterm = evsignal_new(base, SIGTERM, on_signal, &st);
        sigint = evsignal_new(base, SIGINT, on_signal, &st);
        sighup = evsignal_new(base, SIGHUP, on_sighup, &st);
        if (!st.drain_deadline || !sigterm || !sigint || !sighup ||
            event_add(sigterm, NULL) < 0 || event_add(sigint, NULL) < 0 ||
            event_add(sighup, NULL) < 0) {
                log_error(log, "cannot set up signal handling");
                goto out;
        }

        /* The sockets listen and the state is loaded: only now is the service up. */
        cow_notify_ready(notify);
        log_info(log, "ready: %llu bytes of memory, %u-byte pages",
                 (unsigned long long)cfg.engine.mem_bytes, cfg.engine.page_size);

        if (event_base_dispatch(base) < 0) {
                log_error(log, "event loop failed");
                goto out;
        }
        /*
         * Every client is answered and gone: the state is final. Dirty pages
         * of mapped files go to their files first, so that the files are
         * right even if the checkpoint cannot be written.
         */
        r = cow_engine_sync_files(engine, true);
        if (r < 0)
                log_error(log, "writing mapped files back at stop: %s (the pages stay in the "
                               "checkpoint)", cow_engine_strerror(r));
        if (state_dir) {
                r = cow_checkpointer_run(checkpointer, "at stop", err, sizeof(err));
                if (r < 0)
                        goto out; /* logged */
                log_info(log, "saved the checkpoint in %s", state_dir);
        }
        exit_code = EXIT_SUCCESS;
out:
        if (sighup)
                event_free(sighup);
        if (sigint)
                event_free(sigint);
        if (sigterm)
                event_free(sigterm);
        if (st.drain_deadline)
                event_free(st.drain_deadline);
        cow_checkpointer_free(checkpointer);
        cow_notify_free(notify);
        cow_server_free(server);
        if (base)
                event_base_free(base);
        cow_engine_free(engine);
        /* After the engine: it may use the backend until it is freed. */
        cow_swapfile_free(swap);
        cow_filestore_free(files);
        if (exit_code == EXIT_SUCCESS && log)
                log_info(log, "stopped");
        cow_log_free(log);
        /* Leaves no libevent allocations behind for leak checkers to report. */
        libevent_global_shutdown();
        return exit_code;
}
