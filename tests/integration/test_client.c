/* SPDX-License-Identifier: MIT */
/*
 * Every operation through the client library against a real daemon, each with
 * its success and its error codes. Run under with_daemon.py, which starts cowd
 * with a small memory (--memory 1M: 256 frames) and sets $COWD_SOCKET.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cowd/client.h>

#define PAGE 4096u
#define FRAMES 256u /* what with_daemon.py gives this test */

static cowc_conn *conn;

static int setup(void **state)
{
        (void)state;
        return cowc_connect(NULL, NULL, &conn) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
        (void)state;
        cowc_close(conn);
        return 0;
}

static uint32_t spawn(const char *name)
{
        uint32_t pid = 0;
        struct cowc_error err;
        assert_int_equal(cowc_spawn(conn, name, &pid, &err), 0);
        assert_true(pid > 0);
        return pid;
}

static uint64_t map(uint32_t pid, uint64_t len, uint32_t prot, bool shared)
{
        struct cowc_mmap_args a = { .length = len, .prot = prot, .shared = shared };
        uint64_t addr = 0;
        struct cowc_error err;
        assert_int_equal(cowc_mmap(conn, pid, &a, &addr, &err), 0);
        return addr;
}

static uint64_t frames_used(void)
{
        Cowd__V1__Response *r = NULL;
        struct cowc_error err;
        assert_int_equal(cowc_sys_stats(conn, &r, &err), 0);
        uint64_t used = r->sys_stats->frames_used;
        assert_int_equal(r->sys_stats->frames_total, FRAMES);
        cowc_response_free(r);
        return used;
}

static void test_hello(void **state)
{
        (void)state;
        struct cowc_server_info info;
        struct cowc_error err;
        assert_int_equal(cowc_hello(conn, "test_client", &info, &err), 0);
        assert_int_equal(info.page_size, PAGE);
        assert_true(info.protocol_version >= 1);
        assert_true(info.max_frame_bytes > PAGE);
}

static void test_spawn_fork_exit(void **state)
{
        (void)state;
        struct cowc_error err;
        uint32_t a = spawn("parent"), b = spawn(NULL), child = 0;
        assert_true(b > a); /* pids only grow */

        assert_int_equal(cowc_fork(conn, a, &child, &err), 0);
        assert_true(child > b);
        assert_int_equal(cowc_fork(conn, 999999, &child, &err), COWD__V1__CODE__NOT_FOUND);
        assert_int_equal(err.code, COWD__V1__CODE__NOT_FOUND);
        assert_true(err.message[0] != '\0');

        Cowd__V1__Response *r = NULL;
        assert_int_equal(cowc_list_procs(conn, 0, &r, &err), 0);
        bool found = false;
        for (size_t i = 0; i < r->list_procs->n_procs; i++) {
                const Cowd__V1__ProcInfo *p = r->list_procs->procs[i];
                if (p->pid == child) {
                        found = true;
                        assert_int_equal(p->ppid, a);
                        assert_string_equal(p->name, "parent");
                }
        }
        assert_true(found);
        cowc_response_free(r);

        assert_int_equal(cowc_exit(conn, child, &err), 0);
        assert_int_equal(cowc_exit(conn, child, &err), COWD__V1__CODE__NOT_FOUND);
        assert_int_equal(cowc_exit(conn, a, &err), 0);
        assert_int_equal(cowc_exit(conn, b, &err), 0);
}

/* A spawn's own shape is checked before the engine is asked. */
static void test_spawn_args_are_checked(void **state)
{
        (void)state;
        struct cowc_error err;
        uint32_t pid = 0;
        struct cowc_spawn_args bad_policy = { .name = "p", .policy = 9 };
        struct cowc_spawn_args ways_alone = { .name = "w", .tlb_ways = 4 };

        assert_int_equal(cowc_spawn_args(conn, &bad_policy, &pid, &err),
                         COWD__V1__CODE__INVALID_ARGUMENT);
        assert_non_null(strstr(err.message, "unknown policy"));
        assert_int_equal(cowc_spawn_args(conn, &ways_alone, &pid, &err),
                         COWD__V1__CODE__INVALID_ARGUMENT);
        assert_non_null(strstr(err.message, "tlb_ways needs tlb_entries"));
        assert_int_equal(pid, 0);
}

static void test_mmap_errors(void **state)
{
        (void)state;
        struct cowc_error err;
        uint32_t pid = spawn("maps");
        uint64_t addr = map(pid, 2 * PAGE, 3, false), got = 0;

        struct cowc_mmap_args zero = { .length = 0, .prot = 3 };
        assert_int_equal(cowc_mmap(conn, pid, &zero, &got, &err),
                         COWD__V1__CODE__INVALID_ARGUMENT);
        struct cowc_mmap_args overlap = { .addr = addr, .length = PAGE, .prot = 3 };
        assert_int_equal(cowc_mmap(conn, pid, &overlap, &got, &err),
                         COWD__V1__CODE__ALREADY_EXISTS);
        overlap.fixed = true;
        assert_int_equal(cowc_mmap(conn, pid, &overlap, &got, &err), 0);
        assert_int_equal(got, addr);
        struct cowc_mmap_args badprot = { .length = PAGE, .prot = 8 };
        assert_int_equal(cowc_mmap(conn, pid, &badprot, &got, &err),
                         COWD__V1__CODE__INVALID_ARGUMENT);
        struct cowc_mmap_args huge = { .length = UINT64_C(1) << 62, .prot = 3 };
        int r = cowc_mmap(conn, pid, &huge, &got, &err);
        assert_true(r == COWD__V1__CODE__INVALID_ARGUMENT ||
                    r == COWD__V1__CODE__RESOURCE_EXHAUSTED);
        struct cowc_mmap_args nopid = { .length = PAGE, .prot = 3 };
        assert_int_equal(cowc_mmap(conn, 999999, &nopid, &got, &err), COWD__V1__CODE__NOT_FOUND);

        assert_int_equal(cowc_munmap(conn, pid, addr + 1, PAGE, &err),
                         COWD__V1__CODE__INVALID_ARGUMENT);
        assert_int_equal(cowc_munmap(conn, pid, addr, PAGE, &err), 0);
        assert_int_equal(cowc_exit(conn, pid, &err), 0);
}

static void test_read_write_faults(void **state)
{
        (void)state;
        struct cowc_error err;
        uint32_t pid = spawn("rw");
        uint64_t addr = map(pid, 2 * PAGE, 3, false);
        char buf[16] = { 0 };

        assert_int_equal(cowc_write(conn, pid, addr + 10, "hello", 5, &err), 0);
        assert_int_equal(cowc_read(conn, pid, addr + 10, buf, 5, &err), 0);
        assert_memory_equal(buf, "hello", 5);

        /* Unmapped: SEGV_MAPERR at the first byte past the mapping. */
        assert_int_equal(cowc_write(conn, pid, addr + 2 * PAGE - 2, "abcd", 4, &err),
                         COWD__V1__CODE__FAILED_PRECONDITION);
        assert_int_equal(err.fault, COWD__V1__FAULT_KIND__SEGV_MAPERR);
        assert_int_equal(err.fault_addr, addr + 2 * PAGE);
        /* Nothing of the refused write landed. */
        assert_int_equal(cowc_read(conn, pid, addr + 2 * PAGE - 2, buf, 2, &err), 0);
        assert_memory_equal(buf, "\0\0", 2);

        /* Read-only: SEGV_ACCERR. */
        assert_int_equal(cowc_mprotect(conn, pid, addr, PAGE, 1, &err), 0);
        assert_int_equal(cowc_write(conn, pid, addr + 3, "x", 1, &err),
                         COWD__V1__CODE__FAILED_PRECONDITION);
        assert_int_equal(err.fault, COWD__V1__FAULT_KIND__SEGV_ACCERR);
        assert_int_equal(err.fault_addr, addr + 3);
        assert_int_not_equal(cowc_mprotect(conn, pid, addr, 64 * PAGE, 1, &err), 0);

        /* madvise(DONTNEED) drops a private page: it reads as zero again. */
        assert_int_equal(cowc_mprotect(conn, pid, addr, PAGE, 3, &err), 0);
        assert_int_equal(cowc_madvise(conn, pid, addr, PAGE, COWD__V1__ADVICE__ADVICE_DONTNEED,
                                      &err), 0);
        assert_int_equal(cowc_read(conn, pid, addr + 10, buf, 5, &err), 0);
        assert_memory_equal(buf, "\0\0\0\0\0", 5);
        assert_int_equal(cowc_madvise(conn, pid, addr, PAGE, 77, &err),
                         COWD__V1__CODE__INVALID_ARGUMENT);

        assert_int_equal(cowc_write(conn, 999999, addr, "x", 1, &err), COWD__V1__CODE__NOT_FOUND);
        assert_int_equal(cowc_exit(conn, pid, &err), 0);
}

static void test_copy_on_write_and_stats(void **state)
{
        (void)state;
        struct cowc_error err;
        uint32_t parent = spawn("cow"), child = 0;
        uint64_t addr = map(parent, 4 * PAGE, 3, false);
        uint64_t base = frames_used();
        char page[PAGE];
        memset(page, 'p', sizeof(page));
        for (int i = 0; i < 4; i++)
                assert_int_equal(cowc_write(conn, parent, addr + i * PAGE, page, PAGE, &err), 0);
        assert_int_equal(frames_used(), base + 4);

        assert_int_equal(cowc_fork(conn, parent, &child, &err), 0);
        assert_int_equal(frames_used(), base + 4);
        assert_int_equal(cowc_write(conn, child, addr, "c", 1, &err), 0);
        assert_int_equal(frames_used(), base + 5);

        char got[2];
        assert_int_equal(cowc_read(conn, parent, addr, got, 1, &err), 0);
        assert_int_equal(got[0], 'p');
        assert_int_equal(cowc_read(conn, child, addr, got, 1, &err), 0);
        assert_int_equal(got[0], 'c');

        Cowd__V1__Response *r = NULL;
        assert_int_equal(cowc_proc_stats(conn, child, &r, &err), 0);
        assert_int_equal(r->proc_stats->rss_pages, 4);
        assert_int_equal(r->proc_stats->uss_pages, 1);
        assert_int_equal(r->proc_stats->shared_pages, 3);
        assert_int_equal(r->proc_stats->faults_cow_copy, 1);
        assert_int_equal(r->proc_stats->pss_bytes, PAGE + 3 * PAGE / 2);
        cowc_response_free(r);
        assert_int_equal(cowc_proc_stats(conn, 999999, &r, &err), COWD__V1__CODE__NOT_FOUND);

        assert_int_equal(cowc_page_map(conn, child, addr, 2 * PAGE, &r, &err), 0);
        assert_int_equal(r->page_map->n_pages, 2);
        assert_true(r->page_map->pages[0]->writable);
        assert_int_equal(r->page_map->pages[0]->sharers, 1);
        assert_true(r->page_map->pages[1]->cow);
        assert_int_equal(r->page_map->pages[1]->sharers, 2);
        cowc_response_free(r);

        assert_int_equal(cowc_exit(conn, child, &err), 0);
        assert_int_equal(cowc_exit(conn, parent, &err), 0);
        assert_int_equal(frames_used(), base);
}

static void test_shared_mapping_across_fork(void **state)
{
        (void)state;
        struct cowc_error err;
        uint32_t parent = spawn("shm"), child = 0;
        uint64_t addr = map(parent, PAGE, 3, true);
        assert_int_equal(cowc_fork(conn, parent, &child, &err), 0);
        assert_int_equal(cowc_write(conn, child, addr, "seen", 4, &err), 0);
        char got[4];
        assert_int_equal(cowc_read(conn, parent, addr, got, 4, &err), 0);
        assert_memory_equal(got, "seen", 4);
        assert_int_equal(cowc_exit(conn, child, &err), 0);
        assert_int_equal(cowc_exit(conn, parent, &err), 0);
}

static void test_out_of_memory_changes_nothing(void **state)
{
        (void)state;
        struct cowc_error err;
        uint32_t pid = spawn("oom");
        /* Twice the memory: frames run out long before the mapping does. */
        uint64_t len = (uint64_t)(2 * FRAMES) * PAGE;
        uint64_t addr = map(pid, len, 3, false);
        uint64_t before = frames_used();
        char *buf = calloc(1, 512 * 1024);
        assert_non_null(buf);
        memset(buf, 'm', 512 * 1024);

        int r = 0;
        uint64_t at = addr;
        while (r == 0 && at < addr + len) {
                r = cowc_write(conn, pid, at, buf, 512 * 1024, &err);
                if (r == 0)
                        at += 512 * 1024;
        }
        assert_int_equal(r, COWD__V1__CODE__RESOURCE_EXHAUSTED);
        /* The refused write took no frame and left its pages unwritten. */
        uint64_t after = frames_used();
        assert_int_equal(after, before + (at - addr) / PAGE);
        assert_int_equal(cowc_read(conn, pid, at, buf, 16, &err), 0);
        assert_memory_equal(buf, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
        free(buf);
        assert_int_equal(cowc_exit(conn, pid, &err), 0);
        assert_int_equal(frames_used(), before);
}

static void test_list_maps(void **state)
{
        (void)state;
        struct cowc_error err;
        uint32_t pid = spawn("maps");
        uint64_t a = map(pid, 3 * PAGE, 3, false), b = map(pid, PAGE, 1, true);
        struct cowc_mmap_args high = { .addr = UINT64_C(0x7f0000000000), .length = 2 * PAGE,
                                       .prot = 0, .fixed = true };
        uint64_t h = 0;
        assert_int_equal(cowc_mmap(conn, pid, &high, &h, &err), 0);

        Cowd__V1__Response *r = NULL;
        assert_int_equal(cowc_list_maps(conn, pid, 0, &r, &err), 0);
        const Cowd__V1__ListMapsResult *lm = r->list_maps;
        assert_int_equal(lm->n_maps, 3);
        assert_int_equal(lm->next_addr, 0);
        assert_int_equal(lm->maps[0]->addr, a);
        assert_int_equal(lm->maps[0]->length, 3 * PAGE);
        assert_int_equal(lm->maps[0]->prot, 3);
        assert_false(lm->maps[0]->shared);
        assert_int_equal(lm->maps[1]->addr, b);
        assert_true(lm->maps[1]->shared);
        assert_int_equal(lm->maps[2]->addr, h);
        assert_int_equal(lm->maps[2]->prot, 0);
        cowc_response_free(r);

        /* From an address: only the mappings ending after it. */
        assert_int_equal(cowc_list_maps(conn, pid, b + PAGE, &r, &err), 0);
        assert_int_equal(r->list_maps->n_maps, 1);
        assert_int_equal(r->list_maps->maps[0]->addr, h);
        cowc_response_free(r);
        assert_int_equal(cowc_list_maps(conn, 999999, 0, &r, &err), COWD__V1__CODE__NOT_FOUND);
        assert_int_equal(cowc_exit(conn, pid, &err), 0);
}

static void test_page_map_limit(void **state)
{
        (void)state;
        struct cowc_error err;
        uint32_t pid = spawn("pm");
        Cowd__V1__Response *r = NULL;
        int rc = cowc_page_map(conn, pid, 0x10000, UINT64_C(1) << 40, &r, &err);
        assert_true(rc == COWD__V1__CODE__OUT_OF_RANGE || rc == COWD__V1__CODE__INVALID_ARGUMENT ||
                    rc == COWD__V1__CODE__RESOURCE_EXHAUSTED);
        assert_int_equal(cowc_exit(conn, pid, &err), 0);
}

static void proc_faults(uint32_t pid, uint64_t *zero_map, uint64_t *zero_fill, uint64_t *segv)
{
        Cowd__V1__Response *r = NULL;
        struct cowc_error err;
        assert_int_equal(cowc_proc_stats(conn, pid, &r, &err), 0);
        *zero_map = r->proc_stats->faults_zero_map;
        *zero_fill = r->proc_stats->faults_zero_fill;
        *segv = r->proc_stats->faults_segv;
        cowc_response_free(r);
}

/*
 * A trace runs its accesses in order as reads and writes would, and stops at
 * the first that fails: the reply says how many were done and why the next
 * failed, and the ones after it were not tried.
 */
static void test_trace_runs_in_order_and_stops_at_the_first_fault(void **state)
{
        (void)state;
        struct cowc_error err;
        uint32_t pid = spawn("trace");
        uint64_t addr = map(pid, 5 * PAGE, 3, false);
        uint64_t zmap, zfill, segv;
        size_t done = 99;
        char buf[8];

        assert_int_equal(cowc_mprotect(conn, pid, addr + 4 * PAGE, PAGE, 1, &err), 0);
        const struct cowc_trace_access acc[] = {
                { addr + 0 * PAGE + 8, 8, COWC_TRACE_STORE },  /* zero fill */
                { addr + 1 * PAGE, 4, COWC_TRACE_LOAD },       /* zero map */
                { addr + 2 * PAGE, 4, COWC_TRACE_MODIFY },     /* zero map, then zero fill */
                { addr + 3 * PAGE - 2, 4, COWC_TRACE_INSTR },  /* crosses into page 3: zero map */
                { addr + 4 * PAGE + 1, 1, COWC_TRACE_STORE },  /* read-only: SEGV_ACCERR */
                { addr + 4 * PAGE, 1, COWC_TRACE_LOAD },       /* never tried */
        };
        assert_int_equal(cowc_trace(conn, pid, acc, 6, &done, &err),
                         COWD__V1__CODE__FAILED_PRECONDITION);
        assert_int_equal(done, 4);
        assert_int_equal(err.fault, COWD__V1__FAULT_KIND__SEGV_ACCERR);
        assert_int_equal(err.fault_addr, addr + 4 * PAGE + 1);
        assert_non_null(strstr(err.message, "access 4"));
        proc_faults(pid, &zmap, &zfill, &segv);
        assert_int_equal(zfill, 2);
        assert_int_equal(zmap, 3);
        assert_int_equal(segv, 1);

        /* All of a batch done: 0, and done counts every access. */
        assert_int_equal(cowc_trace(conn, pid, acc, 4, &done, &err), 0);
        assert_int_equal(done, 4);

        /* A modify keeps the bytes; a store writes zeros. */
        assert_int_equal(cowc_write(conn, pid, addr + 2 * PAGE, "keep", 4, &err), 0);
        assert_int_equal(cowc_write(conn, pid, addr + 8, "gone", 4, &err), 0);
        assert_int_equal(cowc_trace(conn, pid, acc, 3, &done, &err), 0);
        assert_int_equal(cowc_read(conn, pid, addr + 2 * PAGE, buf, 4, &err), 0);
        assert_memory_equal(buf, "keep", 4);
        assert_int_equal(cowc_read(conn, pid, addr + 8, buf, 4, &err), 0);
        assert_memory_equal(buf, "\0\0\0\0", 4);

        /* A bad access refuses the whole batch before any of it runs. */
        proc_faults(pid, &zmap, &zfill, &segv);
        const struct cowc_trace_access bad[] = {
                { addr + 4 * PAGE + 1, 1, COWC_TRACE_STORE },
                { addr, PAGE + 1, COWC_TRACE_LOAD },
        };
        done = 99;
        assert_int_equal(cowc_trace(conn, pid, bad, 2, &done, &err),
                         COWD__V1__CODE__INVALID_ARGUMENT);
        assert_int_equal(done, 0);
        assert_non_null(strstr(err.message, "access 1 has size 4097"));
        const struct cowc_trace_access badkind[] = { { addr, 1, (enum cowc_trace_kind)7 } };
        assert_int_equal(cowc_trace(conn, pid, badkind, 1, &done, &err),
                         COWD__V1__CODE__INVALID_ARGUMENT);
        uint64_t segv_before = segv;
        proc_faults(pid, &zmap, &zfill, &segv);
        assert_int_equal(segv, segv_before);

        /* Beyond the per-request limit: refused locally, before anything is sent. */
        assert_true(cowc_trace_batch_max(conn) <= COWC_TRACE_MAX);
        assert_int_equal(cowc_trace(conn, pid, acc, cowc_trace_batch_max(conn) + 1, &done, &err),
                         -E2BIG);
        assert_int_equal(cowc_trace(conn, 999999, acc, 1, &done, &err),
                         COWD__V1__CODE__NOT_FOUND);
        assert_int_equal(cowc_exit(conn, pid, &err), 0);
}

/* Out of frames inside a batch: RESOURCE_EXHAUSTED for that access, the earlier ones kept. */
static void test_trace_out_of_memory_reports_the_access(void **state)
{
        (void)state;
        struct cowc_error err;
        uint32_t pid = spawn("trace-oom");
        uint64_t len = (FRAMES + 8) * (uint64_t)PAGE;
        uint64_t addr = map(pid, len, 3, false);
        uint64_t free_frames = FRAMES - frames_used();
        struct cowc_trace_access *acc = calloc(FRAMES + 8, sizeof(*acc));
        size_t done = 0;

        assert_non_null(acc);
        for (size_t i = 0; i < FRAMES + 8; i++)
                acc[i] = (struct cowc_trace_access){ addr + i * PAGE, 1, COWC_TRACE_STORE };
        assert_int_equal(cowc_trace(conn, pid, acc, FRAMES + 8, &done, &err),
                         COWD__V1__CODE__RESOURCE_EXHAUSTED);
        assert_int_equal(done, free_frames);
        assert_int_equal(err.fault, 0);
        assert_non_null(strstr(err.message, "trace pid"));
        assert_int_equal(frames_used(), FRAMES);
        assert_int_equal(cowc_exit(conn, pid, &err), 0);
        free(acc);
}

/* Files, a shared file mapping and msync, and both devices, through the library. */
static void test_files_msync_and_devices(void **state)
{
        (void)state;
        struct cowc_error err;
        Cowd__V1__Response *r = NULL;
        uint64_t size = 0, addr = 0;
        char buf[64];
        size_t n = 0;

        assert_int_equal(cowc_file_put(conn, "lib.txt", 0, "library", 7, &size, &err), 0);
        assert_int_equal(size, 7);
        assert_int_equal(cowc_file_put(conn, "lib.txt", 7, " call", 5, &size, &err), 0);
        assert_int_equal(size, 12);
        assert_int_equal(cowc_file_put(conn, "../lib.txt", 0, "x", 1, NULL, &err),
                         COWD__V1__CODE__INVALID_ARGUMENT);

        uint32_t pid = spawn("files");
        struct cowc_mmap_args a = { .length = PAGE, .prot = 3, .shared = true,
                                    .kind = COWD__V1__MAP_KIND__FILE, .path = "lib.txt" };
        assert_int_equal(cowc_mmap(conn, pid, &a, &addr, &err), 0);
        assert_int_equal(cowc_write(conn, pid, addr, "LIBRARY", 7, &err), 0);
        assert_int_equal(cowc_file_remove(conn, "lib.txt", &err),
                         COWD__V1__CODE__FAILED_PRECONDITION);
        assert_int_equal(cowc_msync(conn, pid, addr, PAGE, true, &err), 0);
        assert_int_equal(cowc_file_get(conn, "lib.txt", 0, buf, sizeof(buf), &n, &size, &err), 0);
        assert_int_equal(n, 12);
        assert_int_equal(size, 12);
        assert_memory_equal(buf, "LIBRARY call", 12);
        assert_int_equal(cowc_file_list(conn, NULL, "", &r, &err), 0);
        assert_int_equal(r->file_list->n_files, 1);
        assert_string_equal(r->file_list->files[0]->name, "lib.txt");
        assert_true(r->file_list->files[0]->mapped);
        cowc_response_free(r);
        assert_int_equal(cowc_munmap(conn, pid, addr, PAGE, &err), 0);
        assert_int_equal(cowc_file_remove(conn, "lib.txt", &err), 0);

        struct cowc_mmap_args fb = { .length = PAGE, .prot = 3,
                                     .kind = COWD__V1__MAP_KIND__DEVICE, .path = "fb0" };
        assert_int_equal(cowc_mmap(conn, pid, &fb, &addr, &err), 0);
        assert_int_equal(cowc_write(conn, pid, addr + 8, "\x11\x22\x33\x44", 4, &err), 0);
        assert_int_equal(cowc_device_read(conn, "fb0", 8, 4, &r, &err), 0);
        assert_int_equal(r->device_read->width, 640);
        assert_int_equal(r->device_read->height, 480);
        assert_int_equal(r->device_read->data.len, 4);
        assert_memory_equal(r->device_read->data.data, "\x11\x22\x33\x44", 4);
        cowc_response_free(r);

        struct cowc_mmap_args con = { .length = PAGE, .prot = 3,
                                      .kind = COWD__V1__MAP_KIND__DEVICE, .path = "console" };
        assert_int_equal(cowc_mmap(conn, pid, &con, &addr, &err), 0);
        assert_int_equal(cowc_console_read(conn, 0, 0, &r, &err), 0);
        uint64_t end = r->console_read->next_offset;
        cowc_response_free(r);
        assert_int_equal(cowc_write(conn, pid, addr, "log me", 6, &err), 0);
        assert_int_equal(cowc_console_read(conn, end, 0, &r, &err), 0);
        assert_int_equal(r->console_read->data.len, 6);
        assert_memory_equal(r->console_read->data.data, "log me", 6);
        assert_int_equal(r->console_read->next_offset, end + 6);
        cowc_response_free(r);
        assert_int_equal(cowc_exit(conn, pid, &err), 0);
}

static void test_pipelined_replies_in_order(void **state)
{
        (void)state;
        struct cowc_error err;
        uint32_t pid = spawn("pipe");
        uint64_t addr = map(pid, 64 * PAGE, 3, false);
        enum { N = 64 };
        Cowd__V1__Request reqs[2 * N];
        Cowd__V1__WriteRequest w[N];
        Cowd__V1__ReadRequest rd[N];
        uint32_t vals[N];
        const Cowd__V1__Request *ptrs[2 * N];
        Cowd__V1__Response *resps[2 * N];

        for (int i = 0; i < N; i++) {
                vals[i] = 0xC0DE0000u + (uint32_t)i;
                cowd__v1__request__init(&reqs[i]);
                cowd__v1__write_request__init(&w[i]);
                w[i].pid = pid;
                w[i].addr = addr + (uint64_t)i * PAGE;
                w[i].data.data = (uint8_t *)&vals[i];
                w[i].data.len = sizeof(vals[i]);
                reqs[i].op_case = COWD__V1__REQUEST__OP_WRITE;
                reqs[i].write = &w[i];

                cowd__v1__request__init(&reqs[N + i]);
                cowd__v1__read_request__init(&rd[i]);
                rd[i].pid = pid;
                rd[i].addr = addr + (uint64_t)i * PAGE;
                rd[i].length = sizeof(uint32_t);
                reqs[N + i].op_case = COWD__V1__REQUEST__OP_READ;
                reqs[N + i].read = &rd[i];
        }
        for (int i = 0; i < 2 * N; i++)
                ptrs[i] = &reqs[i];
        assert_int_equal(cowc_call_many(conn, ptrs, 2 * N, resps), 0);
        for (int i = 0; i < N; i++) {
                assert_int_equal(cowc_error_from_response(resps[i], NULL), 0);
                const Cowd__V1__Response *rr = resps[N + i];
                assert_int_equal(cowc_error_from_response(rr, NULL), 0);
                assert_int_equal(rr->read->data.len, sizeof(uint32_t));
                uint32_t v;
                memcpy(&v, rr->read->data.data, sizeof(v));
                assert_int_equal(v, vals[i]);
        }
        for (int i = 0; i < 2 * N; i++)
                cowc_response_free(resps[i]);
        assert_int_equal(cowc_exit(conn, pid, &err), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hello),
                cmocka_unit_test(test_spawn_fork_exit),
                cmocka_unit_test(test_spawn_args_are_checked),
                cmocka_unit_test(test_mmap_errors),
                cmocka_unit_test(test_read_write_faults),
                cmocka_unit_test(test_copy_on_write_and_stats),
                cmocka_unit_test(test_shared_mapping_across_fork),
                cmocka_unit_test(test_out_of_memory_changes_nothing),
                cmocka_unit_test(test_list_maps),
                cmocka_unit_test(test_page_map_limit),
                cmocka_unit_test(test_trace_runs_in_order_and_stops_at_the_first_fault),
                cmocka_unit_test(test_trace_out_of_memory_reports_the_access),
                cmocka_unit_test(test_pipelined_replies_in_order),
                cmocka_unit_test(test_files_msync_and_devices),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
