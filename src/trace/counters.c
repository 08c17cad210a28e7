/*
 * Sharded span counters (see span_int.h): exact, and free of locked instructions for the
 * first AF_COUNTER_SHARDS threads of the process.
 */
#include "trace/span_int.h"

static _Atomic unsigned next_shard;
_Thread_local int af__counter_shard_index = -1;

static inline _Atomic uint64_t *field(af_counter_shard *s, af_counter which)
{
    return which == AF_COUNT_STARTED ? &s->started
           : which == AF_COUNT_ENDED ? &s->ended
                                     : &s->unsampled;
}

int af__counter_shard_assign(void)
{
    unsigned n = atomic_fetch_add(&next_shard, 1);
    af__counter_shard_index = n < AF_COUNTER_SHARDS - 1 ? (int)n : AF_COUNTER_SHARDS - 1;
    return af__counter_shard_index;
}

uint64_t af__counter_sum(const af_counter_shard *shards, af_counter which)
{
    uint64_t sum = 0;
    for (int i = 0; i < AF_COUNTER_SHARDS; i++)
        sum += atomic_load_explicit(field((af_counter_shard *)&shards[i], which),
                                    memory_order_relaxed);
    return sum;
}
