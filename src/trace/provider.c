/*
 * Tracer provider and tracers. The provider owns configuration shared by its tracers
 * (resource, sampler, limits, id generator, processors); tracers only add the
 * instrumentation scope. Processors are appended into a fixed array published with a
 * release store, so span end reads them without a lock.
 *
 * Replacing or removing a processor while spans are in flight (a configuration reload)
 * rewrites one slot with a release store. A span end that loaded the old pointer just before
 * may still call it, and span end keeps no reader count we could wait on (that would put a
 * shared write on every span), so the old processor is shut down at once (a late span is
 * counted as dropped by it) and only freed with the provider: each replacement keeps one
 * stopped processor until then. A removed processor's slot holds a no-op processor that the
 * next af_tracer_provider_add_processor reuses.
 */
#define AF_LOG_COMPONENT "tracing"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/log.h"
#include "trace/context_int.h"
#include "trace/span_int.h"
#include "util/log_int.h"
#include "util/env.h"
#include "util/str.h"

static _Atomic(af_tracer_provider *) global_provider;

void af_set_global_tracer_provider(af_tracer_provider *p)
{
    atomic_store(&global_provider, p);
}

af_tracer_provider *af_global_tracer_provider(void)
{
    return atomic_load(&global_provider);
}

void af_tracer_provider_opts_init(af_tracer_provider_opts *o)
{
    memset(o, 0, sizeof(*o));
    af_span_limits_init(&o->limits);
    af_span_limits_from_env(&o->limits);
    af__env_bool("OTEL_SDK_DISABLED", &o->disabled);
}

/* Fork (fork.c): mu is held only for list updates and allocation, so the prepare waits a
 * moment at most; the child gets the tracer list and the processor slots as they were. */
static void provider_prepare(void *self)
{
    pthread_mutex_lock(&((af_tracer_provider *)self)->mu);
}

static void provider_parent(void *self)
{
    pthread_mutex_unlock(&((af_tracer_provider *)self)->mu);
}

static void provider_child(void *self)
{
    pthread_mutex_init(&((af_tracer_provider *)self)->mu, NULL); /* its holder is gone */
}

int af_tracer_provider_new(const af_tracer_provider_opts *opts, af_tracer_provider **out)
{
    *out = NULL;
    af_tracer_provider *p = NULL;
    void *mem = NULL;
    if (posix_memalign(&mem, 64, sizeof(*p)) != 0) /* the counter shards are cache-aligned */
        goto fail;
    p = memset(mem, 0, sizeof(*p));
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        p = NULL;
        goto fail;
    }
    p->resource = opts ? opts->resource : NULL;
    p->sampler = opts ? opts->sampler : NULL;
    if (opts)
        p->limits = opts->limits;
    else
        af_span_limits_init(&p->limits);
    p->idgen = opts ? opts->id_generator : NULL;
    p->idgen_self = opts ? opts->id_generator_self : NULL;
    p->disabled = opts && opts->disabled;
    p->noop_tracer.provider = p;
    p->noop_tracer.scope.name = "";
    p->noop_tracer.scope.version = "";
    p->noop_tracer.scope.schema_url = "";
    if (!p->resource && af_resource_new(NULL, 0, &p->resource) != 0)
        goto fail;
    if (!p->sampler && !(p->sampler = af_sampler_from_env()))
        goto fail;
    p->root_decision = af__sampler_root_decision(p->sampler);
    p->fork = (af__fork_participant){provider_prepare, provider_parent, provider_child, p, NULL};
    af__fork_register(&p->fork, AF__FORK_PROVIDER);
    /* JSON log lines carry the current span's ids; spans need a provider, so this is in
     * place before any can be current. */
    af__log_set_context_hook(af__context_log_ids);
    *out = p;
    return 0;
fail:
    if (p) {
        af_resource_free(p->resource);
        af_sampler_free(p->sampler);
        pthread_mutex_destroy(&p->mu);
        free(p);
    } else if (opts) {
        af_resource_free(opts->resource);
        af_sampler_free(opts->sampler);
    }
    return -ENOMEM;
}

static void noop_on_end(void *self, const af_span_data *span)
{
    (void)self;
    (void)span;
}

static const af_span_processor_ops noop_ops = {.on_end = noop_on_end};
/* What a removed processor's slot holds: shared, never freed. */
static af_span_processor noop_processor = {.ops = &noop_ops};

static af_span_processor *slot(const af_tracer_provider *p, size_t i)
{
    return atomic_load_explicit(&((af_tracer_provider *)p)->processors[i], memory_order_acquire);
}

int af_tracer_provider_add_processor(af_tracer_provider *p, af_span_processor *proc)
{
    if (!p || !proc) {
        af_span_processor_free(proc);
        return -EINVAL;
    }
    pthread_mutex_lock(&p->mu);
    size_t n = atomic_load(&p->n_processors);
    int rc = 0;
    if (atomic_load(&p->shut_down))
        rc = AF_ESHUTDOWN;
    size_t at = n;
    for (size_t i = 0; i < n && at == n; i++)
        if (slot(p, i) == &noop_processor)
            at = i;
    if (rc == 0 && at == AF_MAX_PROCESSORS)
        rc = -ENOSPC;
    if (rc == 0) {
        atomic_store_explicit(&p->processors[at], proc, memory_order_release);
        if (at == n)
            atomic_store_explicit(&p->n_processors, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&p->mu);
    if (rc != 0)
        af_span_processor_free(proc);
    return rc;
}

static uint64_t deadline_after(uint32_t timeout_ms)
{
    return timeout_ms ? af_monotonic_ns() + (uint64_t)timeout_ms * 1000000u : UINT64_MAX;
}

int af_tracer_provider_replace_processor(af_tracer_provider *p, af_span_processor *old,
                                         af_span_processor *repl, uint32_t timeout_ms)
{
    if (!p || !old || old == &noop_processor) {
        af_span_processor_free(repl);
        return -EINVAL;
    }
    pthread_mutex_lock(&p->mu);
    int rc = atomic_load(&p->shut_down) ? AF_ESHUTDOWN : -ENOENT;
    size_t n = atomic_load(&p->n_processors);
    for (size_t i = 0; i < n && rc == -ENOENT; i++) {
        if (slot(p, i) == old) {
            atomic_store_explicit(&p->processors[i], repl ? repl : &noop_processor,
                                  memory_order_release);
            old->retired_next = p->retired;
            p->retired = old;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (rc != 0) {
        af_span_processor_free(repl);
        return rc;
    }
    /* Outside the lock: the old processor's final export may take the whole bound. Its
     * failure is not ours to report: the swap happened, and the batch processor logs a
     * shutdown that timed out. */
    if (old->ops->shutdown)
        old->ops->shutdown(old->self, deadline_after(timeout_ms));
    return 0;
}

static bool str_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Values as stored by af_resource_new_raw: string lengths measured, arrays owned. */
static bool value_eq(const af_attr *a, const af_attr *b)
{
    if (a->type != b->type)
        return false;
    size_t elem = sizeof(double);
    switch (a->type) {
    case AF_VAL_STRING:
        return a->v.s.len == b->v.s.len && memcmp(a->v.s.ptr, b->v.s.ptr, a->v.s.len) == 0;
    case AF_VAL_BOOL:
        return a->v.b == b->v.b;
    case AF_VAL_INT:
        return a->v.i == b->v.i;
    case AF_VAL_DOUBLE: /* bitwise, so a NaN attribute still finds its tracer */
        return memcmp(&a->v.d, &b->v.d, sizeof(double)) == 0;
    case AF_VAL_STRING_ARRAY:
        if (a->v.arr.count != b->v.arr.count)
            return false;
        for (size_t i = 0; i < a->v.arr.count; i++)
            if (strcmp(((const char *const *)a->v.arr.items)[i],
                       ((const char *const *)b->v.arr.items)[i]) != 0)
                return false;
        return true;
    case AF_VAL_BOOL_ARRAY:
        elem = sizeof(bool);
        break;
    case AF_VAL_INT_ARRAY:
        elem = sizeof(int64_t);
        break;
    case AF_VAL_DOUBLE_ARRAY:
        break;
    }
    return a->v.arr.count == b->v.arr.count &&
           (a->v.arr.count == 0 ||
            memcmp(a->v.arr.items, b->v.arr.items, a->v.arr.count * elem) == 0);
}

/* Same attribute set: keys are unique in each, so equal counts and every key of `a` found
 * in `b` with the same value. */
static bool scope_attrs_eq(const af_resource *a, const af_resource *b)
{
    size_t na = 0, nb = 0;
    const af_attr *aa = a ? af_resource_attrs(a, &na) : NULL;
    const af_attr *ba = b ? af_resource_attrs(b, &nb) : NULL;
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        size_t j = 0;
        while (j < nb && strcmp(aa[i].key, ba[j].key) != 0)
            j++;
        if (j == nb || !value_eq(&aa[i], &ba[j]))
            return false;
    }
    return true;
}

static void tracer_free(af_tracer *t)
{
    free((char *)t->scope.name);
    free((char *)t->scope.version);
    free((char *)t->scope.schema_url);
    af_resource_free(t->scope_attrs);
    free(t);
}

void af_tracer_opts_init(af_tracer_opts *o)
{
    memset(o, 0, sizeof(*o));
}

af_tracer *af_tracer_provider_get_tracer(af_tracer_provider *p, const char *name,
                                         const char *version, const char *schema_url)
{
    af_tracer_opts o = {.name = name, .version = version, .schema_url = schema_url};
    return af_tracer_provider_get_tracer_opts(p, &o);
}

af_tracer *af_tracer_provider_get_tracer_opts(af_tracer_provider *p, const af_tracer_opts *o)
{
    if (!p || !o)
        return NULL;
    if (atomic_load(&p->shut_down))
        return &p->noop_tracer;
    const char *name = o->name;
    if (!name || !name[0]) {
        af_log(AF_LOG_WARN, "af_tracer_provider_get_tracer: empty tracer name; using \"\"");
        name = "";
    }
    /* The attributes are copied first, outside the lock: the copy is also the normalized
     * form (lengths measured, repeated keys merged) that lookups compare. */
    af_resource *attrs = NULL;
    if (o->n_attrs) {
        int rc = af_resource_new_raw(o->attrs, o->n_attrs, &attrs);
        if (rc == -EINVAL)
            af_log(AF_LOG_WARN,
                   "af_tracer_provider_get_tracer: invalid scope attribute (empty "
                   "key or NULL value) for tracer \"%s\"; attributes ignored",
                   name);
        else if (rc != 0)
            return &p->noop_tracer;
    }
    pthread_mutex_lock(&p->mu);
    af_tracer *t;
    for (t = p->tracers; t; t = t->next) {
        if (str_eq(t->scope.name, name) && str_eq(t->scope.version, o->version) &&
            str_eq(t->scope.schema_url, o->schema_url) && scope_attrs_eq(t->scope_attrs, attrs))
            break;
    }
    if (!t) {
        t = calloc(1, sizeof(*t));
        if (t) {
            t->provider = p;
            t->scope.name = af__strdup(name);
            t->scope.version = af__strdup(o->version ? o->version : "");
            t->scope.schema_url = af__strdup(o->schema_url ? o->schema_url : "");
            t->scope_attrs = attrs;
            attrs = NULL;
            if (t->scope_attrs)
                t->scope.attrs = af_resource_attrs(t->scope_attrs, &t->scope.n_attrs);
            if (!t->scope.name || !t->scope.version || !t->scope.schema_url) {
                tracer_free(t);
                t = &p->noop_tracer;
            } else {
                t->next = p->tracers;
                p->tracers = t;
            }
        } else {
            t = &p->noop_tracer;
        }
    }
    pthread_mutex_unlock(&p->mu);
    af_resource_free(attrs);
    return t;
}

bool af_tracer_enabled(const af_tracer *t)
{
    if (!t || !t->provider)
        return false;
    const af_tracer_provider *p = t->provider;
    return !p->disabled && t != &p->noop_tracer && !atomic_load(&p->shut_down) &&
           atomic_load(&p->n_processors) > 0;
}

int af_tracer_provider_force_flush(af_tracer_provider *p, uint32_t timeout_ms)
{
    if (!p)
        return -EINVAL;
    uint64_t deadline = deadline_after(timeout_ms);
    int rc = 0;
    size_t n = atomic_load_explicit(&p->n_processors, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        af_span_processor *proc = slot(p, i);
        if (!proc->ops->force_flush)
            continue;
        int r = proc->ops->force_flush(proc->self, deadline);
        if (r != 0 && rc == 0)
            rc = r;
    }
    return rc;
}

int af_tracer_provider_shutdown(af_tracer_provider *p, uint32_t timeout_ms)
{
    if (!p)
        return -EINVAL;
    if (atomic_exchange(&p->shut_down, true))
        return AF_ESHUTDOWN;
    uint64_t deadline = deadline_after(timeout_ms);
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    size_t n = atomic_load(&p->n_processors);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < n; i++) {
        af_span_processor *proc = slot(p, i);
        if (!proc->ops->shutdown)
            continue;
        int r = proc->ops->shutdown(proc->self, deadline);
        if (r != 0 && rc == 0)
            rc = r;
    }
    return rc;
}

void af_tracer_provider_free(af_tracer_provider *p)
{
    if (!p)
        return;
    if (!atomic_load(&p->shut_down))
        af_tracer_provider_shutdown(p, 5000);
    af__fork_unregister(&p->fork, AF__FORK_PROVIDER);
    size_t n = atomic_load(&p->n_processors);
    for (size_t i = 0; i < n; i++)
        if (slot(p, i) != &noop_processor)
            af_span_processor_free(slot(p, i));
    while (p->retired) {
        af_span_processor *next = p->retired->retired_next;
        af_span_processor_free(p->retired);
        p->retired = next;
    }
    af_tracer *t = p->tracers;
    while (t) {
        af_tracer *next = t->next;
        tracer_free(t);
        t = next;
    }
    if (af_global_tracer_provider() == p)
        af_set_global_tracer_provider(NULL);
    af_resource_free(p->resource);
    af_sampler_free(p->sampler);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

const af_resource *af_tracer_provider_resource(const af_tracer_provider *p)
{
    return p ? p->resource : NULL;
}

const af_sampler *af_tracer_provider_sampler(const af_tracer_provider *p)
{
    return p ? p->sampler : NULL;
}

bool af_tracer_provider_is_disabled(const af_tracer_provider *p)
{
    return !p || p->disabled;
}

size_t af_tracer_provider_processors(const af_tracer_provider *p, af_span_processor **out,
                                     size_t cap)
{
    size_t n = p ? atomic_load_explicit(&p->n_processors, memory_order_acquire) : 0, k = 0;
    for (size_t i = 0; i < n; i++) {
        af_span_processor *proc = slot(p, i);
        if (proc == &noop_processor)
            continue;
        if (k < cap)
            out[k] = proc;
        k++;
    }
    return k;
}

void af_tracer_provider_stats(const af_tracer_provider *p, af_provider_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!p)
        return;
    out->spans_started = af__counter_sum(p->counters, AF_COUNT_STARTED);
    out->spans_ended = af__counter_sum(p->counters, AF_COUNT_ENDED);
    out->spans_unsampled = af__counter_sum(p->counters, AF_COUNT_UNSAMPLED);
    size_t n = atomic_load_explicit(&p->n_processors, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        af_processor_stats st;
        af_span_processor_stats_get(slot(p, i), &st);
        out->spans_dropped += st.dropped;
        out->spans_exported += st.exported;
        out->spans_failed += st.failed;
        if (st.last_drop_ns > out->last_drop_ns)
            out->last_drop_ns = st.last_drop_ns;
    }
}
