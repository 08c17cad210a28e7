/*
 * trace/lanes.h - the batch processor's span queue: one lane per producing thread, one bound
 * for all of them (private to the trace core).
 *
 * Each thread that ends spans into a queue gets its own lane, a single-producer,
 * single-consumer queue of record pointers in chained segments, so pushing a span takes no
 * locked instruction: a shared multi-producer ring needs a compare-and-swap per span, and
 * its enqueue index bounces between the producers' cores. The queue's capacity
 * (max_queue_size) still bounds all lanes together, exactly: a lane reserves queue places
 * from a shared pool in blocks (one atomic operation per block) and a push without a place
 * is refused, so the caller drops the span. A block is capacity / (8 * lanes) places, so
 * the places reserved by lanes and not yet used never exceed an eighth of the capacity;
 * a queue that is "full" while some of that eighth sits unused in idle threads' lanes
 * refuses spans a little early, never late.
 *
 * Threads: any thread may push (each into its own lane, found through a thread-local
 * pointer). One consumer pops: the batch worker, or a thread that holds its role
 * (destroy, the fork child handler). af__lanes_depth and af__lanes_pushed may be called by
 * any thread. A thread that exits leaves its lane to the consumer, which exports what is in
 * it and then frees it.
 *
 * Ownership: the af__lanes is the caller's memory (embedded in the processor); lanes and
 * segments are owned jointly by the queue and their thread, and freed by whichever lets go
 * last. Queued records carry the reference the pusher gave; af__lanes_destroy hands each
 * left to the release callback.
 */
#ifndef AF_TRACE_LANES_H
#define AF_TRACE_LANES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace/span_int.h"

typedef struct af__lane af__lane;

typedef struct af__lanes {
    _Alignas(64) _Atomic int64_t free_places; /* capacity minus places reserved by lanes */
    _Atomic uint32_t n_lanes;
    uint32_t capacity;
    uint64_t id; /* unique for the process's lifetime: thread caches compare it */
    /* consumer side */
    _Alignas(64) pthread_mutex_t mu; /* guards the list and everything below */
    af__lane *list;                  /* every lane; new ones at the head */
    af__lane *next_first;            /* the lane the next pop starts with */
    uint64_t pushed_by_freed;        /* pushes into lanes since freed */
} af__lanes;

/* 0 or -ENOMEM. capacity >= 1. */
int af__lanes_init(af__lanes *q, uint32_t capacity);
/* Frees every lane the queue still shares (its threads' share outlives it until they look
 * again or exit), first passing each record still queued to release. Consumer role. */
void af__lanes_destroy(af__lanes *q, void (*release)(af_span_rec *));

/* Queues r from the calling thread: false when the queue is full (or a lane or segment could
 * not be allocated): the caller still owns r. *depth_seen is set to the queue depth the push
 * observed when it had to reserve places, else 0: a cheap, occasional view for wake-ups. */
bool af__lanes_push(af__lanes *q, af_span_rec *r, size_t *depth_seen);

/* Takes up to max records into out, from the lanes in turn; returns how many. Their places
 * go back to the pool. Frees lanes whose thread has exited once they are empty. Consumer. */
size_t af__lanes_pop(af__lanes *q, af_span_rec **out, size_t max);

/* Records queued now, and pushed ever. Exact from the consumer; any thread may ask. */
size_t af__lanes_depth(af__lanes *q);
uint64_t af__lanes_pushed(af__lanes *q);

/* Fork. prepare/parent bracket fork() (the processor holds its own lock too); child runs in
 * the child, where only the forking thread exists: every lane's records go to release (they
 * are the parent's to export), every lane is left to the consumer, and the pool is full
 * again. af__lanes_forget_thread_in_child runs once after every queue's child handler: the
 * forking thread starts with new lanes. */
void af__lanes_atfork_prepare(af__lanes *q);
void af__lanes_atfork_parent(af__lanes *q);
void af__lanes_atfork_child(af__lanes *q, void (*release)(af_span_rec *));
void af__lanes_forget_thread_in_child(void);

#endif
