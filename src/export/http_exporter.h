/*
 * export/http_exporter.h - what the Jaeger and OTLP/HTTP exporters share: the HTTP client, the
 * stopper that bounds shutdown, the health record, the retry policy and the reused request
 * and response buffers, with one lifecycle (init, send, shutdown, clear) for both.
 *
 * Embedded as the first member of each exporter's state; the exporter owns the struct, the
 * base owns everything it points to.
 */
#ifndef AF_EXPORT_HTTP_EXPORTER_H
#define AF_EXPORT_HTTP_EXPORTER_H

#include "agentaflow/export.h"
#include "export/http_client.h"
#include "export/retry.h"
#include "util/buf.h"

typedef struct af__http_exporter {
    af__http_client *client; /* NULL until the exporter creates it */
    af__stopper stop;
    af__http_health health;
    af_retry_opts retry;
    uint64_t rng;
    uint32_t timeout_ms; /* per export(); 0 = only the caller's deadline */
    af_buf body;         /* encoded request, reused between exports */
    af__http_response resp;
} af__http_exporter;

/* Everything but the client (the exporter builds its options). `type` and `url` name the
 * exporter in its health record (copied). 0 or -ENOMEM; nothing to clear on failure. */
int af__http_exporter_init(af__http_exporter *b, const char *type, const char *url,
                           const af_retry_opts *retry, uint32_t timeout_ms);
/* Releases what init and the client hold; the struct itself is the caller's. */
void af__http_exporter_clear(af__http_exporter *b);

/* The earlier of the caller's deadline and now + timeout_ms. */
uint64_t af__http_exporter_deadline(const af__http_exporter *b, uint64_t deadline_ns);
/* Records an encoding failure of n spans; returns rc. */
int af__http_exporter_encode_failed(af__http_exporter *b, size_t n, int rc);
/* Prepares b->body (gzip) and POSTs it with retries. A transport failure or an oversized
 * answer is recorded for n spans and returned; 0 leaves a complete answer in b->resp for
 * the caller to judge by its status. */
int af__http_exporter_post(af__http_exporter *b, size_t n, uint64_t deadline_ns);
/* Records a non-success HTTP status for n spans with the server's message `msg` (may be
 * empty); returns AF_EEXPORT. */
int af__http_exporter_status_failed(af__http_exporter *b, size_t n, const char *msg);

/* The exporter ops both share (self is the af__http_exporter). shutdown stops new exports,
 * wakes a retry wait and cancels a request in flight, so a dead collector cannot hold the
 * shutdown; then it waits (bounded) for export() to leave. */
int af__http_exporter_shutdown(void *self, uint64_t deadline_ns);
void af__http_exporter_health(void *self, af_exporter_health *out);
void af__http_exporter_fork(void *self, af_fork_phase phase);

#endif
