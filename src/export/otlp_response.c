/*
 * Decoders for what an OTLP/HTTP collector answers: ExportTraceServiceResponse on 200
 * (partial success) and google.rpc.Status on errors, each in protobuf or JSON. Bodies come
 * from the network, so every malformed input is an AF_EPARSE (or an empty message), never a
 * crash.
 */
#include "export/encode.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "util/str.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse pb_response;

static void response_clear(af_otlp_response *out)
{
    out->has_partial_success = false;
    out->rejected_spans = 0;
    out->error_message[0] = '\0';
}

int af__otlp_proto_decode_response(const uint8_t *p, size_t n, af_otlp_response *out)
{
    if (!out)
        return -EINVAL;
    response_clear(out);
    if (n == 0)
        return 0;
    if (!p)
        return AF_EPARSE;
    pb_response *r =
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(NULL, n,
                                                                                          p);
    if (!r)
        return AF_EPARSE;
    if (r->partial_success) {
        out->has_partial_success = true;
        out->rejected_spans = r->partial_success->rejected_spans;
        af__strlcpy(out->error_message,
                    r->partial_success->error_message ? r->partial_success->error_message : "",
                    sizeof(out->error_message));
    }
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(r,
                                                                                             NULL);
    return 0;
}

/* True when the body holds nothing but JSON whitespace. */
static bool json_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            return false;
    return true;
}

/* proto3 JSON parsers accept the lowerCamelCase name and the original field name. */
static json_t *get_field(json_t *obj, const char *camel, const char *snake)
{
    json_t *v = json_object_get(obj, camel);
    return v ? v : json_object_get(obj, snake);
}

/* int64 in proto3 JSON: a decimal string or an integral number. */
static int json_int64(json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        /* In range first: converting an out-of-range double is undefined. */
        if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != floor(d))
            return AF_EPARSE;
        *out = (int64_t)d;
        return 0;
    }
    if (!json_is_string(v))
        return AF_EPARSE;
    const char *s = json_string_value(v);
    char *end = NULL;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0')
        return AF_EPARSE;
    *out = (int64_t)x;
    return 0;
}

int af__otlp_json_decode_response(const char *p, size_t n, af_otlp_response *out)
{
    if (!out)
        return -EINVAL;
    response_clear(out);
    if (n == 0 || (p && json_blank(p, n)))
        return 0;
    if (!p)
        return AF_EPARSE;
    json_error_t err;
    json_t *root = json_loadb(p, n, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return AF_EPARSE;
    int rc = 0;
    if (!json_is_object(root)) {
        rc = AF_EPARSE;
        goto out;
    }
    json_t *ps = get_field(root, "partialSuccess", "partial_success");
    if (!ps || json_is_null(ps))
        goto out;
    if (!json_is_object(ps)) {
        rc = AF_EPARSE;
        goto out;
    }
    json_t *rej = get_field(ps, "rejectedSpans", "rejected_spans");
    json_t *msg = get_field(ps, "errorMessage", "error_message");
    int64_t rejected = 0;
    if (rej && !json_is_null(rej) && json_int64(rej, &rejected) != 0) {
        rc = AF_EPARSE;
        goto out;
    }
    if (msg && !json_is_null(msg) && !json_is_string(msg)) {
        rc = AF_EPARSE;
        goto out;
    }
    out->has_partial_success = true;
    out->rejected_spans = rejected;
    if (json_is_string(msg))
        af__strlcpy(out->error_message, json_string_value(msg), sizeof(out->error_message));
out:
    json_decref(root);
    return rc;
}

void af__otlp_decode_status_message(const uint8_t *p, size_t n, bool json, char *out,
                                    size_t out_len)
{
    if (!out || out_len == 0)
        return;
    out[0] = '\0';
    if (!p || n == 0)
        return;
    if (json) {
        json_t *root = json_loadb((const char *)p, n, 0, NULL);
        json_t *msg = json_is_object(root) ? json_object_get(root, "message") : NULL;
        if (json_is_string(msg))
            af__strlcpy(out, json_string_value(msg), out_len);
        json_decref(root);
        return;
    }
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, n, p);
    if (!st)
        return;
    if (st->message)
        af__strlcpy(out, st->message, out_len);
    google__rpc__status__free_unpacked(st, NULL);
}
