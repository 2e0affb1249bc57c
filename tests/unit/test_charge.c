/* SPDX-License-Identifier: MIT */
/*
 * Per-owner charges and quotas (charge.[ch]): who a frame and a swap slot are
 * charged to through zero fill, copy-on-write, swap-in and the page cache;
 * uncharging when a frame or slot is freed, whoever frees it; quotas that
 * refuse before anything changes; verify catching a wrong charge; and
 * checkpoints keeping charges.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "engine_test.h"
#include "blob.h"
#include "filemem.h"
#include "swapmem.h"

#include "crc32.h"
#include "engine-impl.h" /* to plant a wrong charge for verify to find */

#define RW (COW_PROT_READ | COW_PROT_WRITE)
#define ALICE 1000u
#define BOB 2000u

static struct filemem fm;
static struct swapmem sm;

static int teardown(void **state)
{
        filemem_fini(&fm);
        swapmem_fini(&sm);
        return te_free_all(state);
}

static void quota_config(struct cow_engine_config *cfg, uint64_t nframes, uint64_t nslots,
                         uint64_t max_frames, uint64_t max_slots)
{
        cow_engine_config_init(cfg);
        cfg->mem_bytes = nframes * PG;
        cfg->swap_slots = nslots;
        cfg->max_files = 4;
        cfg->max_file_key = 32;
        cfg->max_frames_per_owner = max_frames;
        cfg->max_swap_slots_per_owner = max_slots;
}

/* An engine of nframes 4 KiB frames, nslots of swap and the in-memory file backend. */
static cow_engine *new_quota(uint64_t nframes, uint64_t nslots, uint64_t max_frames,
                             uint64_t max_slots)
{
        struct cow_engine_config cfg;
        cow_engine *e = NULL;
        quota_config(&cfg, nframes, nslots, max_frames, max_slots);
        assert_ok(cow_engine_new(&cfg, &e));
        te_track(e);
        assert_ok(filemem_attach(e, &fm, &sm, nslots, PG));
        assert_verify(e);
        return e;
}

static cow_pid spawn_as(cow_engine *e, uint32_t uid, uint64_t max_resident)
{
        struct cow_spawn_args a = { .owner = uid, .max_resident = max_resident };
        cow_pid pid = 0;
        assert_ok(cow_engine_spawn_args(e, &a, &pid));
        assert_verify(e);
        return pid;
}

/* Frames charged to uid (asserting it has an entry). */
static uint64_t frames_of(cow_engine *e, uint32_t uid)
{
        uint64_t frames = 0, slots = 0;
        assert_ok(cow_engine_owner_charge(e, uid, &frames, &slots));
        return frames;
}

static uint64_t slots_of(cow_engine *e, uint32_t uid)
{
        uint64_t frames = 0, slots = 0;
        assert_ok(cow_engine_owner_charge(e, uid, &frames, &slots));
        return slots;
}

/* uid has no process and no charge left: its entry is gone. */
static void assert_owner_gone(cow_engine *e, uint32_t uid)
{
        uint64_t frames = 0, slots = 0;
        assert_rc(cow_engine_owner_charge(e, uid, &frames, &slots), -ENOENT);
}

static uint64_t map_file(cow_engine *e, cow_pid pid, const char *key, uint64_t len, bool shared)
{
        const struct memfile *f = filemem_find(&fm, key);
        assert_non_null(f);
        if (!f)
                return 0;
        struct cow_mmap_args a = {
                .length = len, .prot = RW, .shared = shared, .kind = COW_MAP_FILE,
                .file_key = key, .file_size = f->size,
        };
        uint64_t at = 0;
        assert_ok(cow_engine_mmap(e, pid, &a, &at));
        assert_verify(e);
        return at;
}

static void test_zero_fill_and_cow_copy_charge_the_faulting_owner(void **state)
{
        (void)state;
        cow_engine *e = new_quota(64, 0, 100, 0);
        cow_pid a = spawn_as(e, ALICE, 0);
        uint64_t at = te_mmap_rw(e, a, 8 * PG);

        /* A read maps the zero page: nothing is charged. */
        te_get64(e, a, at);
        assert_int_equal(frames_of(e, ALICE), 0);
        for (uint64_t i = 0; i < 4; i++)
                te_put64(e, a, at + i * PG, i + 1);
        assert_int_equal(frames_of(e, ALICE), 4);

        /* Fork shares, it charges nothing; a copy-on-write copy is charged. */
        cow_pid c = te_fork(e, a);
        assert_int_equal(frames_of(e, ALICE), 4);
        te_put64(e, c, at, 99);
        assert_int_equal(frames_of(e, ALICE), 5);
        /* The parent alone maps the original now: a write reuses it, no charge. */
        te_put64(e, a, at, 7);
        assert_int_equal(frames_of(e, ALICE), 5);

        /* Another owner's frames are its own. */
        cow_pid b = spawn_as(e, BOB, 0);
        uint64_t bt = te_mmap(e, b, 0, 2 * PG, RW, true);
        te_put64(e, b, bt, 1);
        assert_int_equal(frames_of(e, BOB), 1);
        assert_int_equal(frames_of(e, ALICE), 5);
        assert_int_equal(te_sys(e).charge_owners, 2);
        assert_int_equal(te_used(e), 6);
        te_free(e);
}

static void test_frames_are_uncharged_when_freed_by_exit_munmap_and_cow_break(void **state)
{
        (void)state;
        cow_engine *e = new_quota(64, 0, 100, 0);
        cow_pid a = spawn_as(e, ALICE, 0);
        uint64_t at = te_mmap_rw(e, a, 4 * PG);
        for (uint64_t i = 0; i < 4; i++)
                te_put64(e, a, at + i * PG, i + 1);
        cow_pid c = te_fork(e, a);
        te_put64(e, c, at, 50);                   /* a copy */
        assert_int_equal(frames_of(e, ALICE), 5);

        /* The parent drops a page the child still maps: nothing is freed. */
        assert_ok(cow_engine_munmap(e, a, at + 3 * PG, PG));
        assert_verify(e);
        assert_int_equal(frames_of(e, ALICE), 5);
        /* The parent breaks the sharing of page 1 by writing: a copy... */
        te_put64(e, a, at + PG, 60);
        assert_int_equal(frames_of(e, ALICE), 6);
        /* ...and the child's exit frees its copy and the originals only it
         * held (pages 1 and 3): the parent keeps pages 0, 1 (its copy) and 2. */
        te_exit(e, c);
        assert_int_equal(frames_of(e, ALICE), 3);
        assert_int_equal(te_used(e), 3);
        assert_ok(cow_engine_munmap(e, a, at, 2 * PG));
        assert_verify(e);
        assert_int_equal(frames_of(e, ALICE), 1);
        te_exit(e, a);
        assert_owner_gone(e, ALICE);
        assert_int_equal(te_sys(e).charge_owners, 0);
        te_free(e);
}

/* A file page is charged to who read it into the page cache, and stays so. */
static void test_page_cache_frames_stay_charged_to_their_first_owner(void **state)
{
        (void)state;
        cow_engine *e = new_quota(64, 0, 100, 0);
        uint8_t data[2 * PG];
        te_pattern(data, sizeof data, 3);
        assert_non_null(filemem_add(&fm, "f", data, sizeof data));
        cow_pid a = spawn_as(e, ALICE, 0), b = spawn_as(e, BOB, 0);
        uint64_t fa = map_file(e, a, "f", 2 * PG, true);
        uint64_t fb = map_file(e, b, "f", 2 * PG, false);

        te_get64(e, a, fa);                       /* Alice reads page 0 in */
        te_get64(e, b, fb);                       /* Bob finds it cached */
        te_get64(e, b, fb + PG);                  /* Bob reads page 1 in */
        assert_int_equal(frames_of(e, ALICE), 1);
        assert_int_equal(frames_of(e, BOB), 1);
        te_put64(e, b, fb, 5);                    /* Bob's private copy */
        assert_int_equal(frames_of(e, BOB), 2);

        /* Alice leaves: her page stays cached for Bob, charged to her. */
        te_exit(e, a);
        assert_int_equal(frames_of(e, ALICE), 1);
        te_exit(e, b);
        assert_owner_gone(e, ALICE);
        assert_owner_gone(e, BOB);
        te_free(e);
}

/* Everything an access would change, to compare before and after a refusal. */
struct snapshot {
        struct cow_sys_stats sys;
        struct cow_page_info pages[4];
        uint64_t frames;
};

static struct snapshot snap(cow_engine *e, cow_pid pid, uint64_t at)
{
        struct snapshot s;
        memset(&s, 0, sizeof s);
        cow_engine_sys_stats(e, &s.sys);
        assert_ok(cow_engine_page_map(e, pid, at, 4, s.pages));
        s.frames = frames_of(e, ALICE);
        return s;
}

static void test_frame_quota_refuses_before_any_change_and_spares_other_owners(void **state)
{
        (void)state;
        cow_engine *e = new_quota(64, 0, 3, 0);
        cow_pid a = spawn_as(e, ALICE, 0), b = spawn_as(e, BOB, 0);
        uint64_t at = te_mmap_rw(e, a, 4 * PG);
        for (uint64_t i = 0; i < 3; i++)
                te_put64(e, a, at + i * PG, i + 1);
        te_get64(e, a, at + 3 * PG);              /* the zero page: free of charge */

        /* Pages 2 and 3 together: page 2 needs nothing, page 3 a frame. */
        struct snapshot before = snap(e, a, at);
        uint8_t buf[2 * PG];
        memset(buf, 0x5a, sizeof buf);
        struct cow_fault f = { 0 };
        assert_rc(cow_engine_write(e, a, at + 2 * PG, buf, sizeof buf, &f), -EDQUOT);
        assert_verify(e);
        struct snapshot after = snap(e, a, at);
        assert_int_equal(after.sys.frame_quota_refusals, before.sys.frame_quota_refusals + 1);
        after.sys.frame_quota_refusals = before.sys.frame_quota_refusals;
        assert_memory_equal(&after.sys, &before.sys, sizeof before.sys);
        assert_memory_equal(after.pages, before.pages, sizeof before.pages);
        assert_int_equal(after.frames, 3);
        assert_int_equal(te_get64(e, a, at + 2 * PG), 3); /* the data is untouched */

        /* At its quota the owner still writes what it holds... */
        te_put64(e, a, at, 42);
        /* ...a forked child's copy-on-write copy is refused too (same owner)... */
        cow_pid c = te_fork(e, a);
        assert_rc(cow_engine_write(e, c, at, buf, 8, &f), -EDQUOT);
        assert_verify(e);
        /* ...and another owner is not held back. */
        uint64_t bt = te_mmap_rw(e, b, 4 * PG);
        for (uint64_t i = 0; i < 3; i++)
                te_put64(e, b, bt + i * PG, i);
        assert_int_equal(frames_of(e, BOB), 3);
        assert_int_equal(te_sys(e).frame_quota_refusals, 2);

        /* Freeing makes room again. */
        te_exit(e, c);
        assert_ok(cow_engine_munmap(e, a, at, PG));
        te_put64(e, a, at + 3 * PG, 9);
        assert_int_equal(frames_of(e, ALICE), 3);

        /* A quota lowered live refuses the next charge; charges made stay. */
        assert_ok(cow_engine_set_quotas(e, 2, 0));
        assert_int_equal(frames_of(e, BOB), 3);
        te_put64(e, b, bt, 1);                    /* its own frame: no charge */
        uint64_t more = te_mmap_rw(e, b, PG);
        assert_rc(cow_engine_write(e, b, more, buf, 8, &f), -EDQUOT);
        assert_verify(e);
        assert_ok(cow_engine_set_quotas(e, 0, 0)); /* no quota: charges still kept */
        te_put64(e, b, more, 1);
        assert_int_equal(frames_of(e, BOB), 4);
        te_free(e);
}

static void test_swap_slots_are_charged_to_the_frames_owner_and_quota_refuses(void **state)
{
        (void)state;
        cow_engine *e = new_quota(64, 16, 0, 2);
        /* Local replacement: Alice's process keeps 2 pages resident. */
        cow_pid a = spawn_as(e, ALICE, 2);
        uint64_t at = te_mmap_rw(e, a, 8 * PG);
        for (uint64_t i = 0; i < 4; i++)
                te_put64(e, a, at + i * PG, i + 1);
        assert_int_equal(slots_of(e, ALICE), 2);
        assert_int_equal(frames_of(e, ALICE), 2);

        /* A third page would need a third slot: refused, nothing changed. */
        struct cow_sys_stats before = te_sys(e);
        struct cow_fault f = { 0 };
        uint64_t v = 5;
        assert_rc(cow_engine_write(e, a, at + 4 * PG, &v, sizeof v, &f), -EDQUOT);
        assert_verify(e);
        struct cow_sys_stats after = te_sys(e);
        assert_int_equal(after.swap_quota_refusals, before.swap_quota_refusals + 1);
        assert_int_equal(after.swap_outs, before.swap_outs);
        assert_int_equal(after.frames_used, before.frames_used);

        /* Reading a swapped page back needs an eviction too: refused alike. */
        assert_rc(cow_engine_read(e, a, at, &v, sizeof v, &f), -EDQUOT);
        assert_verify(e);

        /* With one slot more: page 2 or 3 goes to a third slot, and page 0
         * comes back into a new frame, charged to her; its slot stays
         * charged while the swap cache links it. */
        assert_ok(cow_engine_set_quotas(e, 0, 3));
        assert_int_equal(te_get64(e, a, at), 1);
        assert_int_equal(frames_of(e, ALICE), 2);
        assert_int_equal(slots_of(e, ALICE), 3);
        /* Writing the page breaks its cache link: the slot is freed, uncharged. */
        te_put64(e, a, at, 11);
        assert_int_equal(slots_of(e, ALICE), 2);
        assert_int_equal(te_sys(e).swap_slots_used, 2);

        /* Exit frees every slot and frame of hers. */
        te_exit(e, a);
        assert_owner_gone(e, ALICE);
        assert_int_equal(te_sys(e).swap_slots_used, 0);
        te_free(e);
}

/* Global replacement passes by the frames of an owner at its swap quota. */
static void test_global_eviction_spares_an_owner_at_its_swap_quota(void **state)
{
        (void)state;
        cow_engine *e = new_quota(4, 16, 0, 1);
        cow_pid a = spawn_as(e, ALICE, 0), b = spawn_as(e, BOB, 0);
        uint64_t at = te_mmap_rw(e, a, 4 * PG), bt = te_mmap_rw(e, b, 4 * PG);
        for (uint64_t i = 0; i < 4; i++)
                te_put64(e, a, at + i * PG, i + 1);
        te_put64(e, b, bt, 100);                  /* evicts one of Alice's pages */
        assert_int_equal(slots_of(e, ALICE), 1);
        assert_int_equal(frames_of(e, ALICE), 3);
        te_put64(e, b, bt + PG, 101);             /* Alice is full: Bob's own page goes */
        assert_int_equal(slots_of(e, ALICE), 1);
        assert_int_equal(frames_of(e, ALICE), 3);
        assert_int_equal(slots_of(e, BOB), 1);
        /* Nothing left that may go: memory is full; no quota of Bob's frames. */
        struct cow_fault f = { 0 };
        uint64_t v = 1;
        assert_rc(cow_engine_write(e, b, bt + 2 * PG, &v, sizeof v, &f), -ENOMEM);
        assert_verify(e);
        assert_int_equal(te_get64(e, a, at + 3 * PG), 4);
        te_free(e);
}

static void test_verify_catches_a_wrong_charge(void **state)
{
        (void)state;
        cow_engine *e = new_quota(64, 0, 100, 0);
        cow_pid a = spawn_as(e, ALICE, 0);
        uint64_t at = te_mmap_rw(e, a, 2 * PG);
        te_put64(e, a, at, 1);
        uint32_t pfn = te_page(e, a, at).frame;
        uint16_t idx = e->charge.frame[pfn];
        assert_int_not_equal(idx, 0);
        char msg[256];

        e->charge.owners[idx].frames++;           /* a total that lies */
        assert_rc(cow_engine_verify(e, msg, sizeof msg), -EUCLEAN);
        assert_non_null(strstr(msg, "owner 1000"));
        e->charge.owners[idx].frames--;
        assert_verify(e);

        e->charge.frame[pfn] = 0;                 /* a frame that lost its charge */
        assert_rc(cow_engine_verify(e, msg, sizeof msg), -EUCLEAN);
        e->charge.frame[pfn] = idx;

        e->charge.frame[0] = idx;                 /* the zero page charged */
        e->charge.owners[idx].frames++;
        assert_rc(cow_engine_verify(e, msg, sizeof msg), -EUCLEAN);
        assert_non_null(strstr(msg, "zero page"));
        e->charge.frame[0] = 0;
        e->charge.owners[idx].frames--;
        assert_verify(e);
        te_free(e);
}

static void save(cow_engine *e, struct blob *b)
{
        memset(b, 0, sizeof *b);
        assert_ok(cow_engine_save(e, blob_sink, b));
}

static void test_checkpoints_keep_charges(void **state)
{
        (void)state;
        cow_engine *e = new_quota(64, 16, 100, 2);
        cow_pid a = spawn_as(e, ALICE, 2), b = spawn_as(e, BOB, 0);
        uint64_t at = te_mmap_rw(e, a, 4 * PG), bt = te_mmap_rw(e, b, 4 * PG);
        for (uint64_t i = 0; i < 3; i++)
                te_put64(e, a, at + i * PG, i + 1);
        te_put64(e, b, bt, 7);
        cow_pid c = te_fork(e, b);
        te_put64(e, c, bt, 8);
        struct blob bl;
        save(e, &bl);

        struct cow_engine_config cfg;
        quota_config(&cfg, 64, 16, 100, 2);
        struct swapmem back;
        assert_ok(swapmem_init(&back, 16, PG));
        cow_engine *r = NULL;
        const char *why = NULL;
        assert_ok(cow_engine_load_swap(&cfg, blob_source, &bl, &swapmem_ops, &back, &r, &why));
        te_track(r);
        assert_verify(r);
        assert_int_equal(frames_of(r, ALICE), frames_of(e, ALICE));
        assert_int_equal(slots_of(r, ALICE), 1);
        assert_int_equal(frames_of(r, BOB), 2);
        assert_int_equal(te_sys(r).charge_owners, 2);
        /* The loaded engine goes on charging and uncharging. */
        te_exit(r, c);
        assert_int_equal(frames_of(r, BOB), 1);
        te_free(r);

        /* An engine without quotas reads past the charges. */
        bl.pos = 0;
        quota_config(&cfg, 64, 16, 0, 0);
        assert_ok(cow_engine_load_swap(&cfg, blob_source, &bl, &swapmem_ops, &back, &r, &why));
        te_track(r);
        uint64_t f = 0, s = 0;
        assert_rc(cow_engine_owner_charge(r, ALICE, &f, &s), -EOPNOTSUPP);
        assert_rc(cow_engine_set_quotas(r, 1, 0), -EOPNOTSUPP);
        assert_ok(cow_engine_set_quotas(r, 0, 0));
        te_free(r);
        free(bl.p);

        /* A checkpoint without charges loads with everything uncharged. */
        cow_engine *plain = te_new_frames(64);
        cow_pid p = te_spawn(plain, "p");
        uint64_t pt = te_mmap_rw(plain, p, PG);
        te_put64(plain, p, pt, 1);
        save(plain, &bl);
        quota_config(&cfg, 64, 0, 100, 0);
        cfg.max_files = 1024;
        cfg.max_file_key = 255;
        assert_ok(cow_engine_load(&cfg, blob_source, &bl, &r, &why));
        te_track(r);
        assert_verify(r);
        assert_int_equal(frames_of(r, 1000), 0);
        uint64_t more = te_mmap_rw(r, p, PG);
        te_put64(r, p, more, 2);
        assert_int_equal(frames_of(r, 1000), 1);
        free(bl.p);
        swapmem_fini(&back);
        te_free(r);
        te_free(plain);
        te_free(e);
}

static void put32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * Turns a version 4 checkpoint of an engine without charges into the version
 * 3 checkpoint it would have been: the same bytes less the charges byte, with
 * the version and the three checksums made anew.
 */
static void as_version_3(struct blob *b)
{
        assert_int_equal(b->p[b->len - 5], 0); /* no charges, then the CRC */
        b->len -= 5;
        put32(b->p + 8, 3);
        put32(b->p + 12, crc32_update(0, b->p, 12));
        put32(b->p + 36, crc32_update(0, b->p, 36));
        uint8_t crc[4];
        put32(crc, crc32_update(0, b->p, b->len));
        assert_ok(blob_sink(b, crc, sizeof crc));
}

static void test_a_version_3_checkpoint_still_loads(void **state)
{
        (void)state;
        cow_engine *plain = te_new_frames(64);
        cow_pid p = te_spawn(plain, "p");
        uint64_t at = te_mmap_rw(plain, p, 2 * PG);
        te_put64(plain, p, at, 5);
        struct blob bl;
        save(plain, &bl);
        as_version_3(&bl);

        struct cow_engine_config cfg;
        cow_engine_config_init(&cfg);
        cfg.mem_bytes = 64 * PG;
        cow_engine *r = NULL;
        const char *why = NULL;
        assert_ok(cow_engine_load(&cfg, blob_source, &bl, &r, &why));
        te_track(r);
        assert_int_equal(te_get64(r, p, at), 5);
        te_free(r);

        /* With quotas: its frames start uncharged, new ones are charged. */
        bl.pos = 0;
        cfg.max_frames_per_owner = 2;
        assert_ok(cow_engine_load(&cfg, blob_source, &bl, &r, &why));
        te_track(r);
        assert_verify(r);
        assert_int_equal(frames_of(r, 1000), 0);
        te_put64(r, p, at + PG, 6);
        assert_int_equal(frames_of(r, 1000), 1);
        free(bl.p);
        te_free(r);
        te_free(plain);
}

/* A charge naming an owner the checkpoint does not list is damage. */
static void test_checkpoint_with_a_bad_charge_is_refused(void **state)
{
        (void)state;
        cow_engine *e = new_quota(64, 0, 100, 0);
        cow_pid a = spawn_as(e, ALICE, 0);
        uint64_t at = te_mmap_rw(e, a, 2 * PG);
        te_put64(e, a, at, 1);
        te_put64(e, a, at + PG, 2);
        uint32_t freed = te_page(e, a, at + PG).frame;
        assert_ok(cow_engine_munmap(e, a, at + PG, PG));
        uint16_t idx = charge_find(&e->charge, ALICE);
        e->charge.frame[freed] = idx;             /* a free frame charged */
        struct blob bl;
        save(e, &bl);
        e->charge.frame[freed] = 0;
        struct cow_engine_config cfg;
        quota_config(&cfg, 64, 0, 100, 0);
        cow_engine *r = NULL;
        assert_rc(cow_engine_load(&cfg, blob_source, &bl, &r, NULL), -EBADMSG);
        free(bl.p);
        te_free(e);
}

/* Owners come and go: their entries are reused, the table stays small. */
static void test_owner_entries_are_reused(void **state)
{
        (void)state;
        cow_engine *e = new_quota(64, 0, 100, 0);
        for (uint32_t uid = 1; uid <= 1000; uid++) {
                cow_pid p = 0;
                assert_ok(cow_engine_spawn(e, "x", uid, &p));
                assert_ok(cow_engine_exit(e, p));
        }
        assert_verify(e);
        assert_true(e->charge.n <= 1);
        assert_int_equal(te_sys(e).charge_owners, 0);
        te_free(e);
}

/* ---- random operations ------------------------------------------------ */

#define RND_PROCS 8
#define RND_OWNERS 3
#define RND_FRAMES 10 /* the frame quota */
#define RND_SLOTS 6   /* the swap-slot quota */

struct rnd_proc {
        cow_pid pid;
        uint32_t uid;
        uint64_t anon, shared, file; /* 8, 4 and 8 pages */
};

static uint64_t rnd_next(uint64_t *s)
{
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

/* No owner is ever charged past its quota, and every charge is accounted for. */
static void rnd_check(cow_engine *e, unsigned op, uint64_t seed)
{
        char msg[512];
        if (cow_engine_verify(e, msg, sizeof msg) != 0)
                fail_msg("seed %llu op %u: %s", (unsigned long long)seed, op, msg);
        for (uint32_t uid = 1; uid <= RND_OWNERS; uid++) {
                uint64_t frames = 0, slots = 0;
                if (cow_engine_owner_charge(e, uid, &frames, &slots) == 0 &&
                    (frames > RND_FRAMES || slots > RND_SLOTS))
                        fail_msg("seed %llu op %u: uid %u holds %llu frames, %llu slots",
                                 (unsigned long long)seed, op, uid,
                                 (unsigned long long)frames, (unsigned long long)slots);
        }
}

static void rnd_spawn(cow_engine *e, struct rnd_proc *v, unsigned *n, uint64_t *s)
{
        struct rnd_proc p = { .uid = 1 + (uint32_t)(rnd_next(s) % RND_OWNERS) };
        struct cow_spawn_args a = { .owner = p.uid, .max_resident = rnd_next(s) % 2 ? 3 : 0 };
        assert_ok(cow_engine_spawn_args(e, &a, &p.pid));
        struct cow_mmap_args m = { .length = 8 * PG, .prot = RW };
        assert_ok(cow_engine_mmap(e, p.pid, &m, &p.anon));
        m = (struct cow_mmap_args){ .length = 4 * PG, .prot = RW, .shared = true };
        assert_ok(cow_engine_mmap(e, p.pid, &m, &p.shared));
        m = (struct cow_mmap_args){ .length = 8 * PG, .prot = RW, .shared = rnd_next(s) % 2,
                                    .kind = COW_MAP_FILE, .file_key = "f",
                                    .file_size = 8 * PG };
        assert_ok(cow_engine_mmap(e, p.pid, &m, &p.file));
        v[(*n)++] = p;
}

/* An access to a random page of a random region of p: any typed refusal is fine. */
static void rnd_access(cow_engine *e, const struct rnd_proc *p, uint64_t *s)
{
        uint64_t r = rnd_next(s);
        uint64_t base = r % 3 == 0 ? p->anon : r % 3 == 1 ? p->shared : p->file;
        uint64_t pages = r % 3 == 1 ? 4 : 8;
        uint64_t at = base + (rnd_next(s) % pages) * PG;
        uint64_t v = r;
        struct cow_fault f;
        int rc = rnd_next(s) % 2 ? cow_engine_write(e, p->pid, at, &v, sizeof v, &f)
                                 : cow_engine_read(e, p->pid, at, &v, sizeof v, &f);
        if (rc != 0 && rc != -EDQUOT && rc != -ENOMEM && rc != -EFAULT && rc != -ENOBUFS)
                fail_msg("access = %d (%s)", rc, cow_engine_strerror(rc));
}

static void test_random_operations_keep_charges_exact_and_within_quotas(void **state)
{
        (void)state;
        uint64_t refusals = 0;
        for (uint64_t seed = 1; seed <= 40; seed++) {
                cow_engine *e = new_quota(24, 16, RND_FRAMES, RND_SLOTS);
                assert_non_null(filemem_add(&fm, "f", NULL, 8 * PG));
                struct rnd_proc v[RND_PROCS];
                unsigned n = 0;
                uint64_t s = seed * UINT64_C(0x9e3779b97f4a7c15);
                for (unsigned op = 0; op < 400; op++) {
                        uint64_t r = rnd_next(&s) % 16;
                        if (n == 0 || (r == 0 && n < RND_PROCS)) {
                                rnd_spawn(e, v, &n, &s);
                        } else if (r == 1 && n < RND_PROCS) {
                                struct rnd_proc c = v[rnd_next(&s) % n];
                                if (cow_engine_fork(e, c.pid, &c.pid) == 0)
                                        v[n++] = c;
                        } else if (r == 2) {
                                unsigned k = (unsigned)(rnd_next(&s) % n);
                                assert_ok(cow_engine_exit(e, v[k].pid));
                                v[k] = v[--n];
                        } else if (r == 3) {
                                const struct rnd_proc *p = &v[rnd_next(&s) % n];
                                uint64_t at = p->anon + (rnd_next(&s) % 8) * PG;
                                (void)cow_engine_madvise(e, p->pid, at, PG, COW_MADV_DONTNEED);
                        } else if (r == 4) {
                                const struct rnd_proc *p = &v[rnd_next(&s) % n];
                                (void)cow_engine_munmap(e, p->pid, p->anon + 7 * PG, PG);
                        } else {
                                rnd_access(e, &v[rnd_next(&s) % n], &s);
                        }
                        rnd_check(e, op, seed);
                }
                struct cow_sys_stats st = te_sys(e);
                refusals += st.frame_quota_refusals + st.swap_quota_refusals;
                while (n > 0)
                        assert_ok(cow_engine_exit(e, v[--n].pid));
                rnd_check(e, 400, seed);
                assert_int_equal(te_sys(e).charge_owners, 0);
                te_free(e);
        }
        /* The quotas were reached, not just stayed under. */
        assert_true(refusals > 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_zero_fill_and_cow_copy_charge_the_faulting_owner),
                cmocka_unit_test(
                        test_frames_are_uncharged_when_freed_by_exit_munmap_and_cow_break),
                cmocka_unit_test(test_page_cache_frames_stay_charged_to_their_first_owner),
                cmocka_unit_test(
                        test_frame_quota_refuses_before_any_change_and_spares_other_owners),
                cmocka_unit_test(
                        test_swap_slots_are_charged_to_the_frames_owner_and_quota_refuses),
                cmocka_unit_test(test_global_eviction_spares_an_owner_at_its_swap_quota),
                cmocka_unit_test(test_verify_catches_a_wrong_charge),
                cmocka_unit_test(test_checkpoints_keep_charges),
                cmocka_unit_test(test_a_version_3_checkpoint_still_loads),
                cmocka_unit_test(test_checkpoint_with_a_bad_charge_is_refused),
                cmocka_unit_test(test_owner_entries_are_reused),
                cmocka_unit_test(test_random_operations_keep_charges_exact_and_within_quotas),
        };
        return cmocka_run_group_tests(tests, NULL, teardown);
}
