/*
 * The serving gateway: registry, bounded request queue, batcher threads and the per-request
 * path. One mutex (mu) guards the registry, the queue and every request's state; requests
 * are answered through a per-request condition variable on the monotonic clock.
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

#define MAX_WORKERS 64
#define MAX_MODEL_INSTANCES 64 /* routing candidates live on the batcher's stack */

typedef struct model {
    char *id, *name, *version, *framework;
    uint64_t memory_mb;
    double price_per_1k_tokens, gpu_price_per_hour;
    uint64_t loaded_at_ns;
    size_t cursor; /* round-robin position among this model's instances */
    uint64_t mark; /* scan marker for the batcher */
} model;

typedef struct instance {
    char *id, *endpoint;
    model *m;
    af_model_backend *backend;
    af__route_inst route;
    uint64_t served, failures;
} instance;

typedef struct item {
    struct item *prev, *next; /* queue links while queued */
    model *m;
    char id[64];
    char *input; /* a copy, so a caller that timed out can return while a batcher holds it */
    size_t input_len;
    uint32_t max_tokens;
    af_span_context ctx; /* the inference span: parent of batch_wait and backend_call */
    uint64_t enq_mono, enq_wall, deadline;
    pthread_cond_t cv;
    bool queued, done, abandoned;
    /* result */
    int rc;
    af_backend_result res;
    uint32_t batch_size;
    char instance_id[64];
    uint64_t backend_ns;
} item;

struct af_serving {
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* queue changed or stopping */
    af_serving_opts opts;
    af_tracer *tracer; /* opts->tracer, used when there is no opts->tracing */
    af__cache *cache;
    model **models;
    size_t n_models, cap_models;
    instance **insts;
    size_t n_insts, cap_insts;
    item *q_head, *q_tail;
    uint32_t q_len, in_flight;
    uint32_t busy; /* batches running, on batchers or inline; at most opts.workers */
    uint64_t next_id, scan_mark;
    uint64_t requests, cache_hits, cache_misses, batches, overloaded, timeouts, errors;
    bool stopping;
    pthread_t threads[MAX_WORKERS];
    uint32_t n_threads;
};

/* Asked per operation: a reload may flip the component's toggle. */
static af_tracer *tracer_for(const af_serving *s, af_trace_component c)
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
}

static void set_err(char *err, size_t len, const char *msg)
{
    if (err && len)
        af__strlcpy(err, msg, len);
}

static struct timespec mono_ts(uint64_t ns)
{
    return (struct timespec){(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
}

/* ---------------------------------------------------------------------------------------- */
/* Batcher.                                                                                  */

static void queue_remove(af_serving *s, item *it)
{
    if (it->prev)
        it->prev->next = it->next;
    else
        s->q_head = it->next;
    if (it->next)
        it->next->prev = it->prev;
    else
        s->q_tail = it->prev;
    it->prev = it->next = NULL;
    it->queued = false;
    s->q_len--;
}

/*
 * Finds a model whose queued requests make a batch now (see serving.h) and moves up to
 * max_batch_size of them into batch[]. Returns the count, 0 with *wake set to the earliest
 * time a held batch becomes due (0 = nothing queued). Caller holds mu.
 */
static uint32_t take_batch(af_serving *s, item **batch, uint64_t now, uint64_t *wake)
{
    uint64_t wait_ns = (uint64_t)s->opts.max_wait_time_ms * 1000000u;
    uint64_t mark = ++s->scan_mark;
    *wake = 0;
    for (item *it = s->q_head; it; it = it->next) {
        model *m = it->m;
        if (m->mark == mark)
            continue;
        m->mark = mark;
        uint32_t count = 0;
        for (item *j = it; j && count < s->opts.max_batch_size; j = j->next)
            count += j->m == m;
        uint64_t due = it->enq_mono + wait_ns;
        if (count < s->opts.min_batch_size && now < due) {
            if (!*wake || due < *wake)
                *wake = due;
            continue;
        }
        uint32_t n = 0;
        item *j = it;
        while (j && n < count) {
            item *next = j->next;
            if (j->m == m) {
                queue_remove(s, j);
                batch[n++] = j;
            }
            j = next;
        }
        return n;
    }
    return 0;
}

static void finish_item(item *it, int rc, const char *msg)
{
    it->rc = rc;
    if (msg && !it->res.error[0])
        af__strlcpy(it->res.error, msg, sizeof(it->res.error));
    it->done = true;
    if (it->abandoned) {
        /* The caller gave up (timeout) and left the item to us. */
        free(it->res.output);
        free(it->input);
        pthread_cond_destroy(&it->cv);
        free(it);
        return;
    }
    pthread_cond_signal(&it->cv);
}

static void run_batch(af_serving *s, item **batch, uint32_t n)
{
    model *m = batch[0]->m;
    uint64_t now_wall = af_now_ns();
    /* batch_wait: from enqueue (caller's thread) to now, parented by the carried context. */
    for (uint32_t i = 0; i < n; i++) {
        af_span_start_opts so = {.kind = AF_SPAN_KIND_INTERNAL,
                                 .parent_mode = AF_PARENT_EXPLICIT,
                                 .parent = &batch[i]->ctx,
                                 .start_ns = batch[i]->enq_wall};
        af_span w = af_span_start(tracer_for(s, AF_TRACE_MODEL_INFERENCE_REQUESTS),
                                  "model_serving.batch_wait", &so);
        af_span_set_attrs(w, AF_ATTRS(AF_INT("batch.size", n), AF_STR("model.id", m->id)));
        af_span_end_at(w, now_wall);
    }

    pthread_mutex_lock(&s->mu);
    af__route_inst routes[MAX_MODEL_INSTANCES];
    instance *cand[MAX_MODEL_INSTANCES];
    size_t nc = 0;
    for (size_t i = 0; i < s->n_insts && nc < MAX_MODEL_INSTANCES; i++) {
        if (s->insts[i]->m == m) {
            cand[nc] = s->insts[i];
            routes[nc++] = s->insts[i]->route;
        }
    }
    int pick = af__route_pick(s->opts.routing, &m->cursor, routes, nc, n);
    instance *inst = pick >= 0 ? cand[pick] : NULL;
    if (inst)
        inst->route.load += n;
    s->batches++;
    pthread_mutex_unlock(&s->mu);

    if (!inst) {
        char msg[160];
        if (pick == AF_EFULL)
            snprintf(msg, sizeof(msg), "overloaded: every instance of model %s is at max load",
                     m->id);
        else if (nc == 0)
            snprintf(msg, sizeof(msg), "no instances available for model %s", m->id);
        else
            snprintf(msg, sizeof(msg), "backend down: no available instances for model %s", m->id);
        pthread_mutex_lock(&s->mu);
        for (uint32_t i = 0; i < n; i++) {
            s->in_flight--;
            finish_item(batch[i], pick, msg);
        }
        pthread_mutex_unlock(&s->mu);
        return;
    }

    const char *kind = af_model_backend_kind(inst->backend);
    for (uint32_t i = 0; i < n; i++) {
        item *it = batch[i];
        pthread_mutex_lock(&s->mu);
        bool skip = it->abandoned;
        pthread_mutex_unlock(&s->mu);
        uint64_t t0 = af_monotonic_ns();
        int rc;
        af_backend_result res = {0};
        af_span call = AF_SPAN_NONE;
        if (skip || t0 >= it->deadline) {
            rc = AF_ETIMEDOUT;
            snprintf(res.error, sizeof(res.error), "timeout: deadline passed while queued");
        } else {
            call = af_span_start_child(
                tracer_for(s, AF_TRACE_MODEL_INFERENCE_REQUESTS), "model_serving.backend_call",
                AF_SPAN_KIND_CLIENT, &it->ctx,
                AF_ATTRS(AF_STR("model.id", m->id), AF_STR("backend.instance", inst->id),
                         AF_STR("backend.kind", kind), AF_INT("batch.size", n)));
            af_span_context cctx;
            af_span_get_context(call, &cctx);
            af_backend_request req = {.request_id = it->id,
                                      .model_id = m->id,
                                      .model_name = m->name,
                                      .input = it->input,
                                      .input_len = it->input_len,
                                      .max_tokens = it->max_tokens,
                                      .trace_context = &cctx,
                                      .deadline_ns = it->deadline};
            rc = af_model_backend_infer(inst->backend, &req, &res);
            if (rc == 0)
                af_span_set_attrs(call,
                                  AF_ATTRS(AF_INT("tokens.prompt", res.prompt_tokens),
                                           AF_INT("tokens.completion", res.completion_tokens)));
            else if (!res.error[0])
                af__strlcpy(res.error, af_strerror(rc), sizeof(res.error));
            af_operation_end(call, rc, rc ? "backend_error" : NULL, rc ? res.error : NULL);
        }
        uint64_t dt = af_monotonic_ns() - t0;
        pthread_mutex_lock(&s->mu);
        inst->route.load--;
        if (rc == 0) {
            inst->served++;
            af__route_observe(&inst->route, (double)dt / 1e6);
        } else if (!skip) {
            inst->failures++;
        }
        s->in_flight--;
        it->res = res;
        it->batch_size = n;
        it->backend_ns = dt;
        af__strlcpy(it->instance_id, inst->id, sizeof(it->instance_id));
        finish_item(it, rc, NULL);
        pthread_mutex_unlock(&s->mu);
    }
}

static void *batcher_main(void *arg)
{
    af_serving *s = arg;
    item *batch[1024];
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        uint64_t wake = 0;
        uint32_t n = s->busy < s->opts.workers ? take_batch(s, batch, af_monotonic_ns(), &wake) : 0;
        if (n == 0) {
            if (wake) {
                struct timespec ts = mono_ts(wake);
                pthread_cond_timedwait(&s->work_cv, &s->mu, &ts);
            } else {
                pthread_cond_wait(&s->work_cv, &s->mu);
            }
            continue;
        }
        s->in_flight += n;
        s->busy++;
        pthread_mutex_unlock(&s->mu);
        run_batch(s, batch, n);
        pthread_mutex_lock(&s->mu);
        s->busy--;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
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
        opts->workers > MAX_WORKERS)
        return -EINVAL;
    int rc = -ENOMEM;
    bool mu_ok = false, cv_ok = false;
    af_serving *s = calloc(1, sizeof(*s));
    if (!s)
        goto fail;
    s->opts = *opts;
    if (!s->opts.request_timeout_ms)
        s->opts.request_timeout_ms = 30000;
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
    for (uint32_t i = 0; i < opts->workers; i++) {
        if ((rc = -pthread_create(&s->threads[i], NULL, batcher_main, s)) != 0)
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
    free(m);
}

void af_serving_free(af_serving *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->work_cv);
    while (s->q_head) {
        item *it = s->q_head;
        queue_remove(s, it);
        finish_item(it, AF_ESHUTDOWN, "gateway shut down");
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
    af_span span = af_trace_model_serving(tracer_for(s, AF_TRACE_MODEL_LOADING), parent,
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
    m->loaded_at_ns = af_now_ns();
    if (!m->id || !m->name || !m->version || !m->framework)
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
    if (rc == 0 && same_model >= MAX_MODEL_INSTANCES)
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

int af_serving_infer(af_serving *s, const af_span_context *parent, const af_inference_request *req,
                     af_inference_response *resp)
{
    if (!resp)
        return -EINVAL;
    memset(resp, 0, sizeof(*resp));
    if (!s || !req)
        return -EINVAL;
    uint64_t t0 = af_monotonic_ns();
    af_span span = af_trace_model_serving(tracer_for(s, AF_TRACE_MODEL_INFERENCE_REQUESTS), parent,
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

    /* Cache. */
    af_span look =
        af_span_start_child(tracer_for(s, AF_TRACE_MODEL_INFERENCE_REQUESTS),
                            "model_serving.cache_lookup", AF_SPAN_KIND_INTERNAL, &ctx, NULL, 0);
    af__cached hit = {0};
    int h = af__cache_get(s->cache, m->id, req->input, in_len, max_tokens, af_monotonic_ns(), &hit);
    af_span_set_bool(look, "cache.hit", h == 1);
    af_span_end(look);
    if (h == 1) {
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
        return 0;
    }
    af_span_set_bool(span, "cache.hit", false);

    /* Queue. */
    item *it = calloc(1, sizeof(*it));
    if (!it || af__cond_init_monotonic(&it->cv) != 0) {
        free(it);
        return fail_request(s, span, resp, -ENOMEM, "out_of_memory", af_strerror(-ENOMEM));
    }
    it->input = malloc(in_len);
    if (!it->input) {
        pthread_cond_destroy(&it->cv);
        free(it);
        return fail_request(s, span, resp, -ENOMEM, "out_of_memory", af_strerror(-ENOMEM));
    }
    memcpy(it->input, req->input, in_len);
    it->m = m;
    af__strlcpy(it->id, resp->request_id, sizeof(it->id));
    it->input_len = in_len;
    it->max_tokens = max_tokens;
    it->ctx = ctx;
    it->enq_wall = af_now_ns();
    it->enq_mono = af_monotonic_ns();
    uint32_t timeout_ms = req->timeout_ms ? req->timeout_ms : s->opts.request_timeout_ms;
    it->deadline = it->enq_mono + (uint64_t)timeout_ms * 1000000u;

    pthread_mutex_lock(&s->mu);
    s->cache_misses++;
    if (s->stopping || s->q_len >= s->opts.max_queue) {
        bool stopping = s->stopping;
        uint32_t qlen = s->q_len;
        pthread_mutex_unlock(&s->mu);
        pthread_cond_destroy(&it->cv);
        free(it->input);
        free(it);
        char msg[96];
        if (stopping)
            return fail_request(s, span, resp, AF_ESHUTDOWN, "shutdown", "gateway shut down");
        snprintf(msg, sizeof(msg), "overloaded: %u requests queued", qlen);
        return fail_request(s, span, resp, AF_EFULL, "overloaded", msg);
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
        if (take_batch(s, batch, af_monotonic_ns(), &wake) == 1 && batch[0] == it) {
            s->in_flight++;
            s->busy++;
            pthread_mutex_unlock(&s->mu);
            run_batch(s, batch, 1);
            pthread_mutex_lock(&s->mu);
            s->busy--;
            pthread_cond_signal(&s->work_cv); /* a slot is free for queued work */
        }
    }
    if (!it->done)
        pthread_cond_signal(&s->work_cv);

    struct timespec dl = mono_ts(it->deadline);
    while (!it->done) {
        if (pthread_cond_timedwait(&it->cv, &s->mu, &dl) == ETIMEDOUT && !it->done)
            break;
    }
    if (!it->done) {
        if (it->queued) {
            queue_remove(s, it);
            pthread_mutex_unlock(&s->mu);
            pthread_cond_destroy(&it->cv);
            free(it->input);
            free(it);
        } else {
            /* A batcher holds it: leave it to the batcher, which frees it when done. */
            it->abandoned = true;
            pthread_mutex_unlock(&s->mu);
        }
        char msg[96];
        snprintf(msg, sizeof(msg), "timeout after %u ms", timeout_ms);
        return fail_request(s, span, resp, AF_ETIMEDOUT, "timeout", msg);
    }
    pthread_mutex_unlock(&s->mu);

    int rc = it->rc;
    af_backend_result res = it->res;
    resp->batch_size = it->batch_size;
    af__strlcpy(resp->instance_id, it->instance_id, sizeof(resp->instance_id));
    uint64_t backend_ns = it->backend_ns;
    pthread_cond_destroy(&it->cv);
    free(it->input);
    free(it);
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
    if (af__cache_put(s->cache, m->id, req->input, in_len, max_tokens, &val, af_monotonic_ns()))
        af_log(AF_LOG_WARN, "serving: no memory to cache the answer to %s", resp->request_id);
    if (s->opts.costs) {
        af_cost_entry e = {.id = resp->request_id,
                           .operation = "inference",
                           .model_id = m->id,
                           .duration_ns = backend_ns,
                           .tokens_used = res.prompt_tokens + res.completion_tokens,
                           .gpu_hours = gpu_hours,
                           .cost = resp->cost};
        int crc = af_cost_record(s->opts.costs, &ctx, &e);
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

void af_inference_response_free(af_inference_response *r)
{
    if (!r)
        return;
    free(r->output);
    r->output = NULL;
    r->output_len = 0;
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
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void json_str(af_buf *b, const char *s)
{
    af__buf_json_string(b, s, strlen(s));
}

int af_serving_metrics_json(af_serving *s, char **out)
{
    if (!s || !out)
        return -EINVAL;
    af_serving_stats st;
    af_serving_stats_get(s, &st);
    uint64_t entries, hits, expired;
    af__cache_stats(s->cache, &entries, &hits, &expired);
    af_buf b;
    af__buf_init(&b);
    af__buf_printf(&b,
                   "{\"serving\":{\"total_models\":%u,\"pending_requests\":%u,\"in_flight\":%u,"
                   "\"max_batch_size\":%u,\"min_batch_size\":%u,\"max_wait_time_ms\":%u,"
                   "\"max_queue\":%u,\"requests\":%" PRIu64 ",\"batches\":%" PRIu64
                   ",\"overloaded\":%" PRIu64 ",\"timeouts\":%" PRIu64 ",\"errors\":%" PRIu64 "},",
                   st.total_models, st.pending_requests, st.in_flight, s->opts.max_batch_size,
                   s->opts.min_batch_size, s->opts.max_wait_time_ms, s->opts.max_queue, st.requests,
                   st.batches, st.overloaded, st.timeouts, st.errors);
    af__buf_printf(&b,
                   "\"cache\":{\"total_entries\":%" PRIu64 ",\"total_hits\":%" PRIu64
                   ",\"expired_entries\":%" PRIu64 ",\"cache_ttl_sec\":%.3f,\"enabled\":%s},",
                   entries, hits, expired, s->opts.cache_ttl_ms / 1000.0,
                   s->opts.cache_ttl_ms ? "true" : "false");
    pthread_mutex_lock(&s->mu);
    af__buf_printf(&b,
                   "\"routing\":{\"total_instances\":%u,\"available_instances\":%u,"
                   "\"routing_strategy\":\"%s\",\"models_registered\":%zu,\"instances\":[",
                   st.total_instances, st.available_instances,
                   af_routing_strategy_name(s->opts.routing), s->n_models);
    for (size_t i = 0; i < s->n_insts; i++) {
        const instance *in = s->insts[i];
        const char *kind = af_model_backend_kind(in->backend);
        af__buf_puts(&b, i ? ",{\"id\":" : "{\"id\":");
        json_str(&b, in->id);
        af__buf_puts(&b, ",\"model_id\":");
        json_str(&b, in->m->id);
        af__buf_puts(&b, ",\"endpoint\":");
        json_str(&b, in->endpoint);
        af__buf_puts(&b, ",\"backend\":");
        json_str(&b, kind);
        af__buf_printf(&b,
                       ",\"simulated\":%s,\"available\":%s,\"current_load\":%u,\"max_load\":%u,"
                       "\"average_latency_ms\":%.3f,\"served\":%" PRIu64 ",\"failures\":%" PRIu64
                       "}",
                       strcmp(kind, "simulated") == 0 ? "true" : "false",
                       in->route.available ? "true" : "false", in->route.load, in->route.max_load,
                       in->route.avg_latency_ms, in->served, in->failures);
    }
    af__buf_puts(&b, "]},\"models\":[");
    for (size_t i = 0; i < s->n_models; i++) {
        const model *m = s->models[i];
        af__buf_puts(&b, i ? ",{\"id\":" : "{\"id\":");
        json_str(&b, m->id);
        af__buf_puts(&b, ",\"name\":");
        json_str(&b, m->name);
        af__buf_puts(&b, ",\"version\":");
        json_str(&b, m->version);
        af__buf_puts(&b, ",\"framework\":");
        json_str(&b, m->framework);
        af__buf_printf(&b, ",\"memory_size_mb\":%" PRIu64 ",\"loaded_at_unix_ns\":%" PRIu64 "}",
                       m->memory_mb, m->loaded_at_ns);
    }
    pthread_mutex_unlock(&s->mu);
    af__buf_puts(&b, "]}");
    af__buf_terminate(&b);
    if (b.failed) {
        af__buf_clear(&b);
        return -ENOMEM;
    }
    *out = (char *)b.data;
    return 0;
}
