/*
 * Fork safety. The handlers keep every lock a forked child can touch consistent across
 * fork(): locks are taken before the fork, released in the parent and re-created in the
 * child (glibc's documented practice; strictly, the child of a multi-threaded process may
 * only call async-signal-safe functions). The child's fork generation is bumped so batch
 * processors restart their worker lazily.
 *
 * Lock order. prepare takes the locks in the order the library itself nests them, so it can
 * never wait for a lock whose holder waits for one prepare already has:
 *
 *   1. AF__FORK_TRACING  af_tracing.lock     held by add_exporter and reconfigure while they
 *                                            create processors (2, 3), add or replace them
 *                                            in the provider (4) and shut the old ones down
 *   2. AF__FORK_SIMPLE   simple processor mu, then its exporter's atfork(PREPARE)
 *                                            (exporter locks nest inside processor locks)
 *   3. batch             registry_mu, each processor's mu, its exporter's atfork(PREPARE)
 *                                            (a span ended inside a simple processor's
 *                                            export may wake a batch worker: 2 before 3)
 *   4. AF__FORK_PROVIDER provider mu          a leaf: only allocation under it, and an
 *                                            exporter may ask for a tracer (2, 3 before 4)
 *   5. AF__FORK_LEAF     span_copy's res_mu   taken by exporters while copying spans
 *   6. pool              pool_mu              a leaf: processors release records anywhere
 *
 * Each rank's list lock is taken just before its members, so registering a participant
 * while holding a lock of an earlier rank (reconfigure creating processors under 1) is safe.
 * Locks held across exporter I/O (the simple processor's export lock, the stdout
 * exporter's write lock) are not taken: fork would wait for a collector or a stuck pipe.
 * The child re-creates them; the exporter's own hook forgets the interrupted export.
 *
 * parent releases in the reverse order; child re-creates in prepare's order, the pool first
 * of all: the batch handler releases the parent's queued spans into it.
 */
#include "trace/fork.h"

#include <pthread.h>

#include "trace/span_int.h"

_Atomic uint64_t af__fork_generation;

typedef struct rank_list {
    pthread_mutex_t mu;
    af__fork_participant *head;
} rank_list;

static rank_list lists[AF__FORK_RANKS] = {
    {PTHREAD_MUTEX_INITIALIZER, NULL},
    {PTHREAD_MUTEX_INITIALIZER, NULL},
    {PTHREAD_MUTEX_INITIALIZER, NULL},
    {PTHREAD_MUTEX_INITIALIZER, NULL},
};

static void rank_prepare(af__fork_rank r)
{
    pthread_mutex_lock(&lists[r].mu);
    for (af__fork_participant *p = lists[r].head; p; p = p->next)
        p->prepare(p->self);
}

static void rank_parent(af__fork_rank r)
{
    for (af__fork_participant *p = lists[r].head; p; p = p->next)
        p->parent(p->self);
    pthread_mutex_unlock(&lists[r].mu);
}

static void rank_child(af__fork_rank r)
{
    for (af__fork_participant *p = lists[r].head; p; p = p->next)
        p->child(p->self);
    pthread_mutex_init(&lists[r].mu, NULL);
}

static void prepare(void)
{
    rank_prepare(AF__FORK_TRACING);
    rank_prepare(AF__FORK_SIMPLE);
    af__batch_atfork_prepare();
    rank_prepare(AF__FORK_PROVIDER);
    rank_prepare(AF__FORK_LEAF);
    af__pool_atfork_prepare();
}

static void parent(void)
{
    af__pool_atfork_parent();
    rank_parent(AF__FORK_LEAF);
    rank_parent(AF__FORK_PROVIDER);
    af__batch_atfork_parent();
    rank_parent(AF__FORK_SIMPLE);
    rank_parent(AF__FORK_TRACING);
}

static void child(void)
{
    af__pool_atfork_child();
    rank_child(AF__FORK_TRACING);
    rank_child(AF__FORK_SIMPLE);
    af__batch_atfork_child();
    rank_child(AF__FORK_PROVIDER);
    rank_child(AF__FORK_LEAF);
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

void af__fork_register(af__fork_participant *p, af__fork_rank rank)
{
    af__fork_handlers_install();
    pthread_mutex_lock(&lists[rank].mu);
    p->next = lists[rank].head;
    lists[rank].head = p;
    pthread_mutex_unlock(&lists[rank].mu);
}

void af__fork_unregister(af__fork_participant *p, af__fork_rank rank)
{
    pthread_mutex_lock(&lists[rank].mu);
    for (af__fork_participant **pp = &lists[rank].head; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    pthread_mutex_unlock(&lists[rank].mu);
}
