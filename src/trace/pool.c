/*
 * The span record pool. Application threads take records from a thread-local cache that
 * refills from a global free list 64 at a time; the export thread returns records to its own
 * cache and spills them back in batches. The global lock is therefore taken about once per
 * 64 spans, and no malloc/free pair ever crosses threads in steady state (DESIGN.md §6).
 * Records are allocated in slabs and never freed: a stale span handle always points at a
 * record, and its generation tells whether the record still holds that span.
 */
#include <stdlib.h>
#include <string.h>

#include "trace/span_int.h"

#define SLAB_RECORDS 64
#define REFILL_BATCH 64
#define CACHE_SPILL 256

typedef struct slab {
    struct slab *next;
    af_span_rec recs[SLAB_RECORDS];
} slab;

typedef struct rec_cache {
    af_span_rec *head;
    uint32_t count;
    bool registered;
} rec_cache;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static af_span_rec *pool_free;
static size_t pool_free_count;
static slab *pool_slabs; /* keeps every slab reachable */
static pthread_key_t cache_key;
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;
static _Thread_local rec_cache tcache;

/* Moves `n` records from the front of the thread cache to the global list. */
static void spill(rec_cache *c, uint32_t n)
{
    af_span_rec *first = c->head, *last = c->head;
    for (uint32_t i = 1; i < n; i++)
        last = last->next_free;
    c->head = last->next_free;
    c->count -= n;
    pthread_mutex_lock(&pool_mu);
    last->next_free = pool_free;
    pool_free = first;
    pool_free_count += n;
    pthread_mutex_unlock(&pool_mu);
}

static void cache_destructor(void *arg)
{
    (void)arg;
    if (tcache.count)
        spill(&tcache, tcache.count);
}

static void make_cache_key(void)
{
    pthread_key_create(&cache_key, cache_destructor);
}

static void register_cache(rec_cache *c)
{
    pthread_once(&cache_key_once, make_cache_key);
    pthread_setspecific(cache_key, c);
    c->registered = true;
}

/* Takes up to REFILL_BATCH records from the global list, allocating a slab when empty. */
static bool refill(rec_cache *c)
{
    pthread_mutex_lock(&pool_mu);
    if (!pool_free) {
        void *mem = NULL;
        if (posix_memalign(&mem, 64, sizeof(slab)) != 0) { /* records are cache-aligned */
            pthread_mutex_unlock(&pool_mu);
            return false;
        }
        slab *s = memset(mem, 0, sizeof(slab));
        s->next = pool_slabs;
        pool_slabs = s;
        for (int i = SLAB_RECORDS - 1; i >= 0; i--) {
            atomic_init(&s->recs[i].gen, 1);
            s->recs[i].next_free = pool_free;
            pool_free = &s->recs[i];
        }
        pool_free_count += SLAB_RECORDS;
    }
    uint32_t n = 0;
    while (pool_free && n < REFILL_BATCH) {
        af_span_rec *r = pool_free;
        pool_free = r->next_free;
        r->next_free = c->head;
        c->head = r;
        n++;
    }
    pool_free_count -= n;
    pthread_mutex_unlock(&pool_mu);
    c->count += n;
    return true;
}

af_span_rec *af__span_rec_alloc(void)
{
    rec_cache *c = &tcache;
    if (!c->head) {
        if (!c->registered)
            register_cache(c);
        if (!refill(c))
            return NULL;
    }
    af_span_rec *r = c->head;
    c->head = r->next_free;
    c->count--;
    /* Recycle here rather than on the releasing thread (often the export thread): invalidate
     * outstanding handles under the span lock, so a concurrent call on a stale handle sees
     * it, and drop any overflow chunks of the previous span. */
    if (r->needs_invalidate) {
        while (atomic_exchange_explicit(&r->lock, 1, memory_order_acquire))
            ;
        atomic_fetch_add_explicit(&r->gen, 1, memory_order_relaxed);
        atomic_store_explicit(&r->lock, 0, memory_order_release);
        r->needs_invalidate = false;
    }
    if (r->chunks)
        af__arena_reset(r);
    return r;
}

/* The record whose ending thread is running the processors' on_end right now. Its own
 * reference is handed to the first processor that retains it, instead of that processor
 * adding a reference and the ender dropping its own: two locked operations saved on every
 * exported span. */
static _Thread_local af_span_rec *handoff;

void af__span_rec_retain(af_span_rec *r)
{
    if (handoff == r) {
        handoff = NULL;
        return;
    }
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

void af__span_rec_handoff_begin(af_span_rec *r)
{
    handoff = r;
}

void af__span_rec_handoff_end(af_span_rec *r)
{
    if (handoff == r) {
        /* No processor kept the span: the ender's reference is the only one. */
        handoff = NULL;
        af__span_rec_release(r);
    }
}

void af__span_rec_release(af_span_rec *r)
{
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Last reference. The record keeps its generation until it is taken again: a stale
     * handle meanwhile finds it ended, which makes every call a no-op just the same. */
    r->needs_invalidate = true;
    af__span_rec_recycle_local(r);
}

void af__span_rec_recycle_local(af_span_rec *r)
{
    rec_cache *c = &tcache;
    if (!c->registered)
        register_cache(c);
    r->next_free = c->head;
    c->head = r;
    if (++c->count > CACHE_SPILL)
        spill(c, CACHE_SPILL / 2);
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
