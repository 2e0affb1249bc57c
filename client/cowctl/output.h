/* SPDX-License-Identifier: MIT */
/*
 * Output in three shapes: aligned tables for a terminal, stable
 * tab-separated text when piped, and JSON with --json. A command builds
 * its result once (a table, a message, a value) and says which shape.
 */
#ifndef COWCTL_OUTPUT_H
#define COWCTL_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "value.h"

enum out_mode {
        OUT_TABLE, /* a terminal: aligned columns, headers in capitals */
        OUT_PLAIN, /* a pipe: tab-separated, lower-case header line */
        OUT_JSON,  /* --json */
};

struct table;

/* A table with ncols columns named names[0..ncols). NULL on allocation failure. */
struct table *table_new(size_t ncols, const char *const *names);
void table_free(struct table *t);

/* Append one cell; rows fill left to right. Return 0 or -ENOMEM. */
int table_add_str(struct table *t, const char *s);
int table_add_u64(struct table *t, uint64_t v);
int table_add_hex(struct table *t, uint64_t v);
int table_add_bool(struct table *t, bool v);

/* Prints the table; in JSON, an array of objects keyed by column name. */
void table_print(const struct table *t, enum out_mode mode, FILE *f);

/* Prints j (and drops the reference): indented on a terminal, one line otherwise. */
void out_json(json_t *j, FILE *f);

/* Every scalar field of m as "name value" lines, or one JSON object. */
void out_message(const ProtobufCMessage *m, enum out_mode mode, FILE *f);

/* m as a JSON object of its scalar fields; NULL on allocation failure. */
json_t *out_message_json(const ProtobufCMessage *m);

/* A single result: the bare value as text, {"key": value} in JSON. */
void out_value(const char *key, const struct value *v, enum out_mode mode, FILE *f);

/* The classic 16-bytes-a-line dump, offsets shown as addresses from addr. */
void out_hexdump(FILE *f, uint64_t addr, const uint8_t *data, size_t len);

/*
 * Reads the scalar field called name from m into *ret (booleans and enums
 * as integers, strings as bytes). Returns 0, or -ENOENT when m has no such
 * scalar field.
 */
int out_message_field(const ProtobufCMessage *m, const char *name, struct value *ret);

#endif /* COWCTL_OUTPUT_H */
