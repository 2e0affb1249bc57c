/* SPDX-License-Identifier: MIT */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TMP_FILE COW_STATE_FILE ".tmp"

struct file_sink_ctx {
        FILE *f;
        uint64_t bytes;
};

static int file_sink(void *ctx, const void *buf, size_t len)
{
        struct file_sink_ctx *fs = ctx;

        fs->bytes += len;
        return fwrite(buf, 1, len, fs->f) == len ? 0 : -(errno ? errno : EIO);
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
        struct file_sink_ctx fs = { 0 };
        FILE *f = NULL;
        int dfd, fd = -1, r;

        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot open state directory %s: %s", dir, strerror(-r));
                return r;
        }
        fd = openat(dfd, TMP_FILE, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || !(f = fdopen(fd, "w"))) {
                r = -errno;
                snprintf(err, errlen, "cannot create %s/%s: %s", dir, TMP_FILE, strerror(-r));
                goto fail;
        }
        fd = -1; /* f owns it now */
        fs.f = f;
        errno = 0;
        r = cow_engine_save(e, file_sink, &fs);
        if (r == 0 && fflush(f) != 0)
                r = -errno;
        if (r == 0 && fsync(fileno(f)) < 0)
                r = -errno;
        if (fclose(f) != 0 && r == 0)
                r = -errno;
        f = NULL;
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
                *ret_bytes = fs.bytes;
        return 0;
fail:
        if (f)
                fclose(f);
        if (fd >= 0)
                close(fd);
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
