/*
 * Handlers: health, dashboard metrics, system stats/overview/status, performance, config, /ws
 * refusal. Split out of routes.c; the route table and matcher stay there (see routes_int.h).
 */
#include <errno.h>
#include <pthread.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentaflow/log.h"
#include "server/limits.h"
#include "server/routes_cluster.h"
#include "server/server_int.h"
#include "util/timeutil.h"
#include "util/str.h"
#include "server/routes_int.h"

int af__dashboard_metrics_json(af_server *s, af_buf *b)
{
    view *v = calloc(1, sizeof(*v));
    af_gpu_alert *al = malloc(sizeof(*al) * 64);
    if (!v || !al) {
        af__view_free(v);
        free(al);
        return -ENOMEM;
    }
    af__view_load(s, v);
    af__buf_puts(b, "{\"timestamp\":");
    af__put_time(b, af_now_ns());
    af__buf_puts(b, ",\"gpu_metrics\":{");
    for (size_t i = 0; i < v->n; i++) {
        char *j = NULL;
        af_gpu_sample_json(&v->samples[i], &j);
        if (i)
            af__buf_putc(b, ',');
        af__put_str(b, v->samples[i].gpu_id);
        af__buf_putc(b, ':');
        af__put_json_take(b, j);
    }
    af__buf_puts(b, "},\"system_stats\":");
    af__put_system_stats(b, v);
    af__buf_puts(b, ",\"cost_data\":");
    af_cost_summary cs;
    af__put_cost_summary(s, b, &cs);
    af__buf_puts(b, ",\"alerts\":[");
    size_t na = af__active_alerts(s, al, 64);
    for (size_t i = 0; i < na; i++) {
        if (i)
            af__buf_putc(b, ',');
        af__put_alert(b, &al[i]);
    }
    af__buf_puts(b, "],\"performance\":");
    af__put_performance(s, b, v, cs.total_cost);
    af_cost_summary_clear(&cs);
    af__buf_putc(b, '}');
    af__view_free(v);
    free(al);
    return b->failed ? -ENOMEM : 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Handlers.                                                                                 */

/* /health: one writer per component. Each appends its own object (the caller writes the key)
 * and counts itself into the tally that picks the overall status. */
typedef struct health_tally {
    int degraded, down;
} health_tally;

static void health_scheduler(af_server *s, af_buf *b, health_tally *t)
{
    if (!s->o.scheduler) {
        af__buf_puts(b, "{\"status\":\"disabled\"}");
        return;
    }
    af_gpu_status g[1];
    size_t n = af_gpu_scheduler_list_gpus(s->o.scheduler, g, 0);
    size_t w = af_gpu_scheduler_list_workloads(s->o.scheduler, NULL, 0);
    af__buf_printf(b, "{\"status\":\"%s\",\"gpus\":%zu,\"live_workloads\":%zu,\"strategy\":\"%s\"}",
                   n ? "healthy" : "degraded", n, w,
                   af_gpu_strategy_name(af_gpu_scheduler_strategy(s->o.scheduler)));
    t->degraded += n == 0;
}

static void health_collector(af_server *s, af_buf *b, health_tally *t)
{
    if (!s->o.collector) {
        af__buf_puts(b, "{\"status\":\"disabled\"}");
        return;
    }
    af_gpu_overview ov;
    af_gpu_collector_overview(s->o.collector, &ov);
    bool running = af_gpu_collector_running(s->o.collector);
    uint64_t age_ms = ov.timestamp_ns && af_now_ns() > ov.timestamp_ns
                          ? (af_now_ns() - ov.timestamp_ns) / 1000000ull
                          : 0;
    bool stale = ov.timestamp_ns == 0 || age_ms > 3ull * ov.collection_interval_ms + 5000;
    const char *st = !running ? "down" : stale ? "degraded" : "healthy";
    t->down += !running;
    t->degraded += running && stale;
    af__buf_printf(b, "{\"status\":\"%s\",\"backend\":", st);
    af__put_str(b, af_gpu_collector_backend_name(s->o.collector));
    af__buf_puts(b, ",\"backend_reason\":");
    af__put_str(b, af_gpu_collector_backend_reason(s->o.collector));
    af__buf_printf(b,
                   ",\"gpus\":%u,\"healthy_gpus\":%u,\"interval_ms\":%u,"
                   "\"last_sample_age_ms\":%llu}",
                   ov.total_gpus, ov.healthy_gpus, ov.collection_interval_ms,
                   (unsigned long long)age_ms);
}

static void health_serving(af_server *s, af_buf *b, health_tally *t)
{
    if (!s->o.serving) {
        af__buf_puts(b, "{\"status\":\"disabled\"}");
        return;
    }
    af_serving_stats st;
    af_serving_stats_get(s->o.serving, &st);
    bool ok = st.total_models > 0 && st.available_instances > 0;
    t->degraded += !ok;
    af__buf_printf(b,
                   "{\"status\":\"%s\",\"models\":%u,\"instances\":%u,"
                   "\"available_instances\":%u,\"pending_requests\":%u,\"in_flight\":%u,"
                   "\"requests\":%llu,\"errors\":%llu,\"overloaded\":%llu}",
                   ok ? "healthy" : "degraded", st.total_models, st.total_instances,
                   st.available_instances, st.pending_requests, st.in_flight,
                   (unsigned long long)st.requests, (unsigned long long)st.errors,
                   (unsigned long long)st.overloaded);
}

static void health_costs(af_server *s, af_buf *b)
{
    if (!s->o.costs) {
        af__buf_puts(b, "{\"status\":\"disabled\"}");
        return;
    }
    af_cost_stats cst;
    af_cost_stats_get(s->o.costs, &cst);
    af__buf_printf(b,
                   "{\"status\":\"healthy\",\"entries\":%llu,\"buckets\":%llu,"
                   "\"recorded\":%llu}",
                   (unsigned long long)cst.entries, (unsigned long long)cst.buckets,
                   (unsigned long long)cst.recorded);
}

static void health_websocket(af_server *s, af_buf *b)
{
    af__buf_printf(b, "{\"status\":\"healthy\",\"clients\":%u,\"max_clients\":%u}",
                   atomic_load(&s->n_clients), s->o.max_ws_clients);
}

static void health_prometheus(af_server *s, af_buf *b)
{
    af__buf_printf(b, "{\"status\":\"%s\",\"port\":%d}",
                   s->metrics_fd >= 0 ? "healthy" : "disabled", s->metrics_port);
}

static void health_trace_store(af_server *s, af_buf *b)
{
    if (s->o.traces)
        af__buf_printf(b, "{\"status\":\"healthy\",\"spans\":%zu,\"bytes\":%zu,\"max_bytes\":%zu}",
                       af_trace_store_span_count(s->o.traces), af_trace_store_bytes(s->o.traces),
                       af_trace_store_max_bytes(s->o.traces));
    else
        af__buf_puts(b, "{\"status\":\"disabled\"}");
}

static void health_store(af_server *s, af_buf *b, health_tally *t)
{
    if (!s->o.store) {
        af__buf_puts(b, "{\"status\":\"disabled\",\"persist\":false}");
        return;
    }
    af_store_health sh;
    af_store_health_get(s->o.store, &sh);
    uint64_t now = af_now_ns();
    /* Degraded while the last write failed (disk full, I/O error): reads still work. */
    bool failing = sh.last_error[0] != '\0';
    t->degraded += failing;
    af__buf_printf(b, "{\"status\":\"%s\",\"backend\":", failing ? "degraded" : "healthy");
    af__put_str(b, sh.backend);
    af__buf_puts(b, ",\"path\":");
    af__put_str(b, sh.path);
    af__buf_printf(b,
                   ",\"size_bytes\":%llu,\"last_commit_age_ms\":%lld,\"commits\":%llu,"
                   "\"writes\":%llu,\"failures\":%llu,\"queued\":%u,\"last_error\":",
                   (unsigned long long)sh.size_bytes,
                   sh.last_commit_ns && now > sh.last_commit_ns
                       ? (long long)((now - sh.last_commit_ns) / 1000000u)
                       : -1ll,
                   (unsigned long long)sh.commits, (unsigned long long)sh.writes,
                   (unsigned long long)sh.failures, sh.queued);
    if (sh.last_error[0])
        af__put_str(b, sh.last_error);
    else
        af__buf_puts(b, "null");
    af__buf_putc(b, '}');
}

static void health_tracing(af_server *s, af_buf *b, health_tally *t)
{
    af_tracing_health th;
    af_tracing_health_get(s->o.tracing, &th);
    t->degraded += th.status == AF_HEALTH_DEGRADED;
    af__put_json_take(b, af_tracing_health_to_json(s->o.tracing, &th));
}

int af__h_health(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    af_tracer *ht = af_tracing_tracer_for(s->o.tracing, AF_TRACE_HEALTH_CHECKS);
    af_span hs = af_span_start_child(ht, "observability.health_check", AF_SPAN_KIND_INTERNAL,
                                     &rq->span_ctx, NULL, 0);
    af_buf *b = &rs->body;
    health_tally t = {0, 0};
    af__buf_puts(b, "{\"components\":{\"gpu_scheduler\":");
    health_scheduler(s, b, &t);
    af__buf_puts(b, ",\"metrics_collector\":");
    health_collector(s, b, &t);
    af__buf_puts(b, ",\"model_serving\":");
    health_serving(s, b, &t);
    af__buf_puts(b, ",\"cost_tracking\":");
    health_costs(s, b);
    af__buf_puts(b, ",\"websocket\":");
    health_websocket(s, b);
    af__buf_puts(b, ",\"prometheus\":");
    health_prometheus(s, b);
    af__buf_puts(b, ",\"trace_store\":");
    health_trace_store(s, b);
    af__buf_puts(b, ",\"store\":");
    health_store(s, b, &t);
    af__buf_puts(b, ",\"tracing\":");
    health_tracing(s, b, &t);

    const char *overall = t.down ? "unhealthy" : t.degraded ? "degraded" : "healthy";
    af__buf_printf(b,
                   "},\"status\":\"%s\",\"version\":\"%s\",\"uptime_seconds\":%.3f,"
                   "\"timestamp\":",
                   overall, AF_VERSION_STRING,
                   (double)(af_monotonic_ns() - s->started_mono_ns) / 1e9);
    af__put_time(b, af_now_ns());
    af__buf_putc(b, '}');
    rs->status = t.down ? 503 : 200;
    af_span_set_string(hs, "health.status", overall);
    af_span_end(hs);
    return 0;
}

int af__h_metrics(af__req *rq, af__resp *rs)
{
    if (af__dashboard_metrics_json(rq->srv, &rs->body) != 0)
        af__resp_error(rs, 500, "internal", "out of memory");
    return 0;
}

int af__h_system_stats(af__req *rq, af__resp *rs)
{
    view *v = calloc(1, sizeof(*v));
    if (!v) {
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    af__view_load(rq->srv, v);
    af__put_system_stats(&rs->body, v);
    af__view_free(v);
    return 0;
}

/* The original's system health: 100 - 20 per GPU at or above the warning temperature. */
static void put_health_status(af_buf *b, const view *v)
{
    if (!v->n) {
        af__buf_puts(b, "{\"status\":\"warning\",\"score\":50}");
        return;
    }
    int hot = 0;
    for (size_t i = 0; i < v->n; i++)
        hot += v->samples[i].temperature >= v->th.temperature_warning;
    int score = 100 - 20 * hot;
    if (score < 0)
        score = 0;
    af__buf_printf(b, "{\"status\":\"%s\",\"score\":%d}",
                   score < 50   ? "critical"
                   : score < 80 ? "warning"
                                : "healthy",
                   score);
}

int af__h_system_overview(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    view *v = calloc(1, sizeof(*v));
    af_gpu_alert *al = malloc(sizeof(*al) * MAX_ALERTS);
    if (!v || !al) {
        af__view_free(v);
        free(al);
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    af__view_load(s, v);
    af_buf *b = &rs->body;
    af__buf_puts(b, "{\"system_stats\":");
    af__put_system_stats(b, v);
    af__buf_puts(b, ",\"health_status\":");
    put_health_status(b, v);
    af__buf_puts(b, ",\"cost_summary\":");
    af_cost_summary cs;
    af__put_cost_summary(s, b, &cs);
    af__buf_printf(b,
                   ",\"active_alerts\":%zu,\"performance\":", af__active_alerts(s, al, MAX_ALERTS));
    af__put_performance(s, b, v, cs.total_cost);
    af_cost_summary_clear(&cs);
    uint64_t up = (af_monotonic_ns() - s->started_mono_ns) / 1000000000ull;
    af__buf_printf(b,
                   ",\"uptime\":\"%llu days, %llu hours, %llu minutes\",\"uptime_seconds\":%llu,"
                   "\"last_updated\":",
                   (unsigned long long)(up / 86400), (unsigned long long)(up / 3600 % 24),
                   (unsigned long long)(up / 60 % 60), (unsigned long long)up);
    af__put_time(b, af_now_ns());
    af__buf_putc(b, '}');
    af__view_free(v);
    free(al);
    return 0;
}

int af__h_system_status(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    af_gpu_overview ov;
    memset(&ov, 0, sizeof(ov));
    if (s->o.collector)
        af_gpu_collector_overview(s->o.collector, &ov);
    bool running = s->o.collector && af_gpu_collector_running(s->o.collector);
    uint64_t now = af_now_ns();
    bool fresh = ov.timestamp_ns && now - ov.timestamp_ns < 30ull * 1000000000ull;
    af_buf *b = &rs->body;
    af__buf_printf(b,
                   "{\"status\":\"%s\",\"components\":{\"metrics_collector\":\"%s\","
                   "\"websocket_server\":\"healthy\",\"prometheus\":\"%s\",\"dashboard\":"
                   "\"healthy\"},\"active_connections\":%u,\"data_freshness\":{\"last_update\":",
                   running && fresh ? "operational" : "degraded", running ? "healthy" : "down",
                   s->metrics_fd >= 0 ? "healthy" : "disabled", atomic_load(&s->n_clients));
    af__put_time(b, ov.timestamp_ns);
    af__buf_printf(b, ",\"status\":\"%s\"},\"timestamp\":", fresh ? "fresh" : "stale");
    af__put_time(b, now);
    af__buf_putc(b, '}');
    return 0;
}

int af__h_performance(af__req *rq, af__resp *rs)
{
    view *v = calloc(1, sizeof(*v));
    if (!v) {
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    af__view_load(rq->srv, v);
    af_cost_summary cs;
    af_buf tmp;
    af__buf_init(&tmp);
    af__put_cost_summary(rq->srv, &tmp, &cs);
    af__buf_clear(&tmp);
    af__put_performance(rq->srv, &rs->body, v, cs.total_cost);
    af_cost_summary_clear(&cs);
    af__view_free(v);
    return 0;
}

int af__h_performance_efficiency(af__req *rq, af__resp *rs)
{
    view *v = calloc(1, sizeof(*v));
    if (!v) {
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    af__view_load(rq->srv, v);
    af_buf *b = &rs->body;
    double mem_eff = v->mem_total_mb > 0 ? v->mem_used_mb / v->mem_total_mb * 100.0 : 0;
    double thermal = 100.0 - (v->avg_temp - 40.0) * 2.0;
    int hot = 0;
    for (size_t i = 0; i < v->n; i++)
        hot += v->samples[i].temperature >= v->th.temperature_warning;
    int score = v->n ? 100 - 20 * hot : 50;
    af__buf_printf(b, "{\"overall_score\":%d,\"gpu_efficiency\":{", score < 0 ? 0 : score);
    for (size_t i = 0; i < v->n; i++) {
        const af_gpu_sample *g = &v->samples[i];
        if (i)
            af__buf_putc(b, ',');
        af__put_str(b, g->gpu_id);
        af__buf_printf(b, ":%.4f",
                       g->power_draw > 0 ? af__finite_or_zero(g->utilization_gpu / g->power_draw)
                                         : 0);
    }
    af__buf_printf(
        b,
        "},\"power_efficiency\":%.4f,\"memory_efficiency\":%.2f,"
        "\"thermal_efficiency\":%.2f,\"recommendations\":[",
        v->total_power > 0 ? af__finite_or_zero(v->avg_util * (double)v->n / v->total_power) : 0,
        af__finite_or_zero(mem_eff),
        v->n ? af__finite_or_zero(thermal < 0     ? 0
                                  : thermal > 100 ? 100
                                                  : thermal)
             : 0);
    bool first = true;
    if (v->n && v->avg_util < 50.0) {
        af__buf_puts(b, "{\"type\":\"utilization\",\"priority\":\"high\",\"title\":\"Low GPU "
                        "Utilization\",\"description\":\"Consider consolidating workloads to "
                        "improve efficiency\",\"impact\":\"30% cost reduction\"}");
        first = false;
    }
    if (v->n && v->avg_temp >= v->th.temperature_warning)
        af__buf_printf(b,
                       "%s{\"type\":\"thermal\",\"priority\":\"medium\",\"title\":\"High "
                       "Operating Temperature\",\"description\":\"Improve cooling or reduce "
                       "workload intensity\",\"impact\":\"Extended hardware lifespan\"}",
                       first ? "" : ",");
    af__buf_puts(b, "]}");
    af__view_free(v);
    return 0;
}

int af__h_config(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    json_t *root = NULL;
    const af_tracing_config *cfg = af_tracing_config_of(s->o.tracing);
    if (cfg) {
        char *dump = NULL;
        if (af_config_dump_json(cfg, true, &dump) == 0)
            root = json_loads(dump, 0, NULL);
        free(dump);
    }
    if (!root)
        root = json_object();
    json_t *srv = json_pack(
        "{s:s,s:i,s:i,s:s,s:i,s:i,s:i,s:I,s:i,s:i,s:i,s:b,s:s}", "bind_address", s->bind_address,
        "port", s->port, "metrics_port", s->metrics_port, "auth_token",
        s->auth_token ? "[redacted]" : "", "ws_push_interval_ms", (int)s->o.ws_push_interval_ms,
        "max_ws_clients", (int)s->o.max_ws_clients, "ws_queue_depth", (int)s->o.ws_queue_depth,
        "body_limit", (json_int_t)s->o.body_limit, "max_inflight", (int)s->o.max_inflight,
        "workers", (int)s->o.workers, "event_loops", (int)s->n_loops, "load_generator",
        s->o.load_generator, "title", s->title);
    /* The table's server.* keys (from the config the tracing integration keeps) stay; the
     * values the running server actually uses (bound ports, loop count) replace theirs. */
    json_t *table = json_object_get(root, "server");
    if (srv && json_is_object(table)) {
        json_object_update(table, srv);
        json_decref(srv);
    } else if (srv) {
        json_object_set_new(root, "server", srv);
    }
    char *out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    af__resp_json_take(rs, 200, out);
    return 0;
}

int af__h_ws_plain(af__req *rq, af__resp *rs)
{
    (void)rq;
    af__resp_error(rs, 426, "upgrade_required", "/ws speaks WebSocket only");
    rs->headers = "upgrade: websocket\r\nsec-websocket-version: 13\r\n";
    return 0;
}
