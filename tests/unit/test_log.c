/* af_log's per-call-site rate limit: a flood from one site is cut at the limit, reported
 * once when its window rolls over, and other sites are unaffected; thread-safe. */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "agentaflow/log.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_flood_is_cut_per_site, teardown),
        cmocka_unit_test_teardown(test_report_when_the_window_rolls_over, teardown),
        cmocka_unit_test_teardown(test_threads_share_the_limit, teardown),
        cmocka_unit_test_teardown(test_zero_means_unlimited, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
