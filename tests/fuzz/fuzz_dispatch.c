/* SPDX-License-Identifier: MIT */
/*
 * Bytes in, replies out: the framer, the codec and dispatch on an in-process
 * engine, as a connection would drive them. The first byte picks the caller's
 * uid (so ownership is exercised); the rest is a stream of frames. Every
 * reply must encode to something that decodes, and after the stream the
 * engine's invariants must hold.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cowd/engine.h>

#include "codec.h"
#include "config.h"
#include "dispatch.h"
#include "frame.h"
#include "reply.h"
#include "service_limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct cow_config cfg;
        struct cow_service_limits limits;
        struct cow_counters counters = { 0 };
        cow_engine *engine = NULL;
        cow_dispatcher *disp = NULL;

        if (size == 0)
                return 0;
        cow_config_init(&cfg);
        cfg.engine.mem_bytes = 64 * 4096; /* small, so memory runs out too */
        cfg.engine.tlb_entries = 8;
        cfg.engine.tlb_ways = 2;
        cfg.engine.max_procs = 32;
        cfg.engine.max_maps_per_proc = 64;
        cfg.engine.max_pt_bytes = 512 * 4096;
        cfg.max_frame_bytes = 64 * 1024;
        cow_service_limits_init(&limits, &cfg);
        if (cow_engine_new(&cfg.engine, &engine) < 0 ||
            cow_dispatcher_new(engine, &limits, &counters, &disp) < 0)
                abort();

        uint32_t uid = data[0] % 3; /* 0 is root; 1 and 2 are two users */
        size_t at = 1;
        while (at < size) {
                const uint8_t *payload;
                uint32_t len;
                size_t used;
                if (cow_frame_parse(data + at, size - at, limits.max_frame_bytes, &payload, &len,
                                    &used) != COW_FRAME_OK)
                        break; /* a connection would answer once and close */
                at += used;

                cow_codec_request *req = NULL;
                if (cow_codec_request_unpack(payload, len, &req) < 0)
                        break;
                cow_reply *reply = NULL;
                if (cow_dispatch(disp, uid, cow_codec_request_message(req), &reply) == 0) {
                        const Cowd__V1__Response *resp = cow_reply_response(reply);
                        size_t n = cow_codec_response_size(resp);
                        uint8_t *buf = malloc(n ? n : 1);
                        if (!buf)
                                abort();
                        cow_codec_response_pack(resp, buf);
                        /* The test's own check that the reply is well formed. */
                        Cowd__V1__Response *back = cowd__v1__response__unpack(NULL, n, buf);
                        if (!back || n > limits.max_frame_bytes)
                                abort();
                        cowd__v1__response__free_unpacked(back, NULL);
                        free(buf);
                }
                cow_reply_free(reply);
                cow_codec_request_free(req);
        }

        char msg[256];
        if (cow_engine_verify(engine, msg, sizeof(msg)) != 0) {
                fprintf(stderr, "engine invariant broken: %s\n", msg);
                abort();
        }
        cow_dispatcher_free(disp);
        cow_engine_free(engine);
        return 0;
}
