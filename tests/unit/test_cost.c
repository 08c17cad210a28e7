/* Cost tracking: the original demo's arithmetic, any-operation summaries, pricing, forecast,
 * bounded memory, thread safety and the cost_tracking.* spans. */
#include "testutil.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/cost.h"

#define H (UINT64_C(3600) * 1000000000u)
#define MIN (UINT64_C(60) * 1000000000u)

static af_cost_tracker *new_tracker(af_tracer *tr)
{
    af_cost_tracker_opts o;
    af_cost_tracker_opts_init(&o);
    o.tracer = tr;
    af_cost_tracker *t = NULL;
    assert_int_equal(af_cost_tracker_new(&o, &t), 0);
    return t;
}

static void record(af_cost_tracker *t, const char *op, const char *model, double hours,
                   int64_t tokens, double cost, uint64_t ts)
{
    af_cost_entry e = {.operation = op,
                       .model_id = model,
                       .gpu_hours = hours,
                       .tokens_used = tokens,
                       .cost = cost,
                       .timestamp_ns = ts};
    assert_int_equal(af_cost_record(t, NULL, &e), 0);
}

static const af_cost_group *group(const af_cost_group *g, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(g[i].name, name) == 0)
            return &g[i];
    return NULL;
}

/* cmd/agentaflow's observability demo: $25.50 / $7.50 / $18.00 / 450000 tokens / 7.5 h. */
static void test_demo_numbers(void **state)
{
    (void)state;
    af_cost_tracker *t = new_tracker(NULL);
    record(t, "inference", "model-gpt", 0.5, 150000, 2.50, 0);
    record(t, "training", "model-bert", 6.0, 0, 18.00, 0);
    record(t, "inference", "model-gpt", 1.0, 300000, 5.00, 0);
    af_cost_summary s;
    assert_int_equal(af_cost_summary_get(t, NULL, 0, 0, &s), 0);
    assert_double_near(s.total_cost, 25.50, 1e-9);
    assert_double_near(s.inference_cost, 7.50, 1e-9);
    assert_double_near(s.training_cost, 18.00, 1e-9);
    assert_int_equal(s.total_tokens, 450000);
    assert_double_near(s.total_gpu_hours, 7.5, 1e-9);
    assert_double_near(s.avg_cost_per_hour, 25.50 / 7.5, 1e-9);
    assert_int_equal(s.entry_count, 3);
    assert_string_equal(s.currency, "USD");
    assert_int_equal(s.n_by_operation, 2);
    assert_string_equal(s.by_operation[0].name, "inference");
    assert_int_equal(s.by_operation[0].count, 2);
    assert_int_equal(s.by_operation[1].count, 1);
    const af_cost_group *g = group(s.by_model, s.n_by_model, "model-gpt");
    assert_non_null(g);
    assert_double_near(g->cost, 7.5, 1e-9);
    assert_int_equal(g->tokens, 450000);

    char *json = NULL;
    assert_int_equal(af_cost_summary_json(&s, &json), 0);
    assert_non_null(strstr(json, "\"total_cost\":25.5,"));
    assert_non_null(strstr(json, "\"operation_counts\":{\"inference\":2,\"training\":1}"));
    assert_non_null(strstr(json, "\"total_gpu_hours\":7.5,"));
    assert_non_null(strstr(json, "\"period_start\":\"1970-01-01T00:00:00.000000000Z\""));
    free(json);
    af_cost_summary_clear(&s);
    af_cost_tracker_free(t);
}

/* The web demo's operations: every one is summarised, and the inference/training split
 * catches gpu_training and llm_inference too. */
static void test_any_operation(void **state)
{
    (void)state;
    af_cost_tracker *t = new_tracker(NULL);
    record(t, "gpu_training", "", 0.01, 1000, 0.025, 0);
    record(t, "llm_inference", "llama", 0.002, 500, 0.0044, 0);
    record(t, "batch_processing", "", 0.004, 700, 0.0088, 0);
    record(t, "gpu_compute", "gpu_a100", 1.0, 0, 3.06, 0);
    af_cost_summary s;
    assert_int_equal(af_cost_summary_get(t, NULL, 0, 0, &s), 0);
    assert_int_equal(s.n_by_operation, 4);
    assert_double_near(s.training_cost, 0.025, 1e-12);
    assert_double_near(s.inference_cost, 0.0044, 1e-12);
    assert_double_near(s.total_cost, 0.025 + 0.0044 + 0.0088 + 3.06, 1e-12);
    assert_non_null(group(s.by_operation, s.n_by_operation, "batch_processing"));
    assert_non_null(group(s.by_model, s.n_by_model, ""));
    assert_int_equal(group(s.by_model, s.n_by_model, "")->count, 2);
    af_cost_summary_clear(&s);
    af_cost_tracker_free(t);
}

/* Caller timestamps are kept (the original overwrote them) and the range is [start, end). */
static void test_timestamps_and_range(void **state)
{
    (void)state;
    af_cost_tracker *t = new_tracker(NULL);
    uint64_t now = af_now_ns();
    record(t, "a", NULL, 1, 1, 1.0, now - 3 * H);
    record(t, "b", NULL, 1, 1, 2.0, now - 2 * H);
    record(t, "c", NULL, 1, 1, 4.0, now - 1 * H);
    af_cost_summary s;
    assert_int_equal(af_cost_summary_get(t, NULL, now - 3 * H, now - 1 * H, &s), 0);
    assert_double_near(s.total_cost, 3.0, 1e-12);
    af_cost_summary_clear(&s);
    assert_int_equal(af_cost_summary_get(t, NULL, now - 2 * H, now, &s), 0);
    assert_double_near(s.total_cost, 6.0, 1e-12);
    af_cost_summary_free(&s); /* the released ABI's name for _clear */
    assert_int_equal(af_cost_summary_get(t, NULL, now, now - 1, &s), -EINVAL);
    af_cost_tracker_free(t);
}

static void test_validation(void **state)
{
    (void)state;
    af_cost_tracker *t = new_tracker(NULL);
    af_cost_entry e = {.operation = NULL, .cost = 1};
    assert_int_equal(af_cost_record(t, NULL, &e), -EINVAL);
    e.operation = "x";
    e.cost = -1;
    assert_int_equal(af_cost_record(t, NULL, &e), -EINVAL);
    e.cost = NAN;
    assert_int_equal(af_cost_record(t, NULL, &e), -EINVAL);
    e.cost = 1;
    e.gpu_hours = INFINITY;
    assert_int_equal(af_cost_record(t, NULL, &e), -EINVAL);
    e.gpu_hours = 0;
    e.tokens_used = -5;
    assert_int_equal(af_cost_record(t, NULL, &e), -EINVAL);
    assert_int_equal(af_cost_record(t, NULL, NULL), -EINVAL);
    af_cost_stats st;
    af_cost_stats_get(t, &st);
    assert_int_equal(st.recorded, 0);
    af_cost_tracker_opts o;
    af_cost_tracker_opts_init(&o);
    o.max_entries = 0;
    af_cost_tracker *bad = NULL;
    assert_int_equal(af_cost_tracker_new(&o, &bad), -EINVAL);
    af_cost_tracker_opts_init(&o);
    o.pricing.per_hour[AF_GPU_T4] = -1;
    assert_int_equal(af_cost_tracker_new(&o, &bad), -EINVAL);
    af_cost_tracker_free(t);
}

static void test_pricing(void **state)
{
    (void)state;
    assert_int_equal(af_gpu_class_from_name("NVIDIA A100-SXM4-40GB"), AF_GPU_A100);
    assert_int_equal(af_gpu_class_from_name("NVIDIA A10G"), AF_GPU_A10);
    assert_int_equal(af_gpu_class_from_name("NVIDIA H100 80GB HBM3"), AF_GPU_H100);
    assert_int_equal(af_gpu_class_from_name("Tesla K80"), AF_GPU_K80);
    assert_int_equal(af_gpu_class_from_name("Tesla T4"), AF_GPU_T4);
    assert_int_equal(af_gpu_class_from_name("GeForce RTX 4090"), AF_GPU_RTX);
    assert_int_equal(af_gpu_class_from_name("Tesla V100-SXM2"), AF_GPU_V100);
    assert_int_equal(af_gpu_class_from_name("Radeon"), AF_GPU_GENERIC);
    assert_int_equal(af_gpu_class_from_name(NULL), AF_GPU_GENERIC);

    af_cost_pricing p;
    af_cost_pricing_init(&p);
    /* Every recognised class has its own price (h100/a10/k80 were generic upstream). */
    for (int c = 0; c < AF_GPU_CLASS_COUNT; c++)
        assert_true(p.per_hour[c] > 0);
    assert_true(p.per_hour[AF_GPU_H100] != p.per_hour[AF_GPU_GENERIC]);
    assert_double_near(af_cost_price(&p, AF_GPU_A100, 1.0, 100, 0), 3.06, 1e-12);
    /* Idle: min + idle_reduction * u = 0.1 + 0.1 * 0.05. */
    assert_double_near(af_cost_price(&p, AF_GPU_A100, 1.0, 5, 0), 3.06 * 0.105, 1e-12);
    /* Busy: min + u * (1 - min) = 0.1 + 0.5 * 0.9. */
    assert_double_near(af_cost_price(&p, AF_GPU_T4, 2.0, 50, 0), 0.526 * 2 * 0.55, 1e-12);
    p.use_utilization_factor = false;
    assert_double_near(af_cost_price(&p, AF_GPU_K80, 1.0, 0, 0), 0.90, 1e-12);
    /* Spot 60 %, tax 10 %, volume 5 % from 24 h and 10 % from 168 h (cumulative). */
    p.spot_discount = 0.6;
    p.tax_rate = 0.1;
    p.volume[0] = (af_volume_discount){24, 0.05};
    p.volume[1] = (af_volume_discount){168, 0.10};
    p.n_volume = 2;
    assert_double_near(af_cost_price(&p, AF_GPU_A100, 1.0, 0, 0), 3.06 * 0.4 * 1.1, 1e-12);
    assert_double_near(af_cost_price(&p, AF_GPU_A100, 1.0, 0, 30), 3.06 * 0.4 * 0.95 * 1.1, 1e-12);
    assert_double_near(af_cost_price(&p, AF_GPU_A100, 1.0, 0, 200), 3.06 * 0.4 * 0.9 * 1.1, 1e-12);
    assert_double_near(af_cost_price(&p, AF_GPU_A100, NAN, NAN, NAN), 0.0, 0);

    af_cost_tracker *t = new_tracker(NULL);
    double amount = 0;
    af_gpu_usage u = {
        .gpu_id = "gpu-0", .gpu_name = "NVIDIA H100", .hours = 0.5, .utilization = 100};
    assert_int_equal(af_cost_record_gpu_usage(t, NULL, &u, &amount), 0);
    assert_double_near(amount, 12.29 * 0.5, 1e-12);
    af_cost_summary s;
    assert_int_equal(af_cost_summary_get(t, NULL, 0, 0, &s), 0);
    assert_string_equal(s.by_operation[0].name, "gpu_compute");
    assert_string_equal(s.by_model[0].name, "gpu_h100");
    assert_double_near(s.total_gpu_hours, 0.5, 1e-12);
    af_cost_summary_clear(&s);
    af_cost_stats st;
    af_cost_stats_get(t, &st);
    assert_double_near(st.cumulative_gpu_hours_priced, 0.5, 1e-12);
    af_cost_tracker_free(t);
}

static void test_forecast(void **state)
{
    (void)state;
    af_cost_forecast f;
    af_cost_tracker *t = new_tracker(NULL);
    /* No data: zero, not NaN. */
    assert_int_equal(af_cost_forecast_24h(t, 0, &f), 0);
    assert_double_near(f.predicted_cost_24h, 0, 0);
    /* "now" before the tracker existed: no history at all. */
    assert_int_equal(af_cost_forecast_24h(t, 1, &f), 0);
    assert_double_near(f.predicted_cost_24h, 0, 0);

    /* $1 every 10 minutes for the last 6 hours: a flat $6/h -> $144 in 24 h. */
    uint64_t now = af_now_ns();
    for (int k = 1; k <= 36; k++)
        record(t, "inference", "m", 0, 0, 1.0, now - (uint64_t)k * 10 * MIN);
    assert_int_equal(af_cost_forecast_24h(t, now, &f), 0);
    assert_int_equal(f.slots, 6);
    assert_double_near(f.window_hours, 6.0, 1e-9);
    assert_double_near(f.current_rate_per_hour, 6.0, 1e-9);
    assert_double_near(f.trend_per_hour, 0.0, 1e-9);
    assert_double_near(f.predicted_cost_24h, 144.0, 1e-6);
    af_cost_tracker_free(t);

    /* Rising: hour i (oldest first) costs i+1 -> positive trend, more than the flat sum. */
    t = new_tracker(NULL);
    for (int i = 0; i < 6; i++)
        record(t, "training", "m", 0, 0, (double)(i + 1), now - (uint64_t)(6 - i) * H);
    assert_int_equal(af_cost_forecast_24h(t, now, &f), 0);
    assert_double_near(f.trend_per_hour, 1.0, 1e-9);
    assert_double_near(f.current_rate_per_hour, 6.5, 1e-9);
    assert_double_near(f.predicted_cost_24h, 6.5 * 24 + 24.0 * 24.0 / 2, 1e-6);
    af_cost_tracker_free(t);

    /* Falling to zero: the line is clipped at 0 instead of forecasting negative cost. */
    t = new_tracker(NULL);
    for (int i = 0; i < 6; i++)
        record(t, "training", "m", 0, 0, (double)(6 - i), now - (uint64_t)(6 - i) * H);
    assert_int_equal(af_cost_forecast_24h(t, now, &f), 0);
    assert_double_near(f.trend_per_hour, -1.0, 1e-9);
    assert_double_near(f.predicted_cost_24h, 0.5 * 0.5 / 2, 1e-6);
    assert_true(isfinite(f.predicted_cost_24h));
    af_cost_tracker_free(t);

    /* Degenerate: everything at one instant. */
    t = new_tracker(NULL);
    uint64_t at = af_now_ns();
    for (int i = 0; i < 5; i++)
        record(t, "x", NULL, 0, 0, 2.0, at);
    assert_int_equal(af_cost_forecast_24h(t, at + 1, &f), 0);
    assert_true(isfinite(f.predicted_cost_24h));
    assert_true(isfinite(f.trend_per_hour));
    assert_true(f.predicted_cost_24h >= 0);
    af_cost_tracker_free(t);
}

/* Memory stays bounded: old and excess entries fold into hourly buckets, totals stay exact. */
static void test_retention_bounded(void **state)
{
    (void)state;
    af_cost_tracker_opts o;
    af_cost_tracker_opts_init(&o);
    o.max_entries = 100;
    o.retention_s = 3600;
    o.max_buckets = 64;
    af_cost_tracker *t = NULL;
    assert_int_equal(af_cost_tracker_new(&o, &t), 0);
    uint64_t now = af_now_ns();
    for (int i = 0; i < 5000; i++)
        record(t, i % 2 ? "inference" : "training", "m", 0.01, 10, 0.5,
               now - 10 * H + (uint64_t)i * (10 * H / 5000));
    af_cost_stats st;
    af_cost_stats_get(t, &st);
    assert_true(st.entries <= 100);
    assert_true(st.buckets <= 64);
    assert_int_equal(st.recorded, 5000);
    assert_int_equal(st.folded + st.entries, 5000);
    af_cost_summary s;
    assert_int_equal(af_cost_summary_get(t, NULL, 0, 0, &s), 0);
    assert_double_near(s.total_cost, 2500.0, 1e-6);
    assert_int_equal(s.entry_count, 5000);
    assert_int_equal(s.total_tokens, 50000);
    assert_int_equal(group(s.by_operation, s.n_by_operation, "training")->count, 2500);
    af_cost_summary_clear(&s);
    af_cost_tracker_free(t);

    /* Buckets past their retention are dropped, and counted. */
    af_cost_tracker_opts_init(&o);
    o.retention_s = 60;
    o.bucket_retention_h = 2;
    assert_int_equal(af_cost_tracker_new(&o, &t), 0);
    record(t, "old", NULL, 0, 0, 1.0, now - 5 * H);
    record(t, "new", NULL, 0, 0, 1.0, now);
    af_cost_stats_get(t, &st);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.entries, 1);
    af_cost_tracker_free(t);
}

static void *hammer(void *arg)
{
    af_cost_tracker *t = arg;
    for (int i = 0; i < 500; i++) {
        af_cost_entry e = {.operation = "inference", .cost = 0.25, .tokens_used = 2};
        if (af_cost_record(t, NULL, &e) != 0)
            return arg;
        if (i % 50 == 0) {
            af_cost_summary s;
            if (af_cost_summary_get(t, NULL, 0, 0, &s) != 0)
                return arg;
            af_cost_summary_clear(&s);
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    af_cost_tracker *t = new_tracker(NULL);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, t), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_null(r);
    }
    af_cost_summary s;
    assert_int_equal(af_cost_summary_get(t, NULL, 0, 0, &s), 0);
    assert_int_equal(s.entry_count, 2000);
    assert_double_near(s.total_cost, 500.0, 1e-9);
    af_cost_summary_clear(&s);
    af_cost_tracker_free(t);
}

static const af_attr *attr(const af_span_data *d, const char *key)
{
    const af_attr *a = af_test_find_attr(d->attrs, d->n_attrs, key);
    assert_non_null(a);
    return a;
}

static void test_spans(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_cost_tracker *t = new_tracker(env.tracer);
    record(t, "training", "bert", 6.0, 1500000, 18.0, 0);
    record(t, "inference", "gpt", 1.5, 10, 7.5, 0);
    af_cost_summary s;
    assert_int_equal(af_cost_summary_get(t, NULL, 0, 0, &s), 0);
    af_cost_summary_clear(&s);
    af_cost_entry bad = {.operation = "x", .cost = -1};
    assert_int_equal(af_cost_record(t, NULL, &bad), -EINVAL);

    af_span_copy *spans[16];
    size_t n = af_test_spans(&env, spans, 16);
    assert_int_equal(n, 4);
    const af_span_data *rec = af_span_copy_data(spans[0]);
    assert_string_equal(rec->name, "cost_tracking.record_cost");
    assert_string_equal(attr(rec, "cost.operation")->v.s.ptr, "training");
    assert_double_near(attr(rec, "cost.gpu_hours")->v.d, 6.0, 0);
    assert_int_equal(attr(rec, "cost.tokens_used")->v.i, 1500000);
    assert_double_near(attr(rec, "cost.amount")->v.d, 18.0, 0);
    assert_string_equal(attr(rec, "operation.status")->v.s.ptr, "success");
    assert_non_null(af_test_find_attr(rec->attrs, rec->n_attrs, "operation.duration_ms"));
    assert_int_equal(rec->n_events, 1);
    assert_string_equal(rec->events[0].name, "cost.recorded");
    const af_attr *ev = af_test_find_attr(rec->events[0].attrs, rec->events[0].n_attrs, "cost");
    assert_non_null(ev);
    assert_double_near(ev->v.d, 18.0, 0);

    const af_span_data *sum = af_test_find_span(spans, n, "cost_tracking.get_cost_summary");
    assert_non_null(sum);
    /* The real total (the original read a missing key and always reported 0). */
    assert_double_near(attr(sum, "cost.gpu_hours")->v.d, 7.5, 1e-12);
    assert_double_near(attr(sum, "cost.total")->v.d, 25.5, 1e-12);
    assert_string_equal(attr(sum, "cost.start_time")->v.s.ptr, "1970-01-01T00:00:00.000000000Z");
    assert_int_equal(strlen(attr(sum, "cost.end_time")->v.s.ptr), 30);

    const af_span_data *err = af_span_copy_data(spans[3]);
    assert_string_equal(err->name, "cost_tracking.record_cost");
    assert_int_equal(err->status, AF_STATUS_ERROR);
    assert_string_equal(attr(err, "operation.status")->v.s.ptr, "error");
    af_test_spans_free(spans, n);

    /* Detaching the tracer switches the spans off. */
    af_cost_tracker_set_tracer(t, NULL);
    record(t, "x", NULL, 0, 0, 1, 0);
    assert_int_equal(af_memory_exporter_count(env.mem), 4);
    af_cost_tracker_free(t);
    af_test_env_free(&env);
}

/* Saved entries and hourly roll-ups restore to the same summary, and automatic ids continue
 * past the restored ones. */
static void test_restore(void **state)
{
    (void)state;
    af_cost_tracker *t = NULL;
    assert_int_equal(af_cost_tracker_new(NULL, &t), 0);
    uint64_t now = af_now_ns(), hour = UINT64_C(3600000000000);
    uint64_t old = now - 3 * 24 * hour;
    af_cost_hourly h = {old, "training", "m", 10.0, 2.0, 100, 4};
    assert_int_equal(af_cost_restore_hourly(t, &h), 0);
    af_cost_entry e = {
        .id = "cost-41", .operation = "inference", .cost = 0.25, .timestamp_ns = now - 1000};
    assert_int_equal(af_cost_restore_entry(t, &e), 0);
    h.count = 0;
    assert_int_equal(af_cost_restore_hourly(t, &h), -EINVAL);
    af_cost_summary s;
    assert_int_equal(af_cost_summary_get(t, NULL, 0, 0, &s), 0);
    assert_double_near(s.total_cost, 10.25, 1e-12);
    assert_int_equal(s.entry_count, 5);
    assert_int_equal(s.total_tokens, 100);
    af_cost_summary_clear(&s);
    char id[32];
    assert_int_equal(af_cost_reserve_id(t, id, sizeof(id)), 0);
    assert_string_equal(id, "cost-42");
    af_cost_restore_id_floor(t, 100);
    assert_int_equal(af_cost_reserve_id(t, id, sizeof(id)), 0);
    assert_string_equal(id, "cost-101");
    af_cost_tracker_free(t);
}

/* The first max_names operations and models keep their names; later ones are recorded as
 * AF_COST_OTHER and counted. "" (no model) and a client's own "other" take no place. */
static void test_max_names(void **state)
{
    (void)state;
    af_cost_tracker_opts o;
    af_cost_tracker_opts_init(&o);
    assert_int_equal(o.max_names, 1000);
    o.max_names = 0;
    af_cost_tracker *t = NULL;
    assert_int_equal(af_cost_tracker_new(&o, &t), -EINVAL);
    o.max_names = 3;
    assert_int_equal(af_cost_tracker_new(&o, &t), 0);
    af_cost_entry e = {.operation = AF_COST_OTHER, .cost = 1};
    assert_int_equal(af_cost_record(t, NULL, &e), 0); /* no model, "other": no place taken */
    static const char *const ops[] = {"a", "b", "a", "c", "d", "e", "b"};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        e.operation = ops[i];
        e.model_id = ops[i];
        assert_int_equal(af_cost_record(t, NULL, &e), 0);
    }
    af_cost_stats st;
    af_cost_stats_get(t, &st);
    assert_int_equal(st.operations_folded, 2); /* d, e */
    assert_int_equal(st.models_folded, 2);
    af_cost_summary cs;
    assert_int_equal(af_cost_summary_get(t, NULL, 0, 0, &cs), 0);
    assert_int_equal(cs.n_by_operation, 4);
    static const char *const want[] = {"a", "b", "c", AF_COST_OTHER};
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(cs.by_operation[i].name, want[i]);
    assert_int_equal(cs.by_operation[3].count, 3); /* the client's "other", d and e */
    assert_int_equal(cs.n_by_model, 5);            /* "", a, b, c, other */
    af_cost_summary_clear(&cs);
    af_cost_tracker_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_numbers),
        cmocka_unit_test(test_any_operation),
        cmocka_unit_test(test_timestamps_and_range),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_pricing),
        cmocka_unit_test(test_forecast),
        cmocka_unit_test(test_retention_bounded),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_spans),
        cmocka_unit_test(test_restore),
        cmocka_unit_test(test_max_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
