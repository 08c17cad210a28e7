/*
 * Exposition families of the daemon itself, its tracing pipeline, the cluster (serve
 * --cluster), the durable store and folded label values. Added to the scrape in
 * af__metrics_render (metrics.c).
 */
#include <stdio.h>
#include <string.h>

#include "server/metrics_int.h"
#include "server/server_int.h"
#include "server/trace_store_int.h"

/* A provider holds at most 16 processors (AF_MAX_PROCESSORS in the trace core). */
#define AF_MAX_EXPORT_PROCESSORS 16

void af__metrics_render_system(af_server *s, af__expo *e)
{
    af__expo_family(e, "system_uptime_seconds", "gauge", "Seconds since the daemon started");
    af__expo_gauge(e, "system_uptime_seconds", NULL,
                   (double)(af_monotonic_ns() - s->started_mono_ns) / 1e9);
    af__expo_family(e, "component_health_status", "gauge",
                    "Component health: 2 healthy, 1 degraded, 0 down");
    af__expo_gauge(e, "component_health_status", LABELS("component", "dashboard"), 2);
    if (s->o.collector)
        af__expo_gauge(e, "component_health_status", LABELS("component", "metrics_collector"),
                       af_gpu_collector_running(s->o.collector) ? 2 : 0);
    af__expo_gauge(e, "component_health_status", LABELS("component", "prometheus"), 2);
    af_tracing_health th;
    af_tracing_health_get(s->o.tracing, &th);
    af__expo_gauge(e, "component_health_status", LABELS("component", "tracing"),
                   th.status == AF_HEALTH_HEALTHY    ? 2
                   : th.status == AF_HEALTH_DEGRADED ? 1
                                                     : 0);

    af__expo_family(e, "websocket_clients", "gauge", "WebSocket clients connected");
    af__expo_gauge(e, "websocket_clients", NULL, atomic_load(&s->n_clients));
    af__expo_family(e, "websocket_messages_sent", "counter",
                    "WebSocket messages written to clients");
    af__expo_counter(e, "websocket_messages_sent", NULL, (double)atomic_load(&s->ws_sent));
    af__expo_family(e, "websocket_messages_dropped", "counter",
                    "WebSocket updates dropped because a client's queue was full");
    af__expo_counter(e, "websocket_messages_dropped", NULL, (double)atomic_load(&s->ws_dropped));
    af__expo_family(e, "websocket_rejected", "counter",
                    "WebSocket clients refused by the client cap");
    af__expo_counter(e, "websocket_rejected", NULL, (double)atomic_load(&s->ws_rejected));

    pthread_mutex_lock(&s->met_mu);
    af__expo_family(e, "http_request_duration_seconds", "histogram", "HTTP API latency per route");
    for (size_t i = 0; i <= af__nroutes; i++) {
        if (!s->http_hist[i].count)
            continue;
        const char *route = i < af__nroutes ? af__routes[i].pattern : "unmatched";
        const char *method =
            i < af__nroutes ? (af__routes[i].methods & AF__M_POST ? "POST" : "GET") : "any";
        af__expo_histogram(e, "http_request_duration_seconds",
                           LABELS("route", route, "method", method), &s->http_hist[i]);
    }
    af__expo_family(e, "http_server_errors", "counter",
                    "HTTP responses with a 5xx status per route");
    for (size_t i = 0; i <= af__nroutes; i++) {
        if (!s->http_hist[i].count)
            continue;
        const char *route = i < af__nroutes ? af__routes[i].pattern : "unmatched";
        const char *method =
            i < af__nroutes ? (af__routes[i].methods & AF__M_POST ? "POST" : "GET") : "any";
        af__expo_counter(e, "http_server_errors", LABELS("route", route, "method", method),
                         (double)s->http_errors[i]);
    }
    pthread_mutex_unlock(&s->met_mu);
}

void af__metrics_render_tracing(af_server *s, af__expo *e)
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
        af__expo_family(e, f[i].name, "counter", f[i].help);
        af__expo_counter(e, f[i].name, NULL, (double)v[i]);
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
        af__expo_family(e, pf[k].name, pf[k].kind, pf[k].help);
        for (size_t i = 0; i < np; i++) {
            double val = k == 0   ? st[i].queue_depth
                         : k == 1 ? st[i].queue_capacity
                         : k == 2 ? (double)st[i].export_ns_total / 1e9
                                  : (double)st[i].export_calls;
            const char *const *labels = LABELS("processor", idx[i], "exporter", type[i]);
            if (k < 2)
                af__expo_gauge(e, pf[k].name, labels, val);
            else
                af__expo_counter(e, pf[k].name, labels, val);
        }
    }
    if (s->o.traces) {
        af__hist h;
        af__trace_store_export_hist(s->o.traces, &h);
        af__expo_family(e, "tracing_export_duration_seconds", "histogram",
                        "Latency of one export call into the in-process trace store");
        af__expo_histogram(e, "tracing_export_duration_seconds", LABELS("exporter", "trace_store"),
                           &h);
        af__expo_family(e, "trace_store_spans", "gauge",
                        "Spans held by the in-process trace store");
        af__expo_gauge(e, "trace_store_spans", NULL,
                       (double)af_trace_store_span_count(s->o.traces));
        af__expo_family(e, "trace_store_bytes", "gauge",
                        "Bytes of span copies held by the in-process trace store (bounded by "
                        "server.trace_store_bytes)");
        af__expo_gauge(e, "trace_store_bytes", NULL, (double)af_trace_store_bytes(s->o.traces));
    }
}

/* serve --cluster: every agent's GPUs, labelled by node, in families of their own so they
 * never collide with this host's gpu_* series. */
typedef struct cluster_fam {
    af__expo *e;
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
    af__expo_gauge(f->e, f->name, LABELS("node", node, "gpu_id", id, "gpu_name", g->name), v);
}

void af__metrics_render_cluster(af_server *s, af__expo *e)
{
    if (!s->o.cluster)
        return;
    af_cluster_stats st;
    af_cluster_stats_get(s->o.cluster, &st);
    af__expo_family(e, "cluster_nodes", "gauge",
                    "Nodes known to the cluster scheduler, by readiness");
    af__expo_gauge(e, "cluster_nodes", LABELS("state", "ready"), st.ready_nodes);
    af__expo_gauge(e, "cluster_nodes", LABELS("state", "not_ready"), st.nodes - st.ready_nodes);
    af__expo_family(e, "cluster_gpu_holds", "gauge", "GPU holds: reserved for a pod, or bound");
    af__expo_gauge(e, "cluster_gpu_holds", LABELS("kind", "reserved"), st.reservations);
    af__expo_gauge(e, "cluster_gpu_holds", LABELS("kind", "bound"), st.bindings);
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
        af__expo_family(e, fams[f].name, "gauge", fams[f].help);
        cluster_fam cf = {e, fams[f].name, f};
        af_cluster_each_gpu(s->o.cluster, cluster_gpu_sample, &cf);
    }
}

/* The durable state's writer (present only when something persists). */
void af__metrics_render_store(af_server *s, af__expo *e)
{
    if (!s->o.store)
        return;
    af_store_health h;
    af_store_health_get(s->o.store, &h);
    af__expo_family(e, "store_commits", "counter", "Transactions committed by the store's writer");
    af__expo_counter(e, "store_commits", NULL, (double)h.commits);
    af__expo_family(
        e, "store_write_failures", "counter",
        "Writes refused because their commit failed (answered 503 storage_unavailable)");
    af__expo_counter(e, "store_write_failures", NULL, (double)h.failures);
    af__expo_family(e, "store_queued_writes", "gauge", "Writes waiting for the next commit");
    af__expo_gauge(e, "store_queued_writes", NULL, h.queued);
    af__expo_family(e, "store_size_bytes", "gauge", "Size of the database file");
    af__expo_gauge(e, "store_size_bytes", NULL, (double)h.size_bytes);
    af__expo_family(e, "store_last_commit_timestamp_seconds", "gauge",
                    "Wall-clock time of the last successful commit (0: none yet)");
    af__expo_gauge(e, "store_last_commit_timestamp_seconds", NULL, (double)h.last_commit_ns / 1e9);
}

/* Observations recorded under "other" because their own label value was past a family's
 * cap (docs/security.md, "## Limits"): the operators' signal that clients send more distinct
 * names than the exposition keeps apart. */
void af__metrics_render_folded(af_server *s, af__expo *e)
{
    af__expo_family(
        e, "metric_label_values_folded", "counter",
        "Observations recorded under the label value \"other\" because the family already had "
        "server.max_label_values distinct values");
    if (s->o.costs) {
        af_cost_stats st;
        af_cost_stats_get(s->o.costs, &st);
        af__expo_counter(e, "metric_label_values_folded", LABELS("family", P "cost_dollars"),
                         (double)st.operations_folded);
        af__expo_counter(e, "metric_label_values_folded",
                         LABELS("family", P "cost_by_model_dollars"), (double)st.models_folded);
        af__expo_counter(e, "metric_label_values_folded", LABELS("family", P "gpu_usage_seconds"),
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
        af__expo_counter(e, "metric_label_values_folded", LABELS("family", model_fams[i]),
                         (double)folded);
}
