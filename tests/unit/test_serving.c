/* Model serving with the simulated backend and a gated test backend: registry errors, cache,
 * batcher, routing, overload, timeouts, backend down, cost hook and the model_serving spans. */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentaflow/serving.h"
#include "serving/serving_int.h"

/* ---------------------------------------------------------------------------------------- */
/* Helpers.                                                                                  */

static af_serving *gateway(const af_serving_opts *o)
{
    af_serving *s = NULL;
    assert_int_equal(af_serving_new(o, &s), 0);
    return s;
}

static void add_model(af_serving *s, const char *id)
{
    af_model_info m = {.id = id, .name = id, .version = "1", .framework = "PyTorch"};
    assert_int_equal(af_serving_register_model(s, NULL, &m, NULL, 0), 0);
}

static void add_sim(af_serving *s, const char *model, const char *inst, uint32_t base_us)
{
    af_sim_backend_opts so = {.base_latency_us = base_us, .per_token_latency_us = 0};
    af_model_backend *b = NULL;
    assert_int_equal(af_sim_backend_new(&so, &b), 0);
    af_instance_opts io = {.id = inst};
    assert_int_equal(af_serving_add_instance(s, model, &io, b), 0);
}

static int infer(af_serving *s, const char *model, const char *input, af_inference_response *r)
{
    af_inference_request q = {.model_id = model, .input = input, .input_len = AF_LEN_NUL};
    return af_serving_infer(s, NULL, &q, r);
}

/* Polls (with a short yield, never a fixed sleep) until pred holds or 10 s pass. */
static bool poll_until(bool (*pred)(af_serving *, uint32_t), af_serving *s, uint32_t arg)
{
    uint64_t end = af_monotonic_ns() + UINT64_C(10000000000);
    while (!pred(s, arg)) {
        if (af_monotonic_ns() > end)
            return false;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return true;
}

static bool pending_is(af_serving *s, uint32_t n)
{
    af_serving_stats st;
    af_serving_stats_get(s, &st);
    return st.pending_requests == n;
}

static bool in_flight_is(af_serving *s, uint32_t n)
{
    af_serving_stats st;
    af_serving_stats_get(s, &st);
    return st.in_flight == n;
}

/* A backend that blocks until the test opens its gate (or the request's deadline). */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    int calls;
} gate;

static int gate_infer(void *self, const af_backend_request *req, af_backend_result *res)
{
    gate *g = self;
    pthread_mutex_lock(&g->mu);
    g->calls++;
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    res->output = strdup("gated");
    res->output_len = 5;
    res->prompt_tokens = (int64_t)req->input_len;
    res->completion_tokens = 1;
    return 0;
}

static const af_model_backend_ops gate_ops = {"gate", gate_infer, NULL};

static void gate_init(gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = false;
    g->calls = 0;
}

static void gate_open(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void gate_destroy(gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

typedef struct call {
    af_serving *s;
    const char *model;
    char input[32];
    uint32_t timeout_ms;
    int rc;
    af_inference_response resp;
    pthread_t th;
} call;

static void *call_main(void *arg)
{
    call *c = arg;
    af_inference_request q = {.model_id = c->model,
                              .input = c->input,
                              .input_len = AF_LEN_NUL,
                              .timeout_ms = c->timeout_ms};
    c->rc = af_serving_infer(c->s, NULL, &q, &c->resp);
    return NULL;
}

static void call_start(call *c, af_serving *s, const char *model, int i)
{
    memset(c, 0, sizeof(*c));
    c->s = s;
    c->model = model;
    snprintf(c->input, sizeof(c->input), "input-%d", i);
    assert_int_equal(pthread_create(&c->th, NULL, call_main, c), 0);
}

static void call_join(call *c)
{
    pthread_join(c->th, NULL);
}

/* ---------------------------------------------------------------------------------------- */

static void test_registry_errors(void **state)
{
    (void)state;
    af_serving *s = gateway(NULL);
    char err[64];
    af_model_info m = {.id = "", .name = "x"};
    assert_int_equal(af_serving_register_model(s, NULL, &m, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "model ID cannot be empty");
    m.id = "m";
    m.name = NULL;
    assert_int_equal(af_serving_register_model(s, NULL, &m, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "model name cannot be empty");
    assert_int_equal(af_serving_register_model(s, NULL, NULL, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "model cannot be NULL");
    add_model(s, "m");
    m.name = "again";
    assert_int_equal(af_serving_register_model(s, NULL, &m, err, sizeof(err)), -EEXIST);

    af_inference_response r;
    assert_int_equal(infer(s, "nope", "hi", &r), AF_ENOTFOUND);
    assert_string_equal(r.error, "unknown model nope");
    af_inference_response_clear(&r);
    assert_int_equal(infer(s, "m", "", &r), -EINVAL);
    assert_string_equal(r.error, "request input cannot be empty");
    /* A model without instances answers "no instances" as backend down. */
    assert_int_equal(infer(s, "m", "hi", &r), -EHOSTDOWN);
    assert_non_null(strstr(r.error, "no instances available for model m"));
    af_inference_response_clear(&r);

    af_model_backend *b = NULL;
    assert_int_equal(af_sim_backend_new(NULL, &b), 0);
    af_instance_opts io = {.id = "i"};
    assert_int_equal(af_serving_add_instance(s, "ghost", &io, b), AF_ENOTFOUND);
    assert_int_equal(af_serving_set_instance_available(s, "i", false), AF_ENOTFOUND);
    af_serving_opts o;
    af_serving_opts_init(&o);
    o.min_batch_size = 40;
    af_serving *bad = NULL;
    assert_int_equal(af_serving_new(&o, &bad), -EINVAL);
    af_serving_free(s);
}

/* A long input sleeps at most max_latency_ms (1 MiB at 50 us a token would be 13 s), and the
 * sleep ends at the request's deadline. */
static void test_simulated_latency_is_capped(void **state)
{
    (void)state;
    af_sim_backend_opts so;
    af_sim_backend_opts_init(&so);
    assert_int_equal(so.max_latency_ms, 2000);
    so.max_latency_ms = 100;
    af_model_backend *b = NULL;
    assert_int_equal(af_sim_backend_new(&so, &b), 0);
    size_t len = 1 << 20;
    char *in = malloc(len);
    assert_non_null(in);
    memset(in, 'x', len);
    af_backend_request rq = {.model_name = "m", .input = in, .input_len = len};
    af_backend_result res;
    memset(&res, 0, sizeof(res));
    uint64_t t0 = af_monotonic_ns();
    assert_int_equal(af_model_backend_infer(b, &rq, &res), 0);
    uint64_t ms = (af_monotonic_ns() - t0) / 1000000;
    assert_true(ms >= 100 && ms < 2000);
    assert_int_equal(res.prompt_tokens, af_serving_input_tokens(len));
    free(res.output);

    memset(&res, 0, sizeof(res));
    rq.deadline_ns = af_monotonic_ns() + 20000000; /* 20 ms */
    t0 = af_monotonic_ns();
    assert_int_equal(af_model_backend_infer(b, &rq, &res), AF_ETIMEDOUT);
    assert_true((af_monotonic_ns() - t0) / 1000000 < 100);
    free(res.output);
    free(in);
    af_model_backend_free(b);
}

static void test_simulated_deterministic(void **state)
{
    (void)state;
    af_serving_opts o;
    af_serving_opts_init(&o);
    o.cache_ttl_ms = 0;
    af_serving *s = gateway(&o);
    add_model(s, "gpt");
    add_sim(s, "gpt", "sim-0", 0);
    af_inference_response a, b;
    assert_int_equal(infer(s, "gpt", "What is AI?", &a), 0);
    assert_int_equal(infer(s, "gpt", "What is AI?", &b), 0);
    assert_false(b.cache_hit);
    assert_string_equal(a.output, b.output);
    assert_non_null(strstr(a.output, "[simulated gpt]"));
    assert_int_equal(a.prompt_tokens, 3); /* ceil(11 / 4) */
    assert_int_equal(a.completion_tokens, b.completion_tokens);
    assert_true(a.completion_tokens >= 16 && a.completion_tokens < 64);
    assert_int_equal(a.batch_size, 1);
    assert_string_equal(a.instance_id, "sim-0");
    assert_string_equal(a.request_id, "req-1");
    af_inference_response_clear(&a);
    af_inference_response_free(&b); /* the released ABI's name for _clear */

    char *json = NULL;
    assert_int_equal(af_serving_metrics_json(s, &json), 0);
    assert_non_null(strstr(json, "\"backend\":\"simulated\",\"simulated\":true"));
    assert_non_null(strstr(json, "\"routing_strategy\":\"round_robin\""));
    assert_non_null(strstr(json, "\"max_wait_time_ms\":100"));
    assert_non_null(strstr(json, "\"enabled\":false"));
    free(json);
    af_serving_free(s);
}

static bool hit(af_serving *s, const char *model, const char *input)
{
    af_inference_response r;
    assert_int_equal(infer(s, model, input, &r), 0);
    bool h = r.cache_hit;
    af_inference_response_clear(&r);
    return h;
}

static void test_cache(void **state)
{
    (void)state;
    af_serving_opts o;
    af_serving_opts_init(&o);
    o.cache_ttl_ms = 200;
    af_serving *s = gateway(&o);
    add_model(s, "ab");
    add_model(s, "a");
    add_sim(s, "ab", "i-ab", 0);
    add_sim(s, "a", "i-a", 0);

    af_inference_request q = {.id = "req-1", .model_id = "ab", .input = "c", .input_len = 1};
    af_inference_response r1, r2, r3;
    assert_int_equal(af_serving_infer(s, NULL, &q, &r1), 0);
    assert_false(r1.cache_hit);
    q.id = "req-2";
    assert_int_equal(af_serving_infer(s, NULL, &q, &r2), 0);
    assert_true(r2.cache_hit);
    /* A hit is the new request's answer, a private copy. */
    assert_string_equal(r2.request_id, "req-2");
    assert_ptr_not_equal(r1.output, r2.output);
    assert_string_equal(r1.output, r2.output);
    assert_int_equal(r2.completion_tokens, r1.completion_tokens);
    assert_int_equal(r2.batch_size, 0);
    r2.output[0] = 'X';
    q.id = "req-3";
    assert_int_equal(af_serving_infer(s, NULL, &q, &r3), 0);
    assert_true(r3.cache_hit);
    assert_string_equal(r3.output, r1.output);
    af_inference_response_clear(&r1);
    af_inference_response_clear(&r2);
    af_inference_response_clear(&r3);

    /* ("ab","c") and ("a","bc") feed different bytes to the key. */
    assert_false(hit(s, "a", "bc"));
    assert_true(hit(s, "a", "bc"));
    assert_true(af__serving_key_hash("ab", 2, "c", 1, 64) !=
                af__serving_key_hash("a", 1, "bc", 2, 64));
    /* max_tokens is part of the key. */
    af_inference_request q2 = {.model_id = "a", .input = "bc", .input_len = 2, .max_tokens = 5};
    assert_int_equal(af_serving_infer(s, NULL, &q2, &r1), 0);
    assert_false(r1.cache_hit);
    assert_true(r1.completion_tokens <= 5);
    af_inference_response_clear(&r1);

    /* TTL: the entry expires (polled: each probe while still fresh is a hit). */
    uint64_t end = af_monotonic_ns() + UINT64_C(10000000000);
    while (hit(s, "a", "bc"))
        assert_true(af_monotonic_ns() < end);
    af_serving_stats st;
    af_serving_stats_get(s, &st);
    assert_true(st.cache_expired >= 1);
    assert_true(st.cache_hits >= 3);
    af_serving_free(s);

    /* TTL 0 = cache off. */
    o.cache_ttl_ms = 0;
    s = gateway(&o);
    add_model(s, "m");
    add_sim(s, "m", "i", 0);
    assert_false(hit(s, "m", "same"));
    assert_false(hit(s, "m", "same"));
    af_serving_stats_get(s, &st);
    assert_int_equal(st.cache_entries, 0);
    assert_int_equal(af_serving_clean_expired_cache(s), 0);
    af_serving_free(s);
}

static void test_batch_max_size(void **state)
{
    (void)state;
    af_serving_opts o;
    af_serving_opts_init(&o);
    o.max_batch_size = 4;
    o.min_batch_size = 4;
    o.max_wait_time_ms = 60000;
    o.cache_ttl_ms = 0;
    af_serving *s = gateway(&o);
    add_model(s, "m");
    add_sim(s, "m", "i", 0);
    call c[8];
    for (int i = 0; i < 8; i++)
        call_start(&c[i], s, "m", i);
    for (int i = 0; i < 8; i++) {
        call_join(&c[i]);
        assert_int_equal(c[i].rc, 0);
        assert_int_equal(c[i].resp.batch_size, 4);
        af_inference_response_clear(&c[i].resp);
    }
    af_serving_stats st;
    af_serving_stats_get(s, &st);
    assert_int_equal(st.batches, 2);
    af_serving_free(s);
}

static void test_batch_min_size_and_wait(void **state)
{
    (void)state;
    af_serving_opts o;
    af_serving_opts_init(&o);
    o.max_batch_size = 8;
    o.min_batch_size = 3;
    o.max_wait_time_ms = 60000;
    o.cache_ttl_ms = 0;
    af_serving *s = gateway(&o);
    add_model(s, "m");
    add_sim(s, "m", "i", 0);
    call c[3];
    call_start(&c[0], s, "m", 0);
    call_start(&c[1], s, "m", 1);
    assert_true(poll_until(pending_is, s, 2));
    /* Two are below min_batch_size and far from max_wait: they stay queued. */
    af_serving_stats st;
    af_serving_stats_get(s, &st);
    assert_int_equal(st.batches, 0);
    call_start(&c[2], s, "m", 2);
    for (int i = 0; i < 3; i++) {
        call_join(&c[i]);
        assert_int_equal(c[i].rc, 0);
        assert_int_equal(c[i].resp.batch_size, 3);
        af_inference_response_clear(&c[i].resp);
    }
    af_serving_free(s);

    /* max_wait_time releases a batch below min_batch_size. */
    o.max_wait_time_ms = 50;
    s = gateway(&o);
    add_model(s, "m");
    add_sim(s, "m", "i", 0);
    af_inference_response r;
    assert_int_equal(infer(s, "m", "alone", &r), 0);
    assert_int_equal(r.batch_size, 1);
    assert_true(r.latency_ns >= UINT64_C(50000000));
    af_inference_response_clear(&r);
    af_serving_free(s);
}

static void test_round_robin_rotates(void **state)
{
    (void)state;
    af_serving_opts o;
    af_serving_opts_init(&o);
    o.cache_ttl_ms = 0;
    af_serving *s = gateway(&o);
    add_model(s, "m");
    add_sim(s, "m", "a", 0);
    add_sim(s, "m", "b", 0);
    add_sim(s, "m", "c", 0);
    const char *want[] = {"a", "b", "c", "a", "b", "c"};
    for (int i = 0; i < 6; i++) {
        af_inference_response r;
        char in[16];
        snprintf(in, sizeof(in), "q%d", i);
        assert_int_equal(infer(s, "m", in, &r), 0);
        assert_string_equal(r.instance_id, want[i]);
        af_inference_response_clear(&r);
    }
    /* A down instance is skipped. */
    assert_int_equal(af_serving_set_instance_available(s, "b", false), 0);
    for (int i = 0; i < 4; i++) {
        af_inference_response r;
        assert_int_equal(infer(s, "m", "x", &r), 0);
        assert_string_not_equal(r.instance_id, "b");
        af_inference_response_clear(&r);
    }
    af_instance_stats is[4];
    assert_int_equal(af_serving_instances(s, is, 4), 3);
    assert_int_equal(is[1].served, 2);
    assert_false(is[1].available);
    assert_string_equal(is[0].kind, "simulated");
    /* Every instance down: backend down. */
    af_serving_set_instance_available(s, "a", false);
    af_serving_set_instance_available(s, "c", false);
    af_inference_response r;
    assert_int_equal(infer(s, "m", "x", &r), -EHOSTDOWN);
    assert_non_null(strstr(r.error, "backend down"));
    af_inference_response_clear(&r);
    af_serving_free(s);
}

static void test_least_latency(void **state)
{
    (void)state;
    af_serving_opts o;
    af_serving_opts_init(&o);
    o.cache_ttl_ms = 0;
    o.routing = AF_ROUTE_LEAST_LATENCY;
    af_serving *s = gateway(&o);
    add_model(s, "m");
    add_sim(s, "m", "slow", 20000);
    add_sim(s, "m", "fast", 0);
    /* Untried instances are measured first, then the fast one wins. */
    const char *want[] = {"slow", "fast", "fast", "fast", "fast"};
    for (int i = 0; i < 5; i++) {
        af_inference_response r;
        char in[16];
        snprintf(in, sizeof(in), "q%d", i);
        assert_int_equal(infer(s, "m", in, &r), 0);
        assert_string_equal(r.instance_id, want[i]);
        af_inference_response_clear(&r);
    }
    af_instance_stats is[2];
    af_serving_instances(s, is, 2);
    assert_true(is[0].avg_latency_ms >= 20.0);
    assert_true(is[1].avg_latency_ms < is[0].avg_latency_ms);
    af_serving_free(s);
}

static void test_router_decisions(void **state)
{
    (void)state;
    af__route_inst in[3] = {{.available = true}, {.available = true}, {.available = true}};
    size_t cur = 0;
    /* least_load: fewest in flight, first on ties. */
    assert_int_equal(af__route_pick(AF_ROUTE_LEAST_LOAD, &cur, in, 3, 1), 0);
    in[0].load++;
    assert_int_equal(af__route_pick(AF_ROUTE_LEAST_LOAD, &cur, in, 3, 1), 1);
    in[1].load++;
    assert_int_equal(af__route_pick(AF_ROUTE_LEAST_LOAD, &cur, in, 3, 1), 2);
    in[2].load += 5;
    in[1].load--; /* instance 1 finished */
    assert_int_equal(af__route_pick(AF_ROUTE_LEAST_LOAD, &cur, in, 3, 1), 1);
    /* max_load: full instances are not eligible; all full = overloaded. */
    in[0] = (af__route_inst){.available = true, .load = 2, .max_load = 2};
    in[1] = (af__route_inst){.available = true, .load = 1, .max_load = 2};
    in[2] = (af__route_inst){.available = false};
    assert_int_equal(af__route_pick(AF_ROUTE_ROUND_ROBIN, &cur, in, 3, 1), 1);
    assert_int_equal(af__route_pick(AF_ROUTE_ROUND_ROBIN, &cur, in, 3, 2), AF_EFULL);
    in[0].available = in[1].available = false;
    assert_int_equal(af__route_pick(AF_ROUTE_LEAST_LOAD, &cur, in, 3, 1), -EHOSTDOWN);
    assert_int_equal(af__route_pick(AF_ROUTE_LEAST_LOAD, &cur, in, 0, 1), -EHOSTDOWN);
    /* least_latency: moving average. */
    af__route_inst l[2] = {{.available = true}, {.available = true}};
    af__route_observe(&l[0], 10);
    af__route_observe(&l[1], 50);
    assert_int_equal(af__route_pick(AF_ROUTE_LEAST_LATENCY, &cur, l, 2, 1), 0);
    af__route_observe(&l[0], 210); /* 0.8 * 10 + 0.2 * 210 = 50 */
    assert_float_equal(l[0].avg_latency_ms, 50.0, 1e-9);
    af__route_observe(&l[0], 60);
    assert_int_equal(af__route_pick(AF_ROUTE_LEAST_LATENCY, &cur, l, 2, 1), 1);
    af_routing_strategy rs;
    assert_int_equal(af_routing_strategy_parse("least_load", &rs), 0);
    assert_int_equal(rs, AF_ROUTE_LEAST_LOAD);
    assert_int_equal(af_routing_strategy_parse("random", &rs), -EINVAL);
}

static void test_overload_and_queue_timeout(void **state)
{
    (void)state;
    gate g;
    gate_init(&g);
    af_serving_opts o;
    af_serving_opts_init(&o);
    o.cache_ttl_ms = 0;
    o.max_queue = 2;
    o.max_batch_size = 1;
    af_serving *s = gateway(&o);
    add_model(s, "m");
    af_model_backend *b = NULL;
    assert_int_equal(af_model_backend_new(&gate_ops, &g, &b), 0);
    af_instance_opts io = {.id = "gated"};
    assert_int_equal(af_serving_add_instance(s, "m", &io, b), 0);

    call c[3];
    call_start(&c[0], s, "m", 0);
    assert_true(poll_until(in_flight_is, s, 1)); /* the batcher is stuck in the gate */
    call_start(&c[1], s, "m", 1);
    call_start(&c[2], s, "m", 2);
    assert_true(poll_until(pending_is, s, 2));
    /* Queue full: answered at once, nothing grows. */
    af_inference_response r;
    assert_int_equal(infer(s, "m", "one too many", &r), AF_EFULL);
    assert_non_null(strstr(r.error, "overloaded"));
    af_inference_response_clear(&r);
    /* A queued request past its deadline times out and leaves the queue. */
    af_serving_stats st;
    gate_open(&g);
    for (int i = 0; i < 3; i++) {
        call_join(&c[i]);
        assert_int_equal(c[i].rc, 0);
        assert_string_equal(c[i].resp.output, "gated");
        af_inference_response_clear(&c[i].resp);
    }
    af_serving_stats_get(s, &st);
    assert_int_equal(st.overloaded, 1);
    assert_int_equal(st.pending_requests, 0);
    af_serving_free(s);

    /* Timeout while queued behind a stuck backend. */
    gate_destroy(&g);
    gate_init(&g);
    s = gateway(&o);
    add_model(s, "m");
    assert_int_equal(af_model_backend_new(&gate_ops, &g, &b), 0);
    assert_int_equal(af_serving_add_instance(s, "m", &io, b), 0);
    call_start(&c[0], s, "m", 0);
    assert_true(poll_until(in_flight_is, s, 1));
    af_inference_request q = {.model_id = "m", .input = "hurry", .input_len = 5, .timeout_ms = 30};
    assert_int_equal(af_serving_infer(s, NULL, &q, &r), AF_ETIMEDOUT);
    assert_string_equal(r.error, "timeout after 30 ms");
    af_inference_response_clear(&r);
    af_serving_stats_get(s, &st);
    assert_int_equal(st.pending_requests, 0);
    assert_int_equal(st.timeouts, 1);
    gate_open(&g);
    call_join(&c[0]);
    assert_int_equal(c[0].rc, 0);
    af_inference_response_clear(&c[0].resp);
    af_serving_free(s);
    gate_destroy(&g);
}

static void test_backend_timeout(void **state)
{
    (void)state;
    af_serving_opts o;
    af_serving_opts_init(&o);
    af_serving *s = gateway(&o);
    add_model(s, "m");
    add_sim(s, "m", "slow", 5000000); /* 5 s */
    af_inference_request q = {.model_id = "m", .input = "x", .input_len = 1, .timeout_ms = 50};
    af_inference_response r;
    uint64_t t0 = af_monotonic_ns();
    assert_int_equal(af_serving_infer(s, NULL, &q, &r), AF_ETIMEDOUT);
    assert_true(af_monotonic_ns() - t0 < UINT64_C(4000000000));
    assert_non_null(strstr(r.error, "timeout"));
    af_inference_response_clear(&r);
    af_serving_free(s);
}

static void test_cost_hook(void **state)
{
    (void)state;
    af_cost_tracker *costs = NULL;
    assert_int_equal(af_cost_tracker_new(NULL, &costs), 0);
    af_serving_opts o;
    af_serving_opts_init(&o);
    o.costs = costs;
    af_serving *s = gateway(&o);
    af_model_info m = {.id = "m", .name = "M", .price_per_1k_tokens = 2.0};
    assert_int_equal(af_serving_register_model(s, NULL, &m, NULL, 0), 0);
    add_sim(s, "m", "i", 0);
    double sum = 0;
    int64_t tokens = 0;
    const char *inputs[] = {"alpha", "beta", "alpha"};
    for (int i = 0; i < 3; i++) {
        af_inference_response r;
        assert_int_equal(infer(s, "m", inputs[i], &r), 0);
        if (!r.cache_hit) {
            /* A variable, not the expression: cmocka's macro casts its argument unparenthesised,
             * so (float) would bind to the 2.0 alone. */
            double want = 2.0 * (double)(r.prompt_tokens + r.completion_tokens) / 1000;
            assert_float_equal(r.cost, want, 1e-12);
            tokens += r.prompt_tokens + r.completion_tokens;
        } else {
            assert_float_equal(r.cost, 0, 0);
        }
        sum += r.cost;
        af_inference_response_clear(&r);
    }
    af_cost_summary cs;
    assert_int_equal(af_cost_summary_get(costs, NULL, 0, 0, &cs), 0);
    assert_int_equal(cs.entry_count, 2); /* the hit cost nothing */
    assert_float_equal(cs.total_cost, sum, 1e-12);
    assert_int_equal(cs.total_tokens, tokens);
    assert_float_equal(cs.inference_cost, sum, 1e-12);
    assert_string_equal(cs.by_model[0].name, "m");
    af_cost_summary_clear(&cs);
    af_serving_free(s);
    af_cost_tracker_free(costs);
}

static const af_attr *attr(const af_span_data *d, const char *key)
{
    const af_attr *a = af_test_find_attr(d->attrs, d->n_attrs, key);
    if (!a)
        fail_msg("span %s lacks %s", d->name, key);
    return a;
}

static void test_spans(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_serving_opts o;
    af_serving_opts_init(&o);
    o.tracer = env.tracer;
    af_serving *s = gateway(&o);
    af_model_info m = {.id = "gpt",
                       .name = "GPT-3.5-Turbo",
                       .version = "1.0",
                       .framework = "PyTorch",
                       .memory_mb = 12288};
    assert_int_equal(af_serving_register_model(s, NULL, &m, NULL, 0), 0);
    add_sim(s, "gpt", "sim-0", 0);
    af_inference_response r;
    assert_int_equal(infer(s, "gpt", "What is AI?", &r), 0);
    af_inference_response_clear(&r);

    af_span_copy *spans[16];
    size_t n = af_test_spans(&env, spans, 16);
    const af_span_data *reg = af_test_find_span(spans, n, "model_serving.register_model");
    assert_non_null(reg);
    assert_string_equal(attr(reg, "model.id")->v.s.ptr, "gpt");
    assert_int_equal(attr(reg, "model.size_mb")->v.i, 12288);
    assert_string_equal(reg->events[0].name, "model.loaded");

    const af_span_data *inf = af_test_find_span(spans, n, "model_serving.inference");
    const af_span_data *look = af_test_find_span(spans, n, "model_serving.cache_lookup");
    const af_span_data *wait = af_test_find_span(spans, n, "model_serving.batch_wait");
    const af_span_data *bcall = af_test_find_span(spans, n, "model_serving.backend_call");
    assert_non_null(inf);
    assert_non_null(look);
    assert_non_null(wait);
    assert_non_null(bcall);
    assert_int_equal(inf->kind, AF_SPAN_KIND_SERVER);
    assert_int_equal(bcall->kind, AF_SPAN_KIND_CLIENT);
    const af_span_data *kids[] = {look, wait, bcall};
    for (int i = 0; i < 3; i++) {
        assert_memory_equal(kids[i]->trace_id, inf->trace_id, 16);
        assert_memory_equal(kids[i]->parent_span_id, inf->span_id, 8);
    }
    assert_string_equal(attr(inf, "model.id")->v.s.ptr, "gpt");
    assert_string_equal(attr(inf, "model.name")->v.s.ptr, "GPT-3.5-Turbo");
    assert_false(attr(inf, "cache.hit")->v.b);
    assert_int_equal(attr(inf, "batch.size")->v.i, 1);
    assert_int_equal(attr(inf, "tokens.prompt")->v.i, 3);
    assert_true(attr(inf, "tokens.completion")->v.i >= 16);
    assert_non_null(attr(inf, "cost.amount"));
    assert_string_equal(attr(inf, "backend.instance")->v.s.ptr, "sim-0");
    assert_string_equal(attr(inf, "operation.status")->v.s.ptr, "success");
    assert_non_null(attr(inf, "operation.duration_ms"));
    assert_non_null(attr(inf, "operation.start_time"));
    assert_int_equal(inf->status, AF_STATUS_OK);
    assert_false(attr(look, "cache.hit")->v.b);
    assert_int_equal(attr(wait, "batch.size")->v.i, 1);
    assert_string_equal(attr(bcall, "backend.instance")->v.s.ptr, "sim-0");
    assert_string_equal(attr(bcall, "backend.kind")->v.s.ptr, "simulated");
    assert_true(wait->start_ns <= bcall->start_ns);
    af_test_spans_free(spans, n);

    /* An unknown model: the request span records the error. */
    af_memory_exporter_clear(env.mem);
    assert_int_equal(infer(s, "nope", "x", &r), AF_ENOTFOUND);
    af_inference_response_clear(&r);
    n = af_test_spans(&env, spans, 16);
    inf = af_test_find_span(spans, n, "model_serving.inference");
    assert_non_null(inf);
    assert_int_equal(inf->status, AF_STATUS_ERROR);
    assert_string_equal(inf->status_message, "unknown model nope");
    assert_string_equal(attr(inf, "operation.status")->v.s.ptr, "error");
    af_test_spans_free(spans, n);

    /* A cache hit: cache.hit true on both spans, no batch or backend child. */
    af_memory_exporter_clear(env.mem);
    assert_int_equal(infer(s, "gpt", "What is AI?", &r), 0);
    assert_true(r.cache_hit);
    af_inference_response_clear(&r);
    n = af_test_spans(&env, spans, 16);
    assert_int_equal(n, 2);
    assert_true(attr(af_test_find_span(spans, n, "model_serving.inference"), "cache.hit")->v.b);
    assert_true(attr(af_test_find_span(spans, n, "model_serving.cache_lookup"), "cache.hit")->v.b);
    af_test_spans_free(spans, n);
    af_serving_free(s);
    af_test_env_free(&env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_errors),
        cmocka_unit_test(test_simulated_deterministic),
        cmocka_unit_test(test_simulated_latency_is_capped),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_batch_max_size),
        cmocka_unit_test(test_batch_min_size_and_wait),
        cmocka_unit_test(test_round_robin_rotates),
        cmocka_unit_test(test_least_latency),
        cmocka_unit_test(test_router_decisions),
        cmocka_unit_test(test_overload_and_queue_timeout),
        cmocka_unit_test(test_backend_timeout),
        cmocka_unit_test(test_cost_hook),
        cmocka_unit_test(test_spans),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
