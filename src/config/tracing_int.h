/*
 * config/tracing_int.h - the af_tracing object, shared by tracing.c (construction,
 * lifecycle) and health.c (HealthCheck).
 */
#ifndef AF_CONFIG_TRACING_INT_H
#define AF_CONFIG_TRACING_INT_H

#include <pthread.h>

#include "agentaflow/tracing.h"

/* How health judges drops: "dropping" while the latest drop is less than drop_window_ns
 * old on `clock`. Nothing here changes on a read, so any number of readers agree. Tests
 * replace the clock to step past the window instead of waiting for it. */
#define AF__HEALTH_DROP_WINDOW_NS (60ull * 1000000000ull)

typedef struct af__tracing_health_state {
    uint64_t drop_window_ns;
    uint64_t (*clock)(void); /* af_monotonic_ns */
} af__tracing_health_state;

struct af_tracing {
    af_tracing_config cfg;        /* owned copy */
    af_tracer_provider *provider; /* NULL when tracing.enabled is false */
    af_tracer *tracer;            /* borrowed from the provider */
    pthread_mutex_t lock;         /* serializes add_exporter against itself */
    size_t n_exporters;           /* processors added by this object */
    af__tracing_health_state *health;
};

#endif
