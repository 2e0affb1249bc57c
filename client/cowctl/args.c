/* SPDX-License-Identifier: MIT */
#include "args.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int args_parse_size(const char *s, uint64_t *ret)
{
        unsigned base = 10;
        uint64_t v = 0;
        bool any_digit = false;
        const char *p = s;

        if (!s || !*s)
                return -EINVAL;
        if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
                base = 16;
                p += 2;
        } else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B') && (p[2] == '0' || p[2] == '1')) {
                base = 2;
                p += 2;
        }
        for (; *p; p++) {
                unsigned d;
                if (*p >= '0' && *p <= '9')
                        d = (unsigned)(*p - '0');
                else if (base == 16 && isxdigit((unsigned char)*p))
                        d = (unsigned)(tolower((unsigned char)*p) - 'a' + 10);
                else if (*p == '_')
                        continue; /* 1_000_000 reads better than 1000000 */
                else
                        break;
                if (d >= base)
                        return -EINVAL;
                if (v > (UINT64_MAX - d) / base)
                        return -ERANGE;
                v = v * base + d;
                any_digit = true;
        }
        if (!any_digit) /* "_" or "0x_" is not a number */
                return -EINVAL;

        unsigned shift = 0;
        if (*p && base != 16) {
                switch (toupper((unsigned char)*p)) {
                case 'K': shift = 10; break;
                case 'M': shift = 20; break;
                case 'G': shift = 30; break;
                case 'T': shift = 40; break;
                default: return -EINVAL;
                }
                p++;
                if (strcasecmp(p, "ib") == 0 || strcasecmp(p, "b") == 0)
                        p += strlen(p);
        }
        if (*p)
                return -EINVAL;
        if (shift && v > (UINT64_MAX >> shift))
                return -ERANGE;
        *ret = v << shift;
        return 0;
}

int args_parse_prot(const char *s, uint32_t *ret)
{
        uint32_t prot = 0;

        if (strcmp(s, "none") == 0 || strcmp(s, "-") == 0 || strcmp(s, "--") == 0) {
                *ret = 0;
                return 0;
        }
        if (isdigit((unsigned char)s[0])) {
                if (s[1] || s[0] > '3')
                        return -EINVAL;
                *ret = (uint32_t)(s[0] - '0');
                return 0;
        }
        for (const char *p = s; *p; p++) {
                if (*p == 'r' && !(prot & 1))
                        prot |= 1;
                else if (*p == 'w' && !(prot & 2))
                        prot |= 2;
                else if (*p == '-')
                        continue;
                else
                        return -EINVAL;
        }
        if (!*s)
                return -EINVAL;
        *ret = prot;
        return 0;
}

const char *args_prot_string(uint32_t prot, char out[3])
{
        out[0] = (prot & 1) ? 'r' : '-';
        out[1] = (prot & 2) ? 'w' : '-';
        out[2] = '\0';
        return out;
}

int args_parse_pid(const char *s, uint32_t *ret)
{
        uint64_t v;
        if (args_parse_size(s, &v) < 0 || v == 0 || v > UINT32_MAX)
                return -EINVAL;
        *ret = (uint32_t)v;
        return 0;
}

/* An option word starts with '-' and is not a lone "-" (which means stdin). */
static bool is_option(const char *w)
{
        return w[0] == '-' && w[1] != '\0';
}

int args_split(int argc, char **argv, struct args_opt *opts, size_t nopts, char **pos,
               int maxpos, char *why, size_t whylen)
{
        int npos = 0;
        bool options_done = false;

        for (size_t i = 0; i < nopts; i++) {
                opts[i].seen = false;
                opts[i].value = NULL;
        }
        for (int i = 1; i < argc; i++) {
                const char *w = argv[i];
                if (!options_done && strcmp(w, "--") == 0) {
                        options_done = true;
                        continue;
                }
                if (options_done || !is_option(w)) {
                        if (npos >= maxpos) {
                                snprintf(why, whylen, "unexpected argument '%s'", w);
                                return -EINVAL;
                        }
                        pos[npos++] = argv[i];
                        continue;
                }
                const char *eq = strchr(w, '=');
                size_t nlen = eq ? (size_t)(eq - w) : strlen(w);
                struct args_opt *o = NULL;
                for (size_t k = 0; k < nopts; k++)
                        if (strlen(opts[k].name) == nlen && strncmp(opts[k].name, w, nlen) == 0)
                                o = &opts[k];
                if (!o) {
                        snprintf(why, whylen, "unknown option '%.*s'", (int)nlen, w);
                        return -EINVAL;
                }
                o->seen = true;
                if (!o->has_value) {
                        if (eq) {
                                snprintf(why, whylen, "option '%s' takes no value", o->name);
                                return -EINVAL;
                        }
                        continue;
                }
                if (eq) {
                        o->value = eq + 1;
                } else if (i + 1 < argc) {
                        o->value = argv[++i];
                } else {
                        snprintf(why, whylen, "option '%s' needs a value", o->name);
                        return -EINVAL;
                }
        }
        return npos;
}
