/*
 * Shared JSON and request helpers of the route handlers.
 * Split out of routes.c; the route table and matcher stay there (see routes_int.h).
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

/* JSON numbers never carry NaN or infinity. */
double af__finite_or_zero(double v)
{
    return isfinite(v) ? v : 0.0;
}

void af__put_str(af_buf *b, const char *s)
{
    af__buf_json_string(b, s ? s : "", s ? strlen(s) : 0);
}

void af__put_time(af_buf *b, uint64_t ns)
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
void af__put_json_take(af_buf *b, char *json)
{
    af__buf_puts(b, json ? json : "null");
    free(json);
}

bool af__component_present(af__resp *rs, const void *component, const char *name)
{
    if (component)
        return true;
    af__resp_error(rs, 503, "unavailable", "the %s is not running in this daemon", name);
    return false;
}

json_t *af__parse_object(af__req *rq, af__resp *rs)
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
bool af__get_str(json_t *o, const char *k, const char **out, af__resp *rs)
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
bool af__get_field_as(json_t *o, const char *k, af__field f, const char **out, af__resp *rs)
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

bool af__get_field(json_t *o, af__field f, const char **out, af__resp *rs)
{
    return af__get_field_as(o, af__field_limits[f].name, f, out, rs);
}

bool af__get_num(json_t *o, const char *k, double lo, double hi, double *out, af__resp *rs)
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

bool af__get_bool(json_t *o, const char *k, bool *out, af__resp *rs)
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

void af__write_ctx_free(void *p)
{
    write_ctx *c = p;
    json_decref(c->doc);
    free(c);
}

write_ctx *af__write_ctx_new(af__req *rq, af__resp *rs, json_t *doc)
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

bool af__url_arg(af__req *rq, const char *name, char *buf, int len)
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

void af__view_load(af_server *s, view *v)
{
    memset(v, 0, sizeof(*v));
    af_gpu_thresholds_init(&v->th);
    if (s->o.cluster) { /* serve --cluster: the fleet's GPUs */
        v->n = af__fleet_samples(s, &v->samples);
    } else {
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
    }
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

void af__view_free(view *v)
{
    if (v)
        free(v->samples);
    free(v);
}

const char *af__gpu_state(const view *v, double util, double temp)
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
    return af__finite_or_zero(e < 0 ? 0 : e > 100 ? 100 : e);
}

void af__put_system_stats(af_buf *b, const view *v)
{
    af__buf_printf(b,
                   "{\"total_gpus\":%zu,\"active_gpus\":%u,\"average_utilization\":%.2f,"
                   "\"total_memory_gb\":%.3f,\"used_memory_gb\":%.3f,\"average_temperature\":"
                   "%.2f,\"total_power_watts\":%.2f,\"efficiency_score\":%.2f}",
                   v->n, v->active, af__finite_or_zero(v->avg_util), v->mem_total_mb / 1024.0,
                   v->mem_used_mb / 1024.0, af__finite_or_zero(v->avg_temp),
                   af__finite_or_zero(v->total_power), efficiency_score(v));
}

/* The original's CostSummary over the last 24 hours. */
void af__put_cost_summary(af_server *s, af_buf *b, af_cost_summary *keep)
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
    af__buf_printf(b, "{\"total_cost\":%.6f,\"period\":\"24h\",\"currency\":",
                   af__finite_or_zero(cs.total_cost));
    af__put_str(b, cs.currency[0] ? cs.currency : "USD");
    af__buf_printf(b, ",\"gpu_hours\":%.6f,\"avg_cost_per_hr\":%.6f,\"entry_count\":%llu}",
                   af__finite_or_zero(cs.total_gpu_hours), af__finite_or_zero(cs.avg_cost_per_hour),
                   (unsigned long long)cs.entry_count);
    if (keep)
        *keep = cs;
    else
        af_cost_summary_clear(&cs);
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
    af__put_str(b, a->type);
    af__buf_puts(b, ",\"message\":");
    af__put_str(b, a->message);
    af__buf_puts(b, ",\"source\":");
    af__put_str(b, a->gpu_id);
    af__buf_printf(b, ",\"value\":%.2f,\"threshold\":%.2f,\"acknowledged\":%s,\"timestamp\":",
                   af__finite_or_zero(a->value), af__finite_or_zero(a->threshold),
                   a->acknowledged ? "true" : "false");
    af__put_time(b, a->timestamp_ns);
    af__buf_putc(b, '}');
}

/* Active alerts: unacknowledged, from the last hour, newest first. */
size_t af__active_alerts(af_server *s, af_gpu_alert *out, size_t cap)
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

void af__put_performance(af_server *s, af_buf *b, const view *v, double total_cost)
{
    af_cost_forecast fc;
    memset(&fc, 0, sizeof(fc));
    if (s->o.costs)
        af_cost_forecast_24h(s->o.costs, 0, &fc);
    af__buf_printf(b,
                   "{\"utilization_trend\":%.2f,\"cost_trend\":%.6f,\"efficiency_trend\":%.2f,"
                   "\"predicted_cost_24h\":%.6f,\"optimization_tips\":[",
                   af__finite_or_zero(v->avg_util), af__finite_or_zero(fc.trend_per_hour),
                   efficiency_score(v), af__finite_or_zero(fc.predicted_cost_24h));
    if (v->n && v->avg_util < 50.0) {
        af__buf_printf(b,
                       "{\"type\":\"efficiency\",\"message\":\"GPU utilization is below 50%%. "
                       "Consider consolidating workloads.\",\"impact\":\"high\",\"savings\":%.6f,"
                       "\"action\":\"Redistribute workloads to fewer GPUs\"}",
                       af__finite_or_zero(total_cost * 0.3));
    }
    af__buf_puts(b, "]}");
}
