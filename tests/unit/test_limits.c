/*
 * Span limits: spec defaults, every OTEL_*_LIMIT variable, span-specific over generic
 * variables, and invalid values warned about and ignored.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "agentaflow/trace.h"
#include "util/log_int.h"

static const char *const all_vars[] = {
    "OTEL_ATTRIBUTE_COUNT_LIMIT",        "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_SPAN_EVENT_COUNT_LIMIT",       "OTEL_SPAN_LINK_COUNT_LIMIT",
    "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",  "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
};

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(all_vars) / sizeof(all_vars[0]); i++)
        unsetenv(all_vars[i]);
    return 0;
}

static void assert_defaults(const af_span_limits *l)
{
    assert_int_equal(l->attribute_count, 128);
    assert_int_equal(l->attribute_value_length, AF_LIMIT_UNLIMITED);
    assert_int_equal(l->event_count, 128);
    assert_int_equal(l->link_count, 128);
    assert_int_equal(l->attribute_per_event_count, 128);
    assert_int_equal(l->attribute_per_link_count, 128);
}

static void test_defaults(void **state)
{
    (void)state;
    af_span_limits l;
    memset(&l, 0xEE, sizeof(l));
    af_span_limits_init(&l);
    assert_defaults(&l);
    /* No variables set: nothing changes and nothing is logged. */
    af_test_log_capture_begin();
    af_span_limits_from_env(&l);
    assert_string_equal(af_test_log_capture_text(), "");
    af_test_log_capture_end();
    assert_defaults(&l);
}

static void test_each_variable(void **state)
{
    (void)state;
    setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "10", 1);
    setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "20", 1);
    setenv("OTEL_SPAN_EVENT_COUNT_LIMIT", "30", 1);
    setenv("OTEL_SPAN_LINK_COUNT_LIMIT", "0", 1); /* zero is a valid limit: no links */
    setenv("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "50", 1);
    setenv("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "4294967295", 1);
    af_span_limits l;
    af_span_limits_init(&l);
    af_span_limits_from_env(&l);
    assert_int_equal(l.attribute_count, 10);
    assert_int_equal(l.attribute_value_length, 20);
    assert_int_equal(l.event_count, 30);
    assert_int_equal(l.link_count, 0);
    assert_int_equal(l.attribute_per_event_count, 50);
    assert_int_equal(l.attribute_per_link_count, UINT32_MAX);
}

static void test_generic_and_specific(void **state)
{
    (void)state;
    af_span_limits l;
    setenv("OTEL_ATTRIBUTE_COUNT_LIMIT", "64", 1);
    setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "256", 1);
    af_span_limits_init(&l);
    af_span_limits_from_env(&l);
    assert_int_equal(l.attribute_count, 64);
    assert_int_equal(l.attribute_value_length, 256);
    /* The generic count limit is for top-level attributes only. */
    assert_int_equal(l.attribute_per_event_count, 128);
    assert_int_equal(l.attribute_per_link_count, 128);

    setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "32", 1);
    setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100", 1);
    af_span_limits_init(&l);
    af_span_limits_from_env(&l);
    assert_int_equal(l.attribute_count, 32);
    assert_int_equal(l.attribute_value_length, 100);

    /* An invalid specific value leaves the generic one in force. */
    setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "lots", 1);
    af_test_log_capture_begin();
    af_span_limits_init(&l);
    af_span_limits_from_env(&l);
    assert_non_null(strstr(af_test_log_capture_text(), "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT"));
    af_test_log_capture_end();
    assert_int_equal(l.attribute_count, 64);
}

static void test_invalid_values_ignored(void **state)
{
    (void)state;
    static const char *const bad[] = {"abc", "-1", "12x", "4294967296", "99999999999999999999",
                                      "1.5", " "};
    /* Every value is refused by the same log line: more than the log's rate limit allows. */
    af__log_rate_limit(0, 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        for (size_t v = 0; v < sizeof(all_vars) / sizeof(all_vars[0]); v++)
            setenv(all_vars[v], bad[i], 1);
        af_span_limits l;
        af_span_limits_init(&l);
        af_test_log_capture_begin();
        af_span_limits_from_env(&l);
        const char *log = af_test_log_capture_text();
        for (size_t v = 0; v < sizeof(all_vars) / sizeof(all_vars[0]); v++)
            assert_non_null(strstr(log, all_vars[v]));
        af_test_log_capture_end();
        assert_defaults(&l);
    }
    af__log_rate_limit(AF__LOG_RATE_MAX, AF__LOG_RATE_WINDOW_NS);
    /* Empty values are unset: silently ignored. */
    for (size_t v = 0; v < sizeof(all_vars) / sizeof(all_vars[0]); v++)
        setenv(all_vars[v], "", 1);
    af_span_limits l;
    af_span_limits_init(&l);
    af_test_log_capture_begin();
    af_span_limits_from_env(&l);
    assert_string_equal(af_test_log_capture_text(), "");
    af_test_log_capture_end();
    assert_defaults(&l);
}

static void test_env_applies_over_existing_values(void **state)
{
    (void)state;
    af_span_limits l;
    af_span_limits_init(&l);
    l.event_count = 7;
    l.link_count = 8;
    setenv("OTEL_SPAN_LINK_COUNT_LIMIT", "9", 1);
    af_span_limits_from_env(&l);
    assert_int_equal(l.event_count, 7); /* untouched: its variable is unset */
    assert_int_equal(l.link_count, 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_each_variable, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_generic_and_specific, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_invalid_values_ignored, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_env_applies_over_existing_values, clear_env,
                                        clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
