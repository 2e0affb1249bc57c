/* SPDX-License-Identifier: MIT */
/*
 * The file store: names that could escape are refused before the disk is
 * touched and links planted in the directory are refused by the open; each
 * limit has its own error; owners are apart; files round-trip whole and in
 * chunks; page I/O by key never grows a file; a full filesystem is -ENOSPC
 * and leaves the old file whole.
 */
#include <errno.h>
#include <fcntl.h>
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

#include "filestore.h"

static char dir[] = "/tmp/cowd-filestore-XXXXXX";
static char data_dir[sizeof(dir) + 16];

static const struct cow_filestore_limits limits = {
        .max_file_bytes = 8192,
        .quota_bytes = 10000,
        .max_files = 3,
        .max_open = 2,
};

static int setup(void **state)
{
        (void)state;
        if (!mkdtemp(dir))
                return -1;
        snprintf(data_dir, sizeof(data_dir), "%s/files", dir);
        return 0;
}

static int teardown(void **state)
{
        char cmd[64 + sizeof(dir)], mnt[128];
        (void)state;
        snprintf(mnt, sizeof(mnt), "%s/small", dir);
        (void)umount2(mnt, MNT_DETACH);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

/* A fresh, empty store in data_dir. */
static cow_filestore *store_new(void)
{
        char cmd[64 + sizeof(data_dir)], err[256] = "";
        cow_filestore *fs = NULL;

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", data_dir);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(cow_filestore_open(data_dir, &limits, &fs, err, sizeof(err)), 0);
        return fs;
}

static void test_names(void **state)
{
        char longest[COW_FILESTORE_NAME_MAX + 2];
        (void)state;

        assert_int_equal(cow_filestore_name_check("notes.txt"), 0);
        assert_int_equal(cow_filestore_name_check("a-b_c.1"), 0);
        assert_int_equal(cow_filestore_name_check(""), -EINVAL);
        assert_int_equal(cow_filestore_name_check(".."), -EINVAL);
        assert_int_equal(cow_filestore_name_check("."), -EINVAL);
        assert_int_equal(cow_filestore_name_check(".hidden"), -EINVAL);
        assert_int_equal(cow_filestore_name_check("../x"), -EINVAL);
        assert_int_equal(cow_filestore_name_check("/etc/passwd"), -EINVAL);
        assert_int_equal(cow_filestore_name_check("a/b"), -EINVAL);
        assert_int_equal(cow_filestore_name_check("a\\b"), -EINVAL);
        assert_int_equal(cow_filestore_name_check("tab\there"), -EINVAL);
        assert_int_equal(cow_filestore_name_check("caf\xc3\xa9"), -EINVAL);
        memset(longest, 'a', COW_FILESTORE_NAME_MAX);
        longest[COW_FILESTORE_NAME_MAX] = '\0';
        assert_int_equal(cow_filestore_name_check(longest), 0);
        longest[COW_FILESTORE_NAME_MAX] = 'a';
        longest[COW_FILESTORE_NAME_MAX + 1] = '\0';
        assert_int_equal(cow_filestore_name_check(longest), -ENAMETOOLONG);
}

static void test_round_trip_whole_and_in_chunks(void **state)
{
        cow_filestore *fs = store_new();
        char buf[64], path[256];
        size_t n = 0;
        uint64_t size = 0;
        struct stat st;
        (void)state;

        assert_int_equal(cow_filestore_put(fs, 1000, "notes.txt", 0, "hello", 5), 0);
        assert_int_equal(cow_filestore_put(fs, 1000, "notes.txt", 5, ", world", 7), 0);
        assert_int_equal(cow_filestore_stat(fs, 1000, "notes.txt", &size, NULL), 0);
        assert_int_equal(size, 12);
        assert_int_equal(cow_filestore_get(fs, 1000, "notes.txt", 0, buf, sizeof(buf), &n), 0);
        assert_int_equal(n, 12);
        assert_memory_equal(buf, "hello, world", 12);
        assert_int_equal(cow_filestore_get(fs, 1000, "notes.txt", 7, buf, 3, &n), 0);
        assert_int_equal(n, 3);
        assert_memory_equal(buf, "wor", 3);
        /* A chunk must continue the file exactly. */
        assert_int_equal(cow_filestore_put(fs, 1000, "notes.txt", 3, "x", 1), -ESPIPE);
        assert_int_equal(cow_filestore_put(fs, 1000, "other", 4, "x", 1), -ESPIPE);
        /* Offset 0 replaces the whole file. */
        assert_int_equal(cow_filestore_put(fs, 1000, "notes.txt", 0, "bye", 3), 0);
        assert_int_equal(cow_filestore_get(fs, 1000, "notes.txt", 0, buf, sizeof(buf), &n), 0);
        assert_int_equal(n, 3);
        /* On disk where the contract says, private to the daemon. */
        snprintf(path, sizeof(path), "%s/1000/notes.txt", data_dir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, 3);
        assert_int_equal(st.st_mode & 0077, 0);
        assert_int_equal(cow_filestore_remove(fs, 1000, "notes.txt"), 0);
        assert_int_equal(cow_filestore_remove(fs, 1000, "notes.txt"), -ENOENT);
        assert_int_equal(cow_filestore_get(fs, 1000, "notes.txt", 0, buf, 1, &n), -ENOENT);
        cow_filestore_free(fs);
}

static void test_owners_are_apart(void **state)
{
        cow_filestore *fs = store_new();
        struct cow_file_entry list[4];
        bool more = true;
        char buf[8];
        size_t n;
        (void)state;

        assert_int_equal(cow_filestore_put(fs, 1000, "mine", 0, "a", 1), 0);
        assert_int_equal(cow_filestore_get(fs, 1001, "mine", 0, buf, 1, &n), -ENOENT);
        assert_int_equal(cow_filestore_remove(fs, 1001, "mine"), -ENOENT);
        assert_int_equal(cow_filestore_list(fs, 1001, "", list, 4, &more), 0);
        assert_false(more);
        assert_int_equal(cow_filestore_list(fs, 1000, "", list, 4, &more), 1);
        assert_string_equal(list[0].name, "mine");
        cow_filestore_free(fs);
}

static void test_each_limit_has_its_error(void **state)
{
        cow_filestore *fs = store_new();
        static uint8_t big[9000];
        struct cow_filestore_counters c;
        uint64_t bytes;
        uint32_t files;
        (void)state;

        assert_int_equal(cow_filestore_put(fs, 7, "huge", 0, big, 8193), -EFBIG);
        assert_int_equal(cow_filestore_put(fs, 7, "a", 0, big, 8192), 0);
        /* 8192 + 2000 > 10000 */
        assert_int_equal(cow_filestore_put(fs, 7, "b", 0, big, 2000), -EDQUOT);
        /* Replacing counts the new size, not both. */
        assert_int_equal(cow_filestore_put(fs, 7, "a", 0, big, 8000), 0);
        assert_int_equal(cow_filestore_put(fs, 7, "b", 0, big, 1000), 0);
        assert_int_equal(cow_filestore_put(fs, 7, "c", 0, big, 1), 0);
        assert_int_equal(cow_filestore_put(fs, 7, "d", 0, big, 1), -EMFILE);
        /* Appending counts too. */
        assert_int_equal(cow_filestore_put(fs, 7, "c", 1, big, 1000), -EDQUOT);
        assert_int_equal(cow_filestore_usage(fs, 7, &bytes, &files), 0);
        assert_int_equal(bytes, 9001);
        assert_int_equal(files, 3);
        /* Another owner has a quota of its own. */
        assert_int_equal(cow_filestore_put(fs, 8, "d", 0, big, 8192), 0);
        cow_filestore_counters(fs, &c);
        assert_int_equal(c.size_rejections, 1);
        assert_int_equal(c.quota_rejections, 2);
        assert_int_equal(c.count_rejections, 1);
        cow_filestore_free(fs);
}

/* Links planted in the store, met through openat2() or, where it is missing, openat(). */
static void planted_links_are_refused(bool openat_only)
{
        struct cow_filestore_limits l = limits;
        cow_filestore *fs = store_new();
        char err[256];

        l.openat_only = openat_only;
        cow_filestore_free(fs);
        assert_int_equal(cow_filestore_open(data_dir, &l, &fs, err, sizeof(err)), 0);
        char path[256], buf[8];
        uint64_t size;
        size_t n;

        assert_int_equal(cow_filestore_put(fs, 1000, "real", 0, "x", 1), 0);
        /* A link to a file outside, planted where a file would be. */
        snprintf(path, sizeof(path), "%s/1000/passwd", data_dir);
        assert_int_equal(symlink("/etc/passwd", path), 0);
        assert_int_equal(cow_filestore_get(fs, 1000, "passwd", 0, buf, 1, &n), -ELOOP);
        assert_int_equal(cow_filestore_stat(fs, 1000, "passwd", &size, NULL), -ELOOP);
        assert_true(cow_filestore_key_read(fs, "1000/passwd", 0, buf, 1) == -ELOOP);
        /* Putting over it does not write through it. */
        assert_int_equal(cow_filestore_put(fs, 1000, "passwd", 4, "x", 1), -ELOOP);
        /* The owner's directory replaced by a link to another owner's. */
        snprintf(path, sizeof(path), "%s/1001", data_dir);
        assert_int_equal(symlink("1000", path), 0);
        assert_int_equal(cow_filestore_get(fs, 1001, "real", 0, buf, 1, &n), -ELOOP);
        /* A plain file where an owner's directory belongs: typed, not followed. */
        snprintf(path, sizeof(path), "%s/1002", data_dir);
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fclose(f);
        assert_int_equal(cow_filestore_get(fs, 1002, "real", 0, buf, 1, &n), -ENOTDIR);
        assert_int_equal(cow_filestore_put(fs, 1002, "real", 0, "x", 1), -ENOTDIR);
        /* A FIFO does not block the store. */
        snprintf(path, sizeof(path), "%s/1000/fifo", data_dir);
        assert_int_equal(mkfifo(path, 0600), 0);
        assert_int_equal(cow_filestore_get(fs, 1000, "fifo", 0, buf, 1, &n), -EINVAL);
        cow_filestore_free(fs);
}

static void test_planted_links_are_refused(void **state)
{
        (void)state;
        planted_links_are_refused(false);
}

static void test_planted_links_are_refused_without_openat2(void **state)
{
        (void)state;
        planted_links_are_refused(true);
}

static void test_page_io_by_key(void **state)
{
        cow_filestore *fs = store_new();
        uint8_t page[4096];
        char buf[16];
        size_t n;
        (void)state;

        assert_int_equal(cow_filestore_put(fs, 5, "f", 0, "0123456789", 10), 0);
        assert_int_equal(cow_filestore_put(fs, 5, "g", 0, "abc", 3), 0);
        assert_int_equal(cow_filestore_put(fs, 6, "h", 0, "xyz", 3), 0);
        /* Short at the end of the file. */
        assert_int_equal(cow_filestore_key_read(fs, "5/f", 0, page, sizeof(page)), 10);
        assert_memory_equal(page, "0123456789", 10);
        /* A whole page written: only the bytes inside the file land. */
        memset(page, 'Z', sizeof(page));
        assert_int_equal(cow_filestore_key_write(fs, "5/f", 0, page, sizeof(page)), 0);
        assert_int_equal(cow_filestore_key_sync(fs, "5/f"), 0);
        assert_int_equal(cow_filestore_get(fs, 5, "f", 0, buf, sizeof(buf), &n), 0);
        assert_int_equal(n, 10);
        assert_memory_equal(buf, "ZZZZZZZZZZ", 10);
        /* More keys than open slots: each still reaches its own file. */
        assert_int_equal(cow_filestore_key_read(fs, "5/g", 0, buf, 3), 3);
        assert_memory_equal(buf, "abc", 3);
        assert_int_equal(cow_filestore_key_read(fs, "6/h", 0, buf, 3), 3);
        assert_memory_equal(buf, "xyz", 3);
        assert_int_equal(cow_filestore_key_read(fs, "5/f", 2, buf, 2), 2);
        assert_memory_equal(buf, "ZZ", 2);
        /* A replaced file is read anew, not through the old fd. */
        assert_int_equal(cow_filestore_put(fs, 5, "f", 0, "new", 3), 0);
        assert_int_equal(cow_filestore_key_read(fs, "5/f", 0, buf, 16), 3);
        assert_memory_equal(buf, "new", 3);
        /* Keys that are not keys. */
        assert_true(cow_filestore_key_read(fs, "5/../f", 0, buf, 1) == -EINVAL);
        assert_true(cow_filestore_key_read(fs, "/etc/passwd", 0, buf, 1) == -EINVAL);
        assert_true(cow_filestore_key_read(fs, "x/f", 0, buf, 1) == -EINVAL);
        assert_true(cow_filestore_key_read(fs, "99999999999/f", 0, buf, 1) == -EINVAL);
        cow_filestore_free(fs);
}

static void test_list_pages_in_name_order(void **state)
{
        struct cow_filestore_limits many = limits;
        struct cow_file_entry list[2];
        cow_filestore *fs;
        char err[256];
        bool more;
        (void)state;

        many.max_files = 10;
        fs = store_new();
        cow_filestore_free(fs);
        assert_int_equal(cow_filestore_open(data_dir, &many, &fs, err, sizeof(err)), 0);
        assert_int_equal(cow_filestore_put(fs, 1, "c", 0, "c", 1), 0);
        assert_int_equal(cow_filestore_put(fs, 1, "a", 0, "a", 1), 0);
        assert_int_equal(cow_filestore_put(fs, 1, "b", 0, "bb", 2), 0);
        assert_int_equal(cow_filestore_list(fs, 1, "", list, 2, &more), 2);
        assert_true(more);
        assert_string_equal(list[0].name, "a");
        assert_string_equal(list[1].name, "b");
        assert_int_equal(list[1].size, 2);
        assert_int_equal(cow_filestore_list(fs, 1, "b", list, 2, &more), 1);
        assert_false(more);
        assert_string_equal(list[0].name, "c");
        cow_filestore_free(fs);
}

static void test_full_filesystem_keeps_the_old_file(void **state)
{
        struct cow_filestore_limits roomy = limits;
        static uint8_t big[128 * 1024];
        char mnt[128], err[256] = "", buf[8];
        cow_filestore *fs = NULL;
        size_t n;
        int r;
        (void)state;

        roomy.max_file_bytes = sizeof(big);
        roomy.quota_bytes = 1 << 20;
        snprintf(mnt, sizeof(mnt), "%s/small", dir);
        assert_int_equal(mkdir(mnt, 0700), 0);
        if (mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k") != 0) {
                rmdir(mnt);
                skip(); /* not root, or no tmpfs */
        }
        assert_int_equal(cow_filestore_open(mnt, &roomy, &fs, err, sizeof(err)), 0);
        assert_int_equal(cow_filestore_put(fs, 1, "keep", 0, "old!", 4), 0);
        r = cow_filestore_put(fs, 1, "keep", 0, big, sizeof(big));
        assert_int_equal(r, -ENOSPC);
        assert_int_equal(cow_filestore_get(fs, 1, "keep", 0, buf, sizeof(buf), &n), 0);
        assert_int_equal(n, 4);
        assert_memory_equal(buf, "old!", 4);
        /* An append that does not fit leaves the file as it was. */
        assert_int_equal(cow_filestore_put(fs, 1, "keep", 4, big, sizeof(big) - 4), -ENOSPC);
        assert_int_equal(cow_filestore_get(fs, 1, "keep", 0, buf, sizeof(buf), &n), 0);
        assert_int_equal(n, 4);
        cow_filestore_free(fs);
        assert_int_equal(umount(mnt), 0);
        assert_int_equal(rmdir(mnt), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_round_trip_whole_and_in_chunks),
                cmocka_unit_test(test_owners_are_apart),
                cmocka_unit_test(test_each_limit_has_its_error),
                cmocka_unit_test(test_planted_links_are_refused),
                cmocka_unit_test(test_planted_links_are_refused_without_openat2),
                cmocka_unit_test(test_page_io_by_key),
                cmocka_unit_test(test_list_pages_in_name_order),
                cmocka_unit_test(test_full_filesystem_keeps_the_old_file),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
