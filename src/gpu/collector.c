/*
 * GPU metrics collector: one thread ("af-gpu-metrics") samples every GPU of its backend at a
 * fixed interval (the first cycle at once), keeps a per-GPU history ring bounded by count and
 * age, evaluates the threshold table (alerts with de-duplication and hysteresis) and calls
 * the registered callbacks in order.
 *
 * Locks: cycle_mu serializes cycles and guards the callback list (so removing a callback
 * waits for a running cycle); mu guards the stored data and is never held while calling out;
 * run_mu/cv guard the thread's start/stop. Order: cycle_mu, then mu.
 */
#define AF_LOG_COMPONENT "gpu"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentaflow/log.h"
#include "agentaflow/trace_helpers.h"
#include "gpu/gpu_int.h"
#include "util/str.h"
#include "util/timeutil.h"

void af_gpu_thresholds_init(af_gpu_thresholds *t)
{
    t->temperature_warning = 75;
    t->temperature_critical = 85;
    t->memory_warning = 80;
    t->memory_critical = 95;
    t->power_warning = 80;
    t->power_critical = 95;
    t->utilization_low = 10;
    t->utilization_high = 95;
    t->utilization_jump = 50;
    t->hysteresis = 5;
}

const char *af_gpu_level_name(af_gpu_level l)
{
    return l == AF_GPU_CRITICAL ? "critical" : (l == AF_GPU_WARNING ? "warning" : "healthy");
}

const char *af_gpu_severity_name(af_gpu_level l)
{
    return l == AF_GPU_CRITICAL ? "critical" : (l == AF_GPU_WARNING ? "warning" : "info");
}

void af_gpu_collector_opts_init(af_gpu_collector_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->backend = AF_GPU_BACKEND_AUTO;
    af_gpu_sim_opts_init(&o->sim);
    o->interval_ms = 3000;
    o->history_capacity = 1000;
    o->retention_ms = 3600000;
    af_gpu_thresholds_init(&o->thresholds);
    o->alert_history = 1000;
}

static int make_backend(const af_gpu_collector_opts *o, af_gpu_collector *c, char *err,
                        size_t err_len)
{
    if (o->custom) {
        c->backend = o->custom;
        snprintf(c->reason, sizeof(c->reason), "configured");
        return 0;
    }
    char nerr[200] = "";
    if (o->backend != AF_GPU_BACKEND_SIMULATED) {
        int rc = af_gpu_backend_nvml_new(o->nvml_library, &c->backend, nerr, sizeof(nerr));
        if (rc == 0) {
            uint32_t n = af_gpu_backend_device_count(c->backend);
            snprintf(c->reason, sizeof(c->reason), "NVML found %u device%s", n, n == 1 ? "" : "s");
            return 0;
        }
        if (o->backend == AF_GPU_BACKEND_NVML) {
            af__gpu_err(err, err_len, "%s", nerr);
            return rc;
        }
    }
    int rc = af_gpu_backend_simulated_new(&o->sim, &c->backend);
    if (rc) {
        af__gpu_err(err, err_len, "invalid simulated backend options");
        return rc;
    }
    if (o->backend == AF_GPU_BACKEND_SIMULATED)
        snprintf(c->reason, sizeof(c->reason), "configured");
    else
        snprintf(c->reason, sizeof(c->reason), "NVML unavailable: %s", nerr);
    return 0;
}

int af_gpu_collector_new(const af_gpu_collector_opts *opts, af_gpu_collector **out, char *err,
                         size_t err_len)
{
    af_gpu_collector_opts def;
    if (!opts) {
        af_gpu_collector_opts_init(&def);
        opts = &def;
    }
    *out = NULL;
    int rc = -ENOMEM;
    af_gpu_collector *c = calloc(1, sizeof(*c));
    if (!c) {
        af_gpu_backend_free(opts->custom);
        return -ENOMEM;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->cycle_mu, NULL);
    pthread_mutex_init(&c->run_mu, NULL);
    af__cond_init_monotonic(&c->cv);
    c->interval_ms = opts->interval_ms ? opts->interval_ms : 1;
    c->hist_cap = opts->history_capacity ? opts->history_capacity : 1;
    c->retention_ns = opts->retention_ms * 1000000u;
    c->th = opts->thresholds;
    c->tracing = opts->tracing;
    c->a_cap = opts->alert_history ? opts->alert_history : 1;
    c->next_alert_id = 1;
    c->next_handle = 1;
    rc = make_backend(opts, c, err, err_len);
    if (rc)
        goto fail;
    rc = -ENOMEM;
    c->n = af_gpu_backend_device_count(c->backend);
    c->g = calloc(c->n ? c->n : 1, sizeof(*c->g));
    c->alerts = calloc(c->a_cap, sizeof(*c->alerts));
    if (!c->g || !c->alerts)
        goto fail;
    for (uint32_t i = 0; i < c->n; i++) {
        c->g[i].ring = calloc(c->hist_cap, sizeof(af_gpu_sample));
        if (!c->g[i].ring)
            goto fail;
    }
    af_log(AF_LOG_INFO, "gpu metrics: %s backend (%s)", af_gpu_backend_name(c->backend), c->reason);
    *out = c;
    return 0;
fail:
    af_gpu_collector_free(c);
    return rc;
}

void af_gpu_collector_free(af_gpu_collector *c)
{
    if (!c)
        return;
    af_gpu_collector_stop(c);
    if (c->g)
        for (uint32_t i = 0; i < c->n; i++)
            free(c->g[i].ring);
    free(c->g);
    free(c->alerts);
    free(c->cbs);
    af_gpu_backend_free(c->backend);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->run_mu);
    pthread_mutex_destroy(&c->cycle_mu);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

const char *af_gpu_collector_backend_name(af_gpu_collector *c)
{
    return af_gpu_backend_name(c->backend);
}

const char *af_gpu_collector_backend_reason(af_gpu_collector *c)
{
    return c->reason;
}

af_gpu_backend *af_gpu_collector_backend(af_gpu_collector *c)
{
    return c->backend;
}

uint32_t af_gpu_collector_gpu_count(af_gpu_collector *c)
{
    return c->n;
}

static af_tracer *tracer_for(af_gpu_collector *c, af_trace_component comp)
{
    pthread_mutex_lock(&c->mu);
    af_gpu_tracing t = c->tracing;
    pthread_mutex_unlock(&c->mu);
    return af__gpu_tracer(&t, comp);
}

void af_gpu_collector_set_tracing(af_gpu_collector *c, const af_gpu_tracing *t)
{
    pthread_mutex_lock(&c->mu);
    if (t)
        c->tracing = *t;
    else
        memset(&c->tracing, 0, sizeof(c->tracing));
    pthread_mutex_unlock(&c->mu);
}

void af_gpu_collector_set_thresholds(af_gpu_collector *c, const af_gpu_thresholds *t)
{
    pthread_mutex_lock(&c->mu);
    c->th = *t;
    pthread_mutex_unlock(&c->mu);
}

void af_gpu_collector_get_thresholds(af_gpu_collector *c, af_gpu_thresholds *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->th;
    pthread_mutex_unlock(&c->mu);
}

static void store(af_gpu_collector *c, uint32_t i, const af_gpu_sample *m,
                  const af_gpu_process *procs, size_t n_procs, new_alerts *na)
{
    gstate *gs = &c->g[i];
    pthread_mutex_lock(&c->mu);
    af_gpu_sample prev = gs->latest;
    bool had_prev = gs->has_latest;
    /* Drop by age, then by count. */
    while (gs->len && c->retention_ns && m->timestamp_ns > c->retention_ns &&
           gs->ring[gs->head].timestamp_ns < m->timestamp_ns - c->retention_ns) {
        gs->head = (gs->head + 1) % c->hist_cap;
        gs->len--;
    }
    if (gs->len == c->hist_cap) {
        gs->head = (gs->head + 1) % c->hist_cap;
        gs->len--;
    }
    gs->ring[(gs->head + gs->len) % c->hist_cap] = *m;
    gs->len++;
    gs->latest = *m;
    gs->has_latest = true;
    memcpy(gs->procs, procs, n_procs * sizeof(*procs));
    gs->n_procs = n_procs;
    af__gpu_collector_evaluate(c, gs, had_prev ? &prev : NULL, m, na);
    pthread_mutex_unlock(&c->mu);
}

static int cycle_locked(af_gpu_collector *c)
{
    af_tracer *tc = tracer_for(c, AF_TRACE_METRICS_COLLECTION_CYCLES);
    af_tracer *ti = tracer_for(c, AF_TRACE_METRICS_INDIVIDUAL_GPUS);
    af_span cyc = af_trace_metrics_collection(tc, NULL, "collect_metrics", c->n);
    af_span_context cctx;
    af_span_get_context(cyc, &cctx);
    const af_span_context *parent = af_span_context_is_valid(&cctx) ? &cctx : NULL;
    double util_sum = 0, temp_max = 0;
    uint64_t mem_used = 0, mem_total = 0;
    uint32_t ok = 0, failed = 0;
    af_gpu_process procs[AF_GPU_MAX_PROCESSES];
    for (uint32_t i = 0; i < c->n; i++) {
        af_gpu_sample m;
        memset(&m, 0, sizeof(m));
        snprintf(m.gpu_id, sizeof(m.gpu_id), "gpu-%u", i);
        m.timestamp_ns = af_now_ns();
        af_span gs = af_trace_metrics_collection(ti, parent, "collect_gpu", 1);
        size_t n_procs = 0;
        int rc = af_gpu_backend_sample(c->backend, i, m.timestamp_ns, &m, procs,
                                       AF_GPU_MAX_PROCESSES, &n_procs);
        /* Whatever the backend wrote, these stay ours. */
        snprintf(m.gpu_id, sizeof(m.gpu_id), "gpu-%u", i);
        if (rc) {
            failed++;
            af_span_set_string(gs, "gpu.id", m.gpu_id);
            af_operation_end(gs, rc, af_strerror(rc), "backend failed to sample the GPU");
            continue;
        }
        if (m.memory_used_mb > m.memory_total_mb)
            m.memory_used_mb = m.memory_total_mb;
        m.memory_free_mb = m.memory_total_mb - m.memory_used_mb;
        if (n_procs > AF_GPU_MAX_PROCESSES)
            n_procs = AF_GPU_MAX_PROCESSES;
        new_alerts na = {.n = 0};
        store(c, i, &m, procs, n_procs, &na);
        ok++;
        util_sum += m.utilization_gpu;
        if (m.temperature > temp_max)
            temp_max = m.temperature;
        mem_used += m.memory_used_mb;
        mem_total += m.memory_total_mb;
        af_span_set_attrs(gs, AF_ATTRS(AF_STR("gpu.id", m.gpu_id), AF_STR("gpu.name", m.name),
                                       AF_DOUBLE("gpu.utilization", m.utilization_gpu),
                                       AF_DOUBLE("gpu.temperature", m.temperature),
                                       AF_INT("gpu.memory_used", m.memory_used_mb),
                                       AF_INT("gpu.memory_total", m.memory_total_mb),
                                       AF_DOUBLE("gpu.power_draw", m.power_draw),
                                       AF_INT("gpu.process_count", m.process_count)));
        af_span_add_event(gs, "metrics.collected", AF_ATTRS(AF_STR("gpu.id", m.gpu_id)));
        af_operation_end(gs, 0, NULL, NULL);
        for (size_t k = 0; k < c->n_cbs; k++)
            if (c->cbs[k].on_sample)
                c->cbs[k].on_sample(&m, c->cbs[k].user);
        for (size_t a = 0; a < na.n; a++)
            for (size_t k = 0; k < c->n_cbs; k++)
                if (c->cbs[k].on_alert)
                    c->cbs[k].on_alert(&na.a[a], c->cbs[k].user);
    }
    af_span_set_attrs(
        cyc, AF_ATTRS(AF_INT("metrics.gpu_count", c->n), AF_INT("metrics.collected_count", ok),
                      AF_INT("metrics.failed_count", failed),
                      AF_STR("collector.backend", af_gpu_backend_name(c->backend)),
                      AF_DOUBLE("gpu.utilization", ok ? util_sum / ok : 0),
                      AF_DOUBLE("gpu.temperature", temp_max), AF_INT("gpu.memory_used", mem_used),
                      AF_INT("gpu.memory_total", mem_total)));
    int rc = (c->n && !ok) ? -EIO : 0;
    if (!rc)
        af_span_add_event(cyc, "metrics.collected", AF_ATTRS(AF_INT("metrics.count", ok)));
    af_operation_end(cyc, rc, rc ? af_strerror(rc) : NULL, rc ? "no GPU could be sampled" : NULL);
    return rc;
}

int af_gpu_collector_collect_now(af_gpu_collector *c)
{
    pthread_mutex_lock(&c->cycle_mu);
    int rc = cycle_locked(c);
    pthread_mutex_unlock(&c->cycle_mu);
    return rc;
}

static void *thread_main(void *arg)
{
    af_gpu_collector *c = arg;
    pthread_mutex_lock(&c->run_mu);
    while (!c->stop_req) {
        pthread_mutex_unlock(&c->run_mu);
        af_gpu_collector_collect_now(c);
        pthread_mutex_lock(&c->run_mu);
        struct timespec ts =
            af__timespec_of_ns(af_monotonic_ns() + (uint64_t)c->interval_ms * 1000000u);
        while (!c->stop_req)
            if (pthread_cond_timedwait(&c->cv, &c->run_mu, &ts) == ETIMEDOUT)
                break;
    }
    pthread_mutex_unlock(&c->run_mu);
    return NULL;
}

int af_gpu_collector_start(af_gpu_collector *c)
{
    af_span sp = af_trace_metrics_collection(tracer_for(c, AF_TRACE_METRICS_COLLECTION_CYCLES),
                                             NULL, "start_collector", 0);
    af_span_set_attrs(sp, AF_ATTRS(AF_STR("collector.backend", af_gpu_backend_name(c->backend)),
                                   AF_INT("collector.interval_ms", c->interval_ms),
                                   AF_INT("metrics.gpu_count", c->n)));
    int rc = 0;
    pthread_mutex_lock(&c->run_mu);
    if (c->running) {
        rc = -EALREADY;
    } else {
        c->stop_req = false;
        rc = -pthread_create(&c->thread, NULL, thread_main, c);
        if (!rc) {
            c->running = true;
            pthread_setname_np(c->thread, "af-gpu-metrics");
        }
    }
    pthread_mutex_unlock(&c->run_mu);
    if (!rc)
        af_span_add_event(sp, "collector.started", NULL, 0);
    af_operation_end(sp, rc, rc ? af_strerror(rc) : NULL,
                     rc == -EALREADY ? "metrics collector is already running"
                                     : (rc ? "cannot start the collector thread" : NULL));
    return rc;
}

void af_gpu_collector_stop(af_gpu_collector *c)
{
    pthread_mutex_lock(&c->run_mu);
    if (!c->running) {
        pthread_mutex_unlock(&c->run_mu);
        return;
    }
    c->stop_req = true;
    pthread_cond_broadcast(&c->cv);
    pthread_t th = c->thread;
    pthread_mutex_unlock(&c->run_mu);
    af_span sp = af_trace_metrics_collection(tracer_for(c, AF_TRACE_METRICS_COLLECTION_CYCLES),
                                             NULL, "stop_collector", 0);
    pthread_join(th, NULL);
    pthread_mutex_lock(&c->run_mu);
    c->running = false;
    pthread_mutex_unlock(&c->run_mu);
    af_span_add_event(sp, "collector.stopped", NULL, 0);
    af_operation_end(sp, 0, NULL, NULL);
}

bool af_gpu_collector_running(af_gpu_collector *c)
{
    pthread_mutex_lock(&c->run_mu);
    bool r = c->running;
    pthread_mutex_unlock(&c->run_mu);
    return r;
}

static int add_cb(af_gpu_collector *c, af_gpu_sample_cb s, af_gpu_alert_cb a, void *user)
{
    if (!s && !a)
        return -EINVAL;
    pthread_mutex_lock(&c->cycle_mu);
    callback *n = realloc(c->cbs, (c->n_cbs + 1) * sizeof(*n));
    int h = -ENOMEM;
    if (n) {
        c->cbs = n;
        h = c->next_handle++;
        c->cbs[c->n_cbs++] = (callback){h, s, a, user};
    }
    pthread_mutex_unlock(&c->cycle_mu);
    return h;
}

int af_gpu_collector_add_sample_callback(af_gpu_collector *c, af_gpu_sample_cb fn, void *user)
{
    return add_cb(c, fn, NULL, user);
}

int af_gpu_collector_add_alert_callback(af_gpu_collector *c, af_gpu_alert_cb fn, void *user)
{
    return add_cb(c, NULL, fn, user);
}

int af_gpu_collector_remove_callback(af_gpu_collector *c, int handle)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&c->cycle_mu);
    for (size_t i = 0; i < c->n_cbs; i++) {
        if (c->cbs[i].handle == handle) {
            memmove(&c->cbs[i], &c->cbs[i + 1], (c->n_cbs - i - 1) * sizeof(callback));
            c->n_cbs--;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&c->cycle_mu);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Queries.                                                                                  */

static int find_gpu(af_gpu_collector *c, const char *id)
{
    for (uint32_t i = 0; id && i < c->n; i++) {
        char buf[32];
        snprintf(buf, sizeof(buf), "gpu-%u", i);
        if (strcmp(buf, id) == 0)
            return (int)i;
    }
    return -1;
}

size_t af_gpu_collector_latest(af_gpu_collector *c, af_gpu_sample *out, size_t cap)
{
    size_t k = 0;
    pthread_mutex_lock(&c->mu);
    for (uint32_t i = 0; i < c->n; i++) {
        if (!c->g[i].has_latest)
            continue;
        if (k < cap)
            out[k] = c->g[i].latest;
        k++;
    }
    pthread_mutex_unlock(&c->mu);
    return k;
}

int af_gpu_collector_latest_for(af_gpu_collector *c, const char *gpu_id, af_gpu_sample *out)
{
    int i = find_gpu(c, gpu_id);
    if (i < 0)
        return -ENOENT;
    pthread_mutex_lock(&c->mu);
    bool has = c->g[i].has_latest;
    if (has)
        *out = c->g[i].latest;
    pthread_mutex_unlock(&c->mu);
    return has ? 0 : -ENOENT;
}

size_t af_gpu_collector_history(af_gpu_collector *c, const char *gpu_id, uint64_t since_ns,
                                af_gpu_sample *out, size_t cap)
{
    int i = find_gpu(c, gpu_id);
    if (i < 0)
        return 0;
    size_t k = 0;
    pthread_mutex_lock(&c->mu);
    gstate *gs = &c->g[i];
    for (size_t j = 0; j < gs->len; j++) {
        const af_gpu_sample *m = &gs->ring[(gs->head + j) % c->hist_cap];
        if (m->timestamp_ns <= since_ns)
            continue;
        if (k < cap)
            out[k] = *m;
        k++;
    }
    pthread_mutex_unlock(&c->mu);
    return k;
}

size_t af_gpu_collector_processes(af_gpu_collector *c, const char *gpu_id, af_gpu_process *out,
                                  size_t cap)
{
    int i = find_gpu(c, gpu_id);
    if (i < 0)
        return 0;
    pthread_mutex_lock(&c->mu);
    size_t n = c->g[i].n_procs;
    memcpy(out, c->g[i].procs, (n < cap ? n : cap) * sizeof(*out));
    pthread_mutex_unlock(&c->mu);
    return n;
}

static af_gpu_level gpu_status_locked(const gstate *gs)
{
    af_gpu_level l = gs->level[COND_TEMP];
    if (gs->level[COND_MEM] > l)
        l = gs->level[COND_MEM];
    if (gs->level[COND_POWER] > l)
        l = gs->level[COND_POWER];
    return l;
}

void af_gpu_collector_overview(af_gpu_collector *c, af_gpu_overview *o)
{
    memset(o, 0, sizeof(*o));
    o->total_gpus = c->n;
    o->collection_interval_ms = c->interval_ms;
    o->timestamp_ns = af_now_ns();
    double util = 0;
    pthread_mutex_lock(&c->mu);
    for (uint32_t i = 0; i < c->n; i++) {
        const gstate *gs = &c->g[i];
        if (!gs->has_latest)
            continue;
        const af_gpu_sample *m = &gs->latest;
        util += m->utilization_gpu;
        o->active_gpus += m->utilization_gpu > 5.0;
        o->memory_total_mb += m->memory_total_mb;
        o->memory_used_mb += m->memory_used_mb;
        o->total_processes += m->process_count;
        o->healthy_gpus += gpu_status_locked(gs) == AF_GPU_HEALTHY;
    }
    pthread_mutex_unlock(&c->mu);
    o->avg_utilization = c->n ? util / c->n : 0;
    o->memory_available_mb = o->memory_total_mb - o->memory_used_mb;
    o->memory_utilization =
        o->memory_total_mb ? (double)o->memory_used_mb * 100.0 / (double)o->memory_total_mb : 0;
}

/* Calls fn on each sample of GPU i within the window, oldest first; returns how many. */
typedef void (*visit_fn)(const af_gpu_sample *m, void *acc);

static size_t visit(af_gpu_collector *c, int i, uint64_t window_ms, visit_fn fn, void *acc)
{
    uint64_t now = af_now_ns();
    uint64_t from = window_ms && now > window_ms * 1000000u ? now - window_ms * 1000000u : 0;
    const gstate *gs = &c->g[i];
    size_t n = 0;
    for (size_t j = 0; j < gs->len; j++) {
        const af_gpu_sample *m = &gs->ring[(gs->head + j) % c->hist_cap];
        if (m->timestamp_ns < from)
            continue;
        fn(m, acc);
        n++;
    }
    return n;
}

typedef struct eff_acc {
    af_gpu_efficiency *e;
    double util, mem, per_w;
    uint64_t first, last;
    uint32_t n;
} eff_acc;

static void eff_visit(const af_gpu_sample *m, void *p)
{
    eff_acc *a = p;
    a->util += m->utilization_gpu;
    a->mem += m->utilization_memory;
    if (m->power_draw > 0)
        a->per_w += m->utilization_gpu / m->power_draw;
    if (!a->n || m->temperature > a->e->max_temperature)
        a->e->max_temperature = m->temperature;
    if (!a->n || m->temperature < a->e->min_temperature)
        a->e->min_temperature = m->temperature;
    if (!a->n)
        a->first = m->timestamp_ns;
    a->last = m->timestamp_ns;
    a->n++;
}

int af_gpu_collector_efficiency(af_gpu_collector *c, const char *gpu_id, uint64_t window_ms,
                                af_gpu_efficiency *out)
{
    memset(out, 0, sizeof(*out));
    int i = find_gpu(c, gpu_id);
    if (i < 0)
        return -ENOENT;
    af__strlcpy(out->gpu_id, gpu_id, sizeof(out->gpu_id));
    eff_acc a = {.e = out};
    pthread_mutex_lock(&c->mu);
    visit(c, i, window_ms, eff_visit, &a);
    pthread_mutex_unlock(&c->mu);
    if (!a.n)
        return -ENOENT;
    out->avg_utilization = a.util / a.n;
    out->avg_memory_util = a.mem / a.n;
    out->idle_time_percent = 100.0 - out->avg_utilization;
    out->avg_power_efficiency = a.per_w / a.n;
    out->sample_count = a.n;
    out->duration_minutes = (double)(a.last - a.first) / 60e9;
    return 0;
}

typedef struct stats_acc {
    af_gpu_stats *s;
    double util, mem, temp, power, idle_s, energy_kwh;
    const af_gpu_sample *prev;
    af_gpu_sample prev_copy;
    uint32_t n;
} stats_acc;

static void stats_visit(const af_gpu_sample *m, void *p)
{
    stats_acc *a = p;
    af_gpu_stats *s = a->s;
    a->util += m->utilization_gpu;
    a->mem += (double)m->memory_used_mb;
    a->temp += m->temperature;
    a->power += m->power_draw;
    if (!a->n || m->utilization_gpu > s->peak_utilization)
        s->peak_utilization = m->utilization_gpu;
    if (m->memory_used_mb > s->peak_memory_usage)
        s->peak_memory_usage = m->memory_used_mb;
    if (!a->n || m->temperature > s->max_temperature)
        s->max_temperature = m->temperature;
    if (!a->n || m->power_draw > s->max_power_draw)
        s->max_power_draw = m->power_draw;
    if (a->prev) {
        double dt_s = (double)(m->timestamp_ns - a->prev->timestamp_ns) / 1e9;
        if (m->utilization_gpu < 5.0)
            a->idle_s += dt_s;
        a->energy_kwh += (m->power_draw + a->prev->power_draw) / 2.0 * (dt_s / 3600.0) / 1000.0;
        if (m->process_count != a->prev->process_count)
            s->process_switches++;
    } else {
        s->start_time_ns = m->timestamp_ns;
    }
    s->end_time_ns = m->timestamp_ns;
    a->prev_copy = *m;
    a->prev = &a->prev_copy;
    a->n++;
}

int af_gpu_collector_stats(af_gpu_collector *c, const char *gpu_id, uint64_t window_ms,
                           af_gpu_stats *out)
{
    memset(out, 0, sizeof(*out));
    int i = find_gpu(c, gpu_id);
    if (i < 0)
        return -ENOENT;
    af__strlcpy(out->gpu_id, gpu_id, sizeof(out->gpu_id));
    stats_acc a = {.s = out};
    pthread_mutex_lock(&c->mu);
    visit(c, i, window_ms, stats_visit, &a);
    pthread_mutex_unlock(&c->mu);
    if (!a.n)
        return -ENOENT;
    out->period_ns = window_ms ? window_ms * 1000000u : c->retention_ns;
    out->sample_count = a.n;
    out->average_utilization = a.util / a.n;
    out->average_memory_usage = a.mem / a.n;
    out->average_temperature = a.temp / a.n;
    out->average_power_draw = a.power / a.n;
    out->total_energy_consumed = a.energy_kwh;
    double span_s = (double)(out->end_time_ns - out->start_time_ns) / 1e9;
    out->uptime_hours = span_s / 3600.0;
    out->idle_time_percentage = span_s > 0 ? a.idle_s / span_s * 100.0 : 0;
    out->efficiency_score =
        out->average_power_draw > 0 ? out->average_utilization / out->average_power_draw : 0;
    return 0;
}

static void add_line(char (*arr)[96], uint32_t *n, const char *fmt, double v)
{
    if (*n >= AF_GPU_HEALTH_MAX_ISSUES)
        return;
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#endif
    snprintf(arr[*n], 96, fmt, v);
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
    (*n)++;
}

int af_gpu_collector_health(af_gpu_collector *c, const char *gpu_id, af_gpu_health *h)
{
    memset(h, 0, sizeof(*h));
    int i = find_gpu(c, gpu_id);
    if (i < 0)
        return -ENOENT;
    pthread_mutex_lock(&c->mu);
    const gstate *gs = &c->g[i];
    if (!gs->has_latest) {
        pthread_mutex_unlock(&c->mu);
        return -ENOENT;
    }
    const af_gpu_sample *m = &gs->latest;
    af__strlcpy(h->gpu_id, gpu_id, sizeof(h->gpu_id));
    h->timestamp_ns = m->timestamp_ns;
    h->temperature_status = gs->level[COND_TEMP];
    h->memory_status = gs->level[COND_MEM];
    h->power_status = gs->level[COND_POWER];
    h->status = gpu_status_locked(gs);
    double memp =
        m->memory_total_mb ? (double)m->memory_used_mb * 100.0 / (double)m->memory_total_mb : 0;
    double powp = m->power_limit > 0 ? m->power_draw * 100.0 / m->power_limit : 0;
    static const char *const texts[3][2][2] = {
        /* {issue, recommendation} for warning and critical */
        {{"Temperature elevated: %.1f\xc2\xb0"
          "C",
          "Monitor temperature trends"},
         {"Temperature critically high: %.1f\xc2\xb0"
          "C",
          "Check cooling system and reduce workload"}},
        {{"Memory usage high: %.1f%%", "Consider memory optimization"},
         {"Memory usage critically high: %.1f%%", "Reduce memory usage or scale workloads"}},
        {{"Power usage high: %.1f%%", "Monitor for performance bottlenecks"},
         {"Power usage critically high: %.1f%%", "Monitor for performance bottlenecks"}},
    };
    const double vals[3] = {m->temperature, memp, powp};
    const af_gpu_level lv[3] = {h->temperature_status, h->memory_status, h->power_status};
    for (int k = 0; k < 3; k++) {
        if (lv[k] == AF_GPU_HEALTHY)
            continue;
        int crit = lv[k] == AF_GPU_CRITICAL;
        add_line(h->issues, &h->n_issues, texts[k][crit][0], vals[k]);
        add_line(h->recommendations, &h->n_recommendations, texts[k][crit][1], 0);
    }
    if (gs->level[COND_UTIL_LOW]) {
        af__strlcpy(h->utilization_status, "underutilized", sizeof(h->utilization_status));
        add_line(h->issues, &h->n_issues, "Low utilization: %.1f%%", m->utilization_gpu);
        add_line(h->recommendations, &h->n_recommendations,
                 "Consider consolidating workloads or scaling down", 0);
    } else if (gs->level[COND_UTIL_HIGH]) {
        af__strlcpy(h->utilization_status, "high", sizeof(h->utilization_status));
        add_line(h->issues, &h->n_issues, "High utilization: %.1f%%", m->utilization_gpu);
        add_line(h->recommendations, &h->n_recommendations, "Monitor for performance bottlenecks",
                 0);
    } else {
        af__strlcpy(h->utilization_status, "optimal", sizeof(h->utilization_status));
    }
    uint64_t since = m->timestamp_ns > 300000000000ULL ? m->timestamp_ns - 300000000000ULL : 0;
    for (size_t j = c->a_len; j-- > 0 && h->n_alerts < AF_GPU_HEALTH_MAX_ISSUES;) {
        const af_gpu_alert *a = &c->alerts[(c->a_head + j) % c->a_cap];
        if (a->timestamp_ns < since)
            break;
        if (strcmp(a->gpu_id, gpu_id) == 0)
            h->alerts[h->n_alerts++] = *a;
    }
    pthread_mutex_unlock(&c->mu);
    return 0;
}
