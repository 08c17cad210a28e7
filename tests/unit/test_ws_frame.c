/*
 * Unit tests of the WebSocket protocol layer (src/server/ws_frame.c): the accept key (RFC 6455
 * §1.3's example), key and Origin checks, the handshake's refusals on parsed requests, UTF-8
 * validation split at every byte, the frame reader's failures (1002, 1007, 1009) and
 * reassembly fed whole and byte by byte, and the server frame encoder.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "server/ws_frame.h"

/* ---------------------------------------------------------------------------------------- */
/* Handshake.                                                                                */

static void test_accept_key_rfc_example(void **state)
{
    (void)state;
    char out[AF__WS_ACCEPT_LEN + 1];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    assert_int_equal(af__ws_accept_key(key, strlen(key), out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_key_valid(void **state)
{
    (void)state;
    static const char *good[] = {
        "dGhlIHNhbXBsZSBub25jZQ==", "AAAAAAAAAAAAAAAAAAAAAA==", "/////////////////////w=="};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(af__ws_key_valid(good[i], strlen(good[i])));
    static const char *bad[] = {
        "",                             /* missing */
        "dGhlIHNhbXBsZSBub25jZQ",       /* no padding */
        "dGhlIHNhbXBsZSBub25jZQ=",      /* short padding */
        "dGhlIHNhbXBsZSBub25jZQ===",    /* 25 characters */
        "dGhlIHNhbXBsZSBub25jZ===",     /* 15 bytes */
        "dGhlIHNhbXBsZSBub25jZR==",     /* non-zero bits after the 16th byte */
        "dGhlIHNhbXBsZSBub2*jZQ==",     /* not base64 */
        "dGhlIHNhbXBsZSBub25jZQAAAA==", /* 19 bytes */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(af__ws_key_valid(bad[i], strlen(bad[i])));
}

/* Parses a request head built from the upgrade request line and extra header lines. */
static int check(const char *version_line, const char *extra, char *accept, af__ws_refusal *why)
{
    static char text[4096];
    snprintf(text, sizeof(text),
             "GET /ws %s\r\nHost: 127.0.0.1:9000\r\nUpgrade: websocket\r\nConnection: "
             "Upgrade\r\n%s\r\n",
             version_line, extra);
    af__http_request r;
    af__http_error e;
    assert_int_equal(af__http_parse_request(text, strlen(text), 16384, &r, &e), AF__HTTP_OK);
    assert_true(r.upgrade_websocket);
    memset(why, 0, sizeof(*why));
    return af__ws_handshake_check(&r, accept, why);
}

#define KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define V13 "Sec-WebSocket-Version: 13\r\n"

static void test_handshake_check(void **state)
{
    (void)state;
    char accept[AF__WS_ACCEPT_LEN + 1];
    af__ws_refusal why;
    assert_int_equal(check("HTTP/1.1", KEY V13, accept, &why), 0);
    assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(check("HTTP/1.1", KEY V13 "Origin: http://127.0.0.1:9000\r\n", accept, &why),
                     0);

    /* Version: exactly one, exactly 13. */
    static const char *versions[] = {
        "Sec-WebSocket-Version: 8\r\n",     "Sec-WebSocket-Version: 14\r\n",
        "Sec-WebSocket-Version: abc\r\n",   "",
        "Sec-WebSocket-Version: 13, 8\r\n", V13 V13,
        "Sec-WebSocket-Version: 130\r\n",
    };
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        char extra[256];
        snprintf(extra, sizeof(extra), KEY "%s", versions[i]);
        assert_int_equal(check("HTTP/1.1", extra, accept, &why), 426);
        assert_string_equal(why.code, "upgrade_required");
    }

    /* Key: missing, malformed, twice. */
    assert_int_equal(check("HTTP/1.1", V13, accept, &why), 400);
    assert_non_null(strstr(why.message, "Sec-WebSocket-Key"));
    assert_int_equal(check("HTTP/1.1", V13 "Sec-WebSocket-Key: abc\r\n", accept, &why), 400);
    assert_int_equal(check("HTTP/1.1", V13 KEY KEY, accept, &why), 400);

    /* HTTP/1.0, a body. */
    assert_int_equal(check("HTTP/1.0", KEY V13, accept, &why), 400);
    assert_int_equal(check("HTTP/1.1", KEY V13 "Content-Length: 2\r\n", accept, &why), 400);

    /* Two Origin headers are ambiguous. Which single Origin may connect is the request
     * gate's rule (test_guard.c), checked before the handshake. */
    assert_int_equal(check("HTTP/1.1",
                           KEY V13 "Origin: http://127.0.0.1:9000\r\nOrigin: http://evil\r\n",
                           accept, &why),
                     403);
    assert_string_equal(why.code, "forbidden");
}

/* ---------------------------------------------------------------------------------------- */
/* UTF-8.                                                                                    */

static bool utf8_ok_split(const char *s, size_t n, size_t split)
{
    af__utf8 u;
    af__utf8_init(&u);
    return af__utf8_feed(&u, (const uint8_t *)s, split) &&
           af__utf8_feed(&u, (const uint8_t *)s + split, n - split) && af__utf8_complete(&u);
}

static void test_utf8(void **state)
{
    (void)state;
    static const char *good[] = {
        "",
        "plain ascii",
        "caf\xc3\xa9",
        "\xe2\x82\xac 10",
        "\xf0\x9f\x98\x80 emoji",
        "\xed\x9f\xbf",     /* U+D7FF, just below the surrogates */
        "\xee\x80\x80",     /* U+E000, just above */
        "\xf4\x8f\xbf\xbf", /* U+10FFFF */
        "\xe0\xa0\x80",     /* U+0800, the smallest 3-byte form */
        "\xf0\x90\x80\x80", /* U+10000 */
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        size_t n = strlen(good[i]);
        for (size_t k = 0; k <= n; k++)
            assert_true(utf8_ok_split(good[i], n, k));
    }
    static const char *bad[] = {
        "\x80",             /* lone continuation */
        "\xc0\x80",         /* overlong NUL */
        "\xc1\xbf",         /* overlong */
        "\xe0\x80\x80",     /* overlong 3-byte */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xf0\x80\x80\x80", /* overlong 4-byte */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\xf5\x80\x80\x80",
        "\xff",
        "caf\xc3",  /* truncated at the end */
        "\xe2\x82", /* truncated */
        "\xc3\xa9\xa9" /* extra continuation */,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = strlen(bad[i]);
        for (size_t k = 0; k <= n; k++)
            assert_false(utf8_ok_split(bad[i], n, k));
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Reading frames.                                                                           */

static const uint8_t mask_key[4] = {0x37, 0xfa, 0x21, 0x3d};

/* A client frame: b0 (FIN, RSV, opcode), masked with mask_key unless !masked, with the
 * shortest length form unless long_form (16 or 64 bits given as 2 or 8). */
static size_t frame_ex(uint8_t *out, uint8_t b0, bool masked, const void *payload, size_t n,
                       int long_form)
{
    size_t k = 0;
    out[k++] = b0;
    uint8_t m = masked ? 0x80 : 0;
    if (long_form == 8 || (!long_form && n > 0xffff)) {
        out[k++] = m | 127;
        for (int i = 7; i >= 0; i--)
            out[k++] = (uint8_t)((uint64_t)n >> (8 * i));
    } else if (long_form == 2 || n >= 126) {
        out[k++] = m | 126;
        out[k++] = (uint8_t)(n >> 8);
        out[k++] = (uint8_t)n;
    } else {
        out[k++] = (uint8_t)(m | n);
    }
    if (masked) {
        memcpy(out + k, mask_key, 4);
        k += 4;
    }
    for (size_t i = 0; i < n; i++)
        out[k + i] = ((const uint8_t *)payload)[i] ^ (masked ? mask_key[i & 3] : 0);
    return k + n;
}

static size_t frame(uint8_t *out, uint8_t b0, const void *payload, size_t n)
{
    return frame_ex(out, b0, true, payload, n, 0);
}

typedef struct got {
    af__ws_event_type type;
    uint8_t opcode;
    uint16_t code;
    char data[256];
    size_t len;
} got;

/* Feeds in[0..n) in pieces of `chunk` bytes (0 = all at once), collecting events (at most
 * max) until the input is used up or an error. */
static size_t read_events(const uint8_t *in, size_t n, size_t chunk, size_t max_message, got *ev,
                          size_t max)
{
    af__ws_reader r;
    af__ws_reader_init(&r, max_message);
    size_t count = 0, at = 0;
    while (at < n && count < max) {
        size_t piece = chunk && n - at > chunk ? chunk : n - at;
        size_t used = 0;
        while (used < piece && count < max) {
            af__ws_event e;
            size_t k = af__ws_read(&r, in + at + used, piece - used, &e);
            assert_true(k <= piece - used);
            used += k;
            if (e.type == AF__WS_EV_NONE) {
                assert_int_equal(used, piece);
                break;
            }
            ev[count].type = e.type;
            ev[count].opcode = e.opcode;
            ev[count].code = e.code;
            ev[count].len = e.len < sizeof(ev->data) ? e.len : sizeof(ev->data);
            if (e.len && e.data)
                memcpy(ev[count].data, e.data, ev[count].len);
            count++;
            if (e.type == AF__WS_EV_ERROR) {
                af__ws_event again;
                assert_int_equal(af__ws_read(&r, in, n, &again), 0);
                assert_int_equal(again.type, AF__WS_EV_ERROR);
                af__ws_reader_free(&r);
                return count;
            }
        }
        at += piece;
    }
    af__ws_reader_free(&r);
    return count;
}

static void test_rfc_hello(void **state)
{
    (void)state;
    /* RFC 6455 §5.7: a single-frame masked text message containing "Hello". */
    static const uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                    0x7f, 0x9f, 0x4d, 0x51, 0x58};
    got ev[4];
    for (size_t chunk = 0; chunk <= sizeof(hello); chunk++) {
        assert_int_equal(read_events(hello, sizeof(hello), chunk, 65536, ev, 4), 1);
        assert_int_equal(ev[0].type, AF__WS_EV_MESSAGE);
        assert_int_equal(ev[0].opcode, AF__WS_OP_TEXT);
        assert_int_equal(ev[0].len, 5);
        assert_memory_equal(ev[0].data, "Hello", 5);
    }
}

static void test_fragmented_with_ping(void **state)
{
    (void)state;
    uint8_t in[512];
    size_t n = 0;
    n += frame(in + n, 0x01, "caf", 3);            /* text, not final */
    n += frame(in + n, 0x89, "are you there", 13); /* ping between fragments */
    n += frame(in + n, 0x00, "\xc3", 1);           /* é split across fragments */
    n += frame(in + n, 0x80, "\xa9 au lait", 10);  /* final continuation */
    n += frame(in + n, 0x82, "\xff\xfe", 2);       /* binary: any bytes */
    n += frame(in + n, 0x81, "", 0);               /* empty text */
    n += frame(in + n, 0x8A, "", 0);               /* unsolicited pong */
    n += frame(in + n, 0x88,
               "\x03\xe8"
               "bye",
               5); /* close 1000 "bye" */
    for (size_t chunk = 0; chunk <= 20; chunk++) {
        got ev[8];
        assert_int_equal(read_events(in, n, chunk, 65536, ev, 8), 6);
        assert_int_equal(ev[0].type, AF__WS_EV_PING);
        assert_int_equal(ev[0].len, 13);
        assert_memory_equal(ev[0].data, "are you there", 13);
        assert_int_equal(ev[1].type, AF__WS_EV_MESSAGE);
        assert_int_equal(ev[1].opcode, AF__WS_OP_TEXT);
        assert_int_equal(ev[1].len, 14);
        assert_memory_equal(ev[1].data, "caf\xc3\xa9 au lait", 14);
        assert_int_equal(ev[2].type, AF__WS_EV_MESSAGE);
        assert_int_equal(ev[2].opcode, AF__WS_OP_BINARY);
        assert_int_equal(ev[2].len, 2);
        assert_int_equal(ev[3].type, AF__WS_EV_MESSAGE);
        assert_int_equal(ev[3].len, 0);
        assert_int_equal(ev[4].type, AF__WS_EV_PONG);
        assert_int_equal(ev[5].type, AF__WS_EV_CLOSE);
        assert_int_equal(ev[5].code, 1000);
        assert_int_equal(ev[5].len, 3);
        assert_memory_equal(ev[5].data, "bye", 3);
    }
}

/* The first event of in[0..n) is an error with this close code, fed whole or byte by byte. */
static void expect_fail(const uint8_t *in, size_t n, size_t max_message, uint16_t code)
{
    for (size_t chunk = 0; chunk <= 1; chunk++) {
        got ev[4];
        size_t k = read_events(in, n, chunk, max_message, ev, 4);
        assert_true(k >= 1);
        assert_int_equal(ev[k - 1].type, AF__WS_EV_ERROR);
        assert_int_equal(ev[k - 1].code, code);
        for (size_t i = 0; i + 1 < k; i++)
            assert_int_not_equal(ev[i].type, AF__WS_EV_ERROR);
    }
}

static void test_protocol_errors(void **state)
{
    (void)state;
    uint8_t in[256];
    uint8_t big[200];
    memset(big, 'x', sizeof(big));
    /* Unmasked client frame. */
    expect_fail(in, frame_ex(in, 0x81, false, "hi", 2, 0), 65536, 1002);
    /* RSV1, RSV2, RSV3 without an extension. */
    expect_fail(in, frame(in, 0xC1, "hi", 2), 65536, 1002);
    expect_fail(in, frame(in, 0xA1, "hi", 2), 65536, 1002);
    expect_fail(in, frame(in, 0x91, "hi", 2), 65536, 1002);
    /* Reserved opcodes. */
    expect_fail(in, frame(in, 0x83, "hi", 2), 65536, 1002);
    expect_fail(in, frame(in, 0x8B, "hi", 2), 65536, 1002);
    /* Control frames: fragmented, over 125 bytes. */
    expect_fail(in, frame(in, 0x09, "hi", 2), 65536, 1002);
    expect_fail(in, frame(in, 0x89, big, 126), 65536, 1002);
    /* Continuation with nothing to continue; a new message inside a fragmented one. */
    expect_fail(in, frame(in, 0x80, "hi", 2), 65536, 1002);
    size_t n = frame(in, 0x01, "a", 1);
    n += frame(in + n, 0x81, "b", 1);
    expect_fail(in, n, 65536, 1002);
    /* Lengths not in their shortest form, and a 64-bit length with its top bit set. */
    expect_fail(in, frame_ex(in, 0x81, true, "hi", 2, 2), 65536, 1002);
    expect_fail(in, frame_ex(in, 0x81, true, big, 200, 8), 65536, 1002);
    static const uint8_t top[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    expect_fail(top, sizeof(top), 65536, 1002);
    /* Close frames: a 1-byte payload, codes that may not be sent. */
    expect_fail(in, frame(in, 0x88, "\x03", 1), 65536, 1002);
    static const uint16_t bad_codes[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000};
    for (size_t i = 0; i < sizeof(bad_codes) / sizeof(bad_codes[0]); i++) {
        uint8_t p[2] = {(uint8_t)(bad_codes[i] >> 8), (uint8_t)bad_codes[i]};
        expect_fail(in, frame(in, 0x88, p, 2), 65536, 1002);
    }
    static const uint16_t good_codes[] = {1000, 1001, 1002, 1003, 1007, 1011, 1013, 3000, 4999};
    for (size_t i = 0; i < sizeof(good_codes) / sizeof(good_codes[0]); i++) {
        uint8_t p[2] = {(uint8_t)(good_codes[i] >> 8), (uint8_t)good_codes[i]};
        got ev[2];
        assert_int_equal(read_events(in, frame(in, 0x88, p, 2), 0, 65536, ev, 2), 1);
        assert_int_equal(ev[0].type, AF__WS_EV_CLOSE);
        assert_int_equal(ev[0].code, good_codes[i]);
    }
    got ev[2];
    assert_int_equal(read_events(in, frame(in, 0x88, "", 0), 0, 65536, ev, 2), 1);
    assert_int_equal(ev[0].type, AF__WS_EV_CLOSE);
    assert_int_equal(ev[0].code, 0);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    uint8_t in[256];
    /* Invalid in one frame: fails as soon as the bad byte arrives. */
    expect_fail(in, frame(in, 0x81, "ok \xc0\x80", 5), 65536, 1007);
    /* A message that ends inside a character. */
    expect_fail(in, frame(in, 0x81, "caf\xc3", 4), 65536, 1007);
    size_t n = frame(in, 0x01, "caf\xc3", 4);
    n += frame(in + n, 0x80, "x", 1);
    expect_fail(in, n, 65536, 1007);
    /* A close reason that is not UTF-8. */
    expect_fail(in, frame(in, 0x88, "\x03\xe8\xff", 3), 65536, 1007);
    /* Binary messages are not UTF-8 checked. */
    got ev[2];
    assert_int_equal(read_events(in, frame(in, 0x82, "\xc0\x80", 2), 0, 65536, ev, 2), 1);
    assert_int_equal(ev[0].type, AF__WS_EV_MESSAGE);
}

static void test_message_too_big(void **state)
{
    (void)state;
    /* A frame whose length alone exceeds the limit fails before its payload arrives. */
    static const uint8_t head[] = {0x81, 0xFE, 0x01, 0x00, 1, 2, 3, 4}; /* 256 bytes */
    expect_fail(head, sizeof(head), 255, 1009);
    /* Fragments that add up to more than the limit. */
    uint8_t *in = malloc(3 * 70000);
    assert_non_null(in);
    char *p = malloc(40000);
    assert_non_null(p);
    memset(p, 'a', 40000);
    size_t n = frame(in, 0x01, p, 40000);
    n += frame(in + n, 0x80, p, 30000);
    expect_fail(in, n, 65536, 1009);
    /* Exactly the limit is fine. */
    n = frame(in, 0x01, p, 40000);
    n += frame(in + n, 0x80, p, 65536 - 40000);
    got ev[2];
    assert_int_equal(read_events(in, n, 0, 65536, ev, 2), 1);
    assert_int_equal(ev[0].type, AF__WS_EV_MESSAGE);
    assert_int_equal(ev[0].len, sizeof(ev[0].data)); /* copied up to the buffer */
    free(p);
    free(in);
}

/* ---------------------------------------------------------------------------------------- */
/* Server frames.                                                                            */

static void test_encoder(void **state)
{
    (void)state;
    uint8_t h[AF__WS_MAX_HEAD];
    assert_int_equal(af__ws_frame_head(h, AF__WS_OP_TEXT, 0), 2);
    assert_int_equal(h[0], 0x81);
    assert_int_equal(h[1], 0);
    assert_int_equal(af__ws_frame_head(h, AF__WS_OP_TEXT, 125), 2);
    assert_int_equal(h[1], 125);
    assert_int_equal(af__ws_frame_head(h, AF__WS_OP_BINARY, 126), 4);
    assert_int_equal(h[0], 0x82);
    assert_int_equal(h[1], 126);
    assert_int_equal(h[2] << 8 | h[3], 126);
    assert_int_equal(af__ws_frame_head(h, AF__WS_OP_TEXT, 65535), 4);
    assert_int_equal(h[2] << 8 | h[3], 65535);
    assert_int_equal(af__ws_frame_head(h, AF__WS_OP_TEXT, 65536), 10);
    assert_int_equal(h[1], 127);
    static const uint8_t len64[] = {0, 0, 0, 0, 0, 1, 0, 0};
    assert_memory_equal(h + 2, len64, 8);

    uint8_t f[2 + AF__WS_MAX_CONTROL];
    size_t n = af__ws_close_frame(f, 1001, "server stopping");
    assert_int_equal(n, 2 + 2 + 15);
    assert_int_equal(f[0], 0x88);
    assert_int_equal(f[1], 17);
    assert_int_equal(f[2] << 8 | f[3], 1001);
    assert_memory_equal(f + 4, "server stopping", 15);
    assert_int_equal(af__ws_close_frame(f, 0, "ignored"), 2);
    assert_int_equal(f[1], 0);
    /* A long reason is cut to the 125-byte control payload, on a character boundary. */
    char reason[200];
    memset(reason, 'r', sizeof(reason));
    memcpy(reason + 121, "\xe2\x82\xac", 3); /* a 3-byte character across the cut */
    reason[199] = '\0';
    n = af__ws_close_frame(f, 1000, reason);
    assert_int_equal(f[1], 2 + 121);
    assert_int_equal(n, 2 + 2 + 121);

    /* What the encoder makes, masked as a client would send it, reads back. */
    got ev[2];
    uint8_t in[64];
    af__ws_close_frame(f, 1001, "server stopping");
    size_t k = frame(in, 0x88, f + 2, 17);
    assert_int_equal(read_events(in, k, 0, 65536, ev, 2), 1);
    assert_int_equal(ev[0].code, 1001);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key_rfc_example),
        cmocka_unit_test(test_key_valid),
        cmocka_unit_test(test_handshake_check),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_rfc_hello),
        cmocka_unit_test(test_fragmented_with_ping),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_message_too_big),
        cmocka_unit_test(test_encoder),
    };
    return cmocka_run_group_tests_name("ws_frame", tests, NULL, NULL);
}
