/*
 * Unit tests of the daemon's HTTP/1.1 framing (src/server/http_parse.c): request heads, the
 * smuggling rules, incremental parsing, pipelining, the chunked decoder split at every byte,
 * and query-string arguments.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "server/http_parse.h"

static int parse(const char *text, af__http_request *r, af__http_error *e)
{
    return af__http_parse_request(text, strlen(text), 16384, r, e);
}

static bool slice_is(const char *p, size_t n, const char *want)
{
    return p && n == strlen(want) && memcmp(p, want, n) == 0;
}

static void test_simple_get(void **state)
{
    (void)state;
    const char *t = "GET /api/v1/gpus?limit=5&x=1 HTTP/1.1\r\nHost: h\r\nUser-Agent:  wrk \r\n"
                    "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n";
    af__http_request r;
    af__http_error e;
    assert_int_equal(parse(t, &r, &e), AF__HTTP_OK);
    assert_true(slice_is(r.method, r.method_len, "GET"));
    assert_true(slice_is(r.path, r.path_len, "/api/v1/gpus"));
    assert_true(slice_is(r.query, r.query_len, "limit=5&x=1"));
    assert_true(slice_is(r.target, r.target_len, "/api/v1/gpus?limit=5&x=1"));
    assert_int_equal(r.minor_version, 1);
    assert_int_equal(r.n_headers, 3);
    assert_int_equal(r.head_len, strlen(t));
    assert_true(r.keep_alive);
    assert_false(r.chunked || r.has_content_length || r.expect_continue || r.upgrade_websocket);
    size_t n;
    const char *ua = af__http_header_get(&r, "user-agent", &n);
    assert_true(slice_is(ua, n, "wrk"));
    assert_null(af__http_header_get(&r, "accept", &n));
}

static void test_every_prefix_is_incomplete(void **state)
{
    (void)state;
    const char *t = "POST /x HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc";
    size_t head = strlen(t) - 3;
    af__http_request r;
    af__http_error e;
    for (size_t i = 0; i < head; i++)
        assert_int_equal(af__http_parse_request(t, i, 16384, &r, &e), AF__HTTP_INCOMPLETE);
    assert_int_equal(af__http_parse_request(t, strlen(t), 16384, &r, &e), AF__HTTP_OK);
    assert_int_equal(r.head_len, head);
    assert_true(r.has_content_length);
    assert_int_equal(r.content_length, 3);
    assert_true(r.expect_continue);
}

static void test_pipelined_and_bare_lf(void **state)
{
    (void)state;
    const char *t = "\r\nGET /a HTTP/1.0\nConnection: keep-alive\n\nGET /b HTTP/1.1\r\n"
                    "Connection: close\r\n\r\n";
    af__http_request r;
    af__http_error e;
    assert_int_equal(parse(t, &r, &e), AF__HTTP_OK);
    assert_true(slice_is(r.path, r.path_len, "/a"));
    assert_int_equal(r.minor_version, 0);
    assert_true(r.keep_alive);
    const char *next = t + r.head_len;
    assert_int_equal(parse(next, &r, &e), AF__HTTP_OK);
    assert_true(slice_is(r.path, r.path_len, "/b"));
    assert_false(r.keep_alive);
    assert_int_equal(r.head_len, strlen(next));
    /* HTTP/1.0 closes by default. */
    assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &r, &e), AF__HTTP_OK);
    assert_false(r.keep_alive);
}

static void test_target_forms(void **state)
{
    (void)state;
    af__http_request r;
    af__http_error e;
    assert_int_equal(parse("GET http://h:9000/api/v1/gpus?q=1 HTTP/1.1\r\n\r\n", &r, &e),
                     AF__HTTP_OK);
    assert_true(slice_is(r.path, r.path_len, "/api/v1/gpus"));
    assert_true(slice_is(r.query, r.query_len, "q=1"));
    assert_int_equal(parse("GET http://h HTTP/1.1\r\n\r\n", &r, &e), AF__HTTP_OK);
    assert_true(slice_is(r.path, r.path_len, "/"));
    assert_int_equal(parse("OPTIONS * HTTP/1.1\r\n\r\n", &r, &e), AF__HTTP_OK);
    assert_true(slice_is(r.path, r.path_len, "*"));
    assert_int_equal(parse("GET * HTTP/1.1\r\n\r\n", &r, &e), AF__HTTP_ERROR);
    assert_int_equal(e.status, 400);
    assert_int_equal(parse("GET api HTTP/1.1\r\n\r\n", &r, &e), AF__HTTP_ERROR);
    assert_non_null(strstr(e.message, "byte 4"));
}

static void test_upgrade(void **state)
{
    (void)state;
    af__http_request r;
    af__http_error e;
    assert_int_equal(parse("GET /ws HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n"
                           "Upgrade: WebSocket\r\n\r\n",
                           &r, &e),
                     AF__HTTP_OK);
    assert_true(r.upgrade_websocket);
    assert_int_equal(parse("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", &r, &e), AF__HTTP_OK);
    assert_false(r.upgrade_websocket); /* Connection: upgrade is required too */
}

typedef struct bad_case {
    const char *text;
    int status;
    const char *says;
} bad_case;

static void test_errors_say_where(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {"G@T / HTTP/1.1\r\n\r\n", 400, "method"},
        {"GET /\r\n\r\n", 400, "HTTP/1.1"},
        {"GET / HTTP/2.0\r\n\r\n", 505, "HTTP/2.0"},
        {"GET / HTTX/1.1\r\n\r\n", 400, "byte 6"},
        {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "whitespace before ':'"},
        {"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400, "line folding"},
        {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400, "header line 2"},
        {"GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", 400, "control character"},
        {"POST / HTTP/1.1\r\nContent-Length: 12a\r\n\r\n", 400, "12a"},
        {"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400, "disagree"},
        {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 400, "decimal"},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "chunked"},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400,
         "only one"},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        af__http_request r;
        af__http_error e;
        memset(&e, 0, sizeof(e));
        int rc = parse(cases[i].text, &r, &e);
        if (rc != AF__HTTP_ERROR || e.status != cases[i].status ||
            !strstr(e.message, cases[i].says))
            fail_msg("case %zu: rc %d status %d message \"%s\"", i, rc, e.status, e.message);
    }
    /* Equal repeated Content-Lengths are one. */
    af__http_request r;
    af__http_error e;
    assert_int_equal(parse("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n", &r, &e), AF__HTTP_OK);
    assert_int_equal(r.content_length, 3);
}

static void test_limits(void **state)
{
    (void)state;
    af__http_request r;
    af__http_error e;
    size_t big = 20000;
    char *t = malloc(big + 64);
    int n = snprintf(t, 64, "GET / HTTP/1.1\r\nX: ");
    memset(t + n, 'a', big);
    /* Incomplete but already too long. */
    assert_int_equal(af__http_parse_request(t, (size_t)n + big, 16384, &r, &e), AF__HTTP_ERROR);
    assert_int_equal(e.status, 431);
    free(t);
    /* Too many fields. */
    char many[AF__HTTP_MAX_HEADERS * 8 + 64];
    size_t len = (size_t)snprintf(many, sizeof(many), "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= AF__HTTP_MAX_HEADERS; i++)
        len += (size_t)snprintf(many + len, sizeof(many) - len, "H%d: v\r\n", i % 10);
    len += (size_t)snprintf(many + len, sizeof(many) - len, "\r\n");
    assert_int_equal(af__http_parse_request(many, len, 16384, &r, &e), AF__HTTP_ERROR);
    assert_int_equal(e.status, 431);
}

static const char chunked_body[] = "4;name=v\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks."
                                   "\r\n0\r\nTrailer: x\r\n\r\nNEXT";

static void test_chunked_every_split(void **state)
{
    (void)state;
    size_t total = sizeof(chunked_body) - 1, body_end = total - 4;
    for (size_t split = 0; split <= total; split++) {
        af__http_chunked c;
        af__http_chunked_init(&c);
        af_buf out;
        af__buf_init(&out);
        af__http_error e;
        bool done = false;
        long a = af__http_chunked_feed(&c, chunked_body, split, &out, 1024, &done, &e);
        assert_true(a >= 0);
        size_t used = (size_t)a;
        if (!done) {
            assert_int_equal(used, split);
            long b = af__http_chunked_feed(&c, chunked_body + split, total - split, &out, 1024,
                                           &done, &e);
            assert_true(b >= 0);
            used += (size_t)b;
        }
        assert_true(done);
        assert_int_equal(used, body_end); /* "NEXT" belongs to the next request */
        assert_int_equal(out.len, 23);
        assert_memory_equal(out.data, "Wikipedia in\r\n\r\nchunks.", 23);
        af__buf_free(&out);
    }
    /* Byte by byte. */
    af__http_chunked c;
    af__http_chunked_init(&c);
    af_buf out;
    af__buf_init(&out);
    af__http_error e;
    bool done = false;
    for (size_t i = 0; i < body_end; i++)
        assert_int_equal(af__http_chunked_feed(&c, chunked_body + i, 1, &out, 1024, &done, &e), 1);
    assert_true(done);
    assert_int_equal(out.len, 23);
    af__buf_free(&out);
}

static void test_chunked_errors(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int status;
    } cases[] = {
        {"zz\r\n", 400},
        {"4\r\nWikiX\r\n", 400},
        {"fffffffffffffffffff\r\n", 400},
        {"800\r\n", 413},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        af__http_chunked c;
        af__http_chunked_init(&c);
        af_buf out;
        af__buf_init(&out);
        af__http_error e;
        bool done;
        long n = af__http_chunked_feed(&c, cases[i].in, strlen(cases[i].in), &out, 1024, &done, &e);
        if (n != AF__HTTP_ERROR || e.status != cases[i].status || !e.message[0])
            fail_msg("case %zu: %ld status %d", i, n, e.status);
        af__buf_free(&out);
    }
}

static void test_query_args(void **state)
{
    (void)state;
    const char *q = "service=api%20gw&op=a+b&empty=&flag&bad=%zz&limit=20";
    char v[64];
    assert_true(af__http_query_arg(q, strlen(q), "service", v, sizeof(v)));
    assert_string_equal(v, "api gw");
    assert_true(af__http_query_arg(q, strlen(q), "op", v, sizeof(v)));
    assert_string_equal(v, "a b");
    assert_true(af__http_query_arg(q, strlen(q), "empty", v, sizeof(v)));
    assert_string_equal(v, "");
    assert_true(af__http_query_arg(q, strlen(q), "flag", v, sizeof(v)));
    assert_string_equal(v, "");
    assert_false(af__http_query_arg(q, strlen(q), "bad", v, sizeof(v)));
    assert_true(af__http_query_arg(q, strlen(q), "limit", v, sizeof(v)));
    assert_string_equal(v, "20");
    assert_false(af__http_query_arg(q, strlen(q), "lim", v, sizeof(v)));
    assert_false(af__http_query_arg(q, strlen(q), "service", v, 4)); /* does not fit */
    assert_false(af__http_query_arg("a=%4", 4, "a", v, sizeof(v)));
    assert_false(af__http_query_arg(NULL, 0, "a", v, sizeof(v)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_every_prefix_is_incomplete),
        cmocka_unit_test(test_pipelined_and_bare_lf),
        cmocka_unit_test(test_target_forms),
        cmocka_unit_test(test_upgrade),
        cmocka_unit_test(test_errors_say_where),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_chunked_every_split),
        cmocka_unit_test(test_chunked_errors),
        cmocka_unit_test(test_query_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
