/*
 * A chat call's run: pick an instance (least in flight among those up and not behind an open
 * breaker, ties rotating), open the CLIENT span, start the backend's stream, relay deltas,
 * retry on another instance when a connection failed before any byte, then price it, record
 * the cost, end the spans and answer through on_done. Span attributes follow the OpenTelemetry
 * GenAI semantic conventions (docs/serving.md lists them).
 */
#define AF_LOG_COMPONENT "serving"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/log.h"
#include "agentaflow/trace_helpers.h"
#include "agentaflow/trace_sdk.h"
#include "agentaflow/tracing.h"
#include "serving/chat_int.h"
#include "util/str.h"
#include "util/timeutil.h"

typedef struct af__serving_instance instance;

const char *af__chat_error_type(int rc)
{
    switch (rc) {
    case 0:
        return "";
    case AF_ETIMEDOUT:
        return "timeout";
    case AF_EFULL:
        return "overloaded";
    case -EHOSTDOWN:
        return "backend_unavailable";
    case AF_ENOTFOUND:
        return "model_not_found";
    case AF_ESHUTDOWN:
        return "shutdown";
    case AF_EPARSE:
        return "invalid_response";
    case -ECANCELED:
        return "cancelled";
    case -EIO:
        return "backend_error";
    default:
        return "internal_error";
    }
}

static const char *op_name(const af__stream *st)
{
    return st->op == AF_CHAT_OP_CHAT ? "chat" : "text_completion";
}

/*
 * Caller holds mu. The instance of c's model with the fewest calls in flight among those up,
 * not behind an open breaker and below max_load; ties go to the first after the model's
 * chat cursor. 0, -EHOSTDOWN (none up) or AF_EFULL (all at max_load).
 */
static int pick_instance(af_serving *s, struct af__serving_model *m, uint64_t now, instance **out)
{
    instance *best = NULL;
    size_t best_i = 0, up = 0, n = s->n_insts;
    for (size_t k = 0; k < n; k++) {
        size_t i = (m->chat_cursor + k) % n;
        instance *in = s->insts[i];
        if (in->m != m || !in->route.available || !af__breaker_allows(&in->breaker, now))
            continue;
        up++;
        if (in->route.max_load && in->route.load >= in->route.max_load)
            continue;
        if (!best || in->route.load < best->route.load) {
            best = in;
            best_i = i;
        }
    }
    if (!best)
        return up ? AF_EFULL : -EHOSTDOWN;
    m->chat_cursor = best_i + 1;
    *out = best;
    return 0;
}

/* gen_ai.input.messages: [{"role", "parts": [{"type": "text", "content"}]}]. */
static void input_messages_json(const af__stream *st, af_buf *b)
{
    af__buf_putc(b, '[');
    size_t n = st->op == AF_CHAT_OP_CHAT ? st->n_messages : 1;
    for (size_t i = 0; i < n; i++) {
        const char *role = st->op == AF_CHAT_OP_CHAT ? st->messages[i].role : "user";
        const char *text = st->op == AF_CHAT_OP_CHAT ? st->messages[i].content : st->prompt;
        size_t len = st->op == AF_CHAT_OP_CHAT ? st->messages[i].content_len : st->prompt_len;
        af__buf_puts(b, i ? ",{\"role\":" : "{\"role\":");
        af__buf_json_string(b, role, strlen(role));
        af__buf_puts(b, ",\"parts\":[{\"type\":\"text\",\"content\":");
        af__buf_json_string(b, text, len);
        af__buf_puts(b, "}]}");
    }
    af__buf_putc(b, ']');
    af__buf_terminate(b);
}

static void start_client_span(struct af_chat_call *c, const instance *in)
{
    af_serving *s = c->s;
    const af__stream *st = &c->st;
    af_span_context parent;
    af_span_get_context(c->span, &parent);
    char name[160];
    snprintf(name, sizeof(name), "%s %s", op_name(st), c->m->id);
    c->client =
        af_span_start_child(af__serving_tracer_for(s, AF_TRACE_MODEL_INFERENCE_REQUESTS), name,
                            AF_SPAN_KIND_CLIENT, &parent,
                            AF_ATTRS(AF_STR("gen_ai.operation.name", op_name(st)),
                                     AF_STR("gen_ai.provider.name", c->provider),
                                     AF_STR("gen_ai.request.model", c->m->id),
                                     AF_INT("gen_ai.request.max_tokens", st->max_tokens),
                                     AF_STR("backend.instance", in->id),
                                     AF_STR("backend.kind", af_model_backend_kind(in->backend))));
    if (c->temperature_given)
        af_span_set_double(c->client, "gen_ai.request.temperature", st->temperature);
    if (in->backend->server_address[0]) {
        af_span_set_string(c->client, "server.address", in->backend->server_address);
        af_span_set_int(c->client, "server.port", in->backend->server_port);
    }
    if (c->capture && af_span_is_recording(c->client)) {
        af_buf b;
        af__buf_init(&b);
        input_messages_json(st, &b);
        if (!b.failed)
            af_span_set_string(c->client, "gen_ai.input.messages", (const char *)b.data);
        af__buf_clear(&b);
    }
    af_span_get_context(c->client, &c->st.trace_context);
}

/* A backend without streaming hooks (a custom af_model_backend_ops): its blocking infer runs
 * on a thread of its own (1 MiB of stack: the backend's infer, then the gateway's completion
 * work), answered as one delta. Such backends are for tests and embedding; the built-in ones
 * all stream without a thread per call. */
static void *blocking_main(void *arg)
{
    struct af_chat_call *c = arg;
    af__stream *st = &c->st;
    af_model_backend *b = c->inst->backend; /* set before the thread started; stable */
    af_backend_request r = {.request_id = c->id,
                            .model_id = c->m->id,
                            .model_name = c->m->name,
                            .input = st->input,
                            .input_len = st->input_len,
                            .max_tokens = st->max_tokens,
                            .trace_context = &st->trace_context,
                            .deadline_ns = st->deadline_ns};
    af_backend_result res = {0};
    int rc = af_model_backend_infer(b, &r, &res);
    if (rc == 0 && atomic_load(&st->cancelled))
        rc = -ECANCELED;
    if (rc == 0 && res.output_len)
        af__stream_delta(st, res.output, res.output_len);
    af__stream_end end = {.input_tokens = rc ? -1 : res.prompt_tokens,
                          .output_tokens = rc ? -1 : res.completion_tokens,
                          .error = res.error[0] ? res.error : NULL};
    af__stream_done(st, rc, &end);
    free(res.output);
    return NULL;
}

static int start_blocking(struct af_chat_call *c)
{
    pthread_attr_t attr;
    pthread_t t;
    if (pthread_attr_init(&attr) != 0)
        return -ENOMEM;
    pthread_attr_setstacksize(&attr, 1u << 20);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = -pthread_create(&t, &attr, blocking_main, c);
    pthread_attr_destroy(&attr);
    return rc;
}

void af__chat_dispatch(struct af_chat_call *c)
{
    af_serving *s = c->s;
    uint64_t now = af_monotonic_ns();
    char msg[192];
    if (now >= c->st.deadline_ns) {
        af__stream_end end = {-1, -1, NULL, NULL, NULL, "timeout: deadline passed before a call"};
        af__chat_finish(c, AF_ETIMEDOUT, &end);
        return;
    }
    instance *in = NULL;
    pthread_mutex_lock(&s->mu);
    int rc = pick_instance(s, c->m, now, &in);
    if (rc == 0) {
        in->route.load++;
        af__breaker_on_send(&in->breaker, now);
        c->inst = in;
        c->attempts++;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc) {
        if (rc == AF_EFULL)
            snprintf(msg, sizeof(msg), "overloaded: every instance of model %s is at max load",
                     c->m->id);
        else
            snprintf(msg, sizeof(msg), "backend unavailable: no instance of model %s is up",
                     c->m->id);
        af__stream_end end = {-1, -1, NULL, NULL, NULL, msg};
        af__chat_finish(c, rc, &end);
        return;
    }
    const af__stream_ops *ops = in->backend->sops;
    af__strlcpy(c->provider,
                in->backend->provider[0] ? in->backend->provider
                : ops                    ? ops->provider
                                         : af_model_backend_kind(in->backend),
                sizeof(c->provider));
    af__strlcpy(c->instance_id, in->id, sizeof(c->instance_id));
    start_client_span(c, in);
    c->attempt_t0 = af_monotonic_ns();
    rc = ops ? ops->start(in->backend->self, &c->st) : start_blocking(c);
    if (rc) {
        af__stream_end end = {-1, -1, NULL, NULL, NULL, af_strerror(rc)};
        af__stream_done(&c->st, rc, &end);
    }
}

void af__stream_delta(af__stream *st, const char *text, size_t len)
{
    struct af_chat_call *c = (struct af_chat_call *)st;
    if (!c->first_ns) {
        c->first_ns = af_monotonic_ns();
        af_span_add_event(c->client, "gen_ai.response.first_chunk", NULL, 0);
    }
    c->relayed += len;
    if (st->stream)
        c->cb.on_delta(c->ctx, text, len);
    if (!st->stream || c->capture)
        af__buf_append(&c->text, text, len);
}

/* Ends the attempt's CLIENT span with the response attributes. */
static void end_client_span(struct af_chat_call *c, int rc, const af__stream_end *end,
                            int64_t in_tokens, int64_t out_tokens)
{
    af_span sp = c->client;
    af_span_get_context(sp, &c->client_ctx);
    if (!af_span_is_recording(sp)) {
        af_span_end(sp);
        return;
    }
    const char *reason = rc == 0 ? (end->finish_reason ? end->finish_reason : "stop") : NULL;
    af_span_set_attrs(
        sp, AF_ATTRS(AF_STR("gen_ai.response.model",
                            end->response_model ? end->response_model : c->m->id),
                     AF_STR("gen_ai.response.id", end->response_id ? end->response_id : c->id)));
    if (in_tokens >= 0)
        af_span_set_int(sp, "gen_ai.usage.input_tokens", in_tokens);
    if (out_tokens >= 0)
        af_span_set_int(sp, "gen_ai.usage.output_tokens", out_tokens);
    if (reason)
        af_span_set_attrs(sp, AF_ATTRS(AF_STR_ARRAY("gen_ai.response.finish_reasons",
                                                    (const char *const[]){reason}, 1)));
    if (c->first_ns >= c->attempt_t0 && c->first_ns)
        af_span_set_double(sp, "gen_ai.response.time_to_first_chunk",
                           (double)(c->first_ns - c->attempt_t0) / 1e9);
    if (rc == 0 && c->capture) {
        af_buf b;
        af__buf_init(&b);
        af__buf_puts(&b, "[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":");
        af__buf_json_string(&b, (const char *)c->text.data, c->text.len);
        af__buf_puts(&b, "}],\"finish_reason\":");
        af__buf_json_string(&b, reason, strlen(reason));
        af__buf_puts(&b, "}]");
        af__buf_terminate(&b);
        if (!b.failed)
            af_span_set_string(sp, "gen_ai.output.messages", (const char *)b.data);
        af__buf_clear(&b);
    }
    if (rc) {
        const char *msg = end->error ? end->error : af_strerror(rc);
        af_span_set_string(sp, "error.type", af__chat_error_type(rc));
        af_span_record_error(sp, af__chat_error_type(rc), msg, NULL, NULL, 0);
    }
    af_span_end(sp);
}

void af__stream_done(af__stream *st, int rc, const af__stream_end *end)
{
    static const af__stream_end none = {-1, -1, NULL, NULL, NULL, NULL};
    struct af_chat_call *c = (struct af_chat_call *)st;
    af_serving *s = c->s;
    if (!end)
        end = &none;
    uint64_t now = af_monotonic_ns();
    pthread_mutex_lock(&s->mu);
    instance *in = c->inst;
    c->inst = NULL;
    if (rc == -ECANCELED && c->shutdown)
        rc = AF_ESHUTDOWN;
    bool counted = rc != -ECANCELED && rc != AF_ESHUTDOWN;
    in->route.load--;
    if (rc == 0) {
        in->served++;
        af__route_observe(&in->route, (double)(now - c->attempt_t0) / 1e6);
    } else if (counted) {
        in->failures++;
    }
    if (counted)
        af__breaker_on_result(&in->breaker, rc == 0, now, s->opts.breaker_failures,
                              (uint64_t)s->opts.breaker_cooldown_ms * 1000000u);
    else
        in->breaker.probing = false; /* a cancelled probe proves nothing: allow another */
    bool retry = rc == -EHOSTDOWN && c->relayed == 0 && c->attempts <= s->opts.connect_retries &&
                 !s->stopping && !atomic_load(&st->cancelled);
    pthread_mutex_unlock(&s->mu);
    c->backend_ns += now - c->attempt_t0;
    int64_t in_tokens = end->input_tokens, out_tokens = end->output_tokens;
    if (rc == 0 && in_tokens < 0)
        in_tokens = af_serving_input_tokens(st->input_len);
    if (out_tokens < 0 && (rc == 0 || c->relayed))
        out_tokens = (int64_t)((c->relayed + 3) / 4);
    end_client_span(c, rc, end, in_tokens, out_tokens);
    if (retry) {
        af__chat_dispatch(c);
        return;
    }
    af__stream_end fixed = *end;
    fixed.input_tokens = in_tokens;
    fixed.output_tokens = out_tokens;
    af__chat_finish(c, rc, &fixed);
}

/* USD for the call: token prices, the per-1k price of the blocking API, GPU time. */
static double price(const struct af__serving_model *m, int64_t in, int64_t out, uint64_t ns)
{
    return (double)in * m->input_per_million / 1e6 + (double)out * m->output_per_million / 1e6 +
           m->price_per_1k_tokens * (double)(in + out) / 1000.0 +
           m->gpu_price_per_hour * (double)ns / 3.6e12;
}

static void record_cost(struct af_chat_call *c, int64_t in, int64_t out, double cost)
{
    af_serving *s = c->s;
    if (!s->opts.costs || (in <= 0 && out <= 0))
        return;
    af_span_context ctx;
    af_span_get_context(c->span, &ctx);
    af_cost_entry e = {.id = c->id,
                       .operation = op_name(&c->st),
                       .model_id = c->m->id,
                       .duration_ns = c->backend_ns,
                       .tokens_used = in + out,
                       .gpu_hours =
                           c->m->gpu_price_per_hour > 0 ? (double)c->backend_ns / 3.6e12 : 0,
                       .cost = cost};
    int rc = af_cost_record(s->opts.costs, &ctx, &e);
    if (rc)
        af_log(AF_LOG_WARN, "serving: cost of %s not recorded: %s", c->id, af_strerror(rc));
}

static void count_outcome(af_serving *s, int rc)
{
    if (rc == 0)
        return;
    pthread_mutex_lock(&s->mu);
    s->errors++;
    if (rc == AF_ETIMEDOUT)
        s->timeouts++;
    else if (rc == AF_EFULL)
        s->overloaded++;
    pthread_mutex_unlock(&s->mu);
}

void af__chat_finish(struct af_chat_call *c, int rc, const af__stream_end *end)
{
    af_serving *s = c->s;
    const af__stream *st = &c->st;
    int64_t in = end->input_tokens > 0 ? end->input_tokens : 0;
    int64_t out = end->output_tokens > 0 ? end->output_tokens : 0;
    double cost = price(c->m, in, out, c->backend_ns);
    record_cost(c, in, out, cost);
    count_outcome(s, rc);

    af_chat_result res;
    memset(&res, 0, sizeof(res));
    af__strlcpy(res.id, c->id, sizeof(res.id));
    af__strlcpy(res.response_model, end->response_model ? end->response_model : c->m->id,
                sizeof(res.response_model));
    af__strlcpy(res.provider, c->provider[0] ? c->provider : "agentaflow", sizeof(res.provider));
    af__strlcpy(res.instance_id, c->instance_id, sizeof(res.instance_id));
    af__buf_terminate(&c->text);
    if (!st->stream && !c->text.failed) {
        static char empty[1];
        res.content = c->text.data ? (char *)c->text.data : empty;
        res.content_len = c->text.len;
    }
    const char *reason = rc == 0 ? (end->finish_reason ? end->finish_reason : "stop")
                                 : (rc == -ECANCELED ? "cancelled" : "error");
    af__strlcpy(res.finish_reason, reason, sizeof(res.finish_reason));
    res.input_tokens = in;
    res.output_tokens = out;
    res.created_s = c->created_s;
    res.duration_ns = af_monotonic_ns() - c->t0;
    res.time_to_first_token_ns = c->first_ns ? c->first_ns - c->t0 : 0;
    res.cost_usd = cost;
    if (c->attempts)
        res.client_span = c->client_ctx;
    if (rc) {
        af__strlcpy(res.error_type, af__chat_error_type(rc), sizeof(res.error_type));
        af__strlcpy(res.error, end->error ? end->error : af_strerror(rc), sizeof(res.error));
    }

    af_span_set_attrs(c->span, AF_ATTRS(AF_STR("gen_ai.response.id", res.id),
                                        AF_STR("gen_ai.response.model", res.response_model),
                                        AF_INT("gen_ai.usage.input_tokens", in),
                                        AF_INT("gen_ai.usage.output_tokens", out),
                                        AF_DOUBLE("agentaflow.cost.usd", cost)));
    if (c->instance_id[0])
        af_span_set_string(c->span, "backend.instance", c->instance_id);
    if (c->first_ns)
        af_span_set_double(c->span, "gen_ai.response.time_to_first_chunk",
                           (double)res.time_to_first_token_ns / 1e9);
    if (rc)
        af_span_set_string(c->span, "error.type", res.error_type);
    af_operation_end(c->span, rc, rc ? res.error_type : NULL, rc ? res.error : NULL);

    if (rc == 0 && c->cacheable && !c->key.failed && !c->text.failed) {
        af__cached val = {(char *)c->text.data, c->text.len, in, out};
        if (af__cache_put(s->cache, c->m->id, (const char *)c->key.data, c->key.len, st->max_tokens,
                          &val, af_monotonic_ns()))
            af_log(AF_LOG_WARN, "serving: no memory to cache the answer to %s", c->id);
    }
    c->cb.on_done(c->ctx, rc, &res);
    af__chat_retire(c);
    af__chat_call_unref(c);
}
