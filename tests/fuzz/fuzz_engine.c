/* SPDX-License-Identifier: MIT */
/*
 * The engine against its reference model: a differential fuzzer. The input
 * bytes are the choices the differential test draws from its seed (swap on
 * or off, page size, frames, policy and TLB shape first, then for each
 * operation its kind, process, address, length and protection: spawn, fork,
 * exit, mmap, munmap, mprotect, madvise, reads and writes, checkpoint round
 * trips, invalid calls), so any byte string is a sequence, and mutating it
 * changes the sequence from that point on. The model (tests/diffmodel)
 * predicts every result, byte read, counter, frame, swap slot and TLB
 * entry, and cow_engine_verify() runs after every operation; the first
 * divergence aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "diffmodel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct diff *d;

        if (!d)
                d = diff_new(getenv("COWD_DIFF_VERBOSE") != NULL, true);
        /* Long inputs only repeat what shorter ones reach, slower. */
        if (size > 1024)
                return 0;
        diff_run_bytes(d, data, size);
        return 0;
}
