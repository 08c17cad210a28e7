/*
 * OTLP encoders and response decoders: exact bytes of a small request, every attribute
 * type, grouping by resource and scope, span/link flags, the JSON mapping's quirks, and the
 * decoders on valid and malformed bodies.
 */
#include "testutil.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "export/encode.h"
#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest pb_request;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse pb_response;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;

static const af_instrumentation_scope scope_lib = {"lib", "1.0", "", NULL, 0};
static const af_instrumentation_scope scope_other = {"other", "", "https://schema/scope", NULL, 0};

static af_resource *resource_kv(const char *k, const char *v)
{
    af_resource *r = NULL;
    assert_int_equal(af_resource_new_raw(AF_ATTRS(AF_STR(k, v)), &r), 0);
    return r;
}

/* A root span with ids 01..10 / a1..a8, sampled, SERVER, 1 s .. 1 s + 500 ns. */
static void span_basic(af_span_data *s, const af_resource *r, const af_instrumentation_scope *sc)
{
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < 16; i++)
        s->trace_id[i] = (uint8_t)(i + 1);
    for (int i = 0; i < 8; i++)
        s->span_id[i] = (uint8_t)(0xa1 + i);
    s->trace_flags = 1;
    s->trace_state = "";
    s->name = "op";
    s->kind = AF_SPAN_KIND_SERVER;
    s->start_ns = 1000000000u;
    s->end_ns = 1000000500u;
    s->status_message = "";
    s->resource = r;
    s->scope = sc;
}

static pb_request *unpack(const af_buf *b)
{
    pb_request *req =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
            NULL, b->len, b->data);
    assert_non_null(req);
    return req;
}

static void unpack_free(pb_request *req)
{
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req,
                                                                                            NULL);
}

static void test_golden_bytes(void **state)
{
    (void)state;
    af_resource *r = resource_kv("k", "v");
    af_span_data s;
    span_basic(&s, r, &scope_lib);
    const af_span_data *spans[] = {&s};
    af_buf b;
    af__buf_init(&b);
    assert_int_equal(af__otlp_proto_encode(spans, 1, &b), 0);

    static const uint8_t want[] = {
        0x0A, 0x56,                                                /* resource_spans, 86 bytes */
        0x0A, 0x0A,                                                /* resource, 10 */
        0x0A, 0x08, 0x0A, 0x01, 'k',  0x12, 0x03, 0x0A, 0x01, 'v', /* attributes k=v */
        0x12, 0x48,                                                /* scope_spans, 72 */
        0x0A, 0x0A, 0x0A, 0x03, 'l',  'i',  'b',  0x12, 0x03, '1',  '.', '0', /* scope */
        0x12, 0x3A,                                                           /* span, 58 */
        0x0A, 0x10, 1,    2,    3,    4,    5,    6,    7,    8,    9,   10,
        11,   12,   13,   14,   15,   16,                           /* trace_id */
        0x12, 0x08, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, /* span_id */
        0x2A, 0x02, 'o',  'p',                                      /* name */
        0x30, 0x02,                                                 /* kind SERVER */
        0x39, 0x00, 0xCA, 0x9A, 0x3B, 0x00, 0x00, 0x00, 0x00,       /* start 1e9, fixed64 LE */
        0x41, 0xF4, 0xCB, 0x9A, 0x3B, 0x00, 0x00, 0x00, 0x00,       /* end 1e9+500 */
        0x85, 0x01, 0x01, 0x01, 0x00, 0x00, /* flags: sampled | HAS_IS_REMOTE */
    };
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    af__buf_clear(&b);
    af_resource_free(r);
}

static void test_flags_parent_remote(void **state)
{
    (void)state;
    af_span_data s;
    span_basic(&s, NULL, &scope_lib);
    s.has_parent = true;
    s.parent_is_remote = true;
    memcpy(s.parent_span_id, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
    const af_span_data *spans[] = {&s};
    af_buf b;
    af__buf_init(&b);
    assert_int_equal(af__otlp_proto_encode(spans, 1, &b), 0);
    static const uint8_t parent[] = {0x22, 0x08, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
    static const uint8_t flags[] = {0x85, 0x01, 0x01, 0x03, 0x00, 0x00};
    assert_non_null(memmem(b.data, b.len, parent, sizeof(parent)));
    assert_non_null(memmem(b.data, b.len, flags, sizeof(flags)));

    pb_request *req = unpack(&b);
    pb_span *ps = req->resource_spans[0]->scope_spans[0]->spans[0];
    assert_int_equal(ps->flags, 0x301);
    assert_int_equal(ps->parent_span_id.len, 8);
    assert_null(ps->status);
    unpack_free(req);

    /* A local parent: HAS_IS_REMOTE without IS_REMOTE. */
    s.parent_is_remote = false;
    af__buf_reset(&b);
    assert_int_equal(af__otlp_proto_encode(spans, 1, &b), 0);
    req = unpack(&b);
    assert_int_equal(req->resource_spans[0]->scope_spans[0]->spans[0]->flags, 0x101);
    unpack_free(req);
    af__buf_clear(&b);
}

static const char *const str_items[] = {"a", "b"};
static const bool bool_items[] = {true, false};
static const int64_t int_items[] = {-1, INT64_MAX};
static const double dbl_items[] = {0.5, -2.25};

static const af_attr all_types[] = {
    {.key = "s", .type = AF_VAL_STRING, .v.s = {"str", 3}},
    {.key = "b", .type = AF_VAL_BOOL, .v.b = true},
    {.key = "i", .type = AF_VAL_INT, .v.i = -42},
    {.key = "d", .type = AF_VAL_DOUBLE, .v.d = 3.5},
    {.key = "sa", .type = AF_VAL_STRING_ARRAY, .v.arr = {str_items, 2}},
    {.key = "ba", .type = AF_VAL_BOOL_ARRAY, .v.arr = {bool_items, 2}},
    {.key = "ia", .type = AF_VAL_INT_ARRAY, .v.arr = {int_items, 2}},
    {.key = "da", .type = AF_VAL_DOUBLE_ARRAY, .v.arr = {dbl_items, 2}},
};

static void check_all_types(Opentelemetry__Proto__Common__V1__KeyValue **kv, size_t n)
{
    assert_int_equal(n, 8);
    assert_string_equal(kv[0]->key, "s");
    assert_string_equal(kv[0]->value->string_value, "str");
    assert_int_equal(kv[1]->value->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
    assert_true(kv[1]->value->bool_value);
    assert_int_equal(kv[2]->value->int_value, -42);
    assert_true(kv[3]->value->double_value == 3.5);
    Opentelemetry__Proto__Common__V1__ArrayValue *a = kv[4]->value->array_value;
    assert_int_equal(a->n_values, 2);
    assert_string_equal(a->values[0]->string_value, "a");
    assert_string_equal(a->values[1]->string_value, "b");
    a = kv[5]->value->array_value;
    assert_int_equal(a->n_values, 2);
    assert_true(a->values[0]->bool_value);
    assert_int_equal(a->values[1]->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
    assert_false(a->values[1]->bool_value);
    a = kv[6]->value->array_value;
    assert_int_equal(a->values[0]->int_value, -1);
    assert_int_equal(a->values[1]->int_value, INT64_MAX);
    a = kv[7]->value->array_value;
    assert_true(a->values[0]->double_value == 0.5);
    assert_true(a->values[1]->double_value == -2.25);
}

static void test_attribute_types_events_links(void **state)
{
    (void)state;
    af_resource *r = NULL;
    assert_int_equal(af_resource_new_raw(all_types, 8, &r), 0);
    af_span_data s;
    span_basic(&s, r, &scope_lib);
    s.trace_state = "k=v";
    s.attrs = all_types;
    s.n_attrs = 8;
    s.dropped_attrs = 3;
    af_event_data ev = {
        .time_ns = 1000000100u, .name = "ev", .attrs = all_types, .n_attrs = 8, .dropped_attrs = 1};
    af_link_data ln = {.trace_flags = 1,
                       .is_remote = true,
                       .trace_state = "x=y",
                       .attrs = all_types + 2,
                       .n_attrs = 1,
                       .dropped_attrs = 2};
    memset(ln.trace_id, 0xee, 16);
    memset(ln.span_id, 0xdd, 8);
    s.events = &ev;
    s.n_events = 1;
    s.dropped_events = 4;
    s.links = &ln;
    s.n_links = 1;
    s.dropped_links = 5;
    s.status = AF_STATUS_ERROR;
    s.status_message = "boom";
    const af_span_data *spans[] = {&s};
    af_buf b;
    af__buf_init(&b);
    assert_int_equal(af__otlp_proto_encode(spans, 1, &b), 0);
    pb_request *req = unpack(&b);
    check_all_types(req->resource_spans[0]->resource->attributes,
                    req->resource_spans[0]->resource->n_attributes);
    pb_span *ps = req->resource_spans[0]->scope_spans[0]->spans[0];
    check_all_types(ps->attributes, ps->n_attributes);
    assert_string_equal(ps->trace_state, "k=v");
    assert_int_equal(ps->dropped_attributes_count, 3);
    assert_int_equal(ps->n_events, 1);
    assert_int_equal(ps->events[0]->time_unix_nano, 1000000100u);
    assert_string_equal(ps->events[0]->name, "ev");
    check_all_types(ps->events[0]->attributes, ps->events[0]->n_attributes);
    assert_int_equal(ps->events[0]->dropped_attributes_count, 1);
    assert_int_equal(ps->dropped_events_count, 4);
    assert_int_equal(ps->n_links, 1);
    assert_memory_equal(ps->links[0]->trace_id.data, ln.trace_id, 16);
    assert_memory_equal(ps->links[0]->span_id.data, ln.span_id, 8);
    assert_string_equal(ps->links[0]->trace_state, "x=y");
    assert_int_equal(ps->links[0]->flags, 0x301);
    assert_int_equal(ps->links[0]->n_attributes, 1);
    assert_int_equal(ps->links[0]->attributes[0]->value->int_value, -42);
    assert_int_equal(ps->links[0]->dropped_attributes_count, 2);
    assert_int_equal(ps->dropped_links_count, 5);
    assert_non_null(ps->status);
    assert_int_equal(ps->status->code, 2);
    assert_string_equal(ps->status->message, "boom");
    assert_int_equal(ps->kind, 2);
    unpack_free(req);

    /* Ok keeps the code and never carries a description. */
    s.status = AF_STATUS_OK;
    af__buf_reset(&b);
    assert_int_equal(af__otlp_proto_encode(spans, 1, &b), 0);
    req = unpack(&b);
    ps = req->resource_spans[0]->scope_spans[0]->spans[0];
    assert_non_null(ps->status);
    assert_int_equal(ps->status->code, 1);
    assert_string_equal(ps->status->message, "");
    unpack_free(req);
    af__buf_clear(&b);
    af_resource_free(r);
}

static void test_grouping(void **state)
{
    (void)state;
    af_resource *r1 = resource_kv("service.name", "one");
    af_resource *r2 = resource_kv("service.name", "two");
    assert_int_equal(af_resource_set_schema_url(r2, "https://schema/res"), 0);
    af_span_data s[5];
    span_basic(&s[0], r1, &scope_lib);
    span_basic(&s[1], r2, &scope_lib);
    span_basic(&s[2], r1, &scope_other);
    span_basic(&s[3], r1, &scope_lib);
    span_basic(&s[4], r2, &scope_lib);
    for (int i = 0; i < 5; i++)
        s[i].start_ns = (uint64_t)i;
    const af_span_data *spans[] = {&s[0], &s[1], &s[2], &s[3], &s[4]};
    af_buf b;
    af__buf_init(&b);
    assert_int_equal(af__otlp_proto_encode(spans, 5, &b), 0);
    pb_request *req = unpack(&b);
    assert_int_equal(req->n_resource_spans, 2);
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[0];
    assert_string_equal(rs->resource->attributes[0]->value->string_value, "one");
    assert_string_equal(rs->schema_url, "");
    assert_int_equal(rs->n_scope_spans, 2);
    assert_string_equal(rs->scope_spans[0]->scope->name, "lib");
    assert_string_equal(rs->scope_spans[0]->scope->version, "1.0");
    assert_int_equal(rs->scope_spans[0]->n_spans, 2);
    assert_int_equal(rs->scope_spans[0]->spans[0]->start_time_unix_nano, 0);
    assert_int_equal(rs->scope_spans[0]->spans[1]->start_time_unix_nano, 3);
    assert_string_equal(rs->scope_spans[1]->scope->name, "other");
    assert_string_equal(rs->scope_spans[1]->schema_url, "https://schema/scope");
    assert_int_equal(rs->scope_spans[1]->n_spans, 1);
    assert_int_equal(rs->scope_spans[1]->spans[0]->start_time_unix_nano, 2);
    rs = req->resource_spans[1];
    assert_string_equal(rs->resource->attributes[0]->value->string_value, "two");
    assert_string_equal(rs->schema_url, "https://schema/res");
    assert_int_equal(rs->n_scope_spans, 1);
    assert_int_equal(rs->scope_spans[0]->n_spans, 2);
    assert_int_equal(rs->scope_spans[0]->spans[0]->start_time_unix_nano, 1);
    assert_int_equal(rs->scope_spans[0]->spans[1]->start_time_unix_nano, 4);
    unpack_free(req);

    /* The JSON encoder groups the same way. */
    af__buf_reset(&b);
    assert_int_equal(af__otlp_json_encode(spans, 5, &b), 0);
    json_t *root = json_loadb((const char *)b.data, b.len, 0, NULL);
    assert_non_null(root);
    json_t *rsj = json_object_get(root, "resourceSpans");
    assert_int_equal(json_array_size(rsj), 2);
    json_t *ss0 = json_object_get(json_array_get(rsj, 0), "scopeSpans");
    assert_int_equal(json_array_size(ss0), 2);
    assert_int_equal(json_array_size(json_object_get(json_array_get(ss0, 0), "spans")), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ss0, 1), "schemaUrl")),
                        "https://schema/scope");
    assert_string_equal(json_string_value(json_object_get(json_array_get(rsj, 1), "schemaUrl")),
                        "https://schema/res");
    json_decref(root);
    af__buf_clear(&b);
    af_resource_free(r1);
    af_resource_free(r2);
}

static void test_invalid_and_empty(void **state)
{
    (void)state;
    af_buf b;
    af__buf_init(&b);
    const af_span_data *spans[] = {NULL};
    assert_int_equal(af__otlp_proto_encode(spans, 1, &b), -EINVAL);
    assert_int_equal(af__otlp_json_encode(spans, 1, &b), -EINVAL);
    assert_int_equal(af__otlp_proto_encode(NULL, 1, &b), -EINVAL);
    assert_int_equal(af__otlp_proto_encode(NULL, 0, &b), 0);
    assert_int_equal(b.len, 0); /* an empty request packs to nothing */
    assert_int_equal(af__otlp_json_encode(NULL, 0, &b), 0);
    af__buf_terminate(&b);
    assert_string_equal((const char *)b.data, "{\"resourceSpans\":[]}");
    af__buf_clear(&b);
}

static bool contains(const af_buf *b, const char *needle)
{
    return memmem(b->data, b->len, needle, strlen(needle)) != NULL;
}

static void test_json_text(void **state)
{
    (void)state;
    af_resource *r = resource_kv("service.name", "svc");
    af_span_data s;
    span_basic(&s, r, &scope_lib);
    s.has_parent = true;
    memcpy(s.parent_span_id, "\xAB\xCD\xEF\x01\x02\x03\x04\x05", 8);
    s.start_ns = 1544712660000000000u;
    s.attrs = all_types;
    s.n_attrs = 8;
    s.dropped_attrs = 7;
    static const double odd[] = {NAN, INFINITY, -INFINITY, 0.1};
    af_attr extra[] = {AF_DOUBLE_ARRAY("odd", odd, 4), AF_STR("esc", "q\"\n\x01"),
                       AF_INT("min", INT64_MIN)};
    af_event_data ev = {.time_ns = 5, .name = "ev", .attrs = extra, .n_attrs = 3};
    s.events = &ev;
    s.n_events = 1;
    s.status = AF_STATUS_ERROR;
    s.status_message = "bad";
    const af_span_data *spans[] = {&s};
    af_buf b;
    af__buf_init(&b);
    assert_int_equal(af__otlp_json_encode(spans, 1, &b), 0);
    assert_true(contains(&b, "\"traceId\":\"0102030405060708090a0b0c0d0e0f10\""));
    assert_true(contains(&b, "\"spanId\":\"a1a2a3a4a5a6a7a8\""));
    assert_true(contains(&b, "\"parentSpanId\":\"abcdef0102030405\""));
    assert_true(contains(&b, "\"startTimeUnixNano\":\"1544712660000000000\""));
    assert_true(contains(&b, "\"endTimeUnixNano\":\"1000000500\""));
    assert_true(contains(&b, "\"kind\":2"));
    assert_true(contains(&b, "\"flags\":257"));
    assert_true(contains(&b, "{\"key\":\"i\",\"value\":{\"intValue\":\"-42\"}}"));
    assert_true(contains(&b, "{\"key\":\"b\",\"value\":{\"boolValue\":true}}"));
    assert_true(contains(&b, "{\"key\":\"d\",\"value\":{\"doubleValue\":3.5}}"));
    assert_true(contains(&b, "\"arrayValue\":{\"values\":[{\"stringValue\":\"a\"},"
                             "{\"stringValue\":\"b\"}]}"));
    assert_true(contains(&b, "[{\"intValue\":\"-1\"},{\"intValue\":\"9223372036854775807\"}]"));
    assert_true(contains(&b, "\"intValue\":\"-9223372036854775808\""));
    assert_true(contains(&b, "[{\"doubleValue\":\"NaN\"},{\"doubleValue\":\"Infinity\"},"
                             "{\"doubleValue\":\"-Infinity\"},{\"doubleValue\":0.1}]"));
    assert_true(contains(&b, "\"stringValue\":\"q\\\"\\n\\u0001\""));
    assert_true(contains(&b, "\"droppedAttributesCount\":7"));
    assert_true(contains(&b, "\"timeUnixNano\":\"5\""));
    assert_true(contains(&b, "\"status\":{\"message\":\"bad\",\"code\":2}"));
    assert_true(contains(&b, "\"scope\":{\"name\":\"lib\",\"version\":\"1.0\"}"));
    /* Defaults are left out. */
    assert_false(contains(&b, "traceState"));
    assert_false(contains(&b, "droppedEventsCount"));
    assert_false(contains(&b, "links"));
    assert_false(contains(&b, "_"));
    json_error_t err;
    json_t *root = json_loadb((const char *)b.data, b.len, 0, &err);
    assert_non_null(root);
    json_decref(root);

    /* The single-span form, compact and pretty, parses to the same object. */
    af_buf one, pretty;
    af__buf_init(&one);
    af__buf_init(&pretty);
    assert_int_equal(af__otlp_json_span(&s, &one, false), 0);
    assert_int_equal(af__otlp_json_span(&s, &pretty, true), 0);
    assert_true(contains(&b, (af__buf_terminate(&one), (const char *)one.data)));
    assert_true(contains(&pretty, "{\n  \"traceId\": \"0102"));
    assert_true(contains(&pretty, "\n  \"attributes\": [\n    {\n      \"key\": \"s\",\n"));
    assert_true(contains(&pretty, "\n}") && pretty.data[pretty.len - 1] == '}');
    json_t *a = json_loadb((const char *)one.data, one.len, 0, NULL);
    json_t *p = json_loadb((const char *)pretty.data, pretty.len, 0, NULL);
    assert_non_null(a);
    assert_non_null(p);
    assert_true(json_equal(a, p));
    json_decref(a);
    json_decref(p);
    af__buf_clear(&one);
    af__buf_clear(&pretty);
    af__buf_clear(&b);
    af_resource_free(r);
}

/* Doubles print as the shortest of "%.15g" and "%.17g" that reads back exactly; the encoder
 * formats short decimals without printf, so compare its text with printf's. */
static void test_json_doubles(void **state)
{
    (void)state;
    static const double vals[] = {12.75,
                                  0.1,
                                  0.3,
                                  -2.5,
                                  100,
                                  3,
                                  1.0 / 3,
                                  1e-4,
                                  1e-5,
                                  0.000123456789012345,
                                  123456789012345.0,
                                  999999999999999.0,
                                  1e15,
                                  9007199254740993.0,
                                  5e-324,
                                  1e300,
                                  -0.0,
                                  0.0,
                                  3.141592653589793,
                                  2.675,
                                  1.005};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        char want[64];
        int n = snprintf(want, sizeof(want), "%.15g", vals[i]);
        if (strtod(want, NULL) != vals[i])
            n = snprintf(want, sizeof(want), "%.17g", vals[i]);
        assert_true(n > 0);
        char needle[96];
        snprintf(needle, sizeof(needle), "{\"doubleValue\":%s}", want);
        af_span_data s;
        span_basic(&s, NULL, &scope_lib);
        const af_attr a[] = {AF_DOUBLE("d", vals[i])};
        s.attrs = a;
        s.n_attrs = 1;
        af_buf b;
        af__buf_init(&b);
        assert_int_equal(af__otlp_json_span(&s, &b, false), 0);
        if (!contains(&b, needle))
            fail_msg("%.17g: want %s in %.*s", vals[i], needle, (int)b.len, (const char *)b.data);
        af__buf_clear(&b);
    }
}

static void test_decode_response_proto(void **state)
{
    (void)state;
    af_otlp_response r;
    memset(&r, 0x55, sizeof(r));
    assert_int_equal(af__otlp_proto_decode_response(NULL, 0, &r), 0);
    assert_false(r.has_partial_success);
    assert_string_equal(r.error_message, "");

    Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
    ps.rejected_spans = 5;
    ps.error_message = "too old";
    pb_response resp =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
    resp.partial_success = &ps;
    uint8_t buf[64];
    size_t n = protobuf_c_message_pack(&resp.base, buf);
    assert_int_equal(af__otlp_proto_decode_response(buf, n, &r), 0);
    assert_true(r.has_partial_success);
    assert_int_equal(r.rejected_spans, 5);
    assert_string_equal(r.error_message, "too old");

    /* A response without partial_success (e.g. an unknown field only). */
    static const uint8_t unknown[] = {0x10, 0x01};
    assert_int_equal(af__otlp_proto_decode_response(unknown, sizeof(unknown), &r), 0);
    assert_false(r.has_partial_success);

    static const uint8_t garbage[][4] = {
        {0x0A, 0x05, 0x08}, {0xFF, 0xFF, 0xFF, 0xFF}, {0x0A, 0x02, 0x12, 0x09}, {0x07, 0, 0, 0}};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(af__otlp_proto_decode_response(garbage[i], 4, &r), AF_EPARSE);
}

static void test_decode_response_json(void **state)
{
    (void)state;
    af_otlp_response r;
    static const struct {
        const char *body;
        int rc;
        bool has;
        int64_t rejected;
        const char *msg;
    } cases[] = {
        {"", 0, false, 0, ""},
        {" \n", 0, false, 0, ""},
        {"{}", 0, false, 0, ""},
        {"{\"partialSuccess\":{}}", 0, true, 0, ""},
        {"{\"partialSuccess\":{\"rejectedSpans\":\"5\",\"errorMessage\":\"x\"}}", 0, true, 5, "x"},
        {"{\"partialSuccess\":{\"rejectedSpans\":7}}", 0, true, 7, ""},
        {"{\"partial_success\":{\"rejected_spans\":2,\"error_message\":\"s\"}}", 0, true, 2, "s"},
        {"{\"partialSuccess\":{\"rejectedSpans\":\"abc\"}}", AF_EPARSE, false, 0, ""},
        {"{\"partialSuccess\":{\"rejectedSpans\":1.5}}", AF_EPARSE, false, 0, ""},
        {"{\"partialSuccess\":{\"rejectedSpans\":1e300}}", AF_EPARSE, false, 0, ""},
        {"{\"partialSuccess\":{\"errorMessage\":3}}", AF_EPARSE, false, 0, ""},
        {"{\"partialSuccess\":[]}", AF_EPARSE, false, 0, ""},
        {"[1,2]", AF_EPARSE, false, 0, ""},
        {"{\"partialSuccess\":", AF_EPARSE, false, 0, ""},
        {"\xff\xfe", AF_EPARSE, false, 0, ""},
        /* The hand-written reader: escapes in names, duplicates, surrogates, number range. */
        {"{\"partial\\u0053uccess\":{\"rejectedSpans\":3}}", 0, true, 3, ""},
        {"{\"partialSuccess\":{\"rejectedSpans\":1,\"rejectedSpans\":2}}", AF_EPARSE, false, 0, ""},
        {"{\"partialSuccess\":{\"errorMessage\":\"\\ud83d\\ude00 \\\"q\\\"\"}}", 0, true, 0,
         "\xf0\x9f\x98\x80 \"q\""},
        {"{\"partialSuccess\":{\"errorMessage\":\"\\ud83d\"}}", AF_EPARSE, false, 0, ""},
        {"{\"partialSuccess\":{\"errorMessage\":\"a\\u0000\"}}", AF_EPARSE, false, 0, ""},
        {"{\"partialSuccess\":{\"errorMessage\":\"\xc0\xaf\"}}", AF_EPARSE, false, 0, ""},
        {"{\"partialSuccess\":{\"rejectedSpans\":99999999999999999999}}", AF_EPARSE, false, 0, ""},
        {"{\"partialSuccess\":{\"rejectedSpans\":-0.0e1}}", 0, true, 0, ""},
        {"{\"partialSuccess\":{\"rejectedSpans\":01}}", AF_EPARSE, false, 0, ""},
        {"{\"other\":[1,{\"a\":[true,false,null]}],\"partialSuccess\":null}", 0, false, 0, ""},
        {"{\"partialSuccess\":{}} x", AF_EPARSE, false, 0, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = af__otlp_json_decode_response(cases[i].body, strlen(cases[i].body), &r);
        assert_int_equal(rc, cases[i].rc);
        if (rc == 0) {
            assert_int_equal(r.has_partial_success, cases[i].has);
            assert_int_equal(r.rejected_spans, cases[i].rejected);
            assert_string_equal(r.error_message, cases[i].msg);
        }
    }
    /* Long messages are truncated, not overflowed. */
    char body[1024];
    char longmsg[600];
    memset(longmsg, 'm', sizeof(longmsg) - 1);
    longmsg[sizeof(longmsg) - 1] = '\0';
    snprintf(body, sizeof(body), "{\"partialSuccess\":{\"errorMessage\":\"%s\"}}", longmsg);
    assert_int_equal(af__otlp_json_decode_response(body, strlen(body), &r), 0);
    assert_int_equal(strlen(r.error_message), sizeof(r.error_message) - 1);

    /* Nesting is bounded: a deep document is malformed, not a deep recursion. */
    char deep[200];
    memset(deep, '[', sizeof(deep) - 1);
    deep[sizeof(deep) - 1] = '\0';
    assert_int_equal(af__otlp_json_decode_response(deep, strlen(deep), &r), AF_EPARSE);
}

static void test_decode_status(void **state)
{
    (void)state;
    char msg[16];
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = 3;
    st.message = "invalid span batch";
    uint8_t buf[64];
    size_t n = protobuf_c_message_pack(&st.base, buf);
    af__otlp_decode_status_message(buf, n, false, msg, sizeof(msg));
    assert_string_equal(msg, "invalid span ba");

    static const char json[] = "{\"code\":3,\"message\":\"bad\",\"details\":[]}";
    af__otlp_decode_status_message((const uint8_t *)json, strlen(json), true, msg, sizeof(msg));
    assert_string_equal(msg, "bad");

    static const char *const bad[] = {"{\"message\":5}", "not json", "[\"message\"]", ""};
    for (size_t i = 0; i < 4; i++) {
        strcpy(msg, "x");
        af__otlp_decode_status_message((const uint8_t *)bad[i], strlen(bad[i]), true, msg,
                                       sizeof(msg));
        assert_string_equal(msg, "");
    }
    static const uint8_t garbage[] = {0x12, 0x50, 'x'};
    strcpy(msg, "x");
    af__otlp_decode_status_message(garbage, sizeof(garbage), false, msg, sizeof(msg));
    assert_string_equal(msg, "");
}

/* ---------------------------------------------------------------------------------------- */
/* The schema oracle: the same request built as a protobuf-c message tree from the generated
 * code and packed by protobuf_c_message_pack. The encoder writes the wire format by hand; its
 * bytes must be identical. */

typedef Opentelemetry__Proto__Trace__V1__ResourceSpans pb_resource_spans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans pb_scope_spans;
typedef Opentelemetry__Proto__Trace__V1__Span__Event pb_event;
typedef Opentelemetry__Proto__Trace__V1__Span__Link pb_link;
typedef Opentelemetry__Proto__Trace__V1__Status pb_status;
typedef Opentelemetry__Proto__Resource__V1__Resource pb_resource;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope pb_scope;
typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__ArrayValue pb_array;

/* Every allocation of one tree, freed together. */
typedef struct pool {
    void **p;
    size_t n, cap;
} pool;

static void *pool_alloc(pool *pl, size_t size)
{
    if (pl->n == pl->cap) {
        pl->cap = pl->cap ? 2 * pl->cap : 64;
        pl->p = realloc(pl->p, pl->cap * sizeof(*pl->p));
        assert_non_null(pl->p);
    }
    void *m = calloc(1, size ? size : 1);
    assert_non_null(m);
    pl->p[pl->n++] = m;
    return m;
}

static void pool_free(pool *pl)
{
    for (size_t i = 0; i < pl->n; i++)
        free(pl->p[i]);
    free(pl->p);
}

/* protobuf-c fields are `char *`; packing never writes through them. A literal "" (not
 * protobuf_c_empty_string) makes an empty oneof string count as set. */
static char *oracle_str(const char *s)
{
    return (char *)(s ? s : "");
}

static pb_any *oracle_item(pool *pl, const af_attr *a, size_t i)
{
    static const pb_any any_init = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    pb_any *v = pool_alloc(pl, sizeof(*v));
    *v = any_init;
    switch (a->type) {
    case AF_VAL_STRING_ARRAY:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        v->string_value = oracle_str(((const char *const *)a->v.arr.items)[i]);
        break;
    case AF_VAL_BOOL_ARRAY:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
        v->bool_value = ((const bool *)a->v.arr.items)[i];
        break;
    case AF_VAL_INT_ARRAY:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        v->int_value = ((const int64_t *)a->v.arr.items)[i];
        break;
    default:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        v->double_value = ((const double *)a->v.arr.items)[i];
        break;
    }
    return v;
}

static pb_kv **oracle_attrs(pool *pl, const af_attr *attrs, size_t n, size_t *n_out)
{
    static const pb_kv kv_init = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    static const pb_any any_init = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    static const pb_array arr_init = OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT;
    pb_kv **out = pool_alloc(pl, n * sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        const af_attr *a = &attrs[i];
        pb_kv *kv = pool_alloc(pl, sizeof(*kv));
        *kv = kv_init;
        kv->key = oracle_str(a->key);
        pb_any *v = pool_alloc(pl, sizeof(*v));
        *v = any_init;
        switch (a->type) {
        case AF_VAL_STRING:
            /* Test strings are NUL-terminated with len == strlen or AF_LEN_NUL. */
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            v->string_value = oracle_str(a->v.s.ptr);
            break;
        case AF_VAL_BOOL:
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
            v->bool_value = a->v.b;
            break;
        case AF_VAL_INT:
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
            v->int_value = a->v.i;
            break;
        case AF_VAL_DOUBLE:
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
            v->double_value = a->v.d;
            break;
        default: {
            pb_array *arr = pool_alloc(pl, sizeof(*arr));
            *arr = arr_init;
            arr->n_values = a->v.arr.count;
            arr->values = pool_alloc(pl, a->v.arr.count * sizeof(*arr->values));
            for (size_t j = 0; j < a->v.arr.count; j++)
                arr->values[j] = oracle_item(pl, a, j);
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
            v->array_value = arr;
            break;
        }
        }
        kv->value = v;
        out[i] = kv;
    }
    *n_out = n;
    return out;
}

static ProtobufCBinaryData oracle_bytes(const uint8_t *p, size_t n)
{
    return (ProtobufCBinaryData){n, (uint8_t *)p};
}

static pb_span *oracle_span(pool *pl, const af_span_data *s)
{
    static const pb_span span_init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    static const pb_event ev_init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__EVENT__INIT;
    static const pb_link ln_init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT;
    static const pb_status status_init = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
    pb_span *ps = pool_alloc(pl, sizeof(*ps));
    *ps = span_init;
    ps->trace_id = oracle_bytes(s->trace_id, 16);
    ps->span_id = oracle_bytes(s->span_id, 8);
    ps->trace_state = oracle_str(s->trace_state);
    if (s->has_parent)
        ps->parent_span_id = oracle_bytes(s->parent_span_id, 8);
    ps->flags = s->trace_flags | 0x100u | (s->parent_is_remote ? 0x200u : 0);
    ps->name = oracle_str(s->name);
    ps->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)s->kind;
    ps->start_time_unix_nano = s->start_ns;
    ps->end_time_unix_nano = s->end_ns;
    ps->attributes = oracle_attrs(pl, s->attrs, s->n_attrs, &ps->n_attributes);
    ps->dropped_attributes_count = s->dropped_attrs;
    ps->n_events = s->n_events;
    ps->events = pool_alloc(pl, s->n_events * sizeof(*ps->events));
    for (uint32_t i = 0; i < s->n_events; i++) {
        const af_event_data *e = &s->events[i];
        pb_event *pe = pool_alloc(pl, sizeof(*pe));
        *pe = ev_init;
        pe->time_unix_nano = e->time_ns;
        pe->name = oracle_str(e->name);
        pe->attributes = oracle_attrs(pl, e->attrs, e->n_attrs, &pe->n_attributes);
        pe->dropped_attributes_count = e->dropped_attrs;
        ps->events[i] = pe;
    }
    ps->dropped_events_count = s->dropped_events;
    ps->n_links = s->n_links;
    ps->links = pool_alloc(pl, s->n_links * sizeof(*ps->links));
    for (uint32_t i = 0; i < s->n_links; i++) {
        const af_link_data *l = &s->links[i];
        pb_link *pk = pool_alloc(pl, sizeof(*pk));
        *pk = ln_init;
        pk->trace_id = oracle_bytes(l->trace_id, 16);
        pk->span_id = oracle_bytes(l->span_id, 8);
        pk->trace_state = oracle_str(l->trace_state);
        pk->attributes = oracle_attrs(pl, l->attrs, l->n_attrs, &pk->n_attributes);
        pk->dropped_attributes_count = l->dropped_attrs;
        pk->flags = l->trace_flags | 0x100u | (l->is_remote ? 0x200u : 0);
        ps->links[i] = pk;
    }
    ps->dropped_links_count = s->dropped_links;
    if (s->status != AF_STATUS_UNSET) {
        pb_status *st = pool_alloc(pl, sizeof(*st));
        *st = status_init;
        st->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)s->status;
        if (s->status == AF_STATUS_ERROR)
            st->message = oracle_str(s->status_message);
        ps->status = st;
    }
    return ps;
}

/* Packs spans[0..n) through protobuf-c into out (appending). */
static void oracle_pack(const af_span_data *const *spans, size_t n, af_buf *out)
{
    static const pb_request req_init =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    static const pb_resource_spans rs_init = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    static const pb_resource res_init = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    static const pb_scope_spans ss_init = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    static const pb_scope scope_init =
        OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
    pool pl = {0};
    af__otlp_groups g;
    assert_int_equal(af__otlp_groups_build(spans, n, &g), 0);
    pb_request req = req_init;
    req.resource_spans = pool_alloc(&pl, g.n_resources * sizeof(*req.resource_spans));
    pb_resource_spans *rs = NULL;
    for (size_t k = 0; k < g.n_groups; k++) {
        const af__otlp_group *gr = &g.groups[k];
        if (gr->new_resource) {
            rs = pool_alloc(&pl, sizeof(*rs));
            *rs = rs_init;
            pb_resource *res = pool_alloc(&pl, sizeof(*res));
            *res = res_init;
            if (gr->resource) {
                size_t nr = 0;
                const af_attr *ra = af_resource_attrs(gr->resource, &nr);
                res->attributes = oracle_attrs(&pl, ra, nr, &res->n_attributes);
                rs->schema_url = oracle_str(af_resource_schema_url(gr->resource));
            }
            rs->resource = res;
            rs->scope_spans = pool_alloc(&pl, g.n_groups * sizeof(*rs->scope_spans));
            req.resource_spans[req.n_resource_spans++] = rs;
        }
        pb_scope_spans *ss = pool_alloc(&pl, sizeof(*ss));
        *ss = ss_init;
        pb_scope *sc = pool_alloc(&pl, sizeof(*sc));
        *sc = scope_init;
        if (gr->scope) {
            sc->name = oracle_str(gr->scope->name);
            sc->version = oracle_str(gr->scope->version);
            sc->attributes =
                oracle_attrs(&pl, gr->scope->attrs, gr->scope->n_attrs, &sc->n_attributes);
            ss->schema_url = oracle_str(gr->scope->schema_url);
        }
        ss->scope = sc;
        ss->n_spans = gr->count;
        ss->spans = pool_alloc(&pl, gr->count * sizeof(*ss->spans));
        for (size_t j = 0; j < gr->count; j++)
            ss->spans[j] = oracle_span(&pl, g.order[gr->first + j]);
        rs->scope_spans[rs->n_scope_spans++] = ss;
    }
    size_t len = protobuf_c_message_get_packed_size(&req.base);
    assert_true(af__buf_reserve(out, len));
    assert_int_equal(protobuf_c_message_pack(&req.base, out->data + out->len), len);
    out->len += len;
    af__otlp_groups_free(&g);
    pool_free(&pl);
}

/* Our bytes equal protobuf-c's, unpack, and pack back to themselves. */
static void check_against_oracle(const af_span_data *const *spans, size_t n)
{
    af_buf ours, want;
    af__buf_init(&ours);
    af__buf_init(&want);
    /* Appending after existing content must not disturb it. */
    af__buf_append(&ours, "xy", 2);
    assert_int_equal(af__otlp_proto_encode(spans, n, &ours), 0);
    assert_memory_equal(ours.data, "xy", 2);
    oracle_pack(spans, n, &want);
    assert_int_equal(ours.len - 2, want.len);
    assert_memory_equal(ours.data + 2, want.data, want.len);

    pb_request *req =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
            NULL, want.len, ours.data + 2);
    assert_non_null(req);
    size_t total = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++)
        for (size_t k = 0; k < req->resource_spans[r]->n_scope_spans; k++)
            total += req->resource_spans[r]->scope_spans[k]->n_spans;
    assert_int_equal(total, n);
    size_t len = protobuf_c_message_get_packed_size(&req->base);
    assert_int_equal(len, want.len);
    uint8_t *again = malloc(len ? len : 1);
    assert_non_null(again);
    assert_int_equal(protobuf_c_message_pack(&req->base, again), len);
    assert_memory_equal(again, want.data, len);
    free(again);
    unpack_free(req);
    af__buf_clear(&ours);
    af__buf_clear(&want);
}

/* Deterministic xorshift so failures reproduce. */
static uint64_t rnd(uint64_t *st)
{
    uint64_t x = *st;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *st = x;
}

static void test_matches_protobuf_c(void **state)
{
    (void)state;
    static char long_str[300], huge_str[20000];
    memset(long_str, 'L', sizeof(long_str) - 1);
    memset(huge_str, 'H', sizeof(huge_str) - 1);
    static const char *const strs[] = {"", "x", NULL, "gpu-0"};
    static const char *const no_strs[] = {NULL};
    static const bool bools[] = {false, true, false};
    static const int64_t ints[] = {0, -1, INT64_MIN, INT64_MAX, 127, 128, -300};
    static const double dbls[] = {0.0, -0.0, NAN, INFINITY, -INFINITY, 1e308, 4.9e-324, -2.5};
    static int64_t many_ints[2100];
    for (size_t i = 0; i < 2100; i++)
        many_ints[i] = (int64_t)i * 1000003 - 1000000000;

    const af_attr attrs[] = {
        AF_STR("s", "value"),
        AF_STR("empty", ""),
        {.key = "null_str", .type = AF_VAL_STRING, .v.s = {NULL, 0}},
        AF_STRN("lenset", "abc", 3),
        AF_STR("", "empty key"),
        {.key = NULL, .type = AF_VAL_INT, .v.i = 5},
        AF_STR("long", long_str),
        AF_BOOL("t", true),
        AF_BOOL("f", false),
        AF_INT("zero", 0),
        AF_INT("neg", -42),
        AF_INT("min", INT64_MIN),
        AF_INT("max", INT64_MAX),
        AF_DOUBLE("d0", 0.0),
        AF_DOUBLE("dneg0", -0.0),
        AF_DOUBLE("nan", NAN),
        AF_DOUBLE("inf", INFINITY),
        AF_DOUBLE("ninf", -INFINITY),
        AF_DOUBLE("pi", 3.141592653589793),
        AF_STR_ARRAY("sa", strs, 4),
        AF_STR_ARRAY("sa0", no_strs, 0),
        AF_STR_ARRAY("sa_null", no_strs, 1),
        AF_BOOL_ARRAY("ba", bools, 3),
        AF_BOOL_ARRAY("ba0", bools, 0),
        AF_INT_ARRAY("ia", ints, 7),
        AF_INT_ARRAY("ia0", ints, 0),
        AF_INT_ARRAY("ia_many", many_ints, 2100), /* ArrayValue over 16 KiB */
        AF_DOUBLE_ARRAY("da", dbls, 8),
        AF_DOUBLE_ARRAY("da0", dbls, 0),
    };
    const size_t n_all = sizeof(attrs) / sizeof(attrs[0]);
    const af_attr huge[] = {AF_STR("huge", huge_str)};

    af_resource *r1 = NULL, *r2 = NULL, *r3 = NULL, *r4 = NULL;
    /* Resources copy their attributes and reject empty keys and NULL values. */
    assert_int_equal(af_resource_new_raw(attrs, 4, &r1), 0);
    static const char *const res_strs[] = {"", "y"};
    const af_attr res_attrs[] = {AF_STR("service.name", "svc"), AF_STR_ARRAY("sa", res_strs, 2),
                                 AF_DOUBLE("nan", NAN), AF_INT_ARRAY("ia", ints, 7)};
    assert_int_equal(af_resource_new_raw(attrs + 6, 13, &r2), 0);
    assert_int_equal(af_resource_new_raw(res_attrs, 4, &r3), 0);
    assert_int_equal(af_resource_set_schema_url(r2, "https://opentelemetry.io/schemas/1.24.0"), 0);
    assert_int_equal(af_resource_new_raw(NULL, 0, &r4), 0);
    /* Scope attributes: every type, plus the empty and NULL keys only a hand-built scope has. */
    const af_instrumentation_scope sc_full = {"lib.a", "1.2.3", "https://schema/a", attrs + 3, 16};
    static const af_instrumentation_scope sc_empty = {"", "", "", NULL, 0};
    static const af_instrumentation_scope sc_null = {NULL, NULL, NULL, NULL, 0};
    const af_resource *resources[] = {r1, r2, r3, r4, NULL};
    const af_instrumentation_scope *scopes[] = {&scope_lib, &sc_full, &sc_empty, &sc_null, NULL};
    static const char *const states[] = {"", NULL, "k=v,a=b"};
    static const char *const names[] = {"op", "", NULL, "a much longer operation name"};
    static const uint32_t counts[] = {0, 1, 127, 128, 16384, UINT32_MAX};
    static const int kinds[] = {0, 1, 2, 3, 4, 5};
    static const af_status_code statuses[] = {AF_STATUS_UNSET, AF_STATUS_OK, AF_STATUS_ERROR};
    static const char *const messages[] = {"", "boom", NULL};

    enum { N = 96 };
    af_span_data s[N];
    af_event_data ev[N][3];
    af_link_data ln[N][2];
    const af_span_data *spans[N];
    uint64_t st = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < N; i++) {
        af_span_data *d = &s[i];
        memset(d, 0, sizeof(*d));
        for (int k = 0; k < 16; k++)
            d->trace_id[k] = (uint8_t)rnd(&st);
        for (int k = 0; k < 8; k++)
            d->span_id[k] = (uint8_t)rnd(&st);
        d->has_parent = rnd(&st) % 2;
        if (d->has_parent)
            for (int k = 0; k < 8; k++)
                d->parent_span_id[k] = (uint8_t)rnd(&st);
        d->parent_is_remote = rnd(&st) % 2;
        d->trace_flags = (uint8_t)(rnd(&st) % 3 == 0 ? 0 : rnd(&st));
        d->trace_state = states[rnd(&st) % 3];
        d->name = names[rnd(&st) % 4];
        d->kind = (af_span_kind)kinds[rnd(&st) % 6];
        d->start_ns = rnd(&st) % 5 == 0 ? 0 : rnd(&st);
        d->end_ns = rnd(&st) % 5 == 0 ? 0 : rnd(&st);
        size_t first = rnd(&st) % n_all;
        d->attrs = attrs + first;
        d->n_attrs = (uint32_t)(rnd(&st) % (n_all - first + 1));
        d->dropped_attrs = counts[rnd(&st) % 6];
        d->n_events = (uint32_t)(rnd(&st) % 4);
        for (uint32_t e = 0; e < d->n_events; e++) {
            size_t f = rnd(&st) % n_all;
            ev[i][e] = (af_event_data){.time_ns = rnd(&st) % 4 == 0 ? 0 : rnd(&st),
                                       .name = names[rnd(&st) % 4],
                                       .attrs = attrs + f,
                                       .n_attrs = (uint32_t)(rnd(&st) % (n_all - f + 1)),
                                       .dropped_attrs = counts[rnd(&st) % 6]};
        }
        d->events = ev[i];
        d->dropped_events = counts[rnd(&st) % 6];
        d->n_links = (uint32_t)(rnd(&st) % 3);
        for (uint32_t l = 0; l < d->n_links; l++) {
            af_link_data *k = &ln[i][l];
            memset(k, 0, sizeof(*k));
            for (int b = 0; b < 16; b++)
                k->trace_id[b] = (uint8_t)rnd(&st);
            for (int b = 0; b < 8; b++)
                k->span_id[b] = (uint8_t)rnd(&st);
            k->trace_flags = (uint8_t)rnd(&st);
            k->is_remote = rnd(&st) % 2;
            k->trace_state = states[rnd(&st) % 3];
            size_t f = rnd(&st) % n_all;
            k->attrs = attrs + f;
            k->n_attrs = (uint32_t)(rnd(&st) % (n_all - f + 1));
            k->dropped_attrs = counts[rnd(&st) % 6];
        }
        d->links = ln[i];
        d->dropped_links = counts[rnd(&st) % 6];
        d->status = statuses[rnd(&st) % 3];
        d->status_message = messages[rnd(&st) % 3];
        /* Mostly two resources and two scopes; now and then the rarer shapes. */
        d->resource = resources[rnd(&st) % 8 == 0 ? 2 + rnd(&st) % 3 : rnd(&st) % 2];
        d->scope = scopes[rnd(&st) % 8 == 0 ? 2 + rnd(&st) % 3 : rnd(&st) % 2];
        spans[i] = d;
    }
    /* One span over 16 KiB, so three-byte length prefixes appear at every level. */
    s[7].attrs = huge;
    s[7].n_attrs = 1;

    check_against_oracle(spans, N);
    check_against_oracle(spans, 0);
    for (size_t i = 0; i < N; i++)
        check_against_oracle(&spans[i], 1);
    /* The single-group fast path of the grouping. */
    for (size_t i = 0; i < N; i++) {
        s[i].resource = r2;
        s[i].scope = &sc_full;
    }
    check_against_oracle(spans, N);
    af_resource_free(r1);
    af_resource_free(r2);
    af_resource_free(r3);
    af_resource_free(r4);
}

/* A tracer's scope attributes travel from af_tracer_provider_get_tracer_opts through the
 * span copy to InstrumentationScope.attributes (field 3) in both encodings. */
static void test_scope_attributes(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    static const int64_t ranks[] = {0, 1};
    af_tracer_opts o;
    af_tracer_opts_init(&o);
    o.name = "gpu.lib";
    o.version = "2.0";
    const af_attr scope_attrs[] = {AF_STR("lib.owner", "sre"), AF_INT("lib.shard", 3),
                                   AF_INT_ARRAY("lib.ranks", ranks, 2)};
    o.attrs = scope_attrs;
    o.n_attrs = 3;
    af_tracer *t = af_tracer_provider_get_tracer_opts(env.provider, &o);
    af_span_end(af_span_start(t, "scoped", NULL));
    af_span_copy *hold[1];
    assert_int_equal(af_test_spans(&env, hold, 1), 1);
    const af_span_data *d = af_span_copy_data(hold[0]);
    assert_int_equal(d->scope->n_attrs, 3);

    af_buf b;
    af__buf_init(&b);
    assert_int_equal(af__otlp_proto_encode(&d, 1, &b), 0);
    /* The scope message on the wire: name, version, then three KeyValues under tag 0x1A. */
    static const uint8_t owner_kv[] = {0x1A, 0x12, 0x0A, 0x09, 'l',  'i',  'b',  '.', 'o', 'w',
                                       'n',  'e',  'r',  0x12, 0x05, 0x0A, 0x03, 's', 'r', 'e'};
    assert_non_null(memmem(b.data, b.len, owner_kv, sizeof(owner_kv)));
    pb_request *req = unpack(&b);
    const pb_scope *sc = req->resource_spans[0]->scope_spans[0]->scope;
    assert_string_equal(sc->name, "gpu.lib");
    assert_string_equal(sc->version, "2.0");
    assert_int_equal(sc->n_attributes, 3);
    assert_int_equal(sc->dropped_attributes_count, 0);
    assert_string_equal(sc->attributes[0]->key, "lib.owner");
    assert_string_equal(sc->attributes[0]->value->string_value, "sre");
    assert_string_equal(sc->attributes[1]->key, "lib.shard");
    assert_int_equal(sc->attributes[1]->value->int_value, 3);
    assert_string_equal(sc->attributes[2]->key, "lib.ranks");
    assert_int_equal(sc->attributes[2]->value->array_value->n_values, 2);
    unpack_free(req);
    check_against_oracle(&d, 1);

    af__buf_reset(&b);
    assert_int_equal(af__otlp_json_encode(&d, 1, &b), 0);
    json_error_t err;
    json_t *j = json_loadb((const char *)b.data, b.len, 0, &err);
    assert_non_null(j);
    json_t *scope = json_object_get(
        json_array_get(
            json_object_get(json_array_get(json_object_get(j, "resourceSpans"), 0), "scopeSpans"),
            0),
        "scope");
    json_t *attrs = json_object_get(scope, "attributes");
    assert_int_equal(json_array_size(attrs), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(attrs, 1), "key")),
                        "lib.shard");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(attrs, 1), "value"), "intValue")),
                        "3");
    json_decref(j);
    af__buf_clear(&b);
    af_test_spans_free(hold, 1);
    af_test_env_free(&env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_bytes),
        cmocka_unit_test(test_flags_parent_remote),
        cmocka_unit_test(test_attribute_types_events_links),
        cmocka_unit_test(test_grouping),
        cmocka_unit_test(test_invalid_and_empty),
        cmocka_unit_test(test_matches_protobuf_c),
        cmocka_unit_test(test_scope_attributes),
        cmocka_unit_test(test_json_text),
        cmocka_unit_test(test_json_doubles),
        cmocka_unit_test(test_decode_response_proto),
        cmocka_unit_test(test_decode_response_json),
        cmocka_unit_test(test_decode_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
