/* SPDX-License-Identifier: MIT */
/*
 * What a checkpoint costs the clients: the engine with 1 GiB of used frames
 * (distinct contents, one process), checkpointed three ways:
 *
 *   serialise only        cow_engine_save() into a sink that discards;
 *   in process            cow_state_save() into a directory (temporary file,
 *                         fsync, rename, fsync of the directory): the
 *                         checkpoint at a clean stop, which holds the loop;
 *   snapshot              the daemon's checkpointer on a libevent loop, as a
 *                         `cowctl checkpoint` runs it: the loop fork()s, the
 *                         child writes, the parent goes on. Reported: the
 *                         loop's pause (the fork, from the checkpointer's own
 *                         figures), the longest gap between the ticks of a
 *                         1 ms timer on the loop while the snapshot ran, and
 *                         the time until the reply (durable).
 *
 * Anchors measured in the same run, on the same machine:
 *   memcpy of 1 GiB            the floor for touching every byte once;
 *   write + fsync of 1 GiB     the floor for making it durable;
 *   host fork() of a process   what the snapshot's pause should be close to:
 *   with 1 GiB touched         page tables copied, no data;
 *   the idle loop's tick gaps  the same loop as long again with no snapshot:
 *                              what the machine itself costs the ticks.
 *
 * Usage: bench_checkpoint [DIR] [MiB]   (DIR default /var/tmp, MiB default 1024)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include <cowd/engine.h>

#include "checkpointer.h"
#include "log.h"
#include "state.h"

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int discard_sink(void *ctx, const void *buf, size_t len)
{
        (void)buf;
        *(uint64_t *)ctx += len;
        return 0;
}

/* The snapshot run: the loop's ticks and the reply. */
struct snap {
        struct event_base *base;
        struct event *tick;
        double last_tick, max_gap;
        double replied;
        int r;
        char err[512];
};

static void snap_on_tick(evutil_socket_t fd, short events, void *arg)
{
        struct snap *sn = arg;
        double t = now_s();

        (void)fd;
        (void)events;
        if (t - sn->last_tick > sn->max_gap)
                sn->max_gap = t - sn->last_tick;
        sn->last_tick = t;
}

static void snap_done(void *arg, int r, const char *err, const struct cow_checkpoint_stats *st)
{
        struct snap *sn = arg;

        (void)st;
        sn->replied = now_s();
        sn->r = r;
        snprintf(sn->err, sizeof(sn->err), "%s", err ? err : "");
        event_base_loopbreak(sn->base);
}

static void remove_checkpoint(const char *dir)
{
        char path[4200];

        snprintf(path, sizeof(path), "%s/%s", dir, COW_STATE_FILE);
        unlink(path);
}

static void die(const char *what, int r)
{
        fprintf(stderr, "bench_checkpoint: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(1);
}

int main(int argc, char **argv)
{
        const char *dir = argc > 1 ? argv[1] : "/var/tmp";
        uint64_t mib = argc > 2 ? strtoull(argv[2], NULL, 10) : 1024;
        uint64_t bytes = mib << 20, sunk = 0, saved = 0;
        struct cow_engine_config cfg;
        struct cow_mmap_args args = { 0 };
        struct cow_sys_stats ss;
        cow_engine *e;
        cow_pid pid;
        uint64_t addr;
        char err[1024], tmpdir[4096];
        uint8_t page[4096];
        double t0, serialise, save, copy, durable, forked;
        int r;

        cow_engine_config_init(&cfg);
        cfg.mem_bytes = bytes + (64u << 20);
        cfg.max_pt_bytes = 1ull << 30;
        r = cow_engine_new(&cfg, &e);
        if (r < 0)
                die("engine", r);
        if ((r = cow_engine_spawn(e, "bench", 0, &pid)) < 0)
                die("spawn", r);
        args.length = bytes;
        args.prot = COW_PROT_READ | COW_PROT_WRITE;
        if ((r = cow_engine_mmap(e, pid, &args, &addr)) < 0)
                die("mmap", r);
        for (uint64_t off = 0; off < bytes; off += sizeof(page)) {
                memset(page, (int)(off >> 12), sizeof(page));
                memcpy(page, &off, sizeof(off));
                if ((r = cow_engine_write(e, pid, addr + off, page, sizeof(page), NULL)) < 0)
                        die("write", r);
        }
        cow_engine_sys_stats(e, &ss);

        t0 = now_s();
        if ((r = cow_engine_save(e, discard_sink, &sunk)) < 0)
                die("save", r);
        serialise = now_s() - t0;

        snprintf(tmpdir, sizeof(tmpdir), "%s/cowd-bench-XXXXXX", dir);
        if (!mkdtemp(tmpdir))
                die("mkdtemp", errno);
        t0 = now_s();
        if ((r = cow_state_save(tmpdir, e, &saved, err, sizeof(err))) < 0) {
                fprintf(stderr, "bench_checkpoint: %s\n", err);
                return 1;
        }
        save = now_s() - t0;
        remove_checkpoint(tmpdir);

        /* The snapshot, through the daemon's checkpointer on a loop of its own. */
        struct snap sn = { 0 };
        struct cow_checkpoint_stats cs;
        struct timeval ms = { .tv_usec = 1000 };
        cow_checkpointer *ck = NULL;
        cow_log *log = NULL;
        double asked, request_call;

        sn.base = event_base_new();
        sn.tick = sn.base ? event_new(sn.base, -1, EV_PERSIST, snap_on_tick, &sn) : NULL;
        if (!sn.tick || event_add(sn.tick, &ms) < 0)
                die("event loop", ENOMEM);
        if ((r = cow_log_new(COW_LOG_WARNING, &log)) < 0 ||
            (r = cow_checkpointer_new(sn.base, log, e, tmpdir, 0, &ck)) < 0)
                die("checkpointer", r);
        asked = now_s();
        if ((r = cow_checkpointer_request(ck, snap_done, &sn, err, sizeof(err))) < 0) {
                fprintf(stderr, "bench_checkpoint: %s\n", err);
                return 1;
        }
        request_call = now_s() - asked;
        sn.last_tick = now_s();
        event_base_dispatch(sn.base);
        if (sn.r < 0) {
                fprintf(stderr, "bench_checkpoint: snapshot: %s\n", sn.err);
                return 1;
        }
        cow_checkpointer_stats(ck, &cs);
        /* The anchor for the gaps: the same loop, as long again, with nothing to do. */
        double snapshot_gap = sn.max_gap, idle_gap;
        struct timeval idle = { .tv_sec = (time_t)(sn.replied - asked),
                                .tv_usec = (suseconds_t)(((sn.replied - asked) -
                                                          (double)(time_t)(sn.replied - asked)) *
                                                         1e6) };
        sn.max_gap = 0;
        sn.last_tick = now_s();
        event_base_loopexit(sn.base, &idle);
        event_base_dispatch(sn.base);
        idle_gap = sn.max_gap;
        cow_checkpointer_free(ck);
        cow_log_free(log);
        event_free(sn.tick);
        event_base_free(sn.base);
        remove_checkpoint(tmpdir);

        /* Anchors: the host doing the same amount of work. */
        uint8_t *src = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                            -1, 0);
        uint8_t *dst = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                            -1, 0);
        if (src == MAP_FAILED || dst == MAP_FAILED)
                die("mmap host", errno);
        memset(src, 0x5a, bytes);
        memset(dst, 0, bytes); /* faulted in, so the copy measures copying */
        t0 = now_s();
        memcpy(dst, src, bytes);
        copy = now_s() - t0;
        munmap(dst, bytes);

        {
                char path[4200];
                int fd;

                snprintf(path, sizeof(path), "%s/anchor", tmpdir);
                fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (fd < 0)
                        die("open anchor", errno);
                t0 = now_s();
                for (uint64_t off = 0; off < bytes;) {
                        ssize_t n = write(fd, src + off, bytes - off > (8u << 20) ? 8u << 20
                                                                                   : bytes - off);
                        if (n <= 0)
                                die("write anchor", errno);
                        off += (uint64_t)n;
                }
                if (fsync(fd) < 0)
                        die("fsync anchor", errno);
                durable = now_s() - t0;
                close(fd);
                unlink(path);
        }
        rmdir(tmpdir);

        /* src stays touched: the child shares it copy-on-write and exits at once. */
        t0 = now_s();
        pid_t child = fork();
        if (child < 0)
                die("fork", errno);
        if (child == 0)
                _exit(src[bytes - 1] == 0x5a ? 0 : 1);
        forked = now_s() - t0;
        waitpid(child, NULL, 0);
        munmap(src, bytes);

        printf("checkpoint of %llu MiB of used frames (%llu frames, %llu-byte file)\n",
               (unsigned long long)mib, (unsigned long long)ss.frames_used,
               (unsigned long long)saved);
        printf("  %-48s %9.1f ms  %6.2f GiB/s\n", "serialise only (in process, discarded)",
               serialise * 1e3, (double)sunk / serialise / (1 << 30));
        printf("  %-48s %9.1f ms  %6.2f GiB/s\n", "in process: cow_state_save (loop held)",
               save * 1e3, (double)saved / save / (1 << 30));
        printf("  %-48s %9.1f ms\n", "snapshot: loop paused (fork, checkpointer's figure)",
               (double)cs.last_pause_us / 1e3);
        printf("  %-48s %9.1f ms\n", "snapshot: request call, all of it", request_call * 1e3);
        printf("  %-48s %9.1f ms\n", "snapshot: longest gap between 1 ms ticks",
               snapshot_gap * 1e3);
        printf("  %-48s %9.1f ms  %6.2f GiB/s\n", "snapshot: request to durable reply",
               (sn.replied - asked) * 1e3,
               (double)cs.last_bytes / (sn.replied - asked) / (1 << 30));
        printf("anchors, same run:\n");
        printf("  %-48s %9.1f ms  %6.2f GiB/s\n", "host memcpy", copy * 1e3,
               (double)bytes / copy / (1 << 30));
        printf("  %-48s %9.1f ms  %6.2f GiB/s\n", "host write + fsync", durable * 1e3,
               (double)bytes / durable / (1 << 30));
        printf("  %-48s %9.1f ms\n", "host fork() with it touched", forked * 1e3);
        printf("  %-48s %9.1f ms\n", "longest gap between 1 ms ticks, idle loop", idle_gap * 1e3);
        printf("ratios: in-process save / snapshot pause = %.0f, "
               "snapshot pause / host fork = %.2f\n",
               save / ((double)cs.last_pause_us / 1e6), ((double)cs.last_pause_us / 1e6) / forked);
        cow_engine_free(e);
        return 0;
}
