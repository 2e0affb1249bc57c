/* SPDX-License-Identifier: MIT */
#include "dispatch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "checkpointer.h"
#include "dispatch-impl.h"
#include "filestore.h"

#ifndef COWD_VERSION
#define COWD_VERSION "unknown"
#endif


int cow_dispatcher_new(cow_engine *engine, const struct cow_service_limits *limits,
                       struct cow_counters *counters, cow_dispatcher **ret)
{
        cow_dispatcher *d = calloc(1, sizeof(*d));

        if (!d)
                return -ENOMEM;
        d->engine = engine;
        d->limits = limits;
        d->counters = counters;
        clock_gettime(CLOCK_MONOTONIC, &d->started);
        *ret = d;
        return 0;
}

void cow_dispatcher_free(cow_dispatcher *d)
{
        if (!d)
                return;
        free(d->scratch);
        free(d);
}

void cow_dispatcher_set_checkpointer(cow_dispatcher *d, struct cow_checkpointer *c)
{
        d->checkpointer = c;
}

void cow_dispatcher_set_files(cow_dispatcher *d, struct cow_filestore *fs,
                              struct cow_filewriter *w)
{
        d->files = fs;
        d->writer = w;
}

size_t cow_dispatcher_oom_victims(cow_dispatcher *d, cow_pid *out, size_t cap)
{
        int n = cow_engine_oom_victims(d->engine, out, cap);
        return n > 0 ? (size_t)n : 0;
}

/* ---- errors ------------------------------------------------------------------ */

/*
 * The one table from engine errors to status codes (docs/PROTOCOL.md lists
 * it). A fault is FAILED_PRECONDITION: the request was well formed, but the
 * process's memory is not in a state that allows the access; the Fault says
 * which address and why. A range that is not wholly mapped (mprotect,
 * madvise) is the same kind of refusal, without a fault: the client has to
 * map the range before retrying.
 */
static Cowd__V1__Code code_for_error(int err)
{
        switch (err) {
        case -ESRCH:
                return COWD__V1__CODE__NOT_FOUND;
        case -EINVAL:
        case -EOVERFLOW:
        case -ENAMETOOLONG:
                return COWD__V1__CODE__INVALID_ARGUMENT;
        case -EEXIST:
                return COWD__V1__CODE__ALREADY_EXISTS;
        case -EFAULT:
        case -ENXIO:
                return COWD__V1__CODE__FAILED_PRECONDITION;
        case -EOPNOTSUPP:
                return COWD__V1__CODE__UNIMPLEMENTED;
        case -EIO:
                /*
                 * The swap file or a mapped file failed to read or write a
                 * page. The engine left
                 * the page where it was, its data intact, so nothing is broken
                 * (not INTERNAL) and the client did nothing wrong: the service
                 * cannot do this now, and a retry may succeed once the
                 * operator has looked at the disk. That is UNAVAILABLE.
                 */
                return COWD__V1__CODE__UNAVAILABLE;
        case -ENOMEM:
        case -ENOSPC:
        case -EDQUOT:
        case -EMFILE:
        case -EAGAIN:
        case -EMLINK:
        case -ENOBUFS:
                return COWD__V1__CODE__RESOURCE_EXHAUSTED;
        default:
                return COWD__V1__CODE__INTERNAL;
        }
}

static Cowd__V1__FaultKind fault_kind_to_wire(enum cow_fault_kind kind)
{
        switch (kind) {
        case COW_SEGV_MAPERR:
                return COWD__V1__FAULT_KIND__SEGV_MAPERR;
        case COW_SEGV_ACCERR:
                return COWD__V1__FAULT_KIND__SEGV_ACCERR;
        case COW_BUS_ADRERR:
                return COWD__V1__FAULT_KIND__BUS_ADRERR;
        case COW_FAULT_NONE:
                break;
        }
        return COWD__V1__FAULT_KIND__FAULT_NONE;
}

/*
 * The sentence for an engine error. A memory access (read, write, trace)
 * allocates no address space, so its -ENOSPC and -EIO come from the swap
 * file or a mapped file's page I/O; those of a write-back (msync, munmap,
 * exit, a replacing mmap) come from a mapped file. Each is said as such.
 */
static const char *engine_error_text(const cow_dispatcher *d, int err, bool access,
                                     bool writeback)
{
        /* The engine's quotas: which one refused, by the setting that sets it. */
        if (err == -EDQUOT && !writeback)
                return cow_engine_last_quota(d->engine) == COW_QUOTA_SWAP_SLOTS ?
                       "its user is at its quota of swap slots (max_swap_slots_per_user) and "
                       "no other page may go to swap" :
                       "its user is at its quota of frames (max_frames_per_user)";
        if (access && err == -ENOSPC)
                return "memory is full and the swap file has no space left on its device";
        if (access && err == -EIO)
                return "the swap file or a mapped file failed to read or write a page "
                       "(its data is intact)";
        if (writeback && (err == -ENOSPC || err == -EDQUOT))
                return "no space left on the device of a mapped file; its dirty pages stay in "
                       "memory, nothing was lost";
        if (writeback && err == -EIO)
                return "a mapped file failed to write back; its dirty pages stay in memory, "
                       "nothing was lost";
        if (err == -EMFILE)
                return "too many distinct files mapped at once (max_mapped_files)";
        return cow_engine_strerror(err);
}

/* The contract is in dispatch-impl.h; handlers "return dispatch_reply_engine_error(...)". */
int dispatch_reply_engine_error(cow_dispatcher *d, cow_reply *reply, int err, const char *op,
                                cow_pid pid, const struct cow_fault *fault)
{
        Cowd__V1__Code code = code_for_error(err);
        bool access = strcmp(op, "read") == 0 || strcmp(op, "write") == 0;
        bool writeback = strcmp(op, "msync") == 0 || strcmp(op, "munmap") == 0 ||
                         strcmp(op, "exit") == 0 || strcmp(op, "mmap") == 0;

        if (err == -EAGAIN)
                d->counters->proc_limit_rejections++;
        else if (code == COWD__V1__CODE__RESOURCE_EXHAUSTED)
                d->counters->engine_limit_rejections++;

        if (err == -EFAULT && fault) {
                cow_reply_set_status(reply, code, "%s pid %u: %s at 0x%llx", op, pid,
                                     engine_error_text(d, err, access, writeback),
                                     (unsigned long long)fault->addr);
                cow_reply_set_fault(reply, fault_kind_to_wire(fault->kind), fault->addr);
        } else if (pid) {
                cow_reply_set_status(reply, code, "%s pid %u: %s", op, pid,
                                     engine_error_text(d, err, access, writeback));
        } else {
                cow_reply_set_status(reply, code, "%s: %s", op, cow_engine_strerror(err));
        }
        return err;
}

int dispatch_proc_authorize(cow_dispatcher *d, cow_reply *reply, uint32_t uid, cow_pid pid,
                            const char *op)
{
        struct cow_proc_info info;
        int r;

        r = cow_engine_proc_info(d->engine, pid, &info);
        if (r < 0)
                return dispatch_reply_engine_error(d, reply, r, op, pid, NULL);
        if (uid != 0 && info.owner != uid) {
                d->counters->permission_denials++;
                cow_reply_set_status(reply, COWD__V1__CODE__PERMISSION_DENIED,
                                     "%s pid %u: process belongs to uid %u, not %u", op, pid,
                                     info.owner, uid);
                return -EPERM;
        }
        return 0;
}

int dispatch_reply_invalid(cow_reply *reply, const char *op, const char *why)
{
        cow_reply_set_status(reply, COWD__V1__CODE__INVALID_ARGUMENT, "%s: %s", op, why);
        return -EINVAL;
}


/*
 * Whether s is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF) without ASCII control characters.
 * Names travel back to every client in ListProcs, and proto3 decoders reject
 * a string that is not valid UTF-8: one bad name would otherwise break
 * listing for everyone.
 */
static bool name_is_valid(const char *s)
{
        const unsigned char *p = (const unsigned char *)s;

        while (*p) {
                unsigned char c = *p++;
                unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
                size_t more;

                if (c < 0x80) {
                        if (c < 0x20 || c == 0x7f)
                                return false;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        more = 1;
                else if (c >= 0xe0 && c <= 0xef)
                        more = 2;
                else if (c >= 0xf0 && c <= 0xf4)
                        more = 3;
                else
                        return false;
                if (c == 0xe0)
                        lo = 0xa0; /* overlong below U+0800 */
                else if (c == 0xed)
                        hi = 0x9f; /* surrogates U+D800..U+DFFF */
                else if (c == 0xf0)
                        lo = 0x90; /* overlong below U+10000 */
                else if (c == 0xf4)
                        hi = 0x8f; /* above U+10FFFF */
                if (*p < lo || *p > hi)
                        return false;
                for (size_t i = 0; i < more; i++, p++)
                        if ((*p & 0xc0) != 0x80)
                                return false;
        }
        return true;
}

/* ---- handlers ------------------------------------------------------------------ */

/*
 * Every handle_<op>() follows one contract: check the payload, then the
 * caller's right to the process, then ask the engine. It always leaves a
 * complete reply behind (the result when OK, a status saying why otherwise)
 * and returns 0 or the negative errno of the failure, which only tests and
 * fuzzers look at. Results are allocated before the engine is called, so
 * that running out of memory never leaves an operation done but unreported.
 */

static int handle_hello(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                        const Cowd__V1__HelloRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        Cowd__V1__HelloResult *out;

        if (in->protocol_version == COWD__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_UNSPECIFIED)
                return dispatch_reply_invalid(reply, "hello", "protocol_version is required");

        /*
         * A newer client is answered all the same: it learns the daemon's version
         * from the result and limits itself to what that version knows.
         */
        out = RESULT_NEW(reply, Cowd__V1__HelloResult, cowd__v1__hello_result__init);
        if (!out)
                goto oom;
        out->protocol_version = COWD__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
        out->server_version = (char *)COWD_VERSION;
        out->page_size = cow_engine_page_size(d->engine);
        out->max_frame_bytes = d->limits->max_frame_bytes;
        out->uid = uid;
        out->max_read_bytes = d->limits->max_read_bytes;
        out->max_page_map_pages = d->limits->max_page_map_pages;
        resp->result_case = COWD__V1__RESPONSE__RESULT_HELLO;
        resp->hello = out;
        return 0;
oom:
        cow_reply_fail_oom(reply);
        return -ENOMEM;
}

/*
 * Checks that owner may have one more process: uid 0 always may; others up
 * to max_processes_per_user, so that one user cannot take every slot of a
 * shared daemon. Counting walks the process table, which max_processes
 * bounds (a few thousand entries: microseconds next to a fork). Returns 0,
 * or -EDQUOT with the reply set.
 */
static int proc_quota_check(cow_dispatcher *d, cow_reply *reply, uint32_t owner, const char *op)
{
        struct cow_proc_info info;
        uint32_t owned = 0;

        if (owner == 0)
                return 0;
        for (cow_pid p = cow_engine_proc_next(d->engine, 0); p;
             p = cow_engine_proc_next(d->engine, p))
                if (cow_engine_proc_info(d->engine, p, &info) == 0 && info.owner == owner)
                        owned++;
        if (owned < d->limits->max_procs_per_user)
                return 0;
        d->counters->quota_rejections++;
        cow_reply_set_status(reply, COWD__V1__CODE__RESOURCE_EXHAUSTED,
                             "%s: uid %u already has %u processes (max_processes_per_user)", op,
                             owner, owned);
        return -EDQUOT;
}

/* The engine's policy for a wire policy that handle_spawn() has checked. */
static enum cow_policy policy_from_wire(const cow_dispatcher *d, Cowd__V1__Policy p)
{
        switch (p) {
        case COWD__V1__POLICY__POLICY_FIFO:
                return COW_POLICY_FIFO;
        case COWD__V1__POLICY__POLICY_LRU:
                return COW_POLICY_LRU;
        case COWD__V1__POLICY__POLICY_CLOCK:
                return COW_POLICY_CLOCK;
        default:
                return d->limits->default_policy;
        }
}

static int handle_spawn(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                        const Cowd__V1__SpawnRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        Cowd__V1__SpawnResult *out;
        cow_pid pid;
        int r;

        if (strlen(in->name) > COW_NAME_MAX) {
                d->counters->oversize_requests++;
                cow_reply_set_status(reply, COWD__V1__CODE__INVALID_ARGUMENT,
                                     "spawn: name longer than %d bytes", COW_NAME_MAX);
                return -EINVAL;
        }
        if (!name_is_valid(in->name))
                return dispatch_reply_invalid(reply, "spawn", "name must be printable UTF-8");

        r = proc_quota_check(d, reply, uid, "spawn");
        if (r < 0)
                return r;
        if (in->tlb_ways && !in->tlb_entries)
                return dispatch_reply_invalid(reply, "spawn", "tlb_ways needs tlb_entries");
        if ((unsigned)in->policy > COWD__V1__POLICY__POLICY_LRU)
                return dispatch_reply_invalid(reply, "spawn", "unknown policy");

        out = RESULT_NEW(reply, Cowd__V1__SpawnResult, cowd__v1__spawn_result__init);
        if (!out)
                goto oom;
        if (in->max_resident_pages || in->tlb_entries || in->policy) {
                /* A shape of its own; the engine checks the TLB shape. */
                struct cow_spawn_args args = {
                        .name = in->name[0] ? in->name : NULL,
                        .owner = uid,
                        .max_resident = in->max_resident_pages,
                        .tlb_entries = in->tlb_entries,
                        .tlb_ways = in->tlb_ways,
                        .policy = policy_from_wire(d, in->policy),
                };
                r = cow_engine_spawn_args(d->engine, &args, &pid);
        } else {
                r = cow_engine_spawn(d->engine, in->name[0] ? in->name : NULL, uid, &pid);
        }
        if (r < 0)
                return dispatch_reply_engine_error(d, reply, r, "spawn", 0, NULL);
        out->pid = pid;
        resp->result_case = COWD__V1__RESPONSE__RESULT_SPAWN;
        resp->spawn = out;
        return 0;
oom:
        cow_reply_fail_oom(reply);
        return -ENOMEM;
}

static int handle_fork(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                       const Cowd__V1__ForkRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        Cowd__V1__ForkResult *out;
        cow_pid child;
        int r;

        struct cow_proc_info parent;

        r = dispatch_proc_authorize(d, reply, uid, in->pid, "fork");
        if (r < 0)
                return r;
        /* The child belongs to the parent's owner, so it counts against that uid. */
        r = cow_engine_proc_info(d->engine, in->pid, &parent);
        if (r == 0)
                r = proc_quota_check(d, reply, parent.owner, "fork");
        if (r < 0)
                return r;
        out = RESULT_NEW(reply, Cowd__V1__ForkResult, cowd__v1__fork_result__init);
        if (!out)
                goto oom;
        /* The child inherits the parent's owner inside the engine. */
        r = cow_engine_fork(d->engine, in->pid, &child);
        if (r < 0)
                return dispatch_reply_engine_error(d, reply, r, "fork", in->pid, NULL);
        out->child_pid = child;
        resp->result_case = COWD__V1__RESPONSE__RESULT_FORK;
        resp->fork = out;
        return 0;
oom:
        cow_reply_fail_oom(reply);
        return -ENOMEM;
}

static int handle_exit(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                       const Cowd__V1__ExitRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        Cowd__V1__ExitResult *out;
        int r;

        r = dispatch_proc_authorize(d, reply, uid, in->pid, "exit");
        if (r < 0)
                return r;
        out = RESULT_NEW(reply, Cowd__V1__ExitResult, cowd__v1__exit_result__init);
        if (!out)
                goto oom;
        r = cow_engine_exit(d->engine, in->pid);
        if (r < 0)
                return dispatch_reply_engine_error(d, reply, r, "exit", in->pid, NULL);
        resp->result_case = COWD__V1__RESPONSE__RESULT_EXIT;
        resp->exit = out;
        return 0;
oom:
        cow_reply_fail_oom(reply);
        return -ENOMEM;
}

static int handle_mmap(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                       const Cowd__V1__MmapRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        Cowd__V1__MmapResult *out;
        struct cow_mmap_args args = { 0 };
        char key[COW_FILESTORE_KEY_MAX];
        uint64_t addr;
        int r;

        if (in->prot & ~(uint32_t)COW_PROT_MASK)
                return dispatch_reply_invalid(reply, "mmap",
                                              "prot has bits other than read (1) and write (2)");
        if (in->kind == COWD__V1__MAP_KIND__ANONYMOUS && (in->path[0] || in->offset))
                return dispatch_reply_invalid(reply, "mmap",
                                              "an anonymous mapping takes no path or offset");
        if (in->kind != COWD__V1__MAP_KIND__ANONYMOUS && in->kind != COWD__V1__MAP_KIND__FILE &&
            in->kind != COWD__V1__MAP_KIND__DEVICE)
                return dispatch_reply_invalid(reply, "mmap", "unknown mapping kind");

        r = dispatch_proc_authorize(d, reply, uid, in->pid, "mmap");
        if (r < 0)
                return r;
        /* A file or device: its key, size or number, checked before the engine sees it. */
        r = dispatch_mmap_target(d, reply, uid, in, &args, key, sizeof(key));
        if (r < 0)
                return r;
        out = RESULT_NEW(reply, Cowd__V1__MmapResult, cowd__v1__mmap_result__init);
        if (!out)
                goto oom;
        args.addr = in->addr;
        args.length = in->length;
        args.prot = in->prot;
        args.shared = in->shared;
        args.fixed = in->fixed;
        r = cow_engine_mmap(d->engine, in->pid, &args, &addr);
        if (r < 0)
                return dispatch_reply_engine_error(d, reply, r, "mmap", in->pid, NULL);
        out->addr = addr;
        resp->result_case = COWD__V1__RESPONSE__RESULT_MMAP;
        resp->mmap = out;
        return 0;
oom:
        cow_reply_fail_oom(reply);
        return -ENOMEM;
}

static int handle_munmap(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                         const Cowd__V1__MunmapRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        Cowd__V1__MunmapResult *out;
        int r;

        r = dispatch_proc_authorize(d, reply, uid, in->pid, "munmap");
        if (r < 0)
                return r;
        out = RESULT_NEW(reply, Cowd__V1__MunmapResult, cowd__v1__munmap_result__init);
        if (!out)
                goto oom;
        r = cow_engine_munmap(d->engine, in->pid, in->addr, in->length);
        if (r < 0)
                return dispatch_reply_engine_error(d, reply, r, "munmap", in->pid, NULL);
        resp->result_case = COWD__V1__RESPONSE__RESULT_MUNMAP;
        resp->munmap = out;
        return 0;
oom:
        cow_reply_fail_oom(reply);
        return -ENOMEM;
}

static int handle_mprotect(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                           const Cowd__V1__MprotectRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        Cowd__V1__MprotectResult *out;
        int r;

        if (in->prot & ~(uint32_t)COW_PROT_MASK)
                return dispatch_reply_invalid(reply, "mprotect",
                                              "prot has bits other than read (1) and write (2)");
        r = dispatch_proc_authorize(d, reply, uid, in->pid, "mprotect");
        if (r < 0)
                return r;
        out = RESULT_NEW(reply, Cowd__V1__MprotectResult, cowd__v1__mprotect_result__init);
        if (!out)
                goto oom;
        r = cow_engine_mprotect(d->engine, in->pid, in->addr, in->length, in->prot);
        if (r < 0)
                return dispatch_reply_engine_error(d, reply, r, "mprotect", in->pid, NULL);
        resp->result_case = COWD__V1__RESPONSE__RESULT_MPROTECT;
        resp->mprotect = out;
        return 0;
oom:
        cow_reply_fail_oom(reply);
        return -ENOMEM;
}

static int handle_madvise(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                          const Cowd__V1__MadviseRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        Cowd__V1__MadviseResult *out;
        enum cow_advice advice;
        int r;

        switch (in->advice) {
        case COWD__V1__ADVICE__ADVICE_NORMAL:
                advice = COW_MADV_NORMAL;
                break;
        case COWD__V1__ADVICE__ADVICE_DONTNEED:
                advice = COW_MADV_DONTNEED;
                break;
        default:
                return dispatch_reply_invalid(reply, "madvise", "unknown advice");
        }
        r = dispatch_proc_authorize(d, reply, uid, in->pid, "madvise");
        if (r < 0)
                return r;
        out = RESULT_NEW(reply, Cowd__V1__MadviseResult, cowd__v1__madvise_result__init);
        if (!out)
                goto oom;
        r = cow_engine_madvise(d->engine, in->pid, in->addr, in->length, advice);
        if (r < 0)
                return dispatch_reply_engine_error(d, reply, r, "madvise", in->pid, NULL);
        resp->result_case = COWD__V1__RESPONSE__RESULT_MADVISE;
        resp->madvise = out;
        return 0;
oom:
        cow_reply_fail_oom(reply);
        return -ENOMEM;
}

static int handle_read(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                       const Cowd__V1__ReadRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        Cowd__V1__ReadResult *out;
        struct cow_fault fault = { 0 };
        uint8_t *data = NULL;
        int r;

        /* Judged before anything is allocated: the length is the client's to choose. */
        if (in->length > d->limits->max_read_bytes) {
                d->counters->oversize_requests++;
                cow_reply_set_status(reply, COWD__V1__CODE__RESOURCE_EXHAUSTED,
                                     "read: length %llu exceeds the limit of %llu bytes",
                                     (unsigned long long)in->length,
                                     (unsigned long long)d->limits->max_read_bytes);
                return -E2BIG;
        }
        r = dispatch_proc_authorize(d, reply, uid, in->pid, "read");
        if (r < 0)
                return r;
        out = RESULT_NEW(reply, Cowd__V1__ReadResult, cowd__v1__read_result__init);
        if (!out)
                goto oom;
        /* A zero-length read touches nothing and succeeds, as read(2) does. */
        if (in->length > 0) {
                data = cow_reply_data(reply, in->length);
                if (!data)
                        goto oom;
                r = cow_engine_read(d->engine, in->pid, in->addr, data, in->length, &fault);
                if (r < 0)
                        return dispatch_reply_engine_error(d, reply, r, "read", in->pid, &fault);
        }
        out->data.data = data;
        out->data.len = in->length;
        resp->result_case = COWD__V1__RESPONSE__RESULT_READ;
        resp->read = out;
        return 0;
oom:
        cow_reply_fail_oom(reply);
        return -ENOMEM;
}

static int handle_write(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                        const Cowd__V1__WriteRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        Cowd__V1__WriteResult *out;
        struct cow_fault fault = { 0 };
        int r;

        /* The data came in one frame, so max_frame_bytes already bounds it. */
        r = dispatch_proc_authorize(d, reply, uid, in->pid, "write");
        if (r < 0)
                return r;
        out = RESULT_NEW(reply, Cowd__V1__WriteResult, cowd__v1__write_result__init);
        if (!out)
                goto oom;
        if (in->data.len > 0) {
                r = cow_engine_write(d->engine, in->pid, in->addr, in->data.data, in->data.len,
                                     &fault);
                if (r < 0)
                        return dispatch_reply_engine_error(d, reply, r, "write", in->pid, &fault);
        }
        resp->result_case = COWD__V1__RESPONSE__RESULT_WRITE;
        resp->write = out;
        return 0;
oom:
        cow_reply_fail_oom(reply);
        return -ENOMEM;
}

/*
 * Records in out why access number out->done of a trace failed: the status
 * a read or write would have had, and its fault. Counted like that read or
 * write. Returns err, or -ENOMEM with the reply failed.
 */
static int trace_fail(cow_dispatcher *d, cow_reply *reply, Cowd__V1__TraceResult *out,
                      int err, cow_pid pid, const struct cow_fault *fault)
{
        Cowd__V1__Code code = code_for_error(err);
        Cowd__V1__Status *status = cow_reply_alloc(reply, sizeof(*status));
        Cowd__V1__Fault *f = cow_reply_alloc(reply, sizeof(*f));
        char *msg = cow_reply_alloc(reply, COW_REPLY_MESSAGE_MAX);

        if (!status || !f || !msg) {
                cow_reply_fail_oom(reply);
                return -ENOMEM;
        }
        if (code == COWD__V1__CODE__RESOURCE_EXHAUSTED)
                d->counters->engine_limit_rejections++;
        cowd__v1__status__init(status);
        status->code = code;
        if (err == -EFAULT && fault) {
                snprintf(msg, COW_REPLY_MESSAGE_MAX, "trace pid %u access %u: %s at 0x%llx", pid,
                         out->done, engine_error_text(d, err, true, false),
                         (unsigned long long)fault->addr);
                cowd__v1__fault__init(f);
                f->kind = fault_kind_to_wire(fault->kind);
                f->addr = fault->addr;
                out->fault = f;
        } else {
                snprintf(msg, COW_REPLY_MESSAGE_MAX, "trace pid %u access %u: %s", pid,
                         out->done, engine_error_text(d, err, true, false));
        }
        status->message = msg;
        out->error = status;
        return err;
}

/*
 * trace: a batch of accesses by one process, in order, through the same
 * engine calls as read and write. The whole payload is checked first (the
 * arrays agree, the count is within COW_SERVICE_LIMITS_TRACE_MAX, every size
 * is 1 byte to one page, every kind known), so a bad batch does nothing. The
 * first access that fails ends the batch: the reply is still OK and its
 * result says how many were done and why the next one failed, because the
 * accesses before it did happen and a replay has to know that.
 *
 * The data moves through one page of scratch memory owned by the dispatcher.
 * A store writes zeros (a trace carries no values), never what the scratch
 * held before: that may be another user's data.
 */
static int handle_trace(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                        const Cowd__V1__TraceRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        uint32_t page_size = cow_engine_page_size(d->engine);
        Cowd__V1__TraceResult *out;
        size_t n = in->n_addrs;
        int r;

        if (in->n_sizes != n || in->n_kinds != n)
                return dispatch_reply_invalid(reply, "trace",
                                              "addrs, sizes and kinds differ in length");
        if (n > COW_SERVICE_LIMITS_TRACE_MAX) {
                d->counters->oversize_requests++;
                cow_reply_set_status(reply, COWD__V1__CODE__RESOURCE_EXHAUSTED,
                                     "trace: %zu accesses exceed the limit of %u", n,
                                     COW_SERVICE_LIMITS_TRACE_MAX);
                return -E2BIG;
        }
        for (size_t i = 0; i < n; i++) {
                if (in->sizes[i] == 0 || in->sizes[i] > page_size) {
                        cow_reply_set_status(reply, COWD__V1__CODE__INVALID_ARGUMENT,
                                             "trace: access %zu has size %u, not 1 to %u",
                                             i, in->sizes[i], page_size);
                        return -EINVAL;
                }
                if ((unsigned)in->kinds[i] > COWD__V1__TRACE_KIND__TRACE_INSTR) {
                        cow_reply_set_status(reply, COWD__V1__CODE__INVALID_ARGUMENT,
                                             "trace: access %zu has unknown kind %d", i,
                                             (int)in->kinds[i]);
                        return -EINVAL;
                }
        }
        r = dispatch_proc_authorize(d, reply, uid, in->pid, "trace");
        if (r < 0)
                return r;
        out = RESULT_NEW(reply, Cowd__V1__TraceResult, cowd__v1__trace_result__init);
        if (!out)
                goto oom;
        if (!d->scratch) {
                /* The engine's page size is fixed for its life. */
                d->scratch = malloc(page_size);
                if (!d->scratch)
                        goto oom;
        }
        resp->result_case = COWD__V1__RESPONSE__RESULT_TRACE;
        resp->trace = out;

        for (size_t i = 0; i < n; i++) {
                struct cow_fault fault = { 0 };
                uint64_t addr = in->addrs[i];
                size_t len = in->sizes[i];

                switch (in->kinds[i]) {
                case COWD__V1__TRACE_KIND__TRACE_STORE:
                        memset(d->scratch, 0, len);
                        r = cow_engine_write(d->engine, in->pid, addr, d->scratch, len, &fault);
                        break;
                case COWD__V1__TRACE_KIND__TRACE_MODIFY:
                        r = cow_engine_read(d->engine, in->pid, addr, d->scratch, len, &fault);
                        if (r >= 0)
                                r = cow_engine_write(d->engine, in->pid, addr, d->scratch, len,
                                                     &fault);
                        break;
                default:
                        r = cow_engine_read(d->engine, in->pid, addr, d->scratch, len, &fault);
                        break;
                }
                if (r < 0)
                        return trace_fail(d, reply, out, r, in->pid, &fault);
                out->done++;
        }
        return 0;
oom:
        cow_reply_fail_oom(reply);
        return -ENOMEM;
}

static int handle_proc_stats(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                             const Cowd__V1__ProcStatsRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        Cowd__V1__ProcStats *out;
        struct cow_proc_stats st;
        struct cow_proc_info info;
        char *name;
        int r;

        r = dispatch_proc_authorize(d, reply, uid, in->pid, "proc_stats");
        if (r < 0)
                return r;
        out = RESULT_NEW(reply, Cowd__V1__ProcStats, cowd__v1__proc_stats__init);
        name = cow_reply_alloc(reply, sizeof(info.name));
        if (!out || !name)
                goto oom;
        r = cow_engine_proc_stats(d->engine, in->pid, &st);
        if (r >= 0)
                r = cow_engine_proc_info(d->engine, in->pid, &info);
        if (r < 0)
                return dispatch_reply_engine_error(d, reply, r, "proc_stats", in->pid, NULL);

        memcpy(name, info.name, sizeof(info.name));
        name[sizeof(info.name) - 1] = '\0';
        out->pid = st.pid;
        out->ppid = st.ppid;
        out->vsize_bytes = st.vsize_bytes;
        out->rss_pages = st.rss_pages;
        out->pss_bytes = st.pss_bytes;
        out->uss_pages = st.uss_pages;
        out->shared_pages = st.shared_pages;
        out->zero_pages = st.zero_pages;
        out->maps = st.maps;
        out->faults_zero_map = st.faults_zero_map;
        out->faults_zero_fill = st.faults_zero_fill;
        out->faults_cow_copy = st.faults_cow_copy;
        out->faults_cow_reuse = st.faults_cow_reuse;
        out->faults_segv = st.faults_segv;
        out->tlb_hits = st.tlb_hits;
        out->tlb_misses = st.tlb_misses;
        out->pt_bytes = st.pt_bytes;
        out->name = name;
        out->owner_uid = info.owner;
        out->faults_major = st.faults_major;
        out->faults_first_touch = st.faults_first_touch;
        out->swapped_pages = st.swapped_pages;
        out->max_resident_pages = st.max_resident;
        out->file_pages = st.file_pages;
        out->dirty_pages = st.dirty_pages;
        out->device_pages = st.device_pages;
        out->writebacks = st.writebacks;
        out->faults_bus = st.faults_bus;
        resp->result_case = COWD__V1__RESPONSE__RESULT_PROC_STATS;
        resp->proc_stats = out;
        return 0;
oom:
        cow_reply_fail_oom(reply);
        return -ENOMEM;
}

static int handle_sys_stats(cow_dispatcher *d, cow_reply *reply)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        const struct cow_counters *c = d->counters;
        Cowd__V1__SysStats *out;
        struct cow_sys_stats st;
        struct timespec now;

        out = RESULT_NEW(reply, Cowd__V1__SysStats, cowd__v1__sys_stats__init);
        if (!out)
                goto oom;
        cow_engine_sys_stats(d->engine, &st);
        clock_gettime(CLOCK_MONOTONIC, &now);

        out->page_size = st.page_size;
        out->frames_total = st.frames_total;
        out->frames_used = st.frames_used;
        out->frames_free = st.frames_free;
        out->zero_page_maps = st.zero_page_maps;
        out->cow_copies = st.cow_copies;
        out->cow_reuses = st.cow_reuses;
        out->zero_fills = st.zero_fills;
        out->zero_maps = st.zero_maps;
        out->segv_faults = st.segv_faults;
        out->bytes_saved = st.bytes_saved;
        out->pt_bytes = st.pt_bytes;
        out->pt_nodes = st.pt_nodes;
        out->procs = st.procs;
        out->procs_created = st.procs_created;
        out->tlb_hits = st.tlb_hits;
        out->tlb_misses = st.tlb_misses;
        out->frame_meta_bytes = st.frame_meta_bytes;
        out->swap_slots_total = st.swap_slots_total;
        out->swap_slots_used = st.swap_slots_used;
        out->swap_ins = st.swap_ins;
        out->swap_outs = st.swap_outs;
        out->evictions = st.evictions;
        out->swap_cache_hits = st.swap_cache_hits;
        out->oom_kills = st.oom_kills;
        out->swap_errors = st.swap_errors;
        out->files = st.files;
        out->file_pages = st.file_pages;
        out->dirty_pages = st.dirty_pages;
        out->writebacks = st.writebacks;
        out->file_reads = st.file_reads;
        out->file_errors = st.file_errors;
        out->bus_faults = st.bus_faults;
        out->device_frames = st.device_frames;
        out->console_bytes = st.console_bytes;
        out->frame_quota_rejections = st.frame_quota_refusals;
        out->swap_quota_rejections = st.swap_quota_refusals;

        out->connections = c->connections;
        out->connections_total = c->connections_total;
        out->requests_total = c->requests_total;
        out->rejected_connections = c->rejected_connections;
        out->oversize_frames = c->oversize_frames;
        out->protocol_errors = c->protocol_errors;
        out->idle_timeouts = c->idle_timeouts;
        out->backpressure_pauses = c->backpressure_pauses;
        out->proc_limit_rejections = c->proc_limit_rejections;
        out->uptime_seconds = (uint64_t)(now.tv_sec - d->started.tv_sec);
        out->oversize_requests = c->oversize_requests;
        out->engine_limit_rejections = c->engine_limit_rejections;
        out->permission_denials = c->permission_denials;
        out->auth_failures = c->auth_failures;
        out->quota_rejections = c->quota_rejections;
        if (d->files) {
                struct cow_filestore_counters fc;

                cow_filestore_counters(d->files, &fc);
                out->file_size_rejections = fc.size_rejections;
                out->file_quota_rejections = fc.quota_rejections;
                out->file_count_rejections = fc.count_rejections;
                out->file_name_rejections = fc.name_rejections;
                out->file_io_errors = fc.io_errors;
        }
        if (d->checkpointer) {
                struct cow_checkpoint_stats cs;

                cow_checkpointer_stats(d->checkpointer, &cs);
                out->checkpoints_total = cs.total;
                out->checkpoint_failures = cs.failures;
                out->last_checkpoint_unix_seconds = cs.last_unix_s;
                out->last_checkpoint_bytes = cs.last_bytes;
                out->last_checkpoint_duration_us = cs.last_duration_us;
                out->last_checkpoint_pause_us = cs.last_pause_us;
        }
        resp->result_case = COWD__V1__RESPONSE__RESULT_SYS_STATS;
        resp->sys_stats = out;
        return 0;
oom:
        cow_reply_fail_oom(reply);
        return -ENOMEM;
}

static int handle_page_map(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                           const Cowd__V1__PageMapRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        uint64_t page_size = cow_engine_page_size(d->engine);
        Cowd__V1__PageMapResult *out;
        Cowd__V1__PageEntry *entries, **list;
        struct cow_page_info *info;
        uint64_t npages;
        int r;

        /* Rounded up without overflowing for lengths near 2^64. */
        npages = in->length / page_size + (in->length % page_size != 0);
        if (npages > d->limits->max_page_map_pages) {
                d->counters->oversize_requests++;
                cow_reply_set_status(reply, COWD__V1__CODE__RESOURCE_EXHAUSTED,
                                     "page_map: %llu pages exceed the limit of %u",
                                     (unsigned long long)npages, d->limits->max_page_map_pages);
                return -E2BIG;
        }
        r = dispatch_proc_authorize(d, reply, uid, in->pid, "page_map");
        if (r < 0)
                return r;

        out = RESULT_NEW(reply, Cowd__V1__PageMapResult, cowd__v1__page_map_result__init);
        info = cow_reply_alloc(reply, npages * sizeof(*info));
        entries = cow_reply_alloc(reply, npages * sizeof(*entries));
        list = cow_reply_alloc(reply, npages * sizeof(*list));
        if (!out || !info || !entries || !list)
                goto oom;
        if (npages > 0) {
                r = cow_engine_page_map(d->engine, in->pid, in->addr, npages, info);
                if (r < 0)
                        return dispatch_reply_engine_error(d, reply, r, "page_map", in->pid, NULL);
        }
        for (uint64_t i = 0; i < npages; i++) {
                Cowd__V1__PageEntry *e = &entries[i];
                uint32_t f = info[i].flags;

                cowd__v1__page_entry__init(e);
                e->addr = info[i].addr;
                e->mapped = !!(f & COW_PAGE_MAPPED);
                e->present = !!(f & COW_PAGE_PRESENT);
                e->frame = info[i].frame;
                e->writable = !!(f & COW_PAGE_WRITABLE);
                e->cow = !!(f & COW_PAGE_COW);
                e->zero = !!(f & COW_PAGE_ZERO);
                e->sharers = info[i].sharers;
                e->in_tlb = !!(f & COW_PAGE_IN_TLB);
                e->prot = info[i].prot;
                e->shared = !!(f & COW_PAGE_SHARED);
                e->swapped = !!(f & COW_PAGE_SWAPPED);
                e->swap_slot = (f & COW_PAGE_SWAPPED) ? info[i].swap_slot : 0;
                e->file = !!(f & COW_PAGE_FILE);
                e->dirty = !!(f & COW_PAGE_DIRTY);
                e->device = !!(f & COW_PAGE_DEVICE);
                list[i] = e;
        }
        out->page_size = (uint32_t)page_size;
        out->n_pages = npages;
        out->pages = list;
        resp->result_case = COWD__V1__RESPONSE__RESULT_PAGE_MAP;
        resp->page_map = out;
        return 0;
oom:
        cow_reply_fail_oom(reply);
        return -ENOMEM;
}

/* Mappings asked of the engine by list_maps' first try. */
#define LIST_MAPS_FIRST_TRY 64

/*
 * list_maps: the owner's view of one process's mappings, at most
 * max_list_maps per reply; next_addr says where to continue.
 */
static int handle_list_maps(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                            const Cowd__V1__ListMapsRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        uint32_t cap = d->limits->max_list_maps;
        Cowd__V1__ListMapsResult *out;
        Cowd__V1__MapInfo *maps, **list;
        struct cow_map_info *info = NULL;
        int r;

        r = dispatch_proc_authorize(d, reply, uid, in->pid, "list_maps");
        if (r < 0)
                return r;
        out = RESULT_NEW(reply, Cowd__V1__ListMapsResult, cowd__v1__list_maps_result__init);
        if (!out)
                goto oom;
        /*
         * One more than fits tells whether the walk has further to go. Most
         * processes have a handful of mappings: start small and grow, rather
         * than allocate (and clear) room for cap + 1 on every call.
         */
        for (size_t want = LIST_MAPS_FIRST_TRY;; want *= 2) {
                if (want > (size_t)cap + 1)
                        want = (size_t)cap + 1;
                free(info);
                info = malloc(want * sizeof(*info));
                if (!info)
                        goto oom;
                r = cow_engine_maps(d->engine, in->pid, in->start_addr, info, want);
                if (r < 0) {
                        free(info);
                        return dispatch_reply_engine_error(d, reply, r, "list_maps", in->pid, NULL);
                }
                if ((size_t)r < want || want == (size_t)cap + 1)
                        break;
        }
        size_t n = (size_t)r > cap ? cap : (size_t)r;
        maps = cow_reply_alloc(reply, n * sizeof(*maps));
        list = cow_reply_alloc(reply, n * sizeof(*list));
        if (!maps || !list)
                goto oom;
        for (size_t i = 0; i < n; i++) {
                cowd__v1__map_info__init(&maps[i]);
                maps[i].addr = info[i].addr;
                maps[i].length = info[i].length;
                maps[i].prot = info[i].prot;
                maps[i].shared = info[i].shared;
                maps[i].kind = (Cowd__V1__MapKind)info[i].kind;
                maps[i].offset = info[i].offset;
                if (info[i].kind == COW_MAP_FILE && info[i].file_key) {
                        /* The name, without the owner's uid the key starts with. */
                        const char *slash = strchr(info[i].file_key, '/');
                        const char *name = slash ? slash + 1 : info[i].file_key;
                        size_t len = strlen(name);
                        char *copy = cow_reply_alloc(reply, len + 1);
                        if (!copy)
                                goto oom;
                        memcpy(copy, name, len + 1);
                        maps[i].path = copy;
                } else if (info[i].kind == COW_MAP_DEVICE && cow_device_name(info[i].device)) {
                        maps[i].path = (char *)cow_device_name(info[i].device);
                }
                list[i] = &maps[i];
        }
        out->n_maps = n;
        out->maps = list;
        out->next_addr = (size_t)r > cap ? info[cap].addr : 0;
        resp->result_case = COWD__V1__RESPONSE__RESULT_LIST_MAPS;
        resp->list_maps = out;
        free(info);
        return 0;
oom:
        free(info);
        cow_reply_fail_oom(reply);
        return -ENOMEM;
}

/*
 * Lists every live process, whoever owns it, as ps(1) does: names, sizes
 * and owners are not secrets, and an operator needs to see who holds the
 * memory. Acting on a process still needs ownership. One reply carries at
 * most max_list_procs processes; next_pid says where to continue.
 */
static int handle_list_procs(cow_dispatcher *d, cow_reply *reply,
                             const Cowd__V1__ListProcsRequest *in)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        uint32_t cap = d->limits->max_list_procs;
        Cowd__V1__ListProcsResult *out;
        Cowd__V1__ProcInfo *procs, **list;
        struct cow_proc_info info;
        char *names;
        cow_pid pid, first;
        size_t n = 0;
        int r;

        first = cow_engine_proc_next(d->engine, in->start_pid > 0 ? in->start_pid - 1 : 0);
        /* Count first, so that one allocation of the right size serves. */
        for (pid = first; pid && n < cap; pid = cow_engine_proc_next(d->engine, pid))
                n++;

        out = RESULT_NEW(reply, Cowd__V1__ListProcsResult, cowd__v1__list_procs_result__init);
        procs = cow_reply_alloc(reply, n * sizeof(*procs));
        list = cow_reply_alloc(reply, n * sizeof(*list));
        names = cow_reply_alloc(reply, n * sizeof(info.name));
        if (!out || !procs || !list || !names)
                goto oom;

        n = 0;
        for (pid = first; pid && n < cap; pid = cow_engine_proc_next(d->engine, pid)) {
                Cowd__V1__ProcInfo *p = &procs[n];
                char *name = names + n * sizeof(info.name);

                r = cow_engine_proc_info(d->engine, pid, &info);
                if (r < 0)
                        return dispatch_reply_engine_error(d, reply, r, "list_procs", pid, NULL);
                cowd__v1__proc_info__init(p);
                memcpy(name, info.name, sizeof(info.name));
                name[sizeof(info.name) - 1] = '\0';
                p->pid = info.pid;
                p->ppid = info.ppid;
                p->name = name;
                p->rss_pages = info.rss_pages;
                p->owner_uid = info.owner;
                list[n++] = p;
        }
        out->n_procs = n;
        out->procs = list;
        out->next_pid = pid; /* 0 when the walk ran off the end */
        resp->result_case = COWD__V1__RESPONSE__RESULT_LIST_PROCS;
        resp->list_procs = out;
        return 0;
oom:
        cow_reply_fail_oom(reply);
        return -ENOMEM;
}

/* ---- the switch ------------------------------------------------------------------ */

/* Fills a checkpoint reply with the outcome r (0, or a negative errno with err saying why). */
static void checkpoint_reply_fill(cow_reply *reply, int r, const char *err,
                                  const struct cow_checkpoint_stats *cs)
{
        Cowd__V1__Response *resp = cow_reply_response(reply);
        Cowd__V1__CheckpointResult *out;

        if (r < 0) {
                Cowd__V1__Code code = COWD__V1__CODE__INTERNAL;

                if (r == -ENOSPC || r == -EDQUOT || r == -ENOMEM || r == -EAGAIN)
                        code = COWD__V1__CODE__RESOURCE_EXHAUSTED;
                else if (r == -ENOENT || r == -EROFS || r == -EACCES)
                        code = COWD__V1__CODE__FAILED_PRECONDITION;
                else if (r == -EIO)
                        code = COWD__V1__CODE__UNAVAILABLE; /* as for the swap file */
                else if (r == -ECANCELED)
                        code = COWD__V1__CODE__ABORTED;
                cow_reply_set_status(reply, code, "checkpoint: %s; the previous one is kept",
                                     err);
                return;
        }
        out = RESULT_NEW(reply, Cowd__V1__CheckpointResult, cowd__v1__checkpoint_result__init);
        if (!out) {
                cow_reply_fail_oom(reply);
                return;
        }
        out->bytes = cs->last_bytes;
        out->duration_us = cs->last_duration_us;
        out->pause_us = cs->last_pause_us;
        out->unix_seconds = cs->last_unix_s;
        resp->result_case = COWD__V1__RESPONSE__RESULT_CHECKPOINT;
        resp->checkpoint = out;
}

/* The checkpointer's answer to a deferred checkpoint request. */
static void checkpoint_done(void *arg, int r, const char *err,
                            const struct cow_checkpoint_stats *cs)
{
        cow_reply *reply = arg;

        checkpoint_reply_fill(reply, r, err, cs);
        cow_reply_ready(reply);
}

/*
 * A checkpoint holds every user's processes and costs the host a fork and
 * a file the size of the state, so only the operator asks for one: uid 0 or
 * the daemon's own uid. The reply is deferred (reply.h) until the checkpoint
 * is durable; meanwhile the daemon serves everyone else. A failure leaves
 * the previous checkpoint in place and says why (a full disk is
 * RESOURCE_EXHAUSTED, an I/O error UNAVAILABLE, a killed writer ABORTED).
 */
static int handle_checkpoint(cow_dispatcher *d, cow_reply *reply, uint32_t uid)
{
        char err[COW_REPLY_MESSAGE_MAX];
        int r;

        if (uid != 0 && uid != (uint32_t)geteuid()) {
                d->counters->permission_denials++;
                cow_reply_set_status(reply, COWD__V1__CODE__PERMISSION_DENIED,
                                     "checkpoint: only uid 0 or the daemon's uid may ask");
                return -EPERM;
        }
        if (!d->checkpointer) {
                cow_reply_set_status(reply, COWD__V1__CODE__FAILED_PRECONDITION,
                                     "checkpoint: this daemon keeps no state");
                return -ENOENT;
        }
        r = cow_checkpointer_request(d->checkpointer, checkpoint_done, reply, err, sizeof(err));
        if (r < 0) {
                checkpoint_reply_fill(reply, r, err, NULL);
                return r;
        }
        cow_reply_defer(reply);
        return 0;
}

int cow_dispatch(cow_dispatcher *d, uint32_t uid, const Cowd__V1__Request *req,
                 cow_reply **ret_reply)
{
        return cow_dispatch_lent(d, uid, req, NULL, 0, ret_reply);
}

int cow_dispatch_lent(cow_dispatcher *d, uint32_t uid, const Cowd__V1__Request *req,
                      uint8_t *buf, size_t buf_len, cow_reply **ret_reply)
{
        cow_reply *reply = NULL;
        int r;

        r = cow_reply_new(req->id, &reply);
        if (r < 0)
                return r;
        if (buf)
                cow_reply_lend(reply, buf, buf_len);
        d->counters->requests_total++;

        /*
         * Handlers set the reply for every outcome; their return value only
         * tells a fuzzer or a test whether the op succeeded, so it is not
         * needed here.
         */
        switch (req->op_case) {
        case COWD__V1__REQUEST__OP_HELLO:
                (void)handle_hello(d, reply, uid, req->hello);
                break;
        case COWD__V1__REQUEST__OP_SPAWN:
                (void)handle_spawn(d, reply, uid, req->spawn);
                break;
        case COWD__V1__REQUEST__OP_FORK:
                (void)handle_fork(d, reply, uid, req->fork);
                break;
        case COWD__V1__REQUEST__OP_EXIT:
                (void)handle_exit(d, reply, uid, req->exit);
                break;
        case COWD__V1__REQUEST__OP_MMAP:
                (void)handle_mmap(d, reply, uid, req->mmap);
                break;
        case COWD__V1__REQUEST__OP_MUNMAP:
                (void)handle_munmap(d, reply, uid, req->munmap);
                break;
        case COWD__V1__REQUEST__OP_MPROTECT:
                (void)handle_mprotect(d, reply, uid, req->mprotect);
                break;
        case COWD__V1__REQUEST__OP_MADVISE:
                (void)handle_madvise(d, reply, uid, req->madvise);
                break;
        case COWD__V1__REQUEST__OP_READ:
                (void)handle_read(d, reply, uid, req->read);
                break;
        case COWD__V1__REQUEST__OP_WRITE:
                (void)handle_write(d, reply, uid, req->write);
                break;
        case COWD__V1__REQUEST__OP_PROC_STATS:
                (void)handle_proc_stats(d, reply, uid, req->proc_stats);
                break;
        case COWD__V1__REQUEST__OP_SYS_STATS:
                (void)handle_sys_stats(d, reply);
                break;
        case COWD__V1__REQUEST__OP_PAGE_MAP:
                (void)handle_page_map(d, reply, uid, req->page_map);
                break;
        case COWD__V1__REQUEST__OP_LIST_PROCS:
                (void)handle_list_procs(d, reply, req->list_procs);
                break;
        case COWD__V1__REQUEST__OP_LIST_MAPS:
                (void)handle_list_maps(d, reply, uid, req->list_maps);
                break;
        case COWD__V1__REQUEST__OP_CHECKPOINT:
                (void)handle_checkpoint(d, reply, uid);
                break;
        case COWD__V1__REQUEST__OP_TRACE:
                (void)handle_trace(d, reply, uid, req->trace);
                break;
        case COWD__V1__REQUEST__OP_FILE_PUT:
                (void)dispatch_file_put(d, reply, uid, req->file_put);
                break;
        case COWD__V1__REQUEST__OP_FILE_GET:
                (void)dispatch_file_get(d, reply, uid, req->file_get);
                break;
        case COWD__V1__REQUEST__OP_FILE_LIST:
                (void)dispatch_file_list(d, reply, uid, req->file_list);
                break;
        case COWD__V1__REQUEST__OP_FILE_REMOVE:
                (void)dispatch_file_remove(d, reply, uid, req->file_remove);
                break;
        case COWD__V1__REQUEST__OP_MSYNC:
                (void)dispatch_msync(d, reply, uid, req->msync);
                break;
        case COWD__V1__REQUEST__OP_CONSOLE_READ:
                (void)dispatch_console_read(d, reply, req->console_read);
                break;
        case COWD__V1__REQUEST__OP_DEVICE_READ:
                (void)dispatch_device_read(d, reply, req->device_read);
                break;
        case COWD__V1__REQUEST__OP__NOT_SET:
        default:
                /* No op, or one added to the protocol after this daemon was built. */
                cow_reply_set_status(reply, COWD__V1__CODE__UNIMPLEMENTED,
                                     "unknown or missing operation");
                break;
        }

        *ret_reply = reply;
        return 0;
}
