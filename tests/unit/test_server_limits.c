/*
 * test_server_limits.c - the request body limits table (server/limits.h) and the write
 * handlers that read through it, driven without a socket: an over-limit value answers 400
 * naming the field and the limit, and leaves nothing in the component or in any span.
 */
#include "testutil.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/cost.h"
#include "agentaflow/gpu.h"
#include "agentaflow/server.h"
#include "server/limits.h"
#include "server/server_int.h"

static const af__route *route(unsigned method, const char *pattern)
{
    for (size_t i = 0; i < af__nroutes; i++)
        if (af__routes[i].methods == method && strcmp(af__routes[i].pattern, pattern) == 0)
            return &af__routes[i];
    fail_msg("no route %u %s", method, pattern);
    return NULL;
}

/* Runs a POST handler on body; returns the status and leaves the body in rs. */
static int post(af_server *s, const char *pattern, const char *body, af__resp *rs)
{
    af__req rq;
    memset(&rq, 0, sizeof(rq));
    rq.srv = s;
    rq.method = AF__M_POST;
    rq.path = pattern;
    rq.query = "";
    rq.body = body;
    rq.body_len = strlen(body);
    af__resp_init(rs);
    assert_int_equal(route(AF__M_POST, pattern)->fn(&rq, rs), 0);
    return rs->status;
}

/* The error object's code and message of a response. */
static void error_of(af__resp *rs, char *code, size_t code_len, char *msg, size_t msg_len)
{
    json_t *j = json_loadb((const char *)rs->body.data + AF__RESP_HEADROOM,
                           rs->body.len - AF__RESP_HEADROOM, 0, NULL);
    assert_non_null(j);
    json_t *e = json_object_get(j, "error");
    assert_non_null(e);
    snprintf(code, code_len, "%s", json_string_value(json_object_get(e, "code")));
    snprintf(msg, msg_len, "%s", json_string_value(json_object_get(e, "message")));
    json_decref(j);
}

/* A JSON body {"<key>":"<n bytes of c>", ...rest} (rest starts with a comma or is ""). */
static char *body_with(const char *key, size_t n, char c, const char *rest)
{
    size_t cap = strlen(key) + n + strlen(rest) + 16;
    char *b = malloc(cap);
    assert_non_null(b);
    int k = snprintf(b, cap, "{\"%s\":\"", key);
    memset(b + k, c, n);
    snprintf(b + k + n, cap - (size_t)k - n, "\"%s}", rest);
    return b;
}

/* ---------------------------------------------------------------------------------------- */
/* The table.                                                                                */

static void test_table_is_complete(void **state)
{
    (void)state;
    for (int f = 0; f < AF__F_COUNT; f++) {
        const af__field_limit *l = &af__field_limits[f];
        assert_non_null(l->route);
        assert_non_null(l->name);
        assert_true(l->max_bytes > 0 && l->max_bytes <= 255);
    }
    /* What becomes a label value or a summary key is label-safe; what the scheduler copies
     * fits its buffers. */
    assert_int_equal(af__field_limits[AF__F_COST_OPERATION].charset, AF__CS_LABEL);
    assert_int_equal(af__field_limits[AF__F_COST_MODEL_ID].charset, AF__CS_LABEL);
    assert_int_equal(af__field_limits[AF__F_INFER_MODEL_ID].charset, AF__CS_LABEL);
    assert_int_equal(af__field_limits[AF__F_GPU_ID].charset, AF__CS_LABEL);
    assert_true(af__field_limits[AF__F_GPU_ID].max_bytes < AF_GPU_ID_MAX);
    assert_true(af__field_limits[AF__F_WORKLOAD_ID].max_bytes < AF_GPU_ID_MAX);
    assert_true(af__field_limits[AF__F_GPU_NAME].max_bytes < AF_GPU_NAME_MAX);
    assert_true(af__field_limits[AF__F_WORKLOAD_NAME].max_bytes < AF_GPU_NAME_MAX);
}

static void test_field_check_length(void **state)
{
    (void)state;
    char v[300], err[160];
    uint32_t max = af__field_limits[AF__F_COST_OPERATION].max_bytes;
    memset(v, 'a', sizeof(v));
    assert_int_equal(af__field_check(AF__F_COST_OPERATION, NULL, v, max, err, sizeof(err)), 0);
    assert_int_equal(af__field_check(AF__F_COST_OPERATION, NULL, v, max + 1, err, sizeof(err)),
                     -EINVAL);
    char want[96];
    snprintf(want, sizeof(want), "\"operation\" is %u bytes; the limit is %u bytes", max + 1, max);
    assert_string_equal(err, want);
    /* An alias key is named as the client spelled it. */
    assert_int_equal(af__field_check(AF__F_INFER_MODEL_ID, "model", v, 1000, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "\"model\" is 1000 bytes"));
}

static void test_field_check_charset(void **state)
{
    (void)state;
    char err[160];
    assert_int_equal(
        af__field_check(AF__F_COST_OPERATION, NULL, "llm_inference:v2/a-b.c", 22, err, sizeof(err)),
        0);
    static const char *bad[] = {"two words", "quote\"", "back\\slash", "new\nline", "{x}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(
            af__field_check(AF__F_COST_OPERATION, NULL, bad[i], strlen(bad[i]), err, sizeof(err)),
            -EINVAL);
        assert_non_null(strstr(err, "\"operation\" may contain only"));
    }
    /* Text fields take spaces and UTF-8 but no control bytes (an embedded NUL included). */
    assert_int_equal(
        af__field_check(AF__F_GPU_NAME, NULL, "NVIDIA A100 \xc3\xa9", 14, err, sizeof(err)), 0);
    assert_int_equal(af__field_check(AF__F_GPU_NAME, NULL, "a\0b", 3, err, sizeof(err)), -EINVAL);
    assert_int_equal(af__field_check(AF__F_GPU_NAME, NULL, "a\tb", 3, err, sizeof(err)), -EINVAL);
}

static void test_input_check_counts_tokens_like_serving(void **state)
{
    (void)state;
    char err[160];
    /* 4 bytes a token, rounded up: 32768 bytes are 8192 tokens, one more byte is 8193. */
    assert_int_equal(af__input_check(32768, 8192, err, sizeof(err)), 0);
    assert_int_equal(af_serving_input_tokens(32769), 8193);
    assert_int_equal(af__input_check(32769, 8192, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "\"input\" is 8193 tokens"));
    assert_non_null(strstr(err, "max_input_tokens = 8192"));
}

/* ---------------------------------------------------------------------------------------- */
/* Handlers.                                                                                 */

static void test_cost_route_refuses_long_operation(void **state)
{
    (void)state;
    af_cost_tracker *t;
    assert_int_equal(af_cost_tracker_new(NULL, &t), 0);
    af_server s;
    memset(&s, 0, sizeof(s));
    s.o.costs = t;
    af__resp rs;
    char code[64], msg[256];

    char *b = body_with("operation", 1 << 20, 'x', ",\"cost\":1");
    assert_int_equal(post(&s, "/api/v1/costs", b, &rs), 400);
    error_of(&rs, code, sizeof(code), msg, sizeof(msg));
    assert_string_equal(code, "limit_exceeded");
    assert_string_equal(msg, "\"operation\" is 1048576 bytes; the limit is 128 bytes");
    af__resp_free(&rs);
    free(b);

    b = body_with("model_id", 10, ' ', ",\"operation\":\"inference\",\"cost\":1");
    assert_int_equal(post(&s, "/api/v1/costs", b, &rs), 400);
    af__resp_free(&rs);
    free(b);

    af_cost_stats st;
    af_cost_stats_get(t, &st);
    assert_int_equal(st.recorded, 0);

    assert_int_equal(post(&s, "/api/v1/costs", "{\"operation\":\"inference\",\"cost\":1}", &rs),
                     201);
    af__resp_free(&rs);
    af_cost_stats_get(t, &st);
    assert_int_equal(st.recorded, 1);
    af_cost_tracker_free(t);
}

/* The longest string attribute of every exported span. */
static size_t longest_attr(af_test_env *env)
{
    af_span_copy *sp[64];
    size_t n = af_test_spans(env, sp, 64), longest = 0;
    for (size_t i = 0; i < n; i++) {
        const af_span_data *d = af_span_copy_data(sp[i]);
        for (uint32_t k = 0; k < d->n_attrs; k++)
            if (d->attrs[k].type == AF_VAL_STRING && d->attrs[k].v.s.len > longest)
                longest = d->attrs[k].v.s.len;
        for (uint32_t e = 0; e < d->n_events; e++)
            for (uint32_t k = 0; k < d->events[e].n_attrs; k++)
                if (d->events[e].attrs[k].type == AF_VAL_STRING &&
                    d->events[e].attrs[k].v.s.len > longest)
                    longest = d->events[e].attrs[k].v.s.len;
    }
    af_test_spans_free(sp, n);
    return longest;
}

static void test_refused_ids_leave_no_span_attribute(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_gpu_scheduler_opts so;
    af_gpu_scheduler_opts_init(&so);
    so.tracing.tracer = env.tracer;
    af_gpu_scheduler *sch;
    assert_int_equal(af_gpu_scheduler_new(&so, &sch), 0);
    af_server s;
    memset(&s, 0, sizeof(s));
    s.o.scheduler = sch;
    af__resp rs;
    char code[64], msg[256];

    char *b = body_with("id", 1 << 20, 'w', ",\"memory_required_mb\":10");
    assert_int_equal(post(&s, "/api/v1/workloads", b, &rs), 400);
    error_of(&rs, code, sizeof(code), msg, sizeof(msg));
    assert_string_equal(code, "limit_exceeded");
    assert_non_null(strstr(msg, "\"id\" is 1048576 bytes; the limit is 127 bytes"));
    af__resp_free(&rs);
    free(b);
    b = body_with("name", 1 << 20, 'g', ",\"id\":\"gpu-x\",\"memory_total_mb\":10");
    assert_int_equal(post(&s, "/api/v1/gpus", b, &rs), 400);
    af__resp_free(&rs);
    free(b);
    assert_int_equal(af_gpu_scheduler_list_workloads(sch, NULL, 0), 0);
    assert_int_equal(af_gpu_scheduler_list_gpus(sch, NULL, 0), 0);

    /* The scheduler itself refuses before it sets attributes, for callers that are not the
     * daemon's routes. */
    char *big = malloc(1 << 20);
    assert_non_null(big);
    memset(big, 'z', (1 << 20) - 1);
    big[(1 << 20) - 1] = '\0';
    af_workload_spec w = {.id = big, .name = big, .memory_required_mb = 10};
    assert_int_equal(af_gpu_scheduler_submit(sch, &w, NULL, 0), -EINVAL);
    af_gpu_spec g = {.id = big, .name = big, .memory_total_mb = 10};
    assert_int_equal(af_gpu_scheduler_register_gpu(sch, &g, NULL, 0), -EINVAL);
    af_gpu_spec g2 = {.id = "gpu-ok", .name = big, .memory_total_mb = 10};
    assert_int_equal(af_gpu_scheduler_register_gpu(sch, &g2, NULL, 0), -EINVAL);
    free(big);
    assert_true(longest_attr(&env) < 256);

    af_gpu_scheduler_free(sch);
    af_test_env_free(&env);
}

/* ---------------------------------------------------------------------------------------- */
/* Trace store.                                                                              */

static void test_trace_store_byte_bound(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_exporter *ex;
    af_trace_store *st;
    enum { MAX_BYTES = 256 * 1024 };
    assert_int_equal(af_trace_store_new(100000, MAX_BYTES, &ex, &st), 0);
    af_span_processor *proc;
    assert_int_equal(af_simple_processor_new(ex, &proc), 0);
    assert_int_equal(af_tracer_provider_add_processor(env.provider, proc), 0);
    assert_int_equal(af_trace_store_max_bytes(st), MAX_BYTES);

    /* 200 spans of about 8 KiB: the count bound (100000) never bites, the byte bound does. */
    char *v = malloc(8193);
    assert_non_null(v);
    memset(v, 'a', 8192);
    v[8192] = '\0';
    size_t one = 0;
    for (int i = 0; i < 200; i++) {
        af_span sp = af_span_start(env.tracer, "big", NULL);
        af_span_set_string(sp, "payload", v);
        af_span_end(sp);
        if (i == 0)
            one = af_trace_store_bytes(st);
        assert_true(af_trace_store_bytes(st) <= MAX_BYTES);
    }
    /* The accounting sees the attribute's bytes, not just a span header. */
    assert_true(one > 8192 && one < 8192 + 4096);
    size_t held = af_trace_store_span_count(st);
    assert_int_equal(held, MAX_BYTES / one);
    assert_true(af_trace_store_bytes(st) > MAX_BYTES - one);

    /* A span larger than the whole bound is not kept, and evicts nothing. */
    char *huge = malloc(MAX_BYTES + 1);
    assert_non_null(huge);
    memset(huge, 'h', MAX_BYTES);
    huge[MAX_BYTES] = '\0';
    af_span sp = af_span_start(env.tracer, "huge", NULL);
    af_span_set_string(sp, "payload", huge);
    af_span_end(sp);
    assert_int_equal(af_trace_store_span_count(st), held);
    free(huge);
    free(v);
    af_tracer_provider_free(env.provider);
    af_trace_store_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_is_complete),
        cmocka_unit_test(test_field_check_length),
        cmocka_unit_test(test_field_check_charset),
        cmocka_unit_test(test_input_check_counts_tokens_like_serving),
        cmocka_unit_test(test_cost_route_refuses_long_operation),
        cmocka_unit_test(test_refused_ids_leave_no_span_attribute),
        cmocka_unit_test(test_trace_store_byte_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
