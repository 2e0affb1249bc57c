/* SPDX-License-Identifier: MIT */
/*
 * Simulated devices: the framebuffer and the console. Not implemented yet:
 * device mappings and reads report -EOPNOTSUPP until devices land.
 */
#include <errno.h>
#include <string.h>

#include "engine-impl.h"

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
        switch (dev) {
        case COW_DEV_FB0:
                return (uint64_t)e->cfg.fb_width * e->cfg.fb_height * 4;
        case COW_DEV_CONSOLE:
                return e->frames.page_size;
        }
        return 0;
}

int cow_engine_device_read(cow_engine *e, enum cow_device dev, uint64_t offset, void *buf,
                           size_t len)
{
        (void)e;
        (void)dev;
        (void)offset;
        (void)buf;
        (void)len;
        return -EOPNOTSUPP;
}

int cow_engine_console_read(const cow_engine *e, uint64_t pos, void *buf, size_t len,
                            uint64_t *ret_pos)
{
        (void)e;
        (void)buf;
        (void)len;
        *ret_pos = pos;
        return 0;
}

uint64_t cow_engine_console_end(const cow_engine *e)
{
        (void)e;
        return 0;
}
