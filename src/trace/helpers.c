/*
 * The product document's TracingService helpers: span names "<category>.<operation>", the
 * document's kinds and start attributes, and operation.* attributes at the end.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agentaflow/trace_helpers.h"
#include "trace/span_int.h"
#include "util/timeutil.h"

static af_span start_op(af_tracer *t, const af_span_context *parent, const char *category,
                        const char *operation, af_span_kind kind, af_attr *attrs, size_t n)
{
    if (!t)
        return AF_SPAN_NONE;
    char name[256];
    snprintf(name, sizeof(name), "%s.%s", category, operation ? operation : "");
    uint64_t now = af_now_ns();
    char ts[AF_RFC3339_MAX];
    af__fmt_rfc3339(now, 3, ts); /* milliseconds: 2026-11-25T03:05:58.123Z */
    attrs[n++] = AF_STR("operation.start_time", ts);
    af_span_start_opts o = {
        .kind = kind,
        .parent_mode = parent ? AF_PARENT_EXPLICIT : AF_PARENT_CURRENT,
        .parent = parent,
        .start_ns = now,
        .attrs = attrs,
        .n_attrs = n,
    };
    return af_span_start(t, name, &o);
}

af_span af_trace_gpu_scheduling(af_tracer *t, const af_span_context *parent, const char *operation,
                                const char *gpu_id)
{
    af_attr a[3] = {AF_STR("gpu.id", gpu_id ? gpu_id : ""), AF_STR("operation", operation)};
    return start_op(t, parent, "gpu_scheduling", operation, AF_SPAN_KIND_INTERNAL, a, 2);
}

af_span af_trace_model_serving(af_tracer *t, const af_span_context *parent, const char *operation,
                               const char *model_id)
{
    af_attr a[3] = {AF_STR("model.id", model_id ? model_id : ""), AF_STR("operation", operation)};
    return start_op(t, parent, "model_serving", operation, AF_SPAN_KIND_SERVER, a, 2);
}

af_span af_trace_metrics_collection(af_tracer *t, const af_span_context *parent,
                                    const char *operation, int64_t metrics_count)
{
    af_attr a[3] = {AF_STR("operation", operation), AF_INT("metrics.count", metrics_count)};
    return start_op(t, parent, "metrics_collection", operation, AF_SPAN_KIND_INTERNAL, a, 2);
}

af_span af_trace_api_request(af_tracer *t, const af_span_context *parent, const char *method,
                             const char *route)
{
    if (!t)
        return AF_SPAN_NONE;
    char op[224];
    snprintf(op, sizeof(op), "%s %s", method ? method : "", route ? route : "");
    af_attr a[3] = {AF_STR("http.method", method ? method : ""),
                    AF_STR("http.route", route ? route : "")};
    return start_op(t, parent, "api_requests", op, AF_SPAN_KIND_SERVER, a, 2);
}

af_span af_trace_websocket_event(af_tracer *t, const af_span_context *parent, const char *event,
                                 const char *connection_id)
{
    af_attr a[3] = {AF_STR("websocket.event", event ? event : ""),
                    AF_STR("connection.id", connection_id ? connection_id : "")};
    return start_op(t, parent, "websocket_events", event, AF_SPAN_KIND_SERVER, a, 2);
}

af_span af_trace_cost_calculation(af_tracer *t, const af_span_context *parent,
                                  const char *operation, double gpu_hours)
{
    af_attr a[3] = {AF_STR("operation", operation), AF_DOUBLE("cost.gpu_hours", gpu_hours)};
    return start_op(t, parent, "cost_tracking", operation, AF_SPAN_KIND_INTERNAL, a, 2);
}

void af_operation_end(af_span s, int err, const char *error_type, const char *error_message)
{
    if (!af_span_is_recording(s)) {
        af_span_end(s);
        return;
    }
    uint64_t now = af_now_ns();
    uint64_t start = s.rec->data.start_ns;
    int64_t ms = now > start ? (int64_t)((now - start) / 1000000u) : 0;
    af_span_set_attrs(s, AF_ATTRS(AF_INT("operation.duration_ms", ms),
                                  AF_STR("operation.status", err ? "error" : "success")));
    if (err) {
        const char *msg = error_message ? error_message : af_strerror(err);
        if (error_type)
            af_span_record_error(s, error_type, msg, NULL, NULL, 0);
        else
            af_span_set_status(s, AF_STATUS_ERROR, msg);
    } else {
        af_span_set_status(s, AF_STATUS_OK, NULL);
    }
    af_span_end_at(s, now);
}
