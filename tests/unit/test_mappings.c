/* SPDX-License-Identifier: MIT */
/*
 * Mappings: placement, exact addresses, overlap, MAP_FIXED replacement,
 * munmap and mprotect splits, MADV_DONTNEED and argument checking.
 */
#include "engine_test.h"

#define RW (COW_PROT_READ | COW_PROT_WRITE)
#define BASE UINT64_C(0x10000)

static int mmap_raw(cow_engine *e, cow_pid pid, uint64_t addr, uint64_t len, unsigned prot,
                    bool shared, bool fixed, uint64_t *ret)
{
        struct cow_mmap_args a = {
                .addr = addr, .length = len, .prot = prot, .shared = shared, .fixed = fixed,
                .kind = COW_MAP_ANONYMOUS,
        };

        return cow_engine_mmap(e, pid, &a, ret);
}

static void test_placement_first_fit(void **state)
{
        cow_engine *e = te_new_frames(64);
        cow_pid p = te_spawn(e, "p");
        uint64_t a, b, c, d, f;

        (void)state;
        a = te_mmap_rw(e, p, PG);
        assert_int_equal(a, BASE);
        b = te_mmap_rw(e, p, 2 * PG);
        assert_int_equal(b, BASE + PG);
        c = te_mmap_rw(e, p, 1);        /* rounded up to one page */
        assert_int_equal(c, BASE + 3 * PG);
        assert_int_equal(te_proc(e, p).vsize_bytes, 4 * PG);

        assert_ok(cow_engine_munmap(e, p, a, PG));
        /* two pages do not fit in the one-page hole at BASE */
        d = te_mmap_rw(e, p, 2 * PG);
        assert_int_equal(d, BASE + 4 * PG);
        /* one page does */
        f = te_mmap_rw(e, p, PG);
        assert_int_equal(f, BASE);
        assert_verify(e);
        te_free(e);
}

static void test_exact_and_overlap(void **state)
{
        cow_engine *e = te_new_frames(64);
        cow_pid p = te_spawn(e, "p");
        uint64_t got = 0x5a5a;

        (void)state;
        te_mmap(e, p, 0x400000, 2 * PG, RW, false);
        assert_rc(mmap_raw(e, p, 0x401000, PG, RW, false, false, &got), -EEXIST);
        assert_rc(mmap_raw(e, p, 0x3ff000, 2 * PG, RW, false, false, &got), -EEXIST);
        assert_rc(mmap_raw(e, p, 0x3f0000, 0x20000, RW, false, false, &got), -EEXIST);
        assert_int_equal(got, 0x5a5a);
        /* adjacent on both sides is fine */
        te_mmap(e, p, 0x3ff000, PG, RW, false);
        te_mmap(e, p, 0x402000, PG, RW, false);
        assert_int_equal(te_proc(e, p).vsize_bytes, 4 * PG);
        /* addr 0 placement skips the exact mappings only if they are in the way */
        assert_int_equal(te_mmap_rw(e, p, PG), BASE);
        assert_verify(e);
        te_free(e);
}

/*
 * MAP_FIXED over the middle page of a written 3-page mapping: the middle
 * page reads zero, the others keep their bytes, the replaced frame is freed
 * and the process has 3 mappings.
 */
static void test_fixed_replacement(void **state)
{
        cow_engine *e = te_new_frames(64);
        cow_pid p = te_spawn(e, "p");
        uint64_t a, got = 0;

        (void)state;
        a = te_mmap_rw(e, p, 3 * PG);
        for (int i = 0; i < 3; i++)
                te_put64(e, p, a + (uint64_t)i * PG, 10 + (uint64_t)i);
        assert_int_equal(te_used(e), 3);
        assert_int_equal(te_proc(e, p).maps, 1);

        assert_ok(mmap_raw(e, p, a + PG, PG, COW_PROT_READ, false, true, &got));
        assert_verify(e);
        assert_int_equal(got, a + PG);
        assert_int_equal(te_used(e), 2);
        assert_int_equal(te_proc(e, p).maps, 3);
        assert_int_equal(te_proc(e, p).vsize_bytes, 3 * PG);
        assert_int_equal(te_get64(e, p, a), 10);
        assert_int_equal(te_get64(e, p, a + PG), 0);
        assert_int_equal(te_get64(e, p, a + 2 * PG), 12);
        assert_int_equal(te_page(e, p, a + PG).prot, COW_PROT_READ);
        assert_int_equal(te_page(e, p, a).prot, RW);

        /* fixed over a range spanning a hole and two mappings */
        assert_ok(cow_engine_munmap(e, p, a + 2 * PG, PG));
        assert_ok(mmap_raw(e, p, a, 4 * PG, RW, true, true, &got));
        assert_verify(e);
        assert_int_equal(got, a);
        assert_int_equal(te_used(e), 0);
        assert_int_equal(te_proc(e, p).maps, 1);
        assert_int_equal(te_proc(e, p).vsize_bytes, 4 * PG);
        for (int i = 0; i < 4; i++)
                assert_true(te_page(e, p, a + (uint64_t)i * PG).flags & COW_PAGE_SHARED);
        te_free(e);
}

/* munmap of the middle page of 3 leaves 2 mappings and a hole. */
static void test_munmap_split(void **state)
{
        cow_engine *e = te_new_frames(64);
        cow_pid p = te_spawn(e, "p");
        struct cow_page_info pi[3];
        struct cow_fault f;
        uint64_t a, v = 0;

        (void)state;
        a = te_mmap_rw(e, p, 3 * PG);
        for (int i = 0; i < 3; i++)
                te_put64(e, p, a + (uint64_t)i * PG, 1 + (uint64_t)i);
        assert_ok(cow_engine_munmap(e, p, a + PG, PG));
        assert_verify(e);
        assert_int_equal(te_proc(e, p).maps, 2);
        assert_int_equal(te_proc(e, p).vsize_bytes, 2 * PG);
        assert_int_equal(te_used(e), 2);
        assert_ok(cow_engine_page_map(e, p, a, 3, pi));
        assert_true(pi[0].flags & COW_PAGE_MAPPED);
        assert_false(pi[1].flags & COW_PAGE_MAPPED);
        assert_false(pi[1].flags & COW_PAGE_PRESENT);
        assert_true(pi[2].flags & COW_PAGE_MAPPED);
        assert_int_equal(pi[1].addr, a + PG);
        te_expect_fault(cow_engine_read(e, p, a + PG + 8, &v, sizeof v, &f), &f,
                        COW_SEGV_MAPERR, a + PG + 8);
        /* a read straddling page 0 and the hole faults at the hole's first byte */
        {
                unsigned char buf[16];

                te_expect_fault(cow_engine_read(e, p, a + PG - 8, buf, sizeof buf, &f), &f,
                                COW_SEGV_MAPERR, a + PG);
        }
        assert_int_equal(te_get64(e, p, a), 1);
        assert_int_equal(te_get64(e, p, a + 2 * PG), 3);

        /* munmap of a length that is not a page multiple rounds up */
        assert_ok(cow_engine_munmap(e, p, a, 1));
        assert_int_equal(te_proc(e, p).maps, 1);
        assert_int_equal(te_used(e), 1);
        /* munmap over holes and the rest succeeds and leaves nothing */
        assert_ok(cow_engine_munmap(e, p, a, 3 * PG));
        assert_verify(e);
        assert_int_equal(te_proc(e, p).maps, 0);
        assert_int_equal(te_proc(e, p).vsize_bytes, 0);
        assert_int_equal(te_used(e), 0);
        /* unmapping nothing is not an error, as on Linux */
        assert_ok(cow_engine_munmap(e, p, a, 3 * PG));
        te_free(e);
}

/* mprotect of the middle page splits 1 mapping into 3, each with its own prot. */
static void test_mprotect_split(void **state)
{
        cow_engine *e = te_new_frames(64);
        cow_pid p = te_spawn(e, "p");
        struct cow_page_info pi[3];
        struct cow_fault f;
        uint64_t a, v = 5;

        (void)state;
        a = te_mmap_rw(e, p, 3 * PG);
        for (int i = 0; i < 3; i++)
                te_put64(e, p, a + (uint64_t)i * PG, 1 + (uint64_t)i);
        assert_ok(cow_engine_mprotect(e, p, a + PG, PG, COW_PROT_READ));
        assert_verify(e);
        assert_int_equal(te_proc(e, p).maps, 3);
        assert_int_equal(te_proc(e, p).vsize_bytes, 3 * PG);
        assert_ok(cow_engine_page_map(e, p, a, 3, pi));
        assert_int_equal(pi[0].prot, RW);
        assert_int_equal(pi[1].prot, COW_PROT_READ);
        assert_int_equal(pi[2].prot, RW);
        assert_true(pi[0].flags & COW_PAGE_WRITABLE);
        assert_false(pi[1].flags & COW_PAGE_WRITABLE);
        assert_false(pi[1].flags & COW_PAGE_COW);
        assert_true(pi[2].flags & COW_PAGE_WRITABLE);
        te_expect_fault(cow_engine_write(e, p, a + PG + 100, &v, sizeof v, &f), &f,
                        COW_SEGV_ACCERR, a + PG + 100);
        assert_int_equal(te_get64(e, p, a + PG), 2);
        te_put64(e, p, a, 9);
        te_put64(e, p, a + 2 * PG, 9);

        /* PROT_NONE on the first page: reads fault too */
        assert_ok(cow_engine_mprotect(e, p, a, PG, COW_PROT_NONE));
        te_expect_fault(cow_engine_read(e, p, a, &v, sizeof v, &f), &f, COW_SEGV_ACCERR, a);
        /* restoring access keeps the bytes */
        assert_ok(cow_engine_mprotect(e, p, a, 3 * PG, RW));
        assert_verify(e);
        assert_int_equal(te_get64(e, p, a), 9);
        assert_int_equal(te_get64(e, p, a + PG), 2);
        te_put64(e, p, a + PG, 22);
        assert_int_equal(te_used(e), 3);
        te_free(e);
}

/*
 * mprotect and madvise need the range wholly mapped: -ENXIO as the header
 * documents (Linux says -ENOMEM, which here means "no free frame"), and a
 * partly mapped range changes nothing - not even the mapped part.
 */
static void test_mprotect_hole(void **state)
{
        cow_engine *e = te_new_frames(64);
        cow_pid p = te_spawn(e, "p");
        uint64_t a, v = 1;

        (void)state;
        a = te_mmap_rw(e, p, 3 * PG);
        assert_ok(cow_engine_munmap(e, p, a + PG, PG));
        te_write(e, p, a, &v, sizeof v);
        assert_rc(cow_engine_mprotect(e, p, a, 3 * PG, COW_PROT_READ), -ENXIO);
        assert_rc(cow_engine_mprotect(e, p, a + PG, PG, COW_PROT_READ), -ENXIO);
        assert_rc(cow_engine_madvise(e, p, a, 3 * PG, COW_MADV_DONTNEED), -ENXIO);
        assert_rc(cow_engine_madvise(e, p, a + PG, PG, COW_MADV_DONTNEED), -ENXIO);
        assert_verify(e);
        /* nothing changed: both pieces still writable, page 0 still resident */
        assert_int_equal(te_page(e, p, a).prot, RW);
        assert_int_equal(te_page(e, p, a + 2 * PG).prot, RW);
        assert_int_equal(te_get64(e, p, a), 1);
        assert_int_equal(te_used(e), 1);
        te_write(e, p, a, &v, sizeof v);
        te_write(e, p, a + 2 * PG, &v, sizeof v);
        assert_int_equal(te_proc(e, p).maps, 2);
        te_free(e);
}

static void test_dontneed(void **state)
{
        cow_engine *e = te_new_frames(64);
        cow_pid p = te_spawn(e, "p");
        unsigned char buf[4096];
        uint64_t a, s;

        (void)state;
        a = te_mmap_rw(e, p, 4 * PG);
        for (int i = 0; i < 4; i++)
                te_put64(e, p, a + (uint64_t)i * PG, 0xabc + (uint64_t)i);
        assert_int_equal(te_used(e), 4);
        assert_ok(cow_engine_madvise(e, p, a + PG, 2 * PG, COW_MADV_DONTNEED));
        assert_verify(e);
        assert_int_equal(te_used(e), 2);
        assert_int_equal(te_proc(e, p).rss_pages, 2);
        assert_false(te_page(e, p, a + PG).flags & COW_PAGE_PRESENT);
        assert_true(te_page(e, p, a + PG).flags & COW_PAGE_MAPPED);
        te_read(e, p, a + PG, buf, sizeof buf);
        assert_true(te_is_zero(buf, sizeof buf));
        assert_int_equal(te_get64(e, p, a), 0xabc);
        assert_int_equal(te_get64(e, p, a + 3 * PG), 0xabf);
        /* the mapping itself is untouched */
        assert_int_equal(te_proc(e, p).maps, 1);
        assert_int_equal(te_proc(e, p).vsize_bytes, 4 * PG);
        /* MADV_NORMAL is accepted and changes nothing */
        assert_ok(cow_engine_madvise(e, p, a, 4 * PG, COW_MADV_NORMAL));
        assert_int_equal(te_get64(e, p, a), 0xabc);
        assert_rc(cow_engine_madvise(e, p, a, PG, (enum cow_advice)99), -EINVAL);

        /* a shared mapping keeps its contents: only private anonymous pages drop */
        s = te_mmap(e, p, 0, PG, RW, true);
        te_put64(e, p, s, 77);
        assert_ok(cow_engine_madvise(e, p, s, PG, COW_MADV_DONTNEED));
        assert_verify(e);
        assert_int_equal(te_get64(e, p, s), 77);
        te_free(e);
}

static void test_bad_arguments(void **state)
{
        cow_engine *e = te_new_frames(64);
        cow_pid p = te_spawn(e, "p");
        uint64_t a, got = 0x77;

        (void)state;
        a = te_mmap_rw(e, p, 2 * PG);
        /* zero length */
        assert_rc(mmap_raw(e, p, 0, 0, RW, false, false, &got), -EINVAL);
        assert_rc(cow_engine_munmap(e, p, a, 0), -EINVAL);
        /* unaligned addresses */
        assert_rc(mmap_raw(e, p, 0x400001, PG, RW, false, false, &got), -EINVAL);
        assert_rc(mmap_raw(e, p, 0x400800, PG, RW, false, true, &got), -EINVAL);
        assert_rc(cow_engine_munmap(e, p, a + 1, PG), -EINVAL);
        assert_rc(cow_engine_mprotect(e, p, a + 8, PG, COW_PROT_READ), -EINVAL);
        assert_rc(cow_engine_madvise(e, p, a + 2048, PG, COW_MADV_DONTNEED), -EINVAL);
        /* protection bits outside COW_PROT_MASK */
        assert_rc(mmap_raw(e, p, 0, PG, 4, false, false, &got), -EINVAL);
        assert_rc(mmap_raw(e, p, 0, PG, 0x80 | COW_PROT_READ, false, false, &got), -EINVAL);
        assert_rc(cow_engine_mprotect(e, p, a, PG, 4), -EINVAL);
        /* a file mapping without a file backend, a device range past the device's
         * end, an unknown device and an unknown kind are refused */
        {
                struct cow_mmap_args args = { .addr = 0, .length = PG, .prot = RW,
                                              .kind = COW_MAP_FILE, .file_key = "f",
                                              .file_size = PG };

                assert_rc(cow_engine_mmap(e, p, &args, &got), -EOPNOTSUPP);
                args.kind = COW_MAP_DEVICE;
                args.device = COW_DEV_CONSOLE;
                args.length = 2 * PG;
                assert_rc(cow_engine_mmap(e, p, &args, &got), -EINVAL);
                args.device = (enum cow_device)9;
                args.length = PG;
                assert_rc(cow_engine_mmap(e, p, &args, &got), -EINVAL);
                args.kind = (enum cow_map_kind)17;
                assert_true(cow_engine_mmap(e, p, &args, &got) < 0);
        }
        /* address plus length wrapping the 64-bit space */
        assert_rc(mmap_raw(e, p, UINT64_MAX - PG + 1, 2 * PG, RW, false, false, &got), -EOVERFLOW);
        assert_rc(cow_engine_munmap(e, p, UINT64_MAX - PG + 1, 2 * PG), -EOVERFLOW);
        assert_rc(cow_engine_mprotect(e, p, UINT64_MAX - PG + 1, 2 * PG, COW_PROT_READ),
                  -EOVERFLOW);
        assert_rc(mmap_raw(e, p, PG * 16, UINT64_MAX, RW, false, false, &got), -EOVERFLOW);
        /* no such process */
        assert_rc(mmap_raw(e, 999999, 0, PG, RW, false, false, &got), -ESRCH);
        assert_rc(cow_engine_munmap(e, 999999, a, PG), -ESRCH);
        assert_rc(cow_engine_mprotect(e, 999999, a, PG, COW_PROT_READ), -ESRCH);
        assert_rc(cow_engine_madvise(e, 999999, a, PG, COW_MADV_DONTNEED), -ESRCH);
        assert_int_equal(got, 0x77);
        /* nothing above changed the process */
        assert_int_equal(te_proc(e, p).maps, 1);
        assert_int_equal(te_proc(e, p).vsize_bytes, 2 * PG);
        assert_verify(e);
        te_free(e);
}

static void test_map_count_limit(void **state)
{
        struct cow_engine_config cfg;
        cow_engine *e = NULL;
        cow_pid p;
        uint64_t got = 0;

        (void)state;
        cow_engine_config_init(&cfg);
        cfg.mem_bytes = 64 * PG;
        cfg.max_maps_per_proc = 4;
        assert_ok(cow_engine_new(&cfg, &e));
        te_track(e);
        p = te_spawn(e, "p");
        /* spaced so no engine could merge them */
        for (uint64_t i = 0; i < 4; i++)
                te_mmap(e, p, 0x100000 * (i + 1), PG, COW_PROT_READ, false);
        assert_int_equal(te_proc(e, p).maps, 4);
        assert_rc(mmap_raw(e, p, 0x100000 * 9, PG, COW_PROT_READ, false, false, &got), -EMLINK);
        assert_int_equal(te_proc(e, p).maps, 4);
        assert_verify(e);
        te_free(e);
}

/*
 * The user address space ends at 2^47 (as x86-64): addr-0 placement runs out
 * with -ENOSPC, an exact range past the end is -EOVERFLOW, MAP_FIXED needs an
 * address.
 */
static void test_address_space_limits(void **state)
{
        const uint64_t big = UINT64_C(1) << 44, top = UINT64_C(1) << 47;
        cow_engine *e = te_new_frames(16);
        cow_pid p = te_spawn(e, "p");
        uint64_t got = 0, n = 0;
        int r;

        (void)state;
        while ((r = mmap_raw(e, p, 0, big, COW_PROT_READ, false, false, &got)) == 0 && n < 64)
                n++;
        assert_rc(r, -ENOSPC);
        assert_int_equal(n, top / big - 1); /* the first starts at 0x10000, so 7 fit */
        assert_int_equal(te_proc(e, p).vsize_bytes, n * big);
        got = 0x42;
        assert_rc(mmap_raw(e, p, 0, big, COW_PROT_READ, false, false, &got), -ENOSPC);
        assert_int_equal(got, 0x42);
        /* a page still fits in the tail */
        assert_int_equal(te_mmap(e, p, 0, PG, COW_PROT_READ, false), BASE + n * big);
        assert_rc(mmap_raw(e, p, top - PG, 2 * PG, RW, false, true, &got), -EOVERFLOW);
        assert_rc(mmap_raw(e, p, top, PG, RW, false, true, &got), -EOVERFLOW);
        assert_rc(mmap_raw(e, p, 0, PG, RW, false, true, &got), -EINVAL);
        assert_verify(e);
        te_free(e);
}

/*
 * The map-count limit applies to the result: unmapping the middle of a
 * mapping at a limit of 2 leaves 2 mappings and must succeed (Linux refuses
 * only when the count after the split would pass the limit); replacing the
 * middle with MAP_FIXED at a limit of 3 leaves 3. A split that would pass the
 * limit is -EMLINK and changes nothing.
 */
static void test_map_limit_mprotect(void **state)
{
        struct cow_engine_config cfg;
        cow_engine *e = NULL;
        cow_pid p;
        uint64_t a;

        (void)state;
        cow_engine_config_init(&cfg);
        cfg.mem_bytes = 64 * PG;
        cfg.max_maps_per_proc = 2;
        assert_ok(cow_engine_new(&cfg, &e));
        te_track(e);
        p = te_spawn(e, "p");
        a = te_mmap_rw(e, p, 3 * PG);
        te_put64(e, p, a + PG, 1);
        /* a split into 3 passes the limit */
        assert_rc(cow_engine_mprotect(e, p, a + PG, PG, COW_PROT_READ), -EMLINK);
        assert_int_equal(te_proc(e, p).maps, 1);
        assert_int_equal(te_page(e, p, a + PG).prot, RW);
        /* 1 -> 2 mappings: within the limit */
        assert_ok(cow_engine_mprotect(e, p, a, PG, COW_PROT_READ));
        assert_int_equal(te_proc(e, p).maps, 2);
        assert_ok(cow_engine_mprotect(e, p, a, PG, RW));
        te_free(e);
}

static cow_engine *engine_with_map_limit(uint32_t max_maps)
{
        struct cow_engine_config cfg;
        cow_engine *e = NULL;

        cow_engine_config_init(&cfg);
        cfg.mem_bytes = 64 * PG;
        cfg.max_maps_per_proc = max_maps;
        assert_ok(cow_engine_new(&cfg, &e));
        te_track(e);
        return e;
}

static void test_map_limit_munmap_middle(void **state)
{
        cow_engine *e = engine_with_map_limit(2);
        cow_pid p;
        uint64_t a;

        (void)state;
        p = te_spawn(e, "p");
        a = te_mmap_rw(e, p, 3 * PG);
        assert_ok(cow_engine_munmap(e, p, a + PG, PG)); /* 1 -> 2 mappings */
        assert_verify(e);
        assert_int_equal(te_proc(e, p).maps, 2);
        te_free(e);
}

static void test_map_limit_fixed_middle(void **state)
{
        cow_engine *e = engine_with_map_limit(3);
        cow_pid p;
        uint64_t a, got = 0;

        (void)state;
        p = te_spawn(e, "p");
        a = te_mmap_rw(e, p, 3 * PG);
        assert_ok(mmap_raw(e, p, a + PG, PG, COW_PROT_READ, false, true, &got)); /* 1 -> 3 */
        assert_verify(e);
        assert_int_equal(te_proc(e, p).maps, 3);
        te_free(e);
}

/*
 * Regression (found by test_differential under UBSan, seed 2): munmap in a
 * process that has no mapping at all reached memmove() on a NULL array.
 */
static void test_munmap_in_empty_process(void **state)
{
        cow_engine *e = te_new_frames(16);
        cow_pid p = te_spawn(e, "p");
        uint64_t a;

        (void)state;
        assert_ok(cow_engine_munmap(e, p, 0x8c000, 13 * PG));
        assert_verify(e);
        assert_int_equal(te_proc(e, p).maps, 0);
        a = te_mmap_rw(e, p, PG);
        assert_ok(cow_engine_munmap(e, p, a, PG));
        assert_ok(cow_engine_munmap(e, p, a, PG));
        assert_verify(e);
        te_free(e);
}

/* Mappings are per process: the same address in two spawned processes is independent. */
static void test_address_spaces_independent(void **state)
{
        cow_engine *e = te_new_frames(64);
        cow_pid p = te_spawn(e, "p"), q = te_spawn(e, "q");
        uint64_t a = te_mmap_rw(e, p, PG), b = te_mmap_rw(e, q, PG);

        (void)state;
        assert_int_equal(a, b);
        te_put64(e, p, a, 1);
        te_put64(e, q, b, 2);
        assert_int_equal(te_get64(e, p, a), 1);
        assert_int_equal(te_get64(e, q, b), 2);
        assert_ok(cow_engine_munmap(e, p, a, PG));
        assert_int_equal(te_get64(e, q, b), 2);
        te_free(e);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_placement_first_fit),
                cmocka_unit_test(test_exact_and_overlap),
                cmocka_unit_test(test_fixed_replacement),
                cmocka_unit_test(test_munmap_split),
                cmocka_unit_test(test_mprotect_split),
                cmocka_unit_test(test_mprotect_hole),
                cmocka_unit_test(test_dontneed),
                cmocka_unit_test(test_bad_arguments),
                cmocka_unit_test(test_map_count_limit),
                cmocka_unit_test(test_address_space_limits),
                cmocka_unit_test(test_map_limit_mprotect),
                cmocka_unit_test(test_map_limit_munmap_middle),
                cmocka_unit_test(test_map_limit_fixed_middle),
                cmocka_unit_test(test_munmap_in_empty_process),
                cmocka_unit_test(test_address_spaces_independent),
        };

        return cmocka_run_group_tests(tests, NULL, te_free_all);
}
