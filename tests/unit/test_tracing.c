/*
 * Tests of the TracingIntegration object: construction from a config, the components.*
 * toggles, added exporters, shutdown, and the health check (status rule, keys, no secrets).
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#include "agentaflow/config.h"
#include "agentaflow/export.h"
#include "agentaflow/tracing.h"
#include "config/tracing_int.h"

static void base_config(af_tracing_config *cfg)
{
    assert_int_equal(af_tracing_config_init(cfg), 0);
    /* The test must not depend on a collector: no network exporter unless a test asks. */
    cfg->tracing.exporters.jaeger.enabled = false;
    cfg->tracing.exporters.otlp_http.enabled = false;
    cfg->tracing.exporters.stdout_.enabled = false;
}

static af_batch_processor_opts fast_batch(void)
{
    af_batch_processor_opts o;
    af_batch_processor_opts_init(&o);
    o.schedule_delay_ms = 10;
    return o;
}

static void test_disabled(void **state)
{
    (void)state;
    af_tracing_config cfg;
    base_config(&cfg);
    cfg.tracing.enabled = false;
    af_tracing *t = NULL;
    char err[256];
    assert_int_equal(af_tracing_new(&cfg, &t, err, sizeof err), 0);
    af_tracing_config_clear(&cfg);
    assert_non_null(t);
    assert_null(af_tracing_tracer(t));
    assert_null(af_tracing_provider(t));
    for (int c = 0; c < AF_TRACE_COMPONENT_COUNT; c++) {
        assert_null(af_tracing_tracer_for(t, (af_trace_component)c));
        assert_false(af_tracing_component_enabled(t, (af_trace_component)c));
    }
    af_exporter *e = NULL;
    assert_int_equal(af_memory_exporter_new(0, &e, NULL), 0);
    assert_int_equal(af_tracing_add_exporter(t, e, NULL), AF_ESHUTDOWN); /* e freed */

    af_tracing_health h;
    af_tracing_health_get(t, &h);
    assert_int_equal(h.status, AF_HEALTH_DISABLED);
    assert_string_equal(h.service_name, "agentaflow-sro");
    char *json = af_tracing_health_json(t);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"status\":\"disabled\""));
    assert_non_null(strstr(json, "\"enabled\":false"));
    free(json);
    assert_int_equal(af_tracing_shutdown(t, 100), 0);
    af_tracing_free(t);

    af_tracing_health_get(NULL, &h);
    assert_int_equal(h.status, AF_HEALTH_DISABLED);
    assert_null(af_tracing_tracer(NULL));
}

static void test_components_and_memory_exporter(void **state)
{
    (void)state;
    af_tracing_config cfg;
    char path[1024];
    const char *me = __FILE__;
    const char *cut = strstr(me, "tests/unit/test_tracing.c");
    snprintf(path, sizeof path, "%.*sexamples/tracing-config.yaml", cut ? (int)(cut - me) : 0, me);
    assert_int_equal(af_tracing_config_init(&cfg), 0);
    assert_int_equal(af_tracing_config_load(path, &cfg, NULL), 0);
    cfg.tracing.exporters.jaeger.enabled = false; /* no collector in unit tests */
    cfg.components.web_dashboard.trace_api_requests = false;

    af_tracing *t = NULL;
    char err[256];
    assert_int_equal(af_tracing_new(&cfg, &t, err, sizeof err), 0);
    af_tracing_config_clear(&cfg); /* the integration keeps its own copy */
    assert_string_equal(af_tracing_config_of(t)->service_name, "agentaflow-sro-community");

    af_exporter *e = NULL;
    af_memory_exporter *mem = NULL;
    assert_int_equal(af_memory_exporter_new(0, &e, &mem), 0);
    af_batch_processor_opts bo = fast_batch();
    assert_int_equal(af_tracing_add_exporter(t, e, &bo), 0);

    assert_non_null(af_tracing_tracer(t));
    assert_null(af_tracing_tracer_for(t, AF_TRACE_API_REQUESTS));
    assert_null(af_tracing_tracer_for(t, AF_TRACE_WEBSOCKET_EVENTS)); /* false in the file */
    assert_null(af_tracing_tracer_for(t, AF_TRACE_METRICS_INDIVIDUAL_GPUS));
    assert_ptr_equal(af_tracing_tracer_for(t, AF_TRACE_GPU_REGISTRATION), af_tracing_tracer(t));
    assert_ptr_equal(af_tracing_tracer_for(t, AF_TRACE_COST_CALCULATIONS), af_tracing_tracer(t));
    assert_null(af_tracing_tracer_for(t, AF_TRACE_COMPONENT_COUNT));

    /* A toggled-off component's spans vanish: the NULL tracer yields a no-op span. */
    af_span off = af_span_start(af_tracing_tracer_for(t, AF_TRACE_API_REQUESTS), "GET /x", NULL);
    assert_false(af_span_is_recording(off));
    af_span_end(off);
    af_span on = af_span_start(af_tracing_tracer_for(t, AF_TRACE_GPU_REGISTRATION),
                               "gpu_scheduling.register_gpu", NULL);
    assert_true(af_span_is_recording(on));
    af_span_end(on);
    assert_int_equal(af_tracing_force_flush(t, 5000), 0);
    assert_int_equal(af_memory_exporter_count(mem), 1);

    af_span_copy *copies[4];
    size_t n = af_memory_exporter_snapshot(mem, copies, 4);
    assert_int_equal(n, 1);
    const af_span_data *d = af_span_copy_data(copies[0]);
    assert_string_equal(d->name, "gpu_scheduling.register_gpu");
    assert_string_equal(d->scope->name, "agentaflow");
    assert_string_equal(af_resource_get_string(d->resource, "service.name"),
                        "agentaflow-sro-community");
    assert_string_equal(af_resource_get_string(d->resource, "service.version"), "0.1.0");
    /* resource_attributes override the environment key, as the document's list intends. */
    assert_string_equal(af_resource_get_string(d->resource, "deployment.environment"),
                        "kubernetes");
    assert_string_equal(af_resource_get_string(d->resource, "service.instance.id"),
                        "gpu-scheduler-1");
    af_span_copy_release(copies[0]);

    af_tracing_health h;
    af_tracing_health_get(t, &h);
    assert_int_equal(h.status, AF_HEALTH_HEALTHY);
    assert_int_equal(h.n_exporters, 1);
    assert_string_equal(h.exporters[0].type, "memory");
    assert_true(h.spans.spans_started >= 1);
    assert_true(h.spans.spans_exported >= 1);
    assert_true(h.queue_capacity >= 2048);
    assert_string_equal(h.service_name, "agentaflow-sro-community");
    assert_non_null(strstr(h.sampler, "ParentBased{root:AlwaysOn"));

    char *json = af_tracing_health_json(t);
    assert_non_null(json);
    static const char *const keys[] = {
        "\"status\":\"healthy\"",
        "\"enabled\":true",
        "\"service_name\":",
        "\"environment\":",
        "\"sampler\":",
        "\"sampling_ratio\":",
        "\"exporter_type\":\"memory\"",
        "\"exporters\":[",
        "\"queue\":{\"depth\":",
        "\"capacity\":",
        "\"spans\":{\"started\":",
        "\"dropped\":",
        "\"export_latency_ms_avg\":",
        "\"components\":{",
        "\"web_dashboard.trace_api_requests\":false",
        "\"gpu_scheduler.trace_gpu_registration\":true",
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strstr(json, keys[i]))
            fail_msg("%s missing from %s", keys[i], json);
    /* Written without a JSON library: check it is a well-formed object all the same. */
    json_error_t jerr;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root))
        fail_msg("%s: %s", jerr.text, json);
    assert_int_equal(json_array_size(json_object_get(root, "exporters")), 1);
    json_decref(root);
    free(json);

    assert_int_equal(af_tracing_shutdown(t, 5000), 0);
    assert_int_not_equal(af_tracing_shutdown(t, 5000), 0); /* only the first one acts */
    af_tracing_free(t);
}

static void test_ratio_sampler(void **state)
{
    (void)state;
    af_tracing_config cfg;
    base_config(&cfg);
    cfg.tracing.sampling_ratio = 0.25;
    af_tracing *t = NULL;
    assert_int_equal(af_tracing_new(&cfg, &t, NULL, 0), 0);
    af_tracing_config_clear(&cfg);
    char *json = af_tracing_health_json(t);
    assert_non_null(strstr(json, "ParentBased{root:TraceIdRatioBased{0.25}"));
    assert_non_null(strstr(json, "\"sampling_ratio\":0.25"));
    free(json);
    af_tracing_free(t);
}

/* An exporter whose health hook reports a failing collector. */
static int failing_export(void *self, const af_span_data *const *spans, size_t n, uint64_t dl)
{
    (void)self;
    (void)spans;
    (void)n;
    (void)dl;
    return AF_EEXPORT;
}

static void failing_health(void *self, af_exporter_health *out)
{
    (void)self;
    snprintf(out->endpoint, sizeof out->endpoint, "http://user:pw@collector:4318/v1/traces?k=v");
    snprintf(out->last_error, sizeof out->last_error, "connection refused");
    out->consecutive_failures = 3;
}

static const af_exporter_ops failing_ops = {
    .type = "failing",
    .export_spans = failing_export,
    .health = failing_health,
};

static void test_degraded_and_no_secrets(void **state)
{
    (void)state;
    af_tracing_config cfg;
    base_config(&cfg);
    const char *yaml = "tracing:\n  exporters:\n    otlp_http:\n      enabled: true\n"
                       "      endpoint: http://127.0.0.1:9/v1/traces\n"
                       "      headers:\n        x-honeycomb-team: topsecret-value\n";
    af_config_diag diag;
    af_config_diag_init(&diag);
    assert_int_equal(af_tracing_config_load_string("t.yaml", yaml, strlen(yaml), &cfg, &diag), 0);
    af_config_diag_free(&diag);

    af_tracing *t = NULL;
    char err[256];
    int rc = af_tracing_new(&cfg, &t, err, sizeof err);
    if (rc != 0)
        fail_msg("af_tracing_new: %s", err);
    af_tracing_config_clear(&cfg);

    af_exporter *e = NULL;
    assert_int_equal(af_exporter_new(&failing_ops, NULL, &e), 0);
    assert_int_equal(af_tracing_add_exporter(t, e, NULL), 0);

    af_tracing_health h;
    af_tracing_health_get(t, &h);
    assert_int_equal(h.status, AF_HEALTH_DEGRADED);
    assert_int_equal(h.n_exporters, 2);
    assert_string_equal(h.exporters[0].type, "otlp_http");
    assert_string_equal(h.exporters[1].endpoint, "http://collector:4318/v1/traces?[redacted]");

    char *json = af_tracing_health_json(t);
    assert_non_null(json);
    assert_null(strstr(json, "topsecret"));
    assert_null(strstr(json, "pw@"));
    assert_null(strstr(json, "k=v"));
    assert_non_null(strstr(json, "\"status\":\"degraded\""));
    assert_non_null(strstr(json, "\"exporter_type\":\"otlp_http,failing\""));
    assert_non_null(strstr(json, "\"last_error\":\"connection refused\""));
    assert_non_null(strstr(json, "\"healthy\":false"));
    free(json);
    /* No span was started, so shutdown has nothing to send to the dead collector. */
    assert_int_equal(af_tracing_shutdown(t, 2000), 0);
    af_tracing_free(t);
}

static void test_bad_exporter_config(void **state)
{
    (void)state;
    af_tracing_config cfg;
    base_config(&cfg);
    cfg.tracing.exporters.otlp_http.enabled = true;
    free(cfg.tracing.exporters.otlp_http.endpoint);
    cfg.tracing.exporters.otlp_http.endpoint = strdup("ftp://collector/v1/traces");
    af_tracing *t = NULL;
    char err[256];
    af_test_log_capture_begin();
    int rc = af_tracing_new(&cfg, &t, err, sizeof err);
    af_test_log_capture_end();
    assert_int_equal(rc, -EINVAL);
    assert_null(t);
    assert_non_null(strstr(err, "tracing.exporters.otlp_http"));

    assert_int_equal(af_tracing_new(NULL, &t, err, sizeof err), -EINVAL);
    af_tracing_config_clear(&cfg);
}

static void test_shutdown_flushes_pending(void **state)
{
    (void)state;
    af_tracing_config cfg;
    base_config(&cfg);
    af_tracing *t = NULL;
    assert_int_equal(af_tracing_new(&cfg, &t, NULL, 0), 0);
    af_tracing_config_clear(&cfg);
    af_exporter *e = NULL;
    af_memory_exporter *mem = NULL;
    assert_int_equal(af_memory_exporter_new(0, &e, &mem), 0);
    af_batch_processor_opts bo;
    af_batch_processor_opts_init(&bo);
    bo.schedule_delay_ms = 60000; /* only the final flush can deliver it */
    assert_int_equal(af_tracing_add_exporter(t, e, &bo), 0);
    af_span s = af_span_start(af_tracing_tracer(t), "x", NULL);
    af_span_end(s);
    assert_int_equal(af_tracing_shutdown(t, 5000), 0);
    assert_int_equal(af_memory_exporter_count(mem), 1);
    af_tracing_free(t);
}

/* A dead collector (nothing listens on the port) behind the OTLP exporter must neither
 * delay nor lose the spans of another exporter: each has its own batch processor. */
static void test_dead_exporter_does_not_delay_others(void **state)
{
    (void)state;
    af_tracing_config cfg;
    base_config(&cfg);
    cfg.tracing.exporters.otlp_http.enabled = true;
    free(cfg.tracing.exporters.otlp_http.endpoint);
    cfg.tracing.exporters.otlp_http.endpoint = strdup("http://127.0.0.1:9/v1/traces");
    cfg.performance.schedule_delay_ms = 10;
    af_tracing *t = NULL;
    char err[256] = "";
    assert_int_equal(af_tracing_new(&cfg, &t, err, sizeof(err)), 0);
    af_tracing_config_clear(&cfg);
    af_exporter *e = NULL;
    af_memory_exporter *mem = NULL;
    assert_int_equal(af_memory_exporter_new(0, &e, &mem), 0);
    af_batch_processor_opts bo = fast_batch();
    assert_int_equal(af_tracing_add_exporter(t, e, &bo), 0);

    enum { N = 200 };
    uint64_t t0 = af_monotonic_ns();
    for (int i = 0; i < N; i++)
        af_span_end(af_span_start(af_tracing_tracer(t), "through", NULL));
    /* Poll (bounded) until the memory exporter has every span. */
    while (af_memory_exporter_total(mem) < N && af_monotonic_ns() - t0 < 5000000000ull) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    /* Every span arrived while the dead exporter was still retrying (its backoff alone
     * outlasts the poll bound): its retries ran in its own thread. */
    assert_int_equal(af_memory_exporter_total(mem), N);

    /* The dead one is reported as soon as its first attempt fails (polled, bounded), while
     * it is still retrying; shutdown stays within its bound. */
    af_tracing_health h;
    t0 = af_monotonic_ns();
    do {
        af_tracing_health_get(t, &h);
        if (h.status == AF_HEALTH_DEGRADED)
            break;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    } while (af_monotonic_ns() - t0 < 5000000000ull);
    assert_int_equal(h.status, AF_HEALTH_DEGRADED);
    t0 = af_monotonic_ns();
    af_tracing_shutdown(t, 1500);
    assert_true((af_monotonic_ns() - t0) / 1000000 < 3000);
    af_tracing_free(t);
}

/* An exporter that holds its first export until released: a stalled collector, so the
 * processor's queue fills up and spans are dropped. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
} gate;

static int gate_export(void *self, const af_span_data *const *spans, size_t n, uint64_t dl)
{
    (void)spans;
    (void)n;
    (void)dl;
    gate *g = self;
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return 0;
}

static const af_exporter_ops gate_ops = {.type = "gate", .export_spans = gate_export};

static uint64_t clock_offset_ns;

/* The monotonic clock moved forward by clock_offset_ns: steps past the drop window. */
static uint64_t shifted_clock(void)
{
    return af_monotonic_ns() + clock_offset_ns;
}

/* Issue 12 (7): reading health consumed the "spans dropped" signal, so the second read said
 * healthy, /health disagreed with itself and each Prometheus scrape reset it. */
static void test_health_read_is_pure(void **state)
{
    (void)state;
    af_tracing_config cfg;
    base_config(&cfg);
    af_tracing *t = NULL;
    char err[256] = "";
    assert_int_equal(af_tracing_new(&cfg, &t, err, sizeof(err)), 0);
    af_tracing_config_clear(&cfg);
    gate g = {.open = false};
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    af_exporter *e = NULL;
    assert_int_equal(af_exporter_new(&gate_ops, &g, &e), 0);
    af_batch_processor_opts bo = fast_batch();
    bo.max_queue_size = 8;
    bo.max_export_batch_size = 8;
    assert_int_equal(af_tracing_add_exporter(t, e, &bo), 0);

    af_tracing_health h;
    af_tracing_health_get(t, &h);
    assert_int_equal(h.status, AF_HEALTH_HEALTHY);
    af_test_log_capture_begin(); /* the processor warns about the full queue */
    for (int i = 0; i < 1000; i++)
        af_span_end(af_span_start(af_tracing_tracer(t), "s", NULL));
    af_test_log_capture_end();
    for (int i = 0; i < 3; i++) {
        af_tracing_health_get(t, &h);
        assert_true(h.spans.spans_dropped > 0);
        assert_int_equal(h.status, AF_HEALTH_DEGRADED);
    }
    char *json = af_tracing_health_json(t);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"status\":\"degraded\""));
    free(json);

    clock_offset_ns = t->health->drop_window_ns;
    t->health->clock = shifted_clock;
    af_tracing_health_get(t, &h);
    assert_int_equal(h.status, AF_HEALTH_HEALTHY);
    clock_offset_ns = t->health->drop_window_ns / 2; /* still inside the window */
    af_tracing_health_get(t, &h);
    assert_int_equal(h.status, AF_HEALTH_DEGRADED);

    pthread_mutex_lock(&g.mu);
    g.open = true;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    af_tracing_free(t);
}

int main(void)
{
    static const char *const vars[] = {"OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME",
                                       "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER",
                                       "OTEL_BSP_MAX_QUEUE_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disabled),
        cmocka_unit_test(test_components_and_memory_exporter),
        cmocka_unit_test(test_ratio_sampler),
        cmocka_unit_test(test_degraded_and_no_secrets),
        cmocka_unit_test(test_bad_exporter_config),
        cmocka_unit_test(test_shutdown_flushes_pending),
        cmocka_unit_test(test_dead_exporter_does_not_delay_others),
        cmocka_unit_test(test_health_read_is_pure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
