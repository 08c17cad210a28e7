/* The lifecycle the Jaeger and OTLP/HTTP exporters share (export/http_exporter.h). */
#include "export/http_exporter.h"

#include <errno.h>
#include <stdio.h>

int af__http_exporter_init(af__http_exporter *b, const char *type, const char *url,
                           const af_retry_opts *retry, uint32_t timeout_ms)
{
    b->client = NULL;
    af__buf_init(&b->body);
    af__http_response_init(&b->resp);
    if (af__stopper_init(&b->stop))
        return -ENOMEM;
    af__http_health_init(&b->health, type, url);
    b->retry = *retry;
    b->timeout_ms = timeout_ms;
    af__retry_seed(&b->rng);
    return 0;
}

void af__http_exporter_clear(af__http_exporter *b)
{
    af__http_client_free(b->client);
    b->client = NULL;
    af__stopper_destroy(&b->stop);
    af__http_health_destroy(&b->health);
    af__buf_clear(&b->body);
    af__http_response_free(&b->resp);
}

uint64_t af__http_exporter_deadline(const af__http_exporter *b, uint64_t deadline_ns)
{
    if (b->timeout_ms) {
        uint64_t own = af_monotonic_ns() + (uint64_t)b->timeout_ms * 1000000u;
        if (own < deadline_ns)
            return own;
    }
    return deadline_ns;
}

int af__http_exporter_encode_failed(af__http_exporter *b, size_t n, int rc)
{
    char err[256];
    snprintf(err, sizeof(err), "encoding %zu spans failed: %s", n, af_strerror(rc));
    af__http_health_failure(&b->health, n, err);
    return rc;
}

int af__http_exporter_post(af__http_exporter *b, size_t n, uint64_t deadline_ns)
{
    char err[256];
    const void *wire;
    size_t wire_len;
    int rc = af__http_client_prepare(b->client, b->body.data, b->body.len, &wire, &wire_len, err,
                                     sizeof(err));
    if (rc) {
        af__http_health_failure(&b->health, n, err);
        return rc;
    }
    rc = af__retry_post(b->client, &b->stop, &b->retry, &b->rng, wire, wire_len, deadline_ns,
                        &b->resp, &b->health);
    if (rc != 0) {
        af__http_health_failure(&b->health, n, b->resp.error);
        return rc;
    }
    if (b->resp.body_too_large) {
        snprintf(err, sizeof(err), "HTTP %ld: %.200s", b->resp.status, b->resp.error);
        af__http_health_failure(&b->health, n, err);
        return AF_EEXPORT;
    }
    return 0;
}

int af__http_exporter_status_failed(af__http_exporter *b, size_t n, const char *msg)
{
    char err[256];
    long status = b->resp.status;
    snprintf(err, sizeof(err), "HTTP %ld%s%s%s", status, msg[0] ? ": " : "", msg,
             af__retry_status_retryable(status) ? " (no retry left in attempts or time)" : "");
    af__http_health_failure(&b->health, n, err);
    return AF_EEXPORT;
}

int af__http_exporter_shutdown(void *self, uint64_t deadline_ns)
{
    af__http_exporter *b = self;
    af__stopper_stop(&b->stop);
    af__http_client_abort(b->client);
    return af__stopper_wait_idle(&b->stop, deadline_ns);
}

void af__http_exporter_health(void *self, af_exporter_health *out)
{
    af__http_exporter *b = self;
    af__http_health_get(&b->health, out);
}

void af__http_exporter_fork(void *self, af_fork_phase phase)
{
    af__http_exporter *b = self;
    af__stopper_atfork(&b->stop, phase);
    af__http_health_atfork(&b->health, phase);
    if (phase == AF_FORK_CHILD)
        af__http_client_atfork_child(b->client);
}
