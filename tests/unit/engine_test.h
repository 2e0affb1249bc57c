/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by the engine unit tests. Everything here is static
 * inline so each test binary stays a single translation unit and nothing
 * needs a prototype elsewhere.
 *
 * Include order matters for cmocka: the standard headers it expects come
 * first, then cmocka.h, then the engine's public header (the only engine
 * header tests may use: they test the contract, not the internals).
 */
#ifndef COWD_TESTS_ENGINE_TEST_H
#define COWD_TESTS_ENGINE_TEST_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cowd/engine.h>

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define PG UINT64_C(4096)

/* Fails the test with the engine's own description when an invariant breaks. */
#define assert_verify(e)                                                              \
        do {                                                                          \
                char verify_msg_[512] = "";                                           \
                int verify_r_ = cow_engine_verify((e), verify_msg_, sizeof verify_msg_); \
                if (verify_r_ != 0)                                                   \
                        fail_msg("cow_engine_verify() = %d: %s", verify_r_, verify_msg_); \
        } while (0)

/* Asserts that an engine call returned exactly the expected (negative) errno. */
#define assert_rc(expr, want)                                                         \
        do {                                                                          \
                int rc_got_ = (expr);                                                 \
                int rc_want_ = (want);                                                \
                if (rc_got_ != rc_want_)                                              \
                        fail_msg("%s = %d (%s), expected %d (%s)", #expr, rc_got_,    \
                                 cow_engine_strerror(rc_got_), rc_want_,              \
                                 cow_engine_strerror(rc_want_));                      \
        } while (0)

#define assert_ok(expr) assert_rc((expr), 0)

/*
 * Engines a test made, so a failing test (cmocka longjmps out of it) does not
 * show up as a leak under LeakSanitizer: main() passes te_free_all as the
 * group teardown. Tests free with te_free().
 */
#define TE_MAX_ENGINES 16
static cow_engine *te_engines[TE_MAX_ENGINES];

static inline cow_engine *te_track(cow_engine *e)
{
        for (int i = 0; i < TE_MAX_ENGINES; i++)
                if (!te_engines[i]) {
                        te_engines[i] = e;
                        return e;
                }
        fail_msg("more than %d live engines in one test", TE_MAX_ENGINES);
        return e;
}

static inline void te_free(cow_engine *e)
{
        for (int i = 0; i < TE_MAX_ENGINES; i++)
                if (te_engines[i] == e)
                        te_engines[i] = NULL;
        cow_engine_free(e);
}

static inline int te_free_all(void **state)
{
        (void)state;
        for (int i = 0; i < TE_MAX_ENGINES; i++) {
                cow_engine_free(te_engines[i]);
                te_engines[i] = NULL;
        }
        return 0;
}

static inline cow_engine *te_new(uint64_t mem_bytes, uint32_t page_size, uint32_t tlb_entries,
                                 uint32_t tlb_ways)
{
        struct cow_engine_config cfg;
        cow_engine *e = NULL;

        cow_engine_config_init(&cfg);
        cfg.mem_bytes = mem_bytes;
        cfg.page_size = page_size;
        cfg.tlb_entries = tlb_entries;
        cfg.tlb_ways = tlb_ways;
        assert_ok(cow_engine_new(&cfg, &e));
        assert_non_null(e);
        te_track(e);
        assert_verify(e);
        return e;
}

/* An engine of npages 4 KiB frames and the default TLB. */
static inline cow_engine *te_new_frames(uint64_t nframes)
{
        return te_new(nframes * PG, (uint32_t)PG, 64, 0);
}

static inline struct cow_sys_stats te_sys(cow_engine *e)
{
        struct cow_sys_stats s;

        memset(&s, 0xa5, sizeof s);
        cow_engine_sys_stats(e, &s);
        return s;
}

static inline uint64_t te_used(cow_engine *e)
{
        return te_sys(e).frames_used;
}

static inline struct cow_proc_stats te_proc(cow_engine *e, cow_pid pid)
{
        struct cow_proc_stats s;

        memset(&s, 0xa5, sizeof s);
        assert_ok(cow_engine_proc_stats(e, pid, &s));
        assert_int_equal(s.pid, pid);
        return s;
}

static inline cow_pid te_spawn(cow_engine *e, const char *name)
{
        cow_pid pid = 0;

        assert_ok(cow_engine_spawn(e, name, 1000, &pid));
        assert_true(pid != 0);
        assert_verify(e);
        return pid;
}

static inline cow_pid te_fork(cow_engine *e, cow_pid parent)
{
        cow_pid child = 0;

        assert_ok(cow_engine_fork(e, parent, &child));
        assert_true(child != 0);
        assert_true(child != parent);
        assert_verify(e);
        return child;
}

static inline void te_exit(cow_engine *e, cow_pid pid)
{
        assert_ok(cow_engine_exit(e, pid));
        assert_verify(e);
}

/* Maps length bytes; addr 0 lets the engine choose. Returns the address. */
static inline uint64_t te_mmap(cow_engine *e, cow_pid pid, uint64_t addr, uint64_t length,
                               unsigned prot, bool shared)
{
        struct cow_mmap_args a = {
                .addr = addr, .length = length, .prot = prot, .shared = shared,
                .fixed = false, .kind = COW_MAP_ANONYMOUS,
        };
        uint64_t got = 0;

        assert_ok(cow_engine_mmap(e, pid, &a, &got));
        if (addr != 0)
                assert_int_equal(got, addr);
        assert_verify(e);
        return got;
}

static inline uint64_t te_mmap_rw(cow_engine *e, cow_pid pid, uint64_t length)
{
        return te_mmap(e, pid, 0, length, COW_PROT_READ | COW_PROT_WRITE, false);
}

static inline void te_write(cow_engine *e, cow_pid pid, uint64_t addr, const void *buf,
                            size_t len)
{
        struct cow_fault f = { COW_FAULT_NONE, 0 };

        assert_ok(cow_engine_write(e, pid, addr, buf, len, &f));
        assert_verify(e);
}

static inline void te_read(cow_engine *e, cow_pid pid, uint64_t addr, void *buf, size_t len)
{
        struct cow_fault f = { COW_FAULT_NONE, 0 };

        assert_ok(cow_engine_read(e, pid, addr, buf, len, &f));
        assert_verify(e);
}

/* Writes a 64-bit value at addr (used as a per-page marker). */
static inline void te_put64(cow_engine *e, cow_pid pid, uint64_t addr, uint64_t v)
{
        te_write(e, pid, addr, &v, sizeof v);
}

static inline uint64_t te_get64(cow_engine *e, cow_pid pid, uint64_t addr)
{
        uint64_t v = 0;

        te_read(e, pid, addr, &v, sizeof v);
        return v;
}

/* Expects an access to fault with kind at exactly fault_addr. */
static inline void te_expect_fault(int rc, const struct cow_fault *f, enum cow_fault_kind kind,
                                   uint64_t fault_addr)
{
        assert_rc(rc, -EFAULT);
        assert_int_equal(f->kind, kind);
        assert_int_equal(f->addr, fault_addr);
}

static inline struct cow_page_info te_page(cow_engine *e, cow_pid pid, uint64_t addr)
{
        struct cow_page_info pi;

        memset(&pi, 0, sizeof pi);
        assert_ok(cow_engine_page_map(e, pid, addr, 1, &pi));
        assert_int_equal(pi.addr, addr);
        return pi;
}

/* A deterministic byte pattern, different for every (tag, offset). */
static inline void te_pattern(void *buf, size_t len, uint64_t tag)
{
        unsigned char *p = buf;

        for (size_t i = 0; i < len; i++) {
                uint64_t x = (tag + 1) * UINT64_C(0x9e3779b97f4a7c15) + i * UINT64_C(0xbf58476d1ce4e5b9);
                x ^= x >> 29;
                p[i] = (unsigned char)(x ^ (x >> 17));
        }
}

static inline bool te_is_zero(const void *buf, size_t len)
{
        const unsigned char *p = buf;

        for (size_t i = 0; i < len; i++)
                if (p[i] != 0)
                        return false;
        return true;
}

#endif /* COWD_TESTS_ENGINE_TEST_H */
