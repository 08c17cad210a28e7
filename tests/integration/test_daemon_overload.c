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

    /* A request whose body is half sent holds the drain open (up to the 5 s shutdown bound)
     * while the test looks at the listeners, however slowly a loaded machine runs it: the
     * slow inference alone would end the drain after 1.5 s. */
    static const char body[] = "{\"operation\":\"drain-check\",\"cost\":1.5}";
    char head[256];
    int hn = snprintf(head, sizeof(head),
                      "POST /api/v1/costs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                      "application/json\r\nContent-Length: %zu\r\nExpect: 100-continue\r\n"
                      "Connection: close\r\n\r\n",
                      sizeof(body) - 1);
    int held = tcp_connect(d.port);
    assert_true(held >= 0);
    send_all(held, head, (size_t)hn);
    /* "100 Continue" proves the head was read: the request is in progress, not an idle
     * connection the stop would close. */
    char cont[64];
    size_t got = 0;
    while (got < sizeof(cont) - 1 && !memmem(cont, got, "\r\n\r\n", 4)) {
        ssize_t k = read(held, cont + got, sizeof(cont) - 1 - got);
        assert_true(k > 0);
        got += (size_t)k;
    }
    cont[got] = '\0';
    assert_int_equal(strncmp(cont, "HTTP/1.1 100", 12), 0);
    send_all(held, body, 10);

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

    /* The held request is answered once its body arrives: it reaches its handler after the
     * stop began, so it is refused cleanly (nothing recorded), not cut off. */
    send_all(held, body + 10, sizeof(body) - 1 - 10);
    char *held_ans = read_to_eof(held);
    close(held);
    if (strncmp(held_ans, "HTTP/1.1 503", 12) != 0 || !strstr(held_ans, "\"shutting_down\""))
        fail_msg("the held request was not answered 503 shutting_down: %.200s", held_ans);
    free(held_ans);

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
