/*
 * HealthCheck(): live state of the tracing pipeline instead of the Go project's static echo
 * of the config.
 *
 * Status rule (kept simple so operators can predict it):
 *   disabled - tracing.enabled is false (or no integration);
 *   degraded - some exporter is failing: its last export failed (consecutive_failures >
 *              0) or its latest attempt did, even while it is still retrying (the last
 *              failure is newer than the last success); or the provider dropped a span in
 *              the last 60 seconds;
 *   healthy  - otherwise.
 *
 * A health read changes nothing: /health, the Prometheus scrape and any other reader see the
 * same status however often they ask.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "config/tracing_int.h"
#include "util/str.h"

/* An exporter is failing when its last export failed, or when its latest attempt failed
 * while the export is still being retried (no success since). */
static bool exporter_failing(const af_exporter_health *h)
{
    return h->consecutive_failures > 0 || h->last_failure_ns > h->last_success_ns;
}

const char *af_health_status_name(af_health_status s)
{
    switch (s) {
    case AF_HEALTH_HEALTHY:
        return "healthy";
    case AF_HEALTH_DEGRADED:
        return "degraded";
    case AF_HEALTH_DISABLED:
        return "disabled";
    }
    return "unknown";
}

void af_tracing_health_get(const af_tracing *t, af_tracing_health *out)
{
    memset(out, 0, sizeof *out);
    out->status = AF_HEALTH_DISABLED;
    af__strlcpy(out->sampler, "none", sizeof out->sampler);
    if (!t)
        return;
    const af__tracing_version *v = atomic_load(&((af_tracing *)t)->cur);
    af__strlcpy(out->service_name, v->cfg.service_name ? v->cfg.service_name : "",
                sizeof out->service_name);
    out->sampling_ratio = v->cfg.tracing.sampling_ratio;
    if (!t->provider)
        return;

    /* Not the provider's sampler: its root is the reloadable ratio, described by the
     * version that set it. */
    af__strlcpy(out->sampler, v->sampler_desc, sizeof out->sampler);
    af_tracer_provider_stats(t->provider, &out->spans);

    af_span_processor *procs[16]; /* the provider's AF_MAX_PROCESSORS */
    size_t n = af_tracer_provider_processors(t->provider, procs, 16);
    if (n > 16)
        n = 16;
    uint64_t calls = 0, ns = 0;
    bool failing = false;
    for (size_t i = 0; i < n; i++) {
        af_processor_stats ps;
        af_span_processor_stats_get(procs[i], &ps);
        out->queue_depth += ps.queue_depth;
        out->queue_capacity += ps.queue_capacity;
        calls += ps.export_calls;
        ns += ps.export_ns_total;
        af_exporter *e = af_span_processor_exporter(procs[i]);
        if (e && out->n_exporters < AF_TRACING_MAX_EXPORTERS) {
            af_exporter_health *h = &out->exporters[out->n_exporters++];
            af_exporter_health_get(e, h);
            /* Exporters already strip credentials; scrub again so no endpoint with a
             * password or query token can ever reach a health page. */
            char safe[sizeof h->endpoint];
            af__config_safe_url(h->endpoint, safe, sizeof safe);
            memcpy(h->endpoint, safe, sizeof safe);
            if (exporter_failing(h))
                failing = true;
        }
    }
    out->export_latency_ns_avg = calls ? ns / calls : 0;

    uint64_t last_drop = out->spans.last_drop_ns;
    bool dropping = last_drop != 0 && t->health->clock() - last_drop < t->health->drop_window_ns;

    out->status = (failing || dropping) ? AF_HEALTH_DEGRADED : AF_HEALTH_HEALTHY;
}

static int set(json_t *o, const char *k, json_t *v)
{
    return v ? json_object_set_new(o, k, v) : -1;
}

static json_t *exporter_json(const af_exporter_health *h)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = 0;
    bad |= set(o, "type", json_string(h->type));
    bad |= set(o, "endpoint", h->endpoint[0] ? json_string(h->endpoint) : json_null());
    bad |= set(o, "healthy", json_boolean(!exporter_failing(h)));
    bad |= set(o, "last_success_unix_nano", json_integer((json_int_t)h->last_success_ns));
    bad |= set(o, "last_failure_unix_nano", json_integer((json_int_t)h->last_failure_ns));
    json_t *err = h->last_error[0] ? json_string(h->last_error) : json_null();
    bad |= set(o, "last_error", err ? err : json_string("[not UTF-8]"));
    bad |= set(o, "consecutive_failures", json_integer(h->consecutive_failures));
    bad |= set(o, "spans_exported", json_integer((json_int_t)h->spans_exported));
    bad |= set(o, "spans_failed", json_integer((json_int_t)h->spans_failed));
    bad |= set(o, "spans_rejected", json_integer((json_int_t)h->spans_rejected));
    bad |= set(o, "retries", json_integer((json_int_t)h->retries));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *components_json(const af_tracing *t)
{
    static const char *const names[AF_TRACE_COMPONENT_COUNT] = {
        "gpu_scheduler.trace_workload_submission", "gpu_scheduler.trace_scheduling_decisions",
        "gpu_scheduler.trace_gpu_registration",    "metrics_collector.trace_collection_cycles",
        "metrics_collector.trace_individual_gpus", "model_serving.trace_inference_requests",
        "model_serving.trace_model_loading",       "web_dashboard.trace_api_requests",
        "web_dashboard.trace_websocket_events",    "observability.trace_cost_calculations",
        "observability.trace_health_checks",
    };
    json_t *o = json_object();
    for (int c = 0; o && c < AF_TRACE_COMPONENT_COUNT; c++) {
        if (set(o, names[c],
                json_boolean(af_tracing_component_enabled(t, (af_trace_component)c)))) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

char *af_tracing_health_json(const af_tracing *t)
{
    af_tracing_health h;
    af_tracing_health_get(t, &h);
    return af_tracing_health_to_json(t, &h);
}

char *af_tracing_health_to_json(const af_tracing *t, const af_tracing_health *h)
{
    json_t *o = json_object();
    json_t *exps = json_array();
    if (!o || !exps)
        goto fail;
    int bad = 0;
    bad |= set(o, "status", json_string(af_health_status_name(h->status)));
    bad |= set(o, "enabled", json_boolean(t && t->provider));
    json_t *sn = json_string(h->service_name);
    bad |= set(o, "service_name", sn ? sn : json_string("[not UTF-8]"));
    if (t) {
        json_t *env =
            json_string(af__tracing_cfg(t)->environment ? af__tracing_cfg(t)->environment : "");
        bad |= set(o, "environment", env ? env : json_string("[not UTF-8]"));
    }
    /* The full description: the struct's copy is truncated to its fixed size. */
    bad |= set(o, "sampler", json_string(h->sampler));
    bad |= set(o, "sampling_ratio", json_real(h->sampling_ratio));

    /* exporter_type: the Go HealthCheck's key, now the comma-joined list of exporters. */
    char types[AF_TRACING_MAX_EXPORTERS * 17 + 1] = "";
    for (size_t i = 0; i < h->n_exporters; i++) {
        json_t *e = exporter_json(&h->exporters[i]);
        if (!e || json_array_append_new(exps, e) != 0)
            goto fail;
        size_t used = strlen(types);
        snprintf(types + used, sizeof types - used, "%s%.16s", i ? "," : "", h->exporters[i].type);
    }
    bad |= set(o, "exporter_type", json_string(h->n_exporters ? types : "none"));
    bad |= json_object_set(o, "exporters", exps);
    bad |= set(o, "queue",
               json_pack("{s:I,s:I}", "depth", (json_int_t)h->queue_depth, "capacity",
                         (json_int_t)h->queue_capacity));
    bad |= set(o, "spans",
               json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "started", (json_int_t)h->spans.spans_started,
                         "ended", (json_int_t)h->spans.spans_ended, "unsampled",
                         (json_int_t)h->spans.spans_unsampled, "dropped",
                         (json_int_t)h->spans.spans_dropped, "exported",
                         (json_int_t)h->spans.spans_exported, "failed",
                         (json_int_t)h->spans.spans_failed));
    bad |= set(o, "export_latency_ms_avg", json_real((double)h->export_latency_ns_avg / 1e6));
    if (t)
        bad |= set(o, "components", components_json(t));
    if (bad)
        goto fail;
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(exps);
    json_decref(o);
    return s;
fail:
    json_decref(exps);
    json_decref(o);
    return NULL;
}
