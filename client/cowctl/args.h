/* SPDX-License-Identifier: MIT */
/*
 * Parsing of command-line words: sizes, protections, pids and options.
 * Pure functions with no I/O, shared by the commands and the script parser.
 */
#ifndef COWCTL_ARGS_H
#define COWCTL_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Parses a number: decimal, 0x hex, 0b binary, optionally followed by one
 * of K, M, G, T (powers of 1024, either case, an optional trailing "iB" or
 * "B"). Returns 0, -EINVAL for a malformed word, -ERANGE on overflow.
 */
int args_parse_size(const char *s, uint64_t *ret);

/* "r", "rw", "w", "none", "-", or a number 0-3. Returns 0 or -EINVAL. */
int args_parse_prot(const char *s, uint32_t *ret);

/* Writes "rw", "r-", "-w", "--" for prot into out[3]. */
const char *args_prot_string(uint32_t prot, char out[3]);

/* A pid: a number in 1..UINT32_MAX. Returns 0 or -EINVAL. */
int args_parse_pid(const char *s, uint32_t *ret);

/* An option a command accepts: "--shared" (flag) or "--addr" (takes a value). */
struct args_opt {
        const char *name;  /* with its dashes: "--addr", "-o" */
        bool has_value;
        bool seen;         /* set by args_split */
        const char *value; /* set by args_split for has_value options */
};

/*
 * Separates argv[1..argc) into options (matched against opts[0..nopts),
 * "--name value" or "--name=value") and positional words, stored in
 * pos[0..maxpos). "--" ends the options. Returns the number of positional
 * words, or -EINVAL with a sentence in why[0..whylen) for an unknown
 * option, a missing value or more than maxpos positional words.
 */
int args_split(int argc, char **argv, struct args_opt *opts, size_t nopts, char **pos,
               int maxpos, char *why, size_t whylen);

#endif /* COWCTL_ARGS_H */
