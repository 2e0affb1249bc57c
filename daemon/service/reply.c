/* SPDX-License-Identifier: MIT */
#include "reply.h"

#include <errno.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A part of a reply: allocations are chained so that one walk frees them all. */
struct part {
        struct part *next;
        alignas(max_align_t) unsigned char data[];
};

struct cow_reply {
        Cowd__V1__Response response;
        /* Status and fault are in every reply worth sending, so they live here. */
        Cowd__V1__Status status;
        Cowd__V1__Fault fault;
        char oom_message[32];
        struct part *parts;
        /* A deferred reply: see reply.h. */
        bool deferred;
        bool abandoned;
        void (*on_ready)(cow_reply *reply, void *arg);
        void *on_ready_arg;
        uint8_t *lent;   /* cow_reply_lend(): a buffer for data, NULL once taken */
        size_t lent_len;
        void *held; /* cow_reply_hold() */
        void (*release)(void *obj);
};

int cow_reply_new(uint64_t id, cow_reply **ret)
{
        cow_reply *reply = calloc(1, sizeof(*reply));

        if (!reply)
                return -ENOMEM;
        cowd__v1__response__init(&reply->response);
        cowd__v1__status__init(&reply->status);
        cowd__v1__fault__init(&reply->fault);
        reply->response.id = id;
        /* Always sent, even when OK: one status check fits every reply. */
        reply->response.status = &reply->status;
        reply->status.code = COWD__V1__CODE__OK;
        *ret = reply;
        return 0;
}

int cow_reply_new_error(uint64_t id, Cowd__V1__Code code, const char *message, cow_reply **ret)
{
        cow_reply *reply = NULL;
        int r;

        r = cow_reply_new(id, &reply);
        if (r < 0)
                return r;
        r = cow_reply_set_status(reply, code, "%s", message);
        if (r < 0) {
                cow_reply_free(reply);
                return r;
        }
        *ret = reply;
        return 0;
}

void cow_reply_free(cow_reply *reply)
{
        struct part *p, *next;

        if (!reply)
                return;
        if (reply->held)
                reply->release(reply->held);
        for (p = reply->parts; p; p = next) {
                next = p->next;
                free(p);
        }
        free(reply);
}

Cowd__V1__Response *cow_reply_response(cow_reply *reply)
{
        return &reply->response;
}

/* A part of size bytes, zeroed or not. */
static void *reply_part(cow_reply *reply, size_t size, bool zero)
{
        struct part *p;

        if (size > SIZE_MAX - sizeof(*p))
                return NULL;
        p = zero ? calloc(1, sizeof(*p) + size) : malloc(sizeof(*p) + size);
        if (!p)
                return NULL;
        p->next = reply->parts;
        reply->parts = p;
        return p->data;
}

void *cow_reply_alloc(cow_reply *reply, size_t size)
{
        return reply_part(reply, size, true);
}

void cow_reply_lend(cow_reply *reply, uint8_t *buf, size_t len)
{
        reply->lent = buf;
        reply->lent_len = len;
}

uint8_t *cow_reply_data(cow_reply *reply, size_t len)
{
        uint8_t *buf = reply->lent;

        if (buf && reply->lent_len == len) {
                reply->lent = NULL;
                return buf;
        }
        /* Not zeroed: 4 KiB of memset per read was a fifth of the daemon's work. */
        return reply_part(reply, len, false);
}

int cow_reply_set_status(cow_reply *reply, Cowd__V1__Code code, const char *fmt, ...)
{
        char *msg;
        va_list ap;

        reply->status.code = code;
        reply->status.message = (char *)"";
        if (code != COWD__V1__CODE__OK)
                reply->response.result_case = COWD__V1__RESPONSE__RESULT__NOT_SET;

        msg = cow_reply_alloc(reply, COW_REPLY_MESSAGE_MAX);
        if (!msg)
                return -ENOMEM;
        va_start(ap, fmt);
        vsnprintf(msg, COW_REPLY_MESSAGE_MAX, fmt, ap);
        va_end(ap);
        reply->status.message = msg;
        return 0;
}

void cow_reply_set_fault(cow_reply *reply, Cowd__V1__FaultKind kind, uint64_t addr)
{
        reply->fault.kind = kind;
        reply->fault.addr = addr;
        reply->response.fault = &reply->fault;
}

void cow_reply_fail_oom(cow_reply *reply)
{
        snprintf(reply->oom_message, sizeof(reply->oom_message), "daemon out of memory");
        reply->status.code = COWD__V1__CODE__INTERNAL;
        reply->status.message = reply->oom_message;
        reply->response.result_case = COWD__V1__RESPONSE__RESULT__NOT_SET;
}

Cowd__V1__Code cow_reply_code(const cow_reply *reply)
{
        return reply->status.code;
}

void cow_reply_defer(cow_reply *reply)
{
        reply->deferred = true;
}

bool cow_reply_is_deferred(const cow_reply *reply)
{
        return reply->deferred;
}

void cow_reply_on_ready(cow_reply *reply, void (*fn)(cow_reply *reply, void *arg), void *arg)
{
        if (!reply->deferred) {
                fn(reply, arg);
                return;
        }
        reply->on_ready = fn;
        reply->on_ready_arg = arg;
}

void cow_reply_ready(cow_reply *reply)
{
        reply->deferred = false;
        if (reply->abandoned) {
                cow_reply_free(reply);
                return;
        }
        if (reply->on_ready)
                reply->on_ready(reply, reply->on_ready_arg);
}

void cow_reply_abandon(cow_reply *reply)
{
        if (!reply->deferred) {
                cow_reply_free(reply);
                return;
        }
        reply->abandoned = true;
        reply->on_ready = NULL;
}

void cow_reply_hold(cow_reply *reply, void *obj, void (*release)(void *obj))
{
        reply->held = obj;
        reply->release = release;
}
