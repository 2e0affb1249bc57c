/* SPDX-License-Identifier: MIT */
#include "lackey.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void lackey_init(struct lackey_parser *p, lackey_access_fn fn, void *ctx)
{
        memset(p, 0, sizeof(*p));
        p->fn = fn;
        p->ctx = ctx;
}

/* Records a syntax error on the current line (p->line + 1) and returns -EINVAL. */
static int lackey_fail(struct lackey_parser *p, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static int lackey_fail(struct lackey_parser *p, const char *fmt, ...)
{
        char why[96];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        snprintf(p->error, sizeof(p->error), "line %llu: %s",
                 (unsigned long long)(p->line + 1), why);
        p->failed = -EINVAL;
        return -EINVAL;
}

static bool is_blank(char c)
{
        return c == ' ' || c == '\t';
}

static int hex_digit(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/*
 * Parses one complete line s[0..n-1] (no newline). Valgrind's own lines
 * ("==pid== ...", "--pid-- ...", "**pid** ...") and blank lines are skipped.
 */
static int parse_line(struct lackey_parser *p, const char *s, size_t n)
{
        struct lackey_access a = { 0 };
        size_t i = 0;
        uint64_t size = 0;
        int digits = 0;

        if (n > 0 && s[n - 1] == '\r')
                n--;
        while (i < n && is_blank(s[i]))
                i++;
        if (i == n)
                return 0;
        if (n - i >= 2 && (s[i] == '=' || s[i] == '-' || s[i] == '*') && s[i + 1] == s[i])
                return 0;

        switch (s[i]) {
        case 'I':
        case 'L':
        case 'S':
        case 'M':
                a.kind = (enum lackey_kind)s[i];
                break;
        default:
                if ((unsigned char)s[i] >= 0x21 && (unsigned char)s[i] < 0x7f)
                        return lackey_fail(p, "unknown access kind '%c' (I, L, S or M)", s[i]);
                return lackey_fail(p, "unknown access kind (byte 0x%02x)",
                                   (unsigned char)s[i]);
        }
        i++;
        if (i == n || !is_blank(s[i]))
                return lackey_fail(p, "expected a space after the access kind");
        while (i < n && is_blank(s[i]))
                i++;

        if (n - i >= 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X'))
                i += 2;
        for (; i < n && hex_digit(s[i]) >= 0; i++, digits++) {
                if (a.addr >> 60)
                        return lackey_fail(p, "address longer than 64 bits");
                a.addr = a.addr << 4 | (uint64_t)hex_digit(s[i]);
        }
        if (digits == 0)
                return lackey_fail(p, "expected a hexadecimal address");
        if (i == n || s[i] != ',')
                return lackey_fail(p, "expected ',' after the address");
        i++;

        digits = 0;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
                size = size * 10 + (uint64_t)(s[i] - '0');
                if (size > LACKEY_SIZE_MAX)
                        return lackey_fail(p, "access size above %d bytes", LACKEY_SIZE_MAX);
        }
        if (digits == 0)
                return lackey_fail(p, "expected a decimal size after ','");
        while (i < n && is_blank(s[i]))
                i++;
        if (i != n)
                return lackey_fail(p, "unexpected text after the size");
        if (size == 0)
                return lackey_fail(p, "access size 0");
        if (a.addr > UINT64_MAX - (size - 1))
                return lackey_fail(p, "access runs past the end of the address space");
        a.size = (uint32_t)size;

        p->accesses++;
        return p->fn(p->ctx, &a);
}

/* Parses the buffered line, counts it and empties the buffer. */
static int end_line(struct lackey_parser *p, const char *s, size_t n)
{
        int r = parse_line(p, s, n);

        if (r != 0) {
                p->failed = r;
                return r;
        }
        p->line++;
        p->len = 0;
        return 0;
}

int lackey_feed(struct lackey_parser *p, const char *data, size_t len)
{
        size_t i = 0;

        if (p->failed)
                return p->failed;
        while (i < len) {
                const char *nl = memchr(data + i, '\n', len - i);
                size_t n = nl ? (size_t)(nl - (data + i)) : len - i;
                int r;

                if (p->len + n > LACKEY_LINE_MAX)
                        return lackey_fail(p, "longer than %d bytes", LACKEY_LINE_MAX);
                if (!nl) {
                        /* The rest of an unfinished line: keep it for the next chunk. */
                        memcpy(p->buf + p->len, data + i, n);
                        p->len += n;
                        return 0;
                }
                if (p->len == 0) {
                        /* A whole line inside this chunk: parse it in place. */
                        r = end_line(p, data + i, n);
                } else {
                        memcpy(p->buf + p->len, data + i, n);
                        r = end_line(p, p->buf, p->len + n);
                }
                if (r != 0)
                        return r;
                i += n + 1;
        }
        return 0;
}

int lackey_finish(struct lackey_parser *p)
{
        if (p->failed)
                return p->failed;
        if (p->len == 0)
                return 0;
        return end_line(p, p->buf, p->len);
}
