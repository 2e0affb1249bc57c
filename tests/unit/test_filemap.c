/* SPDX-License-Identifier: MIT */
/*
 * File and device mappings: the page cache, MAP_SHARED and MAP_PRIVATE,
 * msync, the end of a file, eviction of file pages, backend errors, the
 * framebuffer and the console. The Pintos mmap tests (mmap-read, -write,
 * -shuffle, -twice, -exit, -clean, -unmap, -overlap, -zero, -bad, -inherit)
 * are ported at engine level; files live in an in-memory backend that counts
 * every call, so "nothing was written" is checked, not assumed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "engine_test.h"
#include "blob.h"
#include "crc32.h"
#include "filemem.h"
#include "swapmem.h"

#define RW (COW_PROT_READ | COW_PROT_WRITE)

static struct filemem fm;
static struct swapmem sm;

static int fm_teardown(void **state)
{
        filemem_fini(&fm);
        swapmem_fini(&sm);
        return te_free_all(state);
}

/* The shape these tests use: small limits, a 64x32 framebuffer, a 1 KiB console log. */
static struct cow_engine_config files_config(uint64_t nframes, uint64_t nslots)
{
        struct cow_engine_config cfg;
        cow_engine_config_init(&cfg);
        cfg.mem_bytes = nframes * PG;
        cfg.swap_slots = nslots;
        cfg.max_files = 4;
        cfg.max_file_key = 32;
        cfg.fb_width = 64;
        cfg.fb_height = 32;
        cfg.console_log_bytes = 1024;
        return cfg;
}

/* An engine of nframes 4 KiB frames with the in-memory file backend (and nslots of swap). */
static cow_engine *new_files(uint64_t nframes, uint64_t nslots)
{
        struct cow_engine_config cfg = files_config(nframes, nslots);
        cow_engine *e = NULL;
        assert_ok(cow_engine_new(&cfg, &e));
        te_track(e);
        assert_ok(filemem_attach(e, &fm, &sm, nslots, PG));
        assert_verify(e);
        return e;
}

/* A file of size bytes filled with te_pattern(tag). */
static struct memfile *add_file(const char *key, uint64_t size, uint64_t tag)
{
        uint8_t *buf = malloc(size ? size : 1);
        assert_non_null(buf);
        te_pattern(buf, size, tag);
        struct memfile *f = filemem_add(&fm, key, buf, size);
        free(buf);
        assert_non_null(f);
        return f;
}

static int mmap_file_rc(cow_engine *e, cow_pid pid, uint64_t addr, uint64_t len, unsigned prot,
                        bool shared, const char *key, uint64_t offset, uint64_t *ret)
{
        const struct memfile *f = filemem_find(&fm, key);
        struct cow_mmap_args a = {
                .addr = addr, .length = len, .prot = prot, .shared = shared,
                .kind = COW_MAP_FILE, .file_key = key, .file_size = f ? f->size : 0,
                .offset = offset,
        };
        return cow_engine_mmap(e, pid, &a, ret);
}

static uint64_t mmap_file(cow_engine *e, cow_pid pid, uint64_t len, unsigned prot, bool shared,
                          const char *key, uint64_t offset)
{
        uint64_t at = 0;
        assert_ok(mmap_file_rc(e, pid, 0, len, prot, shared, key, offset, &at));
        assert_verify(e);
        return at;
}

static uint64_t mmap_device(cow_engine *e, cow_pid pid, enum cow_device dev, uint64_t len,
                            bool shared)
{
        struct cow_mmap_args a = {
                .length = len, .prot = RW, .shared = shared, .kind = COW_MAP_DEVICE,
                .device = dev,
        };
        uint64_t at = 0;
        assert_ok(cow_engine_mmap(e, pid, &a, &at));
        assert_verify(e);
        return at;
}

/* ---- the Pintos mmap tests --------------------------------------------- */

/* mmap-read: a file's bytes read through a mapping, private or shared. */
static void test_mmap_read(void **state)
{
        (void)state;
        cow_engine *e = new_files(64, 0);
        struct memfile *f = add_file("1000/sample.txt", 3 * PG, 7);
        cow_pid p = te_spawn(e, "reader");
        for (int shared = 0; shared < 2; shared++) {
                uint64_t a = mmap_file(e, p, 3 * PG, COW_PROT_READ, shared, f->key, 0);
                uint8_t buf[3 * PG];
                te_read(e, p, a, buf, sizeof(buf));
                assert_memory_equal(buf, f->data, sizeof(buf));
                assert_ok(cow_engine_munmap(e, p, a, 3 * PG));
                assert_verify(e);
        }
        assert_int_equal(f->writes, 0);
        /* Unmapped and clean: the engine let go of the file. */
        assert_false(cow_engine_file_in_use(e, f->key));
        assert_int_equal(te_sys(e).file_pages, 0);
}

/* mmap-write: bytes written through a shared mapping reach the file on munmap. */
static void test_mmap_write(void **state)
{
        (void)state;
        cow_engine *e = new_files(64, 0);
        struct memfile *f = add_file("1000/out", 2 * PG, 1);
        cow_pid p = te_spawn(e, "writer");
        uint64_t a = mmap_file(e, p, 2 * PG, RW, true, f->key, 0);
        uint8_t want[2 * PG];
        te_pattern(want, sizeof(want), 99);
        te_write(e, p, a, want, sizeof(want));
        assert_int_equal(f->writes, 0); /* nothing reaches the file before it is asked */
        struct cow_page_info pi = te_page(e, p, a);
        assert_true(pi.flags & COW_PAGE_FILE);
        assert_true(pi.flags & COW_PAGE_DIRTY);
        assert_int_equal(te_sys(e).dirty_pages, 2);
        assert_int_equal(te_proc(e, p).dirty_pages, 2);
        assert_ok(cow_engine_munmap(e, p, a, 2 * PG));
        assert_verify(e);
        assert_memory_equal(f->data, want, sizeof(want));
        assert_int_equal(f->writes, 2);
        assert_int_equal(te_sys(e).writebacks, 2);
        assert_int_equal(te_proc(e, p).writebacks, 2);
        assert_int_equal(fm.extends, 0);
}

/* mmap-shuffle: a shared mapping's bytes shuffled in place, then compared with the file. */
static void test_mmap_shuffle(void **state)
{
        (void)state;
        cow_engine *e = new_files(64, 0);
        const uint64_t size = 5 * PG + 123;
        struct memfile *f = add_file("1000/shuffle", size, 3);
        uint8_t *model = malloc(size);
        assert_non_null(model);
        memcpy(model, f->data, size);
        cow_pid p = te_spawn(e, "shuffle");
        uint64_t a = mmap_file(e, p, size, RW, true, f->key, 0);
        uint64_t x = 12345;
        for (int i = 0; i < 2000; i++) {
                x = x * 6364136223846793005u + 1442695040888963407u;
                uint64_t i1 = (x >> 33) % size;
                x = x * 6364136223846793005u + 1442695040888963407u;
                uint64_t i2 = (x >> 33) % size;
                uint8_t b1, b2;
                assert_ok(cow_engine_read(e, p, a + i1, &b1, 1, NULL));
                assert_ok(cow_engine_read(e, p, a + i2, &b2, 1, NULL));
                assert_ok(cow_engine_write(e, p, a + i1, &b2, 1, NULL));
                assert_ok(cow_engine_write(e, p, a + i2, &b1, 1, NULL));
                uint8_t t = model[i1];
                model[i1] = model[i2];
                model[i2] = t;
        }
        assert_verify(e);
        assert_ok(cow_engine_msync(e, p, a, size, true));
        assert_memory_equal(f->data, model, size);
        assert_int_equal(f->synced_writes, f->writes);
        assert_true(f->syncs >= 1);
        assert_int_equal(fm.extends, 0);
        free(model);
}

/* mmap-twice: one file mapped twice in one process is one set of frames. */
static void test_mmap_twice(void **state)
{
        (void)state;
        cow_engine *e = new_files(64, 0);
        struct memfile *f = add_file("1000/twice", 2 * PG, 5);
        cow_pid p = te_spawn(e, "twice");
        uint64_t a = mmap_file(e, p, 2 * PG, RW, true, f->key, 0);
        uint64_t b = mmap_file(e, p, 2 * PG, RW, true, f->key, 0);
        assert_true(a != b);
        te_put64(e, p, a + PG + 8, 0xfeedface);
        assert_int_equal(te_get64(e, p, b + PG + 8), 0xfeedface);
        assert_int_equal(te_page(e, p, a + PG).frame, te_page(e, p, b + PG).frame);
        assert_int_equal(te_sys(e).file_pages, 1);
        assert_int_equal(f->reads, 1);
        te_exit(e, p);
        uint64_t got;
        memcpy(&got, f->data + PG + 8, sizeof(got));
        assert_int_equal(got, 0xfeedface);
        assert_int_equal(f->writes, 1);
}

/* mmap-exit: dirty shared data reaches the file when its process exits. */
static void test_mmap_exit(void **state)
{
        (void)state;
        cow_engine *e = new_files(64, 0);
        struct memfile *f = add_file("1000/exit", PG, 2);
        cow_pid p = te_spawn(e, "child");
        uint64_t a = mmap_file(e, p, PG, RW, true, f->key, 0);
        const char msg[] = "written by a child that exits";
        te_write(e, p, a + 100, msg, sizeof(msg));
        assert_int_equal(f->writes, 0);
        te_exit(e, p);
        assert_memory_equal(f->data + 100, msg, sizeof(msg));
        assert_int_equal(f->writes, 1);
        assert_false(cow_engine_file_in_use(e, f->key));
        assert_int_equal(te_used(e), 0);
}

/* mmap-clean: a mapping only read writes nothing, whatever happens to it. */
static void test_mmap_clean(void **state)
{
        (void)state;
        cow_engine *e = new_files(64, 0);
        struct memfile *f = add_file("1000/clean", 3 * PG, 4);
        cow_pid p = te_spawn(e, "clean");
        uint64_t a = mmap_file(e, p, 3 * PG, RW, true, f->key, 0);
        uint8_t buf[3 * PG];
        te_read(e, p, a, buf, sizeof(buf));
        assert_ok(cow_engine_msync(e, p, a, 3 * PG, true));
        cow_pid c = te_fork(e, p);
        te_read(e, c, a, buf, sizeof(buf));
        te_exit(e, c);
        assert_ok(cow_engine_munmap(e, p, a, PG));
        assert_ok(cow_engine_sync_files(e, true));
        te_exit(e, p);
        assert_int_equal(f->writes, 0);
        assert_int_equal(f->syncs, 0); /* nothing written, nothing to make durable */
        assert_int_equal(te_sys(e).writebacks, 0);
}

/* mmap-unmap: an access after munmap faults. */
static void test_mmap_unmap(void **state)
{
        (void)state;
        cow_engine *e = new_files(64, 0);
        struct memfile *f = add_file("1000/unmap", 2 * PG, 6);
        cow_pid p = te_spawn(e, "unmap");
        uint64_t a = mmap_file(e, p, 2 * PG, COW_PROT_READ, false, f->key, 0);
        (void)te_get64(e, p, a);
        assert_ok(cow_engine_munmap(e, p, a, 2 * PG));
        struct cow_fault fault;
        uint64_t v;
        te_expect_fault(cow_engine_read(e, p, a + PG, &v, sizeof(v), &fault), &fault,
                        COW_SEGV_MAPERR, a + PG);
        assert_verify(e);
}

/* mmap-overlap: a mapping over another is refused. */
static void test_mmap_overlap(void **state)
{
        (void)state;
        cow_engine *e = new_files(64, 0);
        struct memfile *f = add_file("1000/overlap", 4 * PG, 6);
        cow_pid p = te_spawn(e, "overlap");
        uint64_t a = mmap_file(e, p, 4 * PG, COW_PROT_READ, true, f->key, 0), got = 0;
        assert_rc(mmap_file_rc(e, p, a + PG, PG, COW_PROT_READ, true, f->key, 0, &got), -EEXIST);
        assert_rc(mmap_file_rc(e, p, a - PG, 2 * PG, RW, false, f->key, 0, &got), -EEXIST);
        assert_int_equal(te_proc(e, p).maps, 1);
        assert_verify(e);
}

/* mmap-zero: a zero length is refused, and holds no file. */
static void test_mmap_zero(void **state)
{
        (void)state;
        cow_engine *e = new_files(64, 0);
        struct memfile *f = add_file("1000/zero", PG, 6);
        cow_pid p = te_spawn(e, "zero");
        uint64_t got = 0;
        assert_rc(mmap_file_rc(e, p, 0, 0, COW_PROT_READ, true, f->key, 0, &got), -EINVAL);
        assert_false(cow_engine_file_in_use(e, f->key));
        assert_verify(e);
}

/* mmap-bad: bad offsets and keys give typed errors and change nothing. */
static void test_mmap_bad(void **state)
{
        (void)state;
        cow_engine *e = new_files(64, 0);
        struct memfile *f = add_file("1000/bad", 2 * PG, 6);
        cow_pid p = te_spawn(e, "bad");
        uint64_t got = 0;
        /* an offset that is not page aligned, or whose pages would wrap */
        assert_rc(mmap_file_rc(e, p, 0, PG, COW_PROT_READ, true, f->key, 100, &got), -EINVAL);
        assert_rc(mmap_file_rc(e, p, 0, PG, COW_PROT_READ, true, f->key, UINT64_MAX & ~(PG - 1),
                               &got), -EINVAL);
        /* no key, an empty key, a key longer than max_file_key */
        struct cow_mmap_args a = { .length = PG, .prot = COW_PROT_READ, .shared = true,
                                   .kind = COW_MAP_FILE, .file_size = PG };
        assert_rc(cow_engine_mmap(e, p, &a, &got), -EINVAL);
        a.file_key = "";
        assert_rc(cow_engine_mmap(e, p, &a, &got), -EINVAL);
        a.file_key = "1000/a-key-longer-than-thirty-two-bytes";
        assert_rc(cow_engine_mmap(e, p, &a, &got), -ENAMETOOLONG);
        /* a size no file has */
        a.file_key = "1000/huge";
        a.file_size = COW_FILE_SIZE_MAX + 1;
        assert_rc(cow_engine_mmap(e, p, &a, &got), -EINVAL);
        a.file_size = PG;
        /* a size that disagrees with the file the engine holds */
        (void)mmap_file(e, p, PG, COW_PROT_READ, true, f->key, 0);
        a.file_key = f->key;
        a.file_size = 3 * PG;
        assert_rc(cow_engine_mmap(e, p, &a, &got), -EINVAL);
        /* more distinct files than max_files (4) */
        const char *keys[] = { "k1", "k2", "k3", "k4" };
        for (int i = 0; i < 3; i++) {
                add_file(keys[i], PG, (uint64_t)i);
                (void)mmap_file(e, p, PG, COW_PROT_READ, false, keys[i], 0);
        }
        add_file(keys[3], PG, 3);
        assert_rc(mmap_file_rc(e, p, 0, PG, COW_PROT_READ, false, keys[3], 0, &got), -EMFILE);
        assert_int_equal(te_sys(e).files, 4);
        assert_int_equal(te_proc(e, p).maps, 4);
        assert_verify(e);
        /* without a backend, file mappings are not supported */
        cow_engine_set_files(e, NULL, NULL);
        assert_rc(mmap_file_rc(e, p, 0, PG, COW_PROT_READ, false, keys[0], 0, &got), -EOPNOTSUPP);
        cow_engine_set_files(e, &filemem_ops, &fm);
}

/*
 * mmap-inherit: after fork, the child's write to a shared mapping is seen by
 * the parent and reaches the file; its write to a private one does neither.
 */
static void test_mmap_inherit(void **state)
{
        (void)state;
        cow_engine *e = new_files(64, 0);
        struct memfile *f = add_file("1000/inherit", 2 * PG, 8);
        uint8_t orig[2 * PG];
        memcpy(orig, f->data, sizeof(orig));
        cow_pid p = te_spawn(e, "parent");
        uint64_t sh = mmap_file(e, p, 2 * PG, RW, true, f->key, 0);
        uint64_t pr = mmap_file(e, p, 2 * PG, RW, false, f->key, 0);
        (void)te_get64(e, p, sh);
        (void)te_get64(e, p, sh + PG);
        (void)te_get64(e, p, pr + PG);
        cow_pid c = te_fork(e, p);
        te_put64(e, c, sh + 16, 0x1111);
        te_put64(e, c, pr + PG + 16, 0x2222);
        assert_int_equal(te_get64(e, p, sh + 16), 0x1111);
        assert_int_equal(te_get64(e, c, sh + 16), 0x1111);
        uint64_t want;
        memcpy(&want, orig + PG + 16, sizeof(want));
        assert_int_equal(te_get64(e, p, pr + PG + 16), want);
        assert_int_equal(te_get64(e, c, pr + PG + 16), 0x2222);
        /* The child's private page is its own copy, the parent's is the cache's. */
        assert_true(te_page(e, c, pr + PG).frame != te_page(e, p, pr + PG).frame);
        assert_int_equal(te_page(e, p, pr + PG).frame, te_page(e, p, sh + PG).frame);
        assert_true(te_page(e, c, pr + PG).flags & COW_PAGE_WRITABLE);
        te_exit(e, c);
        assert_ok(cow_engine_msync(e, p, sh, 2 * PG, true));
        uint64_t got;
        memcpy(&got, f->data + 16, sizeof(got));
        assert_int_equal(got, 0x1111);
        assert_memory_equal(f->data + PG, orig + PG, PG); /* the private write never got there */
        assert_int_equal(f->writes, 1);
}

/* ---- page cache semantics --------------------------------------------- */

/*
 * MAP_PRIVATE: another process's later shared write shows through on pages
 * this process has not written, and only on those (as on Linux).
 */
static void test_private_show_through(void **state)
{
        (void)state;
        cow_engine *e = new_files(64, 0);
        struct memfile *f = add_file("1000/through", 2 * PG, 9);
        cow_pid p = te_spawn(e, "private"), q = te_spawn(e, "shared");
        uint64_t pr = mmap_file(e, p, 2 * PG, RW, false, f->key, 0);
        uint64_t sh = mmap_file(e, q, 2 * PG, RW, true, f->key, 0);
        (void)te_get64(e, p, pr);
        te_put64(e, p, pr + PG, 0xaaaa);
        assert_true(te_page(e, p, pr).flags & COW_PAGE_COW);
        te_put64(e, q, sh, 0xbbbb);
        te_put64(e, q, sh + PG, 0xcccc);
        assert_int_equal(te_get64(e, p, pr), 0xbbbb);     /* not written: shows through */
        assert_int_equal(te_get64(e, p, pr + PG), 0xaaaa); /* written: its own */
        assert_int_equal(te_proc(e, p).faults_cow_copy, 1);
        te_exit(e, p);
        te_exit(e, q);
        uint64_t got;
        memcpy(&got, f->data + PG, sizeof(got));
        assert_int_equal(got, 0xcccc);
        assert_int_equal(f->writes, 2);
}

/* A private mapping's first write to an untouched page copies the file's page. */
static void test_private_write_untouched(void **state)
{
        (void)state;
        cow_engine *e = new_files(64, 0);
        struct memfile *f = add_file("1000/cow", PG, 10);
        cow_pid p = te_spawn(e, "cow");
        uint64_t a = mmap_file(e, p, PG, RW, false, f->key, 0);
        uint8_t b = 0x5a;
        te_write(e, p, a + 7, &b, 1);
        uint8_t page[PG], want[PG];
        memcpy(want, f->data, PG);
        want[7] = 0x5a;
        te_read(e, p, a, page, PG);
        assert_memory_equal(page, want, PG);
        assert_int_equal(te_sys(e).file_pages, 1); /* the cache keeps the original */
        assert_int_equal(te_sys(e).dirty_pages, 0);
        assert_int_equal(te_used(e), 2);
        te_exit(e, p);
        assert_int_equal(f->writes, 0);
        assert_int_equal(te_used(e), 0);
}

/* The end of a file: zeros past it in its last page, BUS_ADRERR beyond. */
static void test_end_of_file(void **state)
{
        (void)state;
        cow_engine *e = new_files(64, 0);
        const uint64_t size = PG + 904;
        struct memfile *f = add_file("1000/short", size, 11);
        cow_pid p = te_spawn(e, "eof");
        uint64_t a = mmap_file(e, p, 3 * PG, RW, true, f->key, 0);
        uint8_t page[PG];
        te_read(e, p, a + PG, page, PG);
        assert_memory_equal(page, f->data + PG, 904);
        assert_true(te_is_zero(page + 904, PG - 904));

        /* A page wholly beyond the end faults, reads and writes alike, and changes nothing. */
        struct cow_sys_stats before = te_sys(e);
        struct cow_fault fault;
        te_expect_fault(cow_engine_read(e, p, a + 2 * PG + 5, page, 8, &fault), &fault,
                        COW_BUS_ADRERR, a + 2 * PG + 5);
        te_expect_fault(cow_engine_write(e, p, a + PG + 4000, page, 200, &fault), &fault,
                        COW_BUS_ADRERR, a + 2 * PG);
        struct cow_sys_stats after = te_sys(e);
        assert_int_equal(after.bus_faults, before.bus_faults + 2);
        assert_int_equal(after.segv_faults, before.segv_faults);
        assert_int_equal(after.frames_used, before.frames_used);
        assert_int_equal(te_proc(e, p).faults_bus, 2);
        assert_false(te_page(e, p, a + 2 * PG).flags & COW_PAGE_PRESENT);
        /* The byte at 4000 of the last page was not written by the refused access. */
        uint8_t byte;
        assert_ok(cow_engine_read(e, p, a + PG + 4000, &byte, 1, NULL));
        assert_int_equal(byte, 0);

        /* Bytes past the end in the last page are kept in memory but never written back. */
        memset(page, 0x77, PG);
        te_write(e, p, a + PG, page, PG);
        assert_ok(cow_engine_msync(e, p, a, 3 * PG, false));
        assert_int_equal(f->size, size);
        assert_int_equal(fm.extends, 0);
        for (uint64_t i = PG; i < size; i++)
                assert_int_equal(f->data[i], 0x77);
        assert_ok(cow_engine_read(e, p, a + PG + 4000, &byte, 1, NULL));
        assert_int_equal(byte, 0x77);
        assert_verify(e);
}

/* A mapping from an offset sees the file from there; msync of part writes only that part. */
static void test_offset_and_partial_msync(void **state)
{
        (void)state;
        cow_engine *e = new_files(64, 0);
        struct memfile *f = add_file("1000/offset", 4 * PG, 12);
        cow_pid p = te_spawn(e, "offset");
        uint64_t a = mmap_file(e, p, 2 * PG, RW, true, f->key, 2 * PG);
        uint8_t page[PG];
        te_read(e, p, a + PG, page, PG);
        assert_memory_equal(page, f->data + 3 * PG, PG);
        te_put64(e, p, a, 1);
        te_put64(e, p, a + PG, 2);
        assert_ok(cow_engine_msync(e, p, a + PG, PG, false));
        assert_int_equal(f->writes, 1);
        uint64_t got;
        memcpy(&got, f->data + 3 * PG, sizeof(got));
        assert_int_equal(got, 2);
        assert_int_equal(te_sys(e).dirty_pages, 1);
        /* msync needs the range mapped, and a page-aligned address */
        assert_rc(cow_engine_msync(e, p, a + 2 * PG, PG, false), -ENXIO);
        assert_rc(cow_engine_msync(e, p, a + 1, PG, false), -EINVAL);
        assert_rc(cow_engine_msync(e, 999, a, PG, false), -ESRCH);
        assert_ok(cow_engine_sync_files(e, true));
        memcpy(&got, f->data + 2 * PG, sizeof(got));
        assert_int_equal(got, 1);
        assert_int_equal(f->synced_writes, 2);
        assert_true(cow_engine_file_in_use(e, f->key)); /* still mapped */
        struct cow_map_info mi;
        assert_int_equal(cow_engine_maps(e, p, 0, &mi, 1), 1);
        assert_int_equal(mi.kind, COW_MAP_FILE);
        assert_int_equal(mi.offset, 2 * PG);
        assert_string_equal(mi.file_key, f->key);
        assert_verify(e);
}

/* ---- eviction ---------------------------------------------------------- */

/*
 * A shared file mapping larger than memory, next to anonymous memory, with
 * swap: dirty file pages are written back to their file when evicted, never
 * to swap, and come back from the file.
 */
static void test_evict_dirty_file_pages(void **state)
{
        (void)state;
        cow_engine *e = new_files(16, 64);
        struct memfile *f = add_file("1000/big", 40 * PG, 13);
        cow_pid p = te_spawn(e, "big");
        uint64_t a = mmap_file(e, p, 40 * PG, RW, true, f->key, 0);
        uint64_t anon = te_mmap_rw(e, p, 8 * PG);
        uint8_t page[PG], want[PG];
        for (uint64_t i = 0; i < 8; i++) {
                te_pattern(page, PG, 500 + i);
                te_write(e, p, anon + i * PG, page, PG);
        }
        for (uint64_t i = 0; i < 40; i++) {
                te_pattern(page, PG, 1000 + i);
                te_write(e, p, a + i * PG, page, PG);
        }
        struct cow_sys_stats s = te_sys(e);
        assert_true(s.frames_used <= 16);
        assert_true(s.evictions >= 30);
        assert_true(f->writes >= 24); /* written back on eviction, before any msync */
        assert_int_equal(s.writebacks, f->writes);
        /* Swap holds only anonymous pages: at most the 8 of the anonymous mapping. */
        assert_true(sm.writes <= 8);
        assert_int_equal(fm.extends, 0);
        assert_true(te_proc(e, p).rss_pages <= 16);

        for (uint64_t i = 0; i < 40; i++) {
                te_pattern(want, PG, 1000 + i);
                te_read(e, p, a + i * PG, page, PG);
                assert_memory_equal(page, want, PG);
        }
        for (uint64_t i = 0; i < 8; i++) {
                te_pattern(want, PG, 500 + i);
                te_read(e, p, anon + i * PG, page, PG);
                assert_memory_equal(page, want, PG);
        }
        assert_true(te_sys(e).file_reads > 40);
        te_exit(e, p);
        for (uint64_t i = 0; i < 40; i++) {
                te_pattern(want, PG, 1000 + i);
                assert_memory_equal(f->data + i * PG, want, PG);
        }
        assert_int_equal(te_used(e), 0);
}

/* Without swap, clean file pages are simply dropped under pressure; a forked
 * process's private file pages come back from the file the same. */
static void test_evict_without_swap(void **state)
{
        (void)state;
        cow_engine *e = new_files(8, 0);
        struct memfile *f = add_file("1000/ro", 20 * PG, 14);
        cow_pid p = te_spawn(e, "ro");
        uint64_t a = mmap_file(e, p, 20 * PG, COW_PROT_READ, false, f->key, 0);
        cow_pid c = te_fork(e, p);
        uint8_t page[PG];
        for (int round = 0; round < 2; round++) {
                for (uint64_t i = 0; i < 20; i++) {
                        te_read(e, round ? c : p, a + i * PG, page, PG);
                        assert_memory_equal(page, f->data + i * PG, PG);
                }
        }
        assert_true(te_sys(e).evictions >= 12);
        assert_int_equal(f->writes, 0);
        assert_true(te_proc(e, c).rss_pages <= 8);
        te_exit(e, p);
        te_exit(e, c);
}

/* A process at its own limit (max_resident) evicts its own file pages, writing them back. */
static void test_local_limit_evicts_file_pages(void **state)
{
        (void)state;
        cow_engine *e = new_files(64, 0);
        struct memfile *f = add_file("1000/limited", 10 * PG, 21);
        struct cow_spawn_args sa = { .name = "limited", .owner = 1000, .max_resident = 4,
                                     .policy = COW_POLICY_LRU };
        cow_pid p;
        assert_ok(cow_engine_spawn_args(e, &sa, &p));
        uint64_t a = mmap_file(e, p, 10 * PG, RW, true, f->key, 0);
        for (uint64_t i = 0; i < 10; i++)
                te_put64(e, p, a + i * PG, 0x500 + i);
        assert_true(te_proc(e, p).rss_pages <= 4);
        assert_true(f->writes >= 6); /* the pages it gave up went to the file */
        for (uint64_t i = 0; i < 10; i++)
                assert_int_equal(te_get64(e, p, a + i * PG), 0x500 + i);
        assert_true(te_proc(e, p).rss_pages <= 4);
        assert_true(te_sys(e).frames_used <= 4);
        te_exit(e, p);
        for (uint64_t i = 0; i < 10; i++) {
                uint64_t v;
                memcpy(&v, f->data + i * PG, sizeof(v));
                assert_int_equal(v, 0x500 + i);
        }
}

/* ---- backend errors ----------------------------------------------------- */

static void test_write_errors(void **state)
{
        (void)state;
        cow_engine *e = new_files(64, 0);
        struct memfile *f = add_file("1000/full", 2 * PG, 15);
        uint8_t orig[2 * PG];
        memcpy(orig, f->data, sizeof(orig));
        cow_pid p = te_spawn(e, "errors");
        uint64_t a = mmap_file(e, p, 2 * PG, RW, true, f->key, 0);
        te_put64(e, p, a, 0x1234);
        te_put64(e, p, a + PG, 0x5678);

        /* msync fails typed; the pages stay dirty, the data in memory stays right */
        fm.fail_write = -ENOSPC;
        assert_rc(cow_engine_msync(e, p, a, 2 * PG, true), -ENOSPC);
        assert_true(te_page(e, p, a).flags & COW_PAGE_DIRTY);
        assert_int_equal(te_get64(e, p, a), 0x1234);
        assert_memory_equal(f->data, orig, sizeof(orig));
        /* munmap fails and unmaps nothing */
        fm.fail_write = -EIO;
        assert_rc(cow_engine_munmap(e, p, a, 2 * PG), -EIO);
        assert_int_equal(te_proc(e, p).maps, 1);
        assert_int_equal(te_get64(e, p, a + PG), 0x5678);
        assert_verify(e);
        /* a failing sync after a good write reports it; the pages it wrote may
         * not have reached the disk, so they are dirty again, and the retry
         * writes them again before it syncs */
        fm.fail_write = 0;
        fm.fail_sync = -EIO;
        assert_rc(cow_engine_msync(e, p, a, 2 * PG, true), -EIO);
        assert_int_equal(f->writes, 2);
        assert_int_equal(te_sys(e).dirty_pages, 2);
        assert_true(te_page(e, p, a + PG).flags & COW_PAGE_DIRTY);
        fm.fail_sync = 0;
        assert_ok(cow_engine_msync(e, p, a, 2 * PG, true));
        assert_int_equal(f->writes, 4);
        assert_int_equal(f->syncs, 1);
        assert_int_equal(f->synced_writes, 4);
        assert_int_equal(te_sys(e).dirty_pages, 0);

        /* exit always ends the process; a failed write-back keeps the page dirty
         * in the page cache, the file in use, until sync_files succeeds */
        te_put64(e, p, a, 0x9abc);
        fm.fail_write = -EIO;
        uint64_t errors = te_sys(e).file_errors;
        te_exit(e, p);
        assert_true(te_sys(e).file_errors > errors);
        assert_true(cow_engine_file_in_use(e, f->key));
        assert_int_equal(te_sys(e).dirty_pages, 1);
        assert_rc(cow_engine_sync_files(e, true), -EIO);
        fm.fail_write = 0;
        assert_ok(cow_engine_sync_files(e, true));
        assert_false(cow_engine_file_in_use(e, f->key));
        uint64_t got;
        memcpy(&got, f->data, sizeof(got));
        assert_int_equal(got, 0x9abc);
        assert_int_equal(te_used(e), 0);
        assert_verify(e);
}

static void test_read_errors(void **state)
{
        (void)state;
        cow_engine *e = new_files(64, 0);
        struct memfile *f = add_file("1000/eio", 2 * PG, 16);
        cow_pid p = te_spawn(e, "eio");
        uint64_t a = mmap_file(e, p, 2 * PG, RW, false, f->key, 0);
        fm.fail_read = -EIO;
        uint64_t v = 0;
        assert_rc(cow_engine_read(e, p, a, &v, sizeof(v), NULL), -EIO);
        assert_rc(cow_engine_write(e, p, a + PG, &v, sizeof(v), NULL), -EIO);
        assert_false(te_page(e, p, a).flags & COW_PAGE_PRESENT);
        assert_int_equal(te_used(e), 0);
        assert_verify(e);
        fm.fail_read = 0;
        uint64_t want;
        memcpy(&want, f->data, sizeof(want));
        assert_int_equal(te_get64(e, p, a), want);
}

/* Eviction of a dirty file page whose write-back fails fails the access, changing nothing. */
static void test_evict_write_error(void **state)
{
        (void)state;
        cow_engine *e = new_files(4, 0);
        struct memfile *f = add_file("1000/evict-eio", 8 * PG, 17);
        cow_pid p = te_spawn(e, "evict-eio");
        uint64_t a = mmap_file(e, p, 8 * PG, RW, true, f->key, 0);
        for (uint64_t i = 0; i < 4; i++)
                te_put64(e, p, a + i * PG, 100 + i);
        fm.fail_write = -ENOSPC;
        uint64_t v;
        assert_rc(cow_engine_read(e, p, a + 5 * PG, &v, sizeof(v), NULL), -ENOSPC);
        assert_verify(e);
        assert_int_equal(te_sys(e).dirty_pages, 4);
        for (uint64_t i = 0; i < 4; i++)
                assert_int_equal(te_get64(e, p, a + i * PG), 100 + i);
        fm.fail_write = 0;
        memcpy(&v, f->data + 5 * PG, sizeof(v));
        assert_int_equal(te_get64(e, p, a + 5 * PG), v);
        assert_true(f->writes >= 1);
        te_exit(e, p);
        for (uint64_t i = 0; i < 4; i++) {
                memcpy(&v, f->data + i * PG, sizeof(v));
                assert_int_equal(v, 100 + i);
        }
}

/* ---- devices ------------------------------------------------------------ */

/* fb0 across fork: shared, never copied, never counted as used, never evicted. */
static void test_framebuffer_across_fork(void **state)
{
        (void)state;
        cow_engine *e = new_files(8, 16);
        uint64_t fb_bytes = cow_engine_device_bytes(e, COW_DEV_FB0);
        assert_int_equal(fb_bytes, 64 * 32 * 4);
        cow_pid p = te_spawn(e, "draw");
        /* asked private, mapped shared all the same: a device has no copy-on-write */
        uint64_t fb = mmap_device(e, p, COW_DEV_FB0, fb_bytes, false);
        struct cow_map_info mi;
        assert_int_equal(cow_engine_maps(e, p, 0, &mi, 1), 1);
        assert_true(mi.shared);
        assert_int_equal(mi.kind, COW_MAP_DEVICE);
        assert_int_equal(mi.device, COW_DEV_FB0);

        uint32_t px = 0xff00ff00;
        te_write(e, p, fb + 4 * (3 * 64 + 5), &px, 4);
        cow_pid c = te_fork(e, p);
        uint32_t px2 = 0xffff0000;
        te_write(e, c, fb + 4 * (31 * 64 + 63), &px2, 4);
        uint32_t got = 0;
        te_read(e, p, fb + 4 * (31 * 64 + 63), &got, 4);
        assert_int_equal(got, px2);
        assert_int_equal(te_page(e, p, fb).frame, te_page(e, c, fb).frame);
        assert_true(te_page(e, c, fb).flags & COW_PAGE_DEVICE);
        assert_true(te_page(e, c, fb).frame > te_sys(e).frames_total);
        assert_int_equal(te_proc(e, c).faults_cow_copy, 0);
        assert_int_equal(te_used(e), 0);
        assert_int_equal(te_proc(e, p).device_pages, 2);
        /* Two processes on two device pages: sharing saves two pages, no more. */
        assert_int_equal(te_sys(e).bytes_saved, 2 * PG);
        /* A second process maps it too. */
        cow_pid q = te_spawn(e, "viewer");
        uint64_t fb2 = mmap_device(e, q, COW_DEV_FB0, PG, true);
        te_read(e, q, fb2 + 4 * (3 * 64 + 5), &got, 4);
        assert_int_equal(got, px);

        /* Memory pressure evicts anonymous pages, never device ones. */
        uint64_t anon = te_mmap_rw(e, p, 12 * PG);
        for (uint64_t i = 0; i < 12; i++)
                te_put64(e, p, anon + i * PG, i);
        assert_true(te_sys(e).evictions > 0);
        assert_true(te_page(e, p, fb).flags & COW_PAGE_PRESENT);

        /* A screenshot reads the pixels back. */
        uint8_t *shot = malloc(fb_bytes);
        assert_non_null(shot);
        assert_ok(cow_engine_device_read(e, COW_DEV_FB0, 0, shot, fb_bytes));
        memcpy(&got, shot + 4 * (3 * 64 + 5), 4);
        assert_int_equal(got, px);
        memcpy(&got, shot + 4 * (31 * 64 + 63), 4);
        assert_int_equal(got, px2);
        assert_rc(cow_engine_device_read(e, COW_DEV_FB0, 1, shot, fb_bytes), -EINVAL);
        assert_rc(cow_engine_device_read(e, (enum cow_device)5, 0, shot, 1), -EINVAL);
        free(shot);
        te_exit(e, c);
        te_exit(e, p);
        te_exit(e, q);
        assert_int_equal(te_used(e), 0);
}

/* The console: bytes from two processes appear in the log in the order written. */
static void test_console_log(void **state)
{
        (void)state;
        cow_engine *e = new_files(8, 0);
        cow_pid p = te_spawn(e, "a"), q = te_spawn(e, "b");
        uint64_t cp = mmap_device(e, p, COW_DEV_CONSOLE, PG, true);
        uint64_t cq = mmap_device(e, q, COW_DEV_CONSOLE, PG, true);
        te_write(e, p, cp, "hello ", 6);
        te_write(e, q, cq + 100, "from b, ", 8);
        te_write(e, p, cp + 6, "and a\n", 6);
        char buf[64];
        uint64_t pos = 99;
        int n = cow_engine_console_read(e, 0, buf, sizeof(buf), &pos);
        assert_int_equal(n, 20);
        assert_int_equal(pos, 0);
        assert_memory_equal(buf, "hello from b, and a\n", 20);
        assert_int_equal(cow_engine_console_end(e), 20);
        /* A reader picks up where it was; nothing new is 0. */
        n = cow_engine_console_read(e, 6, buf, 4, &pos);
        assert_int_equal(n, 4);
        assert_memory_equal(buf, "from", 4);
        assert_int_equal(cow_engine_console_read(e, 20, buf, sizeof(buf), &pos), 0);
        /* The ring keeps the newest console_log_bytes (1024): an old position skips ahead. */
        char line[300];
        for (int i = 0; i < 5; i++) {
                memset(line, 'a' + i, sizeof(line));
                te_write(e, q, cq, line, sizeof(line));
        }
        assert_int_equal(cow_engine_console_end(e), 1520);
        char all[1100];
        n = cow_engine_console_read(e, 0, all, sizeof(all), &pos);
        assert_int_equal(n, 1024);
        assert_int_equal(pos, 1520 - 1024);
        assert_int_equal(all[1023], 'e');
        assert_int_equal(all[0], 'b');
        assert_int_equal(te_sys(e).console_bytes, 1520);
        /* Console page bytes read back as memory, too. */
        te_read(e, p, cp, buf, 6);
        assert_memory_equal(buf, "eeeeee", 6);
        assert_verify(e);
}

/* Adjacent device mappings stay apart through mprotect: each keeps its own frames. */
static void test_device_mappings_never_merge(void **state)
{
        (void)state;
        cow_engine *e = new_files(8, 0);
        cow_pid p = te_spawn(e, "adjacent");
        struct cow_mmap_args a = { .addr = 0x100000, .length = PG, .prot = RW, .shared = true,
                                   .kind = COW_MAP_DEVICE, .device = COW_DEV_FB0 };
        uint64_t got;
        assert_ok(cow_engine_mmap(e, p, &a, &got));
        a.addr += PG;
        a.device = COW_DEV_CONSOLE;
        assert_ok(cow_engine_mmap(e, p, &a, &got));
        assert_ok(cow_engine_mprotect(e, p, 0x100000, 2 * PG, COW_PROT_READ));
        assert_int_equal(te_proc(e, p).maps, 2);
        assert_ok(cow_engine_mprotect(e, p, 0x100000, 2 * PG, RW));
        te_put64(e, p, 0x100000 + PG, 0x41);
        assert_int_equal(cow_engine_console_end(e), 8);
        uint64_t px;
        assert_ok(cow_engine_device_read(e, COW_DEV_FB0, 0, &px, sizeof(px)));
        assert_int_equal(px, 0);
        assert_verify(e);
}

/* MAP_FIXED over a dirty shared file mapping writes it back first; madvise
 * DONTNEED on a private one drops its copies, the file's bytes show again. */
static void test_fixed_replace_and_dontneed(void **state)
{
        (void)state;
        cow_engine *e = new_files(64, 0);
        struct memfile *f = add_file("1000/fixed", 2 * PG, 19);
        cow_pid p = te_spawn(e, "fixed");
        uint64_t sh = mmap_file(e, p, 2 * PG, RW, true, f->key, 0);
        te_put64(e, p, sh + PG, 0x4242);
        struct cow_mmap_args a = { .addr = sh, .length = 2 * PG, .prot = RW, .fixed = true };
        uint64_t got;
        fm.fail_write = -EIO;
        assert_rc(cow_engine_mmap(e, p, &a, &got), -EIO);
        assert_int_equal(te_get64(e, p, sh + PG), 0x4242);
        fm.fail_write = 0;
        assert_ok(cow_engine_mmap(e, p, &a, &got));
        uint64_t v;
        memcpy(&v, f->data + PG, sizeof(v));
        assert_int_equal(v, 0x4242);
        assert_int_equal(te_get64(e, p, sh + PG), 0); /* anonymous now */
        assert_false(cow_engine_file_in_use(e, f->key));

        uint64_t pr = mmap_file(e, p, 2 * PG, RW, false, f->key, 0);
        te_put64(e, p, pr, 0x99);
        assert_ok(cow_engine_madvise(e, p, pr, PG, COW_MADV_DONTNEED));
        memcpy(&v, f->data, sizeof(v));
        assert_int_equal(te_get64(e, p, pr), v);
        assert_verify(e);
}

/* ---- a randomised model --------------------------------------------------- */

/*
 * Random mmap, munmap, msync, fork, exit, reads and writes over one file in a
 * memory of 8 frames with swap, against a model: what a shared mapper sees
 * (view), and each private mapping's own copies of the pages it wrote. After
 * an msync the file holds the view for that range; at the end, after
 * sync_files, for all of it. cow_engine_verify() runs after every step.
 */
#define MODEL_PAGES 13
#define MODEL_SIZE (12 * PG + 1000)
#define MODEL_PROCS 4
#define MODEL_MAPS 4

struct model_map {
        bool used, shared;
        uint64_t addr, pgoff, npages;
        uint8_t *copy[MODEL_PAGES]; /* private pages written: this mapping's own bytes */
};

struct model_proc {
        cow_pid pid;
        struct model_map m[MODEL_MAPS];
};

static uint64_t model_rand(uint64_t *x)
{
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        return *x;
}

static void model_unmap(struct model_map *m)
{
        for (int i = 0; i < MODEL_PAGES; i++)
                free(m->copy[i]);
        *m = (struct model_map){ 0 };
}

/* The bytes the model says page i of mapping m shows. */
static const uint8_t *model_page(const uint8_t *view, const struct model_map *m, uint64_t i)
{
        return m->copy[i] ? m->copy[i] : view + (m->pgoff + i) * PG;
}

static void model_sequence(uint64_t seed, int steps)
{
        cow_engine *e = new_files(8, 256);
        struct memfile *f = add_file("1000/model", MODEL_SIZE, seed);
        static uint8_t view[MODEL_PAGES * PG];
        memset(view, 0, sizeof(view));
        memcpy(view, f->data, MODEL_SIZE);
        struct model_proc procs[MODEL_PROCS] = { 0 };
        procs[0].pid = te_spawn(e, "model");
        uint64_t x = seed * 2654435761u + 1;
        uint8_t buf[PG];

        for (int step = 0; step < steps; step++) {
                struct model_proc *p = &procs[model_rand(&x) % MODEL_PROCS];
                if (!p->pid)
                        continue;
                struct model_map *m = &p->m[model_rand(&x) % MODEL_MAPS];
                unsigned op = (unsigned)(model_rand(&x) % 10);
                if (!m->used && op < 8) {
                        m->pgoff = model_rand(&x) % MODEL_PAGES;
                        m->npages = 1 + model_rand(&x) % (MODEL_PAGES - m->pgoff);
                        m->shared = model_rand(&x) % 2;
                        m->addr = mmap_file(e, p->pid, m->npages * PG, RW, m->shared, f->key,
                                            m->pgoff * PG);
                        m->used = true;
                        continue;
                }
                if (op < 4 && m->used) { /* a write within the file's bytes */
                        uint64_t i = model_rand(&x) % m->npages;
                        uint64_t base = (m->pgoff + i) * PG;
                        uint64_t off = model_rand(&x) % PG, len = 1 + model_rand(&x) % 64;
                        if (base + off + len > MODEL_SIZE || off + len > PG)
                                continue;
                        te_pattern(buf, len, x);
                        te_write(e, p->pid, m->addr + i * PG + off, buf, len);
                        if (m->shared) {
                                memcpy(view + base + off, buf, len);
                        } else {
                                if (!m->copy[i]) {
                                        m->copy[i] = malloc(PG);
                                        assert_non_null(m->copy[i]);
                                        memcpy(m->copy[i], view + base, PG);
                                }
                                memcpy(m->copy[i] + off, buf, len);
                        }
                } else if (op < 7 && m->used) { /* a whole page read back */
                        uint64_t i = model_rand(&x) % m->npages;
                        te_read(e, p->pid, m->addr + i * PG, buf, PG);
                        assert_memory_equal(buf, model_page(view, m, i), PG);
                } else if (op == 7 && m->used) { /* msync: the file catches up there */
                        assert_ok(cow_engine_msync(e, p->pid, m->addr, m->npages * PG, true));
                        assert_verify(e);
                        if (m->shared) {
                                uint64_t lo = m->pgoff * PG, hi = (m->pgoff + m->npages) * PG;
                                if (hi > MODEL_SIZE)
                                        hi = MODEL_SIZE;
                                if (lo < hi)
                                        assert_memory_equal(f->data + lo, view + lo, hi - lo);
                        }
                } else if (op == 8 && m->used) {
                        assert_ok(cow_engine_munmap(e, p->pid, m->addr, m->npages * PG));
                        assert_verify(e);
                        model_unmap(m);
                } else if (op == 9) { /* fork into a free slot, or exit */
                        struct model_proc *c = NULL;
                        for (int k = 0; k < MODEL_PROCS && !c; k++)
                                if (!procs[k].pid)
                                        c = &procs[k];
                        if (c && model_rand(&x) % 2) {
                                c->pid = te_fork(e, p->pid);
                                for (int k = 0; k < MODEL_MAPS; k++) {
                                        c->m[k] = p->m[k];
                                        for (int i = 0; i < MODEL_PAGES; i++) {
                                                if (!p->m[k].copy[i])
                                                        continue;
                                                c->m[k].copy[i] = malloc(PG);
                                                assert_non_null(c->m[k].copy[i]);
                                                memcpy(c->m[k].copy[i], p->m[k].copy[i], PG);
                                        }
                                }
                        } else if (p != &procs[0]) {
                                te_exit(e, p->pid);
                                for (int k = 0; k < MODEL_MAPS; k++)
                                        model_unmap(&p->m[k]);
                                p->pid = 0;
                        }
                }
        }
        assert_ok(cow_engine_sync_files(e, true));
        assert_memory_equal(f->data, view, MODEL_SIZE);
        assert_int_equal(fm.extends, 0);
        for (int k = 0; k < MODEL_PROCS; k++) {
                if (procs[k].pid)
                        te_exit(e, procs[k].pid);
                for (int j = 0; j < MODEL_MAPS; j++)
                        model_unmap(&procs[k].m[j]);
        }
        assert_false(cow_engine_file_in_use(e, f->key));
        assert_int_equal(te_used(e), 0);
        assert_true(te_sys(e).evictions > 0);
        te_free(e);
        filemem_fini(&fm);
}

static void test_random_against_model(void **state)
{
        (void)state;
        for (uint64_t seed = 1; seed <= 40; seed++)
                model_sequence(seed, 600);
}

/* ---- checkpoints ------------------------------------------------------- */

static cow_engine *round_trip(cow_engine *e)
{
        struct cow_engine_config cfg = files_config(16, 64);
        struct blob b = { 0 };
        assert_ok(cow_engine_save(e, blob_sink, &b));
        cow_engine *back = NULL;
        const char *why = NULL;
        struct swapmem sm2;
        assert_ok(swapmem_init(&sm2, 64, PG));
        int r = cow_engine_load_swap(&cfg, blob_source, &b, &swapmem_ops, &sm2, &back, &why);
        if (r != 0)
                fail_msg("load: %d %s", r, why ? why : "");
        te_track(back);
        /* The restored engine's swap moves to sm, so the test's backend keeps working. */
        swapmem_fini(&sm);
        sm = sm2;
        cow_engine_set_swap(back, &swapmem_ops, &sm);
        cow_engine_set_files(back, &filemem_ops, &fm);
        /* Saved again, it is the same bytes. */
        struct blob b2 = { 0 };
        assert_ok(cow_engine_save(back, blob_sink, &b2));
        assert_int_equal(b.len, b2.len);
        assert_memory_equal(b.p, b2.p, b.len);
        free(b.p);
        free(b2.p);
        assert_verify(back);
        return back;
}

/* The page cache (dirty pages, evicted pages), file and device mappings and the console survive. */
static void test_checkpoint_round_trip(void **state)
{
        (void)state;
        cow_engine *e = new_files(16, 64);
        struct memfile *f = add_file("1000/ckpt", 24 * PG + 10, 18);
        cow_pid p = te_spawn(e, "ckpt");
        uint64_t sh = mmap_file(e, p, 25 * PG, RW, true, f->key, 0);
        uint64_t pr = mmap_file(e, p, 2 * PG, RW, false, f->key, 0);
        uint64_t fb = mmap_device(e, p, COW_DEV_FB0, PG, true);
        uint64_t con = mmap_device(e, p, COW_DEV_CONSOLE, PG, true);
        for (uint64_t i = 0; i < 25; i++)
                te_put64(e, p, sh + i * PG, 0x100 + i); /* evicts, some pages out */
        te_put64(e, p, pr + 8, 0x77);
        te_put64(e, p, fb + 16, 0xdeadbeef);
        te_write(e, p, con, "saved\n", 6);
        cow_pid c = te_fork(e, p);
        assert_true(te_sys(e).evictions > 0);
        uint64_t writes = f->writes;

        cow_engine *back = round_trip(e);
        te_free(e);
        assert_int_equal(f->writes, writes); /* a checkpoint writes nothing back */
        assert_true(cow_engine_file_in_use(back, f->key));
        for (uint64_t i = 0; i < 25; i++)
                assert_int_equal(te_get64(back, c, sh + i * PG), 0x100 + i);
        assert_int_equal(te_get64(back, c, pr + 8), 0x77);
        assert_int_equal(te_get64(back, p, fb + 16), 0xdeadbeef);
        char buf[16];
        uint64_t pos;
        assert_int_equal(cow_engine_console_read(back, 0, buf, sizeof(buf), &pos), 6);
        assert_memory_equal(buf, "saved\n", 6);
        te_write(back, c, con, "again\n", 6);
        assert_int_equal(cow_engine_console_end(back), 12);
        te_exit(back, c);
        te_exit(back, p);
        assert_false(cow_engine_file_in_use(back, f->key));
        for (uint64_t i = 0; i < 24; i++) {
                uint64_t v;
                memcpy(&v, f->data + i * PG, sizeof(v));
                assert_int_equal(v, 0x100 + i);
        }
        assert_int_equal(fm.extends, 0);
}

/* A checkpoint of another framebuffer geometry does not fit. */
static void test_checkpoint_misfit(void **state)
{
        (void)state;
        cow_engine *e = new_files(16, 0);
        struct blob b = { 0 };
        assert_ok(cow_engine_save(e, blob_sink, &b));
        struct cow_engine_config cfg = files_config(16, 0);
        cfg.fb_width = 640;
        cow_engine *back = NULL;
        const char *why = NULL;
        assert_rc(cow_engine_load(&cfg, blob_source, &b, &back, &why), -EINVAL);
        assert_non_null(why);
        free(b.p);
}

/* A committed checkpoint of an earlier format (fuzz corpus: no closing CRC), CRC appended. */
static struct blob corpus_checkpoint(const char *name)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", COWD_CHECKPOINT_CORPUS, name);
        FILE *in = fopen(path, "rb");
        assert_non_null(in);
        struct blob b = { 0 };
        uint8_t chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0)
                assert_ok(blob_sink(&b, chunk, n));
        fclose(in);
        uint32_t crc = crc32_update(0, b.p, b.len);
        uint8_t tail[4] = { (uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16),
                            (uint8_t)(crc >> 24) };
        assert_ok(blob_sink(&b, tail, sizeof(tail)));
        return b;
}

/*
 * Checkpoints of versions 1 and 2 still load, with no files and blank
 * devices, and the engine they make maps files and devices and saves in the
 * current format (4: files and devices came with 3, per-owner charges with 4).
 */
static void test_earlier_versions_load(void **state)
{
        (void)state;
        const char *names[] = { "fork-tree", "swapped" };
        for (int k = 0; k < 2; k++) {
                struct blob b = corpus_checkpoint(names[k]);
                assert_int_equal(b.p[8], k + 1);
                struct cow_engine_config cfg;
                cow_engine_config_init(&cfg); /* the shape fuzz_checkpoint's seeds have */
                cfg.mem_bytes = 64 * 4096;
                cfg.tlb_entries = 8;
                cfg.tlb_ways = 2;
                cfg.max_procs = 64;
                cfg.max_maps_per_proc = 64;
                cfg.max_pt_bytes = 256 * 4096 * 2;
                cfg.swap_slots = k ? 16 : 0;
                swapmem_fini(&sm);
                assert_ok(swapmem_init(&sm, 16, PG));
                cow_engine *e = NULL;
                const char *why = NULL;
                int r = cow_engine_load_swap(&cfg, blob_source, &b, k ? &swapmem_ops : NULL,
                                             k ? &sm : NULL, &e, &why);
                if (r != 0)
                        fail_msg("%s: %d %s", names[k], r, why ? why : "");
                te_track(e);
                free(b.p);
                assert_verify(e);
                assert_int_equal(te_sys(e).files, 0);
                assert_int_equal(cow_engine_console_end(e), 0);
                filemem_fini(&fm);
                cow_engine_set_files(e, &filemem_ops, &fm);
                struct memfile *f = add_file("1000/new", PG, 20);
                cow_pid p = cow_engine_proc_next(e, 0);
                assert_true(p != 0);
                uint64_t a = mmap_file(e, p, PG, RW, true, f->key, 0);
                te_put64(e, p, a, 0x33);
                uint64_t con = mmap_device(e, p, COW_DEV_CONSOLE, PG, true);
                te_write(e, p, con, "v3", 2);
                struct blob out = { 0 };
                assert_ok(cow_engine_save(e, blob_sink, &out));
                assert_int_equal(out.p[8], 4); /* saved in the current format */
                cow_engine *back = NULL;
                assert_ok(cow_engine_load_swap(&cfg, blob_source, &out, k ? &swapmem_ops : NULL,
                                               k ? &sm : NULL, &back, &why));
                te_track(back);
                cow_engine_set_files(back, &filemem_ops, &fm);
                assert_int_equal(te_get64(back, p, a), 0x33);
                assert_int_equal(cow_engine_console_end(back), 2);
                free(out.p);
                te_free(back);
                te_free(e);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_mmap_read, fm_teardown),
                cmocka_unit_test_teardown(test_mmap_write, fm_teardown),
                cmocka_unit_test_teardown(test_mmap_shuffle, fm_teardown),
                cmocka_unit_test_teardown(test_mmap_twice, fm_teardown),
                cmocka_unit_test_teardown(test_mmap_exit, fm_teardown),
                cmocka_unit_test_teardown(test_mmap_clean, fm_teardown),
                cmocka_unit_test_teardown(test_mmap_unmap, fm_teardown),
                cmocka_unit_test_teardown(test_mmap_overlap, fm_teardown),
                cmocka_unit_test_teardown(test_mmap_zero, fm_teardown),
                cmocka_unit_test_teardown(test_mmap_bad, fm_teardown),
                cmocka_unit_test_teardown(test_mmap_inherit, fm_teardown),
                cmocka_unit_test_teardown(test_private_show_through, fm_teardown),
                cmocka_unit_test_teardown(test_private_write_untouched, fm_teardown),
                cmocka_unit_test_teardown(test_end_of_file, fm_teardown),
                cmocka_unit_test_teardown(test_offset_and_partial_msync, fm_teardown),
                cmocka_unit_test_teardown(test_evict_dirty_file_pages, fm_teardown),
                cmocka_unit_test_teardown(test_evict_without_swap, fm_teardown),
                cmocka_unit_test_teardown(test_local_limit_evicts_file_pages, fm_teardown),
                cmocka_unit_test_teardown(test_write_errors, fm_teardown),
                cmocka_unit_test_teardown(test_read_errors, fm_teardown),
                cmocka_unit_test_teardown(test_evict_write_error, fm_teardown),
                cmocka_unit_test_teardown(test_framebuffer_across_fork, fm_teardown),
                cmocka_unit_test_teardown(test_console_log, fm_teardown),
                cmocka_unit_test_teardown(test_device_mappings_never_merge, fm_teardown),
                cmocka_unit_test_teardown(test_fixed_replace_and_dontneed, fm_teardown),
                cmocka_unit_test_teardown(test_random_against_model, fm_teardown),
                cmocka_unit_test_teardown(test_checkpoint_round_trip, fm_teardown),
                cmocka_unit_test_teardown(test_checkpoint_misfit, fm_teardown),
                cmocka_unit_test_teardown(test_earlier_versions_load, fm_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
