/*
 * The chat / text-completion seam (af_serving_chat_*): an OpenAI-shaped request answered
 * through callbacks. This first implementation serves the request over af_serving_infer on
 * the caller's thread (the prompt is the messages as "role: content" lines) and reports the
 * answer as one delta; see serving.h for the contract.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serving/serving_int.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/timeutil.h"

struct af_chat_call {
    atomic_int refs;
    atomic_bool cancelled;
};

static void set_err(char *err, size_t len, const char *msg)
{
    if (err && len)
        af__strlcpy(err, msg, len);
}

static size_t len_of(const char *s, size_t len)
{
    return s && len == AF_LEN_NUL ? strlen(s) : (s ? len : 0);
}

/* 0 or -EINVAL with the reason in err. */
static int check_request(const af_chat_request *req, const af_chat_callbacks *cb, char *err,
                         size_t err_len)
{
    const char *msg = NULL;
    if (!req)
        msg = "request cannot be NULL";
    else if (!cb || !cb->on_done)
        msg = "on_done callback is required";
    else if (req->stream && !cb->on_delta)
        msg = "on_delta callback is required when streaming";
    else if (!req->model || !req->model[0])
        msg = "model: expected a registered model id";
    else if (req->operation == AF_CHAT_OP_CHAT && (!req->messages || !req->n_messages))
        msg = "messages: expected at least one message";
    else if (req->operation == AF_CHAT_OP_TEXT_COMPLETION && !req->prompt)
        msg = "prompt: expected a string";
    else if (req->operation != AF_CHAT_OP_CHAT && req->operation != AF_CHAT_OP_TEXT_COMPLETION)
        msg = "operation: expected chat or text_completion";
    for (size_t i = 0; !msg && req->operation == AF_CHAT_OP_CHAT && i < req->n_messages; i++)
        if (!req->messages[i].role || !req->messages[i].role[0])
            msg = "messages[].role: expected a non-empty string";
    if (!msg && !isnan(req->temperature) && (req->temperature < 0 || req->temperature > 2))
        msg = "temperature: expected a number from 0 to 2";
    if (msg) {
        set_err(err, err_len, msg);
        return -EINVAL;
    }
    return 0;
}

/* The prompt as one text: the text completion's prompt, or "role: content\n" per message. */
static int flatten_prompt(const af_chat_request *req, af_buf *b)
{
    if (req->operation == AF_CHAT_OP_TEXT_COMPLETION) {
        af__buf_append(b, req->prompt, len_of(req->prompt, req->prompt_len));
    } else {
        for (size_t i = 0; i < req->n_messages; i++) {
            const af_chat_message *m = &req->messages[i];
            af__buf_puts(b, m->role);
            af__buf_append(b, ": ", 2);
            af__buf_append(b, m->content, len_of(m->content, m->content_len));
            af__buf_putc(b, '\n');
        }
    }
    if (b->len == 0)
        af__buf_putc(b, ' ');
    af__buf_terminate(b);
    return b->failed ? -ENOMEM : 0;
}

static const char *chat_error_type(int rc)
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

int af_serving_chat_start(af_serving *s, const af_span_context *parent, const af_chat_request *req,
                          const af_chat_callbacks *cb, void *ctx, af_chat_call **out, char *err,
                          size_t err_len)
{
    if (out)
        *out = NULL;
    if (!s || !out) {
        set_err(err, err_len, "gateway and out are required");
        return -EINVAL;
    }
    int rc = check_request(req, cb, err, err_len);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->mu);
    bool known = false;
    for (size_t i = 0; i < s->n_models && !known; i++)
        known = strcmp(s->models[i]->id, req->model) == 0;
    pthread_mutex_unlock(&s->mu);
    if (!known) {
        if (err && err_len)
            snprintf(err, err_len, "model: unknown model %s", req->model);
        return AF_ENOTFOUND;
    }
    af_buf prompt;
    af__buf_init(&prompt);
    af_chat_call *call = calloc(1, sizeof(*call));
    if (!call || flatten_prompt(req, &prompt)) {
        free(call);
        af__buf_clear(&prompt);
        set_err(err, err_len, "out of memory");
        return -ENOMEM;
    }
    atomic_init(&call->refs, 2);
    *out = call;

    af_inference_request ir = {.model_id = req->model,
                               .input = (const char *)prompt.data,
                               .input_len = prompt.len,
                               .max_tokens = req->max_tokens,
                               .timeout_ms = req->timeout_ms};
    af_inference_response resp;
    uint64_t t0 = af_monotonic_ns();
    rc = af_serving_infer(s, parent, &ir, &resp);
    af__buf_clear(&prompt);
    if (rc == 0 && atomic_load(&call->cancelled))
        rc = -ECANCELED;

    af_chat_result res;
    memset(&res, 0, sizeof(res));
    bool chat = req->operation == AF_CHAT_OP_CHAT;
    snprintf(res.id, sizeof(res.id), "%s-%.48s", chat ? "chatcmpl" : "cmpl", resp.request_id);
    af__strlcpy(res.response_model, req->model, sizeof(res.response_model));
    af__strlcpy(res.provider, "agentaflow", sizeof(res.provider));
    af__strlcpy(res.instance_id, resp.instance_id, sizeof(res.instance_id));
    res.created_s = af_now_ns() / 1000000000u;
    res.duration_ns = af_monotonic_ns() - t0;
    res.time_to_first_token_ns = res.duration_ns;
    res.cache_hit = resp.cache_hit;
    if (rc == 0) {
        res.input_tokens = resp.prompt_tokens;
        res.output_tokens = resp.completion_tokens;
        res.cost_usd = resp.cost;
        af__strlcpy(res.finish_reason, "stop", sizeof(res.finish_reason));
        if (req->stream)
            cb->on_delta(ctx, resp.output, resp.output_len);
        else {
            res.content = resp.output;
            res.content_len = resp.output_len;
        }
    } else {
        af__strlcpy(res.finish_reason, "error", sizeof(res.finish_reason));
        af__strlcpy(res.error_type, chat_error_type(rc), sizeof(res.error_type));
        af__strlcpy(res.error, rc == -ECANCELED ? "request cancelled" : resp.error,
                    sizeof(res.error));
    }
    cb->on_done(ctx, rc, &res);
    af_inference_response_free(&resp);
    af_chat_call_release(call);
    return 0;
}

void af_serving_chat_cancel(af_chat_call *call)
{
    if (call)
        atomic_store(&call->cancelled, true);
}

void af_chat_call_release(af_chat_call *call)
{
    if (call && atomic_fetch_sub(&call->refs, 1) == 1)
        free(call);
}

size_t af_serving_models_list(af_serving *s, af_serving_model_entry *out, size_t cap)
{
    if (!s)
        return 0;
    pthread_mutex_lock(&s->mu);
    size_t n = s->n_models;
    for (size_t i = 0; i < n && i < cap; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        af__strlcpy(out[i].id, s->models[i]->id, sizeof(out[i].id));
        out[i].created_s = s->models[i]->loaded_at_ns / 1000000000u;
        af__strlcpy(out[i].owned_by, "agentaflow", sizeof(out[i].owned_by));
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}
