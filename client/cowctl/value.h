/* SPDX-License-Identifier: MIT */
/* The values commands return and scripts compute with: an integer or bytes. */
#ifndef COWCTL_VALUE_H
#define COWCTL_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum value_type {
        VALUE_NONE = 0, /* the command produced nothing to keep */
        VALUE_INT,
        VALUE_BYTES,
};

struct value {
        enum value_type type;
        bool hex;       /* an address: shown as 0x... */
        int64_t i;      /* VALUE_INT */
        uint8_t *bytes; /* VALUE_BYTES, owned, NUL-terminated for convenience */
        size_t len;
};

/* Releases bytes and resets v to VALUE_NONE. Accepts a zeroed value. */
void value_clear(struct value *v);

void value_set_int(struct value *v, int64_t i, bool hex);

/* Copies data[0..len) into v. Returns 0 or -ENOMEM. */
int value_set_bytes(struct value *v, const void *data, size_t len);

/* Deep copy. Returns 0 or -ENOMEM; dst is cleared first. */
int value_copy(struct value *dst, const struct value *src);

/*
 * Writes v for people into buf: 42, 0x10000, "hello\n" (quoted, escaped,
 * cut at len-1 bytes). Returns buf.
 */
const char *value_format(const struct value *v, char *buf, size_t len);

#endif /* COWCTL_VALUE_H */
