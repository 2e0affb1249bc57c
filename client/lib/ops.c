/* SPDX-License-Identifier: MIT */
/*
 * One function per operation, each a thin layer over cowc_call(): build the
 * request, check that the reply carries the expected result, copy it out.
 */
#include "cowd/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn-internal.h"

/*
 * Sends req and checks the reply. On success (0) *ret is the reply, which
 * has result member want. On a daemon refusal (> 0) err is filled and the
 * reply is freed. A reply that says OK but lacks the result is -EPROTO.
 */
static int call_expect(cowc_conn *c, const Cowd__V1__Request *req,
                       Cowd__V1__Response__ResultCase want, Cowd__V1__Response **ret,
                       struct cowc_error *err)
{
        Cowd__V1__Response *resp = NULL;
        int r = cowc_call(c, req, &resp);
        if (r < 0)
                return r;
        if (r > 0) {
                cowc_error_from_response(resp, err);
                cowc_response_free(resp);
                return r;
        }
        if (resp->result_case != want) {
                cowc_response_free(resp);
                return -EPROTO;
        }
        *ret = resp;
        return 0;
}

/* For operations whose result carries nothing: call, check, free. */
static int call_simple(cowc_conn *c, const Cowd__V1__Request *req,
                       Cowd__V1__Response__ResultCase want, struct cowc_error *err)
{
        Cowd__V1__Response *resp = NULL;
        int r = call_expect(c, req, want, &resp, err);
        cowc_response_free(resp);
        return r;
}

int cowc_hello(cowc_conn *c, const char *client_name, struct cowc_server_info *ret_info,
               struct cowc_error *err)
{
        Cowd__V1__HelloRequest m = COWD__V1__HELLO_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;
        Cowd__V1__Response *resp = NULL;

        m.protocol_version = COWD__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
        m.client = (char *)(client_name ? client_name : "libcowdclient");
        const char *token = cowc_conn_token(c);
        if (token) {
                m.token.data = (uint8_t *)token;
                m.token.len = strlen(token);
        }
        req.op_case = COWD__V1__REQUEST__OP_HELLO;
        req.hello = &m;
        int r = call_expect(c, &req, COWD__V1__RESPONSE__RESULT_HELLO, &resp, err);
        if (r != 0)
                return r;
        const Cowd__V1__HelloResult *h = resp->hello;
        cowc_conn_set_max_frame(c, h->max_frame_bytes);
        if (ret_info) {
                memset(ret_info, 0, sizeof(*ret_info));
                ret_info->protocol_version = h->protocol_version;
                ret_info->page_size = h->page_size;
                ret_info->max_frame_bytes = h->max_frame_bytes;
                ret_info->uid = h->uid;
                snprintf(ret_info->server_version, sizeof(ret_info->server_version), "%s",
                         h->server_version ? h->server_version : "");
        }
        cowc_response_free(resp);
        return 0;
}

int cowc_spawn(cowc_conn *c, const char *name, uint32_t *ret_pid, struct cowc_error *err)
{
        /* Zero limits, shape and policy are the daemon's defaults (and are not sent). */
        const struct cowc_spawn_args args = { .name = name };

        return cowc_spawn_args(c, &args, ret_pid, err);
}

int cowc_spawn_args(cowc_conn *c, const struct cowc_spawn_args *args, uint32_t *ret_pid,
                    struct cowc_error *err)
{
        Cowd__V1__SpawnRequest m = COWD__V1__SPAWN_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;
        Cowd__V1__Response *resp = NULL;

        m.name = (char *)(args->name ? args->name : "");
        m.max_resident_pages = args->max_resident;
        m.tlb_entries = args->tlb_entries;
        m.tlb_ways = args->tlb_ways;
        m.policy = (Cowd__V1__Policy)args->policy;
        req.op_case = COWD__V1__REQUEST__OP_SPAWN;
        req.spawn = &m;
        int r = call_expect(c, &req, COWD__V1__RESPONSE__RESULT_SPAWN, &resp, err);
        if (r != 0)
                return r;
        *ret_pid = resp->spawn->pid;
        cowc_response_free(resp);
        return 0;
}

int cowc_fork(cowc_conn *c, uint32_t pid, uint32_t *ret_child, struct cowc_error *err)
{
        Cowd__V1__ForkRequest m = COWD__V1__FORK_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;
        Cowd__V1__Response *resp = NULL;

        m.pid = pid;
        req.op_case = COWD__V1__REQUEST__OP_FORK;
        req.fork = &m;
        int r = call_expect(c, &req, COWD__V1__RESPONSE__RESULT_FORK, &resp, err);
        if (r != 0)
                return r;
        *ret_child = resp->fork->child_pid;
        cowc_response_free(resp);
        return 0;
}

int cowc_exit(cowc_conn *c, uint32_t pid, struct cowc_error *err)
{
        Cowd__V1__ExitRequest m = COWD__V1__EXIT_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;

        m.pid = pid;
        req.op_case = COWD__V1__REQUEST__OP_EXIT;
        req.exit = &m;
        return call_simple(c, &req, COWD__V1__RESPONSE__RESULT_EXIT, err);
}

int cowc_mmap(cowc_conn *c, uint32_t pid, const struct cowc_mmap_args *args, uint64_t *ret_addr,
              struct cowc_error *err)
{
        Cowd__V1__MmapRequest m = COWD__V1__MMAP_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;
        Cowd__V1__Response *resp = NULL;

        m.pid = pid;
        m.addr = args->addr;
        m.length = args->length;
        m.prot = args->prot;
        m.shared = args->shared;
        m.fixed = args->fixed;
        m.kind = (Cowd__V1__MapKind)args->kind;
        m.path = (char *)(args->path ? args->path : "");
        m.offset = args->offset;
        req.op_case = COWD__V1__REQUEST__OP_MMAP;
        req.mmap = &m;
        int r = call_expect(c, &req, COWD__V1__RESPONSE__RESULT_MMAP, &resp, err);
        if (r != 0)
                return r;
        *ret_addr = resp->mmap->addr;
        cowc_response_free(resp);
        return 0;
}

int cowc_munmap(cowc_conn *c, uint32_t pid, uint64_t addr, uint64_t length,
                struct cowc_error *err)
{
        Cowd__V1__MunmapRequest m = COWD__V1__MUNMAP_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;

        m.pid = pid;
        m.addr = addr;
        m.length = length;
        req.op_case = COWD__V1__REQUEST__OP_MUNMAP;
        req.munmap = &m;
        return call_simple(c, &req, COWD__V1__RESPONSE__RESULT_MUNMAP, err);
}

int cowc_mprotect(cowc_conn *c, uint32_t pid, uint64_t addr, uint64_t length, uint32_t prot,
                  struct cowc_error *err)
{
        Cowd__V1__MprotectRequest m = COWD__V1__MPROTECT_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;

        m.pid = pid;
        m.addr = addr;
        m.length = length;
        m.prot = prot;
        req.op_case = COWD__V1__REQUEST__OP_MPROTECT;
        req.mprotect = &m;
        return call_simple(c, &req, COWD__V1__RESPONSE__RESULT_MPROTECT, err);
}

int cowc_madvise(cowc_conn *c, uint32_t pid, uint64_t addr, uint64_t length, int advice,
                 struct cowc_error *err)
{
        Cowd__V1__MadviseRequest m = COWD__V1__MADVISE_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;

        m.pid = pid;
        m.addr = addr;
        m.length = length;
        m.advice = (Cowd__V1__Advice)advice;
        req.op_case = COWD__V1__REQUEST__OP_MADVISE;
        req.madvise = &m;
        return call_simple(c, &req, COWD__V1__RESPONSE__RESULT_MADVISE, err);
}

int cowc_read(cowc_conn *c, uint32_t pid, uint64_t addr, void *buf, size_t len,
              struct cowc_error *err)
{
        Cowd__V1__ReadRequest m = COWD__V1__READ_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;
        Cowd__V1__Response *resp = NULL;

        m.pid = pid;
        m.addr = addr;
        m.length = len;
        req.op_case = COWD__V1__REQUEST__OP_READ;
        req.read = &m;
        int r = call_expect(c, &req, COWD__V1__RESPONSE__RESULT_READ, &resp, err);
        if (r != 0)
                return r;
        if (resp->read->data.len != len) {
                cowc_response_free(resp);
                return -EPROTO;
        }
        if (len)
                memcpy(buf, resp->read->data.data, len);
        cowc_response_free(resp);
        return 0;
}

int cowc_write(cowc_conn *c, uint32_t pid, uint64_t addr, const void *buf, size_t len,
               struct cowc_error *err)
{
        Cowd__V1__WriteRequest m = COWD__V1__WRITE_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;

        m.pid = pid;
        m.addr = addr;
        /* protobuf-c's bytes are not const, but packing only reads them. */
        m.data.data = (uint8_t *)(uintptr_t)buf;
        m.data.len = len;
        req.op_case = COWD__V1__REQUEST__OP_WRITE;
        req.write = &m;
        return call_simple(c, &req, COWD__V1__RESPONSE__RESULT_WRITE, err);
}

int cowc_proc_stats(cowc_conn *c, uint32_t pid, Cowd__V1__Response **ret,
                    struct cowc_error *err)
{
        Cowd__V1__ProcStatsRequest m = COWD__V1__PROC_STATS_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;

        m.pid = pid;
        req.op_case = COWD__V1__REQUEST__OP_PROC_STATS;
        req.proc_stats = &m;
        return call_expect(c, &req, COWD__V1__RESPONSE__RESULT_PROC_STATS, ret, err);
}

int cowc_sys_stats(cowc_conn *c, Cowd__V1__Response **ret, struct cowc_error *err)
{
        Cowd__V1__SysStatsRequest m = COWD__V1__SYS_STATS_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;

        req.op_case = COWD__V1__REQUEST__OP_SYS_STATS;
        req.sys_stats = &m;
        return call_expect(c, &req, COWD__V1__RESPONSE__RESULT_SYS_STATS, ret, err);
}

int cowc_page_map(cowc_conn *c, uint32_t pid, uint64_t addr, uint64_t length,
                  Cowd__V1__Response **ret, struct cowc_error *err)
{
        Cowd__V1__PageMapRequest m = COWD__V1__PAGE_MAP_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;

        m.pid = pid;
        m.addr = addr;
        m.length = length;
        req.op_case = COWD__V1__REQUEST__OP_PAGE_MAP;
        req.page_map = &m;
        return call_expect(c, &req, COWD__V1__RESPONSE__RESULT_PAGE_MAP, ret, err);
}

int cowc_list_procs(cowc_conn *c, uint32_t start_pid, Cowd__V1__Response **ret,
                    struct cowc_error *err)
{
        Cowd__V1__ListProcsRequest m = COWD__V1__LIST_PROCS_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;

        m.start_pid = start_pid;
        req.op_case = COWD__V1__REQUEST__OP_LIST_PROCS;
        req.list_procs = &m;
        return call_expect(c, &req, COWD__V1__RESPONSE__RESULT_LIST_PROCS, ret, err);
}

int cowc_list_maps(cowc_conn *c, uint32_t pid, uint64_t start_addr, Cowd__V1__Response **ret,
                   struct cowc_error *err)
{
        Cowd__V1__ListMapsRequest m = COWD__V1__LIST_MAPS_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;

        m.pid = pid;
        m.start_addr = start_addr;
        req.op_case = COWD__V1__REQUEST__OP_LIST_MAPS;
        req.list_maps = &m;
        return call_expect(c, &req, COWD__V1__RESPONSE__RESULT_LIST_MAPS, ret, err);
}

int cowc_checkpoint(cowc_conn *c, Cowd__V1__Response **ret, struct cowc_error *err)
{
        Cowd__V1__CheckpointRequest m = COWD__V1__CHECKPOINT_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;

        req.op_case = COWD__V1__REQUEST__OP_CHECKPOINT;
        req.checkpoint = &m;
        return call_expect(c, &req, COWD__V1__RESPONSE__RESULT_CHECKPOINT, ret, err);
}

/* Wire bytes per trace access (fixed64 + fixed32 + a one-byte kind) and the rest of a request. */
#define TRACE_ACCESS_BYTES 13u
#define TRACE_REQUEST_OVERHEAD 64u

size_t cowc_trace_batch_max(const cowc_conn *c)
{
        uint32_t frame = cowc_conn_max_frame(c);
        size_t fit = frame > TRACE_REQUEST_OVERHEAD
                             ? (frame - TRACE_REQUEST_OVERHEAD) / TRACE_ACCESS_BYTES
                             : 0;

        return fit < COWC_TRACE_MAX ? fit : COWC_TRACE_MAX;
}

int cowc_trace(cowc_conn *c, uint32_t pid, const struct cowc_trace_access *acc, size_t n,
               size_t *ret_done, struct cowc_error *err)
{
        Cowd__V1__TraceRequest m = COWD__V1__TRACE_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;
        Cowd__V1__Response *resp = NULL;
        uint64_t *addrs;
        uint32_t *sizes;
        Cowd__V1__TraceKind *kinds;
        int r;

        if (n > cowc_trace_batch_max(c))
                return -E2BIG;
        /* One block for the three parallel arrays (at least one byte for n = 0). */
        addrs = malloc(n * (sizeof(*addrs) + sizeof(*sizes) + sizeof(*kinds)) + 1);
        if (!addrs)
                return -ENOMEM;
        sizes = (uint32_t *)(addrs + n);
        kinds = (Cowd__V1__TraceKind *)(sizes + n);
        for (size_t i = 0; i < n; i++) {
                addrs[i] = acc[i].addr;
                sizes[i] = acc[i].size;
                kinds[i] = (Cowd__V1__TraceKind)acc[i].kind;
        }
        m.pid = pid;
        m.n_addrs = m.n_sizes = m.n_kinds = n;
        m.addrs = addrs;
        m.sizes = sizes;
        m.kinds = kinds;
        req.op_case = COWD__V1__REQUEST__OP_TRACE;
        req.trace = &m;
        r = call_expect(c, &req, COWD__V1__RESPONSE__RESULT_TRACE, &resp, err);
        free(addrs);
        if (r > 0)
                *ret_done = 0;
        if (r != 0)
                return r;

        const Cowd__V1__TraceResult *t = resp->trace;
        if (t->done > n || (t->done < n && (!t->error || t->error->code == 0)) ||
            (t->done == n && t->error)) {
                cowc_response_free(resp);
                return -EPROTO;
        }
        *ret_done = t->done;
        r = 0;
        if (t->error) {
                r = (int)t->error->code;
                if (err) {
                        memset(err, 0, sizeof(*err));
                        err->code = r;
                        if (t->fault && t->fault->kind != COWD__V1__FAULT_KIND__FAULT_NONE) {
                                err->fault = (int)t->fault->kind;
                                err->fault_addr = t->fault->addr;
                        }
                        if (t->error->message)
                                snprintf(err->message, sizeof(err->message), "%s",
                                         t->error->message);
                }
        }
        cowc_response_free(resp);
        return r;
}

int cowc_msync(cowc_conn *c, uint32_t pid, uint64_t addr, uint64_t length, bool sync,
               struct cowc_error *err)
{
        Cowd__V1__MsyncRequest m = COWD__V1__MSYNC_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;

        m.pid = pid;
        m.addr = addr;
        m.length = length;
        m.sync = sync;
        req.op_case = COWD__V1__REQUEST__OP_MSYNC;
        req.msync = &m;
        return call_simple(c, &req, COWD__V1__RESPONSE__RESULT_MSYNC, err);
}

int cowc_file_put(cowc_conn *c, const char *name, uint64_t offset, const void *data, size_t len,
                  uint64_t *ret_size, struct cowc_error *err)
{
        Cowd__V1__FilePutRequest m = COWD__V1__FILE_PUT_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;
        Cowd__V1__Response *resp = NULL;

        m.name = (char *)name;
        m.offset = offset;
        m.data.data = (uint8_t *)(uintptr_t)data;
        m.data.len = len;
        req.op_case = COWD__V1__REQUEST__OP_FILE_PUT;
        req.file_put = &m;
        int r = call_expect(c, &req, COWD__V1__RESPONSE__RESULT_FILE_PUT, &resp, err);
        if (r != 0)
                return r;
        if (ret_size)
                *ret_size = resp->file_put->size;
        cowc_response_free(resp);
        return 0;
}

int cowc_file_get(cowc_conn *c, const char *name, uint64_t offset, void *buf, size_t len,
                  size_t *ret_n, uint64_t *ret_size, struct cowc_error *err)
{
        Cowd__V1__FileGetRequest m = COWD__V1__FILE_GET_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;
        Cowd__V1__Response *resp = NULL;

        m.name = (char *)name;
        m.offset = offset;
        m.length = len;
        req.op_case = COWD__V1__REQUEST__OP_FILE_GET;
        req.file_get = &m;
        int r = call_expect(c, &req, COWD__V1__RESPONSE__RESULT_FILE_GET, &resp, err);
        if (r != 0)
                return r;
        size_t n = resp->file_get->data.len;
        if (n > len) {
                cowc_response_free(resp);
                return -EPROTO;
        }
        if (n)
                memcpy(buf, resp->file_get->data.data, n);
        *ret_n = n;
        if (ret_size)
                *ret_size = resp->file_get->size;
        cowc_response_free(resp);
        return 0;
}

int cowc_file_remove(cowc_conn *c, const char *name, struct cowc_error *err)
{
        Cowd__V1__FileRemoveRequest m = COWD__V1__FILE_REMOVE_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;

        m.name = (char *)name;
        req.op_case = COWD__V1__REQUEST__OP_FILE_REMOVE;
        req.file_remove = &m;
        return call_simple(c, &req, COWD__V1__RESPONSE__RESULT_FILE_REMOVE, err);
}

int cowc_file_list(cowc_conn *c, const char *owner, const char *start_after,
                   Cowd__V1__Response **ret, struct cowc_error *err)
{
        Cowd__V1__FileListRequest m = COWD__V1__FILE_LIST_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;

        m.owner = (char *)(owner ? owner : "");
        m.start_after = (char *)(start_after ? start_after : "");
        req.op_case = COWD__V1__REQUEST__OP_FILE_LIST;
        req.file_list = &m;
        return call_expect(c, &req, COWD__V1__RESPONSE__RESULT_FILE_LIST, ret, err);
}

int cowc_console_read(cowc_conn *c, uint64_t offset, uint32_t max_bytes, Cowd__V1__Response **ret,
                      struct cowc_error *err)
{
        Cowd__V1__ConsoleReadRequest m = COWD__V1__CONSOLE_READ_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;

        m.offset = offset;
        m.max_bytes = max_bytes;
        req.op_case = COWD__V1__REQUEST__OP_CONSOLE_READ;
        req.console_read = &m;
        return call_expect(c, &req, COWD__V1__RESPONSE__RESULT_CONSOLE_READ, ret, err);
}

int cowc_device_read(cowc_conn *c, const char *device, uint64_t offset, uint64_t length,
                     Cowd__V1__Response **ret, struct cowc_error *err)
{
        Cowd__V1__DeviceReadRequest m = COWD__V1__DEVICE_READ_REQUEST__INIT;
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;

        m.device = (char *)device;
        m.offset = offset;
        m.length = length;
        req.op_case = COWD__V1__REQUEST__OP_DEVICE_READ;
        req.device_read = &m;
        return call_expect(c, &req, COWD__V1__RESPONSE__RESULT_DEVICE_READ, ret, err);
}
