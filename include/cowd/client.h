/* SPDX-License-Identifier: MIT */
/*
 * cowd client library: talks to a cowd daemon over a Unix socket or TCP.
 *
 * Every call blocks until the daemon answers. A connection is not
 * thread-safe: use one per thread, or serialise calls yourself.
 *
 * Error convention, the same for every function that returns int:
 *
 *   0      success; output parameters (named ret_*, always last) are set.
 *   < 0    a negative errno: the request did not get a well-formed answer
 *          (connection refused or lost, -ETIMEDOUT, -EMSGSIZE for a frame
 *          above the size limit, -EPROTO for bytes that do not decode or a
 *          reply whose id does not match). The connection should be closed.
 *   > 0    the daemon refused the request: the value is its gRPC canonical
 *          status code (COWD__V1__CODE__NOT_FOUND, ...) and *err, if given,
 *          holds the code, the daemon's message and any memory fault. The
 *          connection stays usable.
 *
 * Output parameters are left untouched on failure.
 *
 * Messages of the wire contract (cowd.proto, package cowd.v1) are exposed as
 * the protoc-c types in cowd.pb-c.h. A Response handed to the caller is
 * owned by the caller and freed with cowc_response_free().
 */
#ifndef COWD_CLIENT_H
#define COWD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cowd.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cowc_conn cowc_conn;

/* Why the daemon refused a request. */
struct cowc_error {
        int code;            /* gRPC canonical code, Cowd__V1__Code; 0 when none */
        int fault;           /* Cowd__V1__FaultKind; 0 (FAULT_NONE) when no memory fault */
        uint64_t fault_addr; /* first faulting byte when fault != 0 */
        char message[256];   /* the daemon's message, truncated; may be empty */
};

struct cowc_options {
        uint32_t max_frame;      /* largest reply accepted; 0: COW_FRAME_DEFAULT_MAX */
        int timeout_ms;          /* per send or receive; 0: wait forever */
        const char *token;       /* sent with cowc_hello(); a daemon's TCP listener requires
                                  * one (16 to 256 printable characters); NULL: none */
};

/*
 * Connects to endpoint: a Unix socket path when it contains a '/' or no ':',
 * otherwise "host:port" over TCP ("[::1]:7000" for an IPv6 literal). NULL or
 * "" means the default path (cow_default_socket_path(): $COWD_SOCKET, else
 * $XDG_RUNTIME_DIR/cowd.sock, else /tmp/cowd-UID/cowd.sock). opts may be
 * NULL for the defaults. Sends nothing: call cowc_hello() to learn the
 * server's page size and limits.
 */
int cowc_connect(const char *endpoint, const struct cowc_options *opts, cowc_conn **ret);

/* Closes the connection and frees everything. Accepts NULL. */
void cowc_close(cowc_conn *c);

/* The endpoint as resolved by cowc_connect (the default path filled in). */
const char *cowc_endpoint(const cowc_conn *c);

/* Frees a Response returned by this library. Accepts NULL. */
void cowc_response_free(Cowd__V1__Response *resp);

/*
 * Fills *err from resp and returns resp's status code (0 for OK). A
 * missing status counts as OK, as in proto3. err may be NULL.
 */
int cowc_error_from_response(const Cowd__V1__Response *resp, struct cowc_error *err);

/* Names: "NOT_FOUND", "SEGV_ACCERR"; NULL for a value the contract does not define. */
const char *cowc_code_name(int code);
const char *cowc_fault_name(int fault);

/* The value of a code or fault-kind name (case-insensitive), or -1. */
int cowc_code_from_name(const char *name);
int cowc_fault_from_name(const char *name);

/*
 * Formats err as "SEGV_ACCERR at 0x1000: message" or "NOT_FOUND: message"
 * into buf. Returns buf.
 */
const char *cowc_error_format(const struct cowc_error *err, char *buf, size_t len);

/* ---- generic and pipelined calls ------------------------------------- */

/*
 * Sends req and waits for its answer. The library assigns req's id (the
 * caller's req->id is ignored). On 0 or a positive code *ret is the reply,
 * which the caller frees; on a negative errno *ret is untouched. -EBUSY
 * while pipelined requests still await their replies.
 */
int cowc_call(cowc_conn *c, const Cowd__V1__Request *req, Cowd__V1__Response **ret);

/*
 * Pipelining: cowc_queue() packs a request into the send buffer and assigns
 * its id (stored in *ret_id if given); cowc_flush() sends everything queued
 * in one write; cowc_receive() returns the next reply in order, checking
 * that its id is that of the oldest unanswered request (-EPROTO otherwise).
 * cowc_receive() flushes first if anything is still queued. Returns like
 * cowc_call(); a reply is handed over for every return value >= 0;
 * -EINVAL when nothing is awaiting a reply.
 */
int cowc_queue(cowc_conn *c, const Cowd__V1__Request *req, uint64_t *ret_id);
int cowc_flush(cowc_conn *c);
int cowc_receive(cowc_conn *c, Cowd__V1__Response **ret);

/* Requests queued or sent whose replies have not been received yet. */
size_t cowc_pending(const cowc_conn *c);

/*
 * Sends n requests in one write and receives their n replies into
 * ret[0..n-1]. Returns 0 when every reply arrived (each may carry its own
 * error status) or a negative errno, in which case the replies received
 * so far are freed and ret is left zeroed.
 */
int cowc_call_many(cowc_conn *c, const Cowd__V1__Request *const *reqs, size_t n,
                   Cowd__V1__Response **ret);

/* ---- encoding and decoding for callers with their own event loop ---------- */

/*
 * A program that drives many connections from one event loop (libevent,
 * epoll) moves the bytes itself and lets the library pack and unpack:
 *
 *   cowc_connect_fd()        connects like cowc_connect() and hands over the
 *                            socket (blocking, close-on-exec; the caller makes
 *                            it non-blocking and closes it). Returns 0 or a
 *                            negative errno.
 *   cowc_request_frame_size() the bytes cowc_encode_request() writes for req:
 *                            the 4-byte length header and the message.
 *   cowc_encode_request()    writes req, framed, into buf[0..cap). req->id is
 *                            sent as the caller set it; replies come back in
 *                            request order with the same id. Returns the bytes
 *                            written, -ENOSPC when cap is too small, or
 *                            -EMSGSIZE when the message is longer than max
 *                            (0: COW_FRAME_DEFAULT_MAX).
 *   cowc_decode_response()   looks for one whole reply frame at buf[0..len).
 *                            Returns 0 when more bytes are needed (nothing is
 *                            set); otherwise the bytes the frame took (> 0),
 *                            with *ret the reply, which the caller frees with
 *                            cowc_response_free(). -EMSGSIZE for a frame whose
 *                            declared length is above max (0: the default),
 *                            -EPROTO for an empty frame or bytes that do not
 *                            decode. Decoding runs under the same allocation
 *                            budget as the blocking calls.
 *   cowc_decode_response_view() the same, into *view: view->reply is the reply.
 *                            A read or write reply is decoded in place, with
 *                            no allocation, and a read's data points into buf,
 *                            which must then stay put while the reply is used;
 *                            any other reply is decoded as above. Either way
 *                            the caller ends with cowc_response_view_release().
 */
int cowc_connect_fd(const char *endpoint, int *ret_fd);
size_t cowc_request_frame_size(const Cowd__V1__Request *req);
long cowc_encode_request(const Cowd__V1__Request *req, void *buf, size_t cap, uint32_t max);
long cowc_decode_response(const void *buf, size_t len, uint32_t max, Cowd__V1__Response **ret);

struct cowc_response_view {
        const Cowd__V1__Response *reply; /* the decoded reply */
        Cowd__V1__Response *owned;       /* reply when protobuf-c made it, else NULL */
        /* Room for a reply decoded in place; reply then points here. */
        Cowd__V1__Response in_place;
        Cowd__V1__Status status;
        union {
                Cowd__V1__ReadResult read;
                Cowd__V1__WriteResult write;
        } result;
};
long cowc_decode_response_view(const void *buf, size_t len, uint32_t max,
                               struct cowc_response_view *view);
void cowc_response_view_release(struct cowc_response_view *view);

/* ---- one function per operation --------------------------------------- */

struct cowc_server_info {
        uint32_t protocol_version;
        uint32_t page_size;
        uint32_t max_frame_bytes;
        uint32_t uid;
        char server_version[64];
};

/* Introduces the client; also raises the connection's frame limit to the server's. */
int cowc_hello(cowc_conn *c, const char *client_name, struct cowc_server_info *ret_info,
               struct cowc_error *err);

int cowc_spawn(cowc_conn *c, const char *name, uint32_t *ret_pid, struct cowc_error *err);
/* A process with a shape of its own (SpawnRequest fields 2..5); zeros are the daemon's. */
struct cowc_spawn_args {
        const char *name;       /* may be NULL */
        uint64_t max_resident;  /* resident pages it may hold; 0: no limit */
        uint32_t tlb_entries;   /* 0: the daemon's */
        uint32_t tlb_ways;      /* with tlb_entries; 0: fully associative */
        int policy;             /* Cowd__V1__Policy; 0: the daemon's */
};

int cowc_spawn_args(cowc_conn *c, const struct cowc_spawn_args *args, uint32_t *ret_pid,
                    struct cowc_error *err);
int cowc_fork(cowc_conn *c, uint32_t pid, uint32_t *ret_child, struct cowc_error *err);
int cowc_exit(cowc_conn *c, uint32_t pid, struct cowc_error *err);

struct cowc_mmap_args {
        uint64_t addr;   /* 0: the daemon chooses */
        uint64_t length; /* bytes, rounded up to pages by the daemon */
        uint32_t prot;   /* 1 read | 2 write; 0 none */
        bool shared;     /* MAP_SHARED rather than private */
        bool fixed;      /* replace overlapping mappings */
        int kind;         /* Cowd__V1__MapKind; 0: anonymous */
        const char *path; /* FILE: a file name of the caller's; DEVICE: "fb0" or "console" */
        uint64_t offset;  /* FILE: page-aligned offset into the file */
};

int cowc_mmap(cowc_conn *c, uint32_t pid, const struct cowc_mmap_args *args, uint64_t *ret_addr,
              struct cowc_error *err);
int cowc_munmap(cowc_conn *c, uint32_t pid, uint64_t addr, uint64_t length,
                struct cowc_error *err);
int cowc_mprotect(cowc_conn *c, uint32_t pid, uint64_t addr, uint64_t length, uint32_t prot,
                  struct cowc_error *err);
int cowc_madvise(cowc_conn *c, uint32_t pid, uint64_t addr, uint64_t length, int advice,
                 struct cowc_error *err);

/*
 * Reads len bytes at addr into buf. A reply shorter or longer than asked is
 * -EPROTO. len is bounded by the frame limit.
 */
int cowc_read(cowc_conn *c, uint32_t pid, uint64_t addr, void *buf, size_t len,
              struct cowc_error *err);
int cowc_write(cowc_conn *c, uint32_t pid, uint64_t addr, const void *buf, size_t len,
               struct cowc_error *err);

/*
 * Writes the dirty pages of the MAP_SHARED file mappings in the range back
 * to their files; with sync, they are on disk (fsync) when it returns 0.
 */
int cowc_msync(cowc_conn *c, uint32_t pid, uint64_t addr, uint64_t length, bool sync,
               struct cowc_error *err);

/* ---- files and devices ---------------------------------------------- */

/*
 * Files live in the daemon's data directory, in the caller's namespace.
 * cowc_file_put() writes data at offset: 0 replaces the file whole, a larger
 * offset must be the file's size and appends (for files larger than a
 * frame); *ret_size (may be NULL) is the size afterwards.
 * cowc_file_get() reads up to len bytes at offset into buf: *ret_n is the
 * count (short at the end), *ret_size (may be NULL) the file's whole size.
 * len is bounded by the frame limit.
 */
int cowc_file_put(cowc_conn *c, const char *name, uint64_t offset, const void *data, size_t len,
                  uint64_t *ret_size, struct cowc_error *err);
int cowc_file_get(cowc_conn *c, const char *name, uint64_t offset, void *buf, size_t len,
                  size_t *ret_n, uint64_t *ret_size, struct cowc_error *err);
int cowc_file_remove(cowc_conn *c, const char *name, struct cowc_error *err);

/*
 * File names are "NAME" (the caller's) or "~UID/NAME" (uid UID's, for UID
 * itself and uid 0; PERMISSION_DENIED for anyone else). The whole replies:
 * (*ret)->file_list (owner NULL or "" for the caller's files, "~UID" for
 * UID's; page with start_after = next),
 * (*ret)->console_read (bytes of the console log from offset; max_bytes 0:
 * as many as fit) and (*ret)->device_read (a device's memory, "fb0", with its
 * geometry).
 */
int cowc_file_list(cowc_conn *c, const char *owner, const char *start_after,
                   Cowd__V1__Response **ret, struct cowc_error *err);
int cowc_console_read(cowc_conn *c, uint64_t offset, uint32_t max_bytes, Cowd__V1__Response **ret,
                      struct cowc_error *err);
int cowc_device_read(cowc_conn *c, const char *device, uint64_t offset, uint64_t length,
                     Cowd__V1__Response **ret, struct cowc_error *err);

/* ---- traces ----------------------------------------------------------- */

enum cowc_trace_kind {
        COWC_TRACE_LOAD = 0,   /* a read */
        COWC_TRACE_STORE = 1,  /* a write (of zeros: a trace carries no values) */
        COWC_TRACE_MODIFY = 2, /* a read, then a write of the same bytes */
        COWC_TRACE_INSTR = 3,  /* an instruction fetch: a read */
};

struct cowc_trace_access {
        uint64_t addr;
        uint32_t size; /* 1 byte to one page */
        enum cowc_trace_kind kind;
};

/* The daemon's limit on accesses in one trace request. */
#define COWC_TRACE_MAX 4096

/*
 * The most accesses one cowc_trace() call may carry on c: COWC_TRACE_MAX,
 * or fewer when the frame limit (from hello) is small.
 */
size_t cowc_trace_batch_max(const cowc_conn *c);

/*
 * Performs n accesses of process pid in order, in one request. Returns 0
 * when all were done; a positive code when the daemon refused the batch
 * (*ret_done = 0) or when access number *ret_done failed (err says why, with
 * its fault; the accesses before it were done, the ones after it not
 * tried); or a negative errno (-E2BIG when n exceeds cowc_trace_batch_max),
 * *ret_done untouched.
 */
int cowc_trace(cowc_conn *c, uint32_t pid, const struct cowc_trace_access *acc, size_t n,
               size_t *ret_done, struct cowc_error *err);

/*
 * The statistics and introspection calls hand over the whole reply; read
 * (*ret)->proc_stats, ->sys_stats, ->page_map or ->list_procs, then
 * cowc_response_free(*ret). The result member is checked to be present.
 * list_procs and list_maps hand back ->list_procs and ->list_maps.
 */
int cowc_proc_stats(cowc_conn *c, uint32_t pid, Cowd__V1__Response **ret,
                    struct cowc_error *err);
int cowc_sys_stats(cowc_conn *c, Cowd__V1__Response **ret, struct cowc_error *err);
int cowc_page_map(cowc_conn *c, uint32_t pid, uint64_t addr, uint64_t length,
                  Cowd__V1__Response **ret, struct cowc_error *err);
/*
 * The list calls page: pass 0 (or the reply's next_pid / next_addr) as the
 * start; a next value of 0 in the reply means the list is complete.
 */
int cowc_list_procs(cowc_conn *c, uint32_t start_pid, Cowd__V1__Response **ret,
                    struct cowc_error *err);
int cowc_list_maps(cowc_conn *c, uint32_t pid, uint64_t start_addr, Cowd__V1__Response **ret,
                   struct cowc_error *err);

/*
 * Asks the daemon to write a checkpoint of its whole state and waits until
 * it is durable; (*ret)->checkpoint says its size and how long it took.
 * Only uid 0 and the daemon's own uid may ask (-EPERM otherwise).
 */
int cowc_checkpoint(cowc_conn *c, Cowd__V1__Response **ret, struct cowc_error *err);

#ifdef __cplusplus
}
#endif

#endif /* COWD_CLIENT_H */
