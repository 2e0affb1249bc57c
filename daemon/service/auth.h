/* SPDX-License-Identifier: MIT */
/*
 * Tokens for TCP clients. A Unix socket tells the daemon who is on the other
 * end (SO_PEERCRED); TCP does not, so a TCP client proves who it is with a
 * token its first request (hello) carries. The tokens live in a file only
 * the service can read, one line per user:
 *
 *     # uid  token
 *     1000   3f0c9e1d7a52b8e64c1f0a9d2e7b5c38
 *
 * A token stands for its uid exactly as a Unix peer with that uid would:
 * it owns the processes it makes and may act on no one else's (uid 0 on all).
 */
#ifndef COWD_SERVICE_AUTH_H
#define COWD_SERVICE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define COW_AUTH_TOKEN_MIN 16  /* shorter tokens are refused when the file is read */
#define COW_AUTH_TOKEN_MAX 256
#define COW_AUTH_MAX_ENTRIES 4096

typedef struct cow_auth cow_auth;

/*
 * Reads the token file at path. The file must be a regular file (not a
 * link), owned by the daemon's user and readable by no one else (mode 0600
 * or 0400), as ssh insists for its keys: a token others can read proves
 * nothing. Returns 0, or a negative errno with a sentence naming the file
 * and line in err.
 */
int cow_auth_load(const char *path, cow_auth **ret, char *err, size_t errlen);

/* Parses the file's contents (for the loader and the fuzzer). Same returns. */
int cow_auth_parse(const char *text, size_t len, cow_auth **ret, char *err, size_t errlen);

void cow_auth_free(cow_auth *a);

/* How many tokens were read. */
size_t cow_auth_count(const cow_auth *a);

/*
 * Looks token up. Returns 0 with the uid it stands for in *ret_uid, or
 * -EACCES. Takes the same time whatever the token's bytes and whichever
 * entry (if any) matches: every entry is compared over COW_AUTH_TOKEN_MAX
 * bytes without an early exit, so timing tells an attacker nothing about
 * how close a guess came.
 */
int cow_auth_check(const cow_auth *a, const void *token, size_t len, uint32_t *ret_uid);

#endif /* COWD_SERVICE_AUTH_H */
