/*
 * test_server_openai_json.c - the OpenAI shapes of the front door (server/openai_json.h),
 * parsed back with jansson: errors, chat.completion and text_completion bodies, stream events
 * (a delta assembled from its prefix and suffix, the role, finish and usage events), the
 * model list, and text that needs escaping.
 */
#include "testutil.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "server/openai_json.h"

static json_t *parse(af_buf *b)
{
    af__buf_terminate(b);
    json_error_t e;
    json_t *j = json_loadb((const char *)b->data, b->len, 0, &e);
    if (!j)
        fail_msg("not JSON (%s): %.*s", e.text, (int)b->len, (const char *)b->data);
    return j;
}

/* One "data: {...}\n\n" event's JSON. */
static json_t *parse_event(af_buf *b)
{
    af__buf_terminate(b);
    const char *s = (const char *)b->data;
    assert_true(b->len > 8);
    assert_memory_equal(s, "data: ", 6);
    assert_memory_equal(s + b->len - 2, "\n\n", 2);
    json_t *j = json_loadb(s + 6, b->len - 8, 0, NULL);
    assert_non_null(j);
    return j;
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void test_error_shape(void **state)
{
    (void)state;
    af_buf b;
    af__buf_init(&b);
    af__oai_error_json(&b, 400, "invalid_type", "messages[0].role", "'x' must be \"a\" string");
    json_t *j = parse(&b);
    json_t *e = json_object_get(j, "error");
    assert_int_equal(json_object_size(j), 1);
    assert_int_equal(json_object_size(e), 4);
    assert_string_equal(str(e, "message"), "'x' must be \"a\" string");
    assert_string_equal(str(e, "type"), "invalid_request_error");
    assert_string_equal(str(e, "param"), "messages[0].role");
    assert_string_equal(str(e, "code"), "invalid_type");
    json_decref(j);
    af__buf_reset(&b);
    af__oai_error_json(&b, 503, NULL, NULL, "down");
    j = parse(&b);
    e = json_object_get(j, "error");
    assert_string_equal(str(e, "type"), "server_error");
    assert_true(json_is_null(json_object_get(e, "param")));
    assert_true(json_is_null(json_object_get(e, "code")));
    json_decref(j);
    af__buf_clear(&b);
    assert_string_equal(af__oai_error_type(401), "authentication_error");
    assert_string_equal(af__oai_error_type(404), "not_found_error");
    assert_string_equal(af__oai_error_type(429), "rate_limit_error");
    assert_string_equal(af__oai_error_type(413), "invalid_request_error");
}

static void test_completion_bodies(void **state)
{
    (void)state;
    af_chat_result r;
    memset(&r, 0, sizeof(r));
    char text[] = "line one\nline \"two\"\x01";
    r.content = text;
    r.content_len = sizeof(text) - 1;
    r.input_tokens = 5;
    r.output_tokens = 7;
    strcpy(r.finish_reason, "length");
    af__oai_ids ids = {.id = "chatcmpl-1", .model = "m/x:1", .created = 1700000000, .chat = true};
    af_buf b;
    af__buf_init(&b);
    af__oai_completion_json(&b, &ids, &r);
    json_t *j = parse(&b);
    assert_string_equal(str(j, "object"), "chat.completion");
    assert_string_equal(str(j, "id"), "chatcmpl-1");
    assert_string_equal(str(j, "model"), "m/x:1");
    assert_int_equal(json_integer_value(json_object_get(j, "created")), 1700000000);
    json_t *c = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(str(json_object_get(c, "message"), "role"), "assistant");
    assert_string_equal(str(json_object_get(c, "message"), "content"), text);
    assert_string_equal(str(c, "finish_reason"), "length");
    json_t *u = json_object_get(j, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "total_tokens")), 12);
    json_decref(j);

    af__buf_reset(&b);
    ids.chat = false;
    r.finish_reason[0] = '\0';
    af__oai_completion_json(&b, &ids, &r);
    j = parse(&b);
    assert_string_equal(str(j, "object"), "text_completion");
    c = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(str(c, "text"), text);
    assert_string_equal(str(c, "finish_reason"), "stop");
    json_decref(j);
    af__buf_clear(&b);
}

static void test_stream_events(void **state)
{
    (void)state;
    af__oai_ids ids = {.id = "chatcmpl-2", .model = "model-gpt", .created = 1, .chat = true};
    af_buf frame, b;
    af__buf_init(&frame);
    af__buf_init(&b);
    af__oai_delta_prefix(&frame, &ids);
    size_t plen = frame.len;
    af__oai_delta_suffix(&frame, &ids);
    af__oai_delta_event(&b, (const char *)frame.data, plen, (const char *)frame.data + plen,
                        frame.len - plen, "tok\"en", 6);
    json_t *j = parse_event(&b);
    assert_string_equal(str(j, "object"), "chat.completion.chunk");
    json_t *c = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(str(json_object_get(c, "delta"), "content"), "tok\"en");
    assert_true(json_is_null(json_object_get(c, "finish_reason")));
    json_decref(j);

    af__buf_reset(&b);
    af__oai_role_event(&b, &ids);
    j = parse_event(&b);
    c = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(str(json_object_get(c, "delta"), "role"), "assistant");
    json_decref(j);

    af__buf_reset(&b);
    af__oai_finish_event(&b, &ids, "stop");
    j = parse_event(&b);
    c = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(str(c, "finish_reason"), "stop");
    assert_int_equal(json_object_size(json_object_get(c, "delta")), 0);
    json_decref(j);

    af__buf_reset(&b);
    af__oai_usage_event(&b, &ids, 3, 4);
    j = parse_event(&b);
    assert_int_equal(json_array_size(json_object_get(j, "choices")), 0);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")), 4);
    json_decref(j);

    af__buf_reset(&b);
    af__oai_error_event(&b, 502, "backend_error", "upstream said no");
    j = parse_event(&b);
    assert_string_equal(str(json_object_get(j, "error"), "code"), "backend_error");
    json_decref(j);

    /* Text completions stream text_completion objects with "text". */
    ids.chat = false;
    af__buf_reset(&frame);
    af__buf_reset(&b);
    af__oai_delta_prefix(&frame, &ids);
    plen = frame.len;
    af__oai_delta_suffix(&frame, &ids);
    af__oai_delta_event(&b, (const char *)frame.data, plen, (const char *)frame.data + plen,
                        frame.len - plen, "x", 1);
    j = parse_event(&b);
    assert_string_equal(str(j, "object"), "text_completion");
    assert_string_equal(str(json_array_get(json_object_get(j, "choices"), 0), "text"), "x");
    json_decref(j);
    af__buf_clear(&frame);
    af__buf_clear(&b);
}

static void test_models(void **state)
{
    (void)state;
    af_serving_model_entry m[2];
    memset(m, 0, sizeof(m));
    strcpy(m[0].id, "a");
    strcpy(m[0].owned_by, "agentaflow");
    m[0].created_s = 5;
    strcpy(m[1].id, "b/c");
    strcpy(m[1].owned_by, "meta");
    af_buf b;
    af__buf_init(&b);
    af__oai_models_json(&b, m, 2);
    json_t *j = parse(&b);
    assert_string_equal(str(j, "object"), "list");
    json_t *d = json_object_get(j, "data");
    assert_int_equal(json_array_size(d), 2);
    assert_string_equal(str(json_array_get(d, 1), "id"), "b/c");
    assert_string_equal(str(json_array_get(d, 1), "object"), "model");
    assert_string_equal(str(json_array_get(d, 1), "owned_by"), "meta");
    json_decref(j);
    af__buf_reset(&b);
    af__oai_models_json(&b, m, 0);
    j = parse(&b);
    assert_int_equal(json_array_size(json_object_get(j, "data")), 0);
    json_decref(j);
    af__buf_clear(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_shape),
        cmocka_unit_test(test_completion_bodies),
        cmocka_unit_test(test_stream_events),
        cmocka_unit_test(test_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
