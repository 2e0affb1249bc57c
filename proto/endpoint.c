/* SPDX-License-Identifier: MIT */
#include "endpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int put(char *buf, size_t len, int n)
{
        return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

int cow_default_socket_dir(char *buf, size_t len)
{
        const char *env = getenv(COW_SOCKET_ENV);
        if (env && *env) {
                /* The caller's own path: its directory is the caller's business. */
                return put(buf, len, snprintf(buf, len, "%s", ""));
        }
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        if (xdg && *xdg)
                return put(buf, len, snprintf(buf, len, "%s", xdg));
        return put(buf, len, snprintf(buf, len, "/tmp/cowd-%u", (unsigned)getuid()));
}

int cow_default_socket_path(char *buf, size_t len)
{
        const char *env = getenv(COW_SOCKET_ENV);
        if (env && *env)
                return put(buf, len, snprintf(buf, len, "%s", env));
        char dir[4096];
        int r = cow_default_socket_dir(dir, sizeof(dir));
        if (r < 0)
                return r;
        return put(buf, len, snprintf(buf, len, "%s/cowd.sock", dir));
}
