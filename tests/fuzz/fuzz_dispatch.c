/* SPDX-License-Identifier: MIT */
/*
 * Bytes in, replies out: the framer, the codec and dispatch on an in-process
 * engine, as a connection would drive them. The first byte picks the caller's
 * uid (so ownership is exercised); the rest is a stream of frames. Every
 * reply must encode to something that decodes, and after the stream the
 * engine's invariants must hold.
 *
 * Files are real: a file store in a private temporary directory, emptied
 * before each input so that every run starts from the same state, serves
 * file requests and file mappings (small limits, so they are reached).
 */
#define _GNU_SOURCE /* nftw() */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cowd/engine.h>

#include "codec.h"
#include "config.h"
#include "dispatch.h"
#include "filestore.h"
#include "frame.h"
#include "reply.h"
#include "service_limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The data directory, made once per fuzzing process and emptied before each
 * input; on tmpfs, where the store's fsyncs cost nothing.
 */
static char files_dir[] = "/dev/shm/cowd-fuzz-files-XXXXXX"; /* the longer of the two */

/* nftw callback: removes everything below files_dir (depth first), not files_dir itself. */
static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        (void)st;
        (void)type;
        if (ftw->level > 0)
                (void)remove(path);
        return 0;
}

static void files_dir_remove(void)
{
        (void)nftw(files_dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
        (void)rmdir(files_dir);
}

static void files_dir_reset(void)
{
        static int made;

        if (!made) {
                if (!mkdtemp(files_dir)) {
                        /* No /dev/shm: /tmp serves, more slowly. */
                        snprintf(files_dir, sizeof(files_dir), "%s", "/tmp/cowd-fuzz-files-XXXXXX");
                        if (!mkdtemp(files_dir))
                                abort();
                }
                atexit(files_dir_remove);
                made = 1;
        }
        (void)nftw(files_dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct cow_config cfg;
        struct cow_service_limits limits;
        struct cow_counters counters = { 0 };
        cow_engine *engine = NULL;
        cow_dispatcher *disp = NULL;
        cow_filestore *files = NULL;
        const struct cow_filestore_limits file_limits = {
                .max_file_bytes = 64 * 1024,
                .quota_bytes = 128 * 1024,
                .max_files = 4,
                .max_open = 2,
        };
        char err[256];

        if (size == 0)
                return 0;
        cow_config_init(&cfg);
        cfg.engine.mem_bytes = 64 * 4096; /* small, so memory runs out too */
        cfg.engine.tlb_entries = 8;
        cfg.engine.tlb_ways = 2;
        cfg.engine.max_procs = 32;
        cfg.engine.max_maps_per_proc = 64;
        cfg.engine.max_pt_bytes = 512 * 4096;
        cfg.engine.fb_width = 64;
        cfg.engine.fb_height = 32;
        cfg.engine.console_log_bytes = 1024;
        cfg.engine.max_files = 4;
        cfg.max_frame_bytes = 64 * 1024;
        cfg.max_file_bytes = file_limits.max_file_bytes;
        cfg.file_quota_bytes = file_limits.quota_bytes;
        cfg.max_files_per_user = file_limits.max_files;
        cow_service_limits_init(&limits, &cfg);
        files_dir_reset();
        if (cow_engine_new(&cfg.engine, &engine) < 0 ||
            cow_dispatcher_new(engine, &limits, &counters, &disp) < 0 ||
            cow_filestore_open(files_dir, &file_limits, &files, err, sizeof(err)) < 0)
                abort();
        cow_dispatcher_set_files(disp, files, NULL);
        cow_engine_set_files(engine, &cow_filestore_ops, files);

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
        cow_filestore_free(files);
        return 0;
}
