/* SPDX-License-Identifier: MIT */
#include "service_limits.h"

#include "config.h"

static uint32_t min_u32(uint32_t a, uint32_t b)
{
        return a < b ? a : b;
}

void cow_service_limits_init(struct cow_service_limits *limits, const struct cow_config *cfg)
{
        /* config.c keeps max_frame_bytes at 4 KiB or more, well above the overhead. */
        uint32_t room = cfg->max_frame_bytes - COW_SERVICE_LIMITS_REPLY_OVERHEAD;

        limits->max_frame_bytes = cfg->max_frame_bytes;
        limits->max_read_bytes = room;
        limits->max_page_map_pages =
                min_u32(cfg->max_page_map_pages, room / COW_SERVICE_LIMITS_PAGE_ENTRY_BYTES);
        limits->max_list_procs =
                min_u32(COW_SERVICE_LIMITS_LIST_PROCS_MAX, room / COW_SERVICE_LIMITS_PROC_INFO_BYTES);
        limits->max_list_maps =
                min_u32(COW_SERVICE_LIMITS_LIST_MAPS_MAX, room / COW_SERVICE_LIMITS_MAP_INFO_BYTES);
        limits->max_list_files = min_u32(COW_SERVICE_LIMITS_LIST_FILES_MAX,
                                         room / COW_SERVICE_LIMITS_FILE_INFO_BYTES);
        limits->max_file_bytes = cfg->max_file_bytes;
        limits->file_quota_bytes = cfg->file_quota_bytes;
        limits->max_files_per_user = cfg->max_files_per_user;
        limits->fb_width = cfg->engine.fb_width;
        limits->fb_height = cfg->engine.fb_height;
        limits->max_connections = cfg->max_connections;
        limits->max_procs_per_user = cfg->max_procs_per_user;
        limits->idle_timeout_s = cfg->idle_timeout_s;
        limits->output_watermark = cfg->output_watermark;
        limits->default_policy = cfg->engine.policy;
}
