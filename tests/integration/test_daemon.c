/*
 * End-to-end tests of the agentaflow daemon: the real binary (argv[1]) started on ephemeral
 * loopback ports with a temporary config, driven over HTTP (libcurl) and WebSocket (a minimal
 * RFC 6455 client written here, so a test can also play a client that never reads), with a
 * loopback OTLP receiver for the cross-process propagation test.
 *
 * Every wait polls with a deadline; nothing sleeps blindly.
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

/* ---------------------------------------------------------------------------------------- */
/* Overload, graceful stop and a stalled WebSocket client.                                   */
/* With max_inflight 1, a slow inference in flight makes the next one a 503 "overloaded";
 * then SIGTERM: the API port stops accepting (connections are refused) while the slow request
 * still completes with 200, and the daemon exits 0. */
static void test_overload_and_graceful_stop(void **state)
{
    (void)state;
    daemon_t d;
    daemon_start(&d,
                 "service_name: agentaflow-it\nserver:\n  load_generator: false\n"
                 "  max_inflight: 1\n  max_input_tokens: 100000\n",
                 NULL, NULL);
    char *req = slow_infer_request(d.port, 1500, 1);
    int slow = tcp_connect(d.port);
    assert_true(slow >= 0);
    send_all(slow, req, strlen(req));
    free(req);
    uint64_t deadline = now_ms() + 10000;
    while (serving_busy(d.port) == 0 && now_ms() < deadline)
        pause_ms(5);
    assert_true(serving_busy(d.port) > 0);

    resp r = http(d.port, "POST", "/api/v1/inference",
                  "{\"model_id\":\"model-gpt\",\"input\":\"one too many\"}", NULL);
    expect_error(&r, 503, "overloaded");
    free(r.body);

    assert_int_equal(kill(d.pid, SIGTERM), 0);
    /* Until the loop sees the stop a request may still get a 200 (or, in the instant between
     * the flag and the listener closing, a clean 503 "shutting_down"); from then on the port
     * refuses connections. Nothing hangs. */
    bool refused = false;
    deadline = now_ms() + 5000;
    while (!refused && now_ms() < deadline) {
        int fd = tcp_connect(d.port);
        if (fd < 0) {
            assert_int_equal(errno, ECONNREFUSED);
            refused = true;
            break;
        }
        const char *get = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        /* No send_all: the write may meet the reset described below (MSG_NOSIGNAL: no
         * SIGPIPE). */
        (void)send(fd, get, strlen(get), MSG_NOSIGNAL);
        char *ans = read_to_eof(fd);
        close(fd);
        /* A connection the kernel queued just before the listener closed is reset: "". */
        assert_true(ans[0] == '\0' || strncmp(ans, "HTTP/1.1 200", 12) == 0 ||
                    (strstr(ans, " 503 ") && strstr(ans, "\"shutting_down\"")));
        free(ans);
        pause_ms(5);
    }
    assert_true(refused);
    /* And it stays closed. */
    for (int i = 0; i < 3; i++) {
        errno = 0;
        assert_true(tcp_connect(d.port) < 0);
        assert_int_equal(errno, ECONNREFUSED);
    }
    int st;
    assert_int_equal(waitpid(d.pid, &st, WNOHANG), 0); /* still finishing the slow one */
    /* The metrics port stays open during the drain. */
    resp m = http(d.mport, "GET", "/metrics", NULL, NULL);
    assert_int_equal(m.status, 200);
    assert_non_null(strstr(m.body, "agentaflow_inference_requests_total"));
    free(m.body);

    char *ans = read_to_eof(slow);
    close(slow);
    if (strncmp(ans, "HTTP/1.1 200", 12) != 0)
        fail_msg("the in-flight request did not complete: %.200s", ans);
    assert_non_null(strstr(ans, "\"request_id\""));
    free(ans);
    assert_int_equal(daemon_stop(&d), 0);
}

/* A client that never reads: once its socket is full its bounded queue drops the oldest
 * updates (counted in /metrics), the others are not held up, and when it reads again it gets
 * a current update after at most the kernel's buffer and its queue, not every update. */
static void test_ws_stalled_client_drops_oldest(void **state)
{
    (void)state;
    daemon_t d;
    daemon_start(&d,
                 "service_name: agentaflow-it\nserver:\n  load_generator: false\n"
                 "  ws_push_interval: 100ms\n  ws_queue_depth: 2\n",
                 NULL, NULL);
    int stalled = ws_connect_rcvbuf(d.port, NULL, 1024);
    assert_true(stalled >= 0);
    int live = ws_connect(d.port, NULL);
    assert_true(live >= 0);

    /* The live client keeps receiving while the stalled one's queue overflows. */
    int live_msgs = 0;
    uint64_t deadline = now_ms() + 30000;
    while (metric_value(d.mport, "agentaflow_websocket_messages_dropped_total") <= 0 &&
           now_ms() < deadline) {
        json_t *j = ws_expect(live, "metrics_update");
        assert_non_null(j);
        json_decref(j);
        live_msgs++;
    }
    double dropped = metric_value(d.mport, "agentaflow_websocket_messages_dropped_total");
    assert_true(dropped > 0);
    json_t *j = ws_expect(live, "metrics_update");
    assert_non_null(j);
    char mark[64];
    snprintf(mark, sizeof(mark), "%s", json_string_value(json_object_get(j, "timestamp")));
    json_decref(j);
    live_msgs++;

    /* Reading again, the stalled client reaches an update at least as new as `mark` having
     * seen fewer updates than the live client: the dropped ones never arrive. */
    int stalled_msgs = 0;
    bool caught_up = false;
    while (!caught_up) {
        j = ws_expect(stalled, "metrics_update");
        assert_non_null(j);
        const char *ts = json_string_value(json_object_get(j, "timestamp"));
        assert_non_null(ts);
        caught_up = strcmp(ts, mark) >= 0;
        json_decref(j);
        stalled_msgs++;
    }
    assert_true(stalled_msgs < live_msgs);
    close(stalled);
    close(live);
    assert_int_equal(daemon_stop(&d), 0);
}

/* ---------------------------------------------------------------------------------------- */
/* Tests.                                                                                    */

static const char *base_config = "service_name: agentaflow-it\n"
                                 "server:\n"
                                 "  ws_push_interval: 200ms\n"
                                 "  load_generator: false\n";

static daemon_t g_d; /* shared daemon for the read-mostly tests */

static int setup_shared(void **state)
{
    (void)state;
    daemon_start(&g_d, base_config, NULL, NULL);
    return 0;
}

static int teardown_shared(void **state)
{
    (void)state;
    int rc = daemon_stop(&g_d);
    if (rc != 0) {
        fprintf(stderr, "daemon exit status %d (want 0)\n", rc);
        return -1;
    }
    return 0;
}

static void test_read_routes(void **state)
{
    (void)state;
    int p = g_d.port;
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
    int p = g_d.port;
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

/* ---------------------------------------------------------------------------------------- */
/* HTTP/1.1 framing, over raw sockets (libcurl would hide it).                               */

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
    int fd = tcp_connect(g_d.port);
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
    int fd = tcp_connect(g_d.port);
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
    fd = tcp_connect(g_d.port);
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
    int p = g_d.port;
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

static void test_trace_middleware(void **state)
{
    (void)state;
    int p = g_d.port;
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

static void test_metrics_endpoint(void **state)
{
    (void)state;
    /* One inference through the API so the latency histogram has an exemplar. */
    const char *h[] = {"traceparent: 00-11112222333344445555666677778888-1111222233334444-01",
                       NULL};
    resp r = http(g_d.port, "POST", "/api/v1/inference",
                  "{\"model_id\":\"model-gpt\",\"input\":\"exemplar please\"}", h);
    assert_int_equal(r.status, 200);
    free(r.body);
    r = http(g_d.mport, "GET", "/metrics", NULL, NULL);
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
    r = http(g_d.mport, "GET", "/metrics", NULL, om);
    assert_int_equal(r.status, 200);
    assert_non_null(header(&r, "content-type", ct, sizeof(ct)));
    assert_non_null(strstr(ct, "application/openmetrics-text"));
    assert_non_null(strstr(r.body, "# {trace_id=\"11112222333344445555666677778888\""));
    assert_int_equal(strcmp(r.body + r.len - 6, "# EOF\n"), 0);
    free(r.body);

    r = http(g_d.mport, "GET", "/other", NULL, NULL);
    assert_int_equal(r.status, 404);
    free(r.body);
}

static void test_websocket(void **state)
{
    (void)state;
    int fd = ws_connect(g_d.port, NULL);
    assert_true(fd >= 0);
    json_t *j = ws_expect(fd, "metrics_update"); /* sent on connect */
    assert_non_null(j);
    assert_non_null(json_object_get(json_object_get(j, "data"), "gpu_metrics"));
    json_decref(j);
    assert_int_equal(ws_send(fd, "{\"type\":\"ping\"}"), 0);
    j = ws_expect(fd, "pong");
    assert_non_null(j);
    assert_non_null(json_string_value(json_object_get(j, "timestamp")));
    json_decref(j);
    assert_int_equal(ws_send(fd, "{\"type\":\"get_metrics\"}"), 0);
    j = ws_expect(fd, "metrics_update");
    assert_non_null(j);
    json_decref(j);
    /* A notification from the demo trigger route reaches connected clients. */
    resp r = http(g_d.port, "POST", "/api/v1/demo/trigger/gpu-1/Idle", "", NULL);
    assert_int_equal(r.status, 200);
    free(r.body);
    j = ws_expect(fd, "notification");
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "data"), "title")),
                        "Workload Pattern Changed");
    json_decref(j);
    close(fd);

    /* A foreign Origin is refused. */
    assert_true(ws_connect(g_d.port, "http://evil.example") < 0);
}

static void test_websocket_fanout_and_stall(void **state)
{
    (void)state;
    enum { N = 100 };
    int fds[N];
    /* A client that completes the handshake and then never reads. */
    int stalled = ws_connect(g_d.port, NULL);
    assert_true(stalled >= 0);
    int small = 1024;
    setsockopt(stalled, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    for (int i = 0; i < N; i++) {
        fds[i] = ws_connect(g_d.port, NULL);
        assert_true(fds[i] >= 0);
    }
    json_t *h = get_json(g_d.port, "/health", 200);
    assert_true(json_integer_value(json_object_get(
                    json_object_get(json_object_get(h, "components"), "websocket"), "clients")) >=
                N + 1);
    json_decref(h);
    /* Every client gets the connect update plus at least two periodic broadcasts (200 ms
     * apart), while the stalled one reads nothing. */
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < N; i++) {
            json_t *j = ws_expect(fds[i], "metrics_update");
            if (!j)
                fail_msg("client %d got no metrics_update in round %d", i, round);
            json_decref(j);
        }
    for (int i = 0; i < N; i++)
        close(fds[i]);
    close(stalled);
}

static void test_ws_client_cap(void **state)
{
    (void)state;
    daemon_t d;
    daemon_start(&d,
                 "server:\n  max_ws_clients: 2\n  load_generator: false\n"
                 "  ws_push_interval: 200ms\n",
                 NULL, NULL);
    int a = ws_connect(d.port, NULL), b = ws_connect(d.port, NULL);
    assert_true(a >= 0 && b >= 0);
    json_decref(ws_expect(a, "metrics_update"));
    json_decref(ws_expect(b, "metrics_update"));
    int c = ws_connect(d.port, NULL);
    assert_true(c >= 0);
    char *p = NULL;
    size_t n = 0;
    int op = ws_read(c, &p, &n);
    assert_int_equal(op, 8); /* close */
    assert_true(n >= 2);
    assert_int_equal(((unsigned char)p[0] << 8) | (unsigned char)p[1], 1013);
    assert_non_null(strstr(p + 2, "too many WebSocket clients"));
    free(p);
    close(a);
    close(b);
    close(c);
    assert_int_equal(daemon_stop(&d), 0);
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

static void test_auth(void **state)
{
    (void)state;
    static char env_tok[] = "AGENTAFLOW_AUTH_TOKEN=s3cret-token-value";
    const char *env[] = {env_tok, NULL};
    daemon_t d;
    daemon_start(&d, base_config, NULL, env);
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

static void test_cli(void **state)
{
    (void)state;
    char *out;
    const char *v[] = {g_bin, "version", NULL};
    assert_int_equal(run_cmd(v, NULL, &out), 0);
    assert_non_null(strstr(out, "agentaflow 0.1.0"));
    const char *help[] = {g_bin, "serve", "--help", NULL};
    assert_int_equal(run_cmd(help, NULL, &out), 0);
    assert_non_null(strstr(out, "--no-load-generator"));

    char good[512], bad[512];
    snprintf(good, sizeof(good), "%s/good.yaml", g_tmp);
    snprintf(bad, sizeof(bad), "%s/bad.yaml", g_tmp);
    write_file(good, "service_name: x\ntracing:\n  sampling_ratio: 0.5\n"
                     "server:\n  port: 9100\n  auth_token: hunter2hunter2\n");
    write_file(bad, "tracing:\n  sampling_ratio: high\nserver:\n  port: 70000\n");
    const char *c1[] = {g_bin, "config", "check", good, NULL};
    assert_int_equal(run_cmd(c1, NULL, &out), 0);
    assert_non_null(strstr(out, "server.port = 9100"));
    assert_non_null(strstr(out, "[redacted]"));
    assert_null(strstr(out, "hunter2"));
    const char *c2[] = {g_bin, "config", "check", bad, NULL};
    assert_int_equal(run_cmd(c2, NULL, &out), 1);
    assert_non_null(strstr(out, "sampling_ratio"));
    assert_non_null(strstr(out, "server.port"));
    const char *s2[] = {g_bin, "serve", "--config", bad, "--port", "0", NULL};
    assert_int_equal(run_cmd(s2, NULL, &out), 2);

    /* Typos get a suggestion from the key table; flags are checked by it too. */
    write_file(bad, "server:\n  prot: 9100\n");
    assert_int_equal(run_cmd(c2, NULL, &out), 0);
    assert_non_null(strstr(out, "bad.yaml:2:3: server.prot: unknown key (ignored); did you mean "
                                "\"server.port\"?"));
    const char *s3[] = {g_bin, "serve", "--port", "65536", NULL};
    assert_int_equal(run_cmd(s3, NULL, &out), 2);
    assert_non_null(strstr(out, "--port: expected a port number 0-65535"));
    const char *docs[] = {g_bin, "config", "docs", NULL};
    assert_int_equal(run_cmd(docs, NULL, &out), 0);
    assert_non_null(strstr(out, "| `server.allowed_hosts` | list |"));
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
    if (argc < 2) {
        fprintf(stderr, "usage: test_daemon /path/to/agentaflow\n");
        return 2;
    }
    g_bin = argv[1];
    signal(SIGPIPE, SIG_IGN);
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/af-daemon-it-XXXXXX");
    if (!mkdtemp(g_tmp))
        return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_read_routes),      cmocka_unit_test(test_error_routes),
        cmocka_unit_test(test_http_framing),     cmocka_unit_test(test_write_routes),
        cmocka_unit_test(test_trace_middleware), cmocka_unit_test(test_metrics_endpoint),
        cmocka_unit_test(test_websocket),        cmocka_unit_test(test_websocket_fanout_and_stall),
    };
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_ws_client_cap),
        cmocka_unit_test(test_overload_and_graceful_stop),
        cmocka_unit_test(test_ws_stalled_client_drops_oldest),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_b3_propagation),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_otlp_propagation),
    };
    int rc = cmocka_run_group_tests_name("daemon", shared, setup_shared, teardown_shared);
    rc |= cmocka_run_group_tests_name("daemon_own", own, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
