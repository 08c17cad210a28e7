/*
 * The exporter wrapper: a vtable plus its state, with the calls the processors make.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/trace_sdk.h"
#include "trace/span_int.h"
#include "util/str.h"

struct af_exporter {
    const af_exporter_ops *ops;
    void *self;
};

int af_exporter_new(const af_exporter_ops *ops, void *self, af_exporter **out)
{
    *out = NULL;
    if (!ops || !ops->export_spans) {
        if (ops && ops->destroy)
            ops->destroy(self);
        return -EINVAL;
    }
    af_exporter *e = malloc(sizeof(*e));
    if (!e) {
        if (ops->destroy)
            ops->destroy(self);
        return -ENOMEM;
    }
    e->ops = ops;
    e->self = self;
    *out = e;
    return 0;
}

void af_exporter_free(af_exporter *e)
{
    if (!e)
        return;
    if (e->ops->destroy)
        e->ops->destroy(e->self);
    free(e);
}

int af_exporter_export(af_exporter *e, const af_span_data *const *spans, size_t n,
                       uint64_t deadline_ns)
{
    return e->ops->export_spans(e->self, spans, n, deadline_ns);
}

int af_exporter_force_flush(af_exporter *e, uint64_t deadline_ns)
{
    return e->ops->force_flush ? e->ops->force_flush(e->self, deadline_ns) : 0;
}

int af_exporter_shutdown(af_exporter *e, uint64_t deadline_ns)
{
    return e->ops->shutdown ? e->ops->shutdown(e->self, deadline_ns) : 0;
}

void af__exporter_atfork(af_exporter *e, af_fork_phase phase)
{
    if (e->ops->atfork)
        e->ops->atfork(e->self, phase);
}

const char *af_exporter_type(const af_exporter *e)
{
    return e->ops->type ? e->ops->type : "custom";
}

void *af_exporter_self(const af_exporter *e)
{
    return e->self;
}

void af_exporter_health_get(const af_exporter *e, af_exporter_health *out)
{
    memset(out, 0, sizeof(*out));
    af__strlcpy(out->type, af_exporter_type(e), sizeof(out->type));
    if (e->ops->health)
        e->ops->health(e->self, out);
}
