/* SPDX-License-Identifier: MIT */
/* Where a cowd daemon listens by default; the daemon and every client agree on it. */
#ifndef COWD_PROTO_ENDPOINT_H
#define COWD_PROTO_ENDPOINT_H

#include <stddef.h>

/* Environment variable that overrides the default Unix socket path. */
#define COW_SOCKET_ENV "COWD_SOCKET"

/*
 * Writes the default Unix socket path into buf: $COWD_SOCKET if set, else
 * $XDG_RUNTIME_DIR/cowd.sock, else /tmp/cowd-UID/cowd.sock. A directory an
 * ordinary user can create. Returns 0, or -ENAMETOOLONG if buf is too small.
 */
int cow_default_socket_path(char *buf, size_t len);

/* The directory of the default path without $COWD_SOCKET: $XDG_RUNTIME_DIR or
 * /tmp/cowd-UID, which the daemon creates (mode 0700) when missing. */
int cow_default_socket_dir(char *buf, size_t len);

#endif /* COWD_PROTO_ENDPOINT_H */
