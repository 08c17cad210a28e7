/*
 * The scheduling pass: a placement index (place.c) over the GPUs, the queue in strategy order,
 * and each workload placed or given its pending reason. Called by af_gpu_scheduler_schedule.
 */
#define AF_LOG_COMPONENT "gpu"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/log.h"
#include "agentaflow/trace_helpers.h"
#include "gpu/gpu_int.h"
#include "util/str.h"

/* Index entry for slot i under the current strategy. */
static void index_gpu(af_gpu_scheduler *s, af_gpu_strategy st, uint32_t i)
{
    gpu *g = s->gpus[i];
    uint64_t fr = af__gpu_free_mb(g);
    uint64_t own = (g->available && !g->n_excl) ? fr : 0;
    uint64_t own_empty = g->n_wl == 0 ? own : 0;
    double k1 = 0;
    uint64_t k2 = 0;
    switch (st) {
    case AF_GPU_LEAST_UTILIZED:
    case AF_GPU_PRIORITY:
        k1 = g->util;
        k2 = g->n_wl;
        break;
    case AF_GPU_BEST_FIT:
        k1 = (double)fr;
        break;
    case AF_GPU_ROUND_ROBIN:
        break;
    }
    af__gpu_place_insert(&s->place, i, k1, k2, own, own_empty);
}

static int ensure_order(af_gpu_scheduler *s, size_t n)
{
    if (n <= s->order_cap)
        return 0;
    size_t nc = s->order_cap ? s->order_cap : 1024;
    while (nc < n)
        nc *= 2;
    wl **a = realloc(s->order, nc * sizeof(*a));
    if (!a)
        return -ENOMEM;
    s->order = a;
    wl **b = realloc(s->order_tmp, nc * sizeof(*b));
    if (!b)
        return -ENOMEM;
    s->order_tmp = b;
    uint32_t *c = realloc(s->keys, nc * sizeof(*c));
    if (!c)
        return -ENOMEM;
    s->keys = c;
    uint32_t *d = realloc(s->keys_tmp, nc * sizeof(*d));
    if (!d)
        return -ENOMEM;
    s->keys_tmp = d;
    s->order_cap = nc;
    return 0;
}

/*
 * Queue order for the priority strategy: higher priority first, submission order within a
 * priority. LSD radix sort on the priority (stable, so FIFO is kept); bytes on which every key
 * agrees are skipped, so the usual handful of small priorities costs one counting pass.
 */
static wl **priority_order(af_gpu_scheduler *s, size_t n)
{
    wl **src = s->order, **dst = s->order_tmp;
    uint32_t *ks = s->keys, *kd = s->keys_tmp;
    uint32_t all_and = UINT32_MAX, all_or = 0;
    for (size_t i = 0; i < n; i++) {
        src[i] = s->queue[i];
        /* Flip the sign bit (signed -> unsigned order) and invert (descending). */
        ks[i] = ~((uint32_t)s->queue[i]->priority ^ 0x80000000u);
        all_and &= ks[i];
        all_or |= ks[i];
    }
    for (unsigned shift = 0; shift < 32; shift += 8) {
        if ((((all_and ^ all_or) >> shift) & 0xff) == 0)
            continue;
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++)
            count[((ks[i] >> shift) & 0xff) + 1]++;
        for (int b = 0; b < 256; b++)
            count[b + 1] += count[b];
        for (size_t i = 0; i < n; i++) {
            size_t pos = count[(ks[i] >> shift) & 0xff]++;
            dst[pos] = src[i];
            kd[pos] = ks[i];
        }
        wl **t = src;
        src = dst;
        dst = t;
        uint32_t *tk = ks;
        ks = kd;
        kd = tk;
    }
    return src;
}

static void set_link(af_span sp, const wl *w, const gpu *g, uint64_t wait_ms)
{
    af_span_context lc;
    af_span_context_init(&lc);
    memcpy(lc.trace_id, w->trace_id, 16);
    memcpy(lc.span_id, w->span_id, 8);
    lc.trace_flags = w->trace_flags;
    af_span_add_link(sp, &lc,
                     AF_ATTRS(AF_STR("workload.id", w->id), AF_STR("gpu.id", g->id),
                              AF_INT("workload.queue_wait_ms", wait_ms)));
}

/* One walk over the queue in strategy order. Kept as one function (~90 lines) on purpose:
 * placing a workload updates the placement index, the GPU, the run list and the round-robin
 * cursor together, and the next lookup depends on all of them. */
int af__gpu_pass_locked(af_gpu_scheduler *s, af_span sp, bool recording, pass_result *res)
{
    af_gpu_strategy st = s->strategy;
    uint32_t ng = (uint32_t)s->n_gpus;
    if (af__gpu_place_reset(&s->place, ng))
        return -ENOMEM;
    uint64_t max_total = 0;
    bool any = false;
    for (uint32_t i = 0; i < ng; i++) {
        index_gpu(s, st, i);
        if (s->gpus[i]->available) {
            any = true;
            if (s->gpus[i]->total - s->gpus[i]->ext_used > max_total)
                max_total = s->gpus[i]->total - s->gpus[i]->ext_used;
        }
    }
    size_t n = s->q_len;
    wl **order = s->queue;
    if (st == AF_GPU_PRIORITY) {
        if (ensure_order(s, n))
            return -ENOMEM;
        order = priority_order(s, n);
    }
    uint64_t now = af_now_ns();
    size_t links = 0;
    for (size_t i = 0; i < n; i++) {
        wl *w = order[i];
        int32_t slot = -1;
        if (ng) {
            /* Lower bound of the search in key order (see index_gpu for the keys). */
            af_gpu_place_key lo = {-1e300, 0, 0};
            if (st == AF_GPU_BEST_FIT)
                lo.k1 = (double)w->mem;
            else if (st == AF_GPU_ROUND_ROBIN)
                lo = (af_gpu_place_key){0, 0, (uint32_t)s->rr_cursor};
            slot = af__gpu_place_find(&s->place, &lo, w->mem, w->exclusive);
            if (slot < 0 && st == AF_GPU_ROUND_ROBIN && s->rr_cursor) {
                lo.slot = 0; /* wrap around */
                slot = af__gpu_place_find(&s->place, &lo, w->mem, w->exclusive);
            }
        }
        if (slot < 0) {
            af_pending_reason was = w->reason;
            if (!any)
                w->reason = AF_PENDING_NO_GPUS;
            else if (w->mem > max_total)
                w->reason = AF_PENDING_TOO_LARGE;
            else if (w->exclusive)
                w->reason = AF_PENDING_EXCLUSIVE_BUSY;
            else
                w->reason = AF_PENDING_INSUFFICIENT_MEMORY;
            /* Only a new reason is a change: a pass over an unchanged queue reports none. */
            if (w->reason != was)
                af__gpu_notify(s, w);
            continue;
        }
        gpu *g = s->gpus[slot];
        af__gpu_place_erase(&s->place, (uint32_t)slot);
        w->status = AF_WORKLOAD_RUNNING;
        w->reason = AF_PENDING_NONE;
        w->started_ns = now;
        af__gpu_run_add(s, w, g);
        index_gpu(s, st, (uint32_t)slot);
        if (st == AF_GPU_ROUND_ROBIN)
            s->rr_cursor = ((size_t)slot + 1) % ng;
        af__gpu_notify(s, w);
        uint64_t wait_ms = now > w->submitted_ns ? (now - w->submitted_ns) / 1000000u : 0;
        if (wait_ms > res->max_wait_ms)
            res->max_wait_ms = wait_ms;
        if (recording && w->has_ctx && links < MAX_LINKS) {
            set_link(sp, w, g, wait_ms);
            links++;
        }
        res->placed++;
    }
    /* Compact the queue, keeping submission order. */
    size_t k = 0;
    for (size_t i = 0; i < s->q_len; i++)
        if (s->queue[i]->status == AF_WORKLOAD_PENDING)
            s->queue[k++] = s->queue[i];
    s->q_len = k;
    s->n_pending = k;
    return 0;
}
