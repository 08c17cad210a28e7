/* tracestate: validation (W3C test-suite vectors), normalization, truncation and mutation. */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agentaflow/propagation.h"

static void fresh(af_span_context *sc)
{
    af_span_context_init(sc);
}

static int set(af_span_context *sc, const char *v)
{
    return af_tracestate_set(sc, v, strlen(v));
}

static void assert_state(const char *value, const char *want)
{
    af_span_context sc;
    fresh(&sc);
    if (set(&sc, value) != 0)
        fail_msg("rejected valid tracestate \"%s\"", value);
    assert_string_equal(sc.trace_state, want);
    assert_int_equal(sc.trace_state_len, strlen(want));
}

static void assert_invalid(const char *value)
{
    af_span_context sc;
    fresh(&sc);
    assert_int_equal(set(&sc, "keep=me"), 0);
    if (set(&sc, value) != AF_EPARSE)
        fail_msg("accepted invalid tracestate \"%s\"", value);
    assert_string_equal(sc.trace_state, "keep=me");
    assert_int_equal(sc.trace_state_len, 7);
}

static char *repeat(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

static void test_basic_and_get(void **state)
{
    (void)state;
    af_span_context sc;
    fresh(&sc);
    assert_int_equal(set(&sc, "foo=1,bar=2"), 0);
    assert_string_equal(sc.trace_state, "foo=1,bar=2");
    char v[8];
    assert_int_equal(af_tracestate_get(&sc, "foo", v, sizeof(v)), 1);
    assert_string_equal(v, "1");
    assert_int_equal(af_tracestate_get(&sc, "bar", v, sizeof(v)), 1);
    assert_string_equal(v, "2");
    assert_int_equal(af_tracestate_get(&sc, "fo", v, sizeof(v)), -1);
    assert_int_equal(af_tracestate_get(&sc, "baz", v, sizeof(v)), -1);
    /* A short buffer gets a truncated copy; the return value is the full length. */
    assert_int_equal(set(&sc, "k=abcdef"), 0);
    char small[4];
    assert_int_equal(af_tracestate_get(&sc, "k", small, sizeof(small)), 6);
    assert_string_equal(small, "abc");
    assert_int_equal(af_tracestate_get(&sc, "k", NULL, 0), 6);
}

static void test_ows_and_empty_members(void **state)
{
    (void)state;
    assert_state("foo=1 \t , \t bar=2, \t baz=3", "foo=1,bar=2,baz=3");
    assert_state("foo=1\t \t,\t \tbar=2,\t \tbaz=3", "foo=1,bar=2,baz=3");
    assert_state(" foo=1", "foo=1");
    assert_state("\tfoo=1", "foo=1");
    assert_state("foo=1 ", "foo=1");
    assert_state("foo=1\t", "foo=1");
    assert_state("\t foo=1 \t", "foo=1");
    assert_state("", "");
    assert_state(" , ,\t,", "");
    assert_state(",foo=1,,bar=2,", "foo=1,bar=2");
    /* A space inside a value is part of it (only the member's ends are OWS). */
    assert_state("foo= 1", "foo= 1");
}

static void test_member_count(void **state)
{
    (void)state;
    char buf[512];
    size_t w = 0;
    for (int i = 1; i <= 32; i++)
        w += (size_t)snprintf(buf + w, sizeof(buf) - w, "%sbar%02d=%02d", i > 1 ? "," : "", i, i);
    af_span_context sc;
    fresh(&sc);
    assert_int_equal(set(&sc, buf), 0);
    assert_string_equal(sc.trace_state, buf);
    char v[4];
    assert_int_equal(af_tracestate_get(&sc, "bar01", v, sizeof(v)), 2);
    assert_int_equal(af_tracestate_get(&sc, "bar32", v, sizeof(v)), 2);
    /* Empty members do not count. */
    char padded[600];
    snprintf(padded, sizeof(padded), ",,%s,,", buf);
    assert_state(padded, buf);
    snprintf(buf + w, sizeof(buf) - w, ",bar33=33");
    assert_invalid(buf);
}

static void test_key_rules(void **state)
{
    (void)state;
    char k[300], key[600];
    assert_invalid("foo =1");
    assert_invalid("FOO=1");
    assert_invalid("foo.bar=1");
    assert_invalid("=1");
    assert_invalid("foo");
    assert_invalid("_foo=1");
    /* Level 2: '@' is an ordinary key character, only not the first one. */
    assert_invalid("@foo=1,bar=2");
    assert_invalid("@=1");
    assert_state("foo@=1,bar=2", "foo@=1,bar=2");
    assert_state("foo@@bar=1,bar=2", "foo@@bar=1,bar=2");
    assert_state("foo@bar@baz=1", "foo@bar@baz=1");
    assert_state("foo@1bar=1", "foo@1bar=1");
    assert_state("1tenant@sys=1", "1tenant@sys=1");
    /* One key is at most 256 characters, '@' or not (the Level 1 tenant 241 / system 14
     * split no longer applies). */
    snprintf(key, sizeof(key), "foo=1,%s=1", repeat(k, 'z', 256));
    assert_state(key, key);
    snprintf(key, sizeof(key), "foo=1,%s=1", repeat(k, 'z', 257));
    assert_invalid(key);
    char t[300], v[300];
    snprintf(key, sizeof(key), "foo=1,t@%s=1", repeat(v, 'v', 15));
    assert_state(key, key);
    snprintf(key, sizeof(key), "foo=1,%s@v=1", repeat(t, 't', 242));
    assert_state(key, key);
    snprintf(key, sizeof(key), "foo=1,t@%s=1", repeat(v, 'v', 254));
    assert_state(key, key);
    snprintf(key, sizeof(key), "foo=1,t@%s=1", repeat(v, 'v', 255));
    assert_invalid(key);
    /* Keys may start with a digit. */
    assert_state("1foo=1,0=2", "1foo=1,0=2");
    af_span_context sc;
    fresh(&sc);
    assert_int_equal(af_tracestate_put(&sc, "foo@", "x"), 0);
    assert_int_equal(af_tracestate_put(&sc, "@foo", "x"), AF_EPARSE);
    assert_string_equal(sc.trace_state, "foo@=x");
}

static void test_all_allowed_characters(void **state)
{
    (void)state;
    const char *key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
    char key_vendor[128], value[128], member[300];
    snprintf(key_vendor, sizeof(key_vendor), "%s@a-z0-9_-*/", key);
    size_t w = 0;
    for (int c = 0x20; c <= 0x7e; c++)
        if (c != ',' && c != '=')
            value[w++] = (char)c;
    value[w] = '\0';
    const char *keys[] = {key, key_vendor};
    for (size_t i = 0; i < 2; i++) {
        af_span_context sc;
        fresh(&sc);
        snprintf(member, sizeof(member), "%s=%s", keys[i], value);
        assert_int_equal(set(&sc, member), 0);
        char got[128];
        assert_int_equal(af_tracestate_get(&sc, keys[i], got, sizeof(got)), (int)w);
        assert_string_equal(got, value);
    }
}

static void test_value_rules(void **state)
{
    (void)state;
    char v[300], m[320];
    assert_invalid("foo=bar=baz");
    assert_invalid("foo=,bar=3");
    assert_invalid("foo=a\x01");
    assert_invalid("foo=caf\xc3\xa9");
    assert_invalid("foo=a\x7f");
    snprintf(m, sizeof(m), "foo=%s", repeat(v, 'v', 256));
    assert_state(m, m);
    snprintf(m, sizeof(m), "foo=%s", repeat(v, 'v', 257));
    assert_invalid(m);
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    /* Still propagated: the first (leftmost, most recently updated) entry is kept. */
    assert_state("foo=1,foo=1", "foo=1");
    assert_state("foo=1,bar=2,foo=2", "foo=1,bar=2");
    assert_state("foo=1, foo=2 ,foo=3,bar=4", "foo=1,bar=4");
    af_span_context sc;
    fresh(&sc);
    assert_int_equal(set(&sc, "foo=1,bar=2,foo=2"), 0);
    char v[8];
    assert_int_equal(af_tracestate_get(&sc, "foo", v, sizeof(v)), 1);
    assert_string_equal(v, "1");
    /* A duplicate is still a member: it must be valid, and it counts toward 32. */
    assert_invalid("foo=1,foo=");
    char buf[512];
    size_t w = 0;
    for (int i = 1; i <= 32; i++)
        w += (size_t)snprintf(buf + w, sizeof(buf) - w, "%sk%02d=1", i > 1 ? "," : "", i);
    snprintf(buf + w, sizeof(buf) - w, ",k01=2");
    assert_invalid(buf);
    /* Same prefix is not the same key. */
    assert_state("foo=1,foo1=2,fo=3", "foo=1,foo1=2,fo=3");
}

static void test_truncation(void **state)
{
    (void)state;
    /* 3 short entries, 2 long (200 characters) ones, 2 more short ones: 640+ bytes. */
    char long1[310], long2[310], v[300], in[1400];
    snprintf(long1, sizeof(long1), "l1=%s", repeat(v, 'x', 197));
    snprintf(long2, sizeof(long2), "l2=%s", repeat(v, 'y', 197));
    char mid[310];
    snprintf(mid, sizeof(mid), "m=%s", repeat(v, 'm', 100));
    snprintf(in, sizeof(in), "a=1,%s,b=2,%s,%s,c=3", long1, mid, long2);
    af_span_context sc;
    fresh(&sc);
    assert_int_equal(set(&sc, in), 0);
    /* Removing the last long entry is enough: the first one stays. */
    char want[1400];
    snprintf(want, sizeof(want), "a=1,%s,b=2,%s,c=3", long1, mid);
    assert_string_equal(sc.trace_state, want);
    assert_true(sc.trace_state_len <= AF_TRACE_STATE_MAX);

    /* Once long entries are gone, whole entries go from the end. */
    char many[1400];
    size_t w = 0;
    for (int i = 0; i < 6; i++)
        w += (size_t)snprintf(many + w, sizeof(many) - w, "%sk%d=%s", i ? "," : "", i,
                              repeat(v, (char)('a' + i), 120));
    assert_int_equal(set(&sc, many), 0);
    /* Each entry is 123 bytes: four of them plus separators make 495. */
    assert_int_equal(sc.trace_state_len, 4 * 123 + 3);
    assert_int_equal(af_tracestate_get(&sc, "k3", NULL, 0), 120);
    assert_int_equal(af_tracestate_get(&sc, "k4", NULL, 0), -1);
    assert_int_equal(sc.trace_state[sc.trace_state_len - 1], 'd');

    /* Exactly 512 bytes is kept as is. */
    char exact[700];
    snprintf(exact, sizeof(exact), "a=%s,b=%sp", repeat(v, 'p', 253), v);
    assert_int_equal(strlen(exact), 512);
    assert_int_equal(set(&sc, exact), 0);
    assert_string_equal(sc.trace_state, exact);
}

static void test_set_from_own_state(void **state)
{
    (void)state;
    af_span_context sc;
    fresh(&sc);
    assert_int_equal(set(&sc, "a=1,b=2"), 0);
    assert_int_equal(af_tracestate_set(&sc, sc.trace_state + 4, 3), 0);
    assert_string_equal(sc.trace_state, "b=2");
}

static void test_put(void **state)
{
    (void)state;
    af_span_context sc;
    fresh(&sc);
    assert_int_equal(af_tracestate_put(&sc, "a", "1"), 0);
    assert_string_equal(sc.trace_state, "a=1");
    assert_int_equal(af_tracestate_put(&sc, "b", "2"), 0);
    assert_string_equal(sc.trace_state, "b=2,a=1");
    /* Updating moves the key to the front. */
    assert_int_equal(af_tracestate_put(&sc, "a", "3"), 0);
    assert_string_equal(sc.trace_state, "a=3,b=2");
    /* Invalid input changes nothing. */
    assert_int_equal(af_tracestate_put(&sc, "A", "1"), AF_EPARSE);
    assert_int_equal(af_tracestate_put(&sc, "c", "x,y"), AF_EPARSE);
    assert_int_equal(af_tracestate_put(&sc, "c", "x "), AF_EPARSE);
    assert_int_equal(af_tracestate_put(&sc, "c", ""), AF_EPARSE);
    assert_int_equal(af_tracestate_put(&sc, "c=d", "x"), AF_EPARSE);
    assert_int_equal(af_tracestate_put(&sc, NULL, "x"), AF_EPARSE);
    assert_string_equal(sc.trace_state, "a=3,b=2");
}

static void test_put_limits(void **state)
{
    (void)state;
    af_span_context sc;
    fresh(&sc);
    char k[8], v[300], key[300];
    for (int i = 0; i < 32; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        assert_int_equal(af_tracestate_put(&sc, k, "v"), 0);
    }
    /* Full list: the rightmost (oldest) entry makes room. */
    assert_int_equal(af_tracestate_put(&sc, "new", "v"), 0);
    assert_int_equal(af_tracestate_get(&sc, "new", NULL, 0), 1);
    assert_int_equal(af_tracestate_get(&sc, "k0", NULL, 0), -1);
    assert_int_equal(af_tracestate_get(&sc, "k1", NULL, 0), 1);
    /* Updating an existing key in a full list drops nothing. */
    assert_int_equal(af_tracestate_put(&sc, "k5", "w"), 0);
    assert_int_equal(af_tracestate_get(&sc, "k1", NULL, 0), 1);
    assert_true(strncmp(sc.trace_state, "k5=w,new=v,", 11) == 0);

    /* A big entry pushes older ones out, but is itself kept. */
    assert_int_equal(af_tracestate_put(&sc, "big", repeat(v, 'b', 256)), 0);
    assert_true(sc.trace_state_len <= AF_TRACE_STATE_MAX);
    assert_int_equal(af_tracestate_get(&sc, "big", NULL, 0), 256);
    /* An entry that cannot fit alone is refused and changes nothing. */
    af_span_context before = sc;
    assert_int_equal(af_tracestate_put(&sc, repeat(key, 'k', 256), v), -ENOSPC);
    assert_memory_equal(&sc, &before, sizeof(sc));
}

static void test_delete(void **state)
{
    (void)state;
    af_span_context sc;
    fresh(&sc);
    assert_int_equal(set(&sc, "a=1,b=2,c=3"), 0);
    assert_int_equal(af_tracestate_delete(&sc, "b"), 0);
    assert_string_equal(sc.trace_state, "a=1,c=3");
    assert_int_equal(af_tracestate_delete(&sc, "b"), AF_ENOTFOUND);
    assert_int_equal(af_tracestate_delete(&sc, "a"), 0);
    assert_int_equal(af_tracestate_delete(&sc, "c"), 0);
    assert_string_equal(sc.trace_state, "");
    assert_int_equal(sc.trace_state_len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_and_get),
        cmocka_unit_test(test_ows_and_empty_members),
        cmocka_unit_test(test_member_count),
        cmocka_unit_test(test_key_rules),
        cmocka_unit_test(test_all_allowed_characters),
        cmocka_unit_test(test_value_rules),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_set_from_own_state),
        cmocka_unit_test(test_put),
        cmocka_unit_test(test_put_limits),
        cmocka_unit_test(test_delete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
