/*
 * What keeps the dashboard alive without real traffic, and the collector hooks:
 *
 *  - alert fan-out: every alert the collector raises becomes a WebSocket "alert" message;
 *  - GPU usage pricing: every sample after a GPU's first is priced for the time since the
 *    previous one (the original's GPUMetricsIntegration cost model, via af_cost_record_gpu_usage);
 *  - the load generator thread ("af-loadgen"), only when asked for: workloads submitted,
 *    scheduled and completed after their estimated time, inference requests through the
 *    serving gateway, the original web demo's synthetic cost entries every 8 s, and a workload
 *    pattern switch on a simulated GPU every 45 s with a WebSocket notification.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentaflow/log.h"
#include "server/server_int.h"

static void on_alert(const af_gpu_alert *a, void *user)
{
    af_server *s = user;
    af_buf b;
    af__buf_init(&b);
    af__buf_puts(&b, "{\"type\":\"alert\",\"data\":");
    af__put_alert(&b, a);
    af__buf_putc(&b, '}');
    if (!b.failed)
        af__ws_broadcast(s, (const char *)b.data, b.len);
    af__buf_clear(&b);
}

static size_t slot_of(const char *gpu_id)
{
    if (strncmp(gpu_id, "gpu-", 4) == 0) {
        char *end;
        unsigned long i = strtoul(gpu_id + 4, &end, 10);
        if (!*end && i < 256)
            return i;
    }
    size_t h = 5381;
    for (const char *p = gpu_id; *p; p++)
        h = h * 33 + (unsigned char)*p;
    return h % 256;
}

static void on_sample(const af_gpu_sample *g, void *user)
{
    af_server *s = user;
    size_t k = slot_of(g->gpu_id);
    uint64_t prev = s->last_price_ns[k];
    s->last_price_ns[k] = g->timestamp_ns;
    if (!prev || g->timestamp_ns <= prev || !s->o.costs)
        return;
    af_gpu_usage u = {.gpu_id = g->gpu_id,
                      .gpu_name = g->name,
                      .hours = (double)(g->timestamp_ns - prev) / 3600e9,
                      .utilization = g->utilization_gpu,
                      .timestamp_ns = g->timestamp_ns};
    af_cost_record_gpu_usage(s->o.costs, NULL, &u, NULL);
}

void af__collector_hooks_add(af_server *s)
{
    if (!s->o.collector)
        return;
    int h = af_gpu_collector_add_alert_callback(s->o.collector, on_alert, s);
    s->alert_cb = h > 0 ? h : 0;
    h = af_gpu_collector_add_sample_callback(s->o.collector, on_sample, s);
    s->sample_cb = h > 0 ? h : 0;
}

void af__collector_hooks_remove(af_server *s)
{
    if (s->o.collector && s->alert_cb)
        af_gpu_collector_remove_callback(s->o.collector, s->alert_cb);
    if (s->o.collector && s->sample_cb)
        af_gpu_collector_remove_callback(s->o.collector, s->sample_cb);
    s->alert_cb = s->sample_cb = 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Load generator.                                                                           */

typedef struct rng {
    uint64_t x;
} rng;

static uint64_t next(rng *r)
{
    r->x ^= r->x << 13;
    r->x ^= r->x >> 7;
    r->x ^= r->x << 17;
    return r->x;
}

static double uniform(rng *r, double lo, double hi)
{
    return lo + (hi - lo) * ((double)(next(r) >> 11) / 9007199254740992.0);
}

static void gen_workloads(af_server *s, rng *r, uint64_t tick)
{
    enum { CAP = 256 };
    af_workload_info *w = malloc(sizeof(*w) * CAP);
    if (!w)
        return;
    size_t n = af_gpu_scheduler_list_workloads(s->o.scheduler, w, CAP);
    n = n > CAP ? CAP : n;
    uint64_t now = af_now_ns();
    size_t pending = 0;
    bool changed = false;
    for (size_t i = 0; i < n; i++) {
        if (w[i].status == AF_WORKLOAD_PENDING) {
            pending++;
            continue;
        }
        if (w[i].status != AF_WORKLOAD_RUNNING || !w[i].started_ns)
            continue;
        if (now - w[i].started_ns < w[i].estimated_time_ms * 1000000ull)
            continue;
        if (af_gpu_scheduler_complete(s->o.scheduler, w[i].id, NULL, 0) == 0) {
            af_workload_info done;
            if (af_gpu_scheduler_get_workload(s->o.scheduler, w[i].id, &done) == 0)
                af__metrics_workload(s, done.priority, AF_WORKLOAD_COMPLETED, &done, NULL);
            changed = true;
        }
    }
    free(w);
    static const struct {
        const char *name;
        uint64_t mem_lo, mem_hi;
    } kinds[] = {
        {"Training Job - BERT", 16384, 32768},
        {"Inference - GPT", 4096, 16384},
        {"Fine-tuning - LLaMA", 12288, 24576},
        {"Batch - ResNet", 2048, 8192},
    };
    if (pending < 4 && next(r) % 2 == 0) {
        size_t k = next(r) % 4;
        char id[48];
        snprintf(id, sizeof(id), "load-%llu", (unsigned long long)tick);
        af_workload_spec spec = {
            .id = id,
            .name = kinds[k].name,
            .priority = (int32_t)(1 + next(r) % 3),
            .memory_required_mb =
                (uint64_t)uniform(r, (double)kinds[k].mem_lo, (double)kinds[k].mem_hi),
            .estimated_time_ms = (uint64_t)uniform(r, 10000, 60000),
        };
        if (af_gpu_scheduler_submit(s->o.scheduler, &spec, NULL, 0) == 0) {
            af__metrics_workload(s, spec.priority, AF_WORKLOAD_PENDING, NULL, NULL);
            changed = true;
        }
    }
    if (changed)
        af__schedule_pass(s);
}

static void gen_inference(af_server *s, rng *r)
{
    enum { CAP = 16 };
    af_instance_stats inst[CAP];
    size_t n = af_serving_instances(s->o.serving, inst, CAP);
    n = n > CAP ? CAP : n;
    if (!n)
        return;
    static const char *prompts[] = {
        "What is AI?",
        "Summarize the GPU utilization report.",
        "Translate 'hello' to French.",
        "Explain tracing in one sentence.",
        "Write a haiku about batch scheduling.",
    };
    af_tracer *tr = af_tracing_tracer(s->o.tracing);
    int count = 1 + (int)(next(r) % 3);
    for (int i = 0; i < count; i++) {
        const char *model = inst[next(r) % n].model_id;
        af_span root = af_span_start_child(tr, "load_generator.inference", AF_SPAN_KIND_INTERNAL,
                                           NULL, NULL, 0);
        af_span_context sc;
        af_span_get_context(root, &sc);
        af_inference_request request = {
            .model_id = model, .input = prompts[next(r) % 5], .input_len = AF_LEN_NUL};
        af_inference_response resp;
        memset(&resp, 0, sizeof(resp));
        int rc = af_serving_infer(s->o.serving, &sc, &request, &resp);
        af__metrics_inference(s, model, rc, &resp, &sc);
        if (rc != 0)
            af_span_set_status(root, AF_STATUS_ERROR, resp.error);
        af_inference_response_clear(&resp);
        af_span_end(root);
    }
}

/* The original web demo's cost generator (docs/upstream-differences.md). */
static void gen_cost(af_server *s, rng *r)
{
    static const struct {
        const char *op;
        double h_lo, h_hi, rate;
        int t_lo, t_hi;
    } ops[] = {
        {"gpu_training", 0.005, 0.015, 2.50, 1000, 5999},
        {"gpu_inference", 0.001, 0.003, 1.80, 100, 1599},
        {"model_serving", 0.002, 0.005, 2.00, 200, 2199},
        {"batch_processing", 0.002, 0.006, 2.20, 500, 3499},
        {"image_generation", 0.002, 0.006, 2.20, 500, 3499},
        {"llm_inference", 0.002, 0.006, 2.20, 500, 3499},
    };
    size_t k = next(r) % 6;
    double hours = uniform(r, ops[k].h_lo, ops[k].h_hi);
    af_cost_entry e = {
        .operation = ops[k].op,
        .model_id = "",
        .duration_ns = (uint64_t)(hours * 3600e9),
        .tokens_used = ops[k].t_lo + (int64_t)(next(r) % (uint64_t)(ops[k].t_hi - ops[k].t_lo + 1)),
        .gpu_hours = hours,
        .cost = hours * ops[k].rate};
    af_cost_record(s->o.costs, NULL, &e);
}

static void gen_pattern(af_server *s, rng *r)
{
    static const char *patterns[] = {"Idle", "Light Inference", "Training", "Heavy Inference",
                                     "Batch Processing"};
    af_gpu_backend *be = af_gpu_collector_backend(s->o.collector);
    uint32_t n = af_gpu_collector_gpu_count(s->o.collector);
    if (!n)
        return;
    uint32_t idx = (uint32_t)(next(r) % n);
    const char *p = patterns[next(r) % 5];
    if (af_gpu_sim_set_pattern(be, idx, p) != 0)
        return;
    char msg[160];
    snprintf(msg, sizeof(msg), "GPU gpu-%u switched to %s workload pattern", idx, p);
    af_server_notify(s, "Workload Pattern Changed", msg, "info");
}

static void *loadgen_main(void *arg)
{
    af_server *s = arg;
    pthread_setname_np(pthread_self(), "af-loadgen");
    rng r = {af_now_ns() | 1};
    uint64_t tick = 0, interval = s->o.load_interval_ms ? s->o.load_interval_ms : 1000;
    uint64_t last_cost = af_monotonic_ns(), last_pattern = last_cost;
    pthread_mutex_lock(&s->lg_mu);
    while (!s->lg_stop) {
        pthread_mutex_unlock(&s->lg_mu);
        tick++;
        uint64_t now = af_monotonic_ns();
        if (s->o.scheduler)
            gen_workloads(s, &r, tick);
        if (s->o.serving)
            gen_inference(s, &r);
        if (s->o.costs && now - last_cost >= 8000000000ull) {
            gen_cost(s, &r);
            last_cost = now;
        }
        if (s->o.collector && now - last_pattern >= 45000000000ull) {
            gen_pattern(s, &r);
            last_pattern = now;
        }
        pthread_mutex_lock(&s->lg_mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + interval * 1000000ull;
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        while (!s->lg_stop && pthread_cond_timedwait(&s->lg_cv, &s->lg_mu, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&s->lg_mu);
    return NULL;
}

int af__loadgen_start(af_server *s)
{
    s->lg_stop = false;
    int rc = pthread_create(&s->loadgen, NULL, loadgen_main, s);
    if (rc != 0)
        return -rc;
    s->loadgen_started = true;
    return 0;
}

void af__loadgen_stop(af_server *s)
{
    if (!s->loadgen_started)
        return;
    pthread_mutex_lock(&s->lg_mu);
    s->lg_stop = true;
    pthread_cond_broadcast(&s->lg_cv);
    pthread_mutex_unlock(&s->lg_mu);
    pthread_join(s->loadgen, NULL);
    s->loadgen_started = false;
}
