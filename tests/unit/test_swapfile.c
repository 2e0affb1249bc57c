/* SPDX-License-Identifier: MIT */
/*
 * The swap file: pages round-trip by slot; the file is private, close-on-exec
 * and sparse; a full filesystem (a 64 KiB tmpfs, or /dev/full) is -ENOSPC and
 * leaves what was written before readable and right.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "swapfile.h"

#define PAGE 4096u

static char dir[] = "/tmp/cowd-swapfile-XXXXXX";

static int setup(void **state)
{
        (void)state;
        return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
        char cmd[64 + sizeof(dir)], mnt[128];
        (void)state;
        /* A failed assertion may have left the small filesystem mounted. */
        snprintf(mnt, sizeof(mnt), "%s/small", dir);
        (void)umount2(mnt, MNT_DETACH);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

static void fill(uint8_t *page, unsigned seed)
{
        for (unsigned i = 0; i < PAGE; i++)
                page[i] = (uint8_t)(seed * 31 + i * 7);
}

/* The open fd of path in this process, found through /proc/self/fd. */
static int fd_of(const char *path)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        int found = -1;

        assert_non_null(d);
        while ((de = readdir(d))) {
                char link[300], target[PATH_MAX];
                snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
                ssize_t n = readlink(link, target, sizeof(target) - 1);
                if (n <= 0)
                        continue;
                target[n] = '\0';
                if (strcmp(target, path) == 0)
                        found = atoi(de->d_name);
        }
        closedir(d);
        return found;
}

static void test_pages_round_trip_by_slot(void **state)
{
        (void)state;
        char path[128], err[256] = "";
        uint8_t a[PAGE], b[PAGE], got[PAGE];
        cow_swapfile *s = NULL;
        struct stat st;
        int fd;

        snprintf(path, sizeof(path), "%s/rt.swap", dir);
        /* Stale contents and loose permissions from an earlier run do not survive. */
        fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "stale", 5), 5);
        fchmod(fd, 0644);
        close(fd);

        assert_int_equal(cow_swapfile_open(path, 1024, PAGE, &s, err, sizeof(err)), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(st.st_size, 1024 * PAGE);
        assert_true(st.st_blocks * 512 < 64 * 1024); /* sparse: 4 MiB long, nothing taken */
        fd = fd_of(path);
        assert_true(fd >= 0);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);

        fill(a, 1);
        fill(b, 2);
        assert_int_equal(cow_swapfile_ops.write(s, 0, a, PAGE), 0);
        assert_int_equal(cow_swapfile_ops.write(s, 1023, b, PAGE), 0);
        assert_int_equal(cow_swapfile_ops.read(s, 1023, got, PAGE), 0);
        assert_memory_equal(got, b, PAGE);
        assert_int_equal(cow_swapfile_ops.read(s, 0, got, PAGE), 0);
        assert_memory_equal(got, a, PAGE);
        /* The old first bytes are gone: slot 5 was never written and reads as zeros. */
        assert_int_equal(cow_swapfile_ops.read(s, 5, got, PAGE), 0);
        memset(a, 0, PAGE);
        assert_memory_equal(got, a, PAGE);

        /* Out of range or not a page: refused, nothing written. */
        assert_int_equal(cow_swapfile_ops.write(s, 1024, b, PAGE), -EINVAL);
        assert_int_equal(cow_swapfile_ops.read(s, 1024, got, PAGE), -EINVAL);
        assert_int_equal(cow_swapfile_ops.write(s, 3, b, PAGE - 1), -EINVAL);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, 1024 * PAGE);
        cow_swapfile_free(s);
        cow_swapfile_free(NULL);
}

static void test_bad_paths_say_why(void **state)
{
        (void)state;
        char path[128], link[128], err[256] = "";
        cow_swapfile *s = NULL;

        snprintf(path, sizeof(path), "%s/nodir/x.swap", dir);
        assert_int_equal(cow_swapfile_open(path, 16, PAGE, &s, err, sizeof(err)), -ENOENT);
        assert_non_null(strstr(err, "nodir/x.swap"));
        assert_null(s);

        assert_int_equal(cow_swapfile_open(dir, 16, PAGE, &s, err, sizeof(err)), -EISDIR);
        snprintf(path, sizeof(path), "%s/target", dir);
        snprintf(link, sizeof(link), "%s/link.swap", dir);
        assert_int_equal(symlink(path, link), 0);
        assert_int_equal(cow_swapfile_open(link, 16, PAGE, &s, err, sizeof(err)), -ELOOP);
        assert_int_equal(access(path, F_OK), -1); /* the link was not followed */
        assert_int_equal(cow_swapfile_open(path, 0, PAGE, &s, err, sizeof(err)), -EINVAL);
        assert_null(s);
}

/* /dev/full: every write is ENOSPC. */
static void test_dev_full_is_enospc(void **state)
{
        (void)state;
        char err[256] = "";
        uint8_t page[PAGE];
        cow_swapfile *s = NULL;

        if (access("/dev/full", W_OK) != 0)
                skip();
        assert_int_equal(cow_swapfile_open("/dev/full", 16, PAGE, &s, err, sizeof(err)), 0);
        fill(page, 3);
        assert_int_equal(cow_swapfile_ops.write(s, 0, page, PAGE), -ENOSPC);
        cow_swapfile_free(s);
}

/*
 * A swap file on a 64 KiB tmpfs: sparse, so it opens at 1 MiB, and the
 * writes that find no space fail with -ENOSPC while every page written
 * before still reads back exactly. Needs root for the mount.
 */
static void test_full_filesystem_keeps_what_was_written(void **state)
{
        (void)state;
        char mnt[128], path[160], err[256] = "";
        uint8_t page[PAGE], got[PAGE];
        cow_swapfile *s = NULL;
        unsigned written = 0;
        int r = 0;

        snprintf(mnt, sizeof(mnt), "%s/small", dir);
        assert_int_equal(mkdir(mnt, 0700), 0);
        if (mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k") != 0) {
                rmdir(mnt);
                skip(); /* not root, or no tmpfs */
        }
        snprintf(path, sizeof(path), "%s/cowd.swap", mnt);
        assert_int_equal(cow_swapfile_open(path, 256, PAGE, &s, err, sizeof(err)), 0);
        for (unsigned slot = 0; slot < 256; slot++) {
                fill(page, slot);
                r = cow_swapfile_ops.write(s, slot, page, PAGE);
                if (r < 0)
                        break;
                written++;
        }
        assert_int_equal(r, -ENOSPC);
        assert_true(written > 0 && written <= 16);
        for (unsigned slot = 0; slot < written; slot++) {
                fill(page, slot);
                assert_int_equal(cow_swapfile_ops.read(s, slot, got, PAGE), 0);
                assert_memory_equal(got, page, PAGE);
        }
        /* Still full, still typed. */
        fill(page, 999);
        assert_int_equal(cow_swapfile_ops.write(s, 200, page, PAGE), -ENOSPC);
        cow_swapfile_free(s);
        assert_int_equal(umount(mnt), 0);
        assert_int_equal(rmdir(mnt), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pages_round_trip_by_slot),
                cmocka_unit_test(test_bad_paths_say_why),
                cmocka_unit_test(test_dev_full_is_enospc),
                cmocka_unit_test(test_full_filesystem_keeps_what_was_written),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
