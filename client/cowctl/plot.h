/* SPDX-License-Identifier: MIT */
/*
 * A line chart written as SVG text: one line per series of (x, y) points,
 * axes with ticks, a legend. Used for fault rate against frames. SVG is
 * plain text, so it is written directly: no library, and any browser shows
 * it.
 */
#ifndef COWCTL_PLOT_H
#define COWCTL_PLOT_H

#include <stddef.h>
#include <stdio.h>

struct plot_series {
        const char *name;
        const double *x;
        const double *y;
        const char *const *labels; /* a note beside each point (may be NULL) */
        size_t n;
};

/*
 * Writes the chart to f. Returns 0, or -EIO when writing failed (the
 * caller names the file).
 */
int plot_svg(FILE *f, const char *title, const char *xlabel, const char *ylabel,
             const struct plot_series *series, size_t nseries);

#endif /* COWCTL_PLOT_H */
