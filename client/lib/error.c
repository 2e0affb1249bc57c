/* SPDX-License-Identifier: MIT */
/* Status codes and fault kinds: names from the contract's own descriptors. */
#include "cowd/client.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* protoc-c names enum values in full ("COWD__V1__CODE__NOT_FOUND"); .name is the short one. */
static const char *enum_name(const ProtobufCEnumDescriptor *d, int value)
{
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
        return v ? v->name : NULL;
}

static int enum_value(const ProtobufCEnumDescriptor *d, const char *name)
{
        for (unsigned i = 0; i < d->n_values; i++)
                if (strcasecmp(d->values[i].name, name) == 0)
                        return d->values[i].value;
        return -1;
}

const char *cowc_code_name(int code)
{
        return enum_name(&cowd__v1__code__descriptor, code);
}

const char *cowc_fault_name(int fault)
{
        return enum_name(&cowd__v1__fault_kind__descriptor, fault);
}

int cowc_code_from_name(const char *name)
{
        return enum_value(&cowd__v1__code__descriptor, name);
}

int cowc_fault_from_name(const char *name)
{
        return enum_value(&cowd__v1__fault_kind__descriptor, name);
}

int cowc_error_from_response(const Cowd__V1__Response *resp, struct cowc_error *err)
{
        int code = resp->status ? (int)resp->status->code : 0;
        if (err) {
                memset(err, 0, sizeof(*err));
                err->code = code;
                if (resp->fault && resp->fault->kind != COWD__V1__FAULT_KIND__FAULT_NONE) {
                        err->fault = (int)resp->fault->kind;
                        err->fault_addr = resp->fault->addr;
                }
                if (resp->status && resp->status->message)
                        snprintf(err->message, sizeof(err->message), "%s", resp->status->message);
        }
        return code;
}

const char *cowc_error_format(const struct cowc_error *err, char *buf, size_t len)
{
        char what[64];
        const char *name;

        if (err->fault) {
                name = cowc_fault_name(err->fault);
                if (name)
                        snprintf(what, sizeof(what), "%s at 0x%" PRIx64, name, err->fault_addr);
                else
                        snprintf(what, sizeof(what), "fault %d at 0x%" PRIx64, err->fault,
                                 err->fault_addr);
        } else {
                name = cowc_code_name(err->code);
                if (name)
                        snprintf(what, sizeof(what), "%s", name);
                else
                        snprintf(what, sizeof(what), "status %d", err->code);
        }
        if (err->message[0])
                snprintf(buf, len, "%s: %s", what, err->message);
        else
                snprintf(buf, len, "%s", what);
        return buf;
}
