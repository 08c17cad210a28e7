/*
 * The request gate (src/server/guard.c): the Host allow-list, Origin, Content-Type, tokens,
 * query validation, target redaction, the whole check over parsed heads, and shedding a
 * connection through the reserve descriptor; plus the shared decoders it relies on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/guard.h"
#include "testutil.h"
#include "util/str.h"

static bool host_ok(const af__guard *g, const char *h, int port)
{
    return af__guard_host_ok(g, h, strlen(h), port);
}

static void guard_with(af__guard *g, const char *bind, const char *const *hosts, size_t n,
                       const char *token, bool auth_read)
{
    af_server_opts o;
    af_server_opts_init(&o);
    o.allowed_hosts = hosts;
    o.n_allowed_hosts = n;
    o.auth_read = auth_read;
    assert_int_equal(af__guard_init(g, &o, bind, token), 0);
}

static void test_host_loopback(void **state)
{
    (void)state;
    af__guard g;
    guard_with(&g, "127.0.0.1", NULL, 0, NULL, false);
    static const char *const ok[] = {"localhost", "localhost:9000", "LOCALHOST:9000",
                                     "127.0.0.1", "127.0.0.1:9000", "127.255.0.9:9000",
                                     "[::1]",     "[::1]:9000"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!host_ok(&g, ok[i], 9000))
            fail_msg("refused %s", ok[i]);
    static const char *const bad[] = {"evil.example",
                                      "evil.example:9000",
                                      "localhost:9001",
                                      "127.0.0.1:1",
                                      "::1",
                                      "[::1]:9001",
                                      "127.0.0.1:",
                                      "127.0.0.1:+9000",
                                      "127.0.0.1:99999",
                                      "128.0.0.1:9000",
                                      "localhost.evil.example",
                                      "127.0.0.1.nip.io",
                                      "",
                                      ":9000",
                                      "[::1",
                                      "127.0.0.1:9000:1",
                                      "0177.0.0.1",
                                      "[::2]:9000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (host_ok(&g, bad[i], 9000))
            fail_msg("accepted %s", bad[i]);
    af__guard_free(&g);
}

static void test_host_allowed_and_bound(void **state)
{
    (void)state;
    static const char *const hosts[] = {"dash.example", "ops.example:8443", "[fd00::5]"};
    af__guard g;
    guard_with(&g, "10.0.0.5", hosts, 3, "t", false);
    assert_true(host_ok(&g, "dash.example", 9000));
    assert_true(host_ok(&g, "Dash.Example:1234", 9000)); /* no port in the entry: any port */
    assert_true(host_ok(&g, "ops.example:8443", 9000));
    assert_false(host_ok(&g, "ops.example:8444", 9000));
    assert_false(host_ok(&g, "ops.example", 9000));
    assert_true(host_ok(&g, "[fd00::5]:80", 9000));
    /* With a list, the bound address is not implied. */
    assert_false(host_ok(&g, "10.0.0.5:9000", 9000));
    assert_true(host_ok(&g, "localhost:9000", 9000));
    af__guard_free(&g);

    /* No list and a non-loopback bind: the bound address itself, on this port. */
    guard_with(&g, "10.0.0.5", NULL, 0, "t", false);
    assert_true(host_ok(&g, "10.0.0.5:9000", 9000));
    assert_true(host_ok(&g, "10.0.0.5", 9000));
    assert_false(host_ok(&g, "10.0.0.5:9001", 9000));
    assert_false(host_ok(&g, "dash.example", 9000));
    af__guard_free(&g);
    guard_with(&g, "fd00::7", NULL, 0, "t", false);
    assert_true(host_ok(&g, "[fd00::7]:9000", 9000));
    af__guard_free(&g);
    /* A wildcard bind names no address: loopback only (or the list). */
    guard_with(&g, "0.0.0.0", NULL, 0, "t", false);
    assert_false(host_ok(&g, "0.0.0.0:9000", 9000));
    assert_true(host_ok(&g, "127.0.0.1:9000", 9000));
    af__guard_free(&g);
}

static bool origin_ok(const af__guard *g, const char *o, const char *host)
{
    return af__guard_origin_ok(g, o, strlen(o), host, host ? strlen(host) : 0);
}

static void test_origin(void **state)
{
    (void)state;
    static const char *const hosts[] = {"dash.example"};
    af__guard g;
    guard_with(&g, "127.0.0.1", hosts, 1, NULL, false);
    assert_true(origin_ok(&g, "http://127.0.0.1:9000", "127.0.0.1:9000"));
    assert_true(origin_ok(&g, "https://LOCALHOST:9000", "localhost:9000"));
    assert_true(origin_ok(&g, "https://dash.example", "127.0.0.1:9000"));
    assert_false(origin_ok(&g, "http://127.0.0.1:3000", "127.0.0.1:9000")); /* another app */
    assert_false(origin_ok(&g, "http://evil.example", "127.0.0.1:9000"));
    assert_false(origin_ok(&g, "null", "127.0.0.1:9000"));
    assert_false(origin_ok(&g, "file://", "127.0.0.1:9000"));
    assert_false(origin_ok(&g, "http://", "127.0.0.1:9000"));
    assert_false(origin_ok(&g, "http://127.0.0.1:9000", NULL));
    /* Compared in full at any length: a 300-byte foreign Origin, and one whose first 255
     * bytes are this host's, are refused. */
    char origin[301];
    memcpy(origin, "http://", 7);
    memset(origin + 7, 'a', 293);
    origin[300] = '\0';
    assert_false(origin_ok(&g, origin, "127.0.0.1:9000"));
    snprintf(origin, sizeof(origin), "http://127.0.0.1:9000");
    memset(origin + 21, 'x', 279);
    origin[300] = '\0';
    assert_false(origin_ok(&g, origin, "127.0.0.1:9000"));
    af__guard_free(&g);
}

static void test_json_type_and_tokens(void **state)
{
    (void)state;
    static const char *const ok[] = {"application/json", "Application/JSON",
                                     "application/json; charset=utf-8", "application/json ;x=y"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_true(af__guard_json_type(ok[i], strlen(ok[i])));
    static const char *const bad[] = {
        "text/plain",        "application/x-www-form-urlencoded", "multipart/form-data",
        "application/jsonp", "application/vnd.api+json",          ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(af__guard_json_type(bad[i], strlen(bad[i])));

    assert_true(af__guard_token_eq("s3cret", "s3cret", 6));
    assert_false(af__guard_token_eq("s3cret", "s3cre", 5));
    assert_false(af__guard_token_eq("s3cret", "s3cret!", 7));
    assert_false(af__guard_token_eq("s3cret", "s3creT", 6));
    assert_false(af__guard_token_eq(NULL, "", 0));
    assert_true(af__guard_bearer_ok("tok", "Bearer tok", 10));
    assert_true(af__guard_bearer_ok("tok", "bearer tok", 10));
    assert_false(af__guard_bearer_ok("tok", "Basic tok", 9));
    assert_false(af__guard_bearer_ok("tok", "Bearer tok2", 11));
    assert_false(af__guard_bearer_ok("tok", NULL, 0));
    assert_true(af__guard_bearer_ok(NULL, NULL, 0)); /* no token configured */
}

static void test_query_and_redaction(void **state)
{
    (void)state;
    char bad[48];
    const char *q = "a=1&b=x%20y&c&d=";
    assert_true(af__guard_query_ok(q, strlen(q), bad, sizeof(bad)));
    q = "a=1&hours=1%00&z=2";
    assert_false(af__guard_query_ok(q, strlen(q), bad, sizeof(bad)));
    assert_string_equal(bad, "hours");
    q = "service=a%zz";
    assert_false(af__guard_query_ok(q, strlen(q), bad, sizeof(bad)));
    assert_string_equal(bad, "service");
    q = "x%4=1";
    assert_false(af__guard_query_ok(q, strlen(q), bad, sizeof(bad)));

    char out[128];
    const char *t = "/api/v1/demo/trigger/gpu-0/Training?access_token=s3cret&hours=5&flag";
    af__guard_redact_target(t, strlen(t), out, sizeof(out));
    assert_string_equal(out,
                        "/api/v1/demo/trigger/gpu-0/Training?access_token=REDACTED&hours=REDACTED"
                        "&flag");
    t = "/api/v1/gpus";
    assert_int_equal(af__guard_redact_target(t, strlen(t), out, sizeof(out)), strlen(t));
    assert_string_equal(out, t);
    t = "/x?";
    af__guard_redact_target(t, strlen(t), out, sizeof(out));
    assert_string_equal(out, "/x?");
    /* Too long: cut at a parameter boundary, never in the middle of a value. */
    char small[32];
    t = "/p?first=1&second=2&third=3&fourth=4";
    size_t n = af__guard_redact_target(t, strlen(t), small, sizeof(small));
    assert_true(n < sizeof(small));
    assert_string_equal(small, "/p?first=REDACTED&...");
    t = "/a-very-long-path-that-does-not-fit-at-all?k=v";
    af__guard_redact_target(t, strlen(t), small, sizeof(small));
    assert_null(strstr(small, "k=v"));
    assert_non_null(strstr(small, "..."));
}

/* Parses a head and runs the gate on it (listener port 9000). */
static int check(const af__guard *g, const char *head, bool metrics, bool ws, af__guard_deny *d)
{
    af__http_request r;
    af__http_error e;
    assert_int_equal(af__http_parse_request(head, strlen(head), 16384, &r, &e), AF__HTTP_OK);
    memset(d, 0, sizeof(*d));
    return af__guard_check(g, &r, 9000, metrics, ws, d);
}

static void test_gate(void **state)
{
    (void)state;
    af__guard g;
    guard_with(&g, "127.0.0.1", NULL, 0, "tok", true);
    af__guard_deny d;
    assert_int_equal(
        check(&g, "GET /api/v1/gpus HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n\r\n", false, false, &d),
        0);
    assert_int_equal(
        check(&g, "GET / HTTP/1.1\r\nHost: evil.example:9000\r\n\r\n", false, false, &d), 421);
    assert_string_equal(d.code, "misdirected_request");
    assert_non_null(strstr(d.message, "evil.example"));
    assert_int_equal(
        check(&g, "GET /metrics HTTP/1.1\r\nHost: evil.example\r\n\r\n", true, false, &d), 421);
    /* HTTP/1.0 without Host: no browser sends that, so no rebinding. */
    assert_int_equal(check(&g, "GET / HTTP/1.0\r\n\r\n", false, false, &d), 0);
    /* Writes. */
    assert_int_equal(check(&g,
                           "POST /api/v1/costs HTTP/1.1\r\nHost: localhost:9000\r\n"
                           "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n",
                           false, false, &d),
                     415);
    assert_string_equal(d.code, "unsupported_media_type");
    assert_int_equal(check(&g,
                           "POST /api/v1/costs HTTP/1.1\r\nHost: localhost:9000\r\n"
                           "Content-Length: 2\r\n\r\n",
                           false, false, &d),
                     415);
    assert_int_equal(check(&g,
                           "DELETE /x HTTP/1.1\r\nHost: localhost:9000\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n",
                           false, false, &d),
                     415);
    assert_int_equal(
        check(&g, "POST /api/v1/demo/trigger/gpu-0/Idle HTTP/1.1\r\nHost: localhost\r\n\r\n", false,
              false, &d),
        0);
    assert_int_equal(check(&g,
                           "POST /api/v1/costs HTTP/1.1\r\nHost: localhost:9000\r\n"
                           "Content-Type: application/json\r\nOrigin: http://evil.example\r\n"
                           "Content-Length: 2\r\n\r\n",
                           false, false, &d),
                     403);
    assert_string_equal(d.code, "cross_origin");
    assert_int_equal(check(&g,
                           "PUT /x HTTP/1.1\r\nHost: localhost:9000\r\n"
                           "Content-Type: application/json\r\nSec-Fetch-Site: cross-site\r\n"
                           "Content-Length: 2\r\n\r\n",
                           false, false, &d),
                     403);
    assert_int_equal(check(&g,
                           "POST /api/v1/costs HTTP/1.1\r\nHost: localhost:9000\r\n"
                           "Content-Type: application/json\r\nOrigin: http://localhost:9000\r\n"
                           "Sec-Fetch-Site: same-origin\r\nContent-Length: 2\r\n\r\n",
                           false, false, &d),
                     0);
    /* A cross-site GET is the browser's CORS business, not a write. */
    assert_int_equal(check(&g,
                           "GET /api/v1/gpus HTTP/1.1\r\nHost: localhost:9000\r\n"
                           "Origin: http://evil.example\r\nSec-Fetch-Site: cross-site\r\n\r\n",
                           false, false, &d),
                     0);
    /* Query strings. */
    assert_int_equal(check(&g, "GET /api/v1/traces?limit=1%00 HTTP/1.1\r\nHost: localhost\r\n\r\n",
                           false, false, &d),
                     400);
    assert_non_null(strstr(d.message, "\"limit\""));
    /* /ws: Origin and the token (header or query) when reads need it. */
    const char *ws = "GET /ws%s HTTP/1.1\r\nHost: localhost:9000\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\n%s\r\n";
    char head[512];
    snprintf(head, sizeof(head), ws, "", "");
    assert_int_equal(check(&g, head, false, true, &d), 401);
    snprintf(head, sizeof(head), ws, "?access_token=tok", "");
    assert_int_equal(check(&g, head, false, true, &d), 0);
    snprintf(head, sizeof(head), ws, "?access_token=tok2", "");
    assert_int_equal(check(&g, head, false, true, &d), 401);
    snprintf(head, sizeof(head), ws, "", "Authorization: Bearer tok\r\n");
    assert_int_equal(check(&g, head, false, true, &d), 0);
    snprintf(head, sizeof(head), ws, "?access_token=tok", "Origin: http://evil.example\r\n");
    assert_int_equal(check(&g, head, false, true, &d), 403);
    af__guard_free(&g);
}

static void test_shed_answers_503(void **state)
{
    (void)state;
    af__guard g;
    guard_with(&g, "127.0.0.1", NULL, 0, NULL, false);
    assert_true(atomic_load(&g.reserve_fd) >= 0);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 8), 0);
    socklen_t sl = sizeof(a);
    getsockname(lfd, (struct sockaddr *)&a, &sl);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_true(af__guard_shed(&g, lfd));
    char buf[512];
    size_t got = 0;
    ssize_t k;
    while (got < sizeof(buf) - 1 && (k = read(c, buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)k;
    buf[got] = '\0';
    assert_int_equal(strncmp(buf, "HTTP/1.1 503 ", 13), 0);
    const char *body = strstr(buf, "\r\n\r\n");
    assert_non_null(body);
    const char *cl = strstr(buf, "content-length: ");
    assert_non_null(cl);
    assert_int_equal((size_t)atoi(cl + 16), strlen(body + 4));
    assert_true(atomic_load(&g.reserve_fd) >= 0); /* taken back */
    /* Nothing waiting: no shed, and the reserve stays. */
    assert_int_equal(fcntl(lfd, F_SETFL, O_NONBLOCK), 0);
    assert_false(af__guard_shed(&g, lfd));
    assert_true(atomic_load(&g.reserve_fd) >= 0);
    close(c);
    close(lfd);
    af__guard_free(&g);
}

static void test_shared_decoders(void **state)
{
    (void)state;
    char out[16];
    size_t n;
    assert_int_equal(af__pct_decode("a%20b+c", 7, false, out, sizeof(out), &n), 0);
    assert_string_equal(out, "a b+c");
    assert_int_equal(n, 5);
    assert_int_equal(af__pct_decode("a+b", 3, true, out, sizeof(out), NULL), 0);
    assert_string_equal(out, "a b");
    assert_int_equal(af__pct_decode("%00", 3, false, out, sizeof(out), NULL), -EINVAL);
    assert_int_equal(af__pct_decode("%0", 2, false, out, sizeof(out), NULL), -EINVAL);
    assert_int_equal(af__pct_decode("%g0", 3, false, out, sizeof(out), NULL), -EINVAL);
    assert_int_equal(af__pct_decode("%2f%2F", 6, false, out, sizeof(out), NULL), 0);
    assert_string_equal(out, "//");
    assert_int_equal(af__pct_decode("0123456789abcdef", 16, false, out, sizeof(out), NULL),
                     -ENOSPC);

    uint64_t v;
    assert_int_equal(af__parse_u64("4294967295", UINT32_MAX, &v), 0);
    assert_int_equal(v, 4294967295u);
    assert_int_equal(af__parse_u64("4294967296", UINT32_MAX, &v), -ERANGE);
    assert_int_equal(af__parse_u64("18446744073709551615", UINT64_MAX, &v), 0);
    assert_int_equal(af__parse_u64("18446744073709551616", UINT64_MAX, &v), -ERANGE);
    static const char *const bad_u[] = {"", "+1", "-1", " 1", "1 ", "0x10", "1e3", "1.0"};
    for (size_t i = 0; i < sizeof(bad_u) / sizeof(bad_u[0]); i++)
        assert_int_equal(af__parse_u64(bad_u[i], UINT64_MAX, &v), -EINVAL);

    double d;
    assert_int_equal(af__parse_decimal("0.5", &d), 0);
    assert_true(d == 0.5);
    assert_int_equal(af__parse_decimal("720", &d), 0);
    static const char *const bad_d[] = {"",    ".5",  "5.",  "+1",    "-1", "0x10",
                                        "1e1", "inf", "nan", "1.2.3", " 1"};
    for (size_t i = 0; i < sizeof(bad_d) / sizeof(bad_d[0]); i++)
        assert_int_equal(af__parse_decimal(bad_d[i], &d), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_loopback),
        cmocka_unit_test(test_host_allowed_and_bound),
        cmocka_unit_test(test_origin),
        cmocka_unit_test(test_json_type_and_tokens),
        cmocka_unit_test(test_query_and_redaction),
        cmocka_unit_test(test_gate),
        cmocka_unit_test(test_shed_answers_503),
        cmocka_unit_test(test_shared_decoders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
