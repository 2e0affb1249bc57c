/* SPDX-License-Identifier: MIT */
/*
 * The lecture's scenarios, end to end, each with exact frame counts and
 * contents: the exam paper (read-only, shared by 30 children), the answer
 * template (copy on write, 30 private copies of one page), the zero page,
 * xv6's cowtest simpletest and threetest, reuse after the child exits, and
 * the mapping operations.
 */
#include "engine_test.h"

#define RW (COW_PROT_READ | COW_PROT_WRITE)
#define NCHILD 30

/*
 * Exam paper: the parent writes 64 pages, makes them read-only and forks 30
 * children. Every child reads the same bytes, no frame is added, and a
 * child's write is SEGV_ACCERR at the exact address.
 */
static void test_exam_paper(void **state)
{
        const uint64_t npages = 64;
        cow_engine *e = te_new_frames(1024);
        static unsigned char paper[64 * 4096], back[64 * 4096];
        cow_pid parent, kids[NCHILD];
        struct cow_fault f;
        uint64_t a, v = 0xbad;

        (void)state;
        parent = te_spawn(e, "examiner");
        a = te_mmap_rw(e, parent, npages * PG);
        te_pattern(paper, npages * PG, 2026);
        te_write(e, parent, a, paper, npages * PG);
        assert_ok(cow_engine_mprotect(e, parent, a, npages * PG, COW_PROT_READ));
        assert_verify(e);
        assert_int_equal(te_used(e), npages);

        for (int i = 0; i < NCHILD; i++)
                kids[i] = te_fork(e, parent);
        assert_int_equal(te_used(e), npages);
        for (int i = 0; i < NCHILD; i++) {
                memset(back, 0, npages * PG);
                te_read(e, kids[i], a, back, npages * PG);
                assert_memory_equal(back, paper, npages * PG);
        }
        assert_int_equal(te_used(e), npages);
        assert_int_equal(te_page(e, kids[7], a + 5 * PG).sharers, NCHILD + 1);
        assert_int_equal(te_proc(e, kids[7]).faults_cow_copy, 0);

        te_expect_fault(cow_engine_write(e, kids[3], a + 17 * PG + 123, &v, sizeof v, &f), &f,
                        COW_SEGV_ACCERR, a + 17 * PG + 123);
        assert_int_equal(te_used(e), npages);
        te_read(e, kids[3], a, back, npages * PG);
        assert_memory_equal(back, paper, npages * PG);
        /* 64 pages in 31 processes on 64 frames */
        assert_int_equal(te_sys(e).bytes_saved, (int64_t)(NCHILD * npages * PG));

        for (int i = 0; i < NCHILD; i++)
                te_exit(e, kids[i]);
        assert_int_equal(te_used(e), npages);
        te_exit(e, parent);
        assert_int_equal(te_used(e), 0);
        te_free(e);
}

/*
 * Answer template: a private writable template forked 30 times; each child
 * writes its own name into page 0; frames grow by exactly 30; each child
 * reads its own answer back and the parent reads the original template.
 */
static void test_answer_template(void **state)
{
        const uint64_t npages = 8;
        cow_engine *e = te_new_frames(1024);
        unsigned char tmpl[8 * 4096], back[8 * 4096];
        cow_pid parent, kids[NCHILD];
        uint64_t a, base;

        (void)state;
        parent = te_spawn(e, "teacher");
        a = te_mmap_rw(e, parent, npages * PG);
        te_pattern(tmpl, sizeof tmpl, 7);
        memcpy(tmpl, "Name: ________\n", 15);
        te_write(e, parent, a, tmpl, sizeof tmpl);
        for (int i = 0; i < NCHILD; i++)
                kids[i] = te_fork(e, parent);
        base = te_used(e);
        assert_int_equal(base, npages);

        for (int i = 0; i < NCHILD; i++) {
                char name[16];

                snprintf(name, sizeof name, "student%02d", i);
                te_write(e, kids[i], a + 6, name, strlen(name));
        }
        assert_int_equal(te_used(e), base + NCHILD);

        for (int i = 0; i < NCHILD; i++) {
                char name[16];

                snprintf(name, sizeof name, "student%02d", i);
                te_read(e, kids[i], a, back, sizeof back);
                assert_memory_equal(back, "Name: ", 6);
                assert_memory_equal(back + 6, name, strlen(name));
                assert_memory_equal(back + 6 + strlen(name), tmpl + 6 + strlen(name),
                                    sizeof tmpl - 6 - strlen(name));
                assert_int_equal(te_page(e, kids[i], a).sharers, 1);
                assert_int_equal(te_page(e, kids[i], a + PG).sharers, NCHILD + 1);
        }
        te_read(e, parent, a, back, sizeof back);
        assert_memory_equal(back, tmpl, sizeof tmpl);
        /* 30 copies, no reuse: the parent keeps the original, so no child is ever alone on it */
        {
                uint64_t copies = 0, reuses = 0;

                for (int i = 0; i < NCHILD; i++) {
                        copies += te_proc(e, kids[i]).faults_cow_copy;
                        reuses += te_proc(e, kids[i]).faults_cow_reuse;
                }
                assert_int_equal(copies, NCHILD);
                assert_int_equal(reuses, 0);
        }
        for (int i = 0; i < NCHILD; i++)
                te_exit(e, kids[i]);
        assert_int_equal(te_used(e), npages);
        te_exit(e, parent);
        assert_int_equal(te_used(e), 0);
        te_free(e);
}

/*
 * Zero page: a 1 GiB anonymous mapping reads as zeros everywhere, read in
 * 1 MiB chunks, with no frame used; then 10 scattered writes use exactly 10.
 */
static void test_zero_page_gigabyte(void **state)
{
        const uint64_t len = 1 * GiB, chunk = 1 * MiB;
        cow_engine *e = te_new(256 * MiB, 4096, 64, 0);
        static unsigned char buf[1 * MiB];
        cow_pid p;
        uint64_t a;

        (void)state;
        p = te_spawn(e, "zero");
        a = te_mmap_rw(e, p, len);
        for (uint64_t off = 0; off < len; off += chunk) {
                memset(buf, 0x5a, chunk);
                assert_ok(cow_engine_read(e, p, a + off, buf, chunk, NULL));
                if (!te_is_zero(buf, chunk))
                        fail_msg("non-zero byte in the chunk at offset %llu",
                                 (unsigned long long)off);
        }
        assert_verify(e);
        {
                struct cow_sys_stats s = te_sys(e);
                struct cow_proc_stats ps = te_proc(e, p);

                assert_int_equal(s.frames_used, 0);
                assert_int_equal(ps.zero_pages, len / PG);
                assert_int_equal(ps.faults_zero_map, len / PG);
                assert_int_equal(ps.rss_pages, 0);
                assert_int_equal(s.zero_page_maps, len / PG);
                assert_int_equal(ps.vsize_bytes, len);
        }
        for (uint64_t i = 0; i < 10; i++)
                te_put64(e, p, a + i * (len / 10) + 8 * i, 0x1000 + i);
        assert_int_equal(te_used(e), 10);
        assert_int_equal(te_proc(e, p).zero_pages, len / PG - 10);
        assert_int_equal(te_proc(e, p).faults_zero_fill, 10);
        for (uint64_t i = 0; i < 10; i++)
                assert_int_equal(te_get64(e, p, a + i * (len / 10) + 8 * i), 0x1000 + i);
        te_free(e);
}

/*
 * xv6 cowtest simpletest: a process holding 2/3 of physical memory can still
 * fork (a copying fork could not); run twice, frames back at baseline.
 */
static void test_xv6_simpletest(void **state)
{
        const uint64_t nframes = 1536;
        const uint64_t sz = nframes * 2 / 3;
        cow_engine *e = te_new_frames(nframes);
        cow_pid p;

        (void)state;
        p = te_spawn(e, "cowtest");
        for (int round = 0; round < 2; round++) {
                uint64_t a = te_mmap_rw(e, p, sz * PG);
                cow_pid c;

                for (uint64_t i = 0; i < sz; i++)
                        te_put64(e, p, a + i * PG, (uint64_t)round * 1000000 + i);
                assert_int_equal(te_used(e), sz);
                c = te_fork(e, p);
                assert_int_equal(te_used(e), sz);
                assert_int_equal(te_get64(e, c, a + (sz - 1) * PG),
                                 (uint64_t)round * 1000000 + sz - 1);
                te_exit(e, c);
                assert_int_equal(te_used(e), sz);
                assert_ok(cow_engine_munmap(e, p, a, sz * PG));
                assert_verify(e);
                assert_int_equal(te_used(e), 0);
        }
        te_exit(e, p);
        assert_int_equal(te_used(e), 0);
        te_free(e);
}

/*
 * xv6 cowtest threetest: three processes on a quarter of memory each write
 * part of it. N pages; the grandchild writes 4N/5, the parent all N, the
 * child N/2. Counts follow exactly from who shares what when; every process
 * reads its own values; all frames come back after exit.
 */
static void test_xv6_threetest(void **state)
{
        const uint64_t nframes = 2000, n = nframes / 4, g = n / 5 * 4, h = n / 2;
        cow_engine *e = te_new_frames(nframes);
        cow_pid p, c1, c2;
        uint64_t a;

        (void)state;
        p = te_spawn(e, "p");
        a = te_mmap_rw(e, p, n * PG);
        for (uint64_t i = 0; i < n; i++)
                te_put64(e, p, a + i * PG, 7);
        c1 = te_fork(e, p);
        c2 = te_fork(e, c1);
        assert_int_equal(te_used(e), n);

        for (uint64_t i = 0; i < g; i++)
                te_put64(e, c2, a + i * PG, c2);
        assert_int_equal(te_used(e), n + g);
        assert_int_equal(te_proc(e, c2).faults_cow_copy, g);

        for (uint64_t i = 0; i < n; i++)
                te_put64(e, p, a + i * PG, p);
        assert_int_equal(te_used(e), 2 * n + g);
        assert_int_equal(te_proc(e, p).faults_cow_copy, n);

        for (uint64_t i = 0; i < h; i++)
                te_put64(e, c1, a + i * PG, 9999);
        assert_int_equal(te_used(e), 2 * n + g);
        assert_int_equal(te_proc(e, c1).faults_cow_reuse, h);
        assert_int_equal(te_proc(e, c1).faults_cow_copy, 0);

        for (uint64_t i = 0; i < n; i++) {
                assert_int_equal(te_get64(e, c2, a + i * PG), i < g ? c2 : 7);
                assert_int_equal(te_get64(e, c1, a + i * PG), i < h ? 9999 : 7);
                assert_int_equal(te_get64(e, p, a + i * PG), p);
        }
        te_exit(e, c2);
        assert_int_equal(te_used(e), 2 * n);
        te_exit(e, c1);
        assert_int_equal(te_used(e), n);
        for (uint64_t i = 0; i < n; i++)
                assert_int_equal(te_get64(e, p, a + i * PG), p);
        te_exit(e, p);
        assert_int_equal(te_used(e), 0);
        assert_int_equal(te_sys(e).pt_nodes, 0);
        te_free(e);
}

/* Reuse: after the child exits, the parent's write copies nothing. */
static void test_reuse_after_child_exit(void **state)
{
        cow_engine *e = te_new_frames(64);
        cow_pid p = te_spawn(e, "p"), c;
        struct cow_sys_stats s0, s1;
        uint64_t a;

        (void)state;
        a = te_mmap_rw(e, p, 4 * PG);
        for (uint64_t i = 0; i < 4; i++)
                te_put64(e, p, a + i * PG, i);
        c = te_fork(e, p);
        assert_int_equal(te_get64(e, c, a + 2 * PG), 2);
        te_exit(e, c);
        s0 = te_sys(e);
        for (uint64_t i = 0; i < 4; i++)
                te_put64(e, p, a + i * PG, 10 + i);
        s1 = te_sys(e);
        assert_int_equal(s1.cow_reuses, s0.cow_reuses + 4);
        assert_int_equal(s1.cow_copies, s0.cow_copies);
        assert_int_equal(s1.frames_used, s0.frames_used);
        assert_int_equal(s1.frames_used, 4);
        assert_int_equal(te_proc(e, p).faults_cow_reuse, 4);
        for (uint64_t i = 0; i < 4; i++)
                assert_int_equal(te_get64(e, p, a + i * PG), 10 + i);
        te_free(e);
}

/*
 * Mappings: one 8-page mapping, written; munmap page 2 and mprotect page 5
 * split it into 4; DONTNEED page 6 drops its frame; MAP_FIXED over pages
 * 0..1 replaces them with a fresh shared mapping. Contents, mappings and
 * frames checked after each step, and across a fork.
 */
static void test_mapping_operations(void **state)
{
        cow_engine *e = te_new_frames(64);
        cow_pid p = te_spawn(e, "p"), c;
        struct cow_mmap_args fx = { .length = 2 * PG, .prot = RW, .shared = true, .fixed = true };
        struct cow_fault f;
        uint64_t a, got, v = 1;

        (void)state;
        a = te_mmap_rw(e, p, 8 * PG);
        for (uint64_t i = 0; i < 8; i++)
                te_put64(e, p, a + i * PG, 100 + i);
        assert_int_equal(te_used(e), 8);

        assert_ok(cow_engine_munmap(e, p, a + 2 * PG, PG));
        assert_int_equal(te_proc(e, p).maps, 2);
        assert_int_equal(te_used(e), 7);
        assert_ok(cow_engine_mprotect(e, p, a + 5 * PG, PG, COW_PROT_READ));
        assert_int_equal(te_proc(e, p).maps, 4);
        assert_verify(e);
        te_expect_fault(cow_engine_write(e, p, a + 5 * PG, &v, sizeof v, &f), &f,
                        COW_SEGV_ACCERR, a + 5 * PG);
        te_expect_fault(cow_engine_read(e, p, a + 2 * PG, &v, sizeof v, &f), &f,
                        COW_SEGV_MAPERR, a + 2 * PG);

        assert_ok(cow_engine_madvise(e, p, a + 6 * PG, PG, COW_MADV_DONTNEED));
        assert_int_equal(te_used(e), 6);
        assert_int_equal(te_get64(e, p, a + 6 * PG), 0);

        fx.addr = a;
        assert_ok(cow_engine_mmap(e, p, &fx, &got));
        assert_int_equal(got, a);
        assert_verify(e);
        assert_int_equal(te_used(e), 4);
        assert_int_equal(te_proc(e, p).maps, 4); /* [0,1] shared, [3,4], [5] ro, [6,7] */
        assert_int_equal(te_get64(e, p, a), 0);
        te_put64(e, p, a, 55);

        c = te_fork(e, p);
        te_put64(e, c, a, 66);                            /* shared: seen by p */
        te_put64(e, c, a + 3 * PG, 77);                   /* private: not seen by p */
        assert_int_equal(te_get64(e, p, a), 66);
        assert_int_equal(te_get64(e, p, a + 3 * PG), 103);
        assert_int_equal(te_get64(e, p, a + 5 * PG), 105);
        assert_int_equal(te_get64(e, c, a + 5 * PG), 105);
        assert_int_equal(te_get64(e, c, a + 7 * PG), 107);
        assert_int_equal(te_proc(e, c).maps, 4);
        /* shared page 0 (1), private 3, 4, 5, 7 (4) and the child's copy of 3 */
        assert_int_equal(te_used(e), 6);
        te_exit(e, c);
        te_exit(e, p);
        assert_int_equal(te_used(e), 0);
        te_free(e);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_exam_paper),
                cmocka_unit_test(test_answer_template),
                cmocka_unit_test(test_zero_page_gigabyte),
                cmocka_unit_test(test_xv6_simpletest),
                cmocka_unit_test(test_xv6_threetest),
                cmocka_unit_test(test_reuse_after_child_exit),
                cmocka_unit_test(test_mapping_operations),
        };

        return cmocka_run_group_tests(tests, NULL, te_free_all);
}
