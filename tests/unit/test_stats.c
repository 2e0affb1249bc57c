/* SPDX-License-Identifier: MIT */
/*
 * Statistics: every field of cow_proc_stats and cow_sys_stats moves as the
 * header defines it, step by step through one process's life and a fork.
 */
#include "engine_test.h"

#define RW (COW_PROT_READ | COW_PROT_WRITE)
#define A UINT64_C(0x100000)
#define R UINT64_C(0x200000)

struct want {
        uint64_t vsize_pages, rss, pss, uss, shared, zero, maps;
        uint64_t zmap, zfill, copy, reuse, segv, hits, misses;
};

static void check_proc(cow_engine *e, cow_pid pid, cow_pid ppid, const struct want *w,
                       int line)
{
        struct cow_proc_stats s = te_proc(e, pid);
        struct cow_proc_info info;

#define CHECK(field, value)                                                              \
        do {                                                                             \
                if ((uint64_t)(field) != (uint64_t)(value))                              \
                        fail_msg("line %d pid %u: %s = %llu, expected %llu", line, pid,  \
                                 #field, (unsigned long long)(field),                    \
                                 (unsigned long long)(value));                           \
        } while (0)
        CHECK(s.ppid, ppid);
        CHECK(s.vsize_bytes, w->vsize_pages * PG);
        CHECK(s.rss_pages, w->rss);
        CHECK(s.pss_bytes, w->pss);
        CHECK(s.uss_pages, w->uss);
        CHECK(s.shared_pages, w->shared);
        CHECK(s.zero_pages, w->zero);
        CHECK(s.maps, w->maps);
        CHECK(s.faults_zero_map, w->zmap);
        CHECK(s.faults_zero_fill, w->zfill);
        CHECK(s.faults_cow_copy, w->copy);
        CHECK(s.faults_cow_reuse, w->reuse);
        CHECK(s.faults_segv, w->segv);
        CHECK(s.tlb_hits, w->hits);
        CHECK(s.tlb_misses, w->misses);
        assert_ok(cow_engine_proc_info(e, pid, &info));
        CHECK(info.rss_pages, w->rss);
        CHECK(s.rss_pages, s.uss_pages + s.shared_pages);
#undef CHECK
}

static void test_proc_stats_timeline(void **state)
{
        cow_engine *e = te_new(64 * PG, 4096, 64, 0);
        cow_pid p = te_spawn(e, "p"), c;
        struct want wp = { 0 }, wc;
        struct cow_fault f;
        unsigned char buf[3 * 4096];
        uint64_t v = 1;

        (void)state;
        check_proc(e, p, 0, &wp, __LINE__);

        te_mmap(e, p, A, 5000, RW, false);
        wp.vsize_pages = 2, wp.maps = 1;
        check_proc(e, p, 0, &wp, __LINE__);
        te_mmap(e, p, R, 3 * PG, COW_PROT_READ, false);
        wp.vsize_pages = 5, wp.maps = 2;
        check_proc(e, p, 0, &wp, __LINE__);

        te_read(e, p, R, buf, 3 * PG);
        wp.zmap = 3, wp.zero = 3, wp.misses = 3;
        check_proc(e, p, 0, &wp, __LINE__);

        te_write(e, p, A, &v, sizeof v);
        wp.zfill = 1, wp.rss = 1, wp.uss = 1, wp.pss = PG, wp.misses = 4;
        check_proc(e, p, 0, &wp, __LINE__);
        te_write(e, p, A + PG, &v, sizeof v);
        wp.zfill = 2, wp.rss = 2, wp.uss = 2, wp.pss = 2 * PG, wp.misses = 5;
        check_proc(e, p, 0, &wp, __LINE__);
        te_read(e, p, A, buf, 8);
        wp.hits = 1;
        check_proc(e, p, 0, &wp, __LINE__);

        assert_rc(cow_engine_write(e, p, R + 8, &v, sizeof v, &f), -EFAULT);
        wp.segv = 1;
        /* a refused access may or may not count a lookup: resync the TLB counters */
        wp.hits = te_proc(e, p).tlb_hits;
        wp.misses = te_proc(e, p).tlb_misses;
        check_proc(e, p, 0, &wp, __LINE__);

        c = te_fork(e, p);
        wc = (struct want){ .vsize_pages = 5, .maps = 2, .rss = 2, .zero = 3, .shared = 2,
                            .pss = PG };
        check_proc(e, c, p, &wc, __LINE__);
        wp.shared = 2, wp.uss = 0, wp.pss = PG;
        check_proc(e, p, 0, &wp, __LINE__);

        te_write(e, c, A, &v, sizeof v);                 /* copy */
        wc.copy = 1, wc.uss = 1, wc.shared = 1, wc.pss = PG + PG / 2, wc.misses = 1;
        check_proc(e, c, p, &wc, __LINE__);
        wp.uss = 1, wp.shared = 1, wp.pss = PG + PG / 2;
        check_proc(e, p, 0, &wp, __LINE__);

        te_write(e, p, A + PG, &v, sizeof v);            /* copy: still shared with c */
        wp.copy = 1, wp.uss = 2, wp.shared = 0, wp.pss = 2 * PG;
        wp.hits = te_proc(e, p).tlb_hits, wp.misses = te_proc(e, p).tlb_misses;
        check_proc(e, p, 0, &wp, __LINE__);
        te_write(e, c, A + PG, &v, sizeof v);            /* reuse: c is the only user */
        wc.reuse = 1, wc.uss = 2, wc.shared = 0, wc.pss = 2 * PG, wc.misses = 2;
        check_proc(e, c, p, &wc, __LINE__);

        assert_ok(cow_engine_munmap(e, c, R, 3 * PG));
        wc.vsize_pages = 2, wc.maps = 1, wc.zero = 0;
        check_proc(e, c, p, &wc, __LINE__);
        assert_verify(e);

        {
                struct cow_sys_stats s = te_sys(e);

                assert_int_equal(s.page_size, 4096);
                assert_int_equal(s.frames_total, 64);
                assert_int_equal(s.frames_used, 4);
                assert_int_equal(s.frames_free, 60);
                assert_int_equal(s.zero_page_maps, 3);
                assert_int_equal(s.zero_maps, 3);
                assert_int_equal(s.zero_fills, 2);
                assert_int_equal(s.cow_copies, 2);
                assert_int_equal(s.cow_reuses, 1);
                assert_int_equal(s.segv_faults, 1);
                assert_int_equal(s.procs, 2);
                assert_int_equal(s.procs_created, 2);
                /*
                 * resident virtual pages: p 2 + 3 on the zero page, c 2; 4 frames.
                 * Zero-page mappings count as resident (served without a frame),
                 * the engine's reading of "resident virtual pages".
                 */
                assert_int_equal(s.bytes_saved, 3 * (int64_t)PG);
                assert_true(s.frame_meta_bytes > 0);
                assert_true(s.frame_meta_bytes < 256);
        }
        /* engine-wide fault counters are lifetime totals: exit does not lower them */
        te_exit(e, c);
        te_exit(e, p);
        {
                struct cow_sys_stats s = te_sys(e);

                assert_int_equal(s.zero_maps, 3);
                assert_int_equal(s.zero_fills, 2);
                assert_int_equal(s.cow_copies, 2);
                assert_int_equal(s.cow_reuses, 1);
                assert_int_equal(s.segv_faults, 1);
                assert_int_equal(s.procs, 0);
                assert_int_equal(s.procs_created, 2);
                assert_int_equal(s.zero_page_maps, 0);
                assert_int_equal(s.frames_used, 0);
        }
        assert_rc(cow_engine_proc_stats(e, p, &(struct cow_proc_stats){ 0 }), -ESRCH);
        te_free(e);
}

/*
 * bytes_saved = (resident virtual pages - frames used) * page size: 10
 * resident pages in 3 processes on 10 frames save 20 pages; a child's write
 * costs one of them. Shared pages mapped by two processes save one.
 */
static void test_bytes_saved(void **state)
{
        cow_engine *e = te_new_frames(64);
        cow_pid p = te_spawn(e, "p"), c1, c2;
        uint64_t a, s, v = 0;

        (void)state;
        a = te_mmap_rw(e, p, 10 * PG);
        for (uint64_t i = 0; i < 10; i++)
                te_put64(e, p, a + i * PG, i);
        assert_int_equal(te_sys(e).bytes_saved, 0);
        c1 = te_fork(e, p);
        c2 = te_fork(e, p);
        assert_int_equal(te_sys(e).bytes_saved, 20 * (int64_t)PG);
        te_put64(e, c1, a, 5);
        assert_int_equal(te_sys(e).bytes_saved, 19 * (int64_t)PG);
        te_exit(e, c2);
        assert_int_equal(te_sys(e).bytes_saved, 9 * (int64_t)PG);
        te_exit(e, c1);
        assert_int_equal(te_sys(e).bytes_saved, 0);

        s = te_mmap(e, p, 0, PG, RW, true);
        te_put64(e, p, s, 1);
        c1 = te_fork(e, p);
        te_read(e, c1, s, &v, sizeof v);
        assert_int_equal(v, 1);
        /* 11 resident pages in p, 11 in c1, on 11 frames */
        assert_int_equal(te_sys(e).frames_used, 11);
        assert_int_equal(te_sys(e).bytes_saved, 11 * (int64_t)PG);
        te_free(e);
}

/* zero_page_maps counts page-table entries on the zero page in every process. */
static void test_zero_page_maps(void **state)
{
        cow_engine *e = te_new_frames(16);
        cow_pid p = te_spawn(e, "p"), c;
        unsigned char buf[5 * 4096];
        uint64_t a;

        (void)state;
        a = te_mmap_rw(e, p, 8 * PG);
        te_read(e, p, a, buf, 5 * PG);
        assert_int_equal(te_sys(e).zero_page_maps, 5);
        c = te_fork(e, p);
        assert_int_equal(te_proc(e, c).zero_pages, 5);
        assert_int_equal(te_sys(e).zero_page_maps,
                         te_proc(e, p).zero_pages + te_proc(e, c).zero_pages);
        assert_int_equal(te_sys(e).zero_page_maps, 10);
        te_put64(e, c, a, 1);
        assert_int_equal(te_sys(e).zero_page_maps, 9);
        assert_int_equal(te_sys(e).zero_maps, 5);
        assert_ok(cow_engine_madvise(e, p, a, 2 * PG, COW_MADV_DONTNEED));
        assert_int_equal(te_proc(e, p).zero_pages, 3);
        assert_int_equal(te_sys(e).zero_page_maps, 7);
        te_exit(e, c);
        assert_int_equal(te_sys(e).zero_page_maps, 3);
        assert_verify(e);
        te_free(e);
}

/*
 * pt_bytes: touching a page in an empty region allocates page-table nodes,
 * touching it again does not; a far-away page needs more; the per-process
 * figure never exceeds the engine's.
 */
static void test_pt_bytes(void **state)
{
        cow_engine *e = te_new_frames(16);
        cow_pid p = te_spawn(e, "p");
        uint64_t p0, p1, p2, n1;

        (void)state;
        te_mmap(e, p, A, PG, RW, false);
        te_mmap(e, p, UINT64_C(0x4000000000), PG, RW, false);
        p0 = te_proc(e, p).pt_bytes;
        te_put64(e, p, A, 1);
        p1 = te_proc(e, p).pt_bytes;
        n1 = te_sys(e).pt_nodes;
        assert_true(p1 > p0);
        te_put64(e, p, A + 8, 2);
        assert_int_equal(te_proc(e, p).pt_bytes, p1);
        te_put64(e, p, UINT64_C(0x4000000000), 3);
        p2 = te_proc(e, p).pt_bytes;
        assert_true(p2 > p1);
        assert_true(te_sys(e).pt_nodes > n1);
        assert_true(te_sys(e).pt_bytes >= p2);
        te_exit(e, p);
        assert_int_equal(te_sys(e).pt_bytes, 0);
        te_free(e);
}

/* procs and procs_created: spawn, fork and exit. */
static void test_proc_counts(void **state)
{
        cow_engine *e = te_new_frames(16);
        cow_pid a, b, c;

        (void)state;
        assert_int_equal(te_sys(e).procs, 0);
        assert_int_equal(te_sys(e).procs_created, 0);
        a = te_spawn(e, "a");
        b = te_spawn(e, "b");
        c = te_fork(e, a);
        assert_int_equal(te_sys(e).procs, 3);
        assert_int_equal(te_sys(e).procs_created, 3);
        te_exit(e, b);
        te_exit(e, a);
        assert_int_equal(te_sys(e).procs, 1);
        assert_int_equal(te_sys(e).procs_created, 3);
        te_fork(e, c);
        assert_int_equal(te_sys(e).procs, 2);
        assert_int_equal(te_sys(e).procs_created, 4);
        te_free(e);
}

/* page_map: aligned address, live pid; unmapped pages are all-zero but for addr. */
static void test_page_map_args(void **state)
{
        cow_engine *e = te_new_frames(16);
        cow_pid p = te_spawn(e, "p");
        struct cow_page_info pi[2];

        (void)state;
        assert_rc(cow_engine_page_map(e, p, A + 1, 1, pi), -EINVAL);
        assert_rc(cow_engine_page_map(e, 999, A, 1, pi), -ESRCH);
        assert_ok(cow_engine_page_map(e, p, A, 0, pi));
        memset(pi, 0xff, sizeof pi);
        assert_ok(cow_engine_page_map(e, p, A, 2, pi));
        for (int i = 0; i < 2; i++) {
                assert_int_equal(pi[i].addr, A + (uint64_t)i * PG);
                assert_int_equal(pi[i].flags, 0);
                assert_int_equal(pi[i].frame, 0);
                assert_int_equal(pi[i].sharers, 0);
        }
        te_free(e);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_proc_stats_timeline),
                cmocka_unit_test(test_bytes_saved),
                cmocka_unit_test(test_zero_page_maps),
                cmocka_unit_test(test_pt_bytes),
                cmocka_unit_test(test_proc_counts),
                cmocka_unit_test(test_page_map_args),
        };

        return cmocka_run_group_tests(tests, NULL, te_free_all);
}
