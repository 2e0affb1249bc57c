/* SPDX-License-Identifier: MIT */
/*
 * Leveled logging to stderr.
 *
 * Under systemd (stderr connected to the journal, as $JOURNAL_STREAM says)
 * each line starts with a "<N>" syslog priority and carries no timestamp, since
 * the journal adds its own; otherwise lines carry an ISO 8601 UTC timestamp
 * and the level's name. Only the daemon's outer layers log: the engine and
 * the codec return errors and never print.
 */
#ifndef COWD_SERVICE_LOG_H
#define COWD_SERVICE_LOG_H

#include <stdbool.h>

enum cow_log_level {
        COW_LOG_ERROR = 0,
        COW_LOG_WARNING = 1,
        COW_LOG_INFO = 2,
        COW_LOG_DEBUG = 3,
};

typedef struct cow_log cow_log;

/* Creates a logger that prints messages at level or more severe. */
int cow_log_new(enum cow_log_level level, cow_log **ret);

/* Accepts NULL. */
void cow_log_free(cow_log *log);

/* From now on prints messages at level or more severe (a reload changes it). */
void cow_log_set_level(cow_log *log, enum cow_log_level level);

/* Whether a message at level would be printed; lets callers skip costly formatting. */
bool cow_log_enabled(const cow_log *log, enum cow_log_level level);

/* Prints one line (a trailing newline is added). log may be NULL: nothing is printed. */
void cow_log_printf(const cow_log *log, enum cow_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Parses "error", "warning", "info" or "debug". Returns 0 or -EINVAL. */
int cow_log_level_parse(const char *s, enum cow_log_level *ret_level);

/* The name cow_log_level_parse accepts for level. */
const char *cow_log_level_name(enum cow_log_level level);

#define log_error(log, ...) cow_log_printf((log), COW_LOG_ERROR, __VA_ARGS__)
#define log_warning(log, ...) cow_log_printf((log), COW_LOG_WARNING, __VA_ARGS__)
#define log_info(log, ...) cow_log_printf((log), COW_LOG_INFO, __VA_ARGS__)
#define log_debug(log, ...) cow_log_printf((log), COW_LOG_DEBUG, __VA_ARGS__)

#endif /* COWD_SERVICE_LOG_H */
