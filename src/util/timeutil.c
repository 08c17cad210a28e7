/*
 * Time formatting and monotonic condition variables (util/timeutil.h). Kept apart from
 * time.c: the platform library bundles util privately, and an object defining the public
 * af_now_ns() must not be pulled into it (lib.shared_objects checks each af_ name has one
 * home).
 */
#include "util/timeutil.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static void put_digits(char *out, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void af__fmt_rfc3339(uint64_t ns, int digits, char *out)
{
    /* Every response and span carries a timestamp: the date part changes once a second, so
     * each thread keeps the last second's text and formats only the fraction. */
    static _Thread_local uint64_t cached_secs = UINT64_MAX;
    static _Thread_local char cached[20];
    uint64_t secs = ns / 1000000000ull;
    if (secs != cached_secs) {
        time_t t = (time_t)secs;
        struct tm tm;
        gmtime_r(&t, &tm);
        char tmp[24];
        if (strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm) != 19)
            memcpy(tmp, "1970-01-01T00:00:00", 20);
        memcpy(cached, tmp, 19);
        cached_secs = secs;
    }
    memcpy(out, cached, 19);
    unsigned frac = (unsigned)(ns % 1000000000ull);
    for (int i = digits; i < 9; i++)
        frac /= 10;
    out[19] = '.';
    put_digits(out + 20, frac, digits);
    out[20 + digits] = 'Z';
    out[21 + digits] = '\0';
}

int af__cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    int err = pthread_condattr_init(&ca);
    if (err)
        return -err;
    err = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (!err)
        err = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return -err;
}
