/* SPDX-License-Identifier: MIT */
/*
 * What one client may ask of the service, derived once from the configuration
 * (see cow_service_limits_init) and then only read.
 */
#ifndef COWD_SERVICE_SERVICE_LIMITS_H
#define COWD_SERVICE_SERVICE_LIMITS_H

#include <stdint.h>

#include <cowd/engine.h>

struct cow_config;

/*
 * Bytes of a Response that are not the payload of a read, a page map or a
 * process list: id, status, result headers. Generous on purpose; the real
 * figure is under 40.
 */
#define COW_SERVICE_LIMITS_REPLY_OVERHEAD 256u
/*
 * Largest encoding of one PageEntry or ProcInfo inside its result, rounded
 * up. A PageEntry is at most 41 bytes before swap and 49 with `swapped` and a
 * swap slot (below 2^31: a 5-byte varint).
 */
#define COW_SERVICE_LIMITS_PAGE_ENTRY_BYTES 56u
#define COW_SERVICE_LIMITS_PROC_INFO_BYTES 72u
/* Processes in one ListProcs reply, whatever the frame size allows. */
#define COW_SERVICE_LIMITS_LIST_PROCS_MAX 4096u
/* Upper bound on the encoded size of one MapInfo. */
#define COW_SERVICE_LIMITS_MAP_INFO_BYTES 40u
#define COW_SERVICE_LIMITS_LIST_MAPS_MAX 4096u
/*
 * Accesses in one trace request. Each costs at most a page of copying, so
 * this bounds the work of one request; the frame limit may bound it lower
 * (an access takes 13 bytes on the wire).
 */
#define COW_SERVICE_LIMITS_TRACE_MAX 4096u
/* Upper bound on the encoded size of one FileInfo (a name of at most 128 bytes). */
#define COW_SERVICE_LIMITS_FILE_INFO_BYTES 168u
#define COW_SERVICE_LIMITS_LIST_FILES_MAX 1024u

struct cow_service_limits {
        uint32_t max_frame_bytes;    /* either direction */
        uint64_t max_read_bytes;     /* so that a read's reply fits in one frame */
        uint32_t max_page_map_pages; /* configured, lowered to what fits in one frame */
        uint32_t max_list_procs;     /* processes per ListProcs reply */
        uint32_t max_list_maps;      /* mappings per ListMaps reply */
        uint32_t max_list_files;     /* files per FileList reply */
        uint64_t max_file_bytes;     /* [files] limits, for the messages that cite them */
        uint64_t file_quota_bytes;
        uint32_t max_files_per_user;
        uint32_t fb_width;           /* fb0's geometry, for device_read replies */
        uint32_t fb_height;
        uint32_t max_connections;
        uint32_t max_procs_per_user;
        uint32_t idle_timeout_s;
        uint32_t output_watermark;
        enum cow_policy default_policy; /* a spawn's POLICY_DEFAULT: the engine's */
};

/* Derives the limits from cfg, which cow_config_parse() has checked. */
void cow_service_limits_init(struct cow_service_limits *limits, const struct cow_config *cfg);

#endif /* COWD_SERVICE_SERVICE_LIMITS_H */
