/* SPDX-License-Identifier: MIT */
/*
 * The page cache and file mappings' public API. Not implemented yet: every
 * call below reports -EOPNOTSUPP until the page cache lands.
 */
#include <errno.h>

#include "engine-impl.h"

void cow_engine_set_files(cow_engine *e, const struct cow_file_ops *ops, void *ctx)
{
        (void)e;
        (void)ops;
        (void)ctx;
}

int cow_engine_msync(cow_engine *e, cow_pid pid, uint64_t addr, uint64_t length, bool sync)
{
        (void)e;
        (void)pid;
        (void)addr;
        (void)length;
        (void)sync;
        return -EOPNOTSUPP;
}

int cow_engine_sync_files(cow_engine *e, bool sync)
{
        (void)e;
        (void)sync;
        return 0;
}

bool cow_engine_file_in_use(const cow_engine *e, const char *key)
{
        (void)e;
        (void)key;
        return false;
}
