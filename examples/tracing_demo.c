/*
 * tracing_demo: the tracing API end to end, printed by the stdout exporter.
 *
 * It plays a request arriving with a W3C traceparent and baggage, scheduling work on a GPU
 * through the document's helpers, a failing model load recorded as an error, a hand-off to a
 * worker thread carrying the span context explicitly, and the outgoing headers injected for a
 * downstream call. Every span is printed as OTLP/JSON (pretty with --pretty).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "agentaflow/export.h"
#include "agentaflow/propagation.h"
#include "agentaflow/trace_helpers.h"

typedef struct job {
    af_tracer *tracer;
    af_span_context parent; /* copied: the worker owns its own value */
} job;

static void *worker(void *arg)
{
    job *j = arg;
    af_span s = af_span_start_child(j->tracer, "metrics_collection.collect_gpu",
                                    AF_SPAN_KIND_INTERNAL, &j->parent,
                                    AF_ATTRS(AF_STR("gpu.id", "gpu-1"),
                                             AF_DOUBLE("gpu.utilization", 87.5),
                                             AF_INT("gpu.temperature", 71)));
    af_span_add_event(s, "metrics.collected", AF_ATTRS(AF_STR("gpu.id", "gpu-1")));
    af_span_end(s);
    return NULL;
}

int main(int argc, char **argv)
{
    bool pretty = argc > 1 && strcmp(argv[1], "--pretty") == 0;

    af_resource *res = NULL;
    if (af_resource_new(AF_ATTRS(AF_STR("service.name", "agentaflow-sro"),
                                 AF_STR("service.version", AF_VERSION_STRING),
                                 AF_STR("deployment.environment", "development")),
                        &res) != 0)
        return 1;
    af_tracer_provider_opts po;
    af_tracer_provider_opts_init(&po);
    po.resource = res;
    af_tracer_provider *provider = NULL;
    if (af_tracer_provider_new(&po, &provider) != 0)
        return 1;
    af_stdout_exporter_opts so;
    af_stdout_exporter_opts_init(&so);
    so.pretty_print = pretty;
    af_exporter *out = NULL;
    af_span_processor *proc = NULL;
    if (af_stdout_exporter_new(&so, &out) != 0 || af_simple_processor_new(out, &proc) != 0 ||
        af_tracer_provider_add_processor(provider, proc) != 0)
        return 1;
    af_tracer *tracer = af_tracer_provider_get_tracer(provider, "agentaflow.demo",
                                                      AF_VERSION_STRING, NULL);

    /* 1. An incoming request: extract its context and baggage. */
    af_headers *in = NULL;
    af_headers_new(&in);
    af_headers_add(in, "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    af_headers_add(in, "tracestate", "congo=t61rcWkgMzE");
    af_headers_add(in, "baggage", "user.id=alice,tenant=acme%20labs;priority=high");
    af_carrier cin = af_headers_carrier(in);
    af_span_context remote;
    af_span_context_init(&remote);
    af_baggage *bag = NULL;
    af_propagate_extract(AF_PROPAGATE_DEFAULT, &cin, &remote, &bag);

    af_span req = af_trace_api_request(tracer, &remote, "POST", "/api/v1/workloads");
    af_span_set_attrs(req, AF_ATTRS(AF_STR("user.id", af_baggage_get(bag, "user.id")),
                                    AF_INT("http.status_code", 202)));
    af_context_token tok = af_context_attach(req);

    /* 2. Nested work through the document's helpers (parent = current span). */
    af_span sched = af_trace_gpu_scheduling(tracer, NULL, "schedule", "gpu-1");
    af_span_set_attrs(sched, AF_ATTRS(AF_INT("scheduler.queue_size", 3),
                                      AF_INT("scheduler.available_gpus", 4),
                                      AF_INT("scheduler.scheduled_count", 2)));
    af_span_add_event(sched, "scheduling.completed", AF_ATTRS(AF_INT("workloads.scheduled", 2)));
    af_operation_end(sched, 0, NULL, NULL);

    /* 3. A failure recorded as the spec's exception event + Error status. */
    af_span load = af_trace_model_serving(tracer, NULL, "load_model", "model-gpt");
    af_operation_end(load, -2, "FileNotFoundError", "weights not found: /models/gpt.bin");

    /* 4. Work handed to another thread with an explicit span context. */
    job j = {.tracer = tracer};
    af_span_get_context(req, &j.parent);
    pthread_t th;
    pthread_create(&th, NULL, worker, &j);
    pthread_join(th, NULL);

    /* 5. Headers for a downstream call carry the current context and the baggage. */
    af_headers *outh = NULL;
    af_headers_new(&outh);
    af_carrier cout = af_headers_carrier(outh);
    af_span_context cur;
    af_context_current(&cur);
    af_propagate_inject(AF_PROPAGATE_DEFAULT, &cout, &cur, bag);

    af_context_detach(tok);
    af_operation_end(req, 0, NULL, NULL);

    fprintf(stderr, "\noutgoing headers for a downstream call:\n");
    for (size_t i = 0; i < af_headers_count(outh); i++) {
        const char *k, *v;
        af_headers_at(outh, i, &k, &v);
        fprintf(stderr, "  %s: %s\n", k, v);
    }
    af_provider_stats st;
    af_tracer_provider_stats(provider, &st);
    fprintf(stderr, "spans started %llu, ended %llu, exported %llu\n",
            (unsigned long long)st.spans_started, (unsigned long long)st.spans_ended,
            (unsigned long long)st.spans_exported);

    af_headers_free(in);
    af_headers_free(outh);
    af_baggage_free(bag);
    af_tracer_provider_free(provider);
    return 0;
}
