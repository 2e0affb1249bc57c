/* SPDX-License-Identifier: MIT */
/*
 * Runs a fuzz target over files without libFuzzer, so that every committed
 * corpus is a regression test in an ordinary (gcc or sanitizer) build.
 *
 * usage: fuzz_X FILE-OR-DIR...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
        FILE *f = fopen(path, "rbe");
        if (!f) {
                perror(path);
                return -1;
        }
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
                if (len == cap) {
                        cap = cap ? cap * 2 : 4096;
                        uint8_t *b = realloc(buf, cap);
                        if (!b) {
                                free(buf);
                                fclose(f);
                                return -1;
                        }
                        buf = b;
                }
                size_t n = fread(buf + len, 1, cap - len, f);
                if (n == 0)
                        break;
                len += n;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, len);
        free(buf);
        return 0;
}

static int run_path(const char *path, unsigned *count)
{
        struct stat st;
        if (stat(path, &st) < 0) {
                perror(path);
                return -1;
        }
        if (!S_ISDIR(st.st_mode)) {
                (*count)++;
                return run_file(path);
        }
        struct dirent **names;
        int n = scandir(path, &names, NULL, alphasort);
        if (n < 0) {
                perror(path);
                return -1;
        }
        int r = 0;
        for (int i = 0; i < n; i++) {
                if (r == 0 && names[i]->d_name[0] != '.') {
                        char sub[4096];
                        snprintf(sub, sizeof(sub), "%s/%s", path, names[i]->d_name);
                        r = run_path(sub, count);
                }
                free(names[i]);
        }
        free(names);
        return r;
}

int main(int argc, char **argv)
{
        unsigned count = 0;
        for (int i = 1; i < argc; i++)
                if (run_path(argv[i], &count) < 0)
                        return 1;
        if (count == 0) {
                fprintf(stderr, "%s: no inputs\n", argv[0]);
                return 1;
        }
        printf("%u inputs replayed\n", count);
        return 0;
}
