/*
 * util/timeutil.h - time formatting and timed waits shared by every layer.
 *
 * af_now_ns() and af_monotonic_ns() themselves are public (agentaflow/common.h).
 */
#ifndef AF_UTIL_TIMEUTIL_H
#define AF_UTIL_TIMEUTIL_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Largest af__fmt_rfc3339 output: "YYYY-MM-DDTHH:MM:SS." + 9 digits + "Z" + NUL. */
#define AF_RFC3339_MAX 31

/* RFC 3339 in UTC with `digits` (1..9) fractional digits, truncated:
 * 2026-11-25T03:05:58.123Z for digits = 3. out holds at least 22 + digits bytes
 * (AF_RFC3339_MAX always suffices). Thread-safe; each thread caches the last second's text. */
void af__fmt_rfc3339(uint64_t ns, int digits, char *out);

/* Initialises *cv to time its waits on CLOCK_MONOTONIC, so pthread_cond_timedwait deadlines
 * (af_monotonic_ns()) do not move when the wall clock is stepped. 0 or a negative errno. */
int af__cond_init_monotonic(pthread_cond_t *cv);

/* A time in nanoseconds (af_monotonic_ns() for those waits, clock_nanosleep on
 * CLOCK_MONOTONIC) as the struct timespec the waits take. */
static inline struct timespec af__timespec_of_ns(uint64_t ns)
{
    return (struct timespec){(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
}

#endif
