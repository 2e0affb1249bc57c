/* SPDX-License-Identifier: MIT */
/*
 * Simulated devices (device.h) and their public API: names, sizes, reading
 * device memory and the console log.
 */
#include "device.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine-impl.h"

static uint64_t fb_bytes(const struct cow_engine_config *cfg)
{
        return (uint64_t)cfg->fb_width * cfg->fb_height * 4;
}

static uint32_t pages_of(uint64_t bytes, uint32_t page_size)
{
        return (uint32_t)((bytes + page_size - 1) / page_size);
}

uint32_t dev_frames_needed(const struct cow_engine_config *cfg)
{
        return pages_of(fb_bytes(cfg), cfg->page_size) + 1;
}

int dev_init(struct devices *d, const struct cow_engine_config *cfg, uint32_t nframes)
{
        *d = (struct devices){ .log_cap = cfg->console_log_bytes };
        d->bytes[COW_DEV_FB0] = fb_bytes(cfg);
        d->bytes[COW_DEV_CONSOLE] = cfg->page_size;
        uint32_t next = nframes + 1;
        for (int i = 0; i < COW_DEV_COUNT; i++) {
                d->base[i] = next;
                d->pages[i] = pages_of(d->bytes[i], cfg->page_size);
                next += d->pages[i];
        }
        d->log = calloc(d->log_cap, 1);
        return d->log ? 0 : -ENOMEM;
}

void dev_fini(struct devices *d)
{
        free(d->log);
        d->log = NULL;
}

bool dev_of_frame(const struct devices *d, uint32_t pfn, enum cow_device *ret)
{
        for (int i = 0; i < COW_DEV_COUNT; i++) {
                if (pfn >= d->base[i] && pfn - d->base[i] < d->pages[i]) {
                        *ret = (enum cow_device)i;
                        return true;
                }
        }
        return false;
}

void dev_console_append(struct devices *d, const void *buf, size_t len)
{
        const uint8_t *p = buf;
        /* Only the last log_cap bytes can survive: skip what would be overwritten. */
        if (len > d->log_cap) {
                d->log_end += len - d->log_cap;
                p += len - d->log_cap;
                len = d->log_cap;
        }
        while (len > 0) {
                size_t at = (size_t)(d->log_end % d->log_cap);
                size_t chunk = d->log_cap - at < len ? d->log_cap - at : len;
                memcpy(d->log + at, p, chunk);
                d->log_end += chunk;
                p += chunk;
                len -= chunk;
        }
}

/* ---- public API -------------------------------------------------------- */

const char *cow_device_name(enum cow_device dev)
{
        switch (dev) {
        case COW_DEV_FB0:
                return "fb0";
        case COW_DEV_CONSOLE:
                return "console";
        }
        return NULL;
}

int cow_device_parse(const char *name, enum cow_device *ret)
{
        for (int d = 0; name && d < COW_DEV_COUNT; d++) {
                if (strcmp(name, cow_device_name((enum cow_device)d)) == 0) {
                        *ret = (enum cow_device)d;
                        return 0;
                }
        }
        return -EINVAL;
}

uint64_t cow_engine_device_bytes(const cow_engine *e, enum cow_device dev)
{
        return cow_device_name(dev) ? e->dev.bytes[dev] : 0;
}

int cow_engine_device_read(cow_engine *e, enum cow_device dev, uint64_t offset, void *buf,
                           size_t len)
{
        uint64_t size = cow_engine_device_bytes(e, dev);
        if (offset > size || len > size - offset)
                return -EINVAL;
        /* A device's frames are consecutive, so its memory is one run of bytes. */
        memcpy(buf, (const uint8_t *)frames_data(&e->frames, e->dev.base[dev]) + offset, len);
        return 0;
}

int cow_engine_console_read(const cow_engine *e, uint64_t pos, void *buf, size_t len,
                            uint64_t *ret_pos)
{
        const struct devices *d = &e->dev;
        uint64_t oldest = d->log_end > d->log_cap ? d->log_end - d->log_cap : 0;
        if (pos < oldest)
                pos = oldest;
        if (pos > d->log_end)
                pos = d->log_end;
        uint64_t avail = d->log_end - pos;
        if (len > avail)
                len = (size_t)avail;
        if (len > INT32_MAX)
                len = INT32_MAX;
        uint8_t *out = buf;
        for (size_t done = 0; done < len;) {
                size_t at = (size_t)((pos + done) % d->log_cap);
                size_t chunk = d->log_cap - at < len - done ? d->log_cap - at : len - done;
                memcpy(out + done, d->log + at, chunk);
                done += chunk;
        }
        *ret_pos = pos;
        return (int)len;
}

uint64_t cow_engine_console_end(const cow_engine *e)
{
        return e->dev.log_end;
}
