/* SPDX-License-Identifier: MIT */
#include "plain.h"

#include <string.h>

/* Protobuf wire types, and the tags of the fields reads and writes carry (proto/cowd.proto). */
enum {
        WIRE_VARINT = 0,
        WIRE_LEN = 2,
        TAG_ID = 1 << 3 | WIRE_VARINT, /* Request.id and Response.id */
        TAG_REQUEST_READ = COWD__V1__REQUEST__OP_READ << 3 | WIRE_LEN,
        TAG_REQUEST_WRITE = COWD__V1__REQUEST__OP_WRITE << 3 | WIRE_LEN,
        TAG_PID = 1 << 3 | WIRE_VARINT,     /* ReadRequest.pid, WriteRequest.pid */
        TAG_ADDR = 2 << 3 | WIRE_VARINT,    /* ReadRequest.addr, WriteRequest.addr */
        TAG_LENGTH = 3 << 3 | WIRE_VARINT,  /* ReadRequest.length */
        TAG_WRITE_DATA = 3 << 3 | WIRE_LEN, /* WriteRequest.data */
        TAG_RESPONSE_STATUS = 2 << 3 | WIRE_LEN,
        TAG_STATUS_CODE = 1 << 3 | WIRE_VARINT,
        TAG_RESPONSE_READ = COWD__V1__RESPONSE__RESULT_READ << 3 | WIRE_LEN,
        TAG_RESPONSE_WRITE = COWD__V1__RESPONSE__RESULT_WRITE << 3 | WIRE_LEN,
        TAG_READ_DATA = 1 << 3 | WIRE_LEN, /* ReadResult.data */
};

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

/* The size of a varint field, left out when 0 as proto3 does. */
static size_t field_varint_size(uint64_t tag, uint64_t v)
{
        return v ? varint_size(tag) + varint_size(v) : 0;
}

static uint8_t *field_varint_put(uint64_t tag, uint64_t v, uint8_t *p)
{
        return v ? varint_put(v, varint_put(tag, p)) : p;
}

/* ---- requests ------------------------------------------------------------------ */

/*
 * The fields of a ReadRequest (pid, addr, length) or a WriteRequest (pid,
 * addr, data) in p[0..end), into out->op: each field at most once and in
 * field order; data points into the buffer.
 */
static bool decode_op(const uint8_t *p, const uint8_t *end, bool write,
                      struct cow_plain_request *out)
{
        uint64_t last = 0;

        if (write)
                cowd__v1__write_request__init(&out->op.write);
        else
                cowd__v1__read_request__init(&out->op.read);
        while (p < end) {
                uint64_t key, v;

                if (!varint_get(&p, end, &key) || key >> 3 <= last || key >> 3 > 3)
                        return false;
                last = key >> 3;
                if (write && key == TAG_WRITE_DATA) {
                        if (!varint_get(&p, end, &v) || v > (uint64_t)(end - p))
                                return false;
                        /* Empty data is NULL, as protobuf-c leaves it. */
                        out->op.write.data.data = v ? (uint8_t *)p : NULL;
                        out->op.write.data.len = (size_t)v;
                        p += v;
                        continue;
                }
                if ((key & 7) != WIRE_VARINT || !varint_get(&p, end, &v))
                        return false;
                if (key == TAG_PID && v > UINT32_MAX)
                        return false;
                if (write && key == TAG_PID)
                        out->op.write.pid = (uint32_t)v;
                else if (write && key == TAG_ADDR)
                        out->op.write.addr = v;
                else if (write)
                        return false; /* a varint where the data should be */
                else if (key == TAG_PID)
                        out->op.read.pid = (uint32_t)v;
                else if (key == TAG_ADDR)
                        out->op.read.addr = v;
                else
                        out->op.read.length = v;
        }
        return true;
}

bool cow_plain_request_decode(const uint8_t *buf, size_t len, struct cow_plain_request *out)
{
        const uint8_t *p = buf, *end = buf + len;
        Cowd__V1__Request *m = &out->req;
        uint64_t key, v;
        bool write;

        cowd__v1__request__init(m);
        if (!varint_get(&p, end, &key))
                return false;
        if (key == TAG_ID) {
                if (!varint_get(&p, end, &m->id) || !varint_get(&p, end, &key))
                        return false;
        }
        if (key != TAG_REQUEST_READ && key != TAG_REQUEST_WRITE)
                return false;
        write = key == TAG_REQUEST_WRITE;
        /* The op must end the frame: anything after it is not the plain encoding. */
        if (!varint_get(&p, end, &v) || v != (uint64_t)(end - p) || !decode_op(p, end, write, out))
                return false;
        if (write) {
                m->op_case = COWD__V1__REQUEST__OP_WRITE;
                m->write = &out->op.write;
        } else {
                m->op_case = COWD__V1__REQUEST__OP_READ;
                m->read = &out->op.read;
        }
        return true;
}

/* The size of req's op message, or 0 with *ok false if this file does not encode it. */
static size_t op_size(const Cowd__V1__Request *req, bool *ok)
{
        *ok = false;
        if (req->base.n_unknown_fields)
                return 0;
        if (req->op_case == COWD__V1__REQUEST__OP_READ && req->read &&
            !req->read->base.n_unknown_fields) {
                *ok = true;
                return field_varint_size(TAG_PID, req->read->pid) +
                       field_varint_size(TAG_ADDR, req->read->addr) +
                       field_varint_size(TAG_LENGTH, req->read->length);
        }
        if (req->op_case == COWD__V1__REQUEST__OP_WRITE && req->write &&
            !req->write->base.n_unknown_fields) {
                size_t n = req->write->data.len;

                *ok = true;
                return field_varint_size(TAG_PID, req->write->pid) +
                       field_varint_size(TAG_ADDR, req->write->addr) +
                       (n ? varint_size(TAG_WRITE_DATA) + varint_size(n) + n : 0);
        }
        return 0;
}

size_t cow_plain_request_size(const Cowd__V1__Request *req)
{
        bool ok;
        size_t op = op_size(req, &ok);

        if (!ok)
                return 0;
        /* Both op tags are two bytes long (fields 17 and 18). */
        return field_varint_size(TAG_ID, req->id) + 2 + varint_size(op) + op;
}

void cow_plain_request_pack(const Cowd__V1__Request *req, uint8_t *out)
{
        bool ok;
        size_t op = op_size(req, &ok);
        uint8_t *p = field_varint_put(TAG_ID, req->id, out);

        if (req->op_case == COWD__V1__REQUEST__OP_READ) {
                p = varint_put(TAG_REQUEST_READ, p);
                p = varint_put(op, p);
                p = field_varint_put(TAG_PID, req->read->pid, p);
                p = field_varint_put(TAG_ADDR, req->read->addr, p);
                (void)field_varint_put(TAG_LENGTH, req->read->length, p);
                return;
        }
        p = varint_put(TAG_REQUEST_WRITE, p);
        p = varint_put(op, p);
        p = field_varint_put(TAG_PID, req->write->pid, p);
        p = field_varint_put(TAG_ADDR, req->write->addr, p);
        if (req->write->data.len) {
                p = varint_put(TAG_WRITE_DATA, p);
                p = varint_put(req->write->data.len, p);
                memcpy(p, req->write->data.data, req->write->data.len);
        }
}

/* ---- replies --------------------------------------------------------------------- */

bool cow_plain_response_decode(const uint8_t *buf, size_t len, struct cow_plain_response *out)
{
        const uint8_t *p = buf, *end = buf + len;
        const uint8_t *sub_end;
        Cowd__V1__Response *m = &out->resp;
        uint64_t key, v;

        cowd__v1__response__init(m);
        cowd__v1__status__init(&out->status);
        if (!varint_get(&p, end, &key))
                return false;
        if (key == TAG_ID) {
                if (!varint_get(&p, end, &m->id) || !varint_get(&p, end, &key))
                        return false;
        }
        /* The status, with at most a code: a message or anything else is not taken here. */
        if (key != TAG_RESPONSE_STATUS || !varint_get(&p, end, &v) || v > (uint64_t)(end - p))
                return false;
        sub_end = p + v;
        if (p < sub_end) {
                if (!varint_get(&p, sub_end, &key) || key != TAG_STATUS_CODE ||
                    !varint_get(&p, sub_end, &v) || v > INT32_MAX || p != sub_end)
                        return false;
                out->status.code = (Cowd__V1__Code)v;
        }
        m->status = &out->status;
        /* The result, which must end the frame. */
        if (!varint_get(&p, end, &key) || !varint_get(&p, end, &v) || v != (uint64_t)(end - p))
                return false;
        if (key == TAG_RESPONSE_WRITE) {
                if (v != 0)
                        return false;
                cowd__v1__write_result__init(&out->result.write);
                m->result_case = COWD__V1__RESPONSE__RESULT_WRITE;
                m->write = &out->result.write;
                return true;
        }
        if (key != TAG_RESPONSE_READ)
                return false;
        cowd__v1__read_result__init(&out->result.read);
        if (p < end) {
                if (!varint_get(&p, end, &key) || key != TAG_READ_DATA ||
                    !varint_get(&p, end, &v) || v != (uint64_t)(end - p))
                        return false;
                out->result.read.data.data = v ? (uint8_t *)p : NULL;
                out->result.read.data.len = (size_t)v;
        }
        m->result_case = COWD__V1__RESPONSE__RESULT_READ;
        m->read = &out->result.read;
        return true;
}

/* Whether resp's status is a plain OK (no message) and it carries no fault or unknown field. */
static bool plain_ok(const Cowd__V1__Response *resp)
{
        const Cowd__V1__Status *st = resp->status;

        return !resp->fault && st && st->code == COWD__V1__CODE__OK &&
               (!st->message || !st->message[0]) && !st->base.n_unknown_fields &&
               !resp->base.n_unknown_fields;
}

size_t cow_plain_write_reply_size(const Cowd__V1__Response *resp)
{
        if (resp->result_case != COWD__V1__RESPONSE__RESULT_WRITE || !resp->write ||
            resp->write->base.n_unknown_fields || !plain_ok(resp))
                return 0;
        /* id, an empty status, an empty write result (its tag is two bytes: field 18). */
        return field_varint_size(TAG_ID, resp->id) + 2 + 3;
}

void cow_plain_write_reply_pack(const Cowd__V1__Response *resp, uint8_t *p)
{
        p = field_varint_put(TAG_ID, resp->id, p);
        p = varint_put(TAG_RESPONSE_STATUS, p);
        *p++ = 0;
        p = varint_put(TAG_RESPONSE_WRITE, p);
        *p = 0;
}

/*
 * The fields in the order protobuf-c writes them: id (left out when 0),
 * status (always present: an empty message for OK), then read { data }.
 */
size_t cow_plain_read_prefix_size(uint64_t id, size_t len)
{
        size_t inner = varint_size(TAG_READ_DATA) + varint_size(len) + len;

        return field_varint_size(TAG_ID, id) + varint_size(TAG_RESPONSE_STATUS) + 1 +
               varint_size(TAG_RESPONSE_READ) + varint_size(inner) +
               varint_size(TAG_READ_DATA) + varint_size(len);
}

size_t cow_plain_read_prefix_pack(const Cowd__V1__Response *resp, uint8_t *out)
{
        size_t len, inner;
        uint8_t *p = out;

        if (resp->result_case != COWD__V1__RESPONSE__RESULT_READ || !resp->read ||
            resp->read->base.n_unknown_fields || !plain_ok(resp))
                return 0;
        len = resp->read->data.len;
        if (len == 0)
                return 0; /* proto3 leaves an empty data field out */
        inner = varint_size(TAG_READ_DATA) + varint_size(len) + len;
        p = field_varint_put(TAG_ID, resp->id, p);
        p = varint_put(TAG_RESPONSE_STATUS, p);
        *p++ = 0; /* an empty Status: code OK, no message */
        p = varint_put(TAG_RESPONSE_READ, p);
        p = varint_put(inner, p);
        p = varint_put(TAG_READ_DATA, p);
        p = varint_put(len, p);
        return (size_t)(p - out);
}
