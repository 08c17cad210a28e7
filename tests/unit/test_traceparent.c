/* traceparent parsing and formatting: the W3C Level 2 rules and the W3C test-suite vectors. */
#include "testutil.h"

#include <string.h>

#include "agentaflow/propagation.h"

#define TRACE_HEX "12345678901234567890123456789012"
#define SPAN_HEX "1234567890123456"
#define VALID "00-" TRACE_HEX "-" SPAN_HEX "-01"

static const uint8_t trace_bin[16] = {0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56,
                                      0x78, 0x90, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12};
static const uint8_t span_bin[8] = {0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56};

static int parse(const char *s, af_span_context *sc)
{
    return af_traceparent_parse(s, strlen(s), sc);
}

/* A context full of recognizable junk, to prove that rejected input leaves it untouched. */
static void junk(af_span_context *sc)
{
    memset(sc, 0xa5, sizeof(*sc));
    sc->is_remote = false;
    sc->trace_state_len = 3;
    memcpy(sc->trace_state, "a=b", 4);
}

static void assert_rejected(const char *s)
{
    af_span_context sc, before;
    junk(&sc);
    before = sc;
    if (parse(s, &sc) != AF_EPARSE)
        fail_msg("accepted invalid traceparent \"%s\"", s);
    assert_memory_equal(&sc, &before, sizeof(sc));
}

static void assert_accepted(const char *s, uint8_t flags)
{
    af_span_context sc;
    junk(&sc);
    if (parse(s, &sc) != 0)
        fail_msg("rejected valid traceparent \"%s\"", s);
    assert_memory_equal(sc.trace_id, trace_bin, 16);
    assert_memory_equal(sc.span_id, span_bin, 8);
    assert_int_equal(sc.trace_flags, flags);
    assert_true(sc.is_remote);
    assert_int_equal(sc.trace_state_len, 0);
    assert_string_equal(sc.trace_state, "");
}

static void test_valid(void **state)
{
    (void)state;
    assert_accepted(VALID, 0x01);
    assert_accepted("00-" TRACE_HEX "-" SPAN_HEX "-00", 0x00);
}

static void test_flags_kept_and_masked(void **state)
{
    (void)state;
    assert_accepted("00-" TRACE_HEX "-" SPAN_HEX "-02", AF_TRACE_FLAG_RANDOM);
    assert_accepted("00-" TRACE_HEX "-" SPAN_HEX "-03",
                    AF_TRACE_FLAG_RANDOM | AF_TRACE_FLAG_SAMPLED);
    /* Unknown bits are dropped, known ones survive. */
    assert_accepted("00-" TRACE_HEX "-" SPAN_HEX "-ff", 0x03);
    assert_accepted("00-" TRACE_HEX "-" SPAN_HEX "-fc", 0x00);
    assert_accepted("00-" TRACE_HEX "-" SPAN_HEX "-09", 0x01);
}

static void test_version_00_trailing_data(void **state)
{
    (void)state;
    assert_rejected(VALID ".");
    assert_rejected(VALID "-what-the-future-will-be-like");
    assert_rejected(VALID "-");
    assert_rejected(VALID " ");
}

static void test_future_version(void **state)
{
    (void)state;
    assert_accepted("cc-" TRACE_HEX "-" SPAN_HEX "-01", 0x01);
    assert_accepted("cc-" TRACE_HEX "-" SPAN_HEX "-01-what-the-future-will-be-like", 0x01);
    assert_accepted("01-" TRACE_HEX "-" SPAN_HEX "-01-", 0x01);
    assert_rejected("cc-" TRACE_HEX "-" SPAN_HEX "-01.what-the-future-will-be-like");
    assert_rejected("cc-" TRACE_HEX "-" SPAN_HEX "-0");
    /* Future versions still use lower-case hex and the same field layout. */
    assert_rejected("cc-" TRACE_HEX "-" SPAN_HEX "-0x");
    assert_rejected("cC-" TRACE_HEX "-" SPAN_HEX "-01");
}

static void test_version_ff_and_illegal(void **state)
{
    (void)state;
    assert_rejected("ff-" TRACE_HEX "-" SPAN_HEX "-01");
    assert_rejected("ff-" TRACE_HEX "-" SPAN_HEX "-01-more");
    assert_rejected(".0-" TRACE_HEX "-" SPAN_HEX "-01");
    assert_rejected("0.-" TRACE_HEX "-" SPAN_HEX "-01");
    assert_rejected("000-" TRACE_HEX "-" SPAN_HEX "-01");
    assert_rejected("0000-" TRACE_HEX "-" SPAN_HEX "-01");
    assert_rejected("0-" TRACE_HEX "-" SPAN_HEX "-01");
}

static void test_upper_case_rejected(void **state)
{
    (void)state;
    assert_rejected("00-"
                    "ABCDEF78901234567890123456789012"
                    "-" SPAN_HEX "-01");
    assert_rejected("00-" TRACE_HEX "-"
                    "ABCDEF7890123456"
                    "-01");
    assert_rejected("00-" TRACE_HEX "-" SPAN_HEX "-0A");
    assert_rejected("0A-" TRACE_HEX "-" SPAN_HEX "-01");
    assert_rejected("CC-" TRACE_HEX "-" SPAN_HEX "-01");
}

static void test_ids(void **state)
{
    (void)state;
    assert_rejected("00-00000000000000000000000000000000-" SPAN_HEX "-01");
    assert_rejected("00-" TRACE_HEX "-0000000000000000-01");
    assert_rejected("00-.2345678901234567890123456789012-" SPAN_HEX "-01");
    assert_rejected("00-1234567890123456789012345678901.-" SPAN_HEX "-01");
    assert_rejected("00-123456789012345678901234567890123-" SPAN_HEX "-01");
    assert_rejected("00-1234567890123456789012345678901-" SPAN_HEX "-01");
    assert_rejected("00-" TRACE_HEX "-.234567890123456-01");
    assert_rejected("00-" TRACE_HEX "-123456789012345.-01");
    assert_rejected("00-" TRACE_HEX "-12345678901234567-01");
    assert_rejected("00-" TRACE_HEX "-123456789012345-01");
    assert_rejected("00-" TRACE_HEX "-" SPAN_HEX "-.0");
    assert_rejected("00-" TRACE_HEX "-" SPAN_HEX "-0.");
    assert_rejected("00-" TRACE_HEX "-" SPAN_HEX "-001");
    assert_rejected("00-" TRACE_HEX "-" SPAN_HEX "-1");
    assert_rejected("00_" TRACE_HEX "-" SPAN_HEX "-01");
    assert_rejected("00-" TRACE_HEX "_" SPAN_HEX "-01");
    assert_rejected("00-" TRACE_HEX "-" SPAN_HEX "_01");
    assert_rejected(" " VALID);
    assert_rejected("");
    /* A single non-zero byte anywhere makes an id valid. */
    af_span_context sc;
    assert_int_equal(parse("00-00000000000000000000000000000001-0100000000000000-01", &sc), 0);
    assert_int_equal(sc.trace_id[15], 1);
    assert_int_equal(sc.span_id[0], 1);
}

static void test_uses_len_not_nul(void **state)
{
    (void)state;
    af_span_context sc;
    const char *s = VALID "-trailing";
    assert_int_equal(af_traceparent_parse(s, 55, &sc), 0);
    assert_memory_equal(sc.trace_id, trace_bin, 16);
    assert_int_equal(af_traceparent_parse(s, 54, &sc), AF_EPARSE);
    assert_int_equal(af_traceparent_parse(NULL, 55, &sc), AF_EPARSE);
    assert_int_equal(af_traceparent_parse(s, 55, NULL), AF_EPARSE);
}

static void test_format(void **state)
{
    (void)state;
    af_span_context sc;
    af_span_context_init(&sc);
    memcpy(sc.trace_id, trace_bin, 16);
    memcpy(sc.span_id, span_bin, 8);
    char out[56];
    memset(out, 'x', sizeof(out));
    sc.trace_flags = 0x01;
    af_traceparent_format(&sc, out);
    assert_string_equal(out, VALID);
    sc.trace_flags = 0xff;
    af_traceparent_format(&sc, out);
    assert_string_equal(out, "00-" TRACE_HEX "-" SPAN_HEX "-03");
    sc.trace_flags = AF_TRACE_FLAG_RANDOM;
    af_traceparent_format(&sc, out);
    assert_string_equal(out, "00-" TRACE_HEX "-" SPAN_HEX "-02");
    sc.trace_flags = 0;
    af_traceparent_format(&sc, out);
    assert_string_equal(out, "00-" TRACE_HEX "-" SPAN_HEX "-00");
}

static void test_round_trip(void **state)
{
    (void)state;
    /* Future versions are re-emitted as version 00 with the same ids and flags. */
    const char *in[] = {VALID, "cc-abcdef0123456789abcdef0123456789-fedcba9876543210-03-x",
                        "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-02"};
    const char *want[] = {VALID, "00-abcdef0123456789abcdef0123456789-fedcba9876543210-03",
                          "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-02"};
    for (size_t i = 0; i < 3; i++) {
        af_span_context sc, again;
        char out[56];
        assert_int_equal(parse(in[i], &sc), 0);
        af_traceparent_format(&sc, out);
        assert_string_equal(out, want[i]);
        assert_int_equal(parse(out, &again), 0);
        assert_memory_equal(again.trace_id, sc.trace_id, 16);
        assert_memory_equal(again.span_id, sc.span_id, 8);
        assert_int_equal(again.trace_flags, sc.trace_flags);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_flags_kept_and_masked),
        cmocka_unit_test(test_version_00_trailing_data),
        cmocka_unit_test(test_future_version),
        cmocka_unit_test(test_version_ff_and_illegal),
        cmocka_unit_test(test_upper_case_rejected),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_uses_len_not_nul),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
