/*
 * The batch span processor.
 *
 * Ending threads push record pointers into the queue, one lane per thread under one bound
 * (lanes.h): no locked instruction per span. They never block, never do I/O and never take
 * a lock, except to wake the worker when enough spans wait and the worker is asleep, which
 * happens at most once per batch. A full queue drops the span and counts it; the drop is
 * logged at most once every 10 seconds.
 *
 * Pacing: that wake-up is a futex system call on the ending thread, a few microseconds on a
 * VM (perf on a kvm-clock VM: 6 % of a span's cycles at full speed, one wake per 512 spans).
 * When spans arrive so fast that a batch fills within PACE_MAX_NS, the worker instead sleeps
 * for the time the next batch should take to fill, measured from the arrival rate, and
 * producers wake it only if the queue gets halfway from a full batch to full (the rate rose).
 * At ordinary rates it sleeps until woken at a full batch, as before, so pacing adds no
 * wake-ups to an idle or slow process.
 *
 * One worker thread ("af-bsp") exports when max_export_batch_size spans wait, when the
 * schedule delay elapses, on force_flush and at shutdown. Export calls are serialized by
 * construction (one worker). force_flush and shutdown wait for the worker with their own
 * deadlines: a hung exporter makes them return AF_ETIMEDOUT, never hang. When the owner
 * frees a processor whose worker is still stuck in an exporter, the worker is detached and
 * frees the processor itself when the exporter finally returns.
 *
 * force_flush and shutdown report the exports they waited for: AF_EEXPORT (or AF_ETIMEDOUT)
 * when one of them failed, as the OpenTelemetry spec asks, not only the exporter's own
 * force_flush or shutdown result.
 *
 * Fork: the prepare handler takes every processor's lock (and, through the exporter's atfork
 * hook, the exporter's), so the child inherits consistent state. The child handler
 * re-creates the mutex and condition variables (the parent's waiters are still counted in
 * the inherited ones, and a broadcast on them can block forever), forgets the parent's flush
 * and shutdown bookkeeping, and releases the spans queued in the parent (they are the parent's
 * to export), leaving the parent's threads' lanes to be freed. The child's
 * first call into the processor starts its worker: threads are not started inside a fork
 * handler.
 */
#define AF_LOG_COMPONENT "tracing"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentaflow/log.h"
#include "trace/lanes.h"
#include "trace/span_int.h"
#include "util/env.h"
#include "util/timeutil.h"

#define DROP_LOG_INTERVAL_NS 10000000000ull
#define PACE_MAX_NS 1000000ull /* pace the worker when a batch fills within 1 ms */

typedef struct batch_proc {
    af__lanes lanes;
    /* producer side; wake_depth: the worker sleeps, wake it at this depth (0 = awake) */
    _Alignas(64) _Atomic size_t wake_depth;
    _Atomic bool closed;
    _Atomic uint64_t dropped;
    _Atomic uint64_t last_drop_log_ns;
    _Atomic uint64_t last_drop_ns; /* for health: "dropping" means a recent drop */
    /* consumer side */
    _Alignas(64) af_exporter *exporter;
    af_batch_processor_opts o;
    af_span_rec **popped;       /* worker scratch: the batch's records ... */
    const af_span_data **batch; /* ... and the exporter's view of them */
    _Atomic uint64_t exported;
    _Atomic uint64_t failed;
    _Atomic uint64_t export_calls;
    _Atomic uint64_t export_ns;
    /* worker control, under mu */
    pthread_mutex_t mu;
    pthread_cond_t wake; /* worker waits here */
    pthread_cond_t done; /* flushers and shutdown wait here */
    pthread_t thread;
    bool thread_running;
    bool shutdown_req;
    bool worker_exited;
    bool orphaned;
    uint64_t shutdown_deadline;
    uint64_t flush_requested;
    uint64_t flush_done;
    int flush_result;
    int pending_err; /* a failed export that a flush waiting now must report */
    int shutdown_result;
    _Atomic uint64_t fork_gen; /* read without the lock on every span end */
    struct batch_proc *reg_next;
} batch_proc;

/* Registry of live processors, for the fork handlers. */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static batch_proc *registry;

static void registry_add(batch_proc *bp)
{
    pthread_mutex_lock(&registry_mu);
    bp->reg_next = registry;
    registry = bp;
    pthread_mutex_unlock(&registry_mu);
}

static void registry_remove(batch_proc *bp)
{
    pthread_mutex_lock(&registry_mu);
    for (batch_proc **pp = &registry; *pp; pp = &(*pp)->reg_next) {
        if (*pp == bp) {
            *pp = bp->reg_next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_mu);
}

/* ----- options --------------------------------------------------------------------------- */

void af_batch_processor_opts_init(af_batch_processor_opts *o)
{
    o->max_queue_size = 2048;
    o->max_export_batch_size = 512;
    o->schedule_delay_ms = 5000;
    o->export_timeout_ms = 30000;
    af__env_u32("OTEL_BSP_MAX_QUEUE_SIZE", 1, 1u << 24, &o->max_queue_size);
    af__env_u32("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 1, 1u << 24, &o->max_export_batch_size);
    af__env_u32("OTEL_BSP_SCHEDULE_DELAY", 0, 86400000, &o->schedule_delay_ms);
    af__env_u32("OTEL_BSP_EXPORT_TIMEOUT", 0, 86400000, &o->export_timeout_ms);
}

/* ----- queue ----------------------------------------------------------------------------- */

static size_t queue_depth(batch_proc *bp)
{
    return af__lanes_depth(&bp->lanes);
}

/* ----- worker ---------------------------------------------------------------------------- */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* What a failed export means to a caller of force_flush or shutdown that waited for it. */
static int export_error(int rc)
{
    return rc == 0 ? 0 : rc == AF_ETIMEDOUT ? AF_ETIMEDOUT : AF_EEXPORT;
}

/* Exports one batch of up to max_export_batch_size spans; returns how many were taken and
 * keeps the first failure in *err. */
static size_t export_one_batch(batch_proc *bp, uint64_t hard_deadline, int *err)
{
    size_t n = af__lanes_pop(&bp->lanes, bp->popped, bp->o.max_export_batch_size);
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        bp->batch[i] = &bp->popped[i]->data;
    uint64_t t0 = af_monotonic_ns();
    uint64_t deadline =
        bp->o.export_timeout_ms ? t0 + (uint64_t)bp->o.export_timeout_ms * 1000000u : UINT64_MAX;
    deadline = min_u64(deadline, hard_deadline);
    int rc = af_exporter_export(bp->exporter, bp->batch, n, deadline);
    atomic_fetch_add_explicit(&bp->export_ns, af_monotonic_ns() - t0, memory_order_relaxed);
    atomic_fetch_add_explicit(&bp->export_calls, 1, memory_order_relaxed);
    if (rc == 0)
        atomic_fetch_add_explicit(&bp->exported, n, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&bp->failed, n, memory_order_relaxed);
    if (*err == 0)
        *err = export_error(rc);
    for (size_t i = 0; i < n; i++)
        af__span_rec_release(bp->popped[i]);
    return n;
}

/* Exports full batches only, or everything present when `drain` (timer, flush, shutdown).
 * Returns 0 or the first failure (AF_EEXPORT or AF_ETIMEDOUT). */
/* hard, or the shutdown's deadline once a shutdown has begun: a drain that started before
 * the shutdown (a timer export) must not go on past it either, because once the shutdown
 * has timed out the provider may free what the spans point to (their tracer and resource). */
static uint64_t drain_deadline(batch_proc *bp, uint64_t hard)
{
    if (!atomic_load(&bp->closed))
        return hard;
    pthread_mutex_lock(&bp->mu);
    uint64_t d = bp->shutdown_req ? bp->shutdown_deadline : hard;
    pthread_mutex_unlock(&bp->mu);
    return min_u64(hard, d);
}

static int export_pending(batch_proc *bp, bool drain, uint64_t hard_deadline)
{
    size_t target = queue_depth(bp);
    size_t done = 0;
    int err = 0;
    while (done < target) {
        hard_deadline = drain_deadline(bp, hard_deadline);
        if (af_monotonic_ns() >= hard_deadline)
            break;
        if (!drain && queue_depth(bp) < bp->o.max_export_batch_size)
            break;
        size_t n = export_one_batch(bp, hard_deadline, &err);
        if (n == 0)
            break;
        done += n;
        if (af_monotonic_ns() >= hard_deadline)
            break;
    }
    return err;
}

/* The worker's last steps, entered with bp->mu held (released here): spans queued after the
 * drain are dropped, the exporter shuts down, the result goes to whoever waits in shutdown;
 * a processor orphaned by a destroy that stopped waiting is freed by its own worker. */
static void worker_finish(batch_proc *bp)
{
    uint64_t deadline = bp->shutdown_deadline;
    pthread_mutex_unlock(&bp->mu);

    /* Spans that arrived after the drain (or did not fit before the deadline) are dropped. */
    for (size_t n; (n = af__lanes_pop(&bp->lanes, bp->popped, bp->o.max_export_batch_size)) > 0;) {
        atomic_fetch_add_explicit(&bp->dropped, n, memory_order_relaxed);
        for (size_t i = 0; i < n; i++)
            af__span_rec_release(bp->popped[i]);
    }
    int src = af_exporter_shutdown(bp->exporter, deadline);

    pthread_mutex_lock(&bp->mu);
    if (bp->shutdown_result == 0) /* a failed drain outranks the exporter's own shutdown */
        bp->shutdown_result = src;
    bp->worker_exited = true;
    bool orphaned = bp->orphaned;
    pthread_cond_broadcast(&bp->done);
    pthread_mutex_unlock(&bp->mu);
    if (orphaned) {
        af_exporter_free(bp->exporter);
        af__lanes_destroy(&bp->lanes, af__span_rec_release);
        pthread_mutex_destroy(&bp->mu);
        pthread_cond_destroy(&bp->wake);
        pthread_cond_destroy(&bp->done);
        free(bp->batch);
        free(bp->popped);
        free(bp);
    }
}

/* The arrival rate the worker paces itself by: the queue's push count at the last time it
 * went to sleep. */
typedef struct pace_clock {
    uint64_t pushed;
    uint64_t ns;
} pace_clock;

uint64_t af__batch_pace_ns(size_t arrived, uint64_t elapsed_ns, size_t depth, size_t batch)
{
    if (arrived == 0 || batch == 0 ||
        (double)elapsed_ns * (double)batch > (double)PACE_MAX_NS * (double)arrived)
        return 0;
    double missing = depth < batch ? (double)(batch - depth) : 1.0;
    return (uint64_t)((double)elapsed_ns * missing / (double)arrived) + 1;
}

/* af__batch_pace_ns at the rate seen since the worker last went to sleep. */
static uint64_t pace_fill_ns(batch_proc *bp, pace_clock *pc, uint64_t now)
{
    uint64_t pushed = af__lanes_pushed(&bp->lanes);
    uint64_t ns = af__batch_pace_ns((size_t)(pushed - pc->pushed), now - pc->ns, queue_depth(bp),
                                    bp->o.max_export_batch_size);
    pc->pushed = pushed;
    pc->ns = now;
    return ns;
}

static void *worker_main(void *arg)
{
    batch_proc *bp = arg;
    pthread_setname_np(pthread_self(), "af-bsp");
    uint64_t delay_ns = (uint64_t)bp->o.schedule_delay_ms * 1000000u;
    uint64_t next_export = af_monotonic_ns() + delay_ns;
    pace_clock pace = {af__lanes_pushed(&bp->lanes), af_monotonic_ns()};
    pthread_mutex_lock(&bp->mu);
    for (;;) {
        bool flush = bp->flush_requested > bp->flush_done;
        bool stop = bp->shutdown_req;
        uint64_t now = af_monotonic_ns();
        bool timer = now >= next_export;
        if (!flush && !stop && !timer && queue_depth(bp) < bp->o.max_export_batch_size) {
            /* Sleep until the schedule delay, but never more than a second at a time: a
             * safety net that bounds the cost of any missed wake-up to one second, for one
             * wake-up per second of idle time. Paced: until the next batch should be in. */
            uint64_t until = min_u64(next_export, now + 1000000000ull);
            size_t wake_at = bp->o.max_export_batch_size;
            uint64_t fill_ns = pace_fill_ns(bp, &pace, now);
            if (fill_ns) {
                until = min_u64(until, now + fill_ns);
                wake_at += (bp->lanes.capacity - wake_at) / 2;
            }
            atomic_store(&bp->wake_depth, wake_at);
            if (queue_depth(bp) < wake_at) {
                struct timespec ts = af__timespec_of_ns(until);
                pthread_cond_timedwait(&bp->wake, &bp->mu, &ts);
            }
            atomic_store(&bp->wake_depth, 0);
            continue;
        }
        uint64_t flush_target = bp->flush_requested;
        uint64_t hard = stop ? bp->shutdown_deadline : UINT64_MAX;
        pthread_mutex_unlock(&bp->mu);

        int erc = export_pending(bp, flush || stop || timer, hard);
        if (timer || flush || stop)
            next_export = af_monotonic_ns() + delay_ns;
        int frc = 0;
        if (flush && !stop) {
            uint64_t d = bp->o.export_timeout_ms
                             ? af_monotonic_ns() + (uint64_t)bp->o.export_timeout_ms * 1000000u
                             : UINT64_MAX;
            frc = af_exporter_force_flush(bp->exporter, d);
        }

        pthread_mutex_lock(&bp->mu);
        /* A flush requested while this export ran waits for it too (its spans were queued
         * before the flush): keep the failure for whichever flush completes next. */
        if (erc != 0 && bp->pending_err == 0 && bp->flush_requested > bp->flush_done)
            bp->pending_err = erc;
        if (stop && erc != 0)
            bp->shutdown_result = erc;
        if (flush) {
            bp->flush_done = flush_target;
            bp->flush_result = bp->pending_err ? bp->pending_err : frc;
            if (bp->flush_requested == flush_target)
                bp->pending_err = 0; /* later flushes have not waited for it */
            pthread_cond_broadcast(&bp->done);
        }
        if (stop)
            break;
    }
    worker_finish(bp);
    return NULL;
}

static int init_sync(batch_proc *bp)
{
    if (pthread_mutex_init(&bp->mu, NULL) != 0 || af__cond_init_monotonic(&bp->wake) != 0 ||
        af__cond_init_monotonic(&bp->done) != 0)
        return -ENOMEM;
    return 0;
}

static int start_worker(batch_proc *bp)
{
    atomic_store(&bp->fork_gen, atomic_load(&af__fork_generation));
    if (pthread_create(&bp->thread, NULL, worker_main, bp) != 0)
        return -EAGAIN;
    bp->thread_running = true;
    return 0;
}

/* In a forked child (the fork handler already reset the state): start this process's
 * worker. */
static void restart_worker(batch_proc *bp)
{
    pthread_mutex_lock(&bp->mu);
    if (atomic_load(&af__fork_generation) != atomic_load(&bp->fork_gen)) {
        if (bp->shutdown_req || start_worker(bp) != 0) {
            if (!bp->shutdown_req)
                af_log(AF_LOG_ERROR, "batch span processor: cannot start its thread after "
                                     "fork; spans will be dropped");
            atomic_store(&bp->closed, true);
            atomic_store(&bp->fork_gen, atomic_load(&af__fork_generation));
        }
    }
    pthread_mutex_unlock(&bp->mu);
}

/* Inline: every exported span passes here, and the test is two loads and a compare. */
static inline void ensure_worker(batch_proc *bp)
{
    if (__builtin_expect(atomic_load_explicit(&af__fork_generation, memory_order_relaxed) !=
                             atomic_load_explicit(&bp->fork_gen, memory_order_relaxed),
                         0))
        restart_worker(bp);
}

/* ----- processor hooks ------------------------------------------------------------------- */

/* CLOCK_MONOTONIC to the kernel's tick, for the drop bookkeeping: a dropping producer runs
 * this per span, and the exact clock's vDSO read (LFENCE; RDTSC on kvm-clock) cost as much as
 * the rest of the drop. A health window or a 10 s log interval does not need more. */
static uint64_t coarse_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void count_drop(batch_proc *bp)
{
    uint64_t n = atomic_fetch_add_explicit(&bp->dropped, 1, memory_order_relaxed) + 1;
    uint64_t now = coarse_monotonic_ns();
    atomic_store_explicit(&bp->last_drop_ns, now, memory_order_relaxed);
    uint64_t last = atomic_load_explicit(&bp->last_drop_log_ns, memory_order_relaxed);
    if ((last == 0 || now - last >= DROP_LOG_INTERVAL_NS) &&
        atomic_compare_exchange_strong(&bp->last_drop_log_ns, &last, now))
        af_log(AF_LOG_WARN,
               "batch span processor (%s): queue full (capacity %zu), dropping spans; %llu "
               "dropped so far. Raise max_queue_size or check the exporter.",
               af_exporter_type(bp->exporter), (size_t)bp->lanes.capacity, (unsigned long long)n);
}

/* Queues a sampled span, given a reference to its record, which it keeps or releases. */
static void batch_take(batch_proc *bp, af_span_rec *rec)
{
    ensure_worker(bp);
    if (atomic_load_explicit(&bp->closed, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&bp->dropped, 1, memory_order_relaxed);
        atomic_store_explicit(&bp->last_drop_ns, coarse_monotonic_ns(), memory_order_relaxed);
        af__span_rec_release(rec);
        return;
    }
    size_t depth; /* the depth the push saw, when it looked (once per block of places) */
    bool queued = af__lanes_push(&bp->lanes, rec, &depth);
    if (!queued) {
        af__span_rec_release(rec);
        count_drop(bp);
    }
    size_t wake_at;
    if (depth && (wake_at = atomic_load_explicit(&bp->wake_depth, memory_order_relaxed)) != 0 &&
        depth >= wake_at && atomic_exchange(&bp->wake_depth, 0)) {
        /* The worker set `wake_depth` under mu and holds mu until it waits, so once we have
         * held mu it is waiting (or already awake) and the signal cannot be lost. Signalled
         * after the unlock: signalled under it, the woken worker blocked on the mutex we
         * still held and our unlock had to wake it again (perf on a kvm-clock VM: a second
         * futex call per batch, __lll_lock_wake, about 2 % of the producer's cycles). */
        pthread_mutex_lock(&bp->mu);
        pthread_mutex_unlock(&bp->mu);
        pthread_cond_signal(&bp->wake);
    }
}

static void batch_on_end(void *self, const af_span_data *span)
{
    if (!(span->trace_flags & AF_TRACE_FLAG_SAMPLED))
        return; /* record-only spans are not exported */
    af_span_rec *rec = af__span_rec_of(span);
    af__span_rec_retain(rec);
    batch_take(self, rec);
}

static void batch_on_end_take(void *self, af_span_rec *rec)
{
    if (rec->data.trace_flags & AF_TRACE_FLAG_SAMPLED)
        batch_take(self, rec);
    else
        af__span_rec_release(rec); /* record-only spans are not exported */
}

static int batch_force_flush(void *self, uint64_t deadline_ns)
{
    batch_proc *bp = self;
    ensure_worker(bp);
    pthread_mutex_lock(&bp->mu);
    if (bp->shutdown_req || !bp->thread_running) {
        pthread_mutex_unlock(&bp->mu);
        return AF_ESHUTDOWN;
    }
    uint64_t target = ++bp->flush_requested;
    pthread_cond_signal(&bp->wake);
    int rc = 0;
    struct timespec ts =
        af__timespec_of_ns(deadline_ns == UINT64_MAX ? (uint64_t)INT64_MAX : deadline_ns);
    while (bp->flush_done < target && !bp->worker_exited) {
        if (pthread_cond_timedwait(&bp->done, &bp->mu, &ts) == ETIMEDOUT &&
            bp->flush_done < target) {
            rc = AF_ETIMEDOUT;
            break;
        }
    }
    if (rc == 0 && bp->flush_done >= target && bp->flush_result != 0)
        rc = bp->flush_result;
    pthread_mutex_unlock(&bp->mu);
    return rc;
}

static int batch_shutdown(void *self, uint64_t deadline_ns)
{
    batch_proc *bp = self;
    ensure_worker(bp);
    atomic_store(&bp->closed, true);
    pthread_mutex_lock(&bp->mu);
    if (bp->shutdown_req) {
        pthread_mutex_unlock(&bp->mu);
        return AF_ESHUTDOWN;
    }
    bp->shutdown_req = true;
    bp->shutdown_deadline = deadline_ns;
    pthread_cond_signal(&bp->wake);
    int rc = 0;
    if (bp->thread_running) {
        struct timespec ts =
            af__timespec_of_ns(deadline_ns == UINT64_MAX ? (uint64_t)INT64_MAX : deadline_ns);
        while (!bp->worker_exited) {
            if (pthread_cond_timedwait(&bp->done, &bp->mu, &ts) == ETIMEDOUT &&
                !bp->worker_exited) {
                rc = AF_ETIMEDOUT;
                break;
            }
        }
        if (rc == 0)
            rc = bp->shutdown_result;
    }
    pthread_mutex_unlock(&bp->mu);
    if (rc == AF_ETIMEDOUT)
        af_log(AF_LOG_WARN,
               "batch span processor (%s): shutdown timed out; the exporter is "
               "still busy and will be abandoned",
               af_exporter_type(bp->exporter));
    return rc;
}

/* How long past a timed-out shutdown a worker may take to leave its exporter before it is
 * abandoned (freeing the processor waits at most this much longer). */
#define ABANDON_GRACE_NS 2000000000ull

static void batch_destroy(void *self)
{
    batch_proc *bp = self;
    registry_remove(bp);
    if (!bp->shutdown_req)
        batch_shutdown(bp, af_monotonic_ns() + 5000000000ull);
    pthread_mutex_lock(&bp->mu);
    /* The worker was given the shutdown's deadline, so an exporter that honours deadlines
     * returns moments after it. Wait that long before abandoning the worker: an abandoned
     * worker may still be encoding spans whose tracer and resource strings the provider frees
     * right after this returns (seen under TSan as a crash in the OTLP encoder). */
    if (bp->thread_running && !bp->worker_exited) {
        struct timespec ts = af__timespec_of_ns(af_monotonic_ns() + ABANDON_GRACE_NS);
        while (!bp->worker_exited)
            if (pthread_cond_timedwait(&bp->done, &bp->mu, &ts) == ETIMEDOUT)
                break;
    }
    bool running = bp->thread_running;
    bool exited = bp->worker_exited;
    pthread_t worker = bp->thread; /* read under the lock: an orphaned worker frees bp */
    if (running && !exited)
        bp->orphaned = true;
    pthread_mutex_unlock(&bp->mu);
    if (running && !exited) {
        /* The worker is stuck in the exporter; it frees everything when it returns. */
        pthread_detach(worker);
        return;
    }
    if (running)
        pthread_join(worker, NULL);
    af_exporter_free(bp->exporter);
    af__lanes_destroy(&bp->lanes, af__span_rec_release);
    pthread_mutex_destroy(&bp->mu);
    pthread_cond_destroy(&bp->wake);
    pthread_cond_destroy(&bp->done);
    free(bp->batch);
    free(bp->popped);
    free(bp);
}

static void batch_stats(void *self, af_processor_stats *out)
{
    batch_proc *bp = self;
    out->queued = af__lanes_pushed(&bp->lanes);
    out->dropped = atomic_load(&bp->dropped);
    out->exported = atomic_load(&bp->exported);
    out->failed = atomic_load(&bp->failed);
    out->export_calls = atomic_load(&bp->export_calls);
    out->export_ns_total = atomic_load(&bp->export_ns);
    out->queue_depth = (uint32_t)queue_depth(bp);
    out->queue_capacity = bp->lanes.capacity;
    out->last_drop_ns = atomic_load_explicit(&bp->last_drop_ns, memory_order_relaxed);
}

static const af_span_processor_ops batch_ops = {
    .on_end = batch_on_end,
    .force_flush = batch_force_flush,
    .shutdown = batch_shutdown,
    .destroy = batch_destroy,
};

int af_batch_processor_new(af_exporter *exporter, const af_batch_processor_opts *opts,
                           af_span_processor **out)
{
    *out = NULL;
    if (!exporter)
        return -EINVAL;
    af_batch_processor_opts o;
    if (opts)
        o = *opts;
    else
        af_batch_processor_opts_init(&o);
    if (o.max_queue_size == 0 || o.max_queue_size > (1u << 24) || o.max_export_batch_size == 0) {
        af_exporter_free(exporter);
        return -EINVAL;
    }
    if (o.max_export_batch_size > o.max_queue_size)
        o.max_export_batch_size = o.max_queue_size;

    int rc = -ENOMEM;
    batch_proc *bp = aligned_alloc(_Alignof(batch_proc), sizeof(*bp)); /* its lines are aligned */
    if (!bp)
        goto fail;
    memset(bp, 0, sizeof(*bp));
    bp->exporter = exporter;
    bp->o = o;
    bp->popped = calloc(o.max_export_batch_size, sizeof(*bp->popped));
    bp->batch = calloc(o.max_export_batch_size, sizeof(*bp->batch));
    if (!bp->popped || !bp->batch)
        goto fail;
    if ((rc = af__lanes_init(&bp->lanes, o.max_queue_size)) != 0)
        goto fail;
    if ((rc = init_sync(bp)) != 0)
        goto fail_lanes;
    af__fork_handlers_install();
    if ((rc = start_worker(bp)) != 0)
        goto fail_sync;
    registry_add(bp);
    rc = af_span_processor_new(&batch_ops, bp, out);
    if (rc != 0)
        return rc; /* batch_destroy released everything */
    (*out)->exporter = exporter;
    (*out)->stats = batch_stats;
    (*out)->on_end_take = batch_on_end_take;
    return 0;
fail_sync:
    pthread_mutex_destroy(&bp->mu);
    pthread_cond_destroy(&bp->wake);
    pthread_cond_destroy(&bp->done);
fail_lanes:
    af__lanes_destroy(&bp->lanes, af__span_rec_release);
fail:
    if (bp) {
        free(bp->popped);
        free(bp->batch);
        free(bp);
    }
    af_exporter_free(exporter);
    return rc;
}

/* ----- fork handlers (installed by fork.c) ----------------------------------------------- */

/* Lock order: registry, then each processor, then its exporter's locks. No exporter lock is
 * held while a processor lock is taken, so this cannot deadlock with a running export. */
void af__batch_atfork_prepare(void)
{
    pthread_mutex_lock(&registry_mu);
    for (batch_proc *bp = registry; bp; bp = bp->reg_next) {
        pthread_mutex_lock(&bp->mu);
        af__lanes_atfork_prepare(&bp->lanes);
        af__exporter_atfork(bp->exporter, AF_FORK_PREPARE);
    }
}

void af__batch_atfork_parent(void)
{
    for (batch_proc *bp = registry; bp; bp = bp->reg_next) {
        af__exporter_atfork(bp->exporter, AF_FORK_PARENT);
        af__lanes_atfork_parent(&bp->lanes);
        pthread_mutex_unlock(&bp->mu);
    }
    pthread_mutex_unlock(&registry_mu);
}

void af__batch_atfork_child(void)
{
    for (batch_proc *bp = registry; bp; bp = bp->reg_next) {
        /* glibc's init of default-attribute mutexes and condition variables only stores
         * fields and cannot fail; re-creating (rather than unlocking) drops the parent's
         * waiters, which the inherited objects still count. */
        (void)init_sync(bp);
        bp->thread_running = false;
        bp->worker_exited = false;
        bp->flush_done = bp->flush_requested;
        bp->flush_result = 0;
        bp->pending_err = 0;
        atomic_store(&bp->wake_depth, 0);
        af__lanes_atfork_child(&bp->lanes, af__span_rec_release);
        af__exporter_atfork(bp->exporter, AF_FORK_CHILD);
    }
    af__lanes_forget_thread_in_child();
    pthread_mutex_init(&registry_mu, NULL);
}
