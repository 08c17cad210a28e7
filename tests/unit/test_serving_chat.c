/* The chat seam (af_serving_chat_*): request checks, a non-streaming and a streaming answer
 * from the simulated backend, callbacks exactly once, and the model list. */
#include "testutil.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/serving.h"
#include "util/buf.h"

typedef struct collected {
    af_buf text;
    int done_calls;
    int rc;
    af_chat_result res;
    char content[512];
} collected;

static void on_delta(void *ctx, const char *text, size_t len)
{
    collected *c = ctx;
    af__buf_append(&c->text, text, len);
}

static void on_done(void *ctx, int rc, const af_chat_result *res)
{
    collected *c = ctx;
    c->done_calls++;
    c->rc = rc;
    c->res = *res;
    c->res.content = NULL;
    if (res->content)
        snprintf(c->content, sizeof(c->content), "%.*s", (int)res->content_len, res->content);
}

static af_serving *gateway(void)
{
    af_serving *s = NULL;
    assert_int_equal(af_serving_new(NULL, &s), 0);
    af_model_info m = {.id = "m1", .name = "m1"};
    assert_int_equal(af_serving_register_model(s, NULL, &m, NULL, 0), 0);
    af_sim_backend_opts so;
    af_sim_backend_opts_init(&so);
    so.base_latency_us = 0;
    so.per_token_latency_us = 0;
    af_model_backend *b = NULL;
    assert_int_equal(af_sim_backend_new(&so, &b), 0);
    af_instance_opts io = {.id = "m1-0"};
    assert_int_equal(af_serving_add_instance(s, "m1", &io, b), 0);
    return s;
}

static const af_chat_callbacks cbs = {on_delta, on_done};

static void test_chat_rejects_bad_requests(void **state)
{
    (void)state;
    af_serving *s = gateway();
    af_chat_message msg = {"user", "hi", AF_LEN_NUL};
    af_chat_request req = {.model = "m1", .messages = &msg, .n_messages = 1, .temperature = NAN};
    collected c = {0};
    af_chat_call *call = (af_chat_call *)1;
    char err[128];
    req.model = NULL;
    assert_int_equal(af_serving_chat_start(s, NULL, &req, &cbs, &c, &call, err, sizeof(err)),
                     -EINVAL);
    assert_null(call);
    assert_non_null(strstr(err, "model"));
    req.model = "nope";
    assert_int_equal(af_serving_chat_start(s, NULL, &req, &cbs, &c, &call, err, sizeof(err)),
                     AF_ENOTFOUND);
    req.model = "m1";
    req.n_messages = 0;
    assert_int_equal(af_serving_chat_start(s, NULL, &req, &cbs, &c, &call, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "messages"));
    req.n_messages = 1;
    req.temperature = 7;
    assert_int_equal(af_serving_chat_start(s, NULL, &req, &cbs, &c, &call, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "temperature"));
    assert_int_equal(c.done_calls, 0);
    af_serving_free(s);
}

static void test_chat_answers(void **state)
{
    (void)state;
    af_serving *s = gateway();
    af_chat_message msg = {"user", "hello there", AF_LEN_NUL};
    af_chat_request req = {.model = "m1", .messages = &msg, .n_messages = 1, .temperature = NAN};
    collected c = {0};
    af__buf_init(&c.text);
    af_chat_call *call = NULL;
    assert_int_equal(af_serving_chat_start(s, NULL, &req, &cbs, &c, &call, NULL, 0), 0);
    af_chat_call_release(call);
    assert_int_equal(c.done_calls, 1);
    assert_int_equal(c.rc, 0);
    assert_true(c.content[0] != '\0');
    assert_int_equal(c.text.len, 0);
    assert_true(c.res.input_tokens > 0 && c.res.output_tokens > 0);
    assert_string_equal(c.res.finish_reason, "stop");
    assert_int_equal(strncmp(c.res.id, "chatcmpl-", 9), 0);

    collected d = {0};
    af__buf_init(&d.text);
    req.stream = true;
    req.operation = AF_CHAT_OP_TEXT_COMPLETION;
    req.prompt = "once upon a time";
    req.prompt_len = AF_LEN_NUL;
    assert_int_equal(af_serving_chat_start(s, NULL, &req, &cbs, &d, &call, NULL, 0), 0);
    af_chat_call_release(call);
    assert_int_equal(d.done_calls, 1);
    assert_int_equal(d.rc, 0);
    assert_true(d.text.len > 0);
    assert_int_equal(strncmp(d.res.id, "cmpl-", 5), 0);
    af__buf_clear(&d.text);
    af__buf_clear(&c.text);

    af_serving_model_entry models[4];
    assert_int_equal(af_serving_models_list(s, models, 4), 1);
    assert_string_equal(models[0].id, "m1");
    assert_true(models[0].created_s > 0);
    af_serving_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_rejects_bad_requests),
        cmocka_unit_test(test_chat_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
