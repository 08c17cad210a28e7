/*
 * The WebSocket push channel: handshake and Origin check, fan-out to many clients, a stalled
 * client's bounded queue, and the client cap.
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

static void test_websocket(void **state)
{
    (void)state;
    int fd = ws_connect(g_shared.port, NULL);
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
    resp r = http(g_shared.port, "POST", "/api/v1/demo/trigger/gpu-1/Idle", "", NULL);
    assert_int_equal(r.status, 200);
    free(r.body);
    j = ws_expect(fd, "notification");
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "data"), "title")),
                        "Workload Pattern Changed");
    json_decref(j);
    close(fd);

    /* A foreign Origin is refused. */
    assert_true(ws_connect(g_shared.port, "http://evil.example") < 0);
}

static void test_websocket_fanout_and_stall(void **state)
{
    (void)state;
    enum { N = 100 };
    int fds[N];
    /* A client that completes the handshake and then never reads. */
    int stalled = ws_connect(g_shared.port, NULL);
    assert_true(stalled >= 0);
    int small = 1024;
    setsockopt(stalled, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    for (int i = 0; i < N; i++) {
        fds[i] = ws_connect(g_shared.port, NULL);
        assert_true(fds[i] >= 0);
    }
    json_t *h = get_json(g_shared.port, "/health", 200);
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

int main(int argc, char **argv)
{
    int rc = harness_init(argc, argv, "test_daemon_ws");
    if (rc)
        return rc;
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_websocket),
        cmocka_unit_test(test_websocket_fanout_and_stall),
    };
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_ws_client_cap),
        cmocka_unit_test(test_ws_stalled_client_drops_oldest),
    };
    rc = cmocka_run_group_tests_name("daemon_ws", shared, shared_daemon_setup,
                                     shared_daemon_teardown);
    rc |= cmocka_run_group_tests_name("daemon_ws_own", own, NULL, NULL);
    harness_fini();
    return rc;
}
