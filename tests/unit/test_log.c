/* af_log's per-call-site rate limit: a flood from one site is cut at the limit, reported
 * once when its window rolls over, and other sites are unaffected; thread-safe. The JSON
 * line format (parsed back with jansson), component levels and the current span's ids. */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "agentaflow/log.h"
#include "agentaflow/trace.h"
#include "agentaflow/trace_sdk.h"
#include "testutil.h"
#include "util/log_int.h"

/* One format string per function: the rate limit knows a call site by it. */
static void site_a(int i)
{
    af_log(AF_LOG_WARN, "site a says %d", i);
}

static void site_b(int i)
{
    af_log(AF_LOG_WARN, "site b says %d", i);
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int teardown(void **state)
{
    (void)state;
    af_test_log_capture_end();
    af__log_rate_limit(AF__LOG_RATE_MAX, AF__LOG_RATE_WINDOW_NS);
    return 0;
}

static void test_flood_is_cut_per_site(void **state)
{
    (void)state;
    af__log_rate_limit(3, 60000000000ull);
    af_test_log_capture_begin();
    for (int i = 0; i < 50; i++)
        site_a(i);
    site_b(1);
    const char *t = af_test_log_capture_text();
    assert_int_equal(count_of(t, "site a says"), 3);
    assert_non_null(strstr(t, "site a says 2"));
    assert_null(strstr(t, "site a says 3"));
    assert_int_equal(count_of(t, "site b says"), 1);
    assert_null(strstr(t, "suppressed")); /* the window has not rolled over yet */
}

static void test_report_when_the_window_rolls_over(void **state)
{
    (void)state;
    af__log_rate_limit(2, 50000000ull); /* 50 ms */
    af_test_log_capture_begin();
    uint64_t start = mono_ms();
    for (int i = 0; i < 7; i++)
        site_a(i);
    /* The window is a span of time: wait it out (bounded), then log once more. */
    while (mono_ms() < start + 60)
        poll(NULL, 0, 5);
    site_a(100);
    const char *t = af_test_log_capture_text();
    assert_non_null(strstr(t, "suppressed 5 similar messages (\"site a says %d\")"));
    assert_non_null(strstr(t, "site a says 100"));
    /* The report comes before the message that follows it, and only once. */
    assert_true(strstr(t, "suppressed") < strstr(t, "site a says 100"));
    assert_int_equal(count_of(t, "suppressed"), 1);
}

static atomic_int delivered;

static void counting_handler(af_log_level level, const char *msg, void *user)
{
    (void)level;
    (void)user;
    if (strstr(msg, "site a says"))
        atomic_fetch_add(&delivered, 1);
}

static void *flood(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++)
        site_a(i);
    return NULL;
}

static void test_threads_share_the_limit(void **state)
{
    (void)state;
    af__log_rate_limit(20, 60000000000ull);
    atomic_store(&delivered, 0);
    af_log_set_handler(counting_handler, NULL);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, flood, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    af_log_set_handler(NULL, NULL);
    assert_int_equal(atomic_load(&delivered), 20);
}

static void test_zero_means_unlimited(void **state)
{
    (void)state;
    af__log_rate_limit(0, 60000000000ull);
    af_test_log_capture_begin();
    for (int i = 0; i < 100; i++)
        site_b(i);
    assert_int_equal(count_of(af_test_log_capture_text(), "site b says"), 100);
}

/* ----- JSON lines and components -------------------------------------------------------- */

static char *out_buf;
static size_t out_len;
static FILE *out;

static void out_begin(af_log_format f)
{
    out = open_memstream(&out_buf, &out_len);
    assert_non_null(out);
    af__log_set_stream(out);
    af_log_set_format(f);
}

/* Everything written since out_begin (caller frees). */
static char *out_end(void)
{
    af__log_set_stream(NULL);
    af_log_set_format(AF_LOG_FORMAT_TEXT);
    fclose(out);
    char *s = out_buf;
    out_buf = NULL;
    return s;
}

static int teardown_levels(void **state)
{
    af_log_clear_component_levels();
    af_log_set_level(AF_LOG_INFO);
    return teardown(state);
}

/* The line as a JSON object, checked to be one line ending in a newline. */
static json_t *parse_line(const char *text)
{
    const char *nl = strchr(text, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], '\0');
    json_error_t e;
    json_t *j = json_loadb(text, (size_t)(nl - text), 0, &e);
    if (!j)
        fail_msg("not JSON (%s): %s", e.text, text);
    return j;
}

static void test_json_line_fields(void **state)
{
    (void)state;
    out_begin(AF_LOG_FORMAT_JSON);
    af_log_c(AF_LOG_WARN, "http", "bad request from %s", "10.0.0.1");
    char *text = out_end();
    json_t *j = parse_line(text);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(j, "component")), "http");
    assert_string_equal(json_string_value(json_object_get(j, "message")),
                        "bad request from 10.0.0.1");
    assert_null(json_object_get(j, "trace_id")); /* no span is current */
    /* RFC 3339, UTC, milliseconds: 2026-01-02T03:04:05.678Z */
    const char *t = json_string_value(json_object_get(j, "time"));
    assert_non_null(t);
    assert_int_equal(strlen(t), 24);
    assert_true(t[4] == '-' && t[10] == 'T' && t[19] == '.' && t[23] == 'Z');
    struct tm tm = {0};
    assert_non_null(strptime(t, "%Y-%m-%dT%H:%M:%S", &tm));
    json_decref(j);
    free(text);
}

static void test_json_escapes_any_bytes(void **state)
{
    (void)state;
    out_begin(AF_LOG_FORMAT_JSON);
    /* Quotes, backslash, control characters, valid UTF-8 (é, U+1F600), a lone continuation
     * byte, an overlong '/', a surrogate and a truncated sequence. */
    af_log_c(AF_LOG_ERROR, NULL, "%s",
             "q\"b\\n\nt\tc\x01\x1f d\x7f \xc3\xa9 \xf0\x9f\x98\x80 x\x80y \xc0\xaf \xed\xa0\x80 "
             "z\xe2\x82");
    char *text = out_end();
    json_t *j = parse_line(text);
    assert_null(json_object_get(j, "component"));
    assert_string_equal(
        json_string_value(json_object_get(j, "message")),
        "q\"b\\n\nt\tc\x01\x1f d\x7f \xc3\xa9 \xf0\x9f\x98\x80 "
        "x\xef\xbf\xbdy \xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
        "z\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(j);
    free(text);
}

static void test_escape_truncates_at_whole_escape(void **state)
{
    (void)state;
    char small[10];
    size_t n = af__log_json_escape("ab\x01", 3, small, sizeof small);
    assert_int_equal(n, 8);
    assert_string_equal(small, "ab\\u0001");
    n = af__log_json_escape("abcd\x01", 5, small, 8);
    assert_string_equal(small, "abcd"); /* the escape does not fit whole */
    assert_int_equal(n, 4);
}

static void test_json_suppressed_report(void **state)
{
    (void)state;
    af__log_rate_limit(1, 50000000ull); /* 50 ms */
    out_begin(AF_LOG_FORMAT_JSON);
    uint64_t start = mono_ms();
    for (int i = 0; i < 4; i++)
        af_log_c(AF_LOG_WARN, "gpu", "flood %d", i);
    while (mono_ms() < start + 60)
        poll(NULL, 0, 5);
    af_log_c(AF_LOG_WARN, "gpu", "flood %d", 9);
    char *text = out_end();
    /* Three lines: the first message, the report, the message after the window. */
    char *l2 = strchr(text, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    l3[-1] = '\0';
    char *both = malloc(strlen(l2) + 2);
    sprintf(both, "%s\n", l2);
    json_t *j = parse_line(both);
    assert_string_equal(json_string_value(json_object_get(j, "component")), "gpu");
    assert_non_null(
        strstr(json_string_value(json_object_get(j, "message")), "suppressed 3 similar messages"));
    json_decref(j);
    j = parse_line(l3);
    assert_string_equal(json_string_value(json_object_get(j, "message")), "flood 9");
    json_decref(j);
    free(both);
    free(text);
}

static void test_component_levels(void **state)
{
    (void)state;
    af_log_set_level(AF_LOG_WARN);
    assert_int_equal(af_log_set_component_level("http", AF_LOG_DEBUG), 0);
    assert_int_equal(af_log_set_component_level("tracing", AF_LOG_ERROR), 0);
    assert_int_equal(af_log_set_component_level("", AF_LOG_DEBUG), -EINVAL);
    assert_int_equal(af_log_component_level("http"), AF_LOG_DEBUG);
    assert_int_equal(af_log_component_level("gpu"), AF_LOG_WARN);
    out_begin(AF_LOG_FORMAT_TEXT);
    af_log_c(AF_LOG_DEBUG, "http", "http debug shown");
    af_log_c(AF_LOG_DEBUG, "gpu", "gpu debug hidden");
    af_log_c(AF_LOG_WARN, "gpu", "gpu warn shown");
    af_log_c(AF_LOG_WARN, "tracing", "tracing warn hidden");
    af_log(AF_LOG_INFO, "untagged info hidden");
    af_log(AF_LOG_WARN, "untagged warn shown");
    char *text = out_end();
    assert_non_null(strstr(text, "agentaflow: debug: http: http debug shown\n"));
    assert_non_null(strstr(text, "agentaflow: warn: gpu: gpu warn shown\n"));
    assert_non_null(strstr(text, "agentaflow: warn: untagged warn shown\n"));
    assert_null(strstr(text, "hidden"));
    free(text);
    af_log_clear_component_levels();
    assert_int_equal(af_log_component_level("http"), AF_LOG_WARN);
}

static void test_level_parse(void **state)
{
    (void)state;
    af_log_level l;
    assert_int_equal(af_log_level_parse("DEBUG", &l), 0);
    assert_int_equal(l, AF_LOG_DEBUG);
    assert_int_equal(af_log_level_parse("none", &l), 0);
    assert_int_equal(l, AF_LOG_OFF);
    assert_int_equal(af_log_level_parse("loud", &l), -EINVAL);
}

static void test_json_carries_current_span_ids(void **state)
{
    (void)state;
    af_tracer_provider_opts po;
    af_tracer_provider_opts_init(&po);
    po.sampler = af_sampler_always_on();
    af_tracer_provider *p = NULL;
    assert_int_equal(af_tracer_provider_new(&po, &p), 0);
    af_tracer *tr = af_tracer_provider_get_tracer(p, "test", "1", NULL);
    af_span s = af_span_start(tr, "op", NULL);
    af_span_context sc;
    af_span_get_context(s, &sc);
    af_context_token tok = af_context_attach(s);
    out_begin(AF_LOG_FORMAT_JSON);
    af_log_c(AF_LOG_WARN, "serving", "inside");
    af_context_detach(tok);
    af_log_c(AF_LOG_WARN, "serving", "outside");
    char *text = out_end();
    af_span_end(s);
    af_tracer_provider_free(p);

    char *second = strchr(text, '\n') + 1;
    json_t *out_j = parse_line(second);
    assert_null(json_object_get(out_j, "trace_id"));
    json_decref(out_j);
    second[0] = '\0';
    json_t *j = parse_line(text);
    char want_t[33], want_s[17];
    for (int i = 0; i < 16; i++)
        sprintf(want_t + 2 * i, "%02x", sc.trace_id[i]);
    for (int i = 0; i < 8; i++)
        sprintf(want_s + 2 * i, "%02x", sc.span_id[i]);
    assert_string_equal(json_string_value(json_object_get(j, "trace_id")), want_t);
    assert_string_equal(json_string_value(json_object_get(j, "span_id")), want_s);
    json_decref(j);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_flood_is_cut_per_site, teardown),
        cmocka_unit_test_teardown(test_report_when_the_window_rolls_over, teardown),
        cmocka_unit_test_teardown(test_threads_share_the_limit, teardown),
        cmocka_unit_test_teardown(test_zero_means_unlimited, teardown),
        cmocka_unit_test_teardown(test_json_line_fields, teardown),
        cmocka_unit_test_teardown(test_json_escapes_any_bytes, teardown),
        cmocka_unit_test(test_escape_truncates_at_whole_escape),
        cmocka_unit_test_teardown(test_json_suppressed_report, teardown),
        cmocka_unit_test_teardown(test_component_levels, teardown_levels),
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test_teardown(test_json_carries_current_span_ids, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
