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
#include "export/http_client.h"
#include "export/retry.h"
#include "util/buf.h"

#define DEFAULT_URL "http://localhost:14268/api/traces"
#define USER_AGENT "agentaflow-jaeger-exporter/" AF_VERSION_STRING

typedef struct jaeger {
    af__http_client *client;
    af__stopper stop;
    af__http_health health;
    af_retry_opts retry;
    uint64_t rng;
    uint32_t timeout_ms;
    af_buf body;
    af__http_response resp;
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
    char err[256];
    af__buf_reset(&j->body);
    int rc = af__jaeger_thrift_encode(j->group, n, &j->body);
    if (rc) {
        snprintf(err, sizeof(err), "encoding %zu spans failed: %s", n, af_strerror(rc));
        af__http_health_failure(&j->health, n, err);
        return rc;
    }
    const void *wire;
    size_t wire_len;
    rc = af__http_client_prepare(j->client, j->body.data, j->body.len, &wire, &wire_len, err,
                                 sizeof(err));
    if (rc) {
        af__http_health_failure(&j->health, n, err);
        return rc;
    }
    rc = af__retry_post(j->client, &j->stop, &j->retry, &j->rng, wire, wire_len, deadline_ns,
                        &j->resp, &j->health);
    long status = j->resp.status;
    if (rc != 0) {
        af__http_health_failure(&j->health, n, j->resp.error);
        return rc;
    }
    if (j->resp.body_too_large) {
        snprintf(err, sizeof(err), "HTTP %ld: %.200s", status, j->resp.error);
        af__http_health_failure(&j->health, n, err);
        return AF_EEXPORT;
    }
    /* The collector answers 202 Accepted; 200 and 204 come from proxies and older
     * collectors. */
    if (status == 200 || status == 202 || status == 204) {
        af__http_health_success(&j->health, n, 0);
        return 0;
    }
    char msg[200];
    af__http_text_excerpt(&j->resp.body, msg, sizeof(msg));
    snprintf(err, sizeof(err), "HTTP %ld%s%s%s", status, msg[0] ? ": " : "", msg,
             af__retry_status_retryable(status) ? " (no retry left in attempts or time)" : "");
    af__http_health_failure(&j->health, n, err);
    return AF_EEXPORT;
}

static int jaeger_export(void *self, const af_span_data *const *spans, size_t n,
                         uint64_t deadline_ns)
{
    jaeger *j = self;
    if (af__stopper_begin(&j->stop))
        return AF_ESHUTDOWN;
    int rc = 0;
    if (n == 0)
        goto out;
    if (j->timeout_ms) {
        uint64_t own = af_monotonic_ns() + (uint64_t)j->timeout_ms * 1000000u;
        if (own < deadline_ns)
            deadline_ns = own;
    }
    if (grow_scratch(j, n)) {
        af__http_health_failure(&j->health, n, "out of memory");
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
                af__http_health_failure(&j->health, left,
                                        "not sent: an earlier batch of the "
                                        "same export ran out of time");
            break;
        }
    }
out:
    af__stopper_end(&j->stop);
    return rc;
}

static int jaeger_shutdown(void *self, uint64_t deadline_ns)
{
    jaeger *j = self;
    af__stopper_stop(&j->stop);
    af__http_client_abort(j->client);
    return af__stopper_wait_idle(&j->stop, deadline_ns);
}

static void jaeger_destroy(void *self)
{
    jaeger *j = self;
    af__http_client_free(j->client);
    af__stopper_destroy(&j->stop);
    af__http_health_destroy(&j->health);
    af__buf_clear(&j->body);
    af__http_response_free(&j->resp);
    free(j->group);
    free(j->resources);
    free(j);
}

static void jaeger_health(void *self, af_exporter_health *out)
{
    jaeger *j = self;
    af__http_health_get(&j->health, out);
}

static void jaeger_atfork(void *self, af_fork_phase phase)
{
    jaeger *j = self;
    af__http_exporter_atfork(j->client, &j->stop, &j->health, phase);
}

static const af_exporter_ops jaeger_ops = {
    .type = "jaeger",
    .export_spans = jaeger_export,
    .force_flush = NULL, /* nothing is buffered here: the processor owns the queue */
    .shutdown = jaeger_shutdown,
    .destroy = jaeger_destroy,
    .health = jaeger_health,
    .atfork = jaeger_atfork,
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
    af__buf_init(&j->body);
    af__http_response_init(&j->resp);
    if (af__stopper_init(&j->stop)) {
        free(j);
        return -ENOMEM;
    }
    af__http_health_init(&j->health, "jaeger", url);
    j->retry = opts->retry;
    j->timeout_ms = opts->timeout_ms;
    af__retry_seed(&j->rng);
    af__http_client_opts co = {
        .url = url,
        .user_agent = USER_AGENT,
        .content_type = "application/x-thrift",
        .headers = opts->headers,
        .n_headers = opts->n_headers,
        .gzip = false, /* the Jaeger receiver's handler reads identity bodies only */
        .tls = opts->tls,
    };
    if ((rc = af__http_client_new(&co, &j->client)))
        goto fail;
    /* af_exporter_new takes ownership of j even when it fails. */
    return af_exporter_new(&jaeger_ops, j, out);
fail:
    jaeger_destroy(j);
    return rc;
}
