/*
 * Exposition families of this host's GPUs and of the GPU scheduler (gpu_*, scheduler_*,
 * workloads_*). Added to the scrape in af__metrics_render (metrics.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/metrics_int.h"
#include "server/server_int.h"

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

void af__metrics_render_gpus(af_server *s, af__expo *e, const char *node)
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
        af__expo_family(e, fams[f].name, "gauge", fams[f].help);
        for (size_t i = 0; i < n; i++)
            af__expo_gauge(e, fams[f].name,
                           LABELS("gpu_id", g[i].gpu_id, "gpu_name", g[i].name, "node", node),
                           fams[f].get(&g[i]));
    }
    af__expo_family(e, "gpu_health_status", "gauge",
                    "GPU health: 2 healthy, 1 warning, 0 critical");
    for (size_t i = 0; i < n; i++) {
        af_gpu_health h;
        if (af_gpu_collector_health(s->o.collector, g[i].gpu_id, &h) != 0)
            continue;
        double v = h.status == AF_GPU_HEALTHY ? 2 : h.status == AF_GPU_WARNING ? 1 : 0;
        af__expo_gauge(e, "gpu_health_status",
                       LABELS("gpu_id", g[i].gpu_id, "gpu_name", g[i].name, "node", node, "status",
                              af_gpu_level_name(h.status)),
                       v);
    }
    double avg = 0;
    for (size_t i = 0; i < n; i++)
        avg += g[i].utilization_gpu;
    af__expo_family(e, "cluster_utilization_percent", "gauge",
                    "Mean GPU utilization across the cluster");
    af__expo_gauge(e, "cluster_utilization_percent", NULL, n ? avg / (double)n : 0);
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
static void render_scheduler_gpus(af_server *s, af__expo *e, const char *node,
                                  const af_gpu_status *g, size_t ng)
{
    af__expo_family(e, "gpus_registered", "gauge",
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
            af__expo_gauge(e, "gpus_registered",
                           LABELS("node", node, "gpu_type", af_gpu_class_name(c)), tot[c]);
    af__expo_family(e, "gpus_available", "gauge", "GPUs available for new placements");
    for (int c = 0; c < AF_GPU_CLASS_COUNT; c++)
        if (tot[c])
            af__expo_gauge(e, "gpus_available",
                           LABELS("node", node, "gpu_type", af_gpu_class_name(c)), avail[c]);

    const char *strategy = af_gpu_strategy_name(af_gpu_scheduler_strategy(s->o.scheduler));
    af__expo_family(e, "gpu_allocation_efficiency", "gauge",
                    "Share of GPU memory reserved by running workloads (0-1)");
    af__expo_gauge(e, "gpu_allocation_efficiency", LABELS("strategy", strategy),
                   mem ? (double)reserved / (double)mem : 0);
}

/* Pending per priority and running per (GPU, priority), from the live list. */
static void render_scheduler_workloads(af__expo *e, const af_gpu_status *g, size_t ng,
                                       const af_workload_info *w, size_t nw)
{
    af__expo_family(e, "workloads_pending", "gauge", "Workloads waiting in the queue");
    int32_t seen[64];
    size_t nseen = distinct_priorities(w, nw, AF_WORKLOAD_PENDING, NULL, seen, 64);
    for (size_t k = 0; k < nseen; k++) {
        char p[16];
        snprintf(p, sizeof(p), "%d", seen[k]);
        af__expo_gauge(e, "workloads_pending", LABELS("priority", p),
                       (double)count_priority(w, nw, AF_WORKLOAD_PENDING, NULL, seen[k]));
    }
    af__expo_family(e, "workloads_running", "gauge", "Workloads running, per GPU and priority");
    for (size_t gi = 0; gi < ng; gi++) {
        int32_t ps[32];
        size_t np = distinct_priorities(w, nw, AF_WORKLOAD_RUNNING, g[gi].id, ps, 32);
        for (size_t k = 0; k < np; k++) {
            char p[16];
            snprintf(p, sizeof(p), "%d", ps[k]);
            af__expo_gauge(e, "workloads_running", LABELS("gpu_id", g[gi].id, "priority", p),
                           (double)count_priority(w, nw, AF_WORKLOAD_RUNNING, g[gi].id, ps[k]));
        }
    }
}

/* The daemon's own counters and histograms; the caller holds met_mu. */
static void render_scheduler_counters(af_server *s, af__expo *e)
{
    af__expo_family(e, "workloads", "counter",
                    "Workload transitions seen by the daemon, by status");
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
            af__expo_counter(e, "workloads", LABELS("status", st[k], "priority", p), (double)v);
        }
    af__expo_family(e, "workloads_completed", "counter", "Workloads completed");
    for (size_t i = 0; i < s->n_prios; i++) {
        char p[16];
        snprintf(p, sizeof(p), "%d", s->prios[i].priority);
        af__expo_counter(e, "workloads_completed", LABELS("priority", p),
                         (double)s->prios[i].completed);
    }
    af__expo_family(e, "workload_queue_time_seconds", "histogram",
                    "Time from submission to placement on a GPU");
    for (size_t i = 0; i < s->n_prios; i++) {
        char p[16];
        snprintf(p, sizeof(p), "%d", s->prios[i].priority);
        af__expo_histogram(e, "workload_queue_time_seconds", LABELS("priority", p),
                           &s->prios[i].queue_time);
    }
    af__expo_family(e, "workload_execution_time_seconds", "histogram",
                    "Time from placement to completion");
    af__expo_histogram(e, "workload_execution_time_seconds", NULL, &s->exec_hist);
    af__expo_family(e, "scheduling_duration_seconds", "histogram",
                    "Duration of one scheduling pass");
    for (int k = 0; k < 4; k++)
        if (s->sched_hist[k].count)
            af__expo_histogram(e, "scheduling_duration_seconds",
                               LABELS("strategy", af_gpu_strategy_name((af_gpu_strategy)k)),
                               &s->sched_hist[k]);
    af__expo_family(
        e, "scheduling_decisions", "counter",
        "Scheduling outcomes: placed workloads, and workloads left pending after a pass");
    for (int k = 0; k < 4; k++)
        if (s->sched_hist[k].count) {
            const char *sn = af_gpu_strategy_name((af_gpu_strategy)k);
            af__expo_counter(e, "scheduling_decisions", LABELS("strategy", sn, "outcome", "placed"),
                             (double)s->sched_decisions[k][0]);
            af__expo_counter(e, "scheduling_decisions",
                             LABELS("strategy", sn, "outcome", "pending"),
                             (double)s->sched_decisions[k][1]);
        }
}

void af__metrics_render_scheduler(af_server *s, af__expo *e, const char *node)
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
