/* SPDX-License-Identifier: MIT */
/*
 * Page tables and processes: fork shares page-table nodes (so it costs no
 * frames and little page-table memory), writes after fork copy only the pages
 * touched, exit frees everything, and the sharers/PSS/USS derivation.
 */
#include "engine_test.h"

#define RW (COW_PROT_READ | COW_PROT_WRITE)

/*
 * Forking a 64 MiB resident process leaves frames_used unchanged and grows
 * page-table memory by far less than a copy of the parent's tables would.
 */
static void test_fork_shares_tables(void **state)
{
        const uint64_t npages = 64 * MiB / PG;
        cow_engine *e = te_new(256 * MiB, 4096, 64, 0);
        struct cow_sys_stats s0, s1, s2;
        static unsigned char buf[1 * MiB];
        cow_pid p, c;
        uint64_t a;

        (void)state;
        p = te_spawn(e, "big");
        a = te_mmap_rw(e, p, npages * PG);
        for (uint64_t off = 0; off < npages * PG; off += 1 * MiB) {
                te_pattern(buf, 1 * MiB, off);
                assert_ok(cow_engine_write(e, p, a + off, buf, 1 * MiB, NULL));
        }
        assert_verify(e);
        s0 = te_sys(e);
        assert_int_equal(s0.frames_used, npages);
        assert_true(s0.pt_bytes > 0);
        assert_true(s0.pt_nodes > 0);

        c = te_fork(e, p);
        s1 = te_sys(e);
        assert_int_equal(s1.frames_used, npages);
        /* a full copy would double pt_bytes; sharing adds at most a few upper nodes */
        assert_true(s1.pt_bytes - s0.pt_bytes <= s0.pt_bytes / 8);
        assert_int_equal(te_proc(e, c).rss_pages, npages);
        assert_int_equal(te_proc(e, c).ppid, p);

        /* the child writes 3 pages: exactly 3 frames more, parent unchanged */
        te_put64(e, c, a, 1);
        te_put64(e, c, a + 1000 * PG, 2);
        te_put64(e, c, a + (npages - 1) * PG, 3);
        s2 = te_sys(e);
        assert_int_equal(s2.frames_used, npages + 3);
        assert_int_equal(te_proc(e, c).faults_cow_copy, 3);
        assert_int_equal(te_proc(e, p).faults_cow_copy, 0);
        te_pattern(buf, PG, 0);
        {
                uint64_t want, got;

                memcpy(&want, buf, sizeof want);
                got = te_get64(e, p, a);
                assert_int_equal(got, want);
        }
        assert_int_equal(te_get64(e, c, a + 1000 * PG), 2);

        /* copying 3 leaf paths at most: far from a full copy of the tables */
        assert_true(s2.pt_bytes - s0.pt_bytes <= s0.pt_bytes / 2);

        te_exit(e, c);
        assert_int_equal(te_used(e), npages);
        te_exit(e, p);
        s2 = te_sys(e);
        assert_int_equal(s2.frames_used, 0);
        assert_int_equal(s2.pt_bytes, 0);
        assert_int_equal(s2.pt_nodes, 0);
        assert_int_equal(s2.procs, 0);
        te_free(e);
}

/*
 * After a child writes page X, the parent is X's only user: its write
 * reuses. A page nobody else wrote is still shared: the parent copies.
 */
static void test_copy_then_reuse(void **state)
{
        cow_engine *e = te_new_frames(64);
        cow_pid p, c;
        uint64_t a;

        (void)state;
        p = te_spawn(e, "p");
        a = te_mmap_rw(e, p, 4 * PG);
        for (int i = 0; i < 4; i++)
                te_put64(e, p, a + (uint64_t)i * PG, (uint64_t)i);
        c = te_fork(e, p);
        te_put64(e, c, a + PG, 11);  /* copy */
        assert_int_equal(te_used(e), 5);
        te_put64(e, p, a + PG, 21);  /* parent is now the only user: reuse */
        assert_int_equal(te_used(e), 5);
        te_put64(e, p, a + 2 * PG, 22); /* still shared: copy */
        assert_int_equal(te_used(e), 6);
        te_put64(e, c, a + 2 * PG, 12); /* child is now the only user: reuse */
        assert_int_equal(te_used(e), 6);
        {
                struct cow_proc_stats ps = te_proc(e, p), cs = te_proc(e, c);

                assert_int_equal(ps.faults_cow_copy, 1);
                assert_int_equal(ps.faults_cow_reuse, 1);
                assert_int_equal(cs.faults_cow_copy, 1);
                assert_int_equal(cs.faults_cow_reuse, 1);
        }
        assert_int_equal(te_get64(e, p, a + PG), 21);
        assert_int_equal(te_get64(e, c, a + PG), 11);
        assert_int_equal(te_get64(e, p, a + 2 * PG), 22);
        assert_int_equal(te_get64(e, c, a + 2 * PG), 12);
        assert_int_equal(te_get64(e, p, a + 3 * PG), 3);
        assert_int_equal(te_get64(e, c, a + 3 * PG), 3);
        te_free(e);
}

/* Fork of a fork of a fork: grandchildren share with everyone until they write. */
static void test_fork_chain(void **state)
{
        cow_engine *e = te_new_frames(64);
        cow_pid pids[5];
        uint64_t a;

        (void)state;
        pids[0] = te_spawn(e, "root");
        a = te_mmap_rw(e, pids[0], 2 * PG);
        te_put64(e, pids[0], a, 7);
        te_put64(e, pids[0], a + PG, 8);
        for (int i = 1; i < 5; i++)
                pids[i] = te_fork(e, pids[i - 1]);
        assert_int_equal(te_used(e), 2);
        assert_int_equal(te_page(e, pids[4], a).sharers, 5);
        for (int i = 0; i < 5; i++)
                te_put64(e, pids[i], a, 100 + (uint64_t)i);
        /* four copies and, for the last writer, a reuse */
        assert_int_equal(te_used(e), 6);
        for (int i = 0; i < 5; i++) {
                assert_int_equal(te_get64(e, pids[i], a), 100 + (uint64_t)i);
                assert_int_equal(te_get64(e, pids[i], a + PG), 8);
                assert_int_equal(te_page(e, pids[i], a).sharers, 1);
                assert_int_equal(te_page(e, pids[i], a + PG).sharers, 5);
        }
        /* exit from the middle of the chain does not disturb the others */
        te_exit(e, pids[2]);
        assert_int_equal(te_used(e), 5);
        assert_int_equal(te_page(e, pids[3], a + PG).sharers, 4);
        for (int i = 0; i < 5; i++)
                if (i != 2)
                        te_exit(e, pids[i]);
        assert_int_equal(te_used(e), 0);
        assert_int_equal(te_sys(e).pt_nodes, 0);
        te_free(e);
}

/*
 * Sharers, PSS, USS. Parent with 10 resident pages forks 2 children: every
 * page has 3 sharers and the same frame in all three.
 *
 * PSS rounding, as asserted: the header defines PSS as "each resident page's
 * size divided by its sharers" without saying where to round, so every PSS
 * here must lie between the sum of per-page truncated quotients and the
 * floor of the exact rational sum:
 *     sum(floor(4096 / n_i))  <=  pss  <=  floor(sum(4096 / n_i)).
 * With 3 sharers: 10 * 1365 = 13650 <= pss <= 13653. Where every quotient is
 * an integer (1 or 2 sharers) both bounds coincide and PSS is exact.
 */
#define assert_pss(got, lo, hi) assert_in_range((got), (lo), (hi))

static void test_sharers_pss_uss(void **state)
{
        cow_engine *e = te_new_frames(64);
        cow_pid p, c1, c2;
        uint64_t a;

        (void)state;
        p = te_spawn(e, "p");
        a = te_mmap_rw(e, p, 10 * PG);
        for (int i = 0; i < 10; i++)
                te_put64(e, p, a + (uint64_t)i * PG, (uint64_t)i + 1);
        {
                struct cow_proc_stats s = te_proc(e, p);

                assert_int_equal(s.pss_bytes, 10 * PG);
                assert_int_equal(s.uss_pages, 10);
                assert_int_equal(s.shared_pages, 0);
                assert_int_equal(s.rss_pages, 10);
        }
        c1 = te_fork(e, p);
        c2 = te_fork(e, p);
        for (int i = 0; i < 10; i++) {
                struct cow_page_info pp = te_page(e, p, a + (uint64_t)i * PG);
                struct cow_page_info p1 = te_page(e, c1, a + (uint64_t)i * PG);
                struct cow_page_info p2 = te_page(e, c2, a + (uint64_t)i * PG);

                assert_int_equal(pp.sharers, 3);
                assert_int_equal(p1.sharers, 3);
                assert_int_equal(p2.sharers, 3);
                assert_true(pp.frame != 0);
                assert_int_equal(pp.frame, p1.frame);
                assert_int_equal(pp.frame, p2.frame);
                assert_true(pp.flags & COW_PAGE_PRESENT);
                assert_true(pp.flags & COW_PAGE_COW);
                assert_false(pp.flags & COW_PAGE_WRITABLE);
        }
        {
                cow_pid all[3] = { p, c1, c2 };

                for (int i = 0; i < 3; i++) {
                        struct cow_proc_stats s = te_proc(e, all[i]);

                        assert_pss(s.pss_bytes, 13650, 13653);
                        assert_int_equal(s.uss_pages, 0);
                        assert_int_equal(s.shared_pages, 10);
                        assert_int_equal(s.rss_pages, 10);
                }
        }

        te_put64(e, c1, a + 4 * PG, 99);
        assert_int_equal(te_used(e), 11);
        assert_int_equal(te_page(e, c1, a + 4 * PG).sharers, 1);
        assert_int_equal(te_page(e, p, a + 4 * PG).sharers, 2);
        assert_int_equal(te_page(e, c2, a + 4 * PG).sharers, 2);
        assert_true(te_page(e, c1, a + 4 * PG).frame != te_page(e, p, a + 4 * PG).frame);
        assert_int_equal(te_page(e, c1, a + 5 * PG).sharers, 3);
        {
                struct cow_proc_stats s1 = te_proc(e, c1), sp = te_proc(e, p),
                                      s2 = te_proc(e, c2);

                /* 4096 + 9 * 4096 / 3 = 16384 exactly; 4096 + 9 * 1365 = 16381 */
                assert_pss(s1.pss_bytes, 16381, 16384);
                assert_int_equal(s1.uss_pages, 1);
                assert_int_equal(s1.shared_pages, 9);
                /* 4096 / 2 + 9 * 4096 / 3 = 14336 exactly; 2048 + 9 * 1365 = 14333 */
                assert_pss(sp.pss_bytes, 14333, 14336);
                assert_pss(s2.pss_bytes, 14333, 14336);
                assert_int_equal(sp.uss_pages, 0);
                assert_int_equal(sp.shared_pages, 10);
                /* PSS adds up to the frames in use, less the rounding */
                assert_pss(s1.pss_bytes + sp.pss_bytes + s2.pss_bytes, 45047, 11 * PG);
        }
        te_exit(e, c2);
        {
                struct cow_proc_stats sp = te_proc(e, p);

                /* page 4 now only in p; the other 9 shared by p and c1 */
                assert_int_equal(sp.uss_pages, 1);
                assert_int_equal(sp.shared_pages, 9);
                assert_int_equal(sp.pss_bytes, 4096 + 9 * 2048);
        }
        te_free(e);
}

static void test_proc_identity(void **state)
{
        cow_engine *e = te_new_frames(16);
        struct cow_proc_info info;
        cow_pid p = 0, c, q;
        char longname[64];

        (void)state;
        memset(longname, 'x', sizeof longname - 1);
        longname[sizeof longname - 1] = '\0';
        assert_ok(cow_engine_spawn(e, longname, 4242, &p));
        assert_ok(cow_engine_proc_info(e, p, &info));
        assert_int_equal(info.pid, p);
        assert_int_equal(info.ppid, 0);
        assert_int_equal(info.owner, 4242);
        assert_int_equal(strlen(info.name), COW_NAME_MAX);
        assert_memory_equal(info.name, longname, COW_NAME_MAX);

        c = te_fork(e, p);
        assert_ok(cow_engine_proc_info(e, c, &info));
        assert_int_equal(info.ppid, p);
        assert_int_equal(info.owner, 4242); /* owner is inherited */

        assert_ok(cow_engine_spawn(e, NULL, 7, &q));
        assert_ok(cow_engine_proc_info(e, q, &info));
        assert_int_equal(info.owner, 7);
        assert_int_equal(info.ppid, 0);

        /* proc_next walks the live pids in increasing order */
        {
                cow_pid seen[3], n = 0;
                int k = 0;

                while ((n = cow_engine_proc_next(e, n)) != 0) {
                        assert_true(k < 3);
                        seen[k++] = n;
                }
                assert_int_equal(k, 3);
                assert_true(seen[0] < seen[1] && seen[1] < seen[2]);
        }
        te_exit(e, c);
        assert_rc(cow_engine_proc_info(e, c, &info), -ESRCH);
        assert_rc(cow_engine_exit(e, c), -ESRCH);
        {
                cow_pid x = 12345;

                assert_rc(cow_engine_fork(e, c, &x), -ESRCH);
                assert_int_equal(x, 12345);
        }
        assert_rc(cow_engine_proc_info(e, 0, &info), -ESRCH);
        assert_int_equal(cow_engine_proc_next(e, q > p ? q : p), 0);
        te_free(e);
}

static void test_process_limit(void **state)
{
        struct cow_engine_config cfg;
        cow_engine *e = NULL;
        cow_pid a, b, c, x = 77;

        (void)state;
        cow_engine_config_init(&cfg);
        cfg.mem_bytes = 16 * PG;
        cfg.max_procs = 3;
        assert_ok(cow_engine_new(&cfg, &e));
        te_track(e);
        a = te_spawn(e, "a");
        b = te_fork(e, a);
        c = te_spawn(e, "c");
        assert_rc(cow_engine_spawn(e, "d", 0, &x), -EAGAIN);
        assert_rc(cow_engine_fork(e, b, &x), -EAGAIN);
        assert_int_equal(x, 77);
        assert_int_equal(te_sys(e).procs, 3);
        assert_int_equal(te_sys(e).procs_created, 3);
        te_exit(e, c);
        x = te_fork(e, b);
        assert_int_equal(te_sys(e).procs, 3);
        assert_int_equal(te_sys(e).procs_created, 4);
        assert_verify(e);
        te_free(e);
}

/* Exit frees every frame and every page-table node, even with many mappings. */
static void test_exit_frees_everything(void **state)
{
        cow_engine *e = te_new_frames(256);
        cow_pid p, c;

        (void)state;
        p = te_spawn(e, "p");
        for (int i = 0; i < 20; i++) {
                uint64_t a = te_mmap(e, p, UINT64_C(0x100000) * (uint64_t)(i + 1) + (uint64_t)i * (UINT64_C(1) << 30),
                                     4 * PG, COW_PROT_READ | COW_PROT_WRITE, (i % 3) == 0);
                te_put64(e, p, a, (uint64_t)i);
                te_get64(e, p, a + PG); /* zero page or (shared) a cleared frame */
        }
        c = te_fork(e, p);
        te_exit(e, p);
        assert_true(te_used(e) > 0);
        te_exit(e, c);
        {
                struct cow_sys_stats s = te_sys(e);

                assert_int_equal(s.frames_used, 0);
                assert_int_equal(s.frames_free, 256);
                assert_int_equal(s.pt_nodes, 0);
                assert_int_equal(s.pt_bytes, 0);
                assert_int_equal(s.zero_page_maps, 0);
                assert_int_equal(s.procs, 0);
        }
        te_free(e);
}

/* Bytes of one page-table node, measured through the public statistics. */
static uint64_t pt_node_bytes(void)
{
        cow_engine *e = te_new_frames(16);
        cow_pid p = te_spawn(e, "probe");
        uint64_t n;

        te_put64(e, p, te_mmap_rw(e, p, PG), 1);
        n = te_sys(e).pt_bytes / te_sys(e).pt_nodes;
        assert_true(n >= 512 * 8);
        te_free(e);
        return n;
}

/*
 * An engine whose page-table budget (16 nodes) is used up: 4 levels for
 * 4 KiB pages with the root spanning 2^39 bytes per entry, so the root plus
 * five far-apart pages (3 nodes each) take all 16. A sixth far page is mapped
 * but not touched. Returns the engine; *ret_pid is the process.
 */
#define FAR (UINT64_C(1) << 39)
static cow_engine *engine_budget_full(cow_pid *ret_pid)
{
        struct cow_engine_config cfg;
        cow_engine *e = NULL;
        cow_pid p;

        cow_engine_config_init(&cfg);
        cfg.mem_bytes = 16 * PG;
        cfg.max_pt_bytes = 16 * pt_node_bytes();
        assert_ok(cow_engine_new(&cfg, &e));
        te_track(e);
        p = te_spawn(e, "p");
        for (uint64_t i = 1; i <= 6; i++)
                te_mmap(e, p, i * FAR, PG, RW, false);
        for (uint64_t i = 1; i <= 5; i++)
                te_put64(e, p, i * FAR, i);
        assert_int_equal(te_sys(e).pt_nodes, 16);
        *ret_pid = p;
        return e;
}

/* A page that needs new nodes is -ENOBUFS with nothing changed; exit returns everything. */
static void test_pt_budget_refuses_new_nodes(void **state)
{
        struct cow_fault f;
        cow_pid p, c = 77;
        cow_engine *e = engine_budget_full(&p);
        uint64_t v = 1;

        (void)state;
        assert_rc(cow_engine_write(e, p, 6 * FAR, &v, sizeof v, &f), -ENOBUFS);
        assert_verify(e);
        assert_int_equal(te_sys(e).pt_nodes, 16);
        assert_int_equal(te_used(e), 5);
        assert_false(te_page(e, p, 6 * FAR).flags & COW_PAGE_PRESENT);
        /* fork needs a root of its own */
        assert_rc(cow_engine_fork(e, p, &c), -ENOBUFS);
        assert_int_equal(c, 77);
        assert_int_equal(te_sys(e).procs, 1);
        te_exit(e, p);
        assert_int_equal(te_sys(e).pt_nodes, 0);
        assert_int_equal(te_used(e), 0);
        te_free(e);
}

/*
 * With the budget used up, everything that needs no new node still works:
 * reading and writing resident pages (no sharing anywhere), mprotect (which
 * only edits mappings), DONTNEED and munmap of pages whose nodes no other
 * process shares.
 */
static void test_pt_budget_full_keeps_working(void **state)
{
        cow_pid p;
        cow_engine *e = engine_budget_full(&p);

        (void)state;
        for (uint64_t i = 1; i <= 5; i++)
                assert_int_equal(te_get64(e, p, i * FAR), i);
        te_put64(e, p, FAR + 8, 9);
        assert_ok(cow_engine_mprotect(e, p, FAR, PG, COW_PROT_READ));
        assert_ok(cow_engine_madvise(e, p, 2 * FAR, PG, COW_MADV_DONTNEED));
        assert_ok(cow_engine_munmap(e, p, 3 * FAR, PG));
        assert_verify(e);
        assert_int_equal(te_used(e), 3);
        te_free(e);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fork_shares_tables),
                cmocka_unit_test(test_copy_then_reuse),
                cmocka_unit_test(test_fork_chain),
                cmocka_unit_test(test_sharers_pss_uss),
                cmocka_unit_test(test_proc_identity),
                cmocka_unit_test(test_process_limit),
                cmocka_unit_test(test_exit_frees_everything),
                cmocka_unit_test(test_pt_budget_refuses_new_nodes),
                cmocka_unit_test(test_pt_budget_full_keeps_working),
        };

        return cmocka_run_group_tests(tests, NULL, te_free_all);
}
