/* SPDX-License-Identifier: MIT */
/*
 * What codec.h does without protobuf-c, against protobuf-c itself.
 *
 * The read reply made in place: its prefix followed by the data must be byte
 * for byte what protobuf-c packs for the same Response, for every id and
 * length whose varints change size, and anything but a plain OK read must be
 * refused.
 *
 * Reads and writes decoded in place: whatever bytes the in-place decoder
 * takes, protobuf-c must decode to the same values; it must take the plain
 * encoding of every read and write; and anything it declines must still
 * decode, through protobuf-c. The same for the client's side
 * (proto/plain.h): requests it encodes are byte for byte protobuf-c's, and
 * read and write replies it decodes in place agree with protobuf-c.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"
#include "plain.h"

/* Packs an OK read reply both ways and compares them. */
static void check_read_reply(uint64_t id, size_t len)
{
        Cowd__V1__Response resp = COWD__V1__RESPONSE__INIT;
        Cowd__V1__Status status = COWD__V1__STATUS__INIT;
        Cowd__V1__ReadResult read = COWD__V1__READ_RESULT__INIT;
        uint8_t *data = malloc(len);
        uint8_t prefix[COW_CODEC_READ_PREFIX_MAX];
        uint8_t *whole, *mine;
        size_t size, n;

        assert_non_null(data);
        for (size_t i = 0; i < len; i++)
                data[i] = (uint8_t)(i * 7 + id);
        resp.id = id;
        resp.status = &status;
        resp.result_case = COWD__V1__RESPONSE__RESULT_READ;
        resp.read = &read;
        read.data.data = data;
        read.data.len = len;

        size = cow_codec_response_size(&resp);
        whole = malloc(size);
        mine = malloc(size);
        assert_non_null(whole);
        assert_non_null(mine);
        cow_codec_response_pack(&resp, whole);

        n = cow_codec_read_prefix_pack(&resp, prefix);
        assert_int_equal(n, cow_codec_read_prefix_size(id, len));
        assert_true(n <= COW_CODEC_READ_PREFIX_MAX);
        assert_int_equal(n + len, size);
        memcpy(mine, prefix, n);
        memcpy(mine + n, data, len);
        assert_memory_equal(mine, whole, size);
        free(mine);
        free(whole);
        free(data);
}

static void test_prefix_and_data_equal_the_packed_reply(void **state)
{
        /* Each side of every varint size change in the id and the two lengths. */
        static const uint64_t ids[] = { 0, 1, 127, 128, 16383, 16384, UINT32_MAX, UINT64_MAX };
        static const size_t lens[] = { 1, 2, 120, 121, 122, 123, 124, 125, 126, 127, 128,
                                       4096, 16377, 16378, 16379, 16380, 16381, 16382, 16383,
                                       16384, 1u << 20, (1u << 21) - 3, 1u << 21 };

        (void)state;
        for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
                for (size_t j = 0; j < sizeof(lens) / sizeof(lens[0]); j++)
                        check_read_reply(ids[i], lens[j]);
}

static void test_write_replies_encode_as_protobuf_c_does(void **state)
{
        static const uint64_t ids[] = { 0, 1, 127, 128, 16384, UINT32_MAX, UINT64_MAX };
        Cowd__V1__Response resp = COWD__V1__RESPONSE__INIT;
        Cowd__V1__Status status = COWD__V1__STATUS__INIT;
        Cowd__V1__WriteResult write = COWD__V1__WRITE_RESULT__INIT;
        Cowd__V1__Fault fault = COWD__V1__FAULT__INIT;
        uint8_t want[64], got[64];

        (void)state;
        resp.status = &status;
        resp.result_case = COWD__V1__RESPONSE__RESULT_WRITE;
        resp.write = &write;
        for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
                size_t n;

                resp.id = ids[i];
                n = cowd__v1__response__pack(&resp, want);
                assert_int_equal(cow_plain_write_reply_size(&resp), n);
                assert_int_equal(cow_codec_response_size(&resp), n);
                cow_codec_response_pack(&resp, got);
                assert_memory_equal(got, want, n);
        }
        /* Anything more than a plain OK is left to protobuf-c. */
        status.code = COWD__V1__CODE__NOT_FOUND;
        assert_int_equal(cow_plain_write_reply_size(&resp), 0);
        status.code = COWD__V1__CODE__OK;
        status.message = (char *)"why";
        assert_int_equal(cow_plain_write_reply_size(&resp), 0);
        status.message = (char *)"";
        resp.fault = &fault;
        assert_int_equal(cow_plain_write_reply_size(&resp), 0);
        resp.fault = NULL;
        resp.result_case = COWD__V1__RESPONSE__RESULT__NOT_SET;
        assert_int_equal(cow_plain_write_reply_size(&resp), 0);
}

static void test_anything_but_a_plain_ok_read_is_refused(void **state)
{
        Cowd__V1__Response resp = COWD__V1__RESPONSE__INIT;
        Cowd__V1__Status status = COWD__V1__STATUS__INIT;
        Cowd__V1__ReadResult read = COWD__V1__READ_RESULT__INIT;
        Cowd__V1__Fault fault = COWD__V1__FAULT__INIT;
        Cowd__V1__WriteResult write = COWD__V1__WRITE_RESULT__INIT;
        uint8_t data[16] = { 1 };
        uint8_t prefix[COW_CODEC_READ_PREFIX_MAX];

        (void)state;
        resp.id = 9;
        resp.status = &status;
        resp.result_case = COWD__V1__RESPONSE__RESULT_READ;
        resp.read = &read;
        read.data.data = data;
        read.data.len = sizeof(data);
        assert_int_not_equal(cow_codec_read_prefix_pack(&resp, prefix), 0);

        status.message = (char *)"a message";
        assert_int_equal(cow_codec_read_prefix_pack(&resp, prefix), 0);
        status.message = (char *)"";
        status.code = COWD__V1__CODE__NOT_FOUND;
        assert_int_equal(cow_codec_read_prefix_pack(&resp, prefix), 0);
        status.code = COWD__V1__CODE__OK;
        resp.fault = &fault;
        assert_int_equal(cow_codec_read_prefix_pack(&resp, prefix), 0);
        resp.fault = NULL;
        resp.status = NULL;
        assert_int_equal(cow_codec_read_prefix_pack(&resp, prefix), 0);
        resp.status = &status;
        read.data.len = 0; /* proto3 leaves empty bytes out: no data header to write */
        assert_int_equal(cow_codec_read_prefix_pack(&resp, prefix), 0);
        read.data.len = sizeof(data);
        resp.result_case = COWD__V1__RESPONSE__RESULT_WRITE;
        resp.write = &write;
        assert_int_equal(cow_codec_read_prefix_pack(&resp, prefix), 0);
}

/* xorshift64: a fixed sequence, so a failure replays. */
static uint64_t rng_next(uint64_t *s)
{
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

/* A value whose varint takes anything from 1 to 10 bytes. */
static uint64_t any_width(uint64_t *rng)
{
        uint64_t v = rng_next(rng);
        unsigned bits = (unsigned)(rng_next(rng) % 65);

        return bits == 64 ? v : v & ((UINT64_C(1) << bits) - 1);
}

/*
 * One to four changes to buf[0..len) (room for cap): a flipped bit, a cut, or
 * a byte appended. Returns the new length.
 */
static size_t mangle(uint64_t *rng, uint8_t *buf, size_t len, size_t cap)
{
        for (int k = (int)(rng_next(rng) % 4); k >= 0; k--) {
                uint64_t r = rng_next(rng);

                if (r % 3 == 0 && len > 0)
                        buf[(r >> 8) % len] ^= (uint8_t)(1u << ((r >> 4) % 8));
                else if (r % 3 == 1 && len > 0)
                        len = (size_t)((r >> 8) % len);
                else if (len < cap)
                        buf[len++] = (uint8_t)(r >> 8);
        }
        return len;
}

/* Packs a random read or write request into buf; returns its length. */
static size_t random_request(uint64_t *rng, uint8_t *buf, uint8_t *data, size_t data_max)
{
        Cowd__V1__Request req = COWD__V1__REQUEST__INIT;
        Cowd__V1__ReadRequest read = COWD__V1__READ_REQUEST__INIT;
        Cowd__V1__WriteRequest write = COWD__V1__WRITE_REQUEST__INIT;

        req.id = any_width(rng);
        if (rng_next(rng) & 1) {
                read.pid = (uint32_t)any_width(rng);
                read.addr = any_width(rng);
                read.length = any_width(rng);
                req.op_case = COWD__V1__REQUEST__OP_READ;
                req.read = &read;
        } else {
                write.pid = (uint32_t)any_width(rng);
                write.addr = any_width(rng);
                write.data.len = (size_t)(rng_next(rng) % (data_max + 1));
                write.data.data = data;
                req.op_case = COWD__V1__REQUEST__OP_WRITE;
                req.write = &write;
        }
        return cowd__v1__request__pack(&req, buf);
}

/* Whether two decoded reads or writes carry the same values. */
static bool same_request(const Cowd__V1__Request *a, const Cowd__V1__Request *b)
{
        if (a->id != b->id || a->op_case != b->op_case)
                return false;
        if (a->op_case == COWD__V1__REQUEST__OP_READ)
                return a->read->pid == b->read->pid && a->read->addr == b->read->addr &&
                       a->read->length == b->read->length;
        if (a->op_case != COWD__V1__REQUEST__OP_WRITE)
                return false;
        return a->write->pid == b->write->pid && a->write->addr == b->write->addr &&
               a->write->data.len == b->write->data.len &&
               (a->write->data.len == 0 ||
                memcmp(a->write->data.data, b->write->data.data, a->write->data.len) == 0);
}

/*
 * Decodes buf[0..len) both ways. Returns 1 if it was decoded in place (and
 * then protobuf-c agreed), 0 if not.
 */
static int decode_both(const uint8_t *buf, size_t len)
{
        cow_codec_request *fast = NULL, *slow = NULL;
        int rf = cow_codec_request_unpack(buf, len, &fast);
        int rs = cow_codec_request_unpack_generic(buf, len, &slow);
        int in_place = 0;

        assert_int_equal(rf, rs);
        if (rf == 0) {
                in_place = cow_codec_request_in_place(fast);
                /* Declined bytes went to protobuf-c both times: only in-place ones can differ. */
                if (in_place && !same_request(cow_codec_request_message(fast),
                                  cow_codec_request_message(slow)))
                        fail_msg("in-place and protobuf-c decodings differ (%zu bytes)", len);
        }
        cow_codec_request_free(fast);
        cow_codec_request_free(slow);
        return in_place;
}

static void test_plain_reads_and_writes_decode_in_place_as_protobuf_c_does(void **state)
{
        static uint8_t buf[1024], data[256];
        uint64_t rng = 0x9e3779b97f4a7c15u;

        (void)state;
        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t)(i * 31 + 7);
        for (int i = 0; i < 20000; i++) {
                size_t len = random_request(&rng, buf, data, sizeof(data));

                if (!decode_both(buf, len))
                        fail_msg("plain request %d (%zu bytes) was not decoded in place", i, len);
        }
}

static void test_mangled_requests_decode_as_protobuf_c_says(void **state)
{
        static uint8_t buf[1024], data[64];
        uint64_t rng = 0x2545f4914f6cdd1du;
        unsigned in_place = 0, declined = 0;

        (void)state;
        memset(data, 0x5a, sizeof(data));
        for (int i = 0; i < 200000; i++) {
                size_t len = random_request(&rng, buf, data, sizeof(data));

                len = mangle(&rng, buf, len, sizeof(buf));
                if (decode_both(buf, len))
                        in_place++;
                else
                        declined++;
        }
        /* Both sides were exercised: some mangled bytes still decode in place. */
        assert_true(in_place > 1000);
        assert_true(declined > 1000);
}

static void test_plain_requests_encode_as_protobuf_c_does(void **state)
{
        static uint8_t buf[1024], mine[1024], data[256];
        uint64_t rng = 0x51afd7ed558ccd6du;

        (void)state;
        memset(data, 0xc3, sizeof(data));
        for (int i = 0; i < 20000; i++) {
                cow_codec_request *req = NULL;
                size_t len = random_request(&rng, buf, data, sizeof(data));
                const Cowd__V1__Request *m;

                assert_int_equal(cow_codec_request_unpack_generic(buf, len, &req), 0);
                m = cow_codec_request_message(req);
                assert_int_equal(cow_plain_request_size(m), len);
                cow_plain_request_pack(m, mine);
                assert_memory_equal(mine, buf, len);
                cow_codec_request_free(req);
        }
}

/* Packs a random reply to a read or a write, as the daemon would, into buf. */
static size_t random_response(uint64_t *rng, uint8_t *buf, uint8_t *data, size_t data_max)
{
        Cowd__V1__Response resp = COWD__V1__RESPONSE__INIT;
        Cowd__V1__Status status = COWD__V1__STATUS__INIT;
        Cowd__V1__ReadResult read = COWD__V1__READ_RESULT__INIT;
        Cowd__V1__WriteResult write = COWD__V1__WRITE_RESULT__INIT;
        Cowd__V1__Fault fault = COWD__V1__FAULT__INIT;
        uint64_t r = rng_next(rng);

        resp.id = any_width(rng);
        resp.status = &status;
        if (r % 5 == 0) {
                status.code = (Cowd__V1__Code)(rng_next(rng) % 20);
                if (r % 7 == 0)
                        status.message = (char *)"read pid 3: no such process";
                if (r % 11 == 0) {
                        fault.addr = any_width(rng);
                        resp.fault = &fault;
                }
        } else if (r & 2) {
                read.data.len = (size_t)(rng_next(rng) % (data_max + 1));
                read.data.data = data;
                resp.result_case = COWD__V1__RESPONSE__RESULT_READ;
                resp.read = &read;
        } else {
                resp.result_case = COWD__V1__RESPONSE__RESULT_WRITE;
                resp.write = &write;
        }
        return cowd__v1__response__pack(&resp, buf);
}

/* Whether the in-place reply says what protobuf-c's says. */
static bool same_response(const Cowd__V1__Response *a, const Cowd__V1__Response *b)
{
        if (a->id != b->id || !a->status || !b->status || a->status->code != b->status->code ||
            strcmp(a->status->message, b->status->message) != 0 || a->fault || b->fault ||
            a->result_case != b->result_case)
                return false;
        if (a->result_case == COWD__V1__RESPONSE__RESULT_WRITE)
                return a->write && b->write;
        return a->result_case == COWD__V1__RESPONSE__RESULT_READ &&
               a->read->data.len == b->read->data.len &&
               (a->read->data.len == 0 ||
                memcmp(a->read->data.data, b->read->data.data, a->read->data.len) == 0);
}

static void test_read_and_write_replies_decode_in_place_as_protobuf_c_does(void **state)
{
        static uint8_t buf[1024], data[128];
        uint64_t rng = 0xd1b54a32d192ed03u;
        unsigned in_place = 0, declined = 0;

        (void)state;
        memset(data, 0x3c, sizeof(data));
        for (int i = 0; i < 200000; i++) {
                struct cow_plain_response plain;
                Cowd__V1__Response *slow;
                size_t len = random_response(&rng, buf, data, sizeof(data));
                bool mangled = i % 2;

                if (mangled)
                        len = mangle(&rng, buf, len, sizeof(buf));
                slow = cowd__v1__response__unpack(NULL, len, buf);
                if (!cow_plain_response_decode(buf, len, &plain)) {
                        declined++;
                        /* Every intact OK read or write reply is taken. */
                        if (!mangled && slow && !slow->fault && !slow->status->message[0] &&
                            slow->result_case != COWD__V1__RESPONSE__RESULT__NOT_SET)
                                fail_msg("plain reply %d (%zu bytes) was declined", i, len);
                } else {
                        in_place++;
                        if (!slow || !same_response(&plain.resp, slow))
                                fail_msg("in-place and protobuf-c replies differ (%zu bytes)", len);
                }
                if (slow)
                        cowd__v1__response__free_unpacked(slow, NULL);
        }
        assert_true(in_place > 1000);
        assert_true(declined > 1000);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plain_reads_and_writes_decode_in_place_as_protobuf_c_does),
                cmocka_unit_test(test_mangled_requests_decode_as_protobuf_c_says),
                cmocka_unit_test(test_plain_requests_encode_as_protobuf_c_does),
                cmocka_unit_test(test_read_and_write_replies_decode_in_place_as_protobuf_c_does),
                cmocka_unit_test(test_prefix_and_data_equal_the_packed_reply),
                cmocka_unit_test(test_anything_but_a_plain_ok_read_is_refused),
                cmocka_unit_test(test_write_replies_encode_as_protobuf_c_does),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
