/* Clocks: wall time for timestamps, monotonic time for deadlines. Both are declared in
 * agentaflow/common.h, so util needs no trace header. */
#include <time.h>

#include "agentaflow/common.h"
#include "util/clock.h"

/* The same clock as span timestamps (util/clock.h), so caller-supplied times and the
 * library's agree. */
uint64_t af_now_ns(void)
{
    return af__clock_now_ns();
}

uint64_t af_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
