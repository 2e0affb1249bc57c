/* SPDX-License-Identifier: MIT */
/* The TCP token file: parsing, the checks on the file itself, and lookups. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"

#define TOKEN_A "3f0c9e1d7a52b8e64c1f0a9d2e7b5c38"
#define TOKEN_B "root-token-0123456789abcdef"

static cow_auth *parse_ok(const char *text)
{
        char err[256] = "";
        cow_auth *a = NULL;

        int r = cow_auth_parse(text, strlen(text), &a, err, sizeof(err));
        if (r != 0)
                fail_msg("refused: %s", err);
        return a;
}

static void parse_fails_with(const char *text, const char *expect)
{
        char err[256] = "";
        cow_auth *a = NULL;

        assert_int_equal(cow_auth_parse(text, strlen(text), &a, err, sizeof(err)), -EINVAL);
        assert_null(a);
        if (!strstr(err, expect))
                fail_msg("error '%s' does not say '%s'", err, expect);
}

static void test_each_token_stands_for_its_uid(void **state)
{
        (void)state;
        cow_auth *a = parse_ok("# uid token\n\n1000 " TOKEN_A "\n  0\t" TOKEN_B "  \r\n");
        uint32_t uid = 77;

        assert_int_equal(cow_auth_count(a), 2);
        assert_int_equal(cow_auth_check(a, TOKEN_A, strlen(TOKEN_A), &uid), 0);
        assert_int_equal(uid, 1000);
        assert_int_equal(cow_auth_check(a, TOKEN_B, strlen(TOKEN_B), &uid), 0);
        assert_int_equal(uid, 0);
        cow_auth_free(a);
}

static void test_near_misses_are_refused_and_leave_uid_alone(void **state)
{
        (void)state;
        cow_auth *a = parse_ok("1000 " TOKEN_A "\n");
        char wrong[] = TOKEN_A;
        uint32_t uid = 77;

        wrong[sizeof(wrong) - 2] ^= 1; /* last character off by one bit */
        assert_int_equal(cow_auth_check(a, wrong, strlen(wrong), &uid), -EACCES);
        /* A prefix, and the token with one byte more. */
        assert_int_equal(cow_auth_check(a, TOKEN_A, strlen(TOKEN_A) - 1, &uid), -EACCES);
        assert_int_equal(cow_auth_check(a, TOKEN_A "0", strlen(TOKEN_A) + 1, &uid), -EACCES);
        /* Zero padding in the table must not match a token padded with NULs. */
        char padded[COW_AUTH_TOKEN_MAX] = TOKEN_A;
        assert_int_equal(cow_auth_check(a, padded, sizeof(padded), &uid), -EACCES);
        assert_int_equal(cow_auth_check(a, "", 0, &uid), -EACCES);
        assert_int_equal(cow_auth_check(NULL, TOKEN_A, strlen(TOKEN_A), &uid), -EACCES);
        assert_int_equal(uid, 77);
        cow_auth_free(a);
}

static void test_bad_lines_are_named(void **state)
{
        (void)state;
        parse_fails_with("", "no tokens");
        parse_fails_with("# only a comment\n", "no tokens");
        parse_fails_with("1000\n", "line 1: no token");
        parse_fails_with("\n1000 short\n", "line 2: a token must be 16 to 256");
        parse_fails_with("x1 " TOKEN_A "\n", "line 1: the uid");
        parse_fails_with("-1 " TOKEN_A "\n", "line 1: the uid");
        parse_fails_with("4294967295 " TOKEN_A "\n", "line 1: the uid");
        parse_fails_with("1 " TOKEN_A " extra\n", "line 1: expected two fields");
        parse_fails_with("1 " TOKEN_A "\n2 " TOKEN_A "\n", "line 2: the same token");
        parse_fails_with("1 abcdefgh\x7fijklmnopq\n", "printable");
        parse_fails_with("1 abcdefgh\xc3\xa9ijklmnopq\n", "printable");
}

static void test_a_nul_byte_is_refused(void **state)
{
        (void)state;
        static const char text[] = "1 abcdefghijklmnop\0qrstuvwxyz\n";
        char err[256] = "";
        cow_auth *a = NULL;

        assert_int_equal(cow_auth_parse(text, sizeof(text) - 1, &a, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "line 1: a NUL byte"));
}

static void test_longest_token_fits(void **state)
{
        (void)state;
        char text[COW_AUTH_TOKEN_MAX + 16], tok[COW_AUTH_TOKEN_MAX + 2];
        uint32_t uid = 0;

        memset(tok, 'k', COW_AUTH_TOKEN_MAX);
        tok[COW_AUTH_TOKEN_MAX] = '\0';
        snprintf(text, sizeof(text), "42 %s\n", tok);
        cow_auth *a = parse_ok(text);
        assert_int_equal(cow_auth_check(a, tok, COW_AUTH_TOKEN_MAX, &uid), 0);
        assert_int_equal(uid, 42);
        cow_auth_free(a);

        tok[COW_AUTH_TOKEN_MAX] = 'k';
        tok[COW_AUTH_TOKEN_MAX + 1] = '\0';
        snprintf(text, sizeof(text), "42 %s\n", tok);
        parse_fails_with(text, "16 to 256");
}

/* Writes text to a fresh file in a temporary directory, with mode; returns its path. */
static char *temp_file(const char *text, mode_t mode)
{
        static char dir[] = "/tmp/cowd-auth-XXXXXX";
        static char path[sizeof(dir) + 16];
        static bool made;

        /*
         * Made once. (Asking "does the name still hold an X?" instead failed
         * whenever mkdtemp's random letters included one: the second call
         * then passed mkdtemp a template that no longer ended in XXXXXX.)
         */
        if (made || (made = mkdtemp(dir) != NULL)) {
                snprintf(path, sizeof(path), "%s/tokens", dir);
                unlink(path);
                int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                assert_true(fd >= 0);
                assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
                assert_int_equal(fchmod(fd, mode), 0);
                close(fd);
                return path;
        }
        fail_msg("mkdtemp: %s", strerror(errno));
        return NULL;
}

static void test_the_file_must_be_private(void **state)
{
        (void)state;
        char err[512] = "";
        cow_auth *a = NULL;
        char *path;

        path = temp_file("1000 " TOKEN_A "\n", 0600);
        assert_int_equal(cow_auth_load(path, &a, err, sizeof(err)), 0);
        assert_int_equal(cow_auth_count(a), 1);
        cow_auth_free(a);
        a = NULL;

        path = temp_file("1000 " TOKEN_A "\n", 0644);
        assert_int_equal(cow_auth_load(path, &a, err, sizeof(err)), -EPERM);
        assert_non_null(strstr(err, "chmod 600"));
        assert_null(a);

        /* A link is refused even when its target is fine: the file is opened O_NOFOLLOW. */
        path = temp_file("1000 " TOKEN_A "\n", 0600);
        char link[600];
        snprintf(link, sizeof(link), "%s.link", path);
        unlink(link);
        assert_int_equal(symlink(path, link), 0);
        assert_int_equal(cow_auth_load(link, &a, err, sizeof(err)), -ELOOP);
        assert_non_null(strstr(err, link));
        unlink(link);

        path = temp_file("1000 short\n", 0600);
        assert_int_equal(cow_auth_load(path, &a, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "line 1"));
        assert_non_null(strstr(err, path));

        assert_int_equal(cow_auth_load("/nonexistent/tokens", &a, err, sizeof(err)), -ENOENT);
        unlink(path);
        *strrchr(path, '/') = '\0';
        rmdir(path);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_each_token_stands_for_its_uid),
                cmocka_unit_test(test_near_misses_are_refused_and_leave_uid_alone),
                cmocka_unit_test(test_bad_lines_are_named),
                cmocka_unit_test(test_a_nul_byte_is_refused),
                cmocka_unit_test(test_longest_token_fits),
                cmocka_unit_test(test_the_file_must_be_private),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
