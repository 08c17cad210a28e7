/*
 * serving/batcher.c - the gateway's bounded request queue and batcher threads: pick a
 * model's due batch off the queue, route it to an instance and answer each request through
 * its condition variable. Runs under the gateway mutex (see serving_int.h) except around
 * backend calls.
 */
#define AF_LOG_COMPONENT "serving"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/trace_helpers.h"
#include "agentaflow/trace_sdk.h"
#include "agentaflow/tracing.h"
#include "serving/serving_int.h"
#include "util/str.h"
#include "util/timeutil.h"

typedef struct af__serving_model model;
typedef struct af__serving_instance instance;
typedef struct af__serving_item item;

void af__serving_queue_remove(af_serving *s, item *it)
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
uint32_t af__serving_take_batch(af_serving *s, item **batch, uint64_t now, uint64_t *wake)
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
                af__serving_queue_remove(s, j);
                batch[n++] = j;
            }
            j = next;
        }
        return n;
    }
    return 0;
}

void af__serving_finish_item(item *it, int rc, const char *msg)
{
    it->rc = rc;
    if (msg && !it->res.error[0])
        af__strlcpy(it->res.error, msg, sizeof(it->res.error));
    it->done = true;
    if (it->abandoned) {
        /* The caller gave up (timeout) and left the item to us. */
        free(it->res.output);
        af__serving_item_free(it);
        return;
    }
    pthread_cond_signal(&it->cv);
}

/* One request's backend call on inst, under its backend_call span (no lock held). */
static int call_backend(af_serving *s, instance *inst, item *it, uint32_t n, af_backend_result *res)
{
    const model *m = it->m;
    const char *kind = af_model_backend_kind(inst->backend);
    af_span call = af_span_start_child(
        af__serving_tracer_for(s, AF_TRACE_MODEL_INFERENCE_REQUESTS), "model_serving.backend_call",
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
    int rc = af_model_backend_infer(inst->backend, &req, res);
    if (rc == 0)
        af_span_set_attrs(call, AF_ATTRS(AF_INT("tokens.prompt", res->prompt_tokens),
                                         AF_INT("tokens.completion", res->completion_tokens)));
    else if (!res->error[0])
        af__strlcpy(res->error, af_strerror(rc), sizeof(res->error));
    af_operation_end(call, rc, rc ? "backend_error" : NULL, rc ? res->error : NULL);
    return rc;
}

/* batch_wait spans: from enqueue (caller's thread) to now, parented by the carried context. */
static void record_batch_wait(af_serving *s, item **batch, uint32_t n)
{
    const model *m = batch[0]->m;
    uint64_t now_wall = af_now_ns();
    for (uint32_t i = 0; i < n; i++) {
        af_span_start_opts so = {.kind = AF_SPAN_KIND_INTERNAL,
                                 .parent_mode = AF_PARENT_EXPLICIT,
                                 .parent = &batch[i]->ctx,
                                 .start_ns = batch[i]->enq_wall};
        af_span w = af_span_start(af__serving_tracer_for(s, AF_TRACE_MODEL_INFERENCE_REQUESTS),
                                  "model_serving.batch_wait", &so);
        af_span_set_attrs(w, AF_ATTRS(AF_INT("batch.size", n), AF_STR("model.id", m->id)));
        af_span_end_at(w, now_wall);
    }
}

/*
 * Picks the instance of m that serves a batch of n and charges it the load (and a breaker
 * send). NULL when none can: *pick holds the router's code and *n_cand the instances m has.
 * Counts the batch either way. Takes and releases mu.
 */
static instance *route_batch(af_serving *s, model *m, uint32_t n, int *pick, size_t *n_cand)
{
    pthread_mutex_lock(&s->mu);
    af__route_inst routes[AF__SERVING_MAX_MODEL_INSTANCES];
    instance *cand[AF__SERVING_MAX_MODEL_INSTANCES];
    size_t nc = 0;
    uint64_t now = af_monotonic_ns();
    for (size_t i = 0; i < s->n_insts && nc < AF__SERVING_MAX_MODEL_INSTANCES; i++) {
        if (s->insts[i]->m == m) {
            cand[nc] = s->insts[i];
            routes[nc] = s->insts[i]->route;
            /* an instance behind an open circuit breaker is not routed to */
            routes[nc].available &= af__breaker_allows(&s->insts[i]->breaker, now);
            nc++;
        }
    }
    *pick = af__route_pick(s->opts.routing, &m->cursor, routes, nc, n);
    *n_cand = nc;
    instance *inst = *pick >= 0 ? cand[*pick] : NULL;
    if (inst) {
        inst->route.load += n;
        af__breaker_on_send(&inst->breaker, now);
    }
    s->batches++;
    pthread_mutex_unlock(&s->mu);
    return inst;
}

/* Answers every request of an unroutable batch with why (route_batch's pick and n_cand). */
static void fail_batch(af_serving *s, item **batch, uint32_t n, int pick, size_t n_cand)
{
    const model *m = batch[0]->m;
    char msg[160];
    if (pick == AF_EFULL)
        snprintf(msg, sizeof(msg), "overloaded: every instance of model %s is at max load", m->id);
    else if (n_cand == 0)
        snprintf(msg, sizeof(msg), "no instances available for model %s", m->id);
    else
        snprintf(msg, sizeof(msg), "backend down: no available instances for model %s", m->id);
    pthread_mutex_lock(&s->mu);
    for (uint32_t i = 0; i < n; i++) {
        s->in_flight--;
        af__serving_finish_item(batch[i], pick, msg);
    }
    pthread_mutex_unlock(&s->mu);
}

/* One request of a batch of n on inst: the backend call (unless its caller gave up or its
 * deadline passed), then the instance's load, counters and breaker, and the answer. */
static void serve_item(af_serving *s, instance *inst, item *it, uint32_t n)
{
    pthread_mutex_lock(&s->mu);
    bool skip = it->abandoned;
    pthread_mutex_unlock(&s->mu);
    uint64_t t0 = af_monotonic_ns();
    int rc;
    af_backend_result res = {0};
    if (skip || t0 >= it->deadline) {
        rc = AF_ETIMEDOUT;
        snprintf(res.error, sizeof(res.error), "timeout: deadline passed while queued");
    } else {
        rc = call_backend(s, inst, it, n, &res);
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
    if (!skip)
        af__breaker_on_result(&inst->breaker, rc == 0, af_monotonic_ns(), s->opts.breaker_failures,
                              (uint64_t)s->opts.breaker_cooldown_ms * 1000000u);
    else
        inst->breaker.probing = false;
    s->in_flight--;
    it->res = res;
    it->batch_size = n;
    it->backend_ns = dt;
    af__strlcpy(it->instance_id, inst->id, sizeof(it->instance_id));
    af__serving_finish_item(it, rc, NULL);
    pthread_mutex_unlock(&s->mu);
}

void af__serving_run_batch(af_serving *s, item **batch, uint32_t n)
{
    record_batch_wait(s, batch, n);
    int pick;
    size_t n_cand;
    instance *inst = route_batch(s, batch[0]->m, n, &pick, &n_cand);
    if (!inst) {
        fail_batch(s, batch, n, pick, n_cand);
        return;
    }
    for (uint32_t i = 0; i < n; i++)
        serve_item(s, inst, batch[i], n);
}

void *af__serving_batcher_main(void *arg)
{
    af_serving *s = arg;
    item *batch[1024];
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        uint64_t wake = 0;
        uint32_t n = s->busy < s->opts.workers
                         ? af__serving_take_batch(s, batch, af_monotonic_ns(), &wake)
                         : 0;
        if (n == 0) {
            if (wake) {
                struct timespec ts = af__timespec_of_ns(wake);
                pthread_cond_timedwait(&s->work_cv, &s->mu, &ts);
            } else {
                pthread_cond_wait(&s->work_cv, &s->mu);
            }
            continue;
        }
        s->in_flight += n;
        s->busy++;
        pthread_mutex_unlock(&s->mu);
        af__serving_run_batch(s, batch, n);
        pthread_mutex_lock(&s->mu);
        s->busy--;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}
