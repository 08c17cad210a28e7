/*
 * Tracing across the daemon: the API middleware's spans, B3 propagation in, and W3C context
 * carried into the OTLP export, decoded by an independent implementation (decode_spans.js).
 *
 * Runs the real daemon (argv[1]) through tests/integration/harness.h; every wait polls with a
 * deadline.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "http_receiver.h"
#include "harness.h"

static void test_trace_middleware(void **state)
{
    (void)state;
    int p = g_shared.port;
    const char *tid = "4bf92f3577b34da6a3ce929d0e0e4736";
    const char *h[] = {"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                       "baggage: tenant=acme", NULL};
    resp r = http(p, "GET", "/api/v1/gpus", NULL, h);
    assert_int_equal(r.status, 200);
    char tr[128];
    assert_non_null(header(&r, "traceresponse", tr, sizeof(tr)));
    assert_int_equal(strncmp(tr, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36), 0);
    /* The same value under the W3C Server-Timing binding (metric "trace"). */
    char st[128], want[160];
    assert_non_null(header(&r, "Server-Timing", st, sizeof(st)));
    snprintf(want, sizeof(want), "trace;desc=%s", tr);
    assert_string_equal(st, want);
    free(r.body);

    /* The store is fed by a batch processor with a short delay: poll. */
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/traces/%s", tid);
    json_t *j = NULL;
    uint64_t deadline = now_ms() + 10000;
    while (now_ms() < deadline) {
        resp q = http(p, "GET", path, NULL, NULL);
        if (q.status == 200) {
            j = json_of(&q);
            free(q.body);
            if (json_array_size(json_object_get(j, "spans")) >= 2)
                break;
            json_decref(j);
            j = NULL;
        } else {
            free(q.body);
        }
        pause_ms(50);
    }
    assert_non_null(j);
    json_t *spans = json_object_get(j, "spans");
    bool server = false, child = false;
    for (size_t i = 0; i < json_array_size(spans); i++) {
        json_t *s = json_array_get(spans, i);
        const char *name = json_string_value(json_object_get(s, "name"));
        if (strcmp(name, "api_requests.GET /api/v1/gpus") == 0) {
            server = true;
            assert_int_equal(json_integer_value(json_object_get(s, "kind")), 2);
            assert_string_equal(json_string_value(json_object_get(s, "parentSpanId")),
                                "00f067aa0ba902b7");
            char *attrs = json_dumps(json_object_get(s, "attributes"), 0);
            bool has_status = attrs && strstr(attrs, "http.status_code");
            free(attrs);
            assert_true(has_status);
        }
        if (strcmp(name, "api_requests.list_gpus") == 0)
            child = true;
    }
    assert_true(server);
    assert_true(child);
    json_decref(j);

    j = get_json(p, "/api/v1/traces?operation=list_gpus&service=agentaflow-it", 200);
    assert_true(json_integer_value(json_object_get(j, "total")) >= 1);
    json_decref(j);
    j = get_json(p, "/api/v1/traces?service=nobody", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 0);
    json_decref(j);
    j = get_json(p, "/api/v1/traces?min_duration_ms=100000", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 0);
    json_decref(j);

    /* A 4xx is not an error on a SERVER span. */
    resp bad = http(p, "GET", "/api/v1/gpu/none/metrics", NULL, NULL);
    free(bad.body);
    json_t *errs = get_json(p, "/api/v1/traces?error=true&operation=gpu_metrics", 200);
    assert_int_equal(json_integer_value(json_object_get(errs, "total")), 0);
    json_decref(errs);
}

/* OTEL_PROPAGATORS=b3multi,b3: the middleware continues a trace that a service mesh sends as
 * B3 (multi headers here, the single header next); W3C tracecontext is then not read. */
static void test_b3_propagation(void **state)
{
    (void)state;
    const char *env[] = {"OTEL_PROPAGATORS=b3multi,b3", NULL};
    daemon_t d;
    daemon_start(&d, NULL, NULL, env);
    const char *multi[] = {"X-B3-TraceId: 463ac35c9f6413ad48485a3953bb6124",
                           "X-B3-SpanId: a2fb4a1d1a96d312", "X-B3-Sampled: 1", NULL};
    resp r = http(d.port, "GET", "/api/v1/gpus", NULL, multi);
    assert_int_equal(r.status, 200);
    char tr[128];
    assert_non_null(header(&r, "traceresponse", tr, sizeof(tr)));
    assert_int_equal(strncmp(tr, "00-463ac35c9f6413ad48485a3953bb6124-", 36), 0);
    free(r.body);
    const char *single[] = {"b3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1", NULL};
    r = http(d.port, "GET", "/api/v1/gpus", NULL, single);
    assert_non_null(header(&r, "traceresponse", tr, sizeof(tr)));
    assert_int_equal(strncmp(tr, "00-80f198ee56343ba864fe8b2a57d3eff7-", 36), 0);
    free(r.body);
    const char *w3c[] = {"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                         NULL};
    r = http(d.port, "GET", "/api/v1/gpus", NULL, w3c);
    assert_non_null(header(&r, "traceresponse", tr, sizeof(tr)));
    assert_int_not_equal(strncmp(tr, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36), 0);
    free(r.body);
    assert_int_equal(daemon_stop(&d), 0);
}

static void test_otlp_propagation(void **state)
{
    (void)state;
    af_test_http_receiver *rcv = NULL;
    assert_int_equal(af_test_http_receiver_start(NULL, &rcv), 0);
    char cfg[1024];
    snprintf(cfg, sizeof(cfg),
             "service_name: agentaflow-otlp-it\n"
             "tracing:\n  exporters:\n    otlp_http:\n      enabled: true\n"
             "      endpoint: http://127.0.0.1:%u/v1/traces\n"
             "performance:\n  schedule_delay: 100ms\n"
             "server:\n  load_generator: false\n",
             af_test_http_receiver_port(rcv));
    daemon_t d;
    daemon_start(&d, cfg, NULL, NULL);
    const char *h[] = {"traceparent: 00-aaaabbbbccccddddeeeeffff00001111-2222333344445555-01",
                       NULL};
    resp r = http(d.port, "GET", "/api/v1/system/stats", NULL, h);
    assert_int_equal(r.status, 200);
    free(r.body);
    /* Wait for a batch that holds the server span. */
    char path[512];
    snprintf(path, sizeof(path), "%s/otlp.pb", g_tmp);
    bool found = false;
    uint64_t deadline = now_ms() + 15000;
    size_t seen = 0;
    while (!found && now_ms() < deadline) {
        size_t n = af_test_http_receiver_wait(rcv, seen + 1, 200);
        for (; seen < n; seen++) {
            const af_test_http_request *q = af_test_http_receiver_request(rcv, seen);
            static const uint8_t want[] = {0xaa, 0xaa, 0xbb, 0xbb, 0xcc, 0xcc, 0xdd, 0xdd};
            if (q->body_len && memmem(q->body, q->body_len, want, sizeof(want))) {
                FILE *f = fopen(path, "wb");
                fwrite(q->body, 1, q->body_len, f);
                fclose(f);
                found = true;
                break;
            }
        }
    }
    assert_true(found);
    assert_int_equal(daemon_stop(&d), 0);
    af_test_http_receiver_stop(rcv);
    const char *node = getenv("AF_NODE");
    const char *script = getenv("AF_DECODE_SCRIPT");
    if (!node || !script || !*node) {
        skip();
        return;
    }
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s' aaaabbbbccccddddeeeeffff00001111 2222333344445555",
             node, script, path);
    assert_int_equal(system(cmd), 0);
}

int main(int argc, char **argv)
{
    int rc = harness_init(argc, argv, "test_daemon_tracing");
    if (rc)
        return rc;
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_trace_middleware),
    };
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_b3_propagation),
        cmocka_unit_test(test_otlp_propagation),
    };
    rc = cmocka_run_group_tests_name("daemon_tracing", shared, shared_daemon_setup,
                                     shared_daemon_teardown);
    rc |= cmocka_run_group_tests_name("daemon_tracing_own", own, NULL, NULL);
    harness_fini();
    return rc;
}
