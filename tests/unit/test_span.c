/* Span API rules: attributes, limits, events, links, status, names, errors, end, context. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/propagation.h"
#include "agentaflow/trace_helpers.h"
#include "testutil.h"

static const af_span_data *only_span(af_test_env *env, af_span_copy **hold)
{
    size_t n = af_test_spans(env, hold, 1);
    assert_int_equal(n, 1);
    return af_span_copy_data(hold[0]);
}

static void test_basic_span_fields(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_span_start_opts o = {.kind = AF_SPAN_KIND_CLIENT,
                            .parent_mode = AF_PARENT_ROOT,
                            .start_ns = 1000,
                            .attrs = AF_ATTRS(AF_STR("gpu.id", "gpu-0"), AF_INT("n", 3))};
    af_span s = af_span_start(env.tracer, "op", &o);
    assert_true(af_span_is_recording(s));
    af_span_end_at(s, 5000);
    assert_false(af_span_is_recording(s));
    af_span_copy *hold[1];
    const af_span_data *d = only_span(&env, hold);
    assert_string_equal(d->name, "op");
    assert_int_equal(d->kind, AF_SPAN_KIND_CLIENT);
    assert_int_equal(d->start_ns, 1000);
    assert_int_equal(d->end_ns, 5000);
    assert_false(d->has_parent);
    assert_true(d->trace_flags & AF_TRACE_FLAG_SAMPLED);
    assert_true(d->trace_flags & AF_TRACE_FLAG_RANDOM);
    assert_int_equal(d->n_attrs, 2);
    const af_attr *a = af_test_find_attr(d->attrs, d->n_attrs, "gpu.id");
    assert_non_null(a);
    assert_string_equal(a->v.s.ptr, "gpu-0");
    assert_string_equal(d->scope->name, "test");
    assert_string_equal(d->scope->version, "1.0");
    assert_string_equal(af_resource_get_string(d->resource, "service.name"), "test");
    af_test_spans_free(hold, 1);
    af_test_env_free(&env);
}

static void test_attribute_types_and_overwrite(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_span s = af_span_start(env.tracer, "attrs", NULL);
    const char *strs[] = {"a", "b"};
    const int64_t ints[] = {1, 2, 3};
    const double dbls[] = {1.5};
    const bool bools[] = {true, false};
    char owned[8];
    strcpy(owned, "temp");
    af_span_set_attrs(s, AF_ATTRS(AF_STR("s", owned), AF_BOOL("b", true), AF_DOUBLE("d", 2.5),
                                  AF_STR_ARRAY("sa", strs, 2), AF_INT_ARRAY("ia", ints, 3),
                                  AF_DOUBLE_ARRAY("da", dbls, 1), AF_BOOL_ARRAY("ba", bools, 2),
                                  AF_STR("empty", "")));
    strcpy(owned, "XXXX");                /* the span copied the string */
    af_span_set_int(s, "s", 42);          /* same key overwrites, type may change */
    af_span_set_string(s, "", "ignored"); /* empty keys are not allowed */
    af_span_end(s);
    af_span_copy *hold[1];
    const af_span_data *d = only_span(&env, hold);
    assert_int_equal(d->n_attrs, 8);
    const af_attr *a = af_test_find_attr(d->attrs, d->n_attrs, "s");
    assert_int_equal(a->type, AF_VAL_INT);
    assert_int_equal(a->v.i, 42);
    a = af_test_find_attr(d->attrs, d->n_attrs, "sa");
    assert_int_equal(a->type, AF_VAL_STRING_ARRAY);
    assert_int_equal(a->v.arr.count, 2);
    assert_string_equal(((const char *const *)a->v.arr.items)[1], "b");
    a = af_test_find_attr(d->attrs, d->n_attrs, "ia");
    assert_int_equal(((const int64_t *)a->v.arr.items)[2], 3);
    a = af_test_find_attr(d->attrs, d->n_attrs, "ba");
    assert_false(((const bool *)a->v.arr.items)[1]);
    a = af_test_find_attr(d->attrs, d->n_attrs, "empty");
    assert_int_equal(a->v.s.len, 0);
    af_test_spans_free(hold, 1);
    af_test_env_free(&env);
}

/* Keys and values of every length from 1 to 40 bytes (the inline copy's 4-, 8-, 16- and
 * 32-byte cases and memcpy past them) arrive intact, through the start path's fast loop (ten
 * at a time) and its general path (all 40, more than the inline 16); keys of equal length are
 * all kept and a repeated key keeps its last value. */
static char len_keys[40][48], len_vals[40][48];

static void check_lengths(const af_attr *in, int first, int n)
{
    af_test_env env;
    af_test_env_init(&env);
    af_attr attrs[42];
    memcpy(attrs, in + first, (size_t)n * sizeof(af_attr));
    attrs[n] = AF_INT("xy", 1);                /* the same length as len_keys[1], another key */
    attrs[n + 1] = AF_INT(len_keys[first], 6); /* a repeat: replaces the first string */
    af_span_start_opts o = {
        .parent_mode = AF_PARENT_ROOT, .attrs = attrs, .n_attrs = (size_t)n + 2};
    af_span_end(af_span_start(env.tracer, "lengths", &o));
    af_span_copy *hold[1];
    const af_span_data *d = only_span(&env, hold);
    assert_int_equal(d->n_attrs, (uint32_t)n + 1); /* "xy" kept, the repeat replaced */
    for (int i = first; i < first + n; i++) {
        const af_attr *a = af_test_find_attr(d->attrs, d->n_attrs, len_keys[i]);
        assert_non_null(a);
        if (i == first) {
            assert_int_equal(a->type, AF_VAL_INT);
            assert_int_equal(a->v.i, 6);
            continue;
        }
        assert_int_equal(a->type, AF_VAL_STRING);
        assert_int_equal(a->v.s.len, (size_t)i + 1);
        assert_string_equal(a->v.s.ptr, len_vals[i]);
    }
    assert_non_null(af_test_find_attr(d->attrs, d->n_attrs, "xy"));
    af_test_spans_free(hold, 1);
    af_test_env_free(&env);
}

static void test_copy_lengths_and_duplicates(void **state)
{
    (void)state;
    af_attr attrs[40];
    for (int i = 0; i < 40; i++) {
        for (int j = 0; j <= i; j++) {
            len_keys[i][j] = (char)('a' + (i + j) % 26);
            len_vals[i][j] = (char)('A' + (i * 7 + j) % 26);
        }
        len_keys[i][i + 1] = '\0';
        len_vals[i][i + 1] = '\0';
        attrs[i] = AF_STR(len_keys[i], len_vals[i]);
    }
    for (int first = 0; first < 40; first += 10)
        check_lengths(attrs, first, 10);
    check_lengths(attrs, 0, 40);
}

static void test_limits_and_truncation(void **state)
{
    (void)state;
    af_resource *res = NULL;
    assert_int_equal(af_resource_new_raw(NULL, 0, &res), 0);
    af_tracer_provider_opts o;
    af_tracer_provider_opts_init(&o);
    o.resource = res;
    o.sampler = af_sampler_always_on();
    o.limits.attribute_count = 3;
    o.limits.attribute_value_length = 4;
    o.limits.event_count = 2;
    o.limits.link_count = 1;
    o.limits.attribute_per_event_count = 1;
    af_tracer_provider *p = NULL;
    assert_int_equal(af_tracer_provider_new(&o, &p), 0);
    af_exporter *e = NULL;
    af_memory_exporter *mem = NULL;
    assert_int_equal(af_memory_exporter_new(0, &e, &mem), 0);
    af_span_processor *proc = NULL;
    assert_int_equal(af_simple_processor_new(e, &proc), 0);
    assert_int_equal(af_tracer_provider_add_processor(p, proc), 0);
    af_tracer *t = af_tracer_provider_get_tracer(p, "lim", NULL, NULL);

    af_span s = af_span_start(t, "limited", NULL);
    /* "héllo wörld": 4 characters = "héll" (5 bytes), never a split é */
    af_span_set_string(s, "k1", "h\xc3\xa9llo w\xc3\xb6rld");
    const char *arr[] = {"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", "ok"};
    af_span_set_attrs(
        s, AF_ATTRS(AF_STR_ARRAY("k2", arr, 2), AF_INT("k3", 1), AF_INT("k4", 2), AF_INT("k5", 3)));
    af_span_set_int(s, "k1", 7); /* overwrite at the limit is not an add */
    for (int i = 0; i < 5; i++)
        af_span_add_event(s, "ev", AF_ATTRS(AF_INT("a", i), AF_INT("b", i)));
    af_span_context other;
    af_span_context_init(&other);
    other.trace_id[0] = 1;
    other.span_id[0] = 2;
    af_span_add_link(s, &other, NULL, 0);
    af_span_add_link(s, &other, NULL, 0);
    af_span_end(s);

    af_span_copy *hold[1];
    assert_int_equal(af_memory_exporter_snapshot(mem, hold, 1), 1);
    const af_span_data *d = af_span_copy_data(hold[0]);
    assert_int_equal(d->n_attrs, 3);
    assert_int_equal(d->dropped_attrs, 2);
    assert_int_equal(af_test_find_attr(d->attrs, d->n_attrs, "k1")->v.i, 7);
    const af_attr *k2 = af_test_find_attr(d->attrs, d->n_attrs, "k2");
    const char *const *items = k2->v.arr.items;
    assert_string_equal(items[0], "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac");
    assert_string_equal(items[1], "ok");
    assert_int_equal(d->n_events, 2);
    assert_int_equal(d->dropped_events, 3);
    assert_int_equal(d->events[0].n_attrs, 1);
    assert_int_equal(d->events[0].dropped_attrs, 1);
    assert_int_equal(d->n_links, 1);
    assert_int_equal(d->dropped_links, 1);
    af_span_copy_release(hold[0]);

    af_span s2 = af_span_start(t, "trunc", NULL);
    af_span_set_string(s2, "k", "h\xc3\xa9llo");
    af_span_end(s2);
    af_span_copy *all[2];
    assert_int_equal(af_memory_exporter_snapshot(mem, all, 2), 2);
    d = af_span_copy_data(all[1]);
    assert_string_equal(d->attrs[0].v.s.ptr, "h\xc3\xa9ll");
    assert_int_equal(d->attrs[0].v.s.len, 5);
    af_span_copy_release(all[0]);
    af_span_copy_release(all[1]);
    af_tracer_provider_free(p);
}

static void test_many_attributes_grow(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_span s = af_span_start(env.tracer, "big", NULL);
    char key[16], big[3000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        af_span_set_string(s, key, i % 50 == 0 ? big : key);
    }
    for (int i = 0; i < 20; i++)
        af_span_add_event(s, "e", AF_ATTRS(AF_STR("long", big)));
    af_span_end(s);
    af_span_copy *hold[1];
    const af_span_data *d = only_span(&env, hold);
    assert_int_equal(d->n_attrs, 128);
    assert_int_equal(d->dropped_attrs, 72);
    assert_string_equal(af_test_find_attr(d->attrs, d->n_attrs, "key127")->v.s.ptr, "key127");
    assert_int_equal(af_test_find_attr(d->attrs, d->n_attrs, "key100")->v.s.len, 2999);
    assert_int_equal(d->n_events, 20);
    af_test_spans_free(hold, 1);
    af_test_env_free(&env);
}

static void test_status_rules(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_span a = af_span_start(env.tracer, "a", NULL);
    af_span_set_status(a, AF_STATUS_OK, "ignored description");
    af_span_set_status(a, AF_STATUS_ERROR, "too late"); /* Ok is final */
    af_span_end(a);
    af_span b = af_span_start(env.tracer, "b", NULL);
    af_span_set_status(b, AF_STATUS_ERROR, "first");
    af_span_set_status(b, AF_STATUS_UNSET, NULL); /* ignored */
    af_span_set_status(b, AF_STATUS_ERROR, "second");
    af_span_end(b);
    af_span c = af_span_start(env.tracer, "c", NULL);
    af_span_set_status(c, AF_STATUS_ERROR, "boom");
    af_span_set_status(c, AF_STATUS_OK, "desc dropped"); /* Ok replaces Error */
    af_span_end(c);
    af_span_copy *hold[3];
    assert_int_equal(af_test_spans(&env, hold, 3), 3);
    const af_span_data *d = af_test_find_span(hold, 3, "a");
    assert_int_equal(d->status, AF_STATUS_OK);
    assert_string_equal(d->status_message, "");
    d = af_test_find_span(hold, 3, "b");
    assert_int_equal(d->status, AF_STATUS_ERROR);
    assert_string_equal(d->status_message, "second");
    d = af_test_find_span(hold, 3, "c");
    assert_int_equal(d->status, AF_STATUS_OK);
    assert_string_equal(d->status_message, "");
    af_test_spans_free(hold, 3);
    af_test_env_free(&env);
}

static void test_record_error_and_events(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_span s = af_span_start(env.tracer, "err", NULL);
    af_span_add_event_at(s, "model.loaded", 1234, AF_ATTRS(AF_STR("model.path", "/m")));
    af_span_record_error(s, "ENOMEM", "out of memory", "frame1\nframe2",
                         AF_ATTRS(AF_STR("exception.message", "caller wins")));
    af_span_update_name(s, "renamed");
    af_span_end(s);
    af_span_copy *hold[1];
    const af_span_data *d = only_span(&env, hold);
    assert_string_equal(d->name, "renamed");
    assert_int_equal(d->n_events, 2);
    assert_string_equal(d->events[0].name, "model.loaded");
    assert_int_equal(d->events[0].time_ns, 1234);
    const af_event_data *ex = &d->events[1];
    assert_string_equal(ex->name, "exception");
    assert_string_equal(af_test_find_attr(ex->attrs, ex->n_attrs, "exception.type")->v.s.ptr,
                        "ENOMEM");
    assert_string_equal(af_test_find_attr(ex->attrs, ex->n_attrs, "exception.message")->v.s.ptr,
                        "caller wins");
    assert_non_null(af_test_find_attr(ex->attrs, ex->n_attrs, "exception.stacktrace"));
    assert_int_equal(d->status, AF_STATUS_ERROR);
    assert_string_equal(d->status_message, "out of memory");
    af_test_spans_free(hold, 1);
    af_test_env_free(&env);
}

/* record_error reads the caller's list in place: all of it up to the event attribute limit,
 * the rest counted as dropped (it used to stop silently at 32). */
static void test_record_error_many_attributes(void **state)
{
    (void)state;
    char keys[40][8];
    af_attr extra[40];
    for (int i = 0; i < 40; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%02d", i);
        extra[i] = AF_INT(keys[i], i);
    }
    af_test_env env;
    af_test_env_init(&env);
    af_span s = af_span_start(env.tracer, "err", NULL);
    af_span_record_error(s, "E", "m", NULL, extra, 40);
    af_span_end(s);
    af_span_copy *hold[1];
    const af_span_data *d = only_span(&env, hold);
    const af_event_data *ex = &d->events[0];
    assert_int_equal(ex->n_attrs, 42);
    assert_int_equal(ex->dropped_attrs, 0);
    assert_int_equal(af_test_find_attr(ex->attrs, ex->n_attrs, "k39")->v.i, 39);
    af_test_spans_free(hold, 1);
    af_test_env_free(&env);

    /* With a limit of 10: the standard attributes first, then 8 of the caller's. */
    setenv("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "10", 1);
    af_test_env_init(&env);
    unsetenv("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT");
    s = af_span_start(env.tracer, "err", NULL);
    af_span_record_error(s, "E", "m", "st", extra, 40);
    af_span_end(s);
    d = only_span(&env, hold);
    ex = &d->events[0];
    assert_int_equal(ex->n_attrs, 10);
    assert_int_equal(ex->dropped_attrs, 33);
    assert_non_null(af_test_find_attr(ex->attrs, ex->n_attrs, "exception.stacktrace"));
    assert_non_null(af_test_find_attr(ex->attrs, ex->n_attrs, "k06"));
    assert_null(af_test_find_attr(ex->attrs, ex->n_attrs, "k07"));
    af_test_spans_free(hold, 1);
    af_test_env_free(&env);
}

/* An out-of-range kind is exported as INTERNAL, with one warning however many spans. */
static void test_invalid_kind(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_test_log_capture_begin();
    for (int i = 0; i < 3; i++) {
        af_span_start_opts o = {.kind = (af_span_kind)6};
        af_span_end(af_span_start(env.tracer, "bad-kind", &o));
    }
    af_span_end(af_span_start_child(env.tracer, "neg-kind", (af_span_kind)-1, NULL, NULL, 0));
    af_span_end(af_span_start_child(env.tracer, "consumer", AF_SPAN_KIND_CONSUMER, NULL, NULL, 0));
    const char *log = af_test_log_capture_text();
    const char *first = strstr(log, "span kind 6");
    assert_non_null(first);
    assert_null(strstr(first + 1, "span kind"));
    af_test_log_capture_end();
    af_span_copy *hold[5];
    assert_int_equal(af_test_spans(&env, hold, 5), 5);
    for (int i = 0; i < 4; i++)
        assert_int_equal(af_span_copy_data(hold[i])->kind, AF_SPAN_KIND_INTERNAL);
    assert_int_equal(af_span_copy_data(hold[4])->kind, AF_SPAN_KIND_CONSUMER);
    af_test_spans_free(hold, 5);
    af_test_env_free(&env);
}

/* A sampler that records the links it was shown and drops spans named "drop". */
typedef struct link_probe {
    size_t n_links;
    uint8_t first_span_id[8];
} link_probe;

static af_sampling_decision link_probe_sample(void *self, const af_sampling_params *p)
{
    link_probe *lp = self;
    lp->n_links = p->n_links;
    if (p->n_links)
        memcpy(lp->first_span_id, p->links[0].context->span_id, 8);
    return strcmp(p->name, "drop") == 0 ? AF_SAMPLING_DROP : AF_SAMPLING_RECORD_AND_SAMPLE;
}

static const char *link_probe_desc(void *self)
{
    (void)self;
    return "LinkProbe";
}

static void test_sampler_sees_links(void **state)
{
    (void)state;
    static link_probe lp;
    static const af_sampler_ops ops = {link_probe_sample, link_probe_desc, NULL};
    af_tracer_provider_opts po;
    af_tracer_provider_opts_init(&po);
    po.sampler = af_sampler_custom(&ops, &lp);
    af_tracer_provider *p = NULL;
    assert_int_equal(af_tracer_provider_new(&po, &p), 0);
    af_tracer *t = af_tracer_provider_get_tracer(p, "links", NULL, NULL);
    af_span_context batch_a, batch_b;
    af_span_context_init(&batch_a);
    af_span_context_init(&batch_b);
    batch_a.trace_id[0] = batch_b.trace_id[0] = 1;
    batch_a.span_id[7] = 0xa;
    batch_b.span_id[7] = 0xb;
    const af_link links[] = {{&batch_a, NULL, 0}, {&batch_b, NULL, 0}};
    af_span_start_opts o = {.links = links, .n_links = 2};
    af_span_end(af_span_start(t, "drop", &o));
    assert_int_equal(lp.n_links, 2);
    assert_int_equal(lp.first_span_id[7], 0xa);
    af_span_end(af_span_start(t, "nolinks", NULL));
    assert_int_equal(lp.n_links, 0);
    af_tracer_provider_free(p);
}

/* Scope attributes are part of a tracer's identity (as a set) and are copied. */
static void test_tracer_scope_attributes(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    char owner[8] = "sre";
    const af_attr ab[] = {AF_STR("owner", owner), AF_INT("shard", 1)};
    const af_attr ba[] = {AF_INT("shard", 1), AF_STR("owner", "sre")};
    const af_attr other[] = {AF_INT("shard", 2), AF_STR("owner", "sre")};
    af_tracer_opts o;
    af_tracer_opts_init(&o);
    o.name = "lib";
    o.version = "1";
    o.attrs = ab;
    o.n_attrs = 2;
    af_tracer *t1 = af_tracer_provider_get_tracer_opts(env.provider, &o);
    strcpy(owner, "xxx"); /* copied: the tracer keeps "sre" */
    o.attrs = ba;
    af_tracer *t2 = af_tracer_provider_get_tracer_opts(env.provider, &o);
    o.attrs = other;
    af_tracer *t3 = af_tracer_provider_get_tracer_opts(env.provider, &o);
    af_tracer *plain = af_tracer_provider_get_tracer(env.provider, "lib", "1", NULL);
    assert_ptr_equal(t1, t2);
    assert_ptr_not_equal(t1, t3);
    assert_ptr_not_equal(t1, plain);
    assert_ptr_equal(plain, af_tracer_provider_get_tracer(env.provider, "lib", "1", NULL));
    assert_null(af_tracer_provider_get_tracer_opts(env.provider, NULL));

    /* A bad attribute list is dropped whole, with a warning; the tracer still works. */
    const af_attr bad[] = {AF_STR("", "x"), AF_INT("ok", 1)};
    o.name = "badattrs";
    o.attrs = bad;
    af_test_log_capture_begin();
    af_tracer *tb = af_tracer_provider_get_tracer_opts(env.provider, &o);
    assert_non_null(strstr(af_test_log_capture_text(), "invalid scope attribute"));
    af_test_log_capture_end();
    af_span_end(af_span_start(t1, "scoped", NULL));
    af_span_end(af_span_start(tb, "bad", NULL));
    af_span_copy *hold[2];
    assert_int_equal(af_test_spans(&env, hold, 2), 2);
    const af_span_data *d = af_span_copy_data(hold[0]);
    assert_string_equal(d->scope->name, "lib");
    assert_int_equal(d->scope->n_attrs, 2);
    assert_string_equal(af_test_find_attr(d->scope->attrs, 2, "owner")->v.s.ptr, "sre");
    assert_int_equal(af_test_find_attr(d->scope->attrs, 2, "shard")->v.i, 1);
    d = af_span_copy_data(hold[1]);
    assert_string_equal(d->scope->name, "badattrs");
    assert_int_equal(d->scope->n_attrs, 0);
    af_test_spans_free(hold, 2);
    af_test_env_free(&env);
}

static void test_end_is_idempotent_and_stale_handles_ignored(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_span s = af_span_start(env.tracer, "once", NULL);
    af_span_end_at(s, af_now_ns());
    af_span_end(s);
    af_span_set_string(s, "late", "ignored");
    af_span_add_event(s, "late", NULL, 0);
    af_span_set_status(s, AF_STATUS_ERROR, "late");
    af_span_update_name(s, "late");
    /* Reuse the record many times; the old handle must stay inert. */
    for (int i = 0; i < 300; i++)
        af_span_end(af_span_start(env.tracer, "filler", NULL));
    af_span_set_string(s, "late", "ignored");
    af_span_end(s);
    af_span_copy *hold[400];
    size_t n = af_test_spans(&env, hold, 400);
    assert_int_equal(n, 301);
    const af_span_data *d = af_test_find_span(hold, n, "once");
    assert_non_null(d);
    assert_int_equal(d->n_attrs, 0);
    assert_int_equal(d->n_events, 0);
    assert_int_equal(d->status, AF_STATUS_UNSET);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(af_span_copy_data(hold[i])->n_attrs, 0);
    af_test_spans_free(hold, n);
    /* AF_SPAN_NONE and a NULL tracer are no-ops. */
    af_span none = af_span_start(NULL, "x", NULL);
    assert_null(none.rec);
    af_span_set_int(none, "k", 1);
    af_span_end(none);
    af_test_env_free(&env);
}

/* ---- handles used from another thread while their records are reused ---- */

static _Atomic uint64_t reuse_exported, reuse_bad_attrs;
/* The last handle the producer made, published as a pair under a mutex: read as two separate
 * atomics, a torn pair (one span's record, another's generation) could name a record at a
 * generation nobody was handed, which no real caller can hold. */
static pthread_mutex_t shared_mu = PTHREAD_MUTEX_INITIALIZER;
static af_span shared_span;
static atomic_bool producer_done;

static int reuse_export(void *self, const af_span_data *const *spans, size_t n, uint64_t dl)
{
    (void)self;
    (void)dl;
    for (size_t i = 0; i < n; i++)
        if (spans[i]->n_attrs > 2) /* the producer's one and at most one from the meddler */
            atomic_fetch_add(&reuse_bad_attrs, 1);
    atomic_fetch_add(&reuse_exported, n);
    return 0;
}

static const af_exporter_ops reuse_ops = {.type = "reuse", .export_spans = reuse_export};

static void *meddle(void *arg)
{
    (void)arg;
    while (!atomic_load(&producer_done)) {
        pthread_mutex_lock(&shared_mu);
        af_span s = shared_span;
        pthread_mutex_unlock(&shared_mu);
        if (!s.rec)
            continue;
        af_span_context ctx;
        af_span_get_context(s, &ctx);
        (void)af_span_is_recording(s);
        af_span_set_int(s, "meddler", 1);
        af_span_add_event(s, "meddled", NULL, 0);
    }
    return NULL;
}

/* One thread makes spans as fast as it can (their records recycled through a small batch
 * queue) while another calls the API on whichever handle it last saw, live, ended or stale:
 * no crash, no span with more than the two attributes it can get, and, under TSan, no race
 * between the stale calls and a record's reuse (which takes no lock: the generation is
 * bumped under the span lock when the record is released). */
static void test_stale_handles_during_reuse(void **state)
{
    (void)state;
    af_tracer_provider_opts po;
    af_tracer_provider_opts_init(&po);
    po.sampler = af_sampler_always_on();
    af_tracer_provider *p = NULL;
    af_exporter *e = NULL;
    af_span_processor *proc = NULL;
    af_batch_processor_opts bo;
    af_batch_processor_opts_init(&bo);
    bo.max_queue_size = 256;
    bo.max_export_batch_size = 32;
    assert_int_equal(af_tracer_provider_new(&po, &p), 0);
    assert_int_equal(af_exporter_new(&reuse_ops, NULL, &e), 0);
    assert_int_equal(af_batch_processor_new(e, &bo, &proc), 0);
    assert_int_equal(af_tracer_provider_add_processor(p, proc), 0);
    af_tracer *t = af_tracer_provider_get_tracer(p, "reuse", "1", NULL);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, meddle, NULL), 0);
    af_span_start_opts o = {.parent_mode = AF_PARENT_ROOT,
                            .attrs = AF_ATTRS(AF_INT("producer", 1))};
    for (int i = 0; i < 20000; i++) {
        af_span s = af_span_start(t, "reused", &o);
        pthread_mutex_lock(&shared_mu);
        shared_span = s;
        pthread_mutex_unlock(&shared_mu);
        af_span_add_event(s, "own", NULL, 0);
        af_span_end(s);
    }
    atomic_store(&producer_done, true);
    pthread_join(th, NULL);
    assert_int_equal(af_tracer_provider_force_flush(p, 10000), 0);
    print_message("exported %llu spans\n", (unsigned long long)atomic_load(&reuse_exported));
    assert_true(atomic_load(&reuse_exported) > 0);
    assert_int_equal(atomic_load(&reuse_bad_attrs), 0);
    af_tracer_provider_free(p);
}

static void test_parenting_current_and_explicit(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_span root = af_span_start(env.tracer, "root", NULL);
    af_context_token tok = af_context_attach(root);
    af_span child = af_span_start(env.tracer, "child", NULL);
    af_context_token tok2 = af_context_attach(child);
    af_span grandchild = af_span_start(env.tracer, "grandchild", NULL);
    af_span_end(grandchild);
    af_context_detach(tok2);
    af_span_end(child);
    af_span_start_opts ro = {.parent_mode = AF_PARENT_ROOT};
    af_span other = af_span_start(env.tracer, "other-root", &ro);
    af_span_end(other);
    af_context_detach(tok);
    af_span after = af_span_start(env.tracer, "after", NULL);
    af_span_end(after);

    af_span_context rc;
    af_span_get_context(root, &rc);
    af_span_context remote;
    af_span_context_init(&remote);
    memcpy(remote.trace_id, rc.trace_id, 16);
    memset(remote.span_id, 0xab, 8);
    remote.trace_flags = AF_TRACE_FLAG_SAMPLED;
    remote.is_remote = true;
    assert_int_equal(af_tracestate_set(&remote, "vendor=abc", 10), 0);
    af_span explicit_child =
        af_span_start_child(env.tracer, "explicit", AF_SPAN_KIND_SERVER, &remote, NULL, 0);
    af_span_end(explicit_child);
    af_span_end(root);

    af_span_copy *hold[8];
    size_t n = af_test_spans(&env, hold, 8);
    assert_int_equal(n, 6);
    const af_span_data *r = af_test_find_span(hold, n, "root");
    const af_span_data *c = af_test_find_span(hold, n, "child");
    const af_span_data *g = af_test_find_span(hold, n, "grandchild");
    const af_span_data *o = af_test_find_span(hold, n, "other-root");
    const af_span_data *a = af_test_find_span(hold, n, "after");
    const af_span_data *e = af_test_find_span(hold, n, "explicit");
    assert_memory_equal(c->trace_id, r->trace_id, 16);
    assert_memory_equal(c->parent_span_id, r->span_id, 8);
    assert_memory_equal(g->parent_span_id, c->span_id, 8);
    assert_false(o->has_parent);
    assert_memory_not_equal(o->trace_id, r->trace_id, 16);
    assert_false(a->has_parent);
    assert_true(e->has_parent);
    assert_true(e->parent_is_remote);
    assert_memory_equal(e->parent_span_id, remote.span_id, 8);
    assert_string_equal(e->trace_state, "vendor=abc");
    af_test_spans_free(hold, n);
    af_test_env_free(&env);
}

static void test_current_context_survives_parent_end(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_span parent = af_span_start(env.tracer, "parent", NULL);
    af_span_context pc;
    af_span_get_context(parent, &pc);
    af_context_token tok = af_context_attach(parent);
    af_span_end(parent);
    for (int i = 0; i < 100; i++) /* recycle the parent's record */
        af_span_end(af_span_start_child(env.tracer, "x", 0, NULL, NULL, 0));
    af_span late = af_span_start(env.tracer, "late-child", NULL);
    af_span_end(late);
    af_span_context cur;
    af_context_current(&cur);
    assert_memory_equal(cur.span_id, pc.span_id, 8);
    af_context_detach(tok);
    af_context_current(&cur);
    assert_false(af_span_context_is_valid(&cur));
    af_span_copy *hold[128];
    size_t n = af_test_spans(&env, hold, 128);
    const af_span_data *d = af_test_find_span(hold, n, "late-child");
    assert_memory_equal(d->parent_span_id, pc.span_id, 8);
    assert_memory_equal(d->trace_id, pc.trace_id, 16);
    af_test_spans_free(hold, n);
    af_test_env_free(&env);
}

static void test_unsampled_and_disabled(void **state)
{
    (void)state;
    /* AlwaysOff: a non-recording span that still has ids and propagates. */
    af_tracer_provider_opts o;
    af_tracer_provider_opts_init(&o);
    o.sampler = af_sampler_always_off();
    af_tracer_provider *p = NULL;
    assert_int_equal(af_tracer_provider_new(&o, &p), 0);
    af_exporter *e = NULL;
    af_memory_exporter *mem = NULL;
    assert_int_equal(af_memory_exporter_new(0, &e, &mem), 0);
    af_span_processor *proc = NULL;
    assert_int_equal(af_simple_processor_new(e, &proc), 0);
    assert_int_equal(af_tracer_provider_add_processor(p, proc), 0);
    af_tracer *t = af_tracer_provider_get_tracer(p, "off", NULL, NULL);
    af_span s = af_span_start(t, "dropped", NULL);
    assert_false(af_span_is_recording(s));
    af_span_context sc;
    af_span_get_context(s, &sc);
    assert_true(af_span_context_is_valid(&sc));
    assert_false(af_span_context_is_sampled(&sc));
    af_span_end(s);
    assert_int_equal(af_memory_exporter_total(mem), 0);
    af_provider_stats st;
    af_tracer_provider_stats(p, &st);
    assert_int_equal(st.spans_unsampled, 1);
    af_tracer_provider_free(p);

    /* OTEL_SDK_DISABLED-style provider: children carry the remote parent's context. */
    af_tracer_provider_opts_init(&o);
    o.disabled = true;
    assert_int_equal(af_tracer_provider_new(&o, &p), 0);
    t = af_tracer_provider_get_tracer(p, "noop", NULL, NULL);
    af_span_context remote;
    assert_int_equal(af_traceparent_parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                                          55, &remote),
                     0);
    af_span c = af_span_start_child(t, "child", AF_SPAN_KIND_SERVER, &remote, NULL, 0);
    assert_false(af_span_is_recording(c));
    af_span_get_context(c, &sc);
    assert_memory_equal(sc.trace_id, remote.trace_id, 16);
    assert_memory_equal(sc.span_id, remote.span_id, 8);
    assert_true(af_span_context_is_sampled(&sc));
    af_span_end(c);
    assert_false(af_tracer_enabled(t));
    af_tracer_provider_free(p);
}

static void test_tracers_by_scope_and_shutdown(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_tracer *a = af_tracer_provider_get_tracer(env.provider, "lib", "1", "https://s");
    af_tracer *b = af_tracer_provider_get_tracer(env.provider, "lib", "1", "https://s");
    af_tracer *c = af_tracer_provider_get_tracer(env.provider, "lib", "2", NULL);
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, c);
    assert_true(af_tracer_enabled(a));
    assert_int_equal(af_tracer_provider_force_flush(env.provider, 1000), 0);
    assert_int_equal(af_tracer_provider_shutdown(env.provider, 1000), 0);
    assert_int_equal(af_tracer_provider_shutdown(env.provider, 1000), AF_ESHUTDOWN);
    af_tracer *late = af_tracer_provider_get_tracer(env.provider, "late", NULL, NULL);
    af_span s = af_span_start(late, "after-shutdown", NULL);
    assert_false(af_span_is_recording(s));
    af_span_end(s);
    assert_int_equal(af_memory_exporter_total(env.mem), 0);
    af_test_env_free(&env);
}

static void test_document_helpers(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_span s = af_trace_gpu_scheduling(env.tracer, NULL, "register_gpu", "gpu-1");
    af_operation_end(s, 0, NULL, NULL);
    s = af_trace_api_request(env.tracer, NULL, "GET", "/api/v1/gpus");
    af_operation_end(s, -ENOENT, "not_found", "no such GPU");
    s = af_trace_model_serving(env.tracer, NULL, "inference", "model-gpt");
    af_operation_end(s, 0, NULL, NULL);
    s = af_trace_metrics_collection(env.tracer, NULL, "collect_metrics", 4);
    af_operation_end(s, 0, NULL, NULL);
    s = af_trace_websocket_event(env.tracer, NULL, "metrics_update", "conn-1");
    af_operation_end(s, 0, NULL, NULL);
    s = af_trace_cost_calculation(env.tracer, NULL, "record_cost", 2.5);
    af_operation_end(s, 0, NULL, NULL);
    assert_null(af_trace_gpu_scheduling(NULL, NULL, "x", "y").rec);

    af_span_copy *hold[8];
    size_t n = af_test_spans(&env, hold, 8);
    assert_int_equal(n, 6);
    const af_span_data *d = af_test_find_span(hold, n, "gpu_scheduling.register_gpu");
    assert_non_null(d);
    assert_int_equal(d->kind, AF_SPAN_KIND_INTERNAL);
    assert_string_equal(af_test_find_attr(d->attrs, d->n_attrs, "gpu.id")->v.s.ptr, "gpu-1");
    assert_string_equal(af_test_find_attr(d->attrs, d->n_attrs, "operation.status")->v.s.ptr,
                        "success");
    assert_non_null(af_test_find_attr(d->attrs, d->n_attrs, "operation.duration_ms"));
    const af_attr *st = af_test_find_attr(d->attrs, d->n_attrs, "operation.start_time");
    assert_non_null(st);
    assert_int_equal(st->v.s.len, 24); /* 2026-11-25T03:05:58.123Z */
    assert_int_equal(d->status, AF_STATUS_OK);
    d = af_test_find_span(hold, n, "api_requests.GET /api/v1/gpus");
    assert_non_null(d);
    assert_int_equal(d->kind, AF_SPAN_KIND_SERVER);
    assert_int_equal(d->status, AF_STATUS_ERROR);
    assert_string_equal(d->status_message, "no such GPU");
    assert_string_equal(af_test_find_attr(d->attrs, d->n_attrs, "http.route")->v.s.ptr,
                        "/api/v1/gpus");
    assert_string_equal(af_test_find_attr(d->attrs, d->n_attrs, "operation.status")->v.s.ptr,
                        "error");
    assert_int_equal(d->n_events, 1);
    d = af_test_find_span(hold, n, "model_serving.inference");
    assert_int_equal(d->kind, AF_SPAN_KIND_SERVER);
    d = af_test_find_span(hold, n, "metrics_collection.collect_metrics");
    assert_int_equal(af_test_find_attr(d->attrs, d->n_attrs, "metrics.count")->v.i, 4);
    d = af_test_find_span(hold, n, "websocket_events.metrics_update");
    assert_string_equal(af_test_find_attr(d->attrs, d->n_attrs, "connection.id")->v.s.ptr,
                        "conn-1");
    d = af_test_find_span(hold, n, "cost_tracking.record_cost");
    assert_true(af_test_find_attr(d->attrs, d->n_attrs, "cost.gpu_hours")->v.d == 2.5);
    af_test_spans_free(hold, n);
    af_test_env_free(&env);
}

static void test_environment_configures_provider(void **state)
{
    (void)state;
    setenv("OTEL_SDK_DISABLED", "TRUE", 1);
    setenv("OTEL_SPAN_EVENT_COUNT_LIMIT", "7", 1);
    setenv("OTEL_TRACES_SAMPLER", "always_off", 1);
    af_tracer_provider_opts o;
    af_tracer_provider_opts_init(&o);
    assert_true(o.disabled);
    assert_int_equal(o.limits.event_count, 7);
    unsetenv("OTEL_SDK_DISABLED");
    unsetenv("OTEL_SPAN_EVENT_COUNT_LIMIT");
    af_tracer_provider_opts_init(&o);
    assert_false(o.disabled);
    assert_int_equal(o.limits.event_count, 128);
    af_tracer_provider *p = NULL;
    assert_int_equal(af_tracer_provider_new(&o, &p), 0);
    assert_string_equal(af_sampler_description(af_tracer_provider_sampler(p)), "AlwaysOffSampler");
    af_tracer_provider_free(p);
    unsetenv("OTEL_TRACES_SAMPLER");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_span_fields),
        cmocka_unit_test(test_attribute_types_and_overwrite),
        cmocka_unit_test(test_copy_lengths_and_duplicates),
        cmocka_unit_test(test_limits_and_truncation),
        cmocka_unit_test(test_many_attributes_grow),
        cmocka_unit_test(test_status_rules),
        cmocka_unit_test(test_record_error_and_events),
        cmocka_unit_test(test_record_error_many_attributes),
        cmocka_unit_test(test_invalid_kind),
        cmocka_unit_test(test_sampler_sees_links),
        cmocka_unit_test(test_tracer_scope_attributes),
        cmocka_unit_test(test_end_is_idempotent_and_stale_handles_ignored),
        cmocka_unit_test(test_stale_handles_during_reuse),
        cmocka_unit_test(test_parenting_current_and_explicit),
        cmocka_unit_test(test_current_context_survives_parent_end),
        cmocka_unit_test(test_unsampled_and_disabled),
        cmocka_unit_test(test_tracers_by_scope_and_shutdown),
        cmocka_unit_test(test_document_helpers),
        cmocka_unit_test(test_environment_configures_provider),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
