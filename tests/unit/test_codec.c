/* SPDX-License-Identifier: MIT */
/*
 * The read reply made in place (codec.h): its prefix followed by the data must
 * be byte for byte what protobuf-c packs for the same Response, for every id
 * and length whose varints change size, and anything but a plain OK read must
 * be refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"

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

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_prefix_and_data_equal_the_packed_reply),
                cmocka_unit_test(test_anything_but_a_plain_ok_read_is_refused),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
