/* SPDX-License-Identifier: MIT */
/*
 * Differential test: thousands of seeded random operation sequences run on
 * the engine and on the reference model (tests/diffmodel/diffmodel.c, which
 * says what it predicts), compared after every step.
 *
 * The first set runs without swap, over 32 to 256 frames and every page
 * size; the second with swap over tiny memories (8 to 64 frames), working
 * sets several times larger and fork trees, so that nearly every operation
 * swaps: it prints how many operations did, and fails if fewer than nine
 * in ten read or wrote swap.
 *
 * A failure prints the seed and the operation index. Environment:
 *   COWD_SEED=N          run only sequence N (replay; with COWD_DIFF_SWAP=1
 *                        a swap sequence)
 *   COWD_DIFF_ITERS=N    number of sequences without swap (default 3000)
 *   COWD_DIFF_SWAP_ITERS=N  number of sequences with swap (default 200)
 *   COWD_DIFF_OPS=N      operations per sequence (default 160, 400 with swap)
 *   COWD_DIFF_VERBOSE=1  print every operation
 */
#include "engine_test.h"

#include "diffmodel.h"

static uint64_t env_u64(const char *name, uint64_t dflt)
{
        const char *s = getenv(name);

        return s && *s ? strtoull(s, NULL, 0) : dflt;
}

static void run_sequences(bool swap, const char *iters_env, uint64_t iters_default,
                          uint64_t first_seed)
{
        struct diff *d = diff_new(env_u64("COWD_DIFF_VERBOSE", 0) != 0, false);
        uint64_t iters = env_u64(iters_env, iters_default);
        unsigned nops = (unsigned)env_u64("COWD_DIFF_OPS", swap ? 400 : 160);
        const char *one = getenv("COWD_SEED");
        unsigned failures = 0;

        if (one && *one) {
                failures += !diff_run(d, strtoull(one, NULL, 0), nops, swap);
        } else {
                for (uint64_t seed = first_seed; seed < first_seed + iters; seed++) {
                        failures += !diff_run(d, seed, nops, swap);
                        if (failures >= 5)
                                break; /* enough to go on */
                }
        }
        diff_tally_print(d, swap ? "differential with swap" : "differential", stderr);
        const struct diff_tally *t = diff_tally(d);
        uint64_t ops = t->ops, io = t->ops_io;
        diff_free(d);
        if (failures)
                fail_msg("%u differential sequence(s) failed; seeds printed above", failures);
        /* Nine operations in ten, of every kind, read or write swap. */
        if (swap && !(one && *one) && iters >= 100 && io * 10 < ops * 9)
                fail_msg("only %llu of %llu operations in the swap sequences read or wrote swap",
                         (unsigned long long)io, (unsigned long long)ops);
}

static void test_differential(void **state)
{
        (void)state;
        if (getenv("COWD_SEED") && env_u64("COWD_DIFF_SWAP", 0) != 0)
                skip();
        run_sequences(false, "COWD_DIFF_ITERS", 3000, 1);
}

static void test_differential_swap(void **state)
{
        (void)state;
        if (getenv("COWD_SEED") && env_u64("COWD_DIFF_SWAP", 0) == 0)
                skip();
        run_sequences(true, "COWD_DIFF_SWAP_ITERS", 200, 1000001);
}

/* The model itself: a sequence with a known outcome, so a broken model cannot pass silently. */
static void test_model_sanity(void **state)
{
        (void)state;
        assert_true(diff_selftest());
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_model_sanity),
                cmocka_unit_test(test_differential),
                cmocka_unit_test(test_differential_swap),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
