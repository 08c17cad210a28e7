/*
 * GPU metrics: the simulated backend (original fleet, determinism, bounds, patterns), the
 * collector (thread, callbacks, history, views, JSON, never NaN), alerts with de-duplication
 * and hysteresis through a scripted backend, and the collection spans.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "agentaflow/gpu.h"

static af_gpu_backend *sim(uint32_t n, uint64_t seed)
{
    af_gpu_sim_opts o;
    af_gpu_sim_opts_init(&o);
    o.gpus = n;
    o.seed = seed;
    af_gpu_backend *b = NULL;
    assert_int_equal(af_gpu_backend_simulated_new(&o, &b), 0);
    return b;
}

static void sample(af_gpu_backend *b, uint32_t i, uint64_t t, af_gpu_sample *m)
{
    af_gpu_process p[AF_GPU_MAX_PROCESSES];
    size_t np = 0;
    memset(m, 0, sizeof(*m));
    assert_int_equal(af_gpu_backend_sample(b, i, t, m, p, AF_GPU_MAX_PROCESSES, &np), 0);
    assert_int_equal(np, m->process_count);
    uint64_t sum = 0;
    for (size_t k = 0; k < np; k++)
        sum += p[k].memory_used_mb;
    assert_true(sum <= m->memory_used_mb);
}

static void test_sim_fleet_matches_original(void **state)
{
    (void)state;
    static const char *names[] = {
        "NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 4080", "NVIDIA GeForce RTX 4070 Ti",
        "NVIDIA Tesla V100",       "NVIDIA A100-SXM4-40GB",   "NVIDIA H100 80GB HBM3",
        "NVIDIA GeForce RTX 3080", "NVIDIA GeForce RTX 3090", "NVIDIA Quadro RTX 6000"};
    static const uint64_t mem[] = {24576, 16384, 12288, 32768, 40960, 81920, 10240, 24576, 24576};
    af_gpu_backend *b = sim(10, 3);
    assert_string_equal(af_gpu_backend_name(b), "simulated");
    assert_int_equal(af_gpu_backend_device_count(b), 10);
    for (uint32_t i = 0; i < 10; i++) {
        af_gpu_sample m;
        sample(b, i, 1000000000ULL, &m);
        assert_string_equal(m.name, names[i % 9]);
        assert_int_equal(m.memory_total_mb, mem[i % 9]);
    }
    assert_string_equal(af_gpu_sim_pattern(b, 0), "Idle");
    assert_int_equal(af_gpu_sim_set_pattern(b, 0, "Training"), 0);
    assert_string_equal(af_gpu_sim_pattern(b, 0), "Training");
    assert_int_equal(af_gpu_sim_set_pattern(b, 0, "training"), -ENOENT);
    assert_int_equal(af_gpu_sim_set_pattern(b, 99, "Idle"), -ENOENT);
    assert_string_equal(af_gpu_sim_pattern(b, 99), "Unknown");
    af_gpu_backend_free(b);
}

static void test_sim_deterministic(void **state)
{
    (void)state;
    af_gpu_backend *a = sim(3, 42), *b = sim(3, 42), *c = sim(3, 43);
    bool differs = false;
    for (int k = 0; k < 200; k++) {
        uint64_t t = UINT64_C(1700000000000000000) + (uint64_t)k * UINT64_C(3000000000);
        for (uint32_t i = 0; i < 3; i++) {
            af_gpu_sample x, y, z;
            sample(a, i, t, &x);
            sample(b, i, t, &y);
            sample(c, i, t, &z);
            assert_memory_equal(&x, &y, sizeof(x));
            differs |= x.utilization_gpu != z.utilization_gpu;
        }
    }
    assert_true(differs);
    af_gpu_backend_free(a);
    af_gpu_backend_free(b);
    af_gpu_backend_free(c);
}

static void test_sim_bounds_and_patterns(void **state)
{
    (void)state;
    af_gpu_backend *b = sim(9, 7);
    bool seen[5] = {0};
    static const char *pats[] = {"Idle", "Light Inference", "Training", "Heavy Inference",
                                 "Batch Processing"};
    static const double umax[] = {15, 45, 98, 75, 100};
    for (int k = 0; k < 3000; k++) {
        uint64_t t = (uint64_t)k * UINT64_C(5000000000); /* 5 s steps: ~4 h, every pattern */
        for (uint32_t i = 0; i < 9; i++) {
            af_gpu_sample m;
            sample(b, i, t, &m);
            const char *p = af_gpu_sim_pattern(b, i);
            for (int q = 0; q < 5; q++) {
                if (strcmp(p, pats[q]) == 0) {
                    seen[q] = true;
                    assert_true(m.utilization_gpu <= umax[q]);
                }
            }
            assert_true(isfinite(m.utilization_gpu) && isfinite(m.temperature));
            assert_true(m.utilization_gpu >= 0 && m.utilization_gpu <= 100);
            assert_true(m.memory_used_mb <= m.memory_total_mb);
            assert_int_equal(m.memory_free_mb, m.memory_total_mb - m.memory_used_mb);
            assert_true(m.temperature >= 25 && m.temperature <= 95);
            assert_true(m.power_draw > 0 && m.power_draw <= m.power_limit);
            assert_true(m.fan_speed >= 0 && m.fan_speed <= 100);
            assert_true(m.clock_graphics > 0 && m.clock_graphics < 2000);
            if (strcmp(p, "Idle") == 0)
                assert_true(m.memory_used_mb <= m.memory_total_mb / 5 + 1);
        }
    }
    for (int q = 0; q < 5; q++)
        assert_true(seen[q]);
    af_gpu_backend_free(b);
}

/* ---------------------------------------------------------------------------------------- */

static af_gpu_collector *sim_collector(uint32_t n, af_tracer *tracer)
{
    af_gpu_collector_opts o;
    af_gpu_collector_opts_init(&o);
    o.backend = AF_GPU_BACKEND_SIMULATED;
    o.sim.gpus = n;
    o.interval_ms = 20;
    o.history_capacity = 5;
    o.tracing.tracer = tracer;
    af_gpu_collector *c = NULL;
    char err[128];
    assert_int_equal(af_gpu_collector_new(&o, &c, err, sizeof(err)), 0);
    return c;
}

static bool has_nan(const char *json)
{
    return strstr(json, "nan") || strstr(json, "inf");
}

static void test_collector_views_never_nan(void **state)
{
    (void)state;
    af_gpu_collector *c = sim_collector(2, NULL);
    assert_string_equal(af_gpu_collector_backend_name(c), "simulated");
    assert_string_equal(af_gpu_collector_backend_reason(c), "configured");
    /* Before any sample: empty views are zeros and errors, never NaN. */
    af_gpu_overview ov;
    af_gpu_collector_overview(c, &ov);
    assert_int_equal(ov.total_gpus, 2);
    assert_true(ov.avg_utilization == 0 && ov.memory_utilization == 0);
    af_gpu_stats st;
    assert_int_equal(af_gpu_collector_stats(c, "gpu-0", 0, &st), -ENOENT);
    af_gpu_efficiency ef;
    assert_int_equal(af_gpu_collector_efficiency(c, "gpu-0", 0, &ef), -ENOENT);
    af_gpu_health h;
    assert_int_equal(af_gpu_collector_health(c, "gpu-0", &h), -ENOENT);

    assert_int_equal(af_gpu_collector_collect_now(c), 0);
    /* One sample: idle percentage over a zero span is 0, not NaN. */
    assert_int_equal(af_gpu_collector_stats(c, "gpu-0", 0, &st), 0);
    assert_int_equal(st.sample_count, 1);
    assert_true(st.idle_time_percentage == 0 && st.total_energy_consumed == 0);
    char *json;
    assert_int_equal(af_gpu_stats_json(&st, &json), 0);
    assert_false(has_nan(json));
    assert_non_null(strstr(json, "\"idle_time_percentage\":0"));
    free(json);

    for (int i = 0; i < 7; i++)
        assert_int_equal(af_gpu_collector_collect_now(c), 0);
    af_gpu_sample hist[16];
    assert_int_equal(af_gpu_collector_history(c, "gpu-1", 0, hist, 16), 5); /* capacity */
    for (int i = 1; i < 5; i++)
        assert_true(hist[i].timestamp_ns >= hist[i - 1].timestamp_ns);
    assert_int_equal(af_gpu_collector_history(c, "gpu-1", hist[3].timestamp_ns, hist, 16), 1);
    assert_int_equal(af_gpu_collector_history(c, "gpu-7", 0, hist, 16), 0);

    af_gpu_sample latest[4];
    assert_int_equal(af_gpu_collector_latest(c, latest, 4), 2);
    assert_string_equal(latest[0].gpu_id, "gpu-0");
    assert_string_equal(latest[1].gpu_id, "gpu-1");
    assert_int_equal(af_gpu_collector_gpu_count(c), 2);
    af_gpu_process procs[AF_GPU_MAX_PROCESSES];
    assert_int_equal(af_gpu_collector_processes(c, "gpu-0", procs, AF_GPU_MAX_PROCESSES),
                     latest[0].process_count);

    af_gpu_collector_overview(c, &ov);
    assert_int_equal(ov.memory_total_mb, latest[0].memory_total_mb + latest[1].memory_total_mb);
    assert_int_equal(ov.memory_available_mb, ov.memory_total_mb - ov.memory_used_mb);
    assert_int_equal(af_gpu_overview_json(&ov, &json), 0);
    assert_non_null(strstr(json, "\"collection_interval\":\"20ms\""));
    assert_non_null(strstr(json, "\"memory_available_mb\":"));
    assert_false(has_nan(json));
    free(json);

    assert_int_equal(af_gpu_collector_efficiency(c, "gpu-0", 0, &ef), 0);
    assert_int_equal(ef.sample_count, 5);
    assert_true(ef.min_temperature <= ef.max_temperature);
    assert_true(fabs(ef.idle_time_percent - (100 - ef.avg_utilization)) < 1e-9);
    assert_int_equal(af_gpu_efficiency_json(&ef, &json), 0);
    assert_non_null(strstr(json, "\"avg_power_efficiency\":"));
    free(json);
    assert_int_equal(af_gpu_collector_stats(c, "gpu-0", 0, &st), 0);
    assert_true(st.peak_utilization >= st.average_utilization);
    assert_true(st.efficiency_score > 0 && isfinite(st.efficiency_score));

    assert_int_equal(af_gpu_sample_json(&latest[0], &json), 0);
    const char *keys[] = {
        "gpu_id",       "name",          "utilization_gpu",     "utilization_memory",
        "memory_total", "memory_used",   "memory_free",         "temperature",
        "power_draw",   "power_limit",   "fan_speed",           "clock_graphics",
        "clock_memory", "process_count", "encoder_utilization", "decoder_utilization",
        "timestamp"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char k[64];
        snprintf(k, sizeof(k), "\"%s\":", keys[i]);
        assert_non_null(strstr(json, k));
    }
    assert_null(strstr(json, "null"));
    free(json);
    assert_int_equal(af_gpu_collector_health(c, "gpu-0", &h), 0);
    assert_int_equal(af_gpu_health_json(&h, &json), 0);
    assert_non_null(strstr(json, "\"utilization_status\":"));
    free(json);
    af_gpu_collector_free(c);
}

/* ---------------------------------------------------------------------------------------- */
/* Thread and callbacks.                                                                     */

typedef struct cb_log {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char seq[64][160];
    int n;
    int samples;
} cb_log;

static void log_cb(cb_log *l, const char *tag, const af_gpu_sample *s)
{
    pthread_mutex_lock(&l->mu);
    if (l->n < 64)
        snprintf(l->seq[l->n++], sizeof(l->seq[0]), "%s:%s", tag, s->gpu_id);
    l->samples++;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static void cb_a(const af_gpu_sample *s, void *u)
{
    log_cb(u, "a", s);
}

static void cb_b(const af_gpu_sample *s, void *u)
{
    log_cb(u, "b", s);
}

static void wait_samples(cb_log *l, int n)
{
    pthread_mutex_lock(&l->mu);
    while (l->samples < n)
        pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

static void test_collector_thread_and_callbacks(void **state)
{
    (void)state;
    cb_log l = {.n = 0};
    pthread_mutex_init(&l.mu, NULL);
    pthread_cond_init(&l.cv, NULL);
    af_gpu_collector_opts o;
    af_gpu_collector_opts_init(&o);
    o.backend = AF_GPU_BACKEND_SIMULATED;
    o.sim.gpus = 2;
    o.interval_ms = 3600000; /* only the immediate first sample can arrive */
    af_gpu_collector *c;
    assert_int_equal(af_gpu_collector_new(&o, &c, NULL, 0), 0);
    int ha = af_gpu_collector_add_sample_callback(c, cb_a, &l);
    int hb = af_gpu_collector_add_sample_callback(c, cb_b, &l);
    assert_true(ha > 0 && hb > 0 && ha != hb);

    assert_int_equal(af_gpu_collector_start(c), 0);
    assert_true(af_gpu_collector_running(c));
    assert_int_equal(af_gpu_collector_start(c), -EALREADY);
    wait_samples(&l, 4); /* first cycle at once, despite the one-hour interval */
    af_gpu_collector_stop(c);
    assert_false(af_gpu_collector_running(c));
    pthread_mutex_lock(&l.mu);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.seq[0], "a:gpu-0");
    assert_string_equal(l.seq[1], "b:gpu-0");
    assert_string_equal(l.seq[2], "a:gpu-1");
    assert_string_equal(l.seq[3], "b:gpu-1");
    pthread_mutex_unlock(&l.mu);

    /* Restart works (the original could not), and removal stops the calls. */
    assert_int_equal(af_gpu_collector_remove_callback(c, ha), 0);
    assert_int_equal(af_gpu_collector_remove_callback(c, ha), -ENOENT);
    assert_int_equal(af_gpu_collector_start(c), 0);
    wait_samples(&l, 6);
    af_gpu_collector_stop(c);
    pthread_mutex_lock(&l.mu);
    assert_int_equal(l.n, 6);
    assert_string_equal(l.seq[4], "b:gpu-0");
    assert_string_equal(l.seq[5], "b:gpu-1");
    pthread_mutex_unlock(&l.mu);
    af_gpu_collector_stop(c); /* idempotent */
    af_gpu_collector_free(c);
    pthread_cond_destroy(&l.cv);
    pthread_mutex_destroy(&l.mu);
}

/* ---------------------------------------------------------------------------------------- */
/* Alerts through a scripted backend.                                                        */

typedef struct script {
    const double *temps;
    size_t n, pos;
    double util;
} script;

static uint32_t script_count(void *self)
{
    (void)self;
    return 1;
}

static int script_sample(void *self, uint32_t index, uint64_t now_ns, af_gpu_sample *o,
                         af_gpu_process *procs, size_t cap, size_t *np)
{
    script *s = self;
    (void)index;
    (void)now_ns;
    (void)procs;
    (void)cap;
    (void)np;
    snprintf(o->name, sizeof(o->name), "Scripted GPU");
    /* Only temperature and utilization are supported by this "device". */
    o->valid = AF_GPU_F_TEMPERATURE | AF_GPU_F_UTIL_GPU;
    o->temperature = s->temps[s->pos < s->n ? s->pos : s->n - 1];
    o->utilization_gpu = s->util;
    s->pos++;
    return 0;
}

static const af_gpu_backend_ops script_ops = {"scripted", script_count, script_sample, NULL};

typedef struct alert_log {
    int n;
    af_gpu_alert last;
} alert_log;

static void on_alert(const af_gpu_alert *a, void *u)
{
    alert_log *l = u;
    l->n++;
    l->last = *a;
}

static void test_alerts_dedup_hysteresis(void **state)
{
    (void)state;
    static const double temps[] = {70, 76, 77, 80, 72, 86, 84, 81, 69, 76};
    script sc = {temps, 10, 0, 50};
    af_gpu_collector_opts o;
    af_gpu_collector_opts_init(&o);
    assert_int_equal(af_gpu_backend_new(&script_ops, &sc, &o.custom), 0);
    af_gpu_collector *c;
    assert_int_equal(af_gpu_collector_new(&o, &c, NULL, 0), 0);
    assert_string_equal(af_gpu_collector_backend_name(c), "scripted");
    alert_log al = {0};
    assert_true(af_gpu_collector_add_alert_callback(c, on_alert, &al) > 0);
    /* expected total temperature alerts after each sample */
    static const int want[] = {0, 1, 1, 1, 1, 2, 2, 2, 2, 3};
    static const af_gpu_level level[] = {
        AF_GPU_HEALTHY,  AF_GPU_WARNING,  AF_GPU_WARNING,  AF_GPU_WARNING, AF_GPU_WARNING,
        AF_GPU_CRITICAL, AF_GPU_CRITICAL, AF_GPU_CRITICAL, AF_GPU_HEALTHY, AF_GPU_WARNING};
    for (int i = 0; i < 10; i++) {
        assert_int_equal(af_gpu_collector_collect_now(c), 0);
        assert_int_equal(al.n, want[i]);
        af_gpu_health h;
        assert_int_equal(af_gpu_collector_health(c, "gpu-0", &h), 0);
        assert_int_equal(h.temperature_status, level[i]);
        assert_int_equal(h.status, level[i]);
        /* Unsupported memory/power never alert and stay healthy. */
        assert_int_equal(h.memory_status, AF_GPU_HEALTHY);
        assert_string_equal(h.utilization_status, "optimal");
        if (i == 5) {
            assert_string_equal(al.last.message, "GPU gpu-0 temperature critically high");
            assert_string_equal(al.last.type, "temperature");
            assert_int_equal(al.last.severity, AF_GPU_CRITICAL);
            assert_true(al.last.threshold == 85 && al.last.value == 86);
            assert_int_equal(h.n_issues, 1);
            assert_string_equal(h.issues[0], "Temperature critically high: 86.0\xc2\xb0"
                                             "C");
            assert_string_equal(h.recommendations[0], "Check cooling system and reduce workload");
            assert_int_equal(h.n_alerts, 2);
        }
    }
    assert_string_equal(al.last.message, "GPU gpu-0 temperature high");
    af_gpu_alert hist[8];
    assert_int_equal(af_gpu_collector_alerts(c, "gpu-0", 0, hist, 8), 3);
    assert_int_equal(af_gpu_collector_alerts(c, "gpu-9", 0, hist, 8), 0);
    assert_false(hist[0].acknowledged);
    assert_int_equal(af_gpu_collector_ack_alert(c, hist[0].id), 0);
    assert_int_equal(af_gpu_collector_alerts(c, NULL, 0, hist, 8), 3);
    assert_true(hist[0].acknowledged);
    char *json;
    assert_int_equal(af_gpu_alert_json(&hist[2], &json), 0);
    assert_non_null(strstr(json, "\"severity\":\"warning\""));
    assert_non_null(strstr(json, "\"message\":\"GPU gpu-0 temperature high\""));
    free(json);

    /* Unsupported fields are null in JSON. */
    af_gpu_sample m;
    assert_int_equal(af_gpu_collector_latest_for(c, "gpu-0", &m), 0);
    assert_int_equal(af_gpu_sample_json(&m, &json), 0);
    assert_non_null(strstr(json, "\"fan_speed\":null"));
    assert_non_null(strstr(json, "\"temperature\":76"));
    free(json);

    /* Low utilization: one info alert, held by hysteresis until above low + 5. */
    af_gpu_thresholds th;
    af_gpu_collector_get_thresholds(c, &th);
    assert_true(th.utilization_low == 10 && th.hysteresis == 5);
    int before = al.n;
    sc.util = 8;
    af_gpu_collector_collect_now(c);
    assert_int_equal(al.n, before + 1);
    assert_string_equal(al.last.message, "GPU gpu-0 utilization low");
    assert_string_equal(af_gpu_severity_name(al.last.severity), "info");
    sc.util = 14;
    af_gpu_collector_collect_now(c);
    sc.util = 9;
    af_gpu_collector_collect_now(c);
    assert_int_equal(al.n, before + 1);
    af_gpu_health h;
    af_gpu_collector_health(c, "gpu-0", &h);
    assert_string_equal(h.utilization_status, "underutilized");
    /* A jump of more than 50 points is reported once. */
    sc.util = 70;
    af_gpu_collector_collect_now(c);
    assert_int_equal(al.n, before + 2);
    assert_string_equal(al.last.message, "GPU gpu-0 utilization increased significantly");
    /* A stricter table applies at once. */
    th.temperature_warning = 60;
    th.temperature_critical = 70;
    af_gpu_collector_set_thresholds(c, &th);
    before = al.n;
    af_gpu_collector_collect_now(c); /* 76 deg C is now critical: an escalation */
    assert_int_equal(al.n, before + 1);
    assert_string_equal(al.last.message, "GPU gpu-0 temperature critically high");
    af_gpu_collector_free(c);
}

/* ---------------------------------------------------------------------------------------- */
/* Spans.                                                                                    */

static void test_collection_spans(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_gpu_collector *c = sim_collector(2, env.tracer);
    assert_int_equal(af_gpu_collector_collect_now(c), 0);
    af_span_copy *spans[16];
    size_t n = af_test_spans(&env, spans, 16);
    assert_int_equal(n, 3); /* two per-GPU children, then the cycle */
    const af_span_data *cyc = af_test_find_span(spans, n, "metrics_collection.collect_metrics");
    assert_non_null(cyc);
    assert_int_equal(af_test_find_attr(cyc->attrs, cyc->n_attrs, "metrics.count")->v.i, 2);
    assert_non_null(af_test_find_attr(cyc->attrs, cyc->n_attrs, "gpu.utilization"));
    assert_non_null(af_test_find_attr(cyc->attrs, cyc->n_attrs, "gpu.temperature"));
    assert_non_null(af_test_find_attr(cyc->attrs, cyc->n_attrs, "gpu.memory_used"));
    assert_non_null(af_test_find_attr(cyc->attrs, cyc->n_attrs, "operation.duration_ms"));
    assert_string_equal(cyc->events[0].name, "metrics.collected");
    int children = 0;
    for (size_t i = 0; i < n; i++) {
        const af_span_data *d = af_span_copy_data(spans[i]);
        if (strcmp(d->name, "metrics_collection.collect_gpu") != 0)
            continue;
        children++;
        assert_true(d->has_parent);
        assert_memory_equal(d->parent_span_id, cyc->span_id, 8);
        const char *keys[] = {"gpu.id",          "gpu.name",        "gpu.utilization",
                              "gpu.temperature", "gpu.memory_used", "gpu.memory_total"};
        for (size_t k = 0; k < 6; k++)
            assert_non_null(af_test_find_attr(d->attrs, d->n_attrs, keys[k]));
        assert_string_equal(d->events[0].name, "metrics.collected");
    }
    assert_int_equal(children, 2);
    af_test_spans_free(spans, n);

    af_memory_exporter_clear(env.mem);
    assert_int_equal(af_gpu_collector_start(c), 0);
    af_gpu_collector_stop(c);
    af_span_copy *more[256];
    n = af_test_spans(&env, more, 256);
    assert_true(n < 256);
    assert_non_null(af_test_find_span(more, n, "metrics_collection.start_collector"));
    assert_non_null(af_test_find_span(more, n, "metrics_collection.stop_collector"));
    af_test_spans_free(more, n);
    af_gpu_collector_free(c);
    af_test_env_free(&env);
}

static void test_auto_falls_back_to_simulated(void **state)
{
    (void)state;
    af_gpu_collector_opts o;
    af_gpu_collector_opts_init(&o);
    o.nvml_library = "/nonexistent/libnvidia-ml.so.1";
    af_gpu_collector *c;
    assert_int_equal(af_gpu_collector_new(&o, &c, NULL, 0), 0);
    assert_string_equal(af_gpu_collector_backend_name(c), "simulated");
    assert_non_null(strstr(af_gpu_collector_backend_reason(c), "NVML unavailable: cannot load"));
    af_gpu_collector_free(c);
    o.backend = AF_GPU_BACKEND_NVML;
    char err[256];
    assert_int_equal(af_gpu_collector_new(&o, &c, err, sizeof(err)), -ENOENT);
    assert_null(c);
    assert_non_null(strstr(err, "/nonexistent/libnvidia-ml.so.1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sim_fleet_matches_original),
        cmocka_unit_test(test_sim_deterministic),
        cmocka_unit_test(test_sim_bounds_and_patterns),
        cmocka_unit_test(test_collector_views_never_nan),
        cmocka_unit_test(test_collector_thread_and_callbacks),
        cmocka_unit_test(test_alerts_dedup_hysteresis),
        cmocka_unit_test(test_collection_spans),
        cmocka_unit_test(test_auto_falls_back_to_simulated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
