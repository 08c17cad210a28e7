/* The backend-side wire readers: the incremental SSE parser (line endings, splits, comments,
 * multi-line data, [DONE], limits) and the OpenAI chunk/response reader and request body. */
#include "testutil.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "serving/openai.h"
#include "serving/sse.h"

typedef struct events {
    char got[16][128];
    char type[16][32];
    int n;
    int stop_at; /* return 1 from this event (1-based); 0 = never */
} events;

static int collect(void *ctx, const af__sse_event *ev)
{
    events *e = ctx;
    assert_int_equal(ev->data[ev->data_len], '\0');
    if (e->n < 16) {
        snprintf(e->got[e->n], sizeof(e->got[0]), "%s", ev->data);
        snprintf(e->type[e->n], sizeof(e->type[0]), "%s", ev->type);
    }
    e->n++;
    return e->stop_at && e->n == e->stop_at ? 1 : 0;
}

static int feed_all(const char *s, size_t len, events *e, size_t max_line)
{
    af__sse p;
    af__sse_init(&p, max_line, 4096);
    int rc = af__sse_feed(&p, s, len, collect, e);
    af__sse_free(&p);
    return rc;
}

static void test_sse_line_endings_and_fields(void **state)
{
    (void)state;
    static const char *const inputs[] = {
        "data: a\n\nevent: up\ndata: b\ndata:  c\n\n",
        "data: a\r\n\r\nevent: up\r\ndata: b\r\ndata:  c\r\n\r\n",
        "data: a\r\revent: up\rdata: b\rdata:  c\r\r",
        "\xEF\xBB\xBF: comment\ndata: a\n\n:x\nevent: up\nid: 1\nretry: 5\ndata: b\ndata:  c\n\n",
    };
    for (size_t k = 0; k < sizeof(inputs) / sizeof(inputs[0]); k++) {
        events e = {0};
        assert_int_equal(feed_all(inputs[k], strlen(inputs[k]), &e, 1024), 0);
        assert_int_equal(e.n, 2);
        assert_string_equal(e.got[0], "a");
        assert_string_equal(e.type[0], "message");
        assert_string_equal(e.got[1], "b\n c"); /* joined with \n; one leading space removed */
        assert_string_equal(e.type[1], "up");
    }
    /* "data" without a colon is an empty data line; an event without data is not sent. */
    events e = {0};
    const char *s = "data\n\nevent: lonely\n\ndata:x\n";
    assert_int_equal(feed_all(s, strlen(s), &e, 1024), 0);
    assert_int_equal(e.n, 1); /* the last event has no blank line yet */
    assert_string_equal(e.got[0], "");
}

static void test_sse_any_split(void **state)
{
    (void)state;
    const char *s =
        "data: {\"x\":1}\r\n\r\n: ping\r\ndata: two\r\ndata: lines\r\n\r\ndata: [DONE]\r\n\r\n";
    size_t len = strlen(s);
    for (size_t cut = 0; cut <= len; cut++) {
        events e = {0};
        af__sse p;
        af__sse_init(&p, 1024, 4096);
        assert_int_equal(af__sse_feed(&p, s, cut, collect, &e), 0);
        assert_int_equal(af__sse_feed(&p, s + cut, len - cut, collect, &e), 0);
        af__sse_free(&p);
        assert_int_equal(e.n, 3);
        assert_string_equal(e.got[0], "{\"x\":1}");
        assert_string_equal(e.got[1], "two\nlines");
        af__sse_event done = {"message", e.got[2], strlen(e.got[2])};
        assert_true(af__sse_is_done(&done));
    }
}

static void test_sse_limits_and_stop(void **state)
{
    (void)state;
    char big[300];
    memset(big, 'x', sizeof(big));
    memcpy(big, "data: ", 6);
    events e = {0};
    af__sse p;
    af__sse_init(&p, 64, 4096);
    assert_int_equal(af__sse_feed(&p, big, sizeof(big), collect, &e), AF_EPARSE);
    assert_int_equal(af__sse_feed(&p, "\n\n", 2, collect, &e), AF_EPARSE); /* stays failed */
    af__sse_free(&p);
    assert_int_equal(e.n, 0);
    /* Many short data lines past the event limit. */
    af__sse_init(&p, 64, 32);
    for (int i = 0; i < 10; i++)
        if (af__sse_feed(&p, "data: 0123456789\n", 17, collect, &e) != 0)
            break;
    assert_int_equal(af__sse_feed(&p, "\n", 1, collect, &e), AF_EPARSE);
    af__sse_free(&p);
    /* A callback's non-zero return stops the feed and is returned. */
    events st = {.stop_at = 1};
    const char *two = "data: 1\n\ndata: 2\n\n";
    assert_int_equal(feed_all(two, strlen(two), &st, 64), 1);
    assert_int_equal(st.n, 1);
}

static void test_openai_reader(void **state)
{
    (void)state;
    af__oai_answer a;
    char err[160];
    const char *chunk = "{\"id\":\"c-1\",\"model\":\"llama\",\"choices\":[{\"index\":0,\"delta\":"
                        "{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}]}";
    assert_int_equal(af__oai_parse(chunk, strlen(chunk), AF_CHAT_OP_CHAT, false, &a, err, 160), 0);
    assert_int_equal(a.text_len, 2);
    assert_memory_equal(a.text, "Hi", 2);
    assert_string_equal(a.id, "c-1");
    assert_string_equal(a.model, "llama");
    assert_null(a.finish_reason);
    assert_int_equal(a.input_tokens, -1);
    af__oai_answer_free(&a);

    const char *usage = "{\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":9}}";
    assert_int_equal(af__oai_parse(usage, strlen(usage), AF_CHAT_OP_CHAT, false, &a, err, 160), 0);
    assert_null(a.text);
    assert_int_equal(a.input_tokens, 5);
    assert_int_equal(a.output_tokens, 9);
    af__oai_answer_free(&a);

    const char *text = "{\"choices\":[{\"text\":\" world\",\"finish_reason\":\"length\"}]}";
    assert_int_equal(
        af__oai_parse(text, strlen(text), AF_CHAT_OP_TEXT_COMPLETION, false, &a, err, 160), 0);
    assert_int_equal(a.text_len, 6);
    assert_string_equal(a.finish_reason, "length");
    af__oai_answer_free(&a);

    const char *whole = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"All\"},"
                        "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,"
                        "\"completion_tokens\":1}}";
    assert_int_equal(af__oai_parse(whole, strlen(whole), AF_CHAT_OP_CHAT, true, &a, err, 160), 0);
    assert_string_equal(a.text, "All");
    af__oai_answer_free(&a);

    const char *e1 = "{\"error\":{\"message\":\"model is loading\",\"type\":\"server_error\"}}";
    assert_int_equal(af__oai_parse(e1, strlen(e1), AF_CHAT_OP_CHAT, false, &a, err, 160), -EIO);
    assert_string_equal(err, "backend error: model is loading");
    af__oai_answer_free(&a);

    assert_int_equal(af__oai_parse("{nope", 5, AF_CHAT_OP_CHAT, false, &a, err, 160), AF_EPARSE);
    assert_non_null(strstr(err, "invalid JSON"));
    const char *bad = "{\"choices\":[{\"delta\":{\"content\":42}}]}";
    assert_int_equal(af__oai_parse(bad, strlen(bad), AF_CHAT_OP_CHAT, false, &a, err, 160),
                     AF_EPARSE);
    assert_string_equal(err, "choices[0].delta.content: expected a string");
    af__oai_answer_free(&a);
    const char *none = "{\"choices\":[]}";
    assert_int_equal(af__oai_parse(none, strlen(none), AF_CHAT_OP_CHAT, true, &a, err, 160),
                     AF_EPARSE);
    assert_string_equal(err, "choices: expected at least one choice");
    af__oai_answer_free(&a);
}

static void test_openai_request_body(void **state)
{
    (void)state;
    af_chat_message msgs[2] = {{"system", "be \"brief\"", 10}, {"user", "hi", 2}};
    af__stream st;
    memset(&st, 0, sizeof(st));
    st.op = AF_CHAT_OP_CHAT;
    st.messages = msgs;
    st.n_messages = 2;
    st.max_tokens = 16;
    st.temperature = 0.25;
    st.stream = true;
    st.include_usage = true;
    st.user = "u1";
    af_buf b;
    af__buf_init(&b);
    af__oai_request_body(&st, "llama-3", &b);
    assert_string_equal((const char *)b.data,
                        "{\"model\":\"llama-3\",\"messages\":[{\"role\":\"system\",\"content\":"
                        "\"be \\\"brief\\\"\"},{\"role\":\"user\",\"content\":\"hi\"}],"
                        "\"max_tokens\":16,\"temperature\":0.25,\"user\":\"u1\",\"stream\":true,"
                        "\"stream_options\":{\"include_usage\":true}}");
    af__buf_reset(&b);
    st.op = AF_CHAT_OP_TEXT_COMPLETION;
    st.prompt = "once";
    st.prompt_len = 4;
    st.temperature = NAN;
    st.stream = false;
    st.user = NULL;
    af__oai_request_body(&st, "m", &b);
    assert_string_equal((const char *)b.data,
                        "{\"model\":\"m\",\"prompt\":\"once\",\"max_tokens\":16}");
    af__buf_clear(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_line_endings_and_fields), cmocka_unit_test(test_sse_any_split),
        cmocka_unit_test(test_sse_limits_and_stop),         cmocka_unit_test(test_openai_reader),
        cmocka_unit_test(test_openai_request_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
