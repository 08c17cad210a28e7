/*
 * The processor wrapper and the simple processor. The simple processor exports each ended
 * span on the ending thread, serialized by a mutex: a debugging aid (stdout) and a test
 * tool, never the production path.
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

typedef struct simple_proc {
    af_exporter *exporter;
    pthread_mutex_t mu;
    bool shut_down;
    af_processor_stats st;
} simple_proc;

static void simple_on_end(void *self, const af_span_data *span)
{
    simple_proc *sp = self;
    if (!(span->trace_flags & AF_TRACE_FLAG_SAMPLED))
        return; /* record-only spans are not exported */
    pthread_mutex_lock(&sp->mu);
    if (sp->shut_down) {
        sp->st.dropped++;
        pthread_mutex_unlock(&sp->mu);
        return;
    }
    sp->st.queued++;
    uint64_t t0 = af_monotonic_ns();
    int rc = af_exporter_export(sp->exporter, &span, 1, t0 + 30000000000ull);
    sp->st.export_ns_total += af_monotonic_ns() - t0;
    sp->st.export_calls++;
    if (rc == 0)
        sp->st.exported++;
    else
        sp->st.failed++;
    pthread_mutex_unlock(&sp->mu);
}

static int simple_force_flush(void *self, uint64_t deadline_ns)
{
    simple_proc *sp = self;
    pthread_mutex_lock(&sp->mu);
    int rc = af_exporter_force_flush(sp->exporter, deadline_ns);
    pthread_mutex_unlock(&sp->mu);
    return rc;
}

static int simple_shutdown(void *self, uint64_t deadline_ns)
{
    simple_proc *sp = self;
    pthread_mutex_lock(&sp->mu);
    int rc = 0;
    if (!sp->shut_down) {
        sp->shut_down = true;
        rc = af_exporter_shutdown(sp->exporter, deadline_ns);
    }
    pthread_mutex_unlock(&sp->mu);
    return rc;
}

static void simple_destroy(void *self)
{
    simple_proc *sp = self;
    af_exporter_free(sp->exporter);
    pthread_mutex_destroy(&sp->mu);
    free(sp);
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
    pthread_mutex_init(&sp->mu, NULL);
    int rc = af_span_processor_new(&simple_ops, sp, out);
    if (rc != 0)
        return rc; /* simple_destroy already released the exporter */
    (*out)->exporter = exporter;
    (*out)->stats = simple_stats;
    return 0;
}
