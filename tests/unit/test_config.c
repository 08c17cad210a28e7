/*
 * Tests of the tracing configuration: the document's example file, every error class with
 * its exact message, unknown-key suggestions, durations, the OTEL_* overlay and its
 * precedence, the Go aliases and redaction in the dumps.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "agentaflow/config.h"
#include "agentaflow/server.h"

/* The repository root, from this file's path (CMake compiles it by absolute path). */
static void repo_path(const char *rel, char *out, size_t out_len)
{
    const char *me = __FILE__;
    const char *cut = strstr(me, "tests/unit/test_config.c");
    snprintf(out, out_len, "%.*s%s", cut ? (int)(cut - me) : 0, me, rel);
}

typedef struct fixture {
    af_tracing_config cfg;
    af_config_diag diag;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || af_tracing_config_init(&f->cfg) != 0)
        return -1;
    af_config_diag_init(&f->diag);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    af_tracing_config_clear(&f->cfg);
    af_config_diag_free(&f->diag);
    free(f);
    return 0;
}

static int load(fixture *f, const char *yaml)
{
    return af_tracing_config_load_string("t.yaml", yaml, strlen(yaml), &f->cfg, &f->diag);
}

/* True when some diagnostic's message is exactly `msg`. */
static bool has_message(const af_config_diag *d, const char *msg)
{
    for (size_t i = 0; i < d->n_entries; i++)
        if (strcmp(d->entries[i].message, msg) == 0)
            return true;
    return false;
}

static void assert_message(const af_config_diag *d, const char *msg)
{
    if (!has_message(d, msg)) {
        char *all = af_config_diag_format(d);
        fail_msg("expected diagnostic\n  %s\ngot\n%s", msg, all ? all : "(none)");
        free(all);
    }
}

static const char *kv_get(const af_config_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0)
            return kv[i].value;
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */

static void test_defaults(void **state)
{
    fixture *f = *state;
    const af_tracing_config *c = &f->cfg;
    assert_string_equal(c->service_name, "agentaflow-sro");
    assert_string_equal(c->service_version, "0.1.0");
    assert_string_equal(c->environment, "development");
    assert_true(c->tracing.enabled);
    assert_true(c->tracing.sampling_ratio == 1.0);
    assert_false(c->tracing.exporters.jaeger.enabled);
    assert_string_equal(c->tracing.exporters.jaeger.endpoint, "http://localhost:14268/api/traces");
    assert_false(c->tracing.exporters.otlp_http.enabled);
    assert_string_equal(c->tracing.exporters.otlp_http.endpoint, "http://localhost:4318/v1/traces");
    assert_int_equal(c->tracing.exporters.otlp_http.protocol, AF_OTLP_HTTP_PROTOBUF);
    assert_int_equal(c->tracing.exporters.otlp_http.compression, AF_COMPRESSION_NONE);
    assert_int_equal(c->tracing.exporters.otlp_http.timeout_ms, 10000);
    assert_null(c->tracing.exporters.otlp_http.ca_file);
    assert_false(c->tracing.exporters.stdout_.enabled);
    assert_true(c->tracing.exporters.stdout_.pretty_print);
    assert_int_equal(c->n_resource_attributes, 0);
    assert_false(c->components.metrics_collector.trace_individual_gpus);
    assert_true(c->components.gpu_scheduler.trace_gpu_registration);
    assert_int_equal(c->performance.max_export_batch_size, 512);
    assert_int_equal(c->performance.max_queue_size, 2048);
    assert_int_equal(c->performance.export_timeout_ms, 30000);
    assert_int_equal(c->performance.max_export_timeout_ms, 30000);
    assert_int_equal(c->performance.schedule_delay_ms, 5000);
}

static void test_example_file(void **state)
{
    fixture *f = *state;
    char path[1024];
    repo_path("examples/tracing-config.yaml", path, sizeof path);
    int rc = af_tracing_config_load(path, &f->cfg, &f->diag);
    if (f->diag.n_errors || f->diag.n_warnings) {
        char *all = af_config_diag_format(&f->diag);
        fail_msg("%s", all);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(f->diag.n_errors, 0);
    assert_int_equal(f->diag.n_warnings, 0);

    const af_tracing_config *c = &f->cfg;
    assert_string_equal(c->service_name, "agentaflow-sro-community");
    assert_string_equal(c->service_version, "0.1.0");
    assert_string_equal(c->environment, "development");
    assert_true(c->tracing.enabled);
    assert_true(c->tracing.sampling_ratio == 1.0);
    assert_true(c->tracing.exporters.jaeger.enabled);
    assert_string_equal(c->tracing.exporters.jaeger.endpoint, "http://localhost:14268/api/traces");
    assert_false(c->tracing.exporters.otlp_http.enabled);
    assert_string_equal(c->tracing.exporters.otlp_http.endpoint,
                        "https://api.honeycomb.io/v1/traces");
    assert_int_equal(c->tracing.exporters.otlp_http.n_headers, 1);
    assert_string_equal(c->tracing.exporters.otlp_http.headers[0].key, "x-honeycomb-team");
    assert_string_equal(c->tracing.exporters.otlp_http.headers[0].value, "your-api-key");
    assert_false(c->tracing.exporters.stdout_.enabled);
    assert_true(c->tracing.exporters.stdout_.pretty_print);

    assert_int_equal(c->n_resource_attributes, 3);
    assert_string_equal(c->resource_attributes[0].key, "service.namespace");
    assert_string_equal(c->resource_attributes[0].value, "agentaflow");
    assert_string_equal(c->resource_attributes[1].key, "service.instance.id");
    assert_string_equal(c->resource_attributes[1].value, "gpu-scheduler-1");
    assert_string_equal(c->resource_attributes[2].key, "deployment.environment");
    assert_string_equal(c->resource_attributes[2].value, "kubernetes");

    assert_true(c->components.gpu_scheduler.trace_workload_submission);
    assert_true(c->components.gpu_scheduler.trace_scheduling_decisions);
    assert_true(c->components.gpu_scheduler.trace_gpu_registration);
    assert_true(c->components.metrics_collector.trace_collection_cycles);
    assert_false(c->components.metrics_collector.trace_individual_gpus);
    assert_true(c->components.model_serving.trace_inference_requests);
    assert_true(c->components.model_serving.trace_model_loading);
    assert_true(c->components.web_dashboard.trace_api_requests);
    assert_false(c->components.web_dashboard.trace_websocket_events);
    assert_true(c->components.observability.trace_cost_calculations);
    assert_false(c->components.observability.trace_health_checks);

    assert_int_equal(c->performance.max_export_batch_size, 512);
    assert_int_equal(c->performance.max_export_timeout_ms, 30000);
    assert_int_equal(c->performance.export_timeout_ms, 30000);
    assert_int_equal(c->performance.max_queue_size, 2048);
    assert_int_equal(c->performance.schedule_delay_ms, 5000);
}

static void test_missing_file(void **state)
{
    fixture *f = *state;
    int rc = af_tracing_config_load("/nonexistent/dir/t.yaml", &f->cfg, &f->diag);
    assert_int_equal(rc, -ENOENT);
    assert_int_equal(f->diag.n_errors, 1);
    assert_string_equal(f->diag.entries[0].message,
                        "/nonexistent/dir/t.yaml: cannot open: No such file or directory");
}

static void test_type_errors_exact(void **state)
{
    fixture *f = *state;
    const char *yaml = "service_name: svc\n"              /* 1 */
                       "tracing:\n"                       /* 2 */
                       "  enabled: yes\n"                 /* 3 */
                       "  sampling_ratio: high\n"         /* 4 */
                       "  exporters:\n"                   /* 5 */
                       "    otlp_http:\n"                 /* 6 */
                       "      protocol: grpc\n"           /* 7 */
                       "      compression: [gzip]\n"      /* 8 */
                       "      timeout: 30 parsecs\n"      /* 9 */
                       "      endpoint: localhost:4318\n" /* 10 */
                       "performance:\n"                   /* 11 */
                       "  max_queue_size: 0\n"            /* 12 */
                       "  max_export_batch_size: -5\n"    /* 13 */
                       "  schedule_delay: 0\n";           /* 14 */
    assert_int_equal(load(f, yaml), AF_EPARSE);
    assert_message(&f->diag, "t.yaml:3:12: tracing.enabled: expected true or false, got \"yes\"");
    assert_message(&f->diag, "t.yaml:4:19: tracing.sampling_ratio: expected a number between 0 "
                             "and 1, got \"high\"");
    assert_message(&f->diag, "t.yaml:7:17: tracing.exporters.otlp_http.protocol: expected one of "
                             "\"http/protobuf\", \"http/json\", got \"grpc\"");
    assert_message(&f->diag, "t.yaml:8:20: tracing.exporters.otlp_http.compression: expected one "
                             "of \"none\", \"gzip\", got a list");
    assert_message(&f->diag,
                   "t.yaml:9:16: tracing.exporters.otlp_http.timeout: expected a duration "
                   "between 0 and 24h such as \"30s\" or \"500ms\" (a plain number means "
                   "milliseconds), got \"30 parsecs\"");
    assert_message(&f->diag, "t.yaml:10:17: tracing.exporters.otlp_http.endpoint: expected an "
                             "http:// or https:// URL, got \"localhost:4318\"");
    assert_message(&f->diag, "t.yaml:12:19: performance.max_queue_size: expected an integer "
                             "between 1 and 16777216, got \"0\"");
    assert_message(&f->diag, "t.yaml:13:26: performance.max_export_batch_size: expected an "
                             "integer between 1 and 1048576, got \"-5\"");
    assert_message(&f->diag, "t.yaml:14:19: performance.schedule_delay: expected a duration "
                             "between 1ms and 24h such as \"30s\" or \"500ms\" (a plain number "
                             "means milliseconds), got \"0\"");
    /* All of them collected, none fatal; rejected values keep their previous value while the
     * valid key of the same file was applied. */
    assert_int_equal(f->diag.n_errors, 9);
    assert_int_equal(f->diag.n_warnings, 0);
    assert_string_equal(f->cfg.service_name, "svc");
    assert_true(f->cfg.tracing.enabled);
    assert_true(f->cfg.tracing.sampling_ratio == 1.0);
    assert_int_equal(f->cfg.performance.max_queue_size, 2048);
    assert_string_equal(f->cfg.tracing.exporters.otlp_http.endpoint,
                        "http://localhost:4318/v1/traces");
    assert_int_equal(f->diag.entries[0].line, 3);
    assert_int_equal(f->diag.entries[0].column, 12);
    assert_string_equal(f->diag.entries[0].key, "tracing.enabled");
}

static void test_structure_errors(void **state)
{
    fixture *f = *state;
    const char *yaml = "tracing:\n"
                       "  enabled: true\n"
                       "  enabled: false\n"
                       "  exporters: 5\n"
                       "service_name: {a: b}\n"
                       "environment:\n"
                       "resource_attributes:\n"
                       "  - key: a\n"
                       "  - value: b\n"
                       "  - 7\n"
                       "  - {key: c, value: [1]}\n";
    assert_int_equal(load(f, yaml), AF_EPARSE);
    assert_message(&f->diag, "t.yaml:3:3: tracing.enabled: duplicate key (first given at line 2)");
    assert_message(&f->diag, "t.yaml:4:14: tracing.exporters: expected a mapping, got a scalar");
    assert_message(&f->diag,
                   "t.yaml:5:15: service_name: expected a non-empty string, got a mapping");
    assert_message(&f->diag, "t.yaml:6:13: environment: expected a non-empty string, got nothing");
    assert_message(&f->diag, "t.yaml:8:5: resource_attributes[0]: missing \"value\"");
    assert_message(&f->diag, "t.yaml:9:5: resource_attributes[1]: missing \"key\"");
    assert_message(&f->diag, "t.yaml:10:5: resource_attributes[2]: expected a mapping with "
                             "\"key\" and \"value\", got a scalar");
    assert_message(&f->diag, "t.yaml:11:21: resource_attributes[3].value: expected a string, got "
                             "a list");
    assert_int_equal(f->diag.n_errors, 8);
    /* The first of the duplicated keys counts. */
    assert_true(f->cfg.tracing.enabled);
    assert_int_equal(f->cfg.n_resource_attributes, 0);
}

static void test_top_level_not_mapping(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "- a\n- b\n"), AF_EPARSE);
    assert_message(&f->diag, "t.yaml:1:1: expected a mapping at the top level, got a list");
}

static void test_syntax_error(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "tracing:\n  enabled: true\n sampling_ratio: 0.5\n"), AF_EPARSE);
    assert_int_equal(f->diag.n_errors, 1);
    const char *m = f->diag.entries[0].message;
    assert_non_null(strstr(m, "YAML syntax error: "));
    assert_int_equal(strncmp(m, "t.yaml:3:", 9), 0);
    assert_int_equal(f->diag.entries[0].line, 3);

    af_config_diag_free(&f->diag);
    assert_int_equal(load(f, "a: [1, 2\n"), AF_EPARSE);
    assert_int_equal(f->diag.n_errors, 1);
    assert_non_null(strstr(f->diag.entries[0].message, "YAML syntax error: did not find expected"));
}

static void test_second_document(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "service_name: a\n---\nservice_name: b\n"), AF_EPARSE);
    assert_message(&f->diag, "t.yaml:3:1: only one YAML document is allowed; this one is not read");
    assert_string_equal(f->cfg.service_name, "a");
}

static void test_empty_and_null_sections(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, ""), 0);
    assert_int_equal(load(f, "# only a comment\n"), 0);
    assert_int_equal(load(f, "tracing:\n  exporters:\n    jaeger:\n"), 0);
    assert_int_equal(f->diag.n_errors + f->diag.n_warnings, 0);
}

static void test_unknown_keys(void **state)
{
    fixture *f = *state;
    const char *yaml = "tracing:\n"
                       "  sampling_rato: 0.5\n"
                       "  exporters:\n"
                       "    otlp:\n"
                       "      enabled: true\n"
                       "pretty_print: true\n"
                       "completely_unrelated_thing: 1\n"
                       "preformance:\n"
                       "  max_queue_size: 4\n";
    assert_int_equal(load(f, yaml), 0); /* warnings only */
    assert_message(&f->diag, "t.yaml:2:3: tracing.sampling_rato: unknown key (ignored); did you "
                             "mean \"tracing.sampling_ratio\"?");
    assert_message(&f->diag, "t.yaml:4:5: tracing.exporters.otlp: unknown key (ignored); did you "
                             "mean \"tracing.exporters.otlp_http\"?");
    assert_message(&f->diag, "t.yaml:6:1: pretty_print: unknown key (ignored); did you mean "
                             "\"tracing.exporters.stdout.pretty_print\"?");
    assert_message(&f->diag, "t.yaml:7:1: completely_unrelated_thing: unknown key (ignored)");
    assert_message(&f->diag, "t.yaml:8:1: preformance: unknown key (ignored); did you mean "
                             "\"performance\"?");
    assert_int_equal(f->diag.n_warnings, 5);
    assert_int_equal(f->diag.n_errors, 0);
    /* Nothing under an unknown key is applied. */
    assert_int_equal(f->cfg.performance.max_queue_size, 2048);
    assert_true(f->cfg.tracing.sampling_ratio == 1.0);
}

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        uint32_t ms;
    } ok[] = {
        {"30s", 30000}, {"500ms", 500},     {"1m", 60000},     {"2h", 7200000}, {"1m30s", 90000},
        {"1.5s", 1500}, {"0.1s", 100},      {"250", 250},      {"0", 0},        {"1500us", 2},
        {"1ns", 1},     {"2h45m", 9900000}, {"1\xc2\xb5s", 1},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint32_t ms = 12345;
        assert_int_equal(af_config_parse_duration(ok[i].in, &ms), 0);
        assert_int_equal(ms, ok[i].ms);
    }
    static const char *const bad[] = {"",   "s",           "-1s",   "1d", "30 s", "1.s.",
                                      "ms", "99999999999", "1200h", "5x", ".s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t ms = 7;
        assert_int_equal(af_config_parse_duration(bad[i], &ms), AF_EPARSE);
        assert_int_equal(ms, 7);
    }
    char buf[32];
    af_config_format_duration(30000, buf, sizeof buf);
    assert_string_equal(buf, "30s");
    af_config_format_duration(1500, buf, sizeof buf);
    assert_string_equal(buf, "1500ms");
    af_config_format_duration(7200000, buf, sizeof buf);
    assert_string_equal(buf, "2h");
    af_config_format_duration(120000, buf, sizeof buf);
    assert_string_equal(buf, "2m");
    af_config_format_duration(0, buf, sizeof buf);
    assert_string_equal(buf, "0");
}

static void test_duration_keys(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "performance:\n  export_timeout: 2500\n  schedule_delay: 1m30s\n"
                             "  max_export_timeout: 0\n"),
                     0);
    assert_int_equal(f->cfg.performance.export_timeout_ms, 2500);
    assert_int_equal(f->cfg.performance.schedule_delay_ms, 90000);
    assert_int_equal(f->cfg.performance.max_export_timeout_ms, 0);
}

static void test_headers_and_attributes(void **state)
{
    fixture *f = *state;
    const char *yaml = "tracing:\n"
                       "  exporters:\n"
                       "    otlp_http:\n"
                       "      headers:\n"
                       "        x-api-key: s3cret\n"
                       "        \"bad header\": v\n"
                       "        X-API-KEY: again\n"
                       "        x-multi: \"a\\r\\nInjected: 1\"\n"
                       "resource_attributes:\n"
                       "  team: ml\n"
                       "  replicas: 3\n";
    assert_int_equal(load(f, yaml), AF_EPARSE);
    assert_message(&f->diag, "t.yaml:6:9: tracing.exporters.otlp_http.headers.bad header: not a "
                             "valid HTTP header name");
    assert_message(&f->diag, "t.yaml:7:9: tracing.exporters.otlp_http.headers.X-API-KEY: "
                             "duplicate key (first given at line 5)");
    assert_message(&f->diag, "t.yaml:8:18: tracing.exporters.otlp_http.headers.x-multi: header "
                             "values must not contain line breaks");
    /* No message ever quotes a header value. */
    for (size_t i = 0; i < f->diag.n_entries; i++) {
        assert_null(strstr(f->diag.entries[i].message, "s3cret"));
        assert_null(strstr(f->diag.entries[i].message, "Injected"));
    }
    assert_int_equal(f->cfg.tracing.exporters.otlp_http.n_headers, 1);
    assert_string_equal(f->cfg.tracing.exporters.otlp_http.headers[0].value, "s3cret");
    /* The mapping form of resource_attributes; scalars are kept as their text. */
    assert_int_equal(f->cfg.n_resource_attributes, 2);
    assert_string_equal(kv_get(f->cfg.resource_attributes, 2, "replicas"), "3");
}

static void test_optional_strings_and_mtls(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "tracing:\n  exporters:\n    otlp_http:\n"
                             "      client_cert: /etc/c.pem\n      ca_file: /etc/ca.pem\n"),
                     AF_EPARSE);
    assert_message(&f->diag, "t.yaml: tracing.exporters.otlp_http.client_cert: mutual TLS needs "
                             "both client_cert and client_key");
    assert_string_equal(f->cfg.tracing.exporters.otlp_http.ca_file, "/etc/ca.pem");
    af_config_diag_free(&f->diag);
    assert_int_equal(load(f, "tracing:\n  exporters:\n    otlp_http:\n"
                             "      client_cert: ~\n      ca_file: \"\"\n"),
                     0);
    assert_null(f->cfg.tracing.exporters.otlp_http.client_cert);
    assert_null(f->cfg.tracing.exporters.otlp_http.ca_file);
}

static void test_aliases(void **state)
{
    fixture *f = *state;
    const char *yaml = "service_name: go-svc\n"
                       "exporter_type: otlp\n"
                       "otlp_endpoint: http://collector:4318/v1/traces\n"
                       "jaeger_endpoint: http://jaeger:14268/api/traces\n"
                       "sample_rate: 0.25\n"
                       "attributes:\n"
                       "  team: infra\n"
                       "enabled_spans:\n"
                       "  websocket_events: true\n"
                       "  gpu_scheduling: false\n"
                       "  made_up: true\n";
    assert_int_equal(load(f, yaml), 0);
    assert_true(f->cfg.tracing.exporters.otlp_http.enabled);
    assert_false(f->cfg.tracing.exporters.jaeger.enabled);
    assert_false(f->cfg.tracing.exporters.stdout_.enabled);
    assert_string_equal(f->cfg.tracing.exporters.otlp_http.endpoint,
                        "http://collector:4318/v1/traces");
    assert_string_equal(f->cfg.tracing.exporters.jaeger.endpoint, "http://jaeger:14268/api/traces");
    assert_true(f->cfg.tracing.sampling_ratio == 0.25);
    assert_int_equal(f->cfg.n_resource_attributes, 1);
    assert_string_equal(f->cfg.resource_attributes[0].value, "infra");
    assert_true(f->cfg.components.web_dashboard.trace_websocket_events);
    assert_false(f->cfg.components.gpu_scheduler.trace_gpu_registration);
    assert_false(f->cfg.components.gpu_scheduler.trace_scheduling_decisions);
    assert_message(&f->diag, "t.yaml:5:1: sample_rate: key of the original Go project, read as "
                             "tracing.sampling_ratio");
    assert_message(&f->diag, "t.yaml:11:3: enabled_spans.made_up: unknown span category "
                             "(ignored)");
    assert_int_equal(f->diag.n_infos, 6);
    assert_int_equal(f->diag.n_warnings, 1);
}

static void test_canonical_beats_alias(void **state)
{
    fixture *f = *state;
    /* Either order: the document's key wins over the Go one. */
    assert_int_equal(load(f, "tracing:\n  sampling_ratio: 0.5\nsample_rate: 0.1\n"), 0);
    assert_true(f->cfg.tracing.sampling_ratio == 0.5);
    assert_int_equal(load(f, "sample_rate: 0.1\ntracing:\n  sampling_ratio: 0.75\n"), 0);
    assert_true(f->cfg.tracing.sampling_ratio == 0.75);
    assert_int_equal(load(f, "exporter_type: none\ntracing:\n  enabled: true\n"), 0);
    assert_true(f->cfg.tracing.enabled);
    assert_int_equal(load(f, "exporter_type: none\n"), 0);
    assert_false(f->cfg.tracing.enabled);
    af_config_diag_free(&f->diag);
    assert_int_equal(load(f, "exporter_type: zipkin\n"), AF_EPARSE);
    assert_message(&f->diag, "t.yaml:1:16: exporter_type: expected one of \"jaeger\", \"otlp\", "
                             "\"stdout\", \"none\", got \"zipkin\"");
}

/* ---------------------------------------------------------------------------------------- */

static const char *const otel_vars[] = {
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_EXPORT_TIMEOUT",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "AGENTAFLOW_AUTH_TOKEN",
    "AGENTAFLOW_BIND_ADDRESS",
    "AGENTAFLOW_PORT",
    "AGENTAFLOW_METRICS_PORT",
    "AGENTAFLOW_ALLOWED_HOSTS",
};

static int env_teardown(void **state)
{
    for (size_t i = 0; i < sizeof otel_vars / sizeof otel_vars[0]; i++)
        unsetenv(otel_vars[i]);
    return teardown(state);
}

static void test_env_overrides_file(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "service_name: from-file\n"
                             "tracing:\n  sampling_ratio: 0.5\n"
                             "  exporters:\n    jaeger:\n      enabled: true\n"
                             "    otlp_http:\n      headers:\n        x-keep: file\n"
                             "        x-api-key: file-key\n"
                             "performance:\n  max_queue_size: 1000\n"),
                     0);
    setenv("OTEL_SERVICE_NAME", "from-env", 1);
    setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio", 1);
    setenv("OTEL_TRACES_SAMPLER_ARG", "0.125", 1);
    setenv("OTEL_TRACES_EXPORTER", "otlp, console", 1);
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/base/", 1);
    setenv("OTEL_EXPORTER_OTLP_HEADERS", "X-Api-Key=env%20key,x-new=1", 1);
    setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1000", 1);
    setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2000", 1);
    setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1);
    setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", 1);
    setenv("OTEL_BSP_MAX_QUEUE_SIZE", "4096", 1);
    setenv("OTEL_BSP_SCHEDULE_DELAY", "", 1); /* empty = unset */
    assert_int_equal(af_tracing_config_apply_env(&f->cfg, &f->diag), 0);

    const af_tracing_config *c = &f->cfg;
    assert_string_equal(c->service_name, "from-env");
    assert_true(c->tracing.sampling_ratio == 0.125);
    assert_false(c->tracing.exporters.jaeger.enabled);
    assert_true(c->tracing.exporters.otlp_http.enabled);
    assert_true(c->tracing.exporters.stdout_.enabled);
    assert_string_equal(c->tracing.exporters.otlp_http.endpoint,
                        "http://collector:4318/base/v1/traces");
    assert_int_equal(c->tracing.exporters.otlp_http.n_headers, 3);
    const af_config_kv *h = c->tracing.exporters.otlp_http.headers;
    assert_string_equal(kv_get(h, 3, "x-keep"), "file");
    assert_string_equal(kv_get(h, 3, "x-api-key"), "env key"); /* same name, any case */
    assert_string_equal(kv_get(h, 3, "x-new"), "1");
    assert_int_equal(c->tracing.exporters.otlp_http.timeout_ms, 2000); /* per-signal wins */
    assert_int_equal(c->tracing.exporters.otlp_http.compression, AF_COMPRESSION_GZIP);
    assert_int_equal(c->tracing.exporters.otlp_http.protocol, AF_OTLP_HTTP_JSON);
    assert_int_equal(c->performance.max_queue_size, 4096);
    assert_int_equal(c->performance.schedule_delay_ms, 5000);
    assert_int_equal(f->diag.n_warnings, 0);
}

static void test_env_bad_values_ignored(void **state)
{
    fixture *f = *state;
    setenv("OTEL_SDK_DISABLED", "TRUE", 1);
    setenv("OTEL_TRACES_SAMPLER", "traceidratio", 1);
    setenv("OTEL_TRACES_SAMPLER_ARG", "lots", 1);
    setenv("OTEL_TRACES_EXPORTER", "jaeger", 1);
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318", 1);
    setenv("OTEL_EXPORTER_OTLP_HEADERS", "good=1,broken", 1);
    setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "-5", 1);
    setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", 1);
    setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0", 1);
    assert_int_equal(af_tracing_config_apply_env(&f->cfg, &f->diag), 0);
    assert_false(f->cfg.tracing.enabled);
    assert_true(f->cfg.tracing.sampling_ratio == 1.0);
    assert_true(f->cfg.tracing.exporters.jaeger.enabled);
    assert_string_equal(f->cfg.tracing.exporters.otlp_http.endpoint,
                        "http://localhost:4318/v1/traces");
    assert_int_equal(f->cfg.tracing.exporters.otlp_http.n_headers, 0);
    assert_int_equal(f->cfg.tracing.exporters.otlp_http.timeout_ms, 10000);
    assert_int_equal(f->cfg.tracing.exporters.otlp_http.protocol, AF_OTLP_HTTP_PROTOBUF);
    assert_int_equal(f->cfg.performance.max_export_batch_size, 512);
    assert_message(&f->diag, "OTEL_TRACES_SAMPLER_ARG: expected a number between 0 and 1, got "
                             "\"lots\"; ignored");
    assert_message(&f->diag, "OTEL_EXPORTER_OTLP_HEADERS: entry 2 has no '=' (expected "
                             "name=value pairs separated by commas); ignored");
    assert_message(&f->diag, "OTEL_EXPORTER_OTLP_TIMEOUT: expected a non-negative integer of "
                             "milliseconds, got \"-5\"; ignored");
    assert_message(&f->diag, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE: expected an integer between 1 and "
                             "1048576, got \"0\"; ignored");
    assert_int_equal(f->diag.n_warnings, 7); /* + jaeger deprecation, endpoint, grpc */
    assert_int_equal(f->diag.n_errors, 0);
}

static void test_env_none_and_disabled_false(void **state)
{
    fixture *f = *state;
    f->cfg.tracing.exporters.stdout_.enabled = true;
    setenv("OTEL_TRACES_EXPORTER", "none", 1);
    setenv("OTEL_SDK_DISABLED", "false", 1);
    assert_int_equal(af_tracing_config_apply_env(&f->cfg, &f->diag), 0);
    assert_true(f->cfg.tracing.enabled);
    assert_false(f->cfg.tracing.exporters.stdout_.enabled);
    assert_false(f->cfg.tracing.exporters.otlp_http.enabled);
}

/* ---------------------------------------------------------------------------------------- */

static void test_dump_redacts(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "tracing:\n  exporters:\n    otlp_http:\n"
                             "      endpoint: https://user:pw@collector:4318/v1/traces?token=abc\n"
                             "      headers:\n        x-honeycomb-team: topsecret\n"),
                     0);
    char *json = NULL, *text = NULL;
    assert_int_equal(af_config_dump_json(&f->cfg, true, &json), 0);
    assert_int_equal(af_config_dump_text(&f->cfg, true, &text), 0);
    for (int i = 0; i < 2; i++) {
        const char *s = i ? text : json;
        assert_null(strstr(s, "topsecret"));
        assert_null(strstr(s, "pw@"));
        assert_null(strstr(s, "token=abc"));
        assert_non_null(strstr(s, "x-honeycomb-team"));
        assert_non_null(strstr(s, "[redacted]"));
        assert_non_null(strstr(s, "https://collector:4318/v1/traces?[redacted]"));
    }
    assert_non_null(strstr(json, "\"x-honeycomb-team\": \"[redacted]\""));
    assert_non_null(strstr(json, "\"export_timeout\": \"30s\""));
    assert_non_null(strstr(text, "tracing.exporters.otlp_http.headers = {\"x-honeycomb-team\": "
                                 "\"[redacted]\"}\n"));
    assert_non_null(strstr(text, "performance.schedule_delay = 5s\n"));
    /* The nested object is well-formed JSON with every key at its dotted path. */
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(root);
    json_t *delay = NULL;
    assert_int_equal(json_unpack(root, "{s:{s:o}}", "performance", "schedule_delay", &delay), 0);
    assert_string_equal(json_string_value(delay), "5s");
    json_decref(root);
    free(json);
    free(text);

    assert_int_equal(af_config_dump_json(&f->cfg, false, &json), 0);
    assert_non_null(strstr(json, "topsecret"));
    free(json);
}

static void test_key_table(void **state)
{
    (void)state;
    size_t n = af_config_key_count();
    assert_true(n >= 30);
    bool saw_secret = false;
    for (size_t i = 0; i < n; i++) {
        const af_config_key_info *k = af_config_key_at(i);
        assert_non_null(k);
        assert_non_null(k->help);
        assert_ptr_equal(af_config_key_find(k->key), k);
        if (k->secret)
            saw_secret = true;
    }
    assert_null(af_config_key_at(n));
    assert_true(saw_secret);
    const af_config_key_info *k = af_config_key_find("performance.schedule_delay");
    assert_non_null(k);
    assert_int_equal(k->type, AF_CFG_DURATION);
    assert_string_equal(k->env, "OTEL_BSP_SCHEDULE_DELAY");
    assert_string_equal(af_config_type_name(k->type), "duration");
    assert_null(af_config_key_find("tracing"));
}

static void test_copy(void **state)
{
    fixture *f = *state;
    char path[1024];
    repo_path("examples/tracing-config.yaml", path, sizeof path);
    assert_int_equal(af_tracing_config_load(path, &f->cfg, &f->diag), 0);
    af_tracing_config copy;
    assert_int_equal(af_tracing_config_copy(&copy, &f->cfg), 0);
    char *a = NULL, *b = NULL;
    assert_int_equal(af_config_dump_json(&f->cfg, false, &a), 0);
    af_tracing_config_clear(&f->cfg);
    assert_int_equal(af_config_dump_json(&copy, false, &b), 0);
    assert_string_equal(a, b);
    free(a);
    free(b);
    af_tracing_config_clear(&copy);
    assert_int_equal(af_tracing_config_init(&f->cfg), 0);
}

static void test_diag_cap(void **state)
{
    fixture *f = *state;
    /* 200 unknown keys: counted, but only AF_CONFIG_DIAG_MAX kept. */
    char yaml[200 * 16];
    size_t o = 0;
    for (int i = 0; i < 200; i++)
        o += (size_t)snprintf(yaml + o, sizeof yaml - o, "zz%03d: 1\n", i);
    assert_int_equal(load(f, yaml), 0);
    assert_int_equal(f->diag.n_warnings, 200);
    assert_int_equal(f->diag.n_entries, AF_CONFIG_DIAG_MAX);
    /* + the "no exporter is enabled" note at the end */
    assert_int_equal(f->diag.n_infos, 1);
    assert_int_equal(f->diag.suppressed, 101);
    char *all = af_config_diag_format(&f->diag);
    assert_non_null(strstr(all, "(101 more not shown)"));
    free(all);
}

static void test_diag_null_logs(void **state)
{
    fixture *f = *state;
    af_test_log_capture_begin();
    int rc =
        af_tracing_config_load_string("x.yaml", "tracing: {enabled: maybe}\n", 26, &f->cfg, NULL);
    const char *log = af_test_log_capture_text();
    assert_int_equal(rc, AF_EPARSE);
    assert_non_null(strstr(log, "x.yaml:1:20: tracing.enabled: expected true or false, got "
                                "\"maybe\""));
    af_test_log_capture_end();
}

/* ---------------------------------------------------------------------------------------- */
/* The server: section.                                                                      */

/* The table's defaults are the server's own (af_server_opts_init), so a daemon without a
 * server: section behaves like a server built from default options. */
static void test_server_defaults(void **state)
{
    fixture *f = *state;
    const af_server_config *c = &f->cfg.server;
    af_server_opts o;
    af_server_opts_init(&o);
    assert_string_equal(c->bind_address, o.bind_address);
    assert_int_equal(c->port, o.port);
    assert_int_equal(c->metrics_port, o.metrics_port);
    assert_null(c->auth_token);
    assert_int_equal(c->ws_push_interval_ms, o.ws_push_interval_ms);
    assert_int_equal(c->max_ws_clients, o.max_ws_clients);
    assert_int_equal(c->ws_queue_depth, o.ws_queue_depth);
    assert_int_equal(c->body_limit, o.body_limit);
    assert_int_equal(c->max_inflight, o.max_inflight);
    assert_int_equal(c->workers, o.workers);
    assert_int_equal(c->event_loops, o.event_loops);
    assert_string_equal(c->title, o.title);
    assert_int_equal(c->auth.read, o.auth_read);
    assert_int_equal(c->n_allowed_hosts, 0);
    assert_null(c->tls.cert_file);
    assert_int_equal(c->inference_timeout_ms, o.inference_timeout_ms);
    assert_int_equal(c->max_input_tokens, o.max_input_tokens);
    assert_int_equal(c->max_label_values, o.max_label_values);
    assert_int_equal(c->trace_store_spans, 8192);
    assert_int_equal(c->trace_store_bytes, 64ull << 20);
    assert_true(c->load_generator);
    assert_int_equal(c->gpu_backend, AF_CONFIG_GPU_AUTO);
    assert_int_equal(c->simulated_gpus, 4);
}

static void test_server_keys_load(void **state)
{
    fixture *f = *state;
    const char *yaml = "server:\n"
                       "  bind_address: 0.0.0.0\n"
                       "  port: 0\n"
                       "  metrics_port: -1\n"
                       "  auth_token: t0ken\n"
                       "  ws_push_interval: 500ms\n"
                       "  body_limit: 2048\n"
                       "  event_loops: 2\n"
                       "  trace_store_bytes: 68719476736\n"
                       "  load_generator: false\n"
                       "  gpu_backend: simulated\n"
                       "  title: Lab\n"
                       "  allowed_hosts:\n"
                       "    - gpu.example.com\n"
                       "    - \"10.0.0.5:9000\"\n"
                       "  auth:\n"
                       "    read: true\n"
                       "  tls:\n"
                       "    cert_file: /etc/af/cert.pem\n"
                       "    key_file: /etc/af/key.pem\n"
                       "    client_ca_file: /etc/af/ca.pem\n"
                       "  inference_timeout: 2s\n"
                       "  max_input_tokens: 100\n"
                       "  max_label_values: 10\n";
    assert_int_equal(load(f, yaml), 0);
    assert_int_equal(f->diag.n_errors + f->diag.n_warnings, 0);
    const af_server_config *c = &f->cfg.server;
    assert_string_equal(c->bind_address, "0.0.0.0");
    assert_int_equal(c->port, 0);
    assert_int_equal(c->metrics_port, -1);
    assert_string_equal(c->auth_token, "t0ken");
    assert_int_equal(c->ws_push_interval_ms, 500);
    assert_int_equal(c->body_limit, 2048);
    assert_int_equal(c->event_loops, 2);
    assert_int_equal(c->trace_store_bytes, 64ull << 30);
    assert_false(c->load_generator);
    assert_int_equal(c->gpu_backend, AF_CONFIG_GPU_SIMULATED);
    assert_string_equal(c->title, "Lab");
    assert_int_equal(c->n_allowed_hosts, 2);
    assert_string_equal(c->allowed_hosts[0], "gpu.example.com");
    assert_string_equal(c->allowed_hosts[1], "10.0.0.5:9000");
    assert_true(c->auth.read);
    assert_string_equal(c->tls.cert_file, "/etc/af/cert.pem");
    assert_string_equal(c->tls.key_file, "/etc/af/key.pem");
    assert_string_equal(c->tls.client_ca_file, "/etc/af/ca.pem");
    assert_int_equal(c->inference_timeout_ms, 2000);
    assert_int_equal(c->max_input_tokens, 100);
    assert_int_equal(c->max_label_values, 10);

    /* A deep copy owns its own list and strings. */
    af_tracing_config copy;
    assert_int_equal(af_tracing_config_copy(&copy, &f->cfg), 0);
    assert_ptr_not_equal(copy.server.allowed_hosts, c->allowed_hosts);
    assert_string_equal(copy.server.allowed_hosts[1], "10.0.0.5:9000");
    assert_string_equal(copy.server.auth_token, "t0ken");
    af_tracing_config_clear(&copy);

    /* A later file replaces the list as a whole; null empties it. */
    assert_int_equal(load(f, "server: {allowed_hosts: [only.example]}\n"), 0);
    assert_int_equal(c->n_allowed_hosts, 1);
    assert_string_equal(c->allowed_hosts[0], "only.example");
    assert_int_equal(load(f, "server:\n  allowed_hosts:\n"), 0);
    assert_int_equal(c->n_allowed_hosts, 0);
}

static void test_server_bad_values(void **state)
{
    fixture *f = *state;
    const char *yaml = "server:\n"
                       "  port: 70000\n"
                       "  metrics_port: -2\n"
                       "  body_limit: 10\n"
                       "  gpu_backend: cuda\n"
                       "  ws_push_interval: 10ms\n"
                       "  workers: 0\n"
                       "  load_generator: maybe\n"
                       "  auth_token: [a, b]\n"
                       "  allowed_hosts: gpu.example.com\n"
                       "  tls: /etc/cert.pem\n"
                       "  auth:\n"
                       "    read: sometimes\n";
    assert_int_equal(load(f, yaml), AF_EPARSE);
    assert_message(&f->diag, "t.yaml:2:9: server.port: expected a port number 0-65535 (0 = any "
                             "free port), got \"70000\"");
    assert_message(&f->diag, "t.yaml:3:17: server.metrics_port: expected a port number 0-65535 "
                             "(0 = any free port) or -1 (no listener), got \"-2\"");
    assert_message(&f->diag, "t.yaml:4:15: server.body_limit: expected a byte count between 1024 "
                             "and 67108864, got \"10\"");
    assert_message(&f->diag, "t.yaml:5:16: server.gpu_backend: expected one of \"auto\", "
                             "\"nvml\", \"simulated\", got \"cuda\"");
    assert_message(&f->diag, "t.yaml:6:21: server.ws_push_interval: expected a duration between "
                             "100ms and 1h such as \"30s\" or \"500ms\" (a plain number means "
                             "milliseconds), got \"10ms\"");
    assert_message(&f->diag, "t.yaml:7:12: server.workers: expected an integer between 1 and 64, "
                             "got \"0\"");
    assert_message(&f->diag, "t.yaml:8:19: server.load_generator: expected true or false, got "
                             "\"maybe\"");
    assert_message(&f->diag, "t.yaml:9:15: server.auth_token: expected a token of at most 255 "
                             "bytes, got a list");
    assert_message(&f->diag, "t.yaml:10:18: server.allowed_hosts: expected a list of at most 16 "
                             "strings, got a scalar");
    assert_message(&f->diag, "t.yaml:11:8: server.tls: expected a mapping, got a scalar");
    assert_message(&f->diag, "t.yaml:13:11: server.auth.read: expected true or false, got "
                             "\"sometimes\"");
    assert_int_equal(f->diag.n_errors, 11);
    /* Every rejected key kept its default. */
    assert_int_equal(f->cfg.server.port, 9000);
    assert_int_equal(f->cfg.server.metrics_port, 9001);
    assert_int_equal(f->cfg.server.gpu_backend, AF_CONFIG_GPU_AUTO);
    assert_true(f->cfg.server.load_generator);
}

static void test_server_list_and_secret_errors(void **state)
{
    fixture *f = *state;
    char yaml[4096];
    size_t o = (size_t)snprintf(yaml, sizeof yaml, "server:\n  allowed_hosts:\n");
    for (int i = 0; i < 17; i++)
        o += (size_t)snprintf(yaml + o, sizeof yaml - o, "    - h%d.example\n", i);
    assert_int_equal(load(f, yaml), AF_EPARSE);
    assert_message(&f->diag, "t.yaml:3:5: server.allowed_hosts: more than 16 entries");
    assert_int_equal(f->cfg.server.n_allowed_hosts, 0);

    /* One bad entry rejects the whole list (the previous one stays). */
    assert_int_equal(load(f, "server:\n  allowed_hosts: [ok.example]\n"), 0);
    assert_int_equal(load(f, "server:\n  allowed_hosts: [a.example, \"\", {x: 1}]\n"), AF_EPARSE);
    assert_message(&f->diag, "t.yaml:2:30: server.allowed_hosts[1]: expected a host name, "
                             "optionally with :port, got \"\"");
    assert_message(&f->diag,
                   "t.yaml:2:34: server.allowed_hosts[2]: expected a string, got a mapping");
    assert_int_equal(f->cfg.server.n_allowed_hosts, 1);
    assert_string_equal(f->cfg.server.allowed_hosts[0], "ok.example");

    /* A rejected token is never quoted back. */
    char token[300];
    memset(token, 'k', sizeof token - 1);
    token[sizeof token - 1] = '\0';
    snprintf(yaml, sizeof yaml, "server:\n  auth_token: %s\n", token);
    assert_int_equal(load(f, yaml), AF_EPARSE);
    assert_message(&f->diag,
                   "t.yaml:2:15: server.auth_token: expected a token of at most 255 bytes");
    char *all = af_config_diag_format(&f->diag);
    assert_null(strstr(all, "kkkk"));
    free(all);
    assert_null(f->cfg.server.auth_token);
}

static void test_server_tls_pairing(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "server:\n  tls:\n    cert_file: /c.pem\n"), AF_EPARSE);
    assert_message(&f->diag,
                   "t.yaml: server.tls.cert_file: HTTPS needs both tls.cert_file and tls.key_file");
    af_config_diag_free(&f->diag);
    assert_int_equal(load(f, "server:\n  tls: {cert_file: \"\", client_ca_file: /ca.pem}\n"),
                     AF_EPARSE);
    assert_message(&f->diag, "t.yaml: server.tls.client_ca_file: client certificates need "
                             "HTTPS: set tls.cert_file and tls.key_file");
}

static void test_server_unknown_keys(void **state)
{
    fixture *f = *state;
    const char *yaml = "server:\n"
                       "  prot: 9100\n"
                       "  tsl:\n"
                       "    cert_file: /c.pem\n"
                       "  tls:\n"
                       "    cert_fle: /c.pem\n"
                       "  auth:\n"
                       "    raed: true\n"
                       "tracing:\n"
                       "  enabeld: false\n";
    assert_int_equal(load(f, yaml), 0);
    assert_message(&f->diag, "t.yaml:2:3: server.prot: unknown key (ignored); did you mean "
                             "\"server.port\"?");
    assert_message(&f->diag, "t.yaml:3:3: server.tsl: unknown key (ignored); did you mean "
                             "\"server.tls\"?");
    assert_message(&f->diag, "t.yaml:6:5: server.tls.cert_fle: unknown key (ignored); did you "
                             "mean \"server.tls.cert_file\"?");
    assert_message(&f->diag, "t.yaml:8:5: server.auth.raed: unknown key (ignored); did you mean "
                             "\"server.auth.read\"?");
    assert_message(&f->diag, "t.yaml:10:3: tracing.enabeld: unknown key (ignored); did you mean "
                             "\"tracing.enabled\"?");
    assert_int_equal(f->diag.n_warnings, 5);
    assert_int_equal(f->cfg.server.port, 9000);
    assert_null(f->cfg.server.tls.cert_file);
    assert_true(f->cfg.tracing.enabled);
}

static void test_server_env(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "server:\n  port: 9100\n  bind_address: 127.0.0.2\n"
                             "  allowed_hosts: [file.example]\n"),
                     0);
    setenv("AGENTAFLOW_PORT", "9200", 1);
    setenv("AGENTAFLOW_METRICS_PORT", "-1", 1);
    setenv("AGENTAFLOW_BIND_ADDRESS", "", 1); /* empty = unset: the file's value stays */
    setenv("AGENTAFLOW_AUTH_TOKEN", "env-token", 1);
    setenv("AGENTAFLOW_ALLOWED_HOSTS", " a.example , b.example:8080,,", 1);
    assert_int_equal(af_tracing_config_apply_env(&f->cfg, &f->diag), 0);
    const af_server_config *c = &f->cfg.server;
    assert_int_equal(c->port, 9200);
    assert_int_equal(c->metrics_port, -1);
    assert_string_equal(c->bind_address, "127.0.0.2");
    assert_string_equal(c->auth_token, "env-token");
    assert_int_equal(c->n_allowed_hosts, 2);
    assert_string_equal(c->allowed_hosts[0], "a.example");
    assert_string_equal(c->allowed_hosts[1], "b.example:8080");
    assert_int_equal(f->diag.n_errors + f->diag.n_warnings, 0);

    /* Bad values are errors (the daemon must not start half-configured), and the token is
     * never quoted. */
    char token[300];
    memset(token, 'k', sizeof token - 1);
    token[sizeof token - 1] = '\0';
    setenv("AGENTAFLOW_PORT", "http", 1);
    setenv("AGENTAFLOW_AUTH_TOKEN", token, 1);
    setenv("AGENTAFLOW_ALLOWED_HOSTS", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", 1);
    assert_int_equal(af_tracing_config_apply_env(&f->cfg, &f->diag), 0);
    assert_message(&f->diag, "AGENTAFLOW_PORT: expected a port number 0-65535 (0 = any free "
                             "port), got \"http\"");
    assert_message(&f->diag, "AGENTAFLOW_AUTH_TOKEN: expected a token of at most 255 bytes");
    assert_message(&f->diag, "AGENTAFLOW_ALLOWED_HOSTS: more than 16 entries, got "
                             "\"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17\"");
    assert_int_equal(f->diag.n_errors, 3);
    assert_int_equal(c->port, 9200);
    assert_string_equal(c->auth_token, "env-token");
    assert_int_equal(c->n_allowed_hosts, 2);
}

static void test_server_dump_redacts(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "server:\n  auth_token: hunter2hunter2\n"
                             "  allowed_hosts: [gpu.example]\n  tls: {cert_file: /c, key_file: "
                             "/k}\n"),
                     0);
    char *json = NULL, *text = NULL;
    assert_int_equal(af_config_dump_json(&f->cfg, true, &json), 0);
    assert_int_equal(af_config_dump_text(&f->cfg, true, &text), 0);
    assert_null(strstr(json, "hunter2"));
    assert_null(strstr(text, "hunter2"));
    assert_non_null(strstr(json, "\"auth_token\": \"[redacted]\""));
    assert_non_null(strstr(json, "\"allowed_hosts\": [\n      \"gpu.example\"\n    ]"));
    assert_non_null(strstr(json, "\"tls\": {\n      \"cert_file\": \"/c\""));
    assert_non_null(strstr(json, "\"metrics_port\": 9001"));
    assert_non_null(strstr(text, "server.auth_token = [redacted]\n"));
    assert_non_null(strstr(text, "server.port = 9000\n"));
    assert_non_null(strstr(text, "server.allowed_hosts = [\"gpu.example\"]\n"));
    assert_non_null(strstr(text, "server.tls.client_ca_file = (unset)\n"));
    assert_non_null(strstr(text, "server.body_limit = 1048576\n"));
    assert_non_null(strstr(text, "server.gpu_backend = auto\n"));
    free(json);
    free(text);
    assert_int_equal(af_config_dump_json(&f->cfg, false, &json), 0);
    assert_non_null(strstr(json, "hunter2hunter2"));
    free(json);
}

/* af_config_set: what command-line flags use. */
static void test_config_set(void **state)
{
    fixture *f = *state;
    char err[256] = "";
    assert_int_equal(af_config_set(&f->cfg, "server.port", "0", err, sizeof err), 0);
    assert_int_equal(f->cfg.server.port, 0);
    assert_int_equal(af_config_set(&f->cfg, "server.gpu_backend", "NVML", err, sizeof err), 0);
    assert_int_equal(f->cfg.server.gpu_backend, AF_CONFIG_GPU_NVML);
    assert_int_equal(af_config_set(&f->cfg, "server.metrics_port", "65536", err, sizeof err),
                     AF_EPARSE);
    assert_string_equal(err, "expected a port number 0-65535 (0 = any free port) or -1 (no "
                             "listener)");
    assert_int_equal(af_config_set(&f->cfg, "server.prot", "1", err, sizeof err), -EINVAL);
    assert_string_equal(err, "server.prot: unknown key");
    assert_int_equal(af_config_set(&f->cfg, "server.allowed_hosts", "x", err, sizeof err), -EINVAL);
    assert_int_equal(f->cfg.server.n_allowed_hosts, 0);
}

/* docs/configuration.md comes from here: every key once, with its bounds and variable. */
static void test_docs(void **state)
{
    (void)state;
    char *md = NULL;
    assert_int_equal(af_config_dump_docs(&md), 0);
    for (size_t i = 0; i < af_config_key_count(); i++) {
        char cell[160];
        snprintf(cell, sizeof cell, "| `%s` |", af_config_key_at(i)->key);
        const char *at = strstr(md, cell);
        assert_non_null(at);
        assert_null(strstr(at + 1, cell));
    }
    assert_non_null(
        strstr(md, "| `server.port` | int | `9000` | 0 to 65535 | `AGENTAFLOW_PORT` |"));
    assert_non_null(strstr(md, "| `server.auth_token` | string, secret | unset |"));
    assert_non_null(strstr(md, "| `server.gpu_backend` | enum | `auto` | auto, nvml, simulated |"));
    assert_non_null(
        strstr(md, "`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_ENDPOINT`"));
    assert_non_null(strstr(md, "\n## server\n"));
    free(md);

    char bounds[128];
    af_config_key_bounds(af_config_key_find("server.ws_push_interval"), bounds, sizeof bounds);
    assert_string_equal(bounds, "100ms to 1h");
    af_config_key_bounds(af_config_key_find("server.allowed_hosts"), bounds, sizeof bounds);
    assert_string_equal(bounds, "at most 16 entries of at most 255 bytes");
    af_config_key_info copy = *af_config_key_find("server.port"); /* not a table row */
    af_config_key_bounds(&copy, bounds, sizeof bounds);
    assert_string_equal(bounds, "");
}

/* server.log_levels: a map whose values are levels, each checked at its own position. */
static void test_log_levels_map(void **state)
{
    (void)state;
    af_tracing_config cfg;
    assert_int_equal(af_tracing_config_init(&cfg), 0);
    af_config_diag d;
    af_config_diag_init(&d);
    static const char yaml[] = "server:\n"
                               "  log_format: json\n"
                               "  log_levels:\n"
                               "    http: debug\n"
                               "    gpu: loud\n";
    assert_int_equal(af_tracing_config_load_string("f.yaml", yaml, sizeof yaml - 1, &cfg, &d),
                     AF_EPARSE);
    assert_int_equal(d.n_errors, 1);
    assert_string_equal(d.entries[0].message,
                        "f.yaml:5:10: server.log_levels.gpu: expected one of debug, info, warn, "
                        "error, off, got \"loud\"");
    assert_int_equal(cfg.server.log_format, AF_CONFIG_LOG_JSON);
    assert_int_equal(cfg.server.n_log_levels, 1);
    assert_string_equal(cfg.server.log_levels[0].key, "http");
    assert_string_equal(cfg.server.log_levels[0].value, "debug");
    af_config_diag_free(&d);
    af_tracing_config_clear(&cfg);
}

/* What SIGHUP may apply, and the changed keys it reports as needing a restart. */
static void test_restart_keys(void **state)
{
    (void)state;
    assert_true(af_config_key_reloadable("tracing.sampling_ratio"));
    assert_true(af_config_key_reloadable("tracing.exporters.otlp_http.headers"));
    assert_true(af_config_key_reloadable("components.web_dashboard.trace_api_requests"));
    assert_true(af_config_key_reloadable("server.log_levels"));
    assert_false(af_config_key_reloadable("server.port"));
    assert_false(af_config_key_reloadable("tracing.enabled"));
    assert_false(af_config_key_reloadable("server.tls.cert_file"));

    af_tracing_config a, b;
    assert_int_equal(af_tracing_config_init(&a), 0);
    assert_int_equal(af_tracing_config_init(&b), 0);
    const char *keys[8];
    assert_int_equal(af_config_restart_keys(&a, &b, keys, 8), 0);
    char why[128];
    assert_int_equal(af_config_set(&b, "server.port", "9100", why, sizeof why), 0);
    assert_int_equal(af_config_set(&b, "server.auth_token", "s3cret", why, sizeof why), 0);
    assert_int_equal(af_config_set(&b, "tracing.sampling_ratio", "0.1", why, sizeof why), 0);
    assert_int_equal(af_config_set(&b, "server.log_format", "json", why, sizeof why), 0);
    assert_int_equal(af_config_restart_keys(&a, &b, keys, 8), 2);
    assert_string_equal(keys[0], "server.port");
    assert_string_equal(keys[1], "server.auth_token");
    assert_int_equal(af_config_restart_keys(&a, &b, keys, 1), 2); /* counted past cap */
    af_tracing_config_clear(&a);
    af_tracing_config_free(&b); /* the released ABI's name for _clear */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_example_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_errors_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_structure_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_top_level_not_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_document, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_null_sections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_keys, setup, teardown),
        cmocka_unit_test(test_durations),
        cmocka_unit_test_setup_teardown(test_duration_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_headers_and_attributes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_optional_strings_and_mtls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aliases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_canonical_beats_alias, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_overrides_file, setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_env_bad_values_ignored, setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_env_none_and_disabled_false, setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_dump_redacts, setup, teardown),
        cmocka_unit_test(test_key_table),
        cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diag_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diag_null_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_keys_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_list_and_secret_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_tls_pairing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_unknown_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_env, setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_server_dump_redacts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_set, setup, teardown),
        cmocka_unit_test(test_docs),
        cmocka_unit_test(test_restart_keys),
        cmocka_unit_test(test_log_levels_map),
    };
    for (size_t i = 0; i < sizeof otel_vars / sizeof otel_vars[0]; i++)
        unsetenv(otel_vars[i]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
