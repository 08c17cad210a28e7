/*
 * Samplers: AlwaysOn, AlwaysOff, TraceIdRatioBased, ParentBased and custom hooks.
 *
 * A sampler is immutable once constructed (its description is formatted then and stored in
 * the same allocation), so af_sampler_should_sample needs no lock and allocates nothing; it
 * is safe from any number of threads. AlwaysOn and AlwaysOff are static singletons: they
 * never fail to construct and af_sampler_free ignores them.
 *
 * TraceIdRatioBased follows OpenTelemetry Go and Rust exactly so that a trace sampled by one
 * of those SDKs is sampled here too: bound = (uint64)(ratio * 2^63), x = big-endian uint64 of
 * trace_id[8..16] shifted right by one, sample iff x < bound. ratio * 2^63 is exact in double
 * arithmetic (a power-of-two scale) and below 2^63 for ratio < 1, so the conversion cannot
 * overflow; ratio >= 1 uses bound 2^63, which every 63-bit x is below.
 */
#define AF_LOG_COMPONENT "tracing"

#include "agentaflow/trace.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agentaflow/log.h"
#include "trace/span_int.h"
#include "util/env.h"

typedef enum sampler_kind {
    KIND_ALWAYS_ON,
    KIND_ALWAYS_OFF,
    KIND_RATIO,
    KIND_PARENT,
    KIND_CUSTOM,
} sampler_kind;

/* ParentBased delegate slots, in constructor argument order. */
enum {
    SLOT_ROOT,
    SLOT_REMOTE_SAMPLED,
    SLOT_REMOTE_NOT_SAMPLED,
    SLOT_LOCAL_SAMPLED,
    SLOT_LOCAL_NOT_SAMPLED,
    SLOT_COUNT,
};

struct af_sampler {
    sampler_kind kind;
    bool is_static;
    double ratio;                     /* KIND_RATIO, clamped to [0, 1] */
    uint64_t bound;                   /* KIND_RATIO */
    af_sampler *delegate[SLOT_COUNT]; /* KIND_PARENT, all non-NULL and owned */
    af_sampler_ops ops;               /* KIND_CUSTOM */
    void *self;                       /* KIND_CUSTOM, owned */
    const char *desc;                 /* points at desc_buf, or a literal for the singletons */
    char desc_buf[];
};

static af_sampler always_on_singleton = {
    .kind = KIND_ALWAYS_ON, .is_static = true, .desc = "AlwaysOnSampler"};
static af_sampler always_off_singleton = {
    .kind = KIND_ALWAYS_OFF, .is_static = true, .desc = "AlwaysOffSampler"};

static atomic_bool ratio_delegate_logged;

/* One allocation for the sampler and its description of desc_len bytes (written by the
 * caller into desc_buf). */
static af_sampler *sampler_alloc(sampler_kind kind, size_t desc_len)
{
    af_sampler *s = calloc(1, sizeof(*s) + desc_len + 1);
    if (!s)
        return NULL;
    s->kind = kind;
    s->desc = s->desc_buf;
    return s;
}

af_sampler *af_sampler_always_on(void)
{
    return &always_on_singleton;
}

af_sampler *af_sampler_always_off(void)
{
    return &always_off_singleton;
}

af_sampler *af_sampler_trace_id_ratio(double ratio)
{
    /* NaN compares false with everything, so it lands on 0 (never sample). */
    if (!(ratio > 0.0))
        ratio = 0.0;
    else if (ratio > 1.0)
        ratio = 1.0;
    char desc[64];
    int len = snprintf(desc, sizeof(desc), "TraceIdRatioBased{%g}", ratio);
    af_sampler *s = sampler_alloc(KIND_RATIO, (size_t)len);
    if (!s)
        return NULL;
    memcpy(s->desc_buf, desc, (size_t)len + 1);
    s->ratio = ratio;
    s->bound = ratio >= 1.0 ? UINT64_C(1) << 63 : (uint64_t)(ratio * 9223372036854775808.0);
    return s;
}

af_sampler *af_sampler_parent_based(af_sampler *root, af_sampler *remote_parent_sampled,
                                    af_sampler *remote_parent_not_sampled,
                                    af_sampler *local_parent_sampled,
                                    af_sampler *local_parent_not_sampled)
{
    af_sampler *d[SLOT_COUNT] = {
        root ? root : &always_on_singleton,
        remote_parent_sampled ? remote_parent_sampled : &always_on_singleton,
        remote_parent_not_sampled ? remote_parent_not_sampled : &always_off_singleton,
        local_parent_sampled ? local_parent_sampled : &always_on_singleton,
        local_parent_not_sampled ? local_parent_not_sampled : &always_off_singleton,
    };
    static const char fmt[] = "ParentBased{root:%s,remoteParentSampled:%s,"
                              "remoteParentNotSampled:%s,localParentSampled:%s,"
                              "localParentNotSampled:%s}";
    int len = snprintf(NULL, 0, fmt, d[0]->desc, d[1]->desc, d[2]->desc, d[3]->desc, d[4]->desc);
    af_sampler *s = len < 0 ? NULL : sampler_alloc(KIND_PARENT, (size_t)len);
    if (!s)
        goto fail;
    snprintf(s->desc_buf, (size_t)len + 1, fmt, d[0]->desc, d[1]->desc, d[2]->desc, d[3]->desc,
             d[4]->desc);
    memcpy(s->delegate, d, sizeof(d));
    for (int i = SLOT_REMOTE_SAMPLED; i < SLOT_COUNT; i++) {
        /* The spec asks for a warning: a ratio decision under a parent splits traces. It is
         * often deliberate (and harmless for not-sampled slots), so debug level, once. */
        if (d[i]->kind == KIND_RATIO && !atomic_exchange(&ratio_delegate_logged, true)) {
            af_log(AF_LOG_DEBUG,
                   "sampler: %s used as a non-root ParentBased delegate; child "
                   "spans may be sampled differently from their parents",
                   d[i]->desc);
            break;
        }
    }
    return s;
fail:
    for (int i = 0; i < SLOT_COUNT; i++)
        af_sampler_free(d[i]);
    return NULL;
}

af_sampler *af_sampler_custom(const af_sampler_ops *ops, void *self)
{
    if (!ops || !ops->should_sample) {
        if (ops && ops->destroy)
            ops->destroy(self);
        return NULL;
    }
    const char *desc = ops->description ? ops->description(self) : NULL;
    if (!desc)
        desc = "CustomSampler";
    size_t len = strlen(desc);
    af_sampler *s = sampler_alloc(KIND_CUSTOM, len);
    if (!s) {
        if (ops->destroy)
            ops->destroy(self);
        return NULL;
    }
    memcpy(s->desc_buf, desc, len + 1);
    s->ops = *ops;
    s->self = self;
    return s;
}

void af_sampler_free(af_sampler *s)
{
    if (!s || s->is_static)
        return;
    if (s->kind == KIND_PARENT)
        for (int i = 0; i < SLOT_COUNT; i++)
            af_sampler_free(s->delegate[i]);
    if (s->kind == KIND_CUSTOM && s->ops.destroy)
        s->ops.destroy(s->self);
    free(s);
}

static inline uint64_t be64(const uint8_t *p)
{
    return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 |
           (uint64_t)p[3] << 32 | (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 |
           (uint64_t)p[6] << 8 | (uint64_t)p[7];
}

int af__sampler_root_decision(const af_sampler *s)
{
    while (s && s->kind == KIND_PARENT) /* a root span goes to the root delegate */
        s = s->delegate[SLOT_ROOT];
    if (!s)
        return -1;
    switch (s->kind) {
    case KIND_ALWAYS_ON:
        return AF_SAMPLING_RECORD_AND_SAMPLE;
    case KIND_ALWAYS_OFF:
        return AF_SAMPLING_DROP;
    default:
        return -1;
    }
}

af_sampling_decision af_sampler_should_sample(const af_sampler *s, const af_sampling_params *p)
{
    if (!s || !p)
        return AF_SAMPLING_DROP;
    /* ParentBased picks a delegate and loops instead of recursing. */
    for (;;) {
        switch (s->kind) {
        case KIND_ALWAYS_ON:
            return AF_SAMPLING_RECORD_AND_SAMPLE;
        case KIND_ALWAYS_OFF:
            return AF_SAMPLING_DROP;
        case KIND_RATIO:
            if (!p->trace_id)
                return AF_SAMPLING_DROP;
            return (be64(p->trace_id + 8) >> 1) < s->bound ? AF_SAMPLING_RECORD_AND_SAMPLE
                                                           : AF_SAMPLING_DROP;
        case KIND_PARENT: {
            const af_span_context *parent = p->parent;
            if (!af_span_context_is_valid(parent))
                s = s->delegate[SLOT_ROOT];
            else if (parent->is_remote)
                s = s->delegate[af_span_context_is_sampled(parent) ? SLOT_REMOTE_SAMPLED
                                                                   : SLOT_REMOTE_NOT_SAMPLED];
            else
                s = s->delegate[af_span_context_is_sampled(parent) ? SLOT_LOCAL_SAMPLED
                                                                   : SLOT_LOCAL_NOT_SAMPLED];
            continue;
        }
        case KIND_CUSTOM:
            return s->ops.should_sample(s->self, p);
        }
        return AF_SAMPLING_DROP;
    }
}

const char *af_sampler_description(const af_sampler *s)
{
    return s ? s->desc : "";
}

/* ------------------------------------------------------------------------------------------ */
/* OTEL_TRACES_SAMPLER names                                                                   */

typedef struct sampler_name {
    const char *name;
    bool parent_based;
    sampler_kind root; /* KIND_ALWAYS_ON, KIND_ALWAYS_OFF or KIND_RATIO */
} sampler_name;

static const sampler_name known_names[] = {
    {"always_on", false, KIND_ALWAYS_ON},
    {"always_off", false, KIND_ALWAYS_OFF},
    {"traceidratio", false, KIND_RATIO},
    {"parentbased_always_on", true, KIND_ALWAYS_ON},
    {"parentbased_always_off", true, KIND_ALWAYS_OFF},
    {"parentbased_traceidratio", true, KIND_RATIO},
};

/* Spec-listed names this SDK does not implement (they need remote services). */
static const char *const unsupported_names[] = {"jaeger_remote", "parentbased_jaeger_remote",
                                                "xray"};

static const sampler_name *lookup_name(const char *name)
{
    for (size_t i = 0; i < sizeof(known_names) / sizeof(known_names[0]); i++)
        if (strcasecmp(name, known_names[i].name) == 0)
            return &known_names[i];
    return NULL;
}

static bool is_unsupported_name(const char *name)
{
    for (size_t i = 0; i < sizeof(unsupported_names) / sizeof(unsupported_names[0]); i++)
        if (strcasecmp(name, unsupported_names[i]) == 0)
            return true;
    return false;
}

static af_sampler *build(const sampler_name *n, double ratio)
{
    af_sampler *root = n->root == KIND_ALWAYS_ON    ? af_sampler_always_on()
                       : n->root == KIND_ALWAYS_OFF ? af_sampler_always_off()
                                                    : af_sampler_trace_id_ratio(ratio);
    if (!root || !n->parent_based)
        return root;
    return af_sampler_parent_based(root, NULL, NULL, NULL, NULL);
}

/* The OTEL_TRACES_SAMPLER_ARG syntax: a decimal number in [0, 1]. */
static bool parse_ratio(const char *arg, double *out)
{
    char *end = NULL;
    errno = 0;
    double d = strtod(arg, &end);
    if (errno || end == arg || *end != '\0' || isnan(d) || d < 0.0 || d > 1.0)
        return false;
    *out = d;
    return true;
}

static void fill_err(char *err, size_t err_len, const char *fmt, const char *what)
{
    if (err && err_len)
        snprintf(err, err_len, fmt, what);
}

af_sampler *af_sampler_from_name(const char *name, const char *arg, char *err, size_t err_len)
{
    if (!name) {
        fill_err(err, err_len, "%s", "no sampler name given");
        return NULL;
    }
    const sampler_name *n = lookup_name(name);
    if (!n) {
        fill_err(err, err_len,
                 is_unsupported_name(name) ? "sampler \"%s\" is not supported by this SDK"
                                           : "unknown sampler \"%s\" (expected always_on, "
                                             "always_off, traceidratio, parentbased_always_on, "
                                             "parentbased_always_off or "
                                             "parentbased_traceidratio)",
                 name);
        return NULL;
    }
    double ratio = 1.0;
    if (n->root == KIND_RATIO && arg && *arg && !parse_ratio(arg, &ratio)) {
        fill_err(err, err_len, "sampler argument \"%s\" is not a number between 0 and 1", arg);
        return NULL;
    }
    af_sampler *s = build(n, ratio);
    if (!s)
        fill_err(err, err_len, "%s", "out of memory");
    return s;
}

af_sampler *af_sampler_from_env(void)
{
    static const sampler_name fallback = {"parentbased_always_on", true, KIND_ALWAYS_ON};
    const sampler_name *n = &fallback;
    const char *name = af__getenv("OTEL_TRACES_SAMPLER");
    if (name && !(n = lookup_name(name))) {
        af_log(AF_LOG_WARN, "OTEL_TRACES_SAMPLER: %s sampler \"%s\"; using %s",
               is_unsupported_name(name) ? "unsupported" : "unknown", name, fallback.name);
        n = &fallback;
    }
    double ratio = 1.0;
    if (n->root == KIND_RATIO)
        af__env_double("OTEL_TRACES_SAMPLER_ARG", 0.0, 1.0, &ratio);
    return build(n, ratio);
}
