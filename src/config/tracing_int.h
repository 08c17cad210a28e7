/*
 * config/tracing_int.h - the af_tracing object, shared by tracing.c (construction,
 * lifecycle) and health.c (HealthCheck).
 */
#ifndef AF_CONFIG_TRACING_INT_H
#define AF_CONFIG_TRACING_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "agentaflow/tracing.h"
#include "trace/fork.h"

/* How health judges drops: "dropping" while the latest drop is less than drop_window_ns
 * old on `clock`. Nothing here changes on a read, so any number of readers agree. Tests
 * replace the clock to step past the window instead of waiting for it. */
#define AF__HEALTH_DROP_WINDOW_NS (60ull * 1000000000ull)

typedef struct af__tracing_health_state {
    uint64_t drop_window_ns;
    uint64_t (*clock)(void); /* af_monotonic_ns */
} af__tracing_health_state;

/* One effective configuration. af_tracing_reconfigure publishes a new one and keeps the
 * old: af_tracing_config_of hands out borrowed pointers (health, /api/v1/config) that a
 * reload must not free under their readers, so every version lives until af_tracing_free. */
typedef struct af__tracing_version {
    af_tracing_config cfg;
    char sampler_desc[256]; /* the sampler as af_sampler_description would describe it */
    struct af__tracing_version *older;
} af__tracing_version;

/* The tracing.exporters.* the configuration builds, in build order. */
enum { AF__EXP_JAEGER, AF__EXP_OTLP_HTTP, AF__EXP_STDOUT, AF__EXP_COUNT };

struct af_tracing {
    _Atomic(af__tracing_version *) cur; /* never NULL after af_tracing_new */
    af_tracer_provider *provider;       /* NULL when tracing.enabled is false */
    af_tracer *tracer;                  /* borrowed from the provider */
    pthread_mutex_t lock;               /* serializes add_exporter and reconfigure */
    af__fork_participant fork;          /* takes lock around fork(), re-creates it after */
    size_t n_exporters;                 /* live processors added by this object */
    /* The processor of each configured exporter (owned by the provider), NULL when off. */
    af_span_processor *config_procs[AF__EXP_COUNT];
    /* Read on every root span's sampling decision and every tracer_for call, written by a
     * reload: the ratio bound of TraceIdRatioBased (see sampler.c) and one bit per
     * af_trace_component. */
    _Atomic uint64_t ratio_bound;
    _Atomic uint32_t toggles;
    af__tracing_health_state *health;
};

/* The effective configuration now (borrowed until af_tracing_free). */
static inline const af_tracing_config *af__tracing_cfg(const af_tracing *t)
{
    return &atomic_load_explicit(&((af_tracing *)t)->cur, memory_order_acquire)->cfg;
}

#endif
