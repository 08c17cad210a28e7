/*
 * bench_export: wire encoder throughput on one core. Each encoder turns a 512-span batch
 * (6 attributes and 1 event per span, one resource, one scope) into bytes a fixed number of
 * times; the buffer is reset, not freed, between batches, as an exporter does.
 * Prints `name value unit` lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "export/encode.h"

#define BATCH 512
#define ITERATIONS 400

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef int (*encode_fn)(const af_span_data *const *spans, size_t n, af_buf *out);

static int run(const char *name, encode_fn fn, const af_span_data *const *spans)
{
    af_buf b;
    af__buf_init(&b);
    /* One warm-up batch sizes the buffer. */
    if (fn(spans, BATCH, &b) != 0) {
        fprintf(stderr, "%s: encode failed\n", name);
        af__buf_clear(&b);
        return 1;
    }
    size_t bytes = b.len;
    uint64_t t0 = now_ns();
    for (int i = 0; i < ITERATIONS; i++) {
        af__buf_reset(&b);
        if (fn(spans, BATCH, &b) != 0) {
            fprintf(stderr, "%s: encode failed\n", name);
            af__buf_clear(&b);
            return 1;
        }
    }
    uint64_t dt = now_ns() - t0;
    double spans_per_s = (double)BATCH * ITERATIONS * 1e9 / (double)(dt ? dt : 1);
    printf("%s_encode_spans_per_s %.0f spans/s\n", name, spans_per_s);
    printf("%s_encode_bytes_per_span %.1f bytes\n", name, (double)bytes / BATCH);
    af__buf_clear(&b);
    return 0;
}

int main(void)
{
    af_resource *res = NULL;
    if (af_resource_new_raw(AF_ATTRS(AF_STR("service.name", "bench"), AF_STR("host.name", "node-1"),
                                     AF_STR("telemetry.sdk.language", "c")),
                            &res) != 0)
        return 1;
    static const af_instrumentation_scope scope = {"agentaflow.bench", "0.1.0", "", NULL, 0};
    const af_attr attrs[] = {
        AF_STR("gpu.id", "gpu-0"),
        AF_STR("workload.id", "wl-123456"),
        AF_STR("operation.status", "success"),
        AF_INT("workload.priority", 3),
        AF_INT("scheduler.queue_size", 17),
        AF_DOUBLE("operation.duration_ms", 12.75),
    };
    const af_attr ev_attrs[] = {AF_INT("scheduler.available_gpus", 4)};

    af_span_data *data = calloc(BATCH, sizeof(*data));
    af_event_data *events = calloc(BATCH, sizeof(*events));
    const af_span_data **spans = calloc(BATCH, sizeof(*spans));
    if (!data || !events || !spans)
        return 1;
    uint64_t t = 1700000000000000000u;
    for (int i = 0; i < BATCH; i++) {
        af_span_data *s = &data[i];
        for (int k = 0; k < 16; k++)
            s->trace_id[k] = (uint8_t)(i * 31 + k + 1);
        for (int k = 0; k < 8; k++)
            s->span_id[k] = (uint8_t)(i * 17 + k + 1);
        s->has_parent = i % 4 != 0;
        if (s->has_parent)
            memcpy(s->parent_span_id, data[i - 1].span_id, 8);
        s->trace_flags = 1;
        s->trace_state = "";
        s->name = "gpu.schedule";
        s->kind = AF_SPAN_KIND_INTERNAL;
        s->start_ns = t + (uint64_t)i * 1000;
        s->end_ns = s->start_ns + 250000;
        s->attrs = attrs;
        s->n_attrs = 6;
        events[i] = (af_event_data){s->start_ns + 1000, "gpu.assigned", ev_attrs, 1, 0};
        s->events = &events[i];
        s->n_events = 1;
        s->status_message = "";
        s->resource = res;
        s->scope = &scope;
        spans[i] = s;
    }

    int rc = run("otlp_proto", af__otlp_proto_encode, spans);
    rc |= run("otlp_json", af__otlp_json_encode, spans);
    rc |= run("jaeger_thrift", af__jaeger_thrift_encode, spans);

    free(spans);
    free(events);
    free(data);
    af_resource_free(res);
    return rc;
}
