/* Chat calls over the OpenAI-compatible HTTP backend against a loopback receiver: streamed
 * SSE deltas, the request it sends (path, body, Authorization, traceparent of the CLIENT
 * span), whole answers, retry of a refused connection on another instance, error statuses,
 * a stream cut before [DONE], cancel and the deadline. */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agentaflow/propagation.h"
#include "agentaflow/serving.h"
#include "http_receiver.h"
#include "util/buf.h"

#include "chat_collect.h"

static void add_http(af_serving *s, const char *id, uint16_t port)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", port);
    af_http_backend_opts ho;
    af_http_backend_opts_init(&ho);
    ho.base_url = url;
    ho.model = "llama-3-8b";
    ho.api_key = "sk-test";
    ho.provider = "vllm";
    af_model_backend *b = NULL;
    assert_int_equal(af_http_backend_new(&ho, &b), 0);
    af_instance_opts io = {.id = id, .endpoint = url};
    assert_int_equal(af_serving_add_instance(s, "gpt", &io, b), 0);
}

static af_serving *gateway(af_tracer *tr)
{
    af_serving_opts o;
    af_serving_opts_init(&o);
    o.tracer = tr;
    af_serving *s = NULL;
    assert_int_equal(af_serving_new(&o, &s), 0);
    af_model_info m = {.id = "gpt", .name = "GPT"};
    assert_int_equal(af_serving_register_model(s, NULL, &m, NULL, 0), 0);
    return s;
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

static const char sse[] =
    "data: {\"id\":\"chatcmpl-up\",\"model\":\"llama-3-8b\",\"choices\":[{\"index\":0,\"delta\":"
    "{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
    ": keep-alive\n\n"
    "data: "
    "{\"id\":\"chatcmpl-up\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Par\"}}]}\r\n\r\n"
    "data: {\"id\":\"chatcmpl-up\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"is.\"},"
    "\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"id\":\"chatcmpl-up\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,"
    "\"completion_tokens\":2}}\n\n"
    "data: [DONE]\n\n";

static const af_attr *attr(const af_span_data *d, const char *key)
{
    const af_attr *a = af_test_find_attr(d->attrs, d->n_attrs, key);
    if (!a)
        fail_msg("span %s lacks %s", d->name, key);
    return a;
}

static void test_streamed_chat(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_test_http_receiver *rx = NULL;
    assert_int_equal(af_test_http_receiver_start(NULL, &rx), 0);
    af_test_http_reply rep = {
        .headers = "Content-Type: text/event-stream\r\n", .body = sse, .body_len = sizeof(sse) - 1};
    af_test_http_receiver_script(rx, &rep, 1);
    af_serving *s = gateway(env.tracer);
    add_http(s, "vllm-0", af_test_http_receiver_port(rx));
    af_chat_message msg = {"user", "Capital of France?", AF_LEN_NUL};
    af_chat_request req = {.model = "gpt",
                           .messages = &msg,
                           .n_messages = 1,
                           .max_tokens = 16,
                           .temperature = 0.2,
                           .stream = true,
                           .include_usage = true};
    af_test_chat c;
    af_test_chat_init(&c);
    af_chat_call_release(start(s, &req, &c));
    af_test_chat_wait(&c);
    assert_int_equal(c.rc, 0);
    assert_string_equal((const char *)c.text.data, "Paris.");
    assert_int_equal(c.deltas, 2);
    assert_int_equal(c.res.input_tokens, 11);
    assert_int_equal(c.res.output_tokens, 2);
    assert_string_equal(c.res.finish_reason, "stop");
    assert_string_equal(c.res.response_model, "llama-3-8b");
    assert_string_equal(c.res.provider, "vllm");

    const af_test_http_request *q = af_test_http_receiver_request(rx, 0);
    assert_string_equal(q->path, "/v1/chat/completions");
    assert_string_equal(af_test_http_request_header(q, "authorization"), "Bearer sk-test");
    assert_string_equal(af_test_http_request_header(q, "accept"), "text/event-stream");
    json_error_t jerr;
    json_t *body = json_loadb((const char *)q->body, q->body_len, 0, &jerr);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "model")), "llama-3-8b");
    assert_true(json_is_true(json_object_get(body, "stream")));
    assert_true(
        json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage")));
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(body, "messages"), 0), "content")),
                        "Capital of France?");
    json_decref(body);

    const char *tp = af_test_http_request_header(q, "traceparent");
    af_span_context got;
    assert_int_equal(af_traceparent_parse(tp, strlen(tp), &got), 0);
    af_span_copy *spans[16];
    size_t n = af_test_spans(&env, spans, 16);
    const af_span_data *cl = af_test_find_span(spans, n, "chat gpt");
    assert_non_null(cl);
    assert_memory_equal(got.span_id, cl->span_id, 8);
    assert_string_equal(attr(cl, "gen_ai.provider.name")->v.s.ptr, "vllm");
    assert_string_equal(attr(cl, "gen_ai.response.id")->v.s.ptr, "chatcmpl-up");
    assert_string_equal(attr(cl, "gen_ai.response.model")->v.s.ptr, "llama-3-8b");
    assert_string_equal(attr(cl, "server.address")->v.s.ptr, "127.0.0.1");
    assert_int_equal(attr(cl, "server.port")->v.i, af_test_http_receiver_port(rx));
    assert_int_equal(attr(cl, "gen_ai.usage.input_tokens")->v.i, 11);
    af_test_spans_free(spans, n);
    af_serving_free(s);
    af_test_http_receiver_stop(rx);
    af_test_env_free(&env);
    af_test_chat_clear(&c);
}

static void test_whole_text_completion(void **state)
{
    (void)state;
    af_test_http_receiver *rx = NULL;
    assert_int_equal(af_test_http_receiver_start(NULL, &rx), 0);
    static const char whole[] = "{\"id\":\"cmpl-9\",\"choices\":[{\"text\":\" upon a time\","
                                "\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":2,"
                                "\"completion_tokens\":4}}";
    af_test_http_reply rep = {.headers = "Content-Type: application/json\r\n",
                              .body = whole,
                              .body_len = sizeof(whole) - 1};
    af_test_http_receiver_script(rx, &rep, 1);
    af_serving *s = gateway(NULL);
    add_http(s, "vllm-0", af_test_http_receiver_port(rx));
    af_chat_request req = {.operation = AF_CHAT_OP_TEXT_COMPLETION,
                           .model = "gpt",
                           .prompt = "once",
                           .prompt_len = AF_LEN_NUL,
                           .temperature = NAN};
    af_test_chat c;
    af_test_chat_init(&c);
    af_chat_call_release(start(s, &req, &c));
    af_test_chat_wait(&c);
    assert_int_equal(c.rc, 0);
    assert_string_equal(c.content, " upon a time");
    assert_string_equal(c.res.finish_reason, "length");
    assert_int_equal(c.res.output_tokens, 4);
    const af_test_http_request *q = af_test_http_receiver_request(rx, 0);
    assert_string_equal(q->path, "/v1/completions");
    assert_null(memmem(q->body, q->body_len, "\"stream\"", 8));
    af_serving_free(s);
    af_test_http_receiver_stop(rx);
    af_test_chat_clear(&c);
}

static void test_refused_is_retried_elsewhere(void **state)
{
    (void)state;
    af_test_http_receiver *rx = NULL;
    assert_int_equal(af_test_http_receiver_start(NULL, &rx), 0);
    af_test_http_reply rep = {
        .headers = "Content-Type: text/event-stream\r\n", .body = sse, .body_len = sizeof(sse) - 1};
    af_test_http_reply reps[4] = {rep, rep, rep, rep};
    af_test_http_receiver_script(rx, reps, 4);
    af_serving *s = gateway(NULL);
    add_http(s, "dead-0", af_test_closed_port());
    add_http(s, "live-0", af_test_http_receiver_port(rx));
    af_chat_message msg = {"user", "hi", AF_LEN_NUL};
    af_chat_request req = {
        .model = "gpt", .messages = &msg, .n_messages = 1, .temperature = NAN, .stream = true};
    for (int i = 0; i < 4; i++) {
        af_test_chat c;
        af_test_chat_init(&c);
        af_chat_call_release(start(s, &req, &c));
        af_test_chat_wait(&c);
        assert_int_equal(c.rc, 0);
        assert_string_equal(c.res.instance_id, "live-0");
        af_test_chat_clear(&c);
    }
    af_instance_stats is[2];
    assert_int_equal(af_serving_instances(s, is, 2), 2);
    assert_true(is[0].failures >= 1);
    assert_int_equal(is[1].served, 4);
    af_serving_free(s);
    af_test_http_receiver_stop(rx);
}

static void test_errors_cut_streams_cancel_deadline(void **state)
{
    (void)state;
    af_test_http_receiver *rx = NULL;
    assert_int_equal(af_test_http_receiver_start(NULL, &rx), 0);
    static const char err500[] = "{\"error\":{\"message\":\"CUDA out of memory\"}}";
    static const char cut[] = "data: {\"choices\":[{\"delta\":{\"content\":\"half\"}}]}\n\n";
    af_test_http_reply reps[4] = {
        {.status = 500, .body = err500, .body_len = sizeof(err500) - 1},
        {.headers = "Content-Type: text/event-stream\r\n",
         .body = cut,
         .body_len = sizeof(cut) - 1},
        {.headers = "Content-Type: text/event-stream\r\n",
         .body = sse,
         .body_len = sizeof(sse) - 1,
         .delay_ms = 5000},
        {.headers = "Content-Type: text/event-stream\r\n",
         .body = sse,
         .body_len = sizeof(sse) - 1,
         .delay_ms = 5000},
    };
    af_test_http_receiver_script(rx, reps, 4);
    af_serving *s = gateway(NULL);
    add_http(s, "vllm-0", af_test_http_receiver_port(rx));
    af_chat_message msg = {"user", "hi", AF_LEN_NUL};
    af_chat_request req = {
        .model = "gpt", .messages = &msg, .n_messages = 1, .temperature = NAN, .stream = true};

    af_test_chat a;
    af_test_chat_init(&a);
    af_chat_call_release(start(s, &req, &a));
    af_test_chat_wait(&a);
    assert_int_equal(a.rc, -EIO);
    assert_string_equal(a.res.error_type, "backend_error");
    assert_string_equal(a.res.error,
                        "backend returned HTTP 500: backend error: CUDA out of memory");

    af_test_chat b;
    af_test_chat_init(&b);
    af_chat_call_release(start(s, &req, &b));
    af_test_chat_wait(&b);
    assert_int_equal(b.rc, -EIO);
    assert_string_equal((const char *)b.text.data, "half"); /* relayed before the cut */
    assert_non_null(strstr(b.res.error, "[DONE]"));

    af_test_chat c;
    af_test_chat_init(&c);
    af_chat_call *call = start(s, &req, &c);
    assert_int_equal(af_test_http_receiver_wait(rx, 3, 5000), 3);
    af_serving_chat_cancel(call);
    af_test_chat_wait(&c);
    assert_int_equal(c.rc, -ECANCELED);
    af_chat_call_release(call);

    af_test_chat d;
    af_test_chat_init(&d);
    req.timeout_ms = 150;
    af_chat_call_release(start(s, &req, &d));
    af_test_chat_wait(&d);
    assert_int_equal(d.rc, AF_ETIMEDOUT);
    assert_string_equal(d.res.error_type, "timeout");
    af_serving_free(s);
    af_test_http_receiver_stop(rx);
    af_test_chat_clear(&a);
    af_test_chat_clear(&b);
    af_test_chat_clear(&c);
    af_test_chat_clear(&d);
}

/* Many streams at once over the one transfer thread of a backend: each gets its own
 * connection (they overlap, none waits for another) and every one completes. */
static void test_many_concurrent_http_streams(void **state)
{
    (void)state;
    enum { N = 60 }; /* within the receiver's listen backlog (64), also under sanitizers */
    af_test_http_receiver *rx = NULL;
    assert_int_equal(af_test_http_receiver_start(NULL, &rx), 0);
    af_test_http_reply *reps = calloc(N, sizeof(*reps));
    for (int i = 0; i < N; i++)
        reps[i] = (af_test_http_reply){.headers = "Content-Type: text/event-stream\r\n",
                                       .body = sse,
                                       .body_len = sizeof(sse) - 1,
                                       .delay_ms = 300};
    af_test_http_receiver_script(rx, reps, N);
    af_serving *s = gateway(NULL);
    add_http(s, "vllm-0", af_test_http_receiver_port(rx));
    af_chat_message msg = {"user", "hi", AF_LEN_NUL};
    af_chat_request req = {
        .model = "gpt", .messages = &msg, .n_messages = 1, .temperature = NAN, .stream = true};
    af_test_chat *cs = calloc(N, sizeof(*cs));
    for (int i = 0; i < N; i++) {
        af_test_chat_init(&cs[i]);
        af_chat_call_release(start(s, &req, &cs[i]));
    }
    for (int i = 0; i < N; i++) {
        af_test_chat_wait(&cs[i]);
        assert_int_equal(cs[i].rc, 0);
        assert_string_equal((const char *)cs[i].text.data, "Paris.");
        af_test_chat_clear(&cs[i]);
    }
    assert_int_equal(af_test_http_receiver_requests(rx), N);
    assert_true(af_test_http_receiver_connections(rx) > N / 2);
    af_serving_free(s);
    af_test_http_receiver_stop(rx);
    free(cs);
    free(reps);
}

/* A one-shot SSE server that sends the first event, then waits (10 s at most) until the test
 * saw its delta before sending the rest: an answer buffered anywhere would never show it. */
typedef struct drip {
    int lfd;
    uint16_t port;
    atomic_bool seen_first, waited_ok;
    pthread_t thread;
} drip;

static void send_all(int fd, const char *s)
{
    size_t len = strlen(s), off = 0;
    while (off < len) {
        ssize_t k = send(fd, s + off, len - off, MSG_NOSIGNAL);
        if (k <= 0)
            return;
        off += (size_t)k;
    }
}

/* Reads the request: headers, then Content-Length bytes of body. */
static void read_request(int fd)
{
    char buf[8192];
    size_t got = 0;
    char *end = NULL;
    while (!end && got < sizeof(buf) - 1) {
        ssize_t k = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (k <= 0)
            return;
        got += (size_t)k;
        buf[got] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    const char *cl = end ? strcasestr(buf, "content-length:") : NULL;
    size_t want = cl ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
    size_t have = end ? got - (size_t)(end + 4 - buf) : 0;
    while (have < want) {
        ssize_t k = recv(fd, buf, sizeof(buf), 0);
        if (k <= 0)
            return;
        have += (size_t)k;
    }
}

static void *drip_main(void *arg)
{
    drip *d = arg;
    int fd = accept(d->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    read_request(fd);
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
                 "data: {\"choices\":[{\"delta\":{\"content\":\"first \"}}]}\n\n");
    uint64_t end = af_monotonic_ns() + UINT64_C(10000000000);
    while (!atomic_load(&d->seen_first) && af_monotonic_ns() < end) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&d->waited_ok, atomic_load(&d->seen_first));
    send_all(fd, "data: {\"choices\":[{\"delta\":{\"content\":\"second\"},\"finish_reason\":"
                 "\"stop\"}]}\n\ndata: [DONE]\n\n");
    close(fd);
    return NULL;
}

static void drip_start(drip *d)
{
    memset(d, 0, sizeof(*d));
    d->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_int_equal(bind(d->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(d->lfd, 4), 0);
    assert_int_equal(getsockname(d->lfd, (struct sockaddr *)&a, &al), 0);
    d->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&d->thread, NULL, drip_main, d), 0);
}

static void on_delta_seen(void *ctx, const char *text, size_t len)
{
    af_test_chat *c = ctx;
    af_test_chat_on_delta(c, text, len);
    atomic_store(&((drip *)c->user)->seen_first, true);
}

static void test_deltas_relayed_as_they_arrive(void **state)
{
    (void)state;
    drip *d = calloc(1, sizeof(*d));
    drip_start(d);
    af_serving *s = gateway(NULL);
    add_http(s, "drip-0", d->port);
    af_chat_message msg = {"user", "hi", AF_LEN_NUL};
    af_chat_request req = {
        .model = "gpt", .messages = &msg, .n_messages = 1, .temperature = NAN, .stream = true};
    af_test_chat c;
    af_test_chat_init(&c);
    c.user = d;
    static const af_chat_callbacks seen_cbs = {on_delta_seen, af_test_chat_on_done};
    af_chat_call *call = NULL;
    assert_int_equal(af_serving_chat_start(s, NULL, &req, &seen_cbs, &c, &call, NULL, 0), 0);
    af_chat_call_release(call);
    af_test_chat_wait(&c);
    pthread_join(d->thread, NULL);
    close(d->lfd);
    assert_true(atomic_load(&d->waited_ok)); /* the first delta came before the rest was sent */
    assert_int_equal(c.rc, 0);
    assert_string_equal((const char *)c.text.data, "first second");
    af_serving_free(s);
    af_test_chat_clear(&c);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streamed_chat),
        cmocka_unit_test(test_whole_text_completion),
        cmocka_unit_test(test_refused_is_retried_elsewhere),
        cmocka_unit_test(test_errors_cut_streams_cancel_deadline),
        cmocka_unit_test(test_deltas_relayed_as_they_arrive),
        cmocka_unit_test(test_many_concurrent_http_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
