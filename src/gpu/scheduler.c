/*
 * GPU scheduler: GPUs in registration order, a FIFO queue of pending workloads, running and
 * finished workloads indexed by id. A scheduling pass builds a placement index (place.c) over
 * the GPUs, so each workload costs O(log G) whether it is placed or not; the priority order is
 * a stable radix sort of the queue (FIFO within a priority). One mutex guards everything.
 */
#define AF_LOG_COMPONENT "gpu"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/log.h"
#include "agentaflow/trace_helpers.h"
#include "gpu/gpu_int.h"
#include "util/str.h"

/* ---------------------------------------------------------------------------------------- */

const char *af_gpu_strategy_name(af_gpu_strategy s)
{
    switch (s) {
    case AF_GPU_LEAST_UTILIZED:
        return "least_utilized";
    case AF_GPU_BEST_FIT:
        return "best_fit";
    case AF_GPU_PRIORITY:
        return "priority";
    case AF_GPU_ROUND_ROBIN:
        return "round_robin";
    }
    return "least_utilized";
}

int af_gpu_strategy_parse(const char *name, af_gpu_strategy *out)
{
    static const af_gpu_strategy all[] = {AF_GPU_LEAST_UTILIZED, AF_GPU_BEST_FIT, AF_GPU_PRIORITY,
                                          AF_GPU_ROUND_ROBIN};
    for (size_t i = 0; name && i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(name, af_gpu_strategy_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return -EINVAL;
}

const char *af_workload_status_name(af_workload_status s)
{
    static const char *const names[] = {"pending", "running", "completed", "failed", "cancelled"};
    return (unsigned)s < 5 ? names[s] : "unknown";
}

const char *af_pending_reason_name(af_pending_reason r)
{
    static const char *const names[] = {"none",      "not_yet_scheduled",   "no_gpus",
                                        "too_large", "insufficient_memory", "exclusive_busy"};
    return (unsigned)r < 6 ? names[r] : "unknown";
}

void af_gpu_scheduler_opts_init(af_gpu_scheduler_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->strategy = AF_GPU_LEAST_UTILIZED;
    o->utilization_goal = 80.0;
    o->finished_retention = 1000;
}

int af_gpu_scheduler_new(const af_gpu_scheduler_opts *opts, af_gpu_scheduler **out)
{
    af_gpu_scheduler_opts def;
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!opts) {
        af_gpu_scheduler_opts_init(&def);
        opts = &def;
    }
    af_gpu_scheduler *s = calloc(1, sizeof(*s));
    if (!s)
        goto fail;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        s = NULL;
        goto fail;
    }
    s->strategy = opts->strategy;
    s->goal = opts->utilization_goal;
    s->finished_cap = opts->finished_retention;
    s->tracing = opts->tracing;
    s->on_change = opts->on_change;
    s->on_change_user = opts->on_change_user;
    s->place.root = -1;
    if (s->finished_cap) {
        s->finished = calloc(s->finished_cap, sizeof(*s->finished));
        if (!s->finished)
            goto fail;
    }
    *out = s;
    return 0;
fail:
    af_gpu_scheduler_free(s);
    return -ENOMEM;
}

static void wl_free(wl *w)
{
    if (!w)
        return;
    free(w->id);
    free(w->name);
    free(w->failure);
    free(w->assigned);
    free(w);
}

static void gpu_free(gpu *g)
{
    if (!g)
        return;
    free(g->id);
    free(g->name);
    free(g);
}

void af_gpu_scheduler_free(af_gpu_scheduler *s)
{
    if (!s)
        return;
    af_gpu_scheduler_attach_collector(s, NULL);
    /* Every workload is in exactly one of: queue (pending), running list, finished ring. */
    for (size_t i = 0; i < s->q_len; i++)
        if (s->queue[i]->status == AF_WORKLOAD_PENDING)
            wl_free(s->queue[i]);
    for (wl *w = s->run_head, *n; w; w = n) {
        n = w->next;
        wl_free(w);
    }
    for (size_t i = 0; i < s->fin_len; i++)
        wl_free(s->finished[(s->fin_head + i) % s->finished_cap]);
    for (size_t i = 0; i < s->n_gpus; i++)
        gpu_free(s->gpus[i]);
    free(s->gpus);
    free(s->queue);
    free(s->finished);
    af__gpu_map_free(&s->gpu_map);
    af__gpu_map_free(&s->wl_map);
    af__gpu_place_free(&s->place);
    free(s->order);
    free(s->order_tmp);
    free(s->keys);
    free(s->keys_tmp);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void af_gpu_scheduler_set_strategy(af_gpu_scheduler *s, af_gpu_strategy strategy)
{
    pthread_mutex_lock(&s->mu);
    s->strategy = strategy;
    pthread_mutex_unlock(&s->mu);
}

af_gpu_strategy af_gpu_scheduler_strategy(af_gpu_scheduler *s)
{
    pthread_mutex_lock(&s->mu);
    af_gpu_strategy st = s->strategy;
    pthread_mutex_unlock(&s->mu);
    return st;
}

void af_gpu_scheduler_set_tracing(af_gpu_scheduler *s, const af_gpu_tracing *t)
{
    pthread_mutex_lock(&s->mu);
    if (t)
        s->tracing = *t;
    else
        memset(&s->tracing, 0, sizeof(s->tracing));
    pthread_mutex_unlock(&s->mu);
}

static af_tracer *tracer_for(af_gpu_scheduler *s, af_trace_component c)
{
    pthread_mutex_lock(&s->mu);
    af_gpu_tracing t = s->tracing;
    pthread_mutex_unlock(&s->mu);
    return af__gpu_tracer(&t, c);
}

/* Ends an operation span with the error text as both status message and exception. */
static int end_op(af_span sp, int rc, const char *err)
{
    if (rc)
        af_operation_end(sp, rc, af_strerror(rc), err);
    else
        af_operation_end(sp, 0, NULL, NULL);
    return rc;
}

static size_t gpu_slot(const af_gpu_scheduler *s, const gpu *g)
{
    for (size_t i = 0; i < s->n_gpus; i++)
        if (s->gpus[i] == g)
            return i;
    return s->n_gpus;
}

/* ---------------------------------------------------------------------------------------- */
/* GPUs.                                                                                     */

static int register_locked(af_gpu_scheduler *s, const af_gpu_spec *g, char *err, size_t err_len)
{
    gpu *old = af__gpu_map_get(&s->gpu_map, g->id);
    if (old) {
        if (g->memory_total_mb < old->reserved + g->memory_used_mb) {
            af__gpu_err(err, err_len, "GPU %s has %llu MB committed, more than the new total",
                        g->id, (unsigned long long)(old->reserved + g->memory_used_mb));
            return -EBUSY;
        }
        char *name = af__strdup(g->name ? g->name : "");
        if (!name)
            return -ENOMEM;
        free(old->name);
        old->name = name;
        old->total = g->memory_total_mb;
        old->ext_used = g->memory_used_mb;
        old->util = g->utilization;
        old->temp = g->temperature;
        old->power = g->power_usage;
        old->available = g->available;
        return 0;
    }
    gpu *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->id = af__strdup(g->id);
    n->name = af__strdup(g->name ? g->name : "");
    if (!n->id || !n->name)
        goto nomem;
    n->total = g->memory_total_mb;
    n->ext_used = g->memory_used_mb;
    n->util = g->utilization;
    n->temp = g->temperature;
    n->power = g->power_usage;
    n->available = g->available;
    if (s->n_gpus == s->cap_gpus) {
        size_t nc = s->cap_gpus ? s->cap_gpus * 2 : 16;
        gpu **ng = realloc(s->gpus, nc * sizeof(*ng));
        if (!ng)
            goto nomem;
        s->gpus = ng;
        s->cap_gpus = nc;
    }
    if (af__gpu_map_put(&s->gpu_map, n->id, n))
        goto nomem;
    s->gpus[s->n_gpus++] = n;
    return 0;
nomem:
    gpu_free(n);
    return -ENOMEM;
}

static int validate_gpu(const af_gpu_spec *g, char *err, size_t err_len)
{
    if (!g) {
        af__gpu_err(err, err_len, "GPU cannot be NULL");
        return -EINVAL;
    }
    if (!g->id || !g->id[0]) {
        af__gpu_err(err, err_len, "GPU ID cannot be empty");
        return -EINVAL;
    }
    if (g->memory_total_mb == 0) {
        af__gpu_err(err, err_len, "GPU memory total must be greater than 0");
        return -EINVAL;
    }
    if (strlen(g->id) >= AF_GPU_ID_MAX) {
        af__gpu_err(err, err_len, "GPU ID must be shorter than %d bytes", AF_GPU_ID_MAX);
        return -EINVAL;
    }
    if (g->name && strlen(g->name) >= AF_GPU_NAME_MAX) {
        af__gpu_err(err, err_len, "GPU name must be shorter than %d bytes", AF_GPU_NAME_MAX);
        return -EINVAL;
    }
    if (g->memory_used_mb > g->memory_total_mb) {
        af__gpu_err(err, err_len, "GPU memory used cannot exceed memory total");
        return -EINVAL;
    }
    return 0;
}

int af_gpu_scheduler_register_gpu(af_gpu_scheduler *s, const af_gpu_spec *g, char *err,
                                  size_t err_len)
{
    char ebuf[192] = "";
    /* Validated before the span exists: a refused 1 MiB id or name must not become an
     * attribute (and from there an entry in every exporter's queue). */
    int rc = validate_gpu(g, ebuf, sizeof(ebuf));
    af_span sp = af_trace_gpu_scheduling(tracer_for(s, AF_TRACE_GPU_REGISTRATION), NULL,
                                         "register_gpu", rc ? "" : g->id);
    if (!rc) {
        af_span_set_attrs(sp, AF_ATTRS(AF_STR("gpu.name", g->name ? g->name : ""),
                                       AF_INT("gpu.memory_total", g->memory_total_mb),
                                       AF_INT("gpu.memory_used", g->memory_used_mb),
                                       AF_DOUBLE("gpu.utilization", g->utilization),
                                       AF_DOUBLE("gpu.temperature", g->temperature),
                                       AF_BOOL("gpu.available", g->available)));
        pthread_mutex_lock(&s->mu);
        rc = register_locked(s, g, ebuf, sizeof(ebuf));
        pthread_mutex_unlock(&s->mu);
    }
    if (rc == -ENOMEM && !ebuf[0])
        snprintf(ebuf, sizeof(ebuf), "out of memory");
    if (!rc)
        af_span_add_event(
            sp, "gpu.registered",
            AF_ATTRS(AF_STR("gpu.id", g->id), AF_STR("gpu.name", g->name ? g->name : "")));
    af__gpu_err(err, err_len, "%s", ebuf);
    return end_op(sp, rc, ebuf);
}

int af_gpu_scheduler_unregister_gpu(af_gpu_scheduler *s, const char *id, char *err, size_t err_len)
{
    if (!id) {
        af__gpu_err(err, err_len, "GPU ID cannot be empty");
        return -EINVAL;
    }
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    gpu *g = af__gpu_map_get(&s->gpu_map, id);
    if (!g) {
        af__gpu_err(err, err_len, "GPU %s not found", id);
        rc = -ENOENT;
    } else if (g->n_wl) {
        af__gpu_err(err, err_len, "GPU %s has running workloads", id);
        rc = -EBUSY;
    } else {
        size_t slot = gpu_slot(s, g);
        memmove(&s->gpus[slot], &s->gpus[slot + 1], (s->n_gpus - slot - 1) * sizeof(gpu *));
        s->n_gpus--;
        /* Keep the cursor on the same next GPU. */
        if (s->rr_cursor > slot)
            s->rr_cursor--;
        if (s->rr_cursor >= s->n_gpus)
            s->rr_cursor = 0;
        af__gpu_map_del(&s->gpu_map, id);
        gpu_free(g);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int af_gpu_scheduler_set_available(af_gpu_scheduler *s, const char *id, bool available)
{
    pthread_mutex_lock(&s->mu);
    gpu *g = id ? af__gpu_map_get(&s->gpu_map, id) : NULL;
    if (g)
        g->available = available;
    pthread_mutex_unlock(&s->mu);
    return g ? 0 : -ENOENT;
}

int af_gpu_scheduler_update_gpu_metrics(af_gpu_scheduler *s, const char *id, double utilization,
                                        double temperature, double power_usage)
{
    pthread_mutex_lock(&s->mu);
    gpu *g = id ? af__gpu_map_get(&s->gpu_map, id) : NULL;
    if (g) {
        g->util = utilization;
        g->temp = temperature;
        g->power = power_usage;
        g->metrics_ns = af_now_ns();
    }
    pthread_mutex_unlock(&s->mu);
    return g ? 0 : -ENOENT;
}

/* ---------------------------------------------------------------------------------------- */
/* Workloads.                                                                                */

static int validate_wl(const af_workload_spec *w, char *err, size_t err_len)
{
    if (!w) {
        af__gpu_err(err, err_len, "workload cannot be NULL");
        return -EINVAL;
    }
    if (!w->id || !w->id[0]) {
        af__gpu_err(err, err_len, "workload ID cannot be empty");
        return -EINVAL;
    }
    if (w->memory_required_mb == 0) {
        af__gpu_err(err, err_len, "workload memory requirement must be greater than 0");
        return -EINVAL;
    }
    if (strlen(w->id) >= AF_GPU_ID_MAX) {
        af__gpu_err(err, err_len, "workload ID must be shorter than %d bytes", AF_GPU_ID_MAX);
        return -EINVAL;
    }
    if (w->name && strlen(w->name) >= AF_GPU_NAME_MAX) {
        af__gpu_err(err, err_len, "workload name must be shorter than %d bytes", AF_GPU_NAME_MAX);
        return -EINVAL;
    }
    return 0;
}

static void fill_wl(const wl *w, uint64_t now, af_workload_info *o);

/* Tells the change callback (if any) the workload's new state. Caller holds mu. */
void af__gpu_notify(af_gpu_scheduler *s, const wl *w)
{
    if (!s->on_change)
        return;
    af_workload_info info;
    fill_wl(w, af_now_ns(), &info);
    s->on_change(&info, s->rr_cursor, s->on_change_user);
}

/* Frees a finished workload; the index entry goes only if a newer workload has not reused
 * the id since. */
static void forget(af_gpu_scheduler *s, wl *w)
{
    if (af__gpu_map_get(&s->wl_map, w->id) == w)
        af__gpu_map_del(&s->wl_map, w->id);
    wl_free(w);
}

/* Moves a finished workload into the retention ring, evicting the oldest. */
static void retire(af_gpu_scheduler *s, wl *w)
{
    if (!s->finished_cap) {
        forget(s, w);
        return;
    }
    if (s->fin_len == s->finished_cap) {
        forget(s, s->finished[s->fin_head]);
        s->fin_head = (s->fin_head + 1) % s->finished_cap;
        s->fin_len--;
    }
    s->finished[(s->fin_head + s->fin_len) % s->finished_cap] = w;
    s->fin_len++;
}

static int submit_locked(af_gpu_scheduler *s, const af_workload_spec *spec,
                         const af_span_context *ctx, char *err, size_t err_len)
{
    wl *old = af__gpu_map_get(&s->wl_map, spec->id);
    if (old && (old->status == AF_WORKLOAD_PENDING || old->status == AF_WORKLOAD_RUNNING)) {
        af__gpu_err(err, err_len, "workload %s already exists", spec->id);
        return -EEXIST;
    }
    if (s->q_len == s->q_cap) {
        size_t nc = s->q_cap ? s->q_cap * 2 : 64;
        wl **nq = realloc(s->queue, nc * sizeof(*nq));
        if (!nq)
            return -ENOMEM;
        s->queue = nq;
        s->q_cap = nc;
    }
    wl *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->id = af__strdup(spec->id);
    w->name = af__strdup(spec->name ? spec->name : "");
    if (!w->id || !w->name) {
        wl_free(w);
        return -ENOMEM;
    }
    /* A finished workload with the same id stays in the ring but leaves the index. */
    if (af__gpu_map_put(&s->wl_map, w->id, w)) {
        wl_free(w);
        return -ENOMEM;
    }
    w->priority = spec->priority;
    w->mem = spec->memory_required_mb;
    w->est_ms = spec->estimated_time_ms;
    w->exclusive = spec->exclusive;
    w->status = AF_WORKLOAD_PENDING;
    w->reason = AF_PENDING_NOT_YET_SCHEDULED;
    w->submitted_ns = af_now_ns();
    if (ctx && af_span_context_is_valid(ctx)) {
        memcpy(w->trace_id, ctx->trace_id, 16);
        memcpy(w->span_id, ctx->span_id, 8);
        w->trace_flags = ctx->trace_flags;
        w->has_ctx = true;
    }
    s->queue[s->q_len++] = w;
    s->n_pending++;
    af__gpu_notify(s, w);
    return 0;
}

int af_gpu_scheduler_submit(af_gpu_scheduler *s, const af_workload_spec *w, char *err,
                            size_t err_len)
{
    char ebuf[192] = "";
    af_span sp = af_trace_gpu_scheduling(tracer_for(s, AF_TRACE_GPU_WORKLOAD_SUBMISSION), NULL,
                                         "submit_workload", "");
    /* Validated first, like register_gpu: refused values never become attributes. */
    int rc = validate_wl(w, ebuf, sizeof(ebuf));
    if (!rc) {
        af_span_set_attrs(sp, AF_ATTRS(AF_STR("workload.id", w->id ? w->id : ""),
                                       AF_STR("workload.name", w->name ? w->name : ""),
                                       AF_INT("workload.priority", w->priority),
                                       AF_INT("workload.memory_required", w->memory_required_mb),
                                       AF_BOOL("workload.exclusive", w->exclusive)));
    }
    af_span_context ctx;
    af_span_get_context(sp, &ctx);
    if (!rc) {
        pthread_mutex_lock(&s->mu);
        rc = submit_locked(s, w, &ctx, ebuf, sizeof(ebuf));
        size_t qsize = s->n_pending;
        pthread_mutex_unlock(&s->mu);
        af_span_set_int(sp, "scheduler.queue_size", (int64_t)qsize);
    }
    if (rc == -ENOMEM && !ebuf[0])
        snprintf(ebuf, sizeof(ebuf), "out of memory");
    if (!rc)
        af_span_add_event(sp, "workload.submitted", AF_ATTRS(AF_STR("workload.id", w->id)));
    af__gpu_err(err, err_len, "%s", ebuf);
    return end_op(sp, rc, ebuf);
}

void af__gpu_run_add(af_gpu_scheduler *s, wl *w, gpu *g)
{
    w->on = g;
    g->reserved += w->mem;
    g->n_wl++;
    if (w->exclusive)
        g->n_excl++;
    w->next = s->run_head;
    if (s->run_head)
        s->run_head->prev = w;
    s->run_head = w;
    s->n_running++;
}

/* The reverse of af__gpu_run_add; the workload keeps the GPU's id as assigned. */
static void release_gpu(af_gpu_scheduler *s, wl *w)
{
    gpu *g = w->on;
    /* Keep the GPU's id past its possible unregistration (NULL on ENOMEM reads ""). */
    free(w->assigned);
    w->assigned = af__strdup(g->id);
    g->reserved -= w->mem;
    g->n_wl--;
    if (w->exclusive)
        g->n_excl--;
    w->on = NULL;
    if (w->prev)
        w->prev->next = w->next;
    else
        s->run_head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
    s->n_running--;
}

/* Drops a pending workload from the queue at once, so queue order and counts stay exact. */
static void unqueue(af_gpu_scheduler *s, wl *w)
{
    for (size_t i = 0; i < s->q_len; i++) {
        if (s->queue[i] == w) {
            memmove(&s->queue[i], &s->queue[i + 1], (s->q_len - i - 1) * sizeof(wl *));
            s->q_len--;
            break;
        }
    }
    s->n_pending--;
}

/* Finishes a workload in state `to`; `allow_pending` lets cancel/fail take queued ones. */
static int finish(af_gpu_scheduler *s, const char *id, af_workload_status to, bool allow_pending,
                  const char *reason, char *err, size_t err_len)
{
    if (!id || !id[0]) {
        af__gpu_err(err, err_len, "workload ID cannot be empty");
        return -EINVAL;
    }
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    wl *w = af__gpu_map_get(&s->wl_map, id);
    if (!w) {
        af__gpu_err(err, err_len, "workload %s not found", id);
        rc = -ENOENT;
    } else if (w->status == AF_WORKLOAD_RUNNING) {
        release_gpu(s, w);
    } else if (w->status == AF_WORKLOAD_PENDING && allow_pending) {
        unqueue(s, w);
    } else {
        af__gpu_err(err, err_len, "workload %s is %s", id, af_workload_status_name(w->status));
        rc = -EINVAL;
    }
    if (!rc) {
        w->status = to;
        w->reason = AF_PENDING_NONE;
        w->completed_ns = af_now_ns();
        if (reason) {
            free(w->failure);
            w->failure = af__strdup(reason); /* best effort: NULL just loses the text */
        }
        af__gpu_notify(s, w);
        retire(s, w);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int af_gpu_scheduler_cancel(af_gpu_scheduler *s, const char *id, char *err, size_t err_len)
{
    return finish(s, id, AF_WORKLOAD_CANCELLED, true, NULL, err, err_len);
}

int af_gpu_scheduler_complete(af_gpu_scheduler *s, const char *id, char *err, size_t err_len)
{
    return finish(s, id, AF_WORKLOAD_COMPLETED, false, NULL, err, err_len);
}

int af_gpu_scheduler_fail(af_gpu_scheduler *s, const char *id, const char *reason, char *err,
                          size_t err_len)
{
    return finish(s, id, AF_WORKLOAD_FAILED, true, reason ? reason : "", err, err_len);
}

/* ---------------------------------------------------------------------------------------- */
/* Scheduling pass.                                                                          */

int af_gpu_scheduler_schedule(af_gpu_scheduler *s, size_t *scheduled)
{
    af_span sp = af_trace_gpu_scheduling(tracer_for(s, AF_TRACE_GPU_SCHEDULING_DECISIONS), NULL,
                                         "schedule", "");
    bool recording = af_span_is_recording(sp);
    pass_result res = {0, 0};
    pthread_mutex_lock(&s->mu);
    size_t before = s->n_pending;
    if (recording) {
        uint32_t avail = 0;
        for (size_t i = 0; i < s->n_gpus; i++)
            avail += s->gpus[i]->available;
        af_span_set_attrs(
            sp, AF_ATTRS(AF_INT("scheduler.queue_size", before),
                         AF_INT("scheduler.total_gpus", s->n_gpus),
                         AF_INT("scheduler.available_gpus", avail),
                         AF_STR("scheduler.strategy", af_gpu_strategy_name(s->strategy))));
    }
    int rc = before ? af__gpu_pass_locked(s, sp, recording, &res) : 0;
    size_t after = s->n_pending;
    pthread_mutex_unlock(&s->mu);
    if (scheduled)
        *scheduled = res.placed;
    af_span_set_attrs(sp, AF_ATTRS(AF_INT("scheduler.scheduled_count", res.placed),
                                   AF_INT("scheduler.pending_after", after),
                                   AF_INT("workload.queue_wait_ms", res.max_wait_ms)));
    if (!rc)
        af_span_add_event(sp, "scheduling.completed",
                          AF_ATTRS(AF_INT("workloads.scheduled", res.placed)));
    else
        af_log(AF_LOG_ERROR, "gpu scheduler: scheduling pass failed: %s", af_strerror(rc));
    return end_op(sp, rc, rc ? "scheduling pass failed: out of memory" : NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* Restore.                                                                                  */

static int restore_locked(af_gpu_scheduler *s, const af_workload_info *in)
{
    wl *old = af__gpu_map_get(&s->wl_map, in->id);
    if (old && (old->status == AF_WORKLOAD_PENDING || old->status == AF_WORKLOAD_RUNNING))
        return -EEXIST;
    af_workload_status st = in->status;
    gpu *g = NULL;
    if (st == AF_WORKLOAD_RUNNING) {
        g = af__gpu_map_get(&s->gpu_map, in->assigned_gpu);
        /* Its GPU is gone (or cannot take it any more): queue it again rather than lose it. */
        if (!g || af__gpu_free_mb(g) < in->memory_required_mb)
            st = AF_WORKLOAD_PENDING;
    }
    if (st == AF_WORKLOAD_PENDING && s->q_len == s->q_cap) {
        size_t nc = s->q_cap ? s->q_cap * 2 : 64;
        wl **nq = realloc(s->queue, nc * sizeof(*nq));
        if (!nq)
            return -ENOMEM;
        s->queue = nq;
        s->q_cap = nc;
    }
    wl *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->id = af__strdup(in->id);
    w->name = af__strdup(in->name);
    w->failure = in->failure[0] ? af__strdup(in->failure) : NULL;
    w->assigned =
        in->assigned_gpu[0] && st != AF_WORKLOAD_PENDING ? af__strdup(in->assigned_gpu) : NULL;
    if (!w->id || !w->name || af__gpu_map_put(&s->wl_map, w->id, w)) {
        wl_free(w);
        return -ENOMEM;
    }
    w->priority = in->priority;
    w->mem = in->memory_required_mb;
    w->est_ms = in->estimated_time_ms;
    w->exclusive = in->exclusive;
    w->status = st;
    w->submitted_ns = in->submitted_ns;
    w->completed_ns = in->completed_ns;
    if (st == AF_WORKLOAD_PENDING) {
        w->reason = in->status == AF_WORKLOAD_PENDING && in->pending_reason != AF_PENDING_NONE
                        ? in->pending_reason
                        : AF_PENDING_NOT_YET_SCHEDULED;
        s->queue[s->q_len++] = w;
        s->n_pending++;
    } else if (st == AF_WORKLOAD_RUNNING) {
        w->started_ns = in->started_ns;
        af__gpu_run_add(s, w, g);
    } else {
        w->started_ns = in->started_ns;
        retire(s, w);
    }
    return 0;
}

int af_gpu_scheduler_restore(af_gpu_scheduler *s, const af_workload_info *w)
{
    if (!s || !w || !w->id[0] || (unsigned)w->status > AF_WORKLOAD_CANCELLED)
        return -EINVAL;
    pthread_mutex_lock(&s->mu);
    int rc = restore_locked(s, w);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void af_gpu_scheduler_set_rr_cursor(af_gpu_scheduler *s, size_t cursor)
{
    pthread_mutex_lock(&s->mu);
    s->rr_cursor = s->n_gpus ? cursor % s->n_gpus : 0;
    pthread_mutex_unlock(&s->mu);
}

/* ---------------------------------------------------------------------------------------- */
/* Queries.                                                                                  */

static void fill_wl(const wl *w, uint64_t now, af_workload_info *o)
{
    memset(o, 0, sizeof(*o));
    af__strlcpy(o->id, w->id, sizeof(o->id));
    af__strlcpy(o->name, w->name, sizeof(o->name));
    o->priority = w->priority;
    o->memory_required_mb = w->mem;
    o->estimated_time_ms = w->est_ms;
    o->exclusive = w->exclusive;
    o->status = w->status;
    const char *gid = w->on ? w->on->id : w->assigned;
    if (gid)
        af__strlcpy(o->assigned_gpu, gid, sizeof(o->assigned_gpu));
    o->submitted_ns = w->submitted_ns;
    o->started_ns = w->started_ns;
    o->completed_ns = w->completed_ns;
    uint64_t until = w->started_ns ? w->started_ns : (w->completed_ns ? w->completed_ns : now);
    o->queue_wait_ms = until > w->submitted_ns ? (until - w->submitted_ns) / 1000000u : 0;
    o->pending_reason = w->reason;
    if (w->failure)
        af__strlcpy(o->failure, w->failure, sizeof(o->failure));
}

static void fill_gpu(const af_gpu_scheduler *s, const gpu *g, af_gpu_status *o)
{
    memset(o, 0, sizeof(*o));
    af__strlcpy(o->id, g->id, sizeof(o->id));
    af__strlcpy(o->name, g->name, sizeof(o->name));
    o->memory_total_mb = g->total;
    o->memory_used_mb = g->ext_used + g->reserved;
    o->memory_reserved_mb = g->reserved;
    o->memory_free_mb = af__gpu_free_mb(g);
    o->utilization = g->util;
    o->temperature = g->temp;
    o->power_usage = g->power;
    o->available = g->available;
    o->exclusive = g->n_excl > 0;
    o->workload_count = g->n_wl;
    o->registration_index = (uint32_t)gpu_slot(s, g);
    o->last_metrics_update_ns = g->metrics_ns;
}

int af_gpu_scheduler_get_workload(af_gpu_scheduler *s, const char *id, af_workload_info *out)
{
    pthread_mutex_lock(&s->mu);
    wl *w = id ? af__gpu_map_get(&s->wl_map, id) : NULL;
    if (w)
        fill_wl(w, af_now_ns(), out);
    pthread_mutex_unlock(&s->mu);
    return w ? 0 : -ENOENT;
}

int af_gpu_scheduler_get_gpu(af_gpu_scheduler *s, const char *id, af_gpu_status *out)
{
    pthread_mutex_lock(&s->mu);
    gpu *g = id ? af__gpu_map_get(&s->gpu_map, id) : NULL;
    if (g)
        fill_gpu(s, g, out);
    pthread_mutex_unlock(&s->mu);
    return g ? 0 : -ENOENT;
}

size_t af_gpu_scheduler_list_gpus(af_gpu_scheduler *s, af_gpu_status *out, size_t cap)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n_gpus;
    for (size_t i = 0; i < n && i < cap; i++)
        fill_gpu(s, s->gpus[i], &out[i]);
    pthread_mutex_unlock(&s->mu);
    return n;
}

size_t af_gpu_scheduler_list_workloads(af_gpu_scheduler *s, af_workload_info *out, size_t cap)
{
    pthread_mutex_lock(&s->mu);
    uint64_t now = af_now_ns();
    size_t k = 0;
    for (size_t i = 0; i < s->q_len; i++, k++)
        if (k < cap)
            fill_wl(s->queue[i], now, &out[k]);
    for (wl *w = s->run_head; w; w = w->next, k++)
        if (k < cap)
            fill_wl(w, now, &out[k]);
    pthread_mutex_unlock(&s->mu);
    return k;
}

void af_gpu_scheduler_utilization(af_gpu_scheduler *s, af_gpu_utilization *out)
{
    af_span sp = af_trace_gpu_scheduling(tracer_for(s, AF_TRACE_GPU_SCHEDULING_DECISIONS), NULL,
                                         "get_utilization", "");
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&s->mu);
    double util_sum = 0;
    for (size_t i = 0; i < s->n_gpus; i++) {
        const gpu *g = s->gpus[i];
        util_sum += g->util;
        out->active_gpus += g->n_wl > 0;
        out->memory_total_mb += g->total;
        out->memory_used_mb += g->ext_used + g->reserved;
        if (g->available) {
            out->available_gpus++;
            out->memory_available_mb += af__gpu_free_mb(g);
        }
    }
    out->total_gpus = (uint32_t)s->n_gpus;
    out->average_utilization = s->n_gpus ? util_sum / (double)s->n_gpus : 0;
    out->memory_utilization =
        out->memory_total_mb ? (double)out->memory_used_mb * 100.0 / (double)out->memory_total_mb
                             : 0;
    out->pending_workloads = (uint32_t)s->n_pending;
    out->running_workloads = (uint32_t)s->n_running;
    out->utilization_goal = s->goal;
    pthread_mutex_unlock(&s->mu);
    af_span_set_attrs(sp, AF_ATTRS(AF_DOUBLE("gpu.utilization", out->average_utilization),
                                   AF_INT("scheduler.total_gpus", out->total_gpus),
                                   AF_INT("scheduler.available_gpus", out->available_gpus),
                                   AF_INT("scheduler.queue_size", out->pending_workloads)));
    af_operation_end(sp, 0, NULL, NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* Collector attachment.                                                                     */

static void on_sample(const af_gpu_sample *m, void *user)
{
    af_gpu_scheduler *s = user;
    pthread_mutex_lock(&s->mu);
    gpu *g = af__gpu_map_get(&s->gpu_map, m->gpu_id);
    if (g) {
        if (m->valid & AF_GPU_F_UTIL_GPU)
            g->util = m->utilization_gpu;
        if (m->valid & AF_GPU_F_TEMPERATURE)
            g->temp = m->temperature;
        if (m->valid & AF_GPU_F_POWER_DRAW)
            g->power = m->power_draw;
        g->metrics_ns = m->timestamp_ns;
    }
    pthread_mutex_unlock(&s->mu);
}

int af_gpu_scheduler_attach_collector(af_gpu_scheduler *s, af_gpu_collector *c)
{
    /* The collector's callback takes s->mu, so (de)registration happens outside it. */
    af_gpu_collector *old = s->collector;
    if (old) {
        af_gpu_collector_remove_callback(old, s->collector_cb);
        s->collector = NULL;
        s->collector_cb = 0;
    }
    if (!c)
        return 0;
    int h = af_gpu_collector_add_sample_callback(c, on_sample, s);
    if (h < 0)
        return h;
    s->collector = c;
    s->collector_cb = h;
    return 0;
}
