/* The backend handle and the built-in simulated model: deterministic answers and latency
 * computed from the input, so tests and benchmarks can reason about them exactly. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentaflow/trace_sdk.h"
#include "serving/serving_int.h"
#include "util/timeutil.h"

int af_model_backend_new(const af_model_backend_ops *ops, void *self, af_model_backend **out)
{
    if (!out || !ops || !ops->infer) {
        if (ops && ops->destroy)
            ops->destroy(self);
        return -EINVAL;
    }
    af_model_backend *b = calloc(1, sizeof(*b));
    if (!b) {
        if (ops->destroy)
            ops->destroy(self);
        return -ENOMEM;
    }
    b->ops = ops;
    b->self = self;
    *out = b;
    return 0;
}

void af_model_backend_free(af_model_backend *b)
{
    if (!b)
        return;
    if (b->ops->destroy)
        b->ops->destroy(b->self);
    free(b);
}

const char *af_model_backend_kind(const af_model_backend *b)
{
    return b && b->ops->kind ? b->ops->kind : "custom";
}

int af_model_backend_infer(af_model_backend *b, const af_backend_request *req,
                           af_backend_result *res)
{
    if (!b || !req || !res)
        return -EINVAL;
    return b->ops->infer(b->self, req, res);
}

void af_sim_backend_opts_init(af_sim_backend_opts *o)
{
    o->base_latency_us = 2000;
    o->per_token_latency_us = 50;
    o->max_latency_ms = 2000;
    o->stream_token_us = 0;
}

int64_t af_serving_input_tokens(size_t len)
{
    int64_t n = (int64_t)((len + 3) / 4);
    return n < 1 ? 1 : n;
}

/* The simulated backend: its options and the engine of its streamed answers. */
typedef struct sim_backend {
    af_sim_backend_opts o;
    af__sim_engine *engine;
} sim_backend;

static int sim_infer(void *self, const af_backend_request *req, af_backend_result *res)
{
    const af_sim_backend_opts *o = &((sim_backend *)self)->o;
    uint64_t h = af__serving_key_hash("", 0, req->input, req->input_len, 0);
    int64_t prompt = af_serving_input_tokens(req->input_len);
    int64_t completion = 16 + (int64_t)(h % 48);
    if (req->max_tokens && completion > (int64_t)req->max_tokens)
        completion = req->max_tokens;
    uint64_t latency_ns = ((uint64_t)o->base_latency_us +
                           (uint64_t)o->per_token_latency_us * (uint64_t)(prompt + completion)) *
                          1000u;
    if (o->max_latency_ms && latency_ns > (uint64_t)o->max_latency_ms * 1000000u)
        latency_ns = (uint64_t)o->max_latency_ms * 1000000u;
    if (latency_ns) {
        uint64_t now = af_monotonic_ns(), until = now + latency_ns;
        bool late = req->deadline_ns && until > req->deadline_ns;
        if (late)
            until = req->deadline_ns;
        struct timespec ts = af__timespec_of_ns(until);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
        if (late) {
            snprintf(res->error, sizeof(res->error),
                     "timeout: simulated model passed the deadline");
            return AF_ETIMEDOUT;
        }
    }
    int prefix = req->input_len > 32 ? 32 : (int)req->input_len;
    int n = snprintf(NULL, 0, "[simulated %s] %lld tokens for: %.*s", req->model_name,
                     (long long)completion, prefix, req->input);
    res->output = malloc((size_t)n + 1);
    if (!res->output)
        return -ENOMEM;
    snprintf(res->output, (size_t)n + 1, "[simulated %s] %lld tokens for: %.*s", req->model_name,
             (long long)completion, prefix, req->input);
    res->output_len = (size_t)n;
    res->prompt_tokens = prompt;
    res->completion_tokens = completion;
    return 0;
}

static void sim_destroy(void *self)
{
    sim_backend *b = self;
    af__sim_engine_free(b->engine);
    free(b);
}

static int sim_start(void *self, af__stream *st)
{
    return af__sim_engine_start(((sim_backend *)self)->engine, st);
}

static void sim_wake(void *self)
{
    af__sim_engine_wake(((sim_backend *)self)->engine);
}

static const af_model_backend_ops sim_ops = {"simulated", sim_infer, sim_destroy};
static const af__stream_ops sim_stream_ops = {"agentaflow.simulated", sim_start, sim_wake};

int af_sim_backend_new(const af_sim_backend_opts *opts, af_model_backend **out)
{
    if (!out)
        return -EINVAL;
    sim_backend *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    if (opts)
        b->o = *opts;
    else
        af_sim_backend_opts_init(&b->o);
    int rc = af__sim_engine_new(&b->o, &b->engine);
    if (rc) {
        free(b);
        return rc;
    }
    rc = af_model_backend_new(&sim_ops, b, out);
    if (rc == 0)
        (*out)->sops = &sim_stream_ops;
    return rc;
}
