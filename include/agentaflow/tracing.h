/*
 * agentaflow/tracing.h - the document's TracingIntegration: one object that turns an
 * af_tracing_config (config.h) into a running tracer provider with its exporters, applies
 * the components.* toggles and answers HealthCheck().
 *
 * Threads: every function is thread-safe. Ownership: af_tracing owns the provider, the
 * processors and the exporters it created; af_tracing_free releases them.
 */
#ifndef AGENTAFLOW_TRACING_H
#define AGENTAFLOW_TRACING_H

#include "agentaflow/config.h"
#include "agentaflow/trace_sdk.h"

#ifdef __cplusplus
extern "C" {
#endif
AF_API_BEGIN

/* The components.* toggles of tracing-config.yaml. */
typedef enum af_trace_component {
    AF_TRACE_GPU_WORKLOAD_SUBMISSION = 0, /* components.gpu_scheduler.trace_workload_submission */
    AF_TRACE_GPU_SCHEDULING_DECISIONS,    /* components.gpu_scheduler.trace_scheduling_decisions */
    AF_TRACE_GPU_REGISTRATION,            /* components.gpu_scheduler.trace_gpu_registration */
    AF_TRACE_METRICS_COLLECTION_CYCLES,   /* components.metrics_collector.trace_collection_cycles */
    AF_TRACE_METRICS_INDIVIDUAL_GPUS,     /* components.metrics_collector.trace_individual_gpus */
    AF_TRACE_MODEL_INFERENCE_REQUESTS,    /* components.model_serving.trace_inference_requests */
    AF_TRACE_MODEL_LOADING,               /* components.model_serving.trace_model_loading */
    AF_TRACE_API_REQUESTS,                /* components.web_dashboard.trace_api_requests */
    AF_TRACE_WEBSOCKET_EVENTS,            /* components.web_dashboard.trace_websocket_events */
    AF_TRACE_COST_CALCULATIONS,           /* components.observability.trace_cost_calculations */
    AF_TRACE_HEALTH_CHECKS,               /* components.observability.trace_health_checks */
    AF_TRACE_COMPONENT_COUNT
} af_trace_component;

typedef struct af_tracing af_tracing;

/*
 * Builds resource, sampler (ParentBased(TraceIdRatioBased(sampling_ratio))), one batch
 * processor per enabled exporter (so a dead exporter never delays another) and the tracer.
 * With tracing.enabled false it builds a disabled integration: af_tracing_tracer() returns
 * NULL. The config is copied. Returns 0, -EINVAL (with err filled) or -ENOMEM.
 */
int af_tracing_new(const af_tracing_config *cfg, af_tracing **out, char *err, size_t err_len);
/*
 * Applies the reloadable part of `next` (af_config_key_reloadable: sampling ratio,
 * tracing.exporters.*, components.*, server.log_*) to a running integration; every other key
 * keeps its running value (af_config_restart_keys lists those that differ). The ratio and the
 * toggles take effect for the next span started. An exporter whose settings changed is
 * rebuilt: its new batch processor takes the old one's place in the provider, then the old one
 * is stopped with its queue flushed (at most 5 s); unchanged exporters keep running. When a new
 * exporter cannot be built, nothing changes and err says why. The configuration is copied;
 * earlier af_tracing_config_of pointers stay valid until af_tracing_free. Returns 0, -EINVAL,
 * -ENOMEM or the exporter's error.
 */
int af_tracing_reconfigure(af_tracing *t, const af_tracing_config *next, char *err, size_t err_len);
/* Adds another exporter behind its own batch processor (e.g. the daemon's trace store).
 * Takes ownership of the exporter, even on failure. */
int af_tracing_add_exporter(af_tracing *t, af_exporter *e, const af_batch_processor_opts *opts);
/* Flush and stop the exporters, bounded by timeout_ms in total. */
int af_tracing_shutdown(af_tracing *t, uint32_t timeout_ms);
int af_tracing_force_flush(af_tracing *t, uint32_t timeout_ms);
void af_tracing_free(af_tracing *t);

/* The tracer all components use; NULL when tracing is disabled or t is NULL. */
af_tracer *af_tracing_tracer(const af_tracing *t);
/* The tracer when component c is switched on, else NULL (so its spans vanish). A reload can
 * flip the answer: components ask per operation rather than keep the result. */
af_tracer *af_tracing_tracer_for(const af_tracing *t, af_trace_component c);
bool af_tracing_component_enabled(const af_tracing *t, af_trace_component c);
af_tracer_provider *af_tracing_provider(const af_tracing *t);
/* The effective configuration (borrowed). */
const af_tracing_config *af_tracing_config_of(const af_tracing *t);

/* ---------------------------------------------------------------------------------------- */
/* HealthCheck.                                                                              */

#define AF_TRACING_MAX_EXPORTERS 8

typedef enum af_health_status {
    AF_HEALTH_HEALTHY = 0,
    AF_HEALTH_DEGRADED = 1, /* an exporter is failing or spans were dropped in the last 60 s */
    AF_HEALTH_DISABLED = 2,
} af_health_status;

typedef struct af_tracing_health {
    af_health_status status;
    char service_name[128];
    char sampler[128]; /* sampler description */
    double sampling_ratio;
    uint32_t queue_depth;    /* summed over processors */
    uint32_t queue_capacity; /* summed over processors */
    af_provider_stats spans;
    size_t n_exporters;
    af_exporter_health exporters[AF_TRACING_MAX_EXPORTERS];
    uint64_t export_latency_ns_avg;
} af_tracing_health;

const char *af_health_status_name(af_health_status s); /* "healthy", "degraded", "disabled" */
/* Fills *out. A NULL t reports disabled. A pure read: any number of readers agree. */
void af_tracing_health_get(const af_tracing *t, af_tracing_health *out);
/* The same as a JSON object (malloc'd, caller frees); NULL on ENOMEM. No secrets in it. */
char *af_tracing_health_json(const af_tracing *t);
/* The JSON object of a health record already read (so one report shows one reading). */
char *af_tracing_health_to_json(const af_tracing *t, const af_tracing_health *h);

AF_API_END
#ifdef __cplusplus
}
#endif
#endif
