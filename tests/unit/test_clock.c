/* The span clock tracks CLOCK_REALTIME closely, through calibration and re-anchoring. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentaflow/common.h"

#include "testutil.h"
#include "util/clock.h"

static int64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The bound a span timestamp must keep to. 200 us for the clock the library picks itself.
 * AGENTAFLOW_CLOCK=tsc forces the TSC path even where the kernel does not trust the TSC (a
 * VM on kvm-clock, this project's machines): it exists to benchmark that path, and there the
 * TSC drifts from the system clock between the once-a-second re-anchorings (seen here: up to
 * 5.3 ms), so that run only checks the path is sane (50 ms); sanitizer builds distort the
 * calibration's timed samples, so they are held to 5 ms on the library's own choice. */
static int64_t max_deviation_ns(void)
{
    const char *force = getenv("AGENTAFLOW_CLOCK");
    if (force && strcmp(force, "tsc") == 0)
        return 50000000;
#ifdef AF_SANITIZER
    return 5000000;
#else
    return 200000;
#endif
}

/* Runs for 2.5 s of wall time (calibration after 50 ms, re-anchoring every second) and
 * checks every reading against CLOCK_REALTIME read just before and just after it. */
static void test_tracks_realtime(void **state)
{
    (void)state;
    int64_t start = realtime_ns();
    int64_t worst = 0;
    long n = 0;
    while (realtime_ns() - start < 2500000000) {
        int64_t before = realtime_ns();
        int64_t ours = (int64_t)af_now_ns();
        int64_t after = realtime_ns();
        int64_t err = ours < before ? before - ours : ours > after ? ours - after : 0;
        if (err > worst)
            worst = err;
        n++;
    }
    print_message("readings %ld, worst deviation %lld ns, tsc path %s\n", n, (long long)worst,
                  af__clock_uses_tsc() ? "on" : "off");
    assert_true(worst < max_deviation_ns());
    assert_true(n > 1000);
    /* Calibrated by now (2.5 s), so the public answer and the internal one agree. */
    assert_string_equal(af_clock_source(), af__clock_uses_tsc() ? "tsc" : "clock_gettime");
    const char *force = getenv("AGENTAFLOW_CLOCK");
    if (force && strcmp(force, "clock_gettime") == 0)
        assert_false(af__clock_uses_tsc());
}

static void test_never_zero_and_moves_forward_overall(void **state)
{
    (void)state;
    uint64_t a = af_now_ns();
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL); /* a measured interval, not a wait for an event */
    uint64_t b = af_now_ns();
    assert_true(a > 1600000000ull * 1000000000ull);
    assert_true(b >= a + 1000000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tracks_realtime),
        cmocka_unit_test(test_never_zero_and_moves_forward_overall),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
