/*
 * util/clock.h - the wall clock behind span timestamps, fast enough to read three times per
 * span.
 *
 * clock_gettime(CLOCK_REALTIME) costs about 24 ns on the project's machines: on a kvm-clock
 * VM the vDSO's LFENCE; RDTSC waits for every load in flight, and perf puts about a quarter
 * of a sampled span's cycles there. Where the CPU reports an invariant TSC and the kernel
 * itself keeps time from the TSC (clocksource `tsc`; not `kvm-clock`, whose host-issued
 * parameters move the guest's clock against the raw TSC, see clock.c), we read the TSC (RDTSC, no
 * fence) and convert it with a scale measured against CLOCK_REALTIME, re-anchored every 100 ms.
 * Each re-anchoring keeps the curve continuous (no backwards jump) and slews it back onto the
 * system clock over the next interval, so timestamps stay within AF_CLOCK_MAX_ERROR_NS of
 * CLOCK_REALTIME as long as the system clock's rate changes by less than AF_CLOCK_MAX_ERROR_NS per
 * interval (NTP's limit is 500 ppm, 50 us per 100 ms). A re-anchoring that finds the curve more
 * than AF_CLOCK_STEP_NS (the bound itself) off follows the system clock at once (it was stepped, or
 * the VM moved); three such in a row turn the TSC path off for good. Elsewhere (other clocksources,
 * other architectures, before the first calibration) it is plain clock_gettime.
 *
 * AGENTAFLOW_CLOCK, read once at the first clock read, overrides the choice: `clock_gettime`
 * never uses the TSC; `tsc` uses it wherever the CPU reports it invariant, whatever the
 * kernel's clocksource; `auto` (the default) is the rule above. Benchmarks use it to time
 * both paths on one box.
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

#define AF_CLOCK_REANCHOR_NS 100000000ull      /* re-anchor every 100 ms */
#define AF_CLOCK_MAX_ERROR_NS 200000ull        /* the bound test_clock holds the TSC path to */
#define AF_CLOCK_STEP_NS AF_CLOCK_MAX_ERROR_NS /* a curve this far off is not continued */

typedef struct af_clock_state {
    _Atomic uint32_t seq;      /* odd while being updated */
    _Atomic bool ready;        /* a scale has been measured */
    _Atomic bool off;          /* decided: clock_gettime only, never the TSC */
    _Atomic uint64_t base_tsc; /* anchor: TSC reading ... */
    _Atomic uint64_t base_ns;  /* ... and the curve's time at that reading */
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
    /* Tested before reading the TSC: where the TSC path is off, each timestamp is one
     * clock_gettime, without the TSC read and the out-of-line slow path. */
    if (atomic_load_explicit(&af__clock.off, memory_order_relaxed)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    uint64_t t = __rdtsc();
    uint32_t s = atomic_load_explicit(&af__clock.seq, memory_order_acquire);
    uint64_t base_tsc = atomic_load_explicit(&af__clock.base_tsc, memory_order_relaxed);
    uint64_t base_ns = atomic_load_explicit(&af__clock.base_ns, memory_order_relaxed);
    uint64_t mult = atomic_load_explicit(&af__clock.mult, memory_order_relaxed);
    uint64_t next = atomic_load_explicit(&af__clock.next_tsc, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    /* next_tsc is 0 until the first calibration and odd sequences mean an update: both
     * land in the slow path, as does a TSC outside [base_tsc, next_tsc). */
    if (__builtin_expect(t - base_tsc >= next - base_tsc || (s & 1) ||
                             atomic_load_explicit(&af__clock.seq, memory_order_relaxed) != s,
                         0))
        return af__clock_slow(t);
    /* t - base_tsc spans at most 100 ms of ticks, so the product fits 64 bits */
    return base_ns + (((t - base_tsc) * mult) >> 32);
#else
    return af__clock_realtime_ns();
#endif
}

/* Whether the TSC path is in use (false until calibrated, or where unsupported). */
bool af__clock_uses_tsc(void);

/* One calibration of the TSC curve, a pure function (tests drive it with simulated clocks).
 * `cur` is the curve in use (mult 0: none yet), (prev_tsc, prev_ns) the previous measured
 * anchor and (tsc, ns) the new one; the scale is measured between the two anchors. Writes the
 * next curve to *out and returns the curve's error at the new anchor (curve minus clock), 0
 * when there is no curve to continue (none yet, or none read for over two intervals: the new
 * one starts on the clock), or INT64_MIN when the curve was more than AF_CLOCK_STEP_NS off
 * and the new one starts on the clock instead of from it. */
typedef struct af_clock_curve {
    uint64_t base_tsc, base_ns, mult, next_tsc;
} af_clock_curve;
int64_t af__clock_reanchor(const af_clock_curve *cur, uint64_t prev_tsc, uint64_t prev_ns,
                           uint64_t tsc, uint64_t ns, af_clock_curve *out);

#endif
