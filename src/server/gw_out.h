/*
 * server/gw_out.h - the coalesced hand-off of a front-door stream's output (routes_openai.c)
 * from the gateway's threads to the connection's HTTP loop.
 *
 * af__gw_out is one stream's side: the gateway's thread formats each delta as one
 * server-sent event and appends it to the pending buffer; the loop takes everything pending
 * at once (one buffer, the events in the order they were added) and sends it with one write.
 * A stream is put on its loop's queue only when it is not on it already, so the deltas that
 * arrive before the loop's next turn cost no hand-off of their own.
 *
 * af__gw_queue is the loop's side: the streams waiting for a flush, in the order they were
 * queued, and the wake-up protocol. The loop says when it is about to wait
 * (af__gw_queue_sleep) and when it woke (af__gw_queue_woke); a push wakes it (the caller
 * writes its eventfd) only when it sleeps and nobody woke it since, so there is at most one
 * eventfd write per loop turn for all its streams, and none while the loop is busy: it looks
 * at the queue again before it waits.
 *
 * Threads and locks: af__gw_out.mu guards the af__gw_out (and whatever its owner documents
 * beside it); the *_locked functions need it held. The queue takes no lock: any thread pushes
 * (a compare-and-swap on its head), the loop takes the whole list at once, and the two flags
 * of the wake-up protocol are atomics (a push stores the head, then reads `sleeping`; the loop
 * stores `sleeping`, then reads the head: one of them sees the other). Ownership: both are
 * embedded in their owners (the call, the loop), which keep a queued stream alive until the
 * loop took it.
 */
#ifndef AF_SERVER_GW_OUT_H
#define AF_SERVER_GW_OUT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

typedef struct af__gw_out {
    pthread_mutex_t mu;
    af_buf pending;          /* events added since the last take */
    af_buf taken;            /* what the last take returned; reused by the next */
    size_t limit;            /* bytes pending at most; past it the output stops (overflow) */
    bool queued;             /* on the loop's queue: a take is due */
    bool dropped;            /* nobody sends the output any more: adds are ignored */
    bool overflow;           /* an add did not fit in limit: the client stopped reading */
    struct af__gw_out *next; /* the queue's link: the pusher's until the loop takes it */
} af__gw_out;

/* 0 or -ENOMEM. limit: bytes that may be pending at once. */
int af__gw_out_init(af__gw_out *o, size_t limit);
void af__gw_out_destroy(af__gw_out *o);

/* Appends one delta event (openai_json.h: prefix, the text as a JSON string, suffix). Returns
 * true when the caller must queue o (it was not queued): the first add since the last take,
 * or the first after an overflow. Ignored once dropped. */
bool af__gw_out_add_locked(af__gw_out *o, const char *prefix, size_t prefix_len, const char *suffix,
                           size_t suffix_len, const char *text, size_t len);
/* Asks for a take without adding (the answer is complete): true when o must be queued. */
bool af__gw_out_mark_locked(af__gw_out *o);
/* Everything pending, as one buffer (valid until the next take); empty when nothing is.
 * Clears queued. */
const af_buf *af__gw_out_take_locked(af__gw_out *o);
/* The stream is cancelled or its connection gone: the pending events go, later adds are
 * ignored and nothing asks for a take any more. */
void af__gw_out_drop_locked(af__gw_out *o);

typedef struct af__gw_queue {
    _Atomic(af__gw_out *) head; /* newest first */
    atomic_bool sleeping;       /* the loop waits (or is about to): a push must wake it */
    atomic_bool kicked;         /* a push already woke it during this wait */
} af__gw_queue;

void af__gw_queue_init(af__gw_queue *q);
/* Adds o (its mu held, o->queued just set by an add or mark) at the tail. True when the
 * caller must wake the loop, after releasing o->mu. */
bool af__gw_queue_push(af__gw_queue *q, af__gw_out *o);
/* Loop: takes every queued stream, oldest first (linked by ->next). */
af__gw_out *af__gw_queue_take(af__gw_queue *q);
/* Loop: about to wait. False when a stream is queued (the loop must not wait for a wake-up
 * that will not come); else true, and the next push wakes it. */
bool af__gw_queue_sleep(af__gw_queue *q);
/* Loop: back from its wait; pushes need no wake-up until the next af__gw_queue_sleep. */
void af__gw_queue_woke(af__gw_queue *q);

#endif
