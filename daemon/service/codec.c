/* SPDX-License-Identifier: MIT */
#include "codec.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "plain.h"

/*
 * A decoded request keeps the allocator it was decoded with: protobuf-c calls
 * the same allocator's free() from __free_unpacked, so the two must live and
 * die together.
 */
struct cow_codec_request {
        ProtobufCAllocator allocator;
        size_t budget;    /* bytes decoding may still allocate */
        bool over_budget; /* an allocation was refused for the budget */
        bool out_of_memory; /* malloc itself failed */
        Cowd__V1__Request *message;
        /* Decoded in place (cow_plain_request_decode()): message points into plain. */
        bool in_place;
        struct cow_plain_request plain;
};

/*
 * A request holds at most one op, and its only variable-sized parts are the
 * strings and bytes it carries, which protobuf-c copies: a well-formed
 * request costs about its own size plus the fixed structs. Twice the frame
 * plus some room for those structs admits every honest request and still
 * refuses frames crafted to expand (each unknown field costs a struct and a
 * copy, far more than the two or three bytes it takes on the wire).
 */
size_t cow_codec_unpack_budget(size_t len)
{
        return 2 * len + 16 * 1024;
}

/* protobuf-c's allocation hook while decoding: malloc, within the budget. */
static void *budget_alloc(void *data, size_t size)
{
        struct cow_codec_request *req = data;
        void *p;

        if (size > req->budget) {
                req->over_budget = true;
                return NULL;
        }
        /* Charged, never refunded: the budget bounds one decode, not a working set. */
        req->budget -= size;
        p = malloc(size);
        if (!p)
                req->out_of_memory = true;
        return p;
}

static void budget_free(void *data, void *ptr)
{
        (void)data;
        free(ptr);
}

int cow_codec_request_unpack(const uint8_t *buf, size_t len, cow_codec_request **ret)
{
        struct cow_codec_request *req;

        /*
         * Reads and writes, the requests that carry data, skip protobuf-c when
         * they are in the plain encoding (proto/plain.h): no allocation but
         * this one, and a write's data is not copied out of the frame.
         */
        req = malloc(sizeof(*req));
        if (!req)
                return -ENOMEM;
        if (cow_plain_request_decode(buf, len, &req->plain)) {
                req->in_place = true;
                req->message = &req->plain.req;
                *ret = req;
                return 0;
        }
        free(req);
        return cow_codec_request_unpack_generic(buf, len, ret);
}

int cow_codec_request_unpack_generic(const uint8_t *buf, size_t len, cow_codec_request **ret)
{
        struct cow_codec_request *req;
        int r;

        req = calloc(1, sizeof(*req));
        if (!req)
                return -ENOMEM;
        req->allocator.alloc = budget_alloc;
        req->allocator.free = budget_free;
        req->allocator.allocator_data = req;
        req->budget = cow_codec_unpack_budget(len);

        req->message = cowd__v1__request__unpack(&req->allocator, len, buf);
        if (!req->message) {
                /* protobuf-c says only "failed"; the allocator knows whether it refused. */
                r = req->over_budget ? -ENOBUFS : req->out_of_memory ? -ENOMEM : -EBADMSG;
                goto fail;
        }
        *ret = req;
        return 0;
fail:
        free(req);
        return r;
}

const Cowd__V1__Request *cow_codec_request_message(const cow_codec_request *req)
{
        return req->message;
}

bool cow_codec_request_in_place(const cow_codec_request *req)
{
        return req->in_place;
}

void cow_codec_request_free(cow_codec_request *req)
{
        if (!req)
                return;
        if (req->message && !req->in_place)
                cowd__v1__request__free_unpacked(req->message, &req->allocator);
        free(req);
}

/*
 * A write's OK reply, the commonest, is a few fixed bytes: protobuf-c's walk
 * of the Response descriptor to size and then pack it cost 1,500
 * instructions (proto/plain.h writes the same bytes).
 */
size_t cow_codec_response_size(const Cowd__V1__Response *resp)
{
        size_t n = cow_plain_write_reply_size(resp);

        return n ? n : cowd__v1__response__get_packed_size(resp);
}

void cow_codec_response_pack(const Cowd__V1__Response *resp, uint8_t *out)
{
        if (cow_plain_write_reply_size(resp))
                cow_plain_write_reply_pack(resp, out);
        else
                cowd__v1__response__pack(resp, out);
}

size_t cow_codec_read_prefix_size(uint64_t id, size_t len)
{
        return cow_plain_read_prefix_size(id, len);
}

size_t cow_codec_read_prefix_pack(const Cowd__V1__Response *resp, uint8_t *out)
{
        return cow_plain_read_prefix_pack(resp, out);
}
