/*
 * Spans: start, mutation under a per-span spin lock, end and hand-off to the processors.
 *
 * Hot path budget (docs/architecture.md, tracing core): no malloc in steady state, one clock read
 * per timestamp, no contended lock. The lock is a single atomic word: spans are almost always
 * touched by one thread, so it is uncontended and costs one exchange per call.
 */
#define AF_LOG_COMPONENT "tracing"

#include <string.h>

#include "agentaflow/log.h"
#include "trace/context_int.h"
#include "trace/span_int.h"
#include "util/clock.h"
#include "util/str.h"

static const char empty[] = "";

static inline void span_lock(af_span_rec *r)
{
    while (atomic_exchange_explicit(&r->lock, 1, memory_order_acquire))
        ;
}

static inline void span_unlock(af_span_rec *r)
{
    atomic_store_explicit(&r->lock, 0, memory_order_release);
}

/*
 * Whether the handle still names a live, recording span, read without the lock
 * (non-recording spans never take the lock for a mutation).
 *
 * Events and ends check it, then read the clock, then take the lock: the lock's exchange
 * waits for every store before it to reach the cache, clock_gettime's LFENCE waits for every
 * instruction before it, and with the clock read inside the lock the two stalls came one
 * after the other (bench_trace on a kvm-clock VM). Calls on ended or non-recording spans
 * read no clock.
 */
static inline bool live_recording(af_span s)
{
    return s.rec && atomic_load_explicit(&s.rec->gen, memory_order_acquire) == s.gen &&
           atomic_load_explicit(&s.rec->recording, memory_order_relaxed);
}

/* Takes the lock of a span live_recording() accepted, if it is still live once held. */
static inline bool lock_if_still_live(af_span s)
{
    span_lock(s.rec);
    if (atomic_load_explicit(&s.rec->gen, memory_order_relaxed) != s.gen || s.rec->ended) {
        span_unlock(s.rec);
        return false;
    }
    return true;
}

/* Locks the record when the handle still names a live, recording span. */
static inline bool lock_live(af_span s)
{
    return live_recording(s) && lock_if_still_live(s);
}

static inline const af_span_limits *limits_of(const af_span_rec *r)
{
    return &r->provider->limits;
}

/* ----- attributes ---------------------------------------------------------------------- */

/*
 * Keys are stored in the arena with their length in the two bytes before them, so the
 * duplicate-key check compares lengths first and the key is measured only once.
 */
static inline size_t stored_key_len(const char *k)
{
    uint16_t n;
    memcpy(&n, k - 2, sizeof(n));
    return n;
}

static inline af_attr *find_attr(af_attr *attrs, uint32_t n, const char *key, size_t klen)
{
    size_t cmp_len = klen < UINT16_MAX ? klen : UINT16_MAX;
    for (uint32_t i = 0; i < n; i++) {
        const char *k = attrs[i].key;
        if (stored_key_len(k) == cmp_len && k[0] == key[0] && memcmp(k, key, klen) == 0 &&
            k[klen] == '\0')
            return &attrs[i];
    }
    return NULL;
}

/*
 * A set of key lengths (bit klen % 64) stored in an attribute array: a key whose bit is clear
 * cannot be a duplicate, so the usual span, whose keys differ in length, skips find_attr's
 * loop (callgrind: 23 instructions an attribute of bench_trace's span).
 */
static inline uint64_t key_len_bit(size_t klen)
{
    return 1ull << (klen & 63);
}

/* Copies key (with its length prefix) and, for strings, the value in one allocation.
 * Always inlined: it runs for every attribute of every sampled span, and callgrind showed
 * the call's register saves and the reloads of its arguments costing about 20 instructions
 * an attribute (1,646 -> 1,568 per span of bench_trace's shape). */
static inline __attribute__((always_inline)) bool
copy_attr(af_span_rec *r, af_attr *out, const af_attr *in, size_t klen, uint32_t max_chars)
{
    size_t vlen = 0;
    const char *src = NULL;
    if (in->type == AF_VAL_STRING) {
        src = in->v.s.ptr ? in->v.s.ptr : "";
        vlen = !in->v.s.ptr ? 0 : in->v.s.len == AF_LEN_NUL ? strlen(src) : in->v.s.len;
        if (max_chars != AF_LIMIT_UNLIMITED && vlen > max_chars)
            vlen = af__utf8_prefix(src, vlen, max_chars);
    }
    char *p = af__arena_alloc(r, 2 + klen + 1 + (src ? vlen + 1 : 0));
    if (!p)
        return false;
    uint16_t stored = klen < UINT16_MAX ? (uint16_t)klen : UINT16_MAX;
    memcpy(p, &stored, 2);
    af__copy_short(p + 2, in->key, klen + 1); /* with its NUL */
    out->key = p + 2;
    out->type = in->type;
    switch (in->type) {
    case AF_VAL_STRING: {
        char *v = p + 2 + klen + 1;
        if (vlen)
            af__copy_short(v, src, vlen);
        v[vlen] = '\0';
        out->v.s.ptr = v;
        out->v.s.len = vlen;
        return true;
    }
    case AF_VAL_BOOL:
    case AF_VAL_INT:
    case AF_VAL_DOUBLE:
        out->v = in->v;
        return true;
    default:
        return af__arena_copy_array(r, out, in, max_chars) == 0;
    }
}

/* Grows an inline array into the arena, doubling; returns the new base or NULL. */
static void *grow(af_span_rec *r, const void *old, uint32_t n, uint16_t *cap, size_t elem,
                  uint32_t limit)
{
    uint32_t c = (uint32_t)*cap * 2;
    if (c > limit)
        c = limit;
    if (c > UINT16_MAX)
        c = UINT16_MAX;
    void *p = af__arena_alloc(r, (size_t)c * elem);
    if (!p)
        return NULL;
    memcpy(p, old, (size_t)n * elem);
    *cap = (uint16_t)c;
    return p;
}

/* Sets one span attribute (a later value for a key replaces the earlier one). Inlined into
 * set_attrs_locked's loop, which keeps the record, its data and the limits in registers. */
static inline __attribute__((always_inline)) void
set_attr_locked(af_span_rec *r, const af_span_limits *lim, const af_attr *a)
{
    if (!a->key || !a->key[0])
        return; /* the spec forbids empty keys */
    size_t klen = strlen(a->key);
    af_span_data *d = &r->data;
    af_attr *attrs = (af_attr *)d->attrs;
    uint64_t bit = key_len_bit(klen);
    af_attr *slot = r->key_lens & bit ? find_attr(attrs, d->n_attrs, a->key, klen) : NULL;
    if (slot) {
        af_attr copy;
        if (copy_attr(r, &copy, a, klen, lim->attribute_value_length))
            *slot = copy;
        return;
    }
    if (d->n_attrs >= lim->attribute_count) {
        d->dropped_attrs++;
        return;
    }
    if (__builtin_expect(d->n_attrs == r->attr_cap, 0)) {
        attrs = grow(r, attrs, d->n_attrs, &r->attr_cap, sizeof(af_attr), lim->attribute_count);
        if (!attrs || d->n_attrs == r->attr_cap) {
            d->dropped_attrs++;
            return;
        }
        d->attrs = attrs;
    }
    if (!copy_attr(r, &attrs[d->n_attrs], a, klen, lim->attribute_value_length)) {
        d->dropped_attrs++;
        return;
    }
    r->key_lens |= bit;
    d->n_attrs++;
}

static void set_attrs_locked(af_span_rec *r, const af_attr *attrs, size_t n)
{
    const af_span_limits *lim = limits_of(r);
    af_span_data *d = &r->data;
    size_t i = 0;
    /* The usual case first: room for all of them, inline and within the limit, and keys
     * whose lengths are new to the span (so no duplicates), with the count and the length
     * set in registers; from a key that may be a duplicate on, the general path. */
    if (d->n_attrs + n <= r->attr_cap && d->n_attrs + n <= lim->attribute_count) {
        af_attr *out = (af_attr *)d->attrs;
        uint32_t k = d->n_attrs;
        uint64_t lens = r->key_lens;
        for (; i < n; i++) {
            const af_attr *a = &attrs[i];
            if (!a->key || !a->key[0])
                continue;
            size_t klen = strlen(a->key);
            uint64_t bit = key_len_bit(klen);
            if (lens & bit)
                break;
            if (!copy_attr(r, &out[k], a, klen, lim->attribute_value_length)) {
                d->dropped_attrs++;
                continue;
            }
            lens |= bit;
            k++;
        }
        d->n_attrs = k;
        r->key_lens = lens;
    }
    for (; i < n; i++)
        set_attr_locked(r, lim, &attrs[i]);
}

/*
 * Copies an attribute list, given in two parts read as one (a then b), into a fresh arena
 * array, applying the per-item count limit; what does not fit is counted in *dropped.
 */
static const af_attr *copy_attr_list(af_span_rec *r, const af_span_limits *lim, const af_attr *a,
                                     size_t na, const af_attr *b, size_t nb, uint32_t limit,
                                     uint32_t *n_out, uint32_t *dropped)
{
    *n_out = 0;
    *dropped = 0;
    size_t n = na + nb;
    if (n == 0)
        return NULL;
    size_t keep = n < limit ? n : limit;
    af_attr *out = af__arena_alloc(r, (keep ? keep : 1) * sizeof(af_attr));
    if (!out) {
        *dropped = (uint32_t)n;
        return NULL;
    }
    uint32_t k = 0;
    uint64_t lens = 0;
    for (size_t i = 0; i < n; i++) {
        const af_attr *in = i < na ? &a[i] : &b[i - na];
        if (!in->key || !in->key[0])
            continue;
        size_t klen = strlen(in->key);
        af_attr *dup = lens & key_len_bit(klen) ? find_attr(out, k, in->key, klen) : NULL;
        if (dup) { /* a later duplicate overwrites, as set_attr would */
            af_attr copy;
            if (copy_attr(r, &copy, in, klen, lim->attribute_value_length))
                *dup = copy;
            continue;
        }
        if (k >= keep || !copy_attr(r, &out[k], in, klen, lim->attribute_value_length)) {
            (*dropped)++;
            continue;
        }
        lens |= key_len_bit(klen);
        k++;
    }
    *n_out = k;
    return out;
}

/* ----- start ---------------------------------------------------------------------------- */

static void gen_span_id(const af_tracer_provider *p, uint8_t out[8])
{
    if (p->idgen)
        p->idgen->span_id(p->idgen_self, out);
    else
        af_random_span_id(out);
}

static void add_link_locked(af_span_rec *r, const af_link *l);

/* What every span needs; recording spans also get init_storage. The arena is reset here
 * too because a non-recording span may copy its parent's tracestate into it. */
static void init_record(af_span_rec *r, af_tracer *t)
{
    r->provider = t->provider;
    r->ended = false;
    r->arena_pos = r->arena;
    r->arena_left = sizeof(r->arena);
    atomic_store_explicit(&r->refs, 1, memory_order_relaxed);
    /* Not the lock: it is free, but a call on a stale handle may hold it for a moment to
     * read the generation, and storing 0 here would release it under that call. */
}

static void init_storage(af_span_rec *r)
{
    r->attr_cap = AF_INLINE_ATTRS;
    r->key_lens = 0;
    r->event_cap = AF_INLINE_EVENTS;
    r->link_cap = AF_INLINE_LINKS;
}

/* Resolves the parent into *sc (header fields only; trace_state copied when present). */
static bool resolve_parent(const af_span_start_opts *o, af_span_context *sc)
{
    af_parent_mode mode = o ? o->parent_mode : AF_PARENT_CURRENT;
    if (mode == AF_PARENT_ROOT)
        return false;
    if (mode == AF_PARENT_EXPLICIT) {
        if (!o->parent || !af_span_context_is_valid(o->parent))
            return false;
        memcpy(sc->trace_id, o->parent->trace_id, 16);
        memcpy(sc->span_id, o->parent->span_id, 8);
        sc->trace_flags = o->parent->trace_flags;
        sc->is_remote = o->parent->is_remote;
        sc->trace_state_len = o->parent->trace_state_len;
        if (sc->trace_state_len)
            memcpy(sc->trace_state, o->parent->trace_state, (size_t)sc->trace_state_len + 1);
        else
            sc->trace_state[0] = '\0';
        return true;
    }
    return af__context_current_parent(sc);
}

/* An out-of-range kind would be exported as a number OTLP does not define; it becomes
 * INTERNAL (the spec's default) with a warning at most every 10 s, since a caller with a bad
 * constant passes it on every span. */
#define KIND_LOG_INTERVAL_NS (10 * 1000000000ull)
static _Atomic uint64_t kind_logged_ns;

static af_span_kind invalid_kind(af_span_kind kind)
{
    uint64_t now = af_monotonic_ns();
    uint64_t last = atomic_load_explicit(&kind_logged_ns, memory_order_relaxed);
    if ((last == 0 || now - last >= KIND_LOG_INTERVAL_NS) &&
        atomic_compare_exchange_strong(&kind_logged_ns, &last, now))
        af_log(AF_LOG_WARN, "span kind %d is not a valid af_span_kind; using INTERNAL", (int)kind);
    return AF_SPAN_KIND_INTERNAL;
}

/* No-op SDK (disabled or shut down): a non-recording span that carries the parent's context
 * unchanged. */
static af_span start_noop(af_tracer *t, const af_span_context *parent, bool has_parent)
{
    af_span_rec *r = af__span_rec_alloc();
    if (!r)
        return AF_SPAN_NONE;
    init_record(r, t);
    af_span_data *d = &r->data;
    d->has_parent = has_parent;
    d->parent_is_remote = has_parent && parent->is_remote;
    atomic_store_explicit(&r->recording, false, memory_order_relaxed);
    if (has_parent) {
        memcpy(d->trace_id, parent->trace_id, 16);
        memcpy(d->span_id, parent->span_id, 8);
        d->trace_flags = parent->trace_flags;
    } else {
        memset(d->trace_id, 0, 16);
        memset(d->span_id, 0, 8);
        d->trace_flags = 0;
    }
    d->trace_state = has_parent && parent->trace_state_len
                         ? af__arena_strdup(r, parent->trace_state, parent->trace_state_len)
                         : empty;
    if (!d->trace_state)
        d->trace_state = empty;
    return (af_span){r, atomic_load_explicit(&r->gen, memory_order_relaxed)};
}

/* Every span starts here, so it stays one function on purpose: its steps (ids, sampling, the
 * clock read, the record, the attributes) share a dozen locals that a split would pass
 * through memory, and their order is the point (the clock is read before the record's lines,
 * last written by the export thread, are touched). The cold paths are out of line already:
 * resolve_parent, invalid_kind, start_noop, the link and attribute helpers. */
af_span af_span_start_impl(af_tracer *t, const char *name, const af_span_start_opts *o)
{
    if (!t)
        return AF_SPAN_NONE;
    af_tracer_provider *p = t->provider;
    af_span_context parent;
    bool has_parent = resolve_parent(o, &parent);
    af_span_kind kind = (o && o->kind) ? o->kind : AF_SPAN_KIND_INTERNAL;
    if (__builtin_expect((unsigned)kind - AF_SPAN_KIND_INTERNAL >
                             (unsigned)(AF_SPAN_KIND_CONSUMER - AF_SPAN_KIND_INTERNAL),
                         0))
        kind = invalid_kind(kind);
    if (!p || p->disabled || t == &p->noop_tracer)
        return start_noop(t, &parent, has_parent);

    /* Ids, sampling and the start time come before the record: the clock read waits for
     * every load before it (clock_gettime's LFENCE on kvm-clock), so it is taken before the
     * record's lines, last written by the export thread's core, are touched. */
    uint8_t trace_id[16], span_id[8];
    uint8_t flags;
    if (has_parent) {
        memcpy(trace_id, parent.trace_id, 16);
        flags = parent.trace_flags & AF_TRACE_FLAG_RANDOM;
    } else {
        if (p->idgen)
            p->idgen->trace_id(p->idgen_self, trace_id);
        else
            af__random_ids(trace_id, span_id); /* the span id too: see below */
        flags = p->idgen ? 0 : AF_TRACE_FLAG_RANDOM;
    }
    af_sampling_decision dec;
    if (!has_parent && p->root_decision >= 0) {
        dec = (af_sampling_decision)p->root_decision; /* what the sampler would answer */
    } else {
        af_sampling_params sp = {
            .parent = has_parent ? &parent : NULL,
            .trace_id = trace_id,
            .name = name,
            .kind = kind,
            .attrs = o ? o->attrs : NULL,
            .n_attrs = o ? o->n_attrs : 0,
            .links = o ? o->links : NULL,
            .n_links = o ? o->n_links : 0,
        };
        dec = af_sampler_should_sample(p->sampler, &sp);
    }
    /* Made after sampling, as the spec orders it; a root span on the default generator got
     * its span id with its trace id (the sampler does not see it either way). */
    if (has_parent || p->idgen)
        gen_span_id(p, span_id);
    if (dec == AF_SAMPLING_RECORD_AND_SAMPLE)
        flags |= AF_TRACE_FLAG_SAMPLED;
    uint64_t start_ns = 0;
    if (dec != AF_SAMPLING_DROP)
        start_ns = (o && o->start_ns) ? o->start_ns : af__clock_now_ns();

    af_span_rec *r = af__span_rec_alloc();
    if (!r)
        return AF_SPAN_NONE;
    init_record(r, t);
    af_span_data *d = &r->data;
    d->has_parent = has_parent;
    d->parent_is_remote = has_parent && parent.is_remote;
    memcpy(d->trace_id, trace_id, 16);
    memcpy(d->span_id, span_id, 8);
    if (has_parent)
        memcpy(d->parent_span_id, parent.span_id, 8);
    else
        memset(d->parent_span_id, 0, 8);
    d->trace_flags = flags;
    d->trace_state = empty;
    if (has_parent && parent.trace_state_len) {
        const char *ts = af__arena_strdup(r, parent.trace_state, parent.trace_state_len);
        if (ts)
            d->trace_state = ts;
    }

    if (dec == AF_SAMPLING_DROP) {
        atomic_store_explicit(&r->recording, false, memory_order_relaxed);
        af__counter_inc(p->counters, AF_COUNT_UNSAMPLED);
        return (af_span){r, atomic_load_explicit(&r->gen, memory_order_relaxed)};
    }

    atomic_store_explicit(&r->recording, true, memory_order_relaxed);
    init_storage(r);
    const char *nm = name ? name : "";
    d->name = af__arena_strdup(r, nm, strlen(nm));
    if (!d->name)
        d->name = empty;
    d->kind = kind;
    d->start_ns = start_ns;
    d->end_ns = 0;
    d->attrs = r->attrs_inline;
    d->n_attrs = 0;
    d->dropped_attrs = 0;
    d->events = r->events_inline;
    d->n_events = 0;
    d->dropped_events = 0;
    d->links = r->links_inline;
    d->n_links = 0;
    d->dropped_links = 0;
    d->status = AF_STATUS_UNSET;
    d->status_message = empty;
    d->resource = p->resource;
    d->scope = &t->scope;
    if (o) {
        if (o->n_attrs)
            set_attrs_locked(r, o->attrs, o->n_attrs);
        for (size_t i = 0; i < o->n_links; i++)
            add_link_locked(r, &o->links[i]);
    }
    af__counter_inc(p->counters, AF_COUNT_STARTED);

    size_t np = atomic_load_explicit(&p->n_processors, memory_order_acquire);
    for (size_t i = 0; i < np; i++) {
        af_span_processor *proc = atomic_load_explicit(&p->processors[i], memory_order_acquire);
        if (proc->ops->on_start)
            proc->ops->on_start(proc->self, d);
    }
    return (af_span){r, atomic_load_explicit(&r->gen, memory_order_relaxed)};
}

af_span af_span_start_child(af_tracer *t, const char *name, af_span_kind kind,
                            const af_span_context *parent, const af_attr *attrs, size_t n_attrs)
{
    af_span_start_opts o = {
        .kind = kind,
        .parent_mode = AF_PARENT_EXPLICIT,
        .parent = parent,
        .attrs = attrs,
        .n_attrs = n_attrs,
    };
    return af_span_start(t, name, &o);
}

/* ----- end ------------------------------------------------------------------------------ */

void af_span_end_at(af_span s, uint64_t end_ns)
{
    af_span_rec *r = s.rec;
    if (!r || atomic_load_explicit(&r->gen, memory_order_acquire) != s.gen)
        return;
    uint64_t t = end_ns;
    if (!t && atomic_load_explicit(&r->recording, memory_order_relaxed))
        t = af__clock_now_ns(); /* before the lock: see live_recording */
    span_lock(r);
    if (atomic_load_explicit(&r->gen, memory_order_relaxed) != s.gen || r->ended) {
        span_unlock(r);
        return;
    }
    r->ended = true;
    if (!atomic_load_explicit(&r->recording, memory_order_relaxed)) {
        /* Nobody else holds a non-recording span: invalidate handles while we hold the
         * lock and recycle it here, without reference counting. */
        atomic_store_explicit(&r->gen, s.gen + 1, memory_order_relaxed);
        span_unlock(r);
        af__span_rec_recycle_local(r);
        return;
    }
    r->data.end_ns = t < r->data.start_ns ? r->data.start_ns : t;
    span_unlock(r);
    af_tracer_provider *p = r->provider;
    af__counter_inc(p->counters, AF_COUNT_ENDED);
    size_t np = atomic_load_explicit(&p->n_processors, memory_order_acquire);
    if (np == 1) {
        af_span_processor *proc = atomic_load_explicit(&p->processors[0], memory_order_acquire);
        if (proc->on_end_take) {
            proc->on_end_take(proc->self, r);
            return;
        }
    }
    for (size_t i = 0; i < np; i++) {
        af_span_processor *proc = atomic_load_explicit(&p->processors[i], memory_order_acquire);
        proc->ops->on_end(proc->self, &r->data);
    }
    af__span_rec_release(r); /* the ender's reference; processors took their own */
}

/* ----- accessors ------------------------------------------------------------------------ */

bool af_span_is_recording(af_span s)
{
    if (!s.rec || atomic_load_explicit(&s.rec->gen, memory_order_acquire) != s.gen)
        return false;
    span_lock(s.rec);
    bool rec = atomic_load_explicit(&s.rec->gen, memory_order_relaxed) == s.gen &&
               atomic_load_explicit(&s.rec->recording, memory_order_relaxed) && !s.rec->ended;
    span_unlock(s.rec);
    return rec;
}

bool af__span_context_of(af_span s, af_span_context *out, bool with_state)
{
    af_span_rec *r = s.rec;
    if (!r || atomic_load_explicit(&r->gen, memory_order_acquire) != s.gen)
        return false;
    span_lock(r);
    bool ok = atomic_load_explicit(&r->gen, memory_order_relaxed) == s.gen;
    if (ok) {
        memcpy(out->trace_id, r->data.trace_id, 16);
        memcpy(out->span_id, r->data.span_id, 8);
        out->trace_flags = r->data.trace_flags;
        out->is_remote = false;
        size_t n = with_state && r->data.trace_state ? strlen(r->data.trace_state) : 0;
        if (n > AF_TRACE_STATE_MAX)
            n = 0;
        memcpy(out->trace_state, n ? r->data.trace_state : "", n + 1);
        out->trace_state_len = (uint16_t)n;
    }
    span_unlock(r);
    return ok;
}

void af_span_get_context(af_span s, af_span_context *out)
{
    if (!af__span_context_of(s, out, true))
        af_span_context_init(out);
}

/* ----- mutation ------------------------------------------------------------------------- */

void af_span_set_attrs_impl(af_span s, const af_attr *attrs, size_t n)
{
    if (!lock_live(s))
        return;
    set_attrs_locked(s.rec, attrs, n);
    span_unlock(s.rec);
}

void af_span_set_attr(af_span s, const af_attr *a)
{
    af_span_set_attrs(s, a, 1);
}

void af_span_set_string(af_span s, const char *key, const char *value)
{
    af_attr a = AF_STR(key, value);
    af_span_set_attrs(s, &a, 1);
}

void af_span_set_int(af_span s, const char *key, int64_t value)
{
    af_attr a = AF_INT(key, value);
    af_span_set_attrs(s, &a, 1);
}

void af_span_set_double(af_span s, const char *key, double value)
{
    af_attr a = AF_DOUBLE(key, value);
    af_span_set_attrs(s, &a, 1);
}

void af_span_set_bool(af_span s, const char *key, bool value)
{
    af_attr a = AF_BOOL(key, value);
    af_span_set_attrs(s, &a, 1);
}

/* The event's attributes are `pre` followed by `attrs` (record_error puts its standard
 * attributes in front of the caller's without copying them into one array first); time_ns is
 * the caller's or the clock's, read before the lock. */
static void add_event_locked(af_span_rec *r, const char *name, uint64_t time_ns, const af_attr *pre,
                             size_t n_pre, const af_attr *attrs, size_t n)
{
    const af_span_limits *lim = limits_of(r);
    af_span_data *d = &r->data;
    if (d->n_events >= lim->event_count) {
        d->dropped_events++;
        return;
    }
    af_event_data *events = (af_event_data *)d->events;
    if (d->n_events == r->event_cap) {
        events =
            grow(r, events, d->n_events, &r->event_cap, sizeof(af_event_data), lim->event_count);
        if (!events || d->n_events == r->event_cap) {
            d->dropped_events++;
            return;
        }
        d->events = events;
    }
    af_event_data *e = &events[d->n_events];
    const char *nm = name ? name : "";
    e->name = af__arena_strdup(r, nm, strlen(nm));
    if (!e->name) {
        d->dropped_events++;
        return;
    }
    e->time_ns = time_ns;
    if (n_pre + n == 0) { /* the usual event: a name and a time */
        e->attrs = NULL;
        e->n_attrs = 0;
        e->dropped_attrs = 0;
    } else {
        e->attrs = copy_attr_list(r, lim, pre, n_pre, attrs, n, lim->attribute_per_event_count,
                                  &e->n_attrs, &e->dropped_attrs);
    }
    d->n_events++;
}

void af_span_add_event_at(af_span s, const char *name, uint64_t time_ns, const af_attr *attrs,
                          size_t n_attrs)
{
    if (!live_recording(s))
        return;
    if (!time_ns)
        time_ns = af__clock_now_ns(); /* before the lock: see live_recording */
    if (!lock_if_still_live(s))
        return;
    add_event_locked(s.rec, name, time_ns, NULL, 0, attrs, n_attrs);
    span_unlock(s.rec);
}

static void add_link_locked(af_span_rec *r, const af_link *l)
{
    if (!l->context || !af_span_context_is_valid(l->context))
        return;
    const af_span_limits *lim = limits_of(r);
    af_span_data *d = &r->data;
    if (d->n_links >= lim->link_count) {
        d->dropped_links++;
        return;
    }
    af_link_data *links = (af_link_data *)d->links;
    if (d->n_links == r->link_cap) {
        links = grow(r, links, d->n_links, &r->link_cap, sizeof(af_link_data), lim->link_count);
        if (!links || d->n_links == r->link_cap) {
            d->dropped_links++;
            return;
        }
        d->links = links;
    }
    af_link_data *ld = &links[d->n_links];
    memcpy(ld->trace_id, l->context->trace_id, 16);
    memcpy(ld->span_id, l->context->span_id, 8);
    ld->trace_flags = l->context->trace_flags;
    ld->is_remote = l->context->is_remote;
    ld->trace_state = empty;
    if (l->context->trace_state_len) {
        const char *ts = af__arena_strdup(r, l->context->trace_state, l->context->trace_state_len);
        if (ts)
            ld->trace_state = ts;
    }
    ld->attrs = copy_attr_list(r, lim, l->attrs, l->n_attrs, NULL, 0, lim->attribute_per_link_count,
                               &ld->n_attrs, &ld->dropped_attrs);
    d->n_links++;
}

void af_span_add_link(af_span s, const af_span_context *ctx, const af_attr *attrs, size_t n)
{
    if (!lock_live(s))
        return;
    af_link l = {ctx, attrs, n};
    add_link_locked(s.rec, &l);
    span_unlock(s.rec);
}

static void set_status_locked(af_span_rec *r, af_status_code code, const char *description)
{
    af_span_data *d = &r->data;
    if (code == AF_STATUS_UNSET || d->status == AF_STATUS_OK)
        return; /* Unset is ignored; Ok is final */
    d->status = code;
    d->status_message = empty;
    if (code == AF_STATUS_ERROR && description && description[0]) {
        size_t n = strlen(description);
        const char *m = af__arena_strdup(r, description, n);
        if (m)
            d->status_message = m;
    }
}

void af_span_set_status(af_span s, af_status_code code, const char *description)
{
    if (code != AF_STATUS_OK && code != AF_STATUS_ERROR)
        return;
    if (!lock_live(s))
        return;
    set_status_locked(s.rec, code, description);
    span_unlock(s.rec);
}

void af_span_update_name(af_span s, const char *name)
{
    if (!name || !lock_live(s))
        return;
    const char *nm = af__arena_strdup(s.rec, name, strlen(name));
    if (nm)
        s.rec->data.name = nm;
    span_unlock(s.rec);
}

void af_span_record_error(af_span s, const char *type, const char *message, const char *stacktrace,
                          const af_attr *attrs, size_t n_attrs)
{
    if (!live_recording(s))
        return;
    uint64_t now = af__clock_now_ns(); /* before the lock: see live_recording */
    if (!lock_if_still_live(s))
        return;
    /* Standard attributes first, caller's attributes after: a later duplicate key wins in
     * copy_attr_list, which gives the caller precedence as the spec asks. The caller's list
     * is read in place, so only the event attribute limit bounds it. */
    af_attr std[3];
    size_t n = 0;
    if (type)
        std[n++] = AF_STR("exception.type", type);
    if (message)
        std[n++] = AF_STR("exception.message", message);
    if (stacktrace)
        std[n++] = AF_STR("exception.stacktrace", stacktrace);
    add_event_locked(s.rec, "exception", now, std, n, attrs, attrs ? n_attrs : 0);
    set_status_locked(s.rec, AF_STATUS_ERROR, message ? message : type);
    span_unlock(s.rec);
}
