/* SPDX-License-Identifier: MIT */
/*
 * The dispatcher's insides, shared by the files that implement its handlers:
 * dispatch.c (processes, memory, statistics) and dispatch-files.c (files,
 * msync and devices). Nothing else includes this.
 */
#ifndef COWD_SERVICE_DISPATCH_IMPL_H
#define COWD_SERVICE_DISPATCH_IMPL_H

#include <stdint.h>
#include <time.h>

#include "dispatch.h"

struct cow_checkpointer;
struct cow_filestore;
struct cow_filewriter;

struct cow_dispatcher {
        cow_engine *engine;
        const struct cow_service_limits *limits;
        struct cow_counters *counters;
        struct timespec started; /* CLOCK_MONOTONIC, for uptime */
        struct cow_checkpointer *checkpointer; /* NULL: checkpoints are not available */
        struct cow_filestore *files;  /* NULL: this daemon keeps no files */
        struct cow_filewriter *writer; /* NULL: puts are written on the caller's thread */
        uint8_t *scratch;        /* one page, the data of trace accesses; NULL until needed */
};

/* Allocates and initialises one result message of type T inside reply. */
#define RESULT_NEW(reply, T, init)                                                   \
        ({                                                                           \
                T *result__ = cow_reply_alloc((reply), sizeof(T));                   \
                if (result__)                                                        \
                        init(result__);                                              \
                result__;                                                            \
        })

/*
 * Sets the reply for an engine error from operation op on pid (0: no
 * process involved), counts limit rejections and, for -EFAULT, attaches the
 * fault. Returns err.
 */
int dispatch_reply_engine_error(cow_dispatcher *d, cow_reply *reply, int err, const char *op,
                                cow_pid pid, const struct cow_fault *fault);

/*
 * Checks that pid exists and that uid may act on it: its owner or uid 0.
 * Returns 0, or a negative errno with the reply already set.
 */
int dispatch_proc_authorize(cow_dispatcher *d, cow_reply *reply, uint32_t uid, cow_pid pid,
                            const char *op);

/* INVALID_ARGUMENT "op: why"; returns -EINVAL. */
int dispatch_reply_invalid(cow_reply *reply, const char *op, const char *why);

/* The handlers of dispatch-files.c, with the contract of every handle_<op>(). */
int dispatch_file_put(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                      const Cowd__V1__FilePutRequest *in);
int dispatch_file_get(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                      const Cowd__V1__FileGetRequest *in);
int dispatch_file_list(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                       const Cowd__V1__FileListRequest *in);
int dispatch_file_remove(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                         const Cowd__V1__FileRemoveRequest *in);

int dispatch_msync(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                   const Cowd__V1__MsyncRequest *in);
int dispatch_console_read(cow_dispatcher *d, cow_reply *reply,
                          const Cowd__V1__ConsoleReadRequest *in);
int dispatch_device_read(cow_dispatcher *d, cow_reply *reply,
                         const Cowd__V1__DeviceReadRequest *in);

/*
 * Fills the FILE or DEVICE part of args for in (nothing for ANONYMOUS): the
 * file is uid's, its key written into key[0..keylen) (which args points
 * at) and its size taken now; a device is named by in->path. Returns 0, or
 * a negative errno with the reply set.
 */
int dispatch_mmap_target(cow_dispatcher *d, cow_reply *reply, uint32_t uid,
                         const Cowd__V1__MmapRequest *in, struct cow_mmap_args *args,
                         char *key, size_t keylen);

#endif /* COWD_SERVICE_DISPATCH_IMPL_H */
