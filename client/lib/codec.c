/* SPDX-License-Identifier: MIT */
#include "codec.h"

#include <errno.h>
#include <stdlib.h>

#include "frame.h"
#include "plain.h"

void cowc_buf_release(struct cowc_buf *b)
{
        free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
}

/* Makes room for extra more bytes after b->len. */
static int buf_reserve(struct cowc_buf *b, size_t extra)
{
        if (b->cap - b->len >= extra)
                return 0;
        size_t want = b->cap ? b->cap : 256;
        while (want - b->len < extra) {
                if (want > SIZE_MAX / 2)
                        return -ENOMEM;
                want *= 2;
        }
        uint8_t *p = realloc(b->data, want);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->cap = want;
        return 0;
}

/*
 * Reads and writes, which carry the data, are encoded without protobuf-c
 * when they can be (proto/plain.h: the same bytes, without its descriptor
 * walks); everything else by protobuf-c.
 */
size_t cowc_codec_request_size(const Cowd__V1__Request *req)
{
        size_t n = cow_plain_request_size(req);

        return n ? n : cowd__v1__request__get_packed_size(req);
}

void cowc_codec_request_pack(const Cowd__V1__Request *req, uint8_t *out)
{
        if (cow_plain_request_size(req))
                cow_plain_request_pack(req, out);
        else
                cowd__v1__request__pack(req, out);
}

int cowc_codec_append_request(struct cowc_buf *out, const Cowd__V1__Request *req, uint32_t max)
{
        size_t len = cowc_codec_request_size(req);
        if (len == 0 || len > max)
                return -EMSGSIZE;
        int r = buf_reserve(out, COW_FRAME_HEADER + len);
        if (r < 0)
                return r;
        cow_frame_header((uint32_t)len, out->data + out->len);
        cowc_codec_request_pack(req, out->data + out->len + COW_FRAME_HEADER);
        out->len += COW_FRAME_HEADER + len;
        return 0;
}

/*
 * protobuf-c allocates as it decodes. A decoded message takes at most a
 * small multiple of its wire size (every field header byte can become a
 * pointer-sized struct member), so a budget of 64 bytes per wire byte plus
 * a floor is generous for honest replies and stops absurd ones.
 */
struct budget {
        size_t left;
};

static void *budget_alloc(void *data, size_t size)
{
        struct budget *b = data;
        if (size > b->left)
                return NULL;
        b->left -= size;
        return malloc(size);
}

/* Frees go straight to free(): cowc_response_free() can then pass no allocator. */
static void budget_free(void *data, void *ptr)
{
        (void)data;
        free(ptr);
}

int cowc_codec_unpack_response(const uint8_t *payload, size_t len, Cowd__V1__Response **ret)
{
        struct budget b = { .left = 4096 + (len > SIZE_MAX / 64 ? SIZE_MAX / 2 : len * 64) };
        ProtobufCAllocator alloc = {
                .alloc = budget_alloc,
                .free = budget_free,
                .allocator_data = &b,
        };
        Cowd__V1__Response *resp = cowd__v1__response__unpack(&alloc, len, payload);
        if (!resp)
                return -EPROTO;
        *ret = resp;
        return 0;
}
