/*
 * agentaflow/trace_helpers.h - the product document's TracingService helpers in C.
 *
 * Each helper starts a span named "<category>.<operation>" with the document's kind and
 * start attributes, plus operation.start_time (RFC 3339). Finish it with
 * af_operation_end(), which adds operation.duration_ms and operation.status, sets the
 * status (Ok, or Error with the message) and ends the span.
 *
 * `parent` NULL means "the thread's current span"; a NULL tracer yields AF_SPAN_NONE, which
 * is how a disabled component switches its spans off without touching the caller's span.
 *
 * The document's helpers and their C names:
 */
/* clang-format off */
/*
 * Document name           C                            span name                      kind      start attributes
 * TraceGPUScheduling      af_trace_gpu_scheduling      gpu_scheduling.<op>            INTERNAL  gpu.id, operation
 * TraceModelServing       af_trace_model_serving       model_serving.<op>             SERVER    model.id, operation
 * TraceMetricsCollection  af_trace_metrics_collection  metrics_collection.<op>        INTERNAL  operation, metrics.count
 * TraceAPIRequest         af_trace_api_request         api_requests.<METHOD> <route>  SERVER    http.method, http.route
 * TraceWebSocketEvent     af_trace_websocket_event     websocket_events.<event>       SERVER    websocket.event, connection.id
 * TraceCostCalculation    af_trace_cost_calculation    cost_tracking.<op>             INTERNAL  operation, cost.gpu_hours
 * AddSpanAttributes       af_span_set_attrs / AF_ATTRS
 * AddSpanEvent            af_span_add_event
 * RecordError             af_span_record_error
 * SetSpanStatus           af_span_set_status
 */
/* clang-format on */
#ifndef AGENTAFLOW_TRACE_HELPERS_H
#define AGENTAFLOW_TRACE_HELPERS_H

#include "agentaflow/trace.h"

#ifdef __cplusplus
extern "C" {
#endif
AF_API_BEGIN

af_span af_trace_gpu_scheduling(af_tracer *t, const af_span_context *parent, const char *operation,
                                const char *gpu_id);
af_span af_trace_model_serving(af_tracer *t, const af_span_context *parent, const char *operation,
                               const char *model_id);
af_span af_trace_metrics_collection(af_tracer *t, const af_span_context *parent,
                                    const char *operation, int64_t metrics_count);
/* route is the low-cardinality template ("/api/v1/gpus/{id}"), not the raw path. */
af_span af_trace_api_request(af_tracer *t, const af_span_context *parent, const char *method,
                             const char *route);
af_span af_trace_websocket_event(af_tracer *t, const af_span_context *parent, const char *event,
                                 const char *connection_id);
af_span af_trace_cost_calculation(af_tracer *t, const af_span_context *parent,
                                  const char *operation, double gpu_hours);

/*
 * Ends an operation span: operation.duration_ms (int, from the span's start),
 * operation.status ("success" or "error"); status Ok, or Error with error_message (an
 * `exception` event is added too when error_type is not NULL). err == 0 means success.
 */
void af_operation_end(af_span s, int err, const char *error_type, const char *error_message);

AF_API_END
#ifdef __cplusplus
}
#endif
#endif
