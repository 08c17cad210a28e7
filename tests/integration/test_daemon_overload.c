/*
 * Overload and graceful stop: max_inflight turns the next inference away with 503, and
 * SIGTERM lets the request in flight finish while the port stops accepting.
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

/* With max_inflight 1, a slow inference in flight makes the next one a 503 "overloaded";
 * then SIGTERM: the API port stops accepting (connections are refused) while the slow request
 * still completes with 200, and the daemon exits 0. */
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
                 "  max_inflight: 1\n",
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

int main(int argc, char **argv)
{
    int rc = harness_init(argc, argv, "test_daemon_overload");
    if (rc)
        return rc;
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_overload_and_graceful_stop),
    };
    rc = cmocka_run_group_tests_name("daemon_overload_own", own, NULL, NULL);
    harness_fini();
    return rc;
}
