/* SPDX-License-Identifier: MIT */
#include "filestore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* One fd kept open for the engine's page I/O, by key. */
struct open_file {
        char key[COW_FILESTORE_KEY_MAX];
        int fd;         /* -1: the slot is free */
        uint64_t stamp; /* last use, for least-recently-used replacement */
};

struct cow_filestore {
        int root; /* the data directory */
        struct cow_filestore_limits limits;
        struct cow_filestore_counters counters;
        bool no_openat2; /* openat2() was refused once: use the fallback from then on */
        struct open_file *open;
        uint64_t clock;
        /* The file a put is writing, between _put_begin and _put_end: "" when none */
        char busy_key[COW_FILESTORE_KEY_MAX];
        uint64_t busy_size; /* its size before the chunk (0 for a whole file) */
};

int cow_filestore_name_check(const char *name)
{
        size_t n = 0;

        if (!name || !name[0] || name[0] == '.')
                return -EINVAL;
        for (const char *p = name; *p; p++, n++) {
                char c = *p;
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
                if (!ok)
                        return -EINVAL;
                if (n >= COW_FILESTORE_NAME_MAX)
                        return -ENAMETOOLONG;
        }
        return 0;
}

int cow_filestore_key(uint32_t uid, const char *name, char *buf, size_t len)
{
        int n = snprintf(buf, len, "%u/%s", uid, name);
        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Splits a key "<uid>/<name>" (the name checked): 0 or -EINVAL. */
static int key_parse(const char *key, uint32_t *ret_uid, const char **ret_name)
{
        const char *slash = strchr(key, '/');
        uint64_t uid = 0;

        if (!slash || slash == key || slash - key > 10)
                return -EINVAL;
        for (const char *p = key; p < slash; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                uid = uid * 10 + (uint64_t)(*p - '0');
        }
        if (uid > UINT32_MAX || cow_filestore_name_check(slash + 1) < 0)
                return -EINVAL;
        *ret_uid = (uint32_t)uid;
        *ret_name = slash + 1;
        return 0;
}

/*
 * Opens one path component beneath dirfd: never through a symlink, never
 * outside dirfd. openat2() says so to the kernel; without it (ENOSYS before
 * Linux 5.6, or EPERM from a seccomp filter), a single component opened with
 * O_NOFOLLOW is as safe, since names hold no '/'. Returns an fd or a negative
 * errno (-ELOOP for a link).
 */
static int open_beneath(cow_filestore *fs, int dirfd, const char *component, int flags,
                        mode_t mode)
{
        flags |= O_CLOEXEC | O_NOCTTY;
        if (!fs->no_openat2) {
                struct open_how how = {
                        .flags = (uint64_t)flags,
                        .mode = (flags & O_CREAT) ? mode : 0,
                        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
                };
                long fd = syscall(SYS_openat2, dirfd, component, &how, sizeof(how));
                if (fd >= 0)
                        return (int)fd;
                /*
                 * ENOSYS: a kernel before 5.6. EPERM: a seccomp filter that does
                 * not know the call. Either way openat() serves from now on.
                 */
                if (errno != ENOSYS && errno != EPERM)
                        return -errno;
                fs->no_openat2 = true;
        }
        int fd = openat(dirfd, component, flags | O_NOFOLLOW, mode);
        if (fd >= 0)
                return fd;
        if (errno == ENOTDIR && (flags & O_DIRECTORY)) {
                /* O_NOFOLLOW with O_DIRECTORY says ENOTDIR for a link: say what openat2 says. */
                struct stat st;
                if (fstatat(dirfd, component, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    S_ISLNK(st.st_mode))
                        return -ELOOP;
                errno = ENOTDIR;
        }
        return -errno;
}

/* The owner's directory, created (0700) when create is set: an fd or a negative errno. */
static int owner_dir(cow_filestore *fs, uint32_t uid, bool create)
{
        char name[16];
        int fd;

        snprintf(name, sizeof(name), "%u", uid);
        fd = open_beneath(fs, fs->root, name, O_RDONLY | O_DIRECTORY, 0);
        if (fd == -ENOENT && create) {
                if (mkdirat(fs->root, name, 0700) < 0 && errno != EEXIST)
                        return -errno;
                fd = open_beneath(fs, fs->root, name, O_RDONLY | O_DIRECTORY, 0);
        }
        if (fd == -ELOOP || fd == -ENOTDIR)
                fs->counters.name_rejections++;
        return fd;
}

/* cow_filestore_name_check(), with a refusal counted. */
static int name_check_counted(cow_filestore *fs, const char *name)
{
        int r = cow_filestore_name_check(name);

        if (r < 0)
                fs->counters.name_rejections++;
        return r;
}

/*
 * Opens uid's file name with flags (O_NONBLOCK added: a FIFO planted there
 * must not block the daemon) and checks that it is a regular file: the one
 * door to a file by name, so the name is checked here. Returns an fd or a
 * negative errno.
 */
static int file_open(cow_filestore *fs, uint32_t uid, const char *name, int flags)
{
        struct stat st;
        int dfd, fd;

        fd = name_check_counted(fs, name);
        if (fd < 0)
                return fd;
        dfd = owner_dir(fs, uid, false);
        if (dfd < 0)
                return dfd;
        fd = open_beneath(fs, dfd, name, flags | O_NONBLOCK, 0);
        close(dfd);
        if (fd == -ELOOP) {
                fs->counters.name_rejections++;
                return fd;
        }
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                fs->counters.name_rejections++;
                return -EINVAL;
        }
        /* Later reads and writes block as on any regular file. */
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        return fd;
}

int cow_filestore_open(const char *dir, const struct cow_filestore_limits *limits,
                       cow_filestore **ret, char *err, size_t errlen)
{
        cow_filestore *fs;
        struct stat st;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                snprintf(err, errlen, "files directory %s: %s", dir, strerror(errno));
                return -errno;
        }
        fs = calloc(1, sizeof(*fs));
        if (!fs) {
                snprintf(err, errlen, "files directory %s: out of memory", dir);
                return -ENOMEM;
        }
        fs->limits = *limits;
        fs->no_openat2 = limits->openat_only;
        if (fs->limits.max_open == 0)
                fs->limits.max_open = 1;
        fs->open = calloc(fs->limits.max_open, sizeof(*fs->open));
        fs->root = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (!fs->open || fs->root < 0) {
                int r = fs->open ? -errno : -ENOMEM;
                snprintf(err, errlen, "files directory %s: %s", dir, strerror(-r));
                if (fs->root >= 0)
                        close(fs->root);
                free(fs->open);
                free(fs);
                return r;
        }
        for (uint32_t i = 0; i < fs->limits.max_open; i++)
                fs->open[i].fd = -1;
        /* Other users' files live here: nobody else may look in. */
        if (fstat(fs->root, &st) == 0 && (st.st_mode & 0077))
                (void)fchmod(fs->root, st.st_mode & 0700);
        *ret = fs;
        return 0;
}

/* Closes the fd kept for key, if any (before a file is replaced or removed). */
static void open_forget(cow_filestore *fs, const char *key)
{
        for (uint32_t i = 0; i < fs->limits.max_open; i++) {
                struct open_file *o = &fs->open[i];
                if (o->fd >= 0 && strcmp(o->key, key) == 0) {
                        close(o->fd);
                        o->fd = -1;
                }
        }
}

void cow_filestore_free(cow_filestore *fs)
{
        if (!fs)
                return;
        for (uint32_t i = 0; i < fs->limits.max_open; i++)
                if (fs->open[i].fd >= 0)
                        close(fs->open[i].fd);
        free(fs->open);
        close(fs->root);
        free(fs);
}

void cow_filestore_counters(const cow_filestore *fs, struct cow_filestore_counters *ret)
{
        *ret = fs->counters;
}

/*
 * Calls fn for each of uid's files with a valid name that is a regular
 * file (not following links). Returns 0, fn's first negative return, or a
 * negative errno; a missing owner directory is no files.
 */
static int owner_walk(cow_filestore *fs, uint32_t uid,
                      int (*fn)(void *ctx, const char *name, const struct stat *st), void *ctx)
{
        struct dirent *de;
        DIR *d;
        int dfd, r = 0;

        dfd = owner_dir(fs, uid, false);
        if (dfd == -ENOENT)
                return 0;
        if (dfd < 0)
                return dfd;
        d = fdopendir(dfd);
        if (!d) {
                r = -errno;
                close(dfd);
                return r;
        }
        while ((de = readdir(d))) {
                struct stat st;

                if (cow_filestore_name_check(de->d_name) < 0)
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISREG(st.st_mode))
                        continue;
                r = fn(ctx, de->d_name, &st);
                if (r < 0)
                        break;
        }
        closedir(d);
        return r;
}

struct usage {
        uint64_t bytes;
        uint32_t files;
};

static int usage_add(void *ctx, const char *name, const struct stat *st)
{
        struct usage *u = ctx;
        (void)name;
        u->bytes += (uint64_t)st->st_size;
        u->files++;
        return 0;
}

int cow_filestore_usage(cow_filestore *fs, uint32_t uid, uint64_t *ret_bytes,
                        uint32_t *ret_files)
{
        struct usage u = { 0 };
        int r = owner_walk(fs, uid, usage_add, &u);

        if (r < 0)
                return r;
        *ret_bytes = u.bytes;
        *ret_files = u.files;
        return 0;
}

static int64_t mtime_ns(const struct stat *st)
{
        return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

int cow_filestore_stat(cow_filestore *fs, uint32_t uid, const char *name, uint64_t *ret_size,
                       int64_t *ret_mtime_ns)
{
        struct stat st;
        int fd, r;

        fd = file_open(fs, uid, name, O_RDONLY);
        if (fd < 0)
                return fd;
        r = fstat(fd, &st) < 0 ? -errno : 0;
        close(fd);
        if (r < 0)
                return r;
        /* A chunk being appended is not there until its put is answered. */
        if (fs->busy_size && (uint64_t)st.st_size > fs->busy_size &&
            cow_filestore_put_running(fs, uid, name))
                st.st_size = (off_t)fs->busy_size;
        if (ret_size)
                *ret_size = (uint64_t)st.st_size;
        if (ret_mtime_ns)
                *ret_mtime_ns = mtime_ns(&st);
        return 0;
}

/* pwrite() of all of buf: 0 or a negative errno (-ENOSPC for no progress). */
static int write_all(int fd, const uint8_t *p, size_t len, uint64_t off)
{
        while (len > 0) {
                ssize_t n = pwrite(fd, p, len, (off_t)off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -ENOSPC;
                p += n;
                len -= (size_t)n;
                off += (uint64_t)n;
        }
        return 0;
}

/* pread() until len bytes or the end: the count, or a negative errno. */
static ssize_t read_all(int fd, uint8_t *p, size_t len, uint64_t off)
{
        size_t done = 0;

        while (done < len) {
                ssize_t n = pread(fd, p + done, len - done, (off_t)(off + done));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                done += (size_t)n;
        }
        return (ssize_t)done;
}

/* Checks the limits for uid's file name becoming new_size bytes long. */
static int put_check_limits(cow_filestore *fs, uint32_t uid, uint64_t old_size, bool exists,
                            uint64_t new_size)
{
        uint64_t bytes;
        uint32_t files;
        int r;

        if (new_size > fs->limits.max_file_bytes) {
                fs->counters.size_rejections++;
                return -EFBIG;
        }
        r = cow_filestore_usage(fs, uid, &bytes, &files);
        if (r < 0)
                return r;
        if (!exists && files >= fs->limits.max_files) {
                fs->counters.count_rejections++;
                return -EMFILE;
        }
        if (bytes - (exists ? old_size : 0) + new_size > fs->limits.quota_bytes) {
                fs->counters.quota_rejections++;
                return -EDQUOT;
        }
        return 0;
}

/*
 * Opens what the write of p needs: for offset 0 a temporary file, renamed
 * over the old one once written (a leading '.' is never a valid name, so a
 * leftover is never listed or mapped); else the file itself, a regular one.
 */
static int put_open(cow_filestore *fs, struct cow_filestore_put *p)
{
        struct stat st;
        int fd;

        if (p->offset == 0) {
                snprintf(p->tmp, sizeof(p->tmp), ".put.%s", p->name);
                fd = open_beneath(fs, p->dfd, p->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        } else {
                fd = open_beneath(fs, p->dfd, p->name, O_WRONLY | O_NONBLOCK, 0);
                if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
                        close(fd);
                        fd = -EINVAL;
                }
        }
        if (fd < 0)
                return fd;
        p->fd = fd;
        return 0;
}

int cow_filestore_put_begin(cow_filestore *fs, uint32_t uid, const char *name, uint64_t offset,
                            const void *data, size_t len, struct cow_filestore_put *p)
{
        uint64_t old_size = 0;
        bool exists;
        int r;

        *p = (struct cow_filestore_put){ .dfd = -1, .fd = -1, .offset = offset, .data = data,
                                         .len = len };
        if (offset > UINT64_MAX - len) {
                fs->counters.size_rejections++;
                return -EFBIG;
        }
        r = cow_filestore_stat(fs, uid, name, &old_size, NULL);
        if (r < 0 && r != -ENOENT)
                return r;
        exists = r == 0;
        if (offset > 0 && (!exists || old_size != offset))
                return -ESPIPE;
        r = put_check_limits(fs, uid, old_size, exists, offset + len);
        if (r < 0)
                return r;
        p->dfd = owner_dir(fs, uid, true);
        if (p->dfd < 0)
                return p->dfd;
        snprintf(p->name, sizeof(p->name), "%s", name);
        cow_filestore_key(uid, name, fs->busy_key, sizeof(fs->busy_key));
        fs->busy_size = offset;
        open_forget(fs, fs->busy_key);
        r = put_open(fs, p);
        if (r < 0)
                return cow_filestore_put_end(fs, p, r);
        return 0;
}

int cow_filestore_put_write(struct cow_filestore_put *p)
{
        int r = write_all(p->fd, p->data, p->len, p->offset);

        if (r == 0 && fsync(p->fd) < 0)
                r = -errno;
        if (p->offset == 0) {
                close(p->fd);
                p->fd = -1;
                if (r == 0 && renameat(p->dfd, p->tmp, p->dfd, p->name) < 0)
                        r = -errno;
                if (r < 0) {
                        unlinkat(p->dfd, p->tmp, 0);
                        return r;
                }
                /* The rename itself is durable only once the directory is. */
                return fsync(p->dfd) < 0 ? -errno : 0;
        }
        if (r < 0 && ftruncate(p->fd, (off_t)p->offset) < 0) {
                /* Nothing better to do: the error that matters is r. */
        }
        return r;
}

int cow_filestore_put_end(cow_filestore *fs, struct cow_filestore_put *p, int r)
{
        if (p->fd >= 0)
                close(p->fd);
        if (p->dfd >= 0)
                close(p->dfd);
        p->fd = p->dfd = -1;
        fs->busy_key[0] = '\0';
        if (r < 0 && r != -ELOOP)
                fs->counters.io_errors++;
        return r;
}

bool cow_filestore_put_running(const cow_filestore *fs, uint32_t uid, const char *name)
{
        char key[COW_FILESTORE_KEY_MAX];

        return fs->busy_key[0] && cow_filestore_key(uid, name, key, sizeof(key)) == 0 &&
               strcmp(key, fs->busy_key) == 0;
}

int cow_filestore_put(cow_filestore *fs, uint32_t uid, const char *name, uint64_t offset,
                      const void *data, size_t len)
{
        struct cow_filestore_put p;
        int r;

        r = cow_filestore_put_begin(fs, uid, name, offset, data, len, &p);
        if (r < 0)
                return r;
        return cow_filestore_put_end(fs, &p, cow_filestore_put_write(&p));
}

int cow_filestore_get(cow_filestore *fs, uint32_t uid, const char *name, uint64_t offset,
                      void *buf, size_t len, size_t *ret_n)
{
        ssize_t n;
        int fd;

        fd = file_open(fs, uid, name, O_RDONLY);
        if (fd < 0)
                return fd;
        n = read_all(fd, buf, len, offset);
        close(fd);
        if (n < 0) {
                fs->counters.io_errors++;
                return (int)n;
        }
        *ret_n = (size_t)n;
        return 0;
}

int cow_filestore_remove(cow_filestore *fs, uint32_t uid, const char *name)
{
        char key[COW_FILESTORE_KEY_MAX];
        struct stat st;
        int dfd, r;

        r = name_check_counted(fs, name);
        if (r < 0)
                return r;
        dfd = owner_dir(fs, uid, false);
        if (dfd < 0)
                return dfd;
        /* Only a regular file: not a directory or anything else placed here. */
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                r = -errno;
        else if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
                r = -EINVAL;
        else if (unlinkat(dfd, name, 0) < 0)
                r = -errno;
        close(dfd);
        if (r == 0) {
                cow_filestore_key(uid, name, key, sizeof(key));
                open_forget(fs, key);
        }
        return r;
}

struct listing {
        const char *after;
        struct cow_file_entry *all;
        size_t n, cap;
};

static int listing_add(void *ctx, const char *name, const struct stat *st)
{
        struct listing *l = ctx;

        if (strcmp(name, l->after) <= 0)
                return 0;
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 16;
                struct cow_file_entry *p = realloc(l->all, cap * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                l->all = p;
                l->cap = cap;
        }
        snprintf(l->all[l->n].name, sizeof(l->all[l->n].name), "%s", name);
        l->all[l->n].size = (uint64_t)st->st_size;
        l->all[l->n].mtime_ns = mtime_ns(st);
        l->n++;
        return 0;
}

static int entry_cmp(const void *a, const void *b)
{
        return strcmp(((const struct cow_file_entry *)a)->name,
                      ((const struct cow_file_entry *)b)->name);
}

int cow_filestore_list(cow_filestore *fs, uint32_t uid, const char *after,
                       struct cow_file_entry *out, size_t cap, bool *ret_more)
{
        struct listing l = { .after = after ? after : "" };
        size_t n;
        int r;

        r = owner_walk(fs, uid, listing_add, &l);
        if (r < 0) {
                free(l.all);
                return r;
        }
        if (l.n)
                qsort(l.all, l.n, sizeof(*l.all), entry_cmp);
        n = l.n < cap ? l.n : cap;
        if (n)
                memcpy(out, l.all, n * sizeof(*out));
        *ret_more = l.n > cap;
        free(l.all);
        return (int)n;
}

/*
 * The fd for key: kept open from an earlier call, or opened read-write now
 * into the least recently used slot. Returns an fd the table owns, or a
 * negative errno.
 */
static int key_fd(cow_filestore *fs, const char *key)
{
        struct open_file *victim = &fs->open[0];
        const char *name;
        uint32_t uid;
        int fd, r;

        for (uint32_t i = 0; i < fs->limits.max_open; i++) {
                struct open_file *o = &fs->open[i];
                if (o->fd >= 0 && strcmp(o->key, key) == 0) {
                        o->stamp = ++fs->clock;
                        return o->fd;
                }
                if (victim->fd >= 0 && (o->fd < 0 || o->stamp < victim->stamp))
                        victim = o;
        }
        r = key_parse(key, &uid, &name);
        if (r < 0)
                return r;
        fd = file_open(fs, uid, name, O_RDWR);
        if (fd < 0)
                return fd;
        if (victim->fd >= 0)
                close(victim->fd);
        victim->fd = fd;
        victim->stamp = ++fs->clock;
        snprintf(victim->key, sizeof(victim->key), "%s", key);
        return fd;
}

ssize_t cow_filestore_key_read(cow_filestore *fs, const char *key, uint64_t offset, void *buf,
                               size_t len)
{
        int fd = key_fd(fs, key);
        ssize_t n;

        if (fd < 0)
                return fd;
        n = read_all(fd, buf, len, offset);
        if (n < 0)
                fs->counters.io_errors++;
        return n;
}

int cow_filestore_key_write(cow_filestore *fs, const char *key, uint64_t offset,
                            const void *buf, size_t len)
{
        struct stat st;
        int fd = key_fd(fs, key);
        int r;

        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (offset >= (uint64_t)st.st_size)
                return 0;
        if (len > (uint64_t)st.st_size - offset)
                len = (size_t)((uint64_t)st.st_size - offset);
        r = write_all(fd, buf, len, offset);
        if (r < 0)
                fs->counters.io_errors++;
        return r;
}

int cow_filestore_key_sync(cow_filestore *fs, const char *key)
{
        int fd = key_fd(fs, key);

        if (fd < 0)
                return fd;
        if (fsync(fd) < 0) {
                fs->counters.io_errors++;
                return -errno;
        }
        return 0;
}

static ssize_t ops_read(void *ctx, const char *key, uint64_t offset, void *buf, size_t len)
{
        return cow_filestore_key_read(ctx, key, offset, buf, len);
}

static int ops_write(void *ctx, const char *key, uint64_t offset, const void *buf, size_t len)
{
        return cow_filestore_key_write(ctx, key, offset, buf, len);
}

static int ops_sync(void *ctx, const char *key)
{
        return cow_filestore_key_sync(ctx, key);
}

const struct cow_file_ops cow_filestore_ops = {
        .read = ops_read,
        .write = ops_write,
        .sync = ops_sync,
};
