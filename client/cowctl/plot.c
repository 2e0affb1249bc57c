/* SPDX-License-Identifier: MIT */
#include "plot.h"

#include <errno.h>
#include <math.h>

#define W 640.0
#define H 400.0
#define LEFT 70.0
#define RIGHT 150.0 /* room for the legend */
#define TOP 40.0
#define BOTTOM 50.0

static const char *const colours[] = { "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                       "#8c564b" };

/* Writes s with the five XML specials escaped. */
static void put_text(FILE *f, const char *s)
{
        for (; s && *s; s++) {
                switch (*s) {
                case '<':
                        fputs("&lt;", f);
                        break;
                case '>':
                        fputs("&gt;", f);
                        break;
                case '&':
                        fputs("&amp;", f);
                        break;
                case '"':
                        fputs("&quot;", f);
                        break;
                case '\'':
                        fputs("&apos;", f);
                        break;
                default:
                        fputc(*s, f);
                }
        }
}

int plot_svg(FILE *f, const char *title, const char *xlabel, const char *ylabel,
             const struct plot_series *series, size_t nseries)
{
        double xmin = INFINITY, xmax = -INFINITY, ymax = 0;

        for (size_t s = 0; s < nseries; s++)
                for (size_t i = 0; i < series[s].n; i++) {
                        xmin = fmin(xmin, series[s].x[i]);
                        xmax = fmax(xmax, series[s].x[i]);
                        ymax = fmax(ymax, series[s].y[i]);
                }
        if (!(xmin <= xmax)) {
                xmin = 0;
                xmax = 1;
        }
        if (xmax == xmin)
                xmax = xmin + 1;
        if (ymax <= 0)
                ymax = 1;
        ymax *= 1.1; /* headroom for the labels */

        const double pw = W - LEFT - RIGHT, ph = H - TOP - BOTTOM;
#define PX(v) (LEFT + ((v) - xmin) / (xmax - xmin) * pw)
#define PY(v) (TOP + ph - (v) / ymax * ph)

        fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                   "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n",
                W, H, W, H);
        fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
        fprintf(f, "<text x=\"%.1f\" y=\"22\" font-size=\"15\" text-anchor=\"middle\">", W / 2);
        put_text(f, title);
        fprintf(f, "</text>\n");

        /* Axes, with five ticks on y and one tick per distinct x of the first series. */
        fprintf(f, "<path d=\"M%.1f %.1f V%.1f H%.1f\" stroke=\"black\" fill=\"none\"/>\n", LEFT,
                TOP, TOP + ph, LEFT + pw);
        for (int t = 0; t <= 5; t++) {
                double v = ymax / 1.1 * t / 5;
                fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                           "stroke=\"#ddd\"/>\n",
                        LEFT, PY(v), LEFT + pw, PY(v));
                fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n",
                        LEFT - 6, PY(v) + 4, v);
        }
        if (nseries > 0)
                for (size_t i = 0; i < series[0].n; i++)
                        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n",
                                PX(series[0].x[i]), TOP + ph + 18, series[0].x[i]);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", LEFT + pw / 2,
                H - 10);
        put_text(f, xlabel);
        fprintf(f, "</text>\n<text transform=\"translate(16 %.1f) rotate(-90)\" "
                   "text-anchor=\"middle\">", TOP + ph / 2);
        put_text(f, ylabel);
        fprintf(f, "</text>\n");

        for (size_t s = 0; s < nseries; s++) {
                const struct plot_series *p = &series[s];
                const char *c = colours[s % (sizeof(colours) / sizeof(colours[0]))];

                fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", c);
                for (size_t i = 0; i < p->n; i++)
                        fprintf(f, "%s%.1f,%.1f", i ? " " : "", PX(p->x[i]), PY(p->y[i]));
                fprintf(f, "\"/>\n");
                for (size_t i = 0; i < p->n; i++) {
                        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n",
                                PX(p->x[i]), PY(p->y[i]), c);
                        if (p->labels && p->labels[i]) {
                                /* Series offset sideways so equal points stay readable. */
                                fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" fill=\"%s\" "
                                           "font-size=\"10\">",
                                        PX(p->x[i]) + 5 + 14.0 * (double)s, PY(p->y[i]) - 6, c);
                                put_text(f, p->labels[i]);
                                fprintf(f, "</text>\n");
                        }
                }
                double ly = TOP + 10 + 20.0 * (double)s;
                fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                           "stroke-width=\"2\"/>\n",
                        W - RIGHT + 20, ly, W - RIGHT + 45, ly, c);
                fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", W - RIGHT + 52, ly + 4);
                put_text(f, p->name);
                fprintf(f, "</text>\n");
        }
        fprintf(f, "</svg>\n");
#undef PX
#undef PY
        return ferror(f) ? -EIO : 0;
}
