/* SPDX-License-Identifier: MIT */
#include "output.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cell {
        char *text;
        json_t *json;
        bool right; /* numbers line up on the right */
};

struct table {
        size_t ncols;
        const char *const *names;
        struct cell *cells;
        size_t ncells;
        size_t cap;
};

struct table *table_new(size_t ncols, const char *const *names)
{
        struct table *t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        t->ncols = ncols;
        t->names = names;
        return t;
}

void table_free(struct table *t)
{
        if (!t)
                return;
        for (size_t i = 0; i < t->ncells; i++) {
                free(t->cells[i].text);
                json_decref(t->cells[i].json);
        }
        free(t->cells);
        free(t);
}

/* Takes ownership of json (even on failure). */
static int table_add(struct table *t, const char *text, json_t *json, bool right)
{
        if (!json)
                return -ENOMEM;
        if (t->ncells == t->cap) {
                size_t cap = t->cap ? t->cap * 2 : 64;
                struct cell *p = realloc(t->cells, cap * sizeof(*p));
                if (!p) {
                        json_decref(json);
                        return -ENOMEM;
                }
                t->cells = p;
                t->cap = cap;
        }
        char *copy = strdup(text);
        if (!copy) {
                json_decref(json);
                return -ENOMEM;
        }
        t->cells[t->ncells++] = (struct cell){ .text = copy, .json = json, .right = right };
        return 0;
}

int table_add_str(struct table *t, const char *s)
{
        return table_add(t, s, json_string(s), false);
}

int table_add_u64(struct table *t, uint64_t v)
{
        char buf[32];
        snprintf(buf, sizeof(buf), "%" PRIu64, v);
        return table_add(t, buf, json_integer((json_int_t)v), true);
}

int table_add_hex(struct table *t, uint64_t v)
{
        /* JSON keeps addresses as numbers: jq can do arithmetic on them. */
        char buf[32];
        snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
        return table_add(t, buf, json_integer((json_int_t)v), true);
}

int table_add_bool(struct table *t, bool v)
{
        return table_add(t, v ? "yes" : "no", json_boolean(v), false);
}

static void print_upper(FILE *f, const char *s, int width)
{
        int n = 0;
        for (; *s; s++, n++)
                fputc(*s >= 'a' && *s <= 'z' ? *s - 'a' + 'A' : *s, f);
        for (; n < width; n++)
                fputc(' ', f);
}

void table_print(const struct table *t, enum out_mode mode, FILE *f)
{
        size_t rows = t->ncols ? t->ncells / t->ncols : 0;

        if (mode == OUT_JSON) {
                json_t *arr = json_array();
                for (size_t r = 0; arr && r < rows; r++) {
                        json_t *obj = json_object();
                        for (size_t c = 0; obj && c < t->ncols; c++)
                                json_object_set(obj, t->names[c],
                                                t->cells[r * t->ncols + c].json);
                        json_array_append_new(arr, obj);
                }
                out_json(arr, f);
                return;
        }
        if (mode == OUT_PLAIN) {
                for (size_t c = 0; c < t->ncols; c++)
                        fprintf(f, "%s%s", t->names[c], c + 1 < t->ncols ? "\t" : "\n");
                for (size_t i = 0; i < rows * t->ncols; i++)
                        fprintf(f, "%s%s", t->cells[i].text,
                                (i + 1) % t->ncols ? "\t" : "\n");
                return;
        }

        int width[32] = { 0 };
        size_t ncols = t->ncols < 32 ? t->ncols : 32;
        for (size_t c = 0; c < ncols; c++)
                width[c] = (int)strlen(t->names[c]);
        for (size_t i = 0; i < rows * t->ncols; i++) {
                size_t c = i % t->ncols;
                int w = (int)strlen(t->cells[i].text);
                if (c < ncols && w > width[c])
                        width[c] = w;
        }
        for (size_t c = 0; c < ncols; c++) {
                bool last = c + 1 == ncols;
                /* A heading sits over its column the way the column's cells do. */
                bool right = rows > 0 && t->cells[c].right;
                if (right)
                        fprintf(f, "%*s", width[c] - (int)strlen(t->names[c]), "");
                print_upper(f, t->names[c], right || last ? 0 : width[c]);
                if (!last)
                        fputs("  ", f);
        }
        fputc('\n', f);
        for (size_t r = 0; r < rows; r++) {
                for (size_t c = 0; c < ncols; c++) {
                        const struct cell *cell = &t->cells[r * t->ncols + c];
                        bool last = c + 1 == ncols;
                        if (cell->right)
                                fprintf(f, "%*s", width[c], cell->text);
                        else
                                fprintf(f, "%-*s", last ? 0 : width[c], cell->text);
                        if (!last)
                                fputs("  ", f);
                }
                fputc('\n', f);
        }
}

void out_json(json_t *j, FILE *f)
{
        if (!j)
                return;
        size_t flags = isatty(fileno(f)) ? JSON_INDENT(2) : JSON_COMPACT;
        json_dumpf(j, f, flags | JSON_PRESERVE_ORDER);
        fputc('\n', f);
        json_decref(j);
}

/* The address of field fd inside m. */
static const void *field_ptr(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd)
{
        return (const char *)m + fd->offset;
}

/* Scalar, singular fields only: the statistics messages are made of nothing else. */
static bool field_is_scalar(const ProtobufCFieldDescriptor *fd)
{
        return fd->label != PROTOBUF_C_LABEL_REPEATED && fd->type != PROTOBUF_C_TYPE_MESSAGE &&
               fd->type != PROTOBUF_C_TYPE_BYTES;
}

static int field_value(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd,
                       struct value *ret)
{
        const void *p = field_ptr(m, fd);
        switch (fd->type) {
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
                value_set_int(ret, *(const uint32_t *)p, false);
                return 0;
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
        case PROTOBUF_C_TYPE_ENUM:
                value_set_int(ret, *(const int32_t *)p, false);
                return 0;
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                /* Addresses are the only uint64 fields worth showing in hex. */
                value_set_int(ret, (int64_t) * (const uint64_t *)p, strcmp(fd->name, "addr") == 0);
                return 0;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
                value_set_int(ret, *(const int64_t *)p, false);
                return 0;
        case PROTOBUF_C_TYPE_BOOL:
                value_set_int(ret, *(const protobuf_c_boolean *)p ? 1 : 0, false);
                return 0;
        case PROTOBUF_C_TYPE_STRING: {
                const char *s = *(char *const *)p;
                return value_set_bytes(ret, s ? s : "", s ? strlen(s) : 0);
        }
        default:
                return -ENOENT;
        }
}

int out_message_field(const ProtobufCMessage *m, const char *name, struct value *ret)
{
        const ProtobufCFieldDescriptor *fd =
                protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
        if (!fd || !field_is_scalar(fd))
                return -ENOENT;
        return field_value(m, fd, ret);
}

json_t *out_message_json(const ProtobufCMessage *m)
{
        json_t *obj = json_object();
        for (unsigned i = 0; obj && i < m->descriptor->n_fields; i++) {
                const ProtobufCFieldDescriptor *fd = &m->descriptor->fields[i];
                struct value v = { 0 };
                if (!field_is_scalar(fd) || field_value(m, fd, &v) < 0)
                        continue;
                if (v.type == VALUE_INT)
                        json_object_set_new(obj, fd->name, fd->type == PROTOBUF_C_TYPE_BOOL
                                                                   ? json_boolean(v.i)
                                                                   : json_integer(v.i));
                else
                        json_object_set_new(obj, fd->name, json_string((const char *)v.bytes));
                value_clear(&v);
        }
        return obj;
}

void out_message(const ProtobufCMessage *m, enum out_mode mode, FILE *f)
{
        if (mode == OUT_JSON) {
                out_json(out_message_json(m), f);
                return;
        }
        int width = 0;
        for (unsigned i = 0; i < m->descriptor->n_fields; i++) {
                int w = (int)strlen(m->descriptor->fields[i].name);
                if (w > width)
                        width = w;
        }
        for (unsigned i = 0; i < m->descriptor->n_fields; i++) {
                const ProtobufCFieldDescriptor *fd = &m->descriptor->fields[i];
                struct value v = { 0 };
                char buf[128];
                if (!field_is_scalar(fd) || field_value(m, fd, &v) < 0)
                        continue;
                const char *text = v.type == VALUE_BYTES ? (const char *)v.bytes
                                                         : value_format(&v, buf, sizeof(buf));
                if (mode == OUT_TABLE)
                        fprintf(f, "%-*s  %s\n", width, fd->name, text);
                else
                        fprintf(f, "%s\t%s\n", fd->name, text);
                value_clear(&v);
        }
}

void out_value(const char *key, const struct value *v, enum out_mode mode, FILE *f)
{
        char buf[256];
        if (mode == OUT_JSON) {
                json_t *obj = json_object();
                if (v->type == VALUE_INT)
                        json_object_set_new(obj, key, json_integer(v->i));
                else if (v->type == VALUE_BYTES)
                        json_object_set_new(obj, key,
                                            json_stringn((const char *)v->bytes, v->len));
                out_json(obj, f);
                return;
        }
        fprintf(f, "%s\n", value_format(v, buf, sizeof(buf)));
}

void out_hexdump(FILE *f, uint64_t addr, const uint8_t *data, size_t len)
{
        for (size_t off = 0; off < len; off += 16) {
                fprintf(f, "%012" PRIx64 " ", addr + off);
                for (size_t k = 0; k < 16; k++) {
                        if (k == 8)
                                fputc(' ', f);
                        if (off + k < len)
                                fprintf(f, " %02x", data[off + k]);
                        else
                                fputs("   ", f);
                }
                fputs("  |", f);
                for (size_t k = 0; k < 16 && off + k < len; k++) {
                        uint8_t b = data[off + k];
                        fputc(b >= 0x20 && b < 0x7f ? b : '.', f);
                }
                fputs("|\n", f);
        }
}
