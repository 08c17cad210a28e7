/*
 * agentaflow demo: the product document's tracing demo, run once against the real
 * components: GPUs registered and workloads scheduled, metrics collected, costs recorded,
 * inference served, API requests over HTTP to an in-process server on a free loopback port
 * (the client's traceparent continues into the server), nested spans, and a health check.
 * Spans go wherever the configuration sends them; the demo prints where to look.
 */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/propagation.h"
#include "agentaflow/trace_helpers.h"
#include "app.h"

static size_t discard(void *p, size_t sz, size_t n, void *u)
{
    (void)p;
    (void)u;
    return sz * n;
}

/* One HTTP request as a CLIENT span whose context travels in traceparent. */
static long api_call(af_tracer *tr, const af_span_context *parent, int port, const char *method,
                     const char *path, const char *body)
{
    char name[96], url[256];
    snprintf(name, sizeof(name), "demo.http %s %s", method, path);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    af_span s =
        af_span_start_child(tr, name, AF_SPAN_KIND_CLIENT, parent,
                            AF_ATTRS(AF_STR("http.method", method), AF_STR("http.url", url)));
    af_span_context sc;
    af_span_get_context(s, &sc);
    char tp[56], hdr[80];
    af_traceparent_format(&sc, tp);
    snprintf(hdr, sizeof(hdr), "traceparent: %s", tp);
    long code = 0;
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, hdr);
    h = curl_slist_append(h, "Content-Type: application/json");
    if (c && h) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
        if (body)
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    af_span_set_int(s, "http.status_code", code);
    if (code == 0 || code >= 500)
        af_span_set_status(s, AF_STATUS_ERROR, "request failed");
    af_span_end(s);
    printf("  %-4s %-28s -> %ld\n", method, path, code);
    return code;
}

static void demo_help(FILE *f)
{
    fprintf(f, "usage: agentaflow demo [--config FILE]\n\n"
               "Runs the tracing demo once: GPUs, workloads, metrics, costs, inference, API\n"
               "requests, nested spans and a health check, exported as FILE configures (by\n"
               "default only to the in-process trace store, summarised at the end).\n");
}

/* Loads the configuration and pins what the demo needs: it runs alone and quietly (no
 * synthetic load, a private port, simulated GPUs). 0, or the exit code. */
static int demo_config(const char *config, af_tracing_config *cfg)
{
    if (app_load_config(config, cfg, stderr) != 0) {
        fprintf(stderr, "agentaflow demo: the configuration has errors\n");
        return 2;
    }
    /* The demo runs alone and quietly: no synthetic load, a private port, simulated GPUs, and
     * nothing saved (it must neither write a daemon's ledger nor wait for its data directory). */
    static const struct {
        const char *key, *value;
    } fixed[] = {
        {"server.load_generator", "false"},  {"server.port", "0"},
        {"server.metrics_port", "-1"},       {"server.bind_address", "127.0.0.1"},
        {"server.gpu_backend", "simulated"}, {"server.persist", "false"},
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (app_set_flag(cfg, "agentaflow demo", fixed[i].key, fixed[i].key, fixed[i].value,
                         stderr) != 0)
            return 1;
    return 0;
}

static void demo_scheduling(app_platform *p)
{
    printf("1. GPU scheduling (least_utilized)\n");
    static const char *gpus[] = {"demo-gpu-0", "demo-gpu-1", "demo-gpu-2"};
    for (int i = 0; i < 3; i++) {
        af_gpu_spec g = {
            .id = gpus[i], .name = "NVIDIA A100", .memory_total_mb = 40960, .available = true};
        af_gpu_scheduler_register_gpu(p->scheduler, &g, NULL, 0);
    }
    static const af_workload_spec wl[] = {
        {"workload-1", "Training Job - BERT", 1, 32768, 7200000, false},
        {"workload-2", "Inference - GPT", 2, 16384, 1800000, false},
        {"workload-3", "Fine-tuning - LLaMA", 1, 24576, 3600000, false},
    };
    for (int i = 0; i < 3; i++)
        af_gpu_scheduler_submit(p->scheduler, &wl[i], NULL, 0);
    size_t placed = 0;
    af_gpu_scheduler_schedule(p->scheduler, &placed);
    for (int i = 0; i < 3; i++) {
        af_workload_info w;
        if (af_gpu_scheduler_get_workload(p->scheduler, wl[i].id, &w) == 0)
            printf("  %-22s %-9s %s\n", w.name, af_workload_status_name(w.status),
                   w.assigned_gpu[0] ? w.assigned_gpu : "-");
    }
}

static void demo_metrics(app_platform *p)
{
    printf("2. GPU metrics collection\n");
    af_gpu_collector_collect_now(p->collector);
    af_gpu_overview ov;
    af_gpu_collector_overview(p->collector, &ov);
    printf("  %u GPUs, average utilization %.1f%%\n", ov.total_gpus, ov.avg_utilization);
}

static void demo_costs(app_platform *p, const af_span_context *ctx)
{
    printf("3. Cost tracking\n");
    static const af_cost_entry costs[] = {
        {NULL, "inference", "model-gpt", 1800000000000ull, 150000, 0.5, 2.50, NULL, 0},
        {NULL, "training", "model-bert", 21600000000000ull, 0, 6.0, 18.00, NULL, 0},
        {NULL, "inference", "model-gpt", 3600000000000ull, 300000, 1.0, 5.00, NULL, 0},
    };
    for (int i = 0; i < 3; i++)
        af_cost_record(p->costs, ctx, &costs[i]);
    af_cost_summary cs;
    if (af_cost_summary_get(p->costs, ctx, 0, 0, &cs) == 0) {
        printf("  total $%.2f (inference $%.2f, training $%.2f), %.2f GPU hours\n", cs.total_cost,
               cs.inference_cost, cs.training_cost, cs.total_gpu_hours);
        af_cost_summary_clear(&cs);
    }
}

static void demo_serving(app_platform *p, const af_span_context *ctx)
{
    printf("4. Model serving\n");
    static const struct {
        const char *id, *model, *input;
    } reqs[] = {{"req-1", "model-gpt", "What is AI?"},
                {"req-2", "model-gpt", "What is AI?"},
                {"req-3", "model-bert", "Classify this sentence."}};
    for (int i = 0; i < 3; i++) {
        af_inference_request request = {.id = reqs[i].id,
                                        .model_id = reqs[i].model,
                                        .input = reqs[i].input,
                                        .input_len = AF_LEN_NUL};
        af_inference_response response;
        memset(&response, 0, sizeof(response));
        if (af_serving_infer(p->serving, ctx, &request, &response) == 0)
            printf("  %s: latency %.1f ms, cache %s\n", reqs[i].id,
                   (double)response.latency_ns / 1e6, response.cache_hit ? "hit" : "miss");
        af_inference_response_clear(&response);
    }
}

static void demo_api(af_tracer *tr, const af_span_context *ctx, int port)
{
    printf("5. API requests (traceparent continues into the server)\n");
    api_call(tr, ctx, port, "GET", "/health", NULL);
    api_call(tr, ctx, port, "GET", "/api/v1/gpus", NULL);
    api_call(tr, ctx, port, "POST", "/api/v1/workloads",
             "{\"name\":\"demo job\",\"priority\":2,\"memory_required_mb\":4096}");
    api_call(tr, ctx, port, "POST", "/api/v1/inference",
             "{\"model_id\":\"model-gpt\",\"input\":\"Hello from the demo\"}");
}

static void demo_nested(af_tracer *tr, const af_span_context *ctx)
{
    printf("6. Nested spans\n");
    af_span parent =
        af_span_start_child(tr, "demo.parent_operation", AF_SPAN_KIND_INTERNAL, ctx, NULL, 0);
    af_span_context pc;
    af_span_get_context(parent, &pc);
    af_span child = af_span_start_child(tr, "nested.child_operation", AF_SPAN_KIND_INTERNAL, &pc,
                                        AF_ATTRS(AF_INT("nesting.level", 1)));
    af_span_context cc;
    af_span_get_context(child, &cc);
    af_span grand = af_span_start_child(tr, "nested.grandchild_operation", AF_SPAN_KIND_INTERNAL,
                                        &cc, AF_ATTRS(AF_INT("nesting.level", 2)));
    af_span_add_event(grand, "work.done", NULL, 0);
    af_span_end(grand);
    af_span_end(child);
    af_span_end(parent);
}

static void demo_health(app_platform *p)
{
    printf("7. Health check\n");
    /* Flush first so the health figures include the spans the demo just made. */
    af_tracing_force_flush(p->tracing, 5000);
    char *health = af_tracing_health_json(p->tracing);
    printf("  %s\n", health ? health : "(unavailable)");
    free(health);
}

/* Where the demo's spans went, by the configured exporters. */
static void demo_where_to_look(const af_tracing_config *cfg, app_platform *p, const char *tid)
{
    printf("\nDemo trace id: %s\n", tid);
    if (cfg->tracing.exporters.jaeger.enabled)
        printf("Jaeger: %s -> open http://localhost:16686 and search service '%s'\n",
               cfg->tracing.exporters.jaeger.endpoint, cfg->service_name);
    if (cfg->tracing.exporters.otlp_http.enabled)
        printf("OTLP/HTTP: spans sent to %s\n", cfg->tracing.exporters.otlp_http.endpoint);
    if (cfg->tracing.exporters.stdout_.enabled)
        printf("stdout: spans were printed above as OTLP/JSON\n");
    if (p->traces) {
        char *one = NULL;
        if (af_trace_store_get_json(p->traces, tid, &one) == 0) {
            /* A one-line summary of the demo's trace from the in-process store. */
            printf("trace store: the demo trace holds %s\n",
                   strstr(one, "\"span_count\"") ? strstr(one, "\"span_count\"") : "spans");
        }
        free(one);
        printf("run 'agentaflow serve' and open http://127.0.0.1:9000/api/v1/traces to browse "
               "traces\n");
    }
}

/* Every step under one root span, attached so the steps' own spans join its trace; the
 * trace id (33 bytes) names it in the summary. */
static void demo_steps(app_platform *p, af_server *srv, char tid[33])
{
    af_tracer *tr = af_tracing_tracer(p->tracing);
    af_span root = af_span_start_child(tr, "demo.run", AF_SPAN_KIND_INTERNAL, NULL, NULL, 0);
    af_span_context root_ctx;
    af_span_get_context(root, &root_ctx);
    af_trace_id_to_hex(root_ctx.trace_id, tid);
    af_context_token tok = af_context_attach(root);

    demo_scheduling(p);
    demo_metrics(p);
    demo_costs(p, &root_ctx);
    demo_serving(p, &root_ctx);
    demo_api(tr, &root_ctx, af_server_port(srv));
    demo_nested(tr, &root_ctx);
    demo_health(p);

    af_context_detach(tok);
    af_span_end(root);
}

int cmd_demo(int argc, char **argv)
{
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            demo_help(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            config = argv[++i];
        } else {
            demo_help(stderr);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    af_tracing_config cfg;
    int rc = demo_config(config, &cfg);
    if (rc != 0) {
        af_tracing_config_clear(&cfg);
        return rc;
    }
    app_platform p;
    if (app_platform_start(&p, &cfg, stderr) != 0) {
        af_tracing_config_clear(&cfg);
        app_platform_stop(&p, 2000);
        return 2;
    }
    af_server_opts so;
    app_server_opts(&so, &cfg.server, &p);
    af_server *srv = NULL;
    char err[256] = "";
    if (af_server_new(&so, &srv, err, sizeof(err)) != 0 || af_server_start(srv) != 0) {
        fprintf(stderr, "agentaflow demo: %s\n", err);
        af_server_free(srv);
        af_tracing_config_clear(&cfg);
        app_platform_stop(&p, 2000);
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char tid[33];
    demo_steps(&p, srv, tid);
    af_server_stop(srv);
    af_server_free(srv);
    af_tracing_force_flush(p.tracing, 5000);
    demo_where_to_look(&cfg, &p, tid);
    curl_global_cleanup();
    af_tracing_config_clear(&cfg);
    app_platform_stop(&p, 5000);
    return 0;
}
