/*
 * GPU scheduler: validation messages, each strategy on the original's example scenario,
 * exclusivity, pending reasons, lifecycle, property tests over random operation sequences,
 * utilization metrics, collector feed and the spans with their attributes and links.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "agentaflow/gpu.h"

static af_gpu_scheduler *new_sched(af_gpu_strategy st, af_tracer *tracer)
{
    af_gpu_scheduler_opts o;
    af_gpu_scheduler_opts_init(&o);
    o.strategy = st;
    o.finished_retention = 100000;
    o.tracing.tracer = tracer;
    af_gpu_scheduler *s = NULL;
    assert_int_equal(af_gpu_scheduler_new(&o, &s), 0);
    return s;
}

static void add_gpu(af_gpu_scheduler *s, const char *id, const char *name, uint64_t total,
                    uint64_t used, double util)
{
    af_gpu_spec g = {id, name, total, used, util, 40, 100, true};
    char err[128];
    assert_int_equal(af_gpu_scheduler_register_gpu(s, &g, err, sizeof(err)), 0);
}

static void submit(af_gpu_scheduler *s, const char *id, const char *name, int prio, uint64_t mem,
                   bool excl)
{
    af_workload_spec w = {id, name, prio, mem, 0, excl};
    char err[128];
    assert_int_equal(af_gpu_scheduler_submit(s, &w, err, sizeof(err)), 0);
}

static void expect_on(af_gpu_scheduler *s, const char *wid, const char *gpu)
{
    af_workload_info wi;
    assert_int_equal(af_gpu_scheduler_get_workload(s, wid, &wi), 0);
    if (gpu) {
        assert_int_equal(wi.status, AF_WORKLOAD_RUNNING);
        assert_string_equal(wi.assigned_gpu, gpu);
        assert_int_equal(wi.pending_reason, AF_PENDING_NONE);
    } else {
        assert_int_equal(wi.status, AF_WORKLOAD_PENDING);
        assert_string_equal(wi.assigned_gpu, "");
    }
}

static uint64_t used_on(af_gpu_scheduler *s, const char *gpu)
{
    af_gpu_status st;
    assert_int_equal(af_gpu_scheduler_get_gpu(s, gpu, &st), 0);
    return st.memory_used_mb;
}

/* examples/gpu of the original: two A100s (one 10 GB used, 25 %), one V100. */
static void example_gpus(af_gpu_scheduler *s)
{
    add_gpu(s, "gpu-0", "NVIDIA A100", 40960, 0, 0);
    add_gpu(s, "gpu-1", "NVIDIA A100", 40960, 10240, 25);
    add_gpu(s, "gpu-2", "NVIDIA V100", 32768, 0, 0);
}

static void example_workloads(af_gpu_scheduler *s, bool excl)
{
    submit(s, "bert", "BERT Training", 2, 24576, excl);
    submit(s, "gpt", "GPT Inference", 3, 16384, excl);
    submit(s, "llama", "LLaMA Fine-tuning", 1, 20480, excl);
    submit(s, "resnet", "ResNet Training", 1, 8192, excl);
}

/* ---------------------------------------------------------------------------------------- */

static void test_validation_messages(void **state)
{
    (void)state;
    af_gpu_scheduler *s = new_sched(AF_GPU_LEAST_UTILIZED, NULL);
    char err[128];
    assert_int_equal(af_gpu_scheduler_register_gpu(s, NULL, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "GPU cannot be NULL");
    af_gpu_spec g = {"", "x", 100, 0, 0, 0, 0, true};
    assert_int_equal(af_gpu_scheduler_register_gpu(s, &g, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "GPU ID cannot be empty");
    g.id = "gpu-0";
    g.memory_total_mb = 0;
    assert_int_equal(af_gpu_scheduler_register_gpu(s, &g, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "GPU memory total must be greater than 0");

    assert_int_equal(af_gpu_scheduler_submit(s, NULL, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "workload cannot be NULL");
    af_workload_spec w = {NULL, "n", 1, 10, 0, false};
    assert_int_equal(af_gpu_scheduler_submit(s, &w, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "workload ID cannot be empty");
    w.id = "w1";
    w.memory_required_mb = 0;
    assert_int_equal(af_gpu_scheduler_submit(s, &w, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "workload memory requirement must be greater than 0");
    w.memory_required_mb = 10;
    assert_int_equal(af_gpu_scheduler_submit(s, &w, err, sizeof(err)), 0);
    assert_int_equal(af_gpu_scheduler_submit(s, &w, err, sizeof(err)), -EEXIST);
    assert_string_equal(err, "workload w1 already exists");

    assert_int_equal(af_gpu_scheduler_complete(s, "nope", err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "workload nope not found");
    /* Only running workloads complete; a pending one can be cancelled. */
    assert_int_equal(af_gpu_scheduler_complete(s, "w1", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "workload w1 is pending");
    assert_int_equal(af_gpu_scheduler_cancel(s, "w1", err, sizeof(err)), 0);
    assert_int_equal(af_gpu_scheduler_cancel(s, "w1", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "workload w1 is cancelled");
    /* A finished id may be reused. */
    assert_int_equal(af_gpu_scheduler_submit(s, &w, NULL, 0), 0);

    assert_int_equal(af_gpu_scheduler_unregister_gpu(s, "gpu-9", err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "GPU gpu-9 not found");
    af_gpu_scheduler_free(s);
}

static void test_least_utilized_example(void **state)
{
    (void)state;
    /* Exclusive use reproduces the original's one-workload-per-GPU result. */
    af_gpu_scheduler *s = new_sched(AF_GPU_LEAST_UTILIZED, NULL);
    example_gpus(s);
    example_workloads(s, true);
    size_t n = 0;
    assert_int_equal(af_gpu_scheduler_schedule(s, &n), 0);
    assert_int_equal(n, 3);
    expect_on(s, "bert", "gpu-0");
    expect_on(s, "gpt", "gpu-2");
    expect_on(s, "llama", "gpu-1");
    expect_on(s, "resnet", NULL);
    af_workload_info wi;
    af_gpu_scheduler_get_workload(s, "resnet", &wi);
    assert_int_equal(wi.pending_reason, AF_PENDING_EXCLUSIVE_BUSY);
    af_gpu_scheduler_free(s);

    /* Shared GPUs: ties on utilization go to the GPU with fewer workloads, then reg. order. */
    s = new_sched(AF_GPU_LEAST_UTILIZED, NULL);
    example_gpus(s);
    example_workloads(s, false);
    assert_int_equal(af_gpu_scheduler_schedule(s, &n), 0);
    assert_int_equal(n, 4);
    expect_on(s, "bert", "gpu-0");
    expect_on(s, "gpt", "gpu-2");
    expect_on(s, "llama", "gpu-1");
    expect_on(s, "resnet", "gpu-0");
    assert_int_equal(used_on(s, "gpu-0"), 24576 + 8192);
    assert_int_equal(used_on(s, "gpu-1"), 10240 + 20480);
    assert_int_equal(used_on(s, "gpu-2"), 16384);
    af_gpu_scheduler_free(s);
}

static void test_best_fit_example(void **state)
{
    (void)state;
    af_gpu_scheduler *s = new_sched(AF_GPU_BEST_FIT, NULL);
    example_gpus(s);
    example_workloads(s, false);
    size_t n = 0;
    af_gpu_scheduler_schedule(s, &n);
    assert_int_equal(n, 4);
    expect_on(s, "bert", "gpu-1");   /* 30720 free: the tightest fit */
    expect_on(s, "gpt", "gpu-2");    /* 32768 */
    expect_on(s, "llama", "gpu-0");  /* only 40960 left big enough */
    expect_on(s, "resnet", "gpu-2"); /* 16384 left there vs 20480 on gpu-0 */
    /* The original's bug: best_fit ignored occupancy and availability. Never over-commit: */
    submit(s, "big", "big", 1, 21000, false);
    af_gpu_scheduler_schedule(s, &n);
    assert_int_equal(n, 0);
    expect_on(s, "big", NULL);
    /* ...and never place on an unavailable GPU. */
    assert_int_equal(af_gpu_scheduler_set_available(s, "gpu-0", false), 0);
    submit(s, "small", "small", 1, 1000, false);
    af_gpu_scheduler_schedule(s, &n);
    expect_on(s, "small", "gpu-1"); /* 6144 free beats gpu-2's 8192; gpu-0 is off */
    static const char *ids[] = {"gpu-0", "gpu-1", "gpu-2"};
    static const uint64_t totals[] = {40960, 40960, 32768};
    for (int i = 0; i < 3; i++)
        assert_true(used_on(s, ids[i]) <= totals[i]);
    af_gpu_scheduler_free(s);
}

static void test_priority_fifo_within_priority(void **state)
{
    (void)state;
    af_gpu_scheduler *s = new_sched(AF_GPU_PRIORITY, NULL);
    add_gpu(s, "g", "g", 10000, 0, 0);
    submit(s, "a", "a", 1, 6000, false);
    submit(s, "b", "b", 5, 6000, false);
    submit(s, "c", "c", 5, 6000, false);
    submit(s, "d", "d", 1, 1000, false);
    size_t n;
    af_gpu_scheduler_schedule(s, &n);
    assert_int_equal(n, 2);
    expect_on(s, "b", "g");
    expect_on(s, "c", NULL);
    expect_on(s, "a", NULL);
    expect_on(s, "d", "g");
    af_workload_info wi;
    af_gpu_scheduler_get_workload(s, "c", &wi);
    assert_int_equal(wi.pending_reason, AF_PENDING_INSUFFICIENT_MEMORY);
    assert_int_equal(af_gpu_scheduler_complete(s, "b", NULL, 0), 0);
    af_gpu_scheduler_schedule(s, &n);
    expect_on(s, "c", "g"); /* FIFO within priority 5, and before priority 1 */
    expect_on(s, "a", NULL);
    /* The queue keeps submission order. */
    af_workload_info list[8];
    size_t total = af_gpu_scheduler_list_workloads(s, list, 8);
    assert_int_equal(total, 3);
    assert_string_equal(list[0].id, "a");
    af_gpu_scheduler_free(s);

    /* Example scenario: priorities 3, 2, 1, 1. */
    s = new_sched(AF_GPU_PRIORITY, NULL);
    example_gpus(s);
    example_workloads(s, false);
    af_gpu_scheduler_schedule(s, &n);
    assert_int_equal(n, 4);
    expect_on(s, "gpt", "gpu-0");
    expect_on(s, "bert", "gpu-2");
    expect_on(s, "llama", "gpu-0");
    expect_on(s, "resnet", "gpu-2");
    af_gpu_scheduler_free(s);
}

static void test_round_robin_persistent_cursor(void **state)
{
    (void)state;
    af_gpu_scheduler *s = new_sched(AF_GPU_ROUND_ROBIN, NULL);
    add_gpu(s, "g0", "x", 10000, 0, 0);
    add_gpu(s, "g1", "x", 10000, 0, 0);
    add_gpu(s, "g2", "x", 10000, 0, 0);
    submit(s, "w0", "", 0, 1000, false);
    submit(s, "w1", "", 0, 1000, false);
    submit(s, "w2", "", 0, 1000, false);
    submit(s, "w3", "", 0, 1000, false);
    size_t n;
    af_gpu_scheduler_schedule(s, &n);
    assert_int_equal(n, 4);
    expect_on(s, "w0", "g0");
    expect_on(s, "w1", "g1");
    expect_on(s, "w2", "g2");
    expect_on(s, "w3", "g0");
    /* The cursor survives the pass. */
    submit(s, "w4", "", 0, 1000, false);
    af_gpu_scheduler_schedule(s, &n);
    expect_on(s, "w4", "g1");
    /* A GPU that cannot fit is skipped; the cursor moves past the one used. */
    submit(s, "w5", "", 0, 8500, false);
    af_gpu_scheduler_schedule(s, &n);
    expect_on(s, "w5", "g2"); /* the cursor points at g2 after w4 went to g1 */
    submit(s, "w6", "", 0, 7900, false);
    af_gpu_scheduler_schedule(s, &n);
    expect_on(s, "w6", "g0"); /* wrapped after g2 */
    af_gpu_scheduler_free(s);
}

static void test_round_robin_skip_and_wrap(void **state)
{
    (void)state;
    af_gpu_scheduler *s = new_sched(AF_GPU_ROUND_ROBIN, NULL);
    add_gpu(s, "g0", "x", 10000, 0, 0);
    add_gpu(s, "g1", "x", 4000, 0, 0);
    add_gpu(s, "g2", "x", 10000, 0, 0);
    submit(s, "a", "", 0, 5000, false);
    submit(s, "b", "", 0, 5000, false);
    submit(s, "c", "", 0, 5000, false);
    size_t n;
    af_gpu_scheduler_schedule(s, &n);
    expect_on(s, "a", "g0");
    expect_on(s, "b", "g2"); /* g1 is too small */
    expect_on(s, "c", "g0"); /* wrapped */
    af_gpu_scheduler_free(s);
}

static void test_exclusive_and_reasons(void **state)
{
    (void)state;
    af_gpu_scheduler *s = new_sched(AF_GPU_LEAST_UTILIZED, NULL);
    submit(s, "early", "", 0, 100, false);
    af_workload_info wi;
    af_gpu_scheduler_get_workload(s, "early", &wi);
    assert_int_equal(wi.pending_reason, AF_PENDING_NOT_YET_SCHEDULED);
    size_t n;
    af_gpu_scheduler_schedule(s, &n);
    af_gpu_scheduler_get_workload(s, "early", &wi);
    assert_int_equal(wi.pending_reason, AF_PENDING_NO_GPUS);
    assert_string_equal(af_pending_reason_name(wi.pending_reason), "no_gpus");

    add_gpu(s, "g0", "x", 1000, 0, 0);
    add_gpu(s, "g1", "x", 1000, 0, 0);
    submit(s, "huge", "", 0, 5000, false);
    submit(s, "ex", "", 0, 100, true);
    af_gpu_scheduler_schedule(s, &n);
    expect_on(s, "early", "g0");
    expect_on(s, "ex", "g1"); /* g0 is in use, exclusive needs an empty GPU */
    af_gpu_scheduler_get_workload(s, "huge", &wi);
    assert_int_equal(wi.pending_reason, AF_PENDING_TOO_LARGE);
    /* Nothing shares an exclusive GPU, even with room. */
    submit(s, "s1", "", 0, 100, false);
    submit(s, "s2", "", 0, 950, false);
    af_gpu_scheduler_schedule(s, &n);
    expect_on(s, "s1", "g0");
    expect_on(s, "s2", NULL);
    af_gpu_status st;
    af_gpu_scheduler_get_gpu(s, "g1", &st);
    assert_true(st.exclusive);
    assert_int_equal(st.workload_count, 1);
    af_gpu_scheduler_get_workload(s, "s2", &wi);
    assert_int_equal(wi.pending_reason, AF_PENDING_INSUFFICIENT_MEMORY);
    /* Unregistering a busy GPU is refused; an idle one goes. */
    char err[128];
    assert_int_equal(af_gpu_scheduler_unregister_gpu(s, "g1", err, sizeof(err)), -EBUSY);
    assert_string_equal(err, "GPU g1 has running workloads");
    assert_int_equal(af_gpu_scheduler_cancel(s, "ex", NULL, 0), 0);
    af_gpu_scheduler_get_workload(s, "ex", &wi);
    assert_int_equal(wi.status, AF_WORKLOAD_CANCELLED);
    assert_string_equal(wi.assigned_gpu, "g1");
    assert_true(wi.completed_ns >= wi.started_ns);
    assert_int_equal(af_gpu_scheduler_fail(s, "s1", "oom", NULL, 0), 0);
    af_gpu_scheduler_get_workload(s, "s1", &wi);
    assert_int_equal(wi.status, AF_WORKLOAD_FAILED);
    assert_string_equal(wi.failure, "oom");
    assert_int_equal(af_gpu_scheduler_unregister_gpu(s, "g1", NULL, 0), 0);
    assert_int_equal(af_gpu_scheduler_list_gpus(s, NULL, 0), 1);
    af_gpu_scheduler_free(s);
}

static void test_reregister_and_utilization(void **state)
{
    (void)state;
    af_gpu_scheduler *s = new_sched(AF_GPU_LEAST_UTILIZED, NULL);
    add_gpu(s, "g0", "A", 10000, 1000, 20);
    add_gpu(s, "g1", "B", 20000, 0, 40);
    submit(s, "w", "", 0, 4000, false);
    size_t n;
    af_gpu_scheduler_schedule(s, &n);
    expect_on(s, "w", "g0");
    /* Re-registering keeps order and running work; shrinking below the commitment fails. */
    af_gpu_spec g = {"g0", "A2", 4500, 1000, 20, 0, 0, true};
    char err[128];
    assert_int_equal(af_gpu_scheduler_register_gpu(s, &g, err, sizeof(err)), -EBUSY);
    g.memory_total_mb = 12000;
    assert_int_equal(af_gpu_scheduler_register_gpu(s, &g, err, sizeof(err)), 0);
    af_gpu_status st[2];
    assert_int_equal(af_gpu_scheduler_list_gpus(s, st, 2), 2);
    assert_string_equal(st[0].id, "g0");
    assert_string_equal(st[0].name, "A2");
    assert_int_equal(st[0].memory_used_mb, 5000);
    assert_int_equal(st[0].memory_free_mb, 7000);

    af_gpu_scheduler_set_available(s, "g1", false);
    af_gpu_utilization u;
    af_gpu_scheduler_utilization(s, &u);
    assert_int_equal(u.total_gpus, 2);
    assert_int_equal(u.available_gpus, 1);
    assert_int_equal(u.active_gpus, 1);
    assert_true(u.average_utilization == 30.0);
    assert_int_equal(u.memory_total_mb, 32000);
    assert_int_equal(u.memory_used_mb, 5000);
    assert_int_equal(u.memory_available_mb, 7000); /* free on available GPUs, not the total */
    assert_int_equal(u.running_workloads, 1);
    assert_true(u.utilization_goal == 80.0);
    char *json = NULL;
    assert_int_equal(af_gpu_utilization_json(&u, &json), 0);
    const char *keys[] = {"\"total_gpus\":2",
                          "\"active_gpus\":1",
                          "\"average_utilization\":30",
                          "\"memory_used_mb\":5000",
                          "\"memory_available_mb\":7000",
                          "\"memory_utilization\":",
                          "\"pending_workloads\":0",
                          "\"utilization_goal\":80"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        assert_non_null(strstr(json, keys[i]));
    free(json);

    /* No GPUs: zeros, never NaN. */
    af_gpu_scheduler *e = new_sched(AF_GPU_BEST_FIT, NULL);
    af_gpu_scheduler_utilization(e, &u);
    assert_true(u.average_utilization == 0 && u.memory_utilization == 0);
    af_gpu_scheduler_free(e);
    af_gpu_scheduler_free(s);
}

/* ---------------------------------------------------------------------------------------- */
/* Property tests.                                                                           */

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

typedef struct model_wl {
    char id[16];
    int prio;
    uint64_t mem;
    bool excl;
    bool done; /* finished by the test */
} model_wl;

static void check_invariants(af_gpu_scheduler *s, model_wl *m, size_t nm)
{
    af_gpu_status gs[16];
    size_t ng = af_gpu_scheduler_list_gpus(s, gs, 16);
    uint64_t reserved[16] = {0};
    uint32_t count[16] = {0};
    bool excl[16] = {0};
    size_t pending = 0, running = 0;
    for (size_t i = 0; i < nm; i++) {
        af_workload_info wi;
        /* No lost workload: every id answers with a consistent status. */
        assert_int_equal(af_gpu_scheduler_get_workload(s, m[i].id, &wi), 0);
        if (m[i].done) {
            if (wi.status < AF_WORKLOAD_COMPLETED)
                fail_msg("%s finished but reads %s", m[i].id, af_workload_status_name(wi.status));
            continue;
        }
        assert_true(wi.status == AF_WORKLOAD_PENDING || wi.status == AF_WORKLOAD_RUNNING);
        if (wi.status == AF_WORKLOAD_PENDING) {
            pending++;
            continue;
        }
        running++;
        size_t g = 0;
        while (g < ng && strcmp(gs[g].id, wi.assigned_gpu) != 0)
            g++;
        assert_true(g < ng);
        reserved[g] += wi.memory_required_mb;
        count[g]++;
        excl[g] |= wi.exclusive;
    }
    for (size_t g = 0; g < ng; g++) {
        /* No over-commit, accounting exact, exclusivity honoured. */
        assert_int_equal(gs[g].memory_reserved_mb, reserved[g]);
        assert_true(gs[g].memory_used_mb <= gs[g].memory_total_mb);
        assert_int_equal(gs[g].workload_count, count[g]);
        if (excl[g])
            assert_int_equal(count[g], 1);
    }
    af_gpu_utilization u;
    af_gpu_scheduler_utilization(s, &u);
    assert_int_equal(u.pending_workloads, pending);
    assert_int_equal(u.running_workloads, running);
}

static void run_property(af_gpu_strategy st, uint64_t seed)
{
    af_gpu_scheduler *s = new_sched(st, NULL);
    static model_wl m[400];
    size_t nm = 0;
    uint64_t x = seed;
    int ngpu = 0;
    for (int step = 0; step < 600; step++) {
        uint64_t r = rng_next(&x) % 100;
        if (r < 8 && ngpu < 12) {
            char id[16];
            snprintf(id, sizeof(id), "g%d", ngpu++);
            add_gpu(s, id, "x", 1000 + rng_next(&x) % 8000, rng_next(&x) % 500,
                    (double)(rng_next(&x) % 100));
        } else if (r < 55 && nm < 400) {
            model_wl *w = &m[nm];
            snprintf(w->id, sizeof(w->id), "w%zu", nm);
            w->prio = (int)(rng_next(&x) % 4) - 1;
            w->mem = 1 + rng_next(&x) % 3000;
            w->excl = rng_next(&x) % 10 == 0;
            w->done = false;
            submit(s, w->id, "", w->prio, w->mem, w->excl);
            nm++;
        } else if (r < 75) {
            size_t placed;
            af_gpu_scheduler_schedule(s, &placed);
        } else if (r < 90 && nm) {
            size_t i = rng_next(&x) % nm;
            int rc = af_gpu_scheduler_complete(s, m[i].id, NULL, 0);
            if (rc == 0)
                m[i].done = true;
            else
                assert_int_equal(rc, -EINVAL); /* pending or already finished */
        } else if (nm) {
            size_t i = rng_next(&x) % nm;
            int rc = af_gpu_scheduler_cancel(s, m[i].id, NULL, 0);
            if (rc == 0)
                m[i].done = true;
            else
                assert_true(m[i].done);
        }
        check_invariants(s, m, nm);
    }
    af_gpu_scheduler_free(s);
}

static void test_property_no_overcommit_no_loss(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        run_property(AF_GPU_LEAST_UTILIZED, seed * 7919);
        run_property(AF_GPU_BEST_FIT, seed * 104729);
        run_property(AF_GPU_PRIORITY, seed * 1299709);
        run_property(AF_GPU_ROUND_ROBIN, seed * 15485863);
    }
}

/* With equal sizes, whatever is placed precedes whatever waits in (priority desc, FIFO). */
static void test_property_priority_order(void **state)
{
    (void)state;
    for (uint64_t seed = 11; seed < 31; seed++) {
        uint64_t x = seed * 2654435761u;
        af_gpu_scheduler *s = new_sched(AF_GPU_PRIORITY, NULL);
        int ngpu = 1 + (int)(rng_next(&x) % 4);
        for (int g = 0; g < ngpu; g++) {
            char id[16];
            snprintf(id, sizeof(id), "g%d", g);
            add_gpu(s, id, "x", 100 * (1 + rng_next(&x) % 5), 0, 0);
        }
        int nw = 5 + (int)(rng_next(&x) % 40), prio[64];
        for (int i = 0; i < nw; i++) {
            char id[16];
            snprintf(id, sizeof(id), "w%d", i);
            prio[i] = (int)(rng_next(&x) % 5);
            submit(s, id, "", prio[i], 100, false);
        }
        size_t n;
        af_gpu_scheduler_schedule(s, &n);
        bool placed[64];
        for (int i = 0; i < nw; i++) {
            char id[16];
            snprintf(id, sizeof(id), "w%d", i);
            af_workload_info wi;
            af_gpu_scheduler_get_workload(s, id, &wi);
            placed[i] = wi.status == AF_WORKLOAD_RUNNING;
        }
        for (int i = 0; i < nw; i++)
            for (int j = 0; j < nw; j++)
                if (placed[i] && !placed[j])
                    assert_true(prio[i] > prio[j] || (prio[i] == prio[j] && i < j));
        af_gpu_scheduler_free(s);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Collector feed.                                                                           */

static void test_collector_feeds_utilization(void **state)
{
    (void)state;
    af_gpu_collector_opts co;
    af_gpu_collector_opts_init(&co);
    co.backend = AF_GPU_BACKEND_SIMULATED;
    co.sim.gpus = 2;
    af_gpu_collector *c;
    assert_int_equal(af_gpu_collector_new(&co, &c, NULL, 0), 0);
    af_gpu_scheduler *s = new_sched(AF_GPU_LEAST_UTILIZED, NULL);
    add_gpu(s, "gpu-0", "a", 1000, 0, 99);
    add_gpu(s, "gpu-1", "b", 1000, 0, 99);
    assert_int_equal(af_gpu_scheduler_attach_collector(s, c), 0);
    assert_int_equal(af_gpu_collector_collect_now(c), 0);
    af_gpu_sample m;
    af_gpu_status st;
    for (int i = 0; i < 2; i++) {
        const char *id = i ? "gpu-1" : "gpu-0";
        assert_int_equal(af_gpu_collector_latest_for(c, id, &m), 0);
        assert_int_equal(af_gpu_scheduler_get_gpu(s, id, &st), 0);
        assert_true(st.utilization == m.utilization_gpu);
        assert_true(st.temperature == m.temperature);
        assert_true(st.last_metrics_update_ns == m.timestamp_ns);
    }
    /* Free detaches: further cycles do not touch freed memory (ASan would say). */
    af_gpu_scheduler_free(s);
    assert_int_equal(af_gpu_collector_collect_now(c), 0);
    af_gpu_collector_free(c);
}

/* ---------------------------------------------------------------------------------------- */
/* Tracing.                                                                                  */

static const af_attr *attr(const af_span_data *d, const char *k)
{
    const af_attr *a = af_test_find_attr(d->attrs, d->n_attrs, k);
    if (!a)
        fail_msg("span %s lacks attribute %s", d->name, k);
    return a;
}

static void test_spans(void **state)
{
    (void)state;
    af_test_env env;
    af_test_env_init(&env);
    af_gpu_scheduler *s = new_sched(AF_GPU_LEAST_UTILIZED, env.tracer);
    add_gpu(s, "gpu-0", "NVIDIA A100", 40960, 0, 10);
    submit(s, "w1", "Training", 3, 1024, false);
    af_workload_spec bad = {"", "x", 0, 1, 0, false};
    assert_int_equal(af_gpu_scheduler_submit(s, &bad, NULL, 0), -EINVAL);
    size_t n;
    af_gpu_scheduler_schedule(s, &n);
    assert_int_equal(n, 1);
    af_gpu_utilization u;
    af_gpu_scheduler_utilization(s, &u);

    af_span_copy *spans[16];
    size_t ns = af_test_spans(&env, spans, 16);
    assert_int_equal(ns, 5);
    const af_span_data *reg = af_test_find_span(spans, ns, "gpu_scheduling.register_gpu");
    assert_non_null(reg);
    assert_string_equal(attr(reg, "gpu.id")->v.s.ptr, "gpu-0");
    assert_string_equal(attr(reg, "gpu.name")->v.s.ptr, "NVIDIA A100");
    assert_int_equal(attr(reg, "gpu.memory_total")->v.i, 40960);
    assert_true(attr(reg, "gpu.available")->v.b);
    attr(reg, "gpu.memory_used");
    attr(reg, "gpu.utilization");
    attr(reg, "gpu.temperature");
    attr(reg, "operation.duration_ms");
    attr(reg, "operation.start_time");
    assert_string_equal(attr(reg, "operation.status")->v.s.ptr, "success");
    assert_int_equal(reg->status, AF_STATUS_OK);
    assert_int_equal(reg->n_events, 1);
    assert_string_equal(reg->events[0].name, "gpu.registered");

    const af_span_data *sub = af_test_find_span(spans, ns, "gpu_scheduling.submit_workload");
    assert_non_null(sub);
    assert_string_equal(attr(sub, "workload.id")->v.s.ptr, "w1");
    assert_string_equal(attr(sub, "workload.name")->v.s.ptr, "Training");
    assert_int_equal(attr(sub, "workload.priority")->v.i, 3);
    assert_int_equal(attr(sub, "workload.memory_required")->v.i, 1024);
    assert_int_equal(attr(sub, "scheduler.queue_size")->v.i, 1);
    assert_string_equal(sub->events[0].name, "workload.submitted");

    /* The failed submission is an error span with the original's message. */
    const af_span_data *failed = NULL;
    for (size_t i = 0; i < ns; i++) {
        const af_span_data *d = af_span_copy_data(spans[i]);
        if (strcmp(d->name, "gpu_scheduling.submit_workload") == 0 && d != sub)
            failed = d;
    }
    assert_non_null(failed);
    assert_int_equal(failed->status, AF_STATUS_ERROR);
    assert_string_equal(failed->status_message, "workload ID cannot be empty");
    assert_string_equal(attr(failed, "operation.status")->v.s.ptr, "error");

    const af_span_data *sch = af_test_find_span(spans, ns, "gpu_scheduling.schedule");
    assert_non_null(sch);
    assert_int_equal(attr(sch, "scheduler.queue_size")->v.i, 1);
    assert_int_equal(attr(sch, "scheduler.total_gpus")->v.i, 1);
    assert_int_equal(attr(sch, "scheduler.available_gpus")->v.i, 1);
    assert_int_equal(attr(sch, "scheduler.scheduled_count")->v.i, 1);
    attr(sch, "workload.queue_wait_ms");
    assert_string_equal(sch->events[0].name, "scheduling.completed");
    assert_int_equal(
        af_test_find_attr(sch->events[0].attrs, sch->events[0].n_attrs, "workloads.scheduled")->v.i,
        1);
    /* It links to the span that submitted the workload. */
    assert_int_equal(sch->n_links, 1);
    assert_memory_equal(sch->links[0].span_id, sub->span_id, 8);
    assert_memory_equal(sch->links[0].trace_id, sub->trace_id, 16);
    const af_attr *lw =
        af_test_find_attr(sch->links[0].attrs, sch->links[0].n_attrs, "workload.queue_wait_ms");
    assert_non_null(lw);
    assert_string_equal(
        af_test_find_attr(sch->links[0].attrs, sch->links[0].n_attrs, "workload.id")->v.s.ptr,
        "w1");

    const af_span_data *gu = af_test_find_span(spans, ns, "gpu_scheduling.get_utilization");
    assert_non_null(gu);
    assert_true(attr(gu, "gpu.utilization")->v.d == 10.0);

    af_test_spans_free(spans, ns);
    af_gpu_scheduler_free(s);
    af_test_env_free(&env);
}

/* What the change callback saw, for the durable-state test. */
typedef struct changes {
    int n;
    af_workload_info last;
    size_t cursor;
} changes;

static void on_change(const af_workload_info *w, size_t cursor, void *user)
{
    changes *c = user;
    c->n++;
    c->last = *w;
    c->cursor = cursor;
}

/* Every state change reaches the callback; a saved state restores into a fresh scheduler
 * with queue order, reservations, start times and finished workloads intact. */
static void test_change_callback_and_restore(void **state)
{
    (void)state;
    changes ch = {0};
    af_gpu_scheduler_opts o;
    af_gpu_scheduler_opts_init(&o);
    o.strategy = AF_GPU_ROUND_ROBIN;
    o.on_change = on_change;
    o.on_change_user = &ch;
    af_gpu_scheduler *s = NULL;
    assert_int_equal(af_gpu_scheduler_new(&o, &s), 0);
    add_gpu(s, "g0", "A100", 1000, 0, 0);
    add_gpu(s, "g1", "A100", 1000, 0, 0);
    submit(s, "run", "r", 0, 600, false);
    assert_int_equal(ch.n, 1);
    assert_int_equal(ch.last.status, AF_WORKLOAD_PENDING);
    af_gpu_scheduler_schedule(s, NULL);
    assert_int_equal(ch.n, 2);
    assert_int_equal(ch.last.status, AF_WORKLOAD_RUNNING);
    assert_int_equal(ch.cursor, 1);
    submit(s, "big", "b", 0, 5000, false);
    submit(s, "done", "d", 0, 10, false);
    af_gpu_scheduler_schedule(s, NULL);
    char err[128];
    assert_int_equal(af_gpu_scheduler_complete(s, "done", err, sizeof(err)), 0);
    assert_int_equal(ch.last.status, AF_WORKLOAD_COMPLETED);
    /* An unchanged queue gives no change. */
    int before = ch.n;
    af_gpu_scheduler_schedule(s, NULL);
    assert_int_equal(ch.n, before);

    af_workload_info saved[3];
    assert_int_equal(af_gpu_scheduler_get_workload(s, "run", &saved[0]), 0);
    assert_int_equal(af_gpu_scheduler_get_workload(s, "big", &saved[1]), 0);
    assert_int_equal(af_gpu_scheduler_get_workload(s, "done", &saved[2]), 0);
    af_gpu_scheduler_free(s);

    s = new_sched(AF_GPU_ROUND_ROBIN, NULL);
    add_gpu(s, "g0", "A100", 1000, 0, 0);
    add_gpu(s, "g1", "A100", 1000, 0, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(af_gpu_scheduler_restore(s, &saved[i]), 0);
    assert_int_equal(af_gpu_scheduler_restore(s, &saved[0]), -EEXIST);
    af_workload_info wi;
    assert_int_equal(af_gpu_scheduler_get_workload(s, "run", &wi), 0);
    assert_int_equal(wi.status, AF_WORKLOAD_RUNNING);
    assert_string_equal(wi.assigned_gpu, saved[0].assigned_gpu);
    assert_int_equal(wi.started_ns, saved[0].started_ns);
    assert_int_equal(used_on(s, saved[0].assigned_gpu), 600);
    assert_int_equal(af_gpu_scheduler_get_workload(s, "big", &wi), 0);
    assert_int_equal(wi.status, AF_WORKLOAD_PENDING);
    assert_int_equal(wi.pending_reason, AF_PENDING_TOO_LARGE);
    assert_int_equal(af_gpu_scheduler_get_workload(s, "done", &wi), 0);
    assert_int_equal(wi.status, AF_WORKLOAD_COMPLETED);
    assert_int_equal(wi.completed_ns, saved[2].completed_ns);
    af_gpu_scheduler_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation_messages),
        cmocka_unit_test(test_least_utilized_example),
        cmocka_unit_test(test_best_fit_example),
        cmocka_unit_test(test_priority_fifo_within_priority),
        cmocka_unit_test(test_round_robin_persistent_cursor),
        cmocka_unit_test(test_round_robin_skip_and_wrap),
        cmocka_unit_test(test_exclusive_and_reasons),
        cmocka_unit_test(test_reregister_and_utilization),
        cmocka_unit_test(test_property_no_overcommit_no_loss),
        cmocka_unit_test(test_property_priority_order),
        cmocka_unit_test(test_collector_feeds_utilization),
        cmocka_unit_test(test_spans),
        cmocka_unit_test(test_change_callback_and_restore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
