/* SPDX-License-Identifier: MIT */
/*
 * Physical frames: configuration and pool sizing, lazy host reservation,
 * frames returning to the free pool exactly when their last reference goes,
 * and exhaustion (-ENOMEM with nothing changed).
 */
#include "engine_test.h"

#include <unistd.h>

/* Resident set of this host process in bytes, from /proc/self/statm. */
static uint64_t host_rss_bytes(void)
{
        unsigned long size = 0, resident = 0;
        FILE *f = fopen("/proc/self/statm", "re");

        assert_non_null(f);
        assert_int_equal(fscanf(f, "%lu %lu", &size, &resident), 2);
        fclose(f);
        return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void test_config_defaults(void **state)
{
        struct cow_engine_config cfg;
        const char *why = "untouched";

        (void)state;
        memset(&cfg, 0xff, sizeof cfg);
        cow_engine_config_init(&cfg);
        assert_int_equal(cfg.mem_bytes, 256 * MiB);
        assert_int_equal(cfg.page_size, 4096);
        assert_int_equal(cfg.tlb_entries, 64);
        assert_int_equal(cfg.tlb_ways, 0);
        assert_int_equal(cfg.max_procs, 4096);
        assert_int_equal(cfg.max_maps_per_proc, 65530);
        assert_int_equal(cfg.max_pt_bytes, 1 * GiB);
        assert_ok(cow_engine_config_check(&cfg, &why));
        assert_ok(cow_engine_config_check(&cfg, NULL));
}

static void test_config_page_sizes(void **state)
{
        static const uint32_t good[] = { 4096, 8192, 16384, 32768, 65536 };
        static const uint32_t bad[] = { 0, 1, 512, 2048, 4095, 4097, 6144, 12288, 131072,
                                        1u << 31 };

        (void)state;
        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
                struct cow_engine_config cfg;
                struct cow_sys_stats s;
                cow_engine *e = NULL;

                cow_engine_config_init(&cfg);
                cfg.page_size = good[i];
                cfg.mem_bytes = 64 * (uint64_t)good[i];
                assert_ok(cow_engine_config_check(&cfg, NULL));
                assert_ok(cow_engine_new(&cfg, &e));
                te_track(e);
                assert_int_equal(cow_engine_page_size(e), good[i]);
                s = te_sys(e);
                assert_int_equal(s.page_size, good[i]);
                assert_int_equal(s.frames_total, 64);
                assert_int_equal(s.frames_free, 64);
                assert_int_equal(s.frames_used, 0);
                assert_verify(e);
                te_free(e);
        }
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                struct cow_engine_config cfg;
                const char *why = NULL;
                cow_engine *e = (cow_engine *)(uintptr_t)0x1; /* sentinel: must stay untouched */

                cow_engine_config_init(&cfg);
                cfg.page_size = bad[i];
                assert_rc(cow_engine_config_check(&cfg, &why), -EINVAL);
                assert_non_null(why);
                assert_true(strlen(why) > 0);
                assert_rc(cow_engine_new(&cfg, &e), -EINVAL);
                assert_ptr_equal(e, (cow_engine *)(uintptr_t)0x1);
        }
}

static void test_config_zero_memory_rejected(void **state)
{
        struct cow_engine_config cfg;
        const char *why = NULL;

        (void)state;
        cow_engine_config_init(&cfg);
        cfg.mem_bytes = 0;
        assert_rc(cow_engine_config_check(&cfg, &why), -EINVAL);
        assert_non_null(why);
}

static void test_free_accepts_null(void **state)
{
        (void)state;
        cow_engine_free(NULL);
}

/*
 * A 16 GiB engine must not reserve 16 GiB from the host: creating it and
 * touching a page at the top of memory keeps the host RSS far below that.
 */
static void test_lazy_reservation_16g(void **state)
{
        uint64_t rss0 = host_rss_bytes();
        cow_engine *e = te_new(16 * GiB, 4096, 64, 0);
        struct cow_sys_stats s = te_sys(e);
        cow_pid p;
        uint64_t a;

        (void)state;
        assert_int_equal(s.frames_total, 16 * GiB / 4096);
        assert_int_equal(s.frames_used, 0);
        assert_int_equal(s.frames_free, 16 * GiB / 4096);
        assert_true(host_rss_bytes() - rss0 < 256 * MiB);

        p = te_spawn(e, "lazy");
        a = te_mmap_rw(e, p, 64 * MiB);
        te_put64(e, p, a, 42);
        te_put64(e, p, a + 64 * MiB - 8, 43);
        assert_int_equal(te_used(e), 2);
        assert_int_equal(te_get64(e, p, a), 42);
        assert_int_equal(te_get64(e, p, a + 64 * MiB - 8), 43);
        assert_true(host_rss_bytes() - rss0 < 256 * MiB);
        te_free(e);
}

static void test_frames_total_other_page_size(void **state)
{
        cow_engine *e = te_new(1 * GiB, 65536, 64, 0);
        struct cow_sys_stats s = te_sys(e);

        (void)state;
        assert_int_equal(s.frames_total, 1 * GiB / 65536);
        assert_int_equal(s.frames_free, s.frames_total);
        te_free(e);
}

/* frames_used + frames_free == frames_total at every step. */
static void assert_pool_consistent(cow_engine *e)
{
        struct cow_sys_stats s = te_sys(e);

        assert_int_equal(s.frames_used + s.frames_free, s.frames_total);
}

/*
 * A frame goes back to the pool when its last reference goes, not before:
 * fork shares, a COW copy adds one, exit of the parent frees only what the
 * child does not map, exit of the child frees the rest.
 */
static void test_frames_freed_on_last_reference(void **state)
{
        cow_engine *e = te_new_frames(64);
        cow_pid p, c;
        uint64_t a;

        (void)state;
        p = te_spawn(e, "parent");
        a = te_mmap_rw(e, p, 4 * PG);
        for (int i = 0; i < 4; i++)
                te_put64(e, p, a + (uint64_t)i * PG, 100 + (uint64_t)i);
        assert_int_equal(te_used(e), 4);

        c = te_fork(e, p);
        assert_int_equal(te_used(e), 4);
        te_put64(e, c, a, 200);
        assert_int_equal(te_used(e), 5);
        assert_pool_consistent(e);

        te_exit(e, p); /* parent's copy of page 0 goes; pages 1..3 stay for the child */
        assert_int_equal(te_used(e), 4);
        assert_int_equal(te_get64(e, c, a), 200);
        for (int i = 1; i < 4; i++)
                assert_int_equal(te_get64(e, c, a + (uint64_t)i * PG), 100 + (uint64_t)i);

        te_exit(e, c);
        assert_int_equal(te_used(e), 0);
        assert_int_equal(te_sys(e).frames_free, 64);
        te_free(e);
}

static void test_frames_freed_by_munmap_and_dontneed(void **state)
{
        cow_engine *e = te_new_frames(64);
        cow_pid p, c;
        uint64_t a;

        (void)state;
        p = te_spawn(e, "p");
        a = te_mmap_rw(e, p, 8 * PG);
        for (int i = 0; i < 8; i++)
                te_put64(e, p, a + (uint64_t)i * PG, 1);
        assert_int_equal(te_used(e), 8);

        assert_ok(cow_engine_munmap(e, p, a, 2 * PG));
        assert_verify(e);
        assert_int_equal(te_used(e), 6);

        /* DONTNEED in a child drops only the child's reference */
        c = te_fork(e, p);
        assert_ok(cow_engine_madvise(e, c, a + 2 * PG, 2 * PG, COW_MADV_DONTNEED));
        assert_verify(e);
        assert_int_equal(te_used(e), 6);
        assert_int_equal(te_get64(e, c, a + 2 * PG), 0);
        assert_int_equal(te_get64(e, p, a + 2 * PG), 1);
        /* now the parent is the only user: its DONTNEED frees the frames */
        assert_ok(cow_engine_madvise(e, p, a + 2 * PG, 2 * PG, COW_MADV_DONTNEED));
        assert_verify(e);
        assert_int_equal(te_used(e), 4);
        te_exit(e, c);
        te_exit(e, p);
        assert_int_equal(te_used(e), 0);
        te_free(e);
}

/*
 * Exhaustion: with 8 frames, 7 in use, a write over pages 6..8 needs two new
 * frames and gets -ENOMEM; page 6 keeps its bytes, pages 7 and 8 stay absent,
 * no counter moves.
 */
static void test_exhaustion_changes_nothing(void **state)
{
        cow_engine *e = te_new_frames(8);
        unsigned char buf[3 * 4096], back[3 * 4096];
        struct cow_proc_stats before, after;
        struct cow_sys_stats sb, sa;
        struct cow_fault f = { COW_FAULT_NONE, 0 };
        cow_pid p;
        uint64_t a;

        (void)state;
        p = te_spawn(e, "oom");
        a = te_mmap_rw(e, p, 10 * PG);
        for (int i = 0; i < 7; i++)
                te_put64(e, p, a + (uint64_t)i * PG, 0x1000 + (uint64_t)i);
        assert_int_equal(te_used(e), 7);

        before = te_proc(e, p);
        sb = te_sys(e);
        te_pattern(buf, sizeof buf, 7);
        assert_rc(cow_engine_write(e, p, a + 6 * PG, buf, sizeof buf, &f), -ENOMEM);
        assert_verify(e);
        after = te_proc(e, p);
        sa = te_sys(e);
        assert_int_equal(sa.frames_used, 7);
        assert_int_equal(sa.frames_free, 1);
        assert_int_equal(after.rss_pages, before.rss_pages);
        assert_int_equal(after.faults_zero_fill, before.faults_zero_fill);
        assert_int_equal(after.faults_cow_copy, before.faults_cow_copy);
        assert_int_equal(after.faults_segv, before.faults_segv);
        assert_int_equal(sa.zero_fills, sb.zero_fills);
        assert_int_equal(te_page(e, p, a + 7 * PG).flags & COW_PAGE_PRESENT, 0);
        assert_int_equal(te_page(e, p, a + 8 * PG).flags & COW_PAGE_PRESENT, 0);
        assert_int_equal(te_get64(e, p, a + 6 * PG), 0x1006);

        /* exactly one frame left: a one-page write still succeeds, then nothing does */
        te_put64(e, p, a + 7 * PG, 7);
        assert_int_equal(te_used(e), 8);
        assert_rc(cow_engine_write(e, p, a + 8 * PG, buf, 1, &f), -ENOMEM);
        /* reading an untouched private page needs no frame: the zero page */
        memset(back, 0xff, sizeof back);
        te_read(e, p, a + 8 * PG, back, PG);
        assert_true(te_is_zero(back, PG));
        assert_int_equal(te_used(e), 8);

        /* a COW copy with no free frame fails too; once the parent is gone the child reuses */
        {
                cow_pid c = te_fork(e, p);

                assert_rc(cow_engine_write(e, c, a, buf, 8, &f), -ENOMEM);
                assert_verify(e);
                assert_int_equal(te_get64(e, c, a), 0x1000);
                te_exit(e, p);
                te_write(e, c, a, buf, 8);
                assert_int_equal(te_used(e), 8);
                assert_int_equal(te_proc(e, c).faults_cow_reuse, 1);
                te_read(e, c, a, back, 8);
                assert_memory_equal(back, buf, 8);
                te_exit(e, c);
        }
        assert_int_equal(te_used(e), 0);
        te_free(e);
}

/* Frames allocated by a write are cleared even when the pool recycles them. */
static void test_recycled_frames_are_cleared(void **state)
{
        cow_engine *e = te_new_frames(4);
        unsigned char buf[4096], back[4096];
        cow_pid p;
        uint64_t a;

        (void)state;
        p = te_spawn(e, "dirty");
        a = te_mmap_rw(e, p, 4 * PG);
        memset(buf, 0xee, sizeof buf);
        for (int i = 0; i < 4; i++)
                te_write(e, p, a + (uint64_t)i * PG, buf, PG);
        te_exit(e, p);
        assert_int_equal(te_used(e), 0);

        p = te_spawn(e, "clean");
        a = te_mmap_rw(e, p, 4 * PG);
        for (int i = 0; i < 4; i++) {
                te_put64(e, p, a + (uint64_t)i * PG, 1);
                te_read(e, p, a + (uint64_t)i * PG + 8, back, PG - 8);
                assert_true(te_is_zero(back, PG - 8));
        }
        assert_int_equal(te_used(e), 4);
        te_free(e);
}

/* Every documented error has its own sentence; unknown ones still get one. */
static void test_strerror(void **state)
{
        static const int errs[] = { EINVAL, ESRCH, EEXIST, EFAULT, ENOMEM, ENOSPC, EAGAIN,
                                    EMLINK, ENOBUFS, EOVERFLOW, ENXIO, EOPNOTSUPP };
        const size_t n = sizeof errs / sizeof errs[0];

        (void)state;
        for (size_t i = 0; i < n; i++) {
                const char *a = cow_engine_strerror(-errs[i]);

                assert_non_null(a);
                assert_true(strlen(a) > 0);
                assert_string_equal(a, cow_engine_strerror(errs[i]));
                for (size_t j = 0; j < i; j++)
                        assert_string_not_equal(a, cow_engine_strerror(-errs[j]));
        }
        assert_non_null(cow_engine_strerror(0));
        assert_non_null(cow_engine_strerror(-12345));
        assert_non_null(cow_engine_strerror(INT32_MIN + 1));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config_defaults),
                cmocka_unit_test(test_config_page_sizes),
                cmocka_unit_test(test_config_zero_memory_rejected),
                cmocka_unit_test(test_free_accepts_null),
                cmocka_unit_test(test_lazy_reservation_16g),
                cmocka_unit_test(test_frames_total_other_page_size),
                cmocka_unit_test(test_frames_freed_on_last_reference),
                cmocka_unit_test(test_frames_freed_by_munmap_and_dontneed),
                cmocka_unit_test(test_exhaustion_changes_nothing),
                cmocka_unit_test(test_recycled_frames_are_cleared),
                cmocka_unit_test(test_strerror),
        };

        return cmocka_run_group_tests(tests, NULL, te_free_all);
}
