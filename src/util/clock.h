/*
 * util/clock.h - the wall clock behind span timestamps, fast enough to read three times per
 * span.
 *
 * clock_gettime(CLOCK_REALTIME) costs about 24 ns on the project's machines (vDSO over the
 * TSC); a sampled span with one event reads the clock three times. Where the kernel itself
 * uses an invariant TSC as its clocksource, we read the TSC (about 9.5 ns) and convert it
 * with a scale measured against CLOCK_REALTIME and re-anchored to it at least once a second,
 * so timestamps stay within microseconds of the system clock and follow NTP adjustments
 * and steps within a second. Elsewhere (other clocksources, other architectures, before
 * the first calibration) it is plain clock_gettime.
 *
 * AGENTAFLOW_CLOCK, read once at the first clock read, overrides the choice: `clock_gettime`
 * never uses the TSC; `tsc` uses it wherever the CPU reports it invariant, even when the
 * kernel chose another clocksource (kvm-clock VMs whose host exposes an invariant TSC);
 * `auto` (the default) is the rule above. Benchmarks use it to time both paths on one box.
 *
 * Thread-safe: the calibration is published with a sequence lock; any thread may refresh it.
 */
#ifndef AF_UTIL_CLOCK_H
#define AF_UTIL_CLOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define AF_CLOCK_HAVE_TSC 1
#endif

typedef struct af_clock_state {
    _Atomic uint32_t seq;      /* odd while being updated */
    _Atomic bool ready;        /* a scale has been measured */
    _Atomic bool off;          /* decided: clock_gettime only, never the TSC */
    _Atomic uint64_t base_tsc; /* anchor: TSC reading ... */
    _Atomic uint64_t base_ns;  /* ... and CLOCK_REALTIME at the same instant */
    _Atomic uint64_t mult;     /* nanoseconds per tick, 32.32 fixed point */
    _Atomic uint64_t next_tsc; /* re-anchor once the TSC passes this */
} af_clock_state;

extern af_clock_state af__clock;

/* clock_gettime(CLOCK_REALTIME) in nanoseconds, and the calibration step; out of line. */
uint64_t af__clock_realtime_ns(void);
uint64_t af__clock_slow(uint64_t tsc);

static inline uint64_t af__clock_now_ns(void)
{
#ifdef AF_CLOCK_HAVE_TSC
    /* Tested before reading the TSC: where the TSC path is off (kvm-clock VMs), each
     * timestamp is one clock_gettime, without the TSC read, the probe's pthread_once and
     * the out-of-line slow path that it used to cost. */
    if (atomic_load_explicit(&af__clock.off, memory_order_relaxed)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    uint64_t t = __rdtsc();
    uint32_t s = atomic_load_explicit(&af__clock.seq, memory_order_acquire);
    if (__builtin_expect((s & 1) || !atomic_load_explicit(&af__clock.ready, memory_order_relaxed) ||
                             t >= atomic_load_explicit(&af__clock.next_tsc, memory_order_relaxed),
                         0))
        return af__clock_slow(t);
    uint64_t base_tsc = atomic_load_explicit(&af__clock.base_tsc, memory_order_relaxed);
    uint64_t base_ns = atomic_load_explicit(&af__clock.base_ns, memory_order_relaxed);
    uint64_t mult = atomic_load_explicit(&af__clock.mult, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&af__clock.seq, memory_order_relaxed) != s || t < base_tsc)
        return af__clock_slow(t);
    /* t - base_tsc spans at most about a second of ticks, so the product fits 64 bits */
    return base_ns + (((t - base_tsc) * mult) >> 32);
#else
    return af__clock_realtime_ns();
#endif
}

/* Whether the TSC path is in use (false until calibrated, or where unsupported). */
bool af__clock_uses_tsc(void);

#endif
