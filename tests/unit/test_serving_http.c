/* The OpenAI-compatible HTTP backend against a loopback receiver: request shape, answer
 * parsing, traceparent propagation from the backend_call span, and the failure modes. */
#include "testutil.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "agentaflow/propagation.h"
#include "agentaflow/serving.h"
#include "http_receiver.h"

static const char answer[] = "{\"id\":\"cmpl-1\",\"object\":\"text_completion\","
                             "\"choices\":[{\"index\":0,\"text\":\"Paris.\",\"finish_reason\":"
                             "\"stop\"}],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2,"
                             "\"total_tokens\":9}}";

static af_serving *http_gateway(af_tracer *tr, uint16_t port, const char *remote_model)
{
    af_serving_opts o;
    af_serving_opts_init(&o);
    o.tracer = tr;
    o.cache_ttl_ms = 0;
    af_serving *s = NULL;
    assert_int_equal(af_serving_new(&o, &s), 0);
    af_model_info m = {.id = "gpt", .name = "GPT"};
    assert_int_equal(af_serving_register_model(s, NULL, &m, NULL, 0), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", port);
    af_http_backend_opts ho;
    af_http_backend_opts_init(&ho);
    ho.base_url = url;
    ho.model = remote_model;
    ho.api_key = "sk-test";
    af_model_backend *b = NULL;
    assert_int_equal(af_http_backend_new(&ho, &b), 0);
    assert_string_equal(af_model_backend_kind(b), "http");
    af_instance_opts io = {.id = "vllm-0", .endpoint = url};
    assert_int_equal(af_serving_add_instance(s, "gpt", &io, b), 0);
    return s;
}

static int ask(af_serving *s, const char *input, uint32_t timeout_ms, af_inference_response *r)
{
    af_inference_request q = {.model_id = "gpt",
                              .input = input,
                              .input_len = AF_LEN_NUL,
                              .max_tokens = 16,
                              .timeout_ms = timeout_ms};
    return af_serving_infer(s, NULL, &q, r);
}

static void test_completion_and_traceparent(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_test_http_receiver *rx = NULL;
    assert_int_equal(af_test_http_receiver_start(NULL, &rx), 0);
    af_test_http_reply rep = {.status = 200,
                              .headers = "Content-Type: application/json\r\n",
                              .body = answer,
                              .body_len = sizeof(answer) - 1};
    af_test_http_receiver_script(rx, &rep, 1);
    af_serving *s = http_gateway(env.tracer, af_test_http_receiver_port(rx), "llama-3-8b");

    af_inference_response r;
    assert_int_equal(ask(s, "Capital of \"France\"?", 5000, &r), 0);
    assert_string_equal(r.output, "Paris.");
    assert_int_equal(r.prompt_tokens, 7);
    assert_int_equal(r.completion_tokens, 2);
    assert_string_equal(r.instance_id, "vllm-0");
    af_inference_response_clear(&r);

    assert_int_equal(af_test_http_receiver_requests(rx), 1);
    const af_test_http_request *q = af_test_http_receiver_request(rx, 0);
    assert_string_equal(q->method, "POST");
    assert_string_equal(q->path, "/v1/completions");
    assert_string_equal(af_test_http_request_header(q, "content-type"), "application/json");
    assert_string_equal(af_test_http_request_header(q, "authorization"), "Bearer sk-test");
    json_error_t jerr;
    json_t *body = json_loadb((const char *)q->body, q->body_len, 0, &jerr);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "model")), "llama-3-8b");
    assert_string_equal(json_string_value(json_object_get(body, "prompt")),
                        "Capital of \"France\"?");
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 16);
    json_decref(body);

    /* The traceparent that arrived is the backend_call span's context. */
    const char *tp = af_test_http_request_header(q, "traceparent");
    assert_non_null(tp);
    af_span_context got;
    assert_int_equal(af_traceparent_parse(tp, strlen(tp), &got), 0);
    af_span_copy *spans[16];
    size_t n = af_test_spans(&env, spans, 16);
    const af_span_data *call = af_test_find_span(spans, n, "model_serving.backend_call");
    const af_span_data *inf = af_test_find_span(spans, n, "model_serving.inference");
    assert_non_null(call);
    assert_non_null(inf);
    assert_memory_equal(got.trace_id, call->trace_id, 16);
    assert_memory_equal(got.span_id, call->span_id, 8);
    assert_memory_equal(call->parent_span_id, inf->span_id, 8);
    assert_int_equal(call->kind, AF_SPAN_KIND_CLIENT);
    const af_attr *pt = af_test_find_attr(call->attrs, call->n_attrs, "tokens.prompt");
    assert_non_null(pt);
    assert_int_equal(pt->v.i, 7);
    af_test_spans_free(spans, n);

    af_serving_free(s);
    af_test_http_receiver_stop(rx);
    af_test_env_free(&env);
}

static void test_backend_down(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_serving *s = http_gateway(env.tracer, af_test_closed_port(), NULL);
    af_inference_response r;
    assert_int_equal(ask(s, "hello", 5000, &r), -EHOSTDOWN);
    assert_non_null(strstr(r.error, "backend down"));
    af_inference_response_clear(&r);
    af_span_copy *spans[16];
    size_t n = af_test_spans(&env, spans, 16);
    const af_span_data *call = af_test_find_span(spans, n, "model_serving.backend_call");
    assert_non_null(call);
    assert_int_equal(call->status, AF_STATUS_ERROR);
    assert_true(call->n_events >= 1);
    assert_string_equal(call->events[0].name, "exception");
    const af_span_data *inf = af_test_find_span(spans, n, "model_serving.inference");
    assert_int_equal(inf->status, AF_STATUS_ERROR);
    af_test_spans_free(spans, n);
    af_instance_stats is;
    af_serving_instances(s, &is, 1);
    assert_int_equal(is.failures, 1);
    af_serving_free(s);
    af_test_env_free(&env);
}

static void test_timeout_and_bad_answers(void **state)
{
    (void)state;
    af_test_http_receiver *rx = NULL;
    assert_int_equal(af_test_http_receiver_start(NULL, &rx), 0);
    static const char bad_json[] = "{\"choices\":[]}";
    af_test_http_reply reps[3] = {
        {.status = 200, .body = answer, .body_len = sizeof(answer) - 1, .delay_ms = 5000},
        {.status = 500, .body = "oops", .body_len = 4},
        {.status = 200, .body = bad_json, .body_len = sizeof(bad_json) - 1},
    };
    af_test_http_receiver_script(rx, reps, 3);
    af_serving *s = http_gateway(NULL, af_test_http_receiver_port(rx), NULL);
    af_inference_response r;
    uint64_t t0 = af_monotonic_ns();
    assert_int_equal(ask(s, "slow", 100, &r), AF_ETIMEDOUT);
    assert_true(af_monotonic_ns() - t0 < UINT64_C(4000000000));
    assert_non_null(strstr(r.error, "timeout"));
    af_inference_response_clear(&r);
    assert_int_equal(ask(s, "err", 5000, &r), -EIO);
    assert_string_equal(r.error, "backend returned HTTP 500");
    af_inference_response_clear(&r);
    assert_int_equal(ask(s, "bad", 5000, &r), AF_EPARSE);
    assert_non_null(strstr(r.error, "choices[0].text"));
    af_inference_response_clear(&r);
    /* The gateway model id is the remote model name when none is configured. */
    const af_test_http_request *q = af_test_http_receiver_request(rx, 1);
    assert_non_null(q);
    assert_non_null(memmem(q->body, q->body_len, "\"model\":\"gpt\"", 13));
    af_serving_free(s);
    af_test_http_receiver_stop(rx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_completion_and_traceparent),
        cmocka_unit_test(test_backend_down),
        cmocka_unit_test(test_timeout_and_bad_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
