/* The chat seam (af_serving_chat_*) over the simulated streaming engine and custom backends:
 * request checks, streamed and whole answers, cancel, deadline, a thousand concurrent
 * streams, the cache rules, GenAI spans, cost, retries, the circuit breaker and shutdown. */
#include "testutil.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentaflow/serving.h"
#include "util/buf.h"

#include "chat_collect.h"

static void nap(void)
{
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* Gateways.                                                                                 */

static af_serving *gateway_with(af_serving_opts *o, uint32_t token_us)
{
    af_serving *s = NULL;
    assert_int_equal(af_serving_new(o, &s), 0);
    af_model_info m = {.id = "m1",
                       .name = "Model One",
                       .input_usd_per_million = 2.0,
                       .output_usd_per_million = 8.0,
                       .owned_by = "acme"};
    assert_int_equal(af_serving_register_model(s, NULL, &m, NULL, 0), 0);
    af_sim_backend_opts so;
    af_sim_backend_opts_init(&so);
    so.base_latency_us = 0;
    so.per_token_latency_us = 0;
    so.stream_token_us = token_us;
    af_model_backend *b = NULL;
    assert_int_equal(af_sim_backend_new(&so, &b), 0);
    af_instance_opts io = {.id = "m1-0"};
    assert_int_equal(af_serving_add_instance(s, "m1", &io, b), 0);
    return s;
}

static af_serving *gateway(uint32_t token_us)
{
    af_serving_opts o;
    af_serving_opts_init(&o);
    return gateway_with(&o, token_us);
}

static af_chat_call *start(af_serving *s, af_chat_request *req, af_test_chat *c)
{
    af_chat_call *call = NULL;
    char err[128] = "";
    int rc = af_serving_chat_start(s, NULL, req, &af_test_chat_cbs, c, &call, err, sizeof(err));
    if (rc)
        fail_msg("chat_start: %d %s", rc, err);
    return call;
}

static af_chat_request chat_req(const af_chat_message *msg)
{
    af_chat_request req = {.model = "m1", .messages = msg, .n_messages = 1, .temperature = NAN};
    return req;
}

/* ---------------------------------------------------------------------------------------- */

static void test_chat_rejects_bad_requests(void **state)
{
    (void)state;
    af_serving *s = gateway(0);
    af_chat_message msg = {"user", "hi", AF_LEN_NUL};
    af_chat_request req = chat_req(&msg);
    af_test_chat c;
    af_test_chat_init(&c);
    af_chat_call *call = (af_chat_call *)1;
    char err[128];
    req.model = NULL;
    assert_int_equal(
        af_serving_chat_start(s, NULL, &req, &af_test_chat_cbs, &c, &call, err, sizeof(err)),
        -EINVAL);
    assert_null(call);
    assert_non_null(strstr(err, "model"));
    req.model = "nope";
    assert_int_equal(
        af_serving_chat_start(s, NULL, &req, &af_test_chat_cbs, &c, &call, err, sizeof(err)),
        AF_ENOTFOUND);
    assert_non_null(strstr(err, "nope"));
    req.model = "m1";
    req.n_messages = 0;
    assert_int_equal(
        af_serving_chat_start(s, NULL, &req, &af_test_chat_cbs, &c, &call, err, sizeof(err)),
        -EINVAL);
    assert_non_null(strstr(err, "messages"));
    req.n_messages = 1;
    req.temperature = 7;
    assert_int_equal(
        af_serving_chat_start(s, NULL, &req, &af_test_chat_cbs, &c, &call, err, sizeof(err)),
        -EINVAL);
    assert_non_null(strstr(err, "temperature"));
    req.temperature = NAN;
    req.stream = true;
    af_chat_callbacks no_delta = {NULL, af_test_chat_on_done};
    assert_int_equal(af_serving_chat_start(s, NULL, &req, &no_delta, &c, &call, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "on_delta"));
    assert_int_equal(c.done_calls, 0);
    af_serving_free(s);
    af_test_chat_clear(&c);
}

static void test_chat_whole_and_streamed(void **state)
{
    (void)state;
    af_serving *s = gateway(0);
    af_chat_message msg = {"user", "hello there", AF_LEN_NUL};
    af_chat_request req = chat_req(&msg);
    req.max_tokens = 8;
    af_test_chat c;
    af_test_chat_init(&c);
    af_chat_call_release(start(s, &req, &c));
    af_test_chat_wait(&c);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.deltas, 0); /* not streamed: the whole text comes in the result */
    assert_true(strlen(c.content) > 8);
    assert_int_equal(c.res.input_tokens, (int64_t)((strlen("user: hello there\n") + 3) / 4));
    assert_int_equal(c.res.output_tokens, 8);
    assert_string_equal(c.res.finish_reason, "length");
    assert_int_equal(strncmp(c.res.id, "chatcmpl-", 9), 0);
    assert_string_equal(c.res.instance_id, "m1-0");
    assert_string_equal(c.res.provider, "agentaflow.simulated");
    assert_false(c.res.cache_hit);
    assert_float_equal(c.res.cost_usd, c.res.input_tokens * 2e-6 + 8 * 8e-6, 1e-12);

    af_test_chat d;
    af_test_chat_init(&d);
    req.stream = true;
    req.max_tokens = 0; /* the model's default (256) is above the simulated count */
    req.operation = AF_CHAT_OP_TEXT_COMPLETION;
    req.prompt = "once upon a time";
    req.prompt_len = AF_LEN_NUL;
    af_chat_call_release(start(s, &req, &d));
    af_test_chat_wait(&d);
    assert_int_equal(d.rc, 0);
    assert_int_equal(d.deltas, d.res.output_tokens); /* one delta per simulated token */
    assert_true(d.deltas >= 16 && d.deltas < 64);
    assert_string_equal(d.res.finish_reason, "stop");
    assert_null(d.res.content);
    assert_int_equal(strncmp(d.res.id, "cmpl-", 5), 0);
    assert_true(d.res.time_to_first_token_ns <= d.res.duration_ns);

    af_serving_model_entry models[4];
    assert_int_equal(af_serving_models_list(s, models, 4), 1);
    assert_string_equal(models[0].id, "m1");
    assert_string_equal(models[0].owned_by, "acme");
    assert_true(models[0].created_s > 0);
    af_serving_free(s);
    af_test_chat_clear(&c);
    af_test_chat_clear(&d);
}

static void test_chat_cancel_and_deadline(void **state)
{
    (void)state;
    af_serving *s = gateway(50000); /* a token every 50 ms: the answer takes seconds */
    af_chat_message msg = {"user", "tell me a long story", AF_LEN_NUL};
    af_chat_request req = chat_req(&msg);
    req.stream = true;
    af_test_chat c;
    af_test_chat_init(&c);
    af_chat_call *call = start(s, &req, &c);
    while (af_test_chat_delta_count(&c) == 0)
        nap();
    af_serving_chat_cancel(call);
    af_serving_chat_cancel(call); /* idempotent */
    af_test_chat_wait(&c);
    assert_int_equal(c.rc, -ECANCELED);
    assert_string_equal(c.res.error_type, "cancelled");
    assert_string_equal(c.res.finish_reason, "cancelled");
    af_chat_call_release(call);

    /* Cancelled from inside one of its own deltas. */
    af_test_chat e;
    af_test_chat_init(&e);
    call = start(s, &req, &e);
    pthread_mutex_lock(&e.mu);
    e.cancel_on_first = call;
    pthread_mutex_unlock(&e.mu);
    af_test_chat_wait(&e);
    assert_int_equal(e.rc, -ECANCELED);
    af_chat_call_release(call);

    af_test_chat d;
    af_test_chat_init(&d);
    req.timeout_ms = 120;
    af_chat_call_release(start(s, &req, &d));
    af_test_chat_wait(&d);
    assert_int_equal(d.rc, AF_ETIMEDOUT);
    assert_string_equal(d.res.error_type, "timeout");
    assert_true(d.deltas >= 1 && d.deltas < 16);
    af_serving_stats st;
    af_serving_stats_get(s, &st);
    assert_int_equal(st.timeouts, 1);
    af_serving_free(s);
    af_test_chat_clear(&c);
    af_test_chat_clear(&d);
    af_test_chat_clear(&e);
}

static void test_chat_thousand_streams(void **state)
{
    (void)state;
    af_serving *s = gateway(2000);
    enum { N = 1000 };
    af_test_chat *cs = calloc(N, sizeof(*cs));
    af_chat_call **calls = calloc(N, sizeof(*calls));
    af_chat_message msg = {"user", "count", AF_LEN_NUL};
    af_chat_request req = chat_req(&msg);
    req.stream = true;
    req.max_tokens = 20;
    for (int i = 0; i < N; i++) {
        af_test_chat_init(&cs[i]);
        calls[i] = start(s, &req, &cs[i]);
    }
    af_instance_stats is[2];
    assert_int_equal(af_serving_instances(s, is, 2), 1);
    assert_true(is[0].load > 0); /* held concurrently, one engine thread for all */
    for (int i = 0; i < N; i++) {
        af_test_chat_wait(&cs[i]);
        assert_int_equal(cs[i].rc, 0);
        assert_int_equal(cs[i].deltas, 20);
        af_chat_call_release(calls[i]);
        af_test_chat_clear(&cs[i]);
    }
    af_serving_instances(s, is, 2);
    assert_int_equal(is[0].load, 0);
    assert_int_equal(is[0].served, N);
    free(cs);
    free(calls);
    af_serving_free(s);
}

static void test_chat_cache_rules(void **state)
{
    (void)state;
    af_serving *s = gateway(0);
    af_chat_message msg = {"user", "deterministic", AF_LEN_NUL};
    af_chat_request req = chat_req(&msg);
    req.temperature = 0;
    af_test_chat a, b, c, d;
    af_test_chat_init(&a);
    af_test_chat_init(&b);
    af_test_chat_init(&c);
    af_test_chat_init(&d);
    af_chat_call_release(start(s, &req, &a));
    af_test_chat_wait(&a);
    af_chat_call_release(start(s, &req, &b));
    af_test_chat_wait(&b);
    assert_false(a.res.cache_hit);
    assert_true(b.res.cache_hit);
    assert_string_equal(a.content, b.content);
    assert_float_equal(b.res.cost_usd, 0, 0);
    /* Same roles and bytes split differently across messages: another key. */
    af_chat_message two[2] = {{"user", "determ", AF_LEN_NUL}, {"user", "inistic", AF_LEN_NUL}};
    req.messages = two;
    req.n_messages = 2;
    af_chat_call_release(start(s, &req, &c));
    af_test_chat_wait(&c);
    assert_false(c.res.cache_hit);
    /* Never for temperature > 0 or a stream. */
    req.messages = &msg;
    req.n_messages = 1;
    req.temperature = 0.7;
    af_chat_call_release(start(s, &req, &d));
    af_test_chat_wait(&d);
    assert_false(d.res.cache_hit);
    af_test_chat e;
    af_test_chat_init(&e);
    req.temperature = 0;
    req.stream = true;
    af_chat_call_release(start(s, &req, &e));
    af_test_chat_wait(&e);
    assert_false(e.res.cache_hit);
    assert_true(e.deltas > 0);
    af_serving_free(s);
    af_test_chat_clear(&a);
    af_test_chat_clear(&b);
    af_test_chat_clear(&c);
    af_test_chat_clear(&d);
    af_test_chat_clear(&e);
}

static const af_attr *attr(const af_span_data *d, const char *key)
{
    const af_attr *a = af_test_find_attr(d->attrs, d->n_attrs, key);
    if (!a)
        fail_msg("span %s lacks %s", d->name, key);
    return a;
}

static void test_chat_spans_and_cost(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_cost_tracker *costs = NULL;
    assert_int_equal(af_cost_tracker_new(NULL, &costs), 0);
    af_serving_opts o;
    af_serving_opts_init(&o);
    o.tracer = env.tracer;
    o.costs = costs;
    af_serving *s = gateway_with(&o, 0);
    af_chat_message msg = {"user", "hello spans", AF_LEN_NUL};
    af_chat_request req = chat_req(&msg);
    req.stream = true;
    req.max_tokens = 5;
    req.temperature = 0.5;
    req.id = "chatcmpl-from-the-front-door";
    af_test_chat c;
    af_test_chat_init(&c);
    af_chat_call_release(start(s, &req, &c));
    af_test_chat_wait(&c);
    assert_int_equal(c.rc, 0);
    assert_string_equal(c.res.id, "chatcmpl-from-the-front-door");

    af_span_copy *spans[16];
    size_t n = af_test_spans(&env, spans, 16);
    const af_span_data *inf = af_test_find_span(spans, n, "model_serving.inference");
    const af_span_data *cl = af_test_find_span(spans, n, "chat m1");
    assert_non_null(inf);
    assert_non_null(cl);
    assert_int_equal(cl->kind, AF_SPAN_KIND_CLIENT);
    assert_memory_equal(cl->parent_span_id, inf->span_id, 8);
    assert_memory_equal(c.res.client_span.span_id, cl->span_id, 8);
    assert_string_equal(attr(cl, "gen_ai.operation.name")->v.s.ptr, "chat");
    assert_string_equal(attr(cl, "gen_ai.provider.name")->v.s.ptr, "agentaflow.simulated");
    assert_string_equal(attr(cl, "gen_ai.request.model")->v.s.ptr, "m1");
    assert_string_equal(attr(cl, "gen_ai.response.model")->v.s.ptr, "m1");
    assert_int_equal(attr(cl, "gen_ai.request.max_tokens")->v.i, 5);
    assert_float_equal(attr(cl, "gen_ai.request.temperature")->v.d, 0.5, 0);
    assert_int_equal(attr(cl, "gen_ai.usage.output_tokens")->v.i, 5);
    assert_int_equal(attr(cl, "gen_ai.usage.input_tokens")->v.i, c.res.input_tokens);
    const af_attr *fr = attr(cl, "gen_ai.response.finish_reasons");
    assert_int_equal(fr->type, AF_VAL_STRING_ARRAY);
    assert_int_equal(fr->v.arr.count, 1);
    assert_string_equal(((const af_str *)fr->v.arr.items)[0].ptr, "length");
    assert_string_equal(attr(cl, "gen_ai.response.id")->v.s.ptr, c.res.id);
    assert_true(attr(cl, "gen_ai.response.time_to_first_chunk")->v.d >= 0);
    assert_string_equal(cl->events[0].name, "gen_ai.response.first_chunk");
    assert_null(af_test_find_attr(cl->attrs, cl->n_attrs, "gen_ai.input.messages"));
    assert_null(af_test_find_attr(cl->attrs, cl->n_attrs, "agentaflow.cost.usd"));
    assert_float_equal(attr(inf, "agentaflow.cost.usd")->v.d, c.res.cost_usd, 1e-15);
    assert_true(c.res.cost_usd > 0);
    assert_true(attr(inf, "gen_ai.response.time_to_first_chunk")->v.d >= 0);
    af_test_spans_free(spans, n);

    af_cost_summary cs;
    assert_int_equal(af_cost_summary_get(costs, NULL, 0, UINT64_MAX, &cs), 0);
    assert_int_equal(cs.entry_count, 1);
    assert_float_equal(cs.total_cost, c.res.cost_usd, 1e-15);
    assert_string_equal(cs.by_model[0].name, "m1");
    af_cost_summary_clear(&cs);
    af_serving_free(s);
    af_cost_tracker_free(costs);
    af_test_env_free(&env);
    af_test_chat_clear(&c);
}

static void test_chat_capture_content(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_serving_opts o;
    af_serving_opts_init(&o);
    o.tracer = env.tracer;
    o.capture_content = true;
    af_serving *s = gateway_with(&o, 0);
    af_chat_message msg = {"user", "say \"hi\"", AF_LEN_NUL};
    af_chat_request req = chat_req(&msg);
    req.max_tokens = 2;
    af_test_chat c;
    af_test_chat_init(&c);
    af_chat_call_release(start(s, &req, &c));
    af_test_chat_wait(&c);
    af_span_copy *spans[16];
    size_t n = af_test_spans(&env, spans, 16);
    const af_span_data *cl = af_test_find_span(spans, n, "chat m1");
    assert_string_equal(attr(cl, "gen_ai.input.messages")->v.s.ptr,
                        "[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"say "
                        "\\\"hi\\\"\"}]}]");
    char want[600];
    snprintf(want, sizeof(want),
             "[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":\"%s\"}],"
             "\"finish_reason\":\"length\"}]",
             c.content);
    assert_string_equal(attr(cl, "gen_ai.output.messages")->v.s.ptr, want);
    af_test_spans_free(spans, n);
    af_serving_free(s);
    af_test_env_free(&env);
    af_test_chat_clear(&c);
}

/* A custom blocking backend that fails as told. */
static atomic_int down_calls;
static int down_infer(void *self, const af_backend_request *req, af_backend_result *res)
{
    (void)req;
    atomic_fetch_add(&down_calls, 1);
    snprintf(res->error, sizeof(res->error), "connection refused");
    return *(int *)self;
}
static const af_model_backend_ops down_ops = {"flaky", down_infer, NULL};

static void test_chat_retry_and_breaker(void **state)
{
    (void)state;
    af_serving_opts o;
    af_serving_opts_init(&o);
    o.breaker_failures = 2;
    o.breaker_cooldown_ms = 60000;
    af_serving *s = gateway_with(&o, 0);
    static int refused = -EHOSTDOWN;
    af_model_backend *b = NULL;
    assert_int_equal(af_model_backend_new(&down_ops, &refused, &b), 0);
    af_instance_opts io = {.id = "m1-down"};
    assert_int_equal(af_serving_add_instance(s, "m1", &io, b), 0);
    af_chat_message msg = {"user", "retry me", AF_LEN_NUL};
    af_chat_request req = chat_req(&msg);
    /* Ties rotate, so within a few calls one goes to the refusing instance first and is
     * retried on the simulated one: every call succeeds. */
    for (int i = 0; i < 4; i++) {
        af_test_chat c;
        af_test_chat_init(&c);
        af_chat_call_release(start(s, &req, &c));
        af_test_chat_wait(&c);
        assert_int_equal(c.rc, 0);
        assert_string_equal(c.res.instance_id, "m1-0");
        af_test_chat_clear(&c);
    }
    assert_int_equal(atomic_load(&down_calls), 2); /* then its breaker opened */
    af_instance_stats is[2];
    assert_int_equal(af_serving_instances(s, is, 2), 2);
    assert_string_equal(is[1].id, "m1-down");
    assert_string_equal(is[1].breaker, "open");
    assert_int_equal(is[1].consecutive_failures, 2);
    assert_string_equal(is[0].breaker, "closed");
    char *json = NULL;
    assert_int_equal(af_serving_metrics_json(s, &json), 0);
    assert_non_null(strstr(json, "\"breaker\":\"open\",\"consecutive_failures\":2"));
    assert_non_null(strstr(json, "\"owned_by\":\"acme\""));
    free(json);

    /* With the simulated instance down, nothing is left: backend_unavailable. */
    assert_int_equal(af_serving_set_instance_available(s, "m1-0", false), 0);
    af_test_chat c;
    af_test_chat_init(&c);
    af_chat_call_release(start(s, &req, &c));
    af_test_chat_wait(&c);
    assert_int_equal(c.rc, -EHOSTDOWN);
    assert_string_equal(c.res.error_type, "backend_unavailable");
    af_test_chat_clear(&c);
    af_serving_free(s);
}

static void test_chat_shutdown_ends_calls(void **state)
{
    (void)state;
    af_serving *s = gateway(100000);
    af_chat_message msg = {"user", "slow", AF_LEN_NUL};
    af_chat_request req = chat_req(&msg);
    req.stream = true;
    af_test_chat c;
    af_test_chat_init(&c);
    af_chat_call *call = start(s, &req, &c);
    af_serving_free(s);
    assert_int_equal(c.done_calls, 1);
    assert_int_equal(c.rc, AF_ESHUTDOWN);
    assert_string_equal(c.res.error_type, "shutdown");
    af_chat_call_release(call);
    af_test_chat_clear(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_rejects_bad_requests),
        cmocka_unit_test(test_chat_whole_and_streamed),
        cmocka_unit_test(test_chat_cancel_and_deadline),
        cmocka_unit_test(test_chat_thousand_streams),
        cmocka_unit_test(test_chat_cache_rules),
        cmocka_unit_test(test_chat_spans_and_cost),
        cmocka_unit_test(test_chat_capture_content),
        cmocka_unit_test(test_chat_retry_and_breaker),
        cmocka_unit_test(test_chat_shutdown_ends_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
