/*
 * export/encode.h - wire encoders shared by the exporters (internal).
 *
 * Every encoder appends to `out` (util/buf.h) and returns 0, -EINVAL or -ENOMEM. Spans are
 * borrowed for the call. The OTLP encoders group spans by resource and then by
 * instrumentation scope (pointer identity), keeping first-seen order. The Jaeger encoder
 * writes one Thrift Batch; all spans must share one resource (the exporter splits by
 * resource before calling it).
 */
#ifndef AF_EXPORT_ENCODE_H
#define AF_EXPORT_ENCODE_H

#include "agentaflow/trace_sdk.h"
#include "util/buf.h"

/* ExportTraceServiceRequest, protobuf binary: the wire format of proto/ written directly (the
 * protobuf-c generated code is the unit test's oracle for the bytes). */
int af__otlp_proto_encode(const af_span_data *const *spans, size_t n, af_buf *out);
/* ExportTraceServiceRequest, OTLP/JSON (hex ids, 64-bit integers as strings, enums as
 * integers, lowerCamelCase keys). */
int af__otlp_json_encode(const af_span_data *const *spans, size_t n, af_buf *out);
/* jaeger.thrift Batch in the Thrift binary protocol (no RPC envelope). */
int af__jaeger_thrift_encode(const af_span_data *const *spans, size_t n, af_buf *out);

/* One span as an OTLP/JSON Span object (the same text as inside af__otlp_json_encode); with
 * `pretty` the object is indented by two spaces per level. Used by the stdout exporter. */
int af__otlp_json_span(const af_span_data *s, af_buf *out, bool pretty);

/* Grouping shared by both OTLP encoders (otlp_proto.c). A group is one (resource, scope)
 * pair; groups of one resource are adjacent, resources and scopes in first-seen order. */
typedef struct af__otlp_group {
    const af_resource *resource;
    const af_instrumentation_scope *scope;
    size_t first; /* index of its first span in af__otlp_groups.order */
    size_t count;
    bool new_resource; /* the first group of its resource */
} af__otlp_group;

typedef struct af__otlp_groups {
    af__otlp_group *groups;
    size_t n_groups;
    size_t n_resources;
    const af_span_data *const *order; /* every span, grouped; may alias the input array */
    void *mem;                        /* owned allocation, NULL on the one-group fast path */
    af__otlp_group one;               /* storage for the one-group fast path */
} af__otlp_groups;

/* 0 or -ENOMEM. `spans` must outlive `g`. */
int af__otlp_groups_build(const af_span_data *const *spans, size_t n, af__otlp_groups *g);
void af__otlp_groups_free(af__otlp_groups *g);

/* What a collector said in a 200 response. */
typedef struct af_otlp_response {
    bool has_partial_success;
    int64_t rejected_spans;
    char error_message[256]; /* truncated copy, "" when none */
} af_otlp_response;

/* Decode ExportTraceServiceResponse bodies (binary or JSON). 0 or AF_EPARSE. An empty body is
 * a valid response without partial success. */
int af__otlp_proto_decode_response(const uint8_t *p, size_t n, af_otlp_response *out);
int af__otlp_json_decode_response(const char *p, size_t n, af_otlp_response *out);
/* google.rpc.Status message text from an error body (binary or JSON), "" when none. */
void af__otlp_decode_status_message(const uint8_t *p, size_t n, bool json, char *out,
                                    size_t out_len);

#endif
