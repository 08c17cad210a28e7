/*
 * Resource: SDK defaults, the precedence of code attributes over OTEL_SERVICE_NAME over
 * OTEL_RESOURCE_ATTRIBUTES, the OTEL_RESOURCE_ATTRIBUTES parser (trimming, percent-decoding,
 * whole-value rejection), deep copies of every value type, and the schema URL.
 */
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/trace.h"

static int clear_env(void **state)
{
    (void)state;
    unsetenv("OTEL_RESOURCE_ATTRIBUTES");
    unsetenv("OTEL_SERVICE_NAME");
    return 0;
}

static const char *get(const af_resource *r, const char *key)
{
    return af_resource_get_string(r, key);
}

/* Builds af_resource_new(attrs) under the given environment and returns it with the log
 * output in *log (a copy the caller frees). */
static af_resource *new_with_env(const char *res_attrs, const char *svc, const af_attr *attrs,
                                 size_t n, char **log)
{
    if (res_attrs)
        setenv("OTEL_RESOURCE_ATTRIBUTES", res_attrs, 1);
    else
        unsetenv("OTEL_RESOURCE_ATTRIBUTES");
    if (svc)
        setenv("OTEL_SERVICE_NAME", svc, 1);
    else
        unsetenv("OTEL_SERVICE_NAME");
    af_test_log_capture_begin();
    af_resource *r = NULL;
    assert_int_equal(af_resource_new(attrs, n, &r), 0);
    *log = strdup(af_test_log_capture_text());
    af_test_log_capture_end();
    assert_non_null(r);
    return r;
}

static void test_sdk_defaults(void **state)
{
    (void)state;
    char *log;
    af_resource *r = new_with_env(NULL, NULL, NULL, 0, &log);
    assert_string_equal(log, "");
    assert_string_equal(get(r, "telemetry.sdk.name"), "agentaflow");
    assert_string_equal(get(r, "telemetry.sdk.language"), "c");
    assert_string_equal(get(r, "telemetry.sdk.version"), AF_VERSION_STRING);
    /* The executable is this test program. */
    assert_string_equal(get(r, "service.name"), "unknown_service:test_resource");
    size_t n = 0;
    const af_attr *a = af_resource_attrs(r, &n);
    assert_int_equal(n, 4);
    assert_string_equal(a[0].key, "telemetry.sdk.name");
    assert_int_equal(a[0].type, AF_VAL_STRING);
    assert_int_equal(a[0].v.s.len, strlen("agentaflow"));
    assert_string_equal(af_resource_schema_url(r), "");
    af_resource_free(r);
    free(log);
}

static void test_precedence(void **state)
{
    (void)state;
    char *log;
    /* OTEL_RESOURCE_ATTRIBUTES alone sets service.name. */
    af_resource *r = new_with_env("service.name=from-attrs,team=gpu", NULL, NULL, 0, &log);
    assert_string_equal(get(r, "service.name"), "from-attrs");
    assert_string_equal(get(r, "team"), "gpu");
    af_resource_free(r);
    free(log);

    /* OTEL_SERVICE_NAME beats service.name in OTEL_RESOURCE_ATTRIBUTES. */
    r = new_with_env("service.name=from-attrs,team=gpu", "from-svc", NULL, 0, &log);
    assert_string_equal(get(r, "service.name"), "from-svc");
    assert_string_equal(get(r, "team"), "gpu");
    af_resource_free(r);
    free(log);

    /* Code beats both, key by key; keys only in the environment survive. */
    r = new_with_env("service.name=from-attrs,team=gpu,region=eu", "from-svc",
                     AF_ATTRS(AF_STR("service.name", "from-code"), AF_STR("team", "ml"),
                              AF_STR("telemetry.sdk.name", "custom")),
                     &log);
    assert_string_equal(get(r, "service.name"), "from-code");
    assert_string_equal(get(r, "team"), "ml");
    assert_string_equal(get(r, "region"), "eu");
    assert_string_equal(get(r, "telemetry.sdk.name"), "custom");
    size_t n;
    af_resource_attrs(r, &n);
    assert_int_equal(n, 6); /* 3 sdk + service.name + team + region: keys stay unique */
    af_resource_free(r);
    free(log);

    /* The environment may also override the SDK's own keys. */
    r = new_with_env("telemetry.sdk.language=c99", NULL, NULL, 0, &log);
    assert_string_equal(get(r, "telemetry.sdk.language"), "c99");
    af_resource_free(r);
    free(log);

    /* Only OTEL_SERVICE_NAME. */
    r = new_with_env(NULL, "svc-only", NULL, 0, &log);
    assert_string_equal(get(r, "service.name"), "svc-only");
    af_resource_free(r);
    free(log);

    /* Empty variables count as unset: the fallback applies. */
    r = new_with_env("", "", NULL, 0, &log);
    assert_string_equal(get(r, "service.name"), "unknown_service:test_resource");
    assert_string_equal(log, "");
    af_resource_free(r);
    free(log);

    /* A non-string service.name from code still counts as set. */
    r = new_with_env(NULL, NULL, AF_ATTRS(AF_INT("service.name", 7)), &log);
    assert_null(get(r, "service.name"));
    size_t k;
    const af_attr *a = af_resource_attrs(r, &k);
    assert_int_equal(k, 4);
    assert_int_equal(a[3].type, AF_VAL_INT);
    assert_int_equal(a[3].v.i, 7);
    af_resource_free(r);
    free(log);
}

static void test_bad_env_value_discarded_with_one_warning(void **state)
{
    (void)state;
    char *log;
    af_resource *r = new_with_env("team=gpu,service.name=x%zzy,region=eu", NULL, NULL, 0, &log);
    assert_null(get(r, "team"));
    assert_null(get(r, "region"));
    assert_string_equal(get(r, "service.name"), "unknown_service:test_resource");
    const char *w = strstr(log, "OTEL_RESOURCE_ATTRIBUTES");
    assert_non_null(w);
    assert_non_null(strstr(log, "percent escape"));
    assert_null(strstr(w + 1, "OTEL_RESOURCE_ATTRIBUTES")); /* one warning */
    af_resource_free(r);
    free(log);

    /* OTEL_SERVICE_NAME still applies when the other variable is rejected. */
    r = new_with_env("novalue", "svc", NULL, 0, &log);
    assert_string_equal(get(r, "service.name"), "svc");
    assert_non_null(strstr(log, "no '='"));
    af_resource_free(r);
    free(log);
}

static void test_parse_decoding(void **state)
{
    (void)state;
    af_resource *r = NULL;
    assert_int_equal(af_resource_parse_env("a=x%2Cy,b=1%3D2,c=caf%C3%A9,d=%e2%82%ac,"
                                           "e=%41+%2b,k%20x=v,f=50%25",
                                           &r),
                     0);
    assert_string_equal(get(r, "a"), "x,y");
    assert_string_equal(get(r, "b"), "1=2");
    assert_string_equal(get(r, "c"), "caf\xC3\xA9");
    assert_string_equal(get(r, "d"), "\xE2\x82\xAC");
    assert_string_equal(get(r, "e"), "A++"); /* '+' is not a space here */
    assert_string_equal(get(r, "k x"), "v");
    assert_string_equal(get(r, "f"), "50%");
    /* Raw UTF-8 passes through. */
    af_resource_free(r);
    assert_int_equal(af_resource_parse_env("city=Z\xC3\xBCrich", &r), 0);
    assert_string_equal(get(r, "city"), "Z\xC3\xBCrich");
    af_resource_free(r);
}

static void test_parse_trimming_and_empties(void **state)
{
    (void)state;
    af_resource *r = NULL;
    assert_int_equal(
        af_resource_parse_env("  a = 1 ,\tb=\t two words \t, c=,d= ,,  , e=%20x%20 ,", &r), 0);
    assert_string_equal(get(r, "a"), "1");
    assert_string_equal(get(r, "b"), "two words");
    assert_string_equal(get(r, "c"), "");
    assert_string_equal(get(r, "d"), "");
    assert_string_equal(get(r, "e"), " x "); /* encoded spaces are kept */
    size_t n;
    af_resource_attrs(r, &n);
    assert_int_equal(n, 5);
    af_resource_free(r);

    /* Raw '=' after the first one belongs to the value. */
    assert_int_equal(af_resource_parse_env("url=a=b", &r), 0);
    assert_string_equal(get(r, "url"), "a=b");
    af_resource_free(r);

    /* Empty input: an empty resource. */
    assert_int_equal(af_resource_parse_env("", &r), 0);
    af_resource_attrs(r, &n);
    assert_int_equal(n, 0);
    af_resource_free(r);
    assert_int_equal(af_resource_parse_env(" , ", &r), 0);
    af_resource_attrs(r, &n);
    assert_int_equal(n, 0);
    af_resource_free(r);

    /* Repeated keys: the last value wins, in the first position. */
    assert_int_equal(af_resource_parse_env("a=1,b=2,a=3", &r), 0);
    const af_attr *a = af_resource_attrs(r, &n);
    assert_int_equal(n, 2);
    assert_string_equal(a[0].key, "a");
    assert_string_equal(a[0].v.s.ptr, "3");
    assert_string_equal(a[1].key, "b");
    af_resource_free(r);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "a=%zz",       /* not hex */
        "a=%4",        /* truncated escape */
        "a=%",         /* bare percent */
        "a=ok,b=%",    /* error after a good member */
        "novalue",     /* no '=' */
        "a=1,novalue", /* ... anywhere */
        "=v",          /* empty key */
        "  =v",        /* empty after trimming */
        "a=%00",       /* NUL */
        "a=%FF",       /* not UTF-8 */
        "a=%C3",       /* truncated UTF-8 */
        "a=%C0%AF",    /* overlong */
        "a=%ED%A0%80", /* surrogate */
        "a=\xC3",      /* raw invalid UTF-8 */
        "k%zz=v",      /* escapes in keys are checked too */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        af_resource *r = (af_resource *)(uintptr_t)0x1;
        assert_int_equal(af_resource_parse_env(bad[i], &r), AF_EPARSE);
        assert_ptr_equal(r, (af_resource *)(uintptr_t)0x1); /* *out untouched */
    }
    af_resource *r = NULL;
    assert_int_equal(af_resource_parse_env(NULL, &r), -EINVAL);
    assert_int_equal(af_resource_parse_env("a=b", NULL), -EINVAL);
}

static void test_raw_deep_copies_every_type(void **state)
{
    (void)state;
    char name[] = "svc";
    const char *strs[] = {"x", "yy"};
    char *mutable_str = strdup("zzz");
    strs[1] = mutable_str;
    bool bools[] = {true, false};
    int64_t ints[] = {1, -2, 3};
    double dbls[] = {0.5};
    af_attr in[] = {
        AF_STR("service.name", name),
        AF_STRN("short", "abcdef", 3),
        AF_BOOL("b", true),
        AF_INT("i", -42),
        AF_DOUBLE("d", 2.5),
        AF_STR_ARRAY("sa", strs, 2),
        AF_BOOL_ARRAY("ba", bools, 2),
        AF_INT_ARRAY("ia", ints, 3),
        AF_DOUBLE_ARRAY("da", dbls, 1),
        AF_INT_ARRAY("empty", NULL, 0),
        AF_INT("i", 43), /* repeated key: last wins */
    };
    af_resource *r = NULL;
    assert_int_equal(af_resource_new_raw(in, sizeof(in) / sizeof(in[0]), &r), 0);
    /* Scribble over every input: the resource must not notice. */
    name[0] = 'X';
    mutable_str[0] = 'Q';
    bools[0] = false;
    ints[0] = 99;
    dbls[0] = 9.0;
    free(mutable_str);

    size_t n;
    const af_attr *a = af_resource_attrs(r, &n);
    assert_int_equal(n, 10);
    assert_string_equal(get(r, "service.name"), "svc");
    assert_string_equal(get(r, "short"), "abc");
    assert_int_equal(a[1].v.s.len, 3);
    assert_true(a[2].v.b);
    assert_int_equal(a[3].v.i, 43);
    assert_true(a[4].v.d == 2.5);
    const char *const *sa = a[5].v.arr.items;
    assert_int_equal(a[5].v.arr.count, 2);
    assert_string_equal(sa[0], "x");
    assert_string_equal(sa[1], "zzz");
    assert_true(((const bool *)a[6].v.arr.items)[0]);
    assert_int_equal(((const int64_t *)a[7].v.arr.items)[0], 1);
    assert_int_equal(((const int64_t *)a[7].v.arr.items)[1], -2);
    assert_true(((const double *)a[8].v.arr.items)[0] == 0.5);
    assert_int_equal(a[9].v.arr.count, 0);
    assert_null(get(r, "i")); /* not a string */
    assert_null(get(r, "missing"));
    assert_null(get(NULL, "i"));
    assert_null(get(r, "telemetry.sdk.name")); /* raw: no defaults */
    af_resource_free(r);
}

static void test_invalid_attrs(void **state)
{
    (void)state;
    af_resource *r = NULL;
    const char *with_null[] = {"a", NULL};
    assert_int_equal(af_resource_new_raw(AF_ATTRS(AF_STR(NULL, "v")), &r), -EINVAL);
    assert_int_equal(af_resource_new_raw(AF_ATTRS(AF_STR("", "v")), &r), -EINVAL);
    assert_int_equal(af_resource_new_raw(AF_ATTRS(AF_STRN("k", NULL, 3)), &r), -EINVAL);
    assert_int_equal(af_resource_new_raw(AF_ATTRS(AF_INT_ARRAY("k", NULL, 2)), &r), -EINVAL);
    assert_int_equal(af_resource_new_raw(AF_ATTRS(AF_STR_ARRAY("k", with_null, 2)), &r), -EINVAL);
    assert_int_equal(af_resource_new(AF_ATTRS(AF_STR("", "v")), &r), -EINVAL);
    assert_null(r);
    assert_int_equal(af_resource_new_raw(NULL, 1, &r), -EINVAL);
    assert_int_equal(af_resource_new_raw(NULL, 0, NULL), -EINVAL);
    /* A NULL string with length 0 (or AF_LEN_NUL) is an empty string. */
    assert_int_equal(af_resource_new_raw(AF_ATTRS(AF_STR("k", NULL)), &r), 0);
    assert_string_equal(get(r, "k"), "");
    af_resource_free(r);
    af_resource_free(NULL);
    size_t n = 5;
    assert_null(af_resource_attrs(NULL, &n));
    assert_int_equal(n, 0);
}

static void test_schema_url(void **state)
{
    (void)state;
    af_resource *r = NULL;
    assert_int_equal(af_resource_new_raw(NULL, 0, &r), 0);
    assert_string_equal(af_resource_schema_url(r), "");
    assert_int_equal(af_resource_set_schema_url(r, "https://opentelemetry.io/schemas/1.26.0"), 0);
    assert_string_equal(af_resource_schema_url(r), "https://opentelemetry.io/schemas/1.26.0");
    assert_int_equal(af_resource_set_schema_url(r, "https://example.com/2"), 0);
    assert_string_equal(af_resource_schema_url(r), "https://example.com/2");
    assert_int_equal(af_resource_set_schema_url(r, NULL), 0);
    assert_string_equal(af_resource_schema_url(r), "");
    assert_int_equal(af_resource_set_schema_url(NULL, "x"), -EINVAL);
    assert_string_equal(af_resource_schema_url(NULL), "");
    af_resource_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sdk_defaults, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_precedence, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_bad_env_value_discarded_with_one_warning, clear_env,
                                        clear_env),
        cmocka_unit_test(test_parse_decoding),
        cmocka_unit_test(test_parse_trimming_and_empties),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_raw_deep_copies_every_type),
        cmocka_unit_test_setup_teardown(test_invalid_attrs, clear_env, clear_env),
        cmocka_unit_test(test_schema_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
