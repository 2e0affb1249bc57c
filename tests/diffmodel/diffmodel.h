/* SPDX-License-Identifier: MIT */
/*
 * The engine's reference model and the driver that runs random operation
 * sequences on the engine and on the model side by side, shared by the
 * differential unit test (tests/unit/test_differential.c, seeded choices)
 * and the differential fuzzer (tests/fuzz/fuzz_engine.c, choices decoded
 * from the input bytes). diffmodel.c says what the model predicts.
 */
#ifndef COWD_TESTS_DIFFMODEL_H
#define COWD_TESTS_DIFFMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct diff;

/* What the sequences exercised, summed over every run of one struct diff. */
struct diff_tally {
        uint64_t checkpoints, ops, reads, writes, pages_compared, efault, enomem, eexist, enxio,
                forks, exits, maperr, accerr, mmaps, fixed, shared, munmaps, mprotects,
                dontneeds, page_map_checks;
        uint64_t max_used;
        uint64_t swap_outs, swap_ins, evictions, cache_hits, victims_predicted;
        /* Operations that evicted a page or read one back from swap (an
         * eviction writes the page unless its copy in swap is still valid),
         * and those that read or wrote swap; the same for reads and writes. */
        uint64_t ops_swapped, ops_io;
        uint64_t accesses, accesses_swapped, accesses_io;
        uint64_t freelist_adopted; /* free lists taken in a memory object's own order */
};

/* A driver with nothing run yet; abort_on_fail makes the first divergence abort(). */
struct diff *diff_new(bool verbose, bool abort_on_fail);
void diff_free(struct diff *d);

/*
 * Runs one sequence of nops operations chosen from seed, with tiny memories
 * and swap when swap is set. Returns false (after printing the seed, the
 * operation and what differed to stderr) on the first divergence.
 */
bool diff_run(struct diff *d, uint64_t seed, unsigned nops, bool swap);

/*
 * Runs the sequence that data[0..len) decodes to: every choice the seeded
 * run draws (configuration, operation, process, address, length...) is
 * taken from the bytes instead, until they run out. Same result as diff_run().
 */
bool diff_run_bytes(struct diff *d, const uint8_t *data, size_t len);

const struct diff_tally *diff_tally(const struct diff *d);

/* Prints the tally as one line, named by label. */
void diff_tally_print(const struct diff *d, const char *label, FILE *out);

/*
 * The model against a short hand-built sequence, then with one of its pages
 * corrupted, which the page-map check must notice: false if the model
 * cannot fail.
 */
bool diff_selftest(void);

#endif /* COWD_TESTS_DIFFMODEL_H */
