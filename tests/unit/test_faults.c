/* SPDX-License-Identifier: MIT */
/*
 * The fault path: SEGV_MAPERR and SEGV_ACCERR with exact addresses, the
 * all-or-nothing rule for multi-page accesses, the zero page, zero fill,
 * COW copy against reuse, shared mappings across fork, and out of memory.
 */
#include "engine_test.h"

#define RW (COW_PROT_READ | COW_PROT_WRITE)

static void test_maperr_exact_address(void **state)
{
        cow_engine *e = te_new_frames(16);
        cow_pid p = te_spawn(e, "p");
        struct cow_fault f = { COW_FAULT_NONE, 0 };
        unsigned char buf[64] = { 0 };
        uint64_t a;

        (void)state;
        te_expect_fault(cow_engine_read(e, p, 0x123456, buf, 8, &f), &f, COW_SEGV_MAPERR,
                        0x123456);
        te_expect_fault(cow_engine_write(e, p, 0x7, buf, 8, &f), &f, COW_SEGV_MAPERR, 0x7);
        a = te_mmap_rw(e, p, 2 * PG);
        /* starts inside, runs off the end: the first byte after the mapping */
        te_expect_fault(cow_engine_write(e, p, a + 2 * PG - 10, buf, 20, &f), &f,
                        COW_SEGV_MAPERR, a + 2 * PG);
        te_expect_fault(cow_engine_read(e, p, a - 4, buf, 20, &f), &f, COW_SEGV_MAPERR, a - 4);
        assert_int_equal(te_proc(e, p).faults_segv, 4);
        assert_int_equal(te_sys(e).segv_faults, 4);
        /* the faulting write before the end changed nothing */
        assert_int_equal(te_used(e), 0);
        /* a NULL fault pointer is allowed */
        assert_rc(cow_engine_read(e, p, 0x123456, buf, 8, NULL), -EFAULT);
        /* no such process */
        assert_rc(cow_engine_read(e, 4242, a, buf, 8, &f), -ESRCH);
        assert_rc(cow_engine_write(e, 4242, a, buf, 8, &f), -ESRCH);
        assert_verify(e);
        te_free(e);
}

static void test_accerr(void **state)
{
        cow_engine *e = te_new_frames(16);
        cow_pid p = te_spawn(e, "p");
        struct cow_fault f = { COW_FAULT_NONE, 0 };
        uint64_t ro, none, v = 1;

        (void)state;
        ro = te_mmap(e, p, 0, 2 * PG, COW_PROT_READ, false);
        none = te_mmap(e, p, 0x800000, PG, COW_PROT_NONE, false);
        te_expect_fault(cow_engine_write(e, p, ro + PG + 3, &v, sizeof v, &f), &f,
                        COW_SEGV_ACCERR, ro + PG + 3);
        assert_int_equal(te_get64(e, p, ro + PG), 0);
        te_expect_fault(cow_engine_read(e, p, none + 5, &v, 1, &f), &f, COW_SEGV_ACCERR,
                        none + 5);
        te_expect_fault(cow_engine_write(e, p, none, &v, 1, &f), &f, COW_SEGV_ACCERR, none);
        assert_int_equal(te_proc(e, p).faults_segv, 3);
        assert_int_equal(te_used(e), 0);
        assert_false(te_page(e, p, none).flags & COW_PAGE_PRESENT);
        assert_verify(e);
        te_free(e);
}

/*
 * A 4-page write starting mid-page whose 3rd page is read-only: -EFAULT at
 * the 3rd page's first byte, and pages 1 and 2 keep their old bytes even
 * though they were writable; also when those pages are COW-shared after a
 * fork (no copy may happen) and when the 3rd page is a hole (MAPERR).
 */
static void test_multipage_fault_changes_nothing(void **state)
{
        cow_engine *e = te_new_frames(64);
        cow_pid p = te_spawn(e, "p"), c;
        struct cow_fault f = { COW_FAULT_NONE, 0 };
        unsigned char old[4 * 4096], buf[4 * 4096], back[4 * 4096];
        struct cow_proc_stats ps0, ps1;
        uint64_t a;

        (void)state;
        a = te_mmap_rw(e, p, 4 * PG);
        te_pattern(old, sizeof old, 1);
        te_write(e, p, a, old, sizeof old);
        assert_ok(cow_engine_mprotect(e, p, a + 2 * PG, PG, COW_PROT_READ));
        te_pattern(buf, sizeof buf, 2);
        ps0 = te_proc(e, p);
        te_expect_fault(cow_engine_write(e, p, a + 100, buf, 3 * PG, &f), &f, COW_SEGV_ACCERR,
                        a + 2 * PG);
        assert_verify(e);
        te_read(e, p, a, back, sizeof back);
        assert_memory_equal(back, old, sizeof old);
        ps1 = te_proc(e, p);
        assert_int_equal(ps1.faults_segv, ps0.faults_segv + 1);
        assert_int_equal(ps1.faults_zero_fill, ps0.faults_zero_fill);

        /* the same after fork: pages 0 and 1 are COW; no copy may be made */
        c = te_fork(e, p);
        assert_int_equal(te_used(e), 4);
        te_expect_fault(cow_engine_write(e, c, a + 100, buf, 3 * PG, &f), &f, COW_SEGV_ACCERR,
                        a + 2 * PG);
        assert_verify(e);
        assert_int_equal(te_used(e), 4);
        assert_int_equal(te_proc(e, c).faults_cow_copy, 0);
        assert_int_equal(te_page(e, c, a).sharers, 2);
        te_read(e, c, a, back, sizeof back);
        assert_memory_equal(back, old, sizeof old);

        /* a hole as the 3rd page: MAPERR at its first byte */
        assert_ok(cow_engine_mprotect(e, c, a + 2 * PG, PG, RW));
        assert_ok(cow_engine_munmap(e, c, a + 2 * PG, PG));
        te_expect_fault(cow_engine_write(e, c, a + 100, buf, 3 * PG, &f), &f, COW_SEGV_MAPERR,
                        a + 2 * PG);
        assert_int_equal(te_used(e), 4);
        te_expect_fault(cow_engine_read(e, c, a + 100, back, 3 * PG, &f), &f, COW_SEGV_MAPERR,
                        a + 2 * PG);
        te_read(e, c, a, back, 2 * PG);
        assert_memory_equal(back, old, 2 * PG);
        assert_verify(e);
        te_free(e);
}

static void test_zero_page_read(void **state)
{
        cow_engine *e = te_new_frames(16);
        cow_pid p = te_spawn(e, "p");
        unsigned char buf[8 * 4096];
        struct cow_proc_stats s;
        uint64_t a;

        (void)state;
        a = te_mmap_rw(e, p, 8 * PG);
        memset(buf, 0xcc, sizeof buf);
        te_read(e, p, a, buf, sizeof buf);
        assert_true(te_is_zero(buf, sizeof buf));
        s = te_proc(e, p);
        assert_int_equal(s.faults_zero_map, 8);
        assert_int_equal(s.faults_zero_fill, 0);
        assert_int_equal(s.zero_pages, 8);
        assert_int_equal(s.rss_pages, 0);
        assert_int_equal(te_used(e), 0);
        for (int i = 0; i < 8; i++) {
                struct cow_page_info pi = te_page(e, p, a + (uint64_t)i * PG);

                assert_true(pi.flags & COW_PAGE_PRESENT);
                assert_true(pi.flags & COW_PAGE_ZERO);
                assert_false(pi.flags & COW_PAGE_WRITABLE);
                assert_int_equal(pi.frame, 0);
        }
        /* a second read is no fault */
        te_read(e, p, a, buf, sizeof buf);
        assert_int_equal(te_proc(e, p).faults_zero_map, 8);

        /* writing a zero-page page allocates a cleared frame */
        te_put64(e, p, a + 3 * PG + 16, 0x55);
        s = te_proc(e, p);
        assert_int_equal(s.faults_zero_fill, 1);
        assert_int_equal(s.faults_cow_copy, 0);
        assert_int_equal(s.zero_pages, 7);
        assert_int_equal(s.rss_pages, 1);
        assert_int_equal(te_used(e), 1);
        te_read(e, p, a + 3 * PG, buf, PG);
        assert_int_equal(buf[16], 0x55);
        buf[16] = 0;
        assert_true(te_is_zero(buf, PG));
        assert_true(te_page(e, p, a + 3 * PG).frame != 0);
        /* the zero page itself is still zero for everyone else */
        te_read(e, p, a + 4 * PG, buf, PG);
        assert_true(te_is_zero(buf, PG));
        te_free(e);
}

static void test_zero_fill(void **state)
{
        cow_engine *e = te_new_frames(16);
        cow_pid p = te_spawn(e, "p");
        unsigned char buf[4096];
        struct cow_proc_stats s;
        uint64_t a;

        (void)state;
        a = te_mmap_rw(e, p, 2 * PG);
        te_put64(e, p, a + 100, 0x1122334455667788);
        s = te_proc(e, p);
        assert_int_equal(s.faults_zero_fill, 1);
        assert_int_equal(s.faults_zero_map, 0);
        assert_int_equal(s.zero_pages, 0);
        assert_int_equal(te_used(e), 1);
        te_read(e, p, a, buf, sizeof buf);
        assert_int_equal(te_get64(e, p, a + 100), 0x1122334455667788);
        memset(buf + 100, 0, 8);
        assert_true(te_is_zero(buf, sizeof buf));
        /* writing again is no fault */
        te_put64(e, p, a + 200, 1);
        assert_int_equal(te_proc(e, p).faults_zero_fill, 1);
        assert_true(te_page(e, p, a).flags & COW_PAGE_WRITABLE);
        assert_false(te_page(e, p, a).flags & COW_PAGE_COW);
        te_free(e);
}

/* After fork a zero-page page is still the zero page: a write zero-fills, no COW copy. */
static void test_zero_page_after_fork(void **state)
{
        cow_engine *e = te_new_frames(16);
        cow_pid p = te_spawn(e, "p"), c;
        uint64_t a, v = 0;

        (void)state;
        a = te_mmap_rw(e, p, PG);
        te_read(e, p, a, &v, sizeof v);
        c = te_fork(e, p);
        assert_true(te_page(e, c, a).flags & COW_PAGE_ZERO);
        te_put64(e, c, a, 3);
        assert_int_equal(te_proc(e, c).faults_zero_fill, 1);
        assert_int_equal(te_proc(e, c).faults_cow_copy, 0);
        assert_int_equal(te_get64(e, p, a), 0);
        assert_true(te_page(e, p, a).flags & COW_PAGE_ZERO);
        assert_int_equal(te_used(e), 1);
        te_free(e);
}

static void test_cow_copy_and_reuse(void **state)
{
        cow_engine *e = te_new_frames(16);
        cow_pid p = te_spawn(e, "p"), c;
        struct cow_sys_stats s0, s1;
        uint64_t a;

        (void)state;
        a = te_mmap_rw(e, p, PG);
        te_put64(e, p, a, 1);
        c = te_fork(e, p);
        assert_true(te_page(e, p, a).flags & COW_PAGE_COW);
        assert_true(te_page(e, c, a).flags & COW_PAGE_COW);
        s0 = te_sys(e);
        te_put64(e, c, a, 2);
        s1 = te_sys(e);
        assert_int_equal(s1.cow_copies, s0.cow_copies + 1);
        assert_int_equal(s1.cow_reuses, s0.cow_reuses);
        assert_int_equal(s1.frames_used, s0.frames_used + 1);
        assert_int_equal(te_proc(e, c).faults_cow_copy, 1);
        assert_true(te_page(e, c, a).flags & COW_PAGE_WRITABLE);
        assert_false(te_page(e, c, a).flags & COW_PAGE_COW);
        /* the parent is now alone on the old frame: reuse, no frame */
        te_put64(e, p, a, 3);
        s0 = te_sys(e);
        assert_int_equal(s0.cow_copies, s1.cow_copies);
        assert_int_equal(s0.cow_reuses, s1.cow_reuses + 1);
        assert_int_equal(s0.frames_used, s1.frames_used);
        assert_int_equal(te_proc(e, p).faults_cow_reuse, 1);
        assert_int_equal(te_proc(e, p).faults_cow_copy, 0);
        assert_int_equal(te_get64(e, p, a), 3);
        assert_int_equal(te_get64(e, c, a), 2);
        te_free(e);
}

/* A read-only private page is shared by fork and never copied; mprotect RW makes it COW. */
static void test_readonly_private_fork(void **state)
{
        cow_engine *e = te_new_frames(16);
        cow_pid p = te_spawn(e, "p"), c;
        struct cow_fault f;
        uint64_t a, v = 4;

        (void)state;
        a = te_mmap_rw(e, p, PG);
        te_put64(e, p, a, 1);
        assert_ok(cow_engine_mprotect(e, p, a, PG, COW_PROT_READ));
        c = te_fork(e, p);
        te_expect_fault(cow_engine_write(e, c, a, &v, sizeof v, &f), &f, COW_SEGV_ACCERR, a);
        assert_false(te_page(e, c, a).flags & COW_PAGE_COW);
        assert_ok(cow_engine_mprotect(e, c, a, PG, RW));
        assert_verify(e);
        assert_true(te_page(e, c, a).flags & COW_PAGE_COW);
        te_put64(e, c, a, 2);
        assert_int_equal(te_proc(e, c).faults_cow_copy, 1);
        assert_int_equal(te_used(e), 2);
        assert_int_equal(te_get64(e, p, a), 1);
        te_free(e);
}

static void test_shared_mapping_across_fork(void **state)
{
        cow_engine *e = te_new_frames(16);
        cow_pid p = te_spawn(e, "p"), c;
        char msg[16];
        uint64_t s, v = 0;

        (void)state;
        s = te_mmap(e, p, 0, 2 * PG, RW, true);
        /* a first read of a shared page allocates a cleared frame */
        te_read(e, p, s + PG, &v, sizeof v);
        assert_int_equal(v, 0);
        assert_int_equal(te_proc(e, p).faults_zero_fill, 1);
        assert_int_equal(te_proc(e, p).faults_zero_map, 0);
        assert_int_equal(te_used(e), 1);
        assert_true(te_page(e, p, s + PG).flags & COW_PAGE_SHARED);
        assert_false(te_page(e, p, s + PG).flags & COW_PAGE_ZERO);

        te_write(e, p, s, "hello", 6);
        assert_int_equal(te_used(e), 2);
        c = te_fork(e, p);
        te_read(e, c, s, msg, 6);
        assert_string_equal(msg, "hello");
        te_write(e, c, s, "world", 6);
        assert_int_equal(te_proc(e, c).faults_cow_copy, 0);
        assert_int_equal(te_used(e), 2);
        te_read(e, p, s, msg, 6);
        assert_string_equal(msg, "world");
        assert_int_equal(te_page(e, p, s).frame, te_page(e, c, s).frame);
        assert_true(te_page(e, c, s).flags & COW_PAGE_WRITABLE);
        assert_false(te_page(e, c, s).flags & COW_PAGE_COW);
        /* the parent exits: the child keeps the data */
        te_exit(e, p);
        te_read(e, c, s, msg, 6);
        assert_string_equal(msg, "world");
        assert_int_equal(te_used(e), 2);
        te_exit(e, c);
        assert_int_equal(te_used(e), 0);
        te_free(e);
}

/* MAP_SHARED mappings made after a fork belong to one process each, even at the same address. */
static void test_shared_after_fork_independent(void **state)
{
        cow_engine *e = te_new_frames(16);
        cow_pid p = te_spawn(e, "p"), c;
        uint64_t a, b;

        (void)state;
        c = te_fork(e, p);
        a = te_mmap(e, p, 0x200000, PG, RW, true);
        b = te_mmap(e, c, 0x200000, PG, RW, true);
        te_put64(e, p, a, 1);
        te_put64(e, c, b, 2);
        assert_int_equal(te_get64(e, p, a), 1);
        assert_int_equal(te_get64(e, c, b), 2);
        assert_int_equal(te_used(e), 2);
        te_free(e);
}

/*
 * Out of memory on a COW break and on a shared first touch: -ENOMEM, and
 * the bytes, frames and counters are what they were.
 */
static void test_oom_leaves_everything(void **state)
{
        cow_engine *e = te_new_frames(4);
        cow_pid p = te_spawn(e, "p"), c;
        unsigned char buf[2 * 4096], back[2 * 4096];
        struct cow_proc_stats cs0, cs1;
        struct cow_sys_stats s0, s1;
        struct cow_fault f;
        uint64_t a, s;

        (void)state;
        a = te_mmap_rw(e, p, 3 * PG);
        s = te_mmap(e, p, 0, PG, RW, true);
        te_pattern(buf, sizeof buf, 3);
        te_write(e, p, a, buf, 2 * PG);
        te_put64(e, p, a + 2 * PG, 5);
        c = te_fork(e, p);
        /* 3 used, 1 free: the child's 2-page write needs 2 copies */
        cs0 = te_proc(e, c);
        s0 = te_sys(e);
        te_pattern(back, sizeof back, 4);
        assert_rc(cow_engine_write(e, c, a + 10, back, PG, &f), -ENOMEM);
        assert_verify(e);
        cs1 = te_proc(e, c);
        s1 = te_sys(e);
        assert_int_equal(s1.frames_used, s0.frames_used);
        assert_int_equal(s1.cow_copies, s0.cow_copies);
        assert_int_equal(cs1.faults_cow_copy, cs0.faults_cow_copy);
        assert_int_equal(cs1.rss_pages, cs0.rss_pages);
        te_read(e, c, a, back, sizeof back);
        assert_memory_equal(back, buf, sizeof buf);
        /* the last frame goes to the shared page; then a shared first read fails too */
        te_put64(e, c, a + 2 * PG, 6);
        assert_int_equal(te_used(e), 4);
        assert_rc(cow_engine_read(e, p, s, back, 8, &f), -ENOMEM);
        assert_false(te_page(e, p, s).flags & COW_PAGE_PRESENT);
        assert_verify(e);
        te_exit(e, c);
        assert_int_equal(te_used(e), 3);
        te_read(e, p, s, back, 8);
        assert_true(te_is_zero(back, 8));
        assert_int_equal(te_used(e), 4);
        te_free(e);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_maperr_exact_address),
                cmocka_unit_test(test_accerr),
                cmocka_unit_test(test_multipage_fault_changes_nothing),
                cmocka_unit_test(test_zero_page_read),
                cmocka_unit_test(test_zero_fill),
                cmocka_unit_test(test_zero_page_after_fork),
                cmocka_unit_test(test_cow_copy_and_reuse),
                cmocka_unit_test(test_readonly_private_fork),
                cmocka_unit_test(test_shared_mapping_across_fork),
                cmocka_unit_test(test_shared_after_fork_independent),
                cmocka_unit_test(test_oom_leaves_everything),
        };

        return cmocka_run_group_tests(tests, NULL, te_free_all);
}
