/*
 * Integration tests of /ws against the real daemon (RFC 6455 on the HTTP loops): the opening
 * handshake's refusals (426 with Sec-WebSocket-Version: 13, 400 and 403 as JSON errors, a
 * 300-byte Origin compared in full), the connection failures (unmasked frame 1002, invalid
 * UTF-8 1007, oversize message 1009), ping/pong, fragmented messages, the close handshake,
 * close 1001 on stop, and that a thousand bad upgrades write nothing to the log at the
 * default level.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static daemon_t g_d;

/* ---------------------------------------------------------------------------------------- */
/* Raw clients.                                                                              */

/* Sends an upgrade request for /ws with `extra` header lines (each ending in CRLF) and reads
 * the answer until the server closes (a refusal closes the connection). */
static char *upgrade_raw(const char *extra)
{
    int fd = tcp_connect(g_d.port);
    assert_true(fd >= 0);
    char req[4096];
    int n = snprintf(req, sizeof(req),
                     "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: keep-alive, Upgrade\r\n%s\r\n",
                     g_d.port, extra);
    assert_true(n > 0 && (size_t)n < sizeof(req));
    send_all(fd, req, (size_t)n);
    char *ans = read_to_eof(fd);
    close(fd);
    return ans;
}

static long status_of(const char *ans)
{
    long st = 0;
    if (sscanf(ans, "HTTP/1.1 %ld", &st) != 1)
        fail_msg("no HTTP status in: %.200s", ans);
    return st;
}

/* True when the response head has the header line: the name case-insensitive, the value
 * exact, or case-insensitive where it is a token (token_value). */
static bool has_header_ex(const char *ans, const char *name, const char *value, bool token_value)
{
    size_t nl = strlen(name), vl = strlen(value);
    const char *end = strstr(ans, "\r\n\r\n");
    for (const char *p = strstr(ans, "\r\n"); p && p < end; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            bool same = token_value ? strncasecmp(v, value, vl) == 0 : strncmp(v, value, vl) == 0;
            if (same && v[vl] == '\r')
                return true;
        }
    }
    return false;
}

static bool has_header(const char *ans, const char *name, const char *value)
{
    return has_header_ex(ans, name, value, false);
}

/* The answer's JSON error code ({"error":{"code":...}}), checked against want. */
static void expect_json_error(const char *ans, long status, const char *code)
{
    assert_int_equal(status_of(ans), status);
    const char *body = strstr(ans, "\r\n\r\n");
    assert_non_null(body);
    assert_true(has_header_ex(ans, "content-type", "application/json", true));
    json_t *j = json_loads(body + 4, 0, NULL);
    if (!j)
        fail_msg("not JSON: %.300s", body + 4);
    json_t *e = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    assert_int_equal(json_integer_value(json_object_get(e, "status")), status);
    assert_non_null(json_string_value(json_object_get(e, "message")));
    json_decref(j);
}

static const uint8_t mask_key[4] = {0x12, 0x34, 0x56, 0x78};

/* Writes one client frame: b0 is FIN/RSV/opcode; masked unless told otherwise. A frame may
 * announce more payload than it carries (announce > len) to test a length alone. */
static void send_frame_ex(int fd, uint8_t b0, bool masked, const void *payload, size_t len,
                          uint64_t announce)
{
    uint8_t *f = malloc(14 + len);
    assert_non_null(f);
    size_t k = 0;
    uint8_t m = masked ? 0x80 : 0;
    f[k++] = b0;
    if (announce < 126) {
        f[k++] = (uint8_t)(m | announce);
    } else if (announce <= 0xffff) {
        f[k++] = m | 126;
        f[k++] = (uint8_t)(announce >> 8);
        f[k++] = (uint8_t)announce;
    } else {
        f[k++] = m | 127;
        for (int i = 7; i >= 0; i--)
            f[k++] = (uint8_t)(announce >> (8 * i));
    }
    if (masked) {
        memcpy(f + k, mask_key, 4);
        k += 4;
    }
    for (size_t i = 0; i < len; i++)
        f[k + i] = ((const uint8_t *)payload)[i] ^ (masked ? mask_key[i & 3] : 0);
    send_all(fd, (const char *)f, k + len);
    free(f);
}

static void send_frame(int fd, uint8_t b0, const void *payload, size_t len)
{
    send_frame_ex(fd, b0, true, payload, len, len);
}

/* Reads frames until one with opcode op arrives (text frames in between are skipped);
 * returns its payload (malloc'd) or fails. */
static char *read_until(int fd, int op, size_t *len)
{
    for (int i = 0; i < 100; i++) {
        char *p = NULL;
        int got = ws_read(fd, &p, len);
        if (got < 0)
            fail_msg("the connection ended before a frame with opcode %d", op);
        if (got == op)
            return p;
        free(p);
        if (got != 1)
            fail_msg("frame with opcode %d while waiting for %d", got, op);
    }
    fail_msg("no frame with opcode %d", op);
    return NULL;
}

/* The server closes with this code, then ends the TCP connection. */
static void expect_close(int fd, unsigned code)
{
    size_t n = 0;
    char *p = read_until(fd, 8, &n);
    assert_true(n >= 2);
    assert_int_equal(((unsigned char)p[0] << 8) | (unsigned char)p[1], code);
    free(p);
    char b;
    assert_int_equal(read(fd, &b, 1), 0);
    close(fd);
}

static int connect_ok(void)
{
    int fd = ws_connect(g_d.port, NULL);
    assert_true(fd >= 0);
    json_decref(ws_expect(fd, "metrics_update")); /* the one sent on connect */
    return fd;
}

/* ---------------------------------------------------------------------------------------- */
/* Tests.                                                                                    */

#define KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define V13 "Sec-WebSocket-Version: 13\r\n"

static void test_handshake_accept(void **state)
{
    (void)state;
    int fd = tcp_connect(g_d.port);
    assert_true(fd >= 0);
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: WebSocket\r\n"
                     "Connection: Upgrade\r\nOrigin: http://127.0.0.1:%d\r\n" KEY V13 "\r\n",
                     g_d.port, g_d.port);
    /* The first frame right behind the request, in the same write. */
    send_all(fd, req, (size_t)n);
    send_frame(fd, 0x81, "{\"type\":\"ping\"}", 15);
    char head[1024];
    size_t got = 0;
    while (got < sizeof(head) - 1 && (got < 4 || memcmp(head + got - 4, "\r\n\r\n", 4) != 0)) {
        assert_int_equal(read(fd, head + got, 1), 1);
        got++;
    }
    head[got] = '\0';
    assert_int_equal(status_of(head), 101);
    /* RFC 6455 §1.3's example key and answer. */
    assert_true(has_header(head, "sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    assert_true(has_header_ex(head, "upgrade", "websocket", true));
    json_t *j = ws_expect(fd, "pong");
    assert_non_null(j);
    json_decref(j);
    close(fd);
}

static void test_version_426(void **state)
{
    (void)state;
    static const char *versions[] = {
        "Sec-WebSocket-Version: 8\r\n",
        "Sec-WebSocket-Version: 14\r\n",
        "Sec-WebSocket-Version: abc\r\n",
        "",
    };
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        char extra[256];
        snprintf(extra, sizeof(extra), KEY "%s", versions[i]);
        char *ans = upgrade_raw(extra);
        expect_json_error(ans, 426, "upgrade_required");
        assert_true(has_header(ans, "sec-websocket-version", "13"));
        free(ans);
    }
}

/* A GET /ws that is not an upgrade: 426 naming the protocol and version (RFC 9110 §15.5.22),
 * and those headers do not leak into the next response on the same connection. */
static void test_plain_get_426(void **state)
{
    (void)state;
    int fd = tcp_connect(g_d.port);
    assert_true(fd >= 0);
    static const char two[] =
        "GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n"
        "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    send_all(fd, two, sizeof(two) - 1);
    char *ans = read_to_eof(fd);
    close(fd);
    char *second = strstr(ans, "\r\n\r\n");
    assert_non_null(second);
    second = strstr(second, "HTTP/1.1 ");
    assert_non_null(second);
    second[-1] = '\0'; /* ans is now the first response alone */
    assert_int_equal(status_of(ans), 426);
    assert_true(has_header(ans, "sec-websocket-version", "13"));
    assert_true(has_header_ex(ans, "upgrade", "websocket", true));
    assert_int_equal(status_of(second), 200);
    assert_null(strcasestr(second, "sec-websocket-version"));
    assert_null(strcasestr(second, "\nupgrade:"));
    free(ans);
}

static void test_key_400(void **state)
{
    (void)state;
    char *ans = upgrade_raw(V13);
    expect_json_error(ans, 400, "bad_request");
    assert_non_null(strstr(ans, "Sec-WebSocket-Key"));
    free(ans);
    ans = upgrade_raw(V13 "Sec-WebSocket-Key: not-base64-of-16-bytes\r\n");
    expect_json_error(ans, 400, "bad_request");
    free(ans);
}

static void test_origin_403(void **state)
{
    (void)state;
    /* 300 bytes: longer than any fixed buffer a check might truncate it to. */
    char origin[301];
    memcpy(origin, "http://", 7);
    memset(origin + 7, 'a', 293);
    origin[300] = '\0';
    char extra[512];
    snprintf(extra, sizeof(extra), KEY V13 "Origin: %s\r\n", origin);
    char *ans = upgrade_raw(extra);
    expect_json_error(ans, 403, "cross_origin");
    free(ans);
    /* A foreign origin whose first 255 bytes are this host's. */
    char *lookalike = malloc(600);
    assert_non_null(lookalike);
    int n = snprintf(lookalike, 600, "Origin: http://127.0.0.1:%d", g_d.port);
    memset(lookalike + n, 'x', 300);
    memcpy(lookalike + n + 300, "\r\n" KEY V13, sizeof("\r\n" KEY V13));
    ans = upgrade_raw(lookalike);
    expect_json_error(ans, 403, "cross_origin");
    free(ans);
    free(lookalike);
}

static void test_unmasked_1002(void **state)
{
    (void)state;
    int fd = connect_ok();
    send_frame_ex(fd, 0x81, false, "{\"type\":\"ping\"}", 15, 15);
    expect_close(fd, 1002);
}

static void test_invalid_utf8_1007(void **state)
{
    (void)state;
    int fd = connect_ok();
    send_frame(fd, 0x81, "{\"type\":\"\xc0\x80\"}", 13);
    expect_close(fd, 1007);
    /* Split across fragments: the message ends inside a character. */
    fd = connect_ok();
    send_frame(fd, 0x01, "{\"type\":\"caf\xc3", 13);
    send_frame(fd, 0x80, "\"}", 2);
    expect_close(fd, 1007);
}

static void test_oversize_1009(void **state)
{
    (void)state;
    /* A frame announcing more than 64 KiB fails before its payload is sent. */
    int fd = connect_ok();
    send_frame_ex(fd, 0x81, true, "", 0, 65537);
    expect_close(fd, 1009);
    /* Fragments adding up to more than 64 KiB. */
    fd = connect_ok();
    char *big = malloc(40000);
    assert_non_null(big);
    memset(big, ' ', 40000);
    send_frame(fd, 0x01, big, 40000);
    send_frame_ex(fd, 0x80, true, "", 0, 30000);
    expect_close(fd, 1009);
    free(big);
}

static void test_ping_pong(void **state)
{
    (void)state;
    int fd = connect_ok();
    send_frame(fd, 0x89, "are you there", 13);
    size_t n = 0;
    char *p = read_until(fd, 0xA, &n);
    assert_int_equal(n, 13);
    assert_memory_equal(p, "are you there", 13);
    free(p);
    close(fd);
}

static void test_fragmented_message(void **state)
{
    (void)state;
    int fd = connect_ok();
    send_frame(fd, 0x01, "{\"ty", 4);
    send_frame(fd, 0x89, "between", 7); /* a control frame between fragments */
    send_frame(fd, 0x00, "pe\":\"pi", 7);
    send_frame(fd, 0x80, "ng\"}", 4);
    size_t n = 0;
    char *p = read_until(fd, 0xA, &n);
    assert_int_equal(n, 7);
    free(p);
    json_t *j = ws_expect(fd, "pong");
    assert_non_null(j);
    json_decref(j);
    close(fd);
}

static void test_close_handshake(void **state)
{
    (void)state;
    int fd = connect_ok();
    send_frame(fd, 0x88,
               "\x03\xe8"
               "bye",
               5);
    expect_close(fd, 1000);
}

static off_t log_size(void)
{
    struct stat st;
    assert_int_equal(stat(g_d.logfile, &st), 0);
    return st.st_size;
}

static void test_bad_upgrades_do_not_log(void **state)
{
    (void)state;
    off_t before = log_size();
    for (int i = 0; i < 1000; i++) {
        static const char *bad[] = {
            KEY "Sec-WebSocket-Version: 8\r\n",
            V13,
            KEY V13 "Origin: http://evil.example\r\n",
        };
        char *ans = upgrade_raw(bad[i % 3]);
        long st = status_of(ans);
        assert_true(st == 426 || st == 400 || st == 403);
        free(ans);
    }
    /* Connection failures log nothing at the default level either. */
    for (int i = 0; i < 20; i++) {
        int fd = connect_ok();
        send_frame_ex(fd, 0x81, false, "x", 1, 1);
        expect_close(fd, 1002);
    }
    off_t after = log_size();
    if (after != before) {
        FILE *f = fopen(g_d.logfile, "r");
        char tail[512] = "";
        if (f) {
            fseek(f, before, SEEK_SET);
            size_t k = fread(tail, 1, sizeof(tail) - 1, f);
            tail[k] = '\0';
            fclose(f);
        }
        fail_msg("the daemon logged %lld bytes: %s", (long long)(after - before), tail);
    }
    /* The daemon is still serving. */
    json_decref(get_json(g_d.port, "/health", 200));
}

/* On stop every client gets close 1001, except one that is not reading its output: that one
 * is closed at once instead of holding the stop until its bound. */
static void test_stop_closes_1001(void **state)
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
    /* The stalled client's queue overflows once its socket is full: its output is pending. */
    uint64_t deadline = now_ms() + 30000;
    while (metric_value(d.mport, "agentaflow_websocket_messages_dropped_total") <= 0 &&
           now_ms() < deadline) {
        json_t *j = ws_expect(live, "metrics_update");
        assert_non_null(j);
        json_decref(j);
    }
    assert_true(metric_value(d.mport, "agentaflow_websocket_messages_dropped_total") > 0);
    assert_int_equal(daemon_stop(&d), 0);
    expect_close(live, 1001);
    close(stalled);
    FILE *f = fopen(d.logfile, "r");
    assert_non_null(f);
    char line[512];
    while (fgets(line, sizeof(line), f))
        if (strstr(line, "unfinished"))
            fail_msg("the stop waited for its bound: %s", line);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    daemon_start(&g_d,
                 "service_name: agentaflow-it\nserver:\n  load_generator: false\n"
                 "  ws_push_interval: 200ms\n",
                 NULL, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(daemon_stop(&g_d), 0);
    return 0;
}

int main(int argc, char **argv)
{
    int rc = harness_init(argc, argv, "test_websocket");
    if (rc)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_accept),  cmocka_unit_test(test_version_426),
        cmocka_unit_test(test_plain_get_426),     cmocka_unit_test(test_key_400),
        cmocka_unit_test(test_origin_403),        cmocka_unit_test(test_unmasked_1002),
        cmocka_unit_test(test_invalid_utf8_1007), cmocka_unit_test(test_oversize_1009),
        cmocka_unit_test(test_ping_pong),         cmocka_unit_test(test_fragmented_message),
        cmocka_unit_test(test_close_handshake),   cmocka_unit_test(test_bad_upgrades_do_not_log),
        cmocka_unit_test(test_stop_closes_1001),
    };
    rc = cmocka_run_group_tests_name("websocket", tests, setup, teardown);
    harness_fini();
    return rc;
}
