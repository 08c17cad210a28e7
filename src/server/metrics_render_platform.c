/*
 * Exposition families of model serving, costs and GPU alerts. Added to the scrape in
 * af__metrics_render (metrics.c).
 */
#include <stdlib.h>
#include <string.h>

#include "server/metrics_int.h"
#include "server/server_int.h"

void af__metrics_render_serving(af_server *s, af__expo *e)
{
    pthread_mutex_lock(&s->met_mu);
    af__expo_family(e, "inference_requests", "counter", "Inference requests served by the daemon");
    for (size_t i = 0; i < s->n_models; i++) {
        af__expo_counter(e, "inference_requests",
                         LABELS("model_id", s->models[i].id, "status", "success"),
                         (double)s->models[i].ok);
        af__expo_counter(e, "inference_requests",
                         LABELS("model_id", s->models[i].id, "status", "error"),
                         (double)s->models[i].errors);
    }
    af__expo_family(e, "inference_latency_seconds", "histogram",
                    "Inference latency as the caller saw it");
    for (size_t i = 0; i < s->n_models; i++)
        af__expo_histogram(e, "inference_latency_seconds", LABELS("model_id", s->models[i].id),
                           &s->models[i].latency);
    af__expo_family(e, "inference_batch_size", "histogram",
                    "Size of the batch a request was served in");
    for (size_t i = 0; i < s->n_models; i++)
        af__expo_histogram(e, "inference_batch_size", LABELS("model_id", s->models[i].id),
                           &s->models[i].batch);
    af__expo_family(e, "cache_hits", "counter", "Inference responses served from the cache");
    for (size_t i = 0; i < s->n_models; i++)
        af__expo_counter(e, "cache_hits", LABELS("model_id", s->models[i].id),
                         (double)s->models[i].cache_hits);
    af__expo_family(e, "cache_misses", "counter", "Inference requests that reached a backend");
    for (size_t i = 0; i < s->n_models; i++)
        af__expo_counter(e, "cache_misses", LABELS("model_id", s->models[i].id),
                         (double)s->models[i].cache_misses);
    af__expo_family(e, "cache_hit_rate", "gauge", "Cache hits over successful requests (0-1)");
    for (size_t i = 0; i < s->n_models; i++) {
        const af__model_metrics *m = &s->models[i];
        af__expo_gauge(e, "cache_hit_rate", LABELS("model_id", m->id),
                       m->ok ? (double)m->cache_hits / (double)m->ok : 0);
    }
    af__expo_family(e, "tokens_processed", "counter",
                    "Prompt plus completion tokens of served requests");
    for (size_t i = 0; i < s->n_models; i++)
        af__expo_counter(e, "tokens_processed",
                         LABELS("model_id", s->models[i].id, "operation", "inference"),
                         (double)s->models[i].tokens);
    pthread_mutex_unlock(&s->met_mu);
    if (s->o.serving) {
        af_serving_stats st;
        af_serving_stats_get(s->o.serving, &st);
        af__expo_family(e, "serving_queue_depth", "gauge",
                        "Inference requests queued for a batcher");
        af__expo_gauge(e, "serving_queue_depth", NULL, st.pending_requests);
        af__expo_family(e, "serving_overloaded", "counter",
                        "Inference requests refused: queue full");
        af__expo_counter(e, "serving_overloaded", NULL, (double)st.overloaded);
        af__expo_family(e, "cache_entries", "gauge", "Entries in the response cache");
        af__expo_gauge(e, "cache_entries", NULL, (double)st.cache_entries);
    }
}

/* One counter family from a cost summary's groups, with at most cap distinct label values:
 * groups past the cap (and one already named AF_COST_OTHER by the tracker's own cap) are
 * summed into one "other" sample. hours: the GPU time in seconds instead of the cost. */
static void cost_groups(af__expo *e, const char *base, const char *label, const af_cost_group *g,
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
            af__expo_counter(e, base, LABELS(label, g[i].name, "currency", cur), v);
        } else {
            af__expo_counter(e, base, LABELS(label, g[i].name), v);
        }
    }
    if (have_other && cur)
        af__expo_counter(e, base, LABELS(label, AF_COST_OTHER, "currency", cur), other);
    else if (have_other)
        af__expo_counter(e, base, LABELS(label, AF_COST_OTHER), other);
}

void af__metrics_render_costs(af_server *s, af__expo *e)
{
    if (!s->o.costs)
        return;
    af_cost_summary cs;
    if (af_cost_summary_get(s->o.costs, NULL, s->started_wall_ns, 0, &cs) != 0)
        return;
    const char *cur = cs.currency[0] ? cs.currency : "USD";
    size_t cap = s->o.max_label_values ? s->o.max_label_values : SIZE_MAX;
    af__expo_family(e, "cost_dollars", "counter",
                    "Cost recorded since the daemon started, by operation");
    cost_groups(e, "cost_dollars", "operation", cs.by_operation, cs.n_by_operation, cap, cur,
                false);
    af__expo_family(e, "cost_by_model_dollars", "counter",
                    "Cost recorded since the daemon started, by model");
    cost_groups(e, "cost_by_model_dollars", "model_id", cs.by_model, cs.n_by_model, cap, cur,
                false);
    af__expo_family(
        e, "gpu_usage_seconds", "counter",
        "GPU time recorded since start, by operation (the original gpu_hours_consumed, in "
        "seconds)");
    cost_groups(e, "gpu_usage_seconds", "workload_type", cs.by_operation, cs.n_by_operation, cap,
                NULL, true);
    af_cost_summary_clear(&cs);
    af_cost_forecast f;
    if (af_cost_forecast_24h(s->o.costs, 0, &f) == 0) {
        af__expo_family(e, "cost_per_hour_dollars", "gauge", "Fitted current cost rate per hour");
        af__expo_gauge(e, "cost_per_hour_dollars", LABELS("resource_type", "all", "currency", cur),
                       f.current_rate_per_hour);
        af__expo_family(e, "estimated_monthly_cost_dollars", "gauge",
                        "Current hourly rate times 720 hours");
        af__expo_gauge(e, "estimated_monthly_cost_dollars", LABELS("resource_type", "all"),
                       f.current_rate_per_hour > 0 ? f.current_rate_per_hour * 720.0 : 0);
        af__expo_family(e, "predicted_cost_24h_dollars", "gauge",
                        "Forecast cost of the next 24 hours");
        af__expo_gauge(e, "predicted_cost_24h_dollars", NULL, f.predicted_cost_24h);
    }
}

void af__metrics_render_alerts(af_server *s, af__expo *e)
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
    af__expo_family(e, "active_alerts", "gauge", "Unacknowledged alerts of the last hour");
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
                af__expo_gauge(
                    e, "active_alerts",
                    LABELS("severity", af_gpu_severity_name((af_gpu_level)sev), "type", types[t]),
                    (double)c);
        }
    free(a);
}
