/*
 * http_receiver.h - a tiny threaded HTTP/1.1 server on 127.0.0.1 for exporter tests.
 *
 * It binds an ephemeral loopback port, records every request (method, path, headers, body,
 * gunzipped when Content-Encoding is gzip) and answers from a scripted list of replies, one per
 * request in arrival order, then "200, empty body" once the script is used up. Replies can be
 * delayed or can close the connection without answering. Optional TLS (and mTLS) through
 * OpenSSL. Each connection gets its own thread, so keep-alive and parallel connections work.
 *
 * Ownership: the receiver copies the script; recorded requests belong to the receiver and
 * stay valid until af_test_http_receiver_stop.
 */
#ifndef AF_TEST_HTTP_RECEIVER_H
#define AF_TEST_HTTP_RECEIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct af_test_http_receiver af_test_http_receiver;

typedef struct af_test_http_reply {
    int status;          /* 0 = 200 */
    const char *headers; /* extra header lines, each ending in "\r\n", e.g. "Retry-After: 1\r\n" */
    const void *body;    /* may be NULL */
    size_t body_len;
    size_t filler_len;           /* with body NULL: a body of this many 'x' bytes */
    uint32_t delay_ms;           /* wait before answering; cut short by stop */
    bool close_without_response; /* read the request, then close the connection */
} af_test_http_reply;

typedef struct af_test_http_request {
    char method[16];
    char path[512];
    size_t n_headers;
    char **names; /* as received */
    char **values;
    uint8_t *body; /* decoded body (gunzipped when the request said gzip) */
    size_t body_len;
    size_t wire_len; /* body bytes as received */
    bool gzipped;
    bool client_cert;    /* TLS only: the client presented a certificate that verified */
    unsigned connection; /* 1-based number of the connection it arrived on */
    uint64_t at_ns;      /* af_monotonic_ns() when it was fully read */
} af_test_http_request;

typedef struct af_test_http_receiver_opts {
    const char *tls_cert; /* PEM; with tls_key, the receiver speaks HTTPS */
    const char *tls_key;
    const char *tls_client_ca; /* PEM; requires a client certificate signed by it (mTLS) */
} af_test_http_receiver_opts;

/* opts may be NULL (plain HTTP). 0 or a negative errno. */
int af_test_http_receiver_start(const af_test_http_receiver_opts *opts,
                                af_test_http_receiver **out);
/* Joins every thread and frees everything. NULL is a no-op. */
void af_test_http_receiver_stop(af_test_http_receiver *r);
uint16_t af_test_http_receiver_port(const af_test_http_receiver *r);
/* Replaces the script (copied). Replies are consumed by requests in arrival order. */
void af_test_http_receiver_script(af_test_http_receiver *r, const af_test_http_reply *replies,
                                  size_t n);
size_t af_test_http_receiver_requests(af_test_http_receiver *r);
size_t af_test_http_receiver_connections(af_test_http_receiver *r);
/* The i-th recorded request (0-based), NULL when there is none yet. */
const af_test_http_request *af_test_http_receiver_request(af_test_http_receiver *r, size_t i);
/* Waits until at least n requests were recorded or timeout_ms passed; returns the count. */
size_t af_test_http_receiver_wait(af_test_http_receiver *r, size_t n, uint32_t timeout_ms);
/* Header value by case-insensitive name, NULL when absent. */
const char *af_test_http_request_header(const af_test_http_request *q, const char *name);

/* A loopback port on which nothing listens right now (bound, then closed). */
uint16_t af_test_closed_port(void);

#endif
