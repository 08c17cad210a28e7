/*
 * agentaflow/trace_sdk.h - the SDK's extension points: the readable span that exporters see,
 * and the processor and exporter interfaces, with the simple and batch processors.
 *
 * Threads: a processor's on_end may be called from any thread at once. An exporter's export()
 * is never called concurrently for one exporter (processors serialize it); force_flush and
 * shutdown may race with export and must be safe for that.
 */
#ifndef AGENTAFLOW_TRACE_SDK_H
#define AGENTAFLOW_TRACE_SDK_H

#include "agentaflow/trace.h"

#ifdef __cplusplus
extern "C" {
#endif
AF_API_BEGIN

/* ---------------------------------------------------------------------------------------- */
/* Readable span data. Every pointer is owned by the span and valid while an exporter holds  */
/* the batch (during export()); strings are NUL-terminated.                                  */

typedef struct af_instrumentation_scope {
    const char *name;
    const char *version;    /* "" when none */
    const char *schema_url; /* "" when none */
    const af_attr *attrs;   /* the scope's attributes (af_tracer_opts); NULL when none */
    size_t n_attrs;
} af_instrumentation_scope;

typedef struct af_event_data {
    uint64_t time_ns;
    const char *name;
    const af_attr *attrs;
    uint32_t n_attrs;
    uint32_t dropped_attrs;
} af_event_data;

typedef struct af_link_data {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t trace_flags;
    bool is_remote;
    const char *trace_state; /* "" when none */
    const af_attr *attrs;
    uint32_t n_attrs;
    uint32_t dropped_attrs;
} af_link_data;

typedef struct af_span_data {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_span_id[8]; /* all zero for a root span */
    uint8_t trace_flags;
    bool has_parent;
    bool parent_is_remote;
    const char *trace_state; /* "" when none */
    const char *name;
    af_span_kind kind;
    uint64_t start_ns;
    uint64_t end_ns;
    const af_attr *attrs;
    uint32_t n_attrs;
    uint32_t dropped_attrs;
    const af_event_data *events;
    uint32_t n_events;
    uint32_t dropped_events;
    const af_link_data *links;
    uint32_t n_links;
    uint32_t dropped_links;
    af_status_code status;
    const char *status_message; /* "" unless status is Error with a description */
    const af_resource *resource;
    const af_instrumentation_scope *scope;
} af_span_data;

/* ---------------------------------------------------------------------------------------- */
/* Exporters.                                                                                */

typedef struct af_exporter af_exporter;

/* State every network exporter keeps, for health checks. Strings are copied into the struct. */
typedef struct af_exporter_health {
    char type[16];
    char endpoint[256];       /* URL without userinfo or query */
    uint64_t last_success_ns; /* wall clock, 0 = never */
    uint64_t last_failure_ns;
    char last_error[256];
    uint32_t consecutive_failures;
    uint64_t spans_exported;
    uint64_t spans_failed;
    uint64_t spans_rejected; /* partial success: rejected by the collector */
    uint64_t retries;
} af_exporter_health;

/* The moment of a fork() at which af_exporter_ops.atfork runs. */
typedef enum af_fork_phase {
    AF_FORK_PREPARE = 0, /* in the parent, before the fork */
    AF_FORK_PARENT = 1,  /* in the parent, after the fork */
    AF_FORK_CHILD = 2,   /* in the child, where only the forking thread exists */
} af_fork_phase;

/*
 * Exporter hooks. Deadlines are absolute CLOCK_MONOTONIC nanoseconds (af_monotonic_ns());
 * an implementation must return by then. export() returns 0 or a negative code; the batch
 * stays valid only during the call, so an exporter that keeps spans copies them.
 */
typedef struct af_exporter_ops {
    const char *type; /* "otlp_http", "jaeger", "stdout", "memory", ... */
    int (*export_spans)(void *self, const af_span_data *const *spans, size_t n,
                        uint64_t deadline_ns);
    int (*force_flush)(void *self, uint64_t deadline_ns); /* may be NULL */
    int (*shutdown)(void *self, uint64_t deadline_ns);    /* may be NULL */
    void (*destroy)(void *self);                          /* frees self; may be NULL */
    /* Fills *out (type and counters are pre-filled by the caller); may be NULL. */
    void (*health)(void *self, af_exporter_health *out);
    /*
     * Optional (may be NULL or left out of an initializer), for exporters with locks or
     * connections. Runs inside the library's pthread_atfork handlers for each exporter a batch
     * or simple processor owns, possibly while another thread is inside export(). PREPARE
     * takes the exporter's short-held locks (never one held across I/O), so the child
     * inherits them in a consistent state; PARENT releases them; CHILD runs in the child,
     * where the threads that used the exporter do not exist: it re-creates those locks (not
     * just unlocks them) and forgets the parent's work in progress (an export, a connection).
     * It must not block, start threads or do I/O; the next export runs in the child.
     */
    void (*atfork)(void *self, af_fork_phase phase);
} af_exporter_ops;

/* Wraps hooks into an exporter. Takes ownership of `self` (destroy runs in af_exporter_free).
 * `ops` must outlive the exporter (normally a static const). */
int af_exporter_new(const af_exporter_ops *ops, void *self, af_exporter **out);
void af_exporter_free(af_exporter *e);
int af_exporter_export(af_exporter *e, const af_span_data *const *spans, size_t n,
                       uint64_t deadline_ns);
int af_exporter_force_flush(af_exporter *e, uint64_t deadline_ns);
int af_exporter_shutdown(af_exporter *e, uint64_t deadline_ns);
const char *af_exporter_type(const af_exporter *e);
/* Health of any exporter: type always; the rest from the exporter's health hook if it has
 * one (network exporters do). */
void af_exporter_health_get(const af_exporter *e, af_exporter_health *out);
void *af_exporter_self(const af_exporter *e);

/* ---------------------------------------------------------------------------------------- */
/* Processors.                                                                               */

/* Counters a processor keeps; all monotonic except queue_depth. */
typedef struct af_processor_stats {
    uint64_t queued;   /* spans accepted into the queue (batch) or handed to export (simple) */
    uint64_t dropped;  /* spans dropped because the queue was full or after shutdown */
    uint64_t exported; /* spans in batches the exporter accepted */
    uint64_t failed;   /* spans in batches the exporter rejected or timed out on */
    uint64_t export_calls;
    uint64_t export_ns_total; /* time spent inside export(), for latency averages */
    uint32_t queue_depth;
    uint32_t queue_capacity;
    uint64_t last_drop_ns; /* af_monotonic_ns() of the latest drop, to the kernel tick
                              (CLOCK_MONOTONIC_COARSE); 0 = never */
} af_processor_stats;

/*
 * Simple processor: exports each ended sampled span at once on the ending thread, serialized
 * by a mutex. Meant for debugging (stdout) and tests; it does I/O on the caller's thread.
 * Takes ownership of the exporter, even on failure.
 */
int af_simple_processor_new(af_exporter *exporter, af_span_processor **out);

typedef struct af_batch_processor_opts {
    uint32_t max_queue_size;        /* 2048; spans queued by all threads together */
    uint32_t max_export_batch_size; /* 512; clamped to max_queue_size */
    uint32_t schedule_delay_ms;     /* 5000 */
    uint32_t export_timeout_ms;     /* 30000; 0 = no limit */
} af_batch_processor_opts;

/* Spec defaults, then OTEL_BSP_* from the environment where set and valid. */
void af_batch_processor_opts_init(af_batch_processor_opts *o);

/*
 * Batch processor: ended spans go into a bounded queue (a lane per thread, no locks); one
 * named thread ("af-bsp") exports batches when max_export_batch_size spans wait, when the
 * schedule delay elapses, or on force_flush. A full queue drops the span and counts it: the
 * ending thread never blocks. Takes ownership of the exporter, even on failure.
 */
int af_batch_processor_new(af_exporter *exporter, const af_batch_processor_opts *opts,
                           af_span_processor **out);

/* Custom processors. on_start sees a span that is still being built (recording spans only);
 * on_end gets the finished data, borrowed for the duration of the call unless the
 * processor claims it with af_span_data_retain(). */
typedef struct af_span_processor_ops {
    void (*on_start)(void *self, const af_span_data *span);
    void (*on_end)(void *self, const af_span_data *span);
    int (*force_flush)(void *self, uint64_t deadline_ns);
    int (*shutdown)(void *self, uint64_t deadline_ns);
    void (*destroy)(void *self);
} af_span_processor_ops;

int af_span_processor_new(const af_span_processor_ops *ops, void *self, af_span_processor **out);
void af_span_processor_free(af_span_processor *p);
void af_span_processor_stats_get(const af_span_processor *p, af_processor_stats *out);
/* The exporter a simple or batch processor feeds (NULL for custom processors). Borrowed. */
af_exporter *af_span_processor_exporter(const af_span_processor *p);

/* Keep a span's data beyond on_end: each retain needs one af_span_data_release. */
void af_span_data_retain(const af_span_data *span);
void af_span_data_release(const af_span_data *span);

/* The processors of a provider, in slot order: up to cap of them into out (borrowed until the
 * provider is freed); returns how many there are. A snapshot: a reload may replace one. */
size_t af_tracer_provider_processors(const af_tracer_provider *p, af_span_processor **out,
                                     size_t cap);

/* Provider-wide counters (for health and Prometheus self-metrics). */
typedef struct af_provider_stats {
    uint64_t spans_started;   /* recording spans started */
    uint64_t spans_ended;     /* recording spans ended */
    uint64_t spans_unsampled; /* spans started without recording */
    uint64_t spans_dropped;   /* sum of processors' dropped */
    uint64_t spans_exported;  /* sum of processors' exported */
    uint64_t spans_failed;    /* sum of processors' failed */
    uint64_t last_drop_ns;    /* latest of processors' last_drop_ns; 0 = never */
} af_provider_stats;

void af_tracer_provider_stats(const af_tracer_provider *p, af_provider_stats *out);

AF_API_END
#ifdef __cplusplus
}
#endif
#endif
