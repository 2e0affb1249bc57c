/* SPDX-License-Identifier: MIT */
/*
 * Per-owner charges: the frames and swap slots each owner (the uid a process
 * carries) is charged for, and the quotas on them.
 *
 * The model is Linux's memory cgroup. A frame is charged to the owner of the
 * process that faulted it in (zero fill, copy-on-write copy, swap-in into a
 * new frame, a file page read into the page cache) and uncharged when it is
 * freed, whoever frees it: a frame shared later (fork, a file mapped by
 * others) stays charged to its first owner. A swap slot is charged to the
 * owner of the frame written to it, when it is written, and uncharged when
 * the slot is freed. The zero page and device frames are never charged.
 *
 * Charges are kept only when the engine was created with a quota: then each
 * frame and each slot carries a 16-bit owner index (0: uncharged) in arrays
 * parallel to the frame metadata and the slot table, reserved lazily from the
 * host like them (2 bytes per frame and per slot, and the 32-byte frame
 * metadata stays as it is). The owner table holds an entry per owner with a
 * live process or a charge; an entry with neither is reused. It holds at most
 * CHARGE_OWNERS_MAX entries, so a process of a new owner beyond that is
 * refused at spawn (-EAGAIN), never at a fault.
 */
#ifndef COWD_ENGINE_CHARGE_H
#define COWD_ENGINE_CHARGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cowd/engine.h>

#define CHARGE_OWNERS_MAX 65535u

struct charge_owner {
        uint32_t uid;
        uint32_t procs;  /* live processes of this owner */
        uint64_t frames; /* frames charged to it */
        uint64_t slots;  /* swap slots charged to it */
};

struct charge {
        bool on;                     /* charges are kept (a quota was configured) */
        bool complete;               /* every frame and slot in use is charged: kept since
                                      * the start, or loaded with the charges */
        uint16_t *frame;             /* per frame number: owner index, 0 for none */
        uint16_t *slot;              /* per swap slot: owner index, 0 for none */
        size_t frame_len, slot_len;  /* bytes reserved for each array */
        struct charge_owner *owners; /* [1..n]; [0] is unused */
        uint32_t n, cap;             /* entries handed out so far; room for cap - 1 */
        uint64_t max_frames;         /* per owner; 0 = no quota */
        uint64_t max_slots;          /* per owner; 0 = no quota */
        uint64_t frame_refusals;     /* accesses refused at a frame quota */
        uint64_t slot_refusals;      /* evictions refused at a swap-slot quota */
        uint8_t last_refused;        /* enum cow_quota of the latest refusal */
};

/*
 * Sets c up for frames numbered 0 .. nframes - 1 and nslots slots. With both
 * quotas 0 charges are not kept and nothing is reserved. 0 or -ENOMEM.
 */
int charge_init(struct charge *c, uint64_t max_frames, uint64_t max_slots, size_t nframes,
                uint32_t nslots);
void charge_fini(struct charge *c);

/*
 * A process of uid starts (spawn, fork, a checkpoint's load): the index of
 * uid's entry, made if need be. *ret_idx is 0 when charges are not kept.
 * 0 or -EAGAIN (the owner table is full), -ENOMEM.
 */
int charge_attach(struct charge *c, uint32_t uid, uint16_t *ret_idx);

/* A process attached with idx ends. */
void charge_detach(struct charge *c, uint16_t idx);

/*
 * Whether owner idx may be charged need more frames. A refusal is counted.
 * Checked before an access changes anything.
 */
bool charge_frames_allowed(struct charge *c, uint16_t idx, uint64_t need);

/* Charges a frame just allocated to owner idx. */
static inline void charge_frame(struct charge *c, uint32_t pfn, uint16_t idx)
{
        if (!c->on || idx == 0)
                return;
        c->frame[pfn] = idx;
        c->owners[idx].frames++;
}

/* A frame is freed: its charge goes. */
static inline void charge_frame_free(struct charge *c, uint32_t pfn)
{
        uint16_t idx = c->on ? c->frame[pfn] : 0;
        if (idx == 0)
                return;
        c->frame[pfn] = 0;
        c->owners[idx].frames--;
}

/* Whether the owner frame pfn is charged to is at its swap-slot quota. */
bool charge_slot_full(const struct charge *c, uint32_t pfn);

/* Counts an eviction refused by charge_slot_full(). */
static inline void charge_slot_refused(struct charge *c)
{
        c->slot_refusals++;
        c->last_refused = COW_QUOTA_SWAP_SLOTS;
}

/* Charges a slot just written with frame pfn to the frame's owner. */
static inline void charge_slot(struct charge *c, uint32_t slot, uint32_t pfn)
{
        uint16_t idx = c->on ? c->frame[pfn] : 0;
        if (idx == 0)
                return;
        c->slot[slot] = idx;
        c->owners[idx].slots++;
}

/* A slot is freed: its charge goes. */
static inline void charge_slot_free(struct charge *c, uint32_t slot)
{
        uint16_t idx = c->on ? c->slot[slot] : 0;
        if (idx == 0)
                return;
        c->slot[slot] = 0;
        c->owners[idx].slots--;
}

/* Owners with a live process or a charge. */
uint64_t charge_live_owners(const struct charge *c);

/* The entry of uid, or 0. */
uint16_t charge_find(const struct charge *c, uint32_t uid);

#endif /* COWD_ENGINE_CHARGE_H */
