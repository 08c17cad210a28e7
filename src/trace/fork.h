/*
 * trace/fork.h - fork participants (private to the library: trace, export and config use it).
 *
 * An object with locks that a forked child may touch registers a participant of a rank. The
 * library's one pthread_atfork handler (fork.c) runs every participant's prepare in rank
 * order (each registered list in turn, under that rank's list lock), parent in the reverse
 * order, and child in rank order in the child. prepare takes the object's locks, parent
 * releases them, child re-creates them (the threads that held or waited on them do not exist
 * in the child) and resets whatever bookkeeping referred to the parent's threads.
 *
 * Ownership: the participant is the caller's memory (usually embedded in the object); it must
 * stay registered no longer than it lives. Thread-safety: register and unregister from any
 * thread, but never while holding a lock of the same or a later rank (see the order in
 * fork.c); the handlers must not block on I/O, allocate, start threads or register.
 */
#ifndef AF_TRACE_FORK_H
#define AF_TRACE_FORK_H

/* The ranks, in the order prepare takes them (fork.c explains why this order). */
typedef enum af__fork_rank {
    AF__FORK_TRACING = 0, /* config: the tracing facade's lock */
    AF__FORK_SIMPLE,      /* simple processors, then their exporters' hooks */
    /* (batch processors and their exporters: batch.c's own registry, taken here) */
    AF__FORK_PROVIDER, /* tracer providers' mutex */
    AF__FORK_LEAF,     /* locks that nest inside everything above (span_copy's resource cache) */
    AF__FORK_RANKS
} af__fork_rank;

typedef struct af__fork_participant {
    void (*prepare)(void *self);
    void (*parent)(void *self);
    void (*child)(void *self);
    void *self;
    struct af__fork_participant *next; /* the rank's list; set by af__fork_register */
} af__fork_participant;

/* Adds p (its hooks and self filled in) to the rank's list; installs the handlers first. */
void af__fork_register(af__fork_participant *p, af__fork_rank rank);
/* Removes p; a no-op when it is not registered. */
void af__fork_unregister(af__fork_participant *p, af__fork_rank rank);

/* Installs the pthread_atfork handlers once (also done by af__fork_register). */
void af__fork_handlers_install(void);

#endif
