/* SPDX-License-Identifier: MIT */
/*
 * Simulated devices: the framebuffer fb0 and the console. Their memory is
 * frames of its own after the pool (frames.h), fb0's first, then the
 * console's page: mapping a device page maps its fixed frame, shared by
 * every mapper, never copied, evicted or counted as used. Every byte stored
 * into the console page is also appended to the console log, a ring of
 * console_log_bytes addressed by position (bytes written since the start).
 */
#ifndef COWD_ENGINE_DEVICE_H
#define COWD_ENGINE_DEVICE_H

#include <cowd/engine.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct devices {
        uint32_t base[COW_DEV_COUNT];  /* first frame of each device */
        uint32_t pages[COW_DEV_COUNT]; /* its frames */
        uint64_t bytes[COW_DEV_COUNT]; /* its size */
        uint8_t *log;                  /* the console log ring */
        uint32_t log_cap;
        uint64_t log_end;              /* bytes ever appended */
};

/* Device frames cfg asks for, to be reserved after the pool. */
uint32_t dev_frames_needed(const struct cow_engine_config *cfg);

/* Lays the devices out from frame nframes + 1 and allocates the log: 0 or -ENOMEM. */
int dev_init(struct devices *d, const struct cow_engine_config *cfg, uint32_t nframes);
void dev_fini(struct devices *d);

/* Which device frame pfn belongs to, if any. */
bool dev_of_frame(const struct devices *d, uint32_t pfn, enum cow_device *ret);

/* Appends bytes stored into the console page to the log. */
void dev_console_append(struct devices *d, const void *buf, size_t len);

#endif /* COWD_ENGINE_DEVICE_H */
