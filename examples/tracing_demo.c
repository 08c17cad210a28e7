/*
 * tracing_demo: the product document's tracing demo in library form (`agentaflow demo` runs
 * the same steps with the HTTP server in the loop).
 *
 *   tracing_demo [tracing-config.yaml] [--pretty]
 *
 * It loads the configuration (the document's YAML, then OTEL_* variables), builds the
 * TracingIntegration, and then, inside one root span: registers GPUs and schedules
 * workloads, collects GPU metrics (simulated backend), records costs, serves inference
 * requests, handles an incoming API request that carries a W3C traceparent, nests spans,
 * hands work to another thread with an explicit span context, records an error, and runs
 * the health check. Without a file, spans are printed by the stdout exporter as OTLP/JSON.
 * It ends by saying where the spans went.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/cost.h"
#include "agentaflow/gpu.h"
#include "agentaflow/propagation.h"
#include "agentaflow/serving.h"
#include "agentaflow/trace_helpers.h"
#include "agentaflow/tracing.h"

static int load_config(const char *path, bool pretty, af_tracing_config *cfg)
{
    if (af_tracing_config_init(cfg) != 0)
        return -1;
    if (path) {
        af_config_diag diag;
        af_config_diag_init(&diag);
        int rc = af_tracing_config_load(path, cfg, &diag);
        char *text = af_config_diag_format(&diag);
        if (text && text[0])
            fprintf(stderr, "%s", text);
        free(text);
        af_config_diag_free(&diag);
        if (rc != 0)
            return -1;
    } else {
        cfg->tracing.exporters.stdout_.enabled = true;
    }
    cfg->tracing.exporters.stdout_.pretty_print = pretty;
    af_tracing_config_apply_env(cfg, NULL);
    return 0;
}

typedef struct job {
    af_tracing *tracing;
    af_span_context parent; /* copied: the worker owns its own value */
} job;

/* Work on another thread continues the trace through the context it was handed. */
static void *worker(void *arg)
{
    job *j = arg;
    af_span s = af_span_start_child(af_tracing_tracer(j->tracing), "demo.async_batch_report",
                                    AF_SPAN_KIND_INTERNAL, &j->parent,
                                    AF_ATTRS(AF_STR("report.kind", "utilization")));
    af_span_add_event(s, "report.written", AF_ATTRS(AF_INT("report.rows", 3)));
    af_span_end(s);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    bool pretty = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--pretty") == 0)
            pretty = true;
        else
            path = argv[i];
    }
    af_tracing_config cfg;
    if (load_config(path, pretty, &cfg) != 0) {
        fprintf(stderr, "tracing_demo: the configuration has errors\n");
        af_tracing_config_clear(&cfg);
        return 2;
    }
    af_tracing *tracing = NULL;
    char err[256] = "";
    if (af_tracing_new(&cfg, &tracing, err, sizeof(err)) != 0) {
        fprintf(stderr, "tracing_demo: %s\n", err);
        af_tracing_config_clear(&cfg);
        return 2;
    }
    af_tracer *tracer = af_tracing_tracer(tracing);

    /* The components, each given the integration so the components.* toggles apply. */
    af_gpu_scheduler_opts so;
    af_gpu_scheduler_opts_init(&so);
    so.tracing.tracing = tracing;
    af_gpu_collector_opts co;
    af_gpu_collector_opts_init(&co);
    co.backend = AF_GPU_BACKEND_SIMULATED;
    co.sim.gpus = 4;
    co.tracing.tracing = tracing;
    af_cost_tracker_opts to;
    af_cost_tracker_opts_init(&to);
    to.tracing = tracing;
    af_gpu_scheduler *sched = NULL;
    af_gpu_collector *collector = NULL;
    af_cost_tracker *costs = NULL;
    af_serving *serving = NULL;
    if (af_gpu_scheduler_new(&so, &sched) != 0 ||
        af_gpu_collector_new(&co, &collector, err, sizeof(err)) != 0 ||
        af_cost_tracker_new(&to, &costs) != 0) {
        fprintf(stderr, "tracing_demo: cannot build the components %s\n", err);
        return 1;
    }
    af_serving_opts sv;
    af_serving_opts_init(&sv);
    sv.tracing = tracing;
    sv.costs = costs;
    af_model_info model = {.id = "model-gpt",
                           .name = "GPT-3.5-Turbo",
                           .version = "1.0",
                           .framework = "PyTorch",
                           .memory_mb = 12288,
                           .price_per_1k_tokens = 0.002,
                           .gpu_price_per_hour = 3.06};
    af_sim_backend_opts bo;
    af_sim_backend_opts_init(&bo);
    af_model_backend *backend = NULL;
    af_instance_opts io = {.id = "instance-1", .endpoint = "sim://instance-1", .max_load = 8};
    if (af_serving_new(&sv, &serving) != 0 ||
        af_serving_register_model(serving, NULL, &model, err, sizeof(err)) != 0 ||
        af_sim_backend_new(&bo, &backend) != 0 ||
        af_serving_add_instance(serving, "model-gpt", &io, backend) != 0) {
        fprintf(stderr, "tracing_demo: cannot build model serving %s\n", err);
        return 1;
    }

    af_span root = af_span_start_child(tracer, "demo.run", AF_SPAN_KIND_INTERNAL, NULL, NULL, 0);
    af_span_context root_ctx;
    af_span_get_context(root, &root_ctx);
    af_context_token tok = af_context_attach(root);

    /* 1. GPU registration and scheduling. */
    static const af_gpu_spec gpus[] = {
        {.id = "gpu-0", .name = "NVIDIA A100", .memory_total_mb = 40960, .available = true},
        {.id = "gpu-1", .name = "NVIDIA A100", .memory_total_mb = 40960, .available = true},
        {.id = "gpu-2", .name = "NVIDIA A100", .memory_total_mb = 40960, .available = true},
    };
    for (size_t i = 0; i < 3; i++)
        af_gpu_scheduler_register_gpu(sched, &gpus[i], NULL, 0);
    static const af_workload_spec wl[] = {
        {"workload-1", "Training Job - BERT", 1, 32768, 7200000, false},
        {"workload-2", "Inference - GPT", 2, 16384, 1800000, false},
        {"workload-3", "Fine-tuning - LLaMA", 1, 24576, 3600000, false},
    };
    for (size_t i = 0; i < 3; i++)
        af_gpu_scheduler_submit(sched, &wl[i], NULL, 0);
    size_t placed = 0;
    af_gpu_scheduler_schedule(sched, &placed);

    /* 2. Metrics collection (one cycle; per-GPU spans when trace_individual_gpus is on). */
    af_gpu_collector_collect_now(collector);

    /* 3. Cost recording and a summary. */
    static const af_cost_entry entries[] = {
        {NULL, "inference", "model-gpt", 1800000000000ull, 150000, 0.5, 2.50, NULL, 0},
        {NULL, "training", "model-bert", 21600000000000ull, 0, 6.0, 18.00, NULL, 0},
    };
    for (size_t i = 0; i < 2; i++)
        af_cost_record(costs, &root_ctx, &entries[i]);
    af_cost_summary summary;
    double total = 0;
    if (af_cost_summary_get(costs, &root_ctx, 0, 0, &summary) == 0) {
        total = summary.total_cost;
        af_cost_summary_clear(&summary);
    }

    /* 4. Model serving: a miss, then the same input again (a cache hit). */
    for (int i = 0; i < 2; i++) {
        af_inference_request request = {.id = i ? "req-2" : "req-1",
                                        .model_id = "model-gpt",
                                        .input = "What is AI?",
                                        .input_len = AF_LEN_NUL};
        af_inference_response r;
        memset(&r, 0, sizeof(r));
        af_serving_infer(serving, &root_ctx, &request, &r);
        af_inference_response_clear(&r);
    }

    /* 5. An API request arriving from another service: its traceparent and baggage are
     * extracted and the server span continues that trace, not ours. */
    af_headers *in = NULL;
    af_headers_new(&in);
    af_headers_add(in, "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    af_headers_add(in, "baggage", "user.id=alice");
    af_carrier cin = af_headers_carrier(in);
    af_span_context remote;
    af_span_context_init(&remote);
    af_baggage *bag = NULL;
    af_propagate_extract(AF_PROPAGATE_DEFAULT, &cin, &remote, &bag);
    af_span req = af_trace_api_request(af_tracing_tracer_for(tracing, AF_TRACE_API_REQUESTS),
                                       &remote, "GET", "/api/v1/gpus");
    af_span_set_attrs(req, AF_ATTRS(AF_STR("user.id", af_baggage_get(bag, "user.id")),
                                    AF_INT("http.status_code", 200)));
    af_operation_end(req, 0, NULL, NULL);

    /* 6. Nested spans, a hand-off to another thread, and an error. */
    af_span parent = af_span_start(tracer, "demo.parent_operation", NULL);
    af_context_token ptok = af_context_attach(parent);
    af_span child = af_span_start(tracer, "nested.child_operation", NULL);
    af_context_token ctok = af_context_attach(child);
    af_span grand = af_span_start(tracer, "nested.grandchild_operation", NULL);
    af_span_record_error(grand, "FileNotFoundError", "weights not found: /models/gpt.bin", NULL,
                         NULL, 0);
    af_span_end(grand);
    af_context_detach(ctok);
    af_span_end(child);
    job j = {.tracing = tracing};
    af_span_get_context(parent, &j.parent);
    pthread_t th;
    if (pthread_create(&th, NULL, worker, &j) == 0)
        pthread_join(th, NULL);
    af_context_detach(ptok);
    af_span_end(parent);

    /* 7. The health check, with the spans so far flushed first. */
    af_context_detach(tok);
    af_span_end(root);
    af_tracing_force_flush(tracing, 5000);
    char *health = af_tracing_health_json(tracing);

    char tid[33];
    af_trace_id_to_hex(root_ctx.trace_id, tid);
    fprintf(stderr, "\nworkloads placed: %zu, costs recorded: $%.2f\n", placed, total);
    fprintf(stderr, "health: %s\n", health ? health : "(unavailable)");
    fprintf(stderr, "demo trace id: %s (the API request continued trace %s)\n", tid,
            "4bf92f3577b34da6a3ce929d0e0e4736");
    const af_tracing_config *eff = af_tracing_config_of(tracing);
    if (!tracer)
        fprintf(stderr, "tracing is disabled: no spans were made\n");
    if (eff && eff->tracing.exporters.jaeger.enabled)
        fprintf(stderr, "Jaeger: spans sent to %s; open http://localhost:16686, service %s\n",
                eff->tracing.exporters.jaeger.endpoint, eff->service_name);
    if (eff && eff->tracing.exporters.otlp_http.enabled)
        fprintf(stderr, "OTLP/HTTP: spans sent to %s\n", eff->tracing.exporters.otlp_http.endpoint);
    if (eff && eff->tracing.exporters.stdout_.enabled)
        fprintf(stderr, "stdout: every span was printed above as OTLP/JSON\n");
    free(health);

    af_headers_free(in);
    af_baggage_free(bag);
    af_serving_free(serving);
    af_gpu_collector_free(collector);
    af_gpu_scheduler_free(sched);
    af_cost_tracker_free(costs);
    af_tracing_shutdown(tracing, 5000);
    af_tracing_free(tracing);
    af_tracing_config_clear(&cfg);
    return 0;
}
