/* SPDX-License-Identifier: MIT */
/*
 * The handlers for files (put, get, list and remove), the target of a file
 * or device mmap, msync, the console log and device reads.
 *
 * Each uid has a namespace of its own in the file store. A request names a
 * file as "NAME", the caller's own, or "~UID/NAME", uid UID's; only UID
 * itself and uid 0 may use the second form for anything, as for processes.
 * Everyone else gets PERMISSION_DENIED before the store is asked, so the
 * refusal never tells whether the file exists.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <cowd/engine.h>

#include "dispatch-impl.h"
#include "filestore.h"
#include "filewriter.h"

/*
 * The reply for a file store error on uid's file name, by op. One table:
 * docs/PROTOCOL.md lists it. Returns err.
 */
static int reply_file_error(cow_dispatcher *d, cow_reply *reply, int err, const char *op,
                            const char *name)
{
        const struct cow_service_limits *l = d->limits;
        Cowd__V1__Code code;
        const char *why;

        switch (err) {
        case -EINVAL:
                code = COWD__V1__CODE__INVALID_ARGUMENT;
                why = "not a file name (letters, digits, '.', '_' and '-', not starting "
                      "with '.'; one component, no '/'), or not a regular file";
                break;
        case -ENAMETOOLONG:
                code = COWD__V1__CODE__INVALID_ARGUMENT;
                why = "name longer than 128 bytes";
                break;
        case -ELOOP:
                code = COWD__V1__CODE__PERMISSION_DENIED;
                why = "is a symbolic link, which the data directory never follows";
                d->counters->permission_denials++;
                break;
        case -ENOENT:
                code = COWD__V1__CODE__NOT_FOUND;
                why = "no such file";
                break;
        case -ENOTDIR:
                code = COWD__V1__CODE__FAILED_PRECONDITION;
                why = "the data directory holds something other than a directory where your "
                      "files belong; the operator has to move it away";
                break;
        case -ESPIPE:
                code = COWD__V1__CODE__FAILED_PRECONDITION;
                why = "a chunk's offset must be the file's current size (offset 0 replaces it)";
                break;
        case -EFBIG:
                cow_reply_set_status(reply, COWD__V1__CODE__RESOURCE_EXHAUSTED,
                                     "%s %s: longer than the limit of %llu bytes "
                                     "(max_file_size)", op, name,
                                     (unsigned long long)l->max_file_bytes);
                return err;
        case -EDQUOT:
                cow_reply_set_status(reply, COWD__V1__CODE__RESOURCE_EXHAUSTED,
                                     "%s %s: your files would hold more than your quota of "
                                     "%llu bytes", op, name,
                                     (unsigned long long)l->file_quota_bytes);
                return err;
        case -EMFILE:
                cow_reply_set_status(reply, COWD__V1__CODE__RESOURCE_EXHAUSTED,
                                     "%s %s: you already have %u files (max_files_per_user)",
                                     op, name, l->max_files_per_user);
                return err;
        case -ENOSPC:
                code = COWD__V1__CODE__RESOURCE_EXHAUSTED;
                why = "no space left on the data directory's device (the old contents are kept)";
                break;
        case -EBUSY:
                code = COWD__V1__CODE__FAILED_PRECONDITION;
                why = "the file is mapped, or has pages not yet written back; unmap it first";
                break;
        case -EINPROGRESS:
                code = COWD__V1__CODE__FAILED_PRECONDITION;
                why = "a put of this file is still being written; ask again once it is answered";
                break;
        case -EIO:
                code = COWD__V1__CODE__UNAVAILABLE;
                why = "the data directory's device failed to read or write";
                break;
        default:
                code = COWD__V1__CODE__INTERNAL;
                why = strerror(-err);
                break;
        }
        cow_reply_set_status(reply, code, "%s %s: %s", op, name, why);
        return err;
}

/*
 * Reads "~UID" at the start of s: 0 with *owner and *rest (the byte after
 * the digits) set, or -EINVAL. UID is decimal, without sign or leading zero.
 */
static int parse_owner(const char *s, uint32_t *owner, const char **rest)
{
        uint64_t v = 0;
        const char *p = s + 1;

        if (s[0] != '~' || p[0] < '0' || p[0] > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9'))
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                v = v * 10 + (uint64_t)(*p - '0');
                if (v > UINT32_MAX)
                        return -EINVAL;
        }
        *owner = (uint32_t)v;
        *rest = p;
        return 0;
}

/* 0 when uid may use owner's files (its own, or uid 0); else PERMISSION_DENIED, counted. */
static int owner_authorize(cow_dispatcher *d, cow_reply *reply, uint32_t uid, uint32_t owner,
                           const char *op, const char *given)
{
        if (owner == uid || uid == 0)
                return 0;
        d->counters->permission_denials++;
        cow_reply_set_status(reply, COWD__V1__CODE__PERMISSION_DENIED,
                             "%s %.140s: the files of uid %u are not yours (you are uid %u)", op,
                             given, owner, uid);
        return -EPERM;
}

/*
 * The owner and the bare name of a file as a request gives it ("NAME" or
 * "~UID/NAME", above), with the caller's right to it checked. Returns 0, or
 * a negative errno with the reply set.
 */
static int file_resolve(cow_dispatcher *d, cow_reply *reply, uint32_t uid, const char *given,
                        const char *op, uint32_t *owner, const char **name)
{
        const char *rest;

        *owner = uid;
        *name = given;
        if (given[0] != '~')
                return 0;
        if (parse_owner(given, owner, &rest) < 0 || rest[0] != '/') {
                cow_reply_set_status(reply, COWD__V1__CODE__INVALID_ARGUMENT,
                                     "%s %.140s: another uid's file is named ~UID/NAME", op,
                                     given);
                return -EINVAL;
        }
        *name = rest + 1;
        return owner_authorize(d, reply, uid, *owner, op, given);
}

/* FAILED_PRECONDITION when the daemon has no data directory; 0 when it has. */
static int files_available(cow_dispatcher *d, cow_reply *reply, const char *op)
{
        if (d->files)
                return 0;
        cow_reply_set_status(reply, COWD__V1__CODE__FAILED_PRECONDITION,
                             "%s: this daemon keeps no files", op);
        return -ENOENT;
}

/*
 * Whether uid's file name may be replaced or removed: not while the engine
 * holds it (mapped, or pages of it in the page cache). Pages cached after
 * their last mapping went away hold it only until written back, so the
 * engine is first asked to write back and let go of unmapped files. That
 * writes back the dirty pages of every file, which is only early, never
 * wrong: a shared page may reach its file at any time. Returns 0 or -EBUSY.
 */
static int file_check_unmapped(cow_dispatcher *d, uint32_t uid, const char *name)
{
        char key[COW_FILESTORE_KEY_MAX];

        if (cow_filestore_key(uid, name, key, sizeof(key)) < 0)
                return 0; /* not a name the engine can hold: the store refuses it */
        if (!cow_engine_file_in_use(d->engine, key))
                return 0;
        (void)cow_engine_sync_files(d->engine, false);
        return cow_engine_file_in_use(d->engine, key) ? -EBUSY : 0;
}

/*
 * A put whose disk work the file writer does. It lives in its reply's
 * memory and points into the request, which the reply's consumer keeps until
 * the reply is ready (dispatch.h).
 */
struct put_job {
        struct cow_filewriter_job job;
        cow_dispatcher *d;
        cow_reply *reply;
        uint32_t owner;
        const char *name; /* the bare name */
        const Cowd__V1__FilePutRequest *in;
        struct cow_filestore_put put;
};

/* The reply of a put that has ended with r. */
static void put_reply(cow_dispatcher *d, cow_reply *reply, int r, const char *given,
                      uint64_t size)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        Cowd__V1__FilePutResult *out;

        if (r == -ECANCELED) {
                cow_reply_set_status(reply, COWD__V1__CODE__UNAVAILABLE,
                                     "file_put %s: the daemon stopped before writing it; the "
                                     "file is as it was", given);
                return;
        }
        if (r < 0) {
                reply_file_error(d, reply, r, "file_put", given);
                return;
        }
        out = RESULT_NEW(reply, Cowd__V1__FilePutResult, cowd__v1__file_put_result__init);
        if (!out) {
                cow_reply_fail_oom(reply);
                return;
        }
        out->size = size;
        resp->result_case = COWD__V1__RESPONSE__RESULT_FILE_PUT;
        resp->file_put = out;
}

static int put_job_start(struct cow_filewriter_job *job)
{
        struct put_job *p = (struct put_job *)job;
        int r = file_check_unmapped(p->d, p->owner, p->name);

        if (r == 0)
                r = cow_filestore_put_begin(p->d->files, p->owner, p->name, p->in->offset,
                                            p->in->data.data, p->in->data.len, &p->put);
        return r;
}

static int put_job_write(struct cow_filewriter_job *job)
{
        return cow_filestore_put_write(&((struct put_job *)job)->put);
}

static void put_job_done(struct cow_filewriter_job *job, int r)
{
        struct put_job *p = (struct put_job *)job;

        /* Only a put whose start() succeeded has something open (a cancelled one never started). */
        if (p->put.dfd >= 0)
                r = cow_filestore_put_end(p->d->files, &p->put, r);
        put_reply(p->d, p->reply, r, p->in->name, p->in->offset + p->in->data.len);
        cow_reply_ready(p->reply);
}

/* Hands the put to the file writer; the reply is deferred until it is written. */
static int put_submit(cow_dispatcher *d, cow_reply *reply, uint32_t owner, const char *name,
                      const Cowd__V1__FilePutRequest *in)
{
        struct put_job *p = cow_reply_alloc(reply, sizeof(*p));

        if (!p) {
                cow_reply_fail_oom(reply);
                return -ENOMEM;
        }
        *p = (struct put_job){
                .job = { .start = put_job_start, .write = put_job_write, .done = put_job_done },
                .d = d,
                .reply = reply,
                .owner = owner,
                .name = name,
                .in = in,
                .put = { .dfd = -1, .fd = -1 },
        };
        cow_reply_defer(reply);
        cow_filewriter_submit(d->writer, &p->job);
        return 0;
}

/*
 * A put's checks run when its turn comes, on the event loop; its write and
 * fsync on the file writer's thread when the dispatcher has one (a large
 * chunk takes a while to reach the disk, and nobody else waits for it).
 */
int dispatch_file_put(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                      const Cowd__V1__FilePutRequest *in)
{
        const char *name;
        uint32_t owner;
        int r;

        r = files_available(d, reply, "file_put");
        if (r == 0)
                r = file_resolve(d, reply, uid, in->name, "file_put", &owner, &name);
        if (r < 0)
                return r;
        if (d->writer)
                return put_submit(d, reply, owner, name, in);
        r = file_check_unmapped(d, owner, name);
        if (r == 0)
                r = cow_filestore_put(d->files, owner, name, in->offset, in->data.data,
                                      in->data.len);
        put_reply(d, reply, r, in->name, in->offset + in->data.len);
        return r;
}

int dispatch_file_get(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                      const Cowd__V1__FileGetRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        Cowd__V1__FileGetResult *out;
        uint8_t *data = NULL;
        const char *name;
        uint32_t owner;
        uint64_t size;
        size_t n = 0;
        int r;

        r = files_available(d, reply, "file_get");
        if (r == 0)
                r = file_resolve(d, reply, uid, in->name, "file_get", &owner, &name);
        if (r < 0)
                return r;
        if (in->length > d->limits->max_read_bytes) {
                d->counters->oversize_requests++;
                cow_reply_set_status(reply, COWD__V1__CODE__RESOURCE_EXHAUSTED,
                                     "file_get: length %llu exceeds the limit of %llu bytes",
                                     (unsigned long long)in->length,
                                     (unsigned long long)d->limits->max_read_bytes);
                return -E2BIG;
        }
        r = cow_filestore_stat(d->files, owner, name, &size, NULL);
        if (r < 0)
                return reply_file_error(d, reply, r, "file_get", in->name);
        out = RESULT_NEW(reply, Cowd__V1__FileGetResult, cowd__v1__file_get_result__init);
        /* Never more than what is there: the length is the client's to choose. */
        uint64_t want = in->offset >= size ? 0 : size - in->offset;
        if (want > in->length)
                want = in->length;
        if (want)
                data = cow_reply_alloc(reply, want);
        if (!out || (want && !data)) {
                cow_reply_fail_oom(reply);
                return -ENOMEM;
        }
        if (want) {
                r = cow_filestore_get(d->files, owner, name, in->offset, data, want, &n);
                if (r < 0)
                        return reply_file_error(d, reply, r, "file_get", in->name);
        }
        out->data.data = data;
        out->data.len = n;
        out->size = size;
        resp->result_case = COWD__V1__RESPONSE__RESULT_FILE_GET;
        resp->file_get = out;
        return 0;
}

int dispatch_file_list(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                       const Cowd__V1__FileListRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        uint32_t cap = d->limits->max_list_files;
        Cowd__V1__FileListResult *out;
        Cowd__V1__FileInfo *infos, **list;
        struct cow_file_entry *entries;
        uint32_t owner = uid, nfiles;
        const char *rest;
        uint64_t used;
        bool more = false;
        int r;

        r = files_available(d, reply, "file_list");
        if (r < 0)
                return r;
        if (in->owner[0] && (parse_owner(in->owner, &owner, &rest) < 0 || rest[0]))
                return dispatch_reply_invalid(reply, "file_list", "owner is \"\" or ~UID");
        r = owner_authorize(d, reply, uid, owner, "file_list", in->owner);
        if (r < 0)
                return r;
        if (in->start_after[0] && cow_filestore_name_check(in->start_after) < 0)
                return dispatch_reply_invalid(reply, "file_list", "start_after is not a file name");
        out = RESULT_NEW(reply, Cowd__V1__FileListResult, cowd__v1__file_list_result__init);
        entries = cow_reply_alloc(reply, cap * sizeof(*entries));
        infos = cow_reply_alloc(reply, cap * sizeof(*infos));
        list = cow_reply_alloc(reply, cap * sizeof(*list));
        if (!out || !entries || !infos || !list) {
                cow_reply_fail_oom(reply);
                return -ENOMEM;
        }
        r = cow_filestore_list(d->files, owner, in->start_after, entries, cap, &more);
        if (r >= 0)
                r = cow_filestore_usage(d->files, owner, &used, &nfiles) < 0 ? -EIO : r;
        if (r < 0)
                return reply_file_error(d, reply, r, "file_list", "");
        for (int i = 0; i < r; i++) {
                cowd__v1__file_info__init(&infos[i]);
                infos[i].name = entries[i].name;
                infos[i].size = entries[i].size;
                infos[i].mtime_ns = entries[i].mtime_ns;
                char key[COW_FILESTORE_KEY_MAX];
                infos[i].mapped = cow_filestore_key(owner, entries[i].name, key, sizeof(key)) == 0 &&
                                  cow_engine_file_in_use(d->engine, key);
                list[i] = &infos[i];
        }
        out->n_files = (size_t)r;
        out->files = list;
        out->next = more && r > 0 ? entries[r - 1].name : (char *)"";
        out->used_bytes = used;
        out->quota_bytes = d->limits->file_quota_bytes;
        out->max_files = d->limits->max_files_per_user;
        resp->result_case = COWD__V1__RESPONSE__RESULT_FILE_LIST;
        resp->file_list = out;
        return 0;
}

int dispatch_file_remove(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                         const Cowd__V1__FileRemoveRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        Cowd__V1__FileRemoveResult *out;
        const char *name;
        uint32_t owner;
        int r;

        r = files_available(d, reply, "file_remove");
        if (r == 0)
                r = file_resolve(d, reply, uid, in->name, "file_remove", &owner, &name);
        if (r < 0)
                return r;
        out = RESULT_NEW(reply, Cowd__V1__FileRemoveResult, cowd__v1__file_remove_result__init);
        if (!out) {
                cow_reply_fail_oom(reply);
                return -ENOMEM;
        }
        r = file_check_unmapped(d, owner, name);
        if (r == 0)
                r = cow_filestore_remove(d->files, owner, name);
        if (r < 0)
                return reply_file_error(d, reply, r, "file_remove", in->name);
        resp->result_case = COWD__V1__RESPONSE__RESULT_FILE_REMOVE;
        resp->file_remove = out;
        return 0;
}

int dispatch_mmap_target(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                         const Cowd__V1__MmapRequest *in, struct cow_mmap_args *args,
                         char *key, size_t keylen)
{
        const char *name;
        uint32_t owner;
        uint64_t size;
        int r;

        switch (in->kind) {
        case COWD__V1__MAP_KIND__FILE:
                r = files_available(d, reply, "mmap");
                /* The caller's files, whoever owns the process (uid 0 may act on any). */
                if (r == 0)
                        r = file_resolve(d, reply, uid, in->path, "mmap", &owner, &name);
                if (r < 0)
                        return r;
                /* The engine would cache pages of the file that the put replaces. */
                r = cow_filestore_put_running(d->files, owner, name)
                            ? -EINPROGRESS
                            : cow_filestore_stat(d->files, owner, name, &size, NULL);
                if (r < 0)
                        return reply_file_error(d, reply, r, "mmap", in->path);
                r = cow_filestore_key(owner, name, key, keylen);
                if (r < 0)
                        return reply_file_error(d, reply, r, "mmap", in->path);
                args->kind = COW_MAP_FILE;
                args->file_key = key;
                args->file_size = size;
                args->offset = in->offset;
                return 0;
        case COWD__V1__MAP_KIND__DEVICE:
                args->kind = COW_MAP_DEVICE;
                if (cow_device_parse(in->path, &args->device) < 0) {
                        cow_reply_set_status(reply, COWD__V1__CODE__NOT_FOUND,
                                             "mmap: no device '%.64s' (fb0 or console)",
                                             in->path);
                        return -ENODEV;
                }
                args->offset = in->offset;
                return 0;
        default:
                args->kind = COW_MAP_ANONYMOUS;
                return 0;
        }
}

int dispatch_msync(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                   const Cowd__V1__MsyncRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        Cowd__V1__MsyncResult *out;
        int r;

        r = dispatch_proc_authorize(d, reply, uid, in->pid, "msync");
        if (r < 0)
                return r;
        out = RESULT_NEW(reply, Cowd__V1__MsyncResult, cowd__v1__msync_result__init);
        if (!out) {
                cow_reply_fail_oom(reply);
                return -ENOMEM;
        }
        /* With sync, the reply goes out only once the files are on disk. */
        r = cow_engine_msync(d->engine, in->pid, in->addr, in->length, in->sync);
        if (r < 0)
                return dispatch_reply_engine_error(d, reply, r, "msync", in->pid, NULL);
        resp->result_case = COWD__V1__RESPONSE__RESULT_MSYNC;
        resp->msync = out;
        return 0;
}

/*
 * The console log is the machine's one console, as /dev/console is: every
 * user may map it and read it, so it carries nothing private by design.
 */
int dispatch_console_read(cow_dispatcher *d, cow_reply *reply,
                          const Cowd__V1__ConsoleReadRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        Cowd__V1__ConsoleReadResult *out;
        uint64_t end = cow_engine_console_end(d->engine), start = in->offset;
        uint64_t want = d->limits->max_read_bytes;
        uint8_t *data = NULL;
        int n = 0;

        if (in->max_bytes && in->max_bytes < want)
                want = in->max_bytes;
        /* Never more than the log holds. */
        if (in->offset >= end)
                want = 0;
        else if (end - in->offset < want)
                want = end - in->offset;
        out = RESULT_NEW(reply, Cowd__V1__ConsoleReadResult, cowd__v1__console_read_result__init);
        if (want)
                data = cow_reply_alloc(reply, want);
        if (!out || (want && !data)) {
                cow_reply_fail_oom(reply);
                return -ENOMEM;
        }
        if (want) {
                n = cow_engine_console_read(d->engine, in->offset, data, want, &start);
                if (n < 0)
                        return dispatch_reply_engine_error(d, reply, n, "console_read", 0, NULL);
        }
        out->data.data = data;
        out->data.len = (size_t)n;
        out->start = n > 0 ? start : (in->offset < end ? start : end);
        out->next_offset = n > 0 ? start + (uint64_t)n : (in->offset > end ? end : in->offset);
        resp->result_case = COWD__V1__RESPONSE__RESULT_CONSOLE_READ;
        resp->console_read = out;
        return 0;
}

/* Device memory is shared by every user of the machine, like the console. */
int dispatch_device_read(cow_dispatcher *d, cow_reply *reply,
                         const Cowd__V1__DeviceReadRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        Cowd__V1__DeviceReadResult *out;
        enum cow_device dev;
        uint8_t *data = NULL;
        uint64_t size;
        int r;

        if (cow_device_parse(in->device, &dev) < 0) {
                cow_reply_set_status(reply, COWD__V1__CODE__NOT_FOUND,
                                     "device_read: no device '%.64s' (fb0 or console)",
                                     in->device);
                return -ENODEV;
        }
        if (in->length > d->limits->max_read_bytes) {
                d->counters->oversize_requests++;
                cow_reply_set_status(reply, COWD__V1__CODE__RESOURCE_EXHAUSTED,
                                     "device_read: length %llu exceeds the limit of %llu bytes; "
                                     "read in pieces",
                                     (unsigned long long)in->length,
                                     (unsigned long long)d->limits->max_read_bytes);
                return -E2BIG;
        }
        size = cow_engine_device_bytes(d->engine, dev);
        if (in->offset > size || in->length > size - in->offset) {
                cow_reply_set_status(reply, COWD__V1__CODE__OUT_OF_RANGE,
                                     "device_read: %llu bytes at %llu are beyond %s's %llu bytes",
                                     (unsigned long long)in->length,
                                     (unsigned long long)in->offset, in->device,
                                     (unsigned long long)size);
                return -EINVAL;
        }
        out = RESULT_NEW(reply, Cowd__V1__DeviceReadResult, cowd__v1__device_read_result__init);
        if (in->length)
                data = cow_reply_alloc(reply, in->length);
        if (!out || (in->length && !data)) {
                cow_reply_fail_oom(reply);
                return -ENOMEM;
        }
        if (in->length) {
                r = cow_engine_device_read(d->engine, dev, in->offset, data, in->length);
                if (r < 0)
                        return dispatch_reply_engine_error(d, reply, r, "device_read", 0, NULL);
        }
        out->data.data = data;
        out->data.len = in->length;
        if (dev == COW_DEV_FB0) {
                out->width = d->limits->fb_width;
                out->height = d->limits->fb_height;
        }
        out->size = size;
        resp->result_case = COWD__V1__RESPONSE__RESULT_DEVICE_READ;
        resp->device_read = out;
        return 0;
}
