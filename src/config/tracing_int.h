/*
 * config/tracing_int.h - the af_tracing object, shared by tracing.c (construction,
 * lifecycle) and health.c (HealthCheck).
 */
#ifndef AF_CONFIG_TRACING_INT_H
#define AF_CONFIG_TRACING_INT_H

#include <pthread.h>

#include "agentaflow/tracing.h"

/* What health checks remember between calls; behind a pointer so that the const
 * af_tracing the getters receive can still update it. */
typedef struct af__tracing_health_state {
    pthread_mutex_t lock;
    uint64_t last_dropped; /* provider dropped count at the previous check */
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
