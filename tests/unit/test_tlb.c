/* SPDX-License-Identifier: MIT */
/*
 * The per-process TLB: one lookup per page touched, counted as a hit or a
 * miss; set-associative shape with LRU replacement inside a set; COW breaks,
 * munmap, mprotect and DONTNEED invalidate exactly what they must; exit
 * flushes. cow_engine_verify() runs after every step (TLB vs page table).
 *
 * The set of a page is its virtual page number modulo the number of sets
 * (tlb_entries / tlb_ways), the conventional index; addresses below are
 * chosen so page i of a mapping at 0x100000 has vpn 256 + i.
 */
#include "engine_test.h"

#define RW (COW_PROT_READ | COW_PROT_WRITE)
#define AT UINT64_C(0x100000)

static bool in_tlb(cow_engine *e, cow_pid pid, uint64_t addr)
{
        return (te_page(e, pid, addr).flags & COW_PAGE_IN_TLB) != 0;
}

static void touch(cow_engine *e, cow_pid pid, uint64_t addr)
{
        uint8_t b;

        te_read(e, pid, addr, &b, 1);
}

/* Asserts the process's hit and miss counters, and that sys counters agree. */
static void assert_tlb(cow_engine *e, cow_pid pid, uint64_t hits, uint64_t misses)
{
        struct cow_proc_stats s = te_proc(e, pid);

        if (s.tlb_hits != hits || s.tlb_misses != misses)
                fail_msg("pid %u: tlb hits/misses %llu/%llu, expected %llu/%llu", pid,
                         (unsigned long long)s.tlb_hits, (unsigned long long)s.tlb_misses,
                         (unsigned long long)hits, (unsigned long long)misses);
}

static void test_hit_miss_counting(void **state)
{
        cow_engine *e = te_new(64 * PG, 4096, 64, 0);
        cow_pid p = te_spawn(e, "p");
        struct cow_page_info pi[4];
        unsigned char buf[3 * 4096];
        uint64_t a, v = 1;

        (void)state;
        a = te_mmap(e, p, AT, 4 * PG, RW, false);
        assert_tlb(e, p, 0, 0);
        te_write(e, p, a, &v, sizeof v);                 /* p0 miss */
        assert_tlb(e, p, 0, 1);
        assert_true(in_tlb(e, p, a));
        te_write(e, p, a + 8, &v, sizeof v);             /* p0 hit */
        te_read(e, p, a, buf, 8);                        /* p0 hit */
        assert_tlb(e, p, 2, 1);
        te_read(e, p, a + 100, buf, 3 * PG - 200);       /* p0 hit, p1 miss, p2 miss */
        assert_tlb(e, p, 3, 3);
        te_read(e, p, a + 2 * PG - 1, buf, 2);           /* p1 hit, p2 hit */
        assert_tlb(e, p, 5, 3);

        /* introspection moves nothing */
        assert_ok(cow_engine_page_map(e, p, a, 4, pi));
        assert_true(pi[0].flags & COW_PAGE_IN_TLB);
        assert_true(pi[1].flags & COW_PAGE_IN_TLB);
        assert_true(pi[2].flags & COW_PAGE_IN_TLB);
        assert_false(pi[3].flags & COW_PAGE_IN_TLB);
        assert_tlb(e, p, 5, 3);

        /* zero page then zero fill: the entry must follow the new frame */
        touch(e, p, a + 3 * PG);                         /* p3 miss */
        assert_tlb(e, p, 5, 4);
        assert_true(in_tlb(e, p, a + 3 * PG));
        te_put64(e, p, a + 3 * PG, 0xfeed);
        assert_int_equal(te_get64(e, p, a + 3 * PG), 0xfeed);
        {
                struct cow_sys_stats s = te_sys(e);
                struct cow_proc_stats ps = te_proc(e, p);

                assert_int_equal(s.tlb_hits, ps.tlb_hits);
                assert_int_equal(s.tlb_misses, ps.tlb_misses);
        }
        te_free(e);
}

/*
 * 8 entries, 2 ways: 4 sets. Pages 0..7 all fit. Page 8 shares set 0 with
 * pages 0 and 4 and evicts page 0 (the set's LRU). After a hit on page 1,
 * page 12 evicts page 4 - a fully associative LRU would evict page 2.
 */
static void test_set_associative_shape(void **state)
{
        cow_engine *e = te_new(64 * PG, 4096, 8, 2);
        cow_pid p = te_spawn(e, "p");
        uint64_t a;
        int n = 0;

        (void)state;
        a = te_mmap(e, p, AT, 16 * PG, COW_PROT_READ, false);
        for (uint64_t i = 0; i < 8; i++)
                touch(e, p, a + i * PG);
        assert_tlb(e, p, 0, 8);
        for (uint64_t i = 0; i < 8; i++)
                assert_true(in_tlb(e, p, a + i * PG));
        touch(e, p, a + 8 * PG);
        assert_false(in_tlb(e, p, a));
        assert_true(in_tlb(e, p, a + 4 * PG));
        assert_true(in_tlb(e, p, a + 8 * PG));
        touch(e, p, a + PG);                             /* hit */
        touch(e, p, a + 12 * PG);
        assert_tlb(e, p, 1, 10);
        assert_false(in_tlb(e, p, a + 4 * PG));
        assert_true(in_tlb(e, p, a + 8 * PG));
        assert_true(in_tlb(e, p, a + 12 * PG));
        assert_true(in_tlb(e, p, a + 2 * PG));
        for (uint64_t i = 0; i < 16; i++)
                n += in_tlb(e, p, a + i * PG);
        assert_int_equal(n, 8);
        te_free(e);
}

/* Direct mapped (1 way, 8 sets): pages 0 and 8 evict each other every time. */
static void test_direct_mapped_conflicts(void **state)
{
        cow_engine *e = te_new(64 * PG, 4096, 8, 1);
        cow_pid p = te_spawn(e, "p");
        uint64_t a;

        (void)state;
        a = te_mmap(e, p, AT, 16 * PG, COW_PROT_READ, false);
        for (int round = 0; round < 3; round++) {
                touch(e, p, a);
                touch(e, p, a + 8 * PG);
        }
        assert_tlb(e, p, 0, 6);
        assert_false(in_tlb(e, p, a));
        assert_true(in_tlb(e, p, a + 8 * PG));
        touch(e, p, a + PG);
        touch(e, p, a + 8 * PG);
        assert_tlb(e, p, 1, 7);
        te_free(e);
}

/* Fully associative, 4 entries: a hit refreshes recency; the LRU entry goes. */
static void test_lru_order(void **state)
{
        cow_engine *e = te_new(64 * PG, 4096, 4, 0);
        cow_pid p = te_spawn(e, "p");
        uint64_t a;

        (void)state;
        a = te_mmap(e, p, AT, 8 * PG, COW_PROT_READ, false);
        for (uint64_t i = 0; i < 4; i++)
                touch(e, p, a + i * PG);
        touch(e, p, a);                                  /* hit: p0 is now MRU */
        touch(e, p, a + 4 * PG);                         /* evicts p1 */
        assert_true(in_tlb(e, p, a));
        assert_false(in_tlb(e, p, a + PG));
        assert_true(in_tlb(e, p, a + 2 * PG));
        assert_true(in_tlb(e, p, a + 3 * PG));
        assert_true(in_tlb(e, p, a + 4 * PG));
        touch(e, p, a + PG);                             /* miss, evicts p2 */
        assert_false(in_tlb(e, p, a + 2 * PG));
        assert_true(in_tlb(e, p, a + 3 * PG));
        assert_tlb(e, p, 1, 6);
        te_free(e);

        /* ways == entries: one set, the same behaviour as fully associative */
        e = te_new(64 * PG, 4096, 4, 4);
        p = te_spawn(e, "p");
        a = te_mmap(e, p, AT, 8 * PG, COW_PROT_READ, false);
        for (uint64_t i = 0; i < 4; i++)
                touch(e, p, a + i * PG);
        touch(e, p, a);
        touch(e, p, a + 4 * PG);
        assert_true(in_tlb(e, p, a));
        assert_false(in_tlb(e, p, a + PG));
        assert_true(in_tlb(e, p, a + 2 * PG));
        assert_tlb(e, p, 1, 5);
        te_free(e);
}

/*
 * A COW break invalidates only the faulting process's entry: the parent's
 * entry for the page stays, hits, and still reads the parent's bytes.
 */
static void test_cow_break_invalidates_only_faulter(void **state)
{
        cow_engine *e = te_new(64 * PG, 4096, 64, 0);
        cow_pid p = te_spawn(e, "p"), c;
        struct cow_proc_stats s0, s1;
        uint64_t a;

        (void)state;
        a = te_mmap(e, p, AT, 2 * PG, RW, false);
        te_put64(e, p, a, 111);
        te_put64(e, p, a + PG, 112);
        c = te_fork(e, p);
        /* a new process starts with an empty TLB */
        assert_false(in_tlb(e, c, a));
        assert_tlb(e, c, 0, 0);
        assert_int_equal(te_get64(e, p, a), 111);
        assert_int_equal(te_get64(e, c, a), 111);
        assert_true(in_tlb(e, p, a));
        assert_true(in_tlb(e, c, a));

        te_put64(e, c, a, 222);                          /* COW copy in the child */
        assert_int_equal(te_proc(e, c).faults_cow_copy, 1);
        assert_true(in_tlb(e, p, a));
        s0 = te_proc(e, p);
        assert_int_equal(te_get64(e, p, a), 111);
        s1 = te_proc(e, p);
        assert_int_equal(s1.tlb_hits, s0.tlb_hits + 1);
        assert_int_equal(s1.tlb_misses, s0.tlb_misses);
        assert_int_equal(te_get64(e, c, a), 222);
        assert_true(te_page(e, c, a).frame != te_page(e, p, a).frame);

        /* the parent's own write reuses its frame; its stale read-only entry must not be used */
        te_put64(e, p, a, 333);
        assert_int_equal(te_proc(e, p).faults_cow_reuse, 1);
        assert_int_equal(te_get64(e, p, a), 333);
        assert_int_equal(te_get64(e, c, a), 222);
        /* page 1 untouched by all this in both TLBs */
        assert_int_equal(te_get64(e, p, a + PG), 112);
        assert_int_equal(te_get64(e, c, a + PG), 112);
        te_free(e);
}

/* A fork write-protects the parent: a writable entry cached before fork must not survive. */
static void test_fork_write_protects_parent_entry(void **state)
{
        cow_engine *e = te_new(64 * PG, 4096, 64, 0);
        cow_pid p = te_spawn(e, "p"), c;
        uint64_t a;

        (void)state;
        a = te_mmap(e, p, AT, PG, RW, false);
        te_put64(e, p, a, 1);                            /* writable entry in p's TLB */
        c = te_fork(e, p);
        te_put64(e, p, a, 2);                            /* must copy or reuse, not write through */
        assert_int_equal(te_get64(e, c, a), 1);
        assert_int_equal(te_get64(e, p, a), 2);
        assert_int_equal(te_proc(e, p).faults_cow_copy, 1);
        te_free(e);
}

static void test_munmap_mprotect_invalidate(void **state)
{
        cow_engine *e = te_new(64 * PG, 4096, 64, 0);
        cow_pid p = te_spawn(e, "p");
        struct cow_mmap_args args = { .addr = AT + PG, .length = PG, .prot = RW, .fixed = true };
        struct cow_proc_stats s0, s1;
        struct cow_fault f;
        uint64_t a, got, v = 9;

        (void)state;
        a = te_mmap(e, p, AT, 4 * PG, RW, false);
        for (uint64_t i = 0; i < 4; i++)
                te_put64(e, p, a + i * PG, 50 + i);
        for (uint64_t i = 0; i < 4; i++)
                assert_true(in_tlb(e, p, a + i * PG));

        assert_ok(cow_engine_munmap(e, p, a + PG, PG));
        assert_verify(e);
        assert_false(in_tlb(e, p, a + PG));
        assert_true(in_tlb(e, p, a));
        assert_true(in_tlb(e, p, a + 2 * PG));
        /* a new mapping at the same place: a miss, and zeros, never the old frame */
        assert_ok(cow_engine_mmap(e, p, &args, &got));
        s0 = te_proc(e, p);
        assert_int_equal(te_get64(e, p, a + PG), 0);
        s1 = te_proc(e, p);
        assert_int_equal(s1.tlb_misses, s0.tlb_misses + 1);

        assert_ok(cow_engine_mprotect(e, p, a + 2 * PG, 2 * PG, COW_PROT_READ));
        assert_verify(e);
        assert_false(in_tlb(e, p, a + 2 * PG));
        assert_false(in_tlb(e, p, a + 3 * PG));
        assert_true(in_tlb(e, p, a));
        te_expect_fault(cow_engine_write(e, p, a + 3 * PG, &v, sizeof v, &f), &f,
                        COW_SEGV_ACCERR, a + 3 * PG);
        s0 = te_proc(e, p);
        assert_int_equal(te_get64(e, p, a + 2 * PG), 52);
        assert_int_equal(te_get64(e, p, a + 2 * PG), 52);
        s1 = te_proc(e, p);
        assert_int_equal(s1.tlb_misses, s0.tlb_misses + 1);
        assert_int_equal(s1.tlb_hits, s0.tlb_hits + 1);

        /* DONTNEED: no stale translation to the dropped frame */
        assert_ok(cow_engine_madvise(e, p, a, PG, COW_MADV_DONTNEED));
        assert_verify(e);
        assert_int_equal(te_get64(e, p, a), 0);
        te_free(e);
}

/* Exit flushes the TLB; the engine-wide counters keep exited processes' lookups. */
static void test_exit_keeps_sys_counters(void **state)
{
        cow_engine *e = te_new(64 * PG, 4096, 8, 2);
        cow_pid p = te_spawn(e, "p"), q = te_spawn(e, "q");
        struct cow_sys_stats s0, s1;
        uint64_t a, b;

        (void)state;
        a = te_mmap(e, p, AT, 4 * PG, COW_PROT_READ, false);
        b = te_mmap(e, q, AT, 4 * PG, COW_PROT_READ, false);
        for (uint64_t i = 0; i < 4; i++) {
                touch(e, p, a + i * PG);
                touch(e, q, b + i * PG);
                touch(e, q, b + i * PG);
        }
        /* TLBs are per process: q's traffic did not evict p's entries */
        for (uint64_t i = 0; i < 4; i++)
                assert_true(in_tlb(e, p, a + i * PG));
        assert_tlb(e, p, 0, 4);
        assert_tlb(e, q, 4, 4);
        s0 = te_sys(e);
        assert_int_equal(s0.tlb_hits, 4);
        assert_int_equal(s0.tlb_misses, 8);
        te_exit(e, p);
        s1 = te_sys(e);
        assert_int_equal(s1.tlb_hits, 4);
        assert_int_equal(s1.tlb_misses, 8);
        te_free(e);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hit_miss_counting),
                cmocka_unit_test(test_set_associative_shape),
                cmocka_unit_test(test_direct_mapped_conflicts),
                cmocka_unit_test(test_lru_order),
                cmocka_unit_test(test_cow_break_invalidates_only_faulter),
                cmocka_unit_test(test_fork_write_protects_parent_entry),
                cmocka_unit_test(test_munmap_mprotect_invalidate),
                cmocka_unit_test(test_exit_keeps_sys_counters),
        };

        return cmocka_run_group_tests(tests, NULL, te_free_all);
}
