/* SPDX-License-Identifier: MIT */
#include "pages.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
                .swapped = e->swapped,
                .swap_slot = e->swap_slot,
                .file = e->file,
                .dirty = e->dirty,
                .device = e->device,
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
                { offsetof(struct page, swapped), "swapped" },
                { offsetof(struct page, file), "file" },
                { offsetof(struct page, dirty), "dirty" },
                { offsetof(struct page, device), "device" },
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
                         struct page_list *ret)
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
                if (r < 0) {
                        /* Replies to what was already queued must still be drained. */
                        first_err = r;
                        break;
                }
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
                                if (page_list_add(ret, e) < 0)
                                        first_err = -ENOMEM;
                        }
                }
                cowc_response_free(resp);
        }
        return first_err;
}

/* Collects every page of [next, end), pipelining page_map requests. */
static int collect_range(struct cmd_ctx *ctx, uint32_t pid, uint64_t next, uint64_t end,
                         struct page_list *ret)
{
        while (next < end) {
                int r = collect_batch(ctx, pid, &next, end, ret);
                if (r != 0)
                        return r;
        }
        return 0;
}

int pages_collect(struct cmd_ctx *ctx, uint32_t pid, uint64_t addr, uint64_t len,
                  struct page_list *ret)
{
        int r = cmd_connect(ctx);
        if (r < 0)
                return r;
        uint64_t ps = ctx->page_size;

        if (len != 0) {
                uint64_t end = addr + len;
                if (end < addr)
                        return cmd_fail(ctx, -EINVAL, "range wraps around the address space");
                return collect_range(ctx, pid, addr & ~(ps - 1), (end + ps - 1) & ~(ps - 1), ret);
        }

        /* Every mapping, a page of the list at a time. */
        uint64_t start = 0;
        do {
                Cowd__V1__Response *maps = NULL;
                r = cowc_list_maps(ctx->conn, pid, start, &maps, &ctx->err);
                if (r != 0)
                        return r;
                const Cowd__V1__ListMapsResult *lm = maps->list_maps;
                for (size_t i = 0; i < lm->n_maps && r == 0; i++)
                        r = collect_range(ctx, pid, lm->maps[i]->addr,
                                          lm->maps[i]->addr + lm->maps[i]->length, ret);
                start = lm->next_addr;
                cowc_response_free(maps);
        } while (r == 0 && start != 0);
        return r;
}
