/*
 * Jaeger (Thrift over HTTP) exporter against the loopback receiver: the body is the encoder's
 * Thrift Batch, headers and path are what the collector expects, 200/202/204 all count as
 * success, one POST per resource, the OTLP retry rules, shutdown and health.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/encode.h"
#include "fork_export.h"
#include "http_receiver.h"

#define MS 1000000ull

static const af_instrumentation_scope scope = {"lib", "1.0", "", NULL, 0};

typedef struct fixture {
    af_test_http_receiver *rx;
    af_resource *res[2];
    af_span_data spans[3];
    const af_span_data *ptrs[3];
    char url[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(af_test_http_receiver_start(NULL, &f->rx), 0);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u/api/traces",
             af_test_http_receiver_port(f->rx));
    assert_int_equal(af_resource_new_raw(AF_ATTRS(AF_STR("service.name", "a")), &f->res[0]), 0);
    assert_int_equal(af_resource_new_raw(AF_ATTRS(AF_STR("service.name", "b")), &f->res[1]), 0);
    for (int i = 0; i < 3; i++) {
        af_span_data *s = &f->spans[i];
        memset(s, 0, sizeof(*s));
        for (int k = 0; k < 16; k++)
            s->trace_id[k] = (uint8_t)(0x10 + k);
        s->span_id[7] = (uint8_t)(i + 1);
        s->trace_flags = 1;
        s->trace_state = "";
        s->name = "op";
        s->kind = AF_SPAN_KIND_SERVER;
        s->start_ns = 1700000000000000000ull;
        s->end_ns = s->start_ns + 5000;
        s->status_message = "";
        s->resource = f->res[0];
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
    af_resource_free(f->res[0]);
    af_resource_free(f->res[1]);
    free(f);
    return 0;
}

static uint64_t in_ms(uint64_t ms)
{
    return af_monotonic_ns() + ms * MS;
}

static af_exporter *make(fixture *f)
{
    af_jaeger_opts o;
    af_jaeger_opts_init(&o);
    o.endpoint = f->url;
    o.retry.initial_backoff_ms = 10;
    o.retry.max_backoff_ms = 20;
    af_exporter *e = NULL;
    assert_int_equal(af_jaeger_exporter_new(&o, &e), 0);
    return e;
}

static void check_body(const af_test_http_request *q, const af_span_data *const *spans, size_t n)
{
    af_buf want;
    af__buf_init(&want);
    assert_int_equal(af__jaeger_thrift_encode(spans, n, &want), 0);
    assert_int_equal(q->body_len, want.len);
    assert_memory_equal(q->body, want.data, want.len);
    af__buf_clear(&want);
}

static void test_accepted(void **state)
{
    fixture *f = *state;
    af_test_http_reply script[] = {{.status = 202}};
    af_test_http_receiver_script(f->rx, script, 1);
    af_exporter *e = make(f);
    assert_string_equal(af_exporter_type(e), "jaeger");
    assert_int_equal(af_exporter_export(e, f->ptrs, 3, in_ms(5000)), 0);
    assert_int_equal(af_test_http_receiver_requests(f->rx), 1);
    const af_test_http_request *q = af_test_http_receiver_request(f->rx, 0);
    assert_string_equal(q->method, "POST");
    assert_string_equal(q->path, "/api/traces");
    assert_string_equal(af_test_http_request_header(q, "content-type"), "application/x-thrift");
    assert_string_equal(af_test_http_request_header(q, "user-agent"),
                        "agentaflow-jaeger-exporter/" AF_VERSION_STRING);
    assert_null(af_test_http_request_header(q, "content-encoding"));
    /* Batch: field 1 (Process) is a struct: type 0x0C, id 0x0001. */
    assert_true(q->body_len > 3);
    assert_int_equal(q->body[0], 0x0C);
    assert_int_equal(q->body[1], 0x00);
    assert_int_equal(q->body[2], 0x01);
    check_body(q, f->ptrs, 3);
    af_exporter_health h;
    af_exporter_health_get(e, &h);
    assert_string_equal(h.type, "jaeger");
    assert_string_equal(h.endpoint, f->url);
    assert_int_equal(h.spans_exported, 3);
    assert_true(h.last_success_ns > 0);
    af_exporter_free(e);
}

static void test_200_and_204_accepted(void **state)
{
    fixture *f = *state;
    af_test_http_reply script[] = {{.status = 200}, {.status = 204}};
    af_test_http_receiver_script(f->rx, script, 2);
    af_exporter *e = make(f);
    assert_int_equal(af_exporter_export(e, f->ptrs, 1, in_ms(5000)), 0);
    assert_int_equal(af_exporter_export(e, f->ptrs, 1, in_ms(5000)), 0);
    assert_int_equal(af_test_http_receiver_requests(f->rx), 2);
    assert_int_equal(af_test_http_receiver_connections(f->rx), 1);
    af_exporter_free(e);
}

static void test_one_batch_per_resource(void **state)
{
    fixture *f = *state;
    f->spans[1].resource = f->res[1];
    af_exporter *e = make(f);
    assert_int_equal(af_exporter_export(e, f->ptrs, 3, in_ms(5000)), 0);
    assert_int_equal(af_test_http_receiver_requests(f->rx), 2);
    const af_span_data *first[] = {&f->spans[0], &f->spans[2]};
    const af_span_data *second[] = {&f->spans[1]};
    check_body(af_test_http_receiver_request(f->rx, 0), first, 2);
    check_body(af_test_http_receiver_request(f->rx, 1), second, 1);
    af_exporter_health h;
    af_exporter_health_get(e, &h);
    assert_int_equal(h.spans_exported, 3);
    af_exporter_free(e);
}

static void test_retry_rules(void **state)
{
    fixture *f = *state;
    af_test_http_reply script[] = {{.status = 503, .headers = "Retry-After: 0\r\n"},
                                   {.status = 202},
                                   {.status = 500, .body = "pipeline error", .body_len = 14}};
    af_test_http_receiver_script(f->rx, script, 3);
    af_exporter *e = make(f);
    assert_int_equal(af_exporter_export(e, f->ptrs, 1, in_ms(5000)), 0);
    assert_int_equal(af_test_http_receiver_requests(f->rx), 2);
    /* 500 is not transient: exactly one more request. */
    assert_int_equal(af_exporter_export(e, f->ptrs, 2, in_ms(5000)), AF_EEXPORT);
    assert_int_equal(af_test_http_receiver_requests(f->rx), 3);
    af_exporter_health h;
    af_exporter_health_get(e, &h);
    assert_int_equal(h.retries, 1);
    assert_int_equal(h.spans_exported, 1);
    assert_int_equal(h.spans_failed, 2);
    assert_int_equal(h.consecutive_failures, 1);
    assert_string_equal(h.last_error, "HTTP 500: pipeline error");
    af_exporter_free(e);
}

static void test_collector_down(void **state)
{
    fixture *f = *state;
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u/api/traces", af_test_closed_port());
    af_jaeger_opts o;
    af_jaeger_opts_init(&o);
    o.endpoint = f->url;
    o.timeout_ms = 300;
    o.retry.max_attempts = 1000;
    o.retry.initial_backoff_ms = 10;
    o.retry.max_backoff_ms = 20;
    af_exporter *e = NULL;
    assert_int_equal(af_jaeger_exporter_new(&o, &e), 0);
    uint64_t t0 = af_monotonic_ns();
    assert_true(af_exporter_export(e, f->ptrs, 3, UINT64_MAX) < 0);
    assert_true(af_monotonic_ns() - t0 < (300 + 300) * MS);
    af_exporter_health h;
    af_exporter_health_get(e, &h);
    assert_true(h.retries >= 1);
    assert_int_equal(h.spans_failed, 3);
    assert_int_equal(af_exporter_shutdown(e, in_ms(1000)), 0);
    assert_int_equal(af_exporter_export(e, f->ptrs, 1, in_ms(1000)), AF_ESHUTDOWN);
    af_exporter_free(e);
}

static af_tracer_provider *jaeger_provider(void *ctx, af_tracer **t)
{
    fixture *f = ctx;
    af_tracer_provider_opts po;
    af_tracer_provider_opts_init(&po);
    po.sampler = af_sampler_always_on();
    af_tracer_provider *p = NULL;
    assert_int_equal(af_tracer_provider_new(&po, &p), 0);
    af_batch_processor_opts bo;
    af_batch_processor_opts_init(&bo);
    bo.max_export_batch_size = 1; /* each span is sent at once */
    af_span_processor *proc = NULL;
    assert_int_equal(af_batch_processor_new(make(f), &bo, &proc), 0);
    assert_int_equal(af_tracer_provider_add_processor(p, proc), 0);
    *t = af_tracer_provider_get_tracer(p, "jaeger-fork", NULL, NULL);
    return p;
}

/* A child forked while the parent's export waits for a slow collector builds its own
 * connection: its spans are accepted and its shutdown does not wait for the parent's export. */
static void test_fork_during_export(void **state)
{
    fixture *f = *state;
    af_test_fork_during_export(f->rx, jaeger_provider, f, 1);
}

static void test_defaults_and_bad_options(void **state)
{
    (void)state;
    af_jaeger_opts o;
    af_jaeger_opts_init(&o);
    assert_null(o.endpoint);
    assert_int_equal(o.timeout_ms, 10000);
    assert_int_equal(o.retry.max_attempts, 5);
    af_exporter *e = NULL;
    /* The default endpoint is a valid URL; construction does not connect. */
    assert_int_equal(af_jaeger_exporter_new(&o, &e), 0);
    af_exporter_health h;
    af_exporter_health_get(e, &h);
    assert_string_equal(h.endpoint, "http://localhost:14268/api/traces");
    af_exporter_free(e);
    o.endpoint = "udp://localhost:6831";
    af_test_log_capture_begin();
    assert_int_equal(af_jaeger_exporter_new(&o, &e), -EINVAL);
    af_test_log_capture_end();
    assert_null(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_200_and_204_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_batch_per_resource, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_collector_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fork_during_export, setup, teardown),
        cmocka_unit_test(test_defaults_and_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
