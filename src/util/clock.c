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

#define MIN_SPAN_NS 50000000ull /* measure the first scale over at least 50 ms */
#define MAX_STEPS 3             /* re-anchorings in a row that had to step: TSC path off */

uint64_t af__clock_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t af__clock_reanchor(const af_clock_curve *cur, uint64_t prev_tsc, uint64_t prev_ns,
                           uint64_t tsc, uint64_t ns, af_clock_curve *out)
{
    double ns_per_tick = (double)(ns - prev_ns) / (double)(tsc - prev_tsc);
    double interval_ticks = (double)AF_CLOCK_REANCHOR_NS / ns_per_tick;
    int64_t err = 0;
    out->base_tsc = tsc;
    out->base_ns = ns;
    out->next_tsc = tsc + (uint64_t)interval_ticks;
    /* Continue the curve in use when this anchor falls within twice its interval (so the
     * product below fits 64 bits): start where it is at `tsc`, and aim the slope at where
     * the clock will be one interval from now, so the curve never jumps and its error
     * shrinks to the clock's own rate change over the interval. */
    if (cur->mult && tsc >= cur->base_tsc &&
        tsc - cur->base_tsc <= 2 * (cur->next_tsc - cur->base_tsc)) {
        uint64_t at = cur->base_ns + (((tsc - cur->base_tsc) * cur->mult) >> 32);
        err = (int64_t)(at - ns);
        if (err > (int64_t)AF_CLOCK_STEP_NS || err < -(int64_t)AF_CLOCK_STEP_NS) {
            err = INT64_MIN;
        } else {
            out->base_ns = at;
            ns_per_tick *= ((double)AF_CLOCK_REANCHOR_NS - (double)err) / AF_CLOCK_REANCHOR_NS;
        }
    }
    out->mult = (uint64_t)(ns_per_tick * 4294967296.0);
    return err;
}

#ifdef AF_CLOCK_HAVE_TSC
static bool tsc_usable;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static _Atomic bool calibrating;
/* The last measured anchor (the next scale is measured from it), and how many re-anchorings
 * in a row found the curve too far off to continue. Written only while `calibrating`. */
static uint64_t last_tsc, last_ns;
static int steps_in_a_row;

/* Whether the kernel keeps time from the TSC itself (clocksource `tsc`). Not `kvm-clock`:
 * there the guest's CLOCK_REALTIME comes from parameters the host may re-issue at any time
 * (vCPU moves, host clock updates), so it moves against the raw TSC. On this project's VMs it
 * did, by 387 us and by 5.3 ms under load: the curve then has to step to follow the system
 * clock, backwards too, which a span's end must never do to its start. */
static bool kernel_clock_is_tsc(void)
{
    bool yes = false;
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (f) {
        char name[32] = "";
        if (fgets(name, sizeof(name), f)) {
            name[strcspn(name, "\n")] = '\0';
            yes = strcmp(name, "tsc") == 0;
        }
        fclose(f);
    }
    return yes;
}

/* The TSC path is taken only where the CPU reports it invariant (constant rate, running in
 * every C-state) and either the kernel keeps time from it or AGENTAFLOW_CLOCK=tsc says to use
 * it anyway; AGENTAFLOW_CLOCK=clock_gettime turns it off. Once off, it stays off. */
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
    tsc_usable = !no_tsc && __get_cpuid(0x80000007, &a, &b, &c, &d) && (d & (1u << 8)) &&
                 (want_tsc || kernel_clock_is_tsc());
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

static void publish(const af_clock_curve *c)
{
    uint32_t s = atomic_load_explicit(&af__clock.seq, memory_order_relaxed);
    atomic_store_explicit(&af__clock.seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&af__clock.base_tsc, c->base_tsc, memory_order_relaxed);
    atomic_store_explicit(&af__clock.base_ns, c->base_ns, memory_order_relaxed);
    atomic_store_explicit(&af__clock.mult, c->mult, memory_order_relaxed);
    atomic_store_explicit(&af__clock.next_tsc, c->next_tsc, memory_order_relaxed);
    atomic_store_explicit(&af__clock.ready, true, memory_order_relaxed);
    atomic_store_explicit(&af__clock.seq, s + 2, memory_order_release);
}

/* The published curve, read under the sequence lock; false while none is. */
static bool current(af_clock_curve *c)
{
    for (;;) {
        uint32_t s = atomic_load_explicit(&af__clock.seq, memory_order_acquire);
        if (s & 1)
            continue;
        c->base_tsc = atomic_load_explicit(&af__clock.base_tsc, memory_order_relaxed);
        c->base_ns = atomic_load_explicit(&af__clock.base_ns, memory_order_relaxed);
        c->mult = atomic_load_explicit(&af__clock.mult, memory_order_relaxed);
        c->next_tsc = atomic_load_explicit(&af__clock.next_tsc, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&af__clock.seq, memory_order_relaxed) == s)
            return c->mult != 0;
    }
}

/* Re-anchors (or first calibrates) the curve; the caller holds `calibrating`. Returns the
 * clock's time at the new anchor. */
static uint64_t recalibrate(void)
{
    uint64_t now_tsc = 0, now_ns = 0;
    anchor(&now_tsc, &now_ns);
    af_clock_curve cur, next;
    bool have = current(&cur);
    if (last_tsc == 0 || now_tsc <= last_tsc || now_ns <= last_ns) {
        last_tsc = now_tsc; /* the first anchor, or the clock went back: measure anew */
        last_ns = now_ns;
        return now_ns;
    }
    if (!have && now_ns - last_ns < MIN_SPAN_NS)
        return now_ns; /* still measuring the first scale */
    if (!have)
        cur.mult = 0;
    int64_t err = af__clock_reanchor(&cur, last_tsc, last_ns, now_tsc, now_ns, &next);
    steps_in_a_row = err == INT64_MIN ? steps_in_a_row + 1 : 0;
    if (steps_in_a_row >= MAX_STEPS) {
        /* The TSC does not follow the system clock here (it changed rate, or differs
         * between CPUs): clock_gettime from now on. */
        atomic_store_explicit(&af__clock.off, true, memory_order_relaxed);
        return now_ns;
    }
    publish(&next);
    last_tsc = now_tsc;
    last_ns = now_ns;
    return next.base_ns;
}

uint64_t af__clock_slow(uint64_t tsc)
{
    pthread_once(&probe_once, probe);
    if (!tsc_usable || atomic_load_explicit(&af__clock.off, memory_order_relaxed))
        return af__clock_realtime_ns();
    af_clock_curve c;
    bool have = current(&c);
    uint64_t reach = have ? c.next_tsc - c.base_tsc : 0;
    /* Still on the curve: a read that raced an update, or a CPU whose TSC is a little
     * behind the anchoring CPU's. */
    if (have && tsc >= c.base_tsc && tsc < c.next_tsc)
        return c.base_ns + (((tsc - c.base_tsc) * c.mult) >> 32);
    if (have && tsc < c.base_tsc && c.base_tsc - tsc < reach / 16)
        return c.base_ns - (((c.base_tsc - tsc) * c.mult) >> 32);
    if (atomic_exchange_explicit(&calibrating, true, memory_order_acquire)) {
        /* Another thread is re-anchoring right now: stay on the curve while it reaches. */
        if (have && tsc >= c.base_tsc && tsc - c.base_tsc < 2 * reach)
            return c.base_ns + (((tsc - c.base_tsc) * c.mult) >> 32);
        return af__clock_realtime_ns();
    }
    uint64_t ns = recalibrate();
    atomic_store_explicit(&calibrating, false, memory_order_release);
    return ns;
}

bool af__clock_uses_tsc(void)
{
    return atomic_load(&af__clock.ready) && !atomic_load(&af__clock.off);
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
