/*
 * The OpenAI-compatible front door against the real daemon (its two embedded simulated
 * models): hostile bodies on /v1 routes answered in OpenAI's error shape naming the parameter, the
 * JSON and event-stream answers byte for byte as a raw client sees them (chunked on HTTP/1.1,
 * read to the close on HTTP/1.0), a client that hangs up mid-stream releasing its backend
 * call, and the GenAI families in the exposition with exemplars.
 *
 * Every wait polls with a deadline; nothing sleeps blindly.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

/* One POST to /v1/chat/completions; the body must be an OpenAI error with this status, type,
 * param (NULL: null) and code. */
static void expect_oai_error(const char *path, const char *body, long status, const char *type,
                             const char *param, const char *code)
{
    const char *h[] = {"Content-Type: application/json", NULL};
    resp r = http(g_shared.port, "POST", path, body, h);
    if (r.status != status)
        fprintf(stderr, "body %.200s -> %ld %s\n", body, r.status, r.body);
    assert_int_equal(r.status, status);
    json_t *j = json_of(&r);
    json_t *e = json_object_get(j, "error");
    assert_true(json_is_object(e));
    assert_int_equal(json_object_size(e), 4); /* message, type, param, code: nothing else */
    assert_true(json_string_length(json_object_get(e, "message")) > 0);
    assert_string_equal(json_string_value(json_object_get(e, "type")), type);
    if (param)
        assert_string_equal(json_string_value(json_object_get(e, "param")), param);
    else
        assert_true(json_is_null(json_object_get(e, "param")));
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    json_decref(j);
    free(r.body);
}

#define CHAT "/v1/chat/completions"
#define BAD "invalid_request_error"

static void test_hostile_bodies(void **state)
{
    (void)state;
    expect_oai_error(CHAT, "{\"model\":", 400, BAD, NULL, "invalid_json");
    expect_oai_error(CHAT, "[1,2]", 400, BAD, NULL, "invalid_json");
    expect_oai_error(CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400, BAD,
                     "model", "missing_required_parameter");
    expect_oai_error(CHAT, "{\"model\":5,\"messages\":[]}", 400, BAD, "model", "invalid_type");
    expect_oai_error(CHAT, "{\"model\":\"bad model\\\"\",\"messages\":[]}", 400, BAD, "model",
                     "invalid_value");
    expect_oai_error(CHAT, "{\"model\":\"model-gpt\"}", 400, BAD, "messages",
                     "missing_required_parameter");
    expect_oai_error(CHAT, "{\"model\":\"model-gpt\",\"messages\":{}}", 400, BAD, "messages",
                     "invalid_type");
    expect_oai_error(CHAT, "{\"model\":\"model-gpt\",\"messages\":[]}", 400, BAD, "messages",
                     "empty_array");
    expect_oai_error(CHAT, "{\"model\":\"model-gpt\",\"messages\":[7]}", 400, BAD, "messages[0]",
                     "invalid_type");
    expect_oai_error(CHAT, "{\"model\":\"model-gpt\",\"messages\":[{\"content\":\"x\"}]}", 400, BAD,
                     "messages[0].role", "missing_required_parameter");
    expect_oai_error(CHAT,
                     "{\"model\":\"model-gpt\",\"messages\":[{\"role\":\"user\",\"content\":3}]}",
                     400, BAD, "messages[0].content", "invalid_type");
    expect_oai_error(CHAT,
                     "{\"model\":\"model-gpt\",\"messages\":[{\"role\":\"user\",\"content\":["
                     "{\"type\":\"text\",\"text\":\"x\"},{\"type\":\"image_url\",\"image_url\":"
                     "{\"url\":\"http://x/y.png\"}}]}]}",
                     400, BAD, "messages[0].content[1]", "invalid_value");
    const char *m = "\"model\":\"model-gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]";
    char b[512];
    static const struct {
        const char *field, *param, *code;
    } bad[] = {
        {"\"max_tokens\":\"many\"", "max_tokens", "invalid_type"},
        {"\"max_tokens\":1.5", "max_tokens", "invalid_value"},
        {"\"max_tokens\":0", "max_tokens", "invalid_value"},
        {"\"max_completion_tokens\":-3", "max_completion_tokens", "invalid_value"},
        {"\"temperature\":3", "temperature", "invalid_value"},
        {"\"temperature\":\"hot\"", "temperature", "invalid_type"},
        {"\"stream\":\"yes\"", "stream", "invalid_type"},
        {"\"stream_options\":1", "stream_options", "invalid_type"},
        {"\"stream_options\":{\"include_usage\":1}", "include_usage", "invalid_type"},
        {"\"n\":2", "n", "invalid_value"},
        {"\"user\":[]", "user", "invalid_type"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(b, sizeof(b), "{%s,%s}", m, bad[i].field);
        expect_oai_error(CHAT, b, 400, BAD, bad[i].param, bad[i].code);
    }
    expect_oai_error("/v1/completions", "{\"model\":\"model-gpt\",\"prompt\":42}", 400, BAD,
                     "prompt", "invalid_type");
    expect_oai_error(CHAT, "{\"model\":\"nope\",\"messages\":[{\"role\":\"user\"}]}", 404,
                     "not_found_error", "model", "model_not_found");
}

/* 20,000 messages (within the 1 MiB body limit), and one message past server.max_input_tokens:
 * refused whole. */
static void test_huge_messages(void **state)
{
    (void)state;
    size_t n = 20000, cap = n * 32 + 8192 * 4 + 128;
    char *b = malloc(cap);
    assert_non_null(b);
    size_t len = (size_t)snprintf(b, cap, "{\"model\":\"model-gpt\",\"messages\":[");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(b + len, cap - len, "%s{\"role\":\"user\"}", i ? "," : "");
    snprintf(b + len, cap - len, "]}");
    expect_oai_error(CHAT, b, 400, BAD, "messages", "array_above_max_length");
    /* 8192 tokens at 4 bytes a token is the default limit. */
    size_t big = 8192 * 4 + 8;
    len = (size_t)snprintf(b, cap,
                           "{\"model\":\"model-gpt\",\"messages\":[{\"role\":\"user\","
                           "\"content\":\"");
    memset(b + len, 'a', big);
    len += big;
    snprintf(b + len, cap - len, "\"}]}");
    expect_oai_error(CHAT, b, 400, BAD, "messages", "context_length_exceeded");
    free(b);
}

static void test_plain_answer(void **state)
{
    (void)state;
    const char *h[] = {"Content-Type: application/json", NULL};
    resp r = http(g_shared.port, "POST", CHAT,
                  "{\"model\":\"model-gpt\",\"messages\":[{\"role\":\"user\",\"content\":"
                  "\"hello\"}],\"max_tokens\":4}",
                  h);
    assert_int_equal(r.status, 200);
    json_t *j = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "chat.completion");
    assert_true(strncmp(json_string_value(json_object_get(j, "id")), "chatcmpl-", 9) == 0);
    json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
    json_t *msg = json_object_get(c0, "message");
    assert_string_equal(json_string_value(json_object_get(msg, "role")), "assistant");
    assert_true(json_string_length(json_object_get(msg, "content")) > 0);
    assert_string_equal(json_string_value(json_object_get(c0, "finish_reason")), "length");
    json_t *u = json_object_get(j, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "completion_tokens")), 4);
    json_decref(j);
    free(r.body);
}

/* Text parts ([{"type":"text","text":...}]) read as their texts joined by newlines: the same
 * prompt as one string costs the same input tokens. */
static void test_content_parts(void **state)
{
    (void)state;
    const char *h[] = {"Content-Type: application/json", NULL};
    const char *bodies[] = {
        "{\"model\":\"model-gpt\",\"max_tokens\":2,\"messages\":[{\"role\":\"user\",\"content\":"
        "\"hello there\\nand a second line of text\"}]}",
        "{\"model\":\"model-gpt\",\"max_tokens\":2,\"messages\":[{\"role\":\"user\",\"content\":["
        "{\"type\":\"text\",\"text\":\"hello there\"},{\"type\":\"text\",\"text\":"
        "\"and a second line of text\"}]}]}"};
    json_int_t prompt_tokens[2];
    for (int i = 0; i < 2; i++) {
        resp r = http(g_shared.port, "POST", CHAT, bodies[i], h);
        assert_int_equal(r.status, 200);
        json_t *j = json_of(&r);
        prompt_tokens[i] =
            json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens"));
        json_decref(j);
        free(r.body);
    }
    assert_true(prompt_tokens[0] > 0);
    assert_int_equal(prompt_tokens[0], prompt_tokens[1]);
}

static void test_models(void **state)
{
    (void)state;
    json_t *j = get_json(g_shared.port, "/v1/models", 200);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "list");
    json_t *d = json_object_get(j, "data");
    assert_true(json_array_size(d) >= 1);
    bool gpt = false;
    for (size_t i = 0; i < json_array_size(d); i++) {
        json_t *m = json_array_get(d, i);
        assert_string_equal(json_string_value(json_object_get(m, "object")), "model");
        gpt |= strcmp(json_string_value(json_object_get(m, "id")), "model-gpt") == 0;
    }
    assert_true(gpt);
    json_decref(j);
}

/* A raw streamed request; the whole answer up to the close (malloc'd). */
static char *raw_stream(const char *version, int max_tokens)
{
    char body[256], req[1024];
    int bl = snprintf(body, sizeof(body),
                      "{\"model\":\"model-gpt\",\"messages\":[{\"role\":\"user\",\"content\":"
                      "\"hi\"}],\"max_tokens\":%d,\"stream\":true,\"stream_options\":"
                      "{\"include_usage\":true}}",
                      max_tokens);
    int rl = snprintf(req, sizeof(req),
                      "POST " CHAT " %s\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                      version, bl, body);
    int fd = tcp_connect(g_shared.port);
    assert_true(fd >= 0);
    send_all(fd, req, (size_t)rl);
    char *all = read_to_eof(fd);
    close(fd);
    return all;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_stream_framing(void **state)
{
    (void)state;
    char *a = raw_stream("HTTP/1.1", 4);
    assert_non_null(strstr(a, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strcasestr(a, "content-type: text/event-stream\r\n"));
    assert_non_null(strcasestr(a, "transfer-encoding: chunked\r\n"));
    assert_null(strcasestr(a, "content-length:"));
    assert_int_equal(count(a, "\"delta\":{\"role\":\"assistant\""), 1);
    assert_int_equal(count(a, "\"delta\":{\"content\":"), 4);
    assert_int_equal(count(a, "\"finish_reason\":\"length\""), 1);
    assert_int_equal(count(a, "\"usage\":{\"prompt_tokens\":"), 1);
    const char *done = strstr(a, "data: [DONE]\n\n");
    assert_non_null(done);
    /* The last chunk, and nothing after it. */
    assert_string_equal(done + strlen("data: [DONE]\n\n"), "\r\n0\r\n\r\n");
    free(a);
    /* HTTP/1.0 has no chunks: the events, and the close ends the answer. */
    a = raw_stream("HTTP/1.0", 3);
    assert_non_null(strstr(a, "HTTP/1.0 200 OK\r\n"));
    assert_null(strcasestr(a, "transfer-encoding"));
    assert_int_equal(count(a, "\"delta\":{\"content\":"), 3);
    size_t len = strlen(a), tail = strlen("data: [DONE]\n\n");
    assert_true(len > tail);
    assert_string_equal(a + len - tail, "data: [DONE]\n\n");
    free(a);
}

static long instances_load(void)
{
    json_t *j = get_json(g_shared.port, "/api/v1/models", 200);
    json_t *in = json_object_get(json_object_get(j, "routing"), "instances");
    long n = 0;
    for (size_t i = 0; i < json_array_size(in); i++)
        n += (long)json_integer_value(json_object_get(json_array_get(in, i), "current_load"));
    json_decref(j);
    return n;
}

/* Opens a long streamed call on `port` and reads up to its first content event; returns the
 * connection. */
static int open_stream(int port)
{
    char body[256], req[1024];
    int bl = snprintf(body, sizeof(body),
                      "{\"model\":\"model-gpt\",\"messages\":[{\"role\":\"user\",\"content\":"
                      "\"a long answer please\"}],\"max_tokens\":2000,\"stream\":true}");
    int rl = snprintf(req, sizeof(req),
                      "POST " CHAT " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                      "application/json\r\nContent-Length: %d\r\n\r\n%s",
                      bl, body);
    int fd = tcp_connect(port);
    assert_true(fd >= 0);
    send_all(fd, req, (size_t)rl);
    char buf[4096];
    size_t got = 0;
    while (got < sizeof(buf) - 1) {
        ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        assert_true(n > 0);
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "\"delta\":{\"content\":"))
            break;
    }
    return fd;
}

/* A client that hangs up after its first event: the call is released. */
static void test_hangup_releases_the_call(void **state)
{
    (void)state;
    int fd = open_stream(g_shared.port);
    assert_true(instances_load() >= 1);
    close(fd);
    uint64_t end = now_ms() + 10000;
    while (instances_load() != 0 && now_ms() < end)
        pause_ms(20);
    assert_int_equal(instances_load(), 0);
    /* And the daemon answers the next call. */
    const char *h[] = {"Content-Type: application/json", NULL};
    resp r = http(g_shared.port, "POST", "/v1/completions",
                  "{\"model\":\"model-gpt\",\"prompt\":\"again\",\"max_tokens\":2}", h);
    assert_int_equal(r.status, 200);
    free(r.body);
}

/* A daemon stopped while streams are live: their calls are cancelled with their connections,
 * and their last callbacks (which use the server's loops and metrics) end before the server
 * is freed. Under ASan and TSan a callback after the free fails the exit status. */
static void test_stop_with_live_streams(void **state)
{
    (void)state;
    daemon_t d;
    daemon_start(&d, it_base_config, NULL, NULL);
    enum { STREAMS = 16 };
    int fds[STREAMS];
    for (int i = 0; i < STREAMS; i++)
        fds[i] = open_stream(d.port);
    assert_int_equal(daemon_stop(&d), 0);
    for (int i = 0; i < STREAMS; i++)
        close(fds[i]);
}

/* The GenAI families, with exemplars in OpenMetrics (after the calls above). */
static void test_genai_metrics(void **state)
{
    (void)state;
    assert_true(metric_value(g_shared.mport,
                             "gen_ai_client_token_usage_count{gen_ai_operation_name=\"chat\","
                             "gen_ai_request_model=\"model-gpt\",gen_ai_token_type=\"output\"}") >=
                1);
    assert_true(metric_value(g_shared.mport,
                             "gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name="
                             "\"text_completion\",gen_ai_request_model=\"model-gpt\"}") >= 1);
    assert_true(
        metric_value(g_shared.mport,
                     "gen_ai_server_time_to_first_token_seconds_count{gen_ai_operation_name="
                     "\"chat\",gen_ai_request_model=\"model-gpt\"}") >= 1);
    /* The call test_hangup_releases_the_call cut off counts as a failed operation (its
     * answer may be recorded a moment after the instance was released: poll). */
    const char *failed = "gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name="
                         "\"chat\",gen_ai_request_model=\"model-gpt\",error_type=\"cancelled\"}";
    uint64_t until = now_ms() + 10000;
    while (metric_value(g_shared.mport, failed) < 1 && now_ms() < until)
        pause_ms(20);
    assert_true(metric_value(g_shared.mport, failed) >= 1);
    const char *h[] = {"Accept: application/openmetrics-text; version=1.0.0", NULL};
    resp r = http(g_shared.mport, "GET", "/metrics", NULL, h);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "# TYPE gen_ai_client_token_usage histogram\n"));
    const char *p = strstr(r.body, "gen_ai_server_time_to_first_token_seconds_bucket{");
    bool exemplar = false;
    for (; p; p = strstr(p + 1, "gen_ai_server_time_to_first_token_seconds_bucket{")) {
        const char *nl = strchr(p, '\n');
        const char *ex = strstr(p, " # {trace_id=\"");
        if (ex && nl && ex < nl)
            exemplar = true;
    }
    assert_true(exemplar);
    free(r.body);
}

/* The trace list and one trace say what the call cost (agentaflow.cost.usd summed). */
static void test_trace_cost(void **state)
{
    (void)state;
    const char *h[] = {"Content-Type: application/json", NULL};
    resp r = http(g_shared.port, "POST", CHAT,
                  "{\"model\":\"model-gpt\",\"messages\":[{\"role\":\"user\",\"content\":"
                  "\"what does this cost\"}],\"max_tokens\":8}",
                  h);
    assert_int_equal(r.status, 200);
    char tr[64], path[128];
    assert_non_null(header(&r, "traceresponse", tr, sizeof(tr)));
    free(r.body);
    char tid[33];
    memcpy(tid, tr + 3, 32);
    tid[32] = '\0';
    snprintf(path, sizeof(path), "/api/v1/traces/%s", tid);
    double cost = 0;
    uint64_t end = now_ms() + 10000;
    while (cost <= 0 && now_ms() < end) {
        resp t = http(g_shared.port, "GET", path, NULL, NULL);
        if (t.status == 200) {
            json_t *j = json_of(&t);
            cost = json_number_value(json_object_get(j, "cost_usd"));
            json_decref(j);
        }
        free(t.body);
        if (cost <= 0)
            pause_ms(50);
    }
    assert_true(cost > 0);
    json_t *l = get_json(g_shared.port, "/api/v1/traces?limit=100", 200);
    json_t *arr = json_object_get(l, "traces");
    bool seen = false;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *t = json_array_get(arr, i);
        if (strcmp(json_string_value(json_object_get(t, "trace_id")), tid) == 0) {
            assert_true(json_number_value(json_object_get(t, "cost_usd")) == cost);
            seen = true;
        }
        assert_true(json_is_number(json_object_get(t, "cost_usd")));
    }
    assert_true(seen);
    json_decref(l);
}

int main(int argc, char **argv)
{
    int rc = harness_init(argc, argv, "test_gateway");
    if (rc)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_bodies),
        cmocka_unit_test(test_huge_messages),
        cmocka_unit_test(test_plain_answer),
        cmocka_unit_test(test_content_parts),
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_stream_framing),
        cmocka_unit_test(test_hangup_releases_the_call),
        cmocka_unit_test(test_genai_metrics),
        cmocka_unit_test(test_trace_cost),
    };
    rc = cmocka_run_group_tests_name("gateway", tests, shared_daemon_setup, shared_daemon_teardown);
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_stop_with_live_streams),
    };
    rc |= cmocka_run_group_tests_name("gateway_stop", own, NULL, NULL);
    harness_fini();
    return rc;
}
