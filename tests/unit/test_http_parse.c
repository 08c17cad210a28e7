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
    const char *t =
        "POST /x HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\nHost: x\r\n\r\nabc";
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
                    "Connection: close\r\nHost: x\r\n\r\n";
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
    assert_int_equal(parse("GET http://h:9000/api/v1/gpus?q=1 HTTP/1.1\r\nHost: x\r\n\r\n", &r, &e),
                     AF__HTTP_OK);
    assert_true(slice_is(r.path, r.path_len, "/api/v1/gpus"));
    assert_true(slice_is(r.query, r.query_len, "q=1"));
    assert_int_equal(parse("GET http://h HTTP/1.1\r\nHost: x\r\n\r\n", &r, &e), AF__HTTP_OK);
    assert_true(slice_is(r.path, r.path_len, "/"));
    assert_int_equal(parse("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", &r, &e), AF__HTTP_OK);
    assert_true(slice_is(r.path, r.path_len, "*"));
    assert_int_equal(parse("GET * HTTP/1.1\r\nHost: x\r\n\r\n", &r, &e), AF__HTTP_ERROR);
    assert_int_equal(e.status, 400);
    assert_int_equal(parse("GET api HTTP/1.1\r\nHost: x\r\n\r\n", &r, &e), AF__HTTP_ERROR);
    assert_non_null(strstr(e.message, "byte 4"));
}

static void test_upgrade(void **state)
{
    (void)state;
    af__http_request r;
    af__http_error e;
    assert_int_equal(parse("GET /ws HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n"
                           "Upgrade: WebSocket\r\nHost: x\r\n\r\n",
                           &r, &e),
                     AF__HTTP_OK);
    assert_true(r.upgrade_websocket);
    assert_int_equal(parse("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nHost: x\r\n\r\n", &r, &e),
                     AF__HTTP_OK);
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
        {"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "method"},
        {"GET /\r\n\r\n", 400, "HTTP/1.1"},
        {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "HTTP/2.0"},
        {"GET / HTTX/1.1\r\nHost: x\r\n\r\n", 400, "byte 6"},
        {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "whitespace before ':'"},
        {"GET / HTTP/1.1\r\nA: b\r\n folded\r\nHost: x\r\n\r\n", 400, "line folding"},
        {"GET / HTTP/1.1\r\nNoColon\r\nHost: x\r\n\r\n", 400, "header line 2"},
        {"GET / HTTP/1.1\r\nA: b\x01\r\nHost: x\r\n\r\n", 400, "control character"},
        {"POST / HTTP/1.1\r\nContent-Length: 12a\r\nHost: x\r\n\r\n", 400, "12a"},
        {"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\nHost: x\r\n\r\n", 400,
         "disagree"},
        {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\nHost: x\r\n\r\n", 400,
         "decimal"},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nHost: x\r\n\r\n", 501, "chunked"},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\nHost: x\r\n\r\n",
         400, "only one"},
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
    assert_int_equal(parse("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\nHost: x\r\n\r\n", &r, &e),
                     AF__HTTP_OK);
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
        af__buf_clear(&out);
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
    af__buf_clear(&out);
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
        /* Only ';' may follow the size's optional whitespace: junk is not an extension. */
        {"11 zz\r\n", 400},
        {"11zz\r\n", 400},
        {"3 \t x;a=b\r\n", 400},
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
        af__buf_clear(&out);
    }
    /* Whitespace before ';' is the BWS RFC 9112 §7.1.1 allows. */
    af__http_chunked c;
    af__http_chunked_init(&c);
    af_buf out;
    af__buf_init(&out);
    af__http_error e;
    bool done = false;
    const char *ok = "3 \t;x=y\r\nabc\r\n0 \r\n\r\n";
    assert_int_equal(af__http_chunked_feed(&c, ok, strlen(ok), &out, 1024, &done, &e),
                     (long)strlen(ok));
    assert_true(done);
    assert_memory_equal(out.data, "abc", 3);
    af__buf_clear(&out);
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

/* The offset named in an error message ("byte N"), or -1. */
static long byte_in(const char *msg)
{
    const char *b = strstr(msg, "byte ");
    return b ? strtol(b + 5, NULL, 10) : -1;
}

static void expect_error(const char *text, int status, long at, const char *says)
{
    af__http_request r;
    af__http_error e;
    memset(&e, 0, sizeof(e));
    int rc = parse(text, &r, &e);
    if (rc != AF__HTTP_ERROR || e.status != status || (at >= 0 && byte_in(e.message) != at) ||
        (says && !strstr(e.message, says)))
        fail_msg("\"%s\": rc %d status %d message \"%s\" (want %d at byte %ld, \"%s\")", text, rc,
                 e.status, e.message, status, at, says ? says : "");
}

static void test_error_positions(void **state)
{
    (void)state;
    expect_error(" / HTTP/1.1\r\nHost: x\r\n\r\n", 400, 0, "method");
    expect_error("\r\n\r\nGE\x01T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, 6, "method");
    expect_error("\rGET / HTTP/1.1\r\nHost: x\r\n\r\n", 400, 0, "method");
    expect_error("GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400, 6,
                 "control character in the target");
    expect_error("GET /a\x7f HTTP/1.1\r\nHost: x\r\n\r\n", 400, 6,
                 "control character in the target");
    expect_error("GET /a\r\n\r\n", 400, 6, "no version");
    expect_error("GET  HTTP/1.1\r\nHost: x\r\n\r\n", 400, 4, "'/'");
    expect_error("GET http:///x HTTP/1.1\r\nHost: x\r\n\r\n", 400, 11, "host");
    expect_error("GET / HTTP/1.1\rX\r\nHost: x\r\n\r\n", 400, 15, "LF after CR");
    expect_error("GET / HTTP/1.10\r\nHost: x\r\n\r\n", 400, 6, "HTTP/1.1");
    expect_error("GET / http/1.1\r\nHost: x\r\n\r\n", 400, 6, "HTTP/1.1");
    expect_error("GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400, 6, "HTTP/1.1");
    expect_error("GET / HTTP/1.2\r\n\r\n", 505, 6, "HTTP/1.2");
    expect_error("GET / HTTP/3.0\r\n\r\n", 505, 6, "not supported");
    /* Header lines: number and byte. */
    expect_error("GET / HTTP/1.1\r\nA: b\r\nHost : x\r\n\r\n", 400, 26, "header line 3 (byte 26)");
    expect_error("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", 400, 20, "whitespace before ':'");
    expect_error("GET / HTTP/1.1\r\n\tx: y\r\nHost: x\r\n\r\n", 400, 16, "folding");
    expect_error("GET / HTTP/1.1\r\n: empty name\r\nHost: x\r\n\r\n", 400, 16, "header line 2");
    expect_error("GET / HTTP/1.1\r\nNa/me: v\r\nHost: x\r\n\r\n", 400, 18, "Name: value");
    expect_error("GET / HTTP/1.1\r\nA: b\rc\r\nHost: x\r\n\r\n", 400, 20, "control character");
    expect_error("GET / HTTP/1.1\r\nA: b\x7f\r\nHost: x\r\n\r\n", 400, 20, "control character");
    expect_error("GET / HTTP/1.1\r\nA: b\r\n\rX", 400, 23, "LF after CR");
    static const char nul[] = "GET / HTTP/1.1\r\nA: x\0y\r\nHost: x\r\n\r\n";
    af__http_request r;
    af__http_error e;
    assert_int_equal(af__http_parse_request(nul, sizeof(nul) - 1, 16384, &r, &e), AF__HTTP_ERROR);
    assert_int_equal(e.status, 400);
    assert_int_equal(byte_in(e.message), 20);
}

static void test_framing_headers(void **state)
{
    (void)state;
    af__http_request r;
    af__http_error e;
    assert_int_equal(
        parse("POST / HTTP/1.1\r\nContent-Length:\t 4611686018427387904 \r\nHost: x\r\n\r\n", &r,
              &e),
        AF__HTTP_OK);
    assert_true(r.has_content_length);
    assert_true(r.content_length == (1ull << 62));
    assert_int_equal(parse("POST / HTTP/1.1\r\ncontent-length: 0\r\nHost: x\r\n\r\n", &r, &e),
                     AF__HTTP_OK);
    assert_true(r.has_content_length);
    assert_int_equal(r.content_length, 0);
    assert_int_equal(
        parse("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5,5\r\nHost: x\r\n\r\n", &r,
              &e),
        AF__HTTP_OK);
    assert_int_equal(r.content_length, 5);
    expect_error("POST / HTTP/1.1\r\nContent-Length: 4611686018427387905\r\nHost: x\r\n\r\n", 400,
                 33, "decimal");
    expect_error("POST / HTTP/1.1\r\nContent-Length: \r\nHost: x\r\n\r\n", 400, -1,
                 "Content-Length");
    expect_error("POST / HTTP/1.1\r\nContent-Length: +1\r\nHost: x\r\n\r\n", 400, -1, "\"+1\"");
    expect_error("POST / HTTP/1.1\r\nContent-Length: -1\r\nHost: x\r\n\r\n", 400, -1, "decimal");
    expect_error("POST / HTTP/1.1\r\nContent-Length: 1, 2\r\nHost: x\r\n\r\n", 400, -1, "disagree");
    expect_error("POST / HTTP/1.1\r\nContent-Length: 12a\r\nHost: x\r\n\r\n", 400, 33,
                 "Content-Length \"12a\" is not a decimal number");

    assert_int_equal(
        parse("POST / HTTP/1.1\r\nTransfer-Encoding: CHUNKED\r\nHost: x\r\n\r\n", &r, &e),
        AF__HTTP_OK);
    assert_true(r.chunked);
    assert_false(r.has_content_length);
    expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\nHost: x\r\n\r\n", 501, 36,
                 "\"gzip\"");
    expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\nHost: x\r\n\r\n", 501,
                 -1, "unsupported transfer coding");
    expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
                 "\r\n",
                 400, -1, "more than once");
    expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: \r\nHost: x\r\n\r\n", 400, -1,
                 "transfer coding");
    expect_error(
        "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nHost: x\r\n\r\n",
        400, -1, "only one");

    /* Connection handling. */
    assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r, &e),
                     AF__HTTP_OK);
    assert_true(r.keep_alive);
    assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", &r, &e),
                     AF__HTTP_OK);
    assert_false(r.keep_alive);
    assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: foo, CLOSE\r\nHost: x\r\n\r\n", &r, &e),
                     AF__HTTP_OK);
    assert_false(r.keep_alive);
    assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: closed\r\nHost: x\r\n\r\n", &r, &e),
                     AF__HTTP_OK);
    assert_true(r.keep_alive);
    assert_int_equal(parse("GET /ws HTTP/1.1\r\nUpgrade: h2c, websocket\r\nConnection: "
                           "UPGRADE\r\nHost: x\r\n\r\n",
                           &r, &e),
                     AF__HTTP_OK);
    assert_true(r.upgrade_websocket);
    assert_int_equal(
        parse("GET /ws HTTP/1.1\r\nUpgrade: websockets\r\nConnection: upgrade\r\nHost: x\r\n\r\n",
              &r, &e),
        AF__HTTP_OK);
    assert_false(r.upgrade_websocket);
    assert_int_equal(parse("POST / HTTP/1.1\r\nExpect: 100-Continue\r\nHost: x\r\n\r\n", &r, &e),
                     AF__HTTP_OK);
    assert_true(r.expect_continue);
    assert_int_equal(parse("POST / HTTP/1.1\r\nExpect: 100-continue-x\r\nHost: x\r\n\r\n", &r, &e),
                     AF__HTTP_OK);
    assert_false(r.expect_continue);
    /* HTTP/1.1 needs exactly one Host (RFC 9112 §3.2); 1.0 at most one. */
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &r, &e), AF__HTTP_OK);
    assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &r, &e), AF__HTTP_OK);
    assert_int_equal(parse("GET / HTTP/1.1\r\nX: y\r\n\r\n", &r, &e), AF__HTTP_ERROR);
    assert_int_equal(e.status, 400);
    assert_non_null(strstr(e.message, "no Host"));
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", &r, &e), AF__HTTP_ERROR);
    assert_int_equal(e.status, 400);
    assert_non_null(strstr(e.message, "more than one Host"));
    assert_int_equal(parse("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", &r, &e), AF__HTTP_ERROR);
}

static void test_header_slices(void **state)
{
    (void)state;
    const char *t = "\r\n\nPUT /p?a HTTP/1.1\nX-Empty:\r\nX-Tabs:\t a b \t\r\nx-tabs: second\n"
                    "X-Obs: caf\xc3\xa9\r\nHost: x\r\n\r\nBODY";
    af__http_request r;
    af__http_error e;
    assert_int_equal(parse(t, &r, &e), AF__HTTP_OK);
    assert_int_equal(r.head_len, strlen(t) - 4); /* leading empty lines included */
    assert_true(slice_is(r.method, r.method_len, "PUT"));
    assert_ptr_equal(r.method, t + 3);
    assert_int_equal(r.n_headers, 5);
    assert_true(slice_is(r.headers[0].name, r.headers[0].name_len, "X-Empty"));
    assert_int_equal(r.headers[0].value_len, 0);
    size_t n = 99;
    const char *v = af__http_header_get(&r, "X-TABS", &n);
    assert_true(slice_is(v, n, "a b")); /* the first of two, inner whitespace kept */
    v = af__http_header_get(&r, "x-obs", &n);
    assert_true(slice_is(v, n, "caf\xc3\xa9")); /* obs-text is allowed in values */
    assert_non_null(af__http_header_get(&r, "x-empty", NULL));
    assert_null(af__http_header_get(&r, "X-Tab", &n));
    assert_null(af__http_header_get(&r, "X-Tabss", &n));
    /* Method case is kept (RFC 9110: methods are case-sensitive). */
    assert_int_equal(parse("get / HTTP/1.1\r\nHost: x\r\n\r\n", &r, &e), AF__HTTP_OK);
    assert_true(slice_is(r.method, r.method_len, "get"));
    assert_int_equal(parse("GET /x? HTTP/1.1\r\nHost: x\r\n\r\n", &r, &e), AF__HTTP_OK);
    assert_non_null(r.query);
    assert_int_equal(r.query_len, 0);
    assert_int_equal(parse("GET https://h:1?q=2 HTTP/1.1\r\nHost: x\r\n\r\n", &r, &e), AF__HTTP_OK);
    assert_true(slice_is(r.path, r.path_len, "/"));
    assert_true(slice_is(r.query, r.query_len, "q=2"));
    assert_true(slice_is(r.target, r.target_len, "https://h:1?q=2"));
    assert_int_equal(parse("OPTIONS HTTP://h/a/b HTTP/1.1\r\nHost: x\r\n\r\n", &r, &e),
                     AF__HTTP_OK);
    assert_true(slice_is(r.path, r.path_len, "/a/b"));
    assert_null(r.query);
}

/* Every prefix of these heads is incomplete and the whole parses: the parser judges lines as
 * they end, so nothing in a valid head may look like an error before its end arrives. */
static void test_every_prefix_mixed(void **state)
{
    (void)state;
    static const char *heads[] = {
        "\r\n\nGET http://h:1/a?b=%20 HTTP/1.0\nConnection: keep-alive\r\nX:\r\n\n",
        "OPTIONS * HTTP/1.1\r\nA:  \t\r\nTransfer-Encoding: chunked\r\nExpect: "
        "100-continue\r\nHost: x\r\n\r\n",
        "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
        "dGhlIHNhbXBsZSBub25jZQ==\r\nHost: x\r\n\r\n",
    };
    for (size_t h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
        size_t n = strlen(heads[h]);
        af__http_request r;
        af__http_error e;
        for (size_t i = 0; i < n; i++) {
            char *copy = malloc(i ? i : 1); /* exact size, so ASan sees any over-read */
            memcpy(copy, heads[h], i);
            int rc = af__http_parse_request(copy, i, 16384, &r, &e);
            free(copy);
            if (rc != AF__HTTP_INCOMPLETE)
                fail_msg("head %zu prefix %zu: %d (%s)", h, i, rc, e.message);
        }
        assert_int_equal(af__http_parse_request(heads[h], n, 16384, &r, &e), AF__HTTP_OK);
        assert_int_equal(r.head_len, n);
    }
}

static void test_head_size_limit(void **state)
{
    (void)state;
    const char *t = "GET /abc HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t n = strlen(t);
    af__http_request r;
    af__http_error e;
    assert_int_equal(af__http_parse_request(t, n, n, &r, &e), AF__HTTP_OK);
    assert_int_equal(af__http_parse_request(t, n, n - 1, &r, &e), AF__HTTP_ERROR);
    assert_int_equal(e.status, 431);
    assert_non_null(strstr(e.message, "exceeds"));
    /* Incomplete: refused once more than max_head bytes are here, not before. */
    assert_int_equal(af__http_parse_request(t, n - 2, n - 2, &r, &e), AF__HTTP_INCOMPLETE);
    assert_int_equal(af__http_parse_request(t, n - 2, n - 3, &r, &e), AF__HTTP_ERROR);
    assert_int_equal(e.status, 431);
    /* Exactly AF__HTTP_MAX_HEADERS fields are fine; the next one names its line. */
    char many[AF__HTTP_MAX_HEADERS * 16 + 64];
    size_t len = (size_t)snprintf(many, sizeof(many), "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 1; i < AF__HTTP_MAX_HEADERS; i++)
        len += (size_t)snprintf(many + len, sizeof(many) - len, "H%d: v\r\n", i);
    size_t at = len;
    memcpy(many + len, "\r\n", 2);
    assert_int_equal(af__http_parse_request(many, len + 2, 16384, &r, &e), AF__HTTP_OK);
    assert_int_equal(r.n_headers, AF__HTTP_MAX_HEADERS);
    len += (size_t)snprintf(many + len, sizeof(many) - len, "One: more\r\n\r\n");
    assert_int_equal(af__http_parse_request(many, len, 16384, &r, &e), AF__HTTP_ERROR);
    assert_int_equal(e.status, 431);
    assert_int_equal(byte_in(e.message), (long)at);
    assert_non_null(strstr(e.message, "header line 66"));
}

static void test_pipelined_with_bodies(void **state)
{
    (void)state;
    const char *t =
        "POST /a HTTP/1.1\r\nContent-Length: 5\r\nHost: x\r\n\r\nhello"
        "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: x\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        "GET /c HTTP/1.1\r\nHost: x\r\n\r\n";
    const char *p = t, *end = t + strlen(t);
    const char *paths[] = {"/a", "/b", "/c"};
    const char *bodies[] = {"hello", "abc", ""};
    for (int i = 0; i < 3; i++) {
        af__http_request r;
        af__http_error e;
        assert_int_equal(af__http_parse_request(p, (size_t)(end - p), 16384, &r, &e), AF__HTTP_OK);
        assert_true(slice_is(r.path, r.path_len, paths[i]));
        p += r.head_len;
        if (r.chunked) {
            af__http_chunked c;
            af__http_chunked_init(&c);
            af_buf out;
            af__buf_init(&out);
            bool done = false;
            long n = af__http_chunked_feed(&c, p, (size_t)(end - p), &out, 100, &done, &e);
            assert_true(done);
            assert_true(n > 0);
            assert_int_equal(out.len, strlen(bodies[i]));
            assert_memory_equal(out.data, bodies[i], out.len);
            af__buf_clear(&out);
            p += n;
        } else {
            assert_memory_equal(p, bodies[i], r.content_length);
            p += r.content_length;
        }
    }
    assert_ptr_equal(p, end);
}

/* Decodes in[] split into three pieces at every pair of positions: the result must not depend
 * on how the bytes arrived. */
static void chunked_all_splits(const char *in, size_t len, const char *want, size_t want_len,
                               size_t want_used)
{
    for (size_t a = 0; a <= len; a++)
        for (size_t b = a; b <= len; b++) {
            af__http_chunked c;
            af__http_chunked_init(&c);
            af_buf out;
            af__buf_init(&out);
            af__http_error e;
            bool done = false;
            size_t cuts[] = {0, a, b, len}, used = 0;
            for (int k = 0; k < 3 && !done; k++) {
                long n = af__http_chunked_feed(&c, in + cuts[k], cuts[k + 1] - cuts[k], &out, 1024,
                                               &done, &e);
                if (n < 0)
                    fail_msg("split %zu/%zu: %s", a, b, e.message);
                used += (size_t)n;
            }
            if (!done || used != want_used || out.len != want_len ||
                memcmp(out.data, want, want_len) != 0)
                fail_msg("split %zu/%zu: done %d used %zu len %zu", a, b, done, used, out.len);
            af__buf_clear(&out);
        }
}

static void test_chunked_shapes(void **state)
{
    (void)state;
    /* Bare LF everywhere, upper-case hex, leading zeros, quoted extension, two trailers. */
    static const char lf[] = "A;x=\"q;r\"\nabcdefghij\n001\n!\n0;last\nT1: a\nT2:\tb\n\nrest";
    chunked_all_splits(lf, sizeof(lf) - 1, "abcdefghij!", 11, sizeof(lf) - 1 - 4);
    static const char crlf[] = "1 ; ext\r\nx\r\n0\r\n\r\n";
    chunked_all_splits(crlf, sizeof(crlf) - 1, "x", 1, sizeof(crlf) - 1);

    /* Once done, nothing more is consumed. */
    af__http_chunked c;
    af__http_chunked_init(&c);
    af_buf out;
    af__buf_init(&out);
    af__http_error e;
    bool done = false;
    assert_int_equal(af__http_chunked_feed(&c, "0\r\n\r\nGET", 8, &out, 10, &done, &e), 5);
    assert_true(done);
    done = false;
    assert_int_equal(af__http_chunked_feed(&c, "GET", 3, &out, 10, &done, &e), 0);
    assert_true(done);
    assert_int_equal(out.len, 0);
    af__buf_clear(&out);
}

static void test_chunked_limit(void **state)
{
    (void)state;
    af__http_chunked c;
    af_buf out;
    af__http_error e;
    bool done = false;
    /* Exactly the limit, over two chunks. */
    af__http_chunked_init(&c);
    af__buf_init(&out);
    const char *ok = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    assert_int_equal(af__http_chunked_feed(&c, ok, strlen(ok), &out, 5, &done, &e),
                     (long)strlen(ok));
    assert_true(done);
    assert_int_equal(out.len, 5);
    /* One more byte: refused when the size line ends, before the data is read. */
    af__http_chunked_init(&c);
    af__buf_reset(&out);
    const char *big = "3\r\nabc\r\n3\r\n";
    assert_int_equal(af__http_chunked_feed(&c, big, strlen(big), &out, 5, &done, &e),
                     AF__HTTP_ERROR);
    assert_int_equal(e.status, 413);
    assert_string_equal(e.message, "request body exceeds 5 bytes");
    /* A huge size does not wrap the limit check. */
    af__http_chunked_init(&c);
    af__buf_reset(&out);
    assert_int_equal(af__http_chunked_feed(&c, "7fffffffffffffff\r\n", 18, &out, 5, &done, &e),
                     AF__HTTP_ERROR);
    assert_int_equal(e.status, 413);
    af__buf_clear(&out);
}

static void test_chunked_error_positions(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        long at;
        const char *says;
    } cases[] = {
        {"\r\n", 0, "hexadecimal chunk size"},
        {"0x5\r\n", 1, "after the chunk size"},
        {"10000000000000000\r\n", 16, "too large"},
        {"5\rX", 2, "LF after CR"},
        {"5;a\x01\r\n", 3, "chunk extension"},
        {"1\r\nxy\r\n", 4, "CRLF after the chunk data"},
        {"1\r\nx\rZ", 5, "LF after CR"},
        {"0\r\nT: a\x02\r\n\r\n", 7, "trailer"},
        {"0\r\nT: a\rb\r\n\r\n", 8, "LF after CR"},
        {"0\r\n\rX", 4, "LF after CR"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* Whole, then byte by byte: the same error at the same byte. */
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            af__http_chunked c;
            af__http_chunked_init(&c);
            af_buf out;
            af__buf_init(&out);
            af__http_error e;
            memset(&e, 0, sizeof(e));
            bool done = false;
            size_t len = strlen(cases[i].in);
            long n = 0;
            if (bytewise) {
                for (size_t k = 0; k < len && n >= 0; k++)
                    n = af__http_chunked_feed(&c, cases[i].in + k, 1, &out, 1024, &done, &e);
            } else {
                n = af__http_chunked_feed(&c, cases[i].in, len, &out, 1024, &done, &e);
            }
            if (n != AF__HTTP_ERROR || e.status != 400 || byte_in(e.message) != cases[i].at ||
                !strstr(e.message, cases[i].says))
                fail_msg("case %zu (%s): %ld status %d \"%s\"", i, bytewise ? "bytewise" : "whole",
                         n, e.status, e.message);
            af__buf_clear(&out);
        }
    }
    /* Over-long extension and trailer lines. */
    size_t big = 9000;
    char *t = malloc(big + 16);
    memcpy(t, "1;", 2);
    memset(t + 2, 'e', big);
    af__http_chunked c;
    af_buf out;
    af__http_error e;
    bool done;
    af__http_chunked_init(&c);
    af__buf_init(&out);
    assert_int_equal(af__http_chunked_feed(&c, t, big + 2, &out, 1024, &done, &e), AF__HTTP_ERROR);
    assert_int_equal(e.status, 400);
    memcpy(t, "0\r\n", 3);
    memset(t + 3, 't', big);
    af__http_chunked_init(&c);
    assert_int_equal(af__http_chunked_feed(&c, t, big + 3, &out, 1024, &done, &e), AF__HTTP_ERROR);
    assert_int_equal(e.status, 400);
    assert_non_null(strstr(e.message, "trailer line longer than 8192"));
    af__buf_clear(&out);
    free(t);
}

static void test_query_escapes(void **state)
{
    (void)state;
    char v[8];
    const char *q = "x=%41%62%2f%2F&a=1&a=2&k=b=c&&last=%2B+";
    size_t n = strlen(q);
    assert_true(af__http_query_arg(q, n, "x", v, sizeof(v)));
    assert_string_equal(v, "Ab//");
    assert_true(af__http_query_arg(q, n, "a", v, sizeof(v)));
    assert_string_equal(v, "1"); /* the first of two */
    assert_true(af__http_query_arg(q, n, "k", v, sizeof(v)));
    assert_string_equal(v, "b=c");
    assert_true(af__http_query_arg(q, n, "last", v, sizeof(v)));
    assert_string_equal(v, "+ ");
    assert_false(af__http_query_arg(q, n, "", v, sizeof(v)) && v[0] != '\0');
    assert_false(af__http_query_arg("a=x%00y", 7, "a", v, sizeof(v))); /* NUL would cut it */
    assert_false(af__http_query_arg("a=%g1", 5, "a", v, sizeof(v)));
    assert_false(af__http_query_arg("a=%", 3, "a", v, sizeof(v)));
    /* The key is compared raw: an escaped key does not match. */
    assert_false(af__http_query_arg("%61=1", 5, "a", v, sizeof(v)));
    /* Fits exactly (7 bytes + NUL), one more does not. */
    assert_true(af__http_query_arg("a=1234567", 9, "a", v, sizeof(v)));
    assert_string_equal(v, "1234567");
    assert_false(af__http_query_arg("a=12345678", 10, "a", v, sizeof(v)));
    /* Only query[0..query_len) is read. */
    assert_false(af__http_query_arg("a=1&b=2", 3, "b", v, sizeof(v)));
    assert_true(af__http_query_arg("a=12&b=2", 3, "a", v, sizeof(v)));
    assert_string_equal(v, "1");
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
        cmocka_unit_test(test_error_positions),
        cmocka_unit_test(test_framing_headers),
        cmocka_unit_test(test_header_slices),
        cmocka_unit_test(test_every_prefix_mixed),
        cmocka_unit_test(test_head_size_limit),
        cmocka_unit_test(test_pipelined_with_bodies),
        cmocka_unit_test(test_chunked_shapes),
        cmocka_unit_test(test_chunked_limit),
        cmocka_unit_test(test_chunked_error_positions),
        cmocka_unit_test(test_query_escapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
