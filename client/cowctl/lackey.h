/* SPDX-License-Identifier: MIT */
/*
 * A streaming parser for the memory traces of Valgrind's lackey tool
 * (`valgrind --tool=lackey --trace-mem=yes PROG`):
 *
 *     I  04016ca0,3        instruction fetch of 3 bytes at 0x4016ca0
 *      L 1ffefffe18,8      load
 *      S 1ffefffe18,8      store
 *      M 0421e0c8,4        modify (a load and a store of the same bytes)
 *     ==4711== ...         Valgrind's own messages: skipped
 *
 * Addresses are hexadecimal (an optional 0x is accepted), sizes decimal.
 * Blank lines are skipped; a trailing '\r' is ignored.
 *
 * The parser does no I/O: it is fed the trace in chunks of any size (a
 * line may be split anywhere) and calls back once per access, so a trace
 * of any length is parsed in constant memory. It allocates nothing.
 */
#ifndef COWCTL_LACKEY_H
#define COWCTL_LACKEY_H

#include <stddef.h>
#include <stdint.h>

/* Longest line accepted, without its newline; lackey's lines are under 30 bytes. */
#define LACKEY_LINE_MAX 255
/* Largest access size accepted; lackey's largest (vector registers) are 64 bytes. */
#define LACKEY_SIZE_MAX 4096

enum lackey_kind {
        LACKEY_INSTR = 'I',
        LACKEY_LOAD = 'L',
        LACKEY_STORE = 'S',
        LACKEY_MODIFY = 'M',
};

struct lackey_access {
        uint64_t addr;
        uint32_t size; /* 1..LACKEY_SIZE_MAX; addr + size does not overflow */
        enum lackey_kind kind;
};

/*
 * Called once per access, in trace order. Returns 0 to go on, or anything
 * else to stop: lackey_feed() and lackey_finish() then return that value.
 */
typedef int (*lackey_access_fn)(void *ctx, const struct lackey_access *a);

struct lackey_parser {
        lackey_access_fn fn;
        void *ctx;
        uint64_t line;         /* lines completed so far */
        uint64_t accesses;     /* accesses reported so far */
        size_t len;            /* bytes of the current, unfinished line in buf */
        int failed;            /* sticky: the first error returned */
        char buf[LACKEY_LINE_MAX + 1];
        char error[128];       /* "line N: what is wrong", once failed */
};

/* Prepares p to parse a new trace, reporting accesses to fn(ctx, ...). */
void lackey_init(struct lackey_parser *p, lackey_access_fn fn, void *ctx);

/*
 * Parses len more bytes of the trace. Returns 0, -EINVAL for a line that is
 * not lackey's (p->error names its number and says why), or the callback's
 * non-zero value. After a failure every later call returns the same value.
 */
int lackey_feed(struct lackey_parser *p, const char *data, size_t len);

/* Ends the trace: parses a last line that lacks its newline. Returns as lackey_feed(). */
int lackey_finish(struct lackey_parser *p);

#endif /* COWCTL_LACKEY_H */
