/*
 * Jaeger exporter: Thrift binary Batch over HTTP (collector endpoint /api/traces, port 14268),
 * kept for Jaeger deployments that predate OTLP (docs/standards.md, Jaeger). A Batch carries
 * one Process (one resource), so an export() with spans from several resources sends one
 * POST per resource. Retry, timeout and health rules are those of the OTLP/HTTP exporter.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/export.h"
#include "agentaflow/log.h"
#include "export/encode.h"
#include "export/http_exporter.h"

#define DEFAULT_URL "http://localhost:14268/api/traces"
#define USER_AGENT "agentaflow-jaeger-exporter/" AF_VERSION_STRING

typedef struct jaeger {
    af__http_exporter base;     /* first: the shared ops take the jaeger as their self */
    const af_span_data **group; /* scratch: the spans of one resource */
    const af_resource **resources;
    size_t scratch_cap;
} jaeger;

void af_jaeger_opts_init(af_jaeger_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->timeout_ms = 10000;
    af__retry_opts_default(&o->retry);
}

static int grow_scratch(jaeger *j, size_t n)
{
    if (n <= j->scratch_cap)
        return 0;
    const af_span_data **g = realloc(j->group, n * sizeof(*g));
    if (!g)
        return -ENOMEM;
    j->group = g;
    const af_resource **r = realloc(j->resources, n * sizeof(*r));
    if (!r)
        return -ENOMEM;
    j->resources = r;
    j->scratch_cap = n;
    return 0;
}

/* Sends the spans of one resource; records health; returns 0 or a negative code. */
static int send_group(jaeger *j, size_t n, uint64_t deadline_ns)
{
    af__http_exporter *b = &j->base;
    af__buf_reset(&b->body);
    int rc = af__jaeger_thrift_encode(j->group, n, &b->body);
    if (rc)
        return af__http_exporter_encode_failed(b, n, rc);
    if ((rc = af__http_exporter_post(b, n, deadline_ns)))
        return rc;
    long status = b->resp.status;
    /* The collector answers 202 Accepted; 200 and 204 come from proxies and older
     * collectors. */
    if (status == 200 || status == 202 || status == 204) {
        af__http_health_success(&b->health, n, 0);
        return 0;
    }
    char msg[200];
    af__http_text_excerpt(&b->resp.body, msg, sizeof(msg));
    return af__http_exporter_status_failed(b, n, msg);
}

static int jaeger_export(void *self, const af_span_data *const *spans, size_t n,
                         uint64_t deadline_ns)
{
    jaeger *j = self;
    if (af__stopper_begin(&j->base.stop))
        return AF_ESHUTDOWN;
    int rc = 0;
    if (n == 0)
        goto out;
    deadline_ns = af__http_exporter_deadline(&j->base, deadline_ns);
    if (grow_scratch(j, n)) {
        af__http_health_failure(&j->base.health, n, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    /* Distinct resources in first-seen order (pointer identity; normally just one). */
    size_t n_res = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < n_res && j->resources[k] != spans[i]->resource)
            k++;
        if (k == n_res)
            j->resources[n_res++] = spans[i]->resource;
    }
    for (size_t k = 0; k < n_res; k++) {
        size_t g = 0;
        for (size_t i = 0; i < n; i++)
            if (spans[i]->resource == j->resources[k])
                j->group[g++] = spans[i];
        int grc = send_group(j, g, deadline_ns);
        if (grc && !rc)
            rc = grc;
        if (grc == AF_ESHUTDOWN || grc == AF_ETIMEDOUT) {
            /* No time or no permission left for the other groups: count them failed. */
            size_t left = 0;
            for (size_t r = k + 1; r < n_res; r++)
                for (size_t i = 0; i < n; i++)
                    left += spans[i]->resource == j->resources[r];
            if (left)
                af__http_health_failure(&j->base.health, left,
                                        "not sent: an earlier batch of the "
                                        "same export ran out of time");
            break;
        }
    }
out:
    af__stopper_end(&j->base.stop);
    return rc;
}

static void jaeger_destroy(void *self)
{
    jaeger *j = self;
    af__http_exporter_clear(&j->base);
    free(j->group);
    free(j->resources);
    free(j);
}

static const af_exporter_ops jaeger_ops = {
    .type = "jaeger",
    .export_spans = jaeger_export,
    .force_flush = NULL, /* nothing is buffered here: the processor owns the queue */
    .shutdown = af__http_exporter_shutdown,
    .destroy = jaeger_destroy,
    .health = af__http_exporter_health,
    .atfork = af__http_exporter_fork,
};

int af_jaeger_exporter_new(const af_jaeger_opts *opts, af_exporter **out)
{
    *out = NULL;
    af_jaeger_opts defaults;
    if (!opts) {
        af_jaeger_opts_init(&defaults);
        opts = &defaults;
    }
    const char *url = opts->endpoint ? opts->endpoint : DEFAULT_URL;
    int rc;
    jaeger *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    if (af__http_exporter_init(&j->base, "jaeger", url, &opts->retry, opts->timeout_ms)) {
        free(j);
        return -ENOMEM;
    }
    af__http_client_opts co = {
        .url = url,
        .user_agent = USER_AGENT,
        .content_type = "application/x-thrift",
        .headers = opts->headers,
        .n_headers = opts->n_headers,
        .gzip = false, /* the Jaeger receiver's handler reads identity bodies only */
        .tls = opts->tls,
    };
    if ((rc = af__http_client_new(&co, &j->base.client)))
        goto fail;
    /* af_exporter_new takes ownership of j even when it fails. */
    return af_exporter_new(&jaeger_ops, j, out);
fail:
    jaeger_destroy(j);
    return rc;
}
