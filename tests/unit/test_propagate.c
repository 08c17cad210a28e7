/* af_headers, the Trace Context and Baggage propagators over a carrier, composite
 * propagation and OTEL_PROPAGATORS. */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/log.h"
#include "agentaflow/propagation.h"

#define TRACE_HEX "12345678901234567890123456789012"
#define SPAN_HEX "1234567890123456"
#define TP(flags) "00-" TRACE_HEX "-" SPAN_HEX "-" flags

/* ---------------------------------------------------------------------------------------- */
/* Helpers.                                                                                  */

/* Extracts from the given fields into a context that starts as a recognizable local one. */
static int extract(af_headers *h, af_span_context *sc)
{
    af_span_context_init(sc);
    memset(sc->trace_id, 0x77, 16);
    memset(sc->span_id, 0x66, 8);
    af_carrier c = af_headers_carrier(h);
    int r = af_tracecontext_extract(&c, sc);
    af_headers_free(h);
    return r;
}

static void assert_unchanged(const af_span_context *sc)
{
    uint8_t t[16], s[8];
    memset(t, 0x77, 16);
    memset(s, 0x66, 8);
    assert_memory_equal(sc->trace_id, t, 16);
    assert_memory_equal(sc->span_id, s, 8);
    assert_false(sc->is_remote);
    assert_int_equal(sc->trace_state_len, 0);
}

static void assert_extracted(const af_span_context *sc, const char *trace_state)
{
    char hex[33];
    af_trace_id_to_hex(sc->trace_id, hex);
    assert_string_equal(hex, TRACE_HEX);
    assert_true(sc->is_remote);
    assert_string_equal(sc->trace_state, trace_state);
}

/* Collects log lines so tests can check what was (not) logged. */
static char log_text[4096];

static void log_capture(af_log_level level, const char *msg, void *user)
{
    (void)user;
    size_t w = strlen(log_text);
    snprintf(log_text + w, sizeof(log_text) - w, "%s: %s\n", af_log_level_name(level), msg);
}

static int log_setup(void **state)
{
    (void)state;
    log_text[0] = '\0';
    af_log_set_level(AF_LOG_DEBUG);
    af_log_set_handler(log_capture, NULL);
    return 0;
}

static int log_teardown(void **state)
{
    (void)state;
    af_log_set_handler(NULL, NULL);
    af_log_set_level(AF_LOG_INFO);
    unsetenv("OTEL_PROPAGATORS");
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* af_headers.                                                                               */

static void test_headers(void **state)
{
    (void)state;
    af_headers *h =
        AF_TEST_HEADERS("Content-Type", "text/plain", "X-A", "1", "x-a", "2", "X-B", "3");
    assert_int_equal(af_headers_count(h), 4);
    assert_string_equal(af_headers_get(h, "content-type"), "text/plain");
    assert_string_equal(af_headers_get(h, "X-a"), "1");
    assert_null(af_headers_get(h, "x-c"));

    af_carrier c = af_headers_carrier(h);
    af_str out[1];
    assert_int_equal(c.get_all(c.self, "X-A", out, 1), 2);
    assert_int_equal(out[0].len, 1);
    assert_memory_equal(out[0].ptr, "1", 1);
    assert_int_equal(c.get_all(c.self, "nope", out, 1), 0);
    assert_int_equal(c.get_all(c.self, "x-a", NULL, 0), 2);

    /* set replaces every match by one field, in the first one's position. */
    assert_int_equal(c.set(c.self, "x-a", "new"), 0);
    assert_int_equal(af_headers_count(h), 3);
    const char *n, *v;
    af_headers_at(h, 1, &n, &v);
    assert_string_equal(n, "x-a");
    assert_string_equal(v, "new");
    af_headers_at(h, 2, &n, &v);
    assert_string_equal(n, "X-B");
    af_headers_at(h, 3, &n, &v);
    assert_null(n);
    assert_null(v);
    assert_int_equal(af_headers_set(h, "x-new", "z"), 0);
    assert_int_equal(af_headers_count(h), 4);
    assert_string_equal(af_headers_get(h, "X-NEW"), "z");
    assert_int_equal(af_headers_add(h, NULL, "v"), -EINVAL);
    af_headers_free(h);
    af_headers_free(NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* Trace Context extraction.                                                                 */

static void test_extract_valid(void **state)
{
    (void)state;
    af_span_context sc;
    assert_int_equal(extract(AF_TEST_HEADERS("traceparent", TP("01")), &sc), 1);
    assert_extracted(&sc, "");
    assert_int_equal(sc.trace_flags, 1);
    const char *names[] = {"TraceParent", "TrAcEpArEnT", "TRACEPARENT"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(extract(AF_TEST_HEADERS(names[i], TP("01"), "TraceState", "foo=1"), &sc),
                         1);
        assert_extracted(&sc, "foo=1");
    }
}

static void test_extract_ows(void **state)
{
    (void)state;
    const char *vals[] = {" " TP("01"), "\t" TP("01"), TP("01") " ", TP("01") "\t",
                          "\t " TP("01") " \t"};
    for (size_t i = 0; i < 5; i++) {
        af_span_context sc;
        assert_int_equal(extract(AF_TEST_HEADERS("traceparent", vals[i]), &sc), 1);
        assert_extracted(&sc, "");
    }
}

static void test_extract_invalid_traceparent(void **state)
{
    (void)state;
    af_span_context sc;
    assert_int_equal(extract(AF_TEST_HEADERS("trace-parent", TP("01")), &sc), 0);
    assert_unchanged(&sc);
    assert_int_equal(
        extract(AF_TEST_HEADERS("traceparent", "00-" TRACE_HEX "-" SPAN_HEX "-01."), &sc), 0);
    assert_unchanged(&sc);
    /* Duplicated traceparent fields are invalid, even when identical. */
    assert_int_equal(
        extract(AF_TEST_HEADERS("traceparent", TP("01"), "traceparent", TP("01")), &sc), 0);
    assert_unchanged(&sc);
    assert_int_equal(extract(AF_TEST_HEADERS("tracestate", "foo=1"), &sc), 0);
    assert_unchanged(&sc);
    /* An invalid traceparent means the tracestate is not even looked at. */
    assert_int_equal(extract(AF_TEST_HEADERS("traceparent",
                                             "00-00000000000000000000000000000000-" SPAN_HEX "-01",
                                             "tracestate", "foo=1"),
                             &sc),
                     0);
    assert_unchanged(&sc);
    assert_int_equal(extract(AF_TEST_HEADERS("x", "y"), &sc), 0);
    assert_unchanged(&sc);
}

static void test_extract_tracestate_fields(void **state)
{
    (void)state;
    af_span_context sc;
    assert_int_equal(extract(AF_TEST_HEADERS("traceparent", TP("00"), "tracestate", "foo=1,bar=2",
                                             "tracestate", "rojo=1,congo=2", "tracestate", "baz=3"),
                             &sc),
                     1);
    assert_extracted(&sc, "foo=1,bar=2,rojo=1,congo=2,baz=3");

    /* Empty fields. */
    assert_int_equal(extract(AF_TEST_HEADERS("traceparent", TP("00"), "tracestate", ""), &sc), 1);
    assert_extracted(&sc, "");
    assert_int_equal(
        extract(AF_TEST_HEADERS("traceparent", TP("00"), "tracestate", "foo=1", "tracestate", ""),
                &sc),
        1);
    assert_extracted(&sc, "foo=1");
    assert_int_equal(
        extract(AF_TEST_HEADERS("traceparent", TP("00"), "tracestate", "", "tracestate", "foo=1"),
                &sc),
        1);
    assert_extracted(&sc, "foo=1");

    /* Invalid tracestate: traceparent is still taken, the state is dropped. */
    const char *bad[] = {"foo=bar=baz", "foo=,bar=3", "FOO=1", "@foo=1,bar=2"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(
            extract(AF_TEST_HEADERS("traceparent", TP("00"), "tracestate", bad[i]), &sc), 1);
        assert_extracted(&sc, "");
    }
    /* Duplicates, within or across fields, are propagated with the first value kept. */
    assert_int_equal(
        extract(AF_TEST_HEADERS("traceparent", TP("00"), "tracestate", "foo=1,foo=1"), &sc), 1);
    assert_extracted(&sc, "foo=1");
    assert_int_equal(extract(AF_TEST_HEADERS("traceparent", TP("00"), "tracestate", "foo=1",
                                             "tracestate", "foo=2"),
                             &sc),
                     1);
    assert_extracted(&sc, "foo=1");
    /* Over-long key in a second field invalidates the whole joined header. */
    char key[300];
    memset(key, 'z', 257);
    strcpy(key + 257, "=1");
    assert_int_equal(
        extract(AF_TEST_HEADERS("traceparent", TP("00"), "tracestate", "foo=1", "tracestate", key),
                &sc),
        1);
    assert_extracted(&sc, "");
}

static void test_extract_member_count_across_fields(void **state)
{
    (void)state;
    const char *f1 = "bar01=01,bar02=02,bar03=03,bar04=04,bar05=05,bar06=06,bar07=07,bar08=08,"
                     "bar09=09,bar10=10";
    const char *f2 = "bar11=11,bar12=12,bar13=13,bar14=14,bar15=15,bar16=16,bar17=17,bar18=18,"
                     "bar19=19,bar20=20";
    const char *f3 = "bar21=21,bar22=22,bar23=23,bar24=24,bar25=25,bar26=26,bar27=27,bar28=28,"
                     "bar29=29,bar30=30";
    af_span_context sc;
    assert_int_equal(
        extract(AF_TEST_HEADERS("traceparent", TP("00"), "tracestate", f1, "tracestate", f2,
                                "tracestate", f3, "tracestate", "bar31=31,bar32=32"),
                &sc),
        1);
    char v[4];
    assert_int_equal(af_tracestate_get(&sc, "bar01", v, sizeof(v)), 2);
    assert_string_equal(v, "01");
    assert_int_equal(af_tracestate_get(&sc, "bar32", v, sizeof(v)), 2);
    assert_int_equal(
        extract(AF_TEST_HEADERS("traceparent", TP("00"), "tracestate", f1, "tracestate", f2,
                                "tracestate", f3, "tracestate", "bar31=31,bar32=32,bar33=33"),
                &sc),
        1);
    assert_extracted(&sc, "");
}

/* ---------------------------------------------------------------------------------------- */
/* Trace Context injection.                                                                  */

static void test_inject(void **state)
{
    (void)state;
    af_headers *h = NULL;
    assert_int_equal(af_headers_new(&h), 0);
    af_carrier c = af_headers_carrier(h);

    af_span_context sc;
    af_span_context_init(&sc);
    af_tracecontext_inject(&c, &sc);
    assert_int_equal(af_headers_count(h), 0);

    assert_int_equal(af_trace_id_from_hex(TRACE_HEX, 32, sc.trace_id), 0);
    assert_int_equal(af_span_id_from_hex(SPAN_HEX, 16, sc.span_id), 0);
    sc.trace_flags = 0x81;
    af_tracecontext_inject(&c, &sc);
    assert_int_equal(af_headers_count(h), 1);
    const char *n, *v;
    af_headers_at(h, 0, &n, &v);
    assert_string_equal(n, "traceparent");
    assert_string_equal(v, TP("01"));

    assert_int_equal(af_tracestate_put(&sc, "vendor", "x"), 0);
    af_tracecontext_inject(&c, &sc);
    assert_int_equal(af_headers_count(h), 2);
    af_headers_at(h, 1, &n, &v);
    assert_string_equal(n, "tracestate");
    assert_string_equal(v, "vendor=x");
    af_headers_free(h);
}

static void test_random_flag_and_version_propagated(void **state)
{
    (void)state;
    const char *in[] = {TP("03"), TP("02"), TP("ff"),
                        "cc-" TRACE_HEX "-" SPAN_HEX "-03-future-fields"};
    const char *want[] = {TP("03"), TP("02"), TP("03"), TP("03")};
    for (size_t i = 0; i < 4; i++) {
        af_span_context sc;
        assert_int_equal(
            extract(AF_TEST_HEADERS("traceparent", in[i], "tracestate", "a=1, b=2"), &sc), 1);
        af_headers *out = NULL;
        assert_int_equal(af_headers_new(&out), 0);
        af_carrier c = af_headers_carrier(out);
        af_tracecontext_inject(&c, &sc);
        assert_string_equal(af_headers_get(out, "traceparent"), want[i]);
        assert_string_equal(af_headers_get(out, "tracestate"), "a=1,b=2");

        /* And back: the same context comes out again. */
        af_span_context again;
        af_span_context_init(&again);
        assert_int_equal(af_tracecontext_extract(&c, &again), 1);
        assert_memory_equal(again.trace_id, sc.trace_id, 16);
        assert_memory_equal(again.span_id, sc.span_id, 8);
        assert_int_equal(again.trace_flags, sc.trace_flags);
        assert_string_equal(again.trace_state, sc.trace_state);
        af_headers_free(out);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Baggage over a carrier.                                                                   */

static void test_baggage_extract_inject(void **state)
{
    (void)state;
    af_headers *h = AF_TEST_HEADERS("baggage", "a=1,b=%20x", "Baggage", "c=3;meta", "other", "d=4");
    af_carrier c = af_headers_carrier(h);
    af_baggage *b = NULL;
    assert_int_equal(af_baggage_extract(&c, &b), 3);
    assert_non_null(b);
    assert_string_equal(af_baggage_get(b, "b"), " x");
    assert_null(af_baggage_get(b, "d"));
    af_headers_free(h);

    af_headers *out = NULL;
    assert_int_equal(af_headers_new(&out), 0);
    af_carrier oc = af_headers_carrier(out);
    af_baggage_inject(&oc, b);
    assert_string_equal(af_headers_get(out, "baggage"), "a=1,b=%20x,c=3;meta");

    af_baggage *back = NULL;
    assert_int_equal(af_baggage_extract(&oc, &back), 3);
    for (size_t i = 0; i < 3; i++) {
        const char *k1, *v1, *m1, *k2, *v2, *m2;
        af_baggage_at(b, i, &k1, &v1, &m1);
        af_baggage_at(back, i, &k2, &v2, &m2);
        assert_string_equal(k1, k2);
        assert_string_equal(v1, v2);
        assert_string_equal(m1, m2);
    }
    af_baggage_free(back);

    /* Nothing to extract: *b stays NULL. An empty baggage injects nothing. */
    af_baggage *none = NULL;
    af_headers *empty = AF_TEST_HEADERS("baggage", "malformed", "x", "y");
    af_carrier ec = af_headers_carrier(empty);
    assert_int_equal(af_baggage_extract(&ec, &none), 0);
    assert_null(none);
    assert_int_equal(af_baggage_new(&none), 0);
    af_baggage_inject(&ec, none);
    assert_string_equal(af_headers_get(empty, "baggage"), "malformed");
    af_baggage_free(none);
    af_headers_free(empty);
    af_headers_free(out);
    af_baggage_free(b);
}

static void test_baggage_many_fields(void **state)
{
    (void)state;
    /* More fields than fit the stack array, and the 64-member limit across fields. */
    af_headers *h = NULL;
    assert_int_equal(af_headers_new(&h), 0);
    for (int i = 0; i < 40; i++) {
        char v[32];
        snprintf(v, sizeof(v), "k%da=1,k%db=2", i, i);
        assert_int_equal(af_headers_add(h, "baggage", v), 0);
    }
    af_carrier c = af_headers_carrier(h);
    af_baggage *b = NULL;
    assert_int_equal(af_baggage_extract(&c, &b), 64);
    assert_int_equal(af_baggage_count(b), 64);
    assert_non_null(af_baggage_get(b, "k31b"));
    assert_null(af_baggage_get(b, "k32a"));
    af_baggage_free(b);
    af_headers_free(h);
}

/* ---------------------------------------------------------------------------------------- */
/* Composite propagation and OTEL_PROPAGATORS.                                               */

static void test_composite(void **state)
{
    (void)state;
    af_headers *h = AF_TEST_HEADERS("traceparent", TP("01"), "tracestate", "t=1", "baggage", "k=v");
    af_carrier c = af_headers_carrier(h);
    af_span_context sc;
    af_baggage *b = NULL;
    af_span_context_init(&sc);
    assert_int_equal(af_propagate_extract(AF_PROPAGATE_DEFAULT, &c, &sc, &b), 1);
    assert_extracted(&sc, "t=1");
    assert_string_equal(af_baggage_get(b, "k"), "v");

    af_headers *out = NULL;
    assert_int_equal(af_headers_new(&out), 0);
    af_carrier oc = af_headers_carrier(out);
    af_propagate_inject(AF_PROPAGATE_DEFAULT, &oc, &sc, b);
    assert_int_equal(af_headers_count(out), 3);
    assert_string_equal(af_headers_get(out, "traceparent"), TP("01"));
    assert_string_equal(af_headers_get(out, "tracestate"), "t=1");
    assert_string_equal(af_headers_get(out, "baggage"), "k=v");
    af_headers_free(out);
    af_baggage_free(b);

    /* Only the chosen propagators run. */
    b = NULL;
    af_span_context_init(&sc);
    assert_int_equal(af_propagate_extract(AF_PROPAGATE_BAGGAGE, &c, &sc, &b), 0);
    assert_false(af_span_context_is_valid(&sc));
    assert_non_null(b);
    af_baggage_free(b);
    b = NULL;
    assert_int_equal(af_propagate_extract(AF_PROPAGATE_TRACECONTEXT, &c, &sc, &b), 1);
    assert_null(b);
    assert_int_equal(af_propagate_extract(0, &c, &sc, &b), 0);
    assert_int_equal(af_propagate_extract(AF_PROPAGATE_DEFAULT, &c, &sc, NULL), 1);

    assert_int_equal(af_headers_new(&out), 0);
    oc = af_headers_carrier(out);
    af_propagate_inject(0, &oc, &sc, NULL);
    assert_int_equal(af_headers_count(out), 0);
    af_propagate_inject(AF_PROPAGATE_BAGGAGE, &oc, &sc, NULL);
    assert_int_equal(af_headers_count(out), 0);
    af_propagate_inject(AF_PROPAGATE_TRACECONTEXT, &oc, &sc, NULL);
    assert_int_equal(af_headers_count(out), 2);
    af_headers_free(out);
    af_headers_free(h);
}

static void test_extract_is_quiet(void **state)
{
    (void)state;
    /* Garbage from a peer must not produce log lines, even at debug level. */
    af_span_context sc;
    assert_int_equal(extract(AF_TEST_HEADERS("traceparent", "garbage", "tracestate", "x=,,"), &sc),
                     0);
    assert_int_equal(extract(AF_TEST_HEADERS("traceparent", TP("01"), "tracestate", "X=1"), &sc),
                     1);
    af_headers *h = AF_TEST_HEADERS("baggage", "%%%,;;;=,k=%ZZ");
    af_carrier c = af_headers_carrier(h);
    af_baggage *b = NULL;
    assert_int_equal(af_baggage_extract(&c, &b), 0);
    af_headers_free(h);
    assert_string_equal(log_text, "");
}

static unsigned env(const char *v)
{
    log_text[0] = '\0';
    if (v)
        setenv("OTEL_PROPAGATORS", v, 1);
    else
        unsetenv("OTEL_PROPAGATORS");
    return af_propagators_from_env();
}

static void test_propagators_from_env(void **state)
{
    (void)state;
    assert_int_equal(env(NULL), AF_PROPAGATE_DEFAULT);
    assert_int_equal(env(""), AF_PROPAGATE_DEFAULT);
    assert_int_equal(env("tracecontext"), AF_PROPAGATE_TRACECONTEXT);
    assert_int_equal(env("baggage"), AF_PROPAGATE_BAGGAGE);
    assert_int_equal(env("baggage,TraceContext,baggage"), AF_PROPAGATE_DEFAULT);
    assert_int_equal(env(" tracecontext , BAGGAGE ,"), AF_PROPAGATE_DEFAULT);
    assert_string_equal(log_text, "");
    assert_int_equal(env("none"), 0);
    assert_string_equal(log_text, "");
    assert_int_equal(env("b3,tracecontext"), AF_PROPAGATE_B3 | AF_PROPAGATE_TRACECONTEXT);
    assert_int_equal(env("B3MULTI , b3"), AF_PROPAGATE_B3_MULTI | AF_PROPAGATE_B3);
    assert_string_equal(log_text, "");
    assert_int_equal(env("xray"), 0);
    assert_non_null(strstr(log_text, "warn: "));
    assert_non_null(strstr(log_text, "unsupported propagator \"xray\""));
    assert_int_equal(env("jaeger,b3multi,ottrace,baggage"),
                     AF_PROPAGATE_B3_MULTI | AF_PROPAGATE_BAGGAGE);
    assert_non_null(strstr(log_text, "\"ottrace\""));
    assert_int_equal(env("nonsense,tracecontext"), AF_PROPAGATE_TRACECONTEXT);
    assert_non_null(strstr(log_text, "unknown propagator \"nonsense\""));
    assert_int_equal(env("None,baggage"), 0);
    assert_non_null(strstr(log_text, "\"none\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_extract_valid),
        cmocka_unit_test(test_extract_ows),
        cmocka_unit_test(test_extract_invalid_traceparent),
        cmocka_unit_test(test_extract_tracestate_fields),
        cmocka_unit_test(test_extract_member_count_across_fields),
        cmocka_unit_test(test_inject),
        cmocka_unit_test(test_random_flag_and_version_propagated),
        cmocka_unit_test(test_baggage_extract_inject),
        cmocka_unit_test(test_baggage_many_fields),
        cmocka_unit_test(test_composite),
        cmocka_unit_test_setup_teardown(test_extract_is_quiet, log_setup, log_teardown),
        cmocka_unit_test_setup_teardown(test_propagators_from_env, log_setup, log_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
