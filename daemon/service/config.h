/* SPDX-License-Identifier: MIT */
/*
 * The daemon's settings: defaults, an INI file (libinih) and command-line
 * flags, applied in that order so that a flag overrides the file.
 *
 * Every setting has one entry in a table in config.c, which drives the INI
 * parser, the flag parser and --help alike; deploy/cowd.conf documents them.
 */
#ifndef COWD_SERVICE_CONFIG_H
#define COWD_SERVICE_CONFIG_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include <cowd/engine.h>

#include "log.h"

#define COW_CONFIG_PATH_MAX 4096
#define COW_CONFIG_ADDRESS_MAX 64

struct cow_config {
        /* [engine] and the engine-side [limits]; defaults from cow_engine_config_init() */
        struct cow_engine_config engine;

        /* [listen] */
        char socket_path[COW_CONFIG_PATH_MAX]; /* "" = the default endpoint */
        uint32_t socket_mode;                  /* permission bits of the socket file */
        char tcp_address[COW_CONFIG_ADDRESS_MAX];
        uint32_t tcp_port; /* 0 = no TCP listener */
        char tcp_token_file[COW_CONFIG_PATH_MAX]; /* "uid token" lines; required with TCP */

        /* [limits], service side */
        uint32_t max_connections;
        uint32_t max_procs_per_user; /* live processes one uid may own; uid 0 is exempt */
        uint32_t max_frame_bytes;
        uint32_t max_page_map_pages;
        uint32_t idle_timeout_s; /* 0 = never time out */
        uint32_t output_watermark;

        /* [metrics] */
        char metrics_address[COW_CONFIG_ADDRESS_MAX]; /* loopback only */
        uint32_t metrics_port; /* 0 = no /metrics */

        /* [state] */
        char state_dir[COW_CONFIG_PATH_MAX]; /* "" = $STATE_DIRECTORY, else keep no state */
        uint32_t checkpoint_interval_s;      /* periodic checkpoints; 0 = none */

        /* [swap]; policy, seed and oom_kill live in engine */
        char swap_file[COW_CONFIG_PATH_MAX]; /* "" = cowd.swap in the state dir, else by the socket */
        uint64_t swap_bytes;                 /* engine.swap_slots is this over the page size */

        /* [files] */
        char files_dir[COW_CONFIG_PATH_MAX]; /* "" = files in the state dir, else by the socket */
        uint64_t max_file_bytes;
        uint64_t file_quota_bytes;           /* per owner */
        uint32_t max_files_per_user;

        /* [log] */
        enum cow_log_level log_level;

        char config_file[COW_CONFIG_PATH_MAX]; /* "" when none was given */
        /*
         * --start-empty: a checkpoint that is refused at start is renamed aside
         * and the daemon starts with no processes. A flag, not a setting: the
         * operator decides for one start, never once for all of them.
         */
        bool start_empty;
};

/* Returned by cow_config_parse() when --help or --version was answered. */
#define COW_CONFIG_EXIT 1

/* Fills cfg with every default. */
void cow_config_init(struct cow_config *cfg);

/*
 * Builds the configuration from defaults, the file named by -c/--config (if
 * any) and the other flags in argv, then checks it as a whole.
 *
 * Returns 0 to run, COW_CONFIG_EXIT after printing --help or --version to
 * stdout, or a negative errno (-EINVAL, or -ENOMEM) with a sentence in err
 * naming the file and line or the flag, and the key at fault. argv may be
 * permuted (getopt_long).
 */
int cow_config_parse(struct cow_config *cfg, int argc, char **argv, char *err, size_t errlen);

#endif /* COWD_SERVICE_CONFIG_H */
