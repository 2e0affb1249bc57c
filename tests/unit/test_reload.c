/* SPDX-License-Identifier: MIT */
/* What a reload changes: live settings are copied, fixed ones keep their old value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "reload.h"

static void live_settings_change(void **state)
{
        struct cow_config live, fresh;

        (void)state;
        cow_config_init(&live);
        fresh = live;
        fresh.max_connections = 7;
        fresh.idle_timeout_s = 9;
        fresh.max_page_map_pages = 11;
        fresh.output_watermark = 1u << 16;
        fresh.log_level = COW_LOG_DEBUG;
        fresh.checkpoint_interval_s = 60;
        fresh.engine.max_frames_per_owner = 5;
        fresh.engine.max_swap_slots_per_owner = 3;
        assert_int_equal(cow_reload_apply(&live, &fresh, NULL), 8);
        assert_memory_equal(&live, &fresh, sizeof(live));
}

static void fixed_settings_keep_their_old_value(void **state)
{
        struct cow_config live, fresh, before;

        (void)state;
        cow_config_init(&live);
        before = live;
        fresh = live;
        fresh.engine.mem_bytes *= 2;
        fresh.engine.page_size = 8192;
        fresh.engine.max_procs = 3;
        fresh.max_frame_bytes = 1u << 16;
        fresh.tcp_port = 7000;
        strcpy(fresh.socket_path, "/elsewhere.sock");
        strcpy(fresh.state_dir, "/var/lib/other");
        fresh.max_connections = 2; /* the one live change among them */
        assert_int_equal(cow_reload_apply(&live, &fresh, NULL), 1);
        before.max_connections = 2;
        assert_memory_equal(&live, &before, sizeof(live));
}

static void nothing_changed_is_nothing_applied(void **state)
{
        struct cow_config live, fresh;

        (void)state;
        cow_config_init(&live);
        fresh = live;
        /* Bytes after a string's end are not a change. */
        fresh.socket_path[sizeof(fresh.socket_path) - 1] = 'x';
        assert_int_equal(cow_reload_apply(&live, &fresh, NULL), 0);
        assert_int_equal(live.socket_path[sizeof(live.socket_path) - 1], 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(live_settings_change),
                cmocka_unit_test(fixed_settings_keep_their_old_value),
                cmocka_unit_test(nothing_changed_is_nothing_applied),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
