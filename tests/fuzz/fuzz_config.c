/* SPDX-License-Identifier: MIT */
/*
 * The config parser: any file either gives a configuration the engine
 * accepts, or a clear error naming where. The input is the INI file itself.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cowd/engine.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        int fd = memfd_create("cowd.conf", MFD_CLOEXEC);
        if (fd < 0 || (size > 0 && write(fd, data, size) != (ssize_t)size))
                abort();
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        char arg0[] = "cowd", arg1[] = "--config";
        char *argv[] = { arg0, arg1, path, NULL };

        struct cow_config cfg;
        char err[1024] = "";
        int r = cow_config_parse(&cfg, 3, argv, err, sizeof(err));
        if (r == 0) {
                if (cow_engine_config_check(&cfg.engine, NULL) != 0)
                        abort(); /* accepted, but the engine would refuse it */
        } else if (r < 0 && err[0] == '\0') {
                abort(); /* refused without saying why */
        }
        close(fd);
        return 0;
}
