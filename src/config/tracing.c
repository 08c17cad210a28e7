/*
 * TracingIntegration: turns an af_tracing_config into a provider with one batch processor
 * per enabled exporter, and applies the components.* toggles. af_tracing_reconfigure
 * changes the reloadable part of a running one (sampling ratio, exporters, toggles).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/export.h"
#include "agentaflow/log.h"
#include "config/config_int.h"
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

/* The bound of TraceIdRatioBased for ratio (sampler.c's formula, so decisions agree). */
static uint64_t ratio_bound(double ratio)
{
    if (!(ratio > 0.0))
        return 0;
    return ratio >= 1.0 ? UINT64_C(1) << 63 : (uint64_t)(ratio * 9223372036854775808.0);
}

/* The root sampler: TraceIdRatioBased whose ratio a reload may change while spans start,
 * so the bound is an atomic of the integration rather than a field of an immutable
 * af_sampler. Same decision as af_sampler_trace_id_ratio for the same ratio. */
static af_sampling_decision reloadable_should_sample(void *self, const af_sampling_params *p)
{
    const af_tracing *t = self;
    if (!p->trace_id)
        return AF_SAMPLING_DROP;
    uint64_t x = 0;
    for (int i = 8; i < 16; i++)
        x = x << 8 | p->trace_id[i];
    return (x >> 1) < atomic_load_explicit(&t->ratio_bound, memory_order_relaxed)
               ? AF_SAMPLING_RECORD_AND_SAMPLE
               : AF_SAMPLING_DROP;
}

static const char *reloadable_description(void *self)
{
    (void)self;
    return "TraceIdRatioBased{reloadable}";
}

static const af_sampler_ops reloadable_ops = {.should_sample = reloadable_should_sample,
                                              .description = reloadable_description};

/* What health shows: the description of the equivalent fixed sampler. */
static void describe_sampler(double ratio, char *out, size_t len)
{
    af_sampler *root = ratio >= 1.0 ? af_sampler_always_on() : af_sampler_trace_id_ratio(ratio);
    af_sampler *s = root ? af_sampler_parent_based(root, NULL, NULL, NULL, NULL) : NULL;
    snprintf(out, len, "%s", s ? af_sampler_description(s) : "ParentBased");
    af_sampler_free(s);
}

static uint32_t toggles_of(const af_tracing_config *c)
{
    const bool on[AF_TRACE_COMPONENT_COUNT] = {
        [AF_TRACE_GPU_WORKLOAD_SUBMISSION] = c->components.gpu_scheduler.trace_workload_submission,
        [AF_TRACE_GPU_SCHEDULING_DECISIONS] =
            c->components.gpu_scheduler.trace_scheduling_decisions,
        [AF_TRACE_GPU_REGISTRATION] = c->components.gpu_scheduler.trace_gpu_registration,
        [AF_TRACE_METRICS_COLLECTION_CYCLES] =
            c->components.metrics_collector.trace_collection_cycles,
        [AF_TRACE_METRICS_INDIVIDUAL_GPUS] = c->components.metrics_collector.trace_individual_gpus,
        [AF_TRACE_MODEL_INFERENCE_REQUESTS] = c->components.model_serving.trace_inference_requests,
        [AF_TRACE_MODEL_LOADING] = c->components.model_serving.trace_model_loading,
        [AF_TRACE_API_REQUESTS] = c->components.web_dashboard.trace_api_requests,
        [AF_TRACE_WEBSOCKET_EVENTS] = c->components.web_dashboard.trace_websocket_events,
        [AF_TRACE_COST_CALCULATIONS] = c->components.observability.trace_cost_calculations,
        [AF_TRACE_HEALTH_CHECKS] = c->components.observability.trace_health_checks,
    };
    uint32_t bits = 0;
    for (int i = 0; i < AF_TRACE_COMPONENT_COUNT; i++)
        bits |= (uint32_t)on[i] << i;
    return bits;
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

static const char *const exporter_keys[AF__EXP_COUNT] = {
    "tracing.exporters.jaeger", "tracing.exporters.otlp_http", "tracing.exporters.stdout"};

/* The batch processor of configured exporter `which`, or *out NULL when it is disabled. */
static int build_exporter(const af_tracing_config *cfg, int which, af_span_processor **out,
                          char *err, size_t err_len)
{
    af_batch_processor_opts bopts;
    batch_opts_from(cfg, &bopts);
    af_exporter *e = NULL;
    int rc = 0;
    *out = NULL;
    if (which == AF__EXP_JAEGER) {
        if (!cfg->tracing.exporters.jaeger.enabled)
            return 0;
        af_jaeger_opts o;
        af_jaeger_opts_init(&o);
        o.endpoint = cfg->tracing.exporters.jaeger.endpoint;
        if (cfg->performance.export_timeout_ms)
            o.timeout_ms = cfg->performance.export_timeout_ms;
        rc = af_jaeger_exporter_new(&o, &e);
    } else if (which == AF__EXP_OTLP_HTTP) {
        if (!cfg->tracing.exporters.otlp_http.enabled)
            return 0;
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
    } else {
        if (!cfg->tracing.exporters.stdout_.enabled)
            return 0;
        af_stdout_exporter_opts o;
        af_stdout_exporter_opts_init(&o);
        o.pretty_print = cfg->tracing.exporters.stdout_.pretty_print;
        rc = af_stdout_exporter_new(&o, &e);
    }
    if (rc == 0)
        rc = af_batch_processor_new(e, &bopts, out); /* takes the exporter even on failure */
    if (rc != 0)
        snprintf(err, err_len, "%s: %s", exporter_keys[which], af_strerror(rc));
    return rc;
}

static int build_exporters(af_tracing *t, char *err, size_t err_len)
{
    for (int i = 0; i < AF__EXP_COUNT; i++) {
        af_span_processor *proc = NULL;
        int rc = build_exporter(af__tracing_cfg(t), i, &proc, err, err_len);
        if (rc == 0 && proc && (rc = af_tracer_provider_add_processor(t->provider, proc)) != 0)
            snprintf(err, err_len, "%s: %s", exporter_keys[i], af_strerror(rc));
        if (rc != 0)
            return rc;
        if (proc)
            t->n_exporters++;
        t->config_procs[i] = proc;
    }
    return 0;
}

static af__tracing_version *version_new(const af_tracing_config *cfg)
{
    af__tracing_version *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    if (af_tracing_config_copy(&v->cfg, cfg) != 0) {
        free(v);
        return NULL;
    }
    describe_sampler(cfg->tracing.sampling_ratio, v->sampler_desc, sizeof v->sampler_desc);
    return v;
}

static void versions_free(af__tracing_version *v)
{
    while (v) {
        af__tracing_version *older = v->older;
        af_tracing_config_clear(&v->cfg);
        free(v);
        v = older;
    }
}

/* tracing.enabled: the provider (limits, resource, the reloadable parent-based sampler), its
 * exporters and the integration's tracer. On failure nothing of it is left in t. */
static int start_provider(af_tracing *t, const af_tracing_config *cfg, char *err, size_t err_len)
{
    int rc;
    af_tracer_provider_opts po;
    af_tracer_provider_opts_init(&po);
    if (cfg->tracing.attribute_value_length_default) {
        /* Re-reading the environment after the default keeps the user's variables first. */
        po.limits.attribute_value_length = cfg->tracing.attribute_value_length_default;
        af_span_limits_from_env(&po.limits);
    }
    if ((rc = build_resource(cfg, &po.resource)) != 0) {
        snprintf(err, err_len, "resource_attributes: %s", af_strerror(rc));
        return rc;
    }
    af_sampler *root = af_sampler_custom(&reloadable_ops, t);
    po.sampler = root ? af_sampler_parent_based(root, NULL, NULL, NULL, NULL) : NULL;
    if (!po.sampler) {
        af_resource_free(po.resource);
        return -ENOMEM;
    }
    if ((rc = af_tracer_provider_new(&po, &t->provider)) != 0) {
        snprintf(err, err_len, "tracer provider: %s", af_strerror(rc));
        return rc;
    }
    if ((rc = build_exporters(t, err, err_len)) != 0) {
        /* No span was started yet, so freeing has nothing to flush. */
        af_tracer_provider_free(t->provider);
        t->provider = NULL;
        return rc;
    }
    t->tracer =
        af_tracer_provider_get_tracer(t->provider, AF_TRACING_SCOPE, AF_VERSION_STRING, NULL);
    return 0;
}

/* Fork (trace/fork.h): the lock is the first in the library's order (it is held while
 * processors are created, added, replaced and shut down), so the prepare waits for a running
 * reconfigure, whose old pipeline's shutdown is bounded. The child re-creates it. */
static void tracing_fork_prepare(void *self)
{
    pthread_mutex_lock(&((af_tracing *)self)->lock);
}

static void tracing_fork_parent(void *self)
{
    pthread_mutex_unlock(&((af_tracing *)self)->lock);
}

static void tracing_fork_child(void *self)
{
    pthread_mutex_init(&((af_tracing *)self)->lock, NULL); /* its holder is gone */
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
    af__tracing_version *v = version_new(cfg);
    if (!v)
        goto fail_cfg;
    atomic_init(&t->cur, v);
    atomic_init(&t->ratio_bound, ratio_bound(cfg->tracing.sampling_ratio));
    atomic_init(&t->toggles, toggles_of(cfg));

    if (cfg->tracing.enabled && (rc = start_provider(t, cfg, err, err_len)) != 0)
        goto fail_provider;
    t->fork = (af__fork_participant){tracing_fork_prepare, tracing_fork_parent, tracing_fork_child,
                                     t, NULL};
    af__fork_register(&t->fork, AF__FORK_TRACING);
    *out = t;
    return 0;

fail_provider:
    versions_free(v);
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

/* The running configuration with the reloadable keys of `next` (af_config_key_reloadable):
 * what a reload puts into effect, and what /api/v1/config then shows. */
static int merge_reloadable(const af_tracing_config *running, const af_tracing_config *next,
                            af_tracing_config *out)
{
    af_tracing_config tmp;
    if (af_tracing_config_copy(out, running) != 0)
        return -ENOMEM;
    if (af_tracing_config_copy(&tmp, next) != 0) {
        af_tracing_config_clear(out);
        return -ENOMEM;
    }
    /* Swapping whole sub-structs moves their owned strings; tmp frees what out had. */
#define SWAP(field)                                                                                \
    do {                                                                                           \
        __typeof__(out->field) x = out->field;                                                     \
        out->field = tmp.field;                                                                    \
        tmp.field = x;                                                                             \
    } while (0)
    SWAP(tracing.sampling_ratio);
    SWAP(tracing.exporters);
    SWAP(components);
    SWAP(server.log_level);
    SWAP(server.log_levels);
    SWAP(server.n_log_levels);
    SWAP(server.log_format);
#undef SWAP
    af_tracing_config_clear(&tmp);
    return 0;
}

/* Bound on stopping a replaced exporter (its final flush) during a reload: SIGHUP is handled
 * on the signal thread, and a dead collector must not hold off a SIGTERM behind it. */
#define RELOAD_STOP_MS 5000u

int af_tracing_reconfigure(af_tracing *t, const af_tracing_config *next, char *err, size_t err_len)
{
    char dummy[8];
    if (!err || !err_len) {
        err = dummy;
        err_len = sizeof dummy;
    }
    err[0] = '\0';
    if (!t || !next) {
        snprintf(err, err_len, "no configuration");
        return -EINVAL;
    }
    pthread_mutex_lock(&t->lock);
    af__tracing_version *old = atomic_load(&t->cur);
    af__tracing_version *v = calloc(1, sizeof *v);
    int rc = v ? merge_reloadable(&old->cfg, next, &v->cfg) : -ENOMEM;
    if (rc != 0) {
        free(v);
        pthread_mutex_unlock(&t->lock);
        snprintf(err, err_len, "out of memory");
        return rc;
    }
    describe_sampler(v->cfg.tracing.sampling_ratio, v->sampler_desc, sizeof v->sampler_desc);

    /* Build every changed exporter before touching the pipeline, so a failure leaves the
     * running one exactly as it was. */
    af_span_processor *fresh[AF__EXP_COUNT] = {0};
    bool changed[AF__EXP_COUNT] = {0};
    for (int i = 0; t->provider && rc == 0 && i < AF__EXP_COUNT; i++) {
        changed[i] = af__config_section_differs(&old->cfg, &v->cfg, exporter_keys[i]);
        if (changed[i])
            rc = build_exporter(&v->cfg, i, &fresh[i], err, err_len);
    }
    if (rc != 0) {
        for (int i = 0; i < AF__EXP_COUNT; i++)
            af_span_processor_free(fresh[i]);
        versions_free(v);
        pthread_mutex_unlock(&t->lock);
        return rc;
    }
    atomic_store_explicit(&t->ratio_bound, ratio_bound(v->cfg.tracing.sampling_ratio),
                          memory_order_relaxed);
    atomic_store_explicit(&t->toggles, toggles_of(&v->cfg), memory_order_relaxed);
    v->older = old;
    atomic_store_explicit(&t->cur, v, memory_order_release);

    for (int i = 0; i < AF__EXP_COUNT; i++) {
        if (!changed[i])
            continue;
        af_span_processor *was = t->config_procs[i];
        int r = 0;
        if (was)
            r = af_tracer_provider_replace_processor(t->provider, was, fresh[i], RELOAD_STOP_MS);
        else if (fresh[i])
            r = af_tracer_provider_add_processor(t->provider, fresh[i]);
        if (r == 0) {
            t->n_exporters += (size_t) !!fresh[i] - (size_t) !!was;
            t->config_procs[i] = fresh[i];
        } else if (rc == 0) { /* only after a shutdown of the provider, which ends reloads */
            rc = r;
            snprintf(err, err_len, "%s: %s", exporter_keys[i], af_strerror(r));
        }
    }
    pthread_mutex_unlock(&t->lock);
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
        batch_opts_from(af__tracing_cfg(t), &own);
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
    af__fork_unregister(&t->fork, AF__FORK_TRACING);
    if (t->provider) {
        /* A no-op (AF_ESHUTDOWN) when the owner already shut down; otherwise the final
         * flush is bounded by performance.max_export_timeout (0 = no limit). */
        uint32_t bound = af__tracing_cfg(t)->performance.max_export_timeout_ms;
        af_tracer_provider_shutdown(t->provider, bound ? bound : UINT32_MAX);
        af_tracer_provider_free(t->provider);
    }
    versions_free(atomic_load(&t->cur));
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
    if (!t || !t->tracer || (unsigned)c >= AF_TRACE_COMPONENT_COUNT)
        return false;
    return atomic_load_explicit(&((af_tracing *)t)->toggles, memory_order_relaxed) >> c & 1u;
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
    return t ? af__tracing_cfg(t) : NULL;
}
