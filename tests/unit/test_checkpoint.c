/* SPDX-License-Identifier: MIT */
/*
 * Checkpoints: a saved and reloaded engine is indistinguishable from the one
 * that saved it (same pids, contents, sharing, statistics and behaviour from
 * then on), and corrupt, truncated, foreign or mismatched checkpoints are
 * refused with a typed error, never a crash.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cowd/engine.h>

#include "crc32.h"
#include "engine-impl.h"
#include "blob.h"

#define PAGE 4096u
#define NPAGES 32u

static int failing_sink(void *ctx, const void *buf, size_t len)
{
        (void)buf;
        size_t *budget = ctx;
        if (len > *budget)
                return -ENOSPC;
        *budget -= len;
        return 0;
}

static struct cow_engine_config small_config(void)
{
        struct cow_engine_config cfg;
        cow_engine_config_init(&cfg);
        cfg.mem_bytes = 256 * PAGE;
        cfg.tlb_entries = 8;
        cfg.tlb_ways = 2;
        return cfg;
}

struct world {
        cow_engine *e;
        cow_pid root, kid, grandkid;
        uint64_t priv, shared;
};

/* A fork tree with private, copy-on-write, zero-page and shared pages. */
static void build(struct world *w)
{
        struct cow_engine_config cfg = small_config();
        assert_int_equal(cow_engine_new(&cfg, &w->e), 0);
        assert_int_equal(cow_engine_spawn(w->e, "root", 1000, &w->root), 0);
        struct cow_mmap_args priv = { .length = NPAGES * PAGE, .prot = COW_PROT_READ | COW_PROT_WRITE };
        struct cow_mmap_args shm = { .length = 4 * PAGE, .prot = COW_PROT_READ | COW_PROT_WRITE,
                                     .shared = true };
        assert_int_equal(cow_engine_mmap(w->e, w->root, &priv, &w->priv), 0);
        assert_int_equal(cow_engine_mmap(w->e, w->root, &shm, &w->shared), 0);
        char c[1];
        for (unsigned i = 0; i < NPAGES / 2; i++)
                assert_int_equal(cow_engine_write(w->e, w->root, w->priv + i * PAGE, "page", 4, NULL), 0);
        for (unsigned i = NPAGES / 2; i < NPAGES - 4; i++)
                assert_int_equal(cow_engine_read(w->e, w->root, w->priv + i * PAGE, c, 1, NULL), 0);
        assert_int_equal(cow_engine_write(w->e, w->root, w->shared, "shared", 6, NULL), 0);
        assert_int_equal(cow_engine_fork(w->e, w->root, &w->kid), 0);
        assert_int_equal(cow_engine_fork(w->e, w->kid, &w->grandkid), 0);
        assert_int_equal(cow_engine_write(w->e, w->grandkid, w->priv, "gkid", 4, NULL), 0);
        assert_int_equal(cow_engine_write(w->e, w->kid, w->shared + PAGE, "kid", 3, NULL), 0);
        assert_int_equal(cow_engine_mprotect(w->e, w->kid, w->priv + 8 * PAGE, PAGE, COW_PROT_READ), 0);
}

static void save(cow_engine *e, struct blob *b)
{
        *b = (struct blob){ 0 };
        assert_int_equal(cow_engine_save(e, blob_sink, b), 0);
        assert_true(b->len > 0);
}

/* Everything a client could observe, compared field by field. */
static void assert_same(cow_engine *a, cow_engine *b)
{
        struct cow_sys_stats sa, sb;
        cow_engine_sys_stats(a, &sa);
        cow_engine_sys_stats(b, &sb);
        assert_int_equal(sa.frames_used, sb.frames_used);
        assert_int_equal(sa.frames_free, sb.frames_free);
        assert_int_equal(sa.zero_page_maps, sb.zero_page_maps);
        assert_int_equal(sa.cow_copies, sb.cow_copies);
        assert_int_equal(sa.cow_reuses, sb.cow_reuses);
        assert_int_equal(sa.zero_fills, sb.zero_fills);
        assert_int_equal(sa.zero_maps, sb.zero_maps);
        assert_int_equal(sa.segv_faults, sb.segv_faults);
        assert_int_equal(sa.bytes_saved, sb.bytes_saved);
        assert_int_equal(sa.pt_nodes, sb.pt_nodes);
        assert_int_equal(sa.procs, sb.procs);
        assert_int_equal(sa.procs_created, sb.procs_created);
        assert_int_equal(sa.tlb_hits, sb.tlb_hits);
        assert_int_equal(sa.tlb_misses, sb.tlb_misses);

        cow_pid p = 0;
        while ((p = cow_engine_proc_next(a, p)) != 0) {
                assert_int_equal(cow_engine_proc_next(b, p - 1), p);
                struct cow_proc_info ia, ib;
                assert_int_equal(cow_engine_proc_info(a, p, &ia), 0);
                assert_int_equal(cow_engine_proc_info(b, p, &ib), 0);
                assert_int_equal(ia.ppid, ib.ppid);
                assert_int_equal(ia.owner, ib.owner);
                assert_string_equal(ia.name, ib.name);

                struct cow_proc_stats pa, pb;
                assert_int_equal(cow_engine_proc_stats(a, p, &pa), 0);
                assert_int_equal(cow_engine_proc_stats(b, p, &pb), 0);
                assert_int_equal(pa.vsize_bytes, pb.vsize_bytes);
                assert_int_equal(pa.rss_pages, pb.rss_pages);
                assert_int_equal(pa.pss_bytes, pb.pss_bytes);
                assert_int_equal(pa.uss_pages, pb.uss_pages);
                assert_int_equal(pa.shared_pages, pb.shared_pages);
                assert_int_equal(pa.zero_pages, pb.zero_pages);
                assert_int_equal(pa.maps, pb.maps);
                assert_int_equal(pa.faults_zero_fill, pb.faults_zero_fill);
                assert_int_equal(pa.faults_cow_copy, pb.faults_cow_copy);
                assert_int_equal(pa.tlb_hits, pb.tlb_hits);
                assert_int_equal(pa.tlb_misses, pb.tlb_misses);
                assert_int_equal(pa.pt_bytes, pb.pt_bytes);

                struct cow_page_info ma[NPAGES + 8], mb[NPAGES + 8];
                assert_int_equal(cow_engine_page_map(a, p, 0x10000, NPAGES + 8, ma), 0);
                assert_int_equal(cow_engine_page_map(b, p, 0x10000, NPAGES + 8, mb), 0);
                for (unsigned i = 0; i < NPAGES + 8; i++) {
                        assert_int_equal(ma[i].flags, mb[i].flags);
                        assert_int_equal(ma[i].frame, mb[i].frame);
                        assert_int_equal(ma[i].sharers, mb[i].sharers);
                        assert_int_equal(ma[i].prot, mb[i].prot);
                }
        }
}

static void assert_same_contents(cow_engine *a, cow_engine *b, cow_pid p, uint64_t addr,
                                 size_t len)
{
        static uint8_t x[NPAGES * PAGE], y[NPAGES * PAGE];
        assert_int_equal(cow_engine_read(a, p, addr, x, len, NULL), 0);
        assert_int_equal(cow_engine_read(b, p, addr, y, len, NULL), 0);
        assert_memory_equal(x, y, len);
}

static void test_round_trip_is_indistinguishable(void **state)
{
        (void)state;
        struct world w;
        build(&w);
        struct blob b;
        save(w.e, &b);

        struct cow_engine_config cfg = small_config();
        cow_engine *r = NULL;
        const char *why = NULL;
        assert_int_equal(cow_engine_load(&cfg, blob_source, &b, &r, &why), 0);
        assert_int_equal(cow_engine_verify(r, NULL, 0), 0);
        assert_same(w.e, r);
        /* Read before comparing contents: reads move TLB counters in both alike. */
        assert_same_contents(w.e, r, w.grandkid, w.priv, NPAGES * PAGE);
        assert_same_contents(w.e, r, w.root, w.shared, 4 * PAGE);

        /* Pending copy-on-write survives: both copy the same page the same way. */
        assert_int_equal(cow_engine_write(w.e, w.root, w.priv + PAGE, "after", 5, NULL), 0);
        assert_int_equal(cow_engine_write(r, w.root, w.priv + PAGE, "after", 5, NULL), 0);
        struct cow_fault fa, fb;
        assert_int_equal(cow_engine_write(w.e, w.kid, w.priv + 8 * PAGE, "x", 1, &fa), -EFAULT);
        assert_int_equal(cow_engine_write(r, w.kid, w.priv + 8 * PAGE, "x", 1, &fb), -EFAULT);
        assert_int_equal(fa.kind, fb.kind);
        cow_pid na, nb;
        assert_int_equal(cow_engine_spawn(w.e, "new", 0, &na), 0);
        assert_int_equal(cow_engine_spawn(r, "new", 0, &nb), 0);
        assert_int_equal(na, nb); /* pids stay unique over the engine's life */
        assert_same(w.e, r);

        cow_engine_free(r);
        cow_engine_free(w.e);
        free(b.p);
}

static void test_empty_engine_round_trip(void **state)
{
        (void)state;
        struct cow_engine_config cfg = small_config();
        cow_engine *e = NULL, *r = NULL;
        assert_int_equal(cow_engine_new(&cfg, &e), 0);
        struct blob b;
        save(e, &b);
        assert_int_equal(cow_engine_load(&cfg, blob_source, &b, &r, NULL), 0);
        assert_same(e, r);
        cow_engine_free(r);
        cow_engine_free(e);
        free(b.p);
}

static void test_every_flipped_byte_is_refused(void **state)
{
        (void)state;
        struct world w;
        build(&w);
        struct blob b;
        save(w.e, &b);
        struct cow_engine_config cfg = small_config();

        size_t step = b.len / 4000 + 1, tried = 0;
        for (size_t i = 0; i < b.len; i += step, tried++) {
                b.p[i] ^= 0x5a;
                b.pos = 0;
                cow_engine *r = NULL;
                const char *why = NULL;
                int err = cow_engine_load(&cfg, blob_source, &b, &r, &why);
                /* Damage reads as damage, not as another configuration. */
                assert_true(err == -EBADMSG || err == -EPROTONOSUPPORT);
                assert_null(r);
                assert_non_null(why);
                b.p[i] ^= 0x5a;
        }
        assert_true(tried > 1000);
        cow_engine_free(w.e);
        free(b.p);
}

static void test_every_truncation_is_refused(void **state)
{
        (void)state;
        struct world w;
        build(&w);
        struct blob b;
        save(w.e, &b);
        struct cow_engine_config cfg = small_config();
        size_t full = b.len;

        for (size_t n = 0; n < full; n += full / 3000 + 1) {
                b.len = n;
                b.pos = 0;
                cow_engine *r = NULL;
                assert_int_equal(cow_engine_load(&cfg, blob_source, &b, &r, NULL), -EBADMSG);
                assert_null(r);
        }
        /* Trailing bytes are refused too. */
        b.len = full;
        assert_int_equal(blob_sink(&b, "x", 1), 0);
        b.pos = 0;
        cow_engine *r = NULL;
        assert_int_equal(cow_engine_load(&cfg, blob_source, &b, &r, NULL), -EBADMSG);
        cow_engine_free(w.e);
        free(b.p);
}

static void test_foreign_version_and_mismatch_are_refused(void **state)
{
        (void)state;
        struct cow_engine_config cfg = small_config();
        cow_engine *e = NULL, *r = NULL;
        assert_int_equal(cow_engine_new(&cfg, &e), 0);
        struct blob b;
        save(e, &b);
        const char *why = NULL;

        b.p[0] = 'X'; /* magic */
        assert_int_equal(cow_engine_load(&cfg, blob_source, &b, &r, &why), -EBADMSG);
        assert_non_null(strstr(why, "magic"));
        b.p[0] = 'C';

        /* A damaged version byte is damage... */
        uint8_t version = b.p[8];
        b.p[8] = 99; /* version, little-endian u32 after the magic */
        b.pos = 0;
        assert_int_equal(cow_engine_load(&cfg, blob_source, &b, &r, &why), -EBADMSG);
        assert_non_null(strstr(why, "damaged"));
        /* ...while a version this engine does not know, checksummed, is unsupported. */
        uint32_t crc = crc32_update(0, b.p, 12);
        for (int i = 0; i < 4; i++)
                b.p[12 + i] = (uint8_t)(crc >> (8 * i));
        b.pos = 0;
        assert_int_equal(cow_engine_load(&cfg, blob_source, &b, &r, &why), -EPROTONOSUPPORT);
        b.p[8] = version;
        crc = crc32_update(0, b.p, 12);
        for (int i = 0; i < 4; i++)
                b.p[12 + i] = (uint8_t)(crc >> (8 * i));

        struct cow_engine_config other = cfg;
        other.mem_bytes *= 2;
        b.pos = 0;
        assert_int_equal(cow_engine_load(&other, blob_source, &b, &r, &why), -EINVAL);
        other = cfg;
        other.tlb_entries = 16;
        b.pos = 0;
        assert_int_equal(cow_engine_load(&other, blob_source, &b, &r, &why), -EINVAL);
        assert_null(r);

        b.pos = 0;
        assert_int_equal(cow_engine_load(&cfg, blob_source, &b, &r, &why), 0);
        cow_engine_free(r);
        cow_engine_free(e);
        free(b.p);
}

static void test_limits_are_checked_after_the_checksum(void **state)
{
        (void)state;
        struct world w;
        build(&w); /* three processes */
        struct blob b;
        save(w.e, &b);
        struct cow_engine_config cfg = small_config();
        cfg.max_procs = 2;
        cow_engine *r = NULL;
        const char *why = NULL;
        assert_int_equal(cow_engine_load(&cfg, blob_source, &b, &r, &why), -EINVAL);
        assert_non_null(strstr(why, "max_procs"));
        assert_null(r);
        cow_engine_free(w.e);
        free(b.p);
}

/* Saves e after a hostile edit and checks the load refuses it as damage. */
static void assert_load_refuses(cow_engine *e)
{
        struct blob b;
        save(e, &b);
        struct cow_engine_config cfg = small_config();
        cow_engine *r = NULL;
        assert_int_equal(cow_engine_load(&cfg, blob_source, &b, &r, NULL), -EBADMSG);
        assert_null(r);
        free(b.p);
}

/* A leaf entry of pid's page table, made private to it, for editing. */
static uint64_t *edit_entry(cow_engine *e, cow_pid pid, uint64_t addr)
{
        struct cow_proc *p = proc_table_find(&e->procs, pid);
        struct pt_path path;
        assert_non_null(p);
        return pt_prepare(&e->pt, p->root, engine_vpn(e, addr), &path);
}

static void test_shared_entry_on_zero_page_is_refused(void **state)
{
        (void)state;
        struct world w;
        build(&w);
        /* Page 2 of the shared mapping is absent from its object, which looks up as
         * the zero page; an entry mapping it would let writes land on the zero page. */
        struct cow_proc *p = proc_table_find(&w.e->procs, w.root);
        struct pt_path path;
        uint64_t *slot = pt_prepare(&w.e->pt, p->root, engine_vpn(w.e, w.shared + 2 * PAGE), &path);
        pt_set(&w.e->pt, &path, slot, pte_make(FRAME_ZERO, PTE_ACCESSED));
        assert_int_equal(cow_engine_verify(w.e, NULL, 0), -EUCLEAN);
        assert_load_refuses(w.e);
        cow_engine_free(w.e);
}

static void test_writable_entry_on_shared_frame_is_refused(void **state)
{
        (void)state;
        struct world w;
        build(&w);
        /* After preparing the path the kid shares the root's frame (refs 2); a write
         * bit there would let the kid write the root's page without a copy. */
        uint64_t *slot = edit_entry(w.e, w.kid, w.priv + PAGE);
        assert_true(w.e->frames.meta[pte_pfn(*slot)].refs > 1);
        *slot |= PTE_WRITE;
        assert_int_equal(cow_engine_verify(w.e, NULL, 0), -EUCLEAN);
        assert_load_refuses(w.e);
        cow_engine_free(w.e);
}

static void test_wrapping_object_offset_is_refused(void **state)
{
        (void)state;
        struct world w;
        build(&w);
        struct cow_mmap_args shm = { .length = 3 * PAGE, .prot = COW_PROT_READ, .shared = true };
        uint64_t at;
        assert_int_equal(cow_engine_mmap(w.e, w.root, &shm, &at), 0);
        struct cow_proc *p = proc_table_find(&w.e->procs, w.root);
        /* Only the last page's offset wraps the object's pgoff + 1 key. */
        vma_find(&p->vmas, at)->pgoff = UINT64_MAX - 2;
        assert_int_equal(cow_engine_verify(w.e, NULL, 0), -EUCLEAN);
        assert_load_refuses(w.e);
        cow_engine_free(w.e);
}

static void test_unknown_mapping_kind_is_refused(void **state)
{
        (void)state;
        struct world w;
        build(&w);
        struct cow_proc *p = proc_table_find(&w.e->procs, w.root);
        vma_find(&p->vmas, w.priv)->kind = COW_MAP_DEVICE;
        assert_load_refuses(w.e);
        cow_engine_free(w.e);
}

static void test_sink_errors_are_returned(void **state)
{
        (void)state;
        struct world w;
        build(&w);
        size_t budget = 1000;
        assert_int_equal(cow_engine_save(w.e, failing_sink, &budget), -ENOSPC);
        /* The engine is untouched by a failed save. */
        assert_int_equal(cow_engine_verify(w.e, NULL, 0), 0);
        cow_engine_free(w.e);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip_is_indistinguishable),
                cmocka_unit_test(test_empty_engine_round_trip),
                cmocka_unit_test(test_every_flipped_byte_is_refused),
                cmocka_unit_test(test_every_truncation_is_refused),
                cmocka_unit_test(test_foreign_version_and_mismatch_are_refused),
                cmocka_unit_test(test_limits_are_checked_after_the_checksum),
                cmocka_unit_test(test_sink_errors_are_returned),
                cmocka_unit_test(test_shared_entry_on_zero_page_is_refused),
                cmocka_unit_test(test_writable_entry_on_shared_frame_is_refused),
                cmocka_unit_test(test_wrapping_object_offset_is_refused),
                cmocka_unit_test(test_unknown_mapping_kind_is_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
