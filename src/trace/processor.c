/*
 * The processor wrapper and the simple processor. The simple processor exports each ended
 * span on the ending thread, serialized by a mutex: a debugging aid (stdout) and a test
 * tool, never the production path. It takes part in fork (trace/fork.h) and runs its
 * exporter's atfork hook, as the batch processor does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "trace/span_int.h"

int af_span_processor_new(const af_span_processor_ops *ops, void *self, af_span_processor **out)
{
    *out = NULL;
    if (!ops || !ops->on_end) {
        if (ops && ops->destroy)
            ops->destroy(self);
        return -EINVAL;
    }
    af_span_processor *p = calloc(1, sizeof(*p));
    if (!p) {
        if (ops->destroy)
            ops->destroy(self);
        return -ENOMEM;
    }
    p->ops = ops;
    p->self = self;
    *out = p;
    return 0;
}

void af_span_processor_free(af_span_processor *p)
{
    if (!p)
        return;
    if (p->ops->destroy)
        p->ops->destroy(p->self);
    free(p);
}

void af_span_processor_stats_get(const af_span_processor *p, af_processor_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (p && p->stats)
        p->stats(p->self, out);
}

af_exporter *af_span_processor_exporter(const af_span_processor *p)
{
    return p ? p->exporter : NULL;
}

/* ----- simple processor ----------------------------------------------------------------- */

/* Two locks: export_mu serializes the calls into the exporter and is held across its I/O;
 * mu guards the state and the counters and is held only for a few stores. Fork (fork.c)
 * takes mu and the exporter's hook, not export_mu: a fork must not wait for a collector or
 * a full pipe. The child re-creates both; the exporter's hook forgets the interrupted
 * export. Lock order: export_mu, then mu, then the exporter's locks. */
typedef struct simple_proc {
    af_exporter *exporter;
    pthread_mutex_t export_mu;
    pthread_mutex_t mu;
    bool shut_down;
    af_processor_stats st;
    af__fork_participant fork;
} simple_proc;

static void simple_on_end(void *self, const af_span_data *span)
{
    simple_proc *sp = self;
    if (!(span->trace_flags & AF_TRACE_FLAG_SAMPLED))
        return; /* record-only spans are not exported */
    pthread_mutex_lock(&sp->export_mu);
    pthread_mutex_lock(&sp->mu);
    bool shut_down = sp->shut_down;
    if (shut_down)
        sp->st.dropped++;
    else
        sp->st.queued++;
    pthread_mutex_unlock(&sp->mu);
    if (shut_down) {
        pthread_mutex_unlock(&sp->export_mu);
        return;
    }
    uint64_t t0 = af_monotonic_ns();
    int rc = af_exporter_export(sp->exporter, &span, 1, t0 + 30000000000ull);
    uint64_t took = af_monotonic_ns() - t0;
    pthread_mutex_lock(&sp->mu);
    sp->st.export_ns_total += took;
    sp->st.export_calls++;
    if (rc == 0)
        sp->st.exported++;
    else
        sp->st.failed++;
    pthread_mutex_unlock(&sp->mu);
    pthread_mutex_unlock(&sp->export_mu);
}

static int simple_force_flush(void *self, uint64_t deadline_ns)
{
    simple_proc *sp = self;
    pthread_mutex_lock(&sp->export_mu);
    int rc = af_exporter_force_flush(sp->exporter, deadline_ns);
    pthread_mutex_unlock(&sp->export_mu);
    return rc;
}

static int simple_shutdown(void *self, uint64_t deadline_ns)
{
    simple_proc *sp = self;
    pthread_mutex_lock(&sp->export_mu);
    pthread_mutex_lock(&sp->mu);
    bool first = !sp->shut_down;
    sp->shut_down = true;
    pthread_mutex_unlock(&sp->mu);
    int rc = first ? af_exporter_shutdown(sp->exporter, deadline_ns) : 0;
    pthread_mutex_unlock(&sp->export_mu);
    return rc;
}

static void simple_destroy(void *self)
{
    simple_proc *sp = self;
    af__fork_unregister(&sp->fork, AF__FORK_SIMPLE);
    af_exporter_free(sp->exporter);
    pthread_mutex_destroy(&sp->export_mu);
    pthread_mutex_destroy(&sp->mu);
    free(sp);
}

static void simple_fork_prepare(void *self)
{
    simple_proc *sp = self;
    pthread_mutex_lock(&sp->mu);
    af__exporter_atfork(sp->exporter, AF_FORK_PREPARE);
}

static void simple_fork_parent(void *self)
{
    simple_proc *sp = self;
    af__exporter_atfork(sp->exporter, AF_FORK_PARENT);
    pthread_mutex_unlock(&sp->mu);
}

/* Default-attribute mutex init only stores fields; the parent's holders do not exist here. */
static void simple_fork_child(void *self)
{
    simple_proc *sp = self;
    pthread_mutex_init(&sp->export_mu, NULL);
    pthread_mutex_init(&sp->mu, NULL);
    af__exporter_atfork(sp->exporter, AF_FORK_CHILD);
}

static void simple_stats(void *self, af_processor_stats *out)
{
    simple_proc *sp = self;
    pthread_mutex_lock(&sp->mu);
    *out = sp->st;
    pthread_mutex_unlock(&sp->mu);
}

static const af_span_processor_ops simple_ops = {
    .on_end = simple_on_end,
    .force_flush = simple_force_flush,
    .shutdown = simple_shutdown,
    .destroy = simple_destroy,
};

int af_simple_processor_new(af_exporter *exporter, af_span_processor **out)
{
    *out = NULL;
    if (!exporter)
        return -EINVAL;
    simple_proc *sp = calloc(1, sizeof(*sp));
    if (!sp) {
        af_exporter_free(exporter);
        return -ENOMEM;
    }
    sp->exporter = exporter;
    pthread_mutex_init(&sp->export_mu, NULL);
    pthread_mutex_init(&sp->mu, NULL);
    sp->fork = (af__fork_participant){simple_fork_prepare, simple_fork_parent, simple_fork_child,
                                      sp, NULL};
    af__fork_register(&sp->fork, AF__FORK_SIMPLE);
    int rc = af_span_processor_new(&simple_ops, sp, out);
    if (rc != 0)
        return rc; /* simple_destroy already released the exporter and unregistered */
    (*out)->exporter = exporter;
    (*out)->stats = simple_stats;
    return 0;
}
