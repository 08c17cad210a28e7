/*
 * The route table and the handlers of the JSON API. Every handler runs on the event loop and
 * only touches in-memory component state (each component has its own mutex); the one slow
 * route, inference, queues a job for the worker pool (server.c).
 *
 * Key names follow the original dashboard (docs/upstream-differences.md) wherever it had the
 * field; values come from the components, never from constants.
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

int af__server_submit_job(af__req *rq, af__resp *rs, af__job *j);

#define MAX_ALERTS 256

/* JSON numbers never carry NaN or infinity. */
static double finite_or_zero(double v)
{
    return isfinite(v) ? v : 0.0;
}

static void put_str(af_buf *b, const char *s)
{
    af__buf_json_string(b, s ? s : "", s ? strlen(s) : 0);
}

static void put_time(af_buf *b, uint64_t ns)
{
    if (!ns) {
        af__buf_puts(b, "null");
        return;
    }
    char ts[41];
    ts[0] = '"';
    af__fmt_rfc3339(ns, 9, ts + 1);
    af__buf_append(b, ts, 31); /* quote, 30 characters */
    af__buf_putc(b, '"');
}

/* Appends a JSON text made by another component (NULL: null) and frees it. */
static void put_json_take(af_buf *b, char *json)
{
    af__buf_puts(b, json ? json : "null");
    free(json);
}

static bool component_present(af__resp *rs, const void *component, const char *name)
{
    if (component)
        return true;
    af__resp_error(rs, 503, "unavailable", "the %s is not running in this daemon", name);
    return false;
}

static json_t *parse_object(af__req *rq, af__resp *rs)
{
    json_error_t e;
    json_t *j = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        af__resp_error(rs, 400, "invalid_json",
                       "malformed JSON at line %d, column %d (byte %d): %s", e.line, e.column,
                       e.position, e.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        af__resp_error(rs, 400, "invalid_json", "the body must be a JSON object");
        return NULL;
    }
    return j;
}

/* Typed field readers: false (and a 400) when present with the wrong type. */
static bool get_str(json_t *o, const char *k, const char **out, af__resp *rs)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v)) {
        af__resp_error(rs, 400, "invalid_argument", "\"%s\" must be a string", k);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

/* A string field of the limits table (limits.h): false (and a 400 naming the field and the
 * limit) when present with the wrong type, too long or outside its character class. Runs
 * before the value reaches a component, so a refused value leaves no span attribute, stored
 * entry or metric label behind. */
static bool get_field_as(json_t *o, const char *k, af__field f, const char **out, af__resp *rs)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v)) {
        af__resp_error(rs, 400, "invalid_argument", "\"%s\" must be a string", k);
        return false;
    }
    char err[160];
    if (af__field_check(f, k, json_string_value(v), json_string_length(v), err, sizeof(err)) != 0) {
        af__resp_error(rs, 400, "limit_exceeded", "%s", err);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

static bool get_field(json_t *o, af__field f, const char **out, af__resp *rs)
{
    return get_field_as(o, af__field_limits[f].name, f, out, rs);
}

static bool get_num(json_t *o, const char *k, double lo, double hi, double *out, af__resp *rs)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi ||
        !isfinite(json_number_value(v))) {
        af__resp_error(rs, 400, "invalid_argument", "\"%s\" must be a number between %g and %g", k,
                       lo, hi);
        return false;
    }
    *out = json_number_value(v);
    return true;
}

static bool get_bool(json_t *o, const char *k, bool *out, af__resp *rs)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_boolean(v)) {
        af__resp_error(rs, 400, "invalid_argument", "\"%s\" must be true or false", k);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

/* A write route's parsed request, kept until its change is durable and applied (persist.c):
 * the strings in `u` point into `doc`, which it holds. */
typedef struct write_ctx {
    json_t *doc;
    af_span_context parent;
    char id[AF_GPU_ID_MAX]; /* an id the route made up */
    union {
        af_cost_entry cost;
        af_workload_spec wl;
        af_gpu_spec gpu;
        uint64_t alert_id;
        bool complete;
    } u;
} write_ctx;

static void write_ctx_free(void *p)
{
    write_ctx *c = p;
    json_decref(c->doc);
    free(c);
}

static write_ctx *write_ctx_new(af__req *rq, af__resp *rs, json_t *doc)
{
    write_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        af__resp_error(rs, 500, "internal", "out of memory");
        return NULL;
    }
    c->doc = doc ? json_incref(doc) : NULL;
    c->parent = rq->span_ctx;
    return c;
}

static bool url_arg(af__req *rq, const char *name, char *buf, int len)
{
    size_t qn = strlen(rq->query);
    if (len <= 0)
        return false;
    if (af__http_query_arg(rq->query, qn, name, buf, (size_t)len))
        return true;
    /* Absent, or longer than buf (the gate already refused bad escapes). A value that does not
     * fit must not read as "absent" (a 40-digit hours=0...01 silently became the default):
     * it reads as "", which every strict parse refuses with a 400. */
    if (!strstr(rq->query, name))
        return false;
    char *all = malloc(qn + 1);
    bool present = all && af__http_query_arg(rq->query, qn, name, all, qn + 1);
    free(all);
    if (present)
        buf[0] = '\0';
    return present;
}

/* ---------------------------------------------------------------------------------------- */
/* Derived views shared by several routes.                                                   */

typedef struct view {
    af_gpu_sample *samples; /* sized to the GPU count: a request never allocates more */
    size_t n;
    af_gpu_thresholds th;
    double avg_util, avg_temp, total_power, mem_total_mb, mem_used_mb;
    uint32_t active;
} view;

static void view_load(af_server *s, view *v)
{
    memset(v, 0, sizeof(*v));
    af_gpu_thresholds_init(&v->th);
    if (!s->o.collector)
        return;
    af_gpu_collector_get_thresholds(s->o.collector, &v->th);
    size_t cap = af_gpu_collector_gpu_count(s->o.collector);
    v->samples = cap ? malloc(sizeof(*v->samples) * cap) : NULL;
    if (!v->samples)
        return;
    v->n = af_gpu_collector_latest(s->o.collector, v->samples, cap);
    if (v->n > cap)
        v->n = cap;
    for (size_t i = 0; i < v->n; i++) {
        const af_gpu_sample *g = &v->samples[i];
        v->avg_util += g->utilization_gpu;
        v->avg_temp += g->temperature;
        v->total_power += g->power_draw;
        v->mem_total_mb += (double)g->memory_total_mb;
        v->mem_used_mb += (double)g->memory_used_mb;
        if (g->utilization_gpu > 5.0)
            v->active++;
    }
    if (v->n) {
        v->avg_util /= (double)v->n;
        v->avg_temp /= (double)v->n;
    }
}

static void view_free(view *v)
{
    if (v)
        free(v->samples);
    free(v);
}

static const char *gpu_state(const view *v, double util, double temp)
{
    if (temp >= v->th.temperature_critical)
        return "critical";
    if (temp >= v->th.temperature_warning || util >= v->th.utilization_high)
        return "warning";
    return util > 5.0 ? "active" : "idle";
}

/* clamp(avg util - 2 * degrees above the warning temperature, 0, 100) */
static double efficiency_score(const view *v)
{
    double over = v->avg_temp - v->th.temperature_warning;
    double e = v->avg_util - 2.0 * (over > 0 ? over : 0);
    return finite_or_zero(e < 0 ? 0 : e > 100 ? 100 : e);
}

static void put_system_stats(af_buf *b, const view *v)
{
    af__buf_printf(b,
                   "{\"total_gpus\":%zu,\"active_gpus\":%u,\"average_utilization\":%.2f,"
                   "\"total_memory_gb\":%.3f,\"used_memory_gb\":%.3f,\"average_temperature\":"
                   "%.2f,\"total_power_watts\":%.2f,\"efficiency_score\":%.2f}",
                   v->n, v->active, finite_or_zero(v->avg_util), v->mem_total_mb / 1024.0,
                   v->mem_used_mb / 1024.0, finite_or_zero(v->avg_temp),
                   finite_or_zero(v->total_power), efficiency_score(v));
}

/* The original's CostSummary over the last 24 hours. */
static void put_cost_summary(af_server *s, af_buf *b, af_cost_summary *keep)
{
    af_cost_summary cs;
    memset(&cs, 0, sizeof(cs));
    uint64_t now = af_now_ns();
    if (!s->o.costs ||
        af_cost_summary_get(s->o.costs, NULL, now - 24ull * 3600 * 1000000000ull, 0, &cs) != 0) {
        af__buf_puts(b, "{\"total_cost\":0,\"period\":\"24h\",\"currency\":\"USD\","
                        "\"gpu_hours\":0,\"avg_cost_per_hr\":0}");
        if (keep)
            memset(keep, 0, sizeof(*keep));
        return;
    }
    af__buf_printf(
        b, "{\"total_cost\":%.6f,\"period\":\"24h\",\"currency\":", finite_or_zero(cs.total_cost));
    put_str(b, cs.currency[0] ? cs.currency : "USD");
    af__buf_printf(b, ",\"gpu_hours\":%.6f,\"avg_cost_per_hr\":%.6f,\"entry_count\":%llu}",
                   finite_or_zero(cs.total_gpu_hours), finite_or_zero(cs.avg_cost_per_hour),
                   (unsigned long long)cs.entry_count);
    if (keep)
        *keep = cs;
    else
        af_cost_summary_free(&cs);
}

static const char *alert_level(const af_gpu_alert *a)
{
    return af_gpu_severity_name(a->severity);
}

void af__put_alert(af_buf *b, const af_gpu_alert *a)
{
    af__buf_printf(b,
                   "{\"id\":\"alert-%llu\",\"level\":\"%s\",\"type\":", (unsigned long long)a->id,
                   alert_level(a));
    put_str(b, a->type);
    af__buf_puts(b, ",\"message\":");
    put_str(b, a->message);
    af__buf_puts(b, ",\"source\":");
    put_str(b, a->gpu_id);
    af__buf_printf(b, ",\"value\":%.2f,\"threshold\":%.2f,\"acknowledged\":%s,\"timestamp\":",
                   finite_or_zero(a->value), finite_or_zero(a->threshold),
                   a->acknowledged ? "true" : "false");
    put_time(b, a->timestamp_ns);
    af__buf_putc(b, '}');
}

/* Active alerts: unacknowledged, from the last hour, newest first. */
static size_t active_alerts(af_server *s, af_gpu_alert *out, size_t cap)
{
    if (!s->o.collector)
        return 0;
    uint64_t since = af_now_ns() - 3600ull * 1000000000ull;
    size_t n = af_gpu_collector_alerts(s->o.collector, NULL, since, out, cap);
    if (n > cap)
        n = cap;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!out[i].acknowledged)
            out[k++] = out[i];
    for (size_t i = 0; i < k / 2; i++) { /* newest first */
        af_gpu_alert t = out[i];
        out[i] = out[k - 1 - i];
        out[k - 1 - i] = t;
    }
    return k;
}

static void put_performance(af_server *s, af_buf *b, const view *v, double total_cost)
{
    af_cost_forecast fc;
    memset(&fc, 0, sizeof(fc));
    if (s->o.costs)
        af_cost_forecast_24h(s->o.costs, 0, &fc);
    af__buf_printf(b,
                   "{\"utilization_trend\":%.2f,\"cost_trend\":%.6f,\"efficiency_trend\":%.2f,"
                   "\"predicted_cost_24h\":%.6f,\"optimization_tips\":[",
                   finite_or_zero(v->avg_util), finite_or_zero(fc.trend_per_hour),
                   efficiency_score(v), finite_or_zero(fc.predicted_cost_24h));
    if (v->n && v->avg_util < 50.0) {
        af__buf_printf(b,
                       "{\"type\":\"efficiency\",\"message\":\"GPU utilization is below 50%%. "
                       "Consider consolidating workloads.\",\"impact\":\"high\",\"savings\":%.6f,"
                       "\"action\":\"Redistribute workloads to fewer GPUs\"}",
                       finite_or_zero(total_cost * 0.3));
    }
    af__buf_puts(b, "]}");
}

int af__dashboard_metrics_json(af_server *s, af_buf *b)
{
    view *v = calloc(1, sizeof(*v));
    af_gpu_alert *al = malloc(sizeof(*al) * 64);
    if (!v || !al) {
        view_free(v);
        free(al);
        return -ENOMEM;
    }
    view_load(s, v);
    af__buf_puts(b, "{\"timestamp\":");
    put_time(b, af_now_ns());
    af__buf_puts(b, ",\"gpu_metrics\":{");
    for (size_t i = 0; i < v->n; i++) {
        char *j = NULL;
        af_gpu_sample_json(&v->samples[i], &j);
        if (i)
            af__buf_putc(b, ',');
        put_str(b, v->samples[i].gpu_id);
        af__buf_putc(b, ':');
        put_json_take(b, j);
    }
    af__buf_puts(b, "},\"system_stats\":");
    put_system_stats(b, v);
    af__buf_puts(b, ",\"cost_data\":");
    af_cost_summary cs;
    put_cost_summary(s, b, &cs);
    af__buf_puts(b, ",\"alerts\":[");
    size_t na = active_alerts(s, al, 64);
    for (size_t i = 0; i < na; i++) {
        if (i)
            af__buf_putc(b, ',');
        af__put_alert(b, &al[i]);
    }
    af__buf_puts(b, "],\"performance\":");
    put_performance(s, b, v, cs.total_cost);
    af_cost_summary_free(&cs);
    af__buf_putc(b, '}');
    view_free(v);
    free(al);
    return b->failed ? -ENOMEM : 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Handlers.                                                                                 */

static int h_health(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    af_tracer *ht = af_tracing_tracer_for(s->o.tracing, AF_TRACE_HEALTH_CHECKS);
    af_span hs = af_span_start_child(ht, "observability.health_check", AF_SPAN_KIND_INTERNAL,
                                     &rq->span_ctx, NULL, 0);
    af_buf *b = &rs->body;
    int degraded = 0, down = 0;
    af__buf_puts(b, "{\"components\":{");

    af__buf_puts(b, "\"gpu_scheduler\":");
    if (s->o.scheduler) {
        af_gpu_status g[1];
        size_t n = af_gpu_scheduler_list_gpus(s->o.scheduler, g, 0);
        size_t w = af_gpu_scheduler_list_workloads(s->o.scheduler, NULL, 0);
        af__buf_printf(
            b, "{\"status\":\"%s\",\"gpus\":%zu,\"live_workloads\":%zu,\"strategy\":\"%s\"}",
            n ? "healthy" : "degraded", n, w,
            af_gpu_strategy_name(af_gpu_scheduler_strategy(s->o.scheduler)));
        degraded += n == 0;
    } else {
        af__buf_puts(b, "{\"status\":\"disabled\"}");
    }

    af__buf_puts(b, ",\"metrics_collector\":");
    if (s->o.collector) {
        af_gpu_overview ov;
        af_gpu_collector_overview(s->o.collector, &ov);
        bool running = af_gpu_collector_running(s->o.collector);
        uint64_t age_ms = ov.timestamp_ns && af_now_ns() > ov.timestamp_ns
                              ? (af_now_ns() - ov.timestamp_ns) / 1000000ull
                              : 0;
        bool stale = ov.timestamp_ns == 0 || age_ms > 3ull * ov.collection_interval_ms + 5000;
        const char *st = !running ? "down" : stale ? "degraded" : "healthy";
        down += !running;
        degraded += running && stale;
        af__buf_printf(b, "{\"status\":\"%s\",\"backend\":", st);
        put_str(b, af_gpu_collector_backend_name(s->o.collector));
        af__buf_puts(b, ",\"backend_reason\":");
        put_str(b, af_gpu_collector_backend_reason(s->o.collector));
        af__buf_printf(b,
                       ",\"gpus\":%u,\"healthy_gpus\":%u,\"interval_ms\":%u,"
                       "\"last_sample_age_ms\":%llu}",
                       ov.total_gpus, ov.healthy_gpus, ov.collection_interval_ms,
                       (unsigned long long)age_ms);
    } else {
        af__buf_puts(b, "{\"status\":\"disabled\"}");
    }

    af__buf_puts(b, ",\"model_serving\":");
    if (s->o.serving) {
        af_serving_stats st;
        af_serving_stats_get(s->o.serving, &st);
        bool ok = st.total_models > 0 && st.available_instances > 0;
        degraded += !ok;
        af__buf_printf(b,
                       "{\"status\":\"%s\",\"models\":%u,\"instances\":%u,"
                       "\"available_instances\":%u,\"pending_requests\":%u,\"in_flight\":%u,"
                       "\"requests\":%llu,\"errors\":%llu,\"overloaded\":%llu}",
                       ok ? "healthy" : "degraded", st.total_models, st.total_instances,
                       st.available_instances, st.pending_requests, st.in_flight,
                       (unsigned long long)st.requests, (unsigned long long)st.errors,
                       (unsigned long long)st.overloaded);
    } else {
        af__buf_puts(b, "{\"status\":\"disabled\"}");
    }

    af__buf_puts(b, ",\"cost_tracking\":");
    if (s->o.costs) {
        af_cost_stats cst;
        af_cost_stats_get(s->o.costs, &cst);
        af__buf_printf(b,
                       "{\"status\":\"healthy\",\"entries\":%llu,\"buckets\":%llu,"
                       "\"recorded\":%llu}",
                       (unsigned long long)cst.entries, (unsigned long long)cst.buckets,
                       (unsigned long long)cst.recorded);
    } else {
        af__buf_puts(b, "{\"status\":\"disabled\"}");
    }

    af__buf_printf(b,
                   ",\"websocket\":{\"status\":\"healthy\",\"clients\":%u,\"max_clients\":%u},"
                   "\"prometheus\":{\"status\":\"%s\",\"port\":%d}",
                   atomic_load(&s->n_clients), s->o.max_ws_clients,
                   s->metrics_fd >= 0 ? "healthy" : "disabled", s->metrics_port);
    af__buf_puts(b, ",\"trace_store\":");
    if (s->o.traces)
        af__buf_printf(b, "{\"status\":\"healthy\",\"spans\":%zu,\"bytes\":%zu,\"max_bytes\":%zu}",
                       af_trace_store_span_count(s->o.traces), af_trace_store_bytes(s->o.traces),
                       af_trace_store_max_bytes(s->o.traces));
    else
        af__buf_puts(b, "{\"status\":\"disabled\"}");

    af__buf_puts(b, ",\"store\":");
    if (s->o.store) {
        af_store_health sh;
        af_store_health_get(s->o.store, &sh);
        uint64_t now = af_now_ns();
        /* Degraded while the last write failed (disk full, I/O error): reads still work. */
        bool failing = sh.last_error[0] != '\0';
        degraded += failing;
        af__buf_printf(b, "{\"status\":\"%s\",\"backend\":", failing ? "degraded" : "healthy");
        put_str(b, sh.backend);
        af__buf_puts(b, ",\"path\":");
        put_str(b, sh.path);
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
            put_str(b, sh.last_error);
        else
            af__buf_puts(b, "null");
        af__buf_putc(b, '}');
    } else {
        af__buf_puts(b, "{\"status\":\"disabled\",\"persist\":false}");
    }

    af__buf_puts(b, ",\"tracing\":");
    af_tracing_health th;
    af_tracing_health_get(s->o.tracing, &th);
    degraded += th.status == AF_HEALTH_DEGRADED;
    put_json_take(b, af_tracing_health_to_json(s->o.tracing, &th));

    const char *overall = down ? "unhealthy" : degraded ? "degraded" : "healthy";
    af__buf_printf(b,
                   "},\"status\":\"%s\",\"version\":\"%s\",\"uptime_seconds\":%.3f,"
                   "\"timestamp\":",
                   overall, AF_VERSION_STRING,
                   (double)(af_monotonic_ns() - s->started_mono_ns) / 1e9);
    put_time(b, af_now_ns());
    af__buf_putc(b, '}');
    rs->status = down ? 503 : 200;
    af_span_set_string(hs, "health.status", overall);
    af_span_end(hs);
    return 0;
}

static int h_metrics(af__req *rq, af__resp *rs)
{
    if (af__dashboard_metrics_json(rq->srv, &rs->body) != 0)
        af__resp_error(rs, 500, "internal", "out of memory");
    return 0;
}

static bool gpus_reserve(af__gpus_cache *c, size_t n)
{
    if (n <= c->cap)
        return true;
    af__gpu_row *r = realloc(c->rows, n * sizeof(*r));
    if (r)
        c->rows = r;
    af__gpu_row *sc = realloc(c->scratch, n * sizeof(*sc));
    if (sc)
        c->scratch = sc;
    af_gpu_sample *sa = realloc(c->samples, n * sizeof(*sa));
    if (sa)
        c->samples = sa;
    af_gpu_status *st = realloc(c->status, n * sizeof(*st));
    if (st)
        c->status = st;
    if (!r || !sc || !sa || !st)
        return false;
    c->cap = n;
    return true;
}

/* Fills c->scratch from the components; returns the row count. */
static size_t gpus_load_rows(af_server *s, af__gpus_cache *c, size_t nc, size_t ns)
{
    view v; /* only the thresholds: gpu_state reads nothing else */
    memset(&v, 0, sizeof(v));
    af_gpu_thresholds_init(&v.th);
    size_t n = 0, nst = 0;
    if (nc) {
        af_gpu_collector_get_thresholds(s->o.collector, &v.th);
        n = af_gpu_collector_latest(s->o.collector, c->samples, nc);
        n = n > nc ? nc : n;
    }
    if (ns) {
        nst = af_gpu_scheduler_list_gpus(s->o.scheduler, c->status, ns);
        nst = nst > ns ? ns : nst;
    }
    size_t rows = 0;
    for (size_t i = 0; i < n; i++) {
        const af_gpu_sample *g = &c->samples[i];
        const af_gpu_status *sg = NULL;
        for (size_t k = 0; k < nst; k++)
            if (strcmp(c->status[k].id, g->gpu_id) == 0)
                sg = &c->status[k];
        af__gpu_row *r = &c->scratch[rows++];
        memset(r, 0, sizeof(*r));
        af__strlcpy(r->id, g->gpu_id, sizeof(r->id));
        af__strlcpy(r->name, g->name, sizeof(r->name));
        r->state = gpu_state(&v, g->utilization_gpu, g->temperature);
        r->utilization = finite_or_zero(g->utilization_gpu);
        r->temperature = finite_or_zero(g->temperature);
        r->power = finite_or_zero(g->power_draw);
        r->memory_total_mb = g->memory_total_mb;
        r->memory_used_mb = g->memory_used_mb;
        r->updated_ns = g->timestamp_ns;
        r->workloads = sg ? sg->workload_count : 0;
        r->available = !sg || sg->available;
    }
    /* GPUs registered through the API that no collector measures. */
    for (size_t k = 0; k < nst; k++) {
        const af_gpu_status *g = &c->status[k];
        bool seen = false;
        for (size_t i = 0; i < n && !seen; i++)
            seen = strcmp(g->id, c->samples[i].gpu_id) == 0;
        if (seen)
            continue;
        af__gpu_row *r = &c->scratch[rows++];
        memset(r, 0, sizeof(*r));
        af__strlcpy(r->id, g->id, sizeof(r->id));
        af__strlcpy(r->name, g->name, sizeof(r->name));
        r->state = gpu_state(&v, g->utilization, g->temperature);
        r->utilization = finite_or_zero(g->utilization);
        r->temperature = finite_or_zero(g->temperature);
        r->power = finite_or_zero(g->power_usage);
        r->memory_total_mb = g->memory_total_mb;
        r->memory_used_mb = g->memory_used_mb;
        r->updated_ns = g->last_metrics_update_ns;
        r->workloads = g->workload_count;
        r->available = g->available;
    }
    return rows;
}

static void gpus_render(af__gpus_cache *c)
{
    af_buf *b = &c->body;
    af__buf_reset(b);
    af__buf_puts(b, "{\"gpus\":[");
    for (size_t i = 0; i < c->n_rows; i++) {
        const af__gpu_row *r = &c->rows[i];
        if (i)
            af__buf_putc(b, ',');
        af__buf_puts(b, "{\"id\":");
        put_str(b, r->id);
        af__buf_puts(b, ",\"name\":");
        put_str(b, r->name);
        af__buf_printf(b,
                       ",\"status\":\"%s\",\"utilization\":%.2f,\"temperature\":%.2f,"
                       "\"memory_total\":%llu,\"memory_used\":%llu,\"power_draw\":%.2f,"
                       "\"workloads\":%u,\"available\":%s,\"last_updated\":",
                       r->state, r->utilization, r->temperature,
                       (unsigned long long)r->memory_total_mb,
                       (unsigned long long)r->memory_used_mb, r->power, r->workloads,
                       r->available ? "true" : "false");
        put_time(b, r->updated_ns);
        af__buf_putc(b, '}');
    }
    af__buf_printf(b, "],\"total\":%zu,\"timestamp\":", c->n_rows);
}

/* The list is read far more often than the collector samples (once a second by default), so
 * the body is kept and re-rendered only when the rows it shows changed: a request costs the
 * component reads, one memcmp and one copy. */
static int h_gpus(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    af__gpus_cache *c = &rq->loop->gpus;
    size_t nc = s->o.collector ? af_gpu_collector_gpu_count(s->o.collector) : 0;
    size_t ns = s->o.scheduler ? af_gpu_scheduler_list_gpus(s->o.scheduler, NULL, 0) : 0;
    if (!gpus_reserve(c, nc + ns + 1)) {
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    size_t n = gpus_load_rows(s, c, nc, ns);
    if (!c->valid || n != c->n_rows || memcmp(c->rows, c->scratch, n * sizeof(*c->rows)) != 0) {
        af__gpu_row *t = c->rows;
        c->rows = c->scratch;
        c->scratch = t;
        c->n_rows = n;
        gpus_render(c);
        c->valid = !c->body.failed;
    }
    af_buf *b = &rs->body;
    af__buf_append(b, c->body.data, c->body.len);
    put_time(b, af_now_ns());
    af__buf_putc(b, '}');
    if (!c->valid)
        af__resp_error(rs, 500, "internal", "out of memory");
    return 0;
}

void af__gpus_cache_free(af__gpus_cache *c)
{
    free(c->rows);
    free(c->scratch);
    free(c->samples);
    free(c->status);
    af__buf_clear(&c->body);
    memset(c, 0, sizeof(*c));
}

static void put_gpu_status(af_buf *b, const af_gpu_status *g)
{
    af__buf_puts(b, "{\"id\":");
    put_str(b, g->id);
    af__buf_puts(b, ",\"name\":");
    put_str(b, g->name);
    af__buf_printf(b,
                   ",\"memory_total_mb\":%llu,\"memory_used_mb\":%llu,\"memory_free_mb\":%llu,"
                   "\"utilization\":%.2f,\"temperature\":%.2f,\"power_usage\":%.2f,"
                   "\"available\":%s,\"workload_count\":%u}",
                   (unsigned long long)g->memory_total_mb, (unsigned long long)g->memory_used_mb,
                   (unsigned long long)g->memory_free_mb, finite_or_zero(g->utilization),
                   finite_or_zero(g->temperature), finite_or_zero(g->power_usage),
                   g->available ? "true" : "false", g->workload_count);
}

static void apply_gpu_register(af_server *s, void *ctx, af__resp *rs)
{
    const af_gpu_spec *g = &((write_ctx *)ctx)->u.gpu;
    char err[256] = "";
    int rc = af_gpu_scheduler_register_gpu(s->o.scheduler, g, err, sizeof(err));
    af_gpu_status st;
    if (rc != 0) {
        af__resp_from_errno(rs, rc, err);
        /* The saved row must say what memory holds, not what was refused. */
        if (s->o.store && af_gpu_scheduler_get_gpu(s->o.scheduler, g->id, &st) == 0) {
            af_store_op op = {.kind = AF_STORE_GPU};
            op.u.gpu = (af_store_gpu){st.id,
                                      st.name,
                                      st.memory_total_mb,
                                      st.memory_used_mb - st.memory_reserved_mb,
                                      st.utilization,
                                      st.temperature,
                                      st.power_usage,
                                      st.available};
            af_store_submit(s->o.store, &op, NULL, NULL);
        }
    } else if (af_gpu_scheduler_get_gpu(s->o.scheduler, g->id, &st) == 0) {
        rs->status = 201;
        put_gpu_status(&rs->body, &st);
        af__schedule_pass(s);
        af__system_update(s, "gpu_registered", g->id);
    }
}

static int h_gpu_register(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    if (!component_present(rs, s->o.scheduler, "GPU scheduler"))
        return 0;
    json_t *o = parse_object(rq, rs);
    if (!o)
        return 0;
    int arc = 0;
    af_gpu_spec g = {.available = true};
    double mem = 0, used = 0;
    if (get_field(o, AF__F_GPU_ID, &g.id, rs) && get_field(o, AF__F_GPU_NAME, &g.name, rs) &&
        get_num(o, "memory_total_mb", 0, 1e9, &mem, rs) &&
        get_num(o, "memory_used_mb", 0, 1e9, &used, rs) &&
        get_num(o, "utilization", 0, 100, &g.utilization, rs) &&
        get_num(o, "temperature", -50, 200, &g.temperature, rs) &&
        get_num(o, "power_usage", 0, 1e5, &g.power_usage, rs) &&
        get_bool(o, "available", &g.available, rs)) {
        g.memory_total_mb = (uint64_t)mem;
        g.memory_used_mb = (uint64_t)used;
        write_ctx *c;
        /* The scheduler's own checks, before the commit, in its words. */
        if (!g.id || !*g.id || strlen(g.id) >= AF_GPU_ID_MAX) {
            af__resp_error(rs, 400, "invalid_argument", "GPU ID cannot be empty");
        } else if (!g.memory_total_mb) {
            af__resp_error(rs, 400, "invalid_argument", "GPU memory total must be greater than 0");
        } else if ((c = write_ctx_new(rq, rs, o))) {
            c->u.gpu = g;
            af_store_op op = {.kind = AF_STORE_GPU};
            op.u.gpu =
                (af_store_gpu){g.id,          g.name,        g.memory_total_mb, g.memory_used_mb,
                               g.utilization, g.temperature, g.power_usage,     g.available};
            arc = af__commit(rq, rs, &op, apply_gpu_register, c, write_ctx_free);
        }
    }
    json_decref(o);
    return arc;
}

static bool gpu_sample(af__req *rq, af__resp *rs, af_gpu_sample *g)
{
    if (!component_present(rs, rq->srv->o.collector, "metrics collector"))
        return false;
    if (af_gpu_collector_latest_for(rq->srv->o.collector, rq->params[0], g) != 0) {
        af__resp_error(rs, 404, "not_found", "GPU not found: %s", rq->params[0]);
        return false;
    }
    return true;
}

static int h_gpu_metrics(af__req *rq, af__resp *rs)
{
    af_gpu_sample g;
    if (!gpu_sample(rq, rs, &g))
        return 0;
    char *j = NULL;
    af_gpu_sample_json(&g, &j);
    af__resp_json_take(rs, 200, j);
    return 0;
}

static int h_gpu_processes(af__req *rq, af__resp *rs)
{
    af_gpu_sample g;
    if (!gpu_sample(rq, rs, &g))
        return 0;
    af_gpu_process p[AF_GPU_MAX_PROCESSES];
    size_t n = af_gpu_collector_processes(rq->srv->o.collector, g.gpu_id, p, AF_GPU_MAX_PROCESSES);
    if (n > AF_GPU_MAX_PROCESSES)
        n = AF_GPU_MAX_PROCESSES;
    af_buf *b = &rs->body;
    af__buf_puts(b, "{\"gpu_id\":");
    put_str(b, g.gpu_id);
    af__buf_puts(b, ",\"processes\":[");
    for (size_t i = 0; i < n; i++) {
        af__buf_printf(b, "%s{\"pid\":%u,\"name\":", i ? "," : "", p[i].pid);
        put_str(b, p[i].process_name);
        af__buf_printf(b, ",\"memory_used\":%llu,\"type\":\"%c\"}",
                       (unsigned long long)p[i].memory_used_mb, p[i].type ? p[i].type : 'C');
    }
    af__buf_printf(b, "],\"count\":%zu,\"timestamp\":", n);
    put_time(b, g.timestamp_ns);
    af__buf_putc(b, '}');
    return 0;
}

static int h_gpu_history(af__req *rq, af__resp *rs)
{
    af_gpu_sample g;
    if (!gpu_sample(rq, rs, &g))
        return 0;
    char arg[32];
    double hours = 1;
    if (url_arg(rq, "hours", arg, sizeof(arg))) {
        if (af__parse_decimal(arg, &hours) != 0 || !(hours > 0) || hours > 24 * 30) {
            af__resp_error(rs, 400, "invalid_argument",
                           "query parameter hours: a decimal number in (0, 720]");
            return 0;
        }
    }
    uint64_t since = af_now_ns() - (uint64_t)(hours * 3600e9);
    enum { CAP = 1000 };
    af_gpu_sample *h = malloc(sizeof(*h) * CAP);
    if (!h) {
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    size_t n = af_gpu_collector_history(rq->srv->o.collector, g.gpu_id, since, h, CAP);
    if (n > CAP)
        n = CAP;
    af_buf *b = &rs->body;
    af__buf_puts(b, "{\"gpu_id\":");
    put_str(b, g.gpu_id);
    af__buf_puts(b, ",\"since\":");
    put_time(b, since);
    af__buf_puts(b, ",\"history\":[");
    for (size_t i = 0; i < n; i++) {
        af__buf_puts(b, i ? ",{\"timestamp\":" : "{\"timestamp\":");
        put_time(b, h[i].timestamp_ns);
        af__buf_printf(b,
                       ",\"utilization\":%.2f,\"temperature\":%.2f,\"memory_used\":%llu,"
                       "\"power_draw\":%.2f}",
                       finite_or_zero(h[i].utilization_gpu), finite_or_zero(h[i].temperature),
                       (unsigned long long)h[i].memory_used_mb, finite_or_zero(h[i].power_draw));
    }
    af__buf_printf(b, "],\"count\":%zu}", n);
    free(h);
    return 0;
}

static int h_gpu_stats(af__req *rq, af__resp *rs)
{
    af_gpu_sample g;
    if (!gpu_sample(rq, rs, &g))
        return 0;
    af_gpu_stats st;
    int rc = af_gpu_collector_stats(rq->srv->o.collector, g.gpu_id, 0, &st);
    if (rc != 0) {
        af__resp_from_errno(rs, rc, "no statistics available");
        return 0;
    }
    char *j = NULL;
    af_gpu_stats_json(&st, &j);
    af__resp_json_take(rs, 200, j);
    return 0;
}

static int h_gpu_health(af__req *rq, af__resp *rs)
{
    af_gpu_sample g;
    if (!gpu_sample(rq, rs, &g))
        return 0;
    af_gpu_health h;
    int rc = af_gpu_collector_health(rq->srv->o.collector, g.gpu_id, &h);
    if (rc != 0) {
        af__resp_from_errno(rs, rc, "no health data yet");
        return 0;
    }
    char *j = NULL;
    af_gpu_health_json(&h, &j);
    af__resp_json_take(rs, 200, j);
    return 0;
}

static int h_system_stats(af__req *rq, af__resp *rs)
{
    view *v = calloc(1, sizeof(*v));
    if (!v) {
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    view_load(rq->srv, v);
    put_system_stats(&rs->body, v);
    view_free(v);
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

static int h_system_overview(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    view *v = calloc(1, sizeof(*v));
    af_gpu_alert *al = malloc(sizeof(*al) * MAX_ALERTS);
    if (!v || !al) {
        view_free(v);
        free(al);
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    view_load(s, v);
    af_buf *b = &rs->body;
    af__buf_puts(b, "{\"system_stats\":");
    put_system_stats(b, v);
    af__buf_puts(b, ",\"health_status\":");
    put_health_status(b, v);
    af__buf_puts(b, ",\"cost_summary\":");
    af_cost_summary cs;
    put_cost_summary(s, b, &cs);
    af__buf_printf(b, ",\"active_alerts\":%zu,\"performance\":", active_alerts(s, al, MAX_ALERTS));
    put_performance(s, b, v, cs.total_cost);
    af_cost_summary_free(&cs);
    uint64_t up = (af_monotonic_ns() - s->started_mono_ns) / 1000000000ull;
    af__buf_printf(b,
                   ",\"uptime\":\"%llu days, %llu hours, %llu minutes\",\"uptime_seconds\":%llu,"
                   "\"last_updated\":",
                   (unsigned long long)(up / 86400), (unsigned long long)(up / 3600 % 24),
                   (unsigned long long)(up / 60 % 60), (unsigned long long)up);
    put_time(b, af_now_ns());
    af__buf_putc(b, '}');
    view_free(v);
    free(al);
    return 0;
}

static int h_system_status(af__req *rq, af__resp *rs)
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
    put_time(b, ov.timestamp_ns);
    af__buf_printf(b, ",\"status\":\"%s\"},\"timestamp\":", fresh ? "fresh" : "stale");
    put_time(b, now);
    af__buf_putc(b, '}');
    return 0;
}

static int h_costs(af__req *rq, af__resp *rs)
{
    put_cost_summary(rq->srv, &rs->body, NULL);
    return 0;
}

static void apply_cost(af_server *s, void *ctx, af__resp *rs)
{
    write_ctx *c = ctx;
    const af_cost_entry *e = &c->u.cost;
    int rc = af_cost_record_saved(s->o.costs, &c->parent, e);
    if (rc != 0) {
        af__resp_from_errno(rs, rc, "invalid cost entry");
        return;
    }
    rs->status = 201;
    af__buf_puts(&rs->body, "{\"status\":\"recorded\",\"id\":");
    put_str(&rs->body, e->id);
    af__buf_puts(&rs->body, ",\"operation\":");
    put_str(&rs->body, e->operation);
    af__buf_printf(&rs->body, ",\"cost\":%.6f}", e->cost);
}

static int h_cost_record(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    if (!component_present(rs, s->o.costs, "cost tracker"))
        return 0;
    json_t *o = parse_object(rq, rs);
    if (!o)
        return 0;
    int arc = 0;
    af_cost_entry e = {0};
    double dur_ms = 0, tokens = 0;
    if (get_field(o, AF__F_COST_ID, &e.id, rs) &&
        get_field(o, AF__F_COST_OPERATION, &e.operation, rs) &&
        get_field(o, AF__F_COST_MODEL_ID, &e.model_id, rs) &&
        get_field(o, AF__F_COST_CURRENCY, &e.currency, rs) &&
        get_num(o, "duration_ms", 0, 1e12, &dur_ms, rs) &&
        get_num(o, "tokens_used", 0, 9e15, &tokens, rs) &&
        get_num(o, "gpu_hours", 0, 1e9, &e.gpu_hours, rs) &&
        get_num(o, "cost", 0, 1e12, &e.cost, rs)) {
        write_ctx *c;
        if (!e.operation || !*e.operation) {
            af__resp_error(rs, 400, "invalid_argument", "\"operation\" is required");
        } else if ((c = write_ctx_new(rq, rs, o))) {
            e.duration_ns = (uint64_t)(dur_ms * 1e6);
            e.tokens_used = (int64_t)tokens;
            /* Everything the tracker would fill in is fixed now, so the saved entry and the
             * one in memory are the same entry. */
            if (!e.id || !*e.id) {
                af_cost_reserve_id(s->o.costs, c->id, sizeof(c->id));
                e.id = c->id;
            }
            e.timestamp_ns = af_now_ns();
            c->u.cost = e;
            af_store_op op = {.kind = AF_STORE_COST};
            op.u.cost = (af_store_cost){e.id,        e.operation,   e.model_id ? e.model_id : "",
                                        e.currency,  e.duration_ns, e.tokens_used,
                                        e.gpu_hours, e.cost,        e.timestamp_ns};
            arc = af__commit(rq, rs, &op, apply_cost, c, write_ctx_free);
        }
    }
    json_decref(o);
    return arc;
}

static void put_groups(af_buf *b, const af_cost_group *g, size_t n)
{
    af__buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            af__buf_putc(b, ',');
        put_str(b, g[i].name);
        af__buf_printf(b, ":{\"cost\":%.6f,\"gpu_hours\":%.6f,\"tokens\":%lld,\"count\":%llu}",
                       finite_or_zero(g[i].cost), finite_or_zero(g[i].gpu_hours),
                       (long long)g[i].tokens, (unsigned long long)g[i].count);
    }
    af__buf_putc(b, '}');
}

static int h_costs_summary(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    if (!component_present(rs, s->o.costs, "cost tracker"))
        return 0;
    af_buf *b = &rs->body;
    af__buf_puts(b, "{\"current_period\":");
    af_cost_summary cs;
    put_cost_summary(s, b, &cs);
    af__buf_puts(b, ",\"by_operation\":");
    put_groups(b, cs.by_operation, cs.n_by_operation);
    af__buf_puts(b, ",\"by_model\":");
    put_groups(b, cs.by_model, cs.n_by_model);
    af_cost_summary_free(&cs);
    /* Seven real calendar days (UTC), oldest first. */
    af__buf_puts(b, ",\"daily_breakdown\":[");
    uint64_t day = 86400ull * 1000000000ull, now = af_now_ns();
    uint64_t today = now / day * day;
    for (int i = 6; i >= 0; i--) {
        uint64_t start = today - (uint64_t)i * day;
        af_cost_summary d;
        double cost = 0;
        if (af_cost_summary_get(s->o.costs, NULL, start, start + day, &d) == 0) {
            cost = d.total_cost;
            af_cost_summary_free(&d);
        }
        char ts[40];
        af__fmt_rfc3339(start, 9, ts);
        ts[10] = '\0';
        af__buf_printf(b, "%s{\"date\":\"%s\",\"cost\":%.6f}", i == 6 ? "" : ",", ts,
                       finite_or_zero(cost));
    }
    af__buf_puts(b, "]}");
    return 0;
}

static int h_costs_forecast(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    if (!component_present(rs, s->o.costs, "cost tracker"))
        return 0;
    af_cost_forecast f;
    int rc = af_cost_forecast_24h(s->o.costs, 0, &f);
    if (rc != 0) {
        af__resp_from_errno(rs, rc, "forecast failed");
        return 0;
    }
    /* Beyond 24 h the trend is not trusted: the current rate is held flat. */
    double rate = f.current_rate_per_hour > 0 ? f.current_rate_per_hour : 0;
    af__buf_printf(&rs->body,
                   "{\"next_24h\":%.6f,\"next_7_days\":%.6f,\"next_30_days\":%.6f,"
                   "\"current_rate_per_hour\":%.6f,\"trend_per_hour\":%.6f,\"window_hours\":%.3f,"
                   "\"slots\":%u,\"based_on\":\"least-squares fit of the hourly cost rate over "
                   "the last %.1f hours\"}",
                   finite_or_zero(f.predicted_cost_24h),
                   finite_or_zero(f.predicted_cost_24h + rate * 144.0),
                   finite_or_zero(f.predicted_cost_24h + rate * 696.0),
                   finite_or_zero(f.current_rate_per_hour), finite_or_zero(f.trend_per_hour),
                   finite_or_zero(f.window_hours), f.slots, finite_or_zero(f.window_hours));
    return 0;
}

static int h_alerts(af__req *rq, af__resp *rs)
{
    af_gpu_alert *al = malloc(sizeof(*al) * MAX_ALERTS);
    if (!al) {
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    size_t n = active_alerts(rq->srv, al, MAX_ALERTS);
    af__buf_putc(&rs->body, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            af__buf_putc(&rs->body, ',');
        af__put_alert(&rs->body, &al[i]);
    }
    af__buf_putc(&rs->body, ']');
    free(al);
    return 0;
}

static void apply_alert_resolve(af_server *s, void *ctx, af__resp *rs)
{
    uint64_t id = ((write_ctx *)ctx)->u.alert_id;
    char name[40];
    snprintf(name, sizeof(name), "alert-%llu", (unsigned long long)id);
    if (af_gpu_collector_ack_alert(s->o.collector, id) != 0) {
        af__resp_error(rs, 404, "not_found", "alert %s not found", name);
        return;
    }
    af__buf_printf(&rs->body, "{\"id\":\"%s\",\"status\":\"resolved\"}", name);
    af__system_update(s, "alert_resolved", name);
}

static int h_alert_resolve(af__req *rq, af__resp *rs)
{
    if (!component_present(rs, rq->srv->o.collector, "metrics collector"))
        return 0;
    const char *p = rq->params[0];
    if (strncmp(p, "alert-", 6) == 0)
        p += 6;
    uint64_t id;
    if (af__parse_u64(p, UINT64_MAX, &id) != 0) {
        af__resp_error(rs, 400, "invalid_argument",
                       "path parameter id: alert-<n> with n a decimal number in 0..%llu",
                       (unsigned long long)UINT64_MAX);
        return 0;
    }
    write_ctx *c = write_ctx_new(rq, rs, NULL);
    if (!c)
        return 0;
    c->u.alert_id = id;
    af_store_op op = {.kind = AF_STORE_ALERT_ACK};
    op.u.alert.id = id;
    return af__commit(rq, rs, &op, apply_alert_resolve, c, write_ctx_free);
}

static int h_alerts_summary(af__req *rq, af__resp *rs)
{
    af_gpu_alert *al = malloc(sizeof(*al) * MAX_ALERTS);
    if (!al) {
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    size_t n = active_alerts(rq->srv, al, MAX_ALERTS);
    size_t by[3] = {0};
    for (size_t i = 0; i < n; i++)
        by[al[i].severity <= AF_GPU_CRITICAL ? al[i].severity : 0]++;
    af_buf *b = &rs->body;
    af__buf_printf(b,
                   "{\"total_alerts\":%zu,\"critical_count\":%zu,\"warning_count\":%zu,"
                   "\"info_count\":%zu,\"recent_alerts\":[",
                   n, by[AF_GPU_CRITICAL], by[AF_GPU_WARNING], by[AF_GPU_HEALTHY]);
    for (size_t i = 0; i < n && i < 5; i++) {
        if (i)
            af__buf_putc(b, ',');
        af__put_alert(b, &al[i]);
    }
    af__buf_puts(b, "],\"top_sources\":[");
    /* Count per source (GPU), in order of first appearance. */
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        bool earlier = false;
        for (size_t k = 0; k < i && !earlier; k++)
            earlier = strcmp(al[k].gpu_id, al[i].gpu_id) == 0;
        if (earlier)
            continue;
        size_t c = 0;
        for (size_t k = i; k < n; k++)
            c += strcmp(al[k].gpu_id, al[i].gpu_id) == 0;
        if (!first)
            af__buf_putc(b, ',');
        first = false;
        af__buf_puts(b, "{\"source\":");
        put_str(b, al[i].gpu_id);
        af__buf_printf(b, ",\"count\":%zu}", c);
    }
    af__buf_puts(b, "]}");
    free(al);
    return 0;
}

static int h_performance(af__req *rq, af__resp *rs)
{
    view *v = calloc(1, sizeof(*v));
    if (!v) {
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    view_load(rq->srv, v);
    af_cost_summary cs;
    af_buf tmp;
    af__buf_init(&tmp);
    put_cost_summary(rq->srv, &tmp, &cs);
    af__buf_clear(&tmp);
    put_performance(rq->srv, &rs->body, v, cs.total_cost);
    af_cost_summary_free(&cs);
    view_free(v);
    return 0;
}

static int h_performance_efficiency(af__req *rq, af__resp *rs)
{
    view *v = calloc(1, sizeof(*v));
    if (!v) {
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    view_load(rq->srv, v);
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
        put_str(b, g->gpu_id);
        af__buf_printf(b, ":%.4f",
                       g->power_draw > 0 ? finite_or_zero(g->utilization_gpu / g->power_draw) : 0);
    }
    af__buf_printf(b,
                   "},\"power_efficiency\":%.4f,\"memory_efficiency\":%.2f,"
                   "\"thermal_efficiency\":%.2f,\"recommendations\":[",
                   v->total_power > 0 ? finite_or_zero(v->avg_util * (double)v->n / v->total_power)
                                      : 0,
                   finite_or_zero(mem_eff),
                   v->n ? finite_or_zero(thermal < 0     ? 0
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
    view_free(v);
    return 0;
}

static void put_workload(af_buf *b, const af_workload_info *w)
{
    af__buf_puts(b, "{\"id\":");
    put_str(b, w->id);
    af__buf_puts(b, ",\"name\":");
    put_str(b, w->name);
    af__buf_printf(b,
                   ",\"priority\":%d,\"memory_required_mb\":%llu,\"estimated_time_ms\":%llu,"
                   "\"exclusive\":%s,\"status\":\"%s\",\"assigned_gpu\":",
                   w->priority, (unsigned long long)w->memory_required_mb,
                   (unsigned long long)w->estimated_time_ms, w->exclusive ? "true" : "false",
                   af_workload_status_name(w->status));
    if (w->assigned_gpu[0])
        put_str(b, w->assigned_gpu);
    else
        af__buf_puts(b, "null");
    af__buf_puts(b, ",\"submitted_at\":");
    put_time(b, w->submitted_ns);
    af__buf_puts(b, ",\"started_at\":");
    put_time(b, w->started_ns);
    af__buf_puts(b, ",\"completed_at\":");
    put_time(b, w->completed_ns);
    af__buf_printf(b, ",\"queue_wait_ms\":%llu,\"pending_reason\":\"%s\"",
                   (unsigned long long)w->queue_wait_ms, af_pending_reason_name(w->pending_reason));
    if (w->failure[0]) {
        af__buf_puts(b, ",\"failure\":");
        put_str(b, w->failure);
    }
    af__buf_putc(b, '}');
}

int af__schedule_pass(af_server *s)
{
    if (!s->o.scheduler)
        return 0;
    af_span_context sc;
    af_context_current(&sc);
    uint64_t t0 = af_monotonic_ns();
    size_t placed = 0;
    af_gpu_scheduler_schedule(s->o.scheduler, &placed);
    double secs = (double)(af_monotonic_ns() - t0) / 1e9;
    af_gpu_utilization u;
    memset(&u, 0, sizeof(u));
    size_t pending = 0;
    /* Queue-time observations for what was just placed. */
    enum { CAP = 512 };
    af_workload_info *w = placed ? malloc(sizeof(*w) * CAP) : NULL;
    size_t n = w ? af_gpu_scheduler_list_workloads(s->o.scheduler, w, CAP) : 0;
    if (n > CAP)
        n = CAP;
    uint64_t since = af_now_ns() - (uint64_t)(secs * 1e9) - 1000000ull;
    for (size_t i = 0; i < n; i++) {
        if (w[i].status == AF_WORKLOAD_PENDING)
            pending++;
        else if (w[i].status == AF_WORKLOAD_RUNNING && w[i].started_ns >= since)
            af__metrics_workload(s, w[i].priority, AF_WORKLOAD_RUNNING, &w[i], &sc);
    }
    free(w);
    af__metrics_schedule(s, af_gpu_scheduler_strategy(s->o.scheduler), secs, placed, pending, &sc);
    if (placed)
        af__system_update(s, "workloads_scheduled", NULL);
    return (int)placed;
}

static int h_workloads(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    if (!component_present(rs, s->o.scheduler, "GPU scheduler"))
        return 0;
    /* Every live workload: sized by the count, so nothing is cut silently. */
    size_t cap = af_gpu_scheduler_list_workloads(s->o.scheduler, NULL, 0) + 1;
    af_workload_info *w = malloc(sizeof(*w) * cap);
    if (!w) {
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    size_t n = af_gpu_scheduler_list_workloads(s->o.scheduler, w, cap);
    size_t shown = n > cap ? cap : n;
    af_buf *b = &rs->body;
    af__buf_puts(b, "{\"workloads\":[");
    size_t pending = 0, running = 0;
    for (size_t i = 0; i < shown; i++) {
        if (i)
            af__buf_putc(b, ',');
        put_workload(b, &w[i]);
        pending += w[i].status == AF_WORKLOAD_PENDING;
        running += w[i].status == AF_WORKLOAD_RUNNING;
    }
    af__buf_printf(b, "],\"total\":%zu,\"pending\":%zu,\"running\":%zu,\"strategy\":\"%s\"}", n,
                   pending, running,
                   af_gpu_strategy_name(af_gpu_scheduler_strategy(s->o.scheduler)));
    free(w);
    return 0;
}

/* A workload's state as a store write. */
static void workload_op(const af_workload_info *w, af_store_op_kind k, af_store_op *op)
{
    memset(op, 0, sizeof(*op));
    op->kind = k;
    op->u.workload = (af_store_workload){.id = w->id,
                                         .name = w->name,
                                         .priority = w->priority,
                                         .memory_mb = w->memory_required_mb,
                                         .estimated_ms = w->estimated_time_ms,
                                         .exclusive = w->exclusive,
                                         .status = (int)w->status,
                                         .pending_reason = (int)w->pending_reason,
                                         .assigned_gpu = w->assigned_gpu,
                                         .failure = w->failure,
                                         .submitted_ns = w->submitted_ns,
                                         .started_ns = w->started_ns,
                                         .completed_ns = w->completed_ns};
}

/* After a change was committed but refused in memory (two requests raced): the saved row
 * goes back to what memory holds. */
static void resave_workload(af_server *s, const char *id)
{
    af_workload_info wi;
    if (!s->o.store || af_gpu_scheduler_get_workload(s->o.scheduler, id, &wi) != 0)
        return;
    af_store_op op;
    workload_op(&wi, AF_STORE_WORKLOAD, &op);
    af_store_submit(s->o.store, &op, NULL, NULL);
}

static void apply_workload_submit(af_server *s, void *ctx, af__resp *rs)
{
    write_ctx *c = ctx;
    const af_workload_spec *w = &c->u.wl;
    char err[256] = "";
    int rc = af_gpu_scheduler_submit(s->o.scheduler, w, err, sizeof(err));
    if (rc != 0) {
        af__resp_from_errno(rs, rc, err);
        if (rc == -EEXIST)
            resave_workload(s, w->id);
        return;
    }
    af_workload_info wi;
    af__metrics_workload(s, w->priority, AF_WORKLOAD_PENDING, NULL, &c->parent);
    af__schedule_pass(s);
    af__system_update(s, "workload_submitted", w->id);
    if (af_gpu_scheduler_get_workload(s->o.scheduler, w->id, &wi) == 0) {
        rs->status = 201;
        put_workload(&rs->body, &wi);
    }
}

static int h_workload_submit(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    if (!component_present(rs, s->o.scheduler, "GPU scheduler"))
        return 0;
    json_t *o = parse_object(rq, rs);
    if (!o)
        return 0;
    int arc = 0;
    af_workload_spec w = {0};
    double prio = 0, mem = 0, est = 0;
    char idbuf[48];
    if (get_field(o, AF__F_WORKLOAD_ID, &w.id, rs) &&
        get_field(o, AF__F_WORKLOAD_NAME, &w.name, rs) &&
        get_num(o, "priority", -1000000, 1000000, &prio, rs) &&
        get_num(o, "memory_required_mb", 0, 1e9, &mem, rs) &&
        get_num(o, "estimated_time_ms", 0, 1e12, &est, rs) &&
        get_bool(o, "exclusive", &w.exclusive, rs)) {
        if (!w.id || !*w.id) {
            static atomic_ulong seq;
            snprintf(idbuf, sizeof(idbuf), "wl-%llu-%lu",
                     (unsigned long long)(af_now_ns() / 1000000000ull),
                     (unsigned long)atomic_fetch_add(&seq, 1) + 1);
            w.id = idbuf;
        }
        w.priority = (int32_t)prio;
        w.memory_required_mb = (uint64_t)mem;
        w.estimated_time_ms = (uint64_t)est;
        af_workload_info live;
        write_ctx *c;
        /* The scheduler's own checks, before the commit, in its words. */
        if (strlen(w.id) >= AF_GPU_ID_MAX) {
            af__resp_error(rs, 400, "invalid_argument", "workload ID is too long");
        } else if (!w.memory_required_mb) {
            af__resp_error(rs, 400, "invalid_argument",
                           "workload memory requirement must be greater than 0");
        } else if (af_gpu_scheduler_get_workload(s->o.scheduler, w.id, &live) == 0 &&
                   (live.status == AF_WORKLOAD_PENDING || live.status == AF_WORKLOAD_RUNNING)) {
            af__resp_error(rs, 409, "conflict", "workload %s already exists", w.id);
        } else if ((c = write_ctx_new(rq, rs, o))) {
            if (w.id == idbuf) {
                af__strlcpy(c->id, idbuf, sizeof(c->id));
                w.id = c->id;
            }
            c->u.wl = w;
            af_workload_info wi;
            memset(&wi, 0, sizeof(wi));
            af__strlcpy(wi.id, w.id, sizeof(wi.id));
            af__strlcpy(wi.name, w.name ? w.name : "", sizeof(wi.name));
            wi.priority = w.priority;
            wi.memory_required_mb = w.memory_required_mb;
            wi.estimated_time_ms = w.estimated_time_ms;
            wi.exclusive = w.exclusive;
            wi.status = AF_WORKLOAD_PENDING;
            wi.pending_reason = AF_PENDING_NOT_YET_SCHEDULED;
            wi.submitted_ns = af_now_ns();
            af_store_op op;
            workload_op(&wi, AF_STORE_WORKLOAD_NEW, &op);
            arc = af__commit(rq, rs, &op, apply_workload_submit, c, write_ctx_free);
        }
    }
    json_decref(o);
    return arc;
}

static int h_workload_get(af__req *rq, af__resp *rs)
{
    if (!component_present(rs, rq->srv->o.scheduler, "GPU scheduler"))
        return 0;
    af_workload_info wi;
    if (af_gpu_scheduler_get_workload(rq->srv->o.scheduler, rq->params[0], &wi) != 0) {
        af__resp_error(rs, 404, "not_found", "workload %s not found", rq->params[0]);
        return 0;
    }
    put_workload(&rs->body, &wi);
    return 0;
}

static void apply_workload_transition(af_server *s, void *ctx, af__resp *rs)
{
    write_ctx *c = ctx;
    bool complete = c->u.complete;
    const char *id = c->id;
    char err[256] = "";
    af_workload_info before;
    bool had = af_gpu_scheduler_get_workload(s->o.scheduler, id, &before) == 0;
    int rc = complete ? af_gpu_scheduler_complete(s->o.scheduler, id, err, sizeof(err))
                      : af_gpu_scheduler_cancel(s->o.scheduler, id, err, sizeof(err));
    if (rc != 0) {
        af__resp_from_errno(rs, rc, err);
        resave_workload(s, id);
        return;
    }
    af_workload_info wi;
    if (af_gpu_scheduler_get_workload(s->o.scheduler, id, &wi) != 0)
        wi = before;
    if (had)
        af__metrics_workload(s, wi.priority,
                             complete ? AF_WORKLOAD_COMPLETED : AF_WORKLOAD_CANCELLED, &wi,
                             &c->parent);
    af__schedule_pass(s);
    af__system_update(s, complete ? "workload_completed" : "workload_cancelled", id);
    put_workload(&rs->body, &wi);
}

static int workload_transition(af__req *rq, af__resp *rs, bool complete)
{
    af_server *s = rq->srv;
    if (!component_present(rs, s->o.scheduler, "GPU scheduler"))
        return 0;
    const char *id = rq->params[0];
    af_workload_info wi;
    /* The scheduler's own checks, before the commit, in its words. */
    if (af_gpu_scheduler_get_workload(s->o.scheduler, id, &wi) != 0) {
        af__resp_error(rs, 404, "not_found", "workload %s not found", id);
        return 0;
    }
    bool ok = wi.status == AF_WORKLOAD_RUNNING || (!complete && wi.status == AF_WORKLOAD_PENDING);
    if (!ok) {
        af__resp_error(rs, 400, "invalid_argument", "workload %s is %s", id,
                       af_workload_status_name(wi.status));
        return 0;
    }
    write_ctx *c = write_ctx_new(rq, rs, NULL);
    if (!c)
        return 0;
    af__strlcpy(c->id, id, sizeof(c->id));
    c->u.complete = complete;
    wi.status = complete ? AF_WORKLOAD_COMPLETED : AF_WORKLOAD_CANCELLED;
    wi.pending_reason = AF_PENDING_NONE;
    wi.completed_ns = af_now_ns();
    af_store_op op;
    workload_op(&wi, AF_STORE_WORKLOAD, &op);
    return af__commit(rq, rs, &op, apply_workload_transition, c, write_ctx_free);
}

static int h_workload_complete(af__req *rq, af__resp *rs)
{
    return workload_transition(rq, rs, true);
}

static int h_workload_cancel(af__req *rq, af__resp *rs)
{
    return workload_transition(rq, rs, false);
}

static int h_models(af__req *rq, af__resp *rs)
{
    if (!component_present(rs, rq->srv->o.serving, "model-serving gateway"))
        return 0;
    char *j = NULL;
    af_serving_metrics_json(rq->srv->o.serving, &j);
    af__resp_json_take(rs, 200, j);
    return 0;
}

static int h_inference(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    if (!component_present(rs, s->o.serving, "model-serving gateway"))
        return 0;
    json_t *o = parse_object(rq, rs);
    if (!o)
        return 0;
    const char *model = NULL, *input = NULL, *id = NULL;
    double max_tokens = 0, timeout = 0;
    int rc = 0;
    if (get_field(o, AF__F_INFER_MODEL_ID, &model, rs) && get_str(o, "input", &input, rs) &&
        get_field(o, AF__F_INFER_REQUEST_ID, &id, rs) &&
        get_num(o, "max_tokens", 0, 1e6, &max_tokens, rs) &&
        get_num(o, "timeout_ms", 0, 600000, &timeout, rs)) {
        if (!model && !get_field_as(o, "model", AF__F_INFER_MODEL_ID, &model, rs))
            goto out;
        if (!input && !get_str(o, "prompt", &input, rs))
            goto out;
        if (!model || !*model || !input || !*input) {
            af__resp_error(rs, 400, "invalid_argument", "\"model_id\" and \"input\" are required");
            goto out;
        }
        char err[160];
        if (af__input_check(strlen(input), s->o.max_input_tokens, err, sizeof(err)) != 0) {
            af__resp_error(rs, 400, "limit_exceeded", "%s", err);
            goto out;
        }
        af__job *j = calloc(1, sizeof(*j));
        if (!j || !(j->model_id = af__strdup(model)) || !(j->input = af__strdup(input)) ||
            (id && !(j->request_id = af__strdup(id)))) {
            if (j) {
                free(j->model_id);
                free(j->input);
                free(j);
            }
            af__resp_error(rs, 500, "internal", "out of memory");
            goto out;
        }
        j->max_tokens = (uint32_t)max_tokens;
        /* The gateway gives up at the server's deadline too, so the worker is not held past
         * the moment the client was answered 504. */
        uint32_t limit = s->o.inference_timeout_ms;
        j->timeout_ms = timeout > 0 && (!limit || timeout < limit) ? (uint32_t)timeout : limit;
        j->parent = rq->span_ctx;
        rc = af__server_submit_job(rq, rs, j);
    }
out:
    json_decref(o);
    return rc;
}

static int h_traces(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    if (!component_present(rs, s->o.traces, "trace store"))
        return 0;
    af_trace_query q;
    af_trace_query_init(&q);
    char service[128], op[128], arg[64];
    if (url_arg(rq, "service", service, sizeof(service)))
        q.service = service;
    if (url_arg(rq, "operation", op, sizeof(op)))
        q.operation = op;
    if (url_arg(rq, "min_duration_ms", arg, sizeof(arg))) {
        double ms;
        if (af__parse_decimal(arg, &ms) != 0 || ms > 1e9) {
            af__resp_error(rs, 400, "invalid_argument",
                           "query parameter min_duration_ms: a decimal number in [0, 1e9]");
            return 0;
        }
        q.min_duration_ns = (uint64_t)(ms * 1e6);
    }
    if (url_arg(rq, "error", arg, sizeof(arg))) {
        if (strcmp(arg, "true") == 0 || strcmp(arg, "1") == 0)
            q.error = 1;
        else if (strcmp(arg, "false") == 0 || strcmp(arg, "0") == 0)
            q.error = 0;
        else {
            af__resp_error(rs, 400, "invalid_argument", "error must be true or false");
            return 0;
        }
    }
    if (url_arg(rq, "limit", arg, sizeof(arg))) {
        uint64_t n;
        if (af__parse_u64(arg, 1000, &n) != 0 || n == 0) {
            af__resp_error(rs, 400, "invalid_argument",
                           "query parameter limit: a decimal number in 1..1000");
            return 0;
        }
        q.limit = n;
    }
    char *j = NULL;
    af_trace_store_list_json(s->o.traces, &q, &j);
    af__resp_json_take(rs, 200, j);
    return 0;
}

static int h_trace(af__req *rq, af__resp *rs)
{
    if (!component_present(rs, rq->srv->o.traces, "trace store"))
        return 0;
    char *j = NULL;
    int rc = af_trace_store_get_json(rq->srv->o.traces, rq->params[0], &j);
    if (rc == -EINVAL)
        af__resp_error(rs, 400, "invalid_argument", "trace ids are 32 hex digits");
    else if (rc == AF_ENOTFOUND)
        af__resp_error(rs, 404, "not_found", "trace %s is not in the store", rq->params[0]);
    else if (rc != 0)
        af__resp_error(rs, 500, "internal", "out of memory");
    else
        af__resp_json_take(rs, 200, j);
    return 0;
}

static int h_config(af__req *rq, af__resp *rs)
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

static int h_demo_trigger(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    if (!component_present(rs, s->o.collector, "metrics collector"))
        return 0;
    af_gpu_backend *be = af_gpu_collector_backend(s->o.collector);
    const char *id = rq->params[0];
    if (strncmp(id, "gpu-", 4) != 0) {
        af__resp_error(rs, 404, "not_found", "GPU not found: %s", id);
        return 0;
    }
    uint64_t idx;
    if (af__parse_u64(id + 4, UINT32_MAX, &idx) != 0) {
        af__resp_error(rs, 400, "invalid_argument",
                       "path parameter gpu: gpu-<n> with n a decimal number in 0..%u",
                       (unsigned)UINT32_MAX);
        return 0;
    }
    int rc = af_gpu_sim_set_pattern(be, (uint32_t)idx, rq->params[1]);
    if (rc == -EINVAL) {
        af__resp_error(rs, 409, "conflict", "workload patterns exist only on simulated GPUs");
        return 0;
    }
    if (rc != 0) {
        af__resp_error(rs, 404, "not_found",
                       "unknown GPU or pattern (Idle, Light Inference, Training, Heavy Inference, "
                       "Batch Processing)");
        return 0;
    }
    char msg[400];
    snprintf(msg, sizeof(msg), "GPU %s switched to %s workload pattern", id, rq->params[1]);
    af_server_notify(s, "Workload Pattern Changed", msg, "info");
    af__buf_puts(&rs->body, "{\"gpu_id\":");
    put_str(&rs->body, id);
    af__buf_puts(&rs->body, ",\"pattern\":");
    put_str(&rs->body, rq->params[1]);
    af__buf_puts(&rs->body, ",\"status\":\"triggered\",\"message\":");
    put_str(&rs->body, msg);
    af__buf_putc(&rs->body, '}');
    return 0;
}

static int h_ws_plain(af__req *rq, af__resp *rs)
{
    (void)rq;
    af__resp_error(rs, 426, "upgrade_required", "/ws speaks WebSocket only");
    rs->headers = "upgrade: websocket\r\nsec-websocket-version: 13\r\n";
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The table. Patterns with the same shape are grouped so 405 can list every method.        */

/* The span names are string literals so the middleware never formats one per request. */
#define R(m, pattern, name, fn, write)                                                             \
    {                                                                                              \
        AF__M_##m, pattern, name, fn, write, "api_requests." #m " " pattern, "api_requests." name  \
    }
const af__route af__routes[] = {
    R(GET, "/health", "health", h_health, false),
    R(GET, "/ws", "websocket_plain", h_ws_plain, false),
    R(GET, "/api/v1/metrics", "dashboard_metrics", h_metrics, false),
    R(GET, "/api/v1/gpus", "list_gpus", h_gpus, false),
    R(POST, "/api/v1/gpus", "register_gpu", h_gpu_register, true),
    R(GET, "/api/v1/gpu/{id}/metrics", "gpu_metrics", h_gpu_metrics, false),
    R(GET, "/api/v1/gpu/{id}/processes", "gpu_processes", h_gpu_processes, false),
    R(GET, "/api/v1/gpu/{id}/history", "gpu_history", h_gpu_history, false),
    R(GET, "/api/v1/gpu/{id}/stats", "gpu_stats", h_gpu_stats, false),
    R(GET, "/api/v1/gpu/{id}/health", "gpu_health", h_gpu_health, false),
    R(GET, "/api/v1/system/stats", "system_stats", h_system_stats, false),
    R(GET, "/api/v1/system/overview", "system_overview", h_system_overview, false),
    R(GET, "/api/v1/system/status", "system_status", h_system_status, false),
    R(GET, "/api/v1/costs", "cost_summary", h_costs, false),
    R(POST, "/api/v1/costs", "record_cost", h_cost_record, true),
    R(GET, "/api/v1/costs/summary", "cost_breakdown", h_costs_summary, false),
    R(GET, "/api/v1/costs/forecast", "cost_forecast", h_costs_forecast, false),
    R(GET, "/api/v1/alerts", "list_alerts", h_alerts, false),
    R(GET, "/api/v1/alerts/summary", "alert_summary", h_alerts_summary, false),
    R(POST, "/api/v1/alerts/{id}/resolve", "resolve_alert", h_alert_resolve, true),
    R(GET, "/api/v1/performance", "performance", h_performance, false),
    R(GET, "/api/v1/performance/efficiency", "efficiency", h_performance_efficiency, false),
    R(GET, "/api/v1/workloads", "list_workloads", h_workloads, false),
    R(POST, "/api/v1/workloads", "submit_workload", h_workload_submit, true),
    R(GET, "/api/v1/workloads/{id}", "get_workload", h_workload_get, false),
    R(POST, "/api/v1/workloads/{id}/complete", "complete_workload", h_workload_complete, true),
    R(POST, "/api/v1/workloads/{id}/cancel", "cancel_workload", h_workload_cancel, true),
    R(GET, "/api/v1/models", "list_models", h_models, false),
    R(POST, "/api/v1/inference", "inference", h_inference, true),
    R(GET, "/api/v1/traces", "list_traces", h_traces, false),
    R(GET, "/api/v1/traces/{id}", "get_trace", h_trace, false),
    R(GET, "/api/v1/config", "config", h_config, false),
    R(POST, "/api/v1/demo/trigger/{gpu}/{pattern}", "demo_trigger", h_demo_trigger, true),
    R(POST, "/api/v1/cluster/report", "cluster_report", af__h_cluster_report, true),
    R(GET, "/api/v1/cluster/nodes", "cluster_nodes", af__h_cluster_nodes, false),
    R(POST, "/scheduler/filter", "scheduler_filter", af__h_scheduler_filter, AF__ROUTE_EXTENDER),
    R(POST, "/scheduler/prioritize", "scheduler_prioritize", af__h_scheduler_prioritize,
      AF__ROUTE_EXTENDER),
    R(POST, "/scheduler/bind", "scheduler_bind", af__h_scheduler_bind, AF__ROUTE_EXTENDER),
};
#undef R
const size_t af__nroutes = sizeof(af__routes) / sizeof(af__routes[0]);

/* Matches one pattern; fills params (a segment is at most AF_GPU_ID_MAX - 1 bytes). Literal
 * runs are compared with memcmp: every request walks the whole table. */
static bool pattern_match(const char *pat, const char *path, size_t path_len,
                          char params[AF__MAX_PARAMS][AF_GPU_ID_MAX])
{
    int np = 0;
    const char *pend = path + path_len;
    for (;;) {
        const char *brace = strchr(pat, '{');
        size_t lit = brace ? (size_t)(brace - pat) : strlen(pat);
        if ((size_t)(pend - path) < lit || memcmp(pat, path, lit) != 0)
            return false;
        pat += lit;
        path += lit;
        if (!brace)
            break;
        const char *pe = strchr(pat, '}');
        const char *se = memchr(path, '/', (size_t)(pend - path));
        size_t n = se ? (size_t)(se - path) : (size_t)(pend - path);
        if (!pe || n == 0 || n >= AF_GPU_ID_MAX || np >= AF__MAX_PARAMS)
            return false;
        memcpy(params[np], path, n);
        params[np++][n] = '\0';
        pat = pe + 1;
        path += n;
    }
    /* A trailing slash is the same route. */
    return path == pend || (path + 1 == pend && *path == '/');
}

int af__route_params_decode(int route, char params[AF__MAX_PARAMS][AF_GPU_ID_MAX], char *why,
                            size_t cap)
{
    const char *pat = af__routes[route].pattern;
    for (int np = 0; np < AF__MAX_PARAMS; np++) {
        const char *open = strchr(pat, '{'), *close = open ? strchr(open, '}') : NULL;
        if (!close)
            break;
        char out[AF_GPU_ID_MAX];
        int rc = af__pct_decode(params[np], strlen(params[np]), false, out, sizeof(out), NULL);
        if (rc != 0) {
            snprintf(why, cap, "path parameter %.*s: %s", (int)(close - open - 1), open + 1,
                     rc == -ENOSPC ? "too long" : "malformed percent-encoding (or %00)");
            return rc;
        }
        memcpy(params[np], out, sizeof(out));
        pat = close + 1;
    }
    return 0;
}

/* Each pattern's literal prefix (up to its first parameter) and whether it has parameters,
 * computed once: a request path is then rejected by most routes with a length compare. */
typedef struct route_shape {
    size_t prefix_len;
    bool has_params;
} route_shape;

static route_shape shapes[sizeof(af__routes) / sizeof(af__routes[0])];
static pthread_once_t shapes_once = PTHREAD_ONCE_INIT;

static void shapes_init(void)
{
    for (size_t i = 0; i < af__nroutes; i++) {
        const char *brace = strchr(af__routes[i].pattern, '{');
        shapes[i].has_params = brace != NULL;
        shapes[i].prefix_len =
            brace ? (size_t)(brace - af__routes[i].pattern) : strlen(af__routes[i].pattern);
    }
}

int af__route_match(const char *path, unsigned method, unsigned *allowed,
                    char params[AF__MAX_PARAMS][AF_GPU_ID_MAX])
{
    pthread_once(&shapes_once, shapes_init);
    *allowed = 0;
    int found = -1;
    char tmp[AF__MAX_PARAMS][AF_GPU_ID_MAX] = {{0}}; /* unused parameters stay empty */
    size_t len = strlen(path);
    for (size_t i = 0; i < af__nroutes; i++) {
        const route_shape *sh = &shapes[i];
        const char *pat = af__routes[i].pattern;
        if (!sh->has_params) {
            /* Exact, or with one trailing slash. */
            if (!(len == sh->prefix_len || (len == sh->prefix_len + 1 && path[len - 1] == '/')) ||
                memcmp(path, pat, sh->prefix_len) != 0)
                continue;
        } else if (len <= sh->prefix_len || memcmp(path, pat, sh->prefix_len) != 0 ||
                   !pattern_match(pat, path, len, tmp)) {
            continue;
        }
        *allowed |= af__routes[i].methods;
        if (found < 0 && (af__routes[i].methods & method)) {
            found = (int)i;
            if (sh->has_params)
                memcpy(params, tmp, sizeof(tmp));
        }
    }
    if (*allowed & AF__M_GET)
        *allowed |= AF__M_HEAD;
    return found;
}
