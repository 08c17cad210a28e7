/*
 * export/http_client.h - the HTTP transport shared by the OTLP/HTTP and Jaeger exporters
 * (internal), and the health record both keep.
 *
 * One client = one libcurl easy handle driven by a private multi handle, reused for every
 * request so the connection stays alive between exports. A client is used by one thread at a
 * time (the exporting thread); only af__http_client_abort may be called from another thread.
 * The client copies every option string; response bodies are owned by the response struct.
 */
#ifndef AF_EXPORT_HTTP_CLIENT_H
#define AF_EXPORT_HTTP_CLIENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentaflow/export.h"
#include "util/buf.h"

/* OTLP/HTTP limits (docs/standards.md, OTLP/HTTP): requests over 64 MiB are not sent, response
 * bodies over 4 MiB are not parsed and count as a non-retryable failure. */
#define AF__HTTP_MAX_REQUEST (64u * 1024 * 1024)
#define AF__HTTP_MAX_RESPONSE (4u * 1024 * 1024)

typedef struct af__http_client af__http_client;

typedef struct af__http_client_opts {
    const char *url;          /* http:// or https:// */
    const char *user_agent;   /* full User-Agent value */
    const char *content_type; /* of request bodies */
    const af_header_kv *headers;
    size_t n_headers;
    bool gzip; /* compress request bodies, Content-Encoding: gzip */
    af_tls_opts tls;
} af__http_client_opts;

/* What one request produced. */
typedef struct af__http_response {
    long status;         /* HTTP status, 0 when no response arrived */
    bool retryable;      /* no response, and the failure is one a retry can fix */
    bool body_too_large; /* the body passed AF__HTTP_MAX_RESPONSE; body holds the first part */
    af_buf body;
    char content_type[128]; /* of the response, "" when none */
    char retry_after[64];   /* raw Retry-After value, "" when none */
    char error[256];        /* transport failure text (no URL userinfo, no header values) */
} af__http_response;

void af__http_response_init(af__http_response *r);
/* Clears the fields for the next attempt, keeping the body's memory. */
void af__http_response_reset(af__http_response *r);
void af__http_response_free(af__http_response *r);

/* Validates the options (scheme, header characters, readable TLS files) and builds the
 * client. 0, -EINVAL (reason logged) or -ENOMEM. */
int af__http_client_new(const af__http_client_opts *opts, af__http_client **out);
void af__http_client_free(af__http_client *c);

/*
 * Turns an encoded export request into the bytes to send: refuses one over
 * AF__HTTP_MAX_REQUEST (-EMSGSIZE, reason in `error`) and gzips it when configured (into a
 * buffer the client owns, valid until the next call). 0, -EMSGSIZE or -ENOMEM. Done once per
 * export so that retries resend the same bytes without compressing again.
 */
int af__http_client_prepare(af__http_client *c, const void *body, size_t len, const void **wire,
                            size_t *wire_len, char *error, size_t error_len);
/*
 * Sends one POST of wire[0..len) (from af__http_client_prepare) and waits for the answer until
 * deadline_ns (CLOCK_MONOTONIC; UINT64_MAX = no limit). Returns 0 when a response arrived
 * (any status, see resp->status), AF_ETIMEDOUT when the deadline passed first, AF_ESHUTDOWN
 * after af__http_client_abort, or AF_EEXPORT for a transport failure (resp->error,
 * resp->retryable).
 */
int af__http_client_post(af__http_client *c, const void *wire, size_t len, uint64_t deadline_ns,
                         af__http_response *resp);
/* Makes the request in flight (and every later one) fail at once with AF_ESHUTDOWN.
 * Safe from any thread while another is inside af__http_client_post. */
void af__http_client_abort(af__http_client *c);
/* In a forked child: the next request builds new libcurl handles instead of reusing the
 * parent's, which may be in the middle of a request and share the parent's connection.
 * Only flags the client (a fork handler must not do I/O); the old handles are abandoned. */
void af__http_client_atfork_child(af__http_client *c);

/* gzip (RFC 1952) of in[0..n) appended to out. 0 or -ENOMEM. */
int af__gzip(const void *in, size_t n, af_buf *out);

/* Copies `url` without userinfo, query or fragment into out (always NUL-terminated). */
void af__http_url_redact(const char *url, char *out, size_t out_len);
/* 0 when url starts with http:// or https:// (any case) and has a host, else -EINVAL. */
int af__http_url_check(const char *url);

/* A printable excerpt of an error body that is not a google.rpc.Status (a proxy's HTML or
 * text page): control characters become spaces; "" for binary bodies. */
void af__http_text_excerpt(const af_buf *body, char *out, size_t out_len);
/* True at most once per 10 s for one `last_ns` slot (CLOCK_MONOTONIC), so a dead collector
 * produces a bounded number of log lines. Not thread-safe: one slot per exporting thread. */
bool af__http_log_allowed(uint64_t *last_ns);

/* Health record of one network exporter; every function locks, so the exporting thread
 * updates it while others read it. h.type and h.endpoint never change after init. */
typedef struct af__http_health {
    pthread_mutex_t mu;
    af_exporter_health h;
    uint64_t failure_log_ns;    /* failure warnings: rate limit, exporting thread only */
    uint64_t failures_unlogged; /* failures since the last warning */
} af__http_health;

/* `url` is stored redacted. */
void af__http_health_init(af__http_health *hh, const char *type, const char *url);
void af__http_health_destroy(af__http_health *hh);
void af__http_health_success(af__http_health *hh, uint64_t spans, uint64_t rejected);
/* Records a failed export and logs it, at most once per 10 s with a count of the rest. */
void af__http_health_failure(af__http_health *hh, uint64_t spans, const char *error);
/* A failed attempt that will be retried: counts the retry and records the failure at once,
 * so health shows a dead collector while the export is still retrying. */
void af__http_health_retrying(af__http_health *hh, const char *error);
void af__http_health_get(af__http_health *hh, af_exporter_health *out);
/* Fork hook: locks before the fork, unlocks in the parent, re-creates the lock in the child. */
void af__http_health_atfork(af__http_health *hh, af_fork_phase phase);

#endif
