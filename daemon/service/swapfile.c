/* SPDX-License-Identifier: MIT */
#include "swapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct cow_swapfile {
        int fd;
        uint64_t slots;
        uint32_t page_size;
};

int cow_swapfile_open(const char *path, uint64_t slots, uint32_t page_size, cow_swapfile **ret,
                      char *err, size_t errlen)
{
        struct cow_swapfile *s;
        struct stat st;
        int r;

        if (slots == 0 || page_size == 0 || slots > (uint64_t)INT64_MAX / page_size) {
                snprintf(err, errlen, "swap file %s: %llu slots of %u bytes is not a size", path,
                         (unsigned long long)slots, page_size);
                return -EINVAL;
        }
        s = calloc(1, sizeof(*s));
        if (!s) {
                snprintf(err, errlen, "swap file %s: out of memory", path);
                return -ENOMEM;
        }
        s->slots = slots;
        s->page_size = page_size;
        s->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (s->fd < 0) {
                r = -errno;
                snprintf(err, errlen, "swap file %s: %s", path, strerror(errno));
                goto fail;
        }
        if (fstat(s->fd, &st) < 0) {
                r = -errno;
                snprintf(err, errlen, "swap file %s: %s", path, strerror(errno));
                goto fail;
        }
        if (S_ISREG(st.st_mode)) {
                /* Pages in it may be the data of processes: nobody else reads them. */
                if ((st.st_mode & 0077) && fchmod(s->fd, 0600) < 0) {
                        r = -errno;
                        snprintf(err, errlen, "swap file %s: cannot make it private: %s", path,
                                 strerror(errno));
                        goto fail;
                }
                if (ftruncate(s->fd, 0) < 0 ||
                    ftruncate(s->fd, (off_t)(slots * page_size)) < 0) {
                        r = -errno;
                        snprintf(err, errlen, "swap file %s: cannot size it to %llu bytes: %s",
                                 path, (unsigned long long)(slots * page_size), strerror(errno));
                        goto fail;
                }
        } else if (!S_ISBLK(st.st_mode) && !S_ISCHR(st.st_mode)) {
                r = -EINVAL;
                snprintf(err, errlen, "swap file %s: not a regular file or a device", path);
                goto fail;
        }
        *ret = s;
        return 0;
fail:
        if (s->fd >= 0)
                close(s->fd);
        free(s);
        return r;
}

void cow_swapfile_free(cow_swapfile *s)
{
        if (!s)
                return;
        close(s->fd);
        free(s);
}

/* Checks a slot and length from the engine; a mismatch is a bug, refused rather than obeyed. */
static int swapfile_check(const struct cow_swapfile *s, uint64_t slot, size_t len)
{
        if (slot >= s->slots || len != s->page_size)
                return -EINVAL;
        return 0;
}

static int swapfile_write(void *ctx, uint64_t slot, const void *page, size_t len)
{
        struct cow_swapfile *s = ctx;
        const uint8_t *p = page;
        off_t off = (off_t)(slot * s->page_size);
        int r = swapfile_check(s, slot, len);

        if (r < 0)
                return r;
        while (len > 0) {
                ssize_t n = pwrite(s->fd, p, len, off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -ENOSPC; /* no progress: the device is full */
                p += n;
                len -= (size_t)n;
                off += n;
        }
        return 0;
}

static int swapfile_read(void *ctx, uint64_t slot, void *page, size_t len)
{
        struct cow_swapfile *s = ctx;
        uint8_t *p = page;
        off_t off = (off_t)(slot * s->page_size);
        int r = swapfile_check(s, slot, len);

        if (r < 0)
                return r;
        while (len > 0) {
                ssize_t n = pread(s->fd, p, len, off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EIO; /* the file was cut short under us */
                p += n;
                len -= (size_t)n;
                off += n;
        }
        return 0;
}

const struct cow_swap_ops cow_swapfile_ops = {
        .write = swapfile_write,
        .read = swapfile_read,
};
