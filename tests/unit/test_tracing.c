/*
 * Tests of the TracingIntegration object: construction from a config, the components.*
 * toggles, added exporters, shutdown, the health check (status rule, keys, no secrets) and
 * af_tracing_reconfigure (ratio, toggles, exporter swap while spans are in flight).
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_receiver.h"
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

/* ----- af_tracing_reconfigure ------------------------------------------------------------ */

static bool root_sampled(af_tracing *t)
{
    af_span s = af_span_start(af_tracing_tracer(t), "root", NULL);
    af_span_context sc;
    af_span_get_context(s, &sc);
    af_span_end(s);
    return af_span_context_is_sampled(&sc);
}

static void test_reconfigure_ratio_and_toggles(void **state)
{
    (void)state;
    af_tracing_config cfg;
    base_config(&cfg);
    af_tracing *t = NULL;
    assert_int_equal(af_tracing_new(&cfg, &t, NULL, 0), 0);
    af_exporter *e = NULL;
    assert_int_equal(af_memory_exporter_new(0, &e, NULL), 0);
    assert_int_equal(af_tracing_add_exporter(t, e, NULL), 0);
    assert_true(root_sampled(t));
    assert_non_null(af_tracing_tracer_for(t, AF_TRACE_API_REQUESTS));
    const af_tracing_config *before = af_tracing_config_of(t);

    cfg.tracing.sampling_ratio = 0.0;
    cfg.components.web_dashboard.trace_api_requests = false;
    cfg.components.observability.trace_health_checks = true;
    free(cfg.service_name); /* not reloadable: keeps its running value */
    cfg.service_name = strdup("renamed");
    char err[256];
    assert_int_equal(af_tracing_reconfigure(t, &cfg, err, sizeof err), 0);
    for (int i = 0; i < 50; i++)
        assert_false(root_sampled(t));
    assert_null(af_tracing_tracer_for(t, AF_TRACE_API_REQUESTS));
    assert_non_null(af_tracing_tracer_for(t, AF_TRACE_HEALTH_CHECKS));
    /* The effective configuration shows the reloaded keys and the running others; the one
     * borrowed before is still readable. */
    const af_tracing_config *now = af_tracing_config_of(t);
    assert_true(now->tracing.sampling_ratio == 0.0);
    assert_string_equal(now->service_name, "agentaflow-sro");
    assert_true(before->tracing.sampling_ratio == 1.0);
    af_tracing_health h;
    af_tracing_health_get(t, &h);
    assert_true(h.sampling_ratio == 0.0);
    assert_non_null(strstr(h.sampler, "TraceIdRatioBased{0}"));

    cfg.tracing.sampling_ratio = 1.0;
    cfg.components.web_dashboard.trace_api_requests = true;
    assert_int_equal(af_tracing_reconfigure(t, &cfg, err, sizeof err), 0);
    assert_true(root_sampled(t));
    assert_non_null(af_tracing_tracer_for(t, AF_TRACE_API_REQUESTS));
    af_tracing_config_clear(&cfg);
    af_tracing_free(t);
}

static void otlp_to(af_tracing_config *cfg, const af_test_http_receiver *r)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/traces", af_test_http_receiver_port(r));
    cfg->tracing.exporters.otlp_http.enabled = true;
    cfg->tracing.exporters.otlp_http.protocol = AF_OTLP_HTTP_JSON;
    free(cfg->tracing.exporters.otlp_http.endpoint);
    cfg->tracing.exporters.otlp_http.endpoint = strdup(url);
}

static bool got_span(af_test_http_receiver *r, const char *name)
{
    for (size_t i = 0; i < af_test_http_receiver_requests(r); i++) {
        const af_test_http_request *q = af_test_http_receiver_request(r, i);
        if (q && memmem(q->body, q->body_len, name, strlen(name)))
            return true;
    }
    return false;
}

static void end_span(af_tracing *t, const char *name)
{
    af_span_end(af_span_start(af_tracing_tracer(t), name, NULL));
}

/* A changed endpoint: what the old exporter queued is flushed there, later spans go to the
 * new one, and an exporter the configuration does not own keeps running untouched. */
static void test_reconfigure_swaps_exporter(void **state)
{
    (void)state;
    af_test_http_receiver *a = NULL, *b = NULL;
    assert_int_equal(af_test_http_receiver_start(NULL, &a), 0);
    assert_int_equal(af_test_http_receiver_start(NULL, &b), 0);
    af_tracing_config cfg;
    base_config(&cfg);
    cfg.performance.schedule_delay_ms = 60000; /* only a flush or a shutdown exports */
    otlp_to(&cfg, a);
    af_tracing *t = NULL;
    char err[256];
    assert_int_equal(af_tracing_new(&cfg, &t, err, sizeof err), 0);
    af_exporter *e = NULL;
    af_memory_exporter *mem = NULL;
    assert_int_equal(af_memory_exporter_new(0, &e, &mem), 0);
    af_batch_processor_opts fb = fast_batch();
    assert_int_equal(af_tracing_add_exporter(t, e, &fb), 0);

    end_span(t, "before-reload");
    otlp_to(&cfg, b);
    assert_int_equal(af_tracing_reconfigure(t, &cfg, err, sizeof err), 0);
    assert_true(got_span(a, "before-reload")); /* the old exporter's final flush */
    end_span(t, "after-reload");
    assert_int_equal(af_tracing_force_flush(t, 5000), 0);
    assert_true(got_span(b, "after-reload"));
    assert_false(got_span(a, "after-reload"));
    assert_false(got_span(b, "before-reload"));
    uint64_t t0 = af_monotonic_ns();
    while (af_memory_exporter_total(mem) < 2 && af_monotonic_ns() - t0 < 5000000000ull)
        af_tracing_force_flush(t, 1000);
    assert_int_equal(af_memory_exporter_total(mem), 2);

    /* Disabling the exporter removes it; health lists only live exporters. */
    size_t reqs = af_test_http_receiver_requests(b);
    cfg.tracing.exporters.otlp_http.enabled = false;
    assert_int_equal(af_tracing_reconfigure(t, &cfg, err, sizeof err), 0);
    end_span(t, "after-disable");
    af_tracing_force_flush(t, 5000);
    assert_int_equal(af_test_http_receiver_requests(b), reqs);
    af_tracing_health h;
    af_tracing_health_get(t, &h);
    assert_int_equal(h.n_exporters, 1); /* the memory exporter */

    af_tracing_config_clear(&cfg);
    af_tracing_free(t);
    af_test_http_receiver_stop(a);
    af_test_http_receiver_stop(b);
}

/* An exporter that cannot be built leaves everything as it was. */
static void test_reconfigure_failure_changes_nothing(void **state)
{
    (void)state;
    af_tracing_config cfg;
    base_config(&cfg);
    af_tracing *t = NULL;
    assert_int_equal(af_tracing_new(&cfg, &t, NULL, 0), 0);
    cfg.tracing.sampling_ratio = 0.0;
    cfg.tracing.exporters.otlp_http.enabled = true;
    free(cfg.tracing.exporters.otlp_http.endpoint);
    cfg.tracing.exporters.otlp_http.endpoint = strdup("ftp://collector/v1/traces");
    char err[256];
    af_test_log_capture_begin();
    int rc = af_tracing_reconfigure(t, &cfg, err, sizeof err);
    af_test_log_capture_end();
    assert_int_equal(rc, -EINVAL);
    assert_non_null(strstr(err, "tracing.exporters.otlp_http"));
    assert_true(root_sampled(t));
    assert_true(af_tracing_config_of(t)->tracing.sampling_ratio == 1.0);
    assert_false(af_tracing_config_of(t)->tracing.exporters.otlp_http.enabled);
    af_tracing_config_clear(&cfg);
    af_tracing_free(t);
}

/* Spans start and end on several threads while reloads swap the exporter and the ratio
 * (run under TSan too): nothing is lost to a freed processor, nothing races. */
static atomic_bool stop_spans;

static void *span_loop(void *arg)
{
    af_tracing *t = arg;
    while (!atomic_load(&stop_spans)) {
        af_span s = af_span_start(af_tracing_tracer_for(t, AF_TRACE_API_REQUESTS), "busy", NULL);
        af_span_end(s);
    }
    return NULL;
}

static void test_reconfigure_under_load(void **state)
{
    (void)state;
    af_test_http_receiver *r[2] = {NULL, NULL};
    assert_int_equal(af_test_http_receiver_start(NULL, &r[0]), 0);
    assert_int_equal(af_test_http_receiver_start(NULL, &r[1]), 0);
    af_tracing_config cfg;
    base_config(&cfg);
    cfg.performance.schedule_delay_ms = 20;
    otlp_to(&cfg, r[0]);
    af_tracing *t = NULL;
    assert_int_equal(af_tracing_new(&cfg, &t, NULL, 0), 0);
    af_test_log_capture_begin(); /* full queues under this load are expected, and logged */
    atomic_store(&stop_spans, false);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, span_loop, t), 0);
    char err[256];
    for (int i = 1; i <= 12; i++) {
        otlp_to(&cfg, r[i % 2]);
        cfg.tracing.sampling_ratio = i % 3 ? 0.5 : 1.0;
        cfg.components.web_dashboard.trace_api_requests = i % 4 != 0;
        assert_int_equal(af_tracing_reconfigure(t, &cfg, err, sizeof err), 0);
    }
    atomic_store(&stop_spans, true);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    af_test_log_capture_end();
    assert_int_equal(af_tracing_force_flush(t, 5000), 0);
    assert_true(af_test_http_receiver_requests(r[0]) > 0);
    af_tracing_health h;
    af_tracing_health_get(t, &h);
    assert_int_equal(h.n_exporters, 1);
    af_tracing_config_clear(&cfg);
    af_tracing_free(t);
    af_test_http_receiver_stop(r[0]);
    af_test_http_receiver_stop(r[1]);
}

/* The attribute value length of one recorded span with a 100-byte string attribute. */
static size_t recorded_length(uint32_t default_limit)
{
    af_tracing_config cfg;
    base_config(&cfg);
    cfg.tracing.attribute_value_length_default = default_limit;
    af_tracing *t = NULL;
    char err[256];
    assert_int_equal(af_tracing_new(&cfg, &t, err, sizeof err), 0);
    af_tracing_config_clear(&cfg);
    af_exporter *e = NULL;
    af_memory_exporter *mem = NULL;
    assert_int_equal(af_memory_exporter_new(0, &e, &mem), 0);
    af_batch_processor_opts bo = fast_batch();
    assert_int_equal(af_tracing_add_exporter(t, e, &bo), 0);
    char v[101];
    memset(v, 'v', 100);
    v[100] = '\0';
    af_span sp = af_span_start(af_tracing_tracer(t), "limited", NULL);
    af_span_set_string(sp, "request.value", v);
    af_span_end(sp);
    assert_int_equal(af_tracing_force_flush(t, 5000), 0);
    af_span_copy *c[1];
    assert_int_equal(af_memory_exporter_snapshot(mem, c, 1), 1);
    const af_span_data *d = af_span_copy_data(c[0]);
    const af_attr *a = af_test_find_attr(d->attrs, d->n_attrs, "request.value");
    assert_non_null(a);
    size_t len = a->v.s.len;
    af_span_copy_release(c[0]);
    af_tracing_shutdown(t, 1000);
    af_tracing_free(t);
    return len;
}

static void test_attribute_value_length_default(void **state)
{
    (void)state;
    assert_int_equal(recorded_length(0), 100); /* the spec default: unlimited */
    assert_int_equal(recorded_length(16), 16);
    /* The user's variables win over the embedding program's default, span-specific first. */
    setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "40", 1);
    assert_int_equal(recorded_length(16), 40);
    setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "32", 1);
    assert_int_equal(recorded_length(16), 32);
    unsetenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT");
    unsetenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT");
}

int main(void)
{
    static const char *const vars[] = {"OTEL_SDK_DISABLED",
                                       "OTEL_SERVICE_NAME",
                                       "OTEL_RESOURCE_ATTRIBUTES",
                                       "OTEL_TRACES_SAMPLER",
                                       "OTEL_BSP_MAX_QUEUE_SIZE",
                                       "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
                                       "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT"};
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
        cmocka_unit_test(test_reconfigure_ratio_and_toggles),
        cmocka_unit_test(test_reconfigure_swaps_exporter),
        cmocka_unit_test(test_reconfigure_failure_changes_nothing),
        cmocka_unit_test(test_reconfigure_under_load),
        cmocka_unit_test(test_attribute_value_length_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
