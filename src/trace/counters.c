/*
 * Sharded span counters (see span_int.h): exact, and free of locked instructions for the
 * first AF_COUNTER_SHARDS threads of the process.
 */
#include "trace/span_int.h"

static _Atomic unsigned next_shard;
static _Thread_local int my_shard = -1;

static inline _Atomic uint64_t *field(af_counter_shard *s, af_counter which)
{
    return which == AF_COUNT_STARTED ? &s->started
           : which == AF_COUNT_ENDED ? &s->ended
                                     : &s->unsampled;
}

void af__counter_inc(af_counter_shard *shards, af_counter which)
{
    int i = my_shard;
    if (__builtin_expect(i < 0, 0)) {
        unsigned n = atomic_fetch_add(&next_shard, 1);
        i = my_shard = n < AF_COUNTER_SHARDS - 1 ? (int)n : AF_COUNTER_SHARDS - 1;
    }
    _Atomic uint64_t *f = field(&shards[i], which);
    if (i < AF_COUNTER_SHARDS - 1) /* this thread is the shard's only writer */
        atomic_store_explicit(f, atomic_load_explicit(f, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    else
        atomic_fetch_add_explicit(f, 1, memory_order_relaxed);
}

uint64_t af__counter_sum(const af_counter_shard *shards, af_counter which)
{
    uint64_t sum = 0;
    for (int i = 0; i < AF_COUNTER_SHARDS; i++)
        sum += atomic_load_explicit(field((af_counter_shard *)&shards[i], which),
                                    memory_order_relaxed);
    return sum;
}
