/* SPDX-License-Identifier: MIT */
#include "charge.h"

#include <cowd/engine.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "frames.h"

int charge_init(struct charge *c, uint64_t max_frames, uint64_t max_slots, size_t nframes,
                uint32_t nslots)
{
        memset(c, 0, sizeof(*c));
        c->max_frames = max_frames;
        c->max_slots = max_slots;
        if (max_frames == 0 && max_slots == 0)
                return 0;
        c->on = true;
        c->complete = true;
        c->frame_len = nframes * sizeof(*c->frame);
        c->frame = frames_reserve(c->frame_len);
        if (nslots) {
                c->slot_len = (size_t)nslots * sizeof(*c->slot);
                c->slot = frames_reserve(c->slot_len);
        }
        if (!c->frame || (nslots && !c->slot)) {
                charge_fini(c);
                return -ENOMEM;
        }
        return 0;
}

void charge_fini(struct charge *c)
{
        if (c->frame)
                munmap(c->frame, c->frame_len);
        if (c->slot)
                munmap(c->slot, c->slot_len);
        free(c->owners);
        memset(c, 0, sizeof(*c));
}

static bool live(const struct charge_owner *o)
{
        return o->procs || o->frames || o->slots;
}

uint64_t charge_live_owners(const struct charge *c)
{
        uint64_t n = 0;
        for (uint32_t i = 1; i <= c->n; i++)
                n += live(&c->owners[i]);
        return n;
}

uint16_t charge_find(const struct charge *c, uint32_t uid)
{
        for (uint32_t i = 1; i <= c->n; i++)
                if (c->owners[i].uid == uid && live(&c->owners[i]))
                        return (uint16_t)i;
        return 0;
}

int charge_attach(struct charge *c, uint32_t uid, uint16_t *ret_idx)
{
        if (!c->on) {
                *ret_idx = 0;
                return 0;
        }
        uint32_t idx = charge_find(c, uid);
        for (uint32_t i = 1; i <= c->n && idx == 0; i++)
                if (!live(&c->owners[i]))
                        idx = i; /* an owner with nothing left: its entry is reused */
        if (idx == 0) {
                if (c->n == CHARGE_OWNERS_MAX)
                        return -EAGAIN;
                if (c->n + 1 >= c->cap) {
                        uint32_t cap = c->cap ? c->cap * 2 : 16;
                        if (cap > CHARGE_OWNERS_MAX + 1)
                                cap = CHARGE_OWNERS_MAX + 1;
                        struct charge_owner *v = realloc(c->owners, cap * sizeof(*v));
                        if (!v)
                                return -ENOMEM;
                        c->owners = v;
                        c->cap = cap;
                }
                idx = ++c->n;
                c->owners[idx] = (struct charge_owner){ 0 };
        }
        c->owners[idx].uid = uid;
        c->owners[idx].procs++;
        *ret_idx = (uint16_t)idx;
        return 0;
}

void charge_detach(struct charge *c, uint16_t idx)
{
        if (c->on && idx != 0)
                c->owners[idx].procs--;
}

bool charge_frames_allowed(struct charge *c, uint16_t idx, uint64_t need)
{
        if (!c->on || idx == 0 || c->max_frames == 0 || need == 0)
                return true;
        if (c->owners[idx].frames + need <= c->max_frames)
                return true;
        c->frame_refusals++;
        c->last_refused = COW_QUOTA_FRAMES;
        return false;
}

bool charge_slot_full(const struct charge *c, uint32_t pfn)
{
        if (!c->on || c->max_slots == 0)
                return false;
        uint16_t idx = c->frame[pfn];
        return idx != 0 && c->owners[idx].slots >= c->max_slots;
}
