/*
 * interop_fixture DIR: writes DIR/otlp.pb, DIR/otlp.json and DIR/jaeger.thrift, the same
 * three spans in each wire format, for the node decoders next to this file
 * (decode_otlp.js, decode_jaeger.js). The decoders hold their own copy of every value set
 * here; change both together.
 *
 * Spans (one resource, scopes A and B):
 *   1 "GET /v1/gpus"  scope A, root, SERVER, Error "boom", every attribute type, 2 events,
 *                     1 remote link with attributes, dropped counts, trace state
 *   2 "db.query"      scope B, child of 1 (local parent), CLIENT, Ok
 *   3 "worker.step"   scope A, remote parent, INTERNAL, Unset, trace flags 0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/encode.h"

static int write_file(const char *dir, const char *name, const af_buf *b)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return 1;
    }
    size_t w = fwrite(b->data, 1, b->len, f);
    int rc = fclose(f);
    if (w != b->len || rc != 0) {
        perror(path);
        return 1;
    }
    return 0;
}

static void hex_bytes(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
        return 2;
    }
    af_resource *res = NULL;
    if (af_resource_new_raw(AF_ATTRS(AF_STR("service.name", "interop-svc"),
                                     AF_STR("host.name", "node-7"), AF_INT("process.pid", 4242),
                                     AF_DOUBLE("gpu.memory_gb", 79.5),
                                     AF_BOOL("deployment.canary", true)),
                            &res) != 0 ||
        af_resource_set_schema_url(res, "https://opentelemetry.io/schemas/1.24.0") != 0) {
        fprintf(stderr, "resource setup failed\n");
        return 1;
    }
    static const af_instrumentation_scope scope_a = {"scope.a", "1.0.0",
                                                     "https://example.com/scope-a", NULL, 0};
    static const af_instrumentation_scope scope_b = {"scope.b", "", "", NULL, 0};

    static const char *const models[] = {"llama-3", "mistral", ""};
    static const bool bools[] = {true, false, true};
    static const int64_t ints[] = {-1, 0, 9007199254740993, INT64_MIN};
    static const double doubles[] = {0.5, -2.25, 1e300};
    const af_attr attrs1[] = {
        AF_STR("http.method", "GET"),
        AF_STR("note", "quote \" backslash \\ newline \n unicode \xc3\xa9\xe2\x82\xac"),
        AF_BOOL("cache.hit", false),
        AF_INT("http.status_code", 503),
        AF_INT("big", INT64_MAX),
        AF_DOUBLE("ratio", 0.125),
        AF_STR_ARRAY("models", models, 3),
        AF_BOOL_ARRAY("flags", bools, 3),
        AF_INT_ARRAY("ints", ints, 4),
        AF_DOUBLE_ARRAY("doubles", doubles, 3),
    };
    const af_attr ev1_attrs[] = {AF_STR("gpu.id", "gpu-3"), AF_INT("queue.depth", 12)};
    const af_event_data events1[] = {
        {1700000000123556789u, "gpu.assigned", ev1_attrs, 2, 1},
        {1700000000124000000u, "retry", NULL, 0, 0},
    };
    const af_attr link_attrs[] = {AF_STR("link.reason", "batch"), AF_INT("link.n", 7)};
    af_link_data link1 = {.trace_flags = 1,
                          .is_remote = true,
                          .trace_state = "k=v",
                          .attrs = link_attrs,
                          .n_attrs = 2,
                          .dropped_attrs = 5};
    hex_bytes("f0e1d2c3b4a5968778695a4b3c2d1e0f", link1.trace_id, 16);
    hex_bytes("1122334455667788", link1.span_id, 8);

    af_span_data s[3];
    memset(s, 0, sizeof(s));
    for (int i = 0; i < 3; i++) {
        hex_bytes("0af7651916cd43dd8448eb211c80319c", s[i].trace_id, 16);
        s[i].trace_state = "";
        s[i].status_message = "";
        s[i].resource = res;
    }
    hex_bytes("b7ad6b7169203331", s[0].span_id, 8);
    s[0].trace_flags = 1;
    s[0].trace_state = "vendor=abc";
    s[0].name = "GET /v1/gpus";
    s[0].kind = AF_SPAN_KIND_SERVER;
    s[0].start_ns = 1700000000123456789u;
    s[0].end_ns = 1700000000124956789u;
    s[0].attrs = attrs1;
    s[0].n_attrs = sizeof(attrs1) / sizeof(attrs1[0]);
    s[0].dropped_attrs = 2;
    s[0].events = events1;
    s[0].n_events = 2;
    s[0].dropped_events = 3;
    s[0].links = &link1;
    s[0].n_links = 1;
    s[0].dropped_links = 4;
    s[0].status = AF_STATUS_ERROR;
    s[0].status_message = "boom";
    s[0].scope = &scope_a;

    const af_attr attrs2[] = {AF_STR("db.system", "postgresql")};
    hex_bytes("00f067aa0ba902b7", s[1].span_id, 8);
    memcpy(s[1].parent_span_id, s[0].span_id, 8);
    s[1].has_parent = true;
    s[1].trace_flags = 1;
    s[1].name = "db.query";
    s[1].kind = AF_SPAN_KIND_CLIENT;
    s[1].start_ns = 1700000000123500000u;
    s[1].end_ns = 1700000000123900000u;
    s[1].attrs = attrs2;
    s[1].n_attrs = 1;
    s[1].status = AF_STATUS_OK;
    s[1].scope = &scope_b;

    hex_bytes("8000000000000001", s[2].span_id, 8);
    hex_bytes("ffffffffffffffff", s[2].parent_span_id, 8);
    s[2].has_parent = true;
    s[2].parent_is_remote = true;
    s[2].trace_flags = 0;
    s[2].name = "worker.step";
    s[2].kind = AF_SPAN_KIND_INTERNAL;
    s[2].start_ns = 1700000001000000000u;
    s[2].end_ns = 1700000001000000999u;
    s[2].scope = &scope_a;

    const af_span_data *spans[] = {&s[0], &s[1], &s[2]};
    af_buf b;
    af__buf_init(&b);
    int rc = 0;
    if (af__otlp_proto_encode(spans, 3, &b) != 0 || write_file(argv[1], "otlp.pb", &b))
        rc = 1;
    af__buf_reset(&b);
    if (rc == 0 &&
        (af__otlp_json_encode(spans, 3, &b) != 0 || write_file(argv[1], "otlp.json", &b)))
        rc = 1;
    af__buf_reset(&b);
    if (rc == 0 &&
        (af__jaeger_thrift_encode(spans, 3, &b) != 0 || write_file(argv[1], "jaeger.thrift", &b)))
        rc = 1;
    af__buf_clear(&b);
    af_resource_free(res);
    if (rc)
        fprintf(stderr, "interop_fixture: encoding or writing failed\n");
    return rc;
}
