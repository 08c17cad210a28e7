/*
 * The serving gateway: registry and the per-request path (the bounded request queue and
 * batcher threads are in batcher.c, the JSON renderers in serving_json.c). One mutex (mu)
 * guards the registry, the queue and every request's state; requests are answered through a
 * per-request condition variable on the monotonic clock.
 */
#define AF_LOG_COMPONENT "serving"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/log.h"
#include "agentaflow/trace_helpers.h"
#include "agentaflow/trace_sdk.h"
#include "agentaflow/tracing.h"
#include "serving/serving_int.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/timeutil.h"

typedef struct af__serving_model model;
typedef struct af__serving_instance instance;
typedef struct af__serving_item item;

/* Asked per operation: a reload may flip the component's toggle. */
af_tracer *af__serving_tracer_for(const af_serving *s, af_trace_component c)
{
    return s->opts.tracing ? af_tracing_tracer_for(s->opts.tracing, c) : s->tracer;
}

void af_serving_opts_init(af_serving_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_batch_size = 32;
    o->max_wait_time_ms = 100;
    o->min_batch_size = 1;
    o->cache_ttl_ms = 300000;
    o->cache_max_entries = 10000;
    o->max_queue = 1024;
    o->workers = 1;
    o->request_timeout_ms = 30000;
    o->routing = AF_ROUTE_ROUND_ROBIN;
    o->max_chat_calls = 4096;
    o->breaker_failures = 5;
    o->breaker_cooldown_ms = 10000;
    o->connect_retries = 2;
}

static void set_err(char *err, size_t len, const char *msg)
{
    if (err && len)
        af__strlcpy(err, msg, len);
}

/* ---------------------------------------------------------------------------------------- */
/* Lifecycle and registry.                                                                   */

int af_serving_new(const af_serving_opts *opts, af_serving **out)
{
    af_serving_opts def;
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!opts) {
        af_serving_opts_init(&def);
        opts = &def;
    }
    if (!opts->max_batch_size || opts->max_batch_size > 1024 || !opts->min_batch_size ||
        opts->min_batch_size > opts->max_batch_size || !opts->max_queue || !opts->workers ||
        opts->workers > AF__SERVING_MAX_WORKERS)
        return -EINVAL;
    int rc = -ENOMEM;
    bool mu_ok = false, cv_ok = false, calls_cv_ok = false;
    af_serving *s = calloc(1, sizeof(*s));
    if (!s)
        goto fail;
    s->opts = *opts;
    if (!s->opts.request_timeout_ms)
        s->opts.request_timeout_ms = 30000;
    if (!s->opts.max_chat_calls)
        s->opts.max_chat_calls = 4096;
    if (!s->opts.breaker_failures)
        s->opts.breaker_failures = 5;
    if (!s->opts.breaker_cooldown_ms)
        s->opts.breaker_cooldown_ms = 10000;
    s->tracer = opts->tracer;
    rc = af__cache_new(opts->cache_max_entries ? opts->cache_max_entries : 10000,
                       (uint64_t)opts->cache_ttl_ms * 1000000u, &s->cache);
    if (rc)
        goto fail;
    if ((rc = -pthread_mutex_init(&s->mu, NULL)) != 0)
        goto fail;
    mu_ok = true;
    if ((rc = af__cond_init_monotonic(&s->work_cv)) != 0)
        goto fail;
    cv_ok = true;
    if ((rc = af__cond_init_monotonic(&s->calls_cv)) != 0)
        goto fail;
    calls_cv_ok = true;
    for (uint32_t i = 0; i < opts->workers; i++) {
        if ((rc = -pthread_create(&s->threads[i], NULL, af__serving_batcher_main, s)) != 0)
            goto fail;
        /* thread names are at most 15 characters; workers past 9999 share a name */
        char name[16];
        if (i == 0)
            snprintf(name, sizeof(name), "af-batcher");
        else
            snprintf(name, sizeof(name), "af-batcher-%u", (unsigned)(i % 10000));
        pthread_setname_np(s->threads[i], name);
        s->n_threads++;
    }
    *out = s;
    return 0;
fail:
    if (s) {
        if (s->n_threads) {
            pthread_mutex_lock(&s->mu);
            s->stopping = true;
            pthread_cond_broadcast(&s->work_cv);
            pthread_mutex_unlock(&s->mu);
            for (uint32_t i = 0; i < s->n_threads; i++)
                pthread_join(s->threads[i], NULL);
        }
        if (cv_ok)
            pthread_cond_destroy(&s->work_cv);
        if (calls_cv_ok)
            pthread_cond_destroy(&s->calls_cv);
        if (mu_ok)
            pthread_mutex_destroy(&s->mu);
        af__cache_free(s->cache);
        free(s);
    }
    return rc;
}

static void model_free(model *m)
{
    if (!m)
        return;
    free(m->id);
    free(m->name);
    free(m->version);
    free(m->framework);
    free(m->owned_by);
    free(m);
}

void af_serving_free(af_serving *s)
{
    if (!s)
        return;
    af__serving_chat_shutdown(s);
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->work_cv);
    while (s->q_head) {
        item *it = s->q_head;
        af__serving_queue_remove(s, it);
        af__serving_finish_item(it, AF_ESHUTDOWN, "gateway shut down");
    }
    pthread_mutex_unlock(&s->mu);
    for (uint32_t i = 0; i < s->n_threads; i++)
        pthread_join(s->threads[i], NULL);
    for (size_t i = 0; i < s->n_insts; i++) {
        af_model_backend_free(s->insts[i]->backend);
        free(s->insts[i]->id);
        free(s->insts[i]->endpoint);
        free(s->insts[i]);
    }
    for (size_t i = 0; i < s->n_models; i++)
        model_free(s->models[i]);
    free(s->insts);
    free(s->models);
    af__cache_free(s->cache);
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->calls_cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static model *find_model(af_serving *s, const char *id)
{
    for (size_t i = 0; i < s->n_models; i++)
        if (strcmp(s->models[i]->id, id) == 0)
            return s->models[i];
    return NULL;
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

int af_serving_register_model(af_serving *s, const af_span_context *parent, const af_model_info *mi,
                              char *err, size_t err_len)
{
    if (!s)
        return -EINVAL;
    af_span span = af_trace_model_serving(af__serving_tracer_for(s, AF_TRACE_MODEL_LOADING), parent,
                                          "register_model", mi && mi->id ? mi->id : "");
    const char *msg = NULL;
    if (!mi)
        msg = "model cannot be NULL";
    else if (!mi->id || !mi->id[0])
        msg = "model ID cannot be empty";
    else if (!mi->name || !mi->name[0])
        msg = "model name cannot be empty";
    if (msg) {
        set_err(err, err_len, msg);
        af_operation_end(span, -EINVAL, "invalid_argument", msg);
        return -EINVAL;
    }
    af_span_set_attrs(span, AF_ATTRS(AF_STR("model.name", mi->name),
                                     AF_STR("model.version", mi->version ? mi->version : ""),
                                     AF_STR("model.framework", mi->framework ? mi->framework : ""),
                                     AF_INT("model.size_mb", (int64_t)mi->memory_mb)));
    model *m = calloc(1, sizeof(*m));
    int rc = -ENOMEM;
    if (!m)
        goto fail;
    m->id = af__strdup(mi->id);
    m->name = af__strdup(mi->name);
    m->version = af__strdup(mi->version ? mi->version : "");
    m->framework = af__strdup(mi->framework ? mi->framework : "");
    m->memory_mb = mi->memory_mb;
    m->price_per_1k_tokens = mi->price_per_1k_tokens > 0 ? mi->price_per_1k_tokens : 0;
    m->gpu_price_per_hour = mi->gpu_price_per_hour > 0 ? mi->gpu_price_per_hour : 0;
    m->input_per_million = mi->input_usd_per_million > 0 ? mi->input_usd_per_million : 0;
    m->output_per_million = mi->output_usd_per_million > 0 ? mi->output_usd_per_million : 0;
    m->owned_by = af__strdup(mi->owned_by && mi->owned_by[0] ? mi->owned_by : "agentaflow");
    m->default_max_tokens = mi->default_max_tokens ? mi->default_max_tokens : 256;
    m->loaded_at_ns = af_now_ns();
    if (!m->id || !m->name || !m->version || !m->framework || !m->owned_by)
        goto fail;
    pthread_mutex_lock(&s->mu);
    if (find_model(s, mi->id)) {
        rc = -EEXIST;
    } else if ((rc = grow((void **)&s->models, &s->cap_models, s->n_models, sizeof(model *))) ==
               0) {
        s->models[s->n_models++] = m;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc)
        goto fail;
    af_span_add_event(
        span, "model.loaded",
        AF_ATTRS(AF_STR("model.id", mi->id), AF_INT("model.size_mb", (int64_t)mi->memory_mb)));
    af_operation_end(span, 0, NULL, NULL);
    return 0;
fail:
    model_free(m);
    msg = rc == -EEXIST ? "model already registered" : af_strerror(rc);
    set_err(err, err_len, msg);
    af_operation_end(span, rc, rc == -EEXIST ? "already_exists" : "out_of_memory", msg);
    return rc;
}

int af_serving_add_instance(af_serving *s, const char *model_id, const af_instance_opts *o,
                            af_model_backend *backend)
{
    if (!s || !model_id || !o || !o->id || !o->id[0] || !backend) {
        af_model_backend_free(backend);
        return -EINVAL;
    }
    instance *in = calloc(1, sizeof(*in));
    int rc = -ENOMEM;
    if (!in)
        goto fail;
    in->id = af__strdup(o->id);
    in->endpoint = af__strdup(o->endpoint ? o->endpoint : "");
    if (!in->id || !in->endpoint)
        goto fail;
    in->backend = backend;
    in->route.available = true;
    in->route.max_load = o->max_load;
    pthread_mutex_lock(&s->mu);
    in->m = find_model(s, model_id);
    rc = in->m ? 0 : AF_ENOTFOUND;
    size_t same_model = 0;
    for (size_t i = 0; rc == 0 && i < s->n_insts; i++) {
        if (strcmp(s->insts[i]->id, o->id) == 0)
            rc = -EEXIST;
        same_model += s->insts[i]->m == in->m;
    }
    if (rc == 0 && same_model >= AF__SERVING_MAX_MODEL_INSTANCES)
        rc = -ENOSPC;
    if (rc == 0)
        rc = grow((void **)&s->insts, &s->cap_insts, s->n_insts, sizeof(instance *));
    if (rc == 0)
        s->insts[s->n_insts++] = in;
    pthread_mutex_unlock(&s->mu);
    if (rc)
        goto fail;
    return 0;
fail:
    if (in) {
        free(in->id);
        free(in->endpoint);
        free(in);
    }
    af_model_backend_free(backend);
    return rc;
}

int af_serving_set_instance_available(af_serving *s, const char *instance_id, bool available)
{
    if (!s || !instance_id)
        return -EINVAL;
    int rc = AF_ENOTFOUND;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_insts; i++) {
        if (strcmp(s->insts[i]->id, instance_id) == 0) {
            s->insts[i]->route.available = available;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Requests.                                                                                 */

static int fail_request(af_serving *s, af_span span, af_inference_response *resp, int rc,
                        const char *type, const char *msg)
{
    af__strlcpy(resp->error, msg, sizeof(resp->error));
    pthread_mutex_lock(&s->mu);
    if (rc == AF_EFULL)
        s->overloaded++;
    else if (rc == AF_ETIMEDOUT)
        s->timeouts++;
    s->errors++;
    pthread_mutex_unlock(&s->mu);
    af_operation_end(span, rc, type, msg);
    return rc;
}

static const char *error_type(int rc)
{
    switch (rc) {
    case AF_ETIMEDOUT:
        return "timeout";
    case AF_EFULL:
        return "overloaded";
    case -EHOSTDOWN:
        return "backend_down";
    case AF_ENOTFOUND:
        return "unknown_model";
    case AF_ESHUTDOWN:
        return "shutdown";
    default:
        return "backend_error";
    }
}

void af__serving_item_free(item *it)
{
    pthread_cond_destroy(&it->cv);
    free(it->input);
    free(it);
}

/* A request's queue item, holding a copy of the input. NULL when out of memory. */
static item *item_new(model *m, const char *id, const char *input, size_t in_len,
                      uint32_t max_tokens, const af_span_context *ctx, uint32_t timeout_ms)
{
    item *it = calloc(1, sizeof(*it));
    if (!it)
        return NULL;
    if (af__cond_init_monotonic(&it->cv) != 0) {
        free(it);
        return NULL;
    }
    it->input = malloc(in_len);
    if (!it->input) {
        af__serving_item_free(it);
        return NULL;
    }
    memcpy(it->input, input, in_len);
    it->m = m;
    af__strlcpy(it->id, id, sizeof(it->id));
    it->input_len = in_len;
    it->max_tokens = max_tokens;
    it->ctx = *ctx;
    it->enq_wall = af_now_ns();
    it->enq_mono = af_monotonic_ns();
    it->deadline = it->enq_mono + (uint64_t)timeout_ms * 1000000u;
    return it;
}

/* Looks the request up in the response cache. On a hit fills resp, ends span and returns
 * true; on a miss marks span and returns false. */
static bool answer_from_cache(af_serving *s, af_span span, const af_span_context *ctx,
                              const model *m, const af_inference_request *req, size_t in_len,
                              uint32_t max_tokens, uint64_t t0, af_inference_response *resp)
{
    af_span look =
        af_span_start_child(af__serving_tracer_for(s, AF_TRACE_MODEL_INFERENCE_REQUESTS),
                            "model_serving.cache_lookup", AF_SPAN_KIND_INTERNAL, ctx, NULL, 0);
    af__cached hit = {0};
    int h = af__cache_get(s->cache, m->id, req->input, in_len, max_tokens, af_monotonic_ns(), &hit);
    af_span_set_bool(look, "cache.hit", h == 1);
    af_span_end(look);
    if (h != 1) {
        af_span_set_bool(span, "cache.hit", false);
        return false;
    }
    resp->output = hit.output;
    resp->output_len = hit.output_len;
    resp->prompt_tokens = hit.prompt_tokens;
    resp->completion_tokens = hit.completion_tokens;
    resp->cache_hit = true;
    resp->completed_at_ns = af_now_ns();
    resp->latency_ns = af_monotonic_ns() - t0;
    pthread_mutex_lock(&s->mu);
    s->cache_hits++;
    pthread_mutex_unlock(&s->mu);
    af_span_set_attrs(span, AF_ATTRS(AF_BOOL("cache.hit", true), AF_INT("batch.size", 0),
                                     AF_INT("tokens.prompt", hit.prompt_tokens),
                                     AF_INT("tokens.completion", hit.completion_tokens),
                                     AF_DOUBLE("cost.amount", 0.0)));
    af_operation_end(span, 0, NULL, NULL);
    return true;
}

/*
 * Queues it and waits until a batcher (or this thread) answers it or its deadline passes.
 * 0 when answered: the result is in it and the caller frees it. Otherwise AF_ESHUTDOWN,
 * AF_EFULL or AF_ETIMEDOUT with msg set, and it is freed or left to the batcher.
 */
static int enqueue_and_wait(af_serving *s, item *it, uint32_t timeout_ms, char *msg, size_t msg_len)
{
    pthread_mutex_lock(&s->mu);
    s->cache_misses++;
    if (s->stopping || s->q_len >= s->opts.max_queue) {
        bool stopping = s->stopping;
        uint32_t qlen = s->q_len;
        pthread_mutex_unlock(&s->mu);
        af__serving_item_free(it);
        if (stopping) {
            snprintf(msg, msg_len, "gateway shut down");
            return AF_ESHUTDOWN;
        }
        snprintf(msg, msg_len, "overloaded: %u requests queued", qlen);
        return AF_EFULL;
    }
    it->prev = s->q_tail;
    if (s->q_tail)
        s->q_tail->next = it;
    else
        s->q_head = it;
    s->q_tail = it;
    it->queued = true;
    s->q_len++;
    if (s->q_len == 1 && s->opts.min_batch_size <= 1 && s->busy < s->opts.workers) {
        /* Nothing else is waiting, a batch of one is due at once and a batcher is free: it
         * would dispatch exactly this request right now. Run it on this thread instead of
         * waking the batcher and waiting to be woken back, two thread hand-offs that cost
         * tens of microseconds when the other core sleeps. It counts against the same
         * concurrency bound (busy < workers) as the batchers. */
        item *batch[1];
        uint64_t wake;
        if (af__serving_take_batch(s, batch, af_monotonic_ns(), &wake) == 1 && batch[0] == it) {
            s->in_flight++;
            s->busy++;
            pthread_mutex_unlock(&s->mu);
            af__serving_run_batch(s, batch, 1);
            pthread_mutex_lock(&s->mu);
            s->busy--;
            pthread_cond_signal(&s->work_cv); /* a slot is free for queued work */
        }
    }
    if (!it->done)
        pthread_cond_signal(&s->work_cv);

    struct timespec dl = af__timespec_of_ns(it->deadline);
    while (!it->done) {
        if (pthread_cond_timedwait(&it->cv, &s->mu, &dl) == ETIMEDOUT && !it->done)
            break;
    }
    if (!it->done) {
        if (it->queued) {
            af__serving_queue_remove(s, it);
            pthread_mutex_unlock(&s->mu);
            af__serving_item_free(it);
        } else {
            /* A batcher holds it: leave it to the batcher, which frees it when done. */
            it->abandoned = true;
            pthread_mutex_unlock(&s->mu);
        }
        snprintf(msg, msg_len, "timeout after %u ms", timeout_ms);
        return AF_ETIMEDOUT;
    }
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* Turns an answered item into resp: cost, cache fill, cost record and span. Takes the
 * backend's output (into resp, or frees it on error); the caller frees it. */
static int answer_from_item(af_serving *s, af_span span, item *it, uint64_t t0,
                            af_inference_response *resp)
{
    const model *m = it->m;
    int rc = it->rc;
    af_backend_result res = it->res;
    resp->batch_size = it->batch_size;
    af__strlcpy(resp->instance_id, it->instance_id, sizeof(resp->instance_id));
    uint64_t backend_ns = it->backend_ns;
    if (resp->instance_id[0])
        af_span_set_string(span, "backend.instance", resp->instance_id);
    af_span_set_int(span, "batch.size", resp->batch_size);
    if (rc != 0) {
        free(res.output);
        return fail_request(s, span, resp, rc, error_type(rc),
                            res.error[0] ? res.error : af_strerror(rc));
    }
    if (res.prompt_tokens < 0)
        res.prompt_tokens = 0;
    if (res.completion_tokens < 0)
        res.completion_tokens = 0;
    resp->output = res.output;
    resp->output_len = res.output_len;
    resp->prompt_tokens = res.prompt_tokens;
    resp->completion_tokens = res.completion_tokens;
    double gpu_hours = (double)backend_ns / 3.6e12;
    resp->cost =
        m->price_per_1k_tokens * (double)(res.prompt_tokens + res.completion_tokens) / 1000.0 +
        m->gpu_price_per_hour * gpu_hours;
    af__cached val = {res.output, res.output_len, res.prompt_tokens, res.completion_tokens};
    if (af__cache_put(s->cache, m->id, it->input, it->input_len, it->max_tokens, &val,
                      af_monotonic_ns()))
        af_log(AF_LOG_WARN, "serving: no memory to cache the answer to %s", resp->request_id);
    if (s->opts.costs) {
        af_cost_entry e = {.id = resp->request_id,
                           .operation = "inference",
                           .model_id = m->id,
                           .duration_ns = backend_ns,
                           .tokens_used = res.prompt_tokens + res.completion_tokens,
                           .gpu_hours = gpu_hours,
                           .cost = resp->cost};
        int crc = af_cost_record(s->opts.costs, &it->ctx, &e);
        if (crc)
            af_log(AF_LOG_WARN, "serving: cost of %s not recorded: %s", resp->request_id,
                   af_strerror(crc));
    }
    resp->completed_at_ns = af_now_ns();
    resp->latency_ns = af_monotonic_ns() - t0;
    af_span_set_attrs(span, AF_ATTRS(AF_INT("tokens.prompt", res.prompt_tokens),
                                     AF_INT("tokens.completion", res.completion_tokens),
                                     AF_DOUBLE("cost.amount", resp->cost)));
    af_operation_end(span, 0, NULL, NULL);
    return 0;
}

int af_serving_infer(af_serving *s, const af_span_context *parent, const af_inference_request *req,
                     af_inference_response *resp)
{
    if (!resp)
        return -EINVAL;
    memset(resp, 0, sizeof(*resp));
    if (!s || !req)
        return -EINVAL;
    uint64_t t0 = af_monotonic_ns();
    af_span span =
        af_trace_model_serving(af__serving_tracer_for(s, AF_TRACE_MODEL_INFERENCE_REQUESTS), parent,
                               "inference", req->model_id ? req->model_id : "");
    pthread_mutex_lock(&s->mu);
    uint64_t seq = ++s->next_id;
    s->requests++;
    pthread_mutex_unlock(&s->mu);
    if (req->id && req->id[0])
        af__strlcpy(resp->request_id, req->id, sizeof(resp->request_id));
    else
        snprintf(resp->request_id, sizeof(resp->request_id), "req-%" PRIu64, seq);
    af_span_set_string(span, "request.id", resp->request_id);
    size_t in_len =
        req->input && req->input_len == AF_LEN_NUL ? strlen(req->input) : req->input_len;
    if (!req->model_id || !req->model_id[0])
        return fail_request(s, span, resp, -EINVAL, "invalid_argument", "model ID cannot be empty");
    if (!req->input || in_len == 0)
        return fail_request(s, span, resp, -EINVAL, "invalid_argument",
                            "request input cannot be empty");
    uint32_t max_tokens = req->max_tokens ? req->max_tokens : 64;

    pthread_mutex_lock(&s->mu);
    model *m = find_model(s, req->model_id);
    pthread_mutex_unlock(&s->mu);
    if (!m) {
        char msg[160];
        snprintf(msg, sizeof(msg), "unknown model %s", req->model_id);
        return fail_request(s, span, resp, AF_ENOTFOUND, "unknown_model", msg);
    }
    af_span_set_string(span, "model.name", m->name);
    af_span_context ctx;
    af_span_get_context(span, &ctx);

    if (answer_from_cache(s, span, &ctx, m, req, in_len, max_tokens, t0, resp))
        return 0;

    uint32_t timeout_ms = req->timeout_ms ? req->timeout_ms : s->opts.request_timeout_ms;
    item *it = item_new(m, resp->request_id, req->input, in_len, max_tokens, &ctx, timeout_ms);
    if (!it)
        return fail_request(s, span, resp, -ENOMEM, "out_of_memory", af_strerror(-ENOMEM));
    char msg[96];
    int rc = enqueue_and_wait(s, it, timeout_ms, msg, sizeof(msg));
    if (rc != 0)
        return fail_request(s, span, resp, rc, error_type(rc), msg);
    rc = answer_from_item(s, span, it, t0, resp);
    af__serving_item_free(it);
    return rc;
}

void af_inference_response_clear(af_inference_response *r)
{
    if (!r)
        return;
    free(r->output);
    r->output = NULL;
    r->output_len = 0;
}

/* The released ABI's name (AGENTAFLOW_0), kept for services outside this tree. */
void af_inference_response_free(af_inference_response *r)
{
    af_inference_response_clear(r);
}

size_t af_serving_clean_expired_cache(af_serving *s)
{
    return s ? af__cache_clean_expired(s->cache, af_monotonic_ns()) : 0;
}

void af_serving_stats_get(af_serving *s, af_serving_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!s)
        return;
    uint64_t hits;
    af__cache_stats(s->cache, &out->cache_entries, &hits, &out->cache_expired);
    pthread_mutex_lock(&s->mu);
    out->total_models = (uint32_t)s->n_models;
    out->total_instances = (uint32_t)s->n_insts;
    for (size_t i = 0; i < s->n_insts; i++)
        out->available_instances += s->insts[i]->route.available;
    out->pending_requests = s->q_len;
    out->in_flight = s->in_flight;
    out->requests = s->requests;
    out->cache_hits = s->cache_hits;
    out->cache_misses = s->cache_misses;
    out->batches = s->batches;
    out->overloaded = s->overloaded;
    out->timeouts = s->timeouts;
    out->errors = s->errors;
    pthread_mutex_unlock(&s->mu);
}

size_t af_serving_instances(af_serving *s, af_instance_stats *out, size_t cap)
{
    if (!s)
        return 0;
    pthread_mutex_lock(&s->mu);
    size_t n = s->n_insts;
    for (size_t i = 0; i < n && i < cap; i++) {
        const instance *in = s->insts[i];
        af_instance_stats *o = &out[i];
        memset(o, 0, sizeof(*o));
        af__strlcpy(o->id, in->id, sizeof(o->id));
        af__strlcpy(o->model_id, in->m->id, sizeof(o->model_id));
        af__strlcpy(o->kind, af_model_backend_kind(in->backend), sizeof(o->kind));
        o->available = in->route.available;
        o->load = in->route.load;
        o->max_load = in->route.max_load;
        o->avg_latency_ms = in->route.avg_latency_ms;
        o->served = in->served;
        o->failures = in->failures;
        af__strlcpy(o->breaker, af__breaker_state_name(in->breaker.state), sizeof(o->breaker));
        o->consecutive_failures = in->breaker.consecutive_failures;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}
