/*
 * The chat / text-completion seam (af_serving_chat_*): checks and copies the request, answers
 * deterministic repeats from the response cache and hands the rest to chat_run.c, which
 * routes each call to an instance's streaming backend. See serving.h for the contract and
 * chat_int.h for the call's state.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/trace_helpers.h"
#include "agentaflow/trace_sdk.h"
#include "agentaflow/tracing.h"
#include "serving/chat_int.h"
#include "util/str.h"
#include "util/timeutil.h"

static void set_err(char *err, size_t len, const char *msg)
{
    if (err && len)
        af__strlcpy(err, msg, len);
}

static size_t len_of(const char *s, size_t len)
{
    if (!s)
        return 0;
    return len == AF_LEN_NUL ? strlen(s) : len;
}

/* 0 or -EINVAL with the reason, naming the field, in err. */
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
    else if (req->operation != AF_CHAT_OP_CHAT && req->operation != AF_CHAT_OP_TEXT_COMPLETION)
        msg = "operation: expected chat or text_completion";
    else if (req->operation == AF_CHAT_OP_CHAT && (!req->messages || !req->n_messages))
        msg = "messages: expected at least one message";
    else if (req->operation == AF_CHAT_OP_TEXT_COMPLETION && !req->prompt)
        msg = "prompt: expected a string";
    for (size_t i = 0; !msg && req->operation == AF_CHAT_OP_CHAT && i < req->n_messages; i++)
        if (!req->messages[i].role || !req->messages[i].role[0])
            msg = "messages[].role: expected a non-empty string";
    if (!msg && !isnan(req->temperature) && !(req->temperature >= 0 && req->temperature <= 2))
        msg = "temperature: expected a number from 0 to 2";
    if (msg) {
        set_err(err, err_len, msg);
        return -EINVAL;
    }
    return 0;
}

/* Bytes the copies of the request need: strings with their NULs, the flattened input. */
static size_t copy_size(const af_chat_request *req)
{
    size_t n = strlen(req->model) + 1 + (req->user ? strlen(req->user) + 1 : 0);
    if (req->operation == AF_CHAT_OP_TEXT_COMPLETION)
        return n + 2 * (len_of(req->prompt, req->prompt_len) + 1);
    for (size_t i = 0; i < req->n_messages; i++) {
        const af_chat_message *m = &req->messages[i];
        size_t rl = strlen(m->role), cl = len_of(m->content, m->content_len);
        n += 2 * (rl + cl) + 6; /* copies with NULs, and "role: content\n" */
    }
    return n + 1;
}

static char *put(char **p, const char *s, size_t len)
{
    char *at = *p;
    if (len)
        memcpy(at, s, len);
    at[len] = '\0';
    *p += len + 1;
    return at;
}

/* Copies the request into c (one allocation for the strings). 0 or -ENOMEM. */
static int copy_request(struct af_chat_call *c, const af_chat_request *req)
{
    size_t n = copy_size(req);
    c->strings = malloc(n);
    if (req->operation == AF_CHAT_OP_CHAT)
        c->msgs = calloc(req->n_messages, sizeof(*c->msgs));
    if (!c->strings || (req->operation == AF_CHAT_OP_CHAT && !c->msgs))
        return -ENOMEM;
    char *p = c->strings;
    af__stream *st = &c->st;
    st->op = req->operation;
    st->model = put(&p, req->model, strlen(req->model));
    st->user = req->user ? put(&p, req->user, strlen(req->user)) : NULL;
    if (req->operation == AF_CHAT_OP_TEXT_COMPLETION) {
        st->prompt_len = len_of(req->prompt, req->prompt_len);
        st->prompt = put(&p, req->prompt, st->prompt_len);
        st->input = st->prompt;
        st->input_len = st->prompt_len;
        return 0;
    }
    for (size_t i = 0; i < req->n_messages; i++) {
        const af_chat_message *m = &req->messages[i];
        size_t cl = len_of(m->content, m->content_len);
        c->msgs[i].role = put(&p, m->role, strlen(m->role));
        c->msgs[i].content = put(&p, m->content ? m->content : "", cl);
        c->msgs[i].content_len = cl;
    }
    st->messages = c->msgs;
    st->n_messages = req->n_messages;
    char *in = p;
    for (size_t i = 0; i < req->n_messages; i++) {
        size_t rl = strlen(c->msgs[i].role);
        memcpy(p, c->msgs[i].role, rl);
        p += rl;
        memcpy(p, ": ", 2);
        p += 2;
        memcpy(p, c->msgs[i].content, c->msgs[i].content_len);
        p += c->msgs[i].content_len;
        *p++ = '\n';
    }
    *p = '\0';
    st->input = in;
    st->input_len = (size_t)(p - in);
    return 0;
}

static void key_put(af_buf *b, const char *s, size_t len)
{
    uint64_t l = len;
    af__buf_append(b, &l, sizeof(l));
    af__buf_append(b, s, len);
}

/* The normalised request for the cache: operation, then each message's role and content (or
 * the prompt), each length-prefixed; the model and max_tokens are keyed by the cache. */
static void build_key(struct af_chat_call *c)
{
    const af__stream *st = &c->st;
    af__buf_putc(&c->key, (char)st->op);
    if (st->op == AF_CHAT_OP_TEXT_COMPLETION) {
        key_put(&c->key, st->prompt, st->prompt_len);
        return;
    }
    for (size_t i = 0; i < st->n_messages; i++) {
        key_put(&c->key, st->messages[i].role, strlen(st->messages[i].role));
        key_put(&c->key, st->messages[i].content, st->messages[i].content_len);
    }
}

static void call_free(struct af_chat_call *c)
{
    af__buf_clear(&c->text);
    af__buf_clear(&c->key);
    free(c->strings);
    free(c->msgs);
    free(c);
}

void af__chat_call_unref(struct af_chat_call *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1)
        call_free(c);
}

/* Answers from the cache when c may be and the answer is there: on_done now, true. */
static bool answer_from_cache(struct af_chat_call *c)
{
    af_serving *s = c->s;
    af__cached hit = {0};
    if (!c->cacheable || c->key.failed ||
        af__cache_get(s->cache, c->m->id, (const char *)c->key.data, c->key.len, c->st.max_tokens,
                      af_monotonic_ns(), &hit) != 1)
        return false;
    pthread_mutex_lock(&s->mu);
    s->cache_hits++;
    pthread_mutex_unlock(&s->mu);
    af_span_set_bool(c->span, "cache.hit", true);
    af_chat_result res;
    memset(&res, 0, sizeof(res));
    af__strlcpy(res.id, c->id, sizeof(res.id));
    af__strlcpy(res.response_model, c->m->id, sizeof(res.response_model));
    af__strlcpy(res.provider, "agentaflow.cache", sizeof(res.provider));
    res.content = hit.output;
    res.content_len = hit.output_len;
    af__strlcpy(res.finish_reason, "stop", sizeof(res.finish_reason));
    res.input_tokens = hit.prompt_tokens;
    res.output_tokens = hit.completion_tokens;
    res.created_s = c->created_s;
    res.duration_ns = af_monotonic_ns() - c->t0;
    res.cache_hit = true;
    af_span_set_attrs(c->span, AF_ATTRS(AF_INT("gen_ai.usage.input_tokens", hit.prompt_tokens),
                                        AF_INT("gen_ai.usage.output_tokens", hit.completion_tokens),
                                        AF_DOUBLE("agentaflow.cost.usd", 0.0)));
    af_operation_end(c->span, 0, NULL, NULL);
    c->cb.on_done(c->ctx, 0, &res);
    free(hit.output);
    return true;
}

/* Registers c as in progress. 0, AF_EFULL or AF_ESHUTDOWN (message in err). */
static int admit(struct af_chat_call *c, const af_chat_request *req, char *err, size_t err_len)
{
    af_serving *s = c->s;
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_models && !c->m; i++)
        if (strcmp(s->models[i]->id, req->model) == 0)
            c->m = s->models[i];
    if (!c->m)
        rc = AF_ENOTFOUND;
    else if (s->stopping)
        rc = AF_ESHUTDOWN;
    else if (s->n_calls >= s->opts.max_chat_calls)
        rc = AF_EFULL;
    if (rc == 0) {
        c->next = s->calls;
        if (s->calls)
            s->calls->prev = c;
        s->calls = c;
        s->n_calls++;
        s->requests++;
        c->created_s = af_now_ns() / 1000000000u;
        snprintf(c->id, sizeof(c->id), "%s-%" PRIx64 "%06" PRIx64,
                 req->operation == AF_CHAT_OP_CHAT ? "chatcmpl" : "cmpl", c->created_s,
                 ++s->chat_seq);
    } else if (rc == AF_EFULL) {
        s->overloaded++;
    }
    uint32_t n = s->n_calls;
    pthread_mutex_unlock(&s->mu);
    if (rc == AF_ENOTFOUND && err && err_len)
        snprintf(err, err_len, "model: unknown model %s", req->model);
    else if (rc == AF_EFULL && err && err_len)
        snprintf(err, err_len, "overloaded: %u chat calls in progress", n);
    else if (rc == AF_ESHUTDOWN)
        set_err(err, err_len, "gateway shut down");
    return rc;
}

void af__chat_retire(struct af_chat_call *c)
{
    af_serving *s = c->s;
    pthread_mutex_lock(&s->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_calls--;
    pthread_cond_broadcast(&s->calls_cv);
    pthread_mutex_unlock(&s->mu);
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
    struct af_chat_call *c = calloc(1, sizeof(*c));
    if (!c || copy_request(c, req) != 0) {
        if (c)
            call_free(c);
        set_err(err, err_len, "out of memory");
        return -ENOMEM;
    }
    c->s = s;
    c->cb = *cb;
    c->ctx = ctx;
    c->t0 = af_monotonic_ns();
    atomic_init(&c->refs, 2);
    af__buf_init(&c->text);
    af__buf_init(&c->key);
    if ((rc = admit(c, req, err, err_len)) != 0) {
        call_free(c);
        return rc;
    }
    af__stream *st = &c->st;
    st->model_name = c->m->name;
    st->max_tokens = req->max_tokens ? req->max_tokens : c->m->default_max_tokens;
    st->temperature = req->temperature;
    st->stream = req->stream;
    st->include_usage = req->include_usage || req->stream;
    uint32_t timeout_ms = req->timeout_ms ? req->timeout_ms : s->opts.request_timeout_ms;
    st->deadline_ns = c->t0 + (uint64_t)timeout_ms * 1000000u;
    c->capture = s->opts.capture_content ||
                 (s->opts.tracing &&
                  af_tracing_config_of(s->opts.tracing)->components.model_serving.capture_content);
    c->temperature_given = !isnan(req->temperature);
    c->cacheable =
        !req->stream && c->temperature_given && req->temperature == 0 && s->opts.cache_ttl_ms > 0;
    if (c->cacheable)
        build_key(c);

    c->span = af_trace_model_serving(af__serving_tracer_for(s, AF_TRACE_MODEL_INFERENCE_REQUESTS),
                                     parent, "inference", c->m->id);
    af_span_set_attrs(c->span,
                      AF_ATTRS(AF_STR("model.name", c->m->name), AF_STR("request.id", c->id),
                               AF_STR("gen_ai.operation.name",
                                      st->op == AF_CHAT_OP_CHAT ? "chat" : "text_completion"),
                               AF_STR("gen_ai.request.model", c->m->id),
                               AF_BOOL("gen_ai.request.stream", st->stream)));
    *out = c;
    if (answer_from_cache(c)) {
        af__chat_retire(c);
        af__chat_call_unref(c);
        return 0;
    }
    if (c->cacheable) {
        pthread_mutex_lock(&s->mu);
        s->cache_misses++;
        pthread_mutex_unlock(&s->mu);
    }
    af_span_set_bool(c->span, "cache.hit", false);
    af__chat_dispatch(c);
    return 0;
}

void af_serving_chat_cancel(af_chat_call *c)
{
    if (!c || atomic_exchange(&c->st.cancelled, true))
        return;
    af_serving *s = c->s;
    pthread_mutex_lock(&s->mu);
    struct af__serving_instance *inst = c->inst;
    pthread_mutex_unlock(&s->mu);
    /* Instances live as long as the gateway, which outlives every call in progress. */
    if (inst && inst->backend->sops && inst->backend->sops->wake)
        inst->backend->sops->wake(inst->backend->self);
}

void af_chat_call_release(af_chat_call *c)
{
    af__chat_call_unref(c);
}

void af__serving_chat_shutdown(af_serving *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    for (struct af_chat_call *c = s->calls; c; c = c->next) {
        c->shutdown = true;
        atomic_store(&c->st.cancelled, true);
    }
    bool any = s->n_calls > 0;
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; any && i < s->n_insts; i++) {
        const af_model_backend *b = s->insts[i]->backend;
        if (b->sops && b->sops->wake)
            b->sops->wake(b->self);
    }
    pthread_mutex_lock(&s->mu);
    while (s->n_calls)
        pthread_cond_wait(&s->calls_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
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
        af__strlcpy(out[i].owned_by, s->models[i]->owned_by, sizeof(out[i].owned_by));
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}
