/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct cow_log {
        enum cow_log_level level;
        bool journal; /* stderr is the journal: "<N>" prefixes, no timestamps */
};

static const char *const level_names[] = {
        [COW_LOG_ERROR] = "error",
        [COW_LOG_WARNING] = "warning",
        [COW_LOG_INFO] = "info",
        [COW_LOG_DEBUG] = "debug",
};

/* syslog(3) priorities, spelled out so that this file need not include syslog.h. */
static const int level_priorities[] = {
        [COW_LOG_ERROR] = 3,
        [COW_LOG_WARNING] = 4,
        [COW_LOG_INFO] = 6,
        [COW_LOG_DEBUG] = 7,
};

/*
 * systemd sets $JOURNAL_STREAM to "DEV:INODE" of the stream it connected to
 * stdout/stderr. Checking it against stderr's own identity, rather than only
 * its presence, keeps a child whose stderr was redirected from claiming the
 * journal's format.
 */
static bool stderr_is_journal(void)
{
        const char *env = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!env || sscanf(env, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int cow_log_new(enum cow_log_level level, cow_log **ret)
{
        cow_log *log;

        if ((unsigned)level > COW_LOG_DEBUG)
                return -EINVAL;
        log = calloc(1, sizeof(*log));
        if (!log)
                return -ENOMEM;
        log->level = level;
        log->journal = stderr_is_journal();
        *ret = log;
        return 0;
}

void cow_log_free(cow_log *log)
{
        free(log);
}

void cow_log_set_level(cow_log *log, enum cow_log_level level)
{
        if ((unsigned)level <= COW_LOG_DEBUG)
                log->level = level;
}

bool cow_log_enabled(const cow_log *log, enum cow_log_level level)
{
        return log && level <= log->level;
}

void cow_log_printf(const cow_log *log, enum cow_log_level level, const char *fmt, ...)
{
        char prefix[64];
        char msg[1024];
        va_list ap;

        if (!cow_log_enabled(log, level))
                return;

        if (log->journal) {
                snprintf(prefix, sizeof(prefix), "<%d>", level_priorities[level]);
        } else {
                struct timespec ts;
                struct tm tm;

                clock_gettime(CLOCK_REALTIME, &ts);
                gmtime_r(&ts.tv_sec, &tm);
                snprintf(prefix, sizeof(prefix), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s: ",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                         tm.tm_sec, ts.tv_nsec / 1000000L, level_names[level]);
        }

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);

        /* One write per line, so that lines never interleave with other writers. */
        fprintf(stderr, "%s%s\n", prefix, msg);
}

int cow_log_level_parse(const char *s, enum cow_log_level *ret_level)
{
        for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
                if (strcasecmp(s, level_names[i]) == 0) {
                        *ret_level = (enum cow_log_level)i;
                        return 0;
                }
        }
        return -EINVAL;
}

const char *cow_log_level_name(enum cow_log_level level)
{
        if ((unsigned)level > COW_LOG_DEBUG)
                return "?";
        return level_names[level];
}
