/*
 * Fork safety. The handlers keep the record pool, the batch processors and their exporters
 * consistent across fork(): locks are taken before the fork, released in the parent and
 * re-created in the child (glibc's documented practice; strictly, the child of a
 * multi-threaded process may only call async-signal-safe functions). The child's fork
 * generation is bumped so batch processors restart their worker lazily. The pool's child
 * handler runs first: the batch handler releases the parent's queued spans into it.
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
