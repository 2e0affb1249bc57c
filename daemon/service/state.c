/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* renameat2 */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TMP_FILE COW_STATE_FILE ".tmp"

/* Checkpoint bytes gathered into large writes; write() itself, so that every error is its own. */
struct file_sink_ctx {
        int fd;
        uint64_t bytes;
        size_t used;
        uint8_t buf[64 << 10];
};

/* Writes out what is gathered. Returns 0 or a negative errno (-ENOSPC for no progress). */
static int file_sink_flush(struct file_sink_ctx *fs)
{
        const uint8_t *p = fs->buf;
        size_t left = fs->used;

        while (left > 0) {
                ssize_t n = write(fs->fd, p, left);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -ENOSPC;
                p += n;
                left -= (size_t)n;
        }
        fs->used = 0;
        return 0;
}

static int file_sink(void *ctx, const void *buf, size_t len)
{
        struct file_sink_ctx *fs = ctx;
        const uint8_t *p = buf;

        fs->bytes += len;
        while (len > 0) {
                size_t n = sizeof(fs->buf) - fs->used;
                int r;

                if (n > len)
                        n = len;
                memcpy(fs->buf + fs->used, p, n);
                fs->used += n;
                p += n;
                len -= n;
                if (fs->used == sizeof(fs->buf) && (r = file_sink_flush(fs)) < 0)
                        return r;
        }
        return 0;
}

static int file_source(void *ctx, void *buf, size_t len)
{
        if (fread(buf, 1, len, ctx) == len)
                return 0;
        return ferror((FILE *)ctx) ? -EIO : -ENODATA;
}

int cow_state_save(const char *dir, cow_engine *e, uint64_t *ret_bytes, char *err,
                   size_t errlen)
{
        struct file_sink_ctx *fs = NULL;
        int dfd, r;

        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot open state directory %s: %s", dir, strerror(-r));
                return r;
        }
        fs = malloc(sizeof(*fs));
        if (!fs) {
                r = -ENOMEM;
                snprintf(err, errlen, "out of memory");
                goto fail;
        }
        fs->bytes = 0;
        fs->used = 0;
        fs->fd = openat(dfd, TMP_FILE, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                        0600);
        if (fs->fd < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot create %s/%s: %s", dir, TMP_FILE, strerror(-r));
                goto fail;
        }
        r = cow_engine_save(e, file_sink, fs);
        if (r == 0)
                r = file_sink_flush(fs);
        if (r == 0 && fsync(fs->fd) < 0)
                r = -errno;
        if (close(fs->fd) < 0 && r == 0)
                r = -errno;
        fs->fd = -1;
        if (r < 0) {
                snprintf(err, errlen, "cannot write %s/%s: %s", dir, TMP_FILE, strerror(-r));
                goto fail;
        }
        /* The rename makes the new checkpoint whole or absent; the directory's
         * fsync makes the rename itself survive a crash. */
        if (renameat(dfd, TMP_FILE, dfd, COW_STATE_FILE) < 0 || fsync(dfd) < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot commit %s/%s: %s", dir, COW_STATE_FILE,
                         strerror(-r));
                goto fail;
        }
        close(dfd);
        if (ret_bytes)
                *ret_bytes = fs->bytes;
        free(fs);
        return 0;
fail:
        if (fs && fs->fd >= 0)
                close(fs->fd);
        free(fs);
        (void)unlinkat(dfd, TMP_FILE, 0);
        close(dfd);
        return r;
}

void cow_state_remove_temp(const char *dir)
{
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (dfd < 0)
                return;
        (void)unlinkat(dfd, TMP_FILE, 0);
        close(dfd);
}

int cow_state_set_aside(const char *dir, char *ret_name, size_t namelen, char *err,
                        size_t errlen)
{
        char stamp[32], name[96];
        struct tm tm;
        time_t now = time(NULL);
        int dfd, r = -EEXIST;

        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot open state directory %s: %s", dir, strerror(-r));
                return r;
        }
        gmtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
        for (unsigned n = 0; n < 100 && r == -EEXIST; n++) {
                if (n == 0)
                        snprintf(name, sizeof(name), "%s.refused-%s", COW_STATE_FILE, stamp);
                else
                        snprintf(name, sizeof(name), "%s.refused-%s-%u", COW_STATE_FILE, stamp,
                                 n);
                /* NOREPLACE: an earlier refused checkpoint is never overwritten. */
                r = renameat2(dfd, COW_STATE_FILE, dfd, name, RENAME_NOREPLACE) < 0 ? -errno
                                                                                     : 0;
        }
        if (r == 0 && fsync(dfd) < 0)
                r = -errno;
        close(dfd);
        if (r < 0) {
                snprintf(err, errlen, "cannot rename %s/%s aside: %s", dir, COW_STATE_FILE,
                         strerror(-r));
                return r;
        }
        snprintf(ret_name, namelen, "%s", name);
        return 0;
}

int cow_state_load(const char *dir, const struct cow_engine_config *cfg,
                   const struct cow_swap_ops *swap_ops, void *swap_ctx, cow_engine **ret,
                   char *err, size_t errlen)
{
        const char *why = NULL;
        int dfd, fd, r;

        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot open state directory %s: %s", dir, strerror(-r));
                return r;
        }
        fd = openat(dfd, COW_STATE_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        r = fd < 0 ? -errno : 0;
        close(dfd);
        if (r == -ENOENT)
                return 1;
        FILE *f = r == 0 ? fdopen(fd, "r") : NULL;
        if (!f) {
                r = r < 0 ? r : -errno;
                if (fd >= 0)
                        close(fd);
                snprintf(err, errlen, "cannot open %s/%s: %s", dir, COW_STATE_FILE, strerror(-r));
                return r;
        }
        r = swap_ops ? cow_engine_load_swap(cfg, file_source, f, swap_ops, swap_ctx, ret, &why)
                     : cow_engine_load(cfg, file_source, f, ret, &why);
        fclose(f);
        if (r < 0)
                snprintf(err, errlen, "%s/%s: %s", dir, COW_STATE_FILE,
                         why ? why : strerror(-r));
        return r;
}
