/*
 * Gateway overhead per inference request: the simulated backend with zero latency (so what
 * is measured is registry, queue, batcher hand-off, routing, cost hook and response copy),
 * and the cache-hit path. Then the chat core (af_serving_chat_*): per-call overhead and
 * per-chunk overhead against a zero-latency simulated stream, and how many paced streams one
 * process holds at once (with the threads it took). Prints `name value unit` lines.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* ---------------------------------------------------------------------------------------- */
/* Chat calls.                                                                               */

static atomic_long chunks, done_ok, done_bad;

static void on_delta(void *ctx, const char *text, size_t len)
{
    (void)ctx;
    (void)text;
    (void)len;
    atomic_fetch_add_explicit(&chunks, 1, memory_order_relaxed);
}

static void on_done(void *ctx, int rc, const af_chat_result *res)
{
    (void)ctx;
    (void)res;
    atomic_fetch_add(rc == 0 ? &done_ok : &done_bad, 1);
}

static af_serving *chat_setup(uint32_t token_us, af_cost_tracker *costs)
{
    af_serving_opts o;
    af_serving_opts_init(&o);
    o.costs = costs;
    af_serving *s = NULL;
    if (af_serving_new(&o, &s) != 0)
        return NULL;
    af_model_info m = {
        .id = "bench", .name = "bench", .input_usd_per_million = 1, .output_usd_per_million = 2};
    af_sim_backend_opts so;
    af_sim_backend_opts_init(&so);
    so.base_latency_us = 0;
    so.per_token_latency_us = 0;
    so.stream_token_us = token_us;
    af_model_backend *b = NULL;
    af_instance_opts io = {.id = "sim-0"};
    if (af_serving_register_model(s, NULL, &m, NULL, 0) != 0 || af_sim_backend_new(&so, &b) != 0 ||
        af_serving_add_instance(s, "bench", &io, b) != 0) {
        af_serving_free(s);
        return NULL;
    }
    return s;
}

static void nap_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time (every thread of the process) per call of the last chat_run, without the caller's
 * spinning: the machine this runs on is often shared, so wall time mostly measures waiting. */
static uint64_t last_cpu_ns;

/* n calls of max_tokens tokens, at most window in progress; wall ns per call. The caller
 * sleeps while the window is full, so CPU time counts the gateway's work. */
static int chat_run(af_serving *s, long n, uint32_t max_tokens, bool stream, long window,
                    uint64_t *ns)
{
    static const af_chat_callbacks cb = {on_delta, on_done};
    af_chat_message msg = {"user", "benchmark prompt", AF_LEN_NUL};
    af_chat_request req = {.model = "bench",
                           .messages = &msg,
                           .n_messages = 1,
                           .max_tokens = max_tokens,
                           .temperature = NAN,
                           .stream = stream};
    atomic_store(&done_ok, 0);
    atomic_store(&done_bad, 0);
    uint64_t t0 = af_monotonic_ns(), c0 = cpu_ns();
    for (long i = 0; i < n; i++) {
        while (i - atomic_load(&done_ok) - atomic_load(&done_bad) >= window)
            nap_us(20);
        af_chat_call *call = NULL;
        if (af_serving_chat_start(s, NULL, &req, &cb, NULL, &call, NULL, 0) != 0)
            return -1;
        af_chat_call_release(call);
    }
    while (atomic_load(&done_ok) + atomic_load(&done_bad) < n)
        nap_us(20);
    *ns = (af_monotonic_ns() - t0) / (uint64_t)n;
    last_cpu_ns = (cpu_ns() - c0) / (uint64_t)n;
    return atomic_load(&done_bad) ? -1 : 0;
}

static long threads_now(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long n = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "Threads:", 8) == 0)
            n = strtol(line + 8, NULL, 10);
    if (f)
        fclose(f);
    return n;
}

static int chat_benches(void)
{
    af_cost_tracker *costs = NULL;
    if (af_cost_tracker_new(NULL, &costs) != 0)
        return 1;
    af_serving *s = chat_setup(0, costs);
    uint64_t one = 0, many = 0;
    const long n = 20000;
    /* One token per call: the call's own cost (check, copy, route, spans off, cost record,
     * result); 16 in progress so the engine thread and the caller overlap as under load. */
    if (!s || chat_run(s, 1000, 1, true, 16, &one) != 0 || chat_run(s, n, 1, true, 16, &one) != 0)
        return 1;
    uint64_t one_cpu = last_cpu_ns;
    printf("serving_chat_request_wall_ns %llu ns\n", (unsigned long long)one);
    printf("serving_chat_request_overhead_cpu_ns %llu ns\n", (unsigned long long)one_cpu);
    atomic_store(&chunks, 0);
    if (chat_run(s, n / 4, 64, true, 16, &many) != 0)
        return 1;
    long per_call = atomic_load(&chunks) / (n / 4);
    double per_chunk =
        per_call > 1 ? ((double)last_cpu_ns - (double)one_cpu) / (double)(per_call - 1) : 0;
    printf("serving_chat_chunks_per_call %ld chunks\n", per_call);
    printf("serving_chat_stream_wall_ns %llu ns\n", (unsigned long long)many);
    printf("serving_chat_chunk_overhead_cpu_ns %.0f ns\n", per_chunk);
    af_serving_free(s);

    /* Paced streams held at once: 20 ms a token, 50 tokens (a second each). */
    s = chat_setup(20000, costs);
    long threads_before = threads_now();
    static const af_chat_callbacks cb = {on_delta, on_done};
    af_chat_message msg = {"user", "hold", AF_LEN_NUL};
    af_chat_request req = {.model = "bench",
                           .messages = &msg,
                           .n_messages = 1,
                           .max_tokens = 50,
                           .temperature = NAN,
                           .stream = true};
    atomic_store(&done_ok, 0);
    atomic_store(&done_bad, 0);
    const long streams = 1000;
    for (long i = 0; s && i < streams; i++) {
        af_chat_call *call = NULL;
        if (af_serving_chat_start(s, NULL, &req, &cb, NULL, &call, NULL, 0) != 0)
            return 1;
        af_chat_call_release(call);
    }
    af_instance_stats is;
    af_serving_instances(s, &is, 1);
    long threads_during = threads_now();
    while (atomic_load(&done_ok) + atomic_load(&done_bad) < streams)
        nap_us(1000);
    printf("serving_chat_streams_held %u streams\n", is.load);
    printf("serving_chat_streams_completed %ld streams\n", atomic_load(&done_ok));
    printf("serving_chat_stream_threads_added %ld threads\n", threads_during - threads_before);
    af_serving_free(s);
    af_cost_tracker_free(costs);
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
    if (chat_benches() != 0) {
        fprintf(stderr, "bench_serving: chat path failed\n");
        return 1;
    }
    return 0;
}
