/* B3 propagation: single and multi header extraction and injection, and B3 in the composite
 * propagator next to tracecontext and baggage. */
#include "testutil.h"

#include <string.h>

#include "agentaflow/propagation.h"

#define T128 "80f198ee56343ba864fe8b2a57d3eff7"
#define T64 "a3ce929d0e0e4736"
#define SID "e457b5a2e4d86bd1"
#define PID "05e3ac9a4f6e3b90"
#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

/* Extracts with af_b3_extract into a context that starts as a recognizable local one. */
static int extract(af_headers *h, af_span_context *sc)
{
    af_span_context_init(sc);
    memset(sc->trace_id, 0x77, 16);
    memset(sc->span_id, 0x66, 8);
    assert_int_equal(af_tracestate_put(sc, "keep", "1"), 0);
    af_carrier c = af_headers_carrier(h);
    int r = af_b3_extract(&c, sc);
    af_headers_free(h);
    return r;
}

static void assert_untouched(const af_span_context *sc)
{
    uint8_t t[16], s[8];
    memset(t, 0x77, 16);
    memset(s, 0x66, 8);
    assert_memory_equal(sc->trace_id, t, 16);
    assert_memory_equal(sc->span_id, s, 8);
    assert_false(sc->is_remote);
    assert_string_equal(sc->trace_state, "keep=1");
}

static void assert_ctx(const af_span_context *sc, const char *trace_hex, bool sampled)
{
    char t[33], s[17];
    af_trace_id_to_hex(sc->trace_id, t);
    af_span_id_to_hex(sc->span_id, s);
    assert_string_equal(t, trace_hex);
    assert_string_equal(s, SID);
    assert_int_equal(sc->trace_flags, sampled ? AF_TRACE_FLAG_SAMPLED : 0);
    assert_true(sc->is_remote);
    assert_int_equal(sc->trace_state_len, 0);
}

static void test_single_valid(void **state)
{
    (void)state;
    af_span_context sc;
    assert_int_equal(extract(AF_TEST_HEADERS("b3", T128 "-" SID "-1"), &sc), 1);
    assert_ctx(&sc, T128, true);
    assert_int_equal(extract(AF_TEST_HEADERS("b3", T128 "-" SID "-0"), &sc), 1);
    assert_ctx(&sc, T128, false);
    /* Debug means sampled. */
    assert_int_equal(extract(AF_TEST_HEADERS("b3", T128 "-" SID "-d"), &sc), 1);
    assert_ctx(&sc, T128, true);
    /* No sampling state: a deferred decision, so not sampled here. */
    assert_int_equal(extract(AF_TEST_HEADERS("b3", T128 "-" SID), &sc), 1);
    assert_ctx(&sc, T128, false);
    /* The parent span id is accepted (and not used). */
    assert_int_equal(extract(AF_TEST_HEADERS("b3", T128 "-" SID "-1-" PID), &sc), 1);
    assert_ctx(&sc, T128, true);
    /* 64-bit trace ids are left-padded with zeros. */
    assert_int_equal(extract(AF_TEST_HEADERS("b3", T64 "-" SID "-1"), &sc), 1);
    assert_ctx(&sc, "0000000000000000" T64, true);
    /* Surrounding whitespace and the header name's case do not matter. */
    assert_int_equal(extract(AF_TEST_HEADERS("B3", " \t" T128 "-" SID "-1 "), &sc), 1);
    assert_ctx(&sc, T128, true);
}

static void test_single_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "0", /* deny-only: no ids, nothing to continue */
        "1",
        "d",
        T128,
        T128 "-",
        T128 "-" SID "-",
        T128 "-" SID "-2",
        T128 "-" SID "-true",
        T128 "-" SID "-1-",
        T128 "-" SID "-1-" PID "-x",
        T128 "-" SID "-1-05e3ac9a4f6e3b9",
        T128 "-" SID "-1-" PID "0",
        "80F198EE56343BA864FE8B2A57D3EFF7-" SID "-1",
        T128 "-E457B5A2E4D86BD1-1",
        "80f198ee56343ba864fe8b2a57d3eff-" SID "-1",
        "a3ce929d0e0e47360-" SID "-1",
        "00000000000000000000000000000000-" SID "-1",
        "0000000000000000-" SID "-1",
        T128 "-0000000000000000-1",
        T128 "-e457b5a2e4d86bd-1",
        T128 "--" SID "-1",
        T128 "-" SID " -1",
        "g0f198ee56343ba864fe8b2a57d3eff7-" SID "-1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        af_span_context sc;
        if (extract(AF_TEST_HEADERS("b3", bad[i]), &sc) != 0)
            fail_msg("accepted b3: \"%s\"", bad[i]);
        assert_untouched(&sc);
    }
}

static void test_multi(void **state)
{
    (void)state;
    af_span_context sc;
    assert_int_equal(extract(AF_TEST_HEADERS("X-B3-TraceId", T128, "X-B3-SpanId", SID,
                                             "X-B3-Sampled", "1", "X-B3-ParentSpanId", PID),
                             &sc),
                     1);
    assert_ctx(&sc, T128, true);
    /* Any case of the names; 64-bit trace id; legacy true/false. */
    assert_int_equal(
        extract(AF_TEST_HEADERS("x-b3-traceid", T64, "X-B3-SPANID", SID, "x-B3-sampled", "true"),
                &sc),
        1);
    assert_ctx(&sc, "0000000000000000" T64, true);
    assert_int_equal(
        extract(AF_TEST_HEADERS("X-B3-TraceId", T128, "X-B3-SpanId", SID, "X-B3-Sampled", "false"),
                &sc),
        1);
    assert_ctx(&sc, T128, false);
    assert_int_equal(
        extract(AF_TEST_HEADERS("X-B3-TraceId", T128, "X-B3-SpanId", SID, "X-B3-Sampled", "0"),
                &sc),
        1);
    assert_ctx(&sc, T128, false);
    /* No sampling state. */
    assert_int_equal(extract(AF_TEST_HEADERS("X-B3-TraceId", T128, "X-B3-SpanId", SID), &sc), 1);
    assert_ctx(&sc, T128, false);
    /* Debug implies sampled, whatever X-B3-Sampled says. */
    assert_int_equal(extract(AF_TEST_HEADERS("X-B3-TraceId", T128, "X-B3-SpanId", SID,
                                             "X-B3-Sampled", "0", "X-B3-Flags", "1"),
                             &sc),
                     1);
    assert_ctx(&sc, T128, true);
    assert_int_equal(
        extract(AF_TEST_HEADERS("X-B3-TraceId", T128, "X-B3-SpanId", SID, "X-B3-Flags", "0"), &sc),
        1);
    assert_ctx(&sc, T128, false);

    /* Invalid: each leaves the context as it was. */
    const char *const *cases[] = {
        (const char *const[]){"X-B3-Sampled", "0", NULL}, /* deny-only */
        (const char *const[]){"X-B3-TraceId", T128, NULL},
        (const char *const[]){"X-B3-SpanId", SID, NULL},
        (const char *const[]){"X-B3-TraceId", T128, "X-B3-SpanId", "0000000000000000", NULL},
        (const char *const[]){"X-B3-TraceId", "ABC", "X-B3-SpanId", SID, NULL},
        (const char *const[]){"X-B3-TraceId", T128, "X-B3-SpanId", SID, "X-B3-Sampled", "yes",
                              NULL},
        (const char *const[]){"X-B3-TraceId", T128, "X-B3-SpanId", SID, "X-B3-Flags", "2", NULL},
        (const char *const[]){"X-B3-TraceId", T128, "X-B3-SpanId", SID, "X-B3-ParentSpanId", "x",
                              NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = 0;
        while (cases[i][n])
            n++;
        assert_int_equal(extract(af_test_headers(cases[i], n), &sc), 0);
        assert_untouched(&sc);
    }
}

static void test_single_before_multi(void **state)
{
    (void)state;
    af_span_context sc;
    /* A valid single header wins over the multi headers... */
    assert_int_equal(extract(AF_TEST_HEADERS("b3", T128 "-" SID "-1", "X-B3-TraceId", T64,
                                             "X-B3-SpanId", SID, "X-B3-Sampled", "0"),
                             &sc),
                     1);
    assert_ctx(&sc, T128, true);
    /* ... an invalid one (or the deny-only form) does not hide valid multi headers. */
    assert_int_equal(extract(AF_TEST_HEADERS("b3", "garbage", "X-B3-TraceId", T64, "X-B3-SpanId",
                                             SID, "X-B3-Sampled", "1"),
                             &sc),
                     1);
    assert_ctx(&sc, "0000000000000000" T64, true);
    assert_int_equal(
        extract(AF_TEST_HEADERS("b3", "0", "X-B3-TraceId", T128, "X-B3-SpanId", SID), &sc), 1);
    assert_ctx(&sc, T128, false);
}

static void test_inject_and_round_trip(void **state)
{
    (void)state;
    af_span_context sc;
    assert_int_equal(extract(AF_TEST_HEADERS("b3", T64 "-" SID "-d-" PID), &sc), 1);
    af_headers *out = NULL;
    assert_int_equal(af_headers_new(&out), 0);
    af_carrier oc = af_headers_carrier(out);
    af_b3_inject(&oc, &sc);
    assert_int_equal(af_headers_count(out), 1);
    /* Full-width trace id, sampling state, never the parent id (OpenTelemetry does not
     * share span ids across a request). */
    assert_string_equal(af_headers_get(out, "b3"), "0000000000000000" T64 "-" SID "-1");
    af_b3_multi_inject(&oc, &sc);
    assert_int_equal(af_headers_count(out), 4);
    assert_string_equal(af_headers_get(out, "x-b3-traceid"), "0000000000000000" T64);
    assert_string_equal(af_headers_get(out, "x-b3-spanid"), SID);
    assert_string_equal(af_headers_get(out, "x-b3-sampled"), "1");
    assert_null(af_headers_get(out, "x-b3-parentspanid"));
    assert_null(af_headers_get(out, "x-b3-flags"));

    /* Both formats read back to the same context; an unsampled one says 0. */
    af_span_context back;
    af_span_context_init(&back);
    assert_int_equal(af_b3_extract(&oc, &back), 1);
    assert_memory_equal(back.trace_id, sc.trace_id, 16);
    sc.trace_flags = 0;
    af_b3_inject(&oc, &sc);
    af_b3_multi_inject(&oc, &sc);
    assert_string_equal(af_headers_get(out, "b3"), "0000000000000000" T64 "-" SID "-0");
    assert_string_equal(af_headers_get(out, "x-b3-sampled"), "0");
    assert_int_equal(af_headers_count(out), 4);
    af_headers_free(out);

    /* Nothing for an invalid context or a carrier without set. */
    assert_int_equal(af_headers_new(&out), 0);
    oc = af_headers_carrier(out);
    af_span_context invalid;
    af_span_context_init(&invalid);
    af_b3_inject(&oc, &invalid);
    af_b3_multi_inject(&oc, &invalid);
    af_b3_inject(&oc, NULL);
    af_carrier ro = {oc.get_all, NULL, oc.self};
    af_b3_inject(&ro, &sc);
    af_b3_multi_inject(&ro, &sc);
    assert_int_equal(af_headers_count(out), 0);
    assert_int_equal(af_b3_extract(&oc, NULL), 0);
    assert_int_equal(af_b3_extract(NULL, &sc), 0);
    af_headers_free(out);
}

static void test_composite(void **state)
{
    (void)state;
    af_span_context sc;
    af_baggage *bag = NULL;
    af_headers *h = AF_TEST_HEADERS("b3", T128 "-" SID "-1", "baggage", "k=v");
    af_carrier c = af_headers_carrier(h);
    /* Not configured: ignored. */
    af_span_context_init(&sc);
    assert_int_equal(af_propagate_extract(AF_PROPAGATE_DEFAULT, &c, &sc, NULL), 0);
    /* Either B3 flag reads both formats. */
    assert_int_equal(
        af_propagate_extract(AF_PROPAGATE_B3_MULTI | AF_PROPAGATE_BAGGAGE, &c, &sc, &bag), 1);
    assert_ctx(&sc, T128, true);
    assert_string_equal(af_baggage_get(bag, "k"), "v");
    af_headers_free(h);

    /* traceparent and b3 together: traceparent wins. */
    h = AF_TEST_HEADERS("b3", T128 "-" SID "-1", "traceparent", TP);
    c = af_headers_carrier(h);
    af_span_context_init(&sc);
    assert_int_equal(
        af_propagate_extract(AF_PROPAGATE_TRACECONTEXT | AF_PROPAGATE_B3, &c, &sc, NULL), 1);
    char hex[33];
    af_trace_id_to_hex(sc.trace_id, hex);
    assert_string_equal(hex, "4bf92f3577b34da6a3ce929d0e0e4736");
    af_headers_free(h);
    /* An invalid traceparent falls back to b3. */
    h = AF_TEST_HEADERS("b3", T128 "-" SID "-1", "traceparent", "00-bad");
    c = af_headers_carrier(h);
    assert_int_equal(
        af_propagate_extract(AF_PROPAGATE_TRACECONTEXT | AF_PROPAGATE_B3, &c, &sc, NULL), 1);
    assert_ctx(&sc, T128, true);
    af_headers_free(h);

    /* Inject writes each configured format. */
    af_headers *out = NULL;
    assert_int_equal(af_headers_new(&out), 0);
    af_carrier oc = af_headers_carrier(out);
    af_propagate_inject(AF_PROPAGATE_TRACECONTEXT | AF_PROPAGATE_B3 | AF_PROPAGATE_B3_MULTI |
                            AF_PROPAGATE_BAGGAGE,
                        &oc, &sc, bag);
    assert_string_equal(af_headers_get(out, "traceparent"), "00-" T128 "-" SID "-01");
    assert_string_equal(af_headers_get(out, "b3"), T128 "-" SID "-1");
    assert_string_equal(af_headers_get(out, "x-b3-traceid"), T128);
    assert_string_equal(af_headers_get(out, "baggage"), "k=v");
    assert_int_equal(af_headers_count(out), 6);
    af_headers_free(out);
    af_baggage_free(bag);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_valid),
        cmocka_unit_test(test_single_invalid),
        cmocka_unit_test(test_multi),
        cmocka_unit_test(test_single_before_multi),
        cmocka_unit_test(test_inject_and_round_trip),
        cmocka_unit_test(test_composite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
