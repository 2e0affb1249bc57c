/* SPDX-License-Identifier: MIT */
/*
 * Swap: eviction through the reverse map, the swap cache, replacement
 * policies, per-process limits, out of memory and backend errors. Every
 * scenario counts the backend's calls and checks the engine's invariants.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "engine_test.h"
#include "blob.h"
#include "swapmem.h"

static struct swapmem sm;

static int sm_teardown(void **state)
{
        swapmem_fini(&sm);
        return te_free_all(state);
}

/* An engine of nframes 4 KiB frames, nslots of swap through ops, the given policy. */
static cow_engine *new_with_backend(uint64_t nframes, uint64_t nslots, enum cow_policy policy,
                                    const struct cow_swap_ops *ops, void *ctx)
{
        struct cow_engine_config cfg;
        cow_engine *e = NULL;
        cow_engine_config_init(&cfg);
        cfg.mem_bytes = nframes * PG;
        cfg.swap_slots = nslots;
        cfg.policy = policy;
        assert_ok(cow_engine_new(&cfg, &e));
        te_track(e);
        cow_engine_set_swap(e, ops, ctx);
        return e;
}

/* The same with nslots of swap in sm. */
static cow_engine *new_swapping(uint64_t nframes, uint64_t nslots, enum cow_policy policy)
{
        swapmem_fini(&sm);
        assert_ok(swapmem_init(&sm, nslots, PG));
        return new_with_backend(nframes, nslots, policy, &swapmem_ops, &sm);
}

static void write_tagged(cow_engine *e, cow_pid pid, uint64_t addr, uint64_t pages, uint64_t tag)
{
        uint8_t buf[PG];
        for (uint64_t i = 0; i < pages; i++) {
                te_pattern(buf, sizeof(buf), tag + i);
                te_write(e, pid, addr + i * PG, buf, sizeof(buf));
                assert_verify(e);
        }
}

static void check_tagged(cow_engine *e, cow_pid pid, uint64_t addr, uint64_t pages, uint64_t tag)
{
        uint8_t buf[PG], want[PG];
        for (uint64_t i = 0; i < pages; i++) {
                te_pattern(want, sizeof(want), tag + i);
                te_read(e, pid, addr + i * PG, buf, sizeof(buf));
                assert_memory_equal(buf, want, sizeof(buf));
                assert_verify(e);
        }
}

/* A process twice the size of memory: written, read back, forked, written by both. */
static void test_process_twice_the_memory(void **state)
{
        (void)state;
        cow_engine *e = new_swapping(16, 96, COW_POLICY_CLOCK);
        cow_pid p = te_spawn(e, "big");
        uint64_t a = te_mmap_rw(e, p, 32 * PG);
        write_tagged(e, p, a, 32, 100);
        check_tagged(e, p, a, 32, 100);
        struct cow_sys_stats s = te_sys(e);
        assert_true(s.swap_outs >= 16);
        assert_true(s.swap_ins >= 16);
        assert_true(s.frames_used <= 16);
        assert_true(te_proc(e, p).faults_major >= 16);
        assert_int_equal(te_proc(e, p).faults_first_touch, 32);

        cow_pid c = te_fork(e, p);
        check_tagged(e, c, a, 32, 100);
        write_tagged(e, c, a, 32, 500);
        write_tagged(e, p, a, 16, 900);
        check_tagged(e, p, a, 16, 900);
        check_tagged(e, p, a + 16 * PG, 16, 116);
        check_tagged(e, c, a, 32, 500);
        struct cow_proc_stats ps = te_proc(e, p), cs = te_proc(e, c);
        assert_int_equal(ps.rss_pages + ps.swapped_pages, 32);
        assert_int_equal(cs.rss_pages + cs.swapped_pages, 32);
        te_exit(e, c);
        assert_verify(e);
        te_exit(e, p);
        assert_verify(e);
        assert_int_equal(te_sys(e).swap_slots_used, 0);
        assert_int_equal(te_sys(e).frames_used, 0);
        te_free(e);
}

/*
 * A page shared by three processes (one of them through a leaf of its own)
 * is evicted: one write; faulted back by each sharer: one read, one frame,
 * still copy-on-write; a write then copies.
 */
static void test_shared_page_swapped_once(void **state)
{
        (void)state;
        cow_engine *e = new_swapping(4, 16, COW_POLICY_FIFO);
        cow_pid p = te_spawn(e, "parent");
        uint64_t a = te_mmap_rw(e, p, 2 * PG);
        write_tagged(e, p, a, 1, 7);
        cow_pid c1 = te_fork(e, p), c2 = te_fork(e, p);
        /* c2 writes its other page: its leaf is copied, so two leaves map the page. */
        te_put64(e, c2, a + PG, 1);
        assert_verify(e);

        /* Another process fills memory: FIFO evicts the oldest frame, the shared page. */
        cow_pid q = te_spawn(e, "pressure");
        uint64_t b = te_mmap_rw(e, q, 3 * PG);
        uint64_t w0 = sm.writes;
        write_tagged(e, q, b, 3, 40);
        assert_int_equal(sm.writes - w0, 1);
        struct cow_page_info pi = te_page(e, p, a);
        assert_true(pi.flags & COW_PAGE_SWAPPED);
        assert_false(pi.flags & COW_PAGE_PRESENT);
        assert_int_equal(te_page(e, c1, a).swap_slot, pi.swap_slot);
        assert_int_equal(te_page(e, c2, a).swap_slot, pi.swap_slot);
        assert_int_equal(te_sys(e).swap_slots_used, 1);
        te_exit(e, q);
        assert_verify(e);
        uint64_t used = te_sys(e).frames_used; /* c2's private page */

        /* c1 faults it back into the leaf it shares with p: p then finds it
         * present without a fault; c2, through its own leaf, finds it in the
         * swap cache. */
        uint64_t r0 = sm.reads;
        check_tagged(e, c1, a, 1, 7);
        assert_true(te_page(e, p, a).flags & COW_PAGE_PRESENT);
        assert_true(te_page(e, c2, a).flags & COW_PAGE_SWAPPED);
        check_tagged(e, p, a, 1, 7);
        check_tagged(e, c2, a, 1, 7);
        assert_int_equal(sm.reads - r0, 1);
        assert_int_equal(sm.writes - w0, 1);
        assert_int_equal(te_sys(e).frames_used, used + 1);
        assert_int_equal(te_sys(e).swap_cache_hits, 1);
        assert_int_equal(te_proc(e, c1).faults_major, 1);
        assert_int_equal(te_proc(e, p).faults_major, 0);
        assert_int_equal(te_proc(e, c2).faults_major, 0);
        pi = te_page(e, p, a);
        assert_int_equal(te_page(e, c1, a).frame, pi.frame);
        assert_int_equal(te_page(e, c2, a).frame, pi.frame);
        assert_true(pi.flags & COW_PAGE_COW);
        assert_int_equal(pi.sharers, 3);

        /* The first write copies; the others keep the swapped-in frame. */
        te_put64(e, c1, a, 42);
        assert_verify(e);
        assert_int_equal(te_sys(e).frames_used, used + 2);
        check_tagged(e, p, a, 1, 7);
        check_tagged(e, c2, a, 1, 7);
        assert_int_equal(te_get64(e, c1, a), 42);
        te_free(e);
}

/*
 * After fork three processes reach one leaf, and each has the page in its
 * TLB. Evicting the frame edits that one leaf entry and must shoot down the
 * TLB entry of every process reaching it, not only of one: a TLB left
 * holding the frame would read whatever the frame holds next.
 */
static void test_shootdown_reaches_every_sharer(void **state)
{
        (void)state;
        cow_engine *e = new_swapping(4, 16, COW_POLICY_FIFO);
        cow_pid p = te_spawn(e, "parent");
        uint64_t a = te_mmap_rw(e, p, PG);
        write_tagged(e, p, a, 1, 11);
        cow_pid c1 = te_fork(e, p), c2 = te_fork(e, p);
        const cow_pid all[] = { p, c1, c2 };
        for (int i = 0; i < 3; i++) {
                check_tagged(e, all[i], a, 1, 11);
                assert_true(te_page(e, all[i], a).flags & COW_PAGE_IN_TLB);
        }
        uint32_t frame = te_page(e, p, a).frame;

        /* Memory fills with another process's pages (new bytes in the freed
         * frame): FIFO evicts the shared page first. */
        cow_pid q = te_spawn(e, "pressure");
        uint64_t b = te_mmap_rw(e, q, 4 * PG);
        uint64_t w0 = sm.writes;
        write_tagged(e, q, b, 4, 90);
        assert_int_equal(sm.writes - w0, 1);
        assert_int_equal(te_sys(e).evictions, 1);
        uint64_t slot = te_page(e, p, a).swap_slot;
        for (int i = 0; i < 3; i++) {
                struct cow_page_info pi = te_page(e, all[i], a);
                assert_true(pi.flags & COW_PAGE_SWAPPED);
                assert_false(pi.flags & (COW_PAGE_PRESENT | COW_PAGE_IN_TLB));
                assert_int_equal(pi.swap_slot, slot);
        }
        /* The frame the sharers had cached now holds one of q's pages. */
        bool reused = false;
        for (uint64_t k = 0; k < 4; k++)
                reused |= te_page(e, q, b + k * PG).frame == frame;
        assert_true(reused);

        /* Each sharer misses its TLB and reads its own bytes back, not q's. */
        te_exit(e, q);
        for (int i = 0; i < 3; i++) {
                uint64_t m0 = te_proc(e, all[i]).tlb_misses;
                check_tagged(e, all[i], a, 1, 11);
                assert_true(te_proc(e, all[i]).tlb_misses > m0);
        }
        assert_int_equal(sm.writes - w0, 1);
        te_free(e);
}

/* A clean page whose copy in swap is valid is dropped without a second write. */
static void test_clean_page_not_written_twice(void **state)
{
        (void)state;
        cow_engine *e = new_swapping(1, 8, COW_POLICY_FIFO);
        cow_pid p = te_spawn(e, NULL);
        uint64_t a = te_mmap_rw(e, p, 2 * PG);
        write_tagged(e, p, a, 2, 1); /* page 0 goes out */
        assert_int_equal(sm.writes, 1);
        check_tagged(e, p, a, 1, 1); /* page 0 back, page 1 out */
        assert_int_equal(sm.writes, 2);
        /* From now on both pages are clean with valid copies: reading them in
         * turn reads every time and never writes. */
        for (int i = 0; i < 10; i++) {
                uint64_t reads = sm.reads;
                check_tagged(e, p, a + (uint64_t)((i + 1) % 2) * PG, 1, 1 + (uint64_t)((i + 1) % 2));
                assert_int_equal(sm.reads, reads + 1);
                assert_int_equal(sm.writes, 2);
        }
        /* A write makes the resident one dirty again: it is written when evicted. */
        te_put64(e, p, a + PG, 5);
        te_get64(e, p, a);
        assert_int_equal(sm.writes, 3);
        assert_int_equal(te_get64(e, p, a + PG), 5);
        /* The zero page never goes to swap: reading untouched pages writes nothing. */
        cow_pid z = te_spawn(e, NULL);
        uint64_t zb = te_mmap_rw(e, z, 64 * PG);
        uint8_t buf[PG];
        uint64_t w1 = sm.writes;
        for (int i = 0; i < 64; i++) {
                te_read(e, z, zb + (uint64_t)i * PG, buf, sizeof(buf));
                assert_true(te_is_zero(buf, sizeof(buf)));
        }
        assert_int_equal(sm.writes, w1);
        assert_int_equal(te_proc(e, z).zero_pages, 64);
        assert_verify(e);
        te_free(e);
}

/* Faults of one process limited to nframes over the classic reference string. */
static uint64_t belady_faults(enum cow_policy policy, uint64_t limit)
{
        static const int refs[] = { 1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5 };
        cow_engine *e = new_swapping(64, 64, COW_POLICY_CLOCK);
        struct cow_spawn_args args = { .name = "belady", .max_resident = limit, .policy = policy };
        cow_pid p;
        assert_ok(cow_engine_spawn_args(e, &args, &p));
        uint64_t a = te_mmap_rw(e, p, 6 * PG);
        for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
                te_put64(e, p, a + (uint64_t)refs[i] * PG, (uint64_t)i);
                assert_verify(e);
                assert_true(te_proc(e, p).rss_pages <= limit);
        }
        struct cow_proc_stats s = te_proc(e, p);
        assert_int_equal(s.max_resident, limit);
        assert_int_equal(s.faults_first_touch, 5);
        te_free(e);
        return s.faults_first_touch + s.faults_major;
}

static void test_belady(void **state)
{
        (void)state;
        assert_int_equal(belady_faults(COW_POLICY_FIFO, 3), 9);
        assert_int_equal(belady_faults(COW_POLICY_FIFO, 4), 10);
        uint64_t lru3 = belady_faults(COW_POLICY_LRU, 3), lru4 = belady_faults(COW_POLICY_LRU, 4);
        assert_int_equal(lru3, 10);
        assert_int_equal(lru4, 8);
        uint64_t clock3 = belady_faults(COW_POLICY_CLOCK, 3);
        uint64_t clock4 = belady_faults(COW_POLICY_CLOCK, 4);
        assert_true(clock4 <= clock3);
}

/* A limited process without swap: zero-page mappings are dropped, anonymous pages cannot go. */
static void test_limit_without_swap(void **state)
{
        (void)state;
        cow_engine *e = te_new_frames(64);
        struct cow_spawn_args args = { .max_resident = 2, .policy = COW_POLICY_FIFO };
        cow_pid p;
        assert_ok(cow_engine_spawn_args(e, &args, &p));
        uint64_t a = te_mmap_rw(e, p, 8 * PG);
        uint8_t buf[PG];
        for (int i = 0; i < 8; i++) {
                te_read(e, p, a + (uint64_t)i * PG, buf, sizeof(buf));
                assert_true(te_is_zero(buf, sizeof(buf)));
                assert_true(te_proc(e, p).zero_pages <= 2);
        }
        te_put64(e, p, a, 1);
        te_put64(e, p, a + PG, 2);
        struct cow_fault f;
        uint64_t v = 3;
        assert_rc(cow_engine_write(e, p, a + 2 * PG, &v, sizeof(v), &f), -ENOMEM);
        assert_int_equal(te_get64(e, p, a), 1);
        assert_int_equal(te_get64(e, p, a + PG), 2);
        cow_pid c = te_fork(e, p);
        assert_int_equal(te_proc(e, c).max_resident, 2);
        assert_verify(e);
        te_free(e);
}

/* Memory and swap full: -ENOMEM and nothing changes; the OOM killer, when on, ends the largest. */
static void test_out_of_memory(void **state)
{
        (void)state;
        cow_engine *e = new_swapping(4, 4, COW_POLICY_CLOCK);
        cow_pid p = te_spawn(e, NULL);
        uint64_t a = te_mmap_rw(e, p, 16 * PG);
        write_tagged(e, p, a, 8, 10); /* memory and swap are full */
        struct cow_fault f;
        uint8_t buf[PG];
        te_pattern(buf, sizeof(buf), 99);
        struct cow_sys_stats before = te_sys(e);
        assert_rc(cow_engine_write(e, p, a + 8 * PG, buf, sizeof(buf), &f), -ENOMEM);
        struct cow_sys_stats after = te_sys(e);
        assert_int_equal(after.swap_outs, before.swap_outs);
        assert_int_equal(after.frames_used, before.frames_used);
        assert_verify(e);
        /* Dropping one page leaves room to fault the others back in turn. */
        assert_ok(cow_engine_madvise(e, p, a + 7 * PG, PG, COW_MADV_DONTNEED));
        check_tagged(e, p, a, 7, 10);
        te_read(e, p, a + 8 * PG, buf, sizeof(buf));
        assert_true(te_is_zero(buf, sizeof(buf)));
        te_free(e);

        struct cow_engine_config cfg;
        cow_engine_config_init(&cfg);
        cfg.mem_bytes = 4 * PG;
        cfg.swap_slots = 4;
        cfg.oom_kill = true;
        assert_ok(cow_engine_new(&cfg, &e));
        te_track(e);
        cow_engine_set_swap(e, &swapmem_ops, &sm);
        cow_pid big = te_spawn(e, "big"), small = te_spawn(e, "small");
        uint64_t b = te_mmap_rw(e, big, 8 * PG), s = te_mmap_rw(e, small, 4 * PG);
        write_tagged(e, big, b, 7, 1);
        write_tagged(e, small, s, 1, 2);
        write_tagged(e, small, s + PG, 1, 3); /* nothing free anywhere: big is killed */
        cow_pid victims[4];
        assert_int_equal(cow_engine_oom_victims(e, victims, 4), 1);
        assert_int_equal(victims[0], big);
        assert_int_equal(cow_engine_oom_victims(e, victims, 4), 0);
        assert_int_equal(te_sys(e).oom_kills, 1);
        struct cow_proc_info info;
        assert_rc(cow_engine_proc_info(e, big, &info), -ESRCH);
        check_tagged(e, small, s, 2, 2);
        te_free(e);
}

/* Backend errors: typed, nothing changes, nothing is corrupted. */
static void test_backend_errors(void **state)
{
        (void)state;
        static const int write_errs[] = { -ENOSPC, -EIO };
        for (size_t k = 0; k < 2; k++) {
                cow_engine *e = new_swapping(4, 16, COW_POLICY_LRU);
                cow_pid p = te_spawn(e, NULL);
                uint64_t a = te_mmap_rw(e, p, 8 * PG);
                write_tagged(e, p, a, 4, 20);
                sm.fail_write = write_errs[k];
                uint8_t buf[PG];
                te_pattern(buf, sizeof(buf), 77);
                struct cow_fault f;
                struct cow_sys_stats before = te_sys(e);
                assert_rc(cow_engine_write(e, p, a + 4 * PG, buf, sizeof(buf), &f), write_errs[k]);
                assert_int_equal(te_sys(e).frames_used, before.frames_used);
                assert_int_equal(te_sys(e).swap_slots_used, 0);
                assert_int_equal(te_sys(e).swap_errors, before.swap_errors + 1);
                assert_verify(e);
                check_tagged(e, p, a, 4, 20);
                sm.fail_write = 0;
                write_tagged(e, p, a + 4 * PG, 1, 24);
                check_tagged(e, p, a, 5, 20);

                /* A failing read: the access fails, the page stays in swap, data intact. */
                sm.fail_read = -EIO;
                int rc = 0;
                for (uint64_t i = 0; i < 5 && rc == 0; i++) {
                        if (te_page(e, p, a + i * PG).flags & COW_PAGE_SWAPPED) {
                                rc = cow_engine_read(e, p, a + i * PG, buf, sizeof(buf), &f);
                                assert_true(te_page(e, p, a + i * PG).flags & COW_PAGE_SWAPPED);
                        }
                }
                assert_rc(rc, -EIO);
                assert_verify(e);
                sm.fail_read = 0;
                check_tagged(e, p, a, 5, 20);
                te_free(e);
        }
}

/* Pintos page-linear, page-shuffle and page-merge with children, memory < data. */
static uint64_t lcg(uint64_t *s)
{
        *s = *s * 6364136223846793005u + 1442695040888963407u;
        return *s >> 33;
}

static void test_pintos_pages(void **state)
{
        (void)state;
        enum { PAGES = 48, SIZE = PAGES * 4096 };
        cow_engine *e = new_swapping(16, 256, COW_POLICY_CLOCK);
        cow_pid p = te_spawn(e, "pintos");
        uint64_t a = te_mmap_rw(e, p, SIZE);
        uint8_t *model = malloc(SIZE), *got = malloc(SIZE);
        assert_non_null(model);
        assert_non_null(got);

        /* page-linear: fill linearly, read back. */
        for (size_t i = 0; i < SIZE; i++)
                model[i] = (uint8_t)(i * 7 + 3);
        /* An access is served whole or not at all, so one of more pages than
         * memory is refused: write in chunks smaller than memory. */
        struct cow_fault f;
        assert_rc(cow_engine_write(e, p, a, model, SIZE / 2, &f), -ENOMEM);
        for (size_t off = 0; off < SIZE; off += 4 * PG)
                te_write(e, p, a + off, model + off, 4 * PG);
        assert_verify(e);
        for (uint64_t i = 0; i < PAGES; i++) {
                te_read(e, p, a + i * PG, got, PG);
                assert_memory_equal(got, model + i * PG, PG);
        }

        /* page-shuffle: many random byte swaps all over the array. */
        uint64_t seed = 1;
        for (int k = 0; k < 2000; k++) {
                uint64_t x = lcg(&seed) % SIZE, y = lcg(&seed) % SIZE;
                uint8_t bx, by;
                te_read(e, p, a + x, &bx, 1);
                te_read(e, p, a + y, &by, 1);
                assert_int_equal(bx, model[x]);
                assert_int_equal(by, model[y]);
                te_write(e, p, a + x, &by, 1);
                te_write(e, p, a + y, &bx, 1);
                model[x] = by;
                model[y] = bx;
        }
        assert_verify(e);

        /* page-merge with parallel children: each child sorts its own chunk of the
         * shared (copy-on-write) array; the parent's stays as it was. */
        enum { KIDS = 4, CHUNK = SIZE / KIDS };
        cow_pid kids[KIDS];
        for (int k = 0; k < KIDS; k++)
                kids[k] = te_fork(e, p);
        uint8_t *chunk = malloc(CHUNK);
        assert_non_null(chunk);
        for (int k = 0; k < KIDS; k++) {
                te_read(e, kids[k], a + (uint64_t)k * CHUNK, chunk, CHUNK);
                unsigned counts[256] = { 0 };
                for (size_t i = 0; i < CHUNK; i++)
                        counts[chunk[i]]++;
                size_t at = 0;
                for (unsigned v = 0; v < 256; v++)
                        for (unsigned n = 0; n < counts[v]; n++)
                                chunk[at++] = (uint8_t)v;
                te_write(e, kids[k], a + (uint64_t)k * CHUNK, chunk, CHUNK);
                assert_verify(e);
        }
        for (int k = 0; k < KIDS; k++) {
                te_read(e, kids[k], a + (uint64_t)k * CHUNK, chunk, CHUNK);
                for (size_t i = 1; i < CHUNK; i++)
                        assert_true(chunk[i - 1] <= chunk[i]);
                te_read(e, kids[k], a + (uint64_t)((k + 1) % KIDS) * CHUNK, got, CHUNK);
                assert_memory_equal(got, model + (size_t)((k + 1) % KIDS) * CHUNK, CHUNK);
        }
        for (size_t off = 0; off < SIZE; off += 8 * PG)
                te_read(e, p, a + off, got + off, 8 * PG);
        assert_memory_equal(got, model, SIZE);
        for (int k = 0; k < KIDS; k++)
                te_exit(e, kids[k]);
        assert_verify(e);
        assert_true(te_sys(e).swap_outs > 0);
        free(chunk);
        free(model);
        free(got);
        te_free(e);
}

/* xv6 simpletest: a process larger than memory forks; the child checks and exits. */
static void test_xv6_simpletest(void **state)
{
        (void)state;
        cow_engine *e = new_swapping(8, 128, COW_POLICY_FIFO);
        cow_pid p = te_spawn(e, "simpletest");
        uint64_t a = te_mmap_rw(e, p, 24 * PG);
        for (uint64_t i = 0; i < 24; i++)
                te_put64(e, p, a + i * PG + 8 * (i % 500), i * 3 + 1);
        for (int round = 0; round < 3; round++) {
                cow_pid c = te_fork(e, p);
                for (uint64_t i = 0; i < 24; i++)
                        assert_int_equal(te_get64(e, c, a + i * PG + 8 * (i % 500)), i * 3 + 1);
                te_put64(e, c, a, 0xdead);
                te_exit(e, c);
                assert_verify(e);
        }
        for (uint64_t i = 0; i < 24; i++)
                assert_int_equal(te_get64(e, p, a + i * PG + 8 * (i % 500)), i * 3 + 1);
        te_free(e);
}

/* A checkpoint carries slots, entries, the swap cache and the swapped pages. */
static void test_checkpoint_with_swap(void **state)
{
        (void)state;
        cow_engine *e = new_swapping(8, 64, COW_POLICY_CLOCK);
        cow_pid p = te_spawn(e, NULL);
        uint64_t a = te_mmap_rw(e, p, 20 * PG);
        write_tagged(e, p, a, 20, 3);
        cow_pid c = te_fork(e, p);
        check_tagged(e, c, a, 4, 3);
        struct blob b = { 0 };
        assert_ok(cow_engine_save(e, blob_sink, &b));
        struct cow_engine_config cfg;
        cow_engine_config_init(&cfg);
        cfg.mem_bytes = 8 * PG;
        cfg.swap_slots = 64;
        cow_engine *r = NULL;
        const char *why = NULL;
        b.pos = 0;
        assert_rc(cow_engine_load(&cfg, blob_source, &b, &r, &why), -EINVAL);
        struct swapmem other;
        assert_ok(swapmem_init(&other, 64, PG));
        b.pos = 0;
        assert_ok(cow_engine_load_swap(&cfg, blob_source, &b, &swapmem_ops, &other, &r, &why));
        te_track(r);
        assert_verify(r);
        struct cow_sys_stats s1 = te_sys(e), s2 = te_sys(r);
        assert_memory_equal(&s1, &s2, sizeof(s1));
        struct cow_proc_stats p1 = te_proc(e, p), p2 = te_proc(r, p);
        assert_memory_equal(&p1, &p2, sizeof(p1));
        for (uint64_t i = 0; i < 20; i++) {
                struct cow_page_info x = te_page(e, c, a + i * PG), y = te_page(r, c, a + i * PG);
                assert_memory_equal(&x, &y, sizeof(x));
        }
        check_tagged(r, p, a, 20, 3);
        check_tagged(r, c, a, 20, 3);
        te_free(r);
        swapmem_fini(&other);
        free(b.p);
        te_free(e);
}

/* The backend of test_held_slots_are_not_rewritten: counts writes to slots a copy still reads. */
struct guarded {
        struct swapmem mem;
        bool in_use[20]; /* slots in use when the hold began */
        int rewrites;
};

static int guarded_write(void *ctx, uint64_t slot, const void *page, size_t len)
{
        struct guarded *g = ctx;
        if (slot < 20 && g->in_use[slot])
                g->rewrites++;
        return swapmem_write(&g->mem, slot, page, len);
}

static int guarded_read(void *ctx, uint64_t slot, void *page, size_t len)
{
        return swapmem_read(&((struct guarded *)ctx)->mem, slot, page, len);
}

/*
 * While held (a forked copy is saving a checkpoint that reads swap), no slot
 * in use at the hold is written again, although pages come in, are dirtied
 * and go out again, and swap fills up; verify holds throughout, a save of
 * the held engine is refused, and after the release the slots are reused.
 */
static void test_held_slots_are_not_rewritten(void **state)
{
        (void)state;
        static const struct cow_swap_ops guarded_ops = { .write = guarded_write,
                                                         .read = guarded_read };
        struct guarded g = { 0 };
        assert_ok(swapmem_init(&g.mem, 20, PG));
        cow_engine *e = new_with_backend(4, 20, COW_POLICY_FIFO, &guarded_ops, &g);

        cow_pid p = te_spawn(e, NULL);
        uint64_t a = te_mmap_rw(e, p, 12 * PG);
        write_tagged(e, p, a, 12, 100); /* 8 pages go to swap */
        unsigned held = 0;
        for (uint64_t i = 0; i < 12; i++) {
                struct cow_page_info x = te_page(e, p, a + i * PG);
                if (x.flags & COW_PAGE_SWAPPED) {
                        g.in_use[x.swap_slot] = true;
                        held++;
                }
        }
        assert_int_equal(held, 8);
        uint8_t copy[20 * PG];
        memcpy(copy, g.mem.data, sizeof(copy));

        cow_engine_swap_hold(e);
        assert_verify(e);
        /* Every page dirtied in turn: each swap-in frees its slot, each swap-out needs one. */
        write_tagged(e, p, a, 12, 200);
        assert_int_equal(g.rewrites, 0);
        for (unsigned s = 0; s < 20; s++)
                if (g.in_use[s])
                        assert_memory_equal(g.mem.data + s * PG, copy + s * PG, PG);
        struct blob b = { 0 };
        assert_rc(cow_engine_save(e, blob_sink, &b), -EBUSY);
        /* Every fresh slot is taken and the freed ones are held: swap is full. */
        uint8_t buf[PG];
        te_pattern(buf, sizeof(buf), 7);
        cow_pid q = te_spawn(e, NULL);
        uint64_t qa = te_mmap_rw(e, q, 4 * PG);
        int r = 0;
        for (uint64_t i = 0; i < 4 && r == 0; i++)
                r = cow_engine_write(e, q, qa + i * PG, buf, sizeof(buf), NULL);
        assert_rc(r, -ENOMEM);
        assert_int_equal(g.rewrites, 0);
        assert_verify(e);

        cow_engine_swap_release(e);
        assert_verify(e);
        for (uint64_t i = 0; i < 4; i++)
                te_write(e, q, qa + i * PG, buf, sizeof(buf));
        assert_true(g.rewrites > 0);
        check_tagged(e, p, a, 12, 200);
        assert_ok(cow_engine_save(e, blob_sink, &b));
        free(b.p);
        te_free(e);
        swapmem_fini(&g.mem);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_process_twice_the_memory),
                cmocka_unit_test(test_shared_page_swapped_once),
                cmocka_unit_test(test_shootdown_reaches_every_sharer),
                cmocka_unit_test(test_clean_page_not_written_twice),
                cmocka_unit_test(test_belady),
                cmocka_unit_test(test_limit_without_swap),
                cmocka_unit_test(test_out_of_memory),
                cmocka_unit_test(test_backend_errors),
                cmocka_unit_test(test_pintos_pages),
                cmocka_unit_test(test_xv6_simpletest),
                cmocka_unit_test(test_checkpoint_with_swap),
                cmocka_unit_test(test_held_slots_are_not_rewritten),
        };
        return cmocka_run_group_tests(tests, NULL, sm_teardown);
}
