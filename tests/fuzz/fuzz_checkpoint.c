/* SPDX-License-Identifier: MIT */
/*
 * The checkpoint loader. The input is a checkpoint without its closing CRC:
 * the target appends the right one, so the fuzzer explores the format rather
 * than the checksum. Whatever loads must be consistent, and saving is
 * canonical: load, save, load, save gives the same bytes twice. Inputs that
 * do not load into the plain shape are tried again with 16 slots of swap and
 * an in-memory backend, so the swap state of format 2 (slots, swap entries,
 * swap cache, the swapped pages) is explored too. Both shapes keep per-owner
 * charges (a quota is set), so the charges of format 4 are explored as well.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cowd/engine.h>

#include "blob.h"
#include "crc32.h"
#include "swapmem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct feed {
        const uint8_t *data;
        size_t size, pos;
        uint32_t crc;
        uint8_t trailer[4];
        size_t trailer_pos; /* bytes of the trailer handed out */
};

static int feed_source(void *ctx, void *buf, size_t len)
{
        struct feed *f = ctx;
        uint8_t *out = buf;
        size_t body = f->size - f->pos < len ? f->size - f->pos : len;

        memcpy(out, f->data + f->pos, body);
        f->crc = crc32_update(f->crc, f->data + f->pos, body);
        f->pos += body;
        if (body == len)
                return 0;
        /* The body is spent: the CRC of everything handed out so far follows. */
        if (f->trailer_pos == 0)
                for (int i = 0; i < 4; i++)
                        f->trailer[i] = (uint8_t)(f->crc >> (8 * i));
        size_t want = len - body;
        if (want > 4 - f->trailer_pos)
                return -ENODATA;
        memcpy(out + body, f->trailer + f->trailer_pos, want);
        f->trailer_pos += want;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct cow_engine_config cfg;
        cow_engine_config_init(&cfg);
        cfg.mem_bytes = 64 * 4096; /* the seeds were written with this shape */
        cfg.tlb_entries = 8;
        cfg.tlb_ways = 2;
        cfg.max_procs = 64;
        cfg.max_maps_per_proc = 64;
        cfg.max_pt_bytes = 256 * 4096 * 2;
        cfg.max_frames_per_owner = 64;
        cfg.max_swap_slots_per_owner = 16;

        struct feed f = { .data = data, .size = size };
        cow_engine *e = NULL;
        struct swapmem sm[2] = { 0 };
        bool swap = false;
        if (cow_engine_load(&cfg, feed_source, &f, &e, NULL) != 0) {
                /* The swap shape: the seeds with swapped pages were written with it. */
                cfg.swap_slots = 16;
                f = (struct feed){ .data = data, .size = size };
                if (swapmem_init(&sm[0], cfg.swap_slots, 4096) != 0 ||
                    swapmem_init(&sm[1], cfg.swap_slots, 4096) != 0)
                        abort();
                swap = true;
                if (cow_engine_load_swap(&cfg, feed_source, &f, &swapmem_ops, &sm[0], &e,
                                         NULL) != 0) {
                        swapmem_fini(&sm[0]);
                        swapmem_fini(&sm[1]);
                        return 0;
                }
        }

        /* Loaded: it must be whole, and its own save must load and save alike. */
        if (cow_engine_verify(e, NULL, 0) != 0)
                abort();
        struct blob first = { 0 }, second = { 0 };
        cow_engine *again = NULL;
        int r = cow_engine_save(e, blob_sink, &first);
        if (r == 0)
                r = swap ? cow_engine_load_swap(&cfg, blob_source, &first, &swapmem_ops, &sm[1],
                                                &again, NULL)
                         : cow_engine_load(&cfg, blob_source, &first, &again, NULL);
        if (r != 0 || cow_engine_save(again, blob_sink, &second) != 0 ||
            first.len != second.len || memcmp(first.p, second.p, first.len) != 0)
                abort();
        free(first.p);
        free(second.p);
        cow_engine_free(again);
        cow_engine_free(e);
        swapmem_fini(&sm[0]);
        swapmem_fini(&sm[1]);
        return 0;
}
