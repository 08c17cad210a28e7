/*
 * The coalesced hand-off of a front-door stream's output to its loop (gw_out.h).
 */
#include "server/gw_out.h"

#include <errno.h>

#include "server/openai_json.h"

int af__gw_out_init(af__gw_out *o, size_t limit)
{
    if (pthread_mutex_init(&o->mu, NULL) != 0)
        return -ENOMEM;
    af__buf_init(&o->pending);
    af__buf_init(&o->taken);
    o->limit = limit;
    o->queued = o->dropped = o->overflow = false;
    o->next = NULL;
    return 0;
}

void af__gw_out_destroy(af__gw_out *o)
{
    af__buf_clear(&o->pending);
    af__buf_clear(&o->taken);
    pthread_mutex_destroy(&o->mu);
}

bool af__gw_out_mark_locked(af__gw_out *o)
{
    if (o->queued || o->dropped)
        return false;
    o->queued = true;
    return true;
}

bool af__gw_out_add_locked(af__gw_out *o, const char *prefix, size_t prefix_len, const char *suffix,
                           size_t suffix_len, const char *text, size_t len)
{
    if (o->dropped || o->overflow)
        return false;
    /* A JSON string is at most 6 bytes per input byte. */
    if (o->pending.len + len * 6 + prefix_len + suffix_len + 16 > o->limit)
        o->overflow = true; /* the loop cuts the stream off at its next turn */
    else
        af__oai_delta_event(&o->pending, prefix, prefix_len, suffix, suffix_len, text, len);
    return af__gw_out_mark_locked(o);
}

const af_buf *af__gw_out_take_locked(af__gw_out *o)
{
    af_buf t = o->taken;
    o->taken = o->pending;
    o->pending = t;
    af__buf_reset(&o->pending);
    o->queued = false;
    return &o->taken;
}

void af__gw_out_drop_locked(af__gw_out *o)
{
    o->dropped = true;
    af__buf_reset(&o->pending);
}

void af__gw_queue_init(af__gw_queue *q)
{
    atomic_init(&q->head, NULL);
    atomic_init(&q->sleeping, false);
    atomic_init(&q->kicked, false);
}

bool af__gw_queue_push(af__gw_queue *q, af__gw_out *o)
{
    af__gw_out *h = atomic_load(&q->head);
    do
        o->next = h;
    while (!atomic_compare_exchange_weak(&q->head, &h, o));
    return atomic_load(&q->sleeping) && !atomic_exchange(&q->kicked, true);
}

af__gw_out *af__gw_queue_take(af__gw_queue *q)
{
    /* The loop takes every turn, mostly from an empty queue: a plain load first, the
     * exchange only when there is something to take. */
    if (!atomic_load_explicit(&q->head, memory_order_acquire))
        return NULL;
    af__gw_out *o = atomic_exchange(&q->head, NULL), *fifo = NULL;
    while (o) { /* newest first -> oldest first */
        af__gw_out *next = o->next;
        o->next = fifo;
        fifo = o;
        o = next;
    }
    return fifo;
}

bool af__gw_queue_sleep(af__gw_queue *q)
{
    atomic_store(&q->kicked, false);
    atomic_store(&q->sleeping, true);
    if (atomic_load(&q->head) == NULL)
        return true;
    atomic_store(&q->sleeping, false);
    return false;
}

void af__gw_queue_woke(af__gw_queue *q)
{
    atomic_store_explicit(&q->sleeping, false, memory_order_relaxed);
}
