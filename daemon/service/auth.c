/* SPDX-License-Identifier: MIT */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Room for COW_AUTH_MAX_ENTRIES full lines and comments; larger is not a token file. */
#define AUTH_FILE_MAX (2u << 20)

struct auth_entry {
        uint8_t token[COW_AUTH_TOKEN_MAX]; /* zero-padded */
        uint32_t len;
        uint32_t uid;
};

struct cow_auth {
        size_t n;
        struct auth_entry entries[];
};

void cow_auth_free(cow_auth *a)
{
        if (!a)
                return;
        /* The tokens are secrets: leave none behind in freed memory. */
        explicit_bzero(a->entries, a->n * sizeof(a->entries[0]));
        free(a);
}

size_t cow_auth_count(const cow_auth *a)
{
        return a ? a->n : 0;
}

static bool is_blank(char c)
{
        return c == ' ' || c == '\t' || c == '\r';
}

/* Splits the next white-space-separated word off [*p, end). */
static size_t next_word(const char **p, const char *end, const char **ret_word)
{
        const char *s = *p;

        while (s < end && is_blank(*s))
                s++;
        *ret_word = s;
        while (s < end && !is_blank(*s))
                s++;
        *p = s;
        return (size_t)(s - *ret_word);
}

static int parse_uid(const char *s, size_t len, uint32_t *ret_uid)
{
        uint64_t v = 0;

        if (len == 0 || len > 10)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (uint64_t)(s[i] - '0');
        }
        /* (uid_t)-1 means "no user" to the kernel; it can own nothing. */
        if (v >= UINT32_MAX)
                return -ERANGE;
        *ret_uid = (uint32_t)v;
        return 0;
}

/* Parses one "UID TOKEN" line into e. Returns 0 or -EINVAL with why set. */
static int parse_line(const char *s, const char *end, struct auth_entry *e, const char **why)
{
        const char *uid_s, *tok, *extra;
        size_t uid_len, tok_len;

        uid_len = next_word(&s, end, &uid_s);
        tok_len = next_word(&s, end, &tok);
        if (next_word(&s, end, &extra) != 0) {
                *why = "expected two fields, a uid and a token";
                return -EINVAL;
        }
        if (parse_uid(uid_s, uid_len, &e->uid) < 0) {
                *why = "the uid is not a number below 4294967295";
                return -EINVAL;
        }
        if (tok_len < COW_AUTH_TOKEN_MIN || tok_len > COW_AUTH_TOKEN_MAX) {
                *why = tok_len == 0 ? "no token after the uid"
                                    : "a token must be 16 to 256 characters long";
                return -EINVAL;
        }
        for (size_t i = 0; i < tok_len; i++) {
                if (tok[i] < 0x21 || tok[i] > 0x7e) {
                        *why = "a token may hold only printable ASCII characters";
                        return -EINVAL;
                }
        }
        memset(e->token, 0, sizeof(e->token));
        memcpy(e->token, tok, tok_len);
        e->len = (uint32_t)tok_len;
        return 0;
}

int cow_auth_parse(const char *text, size_t len, cow_auth **ret, char *err, size_t errlen)
{
        const char *p = text, *end = text + len;
        size_t lines = 0, cap = 0;
        cow_auth *a;
        int r = 0;

        /* At most one entry per line: count them to size the table once. */
        for (size_t i = 0; i < len; i++)
                cap += text[i] == '\n';
        cap++;
        if (cap > COW_AUTH_MAX_ENTRIES)
                cap = COW_AUTH_MAX_ENTRIES;
        a = calloc(1, sizeof(*a) + cap * sizeof(a->entries[0]));
        if (!a)
                return -ENOMEM;

        while (p < end) {
                const char *eol = memchr(p, '\n', (size_t)(end - p));
                const char *line_end = eol ? eol : end;
                const char *s = p, *why = NULL;

                lines++;
                p = eol ? eol + 1 : end;
                while (s < line_end && is_blank(*s))
                        s++;
                if (s == line_end || *s == '#')
                        continue;
                if (memchr(s, '\0', (size_t)(line_end - s))) {
                        snprintf(err, errlen, "line %zu: a NUL byte", lines);
                        r = -EINVAL;
                        goto fail;
                }
                if (a->n == cap) {
                        snprintf(err, errlen, "line %zu: more than %d tokens", lines,
                                 COW_AUTH_MAX_ENTRIES);
                        r = -EINVAL;
                        goto fail;
                }
                r = parse_line(s, line_end, &a->entries[a->n], &why);
                if (r < 0) {
                        snprintf(err, errlen, "line %zu: %s", lines, why);
                        goto fail;
                }
                for (size_t i = 0; i < a->n; i++) {
                        if (a->entries[i].len == a->entries[a->n].len &&
                            memcmp(a->entries[i].token, a->entries[a->n].token,
                                   a->entries[i].len) == 0) {
                                snprintf(err, errlen, "line %zu: the same token is given twice",
                                         lines);
                                r = -EINVAL;
                                goto fail;
                        }
                }
                a->n++;
        }
        if (a->n == 0) {
                snprintf(err, errlen, "no tokens: each line is a uid and a token");
                r = -EINVAL;
                goto fail;
        }
        *ret = a;
        return 0;
fail:
        cow_auth_free(a);
        return r;
}

int cow_auth_load(const char *path, cow_auth **ret, char *err, size_t errlen)
{
        char why[160] = "";
        struct stat st;
        char *text = NULL;
        size_t got = 0;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0) {
                r = -errno;
                snprintf(err, errlen, "token file %s: %s", path, strerror(errno));
                return r;
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                snprintf(err, errlen, "token file %s: %s", path, strerror(errno));
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                r = -EINVAL;
                snprintf(err, errlen, "token file %s is not a regular file", path);
                goto out;
        }
        if (st.st_uid != geteuid() || (st.st_mode & 0077)) {
                r = -EPERM;
                snprintf(err, errlen,
                         "token file %s must be owned by uid %u and readable by no one else "
                         "(chmod 600)", path, (unsigned)geteuid());
                goto out;
        }
        if (st.st_size > AUTH_FILE_MAX) {
                r = -EFBIG;
                snprintf(err, errlen, "token file %s is larger than %u bytes", path,
                         AUTH_FILE_MAX);
                goto out;
        }
        text = malloc((size_t)st.st_size + 1);
        if (!text) {
                r = -ENOMEM;
                snprintf(err, errlen, "token file %s: out of memory", path);
                goto out;
        }
        while (got < (size_t)st.st_size) {
                ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        snprintf(err, errlen, "token file %s: %s", path, strerror(errno));
                        goto out;
                }
                if (n == 0)
                        break;
                got += (size_t)n;
        }
        r = cow_auth_parse(text, got, ret, why, sizeof(why));
        if (r < 0)
                snprintf(err, errlen, "token file %s: %s", path, why);
out:
        if (text) {
                explicit_bzero(text, (size_t)st.st_size);
                free(text);
        }
        close(fd);
        return r;
}

int cow_auth_check(const cow_auth *a, const void *token, size_t len, uint32_t *ret_uid)
{
        uint8_t given[COW_AUTH_TOKEN_MAX] = { 0 };
        uint32_t found = 0, uid = 0;

        /* The length is the caller's own to know; only the tokens are secret. */
        if (!a || len < COW_AUTH_TOKEN_MIN || len > COW_AUTH_TOKEN_MAX)
                return -EACCES;
        memcpy(given, token, len);
        for (size_t i = 0; i < a->n; i++) {
                const struct auth_entry *e = &a->entries[i];
                uint32_t diff = e->len ^ (uint32_t)len;

                for (size_t j = 0; j < COW_AUTH_TOKEN_MAX; j++)
                        diff |= (uint32_t)(e->token[j] ^ given[j]);
                /* Keep the compiler from turning the accumulation into an early exit. */
                __asm__ volatile("" : "+r"(diff));
                uint32_t match = 1u ^ ((diff | (0u - diff)) >> 31);
                uid |= e->uid & (0u - match);
                found |= match;
        }
        explicit_bzero(given, sizeof(given));
        if (!found)
                return -EACCES;
        *ret_uid = uid;
        return 0;
}
