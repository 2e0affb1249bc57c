/* SPDX-License-Identifier: MIT */
/* What the operation layer (ops.c) may adjust on a connection; not part of the public API. */
#ifndef COWC_CONN_INTERNAL_H
#define COWC_CONN_INTERNAL_H

#include <stdint.h>

#include "cowd/client.h"

/* Adopts the frame limit the server announced in its hello (ignored when 0). */
void cowc_conn_set_max_frame(cowc_conn *c, uint32_t max);

/* The frame limit in force: the server's after hello, else the options'. */
uint32_t cowc_conn_max_frame(const cowc_conn *c);

/* The token cowc_hello() sends (from cowc_options), or NULL. */
const char *cowc_conn_token(const cowc_conn *c);

#endif /* COWC_CONN_INTERNAL_H */
