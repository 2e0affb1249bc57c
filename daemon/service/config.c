/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "frame.h"
#include "metrics.h"

#ifndef COWD_VERSION
#define COWD_VERSION "unknown"
#endif

enum setting_kind {
        KIND_SIZE,    /* bytes, with an optional K, M, G or T suffix (powers of 1024) */
        KIND_COUNT,   /* a plain decimal number */
        KIND_SECONDS, /* seconds, with an optional s, m or h suffix */
        KIND_STRING,
        KIND_MODE,    /* octal permission bits */
        KIND_LEVEL,   /* a log level name */
        KIND_POLICY,  /* a replacement policy name: clock, fifo, lru */
        KIND_BOOL,    /* true/false, yes/no, on/off, 1/0 */
};

struct setting {
        const char *section;
        const char *key;
        const char *flag; /* long option name, without the dashes */
        const char *engine_field; /* the cow_engine_config field, as the engine's errors name it */
        enum setting_kind kind;
        size_t offset; /* into struct cow_config */
        size_t width;  /* of the field: 4 or 8 for numbers, the buffer size for strings */
        uint64_t min, max;
        const char *help;
};

#define FIELD(f) .offset = offsetof(struct cow_config, f), \
                 .width = sizeof(((struct cow_config *)0)->f)
#define GiB(n) ((uint64_t)(n) << 30)
#define MiB(n) ((uint64_t)(n) << 20)
#define KiB(n) ((uint64_t)(n) << 10)

/*
 * Every setting, once. Ranges here only keep numbers sane and within their
 * fields; the engine's own rules (page size a power of two, ...) are checked
 * by cow_engine_config_check() once everything is read.
 */
static const struct setting settings[] = {
        { .section = "engine", .key = "memory", .flag = "memory", .engine_field = "mem_bytes",
          .kind = KIND_SIZE, FIELD(engine.mem_bytes), .min = KiB(64), .max = GiB(1024),
          .help = "simulated physical memory" },
        { .section = "engine", .key = "page_size", .flag = "page-size", .engine_field = "page_size",
          .kind = KIND_SIZE, FIELD(engine.page_size), .min = KiB(4), .max = KiB(64),
          .help = "page size, a power of two" },
        { .section = "engine", .key = "tlb_entries", .flag = "tlb-entries", .engine_field = "tlb_entries",
          .kind = KIND_COUNT, FIELD(engine.tlb_entries), .min = 0, .max = 1u << 20,
          .help = "TLB entries per process" },
        { .section = "engine", .key = "tlb_ways", .flag = "tlb-ways", .engine_field = "tlb_ways",
          .kind = KIND_COUNT, FIELD(engine.tlb_ways), .min = 0, .max = 1u << 20,
          .help = "TLB associativity; 0 is fully associative" },

        { .section = "listen", .key = "socket", .flag = "socket", .engine_field = NULL,
          .kind = KIND_STRING, FIELD(socket_path), .min = 0, .max = 0,
          .help = "Unix socket path; empty: $COWD_SOCKET, else $XDG_RUNTIME_DIR/cowd.sock, "
                         "else /tmp/cowd-UID/cowd.sock" },
        { .section = "listen", .key = "socket_mode", .flag = "socket-mode", .engine_field = NULL,
          .kind = KIND_MODE, FIELD(socket_mode), .min = 0, .max = 0777,
          .help = "permission bits of the Unix socket (octal)" },
        { .section = "listen", .key = "tcp_address", .flag = "tcp-address", .engine_field = NULL,
          .kind = KIND_STRING, FIELD(tcp_address), .min = 0, .max = 0,
          .help = "address of the TCP listener (numeric IPv4 or IPv6)" },
        { .section = "listen", .key = "tcp_port", .flag = "tcp-port", .engine_field = NULL,
          .kind = KIND_COUNT, FIELD(tcp_port), .min = 0, .max = 65535,
          .help = "TCP port; 0 disables the TCP listener" },
        { .section = "listen", .key = "tcp_token_file", .flag = "tcp-token-file", .engine_field = NULL,
          .kind = KIND_STRING, FIELD(tcp_token_file), .min = 0, .max = 0,
          .help = "file of 'uid token' lines (mode 0600) that TCP clients authenticate against; "
                  "required with a TCP listener" },

        { .section = "limits", .key = "max_connections", .flag = "max-connections", .engine_field = NULL,
          .kind = KIND_COUNT, FIELD(max_connections), .min = 1, .max = 1u << 20,
          .help = "open client connections; more are refused with UNAVAILABLE" },
        { .section = "limits", .key = "max_frame_bytes", .flag = "max-frame-bytes", .engine_field = NULL,
          .kind = KIND_SIZE, FIELD(max_frame_bytes), .min = KiB(4), .max = GiB(1),
          .help = "largest request or reply frame" },
        { .section = "limits", .key = "max_processes", .flag = "max-processes", .engine_field = "max_procs",
          .kind = KIND_COUNT, FIELD(engine.max_procs), .min = 1, .max = UINT32_MAX,
          .help = "live simulated processes, all clients together" },
        { .section = "limits", .key = "max_processes_per_user", .flag = "max-processes-per-user", .engine_field = NULL,
          .kind = KIND_COUNT, FIELD(max_procs_per_user), .min = 1, .max = UINT32_MAX,
          .help = "live simulated processes one uid may own (uid 0 is exempt), so that one "
                  "user cannot take every process slot" },
        { .section = "limits", .key = "max_frames_per_user", .flag = "max-frames-per-user", .engine_field = "max_frames_per_owner",
          .kind = KIND_COUNT, FIELD(engine.max_frames_per_owner), .min = 0, .max = UINT64_C(1) << 31,
          .help = "physical frames charged to one uid (the frames its processes' faults "
                  "allocated); 0: no quota" },
        { .section = "limits", .key = "max_swap_slots_per_user", .flag = "max-swap-slots-per-user", .engine_field = "max_swap_slots_per_owner",
          .kind = KIND_COUNT, FIELD(engine.max_swap_slots_per_owner), .min = 0, .max = UINT64_C(1) << 31,
          .help = "swap slots charged to one uid (pages of its frames written to swap); "
                  "0: no quota" },
        { .section = "limits", .key = "max_maps_per_process", .flag = "max-maps-per-process", .engine_field = "max_maps_per_proc",
          .kind = KIND_COUNT, FIELD(engine.max_maps_per_proc), .min = 1, .max = UINT32_MAX,
          .help = "mappings per process" },
        { .section = "limits", .key = "max_page_table_bytes", .flag = "max-page-table-bytes", .engine_field = "max_pt_bytes",
          .kind = KIND_SIZE, FIELD(engine.max_pt_bytes), .min = KiB(64), .max = GiB(1024),
          .help = "page-table memory, all processes together" },
        { .section = "limits", .key = "max_page_map_pages", .flag = "max-page-map-pages", .engine_field = NULL,
          .kind = KIND_COUNT, FIELD(max_page_map_pages), .min = 1, .max = 1u << 24,
          .help = "pages one page_map request may describe" },
        { .section = "state", .key = "directory", .flag = "state-dir", .engine_field = NULL,
          .kind = KIND_STRING, FIELD(state_dir), .min = 0, .max = 0,
          .help = "where the checkpoint is kept: saved at a clean stop, restored at start; "
                  "empty: $STATE_DIRECTORY (set by systemd), else no state is kept" },
        { .section = "state", .key = "interval", .flag = "checkpoint-interval", .engine_field = NULL,
          .kind = KIND_SECONDS, FIELD(checkpoint_interval_s), .min = 0, .max = 86400u * 7u,
          .help = "write a checkpoint this often while running; 0 only on demand and at a stop" },
        { .section = "limits", .key = "idle_timeout", .flag = "idle-timeout", .engine_field = NULL,
          .kind = KIND_SECONDS, FIELD(idle_timeout_s), .min = 0, .max = 86400u * 365u,
          .help = "close a connection silent (or not reading) this long; 0 never" },
        { .section = "limits", .key = "output_watermark", .flag = "output-watermark", .engine_field = NULL,
          .kind = KIND_SIZE, FIELD(output_watermark), .min = KiB(4), .max = GiB(1),
          .help = "unsent reply bytes at which a connection stops being read" },

        { .section = "metrics", .key = "address", .flag = "metrics-address", .engine_field = NULL,
          .kind = KIND_STRING, FIELD(metrics_address), .min = 0, .max = 0,
          .help = "loopback address (127.0.0.0/8 or ::1) of the HTTP listener for /metrics" },
        { .section = "metrics", .key = "port", .flag = "metrics-port", .engine_field = NULL,
          .kind = KIND_COUNT, FIELD(metrics_port), .min = 0, .max = 65535,
          .help = "port of /metrics (Prometheus text format); 0 disables it" },
        { .section = "swap", .key = "file", .flag = "swap-file", .engine_field = NULL,
          .kind = KIND_STRING, FIELD(swap_file), .min = 0, .max = 0,
          .help = "the swap file (created 0600, emptied at start); empty: cowd.swap in the "
                  "state directory, else beside the socket" },
        { .section = "swap", .key = "size", .flag = "swap-size", .engine_field = "swap_slots",
          .kind = KIND_SIZE, FIELD(swap_bytes), .min = 0, .max = GiB(8192),
          .help = "swap space, a whole number of pages; 0 disables swap" },
        { .section = "swap", .key = "policy", .flag = "swap-policy", .engine_field = "policy",
          .kind = KIND_POLICY, FIELD(engine.policy), .min = 0, .max = 0,
          .help = "page replacement policy: clock, fifo or lru" },
        { .section = "swap", .key = "seed", .flag = "swap-seed", .engine_field = "seed",
          .kind = KIND_COUNT, FIELD(engine.seed), .min = 0, .max = UINT64_MAX,
          .help = "seed of any randomness in the engine: a fixed seed makes runs reproducible" },
        { .section = "swap", .key = "oom_kill", .flag = "oom-kill", .engine_field = "oom_kill",
          .kind = KIND_BOOL, FIELD(engine.oom_kill), .min = 0, .max = 1,
          .help = "when memory and swap are full, end the largest process rather than refuse "
                  "the request (true or false)" },

        { .section = "files", .key = "directory", .flag = "files-dir", .engine_field = NULL,
          .kind = KIND_STRING, FIELD(files_dir), .min = 0, .max = 0,
          .help = "the data directory of the files clients put and map, one subdirectory per "
                  "uid (created 0700); empty: files/ in the state directory, else cowd-files/ "
                  "beside the socket" },
        { .section = "files", .key = "max_file_size", .flag = "max-file-size", .engine_field = NULL,
          .kind = KIND_SIZE, FIELD(max_file_bytes), .min = 0, .max = GiB(1024),
          .help = "longest file a client may put" },
        { .section = "files", .key = "quota", .flag = "file-quota", .engine_field = NULL,
          .kind = KIND_SIZE, FIELD(file_quota_bytes), .min = 0, .max = GiB(1024 * 1024),
          .help = "bytes one uid's files may hold together" },
        { .section = "files", .key = "max_files_per_user", .flag = "max-files-per-user", .engine_field = NULL,
          .kind = KIND_COUNT, FIELD(max_files_per_user), .min = 0, .max = 1u << 20,
          .help = "files one uid may have" },

        { .section = "files", .key = "max_mapped_files", .flag = "max-mapped-files", .engine_field = "max_files",
          .kind = KIND_COUNT, FIELD(engine.max_files), .min = 1, .max = 65536,
          .help = "distinct files mapped or with pages in the page cache at once, all users "
                  "together" },

        { .section = "devices", .key = "fb_width", .flag = "fb-width", .engine_field = "fb_width",
          .kind = KIND_COUNT, FIELD(engine.fb_width), .min = 1, .max = 16384,
          .help = "framebuffer fb0: pixels per row" },
        { .section = "devices", .key = "fb_height", .flag = "fb-height", .engine_field = "fb_height",
          .kind = KIND_COUNT, FIELD(engine.fb_height), .min = 1, .max = 16384,
          .help = "framebuffer fb0: rows (at most 64 MiB of 32-bit pixels in all)" },
        { .section = "devices", .key = "console_log_size", .flag = "console-log-size", .engine_field = "console_log_bytes",
          .kind = KIND_SIZE, FIELD(engine.console_log_bytes), .min = KiB(1), .max = MiB(16),
          .help = "bytes of the console log kept for cowctl console" },

        { .section = "log", .key = "level", .flag = "log-level", .engine_field = NULL,
          .kind = KIND_LEVEL, FIELD(log_level), .min = 0, .max = 0,
          .help = "error, warning, info or debug" },
};

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

void cow_config_init(struct cow_config *cfg)
{
        memset(cfg, 0, sizeof(*cfg));
        cow_engine_config_init(&cfg->engine);
        cfg->socket_mode = 0600;
        snprintf(cfg->tcp_address, sizeof(cfg->tcp_address), "%s", "127.0.0.1");
        cfg->tcp_port = 0;
        snprintf(cfg->metrics_address, sizeof(cfg->metrics_address), "%s", "127.0.0.1");
        cfg->metrics_port = 0;
        cfg->max_connections = 256;
        cfg->max_procs_per_user = 512;
        cfg->max_frame_bytes = COW_FRAME_DEFAULT_MAX;
        cfg->max_page_map_pages = 65536;
        cfg->idle_timeout_s = 300;
        cfg->output_watermark = 1u << 20;
        cfg->log_level = COW_LOG_INFO;
        cfg->max_file_bytes = MiB(64);
        cfg->file_quota_bytes = MiB(256);
        cfg->max_files_per_user = 256;
}

/* ---- values ----------------------------------------------------------------- */

static int parse_unsigned(const char *s, int base, uint64_t *ret_value, const char **ret_end)
{
        char *end;
        unsigned long long v;

        /* strtoull accepts leading blanks and a minus sign; a setting may have neither. */
        if (!(*s >= '0' && *s <= '9'))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, base);
        if (errno == ERANGE)
                return -ERANGE;
        *ret_value = v;
        *ret_end = end;
        return 0;
}

static int parse_size(const char *s, uint64_t *ret_value)
{
        uint64_t v, mult = 1;
        const char *end;
        int r;

        r = parse_unsigned(s, 10, &v, &end);
        if (r < 0)
                return r;
        switch (*end) {
        case '\0': break;
        case 'k': case 'K': mult = KiB(1); end++; break;
        case 'm': case 'M': mult = MiB(1); end++; break;
        case 'g': case 'G': mult = GiB(1); end++; break;
        case 't': case 'T': mult = GiB(1024); end++; break;
        default: return -EINVAL;
        }
        /* "64K", "64KiB" and "64KB" all mean 65536 bytes. */
        if (mult > 1 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
                end += strlen(end);
        if (*end)
                return -EINVAL;
        if (v > UINT64_MAX / mult)
                return -ERANGE;
        *ret_value = v * mult;
        return 0;
}

static int parse_seconds(const char *s, uint64_t *ret_value)
{
        uint64_t v, mult = 1;
        const char *end;
        int r;

        r = parse_unsigned(s, 10, &v, &end);
        if (r < 0)
                return r;
        if (*end == 's')
                end++;
        else if (*end == 'm')
                mult = 60, end++;
        else if (*end == 'h')
                mult = 3600, end++;
        if (*end)
                return -EINVAL;
        if (v > UINT64_MAX / mult)
                return -ERANGE;
        *ret_value = v * mult;
        return 0;
}

static const char *kind_hint(enum setting_kind kind)
{
        switch (kind) {
        case KIND_SIZE: return "a byte count with an optional K, M, G or T suffix";
        case KIND_COUNT: return "a decimal number";
        case KIND_SECONDS: return "seconds, with an optional s, m or h suffix";
        case KIND_MODE: return "octal permission bits such as 0600";
        case KIND_LEVEL: return "error, warning, info or debug";
        case KIND_STRING: return "a string";
        case KIND_POLICY: return "clock, fifo or lru";
        case KIND_BOOL: return "true or false";
        }
        return "?";
}

/* The word --help puts after each flag's '='. */
static const char *kind_metavar(enum setting_kind kind)
{
        switch (kind) {
        case KIND_SIZE: return "SIZE";
        case KIND_COUNT: return "N";
        case KIND_SECONDS: return "SECONDS";
        case KIND_MODE: return "MODE";
        case KIND_LEVEL: return "LEVEL";
        case KIND_STRING: return "TEXT";
        case KIND_POLICY: return "POLICY";
        case KIND_BOOL: return "BOOL";
        }
        return "VALUE";
}

static void format_number(const struct setting *st, uint64_t v, char *buf, size_t len)
{
        if (st->kind == KIND_SIZE && v != 0) {
                if (v % GiB(1) == 0)
                        snprintf(buf, len, "%" PRIu64 "G", v / GiB(1));
                else if (v % MiB(1) == 0)
                        snprintf(buf, len, "%" PRIu64 "M", v / MiB(1));
                else if (v % KiB(1) == 0)
                        snprintf(buf, len, "%" PRIu64 "K", v / KiB(1));
                else
                        snprintf(buf, len, "%" PRIu64, v);
        } else if (st->kind == KIND_MODE) {
                snprintf(buf, len, "%04" PRIo64, v);
        } else if (st->kind == KIND_SECONDS) {
                snprintf(buf, len, "%" PRIu64 "s", v);
        } else {
                snprintf(buf, len, "%" PRIu64, v);
        }
}

/*
 * Parses value for st and stores it into cfg. Returns 0 or -EINVAL with a
 * sentence in err (without the "where", which the caller knows).
 */
static int setting_apply(const struct setting *st, struct cow_config *cfg, const char *value,
                         char *err, size_t errlen)
{
        char *field = (char *)cfg + st->offset;
        uint64_t v = 0;
        int r = 0;

        switch (st->kind) {
        case KIND_STRING:
                if (strlen(value) >= st->width) {
                        snprintf(err, errlen, "value is longer than %zu bytes", st->width - 1);
                        return -EINVAL;
                }
                memcpy(field, value, strlen(value) + 1);
                return 0;
        case KIND_LEVEL: {
                enum cow_log_level level;

                if (cow_log_level_parse(value, &level) < 0) {
                        snprintf(err, errlen, "'%s' is not %s", value, kind_hint(st->kind));
                        return -EINVAL;
                }
                memcpy(field, &level, sizeof(level));
                return 0;
        }
        case KIND_POLICY: {
                enum cow_policy policy;

                if (cow_policy_parse(value, &policy) < 0) {
                        snprintf(err, errlen, "'%s' is not %s", value, kind_hint(st->kind));
                        return -EINVAL;
                }
                memcpy(field, &policy, sizeof(policy));
                return 0;
        }
        case KIND_BOOL: {
                static const char *const yes[] = { "true", "yes", "on", "1" };
                static const char *const no[] = { "false", "no", "off", "0" };
                bool b;

                for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
                        if (strcasecmp(value, yes[i]) == 0) {
                                b = true;
                                goto store_bool;
                        }
                        if (strcasecmp(value, no[i]) == 0) {
                                b = false;
                                goto store_bool;
                        }
                }
                snprintf(err, errlen, "'%s' is not %s", value, kind_hint(st->kind));
                return -EINVAL;
store_bool:
                memcpy(field, &b, sizeof(b));
                return 0;
        }
        case KIND_SIZE:
                r = parse_size(value, &v);
                break;
        case KIND_COUNT: {
                const char *end;

                r = parse_unsigned(value, 10, &v, &end);
                if (r == 0 && *end)
                        r = -EINVAL;
                break;
        }
        case KIND_SECONDS:
                r = parse_seconds(value, &v);
                break;
        case KIND_MODE: {
                const char *end;

                r = parse_unsigned(value, 8, &v, &end);
                if (r == 0 && *end)
                        r = -EINVAL;
                break;
        }
        }

        if (r == -EINVAL) {
                snprintf(err, errlen, "'%s' is not %s", value, kind_hint(st->kind));
                return -EINVAL;
        }
        if (r < 0 || v < st->min || v > st->max) {
                char lo[32], hi[32];

                format_number(st, st->min, lo, sizeof(lo));
                format_number(st, st->max, hi, sizeof(hi));
                snprintf(err, errlen, "'%s' is out of range (%s to %s)", value, lo, hi);
                return -EINVAL;
        }

        if (st->width == sizeof(uint64_t)) {
                memcpy(field, &v, sizeof(v));
        } else {
                uint32_t v32 = (uint32_t)v; /* st->max keeps it in range */

                memcpy(field, &v32, sizeof(v32));
        }
        return 0;
}

static const struct setting *setting_find(const char *section, const char *key)
{
        for (size_t i = 0; i < N_SETTINGS; i++)
                if (strcmp(settings[i].section, section) == 0 && strcmp(settings[i].key, key) == 0)
                        return &settings[i];
        return NULL;
}

/* Where a setting's value came from, so that a later check can point at it. */
struct origin {
        int line;  /* in the config file; 0 if not from the file */
        bool flag; /* from the command line */
};

/* ---- the INI file ------------------------------------------------------------- */

struct ini_state {
        struct cow_config *cfg;
        struct origin *origins; /* one per settings[] entry */
        FILE *file;
        int line; /* of the line libinih is handling */
        char msg[512]; /* the first error, without its line */
        int msg_line;
        bool failed;
};

/* libinih reader: fgets that counts lines, since the handler is not told its line. */
static char *ini_read_line(char *buf, int size, void *stream)
{
        struct ini_state *state = stream;
        char *r = fgets(buf, size, state->file);

        if (r)
                state->line++;
        return r;
}

/* libinih callback: one key. Returns nonzero to go on; zero marks the line as an error. */
static int ini_on_key(void *user, const char *section, const char *key, const char *value)
{
        struct ini_state *state = user;
        const struct setting *st;
        char why[256];

        /* libinih reports the first failing line; keep the message that goes with it. */
        if (state->failed)
                return 0;
        state->msg_line = state->line;

        st = setting_find(section, key);
        if (!st) {
                if (!*section)
                        snprintf(state->msg, sizeof(state->msg),
                                 "key '%s' outside a [section]", key);
                else
                        snprintf(state->msg, sizeof(state->msg), "unknown key [%s] %s", section,
                                 key);
                state->failed = true;
                return 0;
        }
        if (setting_apply(st, state->cfg, value, why, sizeof(why)) < 0) {
                snprintf(state->msg, sizeof(state->msg), "[%s] %s: %s", section, key, why);
                state->failed = true;
                return 0;
        }
        state->origins[st - settings] = (struct origin){ .line = state->line };
        return 1;
}

static int config_load_file(struct cow_config *cfg, struct origin *origins, const char *path,
                            char *err, size_t errlen)
{
        struct ini_state state = { .cfg = cfg, .origins = origins };
        int r;

        state.file = fopen(path, "re");
        if (!state.file) {
                snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
                return -EINVAL;
        }
        r = ini_parse_stream(ini_read_line, &state, ini_on_key, &state);
        fclose(state.file);
        if (r == 0)
                return 0;
        if (r == -2)
                snprintf(err, errlen, "%s: out of memory", path);
        else if (state.failed)
                snprintf(err, errlen, "%s:%d: %s", path, state.msg_line, state.msg);
        else
                snprintf(err, errlen, "%s:%d: syntax error (expected [section] or key = value)",
                         path, r);
        return -EINVAL;
}

/*
 * Words an engine's verdict on its settings so that it points where the
 * offending value was given: the engine names its own field, which the
 * table maps back to a key and the origin to a line or a flag.
 */
static void config_engine_error(const struct cow_config *cfg, const struct origin *origins,
                                const char *why, char *err, size_t errlen)
{
        for (size_t i = 0; i < N_SETTINGS; i++) {
                const struct setting *st = &settings[i];
                size_t n;

                if (!st->engine_field)
                        continue;
                n = strlen(st->engine_field);
                if (strncmp(why, st->engine_field, n) != 0 || why[n] != ' ')
                        continue;
                if (origins[i].flag) {
                        snprintf(err, errlen, "--%s: %s", st->flag, why);
                        return;
                }
                if (origins[i].line > 0) {
                        snprintf(err, errlen, "%s:%d: [%s] %s: %s", cfg->config_file,
                                 origins[i].line, st->section, st->key, why);
                        return;
                }
                break;
        }
        snprintf(err, errlen, "engine settings rejected: %s", why);
}

/* ---- command line --------------------------------------------------------------- */

enum {
        OPT_START_EMPTY = 255,
        OPT_SETTING_BASE = 256, /* getopt values OPT_SETTING_BASE + index into settings[] */
};

static void print_help(const char *argv0)
{
        struct cow_config def;

        cow_config_init(&def);
        printf("Usage: %s [OPTION]...\n"
               "Runs the cowd memory-management simulator daemon.\n"
               "\n"
               "Settings come from their defaults, then the INI file given with --config,\n"
               "then the flags below. Sizes accept K, M, G and T suffixes (powers of 1024).\n"
               "\n"
               "  -c, --config=FILE   read settings from FILE (default: none)\n"
               "  -h, --help          print this help and exit\n"
               "  -V, --version       print the version and exit\n"
               "      --start-empty   if the checkpoint in the state directory is refused\n"
               "                      (damaged, truncated, another version, or one that does\n"
               "                      not fit the settings), rename it aside and start with\n"
               "                      no processes, instead of refusing to start; a flag only,\n"
               "                      never a setting, so that it applies to one start\n"
               "\n",
               argv0);
        for (size_t i = 0; i < N_SETTINGS; i++) {
                const struct setting *st = &settings[i];
                const char *field = (const char *)&def + st->offset;
                char dflt[COW_CONFIG_PATH_MAX + 32];

                if (st->kind == KIND_STRING) {
                        snprintf(dflt, sizeof(dflt), "\"%s\"", field);
                } else if (st->kind == KIND_LEVEL) {
                        enum cow_log_level level;

                        memcpy(&level, field, sizeof(level));
                        snprintf(dflt, sizeof(dflt), "%s", cow_log_level_name(level));
                } else if (st->kind == KIND_POLICY) {
                        enum cow_policy policy;

                        memcpy(&policy, field, sizeof(policy));
                        snprintf(dflt, sizeof(dflt), "%s", cow_policy_name(policy));
                } else if (st->kind == KIND_BOOL) {
                        bool b;

                        memcpy(&b, field, sizeof(b));
                        snprintf(dflt, sizeof(dflt), "%s", b ? "true" : "false");
                } else {
                        uint64_t v = 0;

                        if (st->width == sizeof(uint64_t)) {
                                memcpy(&v, field, sizeof(v));
                        } else {
                                uint32_t v32;

                                memcpy(&v32, field, sizeof(v32));
                                v = v32;
                        }
                        format_number(st, v, dflt, sizeof(dflt));
                }
                printf("  --%s=%s\n      [%s] %s: %s (default: %s)\n", st->flag,
                       kind_metavar(st->kind), st->section, st->key, st->help, dflt);
        }
}

int cow_config_parse(struct cow_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
        struct option longopts[N_SETTINGS + 5];
        struct origin origins[N_SETTINGS] = { 0 };
        /* Flags are applied after the file, whatever their order on the command line. */
        const char **pending = NULL;
        const struct setting **pending_st = NULL;
        size_t n_pending = 0;
        const char *why = NULL;
        char msg[256];
        int r, c;

        cow_config_init(cfg);

        for (size_t i = 0; i < N_SETTINGS; i++)
                longopts[i] = (struct option){ settings[i].flag, required_argument, NULL,
                                               OPT_SETTING_BASE + (int)i };
        longopts[N_SETTINGS + 0] = (struct option){ "config", required_argument, NULL, 'c' };
        longopts[N_SETTINGS + 1] = (struct option){ "help", no_argument, NULL, 'h' };
        longopts[N_SETTINGS + 2] = (struct option){ "version", no_argument, NULL, 'V' };
        longopts[N_SETTINGS + 3] = (struct option){ "start-empty", no_argument, NULL,
                                                    OPT_START_EMPTY };
        longopts[N_SETTINGS + 4] = (struct option){ 0 };

        pending = calloc((size_t)argc + 1, sizeof(*pending));
        pending_st = calloc((size_t)argc + 1, sizeof(*pending_st));
        if (!pending || !pending_st) {
                snprintf(err, errlen, "out of memory");
                r = -ENOMEM;
                goto out;
        }

        opterr = 0; /* we word our own messages */
        optind = 0; /* 0, not 1: glibc then resets all of getopt, so parsing can repeat */
        while ((c = getopt_long(argc, argv, ":c:hV", longopts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        if (strlen(optarg) >= sizeof(cfg->config_file)) {
                                snprintf(err, errlen, "--config: path too long");
                                r = -EINVAL;
                                goto out;
                        }
                        snprintf(cfg->config_file, sizeof(cfg->config_file), "%s", optarg);
                        break;
                case 'h':
                        print_help(argv[0]);
                        r = COW_CONFIG_EXIT;
                        goto out;
                case 'V':
                        printf("cowd %s\n", COWD_VERSION);
                        r = COW_CONFIG_EXIT;
                        goto out;
                case OPT_START_EMPTY:
                        cfg->start_empty = true;
                        break;
                case ':':
                        snprintf(err, errlen, "%s needs a value", argv[optind - 1]);
                        r = -EINVAL;
                        goto out;
                case '?':
                        snprintf(err, errlen, "unknown option '%s' (see --help)",
                                 argv[optind - 1]);
                        r = -EINVAL;
                        goto out;
                default:
                        pending_st[n_pending] = &settings[c - OPT_SETTING_BASE];
                        pending[n_pending] = optarg;
                        n_pending++;
                        break;
                }
        }
        if (optind < argc) {
                snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
                r = -EINVAL;
                goto out;
        }

        if (cfg->config_file[0]) {
                r = config_load_file(cfg, origins, cfg->config_file, err, errlen);
                if (r < 0)
                        goto out;
        }

        for (size_t i = 0; i < n_pending; i++) {
                r = setting_apply(pending_st[i], cfg, pending[i], msg, sizeof(msg));
                if (r < 0) {
                        snprintf(err, errlen, "--%s: %s", pending_st[i]->flag, msg);
                        goto out;
                }
                origins[pending_st[i] - settings] = (struct origin){ .flag = true };
        }

        /* Checks that involve more than one setting, or the engine's own rules. */
        if (cfg->swap_bytes % cfg->engine.page_size) {
                snprintf(err, errlen, "swap size: %" PRIu64 " bytes is not a whole number of "
                                      "%u-byte pages", cfg->swap_bytes, cfg->engine.page_size);
                r = -EINVAL;
                goto out;
        }
        cfg->engine.swap_slots = cfg->swap_bytes / cfg->engine.page_size;
        if (cow_engine_config_check(&cfg->engine, &why) < 0) {
                config_engine_error(cfg, origins, why ? why : "invalid", err, errlen);
                r = -EINVAL;
                goto out;
        }
        {
                unsigned char addr[16];

                if (inet_pton(AF_INET, cfg->tcp_address, addr) != 1 &&
                    inet_pton(AF_INET6, cfg->tcp_address, addr) != 1) {
                        snprintf(err, errlen,
                                 "tcp_address: '%s' is not a numeric IPv4 or IPv6 address",
                                 cfg->tcp_address);
                        r = -EINVAL;
                        goto out;
                }
        }
        if (cfg->metrics_port != 0 && !cow_metrics_address_is_loopback(cfg->metrics_address)) {
                snprintf(err, errlen,
                         "metrics address: '%s' is not a loopback address (127.0.0.1 or ::1); "
                         "/metrics is served to this machine only",
                         cfg->metrics_address);
                r = -EINVAL;
                goto out;
        }
        if (cfg->tcp_port != 0 && !cfg->tcp_token_file[0]) {
                snprintf(err, errlen, "tcp_port: a TCP listener needs tcp_token_file: TCP "
                                      "carries no credentials, so clients prove who they are "
                                      "with a token");
                r = -EINVAL;
                goto out;
        }
        r = 0;
out:
        free(pending);
        free(pending_st);
        return r;
}
