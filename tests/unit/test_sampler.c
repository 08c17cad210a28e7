/*
 * Samplers: descriptions, the TraceIdRatioBased algorithm (boundaries against hand-computed
 * Go/Rust results, accuracy, superset property, determinism), ParentBased routing,
 * custom hooks and ownership, and the OTEL_TRACES_SAMPLER names.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/log.h"
#include "agentaflow/trace.h"
#include "trace/span_int.h"

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* A trace id whose first half is `hi` and whose second half (the part the ratio sampler
 * reads) is `lo`, both big-endian. */
static void make_id(uint8_t id[16], uint64_t hi, uint64_t lo)
{
    put_be64(id, hi);
    put_be64(id + 8, lo);
}

static af_sampling_decision decide(const af_sampler *s, const uint8_t id[16],
                                   const af_span_context *parent)
{
    af_sampling_params p = {
        .parent = parent, .trace_id = id, .name = "op", .kind = AF_SPAN_KIND_INTERNAL};
    return af_sampler_should_sample(s, &p);
}

static bool sampled_lo(const af_sampler *s, uint64_t lo)
{
    uint8_t id[16];
    make_id(id, 0xFFFFFFFFFFFFFFFFull, lo);
    bool a = decide(s, id, NULL) == AF_SAMPLING_RECORD_AND_SAMPLE;
    /* The first half must never matter. */
    make_id(id, 0, lo);
    bool b = decide(s, id, NULL) == AF_SAMPLING_RECORD_AND_SAMPLE;
    assert_true(a == b);
    return a;
}

static void test_descriptions(void **state)
{
    (void)state;
    assert_string_equal(af_sampler_description(af_sampler_always_on()), "AlwaysOnSampler");
    assert_string_equal(af_sampler_description(af_sampler_always_off()), "AlwaysOffSampler");
    static const struct {
        double ratio;
        const char *desc;
    } cases[] = {
        {0.25, "TraceIdRatioBased{0.25}"}, {0.1, "TraceIdRatioBased{0.1}"},
        {1.0, "TraceIdRatioBased{1}"},     {0.0, "TraceIdRatioBased{0}"},
        {2.5, "TraceIdRatioBased{1}"},     {-3.0, "TraceIdRatioBased{0}"},
        {NAN, "TraceIdRatioBased{0}"},     {1e-5, "TraceIdRatioBased{1e-05}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        af_sampler *s = af_sampler_trace_id_ratio(cases[i].ratio);
        assert_non_null(s);
        assert_string_equal(af_sampler_description(s), cases[i].desc);
        af_sampler_free(s);
    }
    af_sampler *pb = af_sampler_parent_based(NULL, NULL, NULL, NULL, NULL);
    assert_non_null(pb);
    assert_string_equal(af_sampler_description(pb),
                        "ParentBased{root:AlwaysOnSampler,remoteParentSampled:AlwaysOnSampler,"
                        "remoteParentNotSampled:AlwaysOffSampler,localParentSampled:"
                        "AlwaysOnSampler,localParentNotSampled:AlwaysOffSampler}");
    af_sampler_free(pb);
    pb = af_sampler_parent_based(af_sampler_trace_id_ratio(0.5), af_sampler_always_off(),
                                 af_sampler_always_on(), af_sampler_always_off(),
                                 af_sampler_always_on());
    assert_string_equal(af_sampler_description(pb),
                        "ParentBased{root:TraceIdRatioBased{0.5},remoteParentSampled:"
                        "AlwaysOffSampler,remoteParentNotSampled:AlwaysOnSampler,"
                        "localParentSampled:AlwaysOffSampler,localParentNotSampled:"
                        "AlwaysOnSampler}");
    af_sampler_free(pb);
    /* Freeing the singletons (or NULL) is harmless. */
    af_sampler_free(af_sampler_always_on());
    af_sampler_free(NULL);
    assert_string_equal(af_sampler_description(af_sampler_always_on()), "AlwaysOnSampler");
}

static void test_always_on_off(void **state)
{
    (void)state;
    uint8_t id[16];
    af_random_trace_id(id);
    assert_int_equal(decide(af_sampler_always_on(), id, NULL), AF_SAMPLING_RECORD_AND_SAMPLE);
    assert_int_equal(decide(af_sampler_always_off(), id, NULL), AF_SAMPLING_DROP);
}

/* Boundaries computed by hand from Go's sdk/trace/sampling.go:
 *   bound = uint64(ratio * 2^63); x = BigEndian.Uint64(id[8:16]) >> 1; sample iff x < bound. */
static void test_ratio_boundaries(void **state)
{
    (void)state;
    af_sampler *half = af_sampler_trace_id_ratio(0.5); /* bound = 2^62 = 0x4000000000000000 */
    assert_true(sampled_lo(half, 0));
    assert_true(sampled_lo(half, 0x7FFFFFFFFFFFFFFFull)); /* x = 2^62 - 1 */
    assert_true(sampled_lo(half, 0x7FFFFFFFFFFFFFFEull));
    assert_false(sampled_lo(half, 0x8000000000000000ull)); /* x = 2^62 */
    assert_false(sampled_lo(half, 0x8000000000000001ull)); /* the dropped bit does not count */
    assert_false(sampled_lo(half, 0xFFFFFFFFFFFFFFFFull));
    af_sampler_free(half);

    af_sampler *quarter = af_sampler_trace_id_ratio(0.25); /* bound = 2^61 */
    assert_true(sampled_lo(quarter, 0x3FFFFFFFFFFFFFFFull));
    assert_false(sampled_lo(quarter, 0x4000000000000000ull));
    af_sampler_free(quarter);

    /* 0.1 * 2^63 in doubles is exactly 922337203685477632 = 0x0CCCCCCCCCCCCD00. */
    af_sampler *tenth = af_sampler_trace_id_ratio(0.1);
    assert_true(sampled_lo(tenth, 0x19999999999999FEull));  /* x = bound - 1 */
    assert_true(sampled_lo(tenth, 0x19999999999999FFull));  /* x = bound - 1 */
    assert_false(sampled_lo(tenth, 0x1999999999999A00ull)); /* x = bound */
    assert_false(sampled_lo(tenth, 0x1999999999999A01ull)); /* x = bound */
    af_sampler_free(tenth);

    af_sampler *tiny = af_sampler_trace_id_ratio(ldexp(1.0, -63)); /* bound = 1 */
    assert_true(sampled_lo(tiny, 0));
    assert_true(sampled_lo(tiny, 1));
    assert_false(sampled_lo(tiny, 2));
    af_sampler_free(tiny);

    af_sampler *one = af_sampler_trace_id_ratio(1.0);
    assert_true(sampled_lo(one, 0xFFFFFFFFFFFFFFFFull));
    assert_true(sampled_lo(one, 0));
    af_sampler_free(one);

    af_sampler *zero = af_sampler_trace_id_ratio(0.0);
    assert_false(sampled_lo(zero, 0));
    assert_false(sampled_lo(zero, 0xFFFFFFFFFFFFFFFFull));
    af_sampler_free(zero);

    af_sampler *neg = af_sampler_trace_id_ratio(-1.0);
    assert_false(sampled_lo(neg, 0));
    af_sampler_free(neg);
    af_sampler *big = af_sampler_trace_id_ratio(7.0);
    assert_true(sampled_lo(big, 0xFFFFFFFFFFFFFFFFull));
    af_sampler_free(big);
}

static void test_ratio_deterministic_and_ignores_parent(void **state)
{
    (void)state;
    af_sampler *s = af_sampler_trace_id_ratio(0.5);
    af_span_context parent;
    af_span_context_init(&parent);
    parent.trace_id[0] = 1;
    parent.span_id[0] = 1;
    for (int i = 0; i < 10000; i++) {
        uint8_t id[16];
        af_random_trace_id(id);
        af_sampling_decision first = decide(s, id, NULL);
        assert_int_equal(decide(s, id, NULL), first);
        parent.trace_flags = AF_TRACE_FLAG_SAMPLED;
        assert_int_equal(decide(s, id, &parent), first);
        parent.trace_flags = 0;
        assert_int_equal(decide(s, id, &parent), first);
    }
    af_sampler_free(s);
}

static void test_ratio_accuracy(void **state)
{
    (void)state;
    enum { N = 1000000 };
    static const double ratios[] = {0.01, 0.1, 0.5};
    af_sampler *s[3];
    size_t hits[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++)
        s[k] = af_sampler_trace_id_ratio(ratios[k]);
    for (int i = 0; i < N; i++) {
        uint8_t id[16];
        af_random_trace_id(id);
        for (int k = 0; k < 3; k++)
            hits[k] += decide(s[k], id, NULL) == AF_SAMPLING_RECORD_AND_SAMPLE;
    }
    for (int k = 0; k < 3; k++) {
        double observed = (double)hits[k] / N;
        /* +-0.5 percentage points: 10 standard deviations at 0.5, far more at the others. */
        assert_true(fabs(observed - ratios[k]) <= 0.005);
        af_sampler_free(s[k]);
    }
}

static void test_ratio_superset(void **state)
{
    (void)state;
    static const double ratios[] = {0.0,  1e-6, 0.001, 0.01, 0.1,   0.25,
                                    0.33, 0.5,  0.75,  0.9,  0.999, 1.0};
    enum { R = sizeof(ratios) / sizeof(ratios[0]) };
    af_sampler *s[R];
    for (int k = 0; k < R; k++)
        s[k] = af_sampler_trace_id_ratio(ratios[k]);
    for (int i = 0; i < 200000; i++) {
        uint8_t id[16];
        af_random_trace_id(id);
        bool prev = false;
        for (int k = 0; k < R; k++) {
            bool now = decide(s[k], id, NULL) == AF_SAMPLING_RECORD_AND_SAMPLE;
            /* Once a ratio samples an id, every higher ratio samples it too. */
            assert_true(now || !prev);
            prev = now;
        }
        assert_true(prev); /* ratio 1 samples everything */
    }
    for (int k = 0; k < R; k++)
        af_sampler_free(s[k]);
}

/* A custom sampler that reports which delegate slot decided and counts its destruction. */
typedef struct probe {
    int id;
    int *last_called;
    int *destroyed;
} probe;

static af_sampling_decision probe_should_sample(void *self, const af_sampling_params *p)
{
    (void)p;
    probe *pr = self;
    *pr->last_called = pr->id;
    return AF_SAMPLING_RECORD_ONLY;
}

static const char *probe_description(void *self)
{
    static const char *names[] = {"P0", "P1", "P2", "P3", "P4"};
    return names[((probe *)self)->id];
}

static void probe_destroy(void *self)
{
    probe *pr = self;
    (*pr->destroyed)++;
    free(pr);
}

static const af_sampler_ops probe_ops = {probe_should_sample, probe_description, probe_destroy};

static af_sampler *new_probe(int id, int *last, int *destroyed)
{
    probe *pr = malloc(sizeof(*pr));
    assert_non_null(pr);
    *pr = (probe){id, last, destroyed};
    return af_sampler_custom(&probe_ops, pr);
}

/* Root spans skip the sampler call only where its answer cannot depend on the span. */
static void test_root_decision_is_fixed_only_where_it_cannot_vary(void **state)
{
    (void)state;
    assert_int_equal(af__sampler_root_decision(af_sampler_always_on()),
                     AF_SAMPLING_RECORD_AND_SAMPLE);
    assert_int_equal(af__sampler_root_decision(af_sampler_always_off()), AF_SAMPLING_DROP);
    af_sampler *pb = af_sampler_parent_based(NULL, NULL, NULL, NULL, NULL); /* AlwaysOn root */
    assert_int_equal(af__sampler_root_decision(pb), AF_SAMPLING_RECORD_AND_SAMPLE);
    af_sampler_free(pb);
    pb = af_sampler_parent_based(af_sampler_always_off(), NULL, NULL, NULL, NULL);
    assert_int_equal(af__sampler_root_decision(pb), AF_SAMPLING_DROP);
    af_sampler_free(pb);
    /* ParentBased whose root delegate is ParentBased(AlwaysOff): still fixed */
    pb = af_sampler_parent_based(
        af_sampler_parent_based(af_sampler_always_off(), NULL, NULL, NULL, NULL), NULL, NULL, NULL,
        NULL);
    assert_int_equal(af__sampler_root_decision(pb), AF_SAMPLING_DROP);
    af_sampler_free(pb);
    af_sampler *ratio = af_sampler_trace_id_ratio(0.5);
    assert_int_equal(af__sampler_root_decision(ratio), -1);
    af_sampler_free(ratio);
    pb = af_sampler_parent_based(af_sampler_trace_id_ratio(0.5), NULL, NULL, NULL, NULL);
    assert_int_equal(af__sampler_root_decision(pb), -1);
    af_sampler_free(pb);
    int last = -1, destroyed = 0;
    af_sampler *custom = new_probe(0, &last, &destroyed);
    assert_int_equal(af__sampler_root_decision(custom), -1);
    af_sampler_free(custom);
    assert_int_equal(af__sampler_root_decision(NULL), -1);
}

/* A provider over a custom root sampler still consults it for every root span. */
static void test_custom_root_sampler_called_per_root_span(void **state)
{
    (void)state;
    int last = -1, destroyed = 0;
    af_tracer_provider_opts o;
    af_tracer_provider_opts_init(&o);
    o.sampler = af_sampler_parent_based(new_probe(0, &last, &destroyed), NULL, NULL, NULL, NULL);
    af_tracer_provider *p = NULL;
    assert_int_equal(af_tracer_provider_new(&o, &p), 0);
    af_tracer *t = af_tracer_provider_get_tracer(p, "t", NULL, NULL);
    last = -1;
    af_span_start_opts so = {.parent_mode = AF_PARENT_ROOT};
    af_span s = af_span_start(t, "root", &so);
    assert_int_equal(last, 0); /* the root delegate decided */
    af_span_end(s);
    af_tracer_provider_free(p);
    assert_int_equal(destroyed, 1);
}

static void make_parent(af_span_context *sc, bool remote, bool sampled)
{
    af_span_context_init(sc);
    af_random_trace_id(sc->trace_id);
    af_random_span_id(sc->span_id);
    sc->is_remote = remote;
    sc->trace_flags = sampled ? AF_TRACE_FLAG_SAMPLED : 0;
}

static void test_parent_based_branches(void **state)
{
    (void)state;
    int last = -1, destroyed = 0;
    af_sampler *pb =
        af_sampler_parent_based(new_probe(0, &last, &destroyed), new_probe(1, &last, &destroyed),
                                new_probe(2, &last, &destroyed), new_probe(3, &last, &destroyed),
                                new_probe(4, &last, &destroyed));
    assert_non_null(pb);
    assert_string_equal(af_sampler_description(pb),
                        "ParentBased{root:P0,remoteParentSampled:P1,remoteParentNotSampled:P2,"
                        "localParentSampled:P3,localParentNotSampled:P4}");
    uint8_t id[16];
    af_random_trace_id(id);
    af_span_context parent;

    assert_int_equal(decide(pb, id, NULL), AF_SAMPLING_RECORD_ONLY);
    assert_int_equal(last, 0);
    /* An invalid parent (zero span id) is a root, whatever its flags say. */
    make_parent(&parent, true, true);
    memset(parent.span_id, 0, sizeof(parent.span_id));
    decide(pb, id, &parent);
    assert_int_equal(last, 0);

    make_parent(&parent, true, true);
    decide(pb, id, &parent);
    assert_int_equal(last, 1);
    make_parent(&parent, true, false);
    decide(pb, id, &parent);
    assert_int_equal(last, 2);
    make_parent(&parent, false, true);
    decide(pb, id, &parent);
    assert_int_equal(last, 3);
    make_parent(&parent, false, false);
    parent.trace_flags = AF_TRACE_FLAG_RANDOM; /* other flags do not make it sampled */
    decide(pb, id, &parent);
    assert_int_equal(last, 4);

    assert_int_equal(destroyed, 0);
    af_sampler_free(pb);
    assert_int_equal(destroyed, 5);
}

static void test_parent_based_defaults(void **state)
{
    (void)state;
    uint8_t id[16];
    af_random_trace_id(id);
    af_span_context parent;
    af_sampler *pb = af_sampler_parent_based(af_sampler_always_off(), NULL, NULL, NULL, NULL);
    assert_int_equal(decide(pb, id, NULL), AF_SAMPLING_DROP);
    make_parent(&parent, true, true);
    assert_int_equal(decide(pb, id, &parent), AF_SAMPLING_RECORD_AND_SAMPLE);
    make_parent(&parent, true, false);
    assert_int_equal(decide(pb, id, &parent), AF_SAMPLING_DROP);
    make_parent(&parent, false, true);
    assert_int_equal(decide(pb, id, &parent), AF_SAMPLING_RECORD_AND_SAMPLE);
    make_parent(&parent, false, false);
    assert_int_equal(decide(pb, id, &parent), AF_SAMPLING_DROP);
    af_sampler_free(pb);

    /* A NULL root means AlwaysOn, the spec's default ParentBased(AlwaysOn). */
    pb = af_sampler_parent_based(NULL, NULL, NULL, NULL, NULL);
    assert_int_equal(decide(pb, id, NULL), AF_SAMPLING_RECORD_AND_SAMPLE);
    af_sampler_free(pb);
}

static void test_parent_based_nested(void **state)
{
    (void)state;
    uint8_t id[16];
    make_id(id, 0, 0xFFFFFFFFFFFFFFFFull); /* never sampled by a ratio below 1 */
    af_span_context parent;
    af_sampler *inner =
        af_sampler_parent_based(af_sampler_trace_id_ratio(0.5), NULL, NULL, NULL, NULL);
    af_sampler *outer = af_sampler_parent_based(inner, NULL, NULL, NULL, NULL);
    assert_int_equal(decide(outer, id, NULL), AF_SAMPLING_DROP);
    make_parent(&parent, false, true);
    assert_int_equal(decide(outer, id, &parent), AF_SAMPLING_RECORD_AND_SAMPLE);
    af_sampler_free(outer);
}

static void test_ratio_as_delegate_logs_once_at_debug(void **state)
{
    (void)state;
    af_log_level saved = af_log_get_level();
    af_log_set_level(AF_LOG_DEBUG);
    af_test_log_capture_begin();
    af_sampler *a = af_sampler_parent_based(NULL, af_sampler_trace_id_ratio(0.5), NULL, NULL, NULL);
    af_sampler *b = af_sampler_parent_based(NULL, NULL, NULL, af_sampler_trace_id_ratio(0.5), NULL);
    const char *text = af_test_log_capture_text();
    const char *first = strstr(text, "non-root");
    assert_non_null(first);
    assert_null(strstr(first + 1, "non-root"));
    af_test_log_capture_end();
    af_log_set_level(saved);
    af_sampler_free(a);
    af_sampler_free(b);
}

static const char *static_desc(void *self)
{
    (void)self;
    return "MySampler{x}";
}

static const char *null_desc(void *self)
{
    (void)self;
    return NULL;
}

static af_sampling_decision drop_all(void *self, const af_sampling_params *p)
{
    (void)self;
    (void)p;
    return AF_SAMPLING_DROP;
}

static int free_count;

static void count_free(void *self)
{
    free(self);
    free_count++;
}

static void test_custom(void **state)
{
    (void)state;
    free_count = 0;
    af_sampler_ops ops = {drop_all, static_desc, count_free};
    af_sampler *s = af_sampler_custom(&ops, malloc(1));
    assert_non_null(s);
    /* The ops table is copied: changing the caller's one later has no effect. */
    ops.description = null_desc;
    assert_string_equal(af_sampler_description(s), "MySampler{x}");
    uint8_t id[16];
    af_random_trace_id(id);
    assert_int_equal(decide(s, id, NULL), AF_SAMPLING_DROP);
    af_sampler_free(s);
    assert_int_equal(free_count, 1);

    af_sampler_ops anon = {drop_all, NULL, count_free};
    s = af_sampler_custom(&anon, malloc(1));
    assert_string_equal(af_sampler_description(s), "CustomSampler");
    af_sampler_free(s);
    s = af_sampler_custom(&ops, malloc(1)); /* description returns NULL */
    assert_string_equal(af_sampler_description(s), "CustomSampler");
    af_sampler_free(s);
    assert_int_equal(free_count, 3);

    /* No should_sample: rejected, and `self` still released (ownership was taken). */
    af_sampler_ops bad = {NULL, NULL, count_free};
    assert_null(af_sampler_custom(&bad, malloc(1)));
    assert_int_equal(free_count, 4);
    assert_null(af_sampler_custom(NULL, NULL));
}

static void check_name(const char *name, const char *arg, const char *desc)
{
    char err[256] = "untouched";
    af_sampler *s = af_sampler_from_name(name, arg, err, sizeof(err));
    assert_non_null(s);
    assert_string_equal(af_sampler_description(s), desc);
    af_sampler_free(s);
}

#define PB(root)                                                                                   \
    "ParentBased{root:" root ",remoteParentSampled:AlwaysOnSampler,remoteParentNotSampled:"        \
    "AlwaysOffSampler,localParentSampled:AlwaysOnSampler,localParentNotSampled:"                   \
    "AlwaysOffSampler}"

static void test_from_name(void **state)
{
    (void)state;
    check_name("always_on", NULL, "AlwaysOnSampler");
    check_name("always_off", NULL, "AlwaysOffSampler");
    check_name("ALWAYS_ON", "ignored for this sampler", "AlwaysOnSampler");
    check_name("traceidratio", NULL, "TraceIdRatioBased{1}");
    check_name("traceidratio", "", "TraceIdRatioBased{1}");
    check_name("traceidratio", "0.25", "TraceIdRatioBased{0.25}");
    check_name("traceidratio", "0", "TraceIdRatioBased{0}");
    check_name("traceidratio", "1", "TraceIdRatioBased{1}");
    check_name("parentbased_always_on", NULL, PB("AlwaysOnSampler"));
    check_name("parentbased_always_off", NULL, PB("AlwaysOffSampler"));
    check_name("parentbased_traceidratio", "0.5", PB("TraceIdRatioBased{0.5}"));
    check_name("ParentBased_TraceIdRatio", NULL, PB("TraceIdRatioBased{1}"));
}

static void check_bad(const char *name, const char *arg, const char *needle)
{
    char err[256] = "";
    assert_null(af_sampler_from_name(name, arg, err, sizeof(err)));
    assert_non_null(strstr(err, needle));
    /* A NULL error buffer is allowed. */
    assert_null(af_sampler_from_name(name, arg, NULL, 0));
}

static void test_from_name_bad(void **state)
{
    (void)state;
    check_bad("nope", NULL, "unknown sampler \"nope\"");
    check_bad("", NULL, "unknown sampler");
    check_bad("always_on ", NULL, "unknown sampler");
    check_bad("xray", NULL, "not supported");
    check_bad("jaeger_remote", NULL, "not supported");
    check_bad("parentbased_jaeger_remote", "x", "not supported");
    check_bad(NULL, NULL, "no sampler name");
    static const char *const bad_args[] = {"abc", "1.5", "-0.1", "nan", "0.5x", " ", "inf"};
    for (size_t i = 0; i < sizeof(bad_args) / sizeof(bad_args[0]); i++) {
        check_bad("traceidratio", bad_args[i], "not a number between 0 and 1");
        check_bad("parentbased_traceidratio", bad_args[i], bad_args[i]);
    }
    /* A short buffer is truncated, not overrun. */
    char small[8];
    memset(small, 'x', sizeof(small));
    assert_null(af_sampler_from_name("nope", NULL, small, sizeof(small)));
    assert_int_equal(strlen(small), sizeof(small) - 1);
}

static void check_env(const char *name, const char *arg, const char *desc, const char *warning)
{
    if (name)
        setenv("OTEL_TRACES_SAMPLER", name, 1);
    else
        unsetenv("OTEL_TRACES_SAMPLER");
    if (arg)
        setenv("OTEL_TRACES_SAMPLER_ARG", arg, 1);
    else
        unsetenv("OTEL_TRACES_SAMPLER_ARG");
    af_test_log_capture_begin();
    af_sampler *s = af_sampler_from_env();
    const char *text = af_test_log_capture_text();
    if (warning)
        assert_non_null(strstr(text, warning));
    else
        assert_string_equal(text, "");
    af_test_log_capture_end();
    assert_non_null(s);
    assert_string_equal(af_sampler_description(s), desc);
    af_sampler_free(s);
}

static void test_from_env(void **state)
{
    (void)state;
    check_env(NULL, NULL, PB("AlwaysOnSampler"), NULL);
    check_env("", "", PB("AlwaysOnSampler"), NULL); /* empty = unset */
    check_env("always_off", "0.5", "AlwaysOffSampler", NULL);
    check_env("traceidratio", "0.3", "TraceIdRatioBased{0.3}", NULL);
    check_env("traceidratio", NULL, "TraceIdRatioBased{1}", NULL);
    check_env("parentbased_traceidratio", "0.01", PB("TraceIdRatioBased{0.01}"), NULL);
    /* Bad values are logged and ignored, never fatal. */
    check_env("traceidratio", "2", "TraceIdRatioBased{1}", "OTEL_TRACES_SAMPLER_ARG");
    check_env("parentbased_traceidratio", "lots", PB("TraceIdRatioBased{1}"),
              "OTEL_TRACES_SAMPLER_ARG");
    check_env("sometimes", NULL, PB("AlwaysOnSampler"), "OTEL_TRACES_SAMPLER: unknown");
    check_env("xray", NULL, PB("AlwaysOnSampler"), "OTEL_TRACES_SAMPLER: unsupported");
    unsetenv("OTEL_TRACES_SAMPLER");
    unsetenv("OTEL_TRACES_SAMPLER_ARG");
}

static void test_null_inputs(void **state)
{
    (void)state;
    uint8_t id[16] = {0};
    af_sampling_params p = {.trace_id = id};
    assert_int_equal(af_sampler_should_sample(NULL, &p), AF_SAMPLING_DROP);
    assert_int_equal(af_sampler_should_sample(af_sampler_always_on(), NULL), AF_SAMPLING_DROP);
    assert_string_equal(af_sampler_description(NULL), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptions),
        cmocka_unit_test(test_always_on_off),
        cmocka_unit_test(test_root_decision_is_fixed_only_where_it_cannot_vary),
        cmocka_unit_test(test_custom_root_sampler_called_per_root_span),
        cmocka_unit_test(test_ratio_boundaries),
        cmocka_unit_test(test_ratio_deterministic_and_ignores_parent),
        cmocka_unit_test(test_ratio_accuracy),
        cmocka_unit_test(test_ratio_superset),
        cmocka_unit_test(test_parent_based_branches),
        cmocka_unit_test(test_parent_based_defaults),
        cmocka_unit_test(test_parent_based_nested),
        cmocka_unit_test(test_ratio_as_delegate_logs_once_at_debug),
        cmocka_unit_test(test_custom),
        cmocka_unit_test(test_from_name),
        cmocka_unit_test(test_from_name_bad),
        cmocka_unit_test(test_from_env),
        cmocka_unit_test(test_null_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
