/* SPDX-License-Identifier: MIT */
/* The lackey trace parser: every line kind, chunking, and errors that name the line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lackey.h"

#define SEEN_MAX 64

struct seen {
        struct lackey_access a[SEEN_MAX];
        size_t n;
        int stop_after; /* return 99 after this many accesses; 0: never */
};

static int record(void *ctx, const struct lackey_access *a)
{
        struct seen *s = ctx;

        assert_true(s->n < SEEN_MAX);
        s->a[s->n++] = *a;
        if (s->stop_after && s->n == (size_t)s->stop_after)
                return 99;
        return 0;
}

/* Feeds text in chunks of chunk bytes (0: all at once) and finishes. */
static int parse_chunked(const char *text, size_t chunk, struct seen *s, struct lackey_parser *p)
{
        size_t len = strlen(text);
        int r = 0;

        lackey_init(p, record, s);
        if (chunk == 0)
                chunk = len ? len : 1;
        for (size_t i = 0; i < len && r == 0; i += chunk)
                r = lackey_feed(p, text + i, len - i < chunk ? len - i : chunk);
        if (r == 0)
                r = lackey_finish(p);
        return r;
}

static const char *const real_trace =
        "==12345== Lackey, an example Valgrind tool\n"
        "==12345== Copyright (C) 2002-2017, and GNU GPL'd, by Nicholas Nethercote.\n"
        "==12345== \n"
        "I  04016ca0,3\n"
        " S 1ffefffe18,8\n"
        " L 04227e18,8\n"
        " M 0421e0c8,4\n"
        "I  0401a0f0,15\n"
        "--12345-- a debugging line\n"
        "\n"
        "==12345== Counted 1 call to main()\n";

static void check_real_trace(const struct seen *s)
{
        assert_int_equal(s->n, 5);
        assert_int_equal(s->a[0].kind, LACKEY_INSTR);
        assert_int_equal(s->a[0].addr, 0x04016ca0);
        assert_int_equal(s->a[0].size, 3);
        assert_int_equal(s->a[1].kind, LACKEY_STORE);
        assert_int_equal(s->a[1].addr, 0x1ffefffe18ull);
        assert_int_equal(s->a[1].size, 8);
        assert_int_equal(s->a[2].kind, LACKEY_LOAD);
        assert_int_equal(s->a[2].addr, 0x04227e18);
        assert_int_equal(s->a[3].kind, LACKEY_MODIFY);
        assert_int_equal(s->a[3].addr, 0x0421e0c8);
        assert_int_equal(s->a[3].size, 4);
        assert_int_equal(s->a[4].size, 15);
}

static void test_every_kind_and_valgrind_lines_are_skipped(void **state)
{
        (void)state;
        struct lackey_parser p;
        struct seen s = { 0 };

        assert_int_equal(parse_chunked(real_trace, 0, &s, &p), 0);
        check_real_trace(&s);
        assert_int_equal(p.line, 11);
        assert_int_equal(p.accesses, 5);
}

/* A line may be cut anywhere between two chunks, even a byte at a time. */
static void test_any_chunking_gives_the_same_accesses(void **state)
{
        (void)state;
        for (size_t chunk = 1; chunk <= 40; chunk++) {
                struct lackey_parser p;
                struct seen s = { 0 };

                assert_int_equal(parse_chunked(real_trace, chunk, &s, &p), 0);
                check_real_trace(&s);
        }
}

static void test_last_line_without_newline_and_crlf(void **state)
{
        (void)state;
        struct lackey_parser p;
        struct seen s = { 0 };

        assert_int_equal(parse_chunked(" L 0x10,4\r\n S ffffffffffffff00,256", 7, &s, &p), 0);
        assert_int_equal(s.n, 2);
        assert_int_equal(s.a[0].addr, 0x10);
        assert_int_equal(s.a[1].addr, 0xffffffffffffff00ull);
        assert_int_equal(s.a[1].size, 256);
        assert_int_equal(s.a[1].kind, LACKEY_STORE);
}

static void fails_on_line(const char *text, unsigned line, const char *says)
{
        char want[32];
        struct lackey_parser p;
        struct seen s = { 0 };

        for (size_t chunk = 0; chunk <= 3; chunk++) {
                assert_int_equal(parse_chunked(text, chunk, &s, &p), -EINVAL);
                snprintf(want, sizeof(want), "line %u: ", line);
                if (strncmp(p.error, want, strlen(want)) != 0 || !strstr(p.error, says))
                        fail_msg("'%s' should start '%s' and say '%s'", p.error, want, says);
                /* Sticky: nothing more is parsed after an error. */
                assert_int_equal(lackey_feed(&p, " L 10,1\n", 8), -EINVAL);
                assert_int_equal(lackey_finish(&p), -EINVAL);
                s.n = 0;
        }
}

static void test_bad_lines_name_their_number(void **state)
{
        (void)state;
        fails_on_line("I  1000,4\n X 1000,4\n", 2, "unknown access kind 'X'");
        fails_on_line("\n\nL1000,4\n", 3, "expected a space");
        fails_on_line(" L ,4\n", 1, "hexadecimal address");
        fails_on_line(" L 10g0,4\n", 1, "expected ','");
        fails_on_line(" L 1000\n", 1, "expected ','");
        fails_on_line(" L 1000,\n", 1, "decimal size");
        fails_on_line(" L 1000,0\n", 1, "size 0");
        fails_on_line(" L 1000,4097\n", 1, "above 4096");
        fails_on_line(" L 1000,99999999999999999999999\n", 1, "above 4096");
        fails_on_line(" L 1000,4 junk\n", 1, "after the size");
        fails_on_line(" L 10000000000000000,4\n", 1, "longer than 64 bits");
        fails_on_line(" L ffffffffffffffff,2\n", 1, "past the end");
        fails_on_line("=\n", 1, "unknown access kind '='");
        fails_on_line(" L 10,1\n\x01\n", 2, "byte 0x01");
}

static void test_overlong_line_is_refused_even_split(void **state)
{
        (void)state;
        char text[LACKEY_LINE_MAX + 16];

        memset(text, ' ', sizeof(text));
        memcpy(text + sizeof(text) - 9, " L 10,1\n", 9); /* ends with the NUL */
        fails_on_line(text, 1, "longer than 255 bytes");

        /* Exactly LACKEY_LINE_MAX bytes is still a line. */
        char ok[LACKEY_LINE_MAX + 2];
        memset(ok, ' ', sizeof(ok));
        memcpy(ok + LACKEY_LINE_MAX - 7, " L 10,1\n", 9);
        struct lackey_parser p;
        struct seen s = { 0 };
        assert_int_equal(parse_chunked(ok, 100, &s, &p), 0);
        assert_int_equal(s.n, 1);
}

static void test_callback_stops_the_parse(void **state)
{
        (void)state;
        struct lackey_parser p;
        struct seen s = { .stop_after = 2 };

        assert_int_equal(parse_chunked(real_trace, 0, &s, &p), 99);
        assert_int_equal(s.n, 2);
        assert_int_equal(lackey_feed(&p, " L 10,1\n", 8), 99);
        assert_int_equal(s.n, 2);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_every_kind_and_valgrind_lines_are_skipped),
                cmocka_unit_test(test_any_chunking_gives_the_same_accesses),
                cmocka_unit_test(test_last_line_without_newline_and_crlf),
                cmocka_unit_test(test_bad_lines_name_their_number),
                cmocka_unit_test(test_overlong_line_is_refused_even_split),
                cmocka_unit_test(test_callback_stops_the_parse),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
