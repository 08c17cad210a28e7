/*
 * Fork safety. The handlers keep the record pool and the batch processors consistent
 * across fork(): locks are taken before the fork and released on both sides, and the
 * child's fork generation is bumped so batch processors restart their worker lazily.
 */
#include <pthread.h>

#include "trace/span_int.h"

_Atomic uint64_t af__fork_generation;

static void prepare(void)
{
    af__batch_atfork_prepare();
    af__pool_atfork_prepare();
}

static void parent(void)
{
    af__pool_atfork_parent();
    af__batch_atfork_parent();
}

static void child(void)
{
    af__pool_atfork_child();
    af__batch_atfork_child();
    atomic_fetch_add(&af__fork_generation, 1);
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void install(void)
{
    pthread_atfork(prepare, parent, child);
}

void af__fork_handlers_install(void)
{
    pthread_once(&once, install);
}
