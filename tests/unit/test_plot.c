/* SPDX-License-Identifier: MIT */
/* The SVG line chart: one polyline per series, points inside the picture, text escaped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "plot.h"

static char *render(const struct plot_series *s, size_t n, const char *title)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        assert_non_null(f);
        assert_int_equal(plot_svg(f, title, "frames", "rate", s, n), 0);
        fclose(f);
        return buf;
}

static size_t count(const char *hay, const char *needle)
{
        size_t n = 0;
        for (const char *p = hay; (p = strstr(p, needle)); p++)
                n++;
        return n;
}

/* The y pixel of point i of the polyline number k (0-based). */
static double point_y(const char *svg, size_t k, size_t i)
{
        const char *p = svg;
        for (size_t j = 0; j <= k; j++) {
                p = strstr(p, "<polyline");
                assert_non_null(p);
                p++;
        }
        p = strstr(p, "points=\"") + 8;
        for (size_t j = 0; j < i; j++)
                p = strchr(p, ' ') + 1;
        double x, y;
        assert_int_equal(sscanf(p, "%lf,%lf", &x, &y), 2);
        assert_true(x >= 0 && x <= 640);
        assert_true(y >= 0 && y <= 400);
        return y;
}

static void test_one_line_per_series_higher_values_drawn_higher(void **state)
{
        (void)state;
        const double x[] = { 1, 2, 3, 4, 5 };
        const double fifo[] = { 1.0, 1.0, 0.75, 0.83, 0.42 };
        const double lru[] = { 1.0, 1.0, 0.83, 0.67, 0.42 };
        const char *const notes[] = { "12", "12", "9", "10", "5" };
        const struct plot_series s[] = {
                { "fifo", x, fifo, notes, 5 },
                { "lru", x, lru, NULL, 5 },
        };
        char *svg = render(s, 2, "Belady <&> \"anomaly\"");

        assert_int_equal(strncmp(svg, "<svg ", 5), 0);
        assert_non_null(strstr(svg, "</svg>\n"));
        assert_int_equal(count(svg, "<polyline"), 2);
        assert_int_equal(count(svg, "<circle"), 10);
        assert_non_null(strstr(svg, "Belady &lt;&amp;&gt; &quot;anomaly&quot;"));
        assert_null(strstr(svg, "<&>"));
        assert_non_null(strstr(svg, ">10</text>"));
        /* SVG's y grows downwards: fifo's 0.83 at 4 frames above its 0.75 at 3. */
        assert_true(point_y(svg, 0, 3) < point_y(svg, 0, 2));
        assert_true(point_y(svg, 1, 3) > point_y(svg, 1, 2));
        free(svg);
}

static void test_degenerate_input_still_draws(void **state)
{
        (void)state;
        const double x[] = { 3 };
        const double y[] = { 0 };
        const struct plot_series s[] = { { "one", x, y, NULL, 1 } };
        char *svg = render(s, 1, "single");

        assert_int_equal(count(svg, "<polyline"), 1);
        point_y(svg, 0, 0);
        assert_null(strstr(svg, "nan"));
        assert_null(strstr(svg, "inf"));
        free(svg);
        svg = render(NULL, 0, "empty");
        assert_int_equal(count(svg, "<polyline"), 0);
        assert_null(strstr(svg, "nan"));
        free(svg);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_one_line_per_series_higher_values_drawn_higher),
                cmocka_unit_test(test_degenerate_input_still_draws),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
