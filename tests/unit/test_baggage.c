/* W3C Baggage: the entry map, parsing (decoding, properties, malformed members, limits) and
 * formatting (encoding, limits, whole members only). */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/propagation.h"

static af_baggage *parsed(const char *s, int want_added)
{
    af_baggage *b = NULL;
    assert_int_equal(af_baggage_new(&b), 0);
    int added = af_baggage_parse(b, s, strlen(s));
    if (added != want_added)
        fail_msg("\"%s\": %d members added, want %d", s, added, want_added);
    return b;
}

static void assert_entry(const af_baggage *b, size_t i, const char *key, const char *value,
                         const char *meta)
{
    const char *k, *v, *m;
    af_baggage_at(b, i, &k, &v, &m);
    assert_non_null(k);
    assert_string_equal(k, key);
    assert_string_equal(v, value);
    assert_string_equal(m, meta);
}

static char *format(const af_baggage *b, char *out, size_t len)
{
    size_t need = af_baggage_format(b, out, len);
    assert_true(need < len);
    assert_int_equal(strlen(out), need);
    return out;
}

static void test_map(void **state)
{
    (void)state;
    af_baggage *b = NULL;
    assert_int_equal(af_baggage_new(&b), 0);
    assert_int_equal(af_baggage_count(b), 0);
    assert_int_equal(af_baggage_set(b, "a", "1", NULL), 0);
    assert_int_equal(af_baggage_set(b, "b", "2", "p1 = v1 ; p2"), 0);
    assert_int_equal(af_baggage_set(b, "c", "3", ""), 0);
    /* Replacing keeps the position and takes the new metadata. */
    assert_int_equal(af_baggage_set(b, "a", "one", "x"), 0);
    assert_int_equal(af_baggage_count(b), 3);
    assert_entry(b, 0, "a", "one", "x");
    assert_entry(b, 1, "b", "2", "p1=v1;p2");
    assert_entry(b, 2, "c", "3", "");
    assert_string_equal(af_baggage_get(b, "b"), "2");
    assert_null(af_baggage_get(b, "d"));
    assert_null(af_baggage_get(b, "B"));

    assert_int_equal(af_baggage_set(b, "bad key", "v", NULL), -EINVAL);
    assert_int_equal(af_baggage_set(b, "", "v", NULL), -EINVAL);
    assert_int_equal(af_baggage_set(b, "k", "v", "p,q"), -EINVAL);
    assert_int_equal(af_baggage_set(b, "k", "v", "p;;q"), -EINVAL);
    assert_int_equal(af_baggage_set(b, "k", NULL, NULL), -EINVAL);
    assert_int_equal(af_baggage_count(b), 3);

    af_baggage *c = NULL;
    assert_int_equal(af_baggage_copy(b, &c), 0);
    assert_int_equal(af_baggage_remove(b, "a"), 0);
    assert_int_equal(af_baggage_remove(b, "a"), AF_ENOTFOUND);
    assert_int_equal(af_baggage_count(b), 2);
    assert_entry(b, 0, "b", "2", "p1=v1;p2");
    /* The copy is independent. */
    assert_int_equal(af_baggage_count(c), 3);
    assert_entry(c, 0, "a", "one", "x");

    const char *k = "x";
    af_baggage_at(b, 5, &k, NULL, NULL);
    assert_null(k);
    af_baggage_free(b);
    af_baggage_free(c);
    af_baggage_free(NULL);
}

static void test_parse_basic_and_ows(void **state)
{
    (void)state;
    af_baggage *b = parsed("key1=value1,key2=value2", 2);
    assert_entry(b, 0, "key1", "value1", "");
    assert_entry(b, 1, "key2", "value2", "");
    af_baggage_free(b);

    b = parsed(" key1 = value1 ,\tkey2\t=\tvalue2\t, key3=", 3);
    assert_entry(b, 0, "key1", "value1", "");
    assert_entry(b, 1, "key2", "value2", "");
    assert_entry(b, 2, "key3", "", "");
    af_baggage_free(b);

    /* '=' is a baggage-octet, so values may contain it. */
    b = parsed("k=a=b==", 1);
    assert_entry(b, 0, "k", "a=b==", "");
    af_baggage_free(b);

    /* Empty members are ignored; a repeated key takes the later value in the first slot. */
    b = parsed(",a=1,,b=2, ,a=3,", 3);
    assert_int_equal(af_baggage_count(b), 2);
    assert_entry(b, 0, "a", "3", "");
    af_baggage_free(b);
}

static void test_percent_decoding(void **state)
{
    (void)state;
    af_baggage *b =
        parsed("sp=%20,punct=%2C%3B%25%3D%22%5C,lower=%2c,utf8=%E2%9C%93,raw=caf%C3%A9", 5);
    assert_string_equal(af_baggage_get(b, "sp"), " ");
    assert_string_equal(af_baggage_get(b, "punct"), ",;%=\"\\");
    assert_string_equal(af_baggage_get(b, "lower"), ",");
    assert_string_equal(af_baggage_get(b, "utf8"), "\xe2\x9c\x93");
    assert_string_equal(af_baggage_get(b, "raw"), "caf\xc3\xa9");
    af_baggage_free(b);

    /* Invalid UTF-8 after decoding becomes U+FFFD, one per bad byte. */
    b = parsed("a=%FF,b=x%C0%AFy,c=%ED%A0%80,d=%E2%9C,e=%F4%90%80%80", 5);
    assert_string_equal(af_baggage_get(b, "a"), "\xef\xbf\xbd");
    assert_string_equal(af_baggage_get(b, "b"), "x\xef\xbf\xbd\xef\xbf\xbdy");
    assert_string_equal(af_baggage_get(b, "c"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(af_baggage_get(b, "d"), "\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(af_baggage_get(b, "e"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    af_baggage_free(b);
}

static void test_malformed_members_skipped(void **state)
{
    (void)state;
    const char *bad[] = {
        "novalue",   "=v",     "k y=v",   "k=a b",         "k=%G1",   "k=%2",
        "k=%",       "k=%00",  "k=v;",    "k=v;;p",        "k=\"q\"", "k=a\\b",
        "k=v;p=a b", "k=v;=x", "k\x01=v", "k=caf\xc3\xa9", "(k)=v",   "k=v;p q",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char in[64];
        snprintf(in, sizeof(in), "a=1,%s,z=2", bad[i]);
        af_baggage *b = parsed(in, 2);
        assert_int_equal(af_baggage_count(b), 2);
        assert_entry(b, 0, "a", "1", "");
        assert_entry(b, 1, "z", "2", "");
        af_baggage_free(b);
    }
}

static void test_properties(void **state)
{
    (void)state;
    af_baggage *b = parsed("k=v;p1=v1;p2, k2 = v2 ; p1 = v1 ; p2 ,k3=v3;p=a=b;q=", 3);
    assert_entry(b, 0, "k", "v", "p1=v1;p2");
    assert_entry(b, 1, "k2", "v2", "p1=v1;p2");
    assert_entry(b, 2, "k3", "v3", "p=a=b;q=");
    char out[128];
    assert_string_equal(format(b, out, sizeof(out)), "k=v;p1=v1;p2,k2=v2;p1=v1;p2,k3=v3;p=a=b;q=");
    af_baggage_free(b);
}

static void test_format_encoding(void **state)
{
    (void)state;
    af_baggage *b = NULL;
    assert_int_equal(af_baggage_new(&b), 0);
    assert_int_equal(af_baggage_set(b, "k", " ,;=%\"\\\x7f\t", NULL), 0);
    assert_int_equal(af_baggage_set(b, "u", "caf\xc3\xa9 ok!", "m=1"), 0);
    assert_int_equal(af_baggage_set(b, "plain", "a-b_c.d~e:f/g?h[i]j'k", NULL), 0);
    char out[256];
    assert_string_equal(format(b, out, sizeof(out)),
                        "k=%20%2C%3B%3D%25%22%5C%7F%09,u=caf%C3%A9%20ok!;m=1,"
                        "plain=a-b_c.d~e:f/g?h[i]j'k");

    /* Parsing the output gives the same entries back. */
    af_baggage *again = parsed(out, 3);
    for (size_t i = 0; i < 3; i++) {
        const char *k, *v, *m;
        af_baggage_at(b, i, &k, &v, &m);
        assert_entry(again, i, k, v, m);
    }
    af_baggage_free(again);
    af_baggage_free(b);

    assert_int_equal(af_baggage_format(NULL, out, sizeof(out)), 0);
    assert_string_equal(out, "");
}

static void test_format_whole_members_only(void **state)
{
    (void)state;
    af_baggage *b = parsed("aa=1,bb=2,cc=3", 3);
    char out[16];
    /* "aa=1,bb=2,cc=3" is 14 bytes: with 12 bytes of room only the first two fit. */
    assert_int_equal(af_baggage_format(b, out, 12), 14);
    assert_string_equal(out, "aa=1,bb=2");
    assert_int_equal(af_baggage_format(b, out, 9), 14);
    assert_string_equal(out, "aa=1");
    assert_int_equal(af_baggage_format(b, out, 4), 14);
    assert_string_equal(out, "");
    assert_int_equal(af_baggage_format(b, NULL, 0), 14);
    assert_int_equal(af_baggage_format(b, out, 15), 14);
    assert_string_equal(out, "aa=1,bb=2,cc=3");
    af_baggage_free(b);
}

static void test_member_limit(void **state)
{
    (void)state;
    char in[2048];
    size_t w = 0;
    for (int i = 0; i < 70; i++)
        w += (size_t)snprintf(in + w, sizeof(in) - w, "%sk%d=%d", i ? "," : "", i, i);
    af_baggage *b = parsed(in, AF_BAGGAGE_MAX_MEMBERS);
    assert_int_equal(af_baggage_count(b), 64);
    assert_string_equal(af_baggage_get(b, "k63"), "63");
    assert_null(af_baggage_get(b, "k64"));
    /* A full baggage still accepts replacements. */
    assert_int_equal(af_baggage_parse(b, "k0=new,k99=x", 12), 1);
    assert_string_equal(af_baggage_get(b, "k0"), "new");
    af_baggage_free(b);

    /* Entries set through the API beyond the limit are kept but not formatted. */
    assert_int_equal(af_baggage_new(&b), 0);
    for (int i = 0; i < 70; i++) {
        char k[8];
        snprintf(k, sizeof(k), "k%d", i);
        assert_int_equal(af_baggage_set(b, k, "v", NULL), 0);
    }
    assert_int_equal(af_baggage_count(b), 70);
    af_baggage_format(b, in, sizeof(in));
    af_baggage *again = parsed(in, 64);
    assert_null(af_baggage_get(again, "k64"));
    af_baggage_free(again);
    af_baggage_free(b);
}

static void test_byte_limit(void **state)
{
    (void)state;
    /* Two members of 4095 bytes plus a comma: 8191 bytes; one more byte fits exactly. */
    size_t vlen = 4095 - 2;
    char *in = malloc(3 * 4096 + 16);
    assert_non_null(in);
    memcpy(in, "a=", 2);
    memset(in + 2, 'x', vlen);
    memcpy(in + 2 + vlen, ",b=", 3);
    memset(in + 5 + vlen, 'y', vlen);
    size_t len = 5 + 2 * vlen;
    memcpy(in + len, ",c=1,d=", 7);
    len += 7;
    af_baggage *b = NULL;
    assert_int_equal(af_baggage_new(&b), 0);
    /* a and b (8191 bytes) fit; ",c=1" would make 8195, so c is dropped; "d=" alone would
     * make 8194 too: both are dropped whole. */
    assert_int_equal(af_baggage_parse(b, in, len), 2);
    assert_null(af_baggage_get(b, "c"));
    af_baggage_free(b);

    /* Shrink b by 3 bytes: now ",c=1" fits in exactly 8192. */
    vlen -= 3;
    memcpy(in, "a=", 2);
    memset(in + 2, 'x', 4093);
    memcpy(in + 2 + 4093, ",b=", 3);
    memset(in + 5 + 4093, 'y', vlen);
    len = 5 + 4093 + vlen;
    memcpy(in + len, ",c=1", 4);
    len += 4;
    assert_int_equal(af_baggage_new(&b), 0);
    assert_int_equal(af_baggage_parse(b, in, len), 3);
    char *out = malloc(AF_BAGGAGE_MAX_BYTES + 1);
    assert_non_null(out);
    assert_int_equal(af_baggage_format(b, out, AF_BAGGAGE_MAX_BYTES + 1), 8192);
    /* The limit spans calls (several baggage header fields): nothing more fits. */
    assert_int_equal(af_baggage_parse(b, "e=1", 3), 0);

    /* A value set through the API that cannot fit is skipped by format, others still go. */
    af_baggage *big = NULL;
    assert_int_equal(af_baggage_new(&big), 0);
    memset(in, 'z', 9000);
    in[9000] = '\0';
    assert_int_equal(af_baggage_set(big, "big", in, NULL), 0);
    assert_int_equal(af_baggage_set(big, "small", "1", NULL), 0);
    assert_int_equal(af_baggage_format(big, out, AF_BAGGAGE_MAX_BYTES + 1), 7);
    assert_string_equal(out, "small=1");
    af_baggage_free(big);
    af_baggage_free(b);
    free(out);
    free(in);
}

static void test_parse_args(void **state)
{
    (void)state;
    af_baggage *b = NULL;
    assert_int_equal(af_baggage_new(&b), 0);
    assert_int_equal(af_baggage_parse(NULL, "a=1", 3), -EINVAL);
    assert_int_equal(af_baggage_parse(b, NULL, 3), -EINVAL);
    assert_int_equal(af_baggage_parse(b, NULL, 0), 0);
    /* len bounds the input, not the NUL. */
    assert_int_equal(af_baggage_parse(b, "a=12345", 4), 1);
    assert_string_equal(af_baggage_get(b, "a"), "12");
    af_baggage_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map),
        cmocka_unit_test(test_parse_basic_and_ows),
        cmocka_unit_test(test_percent_decoding),
        cmocka_unit_test(test_malformed_members_skipped),
        cmocka_unit_test(test_properties),
        cmocka_unit_test(test_format_encoding),
        cmocka_unit_test(test_format_whole_members_only),
        cmocka_unit_test(test_member_limit),
        cmocka_unit_test(test_byte_limit),
        cmocka_unit_test(test_parse_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
