/* SPDX-License-Identifier: MIT */
/*
 * A fault injector for tests, loaded into the daemon with LD_PRELOAD; never
 * installed. It wraps write, pwrite, fsync, fdatasync, rename and renameat,
 * and makes one chosen call fail or wait.
 *
 * COWD_FAULT holds rules separated by commas, each CALL:MATCH:N:ACTION:
 *   CALL    write, pwrite, fsync, fdatasync or rename (rename also covers renameat);
 *   MATCH   a substring of the file's path (for an fd, as /proc/self/fd shows it; for
 *           rename, either name); empty matches every file;
 *   N       the rule acts on the Nth matching call only (1 = the first);
 *   ACTION  an errno name (EIO, ENOSPC, EDQUOT, EROFS): the call fails with it, doing
 *           nothing; or "block": the call waits until a byte can be read from the
 *           FIFO named by COWD_FAULT_GATE, then proceeds.
 * Calls are counted in memory shared across fork(), so that "the first fsync
 * of a checkpoint" means the same in the daemon and in each of its children.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_RULES 8

enum call { CALL_WRITE, CALL_PWRITE, CALL_FSYNC, CALL_FDATASYNC, CALL_RENAME };

struct rule {
        enum call call;
        char match[128];
        unsigned long nth;
        int err; /* 0: block */
};

static struct rule rules[MAX_RULES];
static size_t nrules;
static unsigned long *counts; /* shared across fork: one per rule */

static const struct {
        const char *name;
        int err;
} errnames[] = { { "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EDQUOT", EDQUOT }, { "EROFS", EROFS } };

static const char *const callnames[] = { "write", "pwrite", "fsync", "fdatasync", "rename" };

static void die(const char *what)
{
        fprintf(stderr, "fault_shim: bad COWD_FAULT: %s\n", what);
        _exit(2);
}

static int parse_rule(char *text, struct rule *r)
{
        char *f[4];
        size_t i;

        for (i = 0; i < 4; i++) {
                f[i] = text;
                text = i < 3 ? strchr(text, ':') : NULL;
                if (i < 3 && !text)
                        return -1;
                if (text)
                        *text++ = '\0';
        }
        for (i = 0; i < sizeof(callnames) / sizeof(callnames[0]); i++)
                if (strcmp(f[0], callnames[i]) == 0)
                        break;
        if (i == sizeof(callnames) / sizeof(callnames[0]))
                return -1;
        r->call = (enum call)i;
        if (strlen(f[1]) >= sizeof(r->match))
                return -1;
        strcpy(r->match, f[1]);
        r->nth = strtoul(f[2], NULL, 10);
        if (r->nth == 0)
                return -1;
        if (strcmp(f[3], "block") == 0) {
                r->err = 0;
                return 0;
        }
        for (i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
                if (strcmp(f[3], errnames[i].name) == 0) {
                        r->err = errnames[i].err;
                        return 0;
                }
        return -1;
}

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);

static void *real(const char *name)
{
        void *fn = dlsym(RTLD_NEXT, name);

        if (!fn)
                die(name);
        return fn;
}

__attribute__((constructor)) static void shim_init(void)
{
        const char *spec = getenv("COWD_FAULT");
        char buf[1024], *save = NULL;

        /* Resolved now, not at a first call that may come from a signal handler. */
        real_write = real("write");
        real_pwrite = real("pwrite");
        real_fsync = real("fsync");
        real_fdatasync = real("fdatasync");
        real_rename = real("rename");
        real_renameat = real("renameat");
        if (!spec || !*spec)
                return;
        if (strlen(spec) >= sizeof(buf))
                die("too long");
        strcpy(buf, spec);
        for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (nrules == MAX_RULES)
                        die("too many rules");
                if (parse_rule(tok, &rules[nrules]) < 0)
                        die(tok);
                nrules++;
        }
        counts = mmap(NULL, MAX_RULES * sizeof(*counts), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (counts == MAP_FAILED)
                die("cannot map the counters");
}

/* Waits for one byte on the gate FIFO. */
static void gate_wait(void)
{
        const char *gate = getenv("COWD_FAULT_GATE");
        char byte;
        int fd;

        if (!gate)
                die("block needs COWD_FAULT_GATE");
        do
                fd = open(gate, O_RDONLY | O_CLOEXEC);
        while (fd < 0 && errno == EINTR);
        if (fd < 0)
                die("cannot open COWD_FAULT_GATE");
        while (read(fd, &byte, 1) < 0 && errno == EINTR)
                ;
        close(fd);
}

/*
 * Counts a call to `call` on a file named path (or a, or b) against every
 * rule. Returns the errno to fail with, or 0 to go on (after waiting, for a
 * "block" rule).
 */
static int shim_check(enum call call, const char *a, const char *b)
{
        for (size_t i = 0; i < nrules; i++) {
                const struct rule *r = &rules[i];

                if (r->call != call)
                        continue;
                if (r->match[0] && !(a && strstr(a, r->match)) && !(b && strstr(b, r->match)))
                        continue;
                if (__atomic_add_fetch(&counts[i], 1, __ATOMIC_SEQ_CST) != r->nth)
                        continue;
                if (r->err)
                        return r->err;
                gate_wait();
        }
        return 0;
}

static int shim_check_fd(enum call call, int fd)
{
        char link[64], path[PATH_MAX];
        ssize_t n;

        if (nrules == 0)
                return 0;
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        n = readlink(link, path, sizeof(path) - 1);
        path[n > 0 ? n : 0] = '\0';
        return shim_check(call, path, NULL);
}

ssize_t write(int fd, const void *buf, size_t len)
{
        int err = shim_check_fd(CALL_WRITE, fd);

        if (err) {
                errno = err;
                return -1;
        }
        return real_write(fd, buf, len);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
        int err = shim_check_fd(CALL_PWRITE, fd);

        if (err) {
                errno = err;
                return -1;
        }
        return real_pwrite(fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
        return pwrite(fd, buf, len, off);
}

int fsync(int fd)
{
        int err = shim_check_fd(CALL_FSYNC, fd);

        if (err) {
                errno = err;
                return -1;
        }
        return real_fsync(fd);
}

int fdatasync(int fd)
{
        int err = shim_check_fd(CALL_FDATASYNC, fd);

        if (err) {
                errno = err;
                return -1;
        }
        return real_fdatasync(fd);
}

int rename(const char *from, const char *to)
{
        int err = nrules ? shim_check(CALL_RENAME, from, to) : 0;

        if (err) {
                errno = err;
                return -1;
        }
        return real_rename(from, to);
}

int renameat(int fromfd, const char *from, int tofd, const char *to)
{
        int err = nrules ? shim_check(CALL_RENAME, from, to) : 0;

        if (err) {
                errno = err;
                return -1;
        }
        return real_renameat(fromfd, from, tofd, to);
}
