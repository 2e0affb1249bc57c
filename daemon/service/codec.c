/* SPDX-License-Identifier: MIT */
#include "codec.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

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
        /* Decoded in place (decode_in_place()): message points at these, not at protobuf-c's. */
        bool in_place;
        Cowd__V1__Request in_place_request;
        union {
                Cowd__V1__ReadRequest read;
                Cowd__V1__WriteRequest write;
        } in_place_op;
};

/* Protobuf wire types and the tags of the fields that reads and writes carry (proto/cowd.proto). */
enum {
        WIRE_VARINT = 0,
        WIRE_LEN = 2,
        TAG_RESPONSE_ID = 1 << 3 | WIRE_VARINT,
        TAG_RESPONSE_STATUS = 2 << 3 | WIRE_LEN,
        TAG_RESPONSE_READ = COWD__V1__RESPONSE__RESULT_READ << 3 | WIRE_LEN,
        TAG_READ_DATA = 1 << 3 | WIRE_LEN,
        TAG_REQUEST_ID = 1 << 3 | WIRE_VARINT,
        TAG_REQUEST_READ = COWD__V1__REQUEST__OP_READ << 3 | WIRE_LEN,
        TAG_REQUEST_WRITE = COWD__V1__REQUEST__OP_WRITE << 3 | WIRE_LEN,
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

/* Reads a varint at *p, before end. False if it is cut short or does not fit 64 bits. */
static bool varint_get(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
        uint64_t v = 0;

        for (unsigned shift = 0; shift < 64; shift += 7) {
                uint8_t b;

                if (*p == end)
                        return false;
                b = *(*p)++;
                if (shift == 63 && b > 1)
                        return false;
                v |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *ret = v;
                        return true;
                }
        }
        return false;
}

/*
 * The fields of a ReadRequest (pid, addr, length) or a WriteRequest (pid,
 * addr, data) in buf[0..len), into req's in-place op. Each field at most once
 * and in field order; data points into buf.
 */
static bool decode_read_write(const uint8_t *p, const uint8_t *end, bool write,
                              struct cow_codec_request *req)
{
        uint64_t last = 0;

        if (write)
                cowd__v1__write_request__init(&req->in_place_op.write);
        else
                cowd__v1__read_request__init(&req->in_place_op.read);
        while (p < end) {
                uint64_t key, v;

                if (!varint_get(&p, end, &key) || key >> 3 <= last || key >> 3 > 3)
                        return false;
                last = key >> 3;
                if (write && last == 3) {
                        if ((key & 7) != WIRE_LEN || !varint_get(&p, end, &v) ||
                            v > (uint64_t)(end - p))
                                return false;
                        /* Empty data is NULL, as protobuf-c leaves it. */
                        req->in_place_op.write.data.data = v ? (uint8_t *)p : NULL;
                        req->in_place_op.write.data.len = (size_t)v;
                        p += v;
                        continue;
                }
                if ((key & 7) != WIRE_VARINT || !varint_get(&p, end, &v))
                        return false;
                if (last == 1 && v > UINT32_MAX)
                        return false;
                if (write && last == 1)
                        req->in_place_op.write.pid = (uint32_t)v;
                else if (write)
                        req->in_place_op.write.addr = v;
                else if (last == 1)
                        req->in_place_op.read.pid = (uint32_t)v;
                else if (last == 2)
                        req->in_place_op.read.addr = v;
                else
                        req->in_place_op.read.length = v;
        }
        return true;
}

/*
 * The requests that carry the data, reads and writes, decoded without
 * protobuf-c: no allocation, and a write's data is not copied but points
 * into buf. Only the plainest encoding is taken, the one every protobuf
 * library writes: the id (if any), then the read or write, each field once,
 * in field order, nothing unknown. For those bytes protobuf-c would decode
 * the same values (test_codec checks it); anything else returns false and
 * goes to protobuf-c.
 */
static bool decode_in_place(const uint8_t *buf, size_t len, struct cow_codec_request *req)
{
        const uint8_t *p = buf, *end = buf + len;
        Cowd__V1__Request *m = &req->in_place_request;
        uint64_t key, v;
        bool write;

        cowd__v1__request__init(m);
        if (!varint_get(&p, end, &key))
                return false;
        if (key == TAG_REQUEST_ID) {
                if (!varint_get(&p, end, &m->id) || !varint_get(&p, end, &key))
                        return false;
        }
        if (key != TAG_REQUEST_READ && key != TAG_REQUEST_WRITE)
                return false;
        write = key == TAG_REQUEST_WRITE;
        /* The op must end the frame: anything after it is not the plain encoding. */
        if (!varint_get(&p, end, &v) || v != (uint64_t)(end - p) ||
            !decode_read_write(p, end, write, req))
                return false;
        if (write) {
                m->op_case = COWD__V1__REQUEST__OP_WRITE;
                m->write = &req->in_place_op.write;
        } else {
                m->op_case = COWD__V1__REQUEST__OP_READ;
                m->read = &req->in_place_op.read;
        }
        req->in_place = true;
        req->message = m;
        return true;
}

int cow_codec_request_unpack(const uint8_t *buf, size_t len, cow_codec_request **ret)
{
        struct cow_codec_request *req;

        req = malloc(sizeof(*req));
        if (!req)
                return -ENOMEM;
        if (decode_in_place(buf, len, req)) {
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

size_t cow_codec_response_size(const Cowd__V1__Response *resp)
{
        return cowd__v1__response__get_packed_size(resp);
}

void cow_codec_response_pack(const Cowd__V1__Response *resp, uint8_t *out)
{
        cowd__v1__response__pack(resp, out);
}

static size_t varint_size(uint64_t v)
{
        size_t n = 1;

        while (v >= 0x80) {
                v >>= 7;
                n++;
        }
        return n;
}

static uint8_t *varint_put(uint64_t v, uint8_t *p)
{
        while (v >= 0x80) {
                *p++ = (uint8_t)(v | 0x80);
                v >>= 7;
        }
        *p++ = (uint8_t)v;
        return p;
}

/*
 * The fields in the order protobuf-c writes them, field number order: id
 * (left out when 0, as proto3 does), status (always present: an empty
 * message for OK), then read { data }.
 */
size_t cow_codec_read_prefix_size(uint64_t id, size_t len)
{
        size_t inner = varint_size(TAG_READ_DATA) + varint_size(len) + len;

        return (id ? varint_size(TAG_RESPONSE_ID) + varint_size(id) : 0) +
               varint_size(TAG_RESPONSE_STATUS) + 1 +
               varint_size(TAG_RESPONSE_READ) + varint_size(inner) +
               varint_size(TAG_READ_DATA) + varint_size(len);
}

size_t cow_codec_read_prefix_pack(const Cowd__V1__Response *resp, uint8_t *out)
{
        const Cowd__V1__Status *st = resp->status;
        size_t len, inner;
        uint8_t *p = out;

        if (resp->result_case != COWD__V1__RESPONSE__RESULT_READ || !resp->read || resp->fault ||
            !st || st->code != COWD__V1__CODE__OK || (st->message && st->message[0]) ||
            resp->read->base.n_unknown_fields || resp->base.n_unknown_fields ||
            st->base.n_unknown_fields)
                return 0;
        len = resp->read->data.len;
        if (len == 0)
                return 0; /* proto3 leaves an empty data field out */
        inner = varint_size(TAG_READ_DATA) + varint_size(len) + len;
        if (resp->id) {
                p = varint_put(TAG_RESPONSE_ID, p);
                p = varint_put(resp->id, p);
        }
        p = varint_put(TAG_RESPONSE_STATUS, p);
        *p++ = 0; /* an empty Status: code OK, no message */
        p = varint_put(TAG_RESPONSE_READ, p);
        p = varint_put(inner, p);
        p = varint_put(TAG_READ_DATA, p);
        p = varint_put(len, p);
        return (size_t)(p - out);
}
