/*
 * agentaflow/export.h - the exporters that ship with the library.
 *
 * Each constructor returns an af_exporter (see trace_sdk.h) to hand to a processor, which
 * then owns it. Options structs are copied; strings in them are copied.
 */
#ifndef AGENTAFLOW_EXPORT_H
#define AGENTAFLOW_EXPORT_H

#include <stdio.h>

#include "agentaflow/trace_sdk.h"

#ifdef __cplusplus
extern "C" {
#endif
AF_API_BEGIN

/* ---------------------------------------------------------------------------------------- */
/* Memory exporter: keeps copies of exported spans in a bounded ring (oldest dropped first).  */
/* Used by tests and by the daemon's in-process trace store.                                 */

typedef struct af_memory_exporter af_memory_exporter;

/* A deep copy of one exported span; every pointer inside is owned by the copy. */
typedef struct af_span_copy af_span_copy;

/* capacity 0 = 4096 spans. *out_handle (may be NULL) lets the caller read the spans back;
 * it is borrowed and valid while the exporter lives. */
int af_memory_exporter_new(size_t capacity, af_exporter **out, af_memory_exporter **out_handle);
/* Number of spans held now. */
size_t af_memory_exporter_count(af_memory_exporter *m);
/* Bounds the memory held as well as the count (0 = no byte bound, the default): oldest spans
 * go until both hold; a span larger than the whole bound is not kept. Applies from the next
 * export. */
void af_memory_exporter_set_max_bytes(af_memory_exporter *m, size_t max_bytes);
/* Bytes held now: the sum of af_span_copy_bytes of the held spans. */
size_t af_memory_exporter_bytes(af_memory_exporter *m);
/* Total spans ever received (including those rotated out). */
uint64_t af_memory_exporter_total(af_memory_exporter *m);
/*
 * Copies up to `cap` held spans (oldest first) into out[] as new references; release each
 * with af_span_copy_release. Returns how many were written.
 */
size_t af_memory_exporter_snapshot(af_memory_exporter *m, af_span_copy **out, size_t cap);
void af_memory_exporter_clear(af_memory_exporter *m);
/* The span data view of a copy (valid while the reference is held). */
const af_span_data *af_span_copy_data(const af_span_copy *c);
void af_span_copy_retain(af_span_copy *c);
void af_span_copy_release(af_span_copy *c);
/* Bytes the copy occupies: its one allocation with every string, attribute and event (the
 * resource, shared between copies, is not counted). */
size_t af_span_copy_bytes(const af_span_copy *c);
/* Makes a deep copy of a span's data (resource and scope are copied too). NULL on ENOMEM. */
af_span_copy *af_span_copy_new(const af_span_data *span);

/* ---------------------------------------------------------------------------------------- */
/* Stdout exporter: one OTLP/JSON-shaped object per span ("not for production": it writes on  */
/* the exporting thread and only flushes the stream).                                        */

typedef struct af_stdout_exporter_opts {
    FILE *stream;      /* NULL = stdout; borrowed, must outlive the exporter */
    bool pretty_print; /* indented multi-line JSON instead of one line per span */
} af_stdout_exporter_opts;

void af_stdout_exporter_opts_init(af_stdout_exporter_opts *o);
int af_stdout_exporter_new(const af_stdout_exporter_opts *opts, af_exporter **out);

/* Writes one span as OTLP/JSON field names into buf (see util); exposed for tests and tools.
 * Returns 0 or -ENOMEM. `out` is a malloc'd NUL-terminated string the caller frees. */
int af_span_to_json(const af_span_data *span, bool pretty, char **out);

/* ---------------------------------------------------------------------------------------- */
/* HTTP exporters (OTLP/HTTP and Jaeger Thrift over HTTP), both on libcurl.                   */

/* Retry policy for transient failures (429, 502, 503, 504, connection failures): exponential
 * backoff with full jitter, Retry-After honoured, never past the export deadline. */
typedef struct af_retry_opts {
    uint32_t max_attempts;       /* 5 (1 = no retry) */
    uint32_t initial_backoff_ms; /* 1000 */
    uint32_t max_backoff_ms;     /* 5000 */
    double multiplier;           /* 1.5 */
} af_retry_opts;

/* TLS settings; all paths are PEM files, NULL = not used. */
typedef struct af_tls_opts {
    const char *ca_file;     /* trust these CAs instead of the system store */
    const char *client_cert; /* mTLS */
    const char *client_key;
    bool insecure_skip_verify; /* for tests only; logged loudly when set */
} af_tls_opts;

typedef enum af_otlp_protocol {
    AF_OTLP_HTTP_PROTOBUF = 0,
    AF_OTLP_HTTP_JSON = 1,
} af_otlp_protocol;

typedef struct af_header_kv {
    const char *name;
    const char *value; /* secret by assumption: never logged or shown */
} af_header_kv;

typedef struct af_otlp_http_opts {
    /* Full URL of the traces endpoint, used as-is (e.g. "http://localhost:4318/v1/traces").
     * NULL = from OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (as-is), else OTEL_EXPORTER_OTLP_ENDPOINT
     * + "/v1/traces", else http://localhost:4318/v1/traces. */
    const char *endpoint;
    af_otlp_protocol protocol;   /* OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL when not set in code */
    const af_header_kv *headers; /* extra headers, copied */
    size_t n_headers;
    bool gzip;           /* Content-Encoding: gzip */
    uint32_t timeout_ms; /* per export, retries included; 10000; 0 = no limit */
    af_tls_opts tls;
    af_retry_opts retry;
} af_otlp_http_opts;

/* Defaults, then the OTEL_EXPORTER_OTLP_* variables (per-signal beats generic). Strings set by
 * this function point into the environment; the constructor copies them. */
void af_otlp_http_opts_init(af_otlp_http_opts *o);
/* Builds the effective traces URL from the spec's rule: a generic endpoint is a base to
 * which "v1/traces" is appended (one slash); a per-signal one is used as-is. */
int af_otlp_traces_url(const char *endpoint, bool per_signal, char *out, size_t out_len);
/* Returns 0, -EINVAL (with a logged reason: bad URL scheme, unreadable TLS file) or -ENOMEM. */
int af_otlp_http_exporter_new(const af_otlp_http_opts *opts, af_exporter **out);

typedef struct af_jaeger_opts {
    const char *endpoint; /* NULL = http://localhost:14268/api/traces */
    const af_header_kv *headers;
    size_t n_headers;
    uint32_t timeout_ms; /* 10000 */
    af_tls_opts tls;
    af_retry_opts retry;
} af_jaeger_opts;

void af_jaeger_opts_init(af_jaeger_opts *o);
int af_jaeger_exporter_new(const af_jaeger_opts *opts, af_exporter **out);

AF_API_END
#ifdef __cplusplus
}
#endif
#endif
