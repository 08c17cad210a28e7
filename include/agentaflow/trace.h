/*
 * agentaflow/trace.h - the tracing API: provider, tracers, spans, samplers, current context.
 *
 * Threads: every function here may be called from any thread at any time, including on the
 * same span from several threads at once (each span has a tiny internal lock).
 *
 * Ownership in one paragraph: a provider owns its processors, exporters, sampler and resource
 * and frees them in af_tracer_provider_free(). Tracers belong to their provider and are freed
 * with it. A span handle (af_span, a small value) stays safe to use after the span ended: any
 * later call on it is ignored. Strings and attributes passed in are always copied.
 */
#ifndef AGENTAFLOW_TRACE_H
#define AGENTAFLOW_TRACE_H

#include "agentaflow/common.h"

#ifdef __cplusplus
extern "C" {
#endif
AF_API_BEGIN

/* ---------------------------------------------------------------------------------------- */
/* Span context: a copyable value that identifies a span across threads and processes.       */

#define AF_TRACE_FLAG_SAMPLED 0x01
#define AF_TRACE_FLAG_RANDOM 0x02 /* W3C Level 2: the trace id's right 7 bytes are random */

/* W3C says vendors SHOULD propagate at least 512 characters of tracestate; we keep exactly
 * that much, truncating by the spec's order (entries over 128 characters first, then from the
 * end) when a longer one arrives. */
#define AF_TRACE_STATE_MAX 512

typedef struct af_span_context {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t trace_flags;
    bool is_remote;
    uint16_t trace_state_len;                 /* bytes used in trace_state, 0 = none */
    char trace_state[AF_TRACE_STATE_MAX + 1]; /* NUL-terminated W3C tracestate value */
} af_span_context;

/* A context whose ids are all zero (the "invalid" span context). */
void af_span_context_init(af_span_context *sc);
/* True when both ids have at least one non-zero byte. */
bool af_span_context_is_valid(const af_span_context *sc);
bool af_span_context_is_sampled(const af_span_context *sc);
/* Lower-case hex of the ids; `out` must hold 33 (trace) or 17 (span) bytes. */
void af_trace_id_to_hex(const uint8_t id[16], char out[33]);
void af_span_id_to_hex(const uint8_t id[8], char out[17]);
/* Parse lower- or upper-case hex; returns 0 or -EINVAL. */
int af_trace_id_from_hex(const char *hex, size_t len, uint8_t out[16]);
int af_span_id_from_hex(const char *hex, size_t len, uint8_t out[8]);

/* ---------------------------------------------------------------------------------------- */
/* Span kinds and status (numbers are the OTLP enum values).                                 */

typedef enum af_span_kind {
    AF_SPAN_KIND_INTERNAL = 1,
    AF_SPAN_KIND_SERVER = 2,
    AF_SPAN_KIND_CLIENT = 3,
    AF_SPAN_KIND_PRODUCER = 4,
    AF_SPAN_KIND_CONSUMER = 5,
} af_span_kind;

typedef enum af_status_code {
    AF_STATUS_UNSET = 0,
    AF_STATUS_OK = 1,
    AF_STATUS_ERROR = 2,
} af_status_code;

const char *af_span_kind_name(af_span_kind kind);     /* "internal", "server", ... */
const char *af_status_code_name(af_status_code code); /* "UNSET", "OK", "ERROR" */

/* ---------------------------------------------------------------------------------------- */
/* Resource: immutable set of attributes describing the process (service.name, ...).        */

typedef struct af_resource af_resource;

/*
 * Builds the SDK resource. Precedence, lowest first (a later source overwrites a key):
 * telemetry.sdk.{name,language,version}; OTEL_RESOURCE_ATTRIBUTES; OTEL_SERVICE_NAME (as
 * service.name); `attrs` given in code (may be NULL: code beats the environment, the spec's
 * precedence). service.name falls back to "unknown_service:<executable>" when nobody set it.
 * Returns 0, -EINVAL (an attribute with a NULL or empty key, or a NULL value pointer) or
 * -ENOMEM. A malformed OTEL_RESOURCE_ATTRIBUTES is ignored as a whole, with one af_log
 * warning naming the variable and the problem.
 */
int af_resource_new(const af_attr *attrs, size_t n_attrs, af_resource **out);
/* A resource with exactly these attributes (no SDK defaults, no environment); a repeated key
 * keeps its last value. Values are deep-copied. Returns 0, -EINVAL or -ENOMEM. */
int af_resource_new_raw(const af_attr *attrs, size_t n_attrs, af_resource **out);
void af_resource_free(af_resource *r);
/* Borrowed view of the attributes, valid until af_resource_free(). */
const af_attr *af_resource_attrs(const af_resource *r, size_t *n);
/* The string value of `key`, or NULL. Borrowed. */
const char *af_resource_get_string(const af_resource *r, const char *key);
/* The schema URL given to af_resource_set_schema_url, "" when none. */
const char *af_resource_schema_url(const af_resource *r);
int af_resource_set_schema_url(af_resource *r, const char *schema_url);

/*
 * Parses an OTEL_RESOURCE_ATTRIBUTES value ("k1=v1,k2=v2", percent-decoded). On any decode
 * error the whole value is rejected: returns AF_EPARSE and writes nothing to *out. On success
 * *out is a new resource holding exactly the parsed attributes (string values). Keys and
 * values are trimmed of surrounding spaces and tabs before decoding; empty members are
 * skipped; errors are a member without '=', an empty key, a malformed escape, "%00" and a
 * result that is not valid UTF-8. Logs nothing (af_resource_new does).
 */
int af_resource_parse_env(const char *value, af_resource **out);

/* ---------------------------------------------------------------------------------------- */
/* Samplers.                                                                                 */

typedef struct af_sampler af_sampler;

typedef enum af_sampling_decision {
    AF_SAMPLING_DROP = 0,
    AF_SAMPLING_RECORD_ONLY = 1,
    AF_SAMPLING_RECORD_AND_SAMPLE = 2,
} af_sampling_decision;

typedef struct af_link af_link; /* defined with the span API below */

/* What a sampler sees when a span starts (the spec's ShouldSample inputs). Fields are only
 * ever appended, so samplers built against an older header keep working. */
typedef struct af_sampling_params {
    const af_span_context *parent; /* NULL or invalid = root span */
    const uint8_t *trace_id;       /* 16 bytes */
    const char *name;
    af_span_kind kind;
    const af_attr *attrs;
    size_t n_attrs;
    const af_link *links; /* the links given at start (af_span_start_opts), as passed */
    size_t n_links;
} af_sampling_params;

/* Custom sampler hooks. `should_sample` must be thread-safe and must not block. */
typedef struct af_sampler_ops {
    af_sampling_decision (*should_sample)(void *self, const af_sampling_params *p);
    const char *(*description)(void *self);
    void (*destroy)(void *self);
} af_sampler_ops;

af_sampler *af_sampler_always_on(void);
af_sampler *af_sampler_always_off(void);
/* ratio is clamped to [0, 1]. Decision: big-endian uint64 of trace_id[8..16] >> 1 is below
 * ratio * 2^63 (the OpenTelemetry Go and Rust algorithm, so decisions agree across SDKs). */
af_sampler *af_sampler_trace_id_ratio(double ratio);
/*
 * ParentBased: `root` decides for root spans; the four others (NULL = spec default: sampled
 * parents -> always_on, unsampled parents -> always_off) decide by the parent. Takes ownership
 * of every sampler passed, even on failure.
 */
af_sampler *af_sampler_parent_based(af_sampler *root, af_sampler *remote_parent_sampled,
                                    af_sampler *remote_parent_not_sampled,
                                    af_sampler *local_parent_sampled,
                                    af_sampler *local_parent_not_sampled);
/* Wraps custom hooks; takes ownership of `self` (destroy is called from af_sampler_free). */
af_sampler *af_sampler_custom(const af_sampler_ops *ops, void *self);
/*
 * From the OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG spellings (always_on, always_off,
 * traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio).
 * `arg` may be NULL. Returns NULL and fills `err` (may be NULL) for an unknown name or a bad
 * argument.
 */
af_sampler *af_sampler_from_name(const char *name, const char *arg, char *err, size_t err_len);
/*
 * The sampler the environment asks for: OTEL_TRACES_SAMPLER (default parentbased_always_on)
 * and, for the ratio samplers, OTEL_TRACES_SAMPLER_ARG (default 1.0). As the spec requires,
 * an unknown or unsupported name and a bad argument are logged at warning level and ignored
 * (the default is used instead). Returns NULL only when out of memory.
 */
af_sampler *af_sampler_from_env(void);
void af_sampler_free(af_sampler *s);
af_sampling_decision af_sampler_should_sample(const af_sampler *s, const af_sampling_params *p);
/* "AlwaysOnSampler", "AlwaysOffSampler", "TraceIdRatioBased{0.25}", "ParentBased{root:...}". */
const char *af_sampler_description(const af_sampler *s);

/* ---------------------------------------------------------------------------------------- */
/* Span limits (spec defaults: 128 each, attribute value length unlimited).                  */

#define AF_LIMIT_UNLIMITED UINT32_MAX

typedef struct af_span_limits {
    uint32_t attribute_count;           /* OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT */
    uint32_t attribute_value_length;    /* characters; AF_LIMIT_UNLIMITED = no truncation */
    uint32_t event_count;               /* OTEL_SPAN_EVENT_COUNT_LIMIT */
    uint32_t link_count;                /* OTEL_SPAN_LINK_COUNT_LIMIT */
    uint32_t attribute_per_event_count; /* OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT */
    uint32_t attribute_per_link_count;  /* OTEL_LINK_ATTRIBUTE_COUNT_LIMIT */
} af_span_limits;

void af_span_limits_init(af_span_limits *l);
/* Applies the OTEL_*_LIMIT variables that are set and valid; bad values are logged and skipped. */
void af_span_limits_from_env(af_span_limits *l);

/* ---------------------------------------------------------------------------------------- */
/* Id generation.                                                                            */

typedef struct af_id_generator_ops {
    void (*trace_id)(void *self, uint8_t out[16]);
    void (*span_id)(void *self, uint8_t out[8]);
} af_id_generator_ops;

/* The default generator: per-thread xoshiro256** seeded from getrandom(), reseeded after fork. */
void af_random_trace_id(uint8_t out[16]);
void af_random_span_id(uint8_t out[8]);

/* ---------------------------------------------------------------------------------------- */
/* Tracer provider and tracers.                                                              */

typedef struct af_tracer_provider af_tracer_provider;
typedef struct af_tracer af_tracer;
typedef struct af_span_processor af_span_processor; /* see trace_sdk.h */

typedef struct af_tracer_provider_opts {
    af_resource *resource; /* owned by the provider; NULL = af_resource_new(NULL) */
    af_sampler *sampler; /* owned; NULL = af_sampler_from_env(), ParentBased(AlwaysOn) by default */
    af_span_limits limits;                   /* spec defaults, then OTEL_*_LIMIT variables */
    const af_id_generator_ops *id_generator; /* NULL = the default random generator */
    void *id_generator_self;
    bool disabled; /* a no-op provider: spans never record but still propagate context */
} af_tracer_provider_opts;

/* Spec defaults overlaid with the environment: span limits from OTEL_*_LIMIT and disabled
 * from OTEL_SDK_DISABLED ("true" in any case). Set fields afterwards to override. */
void af_tracer_provider_opts_init(af_tracer_provider_opts *o);
/*
 * Creates a provider. Takes ownership of opts->resource and opts->sampler even on failure.
 * Returns 0, -EINVAL or -ENOMEM.
 */
int af_tracer_provider_new(const af_tracer_provider_opts *opts, af_tracer_provider **out);
/* Appends a processor (registration order = call order). Takes ownership. Not after shutdown. */
int af_tracer_provider_add_processor(af_tracer_provider *p, af_span_processor *proc);
/*
 * Puts `repl` (NULL: nothing) in `old`'s place while spans may be in flight, then shuts `old`
 * down within timeout_ms (0 = no limit), flushing what it queued. Spans ending during the
 * swap reach one of the two; one that reaches `old` after its shutdown is counted as dropped
 * there. `old` stays allocated (its stats readable) until the provider is freed, because a
 * span end may still hold it. Takes ownership of `repl` even on failure; returns 0 once
 * swapped (whatever old's shutdown returned), -EINVAL, -ENOENT (old is not registered) or
 * AF_ESHUTDOWN.
 */
int af_tracer_provider_replace_processor(af_tracer_provider *p, af_span_processor *old,
                                         af_span_processor *repl, uint32_t timeout_ms);
/* The instrumentation scope a tracer is asked for (the spec's "Get a Tracer" parameters). */
typedef struct af_tracer_opts {
    const char *name;       /* required; NULL or "" is logged and used as "" */
    const char *version;    /* NULL = none */
    const char *schema_url; /* NULL = none */
    /* Scope attributes, copied (a repeated key keeps its last value). OTLP exports them as
     * InstrumentationScope.attributes; Jaeger has no scope object, and the collector's
     * OTLP-to-Jaeger mapping drops them too, so the Jaeger exporter leaves them out. */
    const af_attr *attrs;
    size_t n_attrs;
} af_tracer_opts;

/* All fields empty. */
void af_tracer_opts_init(af_tracer_opts *o);
/*
 * Gets (or creates) the tracer for an instrumentation scope. The same name, version,
 * schema_url and attribute set (in any order) return the same tracer. An attribute with a
 * NULL or empty key or a NULL value pointer makes the whole list ignored, with a warning (a
 * tracer is still returned). After shutdown the returned tracer is a no-op one. Never
 * returns NULL for a non-NULL provider and non-NULL opts.
 */
af_tracer *af_tracer_provider_get_tracer_opts(af_tracer_provider *p, const af_tracer_opts *o);
/* af_tracer_provider_get_tracer_opts without scope attributes; version and schema_url may
 * be NULL. */
af_tracer *af_tracer_provider_get_tracer(af_tracer_provider *p, const char *name,
                                         const char *version, const char *schema_url);
/* Exports everything ended before the call: 0, AF_ETIMEDOUT or AF_EEXPORT (an export it
 * waited for failed). */
int af_tracer_provider_force_flush(af_tracer_provider *p, uint32_t timeout_ms);
/* Flushes and shuts every processor down, bounded by timeout_ms in total: 0, AF_ETIMEDOUT or
 * AF_EEXPORT (an export it waited for failed). Only the first call does anything; later
 * calls return AF_ESHUTDOWN. */
int af_tracer_provider_shutdown(af_tracer_provider *p, uint32_t timeout_ms);
/* Shuts down (if not yet, with a 5 s bound) and frees. NULL is a no-op. */
void af_tracer_provider_free(af_tracer_provider *p);
const af_resource *af_tracer_provider_resource(const af_tracer_provider *p);
const af_sampler *af_tracer_provider_sampler(const af_tracer_provider *p);
bool af_tracer_provider_is_disabled(const af_tracer_provider *p);

/* The one documented global slot: borrowed pointer, NULL until set. Not owned by the slot. */
void af_set_global_tracer_provider(af_tracer_provider *p);
af_tracer_provider *af_global_tracer_provider(void);

/* True when spans from this tracer can record (an SDK provider with at least one processor). */
bool af_tracer_enabled(const af_tracer *t);

/* ---------------------------------------------------------------------------------------- */
/* Spans.                                                                                    */

typedef struct af_span_rec af_span_rec;

/*
 * A span handle: pass it by value. The zero value (AF_SPAN_NONE) is a valid no-op handle.
 * A handle whose span ended (or whose record was reused) makes every call a no-op.
 */
typedef struct af_span {
    af_span_rec *rec;
    uint64_t gen;
} af_span;

#ifdef __cplusplus
#define AF_SPAN_NONE (af_span{NULL, 0})
#else
#define AF_SPAN_NONE ((af_span){NULL, 0})
#endif

struct af_link {
    const af_span_context *context;
    const af_attr *attrs;
    size_t n_attrs;
};

typedef enum af_parent_mode {
    AF_PARENT_CURRENT = 0, /* the thread's current span (af_context_attach), else root */
    AF_PARENT_EXPLICIT,    /* opts.parent (NULL or invalid means root) */
    AF_PARENT_ROOT,        /* always a new trace */
} af_parent_mode;

typedef struct af_span_start_opts {
    af_span_kind kind; /* 0 means INTERNAL */
    af_parent_mode parent_mode;
    const af_span_context *parent; /* with AF_PARENT_EXPLICIT */
    uint64_t start_ns;             /* 0 = now */
    const af_attr *attrs;          /* seen by the sampler */
    size_t n_attrs;
    const af_link *links;
    size_t n_links;
} af_span_start_opts;

/*
 * Starts a span. `opts` may be NULL (INTERNAL, child of the current span, now). A NULL
 * tracer returns AF_SPAN_NONE at once. A span that is not sampled still gets ids and carries
 * its context (so propagation works) but records nothing. Never blocks.
 */
/* _impl: the exported out-of-line half of an inline wrapper; needs a non-NULL tracer (or
 * span). Call the wrapper (a binding that cannot inline calls this). */
af_span af_span_start_impl(af_tracer *t, const char *name, const af_span_start_opts *opts);
static inline af_span af_span_start(af_tracer *t, const char *name, const af_span_start_opts *opts)
{
    /* Inline so that disabled tracing (a NULL tracer) costs a test and a branch. */
    return t ? af_span_start_impl(t, name, opts) : AF_SPAN_NONE;
}
/* Shorthand for the common case: a child of `parent` (NULL = root) with kind and attributes. */
af_span af_span_start_child(af_tracer *t, const char *name, af_span_kind kind,
                            const af_span_context *parent, const af_attr *attrs, size_t n_attrs);

/* Ends the span now / at end_ns. Idempotent; never blocks and never does I/O. */
void af_span_end_at(af_span s, uint64_t end_ns);
static inline void af_span_end(af_span s)
{
    if (s.rec)
        af_span_end_at(s, 0);
}

bool af_span_is_recording(af_span s);
/* Copies the span's context into *out; an invalid context for AF_SPAN_NONE and, once the span
 * was exported, for its ended handle: take the context before af_span_end to keep it. */
void af_span_get_context(af_span s, af_span_context *out);

void af_span_set_attrs_impl(af_span s, const af_attr *attrs, size_t n);
static inline void af_span_set_attrs(af_span s, const af_attr *attrs, size_t n)
{
    if (s.rec)
        af_span_set_attrs_impl(s, attrs, n);
}
void af_span_set_attr(af_span s, const af_attr *a);
void af_span_set_string(af_span s, const char *key, const char *value);
void af_span_set_int(af_span s, const char *key, int64_t value);
void af_span_set_double(af_span s, const char *key, double value);
void af_span_set_bool(af_span s, const char *key, bool value);

/* Adds an event; time_ns 0 = now. */
void af_span_add_event_at(af_span s, const char *name, uint64_t time_ns, const af_attr *attrs,
                          size_t n_attrs);
static inline void af_span_add_event(af_span s, const char *name, const af_attr *attrs,
                                     size_t n_attrs)
{
    if (s.rec)
        af_span_add_event_at(s, name, 0, attrs, n_attrs);
}
void af_span_add_link(af_span s, const af_span_context *ctx, const af_attr *attrs, size_t n);

/* Spec rules: Unset is ignored, Ok is final, description kept only with Error. */
void af_span_set_status(af_span s, af_status_code code, const char *description);
void af_span_update_name(af_span s, const char *name);
/*
 * Adds the spec's `exception` event (exception.type, exception.message, exception.stacktrace;
 * NULL ones omitted; extra attributes win on key clashes) and sets status Error with `message`.
 */
void af_span_record_error(af_span s, const char *type, const char *message, const char *stacktrace,
                          const af_attr *attrs, size_t n_attrs);

/* ---------------------------------------------------------------------------------------- */
/* Current context (thread-local) and baggage.                                               */

typedef struct af_baggage af_baggage; /* see propagation.h */

/* Token returned by attach: treat as opaque and pass it back to detach on the same thread, in
 * LIFO order. It holds the previous current span's ids so they survive that span's end. */
typedef struct af_context_token {
    af_span span;
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t trace_flags;
    bool valid;
    af_baggage *baggage;
    uint32_t depth;
} af_context_token;

/* Makes `s` the thread's current span until detach. Borrowed; does not end the span. */
af_context_token af_context_attach(af_span s);
/* Restores what was current before the matching attach. Out-of-order detach is ignored
 * (and logged once). */
void af_context_detach(af_context_token tok);
af_span af_context_current_span(void);
/* The current span's context (invalid when none is current). */
void af_context_current(af_span_context *out);

/* Thread's current baggage: borrowed pointer, NULL when none. attach does not copy. */
af_context_token af_context_attach_baggage(af_baggage *b);
af_baggage *af_context_current_baggage(void);

AF_API_END
#ifdef __cplusplus
}
#endif
#endif
