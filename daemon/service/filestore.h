/* SPDX-License-Identifier: MIT */
/*
 * The file store: the files clients put, get, list, remove and map, kept in
 * one data directory with a subdirectory per owner uid (<dir>/<uid>/<name>).
 *
 * A name is one path component: 1 to COW_FILESTORE_NAME_MAX bytes of
 * letters, digits, '.', '_' and '-', not starting with '.'. So "..", "../x",
 * "/etc/passwd" and "a/b" are refused before anything touches the disk, and
 * every open goes through openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
 * from the data directory (openat() with O_NOFOLLOW on each component where
 * the kernel has no openat2), so a symlink planted in the directory is
 * refused too (-ELOOP). Every fd is close-on-exec.
 *
 * Limits, each with its own error:
 *   -EFBIG   a file would be longer than max_file_bytes
 *   -EDQUOT  the owner's files would hold more than quota_bytes together
 *   -EMFILE  the owner would have more than max_files files
 * and -EINVAL / -ENAMETOOLONG for a bad name, -ENOENT for a missing file,
 * or the errno of the failed system call (-ENOSPC, -EIO, ...).
 *
 * It is also the engine's file backend (cow_filestore_ops): keys are
 * "<uid>/<name>", and it keeps up to max_open files open for page I/O.
 */
#ifndef COWD_SERVICE_FILESTORE_H
#define COWD_SERVICE_FILESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cowd/engine.h>

#define COW_FILESTORE_NAME_MAX 128
/* "<uid>/<name>": ten digits, a slash, the name and its NUL. */
#define COW_FILESTORE_KEY_MAX (10 + 1 + COW_FILESTORE_NAME_MAX + 1)
/* The data directory's name under the state directory when [files] dir is empty. */
#define COW_FILESTORE_DIR_NAME "files"

typedef struct cow_filestore cow_filestore;

struct cow_filestore_limits {
        uint64_t max_file_bytes; /* longest file */
        uint64_t quota_bytes;    /* one owner's files together */
        uint32_t max_files;      /* files one owner may have */
        uint32_t max_open;       /* fds kept open for the engine's page I/O */
        bool openat_only;        /* never try openat2(), as where the kernel lacks it
                                  * (lets tests cover that path) */
};

struct cow_filestore_counters {
        uint64_t size_rejections;  /* -EFBIG */
        uint64_t quota_rejections; /* -EDQUOT */
        uint64_t count_rejections; /* -EMFILE */
        uint64_t name_rejections;  /* bad names and refused links */
        uint64_t io_errors;        /* reads, writes and syncs that failed */
};

/*
 * Opens (creating it, mode 0700, if missing) the data directory dir. Returns
 * 0 or a negative errno with a sentence in err. limits is copied.
 */
int cow_filestore_open(const char *dir, const struct cow_filestore_limits *limits,
                       cow_filestore **ret, char *err, size_t errlen);

/* Closes every fd. Accepts NULL. */
void cow_filestore_free(cow_filestore *fs);

/* 0, -EINVAL (a character or form not allowed, or empty) or -ENAMETOOLONG. */
int cow_filestore_name_check(const char *name);

/* Writes the engine's key for (uid, name) into buf: 0 or -ENAMETOOLONG. */
int cow_filestore_key(uint32_t uid, const char *name, char *buf, size_t len);

/*
 * Writes data[0..len) as uid's file name at offset. Offset 0 replaces the
 * file whole and atomically (a temporary file, fsync, rename); a larger
 * offset must be the file's current size and appends a chunk, so that a
 * file larger than a frame arrives in pieces. Limits are checked first.
 */
int cow_filestore_put(cow_filestore *fs, uint32_t uid, const char *name, uint64_t offset,
                      const void *data, size_t len);

/*
 * A put in three steps, for a caller that does the disk work on another
 * thread (filewriter.h). _begin checks the limits and opens what the write
 * needs; _write writes and fsyncs, touching nothing but p, so it may run on
 * any thread; _end closes, counts a failure and returns r. From _begin to
 * _end the file is being put (cow_filestore_put_running()): a chunk being
 * appended is not seen by cow_filestore_stat() and so not by a get, and a
 * whole file replaces the old one atomically. One put runs at a time.
 */
struct cow_filestore_put {
        int dfd, fd;
        uint64_t offset;
        const void *data;
        size_t len;
        char name[COW_FILESTORE_NAME_MAX + 1];
        char tmp[COW_FILESTORE_NAME_MAX + 8]; /* the temporary file of a whole put */
};

int cow_filestore_put_begin(cow_filestore *fs, uint32_t uid, const char *name, uint64_t offset,
                            const void *data, size_t len, struct cow_filestore_put *p);
int cow_filestore_put_write(struct cow_filestore_put *p);
int cow_filestore_put_end(cow_filestore *fs, struct cow_filestore_put *p, int r);

/* Whether uid's file name is being put, between _put_begin and _put_end. */
bool cow_filestore_put_running(const cow_filestore *fs, uint32_t uid, const char *name);

/* The file's size and modification time (ns since the epoch). */
int cow_filestore_stat(cow_filestore *fs, uint32_t uid, const char *name, uint64_t *ret_size,
                       int64_t *ret_mtime_ns);

/* Reads up to len bytes at offset; *ret_n is the count, short at the end. */
int cow_filestore_get(cow_filestore *fs, uint32_t uid, const char *name, uint64_t offset,
                      void *buf, size_t len, size_t *ret_n);

/* Removes the file (closing any fd kept for it). */
int cow_filestore_remove(cow_filestore *fs, uint32_t uid, const char *name);

struct cow_file_entry {
        char name[COW_FILESTORE_NAME_MAX + 1];
        uint64_t size;
        int64_t mtime_ns;
};

/*
 * Lists uid's files whose names sort after `after` ("" from the start), in
 * name order, into out[0..cap). Returns how many were written; *ret_more
 * says whether more follow. Files whose names are not valid (put there by
 * hand) are skipped.
 */
int cow_filestore_list(cow_filestore *fs, uint32_t uid, const char *after,
                       struct cow_file_entry *out, size_t cap, bool *ret_more);

/* The owner's usage: bytes of its files together, and how many there are. */
int cow_filestore_usage(cow_filestore *fs, uint32_t uid, uint64_t *ret_bytes,
                        uint32_t *ret_files);

void cow_filestore_counters(const cow_filestore *fs, struct cow_filestore_counters *ret);

/*
 * Page I/O on a key "<uid>/<name>", for the engine's file backend:
 * read returns the count read (short at the end of the file) or a negative
 * errno; write writes only the part of buf that lies inside the file's
 * current size (a mapping never grows a file, as on Linux) and returns 0 or
 * a negative errno; sync fsyncs the file.
 */
ssize_t cow_filestore_key_read(cow_filestore *fs, const char *key, uint64_t offset, void *buf,
                               size_t len);
int cow_filestore_key_write(cow_filestore *fs, const char *key, uint64_t offset,
                            const void *buf, size_t len);
int cow_filestore_key_sync(cow_filestore *fs, const char *key);

/* The three above as the engine's file backend; ctx is the cow_filestore. */
extern const struct cow_file_ops cow_filestore_ops;

#endif /* COWD_SERVICE_FILESTORE_H */
