/* SPDX-License-Identifier: MIT */
#include "value.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void value_clear(struct value *v)
{
        free(v->bytes);
        memset(v, 0, sizeof(*v));
}

void value_set_int(struct value *v, int64_t i, bool hex)
{
        value_clear(v);
        v->type = VALUE_INT;
        v->i = i;
        v->hex = hex;
}

int value_set_bytes(struct value *v, const void *data, size_t len)
{
        uint8_t *p = malloc(len + 1);
        if (!p)
                return -ENOMEM;
        if (len)
                memcpy(p, data, len);
        p[len] = '\0';
        value_clear(v);
        v->type = VALUE_BYTES;
        v->bytes = p;
        v->len = len;
        return 0;
}

int value_copy(struct value *dst, const struct value *src)
{
        if (src->type == VALUE_BYTES)
                return value_set_bytes(dst, src->bytes, src->len);
        value_clear(dst);
        *dst = *src;
        dst->bytes = NULL;
        return 0;
}

const char *value_format(const struct value *v, char *buf, size_t len)
{
        size_t o = 0;

        if (len == 0)
                return buf;
        switch (v->type) {
        case VALUE_NONE:
                snprintf(buf, len, "nothing");
                break;
        case VALUE_INT:
                if (v->hex)
                        snprintf(buf, len, "0x%" PRIx64, (uint64_t)v->i);
                else
                        snprintf(buf, len, "%" PRId64, v->i);
                break;
        case VALUE_BYTES:
                /* Quote and escape, leaving room for the closing quote and "...". */
                buf[o++] = '"';
                for (size_t k = 0; k < v->len && o + 8 < len; k++) {
                        uint8_t b = v->bytes[k];
                        if (b == '"' || b == '\\')
                                o += (size_t)snprintf(buf + o, len - o, "\\%c", b);
                        else if (b == '\n')
                                o += (size_t)snprintf(buf + o, len - o, "\\n");
                        else if (b >= 0x20 && b < 0x7f)
                                buf[o++] = (char)b;
                        else
                                o += (size_t)snprintf(buf + o, len - o, "\\x%02x", b);
                        if (k + 1 < v->len && o + 8 >= len) {
                                o += (size_t)snprintf(buf + o, len - o, "...");
                                break;
                        }
                }
                if (o + 1 < len)
                        buf[o++] = '"';
                buf[o < len ? o : len - 1] = '\0';
                break;
        }
        return buf;
}
