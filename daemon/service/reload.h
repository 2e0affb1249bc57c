/* SPDX-License-Identifier: MIT */
/*
 * What a reload (SIGHUP) may change. The daemon parses its configuration
 * again, exactly as at start; this file decides, setting by setting, whether
 * the new value takes effect while running or the old one stays.
 */
#ifndef COWD_SERVICE_RELOAD_H
#define COWD_SERVICE_RELOAD_H

#include "config.h"
#include "log.h"

/*
 * Copies into live every setting of fresh that can change while running
 * (max_connections, max_page_map_pages, idle_timeout, output_watermark, the
 * log level, the checkpoint interval, the engine's per-user quotas, which the
 * caller hands to the engine), and logs a warning for each setting
 * that differs but cannot (the engine's shape and limits, the listeners,
 * max_frame_bytes, the state directory), which keeps its old value. Both
 * configurations must have been checked by cow_config_parse(). Returns the
 * number of settings changed live.
 */
unsigned cow_reload_apply(struct cow_config *live, const struct cow_config *fresh,
                          const cow_log *log);

#endif /* COWD_SERVICE_RELOAD_H */
