/*
 * The span record pool.
 *
 * Application threads take records from a thread-local cache (an array of pointers) that
 * refills from a global stack 64 at a time; the export thread returns records to its own
 * cache and spills them back in batches. The global lock is therefore taken about once per
 * 64 spans, and no malloc/free pair ever crosses threads in steady state (docs/architecture.md).
 *
 * The caches hold pointers, not links inside the records. The thread that drops a record's
 * last reference (usually the export thread) gives it a new generation under the span lock,
 * which invalidates outstanding handles; it writes only the record's first line, which it has
 * just read anyway. The rest of the reuse work (dropping overflow chunks) happens when the
 * record is taken again, on the thread that will use it, which takes no lock: nobody can hold
 * the record's lock for a span it holds then (stale handles fail the generation check).
 * The bump used to happen at reuse: the application thread's exchange on a line the export
 * thread had last touched cost about 13 ns a span on a kvm-clock VM.
 *
 * Records are allocated in slabs and never freed: a stale span handle always points at a
 * record, and its generation tells whether the record still holds that span.
 */
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "trace/span_int.h"

#define SLAB_RECORDS 64
#define REFILL_BATCH 64
#define CACHE_CAP 512

typedef struct slab {
    struct slab *next;
    af_span_rec recs[SLAB_RECORDS];
} slab;

typedef struct rec_cache {
    af_span_rec *items[CACHE_CAP];
    uint32_t count;
} rec_cache;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static af_span_rec **pool_items; /* global stack of free records */
static size_t pool_count, pool_cap;
static slab *pool_slabs; /* keeps every slab reachable */
static pthread_key_t cache_key;
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;
/* The cache lives on the heap behind a thread-local pointer. Kept in TLS itself, its 4 KiB
 * made the library's TLS block larger than the surplus glibc reserves for dlopen()ed
 * libraries, so a dlopen()ed SDK paid the dynamic TLS path on every access. */
static _Thread_local rec_cache *tcache;

/* Moves the `n` oldest records of the thread cache to the global stack. */
static void spill(rec_cache *c, uint32_t n)
{
    pthread_mutex_lock(&pool_mu);
    if (pool_count + n > pool_cap) {
        size_t cap = pool_cap ? pool_cap * 2 : 1024;
        while (cap < pool_count + n)
            cap *= 2;
        af_span_rec **p = realloc(pool_items, cap * sizeof(*p));
        if (!p) {
            /* Keep them in the cache; it only grows past its soft cap by the failed spill. */
            pthread_mutex_unlock(&pool_mu);
            return;
        }
        pool_items = p;
        pool_cap = cap;
    }
    memcpy(pool_items + pool_count, c->items, n * sizeof(*c->items));
    pool_count += n;
    pthread_mutex_unlock(&pool_mu);
    memmove(c->items, c->items + n, (c->count - n) * sizeof(*c->items));
    c->count -= n;
}

static void cache_destructor(void *arg)
{
    rec_cache *c = arg;
    if (c->count)
        spill(c, c->count);
    /* A later destructor that still releases spans gets a fresh cache, destroyed in the
     * next destructor round. */
    tcache = NULL;
    free(c);
}

bool af__have_prefetchw;

static void make_cache_key(void)
{
    pthread_key_create(&cache_key, cache_destructor);
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    af__have_prefetchw = __get_cpuid(0x80000001, &a, &b, &c, &d) && (c & (1u << 8));
#endif
}

/*
 * Asks for the lines a usual sampled span writes: the control line, the data, the line of the
 * second and third inline attributes (the first shares the data's last line), the first event
 * and the start of the arena (name and keys). The record was last written one circuit of the
 * pool ago, thousands of spans: its control line is in the export thread's cache, the rest in
 * this core's L2 or L3. Its stores then reach the event's lock, which waits for every one of
 * them (paired runs of bench_trace on a kvm-clock VM: 4 % a span). Lines a span does not use
 * cost a little too: one more attribute line and one more arena line measured 2 % slower.
 */
static inline void prefetch_record(const af_span_rec *r)
{
    const char *data = (const char *)&r->data;
    af__prefetch_for_write(r);
    af__prefetch_for_write(data);
    af__prefetch_for_write(data + 64);
    af__prefetch_for_write(data + 128);
    af__prefetch_for_write(&r->attrs_inline[2]);
    af__prefetch_for_write(r->events_inline);
    af__prefetch_for_write(r->arena);
    af__prefetch_for_write(r->arena + 64);
}

/* The calling thread's cache, created on first use; NULL only when memory is short. */
static rec_cache *cache_get(void)
{
    rec_cache *c = tcache;
    if (__builtin_expect(c != NULL, 1))
        return c;
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    pthread_once(&cache_key_once, make_cache_key);
    pthread_setspecific(cache_key, c);
    tcache = c;
    return c;
}

/* Takes up to REFILL_BATCH records from the global stack, allocating a slab when empty. */
static bool refill(rec_cache *c)
{
    pthread_mutex_lock(&pool_mu);
    if (pool_count == 0) {
        void *mem = NULL;
        if (posix_memalign(&mem, 64, sizeof(slab)) != 0) { /* records are cache-aligned */
            pthread_mutex_unlock(&pool_mu);
            return false;
        }
        slab *s = memset(mem, 0, sizeof(slab));
        s->next = pool_slabs;
        pool_slabs = s;
        pthread_mutex_unlock(&pool_mu);
        for (int i = SLAB_RECORDS - 1; i >= 0; i--) {
            atomic_init(&s->recs[i].gen, 1);
            c->items[c->count++] = &s->recs[i];
        }
        return true;
    }
    uint32_t n = pool_count < REFILL_BATCH ? (uint32_t)pool_count : REFILL_BATCH;
    pool_count -= n;
    memcpy(c->items + c->count, pool_items + pool_count, n * sizeof(*c->items));
    pthread_mutex_unlock(&pool_mu);
    c->count += n;
    return true;
}

af_span_rec *af__span_rec_alloc(void)
{
    rec_cache *c = cache_get();
    if (!c)
        return NULL;
    if (!c->count && !refill(c))
        return NULL;
    af_span_rec *r = c->items[--c->count];
    /* Ask for the next span's lines now, so the misses overlap this span's work instead of
     * stalling the next one (perf on a kvm-clock EPYC VM put a quarter of the cycles of a
     * sampled span in this function before the control line was prefetched). */
    if (c->count)
        prefetch_record(c->items[c->count - 1]);
    /* Drop any overflow chunks of the previous span (its generation was bumped when it was
     * released). */
    if (r->chunks)
        af__arena_reset(r);
    return r;
}

void af__span_rec_retain(af_span_rec *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

void af__span_rec_release(af_span_rec *r)
{
    /* A sole owner (the common case: one batch processor) only reads the count; nobody
     * can take a new reference to an ended span, so no one else can be releasing. */
    if (atomic_load_explicit(&r->refs, memory_order_acquire) != 1 &&
        atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Invalidate outstanding handles under the span lock, so a concurrent call on a stale
     * handle either finishes first or sees the new generation. Every write of gen happens
     * under this lock, so a plain increment suffices. */
    while (atomic_exchange_explicit(&r->lock, 1, memory_order_acquire))
        ;
    atomic_store_explicit(&r->gen, atomic_load_explicit(&r->gen, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&r->lock, 0, memory_order_release);
    af__span_rec_recycle_local(r);
}

void af__span_rec_recycle_local(af_span_rec *r)
{
    rec_cache *c = cache_get();
    if (!c)
        return; /* as below: the record stays in its slab, unused */
    if (c->count == CACHE_CAP)
        spill(c, CACHE_CAP / 2);
    /* If even the spill could not allocate, the record stays in its slab unused: memory
     * is short, and losing one record beats failing the caller. */
    if (c->count < CACHE_CAP)
        c->items[c->count++] = r;
}

void af_span_data_retain(const af_span_data *span)
{
    af__span_rec_retain(af__span_rec_of(span));
}

void af_span_data_release(const af_span_data *span)
{
    af__span_rec_release(af__span_rec_of(span));
}

/* Fork: the child keeps the parent's memory; only the lock must be usable. */
void af__pool_atfork_prepare(void)
{
    pthread_mutex_lock(&pool_mu);
}

void af__pool_atfork_parent(void)
{
    pthread_mutex_unlock(&pool_mu);
}

void af__pool_atfork_child(void)
{
    pthread_mutex_init(&pool_mu, NULL);
}
