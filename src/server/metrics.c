/*
 * Prometheus exposition: text format 0.0.4 and OpenMetrics 1.0 (with exemplars).
 *
 * Rules that the original broke and this file keeps: every label value is quoted and escaped,
 * labels are written in a fixed order, HELP and TYPE appear once per family before its
 * samples, families and series come out in a stable order, histograms have cumulative
 * buckets with +Inf, _sum and _count, and numbers keep full precision. Counters are named
 * <base>_total in both formats (OpenMetrics' TYPE line names the family without _total).
 *
 * Values come from the components at scrape time, except what only the server sees (request
 * latencies, inference outcomes per model, scheduling passes, workload transitions), which
 * the recorders below accumulate under met_mu.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/server_int.h"
#include "server/trace_store_int.h"
#include "util/str.h"

const double af__latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,  0.5,    1,     2.5,  5,     10,   30};
const size_t af__latency_nbounds = sizeof(af__latency_bounds) / sizeof(af__latency_bounds[0]);
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
static const double queue_bounds[] = {0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600};
static const double exec_bounds[] = {1, 5, 10, 30, 60, 300, 900, 1800, 3600, 14400, 86400};

void af__hist_init(af__hist *h, const double *bounds, size_t n_bounds)
{
    memset(h, 0, sizeof(*h));
    h->bounds = bounds;
    h->n_bounds = n_bounds > AF__HIST_MAX_BOUNDS ? AF__HIST_MAX_BOUNDS : n_bounds;
}

void af__hist_observe(af__hist *h, double v, const af_span_context *sc)
{
    if (!isfinite(v))
        return;
    size_t i = 0;
    while (i < h->n_bounds && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
    if (sc && af_span_context_is_valid(sc) && af_span_context_is_sampled(sc)) {
        af__exemplar *e = &h->ex[i];
        e->set = true;
        af_trace_id_to_hex(sc->trace_id, e->trace_id);
        af_span_id_to_hex(sc->span_id, e->span_id);
        e->value = v;
        e->time_ns = af_now_ns();
    }
}

void af__metrics_init(af_server *s)
{
    s->http_hist = calloc(af__nroutes + 1, sizeof(af__hist));
    s->http_errors = calloc(af__nroutes + 1, sizeof(uint64_t));
    if (!s->http_hist || !s->http_errors) {
        free(s->http_hist);
        free(s->http_errors);
        s->http_hist = NULL;
        s->http_errors = NULL;
        return;
    }
    for (size_t i = 0; i <= af__nroutes; i++)
        af__hist_init(&s->http_hist[i], af__latency_bounds, af__latency_nbounds);
    for (int i = 0; i < 4; i++)
        af__hist_init(&s->sched_hist[i], af__latency_bounds, af__latency_nbounds);
    af__hist_init(&s->exec_hist, exec_bounds, sizeof(exec_bounds) / sizeof(exec_bounds[0]));
}

void af__metrics_free(af_server *s)
{
    free(s->http_hist);
    free(s->http_errors);
    s->http_hist = NULL;
    s->http_errors = NULL;
}

void af__metrics_http(af_server *s, int route, int status, double seconds,
                      const af_span_context *sc)
{
    size_t i = route >= 0 && (size_t)route < af__nroutes ? (size_t)route : af__nroutes;
    pthread_mutex_lock(&s->met_mu);
    af__hist_observe(&s->http_hist[i], seconds, sc);
    if (status >= 500)
        s->http_errors[i]++;
    s->requests_total++;
    pthread_mutex_unlock(&s->met_mu);
}

/* Distinct label values a family shows: server.max_label_values, within what a table holds
 * (one row of which is kept for "other"). */
static size_t label_cap(const af_server *s, size_t table)
{
    size_t cap = table - 1;
    return s->o.max_label_values && s->o.max_label_values < cap ? s->o.max_label_values : cap;
}

static af__model_metrics *model_find(af_server *s, const char *id)
{
    for (size_t i = 0; i < s->n_models; i++)
        if (strcmp(s->models[i].id, id) == 0)
            return &s->models[i];
    return NULL;
}

/* Caller holds met_mu. Past the label cap, models share one "other" row: model ids come from
 * requests, so they must not be able to crowd out or multiply the per-model series. */
static af__model_metrics *model_slot(af_server *s, const char *id)
{
    af__model_metrics *m = model_find(s, id);
    if (m)
        return m;
    if (s->n_models >= label_cap(s, AF__MAX_MODELS)) {
        s->models_folded++;
        if ((m = model_find(s, "other")))
            return m;
        id = "other";
    }
    m = &s->models[s->n_models++];
    memset(m, 0, sizeof(*m));
    af__strlcpy(m->id, id, sizeof(m->id));
    af__hist_init(&m->latency, af__latency_bounds, af__latency_nbounds);
    af__hist_init(&m->batch, batch_bounds, sizeof(batch_bounds) / sizeof(batch_bounds[0]));
    return m;
}

void af__metrics_inference(af_server *s, const char *model_id, int rc,
                           const af_inference_response *r, const af_span_context *sc)
{
    pthread_mutex_lock(&s->met_mu);
    af__model_metrics *m = model_slot(s, model_id ? model_id : "");
    if (rc != 0) {
        m->errors++;
    } else {
        m->ok++;
        if (r->cache_hit)
            m->cache_hits++;
        else
            m->cache_misses++;
        m->tokens += (uint64_t)(r->prompt_tokens + r->completion_tokens);
        af__hist_observe(&m->latency, (double)r->latency_ns / 1e9, sc);
        if (!r->cache_hit)
            af__hist_observe(&m->batch, (double)r->batch_size, sc);
    }
    pthread_mutex_unlock(&s->met_mu);
}

/* Caller holds met_mu; keeps the table sorted by priority. */
static af__prio_metrics *prio_slot(af_server *s, int32_t p)
{
    size_t i = 0;
    while (i < s->n_prios && s->prios[i].priority < p)
        i++;
    if (i < s->n_prios && s->prios[i].priority == p)
        return &s->prios[i];
    if (s->n_prios == AF__MAX_PRIOS)
        return NULL;
    memmove(&s->prios[i + 1], &s->prios[i], (s->n_prios - i) * sizeof(s->prios[0]));
    s->n_prios++;
    af__prio_metrics *m = &s->prios[i];
    memset(m, 0, sizeof(*m));
    m->priority = p;
    af__hist_init(&m->queue_time, queue_bounds, sizeof(queue_bounds) / sizeof(queue_bounds[0]));
    return m;
}

void af__metrics_workload(af_server *s, int32_t priority, af_workload_status to,
                          const af_workload_info *w, const af_span_context *sc)
{
    pthread_mutex_lock(&s->met_mu);
    af__prio_metrics *m = prio_slot(s, priority);
    switch (to) {
    case AF_WORKLOAD_PENDING:
        if (m)
            m->submitted++;
        break;
    case AF_WORKLOAD_RUNNING:
        if (m && w)
            af__hist_observe(&m->queue_time, (double)w->queue_wait_ms / 1000.0, sc);
        break;
    case AF_WORKLOAD_COMPLETED:
        if (m)
            m->completed++;
        if (w && w->started_ns && w->completed_ns > w->started_ns)
            af__hist_observe(&s->exec_hist, (double)(w->completed_ns - w->started_ns) / 1e9, sc);
        break;
    case AF_WORKLOAD_CANCELLED:
        if (m)
            m->cancelled++;
        break;
    case AF_WORKLOAD_FAILED:
        if (m)
            m->failed++;
        break;
    }
    pthread_mutex_unlock(&s->met_mu);
}

void af__metrics_schedule(af_server *s, af_gpu_strategy strategy, double seconds, size_t placed,
                          size_t still_pending, const af_span_context *sc)
{
    unsigned k = (unsigned)strategy < 4 ? (unsigned)strategy : 0;
    pthread_mutex_lock(&s->met_mu);
    af__hist_observe(&s->sched_hist[k], seconds, sc);
    s->sched_decisions[k][0] += placed;
    s->sched_decisions[k][1] += still_pending;
    pthread_mutex_unlock(&s->met_mu);
}

/* ---------------------------------------------------------------------------------------- */
/* Writer.                                                                                   */

typedef struct expo {
    af_buf *b;
    bool om;
} expo;

#define P "agentaflow_"

static void put_value(af_buf *b, double v)
{
    if (isnan(v))
        af__buf_puts(b, "NaN");
    else if (isinf(v))
        af__buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9e15)
        af__buf_printf(b, "%.0f", v);
    else {
        /* Shortest of 15 or 17 significant digits that reads back exactly. */
        char t[40];
        snprintf(t, sizeof(t), "%.15g", v);
        if (strtod(t, NULL) != v)
            snprintf(t, sizeof(t), "%.17g", v);
        af__buf_puts(b, t);
    }
}

static void put_label_value(af_buf *b, const char *v)
{
    af__buf_putc(b, '"');
    for (; *v; v++) {
        if (*v == '\\')
            af__buf_puts(b, "\\\\");
        else if (*v == '"')
            af__buf_puts(b, "\\\"");
        else if (*v == '\n')
            af__buf_puts(b, "\\n");
        else
            af__buf_putc(b, *v);
    }
    af__buf_putc(b, '"');
}

static void family(expo *e, const char *base, const char *type, const char *help)
{
    bool counter = strcmp(type, "counter") == 0;
    const char *sfx = counter && !e->om ? "_total" : "";
    af__buf_printf(e->b, "# HELP " P "%s%s ", base, sfx);
    /* HELP text escaping: backslash and newline. */
    for (const char *h = help; *h; h++) {
        if (*h == '\\')
            af__buf_puts(e->b, "\\\\");
        else if (*h == '\n')
            af__buf_puts(e->b, "\\n");
        else
            af__buf_putc(e->b, *h);
    }
    af__buf_printf(e->b, "\n# TYPE " P "%s%s %s\n", base, sfx, type);
}

/* labels: NULL-terminated name/value pairs. */
static void put_labels(af_buf *b, const char *const *labels, const char *le)
{
    if ((!labels || !labels[0]) && !le)
        return;
    af__buf_putc(b, '{');
    bool first = true;
    for (size_t i = 0; labels && labels[i]; i += 2) {
        if (!first)
            af__buf_putc(b, ',');
        first = false;
        af__buf_printf(b, "%s=", labels[i]);
        put_label_value(b, labels[i + 1] ? labels[i + 1] : "");
    }
    if (le) {
        if (!first)
            af__buf_putc(b, ',');
        af__buf_printf(b, "le=\"%s\"", le);
    }
    af__buf_putc(b, '}');
}

static void sample(expo *e, const char *base, const char *suffix, const char *const *labels,
                   double v)
{
    af__buf_printf(e->b, P "%s%s", base, suffix);
    put_labels(e->b, labels, NULL);
    af__buf_putc(e->b, ' ');
    put_value(e->b, v);
    af__buf_putc(e->b, '\n');
}

static void gauge(expo *e, const char *base, const char *const *labels, double v)
{
    sample(e, base, "", labels, v);
}

static void counter(expo *e, const char *base, const char *const *labels, double v)
{
    sample(e, base, "_total", labels, v);
}

static void histogram(expo *e, const char *base, const char *const *labels, const af__hist *h)
{
    uint64_t cum = 0;
    char le[32];
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cum += h->counts[i];
        if (i < h->n_bounds)
            snprintf(le, sizeof(le), "%.15g", h->bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        af__buf_printf(e->b, P "%s_bucket", base);
        put_labels(e->b, labels, le);
        af__buf_printf(e->b, " %llu", (unsigned long long)cum);
        if (e->om && h->ex[i].set) {
            af__buf_printf(e->b, " # {trace_id=\"%s\",span_id=\"%s\"} ", h->ex[i].trace_id,
                           h->ex[i].span_id);
            put_value(e->b, h->ex[i].value);
            af__buf_printf(e->b, " %llu.%03llu",
                           (unsigned long long)(h->ex[i].time_ns / 1000000000ull),
                           (unsigned long long)(h->ex[i].time_ns / 1000000ull % 1000));
        }
        af__buf_putc(e->b, '\n');
    }
    sample(e, base, "_sum", labels, h->sum);
    sample(e, base, "_count", labels, (double)h->count);
}

/* ---------------------------------------------------------------------------------------- */
/* Families.                                                                                 */

/* A provider holds at most 16 processors (AF_MAX_PROCESSORS in the trace core). */
#define AF_MAX_EXPORT_PROCESSORS 16

#define LABELS(...) ((const char *const[]){__VA_ARGS__, NULL})

typedef struct gpu_view {
    af_gpu_sample *samples;
    size_t n;
    af_gpu_health *health;
} gpu_view;

typedef double (*gpu_getter)(const af_gpu_sample *g);

static double get_utilization(const af_gpu_sample *g)
{
    return g->utilization_gpu;
}
static double get_mem_utilization(const af_gpu_sample *g)
{
    return g->utilization_memory;
}
static double get_mem_used(const af_gpu_sample *g)
{
    return (double)g->memory_used_mb * 1048576.0;
}
static double get_mem_total(const af_gpu_sample *g)
{
    return (double)g->memory_total_mb * 1048576.0;
}
static double get_temperature(const af_gpu_sample *g)
{
    return g->temperature;
}
static double get_power_draw(const af_gpu_sample *g)
{
    return g->power_draw;
}
static double get_power_limit(const af_gpu_sample *g)
{
    return g->power_limit;
}
static double get_fan_speed(const af_gpu_sample *g)
{
    return g->fan_speed;
}
static double get_clock_graphics(const af_gpu_sample *g)
{
    return g->clock_graphics;
}
static double get_clock_memory(const af_gpu_sample *g)
{
    return g->clock_memory;
}
static double get_processes(const af_gpu_sample *g)
{
    return g->process_count;
}
static double get_efficiency(const af_gpu_sample *g)
{
    return g->power_draw > 0 ? g->utilization_gpu / g->power_draw : 0;
}
static double get_idle(const af_gpu_sample *g)
{
    return 100.0 - g->utilization_gpu;
}

static void render_gpus(af_server *s, expo *e, const char *node)
{
    if (!s->o.collector)
        return;
    enum { CAP = 256 };
    af_gpu_sample *g = malloc(sizeof(*g) * CAP);
    if (!g) {
        e->b->failed = true;
        return;
    }
    size_t n = af_gpu_collector_latest(s->o.collector, g, CAP);
    if (n > CAP)
        n = CAP;
    static const struct {
        const char *name, *help;
        gpu_getter get;
    } fams[] = {
        {"gpu_utilization_percent", "GPU utilization (percent)", get_utilization},
        {"gpu_memory_utilization_percent", "GPU memory controller utilization (percent)",
         get_mem_utilization},
        {"gpu_memory_used_bytes", "GPU memory in use (bytes)", get_mem_used},
        {"gpu_memory_total_bytes", "GPU memory size (bytes)", get_mem_total},
        {"gpu_temperature_celsius", "GPU temperature (degrees Celsius)", get_temperature},
        {"gpu_power_draw_watts", "GPU power draw (watts)", get_power_draw},
        {"gpu_power_usage_watts", "GPU power draw (watts); alias of gpu_power_draw_watts",
         get_power_draw},
        {"gpu_power_limit_watts", "GPU power limit (watts)", get_power_limit},
        {"gpu_fan_speed_percent", "GPU fan speed (percent)", get_fan_speed},
        {"gpu_clock_graphics_mhz", "GPU graphics clock (MHz)", get_clock_graphics},
        {"gpu_clock_memory_mhz", "GPU memory clock (MHz)", get_clock_memory},
        {"gpu_processes", "Processes running on the GPU (the original gpu_process_count)",
         get_processes},
        {"gpu_efficiency_score", "GPU utilization percent per watt drawn (not bounded by 1)",
         get_efficiency},
        {"gpu_idle_time_percent", "100 minus GPU utilization (percent)", get_idle},
    };
    for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
        family(e, fams[f].name, "gauge", fams[f].help);
        for (size_t i = 0; i < n; i++)
            gauge(e, fams[f].name,
                  LABELS("gpu_id", g[i].gpu_id, "gpu_name", g[i].name, "node", node),
                  fams[f].get(&g[i]));
    }
    family(e, "gpu_health_status", "gauge", "GPU health: 2 healthy, 1 warning, 0 critical");
    for (size_t i = 0; i < n; i++) {
        af_gpu_health h;
        if (af_gpu_collector_health(s->o.collector, g[i].gpu_id, &h) != 0)
            continue;
        double v = h.status == AF_GPU_HEALTHY ? 2 : h.status == AF_GPU_WARNING ? 1 : 0;
        gauge(e, "gpu_health_status",
              LABELS("gpu_id", g[i].gpu_id, "gpu_name", g[i].name, "node", node, "status",
                     af_gpu_level_name(h.status)),
              v);
    }
    double avg = 0;
    for (size_t i = 0; i < n; i++)
        avg += g[i].utilization_gpu;
    family(e, "cluster_utilization_percent", "gauge", "Mean GPU utilization across the cluster");
    gauge(e, "cluster_utilization_percent", NULL, n ? avg / (double)n : 0);
    free(g);
}

static int cmp_priority(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Whether w is in status st and, when gpu is set, assigned to that GPU. */
static bool workload_matches(const af_workload_info *w, af_workload_status st, const char *gpu)
{
    return w->status == st && (!gpu || strcmp(w->assigned_gpu, gpu) == 0);
}

/* The distinct priorities of the matching workloads, ascending; the first cap distinct
 * ones seen are kept. */
static size_t distinct_priorities(const af_workload_info *w, size_t nw, af_workload_status st,
                                  const char *gpu, int32_t *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < nw; i++) {
        if (!workload_matches(&w[i], st, gpu))
            continue;
        bool dup = false;
        for (size_t k = 0; k < n && !dup; k++)
            dup = out[k] == w[i].priority;
        if (!dup && n < cap)
            out[n++] = w[i].priority;
    }
    qsort(out, n, sizeof(*out), cmp_priority);
    return n;
}

static size_t count_priority(const af_workload_info *w, size_t nw, af_workload_status st,
                             const char *gpu, int32_t priority)
{
    size_t c = 0;
    for (size_t i = 0; i < nw; i++)
        c += workload_matches(&w[i], st, gpu) && w[i].priority == priority;
    return c;
}

/* gpus_total / gpus_available by class, in class order, and the allocation efficiency. */
static void render_scheduler_gpus(af_server *s, expo *e, const char *node, const af_gpu_status *g,
                                  size_t ng)
{
    family(e, "gpus_registered", "gauge",
           "GPUs registered with the scheduler (the original gpus_total)");
    uint32_t tot[AF_GPU_CLASS_COUNT] = {0}, avail[AF_GPU_CLASS_COUNT] = {0};
    uint64_t mem = 0, reserved = 0;
    for (size_t i = 0; i < ng; i++) {
        af_gpu_class c = af_gpu_class_from_name(g[i].name);
        tot[c]++;
        avail[c] += g[i].available;
        mem += g[i].memory_total_mb;
        reserved += g[i].memory_reserved_mb;
    }
    for (int c = 0; c < AF_GPU_CLASS_COUNT; c++)
        if (tot[c])
            gauge(e, "gpus_registered", LABELS("node", node, "gpu_type", af_gpu_class_name(c)),
                  tot[c]);
    family(e, "gpus_available", "gauge", "GPUs available for new placements");
    for (int c = 0; c < AF_GPU_CLASS_COUNT; c++)
        if (tot[c])
            gauge(e, "gpus_available", LABELS("node", node, "gpu_type", af_gpu_class_name(c)),
                  avail[c]);

    const char *strategy = af_gpu_strategy_name(af_gpu_scheduler_strategy(s->o.scheduler));
    family(e, "gpu_allocation_efficiency", "gauge",
           "Share of GPU memory reserved by running workloads (0-1)");
    gauge(e, "gpu_allocation_efficiency", LABELS("strategy", strategy),
          mem ? (double)reserved / (double)mem : 0);
}

/* Pending per priority and running per (GPU, priority), from the live list. */
static void render_scheduler_workloads(expo *e, const af_gpu_status *g, size_t ng,
                                       const af_workload_info *w, size_t nw)
{
    family(e, "workloads_pending", "gauge", "Workloads waiting in the queue");
    int32_t seen[64];
    size_t nseen = distinct_priorities(w, nw, AF_WORKLOAD_PENDING, NULL, seen, 64);
    for (size_t k = 0; k < nseen; k++) {
        char p[16];
        snprintf(p, sizeof(p), "%d", seen[k]);
        gauge(e, "workloads_pending", LABELS("priority", p),
              (double)count_priority(w, nw, AF_WORKLOAD_PENDING, NULL, seen[k]));
    }
    family(e, "workloads_running", "gauge", "Workloads running, per GPU and priority");
    for (size_t gi = 0; gi < ng; gi++) {
        int32_t ps[32];
        size_t np = distinct_priorities(w, nw, AF_WORKLOAD_RUNNING, g[gi].id, ps, 32);
        for (size_t k = 0; k < np; k++) {
            char p[16];
            snprintf(p, sizeof(p), "%d", ps[k]);
            gauge(e, "workloads_running", LABELS("gpu_id", g[gi].id, "priority", p),
                  (double)count_priority(w, nw, AF_WORKLOAD_RUNNING, g[gi].id, ps[k]));
        }
    }
}

/* The daemon's own counters and histograms; the caller holds met_mu. */
static void render_scheduler_counters(af_server *s, expo *e)
{
    family(e, "workloads", "counter", "Workload transitions seen by the daemon, by status");
    static const char *st[] = {"submitted", "completed", "cancelled", "failed"};
    for (int k = 0; k < 4; k++)
        for (size_t i = 0; i < s->n_prios; i++) {
            const af__prio_metrics *m = &s->prios[i];
            uint64_t v = k == 0   ? m->submitted
                         : k == 1 ? m->completed
                         : k == 2 ? m->cancelled
                                  : m->failed;
            char p[16];
            snprintf(p, sizeof(p), "%d", m->priority);
            counter(e, "workloads", LABELS("status", st[k], "priority", p), (double)v);
        }
    family(e, "workloads_completed", "counter", "Workloads completed");
    for (size_t i = 0; i < s->n_prios; i++) {
        char p[16];
        snprintf(p, sizeof(p), "%d", s->prios[i].priority);
        counter(e, "workloads_completed", LABELS("priority", p), (double)s->prios[i].completed);
    }
    family(e, "workload_queue_time_seconds", "histogram",
           "Time from submission to placement on a GPU");
    for (size_t i = 0; i < s->n_prios; i++) {
        char p[16];
        snprintf(p, sizeof(p), "%d", s->prios[i].priority);
        histogram(e, "workload_queue_time_seconds", LABELS("priority", p), &s->prios[i].queue_time);
    }
    family(e, "workload_execution_time_seconds", "histogram", "Time from placement to completion");
    histogram(e, "workload_execution_time_seconds", NULL, &s->exec_hist);
    family(e, "scheduling_duration_seconds", "histogram", "Duration of one scheduling pass");
    for (int k = 0; k < 4; k++)
        if (s->sched_hist[k].count)
            histogram(e, "scheduling_duration_seconds",
                      LABELS("strategy", af_gpu_strategy_name((af_gpu_strategy)k)),
                      &s->sched_hist[k]);
    family(e, "scheduling_decisions", "counter",
           "Scheduling outcomes: placed workloads, and workloads left pending after a pass");
    for (int k = 0; k < 4; k++)
        if (s->sched_hist[k].count) {
            const char *sn = af_gpu_strategy_name((af_gpu_strategy)k);
            counter(e, "scheduling_decisions", LABELS("strategy", sn, "outcome", "placed"),
                    (double)s->sched_decisions[k][0]);
            counter(e, "scheduling_decisions", LABELS("strategy", sn, "outcome", "pending"),
                    (double)s->sched_decisions[k][1]);
        }
}

static void render_scheduler(af_server *s, expo *e, const char *node)
{
    if (!s->o.scheduler)
        return;
    /* Sized by what is registered now (a fleet is far past any fixed cap); anything added
     * between the count and the copy shows in the next scrape. */
    size_t gcap = af_gpu_scheduler_list_gpus(s->o.scheduler, NULL, 0) + 1;
    size_t wcap = af_gpu_scheduler_list_workloads(s->o.scheduler, NULL, 0) + 1;
    af_gpu_status *g = malloc(sizeof(*g) * gcap);
    af_workload_info *w = malloc(sizeof(*w) * wcap);
    if (!g || !w) {
        free(g);
        free(w);
        e->b->failed = true;
        return;
    }
    size_t ng = af_gpu_scheduler_list_gpus(s->o.scheduler, g, gcap);
    size_t nw = af_gpu_scheduler_list_workloads(s->o.scheduler, w, wcap);
    ng = ng > gcap ? gcap : ng;
    nw = nw > wcap ? wcap : nw;

    render_scheduler_gpus(s, e, node, g, ng);
    render_scheduler_workloads(e, g, ng, w, nw);
    free(g);
    free(w);

    pthread_mutex_lock(&s->met_mu);
    render_scheduler_counters(s, e);
    pthread_mutex_unlock(&s->met_mu);
}

static void render_serving(af_server *s, expo *e)
{
    pthread_mutex_lock(&s->met_mu);
    family(e, "inference_requests", "counter", "Inference requests served by the daemon");
    for (size_t i = 0; i < s->n_models; i++) {
        counter(e, "inference_requests", LABELS("model_id", s->models[i].id, "status", "success"),
                (double)s->models[i].ok);
        counter(e, "inference_requests", LABELS("model_id", s->models[i].id, "status", "error"),
                (double)s->models[i].errors);
    }
    family(e, "inference_latency_seconds", "histogram", "Inference latency as the caller saw it");
    for (size_t i = 0; i < s->n_models; i++)
        histogram(e, "inference_latency_seconds", LABELS("model_id", s->models[i].id),
                  &s->models[i].latency);
    family(e, "inference_batch_size", "histogram", "Size of the batch a request was served in");
    for (size_t i = 0; i < s->n_models; i++)
        histogram(e, "inference_batch_size", LABELS("model_id", s->models[i].id),
                  &s->models[i].batch);
    family(e, "cache_hits", "counter", "Inference responses served from the cache");
    for (size_t i = 0; i < s->n_models; i++)
        counter(e, "cache_hits", LABELS("model_id", s->models[i].id),
                (double)s->models[i].cache_hits);
    family(e, "cache_misses", "counter", "Inference requests that reached a backend");
    for (size_t i = 0; i < s->n_models; i++)
        counter(e, "cache_misses", LABELS("model_id", s->models[i].id),
                (double)s->models[i].cache_misses);
    family(e, "cache_hit_rate", "gauge", "Cache hits over successful requests (0-1)");
    for (size_t i = 0; i < s->n_models; i++) {
        const af__model_metrics *m = &s->models[i];
        gauge(e, "cache_hit_rate", LABELS("model_id", m->id),
              m->ok ? (double)m->cache_hits / (double)m->ok : 0);
    }
    family(e, "tokens_processed", "counter", "Prompt plus completion tokens of served requests");
    for (size_t i = 0; i < s->n_models; i++)
        counter(e, "tokens_processed",
                LABELS("model_id", s->models[i].id, "operation", "inference"),
                (double)s->models[i].tokens);
    pthread_mutex_unlock(&s->met_mu);
    if (s->o.serving) {
        af_serving_stats st;
        af_serving_stats_get(s->o.serving, &st);
        family(e, "serving_queue_depth", "gauge", "Inference requests queued for a batcher");
        gauge(e, "serving_queue_depth", NULL, st.pending_requests);
        family(e, "serving_overloaded", "counter", "Inference requests refused: queue full");
        counter(e, "serving_overloaded", NULL, (double)st.overloaded);
        family(e, "cache_entries", "gauge", "Entries in the response cache");
        gauge(e, "cache_entries", NULL, (double)st.cache_entries);
    }
}

/* One counter family from a cost summary's groups, with at most cap distinct label values:
 * groups past the cap (and one already named AF_COST_OTHER by the tracker's own cap) are
 * summed into one "other" sample. hours: the GPU time in seconds instead of the cost. */
static void cost_groups(expo *e, const char *base, const char *label, const af_cost_group *g,
                        size_t n, size_t cap, const char *cur, bool hours)
{
    double other = 0;
    bool have_other = false;
    for (size_t i = 0; i < n; i++) {
        double v = hours ? g[i].gpu_hours * 3600.0 : g[i].cost;
        if (i >= cap || strcmp(g[i].name, AF_COST_OTHER) == 0) {
            other += v;
            have_other = true;
        } else if (cur) {
            counter(e, base, LABELS(label, g[i].name, "currency", cur), v);
        } else {
            counter(e, base, LABELS(label, g[i].name), v);
        }
    }
    if (have_other && cur)
        counter(e, base, LABELS(label, AF_COST_OTHER, "currency", cur), other);
    else if (have_other)
        counter(e, base, LABELS(label, AF_COST_OTHER), other);
}

static void render_costs(af_server *s, expo *e)
{
    if (!s->o.costs)
        return;
    af_cost_summary cs;
    if (af_cost_summary_get(s->o.costs, NULL, s->started_wall_ns, 0, &cs) != 0)
        return;
    const char *cur = cs.currency[0] ? cs.currency : "USD";
    size_t cap = s->o.max_label_values ? s->o.max_label_values : SIZE_MAX;
    family(e, "cost_dollars", "counter", "Cost recorded since the daemon started, by operation");
    cost_groups(e, "cost_dollars", "operation", cs.by_operation, cs.n_by_operation, cap, cur,
                false);
    family(e, "cost_by_model_dollars", "counter",
           "Cost recorded since the daemon started, by model");
    cost_groups(e, "cost_by_model_dollars", "model_id", cs.by_model, cs.n_by_model, cap, cur,
                false);
    family(e, "gpu_usage_seconds", "counter",
           "GPU time recorded since start, by operation (the original gpu_hours_consumed, in "
           "seconds)");
    cost_groups(e, "gpu_usage_seconds", "workload_type", cs.by_operation, cs.n_by_operation, cap,
                NULL, true);
    af_cost_summary_free(&cs);
    af_cost_forecast f;
    if (af_cost_forecast_24h(s->o.costs, 0, &f) == 0) {
        family(e, "cost_per_hour_dollars", "gauge", "Fitted current cost rate per hour");
        gauge(e, "cost_per_hour_dollars", LABELS("resource_type", "all", "currency", cur),
              f.current_rate_per_hour);
        family(e, "estimated_monthly_cost_dollars", "gauge", "Current hourly rate times 720 hours");
        gauge(e, "estimated_monthly_cost_dollars", LABELS("resource_type", "all"),
              f.current_rate_per_hour > 0 ? f.current_rate_per_hour * 720.0 : 0);
        family(e, "predicted_cost_24h_dollars", "gauge", "Forecast cost of the next 24 hours");
        gauge(e, "predicted_cost_24h_dollars", NULL, f.predicted_cost_24h);
    }
}

static void render_alerts(af_server *s, expo *e)
{
    if (!s->o.collector)
        return;
    enum { CAP = 1000 };
    af_gpu_alert *a = malloc(sizeof(*a) * CAP);
    if (!a) {
        e->b->failed = true;
        return;
    }
    size_t n = af_gpu_collector_alerts(s->o.collector, NULL, 0, a, CAP);
    n = n > CAP ? CAP : n;
    static const char *types[] = {"temperature", "memory", "power", "utilization", "process"};
    family(e, "active_alerts", "gauge", "Unacknowledged alerts of the last hour");
    uint64_t since = af_now_ns() - 3600ull * 1000000000ull;
    for (int sev = 0; sev < 3; sev++)
        for (int t = 0; t < 5; t++) {
            size_t c = 0, all = 0;
            for (size_t i = 0; i < n; i++) {
                if ((int)a[i].severity != sev || strcmp(a[i].type, types[t]) != 0)
                    continue;
                all++;
                c += !a[i].acknowledged && a[i].timestamp_ns > since;
            }
            if (all)
                gauge(e, "active_alerts",
                      LABELS("severity", af_gpu_severity_name((af_gpu_level)sev), "type", types[t]),
                      (double)c);
        }
    free(a);
}

static void render_system(af_server *s, expo *e)
{
    family(e, "system_uptime_seconds", "gauge", "Seconds since the daemon started");
    gauge(e, "system_uptime_seconds", NULL, (double)(af_monotonic_ns() - s->started_mono_ns) / 1e9);
    family(e, "component_health_status", "gauge",
           "Component health: 2 healthy, 1 degraded, 0 down");
    gauge(e, "component_health_status", LABELS("component", "dashboard"), 2);
    if (s->o.collector)
        gauge(e, "component_health_status", LABELS("component", "metrics_collector"),
              af_gpu_collector_running(s->o.collector) ? 2 : 0);
    gauge(e, "component_health_status", LABELS("component", "prometheus"), 2);
    af_tracing_health th;
    af_tracing_health_get(s->o.tracing, &th);
    gauge(e, "component_health_status", LABELS("component", "tracing"),
          th.status == AF_HEALTH_HEALTHY    ? 2
          : th.status == AF_HEALTH_DEGRADED ? 1
                                            : 0);

    family(e, "websocket_clients", "gauge", "WebSocket clients connected");
    gauge(e, "websocket_clients", NULL, atomic_load(&s->n_clients));
    family(e, "websocket_messages_sent", "counter", "WebSocket messages written to clients");
    counter(e, "websocket_messages_sent", NULL, (double)atomic_load(&s->ws_sent));
    family(e, "websocket_messages_dropped", "counter",
           "WebSocket updates dropped because a client's queue was full");
    counter(e, "websocket_messages_dropped", NULL, (double)atomic_load(&s->ws_dropped));
    family(e, "websocket_rejected", "counter", "WebSocket clients refused by the client cap");
    counter(e, "websocket_rejected", NULL, (double)atomic_load(&s->ws_rejected));

    pthread_mutex_lock(&s->met_mu);
    family(e, "http_request_duration_seconds", "histogram", "HTTP API latency per route");
    for (size_t i = 0; i <= af__nroutes; i++) {
        if (!s->http_hist[i].count)
            continue;
        const char *route = i < af__nroutes ? af__routes[i].pattern : "unmatched";
        const char *method =
            i < af__nroutes ? (af__routes[i].methods & AF__M_POST ? "POST" : "GET") : "any";
        histogram(e, "http_request_duration_seconds", LABELS("route", route, "method", method),
                  &s->http_hist[i]);
    }
    family(e, "http_server_errors", "counter", "HTTP responses with a 5xx status per route");
    for (size_t i = 0; i <= af__nroutes; i++) {
        if (!s->http_hist[i].count)
            continue;
        const char *route = i < af__nroutes ? af__routes[i].pattern : "unmatched";
        const char *method =
            i < af__nroutes ? (af__routes[i].methods & AF__M_POST ? "POST" : "GET") : "any";
        counter(e, "http_server_errors", LABELS("route", route, "method", method),
                (double)s->http_errors[i]);
    }
    pthread_mutex_unlock(&s->met_mu);
}

static void render_tracing(af_server *s, expo *e)
{
    af_tracer_provider *p = af_tracing_provider(s->o.tracing);
    af_provider_stats ps;
    memset(&ps, 0, sizeof(ps));
    if (p)
        af_tracer_provider_stats(p, &ps);
    static const struct {
        const char *name, *help;
    } f[] = {
        {"tracing_spans_started", "Recording spans started"},
        {"tracing_spans_ended", "Recording spans ended"},
        {"tracing_spans_unsampled", "Spans started without recording (sampled out)"},
        {"tracing_spans_dropped", "Spans dropped because an export queue was full"},
        {"tracing_spans_exported", "Spans accepted by an exporter"},
        {"tracing_spans_failed", "Spans in batches an exporter rejected"},
    };
    uint64_t v[] = {ps.spans_started, ps.spans_ended,    ps.spans_unsampled,
                    ps.spans_dropped, ps.spans_exported, ps.spans_failed};
    for (size_t i = 0; i < 6; i++) {
        family(e, f[i].name, "counter", f[i].help);
        counter(e, f[i].name, NULL, (double)v[i]);
    }
    /* Per-processor families: the stats are read once, then each family is written whole
     * (the exposition needs all samples of a family together). */
    af_span_processor *procs[AF_MAX_EXPORT_PROCESSORS];
    size_t np = af_tracer_provider_processors(p, procs, AF_MAX_EXPORT_PROCESSORS);
    af_processor_stats st[AF_MAX_EXPORT_PROCESSORS];
    const char *type[AF_MAX_EXPORT_PROCESSORS];
    char idx[AF_MAX_EXPORT_PROCESSORS][24];
    if (np > AF_MAX_EXPORT_PROCESSORS)
        np = AF_MAX_EXPORT_PROCESSORS;
    for (size_t i = 0; i < np; i++) {
        af_span_processor_stats_get(procs[i], &st[i]);
        af_exporter *ex = af_span_processor_exporter(procs[i]);
        type[i] = ex ? af_exporter_type(ex) : "custom";
        snprintf(idx[i], sizeof(idx[i]), "%zu", i);
    }
    static const struct {
        const char *name, *kind, *help;
    } pf[] = {
        {"tracing_queue_depth", "gauge", "Spans waiting in an export queue"},
        {"tracing_queue_capacity", "gauge", "Capacity of an export queue"},
        {"tracing_export_seconds", "counter", "Time spent inside exporters"},
        {"tracing_export_calls", "counter", "Export calls made"},
    };
    for (size_t k = 0; k < sizeof(pf) / sizeof(pf[0]); k++) {
        family(e, pf[k].name, pf[k].kind, pf[k].help);
        for (size_t i = 0; i < np; i++) {
            double val = k == 0   ? st[i].queue_depth
                         : k == 1 ? st[i].queue_capacity
                         : k == 2 ? (double)st[i].export_ns_total / 1e9
                                  : (double)st[i].export_calls;
            const char *const *labels = LABELS("processor", idx[i], "exporter", type[i]);
            if (k < 2)
                gauge(e, pf[k].name, labels, val);
            else
                counter(e, pf[k].name, labels, val);
        }
    }
    if (s->o.traces) {
        af__hist h;
        af__trace_store_export_hist(s->o.traces, &h);
        family(e, "tracing_export_duration_seconds", "histogram",
               "Latency of one export call into the in-process trace store");
        histogram(e, "tracing_export_duration_seconds", LABELS("exporter", "trace_store"), &h);
        family(e, "trace_store_spans", "gauge", "Spans held by the in-process trace store");
        gauge(e, "trace_store_spans", NULL, (double)af_trace_store_span_count(s->o.traces));
        family(e, "trace_store_bytes", "gauge",
               "Bytes of span copies held by the in-process trace store (bounded by "
               "server.trace_store_bytes)");
        gauge(e, "trace_store_bytes", NULL, (double)af_trace_store_bytes(s->o.traces));
    }
}

/* serve --cluster: every agent's GPUs, labelled by node, in families of their own so they
 * never collide with this host's gpu_* series. */
typedef struct cluster_fam {
    expo *e;
    const char *name;
    int field;
} cluster_fam;

static void cluster_gpu_sample(const char *node, bool ready, const af_cluster_gpu *g, void *user)
{
    cluster_fam *f = user;
    char id[AF_CLUSTER_NODE_MAX + 16]; /* the same id as /api/v1/cluster/nodes, never cut */
    snprintf(id, sizeof(id), "%s/gpu-%u", node, g->index);
    double v = f->field == 0   ? g->utilization
               : f->field == 1 ? (double)g->memory_used_mb * 1048576.0
               : f->field == 2 ? (double)g->memory_total_mb * 1048576.0
               : f->field == 3 ? g->temperature
                               : (double)ready;
    gauge(f->e, f->name, LABELS("node", node, "gpu_id", id, "gpu_name", g->name), v);
}

static void render_cluster(af_server *s, expo *e)
{
    if (!s->o.cluster)
        return;
    af_cluster_stats st;
    af_cluster_stats_get(s->o.cluster, &st);
    family(e, "cluster_nodes", "gauge", "Nodes known to the cluster scheduler, by readiness");
    gauge(e, "cluster_nodes", LABELS("state", "ready"), st.ready_nodes);
    gauge(e, "cluster_nodes", LABELS("state", "not_ready"), st.nodes - st.ready_nodes);
    family(e, "cluster_gpu_holds", "gauge", "GPU holds: reserved for a pod, or bound");
    gauge(e, "cluster_gpu_holds", LABELS("kind", "reserved"), st.reservations);
    gauge(e, "cluster_gpu_holds", LABELS("kind", "bound"), st.bindings);
    static const struct {
        const char *name, *help;
    } fams[] = {
        {"cluster_gpu_utilization_percent", "GPU utilization reported by the node's agent"},
        {"cluster_gpu_memory_used_bytes", "GPU memory in use reported by the node's agent"},
        {"cluster_gpu_memory_total_bytes", "GPU memory size reported by the node's agent"},
        {"cluster_gpu_temperature_celsius", "GPU temperature reported by the node's agent"},
        {"cluster_gpu_ready", "1 while the GPU's node reports within cluster.node_timeout"},
    };
    for (int f = 0; f < (int)(sizeof(fams) / sizeof(fams[0])); f++) {
        family(e, fams[f].name, "gauge", fams[f].help);
        cluster_fam cf = {e, fams[f].name, f};
        af_cluster_each_gpu(s->o.cluster, cluster_gpu_sample, &cf);
    }
}

/* Observations recorded under "other" because their own label value was past a family's
 * cap (docs/security.md, "## Limits"): the operators' signal that clients send more distinct
 * names than the exposition keeps apart. */
/* The durable state's writer (present only when something persists). */
static void render_store(af_server *s, expo *e)
{
    if (!s->o.store)
        return;
    af_store_health h;
    af_store_health_get(s->o.store, &h);
    family(e, "store_commits", "counter", "Transactions committed by the store's writer");
    counter(e, "store_commits", NULL, (double)h.commits);
    family(e, "store_write_failures", "counter",
           "Writes refused because their commit failed (answered 503 storage_unavailable)");
    counter(e, "store_write_failures", NULL, (double)h.failures);
    family(e, "store_queued_writes", "gauge", "Writes waiting for the next commit");
    gauge(e, "store_queued_writes", NULL, h.queued);
    family(e, "store_size_bytes", "gauge", "Size of the database file");
    gauge(e, "store_size_bytes", NULL, (double)h.size_bytes);
    family(e, "store_last_commit_timestamp_seconds", "gauge",
           "Wall-clock time of the last successful commit (0: none yet)");
    gauge(e, "store_last_commit_timestamp_seconds", NULL, (double)h.last_commit_ns / 1e9);
}

static void render_folded(af_server *s, expo *e)
{
    family(e, "metric_label_values_folded", "counter",
           "Observations recorded under the label value \"other\" because the family already had "
           "server.max_label_values distinct values");
    if (s->o.costs) {
        af_cost_stats st;
        af_cost_stats_get(s->o.costs, &st);
        counter(e, "metric_label_values_folded", LABELS("family", P "cost_dollars"),
                (double)st.operations_folded);
        counter(e, "metric_label_values_folded", LABELS("family", P "cost_by_model_dollars"),
                (double)st.models_folded);
        counter(e, "metric_label_values_folded", LABELS("family", P "gpu_usage_seconds"),
                (double)st.operations_folded);
    }
    static const char *const model_fams[] = {
        P "inference_requests",   P "inference_latency_seconds",
        P "inference_batch_size", P "cache_hits",
        P "cache_misses",         P "cache_hit_rate",
        P "tokens_processed"};
    pthread_mutex_lock(&s->met_mu);
    uint64_t folded = s->models_folded;
    pthread_mutex_unlock(&s->met_mu);
    for (size_t i = 0; i < sizeof(model_fams) / sizeof(model_fams[0]); i++)
        counter(e, "metric_label_values_folded", LABELS("family", model_fams[i]), (double)folded);
}

int af__metrics_render(af_server *s, bool openmetrics, af_buf *out)
{
    static char node[256];
    static atomic_bool have_node;
    if (!atomic_load(&have_node)) {
        char tmp[256];
        if (gethostname(tmp, sizeof(tmp)) != 0)
            af__strlcpy(tmp, "localhost", sizeof(tmp));
        tmp[sizeof(tmp) - 1] = '\0';
        memcpy(node, tmp, sizeof(node));
        atomic_store(&have_node, true);
    }
    expo e = {.b = out, .om = openmetrics};
    render_gpus(s, &e, node);
    render_scheduler(s, &e, node);
    render_serving(s, &e);
    render_costs(s, &e);
    render_alerts(s, &e);
    render_system(s, &e);
    render_tracing(s, &e);
    render_cluster(s, &e);
    render_store(s, &e);
    render_folded(s, &e);
    if (openmetrics)
        af__buf_puts(out, "# EOF\n");
    return out->failed ? -ENOMEM : 0;
}
