/*
 * HealthCheck(): the live state of the tracing pipeline (docs/upstream-differences.md).
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
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "config/tracing_int.h"
#include "util/buf.h"
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

/* A JSON number for a double: "%.17g" reads back exactly; ".0" keeps integral values reals;
 * non-finite values (not JSON) as null. */
static void put_real(af_buf *b, double d)
{
    if (!isfinite(d)) {
        af__buf_puts(b, "null");
        return;
    }
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%.17g", d);
    af__buf_puts(b, tmp);
    if (!strpbrk(tmp, ".e"))
        af__buf_puts(b, ".0");
}

/* `member` (e.g. `,"key":`) then the string, or null when s is NULL. */
static void put_str(af_buf *b, const char *member, const char *s)
{
    af__buf_puts(b, member);
    if (s)
        af__buf_json_string(b, s, strlen(s));
    else
        af__buf_puts(b, "null");
}

static void exporter_json(af_buf *b, const af_exporter_health *h)
{
    put_str(b, "\"type\":", h->type);
    put_str(b, ",\"endpoint\":", h->endpoint[0] ? h->endpoint : NULL);
    af__buf_printf(b, ",\"healthy\":%s", exporter_failing(h) ? "false" : "true");
    af__buf_printf(b, ",\"last_success_unix_nano\":%" PRIu64, h->last_success_ns);
    af__buf_printf(b, ",\"last_failure_unix_nano\":%" PRIu64, h->last_failure_ns);
    put_str(b, ",\"last_error\":", h->last_error[0] ? h->last_error : NULL);
    af__buf_printf(b, ",\"consecutive_failures\":%" PRIu64, (uint64_t)h->consecutive_failures);
    af__buf_printf(b, ",\"spans_exported\":%" PRIu64, (uint64_t)h->spans_exported);
    af__buf_printf(b, ",\"spans_failed\":%" PRIu64, (uint64_t)h->spans_failed);
    af__buf_printf(b, ",\"spans_rejected\":%" PRIu64, (uint64_t)h->spans_rejected);
    af__buf_printf(b, ",\"retries\":%" PRIu64, (uint64_t)h->retries);
}

static void components_json(af_buf *b, const af_tracing *t)
{
    static const char *const names[AF_TRACE_COMPONENT_COUNT] = {
        "gpu_scheduler.trace_workload_submission", "gpu_scheduler.trace_scheduling_decisions",
        "gpu_scheduler.trace_gpu_registration",    "metrics_collector.trace_collection_cycles",
        "metrics_collector.trace_individual_gpus", "model_serving.trace_inference_requests",
        "model_serving.trace_model_loading",       "web_dashboard.trace_api_requests",
        "web_dashboard.trace_websocket_events",    "observability.trace_cost_calculations",
        "observability.trace_health_checks",
    };
    for (int c = 0; c < AF_TRACE_COMPONENT_COUNT; c++)
        af__buf_printf(b, "%s\"%s\":%s", c ? "," : "", names[c],
                       af_tracing_component_enabled(t, (af_trace_component)c) ? "true" : "false");
}

char *af_tracing_health_json(const af_tracing *t)
{
    af_tracing_health h;
    af_tracing_health_get(t, &h);
    return af_tracing_health_to_json(t, &h);
}

char *af_tracing_health_to_json(const af_tracing *t, const af_tracing_health *h)
{
    af_buf b;
    af__buf_init(&b);
    af__buf_putc(&b, '{');
    put_str(&b, "\"status\":", af_health_status_name(h->status));
    af__buf_printf(&b, ",\"enabled\":%s", t && t->provider ? "true" : "false");
    put_str(&b, ",\"service_name\":", h->service_name);
    if (t)
        put_str(&b, ",\"environment\":",
                af__tracing_cfg(t)->environment ? af__tracing_cfg(t)->environment : "");
    /* The full description: the struct's copy is truncated to its fixed size. */
    put_str(&b, ",\"sampler\":", h->sampler);
    af__buf_puts(&b, ",\"sampling_ratio\":");
    put_real(&b, h->sampling_ratio);

    /* exporter_type: the comma-joined list of exporters (docs/upstream-differences.md). */
    char types[AF_TRACING_MAX_EXPORTERS * 17 + 1] = "";
    for (size_t i = 0; i < h->n_exporters; i++) {
        size_t used = strlen(types);
        snprintf(types + used, sizeof types - used, "%s%.16s", i ? "," : "", h->exporters[i].type);
    }
    put_str(&b, ",\"exporter_type\":", h->n_exporters ? types : "none");
    af__buf_puts(&b, ",\"exporters\":[");
    for (size_t i = 0; i < h->n_exporters; i++) {
        af__buf_puts(&b, i ? ",{" : "{");
        exporter_json(&b, &h->exporters[i]);
        af__buf_putc(&b, '}');
    }
    af__buf_printf(&b, "],\"queue\":{\"depth\":%" PRIu64 ",\"capacity\":%" PRIu64 "}",
                   (uint64_t)h->queue_depth, (uint64_t)h->queue_capacity);
    af__buf_printf(&b,
                   ",\"spans\":{\"started\":%" PRIu64 ",\"ended\":%" PRIu64
                   ",\"unsampled\":%" PRIu64 ",\"dropped\":%" PRIu64 ",\"exported\":%" PRIu64
                   ",\"failed\":%" PRIu64 "}",
                   (uint64_t)h->spans.spans_started, (uint64_t)h->spans.spans_ended,
                   (uint64_t)h->spans.spans_unsampled, (uint64_t)h->spans.spans_dropped,
                   (uint64_t)h->spans.spans_exported, (uint64_t)h->spans.spans_failed);
    af__buf_puts(&b, ",\"export_latency_ms_avg\":");
    put_real(&b, (double)h->export_latency_ns_avg / 1e6);
    if (t) {
        af__buf_puts(&b, ",\"components\":{");
        components_json(&b, t);
        af__buf_putc(&b, '}');
    }
    af__buf_putc(&b, '}');
    af__buf_terminate(&b);
    if (b.failed) {
        af__buf_clear(&b);
        return NULL;
    }
    return (char *)b.data;
}
