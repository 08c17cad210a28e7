/*
 * OTLP/HTTP exporter against the loopback receiver: what goes on the wire (path, headers,
 * body, gzip, JSON), keep-alive, the retry policy (Retry-After, 429, 400, connection refused),
 * deadlines, shutdown interrupting a retry wait or a request, partial success, size limits,
 * HTTPS and mTLS with certificates made by the openssl CLI, configuration from the
 * environment, and the health record.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentaflow/log.h"
#include "export/encode.h"
#include "fork_export.h"
#include "http_receiver.h"

#define MS 1000000ull

static const af_instrumentation_scope scope = {"lib", "1.0", "", NULL, 0};

typedef struct fixture {
    af_test_http_receiver *rx;
    af_resource *res;
    af_span_data spans[3];
    const af_span_data *ptrs[3];
    char url[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(af_test_http_receiver_start(NULL, &f->rx), 0);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u/v1/traces",
             af_test_http_receiver_port(f->rx));
    assert_int_equal(af_resource_new_raw(AF_ATTRS(AF_STR("service.name", "svc")), &f->res), 0);
    for (int i = 0; i < 3; i++) {
        af_span_data *s = &f->spans[i];
        memset(s, 0, sizeof(*s));
        for (int k = 0; k < 16; k++)
            s->trace_id[k] = (uint8_t)(k + 1);
        s->span_id[0] = (uint8_t)(i + 1);
        s->trace_flags = 1;
        s->trace_state = "";
        s->name = "op";
        s->kind = AF_SPAN_KIND_CLIENT;
        s->start_ns = 1700000000000000000ull;
        s->end_ns = s->start_ns + 1000;
        s->status_message = "";
        s->resource = f->res;
        s->scope = &scope;
        f->ptrs[i] = s;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    af_test_http_receiver_stop(f->rx);
    af_resource_free(f->res);
    free(f);
    return 0;
}

static uint64_t in_ms(uint64_t ms)
{
    return af_monotonic_ns() + ms * MS;
}

/* Options aimed at the fixture's receiver with fast retries; environment ignored. */
static void opts_for(fixture *f, af_otlp_http_opts *o)
{
    af_otlp_http_opts_init(o);
    o->endpoint = f->url;
    o->protocol = AF_OTLP_HTTP_PROTOBUF;
    o->gzip = false;
    o->timeout_ms = 5000;
    o->retry.initial_backoff_ms = 10;
    o->retry.max_backoff_ms = 50;
}

static af_exporter *make(const af_otlp_http_opts *o)
{
    af_exporter *e = NULL;
    assert_int_equal(af_otlp_http_exporter_new(o, &e), 0);
    assert_non_null(e);
    return e;
}

static void encoded(fixture *f, size_t n, bool json, af_buf *b)
{
    af__buf_init(b);
    assert_int_equal(
        json ? af__otlp_json_encode(f->ptrs, n, b) : af__otlp_proto_encode(f->ptrs, n, b), 0);
}

static void test_success_path(void **state)
{
    fixture *f = *state;
    af_otlp_http_opts o;
    opts_for(f, &o);
    af_header_kv h[] = {{"x-honeycomb-team", "secret-key-123"}};
    o.headers = h;
    o.n_headers = 1;
    af_exporter *e = make(&o);
    assert_string_equal(af_exporter_type(e), "otlp_http");
    assert_int_equal(af_exporter_export(e, f->ptrs, 2, in_ms(5000)), 0);

    assert_int_equal(af_test_http_receiver_requests(f->rx), 1);
    const af_test_http_request *q = af_test_http_receiver_request(f->rx, 0);
    assert_string_equal(q->method, "POST");
    assert_string_equal(q->path, "/v1/traces");
    assert_string_equal(af_test_http_request_header(q, "content-type"), "application/x-protobuf");
    assert_string_equal(af_test_http_request_header(q, "user-agent"),
                        "OTel-OTLP-Exporter-C/" AF_VERSION_STRING " agentaflow");
    assert_string_equal(af_test_http_request_header(q, "x-honeycomb-team"), "secret-key-123");
    assert_null(af_test_http_request_header(q, "content-encoding"));
    af_buf want;
    encoded(f, 2, false, &want);
    assert_int_equal(q->body_len, want.len);
    assert_memory_equal(q->body, want.data, want.len);
    af__buf_clear(&want);

    af_exporter_health h2;
    af_exporter_health_get(e, &h2);
    assert_string_equal(h2.type, "otlp_http");
    assert_string_equal(h2.endpoint, f->url);
    assert_int_equal(h2.spans_exported, 2);
    assert_int_equal(h2.spans_failed, 0);
    assert_int_equal(h2.consecutive_failures, 0);
    assert_true(h2.last_success_ns > 0);
    assert_int_equal(h2.last_failure_ns, 0);

    /* An empty batch sends nothing. */
    assert_int_equal(af_exporter_export(e, f->ptrs, 0, in_ms(1000)), 0);
    assert_int_equal(af_test_http_receiver_requests(f->rx), 1);
    af_exporter_free(e);
}

static void test_gzip_body(void **state)
{
    fixture *f = *state;
    af_otlp_http_opts o;
    opts_for(f, &o);
    o.gzip = true;
    af_exporter *e = make(&o);
    assert_int_equal(af_exporter_export(e, f->ptrs, 3, in_ms(5000)), 0);
    const af_test_http_request *q = af_test_http_receiver_request(f->rx, 0);
    assert_non_null(q);
    assert_string_equal(af_test_http_request_header(q, "content-encoding"), "gzip");
    assert_true(q->gzipped);
    af_buf want;
    encoded(f, 3, false, &want);
    assert_int_equal(q->body_len, want.len);
    assert_memory_equal(q->body, want.data, want.len);
    assert_true(q->wire_len != q->body_len);
    af__buf_clear(&want);
    af_exporter_free(e);
}

static void test_json_protocol(void **state)
{
    fixture *f = *state;
    af_otlp_http_opts o;
    opts_for(f, &o);
    o.protocol = AF_OTLP_HTTP_JSON;
    af_exporter *e = make(&o);
    assert_int_equal(af_exporter_export(e, f->ptrs, 1, in_ms(5000)), 0);
    const af_test_http_request *q = af_test_http_receiver_request(f->rx, 0);
    assert_non_null(q);
    assert_string_equal(af_test_http_request_header(q, "content-type"), "application/json");
    af_buf want;
    encoded(f, 1, true, &want);
    assert_int_equal(q->body_len, want.len);
    assert_memory_equal(q->body, want.data, want.len);
    af__buf_clear(&want);
    af_exporter_free(e);
}

static void test_keep_alive(void **state)
{
    fixture *f = *state;
    af_otlp_http_opts o;
    opts_for(f, &o);
    af_exporter *e = make(&o);
    assert_int_equal(af_exporter_export(e, f->ptrs, 1, in_ms(5000)), 0);
    assert_int_equal(af_exporter_export(e, f->ptrs, 2, in_ms(5000)), 0);
    assert_int_equal(af_test_http_receiver_requests(f->rx), 2);
    assert_int_equal(af_test_http_receiver_connections(f->rx), 1);
    af_exporter_free(e);
}

static void test_503_retry_after(void **state)
{
    fixture *f = *state;
    af_test_http_reply script[] = {{.status = 503, .headers = "Retry-After: 1\r\n"}, {0}};
    af_test_http_receiver_script(f->rx, script, 2);
    af_otlp_http_opts o;
    opts_for(f, &o);
    af_exporter *e = make(&o);
    assert_int_equal(af_exporter_export(e, f->ptrs, 1, in_ms(5000)), 0);
    assert_int_equal(af_test_http_receiver_requests(f->rx), 2);
    /* The server's one second wins over the 10 ms backoff. */
    const af_test_http_request *a = af_test_http_receiver_request(f->rx, 0);
    const af_test_http_request *b = af_test_http_receiver_request(f->rx, 1);
    assert_true(b->at_ns - a->at_ns >= 900 * MS);
    af_exporter_health h;
    af_exporter_health_get(e, &h);
    assert_int_equal(h.retries, 1);
    assert_int_equal(h.spans_exported, 1);
    assert_int_equal(h.spans_failed, 0);
    af_exporter_free(e);
}

static void test_retry_after_past_deadline(void **state)
{
    fixture *f = *state;
    af_test_http_reply script[] = {{.status = 503, .headers = "Retry-After: 30\r\n"}};
    af_test_http_receiver_script(f->rx, script, 1);
    af_otlp_http_opts o;
    opts_for(f, &o);
    o.timeout_ms = 2000;
    af_exporter *e = make(&o);
    uint64_t t0 = af_monotonic_ns();
    assert_int_equal(af_exporter_export(e, f->ptrs, 1, UINT64_MAX), AF_EEXPORT);
    /* A wait that cannot end before the deadline is not started at all. */
    assert_true(af_monotonic_ns() - t0 < 1500 * MS);
    assert_int_equal(af_test_http_receiver_requests(f->rx), 1);
    af_exporter_health h;
    af_exporter_health_get(e, &h);
    assert_non_null(strstr(h.last_error, "HTTP 503"));
    af_exporter_free(e);
}

static void test_429_retried(void **state)
{
    fixture *f = *state;
    af_test_http_reply script[] = {{.status = 429}, {.status = 502}, {.status = 200}};
    af_test_http_receiver_script(f->rx, script, 3);
    af_otlp_http_opts o;
    opts_for(f, &o);
    af_exporter *e = make(&o);
    assert_int_equal(af_exporter_export(e, f->ptrs, 1, in_ms(5000)), 0);
    assert_int_equal(af_test_http_receiver_requests(f->rx), 3);
    af_exporter_health h;
    af_exporter_health_get(e, &h);
    assert_int_equal(h.retries, 2);
    af_exporter_free(e);
}

static void test_attempts_exhausted(void **state)
{
    fixture *f = *state;
    af_test_http_reply script[] = {{.status = 504}, {.status = 504}, {.status = 504}};
    af_test_http_receiver_script(f->rx, script, 3);
    af_otlp_http_opts o;
    opts_for(f, &o);
    o.retry.max_attempts = 2;
    af_exporter *e = make(&o);
    assert_int_equal(af_exporter_export(e, f->ptrs, 2, in_ms(5000)), AF_EEXPORT);
    assert_int_equal(af_test_http_receiver_requests(f->rx), 2);
    af_exporter_health h;
    af_exporter_health_get(e, &h);
    assert_int_equal(h.spans_failed, 2);
    assert_int_equal(h.consecutive_failures, 1);
    assert_non_null(strstr(h.last_error, "HTTP 504"));
    af_exporter_free(e);
}

static void test_400_not_retried(void **state)
{
    fixture *f = *state;
    /* google.rpc.Status{code: 3, message: "bad span"} in protobuf. */
    static const uint8_t status_pb[] = {0x08, 0x03, 0x12, 0x08, 'b', 'a',
                                        'd',  ' ',  's',  'p',  'a', 'n'};
    af_test_http_reply script[] = {{.status = 400,
                                    .headers = "Content-Type: application/x-protobuf\r\n",
                                    .body = status_pb,
                                    .body_len = sizeof(status_pb)}};
    af_test_http_receiver_script(f->rx, script, 1);
    af_otlp_http_opts o;
    opts_for(f, &o);
    af_exporter *e = make(&o);
    assert_int_equal(af_exporter_export(e, f->ptrs, 2, in_ms(5000)), AF_EEXPORT);
    assert_int_equal(af_test_http_receiver_requests(f->rx), 1);
    af_exporter_health h;
    af_exporter_health_get(e, &h);
    assert_non_null(strstr(h.last_error, "HTTP 400"));
    assert_non_null(strstr(h.last_error, "bad span"));
    assert_int_equal(h.retries, 0);
    assert_int_equal(h.spans_failed, 2);
    assert_true(h.last_failure_ns > 0);

    /* A later success resets the failure streak. */
    assert_int_equal(af_exporter_export(e, f->ptrs, 1, in_ms(5000)), 0);
    af_exporter_health_get(e, &h);
    assert_int_equal(h.consecutive_failures, 0);
    assert_int_equal(h.spans_exported, 1);
    af_exporter_free(e);
}

static void test_connection_refused(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/traces", af_test_closed_port());
    af_otlp_http_opts o;
    af_otlp_http_opts_init(&o);
    o.endpoint = url;
    o.timeout_ms = 3000;
    o.retry.initial_backoff_ms = 20;
    o.retry.max_backoff_ms = 40;
    af_exporter *e = make(&o);
    uint64_t t0 = af_monotonic_ns();
    assert_int_equal(af_exporter_export(e, NULL, 0, in_ms(100)), 0);
    const af_span_data *one[1];
    af_span_data s;
    memset(&s, 0, sizeof(s));
    s.trace_state = s.name = s.status_message = "";
    s.scope = &scope;
    one[0] = &s;
    af_resource *r = NULL;
    assert_int_equal(af_resource_new_raw(NULL, 0, &r), 0);
    s.resource = r;
    int rc = af_exporter_export(e, one, 1, UINT64_MAX);
    uint64_t elapsed = af_monotonic_ns() - t0;
    assert_int_equal(rc, AF_EEXPORT);
    af_exporter_health h;
    af_exporter_health_get(e, &h);
    assert_int_equal(h.retries, 4); /* max_attempts 5 */
    assert_int_equal(h.spans_failed, 1);
    assert_true(elapsed < 3000 * MS);

    /* Unlimited attempts: the export deadline bounds the whole thing. */
    af_exporter_free(e);
    o.retry.max_attempts = 1000000;
    o.timeout_ms = 400;
    e = make(&o);
    t0 = af_monotonic_ns();
    assert_true(af_exporter_export(e, one, 1, UINT64_MAX) < 0);
    elapsed = af_monotonic_ns() - t0;
    /* Bounded by the deadline, not by a million attempts: seconds of slack for a loaded
     * machine, still far below what the retries would take without the deadline. */
    assert_true(elapsed < 10000 * MS);
    af_exporter_health_get(e, &h);
    assert_true(h.retries >= 1);
    af_exporter_free(e);
    af_resource_free(r);
}

static void test_slow_receiver_times_out(void **state)
{
    fixture *f = *state;
    af_test_http_reply script[] = {{.status = 200, .delay_ms = 5000}};
    af_test_http_receiver_script(f->rx, script, 1);
    af_otlp_http_opts o;
    opts_for(f, &o);
    o.timeout_ms = 300;
    af_exporter *e = make(&o);
    uint64_t t0 = af_monotonic_ns();
    int rc = af_exporter_export(e, f->ptrs, 1, in_ms(10000));
    uint64_t elapsed = af_monotonic_ns() - t0;
    assert_int_equal(rc, AF_ETIMEDOUT);
    assert_true(elapsed < 4000 * MS); /* the receiver would answer after 5 s */
    af_exporter_health h;
    af_exporter_health_get(e, &h);
    assert_int_equal(h.spans_failed, 1);
    /* The caller's deadline counts too when it is the nearer one. */
    o.timeout_ms = 0;
    af_exporter_free(e);
    af_test_http_receiver_script(f->rx, script, 1);
    e = make(&o);
    t0 = af_monotonic_ns();
    assert_int_equal(af_exporter_export(e, f->ptrs, 1, in_ms(300)), AF_ETIMEDOUT);
    assert_true(af_monotonic_ns() - t0 < (300 + 500) * MS);
    af_exporter_free(e);
}

typedef struct export_job {
    af_exporter *e;
    fixture *f;
    int rc;
} export_job;

static void *export_thread(void *arg)
{
    export_job *j = arg;
    j->rc = af_exporter_export(j->e, j->f->ptrs, 1, in_ms(30000));
    return NULL;
}

/* Starts an export on a thread, waits until the receiver saw it, shuts down, and checks that
 * both the shutdown and the export return promptly with AF_ESHUTDOWN. */
static void shutdown_while_exporting(fixture *f, const af_test_http_reply *reply)
{
    af_test_http_receiver_script(f->rx, reply, 1);
    af_otlp_http_opts o;
    opts_for(f, &o);
    o.timeout_ms = 30000;
    export_job j = {.e = make(&o), .f = f, .rc = 1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, export_thread, &j), 0);
    assert_int_equal(af_test_http_receiver_wait(f->rx, 1, 10000), 1);
    uint64_t t0 = af_monotonic_ns();
    assert_int_equal(af_exporter_shutdown(j.e, in_ms(2000)), 0);
    pthread_join(t, NULL);
    uint64_t elapsed = af_monotonic_ns() - t0;
    assert_true(elapsed < 1000 * MS);
    assert_int_equal(j.rc, AF_ESHUTDOWN);
    assert_int_equal(af_exporter_export(j.e, f->ptrs, 1, in_ms(1000)), AF_ESHUTDOWN);
    assert_int_equal(af_test_http_receiver_requests(f->rx), 1);
    af_exporter_free(j.e);
}

static void test_shutdown_interrupts_retry_wait(void **state)
{
    af_test_http_reply r = {.status = 503, .headers = "Retry-After: 20\r\n"};
    shutdown_while_exporting(*state, &r);
}

static void test_shutdown_interrupts_request(void **state)
{
    af_test_http_reply r = {.status = 200, .delay_ms = 20000};
    shutdown_while_exporting(*state, &r);
}

static void test_shutdown_idle(void **state)
{
    fixture *f = *state;
    af_otlp_http_opts o;
    opts_for(f, &o);
    af_exporter *e = make(&o);
    assert_int_equal(af_exporter_shutdown(e, in_ms(1000)), 0);
    assert_int_equal(af_exporter_export(e, f->ptrs, 1, in_ms(1000)), AF_ESHUTDOWN);
    assert_int_equal(af_test_http_receiver_requests(f->rx), 0);
    af_exporter_free(e);
}

/* A provider exporting through a batch processor to the fixture's receiver. */
static af_tracer_provider *otlp_provider(fixture *f, uint32_t timeout_ms, uint32_t batch,
                                         af_tracer **t)
{
    af_tracer_provider_opts po;
    af_tracer_provider_opts_init(&po);
    po.sampler = af_sampler_always_on();
    af_tracer_provider *p = NULL;
    assert_int_equal(af_tracer_provider_new(&po, &p), 0);
    af_otlp_http_opts o;
    opts_for(f, &o);
    o.timeout_ms = timeout_ms;
    af_batch_processor_opts bo;
    af_batch_processor_opts_init(&bo);
    bo.max_export_batch_size = batch;
    bo.schedule_delay_ms = 3600000; /* only full batches, flush and shutdown export */
    af_span_processor *proc = NULL;
    assert_int_equal(af_batch_processor_new(make(&o), &bo, &proc), 0);
    assert_int_equal(af_tracer_provider_add_processor(p, proc), 0);
    *t = af_tracer_provider_get_tracer(p, "otlp-test", NULL, NULL);
    return p;
}

static void emit(af_tracer *t, int n)
{
    for (int i = 0; i < n; i++)
        af_span_end(af_span_start(t, "op", NULL));
}

/* Issue 12 (5): force_flush and shutdown returned 0 although the export they waited for
 * failed. A collector that never answers is bounded by the exporter's timeout. */
static void test_provider_reports_failed_exports(void **state)
{
    fixture *f = *state;
    af_test_http_reply script[] = {{.status = 400}, {.status = 500}, {.delay_ms = 20000}};
    af_test_http_receiver_script(f->rx, script, 3);
    af_tracer *t;
    af_tracer_provider *p = otlp_provider(f, 300, 512, &t);
    af_test_log_capture_begin(); /* the exporter warns about each failure */
    emit(t, 1);
    assert_int_equal(af_tracer_provider_force_flush(p, 5000), AF_EEXPORT);
    emit(t, 1);
    assert_int_equal(af_tracer_provider_force_flush(p, 5000), AF_EEXPORT);
    emit(t, 1);
    assert_int_equal(af_tracer_provider_force_flush(p, 5000), AF_ETIMEDOUT);
    emit(t, 1);
    assert_int_equal(af_tracer_provider_force_flush(p, 5000), 0); /* the script is used up */

    af_test_http_reply fail500 = {.status = 500};
    af_test_http_receiver_script(f->rx, &fail500, 1);
    emit(t, 1);
    assert_int_equal(af_tracer_provider_shutdown(p, 5000), AF_EEXPORT);
    af_tracer_provider_free(p);

    af_test_http_reply hung = {.delay_ms = 20000};
    af_test_http_receiver_script(f->rx, &hung, 1);
    p = otlp_provider(f, 300, 512, &t);
    emit(t, 1);
    assert_int_equal(af_tracer_provider_shutdown(p, 5000), AF_ETIMEDOUT);
    af_tracer_provider_free(p);
    af_test_log_capture_end();
}

static af_tracer_provider *fork_provider(void *ctx, af_tracer **t)
{
    return otlp_provider(ctx, 30000, 1, t);
}

/* Issue 12 (4c): a child forked while the parent's export waited for a slow collector
 * inherited libcurl handles in the middle of that request, so every export of its own failed
 * ("libcurl refused the request"), and its shutdown waited for the parent's export. */
static void test_fork_during_export(void **state)
{
    fixture *f = *state;
    af_test_fork_during_export(f->rx, fork_provider, f, 3);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void test_partial_success(void **state)
{
    fixture *f = *state;
    /* ExportTraceServiceResponse{partial_success{rejected_spans: 2, error_message: "quota"}} */
    static const uint8_t body[] = {0x0a, 0x09, 0x08, 0x02, 0x12, 0x05, 'q', 'u', 'o', 't', 'a'};
    af_test_http_reply r = {.status = 200,
                            .headers = "Content-Type: application/x-protobuf\r\n",
                            .body = body,
                            .body_len = sizeof(body)};
    af_test_http_reply script[] = {r, r};
    af_test_http_receiver_script(f->rx, script, 2);
    af_otlp_http_opts o;
    opts_for(f, &o);
    af_exporter *e = make(&o);
    af_test_log_capture_begin();
    assert_int_equal(af_exporter_export(e, f->ptrs, 3, in_ms(5000)), 0);
    assert_int_equal(af_exporter_export(e, f->ptrs, 3, in_ms(5000)), 0);
    const char *log = af_test_log_capture_text();
    /* One warning per 10 s at most, naming the count and the collector's message. */
    assert_int_equal(count(log, "rejected 2 of 3 spans"), 1);
    assert_non_null(strstr(log, "quota"));
    af_test_log_capture_end();
    assert_int_equal(af_test_http_receiver_requests(f->rx), 2);
    af_exporter_health h;
    af_exporter_health_get(e, &h);
    assert_int_equal(h.spans_rejected, 4);
    assert_int_equal(h.spans_exported, 2);
    assert_int_equal(h.retries, 0);
    assert_int_equal(h.spans_failed, 0);
    af_exporter_free(e);
}

static void test_response_too_large(void **state)
{
    fixture *f = *state;
    af_test_http_reply script[] = {{.status = 200, .filler_len = 5u * 1024 * 1024}};
    af_test_http_receiver_script(f->rx, script, 1);
    af_otlp_http_opts o;
    opts_for(f, &o);
    af_exporter *e = make(&o);
    assert_int_equal(af_exporter_export(e, f->ptrs, 1, in_ms(5000)), AF_EEXPORT);
    assert_int_equal(af_test_http_receiver_requests(f->rx), 1);
    af_exporter_health h;
    af_exporter_health_get(e, &h);
    assert_non_null(strstr(h.last_error, "4 MiB"));
    assert_int_equal(h.retries, 0);
    af_exporter_free(e);
}

static void test_request_too_large(void **state)
{
    fixture *f = *state;
    size_t big = 65u * 1024 * 1024;
    char *v = malloc(big + 1);
    assert_non_null(v);
    memset(v, 'a', big);
    v[big] = '\0';
    af_attr a = AF_STRN("blob", v, big);
    af_span_data s = f->spans[0];
    s.attrs = &a;
    s.n_attrs = 1;
    const af_span_data *one[] = {&s};
    af_otlp_http_opts o;
    opts_for(f, &o);
    af_exporter *e = make(&o);
    assert_int_equal(af_exporter_export(e, one, 1, in_ms(10000)), -EMSGSIZE);
    assert_int_equal(af_test_http_receiver_requests(f->rx), 0);
    af_exporter_health h;
    af_exporter_health_get(e, &h);
    assert_int_equal(h.spans_failed, 1);
    assert_non_null(strstr(h.last_error, "64 MiB"));
    free(v);
    af_exporter_free(e);
}

static void test_closes_without_response(void **state)
{
    fixture *f = *state;
    af_test_http_reply script[] = {{.close_without_response = true}, {.status = 200}};
    af_test_http_receiver_script(f->rx, script, 2);
    af_otlp_http_opts o;
    opts_for(f, &o);
    af_exporter *e = make(&o);
    assert_int_equal(af_exporter_export(e, f->ptrs, 1, in_ms(5000)), 0);
    assert_int_equal(af_test_http_receiver_requests(f->rx), 2);
    assert_int_equal(af_test_http_receiver_connections(f->rx), 2);
    af_exporter_free(e);
}

/* ---- TLS ------------------------------------------------------------------------------- */

typedef struct certs {
    char dir[64];
    char ca[128], srv_crt[128], srv_key[128], cli_crt[128], cli_key[128];
} certs;

/* A CA, a server certificate for 127.0.0.1 and a client certificate, made with the openssl
 * CLI in a fresh temporary directory. False when openssl is not installed. */
static bool make_certs(certs *c)
{
    if (system("openssl version >/dev/null 2>&1") != 0)
        return false;
    snprintf(c->dir, sizeof(c->dir), "/tmp/af-tls-XXXXXX");
    assert_non_null(mkdtemp(c->dir));
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "(cd %s && K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes' && "
             "openssl req -x509 $K -keyout ca.key -out ca.crt -days 2 -subj /CN=af-test-ca && "
             "openssl req $K -keyout srv.key -out srv.csr -subj /CN=localhost && "
             "echo 'subjectAltName=IP:127.0.0.1,DNS:localhost' > srv.ext && "
             "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
             "-out srv.crt -days 2 -extfile srv.ext && "
             "openssl req $K -keyout cli.key -out cli.csr -subj /CN=af-test-client && "
             "echo 'extendedKeyUsage=clientAuth' > cli.ext && "
             "openssl x509 -req -in cli.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
             "-out cli.crt -days 2 -extfile cli.ext) >/dev/null 2>&1",
             c->dir);
    assert_int_equal(system(cmd), 0);
    snprintf(c->ca, sizeof(c->ca), "%s/ca.crt", c->dir);
    snprintf(c->srv_crt, sizeof(c->srv_crt), "%s/srv.crt", c->dir);
    snprintf(c->srv_key, sizeof(c->srv_key), "%s/srv.key", c->dir);
    snprintf(c->cli_crt, sizeof(c->cli_crt), "%s/cli.crt", c->dir);
    snprintf(c->cli_key, sizeof(c->cli_key), "%s/cli.key", c->dir);
    return true;
}

static void remove_certs(certs *c)
{
    static const char *const files[] = {"ca.key",  "ca.crt",  "ca.srl",  "srv.key",
                                        "srv.csr", "srv.ext", "srv.crt", "cli.key",
                                        "cli.csr", "cli.ext", "cli.crt"};
    char p[160];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", c->dir, files[i]);
        unlink(p);
    }
    rmdir(c->dir);
}

static void test_https(void **state)
{
    fixture *f = *state;
    certs c;
    if (!make_certs(&c)) {
        print_message("openssl CLI not found: cannot make test certificates\n");
        skip();
    }
    af_test_http_receiver_opts ro = {.tls_cert = c.srv_crt, .tls_key = c.srv_key};
    af_test_http_receiver *rx = NULL;
    assert_int_equal(af_test_http_receiver_start(&ro, &rx), 0);
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/v1/traces", af_test_http_receiver_port(rx));
    af_otlp_http_opts o;
    opts_for(f, &o);
    o.endpoint = url;
    o.gzip = true;
    o.tls.ca_file = c.ca;
    af_exporter *e = make(&o);
    assert_int_equal(af_exporter_export(e, f->ptrs, 2, in_ms(5000)), 0);
    assert_int_equal(af_exporter_export(e, f->ptrs, 1, in_ms(5000)), 0);
    assert_int_equal(af_test_http_receiver_requests(rx), 2);
    assert_int_equal(af_test_http_receiver_connections(rx), 1);
    af_buf want;
    encoded(f, 2, false, &want);
    const af_test_http_request *q = af_test_http_receiver_request(rx, 0);
    assert_int_equal(q->body_len, want.len);
    assert_memory_equal(q->body, want.data, want.len);
    af__buf_clear(&want);
    af_exporter_free(e);

    /* Without the test CA the server is not trusted: a failure, and not one to retry. */
    o.tls.ca_file = NULL;
    e = make(&o);
    assert_int_equal(af_exporter_export(e, f->ptrs, 1, in_ms(5000)), AF_EEXPORT);
    af_exporter_health h;
    af_exporter_health_get(e, &h);
    assert_int_equal(h.retries, 0);
    assert_int_equal(af_test_http_receiver_requests(rx), 2);
    af_exporter_free(e);
    af_test_http_receiver_stop(rx);
    remove_certs(&c);
}

static void test_mtls(void **state)
{
    fixture *f = *state;
    certs c;
    if (!make_certs(&c)) {
        print_message("openssl CLI not found: cannot make test certificates\n");
        skip();
    }
    af_test_http_receiver_opts ro = {
        .tls_cert = c.srv_crt, .tls_key = c.srv_key, .tls_client_ca = c.ca};
    af_test_http_receiver *rx = NULL;
    assert_int_equal(af_test_http_receiver_start(&ro, &rx), 0);
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/v1/traces", af_test_http_receiver_port(rx));
    af_otlp_http_opts o;
    opts_for(f, &o);
    o.endpoint = url;
    o.tls.ca_file = c.ca;
    o.tls.client_cert = c.cli_crt;
    o.tls.client_key = c.cli_key;
    af_exporter *e = make(&o);
    assert_int_equal(af_exporter_export(e, f->ptrs, 1, in_ms(5000)), 0);
    const af_test_http_request *q = af_test_http_receiver_request(rx, 0);
    assert_non_null(q);
    assert_true(q->client_cert);
    af_exporter_free(e);

    /* Without a client certificate the server refuses the handshake. */
    o.tls.client_cert = o.tls.client_key = NULL;
    o.timeout_ms = 1000;
    e = make(&o);
    assert_true(af_exporter_export(e, f->ptrs, 1, in_ms(1000)) < 0);
    assert_int_equal(af_test_http_receiver_requests(rx), 1);
    af_exporter_free(e);
    af_test_http_receiver_stop(rx);
    remove_certs(&c);
}

/* ---- configuration ---------------------------------------------------------------------- */

static void test_traces_url(void **state)
{
    (void)state;
    char out[128];
    assert_int_equal(af_otlp_traces_url("http://c:4318", false, out, sizeof(out)), 0);
    assert_string_equal(out, "http://c:4318/v1/traces");
    assert_int_equal(af_otlp_traces_url("http://c:4318/", false, out, sizeof(out)), 0);
    assert_string_equal(out, "http://c:4318/v1/traces");
    assert_int_equal(af_otlp_traces_url("https://c:4318/mycollector/", false, out, sizeof(out)), 0);
    assert_string_equal(out, "https://c:4318/mycollector/v1/traces");
    assert_int_equal(af_otlp_traces_url("http://c:4318/base//", false, out, sizeof(out)), 0);
    assert_string_equal(out, "http://c:4318/base/v1/traces");
    assert_int_equal(af_otlp_traces_url("http://c:4318", true, out, sizeof(out)), 0);
    assert_string_equal(out, "http://c:4318/");
    assert_int_equal(af_otlp_traces_url("http://c:4318/custom/path", true, out, sizeof(out)), 0);
    assert_string_equal(out, "http://c:4318/custom/path");
    assert_int_equal(af_otlp_traces_url("ftp://c/", false, out, sizeof(out)), -EINVAL);
    assert_int_equal(af_otlp_traces_url("localhost:4318", false, out, sizeof(out)), -EINVAL);
    assert_int_equal(af_otlp_traces_url("http://", false, out, sizeof(out)), -EINVAL);
    assert_int_equal(af_otlp_traces_url("http://c:4318", false, out, 10), -ENOSPC);
}

static const char *const otlp_vars[] = {
    "OTEL_EXPORTER_OTLP_ENDPOINT",          "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",           "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_PROTOCOL",          "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TIMEOUT",           "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",       "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",       "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof(otlp_vars) / sizeof(otlp_vars[0]); i++)
        unsetenv(otlp_vars[i]);
}

static void test_opts_from_env(void **state)
{
    (void)state;
    clear_env();
    af_otlp_http_opts o;
    af_otlp_http_opts_init(&o);
    assert_null(o.endpoint);
    assert_int_equal(o.protocol, AF_OTLP_HTTP_PROTOBUF);
    assert_false(o.gzip);
    assert_int_equal(o.timeout_ms, 10000);
    assert_int_equal(o.retry.max_attempts, 5);
    assert_int_equal(o.retry.initial_backoff_ms, 1000);
    assert_int_equal(o.retry.max_backoff_ms, 5000);

    setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", 1);
    setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "HTTP/JSON", 1);
    setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1);
    setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "0", 1);
    setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/ca.pem", 1);
    af_otlp_http_opts_init(&o);
    assert_int_equal(o.protocol, AF_OTLP_HTTP_JSON);
    assert_true(o.gzip);
    assert_int_equal(o.timeout_ms, 0);
    assert_string_equal(o.tls.ca_file, "/etc/ca.pem");

    af_test_log_capture_begin();
    setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc", 1);
    setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "-5", 1);
    setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "soon", 1);
    setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli", 1);
    af_otlp_http_opts_init(&o);
    const char *log = af_test_log_capture_text();
    assert_int_equal(o.protocol, AF_OTLP_HTTP_PROTOBUF);
    assert_non_null(strstr(log, "grpc"));
    assert_int_equal(o.timeout_ms, 10000);
    assert_non_null(strstr(log, "OTEL_EXPORTER_OTLP_TIMEOUT"));
    assert_non_null(strstr(log, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"));
    assert_false(o.gzip);
    assert_non_null(strstr(log, "brotli"));
    af_test_log_capture_end();
    clear_env();
}

static void test_endpoint_and_headers_from_env(void **state)
{
    fixture *f = *state;
    clear_env();
    char base[128];
    unsigned port = af_test_http_receiver_port(f->rx);
    snprintf(base, sizeof(base), "http://127.0.0.1:%u/base/", port);
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", base, 1);
    setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-a=b%20c, broken ,x-honeycomb-team=from-env,x-e=1", 1);
    af_otlp_http_opts o;
    af_otlp_http_opts_init(&o);
    af_header_kv h[] = {{"X-Honeycomb-Team", "from-code"}};
    o.headers = h;
    o.n_headers = 1;
    af_test_log_capture_begin();
    af_exporter *e = make(&o);
    const char *log = af_test_log_capture_text();
    assert_non_null(strstr(log, "OTEL_EXPORTER_OTLP_HEADERS"));
    assert_null(strstr(log, "from-env"));
    af_test_log_capture_end();
    assert_int_equal(af_exporter_export(e, f->ptrs, 1, in_ms(5000)), 0);
    const af_test_http_request *q = af_test_http_receiver_request(f->rx, 0);
    assert_non_null(q);
    assert_string_equal(q->path, "/base/v1/traces");
    assert_string_equal(af_test_http_request_header(q, "x-a"), "b c");
    assert_string_equal(af_test_http_request_header(q, "x-e"), "1");
    assert_string_equal(af_test_http_request_header(q, "x-honeycomb-team"), "from-code");
    af_exporter_free(e);

    /* The per-signal endpoint is used as-is and beats the generic one. */
    char as_is[128];
    snprintf(as_is, sizeof(as_is), "http://127.0.0.1:%u/custom", port);
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", as_is, 1);
    af_otlp_http_opts_init(&o);
    e = make(&o);
    assert_int_equal(af_exporter_export(e, f->ptrs, 1, in_ms(5000)), 0);
    q = af_test_http_receiver_request(f->rx, 1);
    assert_non_null(q);
    assert_string_equal(q->path, "/custom");
    af_exporter_free(e);
    clear_env();
}

static void test_invalid_options(void **state)
{
    fixture *f = *state;
    clear_env();
    af_otlp_http_opts o;
    af_exporter *e = (af_exporter *)1;
    opts_for(f, &o);
    o.endpoint = "grpc://127.0.0.1:4317";
    af_test_log_capture_begin();
    assert_int_equal(af_otlp_http_exporter_new(&o, &e), -EINVAL);
    assert_null(e);
    opts_for(f, &o);
    af_header_kv bad[] = {{"x-ok", "line\r\nInjected: 1"}};
    o.headers = bad;
    o.n_headers = 1;
    assert_int_equal(af_otlp_http_exporter_new(&o, &e), -EINVAL);
    opts_for(f, &o);
    o.tls.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(af_otlp_http_exporter_new(&o, &e), -EINVAL);
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318", 1);
    af_otlp_http_opts_init(&o);
    assert_int_equal(af_otlp_http_exporter_new(&o, &e), -EINVAL);
    const char *log = af_test_log_capture_text();
    assert_non_null(strstr(log, "/nonexistent/ca.pem"));
    assert_null(strstr(log, "Injected"));
    af_test_log_capture_end();
    clear_env();
}

static void test_no_secrets_in_health_or_log(void **state)
{
    fixture *f = *state;
    char url[160];
    snprintf(url, sizeof(url), "http://user:hunter2@127.0.0.1:%u/v1/traces?token=abc#frag",
             af_test_http_receiver_port(f->rx));
    af_test_http_reply script[] = {{.status = 500, .body = "boom", .body_len = 4}};
    af_test_http_receiver_script(f->rx, script, 1);
    af_otlp_http_opts o;
    opts_for(f, &o);
    o.endpoint = url;
    af_header_kv h[] = {{"x-api-key", "sk-very-secret"}};
    o.headers = h;
    o.n_headers = 1;
    af_test_log_capture_begin();
    af_log_set_level(AF_LOG_DEBUG);
    af_exporter *e = make(&o);
    assert_int_equal(af_exporter_export(e, f->ptrs, 1, in_ms(5000)), AF_EEXPORT);
    const char *log = af_test_log_capture_text();
    assert_non_null(strstr(log, "HTTP 500: boom"));
    assert_null(strstr(log, "hunter2"));
    assert_null(strstr(log, "token=abc"));
    assert_null(strstr(log, "sk-very-secret"));
    af_log_set_level(AF_LOG_INFO);
    af_test_log_capture_end();
    af_exporter_health hh;
    af_exporter_health_get(e, &hh);
    char want[128];
    snprintf(want, sizeof(want), "http://127.0.0.1:%u/v1/traces",
             af_test_http_receiver_port(f->rx));
    assert_string_equal(hh.endpoint, want);
    assert_null(strstr(hh.last_error, "hunter2"));
    assert_string_equal(hh.last_error, "HTTP 500: boom");
    /* 500 is not retryable. */
    assert_int_equal(af_test_http_receiver_requests(f->rx), 1);
    const af_test_http_request *q = af_test_http_receiver_request(f->rx, 0);
    assert_string_equal(q->path, "/v1/traces?token=abc");
    /* Userinfo still authenticates (Basic user:hunter2); it is only kept out of health/logs. */
    assert_string_equal(af_test_http_request_header(q, "authorization"), "Basic dXNlcjpodW50ZXIy");
    assert_string_equal(af_test_http_request_header(q, "x-api-key"), "sk-very-secret");
    af_exporter_free(e);
}

typedef struct health_job {
    af_exporter *e;
    atomic_bool stop;
    bool went_backwards; /* counters are monotonic; checked on the main thread */
} health_job;

static void *health_reader(void *arg)
{
    health_job *j = arg;
    uint64_t last = 0;
    while (!atomic_load(&j->stop)) {
        af_exporter_health h;
        af_exporter_health_get(j->e, &h);
        if (h.spans_exported < last)
            j->went_backwards = true;
        last = h.spans_exported;
    }
    return NULL;
}

/* Health is read from other threads while the exporting thread updates it (TSan checks). */
static void test_health_concurrent(void **state)
{
    fixture *f = *state;
    af_otlp_http_opts o;
    opts_for(f, &o);
    health_job j = {.e = make(&o), .went_backwards = false};
    atomic_init(&j.stop, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, health_reader, &j), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(af_exporter_export(j.e, f->ptrs, 2, in_ms(5000)), 0);
    atomic_store(&j.stop, true);
    pthread_join(t, NULL);
    assert_false(j.went_backwards);
    af_exporter_health h;
    af_exporter_health_get(j.e, &h);
    assert_int_equal(h.spans_exported, 20);
    af_exporter_free(j.e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_success_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gzip_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_protocol, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_503_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_past_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attempts_exhausted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_400_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_receiver_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_interrupts_retry_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_interrupts_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_provider_reports_failed_exports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fork_during_export, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closes_without_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_https, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mtls, setup, teardown),
        cmocka_unit_test(test_traces_url),
        cmocka_unit_test(test_opts_from_env),
        cmocka_unit_test_setup_teardown(test_endpoint_and_headers_from_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_secrets_in_health_or_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_concurrent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
