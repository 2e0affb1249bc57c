/* SPDX-License-Identifier: MIT */
#include "endpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* snprintf's result as 0 or -ENAMETOOLONG. */
static int fits(int n, size_t len)
{
        return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

int cow_default_socket_dir(char *buf, size_t len)
{
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        if (xdg && *xdg)
                return fits(snprintf(buf, len, "%s", xdg), len);
        return fits(snprintf(buf, len, "/tmp/cowd-%u", (unsigned)getuid()), len);
}

int cow_default_socket_path(char *buf, size_t len)
{
        const char *env = getenv(COW_SOCKET_ENV);
        if (env && *env)
                return fits(snprintf(buf, len, "%s", env), len);
        char dir[4096];
        int r = cow_default_socket_dir(dir, sizeof(dir));
        if (r < 0)
                return r;
        return fits(snprintf(buf, len, "%s/cowd.sock", dir), len);
}
