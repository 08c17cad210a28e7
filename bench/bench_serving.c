/*
 * Gateway overhead per inference request: the simulated backend with zero latency (so what
 * is measured is registry, queue, batcher hand-off, routing, cost hook and response copy),
 * and the cache-hit path. Prints `name value unit` lines.
 */
#include <stdio.h>
#include <stdlib.h>

#include "agentaflow/serving.h"
#include "agentaflow/trace_sdk.h"

static af_serving *setup(uint32_t ttl_ms, af_cost_tracker *costs)
{
    af_serving_opts o;
    af_serving_opts_init(&o);
    o.cache_ttl_ms = ttl_ms;
    o.costs = costs;
    af_serving *s = NULL;
    if (af_serving_new(&o, &s) != 0)
        return NULL;
    af_model_info m = {.id = "bench", .name = "bench", .price_per_1k_tokens = 0.5};
    af_sim_backend_opts so = {.base_latency_us = 0, .per_token_latency_us = 0};
    af_model_backend *b = NULL;
    af_instance_opts io = {.id = "sim-0"};
    if (af_serving_register_model(s, NULL, &m, NULL, 0) != 0 || af_sim_backend_new(&so, &b) != 0 ||
        af_serving_add_instance(s, "bench", &io, b) != 0) {
        af_serving_free(s);
        return NULL;
    }
    return s;
}

static int run(af_serving *s, int n, bool same_input, uint64_t *ns)
{
    char in[32];
    uint64_t t0 = af_monotonic_ns();
    for (int i = 0; i < n; i++) {
        snprintf(in, sizeof(in), "prompt number %d", same_input ? 0 : i);
        af_inference_request q = {.model_id = "bench", .input = in, .input_len = AF_LEN_NUL};
        af_inference_response r;
        int rc = af_serving_infer(s, NULL, &q, &r);
        af_inference_response_clear(&r);
        if (rc != 0)
            return rc;
    }
    *ns = (af_monotonic_ns() - t0) / (uint64_t)n;
    return 0;
}

int main(void)
{
    const int n = 20000;
    uint64_t ns = 0;
    af_cost_tracker *costs = NULL;
    if (af_cost_tracker_new(NULL, &costs) != 0)
        return 1;
    af_serving *s = setup(0, costs);
    if (!s || run(s, 1000, false, &ns) != 0 || run(s, n, false, &ns) != 0) {
        fprintf(stderr, "bench_serving: request path failed\n");
        return 1;
    }
    printf("serving_request_overhead_ns %llu ns\n", (unsigned long long)ns);
    af_serving_free(s);
    af_cost_tracker_free(costs);

    s = setup(300000, NULL);
    if (!s || run(s, 1, true, &ns) != 0 || run(s, n * 10, true, &ns) != 0) {
        fprintf(stderr, "bench_serving: cache path failed\n");
        return 1;
    }
    printf("serving_cache_hit_ns %llu ns\n", (unsigned long long)ns);
    af_serving_free(s);
    return 0;
}
