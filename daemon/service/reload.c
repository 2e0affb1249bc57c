/* SPDX-License-Identifier: MIT */
#include "reload.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* One setting as a reload sees it: where it lives and whether it may change. */
struct reload_field {
        const char *name; /* as the configuration file spells it */
        size_t offset;    /* into struct cow_config */
        size_t width;
        int live;
};

#define RF(n, f, l) { n, offsetof(struct cow_config, f), \
                      sizeof(((struct cow_config *)0)->f), l }

/*
 * Live settings are the ones read afresh on every use. The rest are baked
 * into something built at start: the engine's memory and page tables, the
 * listening sockets, buffers sized by max_frame_bytes and the size clients
 * were told in their hello, the directory the checkpoint was restored from.
 */
static const struct reload_field fields[] = {
        RF("[limits] max_connections", max_connections, 1),
        RF("[limits] max_page_map_pages", max_page_map_pages, 1),
        RF("[limits] idle_timeout", idle_timeout_s, 1),
        RF("[limits] output_watermark", output_watermark, 1),
        RF("[log] level", log_level, 1),
        RF("[state] interval", checkpoint_interval_s, 1),
        /* Handed to the engine after the reload (cow_engine_set_quotas()), which
         * refuses to turn them on if it started without them. */
        RF("[limits] max_frames_per_user", engine.max_frames_per_owner, 1),
        RF("[limits] max_swap_slots_per_user", engine.max_swap_slots_per_owner, 1),

        RF("[engine] memory", engine.mem_bytes, 0),
        RF("[engine] page_size", engine.page_size, 0),
        RF("[engine] tlb_entries", engine.tlb_entries, 0),
        RF("[engine] tlb_ways", engine.tlb_ways, 0),
        RF("[limits] max_processes", engine.max_procs, 0),
        RF("[limits] max_maps_per_process", engine.max_maps_per_proc, 0),
        RF("[limits] max_page_table_bytes", engine.max_pt_bytes, 0),
        RF("[limits] max_frame_bytes", max_frame_bytes, 0),
        RF("[listen] socket", socket_path, 0),
        RF("[listen] socket_mode", socket_mode, 0),
        RF("[listen] tcp_address", tcp_address, 0),
        RF("[listen] tcp_port", tcp_port, 0),
        RF("[listen] tcp_token_file", tcp_token_file, 0),
        RF("[state] directory", state_dir, 0),
        RF("[files] directory", files_dir, 0),
        RF("[files] max_file_size", max_file_bytes, 0),
        RF("[files] quota", file_quota_bytes, 0),
        RF("[files] max_files_per_user", max_files_per_user, 0),
        RF("[files] max_mapped_files", engine.max_files, 0),
        RF("[devices] fb_width", engine.fb_width, 0),
        RF("[devices] fb_height", engine.fb_height, 0),
        RF("[devices] console_log_size", engine.console_log_bytes, 0),
};

unsigned cow_reload_apply(struct cow_config *live, const struct cow_config *fresh,
                          const cow_log *log)
{
        unsigned changed = 0;

        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
                const struct reload_field *f = &fields[i];
                char *dst = (char *)live + f->offset;
                const char *src = (const char *)fresh + f->offset;

                /* Strings are compared as strings: bytes after the NUL mean nothing. */
                if (f->width > sizeof(uint64_t) ? strcmp(dst, src) == 0
                                                : memcmp(dst, src, f->width) == 0)
                        continue;
                if (!f->live) {
                        log_warning(log, "reload: %s cannot change while running; keeping "
                                         "the old value until a restart", f->name);
                        continue;
                }
                memcpy(dst, src, f->width);
                log_info(log, "reload: %s changed", f->name);
                changed++;
        }
        return changed;
}
