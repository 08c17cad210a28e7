/*
 * trace/span_int.h - the span record and the internals shared by the trace core (private).
 *
 * A span is a fixed-size record from a process-wide pool (pool.c): attributes, events and
 * links live inline up to small counts and overflow into the record's arena, which starts
 * inline and grows by malloc'd chunks only for unusually large spans. Records are never
 * returned to the system, so a stale af_span handle always points at valid memory; its
 * generation number tells whether the record still holds that span.
 */
#ifndef AF_TRACE_SPAN_INT_H
#define AF_TRACE_SPAN_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "agentaflow/trace_sdk.h"
#include "trace/fork.h"

#define AF_INLINE_ATTRS 16 /* an HTTP server span carries about 14 */
#define AF_INLINE_EVENTS 2
#define AF_INLINE_LINKS 1
#define AF_ARENA_INLINE 1024
#define AF_MAX_PROCESSORS 16

typedef struct af_arena_chunk {
    struct af_arena_chunk *next;
    size_t size;
    /* data follows, 16-byte aligned */
} af_arena_chunk;

struct af_span_rec {
    /* First cache line: everything the export thread touches when it lets go of a record
     * (refs, and the lock and gen of the generation bump) and the control words, so a
     * recycled record costs one line of cross-core traffic. The rest of the recycling work
     * (arena reset) happens when the record is taken again, on the thread that will use it. */
    _Alignas(64) _Atomic uint32_t refs; /* 1 for the live span + one per retaining processor */
    _Atomic uint32_t lock;
    _Atomic uint64_t gen;
    af_tracer_provider *provider; /* the span's tracer's */
    char *arena_pos;
    size_t arena_left;
    af_arena_chunk *chunks;
    bool ended;
    _Atomic bool recording; /* set before the handle exists; read without the lock */
    uint16_t attr_cap;
    uint16_t event_cap;
    uint16_t link_cap;
    uint64_t key_lens; /* bit (length % 64) of every key in data.attrs (span.c) */
    af_span_data data; /* the readable view handed to processors */
    af_attr attrs_inline[AF_INLINE_ATTRS];
    af_event_data events_inline[AF_INLINE_EVENTS];
    af_link_data links_inline[AF_INLINE_LINKS];
    _Alignas(16) char arena[AF_ARENA_INLINE];
};

/* A processor: the public handle behind af_span_processor. */
struct af_span_processor {
    const af_span_processor_ops *ops;
    void *self;
    af_exporter *exporter; /* simple and batch processors only */
    void (*stats)(void *self, af_processor_stats *out);
    /* Built-in processors only: on_end for a processor that is the provider's only one, given
     * the ending thread's reference to the record, which it keeps or releases: no retain by
     * the processor and no release by the ender, two locked operations a span (NULL: on_end). */
    void (*on_end_take)(void *self, af_span_rec *r);
    struct af_span_processor *retired_next; /* the provider's retired list (replace_processor) */
};

struct af_tracer {
    af_tracer_provider *provider;
    af_instrumentation_scope scope; /* strings owned by the tracer; attrs point into ... */
    af_resource *scope_attrs;       /* ... this owned attribute set (NULL when none) */
    struct af_tracer *next;
};

/* Span counters, sharded so the hot path never does a locked add: each of the first
 * AF_COUNTER_SHARDS threads that touch a provider owns one shard and updates it with plain
 * relaxed loads and stores (one writer, so no update is lost); later threads share the last
 * shard through atomic adds. Readers sum the shards. */
#define AF_COUNTER_SHARDS 64

typedef struct af_counter_shard {
    _Alignas(64) _Atomic uint64_t started;
    _Atomic uint64_t ended;
    _Atomic uint64_t unsampled;
} af_counter_shard;

typedef enum af_counter { AF_COUNT_STARTED, AF_COUNT_ENDED, AF_COUNT_UNSAMPLED } af_counter;

/* counters.c */
extern _Thread_local int af__counter_shard_index; /* -1 until the thread's first count */
int af__counter_shard_assign(void);
uint64_t af__counter_sum(const af_counter_shard *shards, af_counter which);

static inline void af__counter_inc(af_counter_shard *shards, af_counter which)
{
    int i = af__counter_shard_index;
    if (__builtin_expect(i < 0, 0))
        i = af__counter_shard_assign();
    af_counter_shard *s = &shards[i];
    _Atomic uint64_t *f = which == AF_COUNT_STARTED ? &s->started
                          : which == AF_COUNT_ENDED ? &s->ended
                                                    : &s->unsampled;
    if (i < AF_COUNTER_SHARDS - 1) /* this thread is the shard's only writer */
        atomic_store_explicit(f, atomic_load_explicit(f, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    else
        atomic_fetch_add_explicit(f, 1, memory_order_relaxed);
}

struct af_tracer_provider {
    af_resource *resource;
    af_sampler *sampler;
    int root_decision; /* af__sampler_root_decision(sampler), fixed with the sampler */
    af_span_limits limits;
    const af_id_generator_ops *idgen;
    void *idgen_self;
    bool disabled;
    _Atomic bool shut_down;
    /* Slots are atomic because af_tracer_provider_replace_processor rewrites one while spans
     * read them; on x86 an acquire load is the plain load it was before. */
    _Atomic(af_span_processor *) processors[AF_MAX_PROCESSORS];
    _Atomic size_t n_processors;
    pthread_mutex_t mu;         /* guards tracers list and processor registration */
    af_span_processor *retired; /* replaced processors, stopped, freed with the provider */
    af_tracer *tracers;
    af_tracer noop_tracer;     /* returned after shutdown */
    af__fork_participant fork; /* takes mu around fork(), re-creates it in the child */
    af_counter_shard counters[AF_COUNTER_SHARDS];
};

/* pool.c */
extern bool af__have_prefetchw; /* CPUID says PREFETCHW exists; set with the first record */

/* Asks for the line holding p in a writable (exclusive) state. A read prefetch, which is what
 * __builtin_prefetch(p, 1) becomes without -mprfchw, leaves a line another core has read
 * shared, and the first locked instruction after a store to it then waits for that core to
 * let it go (perf: 70 % of pool.c's cycles on the generation bump's exchange). */
static inline void af__prefetch_for_write(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
    if (af__have_prefetchw) {
        __asm__ volatile("prefetchw %0" : : "m"(*(const char *)p));
        return;
    }
#endif
    __builtin_prefetch(p, 1, 3);
}

af_span_rec *af__span_rec_alloc(void);
/* Drops one reference; the last one recycles the record (any thread). */
void af__span_rec_release(af_span_rec *r);
/* Recycles a record nobody else can hold (a non-recording span at its end, under the span
 * lock, with its generation already bumped): no atomics. */
void af__span_rec_recycle_local(af_span_rec *r);
void af__span_rec_retain(af_span_rec *r);

static inline af_span_rec *af__span_rec_of(const af_span_data *d)
{
    return (af_span_rec *)((char *)(uintptr_t)d - offsetof(af_span_rec, data));
}

/* arena.c: bump allocation inside a record; NULL on ENOMEM. The fast path is inline; a
 * request that does not fit goes to af__arena_grow, which chains a malloc'd chunk. */
void *af__arena_grow(af_span_rec *r, size_t size);

static inline void *af__arena_alloc(af_span_rec *r, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (__builtin_expect(size > r->arena_left, 0))
        return af__arena_grow(r, size);
    void *p = r->arena_pos;
    r->arena_pos += size;
    r->arena_left -= size;
    return p;
}

/*
 * Copies n bytes (n >= 1) of a string that is usually short: two overlapping loads and stores
 * instead of a call to memcpy (about 15 instructions a key or value). Reads only [src, src+n).
 */
static inline void af__copy_short(char *dst, const char *src, size_t n)
{
    if (n >= 8 && n <= 16) {
        uint64_t a, b;
        __builtin_memcpy(&a, src, 8);
        __builtin_memcpy(&b, src + n - 8, 8);
        __builtin_memcpy(dst, &a, 8);
        __builtin_memcpy(dst + n - 8, &b, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t a, b;
        __builtin_memcpy(&a, src, 4);
        __builtin_memcpy(&b, src + n - 4, 4);
        __builtin_memcpy(dst, &a, 4);
        __builtin_memcpy(dst + n - 4, &b, 4);
    } else if (n > 16 && n <= 32) {
        char a[16], b[16];
        __builtin_memcpy(a, src, 16);
        __builtin_memcpy(b, src + n - 16, 16);
        __builtin_memcpy(dst, a, 16);
        __builtin_memcpy(dst + n - 16, b, 16);
    } else {
        __builtin_memcpy(dst, src, n);
    }
}

static inline char *af__arena_strdup(af_span_rec *r, const char *s, size_t len)
{
    char *p = (char *)af__arena_alloc(r, len + 1);
    if (p) {
        if (len)
            af__copy_short(p, s, len);
        p[len] = '\0';
    }
    return p;
}

void af__arena_reset(af_span_rec *r);
/* Copies the items of an array attribute into the arena (strings truncated to max_chars
 * characters); out->key and out->type are the caller's. Returns 0 or -1 on ENOMEM. */
int af__arena_copy_array(af_span_rec *r, af_attr *out, const af_attr *in, uint32_t max_chars);

/* sampler.c: the decision the sampler makes for every root span whatever the span's name,
 * ids, attributes and links (AlwaysOn, AlwaysOff, and ParentBased over them), or -1 when it
 * depends on them (ratio, custom). Spans then skip the call for root spans. */
int af__sampler_root_decision(const af_sampler *s);

/* batch.c: how long the worker should sleep for the next batch to arrive, when `arrived`
 * spans came in `elapsed_ns` and `depth` wait: the time `batch - depth` more take at that
 * rate (at least 1 ns), or 0 when a batch takes longer than PACE_MAX_NS (1 ms) to arrive, so
 * the worker sleeps until a producer wakes it. Pure; exposed for tests. */
uint64_t af__batch_pace_ns(size_t arrived, uint64_t elapsed_ns, size_t depth, size_t batch);

/* ids.c: a root span's trace id and span id from the default generator in one call (one
 * thread-local lookup and fork check instead of two). */
void af__random_ids(uint8_t trace_id[16], uint8_t span_id[8]);

/* fork.c: incremented in every child after fork(); lets lazily-restarted parts notice. */
extern _Atomic uint64_t af__fork_generation;
/* Per-module fork hooks, called by fork.c in the order it documents. */
void af__pool_atfork_prepare(void);
void af__pool_atfork_parent(void);
void af__pool_atfork_child(void);
void af__batch_atfork_prepare(void);
void af__batch_atfork_parent(void);
void af__batch_atfork_child(void);
/* Runs the exporter's optional atfork hook (see af_exporter_ops). */
void af__exporter_atfork(af_exporter *e, af_fork_phase phase);

#endif
