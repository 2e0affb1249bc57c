/* SPDX-License-Identifier: MIT */
#include "pages.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The lowest address the daemon gives a mapping when it chooses. */
#define SCAN_START 0x10000ull
/* With no range, stop looking after this much address space: mappings placed above need a range. */
#define SCAN_LIMIT (16ull << 30)
/* Pages per page_map request, and requests in flight at once. */
#define CHUNK_PAGES 8192ull
#define PIPELINE_DEPTH 8

void page_list_release(struct page_list *l)
{
        free(l->pages);
        memset(l, 0, sizeof(*l));
}

static int page_list_add(struct page_list *l, const Cowd__V1__PageEntry *e)
{
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 256;
                struct page *p = realloc(l->pages, cap * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                l->pages = p;
                l->cap = cap;
        }
        l->pages[l->n++] = (struct page){
                .addr = e->addr,
                .frame = e->frame,
                .sharers = e->sharers,
                .prot = e->prot,
                .mapped = e->mapped,
                .present = e->present,
                .writable = e->writable,
                .cow = e->cow,
                .zero = e->zero,
                .in_tlb = e->in_tlb,
                .shared = e->shared,
        };
        return 0;
}

const char *page_flags(const struct page *p, char *buf, size_t len)
{
        static const struct {
                size_t off;
                const char *name;
        } flags[] = {
                { offsetof(struct page, present), "present" },
                { offsetof(struct page, writable), "writable" },
                { offsetof(struct page, cow), "cow" },
                { offsetof(struct page, zero), "zero" },
                { offsetof(struct page, shared), "shared" },
                { offsetof(struct page, in_tlb), "tlb" },
        };
        size_t o = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
                if (!*((const bool *)((const char *)p + flags[i].off)))
                        continue;
                int n = snprintf(buf + o, len - o, "%s%s", o ? "," : "", flags[i].name);
                if (n < 0 || (size_t)n >= len - o)
                        break;
                o += (size_t)n;
        }
        if (!o)
                snprintf(buf, len, "-");
        return buf;
}

/* Sends up to PIPELINE_DEPTH chunk requests from *next; receives them all. */
static int collect_batch(struct cmd_ctx *ctx, uint32_t pid, uint64_t *next, uint64_t end,
                         uint64_t *mapped_seen, struct page_list *ret)
{
        uint64_t chunk = CHUNK_PAGES * ctx->page_size;
        int queued = 0, first_err = 0;

        while (queued < PIPELINE_DEPTH && *next < end) {
                Cowd__V1__PageMapRequest m = COWD__V1__PAGE_MAP_REQUEST__INIT;
                Cowd__V1__Request req = COWD__V1__REQUEST__INIT;
                m.pid = pid;
                m.addr = *next;
                m.length = end - *next < chunk ? end - *next : chunk;
                req.op_case = COWD__V1__REQUEST__OP_PAGE_MAP;
                req.page_map = &m;
                int r = cowc_queue(ctx->conn, &req, NULL);
                if (r < 0)
                        return r;
                *next += m.length;
                queued++;
        }
        /* Every queued reply must be read, even after a failure, to stay in step. */
        for (int i = 0; i < queued; i++) {
                Cowd__V1__Response *resp = NULL;
                int r = cowc_receive(ctx->conn, &resp);
                if (r < 0)
                        return r;
                if (r > 0 && !first_err) {
                        cowc_error_from_response(resp, &ctx->err);
                        first_err = r;
                }
                if (r == 0 && resp->result_case == COWD__V1__RESPONSE__RESULT_PAGE_MAP) {
                        for (size_t k = 0; k < resp->page_map->n_pages && !first_err; k++) {
                                const Cowd__V1__PageEntry *e = resp->page_map->pages[k];
                                if (!e->mapped)
                                        continue;
                                (*mapped_seen)++;
                                if (page_list_add(ret, e) < 0)
                                        first_err = -ENOMEM;
                        }
                }
                cowc_response_free(resp);
        }
        return first_err;
}

int pages_collect(struct cmd_ctx *ctx, uint32_t pid, uint64_t addr, uint64_t len,
                  struct page_list *ret)
{
        Cowd__V1__Response *stats = NULL;
        uint64_t want_pages = UINT64_MAX, mapped_seen = 0, next, end;
        int r = cmd_connect(ctx);
        if (r < 0)
                return r;
        uint64_t ps = ctx->page_size;

        if (len == 0) {
                r = cowc_proc_stats(ctx->conn, pid, &stats, &ctx->err);
                if (r != 0)
                        return r;
                want_pages = (stats->proc_stats->vsize_bytes + ps - 1) / ps;
                cowc_response_free(stats);
                next = SCAN_START;
                end = SCAN_START + SCAN_LIMIT;
        } else {
                next = addr & ~(ps - 1);
                end = addr + len;
                if (end < addr)
                        return cmd_fail(ctx, -EINVAL, "range wraps around the address space");
                end = (end + ps - 1) & ~(ps - 1);
        }

        while (next < end && mapped_seen < want_pages) {
                r = collect_batch(ctx, pid, &next, end, &mapped_seen, ret);
                if (r != 0)
                        return r;
        }
        if (len == 0) {
                ret->scan_end = next;
                ret->incomplete = mapped_seen < want_pages;
        }
        return 0;
}
