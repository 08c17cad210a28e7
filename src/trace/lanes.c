/*
 * Per-thread span lanes under one shared bound (lanes.h).
 *
 * A lane is a chain of segments of SEG_SLOTS record pointers. Its thread writes a slot and
 * then publishes the new tail with a release store; the consumer reads the tail with an
 * acquire load and follows the chain. A segment the consumer has emptied goes onto the lane's
 * spare list (a stack only the consumer pushes onto), and the thread takes the whole list with
 * one exchange when it next needs a segment, so a lane in steady state allocates nothing and
 * the thread's only locked instructions are that exchange and the reservation of places, each
 * once per block of spans.
 *
 * Every consumer operation holds the queue's mutex: the fork prepare handler takes it, so a
 * forked child never finds the consumer's side of a lane half-updated. A producer takes it
 * only to add its lane.
 *
 * A lane has two references, its thread's and its queue's. The thread drops its own at exit
 * (after marking the lane owner_gone), or in a forked child; the queue drops its own when it
 * frees an empty lane whose thread is gone, or when the queue is destroyed (after marking the
 * lane queue_gone, which the thread notices the next time it looks for a lane).
 */
#include "trace/lanes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SEG_SLOTS 256

typedef struct seg {
    _Atomic(struct seg *) next; /* the lane's chain, or the spare list */
    af_span_rec *slot[SEG_SLOTS];
} seg;

struct af__lane {
    /* the owning thread's line */
    _Alignas(64) _Atomic uint64_t tail; /* records pushed, published with release */
    seg *tail_seg;
    seg *own_spares;         /* spare segments the thread has taken */
    _Atomic uint32_t credit; /* places reserved and not used; the consumer reads it once the
                                thread is gone */
    /* the consumer's line */
    _Alignas(64) _Atomic uint64_t head; /* records popped */
    seg *head_seg;
    _Atomic(seg *) spares; /* emptied segments: pushed by the consumer, taken by the thread */
    af__lane *next;        /* the queue's list, under its mutex */
    /* fixed at creation, and the two owners' state */
    uint64_t q_id;
    af__lane *thread_next; /* the thread's list */
    _Atomic int refs;
    _Atomic bool owner_gone;
    _Atomic bool queue_gone;
};

static _Atomic uint64_t next_queue_id = 1;

/* The calling thread's lanes, and the one it used last (the fast path's one compare). */
static _Thread_local af__lane *tl_lanes;
static _Thread_local af__lane *tl_last;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static bool exit_key_ok;

/* ----- segments and lanes ------------------------------------------------------------------ */

static seg *seg_new(void)
{
    seg *s = malloc(sizeof(*s));
    if (s)
        atomic_init(&s->next, NULL);
    return s;
}

static void seg_free_chain(seg *s)
{
    while (s) {
        seg *next = atomic_load_explicit(&s->next, memory_order_relaxed);
        free(s);
        s = next;
    }
}

static void lane_unref(af__lane *l)
{
    if (atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) != 1)
        return;
    seg_free_chain(l->head_seg); /* the chain runs from the head to the tail segment */
    seg_free_chain(atomic_load_explicit(&l->spares, memory_order_relaxed));
    seg_free_chain(l->own_spares);
    free(l);
}

/* The thread's next segment: a spare if there is one, else a new one. */
static seg *lane_next_segment(af__lane *l)
{
    seg *s = l->own_spares;
    if (!s)
        s = atomic_exchange_explicit(&l->spares, NULL, memory_order_acquire);
    if (s)
        l->own_spares = atomic_load_explicit(&s->next, memory_order_relaxed);
    else if (!(s = seg_new()))
        return NULL;
    atomic_store_explicit(&s->next, NULL, memory_order_relaxed);
    atomic_store_explicit(&l->tail_seg->next, s, memory_order_release);
    l->tail_seg = s;
    return s;
}

/* Consumer: gives an emptied segment back to its thread. */
static void lane_give_spare(af__lane *l, seg *s)
{
    seg *top = atomic_load_explicit(&l->spares, memory_order_relaxed);
    do
        atomic_store_explicit(&s->next, top, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&l->spares, &top, s, memory_order_release,
                                                  memory_order_relaxed));
}

/* Consumer: pops up to max records of one lane. */
static size_t lane_pop(af__lane *l, af_span_rec **out, size_t max)
{
    uint64_t h = atomic_load_explicit(&l->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&l->tail, memory_order_acquire);
    seg *s = l->head_seg;
    size_t n = 0;
    for (; h != t && n < max; h++) {
        uint32_t i = (uint32_t)(h % SEG_SLOTS);
        if (i == 0 && h != 0) { /* the record is in the next segment: this one is spent */
            seg *next = atomic_load_explicit(&s->next, memory_order_acquire);
            lane_give_spare(l, s);
            s = next;
        }
        out[n++] = s->slot[i];
    }
    l->head_seg = s;
    atomic_store_explicit(&l->head, h, memory_order_release);
    return n;
}

static void make_exit_key(void);

/* Creates the calling thread's lane into q (q->mu not held). */
static af__lane *lane_new(af__lanes *q)
{
    pthread_once(&exit_key_once, make_exit_key);
    /* The key's value only makes the exit handler run; it is set for every new lane because
     * a thread that ends spans again during its own exit handlers needs another round. */
    if (!exit_key_ok || pthread_setspecific(exit_key, &exit_key) != 0)
        return NULL;
    af__lane *l = aligned_alloc(64, sizeof(*l));
    seg *first = seg_new();
    if (!l || !first) {
        free(l);
        free(first);
        return NULL;
    }
    memset(l, 0, sizeof(*l));
    l->tail_seg = l->head_seg = first;
    l->q_id = q->id;
    atomic_init(&l->refs, 2);
    pthread_mutex_lock(&q->mu);
    l->next = q->list;
    q->list = l;
    atomic_store_explicit(&q->n_lanes, atomic_load_explicit(&q->n_lanes, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    pthread_mutex_unlock(&q->mu);
    l->thread_next = tl_lanes;
    tl_lanes = l;
    return l;
}

/* The calling thread's lane into q, created on first use; on the way, lets go of lanes whose
 * queue is gone. NULL only when memory is short. */
static af__lane *lane_of_thread(af__lanes *q)
{
    af__lane *found = NULL;
    for (af__lane **pp = &tl_lanes; *pp;) {
        af__lane *l = *pp;
        if (atomic_load_explicit(&l->queue_gone, memory_order_acquire)) {
            *pp = l->thread_next;
            if (tl_last == l)
                tl_last = NULL;
            lane_unref(l);
            continue;
        }
        if (l->q_id == q->id)
            found = l;
        pp = &l->thread_next;
    }
    if (!found)
        found = lane_new(q);
    tl_last = found;
    return found;
}

/* Thread exit: the queues' consumers drain and free this thread's lanes. */
static void on_thread_exit(void *unused)
{
    (void)unused;
    af__lane *l = tl_lanes;
    tl_lanes = NULL;
    tl_last = NULL;
    while (l) {
        af__lane *next = l->thread_next;
        atomic_store_explicit(&l->owner_gone, true, memory_order_release);
        lane_unref(l);
        l = next;
    }
}

static void make_exit_key(void)
{
    exit_key_ok = pthread_key_create(&exit_key, on_thread_exit) == 0;
}

/* ----- the queue ----------------------------------------------------------------------------- */

int af__lanes_init(af__lanes *q, uint32_t capacity)
{
    memset(q, 0, sizeof(*q));
    if (pthread_mutex_init(&q->mu, NULL) != 0)
        return -ENOMEM;
    q->capacity = capacity;
    q->id = atomic_fetch_add_explicit(&next_queue_id, 1, memory_order_relaxed);
    atomic_init(&q->free_places, (int64_t)capacity);
    return 0;
}

void af__lanes_destroy(af__lanes *q, void (*release)(af_span_rec *))
{
    af_span_rec *buf[64];
    af__lane *l = q->list;
    q->list = NULL;
    while (l) {
        af__lane *next = l->next;
        for (size_t n; (n = lane_pop(l, buf, 64)) > 0;)
            for (size_t i = 0; i < n; i++)
                release(buf[i]);
        atomic_store_explicit(&l->queue_gone, true, memory_order_release);
        lane_unref(l);
        l = next;
    }
    pthread_mutex_destroy(&q->mu);
}

/* Reserves a block of places for the calling thread's lane; 0 when none is left. */
static uint32_t reserve(af__lanes *q, size_t *depth_seen)
{
    uint32_t lanes = atomic_load_explicit(&q->n_lanes, memory_order_relaxed);
    int64_t block = (int64_t)q->capacity / (8 * (int64_t)(lanes ? lanes : 1));
    if (block < 1)
        block = 1;
    int64_t f = atomic_load_explicit(&q->free_places, memory_order_relaxed);
    int64_t take;
    do {
        if (f <= 0) {
            *depth_seen = q->capacity;
            return 0;
        }
        take = f < block ? f : block;
    } while (!atomic_compare_exchange_weak_explicit(&q->free_places, &f, f - take,
                                                    memory_order_relaxed, memory_order_relaxed));
    /* Queued records plus the other lanes' unused places: what is in the queue, at most. */
    *depth_seen = (size_t)((int64_t)q->capacity - f);
    return (uint32_t)take;
}

bool af__lanes_push(af__lanes *q, af_span_rec *r, size_t *depth_seen)
{
    *depth_seen = 0;
    af__lane *l = tl_last;
    if (__builtin_expect(!l || l->q_id != q->id, 0) && !(l = lane_of_thread(q)))
        return false;
    uint32_t credit = atomic_load_explicit(&l->credit, memory_order_relaxed);
    if (__builtin_expect(credit == 0, 0)) {
        if (!(credit = reserve(q, depth_seen)))
            return false;
        atomic_store_explicit(&l->credit, credit, memory_order_relaxed);
    }
    uint64_t t = atomic_load_explicit(&l->tail, memory_order_relaxed);
    uint32_t i = (uint32_t)(t % SEG_SLOTS);
    seg *s = l->tail_seg;
    if (__builtin_expect(i == 0 && t != 0, 0) && !(s = lane_next_segment(l)))
        return false;
    s->slot[i] = r;
    /* The consumer read the slots ahead a segment ago, so their lines are shared with its
     * core: ask for the line two ahead now (its end wraps to this segment's start, harmless). */
    af__prefetch_for_write(&s->slot[(i + 16) % SEG_SLOTS]);
    atomic_store_explicit(&l->credit, credit - 1, memory_order_relaxed);
    atomic_store_explicit(&l->tail, t + 1, memory_order_release);
    return true;
}

/* Unlinks and lets go of the empty lanes whose thread has exited; q->mu held. */
static void reap_lanes(af__lanes *q)
{
    for (af__lane **pp = &q->list; *pp;) {
        af__lane *l = *pp;
        if (!atomic_load_explicit(&l->owner_gone, memory_order_acquire) ||
            atomic_load_explicit(&l->head, memory_order_relaxed) !=
                atomic_load_explicit(&l->tail, memory_order_acquire)) {
            pp = &l->next;
            continue;
        }
        *pp = l->next;
        atomic_fetch_add_explicit(&q->free_places,
                                  atomic_load_explicit(&l->credit, memory_order_relaxed),
                                  memory_order_relaxed);
        q->pushed_by_freed += atomic_load_explicit(&l->tail, memory_order_relaxed);
        atomic_store_explicit(&q->n_lanes,
                              atomic_load_explicit(&q->n_lanes, memory_order_relaxed) - 1,
                              memory_order_relaxed);
        lane_unref(l);
    }
    q->next_first = NULL;
}

size_t af__lanes_pop(af__lanes *q, af_span_rec **out, size_t max)
{
    pthread_mutex_lock(&q->mu);
    size_t n = 0;
    bool reap = false;
    af__lane *first = q->next_first ? q->next_first : q->list;
    af__lane *l = first;
    while (l && n < max) {
        n += lane_pop(l, out + n, max - n);
        if (atomic_load_explicit(&l->owner_gone, memory_order_acquire))
            reap = true;
        l = l->next ? l->next : q->list;
        if (l == first)
            break;
    }
    q->next_first = l; /* the next pop starts with the lane after the last one read */
    if (n)
        atomic_fetch_add_explicit(&q->free_places, (int64_t)n, memory_order_relaxed);
    if (reap)
        reap_lanes(q);
    pthread_mutex_unlock(&q->mu);
    return n;
}

size_t af__lanes_depth(af__lanes *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = 0;
    for (af__lane *l = q->list; l; l = l->next)
        n += (size_t)(atomic_load_explicit(&l->tail, memory_order_acquire) -
                      atomic_load_explicit(&l->head, memory_order_relaxed));
    pthread_mutex_unlock(&q->mu);
    return n;
}

uint64_t af__lanes_pushed(af__lanes *q)
{
    pthread_mutex_lock(&q->mu);
    uint64_t n = q->pushed_by_freed;
    for (af__lane *l = q->list; l; l = l->next)
        n += atomic_load_explicit(&l->tail, memory_order_acquire);
    pthread_mutex_unlock(&q->mu);
    return n;
}

/* ----- fork -------------------------------------------------------------------------------- */

void af__lanes_atfork_prepare(af__lanes *q)
{
    pthread_mutex_lock(&q->mu);
}

void af__lanes_atfork_parent(af__lanes *q)
{
    pthread_mutex_unlock(&q->mu);
}

void af__lanes_atfork_child(af__lanes *q, void (*release)(af_span_rec *))
{
    pthread_mutex_init(&q->mu, NULL);
    af_span_rec *buf[64];
    for (af__lane *l = q->list; l; l = l->next) {
        for (size_t n; (n = lane_pop(l, buf, 64)) > 0;)
            for (size_t i = 0; i < n; i++)
                release(buf[i]);
        /* No thread of the child owns a lane; the parent's threads' references go with them. */
        atomic_store_explicit(&l->credit, 0, memory_order_relaxed);
        if (!atomic_exchange_explicit(&l->owner_gone, true, memory_order_acq_rel))
            atomic_fetch_sub_explicit(&l->refs, 1, memory_order_relaxed); /* the queue's stays */
    }
    atomic_store_explicit(&q->free_places, (int64_t)q->capacity, memory_order_relaxed);
    q->next_first = NULL;
}

void af__lanes_forget_thread_in_child(void)
{
    /* Lanes of live queues lost this thread's reference in af__lanes_atfork_child; a lane
     * whose queue is gone was held by this thread alone. */
    af__lane *l = tl_lanes;
    tl_lanes = NULL;
    tl_last = NULL;
    while (l) {
        af__lane *next = l->thread_next;
        if (atomic_load_explicit(&l->queue_gone, memory_order_acquire))
            lane_unref(l);
        l = next;
    }
}
