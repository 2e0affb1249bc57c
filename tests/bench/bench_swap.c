/* SPDX-License-Identifier: MIT */
/*
 * bench_swap: swap-out and swap-in throughput of the engine through a real
 * file backend (pwrite/pread), next to raw pwrite/pread of 4 KiB pages at the
 * same offsets of the same file, in the same run. Built by default, run by
 * hand, never by ctest:
 *
 *     bench_swap [--quick] [FILE]
 *
 * FILE (default: $TMPDIR or /tmp, bench_swap.XXXXXX) is created, used and
 * removed. Its pages stay in the host's page cache, so the figures are those
 * of the path through the engine (fault, eviction choice, reverse map, PTE
 * and TLB updates, the backend call), not of a disk.
 *
 * Swap-out: memory is full of dirty anonymous pages; each timed 4 KiB write
 * to a new page evicts one of them, which is written to its slot.
 * Swap-in: every page has a valid swap copy; each timed 4 KiB read of a
 * swapped page reads it back and drops a clean resident one (no write).
 * Every figure is the median of the repetitions; ratio = engine / raw.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cowd/engine.h>

#include "bench_util.h"

#define PG UINT64_C(4096)
#define RW (COW_PROT_READ | COW_PROT_WRITE)
#define REPS 5

/* ---- the file backend ---------------------------------------------------- */

struct file_swap {
        int fd;
        uint64_t writes, reads;
};

static int file_write(void *ctx, uint64_t slot, const void *page, size_t len)
{
        struct file_swap *f = ctx;
        ssize_t n = pwrite(f->fd, page, len, (off_t)(slot * len));

        if (n < 0)
                return -errno;
        if ((size_t)n != len)
                return -EIO; /* a short write leaves the slot unusable */
        f->writes++;
        return 0;
}

static int file_read(void *ctx, uint64_t slot, void *page, size_t len)
{
        struct file_swap *f = ctx;
        ssize_t n = pread(f->fd, page, len, (off_t)(slot * len));

        if (n < 0)
                return -errno;
        if ((size_t)n != len)
                return -EIO;
        f->reads++;
        return 0;
}

static const struct cow_swap_ops file_ops = { .write = file_write, .read = file_read };

/* ---- the anchors: raw pwrite / pread of the same pages ------------------ */

static double raw_mib_s(int fd, uint64_t first, uint64_t n, bool write)
{
        static unsigned char page[PG];
        double t0;

        memset(page, 0xa5, sizeof page);
        t0 = now_ns();
        for (uint64_t i = first; i < first + n; i++) {
                ssize_t r = write ? pwrite(fd, page, PG, (off_t)(i * PG))
                                  : pread(fd, page, PG, (off_t)(i * PG));
                if (r != (ssize_t)PG)
                        die(write ? "pwrite" : "pread", r < 0 ? errno : EIO);
        }
        return (double)(n * PG) / ((now_ns() - t0) / 1e9) / (1 << 20);
}

/* ---- the engine ---------------------------------------------------------- */

struct engine_run {
        double out_mib_s, in_mib_s;
        uint64_t outs, ins, outs_during_in;
};

/*
 * One repetition: memory of mem pages, a process of n pages, swap of n
 * slots through f. The two timed phases are described at the top.
 */
static void engine_once(struct file_swap *f, uint64_t mem, uint64_t n, struct engine_run *ret)
{
        struct cow_engine_config cfg;
        struct cow_mmap_args a = { .length = n * PG, .prot = RW, .kind = COW_MAP_ANONYMOUS };
        struct cow_sys_stats s0, s1;
        static unsigned char page[PG];
        cow_engine *e = NULL;
        uint64_t base = 0;
        cow_pid p;
        double t0;

        cow_engine_config_init(&cfg);
        cfg.mem_bytes = mem * PG;
        cfg.swap_slots = n;
        check(cow_engine_new(&cfg, &e), "cow_engine_new");
        cow_engine_set_swap(e, &file_ops, f);
        check(cow_engine_spawn(e, "bench", 0, &p), "spawn");
        check(cow_engine_mmap(e, p, &a, &base), "mmap");
        memset(page, 0x3c, sizeof page);

        /* Fill memory (untimed), then every further new page evicts one. */
        for (uint64_t i = 0; i < mem; i++)
                check(cow_engine_write(e, p, base + i * PG, page, PG, NULL), "fill");
        cow_engine_sys_stats(e, &s0);
        t0 = now_ns();
        for (uint64_t i = mem; i < n; i++)
                check(cow_engine_write(e, p, base + i * PG, page, PG, NULL), "write");
        double t_out = now_ns() - t0;
        cow_engine_sys_stats(e, &s1);
        ret->outs = s1.swap_outs - s0.swap_outs;
        ret->out_mib_s = (double)(ret->outs * PG) / (t_out / 1e9) / (1 << 20);

        /* One untimed read pass gives every page a valid swap copy; the timed
         * pass then reads swapped pages and drops clean resident ones. */
        for (uint64_t i = 0; i < n; i++)
                check(cow_engine_read(e, p, base + i * PG, page, PG, NULL), "read");
        cow_engine_sys_stats(e, &s0);
        t0 = now_ns();
        for (uint64_t i = 0; i < n; i++)
                check(cow_engine_read(e, p, base + i * PG, page, PG, NULL), "read");
        double t_in = now_ns() - t0;
        cow_engine_sys_stats(e, &s1);
        if (page[0] != 0x3c)
                die("swap-in returned the wrong bytes", -EUCLEAN);
        ret->ins = s1.swap_ins - s0.swap_ins;
        ret->outs_during_in = s1.swap_outs - s0.swap_outs;
        ret->in_mib_s = (double)(ret->ins * PG) / (t_in / 1e9) / (1 << 20);

        char msg[256];
        if (cow_engine_verify(e, msg, sizeof msg) != 0)
                die(msg, -EUCLEAN);
        cow_engine_free(e);
}

int main(int argc, char **argv)
{
        bool quick = false;
        const char *path = NULL;
        char tmpl[512];
        int fd;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--quick") == 0)
                        quick = true;
                else
                        path = argv[i];
        }
        uint64_t n = quick ? 4096 : 32768; /* pages of the process and of swap */
        uint64_t mem = quick ? 512 : 2048; /* frames */

        if (path) {
                fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        } else {
                const char *dir = getenv("TMPDIR");
                snprintf(tmpl, sizeof tmpl, "%s/bench_swap.XXXXXX", dir && *dir ? dir : "/tmp");
                fd = mkstemp(tmpl);
                path = tmpl;
        }
        if (fd < 0)
                die(path, errno);
        if (ftruncate(fd, (off_t)(n * PG)) != 0)
                die("ftruncate", errno);

        struct file_swap f = { .fd = fd };
        double raw_w[REPS], raw_r[REPS], eng_w[REPS], eng_r[REPS];
        struct engine_run run = { 0 };

        /* Warm the file's pages once so neither side pays for allocating them. */
        raw_mib_s(fd, 0, n, true);
        for (int i = 0; i < REPS; i++) {
                /* Interleaved so that drift on a shared host hits both alike. */
                raw_w[i] = raw_mib_s(fd, mem, n - mem, true);
                raw_r[i] = raw_mib_s(fd, 0, n, false);
                engine_once(&f, mem, n, &run);
                eng_w[i] = run.out_mib_s;
                eng_r[i] = run.in_mib_s;
        }
        double rw = median(raw_w, REPS), rr = median(raw_r, REPS);
        double ew = median(eng_w, REPS), er = median(eng_r, REPS);

        printf("bench_swap: %llu-page process, %llu frames, %llu swap slots in %s (%d reps, median)\n",
               (unsigned long long)n, (unsigned long long)mem, (unsigned long long)n, path, REPS);
        printf("%-44s %12s %12s %7s\n", "what", "engine", "raw", "ratio");
        printf("%-44s %8.0f MiB/s %8.0f MiB/s %6.0f%%\n", "swap-out (4 KiB pwrite per evicted page)", ew,
               rw, 100 * ew / rw);
        printf("%-44s %8.0f MiB/s %8.0f MiB/s %6.0f%%\n", "swap-in (4 KiB pread per faulted page)", er,
               rr, 100 * er / rr);
        printf("last repetition: %llu pages out, %llu in, %llu written during the swap-in pass; "
               "%llu backend writes, %llu reads in all\n",
               (unsigned long long)run.outs, (unsigned long long)run.ins,
               (unsigned long long)run.outs_during_in, (unsigned long long)f.writes,
               (unsigned long long)f.reads);
        close(fd);
        unlink(path);
        return 0;
}
