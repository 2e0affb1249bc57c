/* SPDX-License-Identifier: MIT */
/*
 * bench_engine: what the engine's operations cost, next to what the real
 * thing costs on this host. Built by default, run by hand, never by ctest:
 *
 *     bench_engine [--quick]
 *
 * Prints one table. Every figure is the median over repetitions, timed with
 * CLOCK_MONOTONIC:
 *   - fork latency with 64 MiB .. 4 GiB resident, against host fork() of a
 *     process holding the same resident memory (time until fork() returns in
 *     the parent; the child _exit(0)s and is reaped outside the timing);
 *   - per-page fault costs (COW copy, COW reuse, zero fill) against a cold
 *     4 KiB memcpy and memset (cold: over a buffer far larger than the caches),
 *     and again with per-owner charges kept (a frame quota set);
 *   - per-access cost of 8-byte reads and writes, TLB hit and TLB miss;
 *   - metadata: bytes per frame, page-table bytes per resident page.
 * The ratio column is engine / host anchor.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cowd/engine.h>

#include "bench_util.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define PG UINT64_C(4096)
#define RW (COW_PROT_READ | COW_PROT_WRITE)
#define MAX_REPS 64

static bool quick;
static bool charges; /* engines keep per-owner charges (a frame quota no one reaches) */

/* ---- the table ---------------------------------------------------------- */

struct row {
        char what[64];
        char engine[24];
        char anchor_name[28];
        char anchor[24];
        char ratio[16];
};

static struct row rows[32];
static int nrows;

static void fmt_time(char *buf, size_t n, double ns)
{
        if (ns < 0)
                snprintf(buf, n, "-");
        else if (ns >= 1e6)
                snprintf(buf, n, "%.2f ms", ns / 1e6);
        else if (ns >= 1e4)
                snprintf(buf, n, "%.1f us", ns / 1e3);
        else
                snprintf(buf, n, "%.1f ns", ns);
}

static void add_time_row(const char *what, double eng_ns, const char *anchor_name,
                         double anchor_ns)
{
        struct row *r = &rows[nrows++];

        snprintf(r->what, sizeof r->what, "%s", what);
        fmt_time(r->engine, sizeof r->engine, eng_ns);
        snprintf(r->anchor_name, sizeof r->anchor_name, "%s", anchor_name);
        fmt_time(r->anchor, sizeof r->anchor, anchor_ns);
        if (anchor_ns > 0 && eng_ns / anchor_ns < 0.1)
                snprintf(r->ratio, sizeof r->ratio, "1/%.0f", anchor_ns / eng_ns);
        else if (anchor_ns > 0)
                snprintf(r->ratio, sizeof r->ratio, "%.2fx", eng_ns / anchor_ns);
        else
                snprintf(r->ratio, sizeof r->ratio, "-");
}

static void add_text_row(const char *what, const char *engine, const char *anchor_name,
                         const char *anchor, const char *ratio)
{
        struct row *r = &rows[nrows++];

        snprintf(r->what, sizeof r->what, "%s", what);
        snprintf(r->engine, sizeof r->engine, "%s", engine);
        snprintf(r->anchor_name, sizeof r->anchor_name, "%s", anchor_name);
        snprintf(r->anchor, sizeof r->anchor, "%s", anchor);
        snprintf(r->ratio, sizeof r->ratio, "%s", ratio);
}

static void print_table(void)
{
        printf("%-44s %14s   %-26s %14s %9s\n", "measurement (median)", "cowd engine",
               "host anchor", "host", "ratio");
        for (int i = 0; i < 44 + 1 + 14 + 3 + 26 + 1 + 14 + 1 + 9; i++)
                putchar('-');
        putchar('\n');
        for (int i = 0; i < nrows; i++)
                printf("%-44s %14s   %-26s %14s %9s\n", rows[i].what, rows[i].engine,
                       rows[i].anchor_name, rows[i].anchor, rows[i].ratio);
}

/* ---- engine helpers ----------------------------------------------------- */

static cow_engine *engine_new(uint64_t mem, uint32_t tlb_entries)
{
        struct cow_engine_config cfg;
        cow_engine *e = NULL;

        cow_engine_config_init(&cfg);
        cfg.mem_bytes = mem;
        cfg.tlb_entries = tlb_entries;
        cfg.max_pt_bytes = 4 * GiB;
        if (charges)
                cfg.max_frames_per_owner = mem / PG;
        check(cow_engine_new(&cfg, &e), "cow_engine_new");
        return e;
}

static uint64_t engine_map(cow_engine *e, cow_pid pid, uint64_t len)
{
        struct cow_mmap_args a = { .length = len, .prot = RW, .kind = COW_MAP_ANONYMOUS };
        uint64_t addr = 0;

        check(cow_engine_mmap(e, pid, &a, &addr), "cow_engine_mmap");
        return addr;
}

/* Writes every page of [addr, addr + len) so each has its own frame. */
static void engine_fill(cow_engine *e, cow_pid pid, uint64_t addr, uint64_t len)
{
        static unsigned char chunk[1 * MiB];

        memset(chunk, 0x5a, sizeof chunk);
        for (uint64_t off = 0; off < len; off += sizeof chunk) {
                uint64_t n = len - off < sizeof chunk ? len - off : sizeof chunk;

                check(cow_engine_write(e, pid, addr + off, chunk, n, NULL), "cow_engine_write");
        }
}

/* ---- fork latency -------------------------------------------------------- */

static double engine_fork_ns(uint64_t resident, int reps, double *ret_pt_per_page)
{
        cow_engine *e = engine_new(resident + 64 * MiB, 64);
        double t[MAX_REPS];
        struct cow_sys_stats s;
        cow_pid p, c;
        uint64_t a;

        check(cow_engine_spawn(e, "bench", 0, &p), "spawn");
        a = engine_map(e, p, resident);
        engine_fill(e, p, a, resident);
        cow_engine_sys_stats(e, &s);
        if (s.frames_used != resident / PG)
                die("fill: frames_used mismatch", -EUCLEAN);
        *ret_pt_per_page = (double)s.pt_bytes / (double)(resident / PG);
        for (int i = 0; i < reps; i++) {
                double t0 = now_ns();

                check(cow_engine_fork(e, p, &c), "fork");
                t[i] = now_ns() - t0;
                check(cow_engine_exit(e, c), "exit");
        }
        cow_engine_free(e);
        return median(t, reps);
}

static double host_fork_ns(uint64_t resident, int reps)
{
        double t[MAX_REPS];
        unsigned char *mem = mmap(NULL, resident, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (mem == MAP_FAILED)
                die("host mmap", errno);
        for (uint64_t off = 0; off < resident; off += PG)
                mem[off] = (unsigned char)off | 1;
        for (int i = 0; i < reps; i++) {
                double t0 = now_ns();
                pid_t pid = fork();
                int status;

                if (pid == 0)
                        _exit(0);
                t[i] = now_ns() - t0;
                if (pid < 0)
                        die("fork", errno);
                if (waitpid(pid, &status, 0) != pid)
                        die("waitpid", errno);
        }
        munmap(mem, resident);
        return median(t, reps);
}

/* ---- fault costs --------------------------------------------------------- */

/*
 * Per-page cost of an 8-byte write that takes each kind of fault, over
 * npages pages: zero fill (fresh pages), COW copy (child after fork), COW
 * reuse (the parent afterwards: the child holds copies, so the parent is
 * alone on every original frame).
 *
 * recycled: every frame has been used and freed once before the timing, as
 * in a daemon that has been running a while; the host has backed it, like
 * the anchors' buffers. Otherwise each frame is touched for the first time
 * and the host's page fault is part of the figure.
 */
static void engine_fault_ns(uint64_t npages, int reps, bool recycled, double *zero_fill,
                            double *copy, double *reuse)
{
        double tz[MAX_REPS], tc[MAX_REPS], tr[MAX_REPS];
        uint64_t v = 1;

        for (int i = 0; i < reps; i++) {
                cow_engine *e = engine_new(3 * npages * PG, 64);
                struct cow_sys_stats s;
                cow_pid p, c;
                uint64_t a;
                double t0;

                if (recycled) {
                        cow_pid w;
                        check(cow_engine_spawn(e, "warm", 0, &w), "spawn");
                        engine_fill(e, w, engine_map(e, w, 3 * npages * PG), 3 * npages * PG);
                        check(cow_engine_exit(e, w), "exit");
                }
                cow_engine_sys_stats(e, &s);
                uint64_t fills0 = s.zero_fills;
                check(cow_engine_spawn(e, "bench", 0, &p), "spawn");
                a = engine_map(e, p, npages * PG);
                t0 = now_ns();
                for (uint64_t k = 0; k < npages; k++)
                        check(cow_engine_write(e, p, a + k * PG, &v, sizeof v, NULL), "write");
                tz[i] = (now_ns() - t0) / (double)npages;
                check(cow_engine_fork(e, p, &c), "fork");
                t0 = now_ns();
                for (uint64_t k = 0; k < npages; k++)
                        check(cow_engine_write(e, c, a + k * PG, &v, sizeof v, NULL), "write");
                tc[i] = (now_ns() - t0) / (double)npages;
                t0 = now_ns();
                for (uint64_t k = 0; k < npages; k++)
                        check(cow_engine_write(e, p, a + k * PG, &v, sizeof v, NULL), "write");
                tr[i] = (now_ns() - t0) / (double)npages;
                cow_engine_sys_stats(e, &s);
                if (s.zero_fills - fills0 != npages || s.cow_copies != npages ||
                    s.cow_reuses != npages)
                        die("fault counts are not what the benchmark assumes", -EUCLEAN);
                cow_engine_free(e);
        }
        *zero_fill = median(tz, reps);
        *copy = median(tc, reps);
        *reuse = median(tr, reps);
}

/* Cold 4 KiB memcpy and memset: each page of a big buffer touched once per pass. */
static void host_cold_ns(uint64_t bufsize, int reps, double *cpy, double *set)
{
        double tc[MAX_REPS], ts[MAX_REPS];
        unsigned char *src = malloc(bufsize), *dst = malloc(bufsize);
        uint64_t n = bufsize / PG;
        volatile unsigned char sink = 0;

        if (!src || !dst)
                die("malloc", ENOMEM);
        memset(src, 1, bufsize);
        memset(dst, 2, bufsize);
        for (int i = 0; i < reps; i++) {
                double t0 = now_ns();

                for (uint64_t k = 0; k < n; k++)
                        memcpy(dst + k * PG, src + k * PG, PG);
                tc[i] = (now_ns() - t0) / (double)n;
                sink ^= dst[(uint64_t)i * PG % bufsize];
                t0 = now_ns();
                for (uint64_t k = 0; k < n; k++)
                        memset(src + k * PG, i, PG);
                ts[i] = (now_ns() - t0) / (double)n;
                sink ^= src[(uint64_t)i * 7 * PG % bufsize];
        }
        (void)sink;
        free(src);
        free(dst);
        *cpy = median(tc, reps);
        *set = median(ts, reps);
}

/* ---- access costs --------------------------------------------------------- */

/*
 * 8-byte accesses: "hit" cycles over 16 pages (within a 64-entry TLB),
 * "miss" strides over 4096 pages (LRU never keeps them). The TLB counters
 * confirm the intended hit or miss for every access.
 */
static void engine_access_ns(int reps, double *rd_hit, double *rd_miss, double *wr_hit,
                             double *wr_miss)
{
        const uint64_t npages = 4096, nacc = quick ? 200000 : 1000000;
        double t[4][MAX_REPS];
        cow_engine *e = engine_new(2 * npages * PG, 64);
        struct cow_proc_stats s0, s1;
        cow_pid p;
        uint64_t a, v = 0;

        check(cow_engine_spawn(e, "bench", 0, &p), "spawn");
        a = engine_map(e, p, npages * PG);
        engine_fill(e, p, a, npages * PG);
        for (int i = 0; i < reps; i++) {
                for (int kind = 0; kind < 4; kind++) {
                        bool write = kind >= 2, miss = kind % 2;
                        uint64_t span = miss ? npages : 16;
                        double t0;

                        check(cow_engine_proc_stats(e, p, &s0), "stats");
                        t0 = now_ns();
                        for (uint64_t k = 0; k < nacc; k++) {
                                uint64_t addr = a + (k % span) * PG + 64;

                                if (write)
                                        check(cow_engine_write(e, p, addr, &k, sizeof k, NULL),
                                              "write");
                                else
                                        check(cow_engine_read(e, p, addr, &v, sizeof v, NULL),
                                              "read");
                        }
                        t[kind][i] = (now_ns() - t0) / (double)nacc;
                        check(cow_engine_proc_stats(e, p, &s1), "stats");
                        if (miss ? s1.tlb_misses - s0.tlb_misses < nacc - 16
                                 : s1.tlb_hits - s0.tlb_hits < nacc - 16)
                                die("TLB did not behave as the benchmark assumes", -EUCLEAN);
                }
        }
        cow_engine_free(e);
        *rd_hit = median(t[0], reps);
        *rd_miss = median(t[1], reps);
        *wr_hit = median(t[2], reps);
        *wr_miss = median(t[3], reps);
}

/* A host load of 8 bytes, for scale: hot (one line) and cold (page stride over 1 GiB). */
static void host_access_ns(int reps, double *hot, double *cold)
{
        const uint64_t size = quick ? 256 * MiB : 1 * GiB, n = size / PG;
        double th[MAX_REPS], tc[MAX_REPS];
        unsigned char *mem = malloc(size);
        volatile uint64_t sink = 0;

        if (!mem)
                die("malloc", ENOMEM);
        memset(mem, 3, size);
        for (int i = 0; i < reps; i++) {
                uint64_t acc = 0, x;
                double t0 = now_ns();

                for (uint64_t k = 0; k < n; k++) {
                        memcpy(&x, mem + (k % 16) * PG + 64, sizeof x);
                        acc += x + k;
                        __asm__ volatile("" : "+r"(acc));
                }
                th[i] = (now_ns() - t0) / (double)n;
                t0 = now_ns();
                for (uint64_t k = 0; k < n; k++) {
                        memcpy(&x, mem + ((k * 4099) % n) * PG + 64, sizeof x);
                        acc += x;
                        __asm__ volatile("" : "+r"(acc));
                }
                tc[i] = (now_ns() - t0) / (double)n;
                sink += acc;
        }
        (void)sink;
        free(mem);
        *hot = median(th, reps);
        *cold = median(tc, reps);
}

int main(int argc, char **argv)
{
        static const uint64_t full_sizes[] = { 64 * MiB, 256 * MiB, 1 * GiB, 4 * GiB };
        static const uint64_t quick_sizes[] = { 64 * MiB, 256 * MiB };
        const uint64_t *sizes;
        int nsizes, reps;
        double pt_per_page[4] = { 0 };
        char what[64], buf[24], buf2[24];

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--quick") == 0) {
                        quick = true;
                } else {
                        fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
                        return 2;
                }
        }
        sizes = quick ? quick_sizes : full_sizes;
        nsizes = quick ? 2 : 4;
        reps = quick ? 5 : 11;

        for (int i = 0; i < nsizes; i++) {
                double eng = engine_fork_ns(sizes[i], reps, &pt_per_page[i]);
                double host = host_fork_ns(sizes[i], reps);

                snprintf(what, sizeof what, "fork, %llu MiB resident",
                         (unsigned long long)(sizes[i] / MiB));
                add_time_row(what, eng, "host fork()", host);
        }
        {
                double zf, cp, ru, hcpy, hset;

                host_cold_ns(quick ? 256 * MiB : 1 * GiB, reps, &hcpy, &hset);
                engine_fault_ns(quick ? 4096 : 16384, reps, true, &zf, &cp, &ru);
                add_time_row("COW copy fault, per page (8 B write)", cp, "cold 4 KiB memcpy", hcpy);
                add_time_row("COW reuse fault, per page (8 B write)", ru, "cold 4 KiB memcpy", hcpy);
                add_time_row("zero-fill fault, per page (8 B write)", zf, "cold 4 KiB memset", hset);
                engine_fault_ns(quick ? 4096 : 16384, reps, false, &zf, &cp, &ru);
                add_time_row("  same, frames never used: COW copy", cp, "cold 4 KiB memcpy", hcpy);
                add_time_row("  same, frames never used: zero fill", zf, "cold 4 KiB memset", hset);
                charges = true;
                engine_fault_ns(quick ? 4096 : 16384, reps, true, &zf, &cp, &ru);
                charges = false;
                add_time_row("  same, per-owner charges kept: COW copy", cp, "cold 4 KiB memcpy",
                             hcpy);
                add_time_row("  same, per-owner charges kept: zero fill", zf, "cold 4 KiB memset",
                             hset);
        }
        {
                double rh, rm, wh, wm, hot, cold;

                engine_access_ns(reps, &rh, &rm, &wh, &wm);
                host_access_ns(reps, &hot, &cold);
                add_time_row("read 8 B, TLB hit", rh, "host load, hot", hot);
                add_time_row("read 8 B, TLB miss", rm, "host load, page stride", cold);
                add_time_row("write 8 B, TLB hit", wh, "host load, hot", hot);
                add_time_row("write 8 B, TLB miss", wm, "host load, page stride", cold);
        }
        {
                cow_engine *e = engine_new(64 * MiB, 64);
                struct cow_sys_stats s;

                cow_engine_sys_stats(e, &s);
                snprintf(buf, sizeof buf, "%u B", s.frame_meta_bytes);
                /* Linux keeps a 64-byte struct page per 4 KiB frame */
                snprintf(buf2, sizeof buf2, "%.2fx", s.frame_meta_bytes / 64.0);
                add_text_row("frame metadata, per frame", buf, "Linux struct page", "64 B", buf2);
                cow_engine_free(e);
        }
        for (int i = 0; i < nsizes; i++) {
                snprintf(what, sizeof what, "page-table bytes / resident page, %llu MiB",
                         (unsigned long long)(sizes[i] / MiB));
                snprintf(buf, sizeof buf, "%.2f B", pt_per_page[i]);
                /* x86-64: an 8-byte PTE per page plus 1/512 of that per upper level */
                snprintf(buf2, sizeof buf2, "%.2fx", pt_per_page[i] / 8.016);
                add_text_row(what, buf, "x86-64 4-level tables", "8.02 B", buf2);
        }
        printf("bench_engine%s: medians of %d runs, CLOCK_MONOTONIC, page size 4096\n",
               quick ? " --quick" : "", reps);
        print_table();
        return 0;
}
