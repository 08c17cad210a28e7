/*
 * The HTTP API end to end: read, write and error routes, HTTP/1.1 framing (pipelining,
 * chunked bodies, Expect: 100-continue, smuggling shapes), /metrics and bearer-token auth.
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
#include "harness.h"

/* Reads until the text holds `want` (when not NULL) or the server closes; NUL-terminated.
 * Returns the length; *closed tells whether the server closed the connection. */
static size_t read_until(int fd, char *out, size_t cap, const char *want, bool *closed)
{
    size_t len = 0;
    *closed = false;
    out[0] = '\0';
    uint64_t deadline = now_ms() + 10000;
    while (now_ms() < deadline && len + 1 < cap) {
        if (want && strstr(out, want))
            break;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t n = recv(fd, out + len, cap - 1 - len, 0);
        if (n <= 0) {
            *closed = true;
            break;
        }
        len += (size_t)n;
        out[len] = '\0';
    }
    return len;
}

/* One exchange on a fresh connection: send, read until the server closes. */
static char *exchange(const char *request, size_t len)
{
    int fd = tcp_connect(g_shared.port);
    assert_true(fd >= 0);
    send_all(fd, request, len);
    char *out = malloc(1 << 20);
    assert_non_null(out);
    bool closed;
    read_until(fd, out, 1 << 20, NULL, &closed);
    assert_true(closed);
    close(fd);
    return out;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_read_routes(void **state)
{
    (void)state;
    int p = g_shared.port;
    json_t *j = get_json(p, "/health", 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "healthy");
    json_t *comp = json_object_get(j, "components");
    assert_non_null(json_object_get(comp, "tracing"));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(comp, "metrics_collector"), "gpus")), 4);
    json_decref(j);

    j = get_json(p, "/api/v1/gpus", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 4);
    json_t *g0 = json_array_get(json_object_get(j, "gpus"), 0);
    assert_string_equal(json_string_value(json_object_get(g0, "id")), "gpu-0");
    assert_true(json_integer_value(json_object_get(g0, "memory_total")) > 0);
    assert_non_null(json_string_value(json_object_get(g0, "status")));
    json_decref(j);

    j = get_json(p, "/api/v1/metrics", 200);
    assert_int_equal(json_object_size(json_object_get(j, "gpu_metrics")), 4);
    assert_true(json_is_array(json_object_get(j, "alerts"))); /* never null */
    assert_non_null(json_object_get(json_object_get(j, "system_stats"), "efficiency_score"));
    assert_non_null(json_object_get(json_object_get(j, "cost_data"), "total_cost"));
    json_decref(j);

    j = get_json(p, "/api/v1/gpu/gpu-1/metrics", 200);
    assert_string_equal(json_string_value(json_object_get(j, "gpu_id")), "gpu-1");
    json_decref(j);
    j = get_json(p, "/api/v1/gpu/gpu-1/history?hours=1", 200);
    assert_true(json_integer_value(json_object_get(j, "count")) >= 1);
    json_decref(j);
    j = get_json(p, "/api/v1/gpu/gpu-1/processes", 200);
    assert_true(json_is_array(json_object_get(j, "processes")));
    json_decref(j);
    j = get_json(p, "/api/v1/system/stats", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "total_gpus")), 4);
    json_decref(j);

    static const char *ok[] = {
        "/api/v1/system/overview", "/api/v1/system/status",   "/api/v1/costs",
        "/api/v1/costs/summary",   "/api/v1/costs/forecast",  "/api/v1/alerts",
        "/api/v1/alerts/summary",  "/api/v1/performance",     "/api/v1/performance/efficiency",
        "/api/v1/workloads",       "/api/v1/models",          "/api/v1/traces",
        "/api/v1/config",          "/api/v1/gpu/gpu-0/stats", "/api/v1/gpu/gpu-0/health"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        json_decref(get_json(p, ok[i], 200));

    resp r = http(p, "GET", "/", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "AgentaFlow GPU Monitoring"));
    free(r.body);
}

static void test_error_routes(void **state)
{
    (void)state;
    int p = g_shared.port;
    resp r = http(p, "GET", "/api/v1/nope", NULL, NULL);
    expect_error(&r, 404, "not_found");
    free(r.body);
    r = http(p, "GET", "/api/v1/gpu/gpu-99/metrics", NULL, NULL);
    expect_error(&r, 404, "not_found");
    free(r.body);

    r = http(p, "DELETE", "/api/v1/gpus", NULL, NULL);
    expect_error(&r, 405, "method_not_allowed");
    char allow[128];
    assert_non_null(header(&r, "allow", allow, sizeof(allow)));
    assert_non_null(strstr(allow, "GET"));
    assert_non_null(strstr(allow, "POST"));
    free(r.body);

    r = http(p, "POST", "/api/v1/workloads", "{\"name\": \"x\",\n \"priority\": }", NULL);
    expect_error(&r, 400, "invalid_json");
    assert_non_null(strstr(r.body, "line 2"));
    assert_non_null(strstr(r.body, "column"));
    free(r.body);

    r = http(p, "POST", "/api/v1/workloads", "{\"memory_required_mb\": \"lots\"}", NULL);
    expect_error(&r, 400, "invalid_argument");
    free(r.body);

    char *big = malloc(2 * 1024 * 1024 + 1);
    memset(big, 'a', 2 * 1024 * 1024);
    big[2 * 1024 * 1024] = '\0';
    r = http(p, "POST", "/api/v1/costs", big, NULL);
    expect_error(&r, 413, "payload_too_large");
    free(r.body);
    free(big);

    r = http(p, "GET", "/ws", NULL, NULL);
    assert_int_equal(r.status, 426);
    free(r.body);

    r = http(p, "GET", "/api/v1/traces/not-a-trace-id", NULL, NULL);
    expect_error(&r, 400, "invalid_argument");
    free(r.body);
    r = http(p, "GET", "/api/v1/traces/00000000000000000000000000000001", NULL, NULL);
    expect_error(&r, 404, "not_found");
    free(r.body);
}

static void test_http_framing(void **state)
{
    (void)state;
    /* Pipelined requests are answered in order on one connection. */
    const char pipelined[] =
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        "GET /api/v1/gpus HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char *out = exchange(pipelined, sizeof(pipelined) - 1);
    assert_int_equal(count_of(out, "HTTP/1.1 200 OK\r\n"), 2);
    char *second = strstr(out + 1, "HTTP/1.1 200 OK");
    assert_non_null(strstr(out, "\"status\""));
    assert_non_null(strstr(second, "\"gpus\""));
    assert_non_null(strstr(second, "connection: close\r\n"));
    assert_non_null(strstr(out, "traceresponse: 00-"));
    free(out);

    /* A chunked body, split oddly, with a trailer. */
    const char chunked[] =
        "POST /api/v1/workloads HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: application/json\r\nConnection: close\r\n\r\n"
        "5\r\n{\"id\"\r\n1e;ext=1\r\n:\"chunky\",\"name\":\"c\",\"priority\r\n"
        "1d\r\n\":1,\"memory_required_mb\":256}\r\n0\r\nX-Trailer: t\r\n\r\n";
    out = exchange(chunked, sizeof(chunked) - 1);
    assert_non_null(strstr(out, "HTTP/1.1 201 "));
    assert_non_null(strstr(out, "\"chunky\""));
    free(out);

    /* Expect: 100-continue gets the interim answer before the body is sent. */
    int fd = tcp_connect(g_shared.port);
    assert_true(fd >= 0);
    const char body[] = "{\"id\":\"expect-1\",\"name\":\"e\",\"memory_required_mb\":128}";
    char head[256];
    int hl = snprintf(head, sizeof(head),
                      "POST /api/v1/workloads HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                      "application/json\r\nContent-Length: %zu\r\n"
                      "Expect: 100-continue\r\n\r\n",
                      sizeof(body) - 1);
    send_all(fd, head, (size_t)hl);
    char buf[8192];
    bool closed;
    read_until(fd, buf, sizeof(buf), "\r\n\r\n", &closed);
    assert_string_equal(buf, "HTTP/1.1 100 Continue\r\n\r\n");
    send_all(fd, body, sizeof(body) - 1);
    read_until(fd, buf, sizeof(buf), "expect-1", &closed);
    assert_non_null(strstr(buf, "HTTP/1.1 201 "));
    /* ...and the connection stays open for the next request. */
    const char next[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    send_all(fd, next, sizeof(next) - 1);
    read_until(fd, buf, sizeof(buf), "\"status\"", &closed);
    assert_false(closed);
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK"));
    close(fd);

    /* Malformed input: a JSON error that says where, then the connection closes. */
    const char bad[] = "GET /health HTTP/1.1\r\nBad Header\r\n\r\n";
    out = exchange(bad, sizeof(bad) - 1);
    assert_non_null(strstr(out, "HTTP/1.1 400 Bad Request\r\n"));
    assert_non_null(strstr(out, "\"code\":\"bad_request\""));
    assert_non_null(strstr(out, "byte"));
    assert_non_null(strstr(out, "connection: close"));
    free(out);

    const char coding[] = "POST /api/v1/costs HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n";
    out = exchange(coding, sizeof(coding) - 1);
    assert_non_null(strstr(out, "HTTP/1.1 501 "));
    free(out);

    const char smuggle[] =
        "POST /api/v1/costs HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
    out = exchange(smuggle, sizeof(smuggle) - 1);
    assert_non_null(strstr(out, "HTTP/1.1 400 "));
    free(out);

    /* A head over 16 KiB. */
    size_t big = 20000;
    char *huge = malloc(big + 64);
    int n = snprintf(huge, 64, "GET /health HTTP/1.1\r\nX-Big: ");
    memset(huge + n, 'a', big);
    memcpy(huge + n + big, "\r\n\r\n", 5);
    out = exchange(huge, (size_t)n + big + 4);
    assert_non_null(strstr(out, "HTTP/1.1 431 "));
    free(out);
    free(huge);

    /* HTTP/1.0 closes unless asked to keep alive. */
    const char old[] = "GET /health HTTP/1.0\r\n\r\n";
    out = exchange(old, sizeof(old) - 1);
    assert_non_null(strstr(out, "HTTP/1.0 200 OK\r\n"));
    free(out);

    /* A client that never reads its answers still gets them all once it does. */
    fd = tcp_connect(g_shared.port);
    assert_true(fd >= 0);
    char many[64 * 48];
    size_t ml = 0;
    for (int i = 0; i < 64; i++)
        ml += (size_t)snprintf(many + ml, sizeof(many) - ml,
                               "GET /api/v1/gpus HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n",
                               i == 63 ? "Connection: close\r\n" : "");
    send_all(fd, many, ml);
    out = malloc(1 << 20);
    read_until(fd, out, 1 << 20, NULL, &closed);
    assert_true(closed);
    assert_int_equal(count_of(out, "HTTP/1.1 200 OK"), 64);
    free(out);
    close(fd);
}

static void test_write_routes(void **state)
{
    (void)state;
    int p = g_shared.port;
    resp r = http(p, "POST", "/api/v1/gpus",
                  "{\"id\":\"api-gpu\",\"name\":\"NVIDIA H100\",\"memory_total_mb\":81920}", NULL);
    assert_int_equal(r.status, 201);
    free(r.body);
    json_t *j = get_json(p, "/api/v1/gpus", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 5);
    json_decref(j);

    r = http(p, "POST", "/api/v1/workloads",
             "{\"id\":\"it-1\",\"name\":\"job\",\"priority\":2,\"memory_required_mb\":1024}", NULL);
    assert_int_equal(r.status, 201);
    j = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "running");
    json_decref(j);
    free(r.body);
    r = http(p, "POST", "/api/v1/workloads",
             "{\"id\":\"it-1\",\"name\":\"dup\",\"memory_required_mb\":1024}", NULL);
    expect_error(&r, 409, "conflict");
    free(r.body);
    r = http(p, "POST", "/api/v1/workloads/it-1/complete", "", NULL);
    assert_int_equal(r.status, 200);
    j = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "completed");
    json_decref(j);
    free(r.body);
    r = http(p, "POST", "/api/v1/workloads/it-1/cancel", "", NULL);
    expect_error(&r, 400, "invalid_argument"); /* already finished */
    free(r.body);
    r = http(p, "POST", "/api/v1/workloads/nope/cancel", "", NULL);
    expect_error(&r, 404, "not_found");
    free(r.body);
    /* Too large for any GPU: stays pending, then cancelled. */
    r = http(p, "POST", "/api/v1/workloads",
             "{\"id\":\"it-2\",\"name\":\"huge\",\"memory_required_mb\":900000}", NULL);
    assert_int_equal(r.status, 201);
    j = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "pending");
    assert_string_equal(json_string_value(json_object_get(j, "pending_reason")), "too_large");
    json_decref(j);
    free(r.body);
    r = http(p, "POST", "/api/v1/workloads/it-2/cancel", "", NULL);
    assert_int_equal(r.status, 200);
    free(r.body);

    r = http(p, "POST", "/api/v1/costs",
             "{\"operation\":\"training\",\"model_id\":\"m\",\"cost\":12.5,\"gpu_hours\":2}", NULL);
    assert_int_equal(r.status, 201);
    free(r.body);
    j = get_json(p, "/api/v1/costs/summary", 200);
    json_t *tr = json_object_get(json_object_get(j, "by_operation"), "training");
    assert_non_null(tr);
    assert_true(json_real_value(json_object_get(tr, "cost")) >= 12.5);
    json_decref(j);

    r = http(p, "POST", "/api/v1/inference", "{\"model_id\":\"model-bert\",\"input\":\"hi\"}",
             NULL);
    assert_int_equal(r.status, 200);
    j = json_of(&r);
    assert_non_null(strstr(json_string_value(json_object_get(j, "output")), "BERT"));
    assert_true(json_integer_value(json_object_get(j, "completion_tokens")) > 0);
    json_decref(j);
    free(r.body);
    r = http(p, "POST", "/api/v1/inference", "{\"model_id\":\"ghost\",\"input\":\"hi\"}", NULL);
    expect_error(&r, 404, "not_found");
    free(r.body);

    r = http(p, "POST", "/api/v1/alerts/alert-999999/resolve", "", NULL);
    expect_error(&r, 404, "not_found");
    free(r.body);
    r = http(p, "POST", "/api/v1/demo/trigger/gpu-0/Training", "", NULL);
    assert_int_equal(r.status, 200);
    free(r.body);
}

static void test_metrics_endpoint(void **state)
{
    (void)state;
    /* One inference through the API so the latency histogram has an exemplar. */
    const char *h[] = {"traceparent: 00-11112222333344445555666677778888-1111222233334444-01",
                       NULL};
    resp r = http(g_shared.port, "POST", "/api/v1/inference",
                  "{\"model_id\":\"model-gpt\",\"input\":\"exemplar please\"}", h);
    assert_int_equal(r.status, 200);
    free(r.body);
    r = http(g_shared.mport, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r.status, 200);
    char ct[128];
    assert_non_null(header(&r, "content-type", ct, sizeof(ct)));
    assert_non_null(strstr(ct, "version=0.0.4"));
    static const char *names[] = {"agentaflow_gpu_temperature_celsius{",
                                  "agentaflow_gpu_utilization_percent{",
                                  "agentaflow_gpu_memory_used_bytes{",
                                  "agentaflow_gpu_power_usage_watts{",
                                  "agentaflow_inference_latency_seconds_bucket{",
                                  "agentaflow_tracing_spans_started_total ",
                                  "agentaflow_tracing_queue_depth{",
                                  "# TYPE agentaflow_inference_latency_seconds histogram"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strstr(r.body, names[i]))
            fail_msg("missing %s", names[i]);
    assert_null(strstr(r.body, "# {trace_id")); /* exemplars only in OpenMetrics */
    free(r.body);

    const char *om[] = {"Accept: application/openmetrics-text; version=1.0.0", NULL};
    r = http(g_shared.mport, "GET", "/metrics", NULL, om);
    assert_int_equal(r.status, 200);
    assert_non_null(header(&r, "content-type", ct, sizeof(ct)));
    assert_non_null(strstr(ct, "application/openmetrics-text"));
    assert_non_null(strstr(r.body, "# {trace_id=\"11112222333344445555666677778888\""));
    assert_int_equal(strcmp(r.body + r.len - 6, "# EOF\n"), 0);
    free(r.body);

    r = http(g_shared.mport, "GET", "/other", NULL, NULL);
    assert_int_equal(r.status, 404);
    free(r.body);
}

static void test_auth(void **state)
{
    (void)state;
    static char env_tok[] = "AGENTAFLOW_AUTH_TOKEN=s3cret-token-value";
    const char *env[] = {env_tok, NULL};
    daemon_t d;
    daemon_start(&d, it_base_config, NULL, env);
    const char *body = "{\"name\":\"x\",\"memory_required_mb\":10}";
    resp r = http(d.port, "POST", "/api/v1/workloads", body, NULL);
    expect_error(&r, 401, "unauthorized");
    char wa[128];
    assert_non_null(header(&r, "www-authenticate", wa, sizeof(wa)));
    free(r.body);
    const char *bad[] = {"Authorization: Bearer s3cret-token-valuX", NULL};
    r = http(d.port, "POST", "/api/v1/workloads", body, bad);
    assert_int_equal(r.status, 401);
    free(r.body);
    const char *good[] = {"Authorization: Bearer s3cret-token-value", NULL};
    r = http(d.port, "POST", "/api/v1/workloads", body, good);
    assert_int_equal(r.status, 201);
    free(r.body);
    r = http(d.port, "GET", "/api/v1/gpus", NULL, NULL); /* reads stay open */
    assert_int_equal(r.status, 200);
    free(r.body);
    static const char *no_secret[] = {"/api/v1/config", "/health"};
    for (int i = 0; i < 2; i++) {
        r = http(d.port, "GET", no_secret[i], NULL, NULL);
        assert_int_equal(r.status, 200);
        assert_null(strstr(r.body, "s3cret"));
        if (i == 0) {
            /* The server section comes from the key table, the token redacted, next to the
             * values the running server uses. */
            assert_non_null(strstr(r.body, "\"auth_token\":\"[redacted]\""));
            assert_non_null(strstr(r.body, "\"allowed_hosts\":[]"));
            assert_non_null(strstr(r.body, "\"tls\":{\"cert_file\":null"));
            assert_non_null(strstr(r.body, "\"ws_push_interval_ms\":"));
        }
        free(r.body);
    }
    assert_int_equal(daemon_stop(&d), 0);
    FILE *f = fopen(d.logfile, "r");
    char log[65536];
    size_t n = fread(log, 1, sizeof(log) - 1, f);
    log[n] = '\0';
    fclose(f);
    assert_null(strstr(log, "s3cret"));

    /* A non-loopback bind without a token refuses to start. */
    const char *args[] = {g_bin, "serve",          "--bind", "0.0.0.0", "--port",
                          "0",   "--metrics-port", "-1",     NULL};
    char *out;
    assert_int_equal(run_cmd(args, NULL, &out), 2);
    assert_non_null(strstr(out, "auth token"));
}

int main(int argc, char **argv)
{
    int rc = harness_init(argc, argv, "test_daemon_routes");
    if (rc)
        return rc;
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_read_routes),      cmocka_unit_test(test_error_routes),
        cmocka_unit_test(test_http_framing),     cmocka_unit_test(test_write_routes),
        cmocka_unit_test(test_metrics_endpoint),
    };
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_auth),
    };
    rc = cmocka_run_group_tests_name("daemon_routes", shared, shared_daemon_setup,
                                     shared_daemon_teardown);
    rc |= cmocka_run_group_tests_name("daemon_routes_own", own, NULL, NULL);
    harness_fini();
    return rc;
}
