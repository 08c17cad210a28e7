/*
 * TracingIntegration: turns an af_tracing_config into a provider with one batch processor
 * per enabled exporter, and applies the components.* toggles.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/export.h"
#include "agentaflow/log.h"
#include "config/tracing_int.h"

/* The instrumentation scope of every span the platform makes. */
#define AF_TRACING_SCOPE "agentaflow"

static void batch_opts_from(const af_tracing_config *cfg, af_batch_processor_opts *o)
{
    af_batch_processor_opts_init(o);
    o->max_queue_size = cfg->performance.max_queue_size;
    o->max_export_batch_size = cfg->performance.max_export_batch_size;
    o->schedule_delay_ms = cfg->performance.schedule_delay_ms;
    o->export_timeout_ms = cfg->performance.export_timeout_ms;
}

static int build_resource(const af_tracing_config *cfg, af_resource **out)
{
    /* service.* and deployment.environment first, so a resource_attributes entry with the
     * same key overrides them (the Go project merged custom attributes last, too). */
    size_t n = 3 + cfg->n_resource_attributes;
    af_attr *attrs = calloc(n, sizeof *attrs);
    if (!attrs)
        return -ENOMEM;
    attrs[0] = AF_STR("service.name", cfg->service_name);
    attrs[1] = AF_STR("service.version", cfg->service_version);
    attrs[2] = AF_STR("deployment.environment", cfg->environment);
    for (size_t i = 0; i < cfg->n_resource_attributes; i++)
        attrs[3 + i] = AF_STR(cfg->resource_attributes[i].key, cfg->resource_attributes[i].value);
    int rc = af_resource_new(attrs, n, out);
    free(attrs);
    return rc;
}

static af_sampler *build_sampler(double ratio)
{
    af_sampler *root = ratio >= 1.0 ? af_sampler_always_on() : af_sampler_trace_id_ratio(ratio);
    if (!root)
        return NULL;
    return af_sampler_parent_based(root, NULL, NULL, NULL, NULL);
}

static int add_batch(af_tracing *t, af_exporter *e, const af_batch_processor_opts *opts)
{
    af_span_processor *proc = NULL;
    int rc = af_batch_processor_new(e, opts, &proc);
    if (rc != 0)
        return rc;
    rc = af_tracer_provider_add_processor(t->provider, proc);
    if (rc != 0)
        return rc;
    t->n_exporters++;
    return 0;
}

static int build_exporters(af_tracing *t, char *err, size_t err_len)
{
    const af_tracing_config *cfg = &t->cfg;
    af_batch_processor_opts bopts;
    batch_opts_from(cfg, &bopts);
    af_exporter *e = NULL;
    int rc;

    if (cfg->tracing.exporters.jaeger.enabled) {
        af_jaeger_opts o;
        af_jaeger_opts_init(&o);
        o.endpoint = cfg->tracing.exporters.jaeger.endpoint;
        if (cfg->performance.export_timeout_ms)
            o.timeout_ms = cfg->performance.export_timeout_ms;
        if ((rc = af_jaeger_exporter_new(&o, &e)) != 0) {
            snprintf(err, err_len, "tracing.exporters.jaeger: %s", af_strerror(rc));
            return rc;
        }
        if ((rc = add_batch(t, e, &bopts)) != 0) {
            snprintf(err, err_len, "tracing.exporters.jaeger: %s", af_strerror(rc));
            return rc;
        }
    }
    if (cfg->tracing.exporters.otlp_http.enabled) {
        af_header_kv *hdrs = NULL;
        if (cfg->tracing.exporters.otlp_http.n_headers &&
            !(hdrs = calloc(cfg->tracing.exporters.otlp_http.n_headers, sizeof *hdrs)))
            return -ENOMEM;
        for (size_t i = 0; i < cfg->tracing.exporters.otlp_http.n_headers; i++) {
            hdrs[i].name = cfg->tracing.exporters.otlp_http.headers[i].key;
            hdrs[i].value = cfg->tracing.exporters.otlp_http.headers[i].value;
        }
        af_otlp_http_opts o;
        af_otlp_http_opts_init(&o);
        o.endpoint = cfg->tracing.exporters.otlp_http.endpoint;
        o.protocol = cfg->tracing.exporters.otlp_http.protocol;
        o.headers = hdrs;
        o.n_headers = cfg->tracing.exporters.otlp_http.n_headers;
        o.gzip = cfg->tracing.exporters.otlp_http.compression == AF_COMPRESSION_GZIP;
        o.timeout_ms = cfg->tracing.exporters.otlp_http.timeout_ms;
        o.tls.ca_file = cfg->tracing.exporters.otlp_http.ca_file;
        o.tls.client_cert = cfg->tracing.exporters.otlp_http.client_cert;
        o.tls.client_key = cfg->tracing.exporters.otlp_http.client_key;
        rc = af_otlp_http_exporter_new(&o, &e); /* copies the headers */
        free(hdrs);
        if (rc != 0) {
            snprintf(err, err_len, "tracing.exporters.otlp_http: %s", af_strerror(rc));
            return rc;
        }
        if ((rc = add_batch(t, e, &bopts)) != 0) {
            snprintf(err, err_len, "tracing.exporters.otlp_http: %s", af_strerror(rc));
            return rc;
        }
    }
    if (cfg->tracing.exporters.stdout_.enabled) {
        af_stdout_exporter_opts o;
        af_stdout_exporter_opts_init(&o);
        o.pretty_print = cfg->tracing.exporters.stdout_.pretty_print;
        if ((rc = af_stdout_exporter_new(&o, &e)) != 0 || (rc = add_batch(t, e, &bopts)) != 0) {
            snprintf(err, err_len, "tracing.exporters.stdout: %s", af_strerror(rc));
            return rc;
        }
    }
    return 0;
}

int af_tracing_new(const af_tracing_config *cfg, af_tracing **out, char *err, size_t err_len)
{
    char dummy[8];
    if (!err || !err_len) {
        err = dummy;
        err_len = sizeof dummy;
    }
    err[0] = '\0';
    if (!cfg || !out) {
        snprintf(err, err_len, "no configuration");
        return -EINVAL;
    }
    *out = NULL;
    if (!cfg->service_name || !cfg->service_version || !cfg->environment) {
        snprintf(err, err_len, "service_name, service_version and environment must be set");
        return -EINVAL;
    }

    int rc = -ENOMEM;
    af_tracing *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    if (pthread_mutex_init(&t->lock, NULL) != 0)
        goto fail_lock;
    if (!(t->health = calloc(1, sizeof *t->health)))
        goto fail_health;
    t->health->drop_window_ns = AF__HEALTH_DROP_WINDOW_NS;
    t->health->clock = af_monotonic_ns;
    if (af_tracing_config_copy(&t->cfg, cfg) != 0)
        goto fail_cfg;

    if (t->cfg.tracing.enabled) {
        af_tracer_provider_opts po;
        af_tracer_provider_opts_init(&po);
        if (t->cfg.tracing.attribute_value_length_default) {
            /* Re-reading the environment after the default keeps the user's variables first. */
            po.limits.attribute_value_length = t->cfg.tracing.attribute_value_length_default;
            af_span_limits_from_env(&po.limits);
        }
        if ((rc = build_resource(&t->cfg, &po.resource)) != 0) {
            snprintf(err, err_len, "resource_attributes: %s", af_strerror(rc));
            goto fail_provider;
        }
        po.sampler = build_sampler(t->cfg.tracing.sampling_ratio);
        if (!po.sampler) {
            af_resource_free(po.resource);
            rc = -ENOMEM;
            goto fail_provider;
        }
        if ((rc = af_tracer_provider_new(&po, &t->provider)) != 0) {
            snprintf(err, err_len, "tracer provider: %s", af_strerror(rc));
            goto fail_provider;
        }
        if ((rc = build_exporters(t, err, err_len)) != 0)
            goto fail_exporters;
        t->tracer =
            af_tracer_provider_get_tracer(t->provider, AF_TRACING_SCOPE, AF_VERSION_STRING, NULL);
    }
    *out = t;
    return 0;

fail_exporters:
    /* No span was started yet, so freeing has nothing to flush. */
    af_tracer_provider_free(t->provider);
fail_provider:
    af_tracing_config_free(&t->cfg);
fail_cfg:
    free(t->health);
fail_health:
    pthread_mutex_destroy(&t->lock);
fail_lock:
    free(t);
    if (rc == -ENOMEM && !err[0])
        snprintf(err, err_len, "out of memory");
    return rc;
}

int af_tracing_add_exporter(af_tracing *t, af_exporter *e, const af_batch_processor_opts *opts)
{
    if (!t || !e) {
        af_exporter_free(e);
        return -EINVAL;
    }
    if (!t->provider) {
        af_exporter_free(e);
        return AF_ESHUTDOWN; /* tracing is disabled: no pipeline to join */
    }
    af_batch_processor_opts own;
    if (!opts) {
        batch_opts_from(&t->cfg, &own);
        opts = &own;
    }
    pthread_mutex_lock(&t->lock);
    int rc;
    if (t->n_exporters >= AF_TRACING_MAX_EXPORTERS) {
        af_exporter_free(e);
        rc = -ENOSPC;
    } else {
        rc = add_batch(t, e, opts);
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

int af_tracing_shutdown(af_tracing *t, uint32_t timeout_ms)
{
    if (!t || !t->provider)
        return 0;
    return af_tracer_provider_shutdown(t->provider, timeout_ms);
}

int af_tracing_force_flush(af_tracing *t, uint32_t timeout_ms)
{
    if (!t || !t->provider)
        return 0;
    return af_tracer_provider_force_flush(t->provider, timeout_ms);
}

void af_tracing_free(af_tracing *t)
{
    if (!t)
        return;
    if (t->provider) {
        /* A no-op (AF_ESHUTDOWN) when the owner already shut down; otherwise the final
         * flush is bounded by performance.max_export_timeout (0 = no limit). */
        uint32_t bound = t->cfg.performance.max_export_timeout_ms;
        af_tracer_provider_shutdown(t->provider, bound ? bound : UINT32_MAX);
        af_tracer_provider_free(t->provider);
    }
    af_tracing_config_free(&t->cfg);
    free(t->health);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

af_tracer *af_tracing_tracer(const af_tracing *t)
{
    return t ? t->tracer : NULL;
}

bool af_tracing_component_enabled(const af_tracing *t, af_trace_component c)
{
    if (!t || !t->tracer)
        return false;
    switch (c) {
    case AF_TRACE_GPU_WORKLOAD_SUBMISSION:
        return t->cfg.components.gpu_scheduler.trace_workload_submission;
    case AF_TRACE_GPU_SCHEDULING_DECISIONS:
        return t->cfg.components.gpu_scheduler.trace_scheduling_decisions;
    case AF_TRACE_GPU_REGISTRATION:
        return t->cfg.components.gpu_scheduler.trace_gpu_registration;
    case AF_TRACE_METRICS_COLLECTION_CYCLES:
        return t->cfg.components.metrics_collector.trace_collection_cycles;
    case AF_TRACE_METRICS_INDIVIDUAL_GPUS:
        return t->cfg.components.metrics_collector.trace_individual_gpus;
    case AF_TRACE_MODEL_INFERENCE_REQUESTS:
        return t->cfg.components.model_serving.trace_inference_requests;
    case AF_TRACE_MODEL_LOADING:
        return t->cfg.components.model_serving.trace_model_loading;
    case AF_TRACE_API_REQUESTS:
        return t->cfg.components.web_dashboard.trace_api_requests;
    case AF_TRACE_WEBSOCKET_EVENTS:
        return t->cfg.components.web_dashboard.trace_websocket_events;
    case AF_TRACE_COST_CALCULATIONS:
        return t->cfg.components.observability.trace_cost_calculations;
    case AF_TRACE_HEALTH_CHECKS:
        return t->cfg.components.observability.trace_health_checks;
    case AF_TRACE_COMPONENT_COUNT:
        break;
    }
    return false;
}

af_tracer *af_tracing_tracer_for(const af_tracing *t, af_trace_component c)
{
    return af_tracing_component_enabled(t, c) ? t->tracer : NULL;
}

af_tracer_provider *af_tracing_provider(const af_tracing *t)
{
    return t ? t->provider : NULL;
}

const af_tracing_config *af_tracing_config_of(const af_tracing *t)
{
    return t ? &t->cfg : NULL;
}
