/* SPDX-License-Identifier: MIT */
/*
 * The handlers for files: put, get, list and remove, in the caller's own
 * namespace of the file store. A request never names a uid, so one user
 * cannot reach another's files: they are simply not there (NOT_FOUND).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dispatch-impl.h"
#include "filestore.h"

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
                why = "the file is mapped; unmap it first";
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

/* FAILED_PRECONDITION when the daemon has no data directory; 0 when it has. */
static int files_available(cow_dispatcher *d, cow_reply *reply, const char *op)
{
        if (d->files)
                return 0;
        cow_reply_set_status(reply, COWD__V1__CODE__FAILED_PRECONDITION,
                             "%s: this daemon keeps no files", op);
        return -ENOENT;
}

int dispatch_file_put(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                      const Cowd__V1__FilePutRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        Cowd__V1__FilePutResult *out;
        int r;

        r = files_available(d, reply, "file_put");
        if (r < 0)
                return r;
        out = RESULT_NEW(reply, Cowd__V1__FilePutResult, cowd__v1__file_put_result__init);
        if (!out) {
                cow_reply_fail_oom(reply);
                return -ENOMEM;
        }
        r = cow_filestore_put(d->files, uid, in->name, in->offset, in->data.data, in->data.len);
        if (r < 0)
                return reply_file_error(d, reply, r, "file_put", in->name);
        out->size = in->offset + in->data.len;
        resp->result_case = COWD__V1__RESPONSE__RESULT_FILE_PUT;
        resp->file_put = out;
        return 0;
}

int dispatch_file_get(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                      const Cowd__V1__FileGetRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        Cowd__V1__FileGetResult *out;
        uint8_t *data = NULL;
        uint64_t size;
        size_t n = 0;
        int r;

        r = files_available(d, reply, "file_get");
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
        r = cow_filestore_stat(d->files, uid, in->name, &size, NULL);
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
                r = cow_filestore_get(d->files, uid, in->name, in->offset, data, want, &n);
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
        uint64_t used;
        uint32_t nfiles;
        bool more = false;
        int r;

        r = files_available(d, reply, "file_list");
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
        r = cow_filestore_list(d->files, uid, in->start_after, entries, cap, &more);
        if (r >= 0)
                r = cow_filestore_usage(d->files, uid, &used, &nfiles) < 0 ? -EIO : r;
        if (r < 0)
                return reply_file_error(d, reply, r, "file_list", "");
        for (int i = 0; i < r; i++) {
                cowd__v1__file_info__init(&infos[i]);
                infos[i].name = entries[i].name;
                infos[i].size = entries[i].size;
                infos[i].mtime_ns = entries[i].mtime_ns;
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
        int r;

        r = files_available(d, reply, "file_remove");
        if (r < 0)
                return r;
        out = RESULT_NEW(reply, Cowd__V1__FileRemoveResult, cowd__v1__file_remove_result__init);
        if (!out) {
                cow_reply_fail_oom(reply);
                return -ENOMEM;
        }
        r = cow_filestore_remove(d->files, uid, in->name);
        if (r < 0)
                return reply_file_error(d, reply, r, "file_remove", in->name);
        resp->result_case = COWD__V1__RESPONSE__RESULT_FILE_REMOVE;
        resp->file_remove = out;
        return 0;
}
