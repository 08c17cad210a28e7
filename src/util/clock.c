/* Calibration of the TSC wall clock (see clock.h). */
#include "util/clock.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentaflow/common.h"

#ifdef AF_CLOCK_HAVE_TSC
#include <cpuid.h>
#endif

af_clock_state af__clock;

#define RECALIBRATE_NS 1000000000ull /* re-anchor at least once a second */
#define MIN_SPAN_NS 50000000ull      /* measure the scale over at least 50 ms */

uint64_t af__clock_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#ifdef AF_CLOCK_HAVE_TSC
static bool tsc_usable;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static _Atomic bool calibrating;
/* The first anchor, kept until enough time has passed to measure the scale. */
static _Atomic uint64_t first_tsc, first_ns;

/* The TSC path is taken only where the CPU reports it invariant (constant rate, running in
 * every C-state) and either the kernel trusts it as its own clocksource or AGENTAFLOW_CLOCK=tsc
 * says to use it anyway; AGENTAFLOW_CLOCK=clock_gettime turns it off. The decision is final:
 * once off, af__clock_now_ns goes straight to clock_gettime. */
static void probe(void)
{
    const char *force = getenv("AGENTAFLOW_CLOCK");
    bool want_tsc = force && strcmp(force, "tsc") == 0;
    bool no_tsc = force && strcmp(force, "clock_gettime") == 0;
    if (force && !want_tsc && !no_tsc && strcmp(force, "auto") != 0)
        fprintf(stderr,
                "agentaflow: warn: AGENTAFLOW_CLOCK=%s is not tsc, clock_gettime or auto; "
                "using auto\n",
                force);
    unsigned a, b, c, d;
    if (no_tsc || !__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8))) {
        atomic_store_explicit(&af__clock.off, true, memory_order_relaxed);
        return;
    }
    if (want_tsc) {
        tsc_usable = true;
        return;
    }
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (f) {
        char name[32] = "";
        if (fgets(name, sizeof(name), f))
            tsc_usable = strncmp(name, "tsc", 3) == 0 && (name[3] == '\n' || name[3] == '\0');
        fclose(f);
    }
    if (!tsc_usable)
        atomic_store_explicit(&af__clock.off, true, memory_order_relaxed);
}

/* A (tsc, realtime) pair taken as close together as we can: the midpoint of two TSC reads
 * around the clock call, retried a few times for the tightest bracket. */
static void anchor(uint64_t *tsc, uint64_t *ns)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 4; i++) {
        uint64_t t0 = __rdtsc();
        uint64_t n = af__clock_realtime_ns();
        uint64_t t1 = __rdtsc();
        if (t1 - t0 < best) {
            best = t1 - t0;
            *tsc = t0 + (t1 - t0) / 2;
            *ns = n;
        }
    }
}

uint64_t af__clock_slow(uint64_t tsc)
{
    pthread_once(&probe_once, probe);
    if (!tsc_usable)
        return af__clock_realtime_ns();
    uint64_t first = atomic_load_explicit(&first_ns, memory_order_relaxed);
    if (first && !atomic_load_explicit(&af__clock.ready, memory_order_relaxed)) {
        /* Still measuring the first scale: answer from the clock until 50 ms have passed. */
        uint64_t n = af__clock_realtime_ns();
        if (n >= first && n - first < MIN_SPAN_NS)
            return n;
    }
    if (atomic_exchange_explicit(&calibrating, true, memory_order_acquire))
        return af__clock_realtime_ns(); /* another thread is re-anchoring right now */
    uint64_t now_tsc = 0, now_ns = 0;
    anchor(&now_tsc, &now_ns);
    uint64_t f_tsc = atomic_load_explicit(&first_tsc, memory_order_relaxed);
    uint64_t f_ns = atomic_load_explicit(&first_ns, memory_order_relaxed);
    if (f_tsc == 0 || now_tsc <= f_tsc || now_ns <= f_ns) {
        atomic_store_explicit(&first_tsc, now_tsc, memory_order_relaxed);
        atomic_store_explicit(&first_ns, now_ns, memory_order_relaxed);
    } else if (now_ns - f_ns >= MIN_SPAN_NS) {
        /* ns per tick over the whole interval since the first anchor: the longer the
         * interval, the smaller the error of the two clock reads. */
        uint64_t dt = now_tsc - f_tsc, dn = now_ns - f_ns;
        uint64_t mult = (uint64_t)(((double)dn / (double)dt) * 4294967296.0);
        uint64_t ticks_per_s = (uint64_t)((double)dt * 1e9 / (double)dn);
        uint32_t s = atomic_load_explicit(&af__clock.seq, memory_order_relaxed);
        atomic_store_explicit(&af__clock.seq, s + 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_release);
        atomic_store_explicit(&af__clock.base_tsc, now_tsc, memory_order_relaxed);
        atomic_store_explicit(&af__clock.base_ns, now_ns, memory_order_relaxed);
        atomic_store_explicit(&af__clock.mult, mult, memory_order_relaxed);
        atomic_store_explicit(&af__clock.next_tsc,
                              now_tsc + ticks_per_s * RECALIBRATE_NS / 1000000000u,
                              memory_order_relaxed);
        atomic_store_explicit(&af__clock.ready, true, memory_order_relaxed);
        atomic_store_explicit(&af__clock.seq, s + 2, memory_order_release);
        /* The next scale is measured from here, over the next interval. */
        atomic_store_explicit(&first_tsc, now_tsc, memory_order_relaxed);
        atomic_store_explicit(&first_ns, now_ns, memory_order_relaxed);
    }
    atomic_store_explicit(&calibrating, false, memory_order_release);
    /* This call answers from the clock itself; the TSC path serves the following ones. */
    (void)tsc;
    return now_ns;
}

bool af__clock_uses_tsc(void)
{
    return atomic_load(&af__clock.ready);
}

const char *af_clock_source(void)
{
    af__clock_now_ns(); /* makes the decision when nothing has read the clock yet */
    return af__clock_uses_tsc() ? "tsc" : "clock_gettime";
}
#else
uint64_t af__clock_slow(uint64_t tsc)
{
    (void)tsc;
    return af__clock_realtime_ns();
}

bool af__clock_uses_tsc(void)
{
    return false;
}

const char *af_clock_source(void)
{
    return "clock_gettime";
}
#endif
